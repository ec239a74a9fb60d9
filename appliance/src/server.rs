//! Running the box: open the store, start the services (web, scheduler, outbox), wait for a signal,
//! stop them in order and close the store. Each service receives its resources and a cancellation
//! token and returns when cancelled; this module only wires them.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use outpost_sync::{Store, StoreConfig};
use tokio::{io::AsyncBufReadExt, net::TcpListener};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    app::Outpost,
    auth,
    clock::{Clock, ManualClock, SystemClock},
    config::{Config, ModemChoice},
    inbox,
    outbox::{self, LogSender},
    web,
};
use outpost_sms::{
    modem::{Modem, ModemConfig},
    sim::Simulator,
};

/// How the box is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: Config,
    /// Start a manual clock at this time, moved by `set`/`advance` lines on standard input, instead of
    /// the system clock.
    pub manual_clock: Option<DateTime<Utc>>,
    /// Seed a demo site with this many people when the store has none.
    pub demo_people: Option<usize>,
    /// The configuration file it was read from, kept as the last one that worked
    /// (`<data>/last-good-config.toml`).
    pub config_file: Option<PathBuf>,
    /// Why the configuration file could not be used, when the box runs on the last one that worked.
    pub config_problem: Option<String>,
}

/// Where a box keeps a copy of the last configuration file it started with.
pub fn last_good_config(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("last-good-config.toml")
}

