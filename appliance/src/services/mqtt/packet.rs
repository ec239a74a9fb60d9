//! Just enough of MQTT 3.1.1 and 5 for the front to enforce each device's rights: whole packets
//! read off a stream, the CONNECT read and rewritten, the topic of a PUBLISH, the filters of a
//! SUBSCRIBE, and the refusals the front answers itself (CONNACK, SUBACK, PUBACK). Pure, apart from
//! [`read`].

use tokio::io::{AsyncRead, AsyncReadExt};

/// MQTT protocol versions a CONNECT can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// Control packet types (the high nibble of the first byte).
pub const CONNECT: u8 = 1;
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBSCRIBE: u8 = 8;
pub const DISCONNECT: u8 = 14;

/// A packet the front cannot read: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed MQTT packet: {0}")]
pub struct Malformed(pub &'static str);

type Parsed<T> = Result<T, Malformed>;

/// Reads one whole packet (fixed header and body) of at most `max` bytes; `Ok(None)` at a clean
/// end of the stream.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    if r.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let mut packet = vec![first[0]];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let b = r.read_u8().await?;
        packet.push(b);
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed remaining length"));
        }
    }
    if packet.len() + len > max {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "packet over the size limit"));
    }
    let head = packet.len();
    packet.resize(head + len, 0);
    r.read_exact(&mut packet[head..]).await?;
    Ok(Some(packet))
}

/// The packet's type.
pub fn kind(packet: &[u8]) -> u8 {
    packet.first().map_or(0, |b| b >> 4)
}

/// The body of a whole packet (after the fixed header).
fn body(packet: &[u8]) -> Parsed<&[u8]> {
    let mut at = 1;
    while packet.get(at).ok_or(Malformed("short header"))? & 0x80 != 0 {
        at += 1;
    }
    Ok(&packet[at + 1..])
}

/// A packet of `kind_and_flags` around `body`.
fn encode(kind_and_flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind_and_flags];
    put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// MQTT's variable byte integer.
fn put_varint(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}

/// A cursor over a packet's body.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Parsed<&'a [u8]> {
        let s = self.buf.get(self.at..self.at + n).ok_or(Malformed("cut short"))?;
        self.at += n;
        Ok(s)
    }
    fn byte(&mut self) -> Parsed<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Parsed<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn binary(&mut self) -> Parsed<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    fn string(&mut self) -> Parsed<&'a str> {
        std::str::from_utf8(self.binary()?).map_err(|_| Malformed("a string is not UTF-8"))
    }
    fn varint(&mut self) -> Parsed<usize> {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let b = self.byte()?;
            v |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 21 {
                return Err(Malformed("malformed variable integer"));
            }
        }
    }
    /// An MQTT 5 property list: its properties as (id, value bytes).
    fn properties(&mut self) -> Parsed<Vec<(u8, &'a [u8])>> {
        let len = self.varint()?;
        let mut inner = Cursor { buf: self.take(len)?, at: 0 };
        let mut list = Vec::new();
        while inner.at < inner.buf.len() {
            let id = inner.byte()?;
            let start = inner.at;
            match id {
                // Byte.
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    inner.take(1)?;
                }
                // Two-byte integer.
                0x13 | 0x21 | 0x22 | 0x23 => {
                    inner.take(2)?;
                }
                // Four-byte integer.
                0x02 | 0x11 | 0x18 | 0x27 => {
                    inner.take(4)?;
                }
                // Variable byte integer.
                0x0B => {
                    inner.varint()?;
                }
                // String or binary data.
                0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                    inner.binary()?;
                }
                // A string pair.
                0x26 => {
                    inner.binary()?;
                    inner.binary()?;
                }
                _ => return Err(Malformed("an unknown MQTT 5 property")),
            }
            list.push((id, &inner.buf[start..inner.at]));
        }
        Ok(list)
    }
}

