//! The band pages [M2, M3]: the pool at a glance (with the devices heard that are not in it), one
//! band with its history, its last sightings and the actions on it, and their JSON counterparts.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use chrono::Duration;
use maud::html;
use outpost_sync::record::{Band, BandState};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{staff_page, Answer, ApiResult, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field, page_of, pager, problems},
};
use crate::{
    app::{
        bands::{normalize_band_id, Reading},
        presence::state_str,
        AppError,
    },
    base::{
        i18n::{t, td},
        validate::{self, Problem},
    },
};

/// A band with what the presence engine knows of it, for lists.
fn band_json(state: &AppState, b: &Band) -> Value {
    let presence = state.services.presence().and_then(|p| p.band(&b.id));
    json!({
        "id": b.id, "label": b.label, "state": b.state, "person_id": b.person_id,
        "registered_at": b.registered_at, "updated_at": b.updated_at,
        "presence": presence,
    })
}

/// What the presence thread last heard of a band, by the id as typed.
fn reading_of(state: &AppState, raw_id: &str) -> Option<Reading> {
    normalize_band_id(raw_id).and_then(|id| state.services.reading(&id))
}

fn battery_of(state: &AppState, id: &str) -> Option<u8> {
    state.services.presence().and_then(|p| p.reading(id)).and_then(|r| r.battery_percent)
}

// ----- pages -----

/// Bands on a page of the pool's table (a site of 2,000 has as many).
const POOL_PAGE: usize = 100;
/// Above this many people waiting for a band, the hand-over asks for the person's code (their QR
/// code or ID number) instead of listing them all.
const HAND_OVER_LIST: usize = 100;

#[derive(Deserialize, Default)]
pub struct PoolQuery {
    page: Option<usize>,
}

pub async fn pool(State(state): State<AppState>, ctx: Ctx, Query(q): Query<PoolQuery>) -> Answer {
    pool_page(&state, &ctx, &[], (StatusCode::OK, q.page))
}

fn pool_page(
    state: &AppState,
    ctx: &Ctx,
    list: &[Problem],
    (status, page): (StatusCode, Option<usize>),
) -> Answer {
    let lang = ctx.lang;
    let bands = state.app.bands()?;
    let (shown, page, pages) = page_of(&bands, page, POOL_PAGE);
    let unknown = unknown_bands(state, &bands);
    let stats = state.services.presence().map(|p| p.stats()).unwrap_or_default();
    let low_mark = state.app.config().bands.battery_low_percent;
    let low: Vec<(&Band, u8)> = bands
        .iter()
        .filter(|b| !matches!(b.state, BandState::Lost | BandState::Faulty))
        .filter_map(|b| battery_of(state, &b.id).filter(|p| *p <= low_mark).map(|p| (b, p)))
        .collect();
    let csrf = ctx.csrf();
    let body = html! {
        h1 { (t(lang, "bands.title")) }
        (states_bar(&bands))
        ul.counts #band-counts {
            @for s in BandState::ALL {
                li data-state=(s.as_str()) { strong { (bands.iter().filter(|b| b.state == s).count()) } " " (td(lang, &format!("band.{}", s.as_str()))) }
            }
        }
        (problems(lang, list))
        h2 { (t(lang, "bands.low_battery")) " (≤ " (low_mark) "%)" }
        @if low.is_empty() { p.muted { (t(lang, "dash.none")) } }
        @else { ul.plain #low-battery { @for (b, pct) in &low { li { a href=(format!("/bands/{}", b.id)) { (b.id) } " · " (pct) "% · " (td(lang, &format!("band.{}", b.state.as_str()))) } } } }
        @if ctx.can_write() {
            h2 { (t(lang, "bands.register")) }
            form.inline method="post" action="/bands" {
                (csrf_field(&csrf))
                input name="id" required placeholder="AA:BB:CC:DD:EE:FF" aria-label=(t(lang, "bands.id"));
                input name="label" placeholder=(t(lang, "bands.label")) aria-label=(t(lang, "bands.label"));
                button type="submit" { (t(lang, "bands.register")) }
            }
        }
        h2 { (t(lang, "bands.all")) " (" (bands.len()) ")" }
        div.scroll { table #bands {
            thead { tr {
                th { (t(lang, "bands.id")) } th { (t(lang, "bands.label")) } th { (t(lang, "field.status")) }
                th { (t(lang, "bands.person")) } th { (t(lang, "bands.battery")) } th { (t(lang, "bands.place")) } th { (t(lang, "bands.last_seen")) }
            } }
            tbody { @for b in shown {
                @let pr = state.services.presence().and_then(|p| p.band(&b.id));
                tr data-state=(b.state.as_str()) {
                    td { a href=(format!("/bands/{}", b.id)) { (b.id) } }
                    td { (b.label) }
                    td { (badge(lang, b.state.as_str(), &format!("band.{}", b.state.as_str()))) }
                    td { @if let Some(p) = &b.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } } }
                    td { (battery_of(state, &b.id).map(|p| format!("{p}%")).unwrap_or_default()) }
                    td { @if let Some(pr) = &pr { (pr.place.clone().unwrap_or_default()) " " (badge(lang, state_str(pr.state), &format!("presence.{}", state_str(pr.state)))) } }
                    td { @if let Some(pr) = &pr { (state.fmt_time(pr.last_seen)) } }
                }
            } }
        } }
        (pager(lang, "band-pages", (page, pages, bands.len()), |n| format!("/bands?page={n}")))
        (super::scanners::table(state, ctx))
        h2 { (t(lang, "bands.unknown")) " (" (unknown.len()) ")" }
        p.muted { (t(lang, "bands.unknown_help")) " " (stats.sightings) " / " (stats.dropped) }
        div.scroll { table #unknown-bands {
            thead { tr { th { (t(lang, "bands.id")) } th { (t(lang, "bands.scanner")) } th { "RSSI" } th { (t(lang, "bands.battery")) } th { (t(lang, "bands.last_seen")) } th { "" } } }
            tbody { @for u in unknown.iter().take(100) {
                tr {
                    td { (u.band) } td { (u.scanner) } td { (u.rssi) }
                    td { (u.battery_percent.map(|p| format!("{p}%")).unwrap_or_default()) }
                    td { (state.fmt_time(u.last_seen)) }
                    td { @if ctx.can_write() {
                        form.inline method="post" action="/bands" {
                            (csrf_field(&csrf)) input type="hidden" name="id" value=(u.band);
                            button.secondary type="submit" { (t(lang, "bands.register")) }
                        }
                    } }
                }
            } }
        } }
    };
    Ok(staff_page(ctx, status, t(lang, "bands.title"), body))
}

