//! The box itself on the web [M16]: liveness (`/healthz`), the health page and its JSON, the
//! Prometheus metrics, the administrator's backup download, the static files and the API's
//! description.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::AlertState;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{download, html as page_response, Answer, AppState, Ctx},
    layout::{self, csrf_field, page},
};
use crate::{
    base::i18n::{decimal, span, t, td, Lang},
    platform::{
        stick,
        system::{Problem, System},
    },
};

/// Liveness for monitoring: 200 `ok`; 503 `store_unavailable` when the store cannot be read, or
/// `degraded` when it cannot write (full or read-only card). The problems' codes only: details are
/// for staff, on the health page.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let store_ok = state.app.storage().readable;
    let (_, problems) = state.services.condition(&state.app);
    let writes_fail = problems.iter().any(|p| p.writes_fail);
    let (status, word) = match (store_ok, writes_fail) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        (true, true) => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
        (true, false) => (StatusCode::OK, "ok"),
    };
    let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
    (status, Json(json!({"status": word, "version": env!("CARGO_PKG_VERSION"), "problems": codes})))
        .into_response()
}

pub async fn static_file(Path(file): Path<String>) -> Answer {
    let (body, mime) = match file.as_str() {
        "app.css" => (layout::CSS, "text/css; charset=utf-8"),
        "app.js" => (layout::JS, "text/javascript; charset=utf-8"),
        _ => return Err(ApiError::NotFound),
    };
    Ok(([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response())
}

/// The API's description.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../../assets/openapi.json")).into_response()
}

/// A backup of all data, made now while the box runs and streamed as it is read (administrators).
pub async fn download_backup(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let (name, chunks) = state.app.backup_download(&ctx.username()?).await;
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(chunks));
    Ok(download("application/octet-stream", &name, body))
}

/// `POST /admin/stick/{action}`: a backup onto, or an update from, the USB stick, left for the box's
/// root helper; the health page shows how it goes.
pub async fn stick_request(State(state): State<AppState>, ctx: Ctx, Path(action): Path<String>) -> Answer {
    let action = stick::Action::parse(&action).ok_or(ApiError::NotFound)?;
    state.app.request_stick(action, &ctx.username()?).await?;
    Ok(Redirect::to("/health#stick").into_response())
}

/// The USB stick's part of the health page (administrators): the last request and how it went, and
/// the two requests.
fn stick_section(state: &AppState, ctx: &Ctx) -> Markup {
    let (lang, csrf) = (ctx.lang, ctx.csrf());
    let dir = &state.app.config().store.data_dir;
    html! {
        h2 #stick { (t(lang, "stick.title")) }
        p.muted { (t(lang, "stick.hint")) }
        @if let Some(action) = stick::pending(dir) {
            p #stick-pending data-action=(action.as_str()) { (td(lang, &format!("stick.{}", action.as_str()))) ": " strong { (t(lang, "stick.waiting")) } }
        }
        @if let Some(s) = stick::status(dir) {
            @let state_word = s.state.as_str();
            p #stick-status data-state=(state_word) data-action=(s.action.as_str()) class=[(s.state == stick::State::Failed).then_some("error")] {
                (state.fmt_time(s.at)) " · " (td(lang, &format!("stick.{}", s.action.as_str()))) ": "
                strong { (td(lang, &format!("stick.{state_word}"))) } " — " (s.message)
            }
        }
        form.inline method="post" action="/admin/stick/backup" {
            (csrf_field(&csrf)) button type="submit" { (t(lang, "stick.backup")) }
        }
        " "
        form.inline method="post" action="/admin/stick/update" {
            (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "stick.update")) }
        }
    }
}

/// The box's health as JSON (also what the page shows), with its condition as read once.
fn health(state: &AppState, (system, problems): (&System, &[Problem])) -> Result<Value, ApiError> {
    let s = &state.services;
    let storage = state.app.storage();
    Ok(json!({
        "modem": s.modems().first().map(|(_, m)| m.health()),
        "modems": s.modems().iter().map(|(port, m)| json!({"port": port, "health": m.health()})).collect::<Vec<_>>(),
        "outbox": state.app.outbox_wait()?,
        "last_link": state.app.last_link_status()?,
        "presence": s.presence().map(|p| p.stats()),
        "ble_adapter": s.scanner().map(|b| b.to_json()),
        "sync": s.link().map(|l| l.current()),
        "reach": s.tunnel().map(|t| t.to_json()),
        "name": s.names().map(|n| n.current()),
        "mqtt": s.mqtt().map(|m| {
            let overrun = m.counters.lock().map(|c| c.overrun).unwrap_or(0);
            json!({"connections": m.connections.counts(), "overrun": overrun, "gate": m.gate.counts()})
        }),
        "web": {"gate": s.web_gate().counts()},
        "outbox_waiting": state.app.outbox_waiting()?,
        "store_bytes": storage.bytes,
        "store_flushes": storage.flushes,
        "stick": {
            "pending": stick::pending(&state.app.config().store.data_dir),
            "status": stick::status(&state.app.config().store.data_dir),
        },
        "system": system,
        "problems": problems,
    }))
}

