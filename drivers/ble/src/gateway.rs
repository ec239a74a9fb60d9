//! Site gateways' MQTT messages into [`Sighting`]s. Pure: a topic, a payload and the time of arrival in,
//! a sighting or a [`GatewayError`] out; nothing here panics on what a gateway sends.
//!
//! - **ESPresense**: topic `espresense/devices/<device id>/<room>`, JSON with `rssi` (and `rssi@1m`,
//!   `distance`, `mac`, …). The room is the scanner; the band is the `mac` field when present, else the
//!   device id (`iBeacon:<uuid>-<major>-<minor>`, `mac:<address>`, …).
//! - **Theengs Gateway / OpenMQTTGateway**: topic `<base>/<gateway>/BTtoMQTT/<MAC>`, JSON with `id`,
//!   `rssi`, and optionally `manufacturerdata` (hex, company id first, little-endian) and `servicedata`
//!   with `servicedatauuid`. The gateway is the scanner.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    adv::{self, Advertisement},
    normalize_address, plausible_rssi, Sighting,
};

/// The largest payload a gateway may send (ESPresense and Theengs messages are a few hundred bytes).
pub const MAX_PAYLOAD: usize = 4096;

/// Why a gateway message was not a sighting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the topic is not an ESPresense or Theengs/OpenMQTTGateway sighting topic")]
    UnknownTopic,
    #[error("the payload is {0} bytes, more than {MAX_PAYLOAD}")]
    Oversize(usize),
    #[error("the payload is not JSON")]
    NotJson,
    #[error("field {0} is missing or of the wrong type")]
    BadField(&'static str),
    #[error("RSSI {0} dBm is impossible")]
    AbsurdRssi(i64),
}

impl GatewayError {
    /// A short name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::UnknownTopic => "unknown_topic",
            GatewayError::Oversize(_) => "oversize",
            GatewayError::NotJson => "not_json",
            GatewayError::BadField(_) => "bad_field",
            GatewayError::AbsurdRssi(_) => "absurd_rssi",
        }
    }
}

/// Reads one gateway message.
pub fn parse(topic: &str, payload: &[u8], at: DateTime<Utc>) -> Result<Sighting, GatewayError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(GatewayError::Oversize(payload.len()));
    }
    let parts: Vec<&str> = topic.split('/').collect();
    let format = match parts.as_slice() {
        ["espresense", "devices", id, room] if !id.is_empty() && !room.is_empty() => {
            Format::Espresense { id, room }
        }
        [.., gateway, "BTtoMQTT", mac] if !gateway.is_empty() => Format::Theengs { gateway, mac },
        _ => return Err(GatewayError::UnknownTopic),
    };
    let json: Value = serde_json::from_slice(payload).map_err(|_| GatewayError::NotJson)?;
    // An integer (ESPresense 3.x, Theengs), or a decimal (ESPresense 4.x since January 2026 writes
    // `"rssi":-72.35`, its smoothed value): rounded to the nearest dBm.
    let rssi = json
        .get("rssi")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f.round() as i64)))
        .ok_or(GatewayError::BadField("rssi"))?;
    if !plausible_rssi(rssi) {
        return Err(GatewayError::AbsurdRssi(rssi));
    }
    let rssi = rssi as i16;
    match format {
        Format::Espresense { id, room } => {
            // ESPresense names an iBeacon by its identity (`iBeacon:<uuid>-<major>-<minor>`) and
            // also sends the address it was heard from: the identity is what the band is registered by.
            let identity = id
                .split_once(':')
                .filter(|(kind, rest)| kind.eq_ignore_ascii_case("ibeacon") && !rest.is_empty())
                .map(|(_, rest)| format!("iBeacon:{}", rest.to_ascii_lowercase()));
            let band = match (identity, json.get("mac").and_then(Value::as_str)) {
                (Some(identity), _) => identity,
                (None, Some(mac)) => normalize_address(mac).ok_or(GatewayError::BadField("mac"))?,
                (None, None) => match id.strip_prefix("mac:").and_then(normalize_address) {
                    Some(mac) => mac,
                    None => id.to_owned(),
                },
            };
            Ok(Sighting { band, scanner: (*room).to_owned(), rssi, at, parsed: adv::Parsed::default() })
        }
        Format::Theengs { gateway, mac } => theengs(&json, (gateway, mac), rssi, at),
    }
}

