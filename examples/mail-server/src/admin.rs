//! Admin operations and the admin socket protocol.
//!
//! Every admin subcommand becomes an [`Request`]. The CLI first tries to open the store
//! itself; when the store reports `Locked` (a server is running on that data directory) it
//! sends the request over the server's Unix socket (`<data_dir>/admin.sock`, mode 0600)
//! instead. Both paths run the same [`execute`], so their output is identical.
//!
//! # Wire protocol
//!
//! One request per connection, one line, fields separated by a space and percent-encoded
//! (every byte outside `!`..`~` other than `%` itself becomes `%XX`); an absent optional
//! field is a lone `-` (a real `-` is sent as `%2D`):
//!
//! ```text
//! C: USER-ADD demo@example.test s3cret%20pw
//! S: * created demo@example.test
//! S: OK
//! ```
//!
//! `DELIVER address folder size` is followed by exactly `size` raw bytes. The server answers
//! with any number of `* text` lines (percent-encoded like the fields) and then `OK` or
//! `ERR text`, and closes the connection. Limits: the request line is at most 64 KiB, a
//! delivered message at most the configured `max_message_size`, and the whole request must
//! arrive within 60 seconds.

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;
use mailstore_core::{
    AccountInfo, AppendOptions, MailStore, NewAccount, ProtocolAccess, StoreError,
};

use crate::config::Config;
use crate::error::ServerError;

/// Longest admin request line, in bytes.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Export/import formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFormat {
    /// A Maildir tree (`cur/ new/ tmp/`, one sub-Maildir per folder, Maildir++ names).
    Maildir,
    /// One mbox file per folder (mboxrd `From ` quoting).
    Mbox,
}

impl MailFormat {
    /// The wire / CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Maildir => "maildir",
            Self::Mbox => "mbox",
        }
    }

    /// Parses `maildir` or `mbox`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "maildir" => Some(Self::Maildir),
            "mbox" => Some(Self::Mbox),
            _ => None,
        }
    }
}

/// Per-protocol access changes (`None` leaves a protocol as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessChange {
    /// POP3.
    pub pop3: Option<bool>,
    /// IMAP.
    pub imap: Option<bool>,
    /// SMTP submission.
    pub smtp: Option<bool>,
}

/// A change to one quota limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaChange {
    /// Leave it as it is.
    Keep,
    /// No limit.
    Unlimited,
    /// This limit.
    Limit(u64),
}

impl QuotaChange {
    /// Parses `unlimited`, `none` or a number with an optional K/M/G suffix (powers of 1024).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "unlimited" || t == "none" {
            return Ok(Self::Unlimited);
        }
        let (num, mult) = if let Some(n) = t.strip_suffix('k') {
            (n, 1024u64)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 1024 * 1024)
        } else if let Some(n) = t.strip_suffix('g') {
            (n, 1024 * 1024 * 1024)
        } else {
            (t.as_str(), 1)
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .map(Self::Limit)
            .ok_or_else(|| format!("expected a number (with K, M or G) or `unlimited`, got {s:?}"))
    }

    fn wire(self) -> String {
        match self {
            Self::Keep => "-".into(),
            Self::Unlimited => "unlimited".into(),
            Self::Limit(n) => n.to_string(),
        }
    }

    fn apply(self, current: Option<u64>) -> Option<u64> {
        match self {
            Self::Keep => current,
            Self::Unlimited => None,
            Self::Limit(n) => Some(n),
        }
    }
}

