//! Plain data types of the store API.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Identifies an account. Stable for the life of the account, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u64);

/// Identifies a mailbox. Stable across renames, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub u64);

/// A mailbox of an account: every message operation names both, and the store checks that
/// the mailbox belongs to the account, so one account can never reach another's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxRef {
    /// The owning account.
    pub account: AccountId,
    /// The mailbox.
    pub mailbox: MailboxId,
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account #{}", self.0)
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mailbox #{}", self.0)
    }
}

/// Seconds since the Unix epoch (UTC). Used for internal dates, received times and
/// app-password timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time of the system clock.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts from a [`SystemTime`] (sub-second part dropped).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Converts to a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(self.0.unsigned_abs())
        }
    }
}

/// The IMAP system flags, as a bit set (`\Recent` is session state, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemFlags(u8);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`
    pub const DRAFT: SystemFlags = SystemFlags(16);
    const ALL: u8 = 31;

    /// No flag set.
    pub const fn empty() -> Self {
        SystemFlags(0)
    }
    /// The raw bits (bit 0 `\Seen` .. bit 4 `\Draft`).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// From raw bits; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        SystemFlags(bits & Self::ALL)
    }
    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub const fn union(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 | other.0)
    }
    /// `self` without the flags of `other`.
    pub const fn difference(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 & !other.0)
    }
    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The IMAP names of the flags set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::SEEN, "\\Seen"),
            (Self::ANSWERED, "\\Answered"),
            (Self::FLAGGED, "\\Flagged"),
            (Self::DELETED, "\\Deleted"),
            (Self::DRAFT, "\\Draft"),
        ]
        .into_iter()
        .filter(move |(f, _)| self.contains(*f))
        .map(|(_, n)| n)
    }
    /// Parses one IMAP system flag name (case-insensitive), e.g. `\Seen`.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "\\seen" => Self::SEEN,
            "\\answered" => Self::ANSWERED,
            "\\flagged" => Self::FLAGGED,
            "\\deleted" => Self::DELETED,
            "\\draft" => Self::DRAFT,
            _ => return None,
        })
    }
}

/// The flags of a message: system flags and keywords.
///
/// Keywords are IMAP atoms (`$Forwarded`, `Work`); they are compared case-insensitively
/// and kept sorted, so two `Flags` with the same content compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// `\Seen`, `\Answered`, ...
    pub system: SystemFlags,
    keywords: Vec<String>,
}

impl Flags {
    /// No flags.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only system flags.
    pub fn system(system: SystemFlags) -> Self {
        Flags {
            system,
            keywords: Vec::new(),
        }
    }
    /// Adds a keyword (deduplicated case-insensitively; validity is checked by the store).
    pub fn with_keyword(mut self, kw: impl Into<String>) -> Self {
        self.insert_keyword(kw.into());
        self
    }
    /// Adds a keyword.
    pub fn insert_keyword(&mut self, kw: String) {
        if !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(&kw)) {
            self.keywords.push(kw);
            self.keywords.sort_by_key(|a| a.to_ascii_lowercase());
        }
    }
    /// Removes a keyword (case-insensitive).
    pub fn remove_keyword(&mut self, kw: &str) {
        self.keywords.retain(|k| !k.eq_ignore_ascii_case(kw));
    }
    /// True if the keyword is set (case-insensitive).
    pub fn has_keyword(&self, kw: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(kw))
    }
    /// The keywords, sorted case-insensitively.
    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }
    /// Parses a list of IMAP flag names: system flags by name, everything else a keyword.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut f = Flags::new();
        for n in names {
            match SystemFlags::from_name(n) {
                Some(s) => f.system = f.system.union(s),
                None => f.insert_keyword(n.to_string()),
            }
        }
        f
    }
    /// All flag names, system flags first.
    pub fn names(&self) -> Vec<String> {
        self.system
            .names()
            .map(str::to_string)
            .chain(self.keywords.iter().cloned())
            .collect()
    }
}

