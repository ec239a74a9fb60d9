//! Input validation shared by the web forms, the JSON API and the CSV import: raw strings in, typed
//! values or a list of [`Problem`]s (each in Vietnamese and English) out. Pure.

use chrono::{Datelike, NaiveDate};
use outpost_sync::record::{Category, Gender, PersonDetails, Symptom};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// One thing wrong with an input, for the person who typed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub field: String,
    pub vi: String,
    pub en: String,
}

impl Problem {
    pub fn new(field: &str, vi: impl Into<String>, en: impl Into<String>) -> Problem {
        Problem { field: field.to_owned(), vi: vi.into(), en: en.into() }
    }

    pub fn duplicate_id_number(existing_name: &str) -> Problem {
        Problem::new(
            "id_number",
            format!("Số CMND/CCCD đã có trong danh sách ({existing_name})."),
            format!("This ID number is already registered ({existing_name})."),
        )
    }

    /// Another person with the same name, birth year and phone, both without an ID number.
    pub fn duplicate_without_id(existing_name: &str) -> Problem {
        Problem::new(
            "id_number",
            format!("Đã có người cùng họ tên, năm sinh và số điện thoại, không có CMND/CCCD ({existing_name})."),
            format!("Someone with the same name, birth year and phone and no ID number is registered ({existing_name})."),
        )
    }

    pub fn text(&self, lang: crate::base::i18n::Lang) -> &str {
        match lang {
            crate::base::i18n::Lang::Vi => &self.vi,
            crate::base::i18n::Lang::En => &self.en,
        }
    }
}

/// A person as typed into a form, an API call or a CSV row.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PersonInput {
    pub full_name: String,
    pub birth_year: String,
    pub phone: String,
    pub gender: String,
    pub id_number: String,
    pub address: String,
    pub room: String,
    pub quarantine_start: String,
    pub quarantine_end: String,
    pub decision_number: String,
    pub category: String,
    pub worker: Option<String>,
    pub child: Option<String>,
    pub pregnant: Option<String>,
    pub foreigner: Option<String>,
}

/// A person that passed validation: the record's details.
pub type ValidPerson = PersonDetails;

/// Under this age (by birth year) a person may be registered without an ID number.
pub const CHILD_WITHOUT_ID_UNDER: i32 = 14;

/// What tells one person from another on a list: the ID number, or for a child without one, the
/// name (case, accents and spacing aside), birth year and phone.
pub fn identity(p: &PersonDetails) -> String {
    if p.id_number.is_empty() {
        let year = p.birth_year.map_or(String::new(), |y| y.to_string());
        format!("~{}|{year}|{}", fold(&p.full_name), p.phone)
    } else {
        p.id_number.clone()
    }
}

