//! The outbox worker [M6]: sends due messages one at a time through an [`SmsSender`], by lane (see
//! `crate::app::outbox`), pausing between messages (`outbox.min_interval_ms`) and backing off
//! between retries so the modem is never flooded; at most `outbox.per_person_per_hour` messages to
//! one number an hour, except alerts and results. What each step records, and why a message is sent at most twice across a crash,
//! is in `crate::app::outbox`.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

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
    let mut per_number = PerNumber::seeded(&app);
    loop {
        let sent_any = match send_due(&app, &sender, pause, &cancel, &mut per_number).await {
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

/// The messages sent to each number in the last hour, for the per-person cap
/// (`outbox.per_person_per_hour`). Seeded at start from the outbox, so a restart does not reset it.
struct PerNumber {
    per_hour: usize,
    sent: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl PerNumber {
    fn seeded(app: &Outpost) -> PerNumber {
        let mut p =
            PerNumber { per_hour: app.config().outbox.per_person_per_hour as usize, sent: HashMap::new() };
        let since = app.now() - chrono::Duration::hours(1);
        let recent = app.outbox(5_000).unwrap_or_default();
        for m in recent.iter().rev() {
            if let Some(at) = m.sent_at.filter(|at| *at > since) {
                p.record(&m.to, at);
            }
        }
        p
    }

    /// When `to` may have its next capped message, if not now.
    fn held(&self, to: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let times = self.sent.get(to)?;
        let recent: Vec<&DateTime<Utc>> =
            times.iter().filter(|t| now - **t < chrono::Duration::hours(1)).collect();
        (recent.len() >= self.per_hour)
            .then(|| *recent[recent.len() - self.per_hour] + chrono::Duration::hours(1))
    }

    fn record(&mut self, to: &str, at: DateTime<Utc>) {
        if to.is_empty() {
            return;
        }
        let times = self.sent.entry(to.to_owned()).or_default();
        times.push_back(at);
        while times.front().is_some_and(|t| at - *t >= chrono::Duration::hours(1)) {
            times.pop_front();
        }
        if self.sent.len() > 10_000 {
            self.sent.retain(|_, t| t.back().is_some_and(|last| at - *last < chrono::Duration::hours(1)));
        }
    }
}

/// Sends the next message by lane until none is due; how many were sent. The next one is chosen
/// afresh after each message, so a higher lane never waits behind a lower one for more than the
/// message in flight.
async fn send_due(
    app: &Arc<Outpost>,
    sender: &Arc<dyn SmsSender>,
    pause: Duration,
    cancel: &CancellationToken,
    per_number: &mut PerNumber,
) -> AppResult<usize> {
    let mut sent = 0;
    // One message in memory at a time, however long the queue.
    while !cancel.is_cancelled() && sender.ready() {
        let now = app.now();
        let Some(msg) = app.next_to_send(|m| per_number.held(&m.to, now)).await? else { break };
        let s = sender.clone();
        let reference = (msg.id.parse::<u64>().unwrap_or(0) % 256) as u8;
        let (id, to, text) = (msg.id.clone(), msg.to.clone(), msg.text.clone());
        let began = Instant::now();
        let result = tokio::task::spawn_blocking(move || s.send(&id, &to, &text, reference))
            .await
            .unwrap_or_else(|e| SendResult::Failed { permanent: false, reason: e.to_string() });
        if matches!(result, SendResult::Sent { .. }) {
            app.sms_took(began.elapsed() + pause);
            per_number.record(&msg.to, app.now());
            sent += 1;
        }
        app.finish_sending(msg, result).await?;
        tokio::time::sleep(pause).await;
    }
    Ok(sent)
}
