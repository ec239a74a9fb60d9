//! Reach from home at the province: phones connect over TLS to `<site>.<zone>` on the province's
//! public port; the relay reads their TLS hello only as far as the server name, and splices the
//! connection onto the tunnel that site's box keeps open ([`outpost_link::tunnel`]). TLS ends at
//! the box: the province carries bytes it cannot read, and keeps no log of addresses or names
//! beyond its counters.
//!
//! Bounded everywhere: the hello within 10 s and 16 KiB, connections capped in all and per address
//! (the gate), at most [`Limits::per_site`] phones of one site at once (a flood towards one site
//! does not starve the others), one tunnel per site (a box that dials again replaces its old
//! one), tunnels checked against the registry every 30 s (a revoked or replaced certificate's
//! tunnel is closed).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::Context;
use outpost_link::{ca, gate, tunnel};
use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::server::Server;

/// The relay's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Phones of one site through the relay at once.
    pub per_site: usize,
    /// A phone's TLS hello must come within this time.
    pub hello_within: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_site: 256, hello_within: Duration::from_secs(10) }
    }
}

/// The largest TLS hello read before giving up on a connection.
const MAX_HELLO: usize = 16 << 10;

/// The public port's gate: many phones share a carrier's address; a spliced connection with no
/// bytes either way for two minutes is closed.
pub const PHONE_GATE: gate::Limits = gate::Limits {
    total: 8192,
    per_address: 256,
    idle: Duration::from_secs(120),
    header: Duration::from_secs(10),
};

/// The tunnels' gate: a site has one; sites behind one carrier's NAT share an address.
pub const TUNNEL_GATE: gate::Limits = gate::Limits {
    total: 2048,
    per_address: 512,
    idle: Duration::from_secs(120),
    header: Duration::from_secs(10),
};

/// What the relay has done since it started (for `/metrics` and the sites page).
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Phone connections spliced to a box.
    pub spliced: AtomicU64,
    /// Refused: no server name, or one not under the zone, or a site that is not known.
    pub unknown_name: AtomicU64,
    /// Refused: the site's box has no tunnel open.
    pub unreachable: AtomicU64,
    /// Refused: that site already has [`Limits::per_site`] phones through the relay.
    pub over_site_cap: AtomicU64,
    /// Closed: not a TLS hello, too large, or too slow.
    pub bad_hello: AtomicU64,
    /// Tunnels refused: no certificate, or one that is not a site's current one.
    pub tunnel_refused: AtomicU64,
}

struct Open {
    opener: tunnel::Opener,
    cert_sha256: String,
    generation: u64,
}

/// The relay: the zone, the open tunnels by site, the phones through them.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    zone: String,
    server: Server,
    limits: Limits,
    tunnels: Mutex<HashMap<String, Open>>,
    active: Mutex<HashMap<String, usize>>,
    generation: AtomicU64,
    counts: Counts,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("zone", &self.inner.zone).finish_non_exhaustive()
    }
}

/// A zone as the relay compares names: lower case, no dot at either end.
pub fn normal_zone(zone: &str) -> String {
    zone.trim_matches('.').to_ascii_lowercase()
}

