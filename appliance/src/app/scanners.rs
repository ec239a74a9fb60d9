//! Scanners' health on the record [M3]: a scanner (a site gateway, or the box's own adapter) that
//! goes down raises **one** severe "scanner down" alert, with one SMS to the on-duty phones, instead
//! of one away alert per band it watched (those bands are "not covered": `crate::app::presence`);
//! the alert is resolved by the box when the scanner is heard again. Deciding up and down is
//! `outpost_ble::scanners`' work, on the presence thread (`crate::services::presence`), the only
//! caller of these writes.
//!
//! The alert waits [`ALERT_AFTER`]: a gateway back within it (a Wi-Fi blip, a reboot) raises none,
//! though its bands were not covered meanwhile. A gateway that flaps (its Wi-Fi coming and going)
//! does not text the on-duty phones at each flap: going down again within [`REOPEN_WITHIN`] of the
//! box resolving its alert reopens that alert, without a new SMS.
//!
//! Keys (box-local): `scanner/<name>` → [`KnownScanner`], each scanner the box has heard of and its
//! health as last decided, so that after a restart a gateway that never comes back is still
//! noticed; `scanner-alert/<name>` → its last scanner-down alert (open, or resolved when it came back).

use chrono::{DateTime, Utc};
use outpost_ble::scanners::{Change, DownReason, Health, Scanner};
use outpost_sync::{
    record::{Alert, AlertKind, AlertState, Severity},
    WriteSet,
};
use serde::{Deserialize, Serialize};

use super::{AppResult, Outpost};
use crate::base::{i18n::Lang, validate::unaccent};

const PREFIX: &str = "scanner/";

/// How long a scanner is down before its alert is raised.
pub const ALERT_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// A scanner down again this soon after it came back reopens its alert instead of raising one.
pub const REOPEN_WITHIN: chrono::Duration = chrono::Duration::minutes(15);

fn marker(scanner: &str) -> String {
    format!("scanner-alert/{scanner}")
}

/// A scanner as the box keeps it across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownScanner {
    pub health: Health,
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub reason: Option<DownReason>,
}

/// Why a scanner is down, in words for staff.
pub fn reason_text(lang: Lang, reason: &DownReason, silent_minutes: i64) -> String {
    match (reason, lang) {
        (DownReason::Offline, Lang::Vi) => "gateway báo mất kết nối (MQTT last will)".to_owned(),
        (DownReason::Offline, Lang::En) => "the gateway said it went offline (MQTT last will)".to_owned(),
        (DownReason::Silent, Lang::Vi) => format!("không gửi gì trong {silent_minutes} phút"),
        (DownReason::Silent, Lang::En) => format!("nothing sent for {silent_minutes} minutes"),
        (DownReason::Adapter(_), Lang::Vi) => "bộ Bluetooth của hộp bị lỗi".to_owned(),
        (DownReason::Adapter(_), Lang::En) => "the box's Bluetooth adapter failed".to_owned(),
    }
}

impl Outpost {
    /// The scanners the box knew when it last ran, as they were left.
    pub fn known_scanners(&self) -> AppResult<Vec<Scanner>> {
        Ok(self
            .store
            .scan_local::<KnownScanner>(PREFIX)?
            .into_iter()
            .map(|(key, k)| Scanner {
                name: key.trim_start_matches(PREFIX).to_owned(),
                health: k.health,
                since: k.since,
                reason: k.reason,
                last_heard: k.since,
                telemetry: None,
                telemetry_at: None,
            })
            .collect())
    }

    /// Records a scanner heard for the first time, going down or coming back: its health kept for
    /// a restart (so that a restart still expects it); down with `alert` (the bands worn by people
    /// it watched), its alert raised; back, its alert resolved.
    pub fn record_scanner(&self, change: &Change, alert: Option<usize>) -> AppResult<()> {
        let mut w = WriteSet::new();
        let (alert, sms) = match change {
            Change::Down { scanner, reason, last_heard, at } => {
                let known = KnownScanner { health: Health::Down, since: *at, reason: Some(reason.clone()) };
                w.put_local(&format!("{PREFIX}{scanner}"), &known)?;
                match alert {
                    Some(watched) => {
                        self.stage_scanner_down(&mut w, scanner, reason, *last_heard, *at, watched)?
                    }
                    None => (None, false),
                }
            }
            Change::First { scanner, at } => {
                let known = KnownScanner { health: Health::Up, since: *at, reason: None };
                w.put_local(&format!("{PREFIX}{scanner}"), &known)?;
                (None, false)
            }
            Change::Up { scanner, at } => {
                let known = KnownScanner { health: Health::Up, since: *at, reason: None };
                w.put_local(&format!("{PREFIX}{scanner}"), &known)?;
                (self.stage_scanner_up(&mut w, scanner, *at)?, false)
            }
        };
        self.commit_blocking(w)?;
        if let Some(id) = alert {
            self.emit("alert", &id);
        }
        if sms {
            self.wake_outbox();
        }
        Ok(())
    }

