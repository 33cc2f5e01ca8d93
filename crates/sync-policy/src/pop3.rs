//! The POP3 view of a mailbox (POP-1 .. POP-7): which messages a POP3 session shows, what
//! its QUIT does to them, and which messages server-side retention deletes.
//!
//! The server builds a [`Pop3View`] when a session enters the TRANSACTION state, maps POP3
//! message numbers to [`MessageKey`]s through it, remembers which messages the session
//! RETRieved and DELEted, and on QUIT applies the [`QuitPlan`] that [`quit_plan`] computes.
//! A session that ends without QUIT (a dropped connection, an autologout) changes nothing,
//! as RFC 1939 section 6 requires.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::facts::{FolderRole, MessageFacts, MessageKey, UnixTime};

/// Which mail a POP3 client may download (POP-1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum PopScope {
    /// All mail, including mail received before POP3 was turned on.
    #[default]
    All,
    /// Only mail received from the moment the user turned POP3 on
    /// ([`Pop3Settings::enabled_at`]).
    FromEnabled,
    /// Only mail received at or after a given moment.
    Since {
        /// The first moment whose mail is shown.
        since: UnixTime,
    },
}

/// What a client's DELE followed by QUIT does on the server (POP-2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PopDeletePolicy {
    /// Keep the original whatever the client does: a DELE only hides the message from
    /// later POP3 sessions; IMAP and webmail still show it. The seed services' default.
    #[default]
    KeepOriginal,
    /// Follow the client: DELE then QUIT expunges the message from the mailbox.
    FollowClient,
}

/// A user's POP3 settings, stored per account.
///
/// Defaults follow the seed services: POP3 off until the user turns it on, all mail in
/// scope, originals kept, INBOX only. Where the seed pages do not state a default
/// (mark-as-read, imported mail) the choice is documented on the field.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pop3Settings {
    /// The user turned POP3 access on for their own account (ACC-5). Default `false`: the
    /// seed services require the user to enable it before a client can log in.
    pub enabled: bool,
    /// When the user turned POP3 on; [`PopScope::FromEnabled`] starts here. Set by
    /// [`Pop3Settings::enable`].
    pub enabled_at: Option<UnixTime>,
    /// Which mail is downloaded (POP-1). Default [`PopScope::All`].
    pub scope: PopScope,
    /// What DELE + QUIT does (POP-2). Default [`PopDeletePolicy::KeepOriginal`].
    pub on_delete: PopDeletePolicy,
    /// Mail retrieved with RETR gets `\Seen` (POP-3). Default `true`: a message the user
    /// downloaded is shown as read in webmail. TOP never marks anything.
    pub mark_seen_on_retr: bool,
    /// Include imported (external) mail (POP-4). Default `false`: the user's client usually
    /// reads the external account itself, and including it would download it twice.
    pub include_imported: bool,
    /// Include the Junk folder (POP-5). Default `false`.
    pub include_junk: bool,
    /// Delete mail from the server this many days after it was received (POP-7).
    /// Default `None`: never.
    pub retention_days: Option<u32>,
}

impl Default for Pop3Settings {
    fn default() -> Self {
        Pop3Settings {
            enabled: false,
            enabled_at: None,
            scope: PopScope::All,
            on_delete: PopDeletePolicy::KeepOriginal,
            mark_seen_on_retr: true,
            include_imported: false,
            include_junk: false,
            retention_days: None,
        }
    }
}

impl Pop3Settings {
    /// Turns POP3 on at `now`. The first time it is turned on, `enabled_at` records `now`
    /// so that [`PopScope::FromEnabled`] has its starting point; turning it off and on
    /// again keeps the first moment, so no mail is shown twice or lost.
    pub fn enable(&mut self, now: UnixTime) {
        self.enabled = true;
        if self.enabled_at.is_none() {
            self.enabled_at = Some(now);
        }
    }
}

/// The POP3 rules in force for one account, after organisation and user settings are
/// combined by [`crate::resolve`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePop {
    /// Messages received before this moment are not shown. `None`: all mail.
    pub since: Option<UnixTime>,
    /// DELE + QUIT expunges (true) or only hides from POP3 (false).
    pub expunge_on_delete: bool,
    /// RETR marks `\Seen`.
    pub mark_seen_on_retr: bool,
    /// Imported mail is shown.
    pub include_imported: bool,
    /// The Junk folder is shown.
    pub include_junk: bool,
    /// Retention in days, if any.
    pub retention_days: Option<u32>,
}

