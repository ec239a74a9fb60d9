//! Property tests of the sync batch protocol: random edits on a site and the province, messages
//! randomly lost, duplicated, reordered, cut short and corrupted; after the link heals both sides
//! hold identical documents, and every acknowledged write is present on both.
//!
//! Each case is a seed: a failure prints it, and `PROTOCOL_SEED=<n>` replays that one case.

use std::collections::{BTreeMap, HashMap};

use automerge::{transaction::Transactable, ActorId, Automerge, ChangeHash, ReadDoc, ROOT};
use outpost_sync::protocol::{self, Batch, DocChanges, Docs, Limits, PeerState, ReceiveError};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// One side in memory: documents, a change log (each document once, at its latest change), and
/// the state it keeps about its peer.
struct Side {
    name: &'static str,
    peer_name: &'static str,
    actor: ActorId,
    docs: BTreeMap<String, Automerge>,
    log: BTreeMap<u64, String>,
    seq_of: HashMap<String, u64>,
    seq: u64,
    /// Local writes, acknowledged as soon as made: (document, change).
    writes: Vec<(String, ChangeHash)>,
    peer: PeerState,
}

impl Side {
    fn new(name: &'static str, peer_name: &'static str, actor: u8) -> Side {
        Side {
            name,
            peer_name,
            actor: ActorId::from(vec![actor; 16]),
            docs: BTreeMap::new(),
            log: BTreeMap::new(),
            seq_of: HashMap::new(),
            seq: 0,
            writes: Vec::new(),
            peer: PeerState::default(),
        }
    }

    fn touch(&mut self, doc_id: &str) {
        self.seq += 1;
        if let Some(old) = self.seq_of.insert(doc_id.to_owned(), self.seq) {
            self.log.remove(&old);
        }
        self.log.insert(self.seq, doc_id.to_owned());
    }

    fn edit(&mut self, rng: &mut StdRng) {
        let doc_id = DOCS[rng.gen_range(0..DOCS.len())].to_owned();
        let actor = self.actor.clone();
        let doc = self.docs.entry(doc_id.clone()).or_insert_with(|| Automerge::new().with_actor(actor));
        let key = ["ho_ten", "trang_thai", "phong", "ghi_chu"][rng.gen_range(0..4)];
        let value = format!("{}-{}", self.name, rng.gen_range(0..1_000_000));
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value.as_str()).expect("edit");
        let (hash, _) = tx.commit();
        let hash = hash.expect("a change");
        self.writes.push((doc_id.clone(), hash));
        self.touch(&doc_id);
    }

    /// Sets `key` of an existing document.
    fn put(&mut self, doc_id: &str, key: &str, value: &str) {
        let doc = self.docs.get_mut(doc_id).expect("doc");
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).expect("edit");
        tx.commit();
        self.touch(doc_id);
    }

    fn heads_of_all(&self) -> BTreeMap<String, Vec<ChangeHash>> {
        self.docs.iter().map(|(id, d)| (id.clone(), sorted(d.get_heads()))).collect()
    }
}

/// `build` needs the side and its peer state apart; this keeps the borrow checker out of the test.
fn build(side: &mut Side) -> Vec<u8> {
    let mut peer = std::mem::take(&mut side.peer);
    let batch = protocol::build(side, &mut peer, side.name, |d| d.starts_with("alert/"));
    side.peer = peer;
    protocol::encode(&batch)
}

fn receive(side: &mut Side, bytes: &[u8]) -> Result<Batch, ReceiveError> {
    let mut peer = std::mem::take(&mut side.peer);
    let peer_name = side.peer_name;
    let result = protocol::receive(side, &mut peer, peer_name, bytes, &Limits::default());
    side.peer = peer;
    result
}

/// A seeded random source, a site and the province.
fn pair(seed: u64) -> (StdRng, Side, Side) {
    (StdRng::seed_from_u64(seed), Side::new("site-a", "province", 1), Side::new("province", "site-a", 2))
}

/// One whole round trip over a link that works.
fn exchange(site: &mut Side, province: &mut Side) {
    let request = build(site);
    receive(province, &request).expect("batch");
    let response = build(province);
    receive(site, &response).expect("batch");
}

fn sorted(mut h: Vec<ChangeHash>) -> Vec<ChangeHash> {
    h.sort();
    h
}

