//! Lines a modem sends, classified (3GPP TS 27.005 and 27.007, V.250): final results that end a
//! command, unsolicited result codes that can arrive at any moment (even between a command's response
//! lines), the `> ` prompt of `AT+CMGS`, and the information lines of a response. Pure; never panics.
//!
//! Some lines are ambiguous on their own: `+CREG: 0,1` answers `AT+CREG?` while `+CREG: 1` is
//! unsolicited. [`classify`] therefore takes the prefix of the command in progress, if any: a line
//! carrying that prefix is part of the response; otherwise a line that looks unsolicited is one.

use serde::Serialize;

/// A final result code: the end of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Final {
    Ok,
    Error,
    /// `+CME ERROR: <n>` (TS 27.007 §9.2): equipment and SIM errors. Verbose text is kept when the
    /// modem sends words instead of a number.
    CmeError(ErrorCode),
    /// `+CMS ERROR: <n>` (TS 27.005 §3.2.5): message service errors.
    CmsError(ErrorCode),
    NoCarrier,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    Number(u16),
    Text(String),
}

impl ErrorCode {
    fn parse(s: &str) -> ErrorCode {
        let s = s.trim();
        s.parse().map(ErrorCode::Number).unwrap_or_else(|_| ErrorCode::Text(s.chars().take(80).collect()))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Number(n) => write!(f, "{n}"),
            ErrorCode::Text(t) => f.write_str(t),
        }
    }
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Urc {
    /// `+CMTI: "SM",3` — a message was stored at `index` of `memory`.
    NewMessage {
        memory: String,
        index: u32,
    },
    /// `+CDSI: "SR",2` — a delivery report was stored.
    NewReport {
        memory: String,
        index: u32,
    },
    /// `+CDS: <length>` — a delivery report follows on the next line as a PDU.
    ReportFollows {
        length: usize,
    },
    /// `+CMT: ,<length>` — a message routed directly follows as a PDU (we ask for storage instead, but
    /// a modem may still send it).
    MessageFollows {
        length: usize,
    },
    Ring,
    /// `+CREG: <stat>` / `+CEREG: <stat>` — registration changed.
    Registration {
        stat: u8,
    },
    /// Anything else that is clearly unsolicited (`^RSSI`, `+CIEV`, `^BOOT`, …), kept for the log.
    Other(String),
}

/// One line from the modem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Line {
    Final(Final),
    Unsolicited(Urc),
    /// `> ` after `AT+CMGS=<n>`: send the PDU.
    Prompt,
    /// A line of the current command's response.
    Info(String),
    /// Empty lines, echoes of our own commands: nothing to act on.
    Noise,
}

/// Classifies a line (without its CR LF). `pending` is the response prefix of the command in progress
/// (`+CSQ`, `+CMGR`, …) when there is one.
pub fn classify(line: &str, pending: Option<&str>) -> Line {
    let line = line.trim_matches(|c: char| c == '\r' || c == '\n' || c == '\0');
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Noise;
    }
    if trimmed == ">" || line.starts_with("> ") {
        return Line::Prompt;
    }
    match trimmed {
        "OK" => return Line::Final(Final::Ok),
        "ERROR" => return Line::Final(Final::Error),
        "NO CARRIER" => return Line::Final(Final::NoCarrier),
        "RING" => return Line::Unsolicited(Urc::Ring),
        _ => {}
    }
    if let Some(code) = trimmed.strip_prefix("+CME ERROR:") {
        return Line::Final(Final::CmeError(ErrorCode::parse(code)));
    }
    if let Some(code) = trimmed.strip_prefix("+CMS ERROR:") {
        return Line::Final(Final::CmsError(ErrorCode::parse(code)));
    }
    if trimmed.starts_with("AT") || trimmed.starts_with("at") {
        return Line::Noise; // an echo
    }
    if let Some(prefix) = pending {
        if trimmed.starts_with(prefix) && trimmed[prefix.len()..].starts_with(':') {
            return Line::Info(trimmed.to_owned());
        }
    }
    if let Some(urc) = unsolicited(trimmed) {
        return Line::Unsolicited(urc);
    }
    Line::Info(trimmed.to_owned())
}

