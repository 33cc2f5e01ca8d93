//! SEARCH criteria (`search-key`), IMAP4rev1 and IMAP4rev2 plus CONDSTORE `MODSEQ`.

use bytes::Bytes;

use super::{Atom, Date, SequenceSet};

/// One search key. A SEARCH command's criteria are an implicit AND of a list of keys.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum SearchKey {
    /// `ALL`
    All,
    /// `ANSWERED`
    Answered,
    /// `BCC string`
    Bcc(Bytes),
    /// `BEFORE date`
    Before(super::Date),
    /// `BODY string`
    Body(Bytes),
    /// `CC string`
    Cc(Bytes),
    /// `DELETED`
    Deleted,
    /// `DRAFT`
    Draft,
    /// `FLAGGED`
    Flagged,
    /// `FROM string`
    From(Bytes),
    /// `HEADER field-name string`
    Header(Bytes, Bytes),
    /// `KEYWORD flag-keyword`
    Keyword(Atom),
    /// `LARGER number`
    Larger(u64),
    /// `NEW` (IMAP4rev1)
    New,
    /// `NOT search-key`
    Not(Box<SearchKey>),
    /// `OLD` (IMAP4rev1)
    Old,
    /// `ON date`
    On(Date),
    /// `OR search-key search-key`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT` (IMAP4rev1)
    Recent,
    /// `SEEN`
    Seen,
    /// `SENTBEFORE date`
    SentBefore(Date),
    /// `SENTON date`
    SentOn(Date),
    /// `SENTSINCE date`
    SentSince(Date),
    /// `SINCE date`
    Since(Date),
    /// `SMALLER number`
    Smaller(u64),
    /// `SUBJECT string`
    Subject(Bytes),
    /// `TEXT string`
    Text(Bytes),
    /// `TO string`
    To(Bytes),
    /// `UID sequence-set`
    Uid(SequenceSet),
    /// `UNANSWERED`
    Unanswered,
    /// `UNDELETED`
    Undeleted,
    /// `UNDRAFT`
    Undraft,
    /// `UNFLAGGED`
    Unflagged,
    /// `UNKEYWORD flag-keyword`
    Unkeyword(Atom),
    /// `UNSEEN`
    Unseen,
    /// A bare sequence set (message numbers, or `$`).
    SequenceSet(SequenceSet),
    /// `( search-key *(SP search-key) )`: all must match (never empty).
    And(Vec<SearchKey>),
    /// CONDSTORE `MODSEQ [entry-name entry-type-req] mod-sequence-valzer`.
    ModSeq {
        /// Optional metadata item name (e.g. `"/flags/\\draft"`) and type (`priv`, `shared`,
        /// `all`).
        entry: Option<(Bytes, Atom)>,
        /// The mod-sequence.
        modseq: u64,
    },
}
