//! The broker's front door: the ports devices connect to, and each device's rights.
//!
//! rumqttd serves MQTT 3.1.1 and MQTT 5 from separate listeners, terminates no TLS we can hand a
//! certificate made at run time to, and has no rights per account. The box therefore runs both
//! rumqttd servers on loopback ports of its own and listens on the configured ports itself:
//! - each connection comes in through a [`Gate`] (a cap in all and per address, an idle timeout);
//! - it takes TLS off (8883) and reads the whole CONNECT;
//! - it checks the device's name and password itself ([`Door`]): attempts counted per device and
//!   address before the hash, the hash in the process's bounded pool, a cap of connections per
//!   device, a will only on a topic the device may publish, never retained;
//! - it joins the client to the rumqttd server of its version with the client id made the
//!   device's own (`<device>:<client id>`: one device cannot take another's session), and vouches
//!   for it to rumqttd's login hook;
//! - then it reads every packet the device sends: a PUBLISH to a topic the device may not use is
//!   dropped (QoS 1 answered with a refusing PUBACK; QoS 2 closes the connection), retained flags
//!   are cleared, a SUBSCRIBE to a filter it may not read is answered with a refusing SUBACK. The
//!   rules are [`Device::may_publish`] and [`Device::may_subscribe`].

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use outpost_link::gate::{Gate, OnceAMinute};
use outpost_sync::secret::{Limits, Throttle};
use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use super::packet::{self, Connect, Refusal, Version};
use crate::app::{
    mqtt::{check_name, Device},
    Outpost,
};

/// The loopback ports of the two rumqttd servers.
#[derive(Debug, Clone, Copy)]
pub struct Backends {
    pub v4: SocketAddr,
    pub v5: SocketAddr,
}

/// Connection counts, for the health page and `/metrics`.
#[derive(Debug, Default)]
pub struct FrontStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// TLS handshakes that failed (a device that does not trust the certificate, a port scan).
    pub tls_failed: AtomicU64,
    /// First packets that were not an MQTT 3.1.1 or 5 CONNECT.
    pub not_mqtt: AtomicU64,
    /// Logins with a wrong name or password, or refused by the throttle or a cap.
    pub logins_refused: AtomicU64,
    /// Publishes and subscribes a device had no right to.
    pub denied: AtomicU64,
    /// Messages over `mqtt.max_payload_bytes`, dropped (the connection kept when the packet could
    /// be read; closed beyond the packet cap).
    pub too_large: AtomicU64,
}

/// A snapshot of [`FrontStats`].
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct FrontCounts {
    pub open: u64,
    pub accepted: u64,
    pub tls_failed: u64,
    pub not_mqtt: u64,
    pub logins_refused: u64,
    pub denied: u64,
    pub too_large: u64,
}

impl FrontStats {
    pub fn counts(&self) -> FrontCounts {
        FrontCounts {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            tls_failed: self.tls_failed.load(Ordering::Relaxed),
            not_mqtt: self.not_mqtt.load(Ordering::Relaxed),
            logins_refused: self.logins_refused.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
        }
    }
}

/// How long a new connection has to finish TLS and send its CONNECT.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Connections one device may hold at once (a gateway reconnecting overlaps its old connection).
pub const PER_DEVICE: usize = 4;
/// The front's caps: rumqttd's router takes 256 connections; a phone or gateway needs one or two.
pub const LIMITS: outpost_link::gate::Limits = outpost_link::gate::Limits {
    total: 250,
    per_address: 16,
    idle: Duration::from_secs(300),
    header: HANDSHAKE,
};
/// MQTT 5 topic aliases a connection may set (each maps a number to a topic it may publish).
const MAX_ALIASES: usize = 64;

/// Who may come in, and the bookkeeping of who has.
pub struct Door {
    app: Arc<Outpost>,
    pub stats: Arc<FrontStats>,
    /// Attempts per device and address, counted before the hash.
    throttle: Throttle,
    /// Connections open per device.
    per_device: Mutex<HashMap<String, usize>>,
    /// Client ids the front has just checked, for rumqttd's login hook: (device, when).
    vouched: Mutex<HashMap<String, (String, Instant)>>,
    /// The largest packet a device may send, and the largest message in it.
    max_packet: usize,
    max_payload: usize,
    last_log: OnceAMinute,
}

/// A device's place among its connections; given back when dropped.
struct Seat<'a> {
    door: &'a Door,
    name: String,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        let mut map = self.door.per_device.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.name);
            }
        }
    }
}

