//! Input types the server fills from its store: what the policies need to know about a
//! message, a folder and the clock. Nothing here reads a store, a file or the system clock.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (UTC). Time always comes into this crate as an argument.
///
/// Negative values are allowed (messages with dates before 1970 exist in old archives).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// Seconds in one day, as used by every "N days after" rule in this crate.
    pub const DAY: i64 = 86_400;

    /// Converts a time the caller already has (e.g. a file's mtime or an INTERNALDATE)
    /// into whole seconds since the epoch, rounding down; reads no clock.
    #[must_use]
    pub fn from_system_time(t: std::time::SystemTime) -> UnixTime {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => UnixTime(i64::try_from(after.as_secs()).unwrap_or(i64::MAX)),
            Err(before) => {
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                // Round down: 1.5 s before the epoch is -2.
                UnixTime(if d.subsec_nanos() > 0 {
                    secs.saturating_add(1).saturating_neg()
                } else {
                    secs.saturating_neg()
                })
            }
        }
    }

    /// This moment plus `days` whole days, saturating instead of overflowing.
    #[must_use]
    pub fn plus_days(self, days: u32) -> UnixTime {
        UnixTime(
            self.0
                .saturating_add(i64::from(days).saturating_mul(Self::DAY)),
        )
    }
}

/// Identifies one message in the store: the mailbox it lives in and its IMAP UID there.
///
/// `mailbox` is the store's own stable mailbox id (not its name: names change on RENAME).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageKey {
    /// The store's stable id of the mailbox.
    pub mailbox: u64,
    /// The message's IMAP UID in that mailbox.
    pub uid: u32,
}

/// What a folder is for. The roles with a special-use attribute (RFC 6154) are advertised
/// to IMAP clients; POP3 serves [`FolderRole::Inbox`] only, unless settings include more.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderRole {
    /// The INBOX.
    Inbox,
    /// Drafts (`\Drafts`).
    Drafts,
    /// Sent mail (`\Sent`).
    Sent,
    /// Spam (`\Junk`).
    Junk,
    /// Deleted mail (`\Trash`).
    Trash,
    /// Archive (`\Archive`).
    Archive,
    /// Any user-created folder.
    Other,
}

/// Where a message came from.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    /// Delivered by SMTP, or saved by a client (APPEND), on this server.
    Delivered,
    /// Fetched from another service by an import (POP3 import, IMAP migration, .eml upload).
    Imported {
        /// A label naming the source, e.g. the external account's address.
        source: String,
    },
}

/// The facts about one message that the POP3 and IMAP policies need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFacts {
    /// Which message this is.
    pub key: MessageKey,
    /// UIDVALIDITY of the message's mailbox (used to derive a stable POP3 UIDL).
    pub uidvalidity: u32,
    /// When this server received (or imported) it: the IMAP INTERNALDATE.
    pub received_at: UnixTime,
    /// The role of the folder the message is in.
    pub folder_role: FolderRole,
    /// Delivered here or imported from elsewhere.
    pub origin: Origin,
    /// Size in octets as POP3 LIST and IMAP RFC822.SIZE report it.
    pub size: u64,
    /// Has the `\Seen` flag.
    pub seen: bool,
    /// Has the `\Deleted` flag (waiting for an expunge).
    pub deleted: bool,
    /// A POP3 session already DELEted it while the keep-original policy was in force: it
    /// stays in the mailbox for IMAP and webmail, but POP3 never shows it again (POP-2).
    pub pop_hidden: bool,
    /// A UIDL to keep using, e.g. one preserved by an import so that leave-on-server POP3
    /// clients do not download everything again. `None`: derive one from the key.
    pub uidl: Option<String>,
}

impl MessageFacts {
    /// Facts for a message delivered to the INBOX: not seen, not deleted, not hidden, no
    /// stored UIDL. Convenient for tests and examples; change the fields as needed.
    #[must_use]
    pub fn inbox(mailbox: u64, uid: u32, received_at: UnixTime, size: u64) -> Self {
        MessageFacts {
            key: MessageKey { mailbox, uid },
            uidvalidity: 1,
            received_at,
            folder_role: FolderRole::Inbox,
            origin: Origin::Delivered,
            size,
            seen: false,
            deleted: false,
            pop_hidden: false,
            uidl: None,
        }
    }

    /// Is this message imported from another service?
    #[must_use]
    pub fn is_imported(&self) -> bool {
        matches!(self.origin, Origin::Imported { .. })
    }
}
