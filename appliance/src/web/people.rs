//! People under quarantine on the web [M1]: the list with search and filters, registering and
//! editing, a person's page (their record, personal link, status, declarations, alerts, testing,
//! location), the district's list imported and exported as CSV, and their API.

use axum::{
    body::Bytes,
    extract::{Multipart, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Redirect},
    Json,
};
use maud::{html, Markup};
use outpost_sync::record::{Category, Person, PersonStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    alerts::alert_rows,
    declarations::{declaration_fields, declaration_rows},
    error::ApiError,
    kit::{
        download, staff_page, upload, urlencode, with_notice, Answer, AppState, Ctx, FormData, JsonBody,
        PendingImport,
    },
    layout::{self, badge, csrf_field, masked, page_of, pager, problems},
    location, sampling,
};
use crate::{
    app::AppError,
    base::{
        i18n::{t, td, Lang},
        validate::{self, PersonInput, Problem},
    },
};

#[derive(Deserialize, Default)]
pub struct PeopleQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    notice: Option<String>,
    page: Option<usize>,
}

/// People on a page of the list: a phone shows 50 rows quickly, and 2,000 would be 680 KB.
const PEOPLE_PAGE: usize = 50;

pub async fn list(State(state): State<AppState>, ctx: Ctx, Query(q): Query<PeopleQuery>) -> Answer {
    let lang = ctx.lang;
    let status = PersonStatus::parse(&q.status);
    let category = Category::parse(&q.category);
    let all = state.app.search_people(&q.q, status, category, &ctx.username()?).await?;
    let (list, page, pages) = page_of(&all, q.page, PEOPLE_PAGE);
    let page_link = |n: usize| {
        format!(
            "/people?q={}&status={}&category={}&page={n}",
            urlencode(&q.q),
            urlencode(&q.status),
            urlencode(&q.category)
        )
    };
    let body = html! {
        h1 { (t(lang, "people.title")) " " span.muted { (all.len()) " " (t(lang, "people.count")) } }
        @if let Some(n) = &q.notice { p.notice { (n) } }
        p.inline {
            @if ctx.can_write() {
                a.button href="/people/new" { (t(lang, "people.new")) }
                a.button.secondary href="/people/import" { (t(lang, "people.import")) }
            }
            a.button.secondary href="/people/export.csv" { (t(lang, "people.export")) }
        }
        form.filters method="get" action="/people" {
            input name="q" value=(q.q) placeholder=(t(lang, "people.search"));
            select name="status" {
                option value="" { (t(lang, "people.all")) }
                @for s in PersonStatus::ALL { option value=(s.as_str()) selected[status == Some(s)] { (td(lang, &format!("status.{}", s.as_str()))) } }
            }
            select name="category" {
                option value="" { (t(lang, "people.all")) }
                @for c in Category::ALL { option value=(c.as_str()) selected[category == Some(c)] { (td(lang, &format!("category.{}", c.as_str()))) } }
            }
            button type="submit" { (t(lang, "people.filter")) }
        }
        form method="get" action="/sms/new" {
            @if ctx.can_write() { p { button.secondary type="submit" { (t(lang, "sms.to_selected")) } } }
            div.scroll { table #people {
                thead { tr {
                    @if ctx.can_write() { th { "" } }
                    th { (t(lang, "field.full_name")) } th { (t(lang, "field.birth_year")) } th { (t(lang, "field.room")) }
                    th { (t(lang, "field.phone")) } th { (t(lang, "field.id_number")) } th { (t(lang, "field.category")) }
                    th { (t(lang, "field.status")) } th { (t(lang, "field.quarantine_end")) }
                } }
                tbody { @for p in list {
                    tr {
                        @if ctx.can_write() { td { input type="checkbox" name="p" value=(p.id) aria-label=(p.full_name); } }
                        td { a href=(format!("/people/{}", p.id)) { (p.full_name) } }
                        td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) }
                        td { (p.room) }
                        td { (p.phone) }
                        td { (masked(&p.id_number)) }
                        td { (td(lang, &format!("category.{}", p.category.as_str()))) }
                        td { (td(lang, &format!("status.{}", p.status.as_str()))) }
                        td { (p.quarantine_end.format("%d/%m/%Y")) }
                    }
                } }
            } }
        }
        (pager(lang, "people-pages", (page, pages, all.len()), page_link))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "people.title"), body))
}

