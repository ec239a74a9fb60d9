//! Spot-check pages [M7]: the person's answer page (photo from the phone's camera and its position),
//! staff asking for a check (a person or a room), the review list with each photo, and the API.

use axum::{
    body::Bytes,
    extract::{Multipart, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::{SpotCheck, SpotCheckState, SpotReview};
use serde::Deserialize;

use super::{
    error::ApiError,
    kit::{html, posted_csrf, public_page, staff_page, Answer, ApiResult, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field, page, problems},
};
use crate::{
    app::{location::Position, AppError},
    base::{
        i18n::{span, t, Lang},
        validate::Problem,
    },
};

fn answer_form(
    state: &AppState,
    lang: Lang,
    token: &str,
    csrf: &str,
    check: &SpotCheck,
    list: &[Problem],
) -> Markup {
    page(
        lang,
        None,
        t(lang, "spot.title"),
        html! {
            h1 { (t(lang, "spot.title")) }
            p { (t(lang, "spot.before")) " " strong { (state.fmt_time(check.deadline)) } }
            (problems(lang, list))
            form.stack #spot-form method="post" action=(format!("/s/{token}?csrf={csrf}")) enctype="multipart/form-data" {
                label { (t(lang, "spot.photo")) input #spot-photo type="file" name="photo" accept="image/*" capture="user" required; }
                input type="hidden" name="latitude";
                input type="hidden" name="longitude";
                input type="hidden" name="accuracy";
                p.muted #spot-position { (t(lang, "spot.locating")) }
                button type="submit" { (t(lang, "spot.send")) }
            }
        },
    )
}

/// The page the SMS link opens.
pub async fn answer_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Answer {
    let (check, _) = state.app.spot_check_by_token(&token)?;
    if check.state != SpotCheckState::Sent || state.app.now() > check.deadline {
        return Ok(done_page(ctx.lang, StatusCode::GONE, t(ctx.lang, "spot.closed")));
    }
    Ok(state.public_form(&headers, |csrf| answer_form(&state, ctx.lang, &token, csrf, &check, &[])))
}

fn done_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    public_page(
        lang,
        status,
        t(lang, "spot.title"),
        html! { h1 { (t(lang, "spot.title")) } p.notice { (message) } },
    )
}

/// The photo and the position, as the page (or its script, which shrinks the photo first) sends them.
pub async fn answer(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    mut multipart: Multipart,
) -> Answer {
    let lang = ctx.lang;
    let (check, _) = state.app.spot_check_by_token(&token)?;
    let mut photo = Vec::new();
    let mut fields = std::collections::HashMap::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(|_| ApiError::TooLarge)?;
                if name == "photo" {
                    photo = bytes.to_vec();
                } else {
                    fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(ApiError::TooLarge),
            Err(_) => return Err(ApiError::invalid("photo", "Tải ảnh lên bị lỗi.", "The upload failed.")),
        }
    }
    let number = |k: &str| fields.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let refuse = |list: Vec<Problem>| {
        let csrf = posted_csrf(&headers).to_owned();
        Ok(html(StatusCode::UNPROCESSABLE_ENTITY, answer_form(&state, lang, &token, &csrf, &check, &list)))
    };
    let (Some(latitude), Some(longitude)) = (number("latitude"), number("longitude")) else {
        return refuse(vec![Problem::new(
            "position",
            "Cần vị trí của điện thoại: hãy cho phép trang này dùng vị trí rồi gửi lại.",
            "The phone's position is needed: allow this page to use it and send again.",
        )]);
    };
    // A phone that gives no accuracy: kept, not judged (as a fix coarser than any geofence).
    let position = Position { latitude, longitude, accuracy: number("accuracy").unwrap_or(1_000.0) };
    match state.app.answer_spot_check(&token, &photo, position).await {
        Ok(_) => Ok(done_page(lang, StatusCode::OK, t(lang, "spot.thanks"))),
        Err(AppError::Invalid(list)) => refuse(list),
        Err(e) => Err(e.into()),
    }
}

fn state_badge(lang: Lang, c: &SpotCheck) -> Markup {
    let class = match c.state {
        SpotCheckState::Missed => "severe",
        SpotCheckState::Answered if c.review == SpotReview::Accepted => "ok",
        SpotCheckState::Answered if c.review == SpotReview::Rejected => "severe",
        _ => "warning",
    };
    let key = match c.state {
        SpotCheckState::Answered => format!("spot.review.{}", c.review.as_str()),
        s => format!("spot.state.{}", s.as_str()),
    };
    badge(lang, class, &key)
}

