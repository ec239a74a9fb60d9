//! The band pages [M2, M3]: the pool at a glance, one band with its history and actions, a person's
//! presence timeline for a day (an SVG picture), and their JSON counterparts under `/api/v1`.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped};
use outpost_sync::record::{Band, BandState, PresenceDay};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    api::JsonBody,
    layout::{badge, csrf_field, page, problems},
    pages::{can_write, csrf_of, fmt_time, html_response, FormData, PageResult},
    ApiError, AppState, Ctx, PageError,
};
use crate::{
    app::AppError,
    i18n::{t, td, Lang},
    validate::Problem,
};

type ApiResult<T> = Result<T, ApiError>;

/// A band with what the presence engine knows of it, for lists.
fn band_json(state: &AppState, b: &Band) -> Value {
    let presence = state.app.presence.get().and_then(|p| p.band(&b.id));
    json!({
        "id": b.id, "label": b.label, "state": b.state, "person_id": b.person_id,
        "registered_at": b.registered_at, "updated_at": b.updated_at,
        "presence": presence,
    })
}

fn staff_name(ctx: &Ctx, lang: Lang) -> Result<String, PageError> {
    Ok(ctx.staff().map_err(|e| PageError(e, lang))?.username.clone())
}

fn battery_of(state: &AppState, id: &str) -> Option<u8> {
    state.app.presence.get().and_then(|p| p.reading(id)).and_then(|r| r.battery_percent)
}

// ----- pages -----

pub async fn pool(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    pool_page(&state, &ctx, &[], StatusCode::OK)
}

fn pool_page(state: &AppState, ctx: &Ctx, list: &[Problem], status: StatusCode) -> PageResult {
    let lang = ctx.lang;
    let bands = state.app.bands().map_err(|e| (e, lang))?;
    let unknown = state.app.presence.get().map(|p| p.unknown()).unwrap_or_default();
    let stats = state.app.presence.get().map(|p| p.stats()).unwrap_or_default();
    let low_mark = state.app.config.raw.bands.battery_low_percent;
    let low: Vec<(&Band, u8)> = bands
        .iter()
        .filter(|b| !matches!(b.state, BandState::Lost | BandState::Faulty))
        .filter_map(|b| battery_of(state, &b.id).filter(|p| *p <= low_mark).map(|p| (b, p)))
        .collect();
    let csrf = csrf_of(ctx);
    Ok(html_response(
        status,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "bands.title"),
            html! {
                h1 { (t(lang, "bands.title")) }
                ul.counts #band-counts {
                    @for s in BandState::ALL {
                        li data-state=(s.as_str()) { strong { (bands.iter().filter(|b| b.state == s).count()) } " " (td(lang, &format!("band.{}", s.as_str()))) }
                    }
                }
                (problems(lang, list))
                h2 { (t(lang, "bands.low_battery")) " (≤ " (low_mark) "%)" }
                @if low.is_empty() { p.muted { (t(lang, "dash.none")) } }
                @else { ul.plain #low-battery { @for (b, pct) in &low { li { a href=(format!("/bands/{}", b.id)) { (b.id) } " · " (pct) "% · " (td(lang, &format!("band.{}", b.state.as_str()))) } } } }
                @if can_write(ctx) {
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
                    tbody { @for b in &bands {
                        @let pr = state.app.presence.get().and_then(|p| p.band(&b.id));
                        tr data-state=(b.state.as_str()) {
                            td { a href=(format!("/bands/{}", b.id)) { (b.id) } }
                            td { (b.label) }
                            td { (badge(lang, b.state.as_str(), &format!("band.{}", b.state.as_str()))) }
                            td { @if let Some(p) = &b.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } } }
                            td { (battery_of(state, &b.id).map(|p| format!("{p}%")).unwrap_or_default()) }
                            td { @if let Some(pr) = &pr { (pr.place.clone().unwrap_or_default()) " " (badge(lang, crate::presence::state_str(pr.state), &format!("presence.{}", crate::presence::state_str(pr.state)))) } }
                            td { @if let Some(pr) = &pr { (fmt_time(state, pr.last_seen)) } }
                        }
                    } }
                } }
                h2 { (t(lang, "bands.unknown")) " (" (unknown.len()) ")" }
                p.muted { (t(lang, "bands.unknown_help")) " " (stats.sightings) " / " (stats.dropped) }
                div.scroll { table #unknown-bands {
                    thead { tr { th { (t(lang, "bands.id")) } th { (t(lang, "bands.scanner")) } th { "RSSI" } th { (t(lang, "bands.battery")) } th { (t(lang, "bands.last_seen")) } th { "" } } }
                    tbody { @for u in unknown.iter().take(100) {
                        tr {
                            td { (u.band) } td { (u.scanner) } td { (u.rssi) }
                            td { (u.battery_percent.map(|p| format!("{p}%")).unwrap_or_default()) }
                            td { (fmt_time(state, u.last_seen)) }
                            td { @if can_write(ctx) {
                                form.inline method="post" action="/bands" {
                                    (csrf_field(&csrf)) input type="hidden" name="id" value=(u.band);
                                    button.secondary type="submit" { (t(lang, "bands.register")) }
                                }
                            } }
                        }
                    } }
                } }
            },
        ),
    ))
}

