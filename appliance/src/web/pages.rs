//! The server-rendered pages: staff pages behind a session, and the public ones (login, the one-time
//! setup link, a quarantined person's own declaration page). Forms are parsed here by hand from the raw
//! body so repeated fields (symptom checkboxes) and bad encodings give a clear message, never a 500.

use std::convert::Infallible;

use axum::{
    body::Bytes,
    extract::{Multipart, Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event as SseEvent, KeepAlive, Sse},
        IntoResponse, Redirect, Response,
    },
};
use chrono::NaiveDate;
use futures_util::{Stream, StreamExt};
use maud::{html, Markup};
use outpost_sync::{
    record::{AlertState, Category, Channel, Declaration, Person, PersonStatus, Role, Symptom, User},
    WriteSet,
};
use serde::Deserialize;

use super::{
    cookie,
    layout::{self, badge, csrf_field, masked, page, problems},
    url_pairs, ApiError, AppState, Ctx, PageError, PendingImport, CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE,
};
use crate::{
    app::DeclarationInput,
    audit, auth, csvio, dashboard,
    i18n::{t, td, Lang},
    validate::{PersonInput, Problem},
};

pub(super) type PageResult = Result<Response, PageError>;

pub(super) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// Form fields from an urlencoded body.
pub(super) struct FormData(pub(super) Vec<(String, String)>);

impl FormData {
    pub(super) fn parse(body: &Bytes) -> FormData {
        FormData(url_pairs(&String::from_utf8_lossy(body)))
    }
    pub(super) fn get(&self, name: &str) -> String {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
    fn opt(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
    fn person(&self) -> PersonInput {
        PersonInput {
            full_name: self.get("full_name"),
            birth_year: self.get("birth_year"),
            phone: self.get("phone"),
            gender: self.get("gender"),
            id_number: self.get("id_number"),
            address: self.get("address"),
            room: self.get("room"),
            quarantine_start: self.get("quarantine_start"),
            quarantine_end: self.get("quarantine_end"),
            decision_number: self.get("decision_number"),
            category: self.get("category"),
            worker: self.opt("worker"),
            child: self.opt("child"),
            pregnant: self.opt("pregnant"),
            foreigner: self.opt("foreigner"),
        }
    }
    fn declaration(&self) -> DeclarationInput {
        DeclarationInput {
            temperature: self.opt("temperature"),
            spo2: self.opt("spo2"),
            symptoms: self.all("symptoms"),
            note: self.get("note"),
        }
    }
}

fn cookie_header(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.app.config.raw.web.secure_cookies { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// The anonymous CSRF token for public forms: the cookie's, or a new one to set.
pub(super) fn public_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() == 32) {
        Some(c) => (c.to_owned(), false),
        None => (auth::random_token(), true),
    }
}

pub(super) fn with_public_csrf(state: &AppState, mut res: Response, token: &str, is_new: bool) -> Response {
    if is_new {
        res.headers_mut().append(header::SET_COOKIE, cookie_header(state, CSRF_COOKIE, token, 86400));
    }
    res
}

/// A public page with a form (`render` gets the CSRF token its form repeats), setting the anonymous
/// CSRF cookie when the browser has none yet.
pub(super) fn public_page(
    state: &AppState,
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> Markup,
) -> Response {
    let (csrf, new) = public_csrf(headers);
    let res = html_response(StatusCode::OK, render(&csrf));
    with_public_csrf(state, res, &csrf, new)
}

pub(super) fn csrf_of(ctx: &Ctx) -> String {
    ctx.staff.as_ref().and_then(|s| s.csrf.clone()).unwrap_or_default()
}

pub(super) fn can_write(ctx: &Ctx) -> bool {
    ctx.staff.as_ref().is_some_and(|s| s.role.can_write())
}

pub(super) fn fmt_time(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    state.app.schedule.local(at).format("%d/%m/%Y %H:%M").to_string()
}

/// A safe local redirect target.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

// ----- public -----

/// Liveness for monitoring: 200 `ok`; 503 `store_unavailable` when the store cannot be read, or
/// `degraded` when it cannot write (full or read-only card). The problems' codes only: details are
/// for staff, on the health page.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let store_ok = state.app.store.get_local::<serde_json::Value>("none").is_ok();
    let (_, problems) = crate::system::read(&state.app);
    let writes_fail = problems.iter().any(|p| p.writes_fail);
    let (status, word) = match (store_ok, writes_fail) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        (true, true) => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
        (true, false) => (StatusCode::OK, "ok"),
    };
    let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
    (
        status,
        axum::Json(
            serde_json::json!({"status": word, "version": env!("CARGO_PKG_VERSION"), "problems": codes}),
        ),
    )
        .into_response()
}

/// A backup of all data, made now while the box runs and streamed as it is read (administrators;
/// see [`crate::backup`]).
pub async fn download_backup(State(state): State<AppState>, ctx: Ctx) -> Response {
    let name = format!(
        "outpost-{}-{}.backup",
        state.app.config.raw.site.id,
        state.app.now().format("%Y%m%d-%H%M%S")
    );
    if let Some(staff) = &ctx.staff {
        // Best effort: a card that takes no writes is when a backup is needed most.
        let mut w = WriteSet::new();
        let logged = audit::record(
            &mut w,
            &state.app.store,
            state.app.now(),
            &staff.username,
            "backup.download",
            &name,
            "",
        )
        .map_err(crate::app::AppError::from);
        let logged = match logged {
            Ok(()) => state.app.store.commit(w).await.map(|_| ()).map_err(crate::app::AppError::from),
            Err(e) => Err(e),
        };
        if let Err(error) = logged {
            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "The backup download is not in the audit log.");
        }
    }
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(
        crate::backup::stream(state.app.clone()),
    ));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "app.css" => (layout::CSS, "text/css; charset=utf-8"),
        "app.js" => (layout::JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::NotFound.respond(false, Lang::Vi),
    };
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

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
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| {
        let after_scheme = r.split_once("://").map_or(r, |(_, rest)| rest);
        after_scheme.find('/').map(|i| after_scheme[i..].to_owned())
    });
    let back = q.back.or(referer).unwrap_or_else(|| "/".into());
    let mut res = Redirect::to(local_path(&back)).into_response();
    let secure = if state.app.config.raw.web.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}",
        lang.code()
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn login_form(lang: Lang, csrf: &str, next: &str, list: &[Problem], username: &str) -> Markup {
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
    let (csrf, new) = public_csrf(&headers);
    let next = q.next.unwrap_or_else(|| "/".into());
    let res = html_response(StatusCode::OK, login_form(ctx.lang, &csrf, local_path(&next), &[], ""));
    with_public_csrf(&state, res, &csrf, new)
}

