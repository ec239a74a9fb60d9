//! Publicly trusted names for the sites: the province, which has internet, obtains each site's
//! certificate for `<site>.<zone>` from an ACME CA (RFC 8555) with the DNS-01 challenge, publishing
//! the challenge's TXT record in its own zone by RFC 2136 ([`crate::dns`]).
//!
//! The box makes its key and a certificate request (CSR) and sends the CSR over the sync link; the
//! province orders the name of the site whose certificate made the request — never another — and
//! passes the CSR to the CA as it came (the CA checks that its names are the order's, and its
//! signature). The chain goes back to the box on its next call. The private key never leaves the box.
//!
//! Kept per site in `sites/<id>/name.json`; the ACME account in `acme/account.json` (mode 0600).
//! One issuance at a time; a failure waits a minute, doubling to an hour; a revoked site's request
//! is dropped and never ordered.

use std::{future::Future, path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use instant_acme::{
    Account, AccountCredentials, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use outpost_link::ca;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use serde::{Deserialize, Serialize};

use crate::{dns, registry::Province};

/// How the province reaches its CA and its DNS server.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The CA's directory URL (Let's Encrypt: `https://acme-v02.api.letsencrypt.org/directory`).
    pub directory: String,
    /// The CA certificates the CA's HTTPS is checked against (PEM); the system's by default.
    pub roots_pem: String,
    /// A contact for the CA (`mailto:…`), if any.
    pub contact: Option<String>,
    /// The zone of the sites' names, and where its updates go.
    pub dns: dns::Updater,
}

/// What the province keeps of a site's name and certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NameCert {
    pub name: String,
    /// The request waiting to be ordered (hex DER), if any.
    #[serde(default)]
    pub csr_hex: Option<String>,
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
    /// The last chain issued (PEM, leaf first).
    #[serde(default)]
    pub chain_pem: Option<String>,
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub next_attempt: Option<DateTime<Utc>>,
}

/// Why an issuance failed.
enum Failure {
    /// The CA refused the box's certificate request itself: sending it again would not help.
    Request(anyhow::Error),
    /// Anything else (the CA, the DNS server, the network): tried again later.
    Other(anyhow::Error),
}

/// The largest certificate request taken.
pub const MAX_CSR: usize = 8 << 10;

/// The site's name under `zone`.
pub fn site_name(site: &str, zone: &str) -> String {
    format!("{site}.{}", zone.trim_matches('.').to_ascii_lowercase())
}

/// Issues the sites' names.
pub struct Issuer {
    province: Province,
    config: AcmeConfig,
    wake: tokio::sync::Notify,
    http: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("directory", &self.config.directory).finish_non_exhaustive()
    }
}

