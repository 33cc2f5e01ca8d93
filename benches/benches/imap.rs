//! IMAP codec throughput: our parser against imap-codec 1.x on the same corpora, in the same
//! run. See docs/bench-notes/imap.md for figures.
//!
//! Both corpora are sequences of complete messages (lines with their literals inline), parsed
//! one after another from a single buffer, as a server's or client's framer would hand them.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use imap_codec::decode::Decoder;
use imap_proto::parse::{self, ParserOptions};

const MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow? We could discuss the\r\n\
quarterly figures and the new mail server rollout.\r\n";

/// Client traffic: what a desktop client sends while syncing and reading.
fn client_corpus() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..50u32 {
        let uid = 4_827_313 + i * 37;
        out.extend_from_slice(format!("a{i}0 SELECT INBOX\r\n").as_bytes());
        // No CONDSTORE/QRESYNC syntax: imap-codec needs a feature the bench crate does not enable.
        out.extend_from_slice(
            format!(
                "a{i}1 UID FETCH {uid}:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!("a{i}2 UID FETCH {uid} (BODY.PEEK[] BODYSTRUCTURE)\r\n").as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "a{i}3 UID STORE {uid},{}:{} +FLAGS.SILENT (\\Seen $Forwarded)\r\n",
                uid + 2,
                uid + 9
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!("a{i}4 UID SEARCH CHARSET UTF-8 UNSEEN SINCE 1-Feb-2024 NOT DELETED OR FROM \"Fred Foobar\" SUBJECT meeting UID {uid}:*\r\n").as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "a{i}5 APPEND Sent (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n{MESSAGE}\r\n",
                MESSAGE.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!("a{i}6 UID MOVE {uid}:{} Archive/2024\r\n", uid + 3).as_bytes(),
        );
        out.extend_from_slice(format!("a{i}7 NOOP\r\n").as_bytes());
    }
    out
}

