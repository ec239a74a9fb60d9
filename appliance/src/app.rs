//! The box's operations: what staff, quarantined people and the scheduler do to the store.
//!
//! Each operation validates its input, builds one [`WriteSet`] (records, outbox messages, audit entries
//! and markers together) and commits it, so a request either happens whole or not at all, and is
//! acknowledged only once durable. The decisions come from [`crate::rules`]; this module does the IO
//! around them. It knows nothing of HTTP.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use outpost_sync::{
    record::{
        slot_key, Alert, AlertKind, AlertState, Channel, Declaration, FollowUp, Person, PersonDetails,
        PersonStatus, Severity, Site, StatusChange, Symptom,
    },
    store::Applied,
    Store, StoreError, WriteSet,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Notify};

use crate::{
    audit,
    clock::{Clock, CorrectedClock},
    config::Config,
    outbox,
    rules::{self, Schedule, SlotAction, Thresholds},
    validate::{self, PersonInput, Problem},
};

/// Something staff browsers should know about at once (sent as server-sent events).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub id: String,
}

/// An operation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Vec<Problem>),
    #[error("conflict")]
    Conflict(Problem),
    #[error("the store failed")]
    Store(#[from] StoreError),
}

pub type AppResult<T> = Result<T, AppError>;

/// A declaration as submitted, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeclarationInput {
    pub temperature: Option<String>,
    pub spo2: Option<String>,
    #[serde(default)]
    pub symptoms: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// The box: store, configuration, clock and live events.
pub struct Outpost {
    pub store: Store,
    pub config: Config,
    /// The box's clock (`corrected`, as one trait object).
    pub clock: Arc<dyn Clock>,
    /// The same clock, with the correction learned from the province.
    pub corrected: Arc<CorrectedClock>,
    pub schedule: Schedule,
    pub thresholds: Thresholds,
    pub events: broadcast::Sender<Event>,
    /// Wakes the outbox worker when a message is queued.
    pub outbox_wake: Notify,
    /// The modem driver, when the box has one (for its health).
    pub modem: std::sync::OnceLock<Arc<outpost_sms::modem::Modem>>,
    /// The MQTT broker, when enabled.
    pub mqtt: std::sync::OnceLock<crate::mqtt::Mqtt>,
    /// The certificate the box presents over TLS, once loaded.
    pub certificate: std::sync::OnceLock<crate::tls::BoxCertificate>,
    /// The link to the province's progress, once enrolled.
    pub sync: std::sync::OnceLock<Arc<std::sync::Mutex<crate::sync::SyncStatus>>>,
    /// The box's own Bluetooth scanner, when configured.
    pub ble: std::sync::OnceLock<Arc<outpost_ble::scan::ScanStats>>,
    /// The presence thread, once started.
    pub presence: std::sync::OnceLock<crate::presence::Presence>,
    /// When personal data was last looked at for purging (hourly).
    last_purge: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// One sampling or result write at a time: each reads what is recorded before it decides.
    pub(crate) testing_turn: tokio::sync::Mutex<()>,
    /// Conditions components report for the health page (`adapter`, `config`), with their detail.
    conditions: std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>,
}

