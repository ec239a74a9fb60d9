//! The demo site: about fifty people with Vietnamese names in rooms of a dormitory zone, most of whom
//! already declared for today's earlier rounds. Deterministic (the same people every time) and only
//! seeded into an empty store, so a restarted demo keeps what was done in it.

use chrono::Duration;
use outpost_sync::{
    record::{Band, BandState, Channel, Declaration, Person, PresenceDay, Symptom},
    WriteSet,
};

use crate::{
    app::{presence::record_interval, AppError, AppResult, Outpost},
    base::validate::PersonInput,
};

const FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
    "Dương", "Lý",
];
const MIDDLE_M: &[&str] = &["Văn", "Minh", "Hữu", "Đức", "Quốc", "Thanh", "Công", "Xuân"];
const MIDDLE_F: &[&str] = &["Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Diệu", "Bảo"];
const GIVEN_M: &[&str] = &[
    "An", "Bình", "Dũng", "Hải", "Hiếu", "Hùng", "Khánh", "Long", "Nam", "Phúc", "Quân", "Sơn", "Tuấn",
    "Việt", "Trung", "Đạt",
];
const GIVEN_F: &[&str] = &[
    "Châu", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga", "Phương", "Tâm", "Thảo",
    "Trang", "Vy", "Yến",
];

/// The `i`-th demo person's form input (ID numbers and phones are fictitious but well-formed).
pub fn person_input(i: usize, today: chrono::NaiveDate) -> PersonInput {
    let female = i % 2 == 1;
    let (middle, given) = if female { (MIDDLE_F, GIVEN_F) } else { (MIDDLE_M, GIVEN_M) };
    let name = format!(
        "{} {} {}",
        FAMILY[(i * 7 + 3) % FAMILY.len()],
        middle[(i / 2) % middle.len()],
        given[(i * 5 + i / 3) % given.len()]
    );
    let start = today - Duration::days((i % 10) as i64);
    let flag = |b: bool| if b { Some("x".to_owned()) } else { None };
    PersonInput {
        full_name: name,
        birth_year: (1950 + (i * 13) % 68).to_string(),
        phone: format!("09{:08}", 10_000_000 + i * 7919),
        gender: if female { "Nữ" } else { "Nam" }.into(),
        id_number: format!("0{:011}", 48_000_000_000u64 + i as u64 * 1_000_003),
        address: "Ký túc xá Phía Tây, Hòa Khánh Bắc, Liên Chiểu, Đà Nẵng".into(),
        room: format!("{}{:02}", ["A", "B", "C"][i % 3], 1 + i / 3 % 20),
        quarantine_start: start.to_string(),
        quarantine_end: (start + Duration::days(14)).to_string(),
        decision_number: format!("{}/QĐ-UBND", 1200 + i / 10),
        category: if i % 17 == 0 { "Nhập cảnh" } else { "F1" }.into(),
        worker: flag(i % 4 == 0),
        child: flag(i % 11 == 0),
        pregnant: flag(female && i % 13 == 0),
        foreigner: flag(i % 23 == 0),
    }
}

