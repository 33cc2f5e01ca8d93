//! A small in-memory `Backend` for the adapter tests: a few mailboxes, messages with flags,
//! UIDs and MODSEQ, per-session views (sequence numbers), and a change signal for IDLE.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use imap_proto::server::{Status, Unsolicited};
use imap_proto::tokio::{
    Backend, Expunged, FetchResult, MoveResult, SearchResult, SelectInfo, Session, StoreRequest,
    StoreResult,
};
use imap_proto::types::{
    Code, DateTime, FetchAttr, FetchItem, FetchModifiers, Flag, ListData, ListPattern, Mailbox,
    MailboxAttr, SearchKey, SectionText, SelectParams, SequenceSet, StatusAttr, StatusItem,
    StoreKind,
};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Msg {
    pub uid: u32,
    pub flags: Vec<Flag>,
    pub modseq: u64,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct Mbox {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub msgs: Vec<Msg>,
    pub subscribed: bool,
    pub special: Option<MailboxAttr>,
}

#[derive(Debug, Default)]
pub struct Store {
    pub mailboxes: BTreeMap<String, Mbox>,
    pub modseq: u64,
}

impl Store {
    fn mbox(&mut self, name: &str) -> Option<&mut Mbox> {
        let key = canon(name);
        self.mailboxes.get_mut(&key)
    }

    pub fn add_message(&mut self, mailbox: &str, body: &[u8], flags: Vec<Flag>) -> u32 {
        self.modseq += 1;
        let modseq = self.modseq;
        let m = self.mbox(mailbox).expect("mailbox");
        let uid = m.uid_next;
        m.uid_next += 1;
        m.msgs.push(Msg {
            uid,
            flags,
            modseq,
            body: Bytes::copy_from_slice(body),
        });
        uid
    }
}

fn canon(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name.to_string()
    }
}

/// Shared accounts and mail (one user, `user` / `pass`).
#[derive(Clone)]
pub struct MemBackend {
    pub store: Arc<Mutex<Store>>,
    changed: Arc<watch::Sender<u64>>,
}

impl MemBackend {
    pub fn new() -> Self {
        let mut store = Store::default();
        for (name, special) in [
            ("INBOX", None),
            ("Sent", Some(MailboxAttr::Sent)),
            ("Trash", Some(MailboxAttr::Trash)),
        ] {
            store.mailboxes.insert(
                name.into(),
                Mbox {
                    uid_validity: 1_700_000_000,
                    uid_next: 1,
                    msgs: Vec::new(),
                    subscribed: true,
                    special,
                },
            );
        }
        store.add_message(
            "INBOX",
            b"From: alice@example.org\r\nSubject: first\r\n\r\nHello one\r\n",
            vec![],
        );
        store.add_message(
            "INBOX",
            b"From: bob@example.org\r\nSubject: second\r\n\r\nHello two\r\n",
            vec![Flag::Seen],
        );
        store.add_message(
            "INBOX",
            b"From: carol@example.org\r\nSubject: third\r\n\r\nHello three\r\n",
            vec![Flag::Flagged],
        );
        let (tx, _) = watch::channel(0);
        Self {
            store: Arc::new(Mutex::new(store)),
            changed: Arc::new(tx),
        }
    }

    /// Adds a message as another client would, and wakes idling sessions.
    pub fn deliver(&self, mailbox: &str, body: &[u8]) -> u32 {
        let uid = self
            .store
            .lock()
            .unwrap()
            .add_message(mailbox, body, vec![]);
        self.changed.send_modify(|v| *v += 1);
        uid
    }
}

impl MemBackend {
    fn session(&self) -> MemSession {
        MemSession {
            store: self.store.clone(),
            changed: self.changed.clone(),
            rx: self.changed.subscribe(),
            view: None,
            append: None,
            condstore: false,
        }
    }
}

impl Backend for MemBackend {
    type Session = MemSession;

    async fn scram_secret(&self, username: &str) -> Option<mail_sasl::ScramSecret> {
        (username == "user")
            .then(|| mail_sasl::ScramSecret::derive(b"pass", b"fixed-test-salt", 4096))
    }

