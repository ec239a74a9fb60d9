//! The outbox worker [M6]: sends due messages one at a time through an [`SmsSender`], pausing
//! between messages (`outbox.min_interval_ms`) and backing off between retries so the modem is
//! never flooded. What each step records, and why a message is sent at most twice across a crash,
//! is in `crate::app::outbox`.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::{outbox::SendResult, AppResult, Outpost};

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

/// Sends what is due until cancelled; `wake` is notified when a message is queued.
pub async fn run(
    app: Arc<Outpost>,
    sender: Arc<dyn SmsSender>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let pause = app.config().outbox.min_interval;
    loop {
        let sent_any = match send_due(&app, &sender, pause, &cancel).await {
            Ok(n) => n > 0,
            Err(error) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Outbox pass failed.");
                false
            }
        };
        if sent_any {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// One pass over the messages due, oldest first; how many were sent.
async fn send_due(
    app: &Arc<Outpost>,
    sender: &Arc<dyn SmsSender>,
    pause: Duration,
    cancel: &CancellationToken,
) -> AppResult<usize> {
    let mut sent = 0;
    if !sender.ready() {
        return Ok(0);
    }
    // One message in memory at a time, however long the queue.
    for id in app.outbox_due()? {
        if cancel.is_cancelled() || !sender.ready() {
            break;
        }
        let Some(msg) = app.start_sending(&id).await? else { continue };
        let s = sender.clone();
        let reference = (msg.id.parse::<u64>().unwrap_or(0) % 256) as u8;
        let (id, to, text) = (msg.id.clone(), msg.to.clone(), msg.text.clone());
        let result = tokio::task::spawn_blocking(move || s.send(&id, &to, &text, reference))
            .await
            .unwrap_or_else(|e| SendResult::Failed { permanent: false, reason: e.to_string() });
        if matches!(result, SendResult::Sent { .. }) {
            sent += 1;
        }
        app.finish_sending(msg, result).await?;
        tokio::time::sleep(pause).await;
    }
    Ok(sent)
}
