//! Incoming SMS [M6]: the modem hands each received part to [`InboxEvents`], which stores it durably
//! (so the modem may delete its copy) unless an identical part was already stored (some modems deliver
//! a message twice). [`run`] then reassembles multipart messages — or delivers what arrived once the
//! configured time has passed — and handles each message: a declaration in the SMS syntax from a
//! registered phone becomes that person's declaration (answered with a short confirmation), anything
//! else lands in the staff inbox. Delivery reports are passed to the outbox.

use std::{collections::BTreeMap, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use outpost_sms::{modem::ModemEvents, pdu};
use outpost_sync::{record::Channel, record::Person, Store, StoreError, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{AppError, Outpost},
    clock::Clock,
    outbox, smsdecl, validate,
};

/// One stored part of an incoming message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub sender: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub reference: Option<u16>,
    pub total: u8,
    pub seq: u8,
    pub text: String,
    pub received_at: DateTime<Utc>,
}

/// A received message, as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxMessage {
    pub id: String,
    /// The sender's number in national form when it is a Vietnamese mobile number.
    pub from: String,
    pub person_id: Option<String>,
    pub text: String,
    pub received_at: DateTime<Utc>,
    /// `declaration` (recorded as one), or `staff` (for staff to read).
    pub handled_as: String,
    pub declaration_id: Option<String>,
    /// Parts that never arrived (a multipart message delivered incomplete after the timeout).
    #[serde(default)]
    pub missing_parts: u8,
}

/// The modem's events, stored in the box.
pub struct InboxEvents {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
}

fn identity(part: &pdu::Deliver) -> String {
    let c = part.concat.map(|c| format!("{}/{}/{}", c.reference, c.total, c.seq)).unwrap_or_default();
    let ts = part.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default();
    let d = Sha256::digest(format!("{}\u{0}{ts}\u{0}{c}\u{0}{}", part.sender, part.text).as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl ModemEvents for InboxEvents {
    fn received(&self, part: &pdu::Deliver, _raw: &str) -> bool {
        let id = identity(part);
        match self.store.has_local(&format!("inbox-seen/{id}")) {
            Ok(true) => return true, // the same part again: already durable
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "Cannot check an incoming SMS; it stays on the SIM.");
                return false;
            }
        }
        let now = self.clock.now();
        let stored = Part {
            sender: part.sender.clone(),
            sent_at: part.timestamp.map(|t| t.with_timezone(&Utc)),
            reference: part.concat.map(|c| c.reference),
            total: part.concat.map_or(1, |c| c.total),
            seq: part.concat.map_or(1, |c| c.seq),
            text: part.text.clone(),
            received_at: now,
        };
        let mut w = WriteSet::new();
        let result = w
            .put_local(&format!("inbox-part/{id}"), &stored)
            .and_then(|w| w.put_local(&format!("inbox-seen/{id}"), &now))
            .map(|_| ())
            .and_then(|()| self.store.commit_blocking(w).map(|_| ()));
        match result {
            Ok(()) => {
                self.wake.notify_one();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot store an incoming SMS; it stays on the SIM.");
                false
            }
        }
    }

    fn report(&self, report: &pdu::StatusReport) {
        let delivered = match report.outcome {
            pdu::Outcome::Delivered => true,
            pdu::Outcome::Failed => false,
            pdu::Outcome::Pending => return,
        };
        if let Err(e) =
            outbox::report(&self.store, report.reference, delivered, report.status, self.clock.now())
        {
            tracing::error!(error = %e, "Cannot record a delivery report.");
        }
    }
}

