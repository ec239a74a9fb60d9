//! The SD card's wear: how much is written to it a day, and from it how long a card of this size
//! lasts when it is rated for `store.card_write_cycles` full writes.
//!
//! What is counted is the card's own count of sectors written (`/sys/dev/block/<dev>/stat` of the
//! data folder's file system): everything that wears it — the box's data, the file system's journal
//! and metadata, the system's own logs. The box's process's count (`/proc/self/io` `write_bytes`) is
//! kept beside it, but not used for the projection: on kernels whose ext4 caches files in large
//! folios (6.16 and later) it charges a whole folio (up to 2 MB) each time a small write dirties a
//! clean one, hundreds of times what reaches the card for small synced writes. Where the folder has
//! no block device (tmpfs), the process's count is all there is.
use std::{
    collections::VecDeque,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

/// A point is kept at most this often…
const EVERY: Duration = Duration::from_secs(60);
/// …for this long: the rate is the last day's (or since the box started, when younger).
const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Shorter than this, the rate is not yet told (the start's own writes would dominate it).
const MIN_SPAN: Duration = Duration::from_secs(10 * 60);
/// A projected life shorter than this is a problem on the health page.
pub const SHORT_LIFE_DAYS: f64 = 365.0;

/// Bytes this process has caused to be written to storage, if the kernel tells.
pub fn process_written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// The kernel's statistics of the block device that holds `dir` (which may not exist: tmpfs, overlay).
fn device_stat(dir: &Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = ((dev >> 8) & 0xfff | (dev >> 32) & !0xfff, dev & 0xff | (dev >> 12) & !0xff);
    Some(format!("/sys/dev/block/{major}:{minor}/stat").into())
}

/// Bytes written to the block device that holds `dir` since the machine started, if it has one.
pub fn device_written_bytes(dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(device_stat(dir)?).ok()?;
    // The seventh field: sectors written, of 512 bytes whatever the device's own sector size.
    stat.split_whitespace().nth(6)?.parse::<u64>().ok().map(|sectors| sectors * 512)
}

/// What is counted: the card's device, or only this process where there is no device.
fn written(dir: &Path) -> Option<(u64, &'static str)> {
    device_written_bytes(dir).map(|b| (b, "card")).or_else(|| process_written_bytes().map(|b| (b, "process")))
}

/// The card's wear as the health page shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CardWear {
    /// "card" (the device's count, every writer) or "process" (the box's own, where the data folder
    /// has no block device).
    pub counted: &'static str,
    /// Counted since the machine (card) or the box (process) started.
    pub written_bytes: u64,
    /// The box's process's own count (see the module's documentation).
    pub process_written_bytes: u64,
    /// Over the last day (or since the box started), once measured for [`MIN_SPAN`].
    pub per_day_bytes: Option<u64>,
    pub measured_minutes: u64,
    /// The card's size × its rated full writes ÷ the rate.
    pub life_days: Option<f64>,
}

/// Points of (when, bytes written so far), one a minute at most, for a day.
#[derive(Debug, Default)]
pub struct Wear(Mutex<VecDeque<(Instant, u64)>>);

impl Wear {
    /// Notes the count now for the card holding `dir` (at most once a minute).
    pub fn note(&self, dir: &Path) {
        if let Some((bytes, _)) = written(dir) {
            self.note_at(Instant::now(), bytes);
        }
    }

    fn note_at(&self, at: Instant, bytes: u64) {
        let Ok(mut points) = self.0.lock() else { return };
        if points.back().is_some_and(|(t, _)| at.duration_since(*t) < EVERY) {
            return;
        }
        points.push_back((at, bytes));
        while points.len() > 2 && points.front().is_some_and(|(t, _)| at.duration_since(*t) > WINDOW) {
            points.pop_front();
        }
    }

    /// The wear now of the card holding `dir`, of `card_bytes`, rated for `cycles` full writes.
    pub fn read(&self, dir: &Path, card_bytes: u64, cycles: u32) -> CardWear {
        let at = Instant::now();
        let counted = written(dir);
        if let Some((bytes, _)) = counted {
            self.note_at(at, bytes);
        }
        let (now, counted) = counted.unwrap_or((0, "process"));
        let mut wear = self.read_with(at, now, card_bytes, cycles);
        wear.counted = counted;
        wear.process_written_bytes = process_written_bytes().unwrap_or(0);
        wear
    }

    fn read_with(&self, at: Instant, now: u64, card_bytes: u64, cycles: u32) -> CardWear {
        let first = self.0.lock().ok().and_then(|p| p.front().copied());
        let mut wear = CardWear { written_bytes: now, ..CardWear::default() };
        let Some((since, then)) = first else { return wear };
        let span = at.duration_since(since);
        wear.measured_minutes = span.as_secs() / 60;
        if span < MIN_SPAN {
            return wear;
        }
        let per_day = now.saturating_sub(then) as f64 * 86_400.0 / span.as_secs_f64();
        wear.per_day_bytes = Some(per_day as u64);
        if card_bytes > 0 {
            wear.life_days = Some(card_bytes as f64 * f64::from(cycles) / per_day.max(1.0));
        }
        wear
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data folder's device is found and its count read (where the folder has one).
    #[test]
    fn the_card_is_the_data_folders_device() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stat = device_stat(dir.path()).expect("the folder's device");
        // A folder on tmpfs or an overlay (a container) has no device of its own.
        assert_eq!(device_written_bytes(dir.path()).is_some(), stat.exists(), "{}", stat.display());
        assert!(process_written_bytes().is_some());
    }

    #[test]
    fn the_rate_is_the_last_days_and_the_life_follows_from_it() {
        let wear = Wear::default();
        let t0 = Instant::now();
        let at = |minutes: u64| t0 + Duration::from_secs(minutes * 60);
        wear.note_at(t0, 1_000);
        // Too soon to tell.
        assert_eq!(wear.read_with(at(5), 2_000, 32 << 30, 300).per_day_bytes, None);
        // 100 MB an hour: 2.4 GB a day; a 32 GiB card rated for 300 writes lasts about 4,295 days.
        for m in 1..=60 {
            wear.note_at(at(m), 1_000 + m * 100_000_000 / 60);
        }
        let w = wear.read_with(at(60), 1_000 + 100_000_000, 32 << 30, 300);
        assert_eq!(w.per_day_bytes, Some(2_400_000_000));
        assert_eq!(w.measured_minutes, 60);
        let life = w.life_days.expect("life");
        assert!((life - 4_294.97).abs() < 1.0, "{life}");
        // A point a minute at most, a day's worth kept.
        for m in 61..=(26 * 60) {
            wear.note_at(at(m), 0);
            wear.note_at(at(m) + Duration::from_secs(10), 0);
        }
        let kept = wear.0.lock().expect("points").len();
        assert!((1_440..=1_442).contains(&kept), "{kept}");
    }
}
