//! Accounts on the web [M13]: the login and the language switch, the one-time setup link, the
//! administrator's pages for accounts and API tokens, the audit log, and their API.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{
        cookie, local_path, posted_csrf, referer_path, staff_page, Answer, AppState, Ctx, FormData,
        LANG_COOKIE, SESSION_COOKIE,
    },
    layout::{badge, csrf_field, page, problems},
};
use crate::{
    app::{accounts::AccountInput, AppError},
    base::{
        audit::AuditEntry,
        i18n::{t, td, Lang},
        validate::{self, Problem},
    },
};

#[derive(Deserialize)]
pub struct Back {
    back: Option<String>,
}

pub async fn set_lang(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<Back>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::parse(&code);
    let back = q.back.or_else(|| referer_path(&headers)).unwrap_or_else(|| "/".into());
    let mut res = Redirect::to(local_path(&back)).into_response();
    let secure = if state.app.config().web.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}",
        lang.code()
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// The fingerprint of the box's own certificate while the box serves HTTPS without a trusted
/// certificate for the site's name: staff phones must then trust the box's own, and the login page
/// says how.
fn own_certificate(state: &AppState) -> Option<String> {
    let certs = state.services.certs()?;
    certs.named().is_none().then(|| state.services.certificate().map(|c| c.fingerprint.clone())).flatten()
}

fn login_form(
    (lang, trust): (Lang, Option<String>),
    csrf: &str,
    next: &str,
    list: &[Problem],
    username: &str,
) -> Markup {
    page(
        lang,
        None,
        t(lang, "login.title"),
        html! {
            h1 { (t(lang, "login.title")) }
            (problems(lang, list))
            form.stack method="post" action="/login" {
                (csrf_field(csrf))
                input type="hidden" name="next" value=(next);
                label { (t(lang, "login.username")) input name="username" autocomplete="username" required value=(username); }
                label { (t(lang, "login.password")) input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t(lang, "login.submit")) }
            }
            @if let Some(fingerprint) = trust {
                aside #trust-box.muted {
                    p { (t(lang, "login.trust")) }
                    p { a href="/box.crt" download="outpost-box.crt" { "outpost-box.crt" } " · SHA-256: " code { (fingerprint) } }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = q.next.unwrap_or_else(|| "/".into());
    let trust = own_certificate(&state);
    state.public_form(&headers, |csrf| login_form((ctx.lang, trust), csrf, local_path(&next), &[], ""))
}

/// The session cookie for `token` (an empty one with no age ends it).
fn session_cookie(state: &AppState, token: &str) -> header::HeaderValue {
    let hours = i64::from(state.app.config().web.session_hours);
    state.cookie_header(SESSION_COOKIE, token, if token.is_empty() { 0 } else { hours * 3600 })
}

pub async fn login(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, body: Bytes) -> Answer {
    let f = FormData::parse(&body);
    let (username, password) = (f.get("username").trim().to_lowercase(), f.get("password"));
    let next = f.get("next");
    let Some(token) = state.app.log_in(&username, &password, ctx.ip).await? else {
        let list = [Problem::new("", t(Lang::Vi, "login.failed"), t(Lang::En, "login.failed"))];
        let trust = own_certificate(&state);
        let form = login_form((ctx.lang, trust), posted_csrf(&headers), local_path(&next), &list, &username);
        return Ok((StatusCode::UNAUTHORIZED, form).into_response());
    };
    let mut res = Redirect::to(local_path(&next)).into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, &token));
    Ok(res)
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    state.app.log_out(cookie(&headers, SESSION_COOKIE)).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, ""));
    Ok(res)
}

fn setup_form(lang: Lang, token: &str, csrf: &str, list: &[Problem], f: Option<&FormData>) -> Markup {
    let v = |k: &str| f.map(|f| f.get(k)).unwrap_or_default();
    page(
        lang,
        None,
        t(lang, "setup.title"),
        html! {
            h1 { (t(lang, "setup.title")) }
            (problems(lang, list))
            form.stack method="post" action=(format!("/setup/{token}")) {
                (csrf_field(csrf))
                label { (t(lang, "setup.display_name")) input name="display_name" required value=(v("display_name")); }
                label { (t(lang, "login.username")) input name="username" required autocomplete="username" value=(v("username")); }
                label { (t(lang, "login.password")) input name="password" type="password" required minlength="10" autocomplete="new-password"; }
                label { (t(lang, "setup.password2")) input name="password2" type="password" required minlength="10" autocomplete="new-password"; }
                button type="submit" { (t(lang, "setup.create")) }
            }
        },
    )
}

fn setup_invalid() -> ApiError {
    ApiError::invalid("", t(Lang::Vi, "setup.invalid"), t(Lang::En, "setup.invalid"))
}

pub async fn setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Answer {
    if !state.app.setup_link_valid(&token) {
        return Err(ApiError::NotFound);
    }
    Ok(state.public_form(&headers, |csrf| setup_form(ctx.lang, &token, csrf, &[], None)))
}

/// A new account's fields from a form.
fn account_input(f: &FormData) -> AccountInput {
    AccountInput {
        username: f.get("username").trim().to_lowercase(),
        display_name: f.get("display_name"),
        password: f.get("password"),
        password2: f.get("password2"),
    }
}

pub async fn setup(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Answer {
    if !state.app.setup_link_valid(&token) {
        return Err(setup_invalid());
    }
    let f = FormData::parse(&body);
    let session = match state.app.create_first_admin(&token, account_input(&f)).await {
        Ok(session) => session,
        Err(AppError::Invalid(list)) => {
            let form = setup_form(ctx.lang, &token, posted_csrf(&headers), &list, Some(&f));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, form).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, &session));
    Ok(res)
}

