//! The zone daily report's figures [M11], computed from the records: pure, for one site and one day
//! (the site's own calendar day, by its UTC offset), and its row as the Dong Nai form names the
//! columns. The figures themselves are a record type ([`ZoneDay`]); the province adds them up.

use chrono::NaiveDate;

pub use crate::record::ZoneDay;
use crate::record::{Person, PersonStatus, Sample, Site, StatusChange};

/// The report's columns, as the Dong Nai form names them (the first is the site's id).
pub const COLUMNS: [&str; 19] = [
    "Mã cơ sở",
    "Huyện/thành phố",
    "Xã/phường/thị trấn",
    "Tên khu cách ly",
    "Cấp quản lý",
    "Số người đang cách ly",
    "Tiếp nhận trong ngày",
    "Trong đó: công nhân",
    "Trẻ em",
    "Phụ nữ có thai",
    "Người nước ngoài",
    "Số người lấy mẫu lần 1",
    "Số người lấy mẫu lần 2",
    "Số người lấy mẫu lần 3",
    "Số người lấy mẫu lần 4 trở đi",
    "F1 chuyển F0 trong ngày",
    "Ngày có F0 gần nhất",
    "Chuyển viện sau khi thành F0",
    "Hoàn thành cách ly trong ngày",
];

/// Text for a spreadsheet cell that a spreadsheet will not run: a leading `=`, `+`, `-`, `@`, tab or
/// carriage return (a formula, when a name or a note typed on a public form starts with one) gets an
/// apostrophe in front.
pub fn spreadsheet_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One cell of a report row: text, a count (a spreadsheet keeps it a number) or a date (a
/// spreadsheet keeps it a date; text shows it as dd/mm/yyyy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Count(usize),
    Date(NaiveDate),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Date(d) => write!(f, "{}", d.format("%d/%m/%Y")),
        }
    }
}

/// A site's management level as the form writes it: the level's English code (as sites configured
/// before the form's wording was the default still send) in Vietnamese, any other text as it is.
pub fn management_level(level: &str) -> &str {
    match level.trim().to_lowercase().as_str() {
        "province" => "Tỉnh/Thành phố",
        "district" => "Quận/Huyện",
        "commune" => "Xã/Phường/Thị trấn",
        _ => level,
    }
}

impl ZoneDay {
    /// The report's row for `site`, in [`COLUMNS`] order.
    pub fn cells(&self, site: &str) -> Vec<Cell> {
        let round = |r: u32| self.sampled_by_round.get(&r).copied().unwrap_or(0);
        let later: usize = self.sampled_by_round.range(4..).map(|(_, n)| n).sum();
        let text = |s: &str| Cell::Text(s.to_owned());
        vec![
            text(site),
            text(&self.district),
            text(&self.commune),
            text(&self.zone_name),
            text(management_level(&self.management_level)),
            Cell::Count(self.in_quarantine),
            Cell::Count(self.admitted),
            Cell::Count(self.admitted_workers),
            Cell::Count(self.admitted_children),
            Cell::Count(self.admitted_pregnant),
            Cell::Count(self.admitted_foreigners),
            Cell::Count(round(1)),
            Cell::Count(round(2)),
            Cell::Count(round(3)),
            Cell::Count(later),
            Cell::Count(self.converted_f0),
            self.last_f0.map_or(Cell::Text(String::new()), Cell::Date),
            Cell::Count(self.transferred_after_f0),
            Cell::Count(self.released),
        ]
    }
}

