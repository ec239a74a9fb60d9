//! The sites' publicly trusted names (issue 16): the province obtains `<site>.<zone>`'s
//! certificate from an ACME CA (Pebble) with DNS-01, publishing the challenge in its zone on a real
//! DNS server (Knot) by RFC 2136 updates signed with TSIG.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{browser::Driver, PASSWORD};
use outpost_province::dns::{TsigKey, Updater};
use outpost_tests::{
    district_csv, enroll_box, free_port, https_get_as, province_cmd, relay_args, serve_province,
    write_config, BoxProcess, Client, Knot, Pebble, ProvinceProcess,
};

#[test]
fn the_province_publishes_and_removes_a_record_by_rfc_2136() {
    let dir = tempfile::tempdir().expect("tempdir");
    let knot = Knot::start(&dir.path().join("knot"), "sites.test");
    let key = std::fs::read_to_string(&knot.key_file).expect("key");
    let updater = Updater {
        server: knot.addr.clone(),
        zone: "sites.test".into(),
        key: TsigKey::parse(&key).expect("key"),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let name = "_acme-challenge.s1.sites.test";
    rt.block_on(updater.set_txt(name, "first")).expect("published");
    rt.block_on(updater.set_txt(name, "second")).expect("replaced");
    assert_eq!(txt(&knot.addr, name), "\"second\"");
    rt.block_on(updater.remove_txt(name, "second")).expect("removed");
    assert_eq!(txt(&knot.addr, name), "");

    // A key the server does not know, or a name outside the zone, is refused with a clear reason.
    let wrong = TsigKey::parse("hmac-sha256:province-key:d3Jvbmd3cm9uZ3dyb25nd3Jvbmc=").expect("key");
    let forged = Updater { key: wrong, ..updater.clone() };
    let refused = rt.block_on(forged.set_txt(name, "x")).expect_err("a wrong key is refused");
    assert!(format!("{refused:#}").contains("NOTAUTH"), "{refused:#}");
    let outside =
        rt.block_on(updater.set_txt("_acme-challenge.s1.other.test", "x")).expect_err("outside the zone");
    assert!(format!("{outside:#}").contains("NOTZONE"), "{outside:#}");
}

/// The TXT records of `name` as `kdig +short` prints them.
fn txt(server: &str, name: &str) -> String {
    let (host, port) = server.split_once(':').expect("host:port");
    let out = std::process::Command::new("kdig")
        .args([&format!("@{host}"), "-p", port, "TXT", name, "+short"])
        .output()
        .expect("kdig (knot-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A province with the relay and the names (Pebble and Knot), one site `hoa-vang-01`, and its box
/// on a manual clock starting now: the peers, the province, and what a test needs of them.
struct World {
    _knot: Knot,
    pebble: Pebble,
    province: Option<ProvinceProcess>,
    pdata: PathBuf,
    serve_args: Vec<String>,
    addr: String,
    reach: u16,
    https: u16,
    data: PathBuf,
    b: BoxProcess,
    /// The access point's DNS, reading the hosts file the box writes.
    dnsmasq: Dnsmasq,
    _dir: tempfile::TempDir,
}

/// dnsmasq as NetworkManager runs it for a shared connection, reading `hostsdir`.
struct Dnsmasq(std::process::Child, u16);

impl Dnsmasq {
    fn start(hostsdir: &Path) -> Dnsmasq {
        std::fs::create_dir_all(hostsdir).expect("hostsdir");
        let port = free_port();
        let child = std::process::Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args(["--listen-address=127.0.0.1", "--user=root", "--pid-file="])
            .arg(format!("--port={port}"))
            .arg(format!("--hostsdir={}", hostsdir.display()))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian's dnsmasq-base; scripts/test.sh installs it)");
        Dnsmasq(child, port)
    }

    /// The addresses it answers for `name`.
    fn resolve(&self, name: &str) -> String {
        let out = std::process::Command::new("kdig")
            .args(["@127.0.0.1", "-p", &self.1.to_string(), "A", name, "+short"])
            .output()
            .expect("kdig");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ZONE: &str = "sites.test";
/// The site: Ký túc xá Phía Tây, Đà Nẵng, 150 m around it.
const SITE: (f64, f64) = (16.0748, 108.1497);
const NAME: &str = "hoa-vang-01.sites.test";

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let knot = Knot::start(&dir.path().join("knot"), ZONE);
        let pebble = Pebble::start(&dir.path().join("pebble"), &knot.addr);
        let pdata = dir.path().join("province");
        province_cmd(&pdata, &["init"]);
        let token = province_cmd(&pdata, &["site", "add", "hoa-vang-01", "--district", "Hòa Vang"]);
        let (reach, tunnels) = (free_port(), free_port());
        let (roots, key) = (pebble.https_ca.display().to_string(), knot.key_file.display().to_string());
        let serve_args = relay_args(
            ZONE,
            (reach, tunnels),
            &[
                "--acme-directory",
                &pebble.directory,
                "--acme-roots",
                &roots,
                "--dns-server",
                &knot.addr,
                "--tsig-key-file",
                &key,
            ],
        );
        let (province, addr) = serve_province(&pdata, "127.0.0.1:0", &serve_args);
        let dnsmasq = Dnsmasq::start(&dir.path().join("dns"));
        let hosts = dir.path().join("dns/hosts");
        let config = write_config(
            dir.path(),
            &format!(
                "[site]\nid = \"hoa-vang-01\"\nlatitude = {}\nlongitude = {}\ngeofence_m = 150\n[web]\ntls_listen = \"127.0.0.1:0\"\ndns_hosts_file = \"{}\"\n\
                 [sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\nfollow_province_clock_seconds = 0\nreach = \"127.0.0.1:{tunnels}\"\n",
                SITE.0,
                SITE.1,
                hosts.display()
            ),
        );
        let data = dir.path().join("data");
        let out = enroll_box(&config, &data, &addr, &token);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let b = BoxProcess::start("run", &data, &["--config", &config, "--clock", &now]);
        let https = b.https_port();
        World {
            _knot: knot,
            pebble,
            province: Some(province),
            pdata,
            serve_args,
            addr,
            reach,
            https,
            data,
            b,
            dnsmasq,
            _dir: dir,
        }
    }

    /// The end of the trusted certificate the box keeps, once it differs from `before`.
    fn name_cert_after(&self, before: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let end = std::fs::read_to_string(self.data.join("tls/name.crt"))
                .ok()
                .and_then(|pem| outpost_link::ca::first_der(&pem))
                .and_then(|der| outpost_link::ca::validity(&der))
                .map(|(_, end)| end);
            match end {
                Some(end) if Some(end) != before => return end,
                _ => assert!(Instant::now() < deadline, "no new certificate for {NAME} in 90 s"),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn stop_province(&mut self) {
        self.province = None;
    }

    fn start_province(&mut self) {
        self.province = Some(serve_province(&self.pdata, &self.addr, &self.serve_args).0);
    }
}

/// The status line and headers of `GET path` as a phone trusting only `root` (PEM file), by `name`,
/// at 127.0.0.1:`port`; or why there was no answer.
fn phone_get(port: u16, root: &Path, name: &str, path: &str) -> Result<String, String> {
    https_get_as(port, root, name, path)
        .map(|answer| answer.split("\r\n\r\n").next().unwrap_or_default().to_owned())
}

#[test]
fn a_site_gets_its_trusted_name_renews_it_and_loses_it_when_revoked() {
    let mut w = World::new();
    let root = w.data.parent().expect("dir").join("pebble-root.pem");
    std::fs::write(&root, w.pebble.issuing_root()).expect("the root");

    // Issued through Pebble, its challenge published in Knot: a phone that trusts only the public
    // CA reaches the box by name, at the site and from home, and is told to stay on HTTPS.
    let first = w.name_cert_after(None);
    let days = (first - Utc::now()).num_days();
    assert!((88..=90).contains(&days), "a 90-day certificate, not {days} days");
    let at_site = phone_get(w.https, &root, NAME, "/login").expect("at the site");
    assert!(at_site.starts_with("HTTP/1.1 200"), "{at_site}");
    assert!(at_site.contains("strict-transport-security: max-age=31536000"), "{at_site}");
    // On the site's Wi-Fi the access point's DNS answers the name with the box's address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.dnsmasq.resolve(NAME) != "10.42.0.1" {
        assert!(
            Instant::now() < deadline,
            "the access point's DNS does not answer {NAME}: {:?}",
            w.dnsmasq.resolve(NAME)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let login = https_get_as(w.https, &root, NAME, "/login").expect("the login page");
    assert!(!login.contains("trust-box"), "a trusted site needs no instructions to trust it");
    let from_home = phone_get(w.reach, &root, NAME, "/login").expect("from home, through the province");
    assert!(from_home.starts_with("HTTP/1.1 200"), "{from_home}");
    // `outpost.local` keeps the box's own certificate and sends pages on to the name.
    assert!(
        phone_get(w.https, &root, "outpost.local", "/login").is_err(),
        "the public CA never named outpost.local"
    );
    let own = w.data.join("tls/box.crt");
    let local = phone_get(w.https, &own, "outpost.local", "/login?next=/people").expect("outpost.local");
    assert!(local.contains(&format!("location: https://{NAME}:{}/login?next=/people", w.https)), "{local}");

    // A request for another site's name, sent with this site's certificate: the province orders
    // only this site's name, and the CA refuses a request whose names are not the order's.
    let enrolment: outpost_link::site::Enrolment =
        serde_json::from_slice(&std::fs::read(w.data.join("sync/link.json")).expect("link.json"))
            .expect("enrolment");
    let b = &enrolment.bundle;
    let tls = outpost_link::net::client_config(&b.ca_pem, Some((&b.cert_pem, &b.key_pem))).expect("tls");
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::new(vec![format!("other-site.{ZONE}")])
        .expect("params")
        .serialize_request(&key)
        .expect("csr");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let request = (http::Method::POST, "/sync/v1/certificate", csr.der().to_vec());
    let peer = outpost_link::net::Peer::province(&w.addr);
    let (status, _) = rt
        .block_on(outpost_link::net::call(peer, tls, request, 1 << 20, Duration::from_secs(10)))
        .expect("the call");
    assert_eq!(status, 200);
    let name_json = w.pdata.join("sites/hoa-vang-01/name.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let held: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&name_json).expect("name.json")).expect("json");
        if held["last_error"].is_string() {
            break held;
        }
        assert!(Instant::now() < deadline, "the forged request was not refused: {held}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        held["last_error"].as_str().expect("error").contains("refused the certificate request"),
        "{held}"
    );
    assert!(held["csr_hex"].is_null(), "a refused request is not tried again: {held}");
    assert_eq!(w.name_cert_after(None), first, "nothing issued for another name");

    // Renewal two thirds into its life, on the box's clock (which, here, does not follow the
    // province's, so that it can be moved on).
    w.b.clock("advance 61d");
    let second = w.name_cert_after(Some(first));
    assert!(second > first, "the renewed certificate ends later");

    // Offline past the renewal point: caught up at the first link.
    w.stop_province();
    w.b.clock("advance 61d");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(w.name_cert_after(None), second, "nothing new while offline");
    w.start_province();
    let third = w.name_cert_after(Some(second));
    assert!(third > second);

    // A revoked site's name is no longer issued, however long it waits.
    province_cmd(&w.pdata, &["site", "revoke", "hoa-vang-01"]);
    w.b.clock("advance 61d");
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(w.name_cert_after(None), third, "a revoked site got a certificate");
    let held: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.pdata.join("sites/hoa-vang-01/name.json")).expect("the province's record"),
    )
    .expect("json");
    assert!(held["csr_hex"].is_null(), "no request of a revoked site waits: {held}");
}

/// A fresh browser home whose NSS database trusts `root` (PEM) as a CA, as a phone trusts a public CA.
fn browser_home_trusting(home: &Path, root: &Path) -> PathBuf {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("nssdb");
    let db_arg = format!("sql:{}", db.display());
    let ok = |args: &[&str]| {
        let out =
            std::process::Command::new("certutil").args(args).output().expect("certutil (libnss3-tools)");
        assert!(out.status.success(), "certutil {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["-N", "-d", &db_arg, "--empty-password"]);
    ok(&["-A", "-d", &db_arg, "-n", "ACME test CA", "-t", "C,,", "-i", &root.display().to_string()]);
    home.to_owned()
}

/// Waits until the personal page says its last position was sent.
fn position_sent(d: &mut Driver) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = d.script("return document.getElementById('position').getAttribute('data-last')");
        if last == json!("sent") {
            return;
        }
        assert!(Instant::now() < deadline, "the page sent no position: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last position the box holds of person `id`: its time and verdict.
fn last_position(c: &mut Client, id: &str) -> (String, String) {
    let v = c.get(&format!("/api/v1/people/{id}/location")).json();
    (
        v["last"]["at"].as_str().unwrap_or_default().to_owned(),
        v["last"]["verdict"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_phone_browser_reaches_the_box_by_name_over_trusted_https_at_the_site_and_from_home() {
    let mut w = World::new();
    let dir = w.data.parent().expect("dir").to_owned();
    let root = dir.join("pebble-root.pem");
    std::fs::write(&root, w.pebble.issuing_root()).expect("the root");
    w.name_cert_after(None);

    // Staff set the site up over HTTPS (the box's own certificate, at its address).
    let mut c = Client::tls(&format!("https://127.0.0.1:{}", w.https), &w.data.join("tls/box.crt"));
    let link = w.b.setup_link.clone().expect("a setup link");
    c.setup_admin(&link[link.find("/setup/").expect("setup path")..], "lan.nguyen", PASSWORD);
    let today = Utc::now().date_naive();
    let list = district_csv(
        1,
        &today.format("%d/%m/%Y").to_string(),
        &(today + chrono::Duration::days(14)).format("%d/%m/%Y").to_string(),
    );
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &list);
    assert_eq!(res.status, 200, "{}", res.body);
    let id = c.people_ids().remove(0);
    let token =
        c.get(&format!("/api/v1/people/{id}")).json()["declare_token"].as_str().expect("token").to_owned();

    // A phone: a fresh profile trusting only the public CA, reaching the box by its name.
    let home = browser_home_trusting(&dir.join("phone-home"), &root);
    let rules = format!("--host-resolver-rules=MAP {NAME} 127.0.0.1");
    let mut d = Driver::start_with(&dir.join("phone-profile"), Some(&home), &[rules]);
    let origin = format!("https://{NAME}:{}", w.https);
    d.cdp("Browser.grantPermissions", json!({"origin": origin, "permissions": ["geolocation"]}));
    d.cdp(
        "Emulation.setGeolocationOverride",
        json!({"latitude": SITE.0 + 0.0003, "longitude": SITE.1, "accuracy": 10}),
    );
    d.goto(&format!("{origin}/d/{token}"));
    d.find("input[name=temperature]");
    assert!(d.url().starts_with(&origin), "no certificate warning: {}", d.url());
    assert_eq!(d.script("return window.isSecureContext"), json!(true));
    assert_eq!(
        d.script("return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)"),
        json!(true)
    );
    position_sent(&mut d);
    assert_eq!(last_position(&mut c, &id).1, "inside");

    // From home: the same name through the province's relay (here on its own port). The page, its
    // position and a declaration reach the box; TLS still ends there.
    let relay = format!("https://{NAME}:{}", w.reach);
    d.cdp("Browser.grantPermissions", json!({"origin": relay, "permissions": ["geolocation"]}));
    d.goto(&format!("{relay}/d/{token}"));
    d.find("input[name=temperature]");
    assert_eq!(d.script("return window.isSecureContext"), json!(true));
    position_sent(&mut d);
    d.type_into("input[name=temperature]", "36,8");
    d.click("button[type=submit]");
    let thanks = d.text("p.notice");
    assert!(thanks.contains("Đã nhận khai báo"), "{thanks}");
    let declarations = c.get(&format!("/api/v1/people/{id}/declarations")).json();
    assert!(declarations.to_string().contains("36.8"), "{declarations}");
    // The box's link cut while the page is open: the declaration is kept on the phone, says so,
    // and reaches the box by itself once the link is back.
    d.goto(&format!("{relay}/d/{token}"));
    d.find("input[name=temperature]");
    w.stop_province();
    d.type_into("input[name=temperature]", "37,1");
    d.click("button[type=submit]");
    let kept = d.shown_text("#retry-status");
    assert!(kept.contains("Chưa gửi được"), "{kept}");
    assert!(!c.get(&format!("/api/v1/people/{id}/declarations")).body.contains("37.1"));
    w.start_province();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !d.source().contains("Đã nhận khai báo") {
        assert!(Instant::now() < deadline, "the kept declaration never reached the box");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(c.get(&format!("/api/v1/people/{id}/declarations")).body.contains("37.1"), "nothing lost");

    // A spot check: its SMS names the site by its name; answered from home with a photo and the
    // phone's position, through the province, to the box.
    let res = c.post_json("/api/v1/spotchecks", &json!({"person_id": id}));
    assert_eq!(res.status, 201, "{}", res.body);
    let check = res.json()[0]["id"].as_str().expect("id").to_owned();
    let outbox = c.get("/api/v1/outbox").json().to_string();
    let at = outbox.find(&format!("https://{NAME}:{}/s/", w.https)).expect("the SMS links to the name");
    let path = outbox[at..].split(['/', ' ', '"']).nth(4).map(|t| format!("/s/{t}")).expect("the link");
    d.goto(&format!("{relay}{path}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.text("#spot-position").starts_with('✓') {
        assert!(Instant::now() < deadline, "the spot-check page has no position");
        std::thread::sleep(Duration::from_millis(100));
    }
    let photo = dir.join("selfie.jpg");
    std::fs::write(&photo, crate::spotcheck::JPEG).expect("photo");
    d.type_into("#spot-photo", &photo.display().to_string());
    d.click("#spot-form button[type=submit]");
    assert!(d.text("p.notice").contains("Đã nhận ảnh và vị trí"));
    let checks = c.get("/api/v1/spotchecks").json();
    let answered = checks
        .as_array()
        .expect("checks")
        .iter()
        .find(|k| k["id"] == json!(check))
        .expect("the check")
        .clone();
    assert_eq!(
        (answered["state"].as_str(), answered["position_inside"].as_bool()),
        (Some("answered"), Some(true)),
        "{answered}"
    );
    assert_eq!(c.get_bytes(&format!("/spotchecks/{check}/photo")), crate::spotcheck::JPEG);
    // Back at the site's page: its position now. Its timer is watched (the page's own `setInterval`,
    // recorded as it is asked for: the test does not wait five real minutes for it to fire).
    d.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.__timers = []; const si = window.setInterval.bind(window); \
                          window.setInterval = function (f, ms) { window.__timers.push({f: f, ms: ms}); return si(f, ms); };"}),
    );
    d.goto(&format!("{origin}/d/{token}"));
    position_sent(&mut d);
    let (first_at, verdict) = last_position(&mut c, &id);
    assert_eq!(verdict, "inside");
    let every = d.script("return window.__timers.map(function (t) { return t.ms; })");
    assert!(
        every.as_array().is_some_and(|t| t.contains(&json!(300_000))),
        "a position every 5 minutes: {every}"
    );
    // Five minutes later, on the box's manual clock and the page's timer: the phone is 330 m away,
    // and the box raises the alert at once.
    w.b.clock("advance 5m");
    d.cdp(
        "Emulation.setGeolocationOverride",
        json!({"latitude": SITE.0 + 0.003, "longitude": SITE.1, "accuracy": 15}),
    );
    // The page takes a fix up to a minute old (`maximumAge`): the phone's new place shows after it.
    std::thread::sleep(Duration::from_secs(61));
    d.script("document.getElementById('position').removeAttribute('data-last'); window.__timers.filter(function (t) { return t.ms === 300000; })[0].f();");
    position_sent(&mut d);
    let (at, verdict) = last_position(&mut c, &id);
    assert_eq!(verdict, "outside");
    let minutes = (DateTime::parse_from_rfc3339(&at).expect("time")
        - DateTime::parse_from_rfc3339(&first_at).expect("time"))
    .num_minutes();
    assert_eq!(minutes, 5, "{first_at} → {at}");
    let alerts = c.alerts_of("outside_geofence");
    assert!(alerts.iter().any(|a| a["person_id"] == json!(id)), "{alerts:?}");
}
