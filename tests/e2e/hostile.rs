//! The box attacked from the site's own network, as a curious phone owner or a compromised gateway
//! would, against the real binary (`docs/security.md`): each test is an attack that used to work.
//!
//! - A device account reads no one else's data and speaks for no one else over MQTT.
//! - A flood of wrong logins (web and MQTT, from many addresses) keeps the box's memory bounded and
//!   `/healthz` answering.
//! - Thousands of half-open connections on each listener leave `/healthz` answering and a real
//!   gateway connected.
//! - Parallel requests cannot beat a check: the login limit, the one-time setup link, a new
//!   account's name; an attacker's failed logins do not lock the real user out.
//! - Redirects stay on the box.
//! - The province's sync (enrolment) and web ports answer through the same floods.
//!
//! Attackers use source addresses other than 127.0.0.1 (all of 127.0.0.0/8 is loopback), as phones
//! on the Wi-Fi each have their own.

use std::{
    collections::HashMap,
    sync::mpsc::{channel, Receiver},
    time::{Duration, Instant},
};

use outpost_tests::{free_port, wait_until, write_config, BoxProcess, Client};
use rumqttc::{Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::json;

use crate::PASSWORD;

const SITE: (f64, f64) = (16.0748, 108.1497);

/// The floods take the machine's cores while they last: one at a time, so that each measures its
/// own (other modules' tests still run beside them).
static FLOODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_flood_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    FLOODS.lock().unwrap_or_else(|e| e.into_inner())
}
const GW_PASSWORD: &str = "mat-khau-gateway-1";

/// What a device's connection saw: packets in, or the error that ended it.
enum Seen {
    Packet(Packet),
    Ended(String),
}

/// A device connected with rumqttc (MQTT 3.1.1) as `user`, client id `id`: its client and what it sees.
fn device(port: u16, id: &str, user: &str, password: &str) -> (rumqttc::Client, Receiver<Seen>) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(user, password);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = rumqttc::Client::new(o, 64);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let seen = match event {
                Ok(Event::Incoming(p)) => Seen::Packet(p),
                Ok(Event::Outgoing(_)) => continue,
                Err(e) => Seen::Ended(e.to_string()),
            };
            let ended = matches!(seen, Seen::Ended(_));
            if tx.send(seen).is_err() || ended {
                return;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Seen::Packet(Packet::ConnAck(_))) => {}
        Ok(Seen::Packet(p)) => panic!("{user}: {p:?} before CONNACK"),
        Ok(Seen::Ended(e)) => panic!("{user} was not let in: {e}"),
        Err(e) => panic!("{user}: no CONNACK: {e}"),
    }
    (client, rx)
}

/// The next SUBACK's codes, skipping other packets.
fn suback(rx: &Receiver<Seen>) -> Vec<SubscribeReasonCode> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Seen::Packet(Packet::SubAck(s))) => return s.return_codes,
            Ok(Seen::Packet(_)) => continue,
            Ok(Seen::Ended(e)) => panic!("the connection ended: {e}"),
            Err(_) => break,
        }
    }
    panic!("no SUBACK")
}

/// The publishes `rx` receives within `wait`, and whether its connection ended.
fn heard(rx: &Receiver<Seen>, wait: Duration) -> (Vec<String>, bool) {
    let (mut topics, deadline) = (Vec::new(), Instant::now() + wait);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Seen::Packet(Packet::Publish(p))) => topics.push(p.topic),
            Ok(Seen::Packet(_)) => {}
            Ok(Seen::Ended(_)) => return (topics, true),
            Err(_) => break,
        }
    }
    (topics, false)
}

fn sightings(c: &mut Client) -> u64 {
    c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64().unwrap_or(0)
}

