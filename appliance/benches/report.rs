//! The zone daily report benchmark (`cargo bench -p outpost --bench report`), issue 6's figure:
//! computing the day's report [M11] for a site of 2,000 people with 30 days of history — read from the
//! store as the page does (every person, the day's samplings) and computed.
//!
//! The history: admissions spread over the 30 days, three sampling rounds per person (days 1, 7 and
//! 13 of their quarantine), one in 40 converted to F0 (on day 6) and transferred the next day, everyone released
//! after 14 days. Also timed: the 30-day series the report page's chart draws.
//!
//! Goal (issue 6): the day's report ≤ 50 ms on the development machine. `BENCH_PEOPLE` changes the size.

mod common;

use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::percentile;
use outpost::demo::person_input;
use outpost_sync::{
    record::{Person, PersonStatus, Sample, StatusChange, TestResult},
    WriteSet,
};

const DAYS: i64 = 30;

fn main() {
    // 17:00 at the site on the 30th day.
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).single().expect("time");
    let (_dir, store, app, people) = common::seeded_site(now);
    let today = app.today();
    let first_day = today - Duration::days(DAYS - 1);

    let started = Instant::now();
    let mut samples = 0;
    for chunk in (0..people).collect::<Vec<_>>().chunks(100) {
        let mut w = WriteSet::new();
        for &i in chunk {
            let start = first_day + Duration::days((i % DAYS as usize) as i64);
            let mut input = person_input(i, start);
            input.quarantine_start = start.to_string();
            input.quarantine_end = (start + Duration::days(14)).to_string();
            input.id_number = format!("0{:011}", 60_000_000_000u64 + i as u64);
            let valid = input.validate(start).expect("valid");
            let mut p: Person = app.new_person(&valid, "seed");
            let at =
                |day: NaiveDate, hour: u32| app.schedule().utc(day.and_hms_opt(hour, 0, 0).expect("time"));
            p.status_history[0].at = at(start, 8);
            let mut change = |status: PersonStatus, day: NaiveDate| {
                if day <= today {
                    p.status = status;
                    p.status_history.push(StatusChange {
                        status,
                        at: at(day, 15),
                        by: "seed".into(),
                        note: String::new(),
                    });
                }
            };
            if i % 40 == 3 {
                change(PersonStatus::ConvertedF0, start + Duration::days(6));
                change(PersonStatus::Transferred, start + Duration::days(7));
            } else {
                change(PersonStatus::Released, start + Duration::days(14));
            }
            for (round, day) in [(1, 1), (2, 7), (3, 13)] {
                let on = start + Duration::days(day);
                if on > today {
                    continue;
                }
                w.put(&Sample {
                    person_id: p.id.clone(),
                    round,
                    sampled_on: on,
                    sampled_at: at(on, 9),
                    sampled_by: "seed".into(),
                    result: if i % 40 == 3 && round == 2 {
                        TestResult::Positive
                    } else {
                        TestResult::Negative
                    },
                    result_at: Some(at(on, 20)),
                    result_by: Some("seed".into()),
                })
                .expect("sample");
                samples += 1;
            }
            w.put(&p).expect("person");
        }
        store.commit_blocking(w).expect("commit");
    }
    println!(
        "seeded {people} people and {samples} samplings over {DAYS} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let day = app.zone_day(today).expect("report");
    println!(
        "today: {} in quarantine, {} admitted, sampled {:?}, {} released, F0 {}",
        day.in_quarantine, day.admitted, day.sampled_by_round, day.released, day.converted_f0
    );
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        std::hint::black_box(app.zone_day(today).expect("report"));
        times.push(t.elapsed());
    }
    times.sort();
    let (p50, max) = (percentile(&times, 0.5), times[times.len() - 1]);
    println!(
        "the day's report, {people} people, 30 days of history: median {:.1} ms, max {:.1} ms (goal ≤ 50 ms) over {} runs",
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        times.len()
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(app.report_series(today, 30).expect("series"));
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "the chart's 30-day series: median {:.1} ms over {} runs",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times.len()
    );
}
