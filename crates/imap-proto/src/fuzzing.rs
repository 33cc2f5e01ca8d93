//! Fuzz-target bodies, shared by `fuzz/fuzz_targets/imap_*.rs` and the corpus replay tests
//! so both run exactly the same code. Not part of the stable API.

use std::time::{Duration, Instant};

use crate::server::{Config, Connection, Event, NonSyncLiterals, Status, Unsolicited};

/// Feeds `data` to a [`Connection`], answering every event with a canned reply. The first
/// byte picks the configuration (LOGINDISABLED, STARTTLS, literal mode, SEARCHRES) and how the rest is
/// split into reads. Panics only when an invariant breaks: the output must stay
/// proportional to the input.
pub fn server(data: &[u8]) {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let mut config = Config {
        login_disabled_without_tls: opts & 1 == 0,
        starttls: opts & 2 != 0,
        non_sync_literals: match (opts >> 2) & 3 {
            0 => NonSyncLiterals::Minus,
            1 => NonSyncLiterals::Plus,
            _ => NonSyncLiterals::None,
        },
        // Shares bit 4 with the read size below: both settings still vary independently
        // enough across inputs, and every byte of the first one is spoken for.
        searchres: opts & 0x10 != 0,
        ..Config::default()
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
