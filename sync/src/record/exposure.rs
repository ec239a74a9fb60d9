//! A person's exposure list [M10]: the people whose bands shared a scanner's zone with theirs over
//! the last days, derived on the box from presence intervals when the person converts to F0 (and on
//! demand). Only names, rooms and minutes replicate; the sightings it was derived from never leave
//! the box.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// One contact: who, and how long they shared which zone on which day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub full_name: String,
    pub room: String,
    /// Minutes in all.
    pub minutes: u32,
    /// Site-local date (`YYYY-MM-DD`) → zone (a scanner: a room, the corridor) → minutes.
    pub days: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The exposure list of one person, as last computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub person_id: String,
    pub computed_at: DateTime<Utc>,
    /// How many days back it looked.
    pub days: u32,
    /// Why it was computed: `converted_f0` or `on_demand`.
    pub reason: String,
    /// By contact's person id.
    pub contacts: BTreeMap<String, Contact>,
}

impl Record for Exposure {
    const KIND: &'static str = "exposure";
    fn id(&self) -> String {
        self.person_id.clone()
    }
}
