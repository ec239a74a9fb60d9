//! Sightings through the embedded broker into the presence engine (`cargo bench -p outpost --bench
//! sightings [rate|max|memory]`), beside Mosquitto (Debian's `mosquitto`) relaying the same load to
//! one subscriber that does nothing but note the time:
//!
//! - `rate`: 10 gateways publish Theengs payloads for 2,000 pool bands (200 each, QoS 0) at a paced
//!   50,000 sightings/s in total for `BENCH_SECONDS` (10); sightings per second taken by the presence
//!   engine, and the p50/p99 time from publish to the engine (matched by the band's advertisement
//!   counter), for the box and for Mosquitto;
//! - `max`: the same unpaced: the most the box takes per second, beside Mosquitto;
//! - `memory`: the resident memory of the box's parts (broker, subscriber, presence thread, store)
//!   with 2,000 bands heard by two gateways every 10 s for one simulated hour (a manual clock), sampled
//!   every 10 simulated minutes, against idle.
//!
//! Goals (issue 4): ≥ 50,000 sightings/s, p99 ≤ 50 ms; memory flat, ≤ 64 MB more than idle.
//! Publishers, broker and engine share this machine's cores: the figures are for the whole pipeline.
//! Every gateway has logged in (an Argon2id check each on the box) before any publishes: logins are
//! not sightings. `BENCH_DIAG=1` prints the figures of each second too.

mod common;

use common::{percentile, proc_status_kb};
use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use outpost::{
    app::{mqtt::DeviceKind, Outpost},
    base::{
        clock::{Clock, ManualClock, SystemClock},
        config::Config,
    },
    services::{
        mqtt::{self, Mqtt},
        presence::{self, PresenceView},
    },
};
use outpost_sync::{
    record::{Band, BandState},
    Store, StoreConfig, WriteSet,
};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

const BANDS: usize = 2_000;
const GATEWAYS: usize = 10;
/// Every gateway's password; gateway `g` is device `gw-<g>` and publishes under that name (the
/// front lets a gateway publish only its own topics).
const PASS: &str = "bench-password-1";

