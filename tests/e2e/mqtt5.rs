//! MQTT 5 as the box's broker honours it, with a real MQTT 5 client (rumqttc's `v5`): the CONNACK
//! says what the box does (no retained messages, no shared subscriptions, its packet limit, the
//! client id it made), session expiry is kept, a client's Receive Maximum and Maximum Packet Size
//! hold, a No Local subscription is refused rather than ignored, and a message arrives at the lower
//! of its QoS and the subscription's (docs/ble.md).

use std::{
    sync::mpsc::{channel, Receiver},
    time::{Duration, Instant},
};

use outpost_tests::{BoxProcess, Client};
use rumqttc::v5::{
    mqttbytes::{
        v5::{ConnAck, Filter, Packet, SubscribeReasonCode},
        QoS,
    },
    Event, MqttOptions,
};

use crate::PASSWORD;

const DEVICE: &str = "cam-bien-5";
const DEVICE_PASSWORD: &str = "mat-khau-thiet-bi-5";

/// A box with a device account of `kind` and the port of its broker (port 0: the box picks a free
/// one, shown on its MQTT page).
pub fn box_with_device(data: &std::path::Path, kind: &str, name: &str, password: &str) -> (BoxProcess, u16) {
    let b = BoxProcess::start("run", data, &["--mqtt", "127.0.0.1:0"]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "quan.tri", PASSWORD);
    let page = c.get("/mqtt").body;
    let port: u16 = page
        .split_once(" (MQTT 3.1.1, 5)")
        .and_then(|(before, _)| before.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("the broker's port on the MQTT page");
    let res = c.post_form("/mqtt", &[("name", name), ("password", password), ("kind", kind)]);
    assert_eq!(res.status, 303, "{}", res.body);
    (b, port)
}

/// A connected MQTT 5 client and what it receives.
struct Peer {
    client: rumqttc::v5::Client,
    packets: Receiver<Packet>,
}

impl Peer {
    fn connect(port: u16, id: &str, set: impl FnOnce(&mut MqttOptions)) -> (Peer, ConnAck) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_credentials(DEVICE, DEVICE_PASSWORD);
        o.set_keep_alive(Duration::from_secs(30));
        set(&mut o);
        let (client, mut connection) = rumqttc::v5::Client::new(o, 100);
        let (tx, packets) = channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(_) => return,
                }
            }
        });
        let peer = Peer { client, packets };
        let ack = match peer.next("a CONNACK") {
            Packet::ConnAck(ack) => ack,
            other => panic!("expected a CONNACK, got {other:?}"),
        };
        (peer, ack)
    }

    fn next(&self, what: &str) -> Packet {
        self.packets.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no {what}"))
    }

    /// The messages received within `wait` (other packets skipped).
    fn messages(&self, wait: Duration) -> Vec<rumqttc::v5::mqttbytes::v5::Publish> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.packets.recv_timeout(left) {
                Ok(Packet::Publish(p)) => out.push(p),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        out
    }

    fn subscribe(&self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        self.client.subscribe(filter, qos).expect("subscribe");
        loop {
            if let Packet::SubAck(ack) = self.next("a SUBACK") {
                return ack.return_codes[0];
            }
        }
    }

    fn disconnect(self) {
        let _ = self.client.disconnect();
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn mqtt_5_clients_get_what_the_box_announces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_b, port) = box_with_device(&tmp.path().join("data"), "other", DEVICE, DEVICE_PASSWORD);

    // The CONNACK: no retained messages, no shared subscriptions, the box's packet limit (the
    // message limit, 4 KB, and 4 KB for topic and properties), a client id made for a client that
    // sent none, a session expiry above the box's longest cut down to it.
    let (peer, ack) = Peer::connect(port, "", |o| {
        o.set_session_expiry_interval(Some(7 * 86_400));
    });
    let props = ack.properties.expect("CONNACK properties");
    assert_eq!(props.retain_available, Some(0));
    assert_eq!(props.shared_subscription_available, Some(0));
    assert_eq!(props.max_packet_size, Some(8192));
    assert_eq!(props.session_expiry_interval, Some(86_400));
    assert!(props.assigned_client_identifier.is_some_and(|id| id.starts_with('~')), "an id made");
    peer.disconnect();

    // Session expiry: a session kept 60 s is there to resume; one kept 0 s, or 1 s once past, is not.
    for (expiry, pause, present) in [(60, 0, true), (0, 0, false), (1, 2, false)] {
        let id = format!("phien-{expiry}-{pause}");
        let with = |o: &mut MqttOptions| {
            o.set_clean_start(false);
            o.set_session_expiry_interval(Some(expiry));
        };
        let (first, _) = Peer::connect(port, &id, with);
        assert_eq!(
            first.subscribe("cam-bien/phien", QoS::AtLeastOnce),
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        );
        first.disconnect();
        std::thread::sleep(Duration::from_secs(pause));
        let (again, ack) = Peer::connect(port, &id, with);
        assert_eq!(ack.session_present, present, "expiry {expiry} s, back after {pause} s");
        again.disconnect();
    }

    // No Local: refused (the broker would send the client its own messages back), not ignored.
    let (peer, _) = Peer::connect(port, "khong-cuc-bo", |_| {});
    let mut filter = Filter::new("cam-bien/rieng", QoS::AtMostOnce);
    filter.nolocal = true;
    peer.client.subscribe_many([filter]).expect("subscribe");
    let code = loop {
        if let Packet::SubAck(ack) = peer.next("a SUBACK") {
            break ack.return_codes[0];
        }
    };
    assert_eq!(code, SubscribeReasonCode::ImplementationSpecific);
    peer.disconnect();
}

