//! `mail-sasl`: sans-IO SASL for mail protocols, server and client side.
//!
//! Mechanisms: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195),
//! XOAUTH2 (Google's format), OAUTHBEARER (RFC 7628) and SCRAM-SHA-256 (RFC 5802, RFC 7677,
//! without channel binding), plus the POP3 APOP digest (RFC 1939).
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: the caller hands in
//! decoded client responses (the protocol crate owns base64 and framing), server nonces, and
//! the answers of its credential store.
//!
//! # Example: a PLAIN exchange
//!
//! ```
//! use mail_sasl::{Mechanism, Secret};
//! use mail_sasl::server::{Exchange, Identity, ServerContext, Step, Verification};
//! use mail_sasl::client::{ClientCredentials, Exchange as ClientExchange};
//!
//! // Client side: PLAIN sends everything in the initial response.
//! let creds = ClientCredentials::new("tim", Secret::new("tanstaaftanstaaf".to_string()));
//! let mut client = ClientExchange::new(Mechanism::Plain, creds, String::new());
//! let ir = client.initial_response().expect("PLAIN has an initial response");
//! assert_eq!(ir, b"\0tim\0tanstaaftanstaaf");
//!
//! // Server side: the application checks the password itself (possibly asynchronously).
//! let ctx = ServerContext::new("mail.example.org", "3f9a1c0d8e7b6a5f4e3d".to_string());
//! let mut server = Exchange::new(Mechanism::Plain, ctx);
//! let identity = match server.start(Some(&ir)) {
//!     Step::Verify(Verification::Password { authzid, username, password }) => {
//!         assert_eq!(authzid, None);
//!         assert_eq!(password.expose(), "tanstaaftanstaaf");
//!         Identity::new(username)
//!     }
//!     other => panic!("unexpected {other:?}"),
//! };
//! match server.credentials_checked(Ok(identity)) {
//!     Step::Success { identity, server_final } => {
//!         assert_eq!(identity.username, "tim");
//!         assert!(server_final.is_none());
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! client.finish(None).expect("nothing to verify for PLAIN");
//! ```
//!
//! # How a protocol crate drives the server side
//!
//! 1. The client names a mechanism (`AUTHENTICATE X`, `AUTH X`); look it up with
//!    [`Mechanism::from_name`] and refuse unknown ones (and, before TLS, those for which
//!    [`Mechanism::sends_password_in_clear`] is true, unless configured otherwise).
//! 2. Create a [`server::Exchange`] with a [`server::ServerContext`] holding the server's
//!    host name and a fresh random nonce (at least 18 printable characters; the crate never
//!    draws randomness).
//! 3. Call [`server::Exchange::start`] with the decoded initial response, if any
//!    ([`wire::decode_initial_response`] turns `=` into `Some(b"")`), then act on the
//!    [`server::Step`]:
//!    - `Challenge(bytes)`: send [`wire::encode`]`(bytes)` (`+ ...` in IMAP/POP3, `334 ...`
//!      in SMTP); decode the next client line with [`wire::decode_response`] and pass the
//!      data to [`server::Exchange::step`], or call [`server::Exchange::cancel`] on
//!      [`wire::ClientLine::Cancel`] (`*`). Undecodable base64 is a protocol error the
//!      protocol crate reports itself (and the exchange ends).
//!    - `Verify(v)`: check the credentials in the application's store (this may be async)
//!      and answer with [`server::Exchange::credentials_checked`].
//!    - `NeedScramSecret { username }`: load the stored [`ScramSecret`] (or `None` if the
//!      user is unknown: the crate then fakes a plausible exchange so that user names cannot
//!      be probed) and answer with [`server::Exchange::scram_secret`].
//!    - `Success { identity, server_final }`: the client is authenticated as `identity`.
//!      When `server_final` is `Some` (SCRAM's `v=...`), IMAP, POP3 and SMTP cannot carry it
//!      in their success reply, so send it as one more challenge, expect an empty client
//!      response, then send the success reply.
//!    - `Failure(reason)`: send the protocol's failure reply; [`AuthFailure::is_temporary`]
//!      tells whether a "try again later" code fits better.
//!
//! # How a protocol crate drives the client side
//!
//! Create a [`client::Exchange`] with [`client::ClientCredentials`] and a fresh random nonce.
//! If the server supports initial responses and [`Mechanism::client_sends_first`] is true,
//! send [`client::Exchange::initial_response`] with the command (`=` when it is empty).
//! Answer each challenge with [`client::Exchange::step`] (an `Err` means: send `*`). When
//! the server reports success, call [`client::Exchange::finish`] with the success data, if
//! the protocol carried any: for SCRAM this verifies the server's signature, and an `Err`
//! means the server is not who it claims to be.
//!
//! # Authorization identities
//!
//! PLAIN, OAUTHBEARER and SCRAM let a client ask to act as another user (an *authzid*).
//! The application sees it in [`server::Verification`] (and via
//! [`server::Exchange::requested_authzid`] for SCRAM) and returns the outcome in the
//! [`server::Identity`] it passes back. Unless [`server::ServerContext::allow_authzid`] is
//! set, an identity whose authzid differs from its username ends in
//! [`AuthFailure::AuthzidNotAllowed`]. With it set, the application is responsible for
//! deciding whether `username` may act as `authzid`.
//!
//! # Limits
//!
//! - Server: a single client response longer than [`server::ServerContext::max_response_len`]
//!   (default [`server::DEFAULT_MAX_RESPONSE_LEN`], 16 KiB, room for large JWT bearer tokens)
//!   fails the exchange.
//! - Client: SCRAM iteration counts outside `min_iterations..=max_iterations` (defaults
//!   [`DEFAULT_SCRAM_ITERATIONS`] and [`client::DEFAULT_MAX_SCRAM_ITERATIONS`]) are refused,
//!   so a hostile server can neither weaken nor stall the client.
//!
//! # Not implemented
//!
//! SCRAM channel binding (`-PLUS`); full SASLprep (RFC 4013): this crate rejects control
//! characters in SCRAM user names and uses passwords as their UTF-8 bytes without
//! normalisation, which matches what clients do for ASCII passwords.

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