pub async fn api_health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (system, problems) = state.services.condition(&state.app);
    Ok(Json(health(&state, (&system, &problems))?))
}

pub async fn health_page(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let (system, problems) = state.services.condition(&state.app);
    let h = health(&state, (&system, &problems))?;
    let labelled: Vec<_> = problems.iter().map(|p| (p, td(lang, &format!("problem.{}", p.code)))).collect();
    let modems: Vec<_> = state.services.modems().iter().map(|(port, m)| (port.clone(), m.health())).collect();
    let yes = |b: bool| if b { t(lang, "common.yes") } else { t(lang, "common.no") };
    let body = html! {
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
            tr { th { (t(lang, "health.disk")) } td {
                // Gauges: how full the card is, how much of the memory is taken (red past the mark).
                @let used = system.disk_total_bytes.saturating_sub(system.disk_free_bytes);
                meter #disk-gauge min="0" max=(system.disk_total_bytes.max(1)) low=(system.disk_total_bytes / 10 * 8) high=(system.disk_total_bytes / 10 * 9) optimum="0" value=(used) {}
                " " (system.disk_free_bytes >> 20) " MB / " (system.disk_total_bytes >> 20) " MB" } }
            tr { th { (t(lang, "health.memory")) } td {
                @let taken = system.memory_total_bytes.saturating_sub(system.memory_available_bytes);
                meter #memory-gauge min="0" max=(system.memory_total_bytes.max(1)) low=(system.memory_total_bytes / 10 * 7) high=(system.memory_total_bytes / 10 * 9) optimum="0" value=(taken) {}
                " " (system.memory_rss_bytes >> 20) " MB / " (system.memory_available_bytes >> 20) " MB / " (system.memory_total_bytes >> 20) " MB" } }
            tr #card-wear { th { (t(lang, "health.card_wear")) } td { (card_wear(lang, &system, state.app.config().store.card_write_cycles)) } }
            tr { th { (t(lang, "health.temperature")) } td { (system.temperature_celsius.map(|c| format!("{} °C", decimal(lang, c))).unwrap_or_else(|| "—".into())) } }
            tr { th { (t(lang, "health.store")) } td { (state.app.storage().bytes / 1_000_000) " MB" } }
        } } }
        @if ctx.is_admin() {
            p { a.button href="/admin/backup" download { (t(lang, "health.backup")) } }
            p.muted { (t(lang, "health.backup_hint")) }
            (stick_section(&state, &ctx))
        }
        h2 { (t(lang, "health.modem")) }
        @if modems.is_empty() { p.muted { (t(lang, "health.no_modem")) } }
        @for (i, (port, m)) in modems.iter().enumerate() {
            @if modems.len() > 1 { h3 { (t(lang, "health.modem")) " " (i + 1) ": " code { (port) } } }
            div.scroll { table.modem #(format!("modem-{}", i + 1)) data-port=(port) { tbody {
                tr { th { (t(lang, "health.connected")) } td { (yes(m.connected)) } }
                tr { th { (t(lang, "health.registered")) } td { (yes(m.registered)) @if let Some(r) = m.registration { " (" (r) ")" } } }
                tr { th { (t(lang, "health.signal")) } td { (m.signal_dbm.map(|d| format!("{d} dBm")).unwrap_or_else(|| "—".into())) } }
                tr { th { (t(lang, "health.operator")) } td { (m.operator.clone().unwrap_or_default()) } }
                tr { th { (t(lang, "health.sim")) } td { (sim_state(lang, m.sim.as_deref().unwrap_or(""))) } }
                tr { th { (t(lang, "health.counts")) } td { (m.sent) " / " (m.failed) " / " (m.received) " / " (m.reports) } }
                tr { th { (t(lang, "health.last_error")) } td { (m.last_error.clone().unwrap_or_default()) } }
            } } }
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
                        " · " (t(lang, "health.clock_corrected")) ": " strong #clock-corrected { (span(lang, secs)) }
                    }
                    @if let Some(e) = s["last_error"].as_str() { " · " (t(lang, "health.last_error")) ": " (e) }
                },
                None => (t(lang, "health.sync_off")),
            }
            @if let Some(n) = h["name"].as_object() {
                br;
                span #health-name {
                    (t(lang, "health.name")) ": "
                    @match (n["name"].as_str(), n["not_after"].as_str()) {
                        (Some(name), Some(until)) => { strong { (name) } " · " (t(lang, "health.name_until")) " " strong #name-until { (until) } }
                        (Some(name), None) => { strong { (name) } " · " (t(lang, "health.name_waiting")) }
                        _ => { (t(lang, "health.name_none")) }
                    }
                    @if let Some(e) = n["last_error"].as_str() { " · " (t(lang, "health.last_error")) ": " (e) }
                }
            }
            @if let Some(r) = h["reach"].as_object() {
                br;
                span #health-reach {
                    (t(lang, "health.reach")) ": "
                    strong { (if r["up"].as_bool() == Some(true) { t(lang, "health.reach_up") } else { t(lang, "health.reach_down") }) }
                    " · " (t(lang, "health.reach_phones")) ": " strong { (r["phones"]) }
                }
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
    };
    Ok(page_response(StatusCode::OK, page(lang, ctx.staff.as_ref(), t(lang, "health.title"), body)))
}

