//! The record types a box keeps, one Automerge document each.
//!
//! Every record names its document id (`<kind>/<id>`) and the index entries the UI queries need. Fields
//! are plain values so that two sites editing different fields of one record merge field by field. This
//! module holds data and its invariants only: no storage, no clock, no rules about when alerts fire.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// A record stored as its own Automerge document.
pub trait Record: Serialize + DeserializeOwned {
    /// The document kind, the first part of the document id (`person`, `alert`, …).
    const KIND: &'static str;

    /// This record's id, unique within its kind.
    fn id(&self) -> String;

    /// The secondary index entries for this record: `(index name, value)`. Values sort as strings.
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The full document id, `<kind>/<id>`.
    fn doc_id(&self) -> String {
        doc_id::<Self>(&self.id())
    }
}

/// The document id of record `id` of kind `R`.
pub fn doc_id<R: Record>(id: &str) -> String {
    format!("{}/{}", R::KIND, id)
}

/// Why a merged document could not be read as its record type.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("unknown document kind {0:?}")]
    UnknownKind(String),
    #[error("the merged document is not a valid {kind}: {source}")]
    Invalid {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A record's projection (its value as stored JSON) and index entries.
pub type Projection = (Vec<u8>, Vec<(&'static str, String)>);

/// Reads the merged `value` of a document of `kind` (one that arrived from a peer) as its record type:
/// the projection and index entries a local write of that record would have. Every replicated kind
/// is listed here.
pub fn project(kind: &str, value: serde_json::Value) -> Result<Projection, ProjectError> {
    fn as_record<R: Record>(value: serde_json::Value) -> Result<Projection, ProjectError> {
        let record: R = serde_json::from_value(value)
            .map_err(|source| ProjectError::Invalid { kind: R::KIND, source })?;
        // As a local write stores it (`WriteSet::put`): through a JSON value.
        let bytes = serde_json::to_value(&record)
            .and_then(|v| serde_json::to_vec(&v))
            .map_err(|source| ProjectError::Invalid { kind: R::KIND, source })?;
        Ok((bytes, record.index_entries()))
    }
    match kind {
        Site::KIND => as_record::<Site>(value),
        Person::KIND => as_record::<Person>(value),
        Declaration::KIND => as_record::<Declaration>(value),
        Alert::KIND => as_record::<Alert>(value),
        User::KIND => as_record::<User>(value),
        FollowUp::KIND => as_record::<FollowUp>(value),
        Band::KIND => as_record::<Band>(value),
        PresenceDay::KIND => as_record::<PresenceDay>(value),
        Sample::KIND => as_record::<Sample>(value),
        ZoneReport::KIND => as_record::<ZoneReport>(value),
        LocationDay::KIND => as_record::<LocationDay>(value),
        SpotCheck::KIND => as_record::<SpotCheck>(value),
        other => Err(ProjectError::UnknownKind(other.to_owned())),
    }
}

/// A quarantine zone or health centre: one box serves one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    /// Tên khu cách ly.
    pub name: String,
    /// Tên huyện/thành phố.
    pub district: String,
    /// Tên xã, phường, thị trấn.
    pub commune: String,
    /// Cấp quản lý (province, district, commune).
    pub management_level: String,
    /// Declaration times of day, site-local, `HH:MM`, sorted.
    pub schedule: Vec<String>,
    /// The site's UTC offset in minutes (Vietnam: 420).
    pub utc_offset_minutes: i32,
}

impl Record for Site {
    const KIND: &'static str = "site";
    fn id(&self) -> String {
        self.id.clone()
    }
}

/// Why a person is at the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    F1,
    F0,
    Traveller,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::F1, Category::F0, Category::Traveller];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::F1 => "f1",
            Category::F0 => "f0",
            Category::Traveller => "traveller",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where a person stands in their quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    InQuarantine,
    Released,
    Transferred,
    ConvertedF0,
}

