//! DiskStore specifics: persistence across reopen, the process lock, crash recovery, and
//! MemoryStore vs DiskStore equivalence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{msg, observe};
use mailstore_core::*;
use proptest::prelude::*;

/// Every body in a file of its own (no body kept in the index).
fn files_only() -> StoreConfig {
    StoreConfig::for_tests().with_inline_body_max(0)
}

/// Rows of the index's `bodies` table (the bodies kept in the index); the store must be
/// closed.
fn inline_rows(dir: &Path) -> usize {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
    const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
    let db = redb::Database::open(dir.join("index.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    usize::try_from(tx.open_table(BODIES).unwrap().len().unwrap()).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn populate<S: MailStore>(s: &S) {
    let a = s
        .create_account(NewAccount::new("olga@example.org", Some("pw")))
        .await
        .unwrap();
    s.add_alias(a.id, "o@example.org").await.unwrap();
    let _secret = s.create_app_password(a.id, "laptop").await.unwrap();
    s.set_plaintext_secret(a.id, Some("apop")).await.unwrap();
    s.put_setting(&SettingsScope::Account(a.id), "k", b"v".to_vec())
        .await
        .unwrap();
    s.put_setting(
        &SettingsScope::Domain("example.org".into()),
        "d",
        b"w".to_vec(),
    )
    .await
    .unwrap();
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
    s.create_mailbox(a.id, "Work", CreateMailbox::default())
        .await
        .unwrap();
    let work = s
        .create_mailbox(a.id, "Work/Sub", CreateMailbox::default().subscribed())
        .await
        .unwrap()
        .mailbox;
    for i in 0..10 {
        let o = AppendOptions::with_flags(Flags::new().with_keyword(format!("kw{}", i % 3)))
            .internal_date(Timestamp(1_600_000_000 + i));
        let _ = s
            .append(
                inbox,
                o,
                msg(&format!("p{i}"), &"z".repeat(i as usize * 100)),
            )
            .await
            .unwrap();
    }
    let _ = s
        .append(
            inbox,
            AppendOptions::default()
                .uidl("X-UIDL-1")
                .origin(Origin::Imported("old".into()))
                .internal_date(Timestamp(1_650_000_000)),
            msg("imp", "x"),
        )
        .await
        .unwrap();
    let _ = s
        .store_flags(
            inbox,
            &UidSet::range(2, 6),
            FlagOp::Add,
            &Flags::system(SystemFlags::SEEN),
            None,
        )
        .await
        .unwrap();
    let _ = s.expunge(inbox, &UidSet::from_iter([3, 7])).await.unwrap();
    let _ = s.expunge(inbox, &UidSet::single(9)).await.unwrap();
    let floor = s.mailbox_status(inbox).await.unwrap().highest_modseq - 1;
    assert_eq!(s.purge_tombstones(inbox, floor).await.unwrap(), 2);
    let _ = s.copy(inbox, &UidSet::range(1, 4), work).await.unwrap();
    let _ = s
        .move_messages(inbox, &UidSet::range(8, 11), work)
        .await
        .unwrap();
    s.rename_mailbox(a.id, "Work", "Job").await.unwrap();
    let b = s
        .create_account(NewAccount::new("pete@example.org", None))
        .await
        .unwrap();
    s.delete_mailbox(b.id, "Junk").await.unwrap();
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        populate(&s).await;
        let before = observe(&s).await;
        let olga = s.find_account("olga@example.org").await.unwrap().unwrap();
        let uv: Vec<u32> = s
            .list_mailboxes(olga.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uidvalidity)
            .collect();
        drop(s);
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        let after = observe(&s).await;
        assert_eq!(before, after);
        let olga_inbox = s
            .mailbox(
                s.find_account("olga@example.org")
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                "INBOX",
            )
            .await
            .unwrap()
            .mailbox;
        let ch = s.changes_since(olga_inbox, 0).await.unwrap();
        assert!(!ch.vanished_complete, "the purge floor survives a reopen");
        assert!(ch.vanished.contains(&9));
        let uv2: Vec<u32> = s
            .list_mailboxes(olga.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uidvalidity)
            .collect();
        assert_eq!(uv, uv2);
        assert_eq!(
            s.find_account("O@EXAMPLE.ORG").await.unwrap().unwrap().id,
            olga.id
        );
        assert!(s.verify_login("olga@example.org", "pw").await.is_ok());
        assert_eq!(
            s.plaintext_secret(olga.id).await.unwrap(),
            Some(PlaintextSecret("apop".into()))
        );
        assert_eq!(
            s.get_setting(&SettingsScope::Domain("EXAMPLE.org".into()), "d")
                .await
                .unwrap()
                .unwrap(),
            b"w"
        );
        // Same results as a MemoryStore fed the same operations.
        let m = MemoryStore::with_config(StoreConfig::for_tests());
        populate(&m).await;
        assert_eq!(observe(&m).await, after);
        // Ids and UIDs continue after reopen, never reused.
        let inbox = s.mailbox(olga.id, "INBOX").await.unwrap();
        let r = s
            .append(inbox.mailbox, AppendOptions::default(), msg("new", "x"))
            .await
            .unwrap();
        assert_eq!(r.uid, inbox.uidnext);
        let c = s
            .create_account(NewAccount::new("quinn@example.org", None))
            .await
            .unwrap();
        assert!(c.id.0 > olga.id.0 + 1);
    });
    // No stray bodies: one index row or file per stored message, nothing in tmp/ (these
    // messages are small: all in the index).
    let files = count_files(&dir.path().join("msg"));
    let inline = inline_rows(dir.path());
    let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
    let stored: u64 = rt().block_on(async {
        let mut n = 0;
        for a in s.list_accounts().await.unwrap() {
            n += s.quota_usage(a.id).await.unwrap().messages;
        }
        n
    });
    assert!(stored > 10);
    assert_eq!((files, inline as u64), (0, stored));
    assert_eq!(count_files(&dir.path().join("tmp")), 0);
}