/// One admin operation.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Create an account.
    UserAdd {
        /// Full address.
        address: String,
        /// Its password.
        password: String,
    },
    /// Change an account's password.
    UserPasswd {
        /// Full address.
        address: String,
        /// The new password.
        password: String,
    },
    /// List the accounts.
    UserList,
    /// Enable or disable protocols for an account.
    UserAccess {
        /// Full address.
        address: String,
        /// What changes.
        change: AccessChange,
    },
    /// Change an account's quota.
    UserQuota {
        /// Full address.
        address: String,
        /// Storage limit in bytes.
        storage: QuotaChange,
        /// Message count limit.
        messages: QuotaChange,
    },
    /// Store (or with `None` remove) the plaintext-equivalent secret used by APOP.
    UserApopSecret {
        /// Full address.
        address: String,
        /// The secret.
        secret: Option<String>,
    },
    /// Create an app password; its secret is printed once.
    AppPasswordAdd {
        /// Full address.
        address: String,
        /// A name for it (the device).
        name: String,
    },
    /// List an account's app passwords.
    AppPasswordList {
        /// Full address.
        address: String,
    },
    /// Revoke an app password.
    AppPasswordRevoke {
        /// Full address.
        address: String,
        /// Its name.
        name: String,
    },
    /// Deliver a message into a folder.
    Deliver {
        /// Recipient address (or alias).
        address: String,
        /// Folder; INBOX when absent.
        folder: Option<String>,
        /// The message bytes.
        message: Bytes,
    },
    /// Export an account's mail.
    Export {
        /// Full address.
        address: String,
        /// Format.
        format: MailFormat,
        /// Destination path (a directory for Maildir, a directory of `.mbox` files for mbox).
        path: PathBuf,
    },
    /// Show an account's or an organisation's policy settings.
    PolicyShow {
        /// Whose.
        target: crate::policy::PolicyTarget,
    },
    /// Change one policy setting.
    PolicySet {
        /// Whose.
        target: crate::policy::PolicyTarget,
        /// Dotted key, e.g. `pop3.on_delete`.
        key: String,
        /// A TOML value (or plain text).
        value: String,
    },
    /// Register an external POP3 import (IMP-1).
    ImportAdd {
        /// Full address.
        address: String,
        /// The import's id.
        id: String,
        /// `sync_policy::import::ImportAccountSettings` as TOML.
        settings: String,
        /// The remote password (or bearer token, with `oauth2`).
        password: String,
        /// PEM trust anchors for the remote server.
        ca_file: Option<String>,
        /// `xoauth2` or `oauthbearer`: `password` is a bearer token (ACC-10).
        oauth2: Option<String>,
    },
    /// Remove an import.
    ImportRemove {
        /// Full address.
        address: String,
        /// The import's id.
        id: String,
    },
    /// Run an import now.
    ImportRun {
        /// Full address.
        address: String,
        /// The import's id.
        id: String,
    },
    /// Turn an import's automatic fetch back on (IMP-5).
    ImportReenable {
        /// Full address.
        address: String,
        /// The import's id.
        id: String,
    },
    /// An account's imports and their automatic-fetch state.
    ImportStatus {
        /// Full address.
        address: String,
    },
    /// Register an IMAP migration job (MIG-1).
    MigrateAdd {
        /// Full address.
        address: String,
        /// The job.
        job: crate::migrate::MigrateJob,
    },
    /// Run one migration job, or all in registration order.
    MigrateRun {
        /// Full address.
        address: String,
        /// The job id; all jobs when absent.
        id: Option<String>,
    },
    /// The migration jobs and their outcomes.
    MigrateStatus {
        /// Full address.
        address: String,
    },
    /// Upload `.eml` files into a folder (UPL-1).
    Upload {
        /// Full address.
        address: String,
        /// Destination folder.
        folder: String,
        /// Absolute paths of the files.
        paths: Vec<PathBuf>,
    },
    /// Run the retention pass (POP-7) now.
    RetentionRun {
        /// Run as if it were this Unix time (tests, catching up); `None`: now.
        at: Option<i64>,
    },
    /// Import mail into an account.
    Import {
        /// Full address.
        address: String,
        /// Format.
        format: MailFormat,
        /// Source path.
        path: PathBuf,
        /// Target folder for a single mbox file (INBOX when absent).
        folder: Option<String>,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print passwords or message bodies.
        match self {
            Self::UserAdd { address, .. } => write!(f, "UserAdd({address})"),
            Self::UserPasswd { address, .. } => write!(f, "UserPasswd({address})"),
            Self::UserList => f.write_str("UserList"),
            Self::PolicyShow { target } => write!(f, "PolicyShow({target:?})"),
            Self::PolicySet { target, key, .. } => write!(f, "PolicySet({target:?}, {key})"),
            Self::RetentionRun { at } => write!(f, "RetentionRun({at:?})"),
            Self::ImportAdd { address, id, .. } => write!(f, "ImportAdd({address}, {id})"),
            Self::ImportRemove { address, id } => write!(f, "ImportRemove({address}, {id})"),
            Self::ImportRun { address, id } => write!(f, "ImportRun({address}, {id})"),
            Self::ImportStatus { address } => write!(f, "ImportStatus({address})"),
            Self::ImportReenable { address, id } => {
                write!(f, "ImportReenable({address}, {id})")
            }
            Self::MigrateAdd { address, job } => write!(f, "MigrateAdd({address}, {job:?})"),
            Self::MigrateRun { address, id } => write!(f, "MigrateRun({address}, {id:?})"),
            Self::MigrateStatus { address } => write!(f, "MigrateStatus({address})"),
            Self::Upload {
                address,
                folder,
                paths,
            } => write!(f, "Upload({address}, {folder}, {} files)", paths.len()),
            Self::UserAccess { address, change } => write!(f, "UserAccess({address}, {change:?})"),
            Self::UserQuota {
                address,
                storage,
                messages,
            } => write!(f, "UserQuota({address}, {storage:?}, {messages:?})"),
            Self::UserApopSecret { address, secret } => {
                write!(f, "UserApopSecret({address}, set={})", secret.is_some())
            }
            Self::AppPasswordAdd { address, name } => {
                write!(f, "AppPasswordAdd({address}, {name})")
            }
            Self::AppPasswordList { address } => write!(f, "AppPasswordList({address})"),
            Self::AppPasswordRevoke { address, name } => {
                write!(f, "AppPasswordRevoke({address}, {name})")
            }
            Self::Deliver {
                address,
                folder,
                message,
            } => write!(f, "Deliver({address}, {folder:?}, {} bytes)", message.len()),
            Self::Export {
                address,
                format,
                path,
            } => write!(
                f,
                "Export({address}, {}, {})",
                format.as_str(),
                path.display()
            ),
            Self::Import {
                address,
                format,
                path,
                folder,
            } => write!(
                f,
                "Import({address}, {}, {}, {folder:?})",
                format.as_str(),
                path.display()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Percent-encodes a field.
pub fn encode_field(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    if s == b"-" {
        return "%2D".into();
    }
    for &b in s {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded field.
///
/// # Errors
/// A bad `%` escape or a result that is not UTF-8.
pub fn decode_field(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("field {s:?} is not UTF-8"))
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_string(), |v| encode_field(v.as_bytes()))
}

fn onoff(v: Option<bool>) -> &'static str {
    match v {
        None => "-",
        Some(true) => "on",
        Some(false) => "off",
    }
}

impl Request {
    /// The request line (without the trailing LF) and, for `DELIVER`, the bytes after it.
    pub fn encode(&self) -> (String, Option<Bytes>) {
        let e = |s: &str| encode_field(s.as_bytes());
        let p = |p: &PathBuf| encode_field(p.to_string_lossy().as_bytes());
        match self {
            Self::UserAdd { address, password } => {
                (format!("USER-ADD {} {}", e(address), e(password)), None)
            }
            Self::UserPasswd { address, password } => {
                (format!("USER-PASSWD {} {}", e(address), e(password)), None)
            }
            Self::UserList => ("USER-LIST".into(), None),
            Self::PolicyShow { target } => (
                format!("POLICY-SHOW {} {}", target.kind(), e(target.name())),
                None,
            ),
            Self::PolicySet { target, key, value } => (
                format!(
                    "POLICY-SET {} {} {} {}",
                    target.kind(),
                    e(target.name()),
                    e(key),
                    e(value)
                ),
                None,
            ),
            Self::ImportAdd {
                address,
                id,
                settings,
                password,
                ca_file,
                oauth2,
            } => (
                format!(
                    "IMPORT-ADD {} {} {} {} {} {}",
                    e(address),
                    e(id),
                    e(settings),
                    e(password),
                    opt(ca_file.as_deref()),
                    opt(oauth2.as_deref())
                ),
                None,
            ),
            Self::ImportRemove { address, id } => {
                (format!("IMPORT-REMOVE {} {}", e(address), e(id)), None)
            }
            Self::ImportRun { address, id } => {
                (format!("IMPORT-RUN {} {}", e(address), e(id)), None)
            }
            Self::ImportStatus { address } => (format!("IMPORT-STATUS {}", e(address)), None),
            Self::ImportReenable { address, id } => {
                (format!("IMPORT-REENABLE {} {}", e(address), e(id)), None)
            }
            Self::MigrateAdd { address, job } => {
                let tls = crate::migrate::tls_mode_name(job.tls);
                (
                    format!(
                        "MIGRATE-ADD {} {} {} {} {tls} {} {} {} {}",
                        e(address),
                        e(&job.id),
                        e(&job.host),
                        job.port,
                        e(&job.username),
                        e(&job.password),
                        opt(job
                            .ca_file
                            .as_ref()
                            .map(|p| p.to_string_lossy().into_owned())
                            .as_deref()),
                        opt(job.oauth2.as_deref())
                    ),
                    None,
                )
            }
            Self::MigrateRun { address, id } => (
                format!("MIGRATE-RUN {} {}", e(address), opt(id.as_deref())),
                None,
            ),
            Self::MigrateStatus { address } => (format!("MIGRATE-STATUS {}", e(address)), None),
            Self::Upload {
                address,
                folder,
                paths,
            } => {
                let mut line = format!("UPLOAD {} {}", e(address), e(folder));
                for path in paths {
                    line.push(' ');
                    line.push_str(&p(path));
                }
                (line, None)
            }
            Self::RetentionRun { at } => (
                format!(
                    "RETENTION-RUN {}",
                    at.map_or_else(|| "-".to_string(), |t| t.to_string())
                ),
                None,
            ),
            Self::UserAccess { address, change } => (
                format!(
                    "USER-ACCESS {} {} {} {}",
                    e(address),
                    onoff(change.pop3),
                    onoff(change.imap),
                    onoff(change.smtp)
                ),
                None,
            ),
            Self::UserQuota {
                address,
                storage,
                messages,
            } => (
                format!(
                    "USER-QUOTA {} {} {}",
                    e(address),
                    storage.wire(),
                    messages.wire()
                ),
                None,
            ),
            Self::UserApopSecret { address, secret } => (
                format!("USER-APOP-SECRET {} {}", e(address), opt(secret.as_deref())),
                None,
            ),
            Self::AppPasswordAdd { address, name } => {
                (format!("APP-PASSWORD-ADD {} {}", e(address), e(name)), None)
            }
            Self::AppPasswordList { address } => {
                (format!("APP-PASSWORD-LIST {}", e(address)), None)
            }
            Self::AppPasswordRevoke { address, name } => (
                format!("APP-PASSWORD-REVOKE {} {}", e(address), e(name)),
                None,
            ),
            Self::Deliver {
                address,
                folder,
                message,
            } => (
                format!(
                    "DELIVER {} {} {}",
                    e(address),
                    opt(folder.as_deref()),
                    message.len()
                ),
                Some(message.clone()),
            ),
            Self::Export {
                address,
                format,
                path,
            } => (
                format!("EXPORT {} {} {}", e(address), format.as_str(), p(path)),
                None,
            ),
            Self::Import {
                address,
                format,
                path,
                folder,
            } => (
                format!(
                    "IMPORT {} {} {} {}",
                    e(address),
                    format.as_str(),
                    p(path),
                    opt(folder.as_deref())
                ),
                None,
            ),
        }
    }
}

/// A request line parsed; `DELIVER` says how many bytes follow.
#[derive(Debug, PartialEq, Eq)]
pub enum ParsedLine {
    /// A complete request.
    Complete(Request),
    /// `DELIVER`: read this many bytes, then call [`ParsedLine::finish_deliver`].
    Deliver {
        /// Recipient.
        address: String,
        /// Folder.
        folder: Option<String>,
        /// Bytes that follow.
        size: u64,
    },
}

impl ParsedLine {
    /// The `DELIVER` request once its bytes are read.
    pub fn finish_deliver(address: String, folder: Option<String>, message: Bytes) -> Request {
        Request::Deliver {
            address,
            folder,
            message,
        }
    }
}

/// Parses a request line (without its LF).
///
/// # Errors
/// A message naming what is wrong with the line.
pub fn parse_request_line(line: &str) -> Result<ParsedLine, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let verb = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{verb} takes {n} fields, got {}", args.len()))
        }
    };
    let field = |i: usize| -> Result<String, String> {
        decode_field(
            args.get(i)
                .copied()
                .ok_or_else(|| format!("{verb}: field {i} missing"))?,
        )
    };
    let optional = |i: usize| -> Result<Option<String>, String> {
        match args.get(i).copied() {
            Some("-") => Ok(None),
            Some(s) => decode_field(s).map(Some),
            None => Err(format!("{verb}: field {i} missing")),
        }
    };
    let switch = |i: usize| -> Result<Option<bool>, String> {
        match args.get(i).copied() {
            Some("-") => Ok(None),
            Some("on") => Ok(Some(true)),
            Some("off") => Ok(Some(false)),
            other => Err(format!("{verb}: expected on, off or -, got {other:?}")),
        }
    };
    let format = |i: usize| -> Result<MailFormat, String> {
        let f = field(i)?;
        MailFormat::parse(&f).ok_or_else(|| format!("unknown format {f:?} (maildir or mbox)"))
    };
    let r = match verb {
        "USER-ADD" => {
            want(2)?;
            Request::UserAdd {
                address: field(0)?,
                password: field(1)?,
            }
        }
        "USER-PASSWD" => {
            want(2)?;
            Request::UserPasswd {
                address: field(0)?,
                password: field(1)?,
            }
        }
        "USER-LIST" => {
            want(0)?;
            Request::UserList
        }
        "USER-ACCESS" => {
            want(4)?;
            Request::UserAccess {
                address: field(0)?,
                change: AccessChange {
                    pop3: switch(1)?,
                    imap: switch(2)?,
                    smtp: switch(3)?,
                },
            }
        }
        "USER-QUOTA" => {
            want(3)?;
            let q = |i: usize| -> Result<QuotaChange, String> {
                match args.get(i).copied() {
                    Some("-") => Ok(QuotaChange::Keep),
                    Some(v) => QuotaChange::parse(v),
                    None => Err(format!("{verb}: field {i} missing")),
                }
            };
            Request::UserQuota {
                address: field(0)?,
                storage: q(1)?,
                messages: q(2)?,
            }
        }
        "USER-APOP-SECRET" => {
            want(2)?;
            Request::UserApopSecret {
                address: field(0)?,
                secret: optional(1)?,
            }
        }
        "APP-PASSWORD-ADD" => {
            want(2)?;
            Request::AppPasswordAdd {
                address: field(0)?,
                name: field(1)?,
            }
        }
        "APP-PASSWORD-LIST" => {
            want(1)?;
            Request::AppPasswordList { address: field(0)? }
        }
        "APP-PASSWORD-REVOKE" => {
            want(2)?;
            Request::AppPasswordRevoke {
                address: field(0)?,
                name: field(1)?,
            }
        }
        "DELIVER" => {
            want(3)?;
            let size = field(2)?
                .parse::<u64>()
                .map_err(|_| "DELIVER: the size is not a number".to_string())?;
            return Ok(ParsedLine::Deliver {
                address: field(0)?,
                folder: optional(1)?,
                size,
            });
        }
        "POLICY-SHOW" => {
            want(2)?;
            Request::PolicyShow {
                target: policy_target(&field(0)?, field(1)?)?,
            }
        }
        "POLICY-SET" => {
            want(4)?;
            Request::PolicySet {
                target: policy_target(&field(0)?, field(1)?)?,
                key: field(2)?,
                value: field(3)?,
            }
        }
        "IMPORT-ADD" => {
            want(6)?;
            Request::ImportAdd {
                address: field(0)?,
                id: field(1)?,
                settings: field(2)?,
                password: field(3)?,
                ca_file: optional(4)?,
                oauth2: optional(5)?,
            }
        }
        "IMPORT-REMOVE" => {
            want(2)?;
            Request::ImportRemove {
                address: field(0)?,
                id: field(1)?,
            }
        }
        "IMPORT-RUN" => {
            want(2)?;
            Request::ImportRun {
                address: field(0)?,
                id: field(1)?,
            }
        }
        "IMPORT-STATUS" => {
            want(1)?;
            Request::ImportStatus { address: field(0)? }
        }
        "IMPORT-REENABLE" => {
            want(2)?;
            Request::ImportReenable {
                address: field(0)?,
                id: field(1)?,
            }
        }
        "MIGRATE-ADD" => {
            want(9)?;
            let name = field(4)?;
            let tls = crate::migrate::parse_tls_mode(&name)
                .ok_or_else(|| format!("{verb}: unknown TLS mode {name:?}"))?;
            Request::MigrateAdd {
                address: field(0)?,
                job: crate::migrate::MigrateJob {
                    id: field(1)?,
                    host: field(2)?,
                    port: field(3)?
                        .parse()
                        .map_err(|_| format!("{verb}: the port is not a number"))?,
                    tls,
                    username: field(5)?,
                    password: field(6)?,
                    ca_file: optional(7)?.map(PathBuf::from),
                    oauth2: optional(8)?,
                    last: None,
                },
            }
        }
        "MIGRATE-RUN" => {
            want(2)?;
            Request::MigrateRun {
                address: field(0)?,
                id: optional(1)?,
            }
        }
        "MIGRATE-STATUS" => {
            want(1)?;
            Request::MigrateStatus { address: field(0)? }
        }
        "UPLOAD" => {
            if args.len() < 3 {
                return Err(format!(
                    "{verb} takes an address, a folder and at least one path"
                ));
            }
            let mut paths = Vec::with_capacity(args.len().saturating_sub(2));
            for i in 2..args.len() {
                paths.push(PathBuf::from(field(i)?));
            }
            Request::Upload {
                address: field(0)?,
                folder: field(1)?,
                paths,
            }
        }
        "RETENTION-RUN" => {
            want(1)?;
            let at = match optional(0)? {
                None => None,
                Some(t) => Some(
                    t.parse::<i64>()
                        .map_err(|_| "RETENTION-RUN: the time is not a number".to_string())?,
                ),
            };
            Request::RetentionRun { at }
        }
        "EXPORT" => {
            want(3)?;
            Request::Export {
                address: field(0)?,
                format: format(1)?,
                path: PathBuf::from(field(2)?),
            }
        }
        "IMPORT" => {
            want(4)?;
            Request::Import {
                address: field(0)?,
                format: format(1)?,
                path: PathBuf::from(field(2)?),
                folder: optional(3)?,
            }
        }
        other => return Err(format!("unknown admin request {other:?}")),
    };
    Ok(ParsedLine::Complete(r))
}

