//! The last link (docs/sms.md): when the data link to the province has been down for
//! `sync.sms_after_hours`, each confirmed zone daily report [M11] and each severe alert goes to the
//! province's number as a signed SMS (`outpost_link::bysms`), once — a report again only if it is
//! confirmed again. The province shows them "by SMS" until the sync brings the records.
//!
//! Box-local keys: `lastlink/ok` when the link last worked (kept by the link service),
//! `lastlink/key` the province's number and this site's key (given by the province over the link),
//! `lastlink/sent/report/<date>` (the confirmation sent) and `lastlink/sent/alert/<id>`.

use chrono::{DateTime, Duration, Utc};
use outpost_link::{bysms, site::SmsLink};
use outpost_sync::{
    record::{Alert, Severity},
    WriteSet,
};

use super::{outbox::Purpose, AppResult, Outpost};

/// When the link last worked.
pub const LAST_OK: &str = "lastlink/ok";
/// `(when asked, SmsLink)`: the province's number and this site's key.
pub const SMS_LINK: &str = "lastlink/key";

fn sent_key(what: &str) -> String {
    format!("lastlink/sent/{what}")
}

/// Reports further back than this are not sent by SMS (the sync brings them).
const MAX_DAYS: i64 = 14;

/// The last link as the health page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastLinkStatus {
    /// When the data link last worked.
    pub link_ok_at: Option<DateTime<Utc>>,
    /// The province's number, once the province gave it (and this site's key).
    pub province_number: Option<String>,
    /// Whether reports and severe alerts now go by SMS.
    pub active: bool,
}

impl Outpost {
    /// The last link's state now.
    pub fn last_link_status(&self) -> AppResult<LastLinkStatus> {
        let ok = self.store.get_local::<DateTime<Utc>>(LAST_OK)?;
        let link = self.store.get_local::<(DateTime<Utc>, SmsLink)>(SMS_LINK)?;
        let active = match (ok, &link, self.config.sync.sms_after) {
            (Some(ok), Some(_), Some(after)) => self.now() - ok >= after,
            _ => false,
        };
        Ok(LastLinkStatus { link_ok_at: ok, province_number: link.map(|(_, l)| l.number), active })
    }

    /// The scheduler's step for the last link: queues what the province has not had while the link
    /// is down past `sync.sms_after_hours`; how many messages.
    pub async fn last_link_tick(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let Some(after) = self.config.sync.sms_after else { return Ok(0) };
        let Some(ok) = self.store.get_local::<DateTime<Utc>>(LAST_OK)? else { return Ok(0) };
        if now - ok < after {
            return Ok(0);
        }
        let Some((_, link)) = self.store.get_local::<(DateTime<Utc>, SmsLink)>(SMS_LINK)? else {
            return Ok(0);
        };
        let Some(key) = outpost_link::ca::from_hex(&link.key) else { return Ok(0) };
        let site = &self.config.site.id;
        let mut w = WriteSet::new();
        let mut queued = 0;
        let schedule = self.schedule();
        let today = schedule.local(now).date();
        let mut date =
            schedule.local(ok).date().pred_opt().unwrap_or(today).max(today - Duration::days(MAX_DAYS));
        while date <= today {
            if let Some(report) = self.confirmed_report(date)? {
                let marker = sent_key(&format!("report/{date}"));
                if self.store.get_local::<DateTime<Utc>>(&marker)? != Some(report.confirmed_at) {
                    let text = bysms::report(&key, site, date, &report.figures);
                    self.queue_sms(&mut w, &link.number, &text, Purpose::Province, None)?;
                    w.put_local(&marker, &report.confirmed_at)?;
                    queued += 1;
                }
            }
            date = date.succ_opt().unwrap_or(today + Duration::days(1));
        }
        // Open or acknowledged (from the index: no scan of every alert every tick).
        let mut severe = Vec::new();
        for state in ["open|", "acknowledged|"] {
            for (_, id) in self.store.index_scan(Alert::BY_STATE, state)? {
                if let Some(a) = self.store.get::<Alert>(&id)? {
                    if a.severity == Severity::Severe && a.raised_at >= ok {
                        severe.push(a);
                    }
                }
            }
        }
        for a in severe {
            let marker = sent_key(&format!("alert/{}", a.id));
            if self.store.has_local(&marker)? {
                continue;
            }
            let text = bysms::alert(&key, site, &a.id, a.kind.as_str(), a.raised_at);
            self.queue_sms(&mut w, &link.number, &text, Purpose::Province, None)?;
            w.put_local(&marker, &now)?;
            queued += 1;
        }
        if queued > 0 {
            self.commit(w).await?;
            tracing::warn!(messages = queued, since = %ok, "The data link is down: reports and severe alerts go to the province by SMS.");
            self.wake_outbox();
        }
        Ok(queued)
    }
}
