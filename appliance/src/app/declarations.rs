//! Health declarations [M4]: from the person's own page, from staff on their behalf, or by SMS. A
//! declaration answers the latest slot that opened; the alert it raises, if any, is written in the
//! same write, with the SMS to the on-duty phones when it is severe.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use outpost_sync::{
    record::{slot_key, Alert, Channel, Declaration, Person},
    WriteSet,
};

use super::{people::require_watched, AppError, AppResult, Outpost};
pub use crate::base::validate::DeclarationInput;
use crate::base::{rules, validate};

impl Outpost {
    /// Ids of the people who declared for `slot`.
    pub fn declared_for(&self, slot: NaiveDateTime) -> AppResult<HashSet<String>> {
        let prefix = format!("{}|", slot_key(slot));
        Ok(self
            .store
            .index_scan(Declaration::BY_SLOT, &prefix)?
            .into_iter()
            .filter_map(|(v, _)| v.split_once('|').map(|(_, p)| p.to_owned()))
            .collect())
    }

    /// A person's declarations, newest first.
    pub fn declarations_of(&self, person_id: &str) -> AppResult<Vec<Declaration>> {
        let mut out = Vec::new();
        for (_, id) in
            self.store.index_scan(Declaration::BY_PERSON, &format!("{person_id}|"))?.into_iter().rev()
        {
            if let Some(d) = self.store.get::<Declaration>(&id)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// How many declarations of the site's day `date` came on time (index keys only).
    pub(super) fn on_time_count(&self, date: NaiveDate) -> AppResult<usize> {
        Ok(self.store.index_scan(Declaration::ON_TIME, &format!("{date}T"))?.len())
    }

    /// Records a declaration and, in the same write, the alert it raises. Returns both.
    pub async fn declare(
        &self,
        person: &Person,
        input: &DeclarationInput,
        channel: Channel,
        entered_by: Option<&str>,
    ) -> AppResult<(Declaration, Option<Alert>)> {
        self.declare_as(&uuid::Uuid::new_v4().simple().to_string(), person, input, channel, entered_by).await
    }

    /// [`Outpost::declare`] with a given declaration id (an SMS's, so handling it twice is harmless).
    pub async fn declare_as(
        &self,
        id: &str,
        person: &Person,
        input: &DeclarationInput,
        channel: Channel,
        entered_by: Option<&str>,
    ) -> AppResult<(Declaration, Option<Alert>)> {
        let valid = validate::declaration(input).map_err(AppError::Invalid)?;
        require_watched(person)?;
        let now = self.now();
        let schedule = self.schedule();
        let slot = schedule.slot_for(now);
        let decl = Declaration {
            id: id.to_owned(),
            person_id: person.id.clone(),
            slot,
            submitted_at: now,
            on_time: schedule.on_time(slot, now),
            channel,
            entered_by: entered_by.map(str::to_owned),
            temperature: valid.temperature,
            spo2: valid.spo2,
            symptoms: valid.symptoms.clone(),
            note: valid.note.clone(),
        };
        let mut w = WriteSet::new();
        w.put(&decl)?;
        let thresholds = self.config.alerts.thresholds;
        let alert = rules::evaluate(decl.temperature, decl.spo2, &decl.symptoms, thresholds).map(|f| {
            Alert::new(format!("decl-{}", decl.id), f.kind, f.severity, &person.id, &decl.id, f.detail, now)
        });
        if let Some(alert) = &alert {
            w.put(alert)?;
            self.notify_on_duty(&mut w, alert, person)?;
        }
        if let Some(by) = entered_by {
            self.audit(&mut w, by, "declaration.enter", &person.id, "")?;
        }
        // A missed round is no longer a concern once the person has declared.
        let resolved = self.stage_declared_since(&mut w, person, now)?;
        self.commit(w).await?;
        self.emit("declaration", &decl.id);
        for id in &resolved {
            self.emit("alert", id);
        }
        if let Some(a) = &alert {
            self.emit("alert", &a.id);
            self.wake_outbox();
        }
        Ok((decl, alert))
    }

    /// Erasure [M13]: blanks the notes of `person_id`'s declarations, as new documents, into `w`.
    pub(super) fn erase_declarations(&self, w: &mut WriteSet, person_id: &str) -> AppResult<()> {
        for mut decl in self.declarations_of(person_id)?.into_iter().filter(|d| !d.note.is_empty()) {
            decl.note.clear();
            w.replace(&decl)?;
        }
        Ok(())
    }
}
