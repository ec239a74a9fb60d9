//! The nurse's dashboard [M5]: the current round (declared, due, late, missing), the open alerts,
//! kept live in the browser by server-sent events; and its JSON.

use std::convert::Infallible;

use axum::{
    extract::State,
    http::StatusCode,
    response::sse::{Event as SseEvent, KeepAlive, Sse},
    Json,
};
use futures_util::{Stream, StreamExt};
use maud::{html, Markup};

use super::{
    alerts::alert_rows,
    error::ApiError,
    kit::{html as page_response, Answer, AppState, Ctx},
    layout::page,
};
use crate::{
    app::dashboard::{Brief, Dashboard},
    base::i18n::{t, Lang},
};

fn brief_list(lang: Lang, list: &[Brief]) -> Markup {
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

fn live_fragment(state: &AppState, ctx: &Ctx, d: &Dashboard) -> Markup {
    let lang = ctx.lang;
    let wait = state.app.outbox_wait().ok();
    html! {
        @if let Some(w) = wait.as_ref().filter(|w| w.results_late) {
            div.problems role="alert" #sms-late { p {
                (t(lang, "outbox.results_late")) " "
                a href="/sms" { (super::outbox::lane_summary(lang, w)) }
            } }
        }
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
        @if d.alerts.is_empty() { p.muted { (t(lang, "dash.none")) } } @else {
            // Open ones in groups (a storm is one block with one acknowledge), then the acknowledged.
            @match super::alerts::open_alert_groups(state, ctx) {
                Ok(groups) => (groups),
                Err(_) => (alert_rows(state, ctx, &d.alerts)),
            }
            @let acknowledged: Vec<_> = d.alerts.iter().filter(|(a, _)| a.state == outpost_sync::record::AlertState::Acknowledged).cloned().collect();
            @if !acknowledged.is_empty() { (alert_rows(state, ctx, &acknowledged)) }
        }
        div.cards {
            div { h2 { (t(lang, "dash.missing")) } (brief_list(lang, &d.missing)) }
            div { h2 { (t(lang, "dash.late")) } (brief_list(lang, &d.late)) }
            div { h2 { (t(lang, "dash.due")) } (brief_list(lang, &d.due)) }
        }
    }
}

/// Renders the dashboard page body (used by the page and by the benchmark).
pub fn markup(state: &AppState, ctx: &Ctx) -> Result<Markup, ApiError> {
    let d = state.app.dashboard()?;
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

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Answer {
    Ok(page_response(StatusCode::OK, markup(&state, &ctx)?))
}

/// The live part alone, for the page's script to replace when something happens.
pub async fn live(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let d = state.app.dashboard()?;
    Ok(page_response(StatusCode::OK, live_fragment(&state, &ctx, &d)))
}

/// What happens, as server-sent events, until the box stops.
pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.app.subscribe();
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|e| async move {
            let e = e.ok()?;
            Some(Ok(SseEvent::default().event("message").data(serde_json::to_string(&e).unwrap_or_default())))
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub async fn api(State(state): State<AppState>) -> Result<Json<Dashboard>, ApiError> {
    Ok(Json(state.app.dashboard()?))
}