/// How [`crate::MailStore::store_flags`] combines the given flags with the current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
    /// `FLAGS`
    Replace,
}

/// A set of UIDs as sorted, non-overlapping, inclusive ranges.
///
/// IMAP's `*` is resolved by the caller (e.g. with `UIDNEXT - 1`); [`UidSet::all`] covers
/// every possible UID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Every UID (1:4294967295).
    pub fn all() -> Self {
        UidSet {
            ranges: vec![(1, u32::MAX)],
        }
    }
    /// One UID.
    pub fn single(uid: u32) -> Self {
        let mut s = Self::new();
        s.insert_range(uid, uid);
        s
    }
    /// An inclusive range (given in either order).
    pub fn range(a: u32, b: u32) -> Self {
        let mut s = Self::new();
        s.insert_range(a, b);
        s
    }
    /// Adds an inclusive range (given in either order), merging as needed. UID 0 is ignored.
    pub fn insert_range(&mut self, a: u32, b: u32) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let lo = lo.max(1);
        if hi == 0 {
            return;
        }
        self.ranges.push((lo, hi));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(l, h) in &self.ranges {
            match merged.last_mut() {
                Some(last) if l <= last.1.saturating_add(1) => last.1 = last.1.max(h),
                _ => merged.push((l, h)),
            }
        }
        self.ranges = merged;
    }
    /// Adds one UID.
    pub fn insert(&mut self, uid: u32) {
        self.insert_range(uid, uid);
    }
    /// True if `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        let idx = self.ranges.partition_point(|&(_, h)| h < uid);
        self.ranges.get(idx).is_some_and(|&(l, _)| l <= uid)
    }
    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        let mut v: Vec<u32> = iter.into_iter().filter(|&u| u != 0).collect();
        v.sort_unstable();
        v.dedup();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for u in v {
            match ranges.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
                _ => ranges.push((u, u)),
            }
        }
        UidSet { ranges }
    }
}

/// RFC 6154 special-use attributes the store knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpecialUse {
    /// `\Sent`
    Sent,
    /// `\Drafts`
    Drafts,
    /// `\Junk`
    Junk,
    /// `\Trash`
    Trash,
    /// `\Archive`
    Archive,
    /// `\All`
    All,
    /// `\Flagged`
    Flagged,
}

impl SpecialUse {
    /// The IMAP attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::All => "\\All",
            SpecialUse::Flagged => "\\Flagged",
        }
    }
    /// Parses an attribute name (case-insensitive).
    pub fn from_attribute(s: &str) -> Option<Self> {
        [
            SpecialUse::Sent,
            SpecialUse::Drafts,
            SpecialUse::Junk,
            SpecialUse::Trash,
            SpecialUse::Archive,
            SpecialUse::All,
            SpecialUse::Flagged,
        ]
        .into_iter()
        .find(|u| u.attribute().eq_ignore_ascii_case(s))
    }
    pub(crate) fn code(self) -> u8 {
        match self {
            SpecialUse::Sent => 1,
            SpecialUse::Drafts => 2,
            SpecialUse::Junk => 3,
            SpecialUse::Trash => 4,
            SpecialUse::Archive => 5,
            SpecialUse::All => 6,
            SpecialUse::Flagged => 7,
        }
    }
    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => SpecialUse::Sent,
            2 => SpecialUse::Drafts,
            3 => SpecialUse::Junk,
            4 => SpecialUse::Trash,
            5 => SpecialUse::Archive,
            6 => SpecialUse::All,
            7 => SpecialUse::Flagged,
            _ => return None,
        })
    }
}

/// Which protocols an account may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolAccess {
    /// POP3 allowed.
    pub pop3: bool,
    /// IMAP allowed.
    pub imap: bool,
    /// SMTP submission allowed.
    pub smtp: bool,
}

impl Default for ProtocolAccess {
    /// All three allowed.
    fn default() -> Self {
        ProtocolAccess {
            pop3: true,
            imap: true,
            smtp: true,
        }
    }
}

