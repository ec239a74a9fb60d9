//! Wristbands [M2] and presence [M3]: the band pool with each band's history, and a person's presence
//! intervals for a day (derived from sightings, which stay on the box).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{time_key, Record};

/// Where a wristband is in its life at the site [M2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandState {
    /// Registered, not prepared.
    Stock,
    Charging,
    /// Charged and disinfected: may be handed over.
    Ready,
    /// Worn by a person.
    Assigned,
    /// Taken back (at release or transfer), to be disinfected.
    Returned,
    Disinfecting,
    Faulty,
    Lost,
}

impl BandState {
    pub const ALL: [BandState; 8] = [
        BandState::Stock,
        BandState::Charging,
        BandState::Ready,
        BandState::Assigned,
        BandState::Returned,
        BandState::Disinfecting,
        BandState::Faulty,
        BandState::Lost,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BandState::Stock => "stock",
            BandState::Charging => "charging",
            BandState::Ready => "ready",
            BandState::Assigned => "assigned",
            BandState::Returned => "returned",
            BandState::Disinfecting => "disinfecting",
            BandState::Faulty => "faulty",
            BandState::Lost => "lost",
        }
    }
    pub fn parse(s: &str) -> Option<BandState> {
        BandState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The states staff may move a band to from this one by hand. `Assigned` is reached only by a
    /// hand-over (which checks battery and presence), and leaves only through return, fault or loss.
    pub fn next_by_hand(self) -> &'static [BandState] {
        use BandState::*;
        match self {
            Stock => &[Charging, Ready, Faulty, Lost],
            Charging => &[Ready, Stock, Faulty, Lost],
            Ready => &[Charging, Stock, Faulty, Lost],
            Assigned => &[Returned, Faulty, Lost],
            Returned => &[Disinfecting, Faulty, Lost],
            Disinfecting => &[Ready, Charging, Faulty],
            Faulty => &[Stock, Lost],
            Lost => &[Returned, Stock],
        }
    }

    /// Whether a band in this state may be handed over to a person.
    pub fn can_hand_over(self) -> bool {
        matches!(self, BandState::Ready | BandState::Charging | BandState::Stock)
    }
}

/// One change of a band's state: who, when, and for whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandChange {
    pub at: DateTime<Utc>,
    pub by: String,
    pub from: Option<BandState>,
    pub to: BandState,
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// A wristband of the site's pool [M2]. Its id is what the scanners report: a Bluetooth address
/// (`AA:BB:CC:DD:EE:FF`) or a beacon identity. The history is a map keyed by time (not a list) so that
/// changes made on two sides merge as a union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub id: String,
    /// The number printed on the band, if any.
    #[serde(default)]
    pub label: String,
    pub state: BandState,
    pub person_id: Option<String>,
    pub history: std::collections::BTreeMap<String, BandChange>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Band {
    /// A band just registered, in stock, with its registration as the first entry of its history.
    pub fn new(id: String, label: String, by: &str, at: DateTime<Utc>) -> Band {
        let mut band = Band {
            id,
            label,
            state: BandState::Stock,
            person_id: None,
            history: std::collections::BTreeMap::new(),
            registered_at: at,
            updated_at: at,
        };
        band.history.insert(
            time_key(&band.history, at),
            BandChange {
                at,
                by: by.to_owned(),
                from: None,
                to: BandState::Stock,
                person_id: None,
                note: String::new(),
            },
        );
        band
    }

    /// Moves the band to `to`, recording who did it.
    pub fn change(
        &mut self,
        to: BandState,
        person_id: Option<String>,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) {
        self.history.insert(
            time_key(&self.history, at),
            BandChange {
                at,
                by: by.to_owned(),
                from: Some(self.state),
                to,
                person_id: person_id.clone(),
                note: note.to_owned(),
            },
        );
        self.state = to;
        self.person_id = person_id;
        self.updated_at = at;
    }
}

impl Band {
    /// Index: state → bands.
    pub const BY_STATE: &'static str = "band_state";
    /// Index: person → the bands they were handed.
    pub const BY_PERSON: &'static str = "band_person";
}

impl Record for Band {
    const KIND: &'static str = "band";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![(Band::BY_STATE, self.state.as_str().to_owned())];
        if let Some(p) = &self.person_id {
            ix.push((Band::BY_PERSON, p.clone()));
        }
        ix
    }
}

/// Where a band was during part of a day, as the presence engine decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceInterval {
    /// `present`, `unseen` or `away`.
    pub state: String,
    /// The nearest scanner (a room or a gateway) while present.
    #[serde(default)]
    pub place: String,
    /// The end, or `None` while it lasts.
    pub to: Option<DateTime<Utc>>,
}

/// A person's presence for one site-local day [M3]: intervals keyed by their start (RFC 3339), which
/// merge as a union. Derived from sightings, which stay on the box; only this summary replicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceDay {
    pub person_id: String,
    pub date: NaiveDate,
    pub band: String,
    pub intervals: std::collections::BTreeMap<String, PresenceInterval>,
}

impl PresenceDay {
    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for PresenceDay {
    const KIND: &'static str = "presence";
    fn id(&self) -> String {
        PresenceDay::make_id(&self.person_id, self.date)
    }
}
