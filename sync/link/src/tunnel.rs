//! Reach from home: a box keeps one connection open to the province (mutual TLS with the site's
//! certificate, so a box behind NAT or carrier-grade NAT is reachable), multiplexed with yamux. For
//! each phone's TLS connection to `<site>.<zone>` the province opens a stream on that site's
//! tunnel and splices the phone's bytes onto it, chosen by the server name alone; TLS ends at the
//! box, so the province carries ciphertext it cannot read.
//!
//! Each stream starts with one byte: [`PING`] (either end opens one every [`PING_EVERY`]; a tunnel
//! that heard none for [`DEAD_AFTER`] is closed, so a dead or silent peer is dropped and the box
//! dials again), or [`PHONE`] followed by the phone's address ([`phone_header`]), then the phone's
//! bytes. Only the province may open phone streams.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::Poll,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, oneshot},
};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// The first byte of a stream that only says "still here".
pub const PING: u8 = 0;
/// The first byte of a stream that carries a phone's connection.
pub const PHONE: u8 = 1;
/// How often each end opens a ping stream.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A tunnel without any stream from the other end for this long is closed.
pub const DEAD_AFTER: Duration = Duration::from_secs(65);
/// Streams open at once on one tunnel (phones of one site at once, through the province).
pub const MAX_STREAMS: usize = 512;
/// A stream's first bytes must come within this time.
const HEADER_WITHIN: Duration = Duration::from_secs(10);

/// A stream of a tunnel, as tokio reads it.
pub type Stream = Compat<yamux::Stream>;

/// A phone's connection the province handed to the box: the stream and the phone's address.
pub type Phone = (Stream, SocketAddr);

/// What goes before a phone's bytes: [`PHONE`], its address as 16 bytes (IPv4 mapped into IPv6)
/// and its port, big-endian. The box's rate limits key on it, not on the province's address.
pub fn phone_header(peer: SocketAddr) -> [u8; 19] {
    let ip = match peer.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut header = [0u8; 19];
    header[0] = PHONE;
    header[1..17].copy_from_slice(&ip.octets());
    header[17..].copy_from_slice(&peer.port().to_be_bytes());
    header
}

fn phone_address(bytes: &[u8; 18]) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    let ip = Ipv6Addr::from(octets);
    let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
    SocketAddr::new(ip, u16::from_be_bytes([bytes[16], bytes[17]]))
}

/// Opens streams on a running tunnel. Cheap to clone; the tunnel closes when every opener is gone.
#[derive(Clone, Debug)]
pub struct Opener(mpsc::Sender<oneshot::Sender<yamux::Stream>>);

impl Opener {
    /// A new stream to the other end.
    pub async fn open(&self) -> anyhow::Result<Stream> {
        let (tx, rx) = oneshot::channel();
        self.0.send(tx).await.ok().context("the tunnel is closed")?;
        Ok(rx.await.ok().context("the tunnel is closed")?.compat())
    }

    /// Whether the tunnel has ended.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A running tunnel: its opener, the phones' streams (at the box), and its end.
pub struct Tunnel {
    pub opener: Opener,
    pub phones: mpsc::Receiver<Phone>,
    pub ended: tokio::task::JoinHandle<()>,
}

/// Which end of the tunnel this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The box: dials, and takes phones.
    Site,
    /// The province: is dialled, and opens phone streams.
    Province,
}

/// Runs a tunnel over `io` (already through TLS) until either end closes it or it goes silent.
pub fn start<T>(io: T, end: End) -> Tunnel
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mode = match end {
        End::Site => yamux::Mode::Client,
        End::Province => yamux::Mode::Server,
    };
    let mut config = yamux::Config::default();
    config.set_max_num_streams(MAX_STREAMS);
    // Frames written between two flushes leave in one TLS record and one write to the socket.
    let io = tokio::io::BufWriter::with_capacity(16 << 10, io);
    let connection = yamux::Connection::new(io.compat(), config, mode);
    let (open_tx, open_rx) = mpsc::channel(64);
    let (phone_tx, phones) = mpsc::channel(64);
    let opener = Opener(open_tx);
    let heard = Arc::new(Heard::default());
    let inbound = {
        let heard = heard.clone();
        move |stream: yamux::Stream| {
            heard.now();
            let (heard, phones) = (heard.clone(), (end == End::Site).then(|| phone_tx.clone()));
            tokio::spawn(take_stream(stream.compat(), heard, phones));
        }
    };
    let pinger = opener.clone();
    let ended = tokio::spawn(async move {
        tokio::select! {
            () = drive(connection, open_rx, inbound) => {}
            () = ping(pinger) => {}
            () = heard.silent_for(DEAD_AFTER) => {
                tracing::debug!("A tunnel went silent; closing it.");
            }
        }
    });
    Tunnel { opener, phones, ended }
}