impl Default for EffectivePop {
    fn default() -> Self {
        EffectivePop::from_settings(&Pop3Settings::default(), true)
    }
}

impl EffectivePop {
    /// The rules that `settings` give when the organisation does (`org_allows_delete`) or
    /// does not allow POP3 clients to delete mail on the server.
    #[must_use]
    pub fn from_settings(settings: &Pop3Settings, org_allows_delete: bool) -> Self {
        let since = match settings.scope {
            PopScope::All => None,
            // Not enabled yet: nothing has arrived "since enabling", so nothing is shown.
            PopScope::FromEnabled => Some(settings.enabled_at.unwrap_or(UnixTime(i64::MAX))),
            PopScope::Since { since } => Some(since),
        };
        EffectivePop {
            since,
            expunge_on_delete: org_allows_delete
                && settings.on_delete == PopDeletePolicy::FollowClient,
            mark_seen_on_retr: settings.mark_seen_on_retr,
            include_imported: settings.include_imported,
            include_junk: settings.include_junk,
            retention_days: settings.retention_days.filter(|d| *d > 0),
        }
    }

    /// Is the message one POP3 serves at all (folder, origin and scope; POP-1, 4, 5, 6)?
    /// Hidden and `\Deleted` messages are eligible but not shown; see [`pop3_view`].
    ///
    /// POP3 has no folders (POP-6): it serves the INBOX, plus the Junk folder when
    /// `include_junk` is set, plus imported mail filed into a user folder when
    /// `include_imported` is set. Sent, Drafts, Trash and Archive are never served.
    #[must_use]
    pub fn is_eligible(&self, m: &MessageFacts) -> bool {
        let folder_ok = match m.folder_role {
            FolderRole::Inbox => true,
            FolderRole::Junk => self.include_junk,
            FolderRole::Other => self.include_imported && m.is_imported(),
            _ => false,
        };
        let origin_ok = !m.is_imported() || self.include_imported;
        let scope_ok = self.since.is_none_or(|since| m.received_at >= since);
        folder_ok && origin_ok && scope_ok
    }
}

/// One message as a POP3 session shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Entry {
    /// The message in the store.
    pub key: MessageKey,
    /// Octets, for STAT and LIST.
    pub size: u64,
    /// The unique-id for UIDL: 1 to 70 characters in 0x21..=0x7E, unique in the view.
    pub uidl: String,
    /// It already has `\Seen` (so QUIT need not set it again).
    pub seen: bool,
}

/// The maildrop of one POP3 session: the messages in message-number order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pop3View {
    /// Entry `i` is message number `i + 1`.
    pub entries: Vec<Pop3Entry>,
}

impl Pop3View {
    /// The entry of POP3 message number `msgno` (counted from 1).
    #[must_use]
    pub fn get(&self, msgno: usize) -> Option<&Pop3Entry> {
        self.entries.get(msgno.checked_sub(1)?)
    }

    /// Number of messages, for STAT.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No messages.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total octets, for STAT.
    #[must_use]
    pub fn total_size(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |acc, e| acc.saturating_add(e.size))
    }

    /// Is `key` one of the messages shown?
    #[must_use]
    pub fn contains(&self, key: &MessageKey) -> bool {
        self.entries.iter().any(|e| e.key == *key)
    }
}

/// Longest unique-id RFC 1939 allows.
const MAX_UIDL_LEN: usize = 70;

fn uidl_is_valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_UIDL_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The UIDL derived from a message's place in the store: stable for as long as the
/// mailbox keeps its UIDVALIDITY, unique across mailboxes, at most 34 characters.
#[must_use]
pub fn derived_uidl(m: &MessageFacts) -> String {
    format!("{:x}.{:x}.{:x}", m.key.mailbox, m.uidvalidity, m.key.uid)
}

