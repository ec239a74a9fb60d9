//! The province's web UI (Vietnamese): the sites a user may see with online/offline and last sync,
//! counts across them, their open alerts (acknowledging one writes it into that site's store, and it
//! reaches the site at the next exchange), people search across them, and the counts as CSV.
//!
//! Every page and action goes through [`Web::visible`]: a district officer's requests about a site
//! of another district answer as if it did not exist. Sessions are in memory (a restart signs
//! everyone out), 12 hours, with a CSRF token on every form.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::docs::SiteDocs;
use axum::{
    extract::{ConnectInfo, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use outpost_sync::{
    record::{Alert, AlertState, Person, PersonStatus, Sample, Site, ZoneReport},
    WriteSet,
};
use outpost_sync::{
    report,
    secret::{random_token, same_secret, Limits, Throttle},
};
use serde::Deserialize;

use outpost_link::{gate, headers::cookie};

use crate::{
    server::{Server, SiteEntry},
    users::{Scope, User, Users},
};

const COOKIE: &str = "province_session";
/// The web listener's caps: officers at their desks, a few tabs each.
const WEB_LIMITS: gate::Limits = gate::Limits {
    total: 512,
    per_address: 32,
    idle: std::time::Duration::from_secs(60),
    header: std::time::Duration::from_secs(10),
};
/// Login attempts one person may get wrong from one address, and the window they are counted in
/// (an address gets four times as many, a name ten times: [`Limits::from_attempts`]).
const MAX_FAILURES: u32 = 5;
const LOCKOUT_MINUTES: i64 = 15;

struct Session {
    user: User,
    csrf: String,
    expires: DateTime<Utc>,
}

/// The web UI's state.
#[derive(Clone)]
pub struct Web {
    server: Server,
    users: Users,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Login attempts per name and address, counted before the password is checked.
    throttle: Arc<Throttle>,
    /// A site whose last exchange is older than this is shown offline.
    online_within: chrono::Duration,
}

/// A site as a page shows it.
struct SiteView {
    entry: SiteEntry,
    name: String,
    online: bool,
    last_sync: Option<DateTime<Utc>>,
    in_quarantine: usize,
    open_alerts: usize,
    /// How far the site's clock was from the province's at the last exchange, in hours, when more
    /// than two minutes (the box then takes the province's time).
    clock_off_hours: Option<f64>,
    /// The site's trusted name and its certificate, when the province gives names.
    certificate: Option<crate::acme::NameCert>,
}

/// A site's certificate with fewer days than this left is flagged: renewal (at 30 days before
/// the end of a 90-day one) has failed for over a week, or the box has not called since.
const CERT_WARN_DAYS: i64 = 21;

fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Outpost tỉnh" }
                // A file of its own: the pages' policy (`style-src 'self'`) allows no inline style.
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    strong { "Outpost · Tỉnh" }
                    @if let Some(u) = user {
                        nav {
                            a href="/" { "Cơ sở" } " · " a href="/alerts" { "Cảnh báo" } " · "
                            a href="/people" { "Tìm người" } " · " a href="/reports" { "Báo cáo ngày" } " · "
                            a href="/sites.csv" { "Tải CSV" }
                        }
                        span.who {
                            (u.display_name) " · "
                            @match &u.scope {
                                Scope::Province => { "toàn tỉnh" }
                                Scope::District(d) => { (d) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The pages' stylesheet (served as `/style.css`).
async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
        .into_response()
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}header{display:flex;gap:1em;\
align-items:center;flex-wrap:wrap;padding:.6em 1em;background:#0b4f6c;color:#fff}header a{color:#fff}\
.who{margin-left:auto}main{padding:1em;max-width:70em}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left}.off{color:#a40000}.on{color:#1a7f37}\
.figures{display:flex;gap:2em;flex-wrap:wrap}.figures div{font-size:1.6em}.figures small{display:block;font-size:.55em}\
.error{color:#a40000}\
header nav a{display:inline-flex;align-items:center;min-height:44px;padding:0 .3em}\
button{min-height:44px;font:inherit;padding:0 .9em}input,select{font:inherit;min-height:36px;max-width:100%}\
main{overflow-wrap:anywhere}main table{overflow-wrap:normal}.scroll{overflow-x:auto}\
@media (max-width:70em){main table{display:block;overflow-x:auto}}";

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The form of a signed-in action that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// The cookie a login form's CSRF token is repeated in (double submit: a page on another site can
/// neither read it nor set it).
const LOGIN_CSRF_COOKIE: &str = "outpost_csrf";

#[derive(Deserialize)]
pub struct AckForm {
    site: String,
    id: String,
    csrf: String,
}

/// A correction of a person's record at the province: a later end of quarantine (an extension) or
/// another room, with why. Written into the site's records here; it reaches the site at its next
/// exchange, as an acknowledgement does.
#[derive(Deserialize)]
pub struct CorrectForm {
    site: String,
    id: String,
    csrf: String,
    #[serde(default)]
    quarantine_end: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    note: String,
}

/// The longest a quarantine may last from its start, as the box's own form allows.
const MAX_QUARANTINE_DAYS: i64 = 90;

#[derive(Deserialize)]
pub struct SiteQuery {
    id: String,
}

#[derive(Deserialize)]
pub struct RecordQuery {
    site: String,
    doc: String,
}

#[derive(Deserialize)]
pub struct DateQuery {
    #[serde(default)]
    date: String,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Vietnam's time (UTC+7), where every site is.
fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    let vn = chrono::FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| unreachable!("+07:00 is valid"));
    t.map_or_else(|| "chưa bao giờ".to_owned(), |t| t.with_timezone(&vn).format("%d/%m/%Y %H:%M").to_string())
}

/// A CSV field, quoted when it needs to be; a leading formula character is neutralised.
fn csv_field(s: &str) -> String {
    let s = report::spreadsheet_text(s).into_owned();
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

impl Web {
    pub fn new(server: Server, online_within: chrono::Duration) -> Web {
        let users = Users::new(&server.province.dir);
        Web {
            server,
            users,
            sessions: Arc::default(),
            throttle: Arc::new(Throttle::new(
                Limits::from_attempts(MAX_FAILURES),
                chrono::Duration::minutes(LOCKOUT_MINUTES),
            )),
            online_within,
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(overview))
            .route("/login", get(login_page).post(login))
            .route("/logout", post(logout))
            .route("/alerts", get(alerts_page))
            .route("/alerts/ack", post(ack))
            .route("/people", get(people_page))
            .route("/sites.csv", get(sites_csv))
            .route("/style.css", get(stylesheet))
            .route("/site", get(site_page))
            .route("/record", get(record_page))
            .route("/record/correct", post(correct))
            .route("/reports", get(reports_page))
            .route("/reports.csv", get(reports_csv))
            .layer(axum::middleware::from_fn(outpost_link::headers::security))
            .with_state(self)
    }

    /// Serves the UI on `listener` for ever.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let gate = gate::Gate::new("web", WEB_LIMITS);
        gate::serve_router(listener, gate, None, self.router(), std::future::pending()).await;
        Ok(())
    }

    fn session(&self, headers: &HeaderMap) -> Option<(String, User, String)> {
        let token = cookie(headers, COOKIE)?.to_owned();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        sessions.retain(|_, s| s.expires > now);
        let s = sessions.get(&token)?;
        // The user as they are now: a changed scope or password takes effect at once.
        let user = self.users.all().ok()?.into_iter().find(|u| u.username == s.user.username)?;
        if user.password_hash != s.user.password_hash {
            return None;
        }
        Some((token, user, s.csrf.clone()))
    }

    /// The sites `user` may see, in id order.
    fn visible(&self, user: &User) -> Vec<SiteEntry> {
        match self.server.province.sites() {
            Ok(all) => all.into_iter().filter(|s| user.scope.sees(s)).collect(),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "The site registry cannot be read.");
                Vec::new()
            }
        }
    }

    /// `id` if `user` may see it.
    fn visible_site(&self, user: &User, id: &str) -> Option<SiteEntry> {
        self.server.province.site(id).ok().flatten().filter(|s| user.scope.sees(s))
    }

    fn store(&self, site: &SiteEntry) -> Option<SiteDocs> {
        self.server
            .store(&site.id)
            .map_err(|e| tracing::error!(site = %site.id, error = %format!("{e:#}"), "A site's store cannot be opened."))
            .ok()
    }

    /// How a site shows on the overview; its name and figures `known` already (from the database's
    /// one query for every site) or read from its store.
    fn view(&self, entry: SiteEntry, known: Option<(String, usize, usize)>) -> SiteView {
        let log = self.server.province.sync_log(&entry.id);
        let last_sync = log.link.last_success;
        let online = last_sync.is_some_and(|t| Utc::now() - t <= self.online_within);
        let (name, in_quarantine, open_alerts) = match known {
            Some(figures) => figures,
            None => self
                .store(&entry)
                .map(|store| {
                    (
                        site_record(&store).map(|s| s.name).unwrap_or_default(),
                        store.index_scan(Person::BY_STATUS, "in_quarantine").map_or(0, |v| v.len()),
                        store.index_scan(Alert::BY_STATE, "open|").map_or(0, |v| v.len()),
                    )
                })
                .unwrap_or_default(),
        };
        let clock_off_hours =
            log.link.peer_clock_ahead_seconds.filter(|s| s.unsigned_abs() > 120).map(|s| s as f64 / 3600.0);
        let certificate = self.server.names.as_ref().map(|n| n.name_cert(&entry.id));
        SiteView { entry, name, online, last_sync, in_quarantine, open_alerts, clock_off_hours, certificate }
    }
}

/// The site record a site's store holds (its box wrote it), if it arrived yet.
fn site_record(store: &SiteDocs) -> Option<Site> {
    store.list::<Site>().ok().and_then(|s| s.into_iter().next())
}

/// The sites `user` sees, as the pages show them (read off the async runtime); the answer if that
/// work failed.
async fn site_views(web: &Web, user: &User) -> Result<Vec<SiteView>, Response> {
    let (w, u) = (web.clone(), user.clone());
    tokio::task::spawn_blocking(move || {
        let visible = w.visible(&u);
        // With a database, every site's figures in one query.
        let mut known = match w.server.database() {
            Some(db) => db
                .site_figures(&visible.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "The sites' figures cannot be read.");
                    Default::default()
                }),
            None => Default::default(),
        };
        visible
            .into_iter()
            .map(|e| {
                let figures = known.remove(&e.id);
                w.view(e, figures)
            })
            .collect()
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A CSV download named `filename`.
fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The login form, with the CSRF token of the caller's cookie (a new one if it has none).
async fn login_page(headers: HeaderMap) -> Response {
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE)
        .filter(|c| c.len() == 32)
        .map_or_else(random_token, str::to_owned);
    let set = format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400");
    ([(header::SET_COOKIE, set)], login_form(None, &csrf)).into_response()
}

fn login_form(error: Option<&str>, csrf: &str) -> Markup {
    page(
        "Đăng nhập",
        None,
        html! {
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                p { label { "Tên đăng nhập " input name="username" autocomplete="username" required; } }
                p { label { "Mật khẩu " input name="password" type="password" autocomplete="current-password" required; } }
                button type="submit" { "Đăng nhập" }
            }
        },
    )
}

async fn login(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if csrf.is_empty() || !same_secret(csrf, &form.csrf) {
        let msg = "Trang đăng nhập đã hết hạn; vui lòng tải lại trang rồi thử lại.";
        return (StatusCode::FORBIDDEN, login_form(Some(msg), csrf)).into_response();
    }
    let csrf = csrf.to_owned();
    let name = form.username.trim().to_lowercase();
    if web.throttle.attempt(&name, Some(peer.ip()), Utc::now()).is_err() {
        let msg =
            format!("Tài khoản tạm khóa vì đăng nhập sai nhiều lần; thử lại sau {LOCKOUT_MINUTES} phút.");
        return (StatusCode::TOO_MANY_REQUESTS, login_form(Some(&msg), &csrf)).into_response();
    }
    let (users, checked) = (web.users.clone(), name.clone());
    let user = match tokio::task::spawn_blocking(move || users.verify(&checked, &form.password)).await {
        Ok(Ok(user)) => user,
        Ok(Err(_busy)) => {
            let msg = "Máy chủ đang bận kiểm tra mật khẩu; vui lòng thử lại sau vài giây.";
            return (StatusCode::SERVICE_UNAVAILABLE, login_form(Some(msg), &csrf)).into_response();
        }
        Err(_) => None,
    };
    let Some(user) = user else {
        return (StatusCode::UNAUTHORIZED, login_form(Some("Sai tên đăng nhập hoặc mật khẩu."), &csrf))
            .into_response();
    };
    web.throttle.succeeded(&name, Some(peer.ip()));
    let token = random_token();
    let session = Session { user, csrf: random_token(), expires: Utc::now() + chrono::Duration::hours(12) };
    web.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(token.clone(), session);
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

async fn logout(State(web): State<Web>, headers: HeaderMap, Form(form): Form<CsrfOnly>) -> Response {
    if let Some((token, _, csrf)) = web.session(&headers) {
        if !same_secret(&csrf, &form.csrf) {
            return StatusCode::FORBIDDEN.into_response();
        }
        web.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&token);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

async fn overview(State(web): State<Web>, headers: HeaderMap) -> Response {
    let Some((_, user, csrf)) = web.session(&headers) else { return to_login() };
    let views = match site_views(&web, &user).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let online = views.iter().filter(|v| v.online).count();
    let people: usize = views.iter().map(|v| v.in_quarantine).sum();
    let alerts: usize = views.iter().map(|v| v.open_alerts).sum();
    page(
        "Các cơ sở cách ly",
        Some(&user),
        html! {
            div.figures {
                div #total-sites { (views.len()) small { "cơ sở (" (online) " trực tuyến)" } }
                div #total-people { (people) small { "người đang cách ly" } }
                div #total-alerts { (alerts) small { "cảnh báo đang mở" } }
            }
            table #sites {
                thead { tr { th { "Mã" } th { "Tên" } th { "Quận/huyện" } th { "Kết nối" } th { "Đồng bộ gần nhất" }
                    th { "Đang cách ly" } th { "Cảnh báo mở" }
                    @if web.server.names.is_some() { th { "Chứng chỉ tên miền" } } } }
                tbody {
                    @for v in &views {
                        tr data-site=(v.entry.id) {
                            td { a href=(format!("/site?id={}", v.entry.id)) { (v.entry.id) } } td { (v.name) } td { (v.entry.district) }
                            td {
                                @if v.entry.revoked { span.off { "đã thu hồi" } }
                                @else if v.online { span.on { "trực tuyến" } }
                                @else { span.off { "ngoại tuyến" } }
                                @if let Some(h) = v.clock_off_hours {
                                    " " span.off.clock title="Đồng hồ của cơ sở lệch so với giờ của tỉnh ở lần đồng bộ gần nhất; hộp đã tự chỉnh theo giờ của tỉnh." {
                                        "đồng hồ lệch " (format!("{h:+.1}").replace('.', ",")) " giờ"
                                    }
                                }
                            }
                            td { (fmt_time(v.last_sync)) }
                            @if v.last_sync.is_none() && v.in_quarantine == 0 {
                                // Nothing has come from it yet: no figure rather than a zero.
                                td.off title="Cơ sở chưa đồng bộ lần nào: chưa có số liệu." { "—" } td.off { "—" }
                            } @else {
                                td { (v.in_quarantine) } td { (v.open_alerts) }
                            }
                            @if let Some(c) = &v.certificate { td.certificate { (certificate_cell(c)) } }
                        }
                    }
                }
            }
            form method="post" action="/logout" { input type="hidden" name="csrf" value=(csrf); button { "Đăng xuất" } }
        },
    )
    .into_response()
}

/// An alert's detail in Vietnamese (the box writes some in both: `tiếng Việt / English`).
fn detail_vi(detail: &str) -> String {
    detail.split(", ").map(|part| part.split(" / ").next().unwrap_or(part)).collect::<Vec<_>>().join(", ")
}

/// One site: its connection and last exchange, its figures, today's report and its open alerts.
async fn site_page(State(web): State<Web>, headers: HeaderMap, Query(q): Query<SiteQuery>) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let not_found = || (StatusCode::NOT_FOUND, "Không tìm thấy cơ sở này.").into_response();
    let Some(entry) = web.visible_site(&user, &q.id) else { return not_found() };
    let (w, u) = (web.clone(), user.clone());
    let Ok((view, alerts, (rows, _))) = tokio::task::spawn_blocking(move || {
        let alerts: Vec<Alert> =
            open_alerts(&w, &u).into_iter().filter(|(s, _)| *s == entry.id).map(|(_, a)| a).collect();
        (w.view(entry, None), alerts, zone_reports(&w, &u, today_vn()))
    })
    .await
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let report = rows.into_iter().find(|r| r.site == view.entry.id);
    page(
        &view.name.clone(),
        Some(&user),
        html! {
            div.figures #site-figures {
                div { (if view.online { "trực tuyến" } else { "ngoại tuyến" }) small { "đồng bộ gần nhất: " (fmt_time(view.last_sync)) } }
                div #site-people { (view.in_quarantine) small { "người đang cách ly" } }
                div #site-alerts { (view.open_alerts) small { "cảnh báo đang mở" } }
            }
            p { "Mã cơ sở " strong { (view.entry.id) } " · " (view.entry.district) }
            @if view.last_sync.is_none() { p.off { "Cơ sở chưa đồng bộ lần nào: các số liệu trên chưa có nguồn từ cơ sở." } }
            h2 { "Báo cáo hôm nay" }
            @match &report {
                Some(r) => {
                    p { @match &r.confirmed_by { Some(by) => { span.on { "đã xác nhận (" (by) ")" } }, None => { span.off { "chưa xác nhận" } } } }
                    div.scroll { table #site-report { tbody {
                        @for (label, cell) in report::COLUMNS.iter().zip(r.day.cells(&r.site)).skip(5) { tr { th { (label) } td { (cell) } } }
                    } } }
                }
                None => { p { "Chưa có báo cáo." } }
            }
            h2 { "Cảnh báo đang mở" }
            @if alerts.is_empty() { p { "Không có cảnh báo nào đang mở." } }
            div.scroll { table #site-open-alerts { tbody {
                @for a in &alerts {
                    tr data-alert=(a.id) {
                        td { a href=(record_link(&view.entry.id, &format!("alert/{}", a.id))) { (a.subject) } }
                        td { (a.kind.vi()) } td { (detail_vi(&a.detail)) } td { (fmt_time(Some(a.raised_at))) }
                    }
                }
            } } }
        },
    )
    .into_response()
}

