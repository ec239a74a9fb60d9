//! A site's documents at the province, wherever they are kept: a sled store per site (the default:
//! the demo, a district) or one PostgreSQL database for every site (`--database`, several servers
//! on one database). The pages, the exchanges and the pulls read and write through [`SiteDocs`]
//! alike.

use automerge::{AutoCommit, ChangeHash};
use outpost_sync::{
    pg::{Lease, PgStore},
    protocol::{DocChanges, DocHeads, Docs, PeerState, Side},
    store::Applied,
    Record, Store, StoreError, WriteSet,
};
use serde::de::DeserializeOwned;

/// One site's documents.
#[derive(Clone, Debug)]
pub enum SiteDocs {
    Sled(Store),
    Pg(PgStore),
}

impl SiteDocs {
    /// The same documents for an exchange under `lease` (none without a database): on PostgreSQL,
    /// its writes fail if the lease is lost meanwhile.
    pub fn under(&self, lease: Option<&Lease>) -> SiteDocs {
        match (self, lease) {
            (SiteDocs::Pg(s), Some(lease)) => SiteDocs::Pg(lease.guard(s)),
            _ => self.clone(),
        }
    }
}

impl From<Store> for SiteDocs {
    fn from(store: Store) -> SiteDocs {
        SiteDocs::Sled(store)
    }
}

/// The same call on whichever store holds the site.
macro_rules! each {
    ($docs:expr, $s:ident => $call:expr) => {
        match $docs {
            SiteDocs::Sled($s) => $call,
            SiteDocs::Pg($s) => $call,
        }
    };
}

type Result<T> = std::result::Result<T, StoreError>;

impl SiteDocs {
    pub fn get<R: Record>(&self, id: &str) -> Result<Option<R>> {
        each!(self, s => s.get(id))
    }
    pub fn list<R: Record>(&self) -> Result<Vec<R>> {
        each!(self, s => s.list())
    }
    pub fn index_scan(&self, index: &str, value_prefix: &str) -> Result<Vec<(String, String)>> {
        each!(self, s => s.index_scan(index, value_prefix))
    }
    pub fn find_prefix<R: Record>(&self, index: &str, prefix: &str) -> Result<Vec<R>> {
        each!(self, s => s.find_prefix(index, prefix))
    }
    pub fn heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        each!(self, s => s.heads(doc_id))
    }
    pub fn document(&self, doc_id: &str) -> Result<Option<AutoCommit>> {
        each!(self, s => s.document(doc_id))
    }
    pub fn actor_hex(&self) -> String {
        each!(self, s => s.actor_hex())
    }
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        each!(self, s => s.changes_since(after, limit))
    }
    pub fn get_local<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        each!(self, s => s.get_local(key))
    }
    pub fn sync_refused(&self) -> Result<Vec<(String, String)>> {
        each!(self, s => s.sync_refused())
    }
    /// Applies `writes`, durable when it returns.
    pub async fn commit(&self, writes: WriteSet) -> Result<Applied> {
        each!(self, s => s.commit(writes).await)
    }
    pub fn commit_blocking(&self, writes: WriteSet) -> Result<Applied> {
        each!(self, s => s.commit_blocking(writes))
    }
}

impl Docs for SiteDocs {
    fn changed_since(&self, after: u64, limit: usize) -> Vec<(u64, String)> {
        each!(self, s => s.changed_since(after, limit))
    }
    fn heads(&self, doc_id: &str) -> std::result::Result<Vec<ChangeHash>, String> {
        each!(self, s => Docs::heads(s, doc_id))
    }
    fn has_change(&self, doc_id: &str, hash: &ChangeHash) -> std::result::Result<bool, String> {
        each!(self, s => s.has_change(doc_id, hash))
    }
    fn save_after(&self, doc_id: &str, heads: &[ChangeHash]) -> std::result::Result<Vec<u8>, String> {
        each!(self, s => s.save_after(doc_id, heads))
    }
    fn outgoing(
        &self,
        doc_id: &str,
        acked: Option<&[ChangeHash]>,
    ) -> std::result::Result<(Vec<ChangeHash>, Option<Vec<u8>>), String> {
        each!(self, s => s.outgoing(doc_id, acked))
    }
    fn incarnation(&self) -> String {
        each!(self, s => s.incarnation())
    }
    fn apply(&mut self, docs: &[DocChanges]) -> std::result::Result<Vec<DocHeads>, String> {
        each!(self, s => Docs::apply(s, docs))
    }
}

impl Side for SiteDocs {
    fn peer_state(&self, key: &str) -> std::result::Result<PeerState, String> {
        each!(self, s => s.peer_state(key))
    }
    fn keep_peer_state(&self, key: &str, state: &PeerState) -> std::result::Result<(), String> {
        each!(self, s => s.keep_peer_state(key, state))
    }
}
