//! The SMS PDU codec (3GPP TS 23.040 §9, TS 23.038), pure: text and numbers in, hex PDUs out, and
//! back. No IO, no clock, never panics on input: every malformed PDU is a [`PduError`].
//!
//! - [`encode_submit`]: SMS-SUBMIT (§9.2.2.2) for `AT+CMGS` in PDU mode — GSM 7-bit when every character
//!   has a GSM form (extension characters as escape pairs, never split across parts), UCS-2 otherwise
//!   (every Vietnamese letter); concatenated with an 8-bit-reference header (§9.2.3.24.1) when one part
//!   is not enough; relative validity period (§9.2.3.12.1); status report requested.
//! - [`decode`]: SMS-DELIVER (§9.2.2.1), SMS-STATUS-REPORT (§9.2.2.3) and SMS-SUBMIT, as `+CMGR`,
//!   `+CMGL` and `+CDS` return them (with the service-centre address in front).

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use serde::Serialize;

use crate::gsm7;

/// A PDU that cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("not hexadecimal: {0}")]
    Hex(String),
    #[error("the PDU ends inside its {0}")]
    Truncated(&'static str),
    #[error("the {field} length {value} is impossible here")]
    BadLength { field: &'static str, value: usize },
    #[error("unknown character set (data coding scheme 0x{0:02X})")]
    UnknownCharset(u8),
    #[error("compressed user data (data coding scheme 0x{0:02X}) is not supported")]
    Compressed(u8),
    #[error("the user data header is truncated or malformed")]
    BadHeader,
    #[error("message type {0} is not SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT")]
    UnsupportedType(u8),
    #[error("not a phone number: {0:?}")]
    BadNumber(String),
    #[error("the text needs {0} parts; at most 255 can be concatenated")]
    Overlong(usize),
}

/// How the text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    Gsm7,
    EightBit,
    Ucs2,
}

/// One part of a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// An SMS-SUBMIT ready for `AT+CMGS=<tpdu_len>` followed by `hex` and Ctrl-Z.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitPdu {
    /// The whole PDU in hex, starting with `00` (use the SIM's service centre).
    pub hex: String,
    /// Octets after the service-centre address: the number `AT+CMGS=` takes.
    pub tpdu_len: usize,
}

/// Options of an outgoing message.
#[derive(Debug, Clone, Copy)]
pub struct SubmitOptions {
    /// The concatenation reference shared by this message's parts.
    pub reference: u8,
    /// How long the network keeps trying, in minutes (rounded up to a representable period).
    pub validity_minutes: u32,
    /// Ask for a delivery report.
    pub status_report: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions { reference: 0, validity_minutes: 24 * 60, status_report: true }
    }
}

/// A received message part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deliver {
    pub smsc: String,
    pub sender: String,
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub alphabet: Alphabet,
    pub concat: Option<Concat>,
    pub text: String,
}

/// A delivery report (TS 23.040 §9.2.2.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub smsc: String,
    /// TP-MR of the message it reports on.
    pub reference: u8,
    pub recipient: String,
    pub submitted: Option<DateTime<FixedOffset>>,
    pub discharged: Option<DateTime<FixedOffset>>,
    /// TP-ST (§9.2.3.15).
    pub status: u8,
    pub outcome: Outcome,
}

/// What a TP-ST says (TS 23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 0x00–0x1F: the transaction is complete (0x00: received by the recipient).
    Delivered,
    /// 0x20–0x3F: temporary error, the service centre is still trying.
    Pending,
    /// 0x40–0x5F and 0x60–0x7F: permanent error, or temporary error the centre has stopped trying.
    Failed,
}

/// A submitted message, as decoded back (for diagnostics and tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submitted {
    pub to: String,
    pub reference: u8,
    pub alphabet: Alphabet,
    pub concat: Option<Concat>,
    pub validity_minutes: Option<u32>,
    pub status_report: bool,
    pub text: String,
}

/// A decoded PDU.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decoded {
    Deliver(Deliver),
    StatusReport(StatusReport),
    Submit(Submitted),
}

// ----- hex -----

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

pub fn from_hex(hex: &str) -> Result<Vec<u8>, PduError> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = hex.chars().take(40).collect();
        return Err(PduError::Hex(shown));
    }
    Ok((0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect())
}

// ----- splitting text into parts -----

