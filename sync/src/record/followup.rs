//! The staff-kept part of the daily follow-up sheet [M9].

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// The staff-kept part of the daily follow-up sheet for one person and day [M9]. The figures
/// (declarations on time, maximum temperature, symptoms) are computed from declarations when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub person_id: String,
    pub date: NaiveDate,
    pub presence: String,
    pub tests: String,
    pub notes: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl FollowUp {
    /// Index: `<date>|<person>` → follow-up days.
    pub const BY_DATE: &'static str = "followup_date";

    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for FollowUp {
    const KIND: &'static str = "followup";
    fn id(&self) -> String {
        FollowUp::make_id(&self.person_id, self.date)
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![(FollowUp::BY_DATE, format!("{}|{}", self.date, self.person_id))]
    }
}
