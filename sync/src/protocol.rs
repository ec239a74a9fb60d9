//! The sync batch protocol [M14], sans-IO: bytes in, bytes out, the peer's state passed in.
//!
//! One exchange is one round trip. The side that connects sends a [`Batch`]; the other applies it,
//! makes it durable, and answers with a batch of its own. A batch carries:
//! - for each document the peer may lack, `save_after(heads the peer acknowledged)` — only the
//!   changes the peer has not confirmed, identified by hash, so a replay is harmless;
//! - alerts before every other document, then the rest in change-log order, bounded in bytes (the
//!   first document always goes, however large, so a batch always makes progress);
//! - acknowledgements: for each document received in the peer's last batch, the heads this side
//!   holds now that it is durable.
//!
//! The sender records what it has sent ([`PeerState::in_flight`]); the peer's acknowledgement moves
//! the acknowledged heads and, when it answers the batch in flight, the resumable change-log cursor.
//! Nothing is recorded as acknowledged before the peer said it is durable; a lost, duplicated,
//! reordered or cut message only makes the next batch larger.
//!
//! Wire format, version 3 (all integers big-endian; version 1 had no sender's clock, version 2 no
//! incarnation):
//! `"OPSB"`, version `u16`, body length compressed `u32`, body length decoded `u32`, CRC-32 of the
//! compressed body `u32`, then the body deflated. Lengths and checksum are checked against [`Limits`]
//! before anything is decompressed, and the
//! decoded body is read with bounds on every count and length. The body: sender site (string),
//! the sender's clock when it built the batch (`i64`, milliseconds since 1970, UTC; 0: unknown),
//! the sender's incarnation (string: its store's Automerge actor, new when a store is restored from
//! a backup; a side that sees its peer's change starts over with it, see [`receive`]),
//! batch id `u64`, acknowledged batch id `u64` (0: none), change-log position covered `u64`,
//! document count `u32` and per document: id (string), changes (bytes), heads (hashes); then
//! acknowledgement count `u32` and per acknowledgement: id (string), heads (hashes). A string is a
//! `u16` length and UTF-8; bytes a `u32` length; hashes a `u16` count of 32-byte hashes.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
};

use automerge::ChangeHash;

/// The protocol version this build speaks.
pub const VERSION: u16 = 3;
/// The oldest version this build still reads (and answers in, so peers can be upgraded one by one).
pub const OLDEST_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"OPSB";
const HEADER: usize = 4 + 2 + 4 + 4 + 4;

/// A document and its heads.
pub type DocHeads = (String, Vec<ChangeHash>);

/// Bounds enforced before anything is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message on the wire.
    pub max_wire_bytes: usize,
    /// Largest decoded body (deflate can expand a lot: this bounds what a peer can make us allocate).
    pub max_body_bytes: usize,
    /// Most documents (and acknowledgements) in one batch.
    pub max_docs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_wire_bytes: 8 << 20, max_body_bytes: 64 << 20, max_docs: 20_000 }
    }
}

/// One document's changes in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocChanges {
    pub doc_id: String,
    /// Automerge's `save_after` of the heads the receiver acknowledged.
    pub changes: Vec<u8>,
    /// The sender's heads of the document after these changes.
    pub heads: Vec<ChangeHash>,
}

/// One direction of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The sending site (`province` for the provincial server).
    pub site: String,
    /// The sender's clock when it built the batch, in milliseconds since 1970 (0: not given). Only
    /// for the peer to tell how far apart the two clocks are: nothing here is ordered by time.
    pub sent_at_ms: i64,
    /// The wire version it came in, or goes out in (0: this build's, [`VERSION`]).
    pub version: u16,
    /// The sender's incarnation (empty: not given, version 2 and older).
    pub incarnation: String,
    /// Unique per sender and peer, increasing; never 0.
    pub batch_id: u64,
    /// The peer's batch these acknowledgements answer (0: none).
    pub acks_batch: u64,
    /// The sender's change-log position this batch covers, if every document up to it is included.
    pub upto: u64,
    pub docs: Vec<DocChanges>,
    /// Heads this side holds, durable, of the documents it received in the peer's batch `acks_batch`.
    pub acks: Vec<DocHeads>,
}