impl PersonStatus {
    pub const ALL: [PersonStatus; 4] = [
        PersonStatus::InQuarantine,
        PersonStatus::Released,
        PersonStatus::Transferred,
        PersonStatus::ConvertedF0,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::InQuarantine => "in_quarantine",
            PersonStatus::Released => "released",
            PersonStatus::Transferred => "transferred",
            PersonStatus::ConvertedF0 => "converted_f0",
        }
    }

    /// The status in Vietnamese, as the box's pages name it.
    pub fn vi(self) -> &'static str {
        match self {
            PersonStatus::InQuarantine => "Đang cách ly",
            PersonStatus::Released => "Hoàn thành cách ly",
            PersonStatus::Transferred => "Chuyển viện",
            PersonStatus::ConvertedF0 => "Chuyển F0",
        }
    }
    pub fn parse(s: &str) -> Option<PersonStatus> {
        PersonStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Whether the person still has to declare and be watched. A person converted to F0 and cared for
    /// at the site is still watched.
    pub fn is_watched(self) -> bool {
        matches!(self, PersonStatus::InQuarantine | PersonStatus::ConvertedF0)
    }
}

/// Gender as the district lists give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Other,
    #[default]
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Gender> {
        [Gender::Male, Gender::Female, Gender::Other, Gender::Unknown].into_iter().find(|g| g.as_str() == s)
    }
}

/// One change of a person's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: PersonStatus,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(default)]
    pub note: String,
}

/// What the district's list says about a person: the fields staff type and import [M1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonDetails {
    pub full_name: String,
    pub birth_year: Option<i32>,
    pub phone: String,
    pub gender: Gender,
    /// Số CMND/CCCD. Shown masked in lists; every full view is audited.
    pub id_number: String,
    /// Địa chỉ cách ly.
    pub address: String,
    pub room: String,
    pub quarantine_start: NaiveDate,
    pub quarantine_end: NaiveDate,
    /// Số Quyết định.
    pub decision_number: String,
    pub category: Category,
    pub worker: bool,
    pub child: bool,
    pub pregnant: bool,
    pub foreigner: bool,
}

/// A person under quarantine at the site [M1]: their details (stored flat, field by field) and what
/// the site records about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    #[serde(flatten)]
    pub details: PersonDetails,
    pub status: PersonStatus,
    pub status_history: Vec<StatusChange>,
    /// The unguessable token of the person's own declaration link.
    pub declare_token: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the personal data was erased (a configured time after release); the record stays for
    /// the counts of the daily reports.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
    /// For home quarantine: the home's geofence (else the site's applies) [M8].
    #[serde(default)]
    pub home_geofence: Option<Geofence>,
}

/// A circle on the map: where a person must stay [M8].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: u32,
    /// The address it stands for, as staff typed it.
    #[serde(default)]
    pub address: String,
}

/// Where a spot check is [M7].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotCheckState {
    /// Planned for `due_at`, not sent yet.
    Scheduled,
    /// The SMS is queued; waiting for the photo until the deadline.
    Sent,
    Answered,
    Missed,
    /// Not sent: it fell due while the box was not running (or its clock was behind), more than an
    /// hour ago; a burst of stale checks would be unfair and useless.
    Skipped,
}

impl SpotCheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            SpotCheckState::Scheduled => "scheduled",
            SpotCheckState::Sent => "sent",
            SpotCheckState::Answered => "answered",
            SpotCheckState::Missed => "missed",
            SpotCheckState::Skipped => "skipped",
        }
    }
}

/// Staff's verdict on a spot check's photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotReview {
    Pending,
    Accepted,
    Rejected,
}

impl SpotReview {
    pub fn as_str(self) -> &'static str {
        match self {
            SpotReview::Pending => "pending",
            SpotReview::Accepted => "accepted",
            SpotReview::Rejected => "rejected",
        }
    }
}

/// A spot check [M7]: its outcome only (the link's token and the photo stay on the box).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotCheck {
    pub id: String,
    pub person_id: String,
    pub due_at: DateTime<Utc>,
    /// `random`, or `staff:<user>` for one staff asked for.
    pub reason: String,
    pub state: SpotCheckState,
    pub sent_at: Option<DateTime<Utc>>,
    pub deadline: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Whether the answer's position was inside the geofence (`None`: not judged).
    pub position_inside: Option<bool>,
    pub review: SpotReview,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

