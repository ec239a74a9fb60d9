//! Reach from home, measured (docs/reach.md): `cargo bench -p outpost-tests --bench reach`.
//!
//! 1. Time to first byte of the personal page, by name over TLS as a phone opens it (a new
//!    connection each time): straight to the box, and through the province's relay. Real processes
//!    (`outpost run`, `outpost-province serve`) on loopback. Goal: the relay adds ≤ 50 ms.
//! 2. The relay under a province's load: 200 sites, each with 2,000 phones posting a position every
//!    5 minutes (1,333 new TLS connections a second through the relay), for `REACH_SECONDS` (30).
//!    The province is the real binary in its own process; the 200 boxes (each a real tunnel with its
//!    site certificate, answering over TLS) and the phones run in this one. Goals: the province's
//!    CPU ≤ 10 % of one core (its `/proc/<pid>/stat` times over the run), p99 ≤ 100 ms from a phone's
//!    connect to its answer.
//!
//! `REACH_SITES`, `REACH_PHONES` (per site) and `REACH_SECONDS` change the load.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use outpost_link::{site::Enrolment, tunnel};
use outpost_tests::{
    cpu_time, enroll_box, free_port, province_cmd, relay_args, serve_province, write_config, BoxProcess,
    Client, ProvinceProcess,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ZONE: &str = "sites.test";
const PASSWORD: &str = "Bench-Reach-2026!x";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A phone's TLS: trusts only `root_pem`, resumes sessions as a browser does.
fn phone_tls(root_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(root_pem.as_bytes()).flatten() {
        roots.add(der).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One phone's request over a new connection to 127.0.0.1:`port` as `name`: the time from connect
/// to the answer's first byte, and the status line.
async fn phone(
    tls: Arc<rustls::ClientConfig>,
    port: u16,
    name: &str,
    request: &[u8],
) -> anyhow::Result<(Duration, String)> {
    let began = Instant::now();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let mut s =
        tokio_rustls::TlsConnector::from(tls).connect(ServerName::try_from(name.to_owned())?, tcp).await?;
    s.write_all(request).await?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await?;
    let ttfb = began.elapsed();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    let head = String::from_utf8_lossy(&[&first[..], &rest[..rest.len().min(64)]].concat()).into_owned();
    Ok((ttfb, head.lines().next().unwrap_or_default().to_owned()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    ttfb(dir.path());
    relay_load(dir.path());
}

/// Part 1: the personal page's time to first byte, direct and through the relay.
fn ttfb(dir: &Path) {
    let pdata = dir.join("province");
    province_cmd(&pdata, &["init"]);
    let token = province_cmd(&pdata, &["site", "add", "hoa-vang-01"]);
    let (reach, tunnels, https) = (free_port(), free_port(), free_port());
    let args = relay_args(ZONE, (reach, tunnels), &[]);
    let (_province, addr) = serve_province(&pdata, "127.0.0.1:0", &args);
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("site");
    let config = write_config(
        &site,
        &format!(
            "[site]\nid = \"hoa-vang-01\"\n[web]\ntls_listen = \"127.0.0.1:{https}\"\nrate_limits = false\n\
             [tls]\nnames = [\"hoa-vang-01.{ZONE}\"]\n[sync]\nreach = \"127.0.0.1:{tunnels}\"\n"
        ),
    );
    let data = site.join("data");
    assert!(enroll_box(&config, &data, &addr, &token).status.success());
    let b = BoxProcess::start("run", &data, &["--config", &config, "--mqtt", "off", "--mqtt-tls", "off"]);
    let mut c = Client::tls(&format!("https://127.0.0.1:{https}"), &data.join("tls/box.crt"));
    let link = b.setup_link.clone().expect("setup link");
    c.setup_admin(&link[link.find("/setup/").expect("path")..], "bench.admin", PASSWORD);
    let list = outpost_tests::district_csv(1, "01/12/2026", "20/12/2026");
    assert_eq!(c.post_bytes("/api/v1/people/import", "text/csv", &list).status, 200);
    let id = c.people_ids().remove(0);
    let token =
        c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned();
    let root = std::fs::read_to_string(data.join("tls/box.crt")).expect("cert");
    let name = format!("hoa-vang-01.{ZONE}");
    let request =
        format!("GET /d/{token} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").into_bytes();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tls = phone_tls(&root);
    let run = |port: u16| -> Vec<Duration> {
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while phone(tls.clone(), port, &name, &request).await.map(|(_, s)| s.contains(" 200")).ok()
                != Some(true)
            {
                assert!(Instant::now() < deadline, "the page does not answer on {port}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut times = Vec::new();
            for _ in 0..200 {
                let (t, status) = phone(tls.clone(), port, &name, &request).await.expect("the page");
                assert!(status.contains(" 200"), "{status}");
                times.push(t);
            }
            times.sort();
            times
        })
    };
    let direct = run(https);
    let relayed = run(reach);
    let (d50, r50) = (percentile(&direct, 0.5), percentile(&relayed, 0.5));
    println!("personal page, time to first byte over a new TLS connection (200 each):");
    println!("  direct to the box:        median {}, p90 {}", ms(d50), ms(percentile(&direct, 0.9)));
    println!("  through the relay:        median {}, p90 {}", ms(r50), ms(percentile(&relayed, 0.9)));
    println!(
        "  the relay adds:           {} at the median (goal ≤ 50 ms); ratio {:.2}",
        ms(r50.saturating_sub(d50)),
        r50.as_secs_f64() / d50.as_secs_f64()
    );
}

/// A box's stand-in for the load test: a real tunnel with the site's certificate, and each phone
/// answered over TLS with a small 200 (what the box answers a position).
async fn fake_box(enrolment: Enrolment, server: Arc<rustls::ServerConfig>) {
    let b = &enrolment.bundle;
    let tls = outpost_link::net::client_config(&b.ca_pem, Some((&b.cert_pem, &b.key_pem))).expect("site tls");
    let (phones_tx, mut phones) = tokio::sync::mpsc::channel::<tunnel::Phone>(1024);
    let state = Arc::new(tunnel::SiteState::default());
    tokio::spawn(tunnel::keep(enrolment.province.clone(), tls, phones_tx, state));
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    while let Some((stream, _peer)) = phones.recv().await {
        tokio::spawn(answer(acceptor.clone(), stream));
    }
}

/// A phone answered over TLS with a small 200 (what the box answers a position).
async fn answer<S>(acceptor: tokio_rustls::TlsAcceptor, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut s) = acceptor.accept(stream).await else { return };
    let mut buf = vec![0u8; 4096];
    let mut seen = 0;
    while !buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf[seen..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
    }
    let body = br#"{"verdict":"inside","alerted":false}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let _ = s.shutdown().await;
}

/// Part 2: 200 sites' phones through the relay.
fn relay_load(dir: &Path) {
    let (sites, phones_per_site, seconds) =
        (env("REACH_SITES", 200), env("REACH_PHONES", 2000), env("REACH_SECONDS", 30));
    let rate = (sites * phones_per_site) as f64 / 300.0;
    let pdata = dir.join("province-load");
    province_cmd(&pdata, &["init"]);
    let (reach, tunnels) = (free_port(), free_port());
    let mut enrolments = Vec::new();
    for i in 0..sites {
        let id = format!("site-{i:03}");
        province_cmd(&pdata, &["site", "add", &id]);
        let file = dir.join(format!("{id}.json"));
        province_cmd(
            &pdata,
            &[
                "site",
                "export",
                &id,
                "--province",
                &format!("127.0.0.1:{tunnels}"),
                "--to",
                &file.display().to_string(),
            ],
        );
        enrolments.push(
            serde_json::from_slice::<Enrolment>(&std::fs::read(&file).expect("export")).expect("enrolment"),
        );
    }
    let args = relay_args(ZONE, (reach, tunnels), &["--reach-per-site", "256", "--pull-every", "0"]);
    let (province, _addr): (ProvinceProcess, String) = serve_province(&pdata, "127.0.0.1:0", &args);
    let pid = province.0.id();

    // The boxes' certificate for every site name (a stand-in: one key for all).
    let names: Vec<String> = (0..sites).map(|i| format!("site-{i:03}.{ZONE}")).collect();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(names.clone()).expect("params").self_signed(&key).expect("cert");
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key"),
            )
            .expect("server config"),
    );
    let tls = phone_tls(&cert.pem());

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        for e in enrolments {
            tokio::spawn(fake_box(e, server.clone()));
        }
        let load = Load { names: &names, tls: &tls, rate, seconds, port: reach, pid };
        println!(
            "relay under load: {sites} sites × {phones_per_site} phones, a position every 5 min each = {rate:.0} new connections/s, {seconds} s"
        );
        load.run("the province's").await;
        if std::env::var_os("REACH_REFERENCE").is_some() {
            reference(dir, &load, server.clone()).await;
        }
    });
    drop(province);
}

