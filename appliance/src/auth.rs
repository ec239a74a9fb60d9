//! Accounts and access [M13]: Argon2id password hashes, sessions, the one-time setup link, API tokens
//! and login throttling. Secrets are stored only as hashes (`x/cred/…` holds Argon2id PHC strings;
//! session, setup and API tokens are kept as SHA-256 digests), so a copy of the data folder opens
//! nothing. There is no default account and no default password anywhere.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use chrono::{DateTime, Duration, Utc};
use outpost_sync::{record::Role, record::User, Store, StoreError, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|x| format!("{x:02x}")).collect()
}

/// Constant-time comparison of two secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub use outpost_sync::secret::{
    check_password, check_username, hash_password, random_token, verify_password,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    hash: String,
}

/// A staff session, stored under the digest of its cookie value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An API token for scripts and integrations, stored under its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub username: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SetupLink {
    digest: String,
    created_at: DateTime<Utc>,
}

/// Whether any staff account exists.
pub fn has_users(store: &Store) -> bool {
    store.count::<User>() > 0
}

/// Issues a new one-time setup link token (replacing any earlier one) when no account exists.
pub fn issue_setup_token(store: &Store, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
    if has_users(store) {
        return Ok(None);
    }
    let token = random_token();
    let mut w = WriteSet::new();
    w.put_local("setup", &SetupLink { digest: digest(&token), created_at: now })?;
    store.commit_blocking(w)?;
    Ok(Some(token))
}

/// Where the box leaves its setup link for the system to show (the packaged
/// `outpost-setup-link.path` copies it to the console and the boot partition); removed once the
/// first administrator exists.
pub fn setup_link_file(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("setup-link.txt")
}

/// Writes (`Some`) or removes (`None`) the setup link file; failures are logged, not fatal: the
/// link is in the journal too.
pub fn leave_setup_link(data_dir: &std::path::Path, link: Option<&str>) {
    let path = setup_link_file(data_dir);
    let result = match link {
        Some(link) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{link}\n").as_bytes()))
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(error) = result {
        tracing::warn!(%error, path = %path.display(), "Cannot update the setup link file.");
    }
}

/// Whether `token` is the current setup link (and no account exists yet).
pub fn setup_token_valid(store: &Store, token: &str) -> bool {
    !has_users(store)
        && store
            .get_local::<SetupLink>("setup")
            .ok()
            .flatten()
            .is_some_and(|s| same_secret(&s.digest, &digest(token)))
}

/// Adds an account (and its password hash) to `w`.
pub fn add_user(w: &mut WriteSet, user: &User, password: &str) -> Result<(), StoreError> {
    w.put(user)?;
    w.put_local(&format!("cred/{}", user.username), &Credential { hash: hash_password(password) })?;
    Ok(())
}

/// Replaces an account's password in `w`.
pub fn set_password(w: &mut WriteSet, username: &str, password: &str) -> Result<(), StoreError> {
    w.put_local(&format!("cred/{username}"), &Credential { hash: hash_password(password) })?;
    Ok(())
}

/// Consumes the setup link in `w`.
pub fn consume_setup(w: &mut WriteSet) {
    w.delete_local("setup");
}

/// Checks a username and password against the store. `None` for unknown, inactive or wrong.
pub fn check_login(store: &Store, username: &str, password: &str) -> Result<Option<User>, StoreError> {
    let user = store.get::<User>(username)?;
    let cred = store.get_local::<Credential>(&format!("cred/{username}"))?;
    match (user, cred) {
        (Some(user), Some(cred)) if user.active && verify_password(password, &cred.hash) => Ok(Some(user)),
        (_, None) => {
            // Spend the same time on unknown accounts as on known ones.
            let _ = verify_password(password, &hash_password("timing-equaliser"));
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Creates a session in `w`; returns the cookie value.
pub fn new_session(
    w: &mut WriteSet,
    username: &str,
    now: DateTime<Utc>,
    hours: u32,
) -> Result<String, StoreError> {
    let token = random_token();
    let session = Session {
        username: username.to_owned(),
        csrf: random_token(),
        created_at: now,
        expires_at: now + Duration::hours(hours.into()),
    };
    w.put_local(&format!("session/{}", digest(&token)), &session)?;
    Ok(token)
}

/// The live session behind a cookie value, with its account.
pub fn session(store: &Store, token: &str, now: DateTime<Utc>) -> Option<(Session, User)> {
    let s = store.get_local::<Session>(&format!("session/{}", digest(token))).ok().flatten()?;
    if s.expires_at <= now {
        return None;
    }
    let user = store.get::<User>(&s.username).ok().flatten().filter(|u| u.active)?;
    Some((s, user))
}

pub fn end_session(w: &mut WriteSet, token: &str) {
    w.delete_local(&format!("session/{}", digest(token)));
}

/// Creates an API token in `w`; returns the token, shown once.
pub fn new_api_token(
    w: &mut WriteSet,
    username: &str,
    label: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let token = format!("op_{}{}", random_token(), random_token());
    w.put_local(
        &format!("apitoken/{}", digest(&token)),
        &ApiToken { username: username.to_owned(), label: label.to_owned(), created_at: now },
    )?;
    Ok(token)
}

/// The account behind an API token.
pub fn api_token_user(store: &Store, token: &str) -> Option<User> {
    let t = store.get_local::<ApiToken>(&format!("apitoken/{}", digest(token))).ok().flatten()?;
    store.get::<User>(&t.username).ok().flatten().filter(|u| u.active)
}

/// A staff account with its role, as handlers see it.
#[derive(Debug, Clone)]
pub struct Staff {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for API-token requests.
    pub csrf: Option<String>,
}

/// Counts failed logins per account and per address and locks them for a while after too many.
#[derive(Debug)]
pub struct Throttle {
    max: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
}

impl Throttle {
    pub fn new(max: u32, lockout: Duration) -> Throttle {
        Throttle { max, lockout, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> Vec<String> {
        let mut k = vec![format!("u:{username}")];
        if let Some(ip) = ip {
            k.push(format!("a:{ip}"));
        }
        k
    }

    /// Until when the account or address is locked, if it is.
    pub fn locked_until(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(username, ip)
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|(n, last)| *n >= self.max && *last + self.lockout > now)
            .map(|(_, last)| *last + self.lockout)
            .max()
    }

    pub fn failed(&self, username: &str, ip: Option<IpAddr>, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| *last + self.lockout > now);
        }
        for k in Self::keys(username, ip) {
            let e = map.entry(k).or_insert((0, now));
            if e.1 + self.lockout <= now {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
        }
    }

    pub fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("u:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert_ne!(h, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn throttle_locks_after_failures_and_expires() {
        let t = Throttle::new(3, Duration::minutes(15));
        let now = Utc::now();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..2 {
            t.failed("lan", Some(ip), now);
        }
        assert!(t.locked_until("lan", Some(ip), now).is_none());
        t.failed("lan", Some(ip), now);
        assert!(t.locked_until("lan", None, now).is_some());
        assert!(t.locked_until("other", Some(ip), now).is_some(), "the address is locked too");
        assert!(t.locked_until("lan", Some(ip), now + Duration::minutes(16)).is_none());
    }

    #[test]
    fn tokens_are_random_and_compared_safely() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
    }
}