/// Server responses: FETCH with ENVELOPE and BODYSTRUCTURE, flags updates, bodies.
fn server_corpus() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=50u32 {
        out.extend_from_slice(
            format!(
                "* {i} FETCH (UID {} FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 1200 40 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 3400 80 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"minutes.pdf\") NIL NIL \"BASE64\" 50000 NIL (\"attachment\" (\"FILENAME\" \"minutes.pdf\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"----=_Part_1\") NIL NIL NIL))\r\n",
                1000 + i
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "* {i} FETCH (UID {} FLAGS (\\Seen \\Answered))\r\n",
                1000 + i
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "* {i} FETCH (UID {} BODY[] {{{}}}\r\n{MESSAGE})\r\n",
                1000 + i,
                MESSAGE.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(format!("* {} EXISTS\r\n", 100 + i).as_bytes());
        out.extend_from_slice(
            format!("a{i} OK [READ-WRITE] UID FETCH completed (0.001 + 0.000 secs).\r\n")
                .as_bytes(),
        );
    }
    out
}

fn ours_commands(buf: &Bytes, opts: &ParserOptions) -> usize {
    let mut rest = buf.clone();
    let mut n = 0;
    while !rest.is_empty() {
        let (used, cmd) = parse::command_bytes(&rest, opts).expect("corpus parses");
        black_box(cmd);
        rest = rest.slice(used..);
        n += 1;
    }
    n
}

fn ours_responses(buf: &Bytes, opts: &ParserOptions) -> usize {
    let mut rest = buf.clone();
    let mut n = 0;
    while !rest.is_empty() {
        let (used, r) = parse::response_bytes(&rest, opts).expect("corpus parses");
        black_box(r);
        rest = rest.slice(used..);
        n += 1;
    }
    n
}

fn ours_commands_copying(buf: &[u8]) -> usize {
    let mut rest = buf;
    let mut n = 0;
    while !rest.is_empty() {
        let (used, cmd) = parse::command(rest).expect("corpus parses");
        black_box(cmd);
        rest = &rest[used..];
        n += 1;
    }
    n
}

fn ours_responses_copying(buf: &[u8]) -> usize {
    let mut rest = buf;
    let mut n = 0;
    while !rest.is_empty() {
        let (used, r) = parse::response(rest).expect("corpus parses");
        black_box(r);
        rest = &rest[used..];
        n += 1;
    }
    n
}

fn peer_commands(buf: &[u8]) -> usize {
    let codec = imap_codec::CommandCodec::default();
    let mut rest = buf;
    let mut n = 0;
    while !rest.is_empty() {
        let (remaining, cmd) = codec.decode(rest).expect("imap-codec parses the corpus");
        black_box(cmd);
        rest = remaining;
        n += 1;
    }
    n
}

fn peer_responses(buf: &[u8]) -> usize {
    let codec = imap_codec::ResponseCodec::default();
    let mut rest = buf;
    let mut n = 0;
    while !rest.is_empty() {
        let (remaining, r) = codec.decode(rest).expect("imap-codec parses the corpus");
        black_box(r);
        rest = remaining;
        n += 1;
    }
    n
}

/// Median of per-round speed ratios, timing ours and the peer back to back in each round:
/// robust against the load drifting on a shared machine, which sequential criterion groups
/// are not.
fn interleaved_ratio(
    rounds: usize,
    mut ours: impl FnMut() -> usize,
    mut peer: impl FnMut() -> usize,
) -> f64 {
    let time = |f: &mut dyn FnMut() -> usize| {
        let t = Instant::now();
        for _ in 0..5 {
            black_box(f());
        }
        t.elapsed().as_secs_f64()
    };
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Alternate who goes first, so neither always runs on a warm or cold cache.
        let (a, b) = if round % 2 == 0 {
            let a = time(&mut ours);
            (a, time(&mut peer))
        } else {
            let b = time(&mut peer);
            (time(&mut ours), b)
        };
        ratios.push(b / a);
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn bench(c: &mut Criterion) {
    let opts = ParserOptions::default();
    let client = client_corpus();
    let server = server_corpus();
    let client_b = Bytes::from(client.clone());
    let server_b = Bytes::from(server.clone());
    // Same message counts on both sides, or the comparison is meaningless.
    assert_eq!(ours_commands(&client_b, &opts), peer_commands(&client));
    assert_eq!(ours_responses(&server_b, &opts), peer_responses(&server));

    println!(
        "interleaved median speed-up over imap-codec, client traffic ({} bytes): zero-copy {:.2}x, copying {:.2}x",
        client.len(),
        interleaved_ratio(
            200,
            || ours_commands(&client_b, &opts),
            || peer_commands(&client)
        ),
        interleaved_ratio(
            200,
            || ours_commands_copying(&client),
            || peer_commands(&client)
        ),
    );
    println!(
        "interleaved median speed-up over imap-codec, server responses ({} bytes): zero-copy {:.2}x, copying {:.2}x",
        server.len(),
        interleaved_ratio(
            200,
            || ours_responses(&server_b, &opts),
            || peer_responses(&server)
        ),
        interleaved_ratio(
            200,
            || ours_responses_copying(&server),
            || peer_responses(&server)
        ),
    );

    let mut g = c.benchmark_group("imap_parse_client_traffic");
    g.throughput(Throughput::Bytes(client.len() as u64));
    g.bench_function("imap-proto (Bytes, zero-copy)", |b| {
        b.iter(|| ours_commands(&client_b, &opts))
    });
    g.bench_function("imap-proto (&[u8], one copy per message)", |b| {
        b.iter(|| ours_commands_copying(&client))
    });
    g.bench_function("imap-codec 1", |b| b.iter(|| peer_commands(&client)));
    g.finish();

    let mut g = c.benchmark_group("imap_parse_server_responses");
    g.throughput(Throughput::Bytes(server.len() as u64));
    g.bench_function("imap-proto (Bytes, zero-copy)", |b| {
        b.iter(|| ours_responses(&server_b, &opts))
    });
    g.bench_function("imap-proto (&[u8], one copy per message)", |b| {
        b.iter(|| ours_responses_copying(&server))
    });
    g.bench_function("imap-codec 1", |b| b.iter(|| peer_responses(&server)));
    g.finish();
}

criterion_group!(benches, bench);

/// `IMAP_BENCH_ONLY=<ours-client|peer-client|ours-server|peer-server>` runs one parser over
/// its corpus 2000 times and exits, for load-independent counts under
/// `perf stat -e instructions:u,cycles:u` on a shared machine. Otherwise: criterion.
fn main() {
    if let Ok(mode) = std::env::var("IMAP_BENCH_ONLY") {
        let opts = ParserOptions::default();
        let client = Bytes::from(client_corpus());
        let server = Bytes::from(server_corpus());
        let mut n = 0;
        for _ in 0..2000 {
            n += match mode.as_str() {
                "ours-client" => ours_commands(&client, &opts),
                "peer-client" => peer_commands(&client),
                "ours-server" => ours_responses(&server, &opts),
                "peer-server" => peer_responses(&server),
                other => panic!("unknown IMAP_BENCH_ONLY mode {other}"),
            };
        }
        println!("{mode}: {n} messages");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
