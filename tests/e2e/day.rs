//! One quarantine day, driven through the real binary on its manual clock, with the modem simulator on
//! a pseudo-terminal as the box's modem: 50 people imported from a district list; most declare on time,
//! some late (exactly one SMS reminder each, per round, leaving through the modem), one of them by SMS
//! from a basic phone, some never (exactly one alert each, per round), one with a fever (an alert within
//! a second, and an SMS to the on-duty phone when severe); the box restarted mid-day repeats nothing;
//! alerts acknowledged and resolved.

use std::time::{Duration, Instant};

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{district_csv, wait_until, write_config, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

const ON_TIME: std::ops::Range<usize> = 0..40;
const LATE: std::ops::Range<usize> = 40..45;
const NEVER: std::ops::Range<usize> = 45..49;
const FEVER: usize = 49;

fn at(local: &str) -> String {
    format!("set 2026-11-21T{local}:00+07:00")
}

fn count(line: &str, key: &str) -> usize {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

fn declare(c: &mut Client, token: &str, temperature: &str) -> Value {
    let res = c.post_json(
        &format!("/api/v1/declare/{token}"),
        &json!({"temperature": temperature, "spo2": "97", "symptoms": []}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()
}

#[test]
fn a_quarantine_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("modem simulator");
    let config = write_config(
        dir.path(),
        &format!(
            "[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 5\n[alerts]\non_duty_phones = [\"0905999888\"]\n",
            sim.path().display()
        ),
    );
    let clock_start = ["--clock", "2026-11-20T23:00:00Z", "--config", &config]; // 06:00 at the site
    let mut b = BoxProcess::start("run", &data, &clock_start);
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup link on first start"), "lan.nguyen", PASSWORD);

    let csv = district_csv(50, "21/11/2026", "04/12/2026");
    let res = staff.post_bytes("/api/v1/people/import", "text/csv", &csv);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["imported"], 50);
    let list = staff.get("/api/v1/people").json();
    let mut people: Vec<(String, String, String)> = Vec::new();
    for p in list.as_array().expect("array") {
        let id = p["id"].as_str().expect("id").to_owned();
        let full = staff.get(&format!("/api/v1/people/{id}")).json();
        let phone = full["phone"].as_str().expect("phone").to_owned();
        people.push((id, full["declare_token"].as_str().expect("token").to_owned(), phone));
    }
    // Row i of the list has phone(i): index people by their row.
    people.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(people[7].2, phone(7));
    assert_eq!(people.len(), 50);
    let mut person = Client::new(&b.url);

    for (round, slot) in ["08:00", "16:00", "21:00"].into_iter().enumerate() {
        let (h, _) = slot.split_once(':').expect("slot");
        let h: u32 = h.parse().expect("hour");
        b.clock(&at(&format!("{h:02}:05")));
        for i in ON_TIME {
            let d = declare(&mut person, &people[i].1, "36.8");
            assert_eq!(d["on_time"], true);
            assert_eq!(d["alerted"], false);
        }
        if round == 0 {
            let started = Instant::now();
            let d = declare(&mut person, &people[FEVER].1, "38.6");
            assert_eq!(d["alerted"], true);
            let alerts = staff.get("/api/v1/alerts?state=open").json();
            let fever = alerts
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["kind"] == "fever")
                .expect("fever alert");
            assert_eq!(fever["person_id"], people[FEVER].0.as_str());
            assert!(started.elapsed() < Duration::from_secs(1), "fever alert took {:?}", started.elapsed());
        } else {
            declare(&mut person, &people[FEVER].1, "37.0");
        }
        let r = b.clock(&at(&format!("{h:02}:29")));
        assert_eq!(count(&r, "reminders"), 0, "no reminder inside the grace period: {r}");
        let r = b.clock(&at(&format!("{h:02}:31")));
        assert_eq!(count(&r, "reminders"), LATE.len() + NEVER.len(), "{r}");
        let reminded: Vec<usize> = LATE.chain(NEVER).collect();
        wait_until("the reminders to leave through the modem", || {
            let sent = sim.sent();
            reminded.iter().all(|i| {
                sent.iter().filter(|m| m.to == phone(*i) && m.text.contains(&people[*i].1)).count()
                    == round + 1
            })
        });
        if round == 1 {
            // A power cut after the reminders went out: the restarted box repeats none of them.
            b.kill9();
            b = BoxProcess::start("run", &data, &["--clock", "2026-11-21T09:31:00Z", "--config", &config]);
            assert!(b.setup_link.is_none(), "no setup link once an administrator exists");
            staff = Client::new(&b.url);
            assert_eq!(staff.login("lan.nguyen", PASSWORD).status, 303);
            person = Client::new(&b.url);
            let r = b.clock("tick");
            assert_eq!(count(&r, "reminders"), 0, "{r}");
        }
        b.clock(&at(&format!("{h:02}:45")));
        for i in LATE.skip(1) {
            let d = declare(&mut person, &people[i].1, "36.9");
            assert_eq!(d["on_time"], false, "a declaration after the grace period is late");
        }
        // The first late person has a basic phone: they answer the reminder by SMS.
        // (Each round's text differs: an identical text from the same number in the same second is
        // taken for a modem's duplicate.)
        sim.receive(&format!("+84{}", &phone(LATE.start)[1..]), &format!("KB 36,{} ho", 6 + round));
        wait_until("the SMS declaration", || {
            let decls = staff.get(&format!("/api/v1/people/{}/declarations", people[LATE.start].0)).json();
            decls.as_array().is_some_and(|d| d.len() == round + 1 && d[0]["channel"] == "sms")
        });
        wait_until("the confirmation SMS", || {
            sim.sent()
                .iter()
                .filter(|m| m.to == phone(LATE.start) && m.text.contains("Da nhan khai bao"))
                .count()
                == round + 1
        });
        let r = b.clock(&at(&format!("{h:02}:59")));
        assert_eq!(count(&r, "alerts"), 0, "{r}");
        let r = b.clock(&at(&format!("{:02}:31", h + 1)));
        assert_eq!(count(&r, "alerts"), NEVER.len(), "{r}");
        assert_eq!(count(&r, "reminders"), 0, "{r}");
    }
    let r = b.clock(&at("23:59"));
    assert_eq!((count(&r, "reminders"), count(&r, "alerts")), (0, 0), "{r}");

    // Exactly one reminder per late or silent person per round, to their phone, and nobody else.
    let outbox = staff.get("/api/v1/outbox").json();
    let reminders: Vec<&Value> =
        outbox.as_array().expect("outbox").iter().filter(|m| m["purpose"] == "reminder").collect();
    assert_eq!(reminders.len(), 3 * (LATE.len() + NEVER.len()));
    for (i, (id, token, _)) in people.iter().enumerate() {
        let mine: Vec<_> = reminders.iter().filter(|m| m["person_id"] == id.as_str()).collect();
        let expected = if LATE.contains(&i) || NEVER.contains(&i) { 3 } else { 0 };
        assert_eq!(mine.len(), expected, "person {i}");
        for m in mine {
            assert!(
                m["text"].as_str().expect("text").contains(token.as_str()),
                "reminder carries the personal link"
            );
        }
    }

    // Exactly one missing-declaration alert per silent person per round, and the fever alert.
    let mut alerts: Vec<Value> =
        staff.get("/api/v1/alerts?state=open").json().as_array().expect("alerts").clone();
    let missing: Vec<&Value> = alerts.iter().filter(|a| a["kind"] == "missing_declaration").collect();
    assert_eq!(missing.len(), 3 * NEVER.len());
    for i in NEVER {
        assert_eq!(
            missing.iter().filter(|a| a["person_id"] == people[i].0.as_str()).count(),
            3,
            "person {i}"
        );
    }
    assert_eq!(alerts.iter().filter(|a| a["kind"] == "fever").count(), 1);
    assert_eq!(alerts.len(), 3 * NEVER.len() + 1);
    assert!(
        alerts.iter().all(|a| a["escalations"].as_u64().unwrap_or(0) >= 1),
        "unacknowledged alerts escalated"
    );

    // Staff acknowledge and resolve every alert.
    for a in &alerts {
        let id = a["id"].as_str().expect("id");
        let res = staff.post_json(&format!("/api/v1/alerts/{id}/ack"), &json!({}));
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["acknowledged_by"], "lan.nguyen");
    }
    assert_eq!(staff.get("/api/v1/alerts?state=open").json().as_array().expect("open").len(), 0);
    alerts = staff.get("/api/v1/alerts?state=acknowledged").json().as_array().expect("acked").clone();
    for a in &alerts {
        let id = a["id"].as_str().expect("id");
        let res = staff.post_json(
            &format!("/api/v1/alerts/{id}/resolve"),
            &json!({"note": "Đã gọi điện, người cách ly ổn."}),
        );
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["state"], "resolved");
    }
    assert_eq!(
        staff.get("/api/v1/alerts?state=resolved").json().as_array().expect("resolved").len(),
        3 * NEVER.len() + 1
    );

    // The follow-up sheet agrees.
    let sheet = staff.get("/api/v1/followup?date=2026-11-21").json();
    let rows = sheet.as_array().expect("rows");
    assert_eq!(rows.len(), 50);
    let fever_row = rows.iter().find(|r| r["person_id"] == people[FEVER].0.as_str()).expect("fever row");
    assert_eq!(fever_row["max_temperature"], 38.6);
    assert_eq!(fever_row["on_time"], 3);
    let late_row = rows.iter().find(|r| r["person_id"] == people[LATE.start].0.as_str()).expect("late row");
    assert_eq!((late_row["declared"].as_u64(), late_row["on_time"].as_u64()), (Some(3), Some(0)));
    // Escalations reached the on-duty phone through the modem, one message per scheduler pass at most
    // (13 alerts escalating every 15 minutes for hours would otherwise be well over a hundred).
    assert!(
        sim.sent().iter().any(|m| m.to == "0905999888" && m.text.contains("CANH BAO CHUA XU LY")),
        "on-duty SMS"
    );
    let on_duty = staff
        .get("/api/v1/outbox")
        .json()
        .as_array()
        .expect("outbox")
        .iter()
        .filter(|m| m["purpose"] == "on_duty")
        .count();
    assert!((1..=25).contains(&on_duty), "{on_duty} on-duty messages");
    // Every SMS left and was reported delivered.
    wait_until("delivery reports", || {
        let outbox = staff.get("/api/v1/outbox").json();
        outbox.as_array().is_some_and(|m| m.iter().all(|m| m["state"] == "delivered"))
    });
    assert!(b.stop().success());
}

