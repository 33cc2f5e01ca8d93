//! The `MailStore` trait and the streaming helper types it returns.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::types::*;

/// A message being appended: write the bytes in chunks, then [`AppendSink::commit`].
///
/// Nothing is visible (and nothing counts against the quota) before `commit` returns `Ok`;
/// when it does, the message is durable (for the disk backend: on disk and fsync'd). Dropping
/// the sink or calling [`AppendSink::abort`] discards it.
pub trait AppendSink: Send {
    /// Adds the next chunk. Fails with [`crate::InvalidMessage::TooLarge`] as soon as the
    /// limit is passed; the sink is then unusable.
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Validates the message, assigns its UID and makes it durable and visible.
    fn commit(self) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;
    /// Discards the message.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// The bytes of a message (or a range of them), read without loading the whole message.
pub struct BodyReader {
    inner: BodyInner,
    len: u64,
}

enum BodyInner {
    Memory(io::Cursor<Bytes>),
    Boxed(Pin<Box<dyn AsyncRead + Send + Sync>>),
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("len", &self.len)
            .finish()
    }
}

impl BodyReader {
    /// A reader over bytes in memory.
    pub fn from_bytes(b: Bytes) -> Self {
        let len = b.len() as u64;
        BodyReader {
            inner: BodyInner::Memory(io::Cursor::new(b)),
            len,
        }
    }
    /// A reader over any async source of exactly `len` bytes (for other backends).
    pub fn from_async_read(r: impl AsyncRead + Send + Sync + 'static, len: u64) -> Self {
        BodyReader {
            inner: BodyInner::Boxed(Box::pin(r)),
            len,
        }
    }
    /// Number of bytes this reader yields.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True if it yields nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Reads everything into memory (convenience for tests and small messages).
    pub async fn read_all(mut self) -> Result<Vec<u8>, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut v = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0).min(1 << 26));
        self.read_to_end(&mut v)
            .await
            .map_err(|e| StoreError::io("<message body>", e))?;
        Ok(v)
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.inner {
            BodyInner::Memory(c) => Pin::new(c).poll_read(cx, buf),
            BodyInner::Boxed(r) => r.as_mut().poll_read(cx, buf),
        }
    }
}

/// A subscription to one mailbox's change feed.
#[derive(Debug)]
pub struct ChangeSubscription {
    rx: broadcast::Receiver<ChangeEvent>,
}

impl ChangeSubscription {
    /// Wraps a broadcast receiver (for other backends).
    pub fn new(rx: broadcast::Receiver<ChangeEvent>) -> Self {
        ChangeSubscription { rx }
    }
    /// The next event. A subscriber that fell behind gets [`ChangeEvent::Resync`] once and
    /// then continues with the newest events; when the store drops the feed (mailbox
    /// deleted, store closed) it gets [`ChangeEvent::MailboxGone`].
    pub async fn recv(&mut self) -> ChangeEvent {
        match self.rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(_)) => ChangeEvent::Resync,
            Err(broadcast::error::RecvError::Closed) => ChangeEvent::MailboxGone,
        }
    }
    /// Like `recv` without waiting: `None` if no event is queued.
    pub fn try_recv(&mut self) -> Option<ChangeEvent> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(ChangeEvent::Resync),
            Err(broadcast::error::TryRecvError::Closed) => Some(ChangeEvent::MailboxGone),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

/// Result type of the trait's futures.
pub type StoreResult<T> = Result<T, StoreError>;

