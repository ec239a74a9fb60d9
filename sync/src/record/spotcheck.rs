//! Spot checks [M7]: the outcome of each check; the link's token and the photo stay on the box.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// Where a spot check is [M7].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotCheckState {
    /// Planned for `due_at`, not sent yet.
    Scheduled,
    /// The SMS is queued; waiting for the photo until the deadline.
    Sent,
    Answered,
    Missed,
    /// Not sent: it fell due while the box was not running (or its clock was behind), more than an
    /// hour ago; a burst of stale checks would be unfair and useless.
    Skipped,
}

impl SpotCheckState {
    pub const ALL: [SpotCheckState; 5] = [
        SpotCheckState::Scheduled,
        SpotCheckState::Sent,
        SpotCheckState::Answered,
        SpotCheckState::Missed,
        SpotCheckState::Skipped,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SpotCheckState::Scheduled => "scheduled",
            SpotCheckState::Sent => "sent",
            SpotCheckState::Answered => "answered",
            SpotCheckState::Missed => "missed",
            SpotCheckState::Skipped => "skipped",
        }
    }
}

/// Staff's verdict on a spot check's photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotReview {
    Pending,
    Accepted,
    Rejected,
}

impl SpotReview {
    pub const ALL: [SpotReview; 3] = [SpotReview::Pending, SpotReview::Accepted, SpotReview::Rejected];
    pub fn as_str(self) -> &'static str {
        match self {
            SpotReview::Pending => "pending",
            SpotReview::Accepted => "accepted",
            SpotReview::Rejected => "rejected",
        }
    }
}

/// A spot check [M7]: its outcome only (the link's token and the photo stay on the box).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotCheck {
    pub id: String,
    pub person_id: String,
    pub due_at: DateTime<Utc>,
    /// `random`, or `staff:<user>` for one staff asked for.
    pub reason: String,
    pub state: SpotCheckState,
    pub sent_at: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Whether the answer's position was inside the geofence (`None`: not judged).
    pub position_inside: Option<bool>,
    pub review: SpotReview,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

impl SpotCheck {
    /// Index: `<state>|<due at>` → checks (the scheduler reads the due ones first).
    pub const BY_STATE: &'static str = "spot_state";
    /// Index: `<person>|<due at>` → checks.
    pub const BY_PERSON: &'static str = "spot_person";

    /// The deadline as the site reads it, `HH:MM dd/mm`.
    pub fn deadline_local(&self, offset: chrono::FixedOffset) -> String {
        self.deadline.with_timezone(&offset).format("%H:%M %d/%m").to_string()
    }
}

impl Record for SpotCheck {
    const KIND: &'static str = "spotcheck";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            (SpotCheck::BY_STATE, format!("{}|{}", self.state.as_str(), self.due_at.to_rfc3339())),
            (SpotCheck::BY_PERSON, format!("{}|{}", self.person_id, self.due_at.to_rfc3339())),
        ]
    }
}
