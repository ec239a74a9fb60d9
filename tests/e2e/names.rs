//! The sites' publicly trusted names (issue 16): the province obtains `<site>.<zone>`'s
//! certificate from an ACME CA (Pebble) with DNS-01, publishing the challenge in its zone on a real
//! DNS server (Knot) by RFC 2136 updates signed with TSIG.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use outpost_province::dns::{TsigKey, Updater};
use outpost_tests::{
    enroll_box, free_port, https_get_as, province_cmd, serve_province, write_config, BoxProcess, Knot,
    Pebble, ProvinceProcess,
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
const NAME: &str = "hoa-vang-01.sites.test";

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let knot = Knot::start(&dir.path().join("knot"), ZONE);
        let pebble = Pebble::start(&dir.path().join("pebble"), &knot.addr);
        let pdata = dir.path().join("province");
        province_cmd(&pdata, &["init"]);
        let token = province_cmd(&pdata, &["site", "add", "hoa-vang-01", "--district", "Hòa Vang"]);
        let (reach, tunnels, https) = (free_port(), free_port(), free_port());
        let serve_args: Vec<String> = [
            "--zone",
            ZONE,
            "--reach",
            &format!("127.0.0.1:{reach}"),
            "--tunnels",
            &format!("127.0.0.1:{tunnels}"),
            "--acme-directory",
            &pebble.directory,
            "--acme-roots",
            &pebble.https_ca.display().to_string(),
            "--dns-server",
            &knot.addr,
            "--tsig-key-file",
            &knot.key_file.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        let (province, addr) = serve_province(&pdata, "127.0.0.1:0", &serve_args);
        let dnsmasq = Dnsmasq::start(&dir.path().join("dns"));
        let hosts = dir.path().join("dns/hosts");
        let config = write_config(
            dir.path(),
            &format!(
                "[site]\nid = \"hoa-vang-01\"\n[web]\ntls_listen = \"127.0.0.1:{https}\"\ndns_hosts_file = \"{}\"\n\
                 [sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\nfollow_province_clock_seconds = 0\nreach = \"127.0.0.1:{tunnels}\"\n",
                hosts.display()
            ),
        );
        let data = dir.path().join("data");
        let out = enroll_box(&config, &data, &addr, &token);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let b = BoxProcess::start("run", &data, &["--config", &config, "--clock", &now]);
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
