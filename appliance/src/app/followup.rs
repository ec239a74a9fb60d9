//! The daily follow-up sheet [M9]: one row per person per day, replacing the Google Sheet the sites
//! used. The figures (declarations on time, highest temperature, symptoms) are computed from the
//! declarations when read; the staff-kept columns (presence, tests, notes) are a [`outpost_sync::record::FollowUp`] record.

use chrono::{DateTime, NaiveDate, Utc};
use outpost_sync::{
    record::{FollowUp, Person, Symptom, TestResult},
    WriteSet,
};

use super::{AppResult, Outpost};
use crate::base::{
    i18n::{span, td, Lang},
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
    /// What the box knows of the day itself: the band's presence and the samplings.
    pub known: Known,
}

/// What the box knows of a person's day without staff typing it [M9]: minutes present and away by
/// the band (none without one), and the samplings of the day with their results.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Known {
    pub present_minutes: Option<i64>,
    pub away_minutes: i64,
    pub samples: Vec<(u32, TestResult)>,
}

impl Known {
    /// The presence column as words: `Có mặt 13 giờ 20 phút · rời khu 25 phút`.
    pub fn presence_text(&self, lang: Lang) -> String {
        let Some(present) = self.present_minutes else { return String::new() };
        let mut text = format!(
            "{} {}",
            td(lang, "followup.known_present"),
            span(lang, present * 60).trim_start_matches('+')
        );
        if self.away_minutes > 0 {
            text.push_str(&format!(
                " · {} {}",
                td(lang, "followup.known_away"),
                span(lang, self.away_minutes * 60).trim_start_matches('+')
            ));
        }
        text
    }

    /// The tests column as words: `Lần 2: Âm tính`.
    pub fn tests_text(&self, lang: Lang) -> String {
        let each = self.samples.iter().map(|(round, result)| {
            format!("{} {round}: {}", td(lang, "test.round"), td(lang, &format!("test.{}", result.as_str())))
        });
        each.collect::<Vec<_>>().join(" · ")
    }
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
            let known = self.known_of(&p, date, now)?;
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
                known,
            });
        }
        Ok(rows)
    }

    /// What the box knows of `person`'s `date`: presence by the band, samplings.
    fn known_of(&self, person: &Person, date: NaiveDate, now: DateTime<Utc>) -> AppResult<Known> {
        let mut known = Known::default();
        if let Some(day) = self.presence_day(&person.id, date)? {
            let mut present = 0;
            for (from, interval) in &day.intervals {
                let Ok(from) = DateTime::parse_from_rfc3339(from) else { continue };
                let minutes = (interval.to.unwrap_or(now) - from.to_utc()).num_minutes().max(0);
                match interval.state.as_str() {
                    "present" => present += minutes,
                    "away" => known.away_minutes += minutes,
                    _ => {}
                }
            }
            known.present_minutes = Some(present);
        }
        known.samples = self
            .samples_of(&person.id)?
            .into_iter()
            .filter(|s| s.sampled_on == date)
            .map(|s| (s.round, s.result))
            .collect();
        Ok(known)
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
            // What staff typed, or else what the box knows.
            if r.presence.is_empty() { r.known.presence_text(Lang::Vi) } else { r.presence.clone() },
            if r.tests.is_empty() { r.known.tests_text(Lang::Vi) } else { r.tests.clone() },
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
            known: Known::default(),
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

#[cfg(test)]
mod known_tests {
    use chrono::Duration;
    use outpost_sync::record::{PresenceDay, PresenceInterval, TestResult};

    use crate::{app::testing, base::i18n::Lang, demo::person_input};

    /// The sheet says, without staff typing it, how long the band was present and away, and the
    /// day's samplings with their results.
    #[tokio::test]
    async fn the_sheet_is_filled_from_presence_and_tests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, _, store) = testing::outpost(&dir, "2026-11-21T10:00:00Z", "");
        let today = app.today();
        let person = app.create_person(&person_input(1, today), "lan").await.expect("person");
        app.record_sample(&person.id, None, "lan").await.expect("sample");
        app.record_result(&person.id, 1, TestResult::Negative, "lan").await.expect("result");
        let at = |h: i64, m: i64| app.now() - Duration::hours(h) - Duration::minutes(m);
        let interval = |state: &str, to| PresenceInterval { state: state.into(), place: "A01".into(), to };
        let day = PresenceDay {
            person_id: person.id.clone(),
            date: today,
            band: "C2:00:00:00:00:01".into(),
            intervals: [
                (at(3, 0).to_rfc3339(), interval("present", Some(at(1, 0)))),
                (at(1, 0).to_rfc3339(), interval("away", Some(at(0, 35)))),
                (at(0, 35).to_rfc3339(), interval("present", None)),
            ]
            .into_iter()
            .collect(),
        };
        let mut w = outpost_sync::WriteSet::new();
        w.put(&day).expect("put");
        store.commit(w).await.expect("commit");

        let rows = app.follow_up_sheet(today).expect("sheet");
        let row = rows.iter().find(|r| r.person_id == person.id).expect("the person's row");
        assert_eq!((row.known.present_minutes, row.known.away_minutes), (Some(155), 25));
        assert_eq!(row.known.presence_text(Lang::Vi), "Có mặt 2 giờ 35 phút · rời khu 25 phút");
        assert_eq!(row.known.tests_text(Lang::Vi), "Lần lấy mẫu 1: Âm tính");
        // The export carries it where staff typed nothing.
        let csv = String::from_utf8(super::export(&rows, today)).expect("utf-8");
        assert!(csv.contains("Có mặt 2 giờ 35 phút · rời khu 25 phút"), "{csv}");
    }
}
