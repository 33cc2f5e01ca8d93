//! Fuzz-target bodies, shared by `fuzz/fuzz_targets/pop3_*.rs` and the corpus replay test
//! so both run exactly the same code. Each function panics only when an invariant breaks.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::types::{MessageInfo, ServerLine};
use crate::{client, encode, parse, server};

fn clean(data: &[u8]) -> bool {
    !data.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// Parses `data` as a command line; a successful parse must re-encode to a line that
/// parses to the same command.
pub fn command(data: &[u8]) {
    if let Ok(cmd) = parse::command(data) {
        let mut out = BytesMut::new();
        encode::command(&cmd, &mut out);
        let line = out.get(..out.len().saturating_sub(2)).unwrap_or_default();
        let again = parse::command(line);
        assert!(
            matches!(&again, Ok(c) if *c == cmd),
            "round trip: {cmd:?} -> {again:?}"
        );
    }
    let _ = parse::sasl_response(data);
}

/// Parses `data` as server lines (status, challenge, capability, listings) with round-trip
/// checks, then feeds it to a client machine with a pipeline of commands outstanding.
pub fn response(data: &[u8]) {
    if clean(data) {
        if let Ok(ServerLine::Status(r)) = parse::server_line(data) {
            let mut out = BytesMut::new();
            encode::response(&r, &mut out);
            let line = out.get(..out.len().saturating_sub(2)).unwrap_or_default();
            let again = parse::response(line);
            assert!(
                matches!(&again, Ok(x) if *x == r),
                "round trip: {r:?} -> {again:?}"
            );
        }
        if let Ok(c) = parse::capability(data) {
            let mut out = BytesMut::new();
            encode::capability(&c, &mut out);
            let line = out.get(..out.len().saturating_sub(2)).unwrap_or_default();
            let again = parse::capability(line);
            assert!(
                matches!(&again, Ok(x) if *x == c),
                "round trip: {c:?} -> {again:?}"
            );
        }
        let _ = parse::scan_listing(data);
        let _ = parse::uid_listing(data);
        let _ = parse::stat(data);
        let _ = parse::greeting_timestamp(data);
    }
    let mut c = client::Connection::new(client::Config::default());
    for cmd in [
        crate::types::Command::Capa,
        crate::types::Command::Auth {
            mechanism: Bytes::from_static(b"PLAIN"),
            initial_response: None,
        },
        crate::types::Command::List(None),
        crate::types::Command::Uidl(None),
        crate::types::Command::Retr(1),
        crate::types::Command::Top { msg: 1, lines: 0 },
        crate::types::Command::Stls,
        crate::types::Command::Quit,
    ] {
        let _ = c.send(cmd);
    }
    for part in data.chunks(7) {
        c.feed(part);
        while c.next_event().is_some() {}
    }
}

/// Feeds `data` to a server machine (in two pieces, to exercise framing) and answers every
/// event the way a simple application would. The session must never panic and must
/// always greet first.
pub fn server(data: &[u8]) {
    let t0 = Instant::now();
    let mut cfg = server::Config {
        apop_timestamp: Some(Bytes::from_static(b"<1.2@fuzz>")),
        stls: true,
        ..Default::default()
    };
    cfg.limits.line_length = 64;
    cfg.limits.sasl_line_length = 128;
    cfg.limits.bad_commands = 50;
    cfg.limits.auth_failures = 50;
    let mut conn = server::Connection::new(cfg, t0);
    let greeting = conn.take_output().unwrap_or_default();
    assert!(greeting.starts_with(b"+OK "));
    let mid = data.len() / 2;
    let mut now = t0;
    for part in [
        data.get(..mid).unwrap_or_default(),
        data.get(mid..).unwrap_or_default(),
    ] {
        conn.feed(part);
        for _ in 0..10_000 {
            now += Duration::from_millis(500);
            conn.handle_timeout(now);
            let Some(ev) = conn.next_event() else {
                if conn
                    .poll_timeout()
                    .is_some_and(|d| d <= now + Duration::from_secs(3))
                {
                    continue;
                }
                break;
            };
            let reply = match ev {
                server::Event::Login { .. } | server::Event::Apop { .. } => {
                    if data.len().is_multiple_of(3) {
                        Some(server::Reply::AuthFailed {
                            code: None,
                            text: Bytes::new(),
                        })
                    } else {
                        let m = vec![MessageInfo::new(10, "a"), MessageInfo::new(20, "b")];
                        Some(server::Reply::LoggedIn(m))
                    }
                }
                server::Event::AuthStart { .. } => Some(server::Reply::Challenge(Bytes::new())),
                server::Event::AuthResponse(_) => Some(server::Reply::SaslSuccess {
                    data: Bytes::from_static(b"v=1"),
                    maildrop: vec![],
                }),
                server::Event::Retr { .. } | server::Event::Top { .. } => {
                    for chunk in data.chunks(5) {
                        if !conn.wants_body() {
                            break;
                        }
                        assert!(conn.send_body_chunk(chunk).is_ok(), "a body is expected");
                    }
                    assert!(conn.finish_body().is_ok(), "a body is expected");
                    None
                }
                server::Event::StartTls => {
                    assert!(conn.tls_established().is_ok(), "STLS is pending");
                    None
                }
                server::Event::Commit { .. } => Some(server::Reply::Committed),
                server::Event::AuthAborted => None,
            };
            if let Some(r) = reply {
                let res = conn.reply(r);
                assert!(res.is_ok(), "a fitting reply was refused: {res:?}");
            }
            let _ = conn.take_output();
        }
        let _ = conn.take_output();
    }
}