fn person_label(state: &AppState, id: &str) -> String {
    state.app.person(id).map(|p| format!("{} ({})", p.full_name, p.room)).unwrap_or_else(|_| id.to_owned())
}

pub async fn register(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let by = staff_name(&ctx, lang)?;
    let f = FormData::parse(&body);
    match state.app.register_band(&f.get("id"), &f.get("label"), &by).await {
        Ok(b) => Ok(Redirect::to(&format!("/bands/{}", b.id)).into_response()),
        Err(AppError::Invalid(list)) => pool_page(&state, &ctx, &list, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Conflict(p)) => pool_page(&state, &ctx, &[p], StatusCode::CONFLICT),
        Err(e) => Err((e, lang).into()),
    }
}

pub async fn band(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    band_page(&state, &ctx, &id, &[], StatusCode::OK)
}

fn band_page(state: &AppState, ctx: &Ctx, id: &str, list: &[Problem], status: StatusCode) -> PageResult {
    let lang = ctx.lang;
    let b = state.app.band(id).map_err(|e| (e, lang))?;
    let pr = state.app.presence.get().and_then(|p| p.band(&b.id));
    let reading = state.app.presence.get().and_then(|p| p.reading(&b.id));
    let sightings = state
        .app
        .presence
        .get()
        .map(|p| p.sightings(&b.id, state.app.now() - Duration::hours(1), 200))
        .unwrap_or_default();
    let csrf = csrf_of(ctx);
    let candidates: Vec<_> = if can_write(ctx) && b.state.can_hand_over() {
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
    Ok(html_response(
        status,
        page(
            lang,
            ctx.staff.as_ref(),
            &b.id,
            html! {
                h1 { (t(lang, "bands.band")) " " (b.id) " " (badge(lang, b.state.as_str(), &format!("band.{}", b.state.as_str()))) }
                (problems(lang, list))
                div.scroll { table { tbody {
                    tr { th { (t(lang, "bands.label")) } td { (b.label) } }
                    tr { th { (t(lang, "bands.person")) } td #band-person { @if let Some(p) = &b.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } " · " a href=(format!("/people/{p}/presence")) { (t(lang, "presence.timeline")) } } } }
                    tr { th { (t(lang, "bands.battery")) } td #band-battery { (reading.and_then(|r| r.battery_percent).map(|p| format!("{p}%")).unwrap_or_else(|| "—".into())) } }
                    tr { th { (t(lang, "bands.last_seen")) } td { (reading.map(|r| fmt_time(state, r.last_seen)).unwrap_or_else(|| "—".into())) } }
                    @if let Some(pr) = &pr {
                        tr { th { (t(lang, "bands.place")) } td #band-presence data-state=(crate::presence::state_str(pr.state)) {
                            (pr.place.clone().unwrap_or_default()) " " (badge(lang, crate::presence::state_str(pr.state), &format!("presence.{}", crate::presence::state_str(pr.state))))
                            @if let Some(r) = pr.rssi { " · " (r) " dBm" }
                            @if pr.strap_closed == Some(false) { " · " (badge(lang, "severe", "bands.strap_open")) }
                        } }
                    }
                } } }
                @if can_write(ctx) {
                    @if b.state.can_hand_over() {
                        h2 { (t(lang, "bands.hand_over")) }
                        form.inline method="post" action=(format!("/bands/{}/hand-over", b.id)) {
                            (csrf_field(&csrf))
                            select name="person" aria-label=(t(lang, "bands.person")) { @for p in &candidates { option value=(p.id) { (p.full_name) " · " (p.room) } } }
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
                            td { (fmt_time(state, c.at)) }
                            td { @if let Some(f) = c.from { (td(lang, &format!("band.{}", f.as_str()))) " → " } (td(lang, &format!("band.{}", c.to.as_str()))) }
                            td { @if let Some(p) = &c.person_id { a href=(format!("/people/{p}")) { (person_label(state, p)) } } }
                            td { (c.by) }
                            td { (c.note) }
                        }
                    } }
                } }
                h2 { (t(lang, "bands.sightings")) " (" (sightings.len()) ")" }
                div.scroll { table { tbody { @for s in sightings.iter().rev().take(50) {
                    tr { td { (fmt_time(state, s.at)) } td { (s.scanner) } td { (s.rssi) " dBm" } td { (s.battery.map(|p| format!("{p}%")).unwrap_or_default()) } }
                } } } }
            },
        ),
    ))
}

