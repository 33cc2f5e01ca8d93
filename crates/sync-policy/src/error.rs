//! The crate's one error type: why a settings value cannot be stored.
//!
//! Refusals of a client action (a login, a mailbox, a message size) are not errors of this
//! crate but answers: see [`crate::access::Refusal`] and [`crate::imap::MailboxRefusal`].

/// A settings value that is invalid or not allowed by the organisation's settings.
///
/// Returned by the `validate` functions, which the server calls before it stores settings;
/// [`crate::resolve`] never fails, so a stored blob that predates a rule never locks anyone out.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The INBOX is always visible over IMAP.
    #[error("the INBOX cannot be hidden from IMAP clients; remove it from the hidden folders")]
    InboxCannotBeHidden,

    /// A folder name is empty, too long or contains control characters.
    #[error("folder name {name:?} is not usable: {reason}")]
    InvalidFolderName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Two special-use roles were given the same folder name.
    #[error(
        "folder name {name:?} is used for more than one special-use role; give each role its own folder"
    )]
    DuplicateSpecialUseName {
        /// The name used twice.
        name: String,
    },

    /// A limit set to zero would refuse everything.
    #[error("{what} must be at least 1")]
    ZeroLimit {
        /// Which setting.
        what: &'static str,
    },

    /// A per-user limit is above what the organisation allows.
    #[error(
        "{what} for this user ({user}) is above the organisation's limit ({org}); use at most {org}"
    )]
    UserLimitAboveOrg {
        /// Which setting.
        what: &'static str,
        /// The user's value.
        user: u64,
        /// The organisation's value.
        org: u64,
    },

    /// The user asked for server-side deletion on POP3 DELE but the organisation forbids it.
    #[error(
        "the organisation keeps the original of mail downloaded over POP3; choose \"keep original\""
    )]
    PopDeleteNotAllowed,

    /// A filter rule is unusable.
    #[error("filter rule {index} ({name:?}): {reason}")]
    InvalidFilterRule {
        /// Position of the rule in the list, from 0.
        index: usize,
        /// The rule's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// External import settings are incomplete or invalid.
    #[error("external account: {reason}")]
    InvalidImport {
        /// What is wrong, and what to do.
        reason: String,
    },

    /// More filter rules than the limit.
    #[error("{count} filter rules given; at most {max} are allowed")]
    TooManyFilterRules {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
}
