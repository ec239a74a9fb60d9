//! The province's documents in PostgreSQL (feature `postgres`): what [`crate::Store`] keeps in sled
//! for one site — the Automerge documents, their projections, index entries, change log and peer
//! state — for every site in one database, keyed by site, so that several province servers can
//! share it and analysts can query it.
//!
//! Tables (schema version [`SCHEMA_VERSION`], applied at start by [`Database::connect`], which
//! refuses a database whose schema is newer than this build):
//! - `site` — each site's change-log position (`last_seq`) and the province's Automerge actor for
//!   its documents (the province's own edits, an acknowledgement or a correction);
//! - `doc` — one row per document: its kind, the saved Automerge document, its projection as
//!   `jsonb` (what every read uses) and its change-log position `seq` (a document sits once in the
//!   log, at its latest change: "everything since N" is one index range, as in sled);
//! - `entry` — the records' secondary index entries (`Record::index_entries`) that the province
//!   reads, [`KEPT_INDEXES`]; a document's other entries are in its projection, which the views
//!   and the search indexes read;
//! - `local` — keys that never replicate (the peer state, documents set aside by sync).
//!
//! Text that sorts is `COLLATE "C"`: byte order, as sled's keys sort.
//!
//! Writes to one site are one transaction that first locks the site's row: writers to one site are
//! serialised across every server on the database, and change-log positions are committed in
//! order (a reader never sees position N+1 before N).
//!
//! The blocking `postgres` client runs its own runtime, which cannot run inside the server's async
//! runtime: each connection lives on a thread of its own, and callers hand it work and wait
//! ([`Database::run`]), as they wait on sled's disk.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc, Mutex},
    thread,
};

use automerge::{ActorId, AutoCommit, ChangeHash};
use postgres::{Client, NoTls, Transaction};
use serde::de::DeserializeOwned;

use crate::{
    error::Result,
    protocol::{DocChanges, DocHeads},
    record::{self, Person, Record},
    store::{error_chain, index_parts, load_or_new, merge_changes, Applied, Merge, StoreError, WriteSet},
};

/// The schema this build writes; [`Database::connect`] applies the migrations up to it.
pub const SCHEMA_VERSION: i32 = 7;

/// The index entries the province reads (the overview's figures, the open alerts, the samplings of
/// a day); the box's others (a person's declarations, the slots, the tokens, the names) would be a
/// third of every document's bytes, and the province's search has indexes of its own
/// (`schema/5-search.sql`). A scan of another index is refused, not answered empty.
pub const KEPT_INDEXES: [&str; 3] = [Person::BY_STATUS, record::Alert::BY_STATE, record::Sample::BY_DAY];

/// Whether the province keeps index `name`'s entries.
fn is_kept(name: &str) -> bool {
    KEPT_INDEXES.contains(&name)
}

/// [`is_kept`], as an error naming the index if not (for the reads that scan one).
fn kept(name: &str) -> Result<()> {
    if is_kept(name) {
        Ok(())
    } else {
        Err(StoreError::Database(format!("the province keeps no index {name:?} (only {KEPT_INDEXES:?})")))
    }
}

/// The migrations, in order: number `i + 1` is `MIGRATIONS[i]` (`schema/<number>-<name>.sql`). A
/// migration, once released, is never edited: a change is a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/1-documents.sql"),
    include_str!("schema/2-servers.sql"),
    include_str!("schema/3-analytics.sql"),
    include_str!("schema/4-leaner.sql"),
    include_str!("schema/5-search.sql"),
    include_str!("schema/6-barriers.sql"),
    include_str!("schema/7-kept-indexes.sql"),
];

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// Serialises migrations across servers starting together (an arbitrary constant).
const MIGRATION_LOCK: i64 = 0x6f75_7470_6f73_7401;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A connection, opened again when it was lost.
struct Connection {
    url: String,
    client: Option<Client>,
}

impl Connection {
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut config: postgres::Config = self.url.parse().map_err(db)?;
            if config.get_connect_timeout().is_none() {
                // An unreachable database fails the call rather than hanging it.
                config.connect_timeout(std::time::Duration::from_secs(10));
            }
            self.client = Some(config.connect(NoTls).map_err(db)?);
        }
        self.client.as_mut().ok_or_else(|| StoreError::Database("no connection".into()))
    }
}

