//! The long-running workers, each started by [`crate::run`] with the resources it needs (the
//! operations, a listener, channels, a cancellation token) and returning when cancelled:
//!
//! - [`scheduler`]: the pass every 30 seconds (or at each move of a manual clock).
//! - [`outbox`] and [`inbox`]: the SMS workers; [`modem`]: the sender the configuration asks for.
//! - [`presence`]: the thread that owns the presence engine; [`bands`]: the box's own adapter and
//!   the demo's simulated site; [`mqtt`]: the broker and the box's subscriber (site gateways, an
//!   app's positions).
//! - [`link`]: the sync with the province (enrolment, pushes, answering pulls).
//! - [`control`]: the control socket `outpost backup` talks to.
//!
//! [`Services`] holds the handles the running workers give back, each set once when its worker has
//! started (what the old `Outpost` kept in slots): read-only views for the health page, `/metrics`
//! and the band pages. Workers hear from the operations only through channels made
//! before they start (`crate::app::Wiring`).

pub mod bands;
pub mod control;
pub mod inbox;
pub mod link;
pub mod modem;
pub mod mqtt;
pub mod names;
pub mod outbox;
pub mod presence;
pub mod scheduler;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use outpost_ble::scan::ScanStats;
use outpost_link::gate::{Gate, Limits};
use outpost_sms::modem::Modem;

use crate::{
    app::{bands::Reading, Outpost},
    platform::{
        system::{self, Conditions, Problem, System},
        tls::BoxCertificate,
        wear::Wear,
    },
};

/// What the running services let others see: each handle is set once, by `crate::run`, when its
/// service has started, so the web can serve from the first moment (a part not set is a service not
/// running, or not yet). Cheap to clone.
#[derive(Clone, Default)]
pub struct Services(Arc<Handles>);

#[derive(Default)]
struct Handles {
    modems: OnceLock<Vec<(String, Arc<Modem>)>>,
    mqtt: OnceLock<Arc<mqtt::Mqtt>>,
    certificate: OnceLock<BoxCertificate>,
    link: OnceLock<link::LinkStatus>,
    tunnel: OnceLock<Arc<outpost_link::tunnel::SiteState>>,
    certs: OnceLock<(Arc<crate::platform::tls::Certs>, u16)>,
    names: OnceLock<names::NameStatus>,
    scanner: OnceLock<Arc<ScanStats>>,
    presence: OnceLock<presence::PresenceView>,
    conditions: Arc<Conditions>,
    /// What the box writes to its card, noted once a minute.
    wear: Wear,
    web_gate: OnceLock<Arc<Gate>>,
}

