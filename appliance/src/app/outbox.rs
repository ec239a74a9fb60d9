//! The persistent SMS outbox [M6]: the messages, their states, and the steps the outbox worker
//! takes (in `crate::services::outbox`) to send them.
//!
//! A message is queued in the same atomic write as what caused it (a reminder, an alert, staff's
//! custom message), so it survives crashes and power cuts. States: `queued` → `sending` → `sent`
//! (with the network's message reference of each part) → `delivered` when every part's delivery
//! report arrives, or `failed` with the reason when the network refuses the message for good or
//! reports it undeliverable. A message is never dropped.
//!
//! What is guaranteed across a crash: a message is marked `sending` (durably) before it is handed to
//! the modem, and `sent` after the modem answers. A message found `sending` at start-up — the box died
//! between the two — is sent again: so a message can be sent twice only when the modem accepted it but
//! its answer was lost with the box; a message marked `sent` is never sent again.
//!
//! Keys (box-local): `outbox/<id>` the message, `outbox-due/<id>` the small index of those still to
//! send, `outbox-mr/<reference>` → id for matching delivery reports.

use chrono::{DateTime, Utc};
use outpost_sync::WriteSet;
use serde::{Deserialize, Serialize};

use super::{privacy::ERASED, AppResult, Outpost};
use crate::base::rules;

const PREFIX: &str = "outbox/";
const DUE: &str = "outbox-due/";

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn due_key(id: &str) -> String {
    format!("{DUE}{id}")
}

fn reference_key(reference: u8) -> String {
    format!("outbox-mr/{reference:03}")
}

/// What a message is for (the outbox page names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A missed declaration's reminder.
    Reminder,
    /// A severe alert or an escalation, to the on-duty phones.
    OnDuty,
    /// A message staff wrote or chose.
    Custom,
    /// The answer to a declaration received by SMS.
    Reply,
    /// A spot check's request.
    SpotCheck,
    /// A test result, to the person.
    TestResult,
}

impl Purpose {
    pub const ALL: [Purpose; 6] = [
        Purpose::Reminder,
        Purpose::OnDuty,
        Purpose::Custom,
        Purpose::Reply,
        Purpose::SpotCheck,
        Purpose::TestResult,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reminder => "reminder",
            Purpose::OnDuty => "on_duty",
            Purpose::Custom => "custom",
            Purpose::Reply => "reply",
            Purpose::SpotCheck => "spot_check",
            Purpose::TestResult => "test_result",
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Delivered,
        OutboxState::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
}

/// One queued SMS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: String,
    pub to: String,
    pub text: String,
    pub purpose: Purpose,
    pub person_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The network's message reference (TP-MR) of each part, once sent.
    #[serde(default)]
    pub references: Vec<u8>,
    /// Parts whose delivery report said delivered.
    #[serde(default)]
    pub delivered_parts: Vec<u8>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The result of handing a message to the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    Sent { references: Vec<u8> },
    Failed { permanent: bool, reason: String },
}

/// Records `msg` as it now stands into `w`, keeping the index of unsent messages and the reference
/// map in step.
fn save(w: &mut WriteSet, msg: &OutboxMessage) -> AppResult<()> {
    w.put_local(&key(&msg.id), msg)?;
    match msg.state {
        OutboxState::Queued | OutboxState::Sending => {
            w.put_local(&due_key(&msg.id), &())?;
        }
        _ => {
            w.delete_local(&due_key(&msg.id));
        }
    }
    if msg.state == OutboxState::Sent {
        for r in &msg.references {
            w.put_local(&reference_key(*r), &msg.id)?;
        }
    }
    Ok(())
}

impl Outpost {
    /// Queues a message in `w`; returns its id.
    pub(super) fn queue_sms(
        &self,
        w: &mut WriteSet,
        to: &str,
        text: &str,
        purpose: Purpose,
        person_id: Option<&str>,
    ) -> AppResult<String> {
        let id = format!("{:020}", self.store.next_id()?);
        let now = self.now();
        let msg = OutboxMessage {
            id: id.clone(),
            to: to.to_owned(),
            text: text.to_owned(),
            purpose,
            person_id: person_id.map(str::to_owned),
            created_at: now,
            state: OutboxState::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            sent_at: None,
            references: Vec::new(),
            delivered_parts: Vec::new(),
            delivered_at: None,
        };
        w.put_local(&key(&id), &msg)?;
        w.put_local(&due_key(&id), &())?;
        Ok(id)
    }

    /// Every message, oldest first.
    pub fn outbox_all(&self) -> AppResult<Vec<OutboxMessage>> {
        Ok(self.store.scan_local::<OutboxMessage>(PREFIX)?.into_iter().map(|(_, m)| m).collect())
    }

