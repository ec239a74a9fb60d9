//! The outbox workers [M6], one per modem: each sends due messages one at a time through its
//! [`SmsSender`], by lane (see `crate::app::outbox`), pausing between messages
//! (`outbox.min_interval_ms`) and backing off between retries so no modem is flooded; at most
//! `outbox.per_person_per_hour` messages to one number an hour, except alerts, results and spot
//! checks. What each step records, and why a message is sent at most twice across a crash, is in
//! `crate::app::outbox`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
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
            outpost_sms::modem::SendOutcome::ModemLost { reason } => SendResult::ModemLost { reason },
        }
    }
}

/// Sends what is due through every sender (one per modem) until cancelled; `wake` is notified when
/// a message is queued. Each sender has its own worker; they share the queue (one chooses at a
/// time) and the per-number cap, so the outbox spreads over the ready modems by lane.
pub async fn run(
    app: Arc<Outpost>,
    senders: Vec<Arc<dyn SmsSender>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let per_number = Arc::new(Mutex::new(PerNumber::seeded(&app)));
    let workers: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| {
            let worker = Worker { index, app: app.clone(), sender, per_number: per_number.clone() };
            tokio::spawn(worker.run(wake.clone(), cancel.clone()))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// One sender's worker.
struct Worker {
    index: usize,
    app: Arc<Outpost>,
    sender: Arc<dyn SmsSender>,
    per_number: Arc<Mutex<PerNumber>>,
}

impl Worker {
    async fn run(self, wake: Arc<Notify>, cancel: CancellationToken) {
        loop {
            let sent_any = match self.send_due(&cancel).await {
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

    /// Sends the next message by lane until none is due or the sender is not ready; how many were
    /// sent. The next one is chosen afresh after each message, so a higher lane never waits behind a
    /// lower one for more than the message in flight.
    async fn send_due(&self, cancel: &CancellationToken) -> AppResult<usize> {
        let (app, pause) = (&self.app, self.app.config().outbox.min_interval);
        let mut sent = 0;
        // One message in memory at a time, however long the queue.
        loop {
            let ready = self.sender.ready();
            app.sms_sender_ready(self.index, ready);
            if cancel.is_cancelled() || !ready {
                break;
            }
            let now = app.now();
            let held = |m: &crate::app::outbox::OutboxMessage| {
                self.per_number.lock().ok().and_then(|p| p.held(&m.to, now))
            };
            let Some(msg) = app.next_to_send(held).await? else { break };
            let s = self.sender.clone();
            let reference = (msg.id.parse::<u64>().unwrap_or(0) % 256) as u8;
            let (id, to, text) = (msg.id.clone(), msg.to.clone(), msg.text.clone());
            let began = Instant::now();
            let result = tokio::task::spawn_blocking(move || s.send(&id, &to, &text, reference))
                .await
                .unwrap_or_else(|e| SendResult::Failed { permanent: false, reason: e.to_string() });
            if matches!(result, SendResult::Sent { .. }) {
                app.sms_took(began.elapsed() + pause);
                if let Ok(mut p) = self.per_number.lock() {
                    p.record(&msg.to, app.now());
                }
                sent += 1;
            }
            let lost = matches!(result, SendResult::ModemLost { .. });
            app.finish_sending(msg, result).await?;
            if lost {
                // Another ready modem takes it now.
                self.app.wake_outbox();
            }
            tokio::time::sleep(pause).await;
        }
        Ok(sent)
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
