//! The provincial server's sync side: the site registry, enrolment and the exchange endpoint.
//!
//! Folder layout under the province's data folder:
//! - `ca/ca.crt`, `ca/ca.key` — the CA; `tls/server.crt`, `tls/server.key` — the server's certificate;
//! - `sites/<id>/site.json` — a site: district, the digest of its one-time enrolment token, revoked;
//! - `sites/<id>/store/` — that site's documents (a store per site: a site's exchange can only ever
//!   read and write its own documents) and, box-local, the protocol's state about it.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context;
use outpost_sync::{
    protocol::{self, Limits},
    Store, StoreConfig,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use outpost_link::{
    ca::{self, Ca},
    exchange::{self, Exchanged},
    gate,
    net::{self, Peer, Req, Resp},
};

/// A site as the province knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiteEntry {
    pub id: String,
    pub district: String,
    /// SHA-256 of the one-time enrolment token, until it is used.
    pub token_sha256: Option<String>,
    pub enrolled: bool,
    pub revoked: bool,
    /// SHA-256 of the one certificate this site may use: the last one issued to it. Earlier ones
    /// (a stolen box's, before a `site add` again) are refused.
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// `host:port` where the province pulls this site from, if it can reach it (a site behind NAT
    /// has none and pushes).
    #[serde(default)]
    pub address: Option<String>,
}

/// The last exchanges with a site, in either direction (`sites/<id>/last-sync.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncLog {
    #[serde(flatten)]
    pub link: exchange::LinkLog,
    /// `push` (the site called) or `pull` (the province did).
    pub last_direction: String,
    /// Successful exchanges the site called, and the province did.
    #[serde(default)]
    pub pushes: u64,
    #[serde(default)]
    pub pulls: u64,
}

fn sha256_hex(s: &str) -> String {
    ca::to_hex(&Sha256::digest(s.as_bytes()))
}

/// The province's data folder.
#[derive(Debug, Clone)]
pub struct Province {
    pub dir: PathBuf,
}

/// Serialises changes to the site registry within a process (two enrolments with one token must
/// not both succeed). `outpost-province site …` commands are separate processes: the operator's.
static REGISTRY: Mutex<()> = Mutex::new(());

/// Where enrolment tokens carry the CA's fingerprint without colons.
fn compact(fingerprint: &str) -> String {
    fingerprint.replace(':', "")
}

impl Province {
    pub fn new(dir: &Path) -> Province {
        Province { dir: dir.to_owned() }
    }

    /// Makes the CA and the server's certificate for `names` (besides `province.outpost`).
    pub fn init(&self, names: &[String]) -> anyhow::Result<Ca> {
        let ca = Ca::load_or_create(&self.dir.join("ca"), true)?;
        let mut all = vec![ca::PROVINCE_NAME.to_owned()];
        all.extend(names.iter().cloned());
        let issued = ca.issue(&all, &[rcgen::ExtendedKeyUsagePurpose::ServerAuth])?;
        ca::write_private(&self.dir.join("tls/server.key"), issued.key_pem.as_bytes())?;
        ca::write_private(&self.dir.join("tls/server.crt"), issued.cert_pem.as_bytes())?;
        self.issue_client(&ca)?;
        Ok(ca)
    }

    /// The province's client certificate for its pulls (`province.outpost`, client use only).
    fn issue_client(&self, ca: &Ca) -> anyhow::Result<()> {
        let issued =
            ca.issue(&[ca::PROVINCE_NAME.to_owned()], &[rcgen::ExtendedKeyUsagePurpose::ClientAuth])?;
        ca::write_private(&self.dir.join("tls/client.key"), issued.key_pem.as_bytes())?;
        ca::write_private(&self.dir.join("tls/client.crt"), issued.cert_pem.as_bytes())
    }

    /// The TLS configuration of the province's pulls (its client certificate is made if a province
    /// initialised before pulls existed has none).
    pub fn client_tls(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        {
            let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
            if !self.dir.join("tls/client.key").exists() {
                self.issue_client(&self.ca()?)?;
            }
        }
        let read =
            |p: &str| std::fs::read_to_string(self.dir.join(p)).with_context(|| format!("cannot read {p}"));
        net::client_config(&read("ca/ca.crt")?, Some((&read("tls/client.crt")?, &read("tls/client.key")?)))
    }

