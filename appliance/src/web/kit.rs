//! What every handler uses: the shared state, the caller ([`Ctx`]), form and JSON bodies, cookies
//! and the CSRF token of public forms, URL coding, safe redirects, dates in queries, uploads.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Multipart, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, NaiveDate, Utc};
use maud::Markup;
use outpost_sync::record::PersonDetails;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::{
    app::{accounts::Staff, declarations::DeclarationInput, Outpost},
    base::{i18n::Lang, validate::PersonInput},
    services::Services,
};

/// A page or an answer, or why not.
pub type Answer = Result<Response, ApiError>;

/// An answer of the API, or why not.
pub type ApiResult<T> = Result<T, ApiError>;

pub const SESSION_COOKIE: &str = "outpost_session";
pub const CSRF_COOKIE: &str = "outpost_csrf";
pub const LANG_COOKIE: &str = "lang";

/// An upload that had errors, kept until staff decide to import its valid rows.
pub struct PendingImport {
    pub created: DateTime<Utc>,
    pub username: String,
    pub valid: Vec<PersonDetails>,
}

/// What every handler can reach: the operations, the running services' read-only handles, and the
/// web's own state (imports waiting for a decision).
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<Outpost>,
    pub services: Services,
    pub imports: Arc<Mutex<HashMap<String, PendingImport>>>,
    /// Ends live streams on shutdown.
    pub shutdown: CancellationToken,
    /// How often each link and address used the public writes ([`super::routes::budgets`]).
    pub rates: Arc<outpost_link::gate::Rates>,
}

impl AppState {
    pub fn new(app: Arc<Outpost>, services: Services, shutdown: CancellationToken) -> AppState {
        AppState { app, services, imports: Arc::default(), shutdown, rates: Arc::default() }
    }

    /// A time as the site reads it.
    pub fn fmt_time(&self, at: DateTime<Utc>) -> String {
        self.app.schedule().local(at).format("%d/%m/%Y %H:%M").to_string()
    }

    /// A `?date=` parameter: the site's today when absent or empty, else a date as staff type it
    /// (`validate::parse_date`), or a clear error.
    pub fn date_param(&self, raw: Option<&str>) -> Result<NaiveDate, ApiError> {
        match raw.map(str::trim).filter(|d| !d.is_empty()) {
            None => Ok(self.app.today()),
            Some(d) => crate::base::validate::parse_date(d).ok_or_else(|| {
                ApiError::invalid("date", format!("Ngày không hợp lệ: {d}."), format!("Invalid date: {d}."))
            }),
        }
    }

    /// A `Set-Cookie` value for `name`, Secure when the box is served over HTTPS.
    pub fn cookie_header(&self, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
        let secure = if self.app.config().web.secure_cookies { "; Secure" } else { "" };
        let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
    }

    /// A public page with a form (`render` gets the CSRF token its form repeats), setting the
    /// anonymous CSRF cookie when the browser has none yet.
    pub fn public_form(&self, headers: &HeaderMap, render: impl FnOnce(&str) -> Markup) -> Response {
        let (csrf, new) = public_csrf(headers);
        let mut res = html(StatusCode::OK, render(&csrf));
        if new {
            res.headers_mut().append(header::SET_COOKIE, self.cookie_header(CSRF_COOKIE, &csrf, 86400));
        }
        res
    }
}

/// A page.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A page for the signed-in caller, in their language, with the staff navigation.
pub fn staff_page(ctx: &Ctx, status: StatusCode, title: &str, body: Markup) -> Response {
    html(status, super::layout::page(ctx.lang, ctx.staff.as_ref(), title, body))
}

/// A page for anyone (no navigation), in `lang`.
pub fn public_page(lang: Lang, status: StatusCode, title: &str, body: Markup) -> Response {
    html(status, super::layout::page(lang, None, title, body))
}

/// A file to download.
/// A spreadsheet of `rows` to download, its second sheet naming the site, the account and the time.
pub fn xlsx_download(
    state: &AppState,
    ctx: &Ctx,
    (sheet, filename): (&str, &str),
    rows: &[Vec<outpost_sync::report::Cell>],
) -> Answer {
    let by = ctx.username()?;
    let config = state.app.config();
    let made = crate::app::xlsx::Made {
        site: &config.site.id,
        by: &by,
        at: state.app.schedule().local(state.app.now()),
    };
    let book = crate::app::xlsx::workbook(sheet, rows, &made)
        .map_err(|e| ApiError::Internal(format!("xlsx: {e}")))?;
    Ok(download("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename, book))
}

pub fn download(content_type: &str, filename: &str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

pub use outpost_link::headers::cookie;

/// The caller's language (their cookie; Vietnamese first).
pub fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE).map(Lang::parse).unwrap_or_default()
}

/// The anonymous CSRF token for public forms: the cookie's, or a new one to set.
pub fn public_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() == 32) {
        Some(c) => (c.to_owned(), false),
        None => (outpost_sync::secret::random_token(), true),
    }
}

/// The CSRF token a public form posted back repeats (the cookie's).
pub fn posted_csrf(headers: &HeaderMap) -> &str {
    cookie(headers, CSRF_COOKIE).unwrap_or("")
}

/// The request's language and signed-in staff member, for handlers.
pub struct Ctx {
    pub lang: Lang,
    pub staff: Option<Staff>,
    pub ip: Option<std::net::IpAddr>,
}

