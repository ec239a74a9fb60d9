//! Backups of the box's data [M16]: `outpost backup --to DIR` (while the box runs, through its
//! control socket), `outpost restore --from FILE`, and the administrator's download on the health
//! page.
//!
//! A backup is one file: the line `OUTPOST-BACKUP`, a JSON manifest line ([`Manifest`]: format,
//! version, site), then a deflate stream of frames, each a tag byte and length-prefixed fields
//! (integers big-endian):
//! - `E` tree (`u16` + UTF-8), key (`u32` + bytes), value (`u32` + bytes): one store entry;
//! - `D` tree, key: an entry given earlier is gone (written while the backup was read);
//! - `F` path relative to the data folder (`u16` + UTF-8), mode (`u32`), contents (`u32` + bytes):
//!   the box's certificate (`tls/`) and its enrolment with the province (`sync/`);
//! - `Z` summary (`u32` + JSON, [`Summary`]), then 32 bytes: the SHA-256 of the manifest line,
//!   every frame and the summary. A file without it is truncated; one whose hash differs is
//!   corrupt. Either is refused before anything is put in place.
//!
//! The store's records are read as one consistent view ([`outpost_sync::store::Store::export`]):
//! every write acknowledged before the backup began is in it. Nothing holds the whole backup in
//! memory: it streams to the file, the control socket or the download. A backup holds password
//! hashes, keys and personal data: its file and folder are its owner's only.
//!
//! A restore builds the new data folder beside the old one, checks it whole, then moves the old
//! folder aside (`<data>.before-restore-<time>`) and the new one into place: nothing is overwritten.
//! It refuses a backup of another site, one made by a newer version, and a running box.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use outpost_sync::{store::Importer, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"OUTPOST-BACKUP\n";
/// The frame layout this build writes and the newest it reads.
pub const FORMAT: u32 = 1;
/// Folders of the data folder a backup carries, besides the store.
const FILE_DIRS: &[&str] = &["tls", "sync"];
/// The box's control socket, in its data folder.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Largest single field read back (a photo is well below).
const MAX_FIELD: u32 = 256 << 20;

/// What a backup says about itself, readable before its frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The Outpost version that made it.
    pub version: String,
    pub site_id: String,
    pub created_at: DateTime<Utc>,
}

/// The end of a backup: what it holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Summary {
    /// Store entries.
    pub entries: u64,
    pub files: u64,
    /// The change-log position the records end at.
    pub last_seq: u64,
    /// Box-local ids handed out stay below this.
    pub next_id: u64,
}

struct Frames<W: Write> {
    z: flate2::write::DeflateEncoder<W>,
    hash: Sha256,
}

impl<W: Write> Frames<W> {
    fn frame(&mut self, tag: u8, fields: &[(&[u8], bool)]) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(4);
        self.hash.update([tag]);
        self.z.write_all(&[tag])?;
        for (bytes, short) in fields {
            head.clear();
            if *short {
                let n = u16::try_from(bytes.len()).map_err(|_| std::io::Error::other("name too long"))?;
                head.extend_from_slice(&n.to_be_bytes());
            } else {
                let n = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("value too long"))?;
                head.extend_from_slice(&n.to_be_bytes());
            }
            self.hash.update(&head);
            self.hash.update(bytes);
            self.z.write_all(&head)?;
            self.z.write_all(bytes)?;
        }
        Ok(())
    }
}

