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
    protocol::{self, Limits, PeerState},
    Store, StoreConfig, WriteSet,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ca::{self, Ca},
    net::{self, Req, Resp},
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
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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

/// An enrolment token: `<site>.<secret>.<CA fingerprint>`; the box pins the CA by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub site: String,
    pub secret: String,
    pub ca_fingerprint: String,
}

impl Token {
    pub fn parse(s: &str) -> Option<Token> {
        let mut parts = s.trim().split('.');
        let (site, secret, fp) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !ca::check_site_id(site) || secret.len() < 16 || fp.len() != 64 {
            return None;
        }
        let fingerprint = (0..32).map(|i| fp.get(i * 2..i * 2 + 2)).collect::<Option<Vec<_>>>()?.join(":");
        Some(Token {
            site: site.into(),
            secret: secret.into(),
            ca_fingerprint: fingerprint.to_ascii_uppercase(),
        })
    }
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
        let issued = ca.issue(&all, true)?;
        ca::write_private(&self.dir.join("tls/server.key"), issued.key_pem.as_bytes())?;
        ca::write_private(&self.dir.join("tls/server.crt"), issued.cert_pem.as_bytes())?;
        Ok(ca)
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

    /// Adds site `id` in `district` (or renews its token) and returns its one-time enrolment token.
    pub fn add_site(&self, id: &str, district: &str) -> anyhow::Result<String> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        anyhow::ensure!(
            ca::check_site_id(id),
            "a site id has lower-case letters, digits and '-' only (at most 63), as the box's site.id"
        );
        let ca = self.ca()?;
        let secret: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() & 0xF)).collect();
        let mut site = self.site(id)?.unwrap_or(SiteEntry {
            id: id.into(),
            district: district.into(),
            token_sha256: None,
            enrolled: false,
            revoked: false,
            cert_sha256: None,
        });
        site.district = district.into();
        site.token_sha256 = Some(sha256_hex(&secret));
        site.revoked = false;
        self.save_site(&site)?;
        Ok(format!("{id}.{secret}.{}", compact(&ca.fingerprint)))
    }

    /// Revokes site `id`: its certificate is refused from now on.
    pub fn revoke_site(&self, id: &str) -> anyhow::Result<()> {
        let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        let mut site = self.site(id)?.with_context(|| format!("no site {id}"))?;
        site.revoked = true;
        site.token_sha256 = None;
        self.save_site(&site)
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

    /// Enrols a site with its token's secret: its bundle, once.
    pub fn enroll(&self, site_id: &str, secret: &str) -> Result<ca::Bundle, (u16, String)> {
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
        let bundle = self.ca().and_then(|ca| ca.site_bundle(site_id)).map_err(internal)?;
        site.token_sha256 = None;
        site.enrolled = true;
        site.cert_sha256 = ca::first_der(&bundle.cert_pem).map(|der| ca::fingerprint(&der));
        self.save_site(&site).map_err(internal)?;
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
    locks: Arc<Mutex<HashMap<String, Arc<Mutex<()>>>>>,
    pub limits: Limits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("province", &self.province).finish_non_exhaustive()
    }
}

const PEER_KEY: &str = "sync/peer";

impl Server {
    pub fn new(province: Province) -> Server {
        Server { province, stores: Arc::default(), locks: Arc::default(), limits: Limits::default() }
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
        let text =
            |status: u16, msg: String| (status, "text/plain; charset=utf-8", format!("{msg}\n").into_bytes());
        // Details in the province's log, not to the caller.
        let internal = |e: anyhow::Error| {
            tracing::error!(error = %format!("{e:#}"), "An exchange failed.");
            text(500, "the province could not complete the exchange; it is logged".into())
        };
        let Some(cert) = peer_cert else {
            return text(401, "a site certificate is required".into());
        };
        let batch = match protocol::decode(bytes, &self.limits) {
            Ok(b) => b,
            Err(protocol::ProtocolError::TooLarge(n)) => {
                return text(413, format!("the batch is too large ({n})"))
            }
            Err(e) => return text(400, e.to_string()),
        };
        if !net::cert_names_site(cert, &batch.site) {
            return text(403, format!("this certificate is not site {}'s", batch.site));
        }
        match self.province.site(&batch.site) {
            Ok(Some(site)) if !site.revoked && site.cert_sha256 == Some(ca::fingerprint(cert)) => {}
            Ok(_) => {
                return text(
                    403,
                    format!("site {} is unknown or revoked, or this certificate was replaced", batch.site),
                )
            }
            Err(e) => return internal(e),
        }
        // One exchange per site at a time: two would read the same state and lose acknowledgements.
        let lock = self.site_lock(&batch.site);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let work = || -> anyhow::Result<Vec<u8>> {
            let mut store = self.store(&batch.site)?;
            let mut state: PeerState = store.get_local(PEER_KEY)?.unwrap_or_default();
            protocol::receive(&mut store, &mut state, &batch.site, bytes, &self.limits)?;
            // Only what is on disk goes out: the site records it as held by the province.
            store.durable_blocking()?;
            let answer = protocol::build(&store, &mut state, "province", |d| d.starts_with("alert/"));
            let mut w = WriteSet::new();
            w.put_local(PEER_KEY, &state)?;
            store.commit_blocking(w)?;
            Ok(protocol::encode(&answer))
        };
        match work() {
            Ok(answer) => (200, "application/octet-stream", answer),
            Err(e) => match e.downcast_ref::<protocol::ReceiveError>() {
                Some(refused) => text(400, refused.to_string()),
                None => internal(e),
            },
        }
    }

    fn site_lock(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Routes a request.
    pub fn handle(&self, req: Req) -> Resp {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/healthz") => (200, "text/plain", b"ok\n".to_vec()),
            ("POST", "/sync/v1/exchange") => self.exchange(req.peer_cert.as_deref(), &req.body),
            ("POST", "/sync/v1/enroll") => {
                #[derive(Deserialize)]
                struct Enroll {
                    site: String,
                    secret: String,
                }
                let Ok(e) = serde_json::from_slice::<Enroll>(&req.body) else {
                    return (400, "text/plain", b"expected {\"site\":..., \"secret\":...}\n".to_vec());
                };
                match self.province.enroll(&e.site, &e.secret) {
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
        net::serve(listener, tls, max, handler).await;
        Ok(())
    }
}
