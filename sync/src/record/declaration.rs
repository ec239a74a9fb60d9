//! Health declarations [M4]: one per person and slot of the schedule, with its symptoms.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

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

impl Declaration {
    /// Index: `<slot>|<person>` → declarations (who declared for a slot).
    pub const BY_SLOT: &'static str = "decl_slot";
    /// Index: `<person>|<slot>` → declarations (a person's, by slot).
    pub const BY_PERSON: &'static str = "decl_person";
    /// Index: `<slot>|<person>` of the declarations made on time (the report's chart counts them).
    pub const ON_TIME: &'static str = "decl_on_time";
}

impl Record for Declaration {
    const KIND: &'static str = "declaration";
    fn id(&self) -> String {
        self.id.clone()
    }
    fn index_entries(&self) -> Vec<(&'static str, String)> {
        let mut ix = vec![
            (Declaration::BY_SLOT, format!("{}|{}", slot_key(self.slot), self.person_id)),
            (Declaration::BY_PERSON, format!("{}|{}", self.person_id, slot_key(self.slot))),
        ];
        if self.on_time {
            ix.push((Declaration::ON_TIME, format!("{}|{}", slot_key(self.slot), self.person_id)));
        }
        ix
    }
}

/// The sortable text form of a slot, `YYYY-MM-DDTHH:MM`.
pub fn slot_key(slot: NaiveDateTime) -> String {
    slot.format("%Y-%m-%dT%H:%M").to_string()
}
