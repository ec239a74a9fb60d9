//! District lists in and out as CSV [M1].
//!
//! Import reads bytes as districts send them: UTF-8 with or without a BOM, comma or semicolon separated,
//! Vietnamese headers in any case, spacing or Unicode normal form (English headers accepted too), and
//! returns every row validated or the problems of each bad row. Nothing is stored here: the caller
//! decides whether a file with errors imports nothing or only its valid rows. Export writes UTF-8 with a
//! BOM, comma separated and CRLF, which Excel opens with Vietnamese intact, under the same headers, so an
//! exported file imports again.

use chrono::NaiveDate;
use outpost_sync::{
    record::{Category, Gender, Person},
    report::spreadsheet_text,
};

use super::{AppResult, Outpost};
use crate::base::{
    i18n::{td, Lang},
    validate::{self, fold, PersonInput, Problem, ValidPerson},
};

/// The columns, in export order: field, Vietnamese header, other accepted spellings (folded).
const COLUMNS: &[(&str, &str, &[&str])] = &[
    ("full_name", "Họ và tên", &["ho ten", "ho va ten nguoi cach ly", "full name", "name"]),
    ("birth_year", "Năm sinh", &["nam sinh (yyyy)", "birth year", "ngay sinh"]),
    ("phone", "Số điện thoại", &["sdt", "so dt", "dien thoai", "phone"]),
    ("gender", "Giới tính", &["gioi", "gender"]),
    (
        "id_number",
        "Số CMND/CCCD",
        &["cmnd/cccd", "so cmnd", "so cccd", "cmnd", "cccd", "so cmnd/cccd/ho chieu", "id number"],
    ),
    ("address", "Địa chỉ cách ly", &["dia chi", "address"]),
    ("room", "Phòng", &["phong cach ly", "so phong", "room"]),
    ("quarantine_start", "Ngày bắt đầu cách ly", &["ngay bat dau", "tu ngay", "quarantine start"]),
    ("quarantine_end", "Ngày kết thúc cách ly", &["ngay ket thuc", "den ngay", "quarantine end"]),
    (
        "decision_number",
        "Số Quyết định",
        &["so qd", "quyet dinh", "so quyet dinh cach ly", "decision number"],
    ),
    ("category", "Phân loại", &["loai", "doi tuong", "category"]),
    ("worker", "Công nhân", &["worker"]),
    ("child", "Trẻ em", &["child"]),
    ("pregnant", "Phụ nữ có thai", &["pregnant"]),
    ("foreigner", "Người nước ngoài", &["foreigner"]),
];

/// The combined "Thời gian cách ly" column some lists use: `dd/mm/yyyy - dd/mm/yyyy`.
const PERIOD_HEADERS: &[&str] = &["thoi gian cach ly", "quarantine period"];

/// Columns a list must have.
const REQUIRED: &[&str] = &["full_name", "phone", "id_number"];

/// A bad row: its line in the file (1 is the header) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: usize,
    pub problems: Vec<Problem>,
}

/// A parsed list.
#[derive(Debug, Clone, Default)]
pub struct ParsedList {
    /// Valid rows with their line numbers.
    pub valid: Vec<(usize, ValidPerson)>,
    pub errors: Vec<RowError>,
}

/// Reading the file as a whole failed (no row could be read).
#[derive(Debug, Clone, PartialEq)]
pub struct FileError(pub Problem);

/// Opens a CSV file as districts and laboratories send them (UTF-8 with or without a BOM, comma or
/// semicolon separated): its header row and a reader of the rest.
pub fn open_table(bytes: &[u8]) -> Result<(::csv::StringRecord, ::csv::Reader<&[u8]>), FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(FileError(Problem::new(
            "file",
            "Tệp đang ở dạng UTF-16. Trong Excel hãy chọn Lưu thành “CSV UTF-8 (Comma delimited)”.",
            "The file is UTF-16. In Excel, save it as “CSV UTF-8 (Comma delimited)”.",
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        FileError(Problem::new(
            "file",
            format!("Tệp không phải UTF-8 (lỗi ở dòng {line}). Trong Excel hãy chọn Lưu thành “CSV UTF-8”."),
            format!("The file is not UTF-8 (at line {line}). In Excel, save it as “CSV UTF-8”."),
        ))
    })?;
    let header_line = text.lines().next().unwrap_or("");
    if header_line.trim().is_empty() {
        return Err(FileError(Problem::new("file", "Tệp trống.", "The file is empty.")));
    }
    let delimiter =
        if header_line.matches(';').count() > header_line.matches(',').count() { b';' } else { b',' };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            FileError(Problem::new(
                "file",
                format!("Không đọc được dòng tiêu đề: {e}."),
                format!("The header line cannot be read: {e}."),
            ))
        })?
        .clone();
    Ok((headers, reader))
}