pub async fn login(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, body: Bytes) -> PageResult {
    let f = FormData::parse(&body);
    let (username, password) = (f.get("username").trim().to_lowercase(), f.get("password"));
    let next = f.get("next");
    let now = state.app.now();
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or("").to_owned();
    if let Some(until) = state.throttle.locked_until(&username, ctx.ip, now) {
        return Err(PageError(ApiError::Locked(until), ctx.lang));
    }
    let store = state.app.store.clone();
    let (u, p) = (username.clone(), password.clone());
    let user = tokio::task::spawn_blocking(move || auth::check_login(&store, &u, &p))
        .await
        .map_err(|e| PageError(ApiError::Internal(e.to_string()), ctx.lang))?
        .map_err(|e| PageError(crate::app::AppError::Store(e).into(), ctx.lang))?;
    let Some(user) = user else {
        state.throttle.failed(&username, ctx.ip, now);
        tracing::info!(user = %username, "Failed login.");
        let list = [Problem::new("", t(Lang::Vi, "login.failed"), t(Lang::En, "login.failed"))];
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            login_form(ctx.lang, &csrf, local_path(&next), &list, &username),
        ));
    };
    state.throttle.succeeded(&username);
    let hours = state.app.config.raw.web.session_hours;
    let mut w = WriteSet::new();
    let token = auth::new_session(&mut w, &user.username, now, hours).map_err(|e| (e.into(), ctx.lang))?;
    audit::record(&mut w, &state.app.store, now, &user.username, "login", "", "")
        .map_err(|e| (e.into(), ctx.lang))?;
    state.app.store.commit(w).await.map_err(|e| (e.into(), ctx.lang))?;
    let mut res = Redirect::to(local_path(&next)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, &token, i64::from(hours) * 3600));
    Ok(res)
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap) -> PageResult {
    let mut w = WriteSet::new();
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        auth::end_session(&mut w, token);
    }
    state.app.store.commit(w).await.map_err(|e| (e.into(), ctx.lang))?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, "", 0));
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

fn setup_invalid(lang: Lang) -> PageError {
    PageError(
        ApiError::Invalid(vec![Problem::new("", t(Lang::Vi, "setup.invalid"), t(Lang::En, "setup.invalid"))]),
        lang,
    )
}

pub async fn setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> PageResult {
    if !auth::setup_token_valid(&state.app.store, &token) {
        return Err(PageError(ApiError::NotFound, ctx.lang));
    }
    let (csrf, new) = public_csrf(&headers);
    let res = html_response(StatusCode::OK, setup_form(ctx.lang, &token, &csrf, &[], None));
    Ok(with_public_csrf(&state, res, &csrf, new))
}

/// Checks a new account's fields.
fn account_problems(username: &str, display_name: &str, password: &str, password2: &str) -> Vec<Problem> {
    let mut list = Vec::new();
    if !auth::check_username(username) {
        list.push(Problem::new(
            "username",
            t(Lang::Vi, "setup.bad_username"),
            t(Lang::En, "setup.bad_username"),
        ));
    }
    if display_name.trim().is_empty() {
        list.push(Problem::new("display_name", "Thiếu họ tên.", "Full name is missing."));
    }
    if let Err((vi, en)) = auth::check_password(password) {
        list.push(Problem::new("password", vi, en));
    }
    if password != password2 {
        list.push(Problem::new("password2", t(Lang::Vi, "setup.mismatch"), t(Lang::En, "setup.mismatch")));
    }
    list
}

pub async fn setup(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> PageResult {
    if !auth::setup_token_valid(&state.app.store, &token) {
        return Err(setup_invalid(ctx.lang));
    }
    let f = FormData::parse(&body);
    let username = f.get("username").trim().to_lowercase();
    let list = account_problems(&username, &f.get("display_name"), &f.get("password"), &f.get("password2"));
    if !list.is_empty() {
        let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or("");
        return Ok(html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_form(ctx.lang, &token, csrf, &list, Some(&f)),
        ));
    }
    let now = state.app.now();
    let user = User {
        username: username.clone(),
        display_name: crate::validate::clip(&f.get("display_name"), 100),
        role: Role::Admin,
        active: true,
        created_at: now,
    };
    let hours = state.app.config.raw.web.session_hours;
    let password = f.get("password");
    let store = state.app.store.clone();
    let session = tokio::task::spawn_blocking(move || -> Result<String, outpost_sync::StoreError> {
        let mut w = WriteSet::new();
        auth::add_user(&mut w, &user, &password)?;
        auth::consume_setup(&mut w);
        let session = auth::new_session(&mut w, &user.username, now, hours)?;
        audit::record(&mut w, &store, now, &user.username, "setup.admin", &user.username, "")?;
        store.commit_blocking(w)?;
        Ok(session)
    })
    .await
    .map_err(|e| PageError(ApiError::Internal(e.to_string()), ctx.lang))?
    .map_err(|e| (e.into(), ctx.lang))?;
    tracing::info!(user = %username, "First administrator created; the setup link is spent.");
    auth::leave_setup_link(&state.app.config.raw.store.data_dir, None);
    let mut res = Redirect::to("/").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, cookie_header(&state, SESSION_COOKIE, &session, i64::from(hours) * 3600));
    Ok(res)
}

fn symptom_checkboxes(lang: Lang, checked: &[String]) -> Markup {
    html! {
        fieldset.symptoms {
            legend { (t(lang, "decl.symptoms")) }
            @for s in Symptom::ALL {
                label.check {
                    input type="checkbox" name="symptoms" value=(s.as_str()) checked[checked.iter().any(|c| c == s.as_str())];
                    (td(lang, &format!("sym.{}", s.as_str())))
                }
            }
        }
    }
}

fn declaration_fields(lang: Lang, f: Option<&FormData>) -> Markup {
    let v = |k: &str| f.map(|f| f.get(k)).unwrap_or_default();
    let checked = f.map(|f| f.all("symptoms")).unwrap_or_default();
    html! {
        label { (t(lang, "decl.temperature")) input name="temperature" inputmode="decimal" required placeholder="36.8" value=(v("temperature")); }
        label { (t(lang, "decl.spo2")) input name="spo2" inputmode="numeric" placeholder="98" value=(v("spo2")); }
        (symptom_checkboxes(lang, &checked))
        label { (t(lang, "decl.note")) textarea name="note" rows="2" maxlength="1000" { (v("note")) } }
    }
}