fn phone(i: usize) -> String {
    format!("09{:08}", 30_000_000 + i)
}

/// The site operations of one quarantine day on the manual clock, with the modem simulator: random
/// spot checks planned within waking hours, one answered with a photo and a position and one missed
/// (an alert); a position outside the geofence (an alert at once); a sampling round and a positive
/// result (its SMS queued in the same minute, the alert, F1 → F0, the transfer); and the day's zone
/// report, every field checked against values this test computes from what it did.
#[test]
fn site_operations_through_a_quarantine_day() {
    use crate::spotcheck::{answer, JPEG, SITE};
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let extra = format!(
        "[site]\nlatitude = {}\nlongitude = {}\ngeofence_m = 150\n[spot_checks]\nper_person_per_day = 1\n[alerts]\non_duty_phones = [\"0905999888\"]\n",
        SITE.0, SITE.1
    );
    // 06:00 at the site; eight people admitted today (rows 0, 3 and 6 are workers).
    let (mut b, mut c, ids) = outpost_tests::site_with_people(
        dir.path(),
        sim.path(),
        &extra,
        "2026-11-20T23:00:00Z",
        8,
        (PASSWORD, &[]),
    );
    let person = |c: &mut Client, id: &str| c.get(&format!("/api/v1/people/{id}")).json();
    let people: Vec<Value> = ids.iter().map(|id| person(&mut c, id)).collect();
    let token = |i: usize| people[i]["declare_token"].as_str().expect("token").to_owned();
    let phone = |i: usize| people[i]["phone"].as_str().expect("phone").to_owned();

    // The day's plan: one random check each, between 07:00 and 21:00 at the site.
    b.clock(&at("06:05"));
    let checks = c.get("/api/v1/spotchecks").json();
    let planned: Vec<&Value> = checks.as_array().expect("checks").iter().collect();
    assert_eq!(planned.len(), 8, "{checks}");
    for x in &planned {
        let due: chrono::DateTime<chrono::Utc> = x["due_at"].as_str().expect("due").parse().expect("time");
        let local = (due + chrono::Duration::hours(7)).format("%H:%M").to_string();
        assert!(("07:00".."21:01").contains(&local.as_str()), "{local}");
    }

    // 09:00: a position from person 0's page, 400 m out: the alert at once.
    b.clock(&at("09:00"));
    let res = Client::new(&b.url).post_json(
        &format!("/api/v1/position/{}", token(0)),
        &json!({"latitude": SITE.0 + 0.0036, "longitude": SITE.1, "accuracy": 10.0}),
    );
    assert_eq!(res.json()["alerted"], true, "{}", res.body);

    // 10:00: the sampling round; 11:30 the laboratory's list: person 1 positive, the rest negative.
    b.clock(&at("10:00"));
    for id in &ids {
        assert_eq!(c.post_json(&format!("/api/v1/people/{id}/samples"), &json!({})).status, 200);
    }
    b.clock(&at("11:30"));
    let mut list = String::from("Số CMND/CCCD;Lần lấy mẫu;Kết quả\n");
    for (i, p) in people.iter().enumerate() {
        let result = if i == 1 { "Dương tính" } else { "Âm tính" };
        list.push_str(&format!("{};1;{result}\n", p["id_number"].as_str().expect("id number")));
    }
    let res = c.post_bytes("/api/v1/samples/import", "text/csv", list.as_bytes());
    assert_eq!(res.status, 200, "{}", res.body);
    let outbox = c.get("/api/v1/outbox").json();
    let results: Vec<&Value> =
        outbox.as_array().expect("outbox").iter().filter(|m| m["purpose"] == "test_result").collect();
    assert_eq!(results.len(), 8);
    assert!(results.iter().all(|m| m["created_at"] == "2026-11-21T04:30:00Z"), "queued the same minute");
    wait_until("person 1's result", || {
        sim.sent().iter().any(|m| m.to == phone(1) && m.text.contains("DUONG TINH"))
    });
    assert_eq!(person(&mut c, &ids[1])["status"], "converted_f0");
    b.clock(&at("13:00"));
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{}/status", ids[1]), &json!({"status": "transferred"})).status,
        200
    );

    // Staff ask for a check of person 2 (answered) and person 3 (never answered).
    for i in [2, 3] {
        assert_eq!(c.post_json("/api/v1/spotchecks", &json!({"person_id": ids[i]})).status, 201);
    }
    // The link of the check just asked for (person 2 may have had a random one this morning too).
    let outbox = c.get("/api/v1/outbox").json();
    let text = outbox
        .as_array()
        .expect("outbox")
        .iter()
        .filter(|m| m["purpose"] == "spot_check" && m["to"] == phone(2).as_str())
        .max_by_key(|m| m["created_at"].as_str().map(str::to_owned))
        .expect("the SMS")["text"]
        .as_str()
        .expect("text")
        .to_owned();
    let path = text[text.find("/s/").expect("link")..].split_whitespace().next().expect("path").to_owned();
    let res = answer(&mut Client::new(&b.url), &path, JPEG, SITE.0, SITE.1);
    assert_eq!(res.status, 200, "{}", res.body);
    b.clock(&at("13:21"));
    // Person 3's check was missed; person 2's was answered. (A random check this morning nobody
    // answered is missed too: count the checks of the day against their alerts.)
    let day = c.get("/api/v1/spotchecks").json();
    let missed = |id: &str| {
        day.as_array()
            .expect("checks")
            .iter()
            .filter(|x| x["person_id"] == id && x["state"] == "missed")
            .count()
    };
    assert!(missed(&ids[3]) >= 1);
    let mut kinds = |kind: &str, id: &str| c.alerts_of(kind).iter().filter(|a| a["person_id"] == id).count();
    assert_eq!(kinds("spot_check_missed", &ids[3]), missed(&ids[3]));
    assert_eq!(kinds("spot_check_missed", &ids[2]), missed(&ids[2]));
    let answered = day.as_array().expect("checks").iter().filter(|x| x["state"] == "answered").count();
    assert_eq!(answered, 1, "{day}");
    assert_eq!(kinds("outside_geofence", &ids[0]), 1);
    assert_eq!(kinds("test_positive", &ids[1]), 1);
    // 18:00: person 7 released early (a decision from the district).
    b.clock(&at("18:00"));
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303, "the morning's session has ended");
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{}/status", ids[7]), &json!({"status": "released"})).status,
        200
    );

    // The day's report, against what this test did.
    let f = c.get("/api/v1/reports/2026-11-21").json()["figures"].clone();
    let workers = (0..8).filter(|i| i % 3 == 0).count();
    assert_eq!(
        f,
        json!({
            "date": "2026-11-21", "district": "Quận Liên Chiểu", "commune": "Phường Hòa Khánh Bắc",
            "zone_name": "Khu cách ly tập trung Ký túc xá Phía Tây", "management_level": "Quận/Huyện",
            "in_quarantine": 8 - 2,
            "admitted": 8, "admitted_workers": workers, "admitted_children": 0, "admitted_pregnant": 0, "admitted_foreigners": 0,
            "sampled_by_round": {"1": 8},
            "converted_f0": 1, "last_f0": "2026-11-21", "transferred_after_f0": 1, "released": 1,
        })
    );
}
