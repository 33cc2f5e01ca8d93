//! The async interface [`serve`](super::serve) calls: a [`Backend`] (accounts) that opens a
//! [`Session`] (one logged-in connection's view of the mailboxes).

use std::future::Future;
use std::num::NonZeroU32;

use bytes::Bytes;
use mail_sasl::ScramSecret;

use crate::server::{Status, Unsolicited};
use crate::types::{
    Code, DateTime, FetchAttr, FetchItem, FetchModifiers, Flag, FlagPerm, ListData, ListPattern,
    Mailbox, MailboxAttr, NamespaceDesc, QuotaResource, Response, SearchKey, SelectParams,
    SequenceSet, StatusAttr, StatusItem, StoreKind,
};

/// Accounts: authenticates users and opens their sessions.
///
/// Errors are [`Status`] values (`NO [AUTHENTICATIONFAILED] ...`) sent to the client as they
/// are.
pub trait Backend: Send + Sync + 'static {
    /// The per-connection session of a logged-in user.
    type Session: Session;

    /// Checks a user name and password (LOGIN, AUTHENTICATE PLAIN/LOGIN) and opens a
    /// session.
    fn login(
        &self,
        username: &str,
        password: &[u8],
    ) -> impl Future<Output = Result<Self::Session, Status>> + Send;

    /// The stored SCRAM-SHA-256 secret of a user, for AUTHENTICATE SCRAM-SHA-256. Default:
    /// none (the exchange then fails like one for an unknown user).
    fn scram_secret(&self, username: &str) -> impl Future<Output = Option<ScramSecret>> + Send {
        let _ = username;
        async { None }
    }

    /// Opens the session of a user who proved their identity through SASL without a
    /// password check by [`login`](Self::login) (SCRAM). Default: refused.
    fn open_session(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Self::Session, Status>> + Send {
        let _ = username;
        async { Err(Status::no("Authentication mechanism not available").with_code("UNAVAILABLE")) }
    }
}

/// What SELECT/EXAMINE reports about the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelectInfo {
    /// Number of messages.
    pub exists: u32,
    /// Messages with `\Recent` (reported to IMAP4rev1 clients only).
    pub recent: u32,
    /// The sequence number of the first message without `\Seen`, sent to IMAP4rev1
    /// clients as `OK [UNSEEN n]` (RFC 3501 section 6.3.1; IMAP4rev2 dropped it).
    pub first_unseen: Option<NonZeroU32>,
    /// Flags defined in the mailbox.
    pub flags: Vec<Flag>,
    /// Flags the client can change permanently (`\*` for new keywords).
    pub permanent_flags: Vec<FlagPerm>,
    /// UIDVALIDITY.
    pub uid_validity: NonZeroU32,
    /// The next UID.
    pub uid_next: NonZeroU32,
    /// HIGHESTMODSEQ (sent to CONDSTORE/QRESYNC clients); `None` sends `NOMODSEQ`.
    pub highest_modseq: Option<u64>,
    /// The mailbox can only be read (SELECT answered `[READ-ONLY]`).
    pub read_only: bool,
    /// Extra responses, e.g. `VANISHED (EARLIER)` and `FETCH` for a QRESYNC SELECT.
    pub extra: Vec<Response>,
}

impl SelectInfo {
    /// A description with the given counts and identifiers and the five system flags.
    pub fn new(exists: u32, uid_validity: NonZeroU32, uid_next: NonZeroU32) -> Self {
        let flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        let mut permanent_flags: Vec<FlagPerm> =
            flags.iter().cloned().map(FlagPerm::Flag).collect();
        permanent_flags.push(FlagPerm::Wildcard);
        Self {
            exists,
            recent: 0,
            first_unseen: None,
            flags,
            permanent_flags,
            uid_validity,
            uid_next,
            highest_modseq: None,
            read_only: false,
            extra: Vec::new(),
        }
    }
}

/// One message's FETCH data: its sequence number and items (include `UID` for UID FETCH).
pub type FetchResult = (NonZeroU32, Vec<FetchAttr>);

