//! Incoming SMS [M6]: the modem's events, taken into the box, and the worker that runs the inbox
//! pass (reassembly, SMS declarations, the staff inbox; see `crate::app::inbox`) whenever a part
//! arrives, and every 30 s for multipart messages that time out.

use std::{sync::Arc, time::Duration};

use outpost_sms::{modem::ModemEvents, pdu};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::Outpost;

/// The modem's events, stored in the box. Called on the modem's thread.
pub struct InboxEvents {
    pub app: Arc<Outpost>,
    /// Wakes the inbox worker.
    pub wake: Arc<Notify>,
}

impl ModemEvents for InboxEvents {
    fn received(&self, part: &pdu::Deliver, _raw: &str) -> bool {
        match self.app.keep_sms_part(part) {
            Ok(()) => {
                self.wake.notify_one();
                true
            }
            Err(e) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "Cannot store an incoming SMS; it stays on the SIM.");
                false
            }
        }
    }

    fn report(&self, report: &pdu::StatusReport) {
        let delivered = match report.outcome {
            pdu::Outcome::Delivered => true,
            pdu::Outcome::Failed => false,
            pdu::Outcome::Pending => return,
        };
        if let Err(e) = self.app.delivery_report(report.reference, delivered, report.status) {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "Cannot record a delivery report.");
        }
    }
}

/// Handles complete (or timed-out) messages whenever a part arrives, and every 30 s.
pub async fn run(app: Arc<Outpost>, wake: Arc<Notify>, cancel: CancellationToken) {
    loop {
        if let Err(error) = app.inbox_pass().await {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(error)), "Inbox pass failed.");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}