struct Pool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut threads) = self.threads.lock() {
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// A PostgreSQL database holding the province's sites: a few connections, each on its thread.
/// Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Arc<Pool>,
    /// The connection that holds the sites' leases (session advisory locks: PostgreSQL frees them
    /// when the connection ends, so a server that dies frees its sites at once).
    locks: Arc<Pool>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Database {
    /// Connects to `url` (`postgres://…` or `host=… dbname=…`) with `connections` connections and
    /// brings its schema to [`SCHEMA_VERSION`]; refuses a newer schema.
    pub fn connect(url: &str, connections: usize) -> Result<Database> {
        // The first connection is opened here, so a wrong address fails at start, not later.
        let mut first = Connection { url: url.to_owned(), client: None };
        migrate(first.client()?)?;
        let pool = Pool::start("pg", url, connections.max(1), Some(first))?;
        let locks = Pool::start("pg-locks", url, 1, None)?;
        Ok(Database { pool: Arc::new(pool), locks: Arc::new(locks) })
    }

    /// Runs `work` on a connection and waits for it.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.pool.run(work)
    }
}

impl Pool {
    /// `count` connections to `url`, each on a thread named `name-<i>` (the first being `first`
    /// when given).
    fn start(name: &str, url: &str, count: usize, mut first: Option<Connection>) -> Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..count {
            let rx = rx.clone();
            let mut conn = first.take().unwrap_or(Connection { url: url.to_owned(), client: None });
            let t = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut conn),
                        Err(_) => return,
                    }
                })
                .map_err(|e| StoreError::Database(format!("a connection thread: {e}")))?;
            threads.push(t);
        }
        Ok(Pool { jobs: Mutex::new(Some(tx)), threads: Mutex::new(threads) })
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            // A panic in the work (a merge of a peer's bytes) fails this call only: the connection
            // is dropped (its transaction with it) and the thread goes on serving.
            let done =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.client().and_then(work)));
            let done = done.unwrap_or_else(|_| {
                conn.client = None;
                Err(StoreError::Database("the database work panicked; nothing of it was kept".into()))
            });
            let _ = tx.send(done);
        });
        let sender = self.jobs.lock().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

impl Database {
    /// Site `id`'s documents (its row made on first use, with a new actor for the province's edits).
    pub fn site(&self, id: &str) -> Result<PgStore> {
        self.site_as(id, None)
    }

    /// Site `id`'s documents, its row made (if there is none) with `actor` for the province's
    /// edits: a site moved from a sled store keeps the province's actor, so that the sites see the
    /// same incarnation and send nothing again.
    pub fn site_as(&self, id: &str, actor: Option<&ActorId>) -> Result<PgStore> {
        let (site, first) = (id.to_owned(), actor.cloned());
        let actor = self.run(move |c| {
            ensure_site_as(c, &site, first)?;
            let row = c.query_one("SELECT actor FROM site WHERE site = $1", &[&site]).map_err(db)?;
            Ok(row.get::<_, Vec<u8>>(0))
        })?;
        Ok(PgStore { db: self.clone(), site: id.to_owned(), actor: ActorId::from(actor), lease_pid: None })
    }

