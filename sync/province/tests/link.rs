//! The sync link end to end in one process: the province's server over HTTPS with mutual TLS, and
//! two sites' stores. Enrolment is one-time; records flow both ways; a site's certificate cannot
//! act for another site or read its data; a revoked site and a client without a certificate are
//! refused.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use outpost_link::{exchange, net, site};
use outpost_province::{
    docs::SiteDocs,
    server::{Province, Server},
};
use outpost_sync::{
    protocol,
    record::{Alert, AlertKind, AlertState, Contact, Exposure, Severity},
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
    net::post(net::Peer::province(addr), tls, "/sync/v1/exchange", body, 1 << 20, Duration::from_secs(10))
        .await
        .expect("post")
}

/// Writes `a` into a site's store or the province's documents of a site.
async fn put<R: outpost_sync::record::Record>(store: &(impl Clone + Into<SiteDocs>), a: &R) {
    let mut w = WriteSet::new();
    w.put(a).expect("put");
    store.clone().into().commit(w).await.expect("commit");
}

/// A province in `dir` serving on loopback, with site-a (Liên Chiểu) and site-b (Hòa Vang) added:
/// the province, its server, its address and the two enrolment tokens.
async fn start_province(dir: &std::path::Path) -> (Province, Server, String, [String; 2]) {
    let province = Province::new(&dir.join("province"));
    province.init(&[]).expect("init");
    let token_a = province.add_site("site-a", "Liên Chiểu").expect("add");
    let token_b = province.add_site("site-b", "Hòa Vang").expect("add");
    let server = Server::new(province.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(server.clone().serve(listener));
    (province, server, addr, [token_a, token_b])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_enrol_once_sync_both_ways_and_stay_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (province, server, addr, [token_a, token_b]) = start_province(dir.path()).await;

    // Enrolment: once per token; a token with another CA's fingerprint gets nowhere.
    let bundle_a = site::enroll(&addr, &token_a).await.expect("enrol site-a");
    assert_eq!(bundle_a.site_id, "site-a");
    let again = site::enroll(&addr, &token_a).await.expect_err("a token works once");
    assert!(format!("{again:#}").contains("refused"), "{again:#}");
    let forged = format!("{}{}", &token_b[..token_b.len() - 64], "A".repeat(64));
    assert!(site::enroll(&addr, &forged).await.is_err(), "the CA is pinned by the token");
    // A key that is not one is refused, and the token stays good.
    let parsed = outpost_link::token::Token::parse(&token_b).expect("token");
    for bad in ["zz", "04abcd"] {
        let body = serde_json::to_vec(
            &serde_json::json!({"site": "site-b", "secret": parsed.secret, "public_key": bad}),
        )
        .expect("json");
        let tls = net::pinned_client_config(&parsed.ca_fingerprint);
        let (status, answer) = net::post(
            net::Peer::province(&addr),
            tls,
            "/sync/v1/enroll",
            body,
            1 << 20,
            Duration::from_secs(10),
        )
        .await
        .expect("post");
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    }
    let bundle_b = site::enroll(&addr, &token_b).await.expect("enrol site-b");
    // The box made its key: the province signed its public half and never had the private one.
    let key = rcgen::KeyPair::from_pem(&bundle_b.key_pem).expect("the box's key");
    let cert = outpost_link::ca::first_der(&bundle_b.cert_pem).expect("cert");
    assert!(cert.windows(65).any(|w| w == key.public_key_raw()));

    // Records go up; an edit at the province comes back.
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let site_a = Store::open(&da, &StoreConfig::default()).expect("store a");
    let site_b = Store::open(&db, &StoreConfig::default()).expect("store b");
    put(&site_a, &alert("a1")).await;
    put(&site_a, &alert("a2")).await;
    put(&site_b, &alert("b1")).await;
    // An exposure list, derived on the box: names and minutes, no sightings.
    let contact = Contact {
        full_name: "Trần Văn B".into(),
        room: "A12".into(),
        minutes: 40,
        days: [("2026-11-21".to_owned(), [("phong-a12".to_owned(), 40)].into())].into(),
    };
    let exposure = Exposure {
        person_id: "p1".into(),
        computed_at: Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).single().expect("t"),
        days: 14,
        reason: "converted_f0".into(),
        contacts: [("p2".to_owned(), contact)].into(),
    };
    put(&site_a, &exposure).await;
    let moved = site::SiteLink::new(site_a.clone(), bundle_a.clone()).push(&addr).await.expect("exchange");
    assert_eq!(moved.sent_docs, 3);
    let at_province = server.store("site-a").expect("store");
    assert_eq!(at_province.list::<Alert>().expect("list").len(), 2);
    assert_eq!(
        at_province.get::<Exposure>("p1").expect("get"),
        Some(exposure),
        "the derived list reached the province"
    );
    let mut acked = at_province.get::<Alert>("a1").expect("get").expect("a1");
    acked.state = AlertState::Acknowledged;
    put(&at_province, &acked).await;
    site::SiteLink::new(site_a.clone(), bundle_a.clone()).push(&addr).await.expect("exchange");
    assert_eq!(site_a.get::<Alert>("a1").expect("get").expect("a1").state, AlertState::Acknowledged);

    // Site b gets nothing of site a's, and cannot claim to be site a.
    let moved = site::SiteLink::new(site_b.clone(), bundle_b.clone()).push(&addr).await.expect("exchange");
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
    let error = site::SiteLink::new(site_a.clone(), bundle_a.clone()).push(&addr).await.expect_err("revoked");
    assert!(format!("{error:#}").contains("403"), "{error:#}");
    assert!(server.store("site-a").expect("store").get::<Alert>("a3").expect("get").is_none());

    // A replacement box gets a new token and certificate; the old certificate stays refused.
    // A token renewed without a district keeps the site's; the old certificate is refused at once,
    // before the replacement enrols.
    let renewed = province.add_site("site-a", "").expect("add again");
    assert_eq!(province.site("site-a").expect("site").expect("site-a").district, "Liên Chiểu");
    assert!(site::SiteLink::new(site_a.clone(), bundle_a.clone()).push(&addr).await.is_err());
    let replacement = site::enroll(&addr, &renewed).await.expect("enrol the replacement");
    assert!(
        site::SiteLink::new(site_a.clone(), bundle_a.clone()).push(&addr).await.is_err(),
        "the old certificate is refused"
    );
    site::SiteLink::new(site_a.clone(), replacement.clone()).push(&addr).await.expect("the new one works");
    assert!(server.store("site-a").expect("store").get::<Alert>("a3").expect("get").is_some());
}

