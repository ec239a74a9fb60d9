//! The web UI and the JSON API, served by axum.
//!
//! Access control is declarative: [`routes`] lists every route with its [`Access`] level, and one
//! middleware ([`guard`]) enforces it before any handler runs — authentication (session cookie or API
//! token), the role, and CSRF on every state-changing request. Tests walk the same table to prove that
//! nothing but the public routes answers without a session and that a manager cannot write.
//!
//! Handlers live in [`pages`] (server-rendered HTML, Vietnamese first) and [`api`] (`/api/v1`, JSON);
//! both call [`crate::app::Outpost`] and never touch the store's layout.

pub mod api;
mod bands;
mod checkin;
mod layout;
mod location;
pub mod pages;
mod reports;
mod sms;
mod spotcheck;
mod testing;

use std::{collections::HashMap, sync::Arc, sync::Mutex};

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, FromRequestParts, Request, State},
    http::{header, request::Parts, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post, put, MethodRouter},
    Json, Router,
};
use chrono::{DateTime, Duration, Utc};
use outpost_sync::record::Role;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{AppError, Outpost},
    auth::{self, Staff, Throttle},
    i18n::{t, Lang},
    validate::{Problem, ValidPerson},
};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: login, the setup link, personal declaration pages (which check their token), liveness,
    /// static assets, the language switch.
    Public,
    /// Any signed-in staff member, read-only.
    Staff,
    /// Staff who may change records: admin and medical.
    Writer,
    /// Administrators only.
    Admin,
}

/// A route of the box: method, path, access level and handler.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: MethodRouter<AppState>,
}

fn r(method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>) -> RouteDef {
    RouteDef { method, path, access, handler }
}

/// An upload that had errors, kept until staff decide to import its valid rows.
pub struct PendingImport {
    pub created: DateTime<Utc>,
    pub username: String,
    pub valid: Vec<ValidPerson>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<Outpost>,
    pub throttle: Arc<Throttle>,
    pub imports: Arc<Mutex<HashMap<String, PendingImport>>>,
    /// Ends live streams on shutdown.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(app: Arc<Outpost>, shutdown: CancellationToken) -> AppState {
        let web = &app.config.raw.web;
        let throttle = Throttle::new(web.login_attempts, Duration::minutes(web.login_lockout_minutes.into()));
        AppState {
            app,
            throttle: Arc::new(throttle),
            imports: Arc::new(Mutex::new(HashMap::new())),
            shutdown,
        }
    }
}