/// Septets (GSM) or UTF-16BE octets (UCS-2) of each part.
fn split(text: &str) -> Result<(Alphabet, Vec<Vec<u8>>), PduError> {
    if gsm7::is_gsm7(text) {
        let chars: Vec<gsm7::Septets> = text.chars().filter_map(gsm7::encode_char).collect();
        let total: usize = chars.iter().map(|c| c.len()).sum();
        let limit = if total <= 160 { 160 } else { 153 };
        let mut parts = vec![Vec::new()];
        for c in chars {
            let last = parts.last_mut().map_or(0, |p| p.len());
            if last + c.len() > limit {
                parts.push(Vec::new());
            }
            if let Some(p) = parts.last_mut() {
                c.push_to(p);
            }
        }
        Ok((Alphabet::Gsm7, parts))
    } else {
        let units: usize = text.chars().map(char::len_utf16).sum();
        let limit = if units <= 70 { 70 } else { 67 };
        let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
        for c in text.chars() {
            let mut buf = [0u16; 2];
            let encoded = c.encode_utf16(&mut buf);
            let last = parts.last().map_or(0, |p| p.len() / 2);
            if last + encoded.len() > limit {
                parts.push(Vec::new());
            }
            if let Some(p) = parts.last_mut() {
                for u in encoded.iter() {
                    p.extend(u.to_be_bytes());
                }
            }
        }
        Ok((Alphabet::Ucs2, parts))
    }
}

/// How many parts `text` takes, and in which alphabet.
pub fn parts_needed(text: &str) -> (Alphabet, usize) {
    split(text).map(|(a, p)| (a, p.len())).unwrap_or((Alphabet::Ucs2, 0))
}

// ----- addresses -----

fn encode_number(number: &str) -> Result<Vec<u8>, PduError> {
    let trimmed: String = number.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let (toa, digits) = match trimmed.strip_prefix('+') {
        Some(d) => (0x91u8, d),
        None => (0x81u8, trimmed.as_str()),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PduError::BadNumber(number.to_owned()));
    }
    let mut out = vec![digits.len() as u8, toa];
    out.extend(semi_octets(digits));
    Ok(out)
}

fn semi_octets(digits: &str) -> Vec<u8> {
    let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    d.chunks(2).map(|c| c[0] | (c.get(1).copied().unwrap_or(0xF) << 4)).collect()
}

fn read_semi_octets(bytes: &[u8], digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    for b in bytes {
        for nibble in [b & 0x0F, b >> 4] {
            if out.len() >= digits {
                break;
            }
            out.push(match nibble {
                0..=9 => char::from(b'0' + nibble),
                0xA => '*',
                0xB => '#',
                0xC => 'a',
                0xD => 'b',
                0xE => 'c',
                _ => continue,
            });
        }
    }
    out
}