/// A protocol, for [`AccountInfo::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// POP3
    Pop3,
    /// IMAP
    Imap,
    /// SMTP (submission)
    Smtp,
}

/// Per-account quota; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Quota {
    /// Maximum total size of all messages, in bytes.
    pub max_bytes: Option<u64>,
    /// Maximum number of messages.
    pub max_messages: Option<u64>,
}

/// Current usage against the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Bytes used by all messages of the account.
    pub bytes: u64,
    /// Number of messages of the account.
    pub messages: u64,
    /// The limits.
    pub quota: Quota,
}

/// What a caller gives to create an account.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewAccount {
    /// The login: the full address. The domain is lower-cased; the local part is kept.
    pub address: String,
    /// Initial password (`None`: no password login until one is set).
    pub password: Option<String>,
    /// Protocols allowed.
    pub access: ProtocolAccess,
    /// Quota.
    pub quota: Quota,
    /// Create INBOX, Sent, Drafts, Junk, Trash and Archive (with special-use). Default true.
    pub default_mailboxes: bool,
}

impl NewAccount {
    /// An account with this address and password, all protocols, no quota, default mailboxes.
    pub fn new(address: impl Into<String>, password: Option<&str>) -> Self {
        NewAccount {
            address: address.into(),
            password: password.map(str::to_string),
            access: ProtocolAccess::default(),
            quota: Quota::default(),
            default_mailboxes: true,
        }
    }
}

/// An account as the store reports it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountInfo {
    /// Id.
    pub id: AccountId,
    /// The login address (domain lower-cased).
    pub address: String,
    /// Aliases that also log in / receive to this account.
    pub aliases: Vec<String>,
    /// Protocols allowed.
    pub access: ProtocolAccess,
    /// Quota.
    pub quota: Quota,
    /// True if a password is set.
    pub has_password: bool,
    /// True if a plaintext-equivalent secret (APOP / CRAM-MD5) is stored.
    pub has_plaintext_secret: bool,
}

impl AccountInfo {
    /// True if the account may use `p`.
    pub fn allows(&self, p: Protocol) -> bool {
        match p {
            Protocol::Pop3 => self.access.pop3,
            Protocol::Imap => self.access.imap,
            Protocol::Smtp => self.access.smtp,
        }
    }
}

/// An app password as listed (the secret itself is shown only once, at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppPasswordInfo {
    /// The name given at creation.
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// When it was last used for a successful login.
    pub last_used: Option<Timestamp>,
}

/// How a login was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginVia {
    /// The account password.
    Password,
    /// The app password of this name.
    AppPassword(String),
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct AuthOutcome {
    /// The account (check [`AccountInfo::allows`] for the protocol).
    pub account: AccountInfo,
    /// What matched.
    pub via: LoginVia,
}

/// A plaintext-equivalent secret (for APOP / CRAM-MD5). Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextSecret(pub String);

impl fmt::Debug for PlaintextSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextSecret(<redacted>)")
    }
}

/// Where the settings blob lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SettingsScope {
    /// Per account.
    Account(AccountId),
    /// Per organisation / domain (lower-cased by the store).
    Domain(String),
}

/// Options for [`crate::MailStore::create_mailbox`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateMailbox {
    /// RFC 6154 special use.
    pub special_use: Option<SpecialUse>,
    /// Force this UIDVALIDITY (importers preserving UIDs); otherwise the store picks one.
    pub uidvalidity: Option<u32>,
    /// Subscribe at once (default false).
    pub subscribe: bool,
}

