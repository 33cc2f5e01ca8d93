//! IMAP data types: commands, responses and the values inside them.
//!
//! Everything here is owned and cheap to clone (`bytes::Bytes` for strings and message data).
//! Types with invariants (tags, atoms, non-zero sequence numbers, mailbox names, dates) are
//! built through validating constructors, so a value that exists can always be encoded.
//!
//! The grammar follows RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1) plus the extensions
//! listed in the crate documentation.

mod body;
mod command;
mod core;
mod datetime;
mod mutf7;
mod response;
mod search;
mod sequence;

pub use self::body::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, ExtDisposition,
    ExtLanguage, ExtLocation, MultiPartExt, SinglePartExt, SinglePartKind,
};
pub use self::command::{
    AppendMessage, Command, CommandBody, FetchItem, FetchItems, FetchModifiers, ListReturnOption,
    ListSelectOption, QResyncParams, SearchReturnOption, Section, SectionText, SelectParams,
    StatusItem, StoreKind,
};
pub use self::core::{
    Atom, Capability, Flag, FlagPerm, ListPattern, Mailbox, MailboxAttr, Tag, Text,
    is_astring_char, is_atom_char, is_list_char, is_tag_char,
};
pub use self::datetime::{Date, DateTime};
pub use self::mutf7::{decode_mutf7, encode_mutf7};
pub use self::response::{
    Code, Continue, Data, ESearchItem, ExtValue, FetchAttr, FetchLiteralItem, Greeting,
    GreetingKind, ListData, ListExtItem, NamespaceDesc, QuotaResource, Response, StatusAttr,
    StatusKind, StatusResponse,
};
pub use self::search::SearchKey;
pub use self::sequence::{SeqNum, SeqRange, SequenceSet};

/// Why a value could not be built: the input breaks an invariant of the IMAP grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The value is empty but the grammar needs at least one character.
    #[error("{what} must not be empty")]
    Empty {
        /// What was being built ("tag", "atom", ...).
        what: &'static str,
    },
    /// A byte that the grammar forbids in this kind of value.
    #[error("{what} must not contain byte 0x{byte:02x} (at offset {at})")]
    ForbiddenByte {
        /// What was being built.
        what: &'static str,
        /// The offending byte.
        byte: u8,
        /// Its offset in the input.
        at: usize,
    },
    /// A number outside its allowed range (e.g. sequence number 0, month 13).
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// What was being built.
        what: &'static str,
        /// The rejected value.
        value: i64,
    },
    /// A mailbox name in modified UTF-7 (RFC 3501 section 5.1.3) that is not well formed.
    #[error("invalid modified UTF-7 mailbox name at offset {at}: {reason}")]
    InvalidMutf7 {
        /// Offset of the problem in the encoded name.
        at: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A combination of fields the grammar does not allow.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being built.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The month names used by `date` and `date-time`.
pub(crate) fn datetime_months() -> &'static [&'static str; 12] {
    &datetime::MONTHS
}