fn person_form(lang: Lang, csrf: &str, action: &str, list: &[Problem], v: &PersonInput) -> Markup {
    let gender = |g: &str| v.gender == g;
    html! {
        (problems(lang, list))
        form.stack method="post" action=(action) {
            (csrf_field(csrf))
            label { (t(lang, "field.full_name")) input name="full_name" required value=(v.full_name); }
            label { (t(lang, "field.birth_year")) input name="birth_year" inputmode="numeric" value=(v.birth_year); }
            label { (t(lang, "field.phone")) input name="phone" type="tel" required value=(v.phone); }
            label { (t(lang, "field.gender")) select name="gender" {
                option value="" selected[gender("")] { "—" }
                option value="male" selected[gender("male")] { (t(lang, "gender.male")) }
                option value="female" selected[gender("female")] { (t(lang, "gender.female")) }
                option value="other" selected[gender("other")] { (t(lang, "gender.other")) }
            } }
            label { (t(lang, "field.id_number")) input name="id_number" value=(v.id_number);
                small.muted { (t(lang, "people.id_hint")) } }
            label { (t(lang, "field.address")) input name="address" value=(v.address); }
            label { (t(lang, "field.room")) input name="room" value=(v.room); }
            label { (t(lang, "field.quarantine_start")) input name="quarantine_start" type="date" required value=(v.quarantine_start); }
            label { (t(lang, "field.quarantine_end")) input name="quarantine_end" type="date" required value=(v.quarantine_end); }
            label { (t(lang, "field.decision_number")) input name="decision_number" value=(v.decision_number); }
            label { (t(lang, "field.category")) select name="category" {
                @for c in Category::ALL { option value=(c.as_str()) selected[v.category == c.as_str()] { (td(lang, &format!("category.{}", c.as_str()))) } }
            } }
            fieldset {
                legend { (t(lang, "field.flags")) }
                label.check { input type="checkbox" name="worker" checked[validate::flag(&v.worker)]; (t(lang, "field.worker")) }
                label.check { input type="checkbox" name="child" checked[validate::flag(&v.child)]; (t(lang, "field.child")) }
                label.check { input type="checkbox" name="pregnant" checked[validate::flag(&v.pregnant)]; (t(lang, "field.pregnant")) }
                label.check { input type="checkbox" name="foreigner" checked[validate::flag(&v.foreigner)]; (t(lang, "field.foreigner")) }
            }
            button type="submit" { (t(lang, "people.save")) }
        }
    }
}

fn input_of(p: &Person) -> PersonInput {
    let yes = |b: bool| if b { Some("on".to_owned()) } else { None };
    PersonInput {
        full_name: p.full_name.clone(),
        birth_year: p.birth_year.map(|y| y.to_string()).unwrap_or_default(),
        phone: p.phone.clone(),
        gender: p.gender.as_str().replace("unknown", ""),
        id_number: p.id_number.clone(),
        address: p.address.clone(),
        room: p.room.clone(),
        quarantine_start: p.quarantine_start.to_string(),
        quarantine_end: p.quarantine_end.to_string(),
        decision_number: p.decision_number.clone(),
        category: p.category.as_str().to_owned(),
        worker: yes(p.worker),
        child: yes(p.child),
        pregnant: yes(p.pregnant),
        foreigner: yes(p.foreigner),
    }
}

