//! `outpost demo`, as the README tells a newcomer to run it: a seeded site with about fifty people with
//! Vietnamese names, the address and a one-time setup link printed; restarting keeps the same site.

use outpost_tests::{BoxProcess, Client};

use crate::PASSWORD;

#[test]
fn demo_seeds_a_site_and_prints_its_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let mut b = BoxProcess::start("demo", &data, &[]);
    assert!(b.printed.iter().any(|l| l == "Demo site seeded with 50 people."), "{:#?}", b.printed);
    assert!(b.url.starts_with("http://127.0.0.1:"), "{}", b.url);
    let link = b.setup_link.clone().expect("a setup link on first start");
    assert!(link.starts_with(&format!("{}/setup/", b.url)), "{link}");

    let mut c = Client::new(&b.url);
    c.setup_admin(&link, "admin.demo", PASSWORD);
    let people = c.get("/api/v1/people").json();
    let people = people.as_array().expect("people");
    assert_eq!(people.len(), 50);
    assert!(
        people.iter().any(|p| p["full_name"].as_str().is_some_and(|n| n.starts_with("Nguyễn "))),
        "Vietnamese names"
    );
    let dashboard = c.get("/");
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("Đang cách ly"), "the dashboard speaks Vietnamese first");
    let switch = c.get("/lang/en?back=/people");
    assert_eq!((switch.status, switch.location.as_deref()), (303, Some("/people")));
    let people_page = c.get("/people");
    assert!(
        people_page.body.contains("People in quarantine") && people_page.body.contains("lang=\"en\""),
        "English on request"
    );
    assert_eq!(c.get("/lang/vi").status, 303);
    assert!(b.stop().success());

    let b = BoxProcess::start("demo", &data, &[]);
    assert!(
        !b.printed.iter().any(|l| l.contains("seeded")),
        "a restarted demo keeps its site: {:#?}",
        b.printed
    );
    assert!(b.setup_link.is_none(), "no setup link once an administrator exists");
    let mut c = Client::new(&b.url);
    assert_eq!(c.login("admin.demo", PASSWORD).status, 303);
    assert_eq!(c.get("/api/v1/people").json().as_array().expect("people").len(), 50);
}
