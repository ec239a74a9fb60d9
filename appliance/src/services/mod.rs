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
//! [`Services`] holds the handles the running workers give back: read-only views for the health
//! page, `/metrics` and the band pages. Workers hear from the operations only through channels made
//! before they start (`crate::app::Wiring`).

pub mod bands;
pub mod control;
pub mod inbox;
pub mod link;
pub mod modem;
pub mod mqtt;
pub mod outbox;
pub mod presence;
pub mod scheduler;

use std::sync::Arc;

use outpost_ble::scan::ScanStats;
use outpost_sms::modem::Modem;

use crate::{
    app::{bands::Reading, Outpost},
    platform::{
        system::{self, Conditions, Problem, System},
        tls::BoxCertificate,
    },
};

/// What the running services let others see. Empty parts are services not running.
#[derive(Clone, Default)]
pub struct Services {
    /// The modem driver, when the box has one.
    pub modem: Option<Arc<Modem>>,
    /// The MQTT broker, when enabled.
    pub mqtt: Option<Arc<mqtt::Mqtt>>,
    /// The certificate the box presents over TLS, once loaded.
    pub certificate: Option<BoxCertificate>,
    /// The link with the province, once enrolled.
    pub link: Option<link::LinkStatus>,
    /// The box's own Bluetooth scanner, when configured.
    pub scanner: Option<Arc<ScanStats>>,
    /// The presence thread.
    pub presence: Option<presence::PresenceView>,
    /// Conditions components report for the health page.
    pub conditions: Arc<Conditions>,
}

impl Services {
    /// The box's condition now and its problems, read once for a page or an answer.
    pub fn condition(&self, app: &Outpost) -> (System, Vec<Problem>) {
        let storage = app.storage();
        let data_dir = &app.config().store.data_dir;
        let system = System::read(data_dir, storage.write_error.as_deref());
        let reports = system::Reports {
            data_dir,
            write_error: storage.write_error,
            modem: self.modem.as_ref().map(|m| (app.config().modem.port.to_string(), m.health())),
            conditions: self.conditions.all(),
        };
        let problems = system::problems(&system, reports);
        (system, problems)
    }

    /// What the presence thread last heard of a band.
    pub fn reading(&self, band: &str) -> Option<Reading> {
        self.presence.as_ref().and_then(|p| p.reading(band))
    }
}

/// A line for whoever started the box (its console, or a test reading standard output).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