fn person_label(state: &AppState, id: &str) -> String {
    state.app.person(id).map(|p| format!("{} ({})", p.full_name, p.room)).unwrap_or_else(|_| id.to_owned())
}

pub async fn register(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let by = ctx.username()?;
    let f = FormData::parse(&body);
    match state.app.register_band(&f.get("id"), &f.get("label"), &by).await {
        Ok(b) => Ok(Redirect::to(&format!("/bands/{}", b.id)).into_response()),
        Err(AppError::Invalid(list)) => {
            pool_page(&state, &ctx, &list, (StatusCode::UNPROCESSABLE_ENTITY, None))
        }
        Err(AppError::Conflict(p)) => pool_page(&state, &ctx, &[p], (StatusCode::CONFLICT, None)),
        Err(e) => Err(e.into()),
    }
}

pub async fn band(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    band_page(&state, &ctx, &id, &[], StatusCode::OK)
}

fn band_page(state: &AppState, ctx: &Ctx, id: &str, list: &[Problem], status: StatusCode) -> Answer {
    let lang = ctx.lang;
    let b = state.app.band(id)?;
    let pr = state.services.presence().and_then(|p| p.band(&b.id));
    let reading = state.services.presence().and_then(|p| p.reading(&b.id));
    let sightings = state
        .services
        .presence()
        .map(|p| p.sightings(&b.id, state.app.now() - Duration::hours(1), 200))
        .unwrap_or_default();
    let csrf = ctx.csrf();
    let candidates: Vec<_> = if ctx.can_write() && b.state.can_hand_over() {
        state
            .app
            .people("", None, None)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.status.is_watched() && state.app.band_of(&p.id).ok().flatten().is_none())
            .collect()
    } else {
        Vec::new()
    };
    let body = html! {
        h1 { (t(lang, "bands.band")) " " (b.id) " " (badge(lang, b.state.as_str(), &format!("band.{}", b.state.as_str()))) }
        (problems(lang, list))
        div.scroll { table { tbody {
            tr { th { (t(lang, "bands.label")) } td { (b.label) } }
            tr { th { (t(lang, "bands.person")) } td #band-person { @if let Some(p) = &b.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } " · " a href=(format!("/people/{p}/presence")) { (t(lang, "presence.timeline")) } } } }
            tr { th { (t(lang, "bands.battery")) } td #band-battery { (reading.and_then(|r| r.battery_percent).map(|p| format!("{p}%")).unwrap_or_else(|| "—".into())) } }
            tr { th { (t(lang, "bands.last_seen")) } td { (reading.map(|r| state.fmt_time(r.last_seen)).unwrap_or_else(|| "—".into())) } }
            @if let Some(pr) = &pr {
                tr { th { (t(lang, "bands.place")) } td #band-presence data-state=(state_str(pr.state)) {
                    (pr.place.clone().unwrap_or_default()) " " (badge(lang, state_str(pr.state), &format!("presence.{}", state_str(pr.state))))
                    @if let Some(r) = pr.rssi { " · " (r) " dBm" }
                    @if pr.strap_closed == Some(false) { " · " (badge(lang, "severe", "bands.strap_open")) }
                } }
            }
        } } }
        @if ctx.can_write() {
            @if b.state.can_hand_over() {
                h2 { (t(lang, "bands.hand_over")) }
                form.inline method="post" action=(format!("/bands/{}/hand-over", b.id)) {
                    (csrf_field(&csrf))
                    @if candidates.len() <= HAND_OVER_LIST {
                        select name="person" aria-label=(t(lang, "bands.person")) { @for p in &candidates { option value=(p.id) { (p.full_name) " · " (p.room) } } }
                    } @else {
                        input name="code" required placeholder=(t(lang, "test.code")) aria-label=(t(lang, "bands.person"));
                    }
                    button type="submit" { (t(lang, "bands.hand_over")) }
                }
            }
            h2 { (t(lang, "bands.change")) }
            form.inline method="post" action=(format!("/bands/{}/state", b.id)) {
                (csrf_field(&csrf))
                select name="state" { @for s in b.state.next_by_hand() { option value=(s.as_str()) { (td(lang, &format!("band.{}", s.as_str()))) } } }
                input name="note" placeholder=(t(lang, "field.note"));
                button type="submit" { (t(lang, "people.save")) }
            }
        }
        h2 { (t(lang, "bands.history")) }
        div.scroll { table #band-history {
            thead { tr { th { (t(lang, "common.time")) } th { (t(lang, "field.status")) } th { (t(lang, "bands.person")) } th { (t(lang, "bands.by")) } th { (t(lang, "field.note")) } } }
            tbody { @for c in b.history.values().rev() {
                tr data-to=(c.to.as_str()) {
                    td { (state.fmt_time(c.at)) }
                    td { @if let Some(f) = c.from { (td(lang, &format!("band.{}", f.as_str()))) " → " } (td(lang, &format!("band.{}", c.to.as_str()))) }
                    td { @if let Some(p) = &c.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } } }
                    td { (c.by) }
                    td { (c.note) }
                }
            } }
        } }
        h2 { (t(lang, "bands.sightings")) " (" (sightings.len()) ")" }
        div.scroll { table { tbody { @for s in sightings.iter().rev().take(50) {
            tr { td { (state.fmt_time(s.at)) } td { (s.scanner) } td { (s.rssi) " dBm" } td { (s.battery.map(|p| format!("{p}%")).unwrap_or_default()) } }
        } } } }
    };
    Ok(staff_page(ctx, status, &b.id, body))
}

