//! The SMS outbox [M6] on the web: every message with its state (queued, sending, sent, delivered,
//! failed), and its API.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    Json,
};
use maud::html;
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{staff_page, without_link_secrets, Answer, AppState, Ctx},
    layout::badge,
};
use crate::{
    app::outbox::{OutboxMessage, OutboxState},
    base::i18n::{t, td},
};

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx, Query(q): Query<Notice>) -> Answer {
    let lang = ctx.lang;
    let list = state.app.outbox(500)?;
    let body = html! {
        h1 { (t(lang, "outbox.title")) }
        @if let Some(n) = &q.notice { p.notice { (n) } }
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
