//! The MQTT broker's devices [M15]: the gateways and phones that may connect, each with a name, a
//! kind and a password an administrator gives it, stored as an Argon2id hash (box-local
//! `mqtt-cred/<name>`). There is no anonymous access. The broker itself is in
//! `crate::services::mqtt`; its front asks [`Outpost::device_login`] at each login and enforces
//! [`Device::may_publish`] and [`Device::may_subscribe`] on every packet.
//!
//! What each kind may do (a device's name is part of its topics, so one device cannot speak for
//! another):
//! - a **gateway** named `N` publishes only its own scanner topics: `espresense/devices/<id>/N`,
//!   `espresense/rooms/N/…` (status, telemetry) and `<base>/N/…` (Theengs/OpenMQTTGateway:
//!   `home/N/BTtoMQTT/<MAC>`, `home/N/LWT`); it subscribes only under those (its commands) and to
//!   ESPresense's broadcast `espresense/rooms/*/…` and `espresense/settings/…`. It reads no sighting
//!   and no position.
//! - a person's **app** named `N`, bound to one person, publishes only `outpost/position/N` (the
//!   box knows whose position it is from the credential; no link token is ever in a topic) and
//!   subscribes to nothing.
//! - a **monitor** (`outpost ble listen`, for whoever installs gateways) subscribes to the sighting
//!   topics only and publishes nothing.
//! - an **other** device (a site's own sensors, a conformance suite) publishes and subscribes only
//!   under topics of one or two levels that are not the box's (`espresense/…`, `outpost/…`, `$…`):
//!   every gateway, app and status topic has three levels or more, so it can neither speak for a
//!   gateway nor read a sighting or a position (a filter with `#` is refused: it could).

use outpost_sync::{
    secret::{check_password, hash_password, verify_password, Busy, DUMMY_HASH},
    WriteSet,
};
use serde::{Deserialize, Serialize};

use super::{AppError, AppResult, Outpost};
use crate::base::validate::Problem;

const PREFIX: &str = "mqtt-cred/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
    /// Credentials from before kinds existed were all gateways.
    #[serde(default)]
    kind: DeviceKind,
}

/// What a device is, and so what it may publish and read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "person")]
pub enum DeviceKind {
    #[default]
    Gateway,
    /// A person's app, for that person's position only (the person's id).
    App(String),
    Monitor,
    /// Topics of its own, outside the box's (one or two levels).
    Other,
}

/// A device that logged in: its name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub kind: DeviceKind,
}

/// The topic a person's app `name` publishes its position to.
pub fn position_topic(name: &str) -> String {
    format!("{POSITION_PREFIX}{name}")
}

/// Where apps publish positions: `outpost/position/<the app's device name>`.
pub const POSITION_PREFIX: &str = "outpost/position/";

/// The first levels every sighting filter of the box has (ESPresense's) or the level that names
/// the Theengs/OpenMQTTGateway format.
const ESPRESENSE: &str = "espresense";
const THEENGS_LEVEL: &str = "BTtoMQTT";

impl Device {
    /// Whether this device may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        if levels.iter().any(|l| l.contains(['+', '#'])) || topic.starts_with('$') {
            return false;
        }
        let n = self.name.as_str();
        match &self.kind {
            DeviceKind::Gateway => match levels.as_slice() {
                [ESPRESENSE, "devices", id, room] => !id.is_empty() && *room == n,
                [ESPRESENSE, "rooms", room, _, ..] => *room == n,
                [ESPRESENSE, ..] => false,
                [base, gateway, _, ..] => is_base(base) && *gateway == n,
                _ => false,
            },
            DeviceKind::App(_) => topic == position_topic(n),
            DeviceKind::Monitor => false,
            DeviceKind::Other => outside_the_box(&levels),
        }
    }

    /// Whether this device may subscribe to `filter`.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let literal = |l: &&str| !l.contains(['+', '#']);
        let n = self.name.as_str();
        match &self.kind {
            DeviceKind::Gateway => match levels.as_slice() {
                [ESPRESENSE, "rooms", room, _, ..] => literal(room) && (*room == n || *room == "*"),
                [ESPRESENSE, "settings", _, ..] => true,
                [ESPRESENSE, ..] => false,
                [base, gateway, _, ..] => literal(base) && is_base(base) && *gateway == n,
                _ => false,
            },
            DeviceKind::App(_) => false,
            DeviceKind::Monitor => {
                matches!(levels.as_slice(), [ESPRESENSE, "devices", ..] | [_, _, THEENGS_LEVEL, ..])
            }
            // `+` matches one level only: a filter without `#` matches topics of its own depth.
            DeviceKind::Other => !filter.contains('#') && outside_the_box(&levels),
        }
    }
}

