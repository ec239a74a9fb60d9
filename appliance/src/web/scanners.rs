//! Scanners [M3] on the web: each gateway's (and the box's adapter's) health — up or down and why,
//! since when, last heard, what it reports of itself — on the band pool page and in the API, and
//! forgetting one taken away from the site (administrators).

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect},
    Json,
};
use maud::{html, Markup};
use outpost_ble::scanners::{Health, Scanner};
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{Answer, ApiResult, AppState, Ctx},
    layout::{badge, csrf_field},
};
use crate::{app::scanners::reason_text, base::i18n::t};

fn scanners(state: &AppState) -> Vec<Scanner> {
    state.services.presence().map(|p| p.scanners()).unwrap_or_default()
}

/// The scanners' table of the band pool page.
pub fn table(state: &AppState, ctx: &Ctx) -> Markup {
    let lang = ctx.lang;
    let list = scanners(state);
    let csrf = ctx.csrf();
    let silent = state.app.config().bands.scanner_silent_after.num_minutes();
    html! {
        h2 #scanners { (t(lang, "scanners.title")) " (" (list.len()) ")" }
        @if list.is_empty() { p.muted { (t(lang, "scanners.none")) } }
        @else { div.scroll { table #scanner-list {
            thead { tr {
                th { (t(lang, "scanners.name")) } th { (t(lang, "field.status")) } th { (t(lang, "scanners.since")) }
                th { (t(lang, "bands.last_seen")) } th { (t(lang, "scanners.report")) } th { "" }
            } }
            tbody { @for s in &list {
                tr data-scanner=(s.name) data-health=(s.health.as_str()) {
                    td { (s.name) }
                    td {
                        @match s.health {
                            Health::Up => (badge(lang, "present", "scanners.up")),
                            Health::Down => (badge(lang, "severe", "scanners.down")),
                        }
                        @if let Some(r) = &s.reason { " " span.muted { (reason_text(lang, r, silent)) } }
                    }
                    td { (state.fmt_time(s.since)) }
                    td { (state.fmt_time(s.last_heard)) }
                    td { @if let Some(tm) = &s.telemetry {
                        @if let Some(v) = &tm.version { (v) " · " }
                        @if let Some(ip) = &tm.ip { (ip) " · " }
                        @if let Some(r) = tm.wifi_rssi { "Wi-Fi " (r) " dBm · " }
                        @if let Some(u) = tm.uptime_seconds { (t(lang, "scanners.uptime")) " " (u / 3600) " h" }
                    } }
                    td { @if ctx.is_admin() && s.health == Health::Down {
                        form.inline method="post" action=(format!("/scanners/{}/forget", s.name)) {
                            (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "scanners.forget")) }
                        }
                    } }
                }
            } }
        } } }
    }
}

/// `GET /api/v1/scanners`: every scanner with its health and what it reports.
pub async fn api_list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "scanners": scanners(&state) })))
}

/// Forgets a scanner the box kept or the presence thread knows; 404 for any other name.
async fn forget_one(state: &AppState, ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    let known = scanners(state).iter().any(|s| s.name == name);
    let kept = state.app.forget_scanner(name, &ctx.username()?).await?;
    if !known && !kept {
        return Err(crate::app::AppError::NotFound.into());
    }
    if let Some(p) = state.services.presence() {
        p.forget(name);
    }
    Ok(())
}

/// `DELETE /api/v1/scanners/{name}`: a scanner taken away from the site is no longer watched.
pub async fn api_forget(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    forget_one(&state, &ctx, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The band pool page's button.
pub async fn forget(State(state): State<AppState>, ctx: Ctx, Path(name): Path<String>) -> Answer {
    forget_one(&state, &ctx, &name).await?;
    Ok(Redirect::to("/bands#scanners").into_response())
}
