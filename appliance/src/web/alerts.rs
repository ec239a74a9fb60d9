//! Alerts [M5] on the web: the list by state, acknowledging and resolving, and their API. The rows
//! are shared with the dashboard and a person's page.

use std::cmp::Reverse;

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect},
    Json,
};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use outpost_sync::record::{Alert, AlertKind, AlertState, Severity};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{back_to, staff_page, Answer, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field},
};
use crate::base::{
    i18n::{in_lang, t, td},
    validate,
};

/// Alerts with the names of the people they are about, and their actions for those who may act:
/// open ones can be ticked for one acknowledge of them all (the page's [`bulk_form`]).
pub fn alert_rows(state: &AppState, ctx: &Ctx, alerts: &[(Alert, String)]) -> Markup {
    let lang = ctx.lang;
    let rows = crate::app::alerts::per_person(alerts.to_vec());
    html! {
        div.scroll { table {
            thead { tr {
                th { (t(lang, "alerts.raised")) } th { (t(lang, "common.person")) } th { (t(lang, "common.detail")) }
                th { (t(lang, "field.status")) } th { (t(lang, "common.actions")) }
            } }
            tbody { @for row in &rows {
                @let (a, name) = &row[0];
                tr id=(format!("alert-{}", a.id)) data-kind=(a.kind.as_str()) data-state=(a.state.as_str()) data-count=(row.len()) {
                    td {
                        (state.fmt_time(a.raised_at))
                        @if row.len() > 1 {
                            @let first = row.iter().map(|(a, _)| a.raised_at).min().unwrap_or(a.raised_at);
                            br; span.muted { (t(lang, "alerts.since")) " " (state.fmt_time(first)) }
                        }
                    }
                    td { @if a.person_id.is_empty() {
                        // About a scanner, not a person.
                        a href="/bands#scanners" { (t(lang, "scanners.scanner")) " " (a.subject) }
                    } @else {
                        a href=(format!("/people/{}", a.person_id)) { (name) }
                    } }
                    td {
                        @if row.len() > 1 { strong { (row.len()) " " (t(lang, "alerts.times")) } " " }
                        (badge(lang, match a.severity { Severity::Severe => "severe", _ => "warning" }, &format!("alert.{}", a.kind.as_str())))
                        " " (in_lang(lang, &a.detail))
                        @if a.escalations > 0 { " " span.muted { (t(lang, "alerts.escalated")) " ×" (a.escalations) } }
                        @if row.len() > 1 {
                            details { summary { (t(lang, "alerts.each")) }
                                ul { @for (b, _) in &row[..] { li { (state.fmt_time(b.raised_at)) " — " (in_lang(lang, &b.detail)) } } }
                            }
                        }
                    }
                    td {
                        (badge(lang, a.state.as_str(), &format!("state.{}", a.state.as_str())))
                        @if let Some(by) = &a.acknowledged_by { br; span.muted { (by) } }
                        @if !a.resolution_note.is_empty() { br; span.muted { (in_lang(lang, &a.resolution_note)) } }
                    }
                    td { (actions(ctx, row)) }
                }
            } }
        } }
    }
}

/// A row's actions: its tick box, its acknowledge (of all its alerts), its resolve (one alert).
fn actions(ctx: &Ctx, row: &[(Alert, String)]) -> Markup {
    let lang = ctx.lang;
    let csrf = ctx.csrf();
    let a = &row[0].0;
    let ids = row.iter().map(|(a, _)| a.id.as_str()).collect::<Vec<_>>().join(",");
    html! {
            @if ctx.can_write() && a.state == AlertState::Open {
                label.check { input type="checkbox" name="ids" value=(ids) form="alerts-bulk"; (t(lang, "alerts.pick")) }
                @if row.len() > 1 {
                    form.inline method="post" action="/alerts/ack-selected" {
                        (csrf_field(&csrf)) input type="hidden" name="ids" value=(ids);
                        button type="submit" { (t(lang, "alerts.ack_group")) " (" (row.len()) ")" }
                    }
                } @else {
                    form.inline method="post" action=(format!("/alerts/{}/ack", a.id)) {
                        (csrf_field(&csrf)) button type="submit" { (t(lang, "alerts.ack")) }
                    }
                }
            }
            @if ctx.can_write() && a.state != AlertState::Resolved && row.len() == 1 {
                form.inline method="post" action=(format!("/alerts/{}/resolve", a.id)) {
                    (csrf_field(&csrf))
                    input name="note" required placeholder=(t(lang, "alerts.resolution"));
                    button.secondary type="submit" { (t(lang, "alerts.resolve")) }
                }
            }
    }
}