/// A CONNECT as the front needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: Version,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// The last will's topic, if the client sets one.
    pub will_topic: Option<String>,
    /// Whether the client starts a new session (3.1.1's Clean Session, 5's Clean Start).
    pub clean: bool,
    /// MQTT 5: how long the session outlives the connection, seconds (0 when absent).
    pub session_expiry: u32,
    /// MQTT 5: how many QoS 1 and 2 messages the client takes unacknowledged (65,535 when absent).
    pub receive_maximum: u16,
    /// MQTT 5: the largest packet the client takes, if it says.
    pub maximum_packet_size: Option<u32>,
    /// Where the flags byte and the client id are in the body, for [`Connect::rewrite`].
    flags_at: usize,
    client_id_at: (usize, usize),
    /// MQTT 5: where the CONNECT's property list (its length first) is in the body, and its
    /// properties but the Topic Alias Maximum, as they are passed on.
    properties: Option<PassedOn>,
}

/// MQTT 5 properties the front reads or sets.
const SESSION_EXPIRY: u8 = 0x11;
const ASSIGNED_CLIENT_ID: u8 = 0x12;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const RETAIN_AVAILABLE: u8 = 0x25;
const MAXIMUM_PACKET_SIZE: u8 = 0x27;
const SHARED_SUBSCRIPTIONS: u8 = 0x2A;

fn u16_of(value: &[u8]) -> u16 {
    u16::from_be_bytes([value[0], value[1]])
}

fn u32_of(value: &[u8]) -> u32 {
    u32::from_be_bytes([value[0], value[1], value[2], value[3]])
}

/// Where an MQTT 5 CONNECT's property list is in its body, and the properties passed on.
type PassedOn = ((usize, usize), Vec<u8>);

/// What an MQTT 5 CONNECT's properties ask of the server.
struct Asked {
    session_expiry: u32,
    receive_maximum: u16,
    maximum_packet_size: Option<u32>,
}

impl Asked {
    /// Reads the property list at `c`: where it is, the properties passed on (all but the Topic
    /// Alias Maximum), and what they ask.
    fn read(c: &mut Cursor<'_>) -> Parsed<(PassedOn, Asked)> {
        let at = c.at;
        let mut kept = Vec::new();
        let mut asked = Asked { session_expiry: 0, receive_maximum: u16::MAX, maximum_packet_size: None };
        for (id, value) in c.properties()? {
            match id {
                SESSION_EXPIRY => asked.session_expiry = u32_of(value),
                RECEIVE_MAXIMUM => asked.receive_maximum = u16_of(value),
                MAXIMUM_PACKET_SIZE => asked.maximum_packet_size = Some(u32_of(value)),
                _ => {}
            }
            if id != TOPIC_ALIAS_MAXIMUM {
                kept.push(id);
                kept.extend_from_slice(value);
            }
        }
        if asked.receive_maximum == 0 || asked.maximum_packet_size == Some(0) {
            return Err(Malformed("a Receive Maximum or Maximum Packet Size of 0"));
        }
        Ok((((at, c.at), kept), asked))
    }
}

const WILL_RETAIN: u8 = 0x20;
const CLEAN: u8 = 0x02;

impl Connect {
    /// Reads a whole CONNECT packet.
    pub fn parse(packet: &[u8]) -> Parsed<Connect> {
        if packet.first() != Some(&0x10) {
            return Err(Malformed("the first packet is not CONNECT"));
        }
        let body = body(packet)?;
        let mut c = Cursor { buf: body, at: 0 };
        if c.string()? != "MQTT" {
            return Err(Malformed("not the MQTT protocol name"));
        }
        let version = match c.byte()? {
            4 => Version::V311,
            5 => Version::V5,
            _ => return Err(Malformed("an MQTT version other than 3.1.1 and 5")),
        };
        let flags_at = c.at;
        let flags = c.byte()?;
        c.u16()?;
        let (properties, asked) = match version {
            Version::V5 => {
                let (properties, asked) = Asked::read(&mut c)?;
                (Some(properties), asked)
            }
            Version::V311 => {
                (None, Asked { session_expiry: 0, receive_maximum: u16::MAX, maximum_packet_size: None })
            }
        };
        let start = c.at;
        let client_id = c.string()?.to_owned();
        let client_id_at = (start, c.at);
        let will_topic = if flags & 0x04 != 0 {
            if version == Version::V5 {
                c.properties()?;
            }
            let topic = c.string()?.to_owned();
            c.binary()?;
            Some(topic)
        } else {
            None
        };
        let username = if flags & 0x80 != 0 { Some(c.string()?.to_owned()) } else { None };
        let password = if flags & 0x40 != 0 { Some(c.binary()?.to_vec()) } else { None };
        let clean = flags & CLEAN != 0;
        Ok(Connect {
            version,
            client_id,
            username,
            password,
            will_topic,
            clean,
            session_expiry: asked.session_expiry,
            receive_maximum: asked.receive_maximum,
            maximum_packet_size: asked.maximum_packet_size,
            flags_at,
            client_id_at,
            properties,
        })
    }

