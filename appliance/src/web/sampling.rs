//! Testing pages and API [M10]: the sampling desk (scan a person's code or type their ID number),
//! results one by one or from the laboratory's list, and the samplings on a person's page.

use axum::{
    body::Bytes,
    extract::{Multipart, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use chrono::NaiveDate;
use maud::{html, Markup};
use outpost_sync::record::{Person, Sample, TestResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{staff_page, upload, with_notice, Answer, ApiResult, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field},
};
use crate::{
    app::sampling::ParsedResults,
    base::{
        i18n::{t, td, Lang},
        validate::{self, Problem},
    },
};

fn result_badge(lang: Lang, result: TestResult) -> Markup {
    let class = match result {
        TestResult::Positive => "severe",
        TestResult::Negative => "ok",
        TestResult::Pending => "",
    };
    badge(lang, class, &format!("test.{}", result.as_str()))
}

/// A round typed in a form: empty is "the next one".
fn round_of(raw: &str) -> Result<Option<u32>, ApiError> {
    match raw.trim() {
        "" => Ok(None),
        r => r.parse().map(Some).map_err(|_| {
            ApiError::Invalid(vec![Problem::new(
                "round",
                "Lần lấy mẫu phải là một số.",
                "The round must be a number.",
            )])
        }),
    }
}

/// The samplings of `person` with the forms to add one and enter results: a section of their page.
pub fn person_section(state: &AppState, ctx: &Ctx, person: &Person) -> Result<Markup, ApiError> {
    let lang = ctx.lang;
    let samples = state.app.samples_of(&person.id)?;
    let csrf = ctx.csrf();
    Ok(html! {
        h2 #testing { (t(lang, "test.title")) }
        @if samples.is_empty() { p.muted { (t(lang, "test.none")) } }
        @else {
            div.scroll { table #samples {
                thead { tr { th { (t(lang, "test.round")) } th { (t(lang, "test.sampled_on")) } th { (t(lang, "test.result")) } th {} } }
                tbody { @for s in &samples {
                    tr data-round=(s.round) {
                        td { (s.round) } td { (s.sampled_on.format("%d/%m/%Y")) }
                        td { (result_badge(lang, s.result)) @if let Some(at) = s.result_at { " " small.muted { (state.fmt_time(at)) } } }
                        td { @if s.result == TestResult::Pending && ctx.can_write() {
                            @for r in [TestResult::Negative, TestResult::Positive] {
                                form.inline method="post" action=(format!("/people/{}/samples/{}/result", person.id, s.round)) {
                                    (csrf_field(&csrf))
                                    input type="hidden" name="result" value=(r.as_str());
                                    button.secondary type="submit" { (td(lang, &format!("test.{}", r.as_str()))) }
                                }
                            }
                        } }
                    }
                } }
            } }
        }
        @if ctx.can_write() && person.status.is_watched() {
            form.inline method="post" action=(format!("/people/{}/samples", person.id)) {
                (csrf_field(&csrf))
                label { (t(lang, "test.round")) " " input name="round" type="number" min="1" max="20" placeholder=(t(lang, "test.next_round")); }
                button type="submit" { (t(lang, "test.record")) }
            }
        }
    })
}

pub async fn record_for_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let round = round_of(&FormData::parse(&body).get("round"))?;
    state.app.record_sample(&id, round, &staff).await?;
    Ok(Redirect::to(&format!("/people/{id}#testing")).into_response())
}

pub async fn result_for_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, round)): Path<(String, u32)>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let f = FormData::parse(&body);
    let result = validate::required("result", &f.get("result"), TestResult::parse)?;
    // A positive result converts the person to F0, raises a severe alert and texts the on-duty
    // phone: one tap is not enough, it is confirmed on a page of its own first.
    if result == TestResult::Positive && f.get("confirm") != "1" {
        let person = state.app.person(&id)?;
        return Ok(confirm_positive(&ctx, &person, round));
    }
    state.app.record_result(&id, round, result, &staff).await?;
    Ok(Redirect::to(&format!("/people/{id}#testing")).into_response())
}

/// The page that asks staff to confirm a positive result, saying what it will do.
fn confirm_positive(ctx: &Ctx, person: &Person, round: u32) -> Response {
    let lang = ctx.lang;
    let body = html! {
        h1 { (t(lang, "test.confirm_positive")) }
        p.problems { strong { (person.full_name) } " · " (t(lang, "test.round")) " " (round) }
        p { (t(lang, "test.positive_does")) }
        form method="post" action=(format!("/people/{}/samples/{round}/result", person.id)) {
            (csrf_field(&ctx.csrf()))
            input type="hidden" name="result" value="positive";
            input type="hidden" name="confirm" value="1";
            button.danger type="submit" { (t(lang, "test.confirm_positive_button")) }
            " " a.button.secondary href=(format!("/people/{}#testing", person.id)) { (t(lang, "common.cancel")) }
        }
    };
    staff_page(ctx, StatusCode::OK, t(lang, "test.confirm_positive"), body)
}

#[derive(Deserialize, Default)]
pub struct DeskQuery {
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    date: Option<NaiveDate>,
}

/// The sampling desk: scan or type, today's samplings, the laboratory's list.
pub async fn desk(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DeskQuery>) -> Answer {
    desk_page(&state, &ctx, StatusCode::OK, q.notice.as_deref(), None, q.date)
}

