//! `outpost ble scan` against a mock BlueZ (the same helper the driver's own test uses: a private
//! `dbus-daemon` and python-dbusmock's `bluez5` template): whoever sets up a site sees each band the
//! adapter hears, with its battery and strap, one JSON line each.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

use outpost_tests::outpost_bin;
use serde_json::Value;

#[test]
fn ble_scan_prints_what_the_adapter_hears() {
    let mut helper = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../drivers/ble/tests/bluez_mock.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is missing");
    let mut stdin = helper.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(helper.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read");
    let bus = first
        .strip_prefix("bus ")
        .unwrap_or_else(|| {
            panic!("no mock BlueZ (scripts/test.sh installs dbus-daemon and python3-dbusmock): {first:?}")
        })
        .trim()
        .to_owned();
    let mut send = move |command: &str| {
        writeln!(stdin, "{command}").expect("write");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        assert!(line.starts_with("ok"), "{command}: {line}");
    };
    send("adapter hci0");
    send("device hci0 D4:E6:F1:A2:B3:C7");
    let scan = Command::new(outpost_bin())
        .args(["ble", "scan", "--seconds", "5", "--adapter", "hci0"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("outpost");
    std::thread::sleep(Duration::from_millis(1500));
    for rssi in [-61, -62, -63] {
        // 77 %, strap opened.
        send(&format!("adv D4:E6:F1:A2:B3:C7 {rssi} ffff014d000900"));
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = scan.wait_with_output().expect("outpost ble scan");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let band = lines
        .iter()
        .find(|l| l["band"] == "D4:E6:F1:A2:B3:C7" && l["rssi"] == -63)
        .unwrap_or_else(|| panic!("the band's last advertisement: {lines:?}"));
    assert_eq!(
        (band["battery_percent"].as_u64(), band["strap_closed"].as_bool()),
        (Some(77), Some(false)),
        "{band}"
    );
    assert_eq!(band["scanner"], "box");
    drop(send);
    let _ = helper.wait();
}