fn declare_form(
    state: &AppState,
    lang: Lang,
    person: &Person,
    csrf: &str,
    list: &[Problem],
    f: Option<&FormData>,
) -> Markup {
    let slot = state.app.schedule.slot_for(state.app.now());
    page(
        lang,
        None,
        t(lang, "decl.title"),
        html! {
            h1 { (t(lang, "decl.title")) }
            p { strong { (person.full_name) } " · " (t(lang, "decl.for_slot")) " " (slot.format("%H:%M %d/%m/%Y")) }
            (problems(lang, list))
            // The page reports the phone's position every 5 minutes while it is open (app.js).
            div #position data-url=(format!("/api/v1/position/{}", person.declare_token)) hidden {}
            form.stack method="post" action=(format!("/d/{}", person.declare_token)) {
                (csrf_field(csrf))
                (declaration_fields(lang, f))
                button type="submit" { (t(lang, "decl.submit")) }
            }
        },
    )
}

pub async fn declare_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> PageResult {
    let person = state.app.person_by_token(&token).map_err(|e| (e, ctx.lang))?;
    Ok(public_page(&state, &headers, |csrf| declare_form(&state, ctx.lang, &person, csrf, &[], None)))
}

pub async fn declare(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> PageResult {
    let person = state.app.person_by_token(&token).map_err(|e| (e, ctx.lang))?;
    let f = FormData::parse(&body);
    match state.app.declare(&person, &f.declaration(), Channel::Personal, None).await {
        Ok((_, alert)) => Ok(html_response(
            StatusCode::OK,
            page(
                ctx.lang,
                None,
                t(ctx.lang, "decl.title"),
                html! {
                    h1 { (t(ctx.lang, "decl.title")) }
                    p.notice { (t(ctx.lang, "decl.thanks")) }
                    @if alert.is_some() { p.problems { (t(ctx.lang, "decl.alerted")) } }
                },
            ),
        )),
        Err(crate::app::AppError::Invalid(list)) => {
            let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or("");
            Ok(html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                declare_form(&state, ctx.lang, &person, csrf, &list, Some(&f)),
            ))
        }
        Err(e) => Err((e, ctx.lang).into()),
    }
}

// ----- dashboard -----

fn brief_list(lang: Lang, list: &[dashboard::Brief]) -> Markup {
    html! {
        @if list.is_empty() { p.muted { (t(lang, "dash.none")) } }
        @else {
            ul.plain { @for b in list.iter().take(100) {
                li { a href=(format!("/people/{}", b.id)) { (b.full_name) } " " span.muted { (b.room) } }
            } }
            @if list.len() > 100 { p.muted { "… +" (list.len() - 100) } }
        }
    }
}

fn alert_rows(state: &AppState, ctx: &Ctx, alerts: &[(outpost_sync::record::Alert, String)]) -> Markup {
    let lang = ctx.lang;
    let csrf = csrf_of(ctx);
    html! {
        div.scroll { table {
            thead { tr {
                th { (t(lang, "alerts.raised")) } th { (t(lang, "common.person")) } th { (t(lang, "common.detail")) }
                th { (t(lang, "field.status")) } th { (t(lang, "common.actions")) }
            } }
            tbody { @for (a, name) in alerts {
                tr id=(format!("alert-{}", a.id)) data-kind=(a.kind.as_str()) data-state=(a.state.as_str()) {
                    td { (fmt_time(state, a.raised_at)) }
                    td { a href=(format!("/people/{}", a.person_id)) { (name) } }
                    td {
                        (badge(lang, match a.severity { outpost_sync::record::Severity::Severe => "severe", _ => "warning" }, &format!("alert.{}", a.kind.as_str())))
                        " " (a.detail)
                        @if a.escalations > 0 { " " span.muted { (t(lang, "alerts.escalated")) " ×" (a.escalations) } }
                    }
                    td {
                        (badge(lang, a.state.as_str(), &format!("state.{}", a.state.as_str())))
                        @if let Some(by) = &a.acknowledged_by { br; span.muted { (by) } }
                        @if !a.resolution_note.is_empty() { br; span.muted { (a.resolution_note) } }
                    }
                    td {
                        @if can_write(ctx) && a.state == AlertState::Open {
                            form.inline method="post" action=(format!("/alerts/{}/ack", a.id)) {
                                (csrf_field(&csrf)) button type="submit" { (t(lang, "alerts.ack")) }
                            }
                        }
                        @if can_write(ctx) && a.state != AlertState::Resolved {
                            form.inline method="post" action=(format!("/alerts/{}/resolve", a.id)) {
                                (csrf_field(&csrf))
                                input name="note" required placeholder=(t(lang, "alerts.resolution"));
                                button.secondary type="submit" { (t(lang, "alerts.resolve")) }
                            }
                        }
                    }
                }
            } }
        } }
    }
}

fn live_fragment(state: &AppState, ctx: &Ctx, d: &dashboard::Dashboard) -> Markup {
    let lang = ctx.lang;
    html! {
        p.muted { (t(lang, "dash.slot")) " " strong { (d.slot.format("%H:%M %d/%m/%Y")) } }
        div.cards {
            div.card { div.n data-count="in_quarantine" { (d.in_quarantine) } (t(lang, "dash.in_quarantine")) }
            div.card { div.n data-count="declared" { (d.declared) } (t(lang, "dash.declared")) }
            div.card { div.n data-count="due" { (d.due.len()) } (t(lang, "dash.due")) }
            div.card.late { div.n data-count="late" { (d.late.len()) } (t(lang, "dash.late")) }
            div.card.missing { div.n data-count="missing" { (d.missing.len()) } (t(lang, "dash.missing")) }
            div.card.alerts { div.n data-count="open_alerts" { (d.open_alerts) } (t(lang, "dash.open_alerts")) }
        }
        h2 { (t(lang, "nav.alerts")) }
        @if d.alerts.is_empty() { p.muted { (t(lang, "dash.none")) } } @else { (alert_rows(state, ctx, &d.alerts)) }
        div.cards {
            div { h2 { (t(lang, "dash.missing")) } (brief_list(lang, &d.missing)) }
            div { h2 { (t(lang, "dash.late")) } (brief_list(lang, &d.late)) }
            div { h2 { (t(lang, "dash.due")) } (brief_list(lang, &d.due)) }
        }
    }
}

