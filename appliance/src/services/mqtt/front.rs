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
//!   rules are [`Device::may_publish`] and [`Device::may_subscribe`];
//! - what the broker sends back is held to what an MQTT 5 client asked for ([`flow`]), and the
//!   front keeps MQTT 5 session expiry ([`Sessions`]), which rumqttd does not.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
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

use super::{
    flow::{self, Downstream},
    packet::{self, Announce, Connect, Refusal, SubRefusal, Version},
};
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
    /// be read; closed beyond the packet cap); and messages larger than an MQTT 5 client's Maximum
    /// Packet Size, not sent to it.
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
/// The longest an MQTT 5 session outlives its connection (a client asking more is told so).
pub const SESSION_EXPIRY_MAX: u32 = 86_400;
/// MQTT 5 sessions remembered after their connection (the oldest forgotten beyond).
const SESSIONS_MAX: usize = 4_096;

/// MQTT 5 session expiry, which rumqttd does not know: it keeps a session after its connection
/// exactly when the connection did not start clean (MQTT 3.1.1's rule), until it restarts. The
/// front remembers when each MQTT 5 session's last connection ended and for how long it was to be
/// kept, and joins each connection to rumqttd so that rumqttd does the right thing:
/// - a session to resume (the client asks, and it has not expired): the same rumqttd session;
/// - otherwise, one to keep after the connection (a Session Expiry Interval above 0): a new rumqttd
///   client id (`<device>~<n>:<client id>`: `~` is in no device name, and rumqttd refuses `#`,
///   `+`, `$` and `/` in ids), which has nothing to resume, not starting clean so that
///   rumqttd keeps it — the client is told Session Present 0;
/// - otherwise (nothing to resume, nothing to keep): a clean start.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    next: AtomicU64,
}

#[derive(Clone, Copy)]
struct Session {
    /// Which of rumqttd's sessions for the client id is the current one.
    generation: u64,
    state: SessionState,
}

#[derive(Clone, Copy)]
enum SessionState {
    /// A connection has it; the number tells which (a newer one takes it over).
    Open(u64),
    /// Its last connection ended then; kept this many seconds.
    Ended(Instant, u32),
}

impl Session {
    fn alive(&self) -> bool {
        match self.state {
            SessionState::Open(_) => true,
            SessionState::Ended(at, expiry) => at.elapsed() < Duration::from_secs(u64::from(expiry)),
        }
    }
}

/// How a connection is joined to rumqttd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The connection's number, for [`Sessions::close`].
    pub n: u64,
    /// The session is resumed.
    pub resumed: bool,
    /// The client id rumqttd knows it by.
    pub broker_id: String,
    /// Whether rumqttd is to start (and end) it clean.
    pub clean: bool,
}

impl Sessions {
    /// An MQTT 5 connection opens `client_id`'s session (`clean`: it asked for Clean Start;
    /// `expiry`: seconds to keep it after).
    pub fn open(&self, client_id: &str, clean: bool, expiry: u32) -> Joined {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.get(client_id).copied();
        let resumed = !clean && before.is_some_and(|s| s.alive());
        // A connection already open keeps its rumqttd id, so that rumqttd takes it over.
        let keep_id = resumed || before.is_some_and(|s| matches!(s.state, SessionState::Open(_)));
        let generation = match before {
            Some(s) if keep_id || expiry == 0 => s.generation,
            Some(s) => s.generation + 1,
            None => 0,
        };
        map.insert(client_id.to_owned(), Session { generation, state: SessionState::Open(n) });
        let broker_id = match client_id.split_once(':') {
            _ if generation == 0 => client_id.to_owned(),
            Some((device, client)) => format!("{device}~{generation}:{client}"),
            None => format!("{client_id}~{generation}"),
        };
        Joined { n, resumed, broker_id, clean: !resumed && expiry == 0 }
    }

