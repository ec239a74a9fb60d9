//! The one access table: every route of the box with its access level and handler. The guard
//! (`super::guard`) enforces it before any handler runs; the access tests (in-process here, and
//! end to end in `tests/e2e/access.rs`) walk the same table.

use axum::{
    http::Method,
    routing::{delete, get, post, put, MethodRouter},
};
use outpost_link::gate::Budget;

use super::{
    accounts, alerts, bands, checkin, dashboard, declarations, exposure, followup, inbox, location, messages,
    mqtt, outbox, people, presence, reports, sampling, scanners, spotcheck, system, AppState,
};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: login, the setup link, personal declaration pages (which check their token), liveness,
    /// static assets, the language switch, the box's own certificate.
    Public,
    /// Any signed-in staff member, read-only.
    Staff,
    /// Staff who may change records: admin and medical.
    Writer,
    /// Administrators only.
    Admin,
    /// Who signs the zone's daily report: administrators and the zone head (manager).
    Reporter,
}

/// A route of the box: method, path, access level and handler.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub(super) handler: MethodRouter<AppState>,
}

impl RouteDef {
    /// The route's path with each parameter filled by a well-formed example (an unknown record, a
    /// token of the right length): what the access tests, in-process and end to end, call.
    pub fn example_path(&self) -> String {
        self.path
            .replace("{id}", "x")
            .replace("{token}", "0123456789abcdef0123456789abcdef")
            .replace("{person}", "x")
            .replace("{date}", "2026-11-21")
            .replace("{round}", "1")
            .replace("{name}", "x")
            .replace("{file}", "app.css")
            .replace("{code}", "en")
    }
}

fn r(method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>) -> RouteDef {
    RouteDef { method, path, access, handler }
}

