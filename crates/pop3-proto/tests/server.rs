//! Server state machine: exact bytes out for bytes in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use pop3_proto::Error;
use pop3_proto::server::{Config, Connection, Event, Limits, Reply, State};
use pop3_proto::types::{MessageInfo, ResponseCode};

const TS: &str = "<1896.697170952@dbc.mtview.ca.us>";

fn out(c: &mut Connection) -> String {
    let mut s = Vec::new();
    while let Some(b) = c.take_output() {
        s.extend_from_slice(&b);
    }
    String::from_utf8(s).unwrap()
}

fn no_delay() -> Config {
    let mut cfg = Config::default();
    cfg.limits.auth_failure_delay = Duration::ZERO;
    cfg
}

fn maildrop() -> Vec<MessageInfo> {
    vec![
        MessageInfo::new(120, "whqtswO00WBw418f9t5JxYwZ"),
        MessageInfo::new(200, "QhdPYR:00WBw1Ph7x7"),
    ]
}

/// Logs in with USER/PASS and returns the connection with output drained.
fn logged_in(cfg: Config) -> (Connection, Instant) {
    let now = Instant::now();
    let mut c = Connection::new(cfg, now);
    out(&mut c);
    c.feed(b"USER mrose\r\nPASS tanstaaf\r\n");
    match c.next_event() {
        Some(Event::Login { user, password }) => {
            assert_eq!(&user[..], b"mrose");
            assert_eq!(&password.expose()[..], b"tanstaaf");
        }
        e => panic!("{e:?}"),
    }
    c.reply(Reply::LoggedIn(maildrop())).unwrap();
    assert_eq!(
        out(&mut c),
        "+OK send PASS\r\n+OK maildrop locked and ready, 2 messages (320 octets)\r\n"
    );
    assert_eq!(c.state(), State::Transaction);
    (c, now)
}

fn cmd(c: &mut Connection, line: &str) -> String {
    c.feed(line.as_bytes());
    assert_eq!(c.next_event(), None, "unexpected event for {line:?}");
    out(c)
}

#[test]
fn rfc1939_example_session_with_apop() {
    let mut cfg = no_delay();
    cfg.apop_timestamp = Some(Bytes::from_static(TS.as_bytes()));
    let mut c = Connection::new(cfg, Instant::now());
    assert_eq!(out(&mut c), format!("+OK POP3 server ready {TS}\r\n"));
    c.feed(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    match c.next_event() {
        Some(Event::Apop {
            user,
            digest,
            timestamp,
        }) => {
            assert_eq!(&user[..], b"mrose");
            assert_eq!(&digest[..], b"c4c9334bac560ecc979e58001b3e22fb");
            assert_eq!(&timestamp[..], TS.as_bytes());
            assert!(mail_sasl::apop_verify(&timestamp, b"tanstaaf", &digest));
        }
        e => panic!("{e:?}"),
    }
    c.reply(Reply::LoggedIn(maildrop())).unwrap();
    assert_eq!(
        out(&mut c),
        "+OK maildrop locked and ready, 2 messages (320 octets)\r\n"
    );
    assert_eq!(cmd(&mut c, "STAT\r\n"), "+OK 2 320\r\n");
    assert_eq!(
        cmd(&mut c, "LIST\r\n"),
        "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"
    );
    c.feed(b"RETR 1\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Retr {
            msg: 1,
            index: 0,
            size: 120
        })
    );
    c.send_body_chunk(b"Subject: one\r\n\r\nbody\r\n").unwrap();
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "+OK 120 octets\r\nSubject: one\r\n\r\nbody\r\n.\r\n"
    );
    assert_eq!(cmd(&mut c, "DELE 1\r\n"), "+OK message 1 deleted\r\n");
    c.feed(b"RETR 2\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Retr {
            msg: 2,
            index: 1,
            size: 200
        })
    );
    c.send_body_chunk(b"x\r\n").unwrap();
    c.finish_body().unwrap();
    assert_eq!(out(&mut c), "+OK 200 octets\r\nx\r\n.\r\n");
    assert_eq!(cmd(&mut c, "DELE 2\r\n"), "+OK message 2 deleted\r\n");
    c.feed(b"QUIT\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Commit {
            deleted: vec![0, 1]
        })
    );
    assert_eq!(c.state(), State::Update);
    // Durability: nothing is said before the application confirms.
    assert_eq!(c.take_output(), None);
    assert!(!c.is_closed());
    c.reply(Reply::Committed).unwrap();
    assert_eq!(
        out(&mut c),
        "+OK POP3 server signing off (maildrop empty)\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn rfc1939_uidl_and_top_examples() {
    let (mut c, _) = logged_in(no_delay());
    assert_eq!(
        cmd(&mut c, "UIDL\r\n"),
        "+OK unique-id listing follows\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"
    );
    assert_eq!(cmd(&mut c, "UIDL 2\r\n"), "+OK 2 QhdPYR:00WBw1Ph7x7\r\n");
    assert_eq!(
        cmd(&mut c, "UIDL 3\r\n"),
        "-ERR no such message, only 2 messages in maildrop\r\n"
    );
    assert_eq!(cmd(&mut c, "LIST 2\r\n"), "+OK 2 200\r\n");
    assert_eq!(
        cmd(&mut c, "LIST 3\r\n"),
        "-ERR no such message, only 2 messages in maildrop\r\n"
    );
    // TOP 1 2: header, blank line, two body lines; the machine cuts the rest.
    c.feed(b"TOP 1 2\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Top {
            msg: 1,
            index: 0,
            lines: 2
        })
    );
    assert!(c.wants_body());
    c.send_body_chunk(b"Subject: a\r\nX: y\r").unwrap();
    c.send_body_chunk(b"\n\r\n.one\r\ntwo\r").unwrap();
    assert!(c.wants_body());
    c.send_body_chunk(b"\nthree\r\nfour\r\n").unwrap();
    assert!(!c.wants_body());
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "+OK top of message follows\r\nSubject: a\r\nX: y\r\n\r\n..one\r\ntwo\r\n.\r\n"
    );
    // TOP n 0: the header and the blank line only.
    c.feed(b"TOP 2 0\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Top {
            msg: 2,
            index: 1,
            lines: 0
        })
    );
    c.send_body_chunk(b"A: b\nC: d\n\nbody\n").unwrap();
    assert!(!c.wants_body());
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "+OK top of message follows\r\nA: b\r\nC: d\r\n\r\n.\r\n"
    );
}