fn policy_target(kind: &str, name: String) -> Result<crate::policy::PolicyTarget, String> {
    match kind {
        "user" => Ok(crate::policy::PolicyTarget::User(name)),
        "org" => Ok(crate::policy::PolicyTarget::Org(name)),
        other => Err(format!("expected user or org, got {other:?}")),
    }
}

/// Encodes a response: the output lines and the final status.
pub fn encode_response(result: &Result<Vec<String>, String>) -> String {
    let mut out = String::new();
    match result {
        Ok(lines) => {
            for l in lines {
                out.push_str("* ");
                out.push_str(&encode_text(l));
                out.push('\n');
            }
            out.push_str("OK\n");
        }
        Err(e) => {
            out.push_str("ERR ");
            out.push_str(&encode_text(e));
            out.push('\n');
        }
    }
    out
}

/// Response text: printable, spaces kept, control bytes and `%` escaped.
fn encode_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of a response, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseLine {
    /// `* text`: output for the user.
    Data(String),
    /// `OK`: success, end of response.
    Ok,
    /// `ERR text`: failure, end of response.
    Err(String),
}

/// Parses one response line (without its LF).
///
/// # Errors
/// A message naming the malformed line.
pub fn parse_response_line(line: &str) -> Result<ResponseLine, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line == "OK" {
        Ok(ResponseLine::Ok)
    } else if let Some(t) = line.strip_prefix("* ") {
        decode_field(t).map(ResponseLine::Data)
    } else if let Some(t) = line.strip_prefix("ERR ") {
        decode_field(t).map(ResponseLine::Err)
    } else {
        Err(format!("malformed admin response line {line:?}"))
    }
}

