//! Presence [M3] as replicated facts: what the presence engine decides about a band worn by a person
//! becomes that person's presence intervals for the day ([`PresenceDay`]) and band alerts (away,
//! strap opened, battery low) through the usual alert lifecycle; a band seen again resolves its away
//! alert. The engine itself, and the thread that owns it, are in `crate::services::presence`; it is
//! the only caller of these writes, so they never race each other.
//!
//! Keys (box-local): `band-alert/<kind>/<band>` → the open alert of that kind for that band, so a
//! cause raises one alert at a time, also across restarts (when the engine reports a strap still
//! open as new).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use outpost_ble::presence::{PresenceEvent, State};
use outpost_sync::{
    record::{Alert, AlertKind, AlertState, Person, PresenceDay, PresenceInterval, Severity},
    WriteSet,
};

use super::{AppResult, Outpost};

/// One event of the engine about a band worn by a person, with where the engine placed the band.
#[derive(Debug, Clone)]
pub struct PresenceFact {
    pub person_id: String,
    pub event: PresenceEvent,
    /// The nearest scanner, as the engine knows it now.
    pub place: Option<String>,
}

/// The band an event is about.
pub fn event_band(e: &PresenceEvent) -> &str {
    match e {
        PresenceEvent::State { band, .. }
        | PresenceEvent::Moved { band, .. }
        | PresenceEvent::StrapOpened { band, .. }
        | PresenceEvent::StrapClosed { band, .. }
        | PresenceEvent::BatteryLow { band, .. } => band,
    }
}

/// A presence state as the records and the pages name it.
pub fn state_str(s: State) -> &'static str {
    match s {
        State::Present => "present",
        State::Unseen => "unseen",
        State::Away => "away",
        State::NotCovered => "not_covered",
    }
}

/// The box-local key naming the open alert of `kind` for `band`.
fn marker(kind: AlertKind, band: &str) -> String {
    format!("band-alert/{}/{band}", kind.as_str())
}

/// Ends the open interval of `day` at `at` and opens one in `state` at `place`, unless that is what is
/// already open. Returns whether anything changed.
pub fn record_interval(day: &mut PresenceDay, at: DateTime<Utc>, state: &str, place: &str) -> bool {
    if let Some((_, last)) = day.intervals.iter_mut().next_back() {
        if last.to.is_none() {
            if last.state == state && last.place == place {
                return false;
            }
            last.to = Some(at);
        }
    }
    let key = outpost_sync::record::time_key(&day.intervals, at);
    day.intervals
        .insert(key, PresenceInterval { state: state.to_owned(), place: place.to_owned(), to: None });
    true
}

/// The state an event puts the band in (if it is a move at all), and when.
fn moved_to(event: &PresenceEvent) -> (Option<State>, DateTime<Utc>) {
    match event {
        PresenceEvent::State { to, at, .. } => (Some(*to), *at),
        PresenceEvent::Moved { at, .. } => (Some(State::Present), *at),
        PresenceEvent::StrapOpened { at, .. }
        | PresenceEvent::StrapClosed { at, .. }
        | PresenceEvent::BatteryLow { at, .. } => (None, *at),
    }
}

/// The alert an event raises, if any: kind, severity and detail.
fn alert_for(
    event: &PresenceEvent,
    band: &str,
    place: Option<&str>,
) -> Option<(AlertKind, Severity, String)> {
    match event {
        PresenceEvent::State { to: State::Away, .. } => Some((
            AlertKind::BandAway,
            Severity::Severe,
            format!(
                "vòng {band} không được thấy; lần cuối: {0} / band {band} not seen; last at {0}",
                place.unwrap_or("—")
            ),
        )),
        PresenceEvent::StrapOpened { .. } => Some((
            AlertKind::StrapOpened,
            Severity::Severe,
            format!("vòng {band}: dây đeo bị mở / band {band}: strap opened"),
        )),
        PresenceEvent::BatteryLow { percent, .. } => Some((
            AlertKind::BandBatteryLow,
            Severity::Warning,
            format!("vòng {band}: pin {percent}% / band {band}: battery {percent}%"),
        )),
        _ => None,
    }
}

