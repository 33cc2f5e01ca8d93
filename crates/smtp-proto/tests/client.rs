//! Client state machine: exact wire bytes against scripted servers.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use smtp_proto::client::{Config, Connection, Event, Sent, Transfer, decode_challenge};
use smtp_proto::{
    Command, Error, ForwardPath, HelloVerb, MailParams, Mailbox, RcptParams, ReversePath,
};

fn out(c: &mut Connection) -> String {
    let mut s = Vec::new();
    while let Some(b) = c.take_output() {
        s.extend_from_slice(&b);
    }
    String::from_utf8(s).unwrap()
}

fn replies(c: &mut Connection) -> Vec<(Sent, u16)> {
    let mut v = Vec::new();
    while let Some(ev) = c.next_event() {
        match ev {
            Event::Reply { to, reply } => v.push((to, reply.code)),
            other => panic!("unexpected {other:?}"),
        }
    }
    v
}

fn to(addr: &str) -> (ForwardPath, RcptParams) {
    let (l, d) = addr.split_once('@').unwrap();
    (
        ForwardPath::Mailbox(Mailbox::new(l, d)),
        RcptParams::default(),
    )
}

fn from(addr: &str) -> ReversePath {
    let (l, d) = addr.split_once('@').unwrap();
    ReversePath::Mailbox(Mailbox::new(l, d))
}

fn greeted(caps: &str) -> Connection {
    let mut c = Connection::new(Config::new("bar.com"), Instant::now());
    c.feed(b"220 foo.com Simple Mail Transfer Service Ready\r\n");
    assert_eq!(replies(&mut c), [(Sent::Greeting, 220)]);
    c.send(Command::Hello {
        verb: HelloVerb::Ehlo,
        domain: "bar.com".into(),
    })
    .unwrap();
    assert_eq!(out(&mut c), "EHLO bar.com\r\n");
    c.feed(caps.as_bytes());
    assert_eq!(replies(&mut c), [(Sent::Hello, 250)]);
    c
}

#[test]
fn rfc5321_d1_lock_step() {
    let mut c = greeted(
        "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
    );
    let caps = c.capabilities().unwrap().clone();
    assert_eq!(caps.domain, "foo.com");
    assert!(caps.eight_bit_mime && caps.dsn && !caps.pipelining);
    assert_eq!(caps.size, Some(0));
    c.send_transaction(
        from("Smith@bar.com"),
        MailParams::default(),
        &[
            to("Jones@foo.com"),
            to("Green@foo.com"),
            to("Brown@foo.com"),
        ],
        Transfer::Data,
    )
    .unwrap();
    // Without PIPELINING each command waits for the previous reply.
    assert_eq!(out(&mut c), "MAIL FROM:<Smith@bar.com>\r\n");
    c.feed(b"250 OK\r\n");
    assert_eq!(replies(&mut c), [(Sent::Mail, 250)]);
    assert_eq!(out(&mut c), "RCPT TO:<Jones@foo.com>\r\n");
    c.feed(b"250 OK\r\n");
    let _ = replies(&mut c);
    assert_eq!(out(&mut c), "RCPT TO:<Green@foo.com>\r\n");
    c.feed(b"550 No such user here\r\n");
    assert_eq!(replies(&mut c), [(Sent::Rcpt, 550)]);
    assert_eq!(out(&mut c), "RCPT TO:<Brown@foo.com>\r\n");
    c.feed(b"250 OK\r\n");
    let _ = replies(&mut c);
    assert_eq!(out(&mut c), "DATA\r\n");
    assert_eq!(c.accepted_recipients(), 2);
    c.feed(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
    assert_eq!(replies(&mut c), [(Sent::Data, 354)]);
    c.send_body(b"Blah blah blah...\r\n...etc. etc. etc.")
        .unwrap();
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "Blah blah blah...\r\n....etc. etc. etc.\r\n.\r\n"
    );
    c.feed(b"250 OK\r\n");
    assert_eq!(replies(&mut c), [(Sent::Message, 250)]);
    c.send(Command::Quit).unwrap();
    assert_eq!(out(&mut c), "QUIT\r\n");
    c.feed(b"221 foo.com Service closing transmission channel\r\n");
    assert_eq!(replies(&mut c), [(Sent::Quit, 221)]);
    assert!(c.is_closed());
}

