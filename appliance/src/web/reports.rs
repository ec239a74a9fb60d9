//! The zone daily report [M11]: the day's figures with the Dong Nai form's names, the zone manager's
//! confirmation, CSV and .xlsx exports, and a chart of the last 30 days (server-drawn SVG: no script,
//! no chart library, works offline).

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
    Json,
};
use chrono::NaiveDate;
use maud::{html, Markup, PreEscaped};
use outpost_sync::{
    record::ZoneReport,
    report::{self, Cell, ZoneDay},
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    error::ApiError,
    kit::{download, staff_page, xlsx_download, Answer, ApiResult, AppState, Ctx},
    layout::csrf_field,
};
use crate::{
    app::{csv, reports::DayPoint, AppError},
    base::i18n::{t, td, Lang},
};

/// Days in the chart.
const CHART_DAYS: u32 = 30;

#[derive(Deserialize, Default)]
pub struct DayQuery {
    #[serde(default)]
    date: Option<String>,
}

/// The figures, read off the async runtime.
async fn figures(state: &AppState, date: NaiveDate) -> Result<(ZoneDay, Option<ZoneReport>), AppError> {
    let app = state.app.clone();
    tokio::task::spawn_blocking(move || Ok((app.zone_day(date)?, app.confirmed_report(date)?)))
        .await
        .map_err(|_| AppError::Store(outpost_sync::StoreError::Closed))?
}

fn rows(site: &str, d: &ZoneDay) -> Vec<(&'static str, Cell)> {
    report::COLUMNS.iter().copied().zip(d.cells(site)).collect()
}

pub async fn page_of_day(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DayQuery>) -> Answer {
    let lang = ctx.lang;
    let date = state.date_param(q.date.as_deref())?;
    let app = state.app.clone();
    let (day, confirmed, series) = tokio::task::spawn_blocking(move || app.report_page(date, CHART_DAYS))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let site = state.app.config().site.id.clone();
    let may_confirm = ctx.staff.as_ref().is_some_and(|s| s.role.can_confirm_report());
    let changed = confirmed.as_ref().is_some_and(|c| c.figures != day);
    let csrf = ctx.csrf();
    let title = format!("{} {}", t(lang, "report.title"), date.format("%d/%m/%Y"));
    let body = html! {
        h1 { (title) }
        form.inline method="get" action="/reports" {
            input name="date" value=(date.format("%d/%m/%Y")) size="12";
            button.secondary type="submit" { (t(lang, "report.show")) }
            a.button.secondary href=(format!("/reports/{date}/export.csv")) { "CSV" }
            a.button.secondary #xlsx href=(format!("/reports/{date}/export.xlsx")) { "Excel (.xlsx)" }
        }
        p #report-state {
            @match &confirmed {
                Some(c) => {
                    span.badge.ok { (t(lang, "report.confirmed")) } " " (c.confirmed_by) " · " (state.fmt_time(c.confirmed_at))
                    @if changed { " " span.badge.warning #report-changed { (t(lang, "report.changed")) } }
                },
                None => span.badge.warning { (t(lang, "report.unconfirmed")) },
            }
        }
        div.scroll { table #report { tbody {
            @for (name, cell) in rows(&site, &day) {
                tr { th { (name) } td { (cell) } }
            }
        } } }
        @if may_confirm && (confirmed.is_none() || changed) && date <= state.app.today() {
            form method="post" action=(format!("/reports/{date}/confirm")) {
                (csrf_field(&csrf))
                button type="submit" #confirm { (t(lang, "report.confirm")) }
            }
        }
        h2 { (t(lang, "report.chart")) }
        figure #report-chart { (chart(lang, &series)) }
        (legend(lang))
    };
    Ok(staff_page(&ctx, StatusCode::OK, &title, body))
}

/// (The form's body is read, though nothing in it is needed: a request body left unread makes the
/// server close a kept-alive connection under the client's next request.)
pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(date): Path<NaiveDate>,
    _body: axum::body::Bytes,
) -> Answer {
    let staff = ctx.username()?;
    state.app.confirm_report(date, &staff).await?;
    Ok(Redirect::to(&format!("/reports?date={date}")).into_response())
}

/// The day's report as a sheet: the header row and the site's row.
async fn sheet(state: &AppState, date: NaiveDate) -> Result<Vec<Vec<Cell>>, AppError> {
    let (day, _) = figures(state, date).await?;
    let mut header = vec![Cell::Text("Ngày".into())];
    header.extend(report::COLUMNS.iter().map(|c| Cell::Text((*c).to_owned())));
    let mut row = vec![Cell::Date(date)];
    row.extend(day.cells(&state.app.config().site.id));
    Ok(vec![header, row])
}

pub async fn export_csv(State(state): State<AppState>, Path(date): Path<NaiveDate>) -> Answer {
    let rows = sheet(&state, date).await?;
    let mut w = csv::ExcelCsv::default();
    for row in &rows {
        w.row(row.iter().map(ToString::to_string));
    }
    let body = w.into_bytes();
    Ok(download("text/csv; charset=utf-8", &format!("bao-cao-khu-cach-ly-{date}.csv"), body))
}

