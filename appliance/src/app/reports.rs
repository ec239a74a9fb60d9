//! The zone daily report [M11] at the box: the day's figures from the records, the zone manager's
//! confirmation (a replicated document the province adds up), and the last 30 days for the chart.

use chrono::{Duration, NaiveDate};
use outpost_sync::{
    record::{Person, Sample, Site, ZoneReport},
    report::{self, ZoneDay},
    WriteSet,
};
use serde::Serialize;

use super::{AppError, AppResult, Outpost};

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayPoint {
    pub date: NaiveDate,
    pub in_quarantine: usize,
    pub admitted: usize,
    pub released: usize,
    pub converted_f0: usize,
    /// Declarations on time, as a percentage of those due (people in quarantine × slots); `None`
    /// when nobody was in quarantine.
    pub on_time_percent: Option<f64>,
}

/// A day's figures, its confirmed report if any, and the chart's days up to it.
pub type ReportPage = (ZoneDay, Option<ZoneReport>, Vec<DayPoint>);

impl Outpost {
    /// The figures of the site's day `date`, from the records as they are now.
    pub fn zone_day(&self, date: NaiveDate) -> AppResult<ZoneDay> {
        let site = self.site()?;
        let people = self.store.list::<Person>()?;
        let samples = self.samples_on(date)?;
        Ok(report::zone_day(&site, &people, &samples, date))
    }

    /// The report of `date` as confirmed, if it was.
    pub fn confirmed_report(&self, date: NaiveDate) -> AppResult<Option<ZoneReport>> {
        Ok(self.store.get::<ZoneReport>(&date.to_string())?)
    }

    /// Confirms the report of `date` (today or before) as it is now.
    pub async fn confirm_report(&self, date: NaiveDate, by: &str) -> AppResult<ZoneReport> {
        if date > self.today() {
            return Err(AppError::invalid(
                "date",
                "Không thể xác nhận báo cáo của một ngày chưa đến.",
                "A report of a day still to come cannot be confirmed.",
            ));
        }
        let now = self.now();
        let confirmed = ZoneReport {
            site_id: self.config.site.id.clone(),
            date,
            figures: self.zone_day(date)?,
            confirmed_by: by.to_owned(),
            confirmed_at: now,
        };
        let mut w = WriteSet::new();
        w.put(&confirmed)?;
        self.audit(&mut w, by, "report.confirm", &date.to_string(), "")?;
        self.commit(w).await?;
        Ok(confirmed)
    }

    /// The `days` days up to `last`, oldest first, for the chart: reads the people once.
    pub fn report_series(&self, last: NaiveDate, days: u32) -> AppResult<Vec<DayPoint>> {
        self.series_of(&self.site()?, &self.store.list::<Person>()?, last, days)
    }

    /// The report page's figures: the day's, as confirmed if it was, and the `days` up to it for the
    /// chart, reading the people once for both.
    pub fn report_page(&self, date: NaiveDate, days: u32) -> AppResult<ReportPage> {
        let (site, people) = (self.site()?, self.store.list::<Person>()?);
        let day = report::zone_day(&site, &people, &self.samples_on(date)?, date);
        Ok((day, self.confirmed_report(date)?, self.series_of(&site, &people, date, days)?))
    }

    fn series_of(
        &self,
        site: &Site,
        people: &[Person],
        last: NaiveDate,
        days: u32,
    ) -> AppResult<Vec<DayPoint>> {
        let no_samples: [Sample; 0] = [];
        let slots = self.schedule().times.len();
        let mut out = Vec::new();
        for back in (0..i64::from(days)).rev() {
            let Some(date) = last.checked_sub_signed(Duration::days(back)) else { continue };
            let d = report::zone_day(site, people, &no_samples, date);
            let on_time = self.on_time_count(date)?;
            let due = d.in_quarantine * slots;
            out.push(DayPoint {
                date,
                in_quarantine: d.in_quarantine,
                admitted: d.admitted,
                released: d.released,
                converted_f0: d.converted_f0,
                on_time_percent: (due > 0).then(|| (on_time as f64 * 100.0 / due as f64).min(100.0)),
            });
        }
        Ok(out)
    }
}
