//! The embedded MQTT broker [M15] (rumqttd, on its own thread) and the box's own subscriber.
//!
//! No anonymous access: each gateway, phone app or monitor has named credentials and a kind, added
//! by an administrator (`crate::app::mqtt`), checked and enforced by the box's front ([`front`]);
//! rumqttd's login hook lets in only the connections the front vouched for. The broker is sized for
//! a Pi: a small in-memory log and a payload limit fit for gateway messages. The box subscribes through rumqttd's in-process link, not a socket: gateway
//! sightings (ESPresense, Theengs/OpenMQTTGateway) go to the presence engine; payloads that are not
//! sightings are counted by reason, never fatal.
//!
//! Devices connect to the box's front ([`front`]): one plain port and one TLS port, each for MQTT
//! 3.1.1 and 5, joined to rumqttd's servers on loopback; [`packet`] is the MQTT the front reads.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use rumqttd::{
    Broker, Config as BrokerConfig, ConnectionSettings, Notification, RouterConfig, ServerSettings,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use outpost_ble::gateway::Message;

use super::presence::Sink;
use crate::{
    app::{location::Position, mqtt::POSITION_PREFIX, AppError, Outpost},
    base::clock::Clock,
};

pub mod flow;
pub mod front;
pub mod packet;
pub use front::{Backends, Door, FrontCounts, FrontStats};

/// The gateways' sighting topics (what `outpost ble listen` follows).
pub const SIGHTING_FILTERS: [&str; 2] = ["espresense/devices/#", "+/+/BTtoMQTT/+"];
/// Everything the box reads from gateways: sightings, and their status and telemetry.
const GATEWAY_FILTERS: [&str; 6] = outpost_ble::gateway::FILTERS;

/// A position message [M8] from a person's app, published to `outpost/position/<its device name>`
/// with `{"latitude": …, "longitude": …, "accuracy": metres}`: the device's name from the topic
/// (the front lets an app publish only its own) and the payload.
pub type PositionMessage = (String, Vec<u8>);

/// What the subscriber has seen, for the health page and the API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub sightings: u64,
    /// Gateways' status and telemetry messages.
    pub status: u64,
    /// Refused payloads by reason (`not_json`, `absurd_rssi`, …).
    pub refused: BTreeMap<String, u64>,
    /// Messages the broker dropped before the box read them: its in-memory log is bounded, and a
    /// burst faster than the box reads overwrites the oldest (seen as a gap in the log's offsets).
    pub overrun: u64,
}

/// The running broker.
pub struct Mqtt {
    /// The plain port (MQTT 3.1.1 and 5), if open.
    pub listen: Option<SocketAddr>,
    /// The TLS port, if open.
    pub tls_listen: Option<SocketAddr>,
    pub counters: Arc<Mutex<Counters>>,
    pub connections: Arc<FrontStats>,
    /// The front's connection caps.
    pub gate: Arc<outpost_link::gate::Gate>,
}

/// The ports devices connect to.
#[derive(Clone, Default)]
pub struct Listeners {
    pub plain: Option<SocketAddr>,
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
}

/// A free loopback port for one of rumqttd's servers (only the box's front connects to it).
fn loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn server_settings(name: &str, listen: SocketAddr, connections: ConnectionSettings) -> ServerSettings {
    ServerSettings { name: name.into(), listen, tls: None, next_connection_delay_ms: 1, connections }
}

/// What the box's subscriber forwards to: sightings to the presence thread, an app's positions
/// to [`take_positions`], timestamps from the box's clock.
pub struct Subscriber {
    pub clock: Arc<dyn Clock>,
    pub sink: Sink,
    pub positions: tokio::sync::mpsc::Sender<PositionMessage>,
}

