//! The embedded durable backend: a redb index holding the metadata and the small bodies,
//! and one file per larger body.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::{Dec, Enc};
use crate::engine::{
    AccountRec, AccountState, AppPw, BodySrc, Cold, Entry, Ids, MailboxRec, MailboxState, Mut,
    State,
};
use crate::error::StoreError;
use crate::types::*;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<u64, &[u8]> = TableDefinition::new("accounts");
const SECRETS: TableDefinition<u64, &str> = TableDefinition::new("plaintext_secrets");
const MAILBOXES: TableDefinition<u64, &[u8]> = TableDefinition::new("mailboxes");
const MSGS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("messages");
const COLD: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("message_meta");
const TOMBS: TableDefinition<(u64, u32), u64> = TableDefinition::new("tombstones");
const UIDLS: TableDefinition<(u64, &str), u32> = TableDefinition::new("uidls");
const SETTINGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("settings");
const PENDING_DEL: TableDefinition<u64, ()> = TableDefinition::new("pending_deletes");
/// Bodies kept in the index (see [`StoreConfig::inline_body_max`]), by store id.
const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");

/// Version of the on-disk format (META `format`). Version 2 added `bodies`; a version 1
/// store is upgraded on open (it only gains the empty table), and a version 2 store is
/// refused by programs that only know version 1 instead of looking for files that are not
/// there.
pub(crate) const FORMAT_VERSION: u64 = 2;

/// The disk half of a `DiskStore`.
pub(crate) struct Disk {
    pub dir: PathBuf,
    db: Database,
    /// Store ids whose files are gone; their `pending_deletes` rows are removed by the
    /// next write transaction.
    pending_clear: Arc<Mutex<Vec<u64>>>,
    /// Background thread that unlinks the files of expunged messages (after the expunge
    /// is committed), so EXPUNGE does not wait for thousands of unlinks.
    deleter: Mutex<Option<mpsc::Sender<Vec<u64>>>>,
    deleter_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Finish pending unlinks before the database lock is released.
        drop(lock(&self.deleter).take());
        if let Some(t) = lock(&self.deleter_thread).take() {
            let _ = t.join();
        }
    }
}

fn remove_body(dir: &Path, id: u64) {
    // msg/ first, then tmp/ (not moved yet), then msg/ again (moved in between).
    if fs::remove_file(msg_path(dir, id)).is_err() && fs::remove_file(tmp_path(dir, id)).is_err() {
        let _ = fs::remove_file(msg_path(dir, id));
    }
}

fn msg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join("msg")
        .join(format!("{:02x}", id & 0xff))
        .join(format!("{id:016x}"))
}

fn tmp_path(dir: &Path, id: u64) -> PathBuf {
    dir.join("tmp").join(format!("{id:016x}"))
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk").field("dir", &self.dir).finish()
    }
}

fn fsync_dir(p: &Path) -> Result<(), StoreError> {
    fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(p, e))
}

pub(crate) fn encode_hot(e: &Entry, kws: &[String]) -> Vec<u8> {
    let mut w = Enc::default();
    w.u64(e.modseq)
        .u32(e.size)
        .u64(e.store_id)
        .i64(e.internal_date)
        .u8(e.flags)
        .u32(u32::try_from(kws.len()).unwrap_or(0));
    for k in kws {
        w.str(k);
    }
    w.0
}

/// Size of the fixed part of a hot record (before the keyword count).
const HOT_FIXED: usize = 8 + 4 + 8 + 8 + 1;

fn decode_hot(uid: u32, b: &[u8]) -> Result<(Entry, Vec<String>), StoreError> {
    let mut d = Dec::new(b);
    let e = Entry {
        uid,
        modseq: d.u64()?,
        size: d.u32()?,
        store_id: d.u64()?,
        internal_date: d.i64()?,
        flags: d.u8()?,
        kw: 0,
    };
    let n = d.u32()?;
    let mut kws = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        kws.push(d.str()?);
    }
    Ok((e, kws))
}

/// The fixed part only (for records without keywords).
fn decode_hot_fixed(uid: u32, b: &[u8]) -> Result<Entry, StoreError> {
    let mut d = Dec::new(b);
    Ok(Entry {
        uid,
        modseq: d.u64()?,
        size: d.u32()?,
        store_id: d.u64()?,
        internal_date: d.i64()?,
        flags: d.u8()?,
        kw: 0,
    })
}

