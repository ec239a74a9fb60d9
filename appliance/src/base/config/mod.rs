//! The box's configuration: one TOML file over embedded defaults, parsed raw ([`RawConfig`], exactly
//! as written) and then validated once into [`Config`], typed sections the program uses: addresses
//! parsed, times as durations, choices as enums, the declaration [`Schedule`] and alert
//! [`Thresholds`] built. Reading the file is the caller's job; this module does no IO.
//!
//! The raw form ([`raw`]: one struct per table, exactly the file's keys) stays beside the typed one
//! for `outpost print-config` (and for a tool that changes a value and validates again); nothing
//! else reads it.

use std::{net::SocketAddr, path::PathBuf, time::Duration as StdDuration};

use chrono::{Duration, FixedOffset, NaiveTime};
use outpost_sync::record::Geofence;

use crate::base::rules::{Schedule, Thresholds};

pub mod raw;
pub use raw::*;

/// The embedded defaults, printed by `outpost print-config` and overridden key by key by a site's file.
pub const DEFAULT_TOML: &str = include_str!("../../../assets/default.toml");

/// A configuration that does not parse or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is not valid TOML")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// The validated configuration: one typed section per table of the file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration as written, for `print-config`; the program reads the sections below.
    pub raw: RawConfig,
    pub site: SiteConfig,
    /// When declarations are due (`[declarations]` with the site's UTC offset).
    pub schedule: Schedule,
    pub alerts: AlertsConfig,
    pub web: WebConfig,
    pub mqtt: MqttConfig,
    pub tls: TlsConfig,
    pub bands: BandsConfig,
    pub privacy: PrivacyConfig,
    pub sync: SyncConfig,
    pub store: StoreConfig,
    pub modem: ModemConfig,
    pub outbox: OutboxConfig,
    pub spot_checks: SpotChecksConfig,
}

/// `[site]`.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub id: String,
    pub name: String,
    pub district: String,
    pub commune: String,
    pub management_level: String,
    pub utc_offset: FixedOffset,
    /// The Wi-Fi network to join at the site (empty: none said).
    pub wifi: String,
    /// The site's geofence [M8], when both coordinates and a radius are set.
    pub geofence: Option<Geofence>,
}

/// `[alerts]`.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub thresholds: Thresholds,
    pub escalate_after: Duration,
    pub on_duty_phones: Vec<String>,
    /// Open alerts of one kind raised within this of their group's first are shown as one group.
    pub group_window: Duration,
    /// At most one digest SMS of alerts that are not severe this often (`None`: never).
    pub digest_every: Option<Duration>,
}

/// `[web]`.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// The address phones reach the box at, without a trailing `/`.
    pub public_url: String,
    /// Whether `public_url` was configured (else the box sets it once it listens).
    pub public_url_given: bool,
    pub secure_cookies: bool,
    pub session_hours: u32,
    pub max_upload_bytes: usize,
    pub login_attempts: u32,
    /// Rate limits on the public links and forms.
    pub rate_limits: bool,
    /// The HTTPS listener, if any: then `listen` only redirects to it (and answers `/healthz`), and
    /// cookies are `Secure`.
    pub tls_listen: Option<SocketAddr>,
    /// Where the box writes `<dns_address> <the site's name>` for the access point's DNS, once the
    /// site's trusted certificate is served.
    pub dns_hosts: Option<(PathBuf, std::net::IpAddr)>,
    pub login_lockout: Duration,
}

/// `[mqtt]`: each port, if open.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub listen: Option<SocketAddr>,
    pub tls_listen: Option<SocketAddr>,
    pub max_payload_bytes: usize,
}

/// `[tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// A certificate and key of the site's own (else the box makes and keeps one).
    pub files: Option<(PathBuf, PathBuf)>,
    pub names: Vec<String>,
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

