//! Spot checks [M7]: at random times within waking hours (a configured number per person per day,
//! never two within an hour) or when staff ask (one person, or a whole room), the person gets an SMS
//! with a short link; the page asks for a face photo and the phone's position within the deadline
//! (20 minutes by default). No answer in time raises an alert; a position outside the geofence raises
//! the location alert at once. Staff review the photo and accept it or not.
//!
//! Only the outcome is replicated (`SpotCheck`); the link's token and the photo stay on the box (the
//! photo in the `photos` series, erased after `privacy.photo_days`). Phones resize the photo before
//! sending it (the page's script: 800 px, JPEG); the box takes JPEG, PNG or WebP up to
//! `spot_checks.max_photo_bytes` and checks that the bytes are one of those.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use outpost_sync::{
    record::{Alert, AlertKind, Person, Severity, SpotCheck, SpotCheckState, SpotReview},
    series::Sample,
    WriteSet,
};
use rand::Rng;

use super::{
    location::{Position, Verdict},
    outbox::Purpose,
    AppError, AppResult, Outpost,
};
use crate::base::{i18n, validate::Problem};

/// The time series of answered checks' photos (box-local, pruned by age).
const PHOTOS: &str = "photos";

/// `n` site-local times of `date` within `from..to`, sorted, no two within an hour (fewer if the
/// window cannot hold `n`).
pub fn random_times(rng: &mut impl Rng, n: u32, from: NaiveTime, to: NaiveTime) -> Vec<NaiveTime> {
    let window = (to - from).num_minutes();
    if window <= 0 || n == 0 {
        return Vec::new();
    }
    let n = (n as i64).min(window / 60 + 1) as usize;
    for _ in 0..200 {
        let mut minutes: Vec<i64> = (0..n).map(|_| rng.gen_range(0..=window)).collect();
        minutes.sort_unstable();
        if minutes.windows(2).all(|w| w[1] - w[0] >= 60) {
            return minutes.into_iter().map(|m| from + Duration::minutes(m)).collect();
        }
    }
    // Evenly spread: always valid.
    let step = if n > 1 { window / (n as i64 - 1) } else { 0 };
    (0..n).map(|i| from + Duration::minutes(step * i as i64)).collect()
}

/// What a photo's first bytes say it is.
pub fn photo_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn token_key(token: &str) -> String {
    format!("spot-token/{token}")
}

fn plan_key(date: NaiveDate, person_id: &str) -> String {
    format!("spot-plan/{date}/{person_id}")
}

impl Outpost {
    pub fn spot_check(&self, id: &str) -> AppResult<SpotCheck> {
        self.store.get::<SpotCheck>(id)?.ok_or(AppError::NotFound)
    }

    /// Spot checks in `state`, oldest due first.
    pub fn spot_checks(&self, state: SpotCheckState) -> AppResult<Vec<SpotCheck>> {
        Ok(self.store.find_prefix::<SpotCheck>(SpotCheck::BY_STATE, &format!("{}|", state.as_str()))?)
    }

    /// The check whose photo staff compare an answer with: the person's latest other accepted
    /// check whose photo is still kept.
    pub fn reference_check(&self, check: &SpotCheck) -> AppResult<Option<String>> {
        for other in self.spot_checks_of(&check.person_id)?.into_iter().rev() {
            if other.id != check.id
                && other.review == SpotReview::Accepted
                && self.spot_photo(&other.id)?.is_some()
            {
                return Ok(Some(other.id));
            }
        }
        Ok(None)
    }

    /// A person's spot checks, oldest first.
    pub fn spot_checks_of(&self, person_id: &str) -> AppResult<Vec<SpotCheck>> {
        Ok(self.store.find_prefix::<SpotCheck>(SpotCheck::BY_PERSON, &format!("{person_id}|"))?)
    }

    /// Sends a spot check to `person` now: the SMS with its link, in the write that records it.
    fn stage_send(&self, w: &mut WriteSet, check: &mut SpotCheck, person: &Person) -> AppResult<()> {
        let now = self.now();
        let token = outpost_sync::secret::random_token();
        check.state = SpotCheckState::Sent;
        check.sent_at = Some(now);
        check.deadline = now + self.config.spot_checks.deadline;
        w.put(&*check)?;
        w.put_local(&token_key(&token), &check.id)?;
        let link = format!("{}/s/{token}", self.public_url());
        let text = i18n::spot_check_sms(&check.deadline_local(self.schedule().offset), &link);
        self.queue_sms(w, &person.phone, &text, Purpose::SpotCheck, Some(&person.id))?;
        Ok(())
    }

