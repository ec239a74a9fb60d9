//! RFC 2136 dynamic updates signed with TSIG (RFC 8945), the interface BIND, Knot and PowerDNS
//! share: how the province publishes (and then removes) the TXT record of an ACME DNS-01 challenge
//! in its zone. Over TCP, one update per connection, within 10 s; HMAC-SHA256 or -SHA512.
//!
//! The answer's rcode is checked; the answer's own TSIG is not verified (the update goes over a
//! connection the province opened to its own DNS server; a forged "refused" only delays issuance,
//! a forged "done" is caught by the CA's own lookup).

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A TSIG key, as `knsupdate -y` and `nsupdate -y` write it: `hmac-sha256:name:base64-secret`.
#[derive(Clone)]
pub struct TsigKey {
    name: String,
    algorithm: &'static str,
    hmac: ring::hmac::Algorithm,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey").field("name", &self.name).field("algorithm", &self.algorithm).finish()
    }
}

impl TsigKey {
    /// Parses `algorithm:name:secret` (the secret in base64).
    pub fn parse(line: &str) -> anyhow::Result<TsigKey> {
        let mut parts = line.trim().splitn(3, ':');
        let (Some(algorithm), Some(name), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("expected algorithm:name:secret, such as hmac-sha256:province-key:<base64>");
        };
        let (algorithm, hmac) = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => ("hmac-sha256", ring::hmac::HMAC_SHA256),
            "hmac-sha512" => ("hmac-sha512", ring::hmac::HMAC_SHA512),
            other => anyhow::bail!("TSIG algorithm {other}: use hmac-sha256 or hmac-sha512"),
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .context("the TSIG secret is not base64")?;
        anyhow::ensure!(secret.len() >= 16, "a TSIG secret of fewer than 16 bytes is too weak");
        Ok(TsigKey { name: name.trim_end_matches('.').to_ascii_lowercase(), algorithm, hmac, secret })
    }
}

/// The province's DNS server for its zone.
#[derive(Debug, Clone)]
pub struct Updater {
    /// `host:port`.
    pub server: String,
    /// The zone the names are in (the update's zone section).
    pub zone: String,
    pub key: TsigKey,
}

const TYPE_TXT: u16 = 16;
const TYPE_SOA: u16 = 6;
const TYPE_TSIG: u16 = 250;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;
const CLASS_NONE: u16 = 254;
const OPCODE_UPDATE: u16 = 5 << 11;