/// Runs the box until SIGINT or SIGTERM.
pub fn run(options: RunOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outpost")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run_async(options));
    // A read of standard input (the manual clock) may still be parked on a blocking thread: do not wait
    // for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run_async(options: RunOptions) -> anyhow::Result<()> {
    let config = options.config;
    let data_dir: PathBuf = config.raw.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let store = {
        let dir = data_dir.clone();
        let cfg = StoreConfig { cache_capacity: config.raw.store.cache_mb * 1024 * 1024 };
        tokio::task::spawn_blocking(move || Store::open(&dir, &cfg)).await??
    };
    store.set_write_guard(crate::system::write_guard(data_dir.clone()));
    let (clock, manual): (Arc<dyn Clock>, Option<Arc<ManualClock>>) = match options.manual_clock {
        Some(start) => {
            let m = ManualClock::new(start);
            (m.clone(), Some(m))
        }
        None => (Arc::new(SystemClock), None),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // The address to print for someone at the box's console, and the one put in links sent to phones.
    let console = if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    };
    let mut config = config;
    if config.raw.web.public_url.is_empty() {
        config.public_url = if addr.ip().is_unspecified() {
            let url = format!("http://outpost.local:{}", addr.port());
            tracing::warn!(public_url = %url, "web.public_url is not set: links in SMS and QR codes use this address; set it to the address phones reach the box at.");
            url
        } else {
            console.clone()
        };
    }
    let app = Outpost::new(store.clone(), config, clock);
    match (&options.config_problem, &options.config_file) {
        (Some(problem), _) => app.set_condition("config", Some(problem.clone())),
        (None, Some(file)) => {
            let kept = std::fs::read(file).and_then(|bytes| {
                let path = last_good_config(&data_dir);
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &path)
            });
            if let Err(error) = kept {
                tracing::warn!(%error, "Cannot keep a copy of the configuration that worked.");
            }
        }
        (None, None) => {}
    }
    // A card that takes no writes must not keep the box from starting: it serves what it has and
    // its health page and /healthz say why nothing new is taken.
    match app.ensure_site().await {
        Err(crate::app::AppError::Store(e)) if e.is_disk() => {
            tracing::error!(error = %e, "Cannot write the site record: the SD card takes no writes.")
        }
        other => other.context("cannot write the site record")?,
    }
    if let Some(n) = options.demo_people {
        let seeded = crate::demo::seed(&app, n).await.context("cannot seed the demo site")?;
        if seeded > 0 {
            say(&format!("Demo site seeded with {seeded} people."));
        }
    }

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let state = web::AppState::new(app.clone(), cancel.clone());
    let router = web::router(state);
    {
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(error) =
                axum::serve(listener, service).with_graceful_shutdown(cancel.cancelled_owned()).await
            {
                tracing::error!(%error, "Web server stopped.");
            }
        });
    }
    let presence =
        crate::presence::Presence::start(app.clone()).context("cannot start the presence thread")?;
    let sink = presence.sink();
    let _ = app.presence.set(presence);
    let listeners = mqtt_listeners(&app)?;
    if listeners.plain.is_some() || listeners.tls.is_some() {
        // It waits (up to 5 s) for rumqttd to listen: off the async workers.
        let (max_payload, store, clock, sink) =
            (app.config.raw.mqtt.max_payload_bytes, store.clone(), app.clock.clone(), sink.clone());
        let (positions, incoming) = tokio::sync::mpsc::channel(1024);
        tracker.spawn(mqtt_positions(app.clone(), incoming, cancel.clone()));
        let mqtt = tokio::task::spawn_blocking(move || {
            crate::mqtt::start(listeners, max_payload, store, clock, sink, positions)
        })
        .await?
        .context("cannot start the MQTT broker")?;
        let _ = app.mqtt.set(mqtt);
    }
    match app.config.adapter() {
        crate::config::AdapterChoice::None => {}
        crate::config::AdapterChoice::Simulator => start_band_simulator(&app, sink.clone(), cancel.clone())?,
        crate::config::AdapterChoice::Adapter(name) => {
            tracker.spawn(ble_scanner(app.clone(), name, sink.clone(), cancel.clone()));
        }
    }
    match crate::sync::enrolment(&data_dir) {
        Ok(Some(enrolment)) => {
            let status = Arc::new(std::sync::Mutex::new(crate::sync::SyncStatus {
                province: enrolment.province.clone(),
                ..Default::default()
            }));
            let _ = app.sync.set(status.clone());
            tracing::info!(province = %enrolment.province, "Sync with the province started.");
            let clock = app.clock.clone();
            let site = outpost_province::link::SiteLink::new(app.store.clone(), enrolment.bundle)
                .with_clock(Arc::new(move || clock.now()));
            let listen = app.config.raw.sync.listen.clone();
            if !listen.is_empty() {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen for the province's pulls on {listen}"))?;
                tracing::info!(address = %listener.local_addr()?, "Answering the province's pulls.");
                let (app, site, status, cancel) = (app.clone(), site.clone(), status.clone(), cancel.clone());
                tracker.spawn(crate::sync::serve_pulls(app, site, listener, status, cancel));
            }
            let (app, cancel, province) = (app.clone(), cancel.clone(), enrolment.province);
            tracker.spawn(async move { crate::sync::run(app, site, province, &status, cancel).await });
        }
        Ok(None) => {}
        Err(error) => tracing::error!(error = %format!("{error:#}"), "Cannot read the enrolment; no sync."),
    }
    tracker.spawn(crate::backup::serve_control(app.clone(), data_dir.clone(), cancel.clone()));
    let inbox_wake = Arc::new(tokio::sync::Notify::new());
    let (sender, simulator) = start_modem(&app, &data_dir, inbox_wake.clone())?;
    {
        let store = store.clone();
        let now = app.now();
        match tokio::task::spawn_blocking(move || outbox::recover(&store, now)).await? {
            Err(e) if e.is_disk() => {
                tracing::error!(error = %e, "Cannot recover the outbox now: the SD card takes no writes.")
            }
            other => {
                other?;
            }
        }
    }
    tracker.spawn(outbox::run(app.clone(), sender, cancel.clone()));
    tracker.spawn(inbox::run(app.clone(), inbox_wake, cancel.clone()));
    match manual {
        None => {
            tracker.spawn(scheduler(app.clone(), cancel.clone()));
        }
        Some(m) => {
            tracker.spawn(clock_control(app.clone(), m, cancel.clone()));
        }
    }

    let store_for_link = store.clone();
    let now = app.now();
    let token =
        match tokio::task::spawn_blocking(move || auth::issue_setup_token(&store_for_link, now)).await? {
            Err(e) if e.is_disk() => {
                tracing::error!(error = %e, "Cannot make a setup link: the SD card takes no writes.");
                None
            }
            other => other?,
        };
    if let Some(token) = token {
        say(&format!("Setup link (one use, creates the first administrator): {console}/setup/{token}"));
        auth::leave_setup_link(&data_dir, Some(&format!("{}/setup/{token}", app.config.public_url)));
    } else {
        auth::leave_setup_link(&data_dir, None);
    }
    say(&format!("Outpost {} listening on {console}", env!("CARGO_PKG_VERSION")));

    shutdown_signal().await;
    tracing::info!("Shutting down.");
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await.is_err() {
        tracing::warn!("Some services did not stop within 10 s.");
    }
    if let Some(modem) = app.modem.get().cloned() {
        tokio::task::spawn_blocking(move || modem.stop()).await?;
    }
    {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(p) = app.presence.get() {
                p.stop();
            }
        })
        .await?;
    }
    drop(simulator);
    tokio::task::spawn_blocking(move || store.close()).await?.context("cannot close the store cleanly")?;
    say("Outpost stopped.");
    Ok(())
}