#[test]
fn a_device_account_reads_no_one_else_and_speaks_for_no_one_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!("[site]\nlatitude = {}\nlongitude = {}\ngeofence_m = 150\n", SITE.0, SITE.1),
    );
    let mqtt = format!("127.0.0.1:{port}");
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--config", &config, "--mqtt", &mqtt]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "admin.mqtt", PASSWORD);
    let csv = outpost_tests::district_csv(2, "21/11/2026", "05/12/2026");
    assert_eq!(c.post_bytes("/api/v1/people/import", "text/csv", &csv).status, 200);
    let ids = c.people_ids();
    for gw in ["phong-1", "phong-2"] {
        assert_eq!(c.post_form("/mqtt", &[("name", gw), ("password", GW_PASSWORD)]).status, 303);
    }
    let app = [("name", "app-lan"), ("password", "mat-khau-ung-dung"), ("kind", "app"), ("person", &ids[0])];
    assert_eq!(c.post_form("/mqtt", &app).status, 303);

    // The honest gateway, connected with its usual client id.
    let (gw1, gw1_rx) = device(port, "espresense-phong-1", "phong-1", GW_PASSWORD);
    // The compromised one tries to read every position, every sighting, everything.
    let (evil, evil_rx) = device(port, "evil", "phong-2", GW_PASSWORD);
    for filter in ["outpost/position/+", "espresense/devices/#", "+/+/BTtoMQTT/+", "#", "home/phong-1/#"] {
        evil.subscribe(filter, QoS::AtMostOnce).expect("subscribe");
        assert_eq!(suback(&evil_rx), vec![SubscribeReasonCode::Failure], "{filter}");
    }
    // Its own command topic is allowed.
    evil.subscribe("home/phong-2/commands/#", QoS::AtMostOnce).expect("subscribe");
    assert_eq!(suback(&evil_rx), vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);

    // The person's app publishes its position; the compromised gateway hears nothing of it.
    let (phone, _phone_rx) = device(port, "phone", "app-lan", "mat-khau-ung-dung");
    let inside = json!({"latitude": SITE.0, "longitude": SITE.1, "accuracy": 9.0}).to_string();
    phone.publish("outpost/position/app-lan", QoS::AtLeastOnce, false, inside).expect("publish");
    let location = format!("/api/v1/people/{}/location", ids[0]);
    wait_until("the app's position", || c.get(&location).json()["last"]["verdict"] == "inside");

    // Forged positions: the gateway under the app's topic, the app for another person's topic.
    let outside = json!({"latitude": SITE.0 + 0.01, "longitude": SITE.1, "accuracy": 9.0}).to_string();
    evil.publish("outpost/position/app-lan", QoS::AtLeastOnce, false, outside.clone()).expect("publish");
    phone.publish("outpost/position/app-mai", QoS::AtLeastOnce, false, outside.clone()).expect("publish");

    // A forged sighting under the honest gateway's name: strap opened, battery flat, band moved.
    let band = "D4E6F1A2B3C4";
    let strap_open = json!({"id": "D4:E6:F1:A2:B3:C4", "rssi": -40, "manufacturerdata": "ffff0105000700"});
    evil.publish(format!("home/phong-1/BTtoMQTT/{band}"), QoS::AtLeastOnce, false, strap_open.to_string())
        .expect("publish");
    evil.publish(
        "espresense/devices/mac:d4e6f1a2b3c4/phong-1",
        QoS::AtMostOnce,
        false,
        json!({"id": "mac:d4e6f1a2b3c4", "rssi": -40}).to_string(),
    )
    .expect("publish");
    // A retained message on the honest gateway's status topic, for whoever subscribes later.
    evil.publish("espresense/rooms/phong-1/status", QoS::AtLeastOnce, true, "offline").expect("publish");
    // The honest gateway's own sighting, published last: once it is in, the forged ones had their
    // chance.
    let honest = json!({"id": "D4:E6:F1:A2:B3:C4", "rssi": -70, "manufacturerdata": "ffff015a010100"});
    gw1.publish(format!("home/phong-1/BTtoMQTT/{band}"), QoS::AtLeastOnce, false, honest.to_string())
        .expect("publish");
    wait_until("the honest sighting", || sightings(&mut c) >= 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sightings(&mut c), 1, "only the honest gateway's sighting was taken");
    let unknown = c.get("/api/v1/bands/unknown").json();
    let seen =
        unknown.as_array().expect("unknown").iter().find(|b| b["band"] == "D4:E6:F1:A2:B3:C4").cloned();
    assert_eq!(seen.as_ref().map(|b| b["strap_closed"].clone()), Some(json!(true)), "{unknown}");
    assert_eq!(c.get(&location).json()["last"]["verdict"], "inside", "no forged position was taken");
    assert!(c.alerts_of("outside_geofence").is_empty());
    let health = c.get("/api/v1/health").json();
    assert!(health["mqtt"]["connections"]["denied"].as_u64() >= Some(9), "{health}");

    // Retained flags from devices are cleared: a later subscriber gets no stored message.
    let (later, later_rx) = device(port, "espresense-phong-1-b", "phong-1", GW_PASSWORD);
    gw1.publish("espresense/rooms/phong-1/status", QoS::AtLeastOnce, true, "online").expect("publish");
    std::thread::sleep(Duration::from_millis(300));
    later.subscribe("espresense/rooms/phong-1/#", QoS::AtMostOnce).expect("subscribe");
    assert_eq!(suback(&later_rx), vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    assert_eq!(heard(&later_rx, Duration::from_millis(1500)).0, Vec::<String>::new(), "nothing retained");

    // The compromised gateway takes the honest one's client id: the honest one stays connected.
    let (_thief, _thief_rx) = device(port, "espresense-phong-1", "phong-2", GW_PASSWORD);
    let (_, ended) = heard(&gw1_rx, Duration::from_millis(1500));
    assert!(!ended, "the honest gateway was not disconnected");
    gw1.publish(format!("home/phong-1/BTtoMQTT/{band}"), QoS::AtLeastOnce, false, honest.to_string())
        .expect("publish");
    wait_until("the honest gateway's next sighting", || sightings(&mut c) == 2);

    // One device holds at most four connections (its two so far and two more).
    let extra: Vec<_> = (0..2).map(|i| device(port, &format!("x{i}"), "phong-2", GW_PASSWORD)).collect();
    let mut o = MqttOptions::new("x-fifth", "127.0.0.1", port);
    o.set_credentials("phong-2", GW_PASSWORD);
    let (_fifth, mut conn) = rumqttc::Client::new(o, 4);
    let refused = conn.iter().next().map(|e| e.is_err());
    assert_eq!(refused, Some(true), "a fifth connection of one device is refused");
    drop(extra);
}