    async fn open_session(&self, username: &str) -> Result<MemSession, Status> {
        if username == "user" {
            Ok(self.session())
        } else {
            Err(Status::no("Unknown user"))
        }
    }

    async fn login(&self, username: &str, password: &[u8]) -> Result<MemSession, Status> {
        if username == "user" && password == b"pass" {
            Ok(self.session())
        } else {
            Err(Status::no("Invalid credentials").with_code("AUTHENTICATIONFAILED"))
        }
    }
}

struct View {
    name: String,
    read_only: bool,
    uids: Vec<u32>,
    known_modseq: u64,
}

pub struct MemSession {
    store: Arc<Mutex<Store>>,
    changed: Arc<watch::Sender<u64>>,
    rx: watch::Receiver<u64>,
    view: Option<View>,
    append: Option<(String, Vec<Flag>, Vec<u8>)>,
    condstore: bool,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn no_such() -> Status {
    Status::no("No such mailbox").with_code("NONEXISTENT")
}

fn matches_pattern(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'%', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((c, rest)) => {
                n.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &n[1..])
            }
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

impl MemSession {
    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// (seq, uid) pairs of the view selected by a set.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<(u32, u32)> {
        let Some(view) = &self.view else {
            return Vec::new();
        };
        let largest = if uid {
            view.uids.last().copied().unwrap_or(0)
        } else {
            view.uids.len() as u32
        };
        view.uids
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                let n = if uid { **u } else { *i as u32 + 1 };
                largest > 0 && set.contains(n, largest)
            })
            .map(|(i, u)| (i as u32 + 1, *u))
            .collect()
    }

    fn search_matches(
        key: &SearchKey,
        seq: u32,
        msg: &Msg,
        largest_seq: u32,
        largest_uid: u32,
    ) -> bool {
        let has = |f: &Flag| msg.flags.contains(f);
        let contains = |needle: &[u8]| {
            let hay = msg.body.to_ascii_lowercase();
            let needle = needle.to_ascii_lowercase();
            needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle.as_slice())
        };
        match key {
            SearchKey::All => true,
            SearchKey::Seen => has(&Flag::Seen),
            SearchKey::Unseen => !has(&Flag::Seen),
            SearchKey::Deleted => has(&Flag::Deleted),
            SearchKey::Undeleted => !has(&Flag::Deleted),
            SearchKey::Flagged => has(&Flag::Flagged),
            SearchKey::Unflagged => !has(&Flag::Flagged),
            SearchKey::Answered => has(&Flag::Answered),
            SearchKey::Unanswered => !has(&Flag::Answered),
            SearchKey::Uid(set) => set.contains(msg.uid, largest_uid),
            SearchKey::SequenceSet(set) => set.contains(seq, largest_seq),
            SearchKey::Not(k) => !Self::search_matches(k, seq, msg, largest_seq, largest_uid),
            SearchKey::Or(a, b) => {
                Self::search_matches(a, seq, msg, largest_seq, largest_uid)
                    || Self::search_matches(b, seq, msg, largest_seq, largest_uid)
            }
            SearchKey::And(keys) => keys
                .iter()
                .all(|k| Self::search_matches(k, seq, msg, largest_seq, largest_uid)),
            SearchKey::Subject(s)
            | SearchKey::From(s)
            | SearchKey::Text(s)
            | SearchKey::Body(s)
            | SearchKey::To(s) => contains(s),
            SearchKey::Larger(n) => msg.body.len() as u64 > *n,
            SearchKey::Smaller(n) => (msg.body.len() as u64) < *n,
            SearchKey::ModSeq { modseq, .. } => msg.modseq >= *modseq,
            _ => true,
        }
    }
}