/// Every route of the box.
pub fn routes() -> Vec<RouteDef> {
    use Access::*;
    use Method as M;
    vec![
        r(M::GET, "/healthz", Public, get(pages::healthz)),
        r(M::GET, "/static/{file}", Public, get(pages::static_file)),
        r(M::GET, "/lang/{code}", Public, get(pages::set_lang)),
        r(M::GET, "/login", Public, get(pages::login_page)),
        r(M::POST, "/login", Public, post(pages::login)),
        r(M::GET, "/setup/{token}", Public, get(pages::setup_page)),
        r(M::POST, "/setup/{token}", Public, post(pages::setup)),
        r(M::GET, "/d/{token}", Public, get(pages::declare_page)),
        r(M::POST, "/d/{token}", Public, post(pages::declare)),
        r(M::POST, "/api/v1/declare/{token}", Public, post(api::declare)),
        r(M::POST, "/api/v1/position/{token}", Public, post(location::api_report)),
        r(M::GET, "/s/{token}", Public, get(spotcheck::answer_page)),
        r(M::POST, "/s/{token}", Public, post(spotcheck::answer)),
        r(M::GET, "/c/{token}", Public, get(checkin::public_form)),
        r(M::POST, "/c/{token}", Public, post(checkin::public_submit)),
        r(M::POST, "/logout", Staff, post(pages::logout)),
        r(M::GET, "/", Staff, get(pages::dashboard)),
        r(M::GET, "/dashboard/live", Staff, get(pages::dashboard_live)),
        r(M::GET, "/events", Staff, get(pages::events)),
        r(M::GET, "/people", Staff, get(pages::people)),
        r(M::POST, "/people", Writer, post(pages::create_person)),
        r(M::GET, "/people/new", Writer, get(pages::new_person)),
        r(M::GET, "/people/export.csv", Staff, get(pages::export_people)),
        r(M::GET, "/people/import", Writer, get(pages::import_page)),
        r(M::POST, "/people/import", Writer, post(pages::import)),
        r(M::POST, "/people/import/{id}", Writer, post(pages::import_valid)),
        r(M::GET, "/people/{id}", Staff, get(pages::person)),
        r(M::POST, "/people/{id}", Writer, post(pages::update_person)),
        r(M::GET, "/people/{id}/edit", Writer, get(pages::edit_person)),
        r(M::GET, "/people/{id}/qr.svg", Staff, get(pages::person_qr)),
        r(M::POST, "/people/{id}/status", Writer, post(pages::change_status)),
        r(M::POST, "/people/{id}/declarations", Writer, post(pages::staff_declare)),
        r(M::GET, "/people/{id}/presence", Staff, get(bands::person_presence)),
        r(M::POST, "/people/{id}/geofence", Writer, post(location::set_geofence)),
        r(M::POST, "/people/{id}/samples", Writer, post(testing::record_for_person)),
        r(M::POST, "/people/{id}/samples/{round}/result", Writer, post(testing::result_for_person)),
        r(M::GET, "/testing", Staff, get(testing::desk)),
        r(M::GET, "/reports", Staff, get(reports::page_of_day)),
        r(M::GET, "/spotchecks", Staff, get(spotcheck::list)),
        r(M::POST, "/spotchecks/room", Writer, post(spotcheck::request_room)),
        r(M::GET, "/spotchecks/{id}/photo", Staff, get(spotcheck::photo)),
        r(M::POST, "/spotchecks/{id}/review", Writer, post(spotcheck::review)),
        r(M::POST, "/people/{id}/spotcheck", Writer, post(spotcheck::request_person)),
        r(M::GET, "/checkin", Staff, get(checkin::log)),
        r(M::GET, "/checkin/poster", Staff, get(checkin::poster)),
        r(M::GET, "/checkin/export.csv", Staff, get(checkin::export)),
        r(M::POST, "/checkin/scan", Writer, post(checkin::scan)),
        r(M::POST, "/reports/{date}/confirm", Admin, post(reports::confirm)),
        r(M::GET, "/reports/{date}/export.csv", Staff, get(reports::export_csv)),
        r(M::GET, "/reports/{date}/export.xlsx", Staff, get(reports::export_xlsx)),
        r(M::POST, "/testing/sample", Writer, post(testing::desk_sample)),
        r(M::POST, "/testing/import", Writer, post(testing::desk_import)),
        r(M::GET, "/bands", Staff, get(bands::pool)),
        r(M::POST, "/bands", Writer, post(bands::register)),
        r(M::GET, "/bands/{id}", Staff, get(bands::band)),
        r(M::POST, "/bands/{id}/state", Writer, post(bands::change_state)),
        r(M::POST, "/bands/{id}/hand-over", Writer, post(bands::hand_over)),
        r(M::GET, "/alerts", Staff, get(pages::alerts)),
        r(M::POST, "/alerts/{id}/ack", Writer, post(pages::ack_alert)),
        r(M::POST, "/alerts/{id}/resolve", Writer, post(pages::resolve_alert)),
        r(M::GET, "/followup", Staff, get(pages::followup)),
        r(M::GET, "/followup/export.csv", Staff, get(pages::export_followup)),
        r(M::POST, "/followup/{person}/{date}", Writer, post(pages::save_followup)),
        r(M::GET, "/outbox", Staff, get(sms::outbox_page)),
        r(M::GET, "/inbox", Staff, get(sms::inbox_page)),
        r(M::GET, "/sms/new", Writer, get(sms::compose)),
        r(M::POST, "/sms/send", Writer, post(sms::send)),
        r(M::GET, "/health", Staff, get(sms::health_page)),
        r(M::GET, "/metrics", Staff, get(sms::metrics)),
        r(M::GET, "/users", Admin, get(pages::users)),
        r(M::POST, "/users", Admin, post(pages::add_user)),
        r(M::POST, "/users/{name}", Admin, post(pages::update_user)),
        r(M::POST, "/users/{name}/token", Admin, post(pages::new_token)),
        r(M::GET, "/audit", Admin, get(pages::audit)),
        r(M::GET, "/admin/backup", Admin, get(pages::download_backup)),
        r(M::GET, "/mqtt", Admin, get(sms::mqtt_devices)),
        r(M::POST, "/mqtt", Admin, post(sms::add_mqtt_device)),
        r(M::GET, "/mqtt/box.crt", Staff, get(sms::mqtt_certificate)),
        r(M::GET, "/api/v1/openapi.json", Staff, get(api::openapi)),
        r(M::GET, "/api/v1/session", Staff, get(api::session)),
        r(M::GET, "/api/v1/dashboard", Staff, get(api::dashboard)),
        r(M::GET, "/api/v1/people", Staff, get(api::people)),
        r(M::POST, "/api/v1/people", Writer, post(api::create_person)),
        r(M::POST, "/api/v1/people/import", Writer, post(api::import)),
        r(M::GET, "/api/v1/people/{id}", Staff, get(api::person)),
        r(M::PUT, "/api/v1/people/{id}", Writer, put(api::update_person)),
        r(M::POST, "/api/v1/people/{id}/status", Writer, post(api::change_status)),
        r(M::GET, "/api/v1/people/{id}/declarations", Staff, get(api::declarations)),
        r(M::POST, "/api/v1/people/{id}/declarations", Writer, post(api::staff_declare)),
        r(M::GET, "/api/v1/people/{id}/location", Staff, get(location::api_location)),
        r(M::POST, "/api/v1/people/{id}/geofence", Writer, post(location::api_set_geofence)),
        r(M::GET, "/api/v1/people/{id}/samples", Staff, get(testing::api_person_samples)),
        r(M::POST, "/api/v1/people/{id}/samples", Writer, post(testing::api_record)),
        r(M::POST, "/api/v1/people/{id}/samples/{round}/result", Writer, post(testing::api_result)),
        r(M::GET, "/api/v1/samples", Staff, get(testing::api_day)),
        r(M::GET, "/api/v1/reports", Staff, get(reports::api_series)),
        r(M::GET, "/api/v1/spotchecks", Staff, get(spotcheck::api_list)),
        r(M::POST, "/api/v1/spotchecks", Writer, post(spotcheck::api_request)),
        r(M::POST, "/api/v1/spotchecks/{id}/review", Writer, post(spotcheck::api_review)),
        r(M::GET, "/api/v1/checkins", Staff, get(checkin::api_log)),
        r(M::POST, "/api/v1/checkins/scan", Writer, post(checkin::api_scan)),
        r(M::GET, "/api/v1/reports/{date}", Staff, get(reports::api_day)),
        r(M::POST, "/api/v1/reports/{date}/confirm", Admin, post(reports::api_confirm)),
        r(M::POST, "/api/v1/samples/import", Writer, post(testing::api_import)),
        r(M::GET, "/api/v1/alerts", Staff, get(api::alerts)),
        r(M::POST, "/api/v1/alerts/{id}/ack", Writer, post(api::ack_alert)),
        r(M::POST, "/api/v1/alerts/{id}/resolve", Writer, post(api::resolve_alert)),
        r(M::GET, "/api/v1/outbox", Staff, get(api::outbox)),
        r(M::POST, "/api/v1/sms", Writer, post(sms::api_send)),
        r(M::GET, "/api/v1/inbox", Staff, get(sms::api_inbox)),
        r(M::GET, "/api/v1/health", Staff, get(sms::api_health)),
        r(M::GET, "/api/v1/presence", Staff, get(bands::api_presence)),
        r(M::GET, "/api/v1/people/{id}/presence", Staff, get(bands::api_person_presence)),
        r(M::GET, "/api/v1/bands", Staff, get(bands::api_bands)),
        r(M::POST, "/api/v1/bands", Writer, post(bands::api_register)),
        r(M::GET, "/api/v1/bands/unknown", Staff, get(bands::api_unknown)),
        r(M::GET, "/api/v1/bands/{id}", Staff, get(bands::api_band)),
        r(M::POST, "/api/v1/bands/{id}/state", Writer, post(bands::api_change_state)),
        r(M::POST, "/api/v1/bands/{id}/hand-over", Writer, post(bands::api_hand_over)),
        r(M::GET, "/api/v1/followup", Staff, get(api::followup)),
        r(M::GET, "/api/v1/audit", Admin, get(api::audit)),
    ]
}

