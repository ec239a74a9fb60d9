//! The last link (docs/sms.md): a site whose data link is cut for two days sends its confirmed daily
//! reports and a severe alert to the province by signed SMS; the province reads them from its own
//! modem (the box's driver, on a simulator), shows them "by SMS", refuses a forged one, and, when the
//! link returns and the records arrive, shows that they agree.
//!
//! Real processes: `outpost run` and `outpost-province serve --modem … --sms-number …`, each with
//! its modem simulator; the test is the network between the two SIMs (what the box's modem sent to
//! the province's number arrives at the province's modem).

use std::time::{Duration, Instant};

use outpost_province::users::{Scope, Users};
use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{
    district_csv, enroll_box, free_port, province_cmd, serve_province, wait_until, write_config, BoxProcess,
    Client, ProvinceProcess,
};
use serde_json::json;

use crate::PASSWORD;

const PROVINCE_NUMBER: &str = "+84905000111";
const SITE_SIM: &str = "+84901111222";

/// Carries what the box's modem sent to the province's number, from `carried` on, to the
/// province's modem; how many now.
fn carry(site: &Simulator, province: &Simulator, carried: usize) -> usize {
    let sent: Vec<_> = site.sent().into_iter().filter(|m| m.to == PROVINCE_NUMBER).collect();
    for m in &sent[carried.min(sent.len())..] {
        province.receive(SITE_SIM, &m.text);
    }
    sent.len()
}

fn start_province(
    pdata: &std::path::Path,
    listen: &str,
    modem: &Simulator,
    web: u16,
) -> (ProvinceProcess, String) {
    let modem = modem.path().display().to_string();
    let web = format!("127.0.0.1:{web}");
    let args = ["--modem", &modem, "--sms-number", PROVINCE_NUMBER, "--web", &web, "--pull-every", "0"];
    serve_province(pdata, listen, &args)
}

/// The province's administrator, signed in to its web UI on `port` (once a province just restarted
/// listens there: it prints its sync address before its web port is bound).
fn signed_in_officer(port: u16) -> Client {
    let mut officer = Client::new(&format!("http://127.0.0.1:{port}"));
    wait_until("the province's web UI to listen", || officer.try_get("/login").is_some());
    let res = officer.post_form("/login", &[("username", "tinh.admin"), ("password", PASSWORD)]);
    assert!(res.status < 400, "{}", res.body);
    officer
}

