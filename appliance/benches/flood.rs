//! The box under floods from its own network (`cargo bench -p outpost --bench flood`), the real
//! binary against `tests/attack.py` (loopback only, attackers on 127.0.0.2 and up):
//!
//! 1. idle: the resident memory and `/healthz`'s latency;
//! 2. 200 wrong web logins and 200 wrong MQTT logins at once, each from its own address and name;
//! 3. 2,000 half-open connections from one address on the web port, then on the MQTT port, held.
//!
//! For each: the most resident memory seen, and `/healthz`'s median and worst latency (a request
//! every 100 ms, 5 s at most each; a timeout counts as 5 s). `OUTPOST_BIN` runs another build (the
//! one before a change, say); the box runs with the open-files limit a systemd service gets by
//! default (soft 1,024) unless it raises its own.
//!
//! Goals (issue 15): under 300 MB resident and `/healthz` under 1 s in every phase.

mod common;

use std::{
    io::{BufRead, Read},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{percentile, proc_status_kb};

/// The attack script, beside the end-to-end tests.
fn attack(args: &[&str]) -> Child {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/attack.py");
    Command::new("python3").arg(script).args(args).stdout(Stdio::piped()).spawn().expect("python3")
}

/// Starts the box (soft open-files limit 1,024, as systemd's default) with MQTT on `mqtt`: the process
/// and its web address.
fn start_box(data: &std::path::Path, mqtt: &str) -> (Child, String) {
    let bin = std::env::var("OUTPOST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_outpost").to_owned());
    let command = format!(
        "ulimit -Sn 1024; exec {bin} run --data {} --listen 127.0.0.1:0 --mqtt {mqtt}",
        data.display()
    );
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn outpost");
    let stdout = child.stdout.take().expect("stdout");
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read");
        if let Some(i) = line.find(" listening on ") {
            return (child, line[i + " listening on ".len()..].trim().to_owned());
        }
    }
    let status = child.wait();
    panic!("outpost exited before listening: {status:?}");
}

/// What one phase measured.
struct Phase {
    most_mb: f64,
    healthz: Vec<Duration>,
}

/// Samples memory and `/healthz` every 100 ms while `busy` says the phase goes on.
fn measure(pid: u32, url: &str, mut busy: impl FnMut() -> bool) -> Phase {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build(),
    );
    let mut phase = Phase { most_mb: 0.0, healthz: Vec::new() };
    while busy() {
        phase.most_mb = phase.most_mb.max(proc_status_kb(pid, "VmRSS:") as f64 / 1024.0);
        let t = Instant::now();
        let ok = agent.get(&format!("{url}/healthz")).call().is_ok_and(|r| r.status() == 200);
        phase.healthz.push(if ok { t.elapsed() } else { Duration::from_secs(5) });
        std::thread::sleep(Duration::from_millis(100));
    }
    phase.healthz.sort();
    phase
}

fn report(name: &str, p: &Phase, note: &str) {
    println!(
        "{name:<44} resident at most {:>7.0} MB · /healthz median {:>9.2?}, worst {:>9.2?} {note}",
        p.most_mb,
        percentile(&p.healthz, 0.5),
        p.healthz.last().copied().unwrap_or_default()
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mqtt_port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let (mut child, url) = start_box(&dir.path().join("data"), &format!("127.0.0.1:{mqtt_port}"));
    // The box is the shell's exec: the same process.
    let pid = child.id();
    let web_port = url.rsplit(':').next().expect("port").to_owned();
    let mqtt_port = mqtt_port.to_string();
    std::thread::sleep(Duration::from_secs(1));

    let t = Instant::now();
    report("idle (2 s)", &measure(pid, &url, || t.elapsed() < Duration::from_secs(2)), "");

    let mut flood = attack(&["logins", &web_port, &mqtt_port, "200"]);
    let phase = measure(pid, &url, || flood.try_wait().ok().flatten().is_none());
    let mut summary = String::new();
    let _ = flood.stdout.take().map(|mut o| o.read_to_string(&mut summary));
    report("200 + 200 wrong logins at once", &phase, summary.trim());

    for (port, kind) in [(&web_port, "web"), (&mqtt_port, "mqtt")] {
        let mut held = attack(&["halfopen", port, "2000", kind]);
        let t = Instant::now();
        let phase = measure(pid, &url, || t.elapsed() < Duration::from_secs(8));
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        report(
            &format!("2,000 half-open connections on {kind}"),
            &phase,
            &format!("({fds} descriptors open)"),
        );
        let _ = held.kill();
        let _ = held.wait();
    }
    let _ = child.kill();
    let _ = child.wait();
}