/// The web listener's caps: staff phones and the people's own (a browser opens up to six
/// connections and the dashboard keeps one for its events), half-open connections closed after a
/// minute of silence (the dashboard's events send a keep-alive every 15 s).
pub const WEB_LIMITS: Limits =
    Limits { total: 512, per_address: 32, idle: Duration::from_secs(60), header: Duration::from_secs(10) };

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// The modems' drivers, with their ports (none without a modem).
    pub fn modems(&self) -> &[(String, Arc<Modem>)] {
        self.0.modems.get().map_or(&[], Vec::as_slice)
    }

    /// The web listener's gate (its caps and counts).
    pub fn web_gate(&self) -> &Arc<Gate> {
        self.0.web_gate.get_or_init(|| Gate::new("web", WEB_LIMITS))
    }

    /// The MQTT broker, when enabled.
    pub fn mqtt(&self) -> Option<&mqtt::Mqtt> {
        self.0.mqtt.get().map(|m| &**m)
    }

    /// The certificate the box presents over TLS, once loaded.
    pub fn certificate(&self) -> Option<&BoxCertificate> {
        self.0.certificate.get()
    }

    /// The link with the province, once enrolled.
    pub fn link(&self) -> Option<&link::LinkStatus> {
        self.0.link.get()
    }

    /// The certificates the box's HTTPS presents, when `web.tls_listen` is set.
    pub fn certs(&self) -> Option<&Arc<crate::platform::tls::Certs>> {
        self.0.certs.get().map(|(certs, _)| certs)
    }

    /// The port the HTTPS listener is bound to (the configured one, or the one picked for port 0).
    pub fn https_port(&self) -> Option<u16> {
        self.0.certs.get().map(|(_, port)| *port)
    }

    /// The site's trusted name, once enrolled with HTTPS on.
    pub fn names(&self) -> Option<&names::NameStatus> {
        self.0.names.get()
    }

    /// The tunnel for phones from home, when `sync.reach` is set.
    pub fn tunnel(&self) -> Option<&Arc<outpost_link::tunnel::SiteState>> {
        self.0.tunnel.get()
    }

    /// The box's own Bluetooth scanner, when configured.
    pub fn scanner(&self) -> Option<&Arc<ScanStats>> {
        self.0.scanner.get()
    }

    /// The presence thread.
    pub fn presence(&self) -> Option<&presence::PresenceView> {
        self.0.presence.get()
    }

    /// Notes what has been written to the card so far (once a minute at most), for its wear.
    pub fn note_wear(&self, data_dir: &std::path::Path) {
        self.0.wear.note(data_dir);
    }

    /// Conditions components report for the health page.
    pub fn conditions(&self) -> &Arc<Conditions> {
        &self.0.conditions
    }

    // Set once each, as the services start (a second call is ignored).
    pub fn set_modems(&self, modems: Vec<(String, Arc<Modem>)>) {
        let _ = self.0.modems.set(modems);
    }
    pub fn set_mqtt(&self, mqtt: mqtt::Mqtt) {
        let _ = self.0.mqtt.set(Arc::new(mqtt));
    }
    pub fn set_certificate(&self, certificate: BoxCertificate) {
        let _ = self.0.certificate.set(certificate);
    }
    pub fn set_link(&self, link: link::LinkStatus) {
        let _ = self.0.link.set(link);
    }
    pub fn set_certs(&self, certs: Arc<crate::platform::tls::Certs>, https_port: u16) {
        let _ = self.0.certs.set((certs, https_port));
    }
    pub fn set_names(&self, names: names::NameStatus) {
        let _ = self.0.names.set(names);
    }
    pub fn set_tunnel(&self, tunnel: Arc<outpost_link::tunnel::SiteState>) {
        let _ = self.0.tunnel.set(tunnel);
    }
    pub fn set_scanner(&self, scanner: Arc<ScanStats>) {
        let _ = self.0.scanner.set(scanner);
    }
    pub fn set_presence(&self, presence: presence::PresenceView) {
        let _ = self.0.presence.set(presence);
    }

    /// The box's condition now and its problems, read once for a page or an answer.
    pub fn condition(&self, app: &Outpost) -> (System, Vec<Problem>) {
        let storage = app.storage();
        let data_dir = &app.config().store.data_dir;
        let mut system = System::read(data_dir, storage.write_error.as_deref());
        system.card =
            self.0.wear.read(data_dir, system.disk_total_bytes, app.config().store.card_write_cycles);
        let mut conditions = self.conditions().all();
        let down: Vec<String> = self
            .presence()
            .map(|p| p.scanners())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.health == outpost_ble::scanners::Health::Down)
            .map(|s| format!("{} ({})", s.name, app.schedule().local(s.since).format("%H:%M")))
            .collect();
        if !down.is_empty() {
            conditions.push(("scanner_down", down.join(", ")));
        }
        if let Some(wait) = app.outbox_wait().ok().filter(|w| w.results_late) {
            if let Some(l) = wait.results() {
                let minutes = l.drained_in_seconds.map_or(0.0, |s| s / 60.0).ceil();
                conditions.push(("sms_late", format!("{} results, {minutes} min", l.waiting)));
            }
        }
        let reports = system::Reports {
            data_dir,
            write_error: storage.write_error,
            modems: self.modems().iter().map(|(port, m)| (port.clone(), m.health())).collect(),
            conditions,
        };
        let problems = system::problems(&system, reports);
        (system, problems)
    }

    /// What the presence thread last heard of a band.
    pub fn reading(&self, band: &str) -> Option<Reading> {
        self.presence().and_then(|p| p.reading(band))
    }
}

/// A line for whoever started the box (its console, or a test reading standard output).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