/// Why a message was refused. Nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("not a sync batch")]
    NotABatch,
    #[error("sync protocol version {0}, this side speaks {VERSION}")]
    Version(u16),
    #[error("the batch is too large ({0} bytes)")]
    TooLarge(usize),
    #[error("the batch is truncated or corrupt: {0}")]
    Corrupt(&'static str),
}

/// The state one side keeps about one peer (persisted by the caller, box-local).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerState {
    /// Per document, the heads the peer said it holds durably.
    pub acked: BTreeMap<String, Vec<ChangeHash>>,
    /// Everything in this side's change log up to here has been acknowledged.
    pub cursor: u64,
    /// The last batch id used towards the peer.
    pub last_batch: u64,
    /// The batch sent and not yet acknowledged: its id, the position it covers and the heads sent.
    pub in_flight: Option<InFlight>,
    /// The peer's last batch this side applied, to acknowledge in the next message.
    pub to_ack: Option<(u64, Vec<DocHeads>)>,
    /// Byte budget for the next batch; halved when the peer answers "too large".
    pub budget: Option<usize>,
    /// The peer's incarnation, as its last batch gave it.
    #[serde(default)]
    pub peer_incarnation: Option<String>,
    /// The wire version the peer last spoke: a side that calls speaks it too, so an older peer is
    /// still reached (it answers in the version it is called in).
    #[serde(default)]
    pub peer_version: Option<u16>,
}

/// A batch sent and not yet acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InFlight {
    pub batch_id: u64,
    pub upto: u64,
    pub sent: Vec<DocHeads>,
}

/// What a side can do with its documents; the store implements it, and tests use memory.
pub trait Docs {
    /// Change-log entries after `after`: `(seq, doc id)`, oldest first, at most `limit`.
    fn changed_since(&self, after: u64, limit: usize) -> Vec<(u64, String)>;
    /// The document's current heads (empty if it does not exist). An error (the disk failed) stops
    /// the batch before this document, so the cursor never passes what could not be read.
    fn heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>, String>;
    /// Whether this side holds the change `hash` of `doc_id`.
    fn has_change(&self, doc_id: &str, hash: &ChangeHash) -> Result<bool, String>;
    /// Every change of `doc_id` that `heads` do not already cover.
    fn save_after(&self, doc_id: &str, heads: &[ChangeHash]) -> Result<Vec<u8>, String>;
    /// The document's heads and, unless the peer's `acked` heads cover them, the changes of those
    /// heads it holds do not (`save_after` of the acknowledged heads this side knows). A store
    /// overrides it to read the document once.
    #[allow(clippy::type_complexity)]
    fn outgoing(
        &self,
        doc_id: &str,
        acked: Option<&[ChangeHash]>,
    ) -> Result<(Vec<ChangeHash>, Option<Vec<u8>>), String> {
        let heads = self.heads(doc_id)?;
        if acked.is_some_and(|a| covers(a, &heads)) {
            return Ok((heads, None));
        }
        let mut known = Vec::new();
        for h in acked.into_iter().flatten() {
            if self.has_change(doc_id, h)? {
                known.push(*h);
            }
        }
        let changes = self.save_after(doc_id, &known)?;
        Ok((heads, Some(changes)))
    }
    /// This side's incarnation: an id that changes when its documents are restored from a backup
    /// (the store's Automerge actor). Empty: none.
    fn incarnation(&self) -> String {
        String::new()
    }
    /// Merges the changes of every document into this side, durably; returns each document's heads
    /// afterwards. A document that cannot be merged is set aside and keeps its heads (so the peer
    /// sends it again); an error means nothing at all was applied.
    fn apply(&mut self, docs: &[DocChanges]) -> Result<Vec<DocHeads>, String>;
}

