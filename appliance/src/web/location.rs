//! Location [M8] on the web: the person's own page reports its position (the public API below), and
//! staff set a home geofence on the person's page and see the last position.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::{Geofence, Person};
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{Answer, ApiResult, AppState, Ctx, FormData, JsonBody},
    layout::csrf_field,
};
use crate::{
    app::location::{Position, Verdict},
    base::{
        i18n::t,
        validate::{self, Problem},
    },
};

/// A position from the person's own page (their link's token), or an app holding it.
pub async fn api_report(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JsonBody(p): JsonBody<Position>,
) -> ApiResult<Response> {
    let person = state.app.person_by_token(&token)?;
    let reported = state.app.report_position(&person, p).await?;
    Ok((StatusCode::OK, Json(json!({"verdict": reported.verdict, "alerted": reported.alert.is_some()})))
        .into_response())
}

/// The location part of a person's page: their geofence, the last position, the form to set a home.
pub fn person_section(state: &AppState, ctx: &Ctx, person: &Person) -> Result<Markup, ApiError> {
    let lang = ctx.lang;
    let fence = state.app.geofence_of(person);
    let last = state.app.last_position(&person.id)?;
    let home = person.home_geofence.as_ref();
    let value = |f: fn(&Geofence) -> String| home.map(f).unwrap_or_default();
    let csrf = ctx.csrf();
    Ok(html! {
        h2 #location { (t(lang, "geo.title")) }
        p {
            @match (&fence, home) {
                (Some(f), Some(_)) => { (t(lang, "geo.home")) ": " (format!("{:.5}, {:.5}", f.latitude, f.longitude)) " · " (f.radius_m) " m " (f.address) },
                (Some(f), None) => { (t(lang, "geo.site")) ": " (format!("{:.5}, {:.5}", f.latitude, f.longitude)) " · " (f.radius_m) " m" },
                (None, _) => span.muted { (t(lang, "geo.none")) },
            }
        }
        p #last-position {
            @match last {
                Some((at, p, inside)) => {
                    (t(lang, "geo.last")) ": " (state.fmt_time(at)) " · " (format!("{:.5}, {:.5} (±{:.0} m)", p.latitude, p.longitude, p.accuracy)) " · "
                    @match inside {
                        Some(true) => span.badge.ok { (t(lang, "geo.inside")) },
                        Some(false) => span.badge.severe { (t(lang, "geo.outside")) },
                        None => span.badge { (t(lang, "geo.unsure")) },
                    }
                },
                None => span.muted { (t(lang, "geo.no_position")) },
            }
        }
        @if ctx.can_write() {
            form.stack #geofence-form method="post" action=(format!("/people/{}/geofence", person.id)) {
                (csrf_field(&csrf))
                p.muted { (t(lang, "geo.help")) }
                label { (t(lang, "geo.address")) input name="address" value=(value(|g| g.address.clone())); }
                label { (t(lang, "geo.latitude")) input name="latitude" inputmode="decimal" value=(value(|g| g.latitude.to_string())); }
                label { (t(lang, "geo.longitude")) input name="longitude" inputmode="decimal" value=(value(|g| g.longitude.to_string())); }
                label { (t(lang, "geo.radius")) input name="radius_m" type="number" min="20" max="50000" value=(home.map_or(100, |g| g.radius_m)); }
                button.secondary type="button" #use-my-position hidden { (t(lang, "geo.use_phone")) }
                button type="submit" { (t(lang, "people.save")) }
            }
        }
    })
}

/// A home geofence from the form; empty coordinates remove it (the site's applies again).
fn fence_of(f: &FormData) -> Result<Option<Geofence>, ApiError> {
    let (lat, lon) = (f.get("latitude"), f.get("longitude"));
    if lat.trim().is_empty() && lon.trim().is_empty() {
        return Ok(None);
    }
    let number = |raw: &str, field: &str, vi: &str, en: &str| {
        raw.trim()
            .replace(',', ".")
            .parse::<f64>()
            .map_err(|_| ApiError::Invalid(vec![Problem::new(field, vi, en)]))
    };
    Ok(Some(Geofence {
        latitude: number(
            &lat,
            "latitude",
            "Vĩ độ phải là một số (ví dụ 16.0748).",
            "The latitude must be a number (16.0748).",
        )?,
        longitude: number(
            &lon,
            "longitude",
            "Kinh độ phải là một số (ví dụ 108.1497).",
            "The longitude must be a number (108.1497).",
        )?,
        radius_m: f.get("radius_m").trim().parse().map_err(|_| {
            ApiError::Invalid(vec![Problem::new(
                "radius_m",
                "Bán kính phải là số mét.",
                "The radius must be a number of metres.",
            )])
        })?,
        address: validate::clip(&f.get("address"), 200),
    }))
}

pub async fn set_geofence(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let fence = fence_of(&FormData::parse(&body))?;
    state.app.set_home_geofence(&id, fence, &staff).await?;
    Ok(Redirect::to(&format!("/people/{id}#location")).into_response())
}

pub async fn api_set_geofence(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(fence): JsonBody<Option<Geofence>>,
) -> ApiResult<Json<Person>> {
    Ok(Json(state.app.set_home_geofence(&id, fence, &ctx.username()?).await?))
}

pub async fn api_location(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let person = state.app.person(&id)?;
    let last = state.app.last_position(&id)?.map(|(at, p, inside)| {
        json!({"at": at, "position": p, "verdict": match inside { Some(true) => Verdict::Inside, Some(false) => Verdict::Outside, None => Verdict::Unsure }})
    });
    Ok(Json(json!({"geofence": state.app.geofence_of(&person), "home": person.home_geofence, "last": last})))
}
