//! A GSM modem simulator on a pseudo-terminal, so the driver's real `serialport` path is what tests
//! exercise. It answers the AT dialogue the driver uses (TS 27.005 PDU mode, TS 27.007), keeps a SIM
//! message store, sends delivery reports, and misbehaves on demand: hang, answer garbage, refuse sends
//! with `+CMS ERROR`, vanish (as a USB modem unplugged) and return, store a message twice, report late,
//! lose the network's registration, and refuse sends past an operator's daily cap.
//!
//! It keeps a real modem's pace: the network takes 3 to 6 s to accept each part sent with
//! `AT+CMGS` (measured GSM modems send 12–24 messages a minute: gammu's issues #302 and #419), and
//! the modem answers nothing else meanwhile. Tests that are not about the pace say so and use
//! [`Pace::QUICK`].
//!
//! The port is reached through a stable path (a symlink the simulator re-points when it returns), as
//! udev's `/dev/serial/by-id/…` names are for a real modem.

use std::{
    collections::{BTreeMap, VecDeque},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use chrono::{FixedOffset, Offset, Utc};
use serialport::{SerialPort, TTYPort};

use crate::pdu::{self, Decoded};

/// A message the simulated network accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub reference: u8,
    pub to: String,
    pub text: String,
    pub concat: Option<pdu::Concat>,
    /// When the part reached the modem (`AT+CMGS` and its PDU); the network accepted it one
    /// [`Pace`] later.
    pub handed_at: Instant,
}

/// How long the simulated network takes to accept one part: uniformly between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub part_min: Duration,
    pub part_max: Duration,
}

impl Pace {
    /// A GSM modem's pace: 3 to 6 s a part.
    pub const REAL: Pace = Pace { part_min: Duration::from_secs(3), part_max: Duration::from_secs(6) };
    /// For tests about something else than the pace: 20 ms a part.
    pub const QUICK: Pace = Pace { part_min: Duration::from_millis(20), part_max: Duration::from_millis(20) };

    /// `min..max` seconds a part (the box's `[modem] simulator_part_seconds`).
    pub fn seconds(min: f64, max: f64) -> Pace {
        Pace { part_min: Duration::from_secs_f64(min), part_max: Duration::from_secs_f64(max.max(min)) }
    }

    /// One part's time, `spread` (0..1) of the way from the shortest to the longest.
    fn part(&self, spread: f64) -> Duration {
        self.part_min + (self.part_max.saturating_sub(self.part_min)).mul_f64(spread.clamp(0.0, 1.0))
    }
}

/// What the simulator is asked to do, shared with the test.
#[derive(Debug)]
pub struct SimState {
    /// How long each part takes to send.
    pub pace: Pace,
    /// Registered with the network; while not, sends are refused (`+CMS ERROR: 331`, no network
    /// service) and `AT+CREG?` says it is searching.
    pub registered: bool,
    /// The operator's cap on messages a SIM may send a day (parts); past it, sends are refused with
    /// `+CMS ERROR: 38` (network out of order) until the next day.
    pub daily_cap: Option<u32>,
    /// Parts sent on `sent_day` (the simulator's UTC day).
    pub sent_today: u32,
    sent_day: Option<chrono::NaiveDate>,
    /// A part in flight: when the network answers, the answer, and what it accepted (recorded as
    /// sent only then: a modem unplugged or hung meanwhile sent nothing).
    in_flight: Option<(Instant, String, Option<Accepted>)>,
    /// The SIM's message store: index → PDU.
    pub stored: BTreeMap<u32, String>,
    pub sent: Vec<SentMessage>,
    /// Stop answering anything (the modem's firmware hung).
    pub hang: bool,
    /// Answer each command with a line of garbage first.
    pub garbage: bool,
    /// Refuse the next sends with these `+CMS ERROR` codes, one per send.
    pub fail_sends: VecDeque<u16>,
    /// Store each received message twice (some modems do).
    pub duplicate: bool,
    /// Delay before a delivery report; `None` sends none.
    pub report_after: Option<Duration>,
    /// The SIM PIN, if the SIM asks for one, and whether it was entered.
    pub pin: Option<String>,
    pub pin_entered: bool,
    pub pin_attempts_left: u8,
    /// Commands received, in order (for assertions on the dialogue).
    pub log: Vec<String>,
    /// Where delivery reports go (`AT+CNMI`'s `<ds>`): 1 shows them as `+CDS`, 2 stores them and
    /// announces them with `+CDSI`.
    pub report_routing: u8,
    next_index: u32,
    next_mr: u8,
    next_ref: u8,
    reports: Vec<(Instant, String)>,
    notify: VecDeque<String>,
}