/// A row the reader could not read.
pub fn unreadable(line: usize, e: &::csv::Error) -> RowError {
    RowError {
        line,
        problems: vec![Problem::new(
            "row",
            format!("Dòng không đọc được: {e}."),
            format!("Unreadable row: {e}."),
        )],
    }
}

/// The most data rows an import reads (a district's list for a site of 2,000 people, with room);
/// past it the whole file is refused before any row is checked further, so a file of a million
/// bad rows costs no more than a list's worth of work.
pub const MAX_ROWS: usize = 5_000;

/// The error for a file with more than [`MAX_ROWS`] data rows.
pub fn too_many_rows() -> FileError {
    FileError(Problem::new(
        "file",
        format!("Tệp có hơn {MAX_ROWS} dòng dữ liệu. Vui lòng chia thành nhiều tệp nhỏ hơn."),
        format!("The file has more than {MAX_ROWS} data rows. Please split it into smaller files."),
    ))
}

/// The error for a file without data rows.
pub fn no_rows() -> FileError {
    FileError(Problem::new("file", "Tệp không có dòng dữ liệu nào.", "The file has no data rows."))
}

/// Parses a list. `known` tells whether a person is already registered at the site (by ID number,
/// or without one by name, birth year and phone: [`validate::identity`]).
pub fn parse(
    bytes: &[u8],
    today: NaiveDate,
    known: &dyn Fn(&ValidPerson) -> bool,
) -> Result<ParsedList, FileError> {
    let (headers, mut reader) = open_table(bytes)?;
    let mut fields: Vec<Option<&str>> = Vec::new();
    let mut period_col = None;
    let mut unknown = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let f = fold(h);
        let field = COLUMNS
            .iter()
            .find(|(_, vi, alts)| fold(vi) == f || alts.contains(&f.as_str()))
            .map(|(field, _, _)| *field);
        if field.is_none() && PERIOD_HEADERS.contains(&f.as_str()) {
            period_col = Some(i);
        }
        if field.is_none() && period_col != Some(i) && !f.is_empty() && f != "stt" && f != "tt" {
            unknown.push(h.to_owned());
        }
        fields.push(field);
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|r| !fields.contains(&Some(**r)))
        .map(|r| COLUMNS.iter().find(|(f, _, _)| f == r).map_or(*r, |c| c.1))
        .collect();
    let has_dates = fields.contains(&Some("quarantine_start")) && fields.contains(&Some("quarantine_end"));
    if !missing.is_empty() || (!has_dates && period_col.is_none()) {
        let mut m = missing.join(", ");
        if !has_dates && period_col.is_none() {
            if !m.is_empty() {
                m.push_str(", ");
            }
            m.push_str("Ngày bắt đầu cách ly, Ngày kết thúc cách ly");
        }
        return Err(FileError(Problem::new(
            "file",
            format!("Thiếu cột: {m}. Các cột không nhận ra: {}.", unknown.join(", ")),
            format!("Missing columns: {m}. Columns not recognised: {}.", unknown.join(", ")),
        )));
    }
    let mut out = ParsedList::default();
    let mut seen_ids = std::collections::HashSet::new();
    for (n, record) in reader.records().enumerate() {
        if n >= MAX_ROWS {
            return Err(too_many_rows());
        }
        let line = n + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.errors.push(unreadable(line, &e));
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut input = PersonInput::default();
        for (i, value) in record.iter().enumerate() {
            match fields.get(i).copied().flatten() {
                Some(field) => set_field(&mut input, field, value),
                None if period_col == Some(i) => {
                    let (a, b) = split_period(value);
                    input.quarantine_start = a;
                    input.quarantine_end = b;
                }
                None => {}
            }
        }
        match input.validate(today) {
            Ok(valid) => {
                let mut problems = Vec::new();
                let identity = validate::identity(&valid);
                if seen_ids.contains(&identity) {
                    problems.push(Problem::new(
                        "id_number",
                        "Trùng với một dòng trước trong tệp (cùng số CMND/CCCD, hoặc cùng họ tên, năm sinh và số điện thoại).",
                        "Repeats an earlier row of the file (the same ID number, or the same name, birth year and phone).",
                    ));
                } else if known(&valid) {
                    problems.push(Problem::new(
                        "id_number",
                        "Người này đã có trong danh sách của khu (cùng số CMND/CCCD, hoặc cùng họ tên, năm sinh và số điện thoại).",
                        "This person is already registered at the site (the same ID number, or the same name, birth year and phone).",
                    ));
                }
                seen_ids.insert(identity);
                if problems.is_empty() {
                    out.valid.push((line, valid));
                } else {
                    out.errors.push(RowError { line, problems });
                }
            }
            Err(problems) => out.errors.push(RowError { line, problems }),
        }
    }
    if out.valid.is_empty() && out.errors.is_empty() {
        return Err(no_rows());
    }
    Ok(out)
}

