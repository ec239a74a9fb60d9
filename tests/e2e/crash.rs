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

/// Raw band samples wait in memory and are written as one block every `bands.sample_write_seconds`
/// of the box's clock (docs/ble.md, "The SD card"). SIGKILL during the band stream: the store opens,
/// every acknowledged declaration is there, and the raw samples lost are at most the documented
/// window: what the writer held (`sample_write_seconds` of samples) and about two seconds of real time
/// (the presence thread hands samples over each second; the store flushes each second).
#[test]
fn sigkill_during_the_band_stream_loses_raw_samples_only_within_the_window() {
    const WINDOW: u64 = 30;
    // A sample a second of the box's clock, a step every 250 ms of real time: two seconds of real time
    // are 8 samples.
    const STEPS: u64 = 100;
    const REAL: u64 = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = outpost_tests::free_port();
    let config = outpost_tests::write_config(
        dir.path(),
        &format!(
            "[web]\nrate_limits = false\n[mqtt]\nlisten = \"127.0.0.1:{port}\"\n\
             [bands]\nsample_seconds = 1\nsample_write_seconds = {WINDOW}\n"
        ),
    );
    let mqtt = format!("127.0.0.1:{port}");
    let args = |clock: &str| -> Vec<String> {
        ["--config", &config, "--mqtt", &mqtt, "--clock", clock].map(str::to_owned).to_vec()
    };
    let start = |clock: &str| {
        let a = args(clock);
        BoxProcess::start("run", &data, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut b = start("2026-11-21T00:00:00Z");
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.crash", PASSWORD);
    assert_eq!(
        staff.post_form("/mqtt", &[("name", "phong-a12"), ("password", "mat-khau-gateway-1")]).status,
        303
    );
    let (person_id, token) = staff.admit("Đỗ Thị Hạnh", "0905111222", "048123456789");
    const BAND: &str = "D4:E6:F1:A2:B3:01";
    assert_eq!(staff.post_json("/api/v1/bands", &json!({"id": BAND})).status, 201);
    let see = || {
        let payload = json!({"id": "D4E6F1A2B301", "rssi": -61, "manufacturerdata": "ffff015f010100"});
        assert!(outpost_tests::mqtt_publish(
            port,
            "phong-a12",
            "mat-khau-gateway-1",
            "home/phong-a12/BTtoMQTT/D4E6F1A2B301",
            &payload.to_string()
        ));
    };
    let taken = |c: &mut Client| c.get("/api/v1/presence").json()["stats"]["sightings"].as_u64().unwrap_or(0);

    let mut acknowledged = Vec::new();
    for step in 0..STEPS {
        let due = std::time::Instant::now() + Duration::from_millis(250);
        see();
        outpost_tests::wait_until("the sighting taken", || taken(&mut staff) > step);
        if step % 10 == 0 {
            let (status, id) =
                try_declare(&mut staff, &token, &format!("step {step}")).expect("the box answers");
            assert_eq!(status, 201);
            acknowledged.push(id.expect("id"));
        }
        b.clock("advance 1s");
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    let held = staff.get("/api/v1/presence").json()["stats"]["samples_unwritten"].as_u64().unwrap_or(0);
    b.kill9();

    b = start("2026-11-21T00:01:40Z");
    staff = Client::new(&b.url);
    assert_eq!(staff.login("admin.crash", PASSWORD).status, 303);
    let stored = staff.get(&format!("/api/v1/people/{person_id}/declarations")).json();
    let ids: Vec<&str> =
        stored.as_array().expect("declarations").iter().filter_map(|d| d["id"].as_str()).collect();
    for id in &acknowledged {
        assert!(ids.contains(&id.as_str()), "acknowledged declaration {id} lost");
    }
    let kept = staff.get(&format!("/api/v1/bands/{BAND}/sightings?hours=2")).json();
    let kept = kept["sightings"].as_array().expect("sightings").len() as u64;
    let lost = STEPS - kept;
    eprintln!("SIGKILL in the band stream: {kept} of {STEPS} raw samples kept ({held} held at the kill), {} declarations kept", acknowledged.len());
    assert!(kept >= WINDOW, "blocks were written before the kill: {kept} kept");
    // What is written to the card, on the health page, its JSON and the metrics (the rate is told
    // after ten minutes; the projection itself is a unit test of `platform::wear`).
    let card = &staff.get("/api/v1/health").json()["system"]["card"];
    assert!(["card", "process"].contains(&card["counted"].as_str().unwrap_or("")), "{card}");
    // (tmpfs counts nothing for a process; a real card's device has counted since boot.)
    assert!(card["written_bytes"].as_u64().is_some(), "{card}");
    let page = staff.get("/health").body;
    assert!(page.contains("Ghi vào thẻ nhớ") && page.contains("đang đo (cần 10 phút)"), "{page}");
    assert!(staff.get("/metrics").body.contains("outpost_disk_written_bytes_total "));
    assert!(lost <= WINDOW + REAL, "{lost} raw samples lost, more than the window ({WINDOW} + {REAL})");
    assert!(b.stop().success());
}
