//! The province's one-time enrolment token, `<site>.<secret>.<CA fingerprint>`: it names the site,
//! carries the secret the province checks once, and pins the province's CA for the box, which has
//! nothing else to trust it by.

use crate::ca;

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
