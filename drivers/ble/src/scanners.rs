//! Scanners' health: whether each gateway (and the box's own adapter) can see bands at all. Pure —
//! times are passed in.
//!
//! A scanner is **down** when its own status says so (ESPresense's `espresense/rooms/<room>/status`
//! and OpenMQTTGateway's / Theengs Gateway's `<base>/<gateway>/LWT`, both `offline` as the gateway's
//! MQTT last will, published by the broker when its connection drops), when nothing at all has come
//! from it for `silent_after` (a gateway whose Wi-Fi is gone but whose TCP connection the broker has
//! not yet given up on, or one that hangs), or when the box's adapter fails. It is **up** again
//! with anything it sends. Each change is reported once ([`Change`]); the presence engine then
//! treats the bands it placed as not covered (`crate::presence`), and the box raises one alert per
//! scanner instead of one per band.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The most scanners tracked: gateways are named by their device accounts, so a site has a few
/// dozen; past this, new names are not tracked.
pub const MAX_SCANNERS: usize = 512;

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Up,
    Down,
}

impl Health {
    /// As the API and the pages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Why a scanner is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// Its status topic said `offline` (its last will: the connection dropped, or it said so).
    Offline,
    /// Nothing came from it for the configured time.
    Silent,
    /// The box's adapter failed (the error).
    Adapter(String),
}

/// What a gateway reports about itself, where it sends any (ESPresense's telemetry,
/// OpenMQTTGateway's `SYStoMQTT`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Telemetry {
    /// Firmware version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    /// The gateway's Wi-Fi signal, dBm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wifi_rssi: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_memory: Option<u64>,
    /// Advertisements it heard since its last report, where it counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adverts: Option<u64>,
}

/// What a scanner said about itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Online,
    Offline,
    Telemetry(Telemetry),
    /// The box's adapter failed.
    AdapterFailed(String),
}

/// One scanner as the box knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scanner {
    pub name: String,
    pub health: Health,
    /// Since when it has been in that health.
    pub since: DateTime<Utc>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DownReason>,
    /// When anything last came from it.
    pub last_heard: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry_at: Option<DateTime<Utc>>,
}

/// A change of a scanner's health, reported once.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Heard for the first time, up (one first heard saying it is offline is kept without a
    /// change: the box never saw it up).
    First {
        scanner: String,
        at: DateTime<Utc>,
    },
    Down {
        scanner: String,
        reason: DownReason,
        last_heard: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Up {
        scanner: String,
        at: DateTime<Utc>,
    },
}

/// Every scanner the box has heard of.
#[derive(Debug)]
pub struct Scanners {
    silent_after: Duration,
    map: BTreeMap<String, Scanner>,
}

impl Scanners {
    pub fn new(silent_after: Duration) -> Scanners {
        Scanners { silent_after, map: BTreeMap::new() }
    }

    /// A scanner the box knew before it started, in the health it was left in; its silence counts
    /// from `now`. Returns whether it is tracked.
    pub fn known(&mut self, scanner: Scanner, now: DateTime<Utc>) -> bool {
        if self.map.len() >= MAX_SCANNERS {
            return false;
        }
        let name = scanner.name.clone();
        self.map.insert(name, Scanner { last_heard: now, ..scanner });
        true
    }

    /// Something came from `scanner` at `at` (a sighting, telemetry, a status).
    pub fn heard(&mut self, scanner: &str, at: DateTime<Utc>) -> Option<Change> {
        self.report(scanner, Report::Online, at)
    }

    /// Takes what `scanner` said at `at`; returns the change of health, if any. A scanner not
    /// yet known is added ([`Change::First`] if up).
    pub fn report(&mut self, scanner: &str, report: Report, at: DateTime<Utc>) -> Option<Change> {
        let down = match &report {
            Report::Offline => Some(DownReason::Offline),
            Report::AdapterFailed(error) => Some(DownReason::Adapter(error.clone())),
            Report::Online | Report::Telemetry(_) => None,
        };
        let Some(s) = self.map.get_mut(scanner) else {
            if self.map.len() < MAX_SCANNERS {
                let health = if down.is_some() { Health::Down } else { Health::Up };
                let mut s = Scanner {
                    name: scanner.to_owned(),
                    health,
                    since: at,
                    reason: down,
                    last_heard: at,
                    telemetry: None,
                    telemetry_at: None,
                };
                if let Report::Telemetry(t) = report {
                    (s.telemetry, s.telemetry_at) = (Some(t), Some(at));
                }
                self.map.insert(scanner.to_owned(), s);
                if health == Health::Up {
                    return Some(Change::First { scanner: scanner.to_owned(), at });
                }
            }
            return None;
        };
        if let Report::Telemetry(t) = report {
            (s.telemetry, s.telemetry_at) = (Some(t), Some(at));
        }
        match (s.health, down) {
            (Health::Up, Some(reason)) => {
                // Its last word is its last will: what it said before still counts as heard.
                let last_heard = s.last_heard;
                (s.health, s.since, s.reason) = (Health::Down, at, Some(reason.clone()));
                Some(Change::Down { scanner: scanner.to_owned(), reason, last_heard, at })
            }
            (Health::Down, None) => {
                s.last_heard = s.last_heard.max(at);
                (s.health, s.since, s.reason) = (Health::Up, at, None);
                Some(Change::Up { scanner: scanner.to_owned(), at })
            }
            (Health::Up, None) => {
                s.last_heard = s.last_heard.max(at);
                None
            }
            (Health::Down, Some(_)) => None,
        }
    }

