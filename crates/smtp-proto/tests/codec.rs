//! Parser and encoder: known answers from the RFCs and proptest round trips.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use bytes::BytesMut;
use proptest::prelude::*;
use smtp_proto::parse;
use smtp_proto::{
    Body, Command, EnhancedCode, Error, ForwardPath, HelloVerb, MailParams, Mailbox, Notify,
    OriginalRecipient, RcptParams, Reply, Ret, ReversePath, Secret, encode,
};

fn enc(cmd: &Command) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode::command(cmd, &mut b);
    b.to_vec()
}

fn enc_reply(r: &Reply) -> String {
    let mut b = BytesMut::new();
    encode::reply(r, true, &mut b);
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn known_commands() {
    let c = parse::command(b"mail from:<Smith@bar.com> size=1000 BODY=8bitmime").unwrap();
    let Command::Mail { from, params } = &c else {
        panic!()
    };
    assert_eq!(
        from,
        &ReversePath::Mailbox(Mailbox::new("Smith", "bar.com"))
    );
    assert_eq!(params.size, Some(1000));
    assert_eq!(params.body, Some(Body::EightBitMime));
    assert_eq!(
        enc(&c),
        b"MAIL FROM:<Smith@bar.com> SIZE=1000 BODY=8BITMIME\r\n"
    );

    assert_eq!(parse::command(b"QUIT").unwrap(), Command::Quit);
    assert_eq!(parse::command(b"quit  ").unwrap(), Command::Quit);
    assert_eq!(parse::command(b"StartTLS").unwrap(), Command::StartTls);
    assert_eq!(
        parse::command(b"BDAT 0 LAST").unwrap(),
        Command::Bdat {
            size: 0,
            last: true
        }
    );
    assert_eq!(
        parse::command(b"bdat 1000").unwrap(),
        Command::Bdat {
            size: 1000,
            last: false
        }
    );
    assert_eq!(
        parse::command(b"AUTH plain =").unwrap(),
        Command::Auth {
            mechanism: "PLAIN".into(),
            initial_response: Some(Secret::new(vec![]))
        }
    );
    assert_eq!(
        parse::command(b"EHLO [192.0.2.1]").unwrap(),
        Command::Hello {
            verb: HelloVerb::Ehlo,
            domain: "[192.0.2.1]".into()
        }
    );
    assert_eq!(
        parse::command(b"MAIL FROM:<>").unwrap(),
        Command::Mail {
            from: ReversePath::Null,
            params: MailParams::default()
        }
    );
    assert!(matches!(parse::command(b"FOO"), Err(Error::UnknownCommand)));
    assert!(matches!(
        parse::command(b"MAIL TO:<a@b>"),
        Err(Error::Syntax { .. })
    ));
    assert!(matches!(
        parse::command(b"MAIL FROM:<a@b> SIZE=x"),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        parse::command(b"MAIL FROM:<a@b> SIZE=1 SIZE=2"),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        parse::command(b"RCPT TO:<a@b"),
        Err(Error::InvalidAddress { .. })
    ));
    // RFC 3461 section 4.2 example: ORCPT with an xtext-encoded "+".
    let c = parse::command(b"RCPT TO:<a@b.c> ORCPT=rfc822;joe+2Bx@example.com").unwrap();
    let Command::Rcpt { params, .. } = &c else {
        panic!()
    };
    assert_eq!(params.orcpt.as_ref().unwrap().address, "joe+x@example.com");
    assert_eq!(
        enc(&c),
        b"RCPT TO:<a@b.c> ORCPT=rfc822;joe+2Bx@example.com\r\n"
    );
}

#[test]
fn known_replies() {
    let (r, n) = parse::reply(b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250 HELP\r\nxx")
        .unwrap()
        .unwrap();
    assert_eq!(n, 52);
    assert_eq!(r.code, 250);
    assert_eq!(r.lines, ["foo.com greets bar.com", "8BITMIME", "HELP"]);
    let (r, _) = parse::reply(b"550-5.1.1 No such\r\n550 5.1.1 user here\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(r.enhanced, Some(EnhancedCode::new(5, 1, 1)));
    assert_eq!(r.lines, ["No such", "user here"]);
    assert_eq!(
        enc_reply(&r),
        "550-5.1.1 No such\r\n550 5.1.1 user here\r\n"
    );
    // A class that does not match the code is text, not an enhanced code.
    let (r, _) = parse::reply(b"250 5.1.1 odd\r\n").unwrap().unwrap();
    assert_eq!(r.enhanced, None);
    assert_eq!(parse::reply(b"250-partial\r\n").unwrap(), None);
    assert!(parse::reply(b"250-a\r\n251 b\r\n").is_err());
    assert!(parse::reply(b"hello\r\n").is_err());
    assert!(parse::reply(b"2500\r\n").is_err());
    let (r, _) = parse::reply(b"354\r\n").unwrap().unwrap();
    assert_eq!((r.code, r.lines.as_slice()), (354, &[String::new()][..]));
    let (r, _) = parse::reply(b"334 \r\n").unwrap().unwrap();
    assert_eq!(r.lines, [""]);
}

fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}"
}

fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(atom(), 1..3).prop_map(|v| v.join(".")),
        "[ a-zA-Z0-9@,.]{0,10}".prop_map(|s| format!("\"{s}\"")),
        "[a-z]{1,4}[\u{e9}\u{4f8b}\u{5b50}]{1,3}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 1..4).prop_map(|v| v.join(".")),
        any::<[u8; 4]>().prop_map(|a| format!("[{}.{}.{}.{}]", a[0], a[1], a[2], a[3])),
        Just("[IPv6:2001:db8::1]".to_string()),
        Just("b\u{fc}cher.de".to_string()),
    ]
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    (local_part(), domain()).prop_map(|(l, d)| Mailbox::new(l, d))
}