/// What one batch of facts writes, gathered before the write.
#[derive(Default)]
struct Staged {
    days: BTreeMap<String, PresenceDay>,
    alerts: Vec<Alert>,
    sms: bool,
}

impl Outpost {
    /// A person's presence intervals on the site's day `date`, if any were recorded.
    pub fn presence_day(&self, person_id: &str, date: NaiveDate) -> AppResult<Option<PresenceDay>> {
        Ok(self.store.get::<PresenceDay>(&PresenceDay::make_id(person_id, date))?)
    }

    /// Where `person_id`'s band was last placed on `date` (present or not covered), if anywhere.
    pub fn last_place(&self, person_id: &str, date: NaiveDate) -> AppResult<Option<String>> {
        Ok(self.presence_day(person_id, date)?.and_then(|day| {
            day.intervals
                .values()
                .next_back()
                .filter(|i| i.state == "present" || i.state == "not_covered")
                .map(|i| i.place.clone())
                .filter(|p| !p.is_empty())
        }))
    }

    fn open_band_alert(&self, kind: AlertKind, band: &str) -> AppResult<Option<Alert>> {
        let Some(id) = self.store.get_local::<String>(&marker(kind, band))? else { return Ok(None) };
        Ok(self.store.get::<Alert>(&id)?.filter(|a| a.state != AlertState::Resolved))
    }

    /// Records the engine's events about bands worn by people: their days' intervals, the alerts
    /// they raise or resolve, in one write. Off the async runtime (the presence thread).
    pub fn record_presence(&self, facts: Vec<PresenceFact>) -> AppResult<()> {
        let mut w = WriteSet::new();
        let mut staged = Staged::default();
        for fact in facts {
            self.stage_fact(&mut w, &mut staged, fact)?;
        }
        for day in staged.days.values() {
            w.put(day)?;
        }
        if w.is_empty() {
            return Ok(());
        }
        self.commit_blocking(w)?;
        for a in &staged.alerts {
            self.emit("alert", &a.id);
        }
        for id in staged.days.keys() {
            self.emit("presence", id);
        }
        if staged.sms {
            self.wake_outbox();
        }
        Ok(())
    }

