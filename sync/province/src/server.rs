//! The provincial server's sync side: the exchange endpoint over the registry ([`crate::registry`]),
//! a store per site, enrolment and the sites' names over HTTPS, and the pull cycle.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use outpost_sync::{
    pg::{Database, Lease},
    protocol::{self, Limits},
    Store, StoreConfig,
};
use serde::Deserialize;

use outpost_link::{
    ca,
    exchange::{self, Exchanged},
    gate,
    net::{self, Peer, Req, Resp},
};

use crate::docs::SiteDocs;
pub use crate::registry::{Province, SiteEntry, SyncLog};

/// The running server's shared state: the province and the open site stores.
#[derive(Clone)]
pub struct Server {
    pub province: Province,
    stores: Arc<Mutex<HashMap<String, SiteDocs>>>,
    /// Where the sites' documents are when not in a sled store per site under the province's folder.
    database: Option<Database>,
    /// This server among those sharing the database (the holder of the sites' leases it takes).
    holder: String,
    /// One exchange per site at a time, pushed or pulled: two would read the same state and lose
    /// acknowledgements.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    pub limits: Limits,
    /// Enrolments per address ([`ENROLMENTS`]): anyone may try, with a token or without.
    enrolments: Arc<gate::Rates>,
    /// The sites' publicly trusted names, when the province has a zone and a CA for them.
    pub names: Option<Arc<crate::acme::Issuer>>,
    /// The number of the province's modem, for the sites' last link by SMS (`bysms`).
    pub sms_number: Option<String>,
}