/// VmRSS of `pid`, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// How long `/healthz` takes to answer 200 (panics past 5 s).
fn healthz(url: &str) -> Duration {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build(),
    );
    let started = Instant::now();
    let res = agent.get(&format!("{url}/healthz")).call();
    assert!(res.is_ok_and(|r| r.status() == 200), "/healthz did not answer");
    started.elapsed()
}

/// Starts `tests/attack.py` with `args`.
fn attack(args: &[&str]) -> std::process::Child {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("attack.py");
    std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3")
}

/// Waits for the attack's line `ready …` and returns it.
fn ready(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let out = child.stdout.as_mut().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).expect("attack output");
    assert!(line.starts_with("ready"), "{line}");
    line
}

#[test]
fn floods_of_wrong_logins_and_half_open_connections_leave_the_box_answering() {
    let _turn = one_flood_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mqtt = format!("127.0.0.1:{port}");
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--mqtt", &mqtt]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "admin.flood", PASSWORD);
    assert_eq!(c.post_form("/mqtt", &[("name", "phong-1"), ("password", GW_PASSWORD)]).status, 303);
    let (gw, gw_rx) = device(port, "espresense-phong-1", "phong-1", GW_PASSWORD);
    let web_port = b.url.rsplit(':').next().expect("port").to_owned();
    let mqtt_port = port.to_string();
    let pid = b.pid();
    let before = rss_mb(pid);

    // 200 wrong web logins and 200 wrong MQTT logins at once, each from its own address and name:
    // no throttle stops them before the hash, only the bounded pool.
    let mut flood = attack(&["logins", &web_port, &mqtt_port, "200"]);
    let (mut most, mut slowest) = (before, Duration::ZERO);
    while flood.try_wait().expect("attack").is_none() {
        most = most.max(rss_mb(pid));
        slowest = slowest.max(healthz(&b.url));
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut summary = String::new();
    std::io::Read::read_to_string(flood.stdout.as_mut().expect("stdout"), &mut summary).expect("summary");
    println!(
        "login flood: {summary} resident {before:.0} → at most {most:.0} MB; /healthz at most {slowest:?}"
    );
    assert!(most < 300.0, "resident memory reached {most:.0} MB");
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?}");

    // 2,000 half-open connections on the web and on MQTT from one phone's address, held.
    for (listener, kind) in [(&web_port, "web"), (&mqtt_port, "mqtt")] {
        let mut held = attack(&["halfopen", listener, "2000", kind]);
        let line = ready(&mut held);
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            slowest = slowest.max(healthz(&b.url));
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("half-open flood on {listener}: {} /healthz at most {slowest:?}", line.trim());
        assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?} under the flood on {listener}");
        // A new device still gets in, and the connected gateway still publishes.
        let (_other, _) = device(port, "espresense-phong-1-b", "phong-1", GW_PASSWORD);
        let n = c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64().unwrap_or(0);
        let payload = json!({"id": "D4:E6:F1:A2:B3:C4", "rssi": -60}).to_string();
        gw.publish("home/phong-1/BTtoMQTT/D4E6F1A2B3C4", QoS::AtLeastOnce, false, payload).expect("publish");
        wait_until("the gateway's sighting during the flood", || {
            c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64() == Some(n + 1)
        });
        let _ = held.kill();
        let _ = held.wait();
    }
    let (_, ended) = heard(&gw_rx, Duration::from_millis(200));
    assert!(!ended, "the gateway stayed connected through both floods");
    let health = c.get("/api/v1/health").json();
    println!("after the floods: {} {}", health["mqtt"], health["web"]);
    // What the gates refused is on the health page and in the metrics, for whoever carries the pager.
    assert!(health["web"]["gate"]["refused"].as_u64() > Some(1000), "{health}");
    assert!(health["mqtt"]["gate"]["refused"].as_u64() > Some(1000), "{health}");
    let metrics = c.get("/metrics").body;
    for name in ["outpost_web_connections_refused_total", "outpost_mqtt_connections_refused_total"] {
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(value.is_some_and(|v| v > 1000.0), "{name}: {value:?}");
    }
}