impl PersonInput {
    pub fn validate(&self, today: NaiveDate) -> Result<ValidPerson, Vec<Problem>> {
        let mut problems = Vec::new();
        let full_name = nfc(self.full_name.trim());
        if full_name.is_empty() {
            problems.push(Problem::new("full_name", "Thiếu họ và tên.", "Full name is missing."));
        } else if full_name.chars().count() > 100 {
            problems.push(Problem::new("full_name", "Họ và tên quá dài.", "Full name is too long."));
        }
        problems.extend(control_characters("full_name", &full_name));
        let birth_year = match self.birth_year.trim() {
            "" => None,
            s => match s.parse::<i32>() {
                Ok(y) if (1900..=today.year()).contains(&y) => Some(y),
                _ => {
                    problems.push(Problem::new(
                        "birth_year",
                        format!("Năm sinh không hợp lệ: {s}."),
                        format!("Invalid birth year: {s}."),
                    ));
                    None
                }
            },
        };
        let phone = match phone(&self.phone) {
            Ok(p) => p,
            Err(p) => {
                problems.push(p);
                String::new()
            }
        };
        let gender = match gender(&self.gender) {
            Some(g) => g,
            None => {
                problems.push(Problem::new(
                    "gender",
                    format!("Giới tính không hợp lệ: {}.", self.gender.trim()),
                    format!("Invalid gender: {}.", self.gender.trim()),
                ));
                Gender::Unknown
            }
        };
        let id_number: String = self.id_number.trim().chars().filter(|c| !c.is_whitespace()).collect();
        // Children under 14 have no CCCD: the lists leave the cell empty. They are told apart by
        // name, birth year and phone instead ([`identity`]), so the birth year is then needed.
        let child = birth_year.is_some_and(|y| today.year() - y < CHILD_WITHOUT_ID_UNDER);
        if id_number.is_empty() && !child {
            problems.push(Problem::new(
                "id_number",
                "Thiếu số CMND/CCCD (chỉ trẻ em dưới 14 tuổi được để trống, khi có năm sinh).",
                "The ID number is missing (only a child under 14, with a birth year, may have none).",
            ));
        } else if !id_number.is_empty()
            && (!(6..=12).contains(&id_number.len()) || !id_number.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            problems.push(Problem::new(
                "id_number",
                "Số CMND/CCCD phải có 6–12 chữ số hoặc chữ cái (CMND 9 số, CCCD 12 số, hộ chiếu).",
                "ID number must have 6–12 letters or digits (CMND 9, CCCD 12, or a passport).",
            ));
        }
        let start = date(&self.quarantine_start, "quarantine_start", &mut problems);
        let end = date(&self.quarantine_end, "quarantine_end", &mut problems);
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                problems.push(Problem::new(
                    "quarantine_end",
                    "Ngày kết thúc cách ly trước ngày bắt đầu.",
                    "Quarantine ends before it starts.",
                ));
            } else if (e - s).num_days() > 90 {
                problems.push(Problem::new(
                    "quarantine_end",
                    "Thời gian cách ly dài hơn 90 ngày.",
                    "Quarantine is longer than 90 days.",
                ));
            }
            if (s - today).num_days().abs() > 366 {
                problems.push(Problem::new(
                    "quarantine_start",
                    "Ngày bắt đầu cách ly cách hôm nay hơn một năm.",
                    "Quarantine start is more than a year from today.",
                ));
            }
        }
        let category = match category(&self.category) {
            Some(c) => c,
            None => {
                problems.push(Problem::new(
                    "category",
                    format!("Phân loại không hợp lệ: {} (F1, F0, nhập cảnh).", self.category.trim()),
                    format!("Invalid category: {} (F1, F0, traveller).", self.category.trim()),
                ));
                Category::F1
            }
        };
        let mut text = |v: &str, field: &str, max: usize| {
            // A line break in a spreadsheet cell (Alt+Enter) is a space here; other control
            // characters are refused.
            let v = nfc(v.trim()).replace(['\r', '\n', '\t'], " ");
            if v.chars().count() > max {
                problems.push(Problem::new(field, "Nội dung quá dài.", "Too long."));
            }
            problems.extend(control_characters(field, &v));
            v
        };
        let address = text(&self.address, "address", 300);
        let room = text(&self.room, "room", 50);
        let decision_number = text(&self.decision_number, "decision_number", 100);
        if !problems.is_empty() {
            return Err(problems);
        }
        let (Some(quarantine_start), Some(quarantine_end)) = (start, end) else {
            return Err(problems);
        };
        Ok(ValidPerson {
            full_name,
            birth_year,
            phone,
            gender,
            id_number: id_number.to_uppercase(),
            address,
            room,
            quarantine_start,
            quarantine_end,
            decision_number,
            category,
            worker: flag(&self.worker),
            child: flag(&self.child),
            pregnant: flag(&self.pregnant),
            foreigner: flag(&self.foreigner),
        })
    }
}

/// One of a fixed set of values (a status, a category, a role, an alert state); `None` when empty.
pub fn choice<T>(
    field: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Problem> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            Problem::new(
                field,
                format!("Giá trị không hợp lệ ({field}): {v}."),
                format!("Invalid {field}: {v}."),
            )
        }),
    }
}

/// Like [`choice`], for a value that must be given.
pub fn required<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, Problem> {
    choice(field, Some(raw), parse)?.ok_or_else(|| {
        Problem::new(field, format!("Thiếu giá trị ({field})."), format!("{field} is missing."))
    })
}

/// A yes/no column or checkbox: `on`, `x`, `1`, `có`, `yes`, `true`.
pub fn flag(v: &Option<String>) -> bool {
    let v = fold(v.as_deref().unwrap_or(""));
    matches!(v.as_str(), "on" | "x" | "1" | "co" | "yes" | "y" | "true" | "c")
}

pub use outpost_sync::record::fold;

