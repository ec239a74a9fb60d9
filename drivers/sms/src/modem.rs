//! The modem driver: a thread that owns the serial port, initialises the modem, sends what it is asked
//! to, reads every message the SIM stores (at start-up and on each `+CMTI`) and hands it to the box,
//! deleting it from the SIM only after the box says it is durable, and passes delivery reports on.
//!
//! When the modem stops answering, or the port disappears (USB unplugged), the thread closes the port
//! and opens it again every `reopen_every` until it works, re-initialising the modem; sends asked for
//! meanwhile fail as temporary, so the box's outbox keeps them and tries later. A SIM PIN is entered at
//! most once per start-up: a wrong PIN is never retried into a SIM lock.

use std::{
    path::PathBuf,
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    at::{self, Urc},
    engine::{AtError, Engine, Event},
    pdu::{self, Decoded},
};

/// How to reach and drive the modem.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    pub port: PathBuf,
    pub baud: u32,
    /// The SIM PIN, if the SIM asks for one.
    pub pin: Option<String>,
    /// Time allowed for an ordinary command.
    pub command_timeout: Duration,
    /// Time allowed for the network to accept one message part.
    pub send_timeout: Duration,
    /// Pause between attempts to reopen a lost port.
    pub reopen_every: Duration,
    /// How often signal and registration are refreshed.
    pub health_every: Duration,
    /// Validity period asked of the network for outgoing messages, minutes.
    pub validity_minutes: u32,
}

impl ModemConfig {
    pub fn new(port: impl Into<PathBuf>) -> ModemConfig {
        ModemConfig {
            port: port.into(),
            baud: 115_200,
            pin: None,
            command_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(60),
            reopen_every: Duration::from_secs(5),
            health_every: Duration::from_secs(30),
            validity_minutes: 24 * 60,
        }
    }
}

/// What the box's health page shows of the modem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    pub connected: bool,
    pub registration: Option<u8>,
    pub registered: bool,
    pub signal_dbm: Option<i32>,
    pub operator: Option<String>,
    pub sim: Option<String>,
    pub last_error: Option<String>,
    pub sent: u64,
    pub failed: u64,
    pub received: u64,
    pub reports: u64,
    pub reopened: u64,
    pub garbage_lines: u64,
}

/// Where received messages and delivery reports go. Called on the modem thread; may block.
pub trait ModemEvents: Send + Sync {
    /// A received message part (one PDU). Return `true` only once it is durable: the modem's copy is
    /// deleted after that, and kept (to be read again) otherwise.
    fn received(&self, part: &pdu::Deliver, raw_pdu: &str) -> bool;
    /// A delivery report.
    fn report(&self, report: &pdu::StatusReport);
}

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Every part was accepted; the network's message reference of each part.
    Sent { references: Vec<u8> },
    /// Not sent. `permanent` when retrying cannot help (a bad number, a refused message).
    Failed { permanent: bool, reason: String },
    /// The modem is not connected, or was lost during the send (unplugged, hung): another modem may
    /// take it at once. If the network had accepted a part before the modem was lost, its answer is
    /// lost with it (the in-flight case: sent again, so possibly twice).
    ModemLost { reason: String },
}

enum Request {
    Send { to: String, text: String, reference: u8, reply: mpsc::Sender<SendOutcome> },
    Stop,
}

/// The running driver.
pub struct Modem {
    tx: Mutex<mpsc::Sender<Request>>,
    health: Arc<Mutex<Health>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Modem {
    /// Starts the driver thread.
    pub fn start(config: ModemConfig, events: Arc<dyn ModemEvents>) -> Modem {
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(Mutex::new(Health::default()));
        let h = health.clone();
        let thread = thread::Builder::new()
            .name("modem".into())
            .spawn(move || Driver { config, events, health: h, rx, pin_tried: false }.run())
            .ok();
        Modem { tx: Mutex::new(tx), health, thread: Mutex::new(thread) }
    }

    /// Sends `text` to `to` (as many parts as it takes) and waits for the outcome.
    pub fn send(&self, to: &str, text: &str, reference: u8) -> SendOutcome {
        let (reply, rx) = mpsc::channel();
        let request = Request::Send { to: to.to_owned(), text: text.to_owned(), reference, reply };
        let sent = self.tx.lock().map(|tx| tx.send(request).is_ok()).unwrap_or(false);
        if !sent {
            return SendOutcome::ModemLost { reason: "the modem driver stopped".into() };
        }
        rx.recv().unwrap_or(SendOutcome::ModemLost { reason: "the modem driver stopped".into() })
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Stops the thread and closes the port (waits for a send in progress).
    pub fn stop(&self) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(Request::Stop);
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            let _ = t.join();
        }
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        self.stop();
    }
}

