//! People under quarantine [M1]: registering them (by hand or from the district's list), editing,
//! changing their status (with the band taken back at release or transfer), finding them by their
//! personal link, their QR code or their ID number, and reading their identity number (audited).

use chrono::Duration;
use outpost_sync::{
    record::{Category, Person, PersonDetails, PersonStatus, StatusChange},
    WriteSet,
};

use super::{AppError, AppResult, Outpost};
use crate::base::validate::{self, PersonInput, Problem};

/// Refuses what only a person still in quarantine may do (declare, be sampled, report a position).
pub(super) fn require_watched(person: &Person) -> AppResult<()> {
    if person.status.is_watched() {
        Ok(())
    } else {
        Err(AppError::Conflict(Problem::new(
            "person",
            "Người này không còn trong diện cách ly.",
            "This person is no longer in quarantine.",
        )))
    }
}

impl Outpost {
    pub fn person(&self, id: &str) -> AppResult<Person> {
        self.store.get::<Person>(id)?.ok_or(AppError::NotFound)
    }

    /// The person whose personal link carries `token`.
    pub fn person_by_token(&self, token: &str) -> AppResult<Person> {
        if token.len() < 16 {
            return Err(AppError::NotFound);
        }
        self.store.find::<Person>(Person::BY_TOKEN, token)?.into_iter().next().ok_or(AppError::NotFound)
    }

    fn person_by_id_number(&self, id_number: &str) -> AppResult<Option<Person>> {
        if id_number.is_empty() {
            return Ok(None);
        }
        Ok(self.store.find::<Person>(Person::BY_ID_NUMBER, id_number)?.into_iter().next())
    }

    /// The person already registered as `p`: by ID number, or for a child without one, the person
    /// without one of the same name, birth year and phone ([`validate::identity`]).
    pub fn registered(&self, p: &PersonDetails) -> AppResult<Option<Person>> {
        if !p.id_number.is_empty() {
            return self.person_by_id_number(&p.id_number);
        }
        let identity = validate::identity(p);
        let same = self.store.find::<Person>(Person::BY_PHONE, &p.phone)?;
        Ok(same.into_iter().find(|other| validate::identity(&other.details) == identity))
    }

    /// Why `p` cannot be registered as a new person (or as `except` changed): who already is.
    fn refuse_duplicate(&self, p: &PersonDetails, except: Option<&str>) -> AppResult<()> {
        match self.registered(p)? {
            Some(existing) if Some(existing.id.as_str()) != except => {
                Err(AppError::Conflict(if p.id_number.is_empty() {
                    Problem::duplicate_without_id(&existing.full_name)
                } else {
                    Problem::duplicate_id_number(&existing.full_name)
                }))
            }
            _ => Ok(()),
        }
    }

    /// The watched person whose phone is `phone` (national form), if any.
    pub(super) fn watched_person_by_phone(&self, phone: &str) -> AppResult<Option<Person>> {
        Ok(self.store.find::<Person>(Person::BY_PHONE, phone)?.into_iter().find(|p| p.status.is_watched()))
    }

    /// The person a staff phone scanned or typed: their QR code (the link of their declaration
    /// page), their ID number, or their record id.
    pub fn person_by_code(&self, code: &str) -> AppResult<Person> {
        let code = code.trim();
        let token = code.rsplit_once("/d/").map_or(code, |(_, t)| t.trim_end_matches('/'));
        if let Ok(p) = self.person_by_token(token) {
            return Ok(p);
        }
        if let Some(p) = self.person_by_id_number(&validate::id_number_key(code))? {
            return Ok(p);
        }
        match self.person(code) {
            Err(AppError::NotFound) => Err(AppError::invalid(
                "code",
                "Không tìm thấy người có mã hoặc số CMND/CCCD này ở khu. Mã QR của khu khác không dùng được ở đây.",
                "No one at this site has this code or ID number. Another site's QR codes do not work here.",
            )),
            other => other,
        }
    }

    /// The link of a person's own declaration page (in their QR code and their SMS).
    pub fn personal_link(&self, person: &Person) -> String {
        format!("{}/d/{}", self.public_url(), person.declare_token)
    }