    /// Takes site `site`'s lease for `holder` (this server): one exchange with a site at a time
    /// across every server on the database. `None` if another server holds it. A session advisory
    /// lock on the lock connection: a server that dies (its connection gone) frees its sites at
    /// once. (Within one server, exchanges with a site are already one at a time.)
    pub fn lease(&self, site: &str, holder: &str) -> Result<Option<Lease>> {
        let s = site.to_owned();
        self.run({
            let s = s.clone();
            move |c| ensure_site(c, &s)
        })?;
        let (taken, pid) = self.locks.run(move |c| {
            let row = c
                .query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2)), pg_backend_pid()",
                    &[&LEASE_SPACE, &s],
                )
                .map_err(db)?;
            Ok((row.get::<_, bool>(0), row.get::<_, i32>(1)))
        })?;
        Ok(taken.then(|| Lease {
            db: self.clone(),
            site: site.to_owned(),
            holder: holder.to_owned(),
            since: std::time::SystemTime::now(),
            pid,
        }))
    }

    /// Claims this round's pull of `site` for the calling server: true unless some server pulled it
    /// (or claimed it) less than `every` ago. Servers sharing the database share the pulls out.
    pub fn claim_pull(&self, site: &str, every: std::time::Duration) -> Result<bool> {
        let (s, every) = (site.to_owned(), every.as_secs_f64());
        self.run(move |c| {
            ensure_site(c, &s)?;
            let n = c
                .execute(
                    "UPDATE site SET pulled_at = now() WHERE site = $1 \
                     AND (pulled_at IS NULL OR pulled_at < now() - make_interval(secs => $2))",
                    &[&s, &every],
                )
                .map_err(db)?;
            Ok(n == 1)
        })
    }

    /// Notes site `site`'s district (the registry's), which the analysts' views scope by.
    pub fn set_district(&self, site: &str, district: &str) -> Result<()> {
        let (s, d) = (site.to_owned(), district.to_owned());
        self.run(move |c| {
            ensure_site(c, &s)?;
            c.execute(
                "UPDATE site SET district = $2 WHERE site = $1 AND district IS DISTINCT FROM $2",
                &[&s, &d],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// Makes `role` an analyst (a login role with `password`, made if missing) who sees the
    /// analysts' views (schema `analytics`) for the sites of `district` (none: the whole province),
    /// and no table. Needs a connection allowed to make roles.
    pub fn add_analyst(&self, role: &str, password: &str, district: Option<&str>) -> Result<()> {
        let plain = role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if role.is_empty() || !plain {
            return Err(StoreError::Database(format!(
                "an analyst's name is lower-case letters, digits and _ only: {role:?}"
            )));
        }
        let (role, password, district) = (role.to_owned(), password.to_owned(), district.map(str::to_owned));
        self.run(move |c| {
            let mut tx = c.transaction().map_err(db)?;
            let exists =
                tx.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role]).map_err(db)?.is_some();
            let analyst =
                tx.query_opt("SELECT 1 FROM analyst WHERE role = $1", &[&role]).map_err(db)?.is_some();
            if exists && !analyst {
                // Never another role's password (the server's own, an administrator's).
                return Err(StoreError::Database(format!(
                    "{role} is a role of this database that is not an analyst"
                )));
            }
            // The name was checked above; PostgreSQL quotes the password itself.
            let quoted: String = tx.query_one("SELECT quote_literal($1)", &[&password]).map_err(db)?.get(0);
            let verb = if exists { "ALTER" } else { "CREATE" };
            tx.batch_execute(&format!(
                "{verb} ROLE {role} LOGIN PASSWORD {quoted}; \
                 GRANT USAGE ON SCHEMA analytics TO {role}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO {role};"
            ))
            .map_err(db)?;
            tx.execute(
                "INSERT INTO analyst (role, district) VALUES ($1, $2) \
                 ON CONFLICT (role) DO UPDATE SET district = excluded.district",
                &[&role, &district],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
    }

    /// People of `sites` whose name holds `q` anywhere, however typed (case, accents and spacing
    /// aside: "huong" finds "Trần Thị Hương"), whose phone starts with `q`, or whose ID number is `q`
    /// (only whole: a prefix would reveal the digits the pages mask): `(site, person)`, at most
    /// `limit`, in site and name order. One query over every site, from indexes.
    pub fn search_people(&self, sites: &[String], q: &str, limit: usize) -> Result<Vec<(String, Person)>> {
        let q = q.trim().to_owned();
        let folded = record::fold(&q);
        if folded.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let (sites, name) = (sites.to_vec(), format!("%{}", starts_with(&folded)));
        let (phone, limit) = (starts_with(&q), i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self.run(move |c| {
            let rows = c
                .query(
                    "SELECT site, id, value::text FROM doc WHERE kind = 'person' AND site = ANY($1) \
                     AND (outpost_fold(value->>'full_name') LIKE $2 OR value->>'phone' LIKE $3 OR value->>'id_number' = $4) \
                     LIMIT $5",
                    &[&sites, &name, &phone, &q, &limit],
                )
                .map_err(db)?;
            Ok(site_id_value(&rows))
        })?;
        let mut found = rows
            .iter()
            .map(|(site, id, text)| Ok((site.clone(), projection::<Person>(id, text)?)))
            .collect::<Result<Vec<_>>>()?;
        found.sort_by(|a, b| (&a.0, &a.1.full_name).cmp(&(&b.0, &b.1.full_name)));
        Ok(found)
    }

    /// Each of `sites`' name (from its site record), people in quarantine and open alerts, in one
    /// query from the index entries: `site → (name, in quarantine, open alerts)`.
    pub fn site_figures(&self, sites: &[String]) -> Result<HashMap<String, (String, usize, usize)>> {
        let sites = sites.to_vec();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT s.site, \
                       (SELECT d.value->>'name' FROM doc d WHERE d.site = s.site AND d.id >= 'site/' AND d.id < 'site0' LIMIT 1), \
                       (SELECT count(*) FROM entry e WHERE e.site = s.site AND e.name = $2 AND e.value = 'in_quarantine'), \
                       (SELECT count(*) FROM entry e WHERE e.site = s.site AND e.name = $3 AND e.value LIKE 'open|%') \
                     FROM unnest($1::text[]) AS s(site)",
                    &[&sites, &Person::BY_STATUS, &crate::record::Alert::BY_STATE],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let name: Option<String> = r.get(1);
                    (r.get(0), (name.unwrap_or_default(), r.get::<_, i64>(2) as usize, r.get::<_, i64>(3) as usize))
                })
                .collect())
        })
    }

    /// The records of kind `R` of `sites` whose id starts with `id_prefix` (all: ""), in one query:
    /// site → records in id order.
    pub fn records_across<R: Record>(
        &self,
        sites: &[String],
        id_prefix: &str,
    ) -> Result<HashMap<String, Vec<R>>> {
        let (sites, from) = (sites.to_vec(), format!("{}/{id_prefix}", R::KIND));
        // Every id starting with `from` sorts before `from` and the highest character.
        let to = format!("{from}{}", char::MAX);
        let rows = self.run(move |c| {
            let rows = c
                .query(
                    "SELECT site, id, value::text FROM doc WHERE site = ANY($1) AND id >= $2 AND id < $3 ORDER BY site, id",
                    &[&sites, &from, &to],
                )
                .map_err(db)?;
            Ok(site_id_value(&rows))
        })?;
        grouped(rows)
    }

    /// The records of kind `R` of `sites` whose `index` value starts with `prefix`, in one query:
    /// site → records in value order.
    pub fn find_prefix_across<R: Record>(
        &self,
        sites: &[String],
        index: &str,
        prefix: &str,
    ) -> Result<HashMap<String, Vec<R>>> {
        kept(index)?;
        let (sites, index, pattern) = (sites.to_vec(), index.to_owned(), starts_with(prefix));
        let rows = self.run(move |c| {
            let rows = c
                .query(
                    "SELECT d.site, d.id, d.value::text FROM entry e JOIN doc d ON d.site = e.site AND d.id = e.id \
                     WHERE e.site = ANY($1) AND e.name = $2 AND e.value LIKE $3 AND d.kind = $4 ORDER BY e.site, e.value, e.id",
                    &[&sites, &index, &pattern, &R::KIND],
                )
                .map_err(db)?;
            Ok(site_id_value(&rows))
        })?;
        grouped(rows)
    }
}