impl SpotCheck {
    /// The deadline as the site reads it, `HH:MM dd/mm`.
    pub fn deadline_local(&self, offset: chrono::FixedOffset) -> String {
        self.deadline.with_timezone(&offset).format("%H:%M %d/%m").to_string()
    }
}

impl Record for SpotCheck {
    const KIND: &'static str = "spotcheck";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("spot_state", format!("{}|{}", self.state.as_str(), self.due_at.to_rfc3339())),
            ("spot_person", format!("{}|{}", self.person_id, self.due_at.to_rfc3339())),
        ]
    }
}

/// A person's location summary for a day [M8], replicated instead of raw positions (which stay on
/// the box): written on the day's first report and on each crossing of the geofence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationDay {
    pub person_id: String,
    pub date: NaiveDate,
    pub first_report_at: DateTime<Utc>,
    /// How many times the person went outside that day.
    pub outside_times: u32,
    pub last_outside_at: Option<DateTime<Utc>>,
    /// Inside at the last judged position (`None`: none could be judged yet).
    pub inside: Option<bool>,
}

impl LocationDay {
    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for LocationDay {
    const KIND: &'static str = "locationday";
    fn id(&self) -> String {
        LocationDay::make_id(&self.person_id, self.date)
    }
}

impl std::ops::Deref for Person {
    type Target = PersonDetails;
    fn deref(&self) -> &PersonDetails {
        &self.details
    }
}

impl Record for Person {
    const KIND: &'static str = "person";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![("person_status", self.status.as_str().to_owned())];
        for (index, value) in [
            ("person_token", &self.declare_token),
            ("person_name", &self.full_name.to_lowercase()),
            ("person_phone", &self.phone),
            ("person_id_number", &self.id_number),
        ] {
            if !value.is_empty() {
                ix.push((index, value.clone()));
            }
        }
        ix
    }
}

/// A symptom on the declaration form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Symptom {
    Fever,
    Cough,
    SoreThroat,
    ShortnessOfBreath,
    LossOfTasteOrSmell,
    Fatigue,
    Diarrhoea,
    Other,
}

impl Symptom {
    pub const ALL: [Symptom; 8] = [
        Symptom::Fever,
        Symptom::Cough,
        Symptom::SoreThroat,
        Symptom::ShortnessOfBreath,
        Symptom::LossOfTasteOrSmell,
        Symptom::Fatigue,
        Symptom::Diarrhoea,
        Symptom::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Symptom::Fever => "fever",
            Symptom::Cough => "cough",
            Symptom::SoreThroat => "sore_throat",
            Symptom::ShortnessOfBreath => "shortness_of_breath",
            Symptom::LossOfTasteOrSmell => "loss_of_taste_or_smell",
            Symptom::Fatigue => "fatigue",
            Symptom::Diarrhoea => "diarrhoea",
            Symptom::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Symptom> {
        Symptom::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How a declaration reached the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The person's own page, opened from their link or QR code.
    Personal,
    /// Staff entering it on the person's behalf.
    Staff,
    /// An SMS reply.
    Sms,
}

/// A health declaration for one slot of the schedule [M4].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    pub id: String,
    pub person_id: String,
    /// The scheduled time (site-local) this declaration answers.
    pub slot: NaiveDateTime,
    pub submitted_at: DateTime<Utc>,
    /// Whether it arrived within the grace period of its slot.
    pub on_time: bool,
    pub channel: Channel,
    /// The staff member who entered it, for [`Channel::Staff`].
    pub entered_by: Option<String>,
    /// Body temperature, °C.
    pub temperature: f64,
    /// Blood oxygen saturation, %.
    pub spo2: Option<u8>,
    pub symptoms: Vec<Symptom>,
    pub note: String,
}

impl Record for Declaration {
    const KIND: &'static str = "declaration";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![
            ("decl_slot", format!("{}|{}", slot_key(self.slot), self.person_id)),
            ("decl_person", format!("{}|{}", self.person_id, slot_key(self.slot))),
        ];
        if self.on_time {
            ix.push(("decl_on_time", format!("{}|{}", slot_key(self.slot), self.person_id)));
        }
        ix
    }
}