#[test]
fn rfc2449_capa_example_shape() {
    let mut cfg = no_delay();
    cfg.login_delay = Some(900);
    cfg.expire = Some(pop3_proto::types::Expire::Days(60));
    cfg.implementation = Some(Bytes::from_static(b"Shlemazle-Plotz-v302"));
    cfg.sasl_mechanisms = vec![
        Bytes::from_static(b"CRAM-MD5"),
        Bytes::from_static(b"KERBEROS_V4"),
    ];
    cfg.stls = true;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    assert_eq!(
        cmd(&mut c, "CAPA\r\n"),
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nUSER\r\nSASL CRAM-MD5 KERBEROS_V4\r\nSTLS\r\nLOGIN-DELAY 900\r\n\
         EXPIRE 60\r\nIMPLEMENTATION Shlemazle-Plotz-v302\r\n.\r\n"
    );
    assert_eq!(
        cmd(&mut c, "AUTH\r\n"),
        "+OK SASL mechanisms follow\r\nCRAM-MD5\r\nKERBEROS_V4\r\n.\r\n"
    );
}

#[test]
fn message_numbers_zero_out_of_range_deleted() {
    let (mut c, _) = logged_in(no_delay());
    for line in [
        "RETR 0\r\n",
        "DELE 0\r\n",
        "LIST 0\r\n",
        "TOP 0 1\r\n",
        "UIDL 0\r\n",
    ] {
        assert_eq!(
            cmd(&mut c, line),
            "-ERR no such message, only 2 messages in maildrop\r\n"
        );
    }
    assert_eq!(
        cmd(&mut c, "RETR 3\r\n"),
        "-ERR no such message, only 2 messages in maildrop\r\n"
    );
    assert_eq!(
        cmd(&mut c, "RETR 99999999999\r\n"),
        "-ERR syntax error: expected a message number (digits, at most 4294967295)\r\n"
    );
    assert_eq!(cmd(&mut c, "DELE 2\r\n"), "+OK message 2 deleted\r\n");
    assert_eq!(
        cmd(&mut c, "DELE 2\r\n"),
        "-ERR message 2 already deleted\r\n"
    );
    assert_eq!(
        cmd(&mut c, "RETR 2\r\n"),
        "-ERR message 2 already deleted\r\n"
    );
    assert_eq!(
        cmd(&mut c, "TOP 2 0\r\n"),
        "-ERR message 2 already deleted\r\n"
    );
    assert_eq!(
        cmd(&mut c, "LIST 2\r\n"),
        "-ERR message 2 already deleted\r\n"
    );
    assert_eq!(cmd(&mut c, "STAT\r\n"), "+OK 1 120\r\n");
    assert_eq!(
        cmd(&mut c, "LIST\r\n"),
        "+OK 1 message (120 octets)\r\n1 120\r\n.\r\n"
    );
    assert_eq!(
        cmd(&mut c, "UIDL\r\n"),
        "+OK unique-id listing follows\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n.\r\n"
    );
    assert_eq!(
        cmd(&mut c, "LIST 3\r\n"),
        "-ERR no such message, only 1 message in maildrop\r\n"
    );
    assert_eq!(
        cmd(&mut c, "RSET\r\n"),
        "+OK maildrop has 2 messages (320 octets)\r\n"
    );
    assert_eq!(cmd(&mut c, "STAT\r\n"), "+OK 2 320\r\n");
    assert_eq!(cmd(&mut c, "NOOP\r\n"), "+OK\r\n");
    // QUIT after RSET commits nothing, but the application still hears about it.
    c.feed(b"QUIT\r\n");
    assert_eq!(c.next_event(), Some(Event::Commit { deleted: vec![] }));
    c.reply(Reply::Committed).unwrap();
    assert_eq!(
        out(&mut c),
        "+OK POP3 server signing off (2 messages left)\r\n"
    );
}

