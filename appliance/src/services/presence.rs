//! The band side of the box [M3]: one thread owns the presence engine and turns sightings into facts.
//!
//! Every source — the MQTT subscriber (site gateways), the box's own adapter, the site simulator —
//! sends [`Sighting`]s through a [`Sink`] into a bounded channel. The `presence` thread:
//! - feeds the engine with the sightings of registered bands; other bands are counted in a bounded
//!   list of unknown bands (listable, never alerted on, and where "register by scanning" looks);
//! - keeps raw sightings in a bounded time-series (at most one per band and scanner every
//!   `bands.sample_seconds`, pruned after `bands.retention_hours`), never in a CRDT document,
//!   through a writer thread of their own so that the engine never waits for the SD card; the
//!   writer holds them in memory and writes them as one compressed block every
//!   `bands.sample_write_seconds` (the raw samples a power cut may lose; nothing acknowledged);
//! - once a second (and on every scheduler pass) asks the engine who is now unseen or away;
//! - for a band worn by a person, hands the engine's events to the operations
//!   (`crate::app::presence`), which write the replicated facts: presence intervals and alerts.
//!
//! The operations tell the thread when the band pool changes ([`PoolNotice`]) through the same
//! channel, made before the thread starts ([`channel`]). All writes of presence records happen on
//! this thread, so they never race each other.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
        Arc, Mutex,
    },
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use outpost_ble::{
    presence::{Engine, PresenceEvent, State},
    scanners::{Change, Health, Report, Scanner, Scanners},
    Sighting,
};
use outpost_sync::{record::BandState, Sample, Series};
use serde::{Deserialize, Serialize};

use crate::app::{
    bands::{PoolNotice, Reading},
    presence::{event_band, PresenceFact},
    AppResult, Outpost,
};

/// Sightings waiting for the presence thread. A burst larger than this is dropped and counted.
const QUEUE: usize = 65_536;
/// Unknown bands remembered (the least recently seen are forgotten first).
const MAX_UNKNOWN: usize = 500;

/// What the presence thread is asked to do.
pub enum Input {
    Sighting(Sighting),
    /// Decide absence now; answers with the number of events.
    Tick(DateTime<Utc>, Option<tokio::sync::oneshot::Sender<usize>>),
    /// The operations changed the band pool.
    Pool(PoolNotice),
    /// A scanner said something about itself (its status, telemetry; the adapter failing).
    Scanner {
        scanner: String,
        report: Report,
        at: DateTime<Utc>,
    },
    /// A scanner taken away from the site: no longer watched.
    Forget(String),
    Stop,
}

/// The presence thread's queue, made before the thread and the operations that tell it things.
#[derive(Clone)]
pub struct Inputs(SyncSender<Input>);

impl Inputs {
    /// How the operations tell the thread about the pool (see `crate::app::Wiring`).
    pub fn pool_notices(&self) -> Arc<dyn Fn(PoolNotice) + Send + Sync> {
        let tx = self.0.clone();
        Arc::new(move |notice| {
            let _ = tx.send(Input::Pool(notice));
        })
    }
}

/// The presence thread's queue: its sending end and the thread's end.
pub fn channel() -> (Inputs, Receiver<Input>) {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    (Inputs(tx), rx)
}

/// Where sources send sightings. Cheap to clone; never blocks: when the presence thread is behind by
/// a whole queue, sightings are dropped and counted.
#[derive(Clone)]
pub struct Sink {
    tx: SyncSender<Input>,
    stats: Arc<Mutex<Stats>>,
}

impl Sink {
    pub fn send(&self, sighting: Sighting) {
        self.input(Input::Sighting(sighting));
    }

    /// What a scanner said about itself.
    pub fn report(&self, scanner: String, report: Report, at: DateTime<Utc>) {
        self.input(Input::Scanner { scanner, report, at });
    }

    fn input(&self, input: Input) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(input) {
            if let Ok(mut s) = self.stats.lock() {
                s.dropped += 1;
            }
        }
    }
}

/// A band seen by a scanner but not in the pool.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownBand {
    pub band: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub sightings: u64,
    pub scanner: String,
    pub rssi: i16,
    pub battery_percent: Option<u8>,
    pub strap_closed: Option<bool>,
    /// The last sighting itself, replayed into the engine when the band is registered.
    #[serde(skip)]
    last: Option<Sighting>,
}