fn encode_cold(c: &Cold) -> Vec<u8> {
    let mut w = Enc::default();
    w.i64(c.received);
    match &c.origin {
        Origin::Delivered => {
            w.u8(0);
        }
        Origin::Imported(s) => {
            w.u8(1).str(s);
        }
    }
    w.opt_str(c.uidl.as_deref())
        .opt_str(c.message_id.as_deref());
    match &c.digest {
        Some(d) => {
            w.u8(1);
            w.0.extend_from_slice(d);
        }
        None => {
            w.u8(0);
        }
    }
    w.0
}

fn decode_cold(b: &[u8]) -> Result<Cold, StoreError> {
    let mut d = Dec::new(b);
    let received = d.i64()?;
    let origin = match d.u8()? {
        0 => Origin::Delivered,
        _ => Origin::Imported(d.str()?),
    };
    let uidl = d.opt_str()?;
    let message_id = d.opt_str()?;
    let digest = if d.u8()? != 0 {
        Some(d.array32()?)
    } else {
        None
    };
    Ok(Cold {
        received,
        origin,
        uidl,
        message_id,
        digest,
    })
}

fn encode_account(a: &AccountRec) -> Vec<u8> {
    let mut w = Enc::default();
    w.str(&a.address)
        .u32(u32::try_from(a.aliases.len()).unwrap_or(0));
    for al in &a.aliases {
        w.str(al);
    }
    w.bool(a.access.pop3)
        .bool(a.access.imap)
        .bool(a.access.smtp)
        .opt_u64(a.quota.max_bytes)
        .opt_u64(a.quota.max_messages)
        .opt_str(a.password.as_deref())
        .u32(u32::try_from(a.app_passwords.len()).unwrap_or(0));
    for p in &a.app_passwords {
        w.str(&p.name)
            .str(&p.hash)
            .i64(p.created)
            .opt_i64(p.last_used);
    }
    w.0
}

fn decode_account(id: u64, b: &[u8]) -> Result<AccountRec, StoreError> {
    let mut d = Dec::new(b);
    let address = d.str()?;
    let n = d.u32()?;
    let mut aliases = Vec::new();
    for _ in 0..n {
        aliases.push(d.str()?);
    }
    let access = ProtocolAccess {
        pop3: d.bool()?,
        imap: d.bool()?,
        smtp: d.bool()?,
    };
    let quota = Quota {
        max_bytes: d.opt_u64()?,
        max_messages: d.opt_u64()?,
    };
    let password = d.opt_str()?;
    let n = d.u32()?;
    let mut app_passwords = Vec::new();
    for _ in 0..n {
        app_passwords.push(AppPw {
            name: d.str()?,
            hash: d.str()?,
            created: d.i64()?,
            last_used: d.opt_i64()?,
        });
    }
    Ok(AccountRec {
        id,
        address,
        aliases,
        access,
        quota,
        password,
        app_passwords,
    })
}

fn encode_mailbox(m: &MailboxRec) -> Vec<u8> {
    let mut w = Enc::default();
    w.u64(m.account)
        .str(&m.name)
        .u32(m.uidvalidity)
        .u32(m.uidnext)
        .u64(m.highest_modseq)
        .u8(m.special_use.map_or(0, SpecialUse::code))
        .bool(m.subscribed)
        .u64(m.tomb_floor);
    w.0
}

fn decode_mailbox(id: u64, b: &[u8]) -> Result<MailboxRec, StoreError> {
    let mut d = Dec::new(b);
    Ok(MailboxRec {
        id,
        account: d.u64()?,
        name: d.str()?,
        uidvalidity: d.u32()?,
        uidnext: d.u32()?,
        highest_modseq: d.u64()?,
        special_use: SpecialUse::from_code(d.u8()?),
        subscribed: d.bool()?,
        tomb_floor: if d.is_empty() { 0 } else { d.u64()? },
    })
}

fn parse_store_id(name: &str) -> Option<u64> {
    if name.len() == 16 {
        u64::from_str_radix(name, 16).ok()
    } else {
        None
    }
}