/// One change of an update.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    /// Every TXT record of the name, removed.
    DeleteAll,
    /// This TXT record added.
    Add(&'a str),
    /// This TXT record removed.
    Delete(&'a str),
}

impl Updater {
    /// Makes `value` the only TXT record of `name` (with a 60 s TTL).
    pub async fn set_txt(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.update(name, &[Change::DeleteAll, Change::Add(value)]).await
    }

    /// Removes the TXT record `value` of `name`.
    pub async fn remove_txt(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.update(name, &[Change::Delete(value)]).await
    }

    async fn update(&self, name: &str, changes: &[Change<'_>]) -> anyhow::Result<()> {
        let id: u16 = rand::random();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let message = self.message(id, name, changes, now)?;
        let answer = tokio::time::timeout(Duration::from_secs(10), exchange(&self.server, &message))
            .await
            .context("the DNS server did not answer in time")??;
        anyhow::ensure!(answer.len() >= 12, "the DNS server's answer is too short");
        anyhow::ensure!(
            u16::from_be_bytes([answer[0], answer[1]]) == id,
            "the DNS answer is for another update"
        );
        match answer[3] & 0x0f {
            0 => Ok(()),
            rcode => anyhow::bail!("the DNS server refused the update: {}", rcode_name(rcode)),
        }
    }

    /// The update message, signed.
    fn message(&self, id: u16, name: &str, changes: &[Change<'_>], now: u64) -> anyhow::Result<Vec<u8>> {
        let mut m = Vec::with_capacity(512);
        for n in [id, OPCODE_UPDATE, 1, 0, changes.len() as u16, 0] {
            m.extend_from_slice(&n.to_be_bytes());
        }
        put_name(&mut m, &self.zone)?;
        put_u16s(&mut m, &[TYPE_SOA, CLASS_IN]);
        for change in changes {
            put_name(&mut m, name)?;
            let (class, ttl, text) = match change {
                Change::DeleteAll => (CLASS_ANY, 0u32, None),
                Change::Add(v) => (CLASS_IN, 60, Some(*v)),
                Change::Delete(v) => (CLASS_NONE, 0, Some(*v)),
            };
            put_u16s(&mut m, &[TYPE_TXT, class]);
            m.extend_from_slice(&ttl.to_be_bytes());
            let rdata = match text {
                Some(t) => txt_rdata(t)?,
                None => Vec::new(),
            };
            put_u16s(&mut m, &[rdata.len() as u16]);
            m.extend_from_slice(&rdata);
        }
        self.sign(&mut m, id, now)?;
        Ok(m)
    }

    /// Appends the TSIG record (RFC 8945 §4.3): the MAC over the message and the TSIG variables.
    fn sign(&self, m: &mut Vec<u8>, id: u16, now: u64) -> anyhow::Result<()> {
        const FUDGE: u16 = 300;
        let mut vars = Vec::with_capacity(128);
        put_name(&mut vars, &self.key.name)?;
        put_u16s(&mut vars, &[CLASS_ANY]);
        vars.extend_from_slice(&0u32.to_be_bytes());
        put_name(&mut vars, self.key.algorithm)?;
        vars.extend_from_slice(&now.to_be_bytes()[2..]);
        put_u16s(&mut vars, &[FUDGE, 0, 0]);
        let key = ring::hmac::Key::new(self.key.hmac, &self.key.secret);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(m);
        ctx.update(&vars);
        let mac = ctx.sign();

        let mut rdata = Vec::with_capacity(128);
        put_name(&mut rdata, self.key.algorithm)?;
        rdata.extend_from_slice(&now.to_be_bytes()[2..]);
        put_u16s(&mut rdata, &[FUDGE, mac.as_ref().len() as u16]);
        rdata.extend_from_slice(mac.as_ref());
        put_u16s(&mut rdata, &[id, 0, 0]);

        put_name(m, &self.key.name)?;
        put_u16s(m, &[TYPE_TSIG, CLASS_ANY]);
        m.extend_from_slice(&0u32.to_be_bytes());
        put_u16s(m, &[rdata.len() as u16]);
        m.extend_from_slice(&rdata);
        m[10..12].copy_from_slice(&1u16.to_be_bytes());
        Ok(())
    }
}

/// One message over TCP, length-prefixed; the answer.
async fn exchange(server: &str, message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut stream =
        TcpStream::connect(server).await.with_context(|| format!("cannot reach the DNS server {server}"))?;
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await.context("the DNS server closed the connection")?;
    let mut answer = vec![0u8; len.into()];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

fn put_u16s(m: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        m.extend_from_slice(&v.to_be_bytes());
    }
}

/// A domain name in wire form, lower case (the canonical form TSIG signs).
fn put_name(m: &mut Vec<u8>, name: &str) -> anyhow::Result<()> {
    let name = name.trim_end_matches('.');
    anyhow::ensure!(name.len() <= 253, "a name over 253 characters");
    for label in name.split('.').filter(|l| !l.is_empty()) {
        anyhow::ensure!(label.len() <= 63 && label.is_ascii(), "the name {name} has an invalid label");
        m.push(label.len() as u8);
        m.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    m.push(0);
    Ok(())
}

/// A TXT record's data: the text as one or more strings of at most 255 bytes.
fn txt_rdata(text: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(text.len() <= 4000, "a TXT value over 4000 bytes");
    let mut out = Vec::with_capacity(text.len() + 2);
    for chunk in text.as_bytes().chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    if text.is_empty() {
        out.push(0);
    }
    Ok(out)
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        1 => "FORMERR (a malformed update)".into(),
        2 => "SERVFAIL".into(),
        5 => "REFUSED (the key may not update this zone)".into(),
        9 => "NOTAUTH (the key or its signature is not accepted, or the zone is not the server's)".into(),
        10 => "NOTZONE (the name is not in the zone)".into(),
        other => format!("rcode {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_as_nsupdate_writes_it() {
        let key =
            TsigKey::parse("hmac-sha256:Province-Key.:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").expect("a key");
        assert_eq!(key.name, "province-key");
        assert!(TsigKey::parse("hmac-md5:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").is_err(), "MD5 is refused");
        assert!(TsigKey::parse("hmac-sha256:k:c2hvcnQ=").is_err(), "a short secret is refused");
        assert!(TsigKey::parse("hmac-sha256:k:not base64!").is_err());
        assert!(TsigKey::parse("province-key").is_err());
    }

    #[test]
    fn names_and_texts_are_encoded_as_the_wire_wants() {
        let mut m = Vec::new();
        put_name(&mut m, "_acme-challenge.S1.Sites.Test.").expect("a name");
        assert_eq!(m, b"\x0f_acme-challenge\x02s1\x05sites\x04test\x00");
        assert!(put_name(&mut Vec::new(), &"a".repeat(64)).is_err());
        let long = "x".repeat(300);
        let rdata = txt_rdata(&long).expect("rdata");
        assert_eq!((rdata[0], rdata[256]), (255, 45));
        assert_eq!(rdata.len(), 302);
    }

    #[test]
    fn an_update_is_signed_over_its_whole_message() {
        let updater = Updater {
            server: "127.0.0.1:53".into(),
            zone: "sites.test".into(),
            key: TsigKey::parse("hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").expect("key"),
        };
        let a = updater
            .message(7, "_acme-challenge.s1.sites.test", &[Change::Add("v1")], 1_700_000_000)
            .expect("a");
        let b = updater
            .message(7, "_acme-challenge.s1.sites.test", &[Change::Add("v2")], 1_700_000_000)
            .expect("b");
        assert_eq!(&a[..4], &[0, 7, 0x28, 0], "the id, then opcode UPDATE");
        assert_eq!(&a[10..12], &[0, 1], "one additional record: the TSIG");
        let mac = |m: &[u8]| m[m.len() - 6 - 32..m.len() - 6].to_vec();
        assert_ne!(mac(&a), mac(&b), "the MAC covers the record");
    }
}
