//! Encoder choices: atom vs quoted vs literal, LITERAL+, UTF-8, fragments, literal8.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use imap_proto::encode::{self, EncodeOptions, Fragment};
use imap_proto::parse;
use imap_proto::types::*;

fn tag() -> Tag {
    Tag::try_from("t1").unwrap()
}

fn login(user: &str, pass: &[u8]) -> Command {
    Command::new(
        tag(),
        CommandBody::Login {
            username: Bytes::copy_from_slice(user.as_bytes()),
            password: Bytes::copy_from_slice(pass),
        },
    )
}

fn wire(c: &Command, opts: &EncodeOptions) -> Vec<u8> {
    encode::command_to_vec(c, opts)
}

#[test]
fn string_forms() {
    let d = EncodeOptions::default();
    // Atom where an astring allows it.
    assert_eq!(
        wire(&login("fred", b"secret"), &d),
        b"t1 LOGIN fred secret\r\n"
    );
    // Quoted for spaces and specials, with escapes.
    assert_eq!(
        wire(&login("fred smith", b"a\"b\\c"), &d),
        b"t1 LOGIN \"fred smith\" \"a\\\"b\\\\c\"\r\n"
    );
    // Empty string.
    assert_eq!(wire(&login("", b"x"), &d), b"t1 LOGIN \"\" x\r\n");
    // CR/LF and 8-bit force a literal, sent as a separate fragment after `{n}`.
    let c = login("fred", b"line1\r\nline2");
    assert_eq!(
        encode::command(&c),
        vec![
            Fragment::Line(Bytes::from_static(b"t1 LOGIN fred {12}\r\n")),
            Fragment::Literal {
                data: Bytes::from_static(b"line1\r\nline2"),
                sync: true
            },
            Fragment::Line(Bytes::from_static(b"\r\n")),
        ]
    );
    let c = login("j\u{f6}rg", b"pw");
    assert_eq!(wire(&c, &d), "t1 LOGIN {5}\r\nj\u{f6}rg pw\r\n".as_bytes());
    // With UTF8=ACCEPT, 8-bit UTF-8 may be quoted; invalid UTF-8 stays a literal.
    let u = EncodeOptions::default().with_utf8(true);
    assert_eq!(wire(&c, &u), "t1 LOGIN \"j\u{f6}rg\" pw\r\n".as_bytes());
    assert_eq!(
        wire(&login("x", b"\xff"), &u),
        b"t1 LOGIN x {1}\r\n\xff\r\n"
    );
    // LITERAL+: non-synchronising literals, one fragment list without waits.
    let p = EncodeOptions::default().with_literal_plus(true);
    let frags = encode::command_with(&login("j\u{f6}rg", b"pw"), &p);
    assert!(
        frags
            .iter()
            .all(|f| !matches!(f, Fragment::Literal { sync: true, .. }))
    );
    assert_eq!(
        wire(&login("j\u{f6}rg", b"pw"), &p),
        "t1 LOGIN {5+}\r\nj\u{f6}rg pw\r\n".as_bytes()
    );
    // NIL as a string value must be quoted in nstring positions.
    let r = Response::Data(Data::Id(Some(vec![(
        Bytes::from_static(b"name"),
        Some(Bytes::from_static(b"NIL")),
    )])));
    let mut out = Vec::new();
    encode::response(&r, &mut out);
    assert_eq!(out, b"* ID (\"name\" \"NIL\")\r\n");
    assert_eq!(parse::response(&out).unwrap().1, r);
    // Long strings become literals (responses inline them).
    let long = Bytes::from(vec![b'a'; 2000]);
    let r = Response::Data(Data::Fetch {
        seq: std::num::NonZeroU32::new(1).unwrap(),
        items: vec![FetchAttr::Rfc822Header(Some(long.clone()))],
    });
    let mut out = Vec::new();
    encode::response(&r, &mut out);
    assert!(out.starts_with(b"* 1 FETCH (RFC822.HEADER {2000}\r\naaaa"));
    assert_eq!(parse::response(&out).unwrap().1, r);
}