/// A reader over PDU octets that reports what it was reading when they ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self, what: &'static str) -> Result<u8, PduError> {
        let b = *self.bytes.get(self.pos).ok_or(PduError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PduError> {
        let end = self.pos.checked_add(n).ok_or(PduError::Truncated(what))?;
        let s = self.bytes.get(self.pos..end).ok_or(PduError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    /// An address field (§9.1.2.5): length in digits, type, semi-octets.
    fn address(&mut self, what: &'static str) -> Result<String, PduError> {
        let len = usize::from(self.u8(what)?);
        if len > 20 {
            return Err(PduError::BadLength { field: what, value: len });
        }
        let toa = self.u8(what)?;
        let body = self.take(len.div_ceil(2), what)?;
        Ok(match (toa >> 4) & 0x07 {
            0b101 => {
                // Alphanumeric (a sender name), GSM 7-bit packed.
                let septets = gsm7::unpack(body, 0, len * 4 / 7).unwrap_or_default();
                gsm7::decode(&septets)
            }
            0b001 => format!("+{}", read_semi_octets(body, len)),
            _ => read_semi_octets(body, len),
        })
    }

    /// The service-centre address (§9.1.2.5 as used by `+CMGR`): length in octets, type, semi-octets.
    fn smsc(&mut self) -> Result<String, PduError> {
        let len = usize::from(self.u8("service-centre address")?);
        if len == 0 {
            return Ok(String::new());
        }
        if len > 12 {
            return Err(PduError::BadLength { field: "service-centre address", value: len });
        }
        let toa = self.u8("service-centre address")?;
        let body = self.take(len - 1, "service-centre address")?;
        let digits = read_semi_octets(body, body.len() * 2);
        Ok(if (toa >> 4) & 0x07 == 0b001 { format!("+{digits}") } else { digits })
    }

    /// A time stamp (§9.2.3.11).
    fn timestamp(&mut self, what: &'static str) -> Result<Option<DateTime<FixedOffset>>, PduError> {
        let b = self.take(7, what)?;
        let d = |x: u8| u32::from(x & 0x0F) * 10 + u32::from(x >> 4);
        let tz_quarters = i32::from(b[6] & 0x07) * 10 + i32::from(b[6] >> 4);
        let sign = if b[6] & 0x08 != 0 { -1 } else { 1 };
        let offset = FixedOffset::east_opt(sign * tz_quarters * 15 * 60);
        // Two-digit years: 90–99 are the 1990s (GSM's first decade), the rest this century.
        let yy = d(b[0]) as i32;
        let year = if yy >= 90 { 1900 + yy } else { 2000 + yy };
        let date = NaiveDate::from_ymd_opt(year, d(b[1]), d(b[2]))
            .and_then(|date| date.and_hms_opt(d(b[3]), d(b[4]), d(b[5])));
        Ok(match (date, offset) {
            (Some(dt), Some(off)) => off.from_local_datetime(&dt).single(),
            _ => None,
        })
    }
}

// ----- encoding -----

/// The relative validity period octet for at least `minutes` (§9.2.3.12.1).
pub fn validity_octet(minutes: u32) -> u8 {
    let m = minutes.max(5);
    if m <= 12 * 60 {
        (m.div_ceil(5) - 1) as u8
    } else if m <= 24 * 60 {
        (143 + (m - 12 * 60).div_ceil(30)) as u8
    } else if m <= 30 * 24 * 60 {
        (166 + m.div_ceil(24 * 60)).min(196) as u8
    } else {
        (192 + m.div_ceil(7 * 24 * 60)).min(255) as u8
    }
}

/// The period a relative validity octet stands for, in minutes (§9.2.3.12.1).
pub fn validity_minutes(vp: u8) -> u32 {
    let v = u32::from(vp);
    match v {
        0..=143 => (v + 1) * 5,
        144..=167 => 12 * 60 + (v - 143) * 30,
        168..=196 => (v - 166) * 24 * 60,
        _ => (v - 192) * 7 * 24 * 60,
    }
}

/// Encodes `text` to `to` as one or more SMS-SUBMIT PDUs.
pub fn encode_submit(to: &str, text: &str, options: SubmitOptions) -> Result<Vec<SubmitPdu>, PduError> {
    let address = encode_number(to)?;
    let (alphabet, parts) = split(text)?;
    if parts.len() > 255 {
        return Err(PduError::Overlong(parts.len()));
    }
    let total = parts.len() as u8;
    let mut out = Vec::with_capacity(parts.len());
    for (i, payload) in parts.iter().enumerate() {
        let header = (total > 1).then(|| [0x05, 0x00, 0x03, options.reference, total, i as u8 + 1]);
        let mut fo = 0x01 | 0x10; // SMS-SUBMIT, relative validity period
        if options.status_report {
            fo |= 0x20;
        }
        if header.is_some() {
            fo |= 0x40;
        }
        let mut tpdu = vec![fo, 0x00];
        tpdu.extend(&address);
        tpdu.push(0x00); // TP-PID
        tpdu.push(if alphabet == Alphabet::Gsm7 { 0x00 } else { 0x08 });
        tpdu.push(validity_octet(options.validity_minutes));
        let udh: &[u8] = header.as_ref().map_or(&[], |h| &h[..]);
        push_user_data(&mut tpdu, alphabet, udh, payload);
        let mut pdu = vec![0x00];
        pdu.extend(&tpdu);
        out.push(SubmitPdu { hex: to_hex(&pdu), tpdu_len: tpdu.len() });
    }
    Ok(out)
}

/// Appends TP-UDL and TP-UD: the header (if any), fill bits, and the text.
fn push_user_data(tpdu: &mut Vec<u8>, alphabet: Alphabet, udh: &[u8], payload: &[u8]) {
    match alphabet {
        Alphabet::Gsm7 => {
            let header_bits = udh.len() * 8;
            let fill = (7 - header_bits % 7) % 7;
            let header_septets = (header_bits + fill) / 7;
            tpdu.push((header_septets + payload.len()) as u8);
            tpdu.extend(udh);
            tpdu.extend(gsm7::pack(payload, fill as u32));
        }
        _ => {
            tpdu.push((udh.len() + payload.len()) as u8);
            tpdu.extend(udh);
            tpdu.extend(payload);
        }
    }
}

fn push_timestamp(out: &mut Vec<u8>, t: DateTime<FixedOffset>) {
    use chrono::{Datelike, Timelike};
    let swap = |v: u32| (((v % 10) << 4) | ((v / 10) % 10)) as u8;
    out.extend([
        swap(t.year().rem_euclid(100) as u32),
        swap(t.month()),
        swap(t.day()),
        swap(t.hour()),
        swap(t.minute()),
        swap(t.second()),
    ]);
    let quarters = t.offset().local_minus_utc() / 900;
    let tz = swap(quarters.unsigned_abs());
    out.push(if quarters < 0 { tz | 0x08 } else { tz });
}

/// Encodes SMS-DELIVER PDUs (as a modem would show them after `+CMGR`, with an empty service-centre
/// address): what the modem simulator stores for a received message, split and concatenated as a
/// sending phone would.
pub fn encode_deliver(
    from: &str,
    text: &str,
    at: DateTime<FixedOffset>,
    reference: u8,
) -> Result<Vec<String>, PduError> {
    let address = encode_number(from)?;
    let (alphabet, parts) = split(text)?;
    if parts.len() > 255 {
        return Err(PduError::Overlong(parts.len()));
    }
    let total = parts.len() as u8;
    Ok(parts
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let header = (total > 1).then(|| [0x05, 0x00, 0x03, reference, total, i as u8 + 1]);
            let mut pdu = vec![0x00, if header.is_some() { 0x44 } else { 0x04 }];
            pdu.extend(&address);
            pdu.push(0x00);
            pdu.push(if alphabet == Alphabet::Gsm7 { 0x00 } else { 0x08 });
            push_timestamp(&mut pdu, at);
            push_user_data(&mut pdu, alphabet, header.as_ref().map_or(&[], |h| &h[..]), payload);
            to_hex(&pdu)
        })
        .collect())
}

