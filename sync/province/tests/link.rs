//! The sync link end to end in one process: the province's server over HTTPS with mutual TLS, and
//! two sites' stores. Enrolment is one-time; records flow both ways; a site's certificate cannot
//! act for another site or read its data; a revoked site and a client without a certificate are
//! refused.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use outpost_province::{
    ca, link, net,
    server::{Province, Server},
};
use outpost_sync::{
    protocol,
    record::{Alert, AlertKind, AlertState, Severity},
    Store, StoreConfig, WriteSet,
};

fn alert(id: &str) -> Alert {
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).single().expect("time");
    Alert::new(id.into(), AlertKind::Fever, Severity::Warning, "p1", "d1", "38.5".into(), at)
}

/// POSTs raw bytes to the exchange endpoint: the status and the answer.
async fn exchange_raw(
    addr: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
    body: Vec<u8>,
) -> (u16, bytes::Bytes) {
    net::post(addr, ca::PROVINCE_NAME, tls, "/sync/v1/exchange", body, 1 << 20, Duration::from_secs(10))
        .await
        .expect("post")
}

async fn put(store: &Store, a: &Alert) {
    let mut w = WriteSet::new();
    w.put(a).expect("put");
    store.commit(w).await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_enrol_once_sync_both_ways_and_stay_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let province = Province::new(&dir.path().join("province"));
    province.init(&[]).expect("init");
    let token_a = province.add_site("site-a", "Liên Chiểu").expect("add");
    let token_b = province.add_site("site-b", "Hòa Vang").expect("add");
    let server = Server::new(province.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(server.clone().serve(listener));

    // Enrolment: once per token; a token with another CA's fingerprint gets nowhere.
    let bundle_a = link::enroll(&addr, &token_a).await.expect("enrol site-a");
    assert_eq!(bundle_a.site_id, "site-a");
    let again = link::enroll(&addr, &token_a).await.expect_err("a token works once");
    assert!(format!("{again:#}").contains("refused"), "{again:#}");
    let forged = format!("{}{}", &token_b[..token_b.len() - 64], "A".repeat(64));
    assert!(link::enroll(&addr, &forged).await.is_err(), "the CA is pinned by the token");
    let bundle_b = link::enroll(&addr, &token_b).await.expect("enrol site-b");

    // Records go up; an edit at the province comes back.
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let site_a = Store::open(&da, &StoreConfig::default()).expect("store a");
    let site_b = Store::open(&db, &StoreConfig::default()).expect("store b");
    put(&site_a, &alert("a1")).await;
    put(&site_a, &alert("a2")).await;
    put(&site_b, &alert("b1")).await;
    let moved = link::exchange(&site_a, &bundle_a, &addr).await.expect("exchange");
    assert_eq!(moved.sent_docs, 2);
    let at_province = server.store("site-a").expect("store");
    assert_eq!(at_province.list::<Alert>().expect("list").len(), 2);
    let mut acked = at_province.get::<Alert>("a1").expect("get").expect("a1");
    acked.state = AlertState::Acknowledged;
    put(&at_province, &acked).await;
    link::exchange(&site_a, &bundle_a, &addr).await.expect("exchange");
    assert_eq!(site_a.get::<Alert>("a1").expect("get").expect("a1").state, AlertState::Acknowledged);

    // Site b gets nothing of site a's, and cannot claim to be site a.
    let moved = link::exchange(&site_b, &bundle_b, &addr).await.expect("exchange");
    assert_eq!(moved.received_docs, 0);
    assert_eq!(site_b.list::<Alert>().expect("list").len(), 1);
    let mut state = protocol::PeerState::default();
    let claim = protocol::encode(&protocol::build(&site_b, &mut state, "site-a", |_| false));
    let tls_b =
        net::client_config(&bundle_b.ca_pem, Some((&bundle_b.cert_pem, &bundle_b.key_pem))).expect("tls");
    let (status, body) = exchange_raw(&addr, tls_b, claim).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(server.store("site-a").expect("store").get::<Alert>("b1").expect("get").is_none());

    // No certificate: refused; garbage: refused with a reason.
    let anonymous = net::client_config(&bundle_a.ca_pem, None).expect("tls");
    let (status, _) = exchange_raw(&addr, anonymous, b"x".to_vec()).await;
    assert_eq!(status, 401);
    let tls_a =
        net::client_config(&bundle_a.ca_pem, Some((&bundle_a.cert_pem, &bundle_a.key_pem))).expect("tls");
    let (status, body) = exchange_raw(&addr, tls_a, b"not a batch".to_vec()).await;
    assert_eq!((status, String::from_utf8_lossy(&body).trim()), (400, "not a sync batch"));

    // Site ids are lower case: `SITE-A` is not another site beside `site-a`.
    assert!(province.add_site("SITE-A", "").is_err());

    // Revoked: refused, and nothing it sends is kept.
    province.revoke_site("site-a").expect("revoke");
    put(&site_a, &alert("a3")).await;
    let error = link::exchange(&site_a, &bundle_a, &addr).await.expect_err("revoked");
    assert!(format!("{error:#}").contains("403"), "{error:#}");
    assert!(server.store("site-a").expect("store").get::<Alert>("a3").expect("get").is_none());

    // A replacement box gets a new token and certificate; the old certificate stays refused.
    let renewed = province.add_site("site-a", "Liên Chiểu").expect("add again");
    let replacement = link::enroll(&addr, &renewed).await.expect("enrol the replacement");
    assert!(link::exchange(&site_a, &bundle_a, &addr).await.is_err(), "the old certificate is refused");
    link::exchange(&site_a, &replacement, &addr).await.expect("the new one works");
    assert!(server.store("site-a").expect("store").get::<Alert>("a3").expect("get").is_some());
}
