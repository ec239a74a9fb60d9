//! The box's link to the province [M14]: enrolment once, then an exchange every
//! `sync.interval_seconds` while the province answers, with exponential back-off and jitter while it
//! does not (up to `sync.max_backoff_seconds`). A site behind NAT pushes; the same batches would
//! serve a province that pulls. Progress is on the health page: last success, last error, what is
//! still to send, bytes moved.
//!
//! The enrolment is kept in the data folder (`sync/link.json`, mode 0600): the province's address,
//! its CA, and this site's certificate and key.

use std::{path::Path, sync::Mutex, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use outpost_province::{ca::Bundle, link};
use serde::{Deserialize, Serialize};

use crate::app::Outpost;

/// What `outpost enroll` keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    /// `host:port` of the provincial server.
    pub province: String,
    pub bundle: Bundle,
}

fn link_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("sync").join("link.json")
}

/// The enrolment, if this box has one.
pub fn enrolment(data_dir: &Path) -> anyhow::Result<Option<Enrolment>> {
    match std::fs::read(link_file(data_dir)) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).context("sync/link.json is corrupt")?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `outpost enroll`: asks the province at `province` for this site's certificate with `token`, and
/// keeps it. The token names the site; it must be this box's `site.id`.
pub async fn enroll(
    data_dir: &Path,
    site_id: &str,
    province: &str,
    token: &str,
) -> anyhow::Result<Enrolment> {
    let bundle = link::enroll(province, token).await?;
    anyhow::ensure!(
        bundle.site_id == site_id,
        "the token is for site {}, but this box is site {site_id} (site.id in its configuration)",
        bundle.site_id
    );
    let enrolment = Enrolment { province: province.to_owned(), bundle };
    outpost_province::ca::write_private(&link_file(data_dir), &serde_json::to_vec_pretty(&enrolment)?)?;
    Ok(enrolment)
}

/// The link's progress, for the health page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub province: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub failures_in_a_row: u32,
    pub exchanges: u64,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// Documents from the province this box could not merge (set aside, see `Store::sync_refused`).
    pub refused: usize,
    /// Change-log positions past the province's acknowledged cursor (documents changed since, each
    /// counted once; merges from the province count too).
    pub pending: u64,
}

/// The delay before the next attempt after `failures` failures in a row: doubling from the interval
/// up to `max`, with ±25 % jitter so that sites do not all call back at once.
pub fn backoff(interval: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let base = interval.saturating_mul(1u32 << failures.min(16)).min(max);
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Runs the link until `cancel`.
pub async fn run(
    app: std::sync::Arc<Outpost>,
    enrolment: Enrolment,
    status: &Mutex<SyncStatus>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let interval = Duration::from_secs(app.config.raw.sync.interval_seconds.into());
    let max = Duration::from_secs(app.config.raw.sync.max_backoff_seconds.into());
    let mut failures = 0u32;
    loop {
        let now = app.now();
        let result = link::exchange(&app.store, &enrolment.bundle, &enrolment.province).await;
        let pending = app
            .store
            .get_local::<outpost_sync::protocol::PeerState>(link::PEER_KEY)
            .ok()
            .flatten()
            .map_or(app.store.last_seq(), |s| app.store.last_seq().saturating_sub(s.cursor));
        let refused = app.store.sync_refused().map(|r| r.len()).unwrap_or(0);
        if let Ok(mut s) = status.lock() {
            s.last_attempt = Some(now);
            s.pending = pending;
            s.refused = refused;
            match &result {
                Ok(moved) => {
                    s.last_success = Some(now);
                    s.last_error = None;
                    s.failures_in_a_row = 0;
                    s.exchanges += 1;
                    s.sent_bytes += moved.sent_bytes as u64;
                    s.received_bytes += moved.received_bytes as u64;
                }
                Err(error) => {
                    s.last_error = Some(format!("{error:#}"));
                    s.failures_in_a_row += 1;
                }
            }
        }
        if result.is_ok() {
            failures = 0;
        }
        let wait = match &result {
            // More to send: go again at once.
            Ok(moved) if moved.sent_docs > 0 || moved.received_docs > 0 => Duration::from_millis(200),
            Ok(_) => interval,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(error = %format!("{error:#}"), "The province cannot be reached; retrying with back-off.");
                }
                failures += 1;
                backoff(interval, max, failures, rand::random::<f64>())
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_the_cap_with_jitter() {
        let (i, max) = (Duration::from_secs(60), Duration::from_secs(1800));
        assert_eq!(backoff(i, max, 1, 0.5), Duration::from_secs(120));
        assert_eq!(backoff(i, max, 3, 0.5), Duration::from_secs(480));
        assert_eq!(backoff(i, max, 30, 0.5), max);
        assert_eq!(backoff(i, max, 1, 0.0), Duration::from_secs(90));
        assert_eq!(backoff(i, max, 1, 1.0), Duration::from_secs(150));
    }
}