fn count_files(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
    let err = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path } if path == dir.path()),
        "{err:?}"
    );
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    assert!(err.to_string().contains("locked by another process"));
    drop(s);
    DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
}

#[test]
fn recovery_of_tmp_files() {
    let dir = tempfile::tempdir().unwrap();
    let body = msg("r", "recover me");
    let (inbox, files_before) = rt().block_on(async {
        let s = DiskStore::open(dir.path(), files_only()).unwrap();
        let a = s
            .create_account(NewAccount::new("rita@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let _ = s
            .append(inbox, AppendOptions::default(), body.clone())
            .await
            .unwrap();
        (inbox, count_files(&dir.path().join("msg")))
    });
    assert_eq!(files_before, 1);
    // Simulate a crash after the index commit but before the rename out of tmp/: move the
    // body back; and leave an uncommitted append and some junk behind.
    let msg_dir = dir.path().join("msg");
    let sub = std::fs::read_dir(&msg_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&sub).unwrap().next().unwrap().unwrap();
    std::fs::rename(file.path(), dir.path().join("tmp").join(file.file_name())).unwrap();
    std::fs::write(
        dir.path().join("tmp").join("00000000deadbeef"),
        b"Subject: half\r\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tmp").join("junk.txt"), b"x").unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), files_only()).unwrap();
        assert_eq!(
            s.open_body(inbox, 1)
                .await
                .unwrap()
                .read_all()
                .await
                .unwrap(),
            body.to_vec()
        );
        let r = s
            .append(inbox, AppendOptions::default(), msg("s", "t"))
            .await
            .unwrap();
        assert_eq!(r.uid, 2);
    });
    assert_eq!(count_files(&dir.path().join("tmp")), 0);
    assert_eq!(count_files(&msg_dir), 2);
}

// ---------------- crash test ----------------

const CHILD_ENV: &str = "MAILSTORE_CRASH_CHILD_DIR";

fn crash_body(tag: &str) -> Vec<u8> {
    let n = tag.bytes().map(usize::from).sum::<usize>() % 50;
    format!(
        "Subject: {tag}\r\nMessage-ID: <{tag}@crash>\r\n\r\n{}\r\n",
        "line of text\r\n".repeat(n * 20)
    )
    .into_bytes()
}

