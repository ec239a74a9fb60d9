//! What a band's advertisement says, from its manufacturer-specific data (AD type 0xFF) and service
//! data (AD type 0x16). Pure; every malformed field is simply absent from the result, never a panic.
//!
//! **Outpost band layout** (company id 0xFFFF, the Bluetooth SIG's value for testing and internal use
//! until the product has its own; little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version, `0x01` |
//! | 1 | 1 | battery percent, 0–100 (`0xFF`: unknown) |
//! | 2 | 1 | flags: bit 0 strap closed, bit 1 button pressed, bit 2 charging |
//! | 3 | 2 | advertisement counter (wraps; a jump back means the band restarted) |
//!
//! Other beacons a site may buy instead: iBeacon (company 0x004C, `02 15`, UUID, major, minor, measured
//! power) and Eddystone (service 0xFEAA): UID frames (namespace, instance) and TLM frames (battery
//! voltage, temperature, counters).

use std::collections::BTreeMap;

use serde::Serialize;

/// The company id of Outpost bands (0xFFFF: reserved for testing and internal use).
pub const OUTPOST_COMPANY: u16 = 0xFFFF;
/// Apple's company id, under which iBeacons advertise.
pub const APPLE_COMPANY: u16 = 0x004C;
/// The Eddystone service UUID, 16-bit form.
pub const EDDYSTONE_SERVICE: u16 = 0xFEAA;

/// An advertisement's raw data, as btleplug or a gateway reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advertisement {
    /// Company id → manufacturer data (after the company id).
    pub manufacturer: BTreeMap<u16, Vec<u8>>,
    /// 16-bit service UUID → service data.
    pub service: BTreeMap<u16, Vec<u8>>,
    pub tx_power: Option<i16>,
}

/// An Outpost band's state, from its manufacturer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BandData {
    pub battery_percent: Option<u8>,
    pub strap_closed: bool,
    pub button: bool,
    pub charging: bool,
    pub counter: u16,
}

/// A third-party beacon's identity or telemetry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Beacon {
    IBeacon { uuid: String, major: u16, minor: u16, measured_power: i8 },
    EddystoneUid { namespace: String, instance: String, tx_power: i8 },
}

impl Beacon {
    /// The id a band of this kind is registered by, whatever address it advertises from (beacons
    /// rotate or share addresses; gateways key their messages by address): `iBeacon:<uuid>-<major>-
    /// <minor>` or `Eddystone:<namespace>-<instance>`, lowercase hex.
    pub fn band_id(&self) -> String {
        match self {
            Beacon::IBeacon { uuid, major, minor, .. } => {
                format!("iBeacon:{}-{major}-{minor}", uuid.to_ascii_lowercase())
            }
            Beacon::EddystoneUid { namespace, instance, .. } => {
                format!("Eddystone:{}-{}", namespace.to_ascii_lowercase(), instance.to_ascii_lowercase())
            }
        }
    }
}

/// Everything the advertisement carried that the box understands.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Parsed {
    /// An Outpost band's own fields (battery, strap, button, charging, counter), flattened in JSON.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub band: Option<BandData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beacon: Option<Beacon>,
    /// Battery voltage from an Eddystone-TLM frame, millivolts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
    /// Temperature from an Eddystone-TLM frame, °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f32>,
}