/// Starts the broker on the ports in `listeners` (devices logging in as `app` allows) and the box's
/// subscriber. Everything runs on threads of its own for the life of the process (rumqttd has no
/// shutdown).
pub fn start(
    listeners: Listeners,
    max_payload: usize,
    app: Arc<Outpost>,
    subscriber: Subscriber,
) -> anyhow::Result<Mqtt> {
    // The public ports first, so that a port in use is a clear error at start.
    let plain = listeners
        .plain
        .map(|addr| bind(addr).with_context(|| format!("cannot listen for MQTT on {addr}")))
        .transpose()?;
    let tls = listeners
        .tls
        .map(|(addr, config)| {
            let listener =
                bind(addr).with_context(|| format!("cannot listen for MQTT over TLS on {addr}"))?;
            anyhow::Ok((listener, tokio_rustls::TlsAcceptor::from(config)))
        })
        .transpose()?;
    let door = Arc::new(Door::new(app, max_payload));
    let stats = door.stats.clone();
    let gate = outpost_link::gate::Gate::new("mqtt", front::LIMITS);
    let backends = Backends { v4: loopback_port()?, v5: loopback_port()? };
    let mut broker = Broker::new(broker_config(backends, connections(max_payload, door.clone())));
    let (mut link_tx, link_rx) =
        broker.link("outpost-box").map_err(|e| anyhow::anyhow!("broker link: {e:?}"))?;
    for filter in GATEWAY_FILTERS.into_iter().chain([format!("{POSITION_PREFIX}+").as_str()]) {
        link_tx.subscribe(filter).map_err(|e| anyhow::anyhow!("subscribe {filter}: {e:?}"))?;
    }
    std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
        if let Err(error) = broker.start() {
            tracing::error!(?error, "MQTT broker stopped.");
        }
    })?;
    let counters = Arc::new(Mutex::new(Counters::default()));
    let c = counters.clone();
    std::thread::Builder::new().name("mqtt-sightings".into()).spawn(move || {
        let _keep = link_tx;
        subscribe(link_rx, &c, &subscriber);
    })?;
    wait_until_serving(&[backends.v4, backends.v5])?;
    let (listen, tls_listen) = (
        plain.as_ref().and_then(|l| l.local_addr().ok()),
        tls.as_ref().and_then(|(l, _)| l.local_addr().ok()),
    );
    let front_gate = gate.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("mqtt-front".into()).spawn(move || {
        runtime.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let listener =
                |l: std::net::TcpListener| TcpListener::from_std(l).expect("a non-blocking listener");
            if let Some(l) = plain {
                tasks.spawn(front::serve(listener(l), front_gate.clone(), None, backends, door.clone()));
            }
            if let Some((l, acceptor)) = tls {
                tasks.spawn(front::serve(listener(l), front_gate, Some(acceptor), backends, door));
            }
            tasks.join_all().await;
        })
    })?;
    tracing::info!(?listen, ?tls_listen, "MQTT broker started (3.1.1 and 5).");
    Ok(Mqtt { listen, tls_listen, counters, connections: stats, gate })
}

/// The connection settings of both rumqttd servers, with the login check: only connections the
/// front has checked and vouched for (the Argon2 check is the front's, once).
fn connections(max_payload: usize, door: Arc<Door>) -> ConnectionSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: max_payload,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client: String, user: String, _pass: String| {
        let ok = door.vouched_for(&client, &user);
        async move { ok }
    });
    connections
}

/// rumqttd sized for a Pi: its two servers on loopback, a small log.
fn broker_config(backends: Backends, connections: ConnectionSettings) -> BrokerConfig {
    BrokerConfig {
        id: 0,
        router: RouterConfig {
            max_connections: 256,
            max_outgoing_packet_count: 200,
            // A small log: 4 segments of 1 MiB instead of rumqttd's 10 × 100 MB.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([(
            "outpost-v4".to_owned(),
            server_settings("outpost-v4", backends.v4, connections.clone()),
        )])),
        v5: Some(HashMap::from([(
            "outpost-v5".to_owned(),
            server_settings("outpost-v5", backends.v5, connections),
        )])),
        ..BrokerConfig::default()
    }
}

/// The box's subscriber, on its own thread: gateway messages into sightings, an app's positions to
/// the async side, every refusal counted; until the router is gone.
fn subscribe(mut link_rx: rumqttd::local::LinkRx, counters: &Mutex<Counters>, to: &Subscriber) {
    let last_log = outpost_link::gate::OnceAMinute::default();
    let mut last_offset = [None::<u64>; GATEWAY_FILTERS.len()];
    loop {
        // Blocks until the router has something; an error only means the router is gone.
        let notification = match link_rx.recv() {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(?error, "MQTT subscriber stopped.");
                return;
            }
        };
        let forward = match notification {
            Notification::Forward(forward) => forward,
            // The router paused this link because its buffer filled up: everything buffered
            // has now been read, so ask for more (as rumqttd's own network links do). Without
            // this the box stops hearing gateways after the first full buffer.
            Notification::Unschedule => {
                if let Err(error) = link_rx.ready() {
                    tracing::error!(?error, "MQTT subscriber stopped.");
                    return;
                }
                continue;
            }
            _ => continue,
        };
        let topic = String::from_utf8_lossy(&forward.publish.topic).into_owned();
        if let Some(device) = topic.strip_prefix(POSITION_PREFIX) {
            // The app's position goes to the box's async side; a full queue drops it (the
            // next one comes in minutes) rather than stall the gateways' sightings.
            if to.positions.try_send((device.to_owned(), forward.publish.payload.to_vec())).is_err() {
                if let Ok(mut c) = counters.lock() {
                    *c.refused.entry("positions_busy".to_owned()).or_default() += 1;
                }
            }
            continue;
        }
        // Each subscription has its own log; offsets in it count messages one by one.
        if let (Some((_, offset)), Some(filter)) = (forward.cursor, filter_of(&topic)) {
            if let Some(last) = last_offset[filter] {
                if offset > last + 1 {
                    if let Ok(mut c) = counters.lock() {
                        c.overrun += offset - last - 1;
                    }
                }
            }
            last_offset[filter] = Some(offset);
        }
        let now = to.clock.now();
        match outpost_ble::gateway::read(&topic, &forward.publish.payload, now) {
            Ok(Message::Sighting(sighting)) => {
                to.sink.send(sighting);
                if let Ok(mut c) = counters.lock() {
                    c.sightings += 1;
                }
            }
            Ok(Message::Scanner { scanner, report }) => {
                to.sink.report(scanner, report, now);
                if let Ok(mut c) = counters.lock() {
                    c.status += 1;
                }
            }
            Err(error) => {
                if let Ok(mut c) = counters.lock() {
                    *c.refused.entry(error.kind().to_owned()).or_default() += 1;
                }
                // Logged at most once a minute: a broken gateway must not fill the journal.
                if last_log.due() {
                    tracing::warn!(%error, "A gateway message was refused (counted; further ones this minute are not logged).");
                }
            }
        }
    }
}