/// `[bands]`.
#[derive(Debug, Clone)]
pub struct BandsConfig {
    pub adapter: AdapterChoice,
    pub watchdog: StdDuration,
    /// The presence engine's thresholds.
    pub presence: outpost_ble::presence::PresenceConfig,
    /// A scanner silent this long is down.
    pub scanner_silent_after: Duration,
    pub battery_low_percent: u8,
    pub handover_min_battery_percent: u8,
    pub handover_seen_within: Duration,
    pub sample_every: Duration,
    pub retention: Duration,
    /// How long raw samples wait in memory before they are written as one block (the most a power
    /// cut loses of them).
    pub sample_write_every: Duration,
    /// How many days an exposure list looks back.
    pub exposure_days: u32,
    pub simulated_bands: usize,
}

/// `[privacy]`: how long each kind of personal data is kept.
#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    /// After release or transfer.
    pub purge_after: Duration,
    pub check_ins_kept: Duration,
    pub positions_kept: Duration,
    pub photos_kept: Duration,
}

/// `[sync]`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub interval: StdDuration,
    pub max_backoff: StdDuration,
    /// Where the province may pull this site from.
    pub listen: Option<SocketAddr>,
    /// Beyond this far from the province's clock, the box takes the province's time; `None`: never.
    pub follow_province_clock: Option<StdDuration>,
    /// `host:port` of the province's tunnel port: phones from home reach the box through it.
    pub reach: Option<String>,
    /// The data link down this long: confirmed reports and severe alerts go to the province by SMS;
    /// `None`: never.
    pub sms_after: Option<Duration>,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub cache_bytes: u64,
    /// The SD card's rated full writes (for its projected life).
    pub card_write_cycles: u32,
}

/// One of the box's modems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemChoice {
    /// The simulated modem on a pseudo-terminal.
    Simulator,
    /// A modem on this serial port.
    Port(PathBuf),
}

impl std::fmt::Display for ModemChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModemChoice::Simulator => f.write_str("simulator"),
            ModemChoice::Port(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `[modem]`.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// The modems, each with its own driver; none: messages are recorded as sent in the log.
    pub ports: Vec<ModemChoice>,
    pub pin: Option<String>,
    pub baud: u32,
    pub validity_minutes: u32,
    pub multipart_timeout: Duration,
    /// The simulated modem's time per part, shortest and longest (seconds).
    pub simulator_part_seconds: (f64, f64),
}

/// `[outbox]`.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub min_interval: StdDuration,
    /// Messages to one number an hour, except alerts, results and spot-check requests.
    pub per_person_per_hour: u32,
    pub retry: Duration,
    pub max_retry: Duration,
}

/// `[spot_checks]`.
#[derive(Debug, Clone)]
pub struct SpotChecksConfig {
    pub per_person_per_day: u32,
    /// Random spot checks fall between these site-local times.
    pub waking_from: NaiveTime,
    pub waking_to: NaiveTime,
    pub deadline: Duration,
    pub max_photo_bytes: usize,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, problem: problem.into() }
}

fn minutes(m: u32) -> Duration {
    Duration::minutes(m.into())
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

impl RawConfig {
    /// The defaults with `site_toml` (a site's file, possibly empty) laid over them.
    pub fn from_toml(site_toml: &str) -> Result<RawConfig, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML.parse()?;
        merge(&mut table, site_toml.parse()?);
        Ok(toml::Value::Table(table).try_into()?)
    }
}

impl Config {
    /// The defaults with `site_toml` laid over them, validated.
    pub fn from_toml(site_toml: &str) -> Result<Config, ConfigError> {
        Config::validate(RawConfig::from_toml(site_toml)?)
    }