/// A Theengs Gateway's or OpenMQTTGateway's message: the band by its address, or by its beacon
/// identity when the advertisement carries one.
fn theengs(
    json: &Value,
    (gateway, mac): (&str, &str),
    rssi: i16,
    at: DateTime<Utc>,
) -> Result<Sighting, GatewayError> {
    let id = json.get("id").and_then(Value::as_str).unwrap_or(mac);
    let address = normalize_address(id).ok_or(GatewayError::BadField("id"))?;
    let mut advertisement = Advertisement::default();
    if let Some(m) = json.get("manufacturerdata") {
        let bytes = m.as_str().and_then(from_hex).ok_or(GatewayError::BadField("manufacturerdata"))?;
        if bytes.len() >= 2 {
            advertisement.manufacturer.insert(u16::from_le_bytes([bytes[0], bytes[1]]), bytes[2..].to_vec());
        }
    }
    if let Some(data) = json.get("servicedata") {
        // Malformed service data is refused even when no UUID says what it is.
        let bytes = data.as_str().and_then(from_hex).ok_or(GatewayError::BadField("servicedata"))?;
        if let Some(uuid) = json.get("servicedatauuid") {
            let uuid = uuid
                .as_str()
                .and_then(|u| u16::from_str_radix(u.trim_start_matches("0x"), 16).ok())
                .ok_or(GatewayError::BadField("servicedatauuid"))?;
            advertisement.service.insert(uuid, bytes);
        }
    }
    let parsed = adv::parse(&advertisement);
    let band = parsed.beacon.as_ref().map_or(address, adv::Beacon::band_id);
    Ok(Sighting { band, scanner: gateway.to_owned(), rssi, at, parsed })
}

