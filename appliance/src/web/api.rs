//! The JSON API under `/api/v1`, for the same operations as the pages, with session (plus
//! `X-CSRF-Token` on writes) or `Authorization: Bearer` token auth. Described by `openapi.json`, served
//! by the box. Every error is JSON: `{"error": kind, "problems": [{field, message, vi, en}]}`.

use axum::{
    body::Bytes,
    extract::{FromRequest, Path, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use outpost_sync::record::{Alert, AlertState, Category, Channel, Declaration, Person, PersonStatus};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiError, AppState, Ctx};
use crate::{
    app::{AppError, DeclarationInput},
    audit, csvio, dashboard, outbox,
    validate::{self, PersonInput, Problem},
};

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejections are clear 4xx answers in the API's error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::Invalid(vec![Problem::new(
                "body",
                format!("Nội dung JSON không hợp lệ: {}", e.body_text()),
                format!("Invalid JSON body: {}", e.body_text()),
            )])),
        }
    }
}

pub(super) fn staff_name(ctx: &Ctx) -> ApiResult<String> {
    Ok(ctx.staff()?.username.clone())
}

pub async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../../assets/openapi.json"))
        .into_response()
}

pub async fn session(ctx: Ctx) -> ApiResult<Json<Value>> {
    let s = ctx.staff()?;
    Ok(Json(json!({"username": s.username, "display_name": s.display_name, "role": s.role, "csrf": s.csrf})))
}

pub async fn dashboard(State(state): State<AppState>) -> ApiResult<Json<dashboard::Dashboard>> {
    Ok(Json(dashboard::compute(&state.app)?))
}

#[derive(Deserialize, Default)]
pub struct PeopleQuery {
    #[serde(default)]
    q: String,
    status: Option<String>,
    category: Option<String>,
}

/// A person as the API lists them: the ID number masked (the full record is at `/people/{id}`, audited).
#[derive(Serialize)]
pub struct PersonSummary {
    id: String,
    full_name: String,
    birth_year: Option<i32>,
    phone: String,
    room: String,
    id_number_masked: String,
    category: Category,
    status: PersonStatus,
    quarantine_start: chrono::NaiveDate,
    quarantine_end: chrono::NaiveDate,
}

pub async fn people(
    State(state): State<AppState>,
    Query(q): Query<PeopleQuery>,
) -> ApiResult<Json<Vec<PersonSummary>>> {
    let status = validate::choice("status", q.status.as_deref(), PersonStatus::parse)?;
    let category = validate::choice("category", q.category.as_deref(), Category::parse)?;
    let list = state.app.people(&q.q, status, category)?;
    Ok(Json(
        list.into_iter()
            .map(|p| PersonSummary {
                id_number_masked: super::layout::masked(&p.id_number),
                id: p.id,
                full_name: p.details.full_name,
                birth_year: p.details.birth_year,
                phone: p.details.phone,
                room: p.details.room,
                category: p.details.category,
                status: p.status,
                quarantine_start: p.details.quarantine_start,
                quarantine_end: p.details.quarantine_end,
            })
            .collect(),
    ))
}

pub async fn person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Person>> {
    let p = state.app.person(&id)?;
    let mut w = outpost_sync::WriteSet::new();
    audit::record(
        &mut w,
        &state.app.store,
        state.app.now(),
        &staff_name(&ctx)?,
        "person.view_id_number",
        &p.id,
        "api",
    )
    .map_err(AppError::from)?;
    state.app.store.commit(w).await.map_err(AppError::from)?;
    Ok(Json(p))
}

pub async fn create_person(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<PersonInput>,
) -> ApiResult<Response> {
    let p = state.app.create_person(&input, &staff_name(&ctx)?).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

pub async fn update_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<PersonInput>,
) -> ApiResult<Json<Person>> {
    Ok(Json(state.app.update_person(&id, &input, &staff_name(&ctx)?).await?))
}

#[derive(Deserialize)]
pub struct StatusInput {
    status: String,
    #[serde(default)]
    note: String,
}

pub async fn change_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StatusInput>,
) -> ApiResult<Json<Person>> {
    let status = validate::required("status", &input.status, PersonStatus::parse)?;
    Ok(Json(state.app.change_status(&id, status, &input.note, &staff_name(&ctx)?).await?))
}

