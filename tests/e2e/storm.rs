//! An alert storm, through the real binary on its manual clock with the modem simulator: 60 people
//! miss the morning declaration at once.
//! - the on-duty phone gets one digest SMS for the 60 (not 60 SMS), and no second digest within
//!   `alerts.digest_minutes` (5) even as another alert that is not severe is raised; that one comes
//!   in the next digest;
//! - a severe alert still goes at once, on its own;
//! - the dashboard shows the 60 as one group with one acknowledge, which acknowledges them all;
//!   the API acknowledges by ids too, and refuses a request that is neither.

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{site_with_people, wait_until, Client};
use serde_json::json;

use crate::PASSWORD;

const ON_DUTY: &str = "905999888";
const PEOPLE: usize = 60;

fn at(local: &str) -> String {
    format!("set 2026-11-21T{local}:00+07:00")
}

/// `person` declares through their own link, as their phone would.
fn declare(staff: &mut Client, url: &str, person: &str, (temperature, spo2): (&str, &str)) {
    let person = staff.get(&format!("/api/v1/people/{person}")).json();
    let token = person["declare_token"].as_str().expect("token");
    let res = Client::new(url).post_json(
        &format!("/api/v1/declare/{token}"),
        &json!({"temperature": temperature, "spo2": spo2, "symptoms": []}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
}

#[test]
fn a_storm_of_alerts_is_one_group_and_one_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("modem simulator");
    let extra = "[alerts]\non_duty_phones = [\"0905999888\"]\n";
    let (mut b, mut c, people) =
        site_with_people(dir.path(), sim.path(), extra, "2026-11-21T00:00:00Z", PEOPLE, (PASSWORD, &[]));
    let on_duty = |sim: &Simulator| -> Vec<String> {
        sim.sent().into_iter().filter(|m| m.to.ends_with(ON_DUTY)).map(|m| m.text).collect()
    };

    // 09:31: nobody declared for 08:00; the round is missing for all 60 in one pass.
    b.clock(&at("09:31"));
    let open = c.get("/api/v1/alerts?state=open").json();
    let open = open.as_array().expect("alerts");
    assert_eq!(open.len(), PEOPLE);
    assert!(open.iter().all(|a| a["kind"] == "missing_declaration" && a["severity"] == "warning"));
    wait_until("the digest SMS", || !on_duty(&sim).is_empty());
    let texts = on_duty(&sim);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("60 canh bao moi") && texts[0].contains("60 Khong khai bao"), "{}", texts[0]);

    // Two minutes later a fever of 38.5 °C (not severe): no SMS yet; at five minutes, one digest.
    b.clock(&at("09:33"));
    declare(&mut c, &b.url, &people[0], ("38.5", "97"));
    b.clock(&at("09:35"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(on_duty(&sim).len(), 1, "at most one digest per five minutes");
    b.clock(&at("09:36"));
    wait_until("the second digest", || on_duty(&sim).len() == 2);
    let second = on_duty(&sim).remove(1);
    assert!(second.contains("1 canh bao moi") && second.contains("1 Sot"), "{second}");

    // A severe alert (SpO2 90 %) goes at once, on its own.
    declare(&mut c, &b.url, &people[1], ("37.0", "90"));
    wait_until("the severe alert's own SMS", || on_duty(&sim).len() == 3);
    assert!(on_duty(&sim)[2].contains("NGHIEM TRONG"));

    // The two who declared since are no longer missing: the box closed their alerts.
    let resolved = c.get("/api/v1/alerts?state=resolved").json();
    let resolved = resolved.as_array().expect("resolved");
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert!(resolved.iter().all(|a| a["kind"] == "missing_declaration" && a["resolved_by"] == "outpost"));
    // The dashboard: the other 58 are one group with one acknowledge.
    let page = c.get("/").body;
    assert!(page.contains(r#"data-kind="missing_declaration" data-count="58""#), "one group of 58");
    assert_eq!(page.matches(r#"action="/alerts/ack-group""#).count(), 1, "one acknowledge for the group");
    let field = |name: &str| -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = page.find(&marker).map(|i| i + marker.len()).expect(name);
        page[start..].split('"').next().expect("value").replace("&#43;", "+")
    };
    let (kind, from, to) = (field("kind"), field("from"), field("to"));
    let res = c.post_form("/alerts/ack-group", &[("kind", &kind), ("from", &from), ("to", &to)]);
    assert_eq!(res.status, 303, "{}", res.body);
    let left = c.get("/api/v1/alerts?state=open").json();
    let left: Vec<&str> = left.as_array().expect("open").iter().filter_map(|a| a["kind"].as_str()).collect();
    assert!(!left.contains(&"missing_declaration"), "the whole group acknowledged: {left:?}");
    let acked = c.get("/api/v1/alerts?state=acknowledged").json();
    assert_eq!(acked.as_array().map(Vec::len), Some(PEOPLE - 2));
    assert!(acked.as_array().expect("acked").iter().all(|a| a["acknowledged_by"] == "lan.nguyen"));

    // The API: the rest by ids; a request that is neither ids nor a group is refused.
    let ids: Vec<String> = c
        .get("/api/v1/alerts?state=open")
        .json()
        .as_array()
        .expect("open")
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2, "the fever and the SpO2");
    let res = c.post_json("/api/v1/alerts/acknowledge", &json!({"ids": ids}));
    assert_eq!((res.status, res.json()["acknowledged"].as_u64()), (200, Some(2)), "{}", res.body);
    let res = c.post_json("/api/v1/alerts/acknowledge", &json!({"ids": ["x"], "kind": "fever"}));
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(c.get("/api/v1/alerts?state=open").json().as_array().map(Vec::len), Some(0));
}