// ---------------------------------------------------------------------------------------
// Execution

fn describe_access(a: ProtocolAccess) -> String {
    let mut v = Vec::new();
    if a.pop3 {
        v.push("pop3");
    }
    if a.imap {
        v.push("imap");
    }
    if a.smtp {
        v.push("smtp");
    }
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// One line of `user list`.
pub fn describe_account(a: &AccountInfo) -> String {
    let mut s = format!(
        "{}  access={}  password={}  apop={}",
        a.address,
        describe_access(a.access),
        if a.has_password { "set" } else { "none" },
        if a.has_plaintext_secret { "on" } else { "off" },
    );
    if !a.aliases.is_empty() {
        s.push_str("  aliases=");
        s.push_str(&a.aliases.join(","));
    }
    s
}

pub(crate) async fn account<S: MailStore>(
    store: &S,
    address: &str,
) -> Result<AccountInfo, ServerError> {
    store
        .find_account(address)
        .await?
        .ok_or_else(|| ServerError::Store(StoreError::NoSuchAccount(address.to_string())))
}

fn check_password(pw: &str) -> Result<(), ServerError> {
    if pw.is_empty() {
        return Err(ServerError::Usage("the password is empty".into()));
    }
    if pw.chars().any(char::is_control) {
        return Err(ServerError::Usage(
            "the password contains a control character".into(),
        ));
    }
    Ok(())
}

/// Turns bare LF line ends into CRLF (POP3 and IMAP sizes count CRLF line ends).
pub fn normalize_crlf(input: &[u8]) -> Bytes {
    let bare = input
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || input.get(i - 1) != Some(&b'\r')))
        .count();
    if bare == 0 {
        return Bytes::copy_from_slice(input);
    }
    let mut out = Vec::with_capacity(input.len() + bare);
    let mut prev = 0u8;
    for &b in input {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Bytes::from(out)
}

