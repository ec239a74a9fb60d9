//! The one error path of the web layer. Handlers return `Result<_, ApiError>`; an [`ApiError`]
//! becomes a response that only carries the error, and one middleware (`super::render_errors`)
//! turns it into what the caller reads with [`ApiError::respond`]: JSON under `/api/` (`{"error":
//! kind, "problems": [{field, message, vi, en}]}`), an HTML page in the caller's language elsewhere.
//! Details of a 5xx are logged, never sent.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::DateTime;
use serde_json::json;

use super::layout;
use crate::{
    app::AppError,
    base::{
        i18n::{t, Lang},
        validate::Problem,
    },
};

/// Everything a request can fail with. Each variant's status is named in its doc.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 422: the input does not validate; each problem names its field.
    Invalid(Vec<Problem>),
    /// 409: the request conflicts with what is stored (a duplicate ID number, an alert already resolved).
    Conflict(Problem),
    /// 404.
    NotFound,
    /// 401: no session or token, or an expired one.
    Unauthorized,
    /// 403: the account's role may not do this.
    Forbidden,
    /// 403: the form's CSRF token is missing or wrong.
    Csrf,
    /// 413: the body is larger than `web.max_upload_bytes`.
    TooLarge,
    /// 429: too many failed logins.
    /// Until when, in the site's time.
    Locked(DateTime<chrono::FixedOffset>),
    /// 429: a public endpoint's rate limit.
    TooMany,
    /// 503: the password checks' queue is full.
    Busy,
    /// 503: the store failed; nothing was saved. Details are logged, never sent.
    Internal(String),
    /// 503: the SD card takes no writes (full, read-only, failing); nothing was saved.
    Storage(String),
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound => ApiError::NotFound,
            AppError::Invalid(p) => ApiError::Invalid(p),
            AppError::Conflict(p) => ApiError::Conflict(p),
            AppError::Locked(until) => ApiError::Locked(until),
            AppError::TooMany => ApiError::TooMany,
            AppError::Busy => ApiError::Busy,
            AppError::Store(e) => {
                let disk = e.is_disk();
                let detail = format!("{:#}", anyhow::Error::from(e));
                if disk {
                    ApiError::Storage(detail)
                } else {
                    ApiError::Internal(detail)
                }
            }
        }
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> ApiError {
        ApiError::Invalid(vec![p])
    }
}

impl ApiError {
    /// One problem with one field.
    pub fn invalid(field: &str, vi: impl Into<String>, en: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![Problem::new(field, vi, en)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Locked(_) | ApiError::TooMany => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) | ApiError::Storage(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The kind named in a JSON answer.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotFound => "not_found",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::Csrf => "csrf",
            ApiError::TooLarge => "too_large",
            ApiError::Locked(_) => "locked",
            ApiError::TooMany => "too_many_requests",
            ApiError::Busy => "busy",
            ApiError::Internal(_) => "unavailable",
            ApiError::Storage(_) => "storage_failing",
        }
    }

    /// The problems to show, in both languages.
    pub fn problems(&self) -> Vec<Problem> {
        let one = |key: &'static str| vec![Problem::new("", t(Lang::Vi, key), t(Lang::En, key))];
        match self {
            ApiError::Invalid(p) => p.clone(),
            ApiError::Conflict(p) => vec![p.clone()],
            ApiError::NotFound => one("error.not_found"),
            ApiError::Unauthorized => one("error.login"),
            ApiError::Forbidden => one("error.forbidden"),
            ApiError::Csrf => one("error.csrf"),
            ApiError::TooLarge => one("error.too_large"),
            ApiError::Locked(until) => vec![Problem::new(
                "",
                format!("{} {}.", t(Lang::Vi, "login.locked"), until.format("%H:%M")),
                format!("{} {}.", t(Lang::En, "login.locked"), until.format("%H:%M")),
            )],
            ApiError::TooMany => one("error.too_many"),
            ApiError::Busy => one("error.busy"),
            ApiError::Internal(_) => one("error.internal"),
            ApiError::Storage(_) => one("error.storage"),
        }
    }

    /// As JSON (for the API) or as a page in `lang`.
    pub fn respond(self, json: bool, lang: Lang) -> Response {
        if let ApiError::Internal(detail) | ApiError::Storage(detail) = &self {
            tracing::error!(error = %detail, "Request failed.");
        }
        let status = self.status();
        if json {
            let problems: Vec<_> = self
                .problems()
                .into_iter()
                .map(|p| json!({"field": p.field, "message": p.text(lang), "vi": p.vi, "en": p.en}))
                .collect();
            (status, Json(json!({"error": self.kind(), "problems": problems}))).into_response()
        } else {
            (status, layout::error_page(lang, &self.problems())).into_response()
        }
    }
}

/// The error itself, carried in an answer until it is rendered for the caller.
#[derive(Debug, Clone)]
struct Unrendered(ApiError);

impl IntoResponse for ApiError {
    /// A bare answer with the error's status, carrying the error to be rendered.
    fn into_response(self) -> Response {
        let mut res = self.status().into_response();
        res.extensions_mut().insert(Unrendered(self));
        res
    }
}

/// Whether a path is the JSON API's.
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The error an answer carries, still to be rendered for its caller.
pub fn carried(res: &Response) -> Option<ApiError> {
    res.extensions().get::<Unrendered>().map(|u| u.0.clone())
}

/// Marks an answer as closing its connection: a request body left unread cannot be followed by
/// another request on the same connection.
pub fn closing(mut res: Response) -> Response {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}