fn fields(s: &str) -> Vec<String> {
    s.split(',').map(|f| f.trim().trim_matches('"').to_owned()).collect()
}

fn unsolicited(line: &str) -> Option<Urc> {
    let (head, rest) = line.split_once(':').map_or((line, ""), |(h, r)| (h, r.trim()));
    let f = fields(rest);
    let index = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
    match head {
        "+CMTI" => Some(Urc::NewMessage { memory: f.first()?.clone(), index: index(1)? }),
        "+CDSI" => Some(Urc::NewReport { memory: f.first()?.clone(), index: index(1)? }),
        "+CDS" if f.len() == 1 => Some(Urc::ReportFollows { length: f[0].parse().ok()? }),
        "+CMT" => Some(Urc::MessageFollows { length: f.last()?.parse().ok()? }),
        "+CREG" | "+CEREG" | "+CGREG" if f.len() != 2 => {
            // `+CREG: <stat>` or `+CREG: <stat>,<lac>,<ci>[,<act>]` (the unsolicited forms with n=1 or
            // n=2); `+CREG: <n>,<stat>` only ever answers a query, which `pending` caught above.
            Some(Urc::Registration { stat: f[0].parse().ok()? })
        }
        _ if head.starts_with('^') || head == "+CIEV" || head == "+CUSD" || head == "+CLIP" => {
            Some(Urc::Other(line.to_owned()))
        }
        _ => None,
    }
}

/// Parses `+CSQ: <rssi>,<ber>` into dBm (TS 27.007 §8.5): `None` for 99 (unknown).
pub fn signal_dbm(info: &str) -> Option<i32> {
    let rssi: i32 = info.strip_prefix("+CSQ:")?.split(',').next()?.trim().parse().ok()?;
    match rssi {
        0..=31 => Some(-113 + 2 * rssi),
        _ => None,
    }
}

/// The registration state of `+CREG: <n>,<stat>[,…]` (TS 27.007 §7.2).
pub fn registration(info: &str) -> Option<u8> {
    let rest = info.split_once(':')?.1;
    let f = fields(rest);
    f.get(1).or(f.first())?.parse().ok()
}

/// Whether a registration state means the modem can send: 1 (home) or 5 (roaming).
pub fn registered(stat: u8) -> bool {
    matches!(stat, 1 | 5)
}

/// `+CMGL: <index>,<stat>,[<alpha>],<length>` → the index (TS 27.005 §3.4.2, PDU mode).
pub fn list_index(info: &str) -> Option<u32> {
    info.strip_prefix("+CMGL:")?.split(',').next()?.trim().parse().ok()
}

/// `+CMGS: <mr>` → the message reference the network gave (TS 27.005 §3.5.1).
pub fn message_reference(info: &str) -> Option<u8> {
    info.strip_prefix("+CMGS:")?.split(',').next()?.trim().parse().ok()
}

/// `+COPS: <mode>,<format>,"<oper>"` → the operator name.
pub fn operator(info: &str) -> Option<String> {
    let f = fields(info.strip_prefix("+COPS:")?);
    f.get(2).filter(|o| !o.is_empty()).cloned()
}

/// `+CPIN: READY` / `SIM PIN` / `SIM PUK` → the SIM state text.
pub fn sim_state(info: &str) -> Option<String> {
    Some(info.strip_prefix("+CPIN:")?.trim().to_owned())
}

