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
//! Lanes: the messages still to send are taken by lane, then oldest first — severe alerts to the
//! on-duty phones, test results, spot-check requests, replies to SMS declarations, reminders, then
//! staff's messages — and the worker takes the next one afresh after every message, so a message of
//! a higher lane waits behind a lower one for the message in flight only (reminders and results are
//! one part each). A reminder expires at the end of its round (`expired`, never sent late); results
//! and alerts never expire. To one number, at most `outbox.per_person_per_hour` messages an hour,
//! except alerts, results and spot-check requests (which have a deadline): the others wait their turn.
//!
//! Keys (box-local): `outbox/<id>` the message, `outbox-due/<lane>/<id>` the small index of those
//! still to send, `outbox-mr/<reference>` → id for matching delivery reports.

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

fn due_key(msg: &OutboxMessage) -> String {
    format!("{DUE}{}/{}", msg.purpose.lane(), msg.id)
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
    /// A confirmed report or a severe alert to the province while the data link is down.
    Province,
}

impl Purpose {
    pub const ALL: [Purpose; 7] = [
        Purpose::Reminder,
        Purpose::OnDuty,
        Purpose::Custom,
        Purpose::Reply,
        Purpose::SpotCheck,
        Purpose::TestResult,
        Purpose::Province,
    ];
    /// The lane: lower goes first.
    pub fn lane(self) -> u8 {
        match self {
            Purpose::OnDuty => 0,
            Purpose::Province => 1,
            Purpose::TestResult => 2,
            Purpose::SpotCheck => 3,
            Purpose::Reply => 4,
            Purpose::Reminder => 5,
            Purpose::Custom => 6,
        }
    }

    /// The purposes in lane order.
    pub const BY_LANE: [Purpose; 7] = [
        Purpose::OnDuty,
        Purpose::Province,
        Purpose::TestResult,
        Purpose::SpotCheck,
        Purpose::Reply,
        Purpose::Reminder,
        Purpose::Custom,
    ];

