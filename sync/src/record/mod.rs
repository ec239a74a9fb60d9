//! The record types a box keeps, one Automerge document each.
//!
//! Every record names its document id (`<kind>/<id>`) and the index entries the UI queries need. Fields
//! are plain values so that two sites editing different fields of one record merge field by field. This
//! module holds data and its invariants only: no storage, no clock, no rules about when alerts fire.
//!
//! One file per domain, each record beside the names of the indexes it writes (`Person::BY_TOKEN`,
//! …), which the queries use too: [`site`], [`person`], [`declaration`], [`alert`], [`user`],
//! [`followup`], [`sampling`], [`report`], [`band`] (bands and presence), [`exposure`],
//! [`location`], [`spotcheck`].

pub mod alert;
pub mod band;
pub mod declaration;
pub mod exposure;
pub mod followup;
pub mod location;
pub mod person;
pub mod report;
pub mod sampling;
pub mod site;
pub mod spotcheck;
pub mod user;

pub use alert::{Alert, AlertKind, AlertState, Severity};
pub use band::{Band, BandChange, BandState, PresenceDay, PresenceInterval};
pub use declaration::{slot_key, Channel, Declaration, Symptom};
pub use exposure::{Contact, Exposure};
pub use followup::FollowUp;
pub use location::{Geofence, LocationDay};
pub use person::{Category, Gender, Person, PersonDetails, PersonStatus, StatusChange};
pub use report::{ZoneDay, ZoneReport};
pub use sampling::{Sample, TestResult};
pub use site::Site;

/// Lower-case, Vietnamese diacritics removed (đ → d), spaces collapsed: for matching names, headers,
/// values and searches however they were typed (with or without accents, NFC or NFD).
pub fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let stripped: String = s
        .nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}
pub use spotcheck::{SpotCheck, SpotCheckState, SpotReview};
pub use user::{Role, User};

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

/// A record stored as its own Automerge document.
pub trait Record: Serialize + DeserializeOwned {
    /// The document kind, the first part of the document id (`person`, `alert`, …).
    const KIND: &'static str;

    /// This record's id, unique within its kind.
    fn id(&self) -> String;

    /// The secondary index entries for this record: `(index name, value)`. Values sort as strings.
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The full document id, `<kind>/<id>`.
    fn doc_id(&self) -> String {
        doc_id::<Self>(&self.id())
    }
}

/// The document id of record `id` of kind `R`.
pub fn doc_id<R: Record>(id: &str) -> String {
    format!("{}/{}", R::KIND, id)
}

/// Why a merged document could not be read as its record type.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("unknown document kind {0:?}")]
    UnknownKind(String),
    #[error("the merged document is not a valid {kind}: {source}")]
    Invalid {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A record's projection (its value as stored JSON) and index entries.
pub type Projection = (Vec<u8>, Vec<(&'static str, String)>);

/// Reads the merged `value` of a document of `kind` (one that arrived from a peer) as its record type:
/// the projection and index entries a local write of that record would have. Every replicated kind
/// is listed here.
pub fn project(kind: &str, value: serde_json::Value) -> Result<Projection, ProjectError> {
    fn as_record<R: Record>(value: serde_json::Value) -> Result<Projection, ProjectError> {
        let record: R = serde_json::from_value(value)
            .map_err(|source| ProjectError::Invalid { kind: R::KIND, source })?;
        // As a local write stores it (`WriteSet::put`): through a JSON value.
        let bytes = serde_json::to_value(&record)
            .and_then(|v| serde_json::to_vec(&v))
            .map_err(|source| ProjectError::Invalid { kind: R::KIND, source })?;
        Ok((bytes, record.index_entries()))
    }
    match kind {
        Site::KIND => as_record::<Site>(value),
        Person::KIND => as_record::<Person>(value),
        Declaration::KIND => as_record::<Declaration>(value),
        Alert::KIND => as_record::<Alert>(value),
        User::KIND => as_record::<User>(value),
        FollowUp::KIND => as_record::<FollowUp>(value),
        Band::KIND => as_record::<Band>(value),
        PresenceDay::KIND => as_record::<PresenceDay>(value),
        Sample::KIND => as_record::<Sample>(value),
        ZoneReport::KIND => as_record::<ZoneReport>(value),
        LocationDay::KIND => as_record::<LocationDay>(value),
        SpotCheck::KIND => as_record::<SpotCheck>(value),
        Exposure::KIND => as_record::<Exposure>(value),
        other => Err(ProjectError::UnknownKind(other.to_owned())),
    }
}

/// A key for an entry made at `at` in a log kept as a map keyed by time (a band's history, a day's
/// presence intervals): RFC 3339 with microseconds, so keys sort by time, and made unique with `+`
/// when two entries share an instant.
pub fn time_key<V>(log: &std::collections::BTreeMap<String, V>, at: DateTime<Utc>) -> String {
    let mut key = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    while log.contains_key(&key) {
        key.push('+');
    }
    key
}

/// The time of an entry's key made by [`time_key`].
pub fn key_time(key: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(key.trim_end_matches('+')).ok().map(|t| t.with_timezone(&Utc))
}
