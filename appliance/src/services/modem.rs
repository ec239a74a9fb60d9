//! The SMS senders the configuration asks for: none (the log only), or one driver per modem — the
//! simulated modem on a pseudo-terminal, or a real modem on a serial port — whose threads (in
//! `outpost_sms`) give what they receive to [`super::inbox::InboxEvents`].

use std::{path::Path, sync::Arc};

use anyhow::Context;
use outpost_sms::{
    modem::{Modem, ModemConfig},
    sim::{Pace, Simulator},
};
use tokio::sync::Notify;

use super::{
    inbox::InboxEvents,
    outbox::{LogSender, ModemSender, SmsSender},
};
use crate::{app::Outpost, base::config::ModemChoice};

/// What [`start`] started: a sender for each modem (or the log's, with none), the drivers with
/// their ports (for the health page), and the simulators kept alive while the box runs.
pub struct Started {
    pub senders: Vec<Arc<dyn SmsSender>>,
    pub modems: Vec<(String, Arc<Modem>)>,
    pub simulators: Vec<Simulator>,
}

/// Starts a driver for each modem the configuration lists; `inbox` wakes the inbox worker.
pub fn start(app: &Arc<Outpost>, data_dir: &Path, inbox: Arc<Notify>) -> anyhow::Result<Started> {
    let m = &app.config().modem;
    let mut started = Started { senders: Vec::new(), modems: Vec::new(), simulators: Vec::new() };
    if m.ports.is_empty() {
        started.senders.push(Arc::new(LogSender));
        return Ok(started);
    }
    let events: Arc<InboxEvents> = Arc::new(InboxEvents { app: app.clone(), wake: inbox });
    for (i, choice) in m.ports.iter().enumerate() {
        let port = match choice {
            ModemChoice::Simulator => {
                let (shortest, longest) = m.simulator_part_seconds;
                let link = if i == 0 {
                    data_dir.join("modem-simulator")
                } else {
                    data_dir.join(format!("modem-simulator-{}", i + 1))
                };
                let sim = Simulator::start_with(&link, Pace::seconds(shortest, longest))
                    .context("cannot start the modem simulator")?;
                let path = sim.path().to_owned();
                started.simulators.push(sim);
                path
            }
            ModemChoice::Port(p) => p.clone(),
        };
        let config = ModemConfig {
            baud: m.baud,
            pin: m.pin.clone(),
            validity_minutes: m.validity_minutes,
            ..ModemConfig::new(&port)
        };
        let modem = Arc::new(Modem::start(config, events.clone()));
        tracing::info!(port = %port.display(), "Modem driver started.");
        started.senders.push(Arc::new(ModemSender(modem.clone())));
        started.modems.push((port.display().to_string(), modem));
    }
    Ok(started)
}
