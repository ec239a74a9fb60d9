//! Staff accounts and roles [M13]; the password hash is box-local and never part of the record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

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
    /// Whether this role may confirm (sign) the zone's daily report: the zone head (manager), who
    /// answers for it to the district, and administrators.
    pub fn can_confirm_report(self) -> bool {
        matches!(self, Role::Admin | Role::Manager)
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
