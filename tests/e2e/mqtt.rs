//! The embedded MQTT broker with real clients (Debian's `mosquitto_pub`): a gateway with credentials an
//! administrator added publishes ESPresense and Theengs sightings, which reach the presence engine;
//! wrong credentials are refused; a malformed payload is counted, not fatal.

use outpost_tests::{free_port, mosquitto_pub, mqtt_publish as publish, wait_until, BoxProcess, Client};

use crate::PASSWORD;

#[test]
fn gateways_publish_sightings_to_the_embedded_broker() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{port}");
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--mqtt", &listen]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "admin.mqtt", PASSWORD);
    // Two gateways (an ESPresense in room phong_a12, a Theengs gateway gw-khu-b), and a monitor for
    // whoever installs them.
    for name in ["phong_a12", "gw-khu-b"] {
        let res = c.post_form("/mqtt", &[("name", name), ("password", "mat-khau-gateway-1")]);
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let res =
        c.post_form("/mqtt", &[("name", "cai-dat"), ("password", "mat-khau-theo-doi"), ("kind", "monitor")]);
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(c.get("/mqtt").body.contains("gw-khu-b"));
    assert_eq!(c.post_form("/mqtt", &[("name", "x"), ("password", "short")]).status, 422);

    // One band is in the pool, the other is not (yet).
    let res = c.post_json("/api/v1/bands", &serde_json::json!({"id": "d4e6f1a2b3c4"}));
    assert_eq!(res.status, 201, "{}", res.body);
    // The subscriber keeps listening through quiet periods.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // No anonymous access, no wrong password.
    assert!(
        !publish(port, "phong_a12", "wrong-password-1", "espresense/devices/x/phong_a12", "{}"),
        "wrong password refused"
    );
    assert!(
        !publish(port, "nobody", "mat-khau-gateway-1", "espresense/devices/x/nobody", "{}"),
        "unknown device refused"
    );

    // `outpost ble listen`, as whoever sets up a site runs it, sees the same traffic.
    let listen = |password: &str| {
        std::process::Command::new(outpost_tests::outpost_bin())
            .args([
                "ble",
                "listen",
                "--mqtt",
                &format!("127.0.0.1:{port}"),
                "--user",
                "cai-dat",
                "--seconds",
                "6",
            ])
            .env("OUTPOST_MQTT_PASSWORD", password)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("outpost ble listen")
    };
    let refused = listen("wrong-password-1").wait_with_output().expect("listen");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong name or password"));
    let listener = listen("mat-khau-theo-doi");
    std::thread::sleep(std::time::Duration::from_millis(2000));
    assert!(publish(
        port,
        "phong_a12",
        "mat-khau-gateway-1",
        "espresense/devices/mac:d4e6f1a2b3c4/phong_a12",
        r#"{"id":"mac:d4e6f1a2b3c4","mac":"d4e6f1a2b3c4","rssi@1m":-59,"rssi":-62,"distance":1.4}"#
    ));
    // ESPresense 4.x (since January 2026): the RSSI with decimals.
    assert!(publish(
        port,
        "phong_a12",
        "mat-khau-gateway-1",
        "espresense/devices/mac:d4e6f1a2b3c6/phong_a12",
        r#"{"id":"mac:d4e6f1a2b3c6","disc":"","idType":35,"rssi@1m":-65,"rssi":-72.35,"raw":2.94,"distance":2.51,"var":0.07,"int":2410}"#
    ));
    // A Theengs gateway: an Outpost band at 41 %, strap open.
    assert!(publish(
        port,
        "gw-khu-b",
        "mat-khau-gateway-1",
        "home/gw-khu-b/BTtoMQTT/AABBCCDDEE01",
        r#"{"id":"AA:BB:CC:DD:EE:01","rssi":-70,"manufacturerdata":"ffff0129000700"}"#
    ));
    assert!(publish(
        port,
        "phong_a12",
        "mat-khau-gateway-1",
        "espresense/devices/mac:d4e6f1a2b3c4/phong_a12",
        "not json"
    ));
    assert!(publish(
        port,
        "phong_a12",
        "mat-khau-gateway-1",
        "espresense/devices/mac:d4e6f1a2b3c4/phong_a12",
        r#"{"rssi":42}"#
    ));

    let heard = listener.wait_with_output().expect("listen");
    assert!(heard.status.success(), "{}", String::from_utf8_lossy(&heard.stderr));
    let heard: Vec<serde_json::Value> =
        String::from_utf8_lossy(&heard.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        heard
            .iter()
            .any(|l| l["band"] == "D4:E6:F1:A2:B3:C4" && l["scanner"] == "phong_a12" && l["rssi"] == -62),
        "{heard:?}"
    );
    assert!(
        heard.iter().any(|l| l["band"] == "AA:BB:CC:DD:EE:01"
            && l["battery_percent"] == 41
            && l["strap_closed"] == false),
        "{heard:?}"
    );
    assert!(heard.iter().any(|l| l["refused"] == "not_json"), "{heard:?}");
    assert!(heard.iter().any(|l| l["band"] == "D4:E6:F1:A2:B3:C6" && l["rssi"] == -72), "{heard:?}");
    wait_until("the sightings to reach the presence engine", || {
        let p = c.get("/api/v1/presence").json();
        p["counters"]["sightings"] == 3
            && p["stats"]["sightings"] == 3
            && p["counters"]["refused"]["not_json"] == 1
            && p["counters"]["refused"]["absurd_rssi"] == 1
    });
    // Keep-alive 0 (valid MQTT: no keep-alive; mosquitto_pub will not send it) is accepted, on
    // 3.1.1 and on 5, with a CONNACK saying so.
    for version in [4u8, 5] {
        assert_eq!(
            connack_with_keep_alive_0(port, version, "phong_a12", "mat-khau-gateway-1"),
            0,
            "MQTT {version}"
        );
    }
    // A wrong password gets its CONNACK return code, not a bare close: 4 in 3.1.1, 0x86 in 5.
    assert_eq!(connack_with_keep_alive_0(port, 4, "phong_a12", "sai-mat-khau-1"), 4);
    assert_eq!(connack_with_keep_alive_0(port, 5, "phong_a12", "sai-mat-khau-1"), 0x86);
    // A message over the 4 KB limit: dropped and counted, acknowledged (3.1.1 has no reason code).
    let big = format!(r#"{{"id":"mac:d4e6f1a2b3c4","rssi":-60,"pad":"{}"}}"#, "x".repeat(5000));
    assert!(publish(
        port,
        "phong_a12",
        "mat-khau-gateway-1",
        "espresense/devices/mac:d4e6f1a2b3c4/phong_a12",
        &big
    ));
    wait_until("the message over the limit counted", || {
        c.get("/metrics").body.lines().any(|l| l == "outpost_mqtt_too_large_total 1")
    });
    let p = c.get("/api/v1/presence").json();
    let bands = p["bands"].as_array().expect("bands");
    let esp = bands.iter().find(|b| b["band"] == "D4:E6:F1:A2:B3:C4").expect("espresense band");
    assert_eq!(
        (esp["state"].as_str(), esp["place"].as_str(), esp["rssi"].as_i64()),
        (Some("present"), Some("phong_a12"), Some(-62))
    );
    // A band not in the pool is listed as unknown, with what it said, and is not tracked.
    assert!(bands.iter().all(|b| b["band"] != "AA:BB:CC:DD:EE:01"));
    let unknown = c.get("/api/v1/bands/unknown").json();
    let band = unknown
        .as_array()
        .expect("unknown")
        .iter()
        .find(|b| b["band"] == "AA:BB:CC:DD:EE:01")
        .expect("theengs band");
    assert_eq!(
        (band["scanner"].as_str(), band["battery_percent"].as_u64(), band["strap_closed"].as_bool()),
        (Some("gw-khu-b"), Some(41), Some(false))
    );
    assert_eq!(
        c.get("/api/v1/alerts").json().as_array().map(Vec::len),
        Some(0),
        "unknown bands raise nothing"
    );

    // A burst larger than the broker's outgoing buffer for the box's own link: every message arrives
    // (the link must ask the router for more each time it is paused).
    let burst: String =
        (0..3000).map(|i| format!("{{\"id\":\"D4:E6:F1:A2:B3:C4\",\"rssi\":-{}}}\n", 50 + i % 30)).collect();
    let mut pubber = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-u", "gw-khu-b", "-P", "mat-khau-gateway-1"])
        .args(["-q", "0", "-t", "home/gw-khu-b/BTtoMQTT/D4E6F1A2B3C4", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    use std::io::Write;
    pubber.stdin.take().expect("stdin").write_all(burst.as_bytes()).expect("burst");
    assert!(pubber.wait().expect("mosquitto_pub").success());
    wait_until("all 3,000 messages of the burst", || {
        c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64() == Some(3 + 3000)
    });
}

/// The same broker over TLS with the certificate the box made at its first start, and MQTT 5 on both
/// ports: a device configures one port whatever its protocol version.
#[test]
fn devices_connect_over_tls_and_mqtt_5() {
    let (port, tls_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (plain, tls) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{tls_port}"));
    let b = BoxProcess::start("run", &data, &["--mqtt", &plain, "--mqtt-tls", &tls]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "admin.mqtt", PASSWORD);
    // The gateway in room phong_b07, and a monitor that reads what gateways send.
    assert_eq!(
        c.post_form("/mqtt", &[("name", "phong_b07"), ("password", "mat-khau-gateway-2")]).status,
        303
    );
    let monitor = [("name", "theo-doi"), ("password", "mat-khau-theo-doi"), ("kind", "monitor")];
    assert_eq!(c.post_form("/mqtt", &monitor).status, 303);
    assert_eq!(c.post_json("/api/v1/bands", &serde_json::json!({"id": "d4e6f1a2b3c5"})).status, 201);

    // The certificate is downloadable and is the one the box keeps in its data folder.
    let cert = c.get("/mqtt/box.crt");
    assert_eq!(cert.status, 200);
    assert!(cert.body.starts_with("-----BEGIN CERTIFICATE-----"), "{}", cert.body);
    assert_eq!(cert.body, std::fs::read_to_string(data.join("tls/box.crt")).expect("box.crt"));
    let cafile = dir.path().join("outpost-box.crt");
    std::fs::write(&cafile, &cert.body).expect("cafile");
    let page = c.get("/mqtt").body;
    assert!(page.contains(&format!("127.0.0.1:{tls_port} (TLS")), "{page}");
    assert!(page.contains("id=\"mqtt-fingerprint\""), "{page}");

    // A subscriber on MQTT 5 over TLS hears what a 3.1.1 gateway publishes on the plain port, each
    // message under its own topic though it accepts topic aliases (rumqttd would key them by the
    // subscription's filter: the front does not pass the client's Topic Alias Maximum on).
    let cafile = cafile.to_str().expect("path");
    let tls_v5 = ["-h", "localhost", "-p", &tls_port.to_string(), "--cafile", cafile, "-V", "mqttv5"];
    let subscriber = std::process::Command::new("mosquitto_sub")
        .args(tls_v5)
        .args([
            "-u",
            "theo-doi",
            "-P",
            "mat-khau-theo-doi",
            "-t",
            "espresense/devices/#",
            "-D",
            "connect",
            "topic-alias-maximum",
            "10",
            "-v",
            "-C",
            "2",
            "-W",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let topic = "espresense/devices/mac:d4e6f1a2b3c5/phong_b07";
    let payload = r#"{"id":"mac:d4e6f1a2b3c5","rssi":-64,"distance":2.1}"#;
    assert!(publish(port, "phong_b07", "mat-khau-gateway-2", topic, payload), "3.1.1 on the plain port");
    let other = "espresense/devices/mac:d4e6f1a2b3c6/phong_b07";
    assert!(publish(port, "phong_b07", "mat-khau-gateway-2", other, payload));
    let heard = subscriber.wait_with_output().expect("mosquitto_sub");
    assert!(heard.status.success(), "{}", String::from_utf8_lossy(&heard.stderr));
    assert_eq!(
        String::from_utf8_lossy(&heard.stdout).trim(),
        format!("{topic} {payload}\n{other} {payload}"),
        "each message under its own topic"
    );

    // Publishing over TLS, in both protocol versions, and MQTT 5 on the plain port.
    let tls_v311 = ["-h", "localhost", "-p", &tls_port.to_string(), "--cafile", cafile, "-V", "mqttv311"];
    let plain_v5 = ["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5"];
    for connect in [&tls_v5[..], &tls_v311[..], &plain_v5[..]] {
        assert!(mosquitto_pub(connect, "phong_b07", "mat-khau-gateway-2", topic, payload), "{connect:?}");
        assert!(!mosquitto_pub(connect, "phong_b07", "wrong-password-2", topic, payload), "{connect:?}");
    }
    wait_until("the five sightings in the presence engine", || {
        c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64() == Some(5)
    });

    // A device that does not trust the box's certificate (it trusts another box's) gets nowhere;
    // nor does plain MQTT on the TLS port.
    let other_cert = outpost_tests::another_box_certificate(&dir.path().join("other"));
    let other_cert = other_cert.to_str().expect("path");
    let untrusted = ["-h", "localhost", "-p", &tls_port.to_string(), "--cafile", other_cert];
    assert!(!mosquitto_pub(&untrusted, "phong_b07", "mat-khau-gateway-2", topic, payload));
    let no_tls = ["-h", "127.0.0.1", "-p", &tls_port.to_string()];
    assert!(!mosquitto_pub(&no_tls, "phong_b07", "mat-khau-gateway-2", topic, payload));
    let health = c.get("/api/v1/health").json();
    assert!(health["mqtt"]["connections"]["tls_failed"].as_u64() >= Some(2), "{health}");
    assert_eq!(health["mqtt"]["connections"]["logins_refused"].as_u64(), Some(3), "{health}");
    assert_eq!(health["mqtt"]["overrun"].as_u64(), Some(0), "{health}");
    assert_eq!(c.get("/api/v1/presence").json()["counters"]["sightings"].as_u64(), Some(5));

    // A restart keeps the certificate devices already trust.
    let fingerprint = |page: &str| page.split("id=\"mqtt-fingerprint\">").nth(1).map(|s| s[..95].to_owned());
    let before = fingerprint(&page);
    drop(b);
    let b = BoxProcess::start("run", &data, &["--mqtt", &plain, "--mqtt-tls", &tls]);
    let mut c = Client::new(&b.url);
    c.login("admin.mqtt", PASSWORD);
    assert_eq!(fingerprint(&c.get("/mqtt").body), before);
    assert!(mosquitto_pub(&tls_v5, "phong_b07", "mat-khau-gateway-2", topic, payload));
}

/// A CONNECT of MQTT `version` (4: 3.1.1, 5) with keep-alive 0 written by hand: the CONNACK's
/// return code (reason code in 5).
fn connack_with_keep_alive_0(port: u16, version: u8, user: &str, pass: &str) -> u8 {
    use std::io::{Read, Write};
    let string = |s: &str| [&(s.len() as u16).to_be_bytes()[..], s.as_bytes()].concat();
    let mut body = [string("MQTT"), vec![version, 0xC2, 0, 0]].concat();
    if version == 5 {
        body.push(0); // no properties
    }
    body.extend([string("keepalive-0"), string(user), string(pass)].concat());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    s.write_all(&packet).expect("write");
    let mut answer = [0u8; 4];
    s.read_exact(&mut answer).expect("a CONNACK");
    assert_eq!(answer[0], 0x20, "{answer:?}");
    answer[3]
}