/// Polls the connection: opens the streams asked for, and hands each stream the other end opens to
/// `inbound`. Ends when the connection does, or when no opener is left.
async fn drive<T>(
    mut connection: yamux::Connection<T>,
    mut opens: mpsc::Receiver<oneshot::Sender<yamux::Stream>>,
    inbound: impl Fn(yamux::Stream),
) where
    T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let mut waiting: Option<oneshot::Sender<yamux::Stream>> = None;
    std::future::poll_fn(|cx| loop {
        if waiting.is_none() {
            match opens.poll_recv(cx) {
                Poll::Ready(Some(tx)) => waiting = Some(tx),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {}
            }
        }
        if waiting.is_some() {
            match connection.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    if let Some(tx) = waiting.take() {
                        let _ = tx.send(stream);
                    }
                    continue;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {}
            }
        }
        match connection.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(stream))) => inbound(stream),
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
}

/// Opens a ping stream every [`PING_EVERY`], until the tunnel closes.
async fn ping(opener: Opener) {
    loop {
        tokio::time::sleep(PING_EVERY).await;
        let sent = tokio::time::timeout(HEADER_WITHIN, async {
            let mut stream = opener.open().await?;
            stream.write_all(&[PING]).await?;
            stream.shutdown().await?;
            anyhow::Ok(())
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

/// Reads a stream's first byte: a ping is done with; a phone's stream (at the box only) goes to
/// `phones` with the phone's address. Anything else is dropped.
async fn take_stream(mut stream: Stream, heard: Arc<Heard>, phones: Option<mpsc::Sender<Phone>>) {
    let header = tokio::time::timeout(HEADER_WITHIN, async {
        let kind = stream.read_u8().await?;
        let mut address = [0u8; 18];
        if kind == PHONE {
            stream.read_exact(&mut address).await?;
        }
        std::io::Result::Ok((kind, address))
    })
    .await;
    heard.now();
    if let (Ok(Ok((PHONE, address))), Some(phones)) = (header, phones) {
        // A box with every phone slot taken lets this one go: the phone sees a closed connection.
        let _ = phones.try_send((stream, phone_address(&address)));
    }
}

/// When the other end was last heard of.
struct Heard {
    start: tokio::time::Instant,
    last_ms: AtomicU64,
}

impl Default for Heard {
    fn default() -> Heard {
        Heard { start: tokio::time::Instant::now(), last_ms: AtomicU64::new(0) }
    }
}

impl Heard {
    fn now(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing was heard for `limit`.
    async fn silent_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.start.elapsed().saturating_sub(last);
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet + Duration::from_millis(50)).await;
        }
    }
}

/// Whether the box's tunnel is open, and how often it was opened: for the health page.
#[derive(Debug, Default)]
pub struct SiteState {
    pub up: std::sync::atomic::AtomicBool,
    pub opened: AtomicU64,
    pub phones: AtomicU64,
}

impl SiteState {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "up": self.up.load(Ordering::Relaxed),
            "opened": self.opened.load(Ordering::Relaxed),
            "phones": self.phones.load(Ordering::Relaxed),
        })
    }
}

/// The box's end: dials the province's tunnel port at `addr` with `tls` (the site's certificate,
/// the province's checked), hands each phone to `phones`, and dials again whenever the tunnel ends:
/// after about 2 s, doubling to a minute while it keeps failing. Ends when `phones` is closed.
pub async fn keep(
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    phones: mpsc::Sender<Phone>,
    state: Arc<SiteState>,
) {
    let mut failures = 0u32;
    let warned = crate::gate::OnceAMinute::default();
    loop {
        let began = Instant::now();
        let dialled = tokio::time::timeout(
            HEADER_WITHIN,
            crate::net::connect(crate::net::Peer::province(&addr), tls.clone()),
        )
        .await;
        let error = match dialled {
            Ok(Ok(io)) => {
                if !carry(io, &phones, &state, &addr).await {
                    return;
                }
                None
            }
            Ok(Err(error)) => Some(format!("{error:#}")),
            Err(_) => Some("no answer in time".to_owned()),
        };
        if let Some(error) = error.filter(|_| warned.due()) {
            tracing::warn!(province = %addr, %error, "Cannot open the tunnel for phones from home.");
        }
        if phones.is_closed() {
            return;
        }
        failures = if began.elapsed() > Duration::from_secs(60) { 0 } else { failures + 1 };
        let jitter = f64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        ) / 1e9;
        tokio::time::sleep(crate::exchange::backoff(
            Duration::from_secs(2),
            Duration::from_secs(60),
            failures,
            jitter,
        ))
        .await;
    }
}

