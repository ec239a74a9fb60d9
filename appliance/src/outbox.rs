//! The persistent SMS outbox [M6].
//!
//! A message is queued in the same atomic write as what caused it (a reminder, an alert, staff's
//! custom message), so it survives crashes and power cuts. [`run`] sends due messages one at a time
//! through an [`SmsSender`], pausing between messages and backing off between retries so the modem is
//! never flooded. States: `queued` → `sending` → `sent` (with the network's message reference of each
//! part) → `delivered` when every part's delivery report arrives, or `failed` with the reason when the
//! network refuses the message for good or reports it undeliverable. A message is never dropped.
//!
//! What is guaranteed across a crash: a message is marked `sending` (durably) before it is handed to
//! the modem, and `sent` after the modem answers. A message found `sending` at start-up — the box died
//! between the two — is sent again: so a message can be sent twice only when the modem accepted it but
//! its answer was lost with the box; a message marked `sent` is never sent again.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use outpost_sync::{Store, StoreError, WriteSet};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{app::Outpost, rules};

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
    /// What it is for: `reminder`, `on_duty`, `custom`, `reply`, …
    pub purpose: String,
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

/// Sends one SMS. Blocking: called from a blocking thread.
pub trait SmsSender: Send + Sync {
    /// Sends `text` to `to`; `reference` is the concatenation reference for a multipart message.
    fn send(&self, id: &str, to: &str, text: &str, reference: u8) -> SendResult;

    /// Whether sending can be tried now. While not (the modem is unplugged or hung), the outbox waits
    /// without counting attempts, so nothing waits long after the modem returns.
    fn ready(&self) -> bool {
        true
    }
}

/// A sender for a box without a modem: logs that a message would be sent (its id and length only: no
/// number, no text, nothing personal in logs).
#[derive(Debug, Default)]
pub struct LogSender;

impl SmsSender for LogSender {
    fn send(&self, id: &str, _to: &str, text: &str, _reference: u8) -> SendResult {
        tracing::info!(
            msg_id = id,
            chars = text.chars().count(),
            "SMS recorded as sent (no modem configured)."
        );
        SendResult::Sent { references: Vec::new() }
    }
}

/// The modem driver as a sender.
pub struct ModemSender(pub Arc<outpost_sms::modem::Modem>);

impl SmsSender for ModemSender {
    fn ready(&self) -> bool {
        self.0.health().connected
    }

    fn send(&self, _id: &str, to: &str, text: &str, reference: u8) -> SendResult {
        match self.0.send(to, text, reference) {
            outpost_sms::modem::SendOutcome::Sent { references } => SendResult::Sent { references },
            outpost_sms::modem::SendOutcome::Failed { permanent, reason } => {
                SendResult::Failed { permanent, reason }
            }
        }
    }
}

fn key(id: &str) -> String {
    format!("outbox/{id}")
}