/// A STORE to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreRequest {
    /// The messages.
    pub set: SequenceSet,
    /// `set` holds UIDs.
    pub uid: bool,
    /// Replace, add or remove.
    pub kind: StoreKind,
    /// The flags.
    pub flags: Vec<Flag>,
    /// CONDSTORE `UNCHANGEDSINCE`.
    pub unchanged_since: Option<u64>,
}

/// The outcome of a STORE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreResult {
    /// New FLAGS (and UID/MODSEQ) of the changed messages; not sent for `.SILENT`.
    pub updated: Vec<FetchResult>,
    /// Messages not changed because of `UNCHANGEDSINCE` (the `[MODIFIED ...]` code).
    pub modified: Option<SequenceSet>,
}

/// Matches of a SEARCH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SearchResult {
    /// Matching sequence numbers or UIDs, ascending.
    pub numbers: Vec<u32>,
    /// Highest MODSEQ of the matches when the search used MODSEQ (CONDSTORE).
    pub highest_modseq: Option<u64>,
}

impl SearchResult {
    /// Matches without a MODSEQ.
    pub fn new(numbers: Vec<u32>) -> Self {
        Self {
            numbers,
            highest_modseq: None,
        }
    }
}

/// A message removed by EXPUNGE/MOVE: its sequence number at the time of removal and UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expunged {
    /// Sequence number, counted after the removals reported before it.
    pub seq: NonZeroU32,
    /// UID.
    pub uid: NonZeroU32,
}

/// The outcome of a MOVE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MoveResult {
    /// `COPYUID` (UIDPLUS), sent in an untagged OK before the expunges.
    pub copy_uid: Option<Code>,
    /// The messages removed from the selected mailbox.
    pub expunged: Vec<Expunged>,
}

impl MoveResult {
    /// A MOVE outcome.
    pub fn new(copy_uid: Option<Code>, expunged: Vec<Expunged>) -> Self {
        Self { copy_uid, expunged }
    }
}

/// Quota roots of a mailbox and their usage (RFC 9208).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QuotaInfo {
    /// Quota roots.
    pub roots: Vec<Bytes>,
    /// Usage and limits per root.
    pub quotas: Vec<(Bytes, Vec<QuotaResource>)>,
}