pub mod client;
#[doc(hidden)]
pub mod fuzzing;
mod scram;
pub mod server;
mod util;
pub mod wire;

pub use scram::ScramSecret;

/// SCRAM iteration count used by default: the RFC 7677 minimum, 4096.
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// A value that must not leak into logs: `Debug` prints `Secret([redacted])`.
///
/// Equality between secrets of byte-like types runs in constant time.
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrows the secret value; keep the borrow away from logging.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: AsRef<[u8]>> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_ref().ct_eq(other.0.as_ref()))
    }
}

impl<T: AsRef<[u8]>> Eq for Secret<T> {}

/// A SASL mechanism supported by this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// PLAIN, RFC 4616.
    Plain,
    /// LOGIN, draft-murchison-sasl-login.
    Login,
    /// CRAM-MD5, RFC 2195.
    CramMd5,
    /// XOAUTH2, Google's OAuth 2.0 bearer token mechanism.
    XOAuth2,
    /// OAUTHBEARER, RFC 7628.
    OAuthBearer,
    /// SCRAM-SHA-256, RFC 5802 and RFC 7677, without channel binding.
    ScramSha256,
}

impl Mechanism {
    /// Every mechanism, strongest first (a sensible order to advertise them in).
    pub const ALL: [Mechanism; 6] = [
        Mechanism::ScramSha256,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::CramMd5,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The registered mechanism name, upper case.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// Looks a mechanism up by name, ignoring ASCII case.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// True for PLAIN and LOGIN, which carry the password itself: servers offer them only
    /// over TLS by default.
    pub fn sends_password_in_clear(&self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }

    /// True when the client speaks first, so an initial response (IMAP SASL-IR, SMTP
    /// `AUTH mech ir`, POP3 `AUTH mech ir`) is meaningful. False for CRAM-MD5 and LOGIN
    /// (a server still accepts a LOGIN user name sent as initial response, as many SMTP
    /// clients do that).
    pub fn client_sends_first(&self) -> bool {
        !matches!(self, Mechanism::CramMd5 | Mechanism::Login)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mechanism {
    type Err = AuthFailure;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s.as_bytes()).ok_or(AuthFailure::UnsupportedMechanism)
    }
}

/// Why an authentication exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The user name, password, token or proof was wrong (or the user is unknown).
    #[error("authentication failed: invalid credentials")]
    InvalidCredentials,
    /// The peer's message broke the mechanism's syntax; the text says where.
    #[error("malformed SASL message: {0}")]
    Malformed(String),
    /// The client cancelled the exchange (`*`).
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// The mechanism name is not one this crate implements.
    #[error("unsupported SASL mechanism")]
    UnsupportedMechanism,
    /// The client asked to act as another user and that is not allowed.
    #[error("authorization identity not allowed for this user")]
    AuthzidNotAllowed,
    /// The credentials were right (or were not the problem) but the account may not log in
    /// this way; the text says why, for the user (e.g. "use an app password"). Protocol
    /// adapters send it in their failure reply (SMTP `535 5.7.8 text`).
    #[error("login refused: {0}")]
    Denied(String),
    /// The credential store could not answer now; the client may try again later.
    #[error("temporary authentication failure: {0}")]
    TemporaryFailure(String),
    /// The client requires channel binding, which this crate does not implement.
    #[error("channel binding is not supported")]
    ChannelBindingUnsupported,
    /// The server's SCRAM signature did not verify: the server does not know the password,
    /// or a man in the middle is present.
    #[error(
        "the server's SCRAM signature is wrong: the server could not prove it knows the password"
    )]
    ServerSignatureMismatch,
    /// The server reported an error (SCRAM `e=`, or an OAuth error JSON document).
    #[error("the server reported an error: {0}")]
    ServerError(String),
    /// The server asked for a SCRAM iteration count outside the client's limits.
    #[error(
        "SCRAM iteration count {0} is outside the allowed range (raise or lower the client limits if intended)"
    )]
    IterationCountOutOfRange(u32),
    /// A stored SCRAM secret string could not be parsed.
    #[error(
        "stored SCRAM secret is not in the form SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>: {0}"
    )]
    BadStoredSecret(String),
    /// The exchange was driven out of order (e.g. `step` after `Success`): a bug in the caller.
    #[error("SASL exchange used out of order: {0}")]
    OutOfOrder(&'static str),
}

