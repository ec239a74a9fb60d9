//! A record's JSON value ↔ an Automerge document.
//!
//! [`reconcile`] writes only the fields that differ, so a change records exactly what an edit touched and
//! two sites editing different fields of one record both keep their edit after a merge. Objects become
//! Automerge maps (merged key by key); arrays become Automerge lists that an edit replaces whole (a list
//! is one value to staff: a symptom set, a status history); strings are scalar strings, not text objects,
//! so a concurrent edit of one field resolves to one deterministic winner with the other kept in the
//! document's history. [`hydrate`] reads a document back as JSON.

use automerge::{transaction::Transactable, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde_json::{Map, Value as Json};

/// Reading or writing a document failed.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("automerge rejected the operation")]
    Automerge(#[source] Box<automerge::AutomergeError>),
    #[error("a record must be a JSON object at its root")]
    NotAnObject,
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> DocError {
        DocError::Automerge(Box::new(e))
    }
}

/// Brings the root map of `doc` to `value`, writing only what differs. Returns whether anything changed.
pub fn reconcile(doc: &mut AutoCommit, value: &Json) -> Result<bool, DocError> {
    let Json::Object(map) = value else {
        return Err(DocError::NotAnObject);
    };
    reconcile_map(doc, &ROOT, map)
}

/// Root keys that start with `_` belong to the store (the document's generation), not to the record:
/// a record's value never removes them and reading a record never shows them.
pub const GENERATION: &str = "_generation";

fn reserved(obj: &ObjId, key: &str) -> bool {
    *obj == ROOT && key.starts_with('_')
}

fn reconcile_map(doc: &mut AutoCommit, obj: &ObjId, map: &Map<String, Json>) -> Result<bool, DocError> {
    let mut changed = false;
    let stale: Vec<String> = doc.keys(obj).filter(|k| !map.contains_key(k) && !reserved(obj, k)).collect();
    for key in stale {
        doc.delete(obj, key.as_str())?;
        changed = true;
    }
    for (key, value) in map {
        let current = doc.get(obj, key.as_str())?.map(|(v, id)| (v.into_owned(), id));
        changed |= match (value, current) {
            (Json::Object(inner), Some((Value::Object(ObjType::Map), id))) => reconcile_map(doc, &id, inner)?,
            (Json::Object(inner), _) => {
                let id = doc.put_object(obj, key.as_str(), ObjType::Map)?;
                reconcile_map(doc, &id, inner)?;
                true
            }
            (Json::Array(items), Some((Value::Object(ObjType::List), id))) => {
                if hydrate_obj(doc, &id) == Json::Array(items.clone()) {
                    false
                } else {
                    let id = doc.put_object(obj, key.as_str(), ObjType::List)?;
                    fill_list(doc, &id, items)?;
                    true
                }
            }
            (Json::Array(items), _) => {
                let id = doc.put_object(obj, key.as_str(), ObjType::List)?;
                fill_list(doc, &id, items)?;
                true
            }
            (scalar, Some((Value::Scalar(current), _))) if same_scalar(&current, scalar) => false,
            (scalar, _) => {
                doc.put(obj, key.as_str(), to_scalar(scalar))?;
                true
            }
        };
    }
    Ok(changed)
}

fn fill_list(doc: &mut AutoCommit, list: &ObjId, items: &[Json]) -> Result<(), DocError> {
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::Object(inner) => {
                let id = doc.insert_object(list, i, ObjType::Map)?;
                reconcile_map(doc, &id, inner)?;
            }
            Json::Array(inner) => {
                let id = doc.insert_object(list, i, ObjType::List)?;
                fill_list(doc, &id, inner)?;
            }
            scalar => doc.insert(list, i, to_scalar(scalar))?,
        }
    }
    Ok(())
}

fn to_scalar(value: &Json) -> ScalarValue {
    match value {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => ScalarValue::Int(i),
            (None, Some(u)) => ScalarValue::Uint(u),
            _ => ScalarValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Array(_) | Json::Object(_) => ScalarValue::Null,
    }
}