/// Encodes an SMS-STATUS-REPORT for the message with reference `reference` (for the simulator).
pub fn encode_status_report(
    reference: u8,
    recipient: &str,
    submitted: DateTime<FixedOffset>,
    discharged: DateTime<FixedOffset>,
    status: u8,
) -> Result<String, PduError> {
    let mut pdu = vec![0x00, 0x06, reference];
    pdu.extend(encode_number(recipient)?);
    push_timestamp(&mut pdu, submitted);
    push_timestamp(&mut pdu, discharged);
    pdu.push(status);
    Ok(to_hex(&pdu))
}

// ----- decoding -----

fn alphabet(dcs: u8) -> Result<Alphabet, PduError> {
    match dcs >> 4 {
        0x0..=0x7 => {
            if dcs & 0x20 != 0 {
                return Err(PduError::Compressed(dcs));
            }
            match (dcs >> 2) & 0x03 {
                0 => Ok(Alphabet::Gsm7),
                1 => Ok(Alphabet::EightBit),
                2 => Ok(Alphabet::Ucs2),
                _ => Err(PduError::UnknownCharset(dcs)),
            }
        }
        0xC | 0xD => Ok(Alphabet::Gsm7),
        0xE => Ok(Alphabet::Ucs2),
        0xF => Ok(if dcs & 0x04 != 0 { Alphabet::EightBit } else { Alphabet::Gsm7 }),
        _ => Err(PduError::UnknownCharset(dcs)),
    }
}

