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
