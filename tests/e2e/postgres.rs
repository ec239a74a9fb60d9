//! The province on PostgreSQL, beyond what the province's other tests run on both stores: the schema
//! the server finds.

use std::process::Command;

use outpost_sync::pg::SCHEMA_VERSION;
use outpost_tests::{pg, province_bin, province_cmd as province};

/// The server brings an empty database to its schema, and refuses one newer than its own (a server
/// older than the database would misread it) with a message that says what to do.
#[test]
fn the_schema_is_applied_once_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    let pg = pg::cluster();
    let url = pg.database("schema");
    province(&pdata, &["init"]);
    province(&pdata, &["site", "add", "site-a", "--district", "Hòa Vang"]);
    let show = || {
        Command::new(province_bin())
            .arg("--data")
            .arg(&pdata)
            .args(["--database", &url, "site", "show", "site-a"])
            .output()
            .expect("outpost-province")
    };
    for _ in 0..2 {
        let out = show();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{}", "no documents yet");
    }
    // Each migration once, in order.
    let all: Vec<String> = (1..=SCHEMA_VERSION).map(|v| v.to_string()).collect();
    let applied =
        pg.psql("schema", "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version");
    assert_eq!(applied, Ok(all.join(",")));
    let newer = SCHEMA_VERSION + 1;
    pg.psql("schema", &format!("INSERT INTO schema_version (version) VALUES ({newer})"))
        .expect("a newer server was here");
    let out = show();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("schema is version {newer}, newer than this server's {SCHEMA_VERSION}")),
        "{said}"
    );
}

/// The province's pages as its administrator sees them, with what changes from one login to the
/// next (the form token) left out.
fn pages(web: &str, today: &str) -> Vec<(String, String)> {
    // The web UI listens a moment after the sync side said it does.
    outpost_tests::wait_until("the web UI", || outpost_tests::Client::new(web).try_get("/login").is_some());
    let mut c = outpost_tests::Client::new(web);
    c.get("/login");
    let res = c.post_form("/login", &[("username", "tinh.admin"), ("password", crate::PASSWORD)]);
    assert_eq!(res.status, 303, "{}", res.body);
    // The district list's third person, typed without accents.
    let search = "/people?q=le+van+an".to_owned();
    [
        "/".to_owned(),
        "/site?id=demo-site".to_owned(),
        format!("/reports?date={today}"),
        "/alerts".to_owned(),
        search,
    ]
    .into_iter()
    .map(|path| {
        let res = c.get(&path);
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        let body = res
            .body
            .split("name=\"csrf\" value=\"")
            .map(|p| p.split_once('"').map_or(p, |(_, rest)| rest))
            .collect();
        (path, body)
    })
    .collect()
}