    /// The same CONNECT with `client_id` in place of the device's and its will not retained; a
    /// keep-alive of 0 (valid MQTT: no keep-alive), which rumqttd refuses, becomes the longest there
    /// is (65,535 s, 18 h 12 min). `clean` is the Clean Session (Clean Start) flag rumqttd sees.
    pub fn rewrite(&self, packet: &[u8], client_id: &str, clean: bool) -> Parsed<Vec<u8>> {
        let body = body(packet)?;
        let id_len = u16::try_from(client_id.len()).map_err(|_| Malformed("client id too long"))?;
        let mut out = Vec::with_capacity(body.len() + client_id.len());
        match &self.properties {
            // MQTT 5: the client's Topic Alias Maximum is not passed on, so rumqttd never aliases
            // what it sends the client. It keys its aliases by subscription filter, not by topic:
            // every message matching a wildcard would reach the client under the first one's topic.
            Some(((from, to), kept)) => {
                out.extend_from_slice(&body[..*from]);
                put_varint(&mut out, kept.len());
                out.extend_from_slice(kept);
                out.extend_from_slice(&body[*to..self.client_id_at.0]);
            }
            None => out.extend_from_slice(&body[..self.client_id_at.0]),
        }
        out[self.flags_at] &= !WILL_RETAIN;
        if clean {
            out[self.flags_at] |= CLEAN;
        } else {
            out[self.flags_at] &= !CLEAN;
        }
        let keep_alive = self.flags_at + 1..self.flags_at + 3;
        if out[keep_alive.clone()] == [0, 0] {
            out[keep_alive].copy_from_slice(&[0xFF, 0xFF]);
        }
        out.extend_from_slice(&id_len.to_be_bytes());
        out.extend_from_slice(client_id.as_bytes());
        out.extend_from_slice(&body[self.client_id_at.1..]);
        Ok(encode(0x10, &out))
    }
}

/// Why the front refuses a connection, as CONNACK says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadCredentials,
    NotAuthorized,
    /// The password checks' queue is full, or the broker cannot be reached.
    Unavailable,
    /// The account has as many connections as it may.
    Quota,
    /// Too many wrong logins for the account or the address.
    Throttled,
    /// MQTT 3.1.1: an empty client id with a session to keep (`[MQTT-3.1.3-8]`).
    IdentifierRejected,
}

/// The CONNACK refusing a connection.
pub fn connack(version: Version, refusal: Refusal) -> Vec<u8> {
    match version {
        Version::V311 => {
            let code = match refusal {
                Refusal::BadCredentials => 0x04,
                Refusal::NotAuthorized | Refusal::Throttled => 0x05,
                Refusal::Unavailable | Refusal::Quota => 0x03,
                Refusal::IdentifierRejected => 0x02,
            };
            vec![0x20, 2, 0, code]
        }
        Version::V5 => {
            let reason = match refusal {
                Refusal::BadCredentials => 0x86,
                Refusal::NotAuthorized => 0x87,
                Refusal::Unavailable => 0x88,
                Refusal::Quota => 0x97,
                Refusal::Throttled => 0x9F,
                Refusal::IdentifierRejected => 0x85,
            };
            vec![0x20, 3, 0, reason, 0]
        }
    }
}

/// A PUBLISH as the front needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub qos: u8,
    pub packet_id: Option<u16>,
    /// MQTT 5's topic alias, if set.
    pub alias: Option<u16>,
    /// The application message's length.
    pub payload_len: usize,
}