/// Writes a backup of `store` and the files of `data_dir` to `out`.
pub fn write(
    store: &Store,
    site_id: &str,
    data_dir: &Path,
    now: DateTime<Utc>,
    out: impl Write,
) -> anyhow::Result<Summary> {
    let manifest = Manifest {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        site_id: site_id.to_owned(),
        created_at: now,
    };
    let mut line = serde_json::to_vec(&manifest)?;
    line.push(b'\n');
    let mut out = out;
    out.write_all(MAGIC)?;
    out.write_all(&line)?;
    let mut frames = Frames {
        z: flate2::write::DeflateEncoder::new(out, flate2::Compression::fast()),
        hash: Sha256::new(),
    };
    frames.hash.update(&line);
    let exported = store
        .export(|tree, key, value| match value {
            Some(value) => frames.frame(b'E', &[(tree.as_bytes(), true), (key, false), (value, false)]),
            None => frames.frame(b'D', &[(tree.as_bytes(), true), (key, false)]),
        })
        .context("cannot read the store")?;
    let mut files = 0;
    for dir in FILE_DIRS {
        for (rel, mode, bytes) in read_files(data_dir, dir)? {
            frames.frame(b'F', &[(rel.as_bytes(), true), (&mode.to_be_bytes(), false), (&bytes, false)])?;
            files += 1;
        }
    }
    let summary =
        Summary { entries: exported.entries, files, last_seq: exported.last_seq, next_id: exported.next_id };
    // The summary is inside the hash: a damaged id floor must not pass.
    frames.frame(b'Z', &[(&serde_json::to_vec(&summary)?, false)])?;
    let hash = frames.hash.clone().finalize();
    frames.z.write_all(&hash)?;
    frames.z.finish()?.flush()?;
    Ok(summary)
}

/// Every regular file under `data_dir/dir`: (path relative to `data_dir`, mode, contents).
fn read_files(data_dir: &Path, dir: &str) -> anyhow::Result<Vec<(String, u32, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(rel) = stack.pop() {
        let entries = match std::fs::read_dir(data_dir.join(&rel)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", data_dir.join(&rel).display()))
            }
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let full = data_dir.join(&path);
                let bytes =
                    std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))?;
                let mode = std::os::unix::fs::PermissionsExt::mode(&entry.metadata()?.permissions()) & 0o777;
                out.push((path.to_string_lossy().into_owned(), mode, bytes));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A backup being read: its manifest, then its frames one by one.
pub struct Reader<R: Read> {
    pub manifest: Manifest,
    z: flate2::read::DeflateDecoder<BufReader<R>>,
    hash: Sha256,
}

/// One frame of a backup.
#[derive(Debug)]
pub enum Frame {
    /// A store entry; `None`: removed.
    Entry {
        tree: String,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    File {
        path: String,
        mode: u32,
        bytes: Vec<u8>,
    },
    End(Summary),
}

impl<R: Read> Reader<R> {
    pub fn open(input: R) -> anyhow::Result<Reader<R>> {
        let mut input = BufReader::new(input);
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|_| anyhow::anyhow!("this is not an Outpost backup"))?;
        if magic != MAGIC {
            bail!("this is not an Outpost backup");
        }
        let mut line = Vec::new();
        input.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
        let manifest: Manifest = serde_json::from_slice(&line)
            .context("the backup's manifest cannot be read (a damaged file?)")?;
        let mut hash = Sha256::new();
        hash.update(&line);
        Ok(Reader { manifest, z: flate2::read::DeflateDecoder::new(input), hash })
    }

    fn field(&mut self, short: bool) -> anyhow::Result<Vec<u8>> {
        let len = if short {
            let mut n = [0u8; 2];
            self.z.read_exact(&mut n)?;
            self.hash.update(n);
            u32::from(u16::from_be_bytes(n))
        } else {
            let mut n = [0u8; 4];
            self.z.read_exact(&mut n)?;
            self.hash.update(n);
            u32::from_be_bytes(n)
        };
        if len > MAX_FIELD {
            bail!("a field of {len} bytes");
        }
        let mut bytes = vec![0u8; len as usize];
        self.z.read_exact(&mut bytes)?;
        self.hash.update(&bytes);
        Ok(bytes)
    }