/// Makes site `site`'s row if there is none (with a new actor for the province's edits).
fn ensure_site(c: &mut Client, site: &str) -> Result<()> {
    ensure_site_as(c, site, None)
}

/// Makes site `site`'s row if there is none, with `actor` (none: a new one) for the province's edits.
fn ensure_site_as(c: &mut Client, site: &str, actor: Option<ActorId>) -> Result<()> {
    let actor = actor.unwrap_or_else(ActorId::random);
    c.execute(
        "INSERT INTO site (site, actor) VALUES ($1, $2) ON CONFLICT (site) DO NOTHING",
        &[&site, &actor.to_bytes()],
    )
    .map_err(db)?;
    Ok(())
}

/// The advisory locks' key space for the sites' leases (an arbitrary constant; the site's name,
/// hashed, is the second key).
const LEASE_SPACE: i32 = 0x6f75_7470;

/// A site's lease (see [`Database::lease`]): given back, and the exchange logged, when dropped.
pub struct Lease {
    db: Database,
    site: String,
    holder: String,
    since: std::time::SystemTime,
    /// The lock connection's backend that holds it.
    pid: i32,
}

impl Lease {
    /// `store` (this lease's site) for the exchange under this lease: its commits fail if the
    /// lease was lost meanwhile (the lock connection cut and made again), so that a server that no
    /// longer holds the site never keeps its exchange state over another's.
    pub fn guard(&self, store: &PgStore) -> PgStore {
        PgStore { lease_pid: Some(self.pid), ..store.clone() }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({}, {})", self.site, self.holder)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (site, holder) = (std::mem::take(&mut self.site), std::mem::take(&mut self.holder));
        let since = self.since;
        // Logged before it is given back: the next holder's exchange starts after this one ends.
        let logged = self.db.run({
            let site = site.clone();
            move |c| {
                c.execute(
                    "INSERT INTO exchange_log (site, holder, started, ended) VALUES ($1, $2, $3, clock_timestamp())",
                    &[&site, &holder, &since],
                )
                .map_err(db)
            }
        });
        if let Err(e) = logged {
            tracing::warn!(error = %e, "An exchange could not be logged.");
        }
        let given_back = self.db.locks.run(move |c| {
            c.query_one("SELECT pg_advisory_unlock($1, hashtext($2))", &[&LEASE_SPACE, &site]).map_err(db)
        });
        if let Err(e) = given_back {
            // Freed when the lock connection ends.
            tracing::warn!(error = %e, "A site's lease could not be given back.");
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], one migration per transaction, under a lock that
/// serialises servers starting together.
fn migrate(c: &mut Client) -> Result<()> {
    let mut tx = c.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(db)?;
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning; \
         CREATE TABLE IF NOT EXISTS schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(db)?;
    let at: i32 =
        tx.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).map_err(db)?.get(0);
    if at > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database's schema is version {at}, newer than this server's {SCHEMA_VERSION}: upgrade the server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        tx.batch_execute(sql).map_err(db)?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i32 + 1)]).map_err(db)?;
    }
    tx.commit().map_err(db)
}

