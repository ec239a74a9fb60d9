//! The SMS pages: the outbox with each message's state, the staff inbox of received messages, the
//! composer for custom messages (to one person, a selection, or everyone in a status), and the box's
//! health page (the modem's signal, registration, SIM and counters).

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
    Json,
};
use maud::html;
use outpost_sync::record::{Person, PersonStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    api::JsonBody,
    layout::{badge, csrf_field, page},
    pages::{can_write, csrf_of, fmt_time, html_response, FormData, PageResult},
    url_pairs, ApiError, AppState, Ctx, PageError,
};
use crate::{
    app::AppError,
    i18n::{t, td, Lang},
    inbox, outbox, templates,
    validate::{self, Problem},
};

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

pub async fn outbox_page(State(state): State<AppState>, ctx: Ctx, Query(q): Query<Notice>) -> PageResult {
    let lang = ctx.lang;
    let list = outbox::recent(&state.app.store, 500).map_err(|e| (e.into(), lang))?;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "outbox.title"),
            html! {
                h1 { (t(lang, "outbox.title")) }
                @if let Some(n) = &q.notice { p.notice { (n) } }
                @if can_write(&ctx) { p { a.button href="/sms/new" { (t(lang, "sms.new")) } } }
                div.scroll { table #outbox {
                    thead { tr {
                        th { (t(lang, "common.time")) } th { (t(lang, "outbox.to")) } th { (t(lang, "outbox.purpose")) }
                        th { "SMS" } th { (t(lang, "outbox.state")) } th { (t(lang, "outbox.attempts")) }
                    } }
                    tbody { @for m in &list {
                        tr data-state=(m.state.as_str()) {
                            td { (fmt_time(&state, m.created_at)) }
                            td { (m.to) }
                            td { (td(lang, &format!("purpose.{}", m.purpose))) }
                            td { (m.text) }
                            td {
                                (badge(lang, match m.state {
                                    outbox::OutboxState::Delivered => "resolved",
                                    outbox::OutboxState::Failed => "open",
                                    _ => "warning",
                                }, &format!("outbox.{}", m.state.as_str())))
                                @if let Some(at) = m.delivered_at { br; span.muted { (fmt_time(&state, at)) } }
                                @if let Some(e) = &m.last_error { br; span.muted { (e) } }
                            }
                            td { (m.attempts) }
                        }
                    } }
                } }
            },
        ),
    ))
}

pub async fn inbox_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let list = inbox::messages(&state.app.store, 500).map_err(|e| (e.into(), lang))?;
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "inbox.title"),
            html! {
                h1 { (t(lang, "inbox.title")) }
                div.scroll { table #inbox {
                    thead { tr { th { (t(lang, "common.time")) } th { (t(lang, "inbox.from")) } th { "SMS" } th { "" } } }
                    tbody { @for m in &list {
                        tr {
                            td { (fmt_time(&state, m.received_at)) }
                            td {
                                (m.from)
                                @if let Some(pid) = &m.person_id {
                                    @if let Ok(p) = state.app.person(pid) { br; a href=(format!("/people/{pid}")) { (p.full_name) } }
                                }
                            }
                            td { (m.text) }
                            td {
                                @if m.handled_as == "declaration" { (badge(lang, "resolved", "inbox.declaration")) }
                                @else { (badge(lang, "warning", "inbox.staff")) }
                                @if m.missing_parts > 0 { " " (badge(lang, "open", "inbox.missing")) }
                            }
                        }
                    } }
                } }
            },
        ),
    ))
}

/// The people a compose form names: `p` ids, or everyone in `status`.
fn recipients(state: &AppState, pairs: &[(String, String)]) -> Result<Vec<Person>, AppError> {
    let mut people = Vec::new();
    for (k, v) in pairs {
        if k == "p" {
            people.push(state.app.person(v)?);
        }
    }
    if let Some((_, status)) = pairs.iter().find(|(k, v)| k == "status" && !v.is_empty()) {
        let status = validate::required("status", status, PersonStatus::parse)
            .map_err(|p| AppError::Invalid(vec![p]))?;
        people.extend(state.app.people("", Some(status), None)?);
    }
    people.sort_by(|a, b| a.id.cmp(&b.id));
    people.dedup_by(|a, b| a.id == b.id);
    Ok(people)
}

