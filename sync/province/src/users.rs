//! The province's users (`users.json` in its data folder, mode 0600): a provincial administrator sees
//! every site; a district officer sees the sites of one district, and nothing of the others. Passwords
//! are kept only as Argon2id hashes. There is no default user: `outpost-province user add` makes them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use outpost_link::ca;
use outpost_sync::secret::{verify_password, Busy, DUMMY_HASH};

use crate::server::SiteEntry;

/// What a user may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "district", rename_all = "snake_case")]
pub enum Scope {
    /// The whole province.
    Province,
    /// The sites of one district.
    District(String),
}

impl Scope {
    /// Whether a user with this scope may see `site`.
    pub fn sees(&self, site: &SiteEntry) -> bool {
        match self {
            Scope::Province => true,
            Scope::District(d) => site.district == *d,
        }
    }
}

/// A user of the province's web UI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub scope: Scope,
    pub password_hash: String,
}

/// The users file.
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
}

impl Users {
    pub fn new(province_dir: &Path) -> Users {
        Users { path: province_dir.join("users.json") }
    }

    pub fn all(&self) -> anyhow::Result<Vec<User>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("users.json is corrupt"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds `username` (or replaces its password, name and scope).
    pub fn add(
        &self,
        username: &str,
        display_name: &str,
        scope: Scope,
        password: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            outpost_sync::secret::check_username(username),
            "a user name has 3 to 32 lower-case letters, digits, '.', '-' or '_'"
        );
        if let Scope::District(d) = &scope {
            anyhow::ensure!(!d.trim().is_empty(), "a district officer needs a district");
        }
        outpost_sync::secret::check_password(password, &[username, display_name])
            .map_err(|(_, en)| anyhow::anyhow!(en))?;
        let mut users = self.all()?;
        users.retain(|u| u.username != username);
        users.push(User {
            username: username.into(),
            display_name: if display_name.is_empty() { username.into() } else { display_name.into() },
            scope,
            password_hash: outpost_sync::secret::hash_password(password),
        });
        users.sort_by(|a, b| a.username.cmp(&b.username));
        ca::write_private(&self.path, &serde_json::to_vec_pretty(&users)?)
    }

    /// The user `username` if `password` is theirs; `Err(Busy)` when the hashing pool's queue is
    /// full. An unknown name costs one hash as a known one does: the answer does not tell which
    /// names exist.
    pub fn verify(&self, username: &str, password: &str) -> Result<Option<User>, Busy> {
        let user = self.all().ok().and_then(|all| all.into_iter().find(|u| u.username == username));
        let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let right = verify_password(password, hash)?;
        Ok(user.filter(|_| right))
    }
}