/// `attack.py posts`: `n` posts of `body` to `path` at once, from `source`; the count of each status.
fn posts(port: &str, path: &str, cookie: &str, body: &str, n: usize, source: &str) -> HashMap<String, usize> {
    let out = attack(&["posts", port, path, cookie, body, &n.to_string(), source])
        .wait_with_output()
        .expect("attack");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(0)))
        .collect()
}

const CSRF: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn parallel_requests_cannot_beat_a_check() {
    let _turn = one_flood_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BoxProcess::start("run", &dir.path().join("data"), &[]);
    let port = b.url.rsplit(':').next().expect("port").to_owned();
    let cookie = format!("outpost_csrf={CSRF}");

    // Eight posts of the setup link at once make one administrator.
    let link = b.setup_link.as_deref().expect("setup");
    let path = &link[link.find("/setup/").expect("setup path")..];
    let form = |name: &str| {
        format!("csrf={CSRF}&display_name=Quan+tri&username={name}&password={PASSWORD}&password2={PASSWORD}")
    };
    let made = posts(&port, path, &cookie, &form("quantri"), 8, "spread");
    assert_eq!(made.get("303"), Some(&1), "one administrator: {made:?}");
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("quantri", PASSWORD).status, 303);
    // Each account has one row on the accounts page, with its API token button.
    let accounts = |c: &mut Client| c.get("/users").body.matches("/token\"").count();
    assert_eq!(accounts(&mut c), 1);

    // Eight posts of one new account at once make one account.
    let session = c.cookie(outpost::web::kit::SESSION_COOKIE).expect("a session").to_owned();
    let csrf = c.csrf.clone().expect("the session's CSRF token");
    let cookie_session = format!("{}={session}; {cookie}", outpost::web::kit::SESSION_COOKIE);
    let add = format!(
        "csrf={csrf}&display_name=Y+te&username=yte.lan&password={PASSWORD}&password2={PASSWORD}&role=medical"
    );
    let added = posts(&port, "/users", &cookie_session, &add, 8, "127.0.0.2");
    assert_eq!(added.get("303"), Some(&1), "one account: {added:?}");
    assert_eq!(accounts(&mut c), 2);

    // A hundred wrong logins at once from one phone: five are checked, the rest refused unchecked
    // (429, or closed at once past the address's 32 connections).
    let wrong = format!("csrf={CSRF}&username=yte.lan&password=sai-mat-khau-1&next=/");
    let tried = posts(&port, "/login", &cookie, &wrong, 100, "127.0.0.2");
    assert_eq!(tried.get("401"), Some(&5), "{tried:?}");
    let refused = tried.get("429").copied().unwrap_or(0) + tried.get("closed").copied().unwrap_or(0);
    assert_eq!(refused, 95, "{tried:?}");
    // The real user, on their own phone, still gets in.
    let right = format!("csrf={CSRF}&username=yte.lan&password={PASSWORD}&next=/");
    assert_eq!(posts(&port, "/login", &cookie, &right, 1, "127.0.0.3").get("303"), Some(&1));
    // A phone trying name after name stops at its address's limit (20), whatever the names.
    let mut checked = 0;
    for name in ["an", "binh", "chau", "dung", "em"] {
        let guess = format!("csrf={CSRF}&username={name}&password=sai-mat-khau-1&next=/");
        checked += posts(&port, "/login", &cookie, &guess, 8, "127.0.0.4").get("401").copied().unwrap_or(0);
    }
    assert_eq!(checked, 20);
    let right = format!("csrf={CSRF}&username=quantri&password={PASSWORD}&next=/");
    assert_eq!(posts(&port, "/login", &cookie, &right, 1, "127.0.0.4").get("429"), Some(&1));
}

