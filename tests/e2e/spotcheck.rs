//! Spot checks [M7] with the real box, the modem simulator and the manual clock: random checks planned
//! within waking hours, one asked for by staff and answered with a photo and a position (then
//! reviewed beside it), bad photos and positions refused, one missed (an alert after the deadline),
//! and one answered from outside the geofence (an alert at once).

use outpost_sms::sim::{Pace, Simulator};
use outpost_tests::{site_with_people, wait_until, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

pub(crate) const SITE: (f64, f64) = (16.0748, 108.1497);
/// A JPEG's first bytes and end: the box checks what a file is by its bytes.
pub(crate) const JPEG: &[u8] =
    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9";

/// Posts the answer form as a phone's browser does (multipart, with the page's CSRF cookie).
pub(crate) fn answer(
    phone: &mut Client,
    link_path: &str,
    photo: &[u8],
    lat: f64,
    lon: f64,
) -> outpost_tests::Answer {
    let page = phone.get(link_path);
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = phone.cookie("outpost_csrf").expect("the page's CSRF cookie").to_owned();
    let boundary = "----outpost-test";
    let mut body = Vec::new();
    for (name, value) in
        [("latitude", lat.to_string()), ("longitude", lon.to_string()), ("accuracy", "12".to_owned())]
    {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    phone.post_bytes(
        &format!("{link_path}?csrf={csrf}"),
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    )
}

#[test]
fn spot_checks_answered_missed_and_from_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Simulator::start_with(&dir.path().join("modem"), Pace::QUICK).expect("simulator");
    let extra = format!(
        "[site]\nlatitude = {}\nlongitude = {}\ngeofence_m = 150\n[spot_checks]\nper_person_per_day = 2\nmax_photo_bytes = 5000\n",
        SITE.0, SITE.1
    );
    // 06:30 at the site.
    let (mut b, mut c, ids) =
        site_with_people(dir.path(), sim.path(), &extra, "2026-11-20T23:30:00Z", 3, (PASSWORD, &[]));
    let phones: Vec<String> = ids
        .iter()
        .map(|id| c.get(&format!("/api/v1/people/{id}")).json()["phone"].as_str().expect("phone").to_owned())
        .collect();

    // The day's random checks: two each, within 07:00–21:00 at the site, an hour apart.
    b.clock("advance 1m");
    let all = c.get("/api/v1/spotchecks").json();
    let planned: Vec<&Value> =
        all.as_array().expect("checks").iter().filter(|x| x["reason"] == "random").collect();
    assert_eq!(planned.len(), 6, "{all}");
    for id in &ids {
        let mut due: Vec<chrono::DateTime<chrono::Utc>> = planned
            .iter()
            .filter(|x| x["person_id"] == id.as_str())
            .map(|x| x["due_at"].as_str().expect("due").parse().expect("time"))
            .collect();
        due.sort();
        assert_eq!(due.len(), 2);
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("time");
        let (from, to) = (at("2026-11-21T00:00:00Z"), at("2026-11-21T14:00:00Z"));
        assert!(due.iter().all(|d| (from..=to).contains(d)), "{due:?}");
        assert!(due[1] - due[0] >= chrono::Duration::hours(1), "{due:?}");
    }

    // Staff ask for a check of person 0: the SMS carries the link.
    let res = c.post_json("/api/v1/spotchecks", &json!({"person_id": ids[0]}));
    assert_eq!(res.status, 201, "{}", res.body);
    let check0 = res.json()[0]["id"].as_str().expect("id").to_owned();
    let link = |sim: &Simulator, phone: &str| -> String {
        let text = sim
            .sent()
            .into_iter()
            .rev()
            .find(|m| m.to == phone && m.text.contains("/s/"))
            .map(|m| m.text)
            .expect("a spot-check SMS");
        let at = text.find("/s/").expect("link");
        text[at..].split_whitespace().next().expect("path").to_owned()
    };
    wait_until("the SMS to person 0", || {
        sim.sent().iter().any(|m| m.to == phones[0] && m.text.contains("Kiem tra dot xuat"))
    });
    let path0 = link(&sim, &phones[0]);

    // Not a photo, an impossible position: refused, the check still open.
    let mut phone = Client::new(&b.url);
    let res = answer(&mut phone, &path0, b"%PDF-1.7 not a photo", SITE.0, SITE.1);
    assert_eq!(res.status, 422);
    assert!(res.body.contains("không phải ảnh"), "{}", res.body);
    let too_large = [JPEG, &[0u8; 6000][..]].concat();
    let res = answer(&mut phone, &path0, &too_large, SITE.0, SITE.1);
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Ảnh quá lớn (tối đa 4 KB)"), "{}", res.body);
    let res = answer(&mut phone, &path0, JPEG, 95.0, SITE.1);
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Vĩ độ phải từ -90 đến 90"), "{}", res.body);
    // The photo and a position inside: taken; the link then says it is closed.
    let res = answer(&mut phone, &path0, JPEG, SITE.0 + 0.0002, SITE.1);
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("Đã nhận ảnh và vị trí"), "{}", res.body);
    assert_eq!(phone.get(&path0).status, 410);

    // Staff see the photo beside the check, and accept it.
    let list = c.get("/spotchecks");
    assert!(list.body.contains(&format!("/spotchecks/{check0}/photo")), "{}", list.body);
    assert_eq!(c.get_bytes(&format!("/spotchecks/{check0}/photo")), JPEG);
    let res = c.post_json(&format!("/api/v1/spotchecks/{check0}/review"), &json!({"verdict": "accept"}));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.json()["review"].as_str(), res.json()["position_inside"].as_bool()),
        (Some("accepted"), Some(true))
    );

    // A second check of person 0: staff review it beside the photo they accepted before, with its
    // position's result and when it was answered.
    let res = c.post_json("/api/v1/spotchecks", &json!({"person_id": ids[0]}));
    assert_eq!(res.status, 201, "{}", res.body);
    let check1 = res.json()[0]["id"].as_str().expect("id").to_owned();
    wait_until("the second SMS to person 0", || link(&sim, &phones[0]) != path0);
    let path1 = link(&sim, &phones[0]);
    assert_eq!(answer(&mut Client::new(&b.url), &path1, JPEG, SITE.0 + 0.0001, SITE.1).status, 200);
    let list = c.get("/spotchecks");
    let row = list.body.split(&format!("data-check=\"{check1}\"")).nth(1).expect("the check's row");
    let row = row.split("</tr>").next().unwrap_or("");
    for text in [
        format!("/spotchecks/{check1}/photo"),
        format!("/spotchecks/{check0}/photo"),
        "Ảnh đã chấp nhận trước đây".to_owned(),
        "Trong vùng".to_owned(),
        "Trả lời lúc".to_owned(),
    ] {
        assert!(row.contains(&text), "{text} in {row}");
    }

    // Person 2 answers from 450 m away: the location alert at once.
    let res = c.post_json("/api/v1/spotchecks", &json!({"person_id": ids[2]}));
    assert_eq!(res.status, 201);
    wait_until("the SMS to person 2", || {
        sim.sent().iter().any(|m| m.to == phones[2] && m.text.contains("/s/"))
    });
    let res = answer(&mut Client::new(&b.url), &link(&sim, &phones[2]), JPEG, SITE.0 + 0.004, SITE.1);
    assert_eq!(res.status, 200, "{}", res.body);
    let alerts = c.alerts_of("outside_geofence");
    assert!(alerts.iter().any(|a| a["person_id"] == ids[2].as_str()), "{alerts:?}");

    // Person 1 does not answer: 21 minutes later, an alert.
    let res = c.post_json("/api/v1/spotchecks", &json!({"person_id": ids[1]}));
    assert_eq!(res.status, 201);
    b.clock("advance 21m");
    let alerts = c.alerts_of("spot_check_missed");
    assert!(alerts.iter().any(|a| a["person_id"] == ids[1].as_str()), "{alerts:?}");

    // The random ones go out when due: move the clock to the day's end, every one is sent or missed.
    for _ in 0..15 {
        b.clock("advance 1h");
    }
    // (Fifteen hours: the staff session has ended.)
    assert_eq!(c.login("lan.nguyen", PASSWORD).status, 303);
    let all = c.get("/api/v1/spotchecks").json();
    assert!(all.as_array().expect("checks").iter().all(|x| x["state"] != "scheduled"), "{all}");
    wait_until("nine spot-check SMS (six random, three asked for)", || {
        sim.sent().iter().filter(|m| m.text.contains("Kiem tra dot xuat")).count() == 9
    });
}
