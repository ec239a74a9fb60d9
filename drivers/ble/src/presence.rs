//! The presence engine: sightings in, presence out. Pure — times come from the sightings and from the
//! caller's clock in [`Engine::tick`] — and bounded: per band and scanner it keeps at most
//! [`PresenceConfig::window`] recent RSSI samples.
//!
//! **Smoothing: a windowed median.** Each (band, scanner) pair keeps its last few RSSI samples from the
//! last `window_seconds`; the smoothed RSSI is their median. A median ignores the single-sample spikes
//! and dropouts BLE is full of (a body between band and scanner, a reflection) without a noise model to
//! tune per site, costs a sort of a handful of numbers, and forgets a moved band within one window. A
//! Kalman filter would follow slow drifts more smoothly, but needs process and measurement noise values
//! that differ by building and band; nobody at a quarantine site can tune them. ESPresense made the same
//! choice.
//!
//! **States.** A band is `present` while some scanner saw it within `unseen_after`, `unseen` after that,
//! and `away` once nothing has seen it for `away_after` (btleplug never reports a device as gone, so
//! absence is decided here). Its place is the scanner with the strongest smoothed RSSI among those that
//! saw it recently. The engine also reports a strap opened and a battery falling below the low mark,
//! once per change.
//!
//! **Scanners down.** When the box learns that a scanner is down (its last will, its silence, the
//! box's own adapter failing: `crate::scanners`), a band whose place is that scanner and that is no
//! longer heard becomes `not_covered` instead of unseen or away: nothing can see it, so its silence
//! says nothing about where its wearer is, and it raises no alert. Heard by another scanner, it is
//! present again at once; once its scanner is back, its silence counts from that moment.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::Sighting;

/// Thresholds and sizes.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// Samples kept per band and scanner.
    pub window: usize,
    /// Samples older than this are not used.
    pub window_seconds: i64,
    pub unseen_after: Duration,
    pub away_after: Duration,
    /// A battery at or below this percentage is low.
    pub battery_low_percent: u8,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            window: 7,
            window_seconds: 30,
            unseen_after: Duration::seconds(60),
            away_after: Duration::minutes(10),
            battery_low_percent: 20,
        }
    }
}

/// Where a band stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Present,
    Unseen,
    Away,
    /// The scanner that last placed it is down, and no other hears it.
    NotCovered,
}

/// Something the box should act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PresenceEvent {
    /// The band's state changed (`Away → Present` closes an away alert).
    State {
        band: String,
        from: State,
        to: State,
        at: DateTime<Utc>,
    },
    /// The nearest scanner changed.
    Moved {
        band: String,
        scanner: String,
        at: DateTime<Utc>,
    },
    StrapOpened {
        band: String,
        at: DateTime<Utc>,
    },
    StrapClosed {
        band: String,
        at: DateTime<Utc>,
    },
    BatteryLow {
        band: String,
        percent: u8,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Default)]
struct Track {
    samples: Vec<(DateTime<Utc>, i16)>,
    last_seen: Option<DateTime<Utc>>,
}

impl Track {
    fn push(&mut self, at: DateTime<Utc>, rssi: i16, config: &PresenceConfig) {
        self.samples.push((at, rssi));
        let oldest = at - Duration::seconds(config.window_seconds);
        self.samples.retain(|(t, _)| *t >= oldest);
        if self.samples.len() > config.window {
            let extra = self.samples.len() - config.window;
            self.samples.drain(..extra);
        }
        self.last_seen = Some(self.last_seen.map_or(at, |l| l.max(at)));
    }

    fn median(&self) -> Option<i16> {
        let mut v: Vec<i16> = self.samples.iter().map(|(_, r)| *r).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[v.len() / 2])
    }
}