impl Door {
    pub fn new(app: Arc<Outpost>, max_payload: usize) -> Door {
        Door {
            app,
            stats: Arc::new(FrontStats::default()),
            throttle: Throttle::new(Limits::from_attempts(5), chrono::Duration::minutes(15)),
            per_device: Mutex::new(HashMap::new()),
            vouched: Mutex::new(HashMap::new()),
            // A PUBLISH's topic and properties on top of its payload.
            max_packet: max_payload + 4096,
            max_payload,
            last_log: OnceAMinute::default(),
        }
    }

    /// Logs a refusal at most once a minute: a device retrying must not fill the journal.
    fn warn_once_a_minute(&self, what: &str, device: &str) {
        if self.last_log.due() {
            let device = if check_name(device) { device } else { "(not a device name)" };
            tracing::warn!(device, "{what} (counted; further ones this minute are not logged).");
        }
    }

    /// Checks a CONNECT from `ip`: the device it opens and its seat, or why not.
    async fn admit(&self, connect: &Connect, ip: IpAddr) -> Result<(Device, Seat<'_>), Refusal> {
        let refuse = |refusal: Refusal, name: &str| {
            self.stats.logins_refused.fetch_add(1, Ordering::Relaxed);
            self.warn_once_a_minute("MQTT login refused", name);
            refusal
        };
        // MQTT 3.1.1: a session to keep needs a name to keep it under. (MQTT 5 lets the server
        // assign one; the front does, as it does for a clean session.)
        if connect.version == Version::V311 && connect.client_id.is_empty() && !connect.clean {
            return Err(refuse(Refusal::IdentifierRejected, connect.username.as_deref().unwrap_or("")));
        }
        let (Some(name), Some(password)) = (&connect.username, &connect.password) else {
            return Err(refuse(Refusal::BadCredentials, ""));
        };
        let Ok(password) = String::from_utf8(password.clone()) else {
            return Err(refuse(Refusal::BadCredentials, name));
        };
        if self.throttle.attempt(name, Some(ip), chrono::Utc::now()).is_err() {
            return Err(refuse(Refusal::Throttled, name));
        }
        let (app, checked) = (self.app.clone(), name.clone());
        let device = match tokio::task::spawn_blocking(move || app.device_login(&checked, &password)).await {
            Ok(Ok(Some(device))) => device,
            Ok(Ok(None)) => return Err(refuse(Refusal::BadCredentials, name)),
            Ok(Err(_)) | Err(_) => return Err(refuse(Refusal::Unavailable, name)),
        };
        self.throttle.succeeded(name, Some(ip));
        if connect.will_topic.as_deref().is_some_and(|t| !device.may_publish(t)) {
            return Err(refuse(Refusal::NotAuthorized, name));
        }
        {
            let mut map = self.per_device.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(device.name.clone()).or_default();
            if *n >= PER_DEVICE {
                return Err(refuse(Refusal::Quota, name));
            }
            *n += 1;
        }
        let seat = Seat { door: self, name: device.name.clone() };
        Ok((device, seat))
    }

    /// Notes that the front has checked the client now connecting to rumqttd as `client_id`.
    fn vouch(&self, client_id: &str, device: &str) {
        let mut map = self.vouched.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < HANDSHAKE);
        map.insert(client_id.to_owned(), (device.to_owned(), Instant::now()));
    }

    /// rumqttd's login hook: only clients the front has just checked, as the device it checked.
    pub fn vouched_for(&self, client_id: &str, user: &str) -> bool {
        let mut map = self.vouched.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(client_id).is_some_and(|(device, at)| device == user && at.elapsed() < HANDSHAKE)
    }
}