/// Vietnamese without diacritics, case kept (đ → d): names in SMS templates, so a message stays in one
/// GSM 7-bit part.
pub fn unaccent(s: &str) -> String {
    s.nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

/// Unicode NFC, the form Vietnamese text is stored in (macOS and some phones send NFD).
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Trims and cuts a free text to `max` characters.
/// The problem with `value` typed in `field` if it holds a control character (a NUL, an escape, a
/// line break in a one-line field): it would corrupt a log line, a CSV cell or an SMS.
pub fn control_characters(field: &str, value: &str) -> Option<Problem> {
    value.chars().any(char::is_control).then(|| {
        Problem::new(field, "Có ký tự không hợp lệ (ký tự điều khiển).", "Contains a control character.")
    })
}

pub fn clip(s: &str, max: usize) -> String {
    nfc(s.trim()).chars().take(max).collect()
}

/// A DNS host name: dot-separated labels of ASCII letters, digits and `-` (not at either end of a
/// label), each 1–63 long, 253 in all.
pub fn host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Vietnamese mobile number in national form (`0xxxxxxxxx`), from `0…`, `84…` or `+84…` with any
/// spaces, dots or dashes.
/// An ID number as the box stores it: no spaces, upper case; 11 digits are a 12-digit CCCD whose
/// leading zero a spreadsheet dropped.
pub fn id_number_key(raw: &str) -> String {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    if s.len() == 11 && s.chars().all(|c| c.is_ascii_digit()) {
        format!("0{s}")
    } else {
        s
    }
}

pub fn phone(raw: &str) -> Result<String, Problem> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    let national = if let Some(rest) = digits.strip_prefix("+84") {
        format!("0{rest}")
    } else if digits.starts_with("84") && digits.len() == 11 {
        format!("0{}", &digits[2..])
    } else if !digits.starts_with('0') && digits.len() == 9 {
        // Excel drops the leading zero of a number typed into a numeric cell.
        format!("0{digits}")
    } else {
        digits
    };
    if national.len() == 10 && national.starts_with('0') && national.chars().all(|c| c.is_ascii_digit()) {
        Ok(national)
    } else {
        Err(Problem::new(
            "phone",
            format!("Số điện thoại không hợp lệ: {}.", raw.trim()),
            format!("Invalid phone number: {}.", raw.trim()),
        ))
    }
}

fn gender(raw: &str) -> Option<Gender> {
    match fold(raw).as_str() {
        "nam" | "male" | "m" => Some(Gender::Male),
        "nu" | "female" | "f" => Some(Gender::Female),
        "khac" | "other" => Some(Gender::Other),
        "" | "unknown" => Some(Gender::Unknown),
        _ => None,
    }
}

fn category(raw: &str) -> Option<Category> {
    match fold(raw).as_str() {
        "" | "f1" => Some(Category::F1),
        "f0" => Some(Category::F0),
        "traveller" | "nhap canh" | "nguoi nhap canh" => Some(Category::Traveller),
        _ => None,
    }
}

/// A date as districts write it: `dd/mm/yyyy`, `d/m/yyyy`, `dd-mm-yyyy`, `dd.mm.yyyy` or `yyyy-mm-dd`.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = raw.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%d-%m-%Y"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%d.%m.%Y"))
        .ok()
}

fn date(raw: &str, field: &str, problems: &mut Vec<Problem>) -> Option<NaiveDate> {
    if raw.trim().is_empty() {
        problems.push(Problem::new(field, "Thiếu ngày.", "Date is missing."));
        return None;
    }
    let d = parse_date(raw);
    if d.is_none() {
        problems.push(Problem::new(
            field,
            format!("Ngày không hợp lệ: {} (dd/mm/yyyy).", raw.trim()),
            format!("Invalid date: {} (dd/mm/yyyy).", raw.trim()),
        ));
    }
    d
}

/// A declaration as submitted (a form, the API, an SMS), before validation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeclarationInput {
    pub temperature: Option<String>,
    pub spo2: Option<String>,
    #[serde(default)]
    pub symptoms: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// A declaration that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDeclaration {
    pub temperature: f64,
    pub spo2: Option<u8>,
    pub symptoms: Vec<Symptom>,
    pub note: String,
}