/// What the engine knows of one band.
#[derive(Debug)]
struct Band {
    scanners: HashMap<String, Track>,
    state: State,
    place: Option<String>,
    strap_closed: Option<bool>,
    battery_low: bool,
    battery_percent: Option<u8>,
    last_seen: DateTime<Utc>,
    /// When its scanner came back after an outage: its silence counts from then.
    covered_since: Option<DateTime<Utc>>,
}

impl Band {
    fn new(state: State, place: Option<String>, at: DateTime<Utc>) -> Band {
        Band {
            scanners: HashMap::new(),
            state,
            place,
            strap_closed: None,
            battery_low: false,
            battery_percent: None,
            last_seen: at,
            covered_since: None,
        }
    }
}

/// A band's presence, for pages and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Presence {
    pub band: String,
    pub state: State,
    pub place: Option<String>,
    pub rssi: Option<i16>,
    pub last_seen: DateTime<Utc>,
    pub battery_percent: Option<u8>,
    pub strap_closed: Option<bool>,
}

/// The engine.
#[derive(Debug, Default)]
pub struct Engine {
    config: PresenceConfig,
    bands: HashMap<String, Band>,
    /// Scanners known to be down, with when each was last heard.
    down: HashMap<String, DateTime<Utc>>,
}

impl Engine {
    pub fn new(config: PresenceConfig) -> Engine {
        Engine { config, bands: HashMap::new(), down: HashMap::new() }
    }

    /// Takes one sighting; returns what changed.
    pub fn observe(&mut self, s: &Sighting) -> Vec<PresenceEvent> {
        let mut events = Vec::new();
        let config = &self.config;
        let band = self.bands.entry(s.band.clone()).or_insert_with(|| Band::new(State::Away, None, s.at));
        band.scanners.entry(s.scanner.clone()).or_default().push(s.at, s.rssi, config);
        band.last_seen = band.last_seen.max(s.at);
        band.covered_since = None;
        if band.state != State::Present {
            events.push(PresenceEvent::State {
                band: s.band.clone(),
                from: band.state,
                to: State::Present,
                at: s.at,
            });
            band.state = State::Present;
        }
        if let Some(data) = s.parsed.band {
            if band.strap_closed != Some(data.strap_closed) {
                if data.strap_closed && band.strap_closed.is_some() {
                    events.push(PresenceEvent::StrapClosed { band: s.band.clone(), at: s.at });
                } else if !data.strap_closed {
                    events.push(PresenceEvent::StrapOpened { band: s.band.clone(), at: s.at });
                }
                band.strap_closed = Some(data.strap_closed);
            }
        }
        if let Some(p) = s.parsed.battery_percent() {
            band.battery_percent = Some(p);
            let low = p <= config.battery_low_percent;
            if low && !band.battery_low {
                events.push(PresenceEvent::BatteryLow { band: s.band.clone(), percent: p, at: s.at });
            }
            band.battery_low = low;
        }
        let recent = s.at - config.unseen_after;
        let nearest = band
            .scanners
            .iter()
            .filter(|(_, t)| t.last_seen.is_some_and(|l| l >= recent))
            .filter_map(|(name, t)| t.median().map(|m| (m, name)))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            .map(|(_, name)| name.clone());
        if nearest.is_some() && nearest != band.place {
            band.place = nearest.clone();
            if let Some(scanner) = nearest {
                events.push(PresenceEvent::Moved { band: s.band.clone(), scanner, at: s.at });
            }
        }
        events
    }