fn same_scalar(current: &ScalarValue, value: &Json) -> bool {
    *current == to_scalar(value)
}

/// The document's generation: set when a document is started anew (erasure), so that a peer drops
/// the copy it holds instead of merging the old history back. `None` for a document never replaced.
pub fn generation(doc: &AutoCommit) -> Option<String> {
    match doc.get(ROOT, GENERATION) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(g) => Some(g.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Marks `doc` (a new document) as generation `generation`.
pub fn set_generation(doc: &mut AutoCommit, generation: &str) -> Result<(), DocError> {
    doc.put(ROOT, GENERATION, generation)?;
    Ok(())
}

/// The document's current value as JSON.
pub fn hydrate(doc: &AutoCommit) -> Json {
    hydrate_obj(doc, &ROOT)
}

fn hydrate_obj(doc: &AutoCommit, obj: &ObjId) -> Json {
    match doc.object_type(obj) {
        Ok(ObjType::List) => Json::Array(
            (0..doc.length(obj))
                .map(|i| match doc.get(obj, i) {
                    Ok(Some((Value::Scalar(s), _))) => scalar_json(&s),
                    Ok(Some((Value::Object(_), id))) => hydrate_obj(doc, &id),
                    _ => Json::Null,
                })
                .collect(),
        ),
        Ok(_) => Json::Object(
            doc.keys(obj)
                .filter(|k| !reserved(obj, k))
                .map(|k| {
                    let v = match doc.get(obj, k.as_str()) {
                        Ok(Some((Value::Scalar(s), _))) => scalar_json(&s),
                        Ok(Some((Value::Object(_), id))) => hydrate_obj(doc, &id),
                        _ => Json::Null,
                    };
                    (k, v)
                })
                .collect(),
        ),
        Err(_) => Json::Null,
    }
}

/// One change of a record as staff can read it: who made it (the Automerge actor, hex) and each
/// top-level field it set, with the value before (at the change's parents) and after.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub actor: String,
    pub seq: u64,
    pub fields: Vec<(String, Json, Json)>,
}

/// The most changes [`history`] reads.
pub const MAX_HISTORY: usize = 200;

/// Every change of `doc` (the latest [`MAX_HISTORY`]), oldest first (causal order), each with the fields it set. Concurrent edits
/// of one field each appear with their own value: a value that lost the merge stays visible here.
pub fn history(doc: &mut AutoCommit) -> Vec<HistoryEntry> {
    let mut changes = doc.get_changes(&[]);
    // Each entry replays the document at its change: keep a long history to its latest changes.
    if changes.len() > MAX_HISTORY {
        changes.drain(..changes.len() - MAX_HISTORY);
    }
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let state_at = |doc: &mut AutoCommit, heads: &[automerge::ChangeHash]| -> Map<String, Json> {
            if heads.is_empty() {
                return Map::new();
            }
            match doc.fork_at(heads).map(|d| hydrate(&d)) {
                Ok(Json::Object(m)) => m,
                _ => Map::new(),
            }
        };
        let (before, after) = (state_at(doc, c.deps()), state_at(doc, &[c.hash()]));
        let mut fields: Vec<(String, Json, Json)> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), before.get(k).cloned().unwrap_or(Json::Null), v.clone()))
            .collect();
        fields.extend(
            before
                .iter()
                .filter(|(k, _)| !after.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone(), Json::Null)),
        );
        if !fields.is_empty() {
            out.push(HistoryEntry { actor: c.actor_id().to_hex_string(), seq: c.seq(), fields });
        }
    }
    out
}

/// Top-level fields that concurrent edits left with more than one value: each field with every value,
/// the one the record shows (Automerge's deterministic winner) first.
pub fn conflicts(doc: &AutoCommit) -> Vec<(String, Vec<Json>)> {
    let mut out = Vec::new();
    for key in doc.keys(&ROOT).filter(|k| !reserved(&ROOT, k)) {
        let Ok(all) = doc.get_all(&ROOT, key.as_str()) else { continue };
        if all.len() < 2 {
            continue;
        }
        let value = |(v, id): &(Value<'_>, ObjId)| match v {
            Value::Scalar(s) => scalar_json(s),
            Value::Object(_) => hydrate_obj(doc, id),
        };
        // `get_all` lists the winner last.
        let mut values: Vec<Json> = all.iter().rev().map(value).collect();
        values.dedup();
        if values.len() > 1 {
            out.push((key, values));
        }
    }
    out
}

