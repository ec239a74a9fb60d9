//! One exchange, both ends. An exchange is one turn of the batch protocol over HTTPS: the side that
//! calls sends its batch and takes the answer in; the side that answers applies the batch, makes it
//! durable and answers with its own. Either side may call — a site behind NAT pushes to the
//! province, the province pulls from the sites it can reach — with the same batches and the same
//! state about the peer (kept box-local under [`PEER_KEY`]), one exchange at a time per pair.
//!
//! Here: the turn functions both ends use, the call that makes one exchange, what an exchange moved
//! and the progress of a link ([`LinkLog`]). A site's end is in [`crate::site`].

use std::{sync::Arc, time::Duration};

use outpost_sync::protocol::{self, Limits, PeerState, Side};

use crate::net::{self, Peer, Resp};

/// Box-local key of the protocol's state about the peer (on a site: the province; in a site's store
/// at the province: the site).
pub const PEER_KEY: &str = "sync/peer";
/// The name the provincial server sends batches under.
pub const PROVINCE: &str = "province";
/// The exchange endpoint, on both ends.
pub const EXCHANGE_PATH: &str = "/sync/v1/exchange";

fn is_urgent(doc_id: &str) -> bool {
    doc_id.starts_with("alert/")
}

/// What one exchange moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchanged {
    pub sent_docs: usize,
    pub sent_bytes: usize,
    pub received_docs: usize,
    pub received_bytes: usize,
    /// How far the peer's clock was ahead of this side's when its batch arrived (negative: behind),
    /// if it said; seconds of network delay are in it too.
    pub peer_clock_ahead_ms: Option<i64>,
    /// The peer's clock when it built its batch (milliseconds since 1970), if it said.
    pub peer_time_ms: Option<i64>,
}

/// A side's clock, read when a batch is built and when the peer's arrives.
pub type Now = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// The machine's clock.
pub fn system_now() -> Now {
    Arc::new(chrono::Utc::now)
}

/// How far the clock that stamped `batch` was ahead of `now`, if it said.
fn clock_ahead(batch: &protocol::Batch, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    (batch.sent_at_ms != 0).then(|| batch.sent_at_ms.saturating_sub(now.timestamp_millis()))
}

/// The progress of a link with one peer, whichever side called: what both ends show.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LinkLog {
    pub last_attempt: Option<chrono::DateTime<chrono::Utc>>,
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    pub failures_in_a_row: u32,
    pub exchanges: u64,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// How far the peer's clock was ahead of this side's at the last exchange, in seconds
    /// (negative: behind).
    #[serde(default)]
    pub peer_clock_ahead_seconds: Option<i64>,
}

impl LinkLog {
    /// Takes in the outcome of an exchange at `now`.
    pub fn record(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        outcome: Result<&Exchanged, &anyhow::Error>,
    ) {
        self.last_attempt = Some(now);
        match outcome {
            Ok(moved) => {
                self.last_success = Some(now);
                self.last_error = None;
                self.failures_in_a_row = 0;
                self.exchanges += 1;
                self.sent_bytes += moved.sent_bytes as u64;
                self.received_bytes += moved.received_bytes as u64;
                if let Some(ms) = moved.peer_clock_ahead_ms {
                    self.peer_clock_ahead_seconds = Some(ms / 1000);
                }
            }
            Err(error) => {
                self.last_error = Some(format!("{error:#}"));
                self.failures_in_a_row += 1;
            }
        }
    }
}

impl Exchanged {
    /// Adds what `other` moved.
    pub fn add(&mut self, other: &Exchanged) {
        self.sent_docs += other.sent_docs;
        self.sent_bytes += other.sent_bytes;
        self.received_docs += other.received_docs;
        self.received_bytes += other.received_bytes;
        self.peer_clock_ahead_ms = other.peer_clock_ahead_ms.or(self.peer_clock_ahead_ms);
        self.peer_time_ms = other.peer_time_ms.or(self.peer_time_ms);
    }
}