/// Accepts connections on `listener` for ever through `gate`, each on its own task; with `tls`, TLS
/// is taken off first.
pub async fn serve(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    backends: Backends,
    door: Arc<Door>,
) {
    loop {
        let (stream, peer) = gate.accept(&listener).await;
        door.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let (tls, door) = (tls.clone(), door.clone());
        tokio::spawn(async move {
            door.stats.open.fetch_add(1, Ordering::Relaxed);
            match tls {
                None => session(stream, peer, backends, &door).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => session(stream, peer, backends, &door).await,
                    Ok(Err(error)) => {
                        door.stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, %error, "MQTT TLS handshake failed.");
                    }
                    Err(_) => {
                        door.stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            door.stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One device's connection: its CONNECT checked, then joined to the server of its version with
/// every packet it sends checked, until either side closes.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    client: S,
    peer: SocketAddr,
    backends: Backends,
    door: &Door,
) {
    let (client_r, mut client_w) = tokio::io::split(client);
    let mut client_r = BufReader::new(client_r);
    let Some((raw, connect)) = first_connect(&mut client_r, peer, door).await else { return };
    let (device, _seat) = match door.admit(&connect, peer.ip()).await {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let _ = client_w.write_all(&packet::connack(connect.version, refusal)).await;
            let _ = client_w.shutdown().await;
            return;
        }
    };
    let client_id = if connect.client_id.is_empty() {
        format!("{}:~{}", device.name, outpost_sync::secret::random_token())
    } else {
        format!("{}:{}", device.name, connect.client_id)
    };
    let Ok(rewritten) = connect.rewrite(&raw, &client_id) else { return };
    let backend = match connect.version {
        Version::V311 => backends.v4,
        Version::V5 => backends.v5,
    };
    let server = match TcpStream::connect(backend).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, "The MQTT broker cannot be reached on loopback.");
            let _ = client_w.write_all(&packet::connack(connect.version, Refusal::Unavailable)).await;
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let (server_r, mut server_w) = server.into_split();
    door.vouch(&client_id, &device.name);
    if server_w.write_all(&rewritten).await.is_err() {
        return;
    }
    let client = Side { read: client_r, write: client_w };
    let server = Side { read: BufReader::new(server_r), write: server_w };
    join(client, server, connect.version, &device, door).await;
}

/// The first packet of a connection, if it is an MQTT 3.1.1 or 5 CONNECT sent within
/// [`HANDSHAKE`]: its bytes and what it says.
async fn first_connect<R: AsyncRead + Unpin>(
    client: &mut R,
    peer: SocketAddr,
    door: &Door,
) -> Option<(Vec<u8>, Connect)> {
    match tokio::time::timeout(HANDSHAKE, packet::read(client, door.max_packet)).await {
        Ok(Ok(Some(raw))) => match Connect::parse(&raw) {
            Ok(connect) => Some((raw, connect)),
            Err(reason) => {
                door.stats.not_mqtt.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, %reason, "Not an MQTT connection.");
                None
            }
        },
        Ok(Err(_)) => {
            door.stats.not_mqtt.fetch_add(1, Ordering::Relaxed);
            None
        }
        Ok(Ok(None)) | Err(_) => None,
    }
}

/// One end of a joined connection.
struct Side<R, W> {
    read: R,
    write: W,
}

/// Passes packets both ways until either side ends: the device's checked against its rights, the
/// server's as they are; the device receives whole packets, the server's and the front's refusals.
async fn join<CR, CW, SR, SW>(
    mut client: Side<CR, CW>,
    mut server: Side<SR, SW>,
    version: Version,
    device: &Device,
    door: &Door,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let (to_client, mut outgoing) = tokio::sync::mpsc::channel::<Vec<u8>>(32);
    let up = async {
        let mut aliases = HashMap::<u16, String>::new();
        loop {
            let p = match packet::read(&mut client.read, door.max_packet).await {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(error) => {
                    if error.to_string().contains("size limit") {
                        door.stats.too_large.fetch_add(1, Ordering::Relaxed);
                        door.warn_once_a_minute(
                            "An MQTT device sent a packet over the size limit",
                            &device.name,
                        );
                    }
                    return;
                }
            };
            let verdict = check(version, device, p, (&mut aliases, door.max_payload));
            match verdict {
                Verdict::Pass(_) => {}
                Verdict::TooLarge(_) => {
                    door.stats.too_large.fetch_add(1, Ordering::Relaxed);
                    door.warn_once_a_minute(
                        "An MQTT device sent a message over the size limit",
                        &device.name,
                    );
                }
                _ => {
                    door.stats.denied.fetch_add(1, Ordering::Relaxed);
                    door.warn_once_a_minute("An MQTT device used a topic it has no right to", &device.name);
                }
            }
            let passed = match verdict {
                Verdict::Pass(p) => server.write.write_all(&p).await.is_ok(),
                Verdict::Refuse(None) | Verdict::TooLarge(None) => true,
                Verdict::Refuse(Some(answer)) | Verdict::TooLarge(Some(answer)) => {
                    to_client.send(answer).await.is_ok()
                }
                Verdict::Close => false,
            };
            if !passed {
                return;
            }
        }
    };
    let down = {
        let to_client = to_client.clone();
        async move {
            // What the broker sends is bounded by what it accepted from devices.
            while let Ok(Some(p)) = packet::read(&mut server.read, 16 * 1024 * 1024).await {
                if to_client.send(p).await.is_err() {
                    return;
                }
            }
        }
    };
    let write = async {
        while let Some(p) = outgoing.recv().await {
            if client.write.write_all(&p).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = up => {}
        () = down => {}
        () = write => {}
    }
}

/// What the front does with a packet from a device.
enum Verdict {
    /// Passed to the broker (retain flag cleared).
    Pass(Vec<u8>),
    /// Not passed on; the answer, if any, goes back to the device.
    Refuse(Option<Vec<u8>>),
    /// A message over the size limit: dropped and counted, the connection kept; the answer, if any.
    TooLarge(Option<Vec<u8>>),
    /// The connection is closed.
    Close,
}

/// Checks one packet from `device` against its rights.
fn check(
    version: Version,
    device: &Device,
    p: Vec<u8>,
    (aliases, max_payload): (&mut HashMap<u16, String>, usize),
) -> Verdict {
    match packet::kind(&p) {
        packet::PUBLISH => {
            let Ok(publish) = packet::publish(version, &p) else { return Verdict::Close };
            let topic = match (publish.topic.is_empty(), publish.alias) {
                (false, Some(alias)) => {
                    if aliases.len() >= MAX_ALIASES && !aliases.contains_key(&alias) {
                        return Verdict::Close;
                    }
                    aliases.insert(alias, publish.topic.clone());
                    publish.topic
                }
                (false, None) => publish.topic,
                (true, Some(alias)) => match aliases.get(&alias) {
                    Some(topic) => topic.clone(),
                    None => return Verdict::Close,
                },
                (true, None) => return Verdict::Close,
            };
            if device.may_publish(&topic) && publish.payload_len > max_payload {
                return match (publish.qos, publish.packet_id) {
                    (0, _) => Verdict::TooLarge(None),
                    (1, Some(id)) => Verdict::TooLarge(Some(packet::puback_too_large(version, id))),
                    _ => Verdict::Close,
                };
            }
            if device.may_publish(&topic) {
                return Verdict::Pass(packet::without_retain(p));
            }
            match (publish.qos, publish.packet_id) {
                (0, _) => Verdict::Refuse(None),
                (1, Some(id)) => Verdict::Refuse(Some(packet::puback_refused(version, id))),
                _ => Verdict::Close,
            }
        }
        packet::SUBSCRIBE => match packet::subscribe(version, &p) {
            Ok((_, filters)) if filters.iter().all(|f| device.may_subscribe(f)) => Verdict::Pass(p),
            Ok((id, filters)) => Verdict::Refuse(Some(packet::suback_refused(version, id, filters.len()))),
            Err(_) => Verdict::Close,
        },
        packet::CONNECT => Verdict::Close,
        _ => Verdict::Pass(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::mqtt::DeviceKind;

    fn publish(version: Version, topic: &str, qos: u8, retain: bool) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&[0, 5]);
        }
        if version == Version::V5 {
            body.push(0);
        }
        body.extend_from_slice(b"{}");
        let mut p = vec![0x30 | (qos << 1) | u8::from(retain), body.len() as u8];
        p.extend(body);
        p
    }

    #[test]
    fn a_device_publishes_only_where_it_may_and_never_retained() {
        let gw = Device { name: "phong-1".into(), kind: DeviceKind::Gateway };
        let mut aliases = HashMap::new();
        let own = publish(Version::V311, "home/phong-1/BTtoMQTT/AABBCCDDEEFF", 0, true);
        match check(Version::V311, &gw, own, (&mut aliases, 4096)) {
            Verdict::Pass(p) => assert_eq!(p[0] & 0x01, 0, "retain cleared"),
            _ => panic!("its own topic passes"),
        }
        let forged = publish(Version::V311, "home/phong-2/BTtoMQTT/AABBCCDDEEFF", 0, false);
        assert!(matches!(check(Version::V311, &gw, forged, (&mut aliases, 4096)), Verdict::Refuse(None)));
        let forged = publish(Version::V5, "outpost/position/app-lan", 1, false);
        match check(Version::V5, &gw, forged, (&mut aliases, 4096)) {
            Verdict::Refuse(Some(ack)) => assert_eq!(ack, vec![0x40, 3, 0, 5, 0x87]),
            _ => panic!("a refused QoS 1 publish is acknowledged as refused"),
        }
        let forged = publish(Version::V311, "home/phong-2/LWT", 2, false);
        assert!(matches!(check(Version::V311, &gw, forged, (&mut aliases, 4096)), Verdict::Close));
        // Its own topic, but a message over the limit (here 1 byte): dropped, counted, acknowledged
        // as refused at QoS 1, and the connection kept.
        let big = publish(Version::V5, "home/phong-1/BTtoMQTT/AABBCCDDEEFF", 1, false);
        match check(Version::V5, &gw, big, (&mut aliases, 1)) {
            Verdict::TooLarge(Some(ack)) => assert_eq!(ack, vec![0x40, 3, 0, 5, 0x97]),
            _ => panic!("a message over the limit is refused, not passed"),
        }
        let big = publish(Version::V311, "home/phong-1/BTtoMQTT/AABBCCDDEEFF", 0, false);
        assert!(matches!(check(Version::V311, &gw, big, (&mut aliases, 1)), Verdict::TooLarge(None)));
    }
}
