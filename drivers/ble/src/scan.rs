//! The box's own Bluetooth adapter, through btleplug (BlueZ over D-Bus).
//!
//! [`run`] scans until cancelled and turns every advertisement btleplug reports (a device found or
//! updated, its manufacturer or service data, an RSSI change) into a [`Sighting`] of the device's
//! current properties. btleplug never reports a device as gone — absence is the presence engine's
//! decision. Long BlueZ scans are known to stop delivering events after hours, so a **watchdog**
//! restarts the scan when nothing has arrived for `watchdog`, and reconnects to BlueZ from scratch when
//! a restart fails (Home Assistant does the same, 90 s checked every 30 s).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use btleplug::{
    api::{Central, CentralEvent, Manager as _, Peripheral as _, ScanFilter},
    platform::{Adapter, Manager},
};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::{adv, normalize_address, Sighting};

/// What to scan with.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// The adapter's name (`hci0`), or `None` for the first one BlueZ has.
    pub adapter: Option<String>,
    /// The scanner name sightings carry (the box's own room or name).
    pub scanner: String,
    /// Restart the scan after this long without any event.
    pub watchdog: Duration,
}

/// Counters a caller can read while [`run`] goes on.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub events: AtomicU64,
    pub sightings: AtomicU64,
    /// Scans restarted by the watchdog.
    pub restarts: AtomicU64,
    /// Times the connection to BlueZ was made again.
    pub reconnects: AtomicU64,
}

impl ScanStats {
    /// The counters as JSON, for health pages.
    pub fn to_json(&self) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "events": n(&self.events), "sightings": n(&self.sightings),
            "restarts": n(&self.restarts), "reconnects": n(&self.reconnects),
        })
    }
}

/// Why scanning could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot reach BlueZ over D-Bus: {0}")]
    Bluez(#[from] btleplug::Error),
    #[error("no Bluetooth adapter{}", .0.as_ref().map(|a| format!(" named {a}")).unwrap_or_default())]
    NoAdapter(Option<String>),
}

async fn open(config: &ScanConfig) -> Result<Adapter, ScanError> {
    let manager = Manager::new().await?;
    for adapter in manager.adapters().await? {
        let info = adapter.adapter_info().await.unwrap_or_default();
        let name = info.split_whitespace().next().unwrap_or_default();
        if config.adapter.as_deref().is_none_or(|want| want == name) {
            return Ok(adapter);
        }
    }
    Err(ScanError::NoAdapter(config.adapter.clone()))
}

/// The 16-bit form of a Bluetooth base UUID (`0000xxxx-0000-1000-8000-00805f9b34fb`).
fn short_uuid(u: &uuid::Uuid) -> Option<u16> {
    let b = u.as_bytes();
    const BASE_TAIL: [u8; 12] = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0x80, 0x5f, 0x9b, 0x34, 0xfb];
    (b[0] == 0 && b[1] == 0 && b[4..] == BASE_TAIL).then(|| u16::from_be_bytes([b[2], b[3]]))
}

async fn sighting(
    central: &Adapter,
    id: &btleplug::platform::PeripheralId,
    scanner: &str,
    at: DateTime<Utc>,
) -> Option<Sighting> {
    let peripheral = central.peripheral(id).await.ok()?;
    let props = peripheral.properties().await.ok()??;
    let rssi = props.rssi?;
    let band = normalize_address(&props.address.to_string())?;
    let advertisement = adv::Advertisement {
        manufacturer: props.manufacturer_data.into_iter().collect(),
        service: props
            .service_data
            .iter()
            .filter_map(|(u, d)| short_uuid(u).map(|s| (s, d.clone())))
            .collect::<BTreeMap<_, _>>(),
        tx_power: props.tx_power_level,
    };
    let parsed = adv::parse(&advertisement);
    // A beacon is known by its identity, not by the address it happens to advertise from.
    let band = parsed.beacon.as_ref().map_or(band, adv::Beacon::band_id);
    crate::plausible_rssi(rssi.into()).then(|| Sighting {
        band,
        scanner: scanner.to_owned(),
        rssi,
        at,
        parsed,
    })
}

/// Scans until `cancelled` resolves, calling `on_sighting` for each sighting, timed by `now`. Returns
/// an error only if BlueZ or the adapter cannot be reached at the start; later failures are retried.
pub async fn run(
    config: ScanConfig,
    stats: Arc<ScanStats>,
    now: impl Fn() -> DateTime<Utc>,
    mut on_sighting: impl FnMut(Sighting),
    cancelled: impl std::future::Future<Output = ()>,
) -> Result<(), ScanError> {
    let mut central = open(&config).await?;
    tokio::pin!(cancelled);
    loop {
        let mut events = match central.events().await {
            Ok(e) => e,
            Err(error) => {
                tracing::warn!(%error, "BlueZ event stream failed; reconnecting.");
                tokio::select! {
                    _ = &mut cancelled => return Ok(()),
                    _ = tokio::time::sleep(config.watchdog.min(Duration::from_secs(10))) => {}
                }
                if let Ok(c) = open(&config).await {
                    central = c;
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
        };
        if let Err(error) = central.start_scan(ScanFilter::default()).await {
            tracing::warn!(%error, "Cannot start the BLE scan; retrying.");
        }
        loop {
            let event = tokio::select! {
                _ = &mut cancelled => {
                    let _ = central.stop_scan().await;
                    return Ok(());
                }
                e = tokio::time::timeout(config.watchdog, events.next()) => e,
            };
            let id = match event {
                Ok(Some(
                    CentralEvent::DeviceDiscovered(id)
                    | CentralEvent::DeviceUpdated(id)
                    | CentralEvent::ManufacturerDataAdvertisement { id, .. }
                    | CentralEvent::ServiceDataAdvertisement { id, .. }
                    | CentralEvent::RssiUpdate { id, .. },
                )) => id,
                Ok(Some(_)) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(None) => {
                    tracing::warn!("The BlueZ event stream ended; reconnecting.");
                    break;
                }
                Err(_) => {
                    // The watchdog: nothing for a whole period. Restart the scan; if BlueZ does not
                    // take it, start again from a new connection.
                    stats.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        seconds = config.watchdog.as_secs(),
                        "No BLE event for a while; restarting the scan."
                    );
                    let _ = central.stop_scan().await;
                    if central.start_scan(ScanFilter::default()).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            stats.events.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = sighting(&central, &id, &config.scanner, now()).await {
                stats.sightings.fetch_add(1, Ordering::Relaxed);
                on_sighting(s);
            }
        }
        if let Ok(c) = open(&config).await {
            central = c;
            stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_uuids() {
        let eddystone = uuid::Uuid::parse_str("0000feaa-0000-1000-8000-00805f9b34fb").expect("uuid");
        assert_eq!(short_uuid(&eddystone), Some(0xFEAA));
        let custom = uuid::Uuid::parse_str("6e400001-b5a3-f393-e0a9-e50e24dcca9e").expect("uuid");
        assert_eq!(short_uuid(&custom), None);
    }
}
