//! Access rules (ACC-4 .. ACC-10): which protocols an account may use, which credentials
//! are accepted, where SMTP submission may come from, size limits, simultaneous IMAP
//! connections, and plan features. Every refusal carries a text that tells the user why
//! and what to do, plus the response codes each protocol uses for it; the protocol crates
//! format the reply.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A mail access protocol.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// POP3.
    Pop3,
    /// IMAP.
    Imap,
    /// SMTP submission.
    Smtp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Pop3 => "POP3",
            Protocol::Imap => "IMAP",
            Protocol::Smtp => "SMTP",
        })
    }
}

/// Per-protocol switches, used at organisation level and by an administrator per user.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtocolSwitches {
    /// POP3 allowed. Default `true`.
    pub pop3: bool,
    /// IMAP allowed. Default `true`.
    pub imap: bool,
    /// SMTP submission allowed. Default `true`.
    pub smtp: bool,
}

impl Default for ProtocolSwitches {
    fn default() -> Self {
        ProtocolSwitches {
            pop3: true,
            imap: true,
            smtp: true,
        }
    }
}

impl ProtocolSwitches {
    /// The switch for `p`.
    #[must_use]
    pub fn get(&self, p: Protocol) -> bool {
        match p {
            Protocol::Pop3 => self.pop3,
            Protocol::Imap => self.imap,
            Protocol::Smtp => self.smtp,
        }
    }
}

/// Authentication options of the whole server (ACC-7, ACC-10), from its configuration.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerAuthSettings {
    /// APOP is offered by POP3 (ACC-7). Default `false`: APOP needs the plain password on
    /// the server and MD5; offer it only for clients that cannot do TLS + USER/PASS.
    pub apop: bool,
    /// OAuth2 (XOAUTH2, OAUTHBEARER) is accepted (ACC-10). Default `false`: it needs an
    /// identity provider configured.
    pub oauth2: bool,
}

/// Features that depend on the organisation's plan (ACC-5, seed 001).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanFeature {
    /// Importing from external POP3 accounts (IMP-*).
    ExternalImport,
    /// IMAP migration (MIG-*).
    ImapMigration,
    /// `.eml` upload (UPL-1).
    EmlUpload,
}

impl fmt::Display for PlanFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlanFeature::ExternalImport => "External mail import",
            PlanFeature::ImapMigration => "IMAP migration",
            PlanFeature::EmlUpload => "Mail upload",
        })
    }
}

/// What the organisation's plan includes.
///
/// The seed service offers imports only in its top plan; a self-hosted server has no
/// plans, so the default includes everything and a hosting operator turns features off.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanFeatures {
    /// External POP3 import. Default `true`.
    pub external_import: bool,
    /// IMAP migration. Default `true`.
    pub imap_migration: bool,
    /// `.eml` upload. Default `true`.
    pub eml_upload: bool,
}

impl Default for PlanFeatures {
    fn default() -> Self {
        PlanFeatures {
            external_import: true,
            imap_migration: true,
            eml_upload: true,
        }
    }
}

impl PlanFeatures {
    /// Does the plan include `f`?
    #[must_use]
    pub fn includes(&self, f: PlanFeature) -> bool {
        match f {
            PlanFeature::ExternalImport => self.external_import,
            PlanFeature::ImapMigration => self.imap_migration,
            PlanFeature::EmlUpload => self.eml_upload,
        }
    }

    /// Checks that the plan includes `f`.
    ///
    /// # Errors
    /// A [`Refusal`] with [`RefusalReason::FeatureNotInPlan`].
    pub fn check(&self, f: PlanFeature) -> Result<(), Refusal> {
        if self.includes(f) {
            Ok(())
        } else {
            Err(Refusal::new(RefusalReason::FeatureNotInPlan(f)))
        }
    }
}

/// Which secret a successful login used.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    /// The account's own (web sign-in) password.
    AccountPassword,
    /// An app password generated for mail clients (ACC-4).
    AppPassword,
    /// An OAuth2 bearer token (ACC-10).
    OAuth2,
}

/// Facts about the account, from the store, that decide which credentials it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountAuthFacts {
    /// Two-step verification is on: only app passwords (or OAuth2) work for mail clients.
    pub two_step_enabled: bool,
    /// The account signs in through an external identity provider (SSO).
    pub federated: bool,
    /// The account has a password of this service (a federated account has none until
    /// the user creates one).
    pub has_account_password: bool,
    /// The account has at least one app password.
    pub has_app_password: bool,
}

