//! Many small Automerge documents in one sled tree, with projections, indexes, a change log and group
//! commit.
//!
//! Key spaces in the tree (one tree, so one [`WriteSet`] applies atomically with `apply_batch`):
//! - `d/<doc id>` — the saved Automerge document;
//! - `p/<doc id>` — its projection: the record's current value as JSON, what every read uses;
//! - `n/<doc id>` — the index keys the projection wrote, so the next write can remove them;
//! - `i/<index>\0<value>\0<doc id>` — secondary index entries (empty values);
//! - `l/<seq, 8 bytes BE>` → doc id — the change log: each document appears once, at the sequence of its
//!   latest change, so "everything since cursor N" is one range scan;
//! - `s/<doc id>` → seq — where the document sits in the change log;
//! - `m/…` — store metadata (the box's Automerge actor id);
//! - `x/…` — box-local keys that never replicate (outbox, sessions, credentials, audit log, markers).
//!
//! Durability: [`Store::apply`] applies a write set in memory; [`Store::commit`] also waits for a flush
//! that started after the write was applied. One flusher thread serves every waiter, so concurrent
//! writers share each fsync (group commit). Nothing here reads a clock: callers pass times in records.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex,
    },
    thread,
};

use automerge::{ActorId, AutoCommit, ChangeHash};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::oneshot;

pub use crate::error::{StoreError, WriteGuard};
use crate::{
    doc,
    error::{guarded, Result},
    protocol::{DocChanges, DocHeads},
    record::{self, Record},
    series::Series,
};

/// Sizing and behaviour of the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache, bytes. Small on a Pi: the projections are what is read.
    pub cache_capacity: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { cache_capacity: 16 * 1024 * 1024 }
    }
}

/// A set of changes applied atomically: records (each an Automerge document) and box-local keys.
#[derive(Debug, Default)]
pub struct WriteSet {
    pub(crate) docs: Vec<DocWrite>,
    /// Keys as the sled tree keys them (`x/<key>`); `None` removes one.
    pub(crate) local: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Debug)]
pub(crate) struct DocWrite {
    pub(crate) doc_id: String,
    value: serde_json::Value,
    pub(crate) projection: Vec<u8>,
    /// As the sled tree keys them (`i/<index>\0<value>\0<doc id>`).
    pub(crate) index_keys: Vec<Vec<u8>>,
    /// Start a new document from this value, dropping the history (erasure of personal data).
    pub(crate) fresh: bool,
}

impl DocWrite {
    /// The document after this write, from the `stored` one (edited by `actor`); `None` if the
    /// write changes nothing in it.
    pub(crate) fn document(&self, stored: Option<&[u8]>, actor: &ActorId) -> Result<Option<AutoCommit>> {
        let failed = |source| StoreError::Document { doc_id: self.doc_id.clone(), source };
        if self.fresh {
            // A new history: a fresh actor (the store's own would repeat sequence numbers the peers
            // hold) and a new generation, so that peers drop their copy of the old one.
            let mut doc = AutoCommit::new().with_actor(ActorId::random());
            doc::set_generation(&mut doc, &uuid::Uuid::new_v4().simple().to_string()).map_err(failed)?;
            doc::reconcile(&mut doc, &self.value).map_err(failed)?;
            return Ok(Some(doc));
        }
        let mut doc = load_or_new(&self.doc_id, stored, actor)?;
        Ok(doc::reconcile(&mut doc, &self.value).map_err(failed)?.then_some(doc))
    }
}

/// The stored document (or a new one), edited by `actor`.
pub(crate) fn load_or_new(doc_id: &str, stored: Option<&[u8]>, actor: &ActorId) -> Result<AutoCommit> {
    Ok(match stored {
        Some(bytes) => AutoCommit::load(bytes)
            .map_err(|source| StoreError::CorruptDocument {
                doc_id: doc_id.to_owned(),
                source: Box::new(source),
            })?
            .with_actor(actor.clone()),
        None => AutoCommit::new().with_actor(actor.clone()),
    })
}

/// What merging a peer's changes into one document came to.
pub(crate) enum Merge {
    /// Taken, nothing new: the document as it is.
    Same(AutoCommit),
    /// Changes of an older generation (a document since erased): not merged back.
    Older(AutoCommit),
    /// Merged: the document, and its new projection and index entries.
    Changed(AutoCommit, record::Projection),
    /// Cannot be merged (corrupt changes, a kind this build does not know, a value that is not its
    /// record type): the document as it was, and why.
    Refused(AutoCommit, StoreError),
}

/// Merges `d`'s changes into `doc` (edited by `actor`), by Automerge's rules: concurrent edits of
/// different fields both stay; of one field, one value wins deterministically and the other stays
/// in the history. Generations (erasure starts a document anew): complete changes of a newer
/// generation replace this side's copy; complete changes of an older one are not merged back.
pub(crate) fn merge_changes(mut doc: AutoCommit, actor: &ActorId, d: &DocChanges) -> Merge {
    // (A document this side does not hold yet has no generation to compare: no second parse.)
    let complete =
        |alone: &mut AutoCommit| alone.load_incremental(&d.changes).is_ok() && !alone.get_heads().is_empty();
    let mut alone = AutoCommit::new();
    if !doc.get_heads().is_empty() && complete(&mut alone) {
        let (theirs, ours) = (doc::generation(&alone), doc::generation(&doc));
        if theirs > ours {
            doc = AutoCommit::new().with_actor(actor.clone());
        } else if theirs < ours {
            return Merge::Older(doc);
        }
    }
    let before = doc.get_heads();
    let mut merged = doc.clone();
    let corrupt = |source| StoreError::CorruptDocument { doc_id: d.doc_id.clone(), source: Box::new(source) };
    if let Err(e) = merged.load_incremental(&d.changes) {
        return Merge::Refused(doc, corrupt(e));
    }
    if merged.get_heads() == before {
        return Merge::Same(merged);
    }
    let kind = d.doc_id.split_once('/').map_or(d.doc_id.as_str(), |(k, _)| k);
    match record::project(kind, doc::hydrate(&merged)) {
        Ok(p) => Merge::Changed(merged, p),
        Err(source) => Merge::Refused(doc, StoreError::Remote { doc_id: d.doc_id.clone(), source }),
    }
}

impl WriteSet {
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    /// Creates or updates a record. Only fields that differ from the stored document are written.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<&mut Self> {
        self.push(record, false)
    }

    /// Replaces a record's document with a new one holding only this value: its history (every earlier
    /// value of every field) is dropped. For erasing personal data, which a CRDT's history would
    /// otherwise keep.
    pub fn replace<R: Record>(&mut self, record: &R) -> Result<&mut Self> {
        self.push(record, true)
    }

    fn push<R: Record>(&mut self, record: &R, fresh: bool) -> Result<&mut Self> {
        let doc_id = record.doc_id();
        let value = serde_json::to_value(record).map_err(StoreError::Serialize)?;
        let projection = serde_json::to_vec(&value).map_err(StoreError::Serialize)?;
        let index_keys =
            record.index_entries().into_iter().map(|(name, v)| index_key(name, &v, &doc_id)).collect();
        self.docs.push(DocWrite { doc_id, value, projection, index_keys, fresh });
        Ok(self)
    }

    /// Sets a box-local key (under `x/`), JSON-encoded.
    pub fn put_local<T: Serialize>(&mut self, key: &str, value: &T) -> Result<&mut Self> {
        let bytes = serde_json::to_vec(value).map_err(StoreError::Serialize)?;
        self.local.push((local_key(key), Some(bytes)));
        Ok(self)
    }

    /// Removes a box-local key.
    pub fn delete_local(&mut self, key: &str) -> &mut Self {
        self.local.push((local_key(key), None));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty() && self.local.is_empty()
    }
}