/// The mail store: accounts, credentials, settings, mailboxes, messages and the change
/// feed.
///
/// Every method is async and `Send`, so protocol adapters can call it from spawned tasks,
/// and a networked backend (PostgreSQL, FoundationDB) can implement it. Message operations
/// take a [`MailboxRef`] (account + mailbox): the store refuses a mailbox that is not the
/// account's with [`StoreError::NoSuchMailbox`].
///
/// Every mutating call is atomic and, when it returns `Ok`, durable (for a durable backend).
pub trait MailStore: Send + Sync + 'static {
    /// The streaming append handle.
    type Append: AppendSink + 'static;

    // ---- accounts ----

    /// Creates an account (and, by default, INBOX, Sent, Drafts, Junk, Trash, Archive).
    fn create_account(
        &self,
        spec: NewAccount,
    ) -> impl Future<Output = StoreResult<AccountInfo>> + Send;
    /// Deletes an account with all its mail, aliases, credentials and settings.
    fn delete_account(&self, account: AccountId) -> impl Future<Output = StoreResult<()>> + Send;
    /// One account by id.
    fn account(&self, account: AccountId) -> impl Future<Output = StoreResult<AccountInfo>> + Send;
    /// The account whose address or alias this is (domain case-insensitive), if any.
    fn find_account(
        &self,
        address: &str,
    ) -> impl Future<Output = StoreResult<Option<AccountInfo>>> + Send;
    /// All accounts, by id.
    fn list_accounts(&self) -> impl Future<Output = StoreResult<Vec<AccountInfo>>> + Send;
    /// Adds an alias address.
    fn add_alias(
        &self,
        account: AccountId,
        alias: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Removes an alias address.
    fn remove_alias(
        &self,
        account: AccountId,
        alias: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets (or with `None` removes) the account password (stored as an argon2id hash).
    fn set_password(
        &self,
        account: AccountId,
        password: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets which protocols the account may use.
    fn set_access(
        &self,
        account: AccountId,
        access: ProtocolAccess,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets the quota.
    fn set_quota(
        &self,
        account: AccountId,
        quota: Quota,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Current usage and limits.
    fn quota_usage(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<QuotaUsage>> + Send;

    // ---- credentials ----

    /// Creates an app password named `name` and returns its secret (shown only now).
    fn create_app_password(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<String>> + Send;
    /// Revokes an app password.
    fn revoke_app_password(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Lists app passwords (names and times).
    fn list_app_passwords(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Vec<AppPasswordInfo>>> + Send;
    /// Stores (or removes) the plaintext-equivalent secret used for APOP and CRAM-MD5.
    /// Only accounts that opt in have one; anyone reading it can log in as the account.
    fn set_plaintext_secret(
        &self,
        account: AccountId,
        secret: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The plaintext-equivalent secret, if the account opted in.
    fn plaintext_secret(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Option<PlaintextSecret>>> + Send;
    /// Checks a login (address or alias) against the password and the app passwords.
    /// Fails with [`StoreError::AuthFailed`] without saying whether the account exists.
    /// Protocol access is not checked here: use [`AccountInfo::allows`].
    fn verify_login(
        &self,
        address: &str,
        password: &str,
    ) -> impl Future<Output = StoreResult<AuthOutcome>> + Send;

    // ---- settings ----

    /// Reads a settings blob.
    fn get_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;
    /// Writes a settings blob (at most [`Limits::max_setting_size`] bytes).
    fn put_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a settings blob (no error if absent).
    fn delete_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The keys of a scope, sorted.
    fn list_settings(
        &self,
        scope: &SettingsScope,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    // ---- mailboxes ----

    /// Creates a mailbox. Parents need not exist (the hierarchy is by name).
    fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        opts: CreateMailbox,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send;
    /// Renames a mailbox and its children (`a` -> `b` also moves `a/x` to `b/x`). Keeps
    /// UIDVALIDITY, UIDs and flags. Renaming INBOX (RFC 9051 6.3.6) creates the new
    /// mailbox, moves every INBOX message into it and leaves INBOX empty; INBOX's children
    /// are not renamed.
    fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes a mailbox and its messages (children stay). INBOX cannot be deleted.
    fn delete_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Subscribes or unsubscribes.
    fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets or clears the special use.
    fn set_special_use(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every mailbox of the account, sorted by name.
    fn list_mailboxes(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Vec<MailboxInfo>>> + Send;
    /// A mailbox by name (`INBOX` case-insensitive).
    fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send;
    /// Counters of a mailbox (STATUS).
    fn mailbox_status(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send;

    // ---- messages ----

    /// Starts a streamed append.
    fn begin_append(
        &self,
        mailbox: MailboxRef,
        opts: AppendOptions,
    ) -> impl Future<Output = StoreResult<Self::Append>> + Send;
    /// Appends a message held in memory (begin, one write, commit).
    fn append(
        &self,
        mailbox: MailboxRef,
        opts: AppendOptions,
        message: Bytes,
    ) -> impl Future<Output = StoreResult<AppendOutcome>> + Send {
        async move {
            let mut sink = self.begin_append(mailbox, opts).await?;
            sink.write(&message).await?;
            sink.commit().await
        }
    }
    /// Counters and every message's UID, MODSEQ and flags (SELECT).
    fn snapshot(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<MailboxSnapshot>> + Send;
    /// Full metadata of the messages in `uids` that exist, ascending UID.
    fn message_meta(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
    ) -> impl Future<Output = StoreResult<Vec<MessageMeta>>> + Send;
    /// The message's bytes, streamed.
    fn open_body(
        &self,
        mailbox: MailboxRef,
        uid: u32,
    ) -> impl Future<Output = StoreResult<BodyReader>> + Send;
    /// `len` bytes from `offset` (clamped to the message), streamed (IMAP partial FETCH,
    /// POP3 TOP helpers).
    fn open_range(
        &self,
        mailbox: MailboxRef,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = StoreResult<BodyReader>> + Send;
    /// Changes flags. With `unchanged_since`, messages whose MODSEQ is greater are left
    /// alone and reported in [`StoreFlagsOutcome::modified`] (RFC 7162). A message whose
    /// flags do not change keeps its MODSEQ.
    fn store_flags(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = StoreResult<StoreFlagsOutcome>> + Send;
    /// Copies messages to another mailbox of the same account (quota checked).
    fn copy(
        &self,
        from: MailboxRef,
        uids: &UidSet,
        to: MailboxRef,
    ) -> impl Future<Output = StoreResult<CopyOutcome>> + Send;
    /// Moves messages atomically (RFC 6851): copy, then expunge from the source; the POP3
    /// UIDL travels with the message.
    fn move_messages(
        &self,
        from: MailboxRef,
        uids: &UidSet,
        to: MailboxRef,
    ) -> impl Future<Output = StoreResult<CopyOutcome>> + Send;
    /// Removes the messages in `uids` (whatever their flags); returns the UIDs removed.
    /// Their UIDs are kept as tombstones with the expunge MODSEQ (QRESYNC VANISHED).
    fn expunge(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
    ) -> impl Future<Output = StoreResult<Vec<u32>>> + Send;
    /// Messages changed and UIDs expunged after `modseq`.
    fn changes_since(
        &self,
        mailbox: MailboxRef,
        modseq: u64,
    ) -> impl Future<Output = StoreResult<Changes>> + Send;
    /// Drops the expunge tombstones with a MODSEQ up to `up_to_modseq` (RAM and index
    /// space); returns how many went. Afterwards [`MailStore::changes_since`] for an older
    /// MODSEQ reports `vanished_complete: false`.
    fn purge_tombstones(
        &self,
        mailbox: MailboxRef,
        up_to_modseq: u64,
    ) -> impl Future<Output = StoreResult<usize>> + Send;
    /// Subscribes to the mailbox's change feed (events from every connection).
    ///
    /// To build a consistent session view, subscribe first, then take the
    /// [`MailStore::snapshot`], then apply only events whose MODSEQ is greater than the
    /// snapshot's HIGHESTMODSEQ (older ones are already in the snapshot). Every event of one
    /// operation carries that operation's MODSEQ, and events arrive in MODSEQ order. On
    /// [`ChangeEvent::Resync`] call [`MailStore::changes_since`] with the last MODSEQ
    /// applied.
    fn subscribe(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<ChangeSubscription>> + Send;
}