    /// Decides absence at `now`: bands nobody has seen for a while become unseen, then away.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<PresenceEvent> {
        let mut events = Vec::new();
        for (id, band) in &mut self.bands {
            let silent = now - band.covered_since.map_or(band.last_seen, |c| c.max(band.last_seen));
            let uncovered = covered_by_down(band, &self.down, self.config.unseen_after);
            let to = if silent < self.config.unseen_after || band.state == State::Away {
                // Present until silent; away stays away until heard.
                band.state
            } else if uncovered {
                State::NotCovered
            } else if silent >= self.config.away_after {
                State::Away
            } else {
                State::Unseen
            };
            if to != band.state && to != State::Present {
                events.push(PresenceEvent::State { band: id.clone(), from: band.state, to, at: now });
                band.state = to;
            }
        }
        events.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        events
    }

    /// Tells the engine to expect `band`, present as of `at` at `place` (where it was last placed,
    /// if known), unless it already knows it: after a restart, a band someone wears is then reported
    /// away if nothing sees it, instead of never, and not covered if its scanner is down.
    pub fn expect(&mut self, band: &str, at: DateTime<Utc>, place: Option<String>) {
        self.bands.entry(band.to_owned()).or_insert_with(|| Band::new(State::Present, place, at));
    }

    /// A scanner last heard at `last_heard` is down: the bands it placed and still heard within
    /// `unseen_after` of its end (returned, by id) become not covered once silent instead of unseen
    /// or away (see [`Engine::tick`]). A band it had stopped hearing while it still spoke is not
    /// excused by its failure.
    pub fn scanner_down(&mut self, scanner: &str, last_heard: DateTime<Utc>) -> Vec<String> {
        self.down.insert(scanner.to_owned(), last_heard);
        let mut placed: Vec<String> = self
            .bands
            .iter()
            .filter(|(_, b)| {
                b.state != State::Away && covered_by_down(b, &self.down, self.config.unseen_after)
            })
            .filter(|(_, b)| b.place.as_deref() == Some(scanner))
            .map(|(id, _)| id.clone())
            .collect();
        placed.sort();
        placed
    }

    /// A scanner is back at `at`: the bands it left not covered are expected to be heard again,
    /// and their silence counts from `at`.
    pub fn scanner_up(&mut self, scanner: &str, at: DateTime<Utc>) {
        self.down.remove(scanner);
        for band in self.bands.values_mut() {
            if band.state == State::NotCovered && band.place.as_deref() == Some(scanner) {
                band.covered_since = Some(at);
            }
        }
    }

    /// One band's presence.
    pub fn get(&self, band: &str) -> Option<Presence> {
        self.bands.get(band).map(|b| view(band, b))
    }

    /// Every band's presence, by band id.
    pub fn snapshot(&self) -> Vec<Presence> {
        let mut out: Vec<Presence> = self.bands.iter().map(|(id, b)| view(id, b)).collect();
        out.sort_by(|a, b| a.band.cmp(&b.band));
        out
    }

    /// How many bands the engine tracks.
    pub fn len(&self) -> usize {
        self.bands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bands.is_empty()
    }
}

/// Whether `band` was placed by a scanner now down that still heard it within `unseen_after` of
/// the scanner's last word.
fn covered_by_down(band: &Band, down: &HashMap<String, DateTime<Utc>>, unseen_after: Duration) -> bool {
    band.place
        .as_ref()
        .and_then(|p| down.get(p))
        .is_some_and(|last_heard| band.last_seen >= *last_heard - unseen_after)
}