    /// Builds a new person record from validated input (not yet stored).
    pub fn new_person(&self, details: &PersonDetails, by: &str) -> Person {
        let now = self.now();
        Person {
            id: uuid::Uuid::new_v4().simple().to_string(),
            details: details.clone(),
            status: PersonStatus::InQuarantine,
            status_history: vec![StatusChange {
                status: PersonStatus::InQuarantine,
                at: now,
                by: by.to_owned(),
                note: String::new(),
            }],
            declare_token: outpost_sync::secret::random_token(),
            created_at: now,
            updated_at: now,
            purged_at: None,
            home_geofence: None,
        }
    }

    /// A new person's form, filled with what staff type least: today, 14 days, F1.
    pub fn person_form_defaults(&self) -> PersonInput {
        let today = self.today();
        PersonInput {
            quarantine_start: today.to_string(),
            quarantine_end: (today + Duration::days(14)).to_string(),
            category: "f1".into(),
            ..Default::default()
        }
    }

    pub async fn create_person(&self, input: &PersonInput, by: &str) -> AppResult<Person> {
        let valid = input.validate(self.today()).map_err(AppError::Invalid)?;
        self.refuse_duplicate(&valid, None)?;
        let person = self.new_person(&valid, by);
        let mut w = WriteSet::new();
        w.put(&person)?;
        self.audit(&mut w, by, "person.create", &person.id, "")?;
        self.commit(w).await?;
        self.emit("person", &person.id);
        Ok(person)
    }

    pub async fn update_person(&self, id: &str, input: &PersonInput, by: &str) -> AppResult<Person> {
        let mut person = self.person(id)?;
        let valid = input.validate(self.today()).map_err(AppError::Invalid)?;
        self.refuse_duplicate(&valid, Some(&person.id))?;
        person.details = valid;
        person.updated_at = self.now();
        let mut w = WriteSet::new();
        w.put(&person)?;
        self.audit(&mut w, by, "person.update", &person.id, "")?;
        self.commit(w).await?;
        self.emit("person", &person.id);
        Ok(person)
    }

    pub async fn change_status(
        &self,
        id: &str,
        status: PersonStatus,
        note: &str,
        by: &str,
    ) -> AppResult<Person> {
        let mut person = self.person(id)?;
        if person.status == status {
            return Ok(person);
        }
        let now = self.now();
        person.status = status;
        if status == PersonStatus::ConvertedF0 {
            person.details.category = Category::F0;
        }
        person.status_history.push(StatusChange {
            status,
            at: now,
            by: by.to_owned(),
            note: validate::clip(note, 500),
        });
        person.updated_at = now;
        let mut w = WriteSet::new();
        w.put(&person)?;
        let returned = self.return_band_of(&mut w, &person, status, by)?;
        self.audit(&mut w, by, "person.status", &person.id, status.as_str())?;
        self.commit(w).await?;
        if let Some(band) = returned {
            self.band_returned(&band, &person.id);
        }
        self.emit("person", &person.id);
        Ok(person)
    }

    /// Stores people already validated by an import, in one atomic write.
    pub async fn import_people(&self, rows: &[PersonDetails], by: &str) -> AppResult<usize> {
        let mut w = WriteSet::new();
        for row in rows {
            let person = self.new_person(row, by);
            w.put(&person)?;
        }
        self.audit(&mut w, by, "person.import", "", &rows.len().to_string())?;
        self.commit(w).await?;
        self.emit("person", "import");
        Ok(rows.len())
    }

    /// Stores the rows of a list checked earlier that are still new: rows registered since the
    /// check are skipped.
    pub async fn import_still_new(&self, rows: Vec<PersonDetails>, by: &str) -> AppResult<usize> {
        let rows: Vec<_> =
            rows.into_iter().filter(|r| self.registered(r).is_ok_and(|p| p.is_none())).collect();
        self.import_people(&rows, by).await
    }