fn users_page(state: &AppState, ctx: &Ctx, list: &[Problem], token: Option<&str>) -> Answer {
    let lang = ctx.lang;
    let users = state.app.users()?;
    let csrf = ctx.csrf();
    let status = if list.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(staff_page(
        ctx,
        status,
        t(lang, "users.title"),
        html! {
            h1 { (t(lang, "users.title")) }
            (problems(lang, list))
            @if let Some(tok) = token { div.notice { (t(lang, "users.token_once")) " " code #api-token { (tok) } } }
            div.scroll { table {
                thead { tr { th { (t(lang, "login.username")) } th { (t(lang, "setup.display_name")) } th { (t(lang, "users.role")) } th { (t(lang, "common.actions")) } } }
                tbody { @for u in &users {
                    tr {
                        td { (u.username) } td { (u.display_name) }
                        td { (td(lang, &format!("role.{}", u.role.as_str()))) @if !u.active { " " (badge(lang, "open", "common.no")) } }
                        td {
                            form.inline method="post" action=(format!("/users/{}", u.username)) {
                                (csrf_field(&csrf))
                                select name="role" { @for r in Role::ALL { option value=(r.as_str()) selected[r == u.role] { (td(lang, &format!("role.{}", r.as_str()))) } } }
                                label.check { input type="checkbox" name="active" checked[u.active]; (t(lang, "users.active")) }
                                input name="password" type="password" autocomplete="new-password" placeholder=(t(lang, "login.password"));
                                button.secondary type="submit" { (t(lang, "people.save")) }
                            }
                            form.inline method="post" action=(format!("/users/{}/token", u.username)) {
                                (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "users.tokens")) }
                            }
                            @for tok in state.app.api_tokens(&u.username)? {
                                form.inline.token method="post" action=(format!("/users/{}/tokens/{}/revoke", u.username, tok.id)) {
                                    (csrf_field(&csrf))
                                    code { (tok.id) } " "
                                    span.muted { (t(lang, "users.token_expires")) " " (state.fmt_time(tok.expires_at)) } " "
                                    button.secondary type="submit" { (t(lang, "users.token_revoke")) }
                                }
                            }
                        }
                    }
                } }
            } }
            h2 { (t(lang, "users.add")) }
            form.stack method="post" action="/users" {
                (csrf_field(&csrf))
                label { (t(lang, "setup.display_name")) input name="display_name" required; }
                label { (t(lang, "login.username")) input name="username" required; }
                label { (t(lang, "users.role")) select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (td(lang, &format!("role.{}", r.as_str()))) } } } }
                label { (t(lang, "login.password")) input name="password" type="password" required minlength="10" autocomplete="new-password"; }
                label { (t(lang, "setup.password2")) input name="password2" type="password" required minlength="10" autocomplete="new-password"; }
                button type="submit" { (t(lang, "users.add")) }
            }
        },
    ))
}

pub async fn users(State(state): State<AppState>, ctx: Ctx) -> Answer {
    users_page(&state, &ctx, &[], None)
}

/// After an administrator's change: the list again, or the page with why it was refused.
fn after_change(state: &AppState, ctx: &Ctx, done: Result<(), AppError>) -> Answer {
    match done {
        Ok(()) => Ok(Redirect::to("/users").into_response()),
        Err(AppError::Invalid(list)) => users_page(state, ctx, &list, None),
        Err(e) => Err(e.into()),
    }
}

pub async fn add_user(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let admin = ctx.username()?;
    let f = FormData::parse(&body);
    let role = validate::required("role", &f.get("role"), Role::parse);
    let done = state.app.add_user(account_input(&f), role, &admin).await.map(|_| ());
    after_change(&state, &ctx, done)
}

pub async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let admin = ctx.username()?;
    let f = FormData::parse(&body);
    let role = validate::required("role", &f.get("role"), Role::parse);
    let active = f.opt("active").is_some();
    let done = state.app.update_user(&name, role, active, f.get("password"), &admin).await.map(|_| ());
    after_change(&state, &ctx, done)
}

pub async fn new_token(State(state): State<AppState>, ctx: Ctx, Path(name): Path<String>) -> Answer {
    let token = state.app.new_api_token(&name, &ctx.username()?).await?;
    users_page(&state, &ctx, &[], Some(&token))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((name, id)): Path<(String, String)>,
) -> Answer {
    state.app.revoke_api_token(&name, &id, &ctx.username()?).await?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn audit(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let list = state.app.audit_log(500)?;
    let body = html! {
        h1 { (t(lang, "audit.title")) }
        div.scroll { table {
            thead { tr { th { (t(lang, "common.time")) } th { (t(lang, "audit.user")) } th { (t(lang, "audit.action")) } th { (t(lang, "audit.target")) } th { (t(lang, "common.detail")) } } }
            tbody { @for e in &list { tr { td { (state.fmt_time(e.at)) } td { (e.user) } td { (td(lang, &format!("act.{}", e.action))) } td { (e.target) } td { (e.detail) } } } }
        } }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "audit.title"), body))
}

// ----- API -----

pub async fn api_session(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let s = ctx.staff()?;
    Ok(Json(json!({"username": s.username, "display_name": s.display_name, "role": s.role, "csrf": s.csrf})))
}

pub async fn api_audit(State(state): State<AppState>) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(state.app.audit_log(1000)?))
}