#[test]
fn reports_and_a_severe_alert_reach_the_province_by_sms_while_the_link_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    province_cmd(&pdata, &["init"]);
    let token = province_cmd(&pdata, &["site", "add", "hoa-vang-01", "--district", "Huyện Hòa Vang"]);
    Users::new(&pdata).add("tinh.admin", "Quản trị tỉnh", Scope::Province, PASSWORD).expect("user");
    let province_modem = Simulator::start_with(&dir.path().join("province-modem"), Pace::QUICK).expect("sim");
    let site_modem = Simulator::start_with(&dir.path().join("site-modem"), Pace::QUICK).expect("sim");
    let web_port = free_port();
    let (province, addr) = start_province(&pdata, "127.0.0.1:0", &province_modem, web_port);

    let config = write_config(
        dir.path(),
        &format!(
            "[site]\nid = \"hoa-vang-01\"\n[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 1\n[alerts]\non_duty_phones = [\"0905999888\"]\n\
             [sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\nfollow_province_clock_seconds = 0\nsms_after_hours = 6\n",
            site_modem.path().display()
        ),
    );
    let data = dir.path().join("data");
    let out = enroll_box(&config, &data, &addr, &token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 08:00 at the site on 21/11.
    let mut b = BoxProcess::start("run", &data, &["--config", &config, "--clock", "2026-11-21T01:00:00Z"]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(3, "21/11/2026", "05/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the province's number and the site's key", || {
        c.get("/api/v1/health").json()["last_link"]["province_number"] == PROVINCE_NUMBER
    });

    // The link is cut: the province moves to another address (its modem stays).
    drop(province);
    let (province, _) = start_province(&pdata, "127.0.0.1:0", &province_modem, web_port);
    // 21/11 evening: the manager confirms the day's report; six hours without a link have passed.
    b.clock("set 2026-11-21T20:00:00+07:00");
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303, "a new session on the manual clock");
    let res = c.post_json("/api/v1/reports/2026-11-21/confirm", &json!({}));
    assert!(res.status < 300, "{}", res.body);
    let r = b.clock("tick");
    assert!(r.contains("by_sms=1"), "{r}");
    assert_eq!(c.get("/api/v1/health").json()["last_link"]["active"], true);
    wait_until("the report's SMS", || site_modem.sent().iter().any(|m| m.to == PROVINCE_NUMBER));
    let mut carried = carry(&site_modem, &province_modem, 0);
    // Day two: the report again, and a severe alert (SpO2 90 %).
    b.clock("set 2026-11-22T14:00:00+07:00");
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303);
    let person = c.people_ids().remove(0);
    let token =
        c.get(&format!("/api/v1/people/{person}")).json()["declare_token"].as_str().expect("t").to_owned();
    let res = Client::new(&b.url).post_json(
        &format!("/api/v1/declare/{token}"),
        &json!({"temperature": "37.4", "spo2": "90", "symptoms": []}),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    b.clock("set 2026-11-22T20:00:00+07:00");
    let res = c.post_json("/api/v1/reports/2026-11-22/confirm", &json!({}));
    assert!(res.status < 300, "{}", res.body);
    b.clock("tick");
    wait_until("three SMS to the province", || {
        site_modem.sent().iter().filter(|m| m.to == PROVINCE_NUMBER).count() == 3
    });
    carried = carry(&site_modem, &province_modem, carried);
    assert_eq!(carried, 3);
    let texts: Vec<String> =
        site_modem.sent().into_iter().filter(|m| m.to == PROVINCE_NUMBER).map(|m| m.text).collect();
    assert!(texts.iter().all(|t| t.len() <= 160 && t.is_ascii()), "one GSM part each: {texts:?}");
    // A phone sends the province's number a made-up report in the site's name.
    let forged = texts.iter().find(|t| t.contains(" BC ")).expect("a report").replacen(" Q3 ", " Q0 ", 1);
    province_modem.receive("+84988777666", &forged);

    // The province shows them, marked as by SMS, and refuses the forgery.
    let mut officer = signed_in_officer(web_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = officer.get("/reports?date=21/11/2026").body;
        if page.contains("qua SMS — chờ đồng bộ") && page.contains("id=\"sms-refused\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the report by SMS never showed: {page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let alerts = officer.get("/alerts").body;
    assert!(
        alerts.contains("id=\"sms-alerts\"")
            && alerts.contains("low_spo2")
            && alerts.contains("chỉ có qua SMS"),
        "{alerts}"
    );
    let refused = std::fs::read_to_string(pdata.join("sms/rejected.jsonl")).expect("refused");
    assert_eq!(refused.lines().count(), 1, "{refused}");
    assert!(refused.contains("signature"), "{refused}");

    // The link returns at the first address: the records arrive and agree with the SMS.
    drop(province);
    let (_province, _) = start_province(&pdata, &addr, &province_modem, web_port);
    let mut officer = signed_in_officer(web_port);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = officer.get("/reports?date=22/11/2026").body;
        let alerts = officer.get("/alerts").body;
        if page.contains("khớp bản nhận qua SMS") && alerts.contains("đã đồng bộ") {
            assert!(page.contains("đã xác nhận (lan.nguyen)"), "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "the records never came to agree: {page}");
        // The link retries on the box's clock, which the test moves.
        b.clock("advance 10s");
        std::thread::sleep(Duration::from_millis(300));
    }
}