impl Disk {
    /// Opens (or creates) the data directory, loads the index, and recovers from a crash.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<(Disk, State, Ids), StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let db_path = dir.join("index.redb");
        let db = match Database::builder()
            .set_cache_size(cache_bytes)
            .create(&db_path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Only now, holding the lock, touch the files.
        for sub in ["msg", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        let pending_clear = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<Vec<u64>>();
        let thread = {
            let dir2 = dir.to_path_buf();
            let pending_clear = pending_clear.clone();
            std::thread::Builder::new()
                .name("mailstore-unlink".into())
                .spawn(move || {
                    for batch in rx {
                        for id in &batch {
                            remove_body(&dir2, *id);
                        }
                        lock(&pending_clear).extend(batch);
                    }
                })
                .map_err(|e| StoreError::io(dir, e))?
        };
        let disk = Disk {
            dir: dir.to_path_buf(),
            db,
            pending_clear,
            deleter: Mutex::new(Some(tx)),
            deleter_thread: Mutex::new(Some(thread)),
        };
        let needs_init = {
            let tx = disk.db.begin_read()?;
            match tx.open_table(META) {
                Ok(meta) => match meta.get("format")?.map(|v| v.value()) {
                    Some(FORMAT_VERSION) => false,
                    Some(1) => true,
                    Some(v) => {
                        return Err(StoreError::Corrupt(format!(
                            "{} has format version {v}, this program understands {FORMAT_VERSION}",
                            db_path.display()
                        )));
                    }
                    None => true,
                },
                Err(redb::TableError::TableDoesNotExist(_)) => true,
                Err(e) => return Err(e.into()),
            }
        };
        if needs_init {
            let tx = disk.db.begin_write()?;
            {
                tx.open_table(META)?.insert("format", FORMAT_VERSION)?;
                tx.open_table(ACCOUNTS)?;
                tx.open_table(SECRETS)?;
                tx.open_table(MAILBOXES)?;
                tx.open_table(MSGS)?;
                tx.open_table(COLD)?;
                tx.open_table(TOMBS)?;
                tx.open_table(UIDLS)?;
                tx.open_table(SETTINGS)?;
                tx.open_table(PENDING_DEL)?;
                tx.open_table(BODIES)?;
            }
            tx.commit()?;
        }
        let (state, ids) = disk.load()?;
        disk.recover(&state, &ids)?;
        Ok((disk, state, ids))
    }

    fn load(&self) -> Result<(State, Ids), StoreError> {
        let tx = self.db.begin_read()?;
        let mut st = State::default();
        let ids = Ids::default();
        let meta = tx.open_table(META)?;
        let get = |k: &str| -> Result<u64, StoreError> {
            Ok(meta.get(k)?.map(|v| v.value()).unwrap_or(0))
        };
        ids.account
            .store(get("next_account")?.max(1), Ordering::SeqCst);
        ids.mailbox
            .store(get("next_mailbox")?.max(1), Ordering::SeqCst);
        ids.store.store(get("next_store")?.max(1), Ordering::SeqCst);
        ids.uidvalidity.store(
            u32::try_from(get("last_uidvalidity")?).unwrap_or(u32::MAX),
            Ordering::SeqCst,
        );
        for row in tx.open_table(ACCOUNTS)?.iter()? {
            let (k, v) = row?;
            let rec = decode_account(k.value(), v.value())?;
            st.accounts.insert(
                rec.id,
                AccountState {
                    rec,
                    plaintext: None,
                    mailboxes: Default::default(),
                    usage_bytes: 0,
                    usage_msgs: 0,
                },
            );
        }
        for a in st.accounts.values() {
            for k in std::iter::once(&a.rec.address).chain(a.rec.aliases.iter()) {
                st.addr.insert(crate::name::address_key(k), a.rec.id);
            }
        }
        for row in tx.open_table(SECRETS)?.iter()? {
            let (k, v) = row?;
            if let Some(a) = st.accounts.get_mut(&k.value()) {
                a.plaintext = Some(v.value().to_string());
            }
        }
        for row in tx.open_table(MAILBOXES)?.iter()? {
            let (k, v) = row?;
            let rec = decode_mailbox(k.value(), v.value())?;
            if let Some(a) = st.accounts.get_mut(&rec.account) {
                a.mailboxes.insert(rec.name.clone(), rec.id);
            }
            st.mailboxes.insert(rec.id, MailboxState::new(rec));
        }
        {
            let msgs = tx.open_table(MSGS)?;
            let mut cur: Option<(u64, &mut MailboxState)> = None;
            let mut max_store = 0u64;
            // Keyword sets by their encoded bytes, for the current mailbox: most messages
            // share a few sets, so they are decoded and interned once.
            let mut kw_by_raw: HashMap<Vec<u8>, u32> = HashMap::new();
            for row in msgs.iter()? {
                let (k, v) = row?;
                let (mbx, uid) = k.value();
                let raw = v.value();
                let kw_raw = raw.get(HOT_FIXED..).unwrap_or_default();
                let mut e = if kw_raw == [0, 0, 0, 0] {
                    decode_hot_fixed(uid, raw)?
                } else {
                    decode_hot(uid, raw)?.0
                };
                max_store = max_store.max(e.store_id);
                if cur.as_ref().map(|c| c.0) != Some(mbx) {
                    cur = st.mailboxes.get_mut(&mbx).map(|m| (mbx, m));
                    kw_by_raw.clear();
                }
                let Some((_, m)) = cur.as_mut() else {
                    continue;
                };
                if kw_raw != [0, 0, 0, 0] {
                    e.kw = match kw_by_raw.get(kw_raw) {
                        Some(id) => *id,
                        None => {
                            let kws = decode_hot(uid, raw)?.1;
                            let id = m.kw.intern(&Arc::from(kws));
                            kw_by_raw.insert(kw_raw.to_vec(), id);
                            id
                        }
                    };
                }
                if e.flags & SystemFlags::SEEN.bits() == 0 {
                    m.unseen += 1;
                }
                m.size += u64::from(e.size);
                m.msgs.push(e);
            }
            ids.store
                .fetch_max(max_store.saturating_add(1), Ordering::SeqCst);
        }
        for row in tx.open_table(TOMBS)?.iter()? {
            let (k, v) = row?;
            let (mbx, uid) = k.value();
            if let Some(m) = st.mailboxes.get_mut(&mbx) {
                m.tombs.push((uid, v.value()));
            }
        }
        for m in st.mailboxes.values_mut() {
            m.tombs.sort_by_key(|t| t.1);
        }
        for row in tx.open_table(UIDLS)?.iter()? {
            let (k, v) = row?;
            let (mbx, uidl) = k.value();
            if let Some(m) = st.mailboxes.get_mut(&mbx) {
                m.uidls.insert(uidl.to_string(), v.value());
            }
        }
        for row in tx.open_table(SETTINGS)?.iter()? {
            let (k, v) = row?;
            let (s, key) = k.value();
            st.settings
                .insert((s.to_string(), key.to_string()), v.value().to_vec());
        }
        let usage: Vec<(u64, u64, u64)> = st
            .mailboxes
            .values()
            .map(|m| (m.rec.account, m.size, m.msgs.len() as u64))
            .collect();
        for (acc, bytes, n) in usage {
            if let Some(a) = st.accounts.get_mut(&acc) {
                a.usage_bytes += bytes;
                a.usage_msgs += n;
            }
        }
        Ok((st, ids))
    }

    /// Finishes what a crash interrupted: deletes bodies whose delete was committed,
    /// moves committed bodies still in `tmp/` into place and removes uncommitted ones.
    fn recover(&self, st: &State, ids: &Ids) -> Result<(), StoreError> {
        let pending: Vec<u64> = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(PENDING_DEL)?;
            let mut v = Vec::new();
            for row in t.iter()? {
                v.push(row?.0.value());
            }
            v
        };
        for id in &pending {
            remove_body(&self.dir, *id);
        }
        if !pending.is_empty() {
            lock(&self.pending_clear).extend(pending);
        }
        let tmp = self.dir.join("tmp");
        let entries: Vec<_> = fs::read_dir(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?
            .filter_map(Result::ok)
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let referenced: HashSet<u64> = st
            .mailboxes
            .values()
            .flat_map(|m| m.msgs.iter().map(|e| e.store_id))
            .collect();
        let mut max_seen = 0;
        for ent in entries {
            let name = ent.file_name();
            let id = name.to_str().and_then(parse_store_id);
            match id {
                Some(id) if referenced.contains(&id) => {
                    max_seen = max_seen.max(id);
                    let to = self.msg_path(id);
                    self.ensure_parent(&to)?;
                    fs::rename(ent.path(), &to).map_err(|e| StoreError::io(&to, e))?;
                }
                _ => {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
        ids.store.fetch_max(max_seen + 1, Ordering::SeqCst);
        fsync_dir(&tmp)?;
        Ok(())
    }

    pub fn msg_path(&self, id: u64) -> PathBuf {
        msg_path(&self.dir, id)
    }

    pub fn tmp_path(&self, id: u64) -> PathBuf {
        tmp_path(&self.dir, id)
    }

    /// Creates `tmp/<id>` with `body` and fsyncs it (a body small enough to arrive whole).
    pub fn write_tmp(&self, id: u64, body: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        let path = self.tmp_path(id);
        fs::File::create(&path)
            .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
            .map_err(|e| StoreError::io(&path, e))
    }

    fn ensure_parent(&self, p: &Path) -> Result<(), StoreError> {
        if let Some(parent) = p.parent()
            && !parent.exists()
        {
            fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
            fsync_dir(&self.dir.join("msg"))?;
        }
        Ok(())
    }

    /// Opens a body file wherever it is (`msg/` normally, `tmp/` just after commit).
    pub fn open_body_file(&self, id: u64) -> Result<fs::File, StoreError> {
        let m = self.msg_path(id);
        match fs::File::open(&m) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(StoreError::io(&m, e)),
            Err(_) => {}
        }
        match fs::File::open(self.tmp_path(id)) {
            Ok(f) => Ok(f),
            // Renamed between the two attempts.
            Err(_) => fs::File::open(&m).map_err(|e| StoreError::io(&m, e)),
        }
    }

    /// Reads `len` bytes of body `id` from `offset` in one go (open, seek, read): the path
    /// [`crate::DiskStore`] takes for bodies up to [`crate::INLINE_READ_MAX`]. A file shorter
    /// than the index says is an error (`UnexpectedEof` with the file's path), never a
    /// silently short message.
    pub fn read_body(&self, id: u64, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        use std::io::{Read, Seek};
        let mut f = self.open_body_file(id)?;
        let path = || self.msg_path(id);
        if offset > 0 {
            f.seek(io::SeekFrom::Start(offset))
                .map_err(|e| StoreError::io(path(), e))?;
        }
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)
            .map_err(|e| StoreError::io(path(), e))?;
        Ok(buf)
    }

    /// fsync of `tmp/` so a new body's directory entry is durable before the index commit.
    pub fn sync_tmp_dir(&self) -> Result<(), StoreError> {
        fsync_dir(&self.dir.join("tmp"))
    }

    /// Hard-links existing bodies to `tmp/<new id>` for copies, then fsyncs `tmp/`.
    pub fn link_copies(&self, links: &[(u64, u64)]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        for (i, (old, new)) in links.iter().enumerate() {
            let to = self.tmp_path(*new);
            let res = fs::hard_link(self.msg_path(*old), &to)
                .or_else(|_| fs::hard_link(self.tmp_path(*old), &to))
                .or_else(|_| fs::hard_link(self.msg_path(*old), &to));
            if let Err(e) = res {
                self.discard_tmp(links.iter().take(i).map(|l| l.1));
                return Err(StoreError::io(to, e));
            }
        }
        self.sync_tmp_dir()
    }

    /// Moves committed bodies from `tmp/` to `msg/` (no fsync needed: recovery redoes it).
    pub fn finish_new(&self, ids: impl Iterator<Item = u64>) {
        for id in ids {
            let to = self.msg_path(id);
            let res = self.ensure_parent(&to).and_then(|_| {
                fs::rename(self.tmp_path(id), &to).map_err(|e| StoreError::io(&to, e))
            });
            if let Err(e) = res {
                tracing::warn!("moving message body {id:016x} into place: {e}");
            }
        }
    }

    /// Removes uncommitted bodies from `tmp/`.
    pub fn discard_tmp(&self, ids: impl Iterator<Item = u64>) {
        for id in ids {
            let _ = fs::remove_file(self.tmp_path(id));
        }
    }

    /// Deletes bodies whose removal is committed; their pending-delete rows are cleared by
    /// the next write transaction.
    pub fn delete_bodies(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let sent = lock(&self.deleter)
            .as_ref()
            .is_some_and(|tx| tx.send(ids.to_vec()).is_ok());
        if !sent {
            for id in ids {
                remove_body(&self.dir, *id);
            }
            lock(&self.pending_clear).extend_from_slice(ids);
        }
    }

    /// The body `id` if it is kept in the index, `None` if it has a file.
    pub fn read_inline(&self, id: u64) -> Result<Option<Bytes>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BODIES)?;
        Ok(t.get(id)?.map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// Which of `ids` are kept in the index.
    pub fn inline_ids(&self, ids: &[u64]) -> Result<HashSet<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BODIES)?;
        let mut out = HashSet::new();
        for id in ids {
            if t.get(*id)?.is_some() {
                out.insert(*id);
            }
        }
        Ok(out)
    }