/// Not a real test: the body of the child process of `crash_recovery`.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var("MAILSTORE_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    // Odd rounds keep every body in a file, even ones keep them in the index, so the store
    // holds both kinds and copies go both ways.
    let cfg = if round % 2 == 1 {
        files_only()
    } else {
        StoreConfig::for_tests()
    };
    rt().block_on(async move {
        use std::io::Write;
        let s = DiskStore::open(&dir, cfg).unwrap();
        let a = match s.find_account("crash@example.org").await.unwrap() {
            Some(a) => a,
            None => s
                .create_account(NewAccount::new("crash@example.org", None))
                .await
                .unwrap(),
        };
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY").unwrap();
        out.flush().unwrap();
        for i in 0.. {
            let tag = format!("r{round}-i{i}");
            let flags = Flags::system(SystemFlags::from_bits(i as u8 % 32));
            let r = s
                .append(
                    inbox,
                    AppendOptions::with_flags(flags),
                    Bytes::from(crash_body(&tag)),
                )
                .await
                .unwrap();
            if i % 3 == 0 {
                let _ = s
                    .store_flags(
                        inbox,
                        &UidSet::single(r.uid),
                        FlagOp::Add,
                        &Flags::new().with_keyword("k"),
                        None,
                    )
                    .await
                    .unwrap();
            }
            if i % 5 == 4 {
                let archive = s.mailbox(a.id, "Archive").await.unwrap().mailbox;
                let _ = s
                    .copy(inbox, &UidSet::single(r.uid), archive)
                    .await
                    .unwrap();
            }
            if i % 7 == 6 {
                let _ = s.expunge(inbox, &UidSet::single(r.uid)).await.unwrap();
                writeln!(out, "GONE {} {tag}", r.uid).unwrap();
            } else {
                writeln!(out, "ACK {} {tag}", r.uid).unwrap();
            }
            out.flush().unwrap();
        }
    });
}

