//! Commands (client to server).

use std::num::NonZeroU32;

use bytes::Bytes;

use super::{
    Atom, Capability, DateTime, Flag, ListPattern, Mailbox, MailboxAttr, SearchKey, SequenceSet,
    Tag,
};

/// A tagged command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Command {
    /// The client's tag.
    pub tag: Tag,
    /// What the command asks.
    pub body: CommandBody,
}

impl Command {
    /// Builds a command.
    #[must_use]
    pub fn new(tag: Tag, body: CommandBody) -> Self {
        Self { tag, body }
    }
}

/// The message of an APPEND (one per message; MULTIAPPEND is not supported).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppendMessage {
    /// Flags to set.
    pub flags: Vec<Flag>,
    /// INTERNALDATE to set.
    pub date: Option<DateTime>,
    /// The message bytes.
    pub data: Bytes,
    /// Sent as a `~{n}` literal (BINARY, RFC 3516): may contain NUL.
    pub binary: bool,
    /// Sent as `UTF8 (~{n})` (UTF8=ACCEPT, RFC 6855): a message with UTF-8 headers. Always
    /// written with a binary literal.
    pub utf8: bool,
}

/// Every command of IMAP4rev2 and IMAP4rev1 and of the supported extensions.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum CommandBody {
    // --- any state
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `ID (...)` / `ID NIL` (RFC 2971): field/value pairs, `None` for `NIL`.
    Id(Option<Vec<(Bytes, Option<Bytes>)>>),

    // --- not authenticated
    /// `STARTTLS`
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (SASL-IR, RFC 4959). The initial
    /// response is decoded from base64; `Some(empty)` is written `=`.
    Authenticate {
        /// SASL mechanism name, e.g. `PLAIN`.
        mechanism: Atom,
        /// Decoded initial response.
        initial_response: Option<Bytes>,
    },
    /// `LOGIN user password`
    Login {
        /// User name.
        username: Bytes,
        /// Password.
        password: Bytes,
    },

    // --- authenticated
    /// `ENABLE capability...` (RFC 5161)
    Enable(Vec<Capability>),
    /// `SELECT mailbox [params]`
    Select {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE/QRESYNC parameters.
        params: SelectParams,
    },
    /// `EXAMINE mailbox [params]`
    Examine {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE/QRESYNC parameters.
        params: SelectParams,
    },
    /// `CREATE mailbox [(USE (attrs))]` (CREATE-SPECIAL-USE, RFC 6154)
    Create {
        /// The mailbox.
        mailbox: Mailbox,
        /// Special-use attributes to assign.
        special_use: Vec<MailboxAttr>,
    },
    /// `DELETE mailbox`
    Delete(Mailbox),
    /// `RENAME from to`
    Rename {
        /// Existing name.
        from: Mailbox,
        /// New name.
        to: Mailbox,
    },
    /// `SUBSCRIBE mailbox`
    Subscribe(Mailbox),
    /// `UNSUBSCRIBE mailbox`
    Unsubscribe(Mailbox),
    /// `LIST [(selection)] reference pattern(s) [RETURN (options)]` (RFC 5258, 5819, 6154)
    List {
        /// Selection options (LIST-EXTENDED).
        selection: Vec<ListSelectOption>,
        /// Reference name.
        reference: Mailbox,
        /// One or more patterns (several only with LIST-EXTENDED, written in parentheses).
        patterns: Vec<ListPattern>,
        /// Return options (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE).
        return_options: Vec<ListReturnOption>,
    },
    /// `LSUB reference pattern` (IMAP4rev1)
    Lsub {
        /// Reference name.
        reference: Mailbox,
        /// Pattern.
        pattern: ListPattern,
    },
    /// `NAMESPACE` (RFC 2342)
    Namespace,
    /// `STATUS mailbox (items)`
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// Requested items (at least one).
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox [flags] [date-time] literal`
    Append {
        /// Target mailbox.
        mailbox: Mailbox,
        /// The message.
        message: AppendMessage,
    },
    /// `IDLE` (RFC 2177); the client ends it with `DONE` (see `parse::idle_done`).
    Idle,
    /// `GETQUOTA root` (RFC 9208)
    GetQuota(Bytes),
    /// `GETQUOTAROOT mailbox` (RFC 9208)
    GetQuotaRoot(Mailbox),
    /// `SETQUOTA root (resource limit ...)` (RFC 9208)
    SetQuota {
        /// Quota root.
        root: Bytes,
        /// Resource names (e.g. `STORAGE`) and limits.
        limits: Vec<(Atom, u64)>,
    },
    /// `COMPRESS mechanism` (RFC 4978; `DEFLATE`)
    Compress(Atom),

    // --- selected
    /// `CHECK` (IMAP4rev1)
    Check,
    /// `CLOSE`
    Close,
    /// `UNSELECT` (RFC 3691)
    Unselect,
    /// `EXPUNGE`
    Expunge,
    /// `UID EXPUNGE set` (UIDPLUS)
    UidExpunge(SequenceSet),
    /// `[UID] SEARCH [RETURN (...)] [CHARSET c] keys`
    Search {
        /// Prefixed with `UID`.
        uid: bool,
        /// `RETURN (...)` options (ESEARCH); `None` when absent, `Some(empty)` for `RETURN ()`.
        return_options: Option<Vec<SearchReturnOption>>,
        /// `CHARSET` name.
        charset: Option<Bytes>,
        /// The keys, at least one (implicit AND).
        criteria: Vec<SearchKey>,
    },
    /// `[UID] FETCH set items [(modifiers)]`
    Fetch {
        /// Prefixed with `UID`.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// What to fetch.
        items: FetchItems,
        /// CONDSTORE/QRESYNC modifiers.
        modifiers: FetchModifiers,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags`
    Store {
        /// Prefixed with `UID`.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Replace, add or remove.
        kind: StoreKind,
        /// `.SILENT`.
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
        /// CONDSTORE `UNCHANGEDSINCE`.
        unchanged_since: Option<u64>,
    },
    /// `[UID] COPY set mailbox`
    Copy {
        /// Prefixed with `UID`.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target.
        mailbox: Mailbox,
    },
    /// `[UID] MOVE set mailbox` (RFC 6851)
    Move {
        /// Prefixed with `UID`.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target.
        mailbox: Mailbox,
    },
}

