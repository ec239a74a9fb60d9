//! Location [M8] with the real box, the modem simulator and the manual clock: positions from the
//! personal page's API judged against the site's geofence and a home geofence, the alert at once (and
//! to the on-duty phone) and only once per absence, and impossible positions refused.

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{site_with_people, wait_until, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

/// The site: Ký túc xá Phía Tây, Đà Nẵng, 150 m around it.
const SITE: (f64, f64) = (16.0748, 108.1497);

#[test]
fn positions_outside_a_geofence_raise_an_alert_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let mqtt_port = outpost_tests::free_port().to_string();
    let mqtt = format!("127.0.0.1:{mqtt_port}");
    let extra = format!(
        "[site]\nlatitude = {}\nlongitude = {}\ngeofence_m = 150\n[alerts]\non_duty_phones = [\"0905999888\"]\n",
        SITE.0, SITE.1
    );
    let (b, mut c, ids) = site_with_people(
        dir.path(),
        sim.path(),
        &extra,
        "2026-11-21T02:00:00Z",
        2,
        (PASSWORD, &["--mqtt", &mqtt]),
    );
    let token = |c: &mut Client, id: &str| {
        c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned()
    };
    let (a, home) = (token(&mut c, &ids[0]), token(&mut c, &ids[1]));
    // The person's page, as their phone posts it (no session).
    let mut phone = Client::new(&b.url);
    let mut report = |token: &str, lat: f64, lon: f64, accuracy: f64| -> (u16, Value) {
        let res = phone.post_json(
            &format!("/api/v1/position/{token}"),
            &json!({"latitude": lat, "longitude": lon, "accuracy": accuracy}),
        );
        (res.status, serde_json::from_str(&res.body).unwrap_or(Value::Null))
    };

    let (status, v) = report(&a, SITE.0 + 0.0003, SITE.1, 12.0);
    assert_eq!((status, v["verdict"].as_str()), (200, Some("inside")), "{v}");
    // About 330 m north: clearly out. The alert comes at once, and to the on-duty phone.
    let (_, v) = report(&a, SITE.0 + 0.003, SITE.1, 15.0);
    assert_eq!((v["verdict"].as_str(), v["alerted"].as_bool()), (Some("outside"), Some(true)), "{v}");
    let alert = c.alerts_of("outside_geofence").first().expect("an alert").clone();
    assert_eq!(
        (alert["person_id"].as_str(), alert["severity"].as_str()),
        (Some(ids[0].as_str()), Some("severe"))
    );
    assert_eq!(alert["raised_at"], "2026-11-21T02:00:00Z", "the same minute");
    wait_until("the on-duty SMS", || {
        sim.sent().iter().any(|m| m.to == "0905999888" && m.text.contains("ra khoi vung cach ly"))
    });
    // Still out: no second alert for the same absence; a coarse fix is kept but not judged.
    let (_, v) = report(&a, SITE.0 + 0.004, SITE.1, 10.0);
    assert_eq!(v["alerted"], false, "{v}");
    let (_, v) = report(&a, SITE.0 + 0.02, SITE.1, 900.0);
    assert_eq!(v["verdict"], "unsure", "{v}");
    assert_eq!(c.alerts_of("outside_geofence").len(), 1);
    let location = c.get(&format!("/api/v1/people/{}/location", ids[0])).json();
    assert_eq!(
        location["last"]["verdict"], "outside",
        "the coarse fix does not change the verdict: {location}"
    );
    assert!(c.get(&format!("/people/{}", ids[0])).body.contains("Ngoài vùng"));

    // Impossible positions: refused, nothing kept.
    for bad in [
        json!({"latitude": 91.0, "longitude": 108.0, "accuracy": 5.0}),
        json!({"latitude": 16.0, "longitude": 200.0, "accuracy": 5.0}),
        json!({"latitude": 16.0, "longitude": 108.0, "accuracy": 0.0}),
        json!({"latitude": "x"}),
    ] {
        let res = phone.post_json(&format!("/api/v1/position/{a}"), &bad);
        assert!(res.status == 422 || res.status == 400, "{bad}: {} {}", res.status, res.body);
    }
    assert_eq!(
        phone
            .post_json(
                "/api/v1/position/0123456789abcdef0123456789abcdef",
                &json!({"latitude": 16.0, "longitude": 108.0, "accuracy": 5.0})
            )
            .status,
        404
    );

    // Home quarantine 2 km away: the site is outside that home's 100 m.
    let res = c.post_json(&format!("/api/v1/people/{}/geofence", ids[1]), &json!({"latitude": SITE.0 + 0.018, "longitude": SITE.1, "radius_m": 100, "address": "12 Nguyễn Lương Bằng"}));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        c.post_json(
            &format!("/api/v1/people/{}/geofence", ids[1]),
            &json!({"latitude": 16.0, "longitude": 108.0, "radius_m": 5})
        )
        .status,
        422,
        "a 5 m radius"
    );
    let mut phone = Client::new(&b.url);
    let res = phone.post_json(
        &format!("/api/v1/position/{home}"),
        &json!({"latitude": SITE.0 + 0.018, "longitude": SITE.1, "accuracy": 8.0}),
    );
    assert_eq!(serde_json::from_str::<Value>(&res.body).expect("json")["verdict"], "inside");
    let res = phone.post_json(
        &format!("/api/v1/position/{home}"),
        &json!({"latitude": SITE.0, "longitude": SITE.1, "accuracy": 8.0}),
    );
    assert_eq!(serde_json::from_str::<Value>(&res.body).expect("json")["alerted"], true, "out of the home");
    assert_eq!(c.alerts_of("outside_geofence").len(), 2);

    // Person 0's app publishing over MQTT (documented topic and payload), with a device account of
    // its own bound to the person: its topic names the device, never the person's link.
    let app = [
        ("name", "app-vitri"),
        ("password", "mat-khau-ung-dung"),
        ("kind", "app"),
        ("person", ids[0].as_str()),
    ];
    assert_eq!(c.post_form("/mqtt", &app).status, 303);
    let nobody =
        [("name", "app-x"), ("password", "mat-khau-ung-dung"), ("kind", "app"), ("person", "p-none")];
    assert_eq!(c.post_form("/mqtt", &nobody).status, 422, "an app for no one");
    let connect = ["-h", "127.0.0.1", "-p", &mqtt_port];
    let topic = "outpost/position/app-vitri";
    let publish = |c: &mut Client, lat: f64, verdict: &str| {
        let payload = json!({"latitude": lat, "longitude": SITE.1, "accuracy": 9.0}).to_string();
        assert!(outpost_tests::mosquitto_pub(&connect, "app-vitri", "mat-khau-ung-dung", topic, &payload));
        wait_until(&format!("the app's position {verdict}"), || {
            c.get(&format!("/api/v1/people/{}/location", ids[0])).json()["last"]["verdict"] == verdict
        });
    };
    // Person 0 was outside (one alert, still open); back inside, then out again.
    publish(&mut c, SITE.0, "inside");
    publish(&mut c, SITE.0 + 0.005, "outside");
    // The first alert is still open: no second one for person 0 yet.
    assert_eq!(c.alerts_of("outside_geofence").len(), 2);
    // The old topic with a person's link is no topic any device may publish to.
    assert!(outpost_tests::mosquitto_pub(
        &connect,
        "app-vitri",
        "mat-khau-ung-dung",
        &format!("outpost/position/{a}"),
        &json!({"latitude": SITE.0, "longitude": SITE.1, "accuracy": 9.0}).to_string(),
    ));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(c.get(&format!("/api/v1/people/{}/location", ids[0])).json()["last"]["verdict"], "outside");
    assert!(c.get("/api/v1/health").json()["mqtt"]["connections"]["denied"].as_u64() >= Some(1));
}