/// `site`'s figures for `date` from its `people` and their `samples` (any days; those of `date`
/// count).
pub fn zone_day(site: &Site, people: &[Person], samples: &[Sample], date: NaiveDate) -> ZoneDay {
    let offset = chrono::Duration::minutes(site.utc_offset_minutes.into());
    let local_day = |at: chrono::DateTime<chrono::Utc>| (at + offset).date_naive();
    let mut day = ZoneDay {
        date: Some(date),
        district: site.district.clone(),
        commune: site.commune.clone(),
        zone_name: site.name.clone(),
        management_level: site.management_level.clone(),
        ..ZoneDay::default()
    };
    for s in samples.iter().filter(|s| s.sampled_on == date) {
        *day.sampled_by_round.entry(s.round).or_default() += 1;
    }
    for p in people {
        if p.quarantine_start > date {
            continue;
        }
        let mut history: Vec<&StatusChange> = p.status_history.iter().collect();
        history.sort_by_key(|c| c.at);
        // The status at the end of the day: the last change on or before it (the first is the
        // registration, in quarantine).
        let status_then = history
            .iter()
            .rfind(|c| local_day(c.at) <= date)
            .map_or(PersonStatus::InQuarantine, |c| c.status);
        if status_then == PersonStatus::InQuarantine {
            day.in_quarantine += 1;
        }
        if p.quarantine_start == date {
            day.admitted += 1;
            day.admitted_workers += usize::from(p.worker);
            day.admitted_children += usize::from(p.child);
            day.admitted_pregnant += usize::from(p.pregnant);
            day.admitted_foreigners += usize::from(p.foreigner);
        }
        // Each person counts once in each figure, whatever corrections their history holds.
        let (mut converted_before, mut converted, mut transferred, mut released) =
            (false, false, false, false);
        for c in history.iter().take_while(|c| local_day(c.at) <= date) {
            let on = local_day(c.at);
            match c.status {
                PersonStatus::ConvertedF0 => {
                    day.last_f0 = day.last_f0.max(Some(on));
                    converted |= on == date;
                    converted_before = true;
                }
                PersonStatus::Transferred => transferred |= on == date && converted_before,
                PersonStatus::Released => released |= on == date,
                PersonStatus::InQuarantine => {}
            }
        }
        day.converted_f0 += usize::from(converted);
        day.transferred_after_f0 += usize::from(transferred);
        day.released += usize::from(released);
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Category, Gender, PersonDetails};
    use chrono::{TimeZone, Utc};
    use std::collections::BTreeMap;

    fn site() -> Site {
        Site {
            id: "s".into(),
            name: "Khu cách ly A".into(),
            district: "Quận Liên Chiểu".into(),
            commune: "Phường Hòa Khánh Bắc".into(),
            management_level: "district".into(),
            schedule: vec![],
            utc_offset_minutes: 420,
        }
    }

    fn person(start: NaiveDate, changes: &[(PersonStatus, chrono::DateTime<Utc>)], worker: bool) -> Person {
        let mut history = vec![StatusChange {
            status: PersonStatus::InQuarantine,
            at: Utc.from_utc_datetime(&start.and_hms_opt(1, 0, 0).expect("time")),
            by: "t".into(),
            note: String::new(),
        }];
        history.extend(changes.iter().map(|(status, at)| StatusChange {
            status: *status,
            at: *at,
            by: "t".into(),
            note: String::new(),
        }));
        Person {
            id: "p".into(),
            details: PersonDetails {
                full_name: "A".into(),
                birth_year: None,
                phone: String::new(),
                gender: Gender::Unknown,
                id_number: String::new(),
                address: String::new(),
                room: String::new(),
                quarantine_start: start,
                quarantine_end: start + chrono::Duration::days(14),
                decision_number: String::new(),
                category: Category::F1,
                worker,
                child: false,
                pregnant: false,
                foreigner: false,
            },
            status: history.last().map_or(PersonStatus::InQuarantine, |c| c.status),
            status_history: history,
            declare_token: String::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            purged_at: None,
            home_geofence: None,
        }
    }

    #[test]
    fn a_day_counts_by_the_sites_own_calendar() {
        let d = |day: u32| NaiveDate::from_ymd_opt(2026, 11, day).expect("date");
        // 20:00 UTC on the 20th is 03:00 on the 21st in Vietnam.
        let at =
            |day: u32, hour: u32| Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).single().expect("time");
        let people = vec![
            person(d(21), &[], true),                                         // admitted, a worker
            person(d(10), &[(PersonStatus::ConvertedF0, at(20, 20))], false), // F0 on the 21st
            person(
                d(8),
                &[(PersonStatus::ConvertedF0, at(15, 5)), (PersonStatus::Transferred, at(21, 2))],
                false,
            ),
            person(d(7), &[(PersonStatus::Released, at(21, 9))], false), // released
            person(d(22), &[], false),                                   // not yet
        ];
        let sample = |round: u32, on: NaiveDate| Sample {
            person_id: "p".into(),
            round,
            sampled_on: on,
            sampled_at: at(1, 0),
            sampled_by: "t".into(),
            result: crate::record::TestResult::Pending,
            result_at: None,
            result_by: None,
        };
        let samples = [sample(1, d(21)), sample(2, d(21)), sample(1, d(21)), sample(1, d(20))];
        let day = zone_day(&site(), &people, &samples, d(21));
        assert_eq!(day.sampled_by_round, BTreeMap::from([(1, 2), (2, 1)]));
        assert_eq!((day.in_quarantine, day.admitted, day.admitted_workers), (1, 1, 1), "{day:?}");
        assert_eq!(
            (day.converted_f0, day.last_f0, day.transferred_after_f0, day.released),
            (1, Some(d(21)), 1, 1)
        );
        let before = zone_day(&site(), &people, &samples, d(20));
        assert_eq!(
            (before.in_quarantine, before.converted_f0, before.last_f0),
            (2, 0, Some(d(15))),
            "{before:?}"
        );
        // The row says the level as the form does, even for a site configured with its code; the
        // last F0's date is a date.
        let cells = day.cells("s");
        assert_eq!(cells[4], Cell::Text("Quận/Huyện".into()));
        assert_eq!(
            cells[COLUMNS.iter().position(|c| c.contains("F0 gần nhất")).expect("column")],
            Cell::Date(d(21))
        );
        let mut total = day.clone();
        total.add(&before);
        assert_eq!((total.in_quarantine, total.last_f0), (3, Some(d(21))));
        assert_eq!(total.sampled_by_round, BTreeMap::from([(1, 3), (2, 1)]));
    }
}