/// A mailbox and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxInfo {
    /// Which mailbox.
    pub mailbox: MailboxRef,
    /// Full name with `/` as delimiter; `INBOX` is always upper case.
    pub name: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT (greater than every UID ever assigned in this mailbox).
    pub uidnext: u32,
    /// HIGHESTMODSEQ (RFC 7162); starts at 1 for a new mailbox.
    pub highest_modseq: u64,
    /// Number of messages.
    pub messages: u32,
    /// Number of messages without `\Seen`.
    pub unseen: u32,
    /// Total size of the messages.
    pub size: u64,
    /// Special use.
    pub special_use: Option<SpecialUse>,
    /// Subscribed.
    pub subscribed: bool,
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Origin {
    /// Delivered by SMTP, saved by a client (APPEND) or otherwise arrived normally.
    #[default]
    Delivered,
    /// Imported by a migration / import tool; the label names the source.
    Imported(String),
}

/// Options for an append.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AppendOptions {
    /// Initial flags.
    pub flags: Flags,
    /// INTERNALDATE; default: now.
    pub internal_date: Option<Timestamp>,
    /// Received timestamp; default: now.
    pub received: Option<Timestamp>,
    /// Origin; default [`Origin::Delivered`].
    pub origin: Origin,
    /// POP3 UIDL to keep (importers); default derived from UIDVALIDITY and UID.
    pub uidl: Option<String>,
    /// Force this UID (importers preserving UIDs); must be >= UIDNEXT.
    pub uid: Option<u32>,
}

impl AppendOptions {
    /// Options with these flags.
    pub fn with_flags(flags: Flags) -> Self {
        AppendOptions {
            flags,
            ..Default::default()
        }
    }
    /// Sets the flags.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }
    /// Sets INTERNALDATE.
    pub fn internal_date(mut self, t: Timestamp) -> Self {
        self.internal_date = Some(t);
        self
    }
    /// Sets the received time.
    pub fn received(mut self, t: Timestamp) -> Self {
        self.received = Some(t);
        self
    }
    /// Sets the origin.
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
    /// Keeps this POP3 UIDL.
    pub fn uidl(mut self, uidl: impl Into<String>) -> Self {
        self.uidl = Some(uidl.into());
        self
    }
    /// Forces this UID.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
}

impl CreateMailbox {
    /// Sets the special use.
    pub fn special_use(mut self, su: SpecialUse) -> Self {
        self.special_use = Some(su);
        self
    }
    /// Forces the UIDVALIDITY.
    pub fn uidvalidity(mut self, v: u32) -> Self {
        self.uidvalidity = Some(v);
        self
    }
    /// Subscribes the new mailbox.
    pub fn subscribed(mut self) -> Self {
        self.subscribe = true;
        self
    }
}

/// Result of a committed append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// UIDVALIDITY of the mailbox (for APPENDUID).
    pub uidvalidity: u32,
    /// The UID assigned.
    pub uid: u32,
    /// The message's MODSEQ.
    pub modseq: u64,
    /// Size in bytes.
    pub size: u64,
}

/// UID, MODSEQ and flags of one message (what SELECT and FETCH FLAGS need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    /// UID.
    pub uid: u32,
    /// MODSEQ of the last change.
    pub modseq: u64,
    /// Flags.
    pub flags: Flags,
}

/// Everything the store keeps about a message besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// MODSEQ.
    pub modseq: u64,
    /// Flags.
    pub flags: Flags,
    /// Size in bytes (RFC822.SIZE).
    pub size: u64,
    /// INTERNALDATE.
    pub internal_date: Timestamp,
    /// When the message arrived in this store.
    pub received: Timestamp,
    /// Delivered or imported.
    pub origin: Origin,
    /// POP3 UIDL: stable and unique in the mailbox.
    pub uidl: String,
    /// The Message-ID header (without angle brackets' surrounding whitespace), if found.
    pub message_id: Option<String>,
    /// SHA-256 of the message bytes.
    pub digest: Option<[u8; 32]>,
}

/// The state of a mailbox at one instant: its counters and every message's flags, in UID
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxSnapshot {
    /// Counters.
    pub info: MailboxInfo,
    /// Every message, ascending UID.
    pub messages: Vec<MessageFlags>,
}

