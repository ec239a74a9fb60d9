//! A room gateway fails with 300 people's bands in its room, through the real binary on its manual
//! clock, real MQTT clients (rumqttc, as the gateways) and the modem simulator as the box's modem:
//! - a blip (the connection dropped and back at once) raises no alert;
//! - an OpenMQTTGateway's connection drops: its last will (`home/<gw>/LWT` "offline") reaches the
//!   box → a minute later, exactly one scanner-down alert and one SMS to the on-duty phone, the 300 bands "not
//!   covered", no band-away alert and no band SMS in the following twelve minutes; the gateway back
//!   (as ESPresense, `espresense/rooms/<room>/status` "online") → the alert is resolved by the box
//!   and every band is present again;
//! - the same gateway goes silent, its connection still open: down after `scanner_silent_seconds`,
//!   one more alert, still no band alert; its telemetry back → resolved;
//! - presence resumes for real: a band nobody hears after the gateway's return is away ten minutes
//!   later, like any band;
//! - a gateway that flaps (down again within 15 minutes of coming back) reopens its alert, without
//!   another SMS.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{free_port, site_with_people, wait_until, BoxProcess, Client};
use rumqttc::{Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

use crate::PASSWORD;

const ROOM: &str = "phong-a12";
const GW_PASSWORD: &str = "mat-khau-gateway-1";
const BANDS: usize = 300;

/// A room's gateway: one MQTT connection with its last will, as the firmware keeps it.
struct Gateway {
    client: rumqttc::Client,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Connects as the room's gateway with `will` ("offline", retained, as the firmware sets it)
    /// and says "online" there, as the firmware does after each connect.
    fn connect(port: u16, client_id: &str, will: &str) -> Gateway {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_credentials(ROOM, GW_PASSWORD);
        o.set_keep_alive(Duration::from_secs(15));
        o.set_last_will(LastWill::new(will, "offline", QoS::AtMostOnce, true));
        let (client, mut connection) = rumqttc::Client::new(o, 512);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // Until told to stop; then the connection is dropped without a DISCONNECT, as when a
            // gateway loses power or its Wi-Fi and the broker notices.
            while !flag.load(Ordering::SeqCst) {
                match connection.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        let _ = tx.send(());
                    }
                    Ok(Err(e)) => {
                        eprintln!("The gateway's connection ended: {e}");
                        return;
                    }
                    _ => {}
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("CONNACK");
        let gw = Gateway { client, stop, thread: Some(thread) };
        gw.publish(will, "online");
        gw
    }

    fn publish(&self, topic: &str, payload: &str) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).expect("publish");
    }

    /// The connection drops (no DISCONNECT): the broker publishes the gateway's last will.
    fn cut(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("connection thread");
        }
    }
}

fn mac(i: usize) -> String {
    format!("D4E6F1{i:06X}")
}

fn band_id(i: usize) -> String {
    let m = mac(i);
    (0..6).map(|k| &m[k * 2..k * 2 + 2]).collect::<Vec<_>>().join(":")
}

/// The site: the box, its client, and how many sightings have been published so far.
struct Site {
    b: BoxProcess,
    c: Client,
    published: u64,
}

impl Site {
    /// The gateway reports bands `bands` in OpenMQTTGateway's format (with battery and strap).
    fn theengs(&mut self, gw: &Gateway, bands: std::ops::Range<usize>) {
        for i in bands {
            let payload = json!({"id": band_id(i), "rssi": -58, "manufacturerdata": "ffff015f010100"});
            gw.publish(&format!("home/{ROOM}/BTtoMQTT/{}", mac(i)), &payload.to_string());
            self.published += 1;
        }
        self.settle();
    }

    /// The gateway reports bands `bands` in ESPresense 4.x's format.
    fn espresense(&mut self, gw: &Gateway, bands: std::ops::Range<usize>) {
        for i in bands {
            let id = format!("mac:{}", mac(i).to_lowercase());
            let payload = json!({"id": id, "mac": mac(i).to_lowercase(), "rssi@1m": -59, "rssi": -61.4, "distance": 1.2});
            gw.publish(&format!("espresense/devices/{id}/{ROOM}"), &payload.to_string());
            self.published += 1;
        }
        self.settle();
    }

    fn settle(&mut self) {
        let want = self.published;
        let c = &mut self.c;
        wait_until("the sightings to reach the presence thread", || {
            c.get("/api/v1/presence").json()["stats"]["sightings"].as_u64() == Some(want)
        });
    }

    fn minute(&mut self) {
        self.b.clock("advance 1m");
    }