const DOCS: [&str; 8] =
    ["alert/1", "alert/2", "person/1", "person/2", "person/3", "declaration/1", "site/s", "band/1"];

impl Docs for Side {
    fn incarnation(&self) -> String {
        self.actor.to_hex_string()
    }
    fn changed_since(&self, after: u64, limit: usize) -> Vec<(u64, String)> {
        self.log.range(after + 1..).take(limit).map(|(s, d)| (*s, d.clone())).collect()
    }
    fn heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>, String> {
        Ok(self.docs.get(doc_id).map(|d| d.get_heads()).unwrap_or_default())
    }
    fn has_change(&self, doc_id: &str, hash: &ChangeHash) -> Result<bool, String> {
        Ok(self.docs.get(doc_id).is_some_and(|d| d.get_change_meta_by_hash(hash).is_some()))
    }
    fn save_after(&self, doc_id: &str, heads: &[ChangeHash]) -> Result<Vec<u8>, String> {
        Ok(self.docs.get(doc_id).map(|d| d.save_after(heads)).unwrap_or_default())
    }
    fn apply(&mut self, docs: &[DocChanges]) -> Result<Vec<(String, Vec<ChangeHash>)>, String> {
        // All or nothing: merge into copies, keep them only if every one merged.
        let mut merged = Vec::new();
        for d in docs {
            let mut doc = match self.docs.get(&d.doc_id) {
                Some(doc) => doc.clone(),
                None => Automerge::new().with_actor(self.actor.clone()),
            };
            doc.load_incremental(&d.changes).map_err(|e| format!("{}: {e}", d.doc_id))?;
            merged.push((d.doc_id.clone(), doc));
        }
        let mut heads = Vec::new();
        for (doc_id, doc) in merged {
            let before = self.heads(&doc_id)?;
            heads.push((doc_id.clone(), doc.get_heads()));
            if sorted(before) != sorted(doc.get_heads()) {
                self.docs.insert(doc_id.clone(), doc);
                self.touch(&doc_id);
            }
        }
        Ok(heads)
    }
}

/// What the network does to a message.
fn damage(rng: &mut StdRng, bytes: Vec<u8>) -> Vec<Vec<u8>> {
    match rng.gen_range(0..100) {
        0..15 => vec![],                      // lost
        15..25 => vec![bytes.clone(), bytes], // duplicated
        25..35 => {
            let cut = rng.gen_range(0..bytes.len());
            vec![bytes[..cut].to_vec()] // cut short
        }
        35..40 => {
            let mut b = bytes;
            let i = rng.gen_range(0..b.len());
            b[i] ^= 1 << rng.gen_range(0..8);
            vec![b] // corrupted
        }
        _ => vec![bytes],
    }
}

fn run_case(seed: u64) {
    let (mut rng, mut site, mut province) = pair(seed);
    // Messages in flight, to the site (0) or the province (1); delivered in any order.
    let mut network: Vec<(usize, Vec<u8>)> = Vec::new();
    let steps = rng.gen_range(20..200);
    for _ in 0..steps {
        match rng.gen_range(0..100) {
            0..20 => site.edit(&mut rng),
            20..35 => province.edit(&mut rng),
            35..50 => {
                let bytes = build(&mut site);
                network.extend(damage(&mut rng, bytes).into_iter().map(|b| (1, b)));
            }
            50..65 => {
                let bytes = build(&mut province);
                network.extend(damage(&mut rng, bytes).into_iter().map(|b| (0, b)));
            }
            _ if !network.is_empty() => {
                let (to, bytes) = network.swap_remove(rng.gen_range(0..network.len()));
                let side = if to == 0 { &mut site } else { &mut province };
                let (docs_before, state_before) = (side.heads_of_all(), side.peer.clone());
                if let Err(error) = receive(side, &bytes) {
                    assert_eq!(
                        side.heads_of_all(),
                        docs_before,
                        "seed {seed}: a refused batch changed documents ({error})"
                    );
                    assert_eq!(
                        side.peer, state_before,
                        "seed {seed}: a refused batch changed the peer state ({error})"
                    );
                }
            }
            _ => {}
        }
    }
    // The link heals: exchanges go through until a round trip carries nothing.
    let mut quiet = 0;
    for round in 0.. {
        assert!(round < 50, "seed {seed}: no convergence after 50 round trips");
        let request = build(&mut site);
        let carried = receive(&mut province, &request).expect("a whole batch").docs.len();
        let response = build(&mut province);
        let carried_back = receive(&mut site, &response).expect("a whole batch").docs.len();
        if carried + carried_back == 0 {
            quiet += 1;
            if quiet == 2 {
                break;
            }
        } else {
            quiet = 0;
        }
    }
    assert_eq!(site.heads_of_all(), province.heads_of_all(), "seed {seed}: the sides differ");
    for (name, side) in [("site", &site), ("province", &province)] {
        for (doc_id, hash) in site.writes.iter().chain(&province.writes) {
            assert!(
                side.has_change(doc_id, hash) == Ok(true),
                "seed {seed}: {name} lacks an acknowledged write to {doc_id}"
            );
        }
    }
    for (doc_id, doc) in &site.docs {
        let other = &province.docs[doc_id];
        assert_eq!(
            doc.map_range(ROOT, ..)
                .map(|i| (i.key.to_string(), format!("{:?}", i.value)))
                .collect::<Vec<_>>(),
            other
                .map_range(ROOT, ..)
                .map(|i| (i.key.to_string(), format!("{:?}", i.value)))
                .collect::<Vec<_>>(),
            "seed {seed}: {doc_id} reads differently"
        );
    }
}

