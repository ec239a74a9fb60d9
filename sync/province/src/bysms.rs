//! The last link, the province's end (docs/sms.md): the province's own modem (the box's driver,
//! `outpost_sms`) receives the sites' signed SMS — a confirmed zone daily report, a severe alert —
//! and keeps those whose signature is the site's, to show "by SMS" until the sync brings the full
//! records. The rest (an unknown site, a signature that does not hold, a message that does not read)
//! is kept aside with why, and counted.
//!
//! On disk, in the province's folder: `sms/<site>/report-<date>.json`, `sms/<site>/alert-<hash>.json`
//! (each written whole, then renamed), and `sms/rejected.jsonl`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use outpost_link::bysms::{self, Carried};
use outpost_sms::{modem::ModemEvents, pdu};
use serde::{Deserialize, Serialize};

use crate::registry::Province;

/// A message kept: from whom, when, and what it carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    pub site: String,
    pub from: String,
    pub received_at: DateTime<Utc>,
    pub carried: Carried,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Kept,
    Rejected(String),
    /// Not a site's message (an ordinary SMS to the number): left alone.
    NotOurs,
}

/// The province's SMS inbox for the last link.
#[derive(Debug)]
pub struct SmsInbox {
    province: Province,
    pub kept: AtomicU64,
    pub rejected: AtomicU64,
}

impl SmsInbox {
    pub fn new(province: Province) -> SmsInbox {
        SmsInbox { province, kept: AtomicU64::new(0), rejected: AtomicU64::new(0) }
    }

    fn dir(&self) -> PathBuf {
        self.province.dir.join("sms")
    }

    /// Takes one message's text from `from`.
    pub fn take(&self, from: &str, text: &str, now: DateTime<Utc>) -> anyhow::Result<Taken> {
        let Some(read) = bysms::read(text) else { return Ok(Taken::NotOurs) };
        let why = match read {
            Err(e) => Err(format!("unreadable: {e:#}")),
            Ok(read) => match self.province.site(&read.site)? {
                Some(site) if site.enrolled && !site.revoked => {
                    if read.signed_with(&self.province.sms_key(&read.site)?) {
                        Ok(read)
                    } else {
                        Err(format!("the signature is not site {}'s", read.site))
                    }
                }
                _ => Err(format!("no enrolled site {}", read.site)),
            },
        };
        match why {
            Ok(read) => {
                let name = match &read.carried {
                    Carried::Report { date, .. } => format!("report-{date}.json"),
                    Carried::Alert { alert, .. } => format!("alert-{alert}.json"),
                };
                let kept = Received {
                    site: read.site.clone(),
                    from: from.to_owned(),
                    received_at: now,
                    carried: read.carried,
                };
                write_whole(&self.dir().join(&read.site).join(name), &serde_json::to_vec_pretty(&kept)?)?;
                self.kept.fetch_add(1, Ordering::Relaxed);
                tracing::info!(site = %kept.site, "A site's message arrived by SMS.");
                Ok(Taken::Kept)
            }
            Err(reason) => {
                std::fs::create_dir_all(self.dir())?;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir().join("rejected.jsonl"))?;
                let line =
                    serde_json::json!({"from": from, "received_at": now, "reason": reason, "text": text});
                writeln!(f, "{line}")?;
                f.sync_all()?;
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "An SMS to the province's number was refused.");
                Ok(Taken::Rejected(reason))
            }
        }
    }

    /// The report of `site` for `date` that came by SMS.
    pub fn report(&self, site: &str, date: NaiveDate) -> Option<Received> {
        read_json(&self.dir().join(site).join(format!("report-{date}.json")))
    }

    /// The severe alerts of `site` that came by SMS, oldest first.
    pub fn alerts(&self, site: &str) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.dir().join(site)) else { return Vec::new() };
        let mut out: Vec<Received> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("alert-"))
            .filter_map(|e| read_json(&e.path()))
            .collect();
        out.sort_by_key(|r| r.received_at);
        out
    }

    /// The messages refused so far (on disk, across restarts).
    pub fn refused(&self) -> usize {
        std::fs::read_to_string(self.dir().join("rejected.jsonl")).map_or(0, |s| s.lines().count())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a folder")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl ModemEvents for SmsInbox {
    fn received(&self, part: &pdu::Deliver, _raw: &str) -> bool {
        if part.concat.is_some() {
            // The sites' messages are one part each; a long ordinary SMS is not the province's concern.
            return true;
        }
        match self.take(&part.sender, &part.text, Utc::now()) {
            Ok(_) => true,
            Err(error) => {
                // Not durable: left on the SIM, read again.
                tracing::error!(error = %format!("{error:#}"), "Cannot keep an SMS from a site.");
                false
            }
        }
    }

    fn report(&self, _report: &pdu::StatusReport) {}
}
