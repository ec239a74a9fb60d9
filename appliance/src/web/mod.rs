//! The web UI and the JSON API, served by axum.
//!
//! Access control is declarative: [`routes`](fn@routes) lists every route with its [`Access`] level, and one
//! middleware (`guard`) enforces it before any handler runs — authentication (session cookie or API
//! token), the role, and CSRF on every state-changing request. Errors have one path: handlers return
//! `Result<_, ApiError>` and one middleware (`render_errors`) writes each error as JSON for the API
//! or as a page in the caller's language.
//!
//! One file per domain, named as the operations' file in `crate::app` it calls, each with its pages
//! (server-rendered HTML with maud, Vietnamese first) and its `/api/v1` handlers (JSON): [`people`],
//! [`declarations`], [`alerts`], [`dashboard`], [`followup`], [`outbox`], [`inbox`], [`messages`],
//! [`bands`], [`presence`], [`location`], [`spotcheck`], [`sampling`], [`checkin`], [`reports`],
//! [`accounts`], [`mqtt`], [`system`]. Beside them: [`routes`](mod@routes) (the access table), [`kit`] (state,
//! the caller, forms, cookies, CSRF), [`error`], [`layout`] (the page frame). Handlers call only
//! operations and read models; they never touch the store.

pub mod accounts;
pub mod alerts;
pub mod bands;
pub mod checkin;
pub mod dashboard;
pub mod declarations;
pub mod error;
pub mod exposure;
pub mod followup;
pub mod inbox;
pub mod kit;
pub mod layout;
pub mod location;
pub mod messages;
pub mod mqtt;
pub mod outbox;
pub mod people;
pub mod presence;
pub mod reports;
pub mod routes;
pub mod sampling;
pub mod scanners;
pub mod spotcheck;
pub mod strip;
pub mod system;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Request, State},
    http::{header, request::Parts, Method},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    Router,
};
use outpost_sync::record::Role;

pub use error::ApiError;
pub use kit::{AppState, Ctx};
pub use routes::{routes, Access, RouteDef};

use crate::app::accounts::{same_secret, Staff};
use error::{closing, is_api};
use kit::{cookie, lang_of, query_param, urlencode, CSRF_COOKIE, SESSION_COOKIE};

/// The box's HTTP service.
pub fn router(state: AppState) -> Router {
    let limit = state.app.config().web.max_upload_bytes;
    let mut router = Router::new();
    for def in routes() {
        let guarded = def.handler.layer(middleware::from_fn_with_state((state.clone(), def.access), guard));
        router = router.route(def.path, guarded);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, refuse_oversize))
        .layer(middleware::from_fn(render_errors))
        .layer(middleware::from_fn(outpost_link::headers::security))
        .with_state(state)
}

/// `router` for the plain-HTTP listener of a box that serves HTTPS on `https_port`: `/healthz` is
/// answered, every other request is sent to the same name over HTTPS (308, method and body kept).
pub fn redirect_to_https(https_port: u16, router: Router) -> Router {
    router.layer(middleware::from_fn_with_state(https_port, to_https))
}

async fn to_https(State(port): State<u16>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    // The name the caller used (a name or an IPv4 address, nothing else), else the box's own.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        .filter(|h| crate::base::validate::host_name(h) || h.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or("outpost.local");
    let port = if port == 443 { String::new() } else { format!(":{port}") };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    closing(Redirect::permanent(&format!("https://{host}{port}{path}")).into_response())
}

/// `router` for the HTTPS listener on `https_port` once the site may have a trusted name (`certs`):
/// answers for that name carry HSTS (a year: the browser will not fall back to plain HTTP or accept
/// another certificate for it), and pages asked for as `outpost.local` are sent to the name (308),
/// so that phones keep the secure origin their permissions belong to. Only once the name is served.
/// The redirect only when the box answers the name on its own access point (`local_dns`): a box on
/// a network it does not serve DNS for keeps `outpost.local`, which avahi answers there.
pub fn on_https(
    (https_port, local_dns): (u16, bool),
    certs: Arc<crate::platform::tls::Certs>,
    router: Router,
) -> Router {
    router.layer(middleware::from_fn_with_state((https_port, local_dns, certs), named_host))
}

async fn named_host(
    State((port, local_dns, certs)): State<(u16, bool, Arc<crate::platform::tls::Certs>)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(named) = certs.named() else { return next.run(req).await };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_ascii_lowercase())
        .unwrap_or_default();
    let page = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD)
        && req.uri().path() != "/healthz"
        && !req.uri().path().starts_with("/api/");
    if host == "outpost.local" && page && local_dns {
        let port = if port == 443 { String::new() } else { format!(":{port}") };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        return Redirect::permanent(&format!("https://{}{port}{path}", named.name)).into_response();
    }
    let mut res = next.run(req).await;
    if host == named.name {
        res.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, header::HeaderValue::from_static("max-age=31536000"));
    }
    res
}

/// Bodies up to this size are read and dropped before a 413, so the sender sees the answer.
const DRAIN_MAX: usize = 16 * 1024 * 1024;

/// Whether a request carries a body (which a refusal leaves unread).
fn has_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_LENGTH) || headers.contains_key(header::TRANSFER_ENCODING)
}

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
    if len <= DRAIN_MAX {
        let drain = async {
            let mut stream = req.into_body().into_data_stream();
            while let Some(Ok(_)) = futures_util::StreamExt::next(&mut stream).await {}
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
    }
    closing(ApiError::TooLarge.into_response())
}

async fn not_found(req: Request) -> Response {
    let res = ApiError::NotFound.into_response();
    if has_body(req.headers()) {
        closing(res)
    } else {
        res
    }
}

