//! Location [M8]: positions from the person's own page (every 5 minutes while it is open) or from an
//! app over MQTT, judged against their geofence — their home for home quarantine, else the site's.
//!
//! A position clearly outside (farther than the radius plus its own accuracy) raises a severe alert at
//! once, one per absence: a person outside again before anyone closed the last one does not raise a
//! second. Raw positions stay on the box in a time series, erased after `privacy.position_days`; what
//! is replicated is the day's summary per person (`LocationDay`), written on the day's first report
//! and on every crossing, never on each position.

use chrono::{DateTime, Utc};
use outpost_sync::{
    record::{Alert, AlertKind, AlertState, Geofence, LocationDay, Person, Severity},
    series::Sample,
    WriteSet,
};
use serde::{Deserialize, Serialize};

use super::{people::require_watched, AppError, AppResult, Outpost};
use crate::base::validate::{self, Problem};

/// Positions less precise than this are kept but not judged (a phone's first fix can be kilometres off).
pub const MAX_JUDGED_ACCURACY_M: f64 = 500.0;

/// A position as a phone or an app reports it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    /// The fix's accuracy radius in metres.
    pub accuracy: f64,
}

impl Position {
    /// Refuses coordinates and accuracies no phone can report.
    pub fn check(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        if !(self.latitude.is_finite() && (-90.0..=90.0).contains(&self.latitude)) {
            problems.push(Problem::new(
                "latitude",
                "Vĩ độ phải từ -90 đến 90.",
                "The latitude must be -90 to 90.",
            ));
        }
        if !(self.longitude.is_finite() && (-180.0..=180.0).contains(&self.longitude)) {
            problems.push(Problem::new(
                "longitude",
                "Kinh độ phải từ -180 đến 180.",
                "The longitude must be -180 to 180.",
            ));
        }
        if !(self.accuracy.is_finite() && self.accuracy > 0.0 && self.accuracy <= 100_000.0) {
            problems.push(Problem::new(
                "accuracy",
                "Độ chính xác phải lớn hơn 0 và không quá 100 km.",
                "The accuracy must be above 0 and at most 100 km.",
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The distance between two points on the Earth in metres (haversine; a sphere is close enough for
/// geofences of tens of metres or more).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_M: f64 = 6_371_000.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_M * a.sqrt().atan2((1.0 - a).sqrt())
}

/// Where a position stands against a geofence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Inside,
    /// Farther than the radius plus the fix's accuracy: certainly out.
    Outside,
    /// Too coarse, or straddling the edge: kept, not judged.
    Unsure,
}

/// Judges `p` against `fence`.
pub fn judge(fence: &Geofence, p: &Position) -> Verdict {
    let d = distance_m(fence.latitude, fence.longitude, p.latitude, p.longitude);
    if p.accuracy > MAX_JUDGED_ACCURACY_M {
        Verdict::Unsure
    } else if d > f64::from(fence.radius_m) + p.accuracy {
        Verdict::Outside
    } else if d <= f64::from(fence.radius_m) {
        Verdict::Inside
    } else {
        Verdict::Unsure
    }
}

/// What the box keeps per person between positions (box-local).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    last: Option<(DateTime<Utc>, Position)>,
    inside: Option<bool>,
    /// The alert raised for the current absence, if any.
    alert: Option<String>,
}

/// The time series of raw positions (box-local, pruned by age).
const SERIES: &str = "positions";

fn state_key(person_id: &str) -> String {
    format!("geo-state/{person_id}")
}

/// The last position: when, where, and inside or not (`None`: not judged).
pub type LastPosition = (DateTime<Utc>, Position, Option<bool>);

/// What a reported position did.
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    pub verdict: Verdict,
    /// The alert raised by this position.
    pub alert: Option<String>,
}

impl Outpost {
    /// The geofence a person's positions are judged against: their home's, else the site's.
    pub fn geofence_of(&self, person: &Person) -> Option<Geofence> {
        person.home_geofence.clone().or_else(|| self.config.site.geofence.clone())
    }

    /// Sets (or with `None` removes) a person's home geofence, for home quarantine.
    pub async fn set_home_geofence(
        &self,
        person_id: &str,
        fence: Option<Geofence>,
        by: &str,
    ) -> AppResult<Person> {
        if let Some(f) = &fence {
            let p = Position { latitude: f.latitude, longitude: f.longitude, accuracy: 1.0 };
            p.check().map_err(AppError::Invalid)?;
            if !(20..=50_000).contains(&f.radius_m) {
                return Err(AppError::invalid(
                    "radius_m",
                    "Bán kính phải từ 20 m đến 50 km.",
                    "The radius must be 20 m to 50 km.",
                ));
            }
        }
        let mut person = self.person(person_id)?;
        person.home_geofence = fence.map(|f| Geofence { address: validate::clip(&f.address, 200), ..f });
        person.updated_at = self.now();
        let mut w = WriteSet::new();
        w.put(&person)?;
        self.audit(&mut w, by, "person.geofence", person_id, "")?;
        self.commit(w).await?;
        Ok(person)
    }

    /// Takes a position of `person` in: keeps it, judges it, and raises the alert at once when it is
    /// clearly outside.
    pub async fn report_position(&self, person: &Person, p: Position) -> AppResult<Reported> {
        p.check().map_err(AppError::Invalid)?;
        require_watched(person)?;
        let now = self.now();
        let value = serde_json::to_vec(&p).unwrap_or_default();
        self.store.series(SERIES)?.insert(&[Sample {
            at_ms: now.timestamp_millis(),
            name: person.id.clone(),
            value,
        }])?;
        let Some(fence) = self.geofence_of(person) else {
            return Ok(Reported { verdict: Verdict::Unsure, alert: None });
        };
        let verdict = judge(&fence, &p);
        let mut state: State = self.store.get_local(&state_key(&person.id))?.unwrap_or_default();
        let was_inside = state.inside;
        state.last = Some((now, p));
        let mut w = WriteSet::new();
        let mut raised = None;
        match verdict {
            Verdict::Outside => {
                // One alert per absence: a new one only once the last is resolved.
                let open = match &state.alert {
                    Some(id) => self.store.get::<Alert>(id)?.is_some_and(|a| a.state != AlertState::Resolved),
                    None => false,
                };
                if !open {
                    let metres = distance_m(fence.latitude, fence.longitude, p.latitude, p.longitude);
                    let alert = Alert::new(
                        format!("geo-{}-{}", person.id, now.timestamp()),
                        AlertKind::OutsideGeofence,
                        Severity::Severe,
                        &person.id,
                        &now.to_rfc3339(),
                        {
                            let beyond = metres - f64::from(fence.radius_m);
                            format!("ra khỏi vùng cách ly (quá {beyond:.0} m) / outside the geofence ({beyond:.0} m beyond)")
                        },
                        now,
                    );
                    w.put(&alert)?;
                    self.notify_on_duty(&mut w, &alert, person)?;
                    state.alert = Some(alert.id.clone());
                    raised = Some(alert.id);
                }
                state.inside = Some(false);
            }
            Verdict::Inside => state.inside = Some(true),
            Verdict::Unsure => {}
        }
        // The replicated summary: on the day's first report and on each crossing only.
        let date = self.today();
        let day_id = LocationDay::make_id(&person.id, date);
        let existing = self.store.get::<LocationDay>(&day_id)?;
        let crossed = state.inside.is_some() && state.inside != was_inside;
        if existing.is_none() || crossed {
            let mut day = existing.unwrap_or(LocationDay {
                person_id: person.id.clone(),
                date,
                first_report_at: now,
                outside_times: 0,
                last_outside_at: None,
                inside: None,
            });
            if crossed && state.inside == Some(false) {
                day.outside_times += 1;
                day.last_outside_at = Some(now);
            }
            day.inside = state.inside;
            w.put(&day)?;
        }
        w.put_local(&state_key(&person.id), &state)?;
        self.commit(w).await?;
        if let Some(id) = &raised {
            self.emit("alert", id);
            self.wake_outbox();
        }
        Ok(Reported { verdict, alert: raised })
    }

    /// The person's last position and when, if the box has one.
    pub fn last_position(&self, person_id: &str) -> AppResult<Option<LastPosition>> {
        let state: Option<State> = self.store.get_local(&state_key(person_id))?;
        Ok(state.and_then(|s| s.last.map(|(at, p)| (at, p, s.inside))))
    }

    /// Erases raw positions older than `privacy.position_days`; how many.
    pub(super) fn purge_positions(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let before = now - self.config.privacy.positions_kept;
        Ok(self.store.series(SERIES)?.prune_before(before.timestamp_millis())?)
    }

    /// Erasure [M13]: forgets the last position kept of `person_id`, in `w`. (Raw positions are
    /// erased by age.)
    pub(super) fn erase_location(&self, w: &mut WriteSet, person_id: &str) {
        w.delete_local(&state_key(person_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Geofence {
        // Ký túc xá Phía Tây, Đà Nẵng; 100 m.
        Geofence { latitude: 16.0748, longitude: 108.1497, radius_m: 100, address: String::new() }
    }

    #[test]
    fn distances_are_right_to_a_metre_at_these_scales() {
        // One thousandth of a degree of latitude is about 111 m.
        let d = distance_m(16.0748, 108.1497, 16.0758, 108.1497);
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert_eq!(distance_m(10.0, 10.0, 10.0, 10.0), 0.0);
    }

    #[test]
    fn a_position_is_outside_only_beyond_the_radius_and_its_accuracy() {
        let at = |lat: f64, accuracy: f64| Position { latitude: lat, longitude: 108.1497, accuracy };
        assert_eq!(judge(&fence(), &at(16.0749, 10.0)), Verdict::Inside);
        assert_eq!(judge(&fence(), &at(16.0768, 10.0)), Verdict::Outside, "222 m away, ±10 m");
        assert_eq!(judge(&fence(), &at(16.0768, 150.0)), Verdict::Unsure, "222 m away, ±150 m");
        assert_eq!(judge(&fence(), &at(16.0900, 900.0)), Verdict::Unsure, "too coarse to judge");
    }

    #[tokio::test]
    async fn the_day_summary_counts_crossings_and_raw_positions_are_erased_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = "[site]\nlatitude = 16.0748\nlongitude = 108.1497\ngeofence_m = 100\n";
        let (app, clock, store) = crate::app::testing::outpost(&dir, "2026-11-21T02:00:00Z", site);
        let input = crate::demo::person_input(1, app.today());
        let person = app.new_person(&input.validate(app.today()).expect("valid"), "t");
        app.import_people(std::slice::from_ref(&person.details), "t").await.expect("import");
        let person = store.list::<Person>().expect("people").remove(0);
        let at = |lat: f64| Position { latitude: lat, longitude: 108.1497, accuracy: 10.0 };
        for lat in [16.0749, 16.0770, 16.0749] {
            app.report_position(&person, at(lat)).await.expect("reported");
            clock.advance(chrono::Duration::minutes(5));
        }
        let day = store
            .get::<LocationDay>(&LocationDay::make_id(&person.id, app.today()))
            .expect("read")
            .expect("a summary");
        assert_eq!((day.outside_times, day.inside), (1, Some(true)));
        assert_eq!(store.series("positions").expect("series").len(), 3);
        clock.advance(chrono::Duration::days(15));
        assert_eq!(app.purge_positions(app.now()).expect("purge"), 3);
    }

    #[test]
    fn impossible_positions_are_refused() {
        for (lat, lon, acc) in
            [(91.0, 0.0, 5.0), (0.0, 181.0, 5.0), (0.0, 0.0, 0.0), (f64::NAN, 0.0, 5.0), (0.0, 0.0, 1e9)]
        {
            let p = Position { latitude: lat, longitude: lon, accuracy: acc };
            assert!(p.check().is_err(), "{p:?}");
        }
        assert!(Position { latitude: 16.07, longitude: 108.15, accuracy: 12.0 }.check().is_ok());
    }
}