impl Parsed {
    /// The battery level as a percentage when known: the band's own, or estimated from an Eddystone
    /// voltage on a 3.0 V coin cell (2.2 V empty, 3.0 V full).
    pub fn battery_percent(&self) -> Option<u8> {
        self.band
            .and_then(|b| b.battery_percent)
            .or_else(|| self.battery_mv.map(|mv| (((f32::from(mv) - 2200.0) / 8.0).clamp(0.0, 100.0)) as u8))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads an advertisement.
pub fn parse(adv: &Advertisement) -> Parsed {
    let mut out = Parsed::default();
    if let Some(d) = adv.manufacturer.get(&OUTPOST_COMPANY) {
        out.band = band(d);
    }
    if let Some(d) = adv.manufacturer.get(&APPLE_COMPANY) {
        out.beacon = ibeacon(d);
    }
    if let Some(d) = adv.service.get(&EDDYSTONE_SERVICE) {
        match d.first() {
            Some(0x00) if d.len() >= 18 => {
                out.beacon = Some(Beacon::EddystoneUid {
                    tx_power: d[1] as i8,
                    namespace: hex(&d[2..12]),
                    instance: hex(&d[12..18]),
                });
            }
            Some(0x20) if d.len() >= 6 && d[1] == 0x00 => {
                out.battery_mv = Some(u16::from_be_bytes([d[2], d[3]])).filter(|mv| *mv > 0);
                let t = i16::from_be_bytes([d[4], d[5]]);
                // 0x8000 means "not supported" (Eddystone TLM).
                out.temperature_c = (t != i16::MIN).then(|| f32::from(t) / 256.0);
            }
            _ => {}
        }
    }
    out
}

fn band(d: &[u8]) -> Option<BandData> {
    match d {
        [0x01, battery, flags, c0, c1, ..] => Some(BandData {
            battery_percent: (*battery <= 100).then_some(*battery),
            strap_closed: flags & 0x01 != 0,
            button: flags & 0x02 != 0,
            charging: flags & 0x04 != 0,
            counter: u16::from_le_bytes([*c0, *c1]),
        }),
        _ => None,
    }
}

fn ibeacon(d: &[u8]) -> Option<Beacon> {
    if d.len() < 23 || d[0] != 0x02 || d[1] != 0x15 {
        return None;
    }
    let u = hex(&d[2..18]);
    let uuid = format!("{}-{}-{}-{}-{}", &u[0..8], &u[8..12], &u[12..16], &u[16..20], &u[20..32]);
    Some(Beacon::IBeacon {
        uuid,
        major: u16::from_be_bytes([d[18], d[19]]),
        minor: u16::from_be_bytes([d[20], d[21]]),
        measured_power: d[22] as i8,
    })
}

/// Builds the Outpost band's manufacturer data (for the simulator and tests).
pub fn encode_band(data: &BandData) -> Vec<u8> {
    let flags = u8::from(data.strap_closed) | u8::from(data.button) << 1 | u8::from(data.charging) << 2;
    let c = data.counter.to_le_bytes();
    vec![0x01, data.battery_percent.unwrap_or(0xFF), flags, c[0], c[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn outpost_band() {
        let data = BandData {
            battery_percent: Some(83),
            strap_closed: true,
            button: false,
            charging: false,
            counter: 513,
        };
        let mut adv = Advertisement::default();
        adv.manufacturer.insert(OUTPOST_COMPANY, encode_band(&data));
        assert_eq!(encode_band(&data), vec![0x01, 83, 0x01, 0x01, 0x02]);
        let p = parse(&adv);
        assert_eq!(p.band, Some(data));
        assert_eq!(p.battery_percent(), Some(83));
        let opened = BandData { strap_closed: false, battery_percent: None, ..data };
        adv.manufacturer.insert(OUTPOST_COMPANY, encode_band(&opened));
        assert_eq!(parse(&adv).band.map(|b| (b.strap_closed, b.battery_percent)), Some((false, None)));
        // Unknown versions and short payloads are ignored.
        adv.manufacturer.insert(OUTPOST_COMPANY, vec![0x02, 50, 1, 0, 0]);
        assert_eq!(parse(&adv).band, None);
        adv.manufacturer.insert(OUTPOST_COMPANY, vec![0x01, 50]);
        assert_eq!(parse(&adv).band, None);
    }

    #[test]
    fn ibeacon_frame() {
        // 02 15, UUID, major 1, minor 42, measured power -59 (0xC5).
        let mut adv = Advertisement::default();
        adv.manufacturer.insert(APPLE_COMPANY, from_hex("0215e2c56db5dffb48d2b060d0f5a71096e00001002ac5"));
        assert_eq!(
            parse(&adv).beacon,
            Some(Beacon::IBeacon {
                uuid: "e2c56db5-dffb-48d2-b060-d0f5a71096e0".into(),
                major: 1,
                minor: 42,
                measured_power: -59
            })
        );
        adv.manufacturer.insert(APPLE_COMPANY, from_hex("1005")); // an Apple "nearby" frame, not a beacon
        assert_eq!(parse(&adv).beacon, None);
    }

    #[test]
    fn eddystone_frames() {
        let mut adv = Advertisement::default();
        adv.service.insert(EDDYSTONE_SERVICE, from_hex("00e8edd5a1d8fb98c7e3b7b5aa0000000000070000"));
        match parse(&adv).beacon {
            Some(Beacon::EddystoneUid { namespace, instance, tx_power }) => {
                assert_eq!(
                    (namespace.as_str(), instance.as_str(), tx_power),
                    ("edd5a1d8fb98c7e3b7b5", "aa0000000000", -24)
                );
            }
            other => panic!("{other:?}"),
        }
        // TLM: 2.9 V, 22.5 °C.
        adv.service.insert(EDDYSTONE_SERVICE, from_hex("20000b5416800000000100000002"));
        let p = parse(&adv);
        assert_eq!((p.battery_mv, p.temperature_c), (Some(2900), Some(22.5)));
        assert_eq!(p.battery_percent(), Some(87));
        adv.service.insert(EDDYSTONE_SERVICE, from_hex("2000"));
        assert_eq!(parse(&adv).battery_mv, None, "a truncated frame is ignored");
    }
}
