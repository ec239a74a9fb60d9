//! `outpost-province --database … migrate`: a province kept in sled stores (one per site under the
//! data folder) moved into PostgreSQL. Each site's documents are merged into the database whole
//! (their full history: the same heads on both sides, checked document by document), and the state
//! of the exchange with the site follows, so that the site goes on where it was: what the site
//! acknowledged stays acknowledged; only the province's change-log position starts again (the
//! database numbers its own log), which makes the next exchange look over every document once and
//! send none the site already holds. The sled stores are only read: they stay where they were until
//! the operator removes them. Running it again merges nothing new.

use anyhow::Context;
use outpost_link::exchange::PEER_KEY;
use outpost_sync::{
    pg::Database,
    protocol::{DocChanges, PeerState, Side},
    Store, StoreConfig,
};

use crate::registry::Province;

/// Documents merged per transaction.
const CHUNK: usize = 200;

/// What was moved of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub site: String,
    pub documents: usize,
}

/// Moves every site of `province` that has a sled store into `db`, calling `progress` after each
/// chunk with the site, the documents done and the site's total.
pub fn migrate(
    province: &Province,
    db: &Database,
    mut progress: impl FnMut(&str, usize, usize),
) -> anyhow::Result<Vec<Moved>> {
    let mut moved = Vec::new();
    for entry in province.sites()? {
        let dir = province.dir.join("sites").join(&entry.id).join("store");
        if !dir.exists() {
            continue;
        }
        let store = Store::open(&dir, &StoreConfig { cache_capacity: 4 << 20 })
            .with_context(|| format!("site {}'s store", entry.id))?;
        let documents = site(&entry.id, &store, db, &mut progress)?;
        db.set_district(&entry.id, &entry.district)?;
        moved.push(Moved { site: entry.id, documents });
    }
    Ok(moved)
}

fn site(
    id: &str,
    store: &Store,
    db: &Database,
    progress: &mut impl FnMut(&str, usize, usize),
) -> anyhow::Result<usize> {
    // The province's actor for the site's documents stays: the site sees the same incarnation.
    let target = db.site_as(id, Some(&store.actor()))?;
    let ids: Vec<String> = store.changes_since(0, usize::MAX)?.into_iter().map(|(_, doc)| doc).collect();
    for (done, chunk) in ids.chunks(CHUNK).enumerate() {
        let mut docs = Vec::with_capacity(chunk.len());
        for doc_id in chunk {
            let Some(mut doc) = store.document(doc_id)? else { continue };
            docs.push(DocChanges { doc_id: doc_id.clone(), changes: doc.save(), heads: doc.get_heads() });
        }
        let (applied, heads) = target.merge_remote_blocking(&docs)?;
        if let Some((doc_id, why)) = applied.refused.first() {
            anyhow::bail!("site {id}: document {doc_id} could not be moved: {why}");
        }
        for (sent, (doc_id, now)) in docs.iter().zip(&heads) {
            let (mut want, mut got) = (sent.heads.clone(), now.clone());
            want.sort();
            got.sort();
            anyhow::ensure!(want == got, "site {id}: document {doc_id} has other heads in the database");
        }
        progress(id, (done * CHUNK + chunk.len()).min(ids.len()), ids.len());
    }
    // The exchange's state: the site's acknowledgements kept, the province's log position anew.
    // Not over one the database has already (the server ran on it since: its state is newer).
    if target.get_local::<PeerState>(PEER_KEY)?.is_none() {
        let mut state: PeerState = store.get_local(PEER_KEY)?.unwrap_or_default();
        state.cursor = 0;
        state.in_flight = None;
        target.keep_peer_state(PEER_KEY, &state).map_err(anyhow::Error::msg)?;
    }
    Ok(ids.len())
}
