//! The last link: what a box sends the province by SMS when its data link has been down too long
//! (docs/sms.md) — the confirmed zone daily report and each severe alert — in one GSM 7-bit part
//! each, signed with a key only that site and the province hold.
//!
//! ```text
//! OUTPOST BC <site> <yyyymmdd> Q<in> A<admitted>.<workers>.<children>.<pregnant>.<foreigners> S<round>:<n>,… F<f0> L<yyyymmdd|-> T<transferred> R<released> #<mac>
//! OUTPOST CB <site> <alert> <kind> <yymmddHHMM>Z #<mac>
//! ```
//!
//! `<alert>` is the first 8 hex digits of the SHA-256 of the alert's id (the province finds the alert
//! by it once the records arrive); nothing personal is in either. `<mac>` is HMAC-SHA256 over
//! everything before ` #`, with the site's key, truncated to 10 bytes (20 hex digits): a phone that
//! sends the province's number a made-up report cannot sign it. The site's key is derived by the
//! province from a secret of its own and the site's id, and given to the box over the sync link.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use outpost_sync::record::ZoneDay;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "OUTPOST";

/// What one message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Carried {
    /// A confirmed zone daily report's figures (dates and names left out: the province knows the site).
    Report { date: NaiveDate, figures: ZoneDay },
    /// A severe alert: the hash of its id, its kind, when it was raised (to the minute).
    Alert { alert: String, kind: String, raised_at: DateTime<Utc> },
}

/// A message read from the province's modem, before its signature is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub site: String,
    pub carried: Carried,
    /// The signed text and its MAC.
    signed: String,
    mac: String,
}

/// The site's key: HMAC-SHA256 of the site's id with the province's secret.
pub fn site_key(province_secret: &[u8], site: &str) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, province_secret), site.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(tag.as_ref());
    key
}

/// The short form of an alert's id the province matches against its records.
pub fn alert_hash(alert_id: &str) -> String {
    crate::ca::to_hex(&Sha256::digest(alert_id.as_bytes())[..4])
}

fn mac(key: &[u8], signed: &str) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), signed.as_bytes());
    crate::ca::to_hex(&tag.as_ref()[..10])
}

fn signed(key: &[u8], body: String) -> String {
    let m = mac(key, &body);
    format!("{body} #{m}")
}

/// The SMS for `site`'s confirmed report of `date`.
pub fn report(key: &[u8], site: &str, date: NaiveDate, f: &ZoneDay) -> String {
    let rounds: Vec<String> = f.sampled_by_round.iter().map(|(r, n)| format!("{r}:{n}")).collect();
    let rounds = if rounds.is_empty() { "-".to_owned() } else { rounds.join(",") };
    let last = f.last_f0.map_or("-".to_owned(), |d| d.format("%Y%m%d").to_string());
    signed(
        key,
        format!(
            "{PREFIX} BC {site} {} Q{} A{}.{}.{}.{}.{} S{rounds} F{} L{last} T{} R{}",
            date.format("%Y%m%d"),
            f.in_quarantine,
            f.admitted,
            f.admitted_workers,
            f.admitted_children,
            f.admitted_pregnant,
            f.admitted_foreigners,
            f.converted_f0,
            f.transferred_after_f0,
            f.released
        ),
    )
}

/// The SMS for `site`'s severe alert.
pub fn alert(key: &[u8], site: &str, alert_id: &str, kind: &str, raised_at: DateTime<Utc>) -> String {
    signed(
        key,
        format!("{PREFIX} CB {site} {} {kind} {}Z", alert_hash(alert_id), raised_at.format("%y%m%d%H%M")),
    )
}

/// Reads a message; `None` when it is not one of these at all (an ordinary SMS to the number).
pub fn read(text: &str) -> Option<anyhow::Result<Read>> {
    let text = text.trim();
    if !text.starts_with(&format!("{PREFIX} ")) {
        return None;
    }
    Some(parse(text))
}

fn parse(text: &str) -> anyhow::Result<Read> {
    let (signed, mac) = text.rsplit_once(" #").context("no signature")?;
    let words: Vec<&str> = signed.split(' ').collect();
    let site = words.get(2).context("no site")?.to_string();
    let carried = match (words.get(1).copied(), words.len()) {
        (Some("BC"), 11) => report_fields(&words[3..])?,
        (Some("CB"), 6) => {
            let at = words[5].strip_suffix('Z').context("the alert's time")?;
            let at = NaiveDateTime::parse_from_str(at, "%y%m%d%H%M").context("the alert's time")?;
            Carried::Alert { alert: words[3].to_owned(), kind: words[4].to_owned(), raised_at: at.and_utc() }
        }
        _ => anyhow::bail!("not a report or an alert"),
    };
    Ok(Read { site, carried, signed: signed.to_owned(), mac: mac.to_owned() })
}

