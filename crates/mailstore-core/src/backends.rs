//! The two backends: [`MemoryStore`] and [`DiskStore`].

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::creds;
use crate::engine::{
    Backend, BodyLoc, BodySrc, Engine, HEAD_KEEP, MemData, Prepared, State, too_large,
};
use crate::error::StoreError;
use crate::store::{AppendSink, BodyReader, ChangeSubscription, MailStore, StoreResult};
use crate::types::*;

fn task_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Task(e.to_string())
}

/// Normalises what a user typed as an app password (`abcd-efgh-ijkl-mnop`, with or without
/// dashes or spaces, any case) to the 16 letters that were hashed; `None` if it cannot be one.
fn app_password_form(pw: &str) -> Option<String> {
    let s: String = pw
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_lowercase())).then_some(s)
}

/// A store held entirely in memory: for tests, examples and embedding. Nothing survives the
/// process. Cheap to clone (shared).
#[derive(Clone)]
pub struct MemoryStore {
    engine: Arc<Engine>,
    dummy: Arc<OnceLock<String>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MemoryStore").field(&self.engine).finish()
    }
}

impl MemoryStore {
    /// An empty store with default limits and password-hash cost.
    pub fn new() -> Self {
        Self::with_config(StoreConfig::default())
    }
    /// An empty store with this configuration.
    pub fn with_config(cfg: StoreConfig) -> Self {
        MemoryStore {
            engine: Arc::new(Engine::new(
                cfg,
                Backend::Memory(std::sync::Mutex::new(MemData::default())),
                State::default(),
                crate::engine::Ids::default(),
            )),
            dummy: Arc::new(OnceLock::new()),
        }
        .init_ids()
    }
    fn init_ids(self) -> Self {
        use std::sync::atomic::Ordering;
        self.engine.ids.account.store(1, Ordering::SeqCst);
        self.engine.ids.mailbox.store(1, Ordering::SeqCst);
        self.engine.ids.store.store(1, Ordering::SeqCst);
        self
    }
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        f(&self.engine)
    }
    /// RAM held by the message indexes, and the number of messages indexed.
    pub fn index_memory(&self) -> (usize, usize) {
        self.engine.index_memory()
    }
}

/// The embedded durable store: metadata and messages up to
/// [`StoreConfig::inline_body_max`] in a redb database `index.redb`, one file per larger
/// message under `msg/`. See docs/store.md for the format and the crash guarantees.
///
/// Only one process can open a data directory: a second [`DiskStore::open`] fails with
/// [`StoreError::Locked`]. Cheap to clone (shared).
///
/// ```
/// use mailstore_core::{DiskStore, MailStore, NewAccount, StoreConfig, StoreError};
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = DiskStore::open(dir.path(), StoreConfig::default())?;
/// let a = store.create_account(NewAccount::new("bob@example.org", None)).await?;
/// // The directory is locked while `store` lives.
/// assert!(matches!(DiskStore::open(dir.path(), StoreConfig::default()), Err(StoreError::Locked { .. })));
/// drop(store);
/// let again = DiskStore::open(dir.path(), StoreConfig::default())?;
/// assert_eq!(again.account(a.id).await?.address, "bob@example.org");
/// # Ok::<(), StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct DiskStore {
    engine: Arc<Engine>,
    dummy: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DiskStore").field(&self.engine).finish()
    }
}

