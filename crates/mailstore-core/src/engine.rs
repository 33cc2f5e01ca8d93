//! The store logic shared by both backends.
//!
//! Every mutating operation works in three phases under the state lock: (1) check and
//! compute a list of [`Mut`]ations from the current state, (2) persist them (one redb
//! write transaction for the disk backend), (3) apply them to the in-memory state with
//! [`apply`]. A failure in (1) or (2) leaves the in-memory state untouched, so memory and
//! disk never disagree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::disk::Disk;
use crate::error::{InvalidMessage, StoreError};
use crate::name::{DELIMITER, address_key, normalize_address, validate_mailbox_name};
use crate::types::*;
use crate::validate::{extract_message_id, validate_message};

/// One message in a mailbox's in-memory index (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub uid: u32,
    pub size: u32,
    pub modseq: u64,
    pub store_id: u64,
    pub internal_date: i64,
    pub flags: u8,
    pub kw: u32,
}

/// The per-message data that is not needed to open a mailbox (kept out of RAM on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cold {
    pub received: i64,
    pub origin: Origin,
    pub uidl: Option<String>,
    pub message_id: Option<String>,
    pub digest: Option<[u8; 32]>,
}

/// Interned keyword sets of one mailbox; id 0 is the empty set.
#[derive(Debug)]
pub(crate) struct KwTable {
    sets: Vec<Arc<[String]>>,
    index: HashMap<Arc<[String]>, u32>,
}

impl Default for KwTable {
    fn default() -> Self {
        let empty: Arc<[String]> = Arc::from(Vec::new());
        let mut index = HashMap::new();
        index.insert(empty.clone(), 0);
        KwTable {
            sets: vec![empty],
            index,
        }
    }
}

impl KwTable {
    pub fn intern(&mut self, kws: &Arc<[String]>) -> u32 {
        if let Some(&id) = self.index.get(kws) {
            return id;
        }
        let id = u32::try_from(self.sets.len()).unwrap_or(0);
        self.sets.push(kws.clone());
        self.index.insert(kws.clone(), id);
        id
    }
    pub fn get(&self, id: u32) -> Arc<[String]> {
        self.sets
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
    pub fn heap_bytes(&self) -> usize {
        self.sets
            .iter()
            .map(|s| 16 + s.iter().map(|k| 24 + k.capacity()).sum::<usize>())
            .sum::<usize>()
            + self.index.capacity() * 24
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppPw {
    pub name: String,
    pub hash: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountRec {
    pub id: u64,
    pub address: String,
    pub aliases: Vec<String>,
    pub access: ProtocolAccess,
    pub quota: Quota,
    pub password: Option<String>,
    pub app_passwords: Vec<AppPw>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxRec {
    pub id: u64,
    pub account: u64,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    /// Tombstones with a MODSEQ up to this one have been purged.
    pub tomb_floor: u64,
}

#[derive(Debug)]
pub(crate) struct AccountState {
    pub rec: AccountRec,
    pub plaintext: Option<String>,
    pub mailboxes: BTreeMap<String, u64>,
    pub usage_bytes: u64,
    pub usage_msgs: u64,
}

#[derive(Debug)]
pub(crate) struct MailboxState {
    pub rec: MailboxRec,
    pub msgs: Vec<Entry>,
    pub kw: KwTable,
    pub tombs: Vec<(u32, u64)>,
    pub uidls: HashMap<String, u32>,
    pub unseen: u32,
    pub size: u64,
}

impl MailboxState {
    pub fn new(rec: MailboxRec) -> Self {
        MailboxState {
            rec,
            msgs: Vec::new(),
            kw: KwTable::default(),
            tombs: Vec::new(),
            uidls: HashMap::new(),
            unseen: 0,
            size: 0,
        }
    }
    fn find(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |e| e.uid).ok()
    }
    fn entry(&self, uid: u32) -> Option<&Entry> {
        self.find(uid).and_then(|i| self.msgs.get(i))
    }
    fn selected(&self, set: &UidSet) -> Vec<Entry> {
        let mut out = Vec::new();
        for &(lo, hi) in set.ranges() {
            let start = self.msgs.partition_point(|e| e.uid < lo);
            for e in self.msgs.get(start..).unwrap_or_default() {
                if e.uid > hi {
                    break;
                }
                out.push(*e);
            }
        }
        out
    }
    fn flags_of(&self, e: &Entry) -> Flags {
        let mut f = Flags::system(SystemFlags::from_bits(e.flags));
        for k in self.kw.get(e.kw).iter() {
            f.insert_keyword(k.clone());
        }
        f
    }
    fn default_uidl(&self, uid: u32) -> String {
        format!("{:08x}{:08x}", self.rec.uidvalidity, uid)
    }
    fn effective_uidl(&self, uid: u32) -> String {
        self.uidls
            .iter()
            .find(|(_, u)| **u == uid)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| self.default_uidl(uid))
    }
    /// True if `uidl` may be given to a new message with UID `uid`.
    fn uidl_free(&self, uidl: &str, uid: u32) -> bool {
        if self.uidls.contains_key(uidl) {
            return false;
        }
        // Collides with the default UIDL of an existing or future message?
        if uidl.len() == 16
            && let (Some(v), Some(u)) = (
                uidl.get(..8).and_then(|s| u32::from_str_radix(s, 16).ok()),
                uidl.get(8..).and_then(|s| u32::from_str_radix(s, 16).ok()),
            )
            && v == self.rec.uidvalidity
            && u != uid
            && uidl == self.default_uidl(u)
        {
            return false;
        }
        true
    }
    pub fn info(&self) -> MailboxInfo {
        MailboxInfo {
            mailbox: MailboxRef {
                account: AccountId(self.rec.account),
                mailbox: MailboxId(self.rec.id),
            },
            name: self.rec.name.clone(),
            uidvalidity: self.rec.uidvalidity,
            uidnext: self.rec.uidnext,
            highest_modseq: self.rec.highest_modseq,
            messages: u32::try_from(self.msgs.len()).unwrap_or(u32::MAX),
            unseen: self.unseen,
            size: self.size,
            special_use: self.rec.special_use,
            subscribed: self.rec.subscribed,
        }
    }
}

/// The whole in-memory state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub accounts: BTreeMap<u64, AccountState>,
    pub addr: HashMap<String, u64>,
    pub mailboxes: HashMap<u64, MailboxState>,
    pub settings: BTreeMap<(String, String), Vec<u8>>,
}

/// Where a new message's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum BodySrc {
    /// The bytes: every MemoryStore body, and a DiskStore body small enough to be kept in
    /// the index (written by the transaction that records the message).
    Bytes(Bytes),
    /// Already written and fsync'd to `tmp/<store id>` (DiskStore).
    TmpFile,
    /// A copy of another stored body: MemoryStore, or a DiskStore body file hard-linked to
    /// `tmp/<store id>` beforehand.
    CopyOf(u64),
    /// A copy of a DiskStore body kept in the index, duplicated by the transaction.
    CopyInline(u64),
    /// Already stored under the message's own store id (a move).
    Stored,
}

#[derive(Debug, Clone)]
pub(crate) struct NewMsg {
    pub entry: Entry,
    pub keywords: Arc<[String]>,
    pub cold: Cold,
    pub body: BodySrc,
}

/// One change, persisted then applied.
#[derive(Debug, Clone)]
pub(crate) enum Mut {
    PutAccount(AccountRec),
    DelAccount(u64),
    Plaintext(u64, Option<String>),
    PutMailbox(MailboxRec),
    DelMailbox {
        id: u64,
        store_ids: Vec<u64>,
    },
    PutMsgs {
        mbx: u64,
        msgs: Vec<NewMsg>,
    },
    SetFlags {
        mbx: u64,
        entries: Vec<(Entry, Arc<[String]>)>,
    },
    Expunge {
        mbx: u64,
        uids: Vec<u32>,
        store_ids: Vec<u64>,
        uidls: Vec<String>,
        modseq: u64,
    },
    Setting {
        scope: String,
        key: String,
        value: Option<Vec<u8>>,
    },
    PurgeTombs {
        mbx: u64,
        uids: Vec<u32>,
    },
}

/// Id counters (never reused).
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub account: AtomicU64,
    pub mailbox: AtomicU64,
    pub store: AtomicU64,
    pub uidvalidity: AtomicU32,
}