#[test]
fn both_sides_converge_whatever_the_network_does() {
    if let Some(seed) = std::env::var("PROTOCOL_SEED").ok().and_then(|s| s.parse().ok()) {
        run_case(seed);
        return;
    }
    for seed in 0..300 {
        run_case(seed);
    }
}

#[test]
fn a_large_backlog_goes_in_bounded_batches_alerts_first() {
    let (mut rng, mut site, mut province) = pair(7);
    for _ in 0..400 {
        site.edit(&mut rng);
    }
    site.peer.budget = Some(protocol::MIN_BUDGET);
    let first = build(&mut site);
    let batch = receive(&mut province, &first).expect("batch");
    assert!(batch.docs.len() < DOCS.len() || first.len() < 64 * 1024);
    assert!(batch.docs[0].doc_id.starts_with("alert/"), "alerts go first: {:?}", batch.docs[0].doc_id);
    // Halving on "too large" never goes below the minimum, and a successful exchange resets it.
    protocol::too_large(&mut site.peer);
    assert_eq!(site.peer.budget, Some(protocol::MIN_BUDGET));
    for _ in 0..20 {
        exchange(&mut site, &mut province);
    }
    assert_eq!(site.heads_of_all(), province.heads_of_all());
    assert_eq!(site.peer.cursor, site.seq, "the cursor reached the end of the change log");
}

#[test]
fn bad_messages_are_refused_with_a_reason() {
    let (mut rng, mut site, mut province) = pair(3);
    site.edit(&mut rng);
    let good = build(&mut site);
    let limits = Limits::default();
    assert_eq!(protocol::decode(b"GET / HTTP/1.1", &limits), Err(protocol::ProtocolError::NotABatch));
    let mut other_version = good.clone();
    other_version[5] = 9;
    assert_eq!(protocol::decode(&other_version, &limits), Err(protocol::ProtocolError::Version(9)));
    // The previous version (no sender's clock) is still read, and is answered in kind.
    let mut old = protocol::decode(&good, &limits).expect("decodes");
    old.version = 1;
    let v1 = protocol::encode(&old);
    assert_eq!(u16::from_be_bytes([v1[4], v1[5]]), 1);
    let back = protocol::decode(&v1, &limits).expect("version 1 decodes");
    assert_eq!((back.version, back.sent_at_ms, back.docs.len()), (1, 0, old.docs.len()));
    let small = Limits { max_wire_bytes: 32, ..limits };
    assert!(matches!(protocol::decode(&good, &small), Err(protocol::ProtocolError::TooLarge(_))));
    let tight = Limits { max_body_bytes: 8, ..limits };
    assert!(matches!(protocol::decode(&good, &tight), Err(protocol::ProtocolError::TooLarge(_))));
    assert!(matches!(
        protocol::decode(&good[..good.len() - 1], &limits),
        Err(protocol::ProtocolError::Corrupt(_))
    ));
    // From another site: refused, nothing applied.
    let mut intruder = Side::new("site-b", "province", 3);
    intruder.edit(&mut rng);
    let foreign = build(&mut intruder);
    assert!(matches!(receive(&mut province, &foreign), Err(ReceiveError::WrongSite { .. })));
    assert!(province.docs.is_empty());
    receive(&mut province, &good).expect("the good one");
    assert_eq!(province.docs.len(), 1);
}

