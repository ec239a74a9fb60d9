//! The outbox at a GSM modem's pace (docs/sms.md): `cargo build --release --bins && cargo bench -p
//! outpost-tests --bench sms`.
//!
//! The real box (`outpost run`, release) drives the modem simulator on a pseudo-terminal at a GSM
//! modem's pace: `SMS_PART_SECONDS` (5) a part, real time. On the box's manual clock, `SMS_PEOPLE`
//! (1,000) people miss the 08:00 round: as many reminders are queued at 08:31. Then:
//!
//! 1. `SMS_ALERTS` (50) severe alerts, one after another (a declaration with SpO2 90 %, each SMS to
//!    the on-duty phone): the time from the declaration to the alert's reaching the modem (its
//!    `AT+CMGS`). Goal: p99 ≤ 10 s with the reminders queued.
//! 2. The modem's throughput meanwhile (every part it took, reminders and alerts); the box's CPU
//!    (`/proc/<pid>/stat`) and memory (`VmRSS`, `VmHWM`) during the drain.
//! 3. With 1, 2 and 3 modems (`SMS_MODEMS`, "1,2,3"): 2,000 one-part messages queued at once (a
//!    staff message to 2,000 people: the size of a test result) and drained for `SMS_WINDOW` (120)
//!    seconds; from the rate, the time a testing round's 2,000 results take. Goal: within 60 minutes
//!    with three modems. `SMS_WINDOW=3600` drains for real.

use std::time::{Duration, Instant};

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{cpu_time, district_csv, site_with_people, write_config, BoxProcess, Client};
use serde_json::json;

const ON_DUTY: &str = "0905999888";
const PASSWORD: &str = "Bench-Sms-2026!x";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A `/proc/<pid>/status` figure in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let part = env("SMS_PART_SECONDS", 5);
    alerts_behind_reminders(part);
    let modems = std::env::var("SMS_MODEMS").unwrap_or_else(|_| "1,2,3".into());
    for n in modems.split(',').filter_map(|n| n.trim().parse::<usize>().ok()) {
        drain(part, n, env("SMS_WINDOW", 120));
    }
}

/// Parts 1 and 2.
fn alerts_behind_reminders(part: u64) {
    let (people, alerts) = (env("SMS_PEOPLE", 1000), env("SMS_ALERTS", 50));
    let dir = tempfile::tempdir().expect("tempdir");
    let pace = Pace::seconds(part as f64, part as f64);
    let sim = Simulator::start_with(&dir.path().join("modem"), pace).expect("simulator");
    let extra = format!("[alerts]\non_duty_phones = [\"{ON_DUTY}\"]\n[web]\nrate_limits = false\n");
    let (mut b, mut c, ids) = site_with_people(
        dir.path(),
        sim.path(),
        &extra,
        "2026-11-21T00:00:00Z",
        people as usize,
        (PASSWORD, &["--mqtt", "off", "--mqtt-tls", "off"]),
    );
    let tokens: Vec<String> = ids
        .iter()
        .take(alerts as usize)
        .map(|id| {
            c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned()
        })
        .collect();
    let pid = b.pid();
    let r = b.clock("set 2026-11-21T08:31:00+07:00");
    println!("{people} people missed 08:00: {r}");
    let (cpu_before, began) = (cpu_time(pid), Instant::now());
    let sent_before = sim.sent().len();
    let mut phone = Client::new(&b.url);
    let mut waits = Vec::new();
    for (n, t) in tokens.iter().enumerate() {
        let asked = Instant::now();
        let res = phone.post_json(
            &format!("/api/v1/declare/{t}"),
            &json!({"temperature": "37.0", "spo2": "90", "symptoms": []}),
        );
        assert_eq!(res.status, 201, "{}", res.body);
        let deadline = Instant::now() + Duration::from_secs(120);
        let handed = loop {
            let to_duty: Vec<Instant> =
                sim.sent().into_iter().filter(|m| m.to == ON_DUTY).map(|m| m.handed_at).collect();
            if to_duty.len() > n {
                break to_duty[n];
            }
            assert!(Instant::now() < deadline, "alert {n} never reached the modem");
            std::thread::sleep(Duration::from_millis(50));
        };
        waits.push(handed.saturating_duration_since(asked));
    }
    let elapsed = began.elapsed();
    let cpu = cpu_time(pid) - cpu_before;
    let parts = sim.sent().len() - sent_before;
    let waiting = c
        .get("/api/v1/outbox")
        .json()
        .as_array()
        .expect("outbox")
        .iter()
        .filter(|m| m["state"] == "queued")
        .count();
    waits.sort();
    let at = |p: f64| waits[((waits.len() as f64 * p) as usize).min(waits.len() - 1)];
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    println!(
        "a severe alert behind {people} reminders, {part} s a part, one modem ({} alerts):",
        waits.len()
    );
    println!(
        "  declaration → the modem: median {}, p99 {} (goal ≤ 10 s), max {}",
        secs(at(0.5)),
        secs(at(0.99)),
        secs(*waits.last().expect("max"))
    );
    let per_minute = parts as f64 / elapsed.as_secs_f64() * 60.0;
    println!(
        "  the modem took {parts} parts in {:.0} s: {per_minute:.1} a minute; {waiting} reminders still queued",
        elapsed.as_secs_f64()
    );
    println!(
        "  the box while draining: CPU {:.2} % of one core ({} over {}), memory VmRSS {} MB, peak VmHWM {} MB",
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        secs(cpu),
        secs(elapsed),
        status_kb(pid, "VmRSS:") / 1024,
        status_kb(pid, "VmHWM:") / 1024
    );
}