/// Whether topic (or filter) levels are outside the box's topics: one or two levels, not under
/// `espresense/`, `outpost/` or `$`. (Wildcards in a topic are refused before this.)
fn outside_the_box(levels: &[&str]) -> bool {
    let first = levels.first().copied().unwrap_or("");
    levels.len() <= 2 && first != ESPRESENSE && first != "outpost" && !first.starts_with('$')
}

/// A Theengs/OpenMQTTGateway base topic a gateway may use: not the box's own nor ESPresense's.
fn is_base(base: &str) -> bool {
    !base.is_empty() && base != ESPRESENSE && base != "outpost" && !base.starts_with('$')
}

/// Device credential names: 3–32 letters, digits, `.`, `-`, `_`.
pub fn check_name(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

impl Outpost {
    /// Adds (or replaces) a device's credentials; an app's person must exist.
    pub async fn add_device(
        self: &std::sync::Arc<Self>,
        name: &str,
        password: &str,
        kind: DeviceKind,
        by: &str,
    ) -> AppResult<()> {
        let mut list = Vec::new();
        if let DeviceKind::App(person) = &kind {
            if self.store.get::<outpost_sync::record::Person>(person)?.is_none() {
                list.push(Problem::new("person", "Không có người này.", "No such person."));
            }
        }
        if !check_name(name) {
            list.push(Problem::new(
                "name",
                "Tên thiết bị: 3–32 chữ, số, dấu . - _",
                "Device name: 3–32 letters, digits, . - _",
            ));
        }
        if let Err((vi, en)) = check_password(password, &[name]) {
            list.push(Problem::new("password", vi, en));
        }
        if !list.is_empty() {
            return Err(AppError::Invalid(list));
        }
        let (app, name, password, by) = (self.clone(), name.to_owned(), password.to_owned(), by.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut w = WriteSet::new();
            let detail = match &kind {
                DeviceKind::Gateway => "gateway".to_owned(),
                DeviceKind::Monitor => "monitor".to_owned(),
                DeviceKind::Other => "other".to_owned(),
                DeviceKind::App(person) => format!("app {person}"),
            };
            let credential = Credential { hash: hash_password(&password), created_at: app.now(), kind };
            w.put_local(&format!("{PREFIX}{name}"), &credential)?;
            app.audit(&mut w, &by, "mqtt.credential", &name, &detail)?;
            app.commit_blocking(w)?;
            Ok(())
        })
        .await
        .map_err(|_| AppError::Store(outpost_sync::StoreError::Closed))?
    }

    /// The devices that may connect, by name.
    pub fn devices(&self) -> AppResult<Vec<Device>> {
        Ok(self
            .store
            .scan_local::<Credential>(PREFIX)?
            .into_iter()
            .filter_map(|(k, c)| Some(Device { name: k.strip_prefix(PREFIX)?.to_owned(), kind: c.kind }))
            .collect())
    }

    /// The device a name and password open, or `None`; `Err(Busy)` when the hashing pool's queue
    /// is full. Argon2 in the bounded pool (call off the async runtime); an unknown name costs a
    /// hash as a known one does.
    pub fn device_login(&self, name: &str, password: &str) -> Result<Option<Device>, Busy> {
        let credential = self.store.get_local::<Credential>(&format!("{PREFIX}{name}")).ok().flatten();
        let hash = credential.as_ref().map_or(DUMMY_HASH, |c| c.hash.as_str());
        let right = verify_password(password, hash)?;
        Ok(credential.filter(|_| right).map(|c| Device { name: name.to_owned(), kind: c.kind }))
    }

    /// The person whose app device `name` is, if it is one.
    pub fn app_person(&self, name: &str) -> Option<String> {
        match self.store.get_local::<Credential>(&format!("{PREFIX}{name}")).ok().flatten()?.kind {
            DeviceKind::App(person) => Some(person),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, kind: DeviceKind) -> Device {
        Device { name: name.to_owned(), kind }
    }

    #[test]
    fn a_gateway_speaks_only_for_itself() {
        let gw = device("phong-1", DeviceKind::Gateway);
        for topic in [
            "espresense/devices/mac:d4e6f1a2b3c4/phong-1",
            "espresense/rooms/phong-1/status",
            "espresense/rooms/phong-1/telemetry",
            "home/phong-1/BTtoMQTT/D4E6F1A2B3C4",
            "home/phong-1/LWT",
        ] {
            assert!(gw.may_publish(topic), "{topic}");
        }
        for topic in [
            "espresense/devices/mac:d4e6f1a2b3c4/phong-2",
            "espresense/devices/mac:d4e6f1a2b3c4/phong-1/x",
            "espresense/rooms/phong-2/status",
            "home/phong-2/BTtoMQTT/D4E6F1A2B3C4",
            "outpost/position/phong-1",
            "outpost/phong-1/x",
            "espresense/phong-1/BTtoMQTT/x",
            "$SYS/phong-1/x",
            "phong-1",
        ] {
            assert!(!gw.may_publish(topic), "{topic}");
        }
        for filter in [
            "espresense/rooms/phong-1/+/set",
            "espresense/rooms/*/+/set",
            "espresense/settings/+/config",
            "home/phong-1/commands/#",
        ] {
            assert!(gw.may_subscribe(filter), "{filter}");
        }
        for filter in [
            "#",
            "outpost/position/+",
            "espresense/devices/#",
            "espresense/rooms/+/status",
            "espresense/rooms/phong-2/#",
            "+/phong-1/#",
            "+/+/BTtoMQTT/+",
            "home/+/BTtoMQTT/+",
            "$SYS/#",
        ] {
            assert!(!gw.may_subscribe(filter), "{filter}");
        }
    }

    #[test]
    fn an_app_publishes_its_own_position_and_a_monitor_only_listens() {
        let app = device("app-lan", DeviceKind::App("p-1".into()));
        assert!(app.may_publish("outpost/position/app-lan"));
        assert!(!app.may_publish("outpost/position/app-mai"));
        assert!(!app.may_publish("espresense/devices/x/app-lan"));
        assert!(!app.may_subscribe("outpost/position/app-lan"));
        let monitor = device("cai-dat", DeviceKind::Monitor);
        assert!(monitor.may_subscribe("espresense/devices/#") && monitor.may_subscribe("+/+/BTtoMQTT/+"));
        assert!(!monitor.may_subscribe("outpost/position/+") && !monitor.may_subscribe("#"));
        assert!(!monitor.may_publish("espresense/devices/x/cai-dat"));
    }

    #[test]
    fn another_device_keeps_to_short_topics_outside_the_box() {
        let other = device("cam-bien", DeviceKind::Other);
        for topic in ["TopicA", "TopicA/B", "/TopicA", "toa-nha/nhiet-do"] {
            assert!(other.may_publish(topic), "{topic}");
        }
        for topic in [
            "home/phong-1/BTtoMQTT/AABBCCDDEEFF",
            "home/phong-1/LWT",
            "home/phong-1/commands/MQTTtoBT",
            "espresense/rooms",
            "outpost/position",
            "outpost/position/app-lan",
            "$SYS/x",
            "a/b/c",
        ] {
            assert!(!other.may_publish(topic), "{topic}");
        }
        for filter in ["TopicA/+", "+/C", "/+", "+/+", "+", "TopicA"] {
            assert!(other.may_subscribe(filter), "{filter}");
        }
        for filter in
            ["#", "/#", "TopicA/#", "+/+/+", "+/+/BTtoMQTT/+", "espresense/+", "outpost/+", "$SYS/+"]
        {
            assert!(!other.may_subscribe(filter), "{filter}");
        }
    }
}