impl AuthFailure {
    /// True when the failure is temporary and a "try again later" reply fits.
    pub fn is_temporary(&self) -> bool {
        matches!(self, AuthFailure::TemporaryFailure(_))
    }
}

/// The APOP digest of RFC 1939: MD5(timestamp + secret) as 32 lower-case hex digits.
///
/// `timestamp` is the whole `<...>` string of the greeting, angle brackets included.
///
/// ```
/// assert_eq!(
///     mail_sasl::apop_digest(b"<1896.697170952@dbc.mtview.ca.us>", b"tanstaaf"),
///     "c4c9334bac560ecc979e58001b3e22fb"
/// );
/// ```
pub fn apop_digest(timestamp: &[u8], secret: &[u8]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(timestamp);
    h.update(secret);
    util::hex_lower(&h.finalize())
}

/// Checks an APOP digest sent by a client (hex digits in either case) in constant time.
pub fn apop_verify(timestamp: &[u8], secret: &[u8], digest_hex: &[u8]) -> bool {
    let expected = apop_digest(timestamp, secret);
    let given = digest_hex.to_ascii_lowercase();
    bool::from(expected.as_bytes().ct_eq(&given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s, Secret::new("hunter2".to_string()));
        assert_ne!(s, Secret::new("hunter3".to_string()));
        assert_ne!(s, Secret::new("hunter".to_string()));
    }

    #[test]
    fn mechanism_names() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.as_str().as_bytes()), Some(m));
            assert_eq!(m.as_str().to_ascii_lowercase().parse::<Mechanism>(), Ok(m));
        }
        assert_eq!(
            Mechanism::from_name(b"scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::from_name(b"SCRAM-SHA-1"), None);
        assert_eq!(Mechanism::from_name(b""), None);
        assert!(Mechanism::Plain.sends_password_in_clear());
        assert!(Mechanism::Login.sends_password_in_clear());
        assert!(!Mechanism::ScramSha256.sends_password_in_clear());
        assert!(!Mechanism::CramMd5.client_sends_first());
        assert!(Mechanism::OAuthBearer.client_sends_first());
    }

    #[test]
    fn apop_rfc1939_example() {
        let ts = b"<1896.697170952@dbc.mtview.ca.us>";
        assert_eq!(
            apop_digest(ts, b"tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        assert!(apop_verify(
            ts,
            b"tanstaaf",
            b"c4c9334bac560ecc979e58001b3e22fb"
        ));
        assert!(apop_verify(
            ts,
            b"tanstaaf",
            b"C4C9334BAC560ECC979E58001B3E22FB"
        ));
        assert!(!apop_verify(
            ts,
            b"tanstaaf",
            b"c4c9334bac560ecc979e58001b3e22fa"
        ));
        assert!(!apop_verify(
            ts,
            b"tanstaaf",
            b"c4c9334bac560ecc979e58001b3e22f"
        ));
        assert!(!apop_verify(
            ts,
            b"wrong",
            b"c4c9334bac560ecc979e58001b3e22fb"
        ));
    }
}