/// Every route of the box.
pub fn routes() -> Vec<RouteDef> {
    use Access::*;
    use Method as M;
    vec![
        r(M::GET, "/healthz", Public, get(system::healthz)),
        r(M::GET, "/static/{file}", Public, get(system::static_file)),
        r(M::GET, "/lang/{code}", Public, get(accounts::set_lang)),
        r(M::GET, "/login", Public, get(accounts::login_page)),
        // The box's own certificate: public (a certificate is no secret), for phones to trust it
        // while the site has no trusted one.
        r(M::GET, "/box.crt", Public, get(mqtt::certificate)),
        r(M::POST, "/login", Public, post(accounts::login)),
        r(M::GET, "/setup/{token}", Public, get(accounts::setup_page)),
        r(M::POST, "/setup/{token}", Public, post(accounts::setup)),
        r(M::GET, "/d/{token}", Public, get(declarations::declare_page)),
        r(M::POST, "/d/{token}", Public, post(declarations::declare)),
        r(M::POST, "/api/v1/declare/{token}", Public, post(declarations::api_declare)),
        r(M::POST, "/api/v1/position/{token}", Public, post(location::api_report)),
        r(M::GET, "/s/{token}", Public, get(spotcheck::answer_page)),
        r(M::POST, "/s/{token}", Public, post(spotcheck::answer)),
        r(M::GET, "/c/{token}", Public, get(checkin::public_form)),
        r(M::POST, "/c/{token}", Public, post(checkin::public_submit)),
        r(M::POST, "/logout", Staff, post(accounts::logout)),
        r(M::GET, "/", Staff, get(dashboard::show)),
        r(M::GET, "/dashboard/live", Staff, get(dashboard::live)),
        r(M::GET, "/events", Staff, get(dashboard::events)),
        r(M::GET, "/people", Staff, get(people::list)),
        r(M::POST, "/people", Writer, post(people::create)),
        r(M::GET, "/people/new", Writer, get(people::new_form)),
        r(M::GET, "/people/export.csv", Staff, get(people::export)),
        r(M::GET, "/people/import", Writer, get(people::import_page)),
        r(M::POST, "/people/import", Writer, post(people::import)),
        r(M::POST, "/people/import/{id}", Writer, post(people::import_valid)),
        r(M::GET, "/people/{id}", Staff, get(people::show)),
        r(M::POST, "/people/{id}", Writer, post(people::update)),
        r(M::GET, "/people/{id}/edit", Writer, get(people::edit)),
        r(M::GET, "/people/{id}/qr.svg", Writer, get(people::qr)),
        r(M::GET, "/people/{id}/card", Writer, get(people::card)),
        r(M::POST, "/people/{id}/send-link", Writer, post(people::send_link)),
        r(M::POST, "/people/{id}/status", Writer, post(people::change_status)),
        r(M::POST, "/people/{id}/declarations", Writer, post(declarations::staff_declare)),
        r(M::GET, "/people/{id}/presence", Staff, get(presence::show)),
        r(M::POST, "/people/{id}/geofence", Writer, post(location::set_geofence)),
        r(M::POST, "/people/{id}/samples", Writer, post(sampling::record_for_person)),
        r(M::POST, "/people/{id}/samples/{round}/result", Writer, post(sampling::result_for_person)),
        r(M::GET, "/testing", Staff, get(sampling::desk)),
        r(M::GET, "/reports", Staff, get(reports::page_of_day)),
        r(M::GET, "/spotchecks", Staff, get(spotcheck::list)),
        r(M::POST, "/spotchecks/room", Writer, post(spotcheck::request_room)),
        r(M::GET, "/spotchecks/{id}/photo", Staff, get(spotcheck::photo)),
        r(M::POST, "/spotchecks/{id}/review", Writer, post(spotcheck::review)),
        r(M::POST, "/people/{id}/spotcheck", Writer, post(spotcheck::request_person)),
        r(M::POST, "/people/{id}/exposure", Writer, post(exposure::make)),
        r(M::GET, "/people/{id}/exposure.csv", Staff, get(exposure::export_csv)),
        r(M::GET, "/people/{id}/exposure.xlsx", Staff, get(exposure::export_xlsx)),
        r(M::GET, "/checkin", Staff, get(checkin::log)),
        r(M::GET, "/checkin/poster", Staff, get(checkin::poster)),
        r(M::GET, "/checkin/export.csv", Staff, get(checkin::export)),
        r(M::POST, "/checkin/scan", Writer, post(checkin::scan)),
        r(M::POST, "/reports/{date}/confirm", Reporter, post(reports::confirm)),
        r(M::GET, "/reports/{date}/export.csv", Staff, get(reports::export_csv)),
        r(M::GET, "/reports/{date}/export.xlsx", Staff, get(reports::export_xlsx)),
        r(M::POST, "/testing/sample", Writer, post(sampling::desk_sample)),
        r(M::POST, "/testing/import", Writer, post(sampling::desk_import)),
        r(M::GET, "/bands", Staff, get(bands::pool)),
        r(M::POST, "/bands", Writer, post(bands::register)),
        r(M::GET, "/bands/{id}", Staff, get(bands::band)),
        r(M::POST, "/bands/{id}/state", Writer, post(bands::change_state)),
        r(M::POST, "/bands/{id}/hand-over", Writer, post(bands::hand_over)),
        r(M::POST, "/scanners/{name}/forget", Admin, post(scanners::forget)),
        r(M::GET, "/alerts", Staff, get(alerts::list)),
        r(M::POST, "/alerts/{id}/ack", Writer, post(alerts::acknowledge)),
        r(M::POST, "/alerts/ack-group", Writer, post(alerts::acknowledge_group)),
        r(M::POST, "/alerts/ack-selected", Writer, post(alerts::acknowledge_selected)),
        r(M::POST, "/alerts/{id}/resolve", Writer, post(alerts::resolve)),
        r(M::GET, "/followup", Staff, get(followup::sheet)),
        r(M::GET, "/followup/export.csv", Staff, get(followup::export)),
        r(M::POST, "/followup/{person}/{date}", Writer, post(followup::save)),
        r(M::GET, "/outbox", Staff, get(outbox::page)),
        r(M::GET, "/inbox", Staff, get(inbox::page)),
        r(M::GET, "/sms/new", Writer, get(messages::compose)),
        r(M::POST, "/sms/send", Writer, post(messages::send)),
        r(M::GET, "/health", Staff, get(system::health_page)),
        r(M::GET, "/metrics", Staff, get(system::metrics)),
        r(M::GET, "/users", Admin, get(accounts::users)),
        r(M::POST, "/users", Admin, post(accounts::add_user)),
        r(M::POST, "/users/{name}", Admin, post(accounts::update_user)),
        r(M::POST, "/users/{name}/token", Admin, post(accounts::new_token)),
        r(M::POST, "/users/{name}/tokens/{id}/revoke", Admin, post(accounts::revoke_token)),
        r(M::GET, "/audit", Admin, get(accounts::audit)),
        r(M::GET, "/admin/backup", Admin, get(system::download_backup)),
        r(M::POST, "/admin/stick/{action}", Admin, post(system::stick_request)),
        r(M::GET, "/mqtt", Admin, get(mqtt::devices)),
        r(M::POST, "/mqtt", Admin, post(mqtt::add_device)),
        r(M::GET, "/mqtt/box.crt", Staff, get(mqtt::certificate)),
        r(M::GET, "/api/v1/openapi.json", Staff, get(system::openapi)),
        r(M::GET, "/api/v1/session", Staff, get(accounts::api_session)),
        r(M::GET, "/api/v1/dashboard", Staff, get(dashboard::api)),
        r(M::GET, "/api/v1/people", Staff, get(people::api_list)),
        r(M::POST, "/api/v1/people", Writer, post(people::api_create)),
        r(M::POST, "/api/v1/people/import", Writer, post(people::api_import)),
        r(M::GET, "/api/v1/people/{id}", Staff, get(people::api_person)),
        r(M::PUT, "/api/v1/people/{id}", Writer, put(people::api_update)),
        r(M::POST, "/api/v1/people/{id}/status", Writer, post(people::api_change_status)),
        r(M::GET, "/api/v1/people/{id}/declarations", Staff, get(declarations::api_list)),
        r(M::POST, "/api/v1/people/{id}/declarations", Writer, post(declarations::api_staff_declare)),
        r(M::GET, "/api/v1/people/{id}/location", Staff, get(location::api_location)),
        r(M::POST, "/api/v1/people/{id}/geofence", Writer, post(location::api_set_geofence)),
        r(M::GET, "/api/v1/people/{id}/samples", Staff, get(sampling::api_person_samples)),
        r(M::POST, "/api/v1/people/{id}/samples", Writer, post(sampling::api_record)),
        r(M::POST, "/api/v1/people/{id}/samples/{round}/result", Writer, post(sampling::api_result)),
        r(M::GET, "/api/v1/samples", Staff, get(sampling::api_day)),
        r(M::GET, "/api/v1/reports", Staff, get(reports::api_series)),
        r(M::GET, "/api/v1/spotchecks", Staff, get(spotcheck::api_list)),
        r(M::POST, "/api/v1/spotchecks", Writer, post(spotcheck::api_request)),
        r(M::POST, "/api/v1/spotchecks/{id}/review", Writer, post(spotcheck::api_review)),
        r(M::GET, "/api/v1/checkins", Staff, get(checkin::api_log)),
        r(M::POST, "/api/v1/checkins/scan", Writer, post(checkin::api_scan)),
        r(M::GET, "/api/v1/reports/{date}", Staff, get(reports::api_day)),
        r(M::POST, "/api/v1/reports/{date}/confirm", Reporter, post(reports::api_confirm)),
        r(M::POST, "/api/v1/samples/import", Writer, post(sampling::api_import)),
        r(M::GET, "/api/v1/alerts", Staff, get(alerts::api_list)),
        r(M::POST, "/api/v1/alerts/{id}/ack", Writer, post(alerts::api_acknowledge)),
        r(M::POST, "/api/v1/alerts/acknowledge", Writer, post(alerts::api_acknowledge_group)),
        r(M::POST, "/api/v1/alerts/{id}/resolve", Writer, post(alerts::api_resolve)),
        r(M::GET, "/api/v1/outbox", Staff, get(outbox::api)),
        r(M::POST, "/api/v1/sms", Writer, post(messages::api_send)),
        r(M::GET, "/api/v1/inbox", Staff, get(inbox::api)),
        r(M::GET, "/api/v1/health", Staff, get(system::api_health)),
        r(M::GET, "/api/v1/presence", Staff, get(bands::api_presence)),
        r(M::GET, "/api/v1/people/{id}/presence", Staff, get(presence::api)),
        r(M::GET, "/api/v1/people/{id}/exposure", Staff, get(exposure::api_get)),
        r(M::POST, "/api/v1/people/{id}/exposure", Writer, post(exposure::api_make)),
        r(M::GET, "/api/v1/bands", Staff, get(bands::api_bands)),
        r(M::POST, "/api/v1/bands", Writer, post(bands::api_register)),
        r(M::GET, "/api/v1/bands/unknown", Staff, get(bands::api_unknown)),
        r(M::GET, "/api/v1/scanners", Staff, get(scanners::api_list)),
        r(M::DELETE, "/api/v1/scanners/{name}", Admin, delete(scanners::api_forget)),
        r(M::GET, "/api/v1/bands/{id}", Staff, get(bands::api_band)),
        r(M::GET, "/api/v1/bands/{id}/sightings", Staff, get(bands::api_sightings)),
        r(M::POST, "/api/v1/bands/{id}/state", Writer, post(bands::api_change_state)),
        r(M::POST, "/api/v1/bands/{id}/hand-over", Writer, post(bands::api_hand_over)),
        r(M::GET, "/api/v1/followup", Staff, get(followup::api)),
        r(M::GET, "/api/v1/audit", Admin, get(accounts::api_audit)),
    ]
}

