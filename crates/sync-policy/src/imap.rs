//! IMAP policies (IMAP-1, IMAP-3, IMAP-4, IMAP-6): special-use folders, per-user folder
//! visibility, the deletion mode and the INBOX-only consumer mode.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::facts::{FolderRole, MessageFacts, MessageKey, UnixTime};

/// When a message flagged `\Deleted` leaves the mailbox (IMAP-4).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionMode {
    /// Wait until the client expunges (EXPUNGE, UID EXPUNGE, CLOSE): standard IMAP. Default.
    #[default]
    WaitForClient,
    /// Expunge as soon as a client flags a message `\Deleted`, which is also what a client
    /// without MOVE does after copying a message elsewhere ("move" = COPY + `\Deleted`).
    ExpungeImmediately,
}

impl DeletionMode {
    /// The UIDs to expunge right after a STORE (or an APPEND with flags) set `\Deleted` on
    /// `newly_deleted` (only messages that did not have it before).
    ///
    /// The server expunges them in the store at once; the session that issued the STORE
    /// still reports the EXPUNGE responses only where RFC 9051 section 7.5.1 allows (not
    /// while answering a non-UID FETCH, STORE or SEARCH), like any expunge from another
    /// session: the policy decides what leaves the mailbox, the session view decides when
    /// the client hears of it.
    #[must_use]
    pub fn expunge_after_store(self, newly_deleted: &[u32]) -> Vec<u32> {
        match self {
            DeletionMode::WaitForClient => Vec::new(),
            DeletionMode::ExpungeImmediately => newly_deleted.to_vec(),
        }
    }
}

/// A mailbox consumer that reads the INBOX and deletes what it has fetched (IMAP-6), like
/// a shared-mailbox service that files incoming mail elsewhere.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum ConsumerMode {
    /// A normal IMAP account. Default.
    #[default]
    Off,
    /// Only the INBOX is visible; every message whose body was fetched is expunged when
    /// the session ends cleanly, read or unread.
    DeleteFetched,
    /// Only the INBOX is visible; a fetched message is expunged once it is `days` days
    /// old (receipt time), so other readers have that long to see it.
    DeleteFetchedAfterDays {
        /// Days after receipt.
        days: u32,
    },
}

impl ConsumerMode {
    /// Is this a consumer mode (INBOX only)?
    #[must_use]
    pub fn is_consumer(self) -> bool {
        !matches!(self, ConsumerMode::Off)
    }
}

/// A user's IMAP settings, stored per account.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImapSettings {
    /// The user turned IMAP access on for their own account (ACC-5). Default `false`, as in
    /// the seed services.
    pub enabled: bool,
    /// Folders the user hid from IMAP clients (IMAP-3), by full name. Hiding a folder also
    /// hides everything below it. New folders are visible until hidden. Default: none.
    pub hidden_folders: BTreeSet<String>,
    /// Deletion mode (IMAP-4). Default [`DeletionMode::WaitForClient`].
    pub deletion_mode: DeletionMode,
    /// Consumer mode (IMAP-6). Default [`ConsumerMode::Off`].
    pub consumer: ConsumerMode,
}

impl ImapSettings {
    /// Checks the settings: the INBOX cannot be hidden and hidden names must be usable
    /// folder names.
    ///
    /// # Errors
    /// [`PolicyError::InboxCannotBeHidden`], [`PolicyError::InvalidFolderName`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        for name in &self.hidden_folders {
            check_folder_name(name)?;
            if is_inbox(name) {
                return Err(PolicyError::InboxCannotBeHidden);
            }
        }
        Ok(())
    }
}

/// Longest folder name accepted in settings, in bytes.
pub const MAX_FOLDER_NAME_LEN: usize = 1024;

/// Checks that a folder name can be stored in settings: not empty, at most
/// [`MAX_FOLDER_NAME_LEN`] bytes, no control characters.
///
/// # Errors
/// [`PolicyError::InvalidFolderName`] saying what is wrong.
pub fn check_folder_name(name: &str) -> Result<(), PolicyError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_FOLDER_NAME_LEN {
        Some("it is longer than 1024 bytes")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PolicyError::InvalidFolderName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Is `name` the INBOX? The name INBOX is case-insensitive (RFC 9051 section 5.1).
#[must_use]
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// The IMAP rules in force for one account, after [`crate::resolve`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EffectiveImap {
    /// Hidden folders (never contains the INBOX).
    pub hidden_folders: BTreeSet<String>,
    /// Deletion mode.
    pub deletion_mode: DeletionMode,
    /// Consumer mode.
    pub consumer: ConsumerMode,
}