impl Default for SimState {
    fn default() -> Self {
        SimState {
            pace: Pace::REAL,
            registered: true,
            daily_cap: None,
            sent_today: 0,
            sent_day: None,
            in_flight: None,
            stored: BTreeMap::new(),
            sent: Vec::new(),
            hang: false,
            garbage: false,
            fail_sends: VecDeque::new(),
            duplicate: false,
            report_after: Some(Duration::from_millis(50)),
            pin: None,
            pin_entered: false,
            pin_attempts_left: 3,
            log: Vec::new(),
            report_routing: 1,
            next_index: 1,
            next_mr: 1,
            next_ref: 1,
            reports: Vec::new(),
            notify: VecDeque::new(),
        }
    }
}

/// A running simulated modem.
pub struct Simulator {
    pub state: Arc<Mutex<SimState>>,
    link: PathBuf,
    present: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts a modem reachable at `link` (a symlink to its pseudo-terminal), at a real modem's pace.
    pub fn start(link: &Path) -> std::io::Result<Simulator> {
        Simulator::start_with(link, Pace::REAL)
    }

    /// [`Simulator::start`] at `pace`.
    pub fn start_with(link: &Path, pace: Pace) -> std::io::Result<Simulator> {
        let state = Arc::new(Mutex::new(SimState { pace, ..SimState::default() }));
        let mut sim = Simulator {
            state,
            link: link.to_owned(),
            present: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        sim.plug_in()?;
        Ok(sim)
    }

    /// The path the driver opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    fn plug_in(&mut self) -> std::io::Result<()> {
        let (opened, slave) = TTYPort::pair().map_err(std::io::Error::other)?;
        let name = slave.name().ok_or_else(|| std::io::Error::other("pty without a name"))?;
        drop(slave);
        // pair() opens the master without close-on-exec: a process started meanwhile (the box under
        // test) would inherit it and keep the "modem" plugged in after an unplug. Keep a close-on-exec
        // duplicate only.
        let master = opened.try_clone_native().map_err(std::io::Error::other)?;
        drop(opened);
        let tmp = self.link.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp)?;
        std::fs::rename(&tmp, &self.link)?;
        self.present.store(true, Ordering::SeqCst);
        let (state, present, stop) = (self.state.clone(), self.present.clone(), self.stop.clone());
        self.thread = Some(thread::spawn(move || run(master, &state, &present, &stop)));
        Ok(())
    }

    /// Unplugs the modem: the port disappears until [`Simulator::replug`].
    pub fn unplug(&mut self) {
        self.present.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.link);
    }

    /// Plugs the modem back in (a new pseudo-terminal behind the same path).
    pub fn replug(&mut self) -> std::io::Result<()> {
        self.plug_in()
    }

    /// A message arrives from `from`: stored on the SIM (as several parts if long) and announced with
    /// `+CMTI` (unless the driver is not there to hear it).
    pub fn receive(&self, from: &str, text: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tz = FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| Utc.fix());
        let at = Utc::now().with_timezone(&tz);
        let reference = s.next_ref;
        s.next_ref = s.next_ref.wrapping_add(1);
        let parts = pdu::encode_deliver(from, text, at, reference).unwrap_or_default();
        let copies = if s.duplicate { 2 } else { 1 };
        for p in parts {
            for _ in 0..copies {
                let index = s.next_index;
                s.next_index += 1;
                s.stored.insert(index, p.clone());
                s.notify.push_back(format!("\r\n+CMTI: \"SM\",{index}\r\n"));
            }
        }
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).sent.clone()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.unplug();
    }
}

