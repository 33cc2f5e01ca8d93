//! The import engines: external POP3 import (IMP-1..5), IMAP migration (MIG-1..6, ACC-10)
//! and `.eml` upload (UPL-1).
//!
//! Unlike the rest of this crate, this module does I/O: it drives the `pop3-proto` and
//! `imap-proto` tokio clients and writes into a [`mailstore_core::MailStore`]. The policy
//! decisions stay in the pure modules ([`crate::import`], [`crate::migration`],
//! [`crate::filter`]); the engines apply them.
//!
//! - [`pop3`]: [`pop3::Pop3Import`] runs one external account (first run everything,
//!   later runs only new UIDLs, big messages skipped and reported, remote deletion,
//!   filters), and is the scheduler's handle (`next_due`, `record_success`,
//!   `record_failure`, [`pop3::Pop3Import::run_if_due`]).
//! - [`migration`]: [`migration::migrate`] copies every folder of an IMAP account with
//!   flags and dates, all or nothing, with progress events; [`migration::MigrationRunner`]
//!   runs jobs in registration order.
//! - [`upload`]: [`upload::upload`] stores `.eml` files.
//!
//! The guarantees (what a crash at any point leaves behind) are written down in
//! `docs/import.md`.
//!
//! # Example
//!
//! ```
//! use mailstore_core::{MailStore, MemoryStore, NewAccount};
//! use sync_policy::engine::upload::{upload, UploadOptions};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let alice = store.create_account(NewAccount::new("alice@example.org", None)).await.unwrap();
//! let dir = std::env::temp_dir().join(format!("eml-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let good = dir.join("good.eml");
//! std::fs::write(&good, "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nSubject: hi\r\n\r\nhello\r\n").unwrap();
//! let bad = dir.join("bad.eml");
//! std::fs::write(&bad, "this is not a message\r\n").unwrap();
//!
//! let report = upload(&store, alice.id, "INBOX", &[good, bad], &UploadOptions::default()).await.unwrap();
//! assert_eq!(report.stored.len(), 1);
//! assert_eq!(report.rejected.len(), 1);
//! # std::fs::remove_dir_all(&dir).ok();
//! # });
//! ```

use std::time::Duration;

use mail_net::TlsConnector;
use mail_sasl::Secret;
use mailstore_core::{AccountId, AppendOptions, MailStore, StoreError, Timestamp};

use crate::import::TlsMode;

mod kv;
pub mod migration;
pub mod notice;
pub mod pop3;
pub mod upload;

/// Why an engine run failed. The import ledger and the destination are consistent after
/// every one of these (see `docs/import.md`).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The remote server could not be reached or the connection broke.
    #[error("cannot talk to the remote server {server}: {reason}")]
    Connect {
        /// `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The remote server refused the login.
    #[error(
        "the remote server refused the login ({reason}); check the login name and password or token"
    )]
    Auth {
        /// The server's answer.
        reason: String,
    },
    /// The remote server broke the protocol or refused a command.
    #[error("the remote server failed: {0}")]
    Remote(String),
    /// The remote server lacks something the engine needs (e.g. UIDL).
    #[error("the remote server cannot be used: {0}")]
    Unsupported(String),
    /// The store refused an operation.
    #[error("mail store: {0}")]
    Store(#[from] StoreError),
    /// The settings are invalid.
    #[error(transparent)]
    Policy(#[from] crate::PolicyError),
    /// Another run of the same import account or job is in progress.
    #[error("{0} is already running; wait for it to finish")]
    Busy(String),
    /// An identifier given by the caller is unusable.
    #[error("invalid identifier {0:?}: 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'")]
    InvalidId(String),
}

/// How the engine logs in to a remote server.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Auth {
    /// A password (POP3 USER/PASS or APOP, IMAP AUTHENTICATE PLAIN or LOGIN).
    Password(Secret<String>),
    /// An OAuth 2.0 bearer token through SASL XOAUTH2 (Gmail, Microsoft 365; ACC-10).
    XOAuth2(Secret<String>),
    /// An OAuth 2.0 bearer token through SASL OAUTHBEARER (RFC 7628; ACC-10).
    OAuthBearer(Secret<String>),
}

/// A login on a remote server. The secret never appears in `Debug` output.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password or token.
    pub auth: Auth,
}

impl Credentials {
    /// A login with a password.
    #[must_use]
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            auth: Auth::Password(Secret::new(password.into())),
        }
    }
}

/// Where and how to connect to a remote server.
#[derive(Clone)]
#[non_exhaustive]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Implicit TLS, STARTTLS/STLS or none.
    pub tls: TlsMode,
    /// TLS client configuration (trust anchors); required unless `tls` is
    /// [`TlsMode::None`].
    pub connector: Option<TlsConnector>,
    /// Time limit for connecting and for each answer. Default 60 s.
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("connector", &self.connector.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint with the default time limit (60 s) and no TLS connector.
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16, tls: TlsMode) -> Self {
        Endpoint {
            host: host.into(),
            port,
            tls,
            connector: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the TLS client configuration.
    #[must_use]
    pub fn with_connector(mut self, connector: TlsConnector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Sets the time limit.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn connector(&self) -> Result<&TlsConnector, EngineError> {
        self.connector.as_ref().ok_or_else(|| EngineError::Connect {
            server: self.server(),
            reason: "TLS is required but no TLS client configuration was given".into(),
        })
    }
}

/// Checks a caller-given identifier (import account id, job id): it becomes part of
/// settings keys and origin labels.
fn check_id(id: &str) -> Result<(), EngineError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidId(id.to_owned()))
    }
}

/// Lower-case hex of the first `n` bytes of SHA-256 over `parts` joined by NUL.
fn short_hash(parts: &[&[u8]], n: usize) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(n)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Converts the policy crate's time to the store's.
fn to_ts(t: crate::UnixTime) -> Timestamp {
    Timestamp(t.0)
}

/// Stores a notice (an RFC 5322 message from [`notice::notice_message`]) in the account's
/// INBOX, unread.
///
/// # Errors
/// The store's refusal.
pub async fn deliver_notice<S: MailStore>(
    store: &S,
    account: AccountId,
    subject: &str,
    text: &str,
    now: crate::UnixTime,
) -> Result<(), EngineError> {
    let info = store.account(account).await?;
    let msg = notice::notice_message(&info.address, subject, text, now);
    let inbox = store.mailbox(account, "INBOX").await?;
    let opts = AppendOptions::default()
        .internal_date(to_ts(now))
        .received(to_ts(now));
    store
        .append(inbox.mailbox, opts, bytes::Bytes::from(msg))
        .await?;
    Ok(())
}