#[test]
fn changes_the_peer_could_not_apply_go_again() {
    let (mut rng, mut site, mut province) = pair(11);
    site.edit(&mut rng);
    let doc_id = site.log.values().next().expect("a document").clone();
    exchange(&mut site, &mut province);
    let older = province.docs[&doc_id].clone();
    // A second change reaches the province and is acknowledged, then the province loses it
    // (a document restored from an older copy): the site believes the province holds it.
    site.put(&doc_id, "ghi_chu", "second");
    exchange(&mut site, &mut province);
    province.docs.insert(doc_id.clone(), older);
    // A third change depends on the lost one: the province cannot apply it, says so by its heads,
    // and the site sends again from those heads.
    site.put(&doc_id, "ghi_chu", "third");
    for _ in 0..3 {
        exchange(&mut site, &mut province);
    }
    assert_eq!(site.heads_of_all(), province.heads_of_all());
}

/// A site restored from a backup (a new incarnation: a new actor) gets back from the province what
/// it sent after the backup and what the province acknowledged to it since: the province starts
/// over with it, and both sides converge.
#[test]
fn a_peer_restored_from_a_backup_gets_back_what_it_lost() {
    let (mut rng, mut site, mut province) = pair(21);
    for _ in 0..10 {
        site.edit(&mut rng);
        province.edit(&mut rng);
    }
    for _ in 0..3 {
        exchange(&mut site, &mut province);
    }
    let backup = (site.docs.clone(), site.log.clone(), site.seq_of.clone(), site.seq, site.peer.clone());
    // After the backup, both sides write and the link carries everything.
    for _ in 0..10 {
        site.edit(&mut rng);
        province.edit(&mut rng);
    }
    for _ in 0..3 {
        exchange(&mut site, &mut province);
    }
    assert_eq!(site.heads_of_all(), province.heads_of_all());
    // The site's box is restored from the backup; its store writes under a new actor.
    let mut restored = Side::new("site-a", "province", 9);
    (restored.docs, restored.log, restored.seq_of, restored.seq, restored.peer) = backup;
    for doc in restored.docs.values_mut() {
        doc.set_actor(restored.actor.clone());
    }
    assert_ne!(restored.heads_of_all(), province.heads_of_all(), "the backup lacks what came after");
    restored.edit(&mut rng);
    for _ in 0..3 {
        exchange(&mut restored, &mut province);
    }
    assert_eq!(restored.heads_of_all(), province.heads_of_all(), "converged after the restore");
    for (doc_id, hash) in site.writes.iter().chain(&province.writes) {
        assert!(restored.has_change(doc_id, hash).expect("read"), "{doc_id} lost a change");
    }
}

/// A peer still on version 2 is remembered as such (the calling side then speaks version 2 to it),
/// and gives no incarnation; its first incarnation, once upgraded, makes this side start over with
/// it, since it may have been restored meanwhile.
#[test]
fn a_peer_on_an_older_version_is_remembered_and_its_first_incarnation_starts_over() {
    let (mut rng, mut site, mut province) = pair(5);
    site.edit(&mut rng);
    let mut old = protocol::decode(&build(&mut site), &Limits::default()).expect("decodes");
    old.version = 2;
    let received = receive(&mut province, &protocol::encode(&old)).expect("version 2 is taken");
    assert_eq!((received.version, received.incarnation.as_str()), (2, ""));
    assert_eq!((province.peer.peer_version, province.peer.peer_incarnation.as_deref()), (Some(2), None));
    assert!(!province.peer.acked.is_empty());
    // Upgraded: version 3 with an incarnation; what the province had recorded is dropped.
    site.edit(&mut rng);
    let upgraded = build(&mut site);
    receive(&mut province, &upgraded).expect("version 3");
    assert_eq!(province.peer.peer_version, Some(3));
    assert_eq!(province.peer.peer_incarnation, Some(site.incarnation()));
    for _ in 0..2 {
        exchange(&mut site, &mut province);
    }
    assert_eq!(site.heads_of_all(), province.heads_of_all());
}