    /// The newest `limit` messages, newest first.
    pub fn outbox(&self, limit: usize) -> AppResult<Vec<OutboxMessage>> {
        Ok(self
            .store
            .scan_local_range::<OutboxMessage>(PREFIX, None, limit, true)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    /// How many messages wait to be sent.
    pub fn outbox_waiting(&self) -> AppResult<usize> {
        Ok(self.store.scan_local::<()>(DUE)?.len())
    }

    /// The ids of the messages still to send (queued or interrupted), oldest first, from the small
    /// index of unsent messages (keys only).
    pub fn outbox_due(&self) -> AppResult<Vec<String>> {
        Ok(self
            .store
            .scan_local::<()>(DUE)?
            .into_iter()
            .filter_map(|(k, ())| k.strip_prefix(DUE).map(str::to_owned))
            .collect())
    }

    /// Puts messages interrupted by a crash (`sending`) back in the queue. Called once at start-up,
    /// off the async runtime.
    pub fn recover_outbox(&self) -> AppResult<usize> {
        let now = self.now();
        let mut w = WriteSet::new();
        let mut n = 0;
        for id in self.outbox_due()? {
            let Some(mut m) = self.store.get_local::<OutboxMessage>(&key(&id))? else { continue };
            if m.state != OutboxState::Sending {
                continue;
            }
            m.state = OutboxState::Queued;
            m.next_attempt_at = now;
            m.last_error = Some("interrupted while sending; sent again (the modem's answer was lost)".into());
            save(&mut w, &m)?;
            n += 1;
        }
        if n > 0 {
            self.commit_blocking(w)?;
            tracing::warn!(messages = n, "SMS interrupted by a restart are sent again.");
        }
        Ok(n)
    }

    /// The worker's first step for message `id`: if it is due now, marks it `sending` (durably,
    /// before the modem sees it) and gives it back.
    pub async fn start_sending(&self, id: &str) -> AppResult<Option<OutboxMessage>> {
        let Some(mut msg) = self.store.get_local::<OutboxMessage>(&key(id))? else { return Ok(None) };
        if msg.next_attempt_at > self.now() {
            return Ok(None);
        }
        msg.state = OutboxState::Sending;
        msg.attempts += 1;
        let mut w = WriteSet::new();
        save(&mut w, &msg)?;
        self.commit(w).await?;
        Ok(Some(msg))
    }

    /// The worker's last step: what the modem said about `msg`, recorded durably; a temporary
    /// failure is retried later, backing off.
    pub async fn finish_sending(
        &self,
        mut msg: OutboxMessage,
        result: SendResult,
    ) -> AppResult<OutboxMessage> {
        let cfg = &self.config.outbox;
        match result {
            SendResult::Sent { references } => {
                msg.state = OutboxState::Sent;
                msg.sent_at = Some(self.now());
                msg.references = references;
                msg.last_error = None;
            }
            SendResult::Failed { permanent: true, reason } => {
                tracing::warn!(msg_id = %msg.id, %reason, "SMS refused for good.");
                msg.state = OutboxState::Failed;
                msg.last_error = Some(reason);
            }
            SendResult::Failed { permanent: false, reason } => {
                tracing::warn!(msg_id = %msg.id, attempts = msg.attempts, %reason, "SMS not sent; will retry.");
                msg.state = OutboxState::Queued;
                msg.next_attempt_at = self.now() + rules::retry_delay(msg.attempts, cfg.retry, cfg.max_retry);
                msg.last_error = Some(reason);
            }
        }
        let mut w = WriteSet::new();
        save(&mut w, &msg)?;
        self.commit(w).await?;
        self.emit("sms", &msg.id);
        Ok(msg)
    }

    /// A delivery report for the part with network reference `reference`: marks the message
    /// delivered once every part is, or failed when the network gave up. Off the async runtime.
    pub fn delivery_report(&self, reference: u8, delivered: bool, status: u8) -> AppResult<bool> {
        let Some(id) = self.store.get_local::<String>(&reference_key(reference))? else { return Ok(false) };
        let Some(mut m) = self.store.get_local::<OutboxMessage>(&key(&id))? else { return Ok(false) };
        if !matches!(m.state, OutboxState::Sent) || !m.references.contains(&reference) {
            return Ok(false);
        }
        if delivered {
            if !m.delivered_parts.contains(&reference) {
                m.delivered_parts.push(reference);
            }
            if m.references.iter().all(|r| m.delivered_parts.contains(r)) {
                m.state = OutboxState::Delivered;
                m.delivered_at = Some(self.now());
            }
        } else {
            m.state = OutboxState::Failed;
            m.last_error = Some(format!("the network could not deliver it (status 0x{status:02X})"));
        }
        let mut w = WriteSet::new();
        save(&mut w, &m)?;
        self.commit_blocking(w)?;
        Ok(true)
    }

    /// Erasure [M13]: blanks the number and text of every message to `person_id`, into `w`.
    pub(super) fn erase_outbox(&self, w: &mut WriteSet, person_id: &str) -> AppResult<()> {
        for mut m in self.outbox_all()?.into_iter().filter(|m| m.person_id.as_deref() == Some(person_id)) {
            m.to.clear();
            m.text = ERASED.into();
            w.put_local(&key(&m.id), &m)?;
        }
        Ok(())
    }
}
