//! Testing [M10]: sampling rounds (lần lấy mẫu 1, 2, 3, …) per person and their results.
//!
//! Staff record a sampling by scanning the person's code or typing their ID number; results are
//! entered one by one or imported from the laboratory's list. Every result is queued as an SMS to the
//! person in the same write that records it (the source requires it reaches them within the hour). A
//! positive result also starts the F1 → F0 workflow in that write: a severe alert (which goes to the
//! on-duty phones), the status "Chuyển F0"; staff then record the transfer to hospital, which takes
//! the band back.

use chrono::NaiveDate;
use outpost_sync::{
    record::{Alert, AlertKind, Person, PersonStatus, Sample, Severity, StatusChange, TestResult},
    WriteSet,
};

use super::{
    csv::{self, FileError, RowError},
    outbox::Purpose,
    people::require_watched,
    AppError, AppResult, Outpost,
};
use crate::base::{
    i18n,
    validate::{self, fold, Problem},
};

/// The highest round a sampling may have.
pub const MAX_ROUND: u32 = 20;

/// One row of a laboratory's list, checked against the site's people.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub line: usize,
    pub person_id: String,
    pub round: u32,
    pub result: TestResult,
    /// When the list gives it; otherwise the sampling recorded at the site, or today.
    pub sampled_on: Option<NaiveDate>,
}

/// A laboratory's list, parsed: the rows to apply (those already recorded with the same result are
/// left out: importing a list twice changes nothing) and the bad rows.
#[derive(Debug, Clone, Default)]
pub struct ParsedResults {
    pub rows: Vec<ResultRow>,
    pub unchanged: usize,
    pub errors: Vec<RowError>,
}

/// A result as staff and laboratories write it: `Âm tính`, `âm`, `negative`, `-`; `Dương tính`, …
pub fn parse_result(raw: &str) -> Option<TestResult> {
    match fold(raw).as_str() {
        "am tinh" | "am" | "negative" | "neg" | "-" | "(-)" => Some(TestResult::Negative),
        "duong tinh" | "duong" | "positive" | "pos" | "+" | "(+)" => Some(TestResult::Positive),
        _ => None,
    }
}

fn problem(field: &str, vi: impl Into<String>, en: impl Into<String>) -> AppError {
    AppError::Invalid(vec![Problem::new(field, vi, en)])
}

impl Outpost {
    /// The person's samplings, by round.
    pub fn samples_of(&self, person_id: &str) -> AppResult<Vec<Sample>> {
        Ok(self.store.find_prefix::<Sample>(Sample::BY_PERSON, &format!("{person_id}|"))?)
    }

    /// The samplings of the site's day `date`.
    pub fn samples_on(&self, date: NaiveDate) -> AppResult<Vec<Sample>> {
        Ok(self.store.find_prefix::<Sample>(Sample::BY_DAY, &format!("{date}|"))?)
    }

    /// Records that `person_id` was sampled today in `round` (the round after their last if `None`).
    pub async fn record_sample(&self, person_id: &str, round: Option<u32>, by: &str) -> AppResult<Sample> {
        let _turn = self.sampling_turn.lock().await;
        let person = self.person(person_id)?;
        require_watched(&person)?;
        let taken = self.samples_of(person_id)?;
        // A person scanned twice at the desk (a second tap, the queue passing again) is not a new
        // round: the next round the same day is recorded only when staff name it.
        if let (None, Some(today)) = (round, taken.iter().find(|s| s.sampled_on == self.today())) {
            let at = self.schedule().local(today.sampled_at).format("%H:%M");
            return Err(AppError::Conflict(Problem::new(
                "round",
                format!(
                    "Người này đã được lấy mẫu hôm nay (lần {}, lúc {at}). Nếu đúng là một lần mới, hãy ghi rõ lần lấy mẫu.",
                    today.round
                ),
                format!(
                    "This person was already sampled today (round {}, at {at}). If this is a new round, give its number.",
                    today.round
                ),
            )));
        }
        let round = match round {
            Some(r) => r,
            None => taken.iter().map(|s| s.round).max().unwrap_or(0) + 1,
        };
        if !(1..=MAX_ROUND).contains(&round) {
            return Err(problem(
                "round",
                format!("Lần lấy mẫu phải từ 1 đến {MAX_ROUND}."),
                format!("The round must be 1 to {MAX_ROUND}."),
            ));
        }
        if taken.iter().any(|s| s.round == round) {
            return Err(AppError::Conflict(Problem::new(
                "round",
                format!("Người này đã được lấy mẫu lần {round}."),
                format!("This person was already sampled in round {round}."),
            )));
        }
        let now = self.now();
        let sample = Sample {
            person_id: person.id.clone(),
            round,
            sampled_on: self.today(),
            sampled_at: now,
            sampled_by: by.to_owned(),
            result: TestResult::Pending,
            result_at: None,
            result_by: None,
        };
        let mut w = WriteSet::new();
        w.put(&sample)?;
        self.audit(&mut w, by, "sample.record", &person.id, &round.to_string())?;
        self.commit(w).await?;
        self.emit("person", &person.id);
        Ok(sample)
    }

