//! The box's TLS certificate, made once at first start and kept in the data folder
//! (`tls/box.crt`, and `tls/box.key` readable by the box's user only), or a site's own pair named
//! in `[tls]`. Gateways and phones trust it by its file (downloaded from the MQTT page) or its
//! SHA-256 fingerprint: a box at a site without internet cannot get a public certificate.
//!
//! The certificate names `outpost.local`, the machine's host name (and `<host>.local`),
//! `localhost`, 127.0.0.1 and ::1, plus `[tls] names`. It is valid from 2025 (a Pi without a
//! clock battery may boot with a date in the past) for 20 years.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use outpost_link::ca::write_private;
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    sign::CertifiedKey,
};

/// The certificate the box presents.
#[derive(Debug, Clone)]
pub struct BoxCertificate {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The certificate chain in PEM, as served for download.
    pub cert_pem: String,
    /// SHA-256 of the leaf certificate, `AB:CD:…` as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint: String,
    /// The names the certificate is valid for.
    pub names: Vec<String>,
}

/// Where the box's own pair lives under the data folder.
pub fn default_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("box.crt"), dir.join("box.key"))
}

/// The machine's host name, if it has one.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_owned())
}

/// The names a certificate made by the box carries.
pub fn names(extra: &[String]) -> Vec<String> {
    let mut names = vec!["outpost.local".to_owned(), "localhost".to_owned()];
    if let Some(host) = host_name() {
        names.push(format!("{host}.local"));
        names.push(host);
    }
    names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Loads the pair at `cert_path`/`key_path`; when `create` and either file is missing, makes a new
/// self-signed pair for `names` first (the key written before the certificate, each atomically, so
/// an interrupted first start leaves no half pair that is then trusted).
pub fn load_or_create(
    cert_path: &Path,
    key_path: &Path,
    create: bool,
    common_name: &str,
    names: &[String],
) -> anyhow::Result<BoxCertificate> {
    if create && !(cert_path.exists() && key_path.exists()) {
        let (cert_pem, key_pem) = make_self_signed(common_name, names)?;
        write_private(key_path, key_pem.as_bytes())?;
        write_private(cert_path, cert_pem.as_bytes())?;
        tracing::info!(path = %cert_path.display(), "Made the box's TLS certificate.");
    }
    let cert_pem = std::fs::read_to_string(cert_path)
        .with_context(|| format!("cannot read the TLS certificate {}", cert_path.display()))?;
    let chain = parse_chain(&cert_pem)
        .with_context(|| format!("{} is not a PEM certificate", cert_path.display()))?;
    PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM private key: {e}", key_path.display()))?;
    Ok(BoxCertificate {
        cert_path: cert_path.to_owned(),
        key_path: key_path.to_owned(),
        fingerprint: fingerprint(&chain[0]),
        names: names.to_vec(),
        cert_pem,
    })
}

fn parse_chain(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in it");
    Ok(chain)
}

/// `AB:CD:…`, upper-case hex of the SHA-256 of `der` (as the province's CA prints its own).
pub use outpost_link::ca::fingerprint;

fn make_self_signed(common_name: &str, names: &[String]) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("cannot make a key pair")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Outpost");
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(rcgen::SanType::IpAddress(ip)),
            Err(_) => Ok(rcgen::SanType::DnsName(
                name.clone().try_into().with_context(|| format!("{name:?} is not a host name"))?,
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).context("cannot sign the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The certificates the box's HTTPS presents: its own for every name (`outpost.local`, its address),
/// and, once the province obtained it, the site's publicly trusted one for the site's name
/// (`<site>.<zone>`), chosen by the name the phone asks for. The trusted one is replaced in place
/// when renewed: no restart, no connection dropped.
pub struct Certs {
    own: Arc<CertifiedKey>,
    named: RwLock<Option<Named>>,
}

/// The site's publicly trusted certificate.
#[derive(Clone)]
pub struct Named {
    pub name: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Of the leaf, as [`fingerprint`] writes it.
    pub fingerprint: String,
    key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = self.named().map(|n| (n.name, n.not_after));
        f.debug_struct("Certs").field("named", &named).finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A chain (PEM) and its key (PEM) as rustls serves them; refused if they do not match.
fn certified(chain_pem: &str, key_pem: &str) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = parse_chain(chain_pem)?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| anyhow::anyhow!("the key: {e}"))?;
    Ok(Arc::new(
        CertifiedKey::from_der(chain, key, &provider()).context("the certificate is not for this key")?,
    ))
}

impl Certs {
    /// The box's own certificate, and the site's trusted one if it is kept in `data_dir` and valid.
    pub fn new(own: &BoxCertificate, data_dir: &Path) -> anyhow::Result<Arc<Certs>> {
        let key_pem = std::fs::read_to_string(&own.key_path)
            .with_context(|| format!("cannot read {}", own.key_path.display()))?;
        let certs = Certs { own: certified(&own.cert_pem, &key_pem)?, named: RwLock::new(None) };
        let (chain, key) = named_paths(data_dir);
        if let (Ok(chain), Ok(key)) = (std::fs::read_to_string(&chain), std::fs::read_to_string(&key)) {
            if let Err(error) = certs.set_named(&chain, &key) {
                tracing::warn!(error = %format!("{error:#}"), "The site's trusted certificate kept on the card is not usable; the box's own is served until a new one comes.");
            }
        }
        Ok(Arc::new(certs))
    }

    /// The site's trusted certificate, if the box has one.
    pub fn named(&self) -> Option<Named> {
        self.named.read().ok().and_then(|n| n.clone())
    }

    /// Serves `chain_pem` (for the single DNS name of its leaf) with `key_pem` from now on.
    pub fn set_named(&self, chain_pem: &str, key_pem: &str) -> anyhow::Result<Named> {
        let key = certified(chain_pem, key_pem)?;
        let leaf = key.cert.first().context("no certificate")?;
        let (not_before, not_after) = outpost_link::ca::validity(leaf).context("the certificate's dates")?;
        let name = outpost_link::net::cert_dns_names(leaf)
            .into_iter()
            .next()
            .context("the certificate names no host")?;
        let named = Named { name, not_before, not_after, fingerprint: fingerprint(leaf), key };
        if let Ok(mut slot) = self.named.write() {
            *slot = Some(named.clone());
        }
        Ok(named)
    }
}

impl rustls::server::ResolvesServerCert for Certs {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let (Some(asked), Ok(named)) = (hello.server_name(), self.named.read()) {
            if let Some(n) = named.as_ref().filter(|n| n.name.eq_ignore_ascii_case(asked)) {
                return Some(n.key.clone());
            }
        }
        Some(self.own.clone())
    }
}

/// Where the site's trusted certificate and its key are kept (`tls/name.crt`, `tls/name.key`).
pub fn named_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("name.crt"), dir.join("name.key"))
}

