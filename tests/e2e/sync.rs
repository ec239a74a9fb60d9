//! A box and the provincial server as real processes on loopback: the province makes its CA and a
//! site's one-time token, the box enrols with it and then pushes what it records; the province
//! holds it; when the province is killed the box keeps working and says so on its health page.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use outpost_tests::{district_csv, province_bin, wait_until, write_config, BoxProcess, Client};

use crate::PASSWORD;

fn province(data: &std::path::Path, args: &[&str]) -> String {
    let out =
        Command::new(province_bin()).arg("--data").arg(data).args(args).output().expect("outpost-province");
    assert!(out.status.success(), "outpost-province {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_box_enrols_and_its_records_reach_the_province() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdata, data) = (dir.path().join("province"), dir.path().join("box"));
    let fingerprint = province(&pdata, &["init"]);
    assert!(fingerprint.starts_with("CA fingerprint (SHA-256): "), "{fingerprint}");
    let token = province(&pdata, &["site", "add", "demo-site", "--district", "Quận Liên Chiểu"]);
    let mut server = Command::new(province_bin())
        .arg("--data")
        .arg(&pdata)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let addr = line.trim().rsplit("https://").next().expect("address").to_owned();

    let config = write_config(dir.path(), "[sync]\ninterval_seconds = 1\nmax_backoff_seconds = 2\n");
    let enroll = |token: &str| {
        Command::new(outpost_tests::outpost_bin())
            .args(["enroll", "--config", &config, "--data"])
            .arg(&data)
            .args(["--province", &addr, "--token", token])
            .output()
            .expect("outpost enroll")
    };
    let wrong = enroll(&format!("other-site{}", &token[token.find('.').expect("dot")..]));
    assert!(!wrong.status.success());
    let out = enroll(&token);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!enroll(&token).status.success(), "a token works once");

    let b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup"), "lan.nguyen", PASSWORD);
    let res = c.post_bytes("/api/v1/people/import", "text/csv", &district_csv(5, "21/11/2026", "04/12/2026"));
    assert_eq!(res.status, 200, "{}", res.body);
    wait_until("the province to acknowledge everything", || {
        let h = c.get("/api/v1/health").json();
        h["sync"]["pending"] == 0
            && h["sync"]["last_success"].is_string()
            && h["sync"]["exchanges"].as_u64() >= Some(2)
    });
    assert!(c.get("/health").body.contains("id=\"health-sync\""));

    // The province goes away: the box keeps serving and shows the failures.
    let _ = server.kill();
    let _ = server.wait();
    wait_until("the box to notice", || {
        c.get("/api/v1/health").json()["sync"]["failures_in_a_row"].as_u64() >= Some(1)
    });
    assert_eq!(c.get("/healthz").status, 200);
    let counts: serde_json::Value =
        serde_json::from_str(&province(&pdata, &["site", "show", "demo-site"])).expect("counts");
    assert_eq!(counts["person"], 5, "{counts}");
    std::thread::sleep(Duration::from_millis(10));
}