/// Reads a PUBLISH's topic, QoS, packet id and (MQTT 5) topic alias.
pub fn publish(version: Version, packet: &[u8]) -> Parsed<Publish> {
    let qos = (packet[0] >> 1) & 0x03;
    let mut c = Cursor { buf: body(packet)?, at: 0 };
    let topic = c.string()?.to_owned();
    let packet_id = if qos > 0 { Some(c.u16()?) } else { None };
    let mut alias = None;
    if version == Version::V5 {
        for (id, value) in c.properties()? {
            if id == 0x23 {
                alias = Some(u16::from_be_bytes([value[0], value[1]]));
            }
        }
    }
    let payload_len = c.buf.len().saturating_sub(c.at);
    Ok(Publish { topic, qos, packet_id, alias, payload_len })
}

/// The same PUBLISH, not retained.
pub fn without_retain(mut packet: Vec<u8>) -> Vec<u8> {
    if let Some(first) = packet.first_mut() {
        *first &= !0x01;
    }
    packet
}

/// A SUBSCRIBE's packet id and topic filters, each with its options byte.
pub fn subscribe(version: Version, packet: &[u8]) -> Parsed<(u16, Vec<(String, u8)>)> {
    let mut c = Cursor { buf: body(packet)?, at: 0 };
    let id = c.u16()?;
    if version == Version::V5 {
        c.properties()?;
    }
    let mut filters = Vec::new();
    while c.at < c.buf.len() {
        let filter = c.string()?.to_owned();
        filters.push((filter, c.byte()?));
    }
    if filters.is_empty() {
        return Err(Malformed("a SUBSCRIBE without filters"));
    }
    Ok((id, filters))
}

/// MQTT 5's No Local subscription option.
pub const NO_LOCAL: u8 = 0x04;

/// Why a SUBSCRIBE is refused (MQTT 5 says which; 3.1.1 has one failure code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubRefusal {
    /// A filter the device may not read (0x87).
    NotAuthorized,
    /// A No Local subscription, which the box cannot honour (0x83, implementation specific).
    NoLocal,
}

/// The SUBACK refusing each of `count` filters of SUBSCRIBE `id`.
pub fn suback_refused(version: Version, id: u16, count: usize, why: SubRefusal) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    match version {
        Version::V311 => body.extend(std::iter::repeat_n(0x80, count)),
        Version::V5 => {
            body.push(0);
            let code = match why {
                SubRefusal::NotAuthorized => 0x87,
                SubRefusal::NoLocal => 0x83,
            };
            body.extend(std::iter::repeat_n(code, count));
        }
    }
    encode(0x90, &body)
}

/// The PUBACK for a QoS 1 PUBLISH `id` that was not passed on (MQTT 5 says why; 3.1.1 cannot).
pub fn puback_refused(version: Version, id: u16) -> Vec<u8> {
    puback_with(version, id, 0x87)
}

/// The PUBACK of a message over the size limit (MQTT 5: 0x97, quota exceeded; 3.1.1 has no reason).
pub fn puback_too_large(version: Version, id: u16) -> Vec<u8> {
    puback_with(version, id, 0x97)
}

fn puback_with(version: Version, id: u16, reason: u8) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if version == Version::V5 {
        body.push(reason);
    }
    encode(0x40, &body)
}

/// An acknowledgement of kind `kind` (PUBACK, PUBREC, PUBCOMP) for packet `id`, success: two bytes
/// of body in both versions.
pub fn ack(kind: u8, id: u16) -> Vec<u8> {
    encode(kind << 4, &id.to_be_bytes())
}

/// The packet id of an acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP) and, MQTT 5, its reason
/// (0 when absent).
pub fn ack_of(packet: &[u8]) -> Parsed<(u16, u8)> {
    let mut c = Cursor { buf: body(packet)?, at: 0 };
    let id = c.u16()?;
    let reason = if c.at < c.buf.len() { c.byte()? } else { 0 };
    Ok((id, reason))
}

/// MQTT 5: the Session Expiry Interval a DISCONNECT sets, if it sets one.
pub fn disconnect_expiry(packet: &[u8]) -> Parsed<Option<u32>> {
    let mut c = Cursor { buf: body(packet)?, at: 0 };
    if c.buf.len() < 2 {
        return Ok(None);
    }
    c.byte()?;
    Ok(c.properties()?.into_iter().find(|(id, _)| *id == SESSION_EXPIRY).map(|(_, v)| u32_of(v)))
}