    pub fn ca(&self) -> anyhow::Result<Ca> {
        Ca::load_or_create(&self.dir.join("ca"), false)
    }

    fn site_file(&self, id: &str) -> PathBuf {
        self.dir.join("sites").join(id).join("site.json")
    }

    pub fn site(&self, id: &str) -> anyhow::Result<Option<SiteEntry>> {
        if !ca::check_site_id(id) {
            return Ok(None);
        }
        match std::fs::read(self.site_file(id)) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).context("a site file is corrupt")?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save_site(&self, site: &SiteEntry) -> anyhow::Result<()> {
        ca::write_private(&self.site_file(&site.id), &serde_json::to_vec_pretty(site)?)
    }

    /// Adds site `id` in `district` (or renews its token, keeping its district if `district` is
    /// empty) and returns its one-time enrolment token. A renewed token revokes the certificate
    /// issued before: it is for a new box.
    pub fn add_site(&self, id: &str, district: &str) -> anyhow::Result<String> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        anyhow::ensure!(
            ca::check_site_id(id),
            "a site id has lower-case letters, digits and '-' only (at most 63), as the box's site.id"
        );
        let ca = self.ca()?;
        let secret = outpost_sync::secret::random_token();
        let mut site = self.site(id)?.unwrap_or(SiteEntry {
            id: id.into(),
            district: district.into(),
            token_sha256: None,
            enrolled: false,
            revoked: false,
            cert_sha256: None,
            address: None,
        });
        if !district.trim().is_empty() {
            site.district = district.into();
        }
        site.token_sha256 = Some(sha256_hex(&secret));
        site.revoked = false;
        // A new token is for a new box: the certificate issued before is refused from now on.
        site.cert_sha256 = None;
        site.enrolled = false;
        self.save_site(&site)?;
        Ok(format!("{id}.{secret}.{}", compact(&ca.fingerprint)))
    }

    /// Revokes site `id`: its certificate is refused from now on.
    pub fn revoke_site(&self, id: &str) -> anyhow::Result<()> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?.with_context(|| format!("no site {id}"))?;
        site.revoked = true;
        site.token_sha256 = None;
        site.cert_sha256 = None;
        site.enrolled = false;
        self.save_site(&site)
    }

    /// Sets where the province pulls site `id` from (`None`: it does not; the site pushes).
    pub fn set_address(&self, id: &str, address: Option<&str>) -> anyhow::Result<()> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?.with_context(|| format!("no site {id}"))?;
        if let Some(a) = address {
            anyhow::ensure!(
                a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
                "an address is host:port, for example 10.8.0.12:8444"
            );
        }
        site.address = address.map(str::to_owned);
        self.save_site(&site)
    }

    fn log_file(&self, id: &str) -> PathBuf {
        self.dir.join("sites").join(id).join("last-sync.json")
    }

    /// The last exchanges with site `id`.
    pub fn sync_log(&self, id: &str) -> SyncLog {
        std::fs::read(self.log_file(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records an exchange with site `id` in its log (a log that cannot be written is only logged).
    fn record(&self, id: &str, direction: &str, outcome: Result<&Exchanged, &anyhow::Error>) {
        let mut log = self.sync_log(id);
        log.link.record(chrono::Utc::now(), outcome);
        log.last_direction = direction.into();
        if outcome.is_ok() && direction == "pull" {
            log.pulls += 1;
        } else if outcome.is_ok() {
            log.pushes += 1;
        }
        let written = serde_json::to_vec_pretty(&log)
            .map_err(anyhow::Error::from)
            .and_then(|b| ca::write_private(&self.log_file(id), &b));
        if let Err(e) = written {
            tracing::warn!(site = id, error = %format!("{e:#}"), "The sync log of a site cannot be written.");
        }
    }

    /// The site whose current certificate has `fingerprint`.
    pub fn site_by_cert(&self, fingerprint: &str) -> anyhow::Result<Option<SiteEntry>> {
        Ok(self.sites()?.into_iter().find(|s| s.cert_sha256.as_deref() == Some(fingerprint)))
    }

    /// Every site, in id order.
    pub fn sites(&self) -> anyhow::Result<Vec<SiteEntry>> {
        let mut out = Vec::new();
        if let Ok(dirs) = std::fs::read_dir(self.dir.join("sites")) {
            for d in dirs.flatten() {
                if let Some(site) = self.site(&d.file_name().to_string_lossy())? {
                    out.push(site);
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Enrols a site with its token's secret: its bundle, once, for the public key its box sent
    /// (the bundle then has no private key), or with a key made here.
    pub fn enroll(
        &self,
        site_id: &str,
        secret: &str,
        public_key: Option<&[u8]>,
    ) -> Result<ca::Bundle, (u16, String)> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        let refused = || (403, "unknown site, used or wrong enrolment token".to_owned());
        let internal = |e: anyhow::Error| {
            tracing::error!(error = %format!("{e:#}"), "An enrolment failed.");
            (500, "the province could not enrol the site; it is logged".to_owned())
        };
        let mut site = self.site(site_id).map_err(internal)?.ok_or_else(refused)?;
        if site.revoked || site.token_sha256.as_deref() != Some(sha256_hex(secret).as_str()) {
            return Err(refused());
        }
        if public_key.is_some_and(|k| k.len() != 65 || k[0] != 4) {
            return Err((400, "a site's key is an uncompressed P-256 public key (65 bytes)".to_owned()));
        }
        self.issue_bundle(&mut site, public_key).map_err(internal)
    }

    /// Site `id`'s bundle made here, to carry to the box on a USB stick where there is no link at
    /// all: an enrolment without the network, which uses up the site's token (a site added and not
    /// revoked).
    pub fn export_bundle(&self, id: &str) -> anyhow::Result<ca::Bundle> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?.with_context(|| format!("no site {id}: `site add` it first"))?;
        anyhow::ensure!(!site.revoked, "site {id} is revoked: `site add` it again first");
        self.issue_bundle(&mut site, None)
    }

    /// A new certificate for `site`, pinned as its only one; its token used up. Call with the
    /// registry locked.
    fn issue_bundle(&self, site: &mut SiteEntry, public_key: Option<&[u8]>) -> anyhow::Result<ca::Bundle> {
        let bundle = self.ca()?.site_bundle(&site.id, public_key)?;
        site.token_sha256 = None;
        site.enrolled = true;
        site.cert_sha256 = ca::first_der(&bundle.cert_pem).map(|der| ca::fingerprint(&der));
        self.save_site(site)?;
        Ok(bundle)
    }

    /// The server's TLS configuration.
    pub fn tls(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let read =
            |p: &str| std::fs::read_to_string(self.dir.join(p)).with_context(|| format!("cannot read {p}"));
        net::server_config(&read("ca/ca.crt")?, &read("tls/server.crt")?, &read("tls/server.key")?)
    }
}

/// The running server's shared state: the province and the open site stores.
#[derive(Clone)]
pub struct Server {
    pub province: Province,
    stores: Arc<Mutex<HashMap<String, Store>>>,
    /// One exchange per site at a time, pushed or pulled: two would read the same state and lose
    /// acknowledgements.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    pub limits: Limits,
    /// Enrolments per address ([`ENROLMENTS`]): anyone may try, with a token or without.
    enrolments: Arc<gate::Rates>,
    /// The sites' publicly trusted names, when the province has a zone and a CA for them.
    pub names: Option<Arc<crate::acme::Issuer>>,
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
            locks: Arc::default(),
            limits: Limits::default(),
            enrolments: Arc::default(),
            names: None,
        }
    }

    /// The same server, issuing the sites' names with `issuer`.
    pub fn with_names(self, issuer: Arc<crate::acme::Issuer>) -> Server {
        Server { names: Some(issuer), ..self }
    }

    /// Site `id`'s store, opened once.
    pub fn store(&self, id: &str) -> anyhow::Result<Store> {
        let mut stores = self.stores.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(s) = stores.get(id) {
            return Ok(s.clone());
        }
        let dir = self.province.dir.join("sites").join(id).join("store");
        let store = Store::open(&dir, &StoreConfig { cache_capacity: 4 << 20 })?;
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
        let work = self.store(&batch.site).and_then(|store| {
            exchange::answer_turn(
                &store,
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
        let store = self.store(id)?;
        let lock = self.site_lock(id);
        let _guard = lock.lock().await;
        let outcome =
            exchange::call(&store, (exchange::PROVINCE, &exchange::system_now()), id, target, tls).await;
        if outcome.as_ref().is_err_and(exchange::is_busy) {
            return outcome;
        }
        let (p, id) = (self.province.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            p.record(&id, "pull", outcome.as_ref());
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
