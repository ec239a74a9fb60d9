//! A simulated site full of bands, for the demo and for load: people in their rooms, walking the
//! corridor now and then, a few leaving the site for a while, batteries running down, a strap opened
//! once in a while, and bands on the charger at the desk. Pure and deterministic: a seed, the time
//! passed in, sightings out.
//!
//! Each room has a scanner; a band is heard by the scanner of the room it is in (around −60 dBm) and,
//! more faintly, by the corridor's (around −85 dBm).

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{adv::BandData, Parsed, Sighting};

/// The scanner in the corridor; the desk's scanner is `quay-tiep-nhan`.
pub const CORRIDOR: &str = "hanh-lang";
pub const DESK: &str = "quay-tiep-nhan";

/// How often things happen, per band and hour.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub walk_per_hour: f64,
    pub leave_per_hour: f64,
    pub strap_per_hour: f64,
    /// Battery percent lost per hour.
    pub drain_per_hour: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { walk_per_hour: 0.5, leave_per_hour: 0.03, strap_per_hour: 0.01, drain_per_hour: 0.8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    Room,
    Corridor { until: DateTime<Utc> },
    Gone { until: DateTime<Utc> },
}

#[derive(Debug, Clone)]
struct SimBand {
    address: String,
    room: String,
    battery: f64,
    strap_closed: bool,
    at: Where,
    counter: u16,
}

/// The simulated site.
pub struct SiteSim {
    rng: StdRng,
    config: SimConfig,
    bands: Vec<SimBand>,
    last: Option<DateTime<Utc>>,
}

/// The address of simulated band `i` (a locally administered address, never a real device's).
pub fn address(i: usize) -> String {
    format!("C2:00:00:00:{:02X}:{:02X}", (i >> 8) & 0xFF, i & 0xFF)
}

impl SiteSim {
    /// `rooms[i]` is the room of band `i`.
    pub fn new(seed: u64, rooms: &[String], config: SimConfig) -> SiteSim {
        let mut rng = StdRng::seed_from_u64(seed);
        let bands = rooms
            .iter()
            .enumerate()
            .map(|(i, room)| SimBand {
                address: address(i),
                room: room.clone(),
                battery: rng.gen_range(82.0..100.0),
                strap_closed: true,
                at: Where::Room,
                counter: 0,
            })
            .collect();
        SiteSim { rng, config, bands, last: None }
    }

    /// The simulated bands' addresses, in order.
    pub fn addresses(&self) -> Vec<String> {
        self.bands.iter().map(|b| b.address.clone()).collect()
    }

    /// The simulated site's scanners: each room's, and the corridor's.
    pub fn scanners(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.bands.iter().map(|b| b.room.clone()).chain([CORRIDOR.to_owned()]).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Moves the site on to `now` and returns what the scanners hear at that moment.
    pub fn step(&mut self, now: DateTime<Utc>) -> Vec<Sighting> {
        let hours = self.last.map_or(0.0, |l| ((now - l).num_milliseconds().max(0) as f64) / 3_600_000.0);
        self.last = Some(now);
        let mut out = Vec::with_capacity(self.bands.len() * 2);
        let c = self.config.clone();
        for b in &mut self.bands {
            b.battery = (b.battery - c.drain_per_hour * hours).max(0.0);
            let chance = |rate: f64, rng: &mut StdRng| rng.gen_bool((rate * hours).clamp(0.0, 1.0));
            b.at = match b.at {
                Where::Corridor { until } | Where::Gone { until } if now >= until => Where::Room,
                Where::Room if chance(c.leave_per_hour, &mut self.rng) => {
                    Where::Gone { until: now + Duration::minutes(self.rng.gen_range(12..45)) }
                }
                Where::Room if chance(c.walk_per_hour, &mut self.rng) => {
                    Where::Corridor { until: now + Duration::minutes(self.rng.gen_range(1..6)) }
                }
                other => other,
            };
            if chance(c.strap_per_hour, &mut self.rng) {
                b.strap_closed = !b.strap_closed;
            }
            if matches!(b.at, Where::Gone { .. }) || b.battery < 1.0 {
                continue;
            }
            b.counter = b.counter.wrapping_add(1);
            let parsed = Parsed {
                band: Some(BandData {
                    battery_percent: Some(b.battery.round() as u8),
                    strap_closed: b.strap_closed,
                    button: false,
                    charging: false,
                    counter: b.counter,
                }),
                ..Parsed::default()
            };
            let (near, far) = match b.at {
                Where::Corridor { .. } => (CORRIDOR, b.room.as_str()),
                _ => (b.room.as_str(), CORRIDOR),
            };
            for (scanner, base) in [(near, -60), (far, -85)] {
                out.push(Sighting {
                    band: b.address.clone(),
                    scanner: scanner.to_owned(),
                    rssi: base + self.rng.gen_range(-6..=6),
                    at: now,
                    parsed: parsed.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::{Engine, PresenceConfig, PresenceEvent, State};
    use chrono::TimeZone;

    #[test]
    fn a_simulated_day_has_people_leaving_and_coming_back() {
        let rooms: Vec<String> = (0..50).map(|i| format!("A{:02}", i / 2)).collect();
        let mut sim = SiteSim::new(7, &rooms, SimConfig::default());
        let mut engine = Engine::new(PresenceConfig::default());
        let t0 = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).single().expect("t0");
        let (mut away, mut back, mut moved) = (0, 0, 0);
        for s in 0..(24 * 360) {
            let now = t0 + Duration::seconds(10 * s);
            for sighting in sim.step(now) {
                for e in engine.observe(&sighting) {
                    match e {
                        PresenceEvent::State { from: State::Away, to: State::Present, .. } => back += 1,
                        PresenceEvent::Moved { .. } => moved += 1,
                        _ => {}
                    }
                }
            }
            away += engine
                .tick(now)
                .iter()
                .filter(|e| matches!(e, PresenceEvent::State { to: State::Away, .. }))
                .count();
        }
        assert!(away > 5 && back > 50 + 5 && moved > 100, "away {away}, back {back}, moved {moved}");
        // Same seed, same site.
        let mut again = SiteSim::new(7, &rooms, SimConfig::default());
        let mut first = SiteSim::new(7, &rooms, SimConfig::default());
        assert_eq!(again.step(t0), first.step(t0));
    }
}