pub async fn compose(State(state): State<AppState>, ctx: Ctx, uri: axum::http::Uri) -> PageResult {
    let lang = ctx.lang;
    let pairs = url_pairs(uri.query().unwrap_or(""));
    let people = recipients(&state, &pairs).map_err(|e| (e, lang))?;
    let csrf = csrf_of(&ctx);
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "sms.new"),
            html! {
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
            },
        ),
    ))
}

pub async fn send(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let staff = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let f = FormData::parse(&body);
    let people = recipients(&state, &f.0).map_err(|e| (e, lang))?;
    let template = f.get("template");
    let n = state
        .app
        .send_custom(&people, Some(template.as_str()), &f.get("text"), Lang::parse(&f.get("lang")), &staff)
        .await
        .map_err(|e| (e, lang))?;
    let notice = format!("{} {n}", t(lang, "sms.queued"));
    Ok(Redirect::to(&format!("/outbox?notice={}", super::urlencode(&notice))).into_response())
}

/// The box's health as JSON (also what the page shows), with its condition as
/// [`crate::system::read`] gave it.
pub fn health(
    state: &AppState,
    (system, problems): (&crate::system::System, &[crate::system::Problem]),
) -> Result<Value, AppError> {
    let modem = state.app.modem.get().map(|m| m.health());
    let presence = state.app.presence.get().map(|p| p.stats());
    Ok(json!({
        "modem": modem,
        "presence": presence,
        "ble_adapter": state.app.ble.get().map(|b| b.to_json()),
        "sync": crate::sync::SyncStatus::current(&state.app),
        "mqtt": state.app.mqtt.get().map(|m| {
            let overrun = m.counters.lock().map(|c| c.overrun).unwrap_or(0);
            json!({"connections": m.connections.counts(), "overrun": overrun})
        }),
        "outbox_waiting": outbox::waiting(&state.app.store)?,
        "store_bytes": state.app.store.size_on_disk(),
        "store_flushes": state.app.store.flushes(),
        "system": system,
        "problems": problems,
    }))
}