/// Prometheus text format 0.0.4, gauge by gauge.
#[derive(Default)]
struct Metrics(String);

impl Metrics {
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        use std::fmt::Write;
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
    }

    fn flag(&mut self, name: &str, help: &str, value: bool) {
        self.gauge(name, help, if value { 1.0 } else { 0.0 });
    }
}

/// Prometheus metrics: the store and the card, memory, the outbox, the presence thread, the broker,
/// the link, the adapter and the modem.
pub async fn metrics(State(state): State<AppState>) -> Answer {
    let mut m = Metrics::default();
    box_metrics(&state, &mut m)?;
    service_metrics(&state, &mut m);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.0).into_response())
}

/// A listener's gate: connections open, closed at once over a cap, closed idle.
fn gate_metrics(m: &mut Metrics, listener: &str, c: &outpost_link::gate::GateCounts) {
    m.gauge(
        &format!("outpost_{listener}_connections_open"),
        "Connections open through the listener's gate.",
        c.open as f64,
    );
    m.gauge(
        &format!("outpost_{listener}_connections_refused_total"),
        "Connections closed at once because a cap was reached (docs/security.md).",
        c.refused as f64,
    );
    m.gauge(
        &format!("outpost_{listener}_connections_idle_closed_total"),
        "Connections closed after moving no byte for the idle time.",
        c.idle_closed as f64,
    );
}

fn box_metrics(state: &AppState, m: &mut Metrics) -> Result<(), ApiError> {
    gate_metrics(m, "web", &state.services.web_gate().counts());
    let storage = state.app.storage();
    m.gauge("outpost_outbox_waiting", "SMS waiting to be sent.", state.app.outbox_waiting()? as f64);
    m.gauge("outpost_store_bytes", "Bytes the store takes on disk.", storage.bytes as f64);
    let (system, problems) = state.services.condition(&state.app);
    m.gauge(
        "outpost_disk_free_bytes",
        "Free space on the data folder's file system.",
        system.disk_free_bytes as f64,
    );
    m.gauge(
        "outpost_disk_total_bytes",
        "Size of the data folder's file system.",
        system.disk_total_bytes as f64,
    );
    m.gauge(
        "outpost_disk_written_bytes_total",
        "Bytes written to the data folder's card since the machine started, by every writer (its \
         device's count; the box's own count where the folder has no device).",
        system.card.written_bytes as f64,
    );
    m.gauge(
        "outpost_process_written_bytes_total",
        "Bytes the box's process caused to be written (/proc/self/io write_bytes; overstated on \
         kernels whose ext4 uses large folios, see docs/ble.md).",
        system.card.process_written_bytes as f64,
    );
    if let Some(per_day) = system.card.per_day_bytes {
        m.gauge(
            "outpost_disk_written_bytes_per_day",
            "What the box writes a day (the last day's rate).",
            per_day as f64,
        );
    }
    if let Some(days) = system.card.life_days {
        m.gauge(
            "outpost_card_life_days",
            "The SD card's projected life at that rate (its size × store.card_write_cycles).",
            days,
        );
    }
    m.flag(
        "outpost_disk_read_only",
        "1 when the data folder's file system is read-only.",
        system.disk_read_only,
    );
    m.gauge(
        "outpost_memory_rss_bytes",
        "Resident memory of the box's process.",
        system.memory_rss_bytes as f64,
    );
    m.gauge(
        "outpost_memory_available_bytes",
        "Memory the system has available.",
        system.memory_available_bytes as f64,
    );
    if let Some(c) = system.temperature_celsius {
        m.gauge("outpost_temperature_celsius", "The SoC's temperature (first thermal zone).", c);
    }
    m.gauge("outpost_problems", "Problems shown on the health page.", problems.len() as f64);
    m.flag(
        "outpost_store_write_failing",
        "1 while the store cannot write to disk.",
        problems.iter().any(|p| p.writes_fail),
    );
    m.gauge(
        "outpost_store_flushes",
        "Flushes done for committing writers (each shared by several).",
        storage.flushes as f64,
    );
    m.gauge(
        "outpost_open_alerts",
        "Alerts nobody acknowledged yet.",
        state.app.count_alerts(AlertState::Open)? as f64,
    );
    Ok(())
}