/// The broker's ports from `[mqtt]`; for TLS, the certificate from `[tls]` or the box's own, made
/// now if it has none.
fn mqtt_listeners(app: &Outpost) -> anyhow::Result<crate::mqtt::Listeners> {
    let raw = &app.config.raw;
    let parse = |s: &str| (!s.is_empty()).then(|| s.parse::<std::net::SocketAddr>()).transpose();
    let mut listeners = crate::mqtt::Listeners { plain: parse(&raw.mqtt.listen)?, tls: None };
    if let Some(addr) = parse(&raw.mqtt.tls_listen)? {
        let own = raw.tls.cert_file.is_empty();
        let (cert, key) = if own {
            crate::tls::default_paths(&raw.store.data_dir)
        } else {
            (raw.tls.cert_file.clone().into(), raw.tls.key_file.clone().into())
        };
        let certificate = crate::tls::load_or_create(
            &cert,
            &key,
            own,
            &format!("Outpost {}", raw.site.id),
            &crate::tls::names(&raw.tls.names),
        )
        .context("cannot load the box's TLS certificate")?;
        listeners.tls = Some((addr, crate::tls::server_config(&certificate)?));
        let _ = app.certificate.set(certificate);
    }
    Ok(listeners)
}

/// Scans with the box's own adapter for as long as the box runs. If BlueZ or the adapter is missing,
/// says so and tries again every minute (a USB adapter plugged in later is picked up).
async fn ble_scanner(
    app: Arc<Outpost>,
    adapter: String,
    sink: crate::presence::Sink,
    cancel: CancellationToken,
) {
    use outpost_ble::scan::{self, ScanConfig, ScanStats};
    let stats = Arc::new(ScanStats::default());
    let _ = app.ble.set(stats.clone());
    let config = ScanConfig {
        adapter: (adapter != "auto").then_some(adapter),
        scanner: app.config.raw.site.id.clone(),
        watchdog: Duration::from_secs(app.config.raw.bands.watchdog_seconds),
    };
    loop {
        let clock = app.clock.clone();
        let sink = sink.clone();
        let seen = stats.events.load(std::sync::atomic::Ordering::Relaxed);
        // A problem reported earlier clears once the adapter delivers events again.
        let recovered = async {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if stats.events.load(std::sync::atomic::Ordering::Relaxed) > seen {
                    app.set_condition("adapter", None);
                }
            }
        };
        let scan = scan::run(
            config.clone(),
            stats.clone(),
            move || clock.now(),
            move |s| sink.send(s),
            cancel.cancelled(),
        );
        let result = tokio::select! {
            r = scan => r,
            () = recovered => Ok(()),
        };
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "The Bluetooth adapter cannot be used; trying again in a minute.");
                app.set_condition("adapter", Some(format!("{error:#}")));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// Starts a simulated site full of bands (`bands.adapter = "simulator"`): band `i` of the simulator is