/// How often one address may try to enrol: a site enrols once, an installer retries a few times.
pub const ENROLMENTS: gate::Budget = gate::Budget { burst: 10, every: std::time::Duration::from_secs(60) };

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("province", &self.province).finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(province: Province) -> Server {
        Server {
            province,
            stores: Arc::default(),
            database: None,
            holder: format!("{}:{}", std::process::id(), &outpost_sync::secret::random_token()[..8]),
            locks: Arc::default(),
            limits: Limits::default(),
            enrolments: Arc::default(),
            names: None,
            sms_number: None,
        }
    }

    /// The same server, issuing the sites' names with `issuer`.
    /// Sites are told to send their last-link SMS to `number`.
    pub fn with_sms_number(self, number: &str) -> Server {
        Server { sms_number: Some(number.to_owned()), ..self }
    }

    pub fn with_names(self, issuer: Arc<crate::acme::Issuer>) -> Server {
        Server { names: Some(issuer), ..self }
    }

    /// The same server, keeping every site's documents in `database`.
    pub fn with_database(self, database: Database) -> Server {
        Server { database: Some(database), ..self }
    }

    /// The database the sites' documents are in, if not in sled stores.
    pub fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    /// Site `id`'s documents, opened once.
    pub fn store(&self, id: &str) -> anyhow::Result<SiteDocs> {
        let mut stores = self.stores.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(s) = stores.get(id) {
            return Ok(s.clone());
        }
        let store = match &self.database {
            Some(db) => {
                // The analysts' views scope by the registry's district.
                if let Some(entry) = self.province.site(id)? {
                    db.set_district(id, &entry.district)?;
                }
                SiteDocs::Pg(db.site(id)?)
            }
            None => {
                let dir = self.province.dir.join("sites").join(id).join("store");
                SiteDocs::Sled(Store::open(&dir, &StoreConfig { cache_capacity: 4 << 20 })?)
            }
        };
        stores.insert(id.to_owned(), store.clone());
        Ok(store)
    }

    /// One exchange with the site whose certificate `peer_cert` is: its batch in, ours out.
    pub fn exchange(&self, peer_cert: Option<&[u8]>, bytes: &[u8]) -> Resp {
        // The site this certificate is the current one of, before anything is decoded: an unknown,
        // replaced or revoked certificate costs no decompression.
        let (site, cert) = match self.caller(peer_cert) {
            Ok(found) => found,
            Err(resp) => return resp,
        };
        // `decode` checks the sizes and the checksum before it decompresses anything.
        let batch = match protocol::decode(bytes, &self.limits) {
            Ok(b) => b,
            Err(protocol::ProtocolError::TooLarge(n)) => {
                return exchange::text(413, format!("the batch is too large ({n})"))
            }
            Err(e) => return exchange::text(400, e.to_string()),
        };
        if batch.site != site.id || !net::cert_names_site(cert, &batch.site) {
            return exchange::text(403, format!("this certificate is not site {}'s", batch.site));
        }
        // A pull of this site in progress: the site is waiting for our call to end, do not wait
        // for it (each side would wait for the other).
        let lock = self.site_lock(&batch.site);
        let Ok(_guard) = lock.try_lock() else { return exchange::busy() };
        let lease = match self.lease(&batch.site) {
            Ok(Some(lease)) => lease,
            Ok(None) => return exchange::busy(),
            Err(e) => return exchange::answer_response(Err(e)).0,
        };
        let work = self.store(&batch.site).and_then(|store| {
            exchange::answer_turn(
                &store.under(lease.as_ref()),
                (exchange::PROVINCE, chrono::Utc::now()),
                &batch.site,
                bytes,
                &self.limits,
            )
        });
        let (resp, outcome) = exchange::answer_response(work);
        self.province.record(&batch.site, "push", outcome.as_ref());
        resp
    }

    /// The site whose current certificate `peer_cert` is (not revoked), or the answer refusing it.
    fn caller<'c>(&self, peer_cert: Option<&'c [u8]>) -> Result<(SiteEntry, &'c [u8]), Resp> {
        let Some(cert) = peer_cert else {
            return Err(exchange::text(401, "a site certificate is required".into()));
        };
        match self.province.site_by_cert(&ca::fingerprint(cert)) {
            Ok(Some(site)) if !site.revoked => Ok((site, cert)),
            Ok(_) => Err(exchange::text(403, "this certificate is unknown, replaced or revoked".into())),
            Err(e) => Err(exchange::answer_response(Err(e)).0),
        }
    }

    /// `/sync/v1/certificate`: GET, what the province holds of the calling site's name (its name,
    /// the last chain issued and its end, whether a request waits, the last error); POST with a
    /// certificate request (DER) for that name: taken, the chain comes on a later GET.
    fn name_certificate(&self, req: &Req) -> Resp {
        let Some(issuer) = &self.names else {
            return exchange::text(404, "this province gives no names (it has no zone for them)".into());
        };
        let site = match self.caller(req.peer_cert.as_deref()) {
            Ok((site, _)) => site,
            Err(resp) => return resp,
        };
        let held = if req.method == http::Method::POST {
            match issuer.request(&site.id, &req.body, chrono::Utc::now()) {
                Ok(held) => held,
                Err(e) => return exchange::text(400, format!("{e:#}")),
            }
        } else {
            issuer.name_cert(&site.id)
        };
        let answer = serde_json::json!({
            "name": held.name,
            "chain_pem": held.chain_pem,
            "not_after": held.not_after,
            "pending": held.csr_hex.is_some(),
            "last_error": held.last_error,
        });
        (200, "application/json", answer.to_string().into_bytes())
    }

    /// `/sync/v1/sms`: the calling site's key for its signed SMS and the province's number, for
    /// when the data link is down (`outpost_link::bysms`); 404 when the province has no modem.
    fn sms_link(&self, req: &Req) -> Resp {
        let Some(number) = &self.sms_number else {
            return exchange::text(404, "this province takes no SMS (it has no modem)".into());
        };
        let site = match self.caller(req.peer_cert.as_deref()) {
            Ok((site, _)) => site,
            Err(resp) => return resp,
        };
        match self.province.sms_key(&site.id) {
            Ok(key) => {
                let answer = serde_json::json!({"number": number, "key": ca::to_hex(&key)});
                (200, "application/json", answer.to_string().into_bytes())
            }
            Err(e) => exchange::text(500, format!("{e:#}")),
        }
    }

    /// One exchange with `site` at a time across the servers sharing the database: its lease (none
    /// to take without a database). `None`: another server is exchanging with the site.
    fn lease(&self, site: &str) -> anyhow::Result<Option<Option<Lease>>> {
        match &self.database {
            None => Ok(Some(None)),
            Some(db) => Ok(db.lease(site, &self.holder)?.map(Some)),
        }
    }

    /// Of the sites due for a pull, those this server pulls this round: with a database, those no
    /// server pulled less than most of `every` ago (servers sharing it share the pulls out).
    async fn claim_pulls(&self, due: Vec<String>, every: std::time::Duration) -> Vec<String> {
        let Some(db) = self.database.clone() else { return due };
        let claimed = tokio::task::spawn_blocking(move || {
            due.into_iter().filter(|id| db.claim_pull(id, every.mul_f64(0.8)).unwrap_or(false)).collect()
        });
        claimed.await.unwrap_or_default()
    }

    fn site_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Pulls site `id` once: the province's batch out, the site's answer in. Only a site that has an
    /// address, is enrolled and not revoked, and shows the last certificate issued to it.
    pub async fn pull(&self, id: &str) -> anyhow::Result<Exchanged> {
        let site = self.province.site(id)?.with_context(|| format!("no site {id}"))?;
        let address =
            site.address.as_deref().with_context(|| format!("site {id} has no address to pull from"))?;
        anyhow::ensure!(site.enrolled && !site.revoked, "site {id} is not enrolled, or revoked");
        let pin = site.cert_sha256.as_deref().with_context(|| format!("site {id} has no certificate"))?;
        let name = ca::site_name(id);
        let target = Peer { addr: address, name: &name, pin: Some(pin) };
        let tls = self.province.client_tls()?;
        // Opening a site's documents may ask the database: not on the async runtime.
        let (server, site) = (self.clone(), id.to_owned());
        let store = tokio::task::spawn_blocking(move || server.store(&site)).await??;
        let lock = self.site_lock(id);
        let _guard = lock.lock().await;
        let (server, site) = (self.clone(), id.to_owned());
        let Some(lease) = tokio::task::spawn_blocking(move || server.lease(&site)).await?? else {
            return Err(exchange::Busy(id.to_owned()).into());
        };
        let outcome = exchange::call(
            &store.under(lease.as_ref()),
            (exchange::PROVINCE, &exchange::system_now()),
            id,
            target,
            tls,
        )
        .await;
        let (p, id) = (self.province.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            drop(lease);
            if !outcome.as_ref().is_err_and(exchange::is_busy) {
                p.record(&id, "pull", outcome.as_ref());
            }
            outcome
        })
        .await?
    }

    /// The sites the province can pull: enrolled, not revoked, with an address; in id order.
    pub fn reachable_sites(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .province
            .sites()?
            .into_iter()
            .filter(|s| s.address.is_some() && s.enrolled && !s.revoked)
            .map(|s| s.id)
            .collect())
    }

    /// Pulls `sites`, `parallel` at a time, each until it has nothing more to send (at most
    /// `max_rounds` exchanges). The outcome per site, in id order.
    pub async fn pull_sites(
        &self,
        sites: Vec<String>,
        parallel: usize,
        max_rounds: usize,
    ) -> Vec<(String, anyhow::Result<Exchanged>)> {
        let slots = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for id in sites {
            let (server, slots) = (self.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let mut total = Exchanged::default();
                for _ in 0..max_rounds.max(1) {
                    match server.pull(&id).await {
                        Ok(moved) => {
                            total.add(&moved);
                            if moved.sent_docs == 0 && moved.received_docs == 0 {
                                break;
                            }
                        }
                        Err(e) => return (id, Err(e)),
                    }
                }
                (id, Ok(total))
            });
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(r) = done {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Pulls every reachable site each `every`, for ever. A site that failed waits out its back-off
    /// (doubling from `every` up to `max_backoff`, with jitter) before its next try.
    pub async fn pull_loop(self, every: std::time::Duration, max_backoff: std::time::Duration) {
        let mut failing: HashMap<String, (u32, tokio::time::Instant)> = HashMap::new();
        loop {
            let now = tokio::time::Instant::now();
            let due = match self.reachable_sites() {
                Ok(all) => {
                    all.into_iter().filter(|id| failing.get(id).is_none_or(|(_, at)| *at <= now)).collect()
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "The site registry cannot be read.");
                    Vec::new()
                }
            };
            let due = self.claim_pulls(due, every).await;
            for (id, outcome) in self.pull_sites(due, 16, 50).await {
                match outcome {
                    Ok(_) => {
                        failing.remove(&id);
                    }
                    // The site was pushing at that moment: what it had went then.
                    Err(e) if exchange::is_busy(&e) => {}
                    Err(e) => {
                        let failures = failing.get(&id).map_or(0, |f| f.0) + 1;
                        if failures == 1 {
                            tracing::warn!(site = %id, error = %format!("{e:#}"), "A site cannot be pulled; retrying with back-off.");
                        }
                        let wait = exchange::backoff(every, max_backoff, failures, rand::random::<f64>());
                        failing.insert(id, (failures, tokio::time::Instant::now() + wait));
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Routes a request.
    pub fn handle(&self, req: Req) -> Resp {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/healthz") => (200, "text/plain", b"ok\n".to_vec()),
            ("POST", "/sync/v1/exchange") => self.exchange(req.peer_cert.as_deref(), &req.body),
            ("GET" | "POST", "/sync/v1/certificate") => self.name_certificate(&req),
            ("GET", "/sync/v1/sms") => self.sms_link(&req),
            ("POST", "/sync/v1/enroll") if !self.enrolments.allow(&req.peer.ip().to_string(), ENROLMENTS) => {
                (
                    429,
                    "text/plain",
                    b"too many enrolments from this address; wait a minute and try again\n".to_vec(),
                )
            }
            ("POST", "/sync/v1/enroll") => {
                #[derive(Deserialize)]
                struct Enroll {
                    site: String,
                    secret: String,
                    /// The box's public key, hex (an uncompressed P-256 point).
                    #[serde(default)]
                    public_key: Option<String>,
                }
                let Ok(e) = serde_json::from_slice::<Enroll>(&req.body) else {
                    return (400, "text/plain", b"expected {\"site\":..., \"secret\":...}\n".to_vec());
                };
                let public_key = match e.public_key.as_deref().map(ca::from_hex) {
                    None => None,
                    Some(Some(k)) => Some(k),
                    Some(None) => return (400, "text/plain", b"public_key is not hex\n".to_vec()),
                };
                match self.province.enroll(&e.site, &e.secret, public_key.as_deref()) {
                    Ok(bundle) => (200, "application/json", serde_json::to_vec(&bundle).unwrap_or_default()),
                    Err((status, msg)) => (status, "text/plain", format!("{msg}\n").into_bytes()),
                }
            }
            _ => (404, "text/plain", b"not found\n".to_vec()),
        }
    }

    /// Serves on `listener` for ever.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let tls = self.province.tls()?;
        let max = self.limits.max_wire_bytes;
        let handler: net::Handler = Arc::new(move |req| {
            let server = self.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || server.handle(req)).await.unwrap_or((
                    500,
                    "text/plain",
                    b"internal error\n".to_vec(),
                ))
            })
        });
        net::serve(listener, gate::Gate::new("sync", net::LIMITS), tls, max, handler).await;
        Ok(())
    }
}
