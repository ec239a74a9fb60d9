//! Alerts [M5] on the web: the list by state, acknowledging and resolving, and their API. The rows
//! are shared with the dashboard and a person's page.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::{Alert, AlertState, Severity};
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{back_to, staff_page, Answer, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field},
};
use crate::base::{
    i18n::{t, td},
    validate,
};

/// Alerts with the names of the people they are about, and their actions for those who may act.
pub fn alert_rows(state: &AppState, ctx: &Ctx, alerts: &[(Alert, String)]) -> Markup {
    let lang = ctx.lang;
    let csrf = ctx.csrf();
    html! {
        div.scroll { table {
            thead { tr {
                th { (t(lang, "alerts.raised")) } th { (t(lang, "common.person")) } th { (t(lang, "common.detail")) }
                th { (t(lang, "field.status")) } th { (t(lang, "common.actions")) }
            } }
            tbody { @for (a, name) in alerts {
                tr id=(format!("alert-{}", a.id)) data-kind=(a.kind.as_str()) data-state=(a.state.as_str()) {
                    td { (state.fmt_time(a.raised_at)) }
                    td { @if a.person_id.is_empty() {
                        // About a scanner, not a person.
                        a href="/bands#scanners" { (t(lang, "scanners.scanner")) " " (a.subject) }
                    } @else {
                        a href=(format!("/people/{}", a.person_id)) { (name) }
                    } }
                    td {
                        (badge(lang, match a.severity { Severity::Severe => "severe", _ => "warning" }, &format!("alert.{}", a.kind.as_str())))
                        " " (a.detail)
                        @if a.escalations > 0 { " " span.muted { (t(lang, "alerts.escalated")) " ×" (a.escalations) } }
                    }
                    td {
                        (badge(lang, a.state.as_str(), &format!("state.{}", a.state.as_str())))
                        @if let Some(by) = &a.acknowledged_by { br; span.muted { (by) } }
                        @if !a.resolution_note.is_empty() { br; span.muted { (a.resolution_note) } }
                    }
                    td {
                        @if ctx.can_write() && a.state == AlertState::Open {
                            form.inline method="post" action=(format!("/alerts/{}/ack", a.id)) {
                                (csrf_field(&csrf)) button type="submit" { (t(lang, "alerts.ack")) }
                            }
                        }
                        @if ctx.can_write() && a.state != AlertState::Resolved {
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

#[derive(Deserialize, Default)]
pub struct AlertQuery {
    state: Option<String>,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, Query(q): Query<AlertQuery>) -> Answer {
    let lang = ctx.lang;
    let which = q.state.as_deref().and_then(AlertState::parse).unwrap_or(AlertState::Open);
    let list = state.app.alerts_named(which, 500)?;
    let body = html! {
        h1 { (t(lang, "alerts.title")) }
        p.inline { @for s in [AlertState::Open, AlertState::Acknowledged, AlertState::Resolved] {
            a.button.secondary[s != which] href=(format!("/alerts?state={}", s.as_str())) { (td(lang, &format!("state.{}", s.as_str()))) }
        } }
        @if list.is_empty() { p.muted { (t(lang, "dash.none")) } } @else { (alert_rows(&state, &ctx, &list)) }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "alerts.title"), body))
}

pub async fn acknowledge(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    state.app.acknowledge(&id, &ctx.username()?).await?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

pub async fn resolve(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let f = FormData::parse(&body);
    state.app.resolve(&id, &f.get("note"), &ctx.username()?).await?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

// ----- API -----

pub async fn api_list(
    State(state): State<AppState>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let which = validate::choice("state", q.state.as_deref(), AlertState::parse)?.unwrap_or(AlertState::Open);
    Ok(Json(state.app.alerts(which, 10_000)?))
}

/// Acknowledges an alert. A body, if any, is read and ignored, so the connection stays usable.
pub async fn api_acknowledge(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    _body: Bytes,
) -> Result<Json<Alert>, ApiError> {
    Ok(Json(state.app.acknowledge(&id, &ctx.username()?).await?))
}

#[derive(Deserialize)]
pub struct ResolveInput {
    #[serde(default)]
    note: String,
}

pub async fn api_resolve(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ResolveInput>,
) -> Result<Json<Alert>, ApiError> {
    Ok(Json(state.app.resolve(&id, &input.note, &ctx.username()?).await?))
}
