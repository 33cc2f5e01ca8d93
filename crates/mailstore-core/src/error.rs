//! The crate's one error type.

use std::path::PathBuf;

/// Why a message was refused by [`crate::validate_message`] or an append.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// The message has no bytes at all.
    #[error("the message is empty")]
    Empty,
    /// The message is larger than the configured limit.
    #[error("the message is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the message (or the bytes received so far).
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The first line is not a header field (`name: value`), so this is not an RFC 5322
    /// message (for example a bare body, an mbox `From ` line or binary data).
    #[error("not a mail message: the first line is not a header field (`Name: value`)")]
    NoHeader,
    /// A NUL byte was found in the header block.
    #[error("the header block contains a NUL byte at offset {offset}")]
    NulInHeader {
        /// Byte offset of the NUL.
        offset: usize,
    },
}

/// Why a mailbox name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidName {
    /// Empty name.
    #[error("the mailbox name is empty")]
    Empty,
    /// Longer than [`crate::Limits::max_mailbox_name`] bytes.
    #[error("the mailbox name is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More levels than [`crate::Limits::max_mailbox_depth`].
    #[error("the mailbox name has {depth} levels, over the limit of {limit}")]
    TooDeep {
        /// Number of `/`-separated levels.
        depth: usize,
        /// The limit in force.
        limit: usize,
    },
    /// `a//b`, a leading or a trailing `/`.
    #[error("the mailbox name has an empty level (leading, trailing or double `/`)")]
    EmptySegment,
    /// A `.` or `..` level, or a level starting with `.`.
    #[error("the mailbox name level {0:?} is reserved (levels may not start with `.`)")]
    Reserved(String),
    /// NUL, a control character, or one of the IMAP wildcards `*` `%`.
    #[error("the mailbox name contains the forbidden character {0:?}")]
    ForbiddenChar(char),
}

/// Every error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the data directory (only one process may open a `DiskStore`).
    /// Use the running server's admin socket instead, or stop the server.
    #[error(
        "the mail store at {path} is locked by another process (is the server running? use its admin socket or stop it)"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// No account with that id, address or alias.
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    /// The address or alias is already used by an account.
    #[error("the address {0} is already in use")]
    AddressInUse(String),
    /// The address is not of the form `local@domain`.
    #[error("invalid address {0:?}: expected local-part@domain")]
    InvalidAddress(String),
    /// No mailbox of that name (or id) in this account.
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    /// A mailbox of that name already exists.
    #[error("the mailbox {0} already exists")]
    MailboxExists(String),
    /// The mailbox name is not acceptable.
    #[error("invalid mailbox name: {0}")]
    InvalidName(#[from] InvalidName),
    /// The operation is not allowed (e.g. deleting INBOX).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// No message with that UID.
    #[error("no message with UID {0}")]
    NoSuchMessage(u32),
    /// The bytes are not an acceptable message; nothing was stored.
    #[error("message refused: {0}")]
    InvalidMessage(#[from] InvalidMessage),
    /// The account's quota would be exceeded; nothing was stored.
    #[error("over quota: {resource} would be {would_be}, the limit is {limit}")]
    OverQuota {
        /// `"storage"` (bytes) or `"messages"` (count).
        resource: &'static str,
        /// Usage after the operation.
        would_be: u64,
        /// The limit.
        limit: u64,
    },
    /// A value passed in is out of range or malformed (keyword, UID, UIDL, setting key...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A named item (app password, setting) was not found.
    #[error("not found: {0}")]
    NotFound(String),
    /// The password (or app password) did not match, or the account does not exist.
    /// Deliberately does not say which.
    #[error("authentication failed")]
    AuthFailed,
    /// The append sink was used after an error or after the size limit was hit.
    #[error("the append was already aborted: {0}")]
    AppendAborted(String),
    /// A file or directory operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("index database error: {0}")]
    Database(String),
    /// The on-disk data is not what this version understands.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// A background task failed (panicked or was cancelled).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
