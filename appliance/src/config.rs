//! The box's configuration: one TOML file over embedded defaults, parsed raw and then validated into
//! [`Config`], the struct the program uses. Reading the file is the caller's job; this module does no IO.

use std::{net::SocketAddr, path::PathBuf};

use chrono::{FixedOffset, NaiveTime};
use serde::{Deserialize, Serialize};

/// The embedded defaults, printed by `outpost print-config` and overridden key by key by a site's file.
pub const DEFAULT_TOML: &str = include_str!("../assets/default.toml");

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
    pub battery_low_percent: u8,
    pub handover_min_battery_percent: u8,
    pub handover_seen_within_seconds: u32,
    pub sample_seconds: u32,
    pub retention_hours: u32,
    pub simulated_bands: u32,
}

/// Where the box's own BLE sightings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    None,
    /// A simulated site full of bands.
    Simulator,
    /// A Bluetooth adapter through BlueZ: its name (`hci0`), or the first one for `auto`.
    Adapter(String),
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
    pub port: String,
    pub pin: String,
    pub baud: u32,
    pub validity_hours: u32,
    pub multipart_timeout_minutes: u32,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub data_dir: PathBuf,
    pub cache_mb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    pub min_interval_ms: u64,
    pub retry_seconds: u64,
    pub max_retry_seconds: u64,
}

/// A configuration that does not parse or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is not valid TOML")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub utc_offset: FixedOffset,
    pub schedule: Vec<NaiveTime>,
    pub listen: SocketAddr,
    pub public_url: String,
    /// Random spot checks fall between these site-local times.
    pub spot_wake_from: NaiveTime,
    pub spot_wake_to: NaiveTime,
}

/// Which SMS sender the box uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemChoice {
    /// No modem: messages are recorded as sent in the log.
    None,
    /// The simulated modem on a pseudo-terminal.
    Simulator,
    /// A modem on this serial port.
    Port(PathBuf),
}

impl Config {
    pub fn adapter(&self) -> AdapterChoice {
        match self.raw.bands.adapter.as_str() {
            "" => AdapterChoice::None,
            "simulator" => AdapterChoice::Simulator,
            a => AdapterChoice::Adapter(a.to_owned()),
        }
    }

    /// The presence engine's thresholds.
    pub fn presence(&self) -> outpost_ble::presence::PresenceConfig {
        let b = &self.raw.bands;
        outpost_ble::presence::PresenceConfig {
            unseen_after: chrono::Duration::seconds(b.unseen_after_seconds.into()),
            away_after: chrono::Duration::minutes(b.away_after_minutes.into()),
            battery_low_percent: b.battery_low_percent,
            ..outpost_ble::presence::PresenceConfig::default()
        }
    }

    pub fn modem(&self) -> ModemChoice {
        match self.raw.modem.port.as_str() {
            "" => ModemChoice::None,
            "simulator" => ModemChoice::Simulator,
            p => ModemChoice::Port(PathBuf::from(p)),
        }
    }
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, problem: problem.into() }
}

