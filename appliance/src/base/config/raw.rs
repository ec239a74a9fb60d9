//! The configuration as written: one struct per table of the TOML file, its keys exactly, no value
//! checked. `super::Config::validate` turns it into the typed sections.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The configuration as written in TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub site: RawSite,
    pub declarations: RawDeclarations,
    pub alerts: RawAlerts,
    pub web: RawWeb,
    pub mqtt: RawMqtt,
    pub tls: RawTls,
    pub bands: RawBands,
    pub privacy: RawPrivacy,
    pub sync: RawSync,
    pub store: RawStore,
    pub modem: RawModem,
    pub outbox: RawOutbox,
    pub spot_checks: RawSpotChecks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpotChecks {
    pub per_person_per_day: u32,
    pub waking_from: String,
    pub waking_to: String,
    pub deadline_minutes: u32,
    pub max_photo_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub listen: String,
    pub tls_listen: String,
    pub max_payload_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: String,
    pub key_file: String,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBands {
    pub adapter: String,
    pub watchdog_seconds: u64,
    pub unseen_after_seconds: u32,
    pub away_after_minutes: u32,
    pub scanner_silent_seconds: u32,
    pub battery_low_percent: u8,
    pub handover_min_battery_percent: u8,
    pub handover_seen_within_seconds: u32,
    pub sample_seconds: u32,
    pub retention_hours: u32,
    pub sample_write_seconds: u32,
    pub exposure_days: u32,
    pub simulated_bands: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    pub purge_after_days: u32,
    /// Days the gate's entry log is kept for tracing.
    pub checkin_days: u32,
    /// Days raw positions are kept on the box.
    pub position_days: u32,
    /// Days spot-check photos are kept on the box.
    pub photo_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModem {
    pub port: Ports,
    pub pin: String,
    pub baud: u32,
    pub validity_hours: u32,
    pub multipart_timeout_minutes: u32,
    pub simulator_part_seconds: [f64; 2],
}

/// `[modem] port`: one port, or a list of them (one modem each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ports {
    One(String),
    Many(Vec<String>),
}

impl Ports {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Ports::One(p) if p.is_empty() => Vec::new(),
            Ports::One(p) => vec![p.as_str()],
            Ports::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    pub name: String,
    pub district: String,
    pub commune: String,
    pub management_level: String,
    pub utc_offset: String,
    /// The Wi-Fi network people at the site join to reach the box (said on the gate poster, a
    /// person's card and the SMS with their link); empty: not said.
    #[serde(default)]
    pub wifi: String,
    /// The site's centre and the radius around it people in quarantine at the site must stay within
    /// [M8]; no site geofence without both coordinates.
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    pub geofence_m: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeclarations {
    pub schedule: Vec<String>,
    pub open_before_minutes: u32,
    pub reminder_after_minutes: u32,
    pub alert_after_reminder_minutes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub fever_celsius: f64,
    pub group_minutes: u32,
    pub digest_minutes: u32,
    pub spo2_below: u8,
    pub escalate_after_minutes: u32,
    pub on_duty_phones: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub listen: String,
    pub public_url: String,
    pub secure_cookies: bool,
    pub session_hours: u32,
    pub max_upload_bytes: usize,
    pub login_attempts: u32,
    pub login_lockout_minutes: u32,
    /// Rate limits on the public links and forms (`docs/security.md`); off only for load tests.
    #[serde(default = "yes")]
    pub rate_limits: bool,
    /// `host:port` of the HTTPS listener; empty: none (the web is plain HTTP on `listen`).
    #[serde(default)]
    pub tls_listen: String,
    /// A hosts file the access point's DNS reads: the site's name → `dns_address`; empty: none.
    #[serde(default)]
    pub dns_hosts_file: String,
    #[serde(default = "default_dns_address")]
    pub dns_address: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub interval_seconds: u32,
    pub max_backoff_seconds: u32,
    /// `host:port` to answer the province's pulls on; empty: none.
    #[serde(default)]
    pub listen: String,
    /// Beyond this many seconds from the province's clock, the box takes the province's time; 0: never.
    pub follow_province_clock_seconds: u32,
    /// `host:port` of the province's tunnel port, for phones from home; empty: none.
    #[serde(default)]
    pub reach: String,
    /// Hours the data link may be down before reports and severe alerts go by SMS; 0: never.
    pub sms_after_hours: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub data_dir: PathBuf,
    pub cache_mb: u64,
    pub card_write_cycles: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    pub min_interval_ms: u64,
    pub per_person_per_hour: u32,
    pub retry_seconds: u64,
    pub max_retry_seconds: u64,
}

/// NetworkManager's address for a shared connection (the box's access point).
fn default_dns_address() -> String {
    "10.42.0.1".to_owned()
}
