//! The alerting and schedule rules, pure: values and a time in, decisions out. The caller reads the store,
//! asks these functions what is due, and writes the result; nothing here does IO or reads a clock.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, NaiveTime, TimeZone, Utc};
use outpost_sync::record::{AlertKind, Person, Severity, Symptom};

/// When declarations are due and how long their grace periods are.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub times: Vec<NaiveTime>,
    pub offset: FixedOffset,
    pub open_before: Duration,
    pub reminder_after: Duration,
    pub alert_after_reminder: Duration,
}

/// Where one person stands for one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Declared.
    Declared,
    /// Not declared; the slot is open and the grace period runs.
    Due,
    /// Not declared past the grace period: a reminder is due or sent.
    Late,
    /// Not declared past both grace periods: an alert is due or raised.
    Missing,
}

/// What the scheduler must do for one person and one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotAction {
    QueueReminder,
    RaiseMissingAlert,
}

impl Schedule {
    /// The site-local time of `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.offset).naive_local()
    }

    /// The UTC instant of site-local `slot`.
    pub fn utc(&self, slot: NaiveDateTime) -> DateTime<Utc> {
        self.offset
            .from_local_datetime(&slot)
            .single()
            .map_or_else(|| slot.and_utc(), |t| t.with_timezone(&Utc))
    }

    /// The slot a declaration made at `at` answers: the latest slot that has opened by then.
    pub fn slot_for(&self, at: DateTime<Utc>) -> NaiveDateTime {
        let opened = self.local(at) + self.open_before;
        let mut day = opened.date();
        loop {
            if let Some(t) = self.times.iter().rev().find(|t| day.and_time(**t) <= opened) {
                return day.and_time(*t);
            }
            day = day.pred_opt().unwrap_or(day);
        }
    }

    /// Whether a declaration for `slot` made at `at` is on time.
    pub fn on_time(&self, slot: NaiveDateTime, at: DateTime<Utc>) -> bool {
        at <= self.utc(slot) + self.reminder_after
    }

    /// The slots whose reminder time has passed in the 24 hours before `now`, oldest first: the ones the
    /// scheduler still has to settle.
    pub fn settling_slots(&self, now: DateTime<Utc>) -> Vec<NaiveDateTime> {
        let local_now = self.local(now);
        let mut out = Vec::new();
        for day in [local_now.date().pred_opt(), Some(local_now.date())].into_iter().flatten() {
            for t in &self.times {
                let slot = day.and_time(*t);
                let due = self.utc(slot) + self.reminder_after;
                if due <= now && now - self.utc(slot) < Duration::hours(24) {
                    out.push(slot);
                }
            }
        }
        out
    }

    /// The state of an undeclared slot at `now`.
    pub fn state(&self, slot: NaiveDateTime, declared: bool, now: DateTime<Utc>) -> SlotState {
        let start = self.utc(slot);
        if declared {
            SlotState::Declared
        } else if now >= start + self.reminder_after + self.alert_after_reminder {
            SlotState::Missing
        } else if now >= start + self.reminder_after {
            SlotState::Late
        } else {
            SlotState::Due
        }
    }

    /// What is still to do for one person and slot, given what was already done. A reminder and an alert
    /// are each done at most once. A reminder belongs to its round, which ends when the alert is due
    /// ([`Schedule::round_end`]): a box that was off through the reminder time sends it late within
    /// the round, and not at all after it (the alert then says the declaration is missing).
    pub fn actions(
        &self,
        slot: NaiveDateTime,
        declared: bool,
        reminded: bool,
        alerted: bool,
        now: DateTime<Utc>,
    ) -> Vec<SlotAction> {
        let mut out = Vec::new();
        match self.state(slot, declared, now) {
            SlotState::Declared | SlotState::Due => {}
            SlotState::Late => {
                if !reminded {
                    out.push(SlotAction::QueueReminder);
                }
            }
            SlotState::Missing => {
                if !alerted {
                    out.push(SlotAction::RaiseMissingAlert);
                }
            }
        }
        out
    }

    /// The end of `slot`'s round: a reminder not sent by then is not sent (the slot's declaration is
    /// missing and its alert due).
    pub fn round_end(&self, slot: NaiveDateTime) -> DateTime<Utc> {
        self.utc(slot) + self.reminder_after + self.alert_after_reminder
    }

    /// Whether `person` owes a declaration for `slot`: watched, in their quarantine dates, and registered
    /// before the slot.
    pub fn owes(&self, person: &Person, slot: NaiveDateTime) -> bool {
        person.status.is_watched()
            && person.quarantine_start <= slot.date()
            && slot.date() <= person.quarantine_end
            && person.created_at <= self.utc(slot)
    }
}

/// Thresholds for abnormal declarations.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub fever_celsius: f64,
    pub spo2_below: u8,
}

/// What is abnormal about one declaration: the most urgent kind first, and a detail text for staff.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: AlertKind,
    pub severity: Severity,
    pub detail: String,
}