/// Merges `overlay` into `base`, table by table, key by key.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Config {
    /// The defaults with `site_toml` (a site's file, possibly empty) laid over them.
    pub fn from_toml(site_toml: &str) -> Result<Config, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML.parse()?;
        merge(&mut table, site_toml.parse()?);
        let raw: RawConfig = toml::Value::Table(table).try_into()?;
        Config::validate(raw)
    }

    /// Checks every value and derives the typed ones.
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.site.id.is_empty() || !raw.site.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid("site.id", "use letters, digits and '-' only"));
        }
        let utc_offset = parse_offset(&raw.site.utc_offset)
            .ok_or_else(|| invalid("site.utc_offset", "expected an offset such as +07:00"))?;
        let mut schedule = Vec::new();
        for t in &raw.declarations.schedule {
            schedule.push(
                NaiveTime::parse_from_str(t, "%H:%M")
                    .map_err(|_| invalid("declarations.schedule", format!("{t:?} is not HH:MM")))?,
            );
        }
        schedule.sort();
        schedule.dedup();
        if schedule.is_empty() {
            return Err(invalid("declarations.schedule", "at least one time is needed"));
        }
        if raw.declarations.reminder_after_minutes == 0 || raw.declarations.alert_after_reminder_minutes == 0
        {
            return Err(invalid("declarations", "grace periods must be at least one minute"));
        }
        if !(34.0..=43.0).contains(&raw.alerts.fever_celsius) {
            return Err(invalid("alerts.fever_celsius", "expected a temperature between 34 and 43 °C"));
        }
        if !(50..=100).contains(&raw.alerts.spo2_below) {
            return Err(invalid("alerts.spo2_below", "expected a percentage between 50 and 100"));
        }
        let b = &raw.bands;
        if b.unseen_after_seconds == 0
            || i64::from(b.away_after_minutes) * 60 <= i64::from(b.unseen_after_seconds)
        {
            return Err(invalid(
                "bands",
                "away_after_minutes must be longer than unseen_after_seconds, both above 0",
            ));
        }
        if b.battery_low_percent > 100 || b.handover_min_battery_percent > 100 {
            return Err(invalid("bands", "battery levels are percentages (0–100)"));
        }
        if b.sample_seconds == 0 || b.retention_hours == 0 || b.watchdog_seconds < 10 {
            return Err(invalid(
                "bands",
                "sample_seconds and retention_hours must be above 0, watchdog_seconds at least 10",
            ));
        }
        if raw.alerts.escalate_after_minutes == 0 {
            return Err(invalid("alerts.escalate_after_minutes", "must be at least one minute"));
        }
        let listen: SocketAddr = raw
            .web
            .listen
            .parse()
            .map_err(|_| invalid("web.listen", "expected an address such as 0.0.0.0:8080"))?;
        if raw.web.session_hours == 0 || raw.web.login_attempts == 0 {
            return Err(invalid("web", "session_hours and login_attempts must be at least 1"));
        }
        if raw.web.max_upload_bytes < 1024 {
            return Err(invalid("web.max_upload_bytes", "must be at least 1024"));
        }
        for phone in &raw.alerts.on_duty_phones {
            crate::validate::phone(phone)
                .map_err(|_| invalid("alerts.on_duty_phones", format!("{phone:?} is not a phone number")))?;
        }
        for (key, value, example) in
            [("mqtt.listen", &raw.mqtt.listen, "1883"), ("mqtt.tls_listen", &raw.mqtt.tls_listen, "8883")]
        {
            if !value.is_empty() && value.parse::<SocketAddr>().is_err() {
                return Err(invalid(key, format!("expected an address such as 0.0.0.0:{example}, or empty")));
            }
        }
        if raw.tls.cert_file.is_empty() != raw.tls.key_file.is_empty() {
            return Err(invalid("tls", "cert_file and key_file go together: both or neither"));
        }
        for name in &raw.tls.names {
            if name.parse::<std::net::IpAddr>().is_err() && !crate::validate::host_name(name) {
                return Err(invalid("tls.names", format!("{name:?} is neither a host name nor an address")));
            }
        }
        if !(256..=1_048_576).contains(&raw.mqtt.max_payload_bytes) {
            return Err(invalid("mqtt.max_payload_bytes", "expected 256 to 1048576"));
        }
        if raw.sync.interval_seconds == 0 || raw.sync.max_backoff_seconds < raw.sync.interval_seconds {
            return Err(invalid("sync", "interval_seconds must be ≥ 1 and ≤ max_backoff_seconds"));
        }
        if !raw.sync.listen.is_empty() && raw.sync.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "sync.listen",
                "expected an address and port, such as 0.0.0.0:8444, or \"\"",
            ));
        }
        if raw.privacy.position_days == 0 {
            return Err(invalid("privacy.position_days", "must be at least 1"));
        }
        if raw.site.latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l))
            || raw.site.longitude.is_some_and(|l| !(-180.0..=180.0).contains(&l))
        {
            return Err(invalid("site.latitude", "latitude must be -90 to 90 and longitude -180 to 180"));
        }
        if raw.privacy.checkin_days == 0 {
            return Err(invalid("privacy.checkin_days", "must be at least 1"));
        }
        if raw.privacy.purge_after_days == 0 {
            return Err(invalid("privacy.purge_after_days", "must be at least 1"));
        }
        if raw.modem.validity_hours == 0 || raw.modem.multipart_timeout_minutes == 0 {
            return Err(invalid("modem", "validity_hours and multipart_timeout_minutes must be at least 1"));
        }
        if !raw.modem.pin.is_empty() && !(4..=8).contains(&raw.modem.pin.len()) {
            return Err(invalid("modem.pin", "a SIM PIN has 4 to 8 digits"));
        }
        if raw.outbox.retry_seconds == 0 || raw.outbox.max_retry_seconds < raw.outbox.retry_seconds {
            return Err(invalid("outbox", "retry_seconds must be ≥ 1 and ≤ max_retry_seconds"));
        }
        let public_url = if raw.web.public_url.is_empty() {
            format!("http://{listen}")
        } else {
            raw.web.public_url.trim_end_matches('/').to_owned()
        };
        let wake = |field: &'static str, raw: &str| {
            NaiveTime::parse_from_str(raw, "%H:%M")
                .map_err(|_| invalid(field, "expected a time such as 07:00"))
        };
        let spot_wake_from = wake("spot_checks.waking_from", &raw.spot_checks.waking_from)?;
        let spot_wake_to = wake("spot_checks.waking_to", &raw.spot_checks.waking_to)?;
        if spot_wake_to <= spot_wake_from {
            return Err(invalid("spot_checks.waking_to", "must be after waking_from"));
        }
        if raw.spot_checks.deadline_minutes == 0 || raw.privacy.photo_days == 0 {
            return Err(invalid(
                "spot_checks.deadline_minutes",
                "deadline_minutes and privacy.photo_days must be at least 1",
            ));
        }
        Ok(Config { raw, utc_offset, schedule, listen, public_url, spot_wake_from, spot_wake_to })
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.raw).unwrap_or_default()
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml("").expect("defaults");
        assert_eq!(c.schedule.len(), 3);
        assert_eq!(c.utc_offset.local_minus_utc(), 7 * 3600);
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn overrides_and_errors() {
        let c = Config::from_toml("[declarations]\nschedule = [\"21:00\", \"07:30\"]\n").expect("ok");
        assert_eq!(c.schedule[0], NaiveTime::from_hms_opt(7, 30, 0).expect("time"));
        let e = Config::from_toml("[declarations]\nschedule = [\"25:00\"]\n").expect_err("bad");
        assert!(e.to_string().contains("declarations.schedule"), "{e}");
        let e = Config::from_toml("[web]\nlisten = \"nowhere\"\n").expect_err("bad");
        assert!(e.to_string().contains("web.listen"), "{e}");
        let e = Config::from_toml("[web]\nlistn = \"x\"\n").expect_err("typo");
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.contains("listn"), "{chain}");
        assert!(Config::from_toml("[site\n").is_err());
    }

    #[test]
    fn printed_config_parses_back() {
        let c = Config::from_toml("[alerts]\nfever_celsius = 37.8\n").expect("ok");
        let again = Config::from_toml(&c.to_toml()).expect("reparse");
        assert_eq!(again.raw.alerts.fever_celsius, 37.8);
    }
}
