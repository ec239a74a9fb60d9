//! Running the box — the composition root: open the store, build the operations and the services,
//! start each, serve the web, wait for a signal, stop them in order and close the store. Each
//! service receives its resources and a cancellation token and returns when cancelled; this module
//! only wires them.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use outpost_sync::{Store, StoreConfig};
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    app::{AppError, Outpost, Wiring},
    base::{
        clock::{CorrectedClock, ManualClock, SystemClock},
        config::{AdapterChoice, Config},
    },
    platform::{system, tls},
    services::{
        self, bands, control, inbox, link, modem, mqtt, outbox, presence::PresenceView, say,
        scheduler::Scheduler, Services,
    },
    web,
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

/// The box's clocks: the one everything reads (corrected by the province's time), and the manual
/// clock under it when the box runs on one.
fn clocks(manual: Option<DateTime<Utc>>) -> (Arc<CorrectedClock>, Option<Arc<ManualClock>>) {
    match manual {
        Some(start) => {
            let m = ManualClock::new(start);
            (CorrectedClock::new(m.clone()), Some(m))
        }
        None => (CorrectedClock::new(Arc::new(SystemClock)), None),
    }
}

/// The web listener, and the address to print for someone at the box's console. Sets the address
/// put in links sent to phones when the configuration does not say.
async fn listen(config: &mut Config) -> anyhow::Result<(TcpListener, String)> {
    let listen = config.web.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let console = if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    };
    if !config.web.public_url_given {
        config.web.public_url = if addr.ip().is_unspecified() {
            let url = match addr.port() {
                80 => "http://outpost.local".to_owned(),
                port => format!("http://outpost.local:{port}"),
            };
            tracing::warn!(public_url = %url, "web.public_url is not set: links in SMS and QR codes use this address; set it to the address phones reach the box at.");
            url
        } else {
            console.clone()
        };
    }
    Ok((listener, console))
}

/// Opens the store in the data folder, with the write guard that keeps sled off a full card.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let data_dir = config.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let cfg = StoreConfig { cache_capacity: config.store.cache_bytes };
    let dir = data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, &cfg)).await??;
    store.set_write_guard(system::write_guard(data_dir));
    Ok(store)
}

