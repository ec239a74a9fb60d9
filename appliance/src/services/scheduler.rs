//! The scheduler: every 30 seconds (or, on a manual clock, at each line that moves it) one pass —
//! the operations' pass over slots, spot checks and escalations (`crate::app::schedule`), the
//! presence engine's pass, and once an hour the erasure of what has been kept long enough.
//!
//! A manual clock is moved from standard input: `set <RFC 3339 time>`, `advance <N>s|m|h`, `tick`.
//! After each line the pass runs once and a line `clock <time> reminders=… alerts=… escalations=… (… by_sms=…)
//! presence=…` is printed, so a test knows the box has caught up.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use super::presence::PresenceView;
use crate::{
    app::{schedule::TickReport, AppResult, Outpost},
    base::clock::ManualClock,
};

/// The pass and what it remembers between passes.
pub struct Scheduler {
    app: Arc<Outpost>,
    presence: Option<PresenceView>,
    /// When kept data was last looked at for erasure (hourly).
    last_purge: Option<DateTime<Utc>>,
}

impl Scheduler {
    pub fn new(app: Arc<Outpost>, presence: Option<PresenceView>) -> Scheduler {
        Scheduler { app, presence, last_purge: None }
    }

    /// One pass at the box's current time.
    pub async fn pass(&mut self) -> AppResult<TickReport> {
        let now = self.app.now();
        let ticked = self.app.tick().await;
        // The presence engine's pass does not wait on the operations' (it writes on its own thread).
        let presence = match &self.presence {
            Some(p) => p.tick(now).await,
            None => 0,
        };
        let mut report = ticked?;
        report.presence = presence;
        if self.last_purge.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
            self.last_purge = Some(now);
            report.purged = self.app.purge_expired(now).await?;
        }
        Ok(report)
    }

    /// Runs a pass every 30 seconds until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            if let Err(error) = self.pass().await {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Scheduler pass failed.");
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }

    /// Moves `clock` from standard input until cancelled, with a pass after each line.
    pub async fn run_manual(mut self, clock: Arc<ManualClock>, cancel: CancellationToken) {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        loop {
            let line = tokio::select! {
                _ = cancel.cancelled() => return,
                line = lines.next_line() => line,
            };
            let Ok(Some(line)) = line else {
                // Standard input closed: keep the clock where it is until shutdown.
                cancel.cancelled().await;
                return;
            };
            let answer = match move_clock(&clock, &line) {
                Err(e) => format!("clock-error {e}"),
                Ok(()) => match self.pass().await {
                    Ok(r) => format!(
                        "clock {} reminders={} alerts={} escalations={} presence={} by_sms={}",
                        self.app.now().to_rfc3339(),
                        r.reminders,
                        r.alerts,
                        r.escalations,
                        r.presence,
                        r.by_sms
                    ),
                    Err(e) => format!("clock-error {:#}", anyhow::Error::from(e)),
                },
            };
            super::say(&answer);
        }
    }
}

/// Applies one line of the manual clock's language.
fn move_clock(clock: &ManualClock, line: &str) -> Result<(), String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("set"), Some(t)) => DateTime::parse_from_rfc3339(t)
            .map(|t| {
                clock.set(t.with_timezone(&Utc));
            })
            .map_err(|e| e.to_string()),
        (Some("advance"), Some(d)) => parse_duration(d).map(|d| {
            clock.advance(d);
        }),
        (Some("tick"), None) => Ok(()),
        _ => Err(format!("unknown command {line:?}")),
    }
}

fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(format!("bad duration {s:?} (use s, m, h or d)")),
    }
}