/// A province kept in sled stores, with a site that synced, moved into PostgreSQL: the same pages
/// and the same report after as before; moving again moves nothing new; and the box goes on syncing
/// with the province on its database, sending only what is new.
#[test]
fn a_sled_province_moves_into_postgresql_and_serves_the_same_pages() {
    use outpost_tests::{
        district_csv, enroll_box, free_port, serve_province, wait_until, write_config, BoxProcess, Client,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    province(&pdata, &["init"]);
    let token = province(&pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let added = Command::new(province_bin())
        .arg("--data")
        .arg(&pdata)
        .args(["user", "add", "tinh.admin", "--admin"])
        .env("OUTPOST_PROVINCE_PASSWORD", crate::PASSWORD)
        .output()
        .expect("user add");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let (listen, web) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let serve = |more: &[&str]| {
        let mut args = vec!["--web", web.as_str(), "--online-minutes", "600"];
        args.extend_from_slice(more);
        serve_province(&pdata, &listen, &args)
    };
    let (mut server, addr) = serve(&[]);
    let config = write_config(dir.path(), "[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n");
    let out = enroll_box(&config, &data, &addr, &token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", crate::PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(6, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    let synced = |c: &mut Client| {
        wait_until("the province to acknowledge everything", || {
            let h = c.get("/api/v1/health").json();
            h["sync"]["pending"] == 0 && h["sync"]["exchanges"].as_u64() >= Some(2)
        })
    };
    synced(&mut c);
    let _ = b.stop();
    let today = chrono::Utc::now().date_naive().to_string();
    let before = pages(&format!("http://{web}"), &today);
    assert!(
        before[0].1.contains("data-site=\"demo-site\"") && before[0].1.contains("<div id=\"total-people\">6")
    );
    assert_eq!(
        before[4].1.matches("data-person=").count(),
        1,
        "the search finds the person: {}",
        before[4].1
    );
    let _ = server.kill();
    let _ = server.wait();

    let pg = pg::cluster();
    let url = pg.database("moved");
    let moved = province(&pdata, &["--database", &url, "migrate"]);
    assert!(
        moved.contains("demo-site\t") && moved.ends_with("1 sites moved; serve with the same --database."),
        "{moved}"
    );
    let documents: usize =
        moved.split('\t').nth(1).and_then(|d| d.split(' ').next()?.parse().ok()).expect("a count");
    let rows = pg.psql("moved", "SELECT count(*) FROM doc WHERE site = 'demo-site'").expect("count");
    assert_eq!(rows, documents.to_string());
    // Only the index entries the province reads are kept: the people's statuses here (the box's
    // tokens, names and phones are not; the search has indexes of its own).
    let names = pg.psql("moved", "SELECT string_agg(DISTINCT name, ',') FROM entry").expect("entries");
    assert_eq!(names, outpost_sync::pg::KEPT_INDEXES[0]);
    // The province keeps its actor for the site's documents: the site sees the same incarnation
    // and sends nothing again.
    let sled =
        outpost_sync::Store::open(&pdata.join("sites/demo-site/store"), &Default::default()).expect("store");
    let actor = pg.psql("moved", "SELECT encode(actor, 'hex') FROM site WHERE site = 'demo-site'");
    assert_eq!(actor.as_deref(), Ok(sled.actor_hex().as_str()));
    drop(sled);
    assert!(documents >= 7, "the people and the site's record: {moved}");
    // Again: nothing new (the same number of rows, the log not moved on).
    let seq = || pg.psql("moved", "SELECT last_seq FROM site WHERE site = 'demo-site'").expect("seq");
    let first = seq();
    province(&pdata, &["--database", &url, "migrate"]);
    assert_eq!(seq(), first, "moving again changes nothing");

    let (mut server, _) = serve(&["--database", &url]);
    let after = pages(&format!("http://{web}"), &today);
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{path} differs after the move");
    }

    // The box goes on with the province on its database: what is new arrives; nothing is lost.
    let mut b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("lan.nguyen", crate::PASSWORD).status, 303);
    let before_sync = seq();
    c.admit("Nguyễn Văn Mới", "0912000901", "079199000901");
    c.admit("Trần Thị Mới", "0912000902", "079199000902");
    synced(&mut c);
    // Only what is new was merged: the two people (and what admitting them changed), not the
    // site's whole history again.
    let merged: usize = seq().parse::<usize>().expect("seq") - before_sync.parse::<usize>().expect("seq");
    assert!((2..=6).contains(&merged), "{merged} documents merged after the move");
    let people = pg.psql("moved", "SELECT count(*) FROM doc WHERE site = 'demo-site' AND kind = 'person'");
    assert_eq!(people.as_deref(), Ok("8"));
    let _ = b.stop();
    let _ = server.kill();
    let _ = server.wait();
}

/// Two province servers on one database (sharing the data folder's registry) and three sites that
/// push to one of them and are pulled by both; declarations keep coming while one server is
/// SIGKILLed in the middle of its exchanges. Every acknowledged declaration is at the province once,
/// every site converges through the server left, both servers took exchanges and pulls, and no site
/// was ever exchanged by two servers at once (the exchanges' log in the database has no overlap).
#[test]
fn two_servers_on_one_database_share_the_sites_and_one_dies() {
    use std::time::Duration;

    use outpost_tests::{enroll_box, free_port, serve_province, use_database, wait_until, write_config};
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    let pg = pg::cluster();
    use_database(pg.database("two_servers"));
    province(&pdata, &["init"]);
    let serve = || serve_province(&pdata, "127.0.0.1:0", &["--pull-every", "1"]);
    let (mut first, first_addr) = serve();
    let (mut second, second_addr) = serve();
    let mut boxes = Vec::new();
    for (i, (site, via)) in
        [("site-a", &first_addr), ("site-b", &second_addr), ("site-c", &first_addr)].into_iter().enumerate()
    {
        let pull = format!("127.0.0.1:{}", free_port());
        let token = province(&pdata, &["site", "add", site, "--district", "Hòa Vang", "--address", &pull]);
        let sdir = dir.path().join(site);
        std::fs::create_dir_all(&sdir).expect("dir");
        let config = write_config(
            &sdir,
            &format!(
                "[site]\nid = \"{site}\"\n[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\nlisten = \"{pull}\"\n"
            ),
        );
        let data = sdir.join("data");
        let out = enroll_box(&config, &data, via, &token);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (b, c, tokens) = outpost_tests::box_with_list(&data, &config, crate::PASSWORD, 6 + i);
        boxes.push((site, b, c, tokens, 0usize));
    }
    for round in 0..12 {
        for (_, b, _, tokens, acknowledged) in boxes.iter_mut() {
            *acknowledged += outpost_tests::declare_round(&b.url, tokens, round);
        }
        if round == 5 {
            // While exchanges run (pushes every second, pulls every second from both).
            std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 500));
            let _ = first.kill();
            let _ = first.wait();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for (site, _, c, _, _) in boxes.iter_mut() {
        wait_until(&format!("{site} to have nothing pending"), || {
            c.get("/api/v1/health").json()["sync"]["pending"] == 0
        });
    }
    let _ = second.kill();
    let _ = second.wait();
    for (site, _, _, tokens, acknowledged) in &boxes {
        let counts: serde_json::Value =
            serde_json::from_str(&province(&pdata, &["site", "show", site])).expect("counts");
        assert_eq!(counts["declaration"].as_u64(), Some(*acknowledged as u64), "{site}: {counts}");
        assert_eq!(counts["person"].as_u64(), Some(tokens.len() as u64), "{site}: {counts}");
    }
    let sql = |q: &str| pg.psql("two_servers", q).expect("psql");
    let overlaps = sql(
        "SELECT count(*) FROM exchange_log a JOIN exchange_log b ON a.site = b.site AND a.ctid < b.ctid \
         AND a.started < b.ended AND b.started < a.ended",
    );
    assert_eq!(overlaps, "0", "a site exchanged by two servers at once");
    assert_eq!(sql("SELECT count(DISTINCT holder) FROM exchange_log"), "2", "both servers exchanged");
    let per_site = sql("SELECT string_agg(n::text, ',') FROM (SELECT count(DISTINCT holder) n FROM exchange_log GROUP BY site ORDER BY site) s");
    assert!(per_site.split(',').any(|n| n == "2"), "a site exchanged by both servers in turn: {per_site}");
}

