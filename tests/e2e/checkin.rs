//! QR check-in [M12] with the real box: the poster's link opens the public form, a visitor goes in and
//! out, a bad form and another site's code are refused with a clear message, staff scan a quarantined
//! person, and the log is searched and exported.

use outpost_tests::{district_csv, BoxProcess, Client};
use serde_json::json;

use crate::PASSWORD;

#[test]
fn visitors_and_people_in_and_out_of_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--clock", "2026-11-21T02:00:00Z"]);
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    assert_eq!(
        staff
            .post_bytes("/api/v1/people/import", "text/csv", &district_csv(2, "21/11/2026", "05/12/2026"))
            .status,
        200
    );

    let poster = staff.get("/checkin/poster");
    assert!(poster.body.contains("<svg"), "the QR code");
    let at = poster.body.find("id=\"checkin-link\" href=\"").expect("the link") + 24;
    let link = poster.body[at..].split('"').next().expect("link").to_owned();
    let path = &link[link.find("/c/").expect("/c/")..];

    // A visitor, as the phone that scanned the poster: the form, then in and out.
    let mut visitor = Client::new(&b.url);
    let form = visitor.get(path);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Khai báo ra vào khu cách ly"), "Vietnamese first: {}", form.body);
    let fields = |direction: &'static str| {
        vec![
            ("direction", direction),
            ("name", "Trần Văn Giao"),
            ("phone", "0905 123 456"),
            ("purpose", "delivery"),
            ("note", "Cơm trưa"),
        ]
    };
    let res = visitor.post_form(path, &fields("in"));
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("Đã ghi nhận: Vào"), "{}", res.body);
    let bad =
        visitor.post_form(path, &[("direction", "in"), ("name", ""), ("phone", "12"), ("purpose", "party")]);
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("Vui lòng nhập họ và tên") && bad.body.contains("Số điện thoại không hợp lệ"),
        "{}",
        bad.body
    );
    assert!(visitor.post_form(path, &fields("out")).status == 200);
    let other = visitor.get("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(other.status, 404);
    assert!(other.body.contains("không phải của khu cách ly này"), "{}", other.body);
    assert_eq!(visitor.post_form("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &fields("in")).status, 404);

    // Staff scan a quarantined person out by ID number; an unknown code is refused.
    let res = staff.post_json("/api/v1/checkins/scan", &json!({"code": "079000000001", "direction": "out"}));
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["purpose"], "quarantined");
    assert_eq!(
        staff.post_json("/api/v1/checkins/scan", &json!({"code": "nobody", "direction": "out"})).status,
        422
    );

    let all = staff.get("/api/v1/checkins").json();
    assert_eq!(all.as_array().expect("log").len(), 3, "{all}");
    assert_eq!(all[0]["purpose"], "quarantined", "newest first");
    let found = staff.get("/api/v1/checkins?q=giao").json();
    assert_eq!(found.as_array().expect("log").len(), 2, "found without accents: {found}");
    assert_eq!(staff.get("/api/v1/checkins?date=22/11/2026").json().as_array().expect("log").len(), 0);
    let page = staff.get("/checkin?q=0905123456");
    assert!(page.body.contains("Trần Văn Giao") && page.body.contains("Giao hàng"), "{}", page.body);
    let csv = staff.get("/checkin/export.csv?q=giao").body;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].contains("21/11/2026 09:00,Ra,Trần Văn Giao,0905123456"), "{csv}");
}
