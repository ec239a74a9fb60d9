//! The figures a nurse keeps open [M5]: people in quarantine, the current declaration round with who
//! is due, late and missing, and the open alerts. Read from projections and index keys only; shared by the
//! dashboard page, its live fragment and the JSON API.

use chrono::NaiveDateTime;
use outpost_sync::record::{Alert, AlertState, Person};
use serde::Serialize;

use super::{AppResult, Outpost};
use crate::base::rules::SlotState;

/// A person as the dashboard lists them: no identity number, no phone.
#[derive(Debug, Clone, Serialize)]
pub struct Brief {
    pub id: String,
    pub full_name: String,
    pub room: String,
}

impl From<&Person> for Brief {
    fn from(p: &Person) -> Brief {
        Brief { id: p.id.clone(), full_name: p.full_name.clone(), room: p.room.clone() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub slot: NaiveDateTime,
    pub in_quarantine: usize,
    pub declared: usize,
    pub due: Vec<Brief>,
    pub late: Vec<Brief>,
    pub missing: Vec<Brief>,
    pub open_alerts: usize,
    pub acknowledged_alerts: usize,
    /// The newest open and acknowledged alerts with the person's name.
    pub alerts: Vec<(Alert, String)>,
}

impl Outpost {
    /// Computes the dashboard at the box's current time.
    pub fn dashboard(&self) -> AppResult<Dashboard> {
        let now = self.now();
        let schedule = self.schedule();
        let slot = schedule.slot_for(now);
        let declared = self.declared_for(slot)?;
        let mut d = Dashboard {
            slot,
            in_quarantine: 0,
            declared: 0,
            due: Vec::new(),
            late: Vec::new(),
            missing: Vec::new(),
            open_alerts: self.count_alerts(AlertState::Open)?,
            acknowledged_alerts: self.count_alerts(AlertState::Acknowledged)?,
            alerts: Vec::new(),
        };
        for id in self.watched_ids()? {
            let Some(p) = self.store.get::<Person>(&id)? else {
                continue;
            };
            d.in_quarantine += 1;
            if declared.contains(&p.id) {
                d.declared += 1;
                continue;
            }
            if !schedule.owes(&p, slot) {
                continue;
            }
            let list = match schedule.state(slot, false, now) {
                SlotState::Declared => continue,
                SlotState::Due => &mut d.due,
                SlotState::Late => &mut d.late,
                SlotState::Missing => &mut d.missing,
            };
            list.push(Brief::from(&p));
        }
        for list in [&mut d.due, &mut d.late, &mut d.missing] {
            list.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.full_name.cmp(&b.full_name)));
        }
        let mut alerts = self.alerts(AlertState::Open, 20)?;
        alerts.extend(self.alerts(AlertState::Acknowledged, 20usize.saturating_sub(alerts.len()))?);
        for a in alerts {
            let name =
                self.store.get::<Person>(&a.person_id)?.map(|p| p.details.full_name).unwrap_or_default();
            d.alerts.push((a, name));
        }
        Ok(d)
    }
}