impl Relay {
    pub fn new(server: Server, zone: &str, limits: Limits) -> Relay {
        Relay {
            inner: Arc::new(Inner {
                zone: normal_zone(zone),
                server,
                limits,
                tunnels: Mutex::default(),
                active: Mutex::default(),
                generation: AtomicU64::new(0),
                counts: Counts::default(),
            }),
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.inner.counts
    }

    /// The sites whose box has a tunnel open now, in id order.
    pub fn sites_reachable(&self) -> Vec<String> {
        let tunnels = self.inner.tunnels.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<_> =
            tunnels.iter().filter(|(_, t)| !t.opener.is_closed()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// The site a server name is for: `<site>.<zone>`, one label, any case.
    pub fn site_of(&self, server_name: &str) -> Option<String> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        let label = name.strip_suffix(&self.inner.zone)?.strip_suffix('.')?;
        ca::check_site_id(label).then(|| label.to_owned())
    }

    /// Serves phones on `phones` and boxes' tunnels on `tunnels` on a thread of its own, with a
    /// single-threaded runtime: the relay's work is many small steps (a hello, a stream, a few
    /// frames), which one thread does without handing tasks between threads. The web UI and the
    /// sync keep the process's other threads.
    pub fn start(self, phones: std::net::TcpListener, tunnels: std::net::TcpListener) -> anyhow::Result<()> {
        phones.set_nonblocking(true)?;
        tunnels.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("relay".into()).spawn(move || {
            runtime.block_on(async move {
                let (Ok(phones), Ok(tunnels)) =
                    (TcpListener::from_std(phones), TcpListener::from_std(tunnels))
                else {
                    tracing::error!("The relay's listeners cannot be used.");
                    return;
                };
                tokio::spawn(self.clone().serve_tunnels(tunnels));
                if let Err(error) = self.serve_phones(phones).await {
                    tracing::error!(error = %format!("{error:#}"), "The relay stopped.");
                }
            });
        })?;
        Ok(())
    }

    /// Takes boxes' tunnels on `listener` for ever (mutual TLS with the province's certificate).
    pub async fn serve_tunnels(self, listener: TcpListener) -> anyhow::Result<()> {
        let tls = tokio_rustls::TlsAcceptor::from(self.inner.server.province.tls()?);
        let gate = gate::Gate::new("tunnels", TUNNEL_GATE);
        tokio::spawn(self.clone().sweep());
        loop {
            let (io, _peer) = gate.accept(&listener).await;
            let (relay, tls) = (self.clone(), tls.clone());
            tokio::spawn(async move {
                let Ok(Ok(io)) = tokio::time::timeout(TUNNEL_GATE.header, tls.accept(io)).await else {
                    relay.inner.counts.tunnel_refused.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let cert =
                    io.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| ca::fingerprint(c));
                match relay.current_site(cert).await {
                    Some(site) => relay.hold(site, io).await,
                    None => {
                        relay.inner.counts.tunnel_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }

    /// The enrolled, unrevoked site whose current certificate has the fingerprint `cert`.
    async fn current_site(&self, cert: Option<String>) -> Option<(String, String)> {
        let province = self.inner.server.province.clone();
        let cert = cert?;
        tokio::task::spawn_blocking(move || {
            let site = province.site_by_cert(&cert).ok().flatten()?;
            (site.enrolled && !site.revoked).then_some((site.id, cert))
        })
        .await
        .ok()
        .flatten()
    }

    /// Keeps site's tunnel over `io` until it ends; a tunnel the same site had open is replaced.
    async fn hold<T>(&self, (site, cert_sha256): (String, String), io: T)
    where
        T: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let tunnel = tunnel::start(io, tunnel::End::Province);
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let open = Open { opener: tunnel.opener, cert_sha256, generation };
        self.lock_tunnels().insert(site.clone(), open);
        tracing::info!(site = %site, "A site's tunnel is open.");
        let _ = tunnel.ended.await;
        let mut tunnels = self.lock_tunnels();
        if tunnels.get(&site).is_some_and(|t| t.generation == generation) {
            tunnels.remove(&site);
            tracing::info!(site = %site, "A site's tunnel closed.");
        }
    }

    fn lock_tunnels(&self) -> std::sync::MutexGuard<'_, HashMap<String, Open>> {
        self.inner.tunnels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every 30 s, closes the tunnels of sites revoked or given a new certificate since they dialled.
    async fn sweep(self) {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let province = self.inner.server.province.clone();
            let Ok(Ok(sites)) = tokio::task::spawn_blocking(move || province.sites()).await else { continue };
            let current: HashMap<String, String> = sites
                .into_iter()
                .filter(|s| s.enrolled && !s.revoked)
                .filter_map(|s| Some((s.id, s.cert_sha256?)))
                .collect();
            self.lock_tunnels().retain(|id, t| current.get(id) == Some(&t.cert_sha256));
        }
    }

    /// Takes phones on `listener` for ever and splices each to its site's box.
    pub async fn serve_phones(self, listener: TcpListener) -> anyhow::Result<()> {
        let gate = gate::Gate::new("reach", PHONE_GATE);
        loop {
            let (io, peer) = gate.accept(&listener).await;
            let relay = self.clone();
            tokio::spawn(async move { relay.phone(io, peer).await });
        }
    }

    /// One phone's connection: its hello, its site, that site's tunnel, then the splice.
    async fn phone<T>(&self, mut io: T, peer: SocketAddr)
    where
        T: AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let counts = &self.inner.counts;
        let Ok(Ok((hello, name))) =
            tokio::time::timeout(self.inner.limits.hello_within, read_hello(&mut io)).await
        else {
            counts.bad_hello.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(site) = name.as_deref().and_then(|n| self.site_of(n)) else {
            counts.unknown_name.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(_slot) = self.slot(&site) else {
            counts.over_site_cap.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let opener = self.lock_tunnels().get(&site).map(|t| t.opener.clone());
        let stream = match opener {
            Some(opener) => tokio::time::timeout(Duration::from_secs(5), opener.open()).await,
            None => {
                counts.unreachable.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Ok(Ok(mut stream)) = stream else {
            counts.unreachable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        counts.spliced.fetch_add(1, Ordering::Relaxed);
        // The header and the hello in one frame.
        let mut first = Vec::with_capacity(19 + hello.len());
        first.extend_from_slice(&tunnel::phone_header(peer));
        first.extend_from_slice(&hello);
        if stream.write_all(&first).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut io, &mut stream).await;
        }
    }

    /// A place for one more phone of `site`, or `None` past [`Limits::per_site`].
    fn slot(&self, site: &str) -> Option<Slot> {
        let mut active = self.inner.active.lock().unwrap_or_else(|p| p.into_inner());
        let n = active.entry(site.to_owned()).or_default();
        if *n >= self.inner.limits.per_site {
            return None;
        }
        *n += 1;
        Some(Slot { relay: self.clone(), site: site.to_owned() })
    }
}

/// A phone's place in its site's share of the relay, given back when the connection ends.
struct Slot {
    relay: Relay,
    site: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut active = self.relay.inner.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = active.get_mut(&self.site) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                active.remove(&self.site);
            }
        }
    }
}

/// Reads a TLS client hello whole (at most [`MAX_HELLO`] bytes): the bytes read, to pass on
/// untouched, and the server name it asks for. rustls parses it; nothing is answered.
async fn read_hello(io: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = Vec::with_capacity(2048);
    let mut buf = [0u8; 4096];
    loop {
        let n = io.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before its hello");
        seen.extend_from_slice(&buf[..n]);
        anyhow::ensure!(seen.len() <= MAX_HELLO, "a hello over {MAX_HELLO} bytes");
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let taken = acceptor.read_tls(&mut rest).context("not TLS")?;
            anyhow::ensure!(taken > 0, "a hello rustls will not take");
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Ok((seen, accepted.client_hello().server_name().map(str::to_owned)));
            }
            Ok(None) => {}
            Err((error, _)) => anyhow::bail!("not a TLS hello: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::new(crate::server::Province::new(dir.path()));
        Relay::new(server, "Sites.Example.VN.", Limits::default())
    }

    #[test]
    fn a_server_name_names_a_site_only_as_one_label_under_the_zone() {
        let r = relay();
        assert_eq!(r.site_of("hoa-vang-01.sites.example.vn").as_deref(), Some("hoa-vang-01"));
        assert_eq!(r.site_of("HOA-VANG-01.Sites.Example.VN.").as_deref(), Some("hoa-vang-01"));
        for forged in [
            "sites.example.vn",
            "a.b.sites.example.vn",
            "hoa-vang-01.sites.example.vn.evil.test",
            "hoa-vang-01sites.example.vn",
            "under_score.sites.example.vn",
            ".sites.example.vn",
        ] {
            assert_eq!(r.site_of(forged), None, "{forged}");
        }
    }

    #[tokio::test]
    async fn the_hello_is_read_whole_and_its_name_found() {
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        let (mut a, b) = tokio::io::duplex(64 << 10);
        let name = rustls::pki_types::ServerName::try_from("s1.sites.example.vn").expect("name");
        tokio::spawn(async move {
            let _ = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, b).await;
        });
        let (hello, name) = read_hello(&mut a).await.expect("a hello");
        assert_eq!(name.as_deref(), Some("s1.sites.example.vn"));
        assert_eq!(hello[0], 0x16, "the bytes are the TLS record as sent");
    }

    #[tokio::test]
    async fn what_is_not_a_hello_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 10);
        b.write_all(b"GET / HTTP/1.1\r\nHost: s1.sites.example.vn\r\n\r\n").await.expect("write");
        assert!(read_hello(&mut a).await.is_err());
    }
}