/// Renders the dashboard page body (used by the page and by the benchmark).
pub fn dashboard_markup(state: &AppState, ctx: &Ctx) -> Result<Markup, PageError> {
    let d = dashboard::compute(&state.app).map_err(|e| (e, ctx.lang))?;
    let lang = ctx.lang;
    Ok(page(
        lang,
        ctx.staff.as_ref(),
        t(lang, "dash.title"),
        html! {
            h1 { (t(lang, "dash.title")) " " span #live-state .live.off { "● " (t(lang, "dash.live")) } }
            div #live { (live_fragment(state, ctx, &d)) }
        },
    ))
}

pub async fn dashboard(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    Ok(html_response(StatusCode::OK, dashboard_markup(&state, &ctx)?))
}

pub async fn dashboard_live(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let d = dashboard::compute(&state.app).map_err(|e| (e, ctx.lang))?;
    Ok(html_response(StatusCode::OK, live_fragment(&state, &ctx, &d)))
}

pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.app.events.subscribe();
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|e| async move {
            let e = e.ok()?;
            Some(Ok(SseEvent::default().event("message").data(serde_json::to_string(&e).unwrap_or_default())))
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ----- people -----

#[derive(Deserialize, Default)]
pub struct PeopleQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    notice: Option<String>,
}

pub async fn people(State(state): State<AppState>, ctx: Ctx, Query(q): Query<PeopleQuery>) -> PageResult {
    let lang = ctx.lang;
    let status = PersonStatus::parse(&q.status);
    let category = Category::parse(&q.category);
    let list = state.app.people(&q.q, status, category).map_err(|e| (e, lang))?;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "people.title"),
            html! {
                h1 { (t(lang, "people.title")) " " span.muted { (list.len()) " " (t(lang, "people.count")) } }
                @if let Some(n) = &q.notice { p.notice { (n) } }
                p.inline {
                    @if can_write(&ctx) {
                        a.button href="/people/new" { (t(lang, "people.new")) }
                        a.button.secondary href="/people/import" { (t(lang, "people.import")) }
                    }
                    a.button.secondary href="/people/export.csv" { (t(lang, "people.export")) }
                }
                form.filters method="get" action="/people" {
                    input name="q" value=(q.q) placeholder=(t(lang, "people.search"));
                    select name="status" {
                        option value="" { (t(lang, "people.all")) }
                        @for s in PersonStatus::ALL { option value=(s.as_str()) selected[status == Some(s)] { (td(lang, &format!("status.{}", s.as_str()))) } }
                    }
                    select name="category" {
                        option value="" { (t(lang, "people.all")) }
                        @for c in Category::ALL { option value=(c.as_str()) selected[category == Some(c)] { (td(lang, &format!("category.{}", c.as_str()))) } }
                    }
                    button type="submit" { (t(lang, "people.filter")) }
                }
                form method="get" action="/sms/new" {
                    @if can_write(&ctx) { p { button.secondary type="submit" { (t(lang, "sms.to_selected")) } } }
                    div.scroll { table #people {
                        thead { tr {
                            @if can_write(&ctx) { th { "" } }
                            th { (t(lang, "field.full_name")) } th { (t(lang, "field.birth_year")) } th { (t(lang, "field.room")) }
                            th { (t(lang, "field.phone")) } th { (t(lang, "field.id_number")) } th { (t(lang, "field.category")) }
                            th { (t(lang, "field.status")) } th { (t(lang, "field.quarantine_end")) }
                        } }
                        tbody { @for p in &list {
                            tr {
                                @if can_write(&ctx) { td { input type="checkbox" name="p" value=(p.id) aria-label=(p.full_name); } }
                                td { a href=(format!("/people/{}", p.id)) { (p.full_name) } }
                                td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) }
                                td { (p.room) }
                                td { (p.phone) }
                                td { (masked(&p.id_number)) }
                                td { (td(lang, &format!("category.{}", p.category.as_str()))) }
                                td { (td(lang, &format!("status.{}", p.status.as_str()))) }
                                td { (p.quarantine_end.format("%d/%m/%Y")) }
                            }
                        } }
                    } }
                }
            },
        ),
    ))
}

fn person_form(lang: Lang, csrf: &str, action: &str, list: &[Problem], v: &PersonInput) -> Markup {
    let gender = |g: &str| v.gender == g;
    html! {
        (problems(lang, list))
        form.stack method="post" action=(action) {
            (csrf_field(csrf))
            label { (t(lang, "field.full_name")) input name="full_name" required value=(v.full_name); }
            label { (t(lang, "field.birth_year")) input name="birth_year" inputmode="numeric" value=(v.birth_year); }
            label { (t(lang, "field.phone")) input name="phone" type="tel" required value=(v.phone); }
            label { (t(lang, "field.gender")) select name="gender" {
                option value="" selected[gender("")] { "—" }
                option value="male" selected[gender("male")] { (t(lang, "gender.male")) }
                option value="female" selected[gender("female")] { (t(lang, "gender.female")) }
                option value="other" selected[gender("other")] { (t(lang, "gender.other")) }
            } }
            label { (t(lang, "field.id_number")) input name="id_number" required value=(v.id_number); }
            label { (t(lang, "field.address")) input name="address" value=(v.address); }
            label { (t(lang, "field.room")) input name="room" value=(v.room); }
            label { (t(lang, "field.quarantine_start")) input name="quarantine_start" type="date" required value=(v.quarantine_start); }
            label { (t(lang, "field.quarantine_end")) input name="quarantine_end" type="date" required value=(v.quarantine_end); }
            label { (t(lang, "field.decision_number")) input name="decision_number" value=(v.decision_number); }
            label { (t(lang, "field.category")) select name="category" {
                @for c in Category::ALL { option value=(c.as_str()) selected[v.category == c.as_str()] { (td(lang, &format!("category.{}", c.as_str()))) } }
            } }
            fieldset {
                legend { (t(lang, "field.flags")) }
                label.check { input type="checkbox" name="worker" checked[crate::validate::flag(&v.worker)]; (t(lang, "field.worker")) }
                label.check { input type="checkbox" name="child" checked[crate::validate::flag(&v.child)]; (t(lang, "field.child")) }
                label.check { input type="checkbox" name="pregnant" checked[crate::validate::flag(&v.pregnant)]; (t(lang, "field.pregnant")) }
                label.check { input type="checkbox" name="foreigner" checked[crate::validate::flag(&v.foreigner)]; (t(lang, "field.foreigner")) }
            }
            button type="submit" { (t(lang, "people.save")) }
        }
    }
}