fn run(mut port: TTYPort, state: &Mutex<SimState>, present: &AtomicBool, stop: &AtomicBool) {
    let _ = port.set_timeout(Duration::from_millis(20));
    let mut input: Vec<u8> = Vec::new();
    let mut echo = true;
    let mut pdu_len: Option<usize> = None;
    while present.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
        let mut buf = [0u8; 512];
        match port.read(&mut buf) {
            Ok(n) if n > 0 => input.extend_from_slice(&buf[..n]),
            _ => {}
        }
        let mut out = String::new();
        {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            if s.hang {
                input.clear();
                continue;
            }
            while let Some(n) = s.notify.pop_front() {
                out.push_str(&n);
            }
            // The network has not answered the part in flight: the modem answers nothing else.
            if let Some((at, answer, accepted)) = s.in_flight.take() {
                if at > Instant::now() {
                    s.in_flight = Some((at, answer, accepted));
                } else {
                    if let Some(accepted) = accepted {
                        record(&mut s, accepted);
                    }
                    out.push_str(&answer);
                }
            }
            let now = Instant::now();
            let due: Vec<String> =
                s.reports.iter().filter(|(t, _)| *t <= now).map(|(_, r)| r.clone()).collect();
            s.reports.retain(|(t, _)| *t > now);
            for r in due {
                if s.report_routing == 2 {
                    let index = s.next_index;
                    s.next_index += 1;
                    s.stored.insert(index, r);
                    out.push_str(&format!("\r\n+CDSI: \"SM\",{index}\r\n"));
                } else {
                    out.push_str(&format!("\r\n+CDS: {}\r\n{r}\r\n", r.len() / 2 - 1));
                }
            }
            loop {
                if s.in_flight.is_some() {
                    break;
                }
                if let Some(len) = pdu_len {
                    // Collecting a PDU for AT+CMGS until Ctrl-Z (ESC cancels).
                    if let Some(pos) = input.iter().position(|b| *b == 0x1A || *b == 0x1B) {
                        let cancelled = input[pos] == 0x1B;
                        let hex: String = String::from_utf8_lossy(&input[..pos]).trim().to_owned();
                        input.drain(..=pos);
                        pdu_len = None;
                        if cancelled {
                            out.push_str("\r\nOK\r\n");
                        } else {
                            let (answer, accepted) = accept_pdu(&mut s, &hex, len);
                            let spread = f64::from(Utc::now().timestamp_subsec_nanos() % 1000) / 999.0;
                            s.in_flight = Some((Instant::now() + s.pace.part(spread), answer, accepted));
                        }
                        continue;
                    }
                    break;
                }
                let Some(pos) = input.iter().position(|b| *b == b'\r') else { break };
                let line: String = String::from_utf8_lossy(&input[..pos]).trim().to_owned();
                input.drain(..=pos);
                if line.is_empty() {
                    continue;
                }
                if echo {
                    out.push_str(&line);
                    out.push('\r');
                }
                if s.garbage {
                    out.push_str("\r\n\u{ff}\u{fe}#~garbage~\r\n");
                }
                s.log.push(line.clone());
                let (answer, prompt) = command(&mut s, &line, &mut echo);
                out.push_str(&answer);
                pdu_len = prompt;
            }
        }
        if !out.is_empty() {
            let _ = port.write_all(out.as_bytes());
            let _ = port.flush();
        }
    }
}

const OK: &str = "\r\nOK\r\n";