/// Every staff-inbox message, newest first.
pub fn messages(store: &Store, limit: usize) -> Result<Vec<InboxMessage>, StoreError> {
    Ok(store
        .scan_local_range::<InboxMessage>("inbox/", None, limit, true)?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// Handles complete (or timed-out) messages whenever a part arrives, and every 30 s.
pub async fn run(app: Arc<Outpost>, wake: Arc<Notify>, cancel: CancellationToken) {
    loop {
        if let Err(error) = pass(&app).await {
            tracing::error!(error = %anyhow::Error::from(error), "Inbox pass failed.");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(StdDuration::from_secs(30)) => {}
        }
    }
}

/// One pass: group stored parts by message, handle those complete or overdue.
pub async fn pass(app: &Outpost) -> Result<usize, AppError> {
    let now = app.now();
    let timeout = Duration::minutes(app.config.raw.modem.multipart_timeout_minutes.into());
    // Parts of one message share sender, reference and count; a single-part message is its own group.
    let mut groups: BTreeMap<String, Vec<(String, Part)>> = BTreeMap::new();
    for (key, part) in app.store.scan_local::<Part>("inbox-part/")? {
        let id = key.trim_start_matches("inbox-part/").to_owned();
        let group = match part.reference.filter(|_| part.total > 1) {
            Some(r) => format!("{}\u{0}{r}\u{0}{}", part.sender, part.total),
            None => format!("{}\u{0}{id}", part.sender),
        };
        groups.entry(group).or_default().push((id, part));
    }
    let mut handled = 0;
    for mut parts in groups.into_values() {
        let total = parts[0].1.total.max(1);
        parts.sort_by_key(|(_, p)| p.seq);
        parts.dedup_by_key(|(_, p)| p.seq);
        let complete = parts.len() >= usize::from(total);
        let oldest = parts.iter().map(|(_, p)| p.received_at).min().unwrap_or(now);
        if !complete && now - oldest < timeout {
            continue;
        }
        let missing = total.saturating_sub(parts.len() as u8);
        let text: String = parts
            .iter()
            .map(|(_, p)| p.text.as_str())
            .collect::<Vec<_>>()
            .join(if missing > 0 { " […] " } else { "" });
        let sender = parts[0].1.sender.clone();
        // Sortable by arrival and stable across a crash (it also names the declaration it becomes).
        let inbox_id = format!("{}-{}", oldest.format("%Y%m%d%H%M%S%3f"), &parts[0].0[..12]);
        handle(
            app,
            &inbox_id,
            &sender,
            &text,
            oldest,
            missing,
            &parts.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        )
        .await?;
        handled += 1;
    }
    // Forget the identities of parts older than a week (duplicates arrive within minutes).
    let mut w = WriteSet::new();
    for (key, seen) in app.store.scan_local::<DateTime<Utc>>("inbox-seen/")? {
        if now - seen > Duration::days(7) {
            w.delete_local(&key);
        }
    }
    if !w.is_empty() {
        app.store.commit(w).await?;
    }
    Ok(handled)
}

async fn handle(
    app: &Outpost,
    id: &str,
    sender: &str,
    text: &str,
    received_at: DateTime<Utc>,
    missing: u8,
    part_ids: &[String],
) -> Result<(), AppError> {
    let national = validate::phone(sender).ok();
    let person: Option<Person> = match &national {
        Some(p) => app.store.find::<Person>("person_phone", p)?.into_iter().find(|p| p.status.is_watched()),
        None => None,
    };
    let mut message = InboxMessage {
        id: id.to_owned(),
        from: national.clone().unwrap_or_else(|| sender.to_owned()),
        person_id: person.as_ref().map(|p| p.id.clone()),
        text: text.to_owned(),
        received_at,
        handled_as: "staff".into(),
        declaration_id: None,
        missing_parts: missing,
    };
    let mut w = WriteSet::new();
    if let (Some(person), Some(input), 0) = (&person, smsdecl::parse(text), missing) {
        // The declaration's id comes from the message, so handling it again after a crash rewrites the
        // same declaration instead of adding a second one.
        let reply = match app.declare_as(&format!("sms{id}"), person, &input, Channel::Sms, None).await {
            Ok((decl, alert)) => {
                message.handled_as = "declaration".into();
                message.declaration_id = Some(decl.id.clone());
                crate::i18n::declaration_reply_sms(decl.temperature, alert.is_some())
            }
            Err(AppError::Invalid(_)) => crate::i18n::declaration_help_sms(),
            Err(e) => return Err(e),
        };
        outbox::enqueue(&mut w, &app.store, app.now(), &person.phone, &reply, "reply", Some(&person.id))?;
    }
    w.put_local(&format!("inbox/{id}"), &message)?;
    for p in part_ids {
        w.delete_local(&format!("inbox-part/{p}"));
    }
    app.store.commit(w).await?;
    app.emit_outbox(id);
    app.outbox_wake.notify_one();
    Ok(())
}
