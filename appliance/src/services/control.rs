//! The control socket of a running box (`<data>/control.sock`, 0600): `outpost backup` asks it for
//! a backup, which the box streams (one at a time: each reads the whole store). A connection with
//! nothing to say is a probe: is a box running here?

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use outpost_sync::Store;
use tokio_util::sync::CancellationToken;

use crate::{base::clock::Clock, platform::backup};

/// Serves the control socket of the box whose data is `store` in `data_dir` (site `site_id`, on
/// `clock`): `backup` streams a backup.
pub async fn serve(
    (store, site_id): (Store, String),
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let path = data_dir.join(backup::CONTROL_SOCKET);
    if path.exists() && !backup::control_answers(&data_dir) {
        let _ = std::fs::remove_file(&path);
    }
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, path = %path.display(), "Cannot open the control socket: `outpost backup` will not reach this box.");
            return;
        }
    };
    let _ = std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    // One backup at a time: each reads the whole store.
    let one_at_a_time = Arc::new(tokio::sync::Semaphore::new(1));
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let source = Source {
            store: store.clone(),
            site_id: site_id.clone(),
            data_dir: data_dir.clone(),
            clock: clock.clone(),
        };
        let one_at_a_time = one_at_a_time.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(source, stream, one_at_a_time).await {
                tracing::error!(error = %format!("{error:#}"), "The control socket's request failed.");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// What a backup reads.
struct Source {
    store: Store,
    site_id: String,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
}

async fn answer(
    b: Source,
    stream: tokio::net::UnixStream,
    one_at_a_time: Arc<tokio::sync::Semaphore>,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), (&mut stream).take(256).read_line(&mut line))
        .await
        .context("no command within 10 s")??;
    let mut stream = stream.into_inner();
    if line.is_empty() {
        return Ok(()); // a probe: is a box running here?
    }
    if line.trim() != "backup" {
        stream.write_all(format!("ERR unknown command {:?}\n", line.trim()).as_bytes()).await?;
        return Ok(());
    }
    let _turn = one_at_a_time.acquire_owned().await?;
    stream.write_all(b"OK\n").await?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    // A client that stops reading must not hold the export (and the keys it notes) open for ever.
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let started = std::time::Instant::now();
    let summary = tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, &stream);
        let summary = backup::write(&b.store, &b.site_id, &b.data_dir, b.clock.now(), &mut out)?;
        out.flush()?;
        anyhow::Ok(summary)
    })
    .await??;
    tracing::info!(
        entries = summary.entries,
        ms = started.elapsed().as_millis() as u64,
        "Backup streamed to `outpost backup`."
    );
    Ok(())
}
