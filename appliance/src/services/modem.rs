//! The SMS sender the configuration asks for: none (the log only), the simulated modem on a
//! pseudo-terminal, or a real modem on a serial port, whose driver thread (in `outpost_sms`) gives
//! what it receives to [`super::inbox::InboxEvents`].

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

/// What [`start`] started: the sender for the outbox, the driver (for the health page), and the
/// simulator kept alive while the box runs.
pub struct Started {
    pub sender: Arc<dyn SmsSender>,
    pub modem: Option<Arc<Modem>>,
    pub simulator: Option<Simulator>,
}

/// Starts the SMS sender the configuration asks for; `inbox` wakes the inbox worker.
pub fn start(app: &Arc<Outpost>, data_dir: &Path, inbox: Arc<Notify>) -> anyhow::Result<Started> {
    let m = &app.config().modem;
    let (port, simulator) = match &m.port {
        ModemChoice::None => {
            return Ok(Started { sender: Arc::new(LogSender), modem: None, simulator: None })
        }
        ModemChoice::Simulator => {
            let (shortest, longest) = m.simulator_part_seconds;
            let sim =
                Simulator::start_with(&data_dir.join("modem-simulator"), Pace::seconds(shortest, longest))
                    .context("cannot start the modem simulator")?;
            (sim.path().to_owned(), Some(sim))
        }
        ModemChoice::Port(p) => (p.clone(), None),
    };
    let config = ModemConfig {
        baud: m.baud,
        pin: m.pin.clone(),
        validity_minutes: m.validity_minutes,
        ..ModemConfig::new(&port)
    };
    let events = Arc::new(InboxEvents { app: app.clone(), wake: inbox });
    let modem = Arc::new(Modem::start(config, events));
    tracing::info!(port = %port.display(), "Modem driver started.");
    Ok(Started { sender: Arc::new(ModemSender(modem.clone())), modem: Some(modem), simulator })
}
