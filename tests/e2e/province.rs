//! The province's web UI over HTTP with two sites of two districts whose records arrived by sync: a
//! district officer sees, searches and acknowledges only their district's; a provincial administrator
//! sees both; an acknowledgement made at the province reaches the site at its next exchange.

use std::sync::Arc;

use outpost::{
    app::Outpost,
    base::{
        clock::{Clock, ManualClock},
        config::Config,
    },
    demo::{seed_history, HistoryExtras},
};
use outpost_link::site::{self as link, SiteLink};
use outpost_province::{
    server::{Province, Server},
    users::{Scope, Users},
    web::Web,
};
use outpost_sync::{
    record::{Alert, AlertKind, AlertState, Person, Severity},
    Store, StoreConfig, WriteSet,
};
use outpost_tests::Client;

use crate::PASSWORD;

/// A site's store with `people` seeded from number `first` and one fever alert `alert_id`. With
/// `confirm`, the zone manager confirms the day's report and then one person is released: the
/// confirmed figures and the records then differ.
fn site_store(dir: &std::path::Path, site: &str, first: usize, alert_id: &str, confirm: bool) -> Store {
    let data = dir.join(site);
    let mut raw = Config::from_toml("").expect("defaults").raw;
    raw.store.data_dir = data.clone();
    raw.site.id = site.to_owned();
    let config = Config::validate(raw).expect("config");
    let store = Store::open(&data, &StoreConfig::default()).expect("store");
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z").expect("time").to_utc();
    let app = Outpost::new(store.clone(), config, ManualClock::new(now) as Arc<dyn Clock>);
    seed_history(&app, first, 4, 1, HistoryExtras::default()).expect("seed");
    let alert =
        Alert::new(alert_id.into(), AlertKind::Fever, Severity::Warning, "p1", "d1", "38,9 °C".into(), now);
    let mut w = WriteSet::new();
    w.put(&alert).expect("put");
    store.commit_blocking(w).expect("commit");
    if confirm {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("date");
        rt.block_on(app.ensure_site()).expect("site record");
        rt.block_on(app.confirm_report(day, "truong.khu")).expect("confirm");
        let first = store.list::<Person>().expect("people").remove(0);
        rt.block_on(app.change_status(&first.id, outpost_sync::record::PersonStatus::Released, "", "lan"))
            .expect("release");
    }
    store
}

fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[at..].split('"').next().expect("value").to_owned()
}

#[test]
fn district_officers_see_only_their_district_and_acknowledgements_reach_the_site() {
    district_officers_and_acknowledgements(None);
}

/// The same with the sites' documents in PostgreSQL.
#[test]
fn district_officers_and_acknowledgements_on_postgresql() {
    let pg = outpost_tests::pg::cluster();
    district_officers_and_acknowledgements(Some(pg.database("district_officers")));
    // What the province's officer acknowledged is in the database, by the province's actor.
    let alert = pg.psql(
        "district_officers",
        "SELECT value->>'state' FROM doc WHERE site = 'site-a' AND id = 'alert/a-fever'",
    );
    assert!(alert.as_deref().is_ok_and(|s| s != "open" && !s.is_empty()), "{alert:?}");
    analysts_see_their_district(pg, "district_officers");
}

