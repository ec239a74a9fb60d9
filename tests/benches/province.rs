//! The province on PostgreSQL beside its embedded store (a sled store per site), in one run
//! (`cargo bench -p outpost-tests --bench province`; docs/province.md):
//!
//! 1. one pull cycle over `BENCH_SITES` sites (200) with a day of `BENCH_SITE_PEOPLE` people (100)
//!    each, every site answering on its own loopback HTTPS port, 16 pulled at a time: on
//!    PostgreSQL first, then on sled (each province is a new peer to the sites, which send it
//!    everything), then each again with nothing new;
//! 2. sustained ingest: the same documents merged straight into a new sled store per site and into
//!    a new database, 500 per transaction: documents per second;
//! 3. bytes per document on disk, indexes included: sled's files; PostgreSQL's tables and indexes;
//! 4. the web UI's overview, report and a name search over HTTP, on both (medians and p95 of 15);
//! 5. on PostgreSQL alone, 300 sites × 2,000 people (600,000, written by SQL from a real record):
//!    name searches across every site and the overview's figures for 300 sites (p50 and p95 of
//!    50). Seeding sled stores that large takes tens of minutes: sled is compared at part 4's size.
//!
//! PostgreSQL runs durable, with its defaults (fsync, full page writes, synchronous commit), as the
//! sled stores do: a throw-away cluster of its own, as the tests start one. Goals (issue 20): the pull
//! cycle ≤ 15 s with one server; ingest ≥ 2,000 documents/s; ≤ 1.5 KB a document.

use std::{sync::Arc, time::Instant};

use outpost_link::{exchange, site::SiteLink, token::Token};
use outpost_province::{
    server::{Province, Server},
    users::{Scope, Users},
    web::Web,
};
use outpost_sync::{pg::Database, protocol::DocChanges, Store, StoreConfig};

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z").expect("time").to_utc()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// CPU seconds used so far: this process's, and its threads named `site` (the sites' runtime).
fn cpu_seconds() -> (f64, f64) {
    use outpost_tests::{cpu_ticks, CLOCK_TICKS};
    let process = cpu_ticks("/proc/self/stat", false).map_or(0, |(t, _)| t);
    let mut sites = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("tasks").filter_map(|e| e.ok()) {
        if std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "site") {
            sites += cpu_ticks(&task.path().join("stat").to_string_lossy(), false).map_or(0, |(t, _)| t);
        }
    }
    (process as f64 / CLOCK_TICKS, sites as f64 / CLOCK_TICKS)
}

/// One pull cycle of `server` over its sites, twice: the seconds each took, the documents in, and
/// the CPU seconds each side used (the province's, the sites', PostgreSQL's): on this machine they
/// share two cores, where a province's server has its own and the sites are elsewhere.
fn pull_twice(rt: &tokio::runtime::Runtime, server: &Server, pg: &outpost_tests::pg::Cluster, what: &str) {
    let reachable = server.reachable_sites().expect("sites");
    for round in ["a day of changes", "nothing new"] {
        let ((process, sites), database) = (cpu_seconds(), pg.cpu_seconds());
        let started = Instant::now();
        let outcomes = rt.block_on(server.pull_sites(reachable.clone(), 16, 50));
        let took = started.elapsed();
        let ((process_after, sites_after), database_after) = (cpu_seconds(), pg.cpu_seconds());
        let sites_cpu = sites_after - sites;
        let mut all = exchange::Exchanged::default();
        for (id, outcome) in &outcomes {
            all.add(outcome.as_ref().unwrap_or_else(|e| panic!("{id}: {e:#}")));
        }
        println!(
            "pull cycle on {what}, {} sites, {round}: {:.2} s; {} documents in; CPU: province {:.1} s, \
             PostgreSQL {:.1} s, the sites {:.1} s",
            reachable.len(),
            took.as_secs_f64(),
            all.received_docs,
            process_after - process - sites_cpu,
            database_after - database,
            sites_cpu
        );
    }
}

/// Every document of `store`, as a peer would send it whole.
fn whole(store: &Store) -> Vec<DocChanges> {
    let ids = store.changes_since(0, usize::MAX).expect("log");
    ids.into_iter()
        .filter_map(|(_, id)| {
            let mut doc = store.document(&id).expect("read")?;
            Some(DocChanges { doc_id: id, changes: doc.save(), heads: doc.get_heads() })
        })
        .collect()
}

const PASSWORD: &str = "a long bench password";

/// p50 and p95 of `times` (milliseconds).
fn percentiles(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.95))
}

