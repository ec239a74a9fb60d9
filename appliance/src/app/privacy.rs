//! Erasure [M13]: the personal data of people released or transferred more than
//! `privacy.purge_after_days` ago, and what each domain keeps for a limited time (the gate's log,
//! raw positions, spot-check photos). The erasure of a person asks each domain to erase what it
//! keeps of them — declarations' notes, follow-up sheets, SMS both ways, the last position — each
//! with its own keys; the person record is written anew without history.

use chrono::{DateTime, Utc};
use outpost_sync::{
    record::{Person, PersonStatus},
    WriteSet,
};

use super::{AppResult, Outpost};

/// What an erased name or message text reads.
pub const ERASED: &str = "(đã xóa)";

impl Outpost {
    /// Erases what has been kept long enough: people's personal data after release, the gate's
    /// log, raw positions and photos. Returns how many people were erased.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let purged = self.purge(now).await?;
        self.purge_check_ins(now).await?;
        self.purge_positions(now)?;
        self.purge_photos(now)?;
        Ok(purged)
    }

    /// Erases the personal data of people released or transferred more than
    /// `privacy.purge_after_days` ago: name, phone, ID number, address, birth year, decision
    /// number, their personal link, the notes staff wrote, and the numbers and texts of their SMS.
    /// What stays is anonymous: dates, category, flags and status, which the daily reports count.
    pub async fn purge(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let after = self.config.privacy.purge_after;
        let mut purged = 0;
        for id in self.ids_in([PersonStatus::Released, PersonStatus::Transferred])? {
            let Some(mut p) = self.store.get::<Person>(&id)? else { continue };
            let since = p.status_history.last().map_or(p.updated_at, |s| s.at);
            if p.purged_at.is_some() || now - since < after {
                continue;
            }
            let mut w = WriteSet::new();
            erase_person(&mut p, now);
            // New documents without history: a CRDT keeps every earlier value otherwise.
            w.replace(&p)?;
            self.erase_location(&mut w, &id);
            self.erase_declarations(&mut w, &id)?;
            self.erase_follow_ups(&mut w, &id)?;
            self.erase_outbox(&mut w, &id)?;
            self.erase_inbox(&mut w, &id)?;
            self.audit(&mut w, "outpost", "person.purge", &id, "")?;
            self.commit(w).await?;
            purged += 1;
        }
        if purged > 0 {
            tracing::info!(people = purged, "Personal data erased after release.");
            self.emit("person", "purge");
        }
        Ok(purged)
    }
}

/// Blanks a person's identifying fields, their link and the notes on their status changes.
fn erase_person(p: &mut Person, now: DateTime<Utc>) {
    let d = &mut p.details;
    d.full_name = ERASED.into();
    d.phone.clear();
    d.id_number.clear();
    d.address.clear();
    d.decision_number.clear();
    d.birth_year = None;
    p.declare_token.clear();
    for change in &mut p.status_history {
        change.note.clear();
    }
    // A home's address and coordinates are personal too.
    p.home_geofence = None;
    p.purged_at = Some(now);
    p.updated_at = now;
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use outpost_sync::record::Channel;

    use super::*;
    use crate::{
        app::{declarations::DeclarationInput, testing, AppError},
        base::{i18n::Lang, validate::PersonInput},
    };

    #[tokio::test]
    async fn personal_data_is_erased_after_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, clock, store) = testing::outpost(&dir, "2026-11-01T01:00:00Z", "");
        let today = app.today();
        let input = PersonInput {
            full_name: "Phan Thị Thu".into(),
            phone: "0905111222".into(),
            id_number: "048199001122".into(),
            address: "12 Lê Lợi".into(),
            quarantine_start: today.to_string(),
            quarantine_end: (today + Duration::days(14)).to_string(),
            birth_year: "1990".into(),
            ..PersonInput::default()
        };
        let p = app.create_person(&input, "yta").await.expect("create");
        let token = p.declare_token.clone();
        app.send_custom(std::slice::from_ref(&p), None, "Chào {name}", Lang::Vi, "yta").await.expect("sms");
        let note = DeclarationInput {
            temperature: Some("37".into()),
            note: "đau lưng".into(),
            ..Default::default()
        };
        app.declare(&p, &note, Channel::Personal, None).await.expect("declare");
        app.change_status(&p.id, PersonStatus::Released, "hết 14 ngày", "yta").await.expect("release");

        clock.advance(Duration::days(29));
        assert_eq!(app.purge_expired(app.now()).await.expect("purge"), 0, "not yet");
        assert_eq!(app.person(&p.id).expect("person").full_name, "Phan Thị Thu");

        clock.advance(Duration::days(2));
        assert_eq!(app.purge_expired(app.now()).await.expect("purge"), 1);
        let erased = app.person(&p.id).expect("person");
        assert_eq!(
            (
                erased.full_name.as_str(),
                erased.phone.as_str(),
                erased.id_number.as_str(),
                erased.address.as_str(),
                erased.birth_year
            ),
            ("(đã xóa)", "", "", "", None)
        );
        assert_eq!(
            (erased.status, erased.quarantine_start, erased.category),
            (PersonStatus::Released, p.quarantine_start, p.category),
            "the counts stay"
        );
        assert!(erased.status_history.iter().all(|s| s.note.is_empty()));
        assert!(matches!(app.person_by_token(&token), Err(AppError::NotFound)), "the personal link is dead");
        assert!(store.find::<Person>(Person::BY_ID_NUMBER, "048199001122").expect("find").is_empty());
        assert!(app.declarations_of(&p.id).expect("decls").iter().all(|d| d.note.is_empty()));
        let sms = app.outbox(usize::MAX).expect("outbox");
        assert!(sms
            .iter()
            .filter(|m| m.person_id.as_deref() == Some(p.id.as_str()))
            .all(|m| m.to.is_empty() && m.text == ERASED));
        // The Automerge document keeps no copy in its history either.
        let mut doc = store.document(&format!("person/{}", p.id)).expect("doc").expect("some");
        assert_eq!(outpost_sync::doc::hydrate(&doc)["phone"], "");
        let saved = doc.save();
        assert!(
            !saved.windows(10).any(|w| w == b"0905111222"),
            "the old phone number is gone from the document"
        );
        assert!(app.audit_log(10).expect("audit").iter().any(|e| e.action == "person.purge"));
        assert_eq!(app.purge(app.now()).await.expect("purge"), 0, "once");
    }
}
