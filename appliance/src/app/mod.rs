//! The box's operations: what staff, quarantined people and the box's own workers do to its data.
//!
//! [`Outpost`] is the façade of operations, `impl Outpost` split by domain, one file each (the web
//! layer has a file of the same name for the same domain): [`people`] with the district lists in
//! [`csv`], [`declarations`], [`alerts`], [`schedule`] (the scheduler's pass: reminders, missing
//! declarations, escalations), [`followup`], [`dashboard`], the SMS in [`outbox`], [`inbox`],
//! [`templates`] and [`messages`], [`bands`] and [`presence`], [`location`], [`spotcheck`],
//! [`sampling`], [`checkin`], [`reports`] with [`xlsx`], [`accounts`], [`mqtt`] (device
//! credentials), [`privacy`] (erasure, each domain erasing its own keys) and [`system`] (the site
//! record, storage figures, backups).
//!
//! Each operation validates its input, builds one `WriteSet` (records, outbox messages, audit
//! entries and markers together) and commits it, so a request either happens whole or not at all,
//! and is acknowledged only once durable. The decisions come from [`crate::base::rules`]; this layer
//! does the IO around them. It knows nothing of HTTP, and holds no worker: it tells the workers
//! what they must know through the [`Wiring`] made before they start. Each domain owns its record
//! types' index names and its box-local keys; no other domain spells them.

pub mod accounts;
pub mod alerts;
pub mod bands;
pub mod checkin;
pub mod csv;
pub mod dashboard;
pub mod declarations;
pub mod exposure;
pub mod followup;
pub mod inbox;
pub mod lastlink;
pub mod location;
pub mod messages;
pub mod mqtt;
pub mod outbox;
pub mod people;
pub mod presence;
pub mod privacy;
pub mod reports;
pub mod sampling;
pub mod scanners;
pub mod schedule;
pub mod spotcheck;
pub mod system;
pub mod templates;
pub mod xlsx;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use outpost_sync::{store::Applied, Store, StoreError, WriteSet};
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use crate::base::{audit, clock::Clock, config::Config, rules::Schedule, validate::Problem};

/// Something staff browsers should know about at once (sent as server-sent events).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub id: String,
}

/// An operation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Vec<Problem>),
    #[error("conflict")]
    Conflict(Problem),
    /// Too many failed logins for the account or the address, until then.
    #[error("locked until {0}")]
    /// Until when, in the site's time.
    Locked(DateTime<chrono::FixedOffset>),
    /// Too many password checks wait in the hashing pool: try again in a moment.
    #[error("busy")]
    Busy,
    /// A public endpoint's rate limit: too many requests from this address or link for now.
    #[error("too many requests")]
    TooMany,
    #[error("the store failed")]
    Store(#[from] StoreError),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// One problem with one field.
    pub fn invalid(field: &str, vi: impl Into<String>, en: impl Into<String>) -> AppError {
        AppError::Invalid(vec![Problem::new(field, vi, en)])
    }
}

/// What the operations tell the box's workers, through channels made before the workers start.
#[derive(Clone, Default)]
pub struct Wiring {
    /// Wakes the outbox worker when a message is queued.
    pub outbox: Arc<Notify>,
    /// Tells the presence worker that the band pool changed (none: no presence worker).
    pub pool: Option<Arc<dyn Fn(bands::PoolNotice) + Send + Sync>>,
}

impl std::fmt::Debug for Wiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wiring").field("pool", &self.pool.is_some()).finish_non_exhaustive()
    }
}

/// The box's operations over its store, configuration and clock. Its fields are private to this
/// layer: the web and the workers call operations and read models only.
pub struct Outpost {
    store: Store,
    config: Config,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<Event>,
    wiring: Wiring,
    /// One sampling or result write at a time: each reads what is recorded before it decides.
    sampling_turn: tokio::sync::Mutex<()>,
    /// Login attempts per account and per address, counted before the password is checked.
    throttle: outpost_sync::secret::Throttle,
    /// One account creation at a time (the setup link, a new user): each checks what exists and
    /// writes in one turn, so parallel requests cannot both pass the check. The store is this
    /// process's alone (sled locks its folder), so a lock in the process makes the turn atomic.
    accounts_turn: tokio::sync::Mutex<()>,
    /// Where phones reach the box, for links in SMS and QR codes: `web.public_url`, or, when that
    /// is not set, the site's trusted name once the box serves it.
    public_url: std::sync::RwLock<String>,
    /// How long the modem takes a message, as the outbox worker measures it.
    sms_pace: outbox::Pace,
    /// One outbox worker (one per modem) chooses its next message at a time.
    outbox_turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Outpost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outpost").field("site", &self.config.site.id).finish_non_exhaustive()
    }
}