/// Reads TP-UDL and TP-UD: the concatenation header, if any, and the text.
fn user_data(r: &mut Reader<'_>, udhi: bool, alpha: Alphabet) -> Result<(Option<Concat>, String), PduError> {
    let udl = usize::from(r.u8("user data length")?);
    let rest = r.rest();
    let octets = match alpha {
        Alphabet::Gsm7 => (udl * 7).div_ceil(8),
        _ => udl,
    };
    if alpha == Alphabet::Gsm7 && udl > 160 || alpha != Alphabet::Gsm7 && udl > 140 {
        return Err(PduError::BadLength { field: "user data", value: udl });
    }
    if rest.len() < octets {
        return Err(PduError::Truncated("user data"));
    }
    let ud = &rest[..octets];
    let (concat, header_len) = if udhi {
        let udhl = usize::from(*ud.first().ok_or(PduError::BadHeader)?);
        let header = ud.get(1..1 + udhl).ok_or(PduError::BadHeader)?;
        (parse_header(header)?, 1 + udhl)
    } else {
        (None, 0)
    };
    let text = match alpha {
        Alphabet::Gsm7 => {
            let header_bits = header_len * 8;
            let fill = (7 - header_bits % 7) % 7;
            let header_septets = (header_bits + fill) / 7;
            let count = udl.checked_sub(header_septets).ok_or(PduError::BadHeader)?;
            let septets = gsm7::unpack(&ud[header_len..], fill as u32, count)
                .ok_or(PduError::Truncated("user data"))?;
            gsm7::decode(&septets)
        }
        Alphabet::Ucs2 => {
            let body = ud.get(header_len..).ok_or(PduError::BadHeader)?;
            if body.len() % 2 != 0 {
                return Err(PduError::BadLength { field: "UCS-2 text", value: body.len() });
            }
            let units: Vec<u16> = body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        Alphabet::EightBit => {
            String::from_utf8_lossy(ud.get(header_len..).ok_or(PduError::BadHeader)?).into_owned()
        }
    };
    r.pos += octets;
    Ok((concat, text))
}

/// The information elements of a user data header (§9.2.3.24): the concatenation element if present.
fn parse_header(mut h: &[u8]) -> Result<Option<Concat>, PduError> {
    let mut concat = None;
    while !h.is_empty() {
        let (iei, len) = (h[0], usize::from(*h.get(1).ok_or(PduError::BadHeader)?));
        let data = h.get(2..2 + len).ok_or(PduError::BadHeader)?;
        match (iei, data) {
            (0x00, [r, total, seq]) => {
                concat = Some(Concat { reference: u16::from(*r), total: *total, seq: *seq })
            }
            (0x08, [hi, lo, total, seq]) => {
                concat = Some(Concat { reference: u16::from_be_bytes([*hi, *lo]), total: *total, seq: *seq })
            }
            (0x00 | 0x08, _) => return Err(PduError::BadHeader),
            _ => {}
        }
        h = &h[2 + len..];
    }
    match concat {
        Some(c) if c.total == 0 || c.seq == 0 || c.seq > c.total => Err(PduError::BadHeader),
        c => Ok(c),
    }
}

/// Decodes a PDU as the modem returns it (service-centre address first).
pub fn decode(hex: &str) -> Result<Decoded, PduError> {
    let bytes = from_hex(hex)?;
    let mut r = Reader { bytes: &bytes, pos: 0 };
    let smsc = r.smsc()?;
    let fo = r.u8("first octet")?;
    let udhi = fo & 0x40 != 0;
    match fo & 0x03 {
        0b00 => {
            let sender = r.address("originating address")?;
            let _pid = r.u8("protocol identifier")?;
            let dcs = r.u8("data coding scheme")?;
            let alpha = alphabet(dcs)?;
            let timestamp = r.timestamp("service-centre time stamp")?;
            let (concat, text) = user_data(&mut r, udhi, alpha)?;
            Ok(Decoded::Deliver(Deliver { smsc, sender, timestamp, alphabet: alpha, concat, text }))
        }
        0b10 => {
            let reference = r.u8("message reference")?;
            let recipient = r.address("recipient address")?;
            let submitted = r.timestamp("service-centre time stamp")?;
            let discharged = r.timestamp("discharge time")?;
            let status = r.u8("status")?;
            let outcome = match status {
                0x00..=0x1F => Outcome::Delivered,
                0x20..=0x3F => Outcome::Pending,
                _ => Outcome::Failed,
            };
            Ok(Decoded::StatusReport(StatusReport {
                smsc,
                reference,
                recipient,
                submitted,
                discharged,
                status,
                outcome,
            }))
        }
        0b01 => {
            let reference = r.u8("message reference")?;
            let to = r.address("destination address")?;
            let _pid = r.u8("protocol identifier")?;
            let dcs = r.u8("data coding scheme")?;
            let alpha = alphabet(dcs)?;
            let validity_minutes = match (fo >> 3) & 0x03 {
                0b10 => Some(validity_minutes(r.u8("validity period")?)),
                0b00 => None,
                _ => {
                    r.take(7, "validity period")?;
                    None
                }
            };
            let (concat, text) = user_data(&mut r, udhi, alpha)?;
            Ok(Decoded::Submit(Submitted {
                to,
                reference,
                alphabet: alpha,
                concat,
                validity_minutes,
                status_report: fo & 0x20 != 0,
                text,
            }))
        }
        t => Err(PduError::UnsupportedType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(to: &str, text: &str) -> Vec<SubmitPdu> {
        encode_submit(to, text, SubmitOptions { reference: 0x42, ..SubmitOptions::default() })
            .expect("encode")
    }

    fn text_of(hex: &str) -> (String, Option<Concat>) {
        match decode(hex).expect("decode") {
            Decoded::Submit(s) => (s.text, s.concat),
            Decoded::Deliver(d) => (d.text, d.concat),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn submit_gsm7_single_part() {
        // TS 23.040 §9.2.2.2: SCA 00 (SIM's), FO 0x31 (SUBMIT | VPF relative | SRR), MR 00,
        // DA 11 digits international (0x91) in swapped semi-octets, PID 00, DCS 00 (GSM 7-bit),
        // VP A7 (24 h, §9.2.3.12.1), UDL 10 septets, UD packed (TS 23.038 §6.1.2.1.1).
        let pdus = submit("+84905123456", "hellohello");
        assert_eq!(pdus.len(), 1);
        assert_eq!(pdus[0].hex, "0031000B914809153254F60000A70AE8329BFD4697D9EC37");
        assert_eq!(pdus[0].tpdu_len, 23);
    }

    #[test]
    fn submit_ucs2_vietnamese() {
        // DCS 08 (UCS-2, TS 23.038 §4), a national number (TOA 0x81), UDL in octets.
        let pdus = submit("0905123456", "Sốt");
        assert_eq!(pdus[0].hex, "0031000A8190502143650008A70600531ED10074");
        // 'à' is in the GSM default alphabet (0x7F): a text of such letters stays GSM 7-bit.
        assert_eq!(parts_needed("Chào"), (Alphabet::Gsm7, 1));
    }

    #[test]
    fn deliver_example() {
        // An SMS-DELIVER (§9.2.2.1) with an SMSC address, a sender of type 0xC8, a time stamp of
        // 1999-03-29 15:16:59 +02:00 (§9.2.3.11: time zone 0x80 = 8 quarters) and "hellohello".
        let d = match decode("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
            .expect("decode")
        {
            Decoded::Deliver(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(d.smsc, "+27381000015");
        assert_eq!(d.sender, "27838890001");
        assert_eq!(d.text, "hellohello");
        assert_eq!(d.timestamp.map(|t| t.to_rfc3339()).as_deref(), Some("1999-03-29T15:16:59+02:00"));
    }

    #[test]
    fn status_report() {
        // §9.2.2.3: FO 06 (STATUS-REPORT, SRQ), MR 0x2A, RA, SCTS, DT, ST 00 (received by the SME).
        let hex = "07914889200000F106 2A 0B914809153254F6 22111280000040 22111280000540 00".replace(' ', "");
        match decode(&hex).expect("decode") {
            Decoded::StatusReport(s) => {
                assert_eq!(
                    (s.reference, s.recipient.as_str(), s.outcome),
                    (0x2A, "+84905123456", Outcome::Delivered)
                );
                assert_eq!(
                    s.discharged.map(|t| t.to_rfc3339()).as_deref(),
                    Some("2022-11-21T08:00:50+01:00")
                );
            }
            other => panic!("{other:?}"),
        }
        let failed = hex[..hex.len() - 2].to_owned() + "41";
        assert!(matches!(
            decode(&failed),
            Ok(Decoded::StatusReport(StatusReport { outcome: Outcome::Failed, .. }))
        ));
    }

    #[test]
    fn concatenation_headers() {
        // 200 GSM characters: 153 + 47 septets, each part with the 8-bit reference header
        // 05 00 03 <ref> <total> <seq> (§9.2.3.24.1) and 1 fill bit before the text.
        let text: String = "0123456789".repeat(20);
        let pdus = submit("+84905123456", &text);
        assert_eq!(pdus.len(), 2);
        assert!(pdus[0].hex.starts_with("0071000B914809153254F60000A7A0050003420201"), "{}", pdus[0].hex);
        let (t1, c1) = text_of(&pdus[0].hex);
        let (t2, c2) = text_of(&pdus[1].hex);
        assert_eq!((t1.len(), t2.len()), (153, 47));
        assert_eq!(t1 + &t2, text);
        assert_eq!(c1, Some(Concat { reference: 0x42, total: 2, seq: 1 }));
        assert_eq!(c2, Some(Concat { reference: 0x42, total: 2, seq: 2 }));
        for p in &pdus {
            assert!(p.tpdu_len <= 13 + 140 + 1, "{}", p.tpdu_len);
        }
    }

    #[test]
    fn escape_pairs_are_never_split() {
        // 152 plain characters then '€' (two septets): the pair cannot fit in part 1's last septet.
        let text = format!("{}€abc{}", "a".repeat(152), "b".repeat(10));
        let pdus = submit("+84905123456", &text);
        let (t1, _) = text_of(&pdus[0].hex);
        assert_eq!(t1, "a".repeat(152));
        let joined: String = pdus.iter().map(|p| text_of(&p.hex).0).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn ucs2_limits_and_surrogates() {
        let vi =
            "Bạn chưa khai báo y tế lúc 08:00. Vui lòng khai báo ngay tại đường dẫn đã được gửi cho bạn.";
        assert_eq!(vi.chars().count(), 91);
        assert_eq!(parts_needed(vi), (Alphabet::Ucs2, 2), "91 UCS-2 characters: 67 + 24");
        let joined: String = submit("0905123456", vi).iter().map(|p| text_of(&p.hex).0).collect();
        assert_eq!(joined, vi);
        // A character outside the BMP (two UTF-16 units) is never split across parts.
        let emoji = format!("{}😷{}", "ạ".repeat(66), "ạ".repeat(10));
        let parts = submit("0905123456", &emoji);
        assert_eq!(parts.len(), 2);
        assert_eq!(text_of(&parts[0].hex).0, "ạ".repeat(66), "67 units would split the pair");
        assert!(text_of(&parts[1].hex).0.starts_with('😷'));
        assert_eq!(parts_needed(&"ạ".repeat(70)), (Alphabet::Ucs2, 1));
        assert_eq!(parts_needed(&"a".repeat(160)), (Alphabet::Gsm7, 1));
        assert_eq!(parts_needed(&"a".repeat(161)), (Alphabet::Gsm7, 2));
    }

    #[test]
    fn deliver_and_report_encoders_roundtrip() {
        let at = FixedOffset::east_opt(7 * 3600)
            .and_then(|o| o.with_ymd_and_hms(2026, 11, 21, 8, 5, 30).single())
            .expect("time");
        let text = "37.5 ho sot ".repeat(20);
        let parts = encode_deliver("+84905123456", &text, at, 9).expect("encode");
        assert_eq!(parts.len(), 2);
        let mut joined = String::new();
        for p in &parts {
            match decode(p).expect("decode") {
                Decoded::Deliver(d) => {
                    assert_eq!((d.sender.as_str(), d.timestamp), ("+84905123456", Some(at)));
                    assert_eq!(d.concat.map(|c| c.reference), Some(9));
                    joined.push_str(&d.text);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(joined, text);
        let west = FixedOffset::west_opt(3 * 3600 + 1800)
            .and_then(|o| o.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single())
            .expect("time");
        match decode(&encode_status_report(77, "0905123456", west, west, 0x00).expect("encode"))
            .expect("decode")
        {
            Decoded::StatusReport(r) => assert_eq!(
                (r.reference, r.recipient.as_str(), r.discharged, r.outcome),
                (77, "0905123456", Some(west), Outcome::Delivered)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validity_periods() {
        // §9.2.3.12.1.
        for (minutes, octet) in [
            (5, 0),
            (60, 11),
            (12 * 60, 143),
            (13 * 60, 145),
            (24 * 60, 167),
            (2 * 24 * 60, 168),
            (30 * 24 * 60, 196),
            (63 * 7 * 24 * 60, 255),
        ] {
            assert_eq!(validity_octet(minutes), octet, "{minutes} min");
            assert!(validity_minutes(octet) >= minutes);
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let check = |hex: &str| decode(hex).expect_err(hex);
        assert!(matches!(check("0G"), PduError::Hex(_)));
        assert!(matches!(check("000"), PduError::Hex(_)));
        assert!(matches!(check(""), PduError::Truncated(_)));
        assert!(matches!(check("0004"), PduError::Truncated(_)));
        assert!(matches!(check("00040B91"), PduError::Truncated(_)));
        // DCS 0x0C: reserved alphabet; 0x20: compressed; 0x84: reserved group.
        assert!(matches!(check("0004039121F300"), PduError::Truncated("data coding scheme")));
        let deliver = |dcs: &str, udl: &str, ud: &str| format!("0004039121F300{dcs}99309251619580{udl}{ud}");
        assert!(matches!(check(&deliver("0C", "01", "41")), PduError::UnknownCharset(0x0C)));
        assert!(matches!(check(&deliver("20", "01", "41")), PduError::Compressed(0x20)));
        assert!(matches!(check(&deliver("84", "01", "41")), PduError::UnknownCharset(0x84)));
        // UDL larger than the data, or impossible.
        assert!(matches!(check(&deliver("00", "0A", "E832")), PduError::Truncated(_)));
        assert!(matches!(check(&deliver("08", "FF", "00")), PduError::BadLength { .. }));
        assert!(matches!(check(&deliver("08", "03", "004100")), PduError::BadLength { .. }));
        // UDHI set but the header claims more than there is, or a concatenation element of the wrong size.
        assert!(matches!(check("0044039121F3000899309251619580020900"), PduError::BadHeader));
        assert!(matches!(check("0044039121F30008993092516195800403000200"), PduError::BadHeader));
        assert!(matches!(check("0044039121F3000899309251619580060500030A0300"), PduError::BadHeader));
        assert!(matches!(check("0003"), PduError::UnsupportedType(3)));
        assert!(matches!(
            encode_submit("090-abc", "x", SubmitOptions::default()),
            Err(PduError::BadNumber(_))
        ));
        assert!(matches!(encode_submit("", "x", SubmitOptions::default()), Err(PduError::BadNumber(_))));
        assert!(matches!(
            encode_submit("0905123456", &"ạ".repeat(255 * 67 + 1), SubmitOptions::default()),
            Err(PduError::Overlong(256))
        ));
    }

    /// Property: any text up to 2,000 characters — ASCII, GSM extension characters, Vietnamese, symbols
    /// outside the BMP — encodes to parts of at most 140 octets of user data that decode back to it.
    #[test]
    fn any_text_roundtrips_within_140_octets() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        const POOLS: [&str; 5] = [
            "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789.,:;!?-'\"@£$¥",
            "{}[]~|^\\€",
            "ăâđêôơưáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵĐĂÂÊÔƠƯ",
            "😷🙂𝄞中文ß\n\r\t",
            "ÄÖÑÜ§¿äöñüàΔΦΓΛΩΠΨΣΘΞ",
        ];
        let pools: Vec<Vec<char>> = POOLS.iter().map(|p| p.chars().collect()).collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_2026);
        for case in 0..600 {
            let len = if case % 10 == 0 { rng.gen_range(1500..=2000) } else { rng.gen_range(0..400) };
            // Mostly one pool (GSM-only texts must stay GSM), sometimes all mixed.
            let mix = case % 3 == 0;
            let one = rng.gen_range(0..pools.len());
            let text: String = (0..len)
                .map(|_| {
                    let pool = &pools[if mix { rng.gen_range(0..pools.len()) } else { one }];
                    pool[rng.gen_range(0..pool.len())]
                })
                .collect();
            let reference = rng.gen::<u8>();
            let pdus =
                encode_submit("+84905123456", &text, SubmitOptions { reference, ..SubmitOptions::default() })
                    .unwrap_or_else(|e| panic!("case {case}: {e} for {text:?}"));
            let mut joined = String::new();
            for (i, p) in pdus.iter().enumerate() {
                assert!(
                    p.tpdu_len - 14 <= 140,
                    "case {case}: part {i} has {} octets of user data",
                    p.tpdu_len - 14
                );
                match decode(&p.hex).unwrap_or_else(|e| panic!("case {case}: part {i}: {e}")) {
                    Decoded::Submit(s) => {
                        if pdus.len() > 1 {
                            let c = s.concat.expect("header");
                            assert_eq!(
                                (c.reference, usize::from(c.total), usize::from(c.seq)),
                                (u16::from(reference), pdus.len(), i + 1)
                            );
                        }
                        joined.push_str(&s.text);
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(joined, text, "case {case}");
        }
    }

    /// Property: decoding arbitrary bytes never panics.
    #[test]
    fn decoding_garbage_never_panics() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        let valid = from_hex("0044039121F3000899309251619580060500030A0301").expect("hex");
        for _ in 0..20_000 {
            let mut bytes: Vec<u8> = if rng.gen_bool(0.5) {
                (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()
            } else {
                valid.clone()
            };
            for _ in 0..rng.gen_range(0..4) {
                if !bytes.is_empty() {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
            }
            let _ = decode(&to_hex(&bytes));
        }
    }
}