pub async fn change_state(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let by = staff_name(&ctx, lang)?;
    let f = FormData::parse(&body);
    let to = crate::validate::required("state", &f.get("state"), BandState::parse)
        .map_err(|p| PageError(p.into(), lang))?;
    let done = state.app.change_band(&id, to, &f.get("note"), &by).await;
    after_band_action(&state, &ctx, &id, done)
}

/// After an action on a band: back to its page, or the page again with why it was refused.
fn after_band_action(state: &AppState, ctx: &Ctx, id: &str, done: Result<Band, AppError>) -> PageResult {
    match done {
        Ok(_) => Ok(Redirect::to(&format!("/bands/{id}")).into_response()),
        Err(AppError::Conflict(p)) => band_page(state, ctx, id, &[p], StatusCode::CONFLICT),
        Err(e) => Err((e, ctx.lang).into()),
    }
}

pub async fn hand_over(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let lang = ctx.lang;
    let by = staff_name(&ctx, lang)?;
    let f = FormData::parse(&body);
    let done = state.app.hand_over(&id, &f.get("person"), &by).await;
    after_band_action(&state, &ctx, &id, done)
}

#[derive(Deserialize, Default)]
pub struct DayQuery {
    date: Option<String>,
}

pub async fn person_presence(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> PageResult {
    let lang = ctx.lang;
    let person = state.app.person(&id).map_err(|e| (e, lang))?;
    let date = super::date_param(&state, q.date.as_deref()).map_err(|e| PageError(e, lang))?;
    let day =
        state.app.store.get::<PresenceDay>(&PresenceDay::make_id(&id, date)).map_err(|e| (e.into(), lang))?;
    let band = state.app.band_of(&id).map_err(|e| (e, lang))?;
    let (prev, next) = (date.pred_opt(), date.succ_opt());
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "presence.timeline"),
            html! {
                h1 { (t(lang, "presence.timeline")) ": " a href=(format!("/people/{id}")) { (person.full_name) } }
                p.inline {
                    @if let Some(d) = prev { a.button.secondary href=(format!("/people/{id}/presence?date={d}")) { "← " (d.format("%d/%m")) } }
                    strong { (date.format("%d/%m/%Y")) }
                    @if let Some(d) = next { a.button.secondary href=(format!("/people/{id}/presence?date={d}")) { (d.format("%d/%m")) " →" } }
                    @if let Some(b) = &band { " · " (t(lang, "bands.band")) " " a href=(format!("/bands/{}", b.id)) { (b.id) } }
                }
                @match &day {
                    None => p.muted #no-presence { (t(lang, "presence.none")) },
                    Some(day) => (timeline_svg(&state, lang, day, date)),
                }
            },
        ),
    ))
}

