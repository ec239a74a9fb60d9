//! The zone daily report [M11]: a day's figures, and the report as the zone's manager confirmed it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// One site's figures for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneDay {
    pub date: Option<NaiveDate>,
    pub district: String,
    pub commune: String,
    pub zone_name: String,
    pub management_level: String,
    /// In quarantine at the end of the day.
    pub in_quarantine: usize,
    /// Whose quarantine started that day, and of them:
    pub admitted: usize,
    pub admitted_workers: usize,
    pub admitted_children: usize,
    pub admitted_pregnant: usize,
    pub admitted_foreigners: usize,
    /// People sampled that day, by round.
    pub sampled_by_round: BTreeMap<u32, usize>,
    /// F1 → F0 that day.
    pub converted_f0: usize,
    /// The last day someone was converted to F0, up to this day.
    pub last_f0: Option<NaiveDate>,
    /// Transferred to hospital that day after a conversion to F0.
    pub transferred_after_f0: usize,
    /// Released at the end of quarantine that day.
    pub released: usize,
}

impl ZoneDay {
    /// Adds another site's figures (the province's total; the dates and names stay this one's).
    pub fn add(&mut self, other: &ZoneDay) {
        self.in_quarantine += other.in_quarantine;
        self.admitted += other.admitted;
        self.admitted_workers += other.admitted_workers;
        self.admitted_children += other.admitted_children;
        self.admitted_pregnant += other.admitted_pregnant;
        self.admitted_foreigners += other.admitted_foreigners;
        for (round, n) in &other.sampled_by_round {
            *self.sampled_by_round.entry(*round).or_default() += n;
        }
        self.converted_f0 += other.converted_f0;
        self.last_f0 = self.last_f0.max(other.last_f0);
        self.transferred_after_f0 += other.transferred_after_f0;
        self.released += other.released;
    }
}

/// A zone daily report as the zone's manager confirmed it [M11]: the figures of that moment, which
/// the province adds up. Confirming again (after a late entry) replaces them; the document's history
/// keeps the earlier ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneReport {
    pub site_id: String,
    pub date: NaiveDate,
    pub figures: ZoneDay,
    pub confirmed_by: String,
    pub confirmed_at: DateTime<Utc>,
}

impl Record for ZoneReport {
    const KIND: &'static str = "zonereport";
    fn id(&self) -> String {
        self.date.to_string()
    }
}
