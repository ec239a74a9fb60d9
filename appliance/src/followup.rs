//! The daily follow-up sheet [M9]: one row per person per day, replacing the Google Sheet the sites
//! used. The figures (declarations on time, highest temperature, symptoms) are computed from the
//! declarations when read; the staff-kept columns (presence, tests, notes) are a [`outpost_sync::record::FollowUp`] record.

use chrono::NaiveDate;
use outpost_sync::record::{Person, Symptom};

use crate::app::{AppResult, Outpost};

/// One row of the sheet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub person_id: String,
    pub full_name: String,
    pub room: String,
    /// Declarations owed that day so far (rounds that have come and that the person had to answer).
    pub owed: usize,
    pub on_time: usize,
    pub declared: usize,
    pub max_temperature: Option<f64>,
    pub symptoms: Vec<Symptom>,
    pub presence: String,
    pub tests: String,
    pub notes: String,
}

/// The sheet for `date`: everyone whose quarantine covers that day.
pub fn sheet(app: &Outpost, date: NaiveDate) -> AppResult<Vec<Row>> {
    let now = app.now();
    let mut rows = Vec::new();
    let mut people: Vec<Person> = app
        .store
        .list::<Person>()?
        .into_iter()
        .filter(|p| p.quarantine_start <= date && date <= p.quarantine_end)
        .collect();
    people.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.full_name.cmp(&b.full_name)));
    for p in people {
        let owed = app
            .schedule
            .times
            .iter()
            .map(|t| date.and_time(*t))
            .filter(|slot| app.schedule.utc(*slot) <= now && app.schedule.owes(&p, *slot))
            .count();
        let decls: Vec<_> =
            app.declarations_of(&p.id)?.into_iter().filter(|d| d.slot.date() == date).collect();
        let mut symptoms: Vec<Symptom> = decls.iter().flat_map(|d| d.symptoms.iter().copied()).collect();
        symptoms.sort();
        symptoms.dedup();
        let f = app.follow_up(&p.id, date)?;
        rows.push(Row {
            person_id: p.id.clone(),
            full_name: p.full_name.clone(),
            room: p.room.clone(),
            owed,
            on_time: decls.iter().filter(|d| d.on_time).count(),
            declared: decls.len(),
            max_temperature: decls.iter().map(|d| d.temperature).reduce(f64::max),
            symptoms,
            presence: f.as_ref().map(|f| f.presence.clone()).unwrap_or_default(),
            tests: f.as_ref().map(|f| f.tests.clone()).unwrap_or_default(),
            notes: f.map(|f| f.notes).unwrap_or_default(),
        });
    }
    Ok(rows)
}

/// The sheet as CSV for Excel (UTF-8 with BOM, CRLF), Vietnamese headers.
pub fn export(rows: &[Row], date: NaiveDate) -> Vec<u8> {
    let mut w = crate::csvio::excel_writer();
    let _ = w.write_record([
        "Ngày",
        "Họ và tên",
        "Phòng",
        "Số lần phải khai báo",
        "Khai báo đúng giờ",
        "Đã khai báo",
        "Nhiệt độ cao nhất",
        "Triệu chứng",
        "Có mặt",
        "Xét nghiệm",
        "Ghi chú",
    ]);
    for r in rows {
        let symptoms: Vec<String> = r
            .symptoms
            .iter()
            .map(|s| crate::i18n::td(crate::i18n::Lang::Vi, &format!("sym.{}", s.as_str())))
            .collect();
        let _ = w.write_record([
            date.format("%d/%m/%Y").to_string(),
            r.full_name.clone(),
            r.room.clone(),
            r.owed.to_string(),
            r.on_time.to_string(),
            r.declared.to_string(),
            r.max_temperature.map(|t| format!("{t:.1}")).unwrap_or_default(),
            symptoms.join(", "),
            r.presence.clone(),
            r.tests.clone(),
            r.notes.clone(),
        ]);
    }
    crate::csvio::excel_bytes(w)
}
