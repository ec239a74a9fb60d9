//! The box's own sources of sightings, besides the site's gateways (`super::mqtt`): its Bluetooth
//! adapter through BlueZ (the only IO is in `outpost_ble::scan`), and the simulated site of the
//! demo. Both send into the presence thread's [`Sink`].

use std::{sync::Arc, time::Duration};

use outpost_ble::scan::{self, ScanConfig, ScanStats};
use tokio_util::sync::CancellationToken;

use super::presence::Sink;
use crate::{app::Outpost, base::clock::Clock, platform::system::Conditions};

/// Scans with the box's own `adapter` for as long as the box runs, counting into `stats`. If BlueZ
/// or the adapter is missing, says so (the health page's `adapter` problem) and tries again every
/// minute: a USB adapter plugged in later is picked up.
pub async fn scan_with_adapter(
    app: Arc<Outpost>,
    adapter: String,
    (sink, stats, conditions): (Sink, Arc<ScanStats>, Arc<Conditions>),
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let config = ScanConfig {
        adapter: (adapter != "auto").then_some(adapter),
        scanner: app.config().site.id.clone(),
        watchdog: app.config().bands.watchdog,
    };
    loop {
        let (scan_clock, scan_sink) = (clock.clone(), sink.clone());
        let seen = stats.events.load(std::sync::atomic::Ordering::Relaxed);
        // A problem reported earlier clears once the adapter delivers events again.
        let recovered = async {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if stats.events.load(std::sync::atomic::Ordering::Relaxed) > seen {
                    conditions.set("adapter", None);
                }
            }
        };
        let scan = scan::run(
            config.clone(),
            stats.clone(),
            move || scan_clock.now(),
            move |s| scan_sink.send(s),
            cancel.cancelled(),
        );
        let result = tokio::select! {
            r = scan => r,
            () = recovered => Ok(()),
        };
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "The Bluetooth adapter cannot be used; trying again in a minute.");
                conditions.set("adapter", Some(format!("{error:#}")));
                // The adapter is a scanner: its bands are not covered until it hears again.
                let report = outpost_ble::scanners::Report::AdapterFailed(format!("{error:#}"));
                sink.report(config.scanner.clone(), report, clock.now());
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

/// Starts a simulated site full of bands (`bands.adapter = "simulator"`): band `i` of the simulator is
/// in the room of whoever wears it, or at the desk; the site is heard once a second.
pub fn simulate(
    app: &Arc<Outpost>,
    sink: Sink,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use outpost_ble::sim::{self, SimConfig, SiteSim};
    let n = app.config().bands.simulated_bands;
    let mut rooms = Vec::with_capacity(n);
    for i in 0..n {
        let room = match app.band(&sim::address(i)) {
            Ok(band) => band.person_id.and_then(|p| app.person(&p).ok()),
            Err(crate::app::AppError::NotFound) => None,
            Err(e) => return Err(e.into()),
        }
        .map_or_else(|| sim::DESK.to_owned(), |p| format!("phong-{}", p.room.to_lowercase()));
        rooms.push(room);
    }
    let mut site = SiteSim::new(app.config().site.id.len() as u64, &rooms, SimConfig::default());
    let scanners = site.scanners();
    std::thread::Builder::new().name("band-simulator".into()).spawn(move || {
        for second in 0u64.. {
            if cancel.is_cancelled() {
                return;
            }
            for s in site.step(clock.now()) {
                sink.send(s);
            }
            // Each scanner reports on itself every 15 s, as ESPresense's telemetry does, heard or not.
            if second % 15 == 0 {
                let telemetry = outpost_ble::scanners::Telemetry {
                    version: Some("simulator".into()),
                    uptime_seconds: Some(second),
                    ..Default::default()
                };
                for name in &scanners {
                    let report = outpost_ble::scanners::Report::Telemetry(telemetry.clone());
                    sink.report(name.clone(), report, clock.now());
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })?;
    tracing::info!(bands = n, "Band simulator started.");
    Ok(())
}