    /// Checks every value and builds the typed sections.
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let site = site(&raw.site)?;
        let schedule = schedule(&raw.declarations, site.utc_offset)?;
        Ok(Config {
            alerts: alerts(&raw.alerts)?,
            web: web(&raw.web)?,
            mqtt: mqtt(&raw.mqtt)?,
            tls: tls(&raw.tls)?,
            bands: bands(&raw.bands)?,
            privacy: privacy(&raw.privacy)?,
            sync: sync(&raw.sync, &raw.web)?,
            store: StoreConfig {
                data_dir: raw.store.data_dir.clone(),
                cache_bytes: raw.store.cache_mb << 20,
                card_write_cycles: raw.store.card_write_cycles.max(1),
            },
            modem: modem(&raw.modem)?,
            outbox: outbox(&raw.outbox)?,
            spot_checks: spot_checks(&raw.spot_checks)?,
            site,
            schedule,
            raw,
        })
    }

    /// The effective configuration as TOML (`outpost print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.raw).unwrap_or_default()
    }
}

fn site(raw: &RawSite) -> Result<SiteConfig, ConfigError> {
    if raw.id.is_empty() || !raw.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid("site.id", "use letters, digits and '-' only"));
    }
    let utc_offset = parse_offset(&raw.utc_offset)
        .ok_or_else(|| invalid("site.utc_offset", "expected an offset such as +07:00"))?;
    if raw.latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l))
        || raw.longitude.is_some_and(|l| !(-180.0..=180.0).contains(&l))
    {
        return Err(invalid("site.latitude", "latitude must be -90 to 90 and longitude -180 to 180"));
    }
    let geofence = match (raw.latitude, raw.longitude, raw.geofence_m) {
        (Some(latitude), Some(longitude), radius_m) if radius_m > 0 => {
            Some(Geofence { latitude, longitude, radius_m, address: String::new() })
        }
        _ => None,
    };
    Ok(SiteConfig {
        id: raw.id.clone(),
        name: raw.name.clone(),
        district: raw.district.clone(),
        commune: raw.commune.clone(),
        management_level: raw.management_level.clone(),
        utc_offset,
        wifi: raw.wifi.trim().to_owned(),
        geofence,
    })
}

fn schedule(raw: &RawDeclarations, offset: FixedOffset) -> Result<Schedule, ConfigError> {
    let mut times = Vec::new();
    for t in &raw.schedule {
        times.push(
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| invalid("declarations.schedule", format!("{t:?} is not HH:MM")))?,
        );
    }
    times.sort();
    times.dedup();
    if times.is_empty() {
        return Err(invalid("declarations.schedule", "at least one time is needed"));
    }
    if raw.reminder_after_minutes == 0 || raw.alert_after_reminder_minutes == 0 {
        return Err(invalid("declarations", "grace periods must be at least one minute"));
    }
    Ok(Schedule {
        times,
        offset,
        open_before: minutes(raw.open_before_minutes),
        reminder_after: minutes(raw.reminder_after_minutes),
        alert_after_reminder: minutes(raw.alert_after_reminder_minutes),
    })
}

fn alerts(raw: &RawAlerts) -> Result<AlertsConfig, ConfigError> {
    if !(34.0..=43.0).contains(&raw.fever_celsius) {
        return Err(invalid("alerts.fever_celsius", "expected a temperature between 34 and 43 °C"));
    }
    if !(50..=100).contains(&raw.spo2_below) {
        return Err(invalid("alerts.spo2_below", "expected a percentage between 50 and 100"));
    }
    if raw.escalate_after_minutes == 0 {
        return Err(invalid("alerts.escalate_after_minutes", "must be at least one minute"));
    }
    if !(1..=60).contains(&raw.group_minutes) || raw.digest_minutes > 240 {
        return Err(invalid(
            "alerts",
            "group_minutes must be between 1 and 60, digest_minutes between 0 (never) and 240",
        ));
    }
    for phone in &raw.on_duty_phones {
        crate::base::validate::phone(phone)
            .map_err(|_| invalid("alerts.on_duty_phones", format!("{phone:?} is not a phone number")))?;
    }
    Ok(AlertsConfig {
        thresholds: Thresholds { fever_celsius: raw.fever_celsius, spo2_below: raw.spo2_below },
        escalate_after: minutes(raw.escalate_after_minutes),
        on_duty_phones: raw.on_duty_phones.clone(),
        group_window: minutes(raw.group_minutes),
        digest_every: (raw.digest_minutes > 0).then(|| minutes(raw.digest_minutes)),
    })
}