/// The outcome of [`Store::apply`]: what the write changed, before it is durable.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Documents whose content changed, with their new change-log sequence.
    pub changed: Vec<(String, u64)>,
    /// Documents from a peer that could not be merged, with the reason (see [`Store::merge_remote`]).
    pub refused: Vec<(String, String)>,
}

/// A sled batch that, while a backup reads the store ([`Store::export`]), also remembers the keys it
/// writes, so the backup can read them again at its end.
struct Staged {
    batch: sled::Batch,
    keys: Option<Vec<Vec<u8>>>,
    writes: usize,
}

impl Staged {
    fn new(track: bool) -> Staged {
        Staged { batch: sled::Batch::default(), keys: track.then(Vec::new), writes: 0 }
    }
    fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<sled::IVec>) {
        if let Some(keys) = &mut self.keys {
            keys.push(key.as_ref().to_vec());
        }
        self.writes += 1;
        self.batch.insert(key.as_ref(), value);
    }
    fn remove(&mut self, key: impl AsRef<[u8]>) {
        if let Some(keys) = &mut self.keys {
            keys.push(key.as_ref().to_vec());
        }
        self.writes += 1;
        self.batch.remove(key.as_ref());
    }
}

fn local_key(key: &str) -> Vec<u8> {
    format!("x/{key}").into_bytes()
}

/// An index entry's key (`i/<index>\0<value>\0<doc id>`) read back: its index and value.
#[cfg(feature = "postgres")]
pub(crate) fn index_parts(key: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(key.strip_prefix(b"i/")?).ok()?;
    let (index, rest) = text.split_once('\0')?;
    let (value, _) = rest.rsplit_once('\0')?;
    Some((index.to_owned(), value.to_owned()))
}

fn index_key(index: &str, value: &str, doc_id: &str) -> Vec<u8> {
    let value = value.replace('\0', " ");
    format!("i/{index}\0{value}\0{doc_id}").into_bytes()
}

struct FlushQueue {
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    closed: bool,
}

struct Flusher {
    queue: Mutex<FlushQueue>,
    wake: Condvar,
    /// Flushes done so far (for metrics and the group-commit test).
    count: std::sync::atomic::AtomicU64,
    /// Why the last flush failed, until one succeeds (a full or read-only disk).
    failed: Mutex<Option<String>>,
    /// sled's log file, synced after each flush: see [`durable_flush`].
    log: Option<std::fs::File>,
}

/// sled's flush, then the log file's `fdatasync`. sled 0.34 writes a flush with
/// `sync_file_range`, which neither records the file's new length nor empties the card's or the
/// disk's write cache: a power cut (not a killed process) then lost writes already acknowledged
/// (seen on the booted image, `images/test-image`: four declarations of a few dozen). sled syncs the
/// file itself only once a second.
fn durable_flush(db: &sled::Db, log: Option<&std::fs::File>) -> std::result::Result<(), String> {
    db.flush().map_err(|e| e.to_string())?;
    match log {
        Some(file) => file.sync_data().map_err(|e| format!("fdatasync: {e}")),
        None => Ok(()),
    }
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    actor: ActorId,
    /// Added to sled's generated ids: a store restored from a backup starts above every id the
    /// backed-up store had handed out (sled's own counter starts again at 0 in a new database).
    id_floor: u64,
    /// Serialises writers: load, edit, save and allocate a sequence as one step.
    writer: Mutex<u64>,
    flusher: Arc<Flusher>,
    flusher_thread: Mutex<Option<thread::JoinHandle<()>>>,
    closed: AtomicBool,
    guard: std::sync::OnceLock<WriteGuard>,
    /// While a backup reads the store: every key written since it began (changed under `writer`).
    written_during_export: Mutex<Option<std::collections::BTreeSet<Vec<u8>>>>,
    /// One export at a time: each owns `written_during_export` for its length.
    export_turn: Mutex<()>,
}

