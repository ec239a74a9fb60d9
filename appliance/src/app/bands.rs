//! The band pool [M2]: registering bands, moving them through their states, handing one to a person
//! and taking it back. Every change is one write with its audit entry; the band's own history says who
//! changed what and when. The presence worker hears of each change ([`PoolNotice`]) once it is
//! durable.

use chrono::{DateTime, Utc};
use outpost_sync::{
    record::{Band, BandState, Person, PersonStatus},
    WriteSet,
};

use super::{AppError, AppResult, Outpost};
use crate::base::validate::{self, Problem};

/// What the presence worker must know of the pool, told once the change is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolNotice {
    /// Bands were registered, handed over or changed state: reload which are known and worn.
    Changed,
    /// A band stopped being worn by a person: close their open presence interval.
    Unassigned { band: String, person_id: String, at: DateTime<Utc> },
}

/// The last thing heard of a band (from the presence worker): when, and its battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub last_seen: DateTime<Utc>,
    pub battery_percent: Option<u8>,
}

/// A band id as scanners report it: a Bluetooth address in upper case with colons, or a beacon
/// identity (`iBeacon:<uuid>-<major>-<minor>`, `Eddystone:<namespace>-<instance>`) as typed or scanned.
pub fn normalize_band_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(address) = outpost_ble::normalize_address(raw) {
        return Some(address);
    }
    let (kind, rest) = raw.split_once(':')?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "ibeacon" => "iBeacon",
        "eddystone" => "Eddystone",
        _ => return None,
    };
    let ok = !rest.is_empty() && rest.len() <= 80 && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then(|| format!("{kind}:{}", rest.to_ascii_lowercase()))
}

fn bad_id() -> AppError {
    AppError::Invalid(vec![Problem::new(
        "band",
        "Mã vòng không hợp lệ: nhập địa chỉ Bluetooth (AA:BB:CC:DD:EE:FF) hoặc mã beacon.",
        "Not a band id: type its Bluetooth address (AA:BB:CC:DD:EE:FF) or beacon identity.",
    )])
}

impl Outpost {
    pub fn band(&self, id: &str) -> AppResult<Band> {
        self.store.get::<Band>(id)?.ok_or(AppError::NotFound)
    }

    /// Every band of the pool, by id.
    pub fn bands(&self) -> AppResult<Vec<Band>> {
        Ok(self.store.list::<Band>()?)
    }

    /// The band a person wears, if any.
    pub fn band_of(&self, person_id: &str) -> AppResult<Option<Band>> {
        Ok(self
            .store
            .find::<Band>(Band::BY_PERSON, person_id)?
            .into_iter()
            .find(|b| b.state == BandState::Assigned && b.person_id.as_deref() == Some(person_id)))
    }

    fn tell_pool(&self, notice: PoolNotice) {
        if let Some(tell) = &self.wiring.pool {
            tell(notice);
        }
    }

    fn pool_changed(&self) {
        self.tell_pool(PoolNotice::Changed);
    }

    /// Adds a band to the pool, in stock.
    pub async fn register_band(&self, raw_id: &str, label: &str, by: &str) -> AppResult<Band> {
        let id = normalize_band_id(raw_id).ok_or_else(bad_id)?;
        if self.store.get::<Band>(&id)?.is_some() {
            return Err(AppError::Conflict(Problem::new(
                "band",
                format!("Vòng {id} đã có trong kho."),
                format!("Band {id} is already in the pool."),
            )));
        }
        let now = self.now();
        let band = Band::new(id.clone(), validate::clip(label.trim(), 40), by, now);
        let mut w = WriteSet::new();
        w.put(&band)?;
        self.audit(&mut w, by, "band.register", &id, "")?;
        self.commit(w).await?;
        self.pool_changed();
        Ok(band)
    }

    /// Moves a band to another state by hand (charging, ready, returned, disinfecting, faulty, lost…).
    pub async fn change_band(&self, id: &str, to: BandState, note: &str, by: &str) -> AppResult<Band> {
        let mut band = self.band(id)?;
        if !band.state.next_by_hand().contains(&to) {
            return Err(AppError::Conflict(Problem::new(
                "state",
                format!("Không thể chuyển vòng từ \"{}\" sang \"{}\".", band.state.as_str(), to.as_str()),
                format!("A band cannot go from {} to {}.", band.state.as_str(), to.as_str()),
            )));
        }
        let now = self.now();
        let worn_by = band.person_id.clone().filter(|_| band.state == BandState::Assigned);
        band.change(to, None, by, &validate::clip(note, 200), now);
        let mut w = WriteSet::new();
        w.put(&band)?;
        self.audit(&mut w, by, "band.state", &band.id, to.as_str())?;
        self.commit(w).await?;
        if let Some(person_id) = worn_by {
            self.tell_pool(PoolNotice::Unassigned { band: band.id.clone(), person_id, at: now });
        }
        self.pool_changed();
        Ok(band)
    }