impl Ctx {
    /// The signed-in staff member; guarded routes always have one.
    pub fn staff(&self) -> Result<&Staff, ApiError> {
        self.staff.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// The signed-in staff member's username.
    pub fn username(&self) -> Result<String, ApiError> {
        Ok(self.staff()?.username.clone())
    }

    /// The session's CSRF token, for the forms of a page.
    pub fn csrf(&self) -> String {
        self.staff.as_ref().and_then(|s| s.csrf.clone()).unwrap_or_default()
    }

    /// Whether the caller may change records.
    pub fn can_write(&self) -> bool {
        self.staff.as_ref().is_some_and(|s| s.role.can_write())
    }

    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.staff.as_ref().is_some_and(|s| s.role == outpost_sync::record::Role::Admin)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, Self::Rejection> {
        Ok(Ctx {
            lang: lang_of(&parts.headers),
            staff: parts.extensions.get::<Staff>().cloned(),
            ip: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        })
    }
}

/// A JSON body whose rejections are clear 4xx answers in the API's error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::invalid(
                "body",
                format!("Nội dung JSON không hợp lệ: {}", e.body_text()),
                format!("Invalid JSON body: {}", e.body_text()),
            )),
        }
    }
}

/// Form fields from an urlencoded body, parsed by hand so that repeated fields (symptom
/// checkboxes) and bad encodings give a clear message, never a 500.
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &Bytes) -> FormData {
        FormData(url_pairs(&String::from_utf8_lossy(body)))
    }
    pub fn get(&self, name: &str) -> String {
        self.opt(name).unwrap_or_default()
    }
    pub fn opt(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
    pub fn person(&self) -> PersonInput {
        PersonInput {
            full_name: self.get("full_name"),
            birth_year: self.get("birth_year"),
            phone: self.get("phone"),
            gender: self.get("gender"),
            id_number: self.get("id_number"),
            address: self.get("address"),
            room: self.get("room"),
            quarantine_start: self.get("quarantine_start"),
            quarantine_end: self.get("quarantine_end"),
            decision_number: self.get("decision_number"),
            category: self.get("category"),
            worker: self.opt("worker"),
            child: self.opt("child"),
            pregnant: self.opt("pregnant"),
            foreigner: self.opt("foreigner"),
        }
    }
    pub fn declaration(&self) -> DeclarationInput {
        DeclarationInput {
            temperature: self.opt("temperature"),
            spo2: self.opt("spo2"),
            symptoms: self.all("symptoms"),
            note: self.get("note"),
        }
    }
}

/// The file of an upload form's `file` field.
pub async fn upload(mut multipart: Multipart) -> Result<Bytes, ApiError> {
    let failed = || ApiError::invalid("file", "Tải tệp lên bị lỗi.", "The upload failed.");
    let mut bytes = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                bytes = Some(field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::TooLarge
                    } else {
                        failed()
                    }
                })?);
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(ApiError::TooLarge),
            Err(_) => return Err(failed()),
        }
    }
    bytes.ok_or_else(|| ApiError::invalid("file", "Chưa chọn tệp.", "No file was chosen."))
}

/// `next` if it is a path on this site, else `/`: one leading `/`, and no backslash, whitespace or
/// control character. Browsers drop tabs and newlines from a URL and read `\` as `/`, so
/// `/\t/host` and `/\host` lead to another site; a CR or LF cannot go in a `Location` header.
pub fn local_path(next: &str) -> &str {
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && next.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != '\\');
    if safe {
        next
    } else {
        "/"
    }
}

/// The page the request came from (its `Referer`), if local, else `default`.
pub fn back_to(headers: &HeaderMap, default: &str) -> String {
    referer_path(headers).map_or_else(|| default.to_owned(), |p| local_path(&p).to_owned())
}

/// The path of the `Referer`, if any.
pub fn referer_path(headers: &HeaderMap) -> Option<String> {
    headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| {
        let after_scheme = r.split_once("://").map_or(r, |(_, rest)| rest);
        after_scheme.find('/').map(|i| after_scheme[i..].to_owned())
    })
}

/// A query-string or form value, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url_pairs(query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (urldecode(k), urldecode(v)))
        .collect()
}

fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A redirect to `path` with a notice for the page to show.
pub fn with_notice(path: &str, notice: &str) -> Response {
    axum::response::Redirect::to(&format!("{path}?notice={}", urlencode(notice))).into_response()
}

/// `text` with the secret of every personal (`/d/…`) and spot-check (`/s/…`) link in it replaced by
/// `…`: for staff who may read the outbox but must not act as a person (managers).
pub fn without_link_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["/d/", "/s/"].iter().filter_map(|m| rest.find(m)).min() {
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        let secret = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        if secret > 0 {
            out.push('…');
        }
        rest = &rest[secret..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_coding() {
        assert_eq!(urldecode("a+b%20c%C3%A0"), "a b cà");
        assert_eq!(urldecode("100%"), "100%");
        assert_eq!(query_param("x=1&csrf=ab%2Fc&y", "csrf").as_deref(), Some("ab/c"));
        assert_eq!(urlencode("/people?q=Lê"), "/people%3Fq%3DL%C3%AA");
    }
}