    /// Connection `n` of `client_id` ended; its session is kept `expiry` seconds.
    pub fn close(&self, client_id: &str, n: u64, expiry: u32) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(session) = map.get_mut(client_id) else { return };
        if !matches!(session.state, SessionState::Open(open) if open == n) {
            return;
        }
        session.state = SessionState::Ended(Instant::now(), expiry);
        if map.len() > SESSIONS_MAX {
            map.retain(|_, s| s.alive());
        }
        while map.len() > SESSIONS_MAX {
            let oldest = map
                .iter()
                .filter_map(|(id, s)| match s.state {
                    SessionState::Ended(at, _) => Some((at, id.clone())),
                    SessionState::Open(_) => None,
                })
                .min();
            match oldest {
                Some((_, id)) => map.remove(&id),
                None => break,
            };
        }
    }
}

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
    sessions: Sessions,
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
            sessions: Sessions::default(),
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

    /// Counts (and logs, once a minute) a packet the front did not pass on.
    fn count(&self, verdict: &Verdict, device: &str) {
        match verdict {
            Verdict::Pass(_) => {}
            Verdict::NotHonoured(_) => {
                self.warn_once_a_minute(
                    "An MQTT device asked for what the box does not honour (No Local)",
                    device,
                );
            }
            Verdict::TooLarge(_) => {
                self.stats.too_large.fetch_add(1, Ordering::Relaxed);
                self.warn_once_a_minute("An MQTT device sent a message over the size limit", device);
            }
            Verdict::Refuse(_) | Verdict::Close => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                self.warn_once_a_minute("An MQTT device used a topic it has no right to", device);
            }
        }
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
    // An MQTT 5 client that sent no id is told the one it has (3.1.1 cannot be).
    let assigned = connect.client_id.is_empty().then(|| format!("~{}", outpost_sync::secret::random_token()));
    let client_id = format!("{}:{}", device.name, assigned.as_deref().unwrap_or(&connect.client_id));
    let expiry = connect.session_expiry.min(SESSION_EXPIRY_MAX);
    let joined = match connect.version {
        Version::V5 => door.sessions.open(&client_id, connect.clean, expiry),
        // MQTT 3.1.1's sessions are rumqttd's own.
        Version::V311 => Joined { n: 0, resumed: false, broker_id: client_id.clone(), clean: connect.clean },
    };
    let Ok(rewritten) = connect.rewrite(&raw, &joined.broker_id, joined.clean) else { return };
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
    door.vouch(&joined.broker_id, &device.name);
    if server_w.write_all(&rewritten).await.is_err() {
        return;
    }
    let client = Side { read: client_r, write: client_w };
    let server = Side { read: BufReader::new(server_r), write: server_w };
    let announce = Announce {
        session_expiry: (expiry != connect.session_expiry).then_some(expiry),
        assigned_client_id: assigned,
        maximum_packet_size: u32::try_from(door.max_packet).unwrap_or(u32::MAX),
        topic_alias_maximum: MAX_ALIASES as u16,
    };
    let limits = (connect.receive_maximum, connect.maximum_packet_size);
    let link = Link { version: connect.version, device: &device, door, expiry: AtomicU32::new(expiry) };
    join(client, server, &link, Downstream::new(connect.version, limits, announce)).await;
    if connect.version == Version::V5 {
        door.sessions.close(&client_id, joined.n, link.expiry.load(Ordering::Relaxed));
    }
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

/// What a joined connection is: its version, device, and the state of what it is sent.
struct Link<'a> {
    version: Version,
    device: &'a Device,
    door: &'a Door,
    /// MQTT 5: how long its session is kept after it (a DISCONNECT may change it).
    expiry: AtomicU32,
}

/// Passes packets both ways until either side ends: the device's checked against its rights, the
/// server's held to what the device asked for ([`Downstream`]); each side receives whole packets,
/// the device also the front's refusals, the server the front's acknowledgements of what it
/// dropped.
async fn join<CR, CW, SR, SW>(
    mut client: Side<CR, CW>,
    mut server: Side<SR, SW>,
    link: &Link<'_>,
    downstream: Downstream,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let (to_client, mut outgoing) = tokio::sync::mpsc::channel::<Vec<u8>>(32);
    // Written to directly: what the device sent is with the broker before its next packet is read
    // (a device that publishes and leaves loses nothing).
    let to_server = tokio::sync::Mutex::new(server.write);
    // Held while its sends are queued, so that what it releases keeps its order.
    let downstream = tokio::sync::Mutex::new(downstream);
    let ends = Ends { client: to_client, server: &to_server, downstream: &downstream };
    let up = from_device(&mut client.read, link, &ends);
    let down = from_broker(&mut server.read, link, &ends);
    let write_client = async {
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
        () = write_client => {}
    }
}

/// Where a joined connection's packets go.
struct Ends<'a, W> {
    client: tokio::sync::mpsc::Sender<Vec<u8>>,
    server: &'a tokio::sync::Mutex<W>,
    downstream: &'a tokio::sync::Mutex<Downstream>,
}

impl<W: AsyncWrite + Unpin> Ends<'_, W> {
    /// Writes `p` to the broker; false once it is gone.
    async fn to_server(&self, p: &[u8]) -> bool {
        self.server.lock().await.write_all(p).await.is_ok()
    }

    /// Queues `sends`; false once either side is gone.
    async fn send(&self, sends: flow::Sends) -> bool {
        for p in sends.client {
            if self.client.send(p).await.is_err() {
                return false;
            }
        }
        for p in sends.server {
            if !self.to_server(&p).await {
                return false;
            }
        }
        true
    }
}