    fn new_check(&self, person: &Person, due_at: DateTime<Utc>, reason: &str) -> SpotCheck {
        SpotCheck {
            // Unique even for two checks of one person in the same second (a room and a person).
            id: format!("{}-{}-{:04x}", person.id, due_at.timestamp(), rand::random::<u16>()),
            person_id: person.id.clone(),
            due_at,
            reason: reason.to_owned(),
            state: SpotCheckState::Scheduled,
            sent_at: None,
            deadline: due_at,
            answered_at: None,
            position_inside: None,
            review: SpotReview::Pending,
            reviewed_by: None,
            reviewed_at: None,
        }
    }

    /// Staff ask for a spot check of each of `people` now.
    pub async fn request_spot_checks(&self, people: &[Person], by: &str) -> AppResult<Vec<SpotCheck>> {
        let now = self.now();
        let mut w = WriteSet::new();
        let mut out = Vec::new();
        for person in people.iter().filter(|p| p.status.is_watched() && !p.phone.is_empty()) {
            let mut check = self.new_check(person, now, &format!("staff:{by}"));
            self.stage_send(&mut w, &mut check, person)?;
            out.push(check);
        }
        if out.is_empty() {
            return Err(AppError::invalid(
                "people",
                "Không có ai đang cách ly (có số điện thoại) để kiểm tra.",
                "Nobody in quarantine (with a phone) to check.",
            ));
        }
        self.audit(&mut w, by, "spotcheck.request", "", &out.len().to_string())?;
        self.commit(w).await?;
        self.wake_outbox();
        Ok(out)
    }

    /// The scheduler's part: plans the day's random checks once per person, sends those due, and
    /// marks missed those past their deadline (with an alert). Idempotent.
    pub(super) async fn spot_check_tick(&self, watched: &[Person]) -> AppResult<usize> {
        let now = self.now();
        let cfg = &self.config.spot_checks;
        let today = self.today();
        let mut w = WriteSet::new();
        if cfg.per_person_per_day > 0 {
            let (from, to) = (cfg.waking_from, cfg.waking_to);
            let mut rng = rand::thread_rng();
            for person in watched.iter().filter(|p| !p.phone.is_empty()) {
                let key = plan_key(today, &person.id);
                if self.store.has_local(&key)? {
                    continue;
                }
                for t in random_times(&mut rng, cfg.per_person_per_day, from, to) {
                    let due_at = self.schedule().utc(today.and_time(t));
                    if due_at >= now {
                        w.put(&self.new_check(person, due_at, "random"))?;
                    }
                }
                w.put_local(&key, &now)?;
            }
        }
        let mut acted = 0;
        // The index sorts scheduled checks by due time: read only those due (keys first).
        let prefix = format!("{}|", SpotCheckState::Scheduled.as_str());
        for (value, id) in self.store.index_scan(SpotCheck::BY_STATE, &prefix)? {
            let due = value.strip_prefix(&prefix).and_then(|d| DateTime::parse_from_rfc3339(d).ok());
            if due.is_some_and(|d| d > now) {
                break;
            }
            let Some(mut check) = self.store.get::<SpotCheck>(&id)? else { continue };
            if check.state != SpotCheckState::Scheduled || check.due_at > now {
                continue;
            }
            let Some(person) = self.store.get::<Person>(&check.person_id)? else { continue };
            if !person.status.is_watched() || now - check.due_at > Duration::hours(1) {
                check.state = SpotCheckState::Skipped;
                w.put(&check)?;
                continue;
            }
            self.stage_send(&mut w, &mut check, &person)?;
            acted += 1;
        }
        let mut raised = Vec::new();
        for mut check in self.spot_checks(SpotCheckState::Sent)? {
            if check.deadline > now {
                continue;
            }
            check.state = SpotCheckState::Missed;
            w.put(&check)?;
            let alert = Alert::new(
                format!("spot-{}", check.id),
                AlertKind::SpotCheckMissed,
                Severity::Warning,
                &check.person_id,
                &check.id,
                check.deadline_local(self.schedule().offset),
                now,
            );
            w.put(&alert)?;
            raised.push(alert.id);
            acted += 1;
        }
        if !w.is_empty() {
            self.commit(w).await?;
            for id in &raised {
                self.emit("alert", id);
            }
            if acted > 0 {
                self.wake_outbox();
            }
        }
        Ok(acted)
    }

    /// The check a link's token opens, and its person.
    pub fn spot_check_by_token(&self, token: &str) -> AppResult<(SpotCheck, Person)> {
        let id: String = self.store.get_local(&token_key(token))?.ok_or(AppError::NotFound)?;
        let check = self.spot_check(&id)?;
        let person = self.person(&check.person_id)?;
        Ok((check, person))
    }

