//! The wristband part of a quarantine day, through the real binary on its manual clock, with a site
//! gateway publishing Theengs payloads to the embedded broker (Debian's `mosquitto_pub`) and the modem
//! simulator as the box's modem:
//! - bands seen before they are registered are listed as unknown, then registered from that list;
//! - hand-over refused for a flat band and for a band not seen in the last minute, accepted otherwise;
//! - every gateway reports on itself each minute (so none is down: see `gateways.rs` for that);
//! - a person leaves: no alert before the configured time, one severe away alert (and an SMS to the
//!   on-duty phone) at it, resolved by itself when the band is seen again;
//! - a strap opened: one alert, not repeated while it stays open, not even after a restart;
//! - after a restart, a worn band that is never seen again still becomes away;
//! - a battery running low; the person released, the band returned, disinfected and ready again;
//! - the presence timeline shows the day; raw sightings are kept on the box.

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{district_csv, free_port, mqtt_publish, wait_until, write_config, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

/// Every room's gateway has this password; its device name is the room's (a gateway publishes only
/// under its own name).
const GW_PASSWORD: &str = "mat-khau-gateway-1";
const ROOMS: [&str; 5] = ["cong-chinh", "hanh-lang", "phong-a12", "phong-a14", "quay-tiep-nhan"];

struct Site {
    port: u16,
    published: u64,
}

impl Site {
    /// A Theengs gateway in room `room` reports band `mac` (12 hex digits) with its battery and strap.
    fn see(&mut self, room: &str, mac: &str, battery: u8, strap_closed: bool) {
        let payload = json!({
            "id": mac, "rssi": -60,
            "manufacturerdata": format!("ffff01{battery:02x}{:02x}0100", u8::from(strap_closed)),
        })
        .to_string();
        assert!(mqtt_publish(self.port, room, GW_PASSWORD, &format!("home/{room}/BTtoMQTT/{mac}"), &payload));
        self.published += 1;
    }

    /// Every room's gateway reports on itself (OpenMQTTGateway's `SYStoMQTT`), as gateways do
    /// every minute or two whether or not they hear bands: none of them is down.
    fn alive(&self) {
        for room in ROOMS {
            let payload =
                r#"{"uptime":600,"version":"v1.8.1","freemem":112340,"rssi":-67,"ip":"192.168.4.30"}"#;
            assert!(mqtt_publish(self.port, room, GW_PASSWORD, &format!("home/{room}/SYStoMQTT"), payload));
        }
    }

    /// Waits until the box has taken every sighting published so far.
    fn settle(&self, c: &mut Client) {
        wait_until("the sightings to reach the presence thread", || {
            c.get("/api/v1/presence").json()["stats"]["sightings"].as_u64() == Some(self.published)
        });
    }
}

fn alerts(c: &mut Client, kind: &str, state: &str) -> Vec<Value> {
    c.get(&format!("/api/v1/alerts?state={state}"))
        .json()
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == kind)
        .cloned()
        .collect()
}

fn all_alerts(c: &mut Client, kind: &str) -> usize {
    ["open", "acknowledged", "resolved"].iter().map(|s| alerts(c, kind, s).len()).sum()
}

const B1: &str = "D4E6F1A2B301";
const B2: &str = "D4E6F1A2B302";
const B3: &str = "D4E6F1A2B303";
const FLAT: &str = "D4E6F1A2B304";
const SILENT: &str = "D4E6F1A2B305";

fn id(mac: &str) -> String {
    (0..6).map(|i| &mac[i * 2..i * 2 + 2]).collect::<Vec<_>>().join(":")
}

