//! Settings per organisation and per account, and their resolution into the rules in
//! force ([`resolve`]).
//!
//! Both are plain serde types that the store keeps as blobs. Every struct is
//! `#[serde(default)]`: a missing field takes the value of the struct's `Default`, so a
//! blob written by an older version, or an empty one, still loads with the documented
//! defaults; unknown fields (from a newer version) are ignored.
//!
//! The organisation always has the last word: what it turns off, a user cannot turn on,
//! and a user's limit can only be lower than the organisation's.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::access::{
    Direction, PlanFeature, PlanFeatures, Protocol, ProtocolSwitches, Refusal, RefusalReason,
};
use crate::filter::FilterSettings;
use crate::imap::{EffectiveImap, ImapSettings, SpecialUseNames};
use crate::import::ImportAccountSettings;
use crate::pop3::{EffectivePop, Pop3Settings, PopDeletePolicy};

/// 50 MiB: the default size limit for sending and receiving (the workspace's message
/// limit; the seed service refuses imports of 50 MB and more).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

/// Default limit of simultaneous IMAP connections per account (ACC-9). The seed pages
/// name no number; 10 is what common servers use per user.
pub const DEFAULT_MAX_IMAP_CONNECTIONS: u32 = 10;

/// Size and connection limits of an organisation (ACC-8, ACC-9).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgLimits {
    /// Largest message a user may send, in octets. Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_send_size: u64,
    /// Largest message an account accepts (delivery, import, APPEND), in octets.
    /// Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_receive_size: u64,
    /// Simultaneous IMAP connections per account. Default [`DEFAULT_MAX_IMAP_CONNECTIONS`].
    pub max_imap_connections: u32,
}

impl Default for OrgLimits {
    fn default() -> Self {
        OrgLimits {
            max_send_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_receive_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_imap_connections: DEFAULT_MAX_IMAP_CONNECTIONS,
        }
    }
}

/// Settings of an organisation (a tenant, usually one or more mail domains), set by its
/// administrator.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgSettings {
    /// Which protocols the organisation allows at all (ACC-5). Default: all.
    pub protocols: ProtocolSwitches,
    /// A user must also turn POP3 / IMAP on for their own account before a client can
    /// log in (ACC-5). Default `true`, as in the seed services. SMTP follows: a user may
    /// submit once they have turned POP3 or IMAP on ("POP3/SMTP", "IMAP/SMTP").
    pub require_user_opt_in: bool,
    /// Users may choose "follow the client" for POP3 DELE (POP-2). Default `true`;
    /// `false` forces every account to keep the original.
    pub allow_pop_delete: bool,
    /// Size and connection limits.
    pub limits: OrgLimits,
    /// SMTP submission is accepted only from these networks (ACC-6). Default empty: from
    /// anywhere (authentication is always required).
    pub smtp_allowed_sources: Vec<IpNet>,
    /// What the plan includes (ACC-5).
    pub plan: PlanFeatures,
    /// Names of the special-use folders (IMAP-1).
    pub folders: SpecialUseNames,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            protocols: ProtocolSwitches::default(),
            require_user_opt_in: true,
            allow_pop_delete: true,
            limits: OrgLimits::default(),
            smtp_allowed_sources: Vec::new(),
            plan: PlanFeatures::default(),
            folders: SpecialUseNames::default(),
        }
    }
}

impl OrgSettings {
    /// Checks the organisation's settings.
    ///
    /// # Errors
    /// [`PolicyError::ZeroLimit`], or an error in the special-use folder names.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.limits.max_send_size == 0 {
            return Err(PolicyError::ZeroLimit {
                what: "the send size limit",
            });
        }
        if self.limits.max_receive_size == 0 {
            return Err(PolicyError::ZeroLimit {
                what: "the receive size limit",
            });
        }
        if self.limits.max_imap_connections == 0 {
            return Err(PolicyError::ZeroLimit {
                what: "the IMAP connection limit",
            });
        }
        self.folders.validate()
    }
}

/// What an administrator set for one account (ACC-5, ACC-8, ACC-9): protocol switches,
/// e.g. to cut off a lost device, and limits below the organisation's.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminAccountControls {
    /// Protocols allowed for this account. Default: all.
    pub protocols: ProtocolSwitches,
    /// A lower send size limit for this account.
    pub max_send_size: Option<u64>,
    /// A lower receive size limit for this account.
    pub max_receive_size: Option<u64>,
    /// A lower IMAP connection limit for this account.
    pub max_imap_connections: Option<u32>,
}

