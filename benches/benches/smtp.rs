//! SMTP benches, ours side by side with the crates.io `smtp-proto` 0.2 (`peer_smtp_proto`):
//! command-line parsing, and DATA dot-unstuffing with end detection.
//!
//! Run: `cargo bench -p mail-benches --bench smtp -- --warm-up-time 1 --measurement-time 3`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::server::{
    BareLf, Config, Connection, Decoded, DotDecoder, Event, MailDecision, MessageDecision,
    RcptDecision,
};

/// A realistic session's command lines (each with its CRLF).
const COMMANDS: &[&[u8]] = &[
    b"EHLO mail-relay.example.org\r\n",
    b"MAIL FROM:<newsletter-bounces+alice=example.com@lists.example.org> SIZE=48213 BODY=8BITMIME\r\n",
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<bob.smith@mail.example.net> NOTIFY=SUCCESS,FAILURE\r\n",
    b"RCPT TO:<carol@example.com>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"MAIL FROM:<> \r\n",
    b"NOOP\r\n",
    b"AUTH PLAIN AHVzZXJAZXhhbXBsZS5jb20AcGFzc3dvcmQxMjM=\r\n",
    b"QUIT\r\n",
];

fn commands(c: &mut Criterion) {
    let mut all = Vec::new();
    for _ in 0..100 {
        for cmd in COMMANDS {
            all.extend_from_slice(cmd);
        }
    }
    let mut g = c.benchmark_group("smtp_commands");
    g.throughput(Throughput::Bytes(all.len() as u64));
    // The lines arrive in one read buffer, which ours shares (`Bytes`): `command_in` parses
    // a line inside it without touching the reference count; a mailbox longer than 60
    // octets would become a zero-copy slice of it (none is, here: they are stored inline).
    let shared = Bytes::from(all.clone());
    g.bench_function("ours/parse::command_in", |b| {
        b.iter(|| {
            let mut rest = shared.as_ref();
            let mut n = 0;
            while let Some((line, tail)) = smtp_proto::parse::split_line(rest) {
                if smtp_proto::parse::command_in(&shared, black_box(line)).is_ok() {
                    n += 1;
                }
                rest = tail;
            }
            assert_eq!(n, 1100);
            n
        })
    });
    // The same over plain slices: mailboxes up to 60 octets are stored inline, longer ones
    // copied out (one allocation each).
    g.bench_function("ours/parse::command", |b| {
        b.iter(|| {
            let mut rest = all.as_slice();
            let mut n = 0;
            while let Some((line, tail)) = smtp_proto::parse::split_line(rest) {
                if smtp_proto::parse::command(black_box(line)).is_ok() {
                    n += 1;
                }
                rest = tail;
            }
            assert_eq!(n, 1100);
            n
        })
    });
    // The peer leaves the AUTH initial response base64-encoded, where ours hands out the
    // decoded octets; the peer side decodes it with the same function, so that both sides
    // hand the application the same thing.
    g.bench_function("peer/Request::parse", |b| {
        b.iter(|| {
            let mut it = all.iter();
            let mut n = 0;
            while it.len() > 0 {
                match peer_smtp_proto::Request::parse(black_box(&mut it)) {
                    Ok(peer_smtp_proto::Request::Auth {
                        initial_response, ..
                    }) => {
                        if smtp_proto::parse::decode_sasl(initial_response.as_bytes()).is_ok() {
                            n += 1;
                        }
                    }
                    Ok(_) => n += 1,
                    Err(_) => {}
                }
            }
            assert_eq!(n, 1100);
            n
        })
    });
    g.finish();
}

/// A ~1 MiB message: 76-column text lines, every 20th line starting with a dot.
fn message() -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n".to_vec();
    let mut i = 0;
    while m.len() < 1 << 20 {
        if i % 20 == 0 {
            m.extend_from_slice(b"..");
        }
        m.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod te\r\n",
        );
        i += 1;
    }
    m.extend_from_slice(b".\r\n");
    m
}

const READ: usize = 64 * 1024;

fn decode_all(reads: Vec<BytesMut>, mode: BareLf, chunks: &mut Vec<Bytes>) -> usize {
    let mut d = DotDecoder::new(mode);
    let mut total = 0;
    let mut input = BytesMut::new();
    'outer: for read in reads {
        if input.is_empty() {
            input = read;
        } else {
            input.extend_from_slice(&read);
        }
        loop {
            match d.decode(&mut input) {
                Decoded::Chunk { data, .. } => {
                    total += data.len();
                    chunks.push(data);
                }
                Decoded::End => break 'outer,
                _ => break,
            }
        }
    }
    total
}

fn data(c: &mut Criterion) {
    let msg = message();
    let dots = msg.windows(3).filter(|w| w == b"\n..").count();
    let expected = msg.len() - 3 - dots - 2;
    let mut g = c.benchmark_group("smtp_data_unstuff");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    // The wire bytes arrive in 64 KiB reads; ours decodes from the read buffer (filled in
    // the untimed setup, as a socket read would), the peer from the same bytes as slices.
    // `BareLf::Accept` does what the peer does (bare LF and bare CR pass through unchecked);
    // `BareLf::Reject` also checks every line ending, which the peer never does.
    for (name, mode) in [
        ("ours/DotDecoder(Accept)", BareLf::Accept),
        ("ours/DotDecoder(Reject)", BareLf::Reject),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let reads: Vec<BytesMut> = msg.chunks(READ).map(BytesMut::from).collect();
                    // The application's chunk list, its pages touched here (untimed), as
                    // the peer's reused output `Vec` is: a fresh 128 KiB allocation is a
                    // fresh `mmap`, whose page faults would otherwise land in the timing.
                    let mut chunks = Vec::with_capacity(4096);
                    chunks.resize(4096, Bytes::new());
                    chunks.clear();
                    (reads, chunks)
                },
                |(reads, mut chunks)| {
                    let total = decode_all(reads, mode, &mut chunks);
                    assert_eq!(total, expected + 2);
                    // The chunks (the application's data) are dropped outside the timing.
                    chunks
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("peer/DataReceiver", |b| {
        let mut out = Vec::with_capacity(msg.len());
        b.iter(|| {
            out.clear();
            let mut r = peer_smtp_proto::request::receiver::DataReceiver::new();
            for read in msg.chunks(READ) {
                let mut it = read.iter();
                if r.ingest(&mut it, &mut out) {
                    break;
                }
            }
            assert_eq!(out.len(), expected + 2, "peer body length");
            black_box(out.len())
        })
    });
    // The whole server machine: DATA through Connection::feed/next_event (copies into its
    // input buffer, as the tokio adapter does).
    g.bench_function("ours/server::Connection", |b| {
        b.iter(|| {
            let mut conn = Connection::new(Config::mx("bench"), Instant::now());
            conn.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
            let mut total = 0;
            let pump = |conn: &mut Connection, total: &mut usize| {
                while let Some(ev) = conn.next_event() {
                    match ev {
                        Event::MailFrom { .. } => conn.reply(MailDecision::Accept).unwrap(),
                        Event::RcptTo { .. } => conn.reply(RcptDecision::Accept).unwrap(),
                        Event::DataChunk(c) => *total += c.len(),
                        Event::DataEnd => conn.reply(MessageDecision::Accept).unwrap(),
                        _ => {}
                    }
                }
                while conn.take_output().is_some() {}
            };
            pump(&mut conn, &mut total);
            for read in msg.chunks(READ) {
                conn.feed(read);
                pump(&mut conn, &mut total);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, commands, data);
criterion_main!(benches);
