//! What the store and its series share below both: their error, and the write guard every write
//! passes first.

use std::sync::Arc;

use crate::{doc, record};

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database could not be opened at {path}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("the database failed")]
    Sled(#[from] sled::Error),
    #[error("the database could not be flushed to disk")]
    Flush(#[source] std::io::Error),
    #[error("document {doc_id} is corrupt")]
    CorruptDocument {
        doc_id: String,
        #[source]
        source: Box<automerge::AutomergeError>,
    },
    #[error("projection of {doc_id} does not match its record type")]
    CorruptProjection {
        doc_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("record {doc_id} could not be written")]
    Document {
        doc_id: String,
        #[source]
        source: doc::DocError,
    },
    #[error("a record could not be serialized")]
    Serialize(#[source] serde_json::Error),
    #[error("the store is shutting down")]
    Closed,
    #[error("a backup could not be written or read")]
    Backup(#[source] std::io::Error),
    #[error("the block of samples ending at {0} ms is corrupt")]
    CorruptBlock(i64),
    #[error("writes are refused: {0}")]
    DiskRefused(String),
    /// The PostgreSQL database (the province's, feature `postgres`) failed or was not reached.
    #[error("the database failed: {0}")]
    Database(String),
    #[error("document {doc_id} from the peer cannot be read")]
    Remote {
        doc_id: String,
        #[source]
        source: record::ProjectError,
    },
}

impl StoreError {
    /// Whether the disk refused the write (full, read-only, failing), not the data.
    pub fn is_disk(&self) -> bool {
        matches!(
            self,
            StoreError::Flush(_) | StoreError::DiskRefused(_) | StoreError::Sled(sled::Error::Io(_))
        )
    }
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Asked before every write, with whether it writes records (documents, samples) or only small
/// box-local keys (sessions, the audit log, the outbox's state): `Some(reason)` refuses it (the disk
/// is nearly full or read-only), so that sled never meets "no space left": an I/O error inside sled
/// stops all its writes until the process restarts, where a refusal ends as soon as space is freed.
pub type WriteGuard = Arc<dyn Fn(bool) -> Option<String> + Send + Sync>;

pub(crate) fn guarded(guard: Option<&WriteGuard>, records: bool) -> Result<()> {
    match guard.and_then(|g| g(records)) {
        Some(reason) => Err(StoreError::DiskRefused(reason)),
        None => Ok(()),
    }
}
