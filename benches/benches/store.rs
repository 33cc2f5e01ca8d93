//! mailstore-core benchmarks: durable appends, opening and reading a 100,000-message
//! mailbox, STORE and EXPUNGE on 10,000 messages, RAM per indexed message.
//!
//! Run: `cargo bench -p mail-benches --bench store`. Figures: docs/bench-notes/store.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mailstore_core::*;

const BIG: u32 = 100_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn message(size: usize, n: usize) -> Bytes {
    let head = format!(
        "From: bench@example.org\r\nTo: user@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@bench>\r\n\r\n"
    );
    let mut v = head.into_bytes();
    while v.len() < size {
        v.extend_from_slice(b"The quick brown fox jumps over the lazy dog 0123456789.\r\n");
    }
    v.truncate(size);
    Bytes::from(v)
}

fn cfg() -> StoreConfig {
    StoreConfig::for_tests()
}

async fn account(s: &DiskStore) -> MailboxRef {
    let a = match s.find_account("bench@example.org").await.unwrap() {
        Some(a) => a,
        None => s
            .create_account(NewAccount::new("bench@example.org", None))
            .await
            .unwrap(),
    };
    s.mailbox(a.id, "INBOX").await.unwrap().mailbox
}

fn durable_append(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("store/durable_append");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    // 4 KiB kept in the index (one flush) and in a file (three), 100 KiB in a file.
    for (size, inline_max, place) in [
        (4 * 1024, 64 * 1024, "in_index"),
        (4 * 1024, 0, "file"),
        (100 * 1024, 64 * 1024, "file"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStore::open(dir.path(), cfg().with_inline_body_max(inline_max)).unwrap();
        let inbox = rt.block_on(account(&s));
        let body = message(size, 0);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{}KiB_{place}", size / 1024), |b| {
            b.iter(|| {
                rt.block_on(s.append(inbox, AppendOptions::default(), body.clone()))
                    .unwrap()
            })
        });
    }
    // Eight deliveries at once (e.g. eight SMTP sessions).
    let dir = tempfile::tempdir().unwrap();
    let s = DiskStore::open(dir.path(), cfg()).unwrap();
    let inbox = rt.block_on(account(&s));
    let body = message(4 * 1024, 0);
    g.throughput(Throughput::Elements(8));
    g.bench_function("4KiB_8_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let (s, body) = (s.clone(), body.clone());
                        tokio::spawn(async move {
                            s.append(inbox, AppendOptions::default(), body)
                                .await
                                .unwrap()
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

/// Builds a 100,000-message INBOX: 100 durable appends of distinct messages, then copies
/// into the same mailbox (hard links, one fsync per batch) until 100,000.
fn build_big(dir: &std::path::Path) {
    let rt = rt();
    rt.block_on(async {
        let s = DiskStore::open(dir, cfg()).unwrap();
        let inbox = account(&s).await;
        for i in 0..100 {
            let flags = if i % 3 == 0 {
                Flags::system(SystemFlags::SEEN).with_keyword("$Forwarded")
            } else {
                Flags::new()
            };
            s.append(
                inbox,
                AppendOptions::with_flags(flags),
                message(2048 + i * 37, i),
            )
            .await
            .unwrap();
        }
        loop {
            let n = s.mailbox_status(inbox).await.unwrap().messages;
            if n >= BIG {
                break;
            }
            let take = n.min(BIG - n);
            let _ = s.copy(inbox, &UidSet::range(1, take), inbox).await.unwrap();
        }
    });
}

fn big_mailbox(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    build_big(dir.path());
    eprintln!("built a {BIG}-message mailbox in {:?}", t.elapsed());
    let rt = rt();

    let mut g = c.benchmark_group("store/100k");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    // Opening only: closing (redb's final fsync) happens outside the timing.
    g.bench_function("open_store_and_mailbox", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let s = DiskStore::open(dir.path(), cfg()).unwrap();
                let info = rt.block_on(async {
                    let a = s.find_account("bench@example.org").await.unwrap().unwrap();
                    s.mailbox(a.id, "INBOX").await.unwrap()
                });
                total += t.elapsed();
                assert_eq!(info.messages, BIG);
                drop(s);
            }
            total
        })
    });

    let t = Instant::now();
    let s = DiskStore::open(dir.path(), cfg()).unwrap();
    let opened = t.elapsed();
    let t = Instant::now();
    drop(s);
    eprintln!("one open: {opened:?}, one close: {:?}", t.elapsed());
    let s = DiskStore::open(dir.path(), cfg()).unwrap();
    let inbox = rt.block_on(account(&s));
    let (bytes, count) = s.index_memory();
    eprintln!(
        "index RAM: {bytes} bytes for {count} messages = {:.1} bytes/message",
        bytes as f64 / count as f64
    );

    g.bench_function("read_all_flags", |b| {
        b.iter(|| {
            let snap = rt.block_on(s.snapshot(inbox)).unwrap();
            assert_eq!(snap.messages.len(), BIG as usize);
            snap
        })
    });

    let mut on = false;
    g.bench_function("store_flags_10k", |b| {
        b.iter(|| {
            on = !on;
            let op = if on { FlagOp::Add } else { FlagOp::Remove };
            let out = rt
                .block_on(s.store_flags(
                    inbox,
                    &UidSet::range(1, 10_000),
                    op,
                    &Flags::system(SystemFlags::FLAGGED),
                    None,
                ))
                .unwrap();
            assert_eq!(out.updated.len(), 10_000);
        })
    });

    g.bench_function("expunge_10k", |b| {
        b.iter_batched(
            || {
                // Untimed: put 10,000 fresh copies at the end.
                let out = rt
                    .block_on(s.copy(inbox, &UidSet::range(1, 10_000), inbox))
                    .unwrap();
                let first = out.mapping.first().unwrap().to;
                let last = out.mapping.last().unwrap().to;
                UidSet::range(first, last)
            },
            |set| {
                let gone = rt.block_on(s.expunge(inbox, &set)).unwrap();
                assert_eq!(gone.len(), 10_000);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The cost of one login with the default argon2id parameters (7 MiB, t=5, p=1; 19 MiB, t=2
/// before 2026-11-25 02:45).
fn login_cost(c: &mut Criterion) {
    let rt = rt();
    let s = MemoryStore::new();
    rt.block_on(s.create_account(NewAccount::new("login@example.org", Some("correct horse"))))
        .unwrap();
    let mut g = c.benchmark_group("store/credentials");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("verify_login_default_argon2", |b| {
        b.iter(|| {
            rt.block_on(s.verify_login("login@example.org", "correct horse"))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, durable_append, big_mailbox, login_cost);
criterion_main!(benches);
