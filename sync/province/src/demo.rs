//! `outpost-province demo`: a province with a few simulated sites in two districts, as if their
//! boxes had synced — people in quarantine, released ones, open and acknowledged alerts — and two
//! users (a provincial administrator and a district officer) whose passwords are made at random and
//! printed once. The sites are data only: no box runs; enrol a real one beside them as usual.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use outpost_sync::{
    record::{
        Alert, AlertKind, AlertState, Category, Gender, Person, PersonDetails, PersonStatus, Severity, Site,
        StatusChange,
    },
    WriteSet,
};

use crate::{
    server::{Province, Server},
    users::{Scope, Users},
};

/// The demo's sites: id, name, district, commune, people.
const SITES: [(&str, &str, &str, &str, usize); 3] = [
    ("ktx-dhbk", "Khu cách ly KTX Đại học Bách khoa", "Quận Liên Chiểu", "Phường Hòa Khánh Bắc", 60),
    ("truong-cd-nghe", "Khu cách ly Trường Cao đẳng nghề", "Quận Liên Chiểu", "Phường Hòa Minh", 35),
    ("tyt-hoa-vang", "Trạm y tế xã Hòa Phong", "Huyện Hòa Vang", "Xã Hòa Phong", 20),
];

const FAMILY: [&str; 8] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"];
const MIDDLE: [&str; 4] = ["Văn", "Thị", "Minh", "Ngọc"];
const GIVEN: [&str; 10] = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hương", "Lan", "Long"];

fn person(site: usize, i: usize, today: NaiveDate, now: DateTime<Utc>) -> Person {
    let n = site * 1000 + i;
    let start = today - Duration::days((i % 14) as i64);
    let released = i % 9 == 8;
    let status = if released { PersonStatus::Released } else { PersonStatus::InQuarantine };
    let mut history = vec![StatusChange {
        status: PersonStatus::InQuarantine,
        at: now,
        by: "demo".into(),
        note: String::new(),
    }];
    if released {
        history.push(StatusChange { status, at: now, by: "demo".into(), note: String::new() });
    }
    Person {
        id: format!("demo-{n}"),
        details: PersonDetails {
            full_name: format!("{} {} {}", FAMILY[n % 8], MIDDLE[(n / 3) % 4], GIVEN[(n / 8) % 10]),
            birth_year: Some(1950 + (n % 60) as i32),
            phone: format!("09{:08}", 10_000_000 + n * 7919 % 90_000_000),
            gender: if n % 2 == 0 { Gender::Male } else { Gender::Female },
            id_number: format!("0{:011}", 48_000_000_000u64 + n as u64),
            address: format!("Phòng {}, {}", 100 + i % 30, SITES[site].1),
            room: format!("{}", 100 + i % 30),
            quarantine_start: start,
            quarantine_end: start + Duration::days(14),
            decision_number: format!("{}/QĐ-UBND", 1200 + n),
            category: Category::F1,
            worker: i % 5 == 0,
            child: i % 11 == 0,
            pregnant: false,
            foreigner: i % 17 == 0,
        },
        status,
        status_history: history,
        declare_token: outpost_sync::secret::random_token(),
        created_at: now,
        updated_at: now,
        purged_at: None,
        home_geofence: None,
    }
}

/// Makes the demo province in `province`'s folder (which must have no CA yet): its CA, the sites and
/// their records, and the two users; prints the users' passwords.
pub fn make(province: &Province) -> anyhow::Result<()> {
    anyhow::ensure!(
        !province.dir.join("ca").exists(),
        "{} already holds a province; the demo makes a new one in an empty folder",
        province.dir.display()
    );
    province.init(&[])?;
    let server = Server::new(province.clone());
    let now = Utc::now();
    let today = now.date_naive();
    for (s, (id, name, district, commune, people)) in SITES.iter().enumerate() {
        province.add_site(id, district)?;
        let store = server.store(id)?;
        let mut w = WriteSet::new();
        w.put(&Site {
            id: (*id).into(),
            name: (*name).into(),
            district: (*district).into(),
            commune: (*commune).into(),
            management_level: "Quận/Huyện".into(),
            schedule: vec!["08:00".into(), "16:00".into(), "21:00".into()],
            utc_offset_minutes: 420,
        })?;
        for i in 0..*people {
            let p = person(s, i, today, now);
            if i % 7 == 3 {
                let kind = if i % 2 == 0 { AlertKind::Fever } else { AlertKind::MissingDeclaration };
                let mut alert = Alert::new(
                    format!("demo-alert-{s}-{i}"),
                    kind,
                    Severity::Warning,
                    &p.id,
                    &p.full_name,
                    if kind == AlertKind::Fever {
                        "38,6 °C".into()
                    } else {
                        "Chưa khai báo lúc 08:00".into()
                    },
                    now - Duration::minutes((i * 13) as i64),
                );
                if i % 3 == 0 {
                    alert.state = AlertState::Acknowledged;
                    alert.acknowledged_by = Some("demo".into());
                    alert.acknowledged_at = Some(now);
                }
                w.put(&alert)?;
            }
            w.put(&p)?;
        }
        store.commit_blocking(w)?;
    }
    let users = Users::new(&province.dir);
    let (admin, officer) = (outpost_sync::secret::random_token(), outpost_sync::secret::random_token());
    users.add("tinh.admin", "Quản trị tỉnh", Scope::Province, &admin)?;
    users.add("lien.chieu", "Cán bộ Quận Liên Chiểu", Scope::District("Quận Liên Chiểu".into()), &officer)?;
    println!("Demo province in {}: {} sites in two districts.", province.dir.display(), SITES.len());
    println!("Users (passwords shown once, here only):");
    println!("  tinh.admin   (toàn tỉnh)             {admin}");
    println!("  lien.chieu   (Quận Liên Chiểu only)  {officer}");
    Ok(())
}
