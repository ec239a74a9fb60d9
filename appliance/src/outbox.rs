//! The persistent SMS outbox [M6]: messages are queued in the same atomic write as what caused them,
//! survive crashes and power cuts, and are sent one at a time by [`run`] through an [`SmsSender`], with
//! a pause between messages and a growing delay between retries so the modem is never flooded. A message
//! is never dropped: after failures it stays queued with its next attempt time and last error in view.
//!
//! The modem driver arrives with its own crate; until then [`LogSender`] records each message as sent
//! (its id and length only: no number, no text, nothing personal in logs).

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
    Sent,
}

/// One queued SMS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: String,
    pub to: String,
    pub text: String,
    /// What it is for: `reminder`, `on_duty`, `custom`, …
    pub purpose: String,
    pub person_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Sends one SMS. Blocking: called from a blocking thread.
pub trait SmsSender: Send + Sync {
    /// Sends `text` to `to`; returns a reference for delivery tracking.
    fn send(&self, id: &str, to: &str, text: &str) -> Result<String, String>;
}

/// A sender for a box without a modem: logs that a message would be sent.
#[derive(Debug, Default)]
pub struct LogSender;

impl SmsSender for LogSender {
    fn send(&self, id: &str, _to: &str, text: &str) -> Result<String, String> {
        tracing::info!(
            msg_id = id,
            chars = text.chars().count(),
            "SMS recorded as sent (no modem configured)."
        );
        Ok(format!("log-{id}"))
    }
}

/// Queues a message in `w`.
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
    };
    w.put_local(&format!("outbox/{id}"), &msg)?;
    Ok(id)
}

/// Every message, oldest first.
pub fn all(store: &Store) -> Result<Vec<OutboxMessage>, StoreError> {
    Ok(store.scan_local::<OutboxMessage>("outbox/")?.into_iter().map(|(_, m)| m).collect())
}

/// Sends what is due, one message at a time, until cancelled.
pub async fn run(app: Arc<Outpost>, sender: Arc<dyn SmsSender>, cancel: CancellationToken) {
    let cfg = app.config.raw.outbox.clone();
    let pause = StdDuration::from_millis(cfg.min_interval_ms);
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
            _ = tokio::time::sleep(StdDuration::from_secs(5)) => {}
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
    for mut msg in all(&app.store)?.into_iter().filter(|m| m.state == OutboxState::Queued) {
        if cancel.is_cancelled() {
            break;
        }
        let now = app.now();
        if msg.next_attempt_at > now {
            continue;
        }
        let s = sender.clone();
        let (id, to, text) = (msg.id.clone(), msg.to.clone(), msg.text.clone());
        let result = tokio::task::spawn_blocking(move || s.send(&id, &to, &text))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        msg.attempts += 1;
        match result {
            Ok(_) => {
                msg.state = OutboxState::Sent;
                msg.sent_at = Some(app.now());
                msg.last_error = None;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(msg_id = %msg.id, attempts = msg.attempts, %error, "SMS not sent; will retry.");
                msg.next_attempt_at = app.now()
                    + rules::retry_delay(
                        msg.attempts,
                        Duration::seconds(cfg.retry_seconds as i64),
                        Duration::seconds(cfg.max_retry_seconds as i64),
                    );
                msg.last_error = Some(error);
            }
        }
        let mut w = WriteSet::new();
        w.put_local(&format!("outbox/{}", msg.id), &msg)?;
        app.store.commit(w).await?;
        tokio::time::sleep(pause).await;
    }
    Ok(sent)
}