#[test]
fn commit_failure_is_err_and_closes() {
    let (mut c, _) = logged_in(no_delay());
    c.feed(b"DELE 1\r\nQUIT\r\n");
    assert_eq!(c.next_event(), Some(Event::Commit { deleted: vec![0] }));
    assert_eq!(out(&mut c), "+OK message 1 deleted\r\n");
    c.reply(Reply::Error {
        code: Some(ResponseCode::SysTemp),
        text: Bytes::from_static(b"some deleted messages not removed"),
    })
    .unwrap();
    assert_eq!(
        out(&mut c),
        "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn wrong_state_and_unknown_commands() {
    let mut c = Connection::new(no_delay(), Instant::now());
    out(&mut c);
    assert_eq!(
        cmd(&mut c, "STAT\r\n"),
        "-ERR command not valid in this state\r\n"
    );
    assert_eq!(
        cmd(&mut c, "RETR 1\r\n"),
        "-ERR command not valid in this state\r\n"
    );
    assert_eq!(cmd(&mut c, "PASS x\r\n"), "-ERR USER first\r\n");
    assert_eq!(cmd(&mut c, "FOO\r\n"), "-ERR unknown command\r\n");
    assert_eq!(cmd(&mut c, "XYZZY bar\r\n"), "-ERR unknown command\r\n");
    assert_eq!(cmd(&mut c, "\r\n"), "-ERR unknown command\r\n");
    assert_eq!(
        cmd(&mut c, "NOOP\0\r\n"),
        "-ERR syntax error: control characters are not allowed\r\n"
    );
    assert_eq!(cmd(&mut c, "STLS\r\n"), "-ERR STLS not available\r\n");
    assert_eq!(
        cmd(&mut c, "STAT extra\r\n"),
        "-ERR syntax error: this command takes no arguments\r\n"
    );
    assert_eq!(
        cmd(&mut c, "capa\r\n").lines().next(),
        Some("+OK Capability list follows")
    );
    assert_eq!(c.state(), State::Authorization);
    // QUIT in AUTHORIZATION: no UPDATE state, no event.
    assert_eq!(cmd(&mut c, "quit\r\n"), "+OK POP3 server signing off\r\n");
    assert!(c.is_closed());
    c.feed(b"NOOP\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(c.take_output(), None);
}

#[test]
fn bad_commands_limit_closes() {
    let mut cfg = no_delay();
    cfg.limits.bad_commands = 3;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    c.feed(b"A\r\nB\r\nC\r\nNOOP\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(
        out(&mut c),
        "-ERR unknown command\r\n-ERR unknown command\r\n\
         -ERR too many bad commands, closing connection\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn overlong_lines_are_refused_and_framing_recovers() {
    let mut cfg = no_delay();
    cfg.limits.line_length = 16;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    // A long line that arrives complete.
    assert_eq!(
        cmd(&mut c, "USER aaaaaaaaaaaaaaaaaaaaaaaa\r\nNOOP\r\n")
            .lines()
            .next(),
        Some("-ERR line too long")
    );
    // A long line that arrives in pieces: the buffer never grows past the limit.
    c.feed(&[b'x'; 40]);
    assert_eq!(c.next_event(), None);
    c.feed(&[b'y'; 4000]);
    assert_eq!(c.next_event(), None);
    assert!(c.wants_input());
    c.feed(b"zz\r\nUSER bob\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "-ERR line too long\r\n+OK send PASS\r\n");
}

#[test]
fn stls_discards_pipelined_plaintext() {
    let mut cfg = no_delay();
    cfg.stls = true;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    c.feed(b"STLS\r\nUSER evil\r\nPASS injected\r\n");
    assert_eq!(c.next_event(), Some(Event::StartTls));
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "+OK Begin TLS negotiation\r\n");
    // Plaintext arriving before the handshake completes is ignored too.
    c.feed(b"PASS more\r\n");
    c.tls_established().unwrap();
    assert!(c.is_tls());
    assert_eq!(c.next_event(), None);
    assert_eq!(c.take_output(), None);
    // The injected USER was not run: PASS now needs USER first.
    assert_eq!(cmd(&mut c, "PASS x\r\n"), "-ERR USER first\r\n");
    assert_eq!(cmd(&mut c, "STLS\r\n"), "-ERR STLS not available\r\n");
    let capa = cmd(&mut c, "CAPA\r\n");
    assert!(!capa.contains("STLS"), "{capa}");
}

#[test]
fn require_tls_for_auth() {
    let mut cfg = no_delay();
    cfg.stls = true;
    cfg.require_tls_for_auth = true;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    let refuse =
        "-ERR [AUTH] plaintext authentication disallowed on non-secure connections, use STLS\r\n";
    assert_eq!(cmd(&mut c, "USER a\r\n"), refuse);
    assert_eq!(cmd(&mut c, "AUTH PLAIN\r\n"), refuse);
    let capa = cmd(&mut c, "CAPA\r\n");
    assert!(!capa.contains("USER") && !capa.contains("SASL") && capa.contains("STLS"));
}

#[test]
fn failed_login_is_delayed_by_the_machine() {
    let mut cfg = Config::default();
    cfg.limits.auth_failure_delay = Duration::from_secs(2);
    cfg.limits.auth_failures = 2;
    let t0 = Instant::now();
    let mut c = Connection::new(cfg, t0);
    out(&mut c);
    c.feed(b"USER a\r\nPASS b\r\nNOOP\r\n");
    assert!(matches!(c.next_event(), Some(Event::Login { .. })));
    c.reply(Reply::AuthFailed {
        code: Some(ResponseCode::Auth),
        text: Bytes::from_static(b"invalid"),
    })
    .unwrap();
    assert_eq!(out(&mut c), "+OK send PASS\r\n");
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    // Pipelined commands wait behind the delay.
    assert_eq!(c.next_event(), None);
    c.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(c.take_output(), None);
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(out(&mut c), "-ERR [AUTH] invalid\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "-ERR command not valid in this state\r\n");
    // The second failure reaches the limit: -ERR, then close.
    let t1 = t0 + Duration::from_secs(10);
    c.handle_timeout(t1);
    c.feed(b"USER a\r\nPASS c\r\n");
    assert!(matches!(c.next_event(), Some(Event::Login { .. })));
    c.reply(Reply::AuthFailed {
        code: Some(ResponseCode::InUse),
        text: Bytes::from_static(b"locked"),
    })
    .unwrap();
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(2)));
    c.handle_timeout(t1 + Duration::from_secs(2));
    assert_eq!(
        out(&mut c),
        "+OK send PASS\r\n-ERR [IN-USE] locked\r\n\
         -ERR too many authentication failures, closing connection\r\n"
    );
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn autologout_after_idle_timeout() {
    let mut cfg = no_delay();
    cfg.limits.idle_timeout = Duration::from_secs(600);
    let (mut c, t0) = logged_in(cfg);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    c.handle_timeout(t0 + Duration::from_secs(300));
    assert_eq!(cmd(&mut c, "NOOP\r\n"), "+OK\r\n");
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(900)));
    c.handle_timeout(t0 + Duration::from_secs(899));
    assert!(!c.is_closed());
    c.handle_timeout(t0 + Duration::from_secs(900));
    assert_eq!(out(&mut c), "-ERR autologout; idle for too long\r\n");
    assert!(c.is_closed());
}

#[test]
fn sasl_plain_with_challenge_and_cancel_and_bad_base64() {
    let mut c = Connection::new(no_delay(), Instant::now());
    out(&mut c);
    // No initial response: the application sends the empty challenge.
    c.feed(b"AUTH plain\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::AuthStart {
            mechanism: Bytes::from_static(b"PLAIN"),
            initial_response: None
        })
    );
    c.reply(Reply::Challenge(Bytes::new())).unwrap();
    assert_eq!(out(&mut c), "+ \r\n");
    c.feed(b"*\r\n");
    assert_eq!(c.next_event(), Some(Event::AuthAborted));
    assert_eq!(out(&mut c), "-ERR authentication cancelled\r\n");
    // Bad base64 in a response.
    c.feed(b"AUTH PLAIN\r\n");
    assert!(matches!(c.next_event(), Some(Event::AuthStart { .. })));
    c.reply(Reply::Challenge(Bytes::new())).unwrap();
    c.feed(b"AGEAYg=?\r\n");
    assert_eq!(c.next_event(), Some(Event::AuthAborted));
    assert_eq!(
        out(&mut c),
        "+ \r\n-ERR invalid base64 in SASL response\r\n"
    );
    // Bad base64 in the initial response.
    assert_eq!(
        cmd(&mut c, "AUTH PLAIN =AAA\r\n"),
        "-ERR invalid base64 in initial response\r\n"
    );
    assert_eq!(
        cmd(&mut c, "AUTH X-UNKNOWN\r\n"),
        "-ERR unsupported SASL mechanism\r\n"
    );
    // "=" is an empty initial response.
    c.feed(b"AUTH PLAIN =\r\n");
    match c.next_event() {
        Some(Event::AuthStart {
            initial_response: Some(ir),
            ..
        }) => assert!(ir.expose().is_empty()),
        e => panic!("{e:?}"),
    }
    c.reply(Reply::AuthFailed {
        code: Some(ResponseCode::Auth),
        text: Bytes::from_static(b"no"),
    })
    .unwrap();
    assert_eq!(out(&mut c), "-ERR [AUTH] no\r\n");
    // A good exchange with the initial response.
    c.feed(b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    match c.next_event() {
        Some(Event::AuthStart {
            initial_response: Some(ir),
            ..
        }) => {
            assert_eq!(&ir.expose()[..], b"\0tim\0tanstaaftanstaaf")
        }
        e => panic!("{e:?}"),
    }
    c.reply(Reply::LoggedIn(vec![])).unwrap();
    assert_eq!(
        out(&mut c),
        "+OK maildrop locked and ready, 0 messages (0 octets)\r\n"
    );
    assert_eq!(
        cmd(&mut c, "AUTH PLAIN\r\n"),
        "-ERR already authenticated\r\n"
    );
    let capa = cmd(&mut c, "CAPA\r\n");
    assert!(
        capa.contains("SASL PLAIN\r\n"),
        "RFC 5034: SASL stays after AUTH: {capa}"
    );
}

