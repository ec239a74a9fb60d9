//! The MQTT broker's devices [M15]: the gateways and phones that may connect, each with a name and
//! a password an administrator gives it, stored as an Argon2id hash (box-local
//! `mqtt-cred/<name>`). There is no anonymous access. The broker itself is in
//! `crate::services::mqtt`; it asks [`Outpost::device_login_ok`] at each login.

use outpost_sync::{
    secret::{check_password, hash_password, verify_password},
    WriteSet,
};
use serde::{Deserialize, Serialize};

use super::{AppError, AppResult, Outpost};
use crate::base::validate::Problem;

const PREFIX: &str = "mqtt-cred/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Device credential names: 3–32 letters, digits, `.`, `-`, `_`.
pub fn check_name(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

impl Outpost {
    /// Adds (or replaces) a device's credentials.
    pub async fn add_device(
        self: &std::sync::Arc<Self>,
        name: &str,
        password: &str,
        by: &str,
    ) -> AppResult<()> {
        let mut list = Vec::new();
        if !check_name(name) {
            list.push(Problem::new(
                "name",
                "Tên thiết bị: 3–32 chữ, số, dấu . - _",
                "Device name: 3–32 letters, digits, . - _",
            ));
        }
        if let Err((vi, en)) = check_password(password) {
            list.push(Problem::new("password", vi, en));
        }
        if !list.is_empty() {
            return Err(AppError::Invalid(list));
        }
        let (app, name, password, by) = (self.clone(), name.to_owned(), password.to_owned(), by.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut w = WriteSet::new();
            let credential = Credential { hash: hash_password(&password), created_at: app.now() };
            w.put_local(&format!("{PREFIX}{name}"), &credential)?;
            app.audit(&mut w, &by, "mqtt.credential", &name, "")?;
            app.commit_blocking(w)?;
            Ok(())
        })
        .await
        .map_err(|_| AppError::Store(outpost_sync::StoreError::Closed))?
    }

    /// The names of the devices that may connect.
    pub fn devices(&self) -> AppResult<Vec<String>> {
        Ok(self
            .store
            .scan_local::<Credential>(PREFIX)?
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(PREFIX).map(str::to_owned))
            .collect())
    }

    /// Whether a device's name and password are right (Argon2: off the async runtime).
    pub fn device_login_ok(&self, name: &str, password: &str) -> bool {
        self.store
            .get_local::<Credential>(&format!("{PREFIX}{name}"))
            .ok()
            .flatten()
            .is_some_and(|c| verify_password(password, &c.hash))
    }
}