    /// A minute in which the gateway reports `bands` every 30 seconds (ESPresense).
    fn heard_for_a_minute(&mut self, gw: &Gateway, bands: std::ops::Range<usize>) {
        for _ in 0..2 {
            self.espresense(gw, bands.clone());
            self.b.clock("advance 30s");
        }
    }

    fn alerts(&mut self, kind: &str) -> Vec<Value> {
        ["open", "acknowledged", "resolved"]
            .iter()
            .flat_map(|s| {
                self.c
                    .get(&format!("/api/v1/alerts?state={s}"))
                    .json()
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|a| a["kind"] == kind)
            .collect()
    }

    /// How many of the room's bands are in `state`.
    fn bands_in(&mut self, state: &str) -> usize {
        let p = self.c.get("/api/v1/presence").json();
        p["bands"].as_array().map_or(0, |b| b.iter().filter(|b| b["state"] == state).count())
    }

    fn scanner(&mut self) -> Value {
        let list = self.c.get("/api/v1/scanners").json();
        list["scanners"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["name"] == ROOM).cloned())
            .unwrap_or_default()
    }
}

#[test]
fn a_gateway_that_dies_is_one_alert_not_three_hundred() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("modem simulator");
    let port = free_port();
    let extra = format!(
        "[alerts]\non_duty_phones = [\"0905999888\"]\n[mqtt]\nlisten = \"127.0.0.1:{port}\"\n\
         [bands]\nscanner_silent_seconds = 180\naway_after_minutes = 10\n"
    );
    let mqtt = format!("127.0.0.1:{port}");
    let (b, mut c, people) = site_with_people(
        dir.path(),
        sim.path(),
        &extra,
        "2026-11-21T00:00:00Z",
        BANDS,
        (PASSWORD, &["--mqtt", &mqtt]),
    );
    assert_eq!(c.post_form("/mqtt", &[("name", ROOM), ("password", GW_PASSWORD)]).status, 303);
    let mut site = Site { b, c, published: 0 };

    // An OpenMQTTGateway in the room hears 300 bands; each is registered and handed over.
    let omg = Gateway::connect(port, "omg-a12", &format!("home/{ROOM}/LWT"));
    site.theengs(&omg, 0..BANDS);
    for (i, person) in people.iter().enumerate() {
        let id = band_id(i);
        assert_eq!(site.c.post_json("/api/v1/bands", &json!({"id": id})).status, 201);
        let res = site.c.post_json(&format!("/api/v1/bands/{id}/hand-over"), &json!({"person_id": person}));
        // Right after its registration too: the band is never lost between unknown and known.
        assert_eq!(res.status, 200, "{i}: {}", res.body);
    }
    site.theengs(&omg, 0..BANDS);
    assert_eq!(site.bands_in("present"), BANDS);
    assert_eq!(site.scanner()["health"], "up");

    // A blip: its connection drops and it is back at once (a Wi-Fi hiccup, a reboot). Down, its
    // bands not covered for that moment, but no alert: it was back within the alert's minute.
    omg.cut();
    wait_until("the gateway's last will to reach the box", || site.scanner()["health"] == "down");
    let omg = Gateway::connect(port, "omg-a12", &format!("home/{ROOM}/LWT"));
    wait_until("the gateway to be back", || site.scanner()["health"] == "up");
    site.theengs(&omg, 0..BANDS);
    site.b.clock("advance 30s");
    site.theengs(&omg, 0..BANDS);
    site.b.clock("advance 30s");
    assert!(site.alerts("scanner_down").is_empty(), "no alert for a blip");

    // Its connection drops for good: its last will says so; the alert after a minute.
    omg.cut();
    wait_until("the gateway's last will to reach the box", || site.scanner()["health"] == "down");
    assert_eq!(site.scanner()["reason"], "offline");
    assert!(site.alerts("scanner_down").is_empty(), "not within its first minute");
    site.minute();
    let down = site.alerts("scanner_down");
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!((&down[0]["subject"], &down[0]["severity"]), (&json!(ROOM), &json!("severe")));
    // Written in both languages; each page shows its own.
    let detail = down[0]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("300 vòng") && detail.contains("300 bands not watched"), "{detail}");
    assert!(detail.contains("the gateway said it went offline"), "{detail}");
    for _ in 0..11 {
        site.minute();
    }
    assert_eq!(site.bands_in("not_covered"), BANDS, "not covered, not unseen or away");
    assert_eq!(site.alerts("band_away").len(), 0, "no band alerts while the scanner is down");
    assert_eq!(site.alerts("scanner_down").len(), 1, "one alert for the whole outage");
    wait_until("the scanner-down SMS to reach the on-duty phone", || {
        sim.sent().iter().any(|m| m.text.contains("may quet phong-a12 mat ket noi"))
    });
    let health = site.c.get("/api/v1/health").json();
    assert!(health.to_string().contains("scanner_down"), "{health}");
    assert!(site.c.get("/bands").body.contains("Mất kết nối"), "the pool page shows the scanner down");
    assert!(site.c.get("/metrics").body.contains("outpost_scanners_down 1"));

    // Back, now running ESPresense: the alert closes by itself and every band is present again.
    let esp = Gateway::connect(port, "espresense-a12", &format!("espresense/rooms/{ROOM}/status"));
    wait_until("the scanner to be back", || site.scanner()["health"] == "up");
    wait_until("the alert to be resolved by the box", || {
        site.alerts("scanner_down").iter().all(|a| a["state"] == "resolved" && a["resolved_by"] == "outpost")
    });
    site.espresense(&esp, 0..BANDS);
    assert_eq!(site.bands_in("present"), BANDS);
    for _ in 0..16 {
        site.heard_for_a_minute(&esp, 0..BANDS);
    }

    // Silent, its connection still open: down after three minutes, one more alert, no band alert.
    for _ in 0..13 {
        site.minute();
    }
    assert_eq!(site.scanner()["reason"], "silent");
    assert_eq!(site.bands_in("not_covered"), BANDS);
    assert_eq!(site.alerts("band_away").len(), 0, "a silent scanner raises no band alerts either");
    assert_eq!(site.alerts("scanner_down").len(), 2);
    // It speaks again (its telemetry, as ESPresense sends every 15 s): back, resolved.
    let telemetry = r#"{"ip":"192.168.4.21","uptime":960,"firm":"esp32","rssi":-61,"ver":"v4.1.2","adverts":52341,"freeHeap":81234,"maxHeap":65524}"#;
    esp.publish(&format!("espresense/rooms/{ROOM}/telemetry"), telemetry);
    wait_until("the silent scanner to be back", || site.scanner()["health"] == "up");
    assert_eq!(site.scanner()["telemetry"]["version"], "v4.1.2");
    wait_until("the second alert to be resolved", || {
        site.alerts("scanner_down").iter().all(|a| a["state"] == "resolved")
    });

    // Presence resumes for real: the last band is not heard again and is away ten minutes after
    // the gateway's return, like any band; the others stay present.
    let mut away_at = None;
    for minute in 1..=11 {
        site.heard_for_a_minute(&esp, 0..BANDS - 1);
        if away_at.is_none() && !site.alerts("band_away").is_empty() {
            away_at = Some(minute);
        }
    }
    assert_eq!(away_at, Some(10));
    let away = site.alerts("band_away");
    assert_eq!(away.len(), 1, "{away:?}");
    assert_eq!(away[0]["person_id"], people[BANDS - 1].as_str());
    site.espresense(&esp, 0..BANDS - 1);
    assert_eq!(site.bands_in("present"), BANDS - 1);
    wait_until("the away SMS", || sim.sent().iter().any(|m| m.text.contains("khong duoc thay")));

    // Flapping: silent again five minutes later, within a quarter of an hour of coming back: the
    // same alert reopens, without another SMS.
    for _ in 0..5 {
        site.minute();
    }
    let down = site.alerts("scanner_down");
    assert_eq!(down.len(), 2, "{down:?}");
    assert_eq!(down.iter().filter(|a| a["state"] == "open").count(), 1, "the last one reopened: {down:?}");
    let sent = sim.sent();
    let scanner_sms = sent.iter().filter(|m| m.text.contains("may quet phong-a12")).count();
    let band_sms = sent.iter().filter(|m| m.text.contains("khong duoc thay")).count();
    assert_eq!((scanner_sms, band_sms), (2, 1), "{sent:?}");

    // Taken away for good: an administrator forgets it, which resolves its alert; an unknown name
    // is not found. (Its last will first, so that it cannot arrive after.)
    let statuses = |c: &mut Client| c.get("/api/v1/presence").json()["counters"]["status"].as_u64();
    let before = statuses(&mut site.c);
    esp.cut();
    wait_until("its last will", || statuses(&mut site.c) > before);
    let res = site.c.try_delete(&format!("/api/v1/scanners/{ROOM}")).expect("answer");
    assert_eq!(res.status, 204, "{}", res.body);
    wait_until("the scanner to be forgotten", || site.scanner().is_null());
    assert!(site.alerts("scanner_down").iter().all(|a| a["state"] == "resolved"));
    assert_eq!(site.c.try_delete("/api/v1/scanners/khong-co").expect("answer").status, 404);
}

