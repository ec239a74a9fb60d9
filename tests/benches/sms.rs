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
//! 2. The modem's throughput meanwhile (every part it took, reminders and alerts), and from it the
//!    time a testing round's 2,000 results take on one modem; the box's CPU (`/proc/<pid>/stat`) and
//!    memory (`VmRSS`, `VmHWM`) during the drain.

use std::time::{Duration, Instant};

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{cpu_time, site_with_people, Client};
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
    let (part, people, alerts) = (env("SMS_PART_SECONDS", 5), env("SMS_PEOPLE", 1000), env("SMS_ALERTS", 50));
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
    println!("  2,000 results at this pace: {:.0} min on one modem (goal: 60 min)", 2000.0 / per_minute);
    println!(
        "  the box while draining: CPU {:.2} % of one core ({} over {}), memory VmRSS {} MB, peak VmHWM {} MB",
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        secs(cpu),
        secs(elapsed),
        status_kb(pid, "VmRSS:") / 1024,
        status_kb(pid, "VmHWM:") / 1024
    );
}
