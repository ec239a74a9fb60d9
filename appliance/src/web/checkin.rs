//! QR check-in pages [M12]: the printable poster, the public form it opens, the entry log with search,
//! staff scanning a quarantined person's code, and the CSV export.

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::NaiveDate;
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{
        download, html, posted_csrf, public_page, staff_page, urlencode, with_notice, Answer, ApiResult,
        AppState, Ctx, FormData, JsonBody,
    },
    layout::{csrf_field, page, page_of, pager, problems, qr_svg},
};
use crate::{
    app::{
        checkin::{self, CheckIn, CheckInInput, Direction, PURPOSES},
        AppError,
    },
    base::{
        i18n::{t, td, Lang},
        validate::{self, Problem},
    },
};

fn direction_of(raw: &str) -> Result<Direction, ApiError> {
    Direction::parse(raw).ok_or_else(|| {
        ApiError::Invalid(vec![Problem::new(
            "direction",
            "Vui lòng chọn vào hay ra.",
            "Please choose in or out.",
        )])
    })
}

/// The poster: the site's name and the QR code of its check-in form, to print and put at the gate.
pub async fn poster(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let token = state.app.checkin_token().await?;
    let link = format!("{}/c/{token}", state.app.public_url());
    let site = &state.app.config().site;
    let body = html! {
        section.poster {
            h1 { (site.name) }
            p.lead { (t(lang, "checkin.poster_help")) }
            div.qr.big { (qr_svg(&link)) }
            p { a #checkin-link href=(link) { (link) } }
            @if !site.wifi.is_empty() { p.lead { (t(lang, "card.wifi")) ": " strong #poster-wifi { (site.wifi) } } }
        }
        p.no-print { button.secondary type="button" #print { (t(lang, "checkin.print")) } }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "checkin.poster"), body))
}

fn form(
    state: &AppState,
    lang: Lang,
    token: &str,
    csrf: &str,
    list: &[Problem],
    f: Option<&FormData>,
) -> Markup {
    let value = |name: &str| f.map(|f| f.get(name)).unwrap_or_default();
    let purpose = value("purpose");
    let direction = f.map_or_else(|| "in".to_owned(), |f| f.get("direction"));
    page(
        lang,
        None,
        t(lang, "checkin.title"),
        html! {
            h1 { (t(lang, "checkin.title")) }
            p { strong { (state.app.config().site.name) } }
            (problems(lang, list))
            form.stack #checkin-form method="post" action=(format!("/c/{token}")) {
                (csrf_field(csrf))
                fieldset.inline {
                    @for d in ["in", "out"] {
                        label { input type="radio" name="direction" value=(d) checked[direction == d]; (td(lang, &format!("checkin.{d}"))) }
                    }
                }
                label { (t(lang, "field.full_name")) input name="name" value=(value("name")) autocomplete="name" required; }
                label { (t(lang, "field.phone")) input name="phone" type="tel" value=(value("phone")) autocomplete="tel" required; }
                label { (t(lang, "checkin.purpose"))
                    select name="purpose" required {
                        option value="" { "—" }
                        @for p in PURPOSES { option value=(p) selected[purpose == p] { (td(lang, &format!("checkin.purpose.{p}"))) } }
                    }
                }
                label { (t(lang, "field.note")) input name="note" value=(value("note")); }
                button type="submit" { (t(lang, "checkin.submit")) }
            }
        },
    )
}

/// The form the poster opens; another site's poster (or a token that is not this site's) is refused.
pub async fn public_form(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Answer {
    if !state.app.is_checkin_token(&token)? {
        return Ok(not_this_site(ctx.lang));
    }
    Ok(state.public_form(&headers, |csrf| form(&state, ctx.lang, &token, csrf, &[], None)))
}

/// The answer to a token that is not this site's: 404 with what to do.
fn not_this_site(lang: Lang) -> Response {
    let msg = Problem::new(
        "token",
        "Mã QR này không phải của khu cách ly này. Vui lòng quét mã dán tại cổng khu.",
        "This QR code is not this site's. Please scan the code posted at this site's gate.",
    );
    html(
        StatusCode::NOT_FOUND,
        page(
            lang,
            None,
            t(lang, "checkin.title"),
            html! { h1 { (t(lang, "checkin.title")) } (problems(lang, &[msg])) },
        ),
    )
}

pub async fn public_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Answer {
    let lang = ctx.lang;
    if !state.app.is_checkin_token(&token)? {
        return Ok(not_this_site(lang));
    }
    let f = FormData::parse(&body);
    let input = CheckInInput {
        name: f.get("name"),
        phone: f.get("phone"),
        purpose: f.get("purpose"),
        note: f.get("note"),
        direction: f.get("direction"),
    };
    match state.app.check_in(&input).await {
        Ok(entry) => {
            let body = html! {
                h1 { (t(lang, "checkin.title")) }
                p.notice { (t(lang, "checkin.thanks")) " " (td(lang, &format!("checkin.{}", entry.direction.as_str()))) " · " (state.fmt_time(entry.at)) }
            };
            Ok(public_page(lang, StatusCode::OK, t(lang, "checkin.title"), body))
        }
        Err(AppError::Invalid(list)) => {
            let form = form(&state, lang, &token, posted_csrf(&headers), &list, Some(&f));
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, form))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    /// The page of the log shown (1 is the newest).
    #[serde(default)]
    page: Option<usize>,
}

/// Entries on one page of the log: a public poster can add thousands a day, and a phone must still
/// open the page.
const LOG_PAGE: usize = 200;

impl LogQuery {
    fn date(&self) -> Result<Option<NaiveDate>, ApiError> {
        match self.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => Ok(None),
            Some(d) => validate::parse_date(d).map(Some).ok_or_else(|| {
                ApiError::Invalid(vec![Problem::new(
                    "date",
                    "Ngày không hợp lệ: dùng dd/mm/yyyy.",
                    "Not a date: use dd/mm/yyyy.",
                )])
            }),
        }
    }
}

fn direction_cell(lang: Lang, c: &CheckIn) -> String {
    td(lang, &format!("checkin.{}", c.direction.as_str()))
}

pub async fn log(State(state): State<AppState>, ctx: Ctx, Query(q): Query<LogQuery>) -> Answer {
    let lang = ctx.lang;
    let date = q.date()?;
    let all = state.app.check_ins(date, &q.q)?;
    let (entries, page, pages) = page_of(&all, q.page, LOG_PAGE);
    let page_link = |n: usize| {
        let date = date.map(|d| d.to_string()).unwrap_or_default();
        format!("/checkin?q={}&date={date}&page={n}", urlencode(&q.q))
    };
    let csrf = ctx.csrf();
    let export = format!(
        "/checkin/export.csv?q={}&date={}",
        urlencode(&q.q),
        date.map(|d| d.to_string()).unwrap_or_default()
    );
    let body = html! {
        h1 { (t(lang, "checkin.log")) }
        @if let Some(n) = &q.notice { p.notice { (n) } }
        p { a.button.secondary href="/checkin/poster" { (t(lang, "checkin.poster")) } }
        @if ctx.can_write() {
            h2 { (t(lang, "checkin.scan")) }
            form.inline #checkin-scan method="post" action="/checkin/scan" {
                (csrf_field(&csrf))
                input name="code" placeholder=(t(lang, "test.code")) required;
                select name="direction" { option value="in" { (t(lang, "checkin.in")) } option value="out" { (t(lang, "checkin.out")) } }
                button type="submit" { (t(lang, "checkin.record")) }
            }
        }
        form.inline method="get" action="/checkin" {
            input name="q" value=(q.q) placeholder=(t(lang, "checkin.search"));
            input name="date" value=(date.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default()) placeholder="dd/mm/yyyy" size="12";
            button.secondary type="submit" { (t(lang, "report.show")) }
            a.button.secondary href=(export) { "CSV" }
        }
        div.scroll { table #checkins {
            thead { tr { th { (t(lang, "checkin.time")) } th { (t(lang, "checkin.way")) } th { (t(lang, "field.full_name")) } th { (t(lang, "field.phone")) } th { (t(lang, "checkin.purpose")) } th { (t(lang, "field.note")) } } }
            tbody { @for c in entries {
                tr { td { (state.fmt_time(c.at)) } td { (direction_cell(lang, c)) } td { (c.name) } td { (c.phone) }
                    td { (td(lang, &format!("checkin.purpose.{}", c.purpose))) } td { (c.note) } }
            } }
        } }
        (pager(lang, "checkin-pages", (page, pages, all.len()), page_link))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "checkin.log"), body))
}

pub async fn scan(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let f = FormData::parse(&body);
    let direction = direction_of(&f.get("direction"))?;
    let entry = state.app.check_in_person(&f.get("code"), direction, &staff).await?;
    let notice = format!("{} · {}", entry.name, direction_cell(lang, &entry));
    Ok(with_notice("/checkin", &notice))
}

pub async fn export(State(state): State<AppState>, Query(q): Query<LogQuery>) -> Answer {
    let date = q.date()?;
    let entries = state.app.check_ins(date, &q.q)?;
    let name = format!("ra-vao-{}.csv", date.unwrap_or_else(|| state.app.today()));
    Ok(download(
        "text/csv; charset=utf-8",
        &name,
        checkin::export(&entries, state.app.config().site.utc_offset),
    ))
}

// ----- API -----

pub async fn api_log(
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Vec<CheckIn>>> {
    Ok(Json(state.app.check_ins(q.date()?, &q.q)?))
}

#[derive(Deserialize)]
pub struct ScanInput {
    code: String,
    direction: String,
}

pub async fn api_scan(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<ScanInput>,
) -> ApiResult<Response> {
    let direction = direction_of(&input.direction)?;
    let entry = state.app.check_in_person(&input.code, direction, &ctx.username()?).await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}
