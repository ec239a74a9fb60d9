//! The exports' spreadsheets (.xlsx) [M11], written by `rust_xlsxwriter`: the data sheet with its
//! header row in bold and frozen, dates as real dates (shown dd/mm/yyyy), numbers as numbers, the
//! columns as wide as their contents; and a second sheet saying which site exported it, who and
//! when (the file's author is that account too).

use chrono::{Datelike, NaiveDateTime, Timelike};
use outpost_sync::report::Cell;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

/// Who made an export, where and when (the site's time).
pub struct Made<'a> {
    pub site: &'a str,
    pub by: &'a str,
    pub at: NaiveDateTime,
}

/// The sheet holding who made the export.
pub const ABOUT_SHEET: &str = "Thông tin";

/// A workbook whose first sheet, named `sheet`, holds `rows` (the first of them its header), and
/// whose second says who made it.
pub fn workbook(sheet: &str, rows: &[Vec<Cell>], made: &Made) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    book.set_properties(&DocProperties::new().set_author(made.by).set_company(made.site));
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let data = book.add_worksheet();
    data.set_name(sheet.chars().take(31).collect::<String>())?;
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r).map_err(|_| XlsxError::RowColumnLimitError)?;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|_| XlsxError::RowColumnLimitError)?;
            write(data, (r, c), cell, r == 0, &date)?;
        }
    }
    data.set_freeze_panes(1, 0)?;
    data.autofit();

    let about = book.add_worksheet();
    about.set_name(ABOUT_SHEET)?;
    let bold = Format::new().set_bold();
    about.write_string_with_format(0, 0, "Cơ sở", &bold)?;
    about.write_string(0, 1, made.site)?;
    about.write_string_with_format(1, 0, "Người xuất", &bold)?;
    about.write_string(1, 1, made.by)?;
    about.write_string_with_format(2, 0, "Thời điểm xuất", &bold)?;
    about.write_datetime_with_format(
        2,
        1,
        excel_time(made.at)?,
        &Format::new().set_num_format("dd/mm/yyyy hh:mm"),
    )?;
    about.autofit();
    book.save_to_buffer()
}

fn write(
    sheet: &mut Worksheet,
    (r, c): (u32, u16),
    cell: &Cell,
    header: bool,
    date: &Format,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Text(t) if header => sheet.write_string_with_format(r, c, t, &Format::new().set_bold())?,
        Cell::Text(t) => sheet.write_string(r, c, t)?,
        Cell::Count(n) => sheet.write_number(r, c, *n as f64)?,
        Cell::Date(d) => {
            sheet.write_datetime_with_format(r, c, excel_time(d.and_time(Default::default()))?, date)?
        }
    };
    Ok(())
}

fn excel_time(t: NaiveDateTime) -> Result<ExcelDateTime, XlsxError> {
    let year = u16::try_from(t.year()).map_err(|_| XlsxError::DateTimeRangeError(t.to_string()))?;
    ExcelDateTime::from_ymd(year, t.month() as u8, t.day() as u8)?.and_hms(
        t.hour() as u16,
        t.minute() as u8,
        t.second() as f64,
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn a_workbook_is_a_zip_with_its_sheets() {
        let made = Made {
            site: "KCL-01",
            by: "lan.nguyen",
            at: NaiveDate::from_ymd_opt(2026, 11, 21).and_then(|d| d.and_hms_opt(17, 5, 0)).expect("time"),
        };
        let rows = [
            vec![Cell::Text("Tên <khu>".into()), Cell::Text("Số".into()), Cell::Text("Ngày".into())],
            vec![Cell::Text("A".into()), Cell::Count(7), Cell::Date(made.at.date())],
        ];
        let book = workbook("Báo cáo", &rows, &made).expect("workbook");
        assert_eq!(&book[..4], b"PK\x03\x04");
    }
}
