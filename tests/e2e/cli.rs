//! The command line as an operator meets it: `print-config` prints the effective configuration, and a
//! bad configuration file stops the box with a message naming the key, before anything is opened.

use std::process::Command;

use outpost_tests::outpost_bin;

#[test]
fn print_config_shows_defaults_and_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(outpost_bin()).arg("print-config").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("schedule = [\"08:00\", \"16:00\", \"21:00\"]"), "{text}");
    let file = dir.path().join("site.toml");
    std::fs::write(
        &file,
        "[site]\nname = \"Khu cách ly Trường Tiểu học Hòa Minh\"\n[alerts]\nfever_celsius = 37.8\n",
    )
    .expect("write");
    let out =
        Command::new(outpost_bin()).args(["print-config", "--config"]).arg(&file).output().expect("run");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("fever_celsius = 37.8") && text.contains("Trường Tiểu học Hòa Minh"), "{text}");
    assert!(text.contains("reminder_after_minutes = 30"), "defaults kept: {text}");
}

#[test]
fn a_bad_configuration_is_refused_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (content, key) in [
        ("[declarations]\nschedule = [\"8h\"]\n", "declarations.schedule"),
        ("[alerts]\nfever_celsius = 80\n", "alerts.fever_celsius"),
        ("[web]\nlisten = \"everywhere\"\n", "web.listen"),
        ("[web]\nlisen = \"0.0.0.0:80\"\n", "lisen"),
        ("[site\n", "TOML"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, content).expect("write");
        let data = dir.path().join("data");
        let out = Command::new(outpost_bin())
            .args(["run", "--config"])
            .arg(&file)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{content}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key) && err.contains("bad.toml"), "{content}: {err}");
        assert!(!data.exists(), "nothing is created for a bad configuration");
    }
    let out = Command::new(outpost_bin())
        .args(["run", "--config", "/nonexistent/outpost.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/outpost.toml"));
}

#[test]
fn sms_encode_and_decode_roundtrip_through_the_cli() {
    let text = "Kết quả xét nghiệm lần 2 của bạn: ÂM TÍNH. Tiếp tục cách ly đến hết ngày 04/12. {Outpost}";
    let out = Command::new(outpost_bin())
        .args(["sms", "encode", "--to", "+84905123456", "--text", text, "--reference", "7"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let pdus: Vec<&str> = stdout.lines().collect();
    assert_eq!(pdus.len(), 2, "{stdout}");
    let mut joined = String::new();
    for (i, pdu) in pdus.iter().enumerate() {
        let out = Command::new(outpost_bin()).args(["sms", "decode", pdu]).output().expect("run");
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(
            (v["type"].as_str(), v["to"].as_str(), v["alphabet"].as_str()),
            (Some("submit"), Some("+84905123456"), Some("ucs2"))
        );
        assert_eq!(
            (v["concat"]["reference"].as_u64(), v["concat"]["seq"].as_u64()),
            (Some(7), Some(i as u64 + 1))
        );
        joined.push_str(v["text"].as_str().expect("text"));
    }
    assert_eq!(joined, text);
    for bad in ["0044039121F30008993092516195800209", "zz", "0003"] {
        let out = Command::new(outpost_bin()).args(["sms", "decode", bad]).output().expect("run");
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decode this PDU"));
    }
    let out = Command::new(outpost_bin())
        .args(["sms", "encode", "--to", "not-a-number", "--text", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a phone number"));
}

#[test]
fn modem_status_and_send_talk_to_a_modem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim =
        outpost_sms::sim::Simulator::start_with(&dir.path().join("modem"), outpost_sms::sim::Pace::QUICK)
            .expect("simulator");
    let port = sim.path().display().to_string();
    let out = Command::new(outpost_bin()).args(["modem", "status", "--port", &port]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["connected"].as_bool(), v["operator"].as_str(), v["signal_dbm"].as_i64()),
        (Some(true), Some("Viettel"), Some(-73))
    );

    let out = Command::new(outpost_bin())
        .args(["sms", "send", "--port", &port, "--to", "0905123456", "--text", "Thử nghiệm modem"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent = sim.sent();
    assert_eq!(
        (sent.len(), sent[0].to.as_str(), sent[0].text.as_str()),
        (1, "0905123456", "Thử nghiệm modem")
    );

    sim.with(|s| s.fail_sends.push_back(28));
    let out = Command::new(outpost_bin())
        .args(["sms", "send", "--port", &port, "--to", "0905123456", "--text", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not sent (permanent): AT+CMGS="),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(outpost_bin())
        .args(["modem", "status", "--port", "/nonexistent/ttyUSB9"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not ready"));
}