/// Counters for the health page, `/metrics` and the API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Sightings taken by the thread (of any band).
    pub sightings: u64,
    /// Sightings (and scanners' reports) dropped because the thread was behind.
    pub dropped: u64,
    /// Presence events acted on (bands worn by people).
    pub events: u64,
    /// Raw sightings written to the time-series.
    pub samples: u64,
    /// Raw sightings held in memory, to be written with the next block.
    pub samples_unwritten: u64,
    /// Blocks of raw sightings written, and their bytes (compressed).
    pub sample_blocks: u64,
    pub sample_bytes: u64,
    /// Raw sightings not kept because the disk was behind (the engine never waits for it).
    pub samples_dropped: u64,
    #[serde(skip)]
    pub unknown: HashMap<String, UnknownBand>,
}

/// One raw sighting as kept in the time-series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSighting {
    pub at: DateTime<Utc>,
    pub scanner: String,
    pub rssi: i16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strap_closed: Option<bool>,
}

/// Called with every sighting the engine took (for diagnostics and the broker benchmark).
pub type Tap = Box<dyn Fn(&Sighting) + Send + Sync>;

/// The running presence thread: the handle the scheduler, the sources and the band pages hold.
/// Cheap to clone.
#[derive(Clone)]
pub struct PresenceView(Arc<Shared>);

struct Shared {
    tx: SyncSender<Input>,
    tap: Arc<std::sync::OnceLock<Tap>>,
    engine: Arc<Mutex<Engine>>,
    scanners: Arc<Mutex<Scanners>>,
    stats: Arc<Mutex<Stats>>,
    series: Series,
    unwritten: Unwritten,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PresenceView {
    /// Starts the presence thread for `app` on the queue made by [`channel`]; raw sightings go to
    /// `series`.
    pub fn start(
        app: Arc<Outpost>,
        series: Series,
        (inputs, rx): (Inputs, Receiver<Input>),
    ) -> anyhow::Result<PresenceView> {
        let engine = Arc::new(Mutex::new(Engine::new(app.config().bands.presence.clone())));
        let scanners = Arc::new(Mutex::new(Scanners::new(app.config().bands.scanner_silent_after)));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let tap: Arc<std::sync::OnceLock<Tap>> = Arc::new(std::sync::OnceLock::new());
        let (samples_tx, samples_rx) = mpsc::sync_channel(SAMPLE_BATCHES);
        let unwritten = Unwritten::default();
        let writer = {
            let writer = SampleWriter {
                series: series.clone(),
                stats: stats.clone(),
                unwritten: unwritten.clone(),
                every: app.config().bands.sample_write_every,
            };
            std::thread::Builder::new()
                .name("presence-samples".into())
                .spawn(move || writer.run(&samples_rx))?
        };
        let worker = Worker {
            tap: tap.clone(),
            app,
            engine: engine.clone(),
            scanners: scanners.clone(),
            stats: stats.clone(),
            samples: Some((samples_tx, writer)),
            registered: HashSet::new(),
            worn: HashMap::new(),
            stored: HashMap::new(),
            pending: Vec::new(),
            down: HashMap::new(),
            today: None,
            last_prune: None,
        };
        let thread = std::thread::Builder::new().name("presence".into()).spawn(move || worker.run(&rx))?;
        let shared = Shared {
            tx: inputs.0,
            tap,
            engine,
            scanners,
            stats,
            series,
            unwritten,
            thread: Mutex::new(Some(thread)),
        };
        Ok(PresenceView(Arc::new(shared)))
    }

    /// Sets the function called with every sighting of a pool band once the engine has taken it
    /// (once; later calls are ignored).
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.0.tap.set(tap);
    }

    pub fn sink(&self) -> Sink {
        Sink { tx: self.0.tx.clone(), stats: self.0.stats.clone() }
    }

