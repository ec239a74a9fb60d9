//! Connection hygiene for every listener of the box and the province (web, MQTT, sync, enrolment):
//! a cap on the connections open at once, a smaller cap per address, and an idle timeout.
//!
//! A phone on the site's Wi-Fi that opens connections and sends nothing must not exhaust the
//! process's file descriptors: past its address's cap a new connection is closed at once (the
//! kernel's backlog never fills, so other addresses are still answered), and a connection that
//! moves no byte for the idle time is closed. Refusals are counted; accept errors (out of file
//! descriptors) and refusals are logged at most once a minute, so a flood cannot fill the journal.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Sleep,
};

/// A log line's turn: at most once a minute, so that a flood (of connections, of wrong logins, of
/// bad messages) cannot fill the journal; what is not logged is counted by the caller.
#[derive(Debug, Default)]
pub struct OnceAMinute(Mutex<Option<Instant>>);

impl OnceAMinute {
    /// Whether a line may be logged now; if so, the next one not before a minute has passed.
    pub fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// A listener's caps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub total: usize,
    /// Connections open at once from one address.
    pub per_address: usize,
    /// A connection that reads and writes nothing for this long is closed.
    pub idle: Duration,
    /// How long a client has to send its first message's head (a request's headers, an MQTT
    /// CONNECT, a TLS handshake); for HTTP also how long a kept-alive connection waits for its next
    /// request.
    pub header: Duration,
}

/// Counts for the health page and `/metrics`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct GateCounts {
    pub open: u64,
    /// Connections closed at once because a cap was reached.
    pub refused: u64,
    /// Connections closed for moving nothing for the idle time.
    pub idle_closed: u64,
}

/// The caps of one listener, and what is open through it.
#[derive(Debug)]
pub struct Gate {
    name: &'static str,
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: AtomicU64,
    idle_closed: AtomicU64,
    last_log: OnceAMinute,
}

/// A connection let in: gives its place back when dropped.
#[derive(Debug)]
pub struct Pass {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    /// A gate named `name` in the log (`web`, `mqtt`, `sync`, …).
    pub fn new(name: &'static str, limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            name,
            limits,
            open: Mutex::new((0, HashMap::new())),
            refused: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            last_log: OnceAMinute::default(),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn counts(&self) -> GateCounts {
        GateCounts {
            open: self.open.lock().map_or(0, |o| o.0 as u64),
            refused: self.refused.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
        }
    }

    /// A place for a connection from `ip`, or `None` past a cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Pass> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.limits.total || from >= self.limits.per_address {
            return None;
        }
        open.0 += 1;
        *open.1.entry(ip).or_default() += 1;
        Some(Pass { gate: self.clone(), ip })
    }

    /// Logs `what` at most once a minute for this gate.
    fn warn_once_a_minute(&self, what: &str, detail: &dyn std::fmt::Display) {
        if self.last_log.due() {
            tracing::warn!(listener = self.name, %detail, "{what} (counted; further ones this minute are not logged).");
        }
    }

    /// The next connection this gate lets in, with its idle timeout. Connections past a cap are
    /// closed at once; accept errors (out of file descriptors) wait 100 ms rather than spin.
    pub async fn accept(self: &Arc<Self>, listener: &TcpListener) -> (Idle<TcpStream>, SocketAddr) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    self.warn_once_a_minute("Accepting a connection failed", &error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.admit(peer.ip()) {
                Some(pass) => {
                    let _ = stream.set_nodelay(true);
                    return (Idle::new(stream, self.limits.idle, Some(pass)), peer);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    self.warn_once_a_minute("A connection over the cap was closed", &peer.ip());
                    drop(stream);
                }
            }
        }
    }
}

/// A stream that fails with `TimedOut` once it has read and written nothing for its idle time.
#[derive(Debug)]
pub struct Idle<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    pass: Option<Pass>,
}

