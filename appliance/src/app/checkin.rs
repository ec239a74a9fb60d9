//! QR check-in [M12]: everyone entering or leaving the site (staff, deliveries, visitors) scans the
//! site's poster and fills a short form, or staff scan a quarantined person's code. An entry log for
//! tracing, kept on the box only (box-local keys, never replicated) and erased after
//! `privacy.checkin_days`.
//!
//! The poster's link carries the site's own check-in token, so a poster of another site (or an old
//! token) is refused rather than logged here.

use chrono::{DateTime, NaiveDate, Utc};
use outpost_sync::WriteSet;
use serde::{Deserialize, Serialize};

use super::{AppError, AppResult, Outpost};
use crate::base::validate::{self, fold, Problem};

const TOKEN_KEY: &str = "checkin-token";
const PREFIX: &str = "checkin/";

/// Which way someone crossed the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::In, Direction::Out];
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Why someone came, as the form offers it.
pub const PURPOSES: [&str; 5] = ["staff", "delivery", "visit", "medical", "other"];

/// One line of the entry log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckIn {
    pub at: DateTime<Utc>,
    pub direction: Direction,
    pub name: String,
    pub phone: String,
    pub purpose: String,
    pub note: String,
    /// A quarantined person scanned by staff.
    pub person_id: Option<String>,
    /// The staff member who scanned, for those.
    pub recorded_by: Option<String>,
}

/// A check-in as the form sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckInInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub direction: String,
}

impl Outpost {
    /// The site's check-in token (made the first time it is asked for).
    pub async fn checkin_token(&self) -> AppResult<String> {
        if let Some(token) = self.store.get_local::<String>(TOKEN_KEY)? {
            return Ok(token);
        }
        let token = outpost_sync::secret::random_token();
        let mut w = WriteSet::new();
        w.put_local(TOKEN_KEY, &token)?;
        self.commit(w).await?;
        Ok(token)
    }

    /// Whether `token` is this site's check-in token.
    pub fn is_checkin_token(&self, token: &str) -> AppResult<bool> {
        Ok(self.store.get_local::<String>(TOKEN_KEY)?.is_some_and(|t| t == token))
    }

    /// Logs a check-in from the poster's form.
    pub async fn check_in(&self, input: &CheckInInput) -> AppResult<CheckIn> {
        let mut problems = Vec::new();
        let name = validate::clip(&input.name, 100);
        if name.is_empty() {
            problems.push(Problem::new("name", "Vui lòng nhập họ và tên.", "Please enter your name."));
        }
        problems.extend(validate::control_characters("name", &name));
        let note = validate::clip(&input.note, 200).replace(['\r', '\n', '\t'], " ");
        problems.extend(validate::control_characters("note", &note));
        let phone = validate::phone(&input.phone).map_err(|p| problems.push(p)).unwrap_or_default();
        if !PURPOSES.contains(&input.purpose.as_str()) {
            problems.push(Problem::new("purpose", "Vui lòng chọn mục đích.", "Please choose a purpose."));
        }
        let direction = Direction::parse(&input.direction);
        if direction.is_none() {
            problems.push(Problem::new("direction", "Vui lòng chọn vào hay ra.", "Please choose in or out."));
        }
        let (Some(direction), true) = (direction, problems.is_empty()) else {
            return Err(AppError::Invalid(problems));
        };
        let entry = CheckIn {
            at: self.now(),
            direction,
            name,
            phone,
            purpose: input.purpose.clone(),
            note,
            person_id: None,
            recorded_by: None,
        };
        self.log_entry(&entry).await?;
        Ok(entry)
    }

    /// Logs a quarantined person going in or out, scanned by staff (their code or ID number).
    pub async fn check_in_person(&self, code: &str, direction: Direction, by: &str) -> AppResult<CheckIn> {
        let person = self.person_by_code(code)?;
        let entry = CheckIn {
            at: self.now(),
            direction,
            name: person.full_name.clone(),
            phone: person.phone.clone(),
            purpose: "quarantined".into(),
            note: person.room.clone(),
            person_id: Some(person.id.clone()),
            recorded_by: Some(by.to_owned()),
        };
        self.log_entry(&entry).await?;
        Ok(entry)
    }