/// What the front tells an MQTT 5 client in the broker's CONNACK: what the box does, where it
/// differs from what the client asked or from MQTT's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The session expiry the box keeps, when it is less than the client asked.
    pub session_expiry: Option<u32>,
    /// The client id the box made, when the client sent none.
    pub assigned_client_id: Option<String>,
    /// The largest packet the box takes.
    pub maximum_packet_size: u32,
    /// The most topic aliases the client may set.
    pub topic_alias_maximum: u16,
}

/// The broker's MQTT 5 CONNACK with what the front honours said: its own properties but those the
/// front sets; Retain Available 0 (the box keeps no retained messages), Shared Subscription
/// Available 0 (no device may read `$share/…`), the box's Maximum Packet Size and Topic Alias
/// Maximum, and the session expiry and client id the box gave.
pub fn connack_announcing(packet: &[u8], announce: &Announce) -> Parsed<Vec<u8>> {
    let mut c = Cursor { buf: body(packet)?, at: 0 };
    let (flags, reason) = (c.byte()?, c.byte()?);
    let given = if c.at < c.buf.len() { c.properties()? } else { Vec::new() };
    let set =
        [SESSION_EXPIRY, ASSIGNED_CLIENT_ID, TOPIC_ALIAS_MAXIMUM, RETAIN_AVAILABLE, MAXIMUM_PACKET_SIZE];
    let mut props = Vec::new();
    for (id, value) in given.iter().filter(|(id, _)| !set.contains(id) && *id != SHARED_SUBSCRIPTIONS) {
        props.push(*id);
        props.extend_from_slice(value);
    }
    if let Some(expiry) = announce.session_expiry {
        props.push(SESSION_EXPIRY);
        props.extend_from_slice(&expiry.to_be_bytes());
    }
    if let Some(id) = &announce.assigned_client_id {
        let len = u16::try_from(id.len()).map_err(|_| Malformed("client id too long"))?;
        props.push(ASSIGNED_CLIENT_ID);
        props.extend_from_slice(&len.to_be_bytes());
        props.extend_from_slice(id.as_bytes());
    }
    let brokers = given.iter().find(|(id, _)| *id == TOPIC_ALIAS_MAXIMUM).map_or(0, |(_, v)| u16_of(v));
    props.push(TOPIC_ALIAS_MAXIMUM);
    props.extend_from_slice(&brokers.min(announce.topic_alias_maximum).to_be_bytes());
    props.extend_from_slice(&[RETAIN_AVAILABLE, 0, SHARED_SUBSCRIPTIONS, 0, MAXIMUM_PACKET_SIZE]);
    props.extend_from_slice(&announce.maximum_packet_size.to_be_bytes());
    let mut out = vec![flags, reason];
    put_varint(&mut out, props.len());
    out.extend(props);
    Ok(encode(CONNACK << 4, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn connect(version: u8, client: &str, will: Option<&str>, user: &str, pass: &str) -> Vec<u8> {
        let mut b = string("MQTT");
        b.push(version);
        b.push(0xC2 | if will.is_some() { 0x04 | WILL_RETAIN } else { 0 });
        b.extend_from_slice(&[0, 60]);
        if version == 5 {
            // Receive Maximum 10, Topic Alias Maximum 16.
            b.extend_from_slice(&[6, 0x21, 0, 10, 0x22, 0, 16]);
        }
        b.extend(string(client));
        if let Some(topic) = will {
            if version == 5 {
                b.push(0);
            }
            b.extend(string(topic));
            b.extend(string("offline"));
        }
        b.extend(string(user));
        b.extend(string(pass));
        encode(0x10, &b)
    }

    #[test]
    fn a_connect_is_read_and_rewritten_in_both_versions() {
        for version in [4, 5] {
            let raw = connect(
                version,
                "espresense-phong-1",
                Some("espresense/rooms/phong-1/status"),
                "phong-1",
                "mat-khau",
            );
            let c = Connect::parse(&raw).expect("connect");
            assert_eq!(c.version, if version == 4 { Version::V311 } else { Version::V5 });
            assert_eq!(c.client_id, "espresense-phong-1");
            assert_eq!(c.username.as_deref(), Some("phong-1"));
            assert_eq!(c.password.as_deref(), Some(&b"mat-khau"[..]));
            assert_eq!(c.will_topic.as_deref(), Some("espresense/rooms/phong-1/status"));
            let rewritten = c.rewrite(&raw, "phong-1:espresense-phong-1", true).expect("rewrite");
            let again = Connect::parse(&rewritten).expect("rewritten connect");
            assert_eq!(again.client_id, "phong-1:espresense-phong-1");
            assert_eq!(
                (again.username, again.password, again.will_topic),
                (c.username, c.password, c.will_topic)
            );
            assert_eq!(
                body(&rewritten).expect("body")[again.flags_at] & WILL_RETAIN,
                0,
                "the will is not retained"
            );
            if version == 5 {
                let ((from, to), _) = again.properties.clone().expect("properties");
                let mut c = Cursor { buf: &body(&rewritten).expect("body")[from..to], at: 0 };
                let ids: Vec<u8> = c.properties().expect("list").into_iter().map(|(id, _)| id).collect();
                assert_eq!(ids, vec![0x21], "Receive Maximum passed on, Topic Alias Maximum not");
            }
        }
        assert!(Connect::parse(b"GET / HTTP/1.1\r\n").is_err());
        let raw = connect(4, "x", None, "u", "p");
        for cut in 2..raw.len() - 1 {
            let mut short = raw[..cut].to_vec();
            short[1] = (cut.saturating_sub(2)) as u8;
            assert!(Connect::parse(&short).is_err(), "{cut} bytes");
        }
    }

    #[test]
    fn publishes_and_subscribes_are_read() {
        let mut b = string("espresense/devices/x/phong-1");
        b.extend_from_slice(&[0, 7]);
        b.extend_from_slice(&[3, 0x23, 0, 2]);
        b.extend_from_slice(b"{}");
        let p = publish(Version::V5, &encode(0x33, &b)).expect("publish");
        assert_eq!(
            (p.topic.as_str(), p.qos, p.packet_id, p.alias),
            ("espresense/devices/x/phong-1", 1, Some(7), Some(2))
        );
        assert_eq!(without_retain(encode(0x33, &b))[0], 0x32);

        let mut s = vec![0, 9];
        s.extend(string("espresense/rooms/phong-1/+/set"));
        s.push(1);
        s.extend(string("#"));
        s.push(0);
        assert_eq!(
            subscribe(Version::V311, &encode(0x82, &s)).expect("subscribe"),
            (9, vec![("espresense/rooms/phong-1/+/set".to_owned(), 1), ("#".to_owned(), 0)])
        );
        let refused = |v, n, why| suback_refused(v, 9, n, why);
        assert_eq!(refused(Version::V311, 2, SubRefusal::NoLocal), vec![0x90, 4, 0, 9, 0x80, 0x80]);
        assert_eq!(refused(Version::V5, 1, SubRefusal::NotAuthorized), vec![0x90, 4, 0, 9, 0, 0x87]);
        assert_eq!(refused(Version::V5, 1, SubRefusal::NoLocal), vec![0x90, 4, 0, 9, 0, 0x83]);
        assert_eq!(puback_refused(Version::V5, 7), vec![0x40, 3, 0, 7, 0x87]);
        assert_eq!(connack(Version::V311, Refusal::BadCredentials), vec![0x20, 2, 0, 4]);
    }

    #[tokio::test]
    async fn whole_packets_are_read_off_a_stream_within_a_limit() {
        let a = encode(0x30, &[0, 1, b'a', b'x']);
        let big = encode(0x30, &vec![0; 300]);
        let mut stream: &[u8] = &[a.clone(), big.clone()].concat();
        assert_eq!(read(&mut stream, 1024).await.expect("read"), Some(a));
        assert_eq!(read(&mut stream, 1024).await.expect("read"), Some(big.clone()));
        assert_eq!(read(&mut stream, 1024).await.expect("read"), None);
        let mut stream: &[u8] = &big;
        assert!(read(&mut stream, 100).await.is_err(), "over the limit");
    }
}
