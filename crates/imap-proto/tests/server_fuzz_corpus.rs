//! Replays the seed corpus of the `imap_server` fuzz target (fuzz/corpus/imap_server/) and
//! runs the same harness over random input. The harness is a copy of
//! fuzz/fuzz_targets/imap_server.rs (the fuzz package is outside the workspace).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use imap_proto::server::{Config, Connection, Event, NonSyncLiterals, Status, Unsolicited};

fn run(data: &[u8]) {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let mut config = Config::default();
    config.login_disabled_without_tls = opts & 1 == 0;
    config.starttls = opts & 2 != 0;
    config.non_sync_literals = match (opts >> 2) & 3 {
        0 => NonSyncLiterals::Minus,
        1 => NonSyncLiterals::Plus,
        _ => NonSyncLiterals::None,
    };
    config.limits.max_line = 1024;
    config.limits.max_literal = 2048;
    config.limits.max_append = 8192;
    let mut now = Instant::now();
    let mut conn = Connection::new(config, now);
    let mut out = 0usize;
    let step = usize::from(opts >> 4) + 1;
    for piece in data.chunks(step) {
        conn.feed(piece);
        while let Some(ev) = conn.next_event() {
            match ev {
                Event::Command(r) => {
                    if r.name == "FETCH" {
                        let _ = conn.begin_literal(b"1 FETCH (BODY[] ", 3);
                        let _ = conn.literal_chunk(b"abc");
                        let _ = conn.end_literal(b")");
                    } else {
                        let _ = conn.send_untagged(b"1 EXISTS");
                    }
                    conn.queue_unsolicited(Unsolicited::Expunge(1));
                    let status = if r.name == "SELECT" {
                        Status::ok("done")
                    } else {
                        Status::no("no")
                    };
                    let _ = conn.reply(status);
                }
                Event::Login { password, .. } => {
                    let s = if password.expose().is_empty() {
                        Status::no("bad")
                    } else {
                        Status::ok("in")
                    };
                    let _ = conn.reply(s);
                }
                Event::AuthStart { .. } => {
                    let _ = conn.auth_challenge(b"challenge");
                }
                Event::AuthData(_) | Event::AppendEnd => {
                    let _ = conn.reply(Status::ok("ok"));
                }
                Event::AppendStart { size, .. } => {
                    if size % 2 == 0 {
                        let _ = conn.accept_append();
                    } else {
                        let _ = conn.reply(Status::no("refused"));
                    }
                }
                Event::StartTls => {
                    let _ = conn.tls_established();
                }
                Event::StartCompression => {
                    if let Ok(rest) = conn.compression_started() {
                        conn.feed(&rest);
                    }
                }
                Event::Idle { .. } => conn.queue_unsolicited(Unsolicited::Exists(2)),
                _ => {}
            }
        }
        while let Some(b) = conn.take_output() {
            out += b.len();
        }
        now += Duration::from_secs(1);
        conn.handle_timeout(now);
    }
    conn.handle_timeout(now + Duration::from_secs(7200));
    while let Some(b) = conn.take_output() {
        out += b.len();
    }
    assert!(
        out <= 4096 + 64 * data.len(),
        "output {out} for {} input bytes",
        data.len()
    );
}

#[test]
fn replay_seed_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/imap_server");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 7, "seed corpus missing in {}", dir.display());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        run(&data);
    }

    #[test]
    fn command_like_input_never_panics(lines in proptest::collection::vec(
        "(a|b1|\\*|\\+)? ?(LOGIN|SELECT|FETCH|UID FETCH|APPEND|IDLE|DONE|AUTHENTICATE PLAIN|STARTTLS|ENABLE|COMPRESS DEFLATE|NOOP|LOGOUT|\\*)? ?(INBOX|\\{[0-9]{1,4}\\+?\\}|\\(\\\\Seen\\)|\"q\"|=|x)*\r?\n",
        0..40,
    )) {
        let mut data = vec![1u8];
        for l in lines {
            data.extend_from_slice(l.as_bytes());
        }
        run(&data);
    }
}