pub async fn health_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let lang = ctx.lang;
    let (system, problems) = crate::system::read(&state.app);
    let h = health(&state, (&system, &problems)).map_err(|e| (e, lang))?;
    let labelled: Vec<_> = problems.iter().map(|p| (p, td(lang, &format!("problem.{}", p.code)))).collect();
    let modem = state.app.modem.get().map(|m| m.health());
    let yes = |b: bool| if b { t(lang, "common.yes") } else { t(lang, "common.no") };
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            ctx.staff.as_ref(),
            t(lang, "health.title"),
            html! {
                h1 { (t(lang, "health.title")) }
                h2 { (t(lang, "health.problems")) }
                @if problems.is_empty() {
                    p #health-problems.muted { (t(lang, "health.no_problems")) }
                } @else {
                    @if problems.iter().any(|p| p.writes_fail) {
                        p.error { strong { (t(lang, "health.writes_fail")) } }
                    }
                    ul #health-problems {
                        @for (p, label) in &labelled {
                            li.error data-code=(p.code) { strong { (label) } ": " (p.detail) }
                        }
                    }
                }
                h2 { (t(lang, "health.system")) }
                div.scroll { table #system { tbody {
                    tr { th { (t(lang, "health.disk")) } td { (system.disk_free_bytes >> 20) " MB / " (system.disk_total_bytes >> 20) " MB" } }
                    tr { th { (t(lang, "health.memory")) } td { (system.memory_rss_bytes >> 20) " MB / " (system.memory_available_bytes >> 20) " MB / " (system.memory_total_bytes >> 20) " MB" } }
                    tr { th { (t(lang, "health.temperature")) } td { (system.temperature_celsius.map(|c| format!("{c:.1} °C")).unwrap_or_else(|| "—".into())) } }
                    tr { th { (t(lang, "health.store")) } td { (state.app.store.size_on_disk() / 1_000_000) " MB" } }
                } } }
                @if ctx.staff.as_ref().is_some_and(|s| s.role == outpost_sync::record::Role::Admin) {
                    p { a.button href="/admin/backup" download { (t(lang, "health.backup")) } }
                    p.muted { (t(lang, "health.backup_hint")) }
                }
                h2 { (t(lang, "health.modem")) }
                @match &modem {
                    None => p.muted { (t(lang, "health.no_modem")) },
                    Some(m) => div.scroll { table #modem { tbody {
                        tr { th { (t(lang, "health.connected")) } td { (yes(m.connected)) } }
                        tr { th { (t(lang, "health.registered")) } td { (yes(m.registered)) @if let Some(r) = m.registration { " (" (r) ")" } } }
                        tr { th { (t(lang, "health.signal")) } td { (m.signal_dbm.map(|d| format!("{d} dBm")).unwrap_or_else(|| "—".into())) } }
                        tr { th { (t(lang, "health.operator")) } td { (m.operator.clone().unwrap_or_default()) } }
                        tr { th { (t(lang, "health.sim")) } td { (m.sim.clone().unwrap_or_default()) } }
                        tr { th { (t(lang, "health.counts")) } td { (m.sent) " / " (m.failed) " / " (m.received) " / " (m.reports) } }
                        tr { th { (t(lang, "health.last_error")) } td { (m.last_error.clone().unwrap_or_default()) } }
                    } } },
                }
                h2 { (t(lang, "nav.bands")) }
                p #health-bands {
                    (t(lang, "health.sightings")) ": " strong { (h["presence"]["sightings"]) } " · "
                    (t(lang, "health.dropped")) ": " strong { (h["presence"]["dropped"]) } " · "
                    (t(lang, "health.adapter")) ": " strong { (match h["ble_adapter"].as_object() {
                        Some(a) => format!("{} / {} {}", a["sightings"], a["restarts"], t(lang, "health.restarts")),
                        None => t(lang, "health.no_adapter").to_owned(),
                    }) }
                }
                h2 { (t(lang, "health.sync")) }
                p #health-sync {
                    @match h["sync"].as_object() {
                        Some(s) => {
                            (t(lang, "health.sync_last")) ": " strong { (s["last_success"].as_str().unwrap_or("—")) } " · "
                            (t(lang, "health.sync_pending")) ": " strong { (s["pending"]) } " · "
                            (t(lang, "health.sync_refused")) ": " strong { (s["refused"]) }
                            @if let Some(secs) = s["clock_corrected_seconds"].as_i64().filter(|s| *s != 0) {
                                " · " (t(lang, "health.clock_corrected")) ": " strong #clock-corrected { (crate::i18n::span(lang, secs)) }
                            }
                            @if let Some(e) = s["last_error"].as_str() { " · " (t(lang, "health.last_error")) ": " (e) }
                        },
                        None => (t(lang, "health.sync_off")),
                    }
                }
                h2 { "MQTT" }
                p #health-mqtt {
                    @match h["mqtt"].as_object() {
                        Some(m) => {
                            (t(lang, "mqtt.connections")) ": " strong { (m["connections"]["open"]) } " · "
                            (t(lang, "health.tls_failed")) ": " strong { (m["connections"]["tls_failed"]) } " · "
                            (t(lang, "health.logins_refused")) ": " strong { (m["connections"]["logins_refused"]) } " · "
                            (t(lang, "health.overrun")) ": " strong { (m["overrun"]) }
                        },
                        None => (t(lang, "mqtt.off")),
                    }
                }
                h2 { (t(lang, "nav.outbox")) }
                p { (t(lang, "health.outbox")) ": " strong { (h["outbox_waiting"]) } }
            },
        ),
    ))
}

