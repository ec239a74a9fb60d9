//! Messages staff send [M6] on the web: the composer (to one person, a selection, or everyone in a
//! status; a template or their own text), and its API.

use axum::{body::Bytes, extract::State, http::StatusCode, response::IntoResponse, Json};
use maud::html;
use outpost_sync::record::{Person, PersonStatus};
use serde::Deserialize;
use serde_json::json;

use super::{
    error::ApiError,
    kit::{staff_page, url_pairs, with_notice, Answer, AppState, Ctx, FormData, JsonBody},
    layout::csrf_field,
};
use crate::{
    app::templates,
    base::{
        i18n::{t, td, Lang},
        validate::Problem,
    },
};

/// The people a compose form names: `p` ids, or everyone in `status`.
fn recipients(state: &AppState, pairs: &[(String, String)]) -> Result<Vec<Person>, ApiError> {
    let ids: Vec<String> = pairs.iter().filter(|(k, _)| k == "p").map(|(_, v)| v.clone()).collect();
    let status = pairs.iter().find(|(k, v)| k == "status" && !v.is_empty()).map_or("", |(_, s)| s.as_str());
    Ok(state.app.recipients(&ids, status)?)
}

pub async fn compose(State(state): State<AppState>, ctx: Ctx, uri: axum::http::Uri) -> Answer {
    let lang = ctx.lang;
    let pairs = url_pairs(uri.query().unwrap_or(""));
    let people = recipients(&state, &pairs)?;
    let csrf = ctx.csrf();
    let body = html! {
        h1 { (t(lang, "sms.new")) }
        form.stack method="post" action="/sms/send" {
            (csrf_field(&csrf))
            fieldset {
                legend { (t(lang, "sms.recipients")) }
                @for p in &people {
                    label.check { input type="checkbox" name="p" value=(p.id) checked; (p.full_name) " · " (p.phone) }
                }
                label { (t(lang, "sms.everyone_in")) select name="status" {
                    option value="" { "—" }
                    @for s in PersonStatus::ALL { option value=(s.as_str()) { (td(lang, &format!("status.{}", s.as_str()))) } }
                } }
            }
            fieldset {
                legend { (t(lang, "sms.template")) }
                label.check { input type="radio" name="template" value="" checked; (t(lang, "sms.none_template")) }
                @for tpl in templates::TEMPLATES {
                    label.check { input type="radio" name="template" value=(tpl.key); (tpl.label(lang)) span.muted { " — " (tpl.text(lang)) } }
                }
                label { (t(lang, "sms.language")) select name="lang" {
                    option value="vi" selected[lang == Lang::Vi] { "Tiếng Việt" }
                    option value="en" selected[lang == Lang::En] { "English" }
                } }
            }
            label { (t(lang, "sms.custom_text")) textarea name="text" rows="3" maxlength="1000" {} }
            button type="submit" { (t(lang, "sms.send")) }
        }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "sms.new"), body))
}

pub async fn send(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let f = FormData::parse(&body);
    let people = recipients(&state, &f.0)?;
    let template = f.get("template");
    let n = state
        .app
        .send_custom(&people, Some(template.as_str()), &f.get("text"), Lang::parse(&f.get("lang")), &staff)
        .await?;
    Ok(with_notice("/outbox", &format!("{} {n}", t(lang, "sms.queued"))))
}

#[derive(Deserialize)]
pub struct SendInput {
    #[serde(default)]
    people: Vec<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    lang: String,
}

pub async fn api_send(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<SendInput>,
) -> Answer {
    let staff = ctx.username()?;
    let mut pairs: Vec<(String, String)> = input.people.into_iter().map(|p| ("p".to_owned(), p)).collect();
    pairs.push(("status".into(), input.status));
    let people = recipients(&state, &pairs)?;
    if people.is_empty() {
        return Err(Problem::new("people", "Chưa chọn người nhận.", "No recipient was chosen.").into());
    }
    let n = state
        .app
        .send_custom(&people, Some(input.template.as_str()), &input.text, Lang::parse(&input.lang), &staff)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"queued": n}))).into_response())
}