impl Ids {
    fn next(a: &AtomicU64) -> u64 {
        a.fetch_add(1, Ordering::SeqCst)
    }
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.account.load(Ordering::SeqCst),
            self.mailbox.load(Ordering::SeqCst),
            self.store.load(Ordering::SeqCst),
            u64::from(self.uidvalidity.load(Ordering::SeqCst)),
        ]
    }
    fn new_uidvalidity(&self) -> u32 {
        let now = u32::try_from(Timestamp::now().0.max(1)).unwrap_or(u32::MAX);
        let mut last = self.uidvalidity.load(Ordering::SeqCst);
        loop {
            let v = now.max(last.saturating_add(1)).max(1);
            match self
                .uidvalidity
                .compare_exchange(last, v, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return v,
                Err(cur) => last = cur,
            }
        }
    }
}

/// In-memory backend data (bodies and cold metadata).
#[derive(Debug, Default)]
pub(crate) struct MemData {
    pub bodies: HashMap<u64, Bytes>,
    pub cold: HashMap<(u64, u32), Cold>,
}

pub(crate) enum Backend {
    Memory(Mutex<MemData>),
    Disk(Disk),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Memory(_) => f.write_str("Memory"),
            Backend::Disk(d) => write!(f, "Disk({})", d.dir.display()),
        }
    }
}

/// Where to read a body from.
#[derive(Debug)]
pub(crate) enum BodyLoc {
    Memory(Bytes),
    Disk { store_id: u64, size: u64 },
}

/// A body ready to be committed.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub store_id: u64,
    pub size: u64,
    pub head: Vec<u8>,
    pub digest: [u8; 32],
    pub body: BodySrc,
}

/// How many bytes of the head an append keeps for validation and Message-ID.
pub(crate) const HEAD_KEEP: usize = 64 * 1024;

pub(crate) struct Engine {
    pub cfg: StoreConfig,
    /// The in-memory state. Readers take it shared; a writer holds `commit_lock`, computes
    /// its mutations under a shared guard, persists them (the fsync happens while readers
    /// keep going) and takes the exclusive guard only to apply them.
    pub state: RwLock<State>,
    commit_lock: Mutex<()>,
    pub ids: Ids,
    pub feeds: Mutex<HashMap<u64, broadcast::Sender<ChangeEvent>>>,
    pub backend: Backend,
    group: Mutex<GroupQueue>,
    group_cv: Condvar,
}

/// Never prints the state: it holds password hashes and plaintext-equivalent secrets.
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.read();
        f.debug_struct("Engine")
            .field("accounts", &st.accounts.len())
            .field("mailboxes", &st.mailboxes.len())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// One append waiting for the group commit.
#[derive(Debug)]
pub(crate) struct Job {
    r: MailboxRef,
    opts: AppendOptions,
    p: Prepared,
}

#[derive(Debug, Default)]
struct GroupQueue {
    pending: Vec<(u64, Job)>,
    leader: bool,
    next_ticket: u64,
    results: HashMap<u64, Result<AppendOutcome, StoreError>>,
}

/// A copy of an error for every append of a failed group commit.
fn duplicate_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io { path, source } => StoreError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => StoreError::Database(other.to_string()),
    }
}

/// Exclusive right to change the state (only one writer at a time), with a shared view of
/// the state until [`Engine::commit`].
pub(crate) struct Writer<'a> {
    _commit: MutexGuard<'a, ()>,
    st: Option<RwLockReadGuard<'a, State>>,
}

static EMPTY_STATE: LazyLock<State> = LazyLock::new(State::default);

impl std::ops::Deref for Writer<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        // `st` is only `None` inside `Engine::commit`.
        self.st.as_deref().unwrap_or(&EMPTY_STATE)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Archive", Some(SpecialUse::Archive)),
];

fn scope_key(scope: &SettingsScope) -> String {
    match scope {
        SettingsScope::Account(a) => format!("a:{}", a.0),
        SettingsScope::Domain(d) => format!("d:{}", d.to_ascii_lowercase()),
    }
}

