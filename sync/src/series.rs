//! A bounded, box-local time-series (raw BLE sightings, GPS fixes, photos): samples keyed by time in
//! milliseconds (big-endian, so keys sort by time) and a name, in their own sled tree. Never
//! replicated and never flushed on write: samples are not acknowledged to anyone, and the store's
//! periodic flush keeps them within a second. [`Series::prune_before`] keeps it bounded.
//!
//! A sample written with [`Series::insert`] is one entry. A stream as dense as the bands' (thousands
//! a minute) is written with [`Series::append_block`] instead: many samples as one deflated entry,
//! so the SD card sees one write of a few hundred kilobytes every few minutes instead of a tree
//! rewritten every second (sled rewrites a leaf and its log for every small insert; see
//! `docs/ble.md`, "The SD card"). A block's key is the time of its last sample, then a NUL (which no
//! name starts with) and the time of its first: pruning by time removes a block once all of it is
//! old, and a range read looks at most [`BLOCK_SPAN_MS`] past its end.

use std::io::{Read, Write};

use crate::error::{guarded, Result, StoreError, WriteGuard};

/// The longest time one block covers; longer appends are split.
pub const BLOCK_SPAN_MS: i64 = 3_600_000;
/// The most a block decodes to (a corrupt or hostile length is refused before allocating).
const MAX_BLOCK_BYTES: u64 = 64 * 1024 * 1024;

/// See the module's documentation.
#[derive(Clone)]
pub struct Series {
    tree: sled::Tree,
    guard: Option<WriteGuard>,
}

/// One sample of a [`Series`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at_ms: i64,
    pub name: String,
    pub value: Vec<u8>,
}

fn series_key(at_ms: i64, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + name.len());
    key.extend_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

fn block_key(first_ms: i64, last_ms: i64, count: usize) -> Vec<u8> {
    let mut key = series_key(last_ms, "");
    key.push(0);
    key.extend_from_slice(&(first_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&(count as u32).to_be_bytes());
    key
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Samples (sorted by time) as one deflated block: for each, the milliseconds since the previous
/// one, its name and its value, each length-prefixed.
fn encode_block(samples: &[Sample]) -> Vec<u8> {
    let mut body = Vec::with_capacity(samples.len() * 64);
    let mut previous = samples.first().map_or(0, |s| s.at_ms);
    put_varint(&mut body, previous.max(0) as u64);
    for s in samples {
        put_varint(&mut body, (s.at_ms - previous).max(0) as u64);
        previous = s.at_ms;
        put_varint(&mut body, s.name.len() as u64);
        body.extend_from_slice(s.name.as_bytes());
        put_varint(&mut body, s.value.len() as u64);
        body.extend_from_slice(&s.value);
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&body);
    z.finish().unwrap_or_default()
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            n |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(len)?;
        let b = self.buf.get(self.at..end)?;
        self.at = end;
        Some(b)
    }
}

fn decode_block(key: &[u8], bytes: &[u8]) -> Result<Vec<Sample>> {
    let ends_ms = key.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, i64::from_be_bytes);
    let corrupt = || StoreError::CorruptBlock(ends_ms);
    let mut body = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(MAX_BLOCK_BYTES)
        .read_to_end(&mut body)
        .map_err(|_| corrupt())?;
    let mut c = Cursor { buf: &body, at: 0 };
    let mut at_ms = c.varint().ok_or_else(corrupt)? as i64;
    let mut out = Vec::new();
    while c.at < body.len() {
        at_ms = at_ms.saturating_add(c.varint().ok_or_else(corrupt)? as i64);
        let name = String::from_utf8_lossy(c.bytes().ok_or_else(corrupt)?).into_owned();
        let value = c.bytes().ok_or_else(corrupt)?.to_vec();
        out.push(Sample { at_ms, name, value });
    }
    Ok(out)
}

impl Series {
    pub(crate) fn new(tree: sled::Tree, guard: Option<WriteGuard>) -> Series {
        Series { tree, guard }
    }