fn web(raw: &RawWeb) -> Result<WebConfig, ConfigError> {
    let listen: SocketAddr =
        raw.listen.parse().map_err(|_| invalid("web.listen", "expected an address such as 0.0.0.0:8080"))?;
    if raw.session_hours == 0 || raw.login_attempts == 0 {
        return Err(invalid("web", "session_hours and login_attempts must be at least 1"));
    }
    if raw.max_upload_bytes < 1024 {
        return Err(invalid("web.max_upload_bytes", "must be at least 1024"));
    }
    let tls_listen = address("web.tls_listen", &raw.tls_listen, "0.0.0.0:443")?;
    let public_url_given = !raw.public_url.is_empty();
    let public_url = if public_url_given {
        raw.public_url.trim_end_matches('/').to_owned()
    } else {
        format!("http://{listen}")
    };
    Ok(WebConfig {
        listen,
        public_url,
        public_url_given,
        secure_cookies: raw.secure_cookies || tls_listen.is_some(),
        tls_listen,
        dns_hosts: dns_hosts(raw)?,
        session_hours: raw.session_hours,
        max_upload_bytes: raw.max_upload_bytes,
        login_attempts: raw.login_attempts,
        rate_limits: raw.rate_limits,
        login_lockout: minutes(raw.login_lockout_minutes),
    })
}

/// An optional address: empty is `None`.
fn address(key: &'static str, value: &str, example: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| invalid(key, format!("expected an address such as {example}, or empty")))
}

fn dns_hosts(raw: &RawWeb) -> Result<Option<(PathBuf, std::net::IpAddr)>, ConfigError> {
    if raw.dns_hosts_file.is_empty() {
        return Ok(None);
    }
    let address = raw
        .dns_address
        .parse()
        .map_err(|_| invalid("web.dns_address", "expected an IP address such as 10.42.0.1"))?;
    Ok(Some((PathBuf::from(&raw.dns_hosts_file), address)))
}

fn mqtt(raw: &RawMqtt) -> Result<MqttConfig, ConfigError> {
    let listen = address("mqtt.listen", &raw.listen, "0.0.0.0:1883")?;
    let tls_listen = address("mqtt.tls_listen", &raw.tls_listen, "0.0.0.0:8883")?;
    if !(256..=1_048_576).contains(&raw.max_payload_bytes) {
        return Err(invalid("mqtt.max_payload_bytes", "expected 256 to 1048576"));
    }
    Ok(MqttConfig { listen, tls_listen, max_payload_bytes: raw.max_payload_bytes })
}

fn tls(raw: &RawTls) -> Result<TlsConfig, ConfigError> {
    if raw.cert_file.is_empty() != raw.key_file.is_empty() {
        return Err(invalid("tls", "cert_file and key_file go together: both or neither"));
    }
    for name in &raw.names {
        if name.parse::<std::net::IpAddr>().is_err() && !crate::base::validate::host_name(name) {
            return Err(invalid("tls.names", format!("{name:?} is neither a host name nor an address")));
        }
    }
    let files =
        (!raw.cert_file.is_empty()).then(|| (raw.cert_file.clone().into(), raw.key_file.clone().into()));
    Ok(TlsConfig { files, names: raw.names.clone() })
}