/// The box's HTTP service.
pub fn router(state: AppState) -> Router {
    let limit = state.app.config.raw.web.max_upload_bytes;
    let mut router = Router::new();
    for def in routes() {
        let guarded = def.handler.layer(middleware::from_fn_with_state((state.clone(), def.access), guard));
        router = router.route(def.path, guarded);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, refuse_oversize))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Bodies up to this size are read and dropped before a 413, so the sender sees the answer.
const DRAIN_MAX: usize = 16 * 1024 * 1024;

/// Answers 413 to a body announced larger than the limit. A moderately oversize upload (a staff member
/// picked the wrong file) is read and discarded first: a client still sending when the server answers
/// and closes would see a broken connection instead of the message.
async fn refuse_oversize(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let Some(len) = announced.filter(|len| *len > limit) else {
        return next.run(req).await;
    };
    let (api, lang) = (is_api(req.uri().path()), lang_of(req.headers()));
    if len <= DRAIN_MAX {
        let drain = async {
            let mut stream = req.into_body().into_data_stream();
            while let Some(Ok(_)) = futures_util::StreamExt::next(&mut stream).await {}
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
    }
    let mut res = ApiError::TooLarge.respond(api, lang);
    res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    res
}

async fn not_found(req: Request) -> Response {
    let lang = lang_of(req.headers());
    let mut res = ApiError::NotFound.respond(req.uri().path().starts_with("/api/"), lang);
    if req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING)
    {
        res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    res
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(header::HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    res
}

pub const SESSION_COOKIE: &str = "outpost_session";
pub const CSRF_COOKIE: &str = "outpost_csrf";
pub const LANG_COOKIE: &str = "lang";

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE).map(Lang::parse).unwrap_or_default()
}

