//! The site record: one box serves one quarantine zone or health centre.

use serde::{Deserialize, Serialize};

use super::Record;

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
