//! The site's publicly trusted name (`<site>.<zone>`, docs/reach.md): the box asks the province
//! what it holds of it at every link, sends a certificate request made with its own key when it
//! has no certificate or its certificate has passed two thirds of its life (30 days before the end
//! of a 90-day one: a box offline for weeks still serves a valid one), and serves a new chain the
//! moment it arrives. The key never leaves the box. A province that gives no names is asked again
//! every 6 hours.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use outpost_link::{exchange::backoff, site::SiteLink};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    base::clock::{Clock, CorrectedClock},
    platform::tls::{self, Certs},
};

/// What the health page shows of the name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NameState {
    /// `<site>.<zone>`, once the province said.
    pub name: Option<String>,
    /// The end of the trusted certificate the box serves.
    pub not_after: Option<DateTime<Utc>>,
    /// When the box asks for the next one.
    pub renew_after: Option<DateTime<Utc>>,
    /// A request waits at the province.
    pub pending: bool,
    /// `false`: the province gives no names (no zone); `None`: not asked yet.
    pub province_gives_names: Option<bool>,
    pub last_error: Option<String>,
    pub last_request: Option<DateTime<Utc>>,
}

/// The name's state, shared with the web. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NameStatus(Arc<Mutex<NameState>>);

impl NameStatus {
    pub fn current(&self) -> NameState {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut NameState)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }
}

/// When a certificate valid from `not_before` to `not_after` is renewed: two thirds into its life.
pub fn renew_after(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_before + (not_after - not_before) * 2 / 3
}

/// The worker's parts.
pub struct Keeper {
    pub site: SiteLink,
    pub province: String,
    pub certs: Arc<Certs>,
    pub data_dir: PathBuf,
    pub clock: Arc<CorrectedClock>,
    /// How often the province is asked while all is well (the sync interval).
    pub every: Duration,
    pub status: NameStatus,
    /// The hosts file the access point's DNS reads, and the box's address there.
    pub dns_hosts: Option<(PathBuf, std::net::IpAddr)>,
}

impl Keeper {
    /// Keeps the name's certificate current until `cancel`; `served` hears of each look.
    pub async fn run(self, cancel: CancellationToken, served: impl Fn() + Send) {
        self.publish_name();
        let mut failures = 0u32;
        loop {
            let wait = match self.step().await {
                Ok(wait) => {
                    failures = 0;
                    self.publish_name();
                    served();
                    wait
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    tracing::warn!(%error, "The site's name certificate could not be checked with the province.");
                    self.status.update(|s| s.last_error = Some(error));
                    failures += 1;
                    backoff(self.every, Duration::from_secs(1800), failures, rand::random())
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
        }
    }

    /// Writes the name the box serves a trusted certificate for to the access point's hosts file,
    /// when it is not there already (the file is on a tmpfs; nothing is written otherwise).
    fn publish_name(&self) {
        let (Some((path, address)), Some(named)) = (&self.dns_hosts, self.certs.named()) else { return };
        let line = format!("{address} {}\n", named.name);
        if std::fs::read_to_string(path).ok().as_deref() == Some(line.as_str()) {
            return;
        }
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, &line).and_then(|()| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => {
                tracing::info!(name = %named.name, file = %path.display(), "The access point's DNS answers the site's name.")
            }
            Err(error) => {
                tracing::warn!(%error, file = %path.display(), "Cannot write the site's name for the access point's DNS.")
            }
        }
    }

    /// One look at the province: a newer chain is served, a request sent if one is due. The wait
    /// before the next look.
    async fn step(&self) -> anyhow::Result<Duration> {
        let Some(held) = self.site.name_certificate(&self.province, None).await? else {
            self.status.update(|s| s.province_gives_names = Some(false));
            return Ok(Duration::from_secs(6 * 3600));
        };
        let mut serving = self.certs.named();
        if let Some(chain) = &held.chain_pem {
            let leaf = outpost_link::ca::first_der(chain).map(|der| outpost_link::ca::fingerprint(&der));
            let newer = held.not_after.is_some_and(|end| {
                serving.as_ref().is_none_or(|n| {
                    end > n.not_after || (end == n.not_after && leaf.as_ref() != Some(&n.fingerprint))
                })
            });
            if newer {
                match tls::keep_named(&self.data_dir, &self.certs, chain) {
                    Ok(named) => {
                        tracing::info!(name = %named.name, not_after = %named.not_after, "Serving the site's trusted certificate.");
                        serving = Some(named);
                    }
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "The province's chain for the site's name is not usable.")
                    }
                }
            }
        }
        let now = self.clock.now();
        let renew = serving.as_ref().map(|n| renew_after(n.not_before, n.not_after));
        let last_request = self.status.current().last_request;
        let due = renew.is_none_or(|at| now >= at)
            && !held.pending
            && last_request.is_none_or(|at| now - at >= chrono::Duration::days(1));
        if due {
            let csr = tls::name_request(&self.data_dir, &held.name)?;
            self.site.name_certificate(&self.province, Some(csr)).await?;
            tracing::info!(name = %held.name, "Asked the province for the site's trusted certificate.");
        }
        self.status.update(|s| {
            *s = NameState {
                name: Some(held.name.clone()),
                not_after: serving.as_ref().map(|n| n.not_after),
                renew_after: renew,
                pending: held.pending || due,
                province_gives_names: Some(true),
                last_error: held.last_error.clone(),
                last_request: if due { Some(now) } else { last_request },
            }
        });
        Ok(if held.pending || due { self.every.min(Duration::from_secs(30)) } else { self.every })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_renewed_two_thirds_into_its_life() {
        let from = DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z").expect("date").with_timezone(&Utc);
        let to = from + chrono::Duration::days(90);
        assert_eq!(renew_after(from, to), from + chrono::Duration::days(60));
    }
}