fn input_of(p: &Person) -> PersonInput {
    let yes = |b: bool| if b { Some("on".to_owned()) } else { None };
    PersonInput {
        full_name: p.full_name.clone(),
        birth_year: p.birth_year.map(|y| y.to_string()).unwrap_or_default(),
        phone: p.phone.clone(),
        gender: p.gender.as_str().replace("unknown", ""),
        id_number: p.id_number.clone(),
        address: p.address.clone(),
        room: p.room.clone(),
        quarantine_start: p.quarantine_start.to_string(),
        quarantine_end: p.quarantine_end.to_string(),
        decision_number: p.decision_number.clone(),
        category: p.category.as_str().to_owned(),
        worker: yes(p.worker),
        child: yes(p.child),
        pregnant: yes(p.pregnant),
        foreigner: yes(p.foreigner),
    }
}

pub async fn new_person(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let today = state.app.today();
    let v = PersonInput {
        quarantine_start: today.to_string(),
        quarantine_end: (today + chrono::Duration::days(14)).to_string(),
        category: "f1".into(),
        ..Default::default()
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "people.new"),
            html! {
                h1 { (t(lang, "people.new")) }
                (person_form(lang, &csrf_of(&ctx), "/people", &[], &v))
            },
        ),
    ))
}

fn form_error_page(
    ctx: &Ctx,
    title: &'static str,
    action: &str,
    input: &PersonInput,
    e: crate::app::AppError,
) -> PageResult {
    let lang = ctx.lang;
    let list = match e {
        crate::app::AppError::Invalid(list) => list,
        crate::app::AppError::Conflict(p) => vec![p],
        e => return Err((e, lang).into()),
    };
    Ok(html_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, title),
            html! {
                h1 { (t(lang, title)) }
                (person_form(lang, &csrf_of(ctx), action, &list, input))
            },
        ),
    ))
}

pub async fn create_person(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> PageResult {
    let staff = ctx.staff().map_err(|e| PageError(e, ctx.lang))?.username.clone();
    let input = FormData::parse(&body).person();
    match state.app.create_person(&input, &staff).await {
        Ok(p) => Ok(Redirect::to(&format!("/people/{}", p.id)).into_response()),
        Err(e) => form_error_page(&ctx, "people.new", "/people", &input, e),
    }
}

pub async fn edit_person(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let lang = ctx.lang;
    let p = state.app.person(&id).map_err(|e| (e, lang))?;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "people.edit"),
            html! {
                h1 { (t(lang, "people.edit")) ": " (p.full_name) }
                (person_form(lang, &csrf_of(&ctx), &format!("/people/{}", p.id), &[], &input_of(&p)))
            },
        ),
    ))
}

pub async fn update_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let staff = ctx.staff().map_err(|e| PageError(e, ctx.lang))?.username.clone();
    let input = FormData::parse(&body).person();
    match state.app.update_person(&id, &input, &staff).await {
        Ok(p) => Ok(Redirect::to(&format!("/people/{}", p.id)).into_response()),
        Err(e) => form_error_page(&ctx, "people.edit", &format!("/people/{id}"), &input, e),
    }
}

#[derive(Deserialize, Default)]
pub struct PersonQuery {
    show_id: Option<String>,
}

fn declaration_rows(state: &AppState, lang: Lang, list: &[Declaration]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { (t(lang, "decl.for_slot")) } th { (t(lang, "decl.at")) } th { "°C" } th { "SpO2" }
                th { (t(lang, "decl.symptoms")) } th { (t(lang, "field.note")) }
            } }
            tbody { @for d in list {
                tr {
                    td { (d.slot.format("%H:%M %d/%m")) " " @if d.on_time { (badge(lang, "resolved", "decl.on_time")) } @else { (badge(lang, "warning", "decl.late")) } }
                    td { (fmt_time(state, d.submitted_at)) }
                    td { (format!("{:.1}", d.temperature)) }
                    td { (d.spo2.map(|s| s.to_string()).unwrap_or_default()) }
                    td { (d.symptoms.iter().map(|s| td(lang, &format!("sym.{}", s.as_str()))).collect::<Vec<_>>().join(", ")) }
                    td { (d.note) }
                }
            } }
        } }
    }
}

