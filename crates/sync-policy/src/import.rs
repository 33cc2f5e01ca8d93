//! External POP3 import policy (IMP-1 .. IMP-5), as pure functions for the import engine
//! that comes later: account settings and presets, what one run fetches, skips and
//! deletes on the remote server, and the automatic-fetch schedule that turns itself off
//! after repeated failures.
//!
//! The engine owns the I/O (a `pop3-proto` client, the store); it keeps a ledger of the
//! UIDLs it has handled and commits each entry right after the message is stored, so an
//! interrupted run never imports a message twice (field notes, pain point 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::facts::UnixTime;

/// External accounts per user (IMP-1).
pub const MAX_IMPORT_ACCOUNTS: usize = 10;
/// Messages of this size or more are not imported (IMP-3: "50 MB or more").
pub const DEFAULT_IMPORT_SIZE_LIMIT: u64 = 50 * 1024 * 1024;
/// Automatic fetch interval (IMP-5): 10 minutes.
pub const AUTO_FETCH_INTERVAL_SECS: i64 = 600;
/// Consecutive failures after which automatic fetch turns itself off (IMP-5).
pub const MAX_CONSECUTIVE_FAILURES: u32 = 10;

/// How the connection to the remote server is protected.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (port 995). Default.
    #[default]
    Implicit,
    /// Plain connection upgraded with STLS (port 110).
    StartTls,
    /// No TLS: only for test servers on the same host.
    None,
}

/// A provider preset (IMP-1) or a custom server.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "provider")]
pub enum RemoteServer {
    /// Gmail / Google Workspace.
    Gmail,
    /// Yahoo Mail.
    Yahoo,
    /// Outlook.com / Hotmail.
    Outlook,
    /// A server given by host, port and TLS mode. The default is an empty host on port
    /// 995, which [`ImportAccountSettings::validate`] rejects until the user fills it in.
    Custom {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// TLS mode.
        tls: TlsMode,
    },
}

impl Default for RemoteServer {
    fn default() -> Self {
        RemoteServer::Custom {
            host: String::new(),
            port: 995,
            tls: TlsMode::Implicit,
        }
    }
}

impl RemoteServer {
    /// Host, port and TLS mode to connect to.
    #[must_use]
    pub fn endpoint(&self) -> (&str, u16, TlsMode) {
        match self {
            RemoteServer::Gmail => ("pop.gmail.com", 995, TlsMode::Implicit),
            RemoteServer::Yahoo => ("pop.mail.yahoo.com", 995, TlsMode::Implicit),
            RemoteServer::Outlook => ("outlook.office365.com", 995, TlsMode::Implicit),
            RemoteServer::Custom { host, port, tls } => (host.as_str(), *port, *tls),
        }
    }
}

/// What happens to a message on the remote server once it is imported (IMP-4).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum RemoteDeletion {
    /// Leave it on the remote server. Default.
    #[default]
    Keep,
    /// Delete it (DELE) in the run that imported it, after it is stored here.
    WhenImported,
    /// Delete it once it was imported this many days ago.
    AfterDays {
        /// Days after the import.
        days: u32,
    },
}

/// One external POP3 account of a user (IMP-1, IMP-4), stored per account. The password
/// is not part of it: the server keeps secrets apart from settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportAccountSettings {
    /// The remote server.
    pub server: RemoteServer,
    /// Login name on the remote server.
    pub username: String,
    /// Folder the imported mail goes to. Default `INBOX`.
    pub destination_folder: String,
    /// A label (the seed's "icon") shown on imported mail. Default none.
    pub label: Option<String>,
    /// Remote deletion. Default keep.
    pub remote_deletion: RemoteDeletion,
    /// Run the user's sorting rules on imported mail (FLT-1). Default `false`.
    pub apply_filters: bool,
    /// Fetch automatically every 10 minutes (IMP-5). Default `true`.
    pub auto_fetch: bool,
    /// Messages of this size or more are skipped (IMP-3, IMP-4). Default 50 MiB.
    pub size_limit: u64,
}