#[test]
fn rfc2920_pipelined_transaction() {
    let mut c = greeted("250-innosoft.com\r\n250 PIPELINING\r\n");
    c.send_transaction(
        from("mrose@dbc.mtview.ca.us"),
        MailParams::default(),
        &[
            to("ned@innosoft.com"),
            to("dan@innosoft.com"),
            to("kvc@innosoft.com"),
        ],
        Transfer::Data,
    )
    .unwrap();
    assert_eq!(
        out(&mut c),
        "MAIL FROM:<mrose@dbc.mtview.ca.us>\r\nRCPT TO:<ned@innosoft.com>\r\nRCPT TO:<dan@innosoft.com>\r\n\
RCPT TO:<kvc@innosoft.com>\r\nDATA\r\n"
    );
    c.feed(
        b"250 sender <mrose@dbc.mtview.ca.us> OK\r\n250 recipient <ned@innosoft.com> OK\r\n\
250 recipient <dan@innosoft.com> OK\r\n250 recipient <kvc@innosoft.com> OK\r\n354 enter mail\r\n",
    );
    assert_eq!(
        replies(&mut c),
        [
            (Sent::Mail, 250),
            (Sent::Rcpt, 250),
            (Sent::Rcpt, 250),
            (Sent::Rcpt, 250),
            (Sent::Data, 354)
        ]
    );
}