/// The box's data. Cheap to clone; all clones share one database and one flusher thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        let tree = db.open_tree("outpost")?;
        let actor = match tree.get("m/actor")? {
            Some(bytes) => ActorId::from(bytes.as_ref()),
            None => {
                let actor = ActorId::random();
                tree.insert("m/actor", actor.to_bytes())?;
                db.flush().map_err(|e| StoreError::Flush(e.into()))?;
                actor
            }
        };
        let id_floor = tree.get(ID_FLOOR)?.map_or(0, |b| u64_from(&b));
        let last_seq = match tree.scan_prefix("l/").next_back() {
            Some(entry) => seq_from_key(&entry?.0),
            None => 0,
        };
        let flusher = Arc::new(Flusher {
            queue: Mutex::new(FlushQueue { waiters: Vec::new(), closed: false }),
            wake: Condvar::new(),
            count: std::sync::atomic::AtomicU64::new(0),
            failed: Mutex::new(None),
            // sled's own file (`Config::db_path`); a store sled made elsewhere is flushed as sled does.
            log: std::fs::File::open(path.join("db")).ok(),
        });
        let thread = {
            let flusher = flusher.clone();
            let db = db.clone();
            thread::Builder::new()
                .name("store-flush".into())
                .spawn(move || flush_loop(&db, &flusher))
                .map_err(StoreError::Flush)?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                tree,
                actor,
                id_floor,
                writer: Mutex::new(last_seq),
                flusher,
                flusher_thread: Mutex::new(Some(thread)),
                closed: AtomicBool::new(false),
                guard: std::sync::OnceLock::new(),
                written_during_export: Mutex::new(None),
                export_turn: Mutex::new(()),
            }),
        })
    }

    /// Applies `writes` atomically and waits until they are on disk.
    pub async fn commit(&self, writes: WriteSet) -> Result<Applied> {
        let applied = self.apply(writes)?;
        self.durable().await?;
        Ok(applied)
    }

    /// [`Store::commit`] for callers outside the async runtime.
    pub fn commit_blocking(&self, writes: WriteSet) -> Result<Applied> {
        let applied = self.apply(writes)?;
        self.durable_blocking()?;
        Ok(applied)
    }

    /// [`Store::durable`] for callers outside the async runtime.
    pub fn durable_blocking(&self) -> Result<()> {
        let rx = self.request_flush()?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| StoreError::Flush(std::io::Error::other(e)))
    }

    /// Waits until everything applied so far is on disk, sharing the flush with other waiters.
    pub async fn durable(&self) -> Result<()> {
        let rx = self.request_flush()?;
        rx.await.map_err(|_| StoreError::Closed)?.map_err(|e| StoreError::Flush(std::io::Error::other(e)))
    }

    fn request_flush(&self) -> Result<oneshot::Receiver<Result<(), String>>> {
        let (tx, rx) = oneshot::channel();
        let mut queue = self.inner.flusher.queue.lock().map_err(|_| StoreError::Closed)?;
        if queue.closed {
            return Err(StoreError::Closed);
        }
        queue.waiters.push(tx);
        drop(queue);
        self.inner.flusher.wake.notify_one();
        Ok(rx)
    }

    /// Applies `writes` atomically in memory. Not yet durable: acknowledge only after [`Store::durable`].
    pub fn apply(&self, writes: WriteSet) -> Result<Applied> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let tree = &self.inner.tree;
        let mut last_seq = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
        // Sequence numbers are taken for real only once the batch is applied: a refused write leaves
        // no gap at the end of the change log (the sync's "pending" count is measured against it).
        let mut next = *last_seq;
        let seq = &mut next;
        let mut batch = Staged::new(self.exporting());
        let mut applied = Applied::default();
        for write in writes.docs {
            let stored = if write.fresh { None } else { tree.get(format!("d/{}", write.doc_id))? };
            let Some(mut doc) = write.document(stored.as_deref(), &self.inner.actor)? else { continue };
            *seq += 1;
            self.stage(&mut batch, *seq, &write.doc_id, &mut doc, write.projection, &write.index_keys)?;
            applied.changed.push((write.doc_id, *seq));
        }
        for (key, value) in writes.local {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        let records = !applied.changed.is_empty();
        self.apply_staged(batch, records)?;
        *last_seq = next;
        Ok(applied)
    }

    fn exporting(&self) -> bool {
        self.inner.written_during_export.lock().is_ok_and(|w| w.is_some())
    }

    /// Applies a batch atomically (call holding `writer`), noting its keys for a running export.
    /// An empty batch writes nothing and is never refused; another passes the write guard first.
    fn apply_staged(&self, staged: Staged, records: bool) -> Result<()> {
        if staged.writes == 0 {
            return Ok(());
        }
        guarded(self.inner.guard.get(), records)?;
        self.inner.tree.apply_batch(staged.batch)?;
        if let Some(keys) = staged.keys {
            if let Ok(mut written) = self.inner.written_during_export.lock() {
                if let Some(w) = written.as_mut() {
                    w.extend(keys);
                }
            }
        }
        Ok(())
    }

    /// Adds to `batch` a document's new state at change-log position `seq`: the saved document, its
    /// projection, its index entries (removing those it no longer has) and its change-log entry.
    /// Documents are saved without Automerge's per-column DEFLATE: a record's columns are small,
    /// and setting up a deflater for each one was a tenth of the time of every write and merge.
    fn stage(
        &self,
        batch: &mut Staged,
        seq: u64,
        doc_id: &str,
        doc: &mut AutoCommit,
        projection: Vec<u8>,
        index_keys: &[Vec<u8>],
    ) -> Result<()> {
        let saved = doc.save_nocompress();
        let tree = &self.inner.tree;
        let skey = format!("s/{doc_id}");
        if let Some(old) = tree.get(&skey)? {
            batch.remove(log_key(u64_from(&old)));
        }
        let nkey = format!("n/{doc_id}");
        if let Some(old) = tree.get(&nkey)? {
            let old: Vec<Vec<u8>> = serde_json::from_slice(&old).unwrap_or_default();
            for k in old.into_iter().filter(|k| !index_keys.contains(k)) {
                batch.remove(k);
            }
        }
        for k in index_keys {
            batch.insert(k.clone(), &[] as &[u8]);
        }
        let index_list = serde_json::to_vec(index_keys).map_err(StoreError::Serialize)?;
        batch.insert(nkey.as_bytes(), index_list);
        batch.insert(format!("d/{doc_id}").as_bytes(), saved);
        batch.insert(format!("p/{doc_id}").as_bytes(), projection);
        batch.insert(log_key(seq), doc_id.as_bytes());
        batch.insert(skey.as_bytes(), &seq.to_be_bytes());
        Ok(())
    }

    /// Merges changes that came from a peer, in one atomic write: each into its stored document
    /// (Automerge's rules: concurrent edits of different fields both stay; of one field, one value
    /// wins deterministically and the other stays in the history), with a new projection, indexes
    /// and change-log entry where it changed. Returns each document's heads afterwards. Changes whose
    /// dependencies this side lacks are not applied: the heads say so, and the peer sends again. A
    /// document that cannot be merged (corrupt changes, a kind this build does not know, a value
    /// that is not its record type) is set aside and listed by [`Store::sync_refused`]; the rest
    /// goes on. Not yet durable: see [`Store::merge_remote_blocking`].
    pub fn merge_remote(&self, docs: &[DocChanges]) -> Result<(Applied, Vec<DocHeads>)> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let mut last_seq = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
        let mut next = *last_seq;
        let seq = &mut next;
        let mut batch = Staged::new(self.exporting());
        let mut applied = Applied::default();
        let mut heads = Vec::with_capacity(docs.len());
        let mut merged: std::collections::HashMap<&str, AutoCommit> = std::collections::HashMap::new();
        for d in docs {
            let doc = match merged.remove(d.doc_id.as_str()) {
                Some(doc) => doc,
                None => load_or_new(
                    &d.doc_id,
                    self.inner.tree.get(format!("d/{}", d.doc_id))?.as_deref(),
                    &self.inner.actor,
                )?,
            };
            // A document that cannot be merged is set aside (listed, with the reason, under
            // `x/sync-refused/`) and keeps its heads: the peer sees it was not taken and sends it
            // again; every other document of the batch goes on.
            let refused_key = local_key(&format!("sync-refused/{}", d.doc_id));
            let mut doc = match merge_changes(doc, &self.inner.actor, d) {
                Merge::Older(doc) => doc,
                Merge::Same(doc) => {
                    batch.remove(refused_key);
                    doc
                }
                Merge::Changed(mut doc, (projection, entries)) => {
                    batch.remove(refused_key);
                    let index_keys: Vec<Vec<u8>> =
                        entries.into_iter().map(|(name, v)| index_key(name, &v, &d.doc_id)).collect();
                    *seq += 1;
                    self.stage(&mut batch, *seq, &d.doc_id, &mut doc, projection, &index_keys)?;
                    applied.changed.push((d.doc_id.clone(), *seq));
                    doc
                }
                Merge::Refused(doc, error) => {
                    batch.insert(refused_key, error_chain(&error).into_bytes());
                    applied.refused.push((d.doc_id.clone(), error_chain(&error)));
                    doc
                }
            };
            heads.push((d.doc_id.clone(), doc.get_heads()));
            merged.insert(d.doc_id.as_str(), doc);
        }
        self.apply_staged(batch, true)?;
        *last_seq = next;
        Ok((applied, heads))
    }

    /// [`Store::merge_remote`], then waits until it is on disk (outside the async runtime).
    pub fn merge_remote_blocking(&self, docs: &[DocChanges]) -> Result<(Applied, Vec<DocHeads>)> {
        let merged = self.merge_remote(docs)?;
        self.durable_blocking()?;
        Ok(merged)
    }

    /// Documents from the peer that could not be merged, with the reason: what sync could not take.
    pub fn sync_refused(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for entry in self.inner.tree.scan_prefix(local_key("sync-refused/")) {
            let (k, v) = entry?;
            let doc_id = String::from_utf8_lossy(&k[b"x/sync-refused/".len()..]).into_owned();
            out.push((doc_id, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }

    /// A document's heads (empty if it does not exist).
    pub fn heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        saved_heads(doc_id, self.saved(doc_id)?.as_deref())
    }

    /// Reads a record's projection.
    pub fn get<R: Record>(&self, id: &str) -> Result<Option<R>> {
        self.get_doc(&record::doc_id::<R>(id))
    }

    fn get_doc<R: DeserializeOwned>(&self, doc_id: &str) -> Result<Option<R>> {
        match self.inner.tree.get(format!("p/{doc_id}"))? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::CorruptProjection { doc_id: doc_id.to_owned(), source }),
            None => Ok(None),
        }
    }

    /// Every record of kind `R`, in id order.
    pub fn list<R: Record>(&self) -> Result<Vec<R>> {
        let mut out = Vec::new();
        self.for_each_where(|_| true, |r| out.push(r))?;
        Ok(out)
    }

    /// Calls `each` with every record of kind `R` whose id `keep` accepts, in id order, decoding
    /// only those: one at a time, however many there are.
    pub fn for_each_where<R: Record>(
        &self,
        mut keep: impl FnMut(&str) -> bool,
        mut each: impl FnMut(R),
    ) -> Result<()> {
        let prefix = format!("p/{}/", R::KIND);
        for entry in self.inner.tree.scan_prefix(&prefix) {
            let (key, bytes) = entry?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]);
            if !keep(&id) {
                continue;
            }
            each(serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptProjection {
                doc_id: String::from_utf8_lossy(&key[2..]).into_owned(),
                source,
            })?);
        }
        Ok(())
    }

    /// Number of records of kind `R`.
    pub fn count<R: Record>(&self) -> usize {
        self.inner.tree.scan_prefix(format!("p/{}/", R::KIND)).keys().count()
    }

    /// Index entries of `index` whose value starts with `value_prefix`: `(value, record id)` in value
    /// order. Reads keys only.
    pub fn index_scan(&self, index: &str, value_prefix: &str) -> Result<Vec<(String, String)>> {
        let prefix = format!("i/{index}\0{value_prefix}");
        let head = index.len() + 3;
        let mut out = Vec::new();
        for key in self.inner.tree.scan_prefix(prefix.as_bytes()).keys() {
            let key = key?;
            let rest = String::from_utf8_lossy(&key[head..]).into_owned();
            if let Some((value, doc_id)) = rest.rsplit_once('\0') {
                let id = doc_id.split_once('/').map_or(doc_id, |(_, id)| id);
                out.push((value.to_owned(), id.to_owned()));
            }
        }
        Ok(out)
    }

    /// The records whose `index` value is exactly `value`.
    pub fn find<R: Record>(&self, index: &str, value: &str) -> Result<Vec<R>> {
        self.find_where(index, value, |v| v == value)
    }

    /// The records whose `index` value starts with `prefix`, in value order.
    pub fn find_prefix<R: Record>(&self, index: &str, prefix: &str) -> Result<Vec<R>> {
        self.find_where(index, prefix, |_| true)
    }

    fn find_where<R: Record>(
        &self,
        index: &str,
        prefix: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<R>> {
        let mut out = Vec::new();
        for (v, id) in self.index_scan(index, prefix)? {
            if keep(&v) {
                if let Some(r) = self.get::<R>(&id)? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The saved Automerge document, for sync and history views.
    pub fn document(&self, doc_id: &str) -> Result<Option<AutoCommit>> {
        match self.saved(doc_id)? {
            Some(bytes) => AutoCommit::load(&bytes).map(Some).map_err(|source| StoreError::CorruptDocument {
                doc_id: doc_id.to_owned(),
                source: Box::new(source),
            }),
            None => Ok(None),
        }
    }

    /// The saved Automerge document's bytes.
    pub(crate) fn saved(&self, doc_id: &str) -> Result<Option<sled::IVec>> {
        Ok(self.inner.tree.get(format!("d/{doc_id}"))?)
    }

    /// This store's Automerge actor: who its own edits are by.
    pub fn actor(&self) -> ActorId {
        self.inner.actor.clone()
    }

    /// This store's Automerge actor, in hex: who its own edits are by.
    pub fn actor_hex(&self) -> String {
        self.inner.actor.to_hex_string()
    }

    /// Change-log entries after sequence `after`: `(seq, doc id)`, oldest first, at most `limit`.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        for entry in self.inner.tree.range(log_key(after + 1).to_vec()..log_key(u64::MAX).to_vec()) {
            let (k, v) = entry?;
            out.push((seq_from_key(&k), String::from_utf8_lossy(&v).into_owned()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The latest change-log sequence.
    pub fn last_seq(&self) -> u64 {
        self.inner.writer.lock().map(|s| *s).unwrap_or(0)
    }

    /// Reads a box-local key.
    pub fn get_local<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.inner.tree.get(local_key(key))? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::CorruptProjection { doc_id: format!("x/{key}"), source }),
            None => Ok(None),
        }
    }

    /// Box-local entries under `prefix`, in key order: `(key without "x/", value)`. Entries that do not
    /// decode as `T` are skipped.
    pub fn scan_local<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        self.scan_local_range(prefix, None, usize::MAX, false)
    }

    /// Like [`Store::scan_local`], starting after key `after`, at most `limit`, newest first if `rev`.
    pub fn scan_local_range<T: DeserializeOwned>(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<(String, T)>> {
        let p = local_key(prefix);
        let iter = self.inner.tree.scan_prefix(&p);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if rev { Box::new(iter.rev()) } else { Box::new(iter) };
        let after = after.map(local_key);
        let mut out = Vec::new();
        for entry in iter {
            let (k, v) = entry?;
            if let Some(a) = &after {
                if (!rev && k.as_ref() <= a.as_slice()) || (rev && k.as_ref() >= a.as_slice()) {
                    continue;
                }
            }
            if let Ok(value) = serde_json::from_slice(&v) {
                out.push((String::from_utf8_lossy(&k[2..]).into_owned(), value));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Whether a box-local key exists.
    pub fn has_local(&self, key: &str) -> Result<bool> {
        Ok(self.inner.tree.contains_key(local_key(key))?)
    }

    /// A unique, increasing id (across restarts) for box-local sequences.
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.inner.db.generate_id()? + self.inner.id_floor)
    }

    /// Reads every entry of the store for a backup, calling `each(tree, key, value)`; a `None`
    /// value removes a key an earlier call gave.
    ///
    /// The records' tree is read as one consistent view, without stopping writers for the length of
    /// the read: the keys every write applies are noted from the start; the tree is read while
    /// writers go on; then, under the writer lock, the keys written meanwhile are read again and
    /// given once more (or removed). Applied in order, the entries are the tree as it was at that
    /// moment: every write applied before the call is in it, and no write is partly in it. Writers
    /// wait only for the re-reading of what they wrote during the read. The box-local trees (time
    /// series of samples, each sample standing alone) follow entry by entry. One export runs at a
    /// time; another waits for it.
    pub fn export(
        &self,
        mut each: impl FnMut(&str, &[u8], Option<&[u8]>) -> std::io::Result<()>,
    ) -> Result<Exported> {
        let _turn = self.inner.export_turn.lock().map_err(|_| StoreError::Closed)?;
        {
            let _writer = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
            *self.inner.written_during_export.lock().map_err(|_| StoreError::Closed)? =
                Some(Default::default());
        }
        // However the export ends (an error, a panic in `each`), writers stop noting their keys.
        struct Tracking<'a>(&'a Store);
        impl Drop for Tracking<'_> {
            fn drop(&mut self) {
                if let Ok(mut w) = self.0.inner.written_during_export.lock() {
                    *w = None;
                }
            }
        }
        let _tracking = Tracking(self);
        let mut entries = 0u64;
        for entry in self.inner.tree.iter() {
            let (k, v) = entry?;
            each(RECORDS_TREE, &k, Some(&v)).map_err(StoreError::Backup)?;
            entries += 1;
        }
        let (again, last_seq) = {
            let seq = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
            let written = self
                .inner
                .written_during_export
                .lock()
                .map_err(|_| StoreError::Closed)?
                .take()
                .unwrap_or_default();
            let mut again = Vec::with_capacity(written.len());
            for key in written {
                let value = self.inner.tree.get(&key)?;
                again.push((key, value));
            }
            (again, *seq)
        };
        for (key, value) in &again {
            each(RECORDS_TREE, key, value.as_deref()).map_err(StoreError::Backup)?;
            entries += 1;
        }
        let mut exported =
            Exported { last_seq, next_id: self.next_id()?, entries, written_during: again.len() };
        for name in self.inner.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if !name.starts_with(SERIES_PREFIX) {
                continue;
            }
            for entry in self.inner.db.open_tree(&name)?.iter() {
                let (k, v) = entry?;
                each(&name, &k, Some(&v)).map_err(StoreError::Backup)?;
                exported.entries += 1;
            }
        }
        Ok(exported)
    }

    /// Why writes do not reach the disk, while the last flush failed.
    pub fn write_error(&self) -> Option<String> {
        self.inner.flusher.failed.lock().ok().and_then(|f| f.clone())
    }

    /// How many flushes (fsyncs) the store has done for committing writers.
    pub fn flushes(&self) -> u64 {
        self.inner.flusher.count.load(Ordering::Relaxed)
    }

    /// The box-local time-series `name` (its own sled tree).
    pub fn series(&self, name: &str) -> Result<Series> {
        Ok(Series::new(
            self.inner.db.open_tree(format!("{SERIES_PREFIX}{name}"))?,
            self.inner.guard.get().cloned(),
        ))
    }

    /// Sets the check every write passes first (once; before series are opened).
    pub fn set_write_guard(&self, guard: WriteGuard) {
        let _ = self.inner.guard.set(guard);
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }

    /// Flushes, stops the flusher thread and refuses further writes.
    pub fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let result = durable_flush(&self.inner.db, self.inner.flusher.log.as_ref())
            .map_err(|e| StoreError::Flush(std::io::Error::other(e)));
        if let Ok(mut q) = self.inner.flusher.queue.lock() {
            q.closed = true;
        }
        self.inner.flusher.wake.notify_all();
        if let Some(handle) = self.inner.flusher_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = handle.join();
        }
        result
    }
}

