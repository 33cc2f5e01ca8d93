//! Server state machine: exact wire bytes for the RFC scenarios and for bad input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, plain_config};
use smtp_proto::server::{
    AbortReason, BareLf, Config, Connection, Event, MailDecision, MessageDecision, RcptDecision,
};
use smtp_proto::{Reply, ReversePath};

const EHLO_FULL: &str = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-CHUNKING\r\n250 BINARYMIME\r\n";

fn mx() -> Harness {
    Harness::new(Config::mx("mx.test"))
}

fn ehlo(h: &mut Harness) {
    assert_eq!(h.feed(b"EHLO client.test\r\n"), EHLO_FULL);
}

#[test]
fn rfc5321_d1_typical_transaction() {
    let mut h = Harness::new(plain_config("foo.com"));
    assert_eq!(h.out, b"220 foo.com ESMTP ready\r\n");
    assert_eq!(
        h.feed(b"EHLO bar.com\r\n"),
        "250-foo.com\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 DSN\r\n"
    );
    assert_eq!(h.feed(b"MAIL FROM:<Smith@bar.com>\r\n"), "250 Ok\r\n");
    assert_eq!(h.feed(b"RCPT TO:<Jones@foo.com>\r\n"), "250 Ok\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<unknown@foo.com>\r\n"),
        "550 Mailbox unavailable\r\n"
    );
    assert_eq!(h.feed(b"RCPT TO:<Brown@foo.com>\r\n"), "250 Ok\r\n");
    assert_eq!(
        h.feed(b"DATA\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(h.feed(b"Blah blah blah...\r\n...etc. etc. etc.\r\n"), "");
    assert_eq!(h.feed(b".\r\n"), "250 Ok: queued as Q1\r\n");
    assert_eq!(h.body, b"Blah blah blah...\r\n..etc. etc. etc.\r\n");
    assert_eq!(h.feed(b"QUIT\r\n"), "221 Bye\r\n");
    assert!(h.conn.is_closed());
}

#[test]
fn rfc5321_d2_aborted_transaction() {
    let mut h = mx();
    ehlo(&mut h);
    assert_eq!(h.feed(b"MAIL FROM:<Smith@bar.com>\r\n"), "250 2.1.0 Ok\r\n");
    assert_eq!(h.feed(b"RCPT TO:<Jones@foo.com>\r\n"), "250 2.1.5 Ok\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<unknown@foo.com>\r\n"),
        "550 5.1.1 Mailbox unavailable\r\n"
    );
    assert_eq!(h.feed(b"RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert!(h.conn.transaction().is_none());
    assert_eq!(h.feed(b"QUIT\r\n"), "221 2.0.0 Bye\r\n");
}

#[test]
fn custom_replies_reproduce_rfc_text() {
    let mut conn = Connection::new(plain_config("foo.com"), Instant::now());
    conn.feed(b"HELO bar.com\r\nMAIL FROM:<Smith@bar.com>\r\n");
    while let Some(ev) = conn.next_event() {
        if let Event::MailFrom { from, .. } = ev {
            assert_eq!(from.to_string(), "<Smith@bar.com>");
            conn.reply(MailDecision::Reply(Reply::new(250, "OK")))
                .unwrap();
        }
    }
    let mut out = Vec::new();
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    assert_eq!(out, b"220 foo.com ESMTP ready\r\n250 foo.com\r\n250 OK\r\n");
}

#[test]
fn rfc2920_pipelined_group_is_answered_in_order_and_coalesced() {
    let mut h = mx();
    ehlo(&mut h);
    h.writes.clear();
    let out = h.feed(
        b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\nRCPT TO:<ned@innosoft.com>\r\n\
RCPT TO:<dan@innosoft.com>\r\nRCPT TO:<kvc@innosoft.com>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    // One write for the whole group: DATA ends it.
    assert_eq!(h.writes.len(), 1);
    h.writes.clear();
    // A group-ending command splits the writes: NOOP ends a group, MAIL continues one.
    let out = h.feed(b"msg\r\n.\r\nNOOP\r\nMAIL FROM:<a@b.c>\r\nRSET\r\n");
    assert_eq!(
        out,
        "250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(
        h.writes,
        vec![
            b"250 2.0.0 Ok: queued as Q1\r\n".to_vec(),
            b"250 2.0.0 Ok\r\n".to_vec(),
            b"250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n".to_vec()
        ]
    );
}

#[test]
fn next_event_waits_for_the_answer() {
    let mut conn = Connection::new(Config::mx("mx.test"), Instant::now());
    conn.feed(b"HELO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
    assert!(matches!(conn.next_event(), Some(Event::Hello { .. })));
    assert!(matches!(conn.next_event(), Some(Event::MailFrom { .. })));
    assert_eq!(conn.next_event(), None);
    assert!(!conn.wants_input());
    assert!(conn.reply(RcptDecision::Accept).is_err());
    conn.reply(MailDecision::Accept).unwrap();
    assert!(matches!(conn.next_event(), Some(Event::RcptTo { .. })));
    conn.reply(RcptDecision::TempFail("try later".into()))
        .unwrap();
    assert_eq!(conn.next_event(), None);
    let mut out = Vec::new();
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    assert!(out.ends_with(b"250 2.1.0 Ok\r\n451 4.3.0 try later\r\n"));
}

const TRICKY: &[u8] = b"Subject: dots\r\n\r\n..\r\n...\r\n...x\r\n.a\r\nbare\nlf\rcr\r\n\
x\n.\ny\r.\nz\n.\r\nw\r\n.\nv\r\n\r\n";

fn run_split(input: &[u8], split: usize, bare: BareLf) -> (Vec<u8>, String, Vec<Event>) {
    let mut c = Config::mx("mx.test");
    c.bare_lf = bare;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    let start = h.out.len();
    h.feed(&input[..split]);
    h.feed(&input[split..]);
    let out = String::from_utf8(h.out[start..].to_vec()).unwrap();
    let events = h
        .events
        .into_iter()
        .filter(|e| !matches!(e, Event::DataChunk(_)))
        .collect();
    (h.body, out, events)
}

#[test]
fn data_split_at_every_offset_gives_the_same_message() {
    let mut input = TRICKY.to_vec();
    input.extend_from_slice(b".\r\nQUIT\r\n");
    let reference = run_split(&input, 0, BareLf::Normalize);
    assert_eq!(
        reference.0,
        b"Subject: dots\r\n\r\n.\r\n..\r\n..x\r\na\r\nbare\r\nlf\rcr\r\n\
x\r\n.\r\ny\r.\r\nz\r\n.\r\nw\r\n\r\nv\r\n\r\n"
    );
    assert_eq!(
        reference.1,
        "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n"
    );
    for split in 0..=input.len() {
        assert_eq!(
            run_split(&input, split, BareLf::Normalize),
            reference,
            "split at {split}"
        );
    }
    let strict = run_split(&input, 0, BareLf::Reject);
    assert_eq!(
        strict.1,
        "550 5.6.11 Bare CR or LF in message data; lines must end with CRLF\r\n221 2.0.0 Bye\r\n"
    );
    assert!(
        strict
            .2
            .contains(&Event::DataAborted(AbortReason::BareLineEnding))
    );
    for split in 0..=input.len() {
        assert_eq!(
            run_split(&input, split, BareLf::Reject).1,
            strict.1,
            "split at {split}"
        );
    }
}

#[test]
fn smuggling_sequences_never_end_the_message() {
    for seq in [&b"\n.\n"[..], b"\r.\n", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"] {
        let mut h = mx();
        h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
        let mut msg = b"a".to_vec();
        msg.extend_from_slice(seq);
        msg.extend_from_slice(b"MAIL FROM:<evil@x.y>\r\nRCPT TO:<v@x.y>\r\nDATA\r\n");
        let out = h.feed(&msg);
        assert_eq!(out, "", "{seq:?} ended the message");
        assert!(!h.events.iter().any(|e| matches!(e, Event::DataEnd)));
        assert_eq!(h.feed(b"\r\n.\r\n"), "250 2.0.0 Ok: queued as Q1\r\n");
        assert!(h.body.windows(10).any(|w| w == b"MAIL FROM:"));
    }
}

#[test]
fn eight_bit_data_without_8bitmime_is_refused() {
    let mut c = Config::mx("mx.test");
    c.extensions.eight_bit_mime = false;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    assert_eq!(
        h.feed("Subject: caf\u{e9}\r\n.\r\n".as_bytes()),
        "554 5.6.1 8-bit data requires BODY=8BITMIME\r\n"
    );
    assert!(
        h.events
            .contains(&Event::DataAborted(AbortReason::EightBit))
    );
    // BODY=8BITMIME is refused when not advertised.
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c> BODY=8BITMIME\r\n"),
        "555 5.5.4 Unsupported parameter BODY\r\n"
    );
    // strict mode: advertised, but not declared.
    let mut c = Config::mx("mx.test");
    c.strict_8bit = true;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    assert_eq!(
        h.feed(b"\xff\r\n.\r\n"),
        "554 5.6.1 8-bit data requires BODY=8BITMIME\r\n"
    );
    h.feed(b"MAIL FROM:<a@b.c> BODY=8BITMIME\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
    assert_eq!(h.feed(b"\xff\r\n.\r\n"), "250 2.0.0 Ok: queued as Q1\r\n");
}

#[test]
fn rfc1870_size_declared_and_received() {
    let mut c = Config::mx("mx.test");
    c.limits.message_size = 100;
    let mut h = Harness::new(c);
    assert!(h.feed(b"EHLO a\r\n").contains("250-SIZE 100\r\n"));
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c> SIZE=101\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c> SIZE=100\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    h.feed(b"RCPT TO:<d@e.f>\r\nDATA\r\n");
    let big = vec![b'x'; 150];
    h.feed(&big);
    assert_eq!(
        h.feed(b"\r\n.\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(h.events.contains(&Event::DataAborted(AbortReason::TooBig)));
    assert!(h.conn.transaction().is_none());
}

#[test]
fn one_mebibyte_command_line_is_refused_with_bounded_memory() {
    let mut h = mx();
    ehlo(&mut h);
    let line = vec![b'A'; 1 << 20];
    for piece in line.chunks(1000) {
        assert_eq!(h.feed(piece), "");
    }
    assert_eq!(
        h.feed(b"\r\nNOOP\r\n"),
        "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"
    );
    // A long line in one piece.
    let mut one = vec![b'B'; 1 << 20];
    one.extend_from_slice(b"\r\nNOOP\r\n");
    assert_eq!(h.feed(&one), "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    // Just over the limit, complete.
    let mut l = b"NOOP ".to_vec();
    l.extend(vec![b'x'; 4092]);
    l.extend_from_slice(b"\r\n");
    assert_eq!(h.feed(&l), "500 5.5.2 Line too long\r\n");
    let mut l = b"XYZZY ".to_vec();
    l.extend(vec![b'x'; 5000]);
    l.extend_from_slice(b"\r\n");
    assert_eq!(h.feed(&l), "500 5.5.2 Line too long\r\n");
}

#[test]
fn invalid_addresses_and_syntax() {
    let mut c = Config::mx("mx.test");
    c.limits.errors = 100;
    let mut h = Harness::new(c);
    ehlo(&mut h);
    assert_eq!(
        h.feed(b"MAIL FROM:<a@@b>\r\n"),
        "501 5.1.7 Bad sender address syntax\r\n"
    );
    assert_eq!(
        h.feed(b"MAIL FROM:a@b.c\r\n"),
        "501 5.1.7 Bad sender address syntax\r\n"
    );
    assert_eq!(h.feed(b"MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
    for bad in [
        &b"RCPT TO:<no-domain>\r\n"[..],
        b"RCPT TO:<a..b@c.d>\r\n",
        b"RCPT TO:<a@-c.d>\r\n",
        b"RCPT TO:<a@[300.1.1.1]>\r\n",
        b"RCPT TO:<a@b.c\r\n",
        b"RCPT TO:<\"unterminated@b.c>\r\n",
    ] {
        assert_eq!(
            h.feed(bad),
            "501 5.1.3 Bad recipient address syntax\r\n",
            "{bad:?}"
        );
    }
    assert_eq!(
        h.feed(b"RCPT TO:<\"john doe\"@[192.0.2.1]>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        h.feed(b"RCPT TO: <a@[IPv6:2001:db8::1]>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        h.feed(b"RCPT TO:<@relay.test:x@y.z>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(h.feed(b"RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Ok\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<x@y.z> FOO=bar\r\n"),
        "555 5.5.4 Unsupported parameter FOO\r\n"
    );
    assert_eq!(
        h.feed(b"RCPT TO:<x@y.z> NOTIFY=NEVER,DELAY\r\n"),
        "501 5.5.4 Invalid parameter NOTIFY\r\n"
    );
    assert_eq!(h.feed(b"XYZZY\r\n"), "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(
        h.feed(b"DATA now\r\n"),
        "501 5.5.4 Syntax error in parameters or arguments\r\n"
    );
}

#[test]
fn sequence_errors() {
    let mut h = mx();
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Send HELO/EHLO first\r\n"
    );
    h.feed(b"HELO a\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<a@b.c>\r\n"),
        "503 5.5.1 Need MAIL command\r\n"
    );
    assert_eq!(h.feed(b"DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
    h.feed(b"MAIL FROM:<> \r\n");
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Nested MAIL command\r\n"
    );
    assert_eq!(
        h.feed(b"RCPT TO:<unknown@b.c>\r\n"),
        "550 5.1.1 Mailbox unavailable\r\n"
    );
    assert_eq!(h.feed(b"DATA\r\n"), "554 5.5.1 No valid recipients\r\n");
    assert_eq!(h.conn.transaction().unwrap().from, ReversePath::Null);
}

#[test]
fn too_many_recipients() {
    let mut c = Config::mx("mx.test");
    c.limits.recipients = 2;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<1@b.c>\r\nRCPT TO:<2@b.c>\r\nRCPT TO:<3@b.c>\r\n"),
        "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n"
    );
    assert!(!h.conn.is_closed());
}

#[test]
fn too_many_errors_closes_with_421() {
    let mut h = mx();
    let mut out = String::new();
    for _ in 0..10 {
        out.push_str(&h.feed(b"BOGUS\r\n"));
    }
    assert_eq!(
        out,
        format!(
            "{}421 4.7.0 mx.test Too many errors, closing connection\r\n",
            "500 5.5.1 Command unrecognized\r\n".repeat(10)
        )
    );
    assert!(h.conn.is_closed());
    assert_eq!(h.feed(b"NOOP\r\n"), "");
}

fn submission() -> Config {
    let mut c = Config::submission("smtp.test");
    c.extensions.starttls = true;
    c
}

#[test]
fn auth_before_starttls_is_refused() {
    let mut h = Harness::new(submission());
    let ehlo = h.feed(b"EHLO a\r\n");
    assert!(ehlo.contains("STARTTLS\r\n"));
    assert!(!ehlo.contains("AUTH"));
    assert_eq!(
        h.feed(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
}

#[test]
fn rfc3207_starttls_discards_pipelined_plaintext_and_resets() {
    let mut h = Harness::new(submission());
    h.feed(b"EHLO a\r\n");
    let out = h.feed(b"STARTTLS\r\nMAIL FROM:<injected@evil>\r\nRCPT TO:<x@y.z>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert!(h.events.contains(&Event::StartTls));
    // Bytes fed during the handshake are discarded too.
    assert_eq!(h.feed(b"NOOP\r\n"), "");
    h.conn.tls_established();
    assert!(h.conn.is_tls());
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Send HELO/EHLO first\r\n"
    );
    let ehlo = h.feed(b"EHLO a\r\n");
    assert!(!ehlo.contains("STARTTLS"));
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"));
    assert!(ehlo.ends_with("250 REQUIRETLS\r\n"));
    assert_eq!(h.feed(b"STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
}

fn tls_submission() -> Harness {
    let mut c = Config::submission("smtp.test");
    c.implicit_tls = true;
    c.limits.auth_failure_delay = Duration::ZERO;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\n");
    h
}

#[test]
fn rfc4954_auth_plain_with_initial_response() {
    let mut h = tls_submission();
    assert_eq!(
        h.feed(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(h.conn.is_authenticated());
    assert_eq!(
        h.feed(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        "503 5.5.1 Already authenticated\r\n"
    );
    assert_eq!(h.feed(b"MAIL FROM:<a@b.c> AUTH=<>\r\n"), "250 2.1.0 Ok\r\n");
}

#[test]
fn rfc4954_auth_plain_empty_challenge_and_login() {
    let mut h = tls_submission();
    assert_eq!(h.feed(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(
        h.feed(b"AHVzZXIAd3Jvbmc=\r\n"),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(h.feed(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(h.feed(b"dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        h.feed(b"cGFzcw==\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
}

#[test]
fn rfc4954_cancel_bad_base64_and_unknown_mechanism() {
    let mut h = tls_submission();
    assert_eq!(h.feed(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(h.feed(b"*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
    assert!(h.events.contains(&Event::AuthCancelled));
    assert_eq!(h.feed(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(h.feed(b"!!!\r\n"), "501 5.5.2 Invalid base64 data\r\n");
    assert_eq!(
        h.feed(b"AUTH CRAM-MD5\r\n"),
        "504 5.5.4 Unrecognized authentication type\r\n"
    );
    assert_eq!(
        h.feed(b"AUTH PLAIN =\r\n"),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(
        h.feed(b"AUTH PLAIN !!\r\n"),
        "501 5.5.2 Invalid base64 data\r\n"
    );
}

#[test]
fn auth_failures_limit() {
    let mut h = tls_submission();
    h.feed(b"AUTH PLAIN AHVzZXIAeA==\r\nAUTH PLAIN AHVzZXIAeA==\r\n");
    let out = h.feed(b"AUTH PLAIN AHVzZXIAeA==\r\n");
    assert_eq!(
        out,
        "535 5.7.8 Authentication credentials invalid\r\n\
421 4.7.0 smtp.test Too many authentication failures, closing connection\r\n"
    );
    assert!(h.conn.is_closed());
}

#[test]
fn rfc3030_bdat_example() {
    let mut h = mx();
    ehlo(&mut h);
    let out = h.feed(
        b"MAIL FROM:<Sam@Random.com> BODY=BINARYMIME\r\nRCPT TO:<Susan@Random.com>\r\n\
BDAT 10\r\n0123456789BDAT 5 LAST\r\nabcde",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 10 octets received\r\n250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(h.body, b"0123456789abcde");
    // DATA is refused with BINARYMIME.
    h.feed(b"MAIL FROM:<a@b.c> BODY=BINARYMIME\r\nRCPT TO:<d@e.f>\r\n");
    assert_eq!(
        h.feed(b"DATA\r\n"),
        "503 5.5.1 BODY=BINARYMIME requires BDAT\r\n"
    );
}

#[test]
fn bdat_without_transaction_consumes_the_chunk() {
    let mut h = mx();
    ehlo(&mut h);
    assert_eq!(
        h.feed(b"BDAT 12 LAST\r\nQUIT\r\nQUIT\r\nNOOP\r\n"),
        "503 5.5.1 Need MAIL command\r\n250 2.0.0 Ok\r\n"
    );
    assert!(h.body.is_empty());
    assert!(!h.conn.is_closed());
}

#[test]
fn bdat_split_at_every_offset() {
    let input = b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 7\r\n\r\n.\r\n\x00\xffBDAT 0 LAST\r\nNOOP\r\n";
    let mut reference = None;
    for split in 0..=input.len() {
        let mut h = mx();
        h.feed(b"EHLO a\r\n");
        let start = h.out.len();
        h.feed(&input[..split]);
        h.feed(&input[split..]);
        let got = (h.body.clone(), h.out[start..].to_vec());
        assert_eq!(got.0, b"\r\n.\r\n\x00\xff");
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(&got, r, "split at {split}"),
        }
    }
}

#[test]
fn bdat_over_size_is_refused_after_reading_it() {
    let mut c = Config::mx("mx.test");
    c.limits.message_size = 4;
    let mut h = Harness::new(c);
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
    assert_eq!(
        h.feed(b"BDAT 5 LAST\r\n12345NOOP\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn rfc2033_lmtp_one_reply_per_recipient() {
    let mut h = Harness::new(Config::lmtp("lmtp.test"));
    assert_eq!(h.out, b"220 lmtp.test LMTP ready\r\n");
    assert_eq!(
        h.feed(b"EHLO a\r\n"),
        "500 5.5.1 This is an LMTP server: use LHLO\r\n"
    );
    assert!(h.feed(b"LHLO foo.edu\r\n").starts_with("250-lmtp.test\r\n"));
    let out = h.feed(
        b"MAIL FROM:<chris@foo.edu>\r\nRCPT TO:<pat@bar.edu>\r\nRCPT TO:<unknown@bar.edu>\r\n\
RCPT TO:<green@bar.edu>\r\nDATA\r\nBlah\r\n.\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Mailbox unavailable\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok: queued as Q1\r\n"
    );
    // RFC 2033 section 4.2: DATA without an accepted recipient gets 503.
    assert_eq!(
        h.feed(b"MAIL FROM:<a@b.c>\r\nRCPT TO:<unknown@b.c>\r\nDATA\r\n"),
        "250 2.1.0 Ok\r\n550 5.1.1 Mailbox unavailable\r\n503 5.5.1 No valid recipients\r\n"
    );
}

#[test]
fn lmtp_replies_may_differ_per_recipient() {
    let mut conn = Connection::new(Config::lmtp("l"), Instant::now());
    conn.feed(
        b"LHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<1@b.c>\r\nRCPT TO:<2@b.c>\r\nDATA\r\nx\r\n.\r\n",
    );
    while let Some(ev) = conn.next_event() {
        match ev {
            Event::MailFrom { .. } => conn.reply(MailDecision::Accept).unwrap(),
            Event::RcptTo { .. } => conn.reply(RcptDecision::Accept).unwrap(),
            Event::DataEnd => {
                conn.reply(MessageDecision::Accept).unwrap();
                assert_eq!(
                    conn.next_event(),
                    None,
                    "still waiting for the second reply"
                );
                conn.reply(MessageDecision::TempFail("4.2.2 over quota".into()))
                    .unwrap();
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    assert!(out.ends_with(b"250 2.0.0 Ok: message accepted\r\n451 4.3.0 4.2.2 over quota\r\n"));
}

#[test]
fn rfc6531_smtputf8() {
    let mut h = mx();
    ehlo(&mut h);
    assert_eq!(
        h.feed("MAIL FROM:<j\u{f6}rg@b\u{fc}cher.de>\r\n".as_bytes()),
        "550 5.6.7 Non-ASCII addresses require SMTPUTF8\r\n"
    );
    assert_eq!(h.feed(b"MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
    assert_eq!(
        h.feed("RCPT TO:<\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{5e7f}\u{544a}>\r\n".as_bytes()),
        "553 5.6.7 Non-ASCII addresses require SMTPUTF8\r\n"
    );
    h.feed(b"RSET\r\n");
    h.feed(b"MAIL FROM:<a@b.c> SMTPUTF8\r\n");
    assert_eq!(
        h.feed("RCPT TO:<\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{5e7f}\u{544a}>\r\n".as_bytes()),
        "250 2.1.5 Ok\r\n"
    );
}

#[test]
fn rfc3461_dsn_parameters() {
    let mut h = mx();
    ehlo(&mut h);
    assert_eq!(
        h.feed(b"MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159+2B1\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        h.feed(
            b"RCPT TO:<Bob@Example.COM> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Example.COM\r\n"
        ),
        "250 2.1.5 Ok\r\n"
    );
    let Some(Event::MailFrom { params, .. }) = h
        .events
        .iter()
        .find(|e| matches!(e, Event::MailFrom { .. }))
    else {
        panic!()
    };
    assert_eq!(params.envid.as_deref(), Some("QQ314159+1"));
    assert_eq!(params.ret, Some(smtp_proto::Ret::Hdrs));
    let Some(Event::RcptTo { params, .. }) =
        h.events.iter().find(|e| matches!(e, Event::RcptTo { .. }))
    else {
        panic!()
    };
    let n = params.notify.unwrap();
    assert!(n.success && n.failure && !n.delay && !n.never);
    assert_eq!(params.orcpt.as_ref().unwrap().address, "Bob@Example.COM");
}

#[test]
fn rfc2034_enhanced_codes_toggle() {
    let mut h = Harness::new(plain_config("h"));
    h.feed(b"HELO a\r\n");
    assert_eq!(h.feed(b"RCPT TO:<a@b.c>\r\n"), "503 Need MAIL command\r\n");
    let mut h = mx();
    h.feed(b"HELO a\r\n");
    assert_eq!(
        h.feed(b"RCPT TO:<a@b.c>\r\n"),
        "503 5.5.1 Need MAIL command\r\n"
    );
    assert_eq!(
        h.feed(b"VRFY x\r\n"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    assert_eq!(h.feed(b"EXPN x\r\n"), "502 5.5.1 EXPN not supported\r\n");
    assert_eq!(h.feed(b"HELP\r\n"), "214 2.0.0 See RFC 5321\r\n");
}

#[test]
fn command_timeout_closes_with_421() {
    let t0 = Instant::now();
    let mut conn = Connection::new(Config::mx("mx.test"), t0);
    while conn.take_output().is_some() {}
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(300));
    conn.handle_timeout(t0 + Duration::from_secs(299));
    assert!(!conn.is_closed());
    // Input in the meantime moves the deadline forward instead of firing.
    conn.feed(b"NOOP\r\n");
    let _ = conn.next_event();
    conn.handle_timeout(deadline);
    assert!(!conn.is_closed());
    let d2 = conn.poll_timeout().unwrap();
    assert_eq!(d2, deadline + Duration::from_secs(300));
    conn.handle_timeout(d2);
    assert!(conn.is_closed());
    let mut out = Vec::new();
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    assert_eq!(
        out,
        b"250 2.0.0 Ok\r\n421 4.4.2 mx.test Timeout exceeded, closing connection\r\n"
    );
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn bare_lf_commands() {
    let mut h = mx();
    assert!(h.feed(b"EHLO a\n").starts_with("250-mx.test"));
    let mut c = Config::mx("mx.test");
    c.bare_lf = BareLf::Reject;
    let mut h = Harness::new(c);
    assert_eq!(
        h.feed(b"NOOP\n"),
        "500 5.5.2 Bare LF received; lines must end with CRLF\r\n"
    );
}

#[test]
fn garbage_never_panics() {
    let inputs: &[&[u8]] = &[
        b"\x00\x01\x02\r\n",
        b"MAIL FROM:<\xff@\xfe>\r\n",
        b"BDAT 99999999999999999999999\r\n",
        b"BDAT 18446744073709551615 LAST\r\nxx",
        b"AUTH \r\n",
        b"EHLO\r\n",
        b"RCPT TO:<a@b.c> ORCPT=rfc822;+ZZ\r\n",
        b"\r\n\r\n\r\n",
    ];
    for input in inputs {
        let mut h = mx();
        h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\n");
        h.feed(input);
    }
}

#[test]
fn failed_auth_reply_is_held_back() {
    let t0 = Instant::now();
    let mut c = Config::submission("smtp.test");
    c.implicit_tls = true;
    let mut conn = Connection::new(c, t0);
    conn.feed(b"EHLO a\r\nAUTH PLAIN AHVzZXIAeA==\r\nNOOP\r\n");
    while let Some(ev) = conn.next_event() {
        if let Event::Auth { .. } = ev {
            conn.reply(smtp_proto::server::AuthAnswer::Failure).unwrap();
        }
    }
    let mut out = Vec::new();
    while let Some(b) = conn.take_output() {
        out.extend_from_slice(&b);
    }
    assert!(out.ends_with(b"250 REQUIRETLS\r\n"), "no 535 yet");
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    conn.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(conn.take_output(), None);
    assert_eq!(
        conn.next_event(),
        None,
        "input waits while the reply is held"
    );
    conn.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(
        &conn.take_output().unwrap()[..],
        b"535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(conn.next_event(), None);
    assert_eq!(&conn.take_output().unwrap()[..], b"250 2.0.0 Ok\r\n");
}

#[test]
fn shutdown_sends_421() {
    let mut h = mx();
    h.feed(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\n");
    h.conn.shutdown();
    assert_eq!(
        h.drain(),
        "421 4.3.2 mx.test Service shutting down, closing connection\r\n"
    );
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.poll_timeout(), None);
}