fn field(w: &str, tag: char) -> anyhow::Result<&str> {
    w.strip_prefix(tag).with_context(|| format!("field {tag}"))
}

fn report_fields(w: &[&str]) -> anyhow::Result<Carried> {
    let date = NaiveDate::parse_from_str(w[0], "%Y%m%d").context("the report's date")?;
    let n = |s: &str| s.parse::<usize>().with_context(|| format!("not a number: {s}"));
    let admitted: Vec<usize> = field(w[2], 'A')?.split('.').map(n).collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(admitted.len() == 5, "five admitted figures");
    let mut sampled_by_round = BTreeMap::new();
    let rounds = field(w[3], 'S')?;
    if rounds != "-" {
        for pair in rounds.split(',') {
            let (r, c) = pair.split_once(':').context("round:count")?;
            sampled_by_round.insert(r.parse::<u32>().context("round")?, n(c)?);
        }
    }
    let last = field(w[5], 'L')?;
    let last_f0 = if last == "-" { None } else { Some(NaiveDate::parse_from_str(last, "%Y%m%d")?) };
    let figures = ZoneDay {
        in_quarantine: n(field(w[1], 'Q')?)?,
        admitted: admitted[0],
        admitted_workers: admitted[1],
        admitted_children: admitted[2],
        admitted_pregnant: admitted[3],
        admitted_foreigners: admitted[4],
        sampled_by_round,
        converted_f0: n(field(w[4], 'F')?)?,
        last_f0,
        transferred_after_f0: n(field(w[6], 'T')?)?,
        released: n(field(w[7], 'R')?)?,
        ..ZoneDay::default()
    };
    Ok(Carried::Report { date, figures })
}

impl Read {
    /// Whether `key` (the site's) signed it.
    pub fn signed_with(&self, key: &[u8]) -> bool {
        let expected = mac(key, &self.signed);
        // Compared in constant time.
        expected.len() == self.mac.len()
            && expected.bytes().zip(self.mac.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Whether a synced report's figures agree with what came by SMS (the fields the SMS carries).
pub fn agrees(by_sms: &ZoneDay, synced: &ZoneDay) -> bool {
    let carried = |f: &ZoneDay| {
        (
            (f.in_quarantine, f.admitted, f.admitted_workers, f.admitted_children),
            (f.admitted_pregnant, f.admitted_foreigners, f.sampled_by_round.clone(), f.converted_f0),
            (f.last_f0, f.transferred_after_f0, f.released),
        )
    };
    carried(by_sms) == carried(synced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> ZoneDay {
        ZoneDay {
            in_quarantine: 1873,
            admitted: 41,
            admitted_workers: 12,
            admitted_children: 3,
            admitted_pregnant: 1,
            admitted_foreigners: 0,
            sampled_by_round: BTreeMap::from([(1, 40), (3, 1790)]),
            converted_f0: 2,
            last_f0: NaiveDate::from_ymd_opt(2026, 12, 3),
            transferred_after_f0: 1,
            released: 17,
            ..ZoneDay::default()
        }
    }

    #[test]
    fn a_report_fits_one_part_reads_back_and_only_its_key_signs_it() {
        let key = site_key(b"province secret", "hoa-vang-khu-cach-ly-tap-trung-01");
        let date = NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
        let text = report(&key, "hoa-vang-khu-cach-ly-tap-trung-01", date, &figures());
        assert!(text.len() <= 160 && text.is_ascii(), "{} characters: {text}", text.len());
        let read = super::read(&text).expect("ours").expect("reads");
        assert_eq!(read.carried, Carried::Report { date, figures: figures() });
        assert!(read.signed_with(&key));
        assert!(!read.signed_with(&site_key(b"province secret", "another-site")));
        // One figure changed by whoever holds the phone: the signature no longer holds.
        let forged = super::read(&text.replace("Q1873", "Q1000")).expect("ours").expect("reads");
        assert!(!forged.signed_with(&key));
        assert!(agrees(&figures(), &figures()));
    }

    #[test]
    fn an_alert_fits_one_part_and_names_no_one() {
        let key = site_key(b"s", "site-01");
        let at = DateTime::parse_from_rfc3339("2026-12-04T14:07:31Z").expect("time").with_timezone(&Utc);
        let text = alert(&key, "site-01", "spo2-00000000000000012345", "shortness_of_breath", at);
        assert!(text.len() <= 160, "{text}");
        let read = super::read(&text).expect("ours").expect("reads");
        let expected_at =
            DateTime::parse_from_rfc3339("2026-12-04T14:07:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(
            read.carried,
            Carried::Alert {
                alert: alert_hash("spo2-00000000000000012345"),
                kind: "shortness_of_breath".into(),
                raised_at: expected_at
            }
        );
        assert!(read.signed_with(&key));
        assert!(super::read("Chao ban").is_none());
        assert!(super::read("OUTPOST BC x").expect("ours").is_err());
    }
}
