//! Fuzz-target bodies, shared by `fuzz/fuzz_targets/smtp_*.rs` and the corpus replay test
//! (`tests/fuzz_corpus.rs`) so both run exactly the same code. Each function panics only
//! when an invariant breaks.

// Panicking on a broken invariant is the point of a fuzz target.
#![allow(clippy::panic)]

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::server::{AuthAnswer, MailDecision, MessageDecision, RcptDecision};
use crate::{client, encode, parse, server};

/// Parses `data` as a command line; a successful parse must re-encode to a line that parses
/// to the same command.
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
    let _ = parse::decode_sasl(data);
    let _ = parse::xtext_decode(data);
}

/// Parses `data` as a reply (round trip checked), then feeds it to a client machine with
/// a pipelined transaction outstanding.
pub fn reply(data: &[u8]) {
    if let Ok(Some((r, _))) = parse::reply(data) {
        let mut out = BytesMut::new();
        encode::reply(&r, true, &mut out);
        let again = parse::reply(&out);
        assert!(
            matches!(&again, Ok(Some((x, n))) if *x == r && *n == out.len()),
            "round trip: {r:?} -> {again:?}"
        );
    }
    let now = Instant::now();
    let mut c = client::Connection::new(client::Config::new("fuzz.test"), now);
    c.feed(b"220 ok\r\n");
    let _ = c.next_event();
    let _ = c.send(crate::Command::Hello {
        verb: crate::HelloVerb::Ehlo,
        domain: "fuzz.test".into(),
    });
    c.feed(data);
    let mut n = 0;
    while let Some(ev) = c.next_event() {
        n += 1;
        if n > 10_000 {
            break;
        }
        if let client::Event::Reply { reply, .. } = ev {
            let _ = client::Capabilities::from_reply(&reply);
            let _ = client::decode_challenge(&reply);
        }
    }
    c.handle_timeout(now);
    c.handle_timeout(now + Duration::from_secs(3600));
    let _ = c.next_event();
}

/// Feeds `data` to a server machine (first byte picks the configuration and the split
/// size), answering every event; the machine must never panic and its output must always
/// be well-formed replies.
pub fn server(data: &[u8]) {
    let (&sel, input) = data.split_first().unwrap_or((&0, &[]));
    let mut config = match sel % 3 {
        0 => server::Config::mx("fuzz.test"),
        1 => server::Config::submission("fuzz.test"),
        _ => server::Config::lmtp("fuzz.test"),
    };
    config.implicit_tls = sel & 0x04 != 0;
    config.extensions.starttls = sel & 0x08 != 0;
    if sel & 0x10 != 0 {
        config.bare_lf = server::BareLf::Reject;
    }
    config.limits.message_size = 4096;
    config.limits.line_length = 512;
    config.limits.auth_line_length = 1024;
    let split = usize::from(sel >> 5) * 7 + 1;
    let now = Instant::now();
    let mut conn = server::Connection::new(config, now);
    let mut out = Vec::new();
    for piece in input.chunks(split) {
        conn.feed(piece);
        while let Some(ev) = conn.next_event() {
            let _ = match ev {
                server::Event::MailFrom { .. } => conn.reply(MailDecision::Accept),
                server::Event::RcptTo { .. } => conn.reply(RcptDecision::Accept),
                server::Event::DataEnd => {
                    let mut r = conn.reply(MessageDecision::Accept);
                    while r.is_ok() {
                        r = conn.reply(MessageDecision::Accept);
                    }
                    Ok(())
                }
                server::Event::Auth { .. } => conn.reply(AuthAnswer::Challenge(b"x".to_vec())),
                server::Event::AuthResponse(d) => conn.reply(if d.expose().is_empty() {
                    AuthAnswer::Success
                } else {
                    AuthAnswer::Failure
                }),
                server::Event::StartTls => {
                    conn.tls_established();
                    Ok(())
                }
                _ => Ok(()),
            };
        }
        while let Some(b) = conn.take_output() {
            out.extend_from_slice(&b);
        }
    }
    conn.handle_timeout(now + Duration::from_secs(3600));
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    // The output stays proportional to the input: no reply loop, no amplification.
    assert!(
        out.len() <= 4096 + 64 * input.len(),
        "output {} for {} input bytes",
        out.len(),
        input.len()
    );
    // Everything the server wrote is a sequence of well-formed replies.
    let mut rest = out.as_slice();
    while !rest.is_empty() {
        match parse::reply(rest) {
            Ok(Some((_, n))) => rest = rest.get(n..).unwrap_or_default(),
            other => panic!("server wrote a malformed reply: {other:?} in {rest:?}"),
        }
    }
}