fn command(s: &mut SimState, line: &str, echo: &mut bool) -> (String, Option<usize>) {
    let upper = line.to_ascii_uppercase();
    let locked = s.pin.is_some() && !s.pin_entered;
    let needs_sim = ["AT+CMG", "AT+CNMI", "AT+CSQ", "AT+COPS", "AT+CREG", "AT+CEREG"]
        .iter()
        .any(|p| upper.starts_with(p));
    if locked && needs_sim {
        return ("\r\n+CME ERROR: 11\r\n".into(), None); // SIM PIN required
    }
    let answer = match upper.as_str() {
        "AT" | "ATZ" | "AT+CMGF=0" | "AT+CMEE=1" | "AT+CMEE=2" => OK.into(),
        "ATE0" => {
            *echo = false;
            OK.into()
        }
        "ATE1" => {
            *echo = true;
            OK.into()
        }
        "AT+CPIN?" => match (&s.pin, s.pin_entered, s.pin_attempts_left) {
            (_, _, 0) => "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n".into(),
            (Some(_), false, _) => "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".into(),
            _ => "\r\n+CPIN: READY\r\n\r\nOK\r\n".into(),
        },
        "AT+CREG?" | "AT+CEREG?" => {
            let stat = if s.registered { 1 } else { 2 };
            format!("\r\n{}: 0,{stat}\r\n\r\nOK\r\n", &upper[2..upper.len() - 1])
        }
        "AT+CSQ" => "\r\n+CSQ: 20,99\r\n\r\nOK\r\n".into(),
        "AT+COPS?" => "\r\n+COPS: 0,0,\"Viettel\",7\r\n\r\nOK\r\n".into(),
        u if u.starts_with("AT+CNMI=") => {
            s.report_routing = u[8..].split(',').nth(3).and_then(|d| d.trim().parse().ok()).unwrap_or(0);
            OK.into()
        }
        u if u.starts_with("AT+CPMS") || u.starts_with("AT+CREG=") => OK.into(),
        u if u.starts_with("AT+CPIN=") => {
            let given = line[8..].trim_matches('"');
            if s.pin.as_deref() == Some(given) && s.pin_attempts_left > 0 {
                s.pin_entered = true;
                s.pin_attempts_left = 3;
                OK.into()
            } else {
                s.pin_attempts_left = s.pin_attempts_left.saturating_sub(1);
                "\r\n+CME ERROR: 16\r\n".into() // incorrect password
            }
        }
        "AT+CMGL=4" => {
            let mut out = String::new();
            for (i, p) in &s.stored {
                out.push_str(&format!("\r\n+CMGL: {i},0,,{}\r\n{p}", p.len() / 2 - 1));
            }
            out.push_str("\r\n\r\nOK\r\n");
            out
        }
        u if u.starts_with("AT+CMGR=") => match u[8..].parse::<u32>().ok().and_then(|i| s.stored.get(&i)) {
            Some(p) => format!("\r\n+CMGR: 0,,{}\r\n{p}\r\n\r\nOK\r\n", p.len() / 2 - 1),
            None => "\r\n+CMS ERROR: 321\r\n".into(), // invalid memory index
        },
        u if u.starts_with("AT+CMGD=") => {
            let index = u[8..].split(',').next().and_then(|i| i.parse::<u32>().ok());
            match index {
                Some(i) => {
                    s.stored.remove(&i);
                    OK.into()
                }
                None => "\r\n+CMS ERROR: 321\r\n".into(),
            }
        }
        u if u.starts_with("AT+CMGS=") => match u[8..].parse::<usize>() {
            Ok(len) if (1..=200).contains(&len) => return ("\r\n> ".into(), Some(len)),
            _ => "\r\n+CMS ERROR: 304\r\n".into(),
        },
        _ => "\r\nERROR\r\n".into(),
    };
    (answer, None)
}

/// A part the network accepted, recorded when its answer leaves the modem.
#[derive(Debug)]
struct Accepted {
    message: SentMessage,
    report: bool,
}

fn record(s: &mut SimState, accepted: Accepted) {
    let Accepted { message, report } = accepted;
    if report {
        if let Some(delay) = s.report_after {
            let now = Utc::now().fixed_offset();
            if let Ok(r) = pdu::encode_status_report(message.reference, &message.to, now, now, 0x00) {
                s.reports.push((Instant::now() + delay, r));
            }
        }
    }
    s.sent_today += 1;
    s.sent.push(message);
}

/// A PDU sent with AT+CMGS: checked like a network would; the answer, and what was accepted.
fn accept_pdu(s: &mut SimState, hex: &str, len: usize) -> (String, Option<Accepted>) {
    let refused = |code: u16| (format!("\r\n+CMS ERROR: {code}\r\n"), None);
    if let Some(code) = s.fail_sends.pop_front() {
        return refused(code);
    }
    if !s.registered {
        return refused(331);
    }
    let today = Utc::now().date_naive();
    if s.sent_day != Some(today) {
        (s.sent_day, s.sent_today) = (Some(today), 0);
    }
    if s.daily_cap.is_some_and(|cap| s.sent_today >= cap) {
        return refused(38);
    }
    let Ok(bytes) = pdu::from_hex(hex) else { return refused(304) };
    if bytes.len() != len + 1 {
        return refused(304);
    }
    match pdu::decode(hex) {
        Ok(Decoded::Submit(m)) => {
            let reference = s.next_mr;
            s.next_mr = s.next_mr.wrapping_add(1);
            let message = SentMessage {
                reference,
                to: m.to,
                text: m.text,
                concat: m.concat,
                handed_at: Instant::now(),
            };
            (
                format!("\r\n+CMGS: {reference}\r\n\r\nOK\r\n"),
                Some(Accepted { message, report: m.status_report }),
            )
        }
        _ => refused(304),
    }
}