/// Queues a message in `w`; returns its id.
pub fn enqueue(
    w: &mut WriteSet,
    store: &Store,
    now: DateTime<Utc>,
    to: &str,
    text: &str,
    purpose: &str,
    person_id: Option<&str>,
) -> Result<String, StoreError> {
    let id = format!("{:020}", store.next_id()?);
    let msg = OutboxMessage {
        id: id.clone(),
        to: to.to_owned(),
        text: text.to_owned(),
        purpose: purpose.to_owned(),
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
    w.put_local(&format!("outbox-due/{id}"), &())?;
    Ok(id)
}

/// Every message, oldest first.
pub fn all(store: &Store) -> Result<Vec<OutboxMessage>, StoreError> {
    Ok(store.scan_local::<OutboxMessage>("outbox/")?.into_iter().map(|(_, m)| m).collect())
}

/// The newest `limit` messages, newest first.
pub fn recent(store: &Store, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
    Ok(store
        .scan_local_range::<OutboxMessage>("outbox/", None, limit, true)?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// How many messages wait to be sent.
pub fn waiting(store: &Store) -> Result<usize, StoreError> {
    Ok(store.scan_local::<()>("outbox-due/")?.len())
}

/// The ids of the messages still to send (queued or interrupted), oldest first, from the small index
/// of unsent messages (keys only).
pub fn pending_ids(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store
        .scan_local::<()>("outbox-due/")?
        .into_iter()
        .filter_map(|(k, ())| k.strip_prefix("outbox-due/").map(str::to_owned))
        .collect())
}

/// The messages still to send, oldest first.
pub fn pending(store: &Store) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut out = Vec::new();
    for id in pending_ids(store)? {
        if let Some(m) = store.get_local::<OutboxMessage>(&key(&id))? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Records `msg` as it now stands (and keeps the unsent index and the reference map in step).
fn save(w: &mut WriteSet, msg: &OutboxMessage) -> Result<(), StoreError> {
    w.put_local(&key(&msg.id), msg)?;
    match msg.state {
        OutboxState::Queued | OutboxState::Sending => {
            w.put_local(&format!("outbox-due/{}", msg.id), &())?;
        }
        _ => {
            w.delete_local(&format!("outbox-due/{}", msg.id));
        }
    }
    if msg.state == OutboxState::Sent {
        for r in &msg.references {
            w.put_local(&format!("outbox-mr/{r:03}"), &msg.id)?;
        }
    }
    Ok(())
}

/// Puts messages interrupted by a crash (`sending`) back in the queue. Called once at start-up.
pub fn recover(store: &Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let mut w = WriteSet::new();
    let mut n = 0;
    for mut m in pending(store)?.into_iter().filter(|m| m.state == OutboxState::Sending) {
        m.state = OutboxState::Queued;
        m.next_attempt_at = now;
        m.last_error = Some("interrupted while sending; sent again (the modem's answer was lost)".into());
        save(&mut w, &m)?;
        n += 1;
    }
    if n > 0 {
        store.commit_blocking(w)?;
        tracing::warn!(messages = n, "SMS interrupted by a restart are sent again.");
    }
    Ok(n)
}

/// A delivery report for the part with network reference `reference`: marks the message delivered once
/// every part is, or failed when the network gave up.
pub fn report(
    store: &Store,
    reference: u8,
    delivered: bool,
    status: u8,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(id) = store.get_local::<String>(&format!("outbox-mr/{reference:03}"))? else { return Ok(false) };
    let Some(mut m) = store.get_local::<OutboxMessage>(&key(&id))? else { return Ok(false) };
    if !matches!(m.state, OutboxState::Sent) || !m.references.contains(&reference) {
        return Ok(false);
    }
    if delivered {
        if !m.delivered_parts.contains(&reference) {
            m.delivered_parts.push(reference);
        }
        if m.references.iter().all(|r| m.delivered_parts.contains(r)) {
            m.state = OutboxState::Delivered;
            m.delivered_at = Some(now);
        }
    } else {
        m.state = OutboxState::Failed;
        m.last_error = Some(format!("the network could not deliver it (status 0x{status:02X})"));
    }
    let mut w = WriteSet::new();
    save(&mut w, &m)?;
    store.commit_blocking(w)?;
    Ok(true)
}

/// Sends what is due, one message at a time, until cancelled.
pub async fn run(app: Arc<Outpost>, sender: Arc<dyn SmsSender>, cancel: CancellationToken) {
    let pause = StdDuration::from_millis(app.config.raw.outbox.min_interval_ms);
    loop {
        let sent_any = match send_due(&app, &sender, pause, &cancel).await {
            Ok(n) => n > 0,
            Err(error) => {
                tracing::error!(error = %error, "Outbox pass failed.");
                false
            }
        };
        if sent_any {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = app.outbox_wake.notified() => {}
            _ = tokio::time::sleep(StdDuration::from_secs(2)) => {}
        }
    }
}

async fn send_due(
    app: &Arc<Outpost>,
    sender: &Arc<dyn SmsSender>,
    pause: StdDuration,
    cancel: &CancellationToken,
) -> Result<usize, StoreError> {
    let cfg = &app.config.raw.outbox;
    let mut sent = 0;
    if !sender.ready() {
        return Ok(0);
    }
    // One message in memory at a time, however long the queue.
    for id in pending_ids(&app.store)? {
        if cancel.is_cancelled() || !sender.ready() {
            break;
        }
        let Some(mut msg) = app.store.get_local::<OutboxMessage>(&key(&id))? else { continue };
        if msg.next_attempt_at > app.now() {
            continue;
        }
        msg.state = OutboxState::Sending;
        msg.attempts += 1;
        let mut w = WriteSet::new();
        save(&mut w, &msg)?;
        app.store.commit(w).await?;

        let s = sender.clone();
        let reference = (msg.id.parse::<u64>().unwrap_or(0) % 256) as u8;
        let (id, to, text) = (msg.id.clone(), msg.to.clone(), msg.text.clone());
        let result = tokio::task::spawn_blocking(move || s.send(&id, &to, &text, reference))
            .await
            .unwrap_or_else(|e| SendResult::Failed { permanent: false, reason: e.to_string() });
        match result {
            SendResult::Sent { references } => {
                msg.state = OutboxState::Sent;
                msg.sent_at = Some(app.now());
                msg.references = references;
                msg.last_error = None;
                sent += 1;
            }
            SendResult::Failed { permanent: true, reason } => {
                tracing::warn!(msg_id = %msg.id, %reason, "SMS refused for good.");
                msg.state = OutboxState::Failed;
                msg.last_error = Some(reason);
            }
            SendResult::Failed { permanent: false, reason } => {
                tracing::warn!(msg_id = %msg.id, attempts = msg.attempts, %reason, "SMS not sent; will retry.");
                msg.state = OutboxState::Queued;
                msg.next_attempt_at = app.now()
                    + rules::retry_delay(
                        msg.attempts,
                        Duration::seconds(cfg.retry_seconds as i64),
                        Duration::seconds(cfg.max_retry_seconds as i64),
                    );
                msg.last_error = Some(reason);
            }
        }
        let mut w = WriteSet::new();
        save(&mut w, &msg)?;
        app.store.commit(w).await?;
        app.emit_outbox(&msg.id);
        tokio::time::sleep(pause).await;
    }
    Ok(sent)
}