#[test]
fn public_links_and_the_gate_form_have_a_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BoxProcess::start("run", &dir.path().join("data"), &[]);
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let (person, token) = staff.admit("Phan Thị Mai", "0905333444", "048123456700");

    // Thirty fevers on one link at once: ten are taken, the rest refused with a message in
    // Vietnamese, and only the ten raise alerts.
    let mut phone = Client::new(&b.url);
    let fever = json!({"temperature": "39.5", "symptoms": []});
    let statuses: Vec<u16> =
        (0..30).map(|_| phone.post_json(&format!("/api/v1/declare/{token}"), &fever).status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20, "{statuses:?}");
    let refused = phone.post_json(&format!("/api/v1/declare/{token}"), &fever);
    assert_eq!(refused.json()["error"], "too_many_requests", "{}", refused.body);
    assert!(refused.body.contains("Gửi quá nhiều lần"), "{}", refused.body);
    let page = phone.post_form(&format!("/d/{token}"), &[("temperature", "39.5")]);
    assert_eq!(page.status, 429);
    assert!(page.body.contains("Vui lòng chờ một phút"), "a page in Vietnamese: {}", page.body);
    let alerts = staff.get("/api/v1/alerts").json();
    let mine =
        alerts.as_array().expect("alerts").iter().filter(|a| a["person_id"] == person.as_str()).count();
    assert!(mine <= 10, "{mine} alerts from one link");
    // Another person's link is not affected.
    let (_, other) = staff.admit("Lê Văn Hùng", "0905333555", "048123456701");
    assert_eq!(phone.post_json(&format!("/api/v1/declare/{other}"), &fever).status, 201);

    // The gate poster's form: one phone gets ten entries in a row, then waits.
    let poster = staff.get("/checkin/poster");
    let at = poster.body.find("id=\"checkin-link\" href=\"").expect("the link") + 24;
    let link = poster.body[at..].split('"').next().expect("link").to_owned();
    let path = &link[link.find("/c/").expect("/c/")..];
    let mut visitor = Client::new(&b.url);
    visitor.get(path);
    let entry = [("direction", "in"), ("name", "Khách"), ("phone", "0905123456"), ("purpose", "delivery")];
    let statuses: Vec<u16> = (0..15).map(|_| visitor.post_form(path, &entry).status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[test]
fn an_import_of_a_million_bad_rows_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = BoxProcess::start("run", &dir.path().join("data"), &[]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let before = rss_mb(b.pid());
    // Just under the upload limit (2 MiB): a header and a million one-letter rows.
    let mut csv =
        "Họ và tên;Số điện thoại;Số CMND/CCCD;Ngày bắt đầu cách ly;Ngày kết thúc cách ly\n".to_owned();
    csv.push_str(&"x\n".repeat(1_000_000));
    let started = Instant::now();
    let res = c.post_bytes("/api/v1/people/import", "text/csv", csv.as_bytes());
    let took = started.elapsed();
    assert_eq!(res.status, 422, "{}", &res.body[..res.body.len().min(500)]);
    assert!(res.body.contains("5000") && res.body.len() < 10_000, "{}", &res.body[..res.body.len().min(500)]);
    let after = rss_mb(b.pid());
    println!("a million bad rows: refused in {took:?}; resident {before:.0} → {after:.0} MB");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(after < 300.0, "{after:.0} MB");
}

#[test]
fn the_province_answers_through_floods_on_its_sync_and_web_ports() {
    let _turn = one_flood_at_a_time();
    use outpost_province::{
        server::{Province, Server},
        web::Web,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let province = Province::new(&dir.path().join("province"));
    province.init(&[]).expect("init");
    let tokens: Vec<String> =
        (0..2).map(|i| province.add_site(&format!("site-{i}"), "Quận Liên Chiểu").expect("add")).collect();
    let server = Server::new(province);
    let sync = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let sync_addr = sync.local_addr().expect("addr");
    rt.spawn(server.clone().serve(sync));
    let web = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", web.local_addr().expect("addr"));
    rt.spawn(Web::new(server.clone(), chrono::Duration::minutes(15)).serve(web));

    let sync_port = sync_addr.port().to_string();
    let web_port = url.rsplit(':').next().expect("port").to_owned();
    for (i, (port, kind)) in [(&sync_port, "tls"), (&web_port, "web")].into_iter().enumerate() {
        let mut held = attack(&["halfopen", port, "2000", kind]);
        let line = ready(&mut held);
        // The login page answers, and a site enrols (TLS, its token, its bundle) while the flood holds.
        let started = Instant::now();
        let page = ureq::get(&format!("{url}/login")).call().expect("the login page");
        assert_eq!(page.status(), 200);
        let login = started.elapsed();
        let started = Instant::now();
        rt.block_on(outpost_link::site::enroll(&sync_addr.to_string(), &tokens[i])).expect("enrolment");
        let enrol = started.elapsed();
        println!(
            "half-open flood on the province's {kind} port: {} login page {login:?}, enrolment {enrol:?}",
            line.trim()
        );
        assert!(login < Duration::from_secs(1) && enrol < Duration::from_secs(5), "{login:?} {enrol:?}");
        let _ = held.kill();
        let _ = held.wait();
    }
    // Enrolment is open to anyone with or without a token: ten tries an address, then one a minute.
    let answers: Vec<String> = (0..10)
        .map(|_| match rt.block_on(outpost_link::site::enroll(&sync_addr.to_string(), &tokens[0])) {
            Ok(_) => "enrolled".to_owned(),
            Err(e) => format!("{e:#}"),
        })
        .collect();
    let (used, limited) = (
        answers.iter().filter(|a| a.contains("used or wrong enrolment token")).count(),
        answers.iter().filter(|a| a.contains("too many enrolments")).count(),
    );
    assert_eq!(
        (used, limited),
        (8, 2),
        "two enrolled above, eight refused for the token, then limited: {answers:?}"
    );
}
