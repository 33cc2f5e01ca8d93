//! Migration throughput: 10,000 messages from Dovecot into our `DiskStore`, beside mbsync
//! (isync) copying the same mailbox from the same Dovecot into a local Maildir.
//!
//! Ignored by default (it takes a while); run it with a release build:
//!
//! ```text
//! cargo test --release -p sync-policy --test engine_bench -- --ignored --nocapture
//! ```
//!
//! Figures go to docs/bench-notes/import.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

mod engine_common;

use std::time::{Duration, Instant};

use engine_common::Dovecot;
use mailstore_core::{DiskStore, MailStore, NewAccount, StoreConfig};
use sync_policy::UnixTime;
use sync_policy::engine::migration::{ImapSource, MigrationOptions, Progress, migrate};
use sync_policy::engine::{Credentials, Endpoint};
use sync_policy::import::TlsMode;

const MESSAGES: usize = 10_000;
const FOLDERS: [&str; 4] = ["INBOX", "Archive", "Work", "Work.Reports"];

/// A message of 1 to ~12 KiB (deterministic sizes), realistic headers.
fn bench_message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "Return-Path: <sender{i}@example.net>\r\nReceived: from mx.example.net by mail.example.org; Mon, 2 Jan 2023 10:00:00 +0000\r\n\
         From: Sender {i} <sender{i}@example.net>\r\nTo: tester@example.org\r\nSubject: bench message {i}\r\n\
         Message-ID: <bench.{i}@example.net>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let lines = 10 + (i * 7919) % 160;
    for l in 0..lines {
        m.extend_from_slice(
            format!(
                "line {l:04} of message {i:05}: the quick brown fox jumps over the lazy dog\r\n"
            )
            .as_bytes(),
        );
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_migration_10k_vs_mbsync() {
    let Some(d) = Dovecot::start() else { return };
    let mut total_bytes = 0u64;
    for i in 0..MESSAGES {
        let folder = FOLDERS[i % FOLDERS.len()];
        let body = bench_message(i);
        total_bytes += body.len() as u64;
        let dir = d.maildir("tester", folder);
        if i < FOLDERS.len() {
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
            }
        }
        std::fs::write(
            dir.join("cur")
                .join(format!("{}.B{i}.bench:2,S", 1_700_000_000 + i)),
            body,
        )
        .unwrap();
    }
    d.fix_owner("tester");
    // Let Dovecot build its indexes once, so neither side pays for that.
    {
        let mut c = imap_proto::tokio::Client::connect(
            ("127.0.0.1", d.imap()),
            imap_proto::tokio::ClientConfig::plain(),
        )
        .await
        .unwrap();
        c.login("tester", "secret").await.unwrap();
        for f in FOLDERS {
            let n = c.examine(f).await.unwrap().exists;
            assert_eq!(n as usize, MESSAGES / FOLDERS.len());
        }
        c.logout().await.unwrap();
    }
    let mb = total_bytes as f64 / 1e6;
    println!(
        "mailbox: {MESSAGES} messages in {} folders, {total_bytes} bytes ({mb:.1} MB)",
        FOLDERS.len()
    );

    // Ours: Dovecot -> DiskStore (durable: every append is fsynced).
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
    let acct = store
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id;
    let ep =
        Endpoint::new("127.0.0.1", d.imap(), TlsMode::None).with_timeout(Duration::from_secs(120));
    let src = ImapSource::new(ep, Credentials::password("tester", "secret"));
    let mut opts = MigrationOptions::default();
    opts.deliver_notices = false;
    let t = Instant::now();
    let r = migrate(
        &store,
        acct,
        "bench",
        &src,
        &opts,
        UnixTime(0),
        |_: &Progress| {},
    )
    .await
    .unwrap();
    let ours = t.elapsed().as_secs_f64();
    assert_eq!(r.copied as usize, MESSAGES);
    println!(
        "sync-policy migrate -> DiskStore: {ours:.2} s, {:.0} msg/s, {:.1} MB/s",
        MESSAGES as f64 / ours,
        mb / ours
    );

    // Without keeping UIDs: every folder gets parallel appends.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = DiskStore::open(dir2.path(), StoreConfig::for_tests()).unwrap();
    let acct2 = store2
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id;
    let mut opts2 = opts.clone();
    opts2.keep_uids = false;
    let t = Instant::now();
    let r = migrate(
        &store2,
        acct2,
        "bench",
        &src,
        &opts2,
        UnixTime(0),
        |_: &Progress| {},
    )
    .await
    .unwrap();
    let no_keep = t.elapsed().as_secs_f64();
    assert_eq!(r.copied as usize, MESSAGES);
    println!(
        "sync-policy migrate -> DiskStore, keep_uids off: {no_keep:.2} s, {:.0} msg/s, {:.1} MB/s",
        MESSAGES as f64 / no_keep,
        mb / no_keep
    );

    // The same into a MemoryStore: the engine and the network without the disk.
    let mem = mailstore_core::MemoryStore::new();
    let macct = mem
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id;
    let t = Instant::now();
    let r = migrate(
        &mem,
        macct,
        "bench",
        &src,
        &opts,
        UnixTime(0),
        |_: &Progress| {},
    )
    .await
    .unwrap();
    let in_memory = t.elapsed().as_secs_f64();
    assert_eq!(r.copied as usize, MESSAGES);
    println!(
        "sync-policy migrate -> MemoryStore: {in_memory:.2} s, {:.0} msg/s, {:.1} MB/s",
        MESSAGES as f64 / in_memory,
        mb / in_memory
    );

    // mbsync: Dovecot -> local Maildir.
    if !mail_testkit::peer::require("mbsync", "the comparison needs isync's mbsync") {
        return;
    }
    let m = tempfile::tempdir().unwrap();
    let maildir = m.path().join("Maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let conf = m.path().join("mbsyncrc");
    std::fs::write(
        &conf,
        format!(
            "IMAPAccount dovecot\nHost 127.0.0.1\nPort {port}\nUser tester\nPass secret\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount dovecot\n\n\
             MaildirStore local\nPath {p}/\nInbox {p}/INBOX\nSubFolders Verbatim\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n",
            port = d.imap(),
            p = maildir.display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = std::process::Command::new("mbsync")
        .arg("-c")
        .arg(&conf)
        .arg("-q")
        .arg("bench")
        .output()
        .unwrap();
    let theirs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "mbsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut copied = 0;
    let mut stack = vec![maildir.clone()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .parent()
                .and_then(|x| x.file_name())
                .is_some_and(|n| n == "cur" || n == "new")
            {
                copied += 1;
            }
        }
    }
    assert_eq!(copied, MESSAGES, "mbsync copied {copied}");
    println!(
        "mbsync (isync 1.4) -> Maildir: {theirs:.2} s, {:.0} msg/s, {:.1} MB/s",
        MESSAGES as f64 / theirs,
        mb / theirs
    );
}