/// The overview, the day's report and a name search through `server`'s web UI, timed over HTTP.
fn pages(rt: &tokio::runtime::Runtime, server: &Server, what: &str) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    rt.spawn(Web::new(server.clone(), chrono::Duration::minutes(15)).serve(listener));
    let mut c = outpost_tests::Client::new(&url);
    c.get("/login");
    assert_eq!(c.post_form("/login", &[("username", "bench.admin"), ("password", PASSWORD)]).status, 303);
    for path in ["/", "/reports?date=2026-11-21", "/people?q=huong"] {
        let times: Vec<f64> = (0..15)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(c.get(path).status, 200, "{path}");
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (p50, p95) = percentiles(times);
        println!("web on {what}, {path}: p50 {p50:.1} ms, p95 {p95:.1} ms");
    }
}

/// 300 sites × 2,000 people written by SQL (the `template` record with another name, phone and ID
/// number each), then name searches across every site and the overview's figures, timed.
fn large(pg: &outpost_tests::pg::Cluster, template: &str) {
    let url = pg.database("large");
    let db = Database::connect(&url, 2).expect("database");
    let started = Instant::now();
    let quoted = template.replace('\'', "''");
    pg.psql(
        "large",
        &format!(
            "INSERT INTO site (site, actor, district) SELECT 'site-' || lpad(s::text, 3, '0'), '\\x00', 'Huyện ' || s % 10 \
             FROM generate_series(1, 300) s; \
             INSERT INTO doc (site, id, kind, seq, doc, value) \
             SELECT 'site-' || lpad(s::text, 3, '0'), 'person/p' || i, 'person', i, '\\x00', '{quoted}'::jsonb || jsonb_build_object( \
               'id', 'p' || i, \
               'full_name', (ARRAY['Nguyễn','Trần','Lê','Phạm','Hoàng','Huỳnh','Phan','Vũ','Võ','Đặng','Bùi','Đỗ','Hồ','Ngô','Dương','Lý'])[1 + (i * 7 + s) % 16] \
                 || ' ' || (ARRAY['Văn','Thị','Hữu','Minh','Thanh','Ngọc','Quốc','Đức'])[1 + (i / 3 + s) % 8] \
                 || ' ' || (ARRAY['An','Bình','Châu','Dũng','Giang','Hà','Hải','Hương','Lan','Long','Mai','Nam','Phúc','Quân','Sơn','Thảo','Trang','Tuấn','Việt','Yến'])[1 + (i * 5 + s / 7) % 20], \
               'phone', '09' || lpad((s * 2000 + i)::text, 8, '0'), \
               'id_number', lpad((79000000000 + s * 2000 + i)::text, 12, '0')) \
             FROM generate_series(1, 300) s, generate_series(1, 2000) i; \
             INSERT INTO entry (site, name, value, id) SELECT site, 'person_status', 'in_quarantine', id FROM doc; \
             ANALYZE;"
        ),
    )
    .expect("600,000 people");
    println!(
        "600,000 people written by SQL (with their indexes) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let sites: Vec<String> = (1..=300).map(|s| format!("site-{s:03}")).collect();
    let queries = [
        "huong",
        "tran thi",
        "nguyen van an",
        "Lê Minh",
        "0900012",
        "079000123456",
        "thao",
        "quoc tuan",
        "DO DUC",
        "yến",
    ];
    let mut times = Vec::new();
    for _ in 0..5 {
        for q in queries {
            let started = Instant::now();
            let found = db.search_people(&sites, q, 100).expect("search");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(!found.is_empty(), "{q} finds someone");
        }
    }
    let (p50, p95) = percentiles(times);
    println!("name search across 300 sites, 600,000 people: p50 {p50:.1} ms, p95 {p95:.1} ms");
    let times: Vec<f64> = (0..50)
        .map(|_| {
            let started = Instant::now();
            let figures = db.site_figures(&sites).expect("figures");
            assert_eq!(figures.len(), 300);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let (p50, p95) = percentiles(times);
    println!("the overview's figures for 300 sites: p50 {p50:.1} ms, p95 {p95:.1} ms");
}

fn main() {
    let sites = env("BENCH_SITES", 200);
    let people = env("BENCH_SITE_PEOPLE", 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // The sites on a runtime of their own, its threads named (and kept) so that their CPU is told
    // apart from the province's.
    let sites_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("site")
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("runtime");
    let pg = outpost_tests::pg::start(true);

    let province = Province::new(&dir.path().join("province"));
    province.init(&[]).expect("init");
    let started = Instant::now();
    let mut stores = Vec::new();
    for i in 0..sites {
        let id = format!("site-{i:03}");
        let token = Token::parse(&province.add_site(&id, "Quận Liên Chiểu").expect("add")).expect("token");
        let bundle = province.enroll(&id, &token.secret, None).expect("enrol");
        let data = dir.path().join("sites").join(&id);
        let (store, _) = outpost::demo::seeded_store(&data, &id, (people, 1), now(), 4 << 20).expect("seed");
        let listener = sites_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        province.set_address(&id, Some(&listener.local_addr().expect("addr").to_string())).expect("address");
        sites_rt.spawn(SiteLink::new(store.clone(), bundle).serve_pulls(listener, Arc::new(|_| {})));
        stores.push((id, store));
    }
    let docs: Vec<(String, Vec<DocChanges>)> = stores.iter().map(|(id, s)| (id.clone(), whole(s))).collect();
    let total: usize = docs.iter().map(|(_, d)| d.len()).sum();
    println!(
        "{sites} sites × {people} people × 1 day: {total} documents seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The pull cycle, PostgreSQL first.
    let db = Database::connect(&pg.database("pulls"), 4).expect("database");
    let on_pg = Server::new(province.clone()).with_database(db.clone());
    pull_twice(&rt, &on_pg, &pg, "PostgreSQL");
    let on_sled = Server::new(province.clone());
    pull_twice(&rt, &on_sled, &pg, "sled");

    // 4. The web UI on both.
    Users::new(&province.dir).add("bench.admin", "", Scope::Province, PASSWORD).expect("user");
    for (what, server) in [("PostgreSQL", &on_pg), ("sled", &on_sled)] {
        pages(&rt, server, what);
    }
    // 5. 600,000 people on PostgreSQL.
    let template = stores[0].1.list::<outpost_sync::record::Person>().expect("people").remove(0);
    large(&pg, &serde_json::to_string(&template).expect("json"));

    // 2. Ingest, and 3. bytes per document.
    let started = Instant::now();
    let mut sled_bytes = 0;
    for (id, site_docs) in &docs {
        let store =
            Store::open(&dir.path().join("ingest").join(id), &StoreConfig { cache_capacity: 4 << 20 })
                .expect("store");
        for chunk in site_docs.chunks(500) {
            store.merge_remote_blocking(chunk).expect("merge");
        }
        sled_bytes += store.size_on_disk();
        store.close().expect("close");
    }
    let sled_took = started.elapsed().as_secs_f64();
    let db = Database::connect(&pg.database("ingest"), 4).expect("database");
    let started = Instant::now();
    for (id, site_docs) in &docs {
        let store = db.site(id).expect("site");
        for chunk in site_docs.chunks(500) {
            store.merge_remote_blocking(chunk).expect("merge");
        }
    }
    let pg_took = started.elapsed().as_secs_f64();
    println!(
        "ingest of {total} documents, 500 a transaction: sled {:.0}/s ({sled_took:.1} s), PostgreSQL {:.0}/s ({pg_took:.1} s)",
        total as f64 / sled_took,
        total as f64 / pg_took
    );
    let size = pg
        .psql(
            "ingest",
            "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ('doc', 'entry', 'local', 'site')",
        )
        .expect("size");
    let pg_bytes: f64 = size.parse().expect("bytes");
    // Where PostgreSQL's bytes go: each table and its indexes, and the document's two columns.
    let parts = pg
        .psql(
            "ingest",
            &format!(
                "SELECT string_agg(format('%s %s', relname, round(pg_relation_size(oid)::numeric / {total})), ', ' ORDER BY relname) \
                 FROM pg_class WHERE relname IN ('doc', 'doc_pkey', 'doc_log', 'doc_kind', 'entry', 'entry_pkey', 'entry_doc')"
            ),
        )
        .expect("parts");
    let columns = pg
        .psql("ingest", "SELECT round(avg(length(doc))) || ' Automerge, ' || round(avg(pg_column_size(value))) || ' jsonb' FROM doc")
        .expect("columns");
    println!("PostgreSQL's bytes per document: {parts}; columns: {columns}");
    println!(
        "bytes per document, indexes included: sled {:.0} ({:.1} MB), PostgreSQL {:.0} ({:.1} MB)",
        sled_bytes as f64 / total as f64,
        sled_bytes as f64 / 1e6,
        pg_bytes / total as f64,
        pg_bytes / 1e6
    );
}