/// The heads of a saved document, read from its header without loading it (a document is parsed
/// whole, its operations indexed, to answer `get_heads`). `None` if `saved` does not start with a
/// document chunk; the checksum is not checked (loading the document does, and a document whose
/// heads a peer already holds is not loaded to be sent).
///
/// Automerge's binary format: the magic bytes, a 4-byte checksum, the chunk type (0: a document), the
/// chunk's length; then the actors (a count, each a length and its bytes) and the heads (a count,
/// each a 32-byte hash).
pub fn saved_heads(saved: &[u8]) -> Option<Vec<automerge::ChangeHash>> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut at = 9;
    if saved.get(..4)? != MAGIC || *saved.get(8)? != 0 {
        return None;
    }
    let _length = uleb(saved, &mut at)?;
    for _ in 0..uleb(saved, &mut at)? {
        let len = uleb(saved, &mut at)?;
        at = at.checked_add(len)?;
    }
    let count = uleb(saved, &mut at)?;
    let bytes = saved.get(at..at.checked_add(count.checked_mul(32)?)?)?;
    bytes.chunks_exact(32).map(|h| automerge::ChangeHash::try_from(h).ok()).collect()
}

/// The unsigned LEB128 number at `at` in `bytes`; `at` moved past it.
fn uleb(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let (mut value, mut shift) = (0u64, 0u32);
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return usize::try_from(value).ok();
        }
        shift += 7;
    }
}

