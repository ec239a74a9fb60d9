//! Exposure lists [M10]: when a person converts to F0 (and on demand), the people whose bands shared
//! a scanner's zone with theirs over the last `bands.exposure_days`, with the minutes per day and
//! zone. Derived from the replicated presence intervals (`PresenceDay`: present, at a place), never
//! from raw sightings, and kept as one replicated [`Exposure`] per person (names, rooms and minutes
//! only) that the province receives with the rest.
//!
//! The computation reads the person's own days first, then only the other people's days on those
//! dates (the date is in each day's id), one at a time: bounded memory, and about 28,000 small
//! documents at a 2,000-person site over 14 days (`benches/exposure.rs`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use outpost_sync::{
    record::{Contact, Exposure, Person, PresenceDay},
    WriteSet,
};

use super::{AppResult, Outpost};

/// Where a person was present on one day: (zone, from, to).
type Span = (String, DateTime<Utc>, DateTime<Utc>);

/// The spans `day` was present somewhere, each open interval closed at `end`.
pub fn present_spans(day: &PresenceDay, end: DateTime<Utc>) -> Vec<Span> {
    day.intervals
        .iter()
        .filter(|(_, i)| i.state == "present" && !i.place.is_empty())
        .filter_map(|(key, i)| {
            let from = outpost_sync::record::key_time(key)?;
            let to = i.to.unwrap_or(end).min(end);
            (to > from).then(|| (i.place.clone(), from, to))
        })
        .collect()
}

/// Seconds two people shared each zone, from their spans of one day.
pub fn shared_seconds(mine: &[Span], theirs: &[Span]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (place, a, b) in mine {
        for (_, c, d) in theirs.iter().filter(|(p, _, _)| p == place) {
            let overlap = (*b.min(d) - *a.max(c)).num_seconds();
            if overlap > 0 {
                *out.entry(place.clone()).or_default() += overlap;
            }
        }
    }
    out
}

impl Outpost {
    /// The end of a site-local day (its next midnight), or `now` for today.
    fn day_end(&self, date: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
        let next = date.succ_opt().unwrap_or(date).and_hms_opt(0, 0, 0).unwrap_or_default();
        self.schedule().utc(next).min(now)
    }

    /// Computes `person_id`'s exposure list now (without keeping it).
    pub fn compute_exposure(&self, person_id: &str, reason: &str) -> AppResult<Exposure> {
        self.person(person_id)?;
        let now = self.now();
        let days = self.config.bands.exposure_days;
        let today = self.schedule().local(now).date();
        let mut mine: HashMap<String, Vec<Span>> = HashMap::new();
        for back in 0..i64::from(days) {
            let date = today - Duration::days(back);
            if let Some(day) = self.presence_day(person_id, date)? {
                let spans = present_spans(&day, self.day_end(date, now));
                if !spans.is_empty() {
                    mine.insert(date.to_string(), spans);
                }
            }
        }
        // Seconds shared, by contact, day and zone.
        let mut shared: BTreeMap<String, BTreeMap<String, BTreeMap<String, i64>>> = BTreeMap::new();
        let own = format!("{person_id}/");
        self.store.for_each_where::<PresenceDay>(
            |id| !id.starts_with(&own) && id.rsplit_once('/').is_some_and(|(_, d)| mine.contains_key(d)),
            |day| {
                let date = day.date.to_string();
                let Some(my_spans) = mine.get(&date) else { return };
                let theirs = present_spans(&day, self.day_end(day.date, now));
                let seconds = shared_seconds(my_spans, &theirs);
                if !seconds.is_empty() {
                    shared.entry(day.person_id.clone()).or_default().insert(date, seconds);
                }
            },
        )?;
        let mut contacts = BTreeMap::new();
        for (id, by_day) in shared {
            let days: BTreeMap<String, BTreeMap<String, u32>> = by_day
                .into_iter()
                .map(|(d, zones)| (d, zones.into_iter().map(|(z, s)| (z, (s / 60) as u32)).collect()))
                .collect();
            let minutes: u32 = days.values().flat_map(|z| z.values()).sum();
            if minutes == 0 {
                continue;
            }
            let (full_name, room) = match self.store.get::<Person>(&id)? {
                Some(p) => (p.full_name.clone(), p.room.clone()),
                None => continue,
            };
            contacts.insert(id, Contact { full_name, room, minutes, days });
        }
        Ok(Exposure {
            person_id: person_id.to_owned(),
            computed_at: now,
            days,
            reason: reason.to_owned(),
            contacts,
        })
    }

    /// Keeps an exposure list (replacing the person's last one).
    pub async fn keep_exposure(&self, list: &Exposure) -> AppResult<()> {
        let mut w = WriteSet::new();
        w.put(list)?;
        self.commit(w).await?;
        self.emit("person", &list.person_id);
        Ok(())
    }

