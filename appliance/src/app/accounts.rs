//! Accounts and access [M13]: the one-time setup link and the first administrator, logins with
//! throttling, sessions, API tokens, the administration of accounts, and the audit log.
//!
//! Secrets are stored only as hashes (`x/cred/<user>` holds Argon2id PHC strings; session, setup and
//! API tokens are kept as SHA-256 digests under `session/`, `setup` and `apitoken/`), so a copy of
//! the data folder opens nothing. There is no default account and no default password anywhere.
//! Argon2 runs off the async runtime.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use outpost_sync::{
    record::{Role, User},
    secret::{check_password, check_username, hash_password, random_token, verify_password, DUMMY_HASH},
    WriteSet,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AppError, AppResult, Outpost};
use crate::base::{
    audit::{self, AuditEntry},
    i18n::{t, Lang},
    validate::{self, Problem},
};

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|x| format!("{x:02x}")).collect()
}

pub use outpost_sync::secret::same_secret;

fn credential_key(username: &str) -> String {
    format!("cred/{username}")
}

fn session_key(token: &str) -> String {
    format!("session/{}", digest(token))
}

const API_TOKENS: &str = "apitoken/";

fn api_token_key(token: &str) -> String {
    format!("{API_TOKENS}{}", digest(token))
}

const SETUP_KEY: &str = "setup";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    hash: String,
}

/// A staff session, stored under the digest of its cookie value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    username: String,
    csrf: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// An API token for scripts and integrations, stored under its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApiToken {
    username: String,
    label: String,
    created_at: DateTime<Utc>,
    /// Tokens from before expiry existed end [`API_TOKEN_DAYS`] after they were made.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// How long an API token lives.
pub const API_TOKEN_DAYS: i64 = 90;

impl ApiToken {
    fn expires(&self) -> DateTime<Utc> {
        self.expires_at.unwrap_or(self.created_at + Duration::days(API_TOKEN_DAYS))
    }
}

/// An API token as an administrator sees it: never the token, only the start of its digest.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The part of a token's digest that names it to administrators.
const TOKEN_ID_LEN: usize = 12;