#[test]
fn crash_recovery() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u32, String)> = Vec::new();
    let mut gone: Vec<u32> = Vec::new();
    let mut uidvalidity = None;
    let mut rng = rand::rng();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("MAILSTORE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let want = rng.random_range(1..25);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut seen = 0;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("ACK"), Some(uid), Some(tag)) => {
                        tx.send((true, uid.parse::<u32>().unwrap(), tag.to_string()))
                            .unwrap();
                        seen += 1;
                    }
                    (Some("GONE"), Some(uid), Some(tag)) => {
                        tx.send((false, uid.parse::<u32>().unwrap(), tag.to_string()))
                            .unwrap();
                        seen += 1;
                    }
                    _ => {}
                }
                if seen == want {
                    // Signal the parent, keep draining so the child never blocks on a pipe.
                    let _ = tx.send((false, 0, String::new()));
                }
            }
        });
        // Wait until the child acknowledged `want` operations (guarded against hangs).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok((_, 0, _)) => break,
                Ok((true, uid, tag)) => acked.push((uid, tag)),
                Ok((false, uid, _)) => gone.push(uid),
                Err(e) => panic!("child stalled in round {round}: {e}"),
            }
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        reader.join().unwrap();
        // Late lines the reader forwarded before the kill also count as acknowledged.
        while let Ok((ok, uid, tag)) = rx.try_recv() {
            if uid == 0 {
                continue;
            }
            if ok {
                acked.push((uid, tag));
            } else {
                gone.push(uid);
            }
        }

        // Reopen and check the invariants.
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        let stored = rt().block_on(async {
            let a = s.find_account("crash@example.org").await.unwrap().unwrap();
            let inbox = s.mailbox(a.id, "INBOX").await.unwrap();
            match uidvalidity {
                None => uidvalidity = Some(inbox.uidvalidity),
                Some(v) => assert_eq!(v, inbox.uidvalidity, "UIDVALIDITY changed in round {round}"),
            }
            let snap = s.snapshot(inbox.mailbox).await.unwrap();
            let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
            assert!(
                uids.windows(2).all(|w| w[0] < w[1]),
                "UIDs not strictly increasing"
            );
            if let Some(max) = uids.last() {
                assert!(inbox.uidnext > *max);
            }
            for (uid, tag) in &acked {
                let body = s.open_body(inbox.mailbox, *uid).await;
                let body = body.unwrap_or_else(|e| {
                    panic!("acknowledged UID {uid} ({tag}) lost in round {round}: {e}")
                });
                assert_eq!(
                    body.read_all().await.unwrap(),
                    crash_body(tag),
                    "UID {uid} content"
                );
            }
            for uid in &gone {
                assert!(!uids.contains(uid), "expunged UID {uid} came back");
            }
            // Every stored message is one of ours, whole, under exactly one UID.
            let metas = s.message_meta(inbox.mailbox, &UidSet::all()).await.unwrap();
            let mut ids: Vec<String> = metas
                .iter()
                .map(|m| m.message_id.clone().unwrap())
                .collect();
            for m in &metas {
                let tag = m
                    .message_id
                    .as_deref()
                    .unwrap()
                    .trim_start_matches('<')
                    .trim_end_matches("@crash>")
                    .to_string();
                let body = s
                    .open_body(inbox.mailbox, m.uid)
                    .await
                    .unwrap()
                    .read_all()
                    .await
                    .unwrap();
                assert_eq!(body, crash_body(&tag));
            }
            ids.sort();
            let n = ids.len();
            ids.dedup();
            assert_eq!(n, ids.len(), "a message is stored under two UIDs");
            // Copies in Archive: whole, and each with its own body.
            let archive = s.mailbox(a.id, "Archive").await.unwrap();
            for m in s
                .message_meta(archive.mailbox, &UidSet::all())
                .await
                .unwrap()
            {
                let tag = m
                    .message_id
                    .as_deref()
                    .unwrap()
                    .trim_start_matches('<')
                    .trim_end_matches("@crash>")
                    .to_string();
                let body = s
                    .open_body(archive.mailbox, m.uid)
                    .await
                    .unwrap()
                    .read_all()
                    .await
                    .unwrap();
                assert_eq!(body, crash_body(&tag));
            }
            n + archive.messages as usize
        });
        drop(s);
        assert_eq!(
            count_files(&dir.path().join("msg")) + inline_rows(dir.path()),
            stored,
            "orphan or missing bodies in round {round}"
        );
        assert_eq!(count_files(&dir.path().join("tmp")), 0);
    }
    assert!(acked.len() >= 20);
}

// ---------------- MemoryStore vs DiskStore ----------------

#[derive(Debug, Clone)]
enum Op {
    Append {
        mbx: usize,
        flags: u8,
        kw: Option<u8>,
        size: usize,
    },
    Store {
        mbx: usize,
        lo: u32,
        hi: u32,
        op: u8,
        flags: u8,
        kw: Option<u8>,
        since: Option<u64>,
    },
    Copy {
        from: usize,
        to: usize,
        lo: u32,
        hi: u32,
    },
    Move {
        from: usize,
        to: usize,
        lo: u32,
        hi: u32,
    },
    Expunge {
        mbx: usize,
        lo: u32,
        hi: u32,
    },
    Create {
        name: usize,
    },
    Delete {
        name: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
}

const NAMES: [&str; 4] = ["INBOX", "A", "A/B", "C"];

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..32u8, proptest::option::of(0..3u8), 0..3000usize)
            .prop_map(|(mbx, flags, kw, size)| Op::Append { mbx, flags, kw, size }),
        3 => (0..4usize, 1..8u32, 0..8u32, 0..3u8, 0..32u8, proptest::option::of(0..3u8), proptest::option::of(0..12u64))
            .prop_map(|(mbx, lo, d, op, flags, kw, since)| Op::Store { mbx, lo, hi: lo + d, op, flags, kw, since }),
        1 => (0..4usize, 0..4usize, 1..8u32, 0..8u32).prop_map(|(from, to, lo, d)| Op::Copy { from, to, lo, hi: lo + d }),
        1 => (0..4usize, 0..4usize, 1..8u32, 0..8u32).prop_map(|(from, to, lo, d)| Op::Move { from, to, lo, hi: lo + d }),
        2 => (0..4usize, 1..8u32, 0..8u32).prop_map(|(mbx, lo, d)| Op::Expunge { mbx, lo, hi: lo + d }),
        1 => (1..4usize).prop_map(|name| Op::Create { name }),
        1 => (1..4usize).prop_map(|name| Op::Delete { name }),
        1 => (1..4usize, 1..4usize).prop_map(|(from, to)| Op::Rename { from, to }),
    ]
}

