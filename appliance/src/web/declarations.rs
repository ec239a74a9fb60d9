//! Declarations [M4] on the web: a quarantined person's own page (their link's token, public), staff
//! declaring on a person's behalf, and their API.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::{Alert, Channel, Declaration, Person, Symptom};
use serde::Serialize;
use serde_json::json;

use super::{
    error::ApiError,
    kit::{html, posted_csrf, public_page, Answer, AppState, Ctx, FormData, JsonBody},
    layout::{badge, csrf_field, page, problems},
};
use crate::{
    app::{declarations::DeclarationInput, AppError},
    base::{
        i18n::{decimal, t, td, Lang},
        validate::Problem,
    },
};

fn symptom_checkboxes(lang: Lang, checked: &[String]) -> Markup {
    html! {
        fieldset.symptoms {
            legend { (t(lang, "decl.symptoms")) }
            @for s in Symptom::ALL {
                label.check {
                    input type="checkbox" name="symptoms" value=(s.as_str()) checked[checked.iter().any(|c| c == s.as_str())];
                    (td(lang, &format!("sym.{}", s.as_str())))
                }
            }
        }
    }
}

/// The fields of a declaration, filled with what was posted when it comes back with problems.
pub fn declaration_fields(lang: Lang, f: Option<&FormData>) -> Markup {
    let v = |k: &str| f.map(|f| f.get(k)).unwrap_or_default();
    let checked = f.map(|f| f.all("symptoms")).unwrap_or_default();
    html! {
        label { (t(lang, "decl.temperature")) input name="temperature" inputmode="decimal" required placeholder="36.8" value=(v("temperature")); }
        label { (t(lang, "decl.spo2")) input name="spo2" inputmode="numeric" placeholder="98" value=(v("spo2")); }
        (symptom_checkboxes(lang, &checked))
        label { (t(lang, "decl.note")) textarea name="note" rows="2" maxlength="1000" { (v("note")) } }
    }
}

fn declare_form(
    state: &AppState,
    lang: Lang,
    person: &Person,
    csrf: &str,
    list: &[Problem],
    f: Option<&FormData>,
) -> Markup {
    let slot = state.app.schedule().slot_for(state.app.now());
    page(
        lang,
        None,
        t(lang, "decl.title"),
        html! {
            h1 { (t(lang, "decl.title")) }
            p { strong { (person.full_name) } " · " (t(lang, "decl.for_slot")) " " (slot.format("%H:%M %d/%m/%Y")) }
            (problems(lang, list))
            // The page reports the phone's position every 5 minutes while it is open (app.js).
            div #position data-url=(format!("/api/v1/position/{}", person.declare_token)) hidden {}
            // Sent by the page itself (app.js): when the box cannot be reached (a phone at home,
            // the box's link down), the declaration is kept on the phone and sent again.
            form.stack method="post" action=(format!("/d/{}", person.declare_token)) data-retry {
                (csrf_field(csrf))
                (declaration_fields(lang, f))
                button type="submit" { (t(lang, "decl.submit")) }
            }
            p.kept #retry-status hidden { (t(lang, "decl.kept")) }
        },
    )
}

pub async fn declare_page(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Answer {
    let person = state.app.person_by_token(&token)?;
    Ok(state.public_form(&headers, |csrf| declare_form(&state, ctx.lang, &person, csrf, &[], None)))
}

pub async fn declare(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Answer {
    let person = state.app.person_by_token(&token)?;
    let f = FormData::parse(&body);
    // Staff who use a person's link are named on what they entered.
    let by = ctx.staff.as_ref().map(|s| s.username.as_str());
    match state.app.declare(&person, &f.declaration(), Channel::Personal, by).await {
        Ok((_, alert)) => {
            let lang = ctx.lang;
            let body = html! {
                h1 { (t(lang, "decl.title")) }
                p.notice { (t(lang, "decl.thanks")) }
                @if alert.is_some() { p.problems { (t(lang, "decl.alerted")) } }
            };
            Ok(public_page(lang, StatusCode::OK, t(lang, "decl.title"), body))
        }
        Err(AppError::Invalid(list)) => {
            let form = declare_form(&state, ctx.lang, &person, posted_csrf(&headers), &list, Some(&f));
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, form))
        }
        Err(e) => Err(e.into()),
    }
}

/// A person's declarations as a table, newest first.
pub fn declaration_rows(state: &AppState, lang: Lang, list: &[Declaration]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { (t(lang, "decl.for_slot")) } th { (t(lang, "decl.at")) } th { "°C" } th { "SpO2" }
                th { (t(lang, "decl.symptoms")) } th { (t(lang, "field.note")) }
            } }
            tbody { @for d in list {
                tr {
                    td { (d.slot.format("%H:%M %d/%m")) " " @if d.on_time { (badge(lang, "resolved", "decl.on_time")) } @else { (badge(lang, "warning", "decl.late")) } }
                    td { (state.fmt_time(d.submitted_at)) }
                    td { (decimal(lang, d.temperature)) }
                    td { (d.spo2.map(|s| s.to_string()).unwrap_or_default()) }
                    td { (d.symptoms.iter().map(|s| td(lang, &format!("sym.{}", s.as_str()))).collect::<Vec<_>>().join(", ")) }
                    td { (d.note) }
                }
            } }
        } }
    }
}

pub async fn staff_declare(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let person = state.app.person(&id)?;
    let f = FormData::parse(&body);
    state.app.declare(&person, &f.declaration(), Channel::Staff, Some(&staff)).await?;
    Ok(Redirect::to(&format!("/people/{id}")).into_response())
}

// ----- API -----

pub async fn api_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Declaration>>, ApiError> {
    state.app.person(&id)?;
    Ok(Json(state.app.declarations_of(&id)?))
}

#[derive(Serialize)]
pub struct Declared {
    declaration: Declaration,
    alert: Option<Alert>,
}

pub async fn api_staff_declare(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<DeclarationInput>,
) -> Answer {
    let staff = ctx.username()?;
    let person = state.app.person(&id)?;
    let (declaration, alert) = state.app.declare(&person, &input, Channel::Staff, Some(&staff)).await?;
    Ok((StatusCode::CREATED, Json(Declared { declaration, alert })).into_response())
}

/// A quarantined person's own declaration, authorised by their personal token.
pub async fn api_declare(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
    JsonBody(input): JsonBody<DeclarationInput>,
) -> Answer {
    let person = state.app.person_by_token(&token)?;
    let by = ctx.staff.as_ref().map(|s| s.username.as_str());
    let (declaration, alert) = state.app.declare(&person, &input, Channel::Personal, by).await?;
    let answer = json!({"id": declaration.id, "slot": declaration.slot, "on_time": declaration.on_time, "alerted": alert.is_some()});
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
