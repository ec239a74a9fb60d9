//! The box's link to the province [M14]: enrolment once, then an exchange every
//! `sync.interval_seconds` while the province answers, with exponential back-off and jitter while it
//! does not (up to `sync.max_backoff_seconds`). A site behind NAT only pushes; a site the province
//! can reach also answers its pulls on `sync.listen`, with the same batches, one exchange at a time
//! either way. Progress is on the health page: last success, last error, what is still to send,
//! bytes moved.
//!
//! The enrolment is kept in the data folder (`sync/link.json`, mode 0600): the province's address,
//! its CA, and this site's certificate and key.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use outpost_link::{
    exchange::{self, backoff, Exchanged, LinkLog},
    site::{self, SiteLink, SmsLink},
    tunnel,
};
use outpost_sync::{Store, WriteSet};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    app::lastlink,
    base::clock::{Clock, CorrectedClock},
};

pub use outpost_link::site::Enrolment;

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
    let bundle = site::enroll(province, token).await?;
    keep(data_dir, site_id, Enrolment { province: province.to_owned(), bundle })
}

/// `outpost enroll --from-file`: the enrolment a USB stick brought from the province
/// (`outpost-province site export`).
pub fn enroll_from_file(data_dir: &Path, site_id: &str, file: &Path) -> anyhow::Result<Enrolment> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let enrolment: Enrolment = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not an enrolment from `outpost-province site export`", file.display())
    })?;
    outpost_link::net::client_config(
        &enrolment.bundle.ca_pem,
        Some((&enrolment.bundle.cert_pem, &enrolment.bundle.key_pem)),
    )
    .context("the enrolment's certificate, key or CA is not usable")?;
    keep(data_dir, site_id, enrolment)
}

/// Keeps `enrolment` if it is this box's site's.
fn keep(data_dir: &Path, site_id: &str, enrolment: Enrolment) -> anyhow::Result<Enrolment> {
    anyhow::ensure!(
        enrolment.bundle.site_id == site_id,
        "the enrolment is for site {}, but this box is site {site_id} (site.id in its configuration)",
        enrolment.bundle.site_id
    );
    outpost_link::ca::write_private(&link_file(data_dir), &serde_json::to_vec_pretty(&enrolment)?)?;
    Ok(enrolment)
}

/// The link's progress, for the health page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub province: String,
    #[serde(flatten)]
    pub link: LinkLog,
    /// Documents from the province this box could not merge (set aside, see `Store::sync_refused`).
    pub refused: usize,
    /// When the box calls the province next (by the box's clock).
    pub next_attempt: Option<DateTime<Utc>>,
    /// Change-log positions past the province's acknowledged cursor (documents changed since, each
    /// counted once; merges from the province count too).
    pub pending: u64,
    /// How far the box has moved its clock to the province's since it started, in seconds.
    pub clock_corrected_seconds: i64,
}

impl SyncStatus {
    /// Takes in the outcome of an exchange begun at `now`, either way; takes the province's time if
    /// the box's clock is too far from it.
    fn record(&mut self, now: DateTime<Utc>, outcome: &anyhow::Result<Exchanged>, clock: &ClockFollower) {
        self.link.record(now, outcome.as_ref());
        if let Ok(Exchanged { peer_clock_ahead_ms: Some(ahead), peer_time_ms: Some(time), .. }) = outcome {
            clock.follow(*ahead, *time);
        }
        self.clock_corrected_seconds = clock.clock.offset_ms() / 1000;
    }

    /// Reads what is waiting and what was set aside from the store now (writes since the last
    /// exchange count at once).
    fn refresh(&mut self, store: &Store) {
        self.pending = store
            .get_local::<outpost_sync::protocol::PeerState>(exchange::PEER_KEY)
            .ok()
            .flatten()
            .map_or(store.last_seq(), |s| store.last_seq().saturating_sub(s.cursor));
        self.refused = store.sync_refused().map(|r| r.len()).unwrap_or(0);
    }
}

/// The link's progress as the health page and `/metrics` read it. Cheap to clone.
#[derive(Clone)]
pub struct LinkStatus {
    status: Arc<Mutex<SyncStatus>>,
    store: Store,
}

impl LinkStatus {
    /// The link's status as of now.
    pub fn current(&self) -> SyncStatus {
        let mut status = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        status.refresh(&self.store);
        status
    }

    fn record(&self, now: DateTime<Utc>, outcome: &anyhow::Result<Exchanged>, clock: &ClockFollower) {
        if let Ok(mut s) = self.status.lock() {
            s.record(now, outcome, clock);
        }
    }

