//! The exposure list benchmark (`cargo bench -p outpost --bench exposure`), issue 18's figure: one
//! person's exposure list [M10] at a site of 2,000 people with 14 days of presence, read from the
//! store as the person's page and a conversion to F0 make it.
//!
//! The presence: two people to a room; each day each person is in their room from 07:00 to 22:00
//! with a five-minute walk in the corridor every hour (the corridor shared by everyone walking at
//! that time: a tenth of the site per hour slot), and an unseen gap in the afternoon — about 35
//! intervals a day, as the presence engine writes them. Each list's contacts are checked against
//! what that seed implies.
//!
//! Goal (issue 18): ≤ 1 s for one list on the development machine. `BENCH_PEOPLE` changes the size.

mod common;

use std::{collections::BTreeMap, time::Instant};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::percentile;
use outpost::{app::Outpost, demo::person_input};
use outpost_sync::{
    record::{time_key, Person, PresenceDay, PresenceInterval},
    WriteSet,
};

const DAYS: i64 = 14;

fn main() {
    // 23:00 at the site on the 14th day.
    let now = Utc.with_ymd_and_hms(2026, 12, 4, 16, 0, 0).single().expect("time");
    let (_dir, store, app, people) = common::seeded_site(now);
    let today = app.today();
    let first_day = today - Duration::days(DAYS - 1);

    let started = Instant::now();
    let mut ids = Vec::with_capacity(people);
    let mut intervals = 0;
    for chunk in (0..people).collect::<Vec<_>>().chunks(50) {
        let mut w = WriteSet::new();
        for &i in chunk {
            let mut input = person_input(i, first_day);
            input.quarantine_start = first_day.to_string();
            input.quarantine_end = (first_day + Duration::days(21)).to_string();
            input.id_number = format!("0{:011}", 70_000_000_000u64 + i as u64);
            input.room = format!("P{:04}", i / 2);
            let valid = input.validate(first_day).expect("valid");
            let p: Person = app.new_person(&valid, "seed");
            for d in 0..DAYS {
                let date = first_day + Duration::days(d);
                let day = seed_day(&app, &p, i, date);
                intervals += day.intervals.len();
                w.put(&day).expect("day");
            }
            w.put(&p).expect("person");
            ids.push(p.id);
        }
        store.commit_blocking(w).expect("commit");
    }
    println!(
        "seeded {people} people, {} presence days, {intervals} intervals in {:.1} s",
        people as i64 * DAYS,
        started.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    for k in 0..10 {
        let i = (k * 197) % people;
        let t = Instant::now();
        let list = app.compute_exposure(&ids[i], "bench").expect("list");
        times.push(t.elapsed());
        // The room mate, 15 h a day minus the walks and the gap; the corridor: those walking in the
        // same slot.
        let mate = ids[i ^ 1].clone();
        let with_mate = list.contacts.get(&mate).map(|c| c.minutes).unwrap_or(0);
        assert!(with_mate > 600 * DAYS as u32, "the room mate shares the room: {with_mate}");
        let corridor_only = list
            .contacts
            .values()
            .filter(|c| c.days.values().all(|z| z.keys().all(|k| k == "hanh-lang")))
            .count();
        assert!(corridor_only > 0, "the corridor is shared");
        if k == 0 {
            println!("one list: {} contacts, {} with the room mate", list.contacts.len(), with_mate);
        }
    }
    times.sort();
    println!(
        "one person's exposure list, {people} people × {DAYS} days: median {:.0} ms, max {:.0} ms (goal ≤ 1 s) over {} lists",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
}

/// Person `i`'s day: in the room 07:00–22:00 local, five minutes in the corridor each hour at the
/// minute `i % 10 * 5`, unseen 14:00–14:30.
fn seed_day(app: &Outpost, p: &Person, i: usize, date: NaiveDate) -> PresenceDay {
    let at =
        |h: u32, m: u32| -> DateTime<Utc> { app.schedule().utc(date.and_hms_opt(h, m, 0).expect("time")) };
    let mut intervals = BTreeMap::new();
    let mut put = |from: DateTime<Utc>, to: DateTime<Utc>, state: &str, place: &str| {
        let key = time_key(&intervals, from);
        intervals.insert(key, PresenceInterval { state: state.into(), place: place.into(), to: Some(to) });
    };
    let walk = (i % 10) as u32 * 5;
    let mut t = at(7, 0);
    for h in 7..22 {
        if h == 14 {
            put(t, at(14, 30), "unseen", "");
            t = at(14, 30);
            continue;
        }
        let (out, back) = (at(h, walk), at(h, walk + 5));
        if out > t {
            put(t, out, "present", &format!("phong-{}", p.room.to_lowercase()));
        }
        put(out, back, "present", "hanh-lang");
        t = back;
    }
    put(t, at(22, 0), "present", &format!("phong-{}", p.room.to_lowercase()));
    PresenceDay { person_id: p.id.clone(), date, band: format!("B{i}"), intervals }
}
