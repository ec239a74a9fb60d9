//! The USB stick at a box nobody logs in to [M16]: a backup onto it, an update from it.
//!
//! The card has no shell user, so `outpost backup` and `outpost update` cannot be typed there. An
//! administrator asks on the health page instead; the box (its own unprivileged user) can only leave
//! the request, [`REQUEST`] in its data folder. `outpost-stick.path` sees it and starts
//! `outpost stick` as root (`outpost-stick.service`), which takes the request away, finds the stick
//! among the USB disks, mounts it (`nodev,nosuid,noexec`), does the work with the same code as the
//! commands, unmounts it, and leaves how it went in [`STATUS`] for the page. A request names an
//! action and nothing else: which stick, which package and where the backup goes are decided here,
//! so a box that was taken over can at worst start a backup or an update from a stick someone
//! plugged in; the package is checked as `outpost update` checks it (Outpost's, this machine's
//! architecture, not older than what is installed).

use std::{
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    base::config::Config,
    platform::{backup, update},
};

/// The administrator's request, left by the box in its data folder: one action's name.
pub const REQUEST: &str = "stick-request";
/// How the last request went, written by `outpost stick` (root) beside it.
pub const STATUS: &str = "stick-status.json";
/// Where `outpost stick` mounts the stick (its service's runtime folder).
pub const MOUNT_AT: &str = "/run/outpost-stick";
/// How long a request waits for a stick to show up.
const STICK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// The file systems a stick may carry.
const FILE_SYSTEMS: &[&str] = &["vfat", "exfat", "ext4", "ext3", "ext2"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A backup of the box onto the stick.
    Backup,
    /// The newest Outpost package on the stick installed (a backup onto the stick first).
    Update,
}

impl Action {
    pub const ALL: [Action; 2] = [Action::Backup, Action::Update];

