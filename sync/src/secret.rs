//! Accounts' names and passwords, the passwords kept only as Argon2id hashes (PHC strings): the
//! box's staff, its MQTT devices and the province's users.
//!
//! Argon2 is memory-hard on purpose (19 MiB a hash), so hashing runs in one bounded pool for the whole
//! process: at most [`HASH_SLOTS`] at once (one core always left to everything else) and
//! [`HASH_QUEUE`] waiting; a check that finds the queue
//! full is refused at once ([`Busy`]) rather than held. 200 parallel wrong logins therefore cost
//! at most `HASH_SLOTS × 19 MiB`, not 200 × 19 MiB. [`Throttle`] counts login attempts per account
//! and address *before* the hash, so parallel attempts cannot all pass the limit.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Condvar, Mutex},
};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

/// 128 random bits from the operating system as 32 hex characters: session ids, CSRF tokens,
/// personal links, setup links, enrolment secrets.
pub fn random_token() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Constant-time comparison of two secrets (CSRF tokens, setup links).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Usernames: 3–32 lower-case letters, digits, `.`, `-`, `_`.
pub fn check_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
}

/// Argon2's memory per hash, in KiB: 19 MiB, OWASP's Argon2id minimum.
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;
/// Hashes computed at once in the process, at most: each holds [`HASH_MEMORY_KIB`].
pub const HASH_SLOTS: usize = 2;

/// Hashes computed at once here: one core is always left to everything else (a Pi 3 or 4 computes
/// two at once, a 2-core machine one), and never more than [`HASH_SLOTS`].
fn slots() -> usize {
    static SLOTS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        cores.saturating_sub(1).clamp(1, HASH_SLOTS)
    })
}
/// Checks that may wait for a slot; one more is refused with [`Busy`].
pub const HASH_QUEUE: usize = 32;

fn argon2() -> Argon2<'static> {
    // 2 passes: fast enough on a Pi 4 for a login.
    let params = Params::new(HASH_MEMORY_KIB, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Too many password checks are waiting: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are waiting; try again in a moment")]
pub struct Busy;

/// The process's hashing slots: (running, waiting).
static POOL: Mutex<(usize, usize)> = Mutex::new((0, 0));
static FREED: Condvar = Condvar::new();

/// Runs `hash` in a slot of the pool, blocking until one is free; `Err(Busy)` at once if `queue`
/// checks already wait (`None`: wait whatever the queue, for the few callers already behind an
/// administrator's session).
fn in_pool<T>(queue: Option<usize>, hash: impl FnOnce() -> T) -> Result<T, Busy> {
    {
        let mut state = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 >= slots() && queue.is_some_and(|q| state.1 >= q) {
            return Err(Busy);
        }
        state.1 += 1;
        while state.0 >= slots() {
            state = FREED.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.1 -= 1;
        state.0 += 1;
    }
    // Released even if `hash` panics.
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            POOL.lock().unwrap_or_else(|e| e.into_inner()).0 -= 1;
            FREED.notify_one();
        }
    }
    let _slot = Slot;
    Ok(hash())
}

/// Hashes a password with Argon2id and a random salt, in the pool (waiting for a slot).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    in_pool(None, || argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// Whether `password` is the one `phc` was made from, checked in the pool; `Err(Busy)` when the
/// pool's queue is full. An unknown account is checked against [`DUMMY_HASH`] by the caller, so
/// that the answer takes as long.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, Busy> {
    let Ok(hash) = PasswordHash::new(phc) else { return Ok(false) };
    in_pool(Some(HASH_QUEUE), || argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash of nothing anyone knows (its salt and output are arbitrary), with the pool's parameters:
/// checked for unknown and disabled accounts so that every refusal costs one hash.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0cN8Yg3mRzq6m3bIrj8yD3M9r5Zb0x0m3N2eYyXy5sA";

/// Counts login attempts and refuses them past a limit, for a while: per account and address
/// ([`Limits::pair`]), per address whatever the account ([`Limits::address`]: one phone trying
/// names), per account whatever the address ([`Limits::account`]: many phones against one name,
/// kept high so that an attacker does not easily lock the real user out from elsewhere).
///
/// An attempt is counted *before* its password is checked, in one step with the check of the
/// limit, so parallel attempts cannot all pass; a right password forgets its pair's and account's
/// count.
#[derive(Debug)]
pub struct Throttle {
    limits: Limits,
    window: chrono::Duration,
    counts: Mutex<HashMap<String, (u32, chrono::DateTime<chrono::Utc>)>>,
}

/// The attempts [`Throttle`] allows within its window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub pair: u32,
    pub address: u32,
    pub account: u32,
}

impl Limits {
    /// From the attempts one person may get wrong (`login_attempts`): an address four times as
    /// many (a shared phone, a few people), an account ten times as many.
    pub fn from_attempts(attempts: u32) -> Limits {
        Limits { pair: attempts, address: attempts.saturating_mul(4), account: attempts.saturating_mul(10) }
    }
}

impl Throttle {
    pub fn new(limits: Limits, window: chrono::Duration) -> Throttle {
        Throttle { limits, window, counts: Mutex::new(HashMap::new()) }
    }

    fn keys(&self, account: &str, ip: Option<IpAddr>) -> Vec<(String, u32)> {
        let mut keys = vec![(format!("u:{account}"), self.limits.account)];
        if let Some(ip) = ip {
            keys.push((format!("p:{ip}|{account}"), self.limits.pair));
            keys.push((format!("a:{ip}"), self.limits.address));
        } else {
            keys.push((format!("p:|{account}"), self.limits.pair));
        }
        keys
    }