pub(crate) fn validate_keyword(kw: &str, limits: &Limits) -> Result<(), StoreError> {
    let bad = kw.is_empty()
        || kw.len() > limits.max_keyword_len
        || kw.starts_with('\\')
        || kw.bytes().any(|b| {
            b <= b' '
                || b >= 0x7f
                || matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if bad {
        return Err(StoreError::InvalidArgument(format!(
            "invalid keyword {kw:?}: must be an IMAP atom of at most {} bytes, not starting with a backslash",
            limits.max_keyword_len
        )));
    }
    Ok(())
}

fn validate_uidl(uidl: &str) -> Result<(), StoreError> {
    if uidl.is_empty() || uidl.len() > 70 || !uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(StoreError::InvalidArgument(format!(
            "invalid UIDL {uidl:?}: 1 to 70 printable ASCII characters (RFC 1939)"
        )));
    }
    Ok(())
}

fn account_info(a: &AccountState) -> AccountInfo {
    AccountInfo {
        id: AccountId(a.rec.id),
        address: a.rec.address.clone(),
        aliases: a.rec.aliases.clone(),
        access: a.rec.access,
        quota: a.rec.quota,
        has_password: a.rec.password.is_some(),
        has_plaintext_secret: a.plaintext.is_some(),
    }
}

/// Applies one mutation to the in-memory state (phase 3).
pub(crate) fn apply(st: &mut State, m: Mut) {
    match m {
        Mut::PutAccount(rec) => {
            let id = rec.id;
            if let Some(a) = st.accounts.get_mut(&rec.id) {
                for k in std::iter::once(&a.rec.address).chain(a.rec.aliases.iter()) {
                    st.addr.remove(&address_key(k));
                }
                a.rec = rec;
            } else {
                st.accounts.insert(
                    rec.id,
                    AccountState {
                        rec,
                        plaintext: None,
                        mailboxes: BTreeMap::new(),
                        usage_bytes: 0,
                        usage_msgs: 0,
                    },
                );
            }
            let keys: Vec<String> = st
                .accounts
                .get(&id)
                .map(|a| {
                    std::iter::once(&a.rec.address)
                        .chain(a.rec.aliases.iter())
                        .map(|k| address_key(k))
                        .collect()
                })
                .unwrap_or_default();
            for k in keys {
                st.addr.insert(k, id);
            }
        }
        Mut::DelAccount(id) => {
            if let Some(a) = st.accounts.remove(&id) {
                for k in std::iter::once(&a.rec.address).chain(a.rec.aliases.iter()) {
                    st.addr.remove(&address_key(k));
                }
                for mid in a.mailboxes.values() {
                    st.mailboxes.remove(mid);
                }
            }
            let prefix = format!("a:{id}");
            st.settings.retain(|(s, _), _| *s != prefix);
        }
        Mut::Plaintext(id, v) => {
            if let Some(a) = st.accounts.get_mut(&id) {
                a.plaintext = v;
            }
        }
        Mut::PutMailbox(rec) => {
            let (acc, id, name) = (rec.account, rec.id, rec.name.clone());
            let old_name = if let Some(m) = st.mailboxes.get_mut(&id) {
                let old = std::mem::replace(&mut m.rec, rec).name;
                Some(old)
            } else {
                st.mailboxes.insert(id, MailboxState::new(rec));
                None
            };
            if let Some(a) = st.accounts.get_mut(&acc) {
                if let Some(old) = old_name
                    && old != name
                {
                    a.mailboxes.remove(&old);
                }
                a.mailboxes.insert(name, id);
            }
        }
        Mut::DelMailbox { id, .. } => {
            if let Some(m) = st.mailboxes.remove(&id)
                && let Some(a) = st.accounts.get_mut(&m.rec.account)
            {
                a.mailboxes.remove(&m.rec.name);
                a.usage_bytes = a.usage_bytes.saturating_sub(m.size);
                a.usage_msgs = a.usage_msgs.saturating_sub(m.msgs.len() as u64);
            }
        }
        Mut::PutMsgs { mbx, msgs } => {
            let Some(m) = st.mailboxes.get_mut(&mbx) else {
                return;
            };
            let (mut bytes, mut count) = (0u64, 0u64);
            for n in msgs {
                let mut e = n.entry;
                e.kw = m.kw.intern(&n.keywords);
                if e.flags & SystemFlags::SEEN.bits() == 0 {
                    m.unseen += 1;
                }
                m.size += u64::from(e.size);
                bytes += u64::from(e.size);
                count += 1;
                m.rec.uidnext = m.rec.uidnext.max(e.uid.saturating_add(1));
                m.rec.highest_modseq = m.rec.highest_modseq.max(e.modseq);
                if let Some(u) = n.cold.uidl {
                    m.uidls.insert(u, e.uid);
                }
                match m.msgs.last() {
                    Some(last) if last.uid >= e.uid => {
                        let pos = m.msgs.partition_point(|x| x.uid < e.uid);
                        m.msgs.insert(pos, e);
                    }
                    _ => m.msgs.push(e),
                }
            }
            let acc = m.rec.account;
            if let Some(a) = st.accounts.get_mut(&acc) {
                a.usage_bytes += bytes;
                a.usage_msgs += count;
            }
        }
        Mut::SetFlags { mbx, entries } => {
            let Some(m) = st.mailboxes.get_mut(&mbx) else {
                return;
            };
            for (mut e, kws) in entries {
                e.kw = m.kw.intern(&kws);
                if let Some(slot) = m.find(e.uid).and_then(|i| m.msgs.get_mut(i)) {
                    let was_seen = slot.flags & SystemFlags::SEEN.bits() != 0;
                    let is_seen = e.flags & SystemFlags::SEEN.bits() != 0;
                    *slot = e;
                    match (was_seen, is_seen) {
                        (true, false) => m.unseen += 1,
                        (false, true) => m.unseen = m.unseen.saturating_sub(1),
                        _ => {}
                    }
                    m.rec.highest_modseq = m.rec.highest_modseq.max(e.modseq);
                }
            }
        }
        Mut::Expunge {
            mbx,
            uids,
            uidls,
            modseq,
            ..
        } => {
            let Some(m) = st.mailboxes.get_mut(&mbx) else {
                return;
            };
            let (mut bytes, mut count, mut unseen) = (0u64, 0u64, 0u32);
            m.msgs.retain(|e| {
                if uids.binary_search(&e.uid).is_ok() {
                    bytes += u64::from(e.size);
                    count += 1;
                    if e.flags & SystemFlags::SEEN.bits() == 0 {
                        unseen += 1;
                    }
                    false
                } else {
                    true
                }
            });
            m.size = m.size.saturating_sub(bytes);
            m.unseen = m.unseen.saturating_sub(unseen);
            m.tombs.extend(uids.iter().map(|&u| (u, modseq)));
            m.rec.highest_modseq = m.rec.highest_modseq.max(modseq);
            for u in uidls {
                m.uidls.remove(&u);
            }
            let acc = m.rec.account;
            if let Some(a) = st.accounts.get_mut(&acc) {
                a.usage_bytes = a.usage_bytes.saturating_sub(bytes);
                a.usage_msgs = a.usage_msgs.saturating_sub(count);
            }
        }
        Mut::PurgeTombs { mbx, uids } => {
            if let Some(m) = st.mailboxes.get_mut(&mbx) {
                m.tombs.retain(|(u, _)| uids.binary_search(u).is_err());
            }
        }
        Mut::Setting { scope, key, value } => match value {
            Some(v) => {
                st.settings.insert((scope, key), v);
            }
            None => {
                st.settings.remove(&(scope, key));
            }
        },
    }
}

impl Engine {
    pub fn new(cfg: StoreConfig, backend: Backend, state: State, ids: Ids) -> Self {
        Engine {
            cfg,
            state: RwLock::new(state),
            commit_lock: Mutex::new(()),
            ids,
            feeds: Mutex::new(HashMap::new()),
            backend,
            group: Mutex::new(GroupQueue::default()),
            group_cv: Condvar::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.cfg.limits
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn writer(&self) -> Writer<'_> {
        let commit = lock(&self.commit_lock);
        Writer {
            _commit: commit,
            st: Some(self.read()),
        }
    }

    /// Phase 2 + 3: persist then apply; then the files of deleted bodies are removed.
    fn commit<'a>(&'a self, w: &mut Writer<'a>, muts: Vec<Mut>) -> Result<(), StoreError> {
        self.commit_with(w, muts, true)
    }

    fn commit_with<'a>(
        &'a self,
        w: &mut Writer<'a>,
        muts: Vec<Mut>,
        durable: bool,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(mem) => {
                // No I/O: persist and apply under the exclusive guard, so readers never
                // see bodies and index out of step.
                w.st = None;
                let res = {
                    let mut g = self
                        .state
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let mut mem = lock(mem);
                    for m in &muts {
                        mem_persist(&mut mem, m);
                    }
                    for m in muts {
                        apply(&mut g, m);
                    }
                    Ok(())
                };
                w.st = Some(self.read());
                res
            }
            Backend::Disk(d) => {
                // Readers keep the shared guard while the transaction is fsync'd.
                let unlink = d.persist(&muts, &self.ids, durable)?;
                w.st = None;
                {
                    let mut g = self
                        .state
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for m in muts {
                        apply(&mut g, m);
                    }
                }
                w.st = Some(self.read());
                // Bodies kept in the index went with the transaction; files go now.
                d.delete_bodies(&unlink);
                Ok(())
            }
        }
    }

    fn notify(&self, mbx: u64, events: Vec<ChangeEvent>) {
        let feeds = lock(&self.feeds);
        if let Some(tx) = feeds.get(&mbx) {
            for e in events {
                let _ = tx.send(e);
            }
        }
    }

    fn drop_feed(&self, mbx: u64) {
        lock(&self.feeds).remove(&mbx);
    }

    pub fn subscribe(&self, r: MailboxRef) -> Result<broadcast::Receiver<ChangeEvent>, StoreError> {
        let st = self.read();
        mailbox(&st, r)?;
        drop(st);
        let mut feeds = lock(&self.feeds);
        let cap = self.cfg.limits.feed_capacity.max(1);
        Ok(feeds
            .entry(r.mailbox.0)
            .or_insert_with(|| broadcast::channel(cap).0)
            .subscribe())
    }

    // ---------------- accounts ----------------

    fn account_of(st: &State, id: AccountId) -> Result<&AccountState, StoreError> {
        st.accounts
            .get(&id.0)
            .ok_or_else(|| StoreError::NoSuchAccount(id.to_string()))
    }

    pub fn create_account(
        &self,
        spec: NewAccount,
        password_hash: Option<String>,
    ) -> Result<AccountInfo, StoreError> {
        let address = normalize_address(&spec.address)?;
        let mut st = self.writer();
        if st.addr.contains_key(&address_key(&address)) {
            return Err(StoreError::AddressInUse(address));
        }
        let id = Ids::next(&self.ids.account);
        let rec = AccountRec {
            id,
            address,
            aliases: Vec::new(),
            access: spec.access,
            quota: spec.quota,
            password: password_hash,
            app_passwords: Vec::new(),
        };
        let mut muts = vec![Mut::PutAccount(rec)];
        if spec.default_mailboxes {
            for (name, su) in DEFAULT_MAILBOXES {
                muts.push(Mut::PutMailbox(MailboxRec {
                    id: Ids::next(&self.ids.mailbox),
                    account: id,
                    name: name.to_string(),
                    uidvalidity: self.ids.new_uidvalidity(),
                    uidnext: 1,
                    highest_modseq: 1,
                    special_use: su,
                    subscribed: true,
                    tomb_floor: 0,
                }));
            }
        }
        self.commit(&mut st, muts)?;
        Ok(account_info(Self::account_of(&st, AccountId(id))?))
    }

    pub fn delete_account(&self, id: AccountId) -> Result<(), StoreError> {
        let mut st = self.writer();
        let a = Self::account_of(&st, id)?;
        let mut muts = Vec::new();
        let mut gone = Vec::new();
        for mid in a.mailboxes.values() {
            if let Some(m) = st.mailboxes.get(mid) {
                muts.push(Mut::DelMailbox {
                    id: *mid,
                    store_ids: m.msgs.iter().map(|e| e.store_id).collect(),
                });
                gone.push(*mid);
            }
        }
        let scope = scope_key(&SettingsScope::Account(id));
        for (s, k) in st.settings.keys() {
            if *s == scope {
                muts.push(Mut::Setting {
                    scope: s.clone(),
                    key: k.clone(),
                    value: None,
                });
            }
        }
        muts.push(Mut::Plaintext(id.0, None));
        muts.push(Mut::DelAccount(id.0));
        self.commit(&mut st, muts)?;
        drop(st);
        for g in gone {
            self.drop_feed(g);
        }
        Ok(())
    }

    pub fn account(&self, id: AccountId) -> Result<AccountInfo, StoreError> {
        let st = self.read();
        Ok(account_info(Self::account_of(&st, id)?))
    }

    pub fn find_account(&self, address: &str) -> Result<Option<AccountInfo>, StoreError> {
        let Ok(addr) = normalize_address(address) else {
            return Ok(None);
        };
        let st = self.read();
        Ok(st
            .addr
            .get(&address_key(&addr))
            .and_then(|id| st.accounts.get(id))
            .map(account_info))
    }

    pub fn list_accounts(&self) -> Result<Vec<AccountInfo>, StoreError> {
        let st = self.read();
        Ok(st.accounts.values().map(account_info).collect())
    }

    fn update_account(
        &self,
        id: AccountId,
        f: impl FnOnce(&State, &mut AccountRec) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self.writer();
        let mut rec = Self::account_of(&st, id)?.rec.clone();
        f(&st, &mut rec)?;
        self.commit(&mut st, vec![Mut::PutAccount(rec)])
    }

    pub fn add_alias(&self, id: AccountId, alias: &str) -> Result<(), StoreError> {
        let alias = normalize_address(alias)?;
        let max = self.cfg.limits.max_aliases;
        self.update_account(id, |st, rec| {
            if st.addr.contains_key(&address_key(&alias)) {
                return Err(StoreError::AddressInUse(alias.clone()));
            }
            if rec.aliases.len() >= max {
                return Err(StoreError::InvalidArgument(format!(
                    "at most {max} aliases per account"
                )));
            }
            rec.aliases.push(alias);
            Ok(())
        })
    }

    pub fn remove_alias(&self, id: AccountId, alias: &str) -> Result<(), StoreError> {
        let key = address_key(&normalize_address(alias)?);
        self.update_account(id, |_, rec| {
            let before = rec.aliases.len();
            rec.aliases.retain(|a| address_key(a) != key);
            if rec.aliases.len() == before {
                return Err(StoreError::NotFound(format!("alias {alias}")));
            }
            Ok(())
        })
    }

    pub fn set_password_hash(&self, id: AccountId, hash: Option<String>) -> Result<(), StoreError> {
        self.update_account(id, |_, rec| {
            rec.password = hash;
            Ok(())
        })
    }

    pub fn set_access(&self, id: AccountId, access: ProtocolAccess) -> Result<(), StoreError> {
        self.update_account(id, |_, rec| {
            rec.access = access;
            Ok(())
        })
    }

    pub fn set_quota(&self, id: AccountId, quota: Quota) -> Result<(), StoreError> {
        self.update_account(id, |_, rec| {
            rec.quota = quota;
            Ok(())
        })
    }

    pub fn quota_usage(&self, id: AccountId) -> Result<QuotaUsage, StoreError> {
        let st = self.read();
        let a = Self::account_of(&st, id)?;
        Ok(QuotaUsage {
            bytes: a.usage_bytes,
            messages: a.usage_msgs,
            quota: a.rec.quota,
        })
    }

    pub fn add_app_password(
        &self,
        id: AccountId,
        name: &str,
        hash: String,
    ) -> Result<(), StoreError> {
        let max = self.cfg.limits.max_app_passwords;
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(StoreError::InvalidArgument(
                "app password name: 1 to 100 characters, no control characters".into(),
            ));
        }
        self.update_account(id, |_, rec| {
            if rec.app_passwords.iter().any(|p| p.name == name) {
                return Err(StoreError::InvalidArgument(format!(
                    "an app password named {name:?} already exists"
                )));
            }
            if rec.app_passwords.len() >= max {
                return Err(StoreError::InvalidArgument(format!(
                    "at most {max} app passwords per account"
                )));
            }
            rec.app_passwords.push(AppPw {
                name: name.to_string(),
                hash,
                created: Timestamp::now().0,
                last_used: None,
            });
            Ok(())
        })
    }

    pub fn revoke_app_password(&self, id: AccountId, name: &str) -> Result<(), StoreError> {
        self.update_account(id, |_, rec| {
            let before = rec.app_passwords.len();
            rec.app_passwords.retain(|p| p.name != name);
            if before == rec.app_passwords.len() {
                return Err(StoreError::NotFound(format!("app password {name:?}")));
            }
            Ok(())
        })
    }

    pub fn list_app_passwords(&self, id: AccountId) -> Result<Vec<AppPasswordInfo>, StoreError> {
        let st = self.read();
        Ok(Self::account_of(&st, id)?
            .rec
            .app_passwords
            .iter()
            .map(|p| AppPasswordInfo {
                name: p.name.clone(),
                created: Timestamp(p.created),
                last_used: p.last_used.map(Timestamp),
            })
            .collect())
    }

    pub fn set_plaintext_secret(
        &self,
        id: AccountId,
        secret: Option<String>,
    ) -> Result<(), StoreError> {
        let mut st = self.writer();
        Self::account_of(&st, id)?;
        self.commit(&mut st, vec![Mut::Plaintext(id.0, secret)])
    }

    pub fn plaintext_secret(&self, id: AccountId) -> Result<Option<PlaintextSecret>, StoreError> {
        let st = self.read();
        Ok(Self::account_of(&st, id)?
            .plaintext
            .clone()
            .map(PlaintextSecret))
    }

    /// The account and hashes to check a login against.
    #[allow(clippy::type_complexity)]
    pub fn login_candidates(
        &self,
        address: &str,
    ) -> Option<(AccountInfo, Option<String>, Vec<(String, String)>)> {
        let addr = normalize_address(address).ok()?;
        let st = self.read();
        let a = st
            .addr
            .get(&address_key(&addr))
            .and_then(|id| st.accounts.get(id))?;
        Some((
            account_info(a),
            a.rec.password.clone(),
            a.rec
                .app_passwords
                .iter()
                .map(|p| (p.name.clone(), p.hash.clone()))
                .collect(),
        ))
    }

    /// Records a successful app-password login (not fsync'd: losing it in a crash is fine).
    pub fn touch_app_password(&self, id: AccountId, name: &str) -> Result<(), StoreError> {
        let mut st = self.writer();
        let mut rec = Self::account_of(&st, id)?.rec.clone();
        if let Some(p) = rec.app_passwords.iter_mut().find(|p| p.name == name) {
            p.last_used = Some(Timestamp::now().0);
        }
        self.commit_with(&mut st, vec![Mut::PutAccount(rec)], false)
    }

    // ---------------- settings ----------------

    fn check_scope(st: &State, scope: &SettingsScope) -> Result<(), StoreError> {
        match scope {
            SettingsScope::Account(a) => Self::account_of(st, *a).map(|_| ()),
            SettingsScope::Domain(d) => {
                if d.is_empty() || d.len() > 255 || d.chars().any(|c| c.is_control()) {
                    Err(StoreError::InvalidArgument(format!("invalid domain {d:?}")))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub fn get_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let st = self.read();
        Ok(st
            .settings
            .get(&(scope_key(scope), key.to_string()))
            .cloned())
    }

    pub fn put_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
            return Err(StoreError::InvalidArgument(
                "setting key: 1 to 255 characters, no control characters".into(),
            ));
        }
        if let Some(v) = &value
            && v.len() > self.cfg.limits.max_setting_size
        {
            return Err(StoreError::InvalidArgument(format!(
                "setting value of {} bytes is over the limit of {}",
                v.len(),
                self.cfg.limits.max_setting_size
            )));
        }
        let mut st = self.writer();
        Self::check_scope(&st, scope)?;
        self.commit(
            &mut st,
            vec![Mut::Setting {
                scope: scope_key(scope),
                key: key.to_string(),
                value,
            }],
        )
    }

    pub fn list_settings(&self, scope: &SettingsScope) -> Result<Vec<String>, StoreError> {
        let st = self.read();
        let s = scope_key(scope);
        Ok(st
            .settings
            .keys()
            .filter(|(sc, _)| *sc == s)
            .map(|(_, k)| k.clone())
            .collect())
    }

    // ---------------- mailboxes ----------------

    fn mailbox_by_name<'a>(
        &self,
        st: &'a State,
        account: AccountId,
        name: &str,
    ) -> Result<&'a MailboxState, StoreError> {
        let name = validate_mailbox_name(name, &self.cfg.limits)?;
        let a = Self::account_of(st, account)?;
        a.mailboxes
            .get(&name)
            .and_then(|id| st.mailboxes.get(id))
            .ok_or(StoreError::NoSuchMailbox(name))
    }

    pub fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        opts: CreateMailbox,
    ) -> Result<MailboxInfo, StoreError> {
        let name = validate_mailbox_name(name, &self.cfg.limits)?;
        let mut st = self.writer();
        let a = Self::account_of(&st, account)?;
        if a.mailboxes.contains_key(&name) {
            return Err(StoreError::MailboxExists(name));
        }
        if a.mailboxes.len() >= self.cfg.limits.max_mailboxes {
            return Err(StoreError::NotAllowed(format!(
                "at most {} mailboxes per account",
                self.cfg.limits.max_mailboxes
            )));
        }
        if opts.uidvalidity == Some(0) {
            return Err(StoreError::InvalidArgument(
                "UIDVALIDITY must not be 0".into(),
            ));
        }
        let id = Ids::next(&self.ids.mailbox);
        let rec = MailboxRec {
            id,
            account: account.0,
            name,
            uidvalidity: opts
                .uidvalidity
                .unwrap_or_else(|| self.ids.new_uidvalidity()),
            uidnext: 1,
            highest_modseq: 1,
            special_use: opts.special_use,
            subscribed: opts.subscribe,
            tomb_floor: 0,
        };
        self.commit(&mut st, vec![Mut::PutMailbox(rec)])?;
        st.mailboxes
            .get(&id)
            .map(MailboxState::info)
            .ok_or_else(|| StoreError::NoSuchMailbox(id.to_string()))
    }

    pub fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let from = validate_mailbox_name(from, &self.cfg.limits)?;
        let to = validate_mailbox_name(to, &self.cfg.limits)?;
        let mut st = self.writer();
        let a = Self::account_of(&st, account)?;
        if from == "INBOX" {
            // RFC 9051 6.3.6: move every message of INBOX to a new mailbox; INBOX stays
            // (empty) and its children are not renamed.
            if a.mailboxes.contains_key(&to) {
                return Err(StoreError::MailboxExists(to));
            }
            let inbox = a
                .mailboxes
                .get("INBOX")
                .copied()
                .ok_or_else(|| StoreError::NoSuchMailbox("INBOX".into()))?;
            drop(st);
            let created = self.create_mailbox(account, &to, CreateMailbox::default())?;
            let from_ref = MailboxRef {
                account,
                mailbox: MailboxId(inbox),
            };
            self.copy(from_ref, &UidSet::all(), created.mailbox, true)?;
            return Ok(());
        }
        if !a.mailboxes.contains_key(&from) {
            return Err(StoreError::NoSuchMailbox(from));
        }
        if a.mailboxes.contains_key(&to) {
            return Err(StoreError::MailboxExists(to));
        }
        if to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(StoreError::NotAllowed(format!(
                "cannot rename {from} into its own child {to}"
            )));
        }
        let child_prefix = format!("{from}{DELIMITER}");
        let mut muts = Vec::new();
        for (n, id) in &a.mailboxes {
            let new_name = if *n == from {
                to.clone()
            } else if let Some(rest) = n.strip_prefix(&child_prefix) {
                format!("{to}{DELIMITER}{rest}")
            } else {
                continue;
            };
            let new_name = validate_mailbox_name(&new_name, &self.cfg.limits)?;
            if new_name != to && a.mailboxes.contains_key(&new_name) {
                return Err(StoreError::MailboxExists(new_name));
            }
            if let Some(m) = st.mailboxes.get(id) {
                let mut rec = m.rec.clone();
                rec.name = new_name;
                muts.push(Mut::PutMailbox(rec));
            }
        }
        // Remove all old names first so a chain of renames cannot collide in the map.
        self.commit(&mut st, muts)
    }

    pub fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<(), StoreError> {
        let mut st = self.writer();
        let m = self.mailbox_by_name(&st, account, name)?;
        if m.rec.name == "INBOX" {
            return Err(StoreError::NotAllowed("INBOX cannot be deleted".into()));
        }
        let id = m.rec.id;
        let muts = vec![Mut::DelMailbox {
            id,
            store_ids: m.msgs.iter().map(|e| e.store_id).collect(),
        }];
        self.commit(&mut st, muts)?;
        drop(st);
        self.drop_feed(id);
        Ok(())
    }

    fn update_mailbox(
        &self,
        account: AccountId,
        name: &str,
        f: impl FnOnce(&mut MailboxRec),
    ) -> Result<(), StoreError> {
        let mut st = self.writer();
        let mut rec = self.mailbox_by_name(&st, account, name)?.rec.clone();
        f(&mut rec);
        self.commit(&mut st, vec![Mut::PutMailbox(rec)])
    }

    pub fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        sub: bool,
    ) -> Result<(), StoreError> {
        self.update_mailbox(account, name, |r| r.subscribed = sub)
    }

    pub fn set_special_use(
        &self,
        account: AccountId,
        name: &str,
        su: Option<SpecialUse>,
    ) -> Result<(), StoreError> {
        self.update_mailbox(account, name, |r| r.special_use = su)
    }

    pub fn list_mailboxes(&self, account: AccountId) -> Result<Vec<MailboxInfo>, StoreError> {
        let st = self.read();
        let a = Self::account_of(&st, account)?;
        Ok(a.mailboxes
            .values()
            .filter_map(|id| st.mailboxes.get(id))
            .map(MailboxState::info)
            .collect())
    }

    pub fn mailbox(&self, account: AccountId, name: &str) -> Result<MailboxInfo, StoreError> {
        let st = self.read();
        Ok(self.mailbox_by_name(&st, account, name)?.info())
    }

    pub fn mailbox_status(&self, r: MailboxRef) -> Result<MailboxInfo, StoreError> {
        let st = self.read();
        Ok(mailbox(&st, r)?.info())
    }

    // ---------------- messages ----------------

    pub fn check_append_target(
        &self,
        r: MailboxRef,
        opts: &AppendOptions,
    ) -> Result<(), StoreError> {
        let st = self.read();
        let m = mailbox(&st, r)?;
        for k in opts.flags.keywords() {
            validate_keyword(k, &self.cfg.limits)?;
        }
        if opts.flags.keywords().len() > self.cfg.limits.max_keywords {
            return Err(StoreError::InvalidArgument(format!(
                "at most {} keywords per message",
                self.cfg.limits.max_keywords
            )));
        }
        if let Some(u) = &opts.uidl {
            validate_uidl(u)?;
        }
        if let Some(uid) = opts.uid
            && (uid == 0 || uid < m.rec.uidnext || uid == u32::MAX)
        {
            return Err(StoreError::InvalidArgument(format!(
                "UID {uid} cannot be used: it must be at least UIDNEXT ({}) and below 4294967295",
                m.rec.uidnext
            )));
        }
        Ok(())
    }

    /// Validates and commits an append. On the disk backend concurrent appends are
    /// grouped: the first caller to find no commit in progress becomes the leader and
    /// commits every queued append in one index transaction (one fsync for all), the others
    /// wait for their result.
    pub fn commit_append(
        &self,
        r: MailboxRef,
        opts: AppendOptions,
        p: Prepared,
    ) -> Result<AppendOutcome, StoreError> {
        let limit = self.cfg.limits.max_message_size.min(u64::from(u32::MAX));
        validate_message(&p.head, p.size, limit)?;
        self.check_append_target(r, &opts)?;
        let job = Job { r, opts, p };
        if let Backend::Memory(_) = &self.backend {
            return self
                .commit_batch(vec![job])
                .pop()
                .unwrap_or_else(|| Err(StoreError::Task("empty batch".into())));
        }
        let mut q = lock(&self.group);
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, job));
        loop {
            if let Some(res) = q.results.remove(&ticket) {
                return res;
            }
            if !q.leader {
                q.leader = true;
                let batch = std::mem::take(&mut q.pending);
                drop(q);
                let (tickets, jobs): (Vec<u64>, Vec<Job>) = batch.into_iter().unzip();
                let results = self.commit_batch(jobs);
                q = lock(&self.group);
                q.leader = false;
                for (t, r) in tickets.into_iter().zip(results) {
                    q.results.insert(t, r);
                }
                self.group_cv.notify_all();
                continue;
            }
            q = self
                .group_cv
                .wait(q)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Commits a batch of appends in one transaction; one result per job, in order.
    fn commit_batch(&self, jobs: Vec<Job>) -> Vec<Result<AppendOutcome, StoreError>> {
        let mut st = self.writer();
        let now = Timestamp::now();
        // Per mailbox: the record as updated by this batch and the UIDLs it takes.
        let mut touched: HashMap<u64, (MailboxRec, Vec<String>)> = HashMap::new();
        let mut usage: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut planned: Vec<Result<(u64, NewMsg, AppendOutcome), StoreError>> = Vec::new();
        for job in jobs {
            let Job { r, opts, p } = job;
            let res = (|| {
                let m = mailbox(&st, r)?;
                let a = Self::account_of(&st, r.account)?;
                let (ub, uc) = usage.get(&a.rec.id).copied().unwrap_or((0, 0));
                check_quota(a, ub + p.size, uc + 1)?;
                let (rec, taken) = touched
                    .entry(m.rec.id)
                    .or_insert_with(|| (m.rec.clone(), Vec::new()));
                let uid = match opts.uid {
                    Some(u) if u >= rec.uidnext => u,
                    Some(u) => {
                        return Err(StoreError::InvalidArgument(format!(
                            "UID {u} is below UIDNEXT {}",
                            rec.uidnext
                        )));
                    }
                    None => rec.uidnext,
                };
                if uid == u32::MAX {
                    return Err(StoreError::NotAllowed(
                        "the mailbox has used every UID; recreate it with a new UIDVALIDITY".into(),
                    ));
                }
                if let Some(u) = &opts.uidl
                    && (!m.uidl_free(u, uid) || taken.contains(u))
                {
                    return Err(StoreError::InvalidArgument(format!(
                        "the UIDL {u:?} is already used in this mailbox"
                    )));
                }
                // All checks passed: take the UID and MODSEQ.
                let modseq = rec.highest_modseq + 1;
                rec.uidnext = uid + 1;
                rec.highest_modseq = modseq;
                if let Some(u) = &opts.uidl {
                    taken.push(u.clone());
                }
                usage.insert(a.rec.id, (ub + p.size, uc + 1));
                let entry = Entry {
                    uid,
                    size: u32::try_from(p.size).unwrap_or(u32::MAX),
                    modseq,
                    store_id: p.store_id,
                    internal_date: opts.internal_date.unwrap_or(now).0,
                    flags: opts.flags.system.bits(),
                    kw: 0,
                };
                let cold = Cold {
                    received: opts.received.unwrap_or(now).0,
                    origin: opts.origin,
                    uidl: opts.uidl,
                    message_id: extract_message_id(&p.head),
                    digest: Some(p.digest),
                };
                let out = AppendOutcome {
                    uidvalidity: rec.uidvalidity,
                    uid,
                    modseq,
                    size: p.size,
                };
                let msg = NewMsg {
                    entry,
                    keywords: Arc::from(opts.flags.keywords().to_vec()),
                    cold,
                    body: p.body,
                };
                Ok((m.rec.id, msg, out))
            })();
            planned.push(res);
        }
        let mut muts = Vec::new();
        for (mbx, msg, _) in planned.iter().flatten() {
            muts.push(Mut::PutMsgs {
                mbx: *mbx,
                msgs: vec![msg.clone()],
            });
        }
        if muts.is_empty() {
            return planned.into_iter().map(|r| r.map(|x| x.2)).collect();
        }
        for (id, (rec, _)) in touched {
            if st.mailboxes.get(&id).is_some_and(|m| m.rec != rec) {
                muts.push(Mut::PutMailbox(rec));
            }
        }
        if let Err(e) = self.commit(&mut st, muts) {
            return planned
                .into_iter()
                .map(|r| r.and_then(|_| Err(duplicate_error(&e))))
                .collect();
        }
        for (mbx, _, out) in planned.iter().flatten() {
            self.notify(
                *mbx,
                vec![ChangeEvent::New {
                    uid: out.uid,
                    modseq: out.modseq,
                }],
            );
        }
        // Release the writer only now, after the events: they go out in MODSEQ order.
        drop(st);
        planned.into_iter().map(|r| r.map(|x| x.2)).collect()
    }

    pub fn new_store_id(&self) -> u64 {
        Ids::next(&self.ids.store)
    }

    pub fn snapshot(&self, r: MailboxRef) -> Result<MailboxSnapshot, StoreError> {
        let st = self.read();
        let m = mailbox(&st, r)?;
        Ok(MailboxSnapshot {
            info: m.info(),
            messages: m
                .msgs
                .iter()
                .map(|e| MessageFlags {
                    uid: e.uid,
                    modseq: e.modseq,
                    flags: m.flags_of(e),
                })
                .collect(),
        })
    }

    pub fn message_meta(
        &self,
        r: MailboxRef,
        set: &UidSet,
    ) -> Result<Vec<MessageMeta>, StoreError> {
        let rows: Vec<(Entry, Flags, String)> = {
            let st = self.read();
            let m = mailbox(&st, r)?;
            m.selected(set)
                .into_iter()
                .map(|e| {
                    let f = m.flags_of(&e);
                    (e, f, m.default_uidl(e.uid))
                })
                .collect()
        };
        let uids: Vec<u32> = rows.iter().map(|(e, _, _)| e.uid).collect();
        let colds = match &self.backend {
            Backend::Memory(mem) => {
                let mem = lock(mem);
                uids.iter()
                    .map(|u| mem.cold.get(&(r.mailbox.0, *u)).cloned())
                    .collect::<Vec<_>>()
            }
            Backend::Disk(d) => d.get_cold(r.mailbox.0, &uids)?,
        };
        Ok(rows
            .into_iter()
            .zip(colds)
            // Every stored message has its row; a missing one was expunged meanwhile.
            .filter_map(|(row, cold)| cold.map(|c| (row, c)))
            .map(|((e, flags, default_uidl), cold)| MessageMeta {
                uid: e.uid,
                modseq: e.modseq,
                flags,
                size: u64::from(e.size),
                internal_date: Timestamp(e.internal_date),
                received: Timestamp(cold.received),
                origin: cold.origin,
                uidl: cold.uidl.unwrap_or(default_uidl),
                message_id: cold.message_id,
                digest: cold.digest,
            })
            .collect())
    }

    pub fn body_loc(&self, r: MailboxRef, uid: u32) -> Result<BodyLoc, StoreError> {
        let st = self.read();
        let m = mailbox(&st, r)?;
        let e = m.entry(uid).ok_or(StoreError::NoSuchMessage(uid))?;
        match &self.backend {
            Backend::Memory(mem) => lock(mem)
                .bodies
                .get(&e.store_id)
                .cloned()
                .map(BodyLoc::Memory)
                .ok_or_else(|| StoreError::Corrupt(format!("body of UID {uid} missing"))),
            Backend::Disk(_) => Ok(BodyLoc::Disk {
                store_id: e.store_id,
                size: u64::from(e.size),
            }),
        }
    }

    pub fn store_flags(
        &self,
        r: MailboxRef,
        set: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsOutcome, StoreError> {
        for k in flags.keywords() {
            validate_keyword(k, &self.cfg.limits)?;
        }
        let mut st = self.writer();
        let m = mailbox(&st, r)?;
        let modseq = m.rec.highest_modseq + 1;
        let mut out = StoreFlagsOutcome::default();
        let mut entries = Vec::new();
        let mut events = Vec::new();
        for e in m.selected(set) {
            if let Some(us) = unchanged_since
                && e.modseq > us
            {
                out.modified.push(e.uid);
                continue;
            }
            let cur = m.flags_of(&e);
            let mut new = match op {
                FlagOp::Replace => Flags::system(flags.system),
                FlagOp::Add => Flags::system(cur.system.union(flags.system)),
                FlagOp::Remove => Flags::system(cur.system.difference(flags.system)),
            };
            match op {
                FlagOp::Replace => {
                    for k in flags.keywords() {
                        new.insert_keyword(k.clone());
                    }
                }
                FlagOp::Add => {
                    for k in cur.keywords().iter().chain(flags.keywords()) {
                        new.insert_keyword(k.clone());
                    }
                }
                FlagOp::Remove => {
                    for k in cur.keywords() {
                        if !flags.has_keyword(k) {
                            new.insert_keyword(k.clone());
                        }
                    }
                }
            }
            if new.keywords().len() > self.cfg.limits.max_keywords {
                return Err(StoreError::InvalidArgument(format!(
                    "at most {} keywords per message",
                    self.cfg.limits.max_keywords
                )));
            }
            if new == cur {
                out.updated.push(MessageFlags {
                    uid: e.uid,
                    modseq: e.modseq,
                    flags: cur,
                });
                continue;
            }
            let mut ne = e;
            ne.flags = new.system.bits();
            ne.modseq = modseq;
            entries.push((ne, Arc::<[String]>::from(new.keywords().to_vec())));
            events.push(ChangeEvent::FlagsChanged {
                uid: e.uid,
                flags: new.clone(),
                modseq,
            });
            out.updated.push(MessageFlags {
                uid: e.uid,
                modseq,
                flags: new,
            });
        }
        if !entries.is_empty() {
            let mut rec = m.rec.clone();
            rec.highest_modseq = modseq;
            self.commit(
                &mut st,
                vec![
                    Mut::SetFlags {
                        mbx: r.mailbox.0,
                        entries,
                    },
                    Mut::PutMailbox(rec),
                ],
            )?;
        }
        self.notify(r.mailbox.0, events);
        // Release the writer only now, after the events: they go out in MODSEQ order.
        drop(st);
        Ok(out)
    }

    pub fn copy(
        &self,
        from: MailboxRef,
        set: &UidSet,
        to: MailboxRef,
        is_move: bool,
    ) -> Result<CopyOutcome, StoreError> {
        if from.account != to.account {
            return Err(StoreError::NotAllowed(
                "messages can only be copied between mailboxes of one account".into(),
            ));
        }
        let mut st = self.writer();
        let src = mailbox(&st, from)?;
        let dst = mailbox(&st, to)?;
        if from.mailbox == to.mailbox && is_move {
            return Err(StoreError::NotAllowed(
                "cannot move messages into the mailbox they are in".into(),
            ));
        }
        let sel = src.selected(set);
        let a = Self::account_of(&st, to.account)?;
        if !is_move {
            let bytes: u64 = sel.iter().map(|e| u64::from(e.size)).sum();
            check_quota(a, bytes, sel.len() as u64)?;
        }
        let src_uids: Vec<u32> = sel.iter().map(|e| e.uid).collect();
        let colds: Vec<Option<Cold>> = match &self.backend {
            Backend::Memory(mem) => {
                let mem = lock(mem);
                src_uids
                    .iter()
                    .map(|u| mem.cold.get(&(from.mailbox.0, *u)).cloned())
                    .collect()
            }
            Backend::Disk(d) => d.get_cold(from.mailbox.0, &src_uids)?,
        };
        // A move keeps each body where it is, under its store id. A copy duplicates a
        // DiskStore body kept in the index in the transaction, and hard-links a file first.
        let inline = match &self.backend {
            Backend::Memory(_) => HashSet::new(),
            Backend::Disk(_) if is_move => HashSet::new(),
            Backend::Disk(d) => {
                let ids: Vec<u64> = sel.iter().map(|e| e.store_id).collect();
                d.inline_ids(&ids)?
            }
        };
        let dst_modseq = dst.rec.highest_modseq + 1;
        let mut uid = dst.rec.uidnext;
        if u64::from(uid) + sel.len() as u64 >= u64::from(u32::MAX) {
            return Err(StoreError::NotAllowed(
                "the destination has used every UID".into(),
            ));
        }
        let now = Timestamp::now().0;
        let mut msgs = Vec::new();
        let mut mapping = Vec::new();
        let mut links = Vec::new();
        let mut taken: Vec<String> = Vec::new();
        for (e, cold) in sel.iter().zip(colds) {
            let (new_id, body) = if is_move {
                (e.store_id, BodySrc::Stored)
            } else {
                let new_id = self.new_store_id();
                if inline.contains(&e.store_id) {
                    (new_id, BodySrc::CopyInline(e.store_id))
                } else {
                    links.push((e.store_id, new_id));
                    (new_id, BodySrc::CopyOf(e.store_id))
                }
            };
            let mut cold = cold.unwrap_or(Cold {
                received: now,
                origin: Origin::Delivered,
                uidl: None,
                message_id: None,
                digest: None,
            });
            cold.uidl = if is_move {
                let u = src.effective_uidl(e.uid);
                (dst.uidl_free(&u, uid) && !taken.contains(&u)).then_some(u)
            } else {
                None
            };
            if let Some(u) = &cold.uidl {
                taken.push(u.clone());
            }
            if !is_move {
                cold.received = now;
            }
            msgs.push(NewMsg {
                entry: Entry {
                    uid,
                    modseq: dst_modseq,
                    store_id: new_id,
                    ..*e
                },
                keywords: src.kw.get(e.kw),
                cold,
                body,
            });
            mapping.push(UidMapping {
                from: e.uid,
                to: uid,
            });
            uid += 1;
        }
        let mut drec = dst.rec.clone();
        drec.uidnext = uid;
        if !msgs.is_empty() {
            drec.highest_modseq = dst_modseq;
        }
        let uidvalidity = drec.uidvalidity;
        let new_events: Vec<ChangeEvent> = mapping
            .iter()
            .map(|m| ChangeEvent::New {
                uid: m.to,
                modseq: dst_modseq,
            })
            .collect();
        let mut muts = vec![
            Mut::PutMsgs {
                mbx: to.mailbox.0,
                msgs,
            },
            Mut::PutMailbox(drec),
        ];
        let mut src_events = Vec::new();
        if is_move && !sel.is_empty() {
            let modseq = src.rec.highest_modseq + 1;
            let uids: Vec<u32> = sel.iter().map(|e| e.uid).collect();
            let uidls = src
                .uidls
                .iter()
                .filter(|(_, u)| uids.binary_search(u).is_ok())
                .map(|(s, _)| s.clone())
                .collect();
            let mut srec = src.rec.clone();
            srec.highest_modseq = modseq;
            muts.push(Mut::Expunge {
                mbx: from.mailbox.0,
                uids: uids.clone(),
                // The bodies now belong to the destination's messages.
                store_ids: Vec::new(),
                uidls,
                modseq,
            });
            muts.push(Mut::PutMailbox(srec));
            src_events.push(ChangeEvent::Expunged { uids, modseq });
        }
        if mapping.is_empty() {
            return Ok(CopyOutcome {
                uidvalidity,
                mapping,
            });
        }
        if let Backend::Disk(d) = &self.backend {
            d.link_copies(&links)?;
        }
        if let Err(e) = self.commit(&mut st, muts) {
            if let Backend::Disk(d) = &self.backend {
                d.discard_tmp(links.iter().map(|l| l.1));
            }
            return Err(e);
        }
        if let Backend::Disk(d) = &self.backend {
            d.finish_new(links.iter().map(|l| l.1));
        }
        self.notify(to.mailbox.0, new_events);
        self.notify(from.mailbox.0, src_events);
        // Release the writer only now, after the events: they go out in MODSEQ order.
        drop(st);
        Ok(CopyOutcome {
            uidvalidity,
            mapping,
        })
    }

    pub fn expunge(&self, r: MailboxRef, set: &UidSet) -> Result<Vec<u32>, StoreError> {
        let mut st = self.writer();
        let m = mailbox(&st, r)?;
        let sel = m.selected(set);
        if sel.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = m.rec.highest_modseq + 1;
        let uids: Vec<u32> = sel.iter().map(|e| e.uid).collect();
        let uidls = m
            .uidls
            .iter()
            .filter(|(_, u)| uids.binary_search(u).is_ok())
            .map(|(s, _)| s.clone())
            .collect();
        let mut rec = m.rec.clone();
        rec.highest_modseq = modseq;
        let muts = vec![
            Mut::Expunge {
                mbx: r.mailbox.0,
                uids: uids.clone(),
                store_ids: sel.iter().map(|e| e.store_id).collect(),
                uidls,
                modseq,
            },
            Mut::PutMailbox(rec),
        ];
        self.commit(&mut st, muts)?;
        self.notify(
            r.mailbox.0,
            vec![ChangeEvent::Expunged {
                uids: uids.clone(),
                modseq,
            }],
        );
        // Release the writer only now, after the events: they go out in MODSEQ order.
        drop(st);
        Ok(uids)
    }

    pub fn changes_since(&self, r: MailboxRef, since: u64) -> Result<Changes, StoreError> {
        let st = self.read();
        let m = mailbox(&st, r)?;
        let mut vanished: Vec<u32> = m
            .tombs
            .iter()
            .filter(|(_, ms)| *ms > since)
            .map(|(u, _)| *u)
            .collect();
        vanished.sort_unstable();
        vanished.dedup();
        Ok(Changes {
            vanished_complete: since >= m.rec.tomb_floor,
            changed: m
                .msgs
                .iter()
                .filter(|e| e.modseq > since)
                .map(|e| MessageFlags {
                    uid: e.uid,
                    modseq: e.modseq,
                    flags: m.flags_of(e),
                })
                .collect(),
            vanished,
            highest_modseq: m.rec.highest_modseq,
        })
    }

    pub fn purge_tombstones(&self, r: MailboxRef, up_to: u64) -> Result<usize, StoreError> {
        let mut st = self.writer();
        let m = mailbox(&st, r)?;
        let mut uids: Vec<u32> = m
            .tombs
            .iter()
            .filter(|(_, ms)| *ms <= up_to)
            .map(|(u, _)| *u)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let n = uids.len();
        let mut rec = m.rec.clone();
        let floor = up_to.min(rec.highest_modseq);
        if n == 0 && floor <= rec.tomb_floor {
            return Ok(0);
        }
        rec.tomb_floor = rec.tomb_floor.max(floor);
        self.commit(
            &mut st,
            vec![
                Mut::PurgeTombs {
                    mbx: r.mailbox.0,
                    uids,
                },
                Mut::PutMailbox(rec),
            ],
        )?;
        Ok(n)
    }

    /// Bytes of RAM held by the message indexes (entries, keyword tables, tombstones,
    /// custom UIDLs) and the number of messages indexed.
    pub fn index_memory(&self) -> (usize, usize) {
        let st = self.read();
        let mut bytes = 0;
        let mut count = 0;
        for m in st.mailboxes.values() {
            bytes += m.msgs.capacity() * std::mem::size_of::<Entry>()
                + m.kw.heap_bytes()
                + m.tombs.capacity() * 16
                + m.uidls.capacity() * 40
                + m.uidls.keys().map(String::capacity).sum::<usize>()
                + std::mem::size_of::<MailboxState>();
            count += m.msgs.len();
        }
        (bytes, count)
    }
}

fn check_quota(a: &AccountState, bytes: u64, count: u64) -> Result<(), StoreError> {
    if let Some(max) = a.rec.quota.max_bytes {
        let would = a.usage_bytes + bytes;
        if would > max {
            return Err(StoreError::OverQuota {
                resource: "storage",
                would_be: would,
                limit: max,
            });
        }
    }
    if let Some(max) = a.rec.quota.max_messages {
        let would = a.usage_msgs + count;
        if would > max {
            return Err(StoreError::OverQuota {
                resource: "messages",
                would_be: would,
                limit: max,
            });
        }
    }
    Ok(())
}

/// The mailbox, if it exists and belongs to the account.
fn mailbox(st: &State, r: MailboxRef) -> Result<&MailboxState, StoreError> {
    match st.mailboxes.get(&r.mailbox.0) {
        Some(m) if m.rec.account == r.account.0 => Ok(m),
        _ => Err(StoreError::NoSuchMailbox(r.mailbox.to_string())),
    }
}

fn mem_persist(mem: &mut MemData, m: &Mut) {
    match m {
        Mut::PutMsgs { mbx, msgs } => {
            for n in msgs {
                mem.cold.insert((*mbx, n.entry.uid), n.cold.clone());
                let body = match &n.body {
                    BodySrc::Bytes(b) => b.clone(),
                    BodySrc::CopyOf(id) | BodySrc::CopyInline(id) => {
                        mem.bodies.get(id).cloned().unwrap_or_default()
                    }
                    BodySrc::TmpFile => Bytes::new(),
                    BodySrc::Stored => continue,
                };
                mem.bodies.insert(n.entry.store_id, body);
            }
        }
        Mut::Expunge {
            mbx,
            uids,
            store_ids,
            ..
        } => {
            for u in uids {
                mem.cold.remove(&(*mbx, *u));
            }
            for s in store_ids {
                mem.bodies.remove(s);
            }
        }
        Mut::DelMailbox { id, store_ids } => {
            mem.cold.retain(|(m, _), _| m != id);
            for s in store_ids {
                mem.bodies.remove(s);
            }
        }
        _ => {}
    }
}

/// Checks a finished body against the limits (used by both sinks before commit).
pub(crate) fn too_large(size: u64, limit: u64) -> StoreError {
    StoreError::InvalidMessage(InvalidMessage::TooLarge { size, limit })
}