impl Issuer {
    pub fn new(province: Province, config: AcmeConfig) -> anyhow::Result<Issuer> {
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(config.roots_pem.as_bytes()).flatten() {
            let _ = roots.add(der);
        }
        anyhow::ensure!(!roots.is_empty(), "no CA certificate to check the ACME server's HTTPS with");
        let http =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Issuer { province, config, wake: tokio::sync::Notify::new(), http: Arc::new(http) })
    }

    pub fn zone(&self) -> &str {
        &self.config.dns.zone
    }

    fn file(&self, site: &str) -> PathBuf {
        self.province.dir.join("sites").join(site).join("name.json")
    }

    /// What the province holds of `site`'s name (its name, and nothing else yet, if never asked).
    pub fn name_cert(&self, site: &str) -> NameCert {
        std::fs::read(self.file(site))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| NameCert { name: site_name(site, self.zone()), ..NameCert::default() })
    }

    fn save(&self, site: &str, cert: &NameCert) -> anyhow::Result<()> {
        ca::write_private(&self.file(site), &serde_json::to_vec_pretty(cert)?)
    }

    /// Takes `site`'s request (DER) for its name: kept, and the issuer woken.
    pub fn request(&self, site: &str, csr_der: &[u8], now: DateTime<Utc>) -> anyhow::Result<NameCert> {
        anyhow::ensure!(
            !csr_der.is_empty() && csr_der.len() <= MAX_CSR && csr_der[0] == 0x30,
            "not a certificate request (DER, at most {MAX_CSR} bytes)"
        );
        let mut cert = self.name_cert(site);
        cert.csr_hex = Some(ca::to_hex(csr_der));
        cert.requested_at = Some(now);
        cert.failures = 0;
        cert.next_attempt = None;
        cert.last_error = None;
        self.save(site, &cert)?;
        self.wake.notify_one();
        Ok(cert)
    }

    /// Issues what is asked, one at a time, for ever.
    pub async fn run(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(30), self.wake.notified()).await;
            let province = self.province.clone();
            let Ok(Ok(sites)) = tokio::task::spawn_blocking(move || province.sites()).await else { continue };
            for site in sites {
                let mut cert = self.name_cert(&site.id);
                let Some(csr) = cert.csr_hex.as_deref().and_then(ca::from_hex) else { continue };
                let now = Utc::now();
                if site.revoked || !site.enrolled {
                    cert.csr_hex = None;
                    cert.last_error = Some("the site is revoked: no certificate is ordered for it".into());
                } else if cert.next_attempt.is_some_and(|t| t > now) {
                    continue;
                } else {
                    match tokio::time::timeout(Duration::from_secs(300), self.issue(&cert.name, &csr)).await {
                        Ok(Ok((chain, not_after))) => {
                            tracing::info!(site = %site.id, %not_after, "A site's name certificate was issued.");
                            cert = NameCert {
                                chain_pem: Some(chain),
                                not_after: Some(not_after),
                                issued_at: Some(now),
                                csr_hex: None,
                                ..cert
                            };
                        }
                        Ok(Err(Failure::Request(error))) => {
                            // The same request would be refused again: dropped; the box sends a new
                            // one at its next look (at most once a day).
                            tracing::warn!(site = %site.id, error = %format!("{error:#}"), "A site's certificate request was refused.");
                            cert.csr_hex = None;
                            cert.last_error = Some(format!("{error:#}"));
                        }
                        Ok(Err(Failure::Other(error))) => {
                            self.failed(&site.id, &mut cert, format!("{error:#}"), now)
                        }
                        Err(_) => {
                            self.failed(&site.id, &mut cert, "no certificate within 5 minutes".into(), now)
                        }
                    }
                }
                if let Err(error) = self.save(&site.id, &cert) {
                    tracing::error!(site = %site.id, error = %format!("{error:#}"), "Cannot keep a site's name certificate.");
                }
            }
        }
    }

    fn failed(&self, site: &str, cert: &mut NameCert, error: String, now: DateTime<Utc>) {
        tracing::warn!(site, %error, "A site's name certificate was not issued; trying again later.");
        let wait = outpost_link::exchange::backoff(
            Duration::from_secs(60),
            Duration::from_secs(3600),
            cert.failures,
            rand::random(),
        );
        cert.failures += 1;
        cert.last_error = Some(error);
        cert.next_attempt = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
    }

    /// The ACME account: the one kept, or a new one (kept).
    async fn account(&self) -> anyhow::Result<Account> {
        let file = self.province.dir.join("acme/account.json");
        let builder = || Account::builder_with_http(Box::new(Https(self.http.clone())));
        if let Ok(bytes) = std::fs::read(&file) {
            let credentials: AccountCredentials =
                serde_json::from_slice(&bytes).context("acme/account.json")?;
            return builder().from_credentials(credentials).await.context("the ACME account");
        }
        let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
        let new =
            NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) = builder()
            .create(&new, self.config.directory.clone(), None)
            .await
            .context("creating the ACME account")?;
        ca::write_private(&file, &serde_json::to_vec_pretty(&credentials)?)?;
        Ok(account)
    }

    /// One issuance of `name` for `csr`: the order, the DNS-01 challenge published and then removed,
    /// the CSR, the chain. The chain and its leaf's end.
    async fn issue(&self, name: &str, csr: &[u8]) -> Result<(String, DateTime<Utc>), Failure> {
        let mut csr_refused = false;
        let issued = self.try_issue(name, csr, &mut csr_refused).await;
        issued.map_err(|e| if csr_refused { Failure::Request(e) } else { Failure::Other(e) })
    }

    async fn try_issue(
        &self,
        name: &str,
        csr: &[u8],
        csr_refused: &mut bool,
    ) -> anyhow::Result<(String, DateTime<Utc>)> {
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(name.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await.context("the order")?;
        let record = format!("_acme-challenge.{name}");
        let mut published = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("an authorization")?;
            if authorization.status == instant_acme::AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge =
                authorization.challenge(ChallengeType::Dns01).context("the CA offers no DNS-01 challenge")?;
            let value = challenge.key_authorization().dns_value();
            self.config.dns.set_txt(&record, &value).await.context("publishing the challenge")?;
            published.push(value);
            challenge.set_ready().await.context("the challenge")?;
        }
        let ready = order.poll_ready(&RetryPolicy::new().timeout(Duration::from_secs(120))).await;
        for value in &published {
            if let Err(error) = self.config.dns.remove_txt(&record, value).await {
                tracing::warn!(%record, error = %format!("{error:#}"), "The challenge's record could not be removed.");
            }
        }
        let status = ready.context("the CA's checks")?;
        anyhow::ensure!(status == OrderStatus::Ready, "the order is {status:?}, not ready");
        if let Err(error) = order.finalize_csr(csr).await {
            *csr_refused = matches!(error, instant_acme::Error::Api(_));
            return Err(anyhow::Error::new(error)
                .context("the CA refused the certificate request (its names must be the site's)"));
        }
        let chain = order.poll_certificate(&RetryPolicy::new()).await.context("the certificate")?;
        let leaf = ca::first_der(&chain).context("the CA sent no certificate")?;
        anyhow::ensure!(outpost_link::net::cert_names(&leaf, name), "the CA's certificate is not for {name}");
        Ok((chain, ca::validity(&leaf).context("the certificate's dates")?.1))
    }
}

/// instant-acme's HTTP over hyper and rustls, one connection per request (a few a day).
struct Https(Arc<rustls::ClientConfig>);

impl HttpClient for Https {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let tls = self.0.clone();
        Box::pin(async move {
            let other = |e: anyhow::Error| instant_acme::Error::Other(e.into());
            tokio::time::timeout(Duration::from_secs(30), send(tls, req))
                .await
                .map_err(|_| other(anyhow::anyhow!("the ACME server did not answer in 30 s")))?
                .map_err(other)
        })
    }
}

async fn send(
    tls: Arc<rustls::ClientConfig>,
    mut req: http::Request<BodyWrapper<Bytes>>,
) -> anyhow::Result<BytesResponse> {
    let uri = req.uri().clone();
    anyhow::ensure!(uri.scheme_str() == Some("https"), "the ACME server must be reached over HTTPS: {uri}");
    let host = uri.host().context("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("cannot reach {host}:{port}"))?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, stream)
        .await
        .context("TLS with the ACME server")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or(host);
    *req.uri_mut() = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    req.headers_mut().insert(http::header::HOST, authority.parse()?);
    let res = sender.send_request(req).await.context("the request to the ACME server")?;
    Ok(BytesResponse::from(res))
}