fn service_metrics(state: &AppState, m: &mut Metrics) {
    let s = &state.services;
    if let Some(p) = s.presence() {
        presence_metrics(p, m);
    }
    if let Some(mqtt) = s.mqtt() {
        let c = mqtt.connections.counts();
        m.gauge("outpost_mqtt_connections", "Devices connected to the broker.", c.open as f64);
        m.gauge("outpost_mqtt_accepted_total", "Connections the broker's ports accepted.", c.accepted as f64);
        m.gauge("outpost_mqtt_tls_failed_total", "TLS handshakes that failed.", c.tls_failed as f64);
        m.gauge(
            "outpost_mqtt_not_mqtt_total",
            "Connections that did not start with an MQTT CONNECT.",
            c.not_mqtt as f64,
        );
        m.gauge(
            "outpost_mqtt_logins_refused_total",
            "Logins with a wrong name or password, or refused by the throttle or a cap.",
            c.logins_refused as f64,
        );
        m.gauge(
            "outpost_mqtt_denied_total",
            "Publishes and subscribes a device had no right to (docs/security.md).",
            c.denied as f64,
        );
        m.gauge(
            "outpost_mqtt_too_large_total",
            "Messages over mqtt.max_payload_bytes, dropped (and counted) rather than passed on.",
            c.too_large as f64,
        );
        gate_metrics(m, "mqtt", &mqtt.gate.counts());
        let overrun = mqtt.counters.lock().map(|c| c.overrun).unwrap_or(0);
        m.gauge(
            "outpost_mqtt_overrun_total",
            "Messages the broker's bounded log dropped before the box read them (a burst).",
            overrun as f64,
        );
    }
    if let Some(link) = s.link() {
        let st = link.current();
        m.gauge("outpost_sync_pending", "Changes the province has not acknowledged yet.", st.pending as f64);
        m.gauge(
            "outpost_sync_refused",
            "Documents from the province that could not be merged.",
            st.refused as f64,
        );
        m.gauge(
            "outpost_sync_failures_in_a_row",
            "Failed exchanges since the last success.",
            st.link.failures_in_a_row.into(),
        );
        m.gauge("outpost_sync_exchanges_total", "Exchanges with the province.", st.link.exchanges as f64);
    }
    if let Some(n) = s.names().map(|n| n.current()) {
        m.gauge(
            "outpost_tls_name_not_after_seconds",
            "When the site's trusted certificate ends (Unix time); absent until the box has one.",
            n.not_after.map_or(f64::NAN, |t| t.timestamp() as f64),
        );
    }
    if let Some(t) = s.tunnel() {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
        m.flag(
            "outpost_reach_tunnel_up",
            "1 while the tunnel to the province for phones from home is open.",
            t.up.load(std::sync::atomic::Ordering::Relaxed),
        );
        m.gauge("outpost_reach_tunnels_opened_total", "Times the tunnel was opened.", n(&t.opened));
        m.gauge("outpost_reach_phones_total", "Phones from home the province handed over.", n(&t.phones));
    }
    if let Some(b) = s.scanner() {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
        m.gauge("outpost_ble_events_total", "Events from the box's Bluetooth adapter.", n(&b.events));
        m.gauge("outpost_ble_scan_restarts_total", "Scans restarted by the watchdog.", n(&b.restarts));
    }
    modem_metrics(m, s);
}

