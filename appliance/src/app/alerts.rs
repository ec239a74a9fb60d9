//! Alerts [M5]: their lifecycle (open → acknowledged → resolved, with who and when), the SMS to
//! the on-duty phones for a severe one, and escalation of those nobody acknowledges.
//!
//! Storms: open alerts of one kind raised within `alerts.group_minutes` of their group's first are
//! one [`AlertGroup`] on the pages, acknowledged at once ([`Outpost::acknowledge_group`]); alerts that
//! are not severe reach the on-duty phones as one digest SMS at most every `alerts.digest_minutes`
//! (box-local `alert-digest`: up to when the last one counted, and when it was sent).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use outpost_sync::{
    record::{Alert, AlertKind, AlertState, Person, Severity},
    WriteSet,
};
use serde::{Deserialize, Serialize};

use super::{outbox::Purpose, AppError, AppResult, Outpost};
use crate::base::{
    rules,
    validate::{self, unaccent, Problem},
};

/// Open alerts of one kind raised close together: shown, and acknowledged, as one.
#[derive(Debug, Clone)]
pub struct AlertGroup {
    pub kind: AlertKind,
    /// Newest first, each with the name of the person it is about.
    pub alerts: Vec<(Alert, String)>,
}

impl AlertGroup {
    /// When its first and last alerts were raised.
    pub fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let times = self.alerts.iter().map(|(a, _)| a.raised_at);
        (times.clone().min().unwrap_or_default(), times.max().unwrap_or_default())
    }

    pub fn severity(&self) -> Severity {
        self.alerts.iter().map(|(a, _)| a.severity).max().unwrap_or(Severity::Warning)
    }
}

/// Groups alerts: of one kind, each raised within `window` of its group's first. Newest group first.
pub fn group_alerts(mut list: Vec<(Alert, String)>, window: Duration) -> Vec<AlertGroup> {
    list.sort_by_key(|(a, _)| a.raised_at);
    let mut groups: Vec<AlertGroup> = Vec::new();
    let mut current: HashMap<AlertKind, usize> = HashMap::new();
    for (alert, name) in list {
        match current.get(&alert.kind) {
            Some(&i) if alert.raised_at - groups[i].alerts[0].0.raised_at <= window => {
                groups[i].alerts.push((alert, name));
            }
            _ => {
                current.insert(alert.kind, groups.len());
                groups.push(AlertGroup { kind: alert.kind, alerts: vec![(alert, name)] });
            }
        }
    }
    for g in &mut groups {
        g.alerts.reverse();
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.span().1));
    groups
}

/// Open alerts of one kind about one person (three missed rounds, two fevers): one row on the pages
/// with how many, from when to when, and one acknowledge for all. Each row stands where its first
/// alert stands in `list` (which comes in triage order); other alerts are rows of their own.
pub fn per_person(list: Vec<(Alert, String)>) -> Vec<Vec<(Alert, String)>> {
    let mut rows: Vec<Vec<(Alert, String)>> = Vec::new();
    let mut at: HashMap<(String, AlertKind), usize> = HashMap::new();
    for (alert, name) in list {
        if alert.person_id.is_empty() || alert.state != AlertState::Open {
            rows.push(vec![(alert, name)]);
            continue;
        }
        match at.entry((alert.person_id.clone(), alert.kind)) {
            std::collections::hash_map::Entry::Occupied(o) => rows[*o.get()].push((alert, name)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(rows.len());
                rows.push(vec![(alert, name)]);
            }
        }
    }
    rows
}

/// An alert's detail as an SMS says it: the Vietnamese part, without diacritics.
fn sms_detail(detail: &str) -> String {
    unaccent(&crate::base::i18n::in_lang(crate::base::i18n::Lang::Vi, detail)).replace("°C", "do C")
}

