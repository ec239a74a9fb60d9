//! The zone daily report [M11] at the box: its figures checked against values the test computes
//! from what it did, the manager's confirmation (and the warning when figures change after it), the
//! CSV, and the .xlsx read back by an independent reader (Python's openpyxl) with the page's numbers.

use std::process::Command;

use outpost_tests::{district_csv, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

/// The .xlsx as openpyxl reads it: `rows` (the first sheet's cells, dates as ISO text), `about`
/// (the second sheet's), `frozen` (the first sheet's frozen cell), `bold` (its header's first cell),
/// `date_format` (the number format of the second row's first cell), `width` (its first column's).
fn read_xlsx(bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.xlsx");
    std::fs::write(&path, bytes).expect("write");
    let script = "import json, sys, openpyxl\n\
                  book = openpyxl.load_workbook(sys.argv[1])\n\
                  data, about = book.worksheets\n\
                  cells = lambda s: [[c for c in row] for row in s.iter_rows(values_only=True)]\n\
                  print(json.dumps(dict(rows=cells(data), about=cells(about), frozen=data.freeze_panes,\n\
                      bold=data['A1'].font.b, date_format=data['A2'].number_format,\n\
                      width=data.column_dimensions['A'].width), default=lambda d: d.isoformat()))";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 (scripts/test.sh installs python3-openpyxl)");
    assert!(out.status.success(), "openpyxl: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("rows")
}

#[test]
fn the_days_report_its_confirmation_and_its_exports() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 17:00 at the site on 21/11/2026.
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--clock", "2026-11-21T10:00:00Z"]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    // Six admitted today (rows 0 and 3 are workers), three who came earlier.
    assert_eq!(
        c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(6, "21/11/2026", "05/12/2026"))
            .status,
        200
    );
    let earlier = district_csv(9, "15/11/2026", "29/11/2026");
    let earlier: Vec<&str> = std::str::from_utf8(&earlier).expect("utf-8").split("\r\n").collect();
    let earlier = [&[earlier[0]][..], &earlier[7..10]].concat().join("\r\n");
    assert_eq!(c.post_bytes("/api/v1/people/import", "text/csv", earlier.as_bytes()).status, 200);
    let people: Vec<Value> = c.get("/api/v1/people").json().as_array().expect("people").clone();
    assert_eq!(people.len(), 9);
    let ids: Vec<String> = people.iter().map(|p| p["id"].as_str().expect("id").to_owned()).collect();
    // `district_csv` marks every third row a worker.
    let (admitted, workers) = (6, (0..6).filter(|i| i % 3 == 0).count());

    // Round 1 for three people, round 2 for one; one positive, then transferred; one released.
    for id in &ids[..3] {
        assert_eq!(c.post_json(&format!("/api/v1/people/{id}/samples"), &json!({})).status, 200);
    }
    // A second round the same day is recorded when it is named (a second scan alone is refused).
    assert_eq!(c.post_json(&format!("/api/v1/people/{}/samples", ids[0]), &json!({})).status, 409);
    assert_eq!(c.post_json(&format!("/api/v1/people/{}/samples", ids[0]), &json!({"round": 2})).status, 200);
    let res =
        c.post_json(&format!("/api/v1/people/{}/samples/1/result", ids[1]), &json!({"result": "positive"}));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{}/status", ids[1]), &json!({"status": "transferred"})).status,
        200
    );
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{}/status", ids[2]), &json!({"status": "released"})).status,
        200
    );

    let report = c.get("/api/v1/reports/2026-11-21").json();
    let f = &report["figures"];
    let expected = json!({
        "date": "2026-11-21",
        "district": f["district"], "commune": f["commune"], "zone_name": f["zone_name"],
        "management_level": f["management_level"],
        "in_quarantine": 9 - 2,
        "admitted": admitted,
        "admitted_workers": workers,
        "admitted_children": 0, "admitted_pregnant": 0, "admitted_foreigners": 0,
        "sampled_by_round": {"1": 3, "2": 1},
        "converted_f0": 1,
        "last_f0": "2026-11-21",
        "transferred_after_f0": 1,
        "released": 1,
    });
    assert_eq!(f, &expected);
    assert_eq!(workers, 2);
    assert!(report["confirmed"].is_null());

    // The page: every figure, unconfirmed, the chart; confirmed by the zone head.
    let page = c.get("/reports?date=21/11/2026");
    assert_eq!(page.status, 200);
    for text in [
        "Chưa xác nhận",
        "<th>Số người lấy mẫu lần 1</th><td>3</td>",
        "<th>F1 chuyển F0 trong ngày</th><td>1</td>",
        "<svg",
        "polyline",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    // The zone head (a manager: reads everything, changes nothing else) confirms it; a medical
    // account may not.
    let mut head = Client::new(&b.url);
    let mut nurse = Client::new(&b.url);
    for (who, name, role) in [(&mut head, "truong.khu", "manager"), (&mut nurse, "yte.mai", "medical")] {
        let fields = [
            ("display_name", name),
            ("username", name),
            ("role", role),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ];
        assert_eq!(c.post_form("/users", &fields).status, 303);
        assert_eq!(who.login(name, PASSWORD).status, 303);
    }
    assert_eq!(nurse.post_form("/reports/2026-11-21/confirm", &[]).status, 403);
    assert!(!nurse.get("/reports?date=2026-11-21").body.contains("/reports/2026-11-21/confirm"));
    assert!(head.get("/reports?date=2026-11-21").body.contains("/reports/2026-11-21/confirm"));
    let confirm = head.post_form("/reports/2026-11-21/confirm", &[]);
    assert_eq!(confirm.status, 303, "{}", confirm.body);
    let page = c.get("/reports?date=2026-11-21");
    assert!(page.body.contains("Đã xác nhận") && !page.body.contains("report-changed"), "{}", page.body);
    let confirmed = c.get("/api/v1/reports/2026-11-21").json();
    assert_eq!(confirmed["confirmed"]["figures"], expected);
    assert_eq!(confirmed["confirmed"]["confirmed_by"], "truong.khu");
    // A late entry: the page says the figures moved since the confirmation.
    assert_eq!(
        c.post_json(&format!("/api/v1/people/{}/status", ids[3]), &json!({"status": "released"})).status,
        200
    );
    assert!(c.get("/reports?date=2026-11-21").body.contains("report-changed"));
    assert_eq!(c.post_form("/reports/2026-12-01/confirm", &[]).status, 422, "a day still to come");

    // CSV and .xlsx carry the same row as the page.
    let csv = c.get("/reports/2026-11-21/export.csv").body;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("Ngày,Mã cơ sở,Huyện/thành phố"), "{csv}");
    let xlsx = c.get_bytes("/reports/2026-11-21/export.xlsx");
    let book = read_xlsx(&xlsx);
    let rows = book["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "Ngày");
    assert_eq!(rows[0][12], "Số người lấy mẫu lần 1");
    // A real date shown as Vietnamese write it, a bold header that stays in view, widths to fit.
    let row = &rows[1];
    assert_eq!(row[0], "2026-11-21T00:00:00");
    assert_eq!(
        (book["date_format"].as_str(), book["bold"].as_bool()),
        (Some("dd/mm/yyyy"), Some(true)),
        "{book}"
    );
    assert_eq!(book["frozen"], "A2");
    assert!(book["width"].as_f64().is_some_and(|w| w > 8.0), "{book}");
    // Who exported it, from where and when (17:00 at the site).
    let about = &book["about"];
    assert_eq!(
        (&about[0][1], about[1][1].as_str()),
        (&row[1], Some("lan.nguyen")),
        "the site's code: {about}"
    );
    assert!(about[2][1].as_str().is_some_and(|t| t.starts_with("2026-11-21T17:")), "{about}");
    let numbers: Vec<i64> =
        [6, 7, 8, 12, 13, 16, 18, 19].iter().map(|i| row[*i].as_i64().expect("a number")).collect();
    // In quarantine 6 after the late release; admitted 6, of whom 2 workers; sampled 3 and 1; F0 1;
    // transferred after F0 1; released 2.
    assert_eq!(numbers, vec![6, 6, 2, 3, 1, 1, 1, 2], "{row:?}");
    assert_eq!(row[17], "2026-11-21T00:00:00");
    let series = c.get("/api/v1/reports?date=2026-11-21").json();
    let last = &series.as_array().expect("series")[29];
    assert_eq!((last["admitted"].as_u64(), last["in_quarantine"].as_u64()), (Some(6), Some(6)), "{last}");
}
