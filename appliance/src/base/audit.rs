//! The audit log [M13]: who did what, when, including every view of an identity number. Entries are
//! box-local (`x/audit/<id>`) and written in the same atomic write as the change they describe.

use chrono::{DateTime, Utc};
use outpost_sync::{Store, StoreError, WriteSet};
use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub user: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Adds an entry to `w`.
pub fn record(
    w: &mut WriteSet,
    store: &Store,
    at: DateTime<Utc>,
    user: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let id = store.next_id()?;
    let entry = AuditEntry {
        at,
        user: user.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
    };
    w.put_local(&format!("audit/{id:020}"), &entry)?;
    Ok(())
}

/// The newest entries first, at most `limit`.
pub fn recent(store: &Store, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(store
        .scan_local_range::<AuditEntry>("audit/", None, limit, true)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}