/// in the room of whoever wears it, or at the desk; the site is heard once a second.
fn start_band_simulator(
    app: &Arc<Outpost>,
    sink: crate::presence::Sink,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use outpost_ble::sim::{self, SimConfig, SiteSim};
    let n = app.config.raw.bands.simulated_bands as usize;
    let mut rooms = Vec::with_capacity(n);
    for i in 0..n {
        let room = app
            .store
            .get::<outpost_sync::record::Band>(&sim::address(i))?
            .and_then(|b| b.person_id)
            .and_then(|p| app.person(&p).ok())
            .map_or_else(|| sim::DESK.to_owned(), |p| format!("phong-{}", p.room.to_lowercase()));
        rooms.push(room);
    }
    let mut site = SiteSim::new(app.config.raw.site.id.len() as u64, &rooms, SimConfig::default());
    let clock = app.clock.clone();
    std::thread::Builder::new().name("band-simulator".into()).spawn(move || {
        while !cancel.is_cancelled() {
            for s in site.step(clock.now()) {
                sink.send(s);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })?;
    tracing::info!(bands = n, "Band simulator started.");
    Ok(())
}

/// Starts the SMS sender the configuration asks for: none (log only), the simulated modem, or a real one.
fn start_modem(
    app: &Arc<Outpost>,
    data_dir: &std::path::Path,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<(Arc<dyn outbox::SmsSender>, Option<Simulator>)> {
    let (port, simulator) = match app.config.modem() {
        ModemChoice::None => return Ok((Arc::new(LogSender), None)),
        ModemChoice::Simulator => {
            let sim = Simulator::start(&data_dir.join("modem-simulator"))
                .context("cannot start the modem simulator")?;
            (sim.path().to_owned(), Some(sim))
        }
        ModemChoice::Port(p) => (p, None),
    };
    let m = &app.config.raw.modem;
    let config = ModemConfig {
        baud: m.baud,
        pin: (!m.pin.is_empty()).then(|| m.pin.clone()),
        validity_minutes: m.validity_hours * 60,
        ..ModemConfig::new(&port)
    };
    let events = Arc::new(inbox::InboxEvents { store: app.store.clone(), clock: app.clock.clone(), wake });
    let modem = Arc::new(Modem::start(config, events));
    let _ = app.modem.set(modem.clone());
    tracing::info!(port = %port.display(), "Modem driver started.");
    Ok((Arc::new(outbox::ModemSender(modem)), simulator))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Takes positions an app published over MQTT [M8] in, as the personal page's API does. A bad one is
/// counted in the log at debug level only: its topic holds a person's secret token.
async fn mqtt_positions(
    app: Arc<Outpost>,
    mut incoming: tokio::sync::mpsc::Receiver<crate::mqtt::PositionMessage>,
    cancel: CancellationToken,
) {
    loop {
        let (token, payload) = tokio::select! {
            _ = cancel.cancelled() => return,
            next = incoming.recv() => match next { Some(m) => m, None => return },
        };
        let outcome = match serde_json::from_slice::<crate::location::Position>(&payload) {
            Ok(p) => match app.person_by_token(&token) {
                Ok(person) => app.report_position(&person, p).await.map(|_| ()),
                Err(e) => Err(e),
            },
            Err(_) => Err(crate::app::AppError::Invalid(Vec::new())),
        };
        if let Err(error) = outcome {
            tracing::debug!(%error, "A position over MQTT was refused.");
        }
    }
}

/// Settles declaration slots and escalations every 30 seconds.
async fn scheduler(app: Arc<Outpost>, cancel: CancellationToken) {
    loop {
        if let Err(error) = app.tick().await {
            tracing::error!(error = %anyhow::Error::from(error), "Scheduler pass failed.");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// Moves a manual clock from standard input: `set <RFC 3339 time>`, `advance <N>s|m|h`, `tick`. After
/// each line the scheduler runs once and a line `clock <time> reminders=… alerts=… escalations=…` is
/// printed, so a test knows the box has caught up.
async fn clock_control(app: Arc<Outpost>, clock: Arc<ManualClock>, cancel: CancellationToken) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            _ = cancel.cancelled() => return,
            line = lines.next_line() => line,
        };
        let Ok(Some(line)) = line else {
            // Standard input closed: keep the clock where it is until shutdown.
            cancel.cancelled().await;
            return;
        };
        let mut words = line.split_whitespace();
        let result = match (words.next(), words.next()) {
            (Some("set"), Some(t)) => DateTime::parse_from_rfc3339(t)
                .map(|t| {
                    clock.set(t.with_timezone(&Utc));
                })
                .map_err(|e| e.to_string()),
            (Some("advance"), Some(d)) => parse_duration(d).map(|d| {
                clock.advance(d);
            }),
            (Some("tick"), None) => Ok(()),
            _ => Err(format!("unknown command {line:?}")),
        };
        match result {
            Err(e) => say(&format!("clock-error {e}")),
            Ok(()) => match app.tick().await {
                Ok(r) => say(&format!(
                    "clock {} reminders={} alerts={} escalations={} presence={}",
                    app.now().to_rfc3339(),
                    r.reminders,
                    r.alerts,
                    r.escalations,
                    r.presence
                )),
                Err(e) => say(&format!("clock-error {:#}", anyhow::Error::from(e))),
            },
        }
    }
}

fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        _ => Err(format!("bad duration {s:?} (use s, m or h)")),
    }
}