impl Default for ImportAccountSettings {
    fn default() -> Self {
        ImportAccountSettings {
            server: RemoteServer::default(),
            username: String::new(),
            destination_folder: "INBOX".into(),
            label: None,
            remote_deletion: RemoteDeletion::Keep,
            apply_filters: false,
            auto_fetch: true,
            size_limit: DEFAULT_IMPORT_SIZE_LIMIT,
        }
    }
}

fn invalid(reason: &str) -> PolicyError {
    PolicyError::InvalidImport {
        reason: reason.into(),
    }
}

impl ImportAccountSettings {
    /// Checks one account's settings.
    ///
    /// # Errors
    /// [`PolicyError::InvalidImport`] saying what is missing or wrong.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let (host, port, _) = self.server.endpoint();
        if host.is_empty() {
            return Err(invalid("choose a provider or enter the POP3 server"));
        }
        if host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the POP3 server name is not a host name or address",
            ));
        }
        if port == 0 {
            return Err(invalid("the POP3 port must be between 1 and 65535"));
        }
        if self.username.is_empty() || self.username.chars().any(char::is_control) {
            return Err(invalid("enter the login name of the external account"));
        }
        crate::imap::check_folder_name(&self.destination_folder)?;
        if self.size_limit == 0 {
            return Err(PolicyError::ZeroLimit {
                what: "the import size limit",
            });
        }
        if self.remote_deletion == (RemoteDeletion::AfterDays { days: 0 }) {
            return Err(PolicyError::ZeroLimit {
                what: "the days before remote deletion",
            });
        }
        Ok(())
    }

    /// Checks a user's whole list of external accounts: each one, at most
    /// [`MAX_IMPORT_ACCOUNTS`], and no account registered twice.
    ///
    /// # Errors
    /// [`PolicyError::InvalidImport`] for the first problem.
    pub fn validate_all(accounts: &[ImportAccountSettings]) -> Result<(), PolicyError> {
        if accounts.len() > MAX_IMPORT_ACCOUNTS {
            return Err(PolicyError::InvalidImport {
                reason: format!(
                    "at most {MAX_IMPORT_ACCOUNTS} external accounts can be registered"
                ),
            });
        }
        for (i, a) in accounts.iter().enumerate() {
            a.validate()?;
            let (host, port, _) = a.server.endpoint();
            let same = |b: &ImportAccountSettings| {
                let (h, p) = (b.server.endpoint().0, b.server.endpoint().1);
                h.eq_ignore_ascii_case(host) && p == port && b.username == a.username
            };
            if accounts.iter().take(i).any(same) {
                return Err(invalid("this external account is already registered"));
            }
        }
        Ok(())
    }
}

/// A message the remote server lists (from UIDL and LIST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMessage {
    /// Its message number in this session.
    pub msgno: u32,
    /// Its unique-id.
    pub uidl: String,
    /// Its size in octets.
    pub size: u64,
}

/// What the ledger remembers about a remote message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LedgerEntry {
    /// Imported at this moment.
    Imported {
        /// When.
        at: UnixTime,
    },
    /// Skipped (too large) and reported at this moment; not reported again.
    Skipped {
        /// When.
        at: UnixTime,
    },
}

/// What one import run does (IMP-2, IMP-3, IMP-4).
#[must_use = "the plan lists the messages to fetch and delete"]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportRunPlan {
    /// Fetch these (message numbers, in order) and store them; record each in the ledger
    /// as soon as it is stored.
    pub fetch: Vec<u32>,
    /// Fetched messages are then DELEted on the remote server ([`RemoteDeletion::WhenImported`]).
    pub delete_fetched: bool,
    /// New messages too large to import: report them to the user and record them as
    /// skipped (IMP-3).
    pub skip_too_large: Vec<RemoteMessage>,
    /// Messages imported earlier that are now due for remote deletion (message numbers).
    pub delete_remote: Vec<u32>,
    /// Ledger entries whose message is no longer on the remote server: forget them.
    pub forget: Vec<String>,
}