/// Part 3: 2,000 one-part messages through `modems` modems for `window` seconds.
fn drain(part: u64, modems: usize, window: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pace = Pace::seconds(part as f64, part as f64);
    let sims: Vec<Simulator> = (0..modems)
        .map(|i| Simulator::start_with(&dir.path().join(format!("modem-{i}")), pace).expect("simulator"))
        .collect();
    let ports: Vec<String> = sims.iter().map(|s| format!("\"{}\"", s.path().display())).collect();
    let config = write_config(
        dir.path(),
        &format!("[modem]\nport = [{}]\n[web]\nrate_limits = false\n", ports.join(", ")),
    );
    let b = BoxProcess::start(
        "run",
        &dir.path().join("data"),
        &["--config", &config, "--mqtt", "off", "--mqtt-tls", "off"],
    );
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "bench.admin", PASSWORD);
    let res =
        c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(2000, "21/11/2026", "05/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c.get("/api/v1/health").json()["modems"]
        .as_array()
        .is_some_and(|m| m.len() == modems && m.iter().all(|m| m["health"]["connected"] == true))
    {
        assert!(Instant::now() < deadline, "the modems never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    let res = c.post_json(
        "/api/v1/sms",
        &json!({"status": "in_quarantine", "text": "Outpost: Thong bao chung cua khu cach ly", "lang": "vi"}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let (pid, began) = (b.pid(), Instant::now());
    let cpu_before = cpu_time(pid);
    let total = |sims: &[Simulator]| sims.iter().map(|s| s.sent().len()).sum::<usize>();
    while began.elapsed() < Duration::from_secs(window) && total(&sims) < 2000 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let (elapsed, sent) = (began.elapsed(), total(&sims));
    let cpu = cpu_time(pid) - cpu_before;
    let per_minute = sent as f64 / elapsed.as_secs_f64() * 60.0;
    let wait = c.get("/api/v1/health").json()["outbox"].clone();
    let estimate = wait["lanes"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["purpose"] == "custom"))
        .map(|l| l["drained_in_seconds"].clone());
    println!("2,000 one-part messages, {part} s a part, {modems} modem(s), {:.0} s:", elapsed.as_secs_f64());
    println!(
        "  {sent} sent: {per_minute:.1} a minute; 2,000 results take {:.0} min (goal with three modems: ≤ 60 min){}",
        2000.0 / per_minute,
        if sent < 2000 { ", from the rate" } else { ", drained" }
    );
    println!(
        "  the box's own estimate for what was left: {} s; CPU {:.2} % of one core, VmRSS {} MB",
        estimate.map(|e| e.to_string()).unwrap_or_default(),
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        status_kb(pid, "VmRSS:") / 1024
    );
}