/// The form the ticked alerts of a page are acknowledged by (their checkboxes name it), shown when
/// the page has open alerts and the user may act.
pub fn bulk_form(ctx: &Ctx) -> Markup {
    html! {
        @if ctx.can_write() {
            form.inline #alerts-bulk method="post" action="/alerts/ack-selected" {
                (csrf_field(&ctx.csrf()))
                button type="submit" { (t(ctx.lang, "alerts.ack_picked")) }
            }
        }
    }
}

/// Rows of one group shown on a page; the rest are behind the link to the full list.
const GROUP_ROWS: usize = 20;

/// Open alerts in triage order: severe single alerts first, then groups (`crate::app::alerts::
/// group_alerts`: a group of several is one block with its count and time span, one acknowledge for
/// all of it, and its newest rows), then the other single alerts; within each, by severity, then
/// kind ([`AlertKind::triage_rank`]: health before whereabouts before missed rounds before
/// equipment), then newest first. At most `limit` groups and `limit` single alerts (the rest are
/// on the alerts page).
pub fn alert_groups(state: &AppState, ctx: &Ctx, open: Vec<(Alert, String)>, limit: usize) -> Markup {
    let lang = ctx.lang;
    let csrf = ctx.csrf();
    let groups = crate::app::alerts::group_alerts(open, state.app.config().alerts.group_window);
    let (mut many, single): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.alerts.len() > 1);
    many.sort_by_key(|g| (Reverse(g.severity()), g.kind.triage_rank(), Reverse(g.span().1)));
    let mut single: Vec<(Alert, String)> = single.into_iter().flat_map(|g| g.alerts).collect();
    single.sort_by_key(|(a, _)| (Reverse(a.severity), a.kind.triage_rank(), Reverse(a.raised_at)));
    let hidden = many.len().saturating_sub(limit) + single.len().saturating_sub(limit);
    let single = &single[..single.len().min(limit)];
    let severe = single.iter().take_while(|(a, _)| a.severity == Severity::Severe).count();
    html! {
        (bulk_form(ctx))
        @if severe > 0 { (alert_rows(state, ctx, &single[..severe])) }
        @for g in many.iter().take(limit) {
            @let (from, to) = g.span();
            details.alert-group data-kind=(g.kind.as_str()) data-count=(g.alerts.len()) {
                summary {
                    (badge(lang, match g.severity() { Severity::Severe => "severe", _ => "warning" }, &format!("alert.{}", g.kind.as_str())))
                    " " strong { (g.alerts.len()) } " " (t(lang, "alerts.in_group")) " "
                    (state.app.schedule().local(from).format("%H:%M")) "–" (state.app.schedule().local(to).format("%H:%M"))
                    @if ctx.can_write() {
                        " "
                        form.inline method="post" action="/alerts/ack-group" {
                            (csrf_field(&csrf))
                            input type="hidden" name="kind" value=(g.kind.as_str());
                            input type="hidden" name="from" value=(from.to_rfc3339());
                            input type="hidden" name="to" value=(to.to_rfc3339());
                            button type="submit" { (t(lang, "alerts.ack_group")) " (" (g.alerts.len()) ")" }
                        }
                    }
                }
                (alert_rows(state, ctx, &g.alerts[..g.alerts.len().min(GROUP_ROWS)]))
                @if g.alerts.len() > GROUP_ROWS {
                    p.muted { "… +" (g.alerts.len() - GROUP_ROWS) " " a href="/alerts?state=open" { (t(lang, "alerts.all")) } }
                }
            }
        }
        @if single.len() > severe { (alert_rows(state, ctx, &single[severe..])) }
        @if hidden > 0 { p.muted { "… +" (hidden) " " a href="/alerts?state=open" { (t(lang, "alerts.all")) } } }
    }
}

/// The dashboard's open alerts, grouped (at most 2,000 read; 20 groups and 20 single alerts shown).
pub fn open_alert_groups(state: &AppState, ctx: &Ctx) -> Result<Markup, ApiError> {
    Ok(alert_groups(state, ctx, state.app.alerts_named(AlertState::Open, 2_000)?, 20))
}