fn xtext_value() -> impl Strategy<Value = String> {
    "[ -~\u{e9}]{1,12}"
}

fn mail_params() -> impl Strategy<Value = MailParams> {
    (
        prop::option::of(any::<u64>()),
        prop::option::of(prop_oneof![
            Just(Body::SevenBit),
            Just(Body::EightBitMime),
            Just(Body::BinaryMime)
        ]),
        any::<bool>(),
        prop::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]),
        prop::option::of(xtext_value()),
        prop::option::of(prop_oneof![
            Just("<>".to_string()),
            xtext_value().prop_filter("not <>", |s| s != "<>")
        ]),
        any::<bool>(),
        prop::collection::vec(("X-[A-Z0-9]{1,6}", prop::option::of("[!-<>-~]{1,8}")), 0..2),
    )
        .prop_map(
            |(size, body, smtputf8, ret, envid, auth, requiretls, other)| {
                let mut p = MailParams::default();
                p.size = size;
                p.body = body;
                p.smtputf8 = smtputf8;
                p.ret = ret;
                p.envid = envid;
                p.auth = auth;
                p.requiretls = requiretls;
                p.other = other;
                p
            },
        )
}

fn rcpt_params() -> impl Strategy<Value = RcptParams> {
    (
        prop::option::of(prop_oneof![
            Just(Notify {
                never: true,
                ..Notify::default()
            }),
            (any::<bool>(), any::<bool>(), any::<bool>())
                .prop_filter("one flag", |(a, b, c)| *a || *b || *c)
                .prop_map(|(success, failure, delay)| Notify {
                    never: false,
                    success,
                    failure,
                    delay
                }),
        ]),
        prop::option::of(
            ("rfc822|utf-8", xtext_value()).prop_map(|(t, a)| OriginalRecipient {
                addr_type: t,
                address: a,
            }),
        ),
    )
        .prop_map(|(notify, orcpt)| {
            let mut p = RcptParams::default();
            p.notify = notify;
            p.orcpt = orcpt;
            p
        })
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z]([ -~]{0,20}[!-~])?"
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            prop_oneof![
                Just(HelloVerb::Helo),
                Just(HelloVerb::Ehlo),
                Just(HelloVerb::Lhlo)
            ],
            prop_oneof![domain(), "[a-z]{1,8}_[a-z]{1,4}"]
        )
            .prop_map(|(verb, domain)| Command::Hello { verb, domain }),
        (prop::option::of(mailbox()), mail_params()).prop_map(|(m, params)| Command::Mail {
            from: m.map_or(ReversePath::Null, ReversePath::Mailbox),
            params
        }),
        (prop::option::of(mailbox()), rcpt_params()).prop_map(|(m, params)| Command::Rcpt {
            to: m.map_or(ForwardPath::Postmaster, ForwardPath::Mailbox),
            params
        }),
        Just(Command::Data),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        Just(Command::Rset),
        text().prop_map(Command::Vrfy),
        text().prop_map(Command::Expn),
        prop::option::of(text()).prop_map(Command::Help),
        prop::option::of(text()).prop_map(Command::Noop),
        Just(Command::Quit),
        Just(Command::StartTls),
        (
            "[A-Z0-9_-]{1,20}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40))
        )
            .prop_map(|(mechanism, ir)| {
                Command::Auth {
                    mechanism,
                    initial_response: ir.map(Secret::new),
                }
            }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        200u16..600,
        any::<bool>(),
        0u16..1000,
        0u16..1000,
        prop::collection::vec(prop_oneof![Just(String::new()), text()], 1..4),
    )
        .prop_map(|(code, with, subject, detail, lines)| {
            let class = (code / 100) as u8;
            let enhanced = (with && class != 3).then(|| EnhancedCode::new(class, subject, detail));
            Reply {
                code,
                enhanced,
                lines,
            }
        })
}