/// A site's name and how long its certificate has left; flagged when near its end or failing.
fn certificate_cell(c: &crate::acme::NameCert) -> Markup {
    let left = c.not_after.map(|end| (end - Utc::now()).num_days());
    html! {
        span.name { (c.name) } br;
        @match (c.not_after, left) {
            (Some(end), Some(days)) if days < CERT_WARN_DAYS => {
                span.off.expiring title="Chứng chỉ sắp hết hạn: cơ sở chưa gia hạn được (mất kết nối, hoặc lỗi khi cấp)." {
                    "sắp hết hạn: " (fmt_time(Some(end))) " (còn " (days.max(0)) " ngày)"
                }
            }
            (Some(end), _) => { "đến " (fmt_time(Some(end))) }
            _ => { span.off { "chưa có" } }
        }
        @if let Some(e) = &c.last_error { br; span.off.error title=(e) { "lỗi cấp: " (e) } }
    }
}

/// Open alerts of the sites `user` sees: `(site, alert)`, newest first.
fn open_alerts(web: &Web, user: &User) -> Vec<(String, Alert)> {
    let mut out = Vec::new();
    for site in web.visible(user) {
        let Some(store) = web.store(&site) else { continue };
        for (_, id) in store.index_scan(Alert::BY_STATE, "open|").unwrap_or_default() {
            if let Ok(Some(a)) = store.get::<Alert>(&id) {
                out.push((site.id.clone(), a));
            }
        }
    }
    out.sort_by_key(|(_, a)| std::cmp::Reverse(a.raised_at));
    out
}