    /// Whether the per-person hourly cap holds it back. Alerts and results always go, and so does a
    /// spot check's request: it has a deadline, and held back it would raise a false "missed" alert.
    pub fn capped(self) -> bool {
        !matches!(self, Purpose::OnDuty | Purpose::TestResult | Purpose::Province | Purpose::SpotCheck)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reminder => "reminder",
            Purpose::OnDuty => "on_duty",
            Purpose::Custom => "custom",
            Purpose::Reply => "reply",
            Purpose::SpotCheck => "spot_check",
            Purpose::TestResult => "test_result",
            Purpose::Province => "province",
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
    /// Its time passed before it could leave (a reminder after its round): never sent.
    Expired,
}

impl OutboxState {
    pub const ALL: [OutboxState; 6] = [
        OutboxState::Queued,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Delivered,
        OutboxState::Failed,
        OutboxState::Expired,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
            OutboxState::Expired => "expired",
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
    /// Not sent after this (a reminder: the end of its round).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// How long a message takes to leave, measured: a moving average of the modem's time per message
/// (milliseconds; none before the first). In memory: a restart measures again.
#[derive(Debug, Default)]
pub struct Pace {
    /// The moving average, milliseconds a message; 0 before the first.
    millis: std::sync::atomic::AtomicU64,
    /// One bit per sender (0..64) that can send now.
    ready: std::sync::atomic::AtomicU64,
}

impl Pace {
    /// Whether sender `index` (0..64) can send now: the outbox drains through the ready ones.
    pub fn ready(&self, index: usize, ready: bool) {
        use std::sync::atomic::Ordering;
        let bit = 1u64 << (index % 64);
        if ready {
            self.ready.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.ready.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// How many senders are ready.
    pub fn senders(&self) -> u32 {
        self.ready.load(std::sync::atomic::Ordering::Relaxed).count_ones()
    }

    /// Adds one message's time.
    pub fn record(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering;
        let ms = took.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        let old = self.millis.load(Ordering::Relaxed);
        let new = if old == 0 { ms } else { (old * 7 + ms) / 8 };
        self.millis.store(new, Ordering::Relaxed);
    }

    /// The average time per message, once measured.
    pub fn per_message(&self) -> Option<std::time::Duration> {
        let ms = self.millis.load(std::sync::atomic::Ordering::Relaxed);
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }
}

/// What the outbox holds and how long it will take: the messages waiting in each lane, and the
/// time for each lane to drain (with every lane before it) at the measured pace.
#[derive(Debug, Clone, Serialize)]
pub struct Wait {
    pub lanes: Vec<LaneWait>,
    /// The measured seconds a message across the ready modems, when measured.
    pub seconds_per_message: Option<f64>,
    /// The modems ready to send.
    pub modems_ready: u32,
    /// Test results would not all leave within the hour they are promised in [M10].
    pub results_late: bool,
}

impl Wait {
    /// The test results' lane.
    pub fn results(&self) -> Option<&LaneWait> {
        self.lanes.iter().find(|l| l.purpose == Purpose::TestResult)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LaneWait {
    pub purpose: Purpose,
    pub waiting: usize,
    /// Seconds until this lane's last message leaves, when the pace is measured.
    pub drained_in_seconds: Option<f64>,
}

/// The result of handing a message to the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    Sent {
        references: Vec<u8>,
    },
    Failed {
        permanent: bool,
        reason: String,
    },
    /// The modem went away before or during the send: the next ready modem takes it at once.
    ModemLost {
        reason: String,
    },
}

/// Records `msg` as it now stands into `w`, keeping the index of unsent messages and the reference
/// map in step.
fn save(w: &mut WriteSet, msg: &OutboxMessage) -> AppResult<()> {
    w.put_local(&key(&msg.id), msg)?;
    match msg.state {
        OutboxState::Queued | OutboxState::Sending => {
            w.put_local(&due_key(msg), &())?;
        }
        _ => {
            w.delete_local(&due_key(msg));
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
        self.queue_sms_until(w, (to, text), purpose, person_id, None)
    }

    /// [`Outpost::queue_sms`] for a message that must not leave after `expires_at`.
    pub(super) fn queue_sms_until(
        &self,
        w: &mut WriteSet,
        (to, text): (&str, &str),
        purpose: Purpose,
        person_id: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
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
            expires_at,
        };
        save(w, &msg)?;
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

    /// How many messages wait in each lane, in lane order (keys only).
    pub fn outbox_lanes(&self) -> AppResult<[(Purpose, usize); 7]> {
        let mut lanes = Purpose::BY_LANE.map(|p| (p, 0));
        for (k, ()) in self.store.scan_local::<()>(DUE)? {
            let lane =
                k.strip_prefix(DUE).and_then(|r| r.split('/').next()).and_then(|l| l.parse::<usize>().ok());
            if let Some(slot) = lane.and_then(|l| lanes.get_mut(l)) {
                slot.1 += 1;
            }
        }
        Ok(lanes)
    }

    /// The outbox's wait, lane by lane, at the measured pace ([`Wait`]).
    pub fn outbox_wait(&self) -> AppResult<Wait> {
        // The modems ready share the queue: the outbox drains as many times faster.
        let senders = f64::from(self.sms_pace.senders().max(1));
        let per = self.sms_pace.per_message().map(|d| d.as_secs_f64() / senders);
        let mut ahead = 0;
        let lanes: Vec<LaneWait> = self
            .outbox_lanes()?
            .into_iter()
            .map(|(purpose, waiting)| {
                ahead += waiting;
                LaneWait { purpose, waiting, drained_in_seconds: per.map(|s| s * ahead as f64) }
            })
            .collect();
        // The oldest result waiting (the first of its lane) must leave within the hour of being recorded.
        let oldest_result = self
            .store
            .scan_local_range::<()>(&format!("{DUE}{}/", Purpose::TestResult.lane()), None, 1, false)?
            .into_iter()
            .filter_map(|(k, ())| {
                self.store.get_local::<OutboxMessage>(&key(k.rsplit('/').next()?)).ok().flatten()
            })
            .next();
        let mut wait = Wait {
            lanes,
            seconds_per_message: per,
            modems_ready: self.sms_pace.senders(),
            results_late: false,
        };
        wait.results_late = match (oldest_result, wait.results().and_then(|l| l.drained_in_seconds)) {
            (Some(m), Some(s)) => {
                self.now() + chrono::Duration::milliseconds((s * 1000.0) as i64)
                    > m.created_at + chrono::Duration::hours(1)
            }
            _ => false,
        };
        Ok(wait)
    }

    /// Records how long a modem took one message.
    pub fn sms_took(&self, took: std::time::Duration) {
        self.sms_pace.record(took);
    }

    /// Records whether sender `index` can send now.
    pub fn sms_sender_ready(&self, index: usize, ready: bool) {
        self.sms_pace.ready(index, ready);
    }

    /// The ids of the messages still to send (queued or interrupted), by lane then oldest first, from
    /// the small index of unsent messages (keys only).
    pub fn outbox_due(&self) -> AppResult<Vec<String>> {
        Ok(self
            .store
            .scan_local::<()>(DUE)?
            .into_iter()
            .filter_map(|(k, ())| k.rsplit('/').next().map(str::to_owned))
            .collect())
    }

    /// Puts messages interrupted by a crash (`sending`) back in the queue, and moves the index of a
    /// box from before lanes (`outbox-due/<id>`) to its lanes. Called once at start-up, off the async
    /// runtime.
    pub fn recover_outbox(&self) -> AppResult<usize> {
        let now = self.now();
        let mut w = WriteSet::new();
        for (k, ()) in self.store.scan_local::<()>(DUE)? {
            let id = k.trim_start_matches(DUE);
            if id.contains('/') {
                continue;
            }
            w.delete_local(&k);
            if let Some(m) = self.store.get_local::<OutboxMessage>(&key(id))? {
                save(&mut w, &m)?;
            }
        }
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
        if !w.is_empty() {
            self.commit_blocking(w)?;
        }
        if n > 0 {
            tracing::warn!(messages = n, "SMS interrupted by a restart are sent again.");
        }
        Ok(n)
    }

    /// The worker's first step: the next message to send — the first due by lane, then oldest —
    /// marked `sending` (durably, before the modem sees it). On the way, reminders past their round
    /// are marked expired, and messages to a number at its hourly cap (`held` gives when it may have
    /// the next one) wait until then. Messages another worker is sending are left alone.
    pub async fn next_to_send(
        &self,
        held: impl Fn(&OutboxMessage) -> Option<DateTime<Utc>>,
    ) -> AppResult<Option<OutboxMessage>> {
        // One worker chooses at a time: two modems never take the same message.
        let _turn = self.outbox_turn.lock().await;
        let now = self.now();
        let mut w = WriteSet::new();
        let mut chosen = None;
        for id in self.outbox_due()? {
            let Some(mut msg) = self.store.get_local::<OutboxMessage>(&key(&id))? else { continue };
            if msg.state != OutboxState::Queued || msg.next_attempt_at > now {
                continue;
            }
            if msg.expires_at.is_some_and(|end| end <= now) {
                msg.state = OutboxState::Expired;
                msg.last_error = Some("its round ended before it could leave: not sent late".into());
                save(&mut w, &msg)?;
                continue;
            }
            if let Some(until) = msg.purpose.capped().then(|| held(&msg)).flatten() {
                msg.next_attempt_at = until;
                save(&mut w, &msg)?;
                continue;
            }
            msg.state = OutboxState::Sending;
            msg.attempts += 1;
            save(&mut w, &msg)?;
            chosen = Some(msg);
            break;
        }
        if !w.is_empty() {
            self.commit(w).await?;
        }
        Ok(chosen)
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
            SendResult::ModemLost { reason } => {
                tracing::warn!(msg_id = %msg.id, %reason, "SMS not sent: its modem was lost; another takes it.");
                msg.state = OutboxState::Queued;
                msg.next_attempt_at = self.now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn by_lane_then_oldest_reminders_expire_and_an_older_index_moves_to_its_lanes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, clock, store) = crate::app::testing::outpost(&dir, "2026-11-21T02:00:00Z", "");
        let now = app.now();
        let mut w = WriteSet::new();
        let staff = app.queue_sms(&mut w, "0905000001", "staff", Purpose::Custom, None).expect("queue");
        let reminder = app
            .queue_sms_until(
                &mut w,
                ("0905000002", "reminder"),
                Purpose::Reminder,
                None,
                Some(now + chrono::Duration::minutes(5)),
            )
            .expect("queue");
        let result = app.queue_sms(&mut w, "0905000003", "result", Purpose::TestResult, None).expect("queue");
        let alert = app.queue_sms(&mut w, "0905999888", "alert", Purpose::OnDuty, None).expect("queue");
        // A box from before lanes kept the staff message under `outbox-due/<id>`.
        w.delete_local(&format!("{DUE}{}/{staff}", Purpose::Custom.lane()));
        w.put_local(&format!("{DUE}{staff}"), &()).expect("old index");
        app.commit(w).await.expect("commit");
        let a = app.clone();
        let recovered = tokio::task::spawn_blocking(move || a.recover_outbox()).await.expect("join");
        assert_eq!(recovered.expect("recover"), 0);
        assert_eq!(
            app.outbox_due().expect("due"),
            vec![alert.clone(), result.clone(), reminder.clone(), staff.clone()]
        );

        let none = |_: &OutboxMessage| None;
        let first = app.next_to_send(none).await.expect("next").expect("one");
        assert_eq!(first.id, alert);
        // Being sent by one modem: the next worker takes the next lane.
        assert_eq!(app.next_to_send(none).await.expect("next").expect("one").id, result);
        // The reminder's round ends: expired, never sent; the staff message comes next.
        clock.advance(chrono::Duration::minutes(6));
        assert_eq!(app.next_to_send(none).await.expect("next").expect("one").id, staff);
        let expired = store.get_local::<OutboxMessage>(&key(&reminder)).expect("get").expect("kept");
        assert_eq!((expired.state, expired.sent_at), (OutboxState::Expired, None));
        assert!(app.next_to_send(none).await.expect("next").is_none());
        // What is waiting, by lane.
        let lanes = app.outbox_lanes().expect("lanes");
        assert_eq!(lanes.iter().map(|(_, n)| n).sum::<usize>(), 3, "the three being sent are still due");
    }
}