/// Prometheus metrics (text format 0.0.4): the modem's state and counters, the outbox queue, the store.
pub async fn metrics(State(state): State<AppState>) -> Result<axum::response::Response, ApiError> {
    use std::fmt::Write;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
    };
    gauge(
        "outpost_outbox_waiting",
        "SMS waiting to be sent.",
        outbox::waiting(&state.app.store).map_err(AppError::from)? as f64,
    );
    gauge("outpost_store_bytes", "Bytes the store takes on disk.", state.app.store.size_on_disk() as f64);
    let (system, problems) = crate::system::read(&state.app);
    gauge(
        "outpost_disk_free_bytes",
        "Free space on the data folder's file system.",
        system.disk_free_bytes as f64,
    );
    gauge(
        "outpost_disk_total_bytes",
        "Size of the data folder's file system.",
        system.disk_total_bytes as f64,
    );
    gauge(
        "outpost_disk_read_only",
        "1 when the data folder's file system is read-only.",
        if system.disk_read_only { 1.0 } else { 0.0 },
    );
    gauge(
        "outpost_memory_rss_bytes",
        "Resident memory of the box's process.",
        system.memory_rss_bytes as f64,
    );
    gauge(
        "outpost_memory_available_bytes",
        "Memory the system has available.",
        system.memory_available_bytes as f64,
    );
    if let Some(c) = system.temperature_celsius {
        gauge("outpost_temperature_celsius", "The SoC's temperature (first thermal zone).", c);
    }
    gauge("outpost_problems", "Problems shown on the health page.", problems.len() as f64);
    gauge(
        "outpost_store_write_failing",
        "1 while the store cannot write to disk.",
        if problems.iter().any(|p| p.writes_fail) { 1.0 } else { 0.0 },
    );
    gauge(
        "outpost_store_flushes",
        "Flushes done for committing writers (each shared by several).",
        state.app.store.flushes() as f64,
    );
    gauge(
        "outpost_open_alerts",
        "Alerts nobody acknowledged yet.",
        state.app.count_alerts(outpost_sync::record::AlertState::Open)? as f64,
    );
    if let Some(p) = state.app.presence.get() {
        let st = p.stats();
        gauge("outpost_sightings_total", "Sightings the presence thread took.", st.sightings as f64);
        gauge(
            "outpost_sightings_dropped_total",
            "Sightings dropped: the presence thread was behind.",
            st.dropped as f64,
        );
        gauge("outpost_presence_events_total", "Presence changes of worn bands acted on.", st.events as f64);
        gauge(
            "outpost_unknown_bands",
            "Devices heard that are not in the band pool.",
            st.unknown.len() as f64,
        );
    }
    if let Some(m) = state.app.mqtt.get() {
        let c = m.connections.counts();
        gauge("outpost_mqtt_connections", "Devices connected to the broker.", c.open as f64);
        gauge("outpost_mqtt_accepted_total", "Connections the broker's ports accepted.", c.accepted as f64);
        gauge("outpost_mqtt_tls_failed_total", "TLS handshakes that failed.", c.tls_failed as f64);
        gauge(
            "outpost_mqtt_not_mqtt_total",
            "Connections that did not start with an MQTT CONNECT.",
            c.not_mqtt as f64,
        );
        gauge(
            "outpost_mqtt_logins_refused_total",
            "Logins with a wrong name or password.",
            c.logins_refused as f64,
        );
        let overrun = m.counters.lock().map(|c| c.overrun).unwrap_or(0);
        gauge(
            "outpost_mqtt_overrun_total",
            "Messages the broker's bounded log dropped before the box read them (a burst).",
            overrun as f64,
        );
    }
    if let Some(s) = crate::sync::SyncStatus::current(&state.app) {
        gauge("outpost_sync_pending", "Changes the province has not acknowledged yet.", s.pending as f64);
        gauge(
            "outpost_sync_refused",
            "Documents from the province that could not be merged.",
            s.refused as f64,
        );
        gauge(
            "outpost_sync_failures_in_a_row",
            "Failed exchanges since the last success.",
            s.link.failures_in_a_row.into(),
        );
        gauge("outpost_sync_exchanges_total", "Exchanges with the province.", s.link.exchanges as f64);
    }
    if let Some(b) = state.app.ble.get() {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
        gauge("outpost_ble_events_total", "Events from the box's Bluetooth adapter.", n(&b.events));
        gauge("outpost_ble_scan_restarts_total", "Scans restarted by the watchdog.", n(&b.restarts));
    }
    if let Some(m) = state.app.modem.get().map(|m| m.health()) {
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        gauge("outpost_modem_connected", "1 when the modem answers.", b(m.connected));
        gauge("outpost_modem_registered", "1 when registered on a network.", b(m.registered));
        gauge(
            "outpost_modem_signal_dbm",
            "Signal strength (dBm); absent when unknown.",
            m.signal_dbm.map_or(f64::NAN, f64::from),
        );
        gauge("outpost_modem_sent_total", "Messages the network accepted.", m.sent as f64);
        gauge("outpost_modem_failed_total", "Messages not sent.", m.failed as f64);
        gauge("outpost_modem_received_total", "Message parts received.", m.received as f64);
        gauge("outpost_modem_reopened_total", "Times the port was reopened.", m.reopened as f64);
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

// ----- API -----

pub async fn api_health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (system, problems) = crate::system::read(&state.app);
    Ok(Json(health(&state, (&system, &problems))?))
}

