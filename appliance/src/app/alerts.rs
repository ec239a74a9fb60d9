//! Alerts [M5]: their lifecycle (open → acknowledged → resolved, with who and when), the SMS to
//! the on-duty phones for a severe one, and escalation of those nobody acknowledges.

use chrono::{DateTime, Utc};
use outpost_sync::{
    record::{Alert, AlertState, Person, Severity},
    WriteSet,
};

use super::{outbox::Purpose, AppError, AppResult, Outpost};
use crate::base::{
    rules,
    validate::{self, unaccent, Problem},
};

impl Outpost {
    pub fn alert(&self, id: &str) -> AppResult<Alert> {
        self.store.get::<Alert>(id)?.ok_or(AppError::NotFound)
    }

    /// Alerts in `state`, newest first, at most `limit`.
    pub fn alerts(&self, state: AlertState, limit: usize) -> AppResult<Vec<Alert>> {
        let mut out = Vec::new();
        for (_, id) in
            self.store.index_scan(Alert::BY_STATE, &format!("{}|", state.as_str()))?.into_iter().rev()
        {
            if out.len() >= limit {
                break;
            }
            if let Some(a) = self.store.get::<Alert>(&id)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Alerts in `state` with the name of the person each is about, newest first, at most `limit`.
    pub fn alerts_named(&self, state: AlertState, limit: usize) -> AppResult<Vec<(Alert, String)>> {
        Ok(self
            .alerts(state, limit)?
            .into_iter()
            .map(|a| {
                let name = self.person_name(&a.person_id);
                (a, name)
            })
            .collect())
    }

    /// A person's alerts, newest first.
    pub fn alerts_of(&self, person_id: &str) -> AppResult<Vec<Alert>> {
        Ok(self
            .store
            .index_scan(Alert::BY_PERSON, &format!("{person_id}|"))?
            .into_iter()
            .rev()
            .filter_map(|(_, id)| self.store.get::<Alert>(&id).ok().flatten())
            .collect())
    }

    pub fn count_alerts(&self, state: AlertState) -> AppResult<usize> {
        Ok(self.store.index_scan(Alert::BY_STATE, &format!("{}|", state.as_str()))?.len())
    }

    pub async fn acknowledge(&self, id: &str, by: &str) -> AppResult<Alert> {
        let mut alert = self.alert(id)?;
        if alert.state != AlertState::Open {
            return Err(AppError::Conflict(Problem::new(
                "state",
                "Cảnh báo này đã được xác nhận.",
                "This alert was already acknowledged.",
            )));
        }
        let now = self.now();
        alert.state = AlertState::Acknowledged;
        alert.acknowledged_by = Some(by.to_owned());
        alert.acknowledged_at = Some(now);
        let mut w = WriteSet::new();
        w.put(&alert)?;
        self.audit(&mut w, by, "alert.acknowledge", &alert.id, "")?;
        self.commit(w).await?;
        self.emit("alert", &alert.id);
        Ok(alert)
    }

    pub async fn resolve(&self, id: &str, note: &str, by: &str) -> AppResult<Alert> {
        let mut alert = self.alert(id)?;
        if alert.state == AlertState::Resolved {
            return Err(AppError::Conflict(Problem::new(
                "state",
                "Cảnh báo này đã được xử lý.",
                "This alert is already resolved.",
            )));
        }
        let note = note.trim();
        if note.is_empty() {
            return Err(AppError::invalid(
                "note",
                "Cần ghi chú cách xử lý.",
                "A note on how it was resolved is required.",
            ));
        }
        let now = self.now();
        if alert.state == AlertState::Open {
            alert.acknowledged_by = Some(by.to_owned());
            alert.acknowledged_at = Some(now);
        }
        alert.state = AlertState::Resolved;
        alert.resolved_by = Some(by.to_owned());
        alert.resolved_at = Some(now);
        alert.resolution_note = validate::clip(note, 1000);
        let mut w = WriteSet::new();
        w.put(&alert)?;
        self.audit(&mut w, by, "alert.resolve", &alert.id, "")?;
        self.commit(w).await?;
        self.emit("alert", &alert.id);
        Ok(alert)
    }

    /// A severe alert goes to the on-duty phones at once, in the write that raises it.
    pub(super) fn notify_on_duty(&self, w: &mut WriteSet, alert: &Alert, person: &Person) -> AppResult<()> {
        if alert.severity != Severity::Severe {
            return Ok(());
        }
        let text = format!(
            "Outpost: CANH BAO NGHIEM TRONG - phong {}: {}. {}/alerts",
            unaccent(&person.room),
            unaccent(&alert.detail).replace("°C", "do C"),
            self.public_url()
        );
        self.queue_on_duty(w, &text)
    }

    /// Whether a severe alert sends an SMS: some on-duty phone is configured.
    pub(super) fn has_on_duty_phones(&self) -> bool {
        !self.config.alerts.on_duty_phones.is_empty()
    }

    pub(super) fn queue_on_duty(&self, w: &mut WriteSet, text: &str) -> AppResult<()> {
        for phone in &self.config.alerts.on_duty_phones {
            self.queue_sms(w, phone, text, Purpose::OnDuty, None)?;
        }
        Ok(())
    }

    /// Escalates the open alerts nobody acknowledged for `alerts.escalate_after_minutes`: one SMS per
    /// on-duty phone for the whole pass. Returns how many escalated.
    pub(super) async fn escalate(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let every = self.config.alerts.escalate_after;
        let mut w = WriteSet::new();
        let mut escalated = Vec::new();
        for mut alert in self.alerts(AlertState::Open, usize::MAX)? {
            if !rules::escalation_due(alert.raised_at, alert.last_escalated_at, every, now) {
                continue;
            }
            alert.escalations += 1;
            alert.last_escalated_at = Some(now);
            w.put(&alert)?;
            escalated.push(alert);
        }
        // One SMS per on-duty phone for the whole pass, however many alerts escalate: a site with many
        // silent people must not flood the duty phone (or the modem).
        if let Some(first) = escalated.iter().max_by_key(|a| (a.severity, a.escalations)) {
            let url = &self.public_url();
            let text = if escalated.len() == 1 {
                let room = self.person(&first.person_id).map(|p| p.room.clone()).unwrap_or_default();
                format!(
                    "Outpost: CANH BAO CHUA XU LY ({}) - phong {}: {}. {url}/alerts",
                    first.escalations,
                    unaccent(&room),
                    unaccent(&first.detail).replace("°C", "do C"),
                )
            } else {
                format!("Outpost: {} CANH BAO CHUA XU LY. Vui long xem {url}/alerts", escalated.len())
            };
            self.queue_on_duty(&mut w, &text)?;
        }
        if !w.is_empty() {
            self.commit(w).await?;
        }
        for a in &escalated {
            self.emit("alert", a.id.clone());
        }
        Ok(escalated.len())
    }
}