impl Outpost {
    pub fn new(store: Store, config: Config, clock: Arc<dyn Clock>) -> Arc<Outpost> {
        let corrected = CorrectedClock::new(clock);
        let d = &config.raw.declarations;
        let schedule = Schedule {
            times: config.schedule.clone(),
            offset: config.utc_offset,
            open_before: Duration::minutes(d.open_before_minutes.into()),
            reminder_after: Duration::minutes(d.reminder_after_minutes.into()),
            alert_after_reminder: Duration::minutes(d.alert_after_reminder_minutes.into()),
        };
        let thresholds = Thresholds {
            fever_celsius: config.raw.alerts.fever_celsius,
            spo2_below: config.raw.alerts.spo2_below,
        };
        let (events, _) = broadcast::channel(256);
        Arc::new(Outpost {
            store,
            config,
            clock: corrected.clone(),
            corrected,
            schedule,
            thresholds,
            events,
            outbox_wake: Notify::new(),
            modem: std::sync::OnceLock::new(),
            mqtt: std::sync::OnceLock::new(),
            certificate: std::sync::OnceLock::new(),
            sync: std::sync::OnceLock::new(),
            presence: std::sync::OnceLock::new(),
            ble: std::sync::OnceLock::new(),
            last_purge: std::sync::Mutex::new(None),
            conditions: Default::default(),
            testing_turn: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets (or, with `None`, clears) a condition shown on the health page; logged when it changes.
    pub fn set_condition(&self, code: &'static str, detail: Option<String>) {
        let Ok(mut conditions) = self.conditions.lock() else { return };
        match detail {
            Some(d) => {
                if conditions.get(code) != Some(&d) {
                    tracing::error!(condition = code, detail = %d, "The box has a problem (shown on its health page).");
                }
                conditions.insert(code, d);
            }
            None => {
                if conditions.remove(code).is_some() {
                    tracing::info!(condition = code, "A problem of the box cleared.");
                }
            }
        }
    }

    /// The conditions set with [`Outpost::set_condition`].
    pub fn conditions(&self) -> Vec<(&'static str, String)> {
        self.conditions.lock().map(|c| c.iter().map(|(k, v)| (*k, v.clone())).collect()).unwrap_or_default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today's date at the site.
    pub fn today(&self) -> NaiveDate {
        self.schedule.local(self.now()).date()
    }

    pub(crate) fn emit(&self, kind: &'static str, id: impl Into<String>) {
        let _ = self.events.send(Event { kind, id: id.into() });
    }

    pub fn emit_alert(&self, id: &str) {
        self.emit("alert", id);
    }

    pub fn emit_presence(&self, id: &str) {
        self.emit("presence", id);
    }

    /// Tells staff browsers an SMS changed (queued, sent, delivered, received).
    pub fn emit_outbox(&self, id: &str) {
        self.emit("sms", id);
    }

    pub(crate) async fn commit(&self, writes: WriteSet) -> AppResult<Applied> {
        let applied = self.store.commit(writes).await?;
        Ok(applied)
    }

    /// Writes the site record from the configuration (the configuration is authoritative for the box's
    /// own site).
    pub async fn ensure_site(&self) -> AppResult<()> {
        let s = &self.config.raw.site;
        let site = Site {
            id: s.id.clone(),
            name: s.name.clone(),
            district: s.district.clone(),
            commune: s.commune.clone(),
            management_level: s.management_level.clone(),
            schedule: self.config.schedule.iter().map(|t| t.format("%H:%M").to_string()).collect(),
            utc_offset_minutes: self.config.utc_offset.local_minus_utc() / 60,
        };
        let mut w = WriteSet::new();
        w.put(&site)?;
        self.commit(w).await?;
        Ok(())
    }

    pub fn site(&self) -> AppResult<Site> {
        self.store.get::<Site>(&self.config.raw.site.id)?.ok_or(AppError::NotFound)
    }

    // ----- people -----

    pub fn person(&self, id: &str) -> AppResult<Person> {
        self.store.get::<Person>(id)?.ok_or(AppError::NotFound)
    }

    pub fn person_by_token(&self, token: &str) -> AppResult<Person> {
        if token.len() < 16 {
            return Err(AppError::NotFound);
        }
        self.store.find::<Person>("person_token", token)?.into_iter().next().ok_or(AppError::NotFound)
    }

    fn person_by_id_number(&self, id_number: &str) -> AppResult<Option<Person>> {
        Ok(self.store.find::<Person>("person_id_number", id_number)?.into_iter().next())
    }

    /// Builds a new person record from validated input (not yet stored).
    pub fn new_person(&self, details: &PersonDetails, by: &str) -> Person {
        let now = self.now();
        Person {
            id: uuid::Uuid::new_v4().simple().to_string(),
            details: details.clone(),
            status: PersonStatus::InQuarantine,
            status_history: vec![StatusChange {
                status: PersonStatus::InQuarantine,
                at: now,
                by: by.to_owned(),
                note: String::new(),
            }],
            declare_token: crate::auth::random_token(),
            created_at: now,
            updated_at: now,
            purged_at: None,
            home_geofence: None,
        }
    }

    pub async fn create_person(&self, input: &PersonInput, by: &str) -> AppResult<Person> {
        let valid = input.validate(self.today()).map_err(AppError::Invalid)?;
        if let Some(existing) = self.person_by_id_number(&valid.id_number)? {
            return Err(AppError::Conflict(Problem::duplicate_id_number(&existing.full_name)));
        }
        let person = self.new_person(&valid, by);
        let mut w = WriteSet::new();
        w.put(&person)?;
        audit::record(&mut w, &self.store, self.now(), by, "person.create", &person.id, "")?;
        self.commit(w).await?;
        self.emit("person", &person.id);
        Ok(person)
    }

    pub async fn update_person(&self, id: &str, input: &PersonInput, by: &str) -> AppResult<Person> {
        let mut person = self.person(id)?;
        let valid = input.validate(self.today()).map_err(AppError::Invalid)?;
        if let Some(existing) = self.person_by_id_number(&valid.id_number)? {
            if existing.id != person.id {
                return Err(AppError::Conflict(Problem::duplicate_id_number(&existing.full_name)));
            }
        }
        person.details = valid;
        person.updated_at = self.now();
        let mut w = WriteSet::new();
        w.put(&person)?;
        audit::record(&mut w, &self.store, self.now(), by, "person.update", &person.id, "")?;
        self.commit(w).await?;
        self.emit("person", &person.id);
        Ok(person)
    }

    pub async fn change_status(
        &self,
        id: &str,
        status: PersonStatus,
        note: &str,
        by: &str,
    ) -> AppResult<Person> {
        let mut person = self.person(id)?;
        if person.status == status {
            return Ok(person);
        }
        let now = self.now();
        person.status = status;
        if status == PersonStatus::ConvertedF0 {
            person.details.category = outpost_sync::record::Category::F0;
        }
        person.status_history.push(StatusChange {
            status,
            at: now,
            by: by.to_owned(),
            note: validate::clip(note, 500),
        });
        person.updated_at = now;
        let mut w = WriteSet::new();
        w.put(&person)?;
        let returned = self.return_band_of(&mut w, &person, status, by)?;
        audit::record(&mut w, &self.store, now, by, "person.status", &person.id, status.as_str())?;
        self.commit(w).await?;
        if let Some(band) = returned {
            self.band_returned(&band, &person.id);
        }
        self.emit("person", &person.id);
        Ok(person)
    }

    /// Stores people already validated by an import, in one atomic write.
    pub async fn import_people(&self, rows: &[PersonDetails], by: &str) -> AppResult<usize> {
        let mut w = WriteSet::new();
        for row in rows {
            let person = self.new_person(row, by);
            w.put(&person)?;
        }
        audit::record(&mut w, &self.store, self.now(), by, "person.import", "", &rows.len().to_string())?;
        self.commit(w).await?;
        self.emit("person", "import");
        Ok(rows.len())
    }

    /// Whether an ID number is already registered.
    pub fn id_number_known(&self, id_number: &str) -> AppResult<bool> {
        Ok(self.person_by_id_number(id_number)?.is_some())
    }

    /// People, filtered: `query` matches name, phone, room or ID number; `status` and `category` exact.
    pub fn people(
        &self,
        query: &str,
        status: Option<PersonStatus>,
        category: Option<outpost_sync::record::Category>,
    ) -> AppResult<Vec<Person>> {
        let q = validate::fold(query);
        let mut people: Vec<Person> = self
            .store
            .list::<Person>()?
            .into_iter()
            .filter(|p| status.is_none_or(|s| p.status == s))
            .filter(|p| category.is_none_or(|c| p.category == c))
            .filter(|p| {
                q.is_empty()
                    || validate::fold(&p.full_name).contains(&q)
                    || p.phone.contains(&q)
                    || p.id_number.contains(query.trim())
                    || validate::fold(&p.room).contains(&q)
            })
            .collect();
        people.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.full_name.cmp(&b.full_name)));
        Ok(people)
    }

    /// Ids of the people currently watched (from the status index, keys only).
    pub fn watched_ids(&self) -> AppResult<Vec<String>> {
        let mut ids = Vec::new();
        for s in PersonStatus::ALL.into_iter().filter(|s| s.is_watched()) {
            ids.extend(self.store.index_scan("person_status", s.as_str())?.into_iter().map(|(_, id)| id));
        }
        Ok(ids)
    }

    // ----- declarations -----

    /// Ids of the people who declared for `slot`.
    pub fn declared_for(&self, slot: chrono::NaiveDateTime) -> AppResult<std::collections::HashSet<String>> {
        let prefix = format!("{}|", slot_key(slot));
        Ok(self
            .store
            .index_scan("decl_slot", &prefix)?
            .into_iter()
            .filter_map(|(v, _)| v.split_once('|').map(|(_, p)| p.to_owned()))
            .collect())
    }

    /// A person's declarations, newest first.
    pub fn declarations_of(&self, person_id: &str) -> AppResult<Vec<Declaration>> {
        let mut out = Vec::new();
        for (_, id) in self.store.index_scan("decl_person", &format!("{person_id}|"))?.into_iter().rev() {
            if let Some(d) = self.store.get::<Declaration>(&id)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Records a declaration and, in the same write, the alert it raises. Returns both.
    pub async fn declare(
        &self,
        person: &Person,
        input: &DeclarationInput,
        channel: Channel,
        entered_by: Option<&str>,
    ) -> AppResult<(Declaration, Option<Alert>)> {
        self.declare_as(&uuid::Uuid::new_v4().simple().to_string(), person, input, channel, entered_by).await
    }

    /// [`Outpost::declare`] with a given declaration id (an SMS's, so handling it twice is harmless).
    pub async fn declare_as(
        &self,
        id: &str,
        person: &Person,
        input: &DeclarationInput,
        channel: Channel,
        entered_by: Option<&str>,
    ) -> AppResult<(Declaration, Option<Alert>)> {
        let valid = validate::declaration(input).map_err(AppError::Invalid)?;
        require_watched(person)?;
        let now = self.now();
        let slot = self.schedule.slot_for(now);
        let decl = Declaration {
            id: id.to_owned(),
            person_id: person.id.clone(),
            slot,
            submitted_at: now,
            on_time: self.schedule.on_time(slot, now),
            channel,
            entered_by: entered_by.map(str::to_owned),
            temperature: valid.temperature,
            spo2: valid.spo2,
            symptoms: valid.symptoms.clone(),
            note: valid.note.clone(),
        };
        let mut w = WriteSet::new();
        w.put(&decl)?;
        let alert = rules::evaluate(decl.temperature, decl.spo2, &decl.symptoms, self.thresholds).map(|f| {
            Alert::new(format!("decl-{}", decl.id), f.kind, f.severity, &person.id, &decl.id, f.detail, now)
        });
        if let Some(alert) = &alert {
            w.put(alert)?;
            self.notify_on_duty(&mut w, alert, person)?;
        }
        if let Some(by) = entered_by {
            audit::record(&mut w, &self.store, now, by, "declaration.enter", &person.id, "")?;
        }
        self.commit(w).await?;
        self.emit("declaration", &decl.id);
        if let Some(a) = &alert {
            self.emit("alert", &a.id);
            self.outbox_wake.notify_one();
        }
        Ok((decl, alert))
    }

    // ----- alerts -----

    pub fn alert(&self, id: &str) -> AppResult<Alert> {
        self.store.get::<Alert>(id)?.ok_or(AppError::NotFound)
    }

    /// Alerts in `state`, newest first, at most `limit`.
    pub fn alerts(&self, state: AlertState, limit: usize) -> AppResult<Vec<Alert>> {
        let mut out = Vec::new();
        for (_, id) in
            self.store.index_scan("alert_state", &format!("{}|", state.as_str()))?.into_iter().rev()
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

    pub fn count_alerts(&self, state: AlertState) -> AppResult<usize> {
        Ok(self.store.index_scan("alert_state", &format!("{}|", state.as_str()))?.len())
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
        audit::record(&mut w, &self.store, now, by, "alert.acknowledge", &alert.id, "")?;
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
            return Err(AppError::Invalid(vec![Problem::new(
                "note",
                "Cần ghi chú cách xử lý.",
                "A note on how it was resolved is required.",
            )]));
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
        audit::record(&mut w, &self.store, now, by, "alert.resolve", &alert.id, "")?;
        self.commit(w).await?;
        self.emit("alert", &alert.id);
        Ok(alert)
    }

    /// A severe alert goes to the on-duty phones at once.
    pub(crate) fn notify_on_duty(&self, w: &mut WriteSet, alert: &Alert, person: &Person) -> AppResult<()> {
        if alert.severity != Severity::Severe {
            return Ok(());
        }
        let text = format!(
            "Outpost: CANH BAO NGHIEM TRONG - phong {}: {}. {}/alerts",
            crate::validate::unaccent(&person.room),
            crate::validate::unaccent(&alert.detail).replace("°C", "do C"),
            self.config.public_url
        );
        for phone in &self.config.raw.alerts.on_duty_phones {
            outbox::enqueue(w, &self.store, self.now(), phone, &text, "on_duty", None)?;
        }
        Ok(())
    }

    // ----- scheduler -----

    /// Settles every slot of the last day and escalates unacknowledged alerts: queues each reminder and
    /// raises each missing-declaration alert exactly once. Idempotent; safe to call at any rate.
    pub async fn tick(&self) -> AppResult<TickReport> {
        let now = self.now();
        let mut report = TickReport::default();
        let watched: Vec<Person> = self
            .watched_ids()?
            .into_iter()
            .filter_map(|id| self.store.get::<Person>(&id).ok().flatten())
            .collect();
        for slot in self.schedule.settling_slots(now) {
            let declared = self.declared_for(slot)?;
            let key = slot_key(slot);
            let mut w = WriteSet::new();
            let mut raised = Vec::new();
            for person in watched.iter().filter(|p| self.schedule.owes(p, slot)) {
                let reminded_key = format!("remind/{key}/{}", person.id);
                let alert_id = format!("missing-{key}-{}", person.id);
                let actions = self.schedule.actions(
                    slot,
                    declared.contains(&person.id),
                    self.store.has_local(&reminded_key)?,
                    self.store.get::<Alert>(&alert_id)?.is_some(),
                    now,
                );
                for action in actions {
                    match action {
                        SlotAction::QueueReminder => {
                            let link = format!("{}/d/{}", self.config.public_url, person.declare_token);
                            let text = crate::i18n::reminder_sms(&slot.format("%H:%M").to_string(), &link);
                            outbox::enqueue(
                                &mut w,
                                &self.store,
                                now,
                                &person.phone,
                                &text,
                                "reminder",
                                Some(&person.id),
                            )?;
                            w.put_local(&reminded_key, &now)?;
                            report.reminders += 1;
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
                            report.alerts += 1;
                        }
                    }
                }
            }
            if !w.is_empty() {
                self.commit(w).await?;
                for id in raised {
                    self.emit("alert", id);
                }
            }
        }
        report.spot_checks = self.spot_check_tick(&watched).await?;
        if let Some(p) = self.presence.get() {
            report.presence = p.tick(now).await;
        }
        report.escalations = self.escalate(now).await?;
        let purge_due = {
            let mut last = self.last_purge.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| now - t >= Duration::hours(1));
            if due {
                *last = Some(now);
            }
            due
        };
        if purge_due {
            report.purged = self.purge(now).await?;
            self.purge_check_ins(now).await?;
            self.purge_positions(now)?;
            self.purge_photos(now)?;
        }
        if report.reminders + report.escalations > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(report)
    }

    async fn escalate(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let every = Duration::minutes(self.config.raw.alerts.escalate_after_minutes.into());
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
            let text = if escalated.len() == 1 {
                let room = self.person(&first.person_id).map(|p| p.room.clone()).unwrap_or_default();
                format!(
                    "Outpost: CANH BAO CHUA XU LY ({}) - phong {}: {}. {}/alerts",
                    first.escalations,
                    crate::validate::unaccent(&room),
                    crate::validate::unaccent(&first.detail).replace("°C", "do C"),
                    self.config.public_url
                )
            } else {
                format!(
                    "Outpost: {} CANH BAO CHUA XU LY. Vui long xem {}/alerts",
                    escalated.len(),
                    self.config.public_url
                )
            };
            for phone in &self.config.raw.alerts.on_duty_phones {
                outbox::enqueue(&mut w, &self.store, now, phone, &text, "on_duty", None)?;
            }
        }
        if !w.is_empty() {
            self.commit(w).await?;
        }
        for a in &escalated {
            self.emit("alert", a.id.clone());
        }
        Ok(escalated.len())
    }

    // ----- privacy -----

    /// Erases the personal data of people released or transferred more than `privacy.purge_after_days`
    /// ago [M13]: name, phone, ID number, address, birth year, decision number, their personal link, the
    /// notes staff wrote, and the numbers and texts of their SMS. What stays is anonymous: dates,
    /// category, flags and status, which the daily reports count.
    pub async fn purge(&self, now: DateTime<Utc>) -> AppResult<usize> {
        const ERASED: &str = "(đã xóa)";
        let after = Duration::days(self.config.raw.privacy.purge_after_days.into());
        let mut ids = Vec::new();
        for status in [PersonStatus::Released, PersonStatus::Transferred] {
            ids.extend(
                self.store.index_scan("person_status", status.as_str())?.into_iter().map(|(_, id)| id),
            );
        }
        let mut purged = 0;
        for id in ids {
            let Some(mut p) = self.store.get::<Person>(&id)? else { continue };
            let since = p.status_history.last().map_or(p.updated_at, |s| s.at);
            if p.purged_at.is_some() || now - since < after {
                continue;
            }
            let mut w = WriteSet::new();
            let d = &mut p.details;
            d.full_name = ERASED.into();
            d.phone.clear();
            d.id_number.clear();
            d.address.clear();
            d.decision_number.clear();
            d.birth_year = None;
            p.declare_token.clear();
            for change in &mut p.status_history {
                change.note.clear();
            }
            p.purged_at = Some(now);
            p.updated_at = now;
            // A home's address and coordinates, and the last position, are personal too.
            p.home_geofence = None;
            w.delete_local(&format!("geo-state/{id}"));
            // New documents without history: a CRDT keeps every earlier value otherwise.
            w.replace(&p)?;
            for mut decl in self.declarations_of(&id)?.into_iter().filter(|d| !d.note.is_empty()) {
                decl.note.clear();
                w.replace(&decl)?;
            }
            for (_, f) in self
                .store
                .index_scan("followup_date", "")?
                .into_iter()
                .filter(|(v, _)| v.ends_with(&format!("|{id}")))
            {
                if let Some(mut f) = self.store.get::<FollowUp>(&f)? {
                    f.presence.clear();
                    f.tests.clear();
                    f.notes.clear();
                    w.replace(&f)?;
                }
            }
            for mut m in
                outbox::all(&self.store)?.into_iter().filter(|m| m.person_id.as_deref() == Some(id.as_str()))
            {
                m.to.clear();
                m.text = ERASED.into();
                w.put_local(&format!("outbox/{}", m.id), &m)?;
            }
            for mut m in crate::inbox::messages(&self.store, usize::MAX)?
                .into_iter()
                .filter(|m| m.person_id.as_deref() == Some(id.as_str()))
            {
                m.from.clear();
                m.text = ERASED.into();
                w.put_local(&format!("inbox/{}", m.id), &m)?;
            }
            audit::record(&mut w, &self.store, now, "outpost", "person.purge", &id, "")?;
            self.commit(w).await?;
            purged += 1;
        }
        if purged > 0 {
            tracing::info!(people = purged, "Personal data erased after release.");
            self.emit("person", "purge");
        }
        Ok(purged)
    }

    // ----- custom SMS -----

    /// Queues a message from staff to each of `people`: a template (in `lang`) or their own text, with
    /// placeholders filled per person. One atomic write; returns how many were queued.
    pub async fn send_custom(
        &self,
        people: &[Person],
        template: Option<&str>,
        text: &str,
        lang: crate::i18n::Lang,
        by: &str,
    ) -> AppResult<usize> {
        let body = match template.filter(|t| !t.is_empty()) {
            Some(key) => crate::templates::find(key)
                .ok_or_else(|| {
                    AppError::Invalid(vec![Problem::new(
                        "template",
                        "Mẫu tin không tồn tại.",
                        "No such template.",
                    )])
                })?
                .text(lang)
                .to_owned(),
            None => validate::clip(text, 1000),
        };
        if body.is_empty() {
            return Err(AppError::Invalid(vec![Problem::new(
                "text",
                "Cần nội dung tin nhắn.",
                "The message needs a text.",
            )]));
        }
        if people.is_empty() {
            return Err(AppError::Invalid(vec![Problem::new(
                "recipients",
                "Chưa chọn người nhận.",
                "No recipient was chosen.",
            )]));
        }
        let now = self.now();
        let mut w = WriteSet::new();
        for p in people {
            let text = crate::templates::render(&body, p, &self.config.public_url);
            outbox::enqueue(&mut w, &self.store, now, &p.phone, &text, "custom", Some(&p.id))?;
        }
        audit::record(
            &mut w,
            &self.store,
            now,
            by,
            "sms.custom",
            template.unwrap_or("text"),
            &people.len().to_string(),
        )?;
        self.commit(w).await?;
        self.outbox_wake.notify_one();
        self.emit("sms", "custom");
        Ok(people.len())
    }

    // ----- follow-up sheet -----

    pub fn follow_up(&self, person_id: &str, date: NaiveDate) -> AppResult<Option<FollowUp>> {
        Ok(self.store.get::<FollowUp>(&FollowUp::make_id(person_id, date))?)
    }

    pub async fn save_follow_up(
        &self,
        person_id: &str,
        date: NaiveDate,
        presence: &str,
        tests: &str,
        notes: &str,
        by: &str,
    ) -> AppResult<FollowUp> {
        self.person(person_id)?;
        let now = self.now();
        let f = FollowUp {
            person_id: person_id.to_owned(),
            date,
            presence: validate::clip(presence, 500),
            tests: validate::clip(tests, 500),
            notes: validate::clip(notes, 2000),
            updated_by: by.to_owned(),
            updated_at: now,
        };
        let mut w = WriteSet::new();
        w.put(&f)?;
        audit::record(&mut w, &self.store, now, by, "followup.save", person_id, &date.to_string())?;
        self.commit(w).await?;
        Ok(f)
    }
}

/// What one scheduler pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub reminders: usize,
    pub alerts: usize,
    pub escalations: usize,
    pub purged: usize,
    /// Presence events acted on (bands away, back, moved…).
    pub presence: usize,
    /// Spot checks sent or marked missed.
    pub spot_checks: usize,
}

/// Refuses what only a person still in quarantine may do (declare, be sampled, report a position).
pub(crate) fn require_watched(person: &Person) -> AppResult<()> {
    if person.status.is_watched() {
        Ok(())
    } else {
        Err(AppError::Conflict(Problem::new(
            "person",
            "Người này không còn trong diện cách ly.",
            "This person is no longer in quarantine.",
        )))
    }
}

/// The symptoms a form may name.
pub fn symptom_list() -> &'static [Symptom] {
    &Symptom::ALL
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock::ManualClock, config::Config};
    use chrono::TimeZone;

