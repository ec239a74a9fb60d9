//! The sync benchmark binary (`cargo bench -p outpost --bench sync`), issue 5's figures
//! in one run:
//!
//! 1. a site 14 days offline with 300 people (declarations three times a day, alerts, follow-up
//!    sheets, presence days) pushed to a provincial server over HTTPS with mutual TLS on loopback:
//!    round trips, bytes on the wire, wall time — beside the same documents synced with Automerge's
//!    own sync protocol, document by document (in memory: its messages and bytes, no network);
//! 2. an exchange with nothing new: round trips and bytes.
//!
//! Goals (issue 5): fewer bytes and ≥ 10× fewer round trips than Automerge's protocol; nothing new in
//! one round trip under 1 KB. The province's pull cycle over 200 sites is `outpost-tests`'s
//! `province` benchmark, on sled and on PostgreSQL.

use std::time::Instant;

use automerge::sync::SyncDoc;
use outpost_link::{site::SiteLink, token::Token};
use outpost_province::server::{Province, Server};
use outpost_sync::Store;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z").expect("time").to_utc()
}

/// A site's store at `data`, seeded with `people` over `days`; the number of documents.
fn seeded_site(data: &std::path::Path, site: &str, people: usize, days: u32, cache: u64) -> (Store, usize) {
    outpost::demo::seeded_store(data, site, (people, days), now(), cache).expect("seeded")
}

/// Enrols `site` at `province` without the network (the token's secret straight to the registry).
fn enrol(province: &Province, site: &str) -> outpost_link::ca::Bundle {
    let token = Token::parse(&province.add_site(site, "Quận Liên Chiểu").expect("add")).expect("token");
    province.enroll(site, &token.secret, None).expect("enrol")
}

fn backlog(rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let province = Province::new(&dir.join("province"));
    province.init(&[]).expect("init");
    let bundle = enrol(&province, "demo-site");
    let server = Server::new(province);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(server.clone().serve(listener));

    let started = Instant::now();
    let (store, docs) = seeded_site(&dir.join("box"), "demo-site", 300, 14, 64 << 20);
    println!("seeded 14 days × 300 people: {docs} documents in {:.1} s", started.elapsed().as_secs_f64());

    let site = SiteLink::new(store.clone(), bundle);
    let started = Instant::now();
    let (mut round_trips, mut bytes) = (0u64, 0u64);
    loop {
        let moved = rt.block_on(site.push(&addr)).expect("an exchange");
        round_trips += 1;
        bytes += (moved.sent_bytes + moved.received_bytes) as u64;
        if moved.sent_docs == 0 && moved.received_docs == 0 {
            break;
        }
    }
    let ours_time = started.elapsed();
    println!(
        "outpost batches: {round_trips} round trips, {:.2} MB on the wire, {:.2} s wall time (HTTPS, mutual TLS, loopback, durable on both sides)",
        bytes as f64 / 1e6,
        ours_time.as_secs_f64()
    );

    // The same documents with Automerge's own sync protocol, one document at a time, to an empty
    // peer: every message counted; a round trip is a message and its answer.
    let started = Instant::now();
    let (mut am_messages, mut am_bytes, mut am_round_trips, mut longest) = (0u64, 0u64, 0u64, 0u64);
    for (_, doc_id) in store.changes_since(0, usize::MAX).expect("log") {
        let mut ours = store.document(&doc_id).expect("read").expect("document");
        let mut theirs = automerge::AutoCommit::new();
        let (mut s1, mut s2) = (automerge::sync::State::new(), automerge::sync::State::new());
        let mut messages = 0u64;
        // One message from `from` to `to`, through its encoding; whether there was one.
        let mut relay = |from: &mut automerge::AutoCommit,
                         fs: &mut automerge::sync::State,
                         to: &mut automerge::AutoCommit,
                         ts: &mut automerge::sync::State| {
            let Some(m) = from.sync().generate_sync_message(fs) else { return false };
            let encoded = m.encode();
            am_bytes += encoded.len() as u64;
            messages += 1;
            let m = automerge::sync::Message::decode(&encoded).expect("decode");
            to.sync().receive_sync_message(ts, m).expect("receive");
            true
        };
        loop {
            let there = relay(&mut ours, &mut s1, &mut theirs, &mut s2);
            let back = relay(&mut theirs, &mut s2, &mut ours, &mut s1);
            if !there && !back {
                break;
            }
        }
        assert_eq!(ours.get_heads(), theirs.get_heads(), "{doc_id} synced");
        am_messages += messages;
        am_round_trips += messages.div_ceil(2);
        longest = longest.max(messages.div_ceil(2));
    }
    let am_time = started.elapsed();
    println!(
        "automerge sync, document by document: {am_round_trips} round trips ({am_messages} messages; {longest} if every document ran at once on one connection), {:.2} MB, {:.2} s (in memory, no network, nothing durable)",
        am_bytes as f64 / 1e6,
        am_time.as_secs_f64()
    );
    println!(
        "ratios (automerge ÷ outpost): round trips {:.0}×, bytes {:.2}×",
        am_round_trips as f64 / round_trips as f64,
        am_bytes as f64 / bytes as f64
    );

    // Nothing new.
    let moved = rt.block_on(site.push(&addr)).expect("an exchange");
    assert_eq!((moved.sent_docs, moved.received_docs), (0, 0));
    println!(
        "an exchange with nothing new: 1 round trip, {} bytes out, {} bytes back ({} in all)",
        moved.sent_bytes,
        moved.received_bytes,
        moved.sent_bytes + moved.received_bytes
    );
    store.close().expect("close");
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    backlog(&rt, dir.path());
}