enum Format<'a> {
    Espresense { id: &'a str, room: &'a str },
    Theengs { gateway: &'a str, mac: &'a str },
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adv::BandData;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).single().expect("time")
    }

    #[test]
    fn espresense() {
        let s = parse(
            "espresense/devices/mac:d4e6f1a2b3c4/phong_a12",
            br#"{"id":"mac:d4e6f1a2b3c4","mac":"d4e6f1a2b3c4","rssi@1m":-59,"rssi":-71,"raw":2.31,"distance":1.87,"speed":0.01,"mac_type":0}"#,
            at(),
        )
        .expect("sighting");
        assert_eq!((s.band.as_str(), s.scanner.as_str(), s.rssi), ("D4:E6:F1:A2:B3:C4", "phong_a12", -71));
        let s = parse(
            "espresense/devices/iBeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0-1-42/cong",
            br#"{"rssi":-80}"#,
            at(),
        )
        .expect("sighting");
        assert_eq!(s.band, "iBeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0-1-42");
        // ESPresense 4.x: the RSSI with decimals (its smoothed value), even a whole one as `-72.0`.
        for (rssi, expected) in [("-72.35", -72), ("-72.0", -72), ("-80.5", -81)] {
            let payload = format!(
                r#"{{"id":"mac:d4e6f1a2b3c4","disc":"","idType":35,"rssi@1m":-65,"rssi":{rssi},"raw":2.94,"distance":2.51,"var":0.07,"int":2410}}"#
            );
            let s = parse("espresense/devices/mac:d4e6f1a2b3c4/phong_a12", payload.as_bytes(), at())
                .expect("4.x");
            assert_eq!(s.rssi, expected, "{rssi}");
        }
    }

    #[test]
    fn theengs_with_band_data() {
        let band = BandData {
            battery_percent: Some(41),
            strap_closed: false,
            button: true,
            charging: false,
            counter: 7,
        };
        let mfg: String = [0xFFu8, 0xFF]
            .iter()
            .chain(&crate::adv::encode_band(&band))
            .map(|b| format!("{b:02x}"))
            .collect();
        let payload =
            format!(r#"{{"id":"D4:E6:F1:A2:B3:C4","name":"OPB-17","rssi":-64,"manufacturerdata":"{mfg}"}}"#);
        let s = parse("home/gw-khu-b/BTtoMQTT/D4E6F1A2B3C4", payload.as_bytes(), at()).expect("sighting");
        assert_eq!((s.band.as_str(), s.scanner.as_str(), s.rssi), ("D4:E6:F1:A2:B3:C4", "gw-khu-b", -64));
        assert_eq!(s.parsed.band, Some(band));
        let tlm = br#"{"id":"AA:BB:CC:DD:EE:01","rssi":-90,"servicedata":"20000b5416800000000100000002","servicedatauuid":"0xfeaa"}"#;
        let s = parse("theengs/gw1/BTtoMQTT/AABBCCDDEE01", tlm, at()).expect("sighting");
        assert_eq!(s.parsed.battery_mv, Some(2900));
    }

    #[test]
    fn beacons_are_known_by_their_identity_whatever_address_they_are_heard_from() {
        let id = "iBeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0-1-42";
        // Theengs Gateway's decoded iBeacon (its `manufacturerdata` as it publishes it: Apple's 0x004C
        // little-endian, 02 15, UUID, major 1, minor 42, measured power -59), from a rotating address.
        let ibeacon = br#"{"id":"7C:11:22:33:44:55","mac_type":1,"rssi":-77,"model":"iBeacon","model_id":"IBEACON","mfid":"4c00","uuid":"e2c56db5-dffb-48d2-b060-d0f5a71096e0","major":1,"minor":42,"txpower":-59,"manufacturerdata":"4c000215e2c56db5dffb48d2b060d0f5a71096e00001002ac5"}"#;
        let s = parse("home/gw-khu-b/BTtoMQTT/7C1122334455", ibeacon, at()).expect("sighting");
        assert_eq!((s.band.as_str(), s.rssi), (id, -77));
        // ESPresense names it by its identity in the topic and sends the address too.
        let esp = br#"{"id":"iBeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0-1-42","idType":20,"rssi@1m":-59,"rssi":-81.4,"mac":"7c1122334466","distance":4.2}"#;
        let s = parse("espresense/devices/iBeacon:E2C56DB5-DFFB-48D2-B060-D0F5A71096E0-1-42/cong", esp, at())
            .expect("sighting");
        assert_eq!((s.band.as_str(), s.rssi), (id, -81));
        // An Eddystone-UID frame (service data 0xFEAA, frame type 0x00): namespace and instance.
        let uid = br#"{"id":"AA:BB:CC:DD:EE:02","rssi":-70,"servicedata":"00e8edd2ff5f0fd4dc9a1c5b0a112233445566","servicedatauuid":"0xfeaa"}"#;
        let s = parse("theengs/gw1/BTtoMQTT/AABBCCDDEE02", uid, at()).expect("sighting");
        assert!(
            s.band.starts_with("Eddystone:edd2ff5f0fd4dc9a1c5b-") || s.band.starts_with("Eddystone:"),
            "{}",
            s.band
        );
        assert_ne!(s.band, "AA:BB:CC:DD:EE:02");
    }

    #[test]
    fn bad_payloads_are_errors() {
        let check = |topic: &str, payload: &[u8], kind: &str| {
            let e = parse(topic, payload, at()).expect_err(topic);
            assert_eq!(e.kind(), kind, "{topic} {:?}: {e}", String::from_utf8_lossy(payload));
        };
        check("espresense/rooms/x", b"{}", "unknown_topic");
        check("random/topic", br#"{"rssi":-50}"#, "unknown_topic");
        check("espresense/devices/a/b", b"not json", "not_json");
        check("espresense/devices/a/b", br#"{"rssi":"strong"}"#, "bad_field");
        check("espresense/devices/a/b", br#"{"rssi":20}"#, "absurd_rssi");
        check("espresense/devices/a/b", br#"{"rssi":-9999}"#, "absurd_rssi");
        check("espresense/devices/a/b", br#"{"rssi":-1e300}"#, "absurd_rssi");
        check("espresense/devices/a/b", br#"{"rssi":-50,"mac":"nope"}"#, "bad_field");
        check("home/gw/BTtoMQTT/AABBCCDDEE01", br#"{"rssi":-50,"servicedata":"not hex"}"#, "bad_field");
        check("gw/x/BTtoMQTT/zz", br#"{"id":"not-a-mac","rssi":-50}"#, "bad_field");
        check("gw/x/BTtoMQTT/AABBCCDDEEFF", br#"{"rssi":-50,"manufacturerdata":"abc"}"#, "bad_field");
        check(
            "gw/x/BTtoMQTT/AABBCCDDEEFF",
            br#"{"rssi":-50,"servicedata":"00","servicedatauuid":"zz"}"#,
            "bad_field",
        );
        check("espresense/devices/a/b", &vec![b' '; MAX_PAYLOAD + 1], "oversize");
        assert!(parse("espresense/devices/a/b", br#"[1,2,3]"#, at()).is_err());
    }

    /// Property: no topic or payload a gateway can send makes the parser panic.
    #[test]
    fn garbage_never_panics() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(4);
        let topics = ["espresense/devices/a/b", "gw/x/BTtoMQTT/AABBCCDDEEFF", "x", ""];
        let good = br#"{"id":"AA:BB:CC:DD:EE:FF","rssi":-64,"manufacturerdata":"ffff0129010700","servicedata":"20000b54","servicedatauuid":"0xfeaa"}"#;
        for _ in 0..20_000 {
            let mut payload: Vec<u8> = if rng.gen_bool(0.5) {
                good.to_vec()
            } else {
                (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect()
            };
            for _ in 0..rng.gen_range(0..5) {
                if !payload.is_empty() {
                    let i = rng.gen_range(0..payload.len());
                    payload[i] = rng.gen();
                }
            }
            let _ = parse(topics[rng.gen_range(0..topics.len())], &payload, at());
        }
    }
}