    /// The next frame; the end frame's hash is checked here.
    pub fn next_frame(&mut self) -> anyhow::Result<Frame> {
        let read = |r: &mut Self| -> anyhow::Result<Frame> {
            let mut tag = [0u8; 1];
            r.z.read_exact(&mut tag)?;
            r.hash.update(tag);
            if tag[0] == b'Z' {
                let summary = r.field(false)?;
                let expected = r.hash.clone().finalize();
                let mut hash = [0u8; 32];
                r.z.read_exact(&mut hash)?;
                if hash.as_slice() != expected.as_slice() {
                    bail!("its checksum does not match");
                }
                return Ok(Frame::End(serde_json::from_slice(&summary)?));
            }
            let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| anyhow::anyhow!("a name is not UTF-8"));
            match tag[0] {
                b'E' => Ok(Frame::Entry {
                    tree: text(r.field(true)?)?,
                    key: r.field(false)?,
                    value: Some(r.field(false)?),
                }),
                b'D' => Ok(Frame::Entry { tree: text(r.field(true)?)?, key: r.field(false)?, value: None }),
                b'F' => {
                    let path = text(r.field(true)?)?;
                    let mode = r.field(false)?;
                    let mode =
                        u32::from_be_bytes(mode.try_into().map_err(|_| anyhow::anyhow!("a file's mode"))?);
                    Ok(Frame::File { path, mode, bytes: r.field(false)? })
                }
                t => bail!("an unknown frame {t:#x}"),
            }
        };
        read(self).map_err(|e| {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
            {
                anyhow::anyhow!("the backup is truncated (it ends before its summary)")
            } else {
                anyhow::anyhow!("the backup is damaged: {e}")
            }
        })
    }
}

/// Whether version `a` (x.y.z) is newer than `b`.
fn newer(a: &str, b: &str) -> bool {
    let parse =
        |v: &str| -> Vec<u64> { v.split(['.', '-', '+']).take(3).map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) > parse(b)
}

/// Why a backup does not fit this box, before anything is read past its manifest.
pub fn check_fits(manifest: &Manifest, site_id: &str) -> anyhow::Result<()> {
    let ours = env!("CARGO_PKG_VERSION");
    if manifest.format > FORMAT || newer(&manifest.version, ours) {
        bail!(
            "this backup was made by Outpost {} (backup format {}); this box runs {ours} (format {FORMAT}) \
             and cannot read it: update the box first (outpost update --from FILE.deb). Nothing was changed.",
            manifest.version,
            manifest.format
        );
    }
    if manifest.site_id != site_id {
        bail!(
            "this backup is of site {:?}, and this box is configured as site {:?}: restoring it would \
             mix two sites' records. Nothing was changed. (A replacement box for that site needs \
             `[site] id = {:?}` in its configuration first.)",
            manifest.site_id,
            site_id,
            manifest.site_id
        );
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub summary: Summary,
    /// Where the data that was there before now is.
    pub previous: Option<PathBuf>,
}

/// Restores `file` into `data_dir` for site `site_id` (the box must not be running).
pub fn restore(file: &Path, data_dir: &Path, site_id: &str, now: DateTime<Utc>) -> anyhow::Result<Restored> {
    let _locked = ensure_stopped(data_dir)?;
    let input = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut reader = Reader::open(input).with_context(|| format!("cannot restore {}", file.display()))?;
    check_fits(&reader.manifest, site_id)?;
    let name = data_dir.file_name().context("the data folder needs a name")?.to_string_lossy().into_owned();
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = parent.join(format!("{name}.restoring"));
    if staging.exists() {
        // Left by a restore that did not finish: this command's own folder.
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let summary = match build(&mut reader, &staging) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.context(format!("cannot restore {}; nothing was changed", file.display())));
        }
    };
    match put_in_place(&staging, data_dir, &parent, &name, now) {
        Ok(previous) => Ok(Restored { manifest: reader.manifest, summary, previous }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Moves the data folder aside (if it holds anything) and the staged one into its place; if the
/// second move fails, the first is undone.
fn put_in_place(
    staging: &Path,
    data_dir: &Path,
    parent: &Path,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<PathBuf>> {
    let previous = if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        let aside = parent.join(format!("{name}.before-restore-{}", now.format("%Y%m%d-%H%M%S")));
        std::fs::rename(data_dir, &aside).with_context(|| {
            format!("cannot move {} aside to {}; nothing was changed", data_dir.display(), aside.display())
        })?;
        Some(aside)
    } else {
        let _ = std::fs::remove_dir(data_dir);
        None
    };
    // The folder keeps the owner the old one had (the service's user when run as root).
    if let Ok(meta) = std::fs::metadata(previous.as_deref().unwrap_or(parent)) {
        use std::os::unix::fs::MetadataExt;
        chown_tree(staging, meta.uid(), meta.gid());
    }
    if let Err(e) = std::fs::rename(staging, data_dir) {
        if let Some(aside) = &previous {
            let _ = std::fs::rename(aside, data_dir);
        }
        return Err(anyhow::Error::from(e).context(format!(
            "cannot move the restored data to {}; nothing was changed",
            data_dir.display()
        )));
    }
    std::fs::File::open(parent)?.sync_all()?;
    Ok(previous)
}

/// Gives `dir` and everything in it to `uid:gid`, never following a symbolic link (the folder may
/// belong to the service's user, and this may run as root).
fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(dir, Some(uid), Some(gid));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                chown_tree(&path, uid, gid);
            } else {
                let _ = std::os::unix::fs::lchown(&path, Some(uid), Some(gid));
            }
        }
    }
}