impl Session for MemSession {
    async fn list(
        &mut self,
        reference: &Mailbox,
        patterns: &[ListPattern],
        subscribed_only: bool,
    ) -> Result<Vec<ListData>, Status> {
        let store = self.store.lock().unwrap();
        let mut out = Vec::new();
        for (name, m) in &store.mailboxes {
            if subscribed_only && !m.subscribed {
                continue;
            }
            let hit = patterns.iter().any(|p| {
                let full = format!("{}{}", reference.as_str(), p.as_str());
                matches_pattern(&full, name)
            });
            if hit {
                let mut attributes = vec![MailboxAttr::HasNoChildren];
                if let Some(s) = &m.special {
                    attributes.push(s.clone());
                }
                out.push(ListData {
                    attributes,
                    delimiter: Some('/'),
                    mailbox: Mailbox::new(name.clone()).unwrap(),
                    extended: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    async fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Vec<StatusAttr>, Status> {
        let mut store = self.store.lock().unwrap();
        let modseq = store.modseq;
        let m = store.mbox(mailbox.as_str()).ok_or_else(no_such)?;
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(match i {
                    StatusItem::Messages => StatusAttr::Messages(m.msgs.len() as u32),
                    StatusItem::Recent => StatusAttr::Recent(0),
                    StatusItem::UidNext => StatusAttr::UidNext(m.uid_next),
                    StatusItem::UidValidity => StatusAttr::UidValidity(m.uid_validity),
                    StatusItem::Unseen => StatusAttr::Unseen(
                        m.msgs
                            .iter()
                            .filter(|x| !x.flags.contains(&Flag::Seen))
                            .count() as u32,
                    ),
                    StatusItem::Deleted => StatusAttr::Deleted(
                        m.msgs
                            .iter()
                            .filter(|x| x.flags.contains(&Flag::Deleted))
                            .count() as u32,
                    ),
                    StatusItem::Size => {
                        StatusAttr::Size(m.msgs.iter().map(|x| x.body.len() as u64).sum())
                    }
                    StatusItem::HighestModSeq => StatusAttr::HighestModSeq(modseq),
                    _ => return None,
                })
            })
            .collect())
    }

    async fn select(
        &mut self,
        mailbox: &Mailbox,
        read_only: bool,
        params: &SelectParams,
    ) -> Result<SelectInfo, Status> {
        self.view = None;
        let mut store = self.store.lock().unwrap();
        let modseq = store.modseq;
        let name = canon(mailbox.as_str());
        let m = store.mbox(&name).ok_or_else(no_such)?;
        let uids: Vec<u32> = m.msgs.iter().map(|x| x.uid).collect();
        let mut info = SelectInfo::new(uids.len() as u32, nz(m.uid_validity), nz(m.uid_next));
        info.highest_modseq = Some(modseq.max(1));
        info.read_only = read_only;
        info.first_unseen = m
            .msgs
            .iter()
            .position(|x| !x.flags.contains(&Flag::Seen))
            .and_then(|i| NonZeroU32::new(i as u32 + 1));
        if params.condstore || params.qresync.is_some() {
            self.condstore = true;
        }
        drop(store);
        self.rx.borrow_and_update();
        self.view = Some(View {
            name,
            read_only,
            uids,
            known_modseq: modseq,
        });
        Ok(info)
    }

    async fn unselect(&mut self, expunge: bool) -> Result<(), Status> {
        if expunge && self.view.as_ref().is_some_and(|v| !v.read_only) {
            let _ = self.expunge(None).await;
        }
        self.view = None;
        Ok(())
    }

    async fn fetch(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        items: &[FetchItem],
        _m: &FetchModifiers,
    ) -> Result<Vec<FetchResult>, Status> {
        let targets = self.resolve(set, uid);
        let name = self
            .view
            .as_ref()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let mut store = self.store.lock().unwrap();
        store.modseq += 1;
        let next_modseq = store.modseq;
        let m = store.mbox(&name).ok_or_else(no_such)?;
        let mut out = Vec::new();
        let mut set_seen = false;
        for (seq, u) in targets {
            let Some(msg) = m.msgs.iter_mut().find(|x| x.uid == u) else {
                continue;
            };
            let mut attrs = Vec::new();
            if uid {
                attrs.push(FetchAttr::Uid(nz(u)));
            }
            for item in items {
                match item {
                    FetchItem::Uid if !uid => attrs.push(FetchAttr::Uid(nz(u))),
                    FetchItem::Flags => {}
                    FetchItem::Rfc822Size => {
                        attrs.push(FetchAttr::Rfc822Size(msg.body.len() as u64))
                    }
                    FetchItem::ModSeq => attrs.push(FetchAttr::ModSeq(msg.modseq)),
                    FetchItem::Rfc822 => {
                        attrs.push(FetchAttr::Rfc822(Some(msg.body.clone())));
                        if !msg.flags.contains(&Flag::Seen) {
                            msg.flags.push(Flag::Seen);
                            msg.modseq = next_modseq;
                            set_seen = true;
                        }
                    }
                    FetchItem::BodySection {
                        peek,
                        section,
                        partial,
                    } => {
                        let split = msg
                            .body
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .map(|p| p + 4)
                            .unwrap_or(msg.body.len());
                        let data = match &section.text {
                            None if section.part.is_empty() => msg.body.clone(),
                            Some(SectionText::Header) => msg.body.slice(..split),
                            Some(SectionText::Text) => msg.body.slice(split..),
                            _ => msg.body.clone(),
                        };
                        let (data, origin) = match partial {
                            Some((start, len)) => {
                                let s = (*start as usize).min(data.len());
                                let e = (s + len.get() as usize).min(data.len());
                                (data.slice(s..e), Some(*start))
                            }
                            None => (data, None),
                        };
                        attrs.push(FetchAttr::BodySection {
                            section: section.clone(),
                            origin,
                            data: Some(data),
                        });
                        if !peek && !msg.flags.contains(&Flag::Seen) {
                            msg.flags.push(Flag::Seen);
                            msg.modseq = next_modseq;
                            set_seen = true;
                        }
                    }
                    _ => {}
                }
            }
            if items.contains(&FetchItem::Flags) || set_seen {
                attrs.insert(usize::from(uid), FetchAttr::Flags(msg.flags.clone()));
            }
            out.push((nz(seq), attrs));
        }
        if let Some(v) = self.view.as_mut() {
            v.known_modseq = v.known_modseq.max(next_modseq);
        }
        Ok(out)
    }

    async fn store(&mut self, req: StoreRequest) -> Result<StoreResult, Status> {
        let targets = self.resolve(&req.set, req.uid);
        let name = self
            .view
            .as_ref()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let mut store = self.store.lock().unwrap();
        store.modseq += 1;
        let modseq = store.modseq;
        let m = store.mbox(&name).ok_or_else(no_such)?;
        let mut result = StoreResult::default();
        for (seq, u) in targets {
            let Some(msg) = m.msgs.iter_mut().find(|x| x.uid == u) else {
                continue;
            };
            match req.kind {
                StoreKind::Replace => msg.flags = req.flags.clone(),
                StoreKind::Add => {
                    for f in &req.flags {
                        if !msg.flags.contains(f) {
                            msg.flags.push(f.clone());
                        }
                    }
                }
                StoreKind::Remove => msg.flags.retain(|f| !req.flags.contains(f)),
            }
            msg.modseq = modseq;
            let mut attrs = Vec::new();
            if req.uid {
                attrs.push(FetchAttr::Uid(nz(u)));
            }
            attrs.push(FetchAttr::Flags(msg.flags.clone()));
            if self.condstore {
                attrs.push(FetchAttr::ModSeq(modseq));
            }
            result.updated.push((nz(seq), attrs));
        }
        drop(store);
        if let Some(v) = self.view.as_mut() {
            v.known_modseq = modseq;
        }
        self.notify();
        Ok(result)
    }

    async fn search(&mut self, criteria: &[SearchKey], uid: bool) -> Result<SearchResult, Status> {
        let Some(view) = &self.view else {
            return Err(Status::bad("No mailbox selected"));
        };
        let name = view.name.clone();
        let uids = view.uids.clone();
        let mut store = self.store.lock().unwrap();
        let m = store.mbox(&name).ok_or_else(no_such)?;
        let largest_uid = uids.last().copied().unwrap_or(0);
        let mut numbers = Vec::new();
        for (i, u) in uids.iter().enumerate() {
            let Some(msg) = m.msgs.iter().find(|x| x.uid == *u) else {
                continue;
            };
            let seq = i as u32 + 1;
            if criteria
                .iter()
                .all(|k| Self::search_matches(k, seq, msg, uids.len() as u32, largest_uid))
            {
                numbers.push(if uid { *u } else { seq });
            }
        }
        Ok(SearchResult::new(numbers))
    }

    async fn copy(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> Result<Option<Code>, Status> {
        let targets = self.resolve(set, uid);
        let name = self
            .view
            .as_ref()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let mut store = self.store.lock().unwrap();
        let src: Vec<Msg> = {
            let m = store.mbox(&name).ok_or_else(no_such)?;
            m.msgs
                .iter()
                .filter(|x| targets.iter().any(|(_, u)| *u == x.uid))
                .cloned()
                .collect()
        };
        if store.mbox(target.as_str()).is_none() {
            return Err(Status::no("No such mailbox").with_code("TRYCREATE"));
        }
        let mut new_uids = Vec::new();
        for msg in &src {
            new_uids.push(store.add_message(target.as_str(), &msg.body, msg.flags.clone()));
        }
        let validity = store
            .mbox(target.as_str())
            .map(|m| m.uid_validity)
            .unwrap_or(1);
        drop(store);
        self.notify();
        let src_uids: Vec<u32> = src.iter().map(|m| m.uid).collect();
        match (seqset(&src_uids), seqset(&new_uids)) {
            (Some(source), Some(target)) => Ok(Some(Code::CopyUid {
                uid_validity: nz(validity),
                source,
                target,
            })),
            _ => Ok(None),
        }
    }

    async fn move_messages(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> Result<MoveResult, Status> {
        let targets = self.resolve(set, uid);
        let copy_uid = self.copy(set, uid, target).await?;
        let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
        let expunged = self.remove(&uids);
        Ok(MoveResult::new(copy_uid, expunged))
    }

    async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Result<Vec<Expunged>, Status> {
        let name = self
            .view
            .as_ref()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let deleted: Vec<u32> = {
            let mut store = self.store.lock().unwrap();
            let m = store.mbox(&name).ok_or_else(no_such)?;
            let largest = m.msgs.last().map(|x| x.uid).unwrap_or(0);
            m.msgs
                .iter()
                .filter(|x| {
                    x.flags.contains(&Flag::Deleted)
                        && uids.is_none_or(|s| s.contains(x.uid, largest))
                })
                .map(|x| x.uid)
                .collect()
        };
        Ok(self.remove(&deleted))
    }

    async fn append_begin(
        &mut self,
        mailbox: &Mailbox,
        flags: &[Flag],
        _date: Option<&DateTime>,
        _size: u64,
    ) -> Result<(), Status> {
        if self.store.lock().unwrap().mbox(mailbox.as_str()).is_none() {
            return Err(Status::no("No such mailbox").with_code("TRYCREATE"));
        }
        self.append = Some((mailbox.as_str().to_string(), flags.to_vec(), Vec::new()));
        Ok(())
    }

    async fn append_chunk(&mut self, chunk: Bytes) -> Result<(), Status> {
        if let Some((_, _, data)) = self.append.as_mut() {
            data.extend_from_slice(&chunk);
        }
        Ok(())
    }

    async fn append_end(&mut self) -> Result<Option<Code>, Status> {
        let Some((name, flags, data)) = self.append.take() else {
            return Err(Status::bad("No APPEND"));
        };
        let mut store = self.store.lock().unwrap();
        let uid = store.add_message(&name, &data, flags);
        let validity = store.mbox(&name).map(|m| m.uid_validity).unwrap_or(1);
        drop(store);
        self.notify();
        Ok(Some(Code::AppendUid {
            uid_validity: nz(validity),
            uids: SequenceSet::single(uid).unwrap(),
        }))
    }

    async fn create(
        &mut self,
        mailbox: &Mailbox,
        _special_use: &[MailboxAttr],
    ) -> Result<(), Status> {
        let mut store = self.store.lock().unwrap();
        if store.mbox(mailbox.as_str()).is_some() {
            return Err(Status::no("Mailbox exists").with_code("ALREADYEXISTS"));
        }
        store.mailboxes.insert(
            mailbox.as_str().to_string(),
            Mbox {
                uid_validity: 1_700_000_001,
                uid_next: 1,
                msgs: Vec::new(),
                subscribed: false,
                special: None,
            },
        );
        Ok(())
    }

    async fn delete(&mut self, mailbox: &Mailbox) -> Result<(), Status> {
        let mut store = self.store.lock().unwrap();
        store
            .mailboxes
            .remove(mailbox.as_str())
            .map(|_| ())
            .ok_or_else(no_such)
    }

    async fn rename(&mut self, from: &Mailbox, to: &Mailbox) -> Result<(), Status> {
        let mut store = self.store.lock().unwrap();
        let m = store.mailboxes.remove(from.as_str()).ok_or_else(no_such)?;
        store.mailboxes.insert(to.as_str().to_string(), m);
        Ok(())
    }

    async fn subscribe(&mut self, mailbox: &Mailbox, subscribe: bool) -> Result<(), Status> {
        let mut store = self.store.lock().unwrap();
        let m = store.mbox(mailbox.as_str()).ok_or_else(no_such)?;
        m.subscribed = subscribe;
        Ok(())
    }

    fn enabled(&mut self, capabilities: &[String]) {
        if capabilities
            .iter()
            .any(|c| c == "CONDSTORE" || c == "QRESYNC")
        {
            self.condstore = true;
        }
    }

    fn take_changes(&mut self) -> Vec<Unsolicited> {
        let Some(view) = self.view.as_mut() else {
            return Vec::new();
        };
        let mut store = self.store.lock().unwrap();
        let Some(m) = store.mbox(&view.name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Expunged by others.
        let mut i = 0;
        while i < view.uids.len() {
            if m.msgs.iter().any(|x| x.uid == view.uids[i]) {
                i += 1;
            } else {
                view.uids.remove(i);
                out.push(Unsolicited::Expunge(i as u32 + 1));
            }
        }
        // Flag changes by others.
        let mut max = view.known_modseq;
        for (i, u) in view.uids.iter().enumerate() {
            if let Some(msg) = m.msgs.iter().find(|x| x.uid == *u)
                && msg.modseq > view.known_modseq
            {
                let flags = msg.flags.iter().map(ToString::to_string).collect();
                out.push(Unsolicited::Fetch {
                    seq: i as u32 + 1,
                    uid: Some(*u),
                    flags,
                    modseq: Some(msg.modseq),
                });
                max = max.max(msg.modseq);
            }
        }
        // New messages.
        let before = view.uids.len();
        for msg in &m.msgs {
            if !view.uids.contains(&msg.uid) && msg.uid > view.uids.last().copied().unwrap_or(0) {
                view.uids.push(msg.uid);
                max = max.max(msg.modseq);
            }
        }
        if view.uids.len() != before {
            out.push(Unsolicited::Exists(view.uids.len() as u32));
        }
        view.known_modseq = max;
        out
    }

    async fn wait_changes(&mut self) {
        let _ = self.rx.changed().await;
    }
}

impl MemSession {
    /// Removes messages (by UID) from the selected mailbox and this session's view.
    fn remove(&mut self, uids: &[u32]) -> Vec<Expunged> {
        let Some(view) = self.view.as_mut() else {
            return Vec::new();
        };
        {
            let mut store = self.store.lock().unwrap();
            if let Some(m) = store.mbox(&view.name) {
                m.msgs.retain(|x| !uids.contains(&x.uid));
            }
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < view.uids.len() {
            if uids.contains(&view.uids[i]) {
                out.push(Expunged {
                    seq: nz(i as u32 + 1),
                    uid: nz(view.uids[i]),
                });
                view.uids.remove(i);
            } else {
                i += 1;
            }
        }
        self.notify();
        out
    }
}

fn seqset(numbers: &[u32]) -> Option<SequenceSet> {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let text: Vec<String> = sorted.iter().map(ToString::to_string).collect();
    if text.is_empty() {
        return None;
    }
    let ranges = sorted
        .iter()
        .map(|n| imap_proto::types::SeqRange::single(imap_proto::types::SeqNum::new(*n).unwrap()))
        .collect();
    SequenceSet::new(ranges).ok()
}
