//! Responses (server to client): greeting, status responses, data, continuation requests.

use std::num::NonZeroU32;

use bytes::Bytes;

use super::{
    Atom, BodyStructure, Capability, DateTime, Envelope, Flag, FlagPerm, Mailbox, MailboxAttr,
    Section, SequenceSet, StatusItem, Tag, Text,
};

/// Anything a server sends after the greeting.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Response {
    /// `OK`/`NO`/`BAD` (tagged or untagged), `PREAUTH`, `BYE`.
    Status(StatusResponse),
    /// Untagged data (`* 3 EXISTS`, `* FETCH ...`, ...).
    Data(Data),
    /// `+ ...`
    Continue(Continue),
}

/// The kind of a greeting.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum GreetingKind {
    /// `* OK`: not authenticated.
    Ok,
    /// `* PREAUTH`: already authenticated.
    PreAuth,
    /// `* BYE`: the server refuses the connection.
    Bye,
}

/// The first line a server sends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Greeting {
    /// OK, PREAUTH or BYE.
    pub kind: GreetingKind,
    /// Optional response code, typically `[CAPABILITY ...]`.
    pub code: Option<Code>,
    /// Human-readable text.
    pub text: Text,
}

/// The condition of a status response.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StatusKind {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (untagged only)
    PreAuth,
    /// `BYE` (untagged only)
    Bye,
}

/// A status response: `tag OK [code] text`, `* NO text`, `* BYE text`...
///
/// Without a code, a text that starts with `[` cannot be told apart from a response code on
/// the wire; give such texts a code or rephrase them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StatusResponse {
    /// The tag of the command it completes; `None` for untagged (`*`).
    pub tag: Option<Tag>,
    /// The condition.
    pub kind: StatusKind,
    /// Optional response code.
    pub code: Option<Code>,
    /// Human-readable text.
    pub text: Text,
}

impl StatusResponse {
    /// A tagged completion; `kind` must be `Ok`, `No` or `Bad`.
    pub fn tagged(
        tag: Tag,
        kind: StatusKind,
        code: Option<Code>,
        text: Text,
    ) -> Result<Self, super::ValidationError> {
        if matches!(kind, StatusKind::PreAuth | StatusKind::Bye) {
            return Err(super::ValidationError::Invalid {
                what: "tagged status response",
                reason: "PREAUTH and BYE are untagged only",
            });
        }
        Ok(Self {
            tag: Some(tag),
            kind,
            code,
            text,
        })
    }

    /// An untagged status response.
    #[must_use]
    pub fn untagged(kind: StatusKind, code: Option<Code>, text: Text) -> Self {
        Self {
            tag: None,
            kind,
            code,
            text,
        }
    }
}

/// A continuation request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Continue {
    /// `+ [code] text`, e.g. before a literal or during IDLE.
    Text {
        /// Optional code.
        code: Option<Code>,
        /// Text.
        text: Text,
    },
    /// `+ base64`: a SASL challenge (decoded). An empty challenge is written `+ `.
    ///
    /// The parser reads a continuation whose text is valid base64 (and has no code) as a
    /// challenge, anything else as `Text`.
    Base64(Bytes),
}

