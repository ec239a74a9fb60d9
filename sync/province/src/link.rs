//! A site's end of the link: enrolment with a token, and one exchange with the province.

use std::time::Duration;

use anyhow::Context;
use outpost_sync::{
    protocol::{self, Limits, PeerState},
    Store, WriteSet,
};

use crate::{ca, net, server::Token};

/// Box-local key of the protocol's state about the province.
pub const PEER_KEY: &str = "sync/peer";

/// Asks the province at `addr` for this site's bundle with `token`, trusting only the CA the token
/// names.
pub async fn enroll(addr: &str, token: &str) -> anyhow::Result<ca::Bundle> {
    let token = Token::parse(token).context("not an enrolment token (site.secret.fingerprint)")?;
    let tls = net::pinned_client_config(&token.ca_fingerprint);
    let body = serde_json::to_vec(&serde_json::json!({"site": token.site, "secret": token.secret}))?;
    let (status, answer) =
        net::post(addr, ca::PROVINCE_NAME, tls, "/sync/v1/enroll", body, 1 << 20, Duration::from_secs(30))
            .await?;
    anyhow::ensure!(status == 200, "the province refused: {}", String::from_utf8_lossy(&answer).trim());
    let bundle: ca::Bundle =
        serde_json::from_slice(&answer).context("the province's answer is not a bundle")?;
    anyhow::ensure!(bundle.site_id == token.site, "the bundle is for another site");
    Ok(bundle)
}

/// What one exchange moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchanged {
    pub sent_docs: usize,
    pub sent_bytes: usize,
    pub received_docs: usize,
    pub received_bytes: usize,
}

/// One exchange with the province at `addr`: this site's batch out, the province's in, both durable.
/// Run outside the async runtime's worker threads' blocking limits: store work goes to
/// `spawn_blocking`.
pub async fn exchange(store: &Store, bundle: &ca::Bundle, addr: &str) -> anyhow::Result<Exchanged> {
    let tls = net::client_config(&bundle.ca_pem, Some((&bundle.cert_pem, &bundle.key_pem)))?;
    let (site, s) = (bundle.site_id.clone(), store.clone());
    let (request, state, sent_docs) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        // Only what is on disk goes out: the province records it as held by this site.
        s.durable_blocking()?;
        let mut state: PeerState = s.get_local(PEER_KEY)?.unwrap_or_default();
        let batch = protocol::build(&s, &mut state, &site, |d| d.starts_with("alert/"));
        // The batch id is used up even if the request fails: ids never repeat.
        let mut w = WriteSet::new();
        w.put_local(PEER_KEY, &state)?;
        s.commit_blocking(w)?;
        Ok((protocol::encode(&batch), state, batch.docs.len()))
    })
    .await??;
    let sent_bytes = request.len();
    let limits = Limits::default();
    let (status, answer) = net::post(
        addr,
        ca::PROVINCE_NAME,
        tls,
        "/sync/v1/exchange",
        request,
        limits.max_wire_bytes,
        Duration::from_secs(120),
    )
    .await?;
    let mut state = state;
    if status == 413 {
        protocol::too_large(&mut state);
        save_state(store, state).await?;
        anyhow::bail!("the province found the batch too large: the next one is halved");
    }
    anyhow::ensure!(
        status == 200,
        "the province refused ({status}): {}",
        String::from_utf8_lossy(&answer).trim()
    );
    let s = store.clone();
    let received_bytes = answer.len();
    let received_docs = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut s2 = s.clone();
        let batch = protocol::receive(&mut s2, &mut state, "province", &answer, &limits)?;
        let mut w = WriteSet::new();
        w.put_local(PEER_KEY, &state)?;
        s.commit_blocking(w)?;
        Ok(batch.docs.len())
    })
    .await??;
    Ok(Exchanged { sent_docs, sent_bytes, received_docs, received_bytes })
}

async fn save_state(store: &Store, state: PeerState) -> anyhow::Result<()> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = WriteSet::new();
        w.put_local(PEER_KEY, &state)?;
        s.commit_blocking(w)?;
        anyhow::Ok(())
    })
    .await?
}