pub async fn change_state(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let by = ctx.username()?;
    let f = FormData::parse(&body);
    let to = validate::required("state", &f.get("state"), BandState::parse)?;
    let done = state.app.change_band(&id, to, &f.get("note"), &by).await;
    after_band_action(&state, &ctx, &id, done)
}

/// After an action on a band: back to its page, or the page again with why it was refused.
fn after_band_action(state: &AppState, ctx: &Ctx, id: &str, done: Result<Band, AppError>) -> Answer {
    match done {
        Ok(_) => Ok(Redirect::to(&format!("/bands/{id}")).into_response()),
        Err(AppError::Conflict(p)) => band_page(state, ctx, id, &[p], StatusCode::CONFLICT),
        Err(e) => Err(e.into()),
    }
}

pub async fn hand_over(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let by = ctx.username()?;
    let f = FormData::parse(&body);
    // The person picked from the list, or (a large site) their code typed or scanned.
    let person = match f.get("code").trim() {
        "" => f.get("person"),
        code => state.app.person_by_code(code)?.id,
    };
    let done = state.app.hand_over(&id, &person, reading_of(&state, &id), &by).await;
    after_band_action(&state, &ctx, &id, done)
}

// ----- API -----

pub async fn api_bands(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let bands = state.app.bands()?;
    Ok(Json(Value::Array(bands.iter().map(|b| band_json(&state, b)).collect())))
}

