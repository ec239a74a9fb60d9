//! Testing [M10]: samplings by round and their results.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// A test result [M10].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    /// Sampled, no result yet.
    Pending,
    Negative,
    Positive,
}

impl TestResult {
    pub const ALL: [TestResult; 3] = [TestResult::Pending, TestResult::Negative, TestResult::Positive];
    pub fn as_str(self) -> &'static str {
        match self {
            TestResult::Pending => "pending",
            TestResult::Negative => "negative",
            TestResult::Positive => "positive",
        }
    }

    /// The result in Vietnamese, as the box's pages and the laboratory's lists name it.
    pub fn vi(self) -> &'static str {
        match self {
            TestResult::Pending => "Chờ kết quả",
            TestResult::Negative => "Âm tính",
            TestResult::Positive => "Dương tính",
        }
    }

    pub fn parse(s: &str) -> Option<TestResult> {
        TestResult::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One sampling of one person in one round (lần lấy mẫu 1, 2, 3, …) and its result [M10]. Its id is
/// the person's and the round's, so a round is recorded once whichever box or list records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub person_id: String,
    pub round: u32,
    /// The site's calendar day of the sampling (the daily report counts it there).
    pub sampled_on: NaiveDate,
    pub sampled_at: DateTime<Utc>,
    pub sampled_by: String,
    pub result: TestResult,
    pub result_at: Option<DateTime<Utc>>,
    pub result_by: Option<String>,
}

impl Sample {
    /// Index: `<person>|<round>` → samplings.
    pub const BY_PERSON: &'static str = "sample_person";
    /// Index: `<sampled on>|<id>` → samplings of a day.
    pub const BY_DAY: &'static str = "sample_day";

    pub fn make_id(person_id: &str, round: u32) -> String {
        format!("{person_id}/{round}")
    }
}

impl Record for Sample {
    const KIND: &'static str = "sample";
    fn id(&self) -> String {
        Sample::make_id(&self.person_id, self.round)
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            (Sample::BY_PERSON, format!("{}|{:03}", self.person_id, self.round)),
            (Sample::BY_DAY, format!("{}|{}", self.sampled_on, self.id())),
        ]
    }
}