#[derive(Deserialize, Default)]
pub struct AlertQuery {
    state: Option<String>,
    /// Filters: one kind, severe only, a person's name (any part, however typed).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    q: String,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, Query(q): Query<AlertQuery>) -> Answer {
    let lang = ctx.lang;
    let which = q.state.as_deref().and_then(AlertState::parse).unwrap_or(AlertState::Open);
    let kind = AlertKind::parse(&q.kind);
    let severe = q.severity == "severe";
    let name = crate::base::validate::fold(&q.q);
    let list: Vec<_> = state
        .app
        .alerts_named(which, 500)?
        .into_iter()
        .filter(|(a, n)| {
            kind.is_none_or(|k| a.kind == k)
                && (!severe || a.severity == Severity::Severe)
                && (name.is_empty() || crate::base::validate::fold(n).contains(&name))
        })
        .collect();
    let body = html! {
        h1 { (t(lang, "alerts.title")) }
        p.inline { @for s in [AlertState::Open, AlertState::Acknowledged, AlertState::Resolved] {
            a.button.secondary[s != which] href=(format!("/alerts?state={}", s.as_str())) { (td(lang, &format!("state.{}", s.as_str()))) }
        } }
        form.filters #alert-filters method="get" action="/alerts" {
            input type="hidden" name="state" value=(which.as_str());
            select name="kind" aria-label=(t(lang, "alerts.kind")) {
                option value="" { (t(lang, "alerts.all_kinds")) }
                @for k in AlertKind::ALL { option value=(k.as_str()) selected[kind == Some(k)] { (td(lang, &format!("alert.{}", k.as_str()))) } }
            }
            label.check { input type="checkbox" name="severity" value="severe" checked[severe]; (t(lang, "alerts.severe_only")) }
            input name="q" value=(q.q) placeholder=(t(lang, "people.search"));
            button type="submit" { (t(lang, "people.filter")) }
        }
        @if list.is_empty() { p.muted { (t(lang, "dash.none")) } }
        @else if which == AlertState::Open { (alert_groups(&state, &ctx, list, 500)) }
        @else { (alert_rows(&state, &ctx, &list)) }
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

/// A group's one acknowledge (its kind and time span).
pub async fn acknowledge_group(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let f = FormData::parse(&body);
    let kind = validate::required("kind", &f.get("kind"), AlertKind::parse)?;
    let from = validate::required("from", &f.get("from"), parse_time)?;
    let to = validate::required("to", &f.get("to"), parse_time)?;
    state.app.acknowledge_group(kind, (from, to), &ctx.username()?).await?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

/// The ticked alerts' one acknowledge (each checkbox carries one row's ids, joined by commas).
pub async fn acknowledge_selected(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let ids: Vec<String> = FormData::parse(&body)
        .all("ids")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(
            crate::app::AppError::invalid("ids", "Chưa chọn cảnh báo nào.", "No alert selected.").into()
        );
    }
    state.app.acknowledge_ids(&ids, &ctx.username()?).await?;
    Ok(Redirect::to(&back_to(&headers, "/alerts")).into_response())
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
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

/// What `POST /api/v1/alerts/acknowledge` acknowledges: alerts by id, or a group (a kind and a
/// time span).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    #[serde(default)]
    ids: Vec<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn api_acknowledge_group(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<GroupInput>,
) -> Result<Json<Value>, ApiError> {
    let by = ctx.username()?;
    let n = match (&input.kind, &input.from, &input.to) {
        (None, None, None) if !input.ids.is_empty() => state.app.acknowledge_ids(&input.ids, &by).await?,
        (Some(kind), Some(from), Some(to)) if input.ids.is_empty() => {
            let kind = validate::required("kind", kind, AlertKind::parse)?;
            let from = validate::required("from", from, parse_time)?;
            let to = validate::required("to", to, parse_time)?;
            state.app.acknowledge_group(kind, (from, to), &by).await?
        }
        _ => {
            return Err(crate::app::AppError::invalid(
                "ids",
                "Cần danh sách ids, hoặc kind, from và to.",
                "Either ids, or kind, from and to.",
            )
            .into())
        }
    };
    Ok(Json(json!({ "acknowledged": n })))
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
