//! The injected clock. Everything that asks "what time is it" asks a [`Clock`], so a test can run a whole
//! quarantine day in milliseconds with a [`ManualClock`]. Nothing here sleeps or schedules.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc, Mutex,
};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Fires whenever a manual clock is moved; never for the system clock.
    fn changes(&self) -> Option<watch::Receiver<DateTime<Utc>>> {
        None
    }
}

/// The machine's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    tx: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<ManualClock> {
        let (tx, _) = watch::channel(start);
        Arc::new(ManualClock { now: Mutex::new(start), tx })
    }

    /// Sets the time. Time never goes backwards: an earlier time is ignored.
    pub fn set(&self, to: DateTime<Utc>) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if to > *now {
            *now = to;
            self.tx.send_replace(to);
        }
        *now
    }

    pub fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        let now = self.now();
        self.set(now + by)
    }
}

/// The box's clock: another clock, moved by a correction learned from a better source of time (the
/// province's, at each exchange). Every part of the box reads this one.
pub struct CorrectedClock {
    inner: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl CorrectedClock {
    pub fn new(inner: Arc<dyn Clock>) -> Arc<CorrectedClock> {
        Arc::new(CorrectedClock { inner, offset_ms: AtomicI64::new(0) })
    }

    /// How far this clock is moved from the one under it, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock by `by_ms` more.
    pub fn correct(&self, by_ms: i64) {
        self.offset_ms.fetch_add(by_ms, Ordering::Relaxed);
    }

    /// Sets the clock to `time_ms` (milliseconds since 1970) as of now: an absolute correction, so the
    /// same reading taken in twice moves it once.
    pub fn follow(&self, time_ms: i64) {
        let inner = self.inner.now().timestamp_millis();
        self.offset_ms.store(time_ms.saturating_sub(inner), Ordering::Relaxed);
    }
}

impl Clock for CorrectedClock {
    fn now(&self) -> DateTime<Utc> {
        let now = self.inner.now();
        chrono::Duration::try_milliseconds(self.offset_ms())
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now)
    }
    fn changes(&self) -> Option<watch::Receiver<DateTime<Utc>>> {
        self.inner.changes()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn changes(&self) -> Option<watch::Receiver<DateTime<Utc>>> {
        Some(self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrected_clock_moves_by_what_it_learns_and_no_more() {
        let start = Utc::now();
        let manual = ManualClock::new(start);
        let clock = CorrectedClock::new(manual.clone());
        clock.correct(5 * 86_400_000);
        assert_eq!(clock.now(), start + chrono::Duration::days(5));
        manual.advance(chrono::Duration::minutes(1));
        assert_eq!(clock.now(), start + chrono::Duration::days(5) + chrono::Duration::minutes(1));
        clock.correct(-86_400_000);
        assert_eq!(clock.offset_ms(), 4 * 86_400_000);
        // An absolute reading taken in twice moves the clock once.
        let province = start + chrono::Duration::days(2);
        clock.follow(province.timestamp_millis());
        clock.follow(province.timestamp_millis());
        assert_eq!(clock.now(), province);
        // An offset beyond what time can hold leaves the clock where it is rather than panicking.
        clock.correct(i64::MAX);
        assert_eq!(clock.now(), manual.now());
    }
}