/// A document PostgreSQL cannot hold (a NUL character, which sled took) from a site is set aside
/// like one that cannot be merged, and the rest of its batch goes in; the province's own write of
/// one fails with a message rather than half-writing.
#[test]
fn a_document_with_a_nul_character_is_set_aside_not_the_batch() {
    use outpost_sync::{
        protocol::DocChanges,
        record::{Alert, AlertKind, Severity},
        Store, StoreConfig, WriteSet,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let site = Store::open(dir.path(), &StoreConfig::default()).expect("store");
    let at = chrono::Utc::now();
    let alert = |id: &str, detail: &str| {
        Alert::new(id.into(), AlertKind::Fever, Severity::Warning, "p", "s", detail.into(), at)
    };
    let mut w = WriteSet::new();
    w.put(&alert("fine", "38,9 °C")).expect("put").put(&alert("nul", "38,9\0°C")).expect("put");
    site.commit_blocking(w).expect("sled takes both");
    let docs: Vec<DocChanges> = ["alert/fine", "alert/nul"]
        .iter()
        .map(|id| {
            let mut doc = site.document(id).expect("read").expect("doc");
            DocChanges { doc_id: (*id).to_owned(), changes: doc.save(), heads: doc.get_heads() }
        })
        .collect();
    let db = outpost_sync::pg::Database::connect(&pg::cluster().database("nul"), 1).expect("database");
    let province = db.site("site-a").expect("site");
    let (applied, _) = province.merge_remote_blocking(&docs).expect("the batch goes in");
    assert_eq!(applied.changed.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["alert/fine"]);
    assert_eq!(applied.refused.len(), 1, "{:?}", applied.refused);
    assert!(applied.refused[0].1.contains("NUL"), "{:?}", applied.refused);
    assert_eq!(province.sync_refused().expect("refused").len(), 1);
    let mut w = WriteSet::new();
    w.put(&alert("mine", "a\0b")).expect("put");
    let refused = province.commit_blocking(w).expect_err("refused");
    assert!(refused.to_string().contains("NUL"), "{refused}");
    assert!(province.get::<Alert>("mine").expect("read").is_none(), "nothing half-written");
}

/// A server whose lock connection is cut during an exchange (an administrator ended it, the
/// database restarted) has lost the site's lease with it: another server may take the site, and the
/// first one's last write of the exchange state is refused instead of overwriting the other's.
#[test]
fn an_exchange_whose_lease_was_lost_keeps_nothing() {
    use outpost_sync::{
        pg::Database,
        protocol::{PeerState, Side},
    };
    let pg = pg::cluster();
    let url = pg.database("lost_lease");
    let (ours, theirs) = (Database::connect(&url, 1).expect("db"), Database::connect(&url, 1).expect("db"));
    let store = ours.site("site-a").expect("site");
    let lease = ours.lease("site-a", "ours").expect("lease").expect("free");
    let guarded = lease.guard(&store);
    guarded.keep_peer_state("sync/peer", &PeerState::default()).expect("held: kept");
    assert!(theirs.lease("site-a", "theirs").expect("lease").is_none(), "one server at a time");
    pg.psql("lost_lease", "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'")
        .expect("the lock connection cut");
    let taken = theirs.lease("site-a", "theirs").expect("lease");
    assert!(taken.is_some(), "freed with its connection");
    let refused = guarded.keep_peer_state("sync/peer", &PeerState::default()).expect_err("lost");
    assert!(refused.contains("lease was lost"), "{refused}");
}