pub async fn person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<PersonQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.clone();
    let p = state.app.person(&id).map_err(|e| (e, lang))?;
    let show_id = q.show_id.is_some();
    if show_id {
        let mut w = WriteSet::new();
        audit::record(
            &mut w,
            &state.app.store,
            state.app.now(),
            &staff.username,
            "person.view_id_number",
            &p.id,
            "",
        )
        .map_err(|e| (e.into(), lang))?;
        state.app.store.commit(w).await.map_err(|e| (e.into(), lang))?;
    }
    let decls = state.app.declarations_of(&p.id).map_err(|e| (e, lang))?;
    let alerts: Vec<_> = state
        .app
        .store
        .index_scan("alert_person", &format!("{}|", p.id))
        .map_err(|e| (e.into(), lang))?
        .into_iter()
        .rev()
        .filter_map(|(_, aid)| state.app.store.get::<outpost_sync::record::Alert>(&aid).ok().flatten())
        .map(|a| (a, p.full_name.clone()))
        .collect();
    let link = format!("{}/d/{}", state.app.config.public_url, p.declare_token);
    let testing = super::testing::person_section(&state, &ctx, &p).map_err(|e| (e, lang))?;
    let location = super::location::person_section(&state, &ctx, &p).map_err(|e| (e, lang))?;
    let csrf = csrf_of(&ctx);
    let yesno = |b: bool| {
        if b {
            t(lang, "common.yes")
        } else {
            t(lang, "common.no")
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            Some(&staff),
            &p.full_name,
            html! {
                    h1 { (p.full_name) " " (badge(lang, "", &format!("status.{}", p.status.as_str()))) }
                    @if can_write(&ctx) { p.inline {
                a.button.secondary href=(format!("/people/{}/edit", p.id)) { (t(lang, "people.edit")) }
                a.button.secondary href=(format!("/sms/new?p={}", p.id)) { (t(lang, "sms.new")) }
                form.inline method="post" action=(format!("/people/{}/spotcheck", p.id)) {
                    (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "spot.request")) }
                }
            } }
                    div.scroll { table { tbody {
                        tr { th { (t(lang, "field.birth_year")) } td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) } }
                        tr { th { (t(lang, "field.gender")) } td { (td(lang, &format!("gender.{}", p.gender.as_str()))) } }
                        tr { th { (t(lang, "field.phone")) } td { (p.phone) } }
                        tr { th { (t(lang, "field.id_number")) } td {
                            @if show_id { span #id-number { (p.id_number) } }
                            @else { (masked(&p.id_number)) " " a href=(format!("/people/{}?show_id=1", p.id)) { (t(lang, "people.show_id")) } }
                        } }
                        tr { th { (t(lang, "field.address")) } td { (p.address) } }
                        tr { th { (t(lang, "field.room")) } td { (p.room) } }
                        tr { th { (t(lang, "field.quarantine_start")) } td { (p.quarantine_start.format("%d/%m/%Y")) " → " (p.quarantine_end.format("%d/%m/%Y")) } }
                        tr { th { (t(lang, "field.decision_number")) } td { (p.decision_number) } }
                        tr { th { (t(lang, "field.category")) } td { (td(lang, &format!("category.{}", p.category.as_str()))) } }
                        tr { th { (t(lang, "field.flags")) } td {
                            (t(lang, "field.worker")) ": " (yesno(p.worker)) " · " (t(lang, "field.child")) ": " (yesno(p.child)) " · "
                            (t(lang, "field.pregnant")) ": " (yesno(p.pregnant)) " · " (t(lang, "field.foreigner")) ": " (yesno(p.foreigner))
                        } }
                    } } }
                    h2 { (t(lang, "people.link")) }
                    div.qr { img src=(format!("/people/{}/qr.svg", p.id)) alt="QR"; }
                    p { a #personal-link href=(link) { (link) } }
                    @if can_write(&ctx) {
                        h2 { (t(lang, "people.status_change")) }
                        form.inline method="post" action=(format!("/people/{}/status", p.id)) {
                            (csrf_field(&csrf))
                            select name="status" { @for s in PersonStatus::ALL { option value=(s.as_str()) selected[s == p.status] { (td(lang, &format!("status.{}", s.as_str()))) } } }
                            input name="note" placeholder=(t(lang, "field.note"));
                            button type="submit" { (t(lang, "people.save")) }
                        }
                        h2 { (t(lang, "people.declare_for")) }
                        form.stack method="post" action=(format!("/people/{}/declarations", p.id)) {
                            (csrf_field(&csrf))
                            (declaration_fields(lang, None))
                            button type="submit" { (t(lang, "decl.submit")) }
                        }
                    }
                    (testing)
                    (location)
                    h2 { (t(lang, "people.alerts")) }
                    @if alerts.is_empty() { p.muted { (t(lang, "dash.none")) } } @else { (alert_rows(&state, &ctx, &alerts)) }
                    h2 { (t(lang, "people.declarations")) }
                    (declaration_rows(&state, lang, &decls))
                    h2 { (t(lang, "field.status")) }
                    ul.plain { @for s in &p.status_history {
                        li { (fmt_time(&state, s.at)) " · " (td(lang, &format!("status.{}", s.status.as_str()))) " · " (s.by) @if !s.note.is_empty() { " · " (s.note) } }
                    } }
                },
        ),
    ))
}

pub async fn person_qr(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let p = state.app.person(&id).map_err(|e| (e, ctx.lang))?;
    let link = format!("{}/d/{}", state.app.config.public_url, p.declare_token);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], layout::qr_svg(&link).into_string()).into_response())
}

pub async fn change_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let f = FormData::parse(&body);
    let status = crate::validate::required("status", &f.get("status"), PersonStatus::parse)
        .map_err(|p| PageError(p.into(), lang))?;
    state.app.change_status(&id, status, &f.get("note"), &staff).await.map_err(|e| (e, lang))?;
    Ok(Redirect::to(&format!("/people/{id}")).into_response())
}

pub async fn staff_declare(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let person = state.app.person(&id).map_err(|e| (e, lang))?;
    let f = FormData::parse(&body);
    state
        .app
        .declare(&person, &f.declaration(), Channel::Staff, Some(&staff))
        .await
        .map_err(|e| (e, lang))?;
    Ok(Redirect::to(&format!("/people/{id}")).into_response())
}

pub async fn export_people(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let list = state.app.people("", None, None).map_err(|e| (e, lang))?;
    let mut w = WriteSet::new();
    audit::record(
        &mut w,
        &state.app.store,
        state.app.now(),
        &staff,
        "person.export",
        "",
        &list.len().to_string(),
    )
    .map_err(|e| (e.into(), lang))?;
    state.app.store.commit(w).await.map_err(|e| (e.into(), lang))?;
    let name = format!("attachment; filename=\"nguoi-cach-ly-{}.csv\"", state.app.today());
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)],
        csvio::export(&list),
    )
        .into_response())
}

fn import_form(lang: Lang, csrf: &str) -> Markup {
    html! {
        p.muted { (t(lang, "import.help")) }
        form.stack method="post" action=(format!("/people/import?csrf={csrf}")) enctype="multipart/form-data" {
            label { (t(lang, "import.file")) input type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { (t(lang, "import.check")) }
        }
    }
}

pub async fn import_page(ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "import.title"),
            html! {
                h1 { (t(lang, "import.title")) }
                (import_form(lang, &csrf_of(&ctx)))
            },
        ),
    ))
}

/// The file of an upload form's `file` field.
pub(super) async fn upload(mut multipart: Multipart, lang: Lang) -> Result<Bytes, PageError> {
    let bad_upload =
        |vi: &str, en: &str| PageError(ApiError::Invalid(vec![Problem::new("file", vi, en)]), lang);
    let mut bytes = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                bytes = Some(field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        PageError(ApiError::TooLarge, lang)
                    } else {
                        bad_upload("Tải tệp lên bị lỗi.", "The upload failed.")
                    }
                })?);
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(PageError(ApiError::TooLarge, lang))
            }
            Err(_) => return Err(bad_upload("Tải tệp lên bị lỗi.", "The upload failed.")),
        }
    }
    bytes.ok_or_else(|| bad_upload("Chưa chọn tệp.", "No file was chosen."))
}