    /// Records the result of `person_id`'s round `round`. The same result again changes nothing; a
    /// different one is refused (a laboratory's correction is a new round).
    pub async fn record_result(
        &self,
        person_id: &str,
        round: u32,
        result: TestResult,
        by: &str,
    ) -> AppResult<Sample> {
        let _turn = self.sampling_turn.lock().await;
        let mut sample =
            self.store.get::<Sample>(&Sample::make_id(person_id, round))?.ok_or(AppError::NotFound)?;
        if sample.result == result {
            return Ok(sample);
        }
        if sample.result != TestResult::Pending || result == TestResult::Pending {
            return Err(AppError::Conflict(already(&sample)));
        }
        let mut person = self.person(person_id)?;
        let mut w = WriteSet::new();
        let alert = self.stage_result(&mut w, &mut person, &mut sample, result, by)?;
        self.audit(&mut w, by, "sample.result", person_id, result.as_str())?;
        self.commit(w).await?;
        self.after_results(&[&person.id], alert.as_slice());
        self.exposures_after(alert.as_slice()).await;
        Ok(sample)
    }

    /// Checks a laboratory's list (CSV) against the site's samplings; nothing is stored.
    pub fn parse_results(&self, bytes: &[u8]) -> Result<ParsedResults, FileError> {
        let (headers, mut reader) = csv::open_table(bytes)?;
        let column = |names: &[&str]| headers.iter().position(|h| names.contains(&fold(h).as_str()));
        let id_col =
            column(&["so cmnd/cccd", "cmnd/cccd", "so cmnd", "so cccd", "cmnd", "cccd", "id number"]);
        let round_col = column(&["lan lay mau", "lan", "round"]);
        let result_col = column(&["ket qua", "ket qua xet nghiem", "result"]);
        let date_col = column(&["ngay lay mau", "sampled on", "date"]);
        let (Some(id_col), Some(round_col), Some(result_col)) = (id_col, round_col, result_col) else {
            return Err(FileError(Problem::new(
                "file",
                "Danh sách phải có các cột: Số CMND/CCCD, Lần lấy mẫu, Kết quả (và có thể Ngày lấy mẫu).",
                "The list needs the columns Số CMND/CCCD, Lần lấy mẫu, Kết quả (and may have Ngày lấy mẫu).",
            )));
        };
        let mut out = ParsedResults::default();
        let mut seen: std::collections::HashMap<(String, u32), usize> = std::collections::HashMap::new();
        for (n, record) in reader.records().enumerate() {
            if n >= csv::MAX_ROWS {
                return Err(csv::too_many_rows());
            }
            let line = n + 2;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    out.errors.push(csv::unreadable(line, &e));
                    continue;
                }
            };
            if record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let cell = |i: usize| record.get(i).unwrap_or("").trim();
            let mut problems = Vec::new();
            let person =
                match self.store.find::<Person>(Person::BY_ID_NUMBER, &validate::id_number_key(cell(id_col)))
                {
                    Ok(found) => found.into_iter().next(),
                    Err(e) => {
                        tracing::error!(error = %e, "The store failed while checking a result list.");
                        None
                    }
                };
            if person.is_none() {
                problems.push(Problem::new(
                    "id_number",
                    "Không có người với số CMND/CCCD này ở khu.",
                    "No one at this site has this ID number.",
                ));
            }
            let round = cell(round_col).parse::<u32>().ok().filter(|r| (1..=MAX_ROUND).contains(r));
            if round.is_none() {
                problems.push(Problem::new(
                    "round",
                    format!("Lần lấy mẫu phải là số từ 1 đến {MAX_ROUND}."),
                    format!("The round must be a number from 1 to {MAX_ROUND}."),
                ));
            }
            let result = parse_result(cell(result_col));
            if result.is_none() {
                problems.push(Problem::new(
                    "result",
                    "Kết quả phải là “Âm tính” hoặc “Dương tính”.",
                    "The result must be “Âm tính” (negative) or “Dương tính” (positive).",
                ));
            }
            let sampled_on = match date_col.map(cell).filter(|d| !d.is_empty()) {
                None => None,
                Some(raw) => match validate::parse_date(raw) {
                    Some(d) if d <= self.today() => Some(d),
                    _ => {
                        problems.push(Problem::new(
                            "sampled_on",
                            "Ngày lấy mẫu không hợp lệ (dd/mm/yyyy, không sau hôm nay).",
                            "The sampling date is not valid (dd/mm/yyyy, not after today).",
                        ));
                        None
                    }
                },
            };
            let (Some(person), Some(round), Some(result), true) =
                (person, round, result, problems.is_empty())
            else {
                out.errors.push(RowError { line, problems });
                continue;
            };
            if let Some(first) = seen.get(&(person.id.clone(), round)) {
                out.errors.push(RowError {
                    line,
                    problems: vec![Problem::new(
                        "row",
                        format!("Trùng với dòng {first} (cùng người, cùng lần lấy mẫu)."),
                        format!("Repeats line {first} (the same person and round)."),
                    )],
                });
                continue;
            }
            seen.insert((person.id.clone(), round), line);
            match self.store.get::<Sample>(&Sample::make_id(&person.id, round)) {
                Ok(Some(s)) if s.result == result => out.unchanged += 1,
                Ok(Some(s)) if s.result != TestResult::Pending => {
                    out.errors.push(RowError { line, problems: vec![already(&s)] })
                }
                _ => {
                    out.rows.push(ResultRow { line, person_id: person.id.clone(), round, result, sampled_on })
                }
            }
        }
        if out.rows.is_empty() && out.errors.is_empty() && out.unchanged == 0 {
            return Err(csv::no_rows());
        }
        Ok(out)
    }

    /// Applies checked rows of a laboratory's list in one write: a sampling not recorded at the site
    /// is recorded with the list's date (or today).
    pub async fn import_results(&self, rows: &[ResultRow], by: &str) -> AppResult<usize> {
        let _turn = self.sampling_turn.lock().await;
        let now = self.now();
        let mut w = WriteSet::new();
        let mut people: Vec<Person> = Vec::new();
        let mut alerts = Vec::new();
        for row in rows {
            let at = match people.iter().position(|p| p.id == row.person_id) {
                Some(i) => i,
                None => {
                    people.push(self.person(&row.person_id)?);
                    people.len() - 1
                }
            };
            let mut sample = self
                .store
                .get::<Sample>(&Sample::make_id(&row.person_id, row.round))?
                .unwrap_or_else(|| Sample {
                    person_id: row.person_id.clone(),
                    round: row.round,
                    sampled_on: row.sampled_on.unwrap_or_else(|| self.today()),
                    sampled_at: now,
                    sampled_by: by.to_owned(),
                    result: TestResult::Pending,
                    result_at: None,
                    result_by: None,
                });
            if sample.result != TestResult::Pending {
                return Err(AppError::Conflict(already(&sample)));
            }
            alerts.extend(self.stage_result(&mut w, &mut people[at], &mut sample, row.result, by)?);
        }
        self.audit(&mut w, by, "sample.import", "", &rows.len().to_string())?;
        self.commit(w).await?;
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
        self.after_results(&ids, &alerts);
        self.exposures_after(&alerts).await;
        Ok(rows.len())
    }

    /// Adds a result to `w`: the sampling, the SMS to the person, and for a positive result the
    /// alert (with the on-duty SMS) and the change to F0. `person` is updated in place, so several
    /// results of one person in one write build on each other.
    fn stage_result(
        &self,
        w: &mut WriteSet,
        person: &mut Person,
        sample: &mut Sample,
        result: TestResult,
        by: &str,
    ) -> AppResult<Option<Alert>> {
        let now = self.now();
        sample.result = result;
        sample.result_at = Some(now);
        sample.result_by = Some(by.to_owned());
        w.put(&*sample)?;
        if !person.phone.is_empty() {
            let text = i18n::result_sms(sample.round, sample.sampled_on, result);
            self.queue_sms(w, &person.phone, &text, Purpose::TestResult, Some(&person.id))?;
        }
        if result != TestResult::Positive {
            return Ok(None);
        }
        let alert = Alert::new(
            format!("test-{}-{}", person.id, sample.round),
            AlertKind::TestPositive,
            Severity::Severe,
            &person.id,
            &Sample::make_id(&person.id, sample.round),
            format!("lần lấy mẫu {}: dương tính", sample.round),
            now,
        );
        w.put(&alert)?;
        self.notify_on_duty(w, &alert, person)?;
        if person.status == PersonStatus::InQuarantine {
            person.status = PersonStatus::ConvertedF0;
            person.details.category = outpost_sync::record::Category::F0;
            person.status_history.push(StatusChange {
                status: PersonStatus::ConvertedF0,
                at: now,
                by: by.to_owned(),
                note: format!("Xét nghiệm lần {} dương tính", sample.round),
            });
            person.updated_at = now;
            w.put(&*person)?;
        }
        Ok(Some(alert))
    }

    /// The exposure list of each person a positive result converted to F0 (after the result's
    /// write: a list that cannot be made is logged, and made on demand later; the result stands).
    async fn exposures_after(&self, alerts: &[Alert]) {
        for a in alerts.iter().filter(|a| a.kind == AlertKind::TestPositive) {
            // It reads every other person's days in range (~0.6 s at 2,000 people): on the box's
            // multi-threaded runtime, without holding up the other tasks of this worker.
            let compute = || self.compute_exposure(&a.person_id, "converted_f0");
            let multi = tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread;
            let made = if multi { tokio::task::block_in_place(compute) } else { compute() };
            let kept = match made {
                Ok(list) => self.keep_exposure(&list).await,
                Err(e) => Err(e),
            };
            if let Err(error) = kept {
                tracing::error!(%error, "Cannot make an exposure list.");
            }
        }
    }

    fn after_results(&self, people: &[&str], alerts: &[Alert]) {
        for id in people {
            self.emit("person", *id);
        }
        for a in alerts {
            self.emit("alert", &a.id);
        }
        self.wake_outbox();
    }
}

