//! The box over HTTPS (issue 16, its first part): with `web.tls_listen`, the web UI and API answer
//! over TLS with the box's certificate to a client that trusts it and reaches the box by name, the
//! plain port only redirects there (and answers `/healthz`), and cookies are `Secure`.
//!
//! Reach from home: a province serving the relay for `*.sites.test`, boxes that keep a tunnel open
//! to it, and phones (Python's `ssl`, trusting only the box's certificate) that reach a box through
//! the province by its name; forged names, a flood towards one site, a link cut.

use std::{path::Path, process::Command, time::Duration};

use outpost_tests::{
    enroll_box, free_port, https_get_as, province_cmd, relay_args, serve_province, serve_province_logging,
    write_config, BoxProcess, Client, ProvinceProcess,
};

/// The status line and headers of `GET path` as `outpost.local`.
fn https_get(port: u16, cafile: &Path, path: &str) -> String {
    let answer = https_get_as(port, cafile, "outpost.local", path).unwrap_or_else(|e| panic!("{e}"));
    answer.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[test]
fn the_web_answers_over_https_by_name_and_the_plain_port_redirects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let https = free_port();
    let config = write_config(dir.path(), &format!("[web]\ntls_listen = \"127.0.0.1:{https}\"\n"));
    let data = dir.path().join("data");
    let b = BoxProcess::start("run", &data, &["--config", &config]);
    assert!(
        b.printed.iter().any(|l| l.starts_with(&format!("HTTPS on 127.0.0.1:{https}"))),
        "{:?}",
        b.printed
    );

    // The plain port: /healthz for the service manager, everything else sent to HTTPS.
    let mut plain = Client::new(&b.url);
    assert_eq!(plain.get("/healthz").status, 200);
    let res = plain.get("/login?next=/people");
    assert_eq!(res.status, 308);
    assert_eq!(
        res.location.as_deref(),
        Some(format!("https://127.0.0.1:{https}/login?next=/people").as_str())
    );

    // Over TLS by name, trusting the box's certificate: the page, and its cookie Secure.
    let cafile = data.join("tls/box.crt");
    let head = https_get(https, &cafile, "/login");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie =
        head.lines().find(|l| l.to_lowercase().starts_with("set-cookie: outpost_csrf=")).expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(https_get(https, &cafile, "/healthz").starts_with("HTTP/1.1 200"));
    // With no trusted certificate yet, the login page says how to trust the box's own, which anyone
    // may download.
    let fingerprint =
        b.printed.iter().find_map(|l| l.split("the box's certificate: ").nth(1)).expect("printed");
    let login = https_get_as(https, &cafile, "outpost.local", "/login").expect("login");
    assert!(
        login.contains("id=\"trust-box\"") && login.contains(fingerprint.trim_end_matches(')')),
        "{login}"
    );
    let own = https_get_as(https, &cafile, "outpost.local", "/box.crt").expect("the certificate");
    assert!(own.starts_with("HTTP/1.1 200") && own.contains("-----BEGIN CERTIFICATE-----"), "{own}");

    // A client that does not trust the certificate gets nowhere.
    let other = outpost_tests::another_box_certificate(&dir.path().join("other"));
    let refused = Command::new("python3")
        .args(["-c", "import socket,ssl,sys; ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='outpost.local')", &https.to_string(), &other.display().to_string()])
        .output()
        .expect("python3");
    assert!(!refused.status.success(), "a certificate it does not trust is refused");
}

/// The zone of the sites' names in these tests.
const ZONE: &str = "sites.test";

/// A province serving the relay, with sites `ids` added: the process, its sync address, the relay's
/// port for phones, its port for tunnels, and each site's enrolment token.
fn province_with_relay(
    pdata: &Path,
    ids: &[&str],
    per_site: usize,
) -> (ProvinceProcess, String, u16, u16, Vec<String>) {
    province_cmd(pdata, &["init"]);
    let tokens =
        ids.iter().map(|id| province_cmd(pdata, &["site", "add", id, "--district", "Hòa Vang"])).collect();
    let (reach, tunnels) = (free_port(), free_port());
    let log = std::fs::File::create(pdata.with_extension("log")).expect("the province's log");
    let (server, addr) = serve_province_logging(
        pdata,
        "127.0.0.1:0",
        &relay_args(ZONE, (reach, tunnels), &["--reach-per-site", &per_site.to_string()]),
        log.into(),
    );
    (server, addr, reach, tunnels, tokens)
}