/// Evaluates a declaration. `None` when nothing is abnormal.
pub fn evaluate(temperature: f64, spo2: Option<u8>, symptoms: &[Symptom], t: Thresholds) -> Option<Finding> {
    let mut reasons = Vec::new();
    let mut first: Option<(AlertKind, Severity)> = None;
    let mut note = |kind, severity, text: String| {
        reasons.push(text);
        match first {
            Some((_, s)) if s >= severity => {}
            _ => first = Some((kind, severity)),
        }
    };
    if let Some(s) = spo2.filter(|s| *s < t.spo2_below) {
        note(AlertKind::LowSpo2, Severity::Severe, format!("SpO2 {s}%"));
    }
    if symptoms.contains(&Symptom::ShortnessOfBreath) {
        note(AlertKind::ShortnessOfBreath, Severity::Severe, "khó thở / shortness of breath".into());
    }
    if temperature >= t.fever_celsius {
        let severity = if temperature >= 39.5 { Severity::Severe } else { Severity::Warning };
        note(AlertKind::Fever, severity, format!("{temperature:.1} °C"));
    }
    first.map(|(kind, severity)| Finding { kind, severity, detail: reasons.join(", ") })
}

/// Whether an open alert raised at `raised_at`, last escalated at `last`, escalates at `now`.
pub fn escalation_due(
    raised_at: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    every: Duration,
    now: DateTime<Utc>,
) -> bool {
    now >= last.unwrap_or(raised_at) + every
}

/// The next retry delay of an outbox message after `attempts` failures: doubling, capped.
pub fn retry_delay(attempts: u32, first: Duration, max: Duration) -> Duration {
    let factor = 1i32.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
    (first * factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn schedule() -> Schedule {
        Schedule {
            times: ["08:00", "16:00", "21:00"]
                .iter()
                .map(|t| NaiveTime::parse_from_str(t, "%H:%M").expect("time"))
                .collect(),
            offset: FixedOffset::east_opt(7 * 3600).expect("offset"),
            open_before: Duration::minutes(60),
            reminder_after: Duration::minutes(30),
            alert_after_reminder: Duration::minutes(60),
        }
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("datetime")
    }

    fn at(s: &str) -> DateTime<Utc> {
        schedule().utc(local(s))
    }

    #[test]
    fn slot_for_declaration_times() {
        let s = schedule();
        let check = |when: &str, slot: &str| assert_eq!(s.slot_for(at(when)), local(slot), "{when}");
        check("2021-09-01 07:00", "2021-09-01 08:00");
        check("2021-09-01 06:59", "2021-08-31 21:00");
        check("2021-09-01 14:59", "2021-09-01 08:00");
        check("2021-09-01 15:00", "2021-09-01 16:00");
        check("2021-09-01 23:50", "2021-09-01 21:00");
        check("2021-09-02 00:10", "2021-09-01 21:00");
    }

    #[test]
    fn reminder_then_alert_once_each() {
        let s = schedule();
        let slot = local("2021-09-01 08:00");
        assert!(s.actions(slot, false, false, false, at("2021-09-01 08:29")).is_empty());
        assert_eq!(
            s.actions(slot, false, false, false, at("2021-09-01 08:30")),
            vec![SlotAction::QueueReminder]
        );
        assert!(s.actions(slot, false, true, false, at("2021-09-01 09:29")).is_empty());
        assert_eq!(
            s.actions(slot, false, true, false, at("2021-09-01 09:30")),
            vec![SlotAction::RaiseMissingAlert]
        );
        assert!(s.actions(slot, false, true, true, at("2021-09-01 12:00")).is_empty());
        assert!(s.actions(slot, true, false, false, at("2021-09-01 12:00")).is_empty());
        assert!(s.on_time(slot, at("2021-09-01 08:30")));
        assert!(!s.on_time(slot, at("2021-09-01 08:31")));
    }

    #[test]
    fn settling_slots_cover_the_last_day() {
        let s = schedule();
        let slots = s.settling_slots(at("2021-09-02 08:30"));
        assert_eq!(
            slots,
            vec![local("2021-09-01 16:00"), local("2021-09-01 21:00"), local("2021-09-02 08:00")]
        );
        assert!(s.settling_slots(at("2021-09-02 08:29")).len() == 2);
        let _ = NaiveDate::from_ymd_opt(2021, 9, 1);
    }

    #[test]
    fn abnormal_declarations() {
        let t = Thresholds { fever_celsius: 38.0, spo2_below: 94 };
        assert_eq!(evaluate(37.9, Some(94), &[Symptom::Cough], t), None);
        let f = evaluate(38.0, None, &[], t).expect("fever");
        assert_eq!((f.kind, f.severity), (AlertKind::Fever, Severity::Warning));
        let f = evaluate(38.5, Some(92), &[], t).expect("spo2");
        assert_eq!((f.kind, f.severity), (AlertKind::LowSpo2, Severity::Severe));
        assert!(f.detail.contains("38.5"));
        let f = evaluate(36.5, None, &[Symptom::ShortnessOfBreath], t).expect("dyspnoea");
        assert_eq!(f.kind, AlertKind::ShortnessOfBreath);
    }

    #[test]
    fn escalation_and_retry() {
        let t0 = at("2021-09-01 08:00");
        let every = Duration::minutes(15);
        assert!(!escalation_due(t0, None, every, t0 + Duration::minutes(14)));
        assert!(escalation_due(t0, None, every, t0 + Duration::minutes(15)));
        assert!(!escalation_due(t0, Some(t0 + every), every, t0 + Duration::minutes(29)));
        let (first, max) = (Duration::seconds(30), Duration::seconds(1800));
        assert_eq!(retry_delay(1, first, max), Duration::seconds(30));
        assert_eq!(retry_delay(3, first, max), Duration::seconds(120));
        assert_eq!(retry_delay(30, first, max), max);
    }
}
