//! Backups and restores [M16] through the real binary: `outpost backup` while four writers declare
//! without pause, `outpost restore` into a new folder, and the restored box holds every declaration
//! acknowledged before the backup began. Then every refusal: a running box, another site's backup,
//! a newer version's, a truncated file; each leaves the data as it was.

use std::{
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use outpost_tests::{outpost_bin, write_config, BoxProcess, Client};
use serde_json::json;

use crate::PASSWORD;

const WRITERS: usize = 4;

fn outpost(args: &[&str]) -> (bool, String) {
    let out = Command::new(outpost_bin()).args(args).output().expect("run outpost");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The backup file `outpost backup` named.
fn written(text: &str) -> String {
    let line = text.lines().find(|l| l.starts_with("Backup written: ")).unwrap_or_else(|| panic!("{text}"));
    line["Backup written: ".len()..].split(" (").next().expect("path").to_owned()
}

fn declaration_ids(c: &mut Client, person: &str) -> std::collections::HashSet<String> {
    let res = c.get(&format!("/api/v1/people/{person}/declarations"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()
        .as_array()
        .expect("declarations")
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_backup_under_write_load_restores_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, restored, backups) =
        (dir.path().join("data"), dir.path().join("restored"), dir.path().join("usb"));
    // Writers declare on one link without pause: the load, not a phone, so no rate limit.
    let unlimited = write_config(dir.path(), "[web]\nrate_limits = false\n");
    let mut b = BoxProcess::start("run", &data, &["--config", &unlimited]);
    // The setup link is also left in the data folder for the system to show (console, boot
    // partition), and gone once it is spent.
    let link_file = data.join("setup-link.txt");
    let left = std::fs::read_to_string(&link_file).expect("setup-link.txt");
    let token = b.setup_link.as_deref().expect("setup link").rsplit('/').next().expect("token").to_owned();
    assert!(left.trim_end().ends_with(&format!("/setup/{token}")), "{left}");
    let mut staff = Client::new(&b.url);
    staff.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.backup", PASSWORD);
    assert!(!link_file.exists(), "the spent link is removed");
    let (person_id, token) = staff.admit("Phan Thị Mai", "0905333444", "048123456700");

    // Writers declare without pause; each acknowledged write is kept with the moment of its 201.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, token, stop, acked) = (b.url.clone(), token.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut c = Client::new(&url);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body =
                        json!({"temperature": "36.6", "symptoms": [], "note": format!("writer {w} #{n}")});
                    let a = c.post_json(&format!("/api/v1/declare/{token}"), &body);
                    assert_eq!(a.status, 201, "{}", a.body);
                    let id = a.json()["id"].as_str().expect("id").to_owned();
                    acked.lock().expect("lock").push((Instant::now(), id));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let began = Instant::now();
    let (ok, text) =
        outpost(&["backup", "--to", &backups.display().to_string(), "--data", &data.display().to_string()]);
    let took = began.elapsed();
    assert!(ok, "{text}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let file = written(&text);
    assert!(!std::fs::read_dir(&backups).expect("usb").any(|e| e
        .expect("entry")
        .path()
        .to_string_lossy()
        .ends_with(".partial")));
    let acked = acked.lock().expect("lock").clone();
    let before: Vec<&String> = acked.iter().filter(|(at, _)| *at < began).map(|(_, id)| id).collect();
    let during = acked.iter().filter(|(at, _)| *at >= began && *at <= began + took).count();
    assert!(
        before.len() > 20 && during > 0,
        "writes went on around the backup: {} before, {during} during",
        before.len()
    );

    // Restored into another folder, a box there holds every write acknowledged before the backup.
    let (ok, text) = outpost(&["restore", "--from", &file, "--data", &restored.display().to_string()]);
    assert!(ok, "{text}");
    assert!(text.contains("Restored the backup of site"), "{text}");
    // The administrator's download from the health page is a backup as good.
    let downloaded = backups.join("downloaded.backup");
    std::fs::write(&downloaded, staff.get_bytes("/admin/backup")).expect("write the download");
    let from_download = dir.path().join("from-download").display().to_string();
    let (ok, text) =
        outpost(&["restore", "--from", &downloaded.display().to_string(), "--data", &from_download]);
    assert!(ok && text.contains("Restored the backup of site"), "{text}");
    b.stop();
    let mut r = BoxProcess::start("run", &restored, &["--config", &unlimited]);
    assert!(r.setup_link.is_none(), "the restored box has its accounts");
    let mut c = Client::new(&r.url);
    assert_eq!(c.login("admin.backup", PASSWORD).status, 303);
    let ids = declaration_ids(&mut c, &person_id);
    let lost: Vec<&&String> = before.iter().filter(|id| !ids.contains(**id)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes missing after the restore: {lost:?}", lost.len());
    eprintln!(
        "backup under load: {} writes acknowledged before it began, all restored; {during} during its {:?}; {} in the backup",
        before.len(),
        took,
        ids.len()
    );
    // It takes new writes, and a restore while it runs is refused without touching anything.
    let a = c.post_json(&format!("/api/v1/declare/{token}"), &json!({"temperature": "36.8", "symptoms": []}));
    assert_eq!(a.status, 201, "{}", a.body);
    let (ok, text) = outpost(&["restore", "--from", &file, "--data", &restored.display().to_string()]);
    assert!(!ok && text.contains("stop it first") && text.contains("Nothing was changed"), "{text}");
    assert_eq!(declaration_ids(&mut c, &person_id).len(), ids.len() + 1);
    r.stop();

    // Restored over the original folder: the data there is moved aside, not overwritten.
    let (ok, text) = outpost(&["restore", "--from", &file, "--data", &data.display().to_string()]);
    assert!(ok, "{text}");
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("data.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{text}");
    assert!(text.contains(&aside[0]), "{text}");
}

#[test]
fn a_backup_of_another_site_a_newer_version_or_a_damaged_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data_a, data_b, usb) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("usb"));
    let site_a = write_config(&dir.path().join("cfg-a").tap_mkdir(), "[site]\nid = \"kcl-phia-tay\"\n");
    let site_b = write_config(&dir.path().join("cfg-b").tap_mkdir(), "[site]\nid = \"kcl-phia-dong\"\n");
    // Site B's box has data of its own.
    let mut b = BoxProcess::start("run", &data_b, &["--config", &site_b]);
    let mut c = Client::new(&b.url);
    c.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.b", PASSWORD);
    b.stop();
    let before = listing(&data_b);
    // A backup of site A, taken with no box running (from the data folder itself).
    let mut a = BoxProcess::start("run", &data_a, &["--config", &site_a]);
    Client::new(&a.url).setup_admin(a.setup_link.as_deref().expect("setup link"), "admin.a", PASSWORD);
    a.stop();
    let backup_a = |config: &str| {
        outpost(&[
            "backup",
            "--to",
            &usb.display().to_string(),
            "--data",
            &data_a.display().to_string(),
            "--config",
            config,
        ])
    };
    let (ok, text) = backup_a(&site_a);
    assert!(ok, "{text}");
    let file = written(&text);
    assert!(file.contains("outpost-kcl-phia-tay-"), "{file}");
    // Labelled as another site by a wrong configuration: refused.
    let (ok, text) = backup_a(&site_b);
    assert!(!ok && text.contains("is of site \"kcl-phia-tay\""), "{text}");
    // A folder with no box's data in it: refused, nothing created there.
    let empty = dir.path().join("empty");
    let (ok, text) =
        outpost(&["backup", "--to", &usb.display().to_string(), "--data", &empty.display().to_string()]);
    assert!(!ok && text.contains("there is no box's data in"), "{text}");
    assert!(!empty.exists());

    // `outpost restore --from FILE` into site B's folder, with a site's configuration.
    let restore_into_b = |from: &str, config: &str| {
        outpost(&["restore", "--from", from, "--data", &data_b.display().to_string(), "--config", config])
    };
    let (ok, text) = restore_into_b(&file, &site_b);
    assert!(!ok, "{text}");
    assert!(
        text.contains("\"kcl-phia-tay\"")
            && text.contains("\"kcl-phia-dong\"")
            && text.contains("Nothing was changed"),
        "{text}"
    );
    assert_eq!(listing(&data_b), before, "another site's backup changed nothing");

    // Made by a newer Outpost: its manifest says so, and it is refused before anything is read.
    let bytes = std::fs::read(&file).expect("backup");
    let line_end = |n: usize| {
        bytes.iter().enumerate().filter(|(_, c)| **c == b'\n').nth(n).map(|(i, _)| i + 1).expect("line")
    };
    let (magic_end, manifest_end) = (line_end(0), line_end(1));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&bytes[magic_end..manifest_end]).expect("manifest");
    assert_eq!(manifest["site_id"], "kcl-phia-tay");
    manifest["version"] = json!("99.0.0");
    let mut newer = bytes[..magic_end].to_vec();
    newer.extend(serde_json::to_vec(&manifest).expect("json"));
    newer.push(b'\n');
    newer.extend(&bytes[manifest_end..]);
    let newer_file = usb.join("newer.backup");
    std::fs::write(&newer_file, newer).expect("write");
    let (ok, text) = restore_into_b(&newer_file.display().to_string(), &site_a);
    assert!(!ok && text.contains("99.0.0") && text.contains("update the box first"), "{text}");

    // Cut short on the way (a USB stick pulled out): refused, and no half-built folder is left.
    let cut = usb.join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
    let (ok, text) = restore_into_b(&cut.display().to_string(), &site_a);
    assert!(
        !ok && (text.contains("truncated") || text.contains("damaged"))
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(listing(&data_b), before);
    assert!(!dir.path().join("b.restoring").exists());
}

/// The file names under `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    out.sort();
    out
}

trait MkDir {
    fn tap_mkdir(self) -> Self;
}

impl MkDir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}