/// The store as one side of the sync protocol; `apply` is durable when it returns (call it outside
/// the async runtime).
/// The sync protocol's [`Docs`] and [`Side`] for a store, over its own methods (`actor_hex`,
/// `changes_since`, `heads`, `document`, `merge_remote_blocking`, `get_local`, `commit_blocking`):
/// the sled store here, PostgreSQL's in `pg`.
macro_rules! sync_side {
    ($store:ty) => {
        impl $crate::protocol::Docs for $store {
            fn incarnation(&self) -> String {
                self.actor_hex()
            }
            fn changed_since(&self, after: u64, limit: usize) -> Vec<(u64, String)> {
                // A failed read sends nothing this time; the cursor stays, the next exchange tries again.
                self.changes_since(after, limit).unwrap_or_default()
            }
            fn heads(&self, doc_id: &str) -> std::result::Result<Vec<automerge::ChangeHash>, String> {
                <$store>::heads(self, doc_id).map_err(|e| $crate::store::error_chain(&e))
            }
            fn has_change(
                &self,
                doc_id: &str,
                hash: &automerge::ChangeHash,
            ) -> std::result::Result<bool, String> {
                let doc = self.document(doc_id).map_err(|e| $crate::store::error_chain(&e))?;
                Ok(doc.is_some_and(|mut d| d.get_change_by_hash(hash).is_some()))
            }
            fn save_after(
                &self,
                doc_id: &str,
                heads: &[automerge::ChangeHash],
            ) -> std::result::Result<Vec<u8>, String> {
                let doc = self.document(doc_id).map_err(|e| $crate::store::error_chain(&e))?;
                Ok(doc.map(|mut d| d.save_after(heads)).unwrap_or_default())
            }
            fn outgoing(
                &self,
                doc_id: &str,
                acked: Option<&[automerge::ChangeHash]>,
            ) -> std::result::Result<(Vec<automerge::ChangeHash>, Option<Vec<u8>>), String> {
                let saved = self.saved(doc_id).map_err(|e| $crate::store::error_chain(&e))?;
                $crate::store::outgoing(doc_id, saved.as_deref(), acked)
            }
            fn apply(
                &mut self,
                docs: &[$crate::protocol::DocChanges],
            ) -> std::result::Result<Vec<$crate::protocol::DocHeads>, String> {
                self.merge_remote_blocking(docs)
                    .map(|(_, heads)| heads)
                    .map_err(|e| $crate::store::error_chain(&e))
            }
        }

        impl $crate::protocol::Side for $store {
            fn peer_state(&self, key: &str) -> std::result::Result<$crate::protocol::PeerState, String> {
                self.get_local(key).map(Option::unwrap_or_default).map_err(|e| $crate::store::error_chain(&e))
            }
            fn keep_peer_state(
                &self,
                key: &str,
                state: &$crate::protocol::PeerState,
            ) -> std::result::Result<(), String> {
                let mut w = $crate::store::WriteSet::new();
                w.put_local(key, state).map_err(|e| $crate::store::error_chain(&e))?;
                self.commit_blocking(w).map(|_| ()).map_err(|e| $crate::store::error_chain(&e))
            }
        }
    };
}
#[cfg(feature = "postgres")]
pub(crate) use sync_side;