fn set_field(input: &mut PersonInput, field: &str, value: &str) {
    let v = value.trim().to_owned();
    match field {
        "full_name" => input.full_name = v,
        "birth_year" => {
            // "Năm sinh" sometimes holds a full date of birth.
            input.birth_year = validate::parse_date(&v).map_or(v, |d| d.format("%Y").to_string())
        }
        "phone" => input.phone = v,
        "gender" => input.gender = v,
        "id_number" => input.id_number = v,
        "address" => input.address = v,
        "room" => input.room = v,
        "quarantine_start" => input.quarantine_start = v,
        "quarantine_end" => input.quarantine_end = v,
        "decision_number" => input.decision_number = v,
        "category" => input.category = v,
        "worker" => input.worker = Some(v),
        "child" => input.child = Some(v),
        "pregnant" => input.pregnant = Some(v),
        "foreigner" => input.foreigner = Some(v),
        _ => {}
    }
}

/// `01/09/2021 - 14/09/2021`, `từ 01/09/2021 đến 14/09/2021`.
fn split_period(value: &str) -> (String, String) {
    let f = fold(value);
    let cleaned = f.replace("tu ", "").replace(" den ", " - ").replace(" to ", " - ");
    match cleaned.split_once(" - ").or_else(|| cleaned.split_once('–')) {
        Some((a, b)) => (a.trim().to_owned(), b.trim().to_owned()),
        None => (value.trim().to_owned(), String::new()),
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "x"
    } else {
        ""
    }
}

impl Outpost {
    /// Checks a district's list against the site's people; nothing is stored.
    pub fn check_people_list(&self, bytes: &[u8]) -> Result<ParsedList, FileError> {
        parse(bytes, self.today(), &|p| self.registered(p).is_ok_and(|found| found.is_some()))
    }

    /// Everyone as the district's list, for Excel; the export is audited.
    pub async fn people_csv(&self, by: &str) -> AppResult<Vec<u8>> {
        Ok(export(&self.export_people(by).await?))
    }
}

/// The one CSV writer of every export, for Excel: UTF-8 with a BOM (Vietnamese stays intact), comma
/// separated, CRLF, and every cell through [`spreadsheet_text`] — a name, a note or a purpose typed on
/// a public form that starts like a formula (`=HYPERLINK(…)`, `-cmd|…`) is written as text, never as
/// a formula a spreadsheet would run.
pub struct ExcelCsv(::csv::Writer<Vec<u8>>);

impl Default for ExcelCsv {
    fn default() -> Self {
        ExcelCsv(
            ::csv::WriterBuilder::new()
                .terminator(::csv::Terminator::CRLF)
                .from_writer(b"\xEF\xBB\xBF".to_vec()),
        )
    }
}

impl ExcelCsv {
    /// Writes one row (writing to memory cannot fail).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let _ = self.0.write_record(cells.into_iter().map(|c| spreadsheet_text(c.as_ref()).into_owned()));
    }

    /// The file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap_or_default()
    }
}