#[test]
fn sasl_success_with_final_data_waits_for_empty_response() {
    let mut c = Connection::new(no_delay(), Instant::now());
    out(&mut c);
    c.feed(b"AUTH PLAIN\r\n");
    assert!(matches!(c.next_event(), Some(Event::AuthStart { .. })));
    c.reply(Reply::Challenge(Bytes::from_static(b"server-first")))
        .unwrap();
    assert_eq!(out(&mut c), "+ c2VydmVyLWZpcnN0\r\n");
    c.feed(b"Y2xpZW50\r\n");
    match c.next_event() {
        Some(Event::AuthResponse(r)) => assert_eq!(&r.expose()[..], b"client"),
        e => panic!("{e:?}"),
    }
    c.reply(Reply::SaslSuccess {
        data: Bytes::from_static(b"v=abc"),
        maildrop: maildrop(),
    })
    .unwrap();
    assert_eq!(out(&mut c), "+ dj1hYmM=\r\n");
    assert_eq!(c.state(), State::Authorization);
    c.feed(b"\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(
        out(&mut c),
        "+OK maildrop locked and ready, 2 messages (320 octets)\r\n"
    );
    assert_eq!(c.state(), State::Transaction);
}

#[test]
fn body_stuffing_across_chunk_borders_and_bare_lf() {
    let (mut c, _) = logged_in(no_delay());
    c.feed(b"RETR 1\r\n");
    assert!(matches!(c.next_event(), Some(Event::Retr { .. })));
    for chunk in [
        &b"a\r"[..],
        b"\n",
        b".",
        b"b\n",
        b"\r\n",
        b"..c",
        b"\n.",
        b"\r",
        b"\n",
        b"end",
    ] {
        c.send_body_chunk(chunk).unwrap();
    }
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "+OK 120 octets\r\na\r\n..b\r\n\r\n...c\r\n..\r\nend\r\n.\r\n"
    );
    // Failure before the first chunk is an -ERR; the session goes on.
    c.feed(b"RETR 2\r\n");
    assert!(matches!(c.next_event(), Some(Event::Retr { .. })));
    c.reply(Reply::Error {
        code: Some(ResponseCode::SysTemp),
        text: Bytes::from_static(b"gone"),
    })
    .unwrap();
    assert_eq!(out(&mut c), "-ERR [SYS/TEMP] gone\r\n");
    // Failure in the middle of a body closes the connection (the client cannot be told).
    c.feed(b"RETR 2\r\n");
    assert!(matches!(c.next_event(), Some(Event::Retr { .. })));
    c.send_body_chunk(b"partial").unwrap();
    c.reply(Reply::Error {
        code: None,
        text: Bytes::new(),
    })
    .unwrap();
    assert!(c.is_closed());
}