/// The presence thread's counters and the scanners' health.
fn presence_metrics(p: &crate::services::presence::PresenceView, m: &mut Metrics) {
    let st = p.stats();
    m.gauge("outpost_sightings_total", "Sightings the presence thread took.", st.sightings as f64);
    m.gauge(
        "outpost_sightings_dropped_total",
        "Sightings dropped: the presence thread was behind.",
        st.dropped as f64,
    );
    m.gauge("outpost_presence_events_total", "Presence changes of worn bands acted on.", st.events as f64);
    m.gauge("outpost_unknown_bands", "Devices heard that are not in the band pool.", st.unknown.len() as f64);
    let scanners = p.scanners();
    let down = scanners.iter().filter(|s| s.health == outpost_ble::scanners::Health::Down).count();
    m.gauge(
        "outpost_scanners",
        "Scanners (gateways, the box's adapter) the box knows.",
        scanners.len() as f64,
    );
    m.gauge(
        "outpost_scanners_down",
        "Scanners down (their last will, silence, or the adapter failing): their bands are not covered.",
        down as f64,
    );
}

/// The modems' figures: how many, how many answer, and their messages summed.
fn modem_metrics(m: &mut Metrics, s: &crate::services::Services) {
    let modems: Vec<_> = s.modems().iter().map(|(_, m)| m.health()).collect();
    if let Some(h) = modems.first() {
        let sum = |f: fn(&outpost_sms::modem::Health) -> u64| modems.iter().map(f).sum::<u64>() as f64;
        let count =
            |f: fn(&outpost_sms::modem::Health) -> bool| modems.iter().filter(|h| f(h)).count() as f64;
        m.gauge("outpost_modems", "Modems configured.", modems.len() as f64);
        m.gauge("outpost_modems_connected", "Modems that answer.", count(|h| h.connected));
        m.gauge("outpost_modems_registered", "Modems registered on a network.", count(|h| h.registered));
        m.flag("outpost_modem_connected", "1 when the (first) modem answers.", h.connected);
        m.flag(
            "outpost_modem_registered",
            "1 when the (first) modem is registered on a network.",
            h.registered,
        );
        m.gauge(
            "outpost_modem_signal_dbm",
            "The first modem's signal strength (dBm); absent when unknown.",
            h.signal_dbm.map_or(f64::NAN, f64::from),
        );
        m.gauge("outpost_modem_sent_total", "Messages the network accepted, all modems.", sum(|h| h.sent));
        m.gauge("outpost_modem_failed_total", "Messages not sent, all modems.", sum(|h| h.failed));
        m.gauge("outpost_modem_received_total", "Message parts received, all modems.", sum(|h| h.received));
        m.gauge(
            "outpost_modem_reopened_total",
            "Times a port was reopened, all modems.",
            sum(|h| h.reopened),
        );
    }
}

/// The health page's line on the card's wear: what the box writes a day and the card's life.
fn card_wear(lang: crate::base::i18n::Lang, system: &System, cycles: u32) -> maud::Markup {
    let c = &system.card;
    html! {
        (c.written_bytes / 1_000_000) " MB · "
        @match c.per_day_bytes {
            None => (t(lang, "health.card_measuring")),
            Some(per_day) => {
                strong { (format!("{:.1}", per_day as f64 / 1e6)) " MB" } " " (t(lang, "health.card_per_day"))
                " (" (t(lang, "health.card_measured")) " " (c.measured_minutes) " min)"
                @if let Some(days) = c.life_days {
                    " · " (t(lang, "health.card_life")) " " (system.disk_total_bytes >> 30) " GB, " (cycles) " "
                    (t(lang, "health.card_cycles")) ": "
                    strong { @if days > 36_500.0 { "> 100" } @else { (decimal(lang, days / 365.0)) } " " (t(lang, "health.card_years")) }
                }
            }
        }
    }
}

/// The SIM's state as the modem tells it (`+CPIN:`), in words.
fn sim_state(lang: Lang, raw: &str) -> String {
    match raw {
        "READY" => t(lang, "health.sim_ready").to_owned(),
        "SIM PIN" => t(lang, "health.sim_pin").to_owned(),
        "SIM PUK" => t(lang, "health.sim_puk").to_owned(),
        other => other.to_owned(),
    }
}