impl DiskStore {
    /// Opens (creating if needed) the store in `dir`, loading the index and finishing any
    /// work a crash interrupted. Blocking: call from `spawn_blocking` or before the runtime
    /// is busy, or use [`DiskStore::open_async`].
    pub fn open(dir: impl AsRef<Path>, cfg: StoreConfig) -> Result<Self, StoreError> {
        let (disk, state, ids) = crate::disk::Disk::open(dir.as_ref(), cfg.index_cache_bytes)?;
        Ok(DiskStore {
            engine: Arc::new(Engine::new(cfg, Backend::Disk(disk), state, ids)),
            dummy: Arc::new(OnceLock::new()),
        })
    }
    /// [`DiskStore::open`] on the blocking thread pool.
    pub async fn open_async(dir: impl Into<PathBuf>, cfg: StoreConfig) -> Result<Self, StoreError> {
        let dir = dir.into();
        tokio::task::spawn_blocking(move || Self::open(dir, cfg))
            .await
            .map_err(task_err)?
    }
    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        match &self.engine.backend {
            Backend::Disk(d) => &d.dir,
            Backend::Memory(_) => Path::new(""),
        }
    }
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let e = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&e))
            .await
            .map_err(task_err)?
    }
    fn disk(&self) -> Result<&crate::disk::Disk, StoreError> {
        match &self.engine.backend {
            Backend::Disk(d) => Ok(d),
            Backend::Memory(_) => Err(StoreError::Corrupt("not a disk store".into())),
        }
    }
    /// RAM held by the message indexes, and the number of messages indexed.
    pub fn index_memory(&self) -> (usize, usize) {
        self.engine.index_memory()
    }
}

/// Streaming append into a [`MemoryStore`].
pub struct MemoryAppend {
    engine: Arc<Engine>,
    mailbox: MailboxRef,
    opts: AppendOptions,
    buf: BytesMut,
    failed: Option<String>,
}