/// The name administrators see for the API token stored under `key`: the start of its digest.
fn token_id(key: &str) -> String {
    key.trim_start_matches(API_TOKENS).chars().take(TOKEN_ID_LEN).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SetupLink {
    digest: String,
    created_at: DateTime<Utc>,
}

/// A staff account with its role, as the web sees who is calling.
#[derive(Debug, Clone)]
pub struct Staff {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for API-token requests.
    pub csrf: Option<String>,
}

/// A new account as typed: the setup link's form and the administrator's.
#[derive(Debug, Clone, Default)]
pub struct AccountInput {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub password2: String,
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

/// The problems of a new account's fields (`username` already lower-cased).
fn account_problems(a: &AccountInput) -> Vec<Problem> {
    let mut list = Vec::new();
    if !check_username(&a.username) {
        list.push(Problem::new(
            "username",
            t(Lang::Vi, "setup.bad_username"),
            t(Lang::En, "setup.bad_username"),
        ));
    }
    if a.display_name.trim().is_empty() {
        list.push(Problem::new("display_name", "Thiếu họ tên.", "Full name is missing."));
    }
    list.extend(validate::control_characters("display_name", &a.display_name));
    if let Err((vi, en)) = check_password(&a.password, &[&a.username, &a.display_name]) {
        list.push(Problem::new("password", vi, en));
    }
    if a.password != a.password2 {
        list.push(Problem::new("password2", t(Lang::Vi, "setup.mismatch"), t(Lang::En, "setup.mismatch")));
    }
    list
}

/// Runs `work` (Argon2) on the blocking pool.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|_| AppError::Store(outpost_sync::StoreError::Closed))?
}

impl Outpost {
    fn has_users(&self) -> bool {
        self.store.count::<User>() > 0
    }

    /// Issues a new one-time setup link token (replacing any earlier one) while no account exists,
    /// and leaves the link in the data folder. Off the async runtime (at start-up).
    pub fn issue_setup_link(&self) -> AppResult<Option<String>> {
        if self.has_users() {
            leave_setup_link(&self.config.store.data_dir, None);
            return Ok(None);
        }
        let token = random_token();
        let mut w = WriteSet::new();
        w.put_local(SETUP_KEY, &SetupLink { digest: digest(&token), created_at: self.now() })?;
        if let Err(e) = self.commit_blocking(w) {
            // No new link: none is left to show either.
            leave_setup_link(&self.config.store.data_dir, None);
            return Err(e);
        }
        let link = format!("{}/setup/{token}", self.public_url());
        leave_setup_link(&self.config.store.data_dir, Some(&link));
        Ok(Some(token))
    }

    /// Whether `token` is the current setup link (and no account exists yet).
    pub fn setup_link_valid(&self, token: &str) -> bool {
        !self.has_users()
            && self
                .store
                .get_local::<SetupLink>(SETUP_KEY)
                .ok()
                .flatten()
                .is_some_and(|s| same_secret(&s.digest, &digest(token)))
    }

    /// The setup link's form: creates the first administrator, spends the link, and opens a
    /// session for them; the session's cookie value.
    pub async fn create_first_admin(
        self: &std::sync::Arc<Self>,
        token: &str,
        input: AccountInput,
    ) -> AppResult<String> {
        let _turn = self.accounts_turn.lock().await;
        if !self.setup_link_valid(token) {
            return Err(AppError::invalid("", t(Lang::Vi, "setup.invalid"), t(Lang::En, "setup.invalid")));
        }
        let list = account_problems(&input);
        if !list.is_empty() {
            return Err(AppError::Invalid(list));
        }
        let user = User {
            username: input.username.clone(),
            display_name: validate::clip(&input.display_name, 100),
            role: Role::Admin,
            active: true,
            created_at: self.now(),
        };
        let app = self.clone();
        let session = off_runtime(move || {
            let mut w = WriteSet::new();
            app.stage_user(&mut w, &user, &input.password)?;
            w.delete_local(SETUP_KEY);
            let session = app.stage_session(&mut w, &user.username)?;
            app.audit(&mut w, &user.username, "setup.admin", &user.username, "")?;
            app.commit_blocking(w)?;
            Ok(session)
        })
        .await?;
        tracing::info!(user = %input.username, "First administrator created; the setup link is spent.");
        leave_setup_link(&self.config.store.data_dir, None);
        Ok(session)
    }

    fn stage_user(&self, w: &mut WriteSet, user: &User, password: &str) -> AppResult<()> {
        w.put(user)?;
        w.put_local(&credential_key(&user.username), &Credential { hash: hash_password(password) })?;
        Ok(())
    }

    /// A new session for `username` in `w`; its cookie value.
    fn stage_session(&self, w: &mut WriteSet, username: &str) -> AppResult<String> {
        let now = self.now();
        let token = random_token();
        let session = Session {
            username: username.to_owned(),
            csrf: random_token(),
            created_at: now,
            expires_at: now + Duration::hours(self.config.web.session_hours.into()),
        };
        w.put_local(&session_key(&token), &session)?;
        Ok(token)
    }

    /// The account a username and password open, or `None` (unknown, inactive or wrong). Argon2 in
    /// the process's bounded pool, off the async runtime; every refusal costs one hash, so the
    /// time taken does not tell which accounts exist.
    fn check_login(&self, username: &str, password: &str) -> AppResult<Option<User>> {
        let user = self.store.get::<User>(username)?.filter(|u| u.active);
        let cred = self.store.get_local::<Credential>(&credential_key(username))?;
        let hash = match (&user, &cred) {
            (Some(_), Some(cred)) => cred.hash.as_str(),
            _ => DUMMY_HASH,
        };
        let right = verify_password(password, hash).map_err(|_| AppError::Busy)?;
        Ok(user.filter(|_| right && cred.is_some()))
    }

    /// A login from `ip`: the new session's cookie value, `None` for a wrong name or password, or
    /// [`AppError::Locked`] after too many attempts of the pair, the address or the account
    /// (counted before the password is checked).
    pub async fn log_in(
        self: &std::sync::Arc<Self>,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> AppResult<Option<String>> {
        let offset = self.schedule().offset;
        self.throttle
            .attempt(username, ip, self.now())
            .map_err(|until| AppError::Locked(until.with_timezone(&offset)))?;
        let (app, u, p) = (self.clone(), username.to_owned(), password.to_owned());
        let Some(user) = off_runtime(move || app.check_login(&u, &p)).await? else {
            // Debug-quoted: a name with a newline cannot forge a log line.
            tracing::info!(user = ?username, "Failed login.");
            return Ok(None);
        };
        self.throttle.succeeded(username, ip);
        let mut w = WriteSet::new();
        let token = self.stage_session(&mut w, &user.username)?;
        self.audit(&mut w, &user.username, "login", "", "")?;
        self.commit(w).await?;
        Ok(Some(token))
    }

    /// Ends the session behind a cookie value.
    pub async fn log_out(&self, token: Option<&str>) -> AppResult<()> {
        let mut w = WriteSet::new();
        if let Some(token) = token {
            w.delete_local(&session_key(token));
        }
        self.commit(w).await?;
        Ok(())
    }

    /// The staff member behind a live session's cookie value.
    pub fn staff_for_session(&self, token: &str) -> Option<Staff> {
        let s = self.store.get_local::<Session>(&session_key(token)).ok().flatten()?;
        if s.expires_at <= self.now() {
            return None;
        }
        let u = self.store.get::<User>(&s.username).ok().flatten().filter(|u| u.active)?;
        Some(Staff { username: u.username, display_name: u.display_name, role: u.role, csrf: Some(s.csrf) })
    }

    /// The staff member behind a live API token.
    pub fn staff_for_api_token(&self, token: &str) -> Option<Staff> {
        let t = self.store.get_local::<ApiToken>(&api_token_key(token)).ok().flatten()?;
        if t.expires() <= self.now() {
            return None;
        }
        let u = self.store.get::<User>(&t.username).ok().flatten().filter(|u| u.active)?;
        Some(Staff { username: u.username, display_name: u.display_name, role: u.role, csrf: None })
    }

    /// Every account, by name.
    pub fn users(&self) -> AppResult<Vec<User>> {
        Ok(self.store.list::<User>()?)
    }

    /// An administrator adds an account; `role` as the form's value parsed.
    pub async fn add_user(
        self: &std::sync::Arc<Self>,
        input: AccountInput,
        role: Result<Role, Problem>,
        by: &str,
    ) -> AppResult<User> {
        let mut list = account_problems(&input);
        let role = role.map_err(|p| list.push(p)).ok();
        let _turn = self.accounts_turn.lock().await;
        if self.store.get::<User>(&input.username)?.is_some() {
            list.push(Problem::new("username", "Tên đăng nhập đã có.", "This username is taken."));
        }
        let Some(role) = role.filter(|_| list.is_empty()) else { return Err(AppError::Invalid(list)) };
        let user = User {
            username: input.username.clone(),
            display_name: validate::clip(&input.display_name, 100),
            role,
            active: true,
            created_at: self.now(),
        };
        let (app, by, added) = (self.clone(), by.to_owned(), user.clone());
        off_runtime(move || {
            let mut w = WriteSet::new();
            app.stage_user(&mut w, &added, &input.password)?;
            app.audit(&mut w, &by, "user.create", &added.username, added.role.as_str())?;
            app.commit_blocking(w)?;
            Ok(())
        })
        .await?;
        Ok(user)
    }

    /// An administrator changes an account's role, whether it is active, and (if not empty) its
    /// password. Nobody removes their own administrator access.
    pub async fn update_user(
        self: &std::sync::Arc<Self>,
        name: &str,
        role: Result<Role, Problem>,
        active: bool,
        password: String,
        by: &str,
    ) -> AppResult<User> {
        let mut user = self.store.get::<User>(name)?.ok_or(AppError::NotFound)?;
        let role = role.map_err(|p| AppError::Invalid(vec![p]))?;
        if name == by && (role != Role::Admin || !active) {
            return Err(AppError::invalid(
                "role",
                "Không thể tự bỏ quyền quản trị của mình.",
                "You cannot remove your own administrator access.",
            ));
        }
        if !password.is_empty() {
            check_password(&password, &[name]).map_err(|(vi, en)| AppError::invalid("password", vi, en))?;
        }
        user.role = role;
        user.active = active;
        let (app, by, updated) = (self.clone(), by.to_owned(), user.clone());
        off_runtime(move || {
            let mut w = WriteSet::new();
            w.put(&updated)?;
            if !password.is_empty() {
                w.put_local(
                    &credential_key(&updated.username),
                    &Credential { hash: hash_password(&password) },
                )?;
            }
            // A new password or a disabled account ends every session and token: whoever had the
            // old password, or the account, keeps nothing (and re-enabling revives nothing).
            let revoked = if !password.is_empty() || !updated.active {
                app.stage_revoke_all(&mut w, &updated.username)?
            } else {
                0
            };
            let detail = format!(
                "{} active={} password={} revoked={revoked}",
                updated.role.as_str(),
                updated.active,
                !password.is_empty()
            );
            app.audit(&mut w, &by, "user.update", &updated.username, &detail)?;
            app.commit_blocking(w)?;
            Ok(())
        })
        .await?;
        Ok(user)
    }

    /// The API tokens of account `name`: their keys and records.
    fn tokens_of(&self, name: &str) -> AppResult<Vec<(String, ApiToken)>> {
        let mut all = self.store.scan_local::<ApiToken>(API_TOKENS)?;
        all.retain(|(_, t)| t.username == name);
        Ok(all)
    }

    /// Stages the end of every session and API token of `username`; how many.
    fn stage_revoke_all(&self, w: &mut WriteSet, username: &str) -> AppResult<usize> {
        let sessions = self.store.scan_local::<Session>("session/")?;
        let mut n = 0;
        for key in sessions
            .into_iter()
            .filter(|(_, s)| s.username == username)
            .map(|(k, _)| k)
            .chain(self.tokens_of(username)?.into_iter().map(|(k, _)| k))
        {
            w.delete_local(&key);
            n += 1;
        }
        Ok(n)
    }

    /// The API tokens of account `name`, newest first.
    pub fn api_tokens(&self, name: &str) -> AppResult<Vec<TokenInfo>> {
        let mut list: Vec<TokenInfo> = self
            .tokens_of(name)?
            .into_iter()
            .map(|(k, t)| TokenInfo {
                id: token_id(&k),
                label: t.label.clone(),
                created_at: t.created_at,
                expires_at: t.expires(),
            })
            .collect();
        list.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(list)
    }

    /// Ends the API token `id` ([`TokenInfo::id`]) of account `name`.
    pub async fn revoke_api_token(&self, name: &str, id: &str, by: &str) -> AppResult<()> {
        let key = self
            .tokens_of(name)?
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| token_id(k) == id)
            .ok_or(AppError::NotFound)?;
        let mut w = WriteSet::new();
        w.delete_local(&key);
        self.audit(&mut w, by, "user.api_token_revoke", name, id)?;
        self.commit(w).await?;
        Ok(())
    }

    /// A new API token for account `name`, shown once; it ends after [`API_TOKEN_DAYS`].
    pub async fn new_api_token(&self, name: &str, by: &str) -> AppResult<String> {
        self.store.get::<User>(name)?.ok_or(AppError::NotFound)?;
        let token = format!("op_{}{}", random_token(), random_token());
        let now = self.now();
        let record = ApiToken {
            username: name.to_owned(),
            label: "web".into(),
            created_at: now,
            expires_at: Some(now + Duration::days(API_TOKEN_DAYS)),
        };
        let mut w = WriteSet::new();
        w.put_local(&api_token_key(&token), &record)?;
        self.audit(&mut w, by, "user.api_token", name, "")?;
        self.commit(w).await?;
        Ok(token)
    }

    /// The audit log, newest first, at most `limit`.
    pub fn audit_log(&self, limit: usize) -> AppResult<Vec<AuditEntry>> {
        Ok(audit::recent(&self.store, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_eq!(verify_password("correct horse battery", &h), Ok(true));
        assert_eq!(verify_password("wrong", &h), Ok(false));
        assert_ne!(h, hash_password("correct horse battery"), "salted");
    }

    #[tokio::test]
    async fn a_new_password_or_a_disabled_account_ends_every_session_and_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, clock, _) = super::super::testing::outpost(&dir, "2026-11-21T02:00:00Z", "");
        let link = {
            let app = app.clone();
            tokio::task::spawn_blocking(move || app.issue_setup_link()).await.expect("joined")
        };
        let input = |name: &str| AccountInput {
            username: name.into(),
            display_name: name.into(),
            password: "mot-mat-khau-dai-2026".into(),
            password2: "mot-mat-khau-dai-2026".into(),
        };
        let link = link.expect("setup").expect("a link");
        app.create_first_admin(&link, input("quantri")).await.expect("admin");
        app.add_user(input("yte.chau"), Ok(Role::Medical), "quantri").await.expect("user");
        let session =
            app.log_in("yte.chau", "mot-mat-khau-dai-2026", None).await.expect("login").expect("session");
        let token = app.new_api_token("yte.chau", "quantri").await.expect("token");
        assert!(app.staff_for_session(&session).is_some() && app.staff_for_api_token(&token).is_some());

        let update = |active: bool, password: &str| {
            app.update_user("yte.chau", Ok(Role::Medical), active, password.to_owned(), "quantri")
        };
        update(true, "mat-khau-moi-2026-xyz").await.expect("new password");
        assert!(app.staff_for_session(&session).is_none(), "the old session ended");
        assert!(app.staff_for_api_token(&token).is_none(), "the old token ended");

        let token = app.new_api_token("yte.chau", "quantri").await.expect("token");
        update(false, "").await.expect("disabled");
        update(true, "").await.expect("enabled again");
        assert!(app.staff_for_api_token(&token).is_none(), "re-enabling revives nothing");

        // Listed by the start of their digest, revoked one by one, ending after 90 days.
        let (a, b) = (
            app.new_api_token("yte.chau", "quantri").await.expect("token"),
            app.new_api_token("yte.chau", "quantri").await.expect("token"),
        );
        let listed = app.api_tokens("yte.chau").expect("tokens");
        assert_eq!(listed.len(), 2);
        let id_of_a = digest(&a)[..TOKEN_ID_LEN].to_owned();
        assert!(listed.iter().any(|t| t.id == id_of_a) && !listed.iter().any(|t| a.contains(&t.id)));
        app.revoke_api_token("yte.chau", &id_of_a, "quantri").await.expect("revoked");
        assert!(app.staff_for_api_token(&a).is_none() && app.staff_for_api_token(&b).is_some());
        clock.advance(Duration::days(API_TOKEN_DAYS) + Duration::minutes(1));
        assert!(app.staff_for_api_token(&b).is_none(), "expired");
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