    /// Scanners silent for `silent_after` at `now` go down.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let mut changes = Vec::new();
        for s in self.map.values_mut() {
            if s.health == Health::Up && now - s.last_heard >= self.silent_after {
                (s.health, s.since, s.reason) = (Health::Down, now, Some(DownReason::Silent));
                changes.push(Change::Down {
                    scanner: s.name.clone(),
                    reason: DownReason::Silent,
                    last_heard: s.last_heard,
                    at: now,
                });
            }
        }
        changes
    }

    /// Forgets a scanner (taken away from the site); whether it was known.
    pub fn forget(&mut self, scanner: &str) -> bool {
        self.map.remove(scanner).is_some()
    }

    pub fn get(&self, scanner: &str) -> Option<&Scanner> {
        self.map.get(scanner)
    }

    /// Every scanner, by name.
    pub fn list(&self) -> Vec<Scanner> {
        self.map.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("time") + Duration::seconds(s)
    }

    #[test]
    fn last_will_silence_and_return_each_change_once() {
        let mut s = Scanners::new(Duration::seconds(180));
        assert_eq!(s.heard("phong-a12", t(0)), Some(Change::First { scanner: "phong-a12".into(), at: t(0) }));
        assert_eq!(s.heard("phong-a12", t(10)), None);
        let down = s.report("phong-a12", Report::Offline, t(40));
        assert_eq!(
            down,
            Some(Change::Down {
                scanner: "phong-a12".into(),
                reason: DownReason::Offline,
                last_heard: t(10),
                at: t(40)
            })
        );
        assert_eq!(s.report("phong-a12", Report::Offline, t(41)), None, "once");
        assert!(s.tick(t(1_000)).is_empty(), "already down");
        assert_eq!(
            s.heard("phong-a12", t(1_001)),
            Some(Change::Up { scanner: "phong-a12".into(), at: t(1_001) })
        );
        // Silence: down once after `silent_after`, not before.
        assert!(s.tick(t(1_180)).is_empty());
        let silent = s.tick(t(1_181));
        assert!(matches!(&silent[..], [Change::Down { reason: DownReason::Silent, .. }]), "{silent:?}");
        assert!(s.tick(t(2_000)).is_empty());
        // Telemetry counts as heard, and is kept.
        let tele = Telemetry { version: Some("v4.1.0".into()), ..Telemetry::default() };
        assert!(matches!(
            s.report("phong-a12", Report::Telemetry(tele.clone()), t(2_001)),
            Some(Change::Up { .. })
        ));
        assert_eq!(s.get("phong-a12").and_then(|x| x.telemetry.clone()), Some(tele));
    }

    #[test]
    fn a_scanner_first_heard_offline_raises_nothing_and_names_are_capped() {
        let mut s = Scanners::new(Duration::seconds(180));
        assert_eq!(s.report("cu", Report::Offline, t(0)), None);
        assert_eq!(s.get("cu").map(|x| x.health), Some(Health::Down));
        for i in 0..MAX_SCANNERS + 10 {
            s.heard(&format!("gw-{i}"), t(1));
        }
        assert_eq!(s.list().len(), MAX_SCANNERS);
        assert!(s.forget("cu") && !s.forget("cu"));
    }

    #[test]
    fn the_adapter_fails_and_recovers() {
        let mut s = Scanners::new(Duration::seconds(180));
        assert!(matches!(s.heard("site", t(0)), Some(Change::First { .. })));
        let down = s.report("site", Report::AdapterFailed("org.bluez.Error.NotReady".into()), t(5));
        assert!(matches!(down, Some(Change::Down { reason: DownReason::Adapter(_), .. })));
        assert!(matches!(s.heard("site", t(65)), Some(Change::Up { .. })));
    }
}