    pub fn get_cold(&self, mbx: u64, uids: &[u32]) -> Result<Vec<Option<Cold>>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(COLD)?;
        let mut out = Vec::with_capacity(uids.len());
        for u in uids {
            out.push(match t.get((mbx, *u))? {
                Some(v) => Some(decode_cold(v.value())?),
                None => None,
            });
        }
        Ok(out)
    }

    /// Writes the mutations in one transaction (fsync'd when `durable`). Returns the store
    /// ids of deleted bodies that have files, to unlink once the commit is done (bodies in
    /// the index went with the transaction).
    pub fn persist(&self, muts: &[Mut], ids: &Ids, durable: bool) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StoreError::Database(e.to_string()))?;
        let mut unlink = Vec::new();
        {
            let mut meta = tx.open_table(META)?;
            let mut accounts = tx.open_table(ACCOUNTS)?;
            let mut secrets = tx.open_table(SECRETS)?;
            let mut mailboxes = tx.open_table(MAILBOXES)?;
            let mut msgs = tx.open_table(MSGS)?;
            let mut cold = tx.open_table(COLD)?;
            let mut tombs = tx.open_table(TOMBS)?;
            let mut uidls = tx.open_table(UIDLS)?;
            let mut settings = tx.open_table(SETTINGS)?;
            let mut pending = tx.open_table(PENDING_DEL)?;
            let mut bodies = tx.open_table(BODIES)?;
            let to_clear: Vec<u64> = std::mem::take(&mut *lock(&self.pending_clear));
            for id in to_clear {
                pending.remove(id)?;
            }
            let [a, m, s, v] = ids.snapshot();
            meta.insert("next_account", a)?;
            meta.insert("next_mailbox", m)?;
            meta.insert("next_store", s)?;
            meta.insert("last_uidvalidity", v)?;
            for mu in muts {
                match mu {
                    Mut::PutAccount(rec) => {
                        accounts.insert(rec.id, encode_account(rec).as_slice())?;
                    }
                    Mut::DelAccount(id) => {
                        accounts.remove(*id)?;
                        secrets.remove(*id)?;
                    }
                    Mut::Plaintext(id, v) => match v {
                        Some(s) => {
                            secrets.insert(*id, s.as_str())?;
                        }
                        None => {
                            secrets.remove(*id)?;
                        }
                    },
                    Mut::PutMailbox(rec) => {
                        mailboxes.insert(rec.id, encode_mailbox(rec).as_slice())?;
                    }
                    Mut::DelMailbox { id, store_ids } => {
                        mailboxes.remove(*id)?;
                        msgs.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)?;
                        cold.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)?;
                        tombs.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)?;
                        let keys: Vec<String> = uidls
                            .range((*id, "")..(id.saturating_add(1), ""))?
                            .filter_map(Result::ok)
                            .map(|(k, _)| k.value().1.to_string())
                            .collect();
                        for k in keys {
                            uidls.remove((*id, k.as_str()))?;
                        }
                        for s in store_ids {
                            if bodies.remove(*s)?.is_none() {
                                pending.insert(*s, ())?;
                                unlink.push(*s);
                            }
                        }
                    }
                    Mut::PutMsgs { mbx, msgs: new } => {
                        for n in new {
                            msgs.insert(
                                (*mbx, n.entry.uid),
                                encode_hot(&n.entry, &n.keywords).as_slice(),
                            )?;
                            cold.insert((*mbx, n.entry.uid), encode_cold(&n.cold).as_slice())?;
                            if let Some(u) = &n.cold.uidl {
                                uidls.insert((*mbx, u.as_str()), n.entry.uid)?;
                            }
                            match &n.body {
                                BodySrc::Bytes(b) => {
                                    bodies.insert(n.entry.store_id, b.as_ref())?;
                                }
                                BodySrc::CopyInline(from) => {
                                    let b = bodies.get(*from)?.map(|v| v.value().to_vec());
                                    let b = b.ok_or_else(|| {
                                        StoreError::Corrupt(format!(
                                            "body {from:016x} is missing from the index"
                                        ))
                                    })?;
                                    bodies.insert(n.entry.store_id, b.as_slice())?;
                                }
                                // The file is in `tmp/` already, or the body is stored
                                // under this id already (a move).
                                BodySrc::TmpFile | BodySrc::CopyOf(_) | BodySrc::Stored => {}
                            }
                        }
                    }
                    Mut::SetFlags { mbx, entries } => {
                        for (e, kws) in entries {
                            msgs.insert((*mbx, e.uid), encode_hot(e, kws).as_slice())?;
                        }
                    }
                    Mut::Expunge {
                        mbx,
                        uids,
                        store_ids,
                        uidls: gone,
                        modseq,
                    } => {
                        for u in uids {
                            msgs.remove((*mbx, *u))?;
                            cold.remove((*mbx, *u))?;
                            tombs.insert((*mbx, *u), *modseq)?;
                        }
                        for u in gone {
                            uidls.remove((*mbx, u.as_str()))?;
                        }
                        for s in store_ids {
                            if bodies.remove(*s)?.is_none() {
                                pending.insert(*s, ())?;
                                unlink.push(*s);
                            }
                        }
                    }
                    Mut::PurgeTombs { mbx, uids } => {
                        for u in uids {
                            tombs.remove((*mbx, *u))?;
                        }
                    }
                    Mut::Setting { scope, key, value } => match value {
                        Some(v) => {
                            settings.insert((scope.as_str(), key.as_str()), v.as_slice())?;
                        }
                        None => {
                            settings.remove((scope.as_str(), key.as_str()))?;
                        }
                    },
                }
            }
        }
        tx.commit()?;
        Ok(unlink)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,20}"
    }

    proptest! {
        #[test]
        fn hot_record_round_trip(uid in 1u32.., modseq: u64, size: u32, store_id: u64, date: i64,
                                 flags in 0u8..32, kws in proptest::collection::vec(text(), 0..5)) {
            let e = Entry { uid, size, modseq, store_id, internal_date: date, flags, kw: 0 };
            let (d, k) = decode_hot(uid, &encode_hot(&e, &kws)).unwrap();
            prop_assert_eq!(d, e);
            prop_assert_eq!(k, kws);
        }

        #[test]
        fn cold_record_round_trip(received: i64, imported in proptest::option::of(text()),
                                  uidl in proptest::option::of(text()), mid in proptest::option::of(text()),
                                  digest in proptest::option::of(any::<[u8; 32]>())) {
            let c = Cold {
                received,
                origin: imported.map_or(Origin::Delivered, Origin::Imported),
                uidl,
                message_id: mid,
                digest,
            };
            prop_assert_eq!(decode_cold(&encode_cold(&c)).unwrap(), c);
        }

        #[test]
        fn account_record_round_trip(id: u64, address in text(), aliases in proptest::collection::vec(text(), 0..3),
                                     pop3: bool, imap: bool, smtp: bool, mb in proptest::option::of(any::<u64>()),
                                     mm in proptest::option::of(any::<u64>()), pw in proptest::option::of(text()),
                                     apps in proptest::collection::vec((text(), text(), any::<i64>(), proptest::option::of(any::<i64>())), 0..3)) {
            let a = AccountRec {
                id,
                address,
                aliases,
                access: ProtocolAccess { pop3, imap, smtp },
                quota: Quota { max_bytes: mb, max_messages: mm },
                password: pw,
                app_passwords: apps
                    .into_iter()
                    .map(|(name, hash, created, last_used)| AppPw { name, hash, created, last_used })
                    .collect(),
            };
            prop_assert_eq!(decode_account(id, &encode_account(&a)).unwrap(), a);
        }

        #[test]
        fn mailbox_record_round_trip(id: u64, account: u64, name in text(), uidvalidity: u32, uidnext: u32,
                                     highest_modseq: u64, su in 0u8..8, subscribed: bool) {
            let m = MailboxRec {
                id, account, name, uidvalidity, uidnext, highest_modseq,
                special_use: SpecialUse::from_code(su),
                subscribed,
                tomb_floor: highest_modseq / 2,
            };
            prop_assert_eq!(decode_mailbox(id, &encode_mailbox(&m)).unwrap(), m);
        }

        #[test]
        fn truncated_records_are_errors(cut in 0usize..40) {
            let e = Entry { uid: 1, size: 2, modseq: 3, store_id: 4, internal_date: 5, flags: 6, kw: 0 };
            let bytes = encode_hot(&e, &["kw".to_string()]);
            if cut < bytes.len() {
                prop_assert!(decode_hot(1, &bytes[..cut]).is_err());
            }
        }
    }
}