/// A side that keeps the state of its peer with its documents, durably (the box's store, a site's
/// documents at the province), under `key`.
pub trait Side: Docs + Clone + Send + 'static {
    /// The state kept under `key` (a new one if none).
    fn peer_state(&self, key: &str) -> Result<PeerState, String>;
    /// Keeps `state` under `key`, durably: also everything applied before it.
    fn keep_peer_state(&self, key: &str, state: &PeerState) -> Result<(), String>;
}

/// Why a received message changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the batch comes from {got}, not {expected}")]
    WrongSite { expected: String, got: String },
    #[error("the batch's changes could not be applied: {0}")]
    Apply(String),
}

/// Takes a message from the peer `expected_site`: decodes it within `limits`, applies its documents
/// durably, then takes its acknowledgements into `state`. On error nothing changed.
pub fn receive(
    docs: &mut impl Docs,
    state: &mut PeerState,
    expected_site: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Batch, ReceiveError> {
    let batch = decode(bytes, limits)?;
    if batch.site != expected_site {
        return Err(ReceiveError::WrongSite { expected: expected_site.to_owned(), got: batch.site });
    }
    let heads = docs.apply(&batch.docs).map_err(ReceiveError::Apply)?;
    state.peer_version = Some(batch.version);
    if !batch.incarnation.is_empty() && state.peer_incarnation.as_deref() != Some(batch.incarnation.as_str())
    {
        // The peer's documents were restored from a backup, or this is the first incarnation it
        // gives after acknowledging things (it spoke an older version, and may have been restored
        // since): what it acknowledged before may be gone. Start over with it: everything is
        // offered again, and only what it lacks is taken (changes are identified by hash). Batch
        // ids go on increasing.
        if state.peer_incarnation.is_some() || !state.acked.is_empty() {
            tracing::warn!(
                peer = %batch.site,
                "The peer's store is another incarnation (restored from a backup?): everything is offered to it again."
            );
            *state = PeerState {
                last_batch: state.last_batch,
                peer_version: state.peer_version,
                ..PeerState::default()
            };
        }
        state.peer_incarnation = Some(batch.incarnation.clone());
    }
    take_acks(state, &batch);
    applied(state, &batch, heads);
    Ok(batch)
}

/// The default byte budget of a batch's changes.
pub const DEFAULT_BUDGET: usize = 4 << 20;
/// The smallest budget halving goes down to.
pub const MIN_BUDGET: usize = 16 << 10;

/// Builds the next batch towards a peer from `docs`, recording it as in flight in `state`.
/// `is_urgent` picks the documents that go first (alerts).
pub fn build(docs: &impl Docs, state: &mut PeerState, site: &str, is_urgent: impl Fn(&str) -> bool) -> Batch {
    let budget = state.budget.unwrap_or(DEFAULT_BUDGET);
    let pending = docs.changed_since(state.cursor, usize::MAX);
    let mut batch = Batch { site: site.to_owned(), incarnation: docs.incarnation(), ..Batch::default() };
    let mut size = 0usize;
    let mut included = std::collections::HashSet::new();
    let mut full = false;
    // Whether the document is in the batch or needs not be; `false` (full, or unreadable) ends it.
    let mut add = |doc_id: &str, batch: &mut Batch| -> Result<bool, String> {
        let (heads, changes) = docs.outgoing(doc_id, state.acked.get(doc_id).map(Vec::as_slice))?;
        let Some(changes) = changes else { return Ok(true) };
        if !batch.docs.is_empty() && size + changes.len() > budget {
            return Ok(false);
        }
        size += changes.len() + doc_id.len() + 32 * heads.len();
        batch.docs.push(DocChanges { doc_id: doc_id.to_owned(), changes, heads });
        Ok(true)
    };
    for (_, doc_id) in pending.iter().filter(|(_, d)| is_urgent(d)) {
        if !add(doc_id, &mut batch).unwrap_or(false) {
            full = true;
            break;
        }
        included.insert(doc_id.clone());
    }
    let mut upto = state.cursor;
    if !full {
        for (seq, doc_id) in &pending {
            if !included.contains(doc_id) && !add(doc_id, &mut batch).unwrap_or(false) {
                break;
            }
            upto = *seq;
        }
    }
    state.last_batch += 1;
    batch.batch_id = state.last_batch;
    batch.upto = upto;
    state.in_flight = Some(InFlight {
        batch_id: batch.batch_id,
        upto,
        sent: batch.docs.iter().map(|d| (d.doc_id.clone(), d.heads.clone())).collect(),
    });
    if let Some((id, acks)) = state.to_ack.take() {
        batch.acks_batch = id;
        batch.acks = acks;
        // Kept until a later batch replaces it: acknowledging twice is harmless.
        state.to_ack = Some((id, batch.acks.clone()));
    }
    batch
}

/// Whether `acked` heads cover `heads` (the peer holds everything this side has).
pub(crate) fn covers(acked: &[ChangeHash], heads: &[ChangeHash]) -> bool {
    heads.iter().all(|h| acked.contains(h))
}

/// Takes the peer's acknowledgements in `batch` into `state` (call after `batch` was decoded,
/// whether or not its documents applied).
pub fn take_acks(state: &mut PeerState, batch: &Batch) {
    if batch.acks_batch == 0 || batch.acks_batch > state.last_batch {
        return;
    }
    for (doc_id, heads) in &batch.acks {
        state.acked.insert(doc_id.clone(), heads.clone());
    }
    let Some(flight) = state.in_flight.take_if(|f| f.batch_id == batch.acks_batch) else { return };
    state.budget = None;
    // The cursor moves only if the peer holds everything sent: changes it could not apply (their
    // dependencies were missing) go again, from the heads it reported.
    let holds = |doc_id: &str, sent: &[ChangeHash]| {
        batch.acks.iter().any(|(d, heads)| d == doc_id && covers(heads, sent))
    };
    if flight.sent.iter().all(|(doc_id, sent)| holds(doc_id, sent)) {
        state.cursor = state.cursor.max(flight.upto);
    }
}

/// Records that this side applied `batch` durably and now holds `heads` of its documents: they
/// are acknowledged in the next message to the peer.
pub fn applied(state: &mut PeerState, batch: &Batch, heads: Vec<DocHeads>) {
    // The peer holds what it sent (its heads cover its whole document): no need to send it back.
    for d in &batch.docs {
        state.acked.insert(d.doc_id.clone(), d.heads.clone());
    }
    state.to_ack = Some((batch.batch_id, heads));
}

/// The peer answered "too large": the next batch gets half the budget (down to [`MIN_BUDGET`]).
pub fn too_large(state: &mut PeerState) {
    let budget = state.budget.unwrap_or(DEFAULT_BUDGET);
    state.budget = Some((budget / 2).max(MIN_BUDGET));
    state.in_flight = None;
}

// ----- wire format -----

/// Encodes `batch` for the wire.
pub fn encode(batch: &Batch) -> Vec<u8> {
    let mut body = Vec::new();
    let version = if batch.version == 0 { VERSION } else { batch.version.clamp(OLDEST_VERSION, VERSION) };
    put_str(&mut body, &batch.site);
    if version >= 2 {
        body.extend_from_slice(&batch.sent_at_ms.to_be_bytes());
    }
    if version >= 3 {
        put_str(&mut body, &batch.incarnation);
    }
    body.extend_from_slice(&batch.batch_id.to_be_bytes());
    body.extend_from_slice(&batch.acks_batch.to_be_bytes());
    body.extend_from_slice(&batch.upto.to_be_bytes());
    body.extend_from_slice(&(batch.docs.len() as u32).to_be_bytes());
    for d in &batch.docs {
        put_str(&mut body, &d.doc_id);
        body.extend_from_slice(&(d.changes.len() as u32).to_be_bytes());
        body.extend_from_slice(&d.changes);
        put_hashes(&mut body, &d.heads);
    }
    body.extend_from_slice(&(batch.acks.len() as u32).to_be_bytes());
    for (doc_id, heads) in &batch.acks {
        put_str(&mut body, doc_id);
        put_hashes(&mut body, heads);
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&body);
    let compressed = z.finish().unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + compressed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&compressed).to_be_bytes());
    out.extend_from_slice(&compressed);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_hashes(out: &mut Vec<u8>, hashes: &[ChangeHash]) {
    out.extend_from_slice(&(hashes.len() as u16).to_be_bytes());
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
}

