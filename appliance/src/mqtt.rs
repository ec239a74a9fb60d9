//! The embedded MQTT broker [M15] (rumqttd, on its own thread) and the box's own subscriber.
//!
//! No anonymous access: each gateway or phone has named credentials, added by an administrator and
//! stored as Argon2id hashes (box-local keys `x/mqtt-cred/<name>`), checked by rumqttd's
//! authentication hook. The broker is sized for a Pi: a small in-memory log and a payload limit fit for
//! gateway messages. The box subscribes through rumqttd's in-process link, not a socket: gateway
//! sightings (ESPresense, Theengs/OpenMQTTGateway) go to the presence engine; payloads that are not
//! sightings are counted by reason, never fatal.
//!
//! Not yet: TLS on 8883 and MQTT 5.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use outpost_sync::{Store, StoreError, WriteSet};
use rumqttd::{
    Broker, Config as BrokerConfig, ConnectionSettings, Notification, RouterConfig, ServerSettings,
};
use serde::{Deserialize, Serialize};

use crate::{auth, clock::Clock, presence::Sink};

/// Topics the box subscribes to.
pub const SIGHTING_FILTERS: [&str; 2] = ["espresense/devices/#", "+/+/BTtoMQTT/+"];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Device credential names: 3–32 letters, digits, `.`, `-`, `_`.
pub fn check_name(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

/// Adds (or replaces) a device's credentials in `w`.
pub fn add_credential(
    w: &mut WriteSet,
    name: &str,
    password: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    w.put_local(
        &format!("mqtt-cred/{name}"),
        &Credential { hash: auth::hash_password(password), created_at: now },
    )?;
    Ok(())
}

/// The names of the devices that may connect.
pub fn credentials(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store
        .scan_local::<Credential>("mqtt-cred/")?
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix("mqtt-cred/").map(str::to_owned))
        .collect())
}

fn check(store: &Store, name: &str, password: &str) -> bool {
    store
        .get_local::<Credential>(&format!("mqtt-cred/{name}"))
        .ok()
        .flatten()
        .is_some_and(|c| auth::verify_password(password, &c.hash))
}

/// What the subscriber has seen, for the health page and the API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub sightings: u64,
    /// Refused payloads by reason (`not_json`, `absurd_rssi`, …).
    pub refused: BTreeMap<String, u64>,
}

/// The running broker.
pub struct Mqtt {
    pub listen: SocketAddr,
    pub counters: Arc<Mutex<Counters>>,
}

/// Starts the broker on `listen` and the box's subscriber, which sends gateway sightings to `sink`.
/// Both run on their own threads for the life of the process (rumqttd has no shutdown).
pub fn start(
    listen: SocketAddr,
    max_payload: usize,
    store: Store,
    clock: Arc<dyn Clock>,
    sink: Sink,
) -> anyhow::Result<Mqtt> {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: max_payload,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let auth_store = store.clone();
    connections.set_auth_handler(move |_client: String, user: String, pass: String| {
        let store = auth_store.clone();
        async move { tokio::task::spawn_blocking(move || check(&store, &user, &pass)).await.unwrap_or(false) }
    });
    let server = ServerSettings {
        name: "outpost-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = BrokerConfig {
        id: 0,
        router: RouterConfig {
            max_connections: 256,
            max_outgoing_packet_count: 200,
            // A small log: 4 segments of 1 MiB instead of rumqttd's 10 × 100 MB.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("outpost".to_owned(), server)])),
        ..BrokerConfig::default()
    };
    let mut broker = Broker::new(config);
    let (mut link_tx, mut link_rx) =
        broker.link("outpost-box").map_err(|e| anyhow::anyhow!("broker link: {e:?}"))?;
    for filter in SIGHTING_FILTERS {
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
        let mut last_log = Instant::now() - Duration::from_secs(60);
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
            match outpost_ble::gateway::parse(&topic, &forward.publish.payload, clock.now()) {
                Ok(sighting) => {
                    sink.send(sighting);
                    if let Ok(mut c) = c.lock() {
                        c.sightings += 1;
                    }
                }
                Err(error) => {
                    if let Ok(mut c) = c.lock() {
                        *c.refused.entry(error.kind().to_owned()).or_default() += 1;
                    }
                    // Logged at most once a minute: a broken gateway must not fill the journal.
                    if last_log.elapsed() > Duration::from_secs(60) {
                        last_log = Instant::now();
                        tracing::warn!(%error, "A gateway message was refused (counted; further ones this minute are not logged).");
                    }
                }
            }
        }
    })?;
    tracing::info!(%listen, "MQTT broker started.");
    Ok(Mqtt { listen, counters })
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