/// Settings of one account: what its administrator set and what the user chose.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSettings {
    /// Set by an administrator.
    pub admin: AdminAccountControls,
    /// POP3 (POP-1 .. POP-7, and the user's own POP3 switch).
    pub pop3: Pop3Settings,
    /// IMAP (IMAP-3, IMAP-4, IMAP-6, and the user's own IMAP switch).
    pub imap: ImapSettings,
    /// Sorting rules (FLT-1).
    pub filters: FilterSettings,
    /// External POP3 accounts to import from (IMP-1, IMP-4). Default: none.
    pub imports: Vec<ImportAccountSettings>,
}

impl UserSettings {
    /// Checks the account's settings against the organisation's. The server calls this
    /// before it stores a change; it reports the first problem.
    ///
    /// # Errors
    /// [`PolicyError::UserLimitAboveOrg`], [`PolicyError::ZeroLimit`],
    /// [`PolicyError::PopDeleteNotAllowed`], or an error in the IMAP, filter or import
    /// settings.
    pub fn validate(&self, org: &OrgSettings) -> Result<(), PolicyError> {
        let checks: [(&'static str, Option<u64>, u64); 3] = [
            (
                "the send size limit",
                self.admin.max_send_size,
                org.limits.max_send_size,
            ),
            (
                "the receive size limit",
                self.admin.max_receive_size,
                org.limits.max_receive_size,
            ),
            (
                "the IMAP connection limit",
                self.admin.max_imap_connections.map(u64::from),
                u64::from(org.limits.max_imap_connections),
            ),
        ];
        for (what, user, org) in checks {
            match user {
                Some(0) => return Err(PolicyError::ZeroLimit { what }),
                Some(user) if user > org => {
                    return Err(PolicyError::UserLimitAboveOrg { what, user, org });
                }
                _ => {}
            }
        }
        if self.pop3.on_delete == PopDeletePolicy::FollowClient && !org.allow_pop_delete {
            return Err(PolicyError::PopDeleteNotAllowed);
        }
        if self.pop3.retention_days == Some(0) {
            return Err(PolicyError::ZeroLimit {
                what: "the POP3 retention period (days)",
            });
        }
        self.imap.validate()?;
        self.filters.validate()?;
        if !self.imports.is_empty() && !org.plan.external_import {
            return Err(PolicyError::InvalidImport {
                reason: "external mail import is not included in your organisation's plan".into(),
            });
        }
        ImportAccountSettings::validate_all(&self.imports)
    }
}

/// Whether a protocol may be used, and if not, why.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolAccess {
    /// Allowed.
    Allowed,
    /// Refused at login for this reason.
    Denied(RefusalReason),
}

/// The limits in force for one account.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Largest message the user may send (also the SIZE the submission server advertises).
    pub max_send_size: u64,
    /// Largest message the account accepts.
    pub max_receive_size: u64,
    /// Simultaneous IMAP connections.
    pub max_imap_connections: u32,
}

/// Everything in force for one account: the result of [`resolve`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// POP3 access.
    pub pop3_access: ProtocolAccess,
    /// IMAP access.
    pub imap_access: ProtocolAccess,
    /// SMTP submission access.
    pub smtp_access: ProtocolAccess,
    /// POP3 rules.
    pub pop3: EffectivePop,
    /// IMAP rules.
    pub imap: EffectiveImap,
    /// Limits.
    pub limits: EffectiveLimits,
    /// SMTP submission source networks; empty: any.
    pub smtp_allowed_sources: Vec<IpNet>,
    /// Plan features.
    pub plan: PlanFeatures,
    /// Sorting rules.
    pub filters: FilterSettings,
}

fn access(org: &OrgSettings, user: &UserSettings, p: Protocol) -> ProtocolAccess {
    if !org.protocols.get(p) {
        return ProtocolAccess::Denied(RefusalReason::DisabledByOrganisation(p));
    }
    if !user.admin.protocols.get(p) {
        return ProtocolAccess::Denied(RefusalReason::DisabledForAccount(p));
    }
    if org.require_user_opt_in {
        let on = match p {
            Protocol::Pop3 => user.pop3.enabled,
            Protocol::Imap => user.imap.enabled,
            Protocol::Smtp => user.pop3.enabled || user.imap.enabled,
        };
        if !on {
            return ProtocolAccess::Denied(RefusalReason::NotEnabledByUser(p));
        }
    }
    ProtocolAccess::Allowed
}