/// Checks a message for `deliver` before anything is stored: size and a header block.
///
/// # Errors
/// [`ServerError::Usage`] saying why the message is refused.
pub fn check_message(message: &[u8], limit: u64) -> Result<(), ServerError> {
    mailstore_core::validate_message(message, message.len() as u64, limit)
        .map_err(|e| ServerError::Usage(format!("message refused, nothing stored: {e}")))?;
    // The header block must end (an empty line) unless the message is only headers.
    Ok(())
}

/// Runs one admin request against a store; returns the lines to print.
///
/// # Errors
/// Whatever the store refuses, with its reason.
pub async fn execute<S: MailStore>(
    store: &S,
    config: &Config,
    request: Request,
) -> Result<Vec<String>, ServerError> {
    tracing::info!(request = ?request, "admin request");
    match request {
        Request::UserAdd { address, password } => {
            check_password(&password)?;
            if !config.is_local_address(&address) {
                return Err(ServerError::Usage(format!(
                    "{address} is not in a local domain (configured domains: {})",
                    config.domains.join(", ")
                )));
            }
            let info = store
                .create_account(NewAccount::new(address, Some(&password)))
                .await?;
            Ok(vec![format!("created {}", info.address)])
        }
        Request::UserPasswd { address, password } => {
            check_password(&password)?;
            let a = account(store, &address).await?;
            store.set_password(a.id, Some(&password)).await?;
            Ok(vec![format!("password changed for {}", a.address)])
        }
        Request::UserList => {
            let accounts = store.list_accounts().await?;
            Ok(accounts.iter().map(describe_account).collect())
        }
        Request::UserAccess { address, change } => {
            let a = account(store, &address).await?;
            let mut access = a.access;
            if let Some(v) = change.pop3 {
                access.pop3 = v;
            }
            if let Some(v) = change.imap {
                access.imap = v;
            }
            if let Some(v) = change.smtp {
                access.smtp = v;
            }
            store.set_access(a.id, access).await?;
            Ok(vec![format!(
                "{}  access={}",
                a.address,
                describe_access(access)
            )])
        }
        Request::UserQuota {
            address,
            storage,
            messages,
        } => {
            let a = account(store, &address).await?;
            let mut quota = a.quota;
            quota.max_bytes = storage.apply(quota.max_bytes);
            quota.max_messages = messages.apply(quota.max_messages);
            store.set_quota(a.id, quota).await?;
            let usage = store.quota_usage(a.id).await?;
            let lim = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
            Ok(vec![format!(
                "{}  storage={}/{} bytes  messages={}/{}",
                a.address,
                usage.bytes,
                lim(quota.max_bytes),
                usage.messages,
                lim(quota.max_messages)
            )])
        }
        Request::UserApopSecret { address, secret } => {
            if let Some(s) = &secret {
                check_password(s)?;
            }
            let a = account(store, &address).await?;
            store.set_plaintext_secret(a.id, secret.as_deref()).await?;
            Ok(vec![if secret.is_some() {
                format!(
                    "APOP secret stored for {} (anyone reading the store can log in with it)",
                    a.address
                )
            } else {
                format!("APOP secret removed for {}", a.address)
            }])
        }
        Request::AppPasswordAdd { address, name } => {
            let a = account(store, &address).await?;
            let secret = store.create_app_password(a.id, &name).await?;
            Ok(vec![
                format!("app password {name:?} for {}: {secret}", a.address),
                "it is shown only now; use it instead of the account password in mail apps".into(),
            ])
        }
        Request::AppPasswordList { address } => {
            let a = account(store, &address).await?;
            let list = store.list_app_passwords(a.id).await?;
            Ok(list
                .iter()
                .map(|p| {
                    let last = p
                        .last_used
                        .map_or_else(|| "never".to_string(), |t| fmt_time(t.0));
                    format!(
                        "{}  created={}  last-used={last}",
                        p.name,
                        fmt_time(p.created.0)
                    )
                })
                .collect())
        }
        Request::AppPasswordRevoke { address, name } => {
            let a = account(store, &address).await?;
            store.revoke_app_password(a.id, &name).await?;
            Ok(vec![format!(
                "app password {name:?} of {} revoked",
                a.address
            )])
        }
        Request::Deliver {
            address,
            folder,
            message,
        } => {
            let message = normalize_crlf(&message);
            check_message(&message, config.max_message_size)?;
            let a = account(store, &address).await?;
            let folder = folder.unwrap_or_else(|| "INBOX".to_string());
            let mailbox = store.mailbox(a.id, &folder).await?;
            let policy = crate::policy::effective(store, &a).await?;
            policy
                .check_size(
                    sync_policy::access::Direction::Receive,
                    message.len() as u64,
                )
                .map_err(|r| ServerError::Usage(format!("message refused, nothing stored: {r}")))?;
            let outcome = store
                .append(mailbox.mailbox, AppendOptions::default(), message)
                .await?;
            let mut lines = vec![format!(
                "delivered to {} {} (UID {}, {} bytes)",
                a.address, mailbox.name, outcome.uid, outcome.size
            )];
            // Filter rules apply to mail arriving in the INBOX (FLT-1), not to a
            // delivery the administrator aimed at a folder.
            if mailbox.name == "INBOX" {
                let o = crate::policy::file_delivered(
                    store,
                    a.id,
                    &policy,
                    mailbox.mailbox,
                    outcome.uid,
                )
                .await?;
                if !o.matched.is_empty() {
                    lines.push(format!(
                        "filter rules matched: {:?} -> {}",
                        o.matched,
                        if o.delete {
                            "Trash".to_string()
                        } else {
                            o.folder.unwrap_or_else(|| "INBOX".into())
                        }
                    ));
                }
            }
            Ok(lines)
        }
        Request::PolicyShow { target } => Ok(crate::policy::show(store, &target).await?),
        Request::PolicySet { target, key, value } => {
            let now = sync_policy::UnixTime::from_system_time(std::time::SystemTime::now());
            Ok(crate::policy::set(store, &target, &key, &value, now).await?)
        }
        Request::ImportAdd {
            address,
            id,
            settings,
            password,
            ca_file,
            oauth2,
        } => {
            let a = account(store, &address).await?;
            let settings: sync_policy::import::ImportAccountSettings = toml::from_str(&settings)
                .map_err(|e| ServerError::Usage(format!("import settings: {e}")))?;
            let secret = crate::imports::ImportSecret {
                password,
                ca_file: ca_file.map(PathBuf::from),
                oauth2,
            };
            Ok(crate::imports::add(store, &a, &id, settings, secret).await?)
        }
        Request::ImportRemove { address, id } => {
            let a = account(store, &address).await?;
            Ok(crate::imports::remove(store, &a, &id).await?)
        }
        Request::ImportRun { address, id } => {
            let a = account(store, &address).await?;
            let now = sync_policy::UnixTime::from_system_time(std::time::SystemTime::now());
            Ok(crate::imports::run(store, &a, &id, now).await?)
        }
        Request::ImportReenable { address, id } => {
            let a = account(store, &address).await?;
            Ok(crate::imports::reenable(store, &a, &id).await?)
        }
        Request::ImportStatus { address } => {
            let a = account(store, &address).await?;
            Ok(crate::imports::status(store, &a).await?)
        }
        Request::MigrateAdd { address, job } => {
            let a = account(store, &address).await?;
            Ok(crate::migrate::add(store, &a, job).await?)
        }
        Request::MigrateRun { address, id } => {
            let a = account(store, &address).await?;
            let now = sync_policy::UnixTime::from_system_time(std::time::SystemTime::now());
            Ok(crate::migrate::run(store, &a, id.as_deref(), now, &mut |_| {}).await?)
        }
        Request::MigrateStatus { address } => {
            let a = account(store, &address).await?;
            Ok(crate::migrate::status(store, &a).await?)
        }
        Request::Upload {
            address,
            folder,
            paths,
        } => {
            let a = account(store, &address).await?;
            let policy = crate::policy::effective(store, &a).await?;
            policy
                .check_feature(sync_policy::access::PlanFeature::EmlUpload)
                .map_err(|r| ServerError::Usage(r.text()))?;
            let report = sync_policy::engine::upload::upload(
                store,
                a.id,
                &folder,
                &paths,
                &sync_policy::engine::upload::UploadOptions::default(),
            )
            .await
            .map_err(|e| ServerError::Usage(e.to_string()))?;
            let mut lines: Vec<String> = report
                .stored
                .iter()
                .map(|f| format!("stored {} (UID {})", f.path.display(), f.uid))
                .collect();
            lines.extend(
                report
                    .rejected
                    .iter()
                    .map(|f| format!("rejected {}: {}", f.path.display(), f.reason)),
            );
            lines.push(format!(
                "uploaded {} of {} files into {} of {}",
                report.stored.len(),
                paths.len(),
                folder,
                a.address
            ));
            Ok(lines)
        }
        Request::RetentionRun { at } => {
            let now = at.map_or_else(
                || sync_policy::UnixTime::from_system_time(std::time::SystemTime::now()),
                sync_policy::UnixTime,
            );
            let r = crate::policy::run_retention(store, now).await?;
            Ok(vec![format!(
                "retention: {} accounts checked, {} messages deleted",
                r.accounts, r.deleted
            )])
        }
        Request::Export {
            address,
            format,
            path,
        } => {
            let a = account(store, &address).await?;
            crate::transfer::export(store, &a, format, &path).await
        }
        Request::Import {
            address,
            format,
            path,
            folder,
        } => {
            let a = account(store, &address).await?;
            crate::transfer::import(store, &a, format, &path, folder.as_deref()).await
        }
    }
}