#[derive(Deserialize, Default)]
pub struct ImportQuery {
    #[serde(default)]
    valid_only: bool,
}

/// Imports a CSV list sent as the request body. With errors, nothing is imported unless
/// `?valid_only=true`; the answer lists every bad row either way.
pub async fn import(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let staff = staff_name(&ctx)?;
    let app = state.app.clone();
    let list = csvio::parse(&body, app.today(), &|id| app.id_number_known(id).unwrap_or(false))
        .map_err(|e| ApiError::Invalid(vec![e.0]))?;
    let errors: Vec<Value> =
        list.errors.iter().map(|e| json!({"line": e.line, "problems": e.problems})).collect();
    if !list.errors.is_empty() && !q.valid_only {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "invalid_rows", "imported": 0, "valid_rows": list.valid.len(), "errors": errors})),
        )
            .into_response());
    }
    let rows: Vec<_> = list.valid.into_iter().map(|(_, v)| v).collect();
    let n = state.app.import_people(&rows, &staff).await?;
    Ok((StatusCode::OK, Json(json!({"imported": n, "errors": errors}))).into_response())
}

pub async fn declarations(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Declaration>>> {
    state.app.person(&id)?;
    Ok(Json(state.app.declarations_of(&id)?))
}

#[derive(Serialize)]
pub struct Declared {
    declaration: Declaration,
    alert: Option<Alert>,
}

pub async fn staff_declare(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<DeclarationInput>,
) -> ApiResult<Response> {
    let staff = staff_name(&ctx)?;
    let person = state.app.person(&id)?;
    let (declaration, alert) = state.app.declare(&person, &input, Channel::Staff, Some(&staff)).await?;
    Ok((StatusCode::CREATED, Json(Declared { declaration, alert })).into_response())
}

/// A quarantined person's own declaration, authorised by their personal token.
pub async fn declare(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JsonBody(input): JsonBody<DeclarationInput>,
) -> ApiResult<Response> {
    let person = state.app.person_by_token(&token)?;
    let (declaration, alert) = state.app.declare(&person, &input, Channel::Personal, None).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": declaration.id, "slot": declaration.slot, "on_time": declaration.on_time, "alerted": alert.is_some()}))).into_response())
}

#[derive(Deserialize, Default)]
pub struct AlertQuery {
    state: Option<String>,
}

pub async fn alerts(
    State(state): State<AppState>,
    Query(q): Query<AlertQuery>,
) -> ApiResult<Json<Vec<Alert>>> {
    let which = validate::choice("state", q.state.as_deref(), AlertState::parse)?.unwrap_or(AlertState::Open);
    Ok(Json(state.app.alerts(which, 10_000)?))
}

/// Acknowledges an alert. A body, if any, is read and ignored, so the connection stays usable.
pub async fn ack_alert(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    _body: Bytes,
) -> ApiResult<Json<Alert>> {
    Ok(Json(state.app.acknowledge(&id, &staff_name(&ctx)?).await?))
}

#[derive(Deserialize)]
pub struct ResolveInput {
    #[serde(default)]
    note: String,
}

pub async fn resolve_alert(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ResolveInput>,
) -> ApiResult<Json<Alert>> {
    Ok(Json(state.app.resolve(&id, &input.note, &staff_name(&ctx)?).await?))
}

pub async fn outbox(State(state): State<AppState>) -> ApiResult<Json<Vec<outbox::OutboxMessage>>> {
    Ok(Json(outbox::all(&state.app.store).map_err(AppError::from)?))
}

#[derive(Deserialize, Default)]
pub struct DateQuery {
    date: Option<String>,
}

pub async fn followup(
    State(state): State<AppState>,
    Query(q): Query<DateQuery>,
) -> ApiResult<Json<Vec<crate::followup::Row>>> {
    let date = super::date_param(&state, q.date.as_deref())?;
    Ok(Json(crate::followup::sheet(&state.app, date)?))
}

pub async fn audit(State(state): State<AppState>) -> ApiResult<Json<Vec<audit::AuditEntry>>> {
    Ok(Json(audit::recent(&state.app.store, 1000).map_err(AppError::from)?))
}
