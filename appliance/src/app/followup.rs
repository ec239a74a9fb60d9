//! The daily follow-up sheet [M9]: one row per person per day, replacing the Google Sheet the sites
//! used. The figures (declarations on time, highest temperature, symptoms) are computed from the
//! declarations when read; the staff-kept columns (presence, tests, notes) are a [`outpost_sync::record::FollowUp`] record.

use chrono::NaiveDate;
use outpost_sync::{
    record::{FollowUp, Person, Symptom},
    WriteSet,
};

use super::{AppResult, Outpost};
use crate::base::{
    i18n::{td, Lang},
    validate,
};

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

impl Outpost {
    pub fn follow_up(&self, person_id: &str, date: NaiveDate) -> AppResult<Option<FollowUp>> {
        Ok(self.store.get::<FollowUp>(&FollowUp::make_id(person_id, date))?)
    }

    pub async fn save_follow_up(
        &self,
        person_id: &str,
        date: NaiveDate,
        presence: &str,
        tests: &str,
        notes: &str,
        by: &str,
    ) -> AppResult<FollowUp> {
        self.person(person_id)?;
        let f = FollowUp {
            person_id: person_id.to_owned(),
            date,
            presence: validate::clip(presence, 500),
            tests: validate::clip(tests, 500),
            notes: validate::clip(notes, 2000),
            updated_by: by.to_owned(),
            updated_at: self.now(),
        };
        let mut w = WriteSet::new();
        w.put(&f)?;
        self.audit(&mut w, by, "followup.save", person_id, &date.to_string())?;
        self.commit(w).await?;
        Ok(f)
    }

    /// The sheet for `date`: everyone whose quarantine covers that day.
    pub fn follow_up_sheet(&self, date: NaiveDate) -> AppResult<Vec<Row>> {
        let now = self.now();
        let mut rows = Vec::new();
        let schedule = self.schedule();
        let mut people: Vec<Person> = self
            .store
            .list::<Person>()?
            .into_iter()
            .filter(|p| p.quarantine_start <= date && date <= p.quarantine_end)
            .collect();
        people.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.full_name.cmp(&b.full_name)));
        for p in people {
            let owed = schedule
                .times
                .iter()
                .map(|t| date.and_time(*t))
                .filter(|slot| schedule.utc(*slot) <= now && schedule.owes(&p, *slot))
                .count();
            let decls: Vec<_> =
                self.declarations_of(&p.id)?.into_iter().filter(|d| d.slot.date() == date).collect();
            let mut symptoms: Vec<Symptom> = decls.iter().flat_map(|d| d.symptoms.iter().copied()).collect();
            symptoms.sort();
            symptoms.dedup();
            let f = self.follow_up(&p.id, date)?;
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

    /// Erasure [M13]: blanks the staff-kept columns of `person_id`'s sheets, as new documents.
    pub(super) fn erase_follow_ups(&self, w: &mut WriteSet, person_id: &str) -> AppResult<()> {
        let suffix = format!("|{person_id}");
        for (_, id) in
            self.store.index_scan(FollowUp::BY_DATE, "")?.into_iter().filter(|(v, _)| v.ends_with(&suffix))
        {
            if let Some(mut f) = self.store.get::<FollowUp>(&id)? {
                f.presence.clear();
                f.tests.clear();
                f.notes.clear();
                w.replace(&f)?;
            }
        }
        Ok(())
    }
}

/// The sheet as CSV for Excel (UTF-8 with BOM, CRLF), Vietnamese headers.
pub fn export(rows: &[Row], date: NaiveDate) -> Vec<u8> {
    let mut w = super::csv::ExcelCsv::default();
    w.row([
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
        let symptoms: Vec<String> =
            r.symptoms.iter().map(|s| td(Lang::Vi, &format!("sym.{}", s.as_str()))).collect();
        w.row([
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
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_writes_typed_text_never_as_a_formula() {
        let row = Row {
            person_id: "p-1".into(),
            full_name: "-cmd|' /C calc'!A0".into(),
            room: "@SUM(A1)".into(),
            owed: 2,
            on_time: 1,
            declared: 2,
            max_temperature: Some(37.5),
            symptoms: Vec::new(),
            presence: String::new(),
            tests: "+1".into(),
            notes: "=HYPERLINK(\"http://evil.example\",\"xem\")".into(),
        };
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).expect("date");
        let csv = String::from_utf8(export(&[row], date)).expect("utf-8");
        let line = csv.lines().nth(1).expect("the row");
        for cell in [
            "'-cmd|' /C calc'!A0",
            "'@SUM(A1)",
            "'+1",
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"xem\"\")\"",
        ] {
            assert!(line.contains(cell), "{cell} in {line}");
        }
        assert!(line.contains(",37.5,"), "numbers stay numbers: {line}");
    }
}
