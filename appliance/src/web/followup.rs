//! The daily follow-up sheet [M9] on the web: one row per person for a day, the staff-kept columns
//! edited in place, the CSV export, and its API.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
    Json,
};
use maud::html;
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{download, staff_page, urlencode, Answer, AppState, Ctx, FormData},
    layout::{csrf_field, page_of, pager},
};
use crate::{
    app::followup,
    base::i18n::{decimal, t, td},
};

#[derive(Deserialize, Default)]
pub struct DateQuery {
    date: Option<String>,
    #[serde(default)]
    room: String,
    page: Option<usize>,
}

/// Rows on a page of the sheet: each is a form, and 2,000 were 1.1 MB.
const SHEET_PAGE: usize = 50;

pub async fn sheet(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DateQuery>) -> Answer {
    let lang = ctx.lang;
    let date = state.date_param(q.date.as_deref())?;
    let all = state.app.follow_up_sheet(date)?;
    let mut rooms: Vec<&str> = all.iter().map(|r| r.room.as_str()).collect();
    rooms.dedup();
    let in_room: Vec<_> = all.iter().filter(|r| q.room.is_empty() || r.room == q.room).collect();
    let (rows, page, pages) = page_of(&in_room, q.page, SHEET_PAGE);
    let link = |n: usize| format!("/followup?date={date}&room={}&page={n}", urlencode(&q.room));
    let csrf = ctx.csrf();
    let body = html! {
        h1 { (t(lang, "followup.title")) }
        form.filters method="get" action="/followup" {
            input type="date" name="date" value=(date.to_string());
            select name="room" aria-label=(t(lang, "field.room")) {
                option value="" { (t(lang, "followup.room_all")) " (" (all.len()) ")" }
                @for room in &rooms { option value=(room) selected[*room == q.room] { (room) } }
            }
            button type="submit" { (t(lang, "people.filter")) }
            a.button.secondary href=(format!("/followup/export.csv?date={date}")) { (t(lang, "people.export")) }
        }
        div.scroll { table {
            thead { tr {
                th { (t(lang, "common.person")) } th { (t(lang, "field.room")) } th { (t(lang, "followup.on_time")) }
                th { (t(lang, "followup.max_temp")) } th { (t(lang, "decl.symptoms")) }
                th { (t(lang, "followup.presence")) " / " (t(lang, "followup.tests")) " / " (t(lang, "followup.notes")) }
            } }
            tbody { @for r in rows {
                tr {
                    td { a href=(format!("/people/{}", r.person_id)) { (r.full_name) } }
                    td { (r.room) }
                    td { (r.on_time) " / " (r.owed) }
                    td { (r.max_temperature.map(|t| decimal(lang, t)).unwrap_or_default()) }
                    td { (r.symptoms.iter().map(|s| td(lang, &format!("sym.{}", s.as_str()))).collect::<Vec<_>>().join(", ")) }
                    td {
                        @let (presence, tests) = (r.known.presence_text(lang), r.known.tests_text(lang));
                        @if !presence.is_empty() || !tests.is_empty() {
                            p.muted.known title=(t(lang, "followup.known")) {
                                (presence) @if !presence.is_empty() && !tests.is_empty() { " · " } (tests)
                            }
                        }
                        @if ctx.can_write() {
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
        (pager(lang, "followup-pages", (page, pages, in_room.len()), link))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "followup.title"), body))
}

pub async fn save(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((person, date)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let date = state.date_param(Some(&date))?;
    let f = FormData::parse(&body);
    state
        .app
        .save_follow_up(&person, date, &f.get("presence"), &f.get("tests"), &f.get("notes"), &staff)
        .await?;
    Ok(Redirect::to(&format!("/followup?date={date}")).into_response())
}

pub async fn export(State(state): State<AppState>, Query(q): Query<DateQuery>) -> Answer {
    let date = state.date_param(q.date.as_deref())?;
    let rows = state.app.follow_up_sheet(date)?;
    Ok(download("text/csv; charset=utf-8", &format!("theo-doi-{date}.csv"), followup::export(&rows, date)))
}

pub async fn api(
    State(state): State<AppState>,
    Query(q): Query<DateQuery>,
) -> Result<Json<Vec<followup::Row>>, ApiError> {
    let date = state.date_param(q.date.as_deref())?;
    Ok(Json(state.app.follow_up_sheet(date)?))
}
