//! SCRAM-SHA-256 building blocks (RFC 5802, RFC 7677) shared by client and server.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::AuthFailure;
use crate::util::{hmac_sha256, sha256};

/// What a server stores for SCRAM-SHA-256 instead of a password (RFC 5802 section 3).
///
/// `Display` and `FromStr` use the compact form
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
/// `Debug` hides the keys.
///
/// ```
/// use mail_sasl::ScramSecret;
/// let s = ScramSecret::derive(b"pencil", b"salt-from-a-rng", 4096);
/// let stored = s.to_string();
/// assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
/// assert_eq!(stored.parse::<ScramSecret>().unwrap(), s);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    /// The salt, raw bytes (sent base64-encoded in `s=`).
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count (`i=`).
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

/// The two keys derived from a salted password.
pub(crate) struct Keys {
    pub(crate) client_key: [u8; 32],
    pub(crate) stored_key: [u8; 32],
    pub(crate) server_key: [u8; 32],
}

/// `Hi(password, salt, i)` and the keys derived from it.
pub(crate) fn keys(password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations.max(1), &mut salted);
    // HMAC accepts keys of any length, so these cannot fail; fall back to zeros regardless
    // (a zero key only makes authentication fail).
    let client_key = hmac_sha256(&salted, b"Client Key").unwrap_or([0; 32]);
    let server_key = hmac_sha256(&salted, b"Server Key").unwrap_or([0; 32]);
    Keys {
        client_key,
        stored_key: sha256(&client_key),
        server_key,
    }
}

impl ScramSecret {
    /// Derives the stored secret from a password (used as its UTF-8 bytes), a random salt
    /// (16 bytes or more recommended) and an iteration count (at least
    /// [`crate::DEFAULT_SCRAM_ITERATIONS`] recommended; 0 is treated as 1).
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let k = keys(password, salt, iterations);
        ScramSecret {
            salt: salt.to_vec(),
            iterations: iterations.max(1),
            stored_key: k.stored_key,
            server_key: k.server_key,
        }
    }
}

impl ScramSecret {
    /// Parses Dovecot's stored form, `{SCRAM-SHA-256}<iterations>,<salt>,<StoredKey>,<ServerKey>`
    /// (the scheme prefix is optional), as written by `doveadm pw -s SCRAM-SHA-256`, so
    /// Dovecot user databases can be imported without the passwords.
    pub fn from_dovecot(s: &str) -> Result<Self, AuthFailure> {
        let bad = |m: &str| AuthFailure::BadStoredSecret(format!("Dovecot form: {m}"));
        let body = s.trim().strip_prefix("{SCRAM-SHA-256}").unwrap_or(s.trim());
        let mut parts = body.split(',');
        let (Some(iter), Some(salt), Some(stored), Some(server), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("expected four comma-separated fields"));
        };
        let iterations: u32 = iter
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is 0"));
        }
        Ok(ScramSecret {
            salt: B64.decode(salt).map_err(|_| bad("salt is not base64"))?,
            iterations,
            stored_key: key32(stored, "StoredKey")?,
            server_key: key32(server, "ServerKey")?,
        })
    }

    /// Dovecot's stored form (see [`ScramSecret::from_dovecot`]).
    pub fn to_dovecot(&self) -> String {
        format!(
            "{{SCRAM-SHA-256}}{},{},{},{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("salt", &B64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .field("stored_key", &"[redacted]")
            .field("server_key", &"[redacted]")
            .finish()
    }
}

impl fmt::Display for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

fn key32(b64: &str, what: &str) -> Result<[u8; 32], AuthFailure> {
    let v = B64
        .decode(b64)
        .map_err(|_| AuthFailure::BadStoredSecret(format!("{what} is not base64")))?;
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| AuthFailure::BadStoredSecret(format!("{what} is not 32 bytes")))
}

impl FromStr for ScramSecret {
    type Err = AuthFailure;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |m: &str| AuthFailure::BadStoredSecret(m.to_string());
        let rest = s
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or_else(|| bad("missing SCRAM-SHA-256$ prefix"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| bad("missing '$' before keys"))?;
        let (iter, salt) = params
            .split_once(':')
            .ok_or_else(|| bad("missing ':' after count"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or_else(|| bad("missing ':' in keys"))?;
        let iterations: u32 = iter
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is 0"));
        }
        let salt = B64.decode(salt).map_err(|_| bad("salt is not base64"))?;
        Ok(ScramSecret {
            salt,
            iterations,
            stored_key: key32(stored, "StoredKey")?,
            server_key: key32(server, "ServerKey")?,
        })
    }
}

/// Splits a SCRAM message into `(attribute, value)` pairs; each must be `ALPHA "=" value`.
pub(crate) fn attributes(msg: &[u8]) -> Result<Vec<(u8, &[u8])>, AuthFailure> {
    msg.split(|&b| b == b',')
        .map(|part| match part {
            [a, b'=', value @ ..] if a.is_ascii_alphabetic() => Ok((*a, value)),
            _ => Err(AuthFailure::Malformed(
                "SCRAM attribute is not of the form a=value".into(),
            )),
        })
        .collect()
}

/// A SCRAM `printable` nonce: `%x21-2B / %x2D-7E`, non-empty.
pub(crate) fn is_valid_nonce(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Keeps only the characters allowed in a SCRAM nonce.
pub(crate) fn sanitize_nonce(n: &str) -> String {
    n.chars()
        .filter(|&c| c.is_ascii_graphic() && c != ',')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_keys() {
        // RFC 7677 section 3: user "user", password "pencil", s=W22ZaJ0SNY7soEsUEjb6gQ==
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let s = ScramSecret::derive(b"pencil", &salt, 4096);
        let back: ScramSecret = s.to_string().parse().unwrap();
        assert_eq!(back, s);
        assert!(!format!("{s:?}").contains(&B64.encode(s.stored_key)));
    }

    #[test]
    fn dovecot_form() {
        let s = ScramSecret::derive(b"pencil", b"salt", 4096);
        assert_eq!(ScramSecret::from_dovecot(&s.to_dovecot()).unwrap(), s);
        assert!(s.to_dovecot().starts_with("{SCRAM-SHA-256}4096,c2FsdA==,"));
        for bad in [
            "",
            "{SCRAM-SHA-256}4096,c2FsdA==",
            "0,c2FsdA==,AA==,AA==",
            "x,y,z,w,v",
        ] {
            assert!(ScramSecret::from_dovecot(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stored_form_errors() {
        for bad in [
            "",
            "SCRAM-SHA-1$4096:c2FsdA==$AA==:AA==",
            "SCRAM-SHA-256$x:c2FsdA==$AA==:AA==",
            "SCRAM-SHA-256$0:c2FsdA==$AA==:AA==",
            "SCRAM-SHA-256$4096:c2FsdA==$AA==:AA==",
            "SCRAM-SHA-256$4096:c2FsdA==",
        ] {
            assert!(matches!(
                bad.parse::<ScramSecret>(),
                Err(AuthFailure::BadStoredSecret(_))
            ));
        }
    }
}