fn bands(raw: &RawBands) -> Result<BandsConfig, ConfigError> {
    if raw.unseen_after_seconds == 0
        || i64::from(raw.away_after_minutes) * 60 <= i64::from(raw.unseen_after_seconds)
    {
        return Err(invalid(
            "bands",
            "away_after_minutes must be longer than unseen_after_seconds, both above 0",
        ));
    }
    if raw.battery_low_percent > 100 || raw.handover_min_battery_percent > 100 {
        return Err(invalid("bands", "battery levels are percentages (0–100)"));
    }
    if raw.sample_seconds == 0 || raw.retention_hours == 0 || raw.watchdog_seconds < 10 {
        return Err(invalid(
            "bands",
            "sample_seconds and retention_hours must be above 0, watchdog_seconds at least 10",
        ));
    }
    if raw.scanner_silent_seconds < 30
        || i64::from(raw.scanner_silent_seconds) >= i64::from(raw.away_after_minutes) * 60
    {
        return Err(invalid(
            "bands",
            "scanner_silent_seconds must be at least 30 and shorter than away_after_minutes",
        ));
    }
    if !(1..=30).contains(&raw.exposure_days) {
        return Err(invalid("bands", "exposure_days must be between 1 and 30"));
    }
    if !(1..=3600).contains(&raw.sample_write_seconds) {
        return Err(invalid("bands", "sample_write_seconds must be between 1 and 3600"));
    }
    let adapter = match raw.adapter.as_str() {
        "" => AdapterChoice::None,
        "simulator" => AdapterChoice::Simulator,
        a => AdapterChoice::Adapter(a.to_owned()),
    };
    Ok(BandsConfig {
        adapter,
        watchdog: StdDuration::from_secs(raw.watchdog_seconds),
        presence: outpost_ble::presence::PresenceConfig {
            unseen_after: Duration::seconds(raw.unseen_after_seconds.into()),
            away_after: minutes(raw.away_after_minutes),
            battery_low_percent: raw.battery_low_percent,
            ..outpost_ble::presence::PresenceConfig::default()
        },
        scanner_silent_after: Duration::seconds(raw.scanner_silent_seconds.into()),
        battery_low_percent: raw.battery_low_percent,
        handover_min_battery_percent: raw.handover_min_battery_percent,
        handover_seen_within: Duration::seconds(raw.handover_seen_within_seconds.into()),
        sample_every: Duration::seconds(raw.sample_seconds.into()),
        retention: Duration::hours(raw.retention_hours.into()),
        sample_write_every: Duration::seconds(raw.sample_write_seconds.into()),
        exposure_days: raw.exposure_days,
        simulated_bands: raw.simulated_bands as usize,
    })
}

fn privacy(raw: &RawPrivacy) -> Result<PrivacyConfig, ConfigError> {
    for (key, days) in [
        ("privacy.purge_after_days", raw.purge_after_days),
        ("privacy.checkin_days", raw.checkin_days),
        ("privacy.position_days", raw.position_days),
        ("privacy.photo_days", raw.photo_days),
    ] {
        if days == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    let days = |d: u32| Duration::days(d.into());
    Ok(PrivacyConfig {
        purge_after: days(raw.purge_after_days),
        check_ins_kept: days(raw.checkin_days),
        positions_kept: days(raw.position_days),
        photos_kept: days(raw.photo_days),
    })
}

/// `host:port`, a name or an address and a port; empty: `None`.
fn host_port(key: &'static str, value: &str) -> Result<Option<String>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    let fits = value.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && port.parse::<u16>().is_ok_and(|p| p > 0)
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
    });
    if fits {
        Ok(Some(value.to_owned()))
    } else {
        Err(invalid(key, "expected host:port, such as province.example.vn:8444, or empty"))
    }
}