impl std::fmt::Debug for MemoryAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAppend")
            .field("mailbox", &self.mailbox)
            .field("size", &self.buf.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AppendSink for MemoryAppend {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        if let Some(f) = &self.failed {
            return Err(StoreError::AppendAborted(f.clone()));
        }
        let limit = self.engine.limits().max_message_size;
        let size = (self.buf.len() + chunk.len()) as u64;
        if size > limit {
            let e = too_large(size, limit);
            self.failed = Some(e.to_string());
            self.buf = BytesMut::new();
            return Err(e);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    async fn commit(self) -> Result<AppendOutcome, StoreError> {
        if let Some(f) = self.failed {
            return Err(StoreError::AppendAborted(f));
        }
        let body = self.buf.freeze();
        let p = Prepared {
            store_id: self.engine.new_store_id(),
            size: body.len() as u64,
            head: body
                .get(..body.len().min(HEAD_KEEP))
                .unwrap_or_default()
                .to_vec(),
            digest: Sha256::digest(&body).into(),
            body: BodySrc::Bytes(body),
        };
        self.engine.commit_append(self.mailbox, self.opts, p)
    }

    async fn abort(self) {}
}

/// Octets an append keeps in memory before it opens its file in `tmp/`: a message this
/// small goes into the index or is written, fsynced and committed in one blocking call at
/// `commit` (one thread hand-off instead of one per chunk); a larger one streams to the
/// file from then on.
const APPEND_BUFFER: usize = StoreConfig::INLINE_BODY_CEILING as usize;

/// Streaming append into a [`DiskStore`]: chunks are kept in memory up to 256 KiB, then
/// go to a file in `tmp/`. At `commit` a body up to [`StoreConfig::inline_body_max`] is
/// written into the index by the transaction that records it (one flush); a larger one is
/// written to its file (if still in memory), the file and `tmp/` are fsynced, then the
/// index is committed.
pub struct DiskAppend {
    engine: Arc<Engine>,
    mailbox: MailboxRef,
    opts: Option<AppendOptions>,
    store_id: u64,
    path: PathBuf,
    /// The file in `tmp/`, once the message outgrew [`APPEND_BUFFER`].
    file: Option<tokio::fs::File>,
    /// The message so far while it fits in [`APPEND_BUFFER`] (empty once `file` is open).
    pending: Vec<u8>,
    size: u64,
    head: Vec<u8>,
    hasher: Sha256,
    failed: Option<String>,
    finished: bool,
}

impl std::fmt::Debug for DiskAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskAppend")
            .field("mailbox", &self.mailbox)
            .field("path", &self.path)
            .field("size", &self.size)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl DiskAppend {
    fn fail(&mut self, e: StoreError) -> StoreError {
        self.failed = Some(e.to_string());
        self.file = None;
        self.pending = Vec::new();
        let _ = std::fs::remove_file(&self.path);
        e
    }
}

impl Drop for DiskAppend {
    fn drop(&mut self) {
        if !self.finished {
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AppendSink for DiskAppend {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        if let Some(f) = &self.failed {
            return Err(StoreError::AppendAborted(f.clone()));
        }
        let limit = self.engine.limits().max_message_size;
        let size = self.size + chunk.len() as u64;
        if size > limit {
            return Err(self.fail(too_large(size, limit)));
        }
        if self.head.len() < HEAD_KEEP {
            let take = (HEAD_KEEP - self.head.len()).min(chunk.len());
            self.head
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        self.hasher.update(chunk);
        self.size = size;
        if self.file.is_none() && self.pending.len() + chunk.len() <= APPEND_BUFFER {
            self.pending.extend_from_slice(chunk);
            return Ok(());
        }
        let res = async {
            if self.file.is_none() {
                let mut f = tokio::fs::File::create(&self.path).await?;
                f.write_all(&self.pending).await?;
                self.pending = Vec::new();
                self.file = Some(f);
            }
            match self.file.as_mut() {
                Some(f) => f.write_all(chunk).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = res {
            let path = self.path.clone();
            return Err(self.fail(StoreError::io(path, e)));
        }
        Ok(())
    }

    async fn commit(mut self) -> Result<AppendOutcome, StoreError> {
        if let Some(f) = &self.failed {
            return Err(StoreError::AppendAborted(f.clone()));
        }
        let inline_max = self
            .engine
            .cfg
            .inline_body_max
            .min(StoreConfig::INLINE_BODY_CEILING);
        if self.file.is_none() && self.size <= inline_max {
            let engine = self.engine.clone();
            let p = Prepared {
                store_id: self.store_id,
                size: self.size,
                head: std::mem::take(&mut self.head),
                digest: std::mem::take(&mut self.hasher).finalize().into(),
                body: BodySrc::Bytes(Bytes::from(std::mem::take(&mut self.pending))),
            };
            let opts = self.opts.take().unwrap_or_default();
            let mailbox = self.mailbox;
            // No file was made: nothing for `Drop` to remove.
            self.finished = true;
            return tokio::task::spawn_blocking(move || engine.commit_append(mailbox, opts, p))
                .await
                .map_err(task_err)?;
        }
        // A message that stayed in memory is written here, in the same blocking call as the
        // rest of the commit.
        let small = self
            .file
            .is_none()
            .then(|| std::mem::take(&mut self.pending));
        if let Some(mut f) = self.file.take() {
            let res = async {
                f.flush().await?;
                f.sync_all().await
            }
            .await;
            if let Err(e) = res {
                let path = self.path.clone();
                return Err(self.fail(StoreError::io(path, e)));
            }
        }
        let engine = self.engine.clone();
        let p = Prepared {
            store_id: self.store_id,
            size: self.size,
            head: std::mem::take(&mut self.head),
            digest: std::mem::take(&mut self.hasher).finalize().into(),
            body: BodySrc::TmpFile,
        };
        let opts = self.opts.take().unwrap_or_default();
        let mailbox = self.mailbox;
        let id = self.store_id;
        // From here the blocking task owns the temporary file: it runs to completion even
        // if this future is dropped, and removes the file itself if the commit fails.
        self.finished = true;
        tokio::task::spawn_blocking(move || {
            let Backend::Disk(d) = &engine.backend else {
                return Err(StoreError::Corrupt("not a disk store".into()));
            };
            let written = match small {
                Some(body) => d.write_tmp(id, &body),
                None => Ok(()),
            };
            let res = written
                .and_then(|_| d.sync_tmp_dir())
                .and_then(|_| engine.commit_append(mailbox, opts, p));
            match res {
                Ok(out) => {
                    d.finish_new(std::iter::once(id));
                    Ok(out)
                }
                Err(e) => {
                    d.discard_tmp(std::iter::once(id));
                    Err(e)
                }
            }
        })
        .await
        .map_err(task_err)?
    }

    async fn abort(self) {}
}

/// Bodies (or ranges) up to this many bytes (128 KiB) are read by [`DiskStore`] in one
/// synchronous open-and-read on the calling task and handed out from memory; larger ones
/// are streamed from the file through the blocking pool (`tokio::fs`), never held whole.
///
/// Most mail is far below this size, and a page-cache read of it costs less than the two
/// or three thread hand-offs a streamed read needs; the price is that a read from a cold
/// disk briefly occupies a runtime worker (at most one read of this size per call).
pub const INLINE_READ_MAX: u64 = 128 * 1024;

async fn open_disk_range(
    store: &DiskStore,
    loc: BodyLoc,
    offset: u64,
    len: Option<u64>,
) -> Result<BodyReader, StoreError> {
    match loc {
        BodyLoc::Memory(b) => Ok(slice_bytes(b, offset, len)),
        BodyLoc::Disk { store_id, size } => {
            let d = store.disk()?;
            // Only a body this small may have been kept in the index (whatever the setting
            // was when it was stored); larger ones skip the lookup.
            if size <= StoreConfig::INLINE_BODY_CEILING
                && let Some(b) = d.read_inline(store_id)?
            {
                return Ok(slice_bytes(b, offset, len));
            }
            let start = offset.min(size);
            let n = len.map_or(size - start, |l| l.min(size - start));
            if n <= INLINE_READ_MAX {
                // One open + read on the calling task: for a body this small that is a few
                // microseconds from the page cache, less than one hop to the blocking pool
                // (and a `tokio::fs` reader would pay a hop per read, plus one for EOF).
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                return Ok(BodyReader::from_bytes(Bytes::from(
                    d.read_body(store_id, start, n)?,
                )));
            }
            let path = d.msg_path(store_id);
            let engine = store.engine.clone();
            let f = tokio::task::spawn_blocking(move || match &engine.backend {
                Backend::Disk(d) => d.open_body_file(store_id),
                Backend::Memory(_) => Err(StoreError::Corrupt("not a disk store".into())),
            })
            .await
            .map_err(task_err)??;
            let mut f = tokio::fs::File::from_std(f);
            if start > 0 {
                f.seek(SeekFrom::Start(start))
                    .await
                    .map_err(|e| StoreError::io(&path, e))?;
            }
            Ok(BodyReader::from_async_read(f.take(n), n))
        }
    }
}

fn slice_bytes(b: Bytes, offset: u64, len: Option<u64>) -> BodyReader {
    let size = b.len() as u64;
    let start = offset.min(size);
    let n = len.map_or(size - start, |l| l.min(size - start));
    let (s, e) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(start + n).unwrap_or(usize::MAX),
    );
    BodyReader::from_bytes(b.slice(s.min(b.len())..e.min(b.len())))
}

macro_rules! impl_mail_store {
    ($ty:ty, $sink:ty, $begin:ident, $open:ident) => {
        impl MailStore for $ty {
            type Append = $sink;

            async fn create_account(&self, spec: NewAccount) -> StoreResult<AccountInfo> {
                let hash = match spec.password.clone() {
                    Some(pw) => Some(self.hash(pw).await?),
                    None => None,
                };
                self.run(move |e| e.create_account(spec, hash)).await
            }
            async fn delete_account(&self, account: AccountId) -> StoreResult<()> {
                self.run(move |e| e.delete_account(account)).await
            }
            async fn account(&self, account: AccountId) -> StoreResult<AccountInfo> {
                self.run(move |e| e.account(account)).await
            }
            async fn find_account(&self, address: &str) -> StoreResult<Option<AccountInfo>> {
                let a = address.to_string();
                self.run(move |e| e.find_account(&a)).await
            }
            async fn list_accounts(&self) -> StoreResult<Vec<AccountInfo>> {
                self.run(move |e| e.list_accounts()).await
            }
            async fn add_alias(&self, account: AccountId, alias: &str) -> StoreResult<()> {
                let a = alias.to_string();
                self.run(move |e| e.add_alias(account, &a)).await
            }
            async fn remove_alias(&self, account: AccountId, alias: &str) -> StoreResult<()> {
                let a = alias.to_string();
                self.run(move |e| e.remove_alias(account, &a)).await
            }
            async fn set_password(
                &self,
                account: AccountId,
                password: Option<&str>,
            ) -> StoreResult<()> {
                let hash = match password {
                    Some(pw) => Some(self.hash(pw.to_string()).await?),
                    None => None,
                };
                self.run(move |e| e.set_password_hash(account, hash)).await
            }
            async fn set_access(
                &self,
                account: AccountId,
                access: ProtocolAccess,
            ) -> StoreResult<()> {
                self.run(move |e| e.set_access(account, access)).await
            }
            async fn set_quota(&self, account: AccountId, quota: Quota) -> StoreResult<()> {
                self.run(move |e| e.set_quota(account, quota)).await
            }
            async fn quota_usage(&self, account: AccountId) -> StoreResult<QuotaUsage> {
                self.run(move |e| e.quota_usage(account)).await
            }
            async fn create_app_password(
                &self,
                account: AccountId,
                name: &str,
            ) -> StoreResult<String> {
                let secret = creds::generate_app_password();
                let normal = app_password_form(&secret).unwrap_or_default();
                let hash = self.hash(normal).await?;
                let n = name.to_string();
                self.run(move |e| e.add_app_password(account, &n, hash))
                    .await?;
                Ok(secret)
            }
            async fn revoke_app_password(&self, account: AccountId, name: &str) -> StoreResult<()> {
                let n = name.to_string();
                self.run(move |e| e.revoke_app_password(account, &n)).await
            }
            async fn list_app_passwords(
                &self,
                account: AccountId,
            ) -> StoreResult<Vec<AppPasswordInfo>> {
                self.run(move |e| e.list_app_passwords(account)).await
            }
            async fn set_plaintext_secret(
                &self,
                account: AccountId,
                secret: Option<&str>,
            ) -> StoreResult<()> {
                let s = secret.map(str::to_string);
                self.run(move |e| e.set_plaintext_secret(account, s)).await
            }
            async fn plaintext_secret(
                &self,
                account: AccountId,
            ) -> StoreResult<Option<PlaintextSecret>> {
                self.run(move |e| e.plaintext_secret(account)).await
            }
            async fn verify_login(
                &self,
                address: &str,
                password: &str,
            ) -> StoreResult<AuthOutcome> {
                let a = address.to_string();
                let cand = self.run(move |e| Ok(e.login_candidates(&a))).await?;
                let params = self.engine.cfg.hash;
                let dummy = self.dummy.clone();
                let pw = password.to_string();
                // One permit per blocking task: a burst of logins waits here as futures
                // instead of occupying blocking threads that would wait in the pool.
                let _permit = creds::verify_permit().await?;
                let found = tokio::task::spawn_blocking(move || {
                    let Some((info, pwh, apps)) = cand else {
                        let d = dummy.get_or_init(|| creds::dummy_hash(params));
                        let _ = creds::verify_password(d, &pw);
                        return None;
                    };
                    if let Some(h) = pwh {
                        if creds::verify_password(&h, &pw) {
                            return Some((info, LoginVia::Password));
                        }
                    }
                    if let Some(norm) = app_password_form(&pw) {
                        for (name, h) in apps {
                            if creds::verify_password(&h, &norm) {
                                return Some((info, LoginVia::AppPassword(name)));
                            }
                        }
                    }
                    None
                })
                .await
                .map_err(task_err)?;
                let Some((account, via)) = found else {
                    return Err(StoreError::AuthFailed);
                };
                if let LoginVia::AppPassword(name) = &via {
                    let (id, n) = (account.id, name.clone());
                    self.run(move |e| e.touch_app_password(id, &n)).await?;
                }
                Ok(AuthOutcome { account, via })
            }
            async fn get_setting(
                &self,
                scope: &SettingsScope,
                key: &str,
            ) -> StoreResult<Option<Vec<u8>>> {
                let (s, k) = (scope.clone(), key.to_string());
                self.run(move |e| e.get_setting(&s, &k)).await
            }
            async fn put_setting(
                &self,
                scope: &SettingsScope,
                key: &str,
                value: Vec<u8>,
            ) -> StoreResult<()> {
                let (s, k) = (scope.clone(), key.to_string());
                self.run(move |e| e.put_setting(&s, &k, Some(value))).await
            }
            async fn delete_setting(&self, scope: &SettingsScope, key: &str) -> StoreResult<()> {
                let (s, k) = (scope.clone(), key.to_string());
                self.run(move |e| e.put_setting(&s, &k, None)).await
            }
            async fn list_settings(&self, scope: &SettingsScope) -> StoreResult<Vec<String>> {
                let s = scope.clone();
                self.run(move |e| e.list_settings(&s)).await
            }
            async fn create_mailbox(
                &self,
                account: AccountId,
                name: &str,
                opts: CreateMailbox,
            ) -> StoreResult<MailboxInfo> {
                let n = name.to_string();
                self.run(move |e| e.create_mailbox(account, &n, opts)).await
            }
            async fn rename_mailbox(
                &self,
                account: AccountId,
                from: &str,
                to: &str,
            ) -> StoreResult<()> {
                let (f, t) = (from.to_string(), to.to_string());
                self.run(move |e| e.rename_mailbox(account, &f, &t)).await
            }
            async fn delete_mailbox(&self, account: AccountId, name: &str) -> StoreResult<()> {
                let n = name.to_string();
                self.run(move |e| e.delete_mailbox(account, &n)).await
            }
            async fn set_subscribed(
                &self,
                account: AccountId,
                name: &str,
                subscribed: bool,
            ) -> StoreResult<()> {
                let n = name.to_string();
                self.run(move |e| e.set_subscribed(account, &n, subscribed))
                    .await
            }
            async fn set_special_use(
                &self,
                account: AccountId,
                name: &str,
                special_use: Option<SpecialUse>,
            ) -> StoreResult<()> {
                let n = name.to_string();
                self.run(move |e| e.set_special_use(account, &n, special_use))
                    .await
            }
            async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
                self.run(move |e| e.list_mailboxes(account)).await
            }
            async fn mailbox(&self, account: AccountId, name: &str) -> StoreResult<MailboxInfo> {
                let n = name.to_string();
                self.run(move |e| e.mailbox(account, &n)).await
            }
            async fn mailbox_status(&self, mailbox: MailboxRef) -> StoreResult<MailboxInfo> {
                self.run(move |e| e.mailbox_status(mailbox)).await
            }
            async fn begin_append(
                &self,
                mailbox: MailboxRef,
                opts: AppendOptions,
            ) -> StoreResult<$sink> {
                self.$begin(mailbox, opts).await
            }
            async fn snapshot(&self, mailbox: MailboxRef) -> StoreResult<MailboxSnapshot> {
                self.run(move |e| e.snapshot(mailbox)).await
            }
            async fn message_meta(
                &self,
                mailbox: MailboxRef,
                uids: &UidSet,
            ) -> StoreResult<Vec<MessageMeta>> {
                let u = uids.clone();
                self.run(move |e| e.message_meta(mailbox, &u)).await
            }
            async fn open_body(&self, mailbox: MailboxRef, uid: u32) -> StoreResult<BodyReader> {
                self.$open(mailbox, uid, 0, None).await
            }
            async fn open_range(
                &self,
                mailbox: MailboxRef,
                uid: u32,
                offset: u64,
                len: u64,
            ) -> StoreResult<BodyReader> {
                self.$open(mailbox, uid, offset, Some(len)).await
            }
            async fn store_flags(
                &self,
                mailbox: MailboxRef,
                uids: &UidSet,
                op: FlagOp,
                flags: &Flags,
                unchanged_since: Option<u64>,
            ) -> StoreResult<StoreFlagsOutcome> {
                let (u, f) = (uids.clone(), flags.clone());
                self.run(move |e| e.store_flags(mailbox, &u, op, &f, unchanged_since))
                    .await
            }
            async fn copy(
                &self,
                from: MailboxRef,
                uids: &UidSet,
                to: MailboxRef,
            ) -> StoreResult<CopyOutcome> {
                let u = uids.clone();
                self.run(move |e| e.copy(from, &u, to, false)).await
            }
            async fn move_messages(
                &self,
                from: MailboxRef,
                uids: &UidSet,
                to: MailboxRef,
            ) -> StoreResult<CopyOutcome> {
                let u = uids.clone();
                self.run(move |e| e.copy(from, &u, to, true)).await
            }
            async fn expunge(&self, mailbox: MailboxRef, uids: &UidSet) -> StoreResult<Vec<u32>> {
                let u = uids.clone();
                self.run(move |e| e.expunge(mailbox, &u)).await
            }
            async fn changes_since(
                &self,
                mailbox: MailboxRef,
                modseq: u64,
            ) -> StoreResult<Changes> {
                self.run(move |e| e.changes_since(mailbox, modseq)).await
            }
            async fn purge_tombstones(
                &self,
                mailbox: MailboxRef,
                up_to_modseq: u64,
            ) -> StoreResult<usize> {
                self.run(move |e| e.purge_tombstones(mailbox, up_to_modseq))
                    .await
            }
            async fn subscribe(&self, mailbox: MailboxRef) -> StoreResult<ChangeSubscription> {
                self.engine.subscribe(mailbox).map(ChangeSubscription::new)
            }
        }

        impl $ty {
            async fn hash(&self, pw: String) -> StoreResult<String> {
                let params = self.engine.cfg.hash;
                let _permit = creds::verify_permit().await?;
                tokio::task::spawn_blocking(move || creds::hash_password(params, &pw))
                    .await
                    .map_err(task_err)?
            }
        }
    };
}

impl MemoryStore {
    async fn begin_mem(
        &self,
        mailbox: MailboxRef,
        opts: AppendOptions,
    ) -> StoreResult<MemoryAppend> {
        self.engine.check_append_target(mailbox, &opts)?;
        Ok(MemoryAppend {
            engine: self.engine.clone(),
            mailbox,
            opts,
            buf: BytesMut::new(),
            failed: None,
        })
    }
    async fn open_mem(
        &self,
        mailbox: MailboxRef,
        uid: u32,
        offset: u64,
        len: Option<u64>,
    ) -> StoreResult<BodyReader> {
        match self.engine.body_loc(mailbox, uid)? {
            BodyLoc::Memory(b) => Ok(slice_bytes(b, offset, len)),
            BodyLoc::Disk { .. } => Err(StoreError::Corrupt("memory store without body".into())),
        }
    }
}

impl DiskStore {
    async fn begin_disk(
        &self,
        mailbox: MailboxRef,
        opts: AppendOptions,
    ) -> StoreResult<DiskAppend> {
        self.engine.check_append_target(mailbox, &opts)?;
        let id = self.engine.new_store_id();
        let path = self.disk()?.tmp_path(id);
        Ok(DiskAppend {
            engine: self.engine.clone(),
            mailbox,
            opts: Some(opts),
            store_id: id,
            path,
            file: None,
            pending: Vec::new(),
            size: 0,
            head: Vec::new(),
            hasher: Sha256::new(),
            failed: None,
            finished: false,
        })
    }
    async fn open_disk(
        &self,
        mailbox: MailboxRef,
        uid: u32,
        offset: u64,
        len: Option<u64>,
    ) -> StoreResult<BodyReader> {
        let loc = self.engine.body_loc(mailbox, uid)?;
        open_disk_range(self, loc, offset, len).await
    }
}

impl_mail_store!(MemoryStore, MemoryAppend, begin_mem, open_mem);
impl_mail_store!(DiskStore, DiskAppend, begin_disk, open_disk);