/// What a public write's budget is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The link: the token in the path (one person's, or the gate poster's).
    Link,
    /// The caller's address.
    Address,
}

/// How often a public write may be used: each budget of `(what, counted by, rate)` in turn
/// (`docs/security.md`). Routes of one kind share `what` (a declaration by form or by API counts
/// once against the same link). The login has its own throttle; other routes have none.
pub fn budgets(path: &str) -> &'static [(&'static str, Per, Budget)] {
    const fn every(burst: u32, seconds: u64) -> Budget {
        Budget { burst, every: std::time::Duration::from_secs(seconds) }
    }
    // A person declares two or three times a day: a few corrections, not hundreds of alerts.
    const DECLARE: [(&str, Per, Budget); 1] = [("declare", Per::Link, every(10, 360))];
    // Every 5 minutes while the page is open, a few more on reloads.
    const POSITION: [(&str, Per, Budget); 1] = [("position", Per::Link, every(20, 60))];
    const SPOT: [(&str, Per, Budget); 1] = [("spot", Per::Link, every(5, 120))];
    // The poster is public: each phone a few entries, the poster a busy gate's worth.
    const GATE: [(&str, Per, Budget); 2] =
        [("gate", Per::Address, every(10, 30)), ("gate", Per::Link, every(120, 1))];
    const SETUP: [(&str, Per, Budget); 1] = [("setup", Per::Address, every(10, 60))];
    match path {
        "/d/{token}" | "/api/v1/declare/{token}" => &DECLARE,
        "/api/v1/position/{token}" => &POSITION,
        "/s/{token}" => &SPOT,
        "/c/{token}" => &GATE,
        "/setup/{token}" => &SETUP,
        _ => &[],
    }
}
