//! The audit log [M13]: who did what, when, including every view of an identity number. Entries are
//! box-local (`x/audit/<id>`) and written in the same atomic write as the change they describe.

use chrono::{DateTime, Utc};
use outpost_sync::{Store, StoreError, WriteSet};
use serde::{Deserialize, Serialize};

/// Every action the log records (shown through the keys `act.<action>`).
pub const ACTIONS: [&str; 36] = [
    "alert.acknowledge",
    "alert.acknowledge_group",
    "alert.resolve",
    "backup.download",
    "band.hand_over",
    "band.register",
    "band.state",
    "declaration.enter",
    "followup.save",
    "login",
    "mqtt.credential",
    "person.create",
    "person.export",
    "person.geofence",
    "person.import",
    "person.purge",
    "person.search_id_number",
    "person.status",
    "person.update",
    "person.view_id_number",
    "report.confirm",
    "sample.import",
    "sample.record",
    "sample.result",
    "scanner.forget",
    "setup.admin",
    "sms.custom",
    "sms.link",
    "spotcheck.request",
    "spotcheck.review",
    "stick.backup",
    "stick.update",
    "user.api_token",
    "user.api_token_revoke",
    "user.create",
    "user.update",
];

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

#[cfg(test)]
mod tests {
    /// Every action the code records is one of [`super::ACTIONS`] (so the log shows it in words).
    #[test]
    fn every_action_recorded_is_listed() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(&path).expect("source"));
                }
            }
        }
        let mut texts = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut texts);
        let mut found = 0;
        for text in &texts {
            for (at, m) in text.match_indices(".audit(&mut w, ") {
                // The second argument (who), then the action.
                let rest = &text[at + m.len()..];
                let after_by = match rest.strip_prefix('"') {
                    Some(literal) => literal.split_once('"').map_or("", |(_, r)| r),
                    None => rest,
                };
                let Some((_, action)) = after_by.split_once(", \"") else { continue };
                let action = action.split('"').next().unwrap_or("");
                if action.is_empty() || !action.chars().all(|c| c.is_ascii_lowercase() || "._".contains(c)) {
                    continue; // not a call (this test's own text)
                }
                assert!(super::ACTIONS.contains(&action), "audit action {action} is not in ACTIONS");
                found += 1;
            }
        }
        assert!(found > 25, "only {found} audited actions found: the scan no longer reads the code");
    }
}