/// Seeds `n` people when the store has none. Returns how many were added.
pub async fn seed(app: &Outpost, n: usize) -> AppResult<usize> {
    if app.has_people() {
        return Ok(0);
    }
    let today = app.today();
    let now = app.now();
    let mut w = WriteSet::new();
    let mut people = Vec::new();
    for i in 0..n {
        let valid = person_input(i, today).validate(today).map_err(AppError::Invalid)?;
        let mut p = app.new_person(&valid, "demo");
        p.created_at = now - Duration::days(1 + (i % 10) as i64);
        w.put(&p)?;
        people.push(p);
    }
    // Each person wears a simulated band (see `outpost_ble::sim`); a few more wait at the desk.
    let simulated = app.config().bands.simulated_bands;
    for i in 0..simulated.max(n) {
        let mut band = Band::new(outpost_ble::sim::address(i), format!("{:03}", i + 1), "demo", now);
        band.change(BandState::Ready, None, "demo", "", now);
        if let Some(p) = people.get(i) {
            band.change(BandState::Assigned, Some(p.id.clone()), "demo", "", now);
        }
        w.put(&band)?;
    }
    // Today so far: in their rooms since midnight, a few out for a while this morning.
    let midnight = app.schedule().utc(today.and_hms_opt(0, 0, 0).unwrap_or_default());
    for (i, p) in people.iter().enumerate().take(simulated) {
        let mut day = PresenceDay {
            person_id: p.id.clone(),
            date: today,
            band: outpost_ble::sim::address(i),
            intervals: Default::default(),
        };
        let room = format!("phong-{}", p.room.to_lowercase());
        record_interval(&mut day, midnight, "present", &room);
        let out = midnight + Duration::minutes(9 * 60 + (i as i64 % 50));
        if i % 7 == 3 && out + Duration::minutes(40) < now {
            record_interval(&mut day, out, "unseen", "");
            record_interval(&mut day, out + Duration::minutes(9), "away", "");
            record_interval(&mut day, out + Duration::minutes(40), "present", &room);
        }
        w.put(&day)?;
    }
    // The rounds of the last day that are past their grace period: most declared on time, a few late,
    // a few not at all (the box then reminds and alerts as it would have).
    let local_now = app.schedule().local(now);
    let slots: Vec<_> = [today.pred_opt(), Some(today)]
        .into_iter()
        .flatten()
        .flat_map(|day| app.schedule().times.iter().map(move |t| day.and_time(*t)))
        .filter(|s| *s + app.schedule().reminder_after < local_now && local_now - *s < Duration::hours(24))
        .collect();
    for slot in slots {
        for (i, p) in people.iter().enumerate() {
            if i % 19 == 7 || p.created_at > app.schedule().utc(slot) {
                continue;
            }
            let late = i % 13 == 5;
            let minutes = if late { 40 } else { (i % 25) as i64 };
            let submitted = app.schedule().utc(slot) + Duration::minutes(minutes);
            let d = Declaration {
                id: uuid::Uuid::new_v4().simple().to_string(),
                person_id: p.id.clone(),
                slot,
                submitted_at: submitted,
                on_time: app.schedule().on_time(slot, submitted),
                channel: if i % 5 == 0 { Channel::Staff } else { Channel::Personal },
                entered_by: (i % 5 == 0).then(|| "demo".to_owned()),
                temperature: 36.3 + (i % 8) as f64 / 10.0,
                spo2: Some(96 + (i % 4) as u8),
                symptoms: if i % 9 == 0 { vec![Symptom::Cough] } else { vec![] },
                note: String::new(),
            };
            w.put(&d)?;
        }
    }
    app.write_seed(w).await?;
    Ok(n)
}

/// A site's store in `data` for site `site`, seeded by [`seed_history`] up to `now` with `people`
/// over `days` (with their daily records) and durable: the store and its number of documents. For
/// the sync and province benchmarks (`cache`: sled's page cache, bytes).
pub fn seeded_store(
    data: &std::path::Path,
    site: &str,
    (people, days): (usize, u32),
    now: chrono::DateTime<chrono::Utc>,
    cache: u64,
) -> anyhow::Result<(outpost_sync::Store, usize)> {
    use std::sync::Arc;

    use crate::base::{
        clock::{Clock, ManualClock},
        config::Config,
    };
    let mut raw = Config::from_toml("")?.raw;
    raw.store.data_dir = data.to_owned();
    raw.site.id = site.to_owned();
    let config = Config::validate(raw)?;
    let store = outpost_sync::Store::open(data, &outpost_sync::StoreConfig { cache_capacity: cache })?;
    let app = Outpost::new(store.clone(), config, ManualClock::new(now) as Arc<dyn Clock>);
    seed_history(&app, 0, people, days, HistoryExtras { daily_records: true })?;
    store.durable_blocking()?;
    let docs = store.changes_since(0, usize::MAX)?.len();
    Ok((store, docs))
}