pub async fn api_band(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let b = state.app.band(&id)?;
    let mut v = band_json(&state, &b);
    v["history"] = serde_json::to_value(b.history.values().collect::<Vec<_>>()).unwrap_or_default();
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct SightingsQuery {
    hours: Option<String>,
}

/// Most raw sightings one answer lists.
const MAX_SIGHTINGS: usize = 10_000;

/// A band's raw sightings over the last `hours` (1 by default, at most the retention), oldest first,
/// at most 10,000: those written to the card and those still held in memory.
pub async fn api_sightings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SightingsQuery>,
) -> ApiResult<Json<Value>> {
    let b = state.app.band(&id)?;
    let most = state.app.config().bands.retention.num_hours();
    let hours = match q.hours.as_deref() {
        None => 1,
        Some(h) => h.parse::<i64>().ok().filter(|h| (1..=most).contains(h)).ok_or_else(|| {
            ApiError::invalid(
                "hours",
                format!("Số giờ phải từ 1 đến {most}"),
                format!("hours must be between 1 and {most}"),
            )
        })?,
    };
    let since = state.app.now() - Duration::hours(hours);
    let list =
        state.services.presence().map(|p| p.sightings(&b.id, since, MAX_SIGHTINGS)).unwrap_or_default();
    Ok(Json(json!({"band": b.id, "since": since, "sightings": list})))
}

#[derive(Deserialize)]
pub struct NewBand {
    id: String,
    #[serde(default)]
    label: String,
}

pub async fn api_register(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<NewBand>,
) -> ApiResult<Response> {
    let b = state.app.register_band(&input.id, &input.label, &ctx.username()?).await?;
    Ok((StatusCode::CREATED, Json(band_json(&state, &b))).into_response())
}

#[derive(Deserialize)]
pub struct StateChange {
    state: String,
    #[serde(default)]
    note: String,
}

pub async fn api_change_state(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StateChange>,
) -> ApiResult<Json<Value>> {
    let to = validate::required("state", &input.state, BandState::parse)?;
    let b = state.app.change_band(&id, to, &input.note, &ctx.username()?).await?;
    Ok(Json(band_json(&state, &b)))
}

#[derive(Deserialize)]
pub struct HandOver {
    person_id: String,
}

pub async fn api_hand_over(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<HandOver>,
) -> ApiResult<Json<Value>> {
    let b = state.app.hand_over(&id, &input.person_id, reading_of(&state, &id), &ctx.username()?).await?;
    Ok(Json(band_json(&state, &b)))
}

pub async fn api_unknown(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let list = unknown_bands(&state, &state.app.bands()?);
    Ok(Json(json!(list)))
}

/// Bands seen but not in the pool. The presence thread learns of a registration through its queue;
/// the pool (`bands`, read now) is what was acknowledged, so a band registered a moment ago is
/// never listed as unknown.
fn unknown_bands(state: &AppState, bands: &[Band]) -> Vec<crate::services::presence::UnknownBand> {
    let mut list = state.services.presence().map(|p| p.unknown()).unwrap_or_default();
    list.retain(|u| !bands.iter().any(|b| b.id == u.band));
    list
}

/// Every band the engine tracks, and the counters of the sources.
pub async fn api_presence(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let bands = state.services.presence().map(|p| p.snapshot()).unwrap_or_default();
    let stats = state.services.presence().map(|p| p.stats());
    let mqtt = state.services.mqtt().map(|m| m.counters.lock().map(|c| c.clone()).unwrap_or_default());
    let adapter = state.services.scanner().map(|s| s.to_json());
    Ok(Json(json!({"bands": bands, "stats": stats, "counters": mqtt, "adapter": adapter})))
}

/// The pool by state as one bar (a segment a state, its width its share), for a glance.
fn states_bar(bands: &[Band]) -> maud::Markup {
    let total = bands.len().max(1) as f64;
    let mut x = 0.0;
    let mut svg = String::from(
        r#"<svg class="states" id="band-states" viewBox="0 0 100 6" preserveAspectRatio="none" role="img">"#,
    );
    for s in BandState::ALL {
        let n = bands.iter().filter(|b| b.state == s).count();
        if n == 0 {
            continue;
        }
        let w = n as f64 / total * 100.0;
        svg.push_str(&format!(
            r#"<rect class="{}" x="{x:.2}" y="0" width="{w:.2}" height="6"><title>{n}</title></rect>"#,
            s.as_str()
        ));
        x += w;
    }
    svg.push_str("</svg>");
    maud::PreEscaped(svg)
}
