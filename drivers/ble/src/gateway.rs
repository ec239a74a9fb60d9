//! Site gateways' MQTT messages into [`Sighting`]s. Pure: a topic, a payload and the time of arrival in,
//! a sighting or a [`GatewayError`] out; nothing here panics on what a gateway sends.
//!
//! - **ESPresense**: topic `espresense/devices/<device id>/<room>`, JSON with `rssi` (and `rssi@1m`,
//!   `distance`, `mac`, …). The room is the scanner; the band is the `mac` field when present, else the
//!   device id (`iBeacon:<uuid>-<major>-<minor>`, `mac:<address>`, …).
//! - **Theengs Gateway / OpenMQTTGateway**: topic `<base>/<gateway>/BTtoMQTT/<MAC>`, JSON with `id`,
//!   `rssi`, and optionally `manufacturerdata` (hex, company id first, little-endian) and `servicedata`
//!   with `servicedatauuid`. The gateway is the scanner.
//!
//! And what gateways say about themselves ([`read`] → [`Message`]), for `crate::scanners`:
//! - ESPresense: `espresense/rooms/<room>/status`, `online` / `offline` (its MQTT last will,
//!   retained; keep-alive 15 s), and `espresense/rooms/<room>/telemetry` every 15 s (`ip`,
//!   `uptime`, `rssi`, `ver`, `adverts`, `freeHeap`, … — ESPresense's `src/main.cpp`,
//!   `sendTelemetry()`).
//! - OpenMQTTGateway: `<base>/<gateway>/LWT`, `online` / `offline` (last will; keep-alive 60 s), and
//!   `<base>/<gateway>/SYStoMQTT` every 120 s (`uptime`, `version`, `freemem`, `rssi`, `ip`, … —
//!   its `main/main.cpp`, `stateMeasures()`; `freeMem` in firmware before 1.0).
//! - Theengs Gateway: `<base>/<gateway>/LWT` only (`TheengsGateway/ble_gateway.py`,
//!   `connect_mqtt()`); it sends no telemetry.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    adv::{self, Advertisement},
    normalize_address, plausible_rssi,
    scanners::{Report, Telemetry},
    Sighting,
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

/// A gateway's message: a sighting, or what it says about itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Sighting(Sighting),
    /// A scanner's status or telemetry.
    Scanner {
        scanner: String,
        report: Report,
    },
}

/// The topic filters of everything [`read`] understands.
pub const FILTERS: [&str; 6] = [
    "espresense/devices/#",
    "+/+/BTtoMQTT/+",
    "espresense/rooms/+/status",
    "espresense/rooms/+/telemetry",
    "+/+/LWT",
    "+/+/SYStoMQTT",
];

/// Reads one gateway message: a sighting ([`parse`]), a status or telemetry.
pub fn read(topic: &str, payload: &[u8], at: DateTime<Utc>) -> Result<Message, GatewayError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(GatewayError::Oversize(payload.len()));
    }
    let parts: Vec<&str> = topic.split('/').collect();
    let (scanner, status) = match parts.as_slice() {
        ["espresense", "rooms", room, "status"] => (room, true),
        ["espresense", "rooms", room, "telemetry"] => (room, false),
        [_, gateway, "LWT"] => (gateway, true),
        [_, gateway, "SYStoMQTT"] => (gateway, false),
        _ => return parse(topic, payload, at).map(Message::Sighting),
    };
    if scanner.is_empty() {
        return Err(GatewayError::UnknownTopic);
    }
    let report = if status {
        match payload.trim_ascii() {
            b"online" => Report::Online,
            b"offline" => Report::Offline,
            _ => return Err(GatewayError::BadField("status")),
        }
    } else {
        Report::Telemetry(telemetry(payload)?)
    };
    Ok(Message::Scanner { scanner: (*scanner).to_owned(), report })
}

/// ESPresense's telemetry or OpenMQTTGateway's `SYStoMQTT`, the fields the box shows.
fn telemetry(payload: &[u8]) -> Result<Telemetry, GatewayError> {
    let json: Value = serde_json::from_slice(payload).map_err(|_| GatewayError::NotJson)?;
    let Value::Object(o) = json else { return Err(GatewayError::BadField("telemetry")) };
    let text = |k: &str| o.get(k).and_then(Value::as_str).map(|s| s.chars().take(64).collect::<String>());
    let number = |keys: &[&str]| keys.iter().find_map(|k| o.get(*k).and_then(Value::as_u64));
    Ok(Telemetry {
        version: text("ver").or_else(|| text("version")),
        ip: text("ip"),
        uptime_seconds: number(&["uptime"]),
        wifi_rssi: o.get("rssi").and_then(Value::as_i64).filter(|r| plausible_rssi(*r)),
        free_memory: number(&["freeHeap", "freemem", "freeMem"]),
        adverts: number(&["adverts"]),
    })
}