/// One site's documents in the database: the same reads, writes and sync as [`crate::Store`].
#[derive(Clone)]
pub struct PgStore {
    db: Database,
    site: String,
    actor: ActorId,
    /// While an exchange holds the site's lease: the lock connection's backend, which every commit
    /// (the exchange's state is its last) checks still holds the lock.
    lease_pid: Option<i32>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.site)
    }
}

/// `prefix` as a `LIKE` pattern matching what starts with it.
fn starts_with(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Why a document cannot be kept in PostgreSQL, if it cannot: a NUL character in its id or its
/// record (`text` and `jsonb` refuse it; sled took it).
fn unstorable(doc_id: &str, projection: &[u8]) -> Option<String> {
    let nul = doc_id.contains('\0') || projection.windows(6).any(|w| w == b"\\u0000");
    nul.then(|| {
        format!(
            "document {} holds a NUL character, which the database cannot keep",
            doc_id.replace('\0', "\\0")
        )
    })
}

/// Rows of `(site, doc id, projection text)`.
fn site_id_value(rows: &[postgres::Row]) -> Vec<(String, String, String)> {
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

/// `(site, doc id, projection)` rows as records by site, in the rows' order.
fn grouped<R: DeserializeOwned>(rows: Vec<(String, String, String)>) -> Result<HashMap<String, Vec<R>>> {
    let mut out: HashMap<String, Vec<R>> = HashMap::new();
    for (site, id, text) in rows {
        out.entry(site).or_default().push(projection(&id, &text)?);
    }
    Ok(out)
}

fn projection<R: DeserializeOwned>(doc_id: &str, text: &str) -> Result<R> {
    serde_json::from_str(text)
        .map_err(|source| StoreError::CorruptProjection { doc_id: doc_id.to_owned(), source })
}

/// A document's new state, as a write or a merge leaves it.
struct Staged {
    doc_id: String,
    doc: Vec<u8>,
    projection: Vec<u8>,
    entries: Vec<(String, String)>,
}

impl PgStore {
    /// Reads a record's projection.
    pub fn get<R: Record>(&self, id: &str) -> Result<Option<R>> {
        let (site, doc_id) = (self.site.clone(), record::doc_id::<R>(id));
        let found = self.db.run({
            let doc_id = doc_id.clone();
            move |c| {
                let row = c
                    .query_opt("SELECT value::text FROM doc WHERE site = $1 AND id = $2", &[&site, &doc_id])
                    .map_err(db)?;
                Ok(row.map(|r| r.get::<_, String>(0)))
            }
        })?;
        found.map(|text| projection(&doc_id, &text)).transpose()
    }

    /// Every record of kind `R`, in id order.
    pub fn list<R: Record>(&self) -> Result<Vec<R>> {
        let mut found = self.db.records_across::<R>(std::slice::from_ref(&self.site), "")?;
        Ok(found.remove(&self.site).unwrap_or_default())
    }

    /// Index entries of `index` whose value starts with `value_prefix`: `(value, record id)` in value
    /// order.
    pub fn index_scan(&self, index: &str, value_prefix: &str) -> Result<Vec<(String, String)>> {
        kept(index)?;
        let (site, index, pattern) = (self.site.clone(), index.to_owned(), starts_with(value_prefix));
        self.db.run(move |c| {
            let rows = c
                .query(
                    "SELECT value, id FROM entry WHERE site = $1 AND name = $2 AND value LIKE $3 ORDER BY value, id",
                    &[&site, &index, &pattern],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let doc_id: String = r.get(1);
                    let id = doc_id.split_once('/').map_or(doc_id.as_str(), |(_, id)| id).to_owned();
                    (r.get(0), id)
                })
                .collect())
        })
    }

    /// The records whose `index` value starts with `prefix`, in value order.
    pub fn find_prefix<R: Record>(&self, index: &str, prefix: &str) -> Result<Vec<R>> {
        let mut found = self.db.find_prefix_across::<R>(std::slice::from_ref(&self.site), index, prefix)?;
        Ok(found.remove(&self.site).unwrap_or_default())
    }

    /// A document's heads (empty if it does not exist).
    pub fn heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        crate::store::saved_heads(doc_id, self.saved(doc_id)?.as_deref())
    }

    /// The saved Automerge document.
    pub fn document(&self, doc_id: &str) -> Result<Option<AutoCommit>> {
        let bytes = self.saved(doc_id)?;
        bytes.map(|b| load_or_new(doc_id, Some(&b), &self.actor)).transpose()
    }

    /// The saved Automerge document's bytes.
    pub(crate) fn saved(&self, doc_id: &str) -> Result<Option<Vec<u8>>> {
        let (site, doc_id) = (self.site.clone(), doc_id.to_owned());
        self.db.run(move |c| {
            let row = c
                .query_opt("SELECT doc FROM doc WHERE site = $1 AND id = $2", &[&site, &doc_id])
                .map_err(db)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// The province's Automerge actor for this site's documents, in hex.
    pub fn actor_hex(&self) -> String {
        self.actor.to_hex_string()
    }

    /// Change-log entries after `after`: `(seq, doc id)`, oldest first, at most `limit`.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let site = self.site.clone();
        let (after, limit) =
            (i64::try_from(after).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
        self.db.run(move |c| {
            let rows = c
                .query(
                    "SELECT seq, id FROM doc WHERE site = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&site, &after, &limit],
                )
                .map_err(db)?;
            Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect())
        })
    }

    /// Reads a key that never replicates.
    pub fn get_local<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let (site, key) = (self.site.clone(), key.to_owned());
        let bytes = self.db.run({
            let key = key.clone();
            move |c| {
                let row = c
                    .query_opt("SELECT value FROM local WHERE site = $1 AND key = $2", &[&site, &key])
                    .map_err(db)?;
                Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
            }
        })?;
        bytes
            .map(|b| {
                serde_json::from_slice(&b)
                    .map_err(|source| StoreError::CorruptProjection { doc_id: format!("x/{key}"), source })
            })
            .transpose()
    }

    /// Documents from the peer that could not be merged, with the reason.
    pub fn sync_refused(&self) -> Result<Vec<(String, String)>> {
        let site = self.site.clone();
        self.db.run(move |c| {
            let rows = c
                .query(
                    "SELECT substr(key, 14), convert_from(value, 'UTF8') FROM local \
                     WHERE site = $1 AND key LIKE 'sync-refused/%' ORDER BY key",
                    &[&site],
                )
                .map_err(db)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Applies `writes` in one transaction, durable when it returns.
    pub fn commit_blocking(&self, writes: WriteSet) -> Result<Applied> {
        let (site, actor, lease_pid) = (self.site.clone(), self.actor.clone(), self.lease_pid);
        self.db.run(move |c| {
            let mut tx = c.transaction().map_err(db)?;
            let mut seq = lock_site(&mut tx, &site)?;
            if let Some(pid) = lease_pid {
                let held: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                         AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2 AND pid = $3)",
                        &[&LEASE_SPACE, &site, &pid],
                    )
                    .map_err(db)?
                    .get(0);
                if !held {
                    return Err(StoreError::Database(format!(
                        "site {site}'s lease was lost during the exchange (its lock connection was cut): nothing kept"
                    )));
                }
            }
            let mut applied = Applied::default();
            let ids: Vec<String> = writes.docs.iter().map(|w| w.doc_id.clone()).collect();
            let mut batch = Batch::default();
            let mut stored = load(&mut tx, &site, &ids, &mut batch)?;
            for write in &writes.docs {
                let before = stored.get(&write.doc_id).filter(|_| !write.fresh);
                let Some(mut doc) = write.document(before.map(Vec::as_slice), &actor)? else { continue };
                if let Some(why) = unstorable(&write.doc_id, &write.projection) {
                    return Err(StoreError::Database(why));
                }
                let entries = write.index_keys.iter().filter_map(|k| index_parts(k)).collect();
                seq += 1;
                let saved = doc.save_nocompress();
                // A document written twice in one commit: the second write starts from the first.
                stored.insert(write.doc_id.clone(), saved.clone());
                let staged = Staged {
                    doc_id: write.doc_id.clone(),
                    doc: saved,
                    projection: write.projection.clone(),
                    entries,
                };
                batch.doc(staged, seq);
                applied.changed.push((write.doc_id.clone(), seq as u64));
            }
            for (key, value) in writes.local {
                let key = String::from_utf8_lossy(key.strip_prefix(b"x/").unwrap_or(&key)).into_owned();
                batch.local(key, value);
            }
            batch.write(&mut tx, &site)?;
            finish(tx, &site, seq)?;
            Ok(applied)
        })
    }

    /// [`PgStore::commit_blocking`] from async code.
    pub async fn commit(&self, writes: WriteSet) -> Result<Applied> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.commit_blocking(writes))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Merges a peer's changes in one transaction (the rules of [`crate::Store::merge_remote`]);
    /// durable when it returns. Returns each document's heads afterwards.
    pub fn merge_remote_blocking(&self, docs: &[DocChanges]) -> Result<(Applied, Vec<DocHeads>)> {
        let (site, actor, docs) = (self.site.clone(), self.actor.clone(), docs.to_vec());
        self.db.run(move |c| {
            let mut tx = c.transaction().map_err(db)?;
            let mut seq = lock_site(&mut tx, &site)?;
            let ids: Vec<String> = docs.iter().map(|d| d.doc_id.clone()).collect();
            let mut batch = Batch::default();
            let mut stored = load(&mut tx, &site, &ids, &mut batch)?;
            let mut merged: HashMap<String, AutoCommit> = HashMap::new();
            let mut applied = Applied::default();
            let mut heads = Vec::with_capacity(docs.len());
            for d in &docs {
                let doc = match merged.remove(&d.doc_id) {
                    Some(doc) => doc,
                    None => load_or_new(&d.doc_id, stored.remove(&d.doc_id).as_deref(), &actor)?,
                };
                let refused_key = format!("sync-refused/{}", d.doc_id.replace('\0', " "));
                let outcome = match merge_changes(doc, &actor, d) {
                    // What PostgreSQL cannot hold (a NUL character) is set aside like a document
                    // that cannot be merged, not a failure of the whole batch.
                    Merge::Changed(doc, projected) => match unstorable(&d.doc_id, &projected.0) {
                        Some(why) => Merge::Refused(doc, StoreError::Database(why)),
                        None => Merge::Changed(doc, projected),
                    },
                    other => other,
                };
                let mut doc = match outcome {
                    Merge::Older(doc) => doc,
                    Merge::Same(doc) => {
                        batch.local(refused_key, None);
                        doc
                    }
                    Merge::Changed(mut doc, (projection, entries)) => {
                        batch.local(refused_key, None);
                        seq += 1;
                        let entries =
                            entries.into_iter().map(|(n, v)| (n.to_owned(), v.replace('\0', " "))).collect();
                        let staged = Staged {
                            doc_id: d.doc_id.clone(),
                            doc: doc.save_nocompress(),
                            projection,
                            entries,
                        };
                        batch.doc(staged, seq);
                        applied.changed.push((d.doc_id.clone(), seq as u64));
                        doc
                    }
                    Merge::Refused(doc, error) => {
                        let why = error_chain(&error);
                        batch.local(refused_key, Some(why.clone().into_bytes()));
                        applied.refused.push((d.doc_id.clone(), why));
                        doc
                    }
                };
                heads.push((d.doc_id.clone(), doc.get_heads()));
                merged.insert(d.doc_id.clone(), doc);
            }
            batch.write(&mut tx, &site)?;
            finish(tx, &site, seq)?;
            Ok((applied, heads))
        })
    }
}