proptest! {
    #[test]
    fn command_roundtrip(cmd in command()) {
        let wire = enc(&cmd);
        prop_assert!(wire.ends_with(b"\r\n"));
        let parsed = parse::command(&wire[..wire.len() - 2]);
        prop_assert_eq!(parsed, Ok(cmd));
    }

    #[test]
    fn reply_roundtrip(r in reply()) {
        let wire = enc_reply(&r);
        let (parsed, used) = parse::reply(wire.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        // An enhanced code on an empty line is written as "250 2.0.0"; text stays empty.
        prop_assert_eq!(parsed, r);
    }

    #[test]
    fn command_parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse::command(&line);
    }

    #[test]
    fn reply_parser_never_panics(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse::reply(&input);
    }
}

/// Dot-stuffing by the client machine and unstuffing by the server's decoder are inverse,
/// whatever the content and wherever the stream is cut.
fn stuff(body: &[u8], cuts: &[usize]) -> Vec<u8> {
    use smtp_proto::client::{Config, Connection, Event, Transfer};
    let mut c = Connection::new(Config::new("c"), std::time::Instant::now());
    c.feed(b"220 s\r\n");
    let _ = c.next_event();
    let to = (
        ForwardPath::Mailbox(Mailbox::new("d", "e.f")),
        RcptParams::default(),
    );
    c.send_transaction(
        ReversePath::Null,
        MailParams::default(),
        &[to],
        Transfer::Data,
    )
    .unwrap();
    c.feed(b"250 ok\r\n");
    let _ = c.next_event();
    c.feed(b"250 ok\r\n");
    let _ = c.next_event();
    c.feed(b"354 go\r\n");
    assert!(matches!(c.next_event(), Some(Event::Reply { .. })));
    while c.take_output().is_some() {}
    let mut prev = 0;
    for &cut in cuts {
        let cut = cut.min(body.len()).max(prev);
        c.send_body(&body[prev..cut]).unwrap();
        prev = cut;
    }
    c.send_body(&body[prev..]).unwrap();
    c.finish_body().unwrap();
    c.take_output().unwrap().to_vec()
}

fn unstuff(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, usize) {
    use smtp_proto::server::{BareLf, Decoded, DotDecoder};
    let mut d = DotDecoder::new(BareLf::Reject);
    let mut input = BytesMut::new();
    let mut out = Vec::new();
    let mut prev = 0;
    let mut pieces: Vec<&[u8]> = Vec::new();
    for &cut in cuts {
        let cut = cut.min(wire.len()).max(prev);
        pieces.push(&wire[prev..cut]);
        prev = cut;
    }
    pieces.push(&wire[prev..]);
    for piece in pieces {
        input.extend_from_slice(piece);
        loop {
            match d.decode(&mut input) {
                Decoded::Chunk {
                    data,
                    bare_lf,
                    bare_cr,
                } => {
                    assert!(!bare_lf && !bare_cr);
                    out.extend_from_slice(&data);
                }
                Decoded::End => return (out, input.len()),
                _ => break,
            }
        }
    }
    panic!("no end marker in {wire:?}");
}

proptest! {
    #[test]
    fn dot_stuffing_roundtrip(
        lines in prop::collection::vec(
            prop::collection::vec(prop_oneof![Just(b'.'), Just(b'x'), any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n')], 0..12),
            0..12,
        ),
        cuts in prop::collection::vec(0usize..200, 0..4),
    ) {
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(l);
            body.extend_from_slice(b"\r\n");
        }
        let mut sorted = cuts.clone();
        sorted.sort_unstable();
        let wire = stuff(&body, &sorted);
        prop_assert!(wire == b".\r\n" || wire.ends_with(b"\r\n.\r\n"));
        let (decoded, left) = unstuff(&wire, &sorted);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(decoded, body);
    }
}