#[test]
fn a_quarantine_day_with_bands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("modem simulator");
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            "[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 5\n[alerts]\non_duty_phones = [\"0905999888\"]\n\
             [mqtt]\nlisten = \"127.0.0.1:{port}\"\n[bands]\naway_after_minutes = 10\nsample_seconds = 1\n",
            sim.path().display()
        ),
    );
    // 07:00 at the site.
    let mut b = BoxProcess::start(
        "run",
        &data,
        &["--clock", "2026-11-21T00:00:00Z", "--config", &config, "--mqtt", &format!("127.0.0.1:{port}")],
    );
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "lan.nguyen", PASSWORD);
    for room in ROOMS {
        assert_eq!(c.post_form("/mqtt", &[("name", room), ("password", GW_PASSWORD)]).status, 303);
    }
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(5, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let people = c.people_ids();
    let mut site = Site { port, published: 0 };

    // Bands switched on at the desk are seen before anyone registers them: unknown, no alert.
    for (mac, battery) in [(B1, 95), (B2, 90), (B3, 88), (FLAT, 50), (SILENT, 99)] {
        site.see("quay-tiep-nhan", mac, battery, true);
    }
    site.settle(&mut c);
    let unknown = c.get("/api/v1/bands/unknown").json();
    assert_eq!(unknown.as_array().map(Vec::len), Some(5), "{unknown}");
    assert!(c.get("/bands").body.contains(&id(B1)), "the pool page lists unknown bands to register");
    // Registered from the list (the page's button posts the id), one by typing it into the API.
    for mac in [B1, B2, B3, FLAT] {
        let res = c.post_form("/bands", &[("id", &id(mac))]);
        assert_eq!(res.status, 303, "{}", res.body);
    }
    assert_eq!(
        c.post_json("/api/v1/bands", &json!({"id": SILENT.to_lowercase(), "label": "05"})).status,
        201
    );
    assert_eq!(c.post_json("/api/v1/bands", &json!({"id": SILENT})).status, 409, "registered twice");
    assert_eq!(c.post_json("/api/v1/bands", &json!({"id": "vong 7"})).status, 422);
    assert_eq!(c.get("/api/v1/bands/unknown").json().as_array().map(Vec::len), Some(0));
    assert_eq!(all_alerts(&mut c, "band_away") + all_alerts(&mut c, "strap_opened"), 0);

    // Hand-over: refused for a flat band, and for one not seen in the last minute.
    let res = c.post_json(&format!("/api/v1/bands/{}/hand-over", id(FLAT)), &json!({"person_id": people[3]}));
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("50%"), "{}", res.body);
    let page = c.post_form(&format!("/bands/{}/hand-over", id(FLAT)), &[("person", &people[3])]);
    assert_eq!(page.status, 409);
    assert!(page.body.contains("cần ít nhất 80%"), "the page says why");
    site.alive();
    b.clock("advance 2m");
    for mac in [B1, B2, B3] {
        site.see("quay-tiep-nhan", mac, 95, true);
    }
    site.settle(&mut c);
    let res =
        c.post_json(&format!("/api/v1/bands/{}/hand-over", id(SILENT)), &json!({"person_id": people[4]}));
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("60"), "{}", res.body);
    for (mac, person) in [(B1, &people[0]), (B2, &people[1]), (B3, &people[2])] {
        let res = c.post_json(&format!("/api/v1/bands/{}/hand-over", id(mac)), &json!({"person_id": person}));
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["state"], "assigned");
    }
    let res = c.post_json(&format!("/api/v1/bands/{}/hand-over", id(FLAT)), &json!({"person_id": people[0]}));
    assert_eq!(res.status, 409, "one band per person");

    // People go to their rooms; the person wearing B2 leaves the site. Minute by minute, the others
    // keep being seen.
    let mut away_at = None;
    for minute in 1..=12 {
        site.see("phong-a12", B1, 94, true);
        site.see("phong-a14", B3, 88, true);
        if minute == 1 {
            site.see("hanh-lang", B2, 90, true);
        }
        site.settle(&mut c);
        site.alive();
        b.clock("advance 1m");
        let away = alerts(&mut c, "band_away", "open");
        if away_at.is_none() && !away.is_empty() {
            away_at = Some(minute);
            assert_eq!(away.len(), 1);
            assert_eq!(away[0]["person_id"], people[1].as_str());
            assert_eq!(away[0]["severity"], "severe");
        }
    }
    // Last seen at 07:02, away once ten minutes have passed: after the 10th step, not the 9th.
    assert_eq!(away_at, Some(10), "away exactly when the configured time has passed");
    wait_until("the away SMS to reach the on-duty phone through the modem", || {
        sim.sent().iter().any(|m| m.to.ends_with("905999888") && m.text.contains("hanh-lang"))
    });
    // They come back: the alert closes by itself.
    site.see("cong-chinh", B2, 89, true);
    site.settle(&mut c);
    wait_until("the away alert to be resolved", || alerts(&mut c, "band_away", "resolved").len() == 1);
    let resolved = &alerts(&mut c, "band_away", "resolved")[0];
    assert_eq!(resolved["resolved_by"], "outpost");
    assert!(resolved["resolution_note"].as_str().unwrap_or("").contains("cong-chinh"));

    // A strap opened: one alert, however often the band repeats it.
    for _ in 0..3 {
        site.see("phong-a14", B3, 88, false);
    }
    site.settle(&mut c);
    wait_until("a strap alert", || alerts(&mut c, "strap_opened", "open").len() == 1);
    assert!(c.get(&format!("/bands/{}", id(B3))).body.contains("Dây đeo bị mở"));

    // A restart: the strap still open raises nothing new; B1, never seen again, becomes away.
    assert!(b.stop().success());
    let mut b = BoxProcess::start(
        "run",
        &data,
        &["--clock", "2026-11-21T00:16:00Z", "--config", &config, "--mqtt", &format!("127.0.0.1:{port}")],
    );
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303);
    site.published = 0;
    for minute in 1..=11 {
        site.see("phong-a14", B3, 88, false);
        site.see("hanh-lang", B2, 89, true);
        site.settle(&mut c);
        site.alive();
        b.clock("advance 1m");
        if minute < 10 {
            assert!(alerts(&mut c, "band_away", "open").is_empty(), "minute {minute}");
        }
    }
    assert_eq!(all_alerts(&mut c, "strap_opened"), 1, "not raised again after the restart");
    let away = alerts(&mut c, "band_away", "open");
    assert_eq!(away.len(), 1, "{away:?}");
    assert_eq!(away[0]["person_id"], people[0].as_str(), "the band nobody saw after the restart");

    // B1 turns up again with a flat battery: the away alert closes, a battery alert opens.
    site.see("phong-a12", B1, 15, true);
    site.settle(&mut c);
    wait_until("a battery alert", || alerts(&mut c, "band_battery_low", "open").len() == 1);
    assert_eq!(alerts(&mut c, "band_away", "open").len(), 0);

    // The person wearing B1 is released: the band is returned, disinfected, ready again.
    let res = c.post_json(&format!("/api/v1/people/{}/status", people[0]), &json!({"status": "released"}));
    assert_eq!(res.status, 200, "{}", res.body);
    let band = c.get(&format!("/api/v1/bands/{}", id(B1))).json();
    assert_eq!((band["state"].as_str(), band["person_id"].as_str()), (Some("returned"), None));
    let res = c.post_json(&format!("/api/v1/bands/{}/state", id(B1)), &json!({"state": "ready"}));
    assert_eq!(res.status, 409, "a returned band is disinfected first: {}", res.body);
    for to in ["disinfecting", "ready"] {
        let res = c.post_form(&format!("/bands/{}/state", id(B1)), &[("state", to), ("note", "cồn 70%")]);
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let band = c.get(&format!("/api/v1/bands/{}", id(B1))).json();
    let history: Vec<&str> =
        band["history"].as_array().expect("history").iter().filter_map(|h| h["to"].as_str()).collect();
    assert_eq!(history, vec!["stock", "assigned", "returned", "disinfecting", "ready"]);
    assert!(band["history"].as_array().expect("history").iter().all(|h| h["by"] == "lan.nguyen"));

    // The day of the person who left, as a picture and as intervals.
    let timeline = c.get(&format!("/people/{}/presence?date=2026-11-21", people[1]));
    assert_eq!(timeline.status, 200);
    assert!(
        timeline.body.contains("<svg") && timeline.body.contains(r#"data-state="away""#),
        "{}",
        timeline.body
    );
    let days = c.get(&format!("/api/v1/people/{}/presence?date=2026-11-21", people[1])).json();
    let states: Vec<&str> = days["intervals"]
        .as_object()
        .expect("intervals")
        .values()
        .filter_map(|i| i["state"].as_str())
        .collect();
    assert!(states.windows(2).any(|w| w == ["unseen", "away"]), "{states:?}");
    assert!(states.windows(2).any(|w| w == ["away", "present"]), "back: {states:?}");
    // Raw sightings stay on the box, on the band's page.
    let page = c.get(&format!("/bands/{}", id(B3))).body;
    assert!(page.contains("phong-a14") && page.contains("dBm"), "raw sightings listed");
    let pool = c.get("/bands").body;
    assert!(pool.contains("band-counts") && pool.contains(&id(B1)));
    assert!(b.stop().success());
}