/// Reads every frame into a new store and files under `staging`; checked whole.
fn build<R: Read>(reader: &mut Reader<R>, staging: &Path) -> anyhow::Result<Summary> {
    let mut importer = Importer::create(staging)?;
    let mut files = 0u64;
    loop {
        match reader.next_frame()? {
            Frame::Entry { tree, key, value } => importer.insert(&tree, &key, value.as_deref())?,
            Frame::File { path, mode, bytes } => {
                let rel = Path::new(&path);
                let safe = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)))
                    && FILE_DIRS.iter().any(|d| rel.starts_with(d));
                if !safe {
                    bail!("the backup names a file outside the data folder: {path:?}");
                }
                let target = staging.join(rel);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                options.mode(mode & 0o700);
                let mut f =
                    options.open(&target).with_context(|| format!("cannot write {}", target.display()))?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                files += 1;
            }
            Frame::End(summary) => {
                let entries = importer.finish(summary.next_id)?;
                if entries != summary.entries || files != summary.files {
                    bail!(
                        "it holds {entries} entries and {files} files where its summary says {} and {}",
                        summary.entries,
                        summary.files
                    );
                }
                return Ok(summary);
            }
        }
    }
}

/// Writes a backup of the box at `data_dir` into folder `to` as `outpost-<site>-<time>.backup`:
/// through the running box's control socket, or from the store itself when no box runs.
pub fn backup_to(
    to: &Path,
    data_dir: &Path,
    site_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(PathBuf, Summary)> {
    let socket = std::os::unix::net::UnixStream::connect(data_dir.join(CONTROL_SOCKET)).ok();
    if socket.is_none() && !has_store(data_dir) {
        bail!("there is no box's data in {} (are --data or [store] data_dir right?)", data_dir.display());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    let path = to.join(format!("outpost-{site_id}-{}.backup", now.format("%Y%m%d-%H%M%S")));
    let partial = path.with_extension("backup.partial");
    let result = (|| -> anyhow::Result<Summary> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let mut out = std::io::BufWriter::new(file);
        match socket {
            Some(mut socket) => {
                socket.write_all(b"backup\n")?;
                copy_answer(&mut socket, &mut out)?;
            }
            None => {
                let store = Store::open(data_dir, &Default::default()).with_context(|| {
                    format!("no box answers on {}, and its store cannot be opened", data_dir.display())
                })?;
                let written = same_site(&store, site_id, data_dir)
                    .and_then(|()| write(&store, site_id, data_dir, now, &mut out));
                store.close()?;
                // Opened as root for the service's folder: the files sled made keep the folder's owner.
                if let Ok(meta) = std::fs::metadata(data_dir) {
                    use std::os::unix::fs::MetadataExt;
                    chown_tree(data_dir, meta.uid(), meta.gid());
                }
                written?;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        // Read back whole before it is called a backup.
        let (_, summary) = verify(&partial)?;
        std::fs::rename(&partial, &path)?;
        std::fs::File::open(to)?.sync_all()?;
        Ok(summary)
    })();
    match result {
        Ok(summary) => Ok((path, summary)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.context(format!("the backup into {} failed; nothing was left there", to.display())))
        }
    }
}

/// Refuses to label a store with another site's id.
fn same_site(store: &Store, site_id: &str, data_dir: &Path) -> anyhow::Result<()> {
    let sites = store.list::<outpost_sync::record::Site>()?;
    if !sites.is_empty() && !sites.iter().any(|s| s.id == site_id) {
        bail!(
            "the data in {} is of site {:?}, and the configuration says {site_id:?}",
            data_dir.display(),
            sites[0].id
        );
    }
    Ok(())
}

/// Reads a whole backup file and checks its checksum.
pub fn verify(file: &Path) -> anyhow::Result<(Manifest, Summary)> {
    let mut reader = Reader::open(std::fs::File::open(file)?)?;
    loop {
        if let Frame::End(summary) = reader.next_frame()? {
            return Ok((reader.manifest, summary));
        }
    }
}

/// The control socket's answer: `OK` and the backup, or `ERR <reason>`.
fn copy_answer(socket: &mut std::os::unix::net::UnixStream, out: &mut impl Write) -> anyhow::Result<()> {
    socket.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut reader = BufReader::new(socket);
    let mut status = String::new();
    reader.by_ref().take(4096).read_line(&mut status)?;
    let status = status.trim_end();
    if let Some(reason) = status.strip_prefix("ERR ") {
        bail!("the box could not make the backup: {reason}");
    }
    if status != "OK" {
        bail!("the box's control socket gave no answer");
    }
    std::io::copy(&mut reader, out)?;
    Ok(())
}

/// Refuses when a box runs on `data_dir`: it answers on the control socket, or holds the store's
/// lock (sled locks its folder while open). Otherwise takes that lock and gives it back to hold
/// until the restore is done, so no box starts on the folder meanwhile.
fn ensure_stopped(data_dir: &Path) -> anyhow::Result<Option<std::fs::File>> {
    let running = || {
        anyhow::anyhow!(
            "the box is running on {}: stop it first (systemctl stop outpost). Nothing was changed.",
            data_dir.display()
        )
    };
    if control_answers(data_dir) {
        return Err(running());
    }
    if has_store(data_dir) {
        // sled holds an exclusive flock on its `db` file while open; taking it changes nothing on
        // disk, and it goes with the file when the restore ends.
        let db = std::fs::File::open(data_dir.join("db"))?;
        if fs2::FileExt::try_lock_exclusive(&db).is_err() {
            return Err(running());
        }
        return Ok(Some(db));
    }
    Ok(None)
}

/// Whether `data_dir` holds a store.
fn has_store(data_dir: &Path) -> bool {
    data_dir.join("conf").exists() && data_dir.join("db").exists()
}

/// Whether a box answers on the control socket of `data_dir`.
pub fn control_answers(data_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(data_dir.join(CONTROL_SOCKET)).is_ok()
}

/// Writes a backup of the running box (its `store` and data folder, made at `now`) into a channel,
/// chunk by chunk, for an HTTP download: the receiver is the response body. Runs on the blocking pool.
pub fn stream(
    store: Store,
    site_id: String,
    data_dir: PathBuf,
    now: DateTime<Utc>,
) -> tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>> {
    struct Chunks(tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>);
    impl Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // A download that stops reading for a minute ends the backup (as the socket's timeout).
            let mut chunk = Ok(bytes::Bytes::copy_from_slice(buf));
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                match self.0.try_send(chunk) {
                    Ok(()) => return Ok(buf.len()),
                    Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                        if std::time::Instant::now() > deadline {
                            return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
                        }
                        chunk = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
                    }
                }
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, Chunks(tx.clone()));
        let written = write(&store, &site_id, &data_dir, now, &mut out)
            .and_then(|_| out.flush().map_err(anyhow::Error::from));
        if let Err(error) = written {
            tracing::error!(error = %format!("{error:#}"), "The backup download failed.");
            // The body ends in an error: the browser shows the download as failed.
            let _ = tx.blocking_send(Err(std::io::Error::other("the backup failed")));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(newer("0.10.0", "0.9.3"));
        assert!(newer("1.0.0", "0.99.99"));
        assert!(!newer("0.1.0", "0.1.0"));
        assert!(!newer("0.1.0-rc1", "0.1.0"));
    }

    #[test]
    fn a_backup_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let store = Store::open(&data, &Default::default()).expect("open");
        let mut w = outpost_sync::WriteSet::new();
        w.put_local("k/1", &"một").expect("put");
        store.commit_blocking(w).expect("commit");
        std::fs::create_dir_all(data.join("tls")).expect("mkdir");
        std::fs::write(data.join("tls/box.key"), b"key").expect("write");
        let mut bytes = Vec::new();
        let summary = write(&store, "site-a", &data, Utc::now(), &mut bytes).expect("backup");
        store.close().expect("close");
        assert_eq!(summary.files, 1);
        let file = dir.path().join("b.backup");
        std::fs::write(&file, &bytes).expect("write");
        let (manifest, read) = verify(&file).expect("verify");
        assert_eq!((manifest.site_id.as_str(), read.entries), ("site-a", summary.entries));

        // Cut short, or a byte changed: refused.
        std::fs::write(&file, &bytes[..bytes.len() - 40]).expect("write");
        let e = format!("{:#}", verify(&file).expect_err("truncated"));
        assert!(e.contains("truncated") || e.contains("damaged"), "{e}");
        let mut bad = bytes.clone();
        let at = bad.len() / 2 + 20;
        bad[at] ^= 0x55;
        std::fs::write(&file, &bad).expect("write");
        assert!(verify(&file).is_err());

        // Restored: the key and the file are back, under a new actor and ids above the old ones.
        std::fs::write(&file, &bytes).expect("write");
        let target = dir.path().join("restored");
        let r = restore(&file, &target, "site-a", Utc::now()).expect("restore");
        assert!(r.previous.is_none());
        assert_eq!(std::fs::read(target.join("tls/box.key")).expect("key"), b"key");
        let restored = Store::open(&target, &Default::default()).expect("open restored");
        assert_eq!(restored.get_local::<String>("k/1").expect("get").as_deref(), Some("một"));
        assert!(restored.next_id().expect("id") > summary.next_id);
        restored.close().expect("close");
        drop(restored);
        // sled's own threads let go of the database (and its file lock) a moment after the last
        // handle: a stopped process has none left, a test waits for them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::File::open(target.join("db"))
            .is_ok_and(|db| fs2::FileExt::try_lock_exclusive(&db).is_err())
        {
            assert!(std::time::Instant::now() < deadline, "the restored store is still locked");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }

        // Another site's backup: refused, and the data stays as it was.
        let e = format!("{:#}", restore(&file, &target, "site-b", Utc::now()).expect_err("other site"));
        assert!(e.contains("site-a") && e.contains("Nothing was changed"), "{e}");
        assert!(target.join("tls/box.key").exists());
    }
}
