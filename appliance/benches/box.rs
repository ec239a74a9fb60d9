//! The box's benchmark binary (`cargo bench -p outpost --bench box`):
//!
//! 1. acknowledged declaration submissions per second with 50 concurrent clients over HTTP, with the
//!    p50 and p99 latency of an acknowledgement (each one durable: group-committed and flushed);
//! 2. the dashboard render (figures + HTML) with 2,000 people and 14 days of declarations;
//! 3. the resident memory of the real `outpost` binary serving that data.
//!
//! 4. the outbox: the box's own time per SMS (queue, `sending`, `sent`, all durable), with a sender that
//!    answers at once (the modem's own time is not counted); and the memory 10,000 queued messages add.
//!
//! 5. a backup of that site (`outpost::backup::write`) while a writer commits without pause: its
//!    time, its size, and the writer's longest wait during it against before it (the records are
//!    copied under the writer lock); then the restore of that file into a new folder.
//!
//! Goals (issue 2): ≥ 1,000 submissions/s with p99 ≤ 100 ms; dashboard ≤ 20 ms; RSS ≤ 128 MB.
//! Goals (issue 3): ≤ 5 ms of the box's own time per message; 10,000 queued messages ≤ 20 MB more.
//! `BENCH_SECONDS` sets the submission run's length (default 10).

mod common;

use common::{percentile, proc_status_kb};
use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use outpost::{
    app::{accounts::Staff, outbox::SendResult, Outpost},
    base::{
        clock::{Clock, ManualClock, SystemClock},
        config::Config,
        i18n::Lang,
    },
    platform::backup,
    services::{outbox::SmsSender, Services},
    web::{self, Ctx},
};
use outpost_sync::{
    record::{Declaration, Role},
    Store, StoreConfig, WriteSet,
};

fn config(data: &std::path::Path) -> Config {
    let mut c = Config::from_toml("").expect("defaults");
    c.raw.store.data_dir = data.to_owned();
    c.raw.web.listen = "127.0.0.1:0".into();
    Config::validate(c.raw).expect("valid")
}

fn submissions() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
    let app = Outpost::new(store.clone(), config(dir.path()), Arc::new(SystemClock) as Arc<dyn Clock>);
    let (url, tokens) = rt.block_on(async {
        app.ensure_site().await.expect("site");
        let mut tokens = Vec::new();
        for i in 0..50 {
            let input = outpost::demo::person_input(i, app.today());
            tokens.push(app.create_person(&input, "bench").await.expect("person").declare_token);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state =
            web::AppState::new(app.clone(), Services::default(), tokio_util::sync::CancellationToken::new());
        let router = web::router(state);
        tokio::spawn(async move {
            let _ =
                axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .await;
        });
        (url, tokens)
    });
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (url, latencies, errors) = (url.clone(), latencies.clone(), errors.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let body = serde_json::json!({"temperature": "36.8", "spo2": "97", "symptoms": ["cough"]});
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let res = agent.post(&format!("{url}/api/v1/declare/{token}")).send_json(&body);
                    match res {
                        Ok(mut r) if r.status() == 201 => {
                            let _ = r.body_mut().read_to_string();
                            mine.push(t.elapsed());
                        }
                        _ => *errors.lock().expect("lock") += 1,
                    }
                }
                latencies.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let elapsed = started.elapsed();
    let mut l = latencies.lock().expect("lock").clone();
    l.sort();
    println!(
        "submissions: {} acknowledged in {:.1} s with 50 clients = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; errors {}",
        l.len(),
        elapsed.as_secs_f64(),
        l.len() as f64 / elapsed.as_secs_f64(),
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.99).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        errors.lock().expect("lock"),
    );
    store.close().expect("close");
}