fn sync(raw: &RawSync, web: &RawWeb) -> Result<SyncConfig, ConfigError> {
    if !raw.reach.is_empty() && web.tls_listen.is_empty() {
        return Err(invalid(
            "sync.reach",
            "phones from home reach the box over HTTPS: set web.tls_listen too",
        ));
    }
    if raw.interval_seconds == 0 || raw.max_backoff_seconds < raw.interval_seconds {
        return Err(invalid("sync", "interval_seconds must be ≥ 1 and ≤ max_backoff_seconds"));
    }
    let listen = address("sync.listen", &raw.listen, "0.0.0.0:8444")?;
    let seconds = |s: u32| StdDuration::from_secs(s.into());
    Ok(SyncConfig {
        interval: seconds(raw.interval_seconds),
        max_backoff: seconds(raw.max_backoff_seconds),
        listen,
        follow_province_clock: (raw.follow_province_clock_seconds > 0)
            .then(|| seconds(raw.follow_province_clock_seconds)),
        reach: host_port("sync.reach", &raw.reach)?,
        sms_after: (raw.sms_after_hours > 0).then(|| Duration::hours(raw.sms_after_hours.into())),
    })
}

fn modem(raw: &RawModem) -> Result<ModemConfig, ConfigError> {
    if raw.validity_hours == 0 || raw.multipart_timeout_minutes == 0 {
        return Err(invalid("modem", "validity_hours and multipart_timeout_minutes must be at least 1"));
    }
    if !raw.pin.is_empty() && !(4..=8).contains(&raw.pin.len()) {
        return Err(invalid("modem.pin", "a SIM PIN has 4 to 8 digits"));
    }
    let [shortest, longest] = raw.simulator_part_seconds;
    if !(0.0..=120.0).contains(&shortest) || !(shortest..=120.0).contains(&longest) {
        return Err(invalid(
            "modem.simulator_part_seconds",
            "two times in seconds, shortest first, at most 120",
        ));
    }
    let list = raw.port.list();
    if list.len() > 8 || list.iter().any(|p| p.is_empty()) {
        return Err(invalid("modem.port", "a serial port, or a list of up to 8 (none empty)"));
    }
    if list.iter().enumerate().any(|(i, p)| *p != "simulator" && list[..i].contains(p)) {
        return Err(invalid("modem.port", "the same port is listed twice"));
    }
    let ports = list
        .into_iter()
        .map(|p| if p == "simulator" { ModemChoice::Simulator } else { ModemChoice::Port(PathBuf::from(p)) })
        .collect();
    Ok(ModemConfig {
        ports,
        pin: (!raw.pin.is_empty()).then(|| raw.pin.clone()),
        baud: raw.baud,
        validity_minutes: raw.validity_hours * 60,
        multipart_timeout: minutes(raw.multipart_timeout_minutes),
        simulator_part_seconds: (raw.simulator_part_seconds[0], raw.simulator_part_seconds[1]),
    })
}

fn outbox(raw: &RawOutbox) -> Result<OutboxConfig, ConfigError> {
    if raw.retry_seconds == 0 || raw.max_retry_seconds < raw.retry_seconds {
        return Err(invalid("outbox", "retry_seconds must be ≥ 1 and ≤ max_retry_seconds"));
    }
    if raw.per_person_per_hour == 0 {
        return Err(invalid("outbox.per_person_per_hour", "at least 1 message an hour"));
    }
    Ok(OutboxConfig {
        min_interval: StdDuration::from_millis(raw.min_interval_ms),
        per_person_per_hour: raw.per_person_per_hour,
        retry: Duration::seconds(raw.retry_seconds as i64),
        max_retry: Duration::seconds(raw.max_retry_seconds as i64),
    })
}