#[test]
fn an_mqtt_5_client_gets_no_more_than_it_asked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_b, port) = box_with_device(&tmp.path().join("data"), "other", DEVICE, DEVICE_PASSWORD);
    let (publisher, _) = Peer::connect(port, "nguon", |_| {});

    // Receive Maximum 2, acknowledging by hand: 10 messages at QoS 1, two come until one is
    // acknowledged; then one more for each acknowledgement, and in the end every one, in order.
    let (slow, _) = Peer::connect(port, "cham", |o| {
        o.set_receive_maximum(Some(2));
        o.set_manual_acks(true);
    });
    assert_eq!(
        slow.subscribe("cam-bien/nhieu", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    for i in 0..10 {
        publisher.client.publish("cam-bien/nhieu", QoS::AtLeastOnce, false, format!("{i}")).expect("publish");
    }
    let mut got = slow.messages(Duration::from_secs(2));
    assert_eq!(got.len(), 2, "as many unacknowledged as it takes");
    let mut all = Vec::new();
    while all.len() < 10 {
        let first = got.remove(0);
        slow.client.ack(&first).expect("ack");
        all.push(first);
        got.extend(slow.messages(Duration::from_millis(500)));
        assert!(got.len() <= 2, "never more than 2 unacknowledged: {}", got.len());
        assert!(all.len() + got.len() <= 10);
        if got.is_empty() && all.len() < 10 {
            panic!("{} of 10 came", all.len());
        }
    }
    let order: Vec<String> = all.iter().map(|p| String::from_utf8_lossy(&p.payload).into_owned()).collect();
    assert_eq!(order, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    slow.disconnect();

    // Maximum Packet Size 200: a larger message is not sent to it (it would have to drop the
    // connection), the ones after it come.
    let (small, _) = Peer::connect(port, "nho", |o| {
        o.set_max_packet_size(Some(200));
    });
    assert_eq!(
        small.subscribe("cam-bien/co", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    for size in [50, 500, 60] {
        publisher.client.publish("cam-bien/co", QoS::AtLeastOnce, false, vec![b'x'; size]).expect("publish");
    }
    let sizes: Vec<usize> = small.messages(Duration::from_secs(2)).iter().map(|p| p.payload.len()).collect();
    assert_eq!(sizes, vec![50, 60]);
    small.disconnect();
}

#[test]
fn messages_arrive_at_the_lower_of_their_qos_and_the_subscriptions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_b, port) = box_with_device(&tmp.path().join("data"), "other", DEVICE, DEVICE_PASSWORD);
    let (publisher, _) = Peer::connect(port, "nguon-qos", |_| {});
    let (at_1, _) = Peer::connect(port, "dang-ky-1", |_| {});
    let (at_2, _) = Peer::connect(port, "dang-ky-2", |_| {});
    assert_eq!(
        at_1.subscribe("cam-bien/qos", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    assert_eq!(
        at_2.subscribe("cam-bien/qos", QoS::ExactlyOnce),
        SubscribeReasonCode::Success(QoS::ExactlyOnce)
    );
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtMostOnce] {
        publisher.client.publish("cam-bien/qos", qos, false, format!("{qos:?}")).expect("publish");
    }
    // Sorted: a QoS 2 message is passed on once its exchange with the publisher is done, so it may
    // come after a later QoS 0 one (MQTT orders messages of one QoS only).
    let sorted = |mut list: Vec<(String, QoS)>| {
        list.sort_by_key(|(text, qos)| (text.clone(), *qos as u8));
        list
    };
    let got = |peer: &Peer| {
        let list = peer.messages(Duration::from_secs(2));
        sorted(list.iter().map(|p| (String::from_utf8_lossy(&p.payload).into_owned(), p.qos)).collect())
    };
    let want = |cap: QoS| {
        sorted(
            [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtMostOnce]
                .iter()
                .map(|q| (format!("{q:?}"), if (*q as u8) < (cap as u8) { *q } else { cap }))
                .collect(),
        )
    };
    assert_eq!(got(&at_1), want(QoS::AtLeastOnce), "under a QoS 1 subscription");
    assert_eq!(got(&at_2), want(QoS::ExactlyOnce), "under a QoS 2 subscription");
    // The broker is not left waiting for acknowledgements of QoS 0 messages: more come.
    for i in 0..150 {
        publisher.client.publish("cam-bien/qos", QoS::AtMostOnce, false, format!("{i}")).expect("publish");
    }
    assert_eq!(at_1.messages(Duration::from_secs(3)).len(), 150);
}