/// Keeps a copy of the configuration file that worked, or says why the box runs without it.
fn keep_config(options: &RunOptions, conditions: &system::Conditions) {
    match (&options.config_problem, &options.config_file) {
        (Some(problem), _) => conditions.set("config", Some(problem.clone())),
        (None, Some(file)) => {
            let kept = std::fs::read(file).and_then(|bytes| {
                let path = last_good_config(&options.config.store.data_dir);
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
}

/// A card that takes no writes must not keep the box from starting: it serves what it has and its
/// health page and /healthz say why nothing new is taken.
fn unless_disk_full<T: Default>(result: Result<T, AppError>, what: &str) -> anyhow::Result<T> {
    match result {
        Err(AppError::Store(e)) if e.is_disk() => {
            tracing::error!(error = %e, "Cannot {what}: the SD card takes no writes.");
            Ok(T::default())
        }
        other => other.with_context(|| format!("cannot {what}")),
    }
}

async fn run_async(options: RunOptions) -> anyhow::Result<()> {
    let mut config = options.config.clone();
    let store = open_store(&config).await?;
    let (clock, manual) = clocks(options.manual_clock);
    let (listener, console) = listen(&mut config).await?;
    let data_dir = config.store.data_dir.clone();
    let presence_queue = services::presence::channel();
    let outbox_wake = Arc::new(Notify::new());
    let wiring = Wiring { outbox: outbox_wake.clone(), pool: Some(presence_queue.0.pool_notices()) };
    let app = Outpost::wired(store.clone(), config, clock.clone(), wiring);
    let services = Services::default();
    keep_config(&options, services.conditions());
    unless_disk_full(app.ensure_site().await, "write the site record")?;
    if let Some(n) = options.demo_people {
        let seeded = crate::demo::seed(&app, n).await.context("cannot seed the demo site")?;
        if seeded > 0 {
            say(&format!("Demo site seeded with {seeded} people."));
        }
    }

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    // The web first: it answers while the rest starts (their handles appear as they do).
    let https = https_listener(&app, &services).await?;
    // Phones from home, handed over by the province through the box's tunnel (see `start_link`).
    let (phones, tunneled) = tokio::sync::mpsc::channel(64);
    serve_web(
        (listener, https, tunneled),
        web::AppState::new(app.clone(), services.clone(), cancel.clone()),
        (&tracker, &cancel),
    )?;
    let series = store.series("sightings").context("cannot open the sightings' series")?;
    let presence = PresenceView::start(app.clone(), series, presence_queue)
        .context("cannot start the presence thread")?;
    services.set_presence(presence.clone());
    start_mqtt(&app, &services, (clock.clone(), presence.sink()), (&tracker, &cancel)).await?;
    start_sightings(&app, &services, (clock.clone(), presence.sink()), (&tracker, &cancel))?;
    start_link(&app, &services, (store.clone(), clock.clone(), phones), (&tracker, &cancel)).await?;
    tracker.spawn(control::serve(
        (store.clone(), app.config().site.id.clone()),
        data_dir.clone(),
        clock.clone(),
        cancel.clone(),
    ));
    let simulator = start_sms(&app, &services, outbox_wake, (&tracker, &cancel)).await?;
    tracker.spawn(note_wear(services.clone(), app.config().store.data_dir.clone(), cancel.clone()));
    let scheduler = Scheduler::new(app.clone(), Some(presence.clone()));
    match manual {
        None => tracker.spawn(scheduler.run(cancel.clone())),
        Some(m) => tracker.spawn(scheduler.run_manual(m, cancel.clone())),
    };

    let app_ = app.clone();
    let token = unless_disk_full(
        tokio::task::spawn_blocking(move || app_.issue_setup_link()).await?,
        "make a setup link",
    )?;
    if let Some(token) = token {
        say(&format!("Setup link (one use, creates the first administrator): {console}/setup/{token}"));
    }
    say(&format!("Outpost {} listening on {console}", env!("CARGO_PKG_VERSION")));

    shutdown_signal().await;
    tracing::info!("Shutting down.");
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await.is_err() {
        tracing::warn!("Some services did not stop within 10 s.");
    }
    let modems: Vec<_> = services.modems().iter().map(|(_, m)| m.clone()).collect();
    tokio::task::spawn_blocking(move || modems.iter().for_each(|m| m.stop())).await?;
    tokio::task::spawn_blocking(move || presence.stop()).await?;
    drop(simulator);
    let data_dir = app.config().store.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let closed = store.close();
        // sled's own drop syncs its file and panics when the card takes no writes (an ext4 turned
        // read-only after an error): nothing more can reach such a card, so this handle is left to
        // the end of the process.
        if !system::takes_writes(&data_dir) {
            std::mem::forget(store);
        }
        closed
    })
    .await?
    .context("cannot close the store cleanly")?;
    say("Outpost stopped.");
    Ok(())
}

/// The HTTPS listener, when `web.tls_listen` is set, with its TLS: the box's own certificate for every
/// name, the site's trusted one for the site's name (kept in `services`).
async fn https_listener(
    app: &Arc<Outpost>,
    services: &Services,
) -> anyhow::Result<Option<(TcpListener, Arc<rustls::ServerConfig>)>> {
    let Some(addr) = app.config().web.tls_listen else { return Ok(None) };
    let certificate = box_certificate(app, services)?;
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen for HTTPS on {addr}"))?;
    say(&format!("HTTPS on {} (the box's certificate: {})", listener.local_addr()?, certificate.fingerprint));
    let certs = tls::Certs::new(&certificate, &app.config().store.data_dir)?;
    let port = listener.local_addr()?.port();
    if let Some(named) = certs.named() {
        app.reached_as(&named.name, port);
    }
    services.set_certs(certs.clone(), port);
    Ok(Some((listener, tls::server_config_named(certs)?)))
}

type Tasks<'a> = (&'a TaskTracker, &'a CancellationToken);

/// Phones from home, as the tunnel hands them to the web.
type Tunneled = tokio::sync::mpsc::Receiver<outpost_link::tunnel::Phone>;

/// Serves the web UI through the web's [`Gate`](outpost_link::gate::Gate) until cancelled: on
/// `listener`, or, with an HTTPS listener, there with TLS while `listener` only redirects to it
/// (and answers `/healthz`).
fn serve_web(
    (listener, https, tunneled): (TcpListener, Option<(TcpListener, Arc<rustls::ServerConfig>)>, Tunneled),
    state: web::AppState,
    (tracker, cancel): Tasks<'_>,
) -> anyhow::Result<()> {
    use outpost_link::gate::{serve_router, serve_router_with};
    let gate = state.services.web_gate().clone();
    let certs = state.services.certs().cloned();
    let local_dns = state.app.config().web.dns_hosts.is_some();
    let router = web::router(state);
    let stop = || cancel.clone().cancelled_owned();
    match https {
        None => {
            tracker.spawn(serve_router(listener, gate, None, router, stop()));
        }
        Some((tls_listener, config)) => {
            let port = tls_listener.local_addr()?.port();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let secure = match &certs {
                Some(certs) => web::on_https((port, local_dns), certs.clone(), router.clone()),
                None => router.clone(),
            };
            let (tls, tunneled) = (Some(acceptor), Some(tunneled));
            tracker.spawn(serve_router_with(tls_listener, gate.clone(), tls, secure, tunneled, stop()));
            let redirect = web::redirect_to_https(port, router);
            tracker.spawn(serve_router(listener, gate, None, redirect, stop()));
        }
    }
    Ok(())
}

/// The certificate the box presents (HTTPS, MQTT over TLS): from `[tls]`, or its own, made now if it
/// has none; kept in `services` once loaded.
fn box_certificate(app: &Outpost, services: &Services) -> anyhow::Result<tls::BoxCertificate> {
    if let Some(certificate) = services.certificate() {
        return Ok(certificate.clone());
    }
    let c = app.config();
    let (own, (cert, key)) = match &c.tls.files {
        Some(files) => (false, files.clone()),
        None => (true, tls::default_paths(&c.store.data_dir)),
    };
    let name = format!("Outpost {}", c.site.id);
    let certificate = tls::load_or_create(&cert, &key, own, &name, &tls::names(&c.tls.names))
        .context("cannot load the box's TLS certificate")?;
    services.set_certificate(certificate.clone());
    Ok(certificate)
}

/// The broker on the ports of `[mqtt]`, when any is open; for TLS, the certificate from `[tls]` or
/// the box's own, made now if it has none.
async fn start_mqtt(
    app: &Arc<Outpost>,
    services: &Services,
    (clock, sink): (Arc<CorrectedClock>, services::presence::Sink),
    (tracker, cancel): Tasks<'_>,
) -> anyhow::Result<()> {
    let c = app.config();
    let mut listeners = mqtt::Listeners { plain: c.mqtt.listen, tls: None };
    if let Some(addr) = c.mqtt.tls_listen {
        let certificate = box_certificate(app, services)?;
        listeners.tls = Some((addr, tls::server_config(&certificate)?));
    }
    if listeners.plain.is_none() && listeners.tls.is_none() {
        return Ok(());
    }
    let (positions, incoming) = tokio::sync::mpsc::channel(1024);
    tracker.spawn(mqtt::take_positions(app.clone(), incoming, cancel.clone()));
    let subscriber = mqtt::Subscriber { clock, sink, positions };
    let (max, app) = (c.mqtt.max_payload_bytes, app.clone());
    // It waits (up to 5 s) for rumqttd to listen: off the async workers.
    let broker = tokio::task::spawn_blocking(move || mqtt::start(listeners, max, app, subscriber))
        .await?
        .context("cannot start the MQTT broker")?;
    services.set_mqtt(broker);
    Ok(())
}

/// The box's own sightings: its adapter or the demo's simulated site.
fn start_sightings(
    app: &Arc<Outpost>,
    services: &Services,
    (clock, sink): (Arc<CorrectedClock>, services::presence::Sink),
    (tracker, cancel): Tasks<'_>,
) -> anyhow::Result<()> {
    match app.config().bands.adapter.clone() {
        AdapterChoice::None => {}
        AdapterChoice::Simulator => bands::simulate(app, sink, clock, cancel.clone())?,
        AdapterChoice::Adapter(name) => {
            let stats = Arc::new(outpost_ble::scan::ScanStats::default());
            services.set_scanner(stats.clone());
            let resources = (sink, stats, services.conditions().clone());
            tracker.spawn(bands::scan_with_adapter(app.clone(), name, resources, clock, cancel.clone()));
        }
    }
    Ok(())
}

/// The sync with the province, once enrolled: pushes, and the pull server on `sync.listen`.
async fn start_link(
    app: &Arc<Outpost>,
    services: &Services,
    (store, clock, phones): (
        Store,
        Arc<CorrectedClock>,
        tokio::sync::mpsc::Sender<outpost_link::tunnel::Phone>,
    ),
    (tracker, cancel): Tasks<'_>,
) -> anyhow::Result<()> {
    let c = app.config();
    let enrolment = match link::enrolment(&c.store.data_dir) {
        Ok(Some(enrolment)) => enrolment,
        Ok(None) => return Ok(()),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "Cannot read the enrolment; no sync.");
            return Ok(());
        }
    };
    tracing::info!(province = %enrolment.province, "Sync with the province started.");
    let link = Arc::new(link::Link::new(store, enrolment, clock.clone(), &c.sync));
    services.set_link(link.status());
    if let Some(listen) = c.sync.listen {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for the province's pulls on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, "Answering the province's pulls.");
        tracker.spawn(link.clone().serve_pulls(listener, cancel.clone()));
    }
    if let (Some(certs), Some(port)) = (services.certs(), services.https_port()) {
        let status = services::names::NameStatus::default();
        services.set_names(status.clone());
        let keeper = link.name_keeper(
            certs.clone(),
            status,
            (clock.clone(), c.store.data_dir.clone()),
            c.web.dns_hosts.clone(),
        );
        let app = app.clone();
        let named = keeper.certs.clone();
        tracker.spawn(keeper.run(cancel.clone(), move || {
            if let Some(n) = named.named() {
                app.reached_as(&n.name, port);
            }
        }));
    }
    if let Some(reach) = &c.sync.reach {
        tracing::info!(province = %reach, "Keeping a tunnel open to the province for phones from home.");
        services.set_tunnel(link.keep_tunnel(reach.clone(), phones, tracker, cancel)?);
    }
    tracker.spawn(link.run(cancel.clone()));
    Ok(())
}

/// The modems (or their simulators, or none), the outbox and inbox workers; the simulators are kept
/// alive by the caller.
async fn start_sms(
    app: &Arc<Outpost>,
    services: &Services,
    outbox_wake: Arc<Notify>,
    (tracker, cancel): Tasks<'_>,
) -> anyhow::Result<Vec<outpost_sms::sim::Simulator>> {
    let inbox_wake = Arc::new(Notify::new());
    let started = modem::start(app, &app.config().store.data_dir, inbox_wake.clone())?;
    services.set_modems(started.modems);
    let app_ = app.clone();
    unless_disk_full(
        tokio::task::spawn_blocking(move || app_.recover_outbox()).await?,
        "recover the outbox now",
    )?;
    tracker.spawn(outbox::run(app.clone(), started.senders, outbox_wake, cancel.clone()));
    tracker.spawn(inbox::run(app.clone(), inbox_wake, cancel.clone()));
    Ok(started.simulators)
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

/// Notes once a minute what has been written to the card so far, for its projected life.
async fn note_wear(services: Services, data_dir: std::path::PathBuf, cancel: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => services.note_wear(&data_dir),
        }
    }
}