fn spot_checks(raw: &RawSpotChecks) -> Result<SpotChecksConfig, ConfigError> {
    let wake = |field: &'static str, raw: &str| {
        NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| invalid(field, "expected a time such as 07:00"))
    };
    let waking_from = wake("spot_checks.waking_from", &raw.waking_from)?;
    let waking_to = wake("spot_checks.waking_to", &raw.waking_to)?;
    if waking_to <= waking_from {
        return Err(invalid("spot_checks.waking_to", "must be after waking_from"));
    }
    if raw.deadline_minutes == 0 {
        return Err(invalid("spot_checks.deadline_minutes", "must be at least 1"));
    }
    Ok(SpotChecksConfig {
        per_person_per_day: raw.per_person_per_day,
        waking_from,
        waking_to,
        deadline: minutes(raw.deadline_minutes),
        max_photo_bytes: raw.max_photo_bytes,
    })
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
        assert_eq!(c.schedule.times.len(), 3);
        assert_eq!(c.site.utc_offset.local_minus_utc(), 7 * 3600);
        assert_eq!(c.web.public_url, "http://127.0.0.1:8080");
        assert!(!c.web.public_url_given);
        assert!(c.modem.ports.is_empty());
        assert_eq!(c.bands.adapter, AdapterChoice::None);
        assert!(c.site.geofence.is_none() && c.sync.listen.is_none());
    }

    #[test]
    fn overrides_and_errors() {
        let c = Config::from_toml("[declarations]\nschedule = [\"21:00\", \"07:30\"]\n").expect("ok");
        assert_eq!(c.schedule.times[0], NaiveTime::from_hms_opt(7, 30, 0).expect("time"));
        let e = Config::from_toml("[declarations]\nschedule = [\"25:00\"]\n").expect_err("bad");
        assert!(e.to_string().contains("declarations.schedule"), "{e}");
        let e = Config::from_toml("[web]\nlisten = \"nowhere\"\n").expect_err("bad");
        assert!(e.to_string().contains("web.listen"), "{e}");
        let e = Config::from_toml("[web]\nlistn = \"x\"\n").expect_err("typo");
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.contains("listn"), "{chain}");
        assert!(Config::from_toml("[site\n").is_err());
        let e = Config::from_toml("[sync]\nlisten = \"here\"\n").expect_err("bad");
        assert!(e.to_string().contains("sync.listen"), "{e}");
        let e = Config::from_toml("[privacy]\nphoto_days = 0\n").expect_err("bad");
        assert!(e.to_string().contains("privacy.photo_days"), "{e}");
    }

    #[test]
    fn sections_are_typed_once() {
        let c = Config::from_toml(
            "[site]\nlatitude = 16.07\nlongitude = 108.15\n[modem]\nport = \"simulator\"\npin = \"1234\"\n\
             [sync]\nlisten = \"127.0.0.1:8444\"\nfollow_province_clock_seconds = 0\n[web]\npublic_url = \"https://x.vn/\"\n",
        )
        .expect("ok");
        assert_eq!(c.site.geofence.as_ref().map(|g| g.radius_m), Some(150));
        assert_eq!(
            (c.modem.ports[0].to_string(), c.modem.pin.as_deref()),
            ("simulator".into(), Some("1234"))
        );
        assert_eq!(c.sync.listen, Some("127.0.0.1:8444".parse().expect("addr")));
        assert!(c.sync.follow_province_clock.is_none());
        assert_eq!((c.web.public_url.as_str(), c.web.public_url_given), ("https://x.vn", true));
        assert_eq!(c.privacy.purge_after, Duration::days(30));
        let c =
            Config::from_toml("[modem]\nport = [\"/dev/ttyUSB2\", \"/dev/ttyUSB5\"]\n").expect("two modems");
        assert_eq!(c.modem.ports.len(), 2);
        let e =
            Config::from_toml("[modem]\nport = [\"/dev/ttyUSB2\", \"/dev/ttyUSB2\"]\n").expect_err("twice");
        assert!(e.to_string().contains("modem.port"), "{e}");
    }

    #[test]
    fn printed_config_parses_back() {
        let c = Config::from_toml("[alerts]\nfever_celsius = 37.8\n").expect("ok");
        let again = Config::from_toml(&c.to_toml()).expect("reparse");
        assert_eq!(again.alerts.thresholds.fever_celsius, 37.8);
    }
}
