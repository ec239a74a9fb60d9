//! Accounts' names and passwords, the passwords kept only as Argon2id hashes (PHC strings): the
//! box's staff and the province's users.

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

/// Usernames: 3–32 lower-case letters, digits, `.`, `-`, `_`.
pub fn check_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
}

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes: OWASP's Argon2id minimum, fast enough on a Pi 4 for a login.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
}

/// Whether `password` is the one `phc` was made from.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// Password rules: at least 10 characters, at most 200. The problem in Vietnamese and English.
pub fn check_password(password: &str) -> Result<(), (&'static str, &'static str)> {
    if password.chars().count() < 10 {
        return Err(("Mật khẩu cần ít nhất 10 ký tự.", "The password needs at least 10 characters."));
    }
    if password.chars().count() > 200 {
        return Err(("Mật khẩu quá dài.", "The password is too long."));
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
        assert!(verify_password("một mật khẩu dài", &h));
        assert!(!verify_password("mot mat khau dai", &h));
        assert!(!verify_password("anything", "not a hash"));
        assert!(check_password("short").is_err());
    }
}