sync_side!(Store);

/// The heads of document `doc_id` saved as `saved` (none if it is not held): from the saved
/// header, or by loading it if the header cannot be read.
pub(crate) fn saved_heads(doc_id: &str, saved: Option<&[u8]>) -> Result<Vec<ChangeHash>> {
    let Some(saved) = saved else { return Ok(Vec::new()) };
    match doc::saved_heads(saved) {
        Some(heads) => Ok(heads),
        None => Ok(load_or_new(doc_id, Some(saved), &ActorId::random())?.get_heads()),
    }
}

/// [`Docs::outgoing`] of document `doc_id` saved as `saved` (`None`: this side does not hold it),
/// read once. A document the peer holds already is not loaded: its heads are in its header.
#[allow(clippy::type_complexity)]
pub(crate) fn outgoing(
    doc_id: &str,
    saved: Option<&[u8]>,
    acked: Option<&[ChangeHash]>,
) -> std::result::Result<(Vec<ChangeHash>, Option<Vec<u8>>), String> {
    let Some(saved) = saved else {
        let nothing: &[ChangeHash] = &[];
        return Ok((
            Vec::new(),
            (!acked.is_some_and(|a| crate::protocol::covers(a, nothing))).then(Vec::new),
        ));
    };
    if let Some(heads) = doc::saved_heads(saved) {
        if acked.is_some_and(|a| crate::protocol::covers(a, &heads)) {
            return Ok((heads, None));
        }
    }
    let mut doc = load_or_new(doc_id, Some(saved), &ActorId::random()).map_err(|e| error_chain(&e))?;
    let heads = doc.get_heads();
    if acked.is_some_and(|a| crate::protocol::covers(a, &heads)) {
        return Ok((heads, None));
    }
    let known: Vec<ChangeHash> =
        acked.into_iter().flatten().filter(|h| doc.get_change_by_hash(h).is_some()).copied().collect();
    Ok((heads, Some(doc.save_after(&known))))
}

