//! Every staff page of a site of 2,000 people: its size and the time the box takes to answer it
//! (docs/architecture.md, "Measured"). `cargo build --release --bins && cargo bench -p outpost-tests
//! --bench pages`. Goal: each page ≤ 150 KB of HTML and ≤ 50 ms.
//!
//! The real box (release) with `PAGES_PEOPLE` (2,000) people imported from a district list, as many
//! bands in the pool (handing them over needs a scanner to hear each: `writes.rs` does), a declaration for a tenth of them and the alerts of a missed round; every `GET`
//! staff page of the route table (ids filled from the site) asked `PAGES_RUNS` (15) times over
//! loopback by a staff session, after one warm-up: the median and the slowest time to the whole
//! answer, and its size.

use std::time::{Duration, Instant};

use outpost_tests::{site_with_people, staff_pages};
use serde_json::json;

const PASSWORD: &str = "Bench-Pages-2026!x";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn band(i: usize) -> String {
    format!("C4:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xFF)
}

fn main() {
    let people = env("PAGES_PEOPLE", 2000);
    let runs = env("PAGES_RUNS", 15);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut b, mut c, ids) = site_with_people(
        dir.path(),
        std::path::Path::new(""),
        "[web]\nrate_limits = false\n",
        "2026-11-21T00:00:00Z",
        people,
        (PASSWORD, &[]),
    );
    for i in 0..ids.len() {
        assert_eq!(c.post_json("/api/v1/bands", &json!({"id": band(i)})).status, 201);
    }
    // 09:31: the 08:00 round is missed by all; a tenth declare after.
    b.clock("set 2026-11-21T02:31:00Z");
    for id in ids.iter().step_by(10) {
        let token = c.get(&format!("/api/v1/people/{id}")).json()["declare_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let res = c.post_json(
            &format!("/api/v1/declare/{token}"),
            &json!({"temperature": "36.8", "spo2": "98", "symptoms": []}),
        );
        assert_eq!(res.status, 201, "{}", res.body);
    }
    println!(
        "{people} people, {people} bands in the pool; {} declared; {runs} runs a page.",
        ids.len().div_ceil(10)
    );

    let person = &ids[0];
    let mut rows = Vec::new();
    for path in staff_pages(&mut c, person, &band(0)) {
        let first = c.get(&path);
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let began = Instant::now();
                let answer = c.get(&path);
                assert_eq!(answer.status, 200);
                began.elapsed()
            })
            .collect();
        times.sort();
        rows.push((path, first.body.len(), times[times.len() / 2], times[times.len() - 1]));
    }
    let fmt = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    println!("{:<48} {:>9} {:>10} {:>10}  goal ≤ 150 KB, ≤ 50 ms", "page", "KB", "median ms", "max ms");
    let mut over = 0;
    for (path, size, median, max) in &rows {
        let flag = if *size > 150_000 || *median > Duration::from_millis(50) { "  ✗" } else { "" };
        over += usize::from(!flag.is_empty());
        let shown = if path.len() > 47 { format!("{}…", &path[..46]) } else { path.clone() };
        println!("{shown:<48} {:>9.1} {:>10} {:>10}{flag}", *size as f64 / 1e3, fmt(*median), fmt(*max));
    }
    println!("{} pages, {over} over a goal", rows.len());
}