    fn next_attempt(&self, at: DateTime<Utc>) {
        if let Ok(mut s) = self.status.lock() {
            s.next_attempt = Some(at);
        }
    }
}

/// The box's clock and how far from the province's it may stray (`sync.follow_province_clock_seconds`).
struct ClockFollower {
    clock: Arc<CorrectedClock>,
    limit: Option<Duration>,
}

impl ClockFollower {
    /// Moves the box's clock to the province's when an exchange shows it `ahead_ms` ahead, beyond
    /// the limit. A Raspberry Pi has no battery clock: after a power cut it starts from the time it
    /// last saved, and a site without internet has no NTP. The sync itself is ordered by change-log
    /// positions and hashes, never by time; this keeps the records' times, and so the daily reports'
    /// days, right from then on.
    fn follow(&self, ahead_ms: i64, province_ms: i64) {
        // A province whose own clock is implausible (before this software, or centuries ahead) is
        // not followed: a Pi starting in 1970 is corrected, a province set to 1970 corrects nobody.
        const PLAUSIBLE_MS: std::ops::Range<i64> = 1_704_067_200_000..4_102_444_800_000; // 2024 to 2100
        let Some(limit) = self.limit else { return };
        if ahead_ms.unsigned_abs() <= limit.as_millis() as u64 || !PLAUSIBLE_MS.contains(&province_ms) {
            return;
        }
        let before = self.clock.now();
        self.clock.follow(province_ms);
        tracing::warn!(
            from = %before.to_rfc3339(),
            to = %self.clock.now().to_rfc3339(),
            "The box's clock was {} minutes off the province's; it now keeps the province's time.",
            ahead_ms / 60_000
        );
    }
}

/// The box's end of the link: pushes to the province, and the server for its pulls.
pub struct Link {
    site: SiteLink,
    province: String,
    status: LinkStatus,
    clock: ClockFollower,
    interval: Duration,
    max_backoff: Duration,
}

impl Link {
    /// The link of an enrolled box over `store`, on the box's `clock`, with `[sync]`'s settings.
    pub fn new(
        store: Store,
        enrolment: Enrolment,
        clock: Arc<CorrectedClock>,
        config: &crate::base::config::SyncConfig,
    ) -> Link {
        let now = clock.clone();
        let site = SiteLink::new(store.clone(), enrolment.bundle).with_clock(Arc::new(move || now.now()));
        let status = SyncStatus { province: enrolment.province.clone(), ..Default::default() };
        Link {
            site,
            province: enrolment.province,
            status: LinkStatus { status: Arc::new(Mutex::new(status)), store },
            clock: ClockFollower { clock, limit: config.follow_province_clock },
            interval: config.interval,
            max_backoff: config.max_backoff,
        }
    }

    /// The link's progress, for the health page.
    pub fn status(&self) -> LinkStatus {
        self.status.clone()
    }

    /// The worker that keeps the site's trusted name current, served by `certs`.
    pub fn name_keeper(
        &self,
        certs: Arc<crate::platform::tls::Certs>,
        status: super::names::NameStatus,
        (clock, data_dir): (Arc<CorrectedClock>, std::path::PathBuf),
        dns_hosts: Option<(std::path::PathBuf, std::net::IpAddr)>,
    ) -> super::names::Keeper {
        super::names::Keeper {
            site: self.site.clone(),
            province: self.province.clone(),
            certs,
            data_dir,
            clock,
            every: self.interval,
            status,
            dns_hosts,
        }
    }