/// The day as a horizontal bar: present (green, with its place), unseen (amber), away (red).
fn timeline_svg(state: &AppState, lang: Lang, day: &PresenceDay, date: NaiveDate) -> Markup {
    const W: f64 = 960.0;
    const LEFT: f64 = 20.0;
    let start = state.app.schedule.utc(date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = start + Duration::days(1);
    let now = state.app.now().min(end);
    let x = |t: DateTime<Utc>| LEFT + ((t - start).num_seconds().clamp(0, 86_400) as f64 / 86_400.0) * W;
    let mut svg = String::new();
    svg.push_str(&format!(
        "<svg class=\"timeline\" id=\"timeline\" viewBox=\"0 0 {} 90\" role=\"img\" aria-label=\"{}\">",
        W + 2.0 * LEFT,
        t(lang, "presence.timeline")
    ));
    svg.push_str(&format!("<rect x=\"{LEFT}\" y=\"20\" width=\"{W}\" height=\"36\" fill=\"#eee\"/>"));
    for (from, i) in &day.intervals {
        let Ok(from) = DateTime::parse_from_rfc3339(from.trim_end_matches('+')) else { continue };
        let from = from.with_timezone(&Utc);
        let to = i.to.unwrap_or(now).max(from);
        let (x0, x1) = (x(from), x(to));
        let color = match i.state.as_str() {
            "present" => "#2e7d32",
            "unseen" => "#f9a825",
            _ => "#c62828",
        };
        let title = format!(
            "{}–{} {} {}",
            state.app.schedule.local(from).format("%H:%M"),
            state.app.schedule.local(to).format("%H:%M"),
            td(lang, &format!("presence.{}", i.state)),
            i.place
        );
        svg.push_str(&format!(
            "<rect class=\"seg\" data-state=\"{}\" x=\"{x0:.1}\" y=\"20\" width=\"{:.1}\" height=\"36\" fill=\"{color}\"><title>{}</title></rect>",
            maud::html!((i.state)).into_string(),
            (x1 - x0).max(0.5),
            maud::html!((title)).into_string()
        ));
        if x1 - x0 > 60.0 && !i.place.is_empty() {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"42\" fill=\"#fff\" font-size=\"12\">{}</text>",
                x0 + 4.0,
                maud::html!((i.place)).into_string()
            ));
        }
    }
    for h in (0..=24).step_by(3) {
        let xh = LEFT + f64::from(h) / 24.0 * W;
        svg.push_str(&format!(
            "<line x1=\"{xh:.1}\" y1=\"16\" x2=\"{xh:.1}\" y2=\"60\" stroke=\"#999\"/><text x=\"{xh:.1}\" y=\"76\" font-size=\"12\" text-anchor=\"middle\">{h:02}:00</text>"
        ));
    }
    svg.push_str("</svg>");
    html! {
        (PreEscaped(svg))
        ul.legend {
            li { span.swatch.present {} (t(lang, "presence.present")) }
            li { span.swatch.unseen {} (t(lang, "presence.unseen")) }
            li { span.swatch.away {} (t(lang, "presence.away")) }
        }
    }
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
    let b = state.app.register_band(&input.id, &input.label, &ctx.staff()?.username).await?;
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
    let to = crate::validate::required("state", &input.state, BandState::parse)?;
    let b = state.app.change_band(&id, to, &input.note, &ctx.staff()?.username).await?;
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
    let b = state.app.hand_over(&id, &input.person_id, &ctx.staff()?.username).await?;
    Ok(Json(band_json(&state, &b)))
}

pub async fn api_unknown(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let list = state.app.presence.get().map(|p| p.unknown()).unwrap_or_default();
    Ok(Json(json!(list)))
}

pub async fn api_person_presence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> ApiResult<Json<Value>> {
    state.app.person(&id)?;
    let date = super::date_param(&state, q.date.as_deref())?;
    let day = state.app.store.get::<PresenceDay>(&PresenceDay::make_id(&id, date)).map_err(AppError::from)?;
    Ok(Json(
        json!({"person_id": id, "date": date, "intervals": day.map(|d| d.intervals).unwrap_or_default()}),
    ))
}

/// Every band the engine tracks, and the counters of the sources.
pub async fn api_presence(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let bands = state.app.presence.get().map(|p| p.snapshot()).unwrap_or_default();
    let stats = state.app.presence.get().map(|p| p.stats());
    let mqtt = state.app.mqtt.get().map(|m| m.counters.lock().map(|c| c.clone()).unwrap_or_default());
    let adapter = state.app.ble.get().map(|s| s.to_json());
    Ok(Json(json!({"bands": bands, "stats": stats, "counters": mqtt, "adapter": adapter})))
}
