//! `\Recent` (RFC 3501 section 2.3.2): a message is recent in exactly one session, the
//! first one to select its mailbox, or to be told about the message while the mailbox is
//! selected, after the message arrived. IMAP4rev2 dropped the flag; IMAP4rev1 clients (and
//! conformance checkers) still rely on it.
//!
//! Per mailbox the server keeps the first UID no session has claimed yet (the "floor").
//! SELECT, and each announcement of new messages to a session that selected (not
//! examined) the mailbox, claims every UID from the floor up to UIDNEXT. The floor is kept
//! in the account's settings (`imap.recent/<mailbox id>`), written in the background
//! after each claim, so a restart does not make old messages recent again; a crash may
//! lose the last write, and then the messages of that claim are recent once more.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use mailstore_core::{AccountId, MailStore, MailboxId, SettingsScope};

/// The floors of every mailbox a session has selected since the server started.
#[derive(Debug, Default)]
pub struct RecentFloors {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Mailbox id -> first unclaimed UID.
    floors: HashMap<u64, u32>,
    /// Mailboxes whose floor a background task is writing; it writes again if the floor
    /// moved meanwhile, so writes never go out of order.
    writing: HashSet<u64>,
}

fn key(mailbox: MailboxId) -> String {
    format!("imap.recent/{}", mailbox.0)
}

impl RecentFloors {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first UID nobody has claimed, read from the store the first time a mailbox is
    /// asked about (a mailbox never claimed from starts at UID 1: all its messages are
    /// recent to the first session). EXAMINE and STATUS use it to show without claiming.
    pub async fn load<S: MailStore>(
        &self,
        store: &S,
        account: AccountId,
        mailbox: MailboxId,
    ) -> u32 {
        if let Some(&floor) = self.lock().floors.get(&mailbox.0) {
            return floor;
        }
        let stored = store
            .get_setting(&SettingsScope::Account(account), &key(mailbox))
            .await
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        *self.lock().floors.entry(mailbox.0).or_insert(stored)
    }

    /// Drops a deleted mailbox's floor (mailbox ids are never reused).
    pub async fn forget<S: MailStore>(&self, store: &S, account: AccountId, mailbox: MailboxId) {
        self.lock().floors.remove(&mailbox.0);
        let _ = store
            .delete_setting(&SettingsScope::Account(account), &key(mailbox))
            .await;
    }

    /// Claims the UIDs from the floor up to (not including) `uid_next` for the caller:
    /// `Some((from, uid_next))` when there were any. The new floor is written to the
    /// store in the background.
    pub fn claim<S: MailStore>(
        self: &Arc<Self>,
        store: &Arc<S>,
        account: AccountId,
        mailbox: MailboxId,
        uid_next: u32,
    ) -> Option<(u32, u32)> {
        let (from, start_writer) = {
            let mut g = self.lock();
            let floor = g.floors.entry(mailbox.0).or_insert(1);
            if *floor >= uid_next {
                return None;
            }
            let from = std::mem::replace(floor, uid_next);
            (from, g.writing.insert(mailbox.0))
        };
        if start_writer {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (me, store) = (Arc::clone(self), Arc::clone(store));
                    rt.spawn(async move { me.write_floor(&*store, account, mailbox).await });
                }
                // No runtime to write from: the floor is kept in memory only.
                Err(_) => {
                    self.lock().writing.remove(&mailbox.0);
                }
            }
        }
        Some((from, uid_next))
    }

    /// Writes the mailbox's floor until what is stored is the latest.
    async fn write_floor<S: MailStore>(&self, store: &S, account: AccountId, mailbox: MailboxId) {
        let mut written = 0;
        loop {
            let floor = {
                let mut g = self.lock();
                // Gone: the mailbox was deleted meanwhile.
                let Some(floor) = g.floors.get(&mailbox.0).copied() else {
                    g.writing.remove(&mailbox.0);
                    return;
                };
                if floor == written {
                    g.writing.remove(&mailbox.0);
                    return;
                }
                floor
            };
            let scope = SettingsScope::Account(account);
            let value = floor.to_string().into_bytes();
            if let Err(e) = store.put_setting(&scope, &key(mailbox), value).await {
                // The account or mailbox may be gone; the floor stays right in memory.
                tracing::debug!(mailbox = mailbox.0, "imap: \\Recent floor not saved: {e}");
                self.lock().writing.remove(&mailbox.0);
                return;
            }
            written = floor;
        }
    }
}

/// The UIDs that are `\Recent` in one session: the ranges it claimed.
#[derive(Debug, Default, Clone)]
pub struct RecentSet {
    /// Half-open UID ranges, ascending and disjoint.
    ranges: Vec<(u32, u32)>,
}

impl RecentSet {
    /// Adds the range `[from, to)`.
    pub fn add(&mut self, (from, to): (u32, u32)) {
        match self.ranges.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => self.ranges.push((from, to)),
        }
    }

    /// Whether `uid` is recent in this session.
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= uid);
        self.ranges.get(i).is_some_and(|r| r.0 <= uid)
    }

    /// How many of `uids` (ascending) are recent.
    pub fn count_in(&self, uids: &[u32]) -> u32 {
        let n: usize = self
            .ranges
            .iter()
            .map(|&(a, b)| uids.partition_point(|&u| u < b) - uids.partition_point(|&u| u < a))
            .sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailstore_core::{MemoryStore, NewAccount, StoreConfig};

    #[test]
    fn recent_set_ranges() {
        let mut s = RecentSet::default();
        s.add((3, 6));
        s.add((6, 8));
        s.add((10, 11));
        assert_eq!(s.ranges, vec![(3, 8), (10, 11)]);
        let inside: Vec<u32> = (0..13).filter(|&u| s.contains(u)).collect();
        assert_eq!(inside, vec![3, 4, 5, 6, 7, 10]);
        assert_eq!(s.count_in(&[1, 2, 3, 5, 9, 10, 12]), 3);
        assert_eq!(RecentSet::default().count_in(&[1, 2]), 0);
    }

    #[tokio::test]
    async fn each_uid_is_claimed_once_and_the_floor_survives_a_restart() {
        let store = Arc::new(MemoryStore::with_config(StoreConfig::for_tests()));
        let a = store
            .create_account(NewAccount::new("r@example.test", None))
            .await
            .unwrap();
        let inbox = store.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let floors = Arc::new(RecentFloors::default());
        assert_eq!(floors.load(&*store, a.id, inbox.mailbox).await, 1);
        assert_eq!(floors.claim(&store, a.id, inbox.mailbox, 5), Some((1, 5)));
        assert_eq!(floors.claim(&store, a.id, inbox.mailbox, 5), None);
        assert_eq!(floors.claim(&store, a.id, inbox.mailbox, 7), Some((5, 7)));
        assert_eq!(floors.load(&*store, a.id, inbox.mailbox).await, 7);
        // The background write lands (this runtime has one thread: it runs while the test
        // yields); a new server (new floors) reads it back.
        let scope = SettingsScope::Account(a.id);
        let mut stored = None;
        for _ in 0..1000 {
            stored = store
                .get_setting(&scope, &key(inbox.mailbox))
                .await
                .unwrap();
            if stored.as_deref() == Some(b"7") {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(stored.as_deref(), Some(&b"7"[..]));
        let restarted = Arc::new(RecentFloors::default());
        assert_eq!(restarted.load(&*store, a.id, inbox.mailbox).await, 7);
        assert_eq!(restarted.claim(&store, a.id, inbox.mailbox, 7), None);
    }
}
