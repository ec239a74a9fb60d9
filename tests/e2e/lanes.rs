//! The outbox at a modem's pace (docs/sms.md): a severe alert overtakes a queue of reminders,
//! reminders left when their round ends expire instead of leaving late, one number gets at most
//! three messages an hour except alerts and results, and a box restarted after missing whole rounds
//! sends one reminder (the current round's, naming it), not one per round missed; two modems share
//! the queue, and the one unplugged hands its message to the other, sent once.
//!
//! The simulator runs at 250 ms a part here, not a GSM modem's 3–6 s: these tests are about order
//! and expiry, and a quarter-second part keeps a queue of 60 reminders busy for 15 s of the test.
//! The real pace is in the benchmark (`cargo bench -p outpost-tests --bench sms`).

use std::time::Duration;

use outpost_sms::sim::{Pace, SentMessage, Simulator};
use outpost_tests::{
    district_csv, outpost_bin, site_with_people, wait_until, write_config, BoxProcess, Client,
};
use serde_json::{json, Value};

use crate::PASSWORD;

const ON_DUTY: &str = "0905999888";

fn outbox(c: &mut Client) -> Vec<Value> {
    c.get("/api/v1/outbox").json().as_array().expect("outbox").clone()
}

fn of<'a>(list: &'a [Value], purpose: &str, state: &str) -> Vec<&'a Value> {
    list.iter().filter(|m| m["purpose"] == purpose && m["state"] == state).collect()
}

fn token(c: &mut Client, id: &str) -> String {
    c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned()
}

#[test]
fn a_severe_alert_overtakes_the_reminders_and_reminders_expire_with_their_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pace = Pace { part_min: Duration::from_millis(250), part_max: Duration::from_millis(250) };
    let sim = Simulator::start_with(&dir.path().join("modem"), pace).expect("simulator");
    let extra = format!("[alerts]\non_duty_phones = [\"{ON_DUTY}\"]\n");
    // 07:00 at the site; nobody declares for 08:00.
    let (mut b, mut c, ids) =
        site_with_people(dir.path(), sim.path(), &extra, "2026-11-21T00:00:00Z", 60, (PASSWORD, &[]));
    let r = b.clock("set 2026-11-21T08:31:00+07:00");
    assert!(r.contains("reminders=60"), "{r}");
    wait_until("a few reminders out", || sim.sent().len() >= 5);

    // A person declares SpO2 90 %: a severe alert, its SMS to the on-duty phone, queued behind 50+
    // reminders, leaves next (at most the part in flight before it).
    let mut phone = Client::new(&b.url);
    let t = token(&mut c, &ids[7]);
    let res = phone.post_json(
        &format!("/api/v1/declare/{t}"),
        &json!({"temperature": "37.2", "spo2": "90", "symptoms": []}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let before = sim.sent().len();
    wait_until("the alert's SMS", || sim.sent().iter().any(|m| m.to == ON_DUTY));
    let sent = sim.sent();
    let at = sent.iter().position(|m| m.to == ON_DUTY).expect("on-duty SMS");
    assert!(at <= before + 1, "the alert left at {at}, queued when {before} had left");
    let queued = of(&outbox(&mut c), "reminder", "queued").len();
    assert!(queued > 20, "reminders still waiting behind the alert: {queued}");

    // The round ends at 09:30 (reminder at +30 min, alert at +90): what is left expires, unsent.
    b.clock("set 2026-11-21T09:31:00+07:00");
    wait_until("no reminder queued", || {
        let list = outbox(&mut c);
        of(&list, "reminder", "queued").is_empty() && of(&list, "reminder", "sending").is_empty()
    });
    std::thread::sleep(Duration::from_millis(600));
    let list = outbox(&mut c);
    let expired = of(&list, "reminder", "expired");
    let left: Vec<SentMessage> = sim.sent().into_iter().filter(|m| m.to != ON_DUTY).collect();
    assert!(expired.len() > 20, "{} expired", expired.len());
    assert_eq!(left.len() + expired.len(), 60, "each reminder either left or expired");
    assert!(expired.iter().all(|m| m["sent_at"].is_null()));
    // The page says so, in Vietnamese first.
    let page = c.get("/outbox");
    assert!(page.body.contains("Hết hạn (không gửi muộn)"), "the outbox page names expired messages");
    assert!(page.body.contains("id=\"outbox-lanes\""));
    // Every reminder names its round.
    assert!(left.iter().all(|m| m.text.contains("dot 08:00 21/11")), "{:?}", left.first());
}

#[test]
fn one_number_gets_at_most_three_messages_an_hour_except_results_and_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let extra = "per_person_per_hour = 3\n";
    let (mut b, mut c, ids) =
        site_with_people(dir.path(), sim.path(), extra, "2026-11-21T03:00:00Z", 2, (PASSWORD, &[]));
    let person = c.get(&format!("/api/v1/people/{}", ids[0])).json();
    let number = person["phone"].as_str().expect("phone").to_owned();
    for n in 0..5 {
        let res = c.post_json(
            "/api/v1/sms",
            &json!({"people": [ids[0]], "text": format!("Thong bao so {n}"), "lang": "vi"}),
        );
        assert_eq!(res.status, 201, "{}", res.body);
    }
    let to_person = |sim: &Simulator| sim.sent().into_iter().filter(|m| m.to == number).count();
    wait_until("three messages out", || to_person(&sim) == 3);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(to_person(&sim), 3, "the fourth waits for the hour");
    let held = of(&outbox(&mut c), "custom", "queued").len();
    assert_eq!(held, 2);

    // A test result is not held back by the cap.
    let res = c.post_json(&format!("/api/v1/people/{}/samples", ids[0]), &json!({"round": 1}));
    assert_eq!(res.status, 200, "{}", res.body);
    let res =
        c.post_json(&format!("/api/v1/people/{}/samples/1/result", ids[0]), &json!({"result": "negative"}));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the result, past the cap", || to_person(&sim) == 4);
    assert!(sim.sent().iter().any(|m| m.to == number && m.text.contains("AM TINH")));

    // An hour later the two held messages leave.
    b.clock("advance 61m");
    wait_until("the held messages", || to_person(&sim) == 6);
}