/// Runs the ops; returns a trace of results (Ok values or error kinds) to compare too.
async fn run_ops<S: MailStore>(s: &S, ops: &[Op]) -> Vec<String> {
    let a = match s.find_account("prop@example.org").await.unwrap() {
        Some(a) => a,
        None => {
            let mut n = NewAccount::new("prop@example.org", None);
            n.default_mailboxes = false;
            let a = s.create_account(n).await.unwrap();
            s.create_mailbox(a.id, "INBOX", CreateMailbox::default())
                .await
                .unwrap();
            a
        }
    };
    let mut trace = Vec::new();
    let kw = |k: Option<u8>| k.map(|k| format!("kw{k}"));
    for op in ops {
        let r = |name: usize| NAMES[name];
        let get = |name: usize| {
            let s = &s;
            async move { s.mailbox(a.id, NAMES[name]).await.map(|m| m.mailbox) }
        };
        let res: Result<String, StoreError> = async {
            Ok(match op {
                Op::Append {
                    mbx,
                    flags,
                    kw: k,
                    size,
                } => {
                    let m = get(*mbx).await?;
                    let mut f = Flags::system(SystemFlags::from_bits(*flags));
                    if let Some(k) = kw(*k) {
                        f.insert_keyword(k);
                    }
                    let body = msg(&format!("s{size}"), &"b".repeat(*size));
                    let o = AppendOptions::with_flags(f).internal_date(Timestamp(*size as i64));
                    format!(
                        "{:?}",
                        s.append(m, o, body)
                            .await
                            .map(|o| (o.uid, o.modseq, o.size))?
                    )
                }
                Op::Store {
                    mbx,
                    lo,
                    hi,
                    op,
                    flags,
                    kw: k,
                    since,
                } => {
                    let m = get(*mbx).await?;
                    let mut f = Flags::system(SystemFlags::from_bits(*flags));
                    if let Some(k) = kw(*k) {
                        f.insert_keyword(k);
                    }
                    let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][*op as usize];
                    format!(
                        "{:?}",
                        s.store_flags(m, &UidSet::range(*lo, *hi), op, &f, *since)
                            .await?
                    )
                }
                Op::Copy { from, to, lo, hi } => {
                    let (f, t) = (get(*from).await?, get(*to).await?);
                    format!(
                        "{:?}",
                        s.copy(f, &UidSet::range(*lo, *hi), t).await?.mapping
                    )
                }
                Op::Move { from, to, lo, hi } => {
                    let (f, t) = (get(*from).await?, get(*to).await?);
                    format!(
                        "{:?}",
                        s.move_messages(f, &UidSet::range(*lo, *hi), t)
                            .await?
                            .mapping
                    )
                }
                Op::Expunge { mbx, lo, hi } => {
                    let m = get(*mbx).await?;
                    format!("{:?}", s.expunge(m, &UidSet::range(*lo, *hi)).await?)
                }
                Op::Create { name } => {
                    s.create_mailbox(a.id, r(*name), CreateMailbox::default())
                        .await?;
                    "created".into()
                }
                Op::Delete { name } => {
                    s.delete_mailbox(a.id, r(*name)).await?;
                    "deleted".into()
                }
                Op::Rename { from, to } => {
                    s.rename_mailbox(a.id, r(*from), r(*to)).await?;
                    "renamed".into()
                }
            })
        }
        .await;
        trace.push(match res {
            Ok(s) => s,
            Err(e) => format!("error: {}", variant(&e)),
        });
    }
    trace
}

