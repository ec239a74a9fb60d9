//! The box's own condition, for the health page, `/healthz` and `/metrics` [M16]: the SD card's space
//! and whether it still takes writes, memory, the SoC's temperature, and the problems staff must hear
//! about (a full or read-only card, a store that cannot write, a missing modem or Bluetooth adapter,
//! a configuration file that did not load).

use std::{collections::BTreeMap, path::Path, sync::Mutex};

use crate::platform::{
    memory,
    wear::{CardWear, SHORT_LIFE_DAYS},
};

/// What the box reads of itself.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct System {
    /// The file system of the data folder.
    pub disk_total_bytes: u64,
    pub disk_free_bytes: u64,
    pub disk_read_only: bool,
    /// This process.
    pub memory_rss_bytes: u64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// The first thermal zone (the SoC on a Pi); none where the machine has none.
    pub temperature_celsius: Option<f64>,
    /// What the box writes to the card and the card's projected life (filled by whoever keeps the
    /// rate: [`crate::platform::wear::Wear`]).
    pub card: CardWear,
}

/// Below this much free space the card counts as nearly full (a warning).
const DISK_LOW_BYTES: u64 = 256 << 20;
/// Below this much, the store refuses writes of records ([`write_guard`]): sled must never meet
/// "no space left".
pub const DISK_RESERVE_BYTES: u64 = 32 << 20;
/// Below this much, it refuses the small box-local writes too (sessions, the audit log, the
/// outbox's state), which it takes until then so that staff can still sign in and see why.
const DISK_FLOOR_BYTES: u64 = 8 << 20;

/// The store's write guard for a data folder: refuses writes on a read-only file system, records
/// with less than [`DISK_RESERVE_BYTES`] free and anything with less than [`DISK_FLOOR_BYTES`]. One
/// `statvfs` per write (microseconds), and on ext4 one read of the file system's error count.
///
/// ext4 turned read-only after an error ("emergency_ro") still shows as mounted read-write, so
/// `statvfs` alone lets the next write through: sled then meets the error itself, keeps it, and
/// refuses even reads that need a page rewritten. The error count tells first: when it moves, a
/// probe file says whether the card still takes writes (an ext4 mounted `errors=continue` does).
pub fn write_guard(data_dir: std::path::PathBuf) -> outpost_sync::store::WriteGuard {
    std::sync::Arc::new(move |records: bool| {
        if turned_read_only(&data_dir) {
            return Some(format!("{} turned read-only after an error", data_dir.display()));
        }
        let fs = memory::file_system(&data_dir)?;
        let floor = if records { DISK_RESERVE_BYTES } else { DISK_FLOOR_BYTES };
        if fs.read_only {
            Some(format!("{} is read-only", data_dir.display()))
        } else if fs.free_bytes < floor {
            Some(format!("{} MB free on {}", fs.free_bytes >> 20, data_dir.display()))
        } else {
            None
        }
    })
}

/// Whether the ext4 file system holding `dir` turned read-only after an error since the box first
/// looked: its error count moved, and a probe file could not be made. One small read a call; a
/// probe only when the count moves. `false` where the file system is not ext4.
fn turned_read_only(dir: &Path) -> bool {
    type Seen = (Option<std::path::PathBuf>, Option<u64>, bool);
    static SEEN: Mutex<BTreeMap<std::path::PathBuf, Seen>> = Mutex::new(BTreeMap::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.contains_key(dir) {
        // Found once per folder; every later write only reads the count.
        let file = ext4_errors_file(dir);
        let count = file.as_deref().and_then(read_count);
        seen.insert(dir.to_owned(), (file, count, false));
    }
    let Some(entry) = seen.get_mut(dir) else { return false };
    let Some(file) = &entry.0 else { return false };
    let now = read_count(file);
    if now != entry.1 {
        entry.1 = now;
        entry.2 = !takes_writes(dir);
    }
    entry.2
}

/// ext4's count of errors on the file system holding `dir` (`/sys/fs/ext4/<device>/errors_count`),
/// if it is ext4; `None` elsewhere (tmpfs, an overlay).
fn ext4_errors_file(dir: &Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let device =
        std::fs::read_link(format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev))).ok()?;
    let file = Path::new("/sys/fs/ext4").join(device.file_name()?).join("errors_count");
    file.exists().then_some(file)
}

