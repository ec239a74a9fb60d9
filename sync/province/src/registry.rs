//! The province's site registry in its data folder: the CA and the server's certificates, the sites
//! (district, the digest of a one-time enrolment token, revoked, the last certificate issued), their
//! sync logs, and enrolment.
//!
//! Folder layout under the province's data folder:
//! - `ca/ca.crt`, `ca/ca.key` — the CA; `tls/server.crt`, `tls/server.key` — the server's certificate;
//! - `sites/<id>/site.json` — a site: district, the digest of its one-time enrolment token, revoked;
//! - `sites/<id>/store/` — that site's documents (a store per site: a site's exchange can only ever
//!   read and write its own documents) and, box-local, the protocol's state about it.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use outpost_link::{
    ca::{self, Ca},
    exchange::{self, Exchanged},
    net,
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

    /// Site `site`'s key for the last link's signed SMS (`outpost_link::bysms`): derived from the
    /// province's secret (`sms.secret`, made on first use, readable by the province only).
    pub fn sms_key(&self, site: &str) -> anyhow::Result<[u8; 32]> {
        let path = self.dir.join("sms.secret");
        let secret = match std::fs::read(&path) {
            Ok(secret) if secret.len() == 32 => secret,
            _ => {
                let _registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
                match std::fs::read(&path) {
                    Ok(secret) if secret.len() == 32 => secret,
                    _ => {
                        let secret: [u8; 32] = rand::random();
                        ca::write_private(&path, &secret)?;
                        secret.to_vec()
                    }
                }
            }
        };
        Ok(outpost_link::bysms::site_key(&secret, site))
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
    pub(crate) fn record(&self, id: &str, direction: &str, outcome: Result<&Exchanged, &anyhow::Error>) {
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