    /// Adds samples in one atomic batch, one entry each.
    pub fn insert(&self, samples: &[Sample]) -> Result<()> {
        guarded(self.guard.as_ref(), true)?;
        let mut batch = sled::Batch::default();
        for s in samples {
            batch.insert(series_key(s.at_ms, &s.name), s.value.as_slice());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Adds samples as deflated blocks (one per [`BLOCK_SPAN_MS`] they cover), in one atomic batch.
    /// Returns the bytes the blocks take.
    pub fn append_block(&self, samples: &[Sample]) -> Result<usize> {
        guarded(self.guard.as_ref(), true)?;
        let mut sorted: Vec<&Sample> = samples.iter().collect();
        sorted.sort_by_key(|s| s.at_ms);
        let mut batch = sled::Batch::default();
        let mut written = 0;
        let mut rest = sorted.as_slice();
        while let Some(first) = rest.first() {
            let n = rest.partition_point(|s| s.at_ms - first.at_ms < BLOCK_SPAN_MS);
            let (chunk, tail) = rest.split_at(n);
            let owned: Vec<Sample> = chunk.iter().map(|s| (*s).clone()).collect();
            let block = encode_block(&owned);
            written += block.len();
            let last = chunk.last().map_or(first.at_ms, |s| s.at_ms);
            batch.insert(block_key(first.at_ms, last, chunk.len()), block);
            rest = tail;
        }
        self.tree.apply_batch(batch)?;
        Ok(written)
    }

    /// Samples with `from_ms <= at < to_ms`, oldest first, at most `limit`; only those named `name`
    /// when given. Blocks in the range are read whole.
    pub fn range(&self, from_ms: i64, to_ms: i64, name: Option<&str>, limit: usize) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        let mut blocks = false;
        let wanted = |s: &Sample| (from_ms..to_ms).contains(&s.at_ms) && name.is_none_or(|n| n == s.name);
        let end = series_key(to_ms.saturating_add(BLOCK_SPAN_MS), "");
        for entry in self.tree.range(series_key(from_ms, "")..end) {
            let (k, v) = entry?;
            if k.len() < 8 {
                continue;
            }
            if k.get(8) == Some(&0) {
                blocks = true;
                out.extend(decode_block(&k, &v)?.into_iter().filter(|s| wanted(s)));
                continue;
            }
            let mut ms = [0u8; 8];
            ms.copy_from_slice(&k[..8]);
            let sample = Sample {
                at_ms: u64::from_be_bytes(ms) as i64,
                name: String::from_utf8_lossy(&k[8..]).into_owned(),
                value: Vec::new(),
            };
            if !wanted(&sample) {
                continue;
            }
            out.push(Sample { value: v.to_vec(), ..sample });
            if !blocks && out.len() >= limit {
                break;
            }
        }
        out.sort_by_key(|s| s.at_ms);
        out.truncate(limit);
        Ok(out)
    }

    /// Removes every sample older than `before_ms` (a block once all of it is); returns how many
    /// entries.
    pub fn prune_before(&self, before_ms: i64) -> Result<usize> {
        guarded(self.guard.as_ref(), false)?;
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        for entry in self.tree.range(..series_key(before_ms, "")) {
            batch.remove(entry?.0);
            removed += 1;
            if removed % 10_000 == 0 {
                self.tree.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(removed)
    }

    /// How many entries it holds, a block counting once (counts them: for tests and the health
    /// page, not hot paths).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreConfig};

    fn samples(n: i64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample { at_ms: 1_000 * i, name: format!("B{}", i % 2), value: vec![i as u8] })
            .collect()
    }

    #[test]
    fn series_is_ordered_filtered_and_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &StoreConfig::default()).expect("open");
        let series = store.series("sightings").expect("series");
        series.insert(&samples(100)).expect("insert");
        let b1 = series.range(10_000, 20_000, Some("B1"), usize::MAX).expect("range");
        assert_eq!(b1.iter().map(|s| s.value[0]).collect::<Vec<_>>(), vec![11, 13, 15, 17, 19]);
        assert_eq!(series.range(0, i64::MAX, None, 3).expect("range").len(), 3);
        assert_eq!(series.prune_before(50_000).expect("prune"), 50);
        assert_eq!(series.len(), 50);
        assert_eq!(series.range(0, i64::MAX, None, 1).expect("range")[0].at_ms, 50_000);
        // A series is its own tree: nothing of it reaches the change log.
        assert_eq!(store.last_seq(), 0);
    }

    /// Blocks read back as the samples they hold, mixed with single entries in time order, and
    /// go when all of them is older than the cut.
    #[test]
    fn blocks_read_back_filtered_ordered_and_pruned_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &StoreConfig::default()).expect("open");
        let series = store.series("sightings").expect("series");
        let all = samples(100);
        // Shuffled: a block sorts what it is given.
        let (odd, even): (Vec<Sample>, Vec<Sample>) =
            all[..60].iter().cloned().partition(|s| s.at_ms % 2_000 != 0);
        series.append_block(&[odd, even].concat()).expect("block");
        series.insert(&all[60..70]).expect("single entries");
        series.append_block(&all[70..]).expect("block");
        assert_eq!(series.len(), 12);
        assert_eq!(series.range(0, i64::MAX, None, usize::MAX).expect("range"), all);
        let b1 = series.range(55_000, 75_000, Some("B1"), usize::MAX).expect("range");
        assert_eq!(
            b1.iter().map(|s| s.value[0]).collect::<Vec<_>>(),
            vec![55, 57, 59, 61, 63, 65, 67, 69, 71, 73]
        );
        assert_eq!(series.range(0, i64::MAX, None, 2).expect("range"), all[..2].to_vec());
        // The first block ends at 59 s: a cut at 59 s keeps it, at 60 s removes it.
        series.prune_before(59_000).expect("prune");
        assert_eq!(series.range(0, i64::MAX, None, 1).expect("range")[0].at_ms, 0);
        series.prune_before(60_000).expect("prune");
        assert_eq!(series.range(0, i64::MAX, None, 1).expect("range")[0].at_ms, 60_000);
    }

    /// A block compresses what repeats (band names, scanners, JSON keys) and splits past its span.
    #[test]
    fn blocks_are_compact_and_span_at_most_an_hour() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &StoreConfig::default()).expect("open");
        let series = store.series("sightings").expect("series");
        let value = br#"{"at":"2026-11-21T07:00:00Z","scanner":"phong-a12","rssi":-61,"battery":95}"#;
        let many: Vec<Sample> = (0..4_000)
            .map(|i| Sample {
                at_ms: 15 * i,
                name: format!("C3:00:00:00:{:02X}:{:02X}", i / 256 % 8, i % 256),
                value: value.to_vec(),
            })
            .collect();
        let raw: usize = many.iter().map(|s| 8 + s.name.len() + s.value.len()).sum();
        let bytes = series.append_block(&many).expect("block");
        assert!(bytes * 10 < raw, "{bytes} bytes for {raw} raw");
        let long: Vec<Sample> =
            (0..5).map(|h| Sample { at_ms: h * 1_800_000, name: "B".into(), value: vec![] }).collect();
        series.prune_before(i64::MAX).expect("prune");
        series.append_block(&long).expect("block");
        assert_eq!(series.len(), 3, "0–1 h, 1–2 h, 2 h");
        assert_eq!(series.range(0, i64::MAX, Some("B"), usize::MAX).expect("range"), long);
    }
}
