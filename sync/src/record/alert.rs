//! Alerts for staff [M5]: what raised them, how urgent, and their lifecycle.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A declaration with temperature at or above the threshold.
    Fever,
    /// A declaration with SpO2 below the threshold.
    LowSpo2,
    /// A declaration reporting shortness of breath.
    ShortnessOfBreath,
    /// No declaration for a slot after both grace periods.
    MissingDeclaration,
    /// The person's band has not been seen for the configured time.
    BandAway,
    /// The band's strap was opened (tamper).
    StrapOpened,
    /// The band's battery fell to the low mark.
    BandBatteryLow,
    /// A test result was positive (the F1 → F0 workflow starts).
    TestPositive,
    /// A position clearly outside the person's geofence.
    OutsideGeofence,
    /// A spot check not answered before its deadline.
    SpotCheckMissed,
    /// A scanner (a gateway or the box's adapter) went down: the bands it watched are not covered.
    /// About a scanner, not a person (`person_id` is empty, `subject` the scanner).
    ScannerDown,
}

impl AlertKind {
    /// Where the kind comes in triage, most urgent first (0): the person's health, then where they
    /// are, then what they did not do, then the equipment.
    pub fn triage_rank(self) -> u8 {
        match self {
            AlertKind::LowSpo2 | AlertKind::ShortnessOfBreath | AlertKind::TestPositive => 0,
            AlertKind::Fever => 1,
            AlertKind::OutsideGeofence | AlertKind::BandAway | AlertKind::StrapOpened => 2,
            AlertKind::MissingDeclaration | AlertKind::SpotCheckMissed => 3,
            AlertKind::ScannerDown | AlertKind::BandBatteryLow => 4,
        }
    }

    pub const ALL: [AlertKind; 11] = [
        AlertKind::Fever,
        AlertKind::LowSpo2,
        AlertKind::ShortnessOfBreath,
        AlertKind::MissingDeclaration,
        AlertKind::BandAway,
        AlertKind::StrapOpened,
        AlertKind::BandBatteryLow,
        AlertKind::TestPositive,
        AlertKind::OutsideGeofence,
        AlertKind::SpotCheckMissed,
        AlertKind::ScannerDown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Fever => "fever",
            AlertKind::LowSpo2 => "low_spo2",
            AlertKind::ShortnessOfBreath => "shortness_of_breath",
            AlertKind::MissingDeclaration => "missing_declaration",
            AlertKind::BandAway => "band_away",
            AlertKind::StrapOpened => "strap_opened",
            AlertKind::BandBatteryLow => "band_battery_low",
            AlertKind::TestPositive => "test_positive",
            AlertKind::OutsideGeofence => "outside_geofence",
            AlertKind::SpotCheckMissed => "spot_check_missed",
            AlertKind::ScannerDown => "scanner_down",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind in Vietnamese, as the box's pages name it.
    pub fn vi(self) -> &'static str {
        match self {
            AlertKind::Fever => "Sốt",
            AlertKind::LowSpo2 => "SpO2 thấp",
            AlertKind::ShortnessOfBreath => "Khó thở",
            AlertKind::MissingDeclaration => "Không khai báo",
            AlertKind::BandAway => "Rời khu vực (vòng không được thấy)",
            AlertKind::StrapOpened => "Dây đeo bị mở",
            AlertKind::BandBatteryLow => "Pin vòng yếu",
            AlertKind::TestPositive => "Xét nghiệm dương tính",
            AlertKind::OutsideGeofence => "Ra khỏi vùng cách ly",
            AlertKind::SpotCheckMissed => "Không trả lời kiểm tra đột xuất",
            AlertKind::ScannerDown => "Máy quét mất kết nối",
        }
    }
}

/// How urgent an alert is. Severe ones also go to the on-duty phone by SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Severe,
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 3] = [AlertState::Open, AlertState::Acknowledged, AlertState::Resolved];
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An alert for staff [M5].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from what the alert is about, so the same cause never raises two alerts.
    pub id: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub person_id: String,
    /// What raised it: a declaration id, or a slot key for a missing declaration.
    pub subject: String,
    /// A short human-readable detail (a temperature, a slot time), no personal identifiers.
    pub detail: String,
    pub state: AlertState,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_note: String,
    /// How many times it escalated while nobody acknowledged it.
    pub escalations: u32,
    pub last_escalated_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// A new open alert.
    pub fn new(
        id: String,
        kind: AlertKind,
        severity: Severity,
        person_id: &str,
        subject: &str,
        detail: String,
        now: DateTime<Utc>,
    ) -> Alert {
        Alert {
            id,
            kind,
            severity,
            person_id: person_id.to_owned(),
            subject: subject.to_owned(),
            detail,
            state: AlertState::Open,
            raised_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            resolution_note: String::new(),
            escalations: 0,
            last_escalated_at: None,
        }
    }
}

impl Alert {
    /// Index: `<state>|<raised at>` → alerts.
    pub const BY_STATE: &'static str = "alert_state";
    /// Index: `<person>|<raised at>` → alerts.
    pub const BY_PERSON: &'static str = "alert_person";
}

impl Record for Alert {
    const KIND: &'static str = "alert";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            (Alert::BY_STATE, format!("{}|{}", self.state.as_str(), self.raised_at.to_rfc3339())),
            (Alert::BY_PERSON, format!("{}|{}", self.person_id, self.raised_at.to_rfc3339())),
        ]
    }
}