/// Plans one run over the remote listing (IMP-2: the first run imports everything, later
/// runs only what the ledger does not know; IMP-3: skip big messages; IMP-4: remote
/// deletion). A UIDL listed twice by a broken server is imported once.
pub fn plan_import_run(
    remote: &[RemoteMessage],
    ledger: &BTreeMap<String, LedgerEntry>,
    settings: &ImportAccountSettings,
    now: UnixTime,
) -> ImportRunPlan {
    let mut plan = ImportRunPlan {
        delete_fetched: settings.remote_deletion == RemoteDeletion::WhenImported,
        ..ImportRunPlan::default()
    };
    let mut listed = std::collections::BTreeSet::new();
    for m in remote {
        if !listed.insert(m.uidl.as_str()) {
            continue;
        }
        match ledger.get(&m.uidl) {
            None if m.size >= settings.size_limit => plan.skip_too_large.push(m.clone()),
            None => plan.fetch.push(m.msgno),
            Some(LedgerEntry::Imported { at }) => {
                let due = match settings.remote_deletion {
                    RemoteDeletion::Keep => false,
                    RemoteDeletion::WhenImported => true,
                    RemoteDeletion::AfterDays { days } => at.plus_days(days) <= now,
                };
                if due {
                    plan.delete_remote.push(m.msgno);
                }
            }
            Some(LedgerEntry::Skipped { .. }) => {}
        }
    }
    plan.forget = ledger
        .keys()
        .filter(|u| !listed.contains(u.as_str()))
        .cloned()
        .collect();
    plan
}

/// The automatic-fetch state of one external account (IMP-5), stored with it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoFetchState {
    /// Last run, successful or not.
    pub last_run: Option<UnixTime>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Set when automatic fetch turned itself off: the text for the user.
    pub disabled_reason: Option<String>,
}

/// The result of recording a failed run.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Try again at the next interval.
    Retry {
        /// Failures in a row so far.
        failures: u32,
    },
    /// Automatic fetch is now off; tell the user this text.
    Disabled {
        /// Why, and what to do.
        message: String,
    },
}

impl AutoFetchState {
    /// When the next automatic run is due; `None` when automatic fetch is off (by the
    /// user's setting or after too many failures). A never-run account is due at once.
    #[must_use]
    pub fn next_due(&self, settings: &ImportAccountSettings) -> Option<UnixTime> {
        if !settings.auto_fetch || self.disabled_reason.is_some() {
            return None;
        }
        Some(self.last_run.map_or(UnixTime(i64::MIN), |t| {
            UnixTime(t.0.saturating_add(AUTO_FETCH_INTERVAL_SECS))
        }))
    }

    /// Records a run that completed.
    pub fn record_success(&mut self, now: UnixTime) {
        self.last_run = Some(now);
        self.consecutive_failures = 0;
    }

    /// Records a run that failed with `error` (e.g. "wrong password"); after
    /// [`MAX_CONSECUTIVE_FAILURES`] in a row automatic fetch turns itself off.
    pub fn record_failure(&mut self, now: UnixTime, error: &str) -> FailureOutcome {
        self.last_run = Some(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
            let message = format!(
                "Automatic fetch was turned off after {} failed attempts in a row (last error: {}); \
                 check the account settings and password, then turn automatic fetch on again",
                self.consecutive_failures,
                error
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            );
            self.disabled_reason = Some(message.clone());
            FailureOutcome::Disabled { message }
        } else {
            FailureOutcome::Retry {
                failures: self.consecutive_failures,
            }
        }
    }

    /// The user turned automatic fetch on again: start counting afresh.
    pub fn reenable(&mut self) {
        self.consecutive_failures = 0;
        self.disabled_reason = None;
    }
}