/// Severe alerts of the sites `user` sees that came by SMS: `(site, alert, whether the synced
/// record has arrived)`, newest first.
fn texted_alerts(web: &Web, user: &User) -> Vec<(String, crate::bysms::Received, bool)> {
    let sms = crate::bysms::SmsInbox::new(web.server.province.clone());
    let mut out = Vec::new();
    for site in web.visible(user) {
        let texted = sms.alerts(&site.id);
        if texted.is_empty() {
            continue;
        }
        let synced: std::collections::HashSet<String> = web
            .store(&site)
            .and_then(|store| store.list::<Alert>().ok())
            .unwrap_or_default()
            .iter()
            .map(|a| outpost_link::bysms::alert_hash(&a.id))
            .collect();
        for r in texted {
            let arrived = matches!(&r.carried, outpost_link::bysms::Carried::Alert { alert, .. } if synced.contains(alert));
            out.push((site.id.clone(), r, arrived));
        }
    }
    out.sort_by_key(|(_, r, _)| std::cmp::Reverse(r.received_at));
    out
}

async fn alerts_page(State(web): State<Web>, headers: HeaderMap) -> Response {
    let Some((_, user, csrf)) = web.session(&headers) else { return to_login() };
    let (w, u) = (web.clone(), user.clone());
    let (alerts, texted) = tokio::task::spawn_blocking(move || (open_alerts(&w, &u), texted_alerts(&w, &u)))
        .await
        .unwrap_or_default();
    page(
        "Cảnh báo đang mở",
        Some(&user),
        html! {
            @if !texted.is_empty() {
                h2 { "Cảnh báo nghiêm trọng nhận qua SMS" }
                p { "Cơ sở mất kết nối dữ liệu gửi các cảnh báo này qua SMS (có chữ ký của cơ sở); hồ sơ đầy đủ đến khi đồng bộ lại." }
                table #sms-alerts {
                    thead { tr { th { "Cơ sở" } th { "Loại" } th { "Lúc" } th { "Hồ sơ" } } }
                    tbody { @for (site, r, arrived) in &texted {
                        @if let outpost_link::bysms::Carried::Alert { alert, kind, raised_at } = &r.carried {
                            tr data-sms-alert=(alert) {
                                td { (site) } td { (kind) } td { (fmt_time(Some(*raised_at))) }
                                td { @if *arrived { span.on { "đã đồng bộ" } } @else { span.warn.by-sms { "chỉ có qua SMS" } } }
                            }
                        }
                    } }
                }
                h2 { "Cảnh báo đang mở" }
            }
            @if alerts.is_empty() { p { "Không có cảnh báo nào đang mở." } }
            table #alerts {
                thead { tr { th { "Cơ sở" } th { "Người" } th { "Loại" } th { "Chi tiết" } th { "Lúc" } th {} } }
                tbody {
                    @for (site, a) in &alerts {
                        tr data-alert=(a.id) {
                            td { (site) }
                            td { a href=(record_link(site, &format!("alert/{}", a.id))) { (a.subject) } }
                            td { (a.kind.vi()) } td { (detail_vi(&a.detail)) }
                            td { (fmt_time(Some(a.raised_at))) }
                            td {
                                form method="post" action="/alerts/ack" {
                                    input type="hidden" name="site" value=(site);
                                    input type="hidden" name="id" value=(a.id);
                                    input type="hidden" name="csrf" value=(csrf);
                                    button { "Xác nhận đã biết" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// What a posted form about record `id` of a site needs first: a session, its CSRF token, a site
/// the user sees, its records, and the record; or the answer to give (`missing`: what a hidden site
/// or an absent record is said to be).
fn posted_record<R: outpost_sync::record::Record>(
    web: &Web,
    headers: &HeaderMap,
    (site, csrf, id): (&str, &str, &str),
    missing: &'static str,
) -> Result<(User, SiteEntry, SiteDocs, R), Box<Response>> {
    let Some((_, user, expected)) = web.session(headers) else { return Err(Box::new(to_login())) };
    if csrf != expected {
        let refused = (StatusCode::FORBIDDEN, "Phiên làm việc không hợp lệ; hãy tải lại trang.");
        return Err(Box::new(refused.into_response()));
    }
    let not_found = || Box::new((StatusCode::NOT_FOUND, missing).into_response());
    let Some(site) = web.visible_site(&user, site) else { return Err(not_found()) };
    let Some(store) = web.store(&site) else {
        return Err(Box::new(StatusCode::INTERNAL_SERVER_ERROR.into_response()));
    };
    let Ok(Some(record)) = store.get::<R>(id) else { return Err(not_found()) };
    Ok((user, site, store, record))
}

async fn ack(State(web): State<Web>, headers: HeaderMap, Form(form): Form<AckForm>) -> Response {
    let missing = "Không tìm thấy cảnh báo này.";
    let (user, site, store, mut alert) =
        match posted_record::<Alert>(&web, &headers, (&form.site, &form.csrf, &form.id), missing) {
            Ok(found) => found,
            Err(answer) => return *answer,
        };
    if alert.state == AlertState::Open {
        alert.state = AlertState::Acknowledged;
        alert.acknowledged_by = Some(format!("province:{}", user.username));
        alert.acknowledged_at = Some(Utc::now());
        let mut w = WriteSet::new();
        if w.put(&alert).is_err() || store.commit(w).await.is_err() {
            tracing::error!(site = %site.id, "An acknowledgement could not be written.");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        tracing::info!(site = %site.id, alert = %alert.id, user = %user.username, "Alert acknowledged at the province.");
    }
    Redirect::to("/alerts").into_response()
}

/// The form that corrects a person's record at the province ([`correct`]).
fn correction_form(site: &str, id: &str, csrf: &str) -> Markup {
    html! {
        h2 { "Sửa hoặc gia hạn" }
        p { "Sửa tại tỉnh được gửi về cơ sở ở lần đồng bộ tới, và ghi vào lịch sử tình trạng." }
        form #correct method="post" action="/record/correct" {
            input type="hidden" name="site" value=(site);
            input type="hidden" name="id" value=(id);
            input type="hidden" name="csrf" value=(csrf);
            label { "Ngày kết thúc cách ly " input name="quarantine_end" placeholder="dd/mm/yyyy"; }
            " " label { "Phòng " input name="room" size="8"; }
            " " label { "Lý do " input name="note" required placeholder="Số Quyết định gia hạn…"; }
            " " button { "Lưu" }
        }
    }
}

/// What a correction asks, checked against the record: the new end and room, or why not.
fn checked_correction(p: &Person, form: &CorrectForm) -> Result<(chrono::NaiveDate, String), &'static str> {
    let raw = form.quarantine_end.trim();
    let end = if raw.is_empty() {
        p.quarantine_end
    } else {
        chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .or_else(|_| chrono::NaiveDate::parse_from_str(raw, "%d/%m/%Y"))
            .map_err(|_| "Ngày kết thúc cách ly không hợp lệ (dd/mm/yyyy).")?
    };
    if end < p.quarantine_start {
        return Err("Ngày kết thúc cách ly trước ngày bắt đầu.");
    }
    if (end - p.quarantine_start).num_days() > MAX_QUARANTINE_DAYS {
        return Err("Thời gian cách ly dài hơn 90 ngày.");
    }
    let room = form.room.trim();
    if room.chars().count() > 50 || room.chars().any(char::is_control) {
        return Err("Phòng không hợp lệ.");
    }
    if form.note.trim().is_empty() {
        return Err("Cần ghi lý do sửa (ví dụ: số Quyết định gia hạn).");
    }
    Ok((end, if room.is_empty() { p.room.clone() } else { room.to_owned() }))
}

async fn correct(State(web): State<Web>, headers: HeaderMap, Form(form): Form<CorrectForm>) -> Response {
    let missing = "Không tìm thấy hồ sơ này.";
    let (user, site, store, mut p) =
        match posted_record::<Person>(&web, &headers, (&form.site, &form.csrf, &form.id), missing) {
            Ok(found) => found,
            Err(answer) => return *answer,
        };
    let (end, room) = match checked_correction(&p, &form) {
        Ok(ok) => ok,
        Err(why) => return (StatusCode::UNPROCESSABLE_ENTITY, why).into_response(),
    };
    let now = Utc::now();
    let note: String = form.note.trim().chars().take(500).collect();
    p.status_history.push(outpost_sync::record::StatusChange {
        status: p.status,
        at: now,
        by: format!("province:{}", user.username),
        note: format!("Tỉnh sửa: kết thúc cách ly {}, phòng {room}. {note}", end.format("%d/%m/%Y")),
    });
    p.details.quarantine_end = end;
    p.details.room = room;
    p.updated_at = now;
    let mut w = WriteSet::new();
    if w.put(&p).is_err() || store.commit(w).await.is_err() {
        tracing::error!(site = %site.id, "A correction could not be written.");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    tracing::info!(site = %site.id, user = %user.username, "A person's record corrected at the province.");
    Redirect::to(&record_link(&site.id, &format!("person/{}", p.id))).into_response()
}

/// People of the sites `user` sees whose name holds `q` anywhere, however typed (case, accents and
/// spacing aside: "huong" finds "Trần Thị Hương"), whose phone starts with `q`, or whose ID number is
/// `q`: `(site, person)`, at most 100. Names are matched on the name index's keys, not the records.
fn search(web: &Web, user: &User, q: &str) -> Vec<(String, Person)> {
    let q = q.trim();
    let mut out = Vec::new();
    let folded = outpost_sync::record::fold(q);
    if folded.chars().count() < 2 {
        return out;
    }
    if let Some(db) = web.server.database() {
        // One query over every site the user sees, from the database's indexes.
        let sites: Vec<String> = web.visible(user).into_iter().map(|s| s.id).collect();
        return db.search_people(&sites, q, 100).unwrap_or_else(|e| {
            tracing::error!(error = %e, "The people search failed.");
            Vec::new()
        });
    }
    for site in web.visible(user) {
        let Some(store) = web.store(&site) else { continue };
        let mut ids = std::collections::BTreeSet::new();
        let names = store.index_scan(Person::BY_NAME, "").unwrap_or_default().into_iter();
        ids.extend(
            names.filter(|(name, _)| outpost_sync::record::fold(name).contains(&folded)).map(|(_, id)| id),
        );
        ids.extend(store.index_scan(Person::BY_PHONE, q).unwrap_or_default().into_iter().map(|(_, id)| id));
        // An ID number only whole: a prefix search would reveal the digits the pages mask.
        ids.extend(
            store
                .index_scan(Person::BY_ID_NUMBER, q)
                .unwrap_or_default()
                .into_iter()
                .filter(|(v, _)| v == q)
                .map(|(_, id)| id),
        );
        for id in ids {
            if let Ok(Some(p)) = store.get::<Person>(&id) {
                out.push((site.id.clone(), p));
            }
            if out.len() >= 100 {
                return out;
            }
        }
    }
    out
}

async fn people_page(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let (w, u, q) = (web.clone(), user.clone(), query.q.clone());
    let found = tokio::task::spawn_blocking(move || search(&w, &u, &q)).await.unwrap_or_default();
    page(
        "Tìm người cách ly",
        Some(&user),
        html! {
            form method="get" action="/people" {
                input name="q" size="40" value=(query.q) placeholder="Họ tên, số điện thoại hoặc CMND/CCCD" autofocus;
                " " button { "Tìm" }
            }
            @if query.q.trim().chars().count() >= 2 && found.is_empty() { p { "Không tìm thấy ai." } }
            @if !found.is_empty() {
                p { "Tìm thấy " (found.len()) " người" @if found.len() >= 100 { " (chỉ hiện 100 người: hãy tìm cụ thể hơn)" } "." }
            }
            table #people {
                thead { tr { th { "Cơ sở" } th { "Họ và tên" } th { "Năm sinh" } th { "Điện thoại" } th { "Tình trạng" } th { "Kết thúc cách ly" } } }
                tbody {
                    @for (site, p) in &found {
                        tr data-person=(p.id) {
                            td { (site) } td { a href=(record_link(site, &format!("person/{}", p.id))) { (p.full_name) } } td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) }
                            td { (p.phone) } td { (p.status.vi()) } td { (p.quarantine_end.format("%d/%m/%Y")) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

async fn sites_csv(State(web): State<Web>, headers: HeaderMap) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let views = match site_views(&web, &user).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut out = String::from(
        "\u{feff}Mã cơ sở,Tên,Quận/huyện,Trực tuyến,Đồng bộ gần nhất,Đang cách ly,Cảnh báo mở\r\n",
    );
    for v in &views {
        let fields = [
            csv_field(&v.entry.id),
            csv_field(&v.name),
            csv_field(&v.entry.district),
            if v.online { "có" } else { "không" }.to_owned(),
            v.last_sync.map(|t| t.to_rfc3339()).unwrap_or_default(),
            v.in_quarantine.to_string(),
            v.open_alerts.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    csv_response("co-so.csv", out)
}

fn record_link(site: &str, doc: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!("/record?site={}&doc={}", enc(site), enc(doc))
}

/// A record field's name as staff read it (the district list's Vietnamese headers where there is one).
fn field_label(key: &str) -> &str {
    match key {
        "full_name" => "Họ và tên",
        "birth_year" => "Năm sinh",
        "phone" => "Số điện thoại",
        "gender" => "Giới tính",
        "id_number" => "Số CMND/CCCD",
        "address" => "Địa chỉ cách ly",
        "room" => "Phòng",
        "quarantine_start" => "Ngày bắt đầu cách ly",
        "quarantine_end" => "Ngày kết thúc cách ly",
        "decision_number" => "Số Quyết định",
        "category" => "Phân loại",
        "worker" => "Công nhân",
        "child" => "Trẻ em",
        "pregnant" => "Phụ nữ có thai",
        "foreigner" => "Người nước ngoài",
        "status" => "Tình trạng",
        "status_history" => "Lịch sử tình trạng",
        "state" => "Trạng thái",
        "detail" => "Chi tiết",
        "subject" => "Người",
        "acknowledged_by" => "Xác nhận bởi",
        "resolved_by" => "Xử lý bởi",
        "created_at" => "Tạo lúc",
        "home_geofence" => "Vùng cho phép (cách ly tại nhà)",
        "purged_at" => "Xóa dữ liệu cá nhân lúc",
        "updated_at" => "Sửa lúc",
        "created_by" => "Tạo bởi",
        "raised_at" => "Phát sinh lúc",
        "acknowledged_at" => "Xác nhận lúc",
        "resolved_at" => "Xử lý lúc",
        "resolution_note" => "Cách xử lý",
        "kind" => "Loại",
        "severity" => "Mức độ",
        "person_id" => "Mã người",
        "id" => "Mã hồ sơ",
        other => other,
    }
}

/// What the record page shows of a field: never a personal link's token; an ID number masked but for
/// its last four digits (full views of ID numbers are for the site, where they are audited).
fn shown_value(key: &str, v: &serde_json::Value) -> Option<String> {
    match (key, v) {
        ("declare_token", _) => None,
        ("id_number", serde_json::Value::String(s)) if s.chars().count() > 4 => {
            let n = s.chars().count();
            Some(format!("{}{}", "•".repeat(n - 4), s.chars().skip(n - 4).collect::<String>()))
        }
        (_, serde_json::Value::Bool(b)) => Some(if *b { "Có" } else { "Không" }.into()),
        ("status", serde_json::Value::String(s)) => {
            Some(PersonStatus::parse(s).map_or_else(|| s.clone(), |st| st.vi().to_owned()))
        }
        ("category", serde_json::Value::String(s)) => Some(match s.as_str() {
            "f0" => "F0".into(),
            "f1" => "F1".into(),
            "traveller" => "Nhập cảnh".into(),
            other => other.into(),
        }),
        ("gender", serde_json::Value::String(s)) => Some(match s.as_str() {
            "male" => "Nam".into(),
            "female" => "Nữ".into(),
            "other" => "Khác".into(),
            _ => "—".into(),
        }),
        ("status_history", serde_json::Value::Array(list)) => Some(
            list.iter()
                .map(|c| {
                    let status = shown_value("status", &c["status"]).unwrap_or_default();
                    let at = shown_value("at", &c["at"]).unwrap_or_default();
                    let note = c["note"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default();
                    format!("{at} · {status} · {}{note}", c["by"].as_str().unwrap_or(""))
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (_, serde_json::Value::String(s)) => Some(readable_time(s).unwrap_or_else(|| s.clone())),
        _ => Some(json_text(v)),
    }
}

/// A time or date as staff read it: `dd/mm/yyyy HH:MM` in Vietnam's time (UTC+7), `dd/mm/yyyy`.
fn readable_time(s: &str) -> Option<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some((t.to_utc() + chrono::Duration::hours(7)).format("%d/%m/%Y %H:%M").to_string());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.format("%d/%m/%Y").to_string())
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A record of a site: its fields as they are, the fields concurrent edits left with more than one
/// value, and every change with who made it (this province or the site) and what it set.
async fn record_page(State(web): State<Web>, headers: HeaderMap, Query(q): Query<RecordQuery>) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let not_found = || (StatusCode::NOT_FOUND, "Không tìm thấy hồ sơ này.").into_response();
    let Some(site) = web.visible_site(&user, &q.site) else { return not_found() };
    let Some(store) = web.store(&site) else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let doc_id = q.doc.clone();
    let Ok(Ok(Some((current, conflicts, history, ours)))) = tokio::task::spawn_blocking(move || {
        store.document(&doc_id).map(|d| {
            d.map(|mut d| {
                let current = outpost_sync::doc::hydrate(&d);
                (
                    current,
                    outpost_sync::doc::conflicts(&d),
                    outpost_sync::doc::history(&mut d),
                    store.actor_hex(),
                )
            })
        })
    })
    .await
    else {
        return not_found();
    };
    let fields: Vec<(String, serde_json::Value)> = match current {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => Vec::new(),
    };
    let person_id = q.doc.strip_prefix("person/").map(str::to_owned);
    let csrf = web.session(&headers).map(|(_, _, c)| c).unwrap_or_default();
    page(
        &format!("Hồ sơ {} · {}", q.doc, site.id),
        Some(&user),
        html! {
            @if !conflicts.is_empty() {
                h2 { "Sửa đồng thời" }
                p { "Cơ sở và tỉnh đã sửa cùng một trường cùng lúc. Giá trị đầu tiên đang được dùng; các giá trị khác vẫn được giữ trong lịch sử." }
                table #conflicts {
                    @for (field, values) in &conflicts {
                        tr data-field=(field) {
                            th { (field_label(field)) }
                            td { @for (i, v) in values.iter().enumerate() {
                                @let text = shown_value(field, v).unwrap_or_default();
                                @if i > 0 { " · " } @if i == 0 { strong { (text) } } @else { s { (text) } }
                            } }
                        }
                    }
                }
            }
            h2 { "Hiện tại" }
            table #fields { @for (k, v) in &fields { @if let Some(text) = shown_value(k, v) { tr { th { (field_label(k)) } td { (text) } } } } }
            @if let Some(id) = &person_id { (correction_form(&site.id, id, &csrf)) }
            h2 { "Lịch sử thay đổi" }
            table #history {
                thead { tr { th { "#" } th { "Bởi" } th { "Trường" } th { "Trước" } th { "Sau" } } }
                tbody {
                    @for (n, e) in history.iter().enumerate() {
                        @for (i, (field, before, after)) in e.fields.iter().filter(|f| f.0 != "declare_token").enumerate() {
                            tr {
                                td { @if i == 0 { (n + 1) } }
                                td { @if i == 0 { @if e.actor == ours { "tỉnh" } @else { "cơ sở" } } }
                                td { (field_label(field)) }
                                td { (shown_value(field, before).unwrap_or_default()) }
                                td { (shown_value(field, after).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// Today in Vietnam (UTC+7).
fn today_vn() -> chrono::NaiveDate {
    (Utc::now() + chrono::Duration::hours(7)).date_naive()
}

/// The day a report asks for: `YYYY-MM-DD` or `dd/mm/yyyy`, today if none; `None` if unreadable.
fn report_date(q: &DateQuery) -> Option<chrono::NaiveDate> {
    let d = q.date.trim();
    if d.is_empty() {
        return Some(today_vn());
    }
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(d, "%d/%m/%Y"))
        .ok()
}

/// One site's row of a day: its id, its figures, and who confirmed them at the site (`None`: not
/// confirmed, computed here from the site's records).
struct SiteReport {
    site: String,
    day: report::ZoneDay,
    confirmed_by: Option<String>,
    /// What came by SMS (the last link) for that day, if anything.
    by_sms: Option<BySms>,
}

/// A report that came by SMS, against the synced records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BySms {
    /// Only by SMS so far: its figures are shown.
    Only,
    /// The synced report has come and agrees with it.
    Agrees,
    /// The synced report differs (confirmed again at the site after the SMS, say).
    Differs,
}

/// Zone reports: per site, and the total.
type Reports = (Vec<SiteReport>, report::ZoneDay);

/// The zone reports of `date` for the sites `user` sees.
/// What the day's reports read of every site at once, with a database: the site records and the
/// confirmed reports, then the people and the day's samplings of the sites without one (a query
/// each for every site, rather than a few per site).
#[derive(Default)]
struct ReportData {
    sites: HashMap<String, Vec<Site>>,
    confirmed: HashMap<String, Vec<ZoneReport>>,
    people: HashMap<String, Vec<Person>>,
    samples: HashMap<String, Vec<Sample>>,
}

fn report_data(web: &Web, ids: &[String], date: chrono::NaiveDate) -> Option<ReportData> {
    let db = web.server.database()?;
    let read = || -> Result<ReportData, outpost_sync::StoreError> {
        let confirmed: HashMap<String, Vec<ZoneReport>> = db.records_across(ids, &date.to_string())?;
        let open: Vec<String> = ids.iter().filter(|id| !confirmed.contains_key(*id)).cloned().collect();
        Ok(ReportData {
            sites: db.records_across(ids, "")?,
            people: db.records_across(&open, "")?,
            samples: db.find_prefix_across(&open, Sample::BY_DAY, &format!("{date}|"))?,
            confirmed,
        })
    };
    read().map_err(|e| tracing::error!(error = %e, "The sites' reports cannot be read.")).ok()
}

/// What the day's report reads of one site.
struct SiteData {
    site: Option<Site>,
    confirmed: Option<ZoneReport>,
    /// The people and the day's samplings, read only for a site with no confirmed report.
    people: Vec<Person>,
    samples: Vec<Sample>,
}

impl ReportData {
    /// Site `id`'s part of what was read at once.
    fn take(&mut self, id: &str) -> SiteData {
        fn first<T>(v: Option<Vec<T>>) -> Option<T> {
            v.and_then(|v| v.into_iter().next())
        }
        SiteData {
            site: first(self.sites.remove(id)),
            confirmed: first(self.confirmed.remove(id)),
            people: self.people.remove(id).unwrap_or_default(),
            samples: self.samples.remove(id).unwrap_or_default(),
        }
    }
}

/// Site `entry`'s part of the day's report read from its own store (`None` if it cannot be opened).
fn site_data(web: &Web, entry: &SiteEntry, date: chrono::NaiveDate) -> Option<SiteData> {
    let store = web.store(entry)?;
    let confirmed = store.get::<ZoneReport>(&date.to_string()).ok().flatten();
    let (people, samples) = match confirmed {
        Some(_) => Default::default(),
        None => (
            store.list::<Person>().unwrap_or_default(),
            store.find_prefix::<Sample>(Sample::BY_DAY, &format!("{date}|")).unwrap_or_default(),
        ),
    };
    Some(SiteData { site: site_record(&store), confirmed, people, samples })
}

fn zone_reports(web: &Web, user: &User, date: chrono::NaiveDate) -> Reports {
    let mut rows = Vec::new();
    let mut total = outpost_sync::report::ZoneDay { date: Some(date), ..Default::default() };
    let sms = crate::bysms::SmsInbox::new(web.server.province.clone());
    let visible = web.visible(user);
    let mut data = report_data(web, &visible.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), date);
    for entry in visible {
        let read = match &mut data {
            Some(d) => Some(d.take(&entry.id)),
            None => site_data(web, &entry, date),
        };
        let Some(SiteData { site, confirmed, people, samples }) = read else { continue };
        let site = site.unwrap_or(Site {
            id: entry.id.clone(),
            name: String::new(),
            district: entry.district.clone(),
            commune: String::new(),
            management_level: String::new(),
            schedule: Vec::new(),
            utc_offset_minutes: 420,
        });
        // The zone manager's confirmed figures when the site sent them; else what came by SMS; else
        // computed here.
        let texted = sms.report(&entry.id, date).and_then(|r| match r.carried {
            outpost_link::bysms::Carried::Report { figures, .. } => Some(figures),
            outpost_link::bysms::Carried::Alert { .. } => None,
        });
        let (day, confirmed_by, by_sms) = match (confirmed, texted) {
            (Some(c), texted) => {
                let by_sms = texted.map(|t| {
                    if outpost_link::bysms::agrees(&t, &c.figures) {
                        BySms::Agrees
                    } else {
                        BySms::Differs
                    }
                });
                (c.figures, Some(c.confirmed_by), by_sms)
            }
            (None, Some(t)) => {
                let names = report::zone_day(&site, &[], &[], date);
                let day = report::ZoneDay {
                    date: Some(date),
                    district: names.district,
                    commune: names.commune,
                    zone_name: names.zone_name,
                    management_level: names.management_level,
                    ..t
                };
                (day, Some("SMS".to_owned()), Some(BySms::Only))
            }
            (None, None) => (report::zone_day(&site, &people, &samples, date), None, None),
        };
        total.add(&day);
        rows.push(SiteReport { site: entry.id, day, confirmed_by, by_sms });
    }
    (rows, total)
}

/// The day a report request asks for and its reports, computed off the async runtime; or the
/// answer when the day is unreadable.
async fn requested_reports(
    web: &Web,
    user: &User,
    q: &DateQuery,
) -> Result<(chrono::NaiveDate, Reports), Response> {
    let Some(date) = report_date(q) else {
        return Err((StatusCode::BAD_REQUEST, "Ngày không hợp lệ: dùng dd/mm/yyyy.").into_response());
    };
    let (w, u) = (web.clone(), user.clone());
    match tokio::task::spawn_blocking(move || zone_reports(&w, &u, date)).await {
        Ok(reports) => Ok((date, reports)),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

async fn reports_page(State(web): State<Web>, headers: HeaderMap, Query(q): Query<DateQuery>) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let (date, (rows, total)) = match requested_reports(&web, &user, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    page(
        &format!("Báo cáo khu cách ly ngày {}", date.format("%d/%m/%Y")),
        Some(&user),
        html! {
            form method="get" action="/reports" {
                input name="date" value=(date.format("%d/%m/%Y")) size="12";
                " " button { "Xem" } " · "
                a href=(format!("/reports.csv?date={date}")) { "Tải CSV" }
            }
            @let refused = crate::bysms::SmsInbox::new(web.server.province.clone()).refused();
            @if refused > 0 {
                p.warn #sms-refused { (refused) " tin SMS gửi đến số của tỉnh bị từ chối (không đúng chữ ký của cơ sở nào)." }
            }
            p { "Số liệu của mỗi cơ sở là báo cáo trưởng khu đã xác nhận; cơ sở mất kết nối thì là bản đã xác nhận gửi qua SMS (có chữ ký của cơ sở); cơ sở chưa xác nhận thì tính từ hồ sơ đã đồng bộ (người cách ly, lượt lấy mẫu xét nghiệm)." }
            div.scroll { table #reports {
                thead { tr { @for c in report::COLUMNS { th { (c) } } th { "Xác nhận" } } }
                tbody {
                    @for r in &rows {
                        tr data-site=(r.site) {
                            @for cell in r.day.cells(&r.site) { td { (cell) } }
                            td.confirmation {
                                @match (&r.confirmed_by, r.by_sms) {
                                    (_, Some(BySms::Only)) => span.warn.by-sms { "qua SMS — chờ đồng bộ" },
                                    (Some(by), _) => span.on { "đã xác nhận (" (by) ")" },
                                    (None, _) => span.off { "chưa xác nhận" },
                                }
                                @match r.by_sms {
                                    Some(BySms::Agrees) => { br; span.on.by-sms { "khớp bản nhận qua SMS" } }
                                    Some(BySms::Differs) => { br; span.off.by-sms { "khác bản nhận qua SMS" } }
                                    _ => {}
                                }
                            }
                        }
                    }
                    tr #report-total { @for (i, cell) in total.cells("Toàn bộ").iter().enumerate() {
                        @if (1..5).contains(&i) { td {} } @else { th { (cell) } }
                    } td {} }
                }
            } }
        },
    )
    .into_response()
}

async fn reports_csv(State(web): State<Web>, headers: HeaderMap, Query(q): Query<DateQuery>) -> Response {
    let Some((_, user, _)) = web.session(&headers) else { return to_login() };
    let (date, (rows, total)) = match requested_reports(&web, &user, &q).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut out = format!("\u{feff}Ngày,{},Đã xác nhận\r\n", report::COLUMNS.join(","));
    let confirmed = |r: &SiteReport| if r.confirmed_by.is_some() { "có" } else { "không" };
    let lines = rows.iter().map(|r| (r.site.as_str(), &r.day, confirmed(r))).chain([("Toàn bộ", &total, "")]);
    for (site, d, confirmed) in lines {
        let cells: Vec<String> = d.cells(site).iter().map(|c| csv_field(&c.to_string())).collect();
        out.push_str(&format!("{},{},{confirmed}\r\n", date.format("%d/%m/%Y"), cells.join(",")));
    }
    csv_response("bao-cao-khu-cach-ly.csv", out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_near_its_end_or_failing_is_flagged() {
        let cert = |days: i64, error: Option<&str>| crate::acme::NameCert {
            name: "s1.sites.test".into(),
            not_after: Some(Utc::now() + chrono::Duration::days(days)),
            last_error: error.map(str::to_owned),
            ..Default::default()
        };
        let fine = certificate_cell(&cert(80, None)).into_string();
        assert!(
            fine.contains("s1.sites.test") && fine.contains("đến ") && !fine.contains("expiring"),
            "{fine}"
        );
        let near = certificate_cell(&cert(10, None)).into_string();
        assert!(
            near.contains("expiring") && (near.contains("còn 9 ngày") || near.contains("còn 10 ngày")),
            "{near}"
        );
        let failing = certificate_cell(&cert(80, Some("the CA's checks"))).into_string();
        assert!(failing.contains("lỗi cấp: the CA"), "{failing}");
        let none =
            certificate_cell(&crate::acme::NameCert { name: "s2.sites.test".into(), ..Default::default() });
        assert!(none.into_string().contains("chưa có"));
    }
}