impl EffectiveImap {
    /// The rules that `settings` give.
    #[must_use]
    pub fn from_settings(settings: &ImapSettings) -> Self {
        EffectiveImap {
            hidden_folders: settings
                .hidden_folders
                .iter()
                .filter(|n| !is_inbox(n))
                .cloned()
                .collect(),
            deletion_mode: settings.deletion_mode,
            consumer: settings.consumer,
        }
    }

    /// Is the folder `name` visible to this account's IMAP clients (IMAP-3, IMAP-6)?
    ///
    /// `delimiter` is the server's hierarchy delimiter (`None` for a flat namespace): a
    /// hidden `Projects` also hides `Projects/2024`. The INBOX is always visible; in a
    /// consumer mode nothing else is.
    #[must_use]
    pub fn is_visible(&self, name: &str, delimiter: Option<char>) -> bool {
        if is_inbox(name) {
            return true;
        }
        if self.consumer.is_consumer() {
            return false;
        }
        !self.hidden_folders.iter().any(|hidden| {
            name == hidden
                || delimiter.is_some_and(|d| {
                    name.strip_prefix(hidden.as_str())
                        .is_some_and(|rest| rest.starts_with(d))
                })
        })
    }

    /// Checks that a command may use the folder `name` (IMAP-3). A hidden folder behaves
    /// exactly like one that does not exist, so a client cannot learn that it is there.
    ///
    /// A CREATE of a hidden name is not refused here: the folder exists, so the store's
    /// usual `NO [ALREADYEXISTS]` answers it; the user hid it and may unhide it.
    ///
    /// # Errors
    /// A [`MailboxRefusal`] for the tagged `NO [NONEXISTENT]`. COPY, MOVE and APPEND get
    /// no `[TRYCREATE]`: RFC 9051 asks for it only unless the server "is certain that the
    /// destination mailbox can not be created", and a hidden folder cannot be.
    pub fn check_mailbox(
        &self,
        name: &str,
        delimiter: Option<char>,
        op: MailboxOp,
    ) -> Result<(), MailboxRefusal> {
        if self.is_visible(name, delimiter) {
            Ok(())
        } else {
            Err(MailboxRefusal { op })
        }
    }

    /// Of the names a LIST/LSUB would return, the visible ones, in the same order.
    pub fn filter_list<'a, I>(&self, names: I, delimiter: Option<char>) -> Vec<&'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        names
            .into_iter()
            .filter(|n| self.is_visible(n, delimiter))
            .collect()
    }
}

/// What a command wants to do with a folder, for [`EffectiveImap::check_mailbox`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailboxOp {
    /// SELECT.
    Select,
    /// EXAMINE.
    Examine,
    /// STATUS.
    Status,
    /// APPEND target.
    Append,
    /// COPY target.
    CopyTarget,
    /// MOVE target.
    MoveTarget,
    /// SUBSCRIBE.
    Subscribe,
    /// RENAME source.
    Rename,
    /// DELETE.
    Delete,
}

/// A command refused because its folder is hidden (IMAP-3).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxRefusal {
    /// The refused operation.
    pub op: MailboxOp,
}

impl MailboxRefusal {
    /// The response code, `NONEXISTENT` (RFC 5530), for every operation.
    #[must_use]
    pub fn imap_code(&self) -> &'static str {
        "NONEXISTENT"
    }

    /// The human-readable text; the same as for a folder that does not exist.
    #[must_use]
    pub fn text(&self) -> &'static str {
        "No such mailbox"
    }

    /// The whole response after the tag, e.g. `NO [NONEXISTENT] No such mailbox`.
    #[must_use]
    pub fn render(&self) -> String {
        format!("NO [{}] {}", self.imap_code(), self.text())
    }
}

/// The folder names given to the special-use roles (IMAP-1), stored per organisation.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecialUseNames {
    /// `\Drafts`. Default `Drafts`.
    pub drafts: String,
    /// `\Sent`. Default `Sent`.
    pub sent: String,
    /// `\Junk`. Default `Junk`.
    pub junk: String,
    /// `\Trash`. Default `Trash`.
    pub trash: String,
    /// `\Archive`. Default `Archive`.
    pub archive: String,
}

impl Default for SpecialUseNames {
    fn default() -> Self {
        SpecialUseNames {
            drafts: "Drafts".into(),
            sent: "Sent".into(),
            junk: "Junk".into(),
            trash: "Trash".into(),
            archive: "Archive".into(),
        }
    }
}