/// Writes people as CSV for Excel: UTF-8 with BOM, CRLF, the import's headers plus status.
pub fn export(people: &[Person]) -> Vec<u8> {
    let mut w = ExcelCsv::default();
    let mut header: Vec<&str> = COLUMNS.iter().map(|c| c.1).collect();
    header.push("Trạng thái");
    w.row(&header);
    for p in people {
        let gender = match p.gender {
            Gender::Male => "Nam",
            Gender::Female => "Nữ",
            Gender::Other => "Khác",
            Gender::Unknown => "",
        };
        let category = match p.category {
            Category::F1 => "F1",
            Category::F0 => "F0",
            Category::Traveller => "Nhập cảnh",
        };
        let birth = p.birth_year.map(|y| y.to_string()).unwrap_or_default();
        let start = p.quarantine_start.format("%d/%m/%Y").to_string();
        let end = p.quarantine_end.format("%d/%m/%Y").to_string();
        let status = td(Lang::Vi, &format!("status.{}", p.status.as_str()));
        w.row([
            p.full_name.as_str(),
            &birth,
            &p.phone,
            gender,
            &p.id_number,
            &p.address,
            &p.room,
            &start,
            &end,
            &p.decision_number,
            category,
            yes(p.worker),
            yes(p.child),
            yes(p.pregnant),
            yes(p.foreigner),
            &status,
        ]);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 9, 2).expect("date")
    }

    fn check(bytes: &[u8]) -> ParsedList {
        parse(bytes, today(), &|p| p.id_number == "999999999").expect("parses")
    }

    const GOOD: &str = "Họ và tên;Năm sinh;Số điện thoại;Giới tính;Số CMND/CCCD;Địa chỉ cách ly;Thời gian cách ly;Số Quyết định\n\
        Nguyễn Văn An;1985;0905123456;Nam;201234567;KTX A phòng 101;01/09/2021 - 14/09/2021;12/QĐ-UBND\n\
        Trần Thị Bình;1990;0905123457;Nữ;201234568;KTX A phòng 102;01/09/2021 - 14/09/2021;12/QĐ-UBND\n";

    #[test]
    fn a_file_past_the_row_limit_is_refused_whole() {
        let header = GOOD.lines().next().expect("header");
        let at_limit = format!("{header}\n{}", "x;;;;;;;\n".repeat(MAX_ROWS));
        let list = check(at_limit.as_bytes());
        assert_eq!(list.errors.len(), MAX_ROWS, "every row at the limit is checked");
        let past = format!("{header}\n{}", "x;;;;;;;\n".repeat(MAX_ROWS + 1));
        assert_eq!(parse(past.as_bytes(), today(), &|_| false).err(), Some(too_many_rows()));
    }

    #[test]
    fn semicolon_with_bom_and_period_column() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(GOOD.as_bytes());
        let list = check(&bytes);
        assert!(list.errors.is_empty(), "{:?}", list.errors);
        assert_eq!(list.valid.len(), 2);
        assert_eq!(list.valid[1].1.full_name, "Trần Thị Bình");
        assert_eq!(list.valid[1].1.quarantine_end, NaiveDate::from_ymd_opt(2021, 9, 14).expect("date"));
    }

    #[test]
    fn comma_without_bom_and_nfd_headers() {
        use unicode_normalization::UnicodeNormalization;
        let text: String = GOOD.replace(';', ",").nfd().collect();
        let list = check(text.as_bytes());
        assert_eq!(list.valid.len(), 2, "{:?}", list.errors);
        assert_eq!(list.valid[0].1.full_name, "Nguyễn Văn An", "stored as NFC");
    }

    #[test]
    fn per_row_errors_and_duplicates() {
        let text = format!(
            "{GOOD}Lê Văn C;abc;123;Nam;201234567;x;01/09/2021 - 31/02/2021;1\nPhạm D;1970;0905000000;Nam;999999999;x;01/09/2021 - 10/09/2021;1\n"
        );
        let list = check(text.as_bytes());
        assert_eq!(list.valid.len(), 2);
        let lines: Vec<usize> = list.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5]);
        let fields: Vec<&str> = list.errors[0].problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, vec!["birth_year", "phone", "quarantine_end"]);
        assert!(list.errors[1].problems[0].en.contains("already registered"));
    }

    #[test]
    fn file_level_errors() {
        let latin1 = b"H\xe1 v\xe0 t\xean;SDT\n";
        assert!(parse(latin1, today(), &|_| false).expect_err("not utf-8").0.en.contains("not UTF-8"));
        assert!(parse(b"\xFF\xFEH\0", today(), &|_| false).expect_err("utf-16").0.en.contains("UTF-16"));
        assert!(parse(b"", today(), &|_| false).is_err());
        let e = parse("Tên;Tuổi\nA;3\n".as_bytes(), today(), &|_| false).expect_err("headers");
        assert!(e.0.vi.contains("Thiếu cột"), "{}", e.0.vi);
        assert!(parse(GOOD.lines().next().unwrap_or("").as_bytes(), today(), &|_| false).is_err());
    }

    #[test]
    fn export_imports_again() {
        let list = check(GOOD.as_bytes());
        let now = chrono::Utc::now();
        let people: Vec<Person> = list
            .valid
            .iter()
            .map(|(_, v)| Person {
                id: "x".into(),
                details: ValidPerson { worker: true, ..v.clone() },
                status: outpost_sync::record::PersonStatus::InQuarantine,
                status_history: vec![],
                declare_token: "t".into(),
                created_at: now,
                updated_at: now,
                purged_at: None,
                home_geofence: None,
            })
            .collect();
        let bytes = export(&people);
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        assert!(String::from_utf8_lossy(&bytes).contains("\r\n"));
        let again = parse(&bytes, today(), &|_| false).expect("reimport");
        assert_eq!(again.valid.len(), 2, "{:?}", again.errors);
        assert_eq!(again.valid[0].1, ValidPerson { worker: true, ..list.valid[0].1.clone() });
    }
}
