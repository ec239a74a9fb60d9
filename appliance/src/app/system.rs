//! The box itself [M16]: the site record written from the configuration, what the store takes and
//! whether it still writes (for the health page, `/healthz` and `/metrics`), and backups for the
//! administrator's download.

use outpost_sync::{
    record::{Person, Site},
    WriteSet,
};

use super::{AppError, AppResult, Outpost};
use crate::{
    base::validate::Problem,
    platform::{backup, stick},
};

/// What the store takes on disk and whether it writes, for the health page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Storage {
    pub bytes: u64,
    /// Flushes done for committing writers (each shared by several).
    pub flushes: u64,
    /// The last failed write, while writes fail.
    pub write_error: Option<String>,
    /// Whether the store can be read at all.
    pub readable: bool,
}

impl Outpost {
    /// Writes the site record from the configuration (the configuration is authoritative for the
    /// box's own site). Unchanged, it writes nothing.
    pub async fn ensure_site(&self) -> AppResult<()> {
        let s = &self.config.site;
        let site = Site {
            id: s.id.clone(),
            name: s.name.clone(),
            district: s.district.clone(),
            commune: s.commune.clone(),
            management_level: s.management_level.clone(),
            schedule: self.schedule().times.iter().map(|t| t.format("%H:%M").to_string()).collect(),
            utc_offset_minutes: s.utc_offset.local_minus_utc() / 60,
        };
        let mut w = WriteSet::new();
        w.put(&site)?;
        self.commit(w).await?;
        Ok(())
    }

    pub fn site(&self) -> AppResult<Site> {
        self.store.get::<Site>(&self.config.site.id)?.ok_or(AppError::NotFound)
    }

    /// Whether anyone is registered (the demo seeds only an empty site).
    pub fn has_people(&self) -> bool {
        self.store.count::<Person>() > 0
    }

    /// Writes records as they are, outside the operations' rules: the demo site's and the
    /// benchmarks' seeded data. Acknowledged once durable.
    pub async fn write_seed(&self, w: WriteSet) -> AppResult<()> {
        self.commit(w).await?;
        Ok(())
    }

    /// [`Outpost::write_seed`] in bulk, off the async runtime, without waiting for each flush.
    pub fn write_seed_in_bulk(&self, w: WriteSet) -> AppResult<()> {
        self.store.apply(w)?;
        Ok(())
    }

    /// The store's figures now.
    pub fn storage(&self) -> Storage {
        Storage {
            bytes: self.store.size_on_disk(),
            flushes: self.store.flushes(),
            write_error: self.store.write_error(),
            readable: self.store.get_local::<serde_json::Value>("none").is_ok(),
        }
    }

    /// A backup made now while the box runs, streamed as it is read (see [`crate::platform::backup`]):
    /// its file name and its bytes. The download is audited when the card still takes the entry: a
    /// card that takes no writes is when a backup is needed most.
    pub async fn backup_download(
        &self,
        by: &str,
    ) -> (String, tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>) {
        let now = self.now();
        let name = format!("outpost-{}-{}.backup", self.config.site.id, now.format("%Y%m%d-%H%M%S"));
        self.audit_if_taken(by, "backup.download", &name).await;
        let site = self.config.site.id.clone();
        let stream = backup::stream(self.store.clone(), site, self.config.store.data_dir.clone(), now);
        (name, stream)
    }

    /// Audits `action` when the card still takes the entry; when it does not, says so in the log and
    /// goes on (a backup is what such a card needs most).
    async fn audit_if_taken(&self, by: &str, action: &str, target: &str) {
        let mut w = WriteSet::new();
        let logged = match self.audit(&mut w, by, action, target, "") {
            Ok(()) => self.commit(w).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(error) = logged {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), action, "Not in the audit log: the store takes no writes.");
        }
    }

    /// An administrator's request for a backup onto, or an update from, the USB stick: left for the
    /// box's root helper (see [`crate::platform::stick`]), and audited when the card still takes the
    /// entry (a card that takes no writes is when a backup onto a stick is needed most). Refused
    /// while one waits or runs.
    pub async fn request_stick(&self, action: stick::Action, by: &str) -> AppResult<()> {
        let dir = &self.config.store.data_dir;
        let busy = stick::pending(dir).is_some()
            || stick::status(dir).is_some_and(|s| s.state == stick::State::Running);
        if busy {
            return Err(AppError::Conflict(Problem::new(
                "stick",
                "Thẻ nhớ USB đang được dùng: chờ việc trước xong rồi thử lại.",
                "The USB stick is in use: wait for the last request to finish.",
            )));
        }
        let audited = match action {
            stick::Action::Backup => "stick.backup",
            stick::Action::Update => "stick.update",
        };
        self.audit_if_taken(by, audited, "").await;
        stick::request(dir, action).map_err(|e| {
            AppError::Conflict(Problem::new(
                "stick",
                format!("Không ghi được yêu cầu: {e:#}"),
                format!("The request could not be left: {e:#}"),
            ))
        })
    }
}
