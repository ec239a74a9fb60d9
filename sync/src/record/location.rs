//! Location [M8]: the circle a person must stay in, and a person's daily summary (raw positions
//! stay on the box).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// A circle on the map: where a person must stay [M8].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: u32,
    /// The address it stands for, as staff typed it.
    #[serde(default)]
    pub address: String,
}

/// A person's location summary for a day [M8], replicated instead of raw positions (which stay on
/// the box): written on the day's first report and on each crossing of the geofence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationDay {
    pub person_id: String,
    pub date: NaiveDate,
    pub first_report_at: DateTime<Utc>,
    /// How many times the person went outside that day.
    pub outside_times: u32,
    pub last_outside_at: Option<DateTime<Utc>>,
    /// Inside at the last judged position (`None`: none could be judged yet).
    pub inside: Option<bool>,
}

impl LocationDay {
    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for LocationDay {
    const KIND: &'static str = "locationday";
    fn id(&self) -> String {
        LocationDay::make_id(&self.person_id, self.date)
    }
}