impl Outpost {
    /// The operations on `store` with no worker listening (tests, benchmarks, tools).
    pub fn new(store: Store, config: Config, clock: Arc<dyn Clock>) -> Arc<Outpost> {
        Outpost::wired(store, config, clock, Wiring::default())
    }

    /// The operations of a running box: `wiring` reaches its workers.
    pub fn wired(store: Store, config: Config, clock: Arc<dyn Clock>, wiring: Wiring) -> Arc<Outpost> {
        let (events, _) = broadcast::channel(256);
        let throttle = outpost_sync::secret::Throttle::new(
            outpost_sync::secret::Limits::from_attempts(config.web.login_attempts),
            config.web.login_lockout,
        );
        let public_url = std::sync::RwLock::new(config.web.public_url.clone());
        Arc::new(Outpost {
            public_url,
            store,
            config,
            clock,
            events,
            wiring,
            sampling_turn: tokio::sync::Mutex::new(()),
            throttle,
            accounts_turn: tokio::sync::Mutex::new(()),
            sms_pace: outbox::Pace::default(),
            outbox_turn: tokio::sync::Mutex::new(()),
        })
    }

    /// The configuration the box runs with (read-only).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where phones reach the box (no trailing `/`), for the links the box sends.
    pub fn public_url(&self) -> String {
        self.public_url.read().map(|u| u.clone()).unwrap_or_else(|_| self.config.web.public_url.clone())
    }

    /// Links name the site's trusted `name` from now on (`https://name`, with `port` unless 443),
    /// unless `web.public_url` says otherwise.
    pub fn reached_as(&self, name: &str, port: u16) {
        if self.config.web.public_url_given {
            return;
        }
        let url = if port == 443 { format!("https://{name}") } else { format!("https://{name}:{port}") };
        if let Ok(mut u) = self.public_url.write() {
            if *u != url {
                tracing::info!(public_url = %url, "Links in SMS and QR codes now use the site's name.");
                *u = url;
            }
        }
    }

    /// When declarations are due, and the site's local time.
    pub fn schedule(&self) -> &Schedule {
        &self.config.schedule
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today's date at the site.
    pub fn today(&self) -> NaiveDate {
        self.config.schedule.local(self.now()).date()
    }

    /// What happens from now on, for staff browsers.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn emit(&self, kind: &'static str, id: impl Into<String>) {
        let _ = self.events.send(Event { kind, id: id.into() });
    }

    /// Wakes the outbox worker: a message was queued.
    pub(crate) fn wake_outbox(&self) {
        self.wiring.outbox.notify_one();
    }

    async fn commit(&self, writes: WriteSet) -> AppResult<Applied> {
        Ok(self.store.commit(writes).await?)
    }

    /// [`Outpost::commit`] for callers on a thread of their own (the presence thread, the modem's).
    fn commit_blocking(&self, writes: WriteSet) -> AppResult<Applied> {
        Ok(self.store.commit_blocking(writes)?)
    }

    /// Adds an audit entry to `w`, stamped now.
    fn audit(&self, w: &mut WriteSet, by: &str, action: &str, target: &str, detail: &str) -> AppResult<()> {
        Ok(audit::record(w, &self.store, self.now(), by, action, target, detail)?)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A box's operations on a temporary store and a manual clock, for the unit tests of each domain.

    use std::sync::Arc;

    use outpost_sync::{Store, StoreConfig};

    use super::Outpost;
    use crate::base::{
        clock::ManualClock,
        config::{Config, RawConfig},
    };

    /// Operations on a fresh store under `dir` at `start`, with `config_toml` over the defaults
    /// (and `dir` as the data folder).
    pub fn outpost(
        dir: &tempfile::TempDir,
        start: &str,
        config_toml: &str,
    ) -> (Arc<Outpost>, Arc<ManualClock>, Store) {
        let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
        let start = chrono::DateTime::parse_from_rfc3339(start).expect("time").to_utc();
        let clock = ManualClock::new(start);
        let mut raw = RawConfig::from_toml(config_toml).expect("config");
        raw.store.data_dir = dir.path().to_owned();
        let config = Config::validate(raw).expect("config");
        (Outpost::new(store.clone(), config, clock.clone()), clock, store)
    }
}