/// The device's packets, checked, to the broker, until it ends.
async fn from_device<R, W>(read: &mut R, link: &Link<'_>, ends: &Ends<'_, W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (version, device, door) = (link.version, link.device, link.door);
    let mut aliases = HashMap::<u16, String>::new();
    loop {
        let p = match packet::read(read, door.max_packet).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(error) => {
                if error.to_string().contains("size limit") {
                    door.stats.too_large.fetch_add(1, Ordering::Relaxed);
                    door.warn_once_a_minute("An MQTT device sent a packet over the size limit", &device.name);
                }
                return;
            }
        };
        match packet::kind(&p) {
            packet::PUBACK | packet::PUBREC | packet::PUBCOMP => {
                let mut downstream = ends.downstream.lock().await;
                if !ends.send(downstream.device_sent(&p)).await {
                    return;
                }
            }
            packet::DISCONNECT if version == Version::V5 => {
                if let Ok(Some(expiry)) = packet::disconnect_expiry(&p) {
                    link.expiry.store(expiry.min(SESSION_EXPIRY_MAX), Ordering::Relaxed);
                }
            }
            _ => {}
        }
        let verdict = check(version, device, p, (&mut aliases, door.max_payload));
        door.count(&verdict, &device.name);
        let passed = match verdict {
            Verdict::Pass(p) => ends.to_server(&p).await,
            Verdict::Refuse(None) | Verdict::TooLarge(None) => true,
            Verdict::Refuse(Some(answer))
            | Verdict::TooLarge(Some(answer))
            | Verdict::NotHonoured(answer) => ends.client.send(answer).await.is_ok(),
            Verdict::Close => false,
        };
        if !passed {
            return;
        }
    }
}

/// The broker's packets to the device, held to what it asked for, until either ends.
async fn from_broker<R, W>(read: &mut R, link: &Link<'_>, ends: &Ends<'_, W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // What the broker sends is bounded by what it accepted from devices.
    while let Ok(Some(p)) = packet::read(read, 16 * 1024 * 1024).await {
        let mut downstream = ends.downstream.lock().await;
        let Ok(sends) = downstream.broker_sent(p) else {
            link.door.warn_once_a_minute("An MQTT device stopped acknowledging messages", &link.device.name);
            return;
        };
        if sends.dropped > 0 {
            link.door.stats.too_large.fetch_add(sends.dropped as u64, Ordering::Relaxed);
        }
        if !ends.send(sends).await {
            return;
        }
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
    /// An MQTT 5 feature the box does not honour, refused with the answer.
    NotHonoured(Vec<u8>),
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
            Ok((id, filters)) => {
                let refused = |why| packet::suback_refused(version, id, filters.len(), why);
                if !filters.iter().all(|(f, _)| device.may_subscribe(f)) {
                    Verdict::Refuse(Some(refused(SubRefusal::NotAuthorized)))
                } else if filters.iter().any(|(_, options)| options & packet::NO_LOCAL != 0) {
                    // rumqttd would send the device its own messages back: refused, not ignored.
                    Verdict::NotHonoured(refused(SubRefusal::NoLocal))
                } else {
                    Verdict::Pass(p)
                }
            }
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
    fn mqtt_5_sessions_are_kept_as_long_as_asked_and_no_longer() {
        let s = Sessions::default();
        // Nothing to resume, nothing to keep: a clean start.
        let j = s.open("gw:a", false, 0);
        assert_eq!((j.resumed, j.broker_id.as_str(), j.clean), (false, "gw:a", true));
        s.close("gw:a", j.n, 0);
        // Kept 60 s: rumqttd keeps it (not clean), and the next connection resumes it.
        let j = s.open("gw:a", false, 60);
        assert_eq!((j.resumed, j.clean), (false, false));
        assert_eq!(j.broker_id, "gw~1:a", "a rumqttd session with nothing in it");
        s.close("gw:a", j.n, 60);
        let j = s.open("gw:a", false, 60);
        assert_eq!((j.resumed, j.broker_id.as_str(), j.clean), (true, "gw~1:a", false));
        // A newer connection takes it over: the older one's end changes nothing.
        let newer = s.open("gw:a", false, 60);
        assert!(newer.resumed);
        s.close("gw:a", j.n, 0);
        s.close("gw:a", newer.n, 60);
        assert!(s.open("gw:a", false, 60).resumed, "kept: the newer connection's expiry counts");
        // Clean Start with a session to keep after: a new one, kept.
        let j = s.open("gw:b", true, 30);
        assert_eq!((j.resumed, j.clean), (false, false));
        s.close("gw:b", j.n, 0);
        assert!(!s.open("gw:b", false, 30).resumed, "a DISCONNECT set its expiry to 0");
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
