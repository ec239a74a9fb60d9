//! The box when what is around it fails [M16]: a full SD card, one the kernel turned read-only after
//! an error, a missing modem, a missing Bluetooth adapter, a configuration file that no longer
//! loads. Each shows on the health page (and `/healthz`, `/metrics`, the log); the box keeps
//! serving what it can, and nothing already stored is lost.
//!
//! The card failures run the real binary on a file system of its own, in a private mount namespace
//! (`unshare`): a small tmpfs filled up, and an ext4 image (on a loop device) whose kernel error
//! handling is triggered through `/sys/fs/ext4/<dev>/trigger_fs_error`, as a failing card does.
//! They need root, as `scripts/test.sh` in CI has.

use std::{path::Path, process::Command};

use outpost_tests::{wait_until, write_config, BoxProcess, Client};
use serde_json::{json, Value};

use crate::PASSWORD;

/// Whether this machine lets the test mount a file system of its own (`loop`: an image on a loop
/// device too): root, mount namespaces, loop devices. Says why not when it cannot.
fn can_mount(loop_device: bool) -> bool {
    let ok = |program: &str, args: &[&str]| {
        Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
    };
    let why = if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    {
        "it needs root (CI runs scripts/test.sh as root)"
    } else if !ok(
        "unshare",
        &[
            "--mount",
            "--propagation",
            "private",
            "--",
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            "/mnt",
        ],
    ) {
        "this machine does not allow a private mount namespace"
    } else if loop_device && !ok("losetup", &["--find"]) {
        "this machine has no free loop device"
    } else {
        return true;
    };
    eprintln!("skipped: {why}");
    false
}

fn problems(c: &mut Client) -> Vec<String> {
    let h = c.get("/api/v1/health");
    assert_eq!(h.status, 200, "{}", h.body);
    h.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["code"].as_str().expect("code").to_owned())
        .collect()
}

fn admitted(c: &mut Client) -> (String, String) {
    c.admit("Lý Văn Tâm", "0905777888", "048123456711")
}

fn declare(c: &mut Client, token: &str) -> outpost_tests::Answer {
    c.post_json(&format!("/api/v1/declare/{token}"), &json!({"temperature": "36.5", "symptoms": []}))
}

/// What a card that takes no more writes must look like: declarations refused with a message,
/// the problem on the health page and in `/healthz`, and what is stored still readable.
fn check_refuses_writes_but_serves_reads(
    c: &mut Client,
    person: &str,
    token: &str,
    code: &str,
    words: &str,
    stored: &str,
) {
    let mut refused = None;
    wait_until("a declaration is refused", || {
        let a = declare(c, token);
        (a.status != 201).then(|| refused = Some(a)).is_some()
    });
    let refused = refused.expect("refused");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"], "storage_failing", "{}", refused.body);
    assert!(refused.body.contains("Thẻ nhớ của hộp không ghi được"), "{}", refused.body);
    wait_until("the problem on the health page", || problems(c).iter().any(|p| p == code));
    let page = c.get("/health");
    assert!(page.body.contains(words), "the health page names the problem: {}", page.body);
    let healthz = c.get("/healthz");
    assert_eq!(healthz.status, 503, "{}", healthz.body);
    assert_eq!(healthz.json()["status"], "degraded");
    let metrics = c.get("/metrics");
    assert!(metrics.body.contains("outpost_store_write_failing 1"), "{}", metrics.body);
    // What is stored can still be read (but a person's ID number: showing it needs its audit entry).
    assert!(c.get("/api/v1/people").body.contains(person));
    let decls = c.get(&format!("/api/v1/people/{person}/declarations"));
    assert_eq!(decls.status, 200, "{}", decls.body);
    assert!(
        decls.json().as_array().expect("list").iter().any(|d| d["id"] == stored),
        "the declaration made before is there"
    );
}

/// A box on a file system of its own: `script` (run by `sh -c` in a private mount namespace, with
/// `arg` as `$0`) mounts it and execs the box. Signed in, one person admitted, one declaration
/// stored: the box, the client, the person, their token and the declaration's id.
fn box_on_card(script: &str, arg: &str, data: &Path) -> (BoxProcess, Client, String, String, String) {
    let wrapper = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, arg];
    let b = BoxProcess::start_wrapped(&wrapper, "run", data, &[]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.card", PASSWORD);
    let (person, token) = admitted(&mut c);
    let stored = declare(&mut c, &token).json()["id"].as_str().expect("stored").to_owned();
    (b, c, person, token, stored)
}

