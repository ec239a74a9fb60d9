//! The AT engine: one command at a time over a byte stream (the serial port, or anything `Read +
//! Write`), each with its own deadline, the response's information lines separated from unsolicited
//! result codes that arrive in between (those are queued for the caller), and the `> ` prompt of
//! `AT+CMGS` recognised although it ends no line. Blocking: it runs on the modem's own thread.

use std::{
    collections::VecDeque,
    io::{self, Read, Write},
    time::{Duration, Instant},
};

use crate::at::{self, Final, Line, Urc};

/// A command that did not end in `OK`.
#[derive(Debug, thiserror::Error)]
pub enum AtError {
    #[error("the modem did not answer {command} within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    #[error("{command} failed: ERROR")]
    Error { command: String },
    #[error("{command} failed: +CME ERROR: {code}")]
    Cme { command: String, code: at::ErrorCode },
    #[error("{command} failed: +CMS ERROR: {code}")]
    Cms { command: String, code: at::ErrorCode },
    #[error("the serial port failed")]
    Io(#[from] io::Error),
}

impl AtError {
    /// Whether the modem itself is in trouble (no answer, port gone) rather than the command refused.
    pub fn is_link_failure(&self) -> bool {
        matches!(self, AtError::Timeout { .. } | AtError::Io(_))
    }
}

/// An unsolicited event, with the PDU line that follows `+CDS` / `+CMT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub urc: Urc,
    pub pdu: Option<String>,
}

/// Lines in, commands out.
pub struct Engine<P> {
    port: P,
    buf: Vec<u8>,
    /// Unsolicited results seen while waiting for responses, oldest first.
    pub events: VecDeque<Event>,
    /// Lines that were neither ours nor understood (garbage on the line), for diagnostics.
    pub garbage: u64,
}

impl<P: Read + Write> Engine<P> {
    pub fn new(port: P) -> Engine<P> {
        Engine { port, buf: Vec::with_capacity(512), events: VecDeque::new(), garbage: 0 }
    }

    pub fn into_port(self) -> P {
        self.port
    }