/// Checks the header of `bytes` against `limits` without decoding anything.
pub fn check_header(bytes: &[u8], limits: &Limits) -> Result<(usize, usize), ProtocolError> {
    if bytes.len() > limits.max_wire_bytes {
        return Err(ProtocolError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(ProtocolError::NotABatch);
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(ProtocolError::Version(version));
    }
    let compressed = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    let decoded = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
    if decoded > limits.max_body_bytes {
        return Err(ProtocolError::TooLarge(decoded));
    }
    if bytes.len() - HEADER != compressed {
        return Err(ProtocolError::Corrupt("the length does not match (cut short?)"));
    }
    let crc = u32::from_be_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    if crc32fast::hash(&bytes[HEADER..]) != crc {
        return Err(ProtocolError::Corrupt("the checksum does not match"));
    }
    Ok((compressed, decoded))
}

/// Decodes a batch, enforcing `limits` before decompressing and on every count.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Batch, ProtocolError> {
    let (_, decoded) = check_header(bytes, limits)?;
    let mut body = Vec::with_capacity(decoded);
    flate2::read::DeflateDecoder::new(&bytes[HEADER..])
        .take(decoded as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| ProtocolError::Corrupt("the body does not decompress"))?;
    if body.len() != decoded {
        return Err(ProtocolError::Corrupt("the body length does not match"));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    let mut r = Reader { buf: &body, at: 0 };
    let site = r.string()?;
    let sent_at_ms = if version >= 2 { r.u64()? as i64 } else { 0 };
    let incarnation = if version >= 3 { r.string()? } else { String::new() };
    let mut batch = Batch {
        site,
        sent_at_ms,
        version,
        incarnation,
        batch_id: r.u64()?,
        acks_batch: r.u64()?,
        upto: r.u64()?,
        ..Batch::default()
    };
    let n = r.count(limits.max_docs)?;
    for _ in 0..n {
        let doc_id = r.string()?;
        let len = r.u32()? as usize;
        let changes = r.take(len)?.to_vec();
        let heads = r.hashes()?;
        batch.docs.push(DocChanges { doc_id, changes, heads });
    }
    let n = r.count(limits.max_docs)?;
    for _ in 0..n {
        let doc_id = r.string()?;
        batch.acks.push((doc_id, r.hashes()?));
    }
    if r.at != body.len() {
        return Err(ProtocolError::Corrupt("trailing bytes"));
    }
    if batch.batch_id == 0 {
        return Err(ProtocolError::Corrupt("batch id 0"));
    }
    Ok(batch)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(ProtocolError::Corrupt("cut short"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn count(&mut self, max: usize) -> Result<usize, ProtocolError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(ProtocolError::TooLarge(n));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| ProtocolError::Corrupt("a name is not UTF-8"))
    }
    fn hashes(&mut self) -> Result<Vec<ChangeHash>, ProtocolError> {
        let n = self.u16()? as usize;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let mut h = [0u8; 32];
            h.copy_from_slice(self.take(32)?);
            out.push(ChangeHash(h));
        }
        Ok(out)
    }
}