fn scalar_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Timestamp(t) => Json::from(*t),
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        _ => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A saved document's header gives its heads as loading it would: one head, several (concurrent
    /// edits merged), none; compressed or not; anything else is not read as a document.
    #[test]
    fn the_heads_of_a_saved_document_are_read_from_its_header() {
        let mut site = AutoCommit::new();
        reconcile(&mut site, &json!({"name": "Nguyễn Văn An", "room": "101"})).expect("w");
        let mut province = site.fork();
        let mut other = site.fork();
        reconcile(&mut site, &json!({"name": "Nguyễn Văn An", "room": "102"})).expect("w");
        reconcile(&mut province, &json!({"name": "Nguyễn Văn Ân", "room": "101"})).expect("w");
        reconcile(&mut other, &json!({"name": "Nguyễn Văn An", "room": "103", "bed": "4"})).expect("w");
        let single = site.clone();
        site.merge(&mut province).expect("merge");
        site.merge(&mut other).expect("merge");
        assert_eq!(site.get_heads().len(), 3);
        for mut doc in [single, site, AutoCommit::new()] {
            let heads = doc.get_heads();
            assert_eq!(saved_heads(&doc.save_nocompress()), Some(heads.clone()));
            assert_eq!(saved_heads(&doc.save()), Some(heads));
        }
        let mut changes = AutoCommit::new();
        reconcile(&mut changes, &json!({"a": 1})).expect("w");
        let change = changes.get_last_local_change().expect("a change").raw_bytes().to_vec();
        assert_eq!(saved_heads(&change), None, "a change chunk is not a document");
        assert_eq!(saved_heads(b""), None);
        let saved = changes.save();
        assert_eq!(saved_heads(&saved[..20.min(saved.len())]), None, "cut short");
    }

    fn check_roundtrip(value: Json) {
        let mut doc = AutoCommit::new();
        assert!(reconcile(&mut doc, &value).expect("reconcile"));
        assert_eq!(hydrate(&doc), value);
        let mut loaded = AutoCommit::load(&doc.save()).expect("load");
        assert_eq!(hydrate(&loaded), value);
        assert!(!reconcile(&mut loaded, &value).expect("reconcile again"), "no-op edit changed the doc");
    }

    #[test]
    fn concurrent_edits_of_a_field_keep_the_losing_value_in_the_history() {
        let mut site = AutoCommit::new();
        reconcile(&mut site, &json!({"name": "Nguyễn Văn An", "room": "101", "end": "2026-12-04"}))
            .expect("w");
        let mut province = site.fork();
        reconcile(&mut site, &json!({"name": "Nguyễn Văn An", "room": "102", "end": "2026-12-04"}))
            .expect("w");
        reconcile(&mut province, &json!({"name": "Nguyễn Văn An", "room": "105", "end": "2026-12-11"}))
            .expect("w");
        site.merge(&mut province).expect("merge");
        province.merge(&mut site).expect("merge");
        // Both sides agree; the province's end date (no concurrent edit) stays.
        assert_eq!(hydrate(&site), hydrate(&province));
        let shown = hydrate(&site);
        assert_eq!(shown["end"], "2026-12-11");
        // The room both changed: one value shows, the other is listed as a conflict and in the history.
        let c = conflicts(&site);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "room");
        assert_eq!(c[0].1[0], shown["room"], "the shown value is listed first");
        let mut both = c[0].1.clone();
        both.sort_by_key(|v| v.to_string());
        assert_eq!(both, vec![json!("102"), json!("105")]);
        let h = history(&mut site);
        assert_eq!(h.len(), 3, "{h:?}");
        let rooms: Vec<&Json> =
            h.iter().flat_map(|e| e.fields.iter().filter(|f| f.0 == "room").map(|f| &f.2)).collect();
        assert!(rooms.contains(&&json!("102")) && rooms.contains(&&json!("105")), "{h:?}");
        assert_eq!(h[0].fields.len(), 3, "the first change set every field");
    }

    #[test]
    fn values_roundtrip() {
        check_roundtrip(json!({"a": "Nguyễn Văn An", "b": 1990, "t": 38.5, "n": null, "ok": true}));
        check_roundtrip(json!({"s": ["fever", "cough"], "h": [{"status": "released", "at": "x"}]}));
        check_roundtrip(json!({"nested": {"x": 1, "y": {"z": "w"}}, "empty": [], "e": {}}));
    }

    #[test]
    fn removed_fields_are_deleted() {
        let mut doc = AutoCommit::new();
        reconcile(&mut doc, &json!({"a": 1, "b": 2})).expect("first");
        reconcile(&mut doc, &json!({"a": 1})).expect("second");
        assert_eq!(hydrate(&doc), json!({"a": 1}));
    }

    #[test]
    fn concurrent_edits_of_different_fields_both_survive() {
        let mut base = AutoCommit::new();
        reconcile(&mut base, &json!({"name": "A", "room": "1", "end": "2021-09-14"})).expect("base");
        let mut site = base.fork();
        let mut province = base.fork();
        reconcile(&mut site, &json!({"name": "A", "room": "2", "end": "2021-09-14"})).expect("site");
        reconcile(&mut province, &json!({"name": "A", "room": "1", "end": "2021-09-21"})).expect("province");
        site.merge(&mut province).expect("merge");
        assert_eq!(hydrate(&site), json!({"name": "A", "room": "2", "end": "2021-09-21"}));
    }

    #[test]
    fn concurrent_edits_of_one_field_keep_both_values() {
        let mut base = AutoCommit::new();
        reconcile(&mut base, &json!({"room": "1"})).expect("base");
        let mut a = base.fork();
        let mut b = base.fork();
        reconcile(&mut a, &json!({"room": "2"})).expect("a");
        reconcile(&mut b, &json!({"room": "3"})).expect("b");
        let mut a2 = a.fork();
        a.merge(&mut b).expect("merge ab");
        b.merge(&mut a2).expect("merge ba");
        assert_eq!(hydrate(&a), hydrate(&b), "merge is deterministic");
        let all = a.get_all(ROOT, "room").expect("get_all");
        assert_eq!(all.len(), 2, "the losing value is kept as a conflict");
    }
}
