//! What the broker sends a device, held to what the device asked for (MQTT 5): no more QoS 1 and 2
//! messages unacknowledged than its Receive Maximum, none larger than its Maximum Packet Size, and
//! a CONNACK that says what the box honours. rumqttd ignores both limits; the front keeps them.
//! Pure: the caller moves the packets.

use std::collections::{HashSet, VecDeque};

use super::packet::{self, Announce, Version};

/// Messages held for a device that has not acknowledged enough of the earlier ones. rumqttd itself
/// keeps at most 100 unacknowledged per connection, so this is reached only by a device that never
/// acknowledges while QoS 0 messages pile up behind; the connection is then closed.
pub const HOLD_MAX: usize = 1_000;

/// Packets to send on, each way.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sends {
    pub client: Vec<Vec<u8>>,
    pub server: Vec<Vec<u8>>,
    /// Messages dropped as larger than the device takes.
    pub dropped: usize,
}

/// More held than [`HOLD_MAX`]: the connection is closed.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// One connection's server-to-device side.
#[derive(Debug)]
pub struct Downstream {
    receive_maximum: usize,
    maximum_packet_size: usize,
    /// QoS 1 and 2 messages sent and not yet acknowledged.
    inflight: usize,
    /// Messages waiting for a free place, in order (a QoS 0 one behind them waits too).
    held: VecDeque<Vec<u8>>,
    /// QoS 2 messages the front dropped (too large) and acknowledged itself: their PUBREL is the
    /// front's to answer.
    dropped_qos2: HashSet<u16>,
    /// What the broker's CONNACK is to say (MQTT 5), until it has come.
    announce: Option<Announce>,
}

impl Downstream {
    /// A connection of `version`; MQTT 5 with the client's Receive Maximum and Maximum Packet Size
    /// and what the CONNACK is to announce. MQTT 3.1.1 has neither limit.
    pub fn new(version: Version, limits: (u16, Option<u32>), announce: Announce) -> Downstream {
        let (receive_maximum, maximum_packet_size) = match version {
            Version::V311 => (usize::MAX, usize::MAX),
            Version::V5 => (usize::from(limits.0), limits.1.map_or(usize::MAX, |m| m as usize)),
        };
        let announce = (version == Version::V5).then_some(announce);
        Downstream {
            receive_maximum,
            maximum_packet_size,
            inflight: 0,
            held: VecDeque::new(),
            dropped_qos2: HashSet::new(),
            announce,
        }
    }

    /// A packet from the broker.
    pub fn broker_sent(&mut self, p: Vec<u8>) -> Result<Sends, Overflow> {
        let mut sends = Sends::default();
        match packet::kind(&p) {
            packet::CONNACK => match self.announce.take() {
                Some(announce) => match packet::connack_announcing(&p, &announce) {
                    Ok(edited) => sends.client.push(edited),
                    Err(_) => sends.client.push(p),
                },
                None => sends.client.push(p),
            },
            packet::PUBREL => match packet::ack_of(&p) {
                Ok((id, _)) if self.dropped_qos2.remove(&id) => {
                    sends.server.push(packet::ack(packet::PUBCOMP, id))
                }
                _ => sends.client.push(p),
            },
            packet::PUBLISH if p.len() > self.maximum_packet_size => {
                // MQTT 5 §3.1.2.11.4: a packet larger than the client takes is dropped, as if sent.
                sends.dropped = 1;
                match (qos(&p), packet_id(&p)) {
                    (1, Some(id)) => sends.server.push(packet::ack(packet::PUBACK, id)),
                    (2, Some(id)) => {
                        self.dropped_qos2.insert(id);
                        sends.server.push(packet::ack(packet::PUBREC, id));
                    }
                    _ => {}
                }
            }
            packet::PUBLISH => {
                if self.held.is_empty() && (qos(&p) == 0 || self.inflight < self.receive_maximum) {
                    self.send(p, &mut sends);
                } else if self.held.len() >= HOLD_MAX {
                    return Err(Overflow);
                } else {
                    self.held.push_back(p);
                }
            }
            _ => sends.client.push(p),
        }
        Ok(sends)
    }

    /// A packet from the device: an acknowledgement that ends a QoS 1 or 2 exchange frees a place,
    /// and what was held for it goes out.
    pub fn device_sent(&mut self, p: &[u8]) -> Sends {
        let mut sends = Sends::default();
        let ends = match packet::kind(p) {
            packet::PUBACK | packet::PUBCOMP => true,
            // A PUBREC with a failure reason ends the exchange (MQTT 5 §4.9).
            packet::PUBREC => packet::ack_of(p).is_ok_and(|(_, reason)| reason >= 0x80),
            _ => false,
        };
        if !ends {
            return sends;
        }
        self.inflight = self.inflight.saturating_sub(1);
        while let Some(next) = self.held.front() {
            if qos(next) > 0 && self.inflight >= self.receive_maximum {
                break;
            }
            if let Some(next) = self.held.pop_front() {
                self.send(next, &mut sends);
            }
        }
        sends
    }