fn variant(e: &StoreError) -> String {
    format!("{e:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    /// With every body in a file, every body in the index, or a mix (the limit falls inside
    /// the generated sizes), and reopened with another setting.
    fn memory_and_disk_agree(
        ops in proptest::collection::vec(op_strategy(), 1..40),
        inline in prop_oneof![Just(0u64), Just(1500), Just(64 * 1024)],
        reopen_inline in prop_oneof![Just(0u64), Just(64 * 1024)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let m = MemoryStore::with_config(StoreConfig::for_tests());
            let cfg = StoreConfig::for_tests().with_inline_body_max(inline);
            let d = DiskStore::open(dir.path(), cfg).unwrap();
            let tm = run_ops(&m, &ops).await;
            let td = run_ops(&d, &ops).await;
            assert_eq!(tm, td);
            let om = observe(&m).await;
            assert_eq!(om, observe(&d).await);
            drop(d);
            let cfg = StoreConfig::for_tests().with_inline_body_max(reopen_inline);
            let d = DiskStore::open(dir.path(), cfg).unwrap();
            assert_eq!(om, observe(&d).await, "state changed across reopen");
            // More operations on the reopened store still agree.
            assert_eq!(run_ops(&m, &ops).await, run_ops(&d, &ops).await);
            assert_eq!(observe(&m).await, observe(&d).await);
        });
        // Every stored message has exactly one body: an index row or a file.
        let stored = rt().block_on(async {
            let d = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
            let mut n = 0;
            for a in d.list_accounts().await.unwrap() {
                n += d.quota_usage(a.id).await.unwrap().messages;
            }
            n
        });
        let bodies = count_files(&dir.path().join("msg")) + inline_rows(dir.path());
        prop_assert_eq!(bodies as u64, stored);
        prop_assert_eq!(count_files(&dir.path().join("tmp")), 0);
    }
}

#[test]
fn corrupt_index_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.redb"), vec![0xA5u8; 8192]).unwrap();
    let r = DiskStore::open(dir.path(), StoreConfig::for_tests());
    assert!(r.is_err());
}

#[test]
fn missing_body_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), files_only()).unwrap();
        let a = s
            .create_account(NewAccount::new("m@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let _ = s
            .append(inbox, AppendOptions::default(), msg("x", "y"))
            .await
            .unwrap();
        let sub = std::fs::read_dir(dir.path().join("msg"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for f in std::fs::read_dir(sub).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        let e = s.open_body(inbox, 1).await.unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e:?}");
    });
}

/// Bodies up to `INLINE_READ_MAX` are read in one go, larger ones streamed, and bodies kept
/// in the index from there: every path gives the exact bytes, whole and as ranges, and a
/// body file shorter than the index says is an I/O error, never a silently short message.
#[test]
fn small_and_large_bodies_read_exactly() {
    let line = "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    let at_limit = INLINE_READ_MAX as usize;
    let ceiling = StoreConfig::INLINE_BODY_CEILING as usize;
    let sizes = [200, at_limit, at_limit + 1, ceiling, 3 * at_limit];
    let bodies: Vec<Bytes> = sizes
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let head = format!("Subject: m{i}\r\n\r\n");
            let mut m = head.into_bytes();
            while m.len() + line.len() < target {
                m.extend_from_slice(line.as_bytes());
            }
            m.extend(std::iter::repeat_n(b'x', target - 2 - m.len()));
            m.extend_from_slice(b"\r\n");
            assert_eq!(m.len(), target);
            Bytes::from(m)
        })
        .collect();
    // (setting, how many of the bodies get a file)
    let modes = [
        (files_only(), 5),
        (StoreConfig::for_tests(), 4),
        (StoreConfig::for_tests().with_inline_body_max(u64::MAX), 1),
    ];
    for (cfg, want_files) in modes {
        let max = cfg.inline_body_max;
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let s = DiskStore::open(dir.path(), cfg).unwrap();
            let a = s
                .create_account(NewAccount::new("r@example.org", None))
                .await
                .unwrap();
            let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
            for m in &bodies {
                s.append(inbox, AppendOptions::default(), m.clone())
                    .await
                    .unwrap();
            }
            for (uid, m) in (1u32..).zip(&bodies) {
                let r = s.open_body(inbox, uid).await.unwrap();
                assert_eq!(r.len(), m.len() as u64);
                assert!(r.read_all().await.unwrap() == m[..], "uid {uid}, max {max}");
                let len = m.len() as u64;
                let r = s.open_range(inbox, uid, len - 100, 1000).await.unwrap();
                assert_eq!(r.read_all().await.unwrap(), m[m.len() - 100..]);
                let r = s.open_range(inbox, uid, 7, 50).await.unwrap();
                assert_eq!(r.read_all().await.unwrap(), m[7..57]);
            }
        });
        assert_eq!(
            count_files(&dir.path().join("msg")),
            want_files,
            "max {max}"
        );
        assert_eq!(inline_rows(dir.path()), 5 - want_files, "max {max}");
    }
    // Cut a small body's file short on disk.
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), files_only()).unwrap();
        let a = s
            .create_account(NewAccount::new("r@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        s.append(inbox, AppendOptions::default(), bodies[0].clone())
            .await
            .unwrap();
        let mut files = Vec::new();
        for d in std::fs::read_dir(dir.path().join("msg")).unwrap() {
            for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
        assert_eq!(files.len(), 1);
        std::fs::write(&files[0], &bodies[0][..150]).unwrap();
        let e = s.open_body(inbox, 1).await.unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e:?}");
    });
}