/// A response code (`resp-text-code`): RFC 9051, RFC 5530, UIDPLUS, CONDSTORE/QRESYNC, ...
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `BADCHARSET [(charsets)]`
    BadCharset(Vec<Bytes>),
    /// `CAPABILITY ...`
    Capability(Vec<Capability>),
    /// `PARSE`
    Parse,
    /// `PERMANENTFLAGS (...)`
    PermanentFlags(Vec<FlagPerm>),
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNEXT n`
    UidNext(NonZeroU32),
    /// `UIDVALIDITY n`
    UidValidity(NonZeroU32),
    /// `UNSEEN n` (IMAP4rev1)
    Unseen(NonZeroU32),
    /// `CLOSED` (QRESYNC, IMAP4rev2)
    Closed,
    /// `APPENDUID uidvalidity uids` (UIDPLUS)
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: NonZeroU32,
        /// The assigned UIDs.
        uids: SequenceSet,
    },
    /// `COPYUID uidvalidity source-uids target-uids` (UIDPLUS)
    CopyUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: NonZeroU32,
        /// UIDs in the source mailbox.
        source: SequenceSet,
        /// UIDs in the target mailbox.
        target: SequenceSet,
    },
    /// `UIDNOTSTICKY` (UIDPLUS)
    UidNotSticky,
    /// `HIGHESTMODSEQ n` (CONDSTORE)
    HighestModSeq(u64),
    /// `NOMODSEQ` (CONDSTORE)
    NoModSeq,
    /// `MODIFIED set` (CONDSTORE)
    Modified(SequenceSet),
    /// `NOTSAVED` (SEARCHRES)
    NotSaved,
    /// `COMPRESSIONACTIVE` (RFC 4978)
    CompressionActive,
    /// `TOOBIG` (RFC 4469, APPENDLIMIT)
    TooBig,
    /// `UNKNOWN-CTE` (BINARY)
    UnknownCte,
    /// `HASCHILDREN`
    HasChildren,
    /// `UNAVAILABLE` (RFC 5530)
    Unavailable,
    /// `AUTHENTICATIONFAILED`
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED`
    AuthorizationFailed,
    /// `EXPIRED`
    Expired,
    /// `PRIVACYREQUIRED`
    PrivacyRequired,
    /// `CONTACTADMIN`
    ContactAdmin,
    /// `NOPERM`
    NoPerm,
    /// `INUSE`
    InUse,
    /// `EXPUNGEISSUED`
    ExpungeIssued,
    /// `CORRUPTION`
    Corruption,
    /// `SERVERBUG`
    ServerBug,
    /// `CLIENTBUG`
    ClientBug,
    /// `CANNOT`
    CannotDo,
    /// `LIMIT`
    Limit,
    /// `OVERQUOTA`
    OverQuota,
    /// `ALREADYEXISTS`
    AlreadyExists,
    /// `NONEXISTENT`
    NonExistent,
    /// `USEATTR` (CREATE-SPECIAL-USE)
    UseAttr,
    /// Any other code: an atom and optional text up to `]` (the text must not contain `]`,
    /// CR, LF or NUL, and must not be empty).
    Other(Atom, Option<Bytes>),
}

