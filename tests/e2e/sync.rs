//! A box and the provincial server as real processes on loopback: the province makes its CA and a
//! site's one-time token, the box enrols with it and then pushes what it records; the province
//! holds it; when the province is killed the box keeps working and says so on its health page.

use std::{process::Command, time::Duration};

use outpost_tests::{
    district_csv, enroll_box as enroll, province_cmd as province, serve_province as serve_with, wait_until,
    write_config, BoxProcess, Client, ProvinceProcess,
};

use crate::PASSWORD;

/// Starts `outpost-province serve` on `listen`; the process and the address it listens on.
fn serve(data: &std::path::Path, listen: &str) -> (ProvinceProcess, String) {
    serve_with::<&str>(data, listen, &[])
}

/// The box's sync status. A box whose clock was far behind takes the province's time, and the
/// sessions it began on its old clock end then: this logs in again.
fn sync_status(c: &mut Client) -> serde_json::Value {
    let res = c.get("/api/v1/health");
    if res.status == 401 {
        assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303, "logging in again");
        return c.get("/api/v1/health").json()["sync"].clone();
    }
    res.json()["sync"].clone()
}

/// A province in `pdata` serving on loopback with the site `demo-site`, and the box's data folder
/// `data` enrolled with it (a configuration in `dir` that syncs every second): the province's process
/// and the configuration's path.
fn enrolled(
    dir: &std::path::Path,
    pdata: &std::path::Path,
    data: &std::path::Path,
) -> (ProvinceProcess, String) {
    province(pdata, &["init"]);
    let token = province(pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let (server, addr) = serve(pdata, "127.0.0.1:0");
    let config = write_config(dir, "[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n");
    let out = enroll(&config, data, &addr, &token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (server, config)
}

#[test]
fn a_box_enrols_and_its_records_reach_the_province() {
    records_reach_the_province();
}

/// The same with the province's sites in PostgreSQL.
#[test]
fn a_box_enrols_and_its_records_reach_the_province_on_postgresql() {
    let pg = outpost_tests::pg::cluster();
    outpost_tests::use_database(pg.database("records_reach"));
    records_reach_the_province();
    let people =
        pg.psql("records_reach", "SELECT count(*) FROM doc WHERE site = 'demo-site' AND kind = 'person'");
    assert_eq!(people.as_deref(), Ok("5"), "in the database, not in the data folder");
}

fn records_reach_the_province() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    let fingerprint = province(&pdata, &["init"]);
    assert!(fingerprint.starts_with("CA fingerprint (SHA-256): "), "{fingerprint}");
    let token = province(&pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let (mut server, addr) = serve(&pdata, "127.0.0.1:0");

    let config = write_config(dir.path(), "[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n");
    let enroll = |token: &str| enroll(&config, &data, &addr, token);
    let wrong = enroll(&format!("other-site{}", &token[token.find('.').expect("dot")..]));
    assert!(!wrong.status.success());
    let out = enroll(&token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!enroll(&token).status.success(), "a token works once");

    let b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(5, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the province to acknowledge everything", || {
        let h = c.get("/api/v1/health").json();
        h["sync"]["pending"] == 0
            && h["sync"]["last_success"].is_string()
            && h["sync"]["exchanges"].as_u64() >= Some(2)
    });
    assert!(c.get("/health").body.contains("id=\"health-sync\""));

    // The province goes away: the box keeps serving and shows the failures.
    let _ = server.kill();
    let _ = server.wait();
    wait_until("the box to notice", || {
        c.get("/api/v1/health").json()["sync"]["failures_in_a_row"].as_u64() >= Some(1)
    });
    assert_eq!(c.get("/healthz").status, 200);
    let counts: serde_json::Value =
        serde_json::from_str(&province(&pdata, &["site", "show", "demo-site"])).expect("counts");
    assert_eq!(counts["person"], 5, "{counts}");
    std::thread::sleep(Duration::from_millis(10));
}

/// A box with no link at all enrols from a USB stick: the province writes the site's enrolment to a
/// file (mode 0600), another site's box refuses it, this site's box takes it, and once a link exists
/// its records reach the province.
#[test]
fn a_box_enrols_from_a_usb_stick() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    province(&pdata, &["init"]);
    province(&pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let (_server, addr) = serve(&pdata, "127.0.0.1:0");
    let stick = dir.path().join("usb").join("demo-site.json");
    std::fs::create_dir_all(stick.parent().expect("folder")).expect("usb folder");
    let stick_path = stick.display().to_string();
    province(&pdata, &["site", "export", "demo-site", "--province", &addr, "--to", &stick_path]);
    assert_eq!(std::fs::metadata(&stick).expect("the file").permissions().mode() & 0o777, 0o600);
    let from_file = |config: &str, data: &std::path::Path| {
        Command::new(outpost_tests::outpost_bin())
            .args(["enroll", "--config", config, "--data"])
            .arg(data)
            .args(["--from-file", &stick_path])
            .output()
            .expect("outpost enroll")
    };
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let other = write_config(&other_dir, "[site]\nid = \"other-site\"\n");
    let refused = from_file(&other, &other_dir.join("data"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("for site demo-site"), "{refused:?}");
    let config = write_config(dir.path(), "[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n");
    let out = from_file(&config, &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(3, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the province to acknowledge everything", || {
        let h = c.get("/api/v1/health").json();
        h["sync"]["pending"] == 0 && h["sync"]["exchanges"].as_u64() >= Some(2)
    });
}

/// A box the province can reach answers its pulls: with the box's own pushes an hour apart, what staff
/// record reaches the province by pulls, and the province's log says so.
#[test]
fn the_province_pulls_a_box_it_can_reach() {
    pulls_a_box();
}

/// The same with the province's sites in PostgreSQL.
#[test]
fn the_province_pulls_a_box_it_can_reach_on_postgresql() {
    outpost_tests::use_database(outpost_tests::pg::cluster().database("pulls"));
    pulls_a_box();
}

fn pulls_a_box() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    province(&pdata, &["init"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let pull_addr = format!("127.0.0.1:{port}");
    let token = province(
        &pdata,
        &["site", "add", "demo-site", "--district", "Quận Liên Chiểu", "--address", &pull_addr],
    );
    let (mut server, addr) = serve_with(&pdata, "127.0.0.1:0", &["--pull-every", "1"]);
    let config = write_config(
        dir.path(),
        &format!("[sync]\ninterval_seconds = 3600\nmax_backoff_seconds = 3600\nlisten = \"{pull_addr}\"\n"),
    );
    let out = enroll(&config, &data, &addr, &token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let log = || -> serde_json::Value {
        std::fs::read(pdata.join("sites/demo-site/last-sync.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    // The box pushes at start, then not for an hour; the province pulls every second.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while log()["pulls"].as_u64() < Some(1) {
        assert!(std::time::Instant::now() < deadline, "the province did not pull: {}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let pushes = log()["pushes"].as_u64().expect("pushes");
    let pulls = log()["pulls"].as_u64().expect("pulls");
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(4, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the province's pulls to take everything", || {
        c.get("/api/v1/health").json()["sync"]["pending"] == 0 && log()["pulls"].as_u64() > Some(pulls + 1)
    });
    let _ = server.kill();
    let _ = server.wait();
    let counts: serde_json::Value =
        serde_json::from_str(&province(&pdata, &["site", "show", "demo-site"])).expect("counts");
    assert_eq!(counts["person"], 4, "{counts}");
    assert_eq!(log()["pushes"].as_u64(), Some(pushes), "only pulls carried the import: {}", log());
    let listed = province(&pdata, &["site", "list"]);
    assert!(listed.contains(&pull_addr) && !listed.contains("never"), "{listed}");
}

/// A site offline for 14 days with 300 people (declarations three times a day, missing-declaration
/// and fever alerts, follow-up sheets, presence days) syncs completely the first time it reaches the
/// province: one session of back-to-back exchanges, alerts first, the province then holding every
/// document exactly as the site does.
#[test]
fn fourteen_days_offline_sync_completely_at_the_first_link() {
    use outpost::{
        app::Outpost,
        base::{
            clock::{Clock, ManualClock},
            config::Config,
        },
        demo::{seed_history, HistoryExtras},
    };
    use outpost_link::site as link;
    use outpost_province::server::{Province, Server};
    use outpost_sync::{Store, StoreConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let province = Province::new(&dir.path().join("province"));
    province.init(&[]).expect("init");
    let token = province.add_site("demo-site", "Quận Liên Chiểu").expect("add");
    let server = Server::new(province);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(server.clone().serve(listener));

    let data = dir.path().join("box");
    let mut raw = Config::from_toml("").expect("defaults").raw;
    raw.store.data_dir = data.clone();
    let config = Config::validate(raw).expect("config");
    let store = Store::open(&data, &StoreConfig::default()).expect("store");
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z").expect("time").to_utc();
    let app = Outpost::new(store.clone(), config, ManualClock::new(now) as std::sync::Arc<dyn Clock>);
    let started = std::time::Instant::now();
    let written = seed_history(&app, 0, 300, 14, HistoryExtras { daily_records: true }).expect("seed");
    rt.block_on(store.durable()).expect("durable");
    let seeded = started.elapsed();

    let bundle = rt.block_on(link::enroll(&addr, &token)).expect("enrol");
    let started = std::time::Instant::now();
    let (mut round_trips, mut bytes) = (0, 0);
    loop {
        let moved =
            rt.block_on(link::SiteLink::new(store.clone(), bundle.clone()).push(&addr)).expect("an exchange");
        round_trips += 1;
        bytes += moved.sent_bytes + moved.received_bytes;
        if round_trips == 1 {
            let alerts = server
                .store("demo-site")
                .expect("store")
                .list::<outpost_sync::record::Alert>()
                .expect("alerts");
            assert_eq!(
                alerts.len(),
                store.list::<outpost_sync::record::Alert>().expect("alerts").len(),
                "alerts go first"
            );
        }
        if moved.sent_docs == 0 && moved.received_docs == 0 {
            break;
        }
        assert!(round_trips < 100, "no end to the backlog");
    }
    let synced = started.elapsed();
    let at_province = server.store("demo-site").expect("store");
    let docs = store.changes_since(0, usize::MAX).expect("log");
    assert!(docs.len() >= written, "{} documents for {written} written", docs.len());
    for (_, doc_id) in &docs {
        let (mut a, mut b) = (store.heads(doc_id).expect("heads"), at_province.heads(doc_id).expect("heads"));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{doc_id} differs at the province");
    }
    assert_eq!(at_province.changes_since(0, usize::MAX).expect("log").len(), docs.len());
    println!(
        "14 days × 300 people: {} documents seeded in {:.1} s; synced in {round_trips} round trips, {:.1} MB, {:.1} s",
        docs.len(),
        seeded.as_secs_f64(),
        bytes as f64 / 1e6,
        synced.as_secs_f64()
    );
}

/// The link is blocked for ten minutes of the box's injected time: the box backs off in its own time
/// (a few attempts, not one a second), and when the link returns, its next attempt by that clock
/// takes everything.
#[test]
fn a_link_blocked_for_minutes_of_injected_time_recovers() {
    use outpost_tests::{FlakyProxy, ProxyMode};
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    province(&pdata, &["init"]);
    let token = province(&pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let (mut server, addr) = serve(&pdata, "127.0.0.1:0");
    let proxy = FlakyProxy::start(addr);
    let config = write_config(dir.path(), "[sync]\ninterval_seconds = 60\nmax_backoff_seconds = 600\n");
    let out = enroll(&config, &data, &proxy.addr, &token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    proxy.set(ProxyMode::Block);
    let mut b = BoxProcess::start("run", &data, &["--config", &config, "--clock", "2026-11-21T08:00:00Z"]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(5, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let sync = sync_status;
    wait_until("the first failure", || sync(&mut c)["failures_in_a_row"].as_u64() >= Some(1));
    for _ in 0..10 {
        b.clock("advance 1m");
        std::thread::sleep(Duration::from_millis(300));
    }
    let s = sync(&mut c);
    let failures = s["failures_in_a_row"].as_u64().expect("failures");
    // Back-off from 60 s doubling (±25 %): attempts at 0, ~2, ~6 minutes, the next past 10.
    assert!((2..=5).contains(&failures), "ten minutes of back-off: {s}");
    assert!(s["pending"].as_u64() > Some(0), "{s}");
    assert!(s["next_attempt"].as_str() > Some("2026-11-21T08:10"), "{s}");

    proxy.set(ProxyMode::Pass);
    b.clock("advance 10m");
    wait_until("everything to go once the link is back", || {
        let s = sync(&mut c);
        s["pending"] == 0 && s["failures_in_a_row"] == 0
    });
    let _ = server.kill();
    let _ = server.wait();
    let counts: serde_json::Value =
        serde_json::from_str(&province(&pdata, &["site", "show", "demo-site"])).expect("counts");
    assert_eq!(counts["person"], 5, "{counts}");
}

/// Two boxes push to the province through a proxy that cuts connections mid-batch and refuses them
/// for a while, and the province is killed with SIGKILL while batches flow and started again: in the
/// end the province holds every declaration either box acknowledged, once.
#[test]
fn nothing_is_lost_when_the_link_and_the_province_fail() {
    nothing_lost_when_the_link_and_the_province_fail();
}

/// The same with the province's sites in PostgreSQL (the province killed in the middle of its
/// transactions).
#[test]
fn nothing_is_lost_when_the_link_and_the_province_fail_on_postgresql() {
    let pg = outpost_tests::pg::cluster();
    outpost_tests::use_database(pg.database("nothing_lost"));
    nothing_lost_when_the_link_and_the_province_fail();
    let sites = pg.psql("nothing_lost", "SELECT string_agg(DISTINCT site, ',') FROM doc");
    assert_eq!(sites.as_deref(), Ok("site-a,site-b"));
}

fn nothing_lost_when_the_link_and_the_province_fail() {
    use outpost_tests::{free_port, FlakyProxy, ProxyMode};
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    province(&pdata, &["init"]);
    let listen = format!("127.0.0.1:{}", free_port());
    let (mut server, addr) = serve(&pdata, &listen);
    let proxy = FlakyProxy::start(addr.clone());
    let mut boxes = Vec::new();
    for (i, site) in ["site-a", "site-b"].into_iter().enumerate() {
        let token = province(&pdata, &["site", "add", site, "--district", "Hòa Vang"]);
        let sdir = dir.path().join(site);
        std::fs::create_dir_all(&sdir).expect("dir");
        let config = write_config(
            &sdir,
            &format!("[site]\nid = \"{site}\"\n[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n"),
        );
        let data = sdir.join("data");
        let out = enroll(&config, &data, &proxy.addr, &token);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (b, c, tokens) = outpost_tests::box_with_list(&data, &config, PASSWORD, 20 + i);
        boxes.push((site, b, c, tokens, 0usize));
    }

    // Declarations keep coming while the link fails in every way.
    let modes = [
        ProxyMode::Cut,
        ProxyMode::Block,
        ProxyMode::Pass,
        ProxyMode::Cut,
        ProxyMode::Pass,
        ProxyMode::Block,
    ];
    for (round, mode) in modes.into_iter().cycle().take(24).enumerate() {
        proxy.set(mode);
        for (_, b, _, tokens, acknowledged) in boxes.iter_mut() {
            *acknowledged += outpost_tests::declare_round(&b.url, tokens, round);
        }
        if mode == ProxyMode::Pass && round % 6 == 4 {
            // While the boxes push what was just declared, the province dies (SIGKILL) and comes
            // back on the same port with the same data; four times, at random moments.
            std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 400));
            let _ = server.kill();
            let _ = server.wait();
            std::thread::sleep(Duration::from_millis(300));
            server = serve(&pdata, &listen).0;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    proxy.set(ProxyMode::Pass);
    for (site, _, c, _, _) in boxes.iter_mut() {
        wait_until(&format!("{site} to have nothing pending"), || {
            let h = c.get("/api/v1/health").json();
            h["sync"]["pending"] == 0 && h["sync"]["failures_in_a_row"] == 0
        });
    }
    assert!(
        proxy.cuts.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy cut connections mid-stream"
    );
    let _ = server.kill();
    let _ = server.wait();
    for (site, _, _, tokens, acknowledged) in &boxes {
        let counts: serde_json::Value =
            serde_json::from_str(&province(&pdata, &["site", "show", site])).expect("counts");
        assert_eq!(counts["declaration"].as_u64(), Some(*acknowledged as u64), "{site}: {counts}");
        assert_eq!(counts["person"].as_u64(), Some(tokens.len() as u64), "{site}: {counts}");
    }
}

/// A box whose clock is five days behind (a Raspberry Pi has no battery clock, and a site without
/// internet has no NTP) takes the province's time at its first exchange: what it records afterwards
/// carries the right time, so the province's daily report counts it on the right day; the sync
/// itself never depended on the time.
#[test]
fn a_site_clock_days_behind_takes_the_province_time() {
    use chrono::{Duration as Days, Utc};
    use outpost_province::server::{Province, Server};
    use outpost_sync::record::{Person, PersonStatus, Site};
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    let (mut server, config) = enrolled(dir.path(), &pdata, &data);
    let behind = Days::days(5);
    let start = (Utc::now() - behind).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut b = BoxProcess::start("run", &data, &["--config", &config, "--clock", &start]);
    wait_until("a first exchange", || !province(&pdata, &["site", "list"]).contains("never"));
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let corrected = sync_status(&mut c)["clock_corrected_seconds"].as_i64().expect("offset");
    assert!((corrected - behind.num_seconds()).abs() < 120, "moved by {corrected} s");
    let page = c.get("/health").body;
    assert!(page.contains("clock-corrected") && page.contains("+5 ngày"), "the health page says so");
    let listed = province(&pdata, &["site", "list"]);
    assert!(listed.contains("\tclock "), "the province shows the site's clock: {listed}");

    // Admitted and converted to F0 today, by the province's calendar (the site is at UTC+7).
    let today = (Utc::now() + Days::hours(7)).date_naive();
    let d = |date: chrono::NaiveDate| date.format("%d/%m/%Y").to_string();
    let res = c.post_bytes(
        "/api/v1/people/import",
        "text/csv",
        &district_csv(3, &d(today), &d(today + Days::days(14))),
    );
    assert_eq!(res.status, 200, "{}", res.body);
    let people = c.get("/api/v1/people").json();
    let first = people[0]["id"].as_str().expect("id").to_owned();
    let res = c
        .post_json(&format!("/api/v1/people/{first}/status"), &serde_json::json!({"status": "converted_f0"}));
    assert_eq!(res.status, 200, "{}", res.body);
    // The box's (manual) clock stands still unless moved: a minute at a time, its next exchange comes.
    wait_until("the province to hold everything", || {
        b.clock("advance 1m");
        sync_status(&mut c)["pending"] == 0
    });
    let _ = server.kill();
    let _ = server.wait();

    let store = Server::new(Province::new(&pdata)).store("demo-site").expect("store");
    let site = store.list::<Site>().expect("site").pop().expect("the site record");
    let people = store.list::<Person>().expect("people");
    assert_eq!(people.len(), 3);
    let converted = people.iter().find(|p| p.id == first).expect("the converted person");
    let change = converted.status_history.last().expect("history");
    assert_eq!(change.status, PersonStatus::ConvertedF0);
    assert!(
        (change.at - Utc::now()).num_minutes().abs() < 5,
        "stamped on the province's time: {}",
        change.at
    );
    let report = outpost_sync::report::zone_day(&site, &people, &[], today);
    assert_eq!(
        (report.admitted, report.converted_f0, report.last_f0, report.in_quarantine),
        (3, 1, Some(today), 2),
        "{report:?}"
    );
}

/// An enrolled box restored from a backup gets back from the province what the old box sent it after
/// the backup: the restored store is a new incarnation, and the province starts over with it.
#[test]
fn a_box_restored_from_a_backup_gets_back_what_the_province_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data, usb) = (dir.path().join("province"), dir.path().join("box"), dir.path().join("usb"));
    let (mut server, config) = enrolled(dir.path(), &pdata, &data);

    let mut b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let synced = |c: &mut Client| {
        wait_until("the province to acknowledge everything", || {
            let s = sync_status(c);
            s["pending"] == 0 && s["last_success"].is_string()
        })
    };
    let (before, _) = c.admit("Trần Văn Bảo", "0905000111", "048123456720");
    synced(&mut c);
    let backup = Command::new(outpost_tests::outpost_bin())
        .args(["backup", "--config", &config, "--to"])
        .arg(&usb)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("outpost backup");
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let text = String::from_utf8_lossy(&backup.stdout).into_owned();
    let file = text["Backup written: ".len()..].split(" (").next().expect("path").to_owned();
    // After the backup: a person admitted, and it reaches the province.
    let (after, _) = c.admit("Lê Thị Cúc", "0905000222", "048123456721");
    synced(&mut c);
    b.stop();

    let restore = Command::new(outpost_tests::outpost_bin())
        .args(["restore", "--config", &config, "--from", &file, "--data"])
        .arg(&data)
        .output()
        .expect("outpost restore");
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let said = String::from_utf8_lossy(&restore.stdout);
    assert!(said.contains("enrolled with the province"), "{said}");
    let b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303);
    assert!(c.people_ids().contains(&before));
    wait_until("the person admitted after the backup to come back from the province", || {
        c.people_ids().contains(&after)
    });
    let _ = server.kill();
    let _ = server.wait();
}
