//! Kill the box with SIGKILL at random moments during bursts of acknowledged writes; after every restart
//! the store opens and holds every write that was acknowledged (HTTP 201) before the kill.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use outpost_tests::{BoxProcess, Client};
use rand::Rng;
use serde_json::json;

use crate::PASSWORD;

const WRITERS: usize = 4;

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let cycles: usize = std::env::var("OUTPOST_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Writers declare on one link in bursts: the load, not a phone, so no rate limit.
    let unlimited = outpost_tests::write_config(dir.path(), "[web]\nrate_limits = false\n");
    let mut b = BoxProcess::start("run", &data, &["--config", &unlimited]);
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.crash", PASSWORD);
    let (person_id, token) = staff.admit("Đỗ Thị Hạnh", "0905111222", "048123456789");

    let mut acknowledged: Vec<String> = Vec::new();
    let mut rng = rand::thread_rng();
    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (url, token, stop, acked) = (b.url.clone(), token.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let mut c = Client::new(&url);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let note = format!("crash {cycle} writer {w} #{n}");
                        let Some(status_and_id) = try_declare(&mut c, &token, &note) else { break };
                        if let (201, Some(id)) = status_and_id {
                            acked.lock().expect("lock").push(id);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        b.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
        acknowledged.extend(acked.lock().expect("lock").drain(..));

        b = BoxProcess::start("run", &data, &["--config", &unlimited]);
        staff = Client::new(&b.url);
        assert_eq!(staff.login("admin.crash", PASSWORD).status, 303, "cycle {cycle}: login after restart");
        let stored = staff.get(&format!("/api/v1/people/{person_id}/declarations"));
        assert_eq!(stored.status, 200, "cycle {cycle}: {}", stored.body);
        let ids: std::collections::HashSet<String> = stored
            .json()
            .as_array()
            .expect("declarations")
            .iter()
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect();
        let lost: Vec<&String> = acknowledged.iter().filter(|id| !ids.contains(*id)).collect();
        assert!(lost.is_empty(), "cycle {cycle}: {} acknowledged writes lost: {lost:?}", lost.len());
    }
    assert!(acknowledged.len() > cycles, "the bursts wrote something ({} writes)", acknowledged.len());
    eprintln!("crash test: {cycles} SIGKILLs, {} acknowledged writes, none lost", acknowledged.len());
    assert!(b.stop().success());
}

/// One declaration; `None` once the box is gone (connection refused or reset).
fn try_declare(c: &mut Client, token: &str, note: &str) -> Option<(u16, Option<String>)> {
    let body = json!({"temperature": "36.7", "symptoms": [], "note": note});
    let a = c.try_post_json(&format!("/api/v1/declare/{token}"), &body)?;
    let id = serde_json::from_str::<serde_json::Value>(&a.body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned));
    Some((a.status, id))
}