/// The sortable text form of a slot, `YYYY-MM-DDTHH:MM`.
pub fn slot_key(slot: NaiveDateTime) -> String {
    slot.format("%Y-%m-%dT%H:%M").to_string()
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A declaration with temperature at or above the threshold.
    Fever,
    /// A declaration with SpO2 below the threshold.
    LowSpo2,
    /// A declaration reporting shortness of breath.
    ShortnessOfBreath,
    /// No declaration for a slot after both grace periods.
    MissingDeclaration,
    /// The person's band has not been seen for the configured time.
    BandAway,
    /// The band's strap was opened (tamper).
    StrapOpened,
    /// The band's battery fell to the low mark.
    BandBatteryLow,
    /// A test result was positive (the F1 → F0 workflow starts).
    TestPositive,
    /// A position clearly outside the person's geofence.
    OutsideGeofence,
    /// A spot check not answered before its deadline.
    SpotCheckMissed,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Fever => "fever",
            AlertKind::LowSpo2 => "low_spo2",
            AlertKind::ShortnessOfBreath => "shortness_of_breath",
            AlertKind::MissingDeclaration => "missing_declaration",
            AlertKind::BandAway => "band_away",
            AlertKind::StrapOpened => "strap_opened",
            AlertKind::BandBatteryLow => "band_battery_low",
            AlertKind::TestPositive => "test_positive",
            AlertKind::OutsideGeofence => "outside_geofence",
            AlertKind::SpotCheckMissed => "spot_check_missed",
        }
    }

    /// The kind in Vietnamese, as the box's pages name it.
    pub fn vi(self) -> &'static str {
        match self {
            AlertKind::Fever => "Sốt",
            AlertKind::LowSpo2 => "SpO2 thấp",
            AlertKind::ShortnessOfBreath => "Khó thở",
            AlertKind::MissingDeclaration => "Không khai báo",
            AlertKind::BandAway => "Rời khu vực (vòng không được thấy)",
            AlertKind::StrapOpened => "Dây đeo bị mở",
            AlertKind::BandBatteryLow => "Pin vòng yếu",
            AlertKind::TestPositive => "Xét nghiệm dương tính",
            AlertKind::OutsideGeofence => "Ra khỏi vùng cách ly",
            AlertKind::SpotCheckMissed => "Không trả lời kiểm tra đột xuất",
        }
    }
}

/// How urgent an alert is. Severe ones also go to the on-duty phone by SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Severe,
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<AlertState> {
        [AlertState::Open, AlertState::Acknowledged, AlertState::Resolved]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// An alert for staff [M5].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from what the alert is about, so the same cause never raises two alerts.
    pub id: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub person_id: String,
    /// What raised it: a declaration id, or a slot key for a missing declaration.
    pub subject: String,
    /// A short human-readable detail (a temperature, a slot time), no personal identifiers.
    pub detail: String,
    pub state: AlertState,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_note: String,
    /// How many times it escalated while nobody acknowledged it.
    pub escalations: u32,
    pub last_escalated_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// A new open alert.
    pub fn new(
        id: String,
        kind: AlertKind,
        severity: Severity,
        person_id: &str,
        subject: &str,
        detail: String,
        now: DateTime<Utc>,
    ) -> Alert {
        Alert {
            id,
            kind,
            severity,
            person_id: person_id.to_owned(),
            subject: subject.to_owned(),
            detail,
            state: AlertState::Open,
            raised_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            resolution_note: String::new(),
            escalations: 0,
            last_escalated_at: None,
        }
    }
}

impl Record for Alert {
    const KIND: &'static str = "alert";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("alert_state", format!("{}|{}", self.state.as_str(), self.raised_at.to_rfc3339())),
            ("alert_person", format!("{}|{}", self.person_id, self.raised_at.to_rfc3339())),
        ]
    }
}

/// A staff role [M13].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Medical,
    /// Read-only.
    Manager,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Medical, Role::Manager];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Medical => "medical",
            Role::Manager => "manager",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Whether this role may change records.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::Manager)
    }
}