    /// Counts an attempt at `account` from `ip`, before its password is checked: `Err(until)`
    /// (counted nowhere) if the account, the address or the pair is at its limit.
    pub fn attempt(
        &self,
        account: &str,
        ip: Option<IpAddr>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), chrono::DateTime<chrono::Utc>> {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| *last + self.window > now);
        }
        let keys = self.keys(account, ip);
        let live = |k: &str| map.get(k).filter(|(_, last)| *last + self.window > now).map(|(n, l)| (*n, *l));
        let locked = keys
            .iter()
            .filter_map(|(k, max)| live(k).filter(|(n, _)| n >= max).map(|(_, last)| last + self.window))
            .max();
        if let Some(until) = locked {
            return Err(until);
        }
        for (k, _) in keys {
            let e = map.entry(k).or_insert((0, now));
            if e.1 + self.window <= now {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
        }
        Ok(())
    }

    /// The password was right: the pair's and the account's counts are forgotten, the address's
    /// attempt given back.
    pub fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (k, _) in self.keys(account, ip) {
            if k.starts_with("a:") {
                if let Some(e) = map.get_mut(&k) {
                    e.0 = e.0.saturating_sub(1);
                }
            } else {
                map.remove(&k);
            }
        }
    }
}

/// The strength a password must reach on zxcvbn's scale of 0–4: 3, "safely unguessable" (about
/// 10^8 guesses or more), against a memory-hard hash on a stolen card.
pub const MIN_STRENGTH: u8 = 3;

/// Password rules: 10 to 200 characters, and not easy to guess (zxcvbn, Dropbox's estimator: common
/// passwords, names, words, keyboard patterns, repeats, sequences and dates, and `user_inputs` — the
/// account's own name). The problem in Vietnamese and English.
pub fn check_password(password: &str, user_inputs: &[&str]) -> Result<(), (&'static str, &'static str)> {
    if password.chars().count() < 10 {
        return Err(("Mật khẩu cần ít nhất 10 ký tự.", "The password needs at least 10 characters."));
    }
    if password.chars().count() > 200 {
        return Err(("Mật khẩu quá dài.", "The password is too long."));
    }
    if u8::from(zxcvbn::zxcvbn(password, user_inputs).score()) < MIN_STRENGTH {
        return Err((
            "Mật khẩu quá dễ đoán (từ thông dụng, tên, chuỗi lặp hay dãy phím). Hãy dùng vài từ ít gặp ghép lại.",
            "The password is too easy to guess (a common word, a name, a repeat or a keyboard run). Use a few uncommon words together.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("một mật khẩu dài");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify_password("một mật khẩu dài", &h), Ok(true));
        assert_eq!(verify_password("mot mat khau dai", &h), Ok(false));
        assert_eq!(verify_password("anything", "not a hash"), Ok(false));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "the dummy hash is checked, not refused unread");
        assert_eq!(verify_password("anything", DUMMY_HASH), Ok(false));
        assert!(check_password("short", &[]).is_err());
        for weak in ["aaaaaaaaaa", "1234567890", "password123", "qwertyuiop", "lan.nguyen2026", "matkhau123"]
        {
            assert!(check_password(weak, &["lan.nguyen"]).is_err(), "{weak}");
        }
        for strong in ["mot-mat-khau-dai-2026", "gio-thoi-qua-song-han", "thu-nghiem-mat-khau-2026"] {
            assert_eq!(check_password(strong, &["lan.nguyen"]), Ok(()), "{strong}");
        }
    }

    #[test]
    fn the_pool_holds_at_most_its_slots_and_refuses_past_its_queue() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let busy = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..(slots() + HASH_QUEUE + 20) {
                s.spawn(|| {
                    let r = in_pool(Some(HASH_QUEUE), || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        running.fetch_sub(1, SeqCst);
                    });
                    if r.is_err() {
                        busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.into_inner(), slots(), "never more hashes at once than slots");
        assert!((1..=HASH_SLOTS).contains(&slots()));
        assert!(busy.into_inner() >= 1, "the ones past the queue are refused");
    }

    #[test]
    fn the_throttle_counts_before_the_check_and_spares_other_addresses() {
        let t = Throttle::new(Limits { pair: 3, address: 5, account: 8 }, chrono::Duration::minutes(15));
        let now = chrono::Utc::now();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.2".parse().expect("ip"), "10.0.0.3".parse().expect("ip"));
        // Parallel attempts: the fourth is refused before any check has finished.
        assert!((0..3).all(|_| t.attempt("lan", Some(a), now).is_ok()));
        assert!(t.attempt("lan", Some(a), now).is_err());
        // The real user, from their own phone, still gets in.
        assert!(t.attempt("lan", Some(b), now).is_ok());
        t.succeeded("lan", Some(b));
        // The attacker's address trying other names stops at its own limit.
        assert!(t.attempt("mai", Some(a), now).is_ok());
        assert!(t.attempt("hoa", Some(a), now).is_ok());
        assert!(t.attempt("binh", Some(a), now).is_err());
        // After the window, all is forgotten.
        assert!(t.attempt("lan", Some(a), now + chrono::Duration::minutes(16)).is_ok());
    }
}