    #[tokio::test]
    async fn personal_data_is_erased_after_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &outpost_sync::StoreConfig::default()).expect("store");
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 1, 0, 0).single().expect("time");
        let clock = ManualClock::new(start);
        let app = Outpost::new(store.clone(), Config::from_toml("").expect("config"), clock.clone());
        let today = app.today();
        let input = PersonInput {
            full_name: "Phan Thị Thu".into(),
            phone: "0905111222".into(),
            id_number: "048199001122".into(),
            address: "12 Lê Lợi".into(),
            quarantine_start: today.to_string(),
            quarantine_end: (today + Duration::days(14)).to_string(),
            birth_year: "1990".into(),
            ..PersonInput::default()
        };
        let p = app.create_person(&input, "yta").await.expect("create");
        let token = p.declare_token.clone();
        app.send_custom(std::slice::from_ref(&p), None, "Chào {name}", crate::i18n::Lang::Vi, "yta")
            .await
            .expect("sms");
        app.declare(
            &p,
            &DeclarationInput {
                temperature: Some("37".into()),
                note: "đau lưng".into(),
                ..Default::default()
            },
            Channel::Personal,
            None,
        )
        .await
        .expect("declare");
        app.change_status(&p.id, PersonStatus::Released, "hết 14 ngày", "yta").await.expect("release");

        clock.advance(Duration::days(29));
        assert_eq!(app.purge(app.now()).await.expect("purge"), 0, "not yet");
        assert_eq!(app.person(&p.id).expect("person").full_name, "Phan Thị Thu");

        clock.advance(Duration::days(2));
        assert_eq!(app.tick().await.expect("tick").purged, 1);
        let erased = app.person(&p.id).expect("person");
        assert_eq!(
            (
                erased.full_name.as_str(),
                erased.phone.as_str(),
                erased.id_number.as_str(),
                erased.address.as_str(),
                erased.birth_year
            ),
            ("(đã xóa)", "", "", "", None)
        );
        assert_eq!(
            (erased.status, erased.quarantine_start, erased.category),
            (PersonStatus::Released, p.quarantine_start, p.category),
            "the counts stay"
        );
        assert!(erased.status_history.iter().all(|s| s.note.is_empty()));
        assert!(matches!(app.person_by_token(&token), Err(AppError::NotFound)), "the personal link is dead");
        assert!(app.store.find::<Person>("person_id_number", "048199001122").expect("find").is_empty());
        assert!(app.declarations_of(&p.id).expect("decls").iter().all(|d| d.note.is_empty()));
        let sms = outbox::all(&app.store).expect("outbox");
        assert!(sms
            .iter()
            .filter(|m| m.person_id.as_deref() == Some(p.id.as_str()))
            .all(|m| m.to.is_empty() && m.text == "(đã xóa)"));
        // The Automerge document keeps no copy in its history either.
        let mut doc = app.store.document(&format!("person/{}", p.id)).expect("doc").expect("some");
        assert_eq!(outpost_sync::doc::hydrate(&doc)["phone"], "");
        let saved = doc.save();
        assert!(
            !saved.windows(10).any(|w| w == b"0905111222"),
            "the old phone number is gone from the document"
        );
        assert!(crate::audit::recent(&app.store, 10)
            .expect("audit")
            .iter()
            .any(|e| e.action == "person.purge"));
        assert_eq!(app.purge(app.now()).await.expect("purge"), 0, "once");
    }
}