/// A box for site `id` in `dir`, enrolled with the province at `addr` and keeping its tunnel open
/// at `tunnels`; its certificate names `<id>.sites.test`. The process and its certificate's file.
fn box_reached_from_home(
    dir: &Path,
    id: &str,
    (addr, tunnels, token): (&str, u16, &str),
) -> (BoxProcess, std::path::PathBuf) {
    let config = write_config(
        dir,
        &format!(
            "[site]\nid = \"{id}\"\n[web]\ntls_listen = \"127.0.0.1:0\"\n[tls]\nnames = [\"{id}.{ZONE}\"]\n\
             [sync]\ninterval_seconds = 5\nmax_backoff_seconds = 10\nreach = \"127.0.0.1:{tunnels}\"\n"
        ),
    );
    let data = dir.join("data");
    let out = enroll_box(&config, &data, addr, token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b = BoxProcess::start("run", &data, &["--config", &config]);
    (b, data.join("tls/box.crt"))
}

/// Waits until a phone reaches `name` through the relay at `port`: the answer to `/healthz`.
fn reached(port: u16, cafile: &Path, name: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let last = loop {
        match https_get_as(port, cafile, name, "/healthz") {
            Ok(answer) => break answer,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{name} not reached through the relay: {e}")
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    last
}

#[test]
fn a_phone_from_home_reaches_the_box_through_the_province_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    let (mut province, addr, reach, tunnels, tokens) = province_with_relay(&pdata, &["hoa-vang-01"], 64);
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    let (_b, cafile) = box_reached_from_home(&site, "hoa-vang-01", (&addr, tunnels, &tokens[0]));
    let name = format!("hoa-vang-01.{ZONE}");

    // Through the province, by name, TLS ending at the box: its certificate, its pages.
    assert!(reached(reach, &cafile, &name).starts_with("HTTP/1.1 200"));
    let marker = "reach-marker-7Q2";
    let page = https_get_as(reach, &cafile, &name, &format!("/login?next=/people&{marker}=1"))
        .expect("the login page");
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<form"), "{page}");
    assert!(page.contains("Secure"), "its cookie is Secure: {page}");
    // The province carried ciphertext: nothing it keeps or prints holds what the phone asked for.
    let mut kept = String::new();
    for entry in walk(&pdata) {
        kept.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap_or_default()));
    }
    assert!(!kept.contains(marker), "the province's folder holds the phone's request");
    let log = std::fs::read_to_string(pdata.with_extension("log")).expect("the province's log");
    assert!(log.contains("hoa-vang-01") && !log.contains(marker), "the province logged the request: {log}");

    // Names that are not a site's under the zone, or a site without a box, go nowhere.
    for forged in [
        "other-site.sites.test",
        "hoa-vang-01.sites.test.evil.test",
        "sites.test",
        "hoa-vang-01",
        "localhost",
    ] {
        let refused = https_get_as(reach, &cafile, forged, "/healthz");
        assert!(refused.is_err(), "{forged} was answered: {refused:?}");
    }

    // The link cut: the province stops; the phone's connection fails cleanly (refused at once, no
    // hang). The box dials again by itself when the province is back.
    province.kill().expect("kill");
    province.wait().expect("wait");
    let began = std::time::Instant::now();
    assert!(https_get_as(reach, &cafile, &name, "/healthz").is_err());
    assert!(began.elapsed() < Duration::from_secs(5), "a cut link fails at once");
    let (_province, _) = serve_province(&pdata, &addr, &relay_args(ZONE, (reach, tunnels), &[]));
    assert!(reached(reach, &cafile, &name).starts_with("HTTP/1.1 200"));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_flood_towards_one_site_does_not_starve_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdata = dir.path().join("province");
    let (_province, addr, reach, tunnels, tokens) = province_with_relay(&pdata, &["site-a", "site-b"], 8);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).expect("a");
    std::fs::create_dir_all(&b).expect("b");
    let (_box_a, cert_a) = box_reached_from_home(&a, "site-a", (&addr, tunnels, &tokens[0]));
    let (_box_b, cert_b) = box_reached_from_home(&b, "site-b", (&addr, tunnels, &tokens[1]));
    let (name_a, name_b) = (format!("site-a.{ZONE}"), format!("site-b.{ZONE}"));
    reached(reach, &cert_a, &name_a);
    reached(reach, &cert_b, &name_b);

    // 40 connections to site A that finish TLS and then say nothing, held for 8 s.
    let flood = r#"
import socket, ssl, sys, time
port, cafile, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
held = []
for _ in range(40):
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname=name)
        held.append(s)
    except Exception:
        pass
print(len(held), flush=True)
time.sleep(8)
"#;
    let mut flood = Command::new("python3")
        .args(["-c", flood, &reach.to_string(), &cert_a.display().to_string(), &name_a])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut held = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(flood.stdout.as_mut().expect("stdout")),
        &mut held,
    )
    .expect("the flood's count");
    let held: usize = held.trim().parse().expect("a count");
    assert!(held <= 8, "site A took {held} phones past its share of the relay (8)");
    // While A's share is taken: A refuses one more, B answers at once.
    assert!(https_get_as(reach, &cert_a, &name_a, "/healthz").is_err(), "A past its share");
    let began = std::time::Instant::now();
    assert!(https_get_as(reach, &cert_b, &name_b, "/healthz")
        .expect("B during the flood")
        .starts_with("HTTP/1.1 200"));
    assert!(began.elapsed() < Duration::from_secs(3), "B waited {:?}", began.elapsed());
    let _ = flood.wait();
    // The flood gone, A answers again.
    reached(reach, &cert_a, &name_a);
}