/// Concurrent appends against a message quota: the group commit checks the quota
/// cumulatively, so exactly the allowed number get in.
#[test]
fn concurrent_appends_respect_quota() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        let a = s
            .create_account(NewAccount::new("q@example.org", None))
            .await
            .unwrap();
        s.set_quota(
            a.id,
            Quota {
                max_bytes: None,
                max_messages: Some(5),
            },
        )
        .await
        .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.append(inbox, AppendOptions::default(), msg(&format!("c{i}"), "b"))
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        let mut over = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::OverQuota {
                    resource: "messages",
                    ..
                }) => over += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((ok, over), (5, 7));
        let st = s.mailbox_status(inbox).await.unwrap();
        assert_eq!((st.messages, st.uidnext), (5, 6));
        assert_eq!(count_files(&dir.path().join("tmp")), 0);
    });
}

/// A streamed append keeps small messages in memory and writes them at commit; one that
/// outgrows the buffer (256 KiB) mid-stream moves to its file with nothing lost or doubled,
/// whatever the chunk sizes; an aborted one leaves no file behind.
#[test]
fn streamed_appends_across_the_memory_buffer() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        let a = s
            .create_account(NewAccount::new("b@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let body = |n: usize| {
            let mut m = b"Subject: b\r\n\r\n".to_vec();
            m.extend((0..n).map(|i| b"abcdefghij\r\n"[i % 12]));
            m
        };
        // (message size, chunk sizes in a cycle)
        let cases: [(usize, &[usize]); 4] = [
            (10_000, &[1024]),
            (256 * 1024 - 14, &[200 * 1024, 100 * 1024]),
            (300 * 1024, &[200 * 1024, 100 * 1024]),
            (700 * 1024, &[4096, 65_536, 1]),
        ];
        let mut uids = Vec::new();
        for (n, chunks) in cases {
            let m = body(n);
            let mut sink = s
                .begin_append(inbox, AppendOptions::default())
                .await
                .unwrap();
            let mut at = 0;
            for &c in chunks.iter().cycle() {
                if at >= m.len() {
                    break;
                }
                let end = (at + c).min(m.len());
                sink.write(&m[at..end]).await.unwrap();
                at = end;
            }
            let out = sink.commit().await.unwrap();
            uids.push((out.uid, m));
        }
        for (uid, m) in &uids {
            let r = s.open_body(inbox, *uid).await.unwrap();
            assert_eq!(r.len(), m.len() as u64, "uid {uid}");
            assert!(r.read_all().await.unwrap() == m[..], "uid {uid}");
        }
        let mut aborted = s
            .begin_append(inbox, AppendOptions::default())
            .await
            .unwrap();
        aborted.write(&body(300 * 1024)).await.unwrap();
        aborted.abort().await;
        let leftovers = std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "files left in tmp/");
    });
}