impl SpecialUseNames {
    /// Checks that every name is a usable folder name, none is the INBOX, and no two
    /// roles share a name.
    ///
    /// # Errors
    /// [`PolicyError::InvalidFolderName`] or [`PolicyError::DuplicateSpecialUseName`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut seen = BTreeSet::new();
        for f in special_use_folders(self) {
            check_folder_name(&f.name)?;
            if is_inbox(&f.name) {
                return Err(PolicyError::InvalidFolderName {
                    name: f.name,
                    reason: "INBOX cannot have a special-use role",
                });
            }
            if !seen.insert(f.name.clone()) {
                return Err(PolicyError::DuplicateSpecialUseName { name: f.name });
            }
        }
        Ok(())
    }

    /// The name given to `role`; `INBOX` for the INBOX, `None` for [`FolderRole::Other`].
    #[must_use]
    pub fn name_of(&self, role: FolderRole) -> Option<&str> {
        match role {
            FolderRole::Inbox => Some("INBOX"),
            FolderRole::Drafts => Some(&self.drafts),
            FolderRole::Sent => Some(&self.sent),
            FolderRole::Junk => Some(&self.junk),
            FolderRole::Trash => Some(&self.trash),
            FolderRole::Archive => Some(&self.archive),
            FolderRole::Other => None,
        }
    }
}

impl SpecialUseNames {
    /// The role of the folder `name`: [`FolderRole::Inbox`] for any case of `INBOX`, the
    /// special-use role whose name it is, otherwise [`FolderRole::Other`]. With
    /// [`special_use_attribute`] this gives the attribute a LIST response carries.
    #[must_use]
    pub fn role_of(&self, name: &str) -> FolderRole {
        if is_inbox(name) {
            return FolderRole::Inbox;
        }
        special_use_folders(self)
            .into_iter()
            .find(|f| f.name == name)
            .map_or(FolderRole::Other, |f| f.role)
    }
}

/// The RFC 6154 special-use attribute of a role, e.g. `\Sent`; `None` for the INBOX and
/// user folders.
#[must_use]
pub fn special_use_attribute(role: FolderRole) -> Option<&'static str> {
    match role {
        FolderRole::Drafts => Some("\\Drafts"),
        FolderRole::Sent => Some("\\Sent"),
        FolderRole::Junk => Some("\\Junk"),
        FolderRole::Trash => Some("\\Trash"),
        FolderRole::Archive => Some("\\Archive"),
        FolderRole::Inbox | FolderRole::Other => None,
    }
}

/// A folder to create for every account and advertise with its special-use attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialUseFolder {
    /// Its role.
    pub role: FolderRole,
    /// Its name.
    pub name: String,
    /// Its RFC 6154 attribute for LIST, e.g. `\Sent`.
    pub attribute: &'static str,
}

/// The special-use folders (IMAP-1) in a fixed order: Drafts, Sent, Junk, Trash, Archive.
/// The server creates them for each new account and returns the attribute in LIST
/// responses (and for `LIST (SPECIAL-USE)`).
#[must_use]
pub fn special_use_folders(names: &SpecialUseNames) -> Vec<SpecialUseFolder> {
    [
        (FolderRole::Drafts, &names.drafts, "\\Drafts"),
        (FolderRole::Sent, &names.sent, "\\Sent"),
        (FolderRole::Junk, &names.junk, "\\Junk"),
        (FolderRole::Trash, &names.trash, "\\Trash"),
        (FolderRole::Archive, &names.archive, "\\Archive"),
    ]
    .into_iter()
    .map(|(role, name, attribute)| SpecialUseFolder {
        role,
        name: name.clone(),
        attribute,
    })
    .collect()
}

/// The INBOX messages a consumer session leaves behind for expunge (IMAP-6): those whose
/// body it fetched (`fetched`: UIDs of INBOX messages for which the session returned
/// `BODY[]`, `BODY.PEEK[]`, `BINARY[]` or `RFC822`), read or unread.
///
/// Call it when the session ends cleanly (CLOSE, UNSELECT, LOGOUT, or SELECT of the INBOX
/// again); a connection that drops deletes nothing, so a consumer that crashed before
/// storing a message gets it again. With [`ConsumerMode::DeleteFetchedAfterDays`] only
/// fetched messages at least that old are returned; the scheduler can call this again
/// later with the same ledger. Outside a consumer mode nothing is returned.
#[must_use]
pub fn consumer_expunge(
    inbox: &[MessageFacts],
    fetched: &BTreeSet<u32>,
    now: UnixTime,
    mode: ConsumerMode,
) -> Vec<MessageKey> {
    let old_enough = |m: &MessageFacts| match mode {
        ConsumerMode::Off => false,
        ConsumerMode::DeleteFetched => true,
        ConsumerMode::DeleteFetchedAfterDays { days } => m.received_at.plus_days(days) <= now,
    };
    inbox
        .iter()
        .filter(|m| {
            m.folder_role == FolderRole::Inbox && fetched.contains(&m.key.uid) && old_enough(m)
        })
        .map(|m| m.key)
        .collect()
}