impl CommandBody {
    /// The command's name as written on the wire (`UID FETCH`, `SELECT`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Capability => "CAPABILITY",
            Self::Noop => "NOOP",
            Self::Logout => "LOGOUT",
            Self::Id(_) => "ID",
            Self::StartTls => "STARTTLS",
            Self::Authenticate { .. } => "AUTHENTICATE",
            Self::Login { .. } => "LOGIN",
            Self::Enable(_) => "ENABLE",
            Self::Select { .. } => "SELECT",
            Self::Examine { .. } => "EXAMINE",
            Self::Create { .. } => "CREATE",
            Self::Delete(_) => "DELETE",
            Self::Rename { .. } => "RENAME",
            Self::Subscribe(_) => "SUBSCRIBE",
            Self::Unsubscribe(_) => "UNSUBSCRIBE",
            Self::List { .. } => "LIST",
            Self::Lsub { .. } => "LSUB",
            Self::Namespace => "NAMESPACE",
            Self::Status { .. } => "STATUS",
            Self::Append { .. } => "APPEND",
            Self::Idle => "IDLE",
            Self::GetQuota(_) => "GETQUOTA",
            Self::GetQuotaRoot(_) => "GETQUOTAROOT",
            Self::SetQuota { .. } => "SETQUOTA",
            Self::Compress(_) => "COMPRESS",
            Self::Check => "CHECK",
            Self::Close => "CLOSE",
            Self::Unselect => "UNSELECT",
            Self::Expunge => "EXPUNGE",
            Self::UidExpunge(_) => "UID EXPUNGE",
            Self::Search { uid: false, .. } => "SEARCH",
            Self::Search { uid: true, .. } => "UID SEARCH",
            Self::Fetch { uid: false, .. } => "FETCH",
            Self::Fetch { uid: true, .. } => "UID FETCH",
            Self::Store { uid: false, .. } => "STORE",
            Self::Store { uid: true, .. } => "UID STORE",
            Self::Copy { uid: false, .. } => "COPY",
            Self::Copy { uid: true, .. } => "UID COPY",
            Self::Move { uid: false, .. } => "MOVE",
            Self::Move { uid: true, .. } => "UID MOVE",
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 7162).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SelectParams {
    /// `CONDSTORE`
    pub condstore: bool,
    /// `QRESYNC (...)`
    pub qresync: Option<QResyncParams>,
}

/// `QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])` (RFC 7162 3.2.5).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QResyncParams {
    /// Last known UIDVALIDITY.
    pub uid_validity: NonZeroU32,
    /// Last known mod-sequence.
    pub modseq: u64,
    /// Known UIDs.
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and the UIDs they correspond to (needs `known_uids`).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// `LIST` selection options (RFC 5258, RFC 6154).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ListSelectOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `REMOTE`
    Remote,
    /// `RECURSIVEMATCH`
    RecursiveMatch,
    /// `SPECIAL-USE`
    SpecialUse,
}