/// A named staff account. The password hash is box-local and never part of this record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl Record for User {
    const KIND: &'static str = "user";
    fn id(&self) -> String {
        self.username.clone()
    }
}

/// The staff-kept part of the daily follow-up sheet for one person and day [M9]. The figures
/// (declarations on time, maximum temperature, symptoms) are computed from declarations when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub person_id: String,
    pub date: NaiveDate,
    pub presence: String,
    pub tests: String,
    pub notes: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl FollowUp {
    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for FollowUp {
    const KIND: &'static str = "followup";
    fn id(&self) -> String {
        FollowUp::make_id(&self.person_id, self.date)
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![("followup_date", format!("{}|{}", self.date, self.person_id))]
    }
}

/// A test result [M10].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    /// Sampled, no result yet.
    Pending,
    Negative,
    Positive,
}

impl TestResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TestResult::Pending => "pending",
            TestResult::Negative => "negative",
            TestResult::Positive => "positive",
        }
    }

    /// The result in Vietnamese, as the box's pages and the laboratory's lists name it.
    pub fn vi(self) -> &'static str {
        match self {
            TestResult::Pending => "Chờ kết quả",
            TestResult::Negative => "Âm tính",
            TestResult::Positive => "Dương tính",
        }
    }

    pub fn parse(s: &str) -> Option<TestResult> {
        [TestResult::Pending, TestResult::Negative, TestResult::Positive]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One sampling of one person in one round (lần lấy mẫu 1, 2, 3, …) and its result [M10]. Its id is
/// the person's and the round's, so a round is recorded once whichever box or list records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub person_id: String,
    pub round: u32,
    /// The site's calendar day of the sampling (the daily report counts it there).
    pub sampled_on: NaiveDate,
    pub sampled_at: DateTime<Utc>,
    pub sampled_by: String,
    pub result: TestResult,
    pub result_at: Option<DateTime<Utc>>,
    pub result_by: Option<String>,
}

impl Sample {
    pub fn make_id(person_id: &str, round: u32) -> String {
        format!("{person_id}/{round}")
    }
}

impl Record for Sample {
    const KIND: &'static str = "sample";
    fn id(&self) -> String {
        Sample::make_id(&self.person_id, self.round)
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sample_person", format!("{}|{:03}", self.person_id, self.round)),
            ("sample_day", format!("{}|{}", self.sampled_on, self.id())),
        ]
    }
}

/// A zone daily report as the zone's manager confirmed it [M11]: the figures of that moment, which
/// the province adds up. Confirming again (after a late entry) replaces them; the document's history
/// keeps the earlier ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneReport {
    pub site_id: String,
    pub date: NaiveDate,
    pub figures: crate::report::ZoneDay,
    pub confirmed_by: String,
    pub confirmed_at: DateTime<Utc>,
}

impl Record for ZoneReport {
    const KIND: &'static str = "zonereport";
    fn id(&self) -> String {
        self.date.to_string()
    }
}

/// Where a wristband is in its life at the site [M2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandState {
    /// Registered, not prepared.
    Stock,
    Charging,
    /// Charged and disinfected: may be handed over.
    Ready,
    /// Worn by a person.
    Assigned,
    /// Taken back (at release or transfer), to be disinfected.
    Returned,
    Disinfecting,
    Faulty,
    Lost,
}

impl BandState {
    pub const ALL: [BandState; 8] = [
        BandState::Stock,
        BandState::Charging,
        BandState::Ready,
        BandState::Assigned,
        BandState::Returned,
        BandState::Disinfecting,
        BandState::Faulty,
        BandState::Lost,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BandState::Stock => "stock",
            BandState::Charging => "charging",
            BandState::Ready => "ready",
            BandState::Assigned => "assigned",
            BandState::Returned => "returned",
            BandState::Disinfecting => "disinfecting",
            BandState::Faulty => "faulty",
            BandState::Lost => "lost",
        }
    }
    pub fn parse(s: &str) -> Option<BandState> {
        BandState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The states staff may move a band to from this one by hand. `Assigned` is reached only by a
    /// hand-over (which checks battery and presence), and leaves only through return, fault or loss.
    pub fn next_by_hand(self) -> &'static [BandState] {
        use BandState::*;
        match self {
            Stock => &[Charging, Ready, Faulty, Lost],
            Charging => &[Ready, Stock, Faulty, Lost],
            Ready => &[Charging, Stock, Faulty, Lost],
            Assigned => &[Returned, Faulty, Lost],
            Returned => &[Disinfecting, Faulty, Lost],
            Disinfecting => &[Ready, Charging, Faulty],
            Faulty => &[Stock, Lost],
            Lost => &[Returned, Stock],
        }
    }

    /// Whether a band in this state may be handed over to a person.
    pub fn can_hand_over(self) -> bool {
        matches!(self, BandState::Ready | BandState::Charging | BandState::Stock)
    }
}