impl AccountAuthFacts {
    /// A plain account: own password, no two-step verification, not federated.
    #[must_use]
    pub fn plain() -> Self {
        AccountAuthFacts {
            two_step_enabled: false,
            federated: false,
            has_account_password: true,
            has_app_password: false,
        }
    }
}

/// A login whose credentials the server has already verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// Which protocol.
    pub protocol: Protocol,
    /// Which secret matched.
    pub credential: Credential,
    /// The POP3 APOP command was used.
    pub apop: bool,
    /// Facts about the account.
    pub account: AccountAuthFacts,
}

impl LoginAttempt {
    /// A login with `credential` over `protocol`, not APOP.
    #[must_use]
    pub fn new(protocol: Protocol, credential: Credential, account: AccountAuthFacts) -> Self {
        LoginAttempt {
            protocol,
            credential,
            apop: false,
            account,
        }
    }
}

/// Why an action was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// The organisation's administrator turned the protocol off (ACC-5).
    DisabledByOrganisation(Protocol),
    /// An administrator turned the protocol off for this account, e.g. after a device
    /// was lost (ACC-5).
    DisabledForAccount(Protocol),
    /// The user has not turned the protocol on for their own account (ACC-5).
    NotEnabledByUser(Protocol),
    /// Two-step verification is on and the account password was used (ACC-4).
    AppPasswordRequired,
    /// A federated (SSO) account has no password for mail clients (ACC-4).
    FederatedNeedsAppPassword,
    /// APOP is not offered by this server (ACC-7).
    ApopDisabled,
    /// OAuth2 is not accepted by this server (ACC-10).
    OAuth2Disabled,
    /// SMTP submission from this address is not in the organisation's allowlist (ACC-6).
    SourceNotAllowed(IpAddr),
    /// A message is larger than the limit for its direction (ACC-8).
    MessageTooLarge {
        /// Sending (submission) or receiving.
        direction: Direction,
        /// The message's size in octets.
        size: u64,
        /// The limit in octets.
        limit: u64,
    },
    /// The account already has the maximum number of IMAP connections (ACC-9).
    TooManyConnections {
        /// The limit.
        limit: u32,
    },
    /// The organisation's plan does not include the feature (ACC-5).
    FeatureNotInPlan(PlanFeature),
}

/// Which way a message travels, for size limits (ACC-8).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Submitted by the account's user for sending.
    Send,
    /// Received for the account (SMTP delivery, import, APPEND).
    Receive,
}

/// An SMTP reply code with its enhanced status code (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpCode {
    /// The three-digit reply code, e.g. 535.
    pub code: u16,
    /// The enhanced status code, e.g. `5.7.8`.
    pub enhanced: &'static str,
}

