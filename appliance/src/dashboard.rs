//! The figures a nurse keeps open [M5]: people in quarantine, the current declaration round with who
//! is due, late and missing, and the open alerts. Read from projections and index keys only; shared by the
//! dashboard page, its live fragment and the JSON API.

use chrono::NaiveDateTime;
use outpost_sync::record::{Alert, AlertState, Person};
use serde::Serialize;

use crate::{
    app::{AppResult, Outpost},
    rules::SlotState,
};

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

/// Computes the dashboard at the box's current time.
pub fn compute(app: &Outpost) -> AppResult<Dashboard> {
    let now = app.now();
    let slot = app.schedule.slot_for(now);
    let declared = app.declared_for(slot)?;
    let mut d = Dashboard {
        slot,
        in_quarantine: 0,
        declared: 0,
        due: Vec::new(),
        late: Vec::new(),
        missing: Vec::new(),
        open_alerts: app.count_alerts(AlertState::Open)?,
        acknowledged_alerts: app.count_alerts(AlertState::Acknowledged)?,
        alerts: Vec::new(),
    };
    for id in app.watched_ids()? {
        let Some(p) = app.store.get::<Person>(&id)? else {
            continue;
        };
        d.in_quarantine += 1;
        if declared.contains(&p.id) {
            d.declared += 1;
            continue;
        }
        if !app.schedule.owes(&p, slot) {
            continue;
        }
        let list = match app.schedule.state(slot, false, now) {
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
    let mut alerts = app.alerts(AlertState::Open, 20)?;
    alerts.extend(app.alerts(AlertState::Acknowledged, 20usize.saturating_sub(alerts.len()))?);
    for a in alerts {
        let name = app.store.get::<Person>(&a.person_id)?.map(|p| p.details.full_name).unwrap_or_default();
        d.alerts.push((a, name));
    }
    Ok(d)
}