/// Locks the site's row for this transaction (writers to one site wait for each other, on every
/// server); its last change-log position.
fn lock_site(tx: &mut Transaction, site: &str) -> Result<i64> {
    let row = tx.query_one("SELECT last_seq FROM site WHERE site = $1 FOR UPDATE", &[&site]).map_err(db)?;
    Ok(row.get(0))
}

/// The saved documents among `ids`; their index entries go into `batch` as the ones to remove if
/// the document is written (read back from the stored projection, so that no index by document is
/// needed to find them).
fn load(
    tx: &mut Transaction,
    site: &str,
    ids: &[String],
    batch: &mut Batch,
) -> Result<HashMap<String, Vec<u8>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query("SELECT id, doc, value::text FROM doc WHERE site = $1 AND id = ANY($2)", &[&site, &ids])
        .map_err(db)?;
    let mut docs = HashMap::with_capacity(rows.len());
    for r in &rows {
        let (id, value): (String, String) = (r.get(0), r.get(2));
        let kind = id.split_once('/').map_or(id.as_str(), |(k, _)| k);
        match serde_json::from_str(&value).ok().and_then(|v| record::project(kind, v).ok()) {
            Some((_, entries)) => batch
                .old_entries
                .extend(entries.into_iter().map(|(n, v)| (n.to_owned(), v.replace('\0', " "), id.clone()))),
            None => batch.unreadable.push(id.clone()),
        }
        docs.insert(id, r.get(1));
    }
    Ok(docs)
}