/// An error and its sources, `a: b: c`.
pub(crate) fn error_chain(e: &StoreError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut q) = self.flusher.queue.lock() {
            q.closed = true;
        }
        self.flusher.wake.notify_all();
    }
}

fn flush_loop(db: &sled::Db, flusher: &Flusher) {
    loop {
        let waiters = {
            let Ok(mut queue) = flusher.queue.lock() else {
                return;
            };
            while queue.waiters.is_empty() && !queue.closed {
                queue = match flusher.wake.wait(queue) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
            if queue.waiters.is_empty() && queue.closed {
                return;
            }
            std::mem::take(&mut queue.waiters)
        };
        // Every waiter taken here registered after its write was applied, so this flush covers it.
        flusher.count.fetch_add(1, Ordering::Relaxed);
        let result = durable_flush(db, flusher.log.as_ref()).inspect_err(|e| {
            tracing::error!(error = %e, "Store flush failed: nothing new is on disk.");
        });
        if let Ok(mut failed) = flusher.failed.lock() {
            *failed = result.clone().err();
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// The tree that holds the records, their indexes, the change log and the box-local keys.
pub const RECORDS_TREE: &str = "outpost";
/// Box-local time series live in trees named `series/<name>`.
const SERIES_PREFIX: &str = "series/";
const ID_FLOOR: &str = "m/id-floor";

/// What [`Store::export`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// The change-log position the records' view ends at.
    pub last_seq: u64,
    /// An id above every box-local id handed out before the view was taken.
    pub next_id: u64,
    /// Entries given, across all trees (the keys read again included).
    pub entries: u64,
    /// Keys written while the records were read, read again at the end.
    pub written_during: usize,
}

/// Builds a new store from a backup's entries ([`Store::export`]), in a folder of its own.
pub struct Importer {
    db: sled::Db,
    trees: std::collections::HashMap<String, sled::Tree>,
    entries: u64,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").field("entries", &self.entries).finish_non_exhaustive()
    }
}

impl Importer {
    /// Creates the new database at `path`, which must not hold one yet.
    pub fn create(path: &Path) -> Result<Importer> {
        if path.join("conf").exists() || path.join("db").exists() {
            return Err(StoreError::Backup(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already holds a database", path.display()),
            )));
        }
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        Ok(Importer { db, trees: Default::default(), entries: 0 })
    }

    /// Adds one entry (or, with `None`, removes it); only the records' tree and series trees are
    /// taken.
    pub fn insert(&mut self, tree: &str, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if tree != RECORDS_TREE && !tree.starts_with(SERIES_PREFIX) {
            return Err(StoreError::Backup(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected tree {tree:?} in the backup"),
            )));
        }
        let t = match self.trees.get(tree) {
            Some(t) => t,
            None => {
                let t = self.db.open_tree(tree)?;
                self.trees.entry(tree.to_owned()).or_insert(t)
            }
        };
        match value {
            Some(v) => t.insert(key, v)?,
            None => t.remove(key)?,
        };
        self.entries += 1;
        Ok(())
    }

    /// Makes the new store ready to run, and durable: it writes with an Automerge actor of its own
    /// (the backed-up box may have written more changes under its actor after the backup, which
    /// peers may hold; repeating its sequence numbers with other changes would break those
    /// documents), and its box-local ids start above `next_id` (from [`Exported`]).
    pub fn finish(self, next_id: u64) -> Result<u64> {
        let records = self.db.open_tree(RECORDS_TREE)?;
        records.insert("m/actor", ActorId::random().to_bytes())?;
        records.insert(ID_FLOOR, &next_id.saturating_add(1).to_be_bytes())?;
        self.db.flush().map_err(|e| StoreError::Flush(e.into()))?;
        Ok(self.entries)
    }
}