/// The box's own adapter, through btleplug against a mock BlueZ on a private D-Bus (the helper of
/// `ble.rs`): its scan goes quiet with a worn band in range → one scanner-down alert about the
/// adapter, the band not covered, no band alert; it hears again → resolved, present.
#[test]
fn the_box_adapter_going_quiet_is_one_alert_too() {
    let mut helper = std::process::Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../drivers/ble/tests/bluez_mock.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is missing");
    let mut stdin = helper.stdin.take().expect("stdin");
    let mut stdout = std::io::BufReader::new(helper.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("read");
    let bus =
        first.strip_prefix("bus ").expect("a mock BlueZ (scripts/test.sh installs it)").trim().to_owned();
    let mut send = move |command: &str| {
        use std::io::{BufRead, Write};
        writeln!(stdin, "{command}").expect("write");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        assert!(line.starts_with("ok"), "{command}: {line}");
    };
    const BAND: &str = "D4:E6:F1:A2:B3:C8";
    send("adapter hci0");
    send(&format!("device hci0 {BAND}"));

    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("modem simulator");
    let config = outpost_tests::write_config(
        dir.path(),
        &format!(
            "[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 1\n[alerts]\non_duty_phones = [\"0905999888\"]\n\
             [bands]\nadapter = \"hci0\"\nwatchdog_seconds = 600\n",
            sim.path().display()
        ),
    );
    let env = format!("DBUS_SYSTEM_BUS_ADDRESS={bus}");
    // Today at the site, so that the person admitted today is in quarantine.
    let clock = format!("{}T01:00:00Z", chrono::Utc::now().date_naive());
    let mut b = BoxProcess::start_wrapped(
        &["env", &env],
        "run",
        &dir.path().join("data"),
        &["--config", &config, "--clock", &clock],
    );
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let (person, _) = c.admit("Nguyễn Văn Bình", "0905123456", "079123456789");
    // The band advertises (95 %, strap closed) until the adapter has it.
    let heard = |send: &mut dyn FnMut(&str), rssi: i32| send(&format!("adv {BAND} {rssi} ffff015f010100"));
    let mut rssi = -60;
    wait_until("the adapter to hear the band", || {
        rssi -= 1;
        heard(&mut send, rssi);
        c.get("/api/v1/bands/unknown").json().as_array().is_some_and(|u| !u.is_empty())
    });
    assert_eq!(c.post_json("/api/v1/bands", &json!({"id": BAND})).status, 201);
    heard(&mut send, -58);
    wait_until("the band to be handed over", || {
        c.post_json(&format!("/api/v1/bands/{BAND}/hand-over"), &json!({"person_id": person})).status == 200
    });
    let site = c.get("/api/v1/scanners").json()["scanners"][0].clone();
    assert_eq!(site["health"], "up", "{site}");
    let name = site["name"].as_str().expect("the adapter's scanner name").to_owned();

    // The adapter goes quiet (a stalled scan: BlueZ delivers nothing more). The advertisements
    // still on their way through D-Bus arrive first: the manual clock jumps minutes in
    // milliseconds, and a late one would be stamped minutes after it was sent.
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..12 {
        b.clock("advance 1m");
    }
    let scanners = c.get("/api/v1/scanners").json();
    assert_eq!(
        (&scanners["scanners"][0]["health"], &scanners["scanners"][0]["reason"]),
        (&json!("down"), &json!("silent"))
    );
    let alerts: Vec<Value> =
        c.get("/api/v1/alerts?state=open").json().as_array().cloned().unwrap_or_default();
    let day = c.get(&format!("/api/v1/people/{person}/presence")).body;
    let kinds: Vec<&str> = alerts.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        vec!["scanner_down"],
        "one alert about the adapter, none about the band: {alerts:?} {scanners} {day}"
    );
    assert_eq!(alerts[0]["subject"], name.as_str());
    let presence = c.get("/api/v1/presence").json();
    assert_eq!(presence["bands"][0]["state"], "not_covered", "{presence}");

    // It hears again: the alert closes, the band is present.
    heard(&mut send, -57);
    wait_until("the adapter's alert to be resolved", || {
        c.get("/api/v1/alerts?state=resolved")
            .json()
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["kind"] == "scanner_down"))
    });
    assert_eq!(c.get("/api/v1/presence").json()["bands"][0]["state"], "present");
    assert!(b.stop().success());
    drop(send);
    let _ = helper.wait();
}