/// Result of [`crate::MailStore::store_flags`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreFlagsOutcome {
    /// Messages whose flags are now as requested (changed or not), with their MODSEQ.
    pub updated: Vec<MessageFlags>,
    /// UIDs that failed the UNCHANGEDSINCE test (RFC 7162 `MODIFIED`).
    pub modified: Vec<u32>,
}

/// A source UID and the UID of its copy (for COPYUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidMapping {
    /// UID in the source mailbox.
    pub from: u32,
    /// UID in the destination mailbox.
    pub to: u32,
}

/// Result of a copy or move.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyOutcome {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// Pairs, in source UID order.
    pub mapping: Vec<UidMapping>,
}

/// Changes after a MODSEQ (CONDSTORE/QRESYNC).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changes {
    /// Messages whose MODSEQ is greater, ascending UID.
    pub changed: Vec<MessageFlags>,
    /// UIDs expunged after that MODSEQ, ascending.
    pub vanished: Vec<u32>,
    /// The mailbox's HIGHESTMODSEQ now.
    pub highest_modseq: u64,
    /// False when tombstones newer than the asked MODSEQ were purged
    /// ([`crate::MailStore::purge_tombstones`]): `vanished` may then miss UIDs, and the
    /// caller must compare UID lists instead (QRESYNC: treat as a full resync).
    pub vanished_complete: bool,
}

/// One event of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ChangeEvent {
    /// A message arrived.
    New {
        /// UID.
        uid: u32,
        /// MODSEQ.
        modseq: u64,
    },
    /// Messages were expunged (ascending UIDs).
    Expunged {
        /// UIDs.
        uids: Vec<u32>,
        /// MODSEQ of the expunge.
        modseq: u64,
    },
    /// Flags of a message changed.
    FlagsChanged {
        /// UID.
        uid: u32,
        /// New flags.
        flags: Flags,
        /// New MODSEQ.
        modseq: u64,
    },
    /// The subscriber fell behind and missed events: re-read the mailbox
    /// (e.g. [`crate::MailStore::changes_since`] from the last MODSEQ it knows).
    Resync,
    /// The mailbox was deleted or renamed away from this account; stop using it.
    MailboxGone,
}

/// Limits with their defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message accepted; default 50 MiB.
    pub max_message_size: u64,
    /// Longest mailbox name in bytes; default 1000.
    pub max_mailbox_name: usize,
    /// Most levels in a mailbox name; default 32.
    pub max_mailbox_depth: usize,
    /// Most mailboxes per account; default 10 000.
    pub max_mailboxes: usize,
    /// Longest keyword; default 128 bytes.
    pub max_keyword_len: usize,
    /// Most keywords per message; default 64.
    pub max_keywords: usize,
    /// Most app passwords per account; default 20.
    pub max_app_passwords: usize,
    /// Most aliases per account; default 100.
    pub max_aliases: usize,
    /// Largest settings value; default 1 MiB.
    pub max_setting_size: usize,
    /// Capacity of each mailbox's change-feed channel; default 1024.
    pub feed_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 50 * 1024 * 1024,
            max_mailbox_name: 1000,
            max_mailbox_depth: 32,
            max_mailboxes: 10_000,
            max_keyword_len: 128,
            max_keywords: 64,
            max_app_passwords: 20,
            max_aliases: 100,
            max_setting_size: 1024 * 1024,
            feed_capacity: 1024,
        }
    }
}

/// Argon2id cost parameters for new password hashes (existing hashes keep the parameters
/// they were made with).
///
/// The default is one of OWASP's equivalent Argon2id settings (Password Storage Cheat
/// Sheet: 46 MiB x 1 pass, 19 MiB x 2, 12 MiB x 3, 9 MiB x 4, 7 MiB x 5, all 1 lane): the
/// 7 MiB, 5 passes, 1 lane one. It costs about the same CPU per verification as
/// 19 MiB x 2 (m x t: 35,840 vs 38,912 KiB-passes; about 20-40 ms on a current core in a
/// release build) with 37 % of the memory. Memory matters because the store keeps one
/// Argon2 block per concurrent verification for the life of the process (see
/// `creds`); with 2 cores that is 14 MiB instead of 38 MiB. Hashes made earlier with
/// 19 MiB x 2 (the default before) keep verifying with their own parameters. Every
/// login and every failed login costs one verification (and one per app password tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            m_cost: 7 * 1024,
            t_cost: 5,
            p_cost: 1,
        }
    }
}