impl<S> Idle<S> {
    pub fn new(inner: S, idle: Duration, pass: Option<Pass>) -> Idle<S> {
        Idle { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)), pass }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn moved(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        // Resetting a timer costs a lock: only when the deadline moves by a second or more.
        if next > self.deadline.deadline() + Duration::from_secs(1) {
            self.deadline.as_mut().reset(next);
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.deadline.as_mut().poll(cx).is_ready() {
            if let Some(pass) = &self.pass {
                pass.gate.idle_closed.fetch_add(1, Ordering::Relaxed);
            }
            return true;
        }
        false
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A rate: at most `burst` at once, then one more each `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub burst: u32,
    pub every: Duration,
}

/// Token buckets by key (a link, an address): how often a public endpoint may be used. Counted in
/// real time, like the timeouts: the site's clock may be moved by staff or a test. At most
/// [`Rates::MAX_KEYS`] keys are kept; past that, full buckets are forgotten first.
#[derive(Debug, Default)]
pub struct Rates {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Rates {
    pub const MAX_KEYS: usize = 50_000;

    /// Whether one more use under `key` fits `budget` now (and counts it if so).
    pub fn allow(&self, key: &str, budget: Budget) -> bool {
        self.allow_at(key, budget, Instant::now())
    }

    fn allow_at(&self, key: &str, budget: Budget, now: Instant) -> bool {
        let refill = |(tokens, at): (f64, Instant)| {
            let earned =
                now.saturating_duration_since(at).as_secs_f64() / budget.every.as_secs_f64().max(1e-3);
            (tokens + earned).min(f64::from(budget.burst))
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= Self::MAX_KEYS && !buckets.contains_key(key) {
            let full = f64::from(budget.burst);
            buckets.retain(|_, b| refill(*b) < full);
            if buckets.len() >= Self::MAX_KEYS {
                return false;
            }
        }
        let tokens = buckets.get(key).map_or(f64::from(budget.burst), |b| refill(*b));
        if tokens < 1.0 {
            return false;
        }
        buckets.insert(key.to_owned(), (tokens - 1.0, now));
        true
    }
}

/// Serves `router` over HTTP/1.1 on `listener`, connections let in through `gate` and, with `tls`,
/// TLS taken off first (within the gate's [`Limits::header`]): each request's headers within that
/// time too, the caller's address as `ConnectInfo<SocketAddr>`. When `shutdown` resolves, no new
/// connection is taken and each open one finishes the request it is serving (at most 10 s). The
/// box's web and the province's use it (`axum::serve` has no header timeout).
pub async fn serve_router(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_router_with::<TcpStream>(listener, gate, tls, router, None, shutdown).await;
}

/// [`serve_router`], also serving the connections that come through `tunneled` with their
/// address (the box's phones from home, which the province's relay hands over through the box's
/// tunnel): through the same gate by their own address, and the same TLS.
pub async fn serve_router_with<S>(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    mut tunneled: Option<tokio::sync::mpsc::Receiver<(S, SocketAddr)>>,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let header = gate.limits().header;
    tokio::pin!(shutdown);
    loop {
        let next_phone = async {
            match tunneled.as_mut() {
                Some(phones) => phones.recv().await,
                None => std::future::pending().await,
            }
        };
        let (router, stopping, tls) = (router.clone(), stopping.clone(), tls.clone());
        tokio::select! {
            (io, peer) = gate.accept(&listener) => {
                connections.spawn(serve_one(io, peer, tls, router, header, stopping));
            }
            phone = next_phone => match phone {
                Some((io, peer)) => {
                    // Past the gate's caps the phone's stream is dropped: it sees a closed connection.
                    if let Some(pass) = gate.admit(peer.ip()) {
                        let io = Idle::new(io, gate.limits().idle, Some(pass));
                        connections.spawn(serve_one(io, peer, tls, router, header, stopping));
                    }
                }
                None => tunneled = None,
            },
            () = &mut shutdown => break,
        }
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// One connection of [`serve_router`]: TLS first if asked (within `header`), then HTTP.
async fn serve_one<IO>(
    io: IO,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    header: Duration,
    stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match tls {
        None => serve_connection(io, peer, router, header, stopping).await,
        Some(acceptor) => {
            if let Ok(Ok(io)) = tokio::time::timeout(header, acceptor.accept(io)).await {
                serve_connection(io, peer, router, header, stopping).await;
            }
        }
    }
}

/// One connection of [`serve_router`], until it closes or `stopping` says so (then gracefully).
async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    router: axum::Router,
    header: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_request_whose_headers_come_too_slowly_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = Limits {
            total: 10,
            per_address: 5,
            idle: Duration::from_secs(5),
            header: Duration::from_millis(400),
        };
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(serve_router(listener, Gate::new("test", limits), None, router, std::future::pending()));
        // A whole request is answered.
        let mut fast = TcpStream::connect(addr).await.expect("connect");
        fast.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
        let mut answer = String::new();
        fast.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
        // Headers a byte at a time, each within the idle time: closed once the header time is up.
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        let started = std::time::Instant::now();
        let mut closed = false;
        for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if slow.write_all(&[*b]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut rest)).await;
        closed |= read.is_ok();
        assert!(closed, "the slow request was closed");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    }

    #[test]
    fn a_budget_allows_its_burst_then_one_each_period() {
        let rates = Rates::default();
        let budget = Budget { burst: 3, every: Duration::from_secs(60) };
        let t0 = Instant::now();
        assert!((0..3).all(|_| rates.allow_at("/d/a", budget, t0)));
        assert!(!rates.allow_at("/d/a", budget, t0), "past the burst");
        assert!(rates.allow_at("/d/b", budget, t0), "another link has its own");
        assert!(!rates.allow_at("/d/a", budget, t0 + Duration::from_secs(30)));
        assert!(rates.allow_at("/d/a", budget, t0 + Duration::from_secs(61)), "one more a minute later");
        assert!(!rates.allow_at("/d/a", budget, t0 + Duration::from_secs(62)));
    }

    #[tokio::test]
    async fn caps_per_address_and_in_all_and_idle_connections_close() {
        let gate = Gate::new(
            "test",
            Limits {
                total: 3,
                per_address: 2,
                idle: Duration::from_millis(300),
                header: Duration::from_secs(1),
            },
        );
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.2".parse().expect("ip"),
            "10.0.0.3".parse().expect("ip"),
            "10.0.0.4".parse().expect("ip"),
        );
        let a1 = gate.admit(a).expect("first");
        let _a2 = gate.admit(a).expect("second");
        assert!(gate.admit(a).is_none(), "a third from one address");
        let _b1 = gate.admit(b).expect("another address");
        assert!(gate.admit(c).is_none(), "over the total");
        drop(a1);
        assert!(gate.admit(c).is_some(), "a place given back");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate = Gate::new(
            "test",
            Limits {
                total: 10,
                per_address: 1,
                idle: Duration::from_millis(300),
                header: Duration::from_secs(1),
            },
        );
        let (tx, mut outcome) = tokio::sync::mpsc::channel(4);
        let server = gate.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept(&listener).await;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 8];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let _ = s.write_all(&buf[..n]).await;
                    let _ = tx.send(s.read(&mut buf).await.map_err(|e| e.kind())).await;
                });
            }
        });
        let mut one = TcpStream::connect(addr).await.expect("connect");
        one.write_all(b"x").await.expect("write");
        let mut buf = [0u8; 1];
        one.read_exact(&mut buf).await.expect("echo");
        // A second connection from the same address is closed at once.
        let mut two = TcpStream::connect(addr).await.expect("connect");
        assert_eq!(two.read(&mut buf).await.unwrap_or(0), 0);
        // The first, idle, is closed by the server.
        assert_eq!(outcome.recv().await, Some(Err(io::ErrorKind::TimedOut)));
        assert_eq!(gate.counts().refused, 1);
        assert_eq!(gate.counts().idle_closed, 1);
    }
}