/// Starts site `bundle`'s pull server on loopback; its address.
async fn serve_pulls(site: &site::SiteLink) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(site.clone().serve_pulls(listener, std::sync::Arc::new(|_| {})));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_province_pulls_the_sites_it_can_reach_and_only_it_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (province, server, province_addr, [token_a, token_b]) = start_province(dir.path()).await;
    let bundle_a = site::enroll(&province_addr, &token_a).await.expect("enrol a");
    let bundle_b = site::enroll(&province_addr, &token_b).await.expect("enrol b");
    let store_a = Store::open(&dir.path().join("a"), &StoreConfig::default()).expect("store a");
    let store_b = Store::open(&dir.path().join("b"), &StoreConfig::default()).expect("store b");
    let (site_a, site_b) =
        (site::SiteLink::new(store_a.clone(), bundle_a), site::SiteLink::new(store_b, bundle_b.clone()));
    let (addr_a, addr_b) = (serve_pulls(&site_a).await, serve_pulls(&site_b).await);

    // Not pulled before it has an address; an address must look like one.
    assert!(server.reachable_sites().expect("sites").is_empty());
    assert!(province.set_address("site-a", Some("nowhere")).is_err());
    province.set_address("site-a", Some(&addr_a)).expect("address");

    // A pull brings the site's records; an edit at the province reaches the site at the next one.
    put(&store_a, &alert("a1")).await;
    let pulled = server.pull_sites(server.reachable_sites().expect("sites"), 4, 10).await;
    assert_eq!(pulled.len(), 1);
    let moved = pulled[0].1.as_ref().expect("pull");
    assert_eq!(moved.received_docs, 1);
    let at_province = server.store("site-a").expect("store");
    let mut acked = at_province.get::<Alert>("a1").expect("get").expect("a1 at the province");
    acked.state = AlertState::Acknowledged;
    put(&at_province, &acked).await;
    server.pull("site-a").await.expect("pull");
    assert_eq!(store_a.get::<Alert>("a1").expect("get").expect("a1").state, AlertState::Acknowledged);
    let log = province.sync_log("site-a");
    assert_eq!(
        (log.last_direction.as_str(), log.link.exchanges, log.link.last_error),
        ("pull", 3, None),
        "two pulls in the cycle, one after the edit"
    );

    // Pushes and pulls of one site interleave and converge.
    for i in 0..6 {
        put(&store_a, &alert(&format!("x{i}"))).await;
        put(&at_province, &alert(&format!("p{i}"))).await;
        // When they meet, the side called second answers "busy" (409) rather than wait for the
        // other, which waits for it.
        let (pushed, pulled) = tokio::join!(site_a.push(&province_addr), server.pull("site-a"));
        for outcome in [pushed, pulled] {
            if let Err(e) = outcome {
                assert!(exchange::is_busy(&e), "{e:#}");
            }
        }
    }
    for _ in 0..2 {
        server.pull("site-a").await.expect("pull");
        site_a.push(&province_addr).await.expect("push");
    }
    let ids = |s: SiteDocs| {
        let mut v: Vec<String> = s.list::<Alert>().expect("list").into_iter().map(|a| a.id).collect();
        v.sort();
        v
    };
    assert_eq!(ids(store_a.clone().into()), ids(at_province.clone()));
    assert_eq!(ids(store_a.clone().into()).len(), 13);

    // Site b's address given for site a: the certificate names site b, and nothing is sent.
    province.set_address("site-a", Some(&addr_b)).expect("address");
    let error = server.pull("site-a").await.expect_err("the wrong site answers");
    assert!(format!("{error:#}").contains("TLS"), "{error:#}");
    province.set_address("site-a", Some(&addr_a)).expect("address");

    // Site b's certificate (CA-signed, but not the province's) cannot pull site a.
    let mut state = protocol::PeerState::default();
    let claim = protocol::encode(&protocol::build(&at_province, &mut state, "province", |_| false));
    let tls_b =
        net::client_config(&bundle_b.ca_pem, Some((&bundle_b.cert_pem, &bundle_b.key_pem))).expect("tls");
    let target = net::Peer { addr: &addr_a, name: "site-a.sites.outpost", pin: None };
    let (status, body) =
        net::post(target, tls_b, exchange::EXCHANGE_PATH, claim.clone(), 1 << 20, Duration::from_secs(10))
            .await
            .expect("post");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let anonymous = net::client_config(&bundle_b.ca_pem, None).expect("tls");
    let (status, _) =
        net::post(target, anonymous, exchange::EXCHANGE_PATH, claim, 1 << 20, Duration::from_secs(10))
            .await
            .expect("post");
    assert_eq!(status, 403);

    // Revoked: the province no longer pulls it.
    province.revoke_site("site-a").expect("revoke");
    assert!(server.reachable_sites().expect("sites").is_empty());
    assert!(server.pull("site-a").await.is_err());
}