#[test]
fn pipelined_commands_answer_in_order() {
    let (mut c, _) = logged_in(no_delay());
    c.feed(b"STAT\r\nRETR 1\r\nDELE 1\r\nSTAT\r\n");
    assert!(matches!(c.next_event(), Some(Event::Retr { .. })));
    // The DELE behind the RETR is not run yet.
    assert_eq!(c.next_event(), None);
    c.send_body_chunk(b"m\r\n").unwrap();
    c.finish_body().unwrap();
    assert_eq!(c.next_event(), None);
    assert_eq!(
        out(&mut c),
        "+OK 2 320\r\n+OK 120 octets\r\nm\r\n.\r\n+OK message 1 deleted\r\n+OK 1 200\r\n"
    );
}

#[test]
fn pending_input_limit_gives_backpressure() {
    let mut cfg = no_delay();
    cfg.limits.pending_input = 64;
    let (mut c, _) = logged_in(cfg);
    c.feed(b"RETR 1\r\n");
    assert!(matches!(c.next_event(), Some(Event::Retr { .. })));
    for _ in 0..20 {
        c.feed(b"NOOP\r\n");
    }
    assert!(!c.wants_input());
    c.finish_body().unwrap();
    assert_eq!(c.next_event(), None);
    assert!(c.wants_input());
}