/// A store of format version 1 (every body a file, no `bodies` table) opens, reads its
/// files and takes new bodies into the index; a newer format is refused, naming the file
/// and both versions.
#[test]
fn format_1_is_upgraded_and_newer_formats_refused() {
    use redb::TableDefinition;
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
    let dir = tempfile::tempdir().unwrap();
    let old = msg("old", "from format 1");
    let inbox = rt().block_on(async {
        let s = DiskStore::open(dir.path(), files_only()).unwrap();
        let a = s
            .create_account(NewAccount::new("v@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        s.append(inbox, AppendOptions::default(), old.clone())
            .await
            .unwrap();
        inbox
    });
    let set_format = |v: u64, drop_bodies: bool| {
        let db = redb::Database::open(dir.path().join("index.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META).unwrap().insert("format", v).unwrap();
        if drop_bodies {
            assert!(tx.delete_table(BODIES).unwrap());
        }
        tx.commit().unwrap();
    };
    set_format(1, true);
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        let body = s
            .open_body(inbox, 1)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap();
        assert_eq!(body, old.to_vec());
        let new = msg("new", "into the index");
        s.append(inbox, AppendOptions::default(), new.clone())
            .await
            .unwrap();
        let copy = s.mailbox(inbox.account, "Archive").await.unwrap();
        s.copy(inbox, &UidSet::all(), copy.mailbox).await.unwrap();
        let body = s
            .open_body(copy.mailbox, 2)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap();
        assert_eq!(body, new.to_vec());
    });
    // Two files (the old message and its copy), two rows (the new one and its copy).
    assert_eq!(count_files(&dir.path().join("msg")), 2);
    assert_eq!(inline_rows(dir.path()), 2);
    set_format(3, false);
    let e = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
    assert!(
        text.contains("format version 3") && text.contains("understands 2"),
        "{text}"
    );
    assert!(text.contains("index.redb"), "{text}");
}

/// A move keeps each body where it is (no second row, no link, nothing unlinked); a copy
/// gives the copy its own row or file. Checked with one body of each kind.
#[test]
fn move_keeps_bodies_in_place_and_copy_duplicates_them() {
    let dir = tempfile::tempdir().unwrap();
    let small = msg("small", "kept in the index");
    let large = Bytes::from(
        [
            &b"Subject: large\r\n\r\n"[..],
            "a line of text\r\n".repeat(200).as_bytes(),
        ]
        .concat(),
    );
    let cfg = StoreConfig::for_tests().with_inline_body_max(1000);
    let count = |dir: &Path| {
        (
            inline_rows(dir),
            count_files(&dir.join("msg")) + count_files(&dir.join("tmp")),
        )
    };
    let (inbox, archive) = rt().block_on(async {
        let s = DiskStore::open(dir.path(), cfg.clone()).unwrap();
        let a = s
            .create_account(NewAccount::new("mv@example.org", None))
            .await
            .unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let archive = s.mailbox(a.id, "Archive").await.unwrap().mailbox;
        for m in [&small, &large] {
            s.append(inbox, AppendOptions::default(), m.clone())
                .await
                .unwrap();
        }
        (inbox, archive)
    });
    assert_eq!(count(dir.path()), (1, 1));
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), cfg.clone()).unwrap();
        let out = s
            .move_messages(inbox, &UidSet::all(), archive)
            .await
            .unwrap();
        assert_eq!(out.mapping.len(), 2);
        for (uid, m) in [(1, &small), (2, &large)] {
            let got = s.open_body(archive, uid).await.unwrap().read_all().await;
            assert_eq!(got.unwrap(), m.to_vec());
        }
    });
    assert_eq!(count(dir.path()), (1, 1), "a move stores nothing twice");
    rt().block_on(async {
        let s = DiskStore::open(dir.path(), cfg.clone()).unwrap();
        s.copy(archive, &UidSet::all(), inbox).await.unwrap();
        s.expunge(archive, &UidSet::all()).await.unwrap();
        for (uid, m) in [(3, &small), (4, &large)] {
            let got = s.open_body(inbox, uid).await.unwrap().read_all().await;
            assert_eq!(got.unwrap(), m.to_vec());
        }
    });
    assert_eq!(count(dir.path()), (1, 1), "copies kept, originals removed");
}