#[test]
fn refused_mail_drops_the_rest_in_lock_step() {
    let mut c = greeted("250 foo.com\r\n");
    c.send_transaction(
        from("a@b.c"),
        MailParams::default(),
        &[to("d@e.f")],
        Transfer::Data,
    )
    .unwrap();
    assert_eq!(out(&mut c), "MAIL FROM:<a@b.c>\r\n");
    c.feed(b"550 5.7.1 go away\r\n");
    assert_eq!(replies(&mut c), [(Sent::Mail, 550)]);
    assert_eq!(out(&mut c), "");
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn dot_stuffing_across_chunk_borders() {
    let body = b"a\r\n.b\r\n..\r\n.\r\nbare\n.lf\r\nend";
    let expected = "a\r\n..b\r\n...\r\n..\r\nbare\r\n..lf\r\nend\r\n.\r\n";
    for split in 0..=body.len() {
        let mut c = greeted("250-x\r\n250 PIPELINING\r\n");
        c.send_transaction(
            from("a@b.c"),
            MailParams::default(),
            &[to("d@e.f")],
            Transfer::Data,
        )
        .unwrap();
        let _ = out(&mut c);
        c.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
        let _ = replies(&mut c);
        c.send_body(&body[..split]).unwrap();
        c.send_body(&body[split..]).unwrap();
        c.finish_body().unwrap();
        assert_eq!(out(&mut c), expected, "split at {split}");
    }
}

#[test]
fn smtputf8_is_attached_for_non_ascii_addresses() {
    // field-notes: MailKit#649
    let mut c = greeted("250-x\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n");
    c.send_transaction(
        from("a@b.c"),
        MailParams::default(),
        &[to("j\u{f6}rg@b\u{fc}cher.de")],
        Transfer::Bdat,
    )
    .unwrap();
    assert_eq!(
        out(&mut c),
        "MAIL FROM:<a@b.c> SMTPUTF8\r\nRCPT TO:<j\u{f6}rg@b\u{fc}cher.de>\r\n"
    );
    let mut c = greeted("250-x\r\n250 PIPELINING\r\n");
    assert!(matches!(
        c.send_transaction(
            from("a@b.c"),
            MailParams::default(),
            &[to("j\u{f6}rg@x.de")],
            Transfer::Data
        ),
        Err(Error::NotSupported(_))
    ));
    let mut c = greeted("250-x\r\n250 SMTPUTF8\r\n");
    c.send_transaction(
        from("a@b.c"),
        MailParams::default(),
        &[to("d@e.f")],
        Transfer::Data,
    )
    .unwrap();
    assert_eq!(out(&mut c), "MAIL FROM:<a@b.c>\r\n");
}

#[test]
fn rfc3030_bdat_client() {
    let mut c = greeted("250-x\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n");
    assert!(c.capabilities().unwrap().chunking);
    let mut p = MailParams::default();
    p.body = Some(smtp_proto::Body::BinaryMime);
    c.send_transaction(
        from("Sam@Random.com"),
        p,
        &[to("Susan@Random.com")],
        Transfer::Bdat,
    )
    .unwrap();
    c.send_bdat(b"0123456789", false).unwrap();
    c.send_bdat(b"abcde", true).unwrap();
    assert_eq!(
        out(&mut c),
        "MAIL FROM:<Sam@Random.com> BODY=BINARYMIME\r\nRCPT TO:<Susan@Random.com>\r\nBDAT 10\r\n0123456789BDAT 5 LAST\r\nabcde"
    );
    c.feed(b"250 ok\r\n250 ok\r\n250 10 octets\r\n250 Message OK, 15 octets received\r\n");
    assert_eq!(
        replies(&mut c),
        [
            (Sent::Mail, 250),
            (Sent::Rcpt, 250),
            (Sent::Bdat, 250),
            (Sent::Message, 250)
        ]
    );
}

#[test]
fn rfc2033_lmtp_client_expects_one_reply_per_recipient() {
    let mut cfg = Config::new("foo.edu");
    cfg.lmtp = true;
    let mut c = Connection::new(cfg, Instant::now());
    c.feed(b"220 foo.edu LMTP server ready\r\n");
    let _ = replies(&mut c);
    c.send(Command::Hello {
        verb: HelloVerb::Lhlo,
        domain: "foo.edu".into(),
    })
    .unwrap();
    c.feed(b"250-foo.edu\r\n250-PIPELINING\r\n250 SIZE\r\n");
    let _ = replies(&mut c);
    c.send_transaction(
        from("chris@foo.edu"),
        MailParams::default(),
        &[to("pat@foo.edu"), to("jones@foo.edu"), to("green@foo.edu")],
        Transfer::Data,
    )
    .unwrap();
    c.feed(b"250 OK\r\n250 OK\r\n550 No such user here\r\n250 OK\r\n354 Start mail input\r\n");
    let _ = replies(&mut c);
    c.send_body(b"Blah").unwrap();
    c.finish_body().unwrap();
    assert_eq!(
        out(&mut c),
        "LHLO foo.edu\r\nMAIL FROM:<chris@foo.edu>\r\nRCPT TO:<pat@foo.edu>\r\nRCPT TO:<jones@foo.edu>\r\n\
RCPT TO:<green@foo.edu>\r\nDATA\r\nBlah\r\n.\r\n"
    );
    c.feed(b"250 OK\r\n452 <green@foo.edu> is temporarily over quota\r\n");
    assert_eq!(
        replies(&mut c),
        [(Sent::Message, 250), (Sent::Message, 452)]
    );
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn rfc4954_auth_exchange() {
    let mut c = greeted("250-x\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN LOGIN\r\n");
    assert_eq!(c.capabilities().unwrap().auth, ["LOGIN", "PLAIN"]);
    c.send(Command::Auth {
        mechanism: "LOGIN".into(),
        initial_response: None,
    })
    .unwrap();
    c.feed(b"334 VXNlcm5hbWU6\r\n");
    let Some(Event::Reply {
        to: Sent::Auth,
        reply,
    }) = c.next_event()
    else {
        panic!()
    };
    assert_eq!(decode_challenge(&reply).unwrap(), b"Username:");
    c.send_auth_response(&smtp_proto::Secret::new(b"tim".to_vec()));
    c.cancel_auth();
    assert_eq!(out(&mut c), "AUTH LOGIN\r\ndGlt\r\n*\r\n");
}

#[test]
fn timeouts_follow_rfc5321_values() {
    let t0 = Instant::now();
    let mut c = Connection::new(Config::new("x"), t0);
    // Armed on the first check, fired five minutes later.
    assert_eq!(c.poll_timeout(), Some(t0));
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(300)));
    c.feed(b"220 ok\r\n");
    let _ = replies(&mut c);
    assert_eq!(c.poll_timeout(), None);
    c.send(Command::Data).unwrap();
    c.handle_timeout(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    c.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(c.next_event(), Some(Event::TimedOut(Sent::Data)));
    assert!(c.is_closed());
}

#[test]
fn broken_server_output_is_a_protocol_error() {
    let mut c = Connection::new(Config::new("x"), Instant::now());
    c.feed(b"HTTP/1.1 400 Bad Request\r\n");
    assert!(matches!(c.next_event(), Some(Event::ProtocolError(_))));
    let mut c = Connection::new(Config::new("x"), Instant::now());
    c.feed(&vec![b'2'; 10_000]);
    assert!(matches!(
        c.next_event(),
        Some(Event::ProtocolError(Error::LineTooLong { .. }))
    ));
    let mut c = Connection::new(Config::new("x"), Instant::now());
    c.feed(b"220 hi\r\n250 unsolicited\r\n");
    let _ = c.next_event();
    assert!(matches!(c.next_event(), Some(Event::ProtocolError(_))));
}

#[test]
fn client_and_server_machines_talk() {
    use smtp_proto::server;
    let mut srv = server::Connection::new(server::Config::mx("mx.test"), Instant::now());
    let mut cli = Connection::new(Config::new("cli.test"), Instant::now());
    let mut body = Vec::new();
    let mut log = Vec::new();
    let step = |srv: &mut server::Connection,
                cli: &mut Connection,
                body: &mut Vec<u8>,
                log: &mut Vec<(Sent, u16)>| {
        for _ in 0..10 {
            while let Some(b) = srv.take_output() {
                cli.feed(&b);
            }
            while let Some(ev) = cli.next_event() {
                if let Event::Reply { to, reply } = ev {
                    log.push((to, reply.code));
                }
            }
            while let Some(b) = cli.take_output() {
                srv.feed(&b);
            }
            while let Some(ev) = srv.next_event() {
                match ev {
                    server::Event::MailFrom { .. } => {
                        srv.reply(server::MailDecision::Accept).unwrap()
                    }
                    server::Event::RcptTo { .. } => {
                        srv.reply(server::RcptDecision::Accept).unwrap()
                    }
                    server::Event::DataChunk(c) => body.extend_from_slice(&c),
                    server::Event::DataEnd => srv.reply(server::MessageDecision::Accept).unwrap(),
                    _ => {}
                }
            }
        }
    };
    cli.send(Command::Hello {
        verb: HelloVerb::Ehlo,
        domain: "cli.test".into(),
    })
    .unwrap();
    step(&mut srv, &mut cli, &mut body, &mut log);
    cli.send_transaction(
        from("a@b.c"),
        MailParams::default(),
        &[to("d@e.f"), to("g@h.i")],
        Transfer::Data,
    )
    .unwrap();
    step(&mut srv, &mut cli, &mut body, &mut log);
    cli.send_body(b".hidden\r\n.\r\nline\n").unwrap();
    cli.finish_body().unwrap();
    cli.send(Command::Quit).unwrap();
    step(&mut srv, &mut cli, &mut body, &mut log);
    assert_eq!(body, b".hidden\r\n.\r\nline\r\n");
    assert_eq!(
        log,
        [
            (Sent::Greeting, 220),
            (Sent::Hello, 250),
            (Sent::Mail, 250),
            (Sent::Rcpt, 250),
            (Sent::Rcpt, 250),
            (Sent::Data, 354),
            (Sent::Message, 250),
            (Sent::Quit, 221)
        ]
    );
    assert!(srv.is_closed() && cli.is_closed());
}