fn view(id: &str, b: &Band) -> Presence {
    Presence {
        band: id.to_owned(),
        state: b.state,
        place: b.place.clone(),
        rssi: b.place.as_ref().and_then(|p| b.scanners.get(p)).and_then(Track::median),
        last_seen: b.last_seen,
        battery_percent: b.battery_percent,
        strap_closed: b.strap_closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adv::{BandData, Parsed};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("time")
    }

    fn seen(band: &str, scanner: &str, rssi: i16, secs: i64, data: Option<BandData>) -> Sighting {
        Sighting {
            band: band.into(),
            scanner: scanner.into(),
            rssi,
            at: t0() + Duration::seconds(secs),
            parsed: Parsed { band: data, ..Parsed::default() },
        }
    }

    fn data(battery: u8, strap: bool) -> Option<BandData> {
        Some(BandData {
            battery_percent: Some(battery),
            strap_closed: strap,
            button: false,
            charging: false,
            counter: 0,
        })
    }

    #[test]
    fn median_ignores_spikes_and_picks_the_nearest_scanner() {
        let mut e = Engine::new(PresenceConfig::default());
        let mut moved = Vec::new();
        for (i, (a, b)) in
            [(-60, -80), (-61, -79), (-30, -81), (-59, -78), (-62, -20), (-60, -80), (-61, -79)]
                .iter()
                .enumerate()
        {
            for ev in e
                .observe(&seen("B1", "phong_a12", *a, i as i64, None))
                .into_iter()
                .chain(e.observe(&seen("B1", "hanh_lang", *b, i as i64, None)))
            {
                if let PresenceEvent::Moved { scanner, .. } = ev {
                    moved.push(scanner);
                }
            }
        }
        assert_eq!(moved, vec!["phong_a12"], "one spike on either side never moved the band");
        let p = &e.snapshot()[0];
        assert_eq!((p.place.as_deref(), p.rssi, p.state), (Some("phong_a12"), Some(-60), State::Present));
    }

    #[test]
    fn present_unseen_away_and_back() {
        let mut e = Engine::new(PresenceConfig::default());
        let first = e.observe(&seen("B1", "s1", -60, 0, None));
        assert!(matches!(first[0], PresenceEvent::State { from: State::Away, to: State::Present, .. }));
        assert!(e.tick(t0() + Duration::seconds(59)).is_empty());
        // A band expected after a restart keeps what the engine knew.
        e.expect("B1", t0() + Duration::seconds(30), None);
        assert_eq!(e.get("B1").map(|p| p.last_seen), Some(t0()));
        let unseen = e.tick(t0() + Duration::seconds(60));
        assert!(matches!(unseen[..], [PresenceEvent::State { to: State::Unseen, .. }]));
        assert!(e.tick(t0() + Duration::seconds(300)).is_empty(), "once");
        let away = e.tick(t0() + Duration::minutes(10));
        assert!(matches!(away[..], [PresenceEvent::State { from: State::Unseen, to: State::Away, .. }]));
        let back = e.observe(&seen("B1", "s2", -70, 900, None));
        assert!(
            matches!(back[0], PresenceEvent::State { from: State::Away, to: State::Present, .. }),
            "{back:?}"
        );
        assert!(
            matches!(&back[1], PresenceEvent::Moved { scanner, .. } if scanner == "s2"),
            "the old scanner is stale"
        );
    }

    #[test]
    fn strap_and_battery_once_per_change() {
        let mut e = Engine::new(PresenceConfig::default());
        let kinds = |evs: Vec<PresenceEvent>| -> Vec<String> {
            evs.into_iter()
                .filter(|e| !matches!(e, PresenceEvent::State { .. } | PresenceEvent::Moved { .. }))
                .map(|e| format!("{e:?}").split_whitespace().next().unwrap_or("").to_owned())
                .collect()
        };
        // Expected but never seen: away after the configured time, like any other band.
        e.expect("B9", t0(), None);
        assert!(matches!(
            e.tick(t0() + Duration::minutes(10))[..],
            [PresenceEvent::State { from: State::Present, to: State::Away, .. }]
        ));
        assert!(kinds(e.observe(&seen("B1", "s", -60, 0, data(90, true)))).is_empty());
        assert_eq!(kinds(e.observe(&seen("B1", "s", -60, 1, data(90, false)))), vec!["StrapOpened"]);
        assert!(kinds(e.observe(&seen("B1", "s", -60, 2, data(90, false)))).is_empty());
        assert_eq!(kinds(e.observe(&seen("B1", "s", -60, 3, data(90, true)))), vec!["StrapClosed"]);
        assert_eq!(kinds(e.observe(&seen("B1", "s", -60, 4, data(20, true)))), vec!["BatteryLow"]);
        assert!(kinds(e.observe(&seen("B1", "s", -60, 5, data(18, true)))).is_empty());
        assert!(kinds(e.observe(&seen("B1", "s", -60, 6, data(100, true)))).is_empty(), "charged");
        assert_eq!(kinds(e.observe(&seen("B1", "s", -60, 7, data(15, true)))), vec!["BatteryLow"]);
        // A band first seen with its strap open reports it.
        assert_eq!(kinds(e.observe(&seen("B2", "s", -60, 0, data(90, false)))), vec!["StrapOpened"]);
    }

    fn states(events: &[PresenceEvent]) -> Vec<(String, State)> {
        events
            .iter()
            .filter_map(|e| match e {
                PresenceEvent::State { band, to, .. } => Some((band.clone(), *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_scanner_down_leaves_its_bands_not_covered_never_away() {
        let mut e = Engine::new(PresenceConfig::default());
        // B1 and B2 in room A, B3 heard by A only until a minute before A died (it left).
        e.observe(&seen("B3", "A", -60, 0, None));
        for s in 0..=120 {
            for band in ["B1", "B2"] {
                e.observe(&seen(band, "A", -60, s, None));
            }
        }
        assert_eq!(states(&e.tick(t0() + Duration::seconds(121))), vec![("B3".into(), State::Unseen)]);
        let placed = e.scanner_down("A", t0() + Duration::seconds(120));
        assert_eq!(placed, vec!["B1", "B2"], "B3 went quiet while A still spoke");
        // A minute of silence: not covered, not unseen; then nothing for an hour, no away.
        let mut changes = states(&e.tick(t0() + Duration::seconds(181)));
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(changes, vec![("B1".into(), State::NotCovered), ("B2".into(), State::NotCovered)]);
        let later = states(&e.tick(t0() + Duration::minutes(62)));
        assert_eq!(later, vec![("B3".into(), State::Away)], "only the band that really left");
        assert_eq!(e.get("B1").map(|p| p.state), Some(State::NotCovered));
        // B2 heard by another scanner: present at once.
        let back = e.observe(&seen("B2", "B", -75, 3_800, None));
        assert_eq!(states(&back), vec![("B2".into(), State::Present)]);
        // A back: B1's silence counts from then; unseen a minute later, away ten minutes later.
        let up = t0() + Duration::seconds(4_000);
        e.scanner_up("A", up);
        assert!(states(&e.tick(up + Duration::seconds(59))).iter().all(|(b, _)| b != "B1"));
        assert!(states(&e.tick(up + Duration::seconds(60))).contains(&("B1".into(), State::Unseen)));
        assert!(!states(&e.tick(up + Duration::seconds(599))).contains(&("B1".into(), State::Away)));
        assert!(states(&e.tick(up + Duration::seconds(600))).contains(&("B1".into(), State::Away)));
    }

    #[test]
    fn a_band_already_unseen_when_its_scanner_falls_silent_is_not_covered() {
        let mut e = Engine::new(PresenceConfig::default());
        e.observe(&seen("B1", "box", -60, 0, None));
        for m in 1..=2 {
            e.tick(t0() + Duration::minutes(m));
        }
        assert_eq!(e.get("B1").map(|p| p.state), Some(State::Unseen));
        assert_eq!(e.scanner_down("box", t0()), vec!["B1"]);
        for m in 3..=15 {
            let events = e.tick(t0() + Duration::minutes(m));
            assert!(!states(&events).iter().any(|(_, s)| *s == State::Away), "minute {m}");
        }
        assert_eq!(e.get("B1").map(|p| p.state), Some(State::NotCovered));
    }

    #[test]
    fn memory_is_bounded_per_band_and_scanner() {
        let mut e = Engine::new(PresenceConfig::default());
        for i in 0..10_000 {
            e.observe(&seen("B1", "s", -60 - (i % 5) as i16, i / 10, None));
        }
        let samples: usize =
            e.bands.values().flat_map(|b| b.scanners.values()).map(|t| t.samples.len()).sum();
        assert!(samples <= 7, "{samples}");
    }
}