    async fn log_entry(&self, entry: &CheckIn) -> AppResult<()> {
        let mut w = WriteSet::new();
        let key = format!("{PREFIX}{:015}-{:020}", entry.at.timestamp_millis(), self.store.next_id()?);
        w.put_local(&key, entry)?;
        self.commit(w).await?;
        self.emit("checkin", key);
        Ok(())
    }

    /// The entries of the site's day `date` (every day if `None`) whose name or phone contains `q`
    /// (accents and case aside), newest first.
    pub fn check_ins(&self, date: Option<NaiveDate>, q: &str) -> AppResult<Vec<CheckIn>> {
        let q = fold(q.trim());
        let mut out: Vec<CheckIn> = self
            .store
            .scan_local::<CheckIn>(PREFIX)?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| date.is_none_or(|d| self.schedule().local(c.at).date() == d))
            .filter(|c| q.is_empty() || fold(&c.name).contains(&q) || c.phone.contains(&q))
            .collect();
        out.reverse();
        Ok(out)
    }

    /// Erases entries older than `privacy.checkin_days`; how many.
    pub(super) async fn purge_check_ins(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let cutoff = now - self.config.privacy.check_ins_kept;
        let old: Vec<String> = self
            .store
            .scan_local::<CheckIn>(PREFIX)?
            .into_iter()
            .take_while(|(_, c)| c.at < cutoff)
            .map(|(k, _)| k)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let mut w = WriteSet::new();
        for key in &old {
            w.delete_local(key);
        }
        self.commit(w).await?;
        Ok(old.len())
    }
}

/// The entries as CSV for Excel (UTF-8 with a BOM, CRLF).
pub fn export(entries: &[CheckIn], offset: chrono::FixedOffset) -> Vec<u8> {
    let mut w = super::csv::ExcelCsv::default();
    w.row(["Thời gian", "Vào/Ra", "Họ và tên", "Số điện thoại", "Mục đích", "Ghi chú", "Nhân viên ghi"]);
    for c in entries {
        w.row([
            (c.at + offset).format("%d/%m/%Y %H:%M").to_string().as_str(),
            if c.direction == Direction::In { "Vào" } else { "Ra" },
            &c.name,
            &c.phone,
            &c.purpose,
            &c.note,
            c.recorded_by.as_deref().unwrap_or_default(),
        ]);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[tokio::test]
    async fn the_log_takes_good_entries_refuses_bad_ones_and_forgets_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, clock, _) = crate::app::testing::outpost(&dir, "2026-11-21T02:00:00Z", "");
        let token = app.checkin_token().await.expect("token");
        assert_eq!(app.checkin_token().await.expect("token"), token, "made once");
        assert!(
            app.is_checkin_token(&token).expect("check") && !app.is_checkin_token("other").expect("check")
        );

        let good = CheckInInput {
            name: "Trần Văn Giao".into(),
            phone: "+84 905 123 456".into(),
            purpose: "delivery".into(),
            direction: "in".into(),
            ..Default::default()
        };
        let entry = app.check_in(&good).await.expect("logged");
        assert_eq!(entry.phone, "0905123456");
        let bad = CheckInInput { phone: "12".into(), purpose: "party".into(), ..Default::default() };
        match app.check_in(&bad).await {
            Err(AppError::Invalid(p)) => assert_eq!(p.len(), 4, "{p:?}"),
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::hours(2));
        app.check_in(&CheckInInput { direction: "out".into(), ..good.clone() }).await.expect("out");
        assert_eq!(app.check_ins(None, "giao").expect("search").len(), 2, "accents aside");
        assert_eq!(app.check_ins(None, "0905").expect("search").len(), 2);
        assert_eq!(app.check_ins(None, "Lan").expect("search").len(), 0);
        let newest = &app.check_ins(None, "").expect("all")[0];
        assert_eq!(newest.direction, Direction::Out);

        clock.advance(Duration::days(28) - Duration::hours(1));
        assert_eq!(app.purge_check_ins(app.now()).await.expect("purge"), 1, "the first is 28 days old");
        assert_eq!(app.check_ins(None, "").expect("all").len(), 1);
    }
}