#[test]
fn unexpected_reply_is_an_error_not_a_panic() {
    let (mut c, _) = logged_in(no_delay());
    let nothing_waits = "not allowed now: no event is waiting for a reply";
    assert_eq!(
        c.reply(Reply::Committed).unwrap_err().to_string(),
        nothing_waits
    );
    assert_eq!(
        c.reply(Reply::Challenge(Bytes::new()))
            .unwrap_err()
            .to_string(),
        nothing_waits
    );
    assert!(matches!(c.send_body_chunk(b"x"), Err(Error::State(_))));
    assert!(matches!(c.finish_body(), Err(Error::State(_))));
    assert!(matches!(c.tls_established(), Err(Error::State(_))));
    assert!(!c.is_tls());
    assert_eq!(c.take_output(), None);
    assert_eq!(cmd(&mut c, "NOOP\r\n"), "+OK\r\n");
    c.feed(b"QUIT\r\n");
    assert!(matches!(c.next_event(), Some(Event::Commit { .. })));
    assert!(matches!(
        c.reply(Reply::LoggedIn(vec![])),
        Err(Error::State(_))
    ));
    assert_eq!(
        out(&mut c),
        "-ERR [SYS/TEMP] internal server error (unexpected reply)\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn limits_defaults_are_documented_values() {
    let l = Limits::default();
    assert_eq!(l.line_length, 1024);
    assert_eq!(l.sasl_line_length, 12 * 1024);
    assert_eq!(l.bad_commands, 10);
    assert_eq!(l.auth_failures, 3);
    assert_eq!(l.auth_failure_delay, Duration::from_secs(2));
    assert_eq!(l.idle_timeout, Duration::from_secs(600));
    assert_eq!(l.pending_input, 64 * 1024);
}

#[test]
fn overlong_sasl_line_aborts_the_exchange_and_later_commands_run() {
    let mut cfg = no_delay();
    cfg.limits.sasl_line_length = 8;
    let mut c = Connection::new(cfg, Instant::now());
    out(&mut c);
    c.feed(b"AUTH PLAIN\r\n");
    assert!(matches!(c.next_event(), Some(Event::AuthStart { .. })));
    c.reply(Reply::Challenge(Bytes::new())).unwrap();
    c.feed(b"QUFBQUFBQUFBQUFB\r\nUSER x\r\n");
    assert_eq!(c.next_event(), Some(Event::AuthAborted));
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "+ \r\n-ERR line too long\r\n+OK send PASS\r\n");
}