    /// The last scanner-down alert of `scanner`, if any.
    fn last_scanner_alert(&self, scanner: &str) -> AppResult<Option<Alert>> {
        let Some(id) = self.store.get_local::<String>(&marker(scanner))? else { return Ok(None) };
        Ok(self.store.get::<Alert>(&id)?)
    }

    /// The open scanner-down alert of `scanner`, if any.
    fn open_scanner_alert(&self, scanner: &str) -> AppResult<Option<Alert>> {
        Ok(self.last_scanner_alert(scanner)?.filter(|a| a.state != AlertState::Resolved))
    }

    /// Stages the alert of a scanner gone down (one per outage) and its SMS; returns the alert's id
    /// and whether an SMS was queued.
    fn stage_scanner_down(
        &self,
        w: &mut WriteSet,
        scanner: &str,
        reason: &DownReason,
        last_heard: DateTime<Utc>,
        at: DateTime<Utc>,
        watched: usize,
    ) -> AppResult<(Option<String>, bool)> {
        let heard = self.schedule().local(last_heard).format("%H:%M");
        match self.last_scanner_alert(scanner)? {
            Some(a) if a.state != AlertState::Resolved => return Ok((None, false)),
            // Back only a moment ago (by itself): the same outage, flapping; no new SMS.
            Some(mut a)
                if a.resolved_by.as_deref() == Some("outpost")
                    && a.resolved_at.is_some_and(|r| at - r < REOPEN_WITHIN) =>
            {
                a.state = AlertState::Open;
                a.resolved_by = None;
                a.resolved_at = None;
                (a.acknowledged_by, a.acknowledged_at) = (None, None);
                // Escalated a full period after the reopening, not at once for its old start.
                a.last_escalated_at = Some(at);
                a.resolution_note =
                    format!("Lại mất kết nối lúc {} / down again", self.schedule().local(at).format("%H:%M"));
                w.put(&a)?;
                return Ok((Some(a.id), false));
            }
            _ => {}
        }
        let silent = (at - last_heard).num_minutes().max(1);
        // In both languages (`in_lang` shows one).
        let detail = format!(
            "máy quét {scanner}: {}; nghe lần cuối lúc {heard}; {watched} vòng đeo tay không được theo dõi / \
             scanner {scanner}: {}; last heard at {heard}; {watched} bands not watched",
            reason_text(Lang::Vi, reason, silent),
            reason_text(Lang::En, reason, silent),
        );
        let id = format!("{}-{scanner}-{}", AlertKind::ScannerDown.as_str(), at.timestamp());
        let alert = Alert::new(id.clone(), AlertKind::ScannerDown, Severity::Severe, "", scanner, detail, at);
        w.put(&alert)?;
        w.put_local(&marker(scanner), &alert.id)?;
        let text = format!(
            "Outpost: CANH BAO - may quet {} mat ket noi tu {heard}; {watched} vong khong duoc theo doi. \
             Kiem tra may quet va cac phong. {}/alerts",
            unaccent(scanner),
            self.public_url()
        );
        let sms = self.has_on_duty_phones();
        self.queue_on_duty(w, &text)?;
        Ok((Some(id), sms))
    }

    /// Stages the resolution of a scanner's open alert, now that it is heard again.
    fn stage_scanner_up(
        &self,
        w: &mut WriteSet,
        scanner: &str,
        at: DateTime<Utc>,
    ) -> AppResult<Option<String>> {
        let Some(mut alert) = self.open_scanner_alert(scanner)? else { return Ok(None) };
        let local = self.schedule().local(at).format("%H:%M");
        super::alerts::resolve_by_box(
            &mut alert,
            at,
            format!("Máy quét kết nối lại lúc {local} / scanner back"),
        );
        w.put(&alert)?;
        Ok(Some(alert.id))
    }

    /// Forgets a scanner taken away from the site (its open alert resolved), so a restart no
    /// longer expects it; whether the box kept it (one heard only as offline was never kept). The
    /// presence thread is told by the caller.
    pub async fn forget_scanner(&self, scanner: &str, by: &str) -> AppResult<bool> {
        let key = format!("{PREFIX}{scanner}");
        let kept = self.store.has_local(&key)?;
        let mut w = WriteSet::new();
        w.delete_local(&key);
        let resolved = match self.open_scanner_alert(scanner)? {
            Some(mut alert) => {
                alert.state = AlertState::Resolved;
                alert.resolved_by = Some(by.to_owned());
                alert.resolved_at = Some(self.now());
                alert.resolution_note = "Máy quét đã được gỡ khỏi khu / scanner removed".into();
                w.put(&alert)?;
                w.delete_local(&marker(scanner));
                Some(alert.id)
            }
            None => None,
        };
        if !kept && resolved.is_none() {
            return Ok(false);
        }
        self.audit(&mut w, by, "scanner.forget", scanner, "")?;
        self.commit(w).await?;
        if let Some(id) = resolved {
            self.emit("alert", &id);
        }
        Ok(true)
    }
}
