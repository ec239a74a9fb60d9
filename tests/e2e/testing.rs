//! Testing [M10] with the real box, the modem simulator and the manual clock: samplings recorded at
//! the desk by QR code and by ID number, a laboratory's list refused whole for its bad rows and then
//! taken, every result texted to the person within the same minute, and a positive result's F1 → F0
//! workflow (severe alert to the on-duty phone, status, transfer).

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{district_csv, wait_until, write_config, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

#[test]
fn samplings_results_and_the_f0_workflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let config = write_config(
        dir.path(),
        &format!(
            "[modem]\nport = \"{}\"\n[outbox]\nmin_interval_ms = 1\n[alerts]\non_duty_phones = [\"0905999888\"]\n",
            sim.path().display()
        ),
    );
    // 09:00 at the site; the clock stands still unless moved.
    let b = BoxProcess::start(
        "run",
        &dir.path().join("data"),
        &["--config", &config, "--clock", "2026-11-21T02:00:00Z"],
    );
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(3, "21/11/2026", "05/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let mut people: Vec<Value> =
        c.people_ids().iter().map(|id| c.get(&format!("/api/v1/people/{id}")).json()).collect();
    people.sort_by_key(|p| p["id_number"].as_str().map(str::to_owned));
    let field = |i: usize, f: &str| people[i][f].as_str().expect(f).to_owned();

    // The desk: person 0 by their QR code (their declaration link), person 2 by ID number.
    let qr = format!("http://outpost.local:8080/d/{}", field(0, "declare_token"));
    for code in [qr.as_str(), &field(2, "id_number")] {
        let res = c.post_form("/testing/sample", &[("code", code), ("round", "")]);
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let again = c.post_form("/testing/sample", &[("code", &field(2, "id_number")), ("round", "1")]);
    assert_eq!(again.status, 409, "round 1 twice: {}", again.body);
    let other_site = c.post_form(
        "/testing/sample",
        &[("code", "http://other.local/d/ZZZZZZZZZZZZZZZZZZZZ"), ("round", "")],
    );
    assert_eq!(other_site.status, 422);
    assert!(other_site.body.contains("Mã QR của khu khác"), "{}", other_site.body);
    let desk = c.get("/testing");
    assert!(desk.body.contains(&field(0, "full_name")) && desk.body.contains("Chờ kết quả"), "{}", desk.body);

    // A list with an unknown ID number and a repeated row: refused whole, nothing texted.
    let bad = format!(
        "Số CMND/CCCD;Lần lấy mẫu;Kết quả\n{};1;Âm tính\n000000000001;1;Âm tính\n{};1;Âm tính\n",
        field(0, "id_number"),
        field(0, "id_number")
    );
    let res = c.post_bytes("/api/v1/samples/import", "text/csv", bad.as_bytes());
    assert_eq!(res.status, 422, "{}", res.body);
    let lines: Vec<u64> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![3, 4]);
    let samples = c.get("/api/v1/samples").json();
    assert!(samples.as_array().expect("samples").iter().all(|s| s["result"] == "pending"), "{samples}");

    // The laboratory's list: person 0 negative, person 1 (not sampled at the desk) positive.
    let good = format!(
        "Số CMND/CCCD,Lần lấy mẫu,Kết quả\n{},1,Âm tính\n{},1,Dương tính\n",
        field(0, "id_number"),
        field(1, "id_number")
    );
    let res = c.post_bytes("/api/v1/samples/import", "text/csv", good.as_bytes());
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["imported"], 2);
    // Person 2's result by hand.
    let res = c.post_json(
        &format!("/api/v1/people/{}/samples/1/result", field(2, "id")),
        &json!({"result": "negative"}),
    );
    assert_eq!(res.status, 200, "{}", res.body);

    wait_until("the results and the on-duty alert to go out", || sim.sent().len() >= 4);
    let sent = sim.sent();
    let to = |phone: &str, text: &str| sent.iter().any(|m| m.to == phone && m.text.contains(text));
    assert!(to(&field(0, "phone"), "lan 1 (lay mau 21/11): AM TINH"), "{sent:?}");
    assert!(to(&field(1, "phone"), "DUONG TINH"), "{sent:?}");
    assert!(to(&field(2, "phone"), "AM TINH"), "{sent:?}");
    assert!(to("0905999888", "CANH BAO NGHIEM TRONG"), "{sent:?}");
    // Queued the minute the results were recorded (the clock never moved).
    let outbox = c.get("/api/v1/outbox").json();
    for m in outbox.as_array().expect("outbox").iter().filter(|m| m["purpose"] == "test_result") {
        assert_eq!(m["created_at"], "2026-11-21T02:00:00Z", "{m}");
    }

    // F1 → F0: the alert, the status, then the transfer to hospital.
    let alert = c.alerts_of("test_positive").first().expect("alert").clone();
    assert_eq!(
        (alert["person_id"].as_str(), alert["severity"].as_str()),
        (Some(field(1, "id").as_str()), Some("severe"))
    );
    let person = c.get(&format!("/api/v1/people/{}", field(1, "id"))).json();
    assert_eq!((person["status"].as_str(), person["category"].as_str()), (Some("converted_f0"), Some("f0")));
    // Their exposure list was made with the conversion (no bands here: nobody shared a zone).
    let exposure = c.get(&format!("/api/v1/people/{}/exposure", field(1, "id"))).json();
    assert_eq!(
        (exposure["reason"].as_str(), exposure["days"].as_u64()),
        (Some("converted_f0"), Some(14)),
        "{exposure}"
    );
    let res =
        c.post_json(&format!("/api/v1/people/{}/status", field(1, "id")), &json!({"status": "transferred"}));
    assert_eq!(res.status, 200, "{}", res.body);
    let page = c.get(&format!("/people/{}", field(1, "id")));
    assert!(
        page.body.contains("Dương tính") && page.body.contains("Xét nghiệm lần 1 dương tính"),
        "{}",
        page.body
    );

    // The day's samplings: three people in round 1.
    let day = c.get("/api/v1/samples?date=2026-11-21").json();
    assert_eq!(day.as_array().expect("samples").len(), 3, "{day}");
}