    /// People, filtered: `query` matches part of a name, phone or room, or a whole ID number (never a
    /// part of one: guessing a number digit by digit finds no one); `status` and `category` exact.
    pub fn people(
        &self,
        query: &str,
        status: Option<PersonStatus>,
        category: Option<Category>,
    ) -> AppResult<Vec<Person>> {
        let q = validate::fold(query);
        let by_id = whole_id_number(query);
        let mut people: Vec<Person> = self
            .store
            .list::<Person>()?
            .into_iter()
            .filter(|p| status.is_none_or(|s| p.status == s))
            .filter(|p| category.is_none_or(|c| p.category == c))
            .filter(|p| {
                q.is_empty()
                    || validate::fold(&p.full_name).contains(&q)
                    || p.phone.contains(&q)
                    || by_id(p)
                    || validate::fold(&p.room).contains(&q)
            })
            .collect();
        people.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.full_name.cmp(&b.full_name)));
        Ok(people)
    }

    /// [`Outpost::people`] for a staff member's search: a search that finds someone by their ID number
    /// is audited, as a view of that number is.
    pub async fn search_people(
        &self,
        query: &str,
        status: Option<PersonStatus>,
        category: Option<Category>,
        by: &str,
    ) -> AppResult<Vec<Person>> {
        let list = self.people(query, status, category)?;
        let by_id = whole_id_number(query);
        let found: Vec<&Person> = list.iter().filter(|p| by_id(p)).collect();
        if !found.is_empty() {
            let mut w = WriteSet::new();
            for p in found {
                self.audit(&mut w, by, "person.search_id_number", &p.id, "")?;
            }
            self.commit(w).await?;
        }
        Ok(list)
    }

    /// Everyone, for an export staff asked for: the export is audited.
    pub async fn export_people(&self, by: &str) -> AppResult<Vec<Person>> {
        let list = self.people("", None, None)?;
        let mut w = WriteSet::new();
        self.audit(&mut w, by, "person.export", "", &list.len().to_string())?;
        self.commit(w).await?;
        Ok(list)
    }

    /// A person with their full identity number: who looked is audited (`via` says where).
    pub async fn reveal_person(&self, id: &str, by: &str, via: &str) -> AppResult<Person> {
        let person = self.person(id)?;
        let mut w = WriteSet::new();
        self.audit(&mut w, by, "person.view_id_number", &person.id, via)?;
        self.commit(w).await?;
        Ok(person)
    }

    /// Ids of the people currently watched (from the status index, keys only).
    pub fn watched_ids(&self) -> AppResult<Vec<String>> {
        self.ids_in(PersonStatus::ALL.into_iter().filter(|s| s.is_watched()))
    }

    /// Ids of the people in any of `statuses` (keys only).
    pub(super) fn ids_in(&self, statuses: impl IntoIterator<Item = PersonStatus>) -> AppResult<Vec<String>> {
        let mut ids = Vec::new();
        for s in statuses {
            ids.extend(self.store.index_scan(Person::BY_STATUS, s.as_str())?.into_iter().map(|(_, id)| id));
        }
        Ok(ids)
    }

    /// The people currently watched.
    pub(super) fn watched(&self) -> AppResult<Vec<Person>> {
        Ok(self
            .watched_ids()?
            .into_iter()
            .filter_map(|id| self.store.get::<Person>(&id).ok().flatten())
            .collect())
    }

    /// Everyone in quarantine in `room`.
    pub fn people_in_room(&self, room: &str) -> AppResult<Vec<Person>> {
        let room = room.trim();
        Ok(self
            .watched()?
            .into_iter()
            .filter(|p| !room.is_empty() && p.room.trim().eq_ignore_ascii_case(room))
            .collect())
    }

    /// The people a message goes to: those named by id, and everyone in `status` (as typed; empty:
    /// nobody more); each once.
    pub fn recipients(&self, ids: &[String], status: &str) -> AppResult<Vec<Person>> {
        let mut people = Vec::new();
        for id in ids {
            people.push(self.person(id)?);
        }
        if !status.is_empty() {
            let status = validate::required("status", status, PersonStatus::parse)
                .map_err(|p| AppError::Invalid(vec![p]))?;
            people.extend(self.people("", Some(status), None)?);
        }
        people.sort_by(|a, b| a.id.cmp(&b.id));
        people.dedup_by(|a, b| a.id == b.id);
        Ok(people)
    }

    /// A person's name for lists (empty when the record is gone).
    pub fn person_name(&self, id: &str) -> String {
        self.store.get::<Person>(id).ok().flatten().map(|p| p.details.full_name).unwrap_or_default()
    }
}

/// Whether a person is the one whose whole ID number `query` is (never a part of one).
fn whole_id_number(query: &str) -> impl Fn(&Person) -> bool {
    let key = validate::id_number_key(query);
    move |p| !key.is_empty() && p.id_number == key
}