/// Whether a `+CMS ERROR` code is permanent for this message (retrying cannot help): TS 27.005 §3.2.5
/// codes below 128 are network causes from TS 24.011 (e.g. 1 unassigned number, 21 short message
/// transfer rejected, 28 unidentified subscriber), and 304 is an invalid PDU parameter.
pub fn cms_permanent(code: &ErrorCode) -> bool {
    matches!(code, ErrorCode::Number(n) if matches!(n, 1 | 8 | 10 | 21 | 28 | 29 | 30 | 50 | 96 | 97 | 304 | 325))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, pending: Option<&str>, expected: Line) {
        assert_eq!(classify(line, pending), expected, "{line:?} while {pending:?}");
    }

    #[test]
    fn finals() {
        check("OK\r", None, Line::Final(Final::Ok));
        check("ERROR", Some("+CSQ"), Line::Final(Final::Error));
        check("+CMS ERROR: 500", Some("+CMGS"), Line::Final(Final::CmsError(ErrorCode::Number(500))));
        check(
            "+CME ERROR: SIM PIN required",
            None,
            Line::Final(Final::CmeError(ErrorCode::Text("SIM PIN required".into()))),
        );
        check("+CME ERROR: 10", None, Line::Final(Final::CmeError(ErrorCode::Number(10))));
    }

    #[test]
    fn unsolicited_between_response_lines() {
        check(
            "+CMTI: \"SM\",3",
            Some("+CSQ"),
            Line::Unsolicited(Urc::NewMessage { memory: "SM".into(), index: 3 }),
        );
        check("+CDSI: \"SR\",12", None, Line::Unsolicited(Urc::NewReport { memory: "SR".into(), index: 12 }));
        check("+CDS: 25", None, Line::Unsolicited(Urc::ReportFollows { length: 25 }));
        check("+CMT: ,24", None, Line::Unsolicited(Urc::MessageFollows { length: 24 }));
        check("RING", Some("+CMGR"), Line::Unsolicited(Urc::Ring));
        check("^RSSI: 17", Some("+CMGS"), Line::Unsolicited(Urc::Other("^RSSI: 17".into())));
        check("+CSQ: 20,99", Some("+CSQ"), Line::Info("+CSQ: 20,99".into()));
    }

    #[test]
    fn registration_is_ambiguous_without_context() {
        check("+CREG: 0,1", Some("+CREG"), Line::Info("+CREG: 0,1".into()));
        check("+CREG: 5", None, Line::Unsolicited(Urc::Registration { stat: 5 }));
        check("+CREG: 1,\"00C3\",\"0010\"", None, Line::Unsolicited(Urc::Registration { stat: 1 }));
        assert_eq!(registration("+CREG: 0,5"), Some(5));
        assert_eq!(registration("+CREG: 2"), Some(2));
    }

    #[test]
    fn prompt_echo_noise_and_garbage() {
        check("> ", Some("+CMGS"), Line::Prompt);
        check("AT+CSQ", Some("+CSQ"), Line::Noise);
        check("", None, Line::Noise);
        check("\u{0}\u{0}", None, Line::Noise);
        check("ÿ¾garbage\u{7f}", None, Line::Info("ÿ¾garbage\u{7f}".into()));
        check("+CMTI: \"SM\",notanumber", None, Line::Info("+CMTI: \"SM\",notanumber".into()));
        check("+CDS: x", None, Line::Info("+CDS: x".into()));
    }

    #[test]
    fn helpers() {
        assert_eq!(signal_dbm("+CSQ: 20,99"), Some(-73));
        assert_eq!(signal_dbm("+CSQ: 99,99"), None);
        assert_eq!(list_index("+CMGL: 4,0,,24"), Some(4));
        assert_eq!(message_reference("+CMGS: 42"), Some(42));
        assert_eq!(operator("+COPS: 0,0,\"Viettel\",7").as_deref(), Some("Viettel"));
        assert_eq!(sim_state("+CPIN: READY").as_deref(), Some("READY"));
        assert!(cms_permanent(&ErrorCode::Number(28)));
        assert!(!cms_permanent(&ErrorCode::Number(500)));
    }
}
