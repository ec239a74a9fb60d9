//! `outpost-ble` — wristband sightings, whatever saw them.
//!
//! Pure (no IO, no clock: times are passed in) except [`scan`]:
//! - [`adv`]: advertisement parsing — the Outpost band's manufacturer data (battery, strap, button,
//!   counter; layout in `docs/ble.md`), iBeacon and Eddystone-UID/TLM.
//! - [`gateway`]: site gateways' MQTT payloads — ESPresense and Theengs Gateway / OpenMQTTGateway —
//!   into the same [`Sighting`]s, with bad payloads refused as errors.
//! - [`presence`]: the presence engine — windowed-median RSSI, nearest scanner, present → unseen → away,
//!   strap and battery changes.
//! - [`scanners`]: the scanners' own health — up, down by their last will or silence — so that a
//!   dead gateway is one alert, not one per band.
//! - [`scan`]: the box's own adapter through btleplug (BlueZ over D-Bus), with a watchdog that
//!   restarts a stalled scan.
//! - [`sim`]: a simulated site full of bands (people walking about, leaving, batteries running down,
//!   straps opened), for the demo and for load.
//!
//! This crate depends on no other workspace crate.

pub mod adv;
pub mod gateway;
pub mod presence;
pub mod scan;
pub mod scanners;
pub mod sim;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use adv::{BandData, Beacon, Parsed};

/// One band seen by one scanner at one time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    /// The band's identity: its Bluetooth address (`AA:BB:CC:DD:EE:FF`) or a beacon identity.
    pub band: String,
    /// What saw it: the box's adapter, or a gateway (its room or name).
    pub scanner: String,
    /// Received signal strength, dBm (−127…0).
    pub rssi: i16,
    pub at: DateTime<Utc>,
    /// What the advertisement carried, when it could be read.
    #[serde(flatten)]
    pub parsed: Parsed,
}

/// A Bluetooth address in the one form the box uses: upper case, colon separated.
pub fn normalize_address(raw: &str) -> Option<String> {
    let hex: String = raw.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12 || raw.chars().any(|c| !(c.is_ascii_hexdigit() || c == ':' || c == '-')) {
        return None;
    }
    let up = hex.to_ascii_uppercase();
    Some((0..6).map(|i| &up[i * 2..i * 2 + 2]).collect::<Vec<_>>().join(":"))
}

/// Whether an RSSI is possible at all.
pub fn plausible_rssi(rssi: i64) -> bool {
    (-127..=0).contains(&rssi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(normalize_address("aabbccddeeff").as_deref(), Some("AA:BB:CC:DD:EE:FF"));
        assert_eq!(normalize_address("AA:bb:CC:dd:EE:ff").as_deref(), Some("AA:BB:CC:DD:EE:FF"));
        assert_eq!(normalize_address("AA-BB-CC-DD-EE-FF").as_deref(), Some("AA:BB:CC:DD:EE:FF"));
        assert!(normalize_address("AA:BB:CC").is_none());
        assert!(normalize_address("ZZ:BB:CC:DD:EE:FF").is_none());
        assert!(plausible_rssi(-70) && !plausible_rssi(20) && !plausible_rssi(-500));
    }
}
