//! The MQTT broker [M15] on the web (administrators): its ports and counters, the devices that may
//! connect and adding one, and the box's certificate to install on them.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Redirect},
};
use maud::html;

use super::{
    error::ApiError,
    kit::{staff_page, Answer, AppState, Ctx, FormData},
    layout::{csrf_field, problems},
};
use crate::{
    app::{mqtt::DeviceKind, AppError},
    base::{i18n::t, validate::Problem},
};

fn devices_page(state: &AppState, ctx: &Ctx, list: &[Problem]) -> Answer {
    let lang = ctx.lang;
    let devices = state.app.devices()?;
    let mqtt = state.services.mqtt();
    let counters = mqtt.map(|m| m.counters.lock().map(|c| c.clone()).unwrap_or_default());
    let status = if list.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = html! {
        h1 { "MQTT" }
        @match (mqtt, &counters) {
            (Some(m), Some(c)) => {
                @let connections = m.connections.counts();
                dl #mqtt-status {
                    dt { (t(lang, "mqtt.ports")) }
                    dd {
                        @if let Some(a) = m.listen { (a) " (MQTT 3.1.1, 5)" }
                        @if let Some(a) = m.tls_listen { " · " (a) " (TLS, MQTT 3.1.1, 5)" }
                    }
                    dt { (t(lang, "mqtt.connections")) }
                    dd { (connections.open) }
                    dt { (t(lang, "mqtt.denied")) }
                    dd { (connections.denied) }
                    dt { (t(lang, "mqtt.too_large")) }
                    dd #mqtt-too-large { (connections.too_large) }
                    dt { (t(lang, "mqtt.sightings")) }
                    dd { (c.sightings) }
                    dt { (t(lang, "mqtt.refused")) }
                    dd { (serde_json::to_string(&c.refused).unwrap_or_default()) }
                }
            },
            _ => p.muted { (t(lang, "mqtt.off")) },
        }
        @if let Some(cert) = state.services.certificate() {
            h2 { (t(lang, "mqtt.certificate")) }
            p { (t(lang, "mqtt.certificate_help")) }
            p { a href="/mqtt/box.crt" download="outpost-box.crt" { "outpost-box.crt" } }
            p { "SHA-256: " code #mqtt-fingerprint { (cert.fingerprint) } }
            p.muted { (cert.names.join(", ")) }
        }
        h2 { (t(lang, "mqtt.devices")) }
        (problems(lang, list))
        p.muted { (t(lang, "mqtt.kinds_help")) }
        ul.plain #mqtt-devices {
            @for d in &devices {
                li {
                    (d.name) " · "
                    @match &d.kind {
                        DeviceKind::Gateway => (t(lang, "mqtt.kind_gateway")),
                        DeviceKind::Monitor => (t(lang, "mqtt.kind_monitor")),
                        DeviceKind::Other => (t(lang, "mqtt.kind_other")),
                        DeviceKind::App(person) => {
                            (t(lang, "mqtt.kind_app")) " "
                            a href=(format!("/people/{person}")) { (person) }
                        },
                    }
                }
            }
        }
        form.stack method="post" action="/mqtt" {
            (csrf_field(&ctx.csrf()))
            label { (t(lang, "login.username")) input name="name" required; }
            label { (t(lang, "login.password")) input name="password" type="password" required minlength="10" autocomplete="new-password"; }
            label {
                (t(lang, "mqtt.kind"))
                select name="kind" {
                    option value="gateway" selected { (t(lang, "mqtt.kind_gateway")) }
                    option value="app" { (t(lang, "mqtt.kind_app")) }
                    option value="monitor" { (t(lang, "mqtt.kind_monitor")) }
                    option value="other" { (t(lang, "mqtt.kind_other")) }
                }
            }
            label { (t(lang, "mqtt.person")) input name="person"; }
            button type="submit" { (t(lang, "users.add")) }
        }
    };
    Ok(staff_page(ctx, status, "MQTT", body))
}

/// The certificate the box presents over TLS, for gateways and phones to trust.
pub async fn certificate(State(state): State<AppState>) -> Answer {
    match state.services.certificate() {
        Some(cert) => {
            Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], cert.cert_pem.clone()).into_response())
        }
        None => Err(ApiError::NotFound),
    }
}

pub async fn devices(State(state): State<AppState>, ctx: Ctx) -> Answer {
    devices_page(&state, &ctx, &[])
}

pub async fn add_device(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let f = FormData::parse(&body);
    let kind = match f.get("kind").as_str() {
        "" | "gateway" => DeviceKind::Gateway,
        "monitor" => DeviceKind::Monitor,
        "other" => DeviceKind::Other,
        "app" => DeviceKind::App(f.get("person").trim().to_owned()),
        _ => {
            return devices_page(
                &state,
                &ctx,
                &[Problem::new("kind", "Loại thiết bị không đúng.", "Unknown device kind.")],
            )
        }
    };
    match state.app.add_device(f.get("name").trim(), &f.get("password"), kind, &ctx.username()?).await {
        Ok(()) => Ok(Redirect::to("/mqtt").into_response()),
        Err(AppError::Invalid(list)) => devices_page(&state, &ctx, &list),
        Err(e) => Err(e.into()),
    }
}