fn read_count(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Whether a file can be made in `dir` (one create and remove: only when something changed, and at
/// the end).
pub fn takes_writes(dir: &Path) -> bool {
    let probe = dir.join(".write-probe");
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(e) => e.kind() != std::io::ErrorKind::ReadOnlyFilesystem,
    }
}

impl System {
    /// Reads the box's condition; `data_dir` is the store's folder, `write_error` the store's last
    /// failed write if any.
    pub fn read(data_dir: &Path, write_error: Option<&str>) -> System {
        let mut s = System::default();
        if let Some(fs) = memory::file_system(data_dir) {
            s.disk_total_bytes = fs.total_bytes;
            s.disk_free_bytes = fs.free_bytes;
            s.disk_read_only = fs.read_only || turned_read_only(data_dir);
        }
        // ext4 turned read-only after an error ("emergency_ro") still shows as mounted read-write:
        // once a write has failed, creating a file tells (not on every call: an SD card wears).
        if !s.disk_read_only && write_error.is_some() && data_dir.is_dir() {
            s.disk_read_only = !takes_writes(data_dir);
        }
        let kb = |text: &str, key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(0, |n| n * 1024)
        };
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            s.memory_rss_bytes = kb(&status, "VmRSS:");
        }
        if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
            s.memory_total_bytes = kb(&info, "MemTotal:");
            s.memory_available_bytes = kb(&info, "MemAvailable:");
        }
        s.temperature_celsius = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp")
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|milli| milli / 1000.0);
        s
    }
}

/// Every problem's code, as [`Problem::code`] holds it (the health page names each).
pub const PROBLEM_CODES: [&str; 10] = [
    "disk_read_only",
    "disk_full",
    "disk_low",
    "card_wear",
    "store_write",
    "modem",
    "adapter",
    "scanner_down",
    "config",
    "sms_late",
];

/// Something that keeps the box from doing part of its work.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Stable: one of [`PROBLEM_CODES`].
    pub code: &'static str,
    /// Whether records can still be written (false: nothing new can be taken).
    pub writes_fail: bool,
    /// What the component said, for whoever fixes it.
    pub detail: String,
}

/// What the box's parts report of themselves, for [`problems`].
#[derive(Debug)]
pub struct Reports<'a> {
    /// The data folder.
    pub data_dir: &'a Path,
    /// The store's last failed write, while it fails.
    pub write_error: Option<String>,
    /// Each modem's port and health.
    pub modems: Vec<(String, outpost_sms::modem::Health)>,
    /// What components set on [`Conditions`].
    pub conditions: Vec<(&'static str, String)>,
}

/// The problems of the box now.
pub fn problems(system: &System, reports: Reports<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let problem = |code, writes_fail, detail: String| Problem { code, writes_fail, detail };
    if system.disk_read_only {
        out.push(problem("disk_read_only", true, reports.data_dir.display().to_string()));
    } else if system.disk_total_bytes > 0 && system.disk_free_bytes < DISK_LOW_BYTES {
        let full = system.disk_free_bytes < DISK_RESERVE_BYTES;
        out.push(problem(
            if full { "disk_full" } else { "disk_low" },
            full,
            format!("{} MB / {} MB", system.disk_free_bytes >> 20, system.disk_total_bytes >> 20),
        ));
    }
    if let (Some(days), Some(per_day)) = (system.card.life_days, system.card.per_day_bytes) {
        if days < SHORT_LIFE_DAYS {
            out.push(problem("card_wear", false, format!("{} MB/day, {days:.0} days", per_day / 1_000_000)));
        }
    }
    if let Some(error) = reports.write_error {
        out.push(problem("store_write", true, error));
    }
    for (port, m) in reports.modems {
        if !m.connected {
            out.push(problem(
                "modem",
                false,
                format!("{port}: {}", m.last_error.unwrap_or_else(|| "no answer".into())),
            ));
        }
    }
    for (code, detail) in reports.conditions {
        out.push(problem(code, false, detail));
    }
    out
}

/// Conditions components report for the health page (`adapter`, `config`), with their detail.
#[derive(Debug, Default)]
pub struct Conditions(Mutex<BTreeMap<&'static str, String>>);

impl Conditions {
    /// Sets (or, with `None`, clears) a condition; logged when it changes.
    pub fn set(&self, code: &'static str, detail: Option<String>) {
        let Ok(mut conditions) = self.0.lock() else { return };
        match detail {
            Some(d) => {
                if conditions.get(code) != Some(&d) {
                    tracing::error!(condition = code, detail = %d, "The box has a problem (shown on its health page).");
                }
                conditions.insert(code, d);
            }
            None => {
                if conditions.remove(code).is_some() {
                    tracing::info!(condition = code, "A problem of the box cleared.");
                }
            }
        }
    }

    /// The conditions set now.
    pub fn all(&self) -> Vec<(&'static str, String)> {
        self.0.lock().map(|c| c.iter().map(|(k, v)| (*k, v.clone())).collect()).unwrap_or_default()
    }
}