    /// Keeps the tunnel to the province's tunnel port `reach` open until `cancel`, with the site's
    /// certificate: phones from home come through it to `phones` (the web's HTTPS). Its state is
    /// for the health page.
    pub fn keep_tunnel(
        &self,
        reach: String,
        phones: tokio::sync::mpsc::Sender<tunnel::Phone>,
        tracker: &tokio_util::task::TaskTracker,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Arc<tunnel::SiteState>> {
        let b = &self.site.bundle;
        let tls = outpost_link::net::client_config(&b.ca_pem, Some((&b.cert_pem, &b.key_pem)))?;
        let state = Arc::new(tunnel::SiteState::default());
        let kept = tunnel::keep(reach, tls, phones, state.clone());
        let cancel = cancel.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = kept => {}
                () = cancel.cancelled() => {}
            }
        });
        Ok(state)
    }

    /// Answers the province's pulls on `listener` until `cancel`.
    pub async fn serve_pulls(self: Arc<Self>, listener: tokio::net::TcpListener, cancel: CancellationToken) {
        let link = self.clone();
        let on_pull: outpost_link::site::OnPull = Arc::new(move |outcome| {
            link.status.record(link.clock.clock.now(), outcome, &link.clock);
        });
        tokio::select! {
            _ = cancel.cancelled() => {}
            served = self.site.clone().serve_pulls(listener, on_pull) => {
                if let Err(error) = served {
                    tracing::error!(error = %format!("{error:#}"), "The province's pulls cannot be served.");
                }
            }
        }
    }

    /// Waits until the box's clock reaches `until`: real time on a real clock; on a manual clock
    /// (tests, demos) only as the clock is moved, so back-off is measured in the box's time, not the
    /// machine's. `false` if cancelled first.
    async fn wait_on_clock(&self, until: DateTime<Utc>, cancel: &CancellationToken) -> bool {
        let clock = &self.clock.clock;
        let mut until = until;
        let mut last = clock.now();
        loop {
            let now = clock.now();
            // A clock set back (an NTP or a hand correction) moves the deadline back with it.
            if now < last {
                until -= last - now;
            }
            last = now;
            let left = (until - now).to_std().unwrap_or(Duration::ZERO);
            if left.is_zero() {
                return true;
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(left.min(Duration::from_millis(250))) => {}
            }
        }
    }

    /// After an exchange that worked at `now`: keeps when (so the last link by SMS knows how long the
    /// link has been down, across restarts; written at most every 10 minutes), and asks the province
    /// for its number and this site's key for that SMS (once a day).
    async fn after_success(&self, now: DateTime<Utc>) {
        let store = &self.status.store;
        let mut w = WriteSet::new();
        let kept: Option<DateTime<Utc>> = store.get_local(lastlink::LAST_OK).ok().flatten();
        if kept.is_none_or(|k| now - k > chrono::Duration::minutes(10)) {
            let _ = w.put_local(lastlink::LAST_OK, &now);
        }
        let held: Option<(DateTime<Utc>, SmsLink)> = store.get_local(lastlink::SMS_LINK).ok().flatten();
        if held.is_none_or(|(at, _)| now - at > chrono::Duration::days(1)) {
            match self.site.sms_link(&self.province).await {
                Ok(Some(link)) => {
                    let _ = w.put_local(lastlink::SMS_LINK, &(now, link));
                }
                Ok(None) => {
                    w.delete_local(lastlink::SMS_LINK);
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "Cannot ask the province for its SMS number.")
                }
            }
        }
        if !w.is_empty() {
            if let Err(error) = store.commit(w).await {
                tracing::warn!(error = %format!("{error:#}"), "Cannot keep the link's state.");
            }
        }
    }

    /// Pushes to the province until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut failures = 0u32;
        // Exchanges in a row that moved documents: a document the province keeps setting aside would
        // otherwise come back every time, at once, for ever.
        let mut rounds_at_once = 0u32;
        loop {
            let now = self.clock.clock.now();
            let result = self.site.push(&self.province).await;
            if result.as_ref().is_err_and(exchange::is_busy) {
                // The province was pulling this box at that moment: try again in a second or three.
                let wait = Duration::from_millis(1000 + rand::random::<u64>() % 2000);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            self.status.record(now, &result, &self.clock);
            if result.is_ok() {
                failures = 0;
                self.after_success(now).await;
            }
            let moved_docs = matches!(&result, Ok(moved) if moved.sent_docs > 0 || moved.received_docs > 0);
            rounds_at_once = if moved_docs { rounds_at_once + 1 } else { 0 };
            if moved_docs && rounds_at_once <= MAX_ROUNDS_AT_ONCE {
                // More to send: go again at once, whatever the clock says.
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
            let wait = match &result {
                Ok(_) => {
                    rounds_at_once = 0;
                    self.interval
                }
                Err(error) => {
                    if failures == 0 {
                        tracing::warn!(error = %format!("{error:#}"), "The province cannot be reached; retrying with back-off.");
                    }
                    failures += 1;
                    backoff(self.interval, self.max_backoff, failures, rand::random::<f64>())
                }
            };
            let until = chrono::Duration::from_std(wait)
                .ok()
                .and_then(|d| self.clock.clock.now().checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.status.next_attempt(until);
            if !self.wait_on_clock(until, &cancel).await {
                return;
            }
        }
    }
}

/// Exchanges in a row without waiting for the interval (a 14-day backlog takes 3).
const MAX_ROUNDS_AT_ONCE: u32 = 50;
