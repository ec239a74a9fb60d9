//! btleplug against a mock BlueZ: a private `dbus-daemon` stands in for the system bus, and
//! python-dbusmock's `bluez5` template (Debian's `python3-dbusmock`, installed by `scripts/test.sh`)
//! plays BlueZ; `bluez_mock.py` starts both and drives the mock. The test adds an adapter and bands, changes their RSSI and manufacturer data, removes
//! one, and checks what the presence engine makes of the sightings the real scanner code produces:
//! present, battery, strap (tamper), away; then it lets the event stream stall and checks that the
//! watchdog restarts the scan and that sightings flow again afterwards.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        atomic::{AtomicI64, Ordering},
        mpsc, Arc,
    },
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use outpost_ble::{
    presence::{Engine, PresenceConfig, PresenceEvent, State},
    scan::{self, ScanConfig, ScanStats},
    Sighting,
};

/// The helper that drives the mock (`bluez_mock.py`).
struct Mock {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Mock {
    /// Closing its standard input makes the helper stop the bus and the mock it started.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + StdDuration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    fn try_send(&mut self, command: &str) -> Result<String, String> {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write to the mock helper");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the mock helper");
        match line.trim_end().split_once(' ').unwrap_or((line.trim_end(), "")) {
            ("ok", rest) => Ok(rest.trim().to_owned()),
            (_, rest) => Err(rest.to_owned()),
        }
    }

    fn send(&mut self, command: &str) -> String {
        self.try_send(command).unwrap_or_else(|e| panic!("{command}: {e}"))
    }
}

const PYTHON: &str = "/usr/bin/python3";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("t0")
}

/// Receives sightings until `pred` holds for one (feeding every one to the engine), or panics.
fn until(
    rx: &mpsc::Receiver<Sighting>,
    engine: &mut Engine,
    events: &mut Vec<PresenceEvent>,
    what: &str,
    pred: impl Fn(&Sighting) -> bool,
) -> Sighting {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let s = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no sighting: {what}"));
        events.extend(engine.observe(&s));
        if pred(&s) {
            return s;
        }
    }
}

#[test]
fn btleplug_against_a_mock_bluez() {
    let mut helper = Command::new(PYTHON)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bluez_mock.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is missing");
    let stdin = helper.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(helper.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("bus address");
    let address = first
        .strip_prefix("bus ")
        .unwrap_or_else(|| {
            panic!("no mock BlueZ (scripts/test.sh installs dbus-daemon and python3-dbusmock): {first:?}")
        })
        .trim()
        .to_owned();
    // This test is alone in its binary and sets the variable before starting any thread: btleplug
    // (through libdbus) takes the "system" bus from it.
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address);
    let mut mock = Mock { child: helper, stdin: Some(stdin), stdout };
    mock.send("adapter hci0");
    const B1: &str = "D4:E6:F1:A2:B3:C1";
    const B2: &str = "D4:E6:F1:A2:B3:C2";
    mock.send(&format!("device hci0 {B1}"));

    // The scanner under test, on its own runtime, with a clock the test moves.
    let clock = Arc::new(AtomicI64::new(t0().timestamp_millis()));
    let stats = Arc::new(ScanStats::default());
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scanner = {
        let (clock, stats) = (clock.clone(), stats.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(scan::run(
                ScanConfig {
                    adapter: Some("hci0".into()),
                    scanner: "box".into(),
                    watchdog: StdDuration::from_secs(2),
                },
                stats,
                move || Utc.timestamp_millis_opt(clock.load(Ordering::SeqCst)).single().unwrap_or_default(),
                move |s| {
                    let _ = tx.send(s);
                },
                async move {
                    let _ = stop_rx.await;
                },
            ))
        })
    };
    let mut engine = Engine::new(PresenceConfig::default());
    let mut events = Vec::new();

    // A band with 90 % and its strap closed: present, battery read.
    mock.send(&format!("adv {B1} -58 ffff015a010100"));
    until(&rx, &mut engine, &mut events, "B1's advertisement", |s| s.band == B1 && s.parsed.band.is_some());
    let p = engine.get(B1).expect("B1 tracked");
    assert_eq!((p.state, p.battery_percent, p.strap_closed), (State::Present, Some(90), Some(true)));
    // RSSI changes arrive.
    mock.send(&format!("rssi {B1} -71"));
    until(&rx, &mut engine, &mut events, "B1's new RSSI", |s| s.band == B1 && s.rssi == -71);
    // The strap is opened: tamper.
    mock.send(&format!("adv {B1} -60 ffff015a000200"));
    until(&rx, &mut engine, &mut events, "B1's open strap", |s| {
        s.parsed.band.is_some_and(|b| !b.strap_closed)
    });
    assert!(
        events.iter().any(|e| matches!(e, PresenceEvent::StrapOpened { band, .. } if band == B1)),
        "{events:?}"
    );
    // A second band, nearly flat.
    mock.send(&format!("device hci0 {B2}"));
    mock.send(&format!("adv {B2} -66 ffff010f010100"));
    until(&rx, &mut engine, &mut events, "B2", |s| s.band == B2 && s.parsed.band.is_some());
    assert!(
        events.iter().any(|e| matches!(e, PresenceEvent::BatteryLow { band, percent: 15, .. } if band == B2)),
        "{events:?}"
    );

    // B1 goes: BlueZ drops it and btleplug says nothing; eleven minutes later B2 is still heard and
    // the engine decides B1 is away.
    mock.send(&format!("remove hci0 {B1}"));
    clock.store((t0() + Duration::minutes(11)).timestamp_millis(), Ordering::SeqCst);
    mock.send(&format!("rssi {B2} -64"));
    until(&rx, &mut engine, &mut events, "B2 later", |s| s.band == B2 && s.rssi == -64);
    let ticked = engine.tick(t0() + Duration::minutes(11));
    assert!(
        ticked.iter().any(|e| matches!(e, PresenceEvent::State { band, to: State::Away, .. } if band == B1)),
        "{ticked:?}"
    );
    assert_eq!(engine.get(B2).map(|p| p.state), Some(State::Present));

    // The event stream stalls: the watchdog restarts the scan, and sightings flow again.
    let before = stats.restarts.load(Ordering::SeqCst);
    let discoveries = mock.send("calls hci0 StartDiscovery").parse::<u32>().expect("count");
    std::thread::sleep(StdDuration::from_millis(4500));
    assert!(stats.restarts.load(Ordering::SeqCst) > before, "the watchdog restarted the scan");
    let after = mock.send("calls hci0 StartDiscovery").parse::<u32>().expect("count");
    assert!(after > discoveries, "BlueZ was asked to discover again ({discoveries} → {after})");
    mock.send(&format!("rssi {B2} -69"));
    until(&rx, &mut engine, &mut events, "B2 after the restart", |s| s.band == B2 && s.rssi == -69);
    assert!(rx.try_iter().all(|s| s.band != B1), "nothing more is heard of a removed band");

    let _ = stop_tx.send(());
    scanner.join().expect("scanner thread").expect("scanner ran");
}