/// Formats a Unix timestamp as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_time(t: i64) -> String {
    let secs = u64::try_from(t).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Request) {
        let (line, body) = r.encode();
        assert!(!line.contains('\n'));
        match parse_request_line(&line).unwrap() {
            ParsedLine::Complete(back) => assert_eq!(back, r),
            ParsedLine::Deliver {
                address,
                folder,
                size,
            } => {
                let body = body.unwrap();
                assert_eq!(size, body.len() as u64);
                assert_eq!(ParsedLine::finish_deliver(address, folder, body), r);
            }
        }
    }

    #[test]
    fn requests_round_trip() {
        round_trip(Request::UserAdd {
            address: "a@example.test".into(),
            password: "p w%-\u{e9}\n".into(),
        });
        round_trip(Request::UserPasswd {
            address: "a@example.test".into(),
            password: "-".into(),
        });
        round_trip(Request::UserList);
        round_trip(Request::PolicyShow {
            target: crate::policy::PolicyTarget::Org("example.test".into()),
        });
        round_trip(Request::PolicySet {
            target: crate::policy::PolicyTarget::User("a@example.test".into()),
            key: "filters.rules".into(),
            value: "[{ name = \"x y\" }]".into(),
        });
        round_trip(Request::RetentionRun { at: None });
        round_trip(Request::ImportAdd {
            address: "a@example.test".into(),
            id: "gmail-1".into(),
            settings: "username = \"x y\"\n[server]\nprovider = \"gmail\"\n".into(),
            password: "p w".into(),
            ca_file: None,
            oauth2: None,
        });
        round_trip(Request::ImportRun {
            address: "a@example.test".into(),
            id: "i".into(),
        });
        round_trip(Request::ImportRemove {
            address: "a@example.test".into(),
            id: "i".into(),
        });
        round_trip(Request::ImportReenable {
            address: "a@example.test".into(),
            id: "i".into(),
        });
        round_trip(Request::ImportAdd {
            address: "a@example.test".into(),
            id: "ms".into(),
            settings: "username = \"x\"\n".into(),
            password: "ya29.token value".into(),
            ca_file: Some("/tmp/ca.pem".into()),
            oauth2: Some("xoauth2".into()),
        });
        round_trip(Request::ImportStatus {
            address: "a@example.test".into(),
        });
        round_trip(Request::MigrateAdd {
            address: "a@example.test".into(),
            job: crate::migrate::MigrateJob {
                id: "j".into(),
                host: "imap.example.org".into(),
                port: 993,
                tls: sync_policy::import::TlsMode::StartTls,
                username: "u".into(),
                password: "-".into(),
                ca_file: Some(PathBuf::from("/etc/ca.pem")),
                oauth2: Some("oauthbearer".into()),
                last: None,
            },
        });
        round_trip(Request::MigrateRun {
            address: "a@example.test".into(),
            id: None,
        });
        round_trip(Request::MigrateStatus {
            address: "a@example.test".into(),
        });
        round_trip(Request::Upload {
            address: "a@example.test".into(),
            folder: "My Folder".into(),
            paths: vec![PathBuf::from("/tmp/a b.eml"), PathBuf::from("/tmp/-")],
        });
        round_trip(Request::RetentionRun { at: Some(-5) });
        round_trip(Request::UserAccess {
            address: "a@x.test".into(),
            change: AccessChange {
                pop3: Some(false),
                imap: None,
                smtp: Some(true),
            },
        });
        round_trip(Request::UserQuota {
            address: "a@x.test".into(),
            storage: QuotaChange::Limit(1 << 30),
            messages: QuotaChange::Keep,
        });
        round_trip(Request::UserQuota {
            address: "a@x.test".into(),
            storage: QuotaChange::Unlimited,
            messages: QuotaChange::Limit(5),
        });
        assert_eq!(QuotaChange::parse("2G"), Ok(QuotaChange::Limit(2 << 30)));
        assert_eq!(QuotaChange::parse("Unlimited"), Ok(QuotaChange::Unlimited));
        assert!(QuotaChange::parse("lots").is_err());
        round_trip(Request::UserApopSecret {
            address: "a@x.test".into(),
            secret: None,
        });
        round_trip(Request::UserApopSecret {
            address: "a@x.test".into(),
            secret: Some("-".into()),
        });
        round_trip(Request::AppPasswordAdd {
            address: "a@x.test".into(),
            name: "my phone".into(),
        });
        round_trip(Request::AppPasswordList {
            address: "a@x.test".into(),
        });
        round_trip(Request::AppPasswordRevoke {
            address: "a@x.test".into(),
            name: "my phone".into(),
        });
        round_trip(Request::Deliver {
            address: "a@x.test".into(),
            folder: Some("Lists/rust".into()),
            message: Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n"),
        });
        round_trip(Request::Export {
            address: "a@x.test".into(),
            format: MailFormat::Mbox,
            path: "/tmp/out dir".into(),
        });
        round_trip(Request::Import {
            address: "a@x.test".into(),
            format: MailFormat::Maildir,
            path: "/tmp/in".into(),
            folder: None,
        });
        round_trip(Request::Import {
            address: "a@x.test".into(),
            format: MailFormat::Mbox,
            path: "/tmp/in.mbox".into(),
            folder: Some("Old mail".into()),
        });
    }

    #[test]
    fn exact_wire_form() {
        let (line, _) = Request::UserAdd {
            address: "a@x.test".into(),
            password: "p w%".into(),
        }
        .encode();
        assert_eq!(line, "USER-ADD a@x.test p%20w%25");
        assert_eq!(
            encode_response(&Ok(vec!["a 100%".into(), "b\nc".into()])),
            "* a 100%25\n* b%0Ac\nOK\n"
        );
        assert_eq!(
            encode_response(&Err("no such account: x".into())),
            "ERR no such account: x\n"
        );
        assert_eq!(
            parse_response_line("* a 100%25").unwrap(),
            ResponseLine::Data("a 100%".into())
        );
        assert_eq!(parse_response_line("OK").unwrap(), ResponseLine::Ok);
        assert_eq!(
            parse_response_line("ERR b%0Ac").unwrap(),
            ResponseLine::Err("b\nc".into())
        );
        assert!(parse_response_line("what").is_err());
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(parse_request_line("").is_err());
        assert!(parse_request_line("USER-ADD onlyone").is_err());
        assert!(parse_request_line("USER-ADD a b c").is_err());
        assert!(parse_request_line("USER-ADD a%zz b").is_err());
        assert!(parse_request_line("USER-ADD a %FF").is_err());
        assert!(parse_request_line("DELIVER a - lots").is_err());
        assert!(parse_request_line("USER-ACCESS a maybe - -").is_err());
        assert!(parse_request_line("EXPORT a tar /x").is_err());
        assert!(parse_request_line("DROP-ALL").is_err());
    }

    #[test]
    fn crlf_normalization() {
        assert_eq!(&normalize_crlf(b"a\nb\r\nc\n")[..], b"a\r\nb\r\nc\r\n");
        assert_eq!(&normalize_crlf(b"\n")[..], b"\r\n");
        assert_eq!(&normalize_crlf(b"a\r\n")[..], b"a\r\n");
    }

    #[test]
    fn debug_hides_secrets() {
        let r = Request::UserAdd {
            address: "a@x.test".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        let r = Request::ImportAdd {
            address: "a@x.test".into(),
            id: "i".into(),
            settings: String::new(),
            password: "hunter2".into(),
            ca_file: None,
            oauth2: Some("oauthbearer".into()),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        let r = Request::MigrateAdd {
            address: "a@x.test".into(),
            job: crate::migrate::MigrateJob {
                password: "hunter2".into(),
                ..Default::default()
            },
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
