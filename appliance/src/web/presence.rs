//! A person's presence [M3] on the web: their day as a timeline (present with the place, unseen,
//! away), drawn as SVG by the box (no script, no chart library), and its JSON.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped};
use outpost_sync::record::PresenceDay;
use serde::Deserialize;
use serde_json::{json, Value};

use super::kit::{staff_page, Answer, ApiResult, AppState, Ctx};
use crate::base::i18n::{t, td, Lang};

#[derive(Deserialize, Default)]
pub struct DayQuery {
    date: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> Answer {
    let lang = ctx.lang;
    let person = state.app.person(&id)?;
    let date = state.date_param(q.date.as_deref())?;
    let day = state.app.presence_day(&id, date)?;
    let band = state.app.band_of(&id)?;
    let (prev, next) = (date.pred_opt(), date.succ_opt());
    let body = html! {
        h1 { (t(lang, "presence.timeline")) ": " a href=(format!("/people/{id}")) { (person.full_name) } }
        p.inline {
            @if let Some(d) = prev { a.button.secondary href=(format!("/people/{id}/presence?date={d}")) { "← " (d.format("%d/%m")) } }
            strong { (date.format("%d/%m/%Y")) }
            @if let Some(d) = next { a.button.secondary href=(format!("/people/{id}/presence?date={d}")) { (d.format("%d/%m")) " →" } }
            @if let Some(b) = &band { " · " (t(lang, "bands.band")) " " a href=(format!("/bands/{}", b.id)) { (b.id) } }
        }
        @match &day {
            None => p.muted #no-presence { (t(lang, "presence.none")) },
            Some(day) => (timeline_svg(&state, lang, day, date)),
        }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "presence.timeline"), body))
}

/// The day as a horizontal bar: present (green, with its place), unseen (amber), away (red), not
/// covered (grey: its scanner was down).
fn timeline_svg(state: &AppState, lang: Lang, day: &PresenceDay, date: NaiveDate) -> Markup {
    const W: f64 = 960.0;
    const LEFT: f64 = 20.0;
    let start = state.app.schedule().utc(date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = start + Duration::days(1);
    let now = state.app.now().min(end);
    let x = |t: DateTime<Utc>| LEFT + ((t - start).num_seconds().clamp(0, 86_400) as f64 / 86_400.0) * W;
    let mut svg = String::new();
    svg.push_str(&format!(
        "<svg class=\"timeline\" id=\"timeline\" viewBox=\"0 0 {} 90\" role=\"img\" aria-label=\"{}\">",
        W + 2.0 * LEFT,
        t(lang, "presence.timeline")
    ));
    svg.push_str(&format!("<rect x=\"{LEFT}\" y=\"20\" width=\"{W}\" height=\"36\" fill=\"#eee\"/>"));
    for (from, i) in &day.intervals {
        let Some(from) = outpost_sync::record::key_time(from) else { continue };
        let to = i.to.unwrap_or(now).max(from);
        let (x0, x1) = (x(from), x(to));
        let color = match i.state.as_str() {
            "present" => "#2e7d32",
            "unseen" => "#f9a825",
            "not_covered" => "#757575",
            _ => "#c62828",
        };
        let title = format!(
            "{}–{} {} {}",
            state.app.schedule().local(from).format("%H:%M"),
            state.app.schedule().local(to).format("%H:%M"),
            td(lang, &format!("presence.{}", i.state)),
            i.place
        );
        svg.push_str(&format!(
            "<rect class=\"seg\" data-state=\"{}\" x=\"{x0:.1}\" y=\"20\" width=\"{:.1}\" height=\"36\" fill=\"{color}\"><title>{}</title></rect>",
            maud::html!((i.state)).into_string(),
            (x1 - x0).max(0.5),
            maud::html!((title)).into_string()
        ));
        if x1 - x0 > 60.0 && !i.place.is_empty() {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"42\" fill=\"#fff\" font-size=\"12\">{}</text>",
                x0 + 4.0,
                maud::html!((i.place)).into_string()
            ));
        }
    }
    for h in (0..=24).step_by(3) {
        let xh = LEFT + f64::from(h) / 24.0 * W;
        svg.push_str(&format!(
            "<line x1=\"{xh:.1}\" y1=\"16\" x2=\"{xh:.1}\" y2=\"60\" stroke=\"#999\"/><text x=\"{xh:.1}\" y=\"76\" font-size=\"12\" text-anchor=\"middle\">{h:02}:00</text>"
        ));
    }
    svg.push_str("</svg>");
    html! {
        (PreEscaped(svg))
        ul.legend {
            li { span.swatch.present {} (t(lang, "presence.present")) }
            li { span.swatch.unseen {} (t(lang, "presence.unseen")) }
            li { span.swatch.away {} (t(lang, "presence.away")) }
            li { span.swatch.not_covered {} (t(lang, "presence.not_covered")) }
        }
    }
}

// ----- API -----

pub async fn api(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> ApiResult<Json<Value>> {
    state.app.person(&id)?;
    let date = state.date_param(q.date.as_deref())?;
    let day = state.app.presence_day(&id, date)?;
    Ok(Json(
        json!({"person_id": id, "date": date, "intervals": day.map(|d| d.intervals).unwrap_or_default()}),
    ))
}
