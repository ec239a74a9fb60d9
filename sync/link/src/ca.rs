//! The province's small certificate authority: it makes its own key and certificate once, issues the
//! provincial server's certificates and each site's certificate, and nothing else.
//!
//! A site's certificate names it as `<site id>.sites.outpost` (a DNS name, so that the server can
//! check it with webpki); the provincial server's as `province.outpost`, which sites check whatever
//! address they reach it by (they trust only this CA). A site's certificate serves both ways: as a
//! client when the site pushes, as a server when the province pulls; the province has a client
//! certificate for its pulls.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name in the provincial server's certificate.
pub const PROVINCE_NAME: &str = "province.outpost";

/// The DNS name in the client certificate of site `site_id`.
pub fn site_name(site_id: &str) -> String {
    format!("{site_id}.sites.outpost")
}

/// Site ids at the province: lower-case letters, digits and `-`, 1–63 (one DNS label). Lower case
/// only, because certificate names compare without case: `abc` and `ABC` must not be two sites.
pub fn check_site_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// A certificate's validity (not before, not after), read from its DER: the TBS certificate's field
/// after the optional version, the serial, the signature algorithm and the issuer.
pub fn validity(der: &[u8]) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let (_, cert, _) = der_item(der)?;
    let (_, tbs, _) = der_item(cert)?;
    let mut rest = tbs;
    let mut fields = Vec::with_capacity(4);
    while fields.len() < 4 {
        let (tag, content, after) = der_item(rest)?;
        if !(fields.is_empty() && tag == 0xa0) {
            fields.push((tag, content));
        }
        rest = after;
    }
    let (tag, validity) = fields[3];
    if tag != 0x30 {
        return None;
    }
    let (t1, not_before, rest) = der_item(validity)?;
    let (t2, not_after, _) = der_item(rest)?;
    Some((der_time(t1, not_before)?, der_time(t2, not_after)?))
}

/// One DER item: its tag, its content, and what follows it.
fn der_item(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn der_time(tag: u8, content: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let full = match tag {
        0x17 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 => text.to_owned(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(full.strip_suffix('Z')?, "%Y%m%d%H%M%S").ok().map(|t| t.and_utc())
}

/// `AB:CD:…` of the SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// What a site needs to talk to the province: the CA to trust, and its own certificate and key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bundle {
    pub site_id: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA: its key, and its certificate as issued (the trust anchor) and as an issuer.
pub struct Ca {
    key: rcgen::KeyPair,
    issuer: rcgen::Certificate,
    pub cert_pem: String,
    pub fingerprint: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Outpost province CA");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Outpost");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params
}

impl Ca {
    /// Loads the CA from `dir` (`ca.crt`, `ca.key`), making it first if `create` and it has none.
    pub fn load_or_create(dir: &Path, create: bool) -> anyhow::Result<Ca> {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if create && !key_path.exists() {
            let key = rcgen::KeyPair::generate().context("cannot make the CA key")?;
            let cert = ca_params().self_signed(&key).context("cannot make the CA certificate")?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            write_private(&cert_path, cert.pem().as_bytes())?;
        }
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("no CA at {} (run `outpost-province init`)", key_path.display()))?;
        let key = rcgen::KeyPair::from_pem(&key_pem).context("the CA key is not a PEM key")?;
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let der = first_der(&cert_pem).context("the CA certificate is not PEM")?;
        // The same name and key: what it signs verifies against the stored certificate.
        let issuer = ca_params().self_signed(&key).context("the CA key cannot sign")?;
        Ok(Ca { key, issuer, fingerprint: fingerprint(&der), cert_pem })
    }

    /// Issues a certificate and a fresh key for `names` (DNS names or addresses), for the uses
    /// `usage`.
    pub fn issue(
        &self,
        names: &[String],
        usage: &[rcgen::ExtendedKeyUsagePurpose],
    ) -> anyhow::Result<Issued> {
        let key = rcgen::KeyPair::generate()?;
        let cert = leaf_params(names, usage)?.signed_by(&key, &self.issuer, &self.key)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A site's bundle: this CA and a certificate naming the site, as a client (pushes) and a server
    /// (pulls). For the public key the box sent (its private key never leaves it), or else with a
    /// key made here (a bundle carried on a USB stick).
    pub fn site_bundle(&self, site_id: &str, public_key: Option<&[u8]>) -> anyhow::Result<Bundle> {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let (names, usage) = ([site_name(site_id)], [ClientAuth, ServerAuth]);
        let issued = match public_key {
            Some(raw) => {
                anyhow::ensure!(
                    raw.len() == 65 && raw[0] == 4,
                    "a site's key is an uncompressed P-256 public key (65 bytes)"
                );
                let cert = leaf_params(&names, &usage)?.signed_by(
                    &P256Public(raw.to_vec()),
                    &self.issuer,
                    &self.key,
                )?;
                Issued { cert_pem: cert.pem(), key_pem: String::new() }
            }
            None => self.issue(&names, &usage)?,
        };
        Ok(Bundle {
            site_id: site_id.to_owned(),
            ca_pem: self.cert_pem.clone(),
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        })
    }
}

/// A public key a box sent: an uncompressed P-256 point (rcgen's default key type).
struct P256Public(Vec<u8>);

impl rcgen::PublicKeyData for P256Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A leaf certificate's parameters: `names`, for `usage`, valid 2025–2045.
fn leaf_params(
    names: &[String],
    usage: &[rcgen::ExtendedKeyUsagePurpose],
) -> anyhow::Result<rcgen::CertificateParams> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("a certificate name")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, names.first().cloned().unwrap_or_default());
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usage.to_vec();
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) as bytes; `None` if it is not.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// The DER of the first certificate in `pem`.
pub fn first_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok().map(|c| c.to_vec())
}

/// Writes `bytes` to `path` through a temporary file and a rename, readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir: PathBuf = path.parent().context("a file needs a folder")?.to_owned();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_s_dates_are_read_from_its_der() {
        let ca = Ca::load_or_create(&tempfile_dir(), true).expect("a CA");
        let der = first_der(&ca.cert_pem).expect("der");
        let (from, to) = validity(&der).expect("dates");
        assert_eq!(from.to_rfc3339(), "2025-01-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2045-01-01T00:00:00+00:00");
        assert_eq!(validity(&der[..der.len() / 2]), None, "a cut certificate has no dates");
        assert_eq!(validity(b"\x30\x03\x02\x01\x01"), None);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("outpost-ca-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