fn desk_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<&str>,
    import_errors: Option<&ParsedResults>,
    date: Option<NaiveDate>,
) -> Answer {
    let lang = ctx.lang;
    let date = date.unwrap_or_else(|| state.app.today());
    let mut samples = state.app.samples_on(date)?;
    samples.sort_by_key(|s| std::cmp::Reverse(s.sampled_at));
    let names: Vec<String> = samples
        .iter()
        .map(|s| state.app.person(&s.person_id).map(|p| p.full_name.clone()).unwrap_or_default())
        .collect();
    let csrf = ctx.csrf();
    let title = t(lang, "test.title");
    let body = html! {
        h1 { (title) }
        @if let Some(n) = notice { p.notice { (n) } }
        @if ctx.can_write() {
            h2 { (t(lang, "test.desk")) }
            form.stack #sample-desk method="post" action="/testing/sample" {
                (csrf_field(&csrf))
                label { (t(lang, "test.code")) input #code name="code" autocomplete="off" required autofocus; }
                div #scanner hidden { video #scanner-video playsinline muted {} button.secondary type="button" #scan { (t(lang, "test.scan")) } }
                label { (t(lang, "test.round")) input name="round" type="number" min="1" max="20" placeholder=(t(lang, "test.next_round")); }
                button type="submit" { (t(lang, "test.record")) }
            }
            h2 { (t(lang, "test.import")) }
            p.muted { (t(lang, "test.import_help")) }
            @if let Some(parsed) = import_errors {
                div.problems role="alert" { (t(lang, "test.import_errors")) }
                div.scroll { table #import-errors {
                    thead { tr { th { (t(lang, "import.row")) } th { (t(lang, "import.problem")) } } }
                    tbody { @for e in &parsed.errors {
                        tr { td { (e.line) } td { ul.plain { @for p in &e.problems { li { (p.text(lang)) } } } } }
                    } }
                } }
            }
            form.inline method="post" action=(format!("/testing/import?csrf={csrf}")) enctype="multipart/form-data" {
                input type="file" name="file" accept=".csv,text/csv" required;
                button type="submit" { (t(lang, "import.check")) }
            }
        }
        h2 { (t(lang, "test.on_day")) " " (date.format("%d/%m/%Y")) " (" (samples.len()) ")" }
        div.scroll { table #day-samples {
            thead { tr { th { (t(lang, "field.full_name")) } th { (t(lang, "test.round")) } th { (t(lang, "test.result")) } th { (t(lang, "test.by")) } } }
            tbody { @for (s, name) in samples.iter().zip(&names) {
                tr { td { a href=(format!("/people/{}#testing", s.person_id)) { (name) } } td { (s.round) }
                    td { (result_badge(lang, s.result)) } td { (s.sampled_by) } }
            } }
        } }
    };
    Ok(staff_page(ctx, status, title, body))
}

pub async fn desk_sample(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let f = FormData::parse(&body);
    let round = round_of(&f.get("round"))?;
    let person = state.app.person_by_code(&f.get("code"))?;
    let sample = state.app.record_sample(&person.id, round, &staff).await?;
    let notice = format!(
        "{} {} · {} {}",
        t(lang, "test.recorded"),
        person.full_name,
        t(lang, "test.round"),
        sample.round
    );
    Ok(with_notice("/testing", &notice))
}

pub async fn desk_import(State(state): State<AppState>, ctx: Ctx, multipart: Multipart) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let bytes = upload(multipart).await?;
    let parsed = parse_off_runtime(&state, bytes.to_vec()).await?;
    if !parsed.errors.is_empty() {
        return desk_page(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, None, Some(&parsed), None);
    }
    let n = state.app.import_results(&parsed.rows, &staff).await?;
    let notice =
        format!("{} {n} · {} {}", t(lang, "test.imported"), t(lang, "test.unchanged"), parsed.unchanged);
    Ok(with_notice("/testing", &notice))
}

/// Checks a laboratory's list on the blocking pool (a long list reads many records).
async fn parse_off_runtime(state: &AppState, bytes: Vec<u8>) -> Result<ParsedResults, ApiError> {
    let app = state.app.clone();
    tokio::task::spawn_blocking(move || app.parse_results(&bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Invalid(vec![e.0]))
}

// ----- API -----

#[derive(Deserialize, Default)]
pub struct SampleInput {
    #[serde(default)]
    round: Option<u32>,
}

#[derive(Deserialize)]
pub struct ResultInput {
    result: String,
}

pub async fn api_record(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<SampleInput>,
) -> ApiResult<Json<Sample>> {
    Ok(Json(state.app.record_sample(&id, input.round, &ctx.username()?).await?))
}

pub async fn api_result(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, round)): Path<(String, u32)>,
    JsonBody(input): JsonBody<ResultInput>,
) -> ApiResult<Json<Sample>> {
    let result = validate::required("result", &input.result, TestResult::parse)?;
    Ok(Json(state.app.record_result(&id, round, result, &ctx.username()?).await?))
}

pub async fn api_person_samples(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Sample>>> {
    state.app.person(&id)?;
    Ok(Json(state.app.samples_of(&id)?))
}

pub async fn api_day(
    State(state): State<AppState>,
    Query(q): Query<DeskQuery>,
) -> ApiResult<Json<Vec<Sample>>> {
    Ok(Json(state.app.samples_on(q.date.unwrap_or_else(|| state.app.today()))?))
}

/// A laboratory's list as the request body (CSV): with any bad row nothing is imported (422, every
/// bad row listed).
pub async fn api_import(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> ApiResult<Response> {
    let staff = ctx.username()?;
    let parsed = parse_off_runtime(&state, body.to_vec()).await?;
    let errors: Vec<Value> =
        parsed.errors.iter().map(|e| json!({"line": e.line, "problems": e.problems})).collect();
    if !errors.is_empty() {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "invalid_rows", "imported": 0, "errors": errors})),
        )
            .into_response());
    }
    let n = state.app.import_results(&parsed.rows, &staff).await?;
    Ok(Json(json!({"imported": n, "unchanged": parsed.unchanged})).into_response())
}