    pub fn parse(word: &str) -> Option<Action> {
        match word.trim() {
            "backup" => Some(Action::Backup),
            "update" => Some(Action::Update),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Backup => "backup",
            Action::Update => "update",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Done,
    Failed,
}

impl State {
    pub const ALL: [State; 3] = [State::Running, State::Done, State::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        }
    }
}

/// How the last request went (or goes): what the health page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub action: Action,
    pub state: State,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// Leaves the request for `outpost-stick.path` (the box's side). Refused while one waits or runs.
pub fn request(data_dir: &Path, action: Action) -> anyhow::Result<()> {
    if let Some(waiting) = pending(data_dir) {
        bail!("a {} with the USB stick is already asked for", waiting.as_str());
    }
    if status(data_dir).is_some_and(|s| s.state == State::Running) {
        bail!("the USB stick is in use");
    }
    let partial = data_dir.join(format!("{REQUEST}.partial"));
    std::fs::write(&partial, action.as_str())?;
    std::fs::rename(&partial, data_dir.join(REQUEST))?;
    Ok(())
}

/// The request left and not yet taken, if any.
pub fn pending(data_dir: &Path) -> Option<Action> {
    read_capped(&data_dir.join(REQUEST), 64).ok().and_then(|b| Action::parse(&String::from_utf8_lossy(&b)))
}

/// How the last request went, if one was made.
pub fn status(data_dir: &Path) -> Option<Status> {
    serde_json::from_slice(&read_capped(&data_dir.join(STATUS), 16 << 10).ok()?).ok()
}

/// Up to `cap` bytes of a regular file, never through a symbolic link (root reads what the box's
/// user may have planted).
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes the status (root, in the box's folder): a new file, never one the box's user planted,
/// renamed over the last (a rename replaces a symbolic link, it does not follow it).
fn write_status(data_dir: &Path, status: &Status) -> anyhow::Result<()> {
    let partial = data_dir.join(format!(".{STATUS}.{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(&serde_json::to_vec(status)?)?;
    file.sync_all()?;
    std::fs::rename(&partial, data_dir.join(STATUS))?;
    Ok(())
}

/// `outpost stick` (root): takes the request, does it, and leaves the status. A request that cannot
/// be done is a failed status, not an error of the service (the page says why).
pub fn serve(config: &Config, mount_at: &Path) -> anyhow::Result<()> {
    let data_dir = &config.store.data_dir;
    let Some(action) = pending(data_dir) else {
        let _ = std::fs::remove_file(data_dir.join(REQUEST));
        println!("No request from the web UI (or not one this version knows): nothing to do.");
        return Ok(());
    };
    std::fs::remove_file(data_dir.join(REQUEST))?;
    let say = |state: State, message: String| {
        println!("{}: {message}", action.as_str());
        let status = Status { action, state, at: Utc::now(), message };
        if let Err(e) = write_status(data_dir, &status) {
            eprintln!("{e:#}");
        }
    };
    say(State::Running, "Looking for the USB stick …".into());
    let outcome = with_stick(mount_at, |stick, device| {
        say(State::Running, format!("The USB stick {device} is mounted; working …"));
        act(config, action, stick)
    });
    match outcome {
        Ok(message) => say(State::Done, message),
        Err(e) => say(State::Failed, format!("{e:#}")),
    }
    Ok(())
}

/// Does `action` with the stick mounted at `stick`: what happened, for the page.
fn act(config: &Config, action: Action, stick: &Path) -> anyhow::Result<String> {
    let data_dir = &config.store.data_dir;
    match action {
        Action::Backup => {
            let (path, summary) = backup::backup_to(stick, data_dir, &config.site.id, Utc::now())?;
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            Ok(format!("Backup written to the USB stick: {name} ({} entries).", summary.entries))
        }
        Action::Update => {
            let deb = newest_package(stick)?;
            let (_, version, _) = update::package_fields(&deb)?;
            update::update(config, &deb, Some(stick.to_path_buf()))?;
            Ok(format!("Outpost {version} is installed from the USB stick (a backup of the data is on it)."))
        }
    }
}

/// The Outpost package for this machine on the stick with the highest version
/// (`outpost_<version>_<arch>.deb`, at its top or in a folder `outpost`): a province's stick may carry
/// the Pi's and the PC's side by side.
pub fn newest_package(stick: &Path) -> anyhow::Result<PathBuf> {
    let machine = Command::new("dpkg").arg("--print-architecture").output().context("cannot run dpkg")?;
    let machine = String::from_utf8_lossy(&machine.stdout).trim().to_owned();
    let mut newest: Option<(PathBuf, String)> = None;
    for dir in [stick.to_path_buf(), stick.join("outpost")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("outpost_") && name.ends_with(".deb")) {
                continue;
            }
            let path = entry.path();
            let Ok((package, version, arch)) = update::package_fields(&path) else { continue };
            if package != "outpost" || (arch != machine && arch != "all") {
                continue;
            }
            let newer = newest.as_ref().is_none_or(|(_, best)| {
                Command::new("dpkg")
                    .args(["--compare-versions", &version, "gt", best])
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if newer {
                newest = Some((path, version));
            }
        }
    }
    newest.map(|(path, _)| path).with_context(|| {
        format!("no Outpost package for {machine} on the USB stick: copy outpost_<version>_{machine}.deb to its top folder")
    })
}

/// Mounts the first USB stick with a file system the box reads at `mount_at`, runs `work` with it,
/// and unmounts it (its writes on the stick first).
fn with_stick<T>(mount_at: &Path, work: impl FnOnce(&Path, &str) -> anyhow::Result<T>) -> anyhow::Result<T> {
    // A stick left mounted by a run that was stopped.
    let _ = Command::new("umount").arg(mount_at).output();
    std::fs::create_dir_all(mount_at)?;
    let (device, fs) = find_stick()?;
    let device = device.to_string_lossy().into_owned();
    let out = Command::new("mount")
        .args(["-t", &fs, "-o", "nodev,nosuid,noexec,noatime", &device])
        .arg(mount_at)
        .output()
        .context("cannot run mount")?;
    if !out.status.success() {
        bail!("cannot mount the USB stick {device}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let result = work(mount_at, &device);
    let out = Command::new("umount").arg(mount_at).output();
    match out {
        Ok(o) if o.status.success() => result,
        Ok(o) => result.and_then(|_| {
            bail!("cannot unmount the USB stick: {}", String::from_utf8_lossy(&o.stderr).trim())
        }),
        Err(e) => result.and_then(|_| Err(e).context("cannot run umount")),
    }
}

/// The first USB partition (or disk) with a file system the box mounts. A stick plugged in just
/// before, or just after, the button was pressed is waited for, [`STICK_WAIT`] at most: the kernel
/// takes a few seconds to show it.
fn find_stick() -> anyhow::Result<(PathBuf, String)> {
    let deadline = std::time::Instant::now() + STICK_WAIT;
    loop {
        let candidates = usb_partitions();
        if let Some(found) = candidates.iter().find_map(|dev| file_system(dev).map(|fs| (dev.clone(), fs))) {
            return Ok(found);
        }
        if std::time::Instant::now() >= deadline {
            if candidates.is_empty() {
                bail!("no USB stick is plugged in");
            }
            bail!("no file system the box reads ({}) on the USB disks", FILE_SYSTEMS.join(", "));
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The block devices of the USB disks, partitions before whole disks: `/dev/sdb1`, or `/dev/sdb`
/// for a stick with no partition table.
fn usb_partitions() -> Vec<PathBuf> {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    usb_partitions_in(Path::new("/sys/block"), &mounted)
}

/// [`usb_partitions`] from a sysfs `block` folder, leaving out every disk with a mounted file system
/// (by `major:minor` in `mountinfo`): a box that starts from a USB disk never takes its own system
/// for a stick.
fn usb_partitions_in(sys_block: &Path, mountinfo: &str) -> Vec<PathBuf> {
    let mounted: std::collections::HashSet<&str> =
        mountinfo.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    let number = |dir: &Path| std::fs::read_to_string(dir.join("dev")).unwrap_or_default().trim().to_owned();
    let mut out = Vec::new();
    let Ok(disks) = std::fs::read_dir(sys_block) else { return out };
    let mut disks: Vec<_> = disks.flatten().map(|e| e.path()).collect();
    disks.sort();
    for disk in disks {
        let on_usb = std::fs::canonicalize(&disk).is_ok_and(|p| p.to_string_lossy().contains("/usb"));
        let name = disk.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if !on_usb || !name.starts_with("sd") {
            continue;
        }
        let mut parts: Vec<_> = std::fs::read_dir(&disk)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|p| p.starts_with(&name) && disk.join(p).join("partition").exists())
            .collect();
        parts.sort();
        let in_use = mounted.contains(number(&disk).as_str())
            || parts.iter().any(|p| mounted.contains(number(&disk.join(p)).as_str()));
        if in_use {
            continue;
        }
        parts.push(name);
        out.extend(parts.into_iter().map(|p| Path::new("/dev").join(p)));
    }
    out
}

/// The file system on `device` if it is one the box mounts (`blkid`, reading the device itself).
fn file_system(device: &Path) -> Option<String> {
    let out = Command::new("blkid").args(["-p", "-o", "value", "-s", "TYPE"]).arg(device).output().ok()?;
    let fs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    FILE_SYSTEMS.contains(&fs.as_str()).then_some(fs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_left_once_and_read_back() {
        let dir = tempfile::tempdir().expect("done");
        assert_eq!(pending(dir.path()), None);
        request(dir.path(), Action::Update).expect("done");
        assert_eq!(pending(dir.path()), Some(Action::Update));
        let again = request(dir.path(), Action::Backup).expect_err("refused").to_string();
        assert!(again.contains("already asked for"), "{again}");
        std::fs::write(dir.path().join(REQUEST), "format the card").expect("done");
        assert_eq!(pending(dir.path()), None, "an unknown word is no request");
    }

    #[test]
    fn the_status_is_written_fresh_and_a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().expect("done");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "kept").expect("done");
        std::os::unix::fs::symlink(&target, dir.path().join(STATUS)).expect("done");
        assert_eq!(status(dir.path()), None, "read through no link");
        let at = Utc::now();
        let done = Status { action: Action::Backup, state: State::Done, at, message: "ok".into() };
        write_status(dir.path(), &done).expect("done");
        assert_eq!(std::fs::read_to_string(&target).expect("done"), "kept");
        assert_eq!(status(dir.path()), Some(done));
        let running = Status { state: State::Running, ..status(dir.path()).expect("done") };
        write_status(dir.path(), &running).expect("done");
        let busy = request(dir.path(), Action::Backup).expect_err("refused").to_string();
        assert!(busy.contains("in use"), "{busy}");
    }

    #[test]
    fn only_usb_disks_with_nothing_mounted_are_sticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = dir.path().join("devices");
        let block = dir.path().join("block");
        std::fs::create_dir_all(&block).expect("block");
        // sda: a stick with one partition; sdb: the system's USB disk (its partition 2 mounted);
        // sdc: a SATA disk; sdd: a stick with no partition table.
        let disk = |name: &str, bus: &str, major_minor: u32, parts: &[u32]| {
            let path = devices.join(bus).join("block").join(name);
            std::fs::create_dir_all(&path).expect("disk");
            std::fs::write(path.join("dev"), format!("8:{major_minor}\n")).expect("dev");
            for n in parts {
                let part = path.join(format!("{name}{n}"));
                std::fs::create_dir_all(&part).expect("part");
                std::fs::write(part.join("partition"), format!("{n}\n")).expect("partition");
                std::fs::write(part.join("dev"), format!("8:{}\n", major_minor + n)).expect("dev");
            }
            std::os::unix::fs::symlink(&path, block.join(name)).expect("link");
        };
        disk("sda", "pci0000:00/usb1/1-1", 0, &[1]);
        disk("sdb", "pci0000:00/usb2/2-1", 16, &[1, 2]);
        disk("sdc", "pci0000:00/ata1", 32, &[1]);
        disk("sdd", "pci0000:00/usb1/1-2", 48, &[]);
        let mountinfo = "22 1 8:18 / / rw,noatime shared:1 - ext4 /dev/root rw\n";
        let found: Vec<_> = usb_partitions_in(&block, mountinfo);
        assert_eq!(found, ["/dev/sda1", "/dev/sda", "/dev/sdd"].map(PathBuf::from));
    }

    #[test]
    fn the_newest_outpost_package_is_chosen() {
        let dir = tempfile::tempdir().expect("done");
        let build = |name: &str, package: &str, version: &str, into: &Path| {
            let root = dir.path().join(format!("root-{name}"));
            std::fs::create_dir_all(root.join("DEBIAN")).expect("done");
            let arch = name.trim_end_matches(".deb").rsplit('_').next().unwrap_or("all");
            let control = format!(
                "Package: {package}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Outpost <outpost@localhost>\nDescription: test\n"
            );
            std::fs::write(root.join("DEBIAN/control"), control).expect("done");
            let out = Command::new("dpkg-deb")
                .args(["--root-owner-group", "-b"])
                .arg(&root)
                .arg(into.join(name))
                .output()
                .expect("done");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        let stick = dir.path().join("stick");
        std::fs::create_dir_all(stick.join("outpost")).expect("done");
        assert!(newest_package(&stick).expect_err("refused").to_string().contains("no Outpost package"));
        build("outpost_0.9.0_all.deb", "outpost", "0.9.0", &stick);
        build("outpost_0.10.0_all.deb", "outpost", "0.10.0", &stick.join("outpost"));
        build("outpost_9.0.0_all.deb", "not-outpost", "9.0.0", &stick);
        // Another machine's package, newer: not this box's.
        let other = if cfg!(target_arch = "aarch64") { "amd64" } else { "arm64" };
        build(&format!("outpost_5.0.0_{other}.deb"), "outpost", "5.0.0", &stick);
        std::fs::write(stick.join("outpost_99.0.0_all.deb"), "not a package").expect("done");
        assert_eq!(newest_package(&stick).expect("done"), stick.join("outpost/outpost_0.10.0_all.deb"));
    }
}