    /// Asks the thread to decide absence at `now`; returns how many events it acted on.
    pub async fn tick(&self, now: DateTime<Utc>) -> usize {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.0.tx.send(Input::Tick(now, Some(reply))).is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// The last reading of `band`, wherever it is known.
    pub fn reading(&self, band: &str) -> Option<Reading> {
        // Both read under the engine's lock, taken first as the thread does when a band moves from
        // the unknown list into the engine: it is always in one or the other.
        let engine = self.0.engine.lock().ok();
        let from_engine = engine
            .as_ref()
            .and_then(|e| e.get(band))
            .filter(|p| p.battery_percent.is_some() || p.place.is_some())
            .map(|p| Reading { last_seen: p.last_seen, battery_percent: p.battery_percent });
        let from_unknown = self.0.stats.lock().ok().and_then(|s| {
            s.unknown
                .get(band)
                .map(|u| Reading { last_seen: u.last_seen, battery_percent: u.battery_percent })
        });
        match (from_engine, from_unknown) {
            (Some(a), Some(b)) => Some(if a.last_seen >= b.last_seen { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// The presence of one band.
    pub fn band(&self, band: &str) -> Option<outpost_ble::presence::Presence> {
        self.0.engine.lock().ok().and_then(|e| e.get(band))
    }

    /// Every scanner the box knows, by name.
    pub fn scanners(&self) -> Vec<Scanner> {
        self.0.scanners.lock().map(|s| s.list()).unwrap_or_default()
    }

    /// Stops watching a scanner taken away from the site (once the operations have forgotten it).
    pub fn forget(&self, scanner: &str) {
        let _ = self.0.tx.send(Input::Forget(scanner.to_owned()));
    }

    pub fn snapshot(&self) -> Vec<outpost_ble::presence::Presence> {
        self.0.engine.lock().map(|e| e.snapshot()).unwrap_or_default()
    }

    /// Bands seen but not in the pool, most recently seen first.
    pub fn unknown(&self) -> Vec<UnknownBand> {
        let mut list: Vec<UnknownBand> =
            self.0.stats.lock().map(|s| s.unknown.values().cloned().collect()).unwrap_or_default();
        list.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.band.cmp(&b.band)));
        list
    }

    pub fn stats(&self) -> Stats {
        self.0.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Raw sightings of `band` since `since`, oldest first: those written and those still held.
    pub fn sightings(&self, band: &str, since: DateTime<Utc>, limit: usize) -> Vec<StoredSighting> {
        let from = since.timestamp_millis();
        let mut samples = self.0.series.range(from, i64::MAX, Some(band), limit).unwrap_or_default();
        if let Ok(held) = self.0.unwritten.lock() {
            samples.extend(held.iter().filter(|s| s.name == band && s.at_ms >= from).cloned());
        }
        samples.sort_by_key(|s| s.at_ms);
        samples.truncate(limit);
        samples.into_iter().filter_map(|s| serde_json::from_slice(&s.value).ok()).collect()
    }

    /// Stops the thread after it has written what it holds.
    pub fn stop(&self) {
        let _ = self.0.tx.send(Input::Stop);
        if let Some(t) = self.0.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// Batches of raw samples queued for the writer (up to 1,000 each).
const SAMPLE_BATCHES: usize = 32;
/// The most raw samples held in memory (about 15 MB; 25 minutes of 2,000 bands heard by two
/// gateways at one sample a minute): past it, the block is written early, and while the disk
/// refuses writes the oldest are dropped and counted.
const MAX_UNWRITTEN: usize = 100_000;

/// Raw samples taken but not yet written: the writer's buffer, which the band pages also read.
type Unwritten = Arc<Mutex<Vec<Sample>>>;

/// Work for the sample writer thread.
enum SampleJob {
    Insert(Vec<Sample>),
    PruneBefore(i64),
}

/// The sample writer: holds raw sightings and writes them to the time-series as one block every
/// `every` (of the box's clock or of real time, whichever comes first, or when it holds
/// [`MAX_UNWRITTEN`]), prunes old ones, off the presence thread, and writes what it holds when its
/// queue is closed.
struct SampleWriter {
    series: Series,
    stats: Arc<Mutex<Stats>>,
    unwritten: Unwritten,
    every: Duration,
}

impl SampleWriter {
    fn run(&self, jobs: &Receiver<SampleJob>) {
        let every = self.every.to_std().unwrap_or(StdDuration::from_secs(300));
        let mut held_since: Option<Instant> = None;
        loop {
            match jobs.recv_timeout(StdDuration::from_secs(1)) {
                Ok(SampleJob::Insert(samples)) => {
                    held_since.get_or_insert_with(Instant::now);
                    if let Ok(mut held) = self.unwritten.lock() {
                        held.extend(samples);
                    }
                }
                Ok(SampleJob::PruneBefore(ms)) => match self.series.prune_before(ms) {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "Old sightings pruned."),
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "Cannot prune old sightings."),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.write_block();
                    return;
                }
            }
            let (span, held) = self.held_span();
            if let Ok(mut s) = self.stats.lock() {
                s.samples_unwritten = held as u64;
            }
            let due = held_since.is_some_and(|t| t.elapsed() >= every)
                || span >= self.every
                || held >= MAX_UNWRITTEN;
            if due && self.write_block() {
                held_since = None;
            }
        }
    }

    /// How long the held samples span on the box's clock, and how many there are.
    fn held_span(&self) -> (Duration, usize) {
        let Ok(held) = self.unwritten.lock() else { return (Duration::zero(), 0) };
        let span = match (held.iter().map(|s| s.at_ms).min(), held.iter().map(|s| s.at_ms).max()) {
            (Some(a), Some(b)) => Duration::milliseconds(b - a),
            _ => Duration::zero(),
        };
        (span, held.len())
    }

    /// Writes what is held as one block; whether it could. While the disk refuses, the oldest
    /// samples past [`MAX_UNWRITTEN`] are dropped and counted.
    fn write_block(&self) -> bool {
        let Ok(mut held) = self.unwritten.lock() else { return false };
        if held.is_empty() {
            return true;
        }
        let n = held.len() as u64;
        let written = self.series.append_block(&held);
        let mut dropped = 0;
        match &written {
            Ok(_) => held.clear(),
            Err(error) => {
                tracing::error!(%error, "Cannot keep sightings.");
                dropped = held.len().saturating_sub(MAX_UNWRITTEN);
                held.drain(..dropped);
            }
        }
        let left = held.len() as u64;
        drop(held);
        if let Ok(mut s) = self.stats.lock() {
            if let Ok(bytes) = written {
                s.samples += n;
                s.sample_blocks += 1;
                s.sample_bytes += bytes as u64;
            }
            s.samples_dropped += dropped as u64;
            s.samples_unwritten = left;
        }
        written.is_ok()
    }
}

struct Worker {
    app: Arc<Outpost>,
    tap: Arc<std::sync::OnceLock<Tap>>,
    engine: Arc<Mutex<Engine>>,
    scanners: Arc<Mutex<Scanners>>,
    stats: Arc<Mutex<Stats>>,
    /// The sample writer's queue and thread, until the worker stops.
    samples: Option<(SyncSender<SampleJob>, std::thread::JoinHandle<()>)>,
    /// Bands in the pool.
    registered: HashSet<String>,
    /// Band → the person wearing it.
    worn: HashMap<String, String>,
    /// When a sample was last kept, per band and scanner.
    stored: HashMap<(String, String), DateTime<Utc>>,
    /// Samples not yet written.
    pending: Vec<Sample>,
    /// Scanners down whose alert waits `app::scanners::ALERT_AFTER`, with the worn bands they
    /// watched.
    down: HashMap<String, (Change, usize)>,
    /// The site-local day of the last pass, to carry open intervals over midnight.
    today: Option<NaiveDate>,
    last_prune: Option<DateTime<Utc>>,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Input>) {
        if let Err(error) = self.reload(true) {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot read the band pool.");
        }
        let mut last_pass = Instant::now();
        loop {
            let input = rx.recv_timeout(StdDuration::from_millis(250));
            let mut reply = None;
            let mut tick_at = None;
            match input {
                Ok(Input::Sighting(s)) => self.observe(&s),
                Ok(Input::Tick(at, r)) => {
                    tick_at = Some(at);
                    reply = r;
                }
                Ok(Input::Pool(notice)) => self.pool(notice),
                Ok(Input::Scanner { scanner, report, at }) => self.scanner(&scanner, report, at),
                Ok(Input::Forget(scanner)) => {
                    if let Ok(mut s) = self.scanners.lock() {
                        s.forget(&scanner);
                    }
                    // Not even the alert it was about to get.
                    self.down.remove(&scanner);
                    if let Ok(mut e) = self.engine.lock() {
                        e.scanner_up(&scanner, self.app.now());
                    }
                }
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.write_samples();
                    // The writer finishes what is queued once its queue is closed.
                    if let Some((tx, writer)) = self.samples.take() {
                        drop(tx);
                        let _ = writer.join();
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if tick_at.is_none() && last_pass.elapsed() >= StdDuration::from_secs(1) {
                tick_at = Some(self.app.now());
            }
            if let Some(at) = tick_at {
                last_pass = Instant::now();
                let n = self.pass(at);
                if let Some(r) = reply {
                    let _ = r.send(n);
                }
            }
            if self.pending.len() >= 1_000 {
                self.write_samples();
            }
        }
    }

    fn pool(&mut self, notice: PoolNotice) {
        match notice {
            PoolNotice::Changed => {
                if let Err(error) = self.reload(false) {
                    tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot read the band pool.");
                }
            }
            PoolNotice::Unassigned { band, person_id, at } => {
                self.worn.remove(&band);
                if let Err(error) = self.app.close_presence(&person_id, &band, at) {
                    tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot close a presence interval.");
                }
            }
        }
    }

    /// Reloads the pool. At start-up, bands worn by people are expected present, so a band that is
    /// never seen again after a restart still becomes away.
    fn reload(&mut self, at_start: bool) -> AppResult<()> {
        let bands = self.app.bands()?;
        self.registered = bands.iter().map(|b| b.id.clone()).collect();
        let worn: HashMap<String, String> = bands
            .iter()
            .filter(|b| b.state == BandState::Assigned)
            .filter_map(|b| b.person_id.clone().map(|p| (b.id.clone(), p)))
            .collect();
        let handed: Vec<(String, String)> = if at_start {
            Vec::new()
        } else {
            worn.iter()
                .filter(|(b, _)| !self.worn.contains_key(*b))
                .map(|(b, p)| (b.clone(), p.clone()))
                .collect()
        };
        self.worn = worn;
        let now = self.app.now();
        if at_start {
            // Without them the box still works; it only notices a gateway dead since before the
            // restart later, by its bands.
            if let Err(error) = self.load_scanners(now) {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot read the known scanners.");
            }
        }
        // A band just handed over starts its wearer's day where the engine last saw it.
        let events: Vec<(String, PresenceEvent)> = handed
            .into_iter()
            .map(|(band, person)| {
                (person, PresenceEvent::State { band, from: State::Away, to: State::Present, at: now })
            })
            .collect();
        if !events.is_empty() {
            self.record(events)?;
        }
        // Where each worn band was last placed today, so that after a restart a band whose scanner
        // is down is not covered rather than away.
        let today = self.app.schedule().local(now).date();
        let mut places = HashMap::new();
        if at_start {
            for (band, person) in &self.worn {
                places.insert(band.clone(), self.app.last_place(person, today)?);
            }
        }
        if let Ok(mut engine) = self.engine.lock() {
            for band in self.worn.keys() {
                if at_start || engine.get(band).is_none() {
                    engine.expect(band, now, places.remove(band).flatten());
                }
            }
        }
        // Bands just registered: what they said while unknown is what the engine starts from, so a
        // band registered by scanning can be handed over at once.
        // The engine is held throughout, so that a band is never in neither (a hand-over right
        // after the registration reads it from one or the other).
        if let Ok(mut engine) = self.engine.lock() {
            let mut replay = Vec::new();
            if let Ok(mut stats) = self.stats.lock() {
                let registered = &self.registered;
                stats.unknown.retain(|band, u| {
                    let keep = !registered.contains(band);
                    if !keep {
                        replay.extend(u.last.take());
                    }
                    keep
                });
            }
            for s in &replay {
                engine.observe(s);
            }
        }
        Ok(())
    }

    /// The scanners the box knew when it last ran: expected to speak within the silence limit,
    /// those left down still down.
    fn load_scanners(&mut self, now: DateTime<Utc>) -> AppResult<()> {
        let known = self.app.known_scanners()?;
        let (Ok(mut scanners), Ok(mut engine)) = (self.scanners.lock(), self.engine.lock()) else {
            return Ok(());
        };
        for s in known {
            if s.health == Health::Down {
                engine.scanner_down(&s.name, s.since);
                // Its alert, if the box stopped before raising it (an open one stays as it is).
                let reason = s.reason.clone().unwrap_or(outpost_ble::scanners::DownReason::Silent);
                let change =
                    Change::Down { scanner: s.name.clone(), reason, last_heard: s.since, at: s.since };
                self.down.insert(s.name.clone(), (change, 0));
            }
            scanners.known(s, now);
        }
        Ok(())
    }

    /// Takes what a scanner said (anything it sends says at least that it is there).
    fn scanner(&mut self, scanner: &str, report: Report, at: DateTime<Utc>) {
        let Ok(change) = self.scanners.lock().map(|mut s| s.report(scanner, report, at)) else { return };
        if let Some(change) = change {
            self.scanner_changed(&change);
        }
    }

    /// A scanner went down or came back: the engine learns which bands are not covered, the
    /// operations keep its health and resolve its alert; a scanner still down after
    /// `ALERT_AFTER` gets one ([`Worker::raise_scanner_alerts`]).
    fn scanner_changed(&mut self, change: &Change) {
        match change {
            Change::Down { scanner, last_heard, reason, .. } => {
                let placed =
                    self.engine.lock().map(|mut e| e.scanner_down(scanner, *last_heard)).unwrap_or_default();
                let watched = placed.iter().filter(|b| self.worn.contains_key(*b)).count();
                tracing::warn!(
                    scanner,
                    ?reason,
                    watched,
                    "A scanner is down; the bands it watched are not covered."
                );
                self.down.insert(scanner.clone(), (change.clone(), watched));
            }
            Change::Up { scanner, at } => {
                if let Ok(mut e) = self.engine.lock() {
                    e.scanner_up(scanner, *at);
                }
                let blip = self.down.remove(scanner).is_some();
                tracing::info!(scanner, before_its_alert = blip, "A scanner is back.");
            }
            Change::First { scanner, .. } => tracing::info!(scanner, "A scanner heard for the first time."),
        }
        if let Err(error) = self.app.record_scanner(change, None) {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot record a scanner's health.");
        }
    }

    /// The alerts of scanners down for `ALERT_AFTER` at `now`.
    fn raise_scanner_alerts(&mut self, now: DateTime<Utc>) {
        let due: Vec<String> = self
            .down
            .iter()
            .filter(|(_, (c, _))| matches!(c, Change::Down { at, .. } if now - *at >= crate::app::scanners::ALERT_AFTER))
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let Some((change, watched)) = self.down.remove(&name) else { continue };
            if let Err(error) = self.app.record_scanner(&change, Some(watched)) {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot raise a scanner's alert.");
            }
        }
    }

    fn observe(&mut self, s: &Sighting) {
        self.scanner(&s.scanner, Report::Online, s.at);
        let known = self.registered.contains(&s.band);
        if let Ok(mut stats) = self.stats.lock() {
            stats.sightings += 1;
            if !known {
                remember_unknown(&mut stats.unknown, s);
            }
        }
        if !known {
            return;
        }
        let events = match self.engine.lock() {
            Ok(mut e) => e.observe(s),
            Err(_) => return,
        };
        if let Some(tap) = self.tap.get() {
            tap(s);
        }
        let key = (s.band.clone(), s.scanner.clone());
        let every = self.app.config().bands.sample_every;
        if self.stored.get(&key).is_none_or(|last| s.at - *last >= every) {
            self.stored.insert(key, s.at);
            let value = StoredSighting {
                at: s.at,
                scanner: s.scanner.clone(),
                rssi: s.rssi,
                battery: s.parsed.battery_percent(),
                strap_closed: s.parsed.band.map(|b| b.strap_closed),
            };
            if let Ok(value) = serde_json::to_vec(&value) {
                self.pending.push(Sample { at_ms: s.at.timestamp_millis(), name: s.band.clone(), value });
            }
        }
        if !events.is_empty() {
            self.act(events);
        }
    }

    /// Decides absence, carries intervals over midnight, writes samples and prunes old ones.
    fn pass(&mut self, now: DateTime<Utc>) -> usize {
        // Scanners first: a band whose scanner fell silent is not covered, never away.
        let changes = self.scanners.lock().map(|mut s| s.tick(now)).unwrap_or_default();
        for change in &changes {
            self.scanner_changed(change);
        }
        self.raise_scanner_alerts(now);
        let events = match self.engine.lock() {
            Ok(mut e) => e.tick(now),
            Err(_) => Vec::new(),
        };
        let n = self.act(events);
        let today = self.app.schedule().local(now).date();
        if self.today.is_some_and(|d| d < today) {
            if let Err(error) = self.app.carry_presence_over(&self.worn, today) {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot carry presence over midnight.");
            }
        }
        self.today = Some(today);
        self.write_samples();
        if self.last_prune.is_none_or(|t| now - t >= Duration::hours(1)) {
            self.last_prune = Some(now);
            let keep = self.app.config().bands.retention;
            if !self.send_samples(SampleJob::PruneBefore((now - keep).timestamp_millis())) {
                // The writer is behind: prune at the next pass instead of an hour later.
                self.last_prune = None;
            }
            self.stored.retain(|_, at| now - *at < Duration::hours(1));
        }
        n
    }

    fn write_samples(&mut self) {
        if !self.pending.is_empty() {
            let samples = std::mem::take(&mut self.pending);
            let _ = self.send_samples(SampleJob::Insert(samples));
        }
    }

    /// Hands a job to the sample writer without waiting: when the disk is that far behind, raw
    /// samples are dropped (and counted) rather than stalling presence and alerts.
    /// Whether the writer took the job.
    fn send_samples(&mut self, job: SampleJob) -> bool {
        let Some((tx, _)) = &self.samples else { return false };
        match tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                if let (SampleJob::Insert(samples), Ok(mut s)) = (job, self.stats.lock()) {
                    s.samples_dropped += samples.len() as u64;
                }
                false
            }
        }
    }

    /// Acts on the engine's events for bands worn by people; returns how many it acted on.
    fn act(&mut self, events: Vec<PresenceEvent>) -> usize {
        let events: Vec<(String, PresenceEvent)> = events
            .into_iter()
            .filter_map(|e| self.worn.get(event_band(&e)).map(|p| (p.clone(), e)))
            .collect();
        if events.is_empty() {
            return 0;
        }
        let n = events.len();
        match self.record(events) {
            Ok(()) => {
                if let Ok(mut s) = self.stats.lock() {
                    s.events += n as u64;
                }
            }
            Err(error) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Cannot record presence.")
            }
        }
        n
    }

    /// Hands events about worn bands (with the person wearing each) to the operations, with where
    /// the engine places each band now.
    fn record(&mut self, events: Vec<(String, PresenceEvent)>) -> AppResult<()> {
        let facts = events
            .into_iter()
            .map(|(person_id, event)| {
                let place =
                    self.engine.lock().ok().and_then(|e| e.get(event_band(&event))).and_then(|p| p.place);
                PresenceFact { person_id, event, place }
            })
            .collect();
        self.app.record_presence(facts)
    }
}

fn remember_unknown(unknown: &mut HashMap<String, UnknownBand>, s: &Sighting) {
    if !unknown.contains_key(&s.band) && unknown.len() >= MAX_UNKNOWN {
        if let Some(oldest) = unknown.values().min_by_key(|u| u.last_seen).map(|u| u.band.clone()) {
            unknown.remove(&oldest);
        }
    }
    let u = unknown.entry(s.band.clone()).or_insert_with(|| UnknownBand {
        band: s.band.clone(),
        first_seen: s.at,
        last_seen: s.at,
        sightings: 0,
        scanner: s.scanner.clone(),
        rssi: s.rssi,
        battery_percent: None,
        strap_closed: None,
        last: None,
    });
    u.sightings += 1;
    u.last = Some(s.clone());
    u.last_seen = u.last_seen.max(s.at);
    u.scanner.clone_from(&s.scanner);
    u.rssi = s.rssi;
    if let Some(b) = s.parsed.battery_percent() {
        u.battery_percent = Some(b);
    }
    if let Some(d) = s.parsed.band {
        u.strap_closed = Some(d.strap_closed);
    }
}
