//! Walks the box's own route table: without a session nothing but the public routes answers (pages
//! redirect to the login, the API says 401), and a manager (read-only) is refused every write and every
//! administrator route — before any handler runs.

use outpost::web::{routes, Access};
use outpost_tests::{BoxProcess, Client};
use serde_json::json;

use crate::PASSWORD;

fn call(c: &mut Client, method: &axum::http::Method, path: &str) -> outpost_tests::Answer {
    match method.as_str() {
        "GET" => c.get(path),
        "PUT" => c.put_json(path, &json!({})),
        _ if path.starts_with("/api/") => c.post_json(path, &json!({})),
        _ => c.post_form(path, &[]),
    }
}

#[test]
fn only_public_routes_answer_without_a_session_and_managers_cannot_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The broker's TLS port on, so that the certificate's route has a certificate to serve.
    let b = BoxProcess::start("run", &dir.path().join("data"), &["--mqtt-tls", "127.0.0.1:0"]);
    let mut admin = Client::new(&b.url);
    admin.setup_admin(b.setup_link.as_deref().expect("setup link"), "admin.access", PASSWORD);
    for (name, role) in [("quanly.binh", "manager"), ("yte.chau", "medical")] {
        let res = admin.post_form(
            "/users",
            &[
                ("display_name", name),
                ("username", name),
                ("role", role),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    }

    let public = [
        "/healthz",
        "/static/{file}",
        "/lang/{code}",
        "/login",
        // The box's own certificate (public by nature), for phones to trust it before logging in.
        "/box.crt",
        "/setup/{token}",
        "/d/{token}",
        "/api/v1/declare/{token}",
        "/c/{token}",
        "/api/v1/position/{token}",
        "/s/{token}",
    ];
    let mut anonymous = Client::new(&b.url);
    let mut checked = 0;
    for r in routes() {
        let path = r.example_path();
        if r.access == Access::Public {
            assert!(
                public.contains(&r.path),
                "{} {} is public but not in the reviewed list",
                r.method,
                r.path
            );
            continue;
        }
        let a = call(&mut anonymous, &r.method, &path);
        let refused = if path.starts_with("/api/") || r.method != axum::http::Method::GET {
            a.status == 401
        } else {
            a.status == 303 && a.location.as_deref().is_some_and(|l| l.starts_with("/login"))
        };
        assert!(refused, "{} {path} answered {} without a session: {}", r.method, a.status, a.body);
        checked += 1;
    }
    assert!(checked > 40, "walked {checked} routes");

    // A personal page answers only with a valid token.
    assert_eq!(anonymous.get("/d/0123456789abcdef0123456789abcdef").status, 404);
    assert_eq!(
        anonymous.get("/setup/0123456789abcdef0123456789abcdef").status,
        404,
        "the setup link is spent"
    );
    // A forged or unknown bearer token is refused.
    let mut forged = Client::new(&b.url);
    forged.bearer = Some("op_forged".into());
    assert_eq!(forged.get("/api/v1/people").status, 401);

    let mut manager = Client::new(&b.url);
    assert_eq!(manager.login("quanly.binh", PASSWORD).status, 303);
    for r in routes() {
        if r.path == "/events" || r.path == "/logout" {
            continue; // an endless stream; ending the session
        }
        let path = r.example_path();
        let a = call(&mut manager, &r.method, &path);
        match r.access {
            Access::Writer | Access::Admin => {
                assert_eq!(a.status, 403, "manager reached {} {path}: {}", r.method, a.body)
            }
            Access::Staff if r.method == axum::http::Method::GET && !path.contains("/x") => {
                assert_eq!(a.status, 200, "manager cannot read {path}: {}", a.body)
            }
            _ => {}
        }
    }

    // A medical account may write but not administer.
    let mut medical = Client::new(&b.url);
    assert_eq!(medical.login("yte.chau", PASSWORD).status, 303);
    assert_eq!(medical.get("/users").status, 403);
    assert_eq!(medical.get("/people/new").status, 200);
}