/// One load run: `rate` phones a second for `seconds`, each a new TLS connection to 127.0.0.1:`port`
/// as one of `names`, posting a position; `pid`'s CPU measured over the run.
struct Load<'a> {
    names: &'a [String],
    tls: &'a Arc<rustls::ClientConfig>,
    rate: f64,
    seconds: u64,
    port: u16,
    pid: u32,
}

impl Load<'_> {
    async fn run(&self, whose: &str) {
        // Every site reachable before the load starts.
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in self.names {
            let req =
                format!("POST /api/v1/position/x HTTP/1.1\r\nHost: {name}\r\ncontent-length: 2\r\n\r\n{{}}");
            while phone(self.tls.clone(), self.port, name, req.as_bytes())
                .await
                .map(|(_, s)| s.contains(" 200"))
                .ok()
                != Some(true)
            {
                assert!(Instant::now() < deadline, "{name} not reachable on {}", self.port);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let times = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let cpu_before = cpu_time(self.pid);
        let began = Instant::now();
        let total = (self.rate * self.seconds as f64) as u64;
        let sites = self.names.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total {
            let due = began + Duration::from_secs_f64(n as f64 / self.rate);
            tokio::time::sleep_until(due.into()).await;
            let name = self.names[(n * 7919 % sites) as usize].clone();
            let (tls, times, failed, port) = (self.tls.clone(), times.clone(), failed.clone(), self.port);
            tasks.spawn(async move {
                let body = r#"{"latitude":16.0750,"longitude":108.1497,"accuracy":12}"#;
                let req = format!(
                    "POST /api/v1/position/p{n} HTTP/1.1\r\nHost: {name}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                match phone(tls, port, &name, req.as_bytes()).await {
                    Ok((t, status)) if status.contains(" 200") => times.lock().expect("times").push(t),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        let elapsed = began.elapsed();
        let cpu = cpu_time(self.pid) - cpu_before;
        let mut times = times.lock().expect("times").clone();
        times.sort();
        println!(
            "  phones answered: {} of {total} ({} failed), in {:.1} s",
            times.len(),
            failed.load(Ordering::Relaxed),
            elapsed.as_secs_f64()
        );
        if !times.is_empty() {
            println!(
                "  connect → answer: median {}, p99 {} (goal ≤ 100 ms), max {}",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(*times.last().expect("max"))
            );
        }
        println!(
            "  {whose} CPU: {:.1} % of one core (goal ≤ 10 %; {} over {:.1} s), {:.0} µs a phone connection",
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
            ms(cpu),
            elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / total as f64
        );
    }
}

/// The same load through HAProxy (`REACH_REFERENCE=1`, Debian's `haproxy` installed): one thread,
/// reading only the server name (`ssl_preread`) and passing each phone straight to a TLS listener
/// in this process — less work than the relay (no tunnel: the boxes are not behind NAT here). What
/// the kernel and a mature splice cost on this machine, to read the relay's figure against.
async fn reference(dir: &Path, load: &Load<'_>, server: Arc<rustls::ServerConfig>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let backend = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(answer(acceptor.clone(), tcp));
        }
    });
    let front = free_port();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  nbthread 1\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend phones\n  bind 127.0.0.1:{front}\n  tcp-request inspect-delay 5s\n  tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
             use_backend boxes if {{ req.ssl_sni -m end .{ZONE} }}\nbackend boxes\n  server box {backend}\n"
        ),
    )
    .expect("haproxy.cfg");
    let mut haproxy = std::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("haproxy (apt-get install haproxy)");
    println!("reference: HAProxy (one thread, ssl_preread, straight to the box) under the same load");
    Load { port: front, pid: haproxy.id(), ..*load }.run("HAProxy's").await;
    let _ = haproxy.kill();
    let _ = haproxy.wait();
}
