//! Shared test helpers.
#![allow(
    dead_code,
    clippy::type_complexity,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::Bytes;
use mailstore_core::*;

/// Makes fresh stores of one backend; the guard keeps a temp dir alive.
pub trait Fixture {
    type Store: MailStore + Clone + std::fmt::Debug;
    fn make() -> (Self::Store, Option<tempfile::TempDir>);
}

pub struct Mem;
impl Fixture for Mem {
    type Store = MemoryStore;
    fn make() -> (MemoryStore, Option<tempfile::TempDir>) {
        (MemoryStore::with_config(StoreConfig::for_tests()), None)
    }
}

pub struct Disk;
impl Fixture for Disk {
    type Store = DiskStore;
    fn make() -> (DiskStore, Option<tempfile::TempDir>) {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        (s, Some(dir))
    }
}

pub fn msg(subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    ))
}

/// Everything a client can observe about a store, with the time-derived values
/// (UIDVALIDITY, received times, default UIDLs) normalised so two backends compare equal.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    pub accounts: Vec<(AccountInfo, Vec<String>)>,
    pub mailboxes: Vec<ObservedMailbox>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ObservedMailbox {
    pub account: String,
    pub name: String,
    pub counters: (u32, u64, u32, u32, u64, Option<SpecialUse>, bool),
    pub messages: Vec<MessageFlags>,
    pub meta: Vec<(
        u32,
        u64,
        Timestamp,
        Origin,
        String,
        Option<String>,
        Option<[u8; 32]>,
    )>,
    pub bodies: Vec<Vec<u8>>,
    pub vanished: Vec<u32>,
}

pub async fn observe<S: MailStore>(s: &S) -> Observed {
    let mut accounts = Vec::new();
    let mut mailboxes = Vec::new();
    for a in s.list_accounts().await.unwrap() {
        let apps = s
            .list_app_passwords(a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        for m in s.list_mailboxes(a.id).await.unwrap() {
            let snap = s.snapshot(m.mailbox).await.unwrap();
            let uv = format!("{:08x}", m.uidvalidity);
            let meta = s
                .message_meta(m.mailbox, &UidSet::all())
                .await
                .unwrap()
                .into_iter()
                .map(|x| {
                    // Default UIDLs embed a time-derived UIDVALIDITY (of this mailbox, or
                    // of the source mailbox for moved messages).
                    let uidl = match x.uidl.strip_prefix(&uv) {
                        Some(rest) if rest == format!("{:08x}", x.uid) => "<default>".to_string(),
                        _ if x.uidl.len() == 16
                            && x.uidl.bytes().all(|b| b.is_ascii_hexdigit()) =>
                        {
                            format!("<derived>{}", &x.uidl[8..])
                        }
                        _ => x.uidl.clone(),
                    };
                    (
                        x.uid,
                        x.size,
                        x.internal_date,
                        x.origin,
                        uidl,
                        x.message_id,
                        x.digest,
                    )
                })
                .collect();
            let mut bodies = Vec::new();
            for msg in &snap.messages {
                bodies.push(
                    s.open_body(m.mailbox, msg.uid)
                        .await
                        .unwrap()
                        .read_all()
                        .await
                        .unwrap(),
                );
            }
            mailboxes.push(ObservedMailbox {
                account: a.address.clone(),
                name: m.name.clone(),
                counters: (
                    m.uidnext,
                    m.highest_modseq,
                    m.messages,
                    m.unseen,
                    m.size,
                    m.special_use,
                    m.subscribed,
                ),
                messages: snap.messages,
                meta,
                bodies,
                vanished: s.changes_since(m.mailbox, 0).await.unwrap().vanished,
            });
        }
        accounts.push((a, apps));
    }
    Observed {
        accounts,
        mailboxes,
    }
}