/// Which of [`GATEWAY_FILTERS`] delivered `topic` (each has a log of its own), by the broker's
/// own matching.
fn filter_of(topic: &str) -> Option<usize> {
    GATEWAY_FILTERS.iter().position(|filter| rumqttd::protocol::matches(topic, filter))
}

/// Takes positions an app published over MQTT [M8] in, as the personal page's API does, for the
/// person the app's device is bound to. A bad one is in the log at debug level only.
pub async fn take_positions(
    app: Arc<Outpost>,
    mut incoming: tokio::sync::mpsc::Receiver<PositionMessage>,
    cancel: CancellationToken,
) {
    loop {
        let (device, payload) = tokio::select! {
            _ = cancel.cancelled() => return,
            next = incoming.recv() => match next { Some(m) => m, None => return },
        };
        let outcome = match serde_json::from_slice::<Position>(&payload) {
            Ok(p) => match app.app_person(&device).map(|id| app.person(&id)) {
                Some(Ok(person)) => app.report_position(&person, p).await.map(|_| ()),
                Some(Err(e)) => Err(e),
                None => Err(AppError::NotFound),
            },
            Err(_) => Err(AppError::Invalid(Vec::new())),
        };
        if let Err(error) = outcome {
            tracing::debug!(%error, "A position over MQTT was refused.");
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Waits until rumqttd's servers accept connections: it starts them on its own thread and reports a
/// port it could not take only in its log.
fn wait_until_serving(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for addr in addrs {
        while std::net::TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the MQTT broker did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// `outpost ble listen`: connects to a broker as device `user`, subscribes to the gateway topics and
/// prints each sighting as a JSON line, or the reason a message was refused; for `seconds` if given.
pub async fn listen(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    seconds: Option<u64>,
) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
    let mut options = MqttOptions::new(format!("outpost-listen-{}", std::process::id()), host, port);
    options.set_credentials(user, password);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut events) = AsyncClient::new(options, 16);
    for filter in SIGHTING_FILTERS {
        client.subscribe(filter, QoS::AtMostOnce).await?;
    }
    let deadline = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut accepted = false;
    loop {
        let event = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.poll()).await {
                Ok(e) => e,
                Err(_) => return Ok(()),
            },
            None => events.poll().await,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let line = match outpost_ble::gateway::parse(&p.topic, &p.payload, chrono::Utc::now()) {
                    Ok(s) => serde_json::to_string(&s)?,
                    Err(e) => serde_json::to_string(
                        &serde_json::json!({"topic": p.topic, "refused": e.kind(), "error": e.to_string()}),
                    )?,
                };
                println!("{line}");
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                accepted = true;
                eprintln!("Connected to {host}:{port} as {user}.");
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
            )) => anyhow::bail!("the broker refused {user}: wrong name or password"),
            Err(ConnectionError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                anyhow::bail!("cannot reach the broker at {host}:{port}: {e}")
            }
            // rumqttd closes the connection without an answer when the credentials are wrong.
            Err(e) if !accepted => {
                anyhow::bail!(
                    "the broker at {host}:{port} did not accept {user}: wrong name or password ({e})"
                )
            }
            Err(e) => anyhow::bail!("the connection to {host}:{port} failed: {e}"),
        }
    }
}