/// 2,000 people, each with 14 days × 3 declarations (84,000 documents), written in bulk.
fn seed_site(data: &std::path::Path, now: chrono::DateTime<Utc>) {
    let store = Store::open(data, &StoreConfig::default()).expect("store");
    let app = Outpost::new(store.clone(), config(data), ManualClock::new(now) as Arc<dyn Clock>);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(app.ensure_site()).expect("site");
    let started = Instant::now();
    outpost::demo::seed_history(&app, 0, 2_000, 14, outpost::demo::HistoryExtras::default()).expect("seed");
    rt.block_on(store.durable()).expect("flush");
    println!(
        "seeded 2,000 people and {} declarations in {:.1} s ({} MB on disk)",
        store.count::<Declaration>(),
        started.elapsed().as_secs_f64(),
        store.size_on_disk() / 1_000_000
    );
    store.close().expect("close");
    println!("data folder after close: {} MB", dir_size(data) / 1_000_000);
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn dashboard(data: &std::path::Path, now: chrono::DateTime<Utc>) {
    let store = Store::open(data, &StoreConfig::default()).expect("store");
    let app = Outpost::new(store.clone(), config(data), ManualClock::new(now) as Arc<dyn Clock>);
    let state = web::AppState::new(app, Services::default(), tokio_util::sync::CancellationToken::new());
    let ctx = Ctx {
        lang: Lang::Vi,
        staff: Some(Staff {
            username: "bench".into(),
            display_name: "Bench".into(),
            role: Role::Medical,
            csrf: Some("x".into()),
        }),
        ip: None,
    };
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..60 {
        let t = Instant::now();
        let page = web::dashboard::markup(&state, &ctx).map_err(|_| "render").expect("dashboard");
        times.push(t.elapsed());
        size = page.into_string().len();
    }
    let warm: Vec<Duration> = {
        let mut w = times[10..].to_vec();
        w.sort();
        w
    };
    println!(
        "dashboard: median {:.2} ms, p95 {:.2} ms, first (cold) {:.2} ms over {} renders of {} KB",
        percentile(&warm, 0.5).as_secs_f64() * 1e3,
        percentile(&warm, 0.95).as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times.len(),
        size / 1000
    );
    store.close().expect("close");
}

fn memory(data: &std::path::Path, now: chrono::DateTime<Utc>) {
    let clock = now.to_rfc3339();
    let (mut child, url, setup) =
        spawn_box(&["--log", "warn", "--clock", &clock, "--data", &data.display().to_string()]);
    // Sign in through the setup link as a browser would, then load the busiest pages repeatedly.
    let agent: ureq::Agent =
        ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into();
    let setup = setup.expect("setup link");
    let res = agent.get(&setup).call().expect("setup page");
    let cookie = first_cookie(&res);
    let csrf = cookie.split_once('=').map(|(_, v)| v.to_owned()).unwrap_or_default();
    let path = &setup[setup.find("/setup/").expect("path")..];
    let res = agent
        .post(&format!("{url}{path}"))
        .header("Cookie", &cookie)
        .send_form([
            ("display_name", "Bench"),
            ("username", "bench"),
            ("password", "bench-password-1"),
            ("password2", "bench-password-1"),
            ("csrf", &csrf),
        ])
        .expect("setup");
    let session = first_cookie(&res);
    for _ in 0..20 {
        for page in ["/", "/people", "/alerts", "/followup", "/api/v1/people"] {
            let mut r = agent.get(&format!("{url}{page}")).header("Cookie", &session).call().expect("page");
            assert_eq!(r.status(), 200, "{page}");
            let _ = r.body_mut().read_to_string();
        }
    }
    println!(
        "memory of the box serving 2,000 people: VmRSS {} kB, VmHWM (peak) {} kB",
        proc_status_kb(child.id(), "VmRSS:"),
        proc_status_kb(child.id(), "VmHWM:")
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Queues `n` messages of a reminder's length (one GSM part each) in batches of 500, through the
/// staff's message operation (to people not registered: only their phone is used).
fn queue_reminders(app: &Outpost, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let today = app.today();
    let details = outpost::demo::person_input(0, today).validate(today).expect("valid");
    let person = app.new_person(&details, "bench");
    let text = format!(
        "Outpost: Ban chua khai bao y te luc 08:00. Vui long khai bao ngay tai http://outpost.local:8080/d/{}",
        "0".repeat(32)
    );
    for _ in 0..n / 500 {
        let people = vec![person.clone(); 500];
        rt.block_on(app.send_custom(&people, None, &text, Lang::Vi, "bench")).expect("queue");
    }
}

/// A sender that answers at once: what is left is the box's own work.
struct Instant_;

impl SmsSender for Instant_ {
    fn send(&self, _: &str, _: &str, _: &str, _: u8) -> SendResult {
        SendResult::Sent { references: vec![1] }
    }
}

fn outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let cache_mb: u64 = std::env::var("BENCH_CACHE_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let store =
        Store::open(dir.path(), &StoreConfig { cache_capacity: cache_mb * 1024 * 1024 }).expect("store");
    let mut cfg = config(dir.path());
    cfg.outbox.min_interval = Duration::ZERO;
    let app = Outpost::new(store.clone(), cfg, Arc::new(SystemClock) as Arc<dyn Clock>);
    queue_reminders(&app, 10_000);
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let wake = Arc::new(tokio::sync::Notify::new());
    let worker =
        rt.spawn(outpost::services::outbox::run(app.clone(), vec![Arc::new(Instant_)], wake, cancel.clone()));
    let n = 2_000;
    rt.block_on(async {
        while app.outbox_waiting().unwrap_or(usize::MAX) > 10_000 - n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let per = started.elapsed() / n as u32;
    cancel.cancel();
    let _ = rt.block_on(worker);
    println!(
        "outbox: the box's own time per message (queued → sending → sent, each step flushed): {:.2} ms over {n} messages",
        per.as_secs_f64() * 1e3
    );
    store.close().expect("close");
}

/// The real box's resident memory, idle and with 10,000 messages queued while its modem is away (the
/// case where a queue grows): two `outpost run` processes on the same configuration.
fn outbox_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("site.toml");
    std::fs::write(&config, "[modem]\nport = \"/nonexistent/ttyUSB-outpost-bench\"\n").expect("config");
    let queued = dir.path().join("queued");
    {
        let store = Store::open(&queued, &StoreConfig::default()).expect("store");
        let app =
            Outpost::new(store.clone(), crate::config(&queued), Arc::new(SystemClock) as Arc<dyn Clock>);
        queue_reminders(&app, 10_000);
        store.close().expect("close");
    }
    let rss_of = |data: &std::path::Path| -> u64 {
        let config = config.display().to_string();
        let (mut child, _, _) =
            spawn_box(&["--log", "error", "--config", &config, "--data", &data.display().to_string()]);
        std::thread::sleep(Duration::from_secs(4));
        let rss = proc_status_kb(child.id(), "VmRSS:");
        let _ = child.kill();
        let _ = child.wait();
        rss
    };
    let idle = rss_of(&dir.path().join("idle"));
    let with_queue = rss_of(&queued);
    println!(
        "outbox memory: the box idle {:.1} MB, with 10,000 queued messages (modem away) {:.1} MB: {:.1} MB more",
        idle as f64 / 1024.0,
        with_queue as f64 / 1024.0,
        with_queue.saturating_sub(idle) as f64 / 1024.0
    );
}

/// Starts `outpost run --listen 127.0.0.1:0 <args…>` and waits until it listens: the process, its URL and
/// the setup link it printed, if any.
fn spawn_box(args: &[&str]) -> (std::process::Child, String, Option<String>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["run", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn outpost");
    let stdout = child.stdout.take().expect("stdout");
    let mut setup = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read");
        if line.contains("/setup/") {
            setup = line.find("http://").map(|i| line[i..].to_owned());
        }
        if let Some(i) = line.find(" listening on ") {
            return (child, line[i + " listening on ".len()..].trim().to_owned(), setup);
        }
    }
    let status = child.wait();
    panic!("outpost exited before listening: {status:?}");
}

/// `name=value` of the response's first `Set-Cookie`.
fn first_cookie(res: &ureq::http::Response<ureq::Body>) -> String {
    let header = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("");
    header.split(';').next().unwrap_or("").to_owned()
}

/// The longest commit of one small write, over `run`, committing without pause.
fn worst_commit(store: &Store, run: impl FnOnce()) -> (Duration, usize) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut worst, mut n) = (Duration::ZERO, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let mut w = WriteSet::new();
                w.put_local("bench/backup-writer", &n).expect("put");
                store.commit_blocking(w).expect("commit");
                worst = worst.max(t.elapsed());
                n += 1;
            }
            (worst, n)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    run();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer")
}

fn backup(data: &std::path::Path, now: chrono::DateTime<Utc>) {
    let store = Store::open(data, &StoreConfig::default()).expect("store");
    let (before, _) = worst_commit(&store, || std::thread::sleep(Duration::from_secs(2)));
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("site.backup");
    let mut took = Duration::ZERO;
    let mut summary = None;
    let (during, commits) = worst_commit(&store, || {
        let t = Instant::now();
        let f = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
        summary = Some(backup::write(&store, "bench", data, now, f).expect("backup"));
        took = t.elapsed();
    });
    let summary = summary.expect("summary");
    store.close().expect("close");
    println!(
        "backup of {} entries: {:.2} s, {:.1} MB; a writer's longest commit during it {:.1} ms ({commits} commits), before it {:.1} ms",
        summary.entries,
        took.as_secs_f64(),
        std::fs::metadata(&file).expect("size").len() as f64 / 1e6,
        during.as_secs_f64() * 1e3,
        before.as_secs_f64() * 1e3,
    );
    let t = Instant::now();
    backup::restore(&file, &out.path().join("restored"), "bench", now).expect("restore");
    println!("restore into a new folder: {:.2} s", t.elapsed().as_secs_f64());
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word runs one part only.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wants("submissions") {
        submissions();
    }
    if wants("outbox") {
        outbox();
        outbox_memory();
    }
    if wants("dashboard") || wants("memory") || wants("backup") {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).single().expect("time"); // 16:00 at the site
        seed_site(dir.path(), now);
        if wants("dashboard") {
            dashboard(dir.path(), now);
        }
        if wants("memory") {
            memory(dir.path(), now);
        }
        if wants("backup") {
            backup(dir.path(), now);
        }
    }
}