/// One logged-in connection's view of the mailboxes. The session keeps the sequence number
/// to UID map of the selected mailbox; the adapter sends what it returns.
///
/// Every method may refuse with a [`Status`] (`NO [NONEXISTENT] ...`), sent as the tagged
/// completion.
pub trait Session: Send + 'static {
    /// LIST (and LSUB when `subscribed_only`).
    fn list(
        &mut self,
        reference: &Mailbox,
        patterns: &[ListPattern],
        subscribed_only: bool,
    ) -> impl Future<Output = Result<Vec<ListData>, Status>> + Send;

    /// STATUS.
    fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> impl Future<Output = Result<Vec<StatusAttr>, Status>> + Send;

    /// SELECT (`read_only` false) or EXAMINE.
    fn select(
        &mut self,
        mailbox: &Mailbox,
        read_only: bool,
        params: &SelectParams,
    ) -> impl Future<Output = Result<SelectInfo, Status>> + Send;

    /// CLOSE (`expunge` true: remove `\Deleted` messages silently) or UNSELECT.
    fn unselect(&mut self, expunge: bool) -> impl Future<Output = Result<(), Status>> + Send;

    /// FETCH / UID FETCH of the (macro-expanded) items.
    fn fetch(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        items: &[FetchItem],
        modifiers: &FetchModifiers,
    ) -> impl Future<Output = Result<Vec<FetchResult>, Status>> + Send;

    /// UIDs in `set` expunged since mod-sequence `changed_since`, for `UID FETCH ...
    /// (CHANGEDSINCE m VANISHED)` (RFC 7162 section 3.2.6); the adapter sends them as
    /// `* VANISHED (EARLIER)` before the FETCH responses. Default: none.
    fn fetch_vanished(
        &mut self,
        set: &SequenceSet,
        changed_since: u64,
    ) -> impl Future<Output = Result<Vec<u32>, Status>> + Send {
        let _ = (set, changed_since);
        async { Ok(Vec::new()) }
    }

    /// STORE / UID STORE.
    fn store(
        &mut self,
        request: StoreRequest,
    ) -> impl Future<Output = Result<StoreResult, Status>> + Send;

    /// SEARCH / UID SEARCH (criteria ANDed).
    fn search(
        &mut self,
        criteria: &[SearchKey],
        uid: bool,
    ) -> impl Future<Output = Result<SearchResult, Status>> + Send;

    /// COPY / UID COPY; the result is the `COPYUID` code, if any.
    fn copy(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> impl Future<Output = Result<Option<Code>, Status>> + Send;

    /// MOVE / UID MOVE (RFC 6851).
    fn move_messages(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> impl Future<Output = Result<MoveResult, Status>> + Send;

    /// EXPUNGE (`uids` None) or UID EXPUNGE.
    fn expunge(
        &mut self,
        uids: Option<&SequenceSet>,
    ) -> impl Future<Output = Result<Vec<Expunged>, Status>> + Send;

    /// An APPEND of `size` bytes begins; refuse with e.g. `NO [TRYCREATE]` before the data.
    fn append_begin(
        &mut self,
        mailbox: &Mailbox,
        flags: &[Flag],
        date: Option<&DateTime>,
        size: u64,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// The next piece of the APPEND message.
    fn append_chunk(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), Status>> + Send;

    /// The APPEND message is complete: store it; the result is the `APPENDUID` code.
    fn append_end(&mut self) -> impl Future<Output = Result<Option<Code>, Status>> + Send;

    /// The APPEND was abandoned (malformed command after the message): drop what was
    /// received.
    fn append_abort(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// CREATE (with CREATE-SPECIAL-USE attributes).
    fn create(
        &mut self,
        mailbox: &Mailbox,
        special_use: &[MailboxAttr],
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// DELETE.
    fn delete(&mut self, mailbox: &Mailbox) -> impl Future<Output = Result<(), Status>> + Send;

    /// RENAME.
    fn rename(
        &mut self,
        from: &Mailbox,
        to: &Mailbox,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// SUBSCRIBE (`subscribe` true) or UNSUBSCRIBE.
    fn subscribe(
        &mut self,
        mailbox: &Mailbox,
        subscribe: bool,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// NAMESPACE: personal, other users', shared. Default: one personal namespace `""`
    /// with delimiter `/`.
    fn namespace(
        &mut self,
    ) -> impl Future<Output = (Vec<NamespaceDesc>, Vec<NamespaceDesc>, Vec<NamespaceDesc>)> + Send
    {
        async {
            let personal = NamespaceDesc {
                prefix: Bytes::new(),
                delimiter: Some('/'),
                extensions: Vec::new(),
            };
            (vec![personal], Vec::new(), Vec::new())
        }
    }

    /// GETQUOTAROOT (and GETQUOTA for a root: `mailbox` None, `root` set). Default: no
    /// quota roots.
    fn quota(
        &mut self,
        mailbox: Option<&Mailbox>,
        root: Option<&[u8]>,
    ) -> impl Future<Output = Result<QuotaInfo, Status>> + Send {
        let _ = (mailbox, root);
        async { Ok(QuotaInfo::default()) }
    }

    /// The client enabled extensions (e.g. `CONDSTORE`, `QRESYNC`, `IMAP4rev2`).
    fn enabled(&mut self, capabilities: &[String]) {
        let _ = capabilities;
    }

    /// Changes to the selected mailbox since the last call (other sessions' APPENDs,
    /// expunges, flag changes), in the order they must be reported. Called after every
    /// command and while the client IDLEs; the state machine sends them where RFC 9051
    /// allows.
    fn take_changes(&mut self) -> Vec<Unsolicited> {
        Vec::new()
    }

    /// Completes when [`take_changes`](Self::take_changes) may have something new; waited on
    /// while the client IDLEs. Must be cancel-safe. Default: never.
    fn wait_changes(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// The client logged out or the connection ended.
    fn logout(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