pub async fn api_inbox(State(state): State<AppState>) -> Result<Json<Vec<inbox::InboxMessage>>, ApiError> {
    Ok(Json(inbox::messages(&state.app.store, 1000).map_err(AppError::from)?))
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
) -> Result<axum::response::Response, ApiError> {
    let staff = ctx.staff()?.username.clone();
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

// ----- MQTT devices and presence -----

fn mqtt_page(state: &AppState, ctx: &Ctx, list: &[Problem]) -> PageResult {
    let lang = ctx.lang;
    let names = crate::mqtt::credentials(&state.app.store).map_err(|e| (e.into(), lang))?;
    let counters = state.app.mqtt.get().map(|m| m.counters.lock().map(|c| c.clone()).unwrap_or_default());
    let status = if list.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html_response(
        status,
        page(
            lang,
            ctx.staff.as_ref(),
            "MQTT",
            html! {
                h1 { "MQTT" }
                @match (state.app.mqtt.get(), &counters) {
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
                            dt { (t(lang, "mqtt.sightings")) }
                            dd { (c.sightings) }
                            dt { (t(lang, "mqtt.refused")) }
                            dd { (serde_json::to_string(&c.refused).unwrap_or_default()) }
                        }
                    },
                    _ => p.muted { (t(lang, "mqtt.off")) },
                }
                @if let Some(cert) = state.app.certificate.get() {
                    h2 { (t(lang, "mqtt.certificate")) }
                    p { (t(lang, "mqtt.certificate_help")) }
                    p { a href="/mqtt/box.crt" download="outpost-box.crt" { "outpost-box.crt" } }
                    p { "SHA-256: " code #mqtt-fingerprint { (cert.fingerprint) } }
                    p.muted { (cert.names.join(", ")) }
                }
                h2 { (t(lang, "mqtt.devices")) }
                (super::layout::problems(lang, list))
                ul.plain #mqtt-devices { @for n in &names { li { (n) } } }
                form.stack method="post" action="/mqtt" {
                    (csrf_field(&csrf_of(ctx)))
                    label { (t(lang, "login.username")) input name="name" required; }
                    label { (t(lang, "login.password")) input name="password" type="password" required minlength="10" autocomplete="new-password"; }
                    button type="submit" { (t(lang, "users.add")) }
                }
            },
        ),
    ))
}

/// The certificate the box presents over TLS, for gateways and phones to trust.
pub async fn mqtt_certificate(State(state): State<AppState>) -> axum::response::Response {
    match state.app.certificate.get() {
        Some(cert) => ([(axum::http::header::CONTENT_TYPE, "application/x-pem-file")], cert.cert_pem.clone())
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn mqtt_devices(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    mqtt_page(&state, &ctx, &[])
}

pub async fn add_mqtt_device(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> PageResult {
    let lang = ctx.lang;
    let admin = ctx.staff().map_err(|e| PageError(e, lang))?.username.clone();
    let f = FormData::parse(&body);
    let (name, password) = (f.get("name").trim().to_owned(), f.get("password"));
    let mut list = Vec::new();
    if !crate::mqtt::check_name(&name) {
        list.push(Problem::new(
            "name",
            "Tên thiết bị: 3–32 chữ, số, dấu . - _",
            "Device name: 3–32 letters, digits, . - _",
        ));
    }
    if let Err((vi, en)) = crate::auth::check_password(&password) {
        list.push(Problem::new("password", vi, en));
    }
    if !list.is_empty() {
        return mqtt_page(&state, &ctx, &list);
    }
    let (store, now) = (state.app.store.clone(), state.app.now());
    tokio::task::spawn_blocking(move || {
        let mut w = outpost_sync::WriteSet::new();
        crate::mqtt::add_credential(&mut w, &name, &password, now)?;
        crate::audit::record(&mut w, &store, now, &admin, "mqtt.credential", &name, "")?;
        store.commit_blocking(w)
    })
    .await
    .map_err(|e| PageError(ApiError::Internal(e.to_string()), lang))?
    .map_err(|e| (e.into(), lang))?;
    Ok(Redirect::to("/mqtt").into_response())
}