/// `LIST ... RETURN (...)` options (RFC 5258, RFC 5819, RFC 6154).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ListReturnOption {
    /// `SUBSCRIBED`
    Subscribed,
    /// `CHILDREN`
    Children,
    /// `SPECIAL-USE`
    SpecialUse,
    /// `STATUS (items)` (LIST-STATUS)
    Status(Vec<StatusItem>),
}

/// STATUS data items.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `DELETED` (IMAP4rev2)
    Deleted,
    /// `SIZE` (STATUS=SIZE, IMAP4rev2)
    Size,
    /// `HIGHESTMODSEQ` (CONDSTORE)
    HighestModSeq,
    /// `APPENDLIMIT` (RFC 7889)
    AppendLimit,
}

impl StatusItem {
    /// The item's name on the wire.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Messages => "MESSAGES",
            Self::Recent => "RECENT",
            Self::UidNext => "UIDNEXT",
            Self::UidValidity => "UIDVALIDITY",
            Self::Unseen => "UNSEEN",
            Self::Deleted => "DELETED",
            Self::Size => "SIZE",
            Self::HighestModSeq => "HIGHESTMODSEQ",
            Self::AppendLimit => "APPENDLIMIT",
        }
    }

    /// Every item, for lookups.
    pub const ALL: [StatusItem; 9] = [
        Self::Messages,
        Self::Recent,
        Self::UidNext,
        Self::UidValidity,
        Self::Unseen,
        Self::Deleted,
        Self::Size,
        Self::HighestModSeq,
        Self::AppendLimit,
    ];
}

/// `SEARCH RETURN (...)` options (ESEARCH RFC 4731, SEARCHRES RFC 5182, IMAP4rev2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum SearchReturnOption {
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `ALL`
    All,
    /// `COUNT`
    Count,
    /// `SAVE`
    Save,
}

/// `FLAGS`, `+FLAGS` or `-FLAGS`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StoreKind {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// What a FETCH asks for: a macro or a list of items.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FetchItems {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`
    Full,
    /// Explicit items (one item is written without parentheses).
    Items(Vec<FetchItem>),
}

impl FetchItems {
    /// The items, with macros expanded.
    #[must_use]
    pub fn expand(&self) -> Vec<FetchItem> {
        let mut v = vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
        ];
        match self {
            Self::Fast => v,
            Self::All => {
                v.push(FetchItem::Envelope);
                v
            }
            Self::Full => {
                v.push(FetchItem::Envelope);
                v.push(FetchItem::Body);
                v
            }
            Self::Items(items) => items.clone(),
        }
    }
}

/// A section specification: `BODY[1.2.HEADER.FIELDS (From)]`. An empty `part` with no
/// `text` is `BODY[]`, the whole message.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Section {
    /// Part numbers (`1.2.3`), each non-zero.
    pub part: Vec<NonZeroU32>,
    /// The text specifier after the part numbers.
    pub text: Option<SectionText>,
}

/// `section-text` / `section-msgtext`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)` (at least one name)
    HeaderFields(Vec<Bytes>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<Bytes>),
    /// `TEXT`
    Text,
    /// `MIME` (only after a part number)
    Mime,
}

/// One FETCH data item in a command.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum FetchItem {
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822` (IMAP4rev1)
    Rfc822,
    /// `RFC822.HEADER` (IMAP4rev1)
    Rfc822Header,
    /// `RFC822.TEXT` (IMAP4rev1)
    Rfc822Text,
    /// `ENVELOPE`
    Envelope,
    /// `BODY` (structure without extension data)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `UID`
    Uid,
    /// `MODSEQ` (CONDSTORE)
    ModSeq,
    /// `BODY[section]<origin.count>` or `BODY.PEEK[...]`
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section,
        /// `<origin.count>`.
        partial: Option<(u32, NonZeroU32)>,
    },
    /// `BINARY[part]<origin.count>` or `BINARY.PEEK[...]` (RFC 3516)
    Binary {
        /// `.PEEK`
        peek: bool,
        /// Part numbers (empty for the whole message).
        part: Vec<NonZeroU32>,
        /// `<origin.count>`.
        partial: Option<(u32, NonZeroU32)>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516)
    BinarySize {
        /// Part numbers.
        part: Vec<NonZeroU32>,
    },
}

/// FETCH modifiers (RFC 7162).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE modseq`
    pub changed_since: Option<u64>,
    /// `VANISHED` (UID FETCH with QRESYNC; needs `changed_since`)
    pub vanished: bool,
}