#[test]
fn append_binary_literal_and_mailbox_forms() {
    let c = Command::new(
        tag(),
        CommandBody::Append {
            mailbox: Mailbox::new("Entw\u{fc}rfe").unwrap(),
            message: AppendMessage {
                flags: vec![
                    Flag::Draft,
                    Flag::Keyword(Atom::try_from("$MDNSent").unwrap()),
                ],
                date: Some(DateTime::new(Date::new(2024, 2, 5).unwrap(), 9, 3, 7, 60).unwrap()),
                data: Bytes::from_static(b"a\0b"),
                binary: false,
                utf8: false,
            },
        },
    );
    // NUL forces `~{n}` (RFC 3516 literal8); the name is modified UTF-7.
    assert_eq!(
        wire(&c, &EncodeOptions::default()),
        b"t1 APPEND Entw&APw-rfe (\\Draft $MDNSent) \" 5-Feb-2024 09:03:07 +0100\" ~{3}\r\na\0b\r\n"
    );
    let (_, back) = parse::command(&wire(&c, &EncodeOptions::default())).unwrap();
    let CommandBody::Append { message, .. } = back.body else {
        panic!()
    };
    assert!(message.binary);
    // Mailbox names that need quoting, INBOX normalisation.
    for (name, want) in [
        ("inbox", "INBOX"),
        ("Sent Items", "\"Sent Items\""),
        ("a\"b", "\"a\\\"b\""),
        ("", "\"\""),
        ("R&D", "R&-D"),
        ("Archive/2024", "Archive/2024"),
        ("%x", "\"%x\""),
    ] {
        let c = Command::new(tag(), CommandBody::Delete(Mailbox::new(name).unwrap()));
        assert_eq!(
            wire(&c, &EncodeOptions::default()),
            format!("t1 DELETE {want}\r\n").as_bytes()
        );
    }
}

#[test]
fn append_utf8() {
    let wire = "t1 APPEND INBOX UTF8 (~{13}\r\nSubject: \u{e4}\r\n)\r\n";
    let (used, c) = parse::command(wire.as_bytes()).unwrap();
    assert_eq!(used, wire.len());
    let CommandBody::Append { message, .. } = &c.body else {
        panic!()
    };
    assert!(message.utf8 && message.binary);
    assert_eq!(
        encode::command_to_vec(&c, &EncodeOptions::default()),
        wire.as_bytes()
    );
    let p = parse::append_prefix(
        b"t1 APPEND INBOX (\\Seen) UTF8 (~{11}\r\n",
        &parse::ParserOptions::default(),
    )
    .unwrap();
    assert!(p.utf8 && p.literal.binary && p.literal.sync);
    assert!(parse::command(b"t1 APPEND INBOX UTF8 ({1}\r\nx)\r\n").is_err());
}