type Port = Box<dyn serialport::SerialPort>;

struct Driver {
    config: ModemConfig,
    events: Arc<dyn ModemEvents>,
    health: Arc<Mutex<Health>>,
    rx: mpsc::Receiver<Request>,
    pin_tried: bool,
}

/// Why a session with the modem ended.
enum End {
    Stop,
    Lost(String),
}

impl Driver {
    fn update(&self, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            f(&mut h);
        }
    }

    fn run(mut self) {
        let mut first = true;
        loop {
            let port = serialport::new(self.config.port.to_string_lossy(), self.config.baud)
                .timeout(Duration::from_millis(50))
                .open();
            let end = match port {
                Ok(port) => {
                    if !first {
                        self.update(|h| h.reopened += 1);
                    }
                    first = false;
                    self.session(Engine::new(port))
                }
                Err(e) => End::Lost(format!("cannot open {}: {e}", self.config.port.display())),
            };
            match end {
                End::Stop => return,
                End::Lost(reason) => {
                    tracing::warn!(port = %self.config.port.display(), %reason, "Modem lost; reopening.");
                    self.update(|h| {
                        h.connected = false;
                        h.last_error = Some(reason);
                    });
                    // Wait before reopening, answering sends as temporary failures meanwhile.
                    let until = Instant::now() + self.config.reopen_every;
                    while let Some(left) = until.checked_duration_since(Instant::now()) {
                        match self.rx.recv_timeout(left) {
                            Ok(Request::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                            Ok(Request::Send { reply, .. }) => {
                                let _ = reply.send(SendOutcome::ModemLost {
                                    reason: "the modem is not connected".into(),
                                });
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                        }
                    }
                }
            }
        }
    }

    fn session(&mut self, mut e: Engine<Port>) -> End {
        if let Err(err) = self.init(&mut e) {
            return End::Lost(err);
        }
        self.update(|h| {
            h.connected = true;
            h.last_error = None;
        });
        if let Err(err) = self.sweep(&mut e) {
            return End::Lost(err.to_string());
        }
        let mut next_health = Instant::now() + self.config.health_every;
        loop {
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Request::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return End::Stop,
                Ok(Request::Send { to, text, reference, reply }) => {
                    let (outcome, lost) = self.send(&mut e, &to, &text, reference);
                    let outcome = match (&lost, outcome) {
                        (Some(reason), SendOutcome::Failed { .. }) => {
                            SendOutcome::ModemLost { reason: reason.clone() }
                        }
                        (_, outcome) => outcome,
                    };
                    let _ = reply.send(outcome);
                    if let Some(reason) = lost {
                        return End::Lost(reason);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Err(err) = e.poll(Duration::from_millis(30)) {
                return End::Lost(format!("the serial port failed: {err}"));
            }
            if let Err(err) = self.handle_events(&mut e) {
                if err.is_link_failure() {
                    return End::Lost(err.to_string());
                }
                self.update(|h| h.last_error = Some(err.to_string()));
            }
            if Instant::now() >= next_health {
                next_health = Instant::now() + self.config.health_every;
                if let Err(err) = self.refresh_health(&mut e) {
                    if err.is_link_failure() {
                        return End::Lost(err.to_string());
                    }
                }
            }
            let garbage = e.garbage;
            self.update(|h| h.garbage_lines = garbage);
        }
    }

    fn init(&mut self, e: &mut Engine<Port>) -> Result<(), String> {
        let t = self.config.command_timeout;
        // A modem left in PDU input by a previous session: cancel it, then wake it up.
        let _ = e.command("\u{1b}AT", None, Duration::from_millis(500));
        e.command("ATE0", None, t).map_err(|err| err.to_string())?;
        e.command("AT+CMEE=1", None, t).map_err(|err| err.to_string())?;
        let sim = e.command("AT+CPIN?", Some("+CPIN"), t).map_err(|err| err.to_string())?;
        let state = sim.iter().find_map(|l| at::sim_state(l)).unwrap_or_default();
        self.update(|h| h.sim = Some(state.clone()));
        match state.as_str() {
            "READY" => {}
            "SIM PIN" => match (&self.config.pin, self.pin_tried) {
                (Some(pin), false) => {
                    self.pin_tried = true;
                    e.command(&format!("AT+CPIN=\"{pin}\""), None, Duration::from_secs(10)).map_err(
                        |err| format!("the SIM refused its PIN ({err}); not retried, so as not to lock it"),
                    )?;
                    self.update(|h| h.sim = Some("READY".into()));
                }
                (Some(_), true) => {
                    return Err("the SIM still asks for its PIN after one attempt; not retried".into())
                }
                (None, _) => return Err("the SIM asks for a PIN and none is configured".into()),
            },
            other => return Err(format!("the SIM is not usable: {other}")),
        }
        e.command("AT+CMGF=0", None, t).map_err(|err| err.to_string())?;
        // New messages and delivery reports to storage, announced with +CMTI and +CDSI (TS 27.005
        // §3.4.1): what arrives while the box is down waits on the SIM for the start-up sweep.
        e.command("AT+CNMI=2,1,0,2,0", None, t).map_err(|err| err.to_string())?;
        self.refresh_health(e).map_err(|err| err.to_string())?;
        Ok(())
    }

    fn refresh_health(&self, e: &mut Engine<Port>) -> Result<(), AtError> {
        let t = self.config.command_timeout;
        let creg = e.command("AT+CREG?", Some("+CREG"), t)?;
        let stat = creg.iter().find_map(|l| at::registration(l));
        let csq = e.command("AT+CSQ", Some("+CSQ"), t)?;
        let signal = csq.iter().find_map(|l| at::signal_dbm(l));
        let operator =
            e.command("AT+COPS?", Some("+COPS"), t).ok().and_then(|l| l.iter().find_map(|l| at::operator(l)));
        self.update(|h| {
            h.registration = stat;
            h.registered = stat.is_some_and(at::registered);
            h.signal_dbm = signal;
            h.operator = operator;
        });
        Ok(())
    }

    /// Reads every stored message (the ones that arrived while nobody listened).
    fn sweep(&self, e: &mut Engine<Port>) -> Result<(), AtError> {
        let lines = e.command("AT+CMGL=4", Some("+CMGL"), self.config.command_timeout)?;
        let mut i = 0;
        while i < lines.len() {
            if let (Some(index), Some(pdu)) = (at::list_index(&lines[i]), lines.get(i + 1)) {
                self.store_and_delete(e, index, pdu)?;
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn store_and_delete(&self, e: &mut Engine<Port>, index: u32, hex: &str) -> Result<(), AtError> {
        match pdu::decode(hex) {
            Ok(Decoded::Deliver(part)) => {
                if self.events.received(&part, hex) {
                    self.update(|h| h.received += 1);
                    e.command(&format!("AT+CMGD={index}"), None, self.config.command_timeout)?;
                }
            }
            Ok(Decoded::StatusReport(r)) => {
                self.events.report(&r);
                self.update(|h| h.reports += 1);
                e.command(&format!("AT+CMGD={index}"), None, self.config.command_timeout)?;
            }
            Ok(Decoded::Submit(_)) => {
                e.command(&format!("AT+CMGD={index}"), None, self.config.command_timeout)?;
            }
            Err(err) => {
                // Unreadable: keep it on the SIM (a person may read it on a phone) and say so.
                tracing::warn!(index, error = %err, "A stored message cannot be decoded; left on the SIM.");
                self.update(|h| h.last_error = Some(format!("stored message {index}: {err}")));
            }
        }
        Ok(())
    }

    fn handle_events(&self, e: &mut Engine<Port>) -> Result<(), AtError> {
        while let Some(Event { urc, pdu }) = e.events.pop_front() {
            match urc {
                Urc::NewMessage { index, .. } | Urc::NewReport { index, .. } => {
                    let lines =
                        e.command(&format!("AT+CMGR={index}"), Some("+CMGR"), self.config.command_timeout);
                    match lines {
                        Ok(lines) => {
                            if let Some(hex) = lines.get(1) {
                                self.store_and_delete(e, index, hex)?;
                            }
                        }
                        // Already read and deleted (a duplicate notice): nothing to do.
                        Err(AtError::Cms { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                Urc::ReportFollows { .. } | Urc::MessageFollows { .. } => {
                    match pdu.as_deref().map(pdu::decode) {
                        Some(Ok(Decoded::StatusReport(r))) => {
                            self.events.report(&r);
                            self.update(|h| h.reports += 1);
                        }
                        Some(Ok(Decoded::Deliver(part))) => {
                            if self.events.received(&part, pdu.as_deref().unwrap_or("")) {
                                self.update(|h| h.received += 1);
                            }
                        }
                        _ => self.update(|h| h.garbage_lines += 1),
                    }
                }
                Urc::Registration { stat } => self.update(|h| {
                    h.registration = Some(stat);
                    h.registered = at::registered(stat);
                }),
                Urc::Ring | Urc::Other(_) => {}
            }
        }
        Ok(())
    }

    /// Sends every part; returns the outcome and, if the link failed, why (to reopen).
    fn send(
        &self,
        e: &mut Engine<Port>,
        to: &str,
        text: &str,
        reference: u8,
    ) -> (SendOutcome, Option<String>) {
        let options = pdu::SubmitOptions {
            reference,
            validity_minutes: self.config.validity_minutes,
            status_report: true,
        };
        let parts = match pdu::encode_submit(to, text, options) {
            Ok(p) => p,
            Err(err) => {
                self.update(|h| h.failed += 1);
                return (SendOutcome::Failed { permanent: true, reason: err.to_string() }, None);
            }
        };
        let mut references = Vec::with_capacity(parts.len());
        for part in &parts {
            match e.send_pdu(&part.hex, part.tpdu_len, self.config.send_timeout) {
                Ok(mr) => references.push(mr),
                Err(err) => {
                    let permanent = matches!(&err, AtError::Cms { code, .. } if at::cms_permanent(code));
                    let lost = err.is_link_failure().then(|| err.to_string());
                    self.update(|h| {
                        h.failed += 1;
                        h.last_error = Some(err.to_string());
                    });
                    return (SendOutcome::Failed { permanent, reason: err.to_string() }, lost);
                }
            }
        }
        self.update(|h| h.sent += 1);
        (SendOutcome::Sent { references }, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Pace, Simulator};

    #[derive(Default)]
    struct Collect {
        parts: Mutex<Vec<pdu::Deliver>>,
        reports: Mutex<Vec<pdu::StatusReport>>,
        refuse: std::sync::atomic::AtomicBool,
    }

    impl ModemEvents for Collect {
        fn received(&self, part: &pdu::Deliver, _: &str) -> bool {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            self.parts.lock().expect("lock").push(part.clone());
            true
        }
        fn report(&self, report: &pdu::StatusReport) {
            self.reports.lock().expect("lock").push(report.clone());
        }
    }

    fn config(sim: &Simulator) -> ModemConfig {
        ModemConfig {
            command_timeout: Duration::from_millis(500),
            send_timeout: Duration::from_secs(2),
            reopen_every: Duration::from_millis(100),
            health_every: Duration::from_millis(300),
            ..ModemConfig::new(sim.path())
        }
    }

    fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn setup() -> (tempdir::Dir, Simulator, Arc<Collect>, Modem) {
        let dir = tempdir::Dir::new();
        let sim = Simulator::start_with(&dir.0.join("modem"), Pace::QUICK).expect("simulator");
        let events = Arc::new(Collect::default());
        let modem = Modem::start(config(&sim), events.clone());
        wait("the modem to connect", || modem.health().connected);
        (dir, sim, events, modem)
    }

    /// A temporary folder without a dev-dependency.
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "outpost-sms-{}-{}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::create_dir_all(&p).expect("temp dir");
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn sends_single_and_multipart_and_matches_reports() {
        let (_dir, sim, events, modem) = setup();
        let h = modem.health();
        assert_eq!(
            (h.registered, h.signal_dbm, h.operator.as_deref(), h.sim.as_deref()),
            (true, Some(-73), Some("Viettel"), Some("READY"))
        );
        let SendOutcome::Sent { references } = modem.send("+84905123456", "Outpost: nhac khai bao 08:00", 1)
        else {
            panic!("not sent")
        };
        assert_eq!(references.len(), 1);
        let long = "Kết quả xét nghiệm lần 2: ÂM TÍNH. ".repeat(4);
        let SendOutcome::Sent { references: parts } = modem.send("0905123456", &long, 2) else {
            panic!("not sent")
        };
        assert_eq!(parts.len(), 3);
        let gsm_long = "Nhac nho: khai bao y te ngay. ".repeat(7);
        let SendOutcome::Sent { references: gsm_parts } = modem.send("0905123456", &gsm_long, 3) else {
            panic!("not sent")
        };
        assert_eq!(gsm_parts.len(), 2);
        let sent = sim.sent();
        assert_eq!(sent.len(), 6);
        assert_eq!(sent[0].text, "Outpost: nhac khai bao 08:00");
        let joined: String = sent[1..4].iter().map(|m| m.text.as_str()).collect();
        assert_eq!(joined, long);
        let joined: String = sent[4..].iter().map(|m| m.text.as_str()).collect();
        assert_eq!(joined, gsm_long);
        // A delivery report for every part, matched by its reference.
        wait("delivery reports", || events.reports.lock().expect("lock").len() == 6);
        let mut got: Vec<u8> = events.reports.lock().expect("lock").iter().map(|r| r.reference).collect();
        got.sort();
        let mut want: Vec<u8> = references.iter().chain(&parts).chain(&gsm_parts).copied().collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn receives_stored_and_new_messages_and_deletes_them_only_when_durable() {
        let dir = tempdir::Dir::new();
        let sim = Simulator::start_with(&dir.0.join("modem"), Pace::QUICK).expect("simulator");
        // Arrived while the box was off: only a sweep finds them.
        sim.receive("+84905111222", "T 37.2 H");
        sim.receive("0905333444", &"Toi bi ho va sot nhe tu sang nay. ".repeat(6));
        sim.with(|s| s.log.clear());
        let events = Arc::new(Collect::default());
        let modem = Modem::start(config(&sim), events.clone());
        wait("the sweep", || events.parts.lock().expect("lock").len() == 3);
        wait("deletion", || sim.with(|s| s.stored.is_empty()));
        assert!(sim.with(|s| s.log.iter().any(|l| l == "AT+CMGL=4")));
        // A new one, announced with +CMTI; the box cannot store it yet: it stays on the SIM.
        events.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
        sim.receive("+84905111222", "T 38.1 KT");
        // At least once: a sweep may read it again before this loop looks (a slow machine).
        wait("the read", || sim.with(|s| s.log.iter().any(|l| l.starts_with("AT+CMGR="))));
        thread::sleep(Duration::from_millis(200));
        assert_eq!(sim.with(|s| s.stored.len()), 1, "not deleted before it is durable");
        events.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
        drop(modem);
        let modem = Modem::start(config(&sim), events.clone());
        wait("the retry at start-up", || sim.with(|s| s.stored.is_empty()));
        let parts = events.parts.lock().expect("lock").clone();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[3].text, "T 38.1 KT");
        assert_eq!(parts[1].concat.map(|c| c.total), Some(2));
        drop(modem);
    }

    #[test]
    fn recovers_from_a_hang_garbage_and_an_unplugged_port() {
        let (_dir, mut sim, _events, modem) = setup();
        sim.with(|s| s.garbage = true);
        assert!(matches!(modem.send("0905123456", "qua rac", 1), SendOutcome::Sent { .. }));
        sim.with(|s| s.garbage = false);
        wait("garbage to be counted", || modem.health().garbage_lines > 0);

        sim.with(|s| s.hang = true);
        let outcome = modem.send("0905123456", "treo", 2);
        assert!(matches!(outcome, SendOutcome::ModemLost { .. }), "{outcome:?}");
        sim.with(|s| s.hang = false);
        wait("reconnection after the hang", || modem.health().connected && modem.health().reopened >= 1);
        assert!(matches!(modem.send("0905123456", "treo", 2), SendOutcome::Sent { .. }));

        sim.unplug();
        wait("the loss to be seen", || !modem.health().connected);
        assert!(matches!(modem.send("0905123456", "rut ra", 3), SendOutcome::ModemLost { .. }));
        thread::sleep(Duration::from_millis(300));
        sim.replug().expect("replug");
        wait("reconnection after replug", || modem.health().connected);
        assert!(matches!(modem.send("0905123456", "cam lai", 3), SendOutcome::Sent { .. }));
        let texts: Vec<String> = sim.sent().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, vec!["qua rac", "treo", "cam lai"], "nothing lost, nothing twice");
    }

    #[test]
    fn the_network_takes_its_time_loses_registration_and_caps_a_day() {
        let dir = tempdir::Dir::new();
        let pace = Pace { part_min: Duration::from_millis(300), part_max: Duration::from_millis(300) };
        let sim = Simulator::start_with(&dir.0.join("modem"), pace).expect("simulator");
        let modem = Modem::start(config(&sim), Arc::new(Collect::default()));
        wait("the modem ready", || modem.health().connected);
        let began = Instant::now();
        assert!(matches!(modem.send("0905123456", "mot phan", 1), SendOutcome::Sent { .. }));
        assert!(began.elapsed() >= Duration::from_millis(300), "a part takes the network's time");
        // Registration lost: refused (temporary), and the health page learns it.
        sim.with(|s| s.registered = false);
        match modem.send("0905123456", "mat song", 2) {
            SendOutcome::Failed { permanent: false, reason } => assert!(reason.contains("331"), "{reason}"),
            other => panic!("{other:?}"),
        }
        wait("registration lost seen", || !modem.health().registered);
        sim.with(|s| s.registered = true);
        // The operator's daily cap: one more part today, then refused.
        sim.with(|s| s.daily_cap = Some(s.sent_today + 1));
        assert!(matches!(modem.send("0905123456", "con mot", 3), SendOutcome::Sent { .. }));
        match modem.send("0905123456", "het han muc", 4) {
            SendOutcome::Failed { permanent: false, reason } => assert!(reason.contains("38"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.sent().len(), 2);
    }

    #[test]
    fn cms_errors_permanent_and_temporary() {
        let (_dir, sim, _events, modem) = setup();
        sim.with(|s| s.fail_sends.extend([28, 500]));
        match modem.send("0905123456", "so khong ton tai", 1) {
            SendOutcome::Failed { permanent: true, reason } => {
                assert!(reason.contains("+CMS ERROR: 28"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            modem.send("0905123456", "loi tam thoi", 2),
            SendOutcome::Failed { permanent: false, .. }
        ));
        assert!(matches!(modem.send("0905123456", "lan nay duoc", 3), SendOutcome::Sent { .. }));
        assert!(matches!(modem.send("12ab", "x", 4), SendOutcome::Failed { permanent: true, .. }));
        assert_eq!(modem.health().failed, 3);
    }

    #[test]
    fn a_wrong_pin_is_tried_once() {
        let dir = tempdir::Dir::new();
        let sim = Simulator::start_with(&dir.0.join("modem"), Pace::QUICK).expect("simulator");
        sim.with(|s| s.pin = Some("1234".into()));
        let events = Arc::new(Collect::default());
        let modem = Modem::start(ModemConfig { pin: Some("0000".into()), ..config(&sim) }, events.clone());
        wait("the PIN failure", || modem.health().last_error.is_some_and(|e| e.contains("PIN")));
        thread::sleep(Duration::from_millis(500));
        assert_eq!(sim.with(|s| s.log.iter().filter(|l| l.starts_with("AT+CPIN=")).count()), 1);
        assert_eq!(sim.with(|s| s.pin_attempts_left), 2, "the SIM still has attempts left");
        drop(modem);
        let modem = Modem::start(ModemConfig { pin: Some("1234".into()), ..config(&sim) }, events);
        wait("the right PIN", || modem.health().connected);
    }

    #[test]
    fn late_delivery_reports_still_match_their_message() {
        let (_dir, sim, events, modem) = setup();
        sim.with(|s| s.report_after = Some(Duration::from_millis(1500)));
        let SendOutcome::Sent { references: first } = modem.send("0905123456", "mot", 1) else {
            panic!("not sent")
        };
        let SendOutcome::Sent { references: second } = modem.send("0905123457", "hai", 2) else {
            panic!("not sent")
        };
        thread::sleep(Duration::from_millis(500));
        assert!(events.reports.lock().expect("lock").is_empty(), "not yet");
        wait("the late reports", || events.reports.lock().expect("lock").len() == 2);
        let reports = events.reports.lock().expect("lock").clone();
        let by_ref = |r: u8| reports.iter().find(|x| x.reference == r).map(|x| x.recipient.clone());
        assert_eq!(by_ref(first[0]).as_deref(), Some("0905123456"));
        assert_eq!(by_ref(second[0]).as_deref(), Some("0905123457"));
    }

    #[test]
    fn duplicate_deliveries_reach_the_box_twice_with_the_same_identity() {
        let (_dir, sim, events, _modem) = setup();
        sim.with(|s| s.duplicate = true);
        sim.receive("+84905111222", "T 37 H");
        wait("both copies", || events.parts.lock().expect("lock").len() == 2);
        let parts = events.parts.lock().expect("lock").clone();
        assert_eq!(
            (&parts[0].sender, parts[0].timestamp, &parts[0].text),
            (&parts[1].sender, parts[1].timestamp, &parts[1].text)
        );
    }
}