/// Validates a declaration: temperature 34–43 °C (comma or point), SpO2 50–100 %, known symptoms.
pub fn declaration(input: &DeclarationInput) -> Result<ValidDeclaration, Vec<Problem>> {
    let mut problems = Vec::new();
    let raw_t = input.temperature.as_deref().unwrap_or("").trim().replace(',', ".");
    let temperature = match raw_t.parse::<f64>() {
        Ok(t) if (34.0..=43.0).contains(&t) => (t * 10.0).round() / 10.0,
        Ok(_) => {
            problems.push(Problem::new(
                "temperature",
                "Nhiệt độ phải trong khoảng 34–43 °C.",
                "Temperature must be between 34 and 43 °C.",
            ));
            0.0
        }
        Err(_) => {
            problems.push(Problem::new(
                "temperature",
                "Cần nhập nhiệt độ (°C).",
                "Temperature (°C) is required.",
            ));
            0.0
        }
    };
    let spo2 = match input.spo2.as_deref().map(str::trim).unwrap_or("") {
        "" => None,
        s => match s.trim_end_matches('%').parse::<u8>() {
            Ok(v) if (50..=100).contains(&v) => Some(v),
            _ => {
                problems.push(Problem::new(
                    "spo2",
                    "SpO2 phải trong khoảng 50–100 %.",
                    "SpO2 must be between 50 and 100 %.",
                ));
                None
            }
        },
    };
    let mut symptoms = Vec::new();
    for s in &input.symptoms {
        match Symptom::parse(s) {
            Some(sym) if !symptoms.contains(&sym) => symptoms.push(sym),
            Some(_) => {}
            None => problems.push(Problem::new(
                "symptoms",
                format!("Triệu chứng không rõ: {s}."),
                format!("Unknown symptom: {s}."),
            )),
        }
    }
    symptoms.sort();
    if input.note.chars().count() > 1000 {
        problems.push(Problem::new(
            "note",
            "Ghi chú quá dài (tối đa 1000 ký tự).",
            "Note is too long (1000 characters at most).",
        ));
    }
    if problems.is_empty() {
        Ok(ValidDeclaration { temperature, spo2, symptoms, note: clip(&input.note, 1000) })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_refused_in_names_and_line_breaks_become_spaces() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("date");
        let mut input = super::PersonInput {
            full_name: "Nguyễn\u{0}Văn An".into(),
            phone: "0905123456".into(),
            id_number: "201234567".into(),
            quarantine_start: "21/11/2026".into(),
            quarantine_end: "05/12/2026".into(),
            address: "KTX A\nphòng 101".into(),
            ..Default::default()
        };
        let problems = input.validate(today).expect_err("a NUL in a name");
        assert_eq!(problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), vec!["full_name"]);
        input.full_name = "Nguyễn Văn An".into();
        assert_eq!(input.validate(today).expect("valid").address, "KTX A phòng 101");
        input.room = "A\u{1b}[31m".into();
        assert!(input.validate(today).is_err(), "an escape in a room");
    }

    use super::*;

    #[test]
    fn host_names() {
        for good in ["outpost.local", "box-1", "a.b.c", "xn--khu-cch-ly-abc.vn"] {
            assert!(host_name(good), "{good}");
        }
        for bad in ["", "-box", "box-", "a..b", "khu cách ly", "a_b", &"a".repeat(64)] {
            assert!(!host_name(bad), "{bad}");
        }
    }

    fn person() -> PersonInput {
        PersonInput {
            full_name: "Nguyễn Văn An".into(),
            birth_year: "1985".into(),
            phone: "0905 123 456".into(),
            gender: "Nam".into(),
            id_number: "201234567".into(),
            address: "Phòng 101".into(),
            room: "101".into(),
            quarantine_start: "01/09/2021".into(),
            quarantine_end: "14/09/2021".into(),
            decision_number: "123/QĐ-UBND".into(),
            category: "F1".into(),
            ..Default::default()
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 9, 2).expect("date")
    }

    #[test]
    fn a_good_person_validates() {
        let v = person().validate(today()).expect("valid");
        assert_eq!(v.phone, "0905123456");
        assert_eq!(v.gender, Gender::Male);
        assert_eq!(v.quarantine_end, NaiveDate::from_ymd_opt(2021, 9, 14).expect("date"));
    }

    #[test]
    fn problems_are_reported_per_field() {
        let mut p = person();
        p.phone = "12345".into();
        p.quarantine_start = "31/02/2021".into();
        p.birth_year = "1800".into();
        let fields: Vec<String> =
            p.validate(today()).expect_err("invalid").into_iter().map(|p| p.field).collect();
        assert_eq!(fields, vec!["birth_year", "phone", "quarantine_start"]);
    }

    #[test]
    fn phones_in_every_form() {
        for raw in ["0905123456", "+84 905 123 456", "84905123456", "905123456", "0905.123.456"] {
            assert_eq!(phone(raw).expect(raw), "0905123456");
        }
        assert!(phone("090512345").is_err());
    }

    #[test]
    fn folding_matches_however_typed() {
        assert_eq!(fold("  Họ và   Tên "), "ho va ten");
        assert_eq!(fold("Số CMND/CCCD"), "so cmnd/cccd");
        let nfd: String = "Nguyễn".nfd().collect();
        assert_eq!(fold(&nfd), fold("Nguyễn"));
        assert_eq!(fold("Đà Nẵng"), "da nang");
        assert_eq!(unaccent("Đặng Thị Ánh"), "Dang Thi Anh");
    }

    #[test]
    fn declarations() {
        let ok = DeclarationInput {
            temperature: Some("37,2".into()),
            spo2: Some("97".into()),
            symptoms: vec!["cough".into(), "cough".into()],
            note: String::new(),
        };
        let v = declaration(&ok).expect("valid");
        assert_eq!((v.temperature, v.spo2, v.symptoms.len()), (37.2, Some(97), 1));
        let bad = DeclarationInput {
            temperature: Some("45".into()),
            spo2: Some("120".into()),
            symptoms: vec!["x".into()],
            note: String::new(),
        };
        assert_eq!(declaration(&bad).expect_err("invalid").len(), 3);
        let missing = DeclarationInput::default();
        assert_eq!(declaration(&missing).expect_err("invalid")[0].field, "temperature");
    }
}