pub async fn export_xlsx(State(state): State<AppState>, ctx: Ctx, Path(date): Path<NaiveDate>) -> Answer {
    let rows = sheet(&state, date).await?;
    xlsx_download(&state, &ctx, ("Báo cáo", &format!("bao-cao-khu-cach-ly-{date}.xlsx")), &rows)
}

// ----- the chart -----

const SERIES: [(&str, &str); 4] = [
    ("report.in_quarantine", "#1f5fa8"),
    ("report.admitted", "#2e8b57"),
    ("report.released", "#8a6d00"),
    ("report.converted", "#c0392b"),
];
const ON_TIME_COLOUR: &str = "#9aa5b1";

fn values(p: &DayPoint) -> [usize; 4] {
    [p.in_quarantine, p.admitted, p.released, p.converted_f0]
}

/// Counts as lines on the left scale, declarations on time as bars on a 0–100 % right scale.
fn chart(lang: Lang, series: &[DayPoint]) -> Markup {
    let (w, h, left, right, top, bottom) = (640.0, 240.0, 40.0, 40.0, 10.0, 30.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = series.iter().flat_map(values).max().unwrap_or(0).max(1) as f64;
    let n = series.len().max(1) as f64;
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / n;
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        t(lang, "report.chart")
    );
    let bar = plot_w / n * 0.6;
    for (i, p) in series.iter().enumerate() {
        if let Some(pct) = p.on_time_percent {
            let bh = plot_h * pct / 100.0;
            svg.push_str(&format!(
                r#"<rect class="on-time" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="{ON_TIME_COLOUR}" opacity="0.5"><title>{} {:.0} %</title></rect>"#,
                x(i) - bar / 2.0,
                top + plot_h - bh,
                p.date.format("%d/%m"),
                pct
            ));
        }
    }
    for (k, (_, colour)) in SERIES.iter().enumerate() {
        let points: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(values(p)[k] as f64)))
            .collect();
        svg.push_str(&format!(
            r#"<polyline class="series-{k}" fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        ));
    }
    svg.push_str(&format!(
        r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#444"/><text x="{2}" y="{3}" font-size="11" text-anchor="end">{max}</text><text x="{2}" y="{0}" font-size="11" text-anchor="end">0</text><text x="{4}" y="{3}" font-size="11">100 %</text>"##,
        top + plot_h,
        left + plot_w,
        left - 4.0,
        top + 10.0,
        left + plot_w + 4.0,
    ));
    for (i, p) in series.iter().enumerate().filter(|(i, _)| i % 5 == 0 || *i + 1 == series.len()) {
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            x(i),
            h - 10.0,
            p.date.format("%d/%m")
        ));
    }
    svg.push_str("</svg>");
    PreEscaped(svg)
}

fn legend(lang: Lang) -> Markup {
    html! {
        ul.legend {
            // Colours by class (the page's policy allows no inline style), the same as the lines'.
            @for (i, (key, _)) in SERIES.iter().enumerate() { li { span class=(format!("swatch series-{i}")) {} (td(lang, key)) } }
            li { span.swatch.series-on-time {} (t(lang, "report.on_time")) }
        }
    }
}

// ----- API -----

pub async fn api_day(State(state): State<AppState>, Path(date): Path<NaiveDate>) -> ApiResult<Json<Value>> {
    let (figures, confirmed) = figures(&state, date).await?;
    Ok(Json(json!({"figures": figures, "confirmed": confirmed})))
}

pub async fn api_confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(date): Path<NaiveDate>,
    _body: axum::body::Bytes,
) -> ApiResult<Json<ZoneReport>> {
    Ok(Json(state.app.confirm_report(date, &ctx.username()?).await?))
}

pub async fn api_series(
    State(state): State<AppState>,
    Query(q): Query<DayQuery>,
) -> ApiResult<Json<Vec<DayPoint>>> {
    let last = state.date_param(q.date.as_deref())?;
    let app = state.app.clone();
    let series = tokio::task::spawn_blocking(move || app.report_series(last, CHART_DAYS))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(series))
}

#[cfg(test)]
mod tests {
    /// The legend's colours are the stylesheet's (no inline style: the page's policy blocks it) and
    /// the same as the chart's lines.
    #[test]
    fn the_legend_has_the_charts_colours() {
        for (i, (_, colour)) in super::SERIES.iter().enumerate() {
            let rule = format!(".swatch.series-{i} {{ background:{colour}; }}");
            assert!(crate::web::layout::CSS.contains(&rule), "{rule}");
        }
        let rule = format!(".swatch.series-on-time {{ background:{}; }}", super::ON_TIME_COLOUR);
        assert!(crate::web::layout::CSS.contains(&rule), "{rule}");
        let legend = super::legend(crate::base::i18n::Lang::Vi).into_string();
        assert!(!legend.contains("style="), "{legend}");
    }
}