/// Carries one tunnel's phones to `phones` until the tunnel ends (`true`) or the box's web is gone
/// (`false`).
async fn carry<T>(io: T, phones: &mpsc::Sender<Phone>, state: &SiteState, addr: &str) -> bool
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Tunnel { phones: mut arriving, mut ended, opener } = start(io, End::Site);
    state.up.store(true, Ordering::Relaxed);
    state.opened.fetch_add(1, Ordering::Relaxed);
    tracing::info!(province = %addr, "The tunnel that carries phones from home is open.");
    let web_open = loop {
        tokio::select! {
            phone = arriving.recv() => match phone {
                Some(phone) => {
                    state.phones.fetch_add(1, Ordering::Relaxed);
                    if phones.send(phone).await.is_err() {
                        break false;
                    }
                }
                None => break true,
            },
            _ = &mut ended => break true,
        }
    };
    drop(opener);
    state.up.store(false, Ordering::Relaxed);
    tracing::info!(province = %addr, "The tunnel closed; dialling again.");
    web_open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_address_survives_the_header() {
        for addr in ["203.0.113.7:51234", "[2001:db8::1]:443"] {
            let addr: SocketAddr = addr.parse().expect("an address");
            let header = phone_header(addr);
            assert_eq!(header[0], PHONE);
            let rest: [u8; 18] = header[1..].try_into().expect("18 bytes");
            assert_eq!(phone_address(&rest), addr);
        }
    }

    #[tokio::test]
    async fn the_province_opens_a_phone_stream_and_the_site_reads_it() {
        let (a, b) = tokio::io::duplex(64 << 10);
        let site = start(a, End::Site);
        let province = start(b, End::Province);
        let mut phones = site.phones;
        let mut stream = province.opener.open().await.expect("a stream");
        let from: SocketAddr = "198.51.100.9:40000".parse().expect("an address");
        stream.write_all(&phone_header(from)).await.expect("header");
        stream.write_all(b"hello").await.expect("bytes");
        let (mut at_site, peer) = phones.recv().await.expect("a phone");
        assert_eq!(peer, from);
        let mut got = [0u8; 5];
        at_site.read_exact(&mut got).await.expect("the phone's bytes");
        assert_eq!(&got, b"hello");
        at_site.write_all(b"back").await.expect("answer");
        at_site.flush().await.expect("flush");
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await.expect("the answer");
        assert_eq!(&back, b"back");
    }

    /// Time is paused: the 65 s of silence pass at once.
    #[tokio::test(start_paused = true)]
    async fn a_tunnel_held_open_and_silent_is_closed() {
        let (a, _silent) = tokio::io::duplex(64 << 10);
        let province = start(a, End::Province);
        let began = tokio::time::Instant::now();
        province.ended.await.expect("the tunnel's task");
        let after = began.elapsed();
        assert!((DEAD_AFTER..DEAD_AFTER + Duration::from_secs(5)).contains(&after), "{after:?}");
    }

    #[tokio::test]
    async fn a_site_cannot_open_phone_streams_at_the_province() {
        let (a, b) = tokio::io::duplex(64 << 10);
        let site = start(a, End::Site);
        let mut province = start(b, End::Province);
        let mut stream = site.opener.open().await.expect("a stream");
        stream.write_all(&phone_header("192.0.2.1:1".parse().expect("addr"))).await.expect("write");
        stream.flush().await.expect("flush");
        let nothing = tokio::time::timeout(Duration::from_millis(300), province.phones.recv()).await;
        assert!(matches!(nothing, Ok(None) | Err(_)), "the province took a phone from the site");
    }
}