#[test]
fn responses_exact_bytes() {
    let cases: Vec<(Response, &[u8])> = vec![
        (
            Response::Status(StatusResponse::untagged(
                StatusKind::Ok,
                Some(Code::UidNext(std::num::NonZeroU32::new(4392).unwrap())),
                Text::try_from("Predicted next UID").unwrap(),
            )),
            b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
        ),
        (
            Response::Status(
                StatusResponse::tagged(
                    tag(),
                    StatusKind::No,
                    Some(Code::TryCreate),
                    Text::try_from("No such mailbox").unwrap(),
                )
                .unwrap(),
            ),
            b"t1 NO [TRYCREATE] No such mailbox\r\n",
        ),
        (
            Response::Continue(Continue::Text {
                code: None,
                text: Text::try_from("Ready for literal data").unwrap(),
            }),
            b"+ Ready for literal data\r\n",
        ),
        (
            Response::Continue(Continue::Base64(Bytes::new())),
            b"+ \r\n",
        ),
        (
            Response::Continue(Continue::Base64(Bytes::from_static(b"test"))),
            b"+ dGVzdA==\r\n",
        ),
        (
            Response::Data(Data::Expunge(std::num::NonZeroU32::new(3).unwrap())),
            b"* 3 EXPUNGE\r\n",
        ),
        (
            Response::Data(Data::Search {
                numbers: vec![],
                modseq: None,
            }),
            b"* SEARCH\r\n",
        ),
        (
            Response::Data(Data::Vanished {
                earlier: true,
                uids: SequenceSet::range(300, 310).unwrap(),
            }),
            b"* VANISHED (EARLIER) 300:310\r\n",
        ),
        (
            Response::Data(Data::List(ListData {
                attributes: vec![MailboxAttr::HasNoChildren, MailboxAttr::Sent],
                delimiter: Some('/'),
                mailbox: Mailbox::new("Gesendete Objekte").unwrap(),
                extended: vec![],
            })),
            b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Gesendete Objekte\"\r\n",
        ),
        (
            Response::Data(Data::List(ListData {
                attributes: vec![],
                delimiter: Some('\\'),
                mailbox: Mailbox::inbox(),
                extended: vec![],
            })),
            b"* LIST () \"\\\\\" INBOX\r\n",
        ),
    ];
    for (r, want) in cases {
        let mut out = Vec::new();
        encode::response(&r, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
        assert_eq!(parse::response(&out).unwrap().1, r);
    }
    // `StatusResponse::tagged` refuses PREAUTH and BYE.
    assert!(StatusResponse::tagged(tag(), StatusKind::Bye, None, Text::default()).is_err());
}

#[test]
fn constructors_reject_invalid_values() {
    assert!(Tag::try_from("a+b").is_err());
    assert!(Tag::try_from("").is_err());
    assert!(Tag::try_from("a b").is_err());
    assert!(Atom::try_from("a]b").is_err());
    assert!(Atom::try_from("\u{e4}").is_err());
    assert!(Text::try_from("a\r\nb").is_err());
    assert!(Mailbox::new("a\nb").is_err());
    assert!(SeqNum::new(0).is_err());
    assert!(SequenceSet::new(vec![]).is_err());
    assert!(Date::new(2023, 2, 29).is_err());
    assert!(Date::new(2024, 2, 29).is_ok());
    assert!(Date::new(2024, 13, 1).is_err());
    let d = Date::new(2024, 1, 1).unwrap();
    assert!(DateTime::new(d, 24, 0, 0, 0).is_err());
    assert!(DateTime::new(d, 0, 0, 0, 1440).is_err());
    assert_eq!(Flag::parse("\\seen").unwrap(), Flag::Seen);
    assert_eq!(Flag::parse("$Junk").unwrap().to_string(), "$Junk");
    assert_eq!(
        Capability::new("AUTH=PLAIN").unwrap().auth_mechanism(),
        Some("PLAIN")
    );
}

#[test]
fn quirk_missing_text() {
    let line = b"* OK[READ-ONLY]\r\n";
    assert!(parse::response(line).is_err());
    let mut o = parse::ParserOptions::default();
    o.quirk_missing_text = true;
    let (_, r) = parse::response_with(line, &o).unwrap();
    assert_eq!(
        r,
        Response::Status(StatusResponse::untagged(
            StatusKind::Ok,
            Some(Code::ReadOnly),
            Text::default()
        ))
    );
    // Text-less status responses are accepted without the quirk (RFC 9051 resp-text).
    assert!(parse::response(b"a1 OK\r\n").is_ok());
    assert!(parse::response(b"* OK [ALERT]\r\n").is_ok());
}

#[test]
fn zero_copy_parsing_slices_the_input() {
    let input = Bytes::from_static(b"a1 LOGIN fred \"blurdy bloop\"\r\na2 NOOP\r\n");
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    let (used, c) = parse::command_bytes(&input, &parse::ParserOptions::default()).unwrap();
    assert_eq!(used, 30);
    let CommandBody::Login { username, password } = &c.body else {
        panic!()
    };
    assert_eq!(&password[..], b"blurdy bloop");
    // Both strings point into the input buffer: no copy was made.
    assert!(range.contains(&(username.as_ptr() as usize)));
    assert!(range.contains(&(password.as_ptr() as usize)));
    let (used2, c2) =
        parse::command_bytes(&input.slice(used..), &parse::ParserOptions::default()).unwrap();
    assert_eq!((used2, c2.body), (9, CommandBody::Noop));
}
