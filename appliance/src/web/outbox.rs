//! The SMS outbox [M6] on the web: every message with its state (queued, sending, sent, delivered,
//! failed), and its API.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    Json,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{staff_page, without_link_secrets, Answer, AppState, Ctx},
    layout::badge,
};
use crate::{
    app::outbox::{OutboxMessage, OutboxState, Wait},
    base::i18n::{decimal, t, td, Lang},
};

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx, Query(q): Query<Notice>) -> Answer {
    let lang = ctx.lang;
    let list = state.app.outbox(500)?;
    let wait = state.app.outbox_wait()?;
    let body = html! {
        h1 { (t(lang, "outbox.title")) }
        @if let Some(n) = &q.notice { p.notice { (n) } }
        @if wait.results_late { div.problems role="alert" { p { (t(lang, "outbox.results_late")) } } }
        (lanes(lang, &wait))
        @if ctx.can_write() { p { a.button href="/sms/new" { (t(lang, "sms.new")) } } }
        div.scroll { table #outbox {
            thead { tr {
                th { (t(lang, "common.time")) } th { (t(lang, "outbox.to")) } th { (t(lang, "outbox.purpose")) }
                th { "SMS" } th { (t(lang, "outbox.state")) } th { (t(lang, "outbox.attempts")) }
            } }
            tbody { @for m in &list {
                tr data-state=(m.state.as_str()) {
                    td { (state.fmt_time(m.created_at)) }
                    td { (m.to) }
                    td { (td(lang, &format!("purpose.{}", m.purpose.as_str()))) }
                    td { @if ctx.can_write() { (m.text) } @else { (without_link_secrets(&m.text)) } }
                    td {
                        (badge(lang, match m.state {
                            OutboxState::Delivered => "resolved",
                            OutboxState::Failed => "open",
                            OutboxState::Expired => "muted",
                            _ => "warning",
                        }, &format!("outbox.{}", m.state.as_str())))
                        @if let Some(at) = m.delivered_at { br; span.muted { (state.fmt_time(at)) } }
                        @if let Some(e) = &m.last_error { br; span.muted { (e) } }
                    }
                    td { (m.attempts) }
                }
            } }
        } }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "outbox.title"), body))
}

/// The messages waiting in each lane and when each lane will have left, at the measured pace.
fn lanes(lang: Lang, wait: &Wait) -> Markup {
    html! {
        div.scroll { table #outbox-lanes {
            thead { tr {
                th { (t(lang, "outbox.lane")) } th { (t(lang, "outbox.waiting")) } th { (t(lang, "outbox.drained_in")) }
            } }
            tbody { @for l in &wait.lanes {
                tr data-lane=(l.purpose.as_str()) {
                    td { (td(lang, &format!("purpose.{}", l.purpose.as_str()))) }
                    td { (l.waiting) }
                    td { @match (l.waiting, l.drained_in_seconds) {
                        (0, _) => { "—" }
                        (_, Some(s)) => { (minutes(s)) }
                        (_, None) => { span.muted { (t(lang, "outbox.pace_unknown")) } }
                    } }
                }
            } }
        } }
        @if let Some(s) = wait.seconds_per_message {
            p.muted { (t(lang, "outbox.pace")) " " (decimal(lang, s)) " s" }
        }
    }
}

/// "12 min", "2 h 05 min": a drain time in seconds.
fn minutes(seconds: f64) -> String {
    let m = (seconds / 60.0).ceil() as u64;
    if m < 60 {
        format!("{m} min")
    } else {
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

/// One line for the dashboard: the results waiting and when the last will have left.
pub fn lane_summary(lang: Lang, wait: &Wait) -> String {
    match wait.results() {
        Some(l) => format!(
            "{} {}, {} {}",
            l.waiting,
            td(lang, "purpose.test_result"),
            t(lang, "outbox.drained_in"),
            l.drained_in_seconds.map(minutes).unwrap_or_default()
        ),
        None => String::new(),
    }
}

/// Every message; a manager reads them without the links' secrets.
pub async fn api(State(state): State<AppState>, ctx: Ctx) -> Result<Json<Vec<OutboxMessage>>, ApiError> {
    let mut list = state.app.outbox_all()?;
    if !ctx.can_write() {
        for m in &mut list {
            m.text = without_link_secrets(&m.text);
        }
    }
    Ok(Json(list))
}