/// The analysts' roles, made by `outpost-province analyst add`, read the views with `psql`: a district
/// analyst sees that district's sites only, ID numbers masked; a provincial analyst sees both; neither
/// reads a table.
fn analysts_see_their_district(pg: &outpost_tests::pg::Cluster, database: &str) {
    let add = |args: &[&str]| {
        let out = std::process::Command::new(outpost_tests::province_bin())
            .args(["--data", "/nonexistent", "--database", &pg.url(database), "analyst", "add"])
            .args(args)
            .env("OUTPOST_PROVINCE_PASSWORD", PASSWORD)
            .output()
            .expect("analyst add");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    add(&["phan_tich_lc", "--district", "Quận Liên Chiểu"]);
    add(&["phan_tich_tinh", "--province"]);
    let as_ = |role: &str, sql: &str| pg.psql_as(role, database, sql);
    let sites = "SELECT string_agg(DISTINCT site, ',') FROM analytics.people";
    assert_eq!(as_("phan_tich_lc", sites).as_deref(), Ok("site-a"));
    assert_eq!(as_("phan_tich_tinh", sites).as_deref(), Ok("site-a,site-b"));
    for view in ["sites", "declarations", "alerts", "samplings", "zone_reports"] {
        let other =
            as_("phan_tich_lc", &format!("SELECT count(*) FROM analytics.{view} WHERE site <> 'site-a'"));
        assert_eq!(other.as_deref(), Ok("0"), "{view}");
    }
    let declared = as_("phan_tich_lc", "SELECT count(*) > 0 FROM analytics.declarations");
    assert_eq!(declared.as_deref(), Ok("t"));
    let reports = as_("phan_tich_lc", "SELECT count(*) FROM analytics.zone_reports WHERE confirmed_by <> ''");
    assert_eq!(reports.as_deref(), Ok("1"), "site-a's confirmed report");
    let numbers =
        as_("phan_tich_lc", "SELECT string_agg(id_number, ',') FROM analytics.people").expect("ids");
    assert!(
        numbers.split(',').all(|n| n.chars().rev().take(4).all(|c| c.is_ascii_digit()) && n.starts_with('•')),
        "masked but for the last four: {numbers}"
    );
    let table = as_("phan_tich_lc", "SELECT count(*) FROM doc");
    assert!(table.as_ref().is_err_and(|e| e.contains("permission denied")), "{table:?}");
    // The columns say in Vietnamese what they hold.
    let comment = as_("phan_tich_lc", "SELECT col_description('analytics.people'::regclass, 4)");
    assert_eq!(comment.as_deref(), Ok("Họ và tên"));
}

fn district_officers_and_acknowledgements(database: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let province = Province::new(&dir.path().join("province"));
    province.init(&[]).expect("init");
    let token_a = province.add_site("site-a", "Quận Liên Chiểu").expect("add");
    let token_b = province.add_site("site-b", "Huyện Hòa Vang").expect("add");
    let users = Users::new(&province.dir);
    users.add("tinh.admin", "Quản trị tỉnh", Scope::Province, PASSWORD).expect("admin");
    users
        .add("lien.chieu", "Cán bộ Liên Chiểu", Scope::District("Quận Liên Chiểu".into()), PASSWORD)
        .expect("officer");
    assert!(users.add("x", "", Scope::Province, PASSWORD).is_err(), "a user name is 3 characters or more");
    assert!(users.add("ngan", "", Scope::Province, "short").is_err(), "a password is 10 characters or more");

    let server = match &database {
        None => Server::new(province),
        Some(url) => Server::new(province)
            .with_database(outpost_sync::pg::Database::connect(url, 4).expect("database")),
    };
    let sync = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let sync_addr = sync.local_addr().expect("addr").to_string();
    rt.spawn(server.clone().serve(sync));
    let web = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", web.local_addr().expect("addr"));
    rt.spawn(Web::new(server.clone(), chrono::Duration::minutes(15)).serve(web));

    // Two sites' records reach the province by sync.
    let mut sites = Vec::new();
    for (site, token, first, alert, confirm) in
        [("site-a", &token_a, 0, "a-fever", true), ("site-b", &token_b, 100, "b-fever", false)]
    {
        let bundle = rt.block_on(link::enroll(&sync_addr, token)).expect("enrol");
        let site = SiteLink::new(site_store(dir.path(), site, first, alert, confirm), bundle);
        while rt.block_on(site.push(&sync_addr)).expect("push").sent_docs > 0 {}
        sites.push(site);
    }

    // Signed out: the login page; a wrong password: refused.
    let mut officer = Client::new(&url);
    let res = officer.get("/");
    assert_eq!((res.status, res.location.as_deref()), (303, Some("/login")));
    // A login posted without the form's token (from another site) is refused.
    let res = officer.post_form_raw("/login", &[("username", "lien.chieu"), ("password", PASSWORD)]);
    assert_eq!(res.status, 403, "{}", res.body);
    officer.get("/login");
    let res = officer.post_form("/login", &[("username", "lien.chieu"), ("password", "not the password")]);
    assert_eq!(res.status, 401);
    assert!(res.body.contains("Sai tên đăng nhập hoặc mật khẩu"), "{}", res.body);
    let res = officer.post_form("/login", &[("username", "lien.chieu"), ("password", PASSWORD)]);
    assert_eq!(res.status, 303, "{}", res.body);

    // The officer's overview, search, alerts and CSV hold site-a only.
    let home = officer.get("/");
    assert!(home.body.contains("data-site=\"site-a\"") && !home.body.contains("site-b"), "{}", home.body);
    assert!(home.body.contains("<span class=\"on\">trực tuyến"), "{}", home.body);
    assert!(home.body.contains("<div id=\"total-people\">3"), "one of four released: {}", home.body);
    let own = officer.get("/people?q=050000000000");
    assert_eq!(own.body.matches("data-person=").count(), 1, "{}", own.body);
    let partial = officer.get("/people?q=05000000000");
    assert!(!partial.body.contains("data-person="), "an ID number is found only whole: {}", partial.body);
    let other = officer.get("/people?q=050000000100");
    assert!(!other.body.contains("data-person="), "site-b's people are not found: {}", other.body);
    // A name however it is typed: any part of it, without accents, in capitals ("HUONG" finds
    // "Trần Thị Hương").
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("date");
    let name = outpost::demo::person_input(1, today).full_name;
    let words: Vec<String> = outpost_sync::record::fold(&name).split(' ').map(str::to_uppercase).collect();
    for q in [words[words.len() - 1].clone(), words[1..].join("  ")] {
        let found = officer.get(&format!("/people?q={}", q.replace(' ', "+")));
        assert!(found.body.contains(&name), "{q} finds {name}: {}", found.body);
    }
    // The site's own page: its figures, today's report, its open alerts; not another district's.
    let site = officer.get("/site?id=site-a");
    assert_eq!(site.status, 200, "{}", site.body);
    for text in ["id=\"site-people\"", "Báo cáo hôm nay", "data-alert=\"a-fever\"", "Số người lấy mẫu lần 1"]
    {
        assert!(site.body.contains(text), "{text} in {}", site.body);
    }
    assert_eq!(officer.get("/site?id=site-b").status, 404);
    assert!(home.body.contains("href=\"/site?id=site-a\""), "the overview links to it");
    let alerts = officer.get("/alerts");
    assert!(
        alerts.body.contains("data-alert=\"a-fever\"") && !alerts.body.contains("b-fever"),
        "{}",
        alerts.body
    );
    // The zone report of the day the sites were seeded (four people admitted at each): site-a's as
    // its manager confirmed it (four in quarantine, though one was released after).
    let report = officer.get("/reports?date=21/11/2026");
    assert!(
        report.body.contains("data-site=\"site-a\"") && !report.body.contains("site-b"),
        "{}",
        report.body
    );
    assert!(report.body.contains("đã xác nhận (truong.khu)"), "{}", report.body);
    let total = report.body.split("id=\"report-total\"").nth(1).expect("a total row");
    assert!(
        total.starts_with("><th>Toàn bộ</th><td></td><td></td><td></td><td></td><th>4</th><th>4</th>"),
        "{total}"
    );
    let report_csv = officer.get("/reports.csv?date=2026-11-21");
    assert_eq!(report_csv.body.lines().count(), 3, "header, site-a, total: {}", report_csv.body);
    assert_eq!(officer.get("/reports?date=31/02/2026").status, 400);
    let csv = officer.get("/sites.csv");
    assert!(csv.body.contains("site-a,") && !csv.body.contains("site-b"), "{}", csv.body);
    let csrf = csrf_of(&alerts.body);
    let res = officer.post_form_raw("/alerts/ack", &[("site", "site-b"), ("id", "b-fever"), ("csrf", &csrf)]);
    assert_eq!(res.status, 404, "another district's alert cannot be acknowledged");
    let res =
        officer.post_form_raw("/alerts/ack", &[("site", "site-a"), ("id", "a-fever"), ("csrf", "forged")]);
    assert_eq!(res.status, 403, "a form without the session's token is refused");
    let res = officer.post_form_raw("/alerts/ack", &[("site", "site-a"), ("id", "a-fever"), ("csrf", &csrf)]);
    assert_eq!(res.status, 303, "{}", res.body);

    // The acknowledgement reaches site-a at its next exchange; site-b's alert is untouched.
    rt.block_on(sites[0].push(&sync_addr)).expect("push");
    let at_site = sites[0].store.get::<Alert>("a-fever").expect("get").expect("a-fever");
    assert_eq!(at_site.state, AlertState::Acknowledged);
    assert_eq!(at_site.acknowledged_by.as_deref(), Some("province:lien.chieu"));
    let b = server.store("site-b").expect("store").get::<Alert>("b-fever").expect("get").expect("b-fever");
    assert_eq!(b.state, AlertState::Open);

    // The province extends a quarantine while the site, not knowing, changes the room and the end
    // date: the room and the province's edit merge field by field; the end date both changed has one
    // value on both sides, and the record's page shows the other beside it and both in the history.
    let at_province = server.store("site-a").expect("store");
    let mut person = at_province.list::<Person>().expect("people").into_iter().next().expect("a person");
    let end = person.quarantine_end;
    person.details.quarantine_end = end + chrono::Duration::days(7);
    let mut w = WriteSet::new();
    w.put(&person).expect("put");
    at_province.commit_blocking(w).expect("commit");
    let mut at_site = sites[0].store.get::<Person>(&person.id).expect("get").expect("the person at the site");
    at_site.details.room = "B-12".into();
    at_site.details.quarantine_end = end + chrono::Duration::days(3);
    let mut w = WriteSet::new();
    w.put(&at_site).expect("put");
    sites[0].store.commit_blocking(w).expect("commit");
    rt.block_on(sites[0].push(&sync_addr)).expect("push");
    rt.block_on(sites[0].push(&sync_addr)).expect("push");
    let (here, there) = (
        sites[0].store.get::<Person>(&person.id).expect("get").expect("person"),
        at_province.get::<Person>(&person.id).expect("get").expect("person"),
    );
    assert_eq!(here, there, "both sides hold the same record");
    assert_eq!(here.room, "B-12");
    let record = officer.get(&format!("/record?site=site-a&doc=person/{}", person.id));
    assert_eq!(record.status, 200, "{}", record.body);
    let conflict = record.body.split("id=\"conflicts\"").nth(1).expect("a conflicts table");
    for date in [end + chrono::Duration::days(7), end + chrono::Duration::days(3)] {
        let shown = date.format("%d/%m/%Y").to_string();
        assert!(conflict.contains(&shown), "{shown} in {}", record.body);
    }
    // The record reads as the box's pages do: statuses and categories in words, yes and no, times
    // in Vietnam's time, the status history as lines; no raw value.
    let fields =
        record.body.split("id=\"fields\"").nth(1).expect("the fields").split("</table>").next().unwrap_or("");
    for text in [
        "<th>Tình trạng</th><td>Hoàn thành cách ly</td>",
        "<th>Lịch sử tình trạng</th><td>21/11/2026 21:00 · Đang cách ly · seed; ",
        "<th>Công nhân</th><td>",
        "<th>Tạo lúc</th><td>",
    ] {
        assert!(fields.contains(text), "{text} in {fields}");
    }
    let raw =
        ["released", "traveller", "<td>false</td>", "<td>true</td>", "T14:00:00", "[{", "<th>home_geofence"];
    for raw in raw {
        assert!(!fields.contains(raw), "{raw} shown raw: {fields}");
    }
    assert!(
        record.body.contains("<td>tỉnh</td>") && record.body.contains("<td>cơ sở</td>"),
        "{}",
        record.body
    );
    let hidden = officer.get("/record?site=site-b&doc=alert/b-fever");
    assert_eq!(hidden.status, 404, "another district's record is not shown");

    // A correction at the province (an extension of the quarantine, another room) reaches the site
    // at its next exchange, and the status history says who made it and why.
    let csrf = csrf_of(&record.body);
    let extended = (here.quarantine_end + chrono::Duration::days(10)).format("%d/%m/%Y").to_string();
    let mut correct = |end: &str, note: &str| {
        let form = [
            ("site", "site-a"),
            ("id", person.id.as_str()),
            ("csrf", csrf.as_str()),
            ("quarantine_end", end),
            ("room", "C-03"),
            ("note", note),
        ];
        officer.post_form_raw("/record/correct", &form)
    };
    assert_eq!(correct(&extended, "").status, 422, "a reason is needed");
    assert_eq!(correct("01/01/2020", "QĐ 55/QĐ-UBND").status, 422, "an end before the start");
    let res = correct(&extended, "QĐ 55/QĐ-UBND gia hạn");
    assert_eq!(res.status, 303, "{}", res.body);
    while rt.block_on(sites[0].push(&sync_addr)).expect("push").sent_docs > 0 {}
    rt.block_on(sites[0].push(&sync_addr)).expect("push");
    let at_site = sites[0].store.get::<Person>(&person.id).expect("get").expect("person");
    assert_eq!(at_site.quarantine_end.format("%d/%m/%Y").to_string(), extended);
    assert_eq!(at_site.room, "C-03");
    let last = at_site.status_history.last().expect("a history entry");
    assert!(last.by == "province:lien.chieu" && last.note.contains("QĐ 55/QĐ-UBND gia hạn"), "{last:?}");

    // The provincial administrator sees both districts.
    let mut admin = Client::new(&url);
    admin.get("/login");
    let res = admin.post_form("/login", &[("username", "tinh.admin"), ("password", PASSWORD)]);
    assert_eq!(res.status, 303);
    let home = admin.get("/");
    assert!(home.body.contains("data-site=\"site-a\"") && home.body.contains("data-site=\"site-b\""));
    assert!(home.body.contains("<div id=\"total-people\">7"), "one released at site-a: {}", home.body);
    let report = admin.get("/reports?date=2026-11-21");
    let total = report.body.split("id=\"report-total\"").nth(1).expect("a total row");
    assert!(total.contains("<th>8</th><th>8</th>"), "both sites add up: {total}");
    let found = admin.get("/people?q=050000000100");
    assert_eq!(found.body.matches("data-person=").count(), 1, "{}", found.body);

    // Five wrong passwords lock the name for a while: then even the right one is refused.
    let mut guesser = Client::new(&url);
    guesser.get("/login");
    for _ in 0..5 {
        let res =
            guesser.post_form("/login", &[("username", "lien.chieu"), ("password", "doan-mat-khau-123")]);
        assert_eq!(res.status, 401);
    }
    let res = guesser.post_form("/login", &[("username", "lien.chieu"), ("password", PASSWORD)]);
    assert_eq!(res.status, 429, "{}", res.body);
    assert!(res.body.contains("tạm khóa"), "{}", res.body);
}

/// `outpost-province demo` in `dir`, its web UI on a port of its own: the process, the port, and the
/// password it printed for `user`.
pub(crate) fn province_demo(
    dir: &std::path::Path,
    user: &str,
) -> (outpost_tests::ProvinceProcess, u16, String) {
    use std::io::{BufRead, BufReader};
    let web_port = outpost_tests::free_port();
    let mut demo = outpost_tests::ProvinceProcess(
        std::process::Command::new(outpost_tests::province_bin())
            .arg("--data")
            .arg(dir.join("demo"))
            .args(["demo", "--listen", "127.0.0.1:0", "--web", &format!("127.0.0.1:{web_port}")])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("outpost-province demo"),
    );
    let mut lines = BufReader::new(demo.0.stdout.take().expect("stdout")).lines();
    let mut password = None;
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line.trim_start().starts_with(user) {
            password = line.split_whitespace().last().map(str::to_owned);
        }
        if line.starts_with("web UI on") {
            break;
        }
    }
    (demo, web_port, password.expect("the user's password is printed"))
}

/// `outpost-province demo`: a province with simulated sites in two districts and two users whose
/// passwords it prints once; the district officer signs in with theirs and sees their district.
#[test]
fn the_province_demo_starts_with_its_sites_and_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (demo, web_port, password) = province_demo(dir.path(), "lien.chieu");
    let mut officer = Client::new(&format!("http://127.0.0.1:{web_port}"));
    officer.get("/login");
    let res = officer.post_form("/login", &[("username", "lien.chieu"), ("password", &password)]);
    assert_eq!(res.status, 303, "{}", res.body);
    let home = officer.get("/");
    assert_eq!(home.body.matches("data-site=").count(), 2, "two sites in Quận Liên Chiểu: {}", home.body);
    assert!(!home.body.contains("tyt-hoa-vang"));
    let alerts = officer.get("/alerts");
    assert!(alerts.body.contains("Sốt") || alerts.body.contains("Không khai báo"), "{}", alerts.body);
    drop(demo);
}