/// One change of a band's state: who, when, and for whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandChange {
    pub at: DateTime<Utc>,
    pub by: String,
    pub from: Option<BandState>,
    pub to: BandState,
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// A wristband of the site's pool [M2]. Its id is what the scanners report: a Bluetooth address
/// (`AA:BB:CC:DD:EE:FF`) or a beacon identity. The history is a map keyed by time (not a list) so that
/// changes made on two sides merge as a union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub id: String,
    /// The number printed on the band, if any.
    #[serde(default)]
    pub label: String,
    pub state: BandState,
    pub person_id: Option<String>,
    pub history: std::collections::BTreeMap<String, BandChange>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A key for an entry made at `at` in a log kept as a map keyed by time (a band's history, a day's
/// presence intervals): RFC 3339 with microseconds, so keys sort by time, and made unique with `+`
/// when two entries share an instant.
pub fn time_key<V>(log: &std::collections::BTreeMap<String, V>, at: DateTime<Utc>) -> String {
    let mut key = at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    while log.contains_key(&key) {
        key.push('+');
    }
    key
}

impl Band {
    /// A band just registered, in stock, with its registration as the first entry of its history.
    pub fn new(id: String, label: String, by: &str, at: DateTime<Utc>) -> Band {
        let mut band = Band {
            id,
            label,
            state: BandState::Stock,
            person_id: None,
            history: std::collections::BTreeMap::new(),
            registered_at: at,
            updated_at: at,
        };
        band.history.insert(
            time_key(&band.history, at),
            BandChange {
                at,
                by: by.to_owned(),
                from: None,
                to: BandState::Stock,
                person_id: None,
                note: String::new(),
            },
        );
        band
    }

    /// Moves the band to `to`, recording who did it.
    pub fn change(
        &mut self,
        to: BandState,
        person_id: Option<String>,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) {
        self.history.insert(
            time_key(&self.history, at),
            BandChange {
                at,
                by: by.to_owned(),
                from: Some(self.state),
                to,
                person_id: person_id.clone(),
                note: note.to_owned(),
            },
        );
        self.state = to;
        self.person_id = person_id;
        self.updated_at = at;
    }
}

impl Record for Band {
    const KIND: &'static str = "band";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![("band_state", self.state.as_str().to_owned())];
        if let Some(p) = &self.person_id {
            ix.push(("band_person", p.clone()));
        }
        ix
    }
}

/// Where a band was during part of a day, as the presence engine decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceInterval {
    /// `present`, `unseen` or `away`.
    pub state: String,
    /// The nearest scanner (a room or a gateway) while present.
    #[serde(default)]
    pub place: String,
    /// The end, or `None` while it lasts.
    pub to: Option<DateTime<Utc>>,
}

/// A person's presence for one site-local day [M3]: intervals keyed by their start (RFC 3339), which
/// merge as a union. Derived from sightings, which stay on the box; only this summary replicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceDay {
    pub person_id: String,
    pub date: NaiveDate,
    pub band: String,
    pub intervals: std::collections::BTreeMap<String, PresenceInterval>,
}

impl PresenceDay {
    pub fn make_id(person_id: &str, date: NaiveDate) -> String {
        format!("{person_id}/{date}")
    }
}

impl Record for PresenceDay {
    const KIND: &'static str = "presence";
    fn id(&self) -> String {
        PresenceDay::make_id(&self.person_id, self.date)
    }
}