/// A refused action: the reason, a text for the user, and the codes for each protocol.
#[must_use = "a refusal must be sent to the client"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
}

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: RefusalReason) -> Self {
        Refusal { reason }
    }

    /// The text for the user: says why and what to do. Printable ASCII only, no CR/LF, so
    /// it fits every protocol's reply line.
    #[must_use]
    pub fn text(&self) -> String {
        match &self.reason {
            RefusalReason::DisabledByOrganisation(p) => {
                format!("{p} access is turned off for your organisation; ask your administrator to allow {p} access")
            }
            RefusalReason::DisabledForAccount(p) => format!(
                "{p} access has been turned off for this account by an administrator; contact your administrator"
            ),
            RefusalReason::NotEnabledByUser(p) => {
                format!("{p} access is not turned on for this account; turn it on in your mail settings (POP/IMAP) and try again")
            }
            RefusalReason::AppPasswordRequired => "Two-step verification is on for this account: sign in with an app password (create one in your security settings), not the account password".into(),
            RefusalReason::FederatedNeedsAppPassword => "This account signs in through an external identity provider and has no password for mail clients: create an app password in your security settings and use it here".into(),
            RefusalReason::ApopDisabled => "APOP is not enabled on this server; log in with USER and PASS over TLS".into(),
            RefusalReason::OAuth2Disabled => "OAuth2 sign-in is not enabled on this server; use an app password".into(),
            RefusalReason::SourceNotAllowed(ip) => format!(
                "Sending from {ip} is not allowed for your organisation; ask your administrator to add this address to the SMTP allowlist"
            ),
            RefusalReason::MessageTooLarge { direction: Direction::Send, size, limit } => {
                format!("Message too large to send: {size} bytes, the limit is {limit} bytes")
            }
            RefusalReason::MessageTooLarge { direction: Direction::Receive, size, limit } => {
                format!("Message too large for this mailbox: {size} bytes, the limit is {limit} bytes")
            }
            RefusalReason::TooManyConnections { limit } => format!(
                "Too many simultaneous IMAP connections for this account (limit {limit}); close another mail client and try again"
            ),
            RefusalReason::FeatureNotInPlan(f) => {
                format!("{f} is not included in your organisation's plan; ask your administrator")
            }
        }
    }

    /// The POP3 extended response code (RFC 2449, RFC 3206): `AUTH` for refusals of the
    /// user's login, `SYS/PERM` for the rest.
    #[must_use]
    pub fn pop3_code(&self) -> &'static str {
        match self.reason {
            RefusalReason::DisabledByOrganisation(_)
            | RefusalReason::DisabledForAccount(_)
            | RefusalReason::NotEnabledByUser(_)
            | RefusalReason::AppPasswordRequired
            | RefusalReason::FederatedNeedsAppPassword
            | RefusalReason::ApopDisabled
            | RefusalReason::OAuth2Disabled
            | RefusalReason::SourceNotAllowed(_) => "AUTH",
            RefusalReason::MessageTooLarge { .. }
            | RefusalReason::TooManyConnections { .. }
            | RefusalReason::FeatureNotInPlan(_) => "SYS/PERM",
        }
    }

    /// The IMAP response code: `CONTACTADMIN` (RFC 5530) where only an administrator can
    /// help, `ALERT` (RFC 9051, which clients must show) where the user can fix it,
    /// `LIMIT` for the connection limit, `TOOBIG` (RFC 4469) for sizes,
    /// `AUTHENTICATIONFAILED` for a mechanism the server does not accept.
    #[must_use]
    pub fn imap_code(&self) -> &'static str {
        match self.reason {
            RefusalReason::DisabledByOrganisation(_)
            | RefusalReason::DisabledForAccount(_)
            | RefusalReason::SourceNotAllowed(_)
            | RefusalReason::FeatureNotInPlan(_) => "CONTACTADMIN",
            RefusalReason::NotEnabledByUser(_)
            | RefusalReason::AppPasswordRequired
            | RefusalReason::FederatedNeedsAppPassword => "ALERT",
            RefusalReason::ApopDisabled | RefusalReason::OAuth2Disabled => "AUTHENTICATIONFAILED",
            RefusalReason::TooManyConnections { .. } => "LIMIT",
            RefusalReason::MessageTooLarge { .. } => "TOOBIG",
        }
    }

    /// The SMTP reply: `535 5.7.8` for login refusals (RFC 4954), `504 5.5.4` for a
    /// mechanism not offered, `550 5.7.1` for a source address not allowed, `552 5.3.4`
    /// for sizes (RFC 1870, RFC 3463), `421 4.7.0` for too many connections.
    #[must_use]
    pub fn smtp_code(&self) -> SmtpCode {
        let (code, enhanced) = match self.reason {
            RefusalReason::DisabledByOrganisation(_)
            | RefusalReason::DisabledForAccount(_)
            | RefusalReason::NotEnabledByUser(_)
            | RefusalReason::AppPasswordRequired
            | RefusalReason::FederatedNeedsAppPassword
            | RefusalReason::ApopDisabled => (535, "5.7.8"),
            RefusalReason::OAuth2Disabled => (504, "5.5.4"),
            RefusalReason::SourceNotAllowed(_) | RefusalReason::FeatureNotInPlan(_) => {
                (550, "5.7.1")
            }
            RefusalReason::MessageTooLarge { .. } => (552, "5.3.4"),
            RefusalReason::TooManyConnections { .. } => (421, "4.7.0"),
        };
        SmtpCode { code, enhanced }
    }

    /// The whole reply line, without CRLF, for `protocol`:
    /// `-ERR [AUTH] ...` (POP3), `NO [ALERT] ...` (IMAP; the caller puts the tag in front),
    /// `535 5.7.8 ...` (SMTP).
    #[must_use]
    pub fn render(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::Pop3 => format!("-ERR [{}] {}", self.pop3_code(), self.text()),
            Protocol::Imap => format!("NO [{}] {}", self.imap_code(), self.text()),
            Protocol::Smtp => {
                let c = self.smtp_code();
                format!("{} {} {}", c.code, c.enhanced, self.text())
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Checks a login whose credentials were verified (ACC-4, ACC-5, ACC-7, ACC-10).
///
/// Call it only after the credentials checked out: refusing earlier, with these
/// specific texts, would tell anyone which accounts exist and how they are set up. For a
/// failed login, see [`explain_failed_login`].
///
/// The order is: the protocol is allowed for the account ([`crate::EffectivePolicy::protocol_access`]),
/// then the server accepts the mechanism (APOP, OAuth2), then the credential suits the
/// account (two-step verification and federated accounts need an app password).
///
/// # Errors
/// The first [`Refusal`] that applies.
pub fn check_login(
    server: &ServerAuthSettings,
    policy: &crate::EffectivePolicy,
    attempt: &LoginAttempt,
) -> Result<(), Refusal> {
    policy.protocol_access(attempt.protocol)?;
    if attempt.apop && !server.apop {
        return Err(Refusal::new(RefusalReason::ApopDisabled));
    }
    if attempt.credential == Credential::OAuth2 && !server.oauth2 {
        return Err(Refusal::new(RefusalReason::OAuth2Disabled));
    }
    if attempt.credential == Credential::AccountPassword {
        if attempt.account.federated && !attempt.account.has_account_password {
            return Err(Refusal::new(RefusalReason::FederatedNeedsAppPassword));
        }
        if attempt.account.two_step_enabled {
            return Err(Refusal::new(RefusalReason::AppPasswordRequired));
        }
    }
    Ok(())
}

/// A helpful refusal for a login whose password did not match, when the account's setup
/// explains it (ACC-4): a federated account without a password of its own, or two-step
/// verification that needs an app password. `None`: use the protocol's generic failure.
///
/// Only call it for an existing account, and only where the operator accepts that the
/// text reveals the account's setup to whoever knows the login name.
#[must_use]
pub fn explain_failed_login(account: &AccountAuthFacts) -> Option<Refusal> {
    if account.federated && !account.has_account_password && !account.has_app_password {
        Some(Refusal::new(RefusalReason::FederatedNeedsAppPassword))
    } else if account.two_step_enabled && !account.has_app_password {
        Some(Refusal::new(RefusalReason::AppPasswordRequired))
    } else {
        None
    }
}

/// Counts simultaneous IMAP connections per account (ACC-9). Pure bookkeeping: the server
/// keeps one, behind its own lock, acquires a permit when a login succeeds and releases
/// it when the connection closes, however it closes. Key it by the account's canonical
/// id (the store's, not the login name as typed), so `Alice@Example.org` and
/// `alice@example.org` count together.
#[derive(Debug, Clone, Default)]
pub struct ConnectionCounter {
    counts: BTreeMap<String, u32>,
}

/// One counted connection; give it back with [`ConnectionCounter::release`].
#[must_use = "a permit must be released when the connection closes"]
#[derive(Debug, PartialEq, Eq)]
pub struct ConnectionPermit {
    account: String,
}

impl ConnectionPermit {
    /// The account it counts for.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl ConnectionCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a new connection of `account` if it has fewer than `limit`.
    ///
    /// # Errors
    /// A [`Refusal`] with [`RefusalReason::TooManyConnections`] (`NO [LIMIT]` over IMAP).
    pub fn try_acquire(&mut self, account: &str, limit: u32) -> Result<ConnectionPermit, Refusal> {
        let current = self.current(account);
        if current >= limit {
            return Err(Refusal::new(RefusalReason::TooManyConnections { limit }));
        }
        self.counts
            .insert(account.to_owned(), current.saturating_add(1));
        Ok(ConnectionPermit {
            account: account.to_owned(),
        })
    }

    /// Gives back a permit. A permit cannot be copied, so a connection is released once.
    pub fn release(&mut self, permit: ConnectionPermit) {
        if let Some(n) = self.counts.get_mut(&permit.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&permit.account);
            }
        }
    }

    /// Connections counted for `account`.
    #[must_use]
    pub fn current(&self, account: &str) -> u32 {
        self.counts.get(account).copied().unwrap_or(0)
    }

    /// Accounts with at least one connection.
    #[must_use]
    pub fn accounts(&self) -> usize {
        self.counts.len()
    }
}