    /// Hands a band to a person. Refused unless the band is free, its last battery reading (what the
    /// presence worker last heard of it, `reading`) is at least `bands.handover_min_battery_percent`
    /// and it was seen within `bands.handover_seen_within_seconds`: a flat or silent band would raise
    /// an away alert for someone who never left.
    pub async fn hand_over(
        &self,
        band_id: &str,
        person_id: &str,
        reading: Option<Reading>,
        by: &str,
    ) -> AppResult<Band> {
        let id = normalize_band_id(band_id).ok_or_else(bad_id)?;
        let mut band = self.band(&id)?;
        let person: Person = self.person(person_id)?;
        let refuse = |vi: String, en: String| Err(AppError::Conflict(Problem::new("band", vi, en)));
        if !band.state.can_hand_over() {
            return refuse(
                format!("Vòng {id} đang ở trạng thái \"{}\", không thể giao.", band.state.as_str()),
                format!("Band {id} is {} and cannot be handed over.", band.state.as_str()),
            );
        }
        if !person.status.is_watched() {
            return refuse(
                "Người này không còn cách ly tại khu.".into(),
                "This person is no longer in quarantine here.".into(),
            );
        }
        if let Some(worn) = self.band_of(person_id)? {
            return refuse(
                format!("Người này đang đeo vòng {}. Thu hồi vòng đó trước.", worn.id),
                format!("This person already wears band {}. Take it back first.", worn.id),
            );
        }
        let b = &self.config.bands;
        let now = self.now();
        let within = b.handover_seen_within;
        match reading {
            Some(r) if now - r.last_seen <= within => match r.battery_percent {
                Some(pct) if pct >= b.handover_min_battery_percent => {}
                Some(pct) => {
                    return refuse(
                        format!(
                            "Pin vòng {id} còn {pct}%, cần ít nhất {}%. Hãy sạc vòng.",
                            b.handover_min_battery_percent
                        ),
                        format!(
                            "Band {id} is at {pct}%; at least {}% is needed. Charge it.",
                            b.handover_min_battery_percent
                        ),
                    )
                }
                None => {
                    return refuse(
                        format!("Chưa đọc được pin của vòng {id}."),
                        format!("Band {id} has not reported its battery."),
                    )
                }
            },
            _ => {
                return refuse(
                    format!(
                        "Không thấy vòng {id} trong {} giây qua. Bật vòng và để gần máy quét.",
                        within.num_seconds()
                    ),
                    format!(
                        "Band {id} was not seen in the last {} seconds. Switch it on near a scanner.",
                        within.num_seconds()
                    ),
                )
            }
        }
        band.change(BandState::Assigned, Some(person.id.clone()), by, "", now);
        let mut w = WriteSet::new();
        w.put(&band)?;
        self.audit(&mut w, by, "band.hand_over", &band.id, &person.id)?;
        self.commit(w).await?;
        self.pool_changed();
        Ok(band)
    }

    /// At release or transfer, the band worn by the person is marked returned, into `w`. Returns the
    /// band so the caller can tell the presence thread once the write is durable.
    pub(super) fn return_band_of(
        &self,
        w: &mut WriteSet,
        person: &Person,
        status: PersonStatus,
        by: &str,
    ) -> AppResult<Option<Band>> {
        if status.is_watched() {
            return Ok(None);
        }
        let Some(mut band) = self.band_of(&person.id)? else { return Ok(None) };
        band.change(
            BandState::Returned,
            None,
            by,
            &format!("người cách ly: {}", status.as_str()),
            self.now(),
        );
        w.put(&band)?;
        Ok(Some(band))
    }

    /// After a write that returned `band` from `person_id`.
    pub(super) fn band_returned(&self, band: &Band, person_id: &str) {
        let notice =
            PoolNotice::Unassigned { band: band.id.clone(), person_id: person_id.to_owned(), at: self.now() };
        self.tell_pool(notice);
        self.pool_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_ids() {
        assert_eq!(normalize_band_id(" d4e6f1a2b3c4 ").as_deref(), Some("D4:E6:F1:A2:B3:C4"));
        assert_eq!(
            normalize_band_id("IBEACON:E2C56DB5-DFFB-48D2-B060-D0F5A71096E0-1-42").as_deref(),
            Some("iBeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0-1-42")
        );
        assert!(normalize_band_id("band 7").is_none());
        assert!(normalize_band_id("iBeacon:").is_none());
        assert!(normalize_band_id("other:abc").is_none());
    }
}
