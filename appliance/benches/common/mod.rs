//! What the box's benchmark binaries share.

use std::time::Duration;

/// The `p` quantile (0–1) of durations sorted ascending; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A `kB` field (`VmRSS:`, `VmHWM:`) of `/proc/<pid>/status`; 0 if unreadable. (Not every bench
/// reads memory.)
#[allow(dead_code)]
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A site on a new store in a temporary folder, its clock stopped at `now`, with its site record:
/// the folder (kept while the bench runs), the store and the operations. The size of a bench comes
/// from `BENCH_PEOPLE` (2,000 by default). (Not every bench seeds a store.)
#[allow(dead_code)]
pub fn seeded_site(
    now: chrono::DateTime<chrono::Utc>,
) -> (tempfile::TempDir, outpost_sync::Store, std::sync::Arc<outpost::app::Outpost>, usize) {
    use outpost::base::{
        clock::{Clock, ManualClock},
        config::Config,
    };
    let people: usize = std::env::var("BENCH_PEOPLE").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = Config::from_toml("").expect("defaults").raw;
    raw.store.data_dir = dir.path().to_owned();
    let config = Config::validate(raw).expect("config");
    let store = outpost_sync::Store::open(dir.path(), &outpost_sync::StoreConfig::default()).expect("store");
    let app =
        outpost::app::Outpost::new(store.clone(), config, ManualClock::new(now) as std::sync::Arc<dyn Clock>);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(app.ensure_site()).expect("site");
    (dir, store, app, people)
}