#[test]
fn a_box_back_after_missing_rounds_sends_one_reminder_naming_the_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    // 07:00 at the site; the box is then off all day, until 21:45.
    let (mut b, _c, _ids) =
        site_with_people(dir.path(), sim.path(), "", "2026-11-21T00:00:00Z", 3, (PASSWORD, &[]));
    b.kill9();
    let config = dir.path().join("site.toml").display().to_string();
    let mut b = outpost_tests::BoxProcess::start(
        "run",
        &dir.path().join("data"),
        &["--config", &config, "--clock", "2026-11-21T14:45:00Z"],
    );
    b.clock("tick");
    wait_until("one reminder each", || sim.sent().len() == 3);
    std::thread::sleep(Duration::from_secs(2));
    let sent = sim.sent();
    assert_eq!(sent.len(), 3, "one reminder a person, not one per round missed: {sent:?}");
    assert!(sent.iter().all(|m| m.text.contains("dot 21:00 21/11")), "{sent:?}");
}

#[test]
fn two_modems_share_the_queue_and_an_unplugged_one_hands_its_message_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pace = Pace { part_min: Duration::from_millis(300), part_max: Duration::from_millis(300) };
    let mut one = Simulator::start_with(&dir.path().join("modem-1"), pace).expect("simulator");
    let two = Simulator::start_with(&dir.path().join("modem-2"), pace).expect("simulator");
    let config = write_config(
        dir.path(),
        &format!(
            "[modem]\nport = [\"{}\", \"{}\"]\n[outbox]\nmin_interval_ms = 1\n",
            one.path().display(),
            two.path().display()
        ),
    );
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res =
        c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(24, "21/11/2026", "05/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("both modems ready", || {
        let h = c.get("/api/v1/health").json();
        h["modems"]
            .as_array()
            .is_some_and(|m| m.len() == 2 && m.iter().all(|m| m["health"]["connected"] == true))
    });
    let res = c.post_json(
        "/api/v1/sms",
        &json!({"status": "in_quarantine", "text": "Thong bao chung", "lang": "vi"}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["queued"], 24);

    // Both modems take from the queue; the first is unplugged with a part in flight.
    wait_until("both modems sending", || one.sent().len() >= 2 && !two.sent().is_empty());
    one.unplug();
    wait_until("every message out", || {
        let list = outbox(&mut c);
        list.iter().all(|m| m["state"] == "sent" || m["state"] == "delivered")
    });
    let mut numbers: Vec<String> = one.sent().into_iter().chain(two.sent()).map(|m| m.to).collect();
    let (sent, by_one) = (numbers.len(), one.sent().len());
    numbers.sort();
    numbers.dedup();
    assert_eq!((numbers.len(), sent), (24, 24), "each person exactly once across the two modems");
    assert!(by_one < 12, "the second modem carried on after the first was unplugged: {by_one} by the first");
    let health = c.get("/api/v1/health").json();
    assert_eq!(health["modems"][0]["health"]["connected"], false, "{health}");
    assert_eq!(health["modems"][1]["health"]["connected"], true, "{health}");
    assert!(c.get("/health").body.contains("id=\"modem-2\""), "the health page shows each modem");
    let problems = c.get("/healthz").json();
    assert!(problems["problems"].as_array().expect("problems").contains(&json!("modem")), "{problems}");
    drop(b);

    // `outpost modem status` lists every modem.
    one.replug().expect("replug");
    let out = std::process::Command::new(outpost_bin())
        .args(["modem", "status", "--port"])
        .arg(one.path())
        .arg("--port")
        .arg(two.path())
        .output()
        .expect("modem status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert!(list.as_array().expect("list").iter().all(|m| m["modem"]["connected"] == true), "{list}");
}

#[test]
fn the_dashboard_warns_when_results_would_miss_their_hour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let (mut b, mut c, ids) =
        site_with_people(dir.path(), sim.path(), "", "2026-11-21T03:00:00Z", 2, (PASSWORD, &[]));
    // One message measures the modem's pace; then the modem hangs.
    let res = c.post_json("/api/v1/sms", &json!({"people": [ids[1]], "text": "Thu modem", "lang": "vi"}));
    assert_eq!(res.status, 201, "{}", res.body);
    wait_until("the pace measured", || {
        c.get("/api/v1/health").json()["outbox"]["seconds_per_message"].is_number()
    });
    sim.with(|s| s.hang = true);
    let res = c.post_json(&format!("/api/v1/people/{}/samples", ids[0]), &json!({"round": 1}));
    assert_eq!(res.status, 200, "{}", res.body);
    let res =
        c.post_json(&format!("/api/v1/people/{}/samples/1/result", ids[0]), &json!({"result": "negative"}));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(c.get("/api/v1/health").json()["outbox"]["results_late"], false);
    assert!(!c.get("/").body.contains("id=\"sms-late\""));
    // An hour after the result was recorded it is still waiting: the dashboard and the health say so.
    b.clock("advance 61m");
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303);
    let health = c.get("/api/v1/health").json();
    assert_eq!(health["outbox"]["results_late"], true, "{health}");
    assert!(c.get("/").body.contains("id=\"sms-late\""), "the dashboard warns");
    let problems = c.get("/healthz").json();
    assert!(problems["problems"].as_array().expect("problems").contains(&json!("sms_late")), "{problems}");
}