#[test]
fn a_full_sd_card_refuses_new_writes_clearly_and_recovers_when_space_is_freed() {
    if !can_mount(false) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card");
    std::fs::create_dir_all(&card).expect("mkdir");
    let card_s = card.display().to_string();
    let script = r#"mount -t tmpfs -o size=400m tmpfs "$0" && exec "$@""#;
    let (mut b, mut c, person, token, stored) = box_on_card(script, &card_s, &card.join("data"));
    assert!(problems(&mut c).is_empty(), "{:?}", problems(&mut c));

    let in_box = |command: &str| {
        Command::new("nsenter")
            .args(["--target", &b.pid().to_string(), "--mount", "--", "sh", "-c", command, card_s.as_str()])
            .status()
            .expect("nsenter")
    };
    // The card fills up (a camera's photos, a log gone wild) to 16 MB free.
    let fill = r#"avail=$(df -k --output=avail "$0" | tail -1); head -c $(( (avail - 16384) * 1024 )) /dev/zero > "$0/filler""#;
    assert!(in_box(fill).success());
    check_refuses_writes_but_serves_reads(&mut c, &person, &token, "disk_full", "Thẻ nhớ đã đầy", &stored);
    let health = c.get("/api/v1/health").json();
    assert!(health["system"]["disk_free_bytes"].as_u64().expect("free") < 32 << 20, "{}", health["system"]);
    // Staff can still sign in (a session is a small box-local write, taken down to 8 MB) and read why.
    let mut other = Client::new(&b.url);
    assert_eq!(other.login("admin.card", PASSWORD).status, 303);
    assert!(other.get("/health").body.contains("Thẻ nhớ đã đầy"));

    // Space freed: writes are taken again and the problems clear.
    assert!(in_box(r#"rm "$0/filler""#).success());
    wait_until("a declaration is taken again", || declare(&mut c, &token).status == 201);
    wait_until("the problems clear", || problems(&mut c).is_empty());
    assert_eq!(c.get("/healthz").status, 200);
    b.stop();
}

#[test]
fn a_box_started_on_a_full_card_comes_up_and_says_so() {
    if !can_mount(false) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let card_s = dir.path().display().to_string();
    // 20 MB free when the box starts: below the records' reserve, above the floor.
    let script =
        r#"mount -t tmpfs -o size=64m tmpfs "$0" && head -c 44M /dev/zero > "$0/filler" && exec "$@""#;
    let wrapper =
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, card_s.as_str()];
    let mut b = BoxProcess::start_wrapped(&wrapper, "run", &dir.path().join("data"), &[]);
    let mut c = Client::new(&b.url);
    let healthz = c.get("/healthz");
    assert_eq!(healthz.status, 503, "{}", healthz.body);
    assert_eq!(healthz.json()["status"], "degraded");
    assert_eq!(healthz.json()["problems"], json!(["disk_full"]));
    b.stop();
}

#[test]
fn an_sd_card_turned_read_only_is_reported_and_reads_go_on() {
    if !can_mount(true) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().display().to_string();
    let script = r#"truncate -s 96M "$0/card.img" && mkfs.ext4 -q -F "$0/card.img" && mkdir -p "$0/card" &&
        mount -o loop,errors=remount-ro "$0/card.img" "$0/card" &&
        echo "card on $(basename "$(findmnt -no SOURCE "$0/card")")" && exec "$@""#;
    let (mut b, mut c, person, token, stored) = box_on_card(script, &dir_s, &dir.path().join("card/data"));
    let device =
        b.printed.iter().find_map(|l| l.strip_prefix("card on ")).expect("the card's loop device").to_owned();

    // The kernel meets an error on the card and, as ext4 on a Pi is mounted, turns it read-only.
    std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1").expect("trigger the card's error");
    check_refuses_writes_but_serves_reads(&mut c, &person, &token, "disk_read_only", "chỉ đọc", &stored);
    let page = c.get("/health");
    assert!(page.body.contains("Hộp không ghi được dữ liệu mới"), "{}", page.body);
    b.stop();
}

#[test]
fn a_missing_modem_and_adapter_and_a_broken_configuration_are_shown_while_the_box_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let good = "[site]\nid = \"kcl-thu-nghiem\"\n[modem]\nport = \"/dev/ttyOUTPOST-unplugged\"\n[bands]\nadapter = \"hci7\"\n";
    let config = write_config(dir.path(), good);
    let mut b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.parts", PASSWORD);
    wait_until("the modem and the adapter on the health page", || {
        let p = problems(&mut c);
        p.contains(&"modem".to_owned()) && p.contains(&"adapter".to_owned())
    });
    let page = c.get("/health");
    assert!(
        page.body.contains("Không dùng được modem") && page.body.contains("/dev/ttyOUTPOST-unplugged"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Không dùng được bộ Bluetooth"), "{}", page.body);
    // The rest works: people, declarations; /healthz is up (the box takes data).
    let (_, token) = admitted(&mut c);
    assert_eq!(declare(&mut c, &token).status, 201);
    assert_eq!(c.get("/healthz").status, 200);
    b.stop();
    assert!(Path::new(&data).join("last-good-config.toml").exists());

    // Someone breaks the file (an editor's stray character): the box starts on the last one that
    // worked, and says so.
    std::fs::write(&config, "[site\nid = \"kcl-thu-nghiem\"\n").expect("break the configuration");
    let mut b = BoxProcess::start("run", &data, &["--config", &config]);
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("admin.parts", PASSWORD).status, 303);
    let p = problems(&mut c);
    assert!(p.contains(&"config".to_owned()) && p.contains(&"modem".to_owned()), "{p:?}");
    let health: Value = c.get("/api/v1/health").json();
    let detail =
        health["problems"].as_array().expect("p").iter().find(|p| p["code"] == "config").expect("config")
            ["detail"]
            .clone();
    assert!(detail.as_str().expect("detail").contains("site.toml"), "{detail}");
    assert_eq!(
        std::fs::read_to_string(Path::new(&data).join("last-good-config.toml")).expect("kept"),
        good,
        "the good copy is not overwritten"
    );
    b.stop();
}