    /// The exposure list last kept for `person_id`, if any.
    pub fn exposure(&self, person_id: &str) -> AppResult<Option<Exposure>> {
        Ok(self.store.get::<Exposure>(person_id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use outpost_sync::record::PresenceInterval;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).single().expect("t")
    }

    /// An interval as written in a test: state, place, from, to.
    type Seed<'a> = (&'a str, &'a str, DateTime<Utc>, Option<DateTime<Utc>>);

    fn day(spans: &[Seed<'_>]) -> PresenceDay {
        let mut intervals = BTreeMap::new();
        for (state, place, from, to) in spans {
            let key = from.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            intervals
                .insert(key, PresenceInterval { state: (*state).into(), place: (*place).into(), to: *to });
        }
        PresenceDay {
            person_id: "p".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 21).expect("d"),
            band: "B".into(),
            intervals,
        }
    }

    #[test]
    fn only_present_time_in_the_same_zone_counts() {
        let mine = day(&[
            ("present", "phong-a12", t(1, 0), Some(t(1, 40))),
            ("present", "hanh-lang", t(1, 40), Some(t(1, 45))),
            ("unseen", "", t(1, 45), Some(t(2, 0))),
            ("present", "phong-a12", t(2, 0), None),
        ]);
        let theirs = day(&[
            ("present", "phong-a12", t(0, 30), Some(t(1, 20))),
            ("present", "hanh-lang", t(1, 20), Some(t(1, 42))),
            // Not covered: nobody knows where they were.
            ("not_covered", "phong-a12", t(2, 0), None),
        ]);
        let end = t(3, 0);
        let seconds = shared_seconds(&present_spans(&mine, end), &present_spans(&theirs, end));
        assert_eq!(seconds, BTreeMap::from([("hanh-lang".into(), 120), ("phong-a12".into(), 20 * 60)]));
    }

    /// A seeded site over three days: A, B and C share room A12 for 40 minutes each morning; D
    /// shares the corridor with A for 5 minutes on the first day; E is in another room at the same
    /// time, F in A12 when A is not, and C's band is also not covered for an hour (which counts for
    /// nothing). A's positive result makes A's list.
    #[tokio::test]
    async fn a_conversion_lists_who_shared_a_zone_with_the_right_minutes() {
        use outpost_sync::record::TestResult;
        let dir = tempfile::tempdir().expect("tempdir");
        // 17:00 at the site on 23/11.
        let (app, _, store) = crate::app::testing::outpost(&dir, "2026-11-23T10:00:00Z", "");
        let mut csv =
            String::from("Họ và tên;Số điện thoại;Số CMND/CCCD;Ngày bắt đầu cách ly;Ngày kết thúc cách ly\n");
        for (i, name) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
            csv.push_str(&format!(
                "Người {name};09{:08};0790000000{i:02};21/11/2026;05/12/2026\n",
                30_000_000 + i
            ));
        }
        let list = app.check_people_list(csv.as_bytes()).expect("list");
        let rows: Vec<_> = list.valid.into_iter().map(|(_, v)| v).collect();
        app.import_people(&rows, "lan").await.expect("import");
        let mut people = app.people("", None, None).expect("people");
        people.sort_by(|a, b| a.id_number.cmp(&b.id_number));
        let id = |i: usize| people[i].id.clone();
        let mut w = WriteSet::new();
        for d in 21..=23 {
            let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).single().expect("t");
            let mut put = |person: usize, spans: &[Seed<'_>]| {
                let mut day = day(spans);
                day.person_id = id(person);
                day.date = NaiveDate::from_ymd_opt(2026, 11, d).expect("d");
                w.put(&day).expect("put");
            };
            put(
                0,
                &[
                    ("present", "phong-a12", at(0, 0), Some(at(0, 40))),
                    ("present", "hanh-lang", at(0, 40), Some(at(0, 50))),
                    ("present", "phong-a12", at(0, 50), Some(at(1, 30))),
                ],
            );
            put(1, &[("present", "phong-a12", at(0, 0), Some(at(0, 40))), ("unseen", "", at(0, 40), None)]);
            put(
                2,
                &[
                    ("present", "phong-a12", at(0, 0), Some(at(0, 40))),
                    ("not_covered", "phong-a12", at(0, 40), Some(at(1, 40))),
                ],
            );
            if d == 21 {
                put(3, &[("present", "hanh-lang", at(0, 45), Some(at(1, 0)))]);
            }
            put(4, &[("present", "phong-a14", at(0, 0), Some(at(0, 40)))]);
            put(5, &[("present", "phong-a12", at(2, 0), Some(at(3, 0)))]);
        }
        store.commit(w).await.expect("seed");

        app.record_sample(&id(0), None, "lan").await.expect("sample");
        app.record_result(&id(0), 1, TestResult::Positive, "lan").await.expect("positive");
        let x = app.exposure(&id(0)).expect("read").expect("made on conversion");
        assert_eq!((x.reason.as_str(), x.days), ("converted_f0", 14));
        let minutes: BTreeMap<&str, u32> =
            x.contacts.values().map(|c| (c.full_name.as_str(), c.minutes)).collect();
        assert_eq!(minutes, BTreeMap::from([("Người B", 120), ("Người C", 120), ("Người D", 5)]));
        let b = &x.contacts[&id(1)];
        assert_eq!(b.days.len(), 3);
        assert!(b.days.values().all(|z| z == &BTreeMap::from([("phong-a12".to_owned(), 40)])));
        assert_eq!(
            x.contacts[&id(3)].days,
            BTreeMap::from([("2026-11-21".to_owned(), BTreeMap::from([("hanh-lang".to_owned(), 5)]))])
        );
        // Nobody lists themselves, and B's list names A.
        let xb = app.compute_exposure(&id(1), "on_demand").expect("B");
        assert!(xb.contacts.contains_key(&id(0)) && !xb.contacts.contains_key(&id(1)));
    }
}