/// RFC 5034 section 6: PLAIN offered only once TLS is active, with and without the
/// initial response.
#[test]
fn rfc5034_examples_plain_after_stls() {
    let mechs = ["PLAIN", "DIGEST-MD5", "GSSAPI", "ANONYMOUS"];
    let mut cfg = no_delay();
    cfg.greeting = Bytes::from_static(b"pop.example.com BlurdyBlurp POP3 server ready");
    cfg.implementation = Some(Bytes::from_static(b"BlurdyBlurp POP3 server"));
    cfg.sasl_mechanisms = mechs.map(Bytes::from).to_vec();
    cfg.user_pass = false;
    cfg.stls = true;
    cfg.cleartext_needs_tls = true;
    for with_ir in [true, false] {
        let mut c = Connection::new(cfg.clone(), Instant::now());
        assert_eq!(
            out(&mut c),
            "+OK pop.example.com BlurdyBlurp POP3 server ready\r\n"
        );
        assert_eq!(
            cmd(&mut c, "CAPA\r\n"),
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
             PIPELINING\r\nSASL DIGEST-MD5 GSSAPI ANONYMOUS\r\nSTLS\r\n\
             IMPLEMENTATION BlurdyBlurp POP3 server\r\n.\r\n"
        );
        assert_eq!(
            cmd(&mut c, "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n"),
            "-ERR [AUTH] plaintext authentication disallowed on non-secure connections, use STLS\r\n"
        );
        c.feed(b"STLS\r\n");
        assert_eq!(c.next_event(), Some(Event::StartTls));
        assert_eq!(out(&mut c), "+OK Begin TLS negotiation\r\n");
        c.tls_established().unwrap();
        assert_eq!(
            cmd(&mut c, "CAPA\r\n"),
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
             PIPELINING\r\nSASL PLAIN DIGEST-MD5 GSSAPI ANONYMOUS\r\n\
             IMPLEMENTATION BlurdyBlurp POP3 server\r\n.\r\n"
        );
        if with_ir {
            c.feed(b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n");
        } else {
            c.feed(b"AUTH PLAIN\r\n");
            match c.next_event() {
                Some(Event::AuthStart {
                    initial_response: None,
                    ..
                }) => {}
                e => panic!("{e:?}"),
            }
            c.reply(Reply::Challenge(Bytes::new())).unwrap();
            assert_eq!(out(&mut c), "+ \r\n");
            c.feed(b"dGVzdAB0ZXN0AHRlc3Q=\r\n");
        }
        let data = match c.next_event() {
            Some(Event::AuthStart {
                initial_response: Some(d),
                ..
            }) => d,
            Some(Event::AuthResponse(d)) => d,
            e => panic!("{e:?}"),
        };
        assert_eq!(&data.expose()[..], b"test\0test\0test");
        c.reply(Reply::LoggedIn(vec![])).unwrap();
        assert_eq!(
            out(&mut c),
            "+OK maildrop locked and ready, 0 messages (0 octets)\r\n"
        );
    }
}
