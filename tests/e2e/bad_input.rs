//! Bad input of every kind gets a clear 4xx (never a 500 or a panic) and leaves the store as it was.

use outpost_tests::{district_csv, BoxProcess, Client};
use serde_json::json;

use crate::PASSWORD;

fn people_count(c: &mut Client) -> usize {
    c.get("/api/v1/people").json().as_array().expect("people").len()
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = BoxProcess::start("run", &dir.path().join("data"), &["--clock", "2026-11-21T01:00:00Z"]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.bad", PASSWORD);
    let good = district_csv(3, "21/11/2026", "04/12/2026");
    assert_eq!(c.post_bytes("/api/v1/people/import", "text/csv", &good).status, 200);
    assert_eq!(people_count(&mut c), 3);

    // CSV: a file with a bad row imports nothing unless asked to import the valid rows.
    // Rows 1–3 repeat registered ID numbers, rows 4–5 are new, row 6 is wrong in three ways.
    let mut mixed = String::from_utf8(district_csv(5, "21/11/2026", "04/12/2026")).expect("utf8");
    mixed.push_str("6;Lý Văn Sai;1990;12345;Nam;0791111111111;x;A1;31/02/2026;04/12/2026;1/QĐ;\r\n");
    let res = c.post_bytes("/api/v1/people/import", "text/csv", mixed.as_bytes());
    assert_eq!(res.status, 422, "{}", res.body);
    let report = res.json();
    let lines: Vec<u64> =
        report["errors"].as_array().expect("errors").iter().filter_map(|e| e["line"].as_u64()).collect();
    assert_eq!(lines, vec![2, 3, 4, 7], "duplicates of registered people and the bad row: {report}");
    assert_eq!(people_count(&mut c), 3, "nothing imported from a file with errors");
    let res = c.post_bytes("/api/v1/people/import?valid_only=true", "text/csv", mixed.as_bytes());
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["imported"], 2);
    assert_eq!(people_count(&mut c), 5);

    // Encodings and shapes.
    let latin1 = b"H\xe1 v\xe0 t\xean;S\xf4\n";
    let res = c.post_bytes("/api/v1/people/import", "text/csv", latin1);
    assert_eq!(res.status, 422);
    assert!(res.body.contains("UTF-8"), "{}", res.body);
    for bad in [&b""[..], b"\xFF\xFEa\0b\0", b"Ten;Tuoi\nA;3\n", b"\"unterminated;quote\n1;2\n"] {
        let res = c.post_bytes("/api/v1/people/import", "text/csv", bad);
        assert_eq!(res.status, 422, "{:?}: {}", String::from_utf8_lossy(bad), res.body);
    }
    assert_eq!(people_count(&mut c), 5);

    // Oversize upload.
    let huge = vec![b'a'; 3 * 1024 * 1024];
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &huge);
    assert_eq!((res.status, res.json()["error"].as_str()), (413, Some("too_large")));
    let csrf = c.csrf.clone().unwrap_or_default();
    let res =
        c.post_bytes(&format!("/people/import?csrf={csrf}"), "multipart/form-data; boundary=xyz", &huge);
    assert_eq!(res.status, 413);
    assert!(res.body.contains("Tệp hoặc nội dung gửi lên quá lớn."), "a page in Vietnamese: {}", res.body);
    assert_eq!(people_count(&mut c), 5);

    // Impossible dates, bad phone, duplicate ID number.
    let res = c.post_json(
        "/api/v1/people",
        &json!({"full_name": "Hồ Văn Tư", "phone": "0905000111", "id_number": "012345678",
        "quarantine_start": "2026-02-30", "quarantine_end": "2026-03-14"}),
    );
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["problems"][0]["field"], "quarantine_start");
    let res = c.post_json(
        "/api/v1/people",
        &json!({"full_name": "Hồ Văn Tư", "phone": "12", "id_number": "012345678",
        "quarantine_start": "2026-11-21", "quarantine_end": "2026-11-10"}),
    );
    assert_eq!(res.status, 422);
    let fields: Vec<String> = res.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(fields, vec!["phone", "quarantine_end"]);
    let first = c.get("/api/v1/people").json()[0]["id"].as_str().expect("id").to_owned();
    let existing = c.get(&format!("/api/v1/people/{first}")).json();
    let res = c.post_json(
        "/api/v1/people",
        &json!({"full_name": "Bản Sao", "phone": "0905000111", "id_number": existing["id_number"],
        "quarantine_start": "2026-11-21", "quarantine_end": "2026-12-04"}),
    );
    assert_eq!(res.status, 409, "{}", res.body);
    assert_eq!(people_count(&mut c), 5);
    assert_eq!(c.post_bytes("/api/v1/people", "application/json", b"{not json").status, 422);

    // Declarations: temperature out of range, unknown symptom, unknown token.
    let token = existing["declare_token"].as_str().expect("token");
    let mut anon = Client::new(&b.url);
    for body in [
        json!({"temperature": "45"}),
        json!({"temperature": "abc"}),
        json!({"temperature": "37", "spo2": "130"}),
        json!({"temperature": "37", "symptoms": ["zombie"]}),
        json!({}),
    ] {
        let res = anon.post_json(&format!("/api/v1/declare/{token}"), &body);
        assert_eq!(res.status, 422, "{body}: {}", res.body);
    }
    assert_eq!(
        anon.post_json("/api/v1/declare/ffffffffffffffffffffffffffffffff", &json!({"temperature": "37"}))
            .status,
        404
    );
    assert!(c
        .get(&format!("/api/v1/people/{first}/declarations"))
        .json()
        .as_array()
        .expect("decls")
        .is_empty());
    // The personal page: a bad form value re-renders with the message, in Vietnamese.
    let page = anon.get(&format!("/d/{token}"));
    assert_eq!(page.status, 200);
    let res = anon.post_form(&format!("/d/{token}"), &[("temperature", "50")]);
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Nhiệt độ phải trong khoảng 34–43 °C."), "{}", res.body);
    // … and without its CSRF cookie the form is refused.
    let mut stranger = Client::new(&b.url);
    assert_eq!(stranger.post_form_raw(&format!("/d/{token}"), &[("temperature", "37")]).status, 403);

    // CSRF: a session without its token may not write.
    let saved = c.csrf.take();
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{first}/status"), &json!({"status": "released"})).status,
        403
    );
    c.csrf = saved;
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{first}/status"), &json!({"status": "dead"})).status,
        422
    );

    // Login throttling: five failures lock the account for a while, even with the right password.
    let mut guesser = Client::new(&b.url);
    for _ in 0..5 {
        assert_eq!(guesser.login("admin.bad", "wrong-password-123").status, 401);
    }
    assert_eq!(guesser.login("admin.bad", PASSWORD).status, 429);

    // Sessions expire (12 hours by default).
    b.clock("advance 13h");
    assert_eq!(c.get("/api/v1/people").status, 401);
    assert_eq!(c.get("/people").status, 303);
    assert!(b.stop().success());
}