/// What [`seed_history`] writes besides people and their declarations.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryExtras {
    /// A follow-up sheet and a presence day per person and day, a fever alert now and then, a
    /// missing-declaration alert for every twentieth slot (which then has no declaration).
    pub daily_records: bool,
}

/// Writes `people` people (from demo index `first`) who have been in quarantine for `days` days up
/// to the app's now, each with three declarations a day; in bulk (one write set per 100 people),
/// for benchmarks and the long sync test. Returns the number of documents written.
pub fn seed_history(
    app: &Outpost,
    first: usize,
    people: usize,
    days: u32,
    extras: HistoryExtras,
) -> AppResult<usize> {
    use outpost_sync::record::{Alert, AlertKind, FollowUp, PresenceInterval, Severity};
    let (now, today) = (app.now(), app.today());
    let mut written = 0;
    for chunk in (first..first + people).collect::<Vec<_>>().chunks(100) {
        let mut w = WriteSet::new();
        for &i in chunk {
            let mut input = person_input(i, today);
            input.quarantine_start = (today - Duration::days(i64::from(days) - 1)).to_string();
            input.quarantine_end = (today + Duration::days(1)).to_string();
            input.id_number = format!("0{:011}", 50_000_000_000u64 + i as u64);
            let valid = input.validate(today).map_err(AppError::Invalid)?;
            let mut p: Person = app.new_person(&valid, "seed");
            p.created_at = now - Duration::days(days.into());
            for day in 0..i64::from(days) {
                let date = today - Duration::days(day);
                for (k, t) in app.schedule().times.iter().enumerate() {
                    let slot = date.and_time(*t);
                    let at = app.schedule().utc(slot) + Duration::minutes((i % 20) as i64);
                    if at > now {
                        continue;
                    }
                    if extras.daily_records && (i + k + day as usize) % 20 == 0 {
                        let id = format!("missing-{slot}-{}", p.id);
                        let alert = Alert::new(
                            id,
                            AlertKind::MissingDeclaration,
                            Severity::Warning,
                            &p.id,
                            &slot.to_string(),
                            String::new(),
                            at + Duration::minutes(90),
                        );
                        w.put(&alert)?;
                        written += 1;
                        continue;
                    }
                    let fever = extras.daily_records && (i * 7 + k + day as usize) % 97 == 0;
                    let declaration = Declaration {
                        id: uuid::Uuid::new_v4().simple().to_string(),
                        person_id: p.id.clone(),
                        slot,
                        submitted_at: at,
                        on_time: true,
                        channel: Channel::Personal,
                        entered_by: None,
                        temperature: if fever { 38.4 } else { 36.5 },
                        spo2: Some(97),
                        symptoms: vec![],
                        note: String::new(),
                    };
                    if fever {
                        let id = format!("fever-{}", declaration.id);
                        w.put(&Alert::new(
                            id,
                            AlertKind::Fever,
                            Severity::Warning,
                            &p.id,
                            &declaration.id,
                            "38.4".into(),
                            at,
                        ))?;
                        written += 1;
                    }
                    w.put(&declaration)?;
                    written += 1;
                }
                if extras.daily_records {
                    let start = app.schedule().utc(date.and_hms_opt(6, 0, 0).unwrap_or_default());
                    let mut intervals = std::collections::BTreeMap::new();
                    intervals.insert(
                        outpost_sync::record::time_key(&intervals, start),
                        PresenceInterval {
                            state: "present".into(),
                            place: format!("phong-{}", 100 + i % 40),
                            to: Some(start + Duration::hours(16)),
                        },
                    );
                    w.put(&PresenceDay {
                        person_id: p.id.clone(),
                        date,
                        band: format!("C2:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xFF),
                        intervals,
                    })?;
                    w.put(&FollowUp {
                        person_id: p.id.clone(),
                        date,
                        presence: "có mặt".into(),
                        tests: String::new(),
                        notes: String::new(),
                        updated_by: "seed".into(),
                        updated_at: start + Duration::hours(12),
                    })?;
                    written += 2;
                }
            }
            w.put(&p)?;
            written += 1;
        }
        app.write_seed_in_bulk(w)?;
    }
    Ok(written)
}