    fn stage_fact(&self, w: &mut WriteSet, staged: &mut Staged, fact: PresenceFact) -> AppResult<()> {
        let PresenceFact { person_id, event, place } = fact;
        let band = event_band(&event).to_owned();
        let (state, at) = moved_to(&event);
        if let Some(state) = state {
            let date = self.schedule().local(at).date();
            let id = PresenceDay::make_id(&person_id, date);
            if !staged.days.contains_key(&id) {
                let day = self.store.get::<PresenceDay>(&id)?.unwrap_or_else(|| PresenceDay {
                    person_id: person_id.clone(),
                    date,
                    band: band.clone(),
                    intervals: BTreeMap::new(),
                });
                staged.days.insert(id.clone(), day);
            }
            if let Some(day) = staged.days.get_mut(&id) {
                // Not covered: where it was when its scanner went down.
                let place = if matches!(state, State::Present | State::NotCovered) {
                    place.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                record_interval(day, at, state_str(state), &place);
            }
        }
        if let PresenceEvent::State { from: State::Away, to: State::Present, .. } = &event {
            self.stage_back(w, staged, &band, at, place.as_deref())?;
            return Ok(());
        }
        let Some((kind, severity, detail)) = alert_for(&event, &band, place.as_deref()) else {
            return Ok(());
        };
        if self.open_band_alert(kind, &band)?.is_some()
            || staged.alerts.iter().any(|a| a.kind == kind && a.subject == band)
        {
            return Ok(());
        }
        let id = format!("{}-{}-{}", kind.as_str(), band.replace(':', ""), at.timestamp());
        let alert = Alert::new(id, kind, severity, &person_id, &band, detail, at);
        w.put(&alert)?;
        w.put_local(&marker(kind, &band), &alert.id)?;
        if let Some(person) = self.store.get::<Person>(&person_id)? {
            staged.sms |= severity == Severity::Severe && self.has_on_duty_phones();
            self.notify_on_duty(w, &alert, &person)?;
        }
        staged.alerts.push(alert);
        Ok(())
    }

    /// A band seen again: its open away alert is resolved by the box.
    fn stage_back(
        &self,
        w: &mut WriteSet,
        staged: &mut Staged,
        band: &str,
        at: DateTime<Utc>,
        place: Option<&str>,
    ) -> AppResult<()> {
        let Some(mut alert) = self.open_band_alert(AlertKind::BandAway, band)? else { return Ok(()) };
        let local = self.schedule().local(at).format("%H:%M");
        let note =
            format!("Vòng được thấy lại lúc {local} ({}) / band seen again", place.unwrap_or_default());
        super::alerts::resolve_by_box(&mut alert, at, note);
        w.put(&alert)?;
        w.delete_local(&marker(AlertKind::BandAway, band));
        staged.alerts.push(alert);
        Ok(())
    }

    /// Closes the open interval of a band no longer worn.
    pub fn close_presence(&self, person_id: &str, band: &str, at: DateTime<Utc>) -> AppResult<()> {
        let date = self.schedule().local(at).date();
        let Some(mut day) = self.presence_day(person_id, date)? else { return Ok(()) };
        if day.band != band {
            return Ok(());
        }
        if let Some((_, last)) = day.intervals.iter_mut().next_back() {
            if last.to.is_none() {
                last.to = Some(at);
                let mut w = WriteSet::new();
                w.put(&day)?;
                self.commit_blocking(w)?;
            }
        }
        Ok(())
    }

    /// At the first pass of a new day, closes yesterday's open intervals of the bands `worn`
    /// (band → person) at midnight and opens today's.
    pub fn carry_presence_over(&self, worn: &HashMap<String, String>, today: NaiveDate) -> AppResult<()> {
        let Some(yesterday) = today.pred_opt() else { return Ok(()) };
        let midnight = self.schedule().utc(today.and_hms_opt(0, 0, 0).unwrap_or_default());
        let mut w = WriteSet::new();
        for (band, person_id) in worn {
            let Some(mut day) = self.presence_day(person_id, yesterday)? else { continue };
            let Some((_, last)) = day.intervals.iter_mut().next_back() else { continue };
            if last.to.is_some() {
                continue;
            }
            last.to = Some(midnight);
            let (state, place) = (last.state.clone(), last.place.clone());
            w.put(&day)?;
            let mut next = PresenceDay {
                person_id: person_id.clone(),
                date: today,
                band: band.clone(),
                intervals: BTreeMap::new(),
            };
            record_interval(&mut next, midnight, &state, &place);
            w.put(&next)?;
        }
        if !w.is_empty() {
            self.commit_blocking(w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn intervals_close_and_open() {
        let t =
            |m: i64| Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("t") + Duration::minutes(m);
        let mut day = PresenceDay {
            person_id: "p".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 21).expect("d"),
            band: "B".into(),
            intervals: BTreeMap::new(),
        };
        assert!(record_interval(&mut day, t(0), "present", "A12"));
        assert!(!record_interval(&mut day, t(1), "present", "A12"), "nothing changed");
        assert!(record_interval(&mut day, t(5), "present", "hanh_lang"));
        assert!(record_interval(&mut day, t(20), "away", ""));
        let v: Vec<_> = day.intervals.values().map(|i| (i.state.as_str(), i.to)).collect();
        assert_eq!(v, vec![("present", Some(t(5))), ("present", Some(t(20))), ("away", None)]);
    }
}
