//! Incoming SMS [M6]: each part the modem receives is stored durably (so the modem may delete its
//! copy) unless an identical part was already stored (some modems deliver a message twice). The
//! inbox pass then reassembles multipart messages — or delivers what arrived once
//! `modem.multipart_timeout_minutes` has passed — and handles each message: a declaration in the SMS
//! syntax from a registered phone becomes that person's declaration (answered with a short
//! confirmation), anything else lands in the staff inbox. The modem's events and the worker that
//! runs the pass are in `crate::services::inbox`.
//!
//! Keys (box-local): `inbox-part/<id>` a stored part, `inbox-seen/<id>` the identity of a part
//! already taken (kept a week), `inbox/<id>` a handled message.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use outpost_sms::pdu;
use outpost_sync::{record::Channel, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{outbox::Purpose, privacy::ERASED, AppError, AppResult, Outpost};
use crate::base::{i18n, smsdecl, validate};

const PREFIX: &str = "inbox/";
const PARTS: &str = "inbox-part/";
const SEEN: &str = "inbox-seen/";

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

fn identity(part: &pdu::Deliver) -> String {
    let c = part.concat.map(|c| format!("{}/{}/{}", c.reference, c.total, c.seq)).unwrap_or_default();
    let ts = part.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default();
    let d = Sha256::digest(format!("{}\u{0}{ts}\u{0}{c}\u{0}{}", part.sender, part.text).as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Outpost {
    /// Keeps a part the modem received, durably, unless the same part was kept before. `Ok` means
    /// the modem may delete its copy. Off the async runtime (the modem's thread).
    pub fn keep_sms_part(&self, part: &pdu::Deliver) -> AppResult<()> {
        let id = identity(part);
        if self.store.has_local(&format!("{SEEN}{id}"))? {
            return Ok(()); // the same part again: already durable
        }
        let now = self.now();
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
        w.put_local(&format!("{PARTS}{id}"), &stored)?;
        w.put_local(&format!("{SEEN}{id}"), &now)?;
        self.commit_blocking(w)?;
        Ok(())
    }

    /// The staff inbox, newest first, at most `limit`.
    pub fn inbox(&self, limit: usize) -> AppResult<Vec<InboxMessage>> {
        Ok(self
            .store
            .scan_local_range::<InboxMessage>(PREFIX, None, limit, true)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    /// One pass: group stored parts by message, handle those complete or overdue.
    pub async fn inbox_pass(&self) -> AppResult<usize> {
        let now = self.now();
        let timeout = self.config.modem.multipart_timeout;
        // Parts of one message share sender, reference and count; a single-part message is its own group.
        let mut groups: BTreeMap<String, Vec<(String, Part)>> = BTreeMap::new();
        for (key, part) in self.store.scan_local::<Part>(PARTS)? {
            let id = key.trim_start_matches(PARTS).to_owned();
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
            self.handle_sms(
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
        for (key, seen) in self.store.scan_local::<DateTime<Utc>>(SEEN)? {
            if now - seen > Duration::days(7) {
                w.delete_local(&key);
            }
        }
        if !w.is_empty() {
            self.store.commit(w).await?;
        }
        Ok(handled)
    }

    async fn handle_sms(
        &self,
        id: &str,
        sender: &str,
        text: &str,
        received_at: DateTime<Utc>,
        missing: u8,
        part_ids: &[String],
    ) -> Result<(), AppError> {
        let national = validate::phone(sender).ok();
        let person = match &national {
            Some(p) => self.watched_person_by_phone(p)?,
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
            let reply = match self.declare_as(&format!("sms{id}"), person, &input, Channel::Sms, None).await {
                Ok((decl, alert)) => {
                    message.handled_as = "declaration".into();
                    message.declaration_id = Some(decl.id.clone());
                    i18n::declaration_reply_sms(decl.temperature, alert.is_some())
                }
                Err(AppError::Invalid(_)) => i18n::declaration_help_sms(),
                Err(e) => return Err(e),
            };
            self.queue_sms(&mut w, &person.phone, &reply, Purpose::Reply, Some(&person.id))?;
        }
        w.put_local(&format!("{PREFIX}{id}"), &message)?;
        for p in part_ids {
            w.delete_local(&format!("{PARTS}{p}"));
        }
        self.commit(w).await?;
        self.emit("sms", id);
        self.wake_outbox();
        Ok(())
    }

    /// Erasure [M13]: blanks the number and text of every message from `person_id`, into `w`.
    pub(super) fn erase_inbox(&self, w: &mut WriteSet, person_id: &str) -> AppResult<()> {
        for mut m in self.inbox(usize::MAX)?.into_iter().filter(|m| m.person_id.as_deref() == Some(person_id))
        {
            m.from.clear();
            m.text = ERASED.into();
            w.put_local(&format!("{PREFIX}{}", m.id), &m)?;
        }
        Ok(())
    }
}