fn band_address(i: usize) -> String {
    format!("C3:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xFF)
}

fn band_index(address: &str) -> Option<usize> {
    let hex: String = address.split(':').skip(4).collect();
    usize::from_str_radix(&hex, 16).ok()
}

fn payload(i: usize, counter: u16, battery: u8) -> String {
    let c = counter.to_le_bytes();
    format!(
        r#"{{"id":"{}","rssi":-{},"manufacturerdata":"ffff01{battery:02x}01{:02x}{:02x}"}}"#,
        band_address(i),
        55 + (i % 20),
        c[0],
        c[1]
    )
}

fn counter_of(payload: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(payload).ok()?;
    let start = text.find("\"manufacturerdata\":\"")? + 20;
    let hex = &text[start..start + 14];
    let lo = u8::from_str_radix(&hex[10..12], 16).ok()?;
    let hi = u8::from_str_radix(&hex[12..14], 16).ok()?;
    Some(u16::from_le_bytes([lo, hi]))
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr")
}

/// Receipts: (band, counter, when).
type Receipts = Arc<Mutex<Vec<(usize, u16, Instant)>>>;

/// The box's parts in this process: store, app (on `clock`), presence thread and broker.
struct BoxParts {
    _dir: tempfile::TempDir,
    presence: PresenceView,
    mqtt: Mqtt,
    addr: SocketAddr,
}

fn start_box(clock: Arc<dyn Clock>) -> BoxParts {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let mut raw = Config::from_toml("").expect("defaults").raw;
    raw.store.data_dir = dir.path().to_owned();
    raw.mqtt.listen = addr.to_string();
    if let Some(n) = std::env::var("BENCH_SAMPLE_SECONDS").ok().and_then(|s| s.parse().ok()) {
        raw.bands.sample_seconds = n;
    }
    let config = Config::validate(raw).expect("config");
    let store =
        Store::open(dir.path(), &StoreConfig { cache_capacity: config.store.cache_bytes }).expect("store");
    let app = Outpost::new(store.clone(), config, clock.clone());
    let now = clock.now();
    let mut w = WriteSet::new();
    for i in 0..BANDS {
        let mut band = Band::new(band_address(i), String::new(), "bench", now);
        band.change(BandState::Ready, None, "bench", "", now);
        w.put(&band).expect("band");
    }
    store.commit_blocking(w).expect("commit");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for g in 0..GATEWAYS {
        rt.block_on(app.add_device(&format!("gw-{g}"), PASS, DeviceKind::Gateway, "bench"))
            .expect("credential");
    }
    let presence =
        PresenceView::start(app.clone(), store.series("sightings").expect("series"), presence::channel())
            .expect("presence");
    let subscriber = mqtt::Subscriber {
        clock,
        sink: presence.sink(),
        // No app publishes positions in this benchmark.
        positions: tokio::sync::mpsc::channel(1).0,
    };
    let mqtt =
        mqtt::start(mqtt::Listeners { plain: Some(addr), tls: None }, 4096, app, subscriber).expect("broker");
    std::thread::sleep(Duration::from_millis(300));
    BoxParts { _dir: dir, presence, mqtt, addr }
}

fn client(addr: SocketAddr, id: &str, user: Option<String>) -> (Client, rumqttc::Connection) {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(64 * 1024, 64 * 1024);
    if let Some(user) = user {
        o.set_credentials(user, PASS);
    }
    let (c, conn) = Client::new(o, 10_000);
    (c, conn)
}

/// Publishes `rounds` rounds of every band from 10 gateways, `per_second` in total (0: unpaced);
/// returns the send time of each (band, round) and the wall time.
fn publish(addr: SocketAddr, auth: bool, rounds: usize, per_second: usize) -> (Vec<Vec<Instant>>, Duration) {
    let started = Instant::now();
    // Every gateway is connected (logged in: an Argon2id check each, ~0.1 s) before any publishes:
    // the figure is for sightings, not for logins.
    let connected = Arc::new(std::sync::Barrier::new(GATEWAYS));
    let handles: Vec<_> = (0..GATEWAYS)
        .map(|g| {
            let connected = connected.clone();
            std::thread::spawn(move || {
                let (c, mut conn) = client(addr, &format!("gw-{g}"), auth.then(|| format!("gw-{g}")));
                let (acked, ack) = std::sync::mpsc::channel();
                let driver = std::thread::spawn(move || {
                    for event in conn.iter() {
                        match event {
                            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                                let _ = acked.send(());
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                });
                ack.recv_timeout(Duration::from_secs(30)).expect("the broker accepted the gateway");
                connected.wait();
                let mine: Vec<usize> = (g * BANDS / GATEWAYS..(g + 1) * BANDS / GATEWAYS).collect();
                let mut sent = vec![Vec::with_capacity(rounds); mine.len()];
                let per_gateway = per_second / GATEWAYS;
                let t0 = Instant::now();
                let mut n = 0usize;
                for round in 0..rounds {
                    for (k, &i) in mine.iter().enumerate() {
                        if per_gateway > 0 {
                            let due = t0 + Duration::from_secs_f64(n as f64 / per_gateway as f64);
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                        }
                        sent[k].push(Instant::now());
                        c.publish(
                            format!("home/gw-{g}/BTtoMQTT/{}", band_address(i).replace(':', "")),
                            QoS::AtMostOnce,
                            false,
                            payload(i, round as u16, 90),
                        )
                        .expect("publish");
                        n += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
                let _ = c.disconnect();
                let _ = driver.join();
                (g, sent)
            })
        })
        .collect();
    let mut all = vec![Vec::new(); BANDS];
    for h in handles {
        let (g, sent) = h.join().expect("publisher");
        for (k, s) in sent.into_iter().enumerate() {
            all[g * BANDS / GATEWAYS + k] = s;
        }
    }
    (all, started.elapsed())
}

/// Waits until no receipt has arrived for two seconds (what is still queued is counted, not lost).
fn settle(receipts: &Receipts) {
    let mut last = usize::MAX;
    loop {
        let n = receipts.lock().map(|r| r.len()).unwrap_or(0);
        if n == last {
            return;
        }
        last = n;
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn report(name: &str, sent: &[Vec<Instant>], receipts: &Receipts) {
    let r = receipts.lock().expect("receipts");
    let first_send = sent.iter().filter_map(|s| s.first()).min().copied().unwrap_or_else(Instant::now);
    let total: usize = sent.iter().map(Vec::len).sum();
    let mut lat: Vec<Duration> = r
        .iter()
        .filter_map(|(b, c, at)| {
            sent.get(*b).and_then(|s| s.get(*c as usize)).map(|s| at.saturating_duration_since(*s))
        })
        .collect();
    // BENCH_DIAG=1: the same figures for each second of publishing.
    if std::env::var("BENCH_DIAG").is_ok() {
        let mut by_second: std::collections::BTreeMap<u64, Vec<Duration>> = Default::default();
        for (b, c, at) in r.iter() {
            if let Some(s) = sent.get(*b).and_then(|s| s.get(*c as usize)) {
                let second = s.duration_since(first_send).as_secs();
                by_second.entry(second).or_default().push(at.saturating_duration_since(*s));
            }
        }
        for (second, mut l) in by_second {
            l.sort();
            println!(
                "  second {second}: {} sightings, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.len(),
                percentile(&l, 0.5).as_secs_f64() * 1000.0,
                percentile(&l, 0.99).as_secs_f64() * 1000.0,
                l.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
            );
        }
    }
    lat.sort();
    let last = r.iter().map(|(_, _, at)| *at).max().unwrap_or(first_send);
    let secs = last.duration_since(first_send).as_secs_f64().max(1e-9);
    println!(
        "{name}: {} of {total} sightings received, {:.0}/s; publish → receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        r.len(),
        r.len() as f64 / secs,
        percentile(&lat, 0.5).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

fn run_box(rounds: usize, rate: usize) {
    let parts = start_box(Arc::new(SystemClock));
    let receipts: Receipts = Arc::new(Mutex::new(Vec::with_capacity(rounds * BANDS)));
    let r = receipts.clone();
    parts.presence.set_tap(Box::new(move |s| {
        if let (Some(b), Some(d)) = (band_index(&s.band), s.parsed.band) {
            if let Ok(mut r) = r.lock() {
                r.push((b, d.counter, Instant::now()));
            }
        }
    }));
    let (sent, wall) = publish(parts.addr, true, rounds, rate);
    settle(&receipts);
    println!("  (published for {:.1} s)", wall.as_secs_f64());
    report("outpost (front → rumqttd → subscriber → presence engine)", &sent, &receipts);
    let stats = parts.presence.stats();
    let overrun = parts.mqtt.counters.lock().map(|c| c.overrun).unwrap_or(0);
    println!(
        "  presence thread: {} taken, {} dropped (queue full); broker log overrun: {overrun} (counted by the box)",
        stats.sightings, stats.dropped
    );
    parts.presence.stop();
}

fn run_mosquitto(rounds: usize, rate: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {} 127.0.0.1\nallow_anonymous true\n", addr.port()))
        .expect("conf");
    let mut broker: Child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto is missing: apt-get install mosquitto");
    std::thread::sleep(Duration::from_millis(500));
    let receipts: Receipts = Arc::new(Mutex::new(Vec::with_capacity(rounds * BANDS)));
    let (sub, mut conn) = client(addr, "subscriber", None);
    sub.subscribe("+/+/BTtoMQTT/+", QoS::AtMostOnce).expect("subscribe");
    let r = receipts.clone();
    let reader = std::thread::spawn(move || {
        for event in conn.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let band =
                        p.topic.rsplit('/').next().and_then(|m| usize::from_str_radix(&m[8..], 16).ok());
                    if let (Some(b), Some(c)) = (band, counter_of(&p.payload)) {
                        if let Ok(mut r) = r.lock() {
                            r.push((b, c, Instant::now()));
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let (sent, wall) = publish(addr, false, rounds, rate);
    settle(&receipts);
    println!("  (published for {:.1} s)", wall.as_secs_f64());
    report("mosquitto (relay → one idle subscriber)", &sent, &receipts);
    let _ = sub.disconnect();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = reader.join();
}

fn memory() {
    let start = Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("start");
    let clock = ManualClock::new(start);
    let parts = start_box(clock.clone());
    std::thread::sleep(Duration::from_secs(2));
    let idle = proc_status_kb(std::process::id(), "VmRSS:");
    println!("memory: idle with {BANDS} pool bands: {:.1} MB", idle as f64 / 1024.0);
    // Two gateways hear every band every 10 s; one simulated hour is 360 rounds.
    let taken = |parts: &BoxParts| parts.presence.stats().sightings;
    let mut conns = Vec::new();
    for g in 0..2 {
        let (c, mut conn) = client(parts.addr, &format!("mem-gw-{g}"), Some(format!("gw-{g}")));
        let driver = std::thread::spawn(move || for _ in conn.iter().take_while(|e| e.is_ok()) {});
        conns.push((c, driver));
    }
    let mut expected = 0u64;
    for round in 0..360usize {
        for (g, (c, _)) in conns.iter().enumerate() {
            for i in 0..BANDS {
                let battery = 100 - (round / 10) as u8;
                c.publish(
                    format!("home/gw-{g}/BTtoMQTT/{}", band_address(i).replace(':', "")),
                    QoS::AtMostOnce,
                    false,
                    payload(i, round as u16, battery),
                )
                .expect("publish");
                expected += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while taken(&parts) < expected * 99 / 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        clock.advance(chrono::Duration::seconds(10));
        if (round + 1) % 60 == 0 {
            let stats = parts.presence.stats();
            println!(
                "memory: after {:2} simulated minutes: {:.1} MB (+{:.1} MB); {} sightings taken, {} kept as raw samples",
                (round + 1) / 6,
                proc_status_kb(std::process::id(), "VmRSS:") as f64 / 1024.0,
                (proc_status_kb(std::process::id(), "VmRSS:") as f64 - idle as f64) / 1024.0,
                stats.sightings,
                stats.samples
            );
        }
    }
    for (c, d) in conns {
        let _ = c.disconnect();
        let _ = d.join();
    }
}

fn main() {
    // As the `outpost` binary does.
    outpost::platform::memory::limit_arenas();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let seconds: usize = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    if want("rate") {
        let rate = 50_000;
        let rounds = seconds * rate / BANDS;
        println!("rate: {GATEWAYS} gateways, {BANDS} bands, {rate} sightings/s offered for {seconds} s");
        run_box(rounds, rate);
        run_mosquitto(rounds, rate);
    }
    if want("max") {
        let rounds = 100;
        println!(
            "max: {GATEWAYS} gateways, {BANDS} bands, {} sightings as fast as they can be published",
            rounds * BANDS
        );
        run_box(rounds, 0);
        run_mosquitto(rounds, 0);
    }
    if want("memory") {
        if only.len() == 1 {
            memory();
        } else {
            // A process of its own: what the other runs left allocated is not the box's idle.
            let exe = std::env::current_exe().expect("the bench binary");
            let status = Command::new(exe).arg("memory").status().expect("the memory run");
            assert!(status.success(), "the memory run failed");
        }
    }
}