pub async fn new_form(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let v = state.app.person_form_defaults();
    let body = html! {
        h1 { (t(lang, "people.new")) }
        (person_form(lang, &ctx.csrf(), "/people", &[], &v))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "people.new"), body))
}

fn form_error_page(ctx: &Ctx, title: &'static str, action: &str, input: &PersonInput, e: AppError) -> Answer {
    let lang = ctx.lang;
    let list = match e {
        AppError::Invalid(list) => list,
        AppError::Conflict(p) => vec![p],
        e => return Err(e.into()),
    };
    let body = html! {
        h1 { (t(lang, title)) }
        (person_form(lang, &ctx.csrf(), action, &list, input))
    };
    Ok(staff_page(ctx, StatusCode::UNPROCESSABLE_ENTITY, t(lang, title), body))
}

pub async fn create(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Answer {
    let staff = ctx.username()?;
    let input = FormData::parse(&body).person();
    match state.app.create_person(&input, &staff).await {
        Ok(p) => Ok(Redirect::to(&format!("/people/{}", p.id)).into_response()),
        Err(e) => form_error_page(&ctx, "people.new", "/people", &input, e),
    }
}

pub async fn edit(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let lang = ctx.lang;
    let p = state.app.person(&id)?;
    let body = html! {
        h1 { (t(lang, "people.edit")) ": " (p.full_name) }
        (person_form(lang, &ctx.csrf(), &format!("/people/{}", p.id), &[], &input_of(&p)))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "people.edit"), body))
}

pub async fn update(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Answer {
    let staff = ctx.username()?;
    let input = FormData::parse(&body).person();
    match state.app.update_person(&id, &input, &staff).await {
        Ok(p) => Ok(Redirect::to(&format!("/people/{}", p.id)).into_response()),
        Err(e) => form_error_page(&ctx, "people.edit", &format!("/people/{id}"), &input, e),
    }
}

pub async fn qr(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let p = state.app.person(&id)?;
    let link = state.app.personal_link(&p);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], layout::qr_svg(&link).into_string()).into_response())
}

pub async fn change_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let f = FormData::parse(&body);
    let status = validate::required("status", &f.get("status"), PersonStatus::parse)?;
    state.app.change_status(&id, status, &f.get("note"), &ctx.username()?).await?;
    Ok(Redirect::to(&format!("/people/{id}")).into_response())
}

pub async fn export(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let csv = state.app.people_csv(&ctx.username()?).await?;
    let name = format!("nguoi-cach-ly-{}.csv", state.app.today());
    Ok(download("text/csv; charset=utf-8", &name, csv))
}

#[derive(Deserialize, Default)]
pub struct PersonQuery {
    show_id: Option<String>,
    notice: Option<String>,
}

