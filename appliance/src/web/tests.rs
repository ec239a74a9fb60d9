//! The router in process, through `tower::ServiceExt::oneshot` (no socket, no binary): the access
//! table enforced for every route and role, the one error path rendering JSON or a page in the
//! caller's language, and the API description matching the table.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
    response::Response,
    Router,
};
use outpost_sync::record::{PersonStatus, Role};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{kit::SESSION_COOKIE, router, routes, Access, AppState};
use crate::{
    app::{accounts::AccountInput, testing, Outpost},
    services::Services,
};

const PASSWORD: &str = "thu-nghiem-mat-khau-2026";
/// A public form's CSRF token, as its cookie and its field.
const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// A box on a temporary store with three accounts, and each one's session cookie.
struct Fixture {
    _dir: tempfile::TempDir,
    app: Arc<Outpost>,
    store: outpost_sync::Store,
    router: Router,
    /// Each account's session cookie and CSRF token.
    admin: (String, String),
    medical: (String, String),
    manager: (String, String),
}

fn account(name: &str) -> AccountInput {
    AccountInput {
        username: name.into(),
        display_name: name.into(),
        password: PASSWORD.into(),
        password2: PASSWORD.into(),
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, _, store) = testing::outpost(&dir, "2026-11-21T02:00:00Z", "");
    let issuing = app.clone();
    let setup = tokio::task::spawn_blocking(move || issuing.issue_setup_link())
        .await
        .expect("joined")
        .expect("setup")
        .expect("a link while no account exists");
    let admin = app.create_first_admin(&setup, account("quantri")).await.expect("first admin");
    let mut sessions = Vec::new();
    for (name, role) in [("yte.chau", Role::Medical), ("quanly.binh", Role::Manager)] {
        app.add_user(account(name), Ok(role), "quantri").await.expect("account");
        sessions.push(app.log_in(name, PASSWORD, None).await.expect("login").expect("a session"));
    }
    let with_csrf = |s: String| {
        let csrf = app.staff_for_session(&s).and_then(|s| s.csrf).expect("a live session");
        (s, csrf)
    };
    let manager = with_csrf(sessions.pop().expect("manager"));
    let medical = with_csrf(sessions.pop().expect("medical"));
    let admin = with_csrf(admin);
    let state = AppState::new(app.clone(), Services::default(), CancellationToken::new());
    Fixture { _dir: dir, router: router(state), app, store, admin, medical, manager }
}

async fn call(router: &Router, req: Request<Body>) -> Response {
    router.clone().oneshot(req).await.expect("infallible")
}

/// A request with an empty body for `method`, as `session` (with its CSRF token) if given.
fn request(method: &Method, path: &str, session: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    if let Some((s, csrf)) = session {
        b = b.header(header::COOKIE, format!("{SESSION_COOKIE}={s}")).header("x-csrf-token", csrf);
    }
    if *method == Method::GET {
        b.body(Body::empty()).expect("request")
    } else {
        b.header(header::CONTENT_TYPE, "application/json").body(Body::from("{}")).expect("request")
    }
}

async fn body(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_guard_enforces_the_access_table_for_every_route_and_role() {
    let f = fixture().await;
    let mut checked = 0;
    for r in routes() {
        let path = r.example_path();
        let api = path.starts_with("/api/");
        // Nobody signed in: only public routes reach their handler.
        let res = call(&f.router, request(&r.method, &path, None)).await;
        if r.access == Access::Public {
            let to = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            assert!(
                res.status() != StatusCode::FORBIDDEN && !to.starts_with("/login"),
                "{} {path} is public but answered {}",
                r.method,
                res.status()
            );
            continue;
        }
        if api || r.method != Method::GET {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{} {path} without a session", r.method);
        } else {
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{} {path} without a session", r.method);
            let to = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            assert!(to.starts_with("/login?next="), "{path} redirects to {to}");
        }
        // Signed in: a role below the route's is refused before any handler.
        for (session, role) in
            [(&f.manager, Role::Manager), (&f.medical, Role::Medical), (&f.admin, Role::Admin)]
        {
            let allowed = match r.access {
                Access::Public | Access::Staff => true,
                Access::Writer => role.can_write(),
                Access::Admin => role == Role::Admin,
                Access::Reporter => role != Role::Medical,
            };
            if allowed && path == "/logout" {
                continue; // it would end the session the next routes use
            }
            let res = call(&f.router, request(&r.method, &path, Some((&session.0, &session.1)))).await;
            if allowed {
                assert_ne!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role:?}: {}",
                    r.method,
                    body(res).await
                );
            } else {
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "{} {path} as {role:?}", r.method);
            }
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} guarded routes");
}