/// Reads one gateway message that should be a sighting.
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
    fn status_and_telemetry() {
        let scanner = |topic: &str, payload: &[u8]| match read(topic, payload, at()) {
            Ok(Message::Scanner { scanner, report }) => (scanner, report),
            other => panic!("{topic}: {other:?}"),
        };
        // ESPresense (src/main.cpp: `setWill(statusTopic, 0, true, "offline")`, "online" on connect).
        assert_eq!(
            scanner("espresense/rooms/phong-a12/status", b"offline"),
            ("phong-a12".into(), Report::Offline)
        );
        assert_eq!(
            scanner("espresense/rooms/phong-a12/status", b"online"),
            ("phong-a12".into(), Report::Online)
        );
        // Its telemetry, with the fields `sendTelemetry()` writes.
        let tele = br#"{"ip":"192.168.4.21","uptime":3600,"firm":"esp32","rssi":-61,"ver":"v4.0.6","adverts":52341,"seen":812,"queried":14,"reported":790,"freeHeap":81234,"maxHeap":65524,"scanStack":1044,"loopStack":2900,"bleStack":2100}"#;
        let (name, report) = scanner("espresense/rooms/phong-a12/telemetry", tele);
        assert_eq!(name, "phong-a12");
        assert_eq!(
            report,
            Report::Telemetry(Telemetry {
                version: Some("v4.0.6".into()),
                ip: Some("192.168.4.21".into()),
                uptime_seconds: Some(3600),
                wifi_rssi: Some(-61),
                free_memory: Some(81234),
                adverts: Some(52341),
            })
        );
        // OpenMQTTGateway (main/User_config.h: will "offline" on `<base><gateway>/LWT`; SYStoMQTT as
        // quoted in its issue #537, firmware 0.9.2, and as `stateMeasures()` writes it today).
        assert_eq!(scanner("home/OMG_2nd_floor/LWT", b"offline"), ("OMG_2nd_floor".into(), Report::Offline));
        let old = br#"{"version": "0.9.2", "uptime":3480,"freeMem":45352,"rssi":-56,"SSID":"wifi","ip":"192.168.0.37","mac":"61:C6:3A:EA:20:88","modules":"RF"}"#;
        let (_, Report::Telemetry(t)) = scanner("home/OMG_2nd_floor/SYStoMQTT", old) else {
            panic!("telemetry")
        };
        assert_eq!(
            (t.version.as_deref(), t.free_memory, t.uptime_seconds),
            (Some("0.9.2"), Some(45352), Some(3480))
        );
        let new = br#"{"uptime":120,"version":"v1.8.1","freemem":112340,"mqttp":"1883","mqtts":false,"msgprc":40,"msgblck":0,"msgrcv":2,"maxq":12,"cnt_index":0,"minmem":90000,"tempc":48.3,"freestck":1200,"powermode":-1,"eth":false,"rssi":-67,"SSID":"tram-y-te","BSSID":"AA:BB:CC:00:11:22","ip":"192.168.4.30","mac":"24:0A:C4:00:00:01","modules":["BT","SYS"]}"#;
        let (_, Report::Telemetry(t)) = scanner("home/gw-khu-b/SYStoMQTT", new) else { panic!("telemetry") };
        assert_eq!((t.free_memory, t.wifi_rssi), (Some(112340), Some(-67)));
        // Theengs Gateway (TheengsGateway/ble_gateway.py: will "offline" on `home/TheengsGateway/LWT`).
        assert_eq!(scanner("home/TheengsGateway/LWT", b"online"), ("TheengsGateway".into(), Report::Online));
        // Sightings still read as sightings.
        assert!(matches!(
            read("home/gw/BTtoMQTT/AABBCCDDEEFF", br#"{"id":"AA:BB:CC:DD:EE:FF","rssi":-60}"#, at()),
            Ok(Message::Sighting(_))
        ));
        for (topic, payload) in [
            ("home/gw/LWT", &b"maybe"[..]),
            ("espresense/rooms/a/telemetry", b"[1]"),
            ("espresense/rooms/a/telemetry", b"nope"),
            ("espresense/rooms//status", b"online"),
        ] {
            assert!(read(topic, payload, at()).is_err(), "{topic}");
        }
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
        let topics = [
            "espresense/devices/a/b",
            "gw/x/BTtoMQTT/AABBCCDDEEFF",
            "gw/x/SYStoMQTT",
            "espresense/rooms/a/status",
            "x",
            "",
        ];
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
            let _ = read(topics[rng.gen_range(0..topics.len())], &payload, at());
        }
    }
}