    fn send(&mut self, p: Vec<u8>, sends: &mut Sends) {
        if qos(&p) > 0 {
            self.inflight += 1;
        }
        sends.client.push(p);
    }
}

fn qos(p: &[u8]) -> u8 {
    (p[0] >> 1) & 0x03
}

/// A QoS 1 or 2 PUBLISH's packet id: right after its topic.
fn packet_id(p: &[u8]) -> Option<u16> {
    let mut at = 1;
    while *p.get(at)? & 0x80 != 0 {
        at += 1;
    }
    let body = p.get(at + 1..)?;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let id = body.get(2 + topic_len..4 + topic_len)?;
    Some(u16::from_be_bytes([id[0], id[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(qos: u8, id: u16, payload: usize) -> Vec<u8> {
        let mut body = vec![0, 1, b't'];
        if qos > 0 {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.push(0);
        body.extend(std::iter::repeat_n(b'x', payload));
        let mut p = vec![0x30 | (qos << 1), body.len() as u8];
        p.extend(body);
        p
    }

    fn announce() -> Announce {
        Announce {
            session_expiry: None,
            assigned_client_id: None,
            maximum_packet_size: 8192,
            topic_alias_maximum: 64,
        }
    }

    #[test]
    fn no_more_unacknowledged_than_the_client_takes_and_in_order() {
        let mut d = Downstream::new(Version::V5, (2, None), announce());
        for id in 1..=3 {
            let sent = d.broker_sent(publish(1, id, 1)).expect("held");
            assert_eq!(sent.client.len(), usize::from(id <= 2), "message {id}");
        }
        // A QoS 0 message waits behind the held one: order is kept.
        assert!(d.broker_sent(publish(0, 0, 1)).expect("held").client.is_empty());
        assert!(d.device_sent(&packet::ack(packet::PUBREC, 1)).client.is_empty(), "not the end of it");
        let freed = d.device_sent(&packet::ack(packet::PUBACK, 1));
        assert_eq!(freed.client, vec![publish(1, 3, 1), publish(0, 0, 1)]);
        // MQTT 3.1.1 has no limit.
        let mut d = Downstream::new(Version::V311, (2, None), announce());
        for id in 1..=5 {
            assert_eq!(d.broker_sent(publish(2, id, 1)).expect("sent").client.len(), 1);
        }
    }

    #[test]
    fn a_message_larger_than_the_client_takes_is_dropped_and_acknowledged_by_the_box() {
        let mut d = Downstream::new(Version::V5, (10, Some(20)), announce());
        let small = publish(1, 4, 5);
        assert_eq!(d.broker_sent(small.clone()).expect("sent").client, vec![small]);
        let big = d.broker_sent(publish(1, 5, 40)).expect("dropped");
        assert_eq!((big.client.len(), big.server, big.dropped), (0, vec![packet::ack(packet::PUBACK, 5)], 1));
        let big = d.broker_sent(publish(2, 6, 40)).expect("dropped");
        assert_eq!(big.server, vec![packet::ack(packet::PUBREC, 6)]);
        let rel = d.broker_sent(vec![0x62, 2, 0, 6]).expect("answered");
        assert_eq!((rel.client.len(), rel.server), (0, vec![packet::ack(packet::PUBCOMP, 6)]));
        // Another PUBREL is the client's.
        assert_eq!(d.broker_sent(vec![0x62, 2, 0, 7]).expect("passed").client.len(), 1);
    }

    #[test]
    fn a_client_that_never_acknowledges_is_cut_off() {
        let mut d = Downstream::new(Version::V5, (1, None), announce());
        d.broker_sent(publish(1, 1, 1)).expect("sent");
        d.broker_sent(publish(1, 2, 1)).expect("held");
        for _ in 1..HOLD_MAX {
            d.broker_sent(publish(0, 0, 1)).expect("held");
        }
        assert_eq!(d.broker_sent(publish(0, 0, 1)), Err(Overflow));
    }

    #[test]
    fn the_connack_says_what_the_box_honours() {
        let mut a = announce();
        a.session_expiry = Some(86_400);
        a.assigned_client_id = Some("~abc".into());
        let mut d = Downstream::new(Version::V5, (10, None), a);
        // rumqttd's: session not present, success, Topic Alias Maximum 4096.
        let sent = d.broker_sent(vec![0x20, 6, 0, 0, 3, 0x22, 0x10, 0x00]).expect("connack");
        let mut want = vec![0, 0, 24, 0x11, 0, 1, 0x51, 0x80, 0x12, 0, 4, b'~', b'a', b'b', b'c'];
        want.extend_from_slice(&[0x22, 0, 64, 0x25, 0, 0x2A, 0, 0x27, 0, 0, 0x20, 0]);
        let mut p = vec![0x20, want.len() as u8];
        p.extend(want);
        assert_eq!(sent.client, vec![p]);
        // Only the first CONNACK, and never in 3.1.1.
        let mut d = Downstream::new(Version::V311, (10, None), announce());
        assert_eq!(d.broker_sent(vec![0x20, 2, 0, 0]).expect("connack").client, vec![vec![0x20, 2, 0, 0]]);
    }
}
