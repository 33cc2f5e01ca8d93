//! Password hashing (argon2id) and app-password generation.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;

use crate::error::StoreError;
use crate::types::HashParams;

/// Hashes a password into a PHC string (`$argon2id$v=19$m=...`), which records its own
/// parameters.
pub(crate) fn hash_password(params: HashParams, password: &str) -> Result<String, StoreError> {
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, None)
        .map_err(|e| StoreError::InvalidArgument(format!("argon2 parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| StoreError::InvalidArgument(format!("salt: {e}")))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::InvalidArgument(format!("password hash: {e}")))
}

/// Verifies a password against a PHC string; false on mismatch or an unreadable hash.
pub(crate) fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new app password: four groups of four lower-case letters (about 75 bits).
pub(crate) fn generate_app_password() -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        let c = rng.random_range(b'a'..=b'z');
        s.push(char::from(c));
    }
    s
}

/// A fixed hash to verify against when the account does not exist, so that unknown and
/// known accounts cost the same.
pub(crate) fn dummy_hash(params: HashParams) -> String {
    hash_password(params, "dummy password for timing").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password(HashParams::insecure_for_tests(), "secret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(verify_password(&h, "secret"));
        assert!(!verify_password(&h, "Secret"));
        assert!(!verify_password("garbage", "secret"));
        let a = generate_app_password();
        assert_eq!(a.len(), 19);
        assert_ne!(a, generate_app_password());
    }
}
