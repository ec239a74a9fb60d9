//! `outpost-sync` — the data a quarantine site keeps and replicates.
//!
//! Layout:
//! - [`record`]: the record types (site, person, declaration, alert, user, daily follow-up) and the
//!   [`record::Record`] trait that names each one's document id and indexes.
//! - [`doc`]: the mapping between a record's JSON value and an Automerge document, field by field, so
//!   concurrent edits to different fields of one record merge.
//! - [`store`]: many small Automerge documents in sled, a projection beside each for reads, secondary
//!   indexes, a change log (sequence → document) for sync, box-local keys that never replicate, and group
//!   commit: a write is acknowledged only after a flush that covers it.
//! - `pg` (feature `postgres`, the province only): the same documents, projections, indexes,
//!   change log and peer state for every site in one PostgreSQL database.
//! - [`series`]: box-local time series (raw sightings, positions, photos), single entries or deflated
//!   blocks; [`error`]: the error and write guard the store and its series share.
//!
//! - [`protocol`]: the sync batch protocol, sans-IO: batches of changes for many documents per round
//!   trip, acknowledged heads and a resumable cursor per peer, a bounded, versioned wire format.
//!
//! - [`report`]: the zone daily report's figures, computed from the records.
//! - [`secret`]: Argon2id password hashes.
//!
//! This crate does no network IO and reads no clock: times are passed in by the caller.

pub mod doc;
pub mod error;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod protocol;
pub mod record;
pub mod report;
pub mod secret;
pub mod series;
pub mod store;

pub use record::Record;
pub use series::{Sample, Series};
pub use store::{Store, StoreConfig, StoreError, WriteSet};