pub async fn import(State(state): State<AppState>, ctx: Ctx, multipart: Multipart) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let bytes = upload(multipart, lang).await?;
    let app = state.app.clone();
    let list = csvio::parse(&bytes, app.today(), &|id| app.id_number_known(id).unwrap_or(false))
        .map_err(|e| PageError(ApiError::Invalid(vec![e.0]), lang))?;
    let title = t(lang, "import.title");
    if list.errors.is_empty() {
        let rows: Vec<_> = list.valid.into_iter().map(|(_, v)| v).collect();
        let n = state.app.import_people(&rows, &staff).await.map_err(|e| (e, lang))?;
        return Ok(Redirect::to(&format!(
            "/people?notice={}",
            super::urlencode(&format!("{} {n}", t(lang, "import.done")))
        ))
        .into_response());
    }
    let id = auth::random_token();
    let valid_count = list.valid.len();
    {
        let mut imports = state.imports.lock().unwrap_or_else(|e| e.into_inner());
        let now = state.app.now();
        imports.retain(|_, p| now - p.created < chrono::Duration::minutes(30));
        imports.insert(
            id.clone(),
            PendingImport {
                created: now,
                username: staff,
                valid: list.valid.into_iter().map(|(_, v)| v).collect(),
            },
        );
    }
    let csrf = csrf_of(&ctx);
    Ok(html_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        page(
            lang,
            ctx.staff.as_ref(),
            title,
            html! {
                h1 { (title) }
                div.problems role="alert" { (t(lang, "import.errors")) }
                div.scroll { table #import-errors {
                    thead { tr { th { (t(lang, "import.row")) } th { (t(lang, "import.problem")) } } }
                    tbody { @for e in &list.errors {
                        tr { td { (e.line) } td { ul.plain { @for p in &e.problems { li { (p.text(lang)) } } } } }
                    } }
                } }
                @if valid_count > 0 {
                    form method="post" action=(format!("/people/import/{id}")) {
                        (csrf_field(&csrf))
                        button type="submit" { (t(lang, "import.valid_rows")) " (" (valid_count) ")" }
                    }
                }
                h2 { (t(lang, "import.title")) }
                (import_form(lang, &csrf))
            },
        ),
    ))
}

pub async fn import_valid(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let pending = state.imports.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let Some(pending) = pending.filter(|p| p.username == staff) else {
        return Err(PageError(
            ApiError::Invalid(vec![Problem::new(
                "",
                t(Lang::Vi, "import.expired"),
                t(Lang::En, "import.expired"),
            )]),
            lang,
        ));
    };
    // Rows may have been registered since the check: skip what is now a duplicate.
    let rows: Vec<_> = pending
        .valid
        .into_iter()
        .filter(|r| !state.app.id_number_known(&r.id_number).unwrap_or(true))
        .collect();
    let n = state.app.import_people(&rows, &staff).await.map_err(|e| (e, lang))?;
    Ok(Redirect::to(&format!(
        "/people?notice={}",
        super::urlencode(&format!("{} {n}", t(lang, "import.done")))
    ))
    .into_response())
}

// ----- alerts -----

#[derive(Deserialize, Default)]
pub struct AlertQuery {
    state: Option<String>,
}

pub async fn alerts(State(state): State<AppState>, ctx: Ctx, Query(q): Query<AlertQuery>) -> PageResult {
    let lang = ctx.lang;
    let which = q.state.as_deref().and_then(AlertState::parse).unwrap_or(AlertState::Open);
    let list: Vec<_> = state
        .app
        .alerts(which, 500)
        .map_err(|e| (e, lang))?
        .into_iter()
        .map(|a| {
            let name = state
                .app
                .store
                .get::<Person>(&a.person_id)
                .ok()
                .flatten()
                .map(|p| p.details.full_name)
                .unwrap_or_default();
            (a, name)
        })
        .collect();
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "alerts.title"),
            html! {
                h1 { (t(lang, "alerts.title")) }
                p.inline { @for s in [AlertState::Open, AlertState::Acknowledged, AlertState::Resolved] {
                    a.button.secondary[s != which] href=(format!("/alerts?state={}", s.as_str())) { (td(lang, &format!("state.{}", s.as_str()))) }
                } }
                @if list.is_empty() { p.muted { (t(lang, "dash.none")) } } @else { (alert_rows(&state, &ctx, &list)) }
            },
        ),
    ))
}

fn back_to(headers: &HeaderMap, default: &str) -> String {
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest.to_owned()))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .map_or_else(|| default.to_owned(), |p| local_path(&p).to_owned())
}

pub async fn ack_alert(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let staff = ctx.staff().map_err(|e| PageError(e, ctx.lang))?.username.clone();
    state.app.acknowledge(&id, &staff).await.map_err(|e| (e, ctx.lang))?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

pub async fn resolve_alert(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let staff = ctx.staff().map_err(|e| PageError(e, ctx.lang))?.username.clone();
    let f = FormData::parse(&body);
    state.app.resolve(&id, &f.get("note"), &staff).await.map_err(|e| (e, ctx.lang))?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

// ----- follow-up -----

#[derive(Deserialize, Default)]
pub struct DateQuery {
    date: Option<String>,
}

fn query_date(state: &AppState, lang: Lang, raw: Option<&str>) -> Result<NaiveDate, PageError> {
    super::date_param(state, raw).map_err(|e| PageError(e, lang))
}

pub async fn followup(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DateQuery>) -> PageResult {
    let lang = ctx.lang;
    let date = query_date(&state, lang, q.date.as_deref())?;
    let rows = crate::followup::sheet(&state.app, date).map_err(|e| (e, lang))?;
    let csrf = csrf_of(&ctx);
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "followup.title"),
            html! {
                h1 { (t(lang, "followup.title")) }
                form.filters method="get" action="/followup" {
                    input type="date" name="date" value=(date.to_string());
                    button type="submit" { (t(lang, "people.filter")) }
                    a.button.secondary href=(format!("/followup/export.csv?date={date}")) { (t(lang, "people.export")) }
                }
                div.scroll { table {
                    thead { tr {
                        th { (t(lang, "common.person")) } th { (t(lang, "field.room")) } th { (t(lang, "followup.on_time")) }
                        th { (t(lang, "followup.max_temp")) } th { (t(lang, "decl.symptoms")) }
                        th { (t(lang, "followup.presence")) " / " (t(lang, "followup.tests")) " / " (t(lang, "followup.notes")) }
                    } }
                    tbody { @for r in &rows {
                        tr {
                            td { a href=(format!("/people/{}", r.person_id)) { (r.full_name) } }
                            td { (r.room) }
                            td { (r.on_time) " / " (r.owed) }
                            td { (r.max_temperature.map(|t| format!("{t:.1}")).unwrap_or_default()) }
                            td { (r.symptoms.iter().map(|s| td(lang, &format!("sym.{}", s.as_str()))).collect::<Vec<_>>().join(", ")) }
                            td {
                                @if can_write(&ctx) {
                                    form.inline method="post" action=(format!("/followup/{}/{}", r.person_id, date)) {
                                        (csrf_field(&csrf))
                                        input name="presence" value=(r.presence) placeholder=(t(lang, "followup.presence"));
                                        input name="tests" value=(r.tests) placeholder=(t(lang, "followup.tests"));
                                        input name="notes" value=(r.notes) placeholder=(t(lang, "followup.notes"));
                                        button.secondary type="submit" { (t(lang, "people.save")) }
                                    }
                                } @else {
                                    (r.presence) " · " (r.tests) " · " (r.notes)
                                }
                            }
                        }
                    } }
                } }
            },
        ),
    ))
}