    /// Reads one line (without CR LF) before `deadline`; the prompt `> ` counts as a line.
    fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, io::Error> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(Some(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned()));
            }
            let start = self.buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(self.buf.len());
            if self.buf[start..].starts_with(b"> ") || &self.buf[start..] == b">" {
                self.buf.clear();
                return Ok(Some("> ".to_owned()));
            }
            if self.buf.len() > 4096 {
                // A line this long is garbage: drop it rather than grow without bound.
                self.buf.clear();
                self.garbage += 1;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let mut chunk = [0u8; 256];
            match self.port.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the port closed")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Handles a line that is not part of a response: queue unsolicited results (reading the PDU line
    /// of `+CDS`/`+CMT`), count garbage.
    fn aside(&mut self, line: Line, deadline: Instant) -> Result<(), io::Error> {
        match line {
            Line::Unsolicited(urc) => {
                let pdu = match urc {
                    Urc::ReportFollows { .. } | Urc::MessageFollows { .. } => {
                        let until = deadline.max(Instant::now() + Duration::from_secs(2));
                        self.read_line(until)?
                    }
                    _ => None,
                };
                self.events.push_back(Event { urc, pdu });
            }
            Line::Info(_) => self.garbage += 1,
            _ => {}
        }
        Ok(())
    }

    /// Waits up to `wait` for unsolicited results (when no command is in progress).
    pub fn poll(&mut self, wait: Duration) -> Result<(), io::Error> {
        let deadline = Instant::now() + wait;
        while let Some(line) = self.read_line(deadline)? {
            let l = at::classify(&line, None);
            self.aside(l, deadline)?;
            if !self.buf.contains(&b'\n') {
                break;
            }
        }
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        self.port.write_all(bytes)?;
        self.port.flush()
    }

    /// Runs `command` (without `AT` prefix handling: pass it whole, e.g. `AT+CSQ`) and returns the
    /// information lines of its response. `prefix` is its response prefix (`+CSQ`), if any.
    pub fn command(
        &mut self,
        command: &str,
        prefix: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<String>, AtError> {
        self.write_all(format!("{command}\r").as_bytes())?;
        self.response(command, prefix, timeout)
    }

    fn response(
        &mut self,
        command: &str,
        prefix: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<String>, AtError> {
        let deadline = Instant::now() + timeout;
        let mut info = Vec::new();
        // The line after a `+CMGR:`/`+CMGL:` header is the PDU, whatever it looks like.
        let mut pdu_next = false;
        loop {
            let Some(line) = self.read_line(deadline)? else {
                return Err(AtError::Timeout { command: command.to_owned(), timeout });
            };
            if pdu_next && !line.trim().is_empty() {
                pdu_next = false;
                info.push(line.trim().to_owned());
                continue;
            }
            match at::classify(&line, prefix) {
                Line::Final(Final::Ok) => return Ok(info),
                Line::Final(Final::Error | Final::NoCarrier) => {
                    return Err(AtError::Error { command: command.to_owned() })
                }
                Line::Final(Final::CmeError(code)) => {
                    return Err(AtError::Cme { command: command.to_owned(), code })
                }
                Line::Final(Final::CmsError(code)) => {
                    return Err(AtError::Cms { command: command.to_owned(), code })
                }
                Line::Info(l) if prefix.is_some_and(|p| l.starts_with(p)) => {
                    pdu_next = matches!(prefix, Some("+CMGR" | "+CMGL"));
                    info.push(l);
                }
                Line::Info(l) if prefix.is_none() => info.push(l),
                Line::Prompt | Line::Noise => {}
                other => self.aside(other, deadline)?,
            }
        }
    }

    /// Sends one PDU with `AT+CMGS`: waits for the prompt, writes the PDU and Ctrl-Z, and returns the
    /// message reference the network gave.
    pub fn send_pdu(&mut self, hex: &str, tpdu_len: usize, timeout: Duration) -> Result<u8, AtError> {
        let command = format!("AT+CMGS={tpdu_len}");
        self.write_all(format!("{command}\r").as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(10).min(timeout);
        loop {
            let Some(line) = self.read_line(deadline)? else {
                // No prompt: cancel whatever the modem is waiting for.
                let _ = self.write_all(&[0x1B]);
                return Err(AtError::Timeout { command, timeout });
            };
            match at::classify(&line, Some("+CMGS")) {
                Line::Prompt => break,
                Line::Final(Final::Ok) => continue,
                Line::Final(Final::CmsError(code)) => return Err(AtError::Cms { command, code }),
                Line::Final(Final::CmeError(code)) => return Err(AtError::Cme { command, code }),
                Line::Final(_) => return Err(AtError::Error { command }),
                other => self.aside(other, deadline)?,
            }
        }
        self.write_all(format!("{hex}\u{1a}").as_bytes())?;
        let info = self.response(&command, Some("+CMGS"), timeout)?;
        Ok(info.iter().find_map(|l| at::message_reference(l)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted modem: what it answers to each write, in order.
    struct Script {
        input: VecDeque<u8>,
        answers: VecDeque<&'static str>,
        written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "nothing"));
            }
            let n = buf.len().min(self.input.len()).min(7); // odd chunking on purpose
            for b in buf.iter_mut().take(n) {
                *b = self.input.pop_front().unwrap_or(0);
            }
            Ok(n)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            if let Some(a) = self.answers.pop_front() {
                self.input.extend(a.as_bytes());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn engine(answers: &[&'static str]) -> Engine<Script> {
        Engine::new(Script {
            input: VecDeque::new(),
            answers: answers.iter().copied().collect(),
            written: Vec::new(),
        })
    }

    const T: Duration = Duration::from_millis(300);

    #[test]
    fn response_with_interleaved_unsolicited_results() {
        let mut e = engine(&["\r\n+CMTI: \"SM\",2\r\n+CSQ: 21,99\r\nRING\r\n\r\nOK\r\n"]);
        assert_eq!(e.command("AT+CSQ", Some("+CSQ"), T).expect("ok"), vec!["+CSQ: 21,99"]);
        let urcs: Vec<Urc> = e.events.iter().map(|ev| ev.urc.clone()).collect();
        assert_eq!(urcs, vec![Urc::NewMessage { memory: "SM".into(), index: 2 }, Urc::Ring]);
    }

    #[test]
    fn reads_the_pdu_after_cmgr_and_cds() {
        let mut e = engine(&["\r\n+CDS: 25\r\n07914889200000F1062A\r\n+CMGR: 0,,24\r\n0791AB\r\nOK\r\n"]);
        let info = e.command("AT+CMGR=1", Some("+CMGR"), T).expect("ok");
        assert_eq!(info, vec!["+CMGR: 0,,24", "0791AB"]);
        assert_eq!(
            e.events[0],
            Event { urc: Urc::ReportFollows { length: 25 }, pdu: Some("07914889200000F1062A".into()) }
        );
    }

    #[test]
    fn errors_timeouts_and_garbage() {
        let mut e = engine(&[
            "\r\n+CMS ERROR: 500\r\n",
            "\r\nxx\u{ff}garbage\r\nERROR\r\n",
            "",
            "\r\n+CME ERROR: SIM PIN required\r\n",
        ]);
        assert!(matches!(
            e.command("AT+CMGD=1", None, T),
            Err(AtError::Cms { code: at::ErrorCode::Number(500), .. })
        ));
        assert!(matches!(e.command("AT+X", Some("+X"), T), Err(AtError::Error { .. })));
        assert_eq!(e.garbage, 1);
        let err = e.command("AT", None, T).expect_err("hang");
        assert!(err.is_link_failure(), "{err}");
        assert!(matches!(e.command("AT+CPIN?", Some("+CPIN"), T), Err(AtError::Cme { .. })));
    }

    #[test]
    fn send_waits_for_the_prompt() {
        let mut e = engine(&["\r\n> ", "\r\n+CMGS: 42\r\n\r\nOK\r\n"]);
        assert_eq!(e.send_pdu("0011", 1, T).expect("sent"), 42);
        assert_eq!(String::from_utf8_lossy(&e.into_port().written), "AT+CMGS=1\r0011\u{1a}");
        let mut e = engine(&["\r\n+CMS ERROR: 304\r\n"]);
        assert!(matches!(e.send_pdu("00", 1, T), Err(AtError::Cms { code: at::ErrorCode::Number(304), .. })));
    }
}
