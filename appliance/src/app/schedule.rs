//! The scheduler's pass over the data: settles every slot of the last day (each reminder queued
//! and each missing-declaration alert raised exactly once), sends and misses spot checks, and
//! escalates the alerts nobody acknowledged. Idempotent, safe at any rate; the scheduler service
//! runs it every 30 seconds (or at each move of a manual clock), with the presence engine's pass
//! and the hourly erasure beside it.
//!
//! Exactly once across restarts: a reminder is recorded by a box-local marker
//! (`remind/<slot>/<person>`) in the same write as its SMS, and a missing-declaration alert has a
//! deterministic id (`missing-<slot>-<person>`).

use chrono::{DateTime, NaiveDateTime, Utc};
use outpost_sync::{
    record::{slot_key, Alert, AlertKind, Person, Severity},
    WriteSet,
};
use serde::Serialize;

use super::{outbox::Purpose, AppResult, Outpost};
use crate::base::{i18n, rules::SlotAction};

/// What one scheduler pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub reminders: usize,
    pub alerts: usize,
    pub escalations: usize,
    /// Alerts that are not severe counted in a digest SMS to the on-duty phones.
    pub digested: usize,
    /// People whose personal data was erased.
    pub purged: usize,
    /// Presence events acted on (bands away, back, moved…).
    pub presence: usize,
    /// Spot checks sent or marked missed.
    pub spot_checks: usize,
    /// Reports and severe alerts queued for the province by SMS (the data link down).
    pub by_sms: usize,
}

/// The marker of a reminder queued for `person_id` for the slot `key`.
fn reminded_key(key: &str, person_id: &str) -> String {
    format!("remind/{key}/{person_id}")
}

impl Outpost {
    /// Settles every slot of the last day, sends and misses spot checks, and escalates
    /// unacknowledged alerts. Idempotent; safe to call at any rate.
    pub async fn tick(&self) -> AppResult<TickReport> {
        let now = self.now();
        let mut report = TickReport::default();
        let watched = self.watched()?;
        for slot in self.schedule().settling_slots(now) {
            let (reminders, alerts) = self.settle(slot, &watched, now).await?;
            report.reminders += reminders;
            report.alerts += alerts;
        }
        report.spot_checks = self.spot_check_tick(&watched).await?;
        report.escalations = self.escalate(now).await?;
        report.digested = self.alert_digest(now).await?;
        report.by_sms = self.last_link_tick(now).await?;
        if report.reminders + report.escalations + report.digested > 0 {
            self.wake_outbox();
        }
        Ok(report)
    }

    /// One slot: a reminder to each person late, an alert for each one missing; in one write.
    async fn settle(
        &self,
        slot: NaiveDateTime,
        watched: &[Person],
        now: DateTime<Utc>,
    ) -> AppResult<(usize, usize)> {
        let schedule = self.schedule();
        let declared = self.declared_for(slot)?;
        let key = slot_key(slot);
        let mut w = WriteSet::new();
        let (mut reminders, mut raised) = (0, Vec::new());
        for person in watched.iter().filter(|p| schedule.owes(p, slot)) {
            let reminded = reminded_key(&key, &person.id);
            let alert_id = format!("missing-{key}-{}", person.id);
            let actions = schedule.actions(
                slot,
                declared.contains(&person.id),
                self.store.has_local(&reminded)?,
                self.store.get::<Alert>(&alert_id)?.is_some(),
                now,
            );
            for action in actions {
                match action {
                    SlotAction::QueueReminder => {
                        let text = i18n::reminder_sms(slot, &self.personal_link(person));
                        self.queue_sms_until(
                            &mut w,
                            (&person.phone, &text),
                            Purpose::Reminder,
                            Some(&person.id),
                            Some(schedule.round_end(slot)),
                        )?;
                        w.put_local(&reminded, &now)?;
                        reminders += 1;
                    }
                    SlotAction::RaiseMissingAlert => {
                        let alert = Alert::new(
                            alert_id.clone(),
                            AlertKind::MissingDeclaration,
                            Severity::Warning,
                            &person.id,
                            &key,
                            slot.format("%d/%m %H:%M").to_string(),
                            now,
                        );
                        w.put(&alert)?;
                        raised.push(alert.id);
                    }
                }
            }
        }
        if !w.is_empty() {
            self.commit(w).await?;
            for id in &raised {
                self.emit("alert", id);
            }
        }
        Ok((reminders, raised.len()))
    }
}