    /// The person's answer: a photo and a position, before the deadline.
    pub async fn answer_spot_check(&self, token: &str, photo: &[u8], p: Position) -> AppResult<SpotCheck> {
        let (mut check, person) = self.spot_check_by_token(token)?;
        let now = self.now();
        if check.state != SpotCheckState::Sent || now > check.deadline {
            return Err(AppError::Conflict(Problem::new(
                "check",
                "Lần kiểm tra này đã được trả lời hoặc đã quá hạn.",
                "This check was already answered or is past its deadline.",
            )));
        }
        let mut problems = Vec::new();
        let max_kb = self.config.spot_checks.max_photo_bytes / 1024;
        if photo.len() > self.config.spot_checks.max_photo_bytes {
            problems.push(Problem::new(
                "photo",
                format!("Ảnh quá lớn (tối đa {max_kb} KB)."),
                format!("The photo is too large (at most {max_kb} KB)."),
            ));
        } else if photo_type(photo).is_none() {
            problems.push(Problem::new(
                "photo",
                "Tệp gửi lên không phải ảnh (JPEG, PNG hoặc WebP).",
                "The file is not a photo (JPEG, PNG or WebP).",
            ));
        }
        if let Err(mut more) = p.check() {
            problems.append(&mut more);
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        // The position goes where every position goes: kept, judged, alerted at once if outside.
        let reported = self.report_position(&person, p).await?;
        self.store.series(PHOTOS)?.insert(&[Sample {
            at_ms: now.timestamp_millis(),
            name: check.id.clone(),
            value: photo.to_vec(),
        }])?;
        check.state = SpotCheckState::Answered;
        check.answered_at = Some(now);
        check.position_inside = match reported.verdict {
            Verdict::Inside => Some(true),
            Verdict::Outside => Some(false),
            Verdict::Unsure => None,
        };
        let mut w = WriteSet::new();
        w.put(&check)?;
        self.commit(w).await?;
        self.emit("spotcheck", &check.id);
        Ok(check)
    }

    /// The photo of an answered check, while it is kept.
    pub fn spot_photo(&self, id: &str) -> AppResult<Option<(Vec<u8>, &'static str)>> {
        let check = self.spot_check(id)?;
        let Some(at) = check.answered_at else { return Ok(None) };
        let ms = at.timestamp_millis();
        let found = self.store.series(PHOTOS)?.range(ms, ms + 1, Some(id), 1)?;
        Ok(found.into_iter().next().and_then(|s| photo_type(&s.value).map(|t| (s.value, t))))
    }

    /// Staff's review of an answered check.
    pub async fn review_spot_check(&self, id: &str, accepted: bool, by: &str) -> AppResult<SpotCheck> {
        let mut check = self.spot_check(id)?;
        if check.state != SpotCheckState::Answered {
            return Err(AppError::Conflict(Problem::new(
                "check",
                "Chỉ xem xét được lần kiểm tra đã có ảnh.",
                "Only an answered check can be reviewed.",
            )));
        }
        let now = self.now();
        check.review = if accepted { SpotReview::Accepted } else { SpotReview::Rejected };
        check.reviewed_by = Some(by.to_owned());
        check.reviewed_at = Some(now);
        let mut w = WriteSet::new();
        w.put(&check)?;
        self.audit(&mut w, by, "spotcheck.review", id, check.review.as_str())?;
        self.commit(w).await?;
        Ok(check)
    }

    /// Erases photos older than `privacy.photo_days`; how many.
    pub(super) fn purge_photos(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let before = now - self.config.privacy.photos_kept;
        Ok(self.store.series(PHOTOS)?.prune_before(before.timestamp_millis())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_times_fall_in_waking_hours_an_hour_apart() {
        let t = |h: u32, m: u32| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let times = random_times(&mut rng, 3, t(7, 0), t(21, 0));
            assert_eq!(times.len(), 3);
            assert!(times.iter().all(|x| (t(7, 0)..=t(21, 0)).contains(x)), "{times:?}");
            assert!(times.windows(2).all(|w| w[1] - w[0] >= Duration::hours(1)), "{times:?}");
        }
        assert_eq!(random_times(&mut rng, 5, t(9, 0), t(11, 0)).len(), 3, "a two-hour window holds three");
        assert!(random_times(&mut rng, 2, t(21, 0), t(7, 0)).is_empty());
    }

    #[test]
    fn photos_are_recognised_by_their_bytes() {
        assert_eq!(photo_type(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(photo_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(photo_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(photo_type(b"%PDF-1.7"), None);
        assert_eq!(photo_type(b"GIF89a"), None);
    }
}