/// Untagged data responses.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Data {
    /// `* CAPABILITY ...`
    Capability(Vec<Capability>),
    /// `* ENABLED ...` (RFC 5161)
    Enabled(Vec<Capability>),
    /// `* LIST (attrs) delim mailbox [(ext)]`
    List(ListData),
    /// `* LSUB (attrs) delim mailbox` (IMAP4rev1)
    Lsub(ListData),
    /// `* NAMESPACE personal other shared` (RFC 2342); empty lists are `NIL`.
    Namespace {
        /// Personal namespaces.
        personal: Vec<NamespaceDesc>,
        /// Other users' namespaces.
        other: Vec<NamespaceDesc>,
        /// Shared namespaces.
        shared: Vec<NamespaceDesc>,
    },
    /// `* STATUS mailbox (items)`
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// The values.
        items: Vec<StatusAttr>,
    },
    /// `* SEARCH n...` (IMAP4rev1; with CONDSTORE `(MODSEQ n)`).
    Search {
        /// Matching numbers.
        numbers: Vec<NonZeroU32>,
        /// Highest mod-sequence of the matches.
        modseq: Option<u64>,
    },
    /// `* ESEARCH [(TAG "t")] [UID] items` (RFC 4731, IMAP4rev2).
    ESearch {
        /// The command tag it answers.
        tag: Option<Tag>,
        /// Whether the numbers are UIDs.
        uid: bool,
        /// Result items.
        items: Vec<ESearchItem>,
    },
    /// `* FLAGS (...)`
    Flags(Vec<Flag>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT` (IMAP4rev1)
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(NonZeroU32),
    /// `* n FETCH (...)`
    Fetch {
        /// Message sequence number.
        seq: NonZeroU32,
        /// The data items (at least one).
        items: Vec<FetchAttr>,
    },
    /// `* VANISHED [(EARLIER)] uids` (QRESYNC)
    Vanished {
        /// `(EARLIER)`: answer to a FETCH/SELECT, not a new expunge.
        earlier: bool,
        /// The expunged UIDs.
        uids: SequenceSet,
    },
    /// `* ID (...)` / `* ID NIL` (RFC 2971)
    Id(Option<Vec<(Bytes, Option<Bytes>)>>),
    /// `* QUOTA root (resource usage limit ...)` (RFC 9208)
    Quota {
        /// Quota root.
        root: Bytes,
        /// Resources.
        resources: Vec<QuotaResource>,
    },
    /// `* QUOTAROOT mailbox root...` (RFC 9208)
    QuotaRoot {
        /// The mailbox.
        mailbox: Mailbox,
        /// Its quota roots.
        roots: Vec<Bytes>,
    },
}

/// A LIST/LSUB response.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ListData {
    /// Mailbox attributes.
    pub attributes: Vec<MailboxAttr>,
    /// Hierarchy delimiter, `None` for `NIL` (flat).
    pub delimiter: Option<char>,
    /// The mailbox.
    pub mailbox: Mailbox,
    /// Extended data (LIST-EXTENDED).
    pub extended: Vec<ListExtItem>,
}

/// An `mbox-list-extended-item`.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ListExtItem {
    /// `CHILDINFO (...)` (RFC 5258), e.g. `("SUBSCRIBED")`.
    ChildInfo(Vec<Bytes>),
    /// `OLDNAME (mailbox)` (RFC 9051).
    OldName(Mailbox),
    /// Any other extended item: its name and value (`tagged-ext-val`).
    Other {
        /// The item's name (`tag-string`).
        name: Bytes,
        /// Its value.
        value: ExtValue,
    },
}

/// A generic extension value (`tagged-ext-val`, RFC 4466): a bare token (number, sequence
/// set, atom), a string, or a parenthesised list of values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ExtValue {
    /// A bare token such as `17`, `1:*` or `lacy`: non-empty, only `ASTRING-CHAR`s, `*` and
    /// `%` (written as is; other bytes make the encoding invalid).
    Token(Bytes),
    /// A string (written quoted or as a literal).
    String(Bytes),
    /// `( value *(SP value) )`, possibly empty.
    List(Vec<ExtValue>),
}

/// A namespace description: prefix, delimiter, extensions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NamespaceDesc {
    /// The prefix (e.g. `""` or `"Other Users/"`).
    pub prefix: Bytes,
    /// Hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Extension name and values.
    pub extensions: Vec<(Bytes, Vec<Bytes>)>,
}

/// A STATUS response value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum StatusAttr {
    /// `MESSAGES n`
    Messages(u32),
    /// `RECENT n`
    Recent(u32),
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `DELETED n`
    Deleted(u32),
    /// `SIZE n`
    Size(u64),
    /// `HIGHESTMODSEQ n`
    HighestModSeq(u64),
    /// `APPENDLIMIT n` or `APPENDLIMIT NIL` (`None`)
    AppendLimit(Option<u64>),
}

impl StatusAttr {
    /// The item this value answers.
    #[must_use]
    pub fn item(&self) -> StatusItem {
        match self {
            Self::Messages(_) => StatusItem::Messages,
            Self::Recent(_) => StatusItem::Recent,
            Self::UidNext(_) => StatusItem::UidNext,
            Self::UidValidity(_) => StatusItem::UidValidity,
            Self::Unseen(_) => StatusItem::Unseen,
            Self::Deleted(_) => StatusItem::Deleted,
            Self::Size(_) => StatusItem::Size,
            Self::HighestModSeq(_) => StatusItem::HighestModSeq,
            Self::AppendLimit(_) => StatusItem::AppendLimit,
        }
    }
}

/// An ESEARCH result item.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ESearchItem {
    /// `MIN n`
    Min(NonZeroU32),
    /// `MAX n`
    Max(NonZeroU32),
    /// `ALL set`
    All(SequenceSet),
    /// `COUNT n`
    Count(u32),
    /// `MODSEQ n` (CONDSTORE)
    ModSeq(u64),
}

/// A QUOTA resource: name, usage, limit.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QuotaResource {
    /// E.g. `STORAGE` (in KiB), `MESSAGE`.
    pub name: Atom,
    /// Current usage.
    pub usage: u64,
    /// Limit.
    pub limit: u64,
}

/// One FETCH response data item.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum FetchAttr {
    /// `FLAGS (...)`
    Flags(Vec<Flag>),
    /// `INTERNALDATE "..."`
    InternalDate(DateTime),
    /// `RFC822.SIZE n`
    Rfc822Size(u64),
    /// `RFC822 nstring` (IMAP4rev1)
    Rfc822(Option<Bytes>),
    /// `RFC822.HEADER nstring` (IMAP4rev1)
    Rfc822Header(Option<Bytes>),
    /// `RFC822.TEXT nstring` (IMAP4rev1)
    Rfc822Text(Option<Bytes>),
    /// `ENVELOPE (...)`
    Envelope(Box<Envelope>),
    /// `BODY (...)` (no extension data)
    Body(Box<BodyStructure>),
    /// `BODYSTRUCTURE (...)`
    BodyStructure(Box<BodyStructure>),
    /// `BODY[section]<origin> nstring`
    BodySection {
        /// The section.
        section: Section,
        /// Offset of a partial fetch.
        origin: Option<u32>,
        /// The data, `None` for `NIL`.
        data: Option<Bytes>,
    },
    /// `BINARY[part]<origin> nstring` (may be a `~{n}` literal)
    Binary {
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// Offset of a partial fetch.
        origin: Option<u32>,
        /// The decoded data, `None` for `NIL`.
        data: Option<Bytes>,
    },
    /// `BINARY.SIZE[part] n`
    BinarySize {
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// Decoded size.
        size: u64,
    },
    /// `UID n`
    Uid(NonZeroU32),
    /// `MODSEQ (n)` (CONDSTORE)
    ModSeq(u64),
}

/// A FETCH data item whose value is a (possibly large) literal, streamed separately from
/// the rest of the response: see `encode::fetch_literal_head` and
/// `parse::fetch_literal_prefix`.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum FetchLiteralItem {
    /// `BODY[section]<origin>`
    BodySection {
        /// The section.
        section: Section,
        /// Offset of a partial fetch.
        origin: Option<u32>,
    },
    /// `BINARY[part]<origin>` (written as a `~{n}` literal)
    Binary {
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// Offset of a partial fetch.
        origin: Option<u32>,
    },
    /// `RFC822`
    Rfc822,
    /// `RFC822.HEADER`
    Rfc822Header,
    /// `RFC822.TEXT`
    Rfc822Text,
}

impl FetchLiteralItem {
    /// The complete data item once the literal's bytes are known.
    #[must_use]
    pub fn with_data(self, data: Option<Bytes>) -> FetchAttr {
        match self {
            Self::BodySection { section, origin } => FetchAttr::BodySection {
                section,
                origin,
                data,
            },
            Self::Binary { part, origin } => FetchAttr::Binary { part, origin, data },
            Self::Rfc822 => FetchAttr::Rfc822(data),
            Self::Rfc822Header => FetchAttr::Rfc822Header(data),
            Self::Rfc822Text => FetchAttr::Rfc822Text(data),
        }
    }
}