/// The middleware that renders every [`ApiError`] an answer carries, as JSON for the API and as a
/// page in the caller's language for the rest. Headers the answer already had (a `Connection:
/// close` after an unread body) are kept.
async fn render_errors(req: Request, next: Next) -> Response {
    let (api, lang) = (is_api(req.uri().path()), lang_of(req.headers()));
    let res = next.run(req).await;
    let Some(error) = error::carried(&res) else { return res };
    let (parts, _) = res.into_parts();
    let mut rendered = error.respond(api, lang);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

/// Who is calling: the account behind a bearer token (a wrong one is refused), else behind the
/// session cookie, else nobody.
fn authenticate(state: &AppState, parts: &Parts) -> Result<Option<Staff>, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer {
        Some(token) => state.app.staff_for_api_token(token).map(Some).ok_or(ApiError::Unauthorized),
        None => {
            Ok(cookie(&parts.headers, SESSION_COOKIE).and_then(|token| state.app.staff_for_session(token)))
        }
    }
}

/// Why a caller may not use a route.
enum Refused {
    /// Nobody is signed in and a page was asked for: sign in first, then come back.
    SignIn,
    Error(ApiError),
}

/// Whether `staff` may use a route of `access`.
fn authorise(access: Access, staff: Option<&Staff>, parts: &Parts, writes: bool) -> Result<(), Refused> {
    match (access, staff) {
        (Access::Public, _) | (Access::Staff, Some(_)) => Ok(()),
        (_, None) if is_api(parts.uri.path()) || writes => Err(Refused::Error(ApiError::Unauthorized)),
        (_, None) => Err(Refused::SignIn),
        (Access::Writer, Some(s)) if s.role.can_write() => Ok(()),
        (Access::Admin, Some(s)) if s.role == Role::Admin => Ok(()),
        (Access::Reporter, Some(s)) if s.role.can_confirm_report() => Ok(()),
        (_, Some(_)) => Err(Refused::Error(ApiError::Forbidden)),
    }
}

/// Checks CSRF on a write: session-authenticated writes must carry the session's token, anonymous
/// form posts must repeat the CSRF cookie. API-token requests and JSON bodies (which browsers cannot
/// send cross-site without a preflight) need neither. A form's body is read for its token and given
/// back.
async fn check_csrf(
    state: &AppState,
    (access, staff): (Access, Option<&Staff>),
    parts: &Parts,
    body: Body,
) -> Result<Body, ApiError> {
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let is_json = content_type.starts_with("application/json");
    let expected = match (access, staff) {
        (Access::Public, _) if is_json => None,
        (Access::Public, _) => Some(cookie(&parts.headers, CSRF_COOKIE).unwrap_or("").to_owned()),
        (_, Some(s)) => s.csrf.clone(),
        (_, None) => None,
    };
    let Some(expected) = expected else { return Ok(body) };
    let mut body = body;
    let mut presented = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(parts.uri.query().unwrap_or(""), "csrf"));
    if presented.is_none() && is_form {
        let limit = state.app.config().web.max_upload_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::TooLarge)?;
        presented = query_param(&String::from_utf8_lossy(&bytes), "csrf");
        body = Body::from(bytes);
    }
    if !expected.is_empty() && presented.as_deref().is_some_and(|p| same_secret(p, &expected)) {
        Ok(body)
    } else {
        Err(ApiError::Csrf)
    }
}

/// Whether a public write fits its route's budgets ([`routes::budgets`]) for its link and its
/// caller's address; counted if it does.
fn within_budget(state: &AppState, parts: &Parts) -> bool {
    if !state.app.config().web.rate_limits {
        return true;
    }
    let Some(route) = parts.extensions.get::<axum::extract::MatchedPath>() else { return true };
    let ip = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let link = parts.uri.path().rsplit('/').next().unwrap_or("");
    routes::budgets(route.as_str()).iter().all(|(what, per, budget)| {
        let key = match per {
            routes::Per::Link => format!("{what}/link/{link}"),
            routes::Per::Address => format!("{what}/addr/{}", ip.map(|i| i.to_string()).unwrap_or_default()),
        };
        state.rates.allow(&key, *budget)
    })
}

/// Authenticates, authorises and checks CSRF for one route.
async fn guard(State((state, access)): State<(AppState, Access)>, req: Request, next: Next) -> Response {
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // A refusal leaves the request body unread, so the connection cannot be reused: say so, or a
    // client may send its next request down a connection the server is closing.
    let body_unread = has_body(req.headers());
    let refuse = |res: Response| if body_unread { closing(res) } else { res };
    let (mut parts, body) = req.into_parts();
    let staff = match authenticate(&state, &parts) {
        Ok(staff) => staff,
        Err(e) => return refuse(e.into_response()),
    };
    match authorise(access, staff.as_ref(), &parts, writes) {
        Ok(()) => {}
        Err(Refused::SignIn) => {
            let back = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Redirect::to(&format!("/login?next={}", urlencode(back))).into_response();
        }
        Err(Refused::Error(e)) => return refuse(e.into_response()),
    }
    if writes && access == Access::Public && !within_budget(&state, &parts) {
        return refuse(ApiError::TooMany.into_response());
    }
    let body = if writes {
        match check_csrf(&state, (access, staff.as_ref()), &parts, body).await {
            Ok(body) => body,
            Err(e) => return refuse(e.into_response()),
        }
    } else {
        body
    };
    if let Some(s) = staff {
        parts.extensions.insert(s);
    }
    next.run(Request::from_parts(parts, body)).await
}