pub async fn save_followup(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((person, date)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let date = query_date(&state, lang, Some(&date))?;
    let f = FormData::parse(&body);
    state
        .app
        .save_follow_up(&person, date, &f.get("presence"), &f.get("tests"), &f.get("notes"), &staff)
        .await
        .map_err(|e| (e, lang))?;
    Ok(Redirect::to(&format!("/followup?date={date}")).into_response())
}

pub async fn export_followup(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<DateQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let date = query_date(&state, lang, q.date.as_deref())?;
    let rows = crate::followup::sheet(&state.app, date).map_err(|e| (e, lang))?;
    let name = format!("attachment; filename=\"theo-doi-{date}.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)],
        crate::followup::export(&rows, date),
    )
        .into_response())
}

// ----- outbox, users, audit -----

fn users_page(state: &AppState, ctx: &Ctx, list: &[Problem], token: Option<&str>) -> PageResult {
    let lang = ctx.lang;
    let users = state.app.store.list::<User>().map_err(|e| (e.into(), lang))?;
    let csrf = csrf_of(ctx);
    let status = if list.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html_response(
        status,
        page(
            lang,
            ctx.staff.as_ref(),
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
        ),
    ))
}

pub async fn users(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    users_page(&state, &ctx, &[], None)
}

pub async fn add_user(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let admin = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let f = FormData::parse(&body);
    let username = f.get("username").trim().to_lowercase();
    let mut list =
        account_problems(&username, &f.get("display_name"), &f.get("password"), &f.get("password2"));
    let role = crate::validate::required("role", &f.get("role"), Role::parse).map_err(|p| list.push(p)).ok();
    if state.app.store.get::<User>(&username).map_err(|e| (e.into(), lang))?.is_some() {
        list.push(Problem::new("username", "Tên đăng nhập đã có.", "This username is taken."));
    }
    let Some(role) = role.filter(|_| list.is_empty()) else {
        return users_page(&state, &ctx, &list, None);
    };
    let now = state.app.now();
    let user = User {
        username: username.clone(),
        display_name: crate::validate::clip(&f.get("display_name"), 100),
        role,
        active: true,
        created_at: now,
    };
    let (store, password) = (state.app.store.clone(), f.get("password"));
    tokio::task::spawn_blocking(move || {
        let mut w = WriteSet::new();
        auth::add_user(&mut w, &user, &password)?;
        audit::record(&mut w, &store, now, &admin, "user.create", &user.username, user.role.as_str())?;
        store.commit_blocking(w)
    })
    .await
    .map_err(|e| PageError(ApiError::Internal(e.to_string()), lang))?
    .map_err(|e| (e.into(), lang))?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let admin = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let mut user = state
        .app
        .store
        .get::<User>(&name)
        .map_err(|e| (e.into(), lang))?
        .ok_or(PageError(ApiError::NotFound, lang))?;
    let f = FormData::parse(&body);
    let role = crate::validate::required("role", &f.get("role"), Role::parse)
        .map_err(|p| PageError(p.into(), lang))?;
    let active = f.opt("active").is_some();
    if name == admin && (role != Role::Admin || !active) {
        return users_page(
            &state,
            &ctx,
            &[Problem::new(
                "role",
                "Không thể tự bỏ quyền quản trị của mình.",
                "You cannot remove your own administrator access.",
            )],
            None,
        );
    }
    let password = f.get("password");
    if !password.is_empty() {
        if let Err((vi, en)) = auth::check_password(&password) {
            return users_page(&state, &ctx, &[Problem::new("password", vi, en)], None);
        }
    }
    user.role = role;
    user.active = active;
    let (store, now) = (state.app.store.clone(), state.app.now());
    tokio::task::spawn_blocking(move || {
        let mut w = WriteSet::new();
        w.put(&user)?;
        if !password.is_empty() {
            auth::set_password(&mut w, &user.username, &password)?;
        }
        let detail =
            format!("{} active={} password={}", user.role.as_str(), user.active, !password.is_empty());
        audit::record(&mut w, &store, now, &admin, "user.update", &user.username, &detail)?;
        store.commit_blocking(w)
    })
    .await
    .map_err(|e| PageError(ApiError::Internal(e.to_string()), lang))?
    .map_err(|e| (e.into(), lang))?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn new_token(State(state): State<AppState>, ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let lang = ctx.lang;
    let admin = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    state
        .app
        .store
        .get::<User>(&name)
        .map_err(|e| (e.into(), lang))?
        .ok_or(PageError(ApiError::NotFound, lang))?;
    let now = state.app.now();
    let mut w = WriteSet::new();
    let token = auth::new_api_token(&mut w, &name, "web", now).map_err(|e| (e.into(), lang))?;
    audit::record(&mut w, &state.app.store, now, &admin, "user.api_token", &name, "")
        .map_err(|e| (e.into(), lang))?;
    state.app.store.commit(w).await.map_err(|e| (e.into(), lang))?;
    users_page(&state, &ctx, &[], Some(&token))
}

pub async fn audit(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let list = audit::recent(&state.app.store, 500).map_err(|e| (e.into(), lang))?;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "audit.title"),
            html! {
                h1 { (t(lang, "audit.title")) }
                div.scroll { table {
                    thead { tr { th { (t(lang, "common.time")) } th { (t(lang, "audit.user")) } th { (t(lang, "audit.action")) } th { (t(lang, "audit.target")) } th { (t(lang, "common.detail")) } } }
                    tbody { @for e in &list { tr { td { (fmt_time(&state, e.at)) } td { (e.user) } td { (e.action) } td { (e.target) } td { (e.detail) } } } }
                } }
            },
        ),
    ))
}