/// The delay before the next attempt after `failures` failures in a row: doubling from the interval
/// up to `max`, with ±25 % jitter (`jitter` in 0..1) so that peers do not all call back at once.
pub fn backoff(interval: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let base = interval.saturating_mul(1u32 << failures.min(16)).min(max);
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Keeps `state` and waits for the flush, which covers everything applied before it too.
fn save_state(store: &impl Side, state: &PeerState) -> anyhow::Result<()> {
    store.keep_peer_state(PEER_KEY, state).map_err(anyhow::Error::msg)
}

fn load_state(store: &impl Side) -> anyhow::Result<PeerState> {
    store.peer_state(PEER_KEY).map_err(anyhow::Error::msg)
}

/// The calling side's batch at `now`, from what is on disk only (the peer records it as held by
/// this side). The batch id is used up even if the request then fails: ids never repeat.
pub fn open_turn(
    store: &impl Side,
    me: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(Vec<u8>, PeerState, usize)> {
    let mut state: PeerState = load_state(store)?;
    let mut batch = protocol::build(store, &mut state, me, is_urgent);
    batch.sent_at_ms = now.timestamp_millis();
    // In the version the peer last spoke: a box not yet upgraded is still pulled.
    batch.version = state.peer_version.unwrap_or(0);
    // Its flush comes after building: every change in the batch is on disk before it leaves (a
    // change sent and then lost in a crash would be made again with the same actor and sequence).
    save_state(store, &state)?;
    Ok((protocol::encode(&batch), state, batch.docs.len()))
}

/// Takes the answer from `peer`, arrived at `now`, in, durably; the number of documents it carried,
/// how far the peer's clock was ahead, and the peer's clock.
pub fn close_turn(
    store: &impl Side,
    mut state: PeerState,
    peer: &str,
    (answer, now): (&[u8], chrono::DateTime<chrono::Utc>),
    limits: &Limits,
) -> anyhow::Result<(usize, Option<i64>, Option<i64>)> {
    let mut docs = store.clone();
    let batch = protocol::receive(&mut docs, &mut state, peer, answer, limits)?;
    save_state(store, &state)?;
    Ok((batch.docs.len(), clock_ahead(&batch, now), (batch.sent_at_ms != 0).then_some(batch.sent_at_ms)))
}

/// The answering side, at `now`: applies `peer`'s batch durably and answers with this side's own;
/// the answer's bytes and what moved. A refused batch is a [`protocol::ReceiveError`] (downcast to
/// tell it from a failure of this side).
pub fn answer_turn(
    store: &impl Side,
    (me, now): (&str, chrono::DateTime<chrono::Utc>),
    peer: &str,
    bytes: &[u8],
    limits: &Limits,
) -> anyhow::Result<(Vec<u8>, Exchanged)> {
    let mut docs = store.clone();
    let mut state: PeerState = load_state(store)?;
    let received = protocol::receive(&mut docs, &mut state, peer, bytes, limits)?;
    let mut answer = protocol::build(store, &mut state, me, is_urgent);
    answer.sent_at_ms = now.timestamp_millis();
    // Answered in the version the peer spoke: a box not yet upgraded keeps syncing.
    answer.version = received.version;
    // Only what is on disk goes out (the peer records it as held by this side): flushed with the state.
    save_state(store, &state)?;
    let encoded = protocol::encode(&answer);
    let moved = Exchanged {
        sent_docs: answer.docs.len(),
        sent_bytes: encoded.len(),
        received_docs: received.docs.len(),
        received_bytes: bytes.len(),
        peer_clock_ahead_ms: clock_ahead(&received, now),
        peer_time_ms: (received.sent_at_ms != 0).then_some(received.sent_at_ms),
    };
    Ok((encoded, moved))
}

/// The answering side's HTTP answer for the outcome of [`answer_turn`]: the answer's bytes, or 413
/// for a batch too large, 400 for a refused one, 500 (details in the log only) for a failure of this
/// side. What moved, or the error, is given back for the caller's log.
pub fn answer_response(work: anyhow::Result<(Vec<u8>, Exchanged)>) -> (Resp, anyhow::Result<Exchanged>) {
    let (bytes, moved) = match work {
        Ok(done) => done,
        Err(e) => {
            let resp = match e.downcast_ref::<protocol::ReceiveError>() {
                Some(refused @ protocol::ReceiveError::Protocol(protocol::ProtocolError::TooLarge(_))) => {
                    text(413, refused.to_string())
                }
                Some(refused) => text(400, refused.to_string()),
                None => {
                    tracing::error!(error = %format!("{e:#}"), "An exchange failed.");
                    text(500, "the exchange could not be completed; it is logged".into())
                }
            };
            return (resp, Err(e));
        }
    };
    ((200, "application/octet-stream", bytes), Ok(moved))
}

/// The answer while an exchange with the same peer is in progress the other way: the caller tries
/// again later. (Waiting would deadlock: each side holds its turn while it calls the other.)
pub fn busy() -> Resp {
    text(409, "an exchange with this peer is in progress; try again later".into())
}

/// The peer was in an exchange with this side the other way (it answered 409): not a failure of the
/// link; the caller tries again shortly.
#[derive(Debug, thiserror::Error)]
#[error("{0} was in an exchange with this side the other way; trying again shortly")]
pub struct Busy(pub String);

/// Whether `error` is only [`Busy`].
pub fn is_busy(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Busy>().is_some()
}

/// A plain-text answer.
pub fn text(status: u16, msg: String) -> Resp {
    (status, "text/plain; charset=utf-8", format!("{msg}\n").into_bytes())
}

/// One exchange called by `me` (whose clock is `now`) towards `peer_id` at `target`: this side's
/// batch out, the answer in, both durable. Store work runs on the blocking pool.
pub async fn call(
    store: &impl Side,
    (me, now): (&str, &Now),
    peer_id: &str,
    target: Peer<'_>,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Exchanged> {
    let (s, who, at) = (store.clone(), me.to_owned(), now());
    let (request, state, sent_docs) = tokio::task::spawn_blocking(move || open_turn(&s, &who, at)).await??;
    let sent_bytes = request.len();
    let limits = Limits::default();
    let (status, answer) =
        net::post(target, tls, EXCHANGE_PATH, request, limits.max_wire_bytes, Duration::from_secs(120))
            .await?;
    if status == 413 {
        let (s, mut state) = (store.clone(), state);
        tokio::task::spawn_blocking(move || {
            protocol::too_large(&mut state);
            save_state(&s, &state)
        })
        .await??;
        anyhow::bail!("{peer_id} found the batch too large: the next one is halved");
    }
    if status == 409 {
        return Err(Busy(peer_id.to_owned()).into());
    }
    anyhow::ensure!(
        status == 200,
        "{peer_id} refused ({status}): {}",
        String::from_utf8_lossy(&answer).trim()
    );
    let (s, peer) = (store.clone(), peer_id.to_owned());
    let received_bytes = answer.len();
    let at = now();
    let (received_docs, peer_clock_ahead_ms, peer_time_ms) =
        tokio::task::spawn_blocking(move || close_turn(&s, state, &peer, (&answer, at), &limits)).await??;
    Ok(Exchanged { sent_docs, sent_bytes, received_docs, received_bytes, peer_clock_ahead_ms, peer_time_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_the_cap_with_jitter() {
        let (i, max) = (Duration::from_secs(60), Duration::from_secs(1800));
        assert_eq!(backoff(i, max, 1, 0.5), Duration::from_secs(120));
        assert_eq!(backoff(i, max, 3, 0.5), Duration::from_secs(480));
        assert_eq!(backoff(i, max, 30, 0.5), max);
        assert_eq!(backoff(i, max, 1, 0.0), Duration::from_secs(90));
        assert_eq!(backoff(i, max, 1, 1.0), Duration::from_secs(150));
    }
}