/// A person's record, with their ID number masked unless asked for (audited).
fn details(lang: Lang, p: &Person, show_id: bool) -> Markup {
    let yesno = |b: bool| if b { t(lang, "common.yes") } else { t(lang, "common.no") };
    html! {
        div.scroll { table { tbody {
            tr { th { (t(lang, "field.birth_year")) } td { (p.birth_year.map(|y| y.to_string()).unwrap_or_default()) } }
            tr { th { (t(lang, "field.gender")) } td { (td(lang, &format!("gender.{}", p.gender.as_str()))) } }
            tr { th { (t(lang, "field.phone")) } td { (p.phone) } }
            tr { th { (t(lang, "field.id_number")) } td {
                @if show_id { span #id-number { (p.id_number) } }
                @else { (masked(&p.id_number)) " " a href=(format!("/people/{}?show_id=1", p.id)) { (t(lang, "people.show_id")) } }
            } }
            tr { th { (t(lang, "field.address")) } td { (p.address) } }
            tr { th { (t(lang, "field.room")) } td { (p.room) } }
            tr { th { (t(lang, "field.quarantine_start")) } td { (p.quarantine_start.format("%d/%m/%Y")) " → " (p.quarantine_end.format("%d/%m/%Y")) } }
            tr { th { (t(lang, "field.decision_number")) } td { (p.decision_number) } }
            tr { th { (t(lang, "field.category")) } td { (td(lang, &format!("category.{}", p.category.as_str()))) } }
            tr { th { (t(lang, "field.flags")) } td {
                (t(lang, "field.worker")) ": " (yesno(p.worker)) " · " (t(lang, "field.child")) ": " (yesno(p.child)) " · "
                (t(lang, "field.pregnant")) ": " (yesno(p.pregnant)) " · " (t(lang, "field.foreigner")) ": " (yesno(p.foreigner))
            } }
        } } }
    }
}

/// What staff who may write do on a person's page: change the status, declare for them.
fn writer_forms(ctx: &Ctx, p: &Person) -> Markup {
    let (lang, csrf) = (ctx.lang, ctx.csrf());
    html! {
        h2 { (t(lang, "people.status_change")) }
        form.inline method="post" action=(format!("/people/{}/status", p.id)) {
            (csrf_field(&csrf))
            select name="status" { @for s in PersonStatus::ALL { option value=(s.as_str()) selected[s == p.status] { (td(lang, &format!("status.{}", s.as_str()))) } } }
            input name="note" placeholder=(t(lang, "field.note"));
            button type="submit" { (t(lang, "people.save")) }
        }
        h2 { (t(lang, "people.declare_for")) }
        form.stack method="post" action=(format!("/people/{}/declarations", p.id)) {
            (csrf_field(&csrf))
            (declaration_fields(lang, None))
            button type="submit" { (t(lang, "decl.submit")) }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<PersonQuery>,
) -> Answer {
    let lang = ctx.lang;
    let show_id = q.show_id.is_some();
    let p = match show_id {
        true => state.app.reveal_person(&id, &ctx.username()?, "").await?,
        false => state.app.person(&id)?,
    };
    let decls = state.app.declarations_of(&p.id)?;
    let alerts: Vec<_> = state.app.alerts_of(&p.id)?.into_iter().map(|a| (a, p.full_name.clone())).collect();
    let link = state.app.personal_link(&p);
    let band = state.app.band_of(&p.id)?;
    let testing = sampling::person_section(&state, &ctx, &p)?;
    let location = location::person_section(&state, &ctx, &p)?;
    let exposure = super::exposure::person_section(&state, &ctx, &p)?;
    let csrf = ctx.csrf();
    let body = html! {
        h1 { (p.full_name) " " (badge(lang, "", &format!("status.{}", p.status.as_str()))) }
        @if ctx.can_write() { p.inline {
            a.button.secondary href=(format!("/people/{}/edit", p.id)) { (t(lang, "people.edit")) }
            a.button.secondary href=(format!("/sms/new?p={}", p.id)) { (t(lang, "sms.new")) }
            a.button.secondary href=(format!("/people/{}/card", p.id)) { (t(lang, "people.card")) }
            form.inline method="post" action=(format!("/people/{}/send-link", p.id)) {
                (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "people.send_link")) }
            }
            form.inline method="post" action=(format!("/people/{}/spotcheck", p.id)) {
                (csrf_field(&csrf)) button.secondary type="submit" { (t(lang, "spot.request")) }
            }
        } }
        @if let Some(n) = &q.notice { p.notice { (n) } }
        (details(lang, &p, show_id))
        @if let Some(band) = &band {
            p #person-band { (t(lang, "people.band")) ": " a href=(format!("/bands/{}", band.id)) { (band.id) }
                " · " a href=(format!("/people/{}/presence", p.id)) { (t(lang, "presence.timeline")) } }
        }
        // The link opens the person's page and declares as them: for those who may act, not for
        // read-only managers.
        @if ctx.can_write() {
            h2 { (t(lang, "people.link")) }
            div.qr { img src=(format!("/people/{}/qr.svg", p.id)) alt="QR"; }
            p { a #personal-link href=(link) { (link) } }
            (writer_forms(&ctx, &p))
        }
        h2 { (t(lang, "strip.title")) }
        (super::strip::strip(&state, lang, &p, &decls))
        (testing)
        (location)
        (exposure)
        h2 { (t(lang, "people.alerts")) }
        @if alerts.is_empty() { p.muted { (t(lang, "dash.none")) } } @else {
            @if alerts.iter().any(|(a, _)| a.state == outpost_sync::record::AlertState::Open) { (super::alerts::bulk_form(&ctx)) }
            (alert_rows(&state, &ctx, &alerts))
        }
        h2 { (t(lang, "people.declarations")) }
        (declaration_rows(&state, lang, &decls))
        h2 { (t(lang, "field.status")) }
        ul.plain { @for s in &p.status_history {
            li { (state.fmt_time(s.at)) " · " (td(lang, &format!("status.{}", s.status.as_str()))) " · " (s.by) @if !s.note.is_empty() { " · " (s.note) } }
        } }
    };
    Ok(staff_page(&ctx, StatusCode::OK, &p.full_name, body))
}

/// A person's card to print: name, room, the QR code of their link, the declaration times and the
/// site's Wi-Fi.
pub async fn card(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let lang = ctx.lang;
    let p = state.app.person(&id)?;
    let link = state.app.personal_link(&p);
    let times: Vec<String> =
        state.app.schedule().times.iter().map(|t| t.format("%H:%M").to_string()).collect();
    let wifi = &state.app.config().site.wifi;
    let body = html! {
        div.poster #card {
            h1 { (t(lang, "card.title")) }
            p.lead { strong { (p.full_name) } @if !p.room.is_empty() { " · " (t(lang, "field.room")) " " (p.room) } }
            p { (t(lang, "card.scan")) }
            div.qr.big { (layout::qr_svg(&link)) }
            p { a href=(link) { (link) } }
            p { (t(lang, "card.times")) ": " strong { (times.join(" · ")) } }
            @if !wifi.is_empty() { p { (t(lang, "card.wifi")) ": " strong #card-wifi { (wifi) } } }
            p.no-print { button #print type="button" { (t(lang, "card.print")) } }
        }
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "card.title"), body))
}

/// Queues the SMS with a person's link, and says so on their page.
pub async fn send_link(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let lang = ctx.lang;
    let p = state.app.person(&id)?;
    state.app.send_link(&p, &ctx.username()?).await?;
    let notice = format!("{} {} ({})", t(lang, "people.link_sent"), p.full_name, p.phone);
    Ok(with_notice(&format!("/people/{id}"), &notice))
}

fn import_form(lang: Lang, csrf: &str) -> Markup {
    html! {
        p.muted { (t(lang, "import.help")) }
        form.stack method="post" action=(format!("/people/import?csrf={csrf}")) enctype="multipart/form-data" {
            label { (t(lang, "import.file")) input type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { (t(lang, "import.check")) }
        }
    }
}

pub async fn import_page(ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let body = html! {
        h1 { (t(lang, "import.title")) }
        (import_form(lang, &ctx.csrf()))
    };
    Ok(staff_page(&ctx, StatusCode::OK, t(lang, "import.title"), body))
}

pub async fn import(State(state): State<AppState>, ctx: Ctx, multipart: Multipart) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let bytes = upload(multipart).await?;
    let list = state.app.check_people_list(&bytes).map_err(|e| ApiError::Invalid(vec![e.0]))?;
    let title = t(lang, "import.title");
    if list.errors.is_empty() {
        let rows: Vec<_> = list.valid.into_iter().map(|(_, v)| v).collect();
        let n = state.app.import_people(&rows, &staff).await?;
        return Ok(with_notice("/people", &format!("{} {n}", t(lang, "import.done"))));
    }
    let id = outpost_sync::secret::random_token();
    let valid_count = list.valid.len();
    {
        let mut imports = state.imports.lock().unwrap_or_else(|e| e.into_inner());
        let now = state.app.now();
        imports.retain(|_, p| now - p.created < chrono::Duration::minutes(30));
        imports.insert(
            id.clone(),
            PendingImport {
                created: now,
                username: staff,
                valid: list.valid.into_iter().map(|(_, v)| v).collect(),
            },
        );
    }
    let csrf = ctx.csrf();
    let body = html! {
        h1 { (title) }
        div.problems role="alert" { (t(lang, "import.errors")) }
        div.scroll { table #import-errors {
            thead { tr { th { (t(lang, "import.row")) } th { (t(lang, "import.problem")) } } }
            tbody { @for e in &list.errors {
                tr { td { (e.line) } td { ul.plain { @for p in &e.problems { li { (p.text(lang)) } } } } }
            } }
        } }
        @if valid_count > 0 {
            form method="post" action=(format!("/people/import/{id}")) {
                (csrf_field(&csrf))
                button type="submit" { (t(lang, "import.valid_rows")) " (" (valid_count) ")" }
            }
        }
        h2 { (t(lang, "import.title")) }
        (import_form(lang, &csrf))
    };
    Ok(staff_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, title, body))
}

