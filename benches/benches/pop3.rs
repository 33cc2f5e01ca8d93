//! POP3 benchmarks: command parsing, RETR byte-stuffing (server) and un-stuffing (client),
//! the server machine on a pipelined burst, and whole sessions over `tokio::io::duplex`.
//!
//! `cargo bench -p mail-benches --bench pop3 -- --warm-up-time 1 --measurement-time 3`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pop3_proto::encode::{Stuffer, Unstuffer};
use pop3_proto::server::{Config, Connection, Event, Reply};
use pop3_proto::tokio::{AuthError, Backend, Client, MaybeTls, ServeConfig, serve};
use pop3_proto::types::{MessageInfo, Secret};

const COMMANDS: &[&[u8]] = &[
    b"USER alice@example.org",
    b"PASS correct horse battery staple",
    b"STAT",
    b"LIST",
    b"UIDL 17",
    b"RETR 17",
    b"TOP 3 10",
    b"DELE 17",
    b"NOOP",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
    b"CAPA",
    b"QUIT",
];

fn parse_commands(c: &mut Criterion) {
    let bytes: usize = COMMANDS.iter().map(|l| l.len() + 2).sum();
    let mut g = c.benchmark_group("pop3_parse_commands");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("bytes", |b| {
        b.iter(|| {
            for l in COMMANDS {
                black_box(pop3_proto::parse::command(black_box(l)).ok());
            }
        })
    });
    g.throughput(Throughput::Elements(COMMANDS.len() as u64));
    g.bench_function("commands", |b| {
        b.iter(|| {
            for l in COMMANDS {
                black_box(pop3_proto::parse::command(black_box(l)).ok());
            }
        })
    });
    g.finish();
}

/// A 10 MiB body of 76-column lines, one in 20 starting with a dot.
fn body() -> Vec<u8> {
    let mut m = Vec::with_capacity(10 << 20);
    let mut i = 0u64;
    while m.len() < 10 << 20 {
        if i.is_multiple_of(20) {
            m.push(b'.');
        }
        m.extend_from_slice(
            b"VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZy4gMDEyMzQ1Njc4OQ\r\n",
        );
        i += 1;
    }
    m
}

fn retr_stuffing(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("pop3_retr");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("stuff_64k_chunks", |b| {
        let mut out = BytesMut::with_capacity(body.len() + body.len() / 16);
        b.iter(|| {
            out.clear();
            let mut s = Stuffer::new();
            for chunk in body.chunks(64 * 1024) {
                s.push(chunk, &mut out);
            }
            s.finish(&mut out);
            black_box(out.len());
        })
    });
    let mut stuffed = BytesMut::new();
    let mut s = Stuffer::new();
    s.push(&body, &mut stuffed);
    s.finish(&mut stuffed);
    g.bench_function("unstuff_64k_chunks", |b| {
        let mut out = BytesMut::with_capacity(body.len());
        b.iter(|| {
            out.clear();
            let mut u = Unstuffer::new();
            for chunk in stuffed.chunks(64 * 1024) {
                u.push(chunk, &mut out);
            }
            assert!(u.is_done());
            black_box(out.len());
        })
    });
    // The server machine end to end: RETR event, chunks in, stuffed bytes out.
    g.bench_function("server_machine_retr", |b| {
        let mut conn = Connection::new(Config::default(), Instant::now());
        conn.feed(b"USER a\r\nPASS b\r\n");
        let _ = conn.next_event();
        conn.reply(Reply::LoggedIn(vec![MessageInfo::new(
            body.len() as u64,
            "u1",
        )]))
        .unwrap();
        let _ = conn.take_output();
        b.iter(|| {
            conn.feed(b"RETR 1\r\n");
            let Some(Event::Retr { .. }) = conn.next_event() else {
                panic!()
            };
            let mut n = 0;
            for chunk in body.chunks(64 * 1024) {
                conn.send_body_chunk(chunk).unwrap();
                n += conn.take_output().map_or(0, |o| o.len());
            }
            conn.finish_body().unwrap();
            n += conn.take_output().map_or(0, |o| o.len());
            black_box(n);
        })
    });
    g.finish();
}

fn server_pipelined(c: &mut Criterion) {
    let mut burst = Vec::new();
    for i in 0..100 {
        burst.extend_from_slice(
            format!(
                "LIST {}\r\nUIDL {}\r\nNOOP\r\nSTAT\r\n",
                i % 50 + 1,
                i % 50 + 1
            )
            .as_bytes(),
        );
    }
    let maildrop: Vec<MessageInfo> = (0..50)
        .map(|i| MessageInfo::new(1000 + i, format!("uid-{i:08}")))
        .collect();
    let mut g = c.benchmark_group("pop3_server_machine");
    g.throughput(Throughput::Elements(400));
    g.bench_function("pipelined_400_commands", |b| {
        b.iter(|| {
            let mut conn = Connection::new(Config::default(), Instant::now());
            conn.feed(b"USER a\r\nPASS b\r\n");
            let _ = conn.next_event();
            conn.reply(Reply::LoggedIn(maildrop.clone())).unwrap();
            conn.feed(&burst);
            while conn.next_event().is_some() {}
            black_box(conn.take_output());
        })
    });
    g.finish();
}

struct Mem(Vec<Bytes>);

impl Backend for Mem {
    type Maildrop = ();
    type Body = Cursor<Bytes>;

    async fn verify_password(&self, _: &str, p: &Secret) -> Result<(), AuthError> {
        if &p.expose()[..] == b"secret" {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }

    async fn open_maildrop(&self, _: &str) -> Result<((), Vec<MessageInfo>), AuthError> {
        Ok((
            (),
            self.0
                .iter()
                .enumerate()
                .map(|(i, m)| MessageInfo::new(m.len() as u64, format!("u{i}")))
                .collect(),
        ))
    }

    async fn read_message(&self, _: &mut (), i: usize) -> std::io::Result<Cursor<Bytes>> {
        Ok(Cursor::new(self.0[i].clone()))
    }

    async fn commit(&self, _: (), _: Vec<usize>) -> std::io::Result<()> {
        Ok(())
    }
}

fn sessions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let msg = Bytes::from(
        b"From: a@example.org\r\nSubject: hello\r\n\r\n"
            .iter()
            .chain(&[b'x'; 4000])
            .copied()
            .chain(*b"\r\n")
            .collect::<Vec<u8>>(),
    );
    let backend = Arc::new(Mem(vec![msg.clone(), msg]));
    let mut g = c.benchmark_group("pop3_session");
    g.throughput(Throughput::Elements(1));
    g.bench_function("duplex_login_stat_uidl_retr2_dele_quit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (a, s) = tokio::io::duplex(64 * 1024);
                let be = backend.clone();
                let server = tokio::spawn(async move {
                    serve(MaybeTls::Plain(s), ServeConfig::default(), &*be).await
                });
                let mut c = Client::new(MaybeTls::Plain(a)).await.unwrap();
                c.login("alice", "secret").await.unwrap();
                black_box(c.stat().await.unwrap());
                black_box(c.uidl().await.unwrap());
                black_box(c.retr(1).await.unwrap());
                black_box(c.retr(2).await.unwrap());
                c.dele(1).await.unwrap();
                c.quit().await.unwrap();
                server.await.unwrap().unwrap();
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    parse_commands,
    retr_stuffing,
    server_pipelined,
    sessions
);
criterion_main!(benches);