/// The request's language and signed-in staff member, for handlers.
pub struct Ctx {
    pub lang: Lang,
    pub staff: Option<Staff>,
    pub ip: Option<std::net::IpAddr>,
}

impl Ctx {
    /// The signed-in staff member; guarded routes always have one.
    pub fn staff(&self) -> Result<&Staff, ApiError> {
        self.staff.as_ref().ok_or(ApiError::Unauthorized)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, Self::Rejection> {
        Ok(Ctx {
            lang: lang_of(&parts.headers),
            staff: parts.extensions.get::<Staff>().cloned(),
            ip: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        })
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Authenticates, authorises and checks CSRF for one route.
async fn guard(State((state, access)): State<(AppState, Access)>, req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let lang = lang_of(req.headers());
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let now = state.app.now();
    // A refusal leaves the request body unread, so the connection cannot be reused: say so, or a
    // client may send its next request down a connection the server is closing.
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let refuse = |e: ApiError| {
        let mut res = e.respond(api, lang);
        if has_body {
            res.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        res
    };
    let (mut parts, body) = req.into_parts();

    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let staff = match bearer {
        Some(token) => match auth::api_token_user(&state.app.store, token) {
            Some(u) => {
                Some(Staff { username: u.username, display_name: u.display_name, role: u.role, csrf: None })
            }
            None => return refuse(ApiError::Unauthorized),
        },
        None => cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|token| auth::session(&state.app.store, token, now))
            .map(|(s, u)| Staff {
                username: u.username,
                display_name: u.display_name,
                role: u.role,
                csrf: Some(s.csrf),
            }),
    };

    match (access, &staff) {
        (Access::Public, _) => {}
        (_, None) => {
            if api || writes {
                return refuse(ApiError::Unauthorized);
            }
            let back = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Redirect::to(&format!("/login?next={}", urlencode(back))).into_response();
        }
        (Access::Staff, Some(_)) => {}
        (Access::Writer, Some(s)) if s.role.can_write() => {}
        (Access::Admin, Some(s)) if s.role == Role::Admin => {}
        (_, Some(_)) => return refuse(ApiError::Forbidden),
    }

    let mut body = body;
    if writes {
        // Session-authenticated writes must carry the session's CSRF token; anonymous form posts must
        // repeat the CSRF cookie. API-token requests and JSON bodies (which browsers cannot send
        // cross-site without a preflight) need neither.
        let content_type =
            parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_form = content_type.starts_with("application/x-www-form-urlencoded");
        let is_json = content_type.starts_with("application/json");
        let expected = match (access, &staff) {
            (Access::Public, _) if is_json => None,
            (Access::Public, _) => Some(cookie(&parts.headers, CSRF_COOKIE).unwrap_or("").to_owned()),
            (_, Some(s)) => s.csrf.clone(),
            (_, None) => None,
        };
        if let Some(expected) = expected {
            let mut presented = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| query_param(parts.uri.query().unwrap_or(""), "csrf"));
            if presented.is_none() && is_form {
                let limit = state.app.config.raw.web.max_upload_bytes;
                let bytes = match axum::body::to_bytes(body, limit).await {
                    Ok(b) => b,
                    Err(_) => return refuse(ApiError::TooLarge),
                };
                presented = query_param(&String::from_utf8_lossy(&bytes), "csrf");
                body = Body::from(bytes);
            }
            let ok =
                !expected.is_empty() && presented.as_deref().is_some_and(|p| auth::same_secret(p, &expected));
            if !ok {
                return refuse(ApiError::Csrf);
            }
        }
    }
    if let Some(s) = staff {
        parts.extensions.insert(s);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A `?date=` parameter: the site's today when absent or empty, else a date as staff type it
/// (`validate::parse_date`), or a clear error.
pub(crate) fn date_param(state: &AppState, raw: Option<&str>) -> Result<chrono::NaiveDate, ApiError> {
    match raw.filter(|d| !d.is_empty()) {
        None => Ok(state.app.today()),
        Some(d) => crate::validate::parse_date(d).ok_or_else(|| {
            ApiError::Invalid(vec![Problem::new(
                "date",
                format!("Ngày không hợp lệ: {d}."),
                format!("Invalid date: {d}."),
            )])
        }),
    }
}

/// A query-string or form value, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url_pairs(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (urldecode(k), urldecode(v)))
        .collect()
}

fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Everything a request can fail with. Each variant's status is named in its doc.
#[derive(Debug)]
pub enum ApiError {
    /// 422: the input does not validate; each problem names its field.
    Invalid(Vec<Problem>),
    /// 409: the request conflicts with what is stored (a duplicate ID number, an alert already resolved).
    Conflict(Problem),
    /// 404.
    NotFound,
    /// 401: no session or token, or an expired one.
    Unauthorized,
    /// 403: the account's role may not do this.
    Forbidden,
    /// 403: the form's CSRF token is missing or wrong.
    Csrf,
    /// 413: the body is larger than `web.max_upload_bytes`.
    TooLarge,
    /// 429: too many failed logins.
    Locked(DateTime<Utc>),
    /// 503: the store failed; nothing was saved. Details are logged, never sent.
    Internal(String),
    /// 503: the SD card takes no writes (full, read-only, failing); nothing was saved.
    Storage(String),
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound => ApiError::NotFound,
            AppError::Invalid(p) => ApiError::Invalid(p),
            AppError::Conflict(p) => ApiError::Conflict(p),
            AppError::Store(e) => {
                let disk = e.is_disk();
                let detail = format!("{:#}", anyhow::Error::from(e));
                if disk {
                    ApiError::Storage(detail)
                } else {
                    ApiError::Internal(detail)
                }
            }
        }
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> ApiError {
        ApiError::Invalid(vec![p])
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) | ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problems to show, in both languages.
    pub fn problems(&self) -> Vec<Problem> {
        let one = |key: &'static str| vec![Problem::new("", t(Lang::Vi, key), t(Lang::En, key))];
        match self {
            ApiError::Invalid(p) => p.clone(),
            ApiError::Conflict(p) => vec![p.clone()],
            ApiError::NotFound => one("error.not_found"),
            ApiError::Unauthorized => one("error.login"),
            ApiError::Forbidden => one("error.forbidden"),
            ApiError::Csrf => one("error.csrf"),
            ApiError::TooLarge => one("error.too_large"),
            ApiError::Locked(until) => vec![Problem::new(
                "",
                format!("{} {}.", t(Lang::Vi, "login.locked"), until.format("%H:%M UTC")),
                format!("{} {}.", t(Lang::En, "login.locked"), until.format("%H:%M UTC")),
            )],
            ApiError::Internal(_) => one("error.internal"),
            ApiError::Storage(_) => one("error.storage"),
        }
    }

    /// As JSON (for the API) or as a page.
    pub fn respond(self, json: bool, lang: Lang) -> Response {
        if let ApiError::Internal(detail) | ApiError::Storage(detail) = &self {
            tracing::error!(error = %detail, "Request failed.");
        }
        let status = self.status();
        if json {
            let problems: Vec<_> = self
                .problems()
                .into_iter()
                .map(|p| json!({"field": p.field, "message": p.text(lang), "vi": p.vi, "en": p.en}))
                .collect();
            let error = match &self {
                ApiError::Invalid(_) => "invalid",
                ApiError::Conflict(_) => "conflict",
                ApiError::NotFound => "not_found",
                ApiError::Unauthorized => "unauthorized",
                ApiError::Forbidden => "forbidden",
                ApiError::Csrf => "csrf",
                ApiError::TooLarge => "too_large",
                ApiError::Locked(_) => "locked",
                ApiError::Internal(_) => "unavailable",
                ApiError::Storage(_) => "storage_failing",
            };
            (status, Json(json!({"error": error, "problems": problems}))).into_response()
        } else {
            (status, layout::error_page(lang, &self.problems())).into_response()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(true, Lang::Vi)
    }
}

/// A failed page request: rendered as HTML in the page's language.
pub struct PageError(pub ApiError, pub Lang);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.respond(false, self.1)
    }
}

impl From<(AppError, Lang)> for PageError {
    fn from((e, lang): (AppError, Lang)) -> PageError {
        PageError(e.into(), lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_coding() {
        assert_eq!(urldecode("a+b%20c%C3%A0"), "a b cà");
        assert_eq!(urldecode("100%"), "100%");
        assert_eq!(query_param("x=1&csrf=ab%2Fc&y", "csrf").as_deref(), Some("ab/c"));
        assert_eq!(urlencode("/people?q=Lê"), "/people%3Fq%3DL%C3%AA");
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
}
