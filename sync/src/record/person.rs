//! A person under quarantine [M1]: what the district's list says about them, their status and its
//! history, their personal link's token and, for home quarantine, their home's geofence.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Geofence, Record};

/// Why a person is at the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    F1,
    F0,
    Traveller,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::F1, Category::F0, Category::Traveller];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::F1 => "f1",
            Category::F0 => "f0",
            Category::Traveller => "traveller",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where a person stands in their quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    InQuarantine,
    Released,
    Transferred,
    ConvertedF0,
}

impl PersonStatus {
    pub const ALL: [PersonStatus; 4] = [
        PersonStatus::InQuarantine,
        PersonStatus::Released,
        PersonStatus::Transferred,
        PersonStatus::ConvertedF0,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::InQuarantine => "in_quarantine",
            PersonStatus::Released => "released",
            PersonStatus::Transferred => "transferred",
            PersonStatus::ConvertedF0 => "converted_f0",
        }
    }

    /// The status in Vietnamese, as the box's pages name it.
    pub fn vi(self) -> &'static str {
        match self {
            PersonStatus::InQuarantine => "Đang cách ly",
            PersonStatus::Released => "Hoàn thành cách ly",
            PersonStatus::Transferred => "Chuyển viện",
            PersonStatus::ConvertedF0 => "Chuyển F0",
        }
    }
    pub fn parse(s: &str) -> Option<PersonStatus> {
        PersonStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Whether the person still has to declare and be watched. A person converted to F0 and cared for
    /// at the site is still watched.
    pub fn is_watched(self) -> bool {
        matches!(self, PersonStatus::InQuarantine | PersonStatus::ConvertedF0)
    }
}

/// Gender as the district lists give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Other,
    #[default]
    Unknown,
}

impl Gender {
    pub const ALL: [Gender; 4] = [Gender::Male, Gender::Female, Gender::Other, Gender::Unknown];
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Gender> {
        Gender::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// One change of a person's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: PersonStatus,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(default)]
    pub note: String,
}

/// What the district's list says about a person: the fields staff type and import [M1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonDetails {
    pub full_name: String,
    pub birth_year: Option<i32>,
    pub phone: String,
    pub gender: Gender,
    /// Số CMND/CCCD. Shown masked in lists; every full view is audited.
    pub id_number: String,
    /// Địa chỉ cách ly.
    pub address: String,
    pub room: String,
    pub quarantine_start: NaiveDate,
    pub quarantine_end: NaiveDate,
    /// Số Quyết định.
    pub decision_number: String,
    pub category: Category,
    pub worker: bool,
    pub child: bool,
    pub pregnant: bool,
    pub foreigner: bool,
}

/// A person under quarantine at the site [M1]: their details (stored flat, field by field) and what
/// the site records about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    #[serde(flatten)]
    pub details: PersonDetails,
    pub status: PersonStatus,
    pub status_history: Vec<StatusChange>,
    /// The unguessable token of the person's own declaration link.
    pub declare_token: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the personal data was erased (a configured time after release); the record stays for
    /// the counts of the daily reports.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
    /// For home quarantine: the home's geofence (else the site's applies) [M8].
    #[serde(default)]
    pub home_geofence: Option<Geofence>,
}

impl std::ops::Deref for Person {
    type Target = PersonDetails;
    fn deref(&self) -> &PersonDetails {
        &self.details
    }
}

impl Person {
    /// Index: status → people (keys only: who is watched).
    pub const BY_STATUS: &'static str = "person_status";
    /// Index: personal link token → person.
    pub const BY_TOKEN: &'static str = "person_token";
    /// Index: full name in lower case → people.
    pub const BY_NAME: &'static str = "person_name";
    /// Index: phone (national form) → people.
    pub const BY_PHONE: &'static str = "person_phone";
    /// Index: ID number → person.
    pub const BY_ID_NUMBER: &'static str = "person_id_number";
}

impl Record for Person {
    const KIND: &'static str = "person";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![(Person::BY_STATUS, self.status.as_str().to_owned())];
        for (index, value) in [
            (Person::BY_TOKEN, &self.declare_token),
            (Person::BY_NAME, &self.full_name.to_lowercase()),
            (Person::BY_PHONE, &self.phone),
            (Person::BY_ID_NUMBER, &self.id_number),
        ] {
            if !value.is_empty() {
                ix.push((index, value.clone()));
            }
        }
        ix
    }
}