/// The key for the site's name (made once, kept in `tls/name.key`, mode 0600, never sent) and a
/// certificate request (DER) for `name` signed with it.
pub fn name_request(data_dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let (_, key_path) = named_paths(data_dir);
    let key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem).context("tls/name.key")?,
        Err(_) => {
            let key = rcgen::KeyPair::generate().context("cannot make a key pair")?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            key
        }
    };
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).context("the name")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key).context("the certificate request")?.der().to_vec())
}

/// Keeps `chain_pem` as the site's trusted certificate if it is for the key in `tls/name.key`;
/// what it is.
pub fn keep_named(data_dir: &Path, certs: &Certs, chain_pem: &str) -> anyhow::Result<Named> {
    let (chain_path, key_path) = named_paths(data_dir);
    let key_pem = std::fs::read_to_string(&key_path).context("tls/name.key")?;
    let named = certs.set_named(chain_pem, &key_pem)?;
    write_private(&chain_path, chain_pem.as_bytes())?;
    Ok(named)
}

/// A rustls server configuration that presents `certs` by the name asked for (TLS 1.2 and 1.3).
pub fn server_config_named(certs: Arc<Certs>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    Ok(Arc::new(config))
}

/// A rustls server configuration presenting `cert` (TLS 1.2 and 1.3, the ring provider).
pub fn server_config(cert: &BoxCertificate) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = parse_chain(&cert.cert_pem)?;
    let key = PrivateKeyDer::from_pem_file(&cert.key_path)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM private key: {e}", cert.key_path.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not match")?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pair_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = default_paths(dir.path());
        let names = names(&["outpost-test.example".into()]);
        let first = load_or_create(&cert, &key, true, "Outpost test", &names).expect("certificate");
        let again = load_or_create(&cert, &key, true, "Outpost test", &names).expect("certificate");
        assert_eq!(first.fingerprint, again.fingerprint, "a second start keeps the certificate");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
        }
        server_config(&first).expect("rustls config");
    }

    #[test]
    fn a_half_pair_is_replaced_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = default_paths(dir.path());
        let first = load_or_create(&cert, &key, true, "Outpost test", &names(&[])).expect("certificate");
        std::fs::remove_file(&cert).expect("remove");
        let second = load_or_create(&cert, &key, true, "Outpost test", &names(&[])).expect("certificate");
        assert_ne!(first.fingerprint, second.fingerprint);
        std::fs::write(&cert, "not a certificate").expect("write");
        let error = load_or_create(&cert, &key, false, "Outpost test", &names(&[]))
            .expect_err("a bad certificate file");
        assert!(format!("{error:#}").contains("box.crt"), "{error:#}");
    }
}