/// What one transaction writes, gathered so that it goes to the database in a few statements
/// rather than a few per document. A document or key written twice keeps its last state.
#[derive(Default)]
struct Batch {
    docs: Vec<(Staged, i64)>,
    doc_at: HashMap<String, usize>,
    /// The stored index entries of the documents read: removed for those written.
    old_entries: Vec<(String, String, String)>,
    /// Documents read whose stored projection could not be read back: all their entries removed.
    unreadable: Vec<String>,
    local: Vec<(String, Option<Vec<u8>>)>,
    local_at: HashMap<String, usize>,
}

impl Batch {
    fn doc(&mut self, staged: Staged, seq: i64) {
        match self.doc_at.get(&staged.doc_id) {
            Some(&i) => self.docs[i] = (staged, seq),
            None => {
                self.doc_at.insert(staged.doc_id.clone(), self.docs.len());
                self.docs.push((staged, seq));
            }
        }
    }

    fn local(&mut self, key: String, value: Option<Vec<u8>>) {
        match self.local_at.get(&key) {
            Some(&i) => self.local[i].1 = value,
            None => {
                self.local_at.insert(key.clone(), self.local.len());
                self.local.push((key, value));
            }
        }
    }

    fn write(self, tx: &mut Transaction, site: &str) -> Result<()> {
        if !self.docs.is_empty() {
            let mut ids = Vec::with_capacity(self.docs.len());
            let (mut kinds, mut seqs, mut saved, mut values) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut names, mut entry_values, mut entry_ids) = (Vec::new(), Vec::new(), Vec::new());
            for (s, seq) in &self.docs {
                ids.push(s.doc_id.as_str());
                kinds.push(s.doc_id.split_once('/').map_or(s.doc_id.as_str(), |(k, _)| k));
                seqs.push(*seq);
                saved.push(s.doc.as_slice());
                values.push(String::from_utf8_lossy(&s.projection));
                for (n, v) in s.entries.iter().filter(|(n, _)| is_kept(n)) {
                    names.push(n.as_str());
                    entry_values.push(v.as_str());
                    entry_ids.push(s.doc_id.as_str());
                }
            }
            let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
            tx.execute(
                "INSERT INTO doc (site, id, kind, seq, doc, value) \
                 SELECT $1, u.id, u.kind, u.seq, u.doc, u.value::jsonb \
                 FROM unnest($2::text[], $3::text[], $4::int8[], $5::bytea[], $6::text[]) AS u(id, kind, seq, doc, value) \
                 ON CONFLICT (site, id) DO UPDATE SET seq = excluded.seq, doc = excluded.doc, value = excluded.value",
                &[&site, &ids, &kinds, &seqs, &saved, &values],
            )
            .map_err(db)?;
            let (mut old_names, mut old_values, mut old_ids) = (Vec::new(), Vec::new(), Vec::new());
            let old = self.old_entries.iter().filter(|(n, _, i)| is_kept(n) && self.doc_at.contains_key(i));
            for (n, v, i) in old {
                old_names.push(n.as_str());
                old_values.push(v.as_str());
                old_ids.push(i.as_str());
            }
            tx.execute(
                "DELETE FROM entry e USING unnest($2::text[], $3::text[], $4::text[]) AS u(n, v, i) \
                 WHERE e.site = $1 AND e.name = u.n AND e.value = u.v AND e.id = u.i",
                &[&site, &old_names, &old_values, &old_ids],
            )
            .map_err(db)?;
            let unreadable: Vec<&str> =
                self.unreadable.iter().filter(|i| self.doc_at.contains_key(*i)).map(String::as_str).collect();
            if !unreadable.is_empty() {
                tx.execute("DELETE FROM entry WHERE site = $1 AND id = ANY($2)", &[&site, &unreadable])
                    .map_err(db)?;
            }
            tx.execute(
                "INSERT INTO entry (site, name, value, id) SELECT $1, u.n, u.v, u.i \
                 FROM unnest($2::text[], $3::text[], $4::text[]) AS u(n, v, i) ON CONFLICT DO NOTHING",
                &[&site, &names, &entry_values, &entry_ids],
            )
            .map_err(db)?;
        }
        if !self.local.is_empty() {
            let keys: Vec<&str> = self.local.iter().map(|(k, _)| k.as_str()).collect();
            tx.execute("DELETE FROM local WHERE site = $1 AND key = ANY($2)", &[&site, &keys]).map_err(db)?;
            let (put_keys, put_values): (Vec<&str>, Vec<&[u8]>) =
                self.local.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?))).unzip();
            tx.execute(
                "INSERT INTO local (site, key, value) SELECT $1, u.k, u.v FROM unnest($2::text[], $3::bytea[]) AS u(k, v)",
                &[&site, &put_keys, &put_values],
            )
            .map_err(db)?;
        }
        Ok(())
    }
}

fn finish(mut tx: Transaction, site: &str, seq: i64) -> Result<()> {
    tx.execute("UPDATE site SET last_seq = $2 WHERE site = $1", &[&site, &seq]).map_err(db)?;
    tx.commit().map_err(db)
}

crate::store::sync_side!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;

    /// The migration that prunes the entries keeps the ones this build reads.
    #[test]
    fn the_pruning_migration_names_the_kept_indexes() {
        let sql = MIGRATIONS[6];
        let list = sql.split("NOT IN (").nth(1).and_then(|s| s.split(')').next()).expect("a list");
        let names: Vec<&str> = list.split(',').map(|n| n.trim().trim_matches('\'')).collect();
        assert_eq!(names, KEPT_INDEXES);
        assert!(kept(record::Declaration::BY_PERSON).is_err());
    }
}