fn log_key(seq: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(b"l/");
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_from_key(key: &[u8]) -> u64 {
    u64_from(&key[2..])
}

fn u64_from(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DocChanges;
    use crate::record::{Alert, AlertKind, AlertState, Severity};
    use chrono::{TimeZone, Utc};

    /// A backup's view while a writer changes the same documents without pause: applied in order,
    /// the entries are one consistent state — each document's change-log entry and sequence agree,
    /// its projection matches its document, and every write done before the export is there.
    #[test]
    fn an_export_during_writes_is_one_consistent_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("a"), &StoreConfig::default()).expect("open");
        let mut w = WriteSet::new();
        for i in 0..200 {
            w.put(&alert(&format!("a{i}"), AlertState::Open)).expect("put");
        }
        store.commit_blocking(w).expect("commit");
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let state = if n % 2 == 0 { AlertState::Acknowledged } else { AlertState::Open };
                    let mut w = WriteSet::new();
                    w.put(&alert(&format!("a{}", n % 200), state)).expect("put");
                    w.put(&alert(&format!("new{n}"), AlertState::Open)).expect("put");
                    store.apply(w).expect("apply");
                    n += 1;
                }
                n
            })
        };
        thread::sleep(std::time::Duration::from_millis(20));
        let mut importer = Importer::create(&dir.path().join("b")).expect("importer");
        let exported = store
            .export(|tree, k, v| importer.insert(tree, k, v).map_err(std::io::Error::other))
            .expect("export");
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().expect("writer");
        importer.finish(exported.next_id).expect("finish");
        store.close().expect("close");
        assert!(writes > 0 && exported.written_during > 0, "writes went on during the export ({writes})");

        let copy = Store::open(&dir.path().join("b"), &StoreConfig::default()).expect("open copy");
        let alerts: Vec<Alert> = copy.list().expect("list");
        assert!(alerts.len() >= 200, "{}", alerts.len());
        let log = copy.changes_since(0, usize::MAX).expect("log");
        assert_eq!(log.len(), alerts.len(), "one change-log entry per document");
        assert_eq!(log.last().map(|(seq, _)| *seq), Some(exported.last_seq));
        for (seq, doc_id) in &log {
            let at = copy.inner.tree.get(format!("s/{doc_id}")).expect("get").expect("s/ entry");
            assert_eq!(u64_from(&at), *seq, "{doc_id}");
            let doc = copy.document(doc_id).expect("doc").expect("the document");
            let projected: Alert = copy.get(&doc_id["alert/".len()..]).expect("get").expect("projection");
            assert_eq!(
                doc::hydrate(&doc)["state"],
                serde_json::to_value(projected.state).expect("json"),
                "{doc_id}"
            );
        }
        copy.close().expect("close");
    }

    fn alert(id: &str, state: AlertState) -> Alert {
        let at = Utc.with_ymd_and_hms(2021, 9, 1, 8, 0, 0).single().expect("time");
        let mut a = Alert::new(id.into(), AlertKind::Fever, Severity::Warning, "p1", "d1", "38.5".into(), at);
        a.state = state;
        a
    }

    fn open(dir: &Path) -> Store {
        Store::open(dir, &StoreConfig::default()).expect("open")
    }

    /// One round trip between two stores through the protocol's bytes.
    fn exchange(
        a: &mut Store,
        a_peer: &mut crate::protocol::PeerState,
        b: &mut Store,
        b_peer: &mut crate::protocol::PeerState,
    ) {
        use crate::protocol::{build, encode, receive, Limits};
        let urgent = |d: &str| d.starts_with("alert/");
        let request = encode(&build(a, a_peer, "site-a", urgent));
        receive(b, b_peer, "site-a", &request, &Limits::default()).expect("request");
        let response = encode(&build(b, b_peer, "province", urgent));
        receive(a, a_peer, "province", &response, &Limits::default()).expect("response");
    }

    #[test]
    fn two_stores_sync_records_indexes_and_concurrent_edits() {
        let (d1, d2) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (mut site, mut province) = (open(d1.path()), open(d2.path()));
        let (mut site_peer, mut province_peer) = Default::default();
        let mut w = WriteSet::new();
        w.put(&alert("a1", AlertState::Open)).expect("put").put(&alert("a2", AlertState::Open)).expect("put");
        site.commit_blocking(w).expect("commit");
        exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        assert_eq!(province.list::<Alert>().expect("list"), site.list::<Alert>().expect("list"));
        assert_eq!(province.index_scan(Alert::BY_STATE, "open|").expect("scan").len(), 2);

        // The province acknowledges a1 while the site resolves a2, and both edit a1's detail.
        let mut a1 = province.get::<Alert>("a1").expect("get").expect("a1");
        a1.state = AlertState::Acknowledged;
        a1.detail = "province".into();
        province
            .commit_blocking({
                let mut w = WriteSet::new();
                w.put(&a1).expect("put");
                w
            })
            .expect("commit");
        let mut a2 = site.get::<Alert>("a2").expect("get").expect("a2");
        a2.state = AlertState::Resolved;
        let mut a1_site = site.get::<Alert>("a1").expect("get").expect("a1");
        a1_site.detail = "site".into();
        site.commit_blocking({
            let mut w = WriteSet::new();
            w.put(&a2).expect("put").put(&a1_site).expect("put");
            w
        })
        .expect("commit");
        for _ in 0..2 {
            exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        }
        let (at_site, at_province) =
            (site.list::<Alert>().expect("list"), province.list::<Alert>().expect("list"));
        assert_eq!(at_site, at_province, "both sides read the same records");
        assert_eq!(at_site[0].state, AlertState::Acknowledged);
        assert_eq!(at_site[1].state, AlertState::Resolved);
        assert!(["site", "province"].contains(&at_site[0].detail.as_str()), "one value wins");
        for s in [&site, &province] {
            assert_eq!(s.index_scan(Alert::BY_STATE, "acknowledged|").expect("scan").len(), 1);
            assert_eq!(s.index_scan(Alert::BY_STATE, "resolved|").expect("scan").len(), 1);
            assert!(s.index_scan(Alert::BY_STATE, "open|").expect("scan").is_empty());
        }
        let sorted = |s: &Store| {
            let mut h = s.heads("alert/a1").expect("heads");
            h.sort();
            h
        };
        assert_eq!(sorted(&site), sorted(&province));
        assert_eq!(sorted(&site).len(), 2, "two concurrent changes, both kept");
        // A replayed exchange changes nothing.
        let before = province.last_seq();
        exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        assert_eq!(province.last_seq(), before);
    }

    #[test]
    fn an_erased_document_replaces_the_peers_copy_and_the_old_history_stays_out() {
        let (d1, d2) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (mut site, mut province) = (open(d1.path()), open(d2.path()));
        let (mut site_peer, mut province_peer) = Default::default();
        let mut a1 = alert("a1", AlertState::Open);
        a1.detail = "Nguyễn Văn An, 0905123456".into();
        site.commit_blocking({
            let mut w = WriteSet::new();
            w.put(&a1).expect("put");
            w
        })
        .expect("commit");
        exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        let old_heads = province.heads("alert/a1").expect("heads");
        assert_eq!(province.get::<Alert>("a1").expect("get").expect("a1").detail, a1.detail);

        // The site erases (a new history); the province's copy is dropped, not merged with it.
        a1.detail = String::new();
        site.commit_blocking({
            let mut w = WriteSet::new();
            w.replace(&a1).expect("replace");
            w
        })
        .expect("commit");
        for _ in 0..2 {
            exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        }
        assert!(province.sync_refused().expect("refused").is_empty());
        assert_eq!(province.get::<Alert>("a1").expect("get").expect("a1").detail, "");
        let mut doc = province.document("alert/a1").expect("doc").expect("a1");
        for h in &old_heads {
            assert!(doc.get_change_by_hash(h).is_none(), "the old history is gone at the province");
        }
        let (mut a, mut b) =
            (site.heads("alert/a1").expect("heads"), province.heads("alert/a1").expect("heads"));
        a.sort();
        b.sort();
        assert_eq!(a, b);

        // The site's later edits merge as usual; an old-generation copy sent again is not merged back.
        let mut acked = site.get::<Alert>("a1").expect("get").expect("a1");
        acked.state = AlertState::Acknowledged;
        site.commit_blocking({
            let mut w = WriteSet::new();
            w.put(&acked).expect("put");
            w
        })
        .expect("commit");
        exchange(&mut site, &mut site_peer, &mut province, &mut province_peer);
        assert_eq!(province.get::<Alert>("a1").expect("get").expect("a1").state, AlertState::Acknowledged);
        let old = DocChanges { doc_id: "alert/a1".into(), changes: old_doc_bytes(&a1), heads: vec![] };
        province.merge_remote_blocking(&[old]).expect("merge");
        assert_eq!(province.get::<Alert>("a1").expect("get").expect("a1").detail, "");
    }

    /// A complete document of `a` in the old generation (no generation mark), as an old peer has it.
    fn old_doc_bytes(a: &Alert) -> Vec<u8> {
        let mut old = a.clone();
        old.detail = "Nguyễn Văn An, 0905123456".into();
        let mut doc = AutoCommit::new();
        doc::reconcile(&mut doc, &serde_json::to_value(&old).expect("json")).expect("reconcile");
        doc.save()
    }

    #[test]
    fn a_document_that_cannot_be_merged_is_set_aside_and_the_rest_goes_on() {
        let (d1, d2) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (site, province) = (open(d1.path()), open(d2.path()));
        let mut w = WriteSet::new();
        w.put(&alert("a1", AlertState::Open)).expect("put");
        site.commit_blocking(w).expect("commit");
        let good = DocChanges {
            doc_id: "alert/a1".into(),
            changes: site.document("alert/a1").expect("doc").expect("a1").save(),
            heads: site.heads("alert/a1").expect("heads"),
        };
        let unknown_kind = DocChanges { doc_id: "newer-kind/x".into(), ..good.clone() };
        let corrupt =
            DocChanges { doc_id: "alert/a2".into(), changes: b"not automerge".to_vec(), heads: vec![] };
        let (applied, heads) = province.merge_remote_blocking(&[corrupt, good, unknown_kind]).expect("merge");
        assert_eq!(applied.changed.len(), 1, "the good one merged");
        assert!(province.get::<Alert>("a1").expect("get").is_some());
        assert_eq!(heads[0], ("alert/a2".to_owned(), vec![]), "the bad one keeps its (empty) heads");
        let refused = province.sync_refused().expect("refused");
        assert_eq!(refused.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["alert/a2", "newer-kind/x"]);
        assert!(refused[1].1.contains("unknown document kind"), "{refused:?}");
    }

    #[tokio::test]
    async fn write_read_index_and_changelog() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let mut w = WriteSet::new();
        w.put(&alert("a1", AlertState::Open)).expect("put");
        w.put(&alert("a2", AlertState::Open)).expect("put");
        store.commit(w).await.expect("commit");
        assert_eq!(store.index_scan(Alert::BY_STATE, "open|").expect("scan").len(), 2);
        assert_eq!(store.changes_since(0, 10).expect("log").len(), 2);

        let mut w = WriteSet::new();
        w.put(&alert("a1", AlertState::Acknowledged)).expect("put");
        let applied = store.commit(w).await.expect("commit");
        assert_eq!(applied.changed, vec![("alert/a1".to_owned(), 3)]);
        assert_eq!(store.index_scan(Alert::BY_STATE, "open|").expect("scan").len(), 1);
        assert_eq!(store.index_scan(Alert::BY_STATE, "acknowledged|").expect("scan").len(), 1);
        let log = store.changes_since(0, 10).expect("log");
        assert_eq!(log, vec![(2, "alert/a2".to_owned()), (3, "alert/a1".to_owned())]);
        assert_eq!(store.get::<Alert>("a1").expect("get").expect("some").state, AlertState::Acknowledged);

        // An unchanged record writes nothing and takes no sequence.
        let mut w = WriteSet::new();
        w.put(&alert("a1", AlertState::Acknowledged)).expect("put");
        assert!(store.commit(w).await.expect("commit").changed.is_empty());
        assert_eq!(store.last_seq(), 3);
    }

    #[tokio::test]
    async fn replace_drops_the_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let mut a = alert("a1", AlertState::Open);
        a.detail = "secret".into();
        let mut w = WriteSet::new();
        w.put(&a).expect("put");
        store.commit(w).await.expect("commit");
        a.detail = "erased".into();
        let mut w = WriteSet::new();
        w.replace(&a).expect("replace");
        store.commit(w).await.expect("commit");
        let mut doc = store.document("alert/a1").expect("doc").expect("some");
        assert_eq!(doc::hydrate(&doc)["detail"], "erased");
        assert_eq!(doc.get_changes(&[]).len(), 1, "one change: no earlier value survives");
        let saved = doc.save();
        assert!(!saved.windows(6).any(|w| w == b"secret"), "not in the saved bytes either");
    }

    #[tokio::test]
    async fn survives_reopen_and_keeps_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path());
            let mut w = WriteSet::new();
            w.put(&alert("a1", AlertState::Open)).expect("put");
            w.put_local("outbox/1", &"hello").expect("local");
            store.commit(w).await.expect("commit");
            store.close().expect("close");
        }
        let store = open(dir.path());
        assert_eq!(store.last_seq(), 1);
        assert!(store.get::<Alert>("a1").expect("get").is_some());
        assert_eq!(store.get_local::<String>("outbox/1").expect("local").as_deref(), Some("hello"));
        let doc = store.document("alert/a1").expect("doc").expect("some");
        assert_eq!(doc::hydrate(&doc)["state"], "open");
    }

    /// The flusher syncs sled's own log file after each flush (a power cut is not a killed
    /// process: `images/test-image` cuts the power of a booted image). sled keeps its log in `db`.
    #[test]
    fn a_flush_syncs_sleds_log_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let log = store.inner.flusher.log.as_ref().expect("sled's log file is open for fdatasync");
        let mut w = WriteSet::new();
        w.put_local("k", &"v").expect("put");
        store.commit_blocking(w).expect("commit");
        let on_disk = std::fs::metadata(dir.path().join("db")).expect("db").len();
        assert_eq!(log.metadata().expect("log").len(), on_disk, "the file synced is sled's log");
        assert!(on_disk > 0);
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        // Writers that arrive while a flush is being prepared wait for the next one together. Hold the
        // flusher's queue so all 64 arrive at once, as they would behind a slow SD card.
        let queue = store.inner.flusher.queue.lock().expect("queue");
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                thread::spawn(move || {
                    let mut w = WriteSet::new();
                    w.put(&alert(&format!("a{i}"), AlertState::Open)).expect("put");
                    store.commit_blocking(w).expect("commit");
                })
            })
            .collect();
        thread::sleep(std::time::Duration::from_millis(200));
        drop(queue);
        for w in writers {
            w.join().expect("writer");
        }
        assert_eq!(store.count::<Alert>(), 64);
        assert_eq!(store.last_seq(), 64);
        // How many depends on how fast the disk syncs; that some writers shared a flush is the point.
        assert!(store.flushes() < 64, "64 concurrent commits took {} flushes", store.flushes());
    }
}
