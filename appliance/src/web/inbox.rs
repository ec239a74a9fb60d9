//! The staff inbox [M6] on the web: received messages that were not declarations (and those that
//! were, marked so), and its API.

use axum::{extract::State, http::StatusCode, Json};
use maud::html;

use super::{
    error::ApiError,
    kit::{staff_page, Answer, AppState, Ctx},
    layout::badge,
};
use crate::{app::inbox::InboxMessage, base::i18n::t};

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let list = state.app.inbox(500)?;
    let body = html! {
        h1 { (t(lang, "inbox.title")) }
        div.scroll { table #inbox {
            thead { tr { th { (t(lang, "common.time")) } th { (t(lang, "inbox.from")) } th { "SMS" } th { "" } } }
            tbody { @for m in &list {
                tr {
                    td { (state.fmt_time(m.received_at)) }
                    td {
                        (m.from)
                        @if let Some(pid) = &m.person_id {
                            @if let Ok(p) = state.app.person(pid) { br; a href=(format!("/people/{pid}")) { (p.full_name) } }
                        }
                    }
                    td { (m.text) }
                    td {
                        @if m.handled_as == "declaration" { (badge(lang, "resolved", "inbox.declaration")) }
                        @else { (badge(lang, "warning", "inbox.staff")) }
                        @if m.missing_parts > 0 { " " (badge(lang, "open", "inbox.missing")) }
                    }
                }
            } }
        } }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "inbox.title"), body))
}

pub async fn api(State(state): State<AppState>) -> Result<Json<Vec<InboxMessage>>, ApiError> {
    Ok(Json(state.app.inbox(1000)?))
}
