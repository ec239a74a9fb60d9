//! Exposure lists [M10] on the web: the section of a person's page (who shared which zone, how
//! many minutes a day), making it again on demand, its CSV and .xlsx, and its API.

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect},
    Json,
};
use chrono::NaiveDate;
use maud::{html, Markup};
use outpost_sync::{
    record::{Exposure, Person},
    report::Cell,
};

use super::{
    error::ApiError,
    kit::{download, xlsx_download, Answer, ApiResult, AppState, Ctx},
    layout::csrf_field,
};
use crate::{
    app::{csv, AppError},
    base::i18n::t,
};

/// The person page's section: the last list, or none yet; the button to make it again.
pub fn person_section(state: &AppState, ctx: &Ctx, p: &Person) -> Result<Markup, ApiError> {
    let lang = ctx.lang;
    let list = state.app.exposure(&p.id)?;
    Ok(html! {
        h2 #exposure { (t(lang, "exposure.title")) }
        @match &list {
            None => p.muted { (t(lang, "exposure.none")) },
            Some(x) => {
                p.muted {
                    (t(lang, "exposure.computed")) " " (state.fmt_time(x.computed_at)) " · "
                    (x.days) " " (t(lang, "exposure.days")) " · " (x.contacts.len()) " " (t(lang, "exposure.people"))
                    " · " a href=(format!("/people/{}/exposure.csv", p.id)) { "CSV" }
                    " · " a href=(format!("/people/{}/exposure.xlsx", p.id)) { "Excel" }
                }
                @if !x.contacts.is_empty() { div.scroll { table #exposure-list {
                    thead { tr {
                        th { (t(lang, "field.full_name")) } th { (t(lang, "field.room")) }
                        th { (t(lang, "exposure.minutes")) } th { (t(lang, "exposure.where")) }
                    } }
                    tbody { @for (id, c) in by_minutes(x) {
                        tr data-person=(id) data-minutes=(c.minutes) {
                            td { a href=(format!("/people/{id}")) { (c.full_name) } }
                            td { (c.room) }
                            td { (c.minutes) }
                            td { @for (day, zones) in &c.days {
                                (day) ": " @for (zone, m) in zones { (zone) " " (m) "′ " } br;
                            } }
                        }
                    } }
                } } }
            },
        }
        @if ctx.can_write() {
            form.inline method="post" action=(format!("/people/{}/exposure", p.id)) {
                (csrf_field(&ctx.csrf())) button.secondary type="submit" { (t(lang, "exposure.make")) }
            }
        }
    })
}

/// Contacts, the longest first.
fn by_minutes(x: &Exposure) -> Vec<(&String, &outpost_sync::record::Contact)> {
    let mut v: Vec<_> = x.contacts.iter().collect();
    v.sort_by(|a, b| b.1.minutes.cmp(&a.1.minutes).then_with(|| a.1.full_name.cmp(&b.1.full_name)));
    v
}

/// Makes the list again, off the async runtime (it reads every other person's days in range).
async fn refresh(state: &AppState, id: &str) -> Result<Exposure, ApiError> {
    let app = state.app.clone();
    let owned = id.to_owned();
    let list = tokio::task::spawn_blocking(move || app.compute_exposure(&owned, "on_demand"))
        .await
        .map_err(|_| AppError::Store(outpost_sync::StoreError::Closed))??;
    state.app.keep_exposure(&list).await?;
    Ok(list)
}

pub async fn make(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    refresh(&state, &id).await?;
    Ok(Redirect::to(&format!("/people/{id}#exposure")).into_response())
}

/// The list as rows: one per contact, day and zone.
fn rows(x: &Exposure) -> Vec<Vec<Cell>> {
    let text = |s: &str| Cell::Text(s.to_owned());
    let mut rows = vec![["Họ và tên", "Phòng", "Tổng số phút", "Ngày", "Vùng (máy quét)", "Số phút"]
        .iter()
        .map(|h| text(h))
        .collect()];
    for (_, c) in by_minutes(x) {
        for (day, zones) in &c.days {
            for (zone, minutes) in zones {
                rows.push(vec![
                    text(&c.full_name),
                    text(&c.room),
                    Cell::Count(c.minutes as usize),
                    NaiveDate::parse_from_str(day, "%Y-%m-%d").map_or_else(|_| text(day), Cell::Date),
                    text(zone),
                    Cell::Count(*minutes as usize),
                ]);
            }
        }
    }
    rows
}

fn kept(state: &AppState, id: &str) -> Result<Exposure, ApiError> {
    state.app.person(id)?;
    Ok(state.app.exposure(id)?.ok_or(AppError::NotFound)?)
}

pub async fn export_csv(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let x = kept(&state, &id)?;
    let mut w = csv::ExcelCsv::default();
    for row in &rows(&x) {
        w.row(row.iter().map(ToString::to_string));
    }
    Ok(download("text/csv; charset=utf-8", &format!("tiep-xuc-{id}.csv"), w.into_bytes()))
}

pub async fn export_xlsx(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let x = kept(&state, &id)?;
    xlsx_download(&state, &ctx, ("Tiếp xúc", &format!("tiep-xuc-{id}.xlsx")), &rows(&x))
}

/// `GET /api/v1/people/{id}/exposure`: the list last made (404 if none yet).
pub async fn api_get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Exposure>> {
    Ok(Json(kept(&state, &id)?))
}

/// `POST /api/v1/people/{id}/exposure`: makes it now.
pub async fn api_make(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Exposure>> {
    Ok(Json(refresh(&state, &id).await?))
}