/// The refusal of a second, different result for a round.
fn already(sample: &Sample) -> Problem {
    Problem::new(
        "result",
        format!(
            "Lần lấy mẫu {} đã có kết quả {}; kết quả khác cần một lần lấy mẫu mới.",
            sample.round,
            sample.result.vi()
        ),
        format!(
            "Round {} already has a result ({}); a different result needs a new round.",
            sample.round,
            sample.result.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_sync::record::AlertState;

    fn app() -> (tempfile::TempDir, std::sync::Arc<Outpost>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, _, _) = crate::app::testing::outpost(&dir, "2026-11-21T02:00:00Z", "");
        (dir, app)
    }

    async fn people(app: &Outpost, n: usize) -> Vec<Person> {
        let list = app.check_people_list(&outpost_tests_csv(n)).expect("list");
        let rows: Vec<_> = list.valid.into_iter().map(|(_, v)| v).collect();
        app.import_people(&rows, "lan").await.expect("import");
        let mut all = app.people("", None, None).expect("people");
        all.sort_by(|a, b| a.id_number.cmp(&b.id_number));
        all
    }

    fn outpost_tests_csv(n: usize) -> Vec<u8> {
        let mut s =
            String::from("Họ và tên;Số điện thoại;Số CMND/CCCD;Ngày bắt đầu cách ly;Ngày kết thúc cách ly\n");
        for i in 0..n {
            s.push_str(&format!(
                "Người {i};09{:08};0790000000{i:02};21/11/2026;05/12/2026\n",
                30_000_000 + i
            ));
        }
        s.into_bytes()
    }

    fn texts_to(app: &Outpost, phone: &str) -> Vec<String> {
        app.outbox_all().expect("outbox").into_iter().filter(|m| m.to == phone).map(|m| m.text).collect()
    }

    #[tokio::test]
    async fn a_positive_result_starts_the_f0_workflow_in_one_write() {
        let (_dir, app) = app();
        let p = people(&app, 1).await.remove(0);
        let first = app.record_sample(&p.id, None, "lan").await.expect("round 1");
        assert_eq!((first.round, first.sampled_on), (1, app.today()));
        // Scanned again the same day: not a second round, unless staff name it.
        match app.record_sample(&p.id, None, "lan").await {
            Err(AppError::Conflict(problem)) => {
                assert!(problem.vi.contains("đã được lấy mẫu hôm nay (lần 1"))
            }
            other => panic!("a second scan the same day is refused: {other:?}"),
        }
        assert_eq!(app.samples_of(&p.id).expect("samples").len(), 1);
        let second = app.record_sample(&p.id, Some(2), "lan").await.expect("round 2, named");
        assert_eq!(second.round, 2);
        assert!(matches!(app.record_sample(&p.id, Some(2), "lan").await, Err(AppError::Conflict(_))));

        app.record_result(&p.id, 1, TestResult::Negative, "lan").await.expect("negative");
        app.record_result(&p.id, 2, TestResult::Positive, "lan").await.expect("positive");
        // The same result again is harmless; another one is refused.
        app.record_result(&p.id, 2, TestResult::Positive, "lan").await.expect("again");
        assert!(matches!(
            app.record_result(&p.id, 2, TestResult::Negative, "lan").await,
            Err(AppError::Conflict(_))
        ));

        let texts = texts_to(&app, &p.phone);
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains("lan 1") && texts[0].contains("AM TINH"), "{texts:?}");
        assert!(texts[1].contains("lan 2") && texts[1].contains("DUONG TINH"), "{texts:?}");
        let person = app.person(&p.id).expect("person");
        assert_eq!(person.status, PersonStatus::ConvertedF0);
        assert_eq!(person.status_history.last().expect("change").at, app.now());
        let alert = app.alert(&format!("test-{}-2", p.id)).expect("alert");
        assert_eq!(
            (alert.kind, alert.severity, alert.state),
            (AlertKind::TestPositive, Severity::Severe, AlertState::Open)
        );
        assert_eq!(app.samples_on(app.today()).expect("samples").len(), 2);
    }

    #[tokio::test]
    async fn a_laboratory_list_is_checked_whole_before_anything_changes() {
        let (_dir, app) = app();
        let ps = people(&app, 3).await;
        app.record_sample(&ps[0].id, None, "lan").await.expect("sampled");
        let list = format!(
            "\u{feff}STT;Số CMND/CCCD;Lần lấy mẫu;Kết quả\n1;{};1;Âm tính\n2;{};1;Dương tính\n3;999999999999;1;Âm tính\n4;{};1;âm tính\n5;{};x;?\n",
            ps[0].id_number, ps[1].id_number, ps[0].id_number, ps[2].id_number
        );
        let parsed = app.parse_results(list.as_bytes()).expect("parsed");
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6], "{:?}", parsed.errors);
        assert!(parsed.errors[1].problems[0].vi.contains("Trùng với dòng 2"), "{:?}", parsed.errors[1]);
        assert_eq!(parsed.errors[2].problems.len(), 2, "round and result");
        assert_eq!(parsed.rows.len(), 2);

        let good = format!(
            "Số CMND/CCCD,Lần lấy mẫu,Kết quả,Ngày lấy mẫu\n{},1,Âm tính,\n{},1,Dương tính,20/11/2026\n",
            ps[0].id_number, ps[1].id_number
        );
        let parsed = app.parse_results(good.as_bytes()).expect("parsed");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(app.import_results(&parsed.rows, "lan").await.expect("import"), 2);
        let sampled = app.samples_of(&ps[1].id).expect("samples");
        assert_eq!(sampled[0].sampled_on, NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"));
        assert_eq!(app.person(&ps[1].id).expect("person").status, PersonStatus::ConvertedF0);
        // The same list again changes nothing and sends nothing.
        let again = app.parse_results(good.as_bytes()).expect("parsed");
        assert_eq!((again.rows.len(), again.unchanged), (0, 2));
        assert_eq!(texts_to(&app, &ps[1].phone).len(), 1);
        assert!(matches!(app.parse_results(b"\xFF\xFEa"), Err(FileError(_))));
        assert!(app.parse_results(b"Ho ten;Phong\nA;1\n").is_err(), "missing columns");
    }

    #[tokio::test]
    async fn staff_find_a_person_by_qr_code_or_id_number_and_not_another_sites_code() {
        let (_dir, app) = app();
        let p = people(&app, 1).await.remove(0);
        let link = format!("http://outpost.local:8080/d/{}", p.declare_token);
        assert_eq!(app.person_by_code(&link).expect("by QR").id, p.id);
        assert_eq!(app.person_by_code(&p.id_number).expect("by ID number").id, p.id);
        let other = "http://other-site.local:8080/d/AAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(app.person_by_code(other), Err(AppError::Invalid(_))));
    }
}