pub async fn import_valid(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let lang = ctx.lang;
    let staff = ctx.username()?;
    let pending = state.imports.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let Some(pending) = pending.filter(|p| p.username == staff) else {
        return Err(ApiError::invalid("", t(Lang::Vi, "import.expired"), t(Lang::En, "import.expired")));
    };
    // Rows may have been registered since the check: those are skipped.
    let n = state.app.import_still_new(pending.valid, &staff).await?;
    Ok(with_notice("/people", &format!("{} {n}", t(lang, "import.done"))))
}

// ----- API -----

#[derive(Deserialize, Default)]
pub struct ApiPeopleQuery {
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

pub async fn api_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ApiPeopleQuery>,
) -> Result<Json<Vec<PersonSummary>>, ApiError> {
    let status = validate::choice("status", q.status.as_deref(), PersonStatus::parse)?;
    let category = validate::choice("category", q.category.as_deref(), Category::parse)?;
    let list = state.app.search_people(&q.q, status, category, &ctx.username()?).await?;
    Ok(Json(
        list.into_iter()
            .map(|p| PersonSummary {
                id_number_masked: masked(&p.id_number),
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

pub async fn api_person(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Person>, ApiError> {
    let mut person = state.app.reveal_person(&id, &ctx.username()?, "api").await?;
    if !ctx.can_write() {
        // A read-only manager gets no personal link: it would let them declare as the person.
        person.declare_token.clear();
    }
    Ok(Json(person))
}

pub async fn api_create(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(input): JsonBody<PersonInput>,
) -> Answer {
    let p = state.app.create_person(&input, &ctx.username()?).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

pub async fn api_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<PersonInput>,
) -> Result<Json<Person>, ApiError> {
    Ok(Json(state.app.update_person(&id, &input, &ctx.username()?).await?))
}

#[derive(Deserialize)]
pub struct StatusInput {
    status: String,
    #[serde(default)]
    note: String,
}

pub async fn api_change_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StatusInput>,
) -> Result<Json<Person>, ApiError> {
    let status = validate::required("status", &input.status, PersonStatus::parse)?;
    Ok(Json(state.app.change_status(&id, status, &input.note, &ctx.username()?).await?))
}

#[derive(Deserialize, Default)]
pub struct ImportQuery {
    #[serde(default)]
    valid_only: bool,
}

/// Imports a CSV list sent as the request body. With errors, nothing is imported unless
/// `?valid_only=true`; the answer lists every bad row either way.
pub async fn api_import(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Answer {
    let staff = ctx.username()?;
    let list = state.app.check_people_list(&body).map_err(|e| ApiError::Invalid(vec![e.0]))?;
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