/// Resolves `alert` as the box does on its own (a band back, a scanner back, a declaration after a
/// missed round): by `outpost`, at `at`, with `note` saying why.
pub fn resolve_by_box(alert: &mut Alert, at: DateTime<Utc>, note: String) {
    alert.state = AlertState::Resolved;
    alert.resolved_by = Some("outpost".into());
    alert.resolved_at = Some(at);
    alert.resolution_note = note;
}

/// Up to when the last digest SMS counted alerts, and when it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Digest {
    through: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

const DIGEST: &str = "alert-digest";

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

    /// Acknowledges the open alerts of `kind` raised from `from` to `to` (a group on the pages);
    /// returns how many.
    pub async fn acknowledge_group(
        &self,
        kind: AlertKind,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        by: &str,
    ) -> AppResult<usize> {
        let mut alerts = self.open_alerts_raised(|t| t >= from && t <= to)?;
        alerts.retain(|a| a.kind == kind);
        self.acknowledge_all(alerts, by).await
    }

    /// The open alerts raised at a time `when` accepts, read through the state index (its values
    /// carry the raising time), so that only those are loaded.
    fn open_alerts_raised(&self, when: impl Fn(DateTime<Utc>) -> bool) -> AppResult<Vec<Alert>> {
        let mut alerts = Vec::new();
        for (key, id) in self.store.index_scan(Alert::BY_STATE, "open|")? {
            let at = key.split_once('|').and_then(|(_, t)| DateTime::parse_from_rfc3339(t).ok());
            if at.is_some_and(|t| when(t.with_timezone(&Utc))) {
                alerts.extend(self.store.get::<Alert>(&id)?);
            }
        }
        Ok(alerts)
    }

    /// Acknowledges the alerts `ids` that are open (at most 2,000); returns how many.
    pub async fn acknowledge_ids(&self, ids: &[String], by: &str) -> AppResult<usize> {
        if ids.len() > 2_000 {
            return Err(AppError::invalid(
                "ids",
                "Tối đa 2.000 cảnh báo một lần.",
                "At most 2,000 alerts at once.",
            ));
        }
        let mut alerts = Vec::new();
        for id in ids {
            alerts.extend(self.store.get::<Alert>(id)?);
        }
        self.acknowledge_all(alerts, by).await
    }

    /// Acknowledges those of `alerts` still open, in one write with one audit entry.
    async fn acknowledge_all(&self, alerts: Vec<Alert>, by: &str) -> AppResult<usize> {
        let now = self.now();
        let mut w = WriteSet::new();
        let mut done = Vec::new();
        for mut alert in alerts.into_iter().filter(|a| a.state == AlertState::Open) {
            alert.state = AlertState::Acknowledged;
            alert.acknowledged_by = Some(by.to_owned());
            alert.acknowledged_at = Some(now);
            w.put(&alert)?;
            done.push(alert.id);
        }
        let Some(first) = done.first() else { return Ok(0) };
        self.audit(&mut w, by, "alert.acknowledge_group", first, &format!("{} alerts", done.len()))?;
        self.commit(w).await?;
        for id in &done {
            self.emit("alert", id);
        }
        Ok(done.len())
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

    /// Stages the resolution of `person`'s open missed-declaration alerts: they declared since.
    /// Returns their ids.
    pub(super) fn stage_declared_since(
        &self,
        w: &mut WriteSet,
        person: &Person,
        at: DateTime<Utc>,
    ) -> AppResult<Vec<String>> {
        let local = self.schedule().local(at).format("%H:%M %d/%m");
        let mut resolved = Vec::new();
        for mut alert in self.store.find_prefix::<Alert>(Alert::BY_PERSON, &format!("{}|", person.id))? {
            if alert.kind != AlertKind::MissingDeclaration || alert.state == AlertState::Resolved {
                continue;
            }
            resolve_by_box(&mut alert, at, format!("Đã khai báo lúc {local} / declared since"));
            w.put(&alert)?;
            resolved.push(alert.id);
        }
        Ok(resolved)
    }

    /// A severe alert goes to the on-duty phones at once, in the write that raises it.
    pub(super) fn notify_on_duty(&self, w: &mut WriteSet, alert: &Alert, person: &Person) -> AppResult<()> {
        if alert.severity != Severity::Severe {
            return Ok(());
        }
        let text = format!(
            "Outpost: CANH BAO NGHIEM TRONG - phong {}: {}. {}/alerts",
            unaccent(&person.room),
            sms_detail(&alert.detail),
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
                // An alert about a scanner has no person, and so no room.
                let room = self
                    .person(&first.person_id)
                    .map(|p| format!("phong {}: ", unaccent(&p.room)))
                    .unwrap_or_default();
                format!(
                    "Outpost: CANH BAO CHUA XU LY ({}) - {room}{}. {url}/alerts",
                    first.escalations,
                    sms_detail(&first.detail),
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

    /// One SMS to the on-duty phones for the open alerts that are not severe raised since the last
    /// one, by kind, if the last was sent at least `alerts.digest_minutes` ago. Returns how many
    /// alerts it counted.
    pub(super) async fn alert_digest(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let (Some(every), true) = (self.config.alerts.digest_every, self.has_on_duty_phones()) else {
            return Ok(0);
        };
        let last = self.store.get_local::<Digest>(DIGEST)?;
        if last.as_ref().and_then(|d| d.sent_at).is_some_and(|sent| now - sent < every) {
            return Ok(0);
        }
        // The first time, only what was raised in the last period.
        let since = last.map_or(now - every, |d| d.through);
        let mut by_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
        for a in self.open_alerts_raised(|t| t > since && t <= now)? {
            if a.severity != Severity::Severe {
                *by_kind.entry(a.kind.vi()).or_default() += 1;
            }
        }
        let n: usize = by_kind.values().sum();
        if n == 0 {
            return Ok(0);
        }
        let kinds: Vec<String> = by_kind.iter().map(|(k, c)| format!("{c} {}", unaccent(k))).collect();
        let text = format!(
            "Outpost: {n} canh bao moi ({}-{}): {}. {}/alerts",
            self.schedule().local(since).format("%H:%M"),
            self.schedule().local(now).format("%H:%M"),
            kinds.join(", "),
            self.public_url()
        );
        let mut w = WriteSet::new();
        self.queue_on_duty(&mut w, &text)?;
        w.put_local(DIGEST, &Digest { through: now, sent_at: Some(now) })?;
        self.commit(w).await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn alert(kind: AlertKind, minute: i64) -> (Alert, String) {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).single().expect("t") + Duration::minutes(minute);
        let id = format!("{}-{minute}", kind.as_str());
        (Alert::new(id, kind, Severity::Warning, "p", "s", String::new(), at), String::new())
    }

    #[test]
    fn alerts_of_one_kind_close_together_are_one_group() {
        let list = vec![
            alert(AlertKind::MissingDeclaration, 0),
            alert(AlertKind::BandBatteryLow, 1),
            alert(AlertKind::MissingDeclaration, 2),
            alert(AlertKind::MissingDeclaration, 5),
            // Six minutes after the group's first: a group of its own.
            alert(AlertKind::MissingDeclaration, 6),
        ];
        let groups = group_alerts(list, Duration::minutes(5));
        let shape: Vec<(AlertKind, Vec<String>)> =
            groups.iter().map(|g| (g.kind, g.alerts.iter().map(|(a, _)| a.id.clone()).collect())).collect();
        assert_eq!(
            shape,
            vec![
                (AlertKind::MissingDeclaration, vec!["missing_declaration-6".into()]),
                (
                    AlertKind::MissingDeclaration,
                    vec![
                        "missing_declaration-5".into(),
                        "missing_declaration-2".into(),
                        "missing_declaration-0".into()
                    ]
                ),
                (AlertKind::BandBatteryLow, vec!["band_battery_low-1".into()]),
            ],
            "newest group first, newest first within it"
        );
    }
}
