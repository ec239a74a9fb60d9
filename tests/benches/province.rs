//! The province on PostgreSQL beside its embedded store (a sled store per site), in one run
//! (`cargo bench -p outpost-tests --bench province`; docs/province.md):
//!
//! 1. one pull cycle over `BENCH_SITES` sites (200) with a day of `BENCH_SITE_PEOPLE` people (100)
//!    each, every site answering on its own loopback HTTPS port, 16 pulled at a time: on
//!    PostgreSQL first, then on sled (each province is a new peer to the sites, which send it
//!    everything), then each again with nothing new;
//! 2. sustained ingest: the same documents merged straight into a new sled store per site and into
//!    a new database, 500 per transaction: documents per second;
//! 3. bytes per document on disk, indexes included: sled's files; PostgreSQL's tables and indexes.
//!
//! PostgreSQL runs durable, with its defaults (fsync, full page writes, synchronous commit), as the
//! sled stores do: a throw-away cluster of its own, as the tests start one. Goals (issue 20): the pull
//! cycle ≤ 15 s with one server; ingest ≥ 2,000 documents/s; ≤ 1.5 KB a document.

use std::{sync::Arc, time::Instant};

use outpost_link::{exchange, site::SiteLink, token::Token};
use outpost_province::server::{Province, Server};
use outpost_sync::{pg::Database, protocol::DocChanges, Store, StoreConfig};

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z").expect("time").to_utc()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// One pull cycle of `server` over its sites, twice: the seconds each took and the documents in.
fn pull_twice(rt: &tokio::runtime::Runtime, server: &Server, what: &str) {
    let reachable = server.reachable_sites().expect("sites");
    for round in ["a day of changes", "nothing new"] {
        let started = Instant::now();
        let outcomes = rt.block_on(server.pull_sites(reachable.clone(), 16, 50));
        let took = started.elapsed();
        let mut all = exchange::Exchanged::default();
        for (id, outcome) in &outcomes {
            all.add(outcome.as_ref().unwrap_or_else(|e| panic!("{id}: {e:#}")));
        }
        println!(
            "pull cycle on {what}, {} sites, {round}: {:.2} s; {} documents in",
            reachable.len(),
            took.as_secs_f64(),
            all.received_docs
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

fn main() {
    let sites = env("BENCH_SITES", 200);
    let people = env("BENCH_SITE_PEOPLE", 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
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
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        province.set_address(&id, Some(&listener.local_addr().expect("addr").to_string())).expect("address");
        rt.spawn(SiteLink::new(store.clone(), bundle).serve_pulls(listener, Arc::new(|_| {})));
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
    pull_twice(&rt, &Server::new(province.clone()).with_database(db), "PostgreSQL");
    pull_twice(&rt, &Server::new(province.clone()), "sled");

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