fn min_opt<T: Ord + Copy>(org: T, user: Option<T>) -> T {
    user.map_or(org, |u| u.min(org))
}

/// Combines an organisation's and an account's settings into the rules in force.
///
/// Never fails: values that [`UserSettings::validate`] would reject are clamped to what
/// the organisation allows (limits take the lower value, "follow the client" becomes
/// "keep original" when the organisation forbids deletion, the INBOX is never hidden,
/// a retention of 0 days means none).
#[must_use]
pub fn resolve(org: &OrgSettings, user: &UserSettings) -> EffectivePolicy {
    EffectivePolicy {
        pop3_access: access(org, user, Protocol::Pop3),
        imap_access: access(org, user, Protocol::Imap),
        smtp_access: access(org, user, Protocol::Smtp),
        pop3: EffectivePop::from_settings(&user.pop3, org.allow_pop_delete),
        imap: EffectiveImap::from_settings(&user.imap),
        limits: EffectiveLimits {
            max_send_size: min_opt(org.limits.max_send_size, user.admin.max_send_size),
            max_receive_size: min_opt(org.limits.max_receive_size, user.admin.max_receive_size),
            max_imap_connections: min_opt(
                org.limits.max_imap_connections,
                user.admin.max_imap_connections,
            ),
        },
        smtp_allowed_sources: org.smtp_allowed_sources.clone(),
        plan: org.plan,
        filters: user.filters.clone(),
    }
}

impl EffectivePolicy {
    /// May the account use `protocol` (ACC-5)?
    ///
    /// # Errors
    /// A [`Refusal`] saying who turned it off: the organisation, an administrator for this
    /// account, or the user who has not turned it on.
    pub fn protocol_access(&self, protocol: Protocol) -> Result<(), Refusal> {
        let a = match protocol {
            Protocol::Pop3 => &self.pop3_access,
            Protocol::Imap => &self.imap_access,
            Protocol::Smtp => &self.smtp_access,
        };
        match a {
            ProtocolAccess::Allowed => Ok(()),
            ProtocolAccess::Denied(reason) => Err(Refusal::new(reason.clone())),
        }
    }

    /// May the user submit mail from `source` (ACC-6)? An empty allowlist allows any
    /// address. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as a dual-stack listener
    /// reports IPv4 peers) are matched as the IPv4 address.
    ///
    /// # Errors
    /// A [`Refusal`] with [`RefusalReason::SourceNotAllowed`] (`550 5.7.1`).
    pub fn check_smtp_source(&self, source: IpAddr) -> Result<(), Refusal> {
        let ip = source.to_canonical();
        if self.smtp_allowed_sources.is_empty()
            || self
                .smtp_allowed_sources
                .iter()
                .any(|net| net.contains(&ip))
        {
            Ok(())
        } else {
            Err(Refusal::new(RefusalReason::SourceNotAllowed(ip)))
        }
    }

    /// Is a message of `size` octets within the limit for `direction` (ACC-8)? The server
    /// checks the SMTP `SIZE=` parameter at MAIL FROM, then the real size after DATA/BDAT;
    /// for delivery to several local recipients, each recipient's own receive limit.
    ///
    /// # Errors
    /// A [`Refusal`] with [`RefusalReason::MessageTooLarge`] (`552 5.3.4`, `NO [TOOBIG]`).
    pub fn check_size(&self, direction: Direction, size: u64) -> Result<(), Refusal> {
        let limit = match direction {
            Direction::Send => self.limits.max_send_size,
            Direction::Receive => self.limits.max_receive_size,
        };
        if size > limit {
            Err(Refusal::new(RefusalReason::MessageTooLarge {
                direction,
                size,
                limit,
            }))
        } else {
            Ok(())
        }
    }

    /// Does the organisation's plan include `feature` (ACC-5)?
    ///
    /// # Errors
    /// A [`Refusal`] with [`RefusalReason::FeatureNotInPlan`].
    pub fn check_feature(&self, feature: PlanFeature) -> Result<(), Refusal> {
        self.plan.check(feature)
    }
}