#[tokio::test]
async fn errors_are_json_for_the_api_and_a_page_in_the_callers_language_elsewhere() {
    let f = fixture().await;
    // The API: JSON, with both languages and the caller's.
    let res =
        call(&f.router, request(&Method::GET, "/api/v1/people/nobody", Some((&f.admin.0, &f.admin.1)))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers()[header::CONTENT_TYPE].to_str().unwrap_or("").starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(json["error"], "not_found");
    assert_eq!(json["problems"][0]["vi"], "Không tìm thấy.");

    // A page: HTML in Vietnamese by default, in English with the language cookie; the security
    // headers are on it too.
    let res = call(&f.router, request(&Method::GET, "/people/nobody", Some((&f.admin.0, &f.admin.1)))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = body(res).await;
    assert!(html.contains("<html lang=\"vi\"") && html.contains("Không tìm thấy."), "{html}");
    let req = Request::get("/people/nobody")
        .header(header::COOKIE, format!("{SESSION_COOKIE}={}; lang=en", f.admin.0))
        .body(Body::empty())
        .expect("request");
    let html = body(call(&f.router, req).await).await;
    assert!(html.contains("<html lang=\"en\"") && html.contains("Not found."), "{html}");

    // Invalid input names its field, in JSON.
    let req = Request::post("/api/v1/people")
        .header(header::COOKIE, format!("{SESSION_COOKIE}={}", f.admin.0))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", "wrong")
        .body(Body::from("{}"))
        .expect("request");
    let res = call(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the session's CSRF token is needed");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body(res).await).expect("json")["error"], "csrf");
    let req = Request::post("/api/v1/people")
        .header(header::COOKIE, format!("{SESSION_COOKIE}={}", f.admin.0))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", &f.admin.1)
        .body(Body::from(r#"{"full_name": ""}"#))
        .expect("request");
    let res = call(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let json: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(json["error"], "invalid");
    assert!(
        json["problems"].as_array().expect("problems").iter().any(|p| p["field"] == "full_name"),
        "{json}"
    );

    // A refused write with a body closes its connection; an unknown path is a page.
    let req = Request::post("/people")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, "3")
        .body(Body::from("a=b"))
        .expect("request");
    let res = call(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::CONNECTION], "close");
    assert!(body(res).await.contains("Vui lòng đăng nhập."));
    let res = call(&f.router, request(&Method::GET, "/nowhere", None)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(body(res).await.contains("<!DOCTYPE html>"));

    // A body announced larger than the limit: 413 before anything reads it.
    let too_big = f.app.config().web.max_upload_bytes + 1;
    let req = Request::post("/api/v1/people/import")
        .header(header::CONTENT_LENGTH, too_big.to_string())
        .body(Body::empty())
        .expect("request");
    let res = call(&f.router, req).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body(res).await).expect("json")["error"],
        "too_large"
    );
}

/// A JSON request as `session`.
fn json_request(
    method: Method,
    path: &str,
    session: &(String, String),
    json: serde_json::Value,
) -> Request<Body> {
    session_request(method, path, session, ("application/json", json.to_string()))
}

/// A request as `session` (its CSRF token in the header) with a body of a content type.
fn session_request(
    method: Method,
    path: &str,
    session: &(String, String),
    (content_type, body): (&str, String),
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("{SESSION_COOKIE}={}", session.0))
        .header("x-csrf-token", &session.1)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn a_manager_reads_no_personal_link_and_guesses_no_id_number() {
    let f = fixture().await;
    let person = serde_json::json!({
        "full_name": "Phan Thị Mai", "phone": "0905333444", "id_number": "048123456700",
        "quarantine_start": "2026-11-21", "quarantine_end": "2026-12-05",
    });
    let res = call(&f.router, json_request(Method::POST, "/api/v1/people", &f.admin, person)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    let id = created["id"].as_str().expect("id");
    let get = |path: &str, who: &(String, String)| request(&Method::GET, path, Some((&who.0, &who.1)));

    // A part of the number finds no one; the whole number finds the person, and says who looked.
    for partial in ["0481", "048123", "04812345670"] {
        let res = call(&f.router, get(&format!("/api/v1/people?q={partial}"), &f.manager)).await;
        assert_eq!(body(res).await, "[]", "{partial}");
    }
    let res = call(&f.router, get("/api/v1/people?q=048123456700", &f.manager)).await;
    let found: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    let audited = f.app.audit_log(20).expect("audit");
    assert!(
        audited
            .iter()
            .any(|e| e.action == "person.search_id_number" && e.user == "quanly.binh" && e.target == id),
        "{audited:?}"
    );

    // The record without the link for a manager, with it for those who may act.
    let res = call(&f.router, get(&format!("/api/v1/people/{id}"), &f.manager)).await;
    let seen: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(seen["declare_token"], "", "{seen}");
    let res = call(&f.router, get(&format!("/api/v1/people/{id}"), &f.medical)).await;
    let seen: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(seen["declare_token"], created["declare_token"]);
    let res = call(&f.router, get(&format!("/people/{id}/qr.svg"), &f.manager)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = body(call(&f.router, get(&format!("/people/{id}"), &f.manager)).await).await;
    assert!(!page.contains(created["declare_token"].as_str().expect("token")), "no link on the page");
}

#[tokio::test]
async fn the_gate_log_is_shown_a_page_at_a_time() {
    let f = fixture().await;
    let entry = crate::app::checkin::CheckInInput {
        direction: "in".into(),
        name: "Khách".into(),
        phone: "0905123456".into(),
        purpose: "delivery".into(),
        note: String::new(),
    };
    for _ in 0..450 {
        f.app.check_in(&entry).await.expect("entry");
    }
    let get = |path: &str| request(&Method::GET, path, Some((&f.admin.0, &f.admin.1)));
    let first = body(call(&f.router, get("/checkin")).await).await;
    assert_eq!(first.matches("<tr><td>").count(), 200, "one page");
    assert!(first.contains("Trang 1 / 3 (450)"), "{}", &first[first.len().saturating_sub(2000)..]);
    let last = body(call(&f.router, get("/checkin?page=3")).await).await;
    assert_eq!(last.matches("<tr><td>").count(), 50);
    let past = body(call(&f.router, get("/checkin?page=99")).await).await;
    assert!(past.contains("Trang 3 / 3"), "a page past the end shows the last");
}

#[test]
fn the_secret_of_a_link_is_hidden_from_text() {
    use super::kit::without_link_secrets;
    assert_eq!(
        without_link_secrets(
            "Outpost: khai bao tai http://outpost.local/d/0123abcd. Kiem tra: http://x/s/ffee99"
        ),
        "Outpost: khai bao tai http://outpost.local/d/…. Kiem tra: http://x/s/…"
    );
    assert_eq!(without_link_secrets("no link here"), "no link here");
}

#[tokio::test]
async fn redirects_stay_on_the_box() {
    let f = fixture().await;
    let location = |res: &Response| {
        res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    };
    for back in [
        "/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
        "/%0D%0ASet-Cookie:%20x=1",
        "/%20/evil.example",
    ] {
        let res = call(&f.router, request(&Method::GET, &format!("/lang/en?back={back}"), None)).await;
        assert!(res.status().is_redirection(), "{back}: {}", res.status());
        assert_eq!(location(&res), "/", "{back}");
        let form = format!("csrf={CSRF}&username=quantri&password={PASSWORD}&next={back}");
        let req = Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::COOKIE, format!("outpost_csrf={CSRF}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request");
        let res = call(&f.router, req).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{back}");
        assert_eq!(location(&res), "/", "{back}");
    }
    let res = call(&f.router, request(&Method::GET, "/lang/en?back=/people%3Fq%3Dlan", None)).await;
    assert_eq!(location(&res), "/people?q=lan", "a local path is kept");
}

#[test]
fn openapi_documents_exactly_the_api_routes() {
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("../../assets/openapi.json")).expect("openapi.json parses");
    let paths = spec["paths"].as_object().expect("paths");
    let mut documented = 0;
    for r in routes().iter().filter(|r| r.path.starts_with("/api/") || r.path == "/healthz") {
        let op = &paths.get(r.path).unwrap_or_else(|| panic!("{} is not in openapi.json", r.path))
            [r.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} is not in openapi.json", r.method, r.path);
        assert_eq!(
            op.get("security").is_some(),
            r.access == Access::Public,
            "{} {}: public?",
            r.method,
            r.path
        );
        documented += 1;
    }
    let in_spec: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();
    assert_eq!(documented, in_spec, "openapi.json documents a route the box does not have");
}

#[test]
fn every_route_is_unique() {
    let mut seen = std::collections::HashSet::new();
    for r in routes() {
        assert!(seen.insert((r.method.clone(), r.path)), "{} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn an_exposure_list_is_made_on_demand_shown_and_exported() {
    let f = fixture().await;
    let person = serde_json::json!({
        "full_name": "Lê Văn Tâm", "phone": "0905333445", "id_number": "048123456701",
        "quarantine_start": "2026-11-21", "quarantine_end": "2026-12-05",
    });
    let res = call(&f.router, json_request(Method::POST, "/api/v1/people", &f.admin, person)).await;
    let created: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    let id = created["id"].as_str().expect("id");
    let as_medical = |method: &Method, path: &str| request(method, path, Some((&f.medical.0, &f.medical.1)));
    let path = format!("/api/v1/people/{id}/exposure");
    assert_eq!(call(&f.router, as_medical(&Method::GET, &path)).await.status(), StatusCode::NOT_FOUND);
    let res = call(&f.router, as_medical(&Method::POST, &path)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let made: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!((made["reason"].as_str(), made["days"].as_u64()), (Some("on_demand"), Some(14)), "{made}");
    let manager = |path: &str| request(&Method::GET, path, Some((&f.manager.0, &f.manager.1)));
    assert_eq!(call(&f.router, manager(&path)).await.status(), StatusCode::OK);
    let page = body(call(&f.router, manager(&format!("/people/{id}"))).await).await;
    assert!(page.contains(r#"id="exposure""#) && page.contains("exposure.csv"), "the person's page shows it");
    let csv = body(call(&f.router, manager(&format!("/people/{id}/exposure.csv"))).await).await;
    assert!(csv.contains("Họ và tên") && csv.contains("Số phút"), "{csv}");
    let res = call(&f.router, manager(&format!("/people/{id}/exposure.xlsx"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("xlsx");
    assert!(bytes.starts_with(b"PK"), "a workbook");
    // A manager reads it but does not make it.
    let res = call(&f.router, request(&Method::POST, &path, Some((&f.manager.0, &f.manager.1)))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_child_without_an_id_number_is_imported_and_added_by_hand_once() {
    let f = fixture().await;
    // The district's list: two children of one family without ID numbers (twins: same phone and
    // year, other names), and the first of them again, typed without accents in another case.
    let list = "Họ và tên,Năm sinh,Số điện thoại,Số CMND/CCCD,Ngày bắt đầu cách ly,Ngày kết thúc cách ly\n\
                Lê Minh An,2016,0912345678,,2026-11-20,2026-12-04\n\
                Lê Minh Anh,2016,0912345678,,2026-11-20,2026-12-04\n\
                LE MINH  AN,2016,0912 345 678,,2026-11-20,2026-12-04\n\
                Lê Văn Bố,1985,0912345678,,2026-11-20,2026-12-04\n";
    let import = |csv: &str| {
        let path = "/api/v1/people/import?valid_only=true";
        session_request(Method::POST, path, &f.medical, ("text/csv", csv.to_owned()))
    };
    let res = call(&f.router, import(list)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let out: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(out["imported"], 2, "{out}");
    let lines: Vec<u64> =
        out["errors"].as_array().expect("errors").iter().filter_map(|e| e["line"].as_u64()).collect();
    assert_eq!(lines, vec![4, 5], "the repeated child, and an adult without an ID number: {out}");
    assert!(out["errors"][1]["problems"][0]["vi"].as_str().is_some_and(|s| s.contains("dưới 14 tuổi")));
    // The same list again: both children are known now.
    let res = call(&f.router, import(list)).await;
    let out: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    assert_eq!(out["imported"], 0, "{out}");

    // By hand: a third child of the family is added; the first one again is refused, by name,
    // birth year and phone; without a birth year no one can be told apart, so it is asked for.
    let child = |name: &str, year: &str| {
        serde_json::json!({
            "full_name": name, "birth_year": year, "phone": "0912345678", "id_number": "",
            "quarantine_start": "2026-11-20", "quarantine_end": "2026-12-04", "category": "f1",
        })
    };
    let add = |json| json_request(Method::POST, "/api/v1/people", &f.medical, json);
    assert_eq!(call(&f.router, add(child("Lê Minh Châu", "2019"))).await.status(), StatusCode::CREATED);
    let res = call(&f.router, add(child("lê minh an", "2016"))).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(body(res).await.contains("năm sinh và số điện thoại"));
    assert_eq!(
        call(&f.router, add(child("Lê Minh Dũng", ""))).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let people = f.app.people("", None, None).expect("people");
    assert_eq!(people.iter().filter(|p| p.id_number.is_empty()).count(), 3);
    // A code typed at the desk that is empty finds no one (a child has no ID number to match).
    assert!(f.app.person_by_code("").is_err());
}

/// Adds a person (name, phone, ID number, room) through the API as the medical account: their id.
async fn add_person(f: &Fixture, (name, phone, id_number, room): (&str, &str, &str, &str)) -> String {
    let person = serde_json::json!({
        "full_name": name, "phone": phone, "id_number": id_number, "room": room,
        "quarantine_start": "2026-11-20", "quarantine_end": "2026-12-04", "category": "f1",
    });
    let res = call(&f.router, json_request(Method::POST, "/api/v1/people", &f.medical, person)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
    created["id"].as_str().expect("id").to_owned()
}

/// A form post as `session`.
fn form_request(path: &str, session: &(String, String), form: &str) -> Request<Body> {
    session_request(Method::POST, path, session, ("application/x-www-form-urlencoded", form.to_owned()))
}

#[tokio::test]
async fn a_double_scan_is_not_a_new_round_and_a_positive_is_confirmed_first() {
    let f = fixture().await;
    let id = add_person(&f, ("Phạm Thị Hoa", "0912000111", "048190001234", "")).await;

    // The sampling desk: the first scan is round 1; the same card scanned again is refused, saying
    // when; a second round the same day only when staff give its number.
    let scan = |round: &str| {
        form_request("/testing/sample", &f.medical, &format!("code=048190001234&round={round}"))
    };
    assert_eq!(call(&f.router, scan("")).await.status(), StatusCode::SEE_OTHER);
    let again = call(&f.router, scan("")).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(body(again).await.contains("đã được lấy mẫu hôm nay (lần 1, lúc"));
    assert_eq!(f.app.samples_of(&id).expect("samples").len(), 1);

    // A positive result: first a page that says what it will do, nothing changed yet; then confirmed.
    let path = format!("/people/{id}/samples/1/result");
    let ask = call(&f.router, form_request(&path, &f.medical, "result=positive")).await;
    assert_eq!(ask.status(), StatusCode::OK);
    let page = body(ask).await;
    assert!(
        page.contains("Xác nhận kết quả DƯƠNG TÍNH") && page.contains("name=\"confirm\" value=\"1\""),
        "{page}"
    );
    assert_eq!(f.app.person(&id).expect("person").status, PersonStatus::InQuarantine);
    let done = call(&f.router, form_request(&path, &f.medical, "result=positive&confirm=1")).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(f.app.person(&id).expect("person").status, PersonStatus::ConvertedF0);
}

#[tokio::test]
async fn the_dashboard_puts_alerts_in_triage_order() {
    use outpost_sync::{
        record::{Alert, AlertKind, Severity},
        store::WriteSet,
    };
    let f = fixture().await;
    let now = f.app.now();
    // Raised oldest first: a missed round, a fever (warning), a band away, a low SpO2 (severe), and
    // a battery; then three missed rounds together (a group).
    let single = [
        ("a-missing", AlertKind::MissingDeclaration, Severity::Warning, 50),
        ("a-fever", AlertKind::Fever, Severity::Warning, 40),
        ("a-away", AlertKind::BandAway, Severity::Severe, 30),
        ("a-spo2", AlertKind::LowSpo2, Severity::Severe, 20),
        ("a-battery", AlertKind::BandBatteryLow, Severity::Warning, 10),
    ];
    let mut w = WriteSet::new();
    for (id, kind, severity, minutes_ago) in single {
        let at = now - chrono::Duration::minutes(minutes_ago);
        w.put(&Alert::new(id.into(), kind, severity, "p", id, String::new(), at)).expect("put");
    }
    for i in 0..3 {
        let at = now - chrono::Duration::minutes(120 + i);
        w.put(&Alert::new(
            format!("g-{i}"),
            AlertKind::MissingDeclaration,
            Severity::Warning,
            "p",
            "s",
            String::new(),
            at,
        ))
        .expect("put");
    }
    f.store.commit(w).await.expect("commit");
    let page = body(call(&f.router, request(&Method::GET, "/", Some((&f.admin.0, &f.admin.1)))).await).await;
    let at = |marker: &str| page.find(marker).unwrap_or_else(|| panic!("{marker} on the dashboard"));
    let order = [
        r#"id="alert-a-spo2""#,
        r#"id="alert-a-away""#,
        r#"data-kind="missing_declaration" data-count="3""#,
        r#"id="alert-a-fever""#,
        r#"id="alert-a-missing""#,
        r#"id="alert-a-battery""#,
    ];
    let positions: Vec<usize> = order.iter().map(|m| at(m)).collect();
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "severe, then groups, then by kind: {positions:?}");

    // The alerts page's filters: a kind, severe only.
    let shown = |page: &str| -> Vec<String> {
        page.match_indices("<tr id=\"alert-")
            .map(|(at, m)| page[at + m.len()..].split('"').next().unwrap_or("").to_owned())
            .collect()
    };
    let get = |path: &str| request(&Method::GET, path, Some((&f.admin.0, &f.admin.1)));
    let fevers = body(call(&f.router, get("/alerts?kind=fever")).await).await;
    assert_eq!(shown(&fevers), vec!["a-fever"]);
    let mut severe = shown(&body(call(&f.router, get("/alerts?severity=severe")).await).await);
    severe.sort();
    assert_eq!(severe, vec!["a-away", "a-spo2"]);
}

#[tokio::test]
async fn a_persons_repeated_alerts_are_one_row_and_ticked_alerts_are_acknowledged_at_once() {
    use outpost_sync::{
        record::{Alert, AlertKind, AlertState, Severity},
        store::WriteSet,
    };
    let f = fixture().await;
    let now = f.app.now();
    // One person missed three rounds (hours apart: not a storm), another has a fever, a third a
    // missed round.
    let alerts = [
        ("m-1", "p", AlertKind::MissingDeclaration, 600),
        ("m-2", "p", AlertKind::MissingDeclaration, 360),
        ("m-3", "p", AlertKind::MissingDeclaration, 120),
        ("fever", "q", AlertKind::Fever, 30),
        ("other", "r", AlertKind::MissingDeclaration, 200),
    ];
    let mut w = WriteSet::new();
    for (id, person, kind, minutes_ago) in alerts {
        let at = now - chrono::Duration::minutes(minutes_ago);
        w.put(&Alert::new(id.into(), kind, Severity::Warning, person, id, format!("{id} detail"), at))
            .expect("put");
    }
    f.store.commit(w).await.expect("commit");
    let get = |path: &str| request(&Method::GET, path, Some((&f.admin.0, &f.admin.1)));
    let page = body(call(&f.router, get("/alerts")).await).await;
    let rows: Vec<&str> = page.split("<tr id=\"alert-").skip(1).collect();
    assert_eq!(rows.len(), 3, "the person's three missed rounds are one row: {page}");
    let grouped = rows.iter().find(|r| r.starts_with("m-3\"")).expect("the newest stands for the row");
    assert!(
        grouped.contains(r#"data-count="3""#) && grouped.contains("<strong>3 lượt</strong>"),
        "{grouped}"
    );
    assert!(grouped.contains(r#"value="m-3,m-2,m-1""#), "one checkbox and one acknowledge for all three");
    assert!(
        ["m-1 detail", "m-2 detail", "m-3 detail"].iter().all(|d| grouped.contains(d)),
        "each behind a click"
    );
    assert!(page.contains(r#"id="alerts-bulk""#) && page.matches(r#"form="alerts-bulk""#).count() == 3);

    // Ticking the person's row and the fever acknowledges four alerts in one go; the other stays open.
    let done =
        call(&f.router, form_request("/alerts/ack-selected", &f.admin, "ids=m-3%2Cm-2%2Cm-1&ids=fever"))
            .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let state = |id: &str| f.app.alert(id).expect("alert").state;
    assert!(["m-1", "m-2", "m-3", "fever"].iter().all(|id| state(id) == AlertState::Acknowledged));
    assert_eq!(state("other"), AlertState::Open);
    // Nothing ticked is a clear error, not a silent nothing.
    let none = call(&f.router, form_request("/alerts/ack-selected", &f.admin, "")).await;
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn long_lists_come_a_page_at_a_time() {
    let f = fixture().await;
    let mut csv = String::from(
        "Họ và tên,Số điện thoại,Số CMND/CCCD,Phòng,Ngày bắt đầu cách ly,Ngày kết thúc cách ly\n",
    );
    for i in 0..120 {
        csv.push_str(&format!(
            "Người Thứ {i},09{:08},0480000{i:05},P{:02},2026-11-20,2026-12-04\n",
            20_000_000 + i,
            i / 10
        ));
    }
    let import = session_request(Method::POST, "/api/v1/people/import", &f.medical, ("text/csv", csv));
    assert_eq!(call(&f.router, import).await.status(), StatusCode::OK);
    let get = |path: &str| request(&Method::GET, path, Some((&f.medical.0, &f.medical.1)));
    let rows = |page: &str| page.matches("<tr><td><input type=\"checkbox\" name=\"p\"").count();
    let first = body(call(&f.router, get("/people")).await).await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("id=\"people-pages\"") && first.contains("1 / 3 (120)"), "the pager");
    let last = body(call(&f.router, get("/people?page=3")).await).await;
    assert_eq!(rows(&last), 20);
    // The follow-up sheet: by room, and by page.
    let sheet = body(call(&f.router, get("/followup?date=2026-11-21")).await).await;
    assert_eq!(sheet.matches("action=\"/followup/").count(), 50);
    let room = body(call(&f.router, get("/followup?date=2026-11-21&room=P03")).await).await;
    assert_eq!(room.matches("action=\"/followup/").count(), 10);
}

#[tokio::test]
async fn a_locked_login_says_until_when_in_the_sites_time() {
    let f = fixture().await;
    let mut locked = None;
    for _ in 0..10 {
        if let Err(crate::app::AppError::Locked(until)) =
            f.app.log_in("quantri", "not-the-password", None).await
        {
            locked = Some(until);
            break;
        }
    }
    let until = locked.expect("locked after repeated wrong passwords");
    assert_eq!(until.offset().local_minus_utc(), 7 * 3600, "the site's time (UTC+7)");
    let problems = super::error::ApiError::Locked(until).problems();
    assert!(
        problems[0].vi.ends_with(&format!("{}.", until.format("%H:%M"))) && !problems[0].vi.contains("UTC")
    );
}

#[tokio::test]
async fn a_persons_card_and_link_by_sms() {
    let f = fixture().await;
    let id = add_person(&f, ("Đỗ Văn Nam", "0912000222", "048190005678", "B07")).await;
    let p = f.app.person(&id).expect("person");
    let link = f.app.personal_link(&p);
    let card = body(
        call(
            &f.router,
            request(&Method::GET, &format!("/people/{id}/card"), Some((&f.medical.0, &f.medical.1))),
        )
        .await,
    )
    .await;
    for text in ["Thẻ khai báo y tế", "Đỗ Văn Nam", "B07", "<svg", link.as_str(), "08:00 · 16:00 · 21:00"]
    {
        assert!(card.contains(text), "{text}: {card}");
    }
    // A manager (read-only) may not print a card: it carries the link that declares as the person.
    let as_manager = call(
        &f.router,
        request(&Method::GET, &format!("/people/{id}/card"), Some((&f.manager.0, &f.manager.1))),
    )
    .await;
    assert_eq!(as_manager.status(), StatusCode::FORBIDDEN);

    let sent = call(&f.router, form_request(&format!("/people/{id}/send-link"), &f.medical, "")).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let queued = f.app.outbox_all().expect("outbox");
    assert!(queued.iter().any(|m| m.to == "0912000222" && m.text.contains(&link)), "{queued:?}");
    assert_eq!(
        crate::app::messages::link_sms("https://x/d/t", "Khu-A Tầng 2"),
        "Outpost: Khai bao y te hang ngay tai https://x/d/t (Wi-Fi: Khu-A Tang 2)"
    );
}

#[tokio::test]
async fn a_persons_page_shows_their_14_days() {
    let f = fixture().await;
    let id = add_person(&f, ("Lê Thị Thu", "0912000333", "048190009999", "C01")).await;
    let p = f.app.person(&id).expect("person");
    let input = crate::base::validate::DeclarationInput {
        temperature: Some("38,6".into()),
        spo2: Some("97".into()),
        ..Default::default()
    };
    f.app.declare(&p, &input, outpost_sync::record::Channel::Personal, None).await.expect("declared");
    let page = body(
        call(&f.router, request(&Method::GET, &format!("/people/{id}"), Some((&f.medical.0, &f.medical.1))))
            .await,
    )
    .await;
    let strip = page.split("id=\"strip\"").nth(1).expect("the strip").split("</figure>").next().unwrap_or("");
    // Three rounds a day for 14 days; today's declaration a coloured dot, its temperature on the line.
    assert_eq!(strip.matches("class=\"round ").count(), 42, "{strip}");
    assert_eq!(
        strip.matches("class=\"round on-time\"").count() + strip.matches("class=\"round late\"").count(),
        1
    );
    assert_eq!(strip.matches("class=\"round missed\"").count(), 0, "nothing was owed before the person came");
    assert!(strip.contains("38,6 °C") && strip.contains("class=\"fever\""), "{strip}");
    assert!(!strip.contains("style="));
}

#[tokio::test]
async fn an_alerts_detail_is_shown_in_the_pages_language() {
    use outpost_sync::{
        record::{Alert, AlertKind, Severity},
        store::WriteSet,
    };
    let f = fixture().await;
    let detail = "vòng C2:00:00:00:00:01 không được thấy; lần cuối: A01 / band C2:00:00:00:00:01 not seen; last at A01";
    let mut w = WriteSet::new();
    w.put(&Alert::new(
        "a-away".into(),
        AlertKind::BandAway,
        Severity::Severe,
        "p",
        "b",
        detail.into(),
        f.app.now(),
    ))
    .expect("put");
    f.store.commit(w).await.expect("commit");
    let page = |lang: &str| {
        let mut req = request(&Method::GET, "/alerts", Some((&f.admin.0, &f.admin.1)));
        let cookie = format!("{SESSION_COOKIE}={}; lang={lang}", f.admin.0);
        req.headers_mut().insert(header::COOKIE, cookie.parse().expect("cookie"));
        req
    };
    let vi = body(call(&f.router, page("vi")).await).await;
    assert!(vi.contains("không được thấy; lần cuối: A01") && !vi.contains("not seen"));
    let en = body(call(&f.router, page("en")).await).await;
    assert!(
        en.contains("band C2:00:00:00:00:01 not seen; last at A01") && !en.contains("không được thấy"),
        "{en}"
    );
}

#[tokio::test]
async fn the_health_page_has_gauges_and_the_pool_a_bar_of_states() {
    let f = fixture().await;
    let get = |path: &str| request(&Method::GET, path, Some((&f.admin.0, &f.admin.1)));
    let health = body(call(&f.router, get("/health")).await).await;
    assert!(
        health.contains("<meter id=\"disk-gauge\"") && health.contains("<meter id=\"memory-gauge\""),
        "{health}"
    );
    for id in ["C2:00:00:00:00:01", "C2:00:00:00:00:02"] {
        let res = call(
            &f.router,
            json_request(Method::POST, "/api/v1/bands", &f.medical, serde_json::json!({"id": id})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let pool = body(call(&f.router, get("/bands")).await).await;
    let bar = pool.split("id=\"band-states\"").nth(1).expect("the bar").split("</svg>").next().unwrap_or("");
    assert_eq!(bar.matches("<rect").count(), 1, "one state, one segment: {bar}");
    assert!(bar.contains("width=\"100.00\""), "{bar}");
}

#[tokio::test]
async fn an_administrator_asks_for_the_usb_stick_and_the_page_shows_how_it_went() {
    use crate::platform::stick;
    let f = fixture().await;
    let data_dir = f.app.config().store.data_dir.clone();
    let admin = Some((f.admin.0.as_str(), f.admin.1.as_str()));
    let medical = Some((f.medical.0.as_str(), f.medical.1.as_str()));
    let res = call(&f.router, request(&Method::POST, "/admin/stick/update", medical)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(&f.router, request(&Method::POST, "/admin/stick/format", admin)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(stick::pending(&data_dir), None, "nothing asked for yet");
    let res = call(&f.router, request(&Method::POST, "/admin/stick/update", admin)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(stick::pending(&data_dir), Some(stick::Action::Update));
    let again = call(&f.router, request(&Method::POST, "/admin/stick/backup", admin)).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "one request at a time");
    let health = body(call(&f.router, request(&Method::GET, "/health", admin)).await).await;
    assert!(health.contains("id=\"stick-pending\" data-action=\"update\""), "{health}");
    let audit = f.app.audit_log(10).expect("audit");
    assert_eq!(audit.iter().filter(|e| e.action == "stick.update" && e.user == "quantri").count(), 1);
    // The helper took it and failed (no stick): the page and the health JSON say so.
    std::fs::remove_file(data_dir.join(stick::REQUEST)).expect("taken");
    let failed = serde_json::json!({"action": "update", "state": "failed", "at": "2026-11-21T02:01:00Z", "message": "no USB stick is plugged in"});
    std::fs::write(data_dir.join(stick::STATUS), failed.to_string()).expect("status");
    let health = body(call(&f.router, request(&Method::GET, "/health", admin)).await).await;
    assert!(
        health.contains("data-state=\"failed\"") && health.contains("no USB stick is plugged in"),
        "{health}"
    );
    let json = body(call(&f.router, request(&Method::GET, "/api/v1/health", admin)).await).await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["stick"]["status"]["state"], "failed");
    let staff = body(call(&f.router, request(&Method::GET, "/health", medical)).await).await;
    assert!(!staff.contains("id=\"stick\""), "administrators only");
}