/// The staff list: sent and waiting, answered (to review, each with its photo), missed.
pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let get = |s| state.app.spot_checks(s);
    let (sent, answered, missed) =
        (get(SpotCheckState::Sent)?, get(SpotCheckState::Answered)?, get(SpotCheckState::Missed)?);
    let name = |id: &str| state.app.person_name(id);
    let csrf = ctx.csrf();
    let rows = |checks: &[SpotCheck], review: bool| {
        html! {
            div.scroll { table {
                thead { tr { th { (t(lang, "field.full_name")) } th { (t(lang, "spot.deadline")) } th { (t(lang, "field.status")) } th {} } }
                tbody { @for c in checks.iter().rev().take(200) {
                    tr data-check=(c.id) {
                        td { a href=(format!("/people/{}", c.person_id)) { (name(&c.person_id)) } }
                        td { (state.fmt_time(c.deadline)) }
                        td { (state_badge(lang, c))
                            @if review {
                                " " @match c.position_inside {
                                    Some(true) => span.badge.ok.position { (t(lang, "geo.inside")) },
                                    Some(false) => span.badge.severe.position { (t(lang, "geo.outside")) },
                                    None => span.badge.position { (t(lang, "spot.no_position")) },
                                }
                                @if let Some(at) = c.answered_at {
                                    br; small.muted.answered { (t(lang, "spot.answered_at")) " " (state.fmt_time(at))
                                        @if let Some(sent) = c.sent_at { " (" (t(lang, "spot.after")) " " (span(lang, (at - sent).num_seconds()).trim_start_matches('+')) ")" } }
                                }
                            } @else if c.position_inside == Some(false) { " " span.badge.severe { (t(lang, "geo.outside")) } } }
                        td { @if review {
                            div.spot-compare {
                                figure { img.spot-photo src=(format!("/spotchecks/{}/photo", c.id)) alt=(t(lang, "spot.photo")) loading="lazy"; }
                                @match state.app.reference_check(c).ok().flatten() {
                                    Some(reference) => figure.reference {
                                        img.spot-photo src=(format!("/spotchecks/{reference}/photo")) alt=(t(lang, "spot.reference")) loading="lazy";
                                        figcaption.muted { (t(lang, "spot.reference")) }
                                    },
                                    None => p.muted { (t(lang, "spot.no_reference")) },
                                }
                            }
                            @if c.review == SpotReview::Pending && ctx.can_write() {
                                @for (value, key) in [("accept", "spot.accept"), ("reject", "spot.reject")] {
                                    form.inline method="post" action=(format!("/spotchecks/{}/review", c.id)) {
                                        (csrf_field(&csrf)) input type="hidden" name="verdict" value=(value);
                                        button.secondary type="submit" { (t(lang, key)) }
                                    }
                                }
                            }
                        } }
                    }
                } }
            } }
        }
    };
    let body = html! {
        h1 { (t(lang, "spot.list")) }
        @if ctx.can_write() {
            form.inline method="post" action="/spotchecks/room" {
                (csrf_field(&csrf))
                input name="room" placeholder=(t(lang, "field.room")) required;
                button type="submit" { (t(lang, "spot.request_room")) }
            }
        }
        h2 { (t(lang, "spot.state.answered")) " (" (answered.len()) ")" } (rows(&answered, true))
        h2 { (t(lang, "spot.state.sent")) " (" (sent.len()) ")" } (rows(&sent, false))
        h2 { (t(lang, "spot.state.missed")) " (" (missed.len()) ")" } (rows(&missed, false))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "spot.list"), body))
}

pub async fn photo(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    match state.app.spot_photo(&id)? {
        Some((bytes, content_type)) => Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response()),
        None => Err(ApiError::NotFound),
    }
}

pub async fn request_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    _body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let person = state.app.person(&id)?;
    state.app.request_spot_checks(&[person], &staff).await?;
    Ok(Redirect::to("/spotchecks").into_response())
}

pub async fn request_room(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let staff = ctx.username()?;
    let people = state.app.people_in_room(&FormData::parse(&body).get("room"))?;
    state.app.request_spot_checks(&people, &staff).await?;
    Ok(Redirect::to("/spotchecks").into_response())
}

pub async fn review(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Answer {
    let staff = ctx.username()?;
    let accepted = verdict(&FormData::parse(&body).get("verdict"))?;
    state.app.review_spot_check(&id, accepted, &staff).await?;
    Ok(Redirect::to("/spotchecks").into_response())
}

fn verdict(raw: &str) -> Result<bool, ApiError> {
    match raw {
        "accept" => Ok(true),
        "reject" => Ok(false),
        _ => Err(ApiError::Invalid(vec![Problem::new(
            "verdict",
            "Chọn chấp nhận hoặc không.",
            "Choose accept or reject.",
        )])),
    }
}

// ----- API -----

#[derive(Deserialize)]
pub struct RequestInput {
    #[serde(default)]
    person_id: Option<String>,
    #[serde(default)]
    room: Option<String>,
}

pub async fn api_request(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<RequestInput>,
) -> ApiResult<Response> {
    let people = match (input.person_id, input.room) {
        (Some(id), _) => vec![state.app.person(&id)?],
        (None, Some(room)) => state.app.people_in_room(&room)?,
        (None, None) => {
            return Err(ApiError::Invalid(vec![Problem::new(
                "person_id",
                "Cần person_id hoặc room.",
                "person_id or room is needed.",
            )]))
        }
    };
    let checks = state.app.request_spot_checks(&people, &ctx.username()?).await?;
    Ok((StatusCode::CREATED, Json(checks)).into_response())
}

pub async fn api_list(State(state): State<AppState>) -> ApiResult<Json<Vec<SpotCheck>>> {
    let mut all = Vec::new();
    for s in
        [SpotCheckState::Scheduled, SpotCheckState::Sent, SpotCheckState::Answered, SpotCheckState::Missed]
    {
        all.extend(state.app.spot_checks(s)?);
    }
    Ok(Json(all))
}

#[derive(Deserialize)]
pub struct ReviewInput {
    verdict: String,
}

pub async fn api_review(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ReviewInput>,
) -> ApiResult<Json<SpotCheck>> {
    Ok(Json(state.app.review_spot_check(&id, verdict(&input.verdict)?, &ctx.username()?).await?))
}