impl HashParams {
    /// Very cheap parameters for tests only (8 KiB, 1 pass). Never use in production.
    pub fn insecure_for_tests() -> Self {
        HashParams {
            m_cost: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }
}

/// Store configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Limits.
    pub limits: Limits,
    /// Password hash cost.
    pub hash: HashParams,
    /// [`crate::DiskStore`]: messages up to this many octets (default 64 KiB, at most
    /// [`StoreConfig::INLINE_BODY_CEILING`]) are kept inside the index, written by the same
    /// transaction that records them, so storing one costs a single flush. Larger ones get
    /// a file of their own under `msg/` (three flushes: the file, its directory entry and
    /// the index). `0` puts every body in a file. Changing it affects new messages only;
    /// both kinds are read back whatever the setting.
    pub inline_body_max: u64,
    /// [`crate::DiskStore`]: memory the index database may use to cache its pages
    /// (default 64 MiB; a tenth of it buffers a transaction's writes). Bodies kept in the
    /// index are read through this cache.
    pub index_cache_bytes: usize,
}

impl StoreConfig {
    /// The largest accepted [`StoreConfig::inline_body_max`] (256 KiB): an append is
    /// buffered in memory up to this size, and only a buffered body can go into the index.
    pub const INLINE_BODY_CEILING: u64 = 256 * 1024;

    /// The defaults, with [`HashParams::insecure_for_tests`].
    pub fn for_tests() -> Self {
        StoreConfig {
            hash: HashParams::insecure_for_tests(),
            ..StoreConfig::default()
        }
    }

    /// This configuration with [`StoreConfig::inline_body_max`] set to `max` (capped at
    /// [`StoreConfig::INLINE_BODY_CEILING`]).
    pub fn with_inline_body_max(mut self, max: u64) -> Self {
        self.inline_body_max = max.min(Self::INLINE_BODY_CEILING);
        self
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            limits: Limits::default(),
            hash: HashParams::default(),
            inline_body_max: 64 * 1024,
            index_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// UidSet built from ranges contains exactly the UIDs of the ranges.
        #[test]
        fn uidset_matches_model(ranges in proptest::collection::vec((0u32..200, 0u32..200), 0..6), probe in 0u32..220) {
            let mut s = UidSet::new();
            for (a, b) in &ranges {
                s.insert_range(*a, *b);
            }
            let model = ranges.iter().any(|(a, b)| {
                let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
                probe != 0 && lo <= probe && probe <= hi
            });
            prop_assert_eq!(s.contains(probe), model);
            prop_assert!(s.ranges().windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0));
            let from_iter: UidSet = s.ranges().iter().flat_map(|&(a, b)| a..=b).collect();
            prop_assert_eq!(from_iter, s);
        }

        /// Flags: names() parsed back gives the same flags.
        #[test]
        fn flags_names_round_trip(bits in 0u8..32, kws in proptest::collection::vec("[A-Za-z$][A-Za-z0-9]{0,6}", 0..4)) {
            let mut f = Flags::system(SystemFlags::from_bits(bits));
            for k in kws {
                f.insert_keyword(k);
            }
            let names = f.names();
            prop_assert_eq!(Flags::from_names(names.iter().map(String::as_str)), f);
        }
    }

    #[test]
    fn timestamps() {
        for t in [-5, 0, 1_700_000_000] {
            assert_eq!(
                Timestamp::from_system_time(Timestamp(t).to_system_time()),
                Timestamp(t)
            );
        }
    }
}
