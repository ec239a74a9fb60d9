//! The injected clock. Everything that asks "what time is it" asks a [`Clock`], so a test can run a whole
//! quarantine day in milliseconds with a [`ManualClock`]. Nothing here sleeps or schedules.

use std::sync::{Arc, Mutex};

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

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn changes(&self) -> Option<watch::Receiver<DateTime<Utc>>> {
        Some(self.tx.subscribe())
    }
}