/// Computes the messages a POP3 session shows (POP-1, 2, 4, 5, 6).
///
/// A message is shown when it is eligible ([`EffectivePop::is_eligible`]), not hidden by
/// an earlier DELE under the keep-original policy, and not flagged `\Deleted` (it waits
/// for an IMAP expunge). Messages are ordered by receipt time, then by mailbox and UID,
/// so message numbers follow arrival order.
///
/// UIDLs: a stored UIDL (e.g. preserved by an import) is used when it is valid for RFC 1939
/// and not already taken in this view; otherwise the [`derived_uidl`], with a `~N` suffix
/// in the unlikely case that it collides with a stored one. The result is always unique.
#[must_use]
pub fn pop3_view(messages: &[MessageFacts], policy: &EffectivePop) -> Pop3View {
    let mut shown: Vec<&MessageFacts> = messages
        .iter()
        .filter(|m| policy.is_eligible(m) && !m.pop_hidden && !m.deleted)
        .collect();
    shown.sort_by_key(|m| (m.received_at, m.key));

    let mut used: HashSet<String> = HashSet::with_capacity(shown.len());
    // Stored UIDLs first claim their ids, so that a derived id never steals one that a
    // client already knows.
    let stored_ok: Vec<bool> = shown
        .iter()
        .map(|m| match &m.uidl {
            Some(u) if uidl_is_valid(u) => used.insert(u.clone()),
            _ => false,
        })
        .collect();

    let entries = shown
        .iter()
        .zip(stored_ok)
        .map(|(m, ok)| {
            let uidl = match (&m.uidl, ok) {
                (Some(u), true) => u.clone(),
                _ => {
                    let base = derived_uidl(m);
                    let mut candidate = base.clone();
                    let mut n = 1u32;
                    while used.contains(&candidate) {
                        candidate = format!("{base}~{n}");
                        n = n.saturating_add(1);
                    }
                    used.insert(candidate.clone());
                    candidate
                }
            };
            Pop3Entry {
                key: m.key,
                size: m.size,
                uidl,
                seen: m.seen,
            }
        })
        .collect();
    Pop3View { entries }
}

/// What the server does when a POP3 session QUITs (RFC 1939 UPDATE state).
#[must_use = "the plan must be applied to the store before +OK is sent to QUIT"]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuitPlan {
    /// Expunge these from the mailbox (follow-client policy).
    pub expunge: Vec<MessageKey>,
    /// Keep these, but record that POP3 must not show them again (keep-original policy).
    pub hide_from_pop: Vec<MessageKey>,
    /// Set `\Seen` on these (mark-as-read policy). Never contains an expunged message.
    pub mark_seen: Vec<MessageKey>,
}

impl QuitPlan {
    /// Nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.expunge.is_empty() && self.hide_from_pop.is_empty() && self.mark_seen.is_empty()
    }
}

/// Computes what QUIT does with the messages the session DELEted and RETRieved
/// (POP-2, POP-3). Keys that are not in `view` are ignored.
///
/// The server applies the plan durably before answering `+OK` to QUIT.
pub fn quit_plan(
    view: &Pop3View,
    deleted: &BTreeSet<MessageKey>,
    retrieved: &BTreeSet<MessageKey>,
    policy: &EffectivePop,
) -> QuitPlan {
    let mut plan = QuitPlan::default();
    for e in &view.entries {
        let is_deleted = deleted.contains(&e.key);
        if is_deleted {
            if policy.expunge_on_delete {
                plan.expunge.push(e.key);
                continue;
            }
            plan.hide_from_pop.push(e.key);
        }
        if policy.mark_seen_on_retr && !e.seen && retrieved.contains(&e.key) {
            plan.mark_seen.push(e.key);
        }
    }
    plan
}

/// The messages that server-side retention deletes now (POP-7): those POP3 serves (by
/// folder, origin and scope, including ones a client already DELEted under the
/// keep-original policy) received at least `retention_days` whole days before `now`.
///
/// The server's scheduler calls this, e.g. once an hour, and expunges the result. No
/// retention configured: nothing is due. Mail outside POP3's reach (Sent, Trash, user
/// folders, mail older than the POP scope) is never touched.
#[must_use]
pub fn retention_due(
    messages: &[MessageFacts],
    now: UnixTime,
    policy: &EffectivePop,
) -> Vec<MessageKey> {
    let Some(days) = policy.retention_days else {
        return Vec::new();
    };
    messages
        .iter()
        .filter(|m| policy.is_eligible(m) && m.received_at.plus_days(days) <= now)
        .map(|m| m.key)
        .collect()
}
