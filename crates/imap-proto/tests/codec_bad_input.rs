//! Hostile and broken input: parse errors with useful positions and tags, never panics,
//! bounded recursion.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use imap_proto::parse::{self, ParseError, ParserOptions};
use imap_proto::types::{CommandBody, SequenceSet};

fn failed(input: &[u8]) -> (usize, &'static str, Option<String>, Option<usize>) {
    match parse::command(input) {
        Err(ParseError::Failed {
            position,
            reason,
            tag,
            consumed,
        }) => (
            position,
            reason,
            tag.map(|t| t.as_str().to_owned()),
            consumed,
        ),
        other => panic!(
            "{:?}: expected Failed, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[test]
fn one_mebibyte_lines() {
    let mut line = b"a1 NOOP ".to_vec();
    line.resize(1 << 20, b'x');
    // No CRLF yet, already over the limit: fail early instead of buffering for ever.
    let (pos, reason, tag, consumed) = failed(&line);
    assert_eq!(reason, "line too long");
    assert_eq!(pos, 64 * 1024);
    assert_eq!(tag.as_deref(), Some("a1"));
    assert_eq!(consumed, None);
    line.extend_from_slice(b"\r\n");
    assert_eq!(failed(&line).1, "line too long");
    assert!(matches!(
        parse::response(&line),
        Err(ParseError::Failed {
            reason: "line too long",
            ..
        })
    ));
    // A larger limit accepts the line, and the parser then rejects the junk.
    let mut opts = ParserOptions::default();
    opts.max_line_len = 2 << 20;
    assert!(matches!(
        parse::command_with(&line, &opts),
        Err(ParseError::Failed {
            reason: "expected CRLF",
            ..
        })
    ));
    // A 1 MiB literal is fine: literals do not count against the line limit.
    let data = vec![b'x'; 1 << 20];
    let mut msg = format!("a2 APPEND INBOX {{{}}}\r\n", data.len()).into_bytes();
    msg.extend_from_slice(&data);
    msg.extend_from_slice(b"\r\n");
    let (used, cmd) = parse::command(&msg).unwrap();
    assert_eq!(used, msg.len());
    assert!(matches!(cmd.body, CommandBody::Append { .. }));
}

#[test]
fn unbalanced_parentheses() {
    for (input, pos) in [
        (&b"a FETCH 1 (FLAGS UID\r\n"[..], 20),
        (b"a FETCH 1 (FLAGS UID))\r\n", 21),
        (b"a SEARCH ((ALL)\r\n", 15),
        (b"a SEARCH (ALL))\r\n", 14),
        (b"a STATUS INBOX (MESSAGES\r\n", 24),
        (b"a STORE 1 FLAGS (\\Seen\r\n", 22),
    ] {
        let (p, _, tag, consumed) = failed(input);
        assert_eq!(p, pos, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(tag.as_deref(), Some("a"));
        assert_eq!(consumed, Some(input.len()));
    }
    for input in [
        &b"* 1 FETCH (FLAGS (\\Seen)\r\n"[..],
        b"* 1 FETCH (FLAGS (\\Seen)))\r\n",
        b"* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)\r\n",
        b"* LIST (\\Noselect \"/\" foo\r\n",
    ] {
        assert!(
            matches!(parse::response(input), Err(ParseError::Failed { .. })),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn invalid_modified_utf7() {
    for name in ["&Jjo!", "&U,BTFw", "&AGE-", "&2D0-", "&-&", "&AOR-", "&=-"] {
        let input = format!("t9 CREATE {name}\r\n");
        let (_, reason, tag, _) = failed(input.as_bytes());
        assert_eq!(reason, "invalid modified UTF-7 mailbox name", "{name}");
        assert_eq!(tag.as_deref(), Some("t9"));
    }
    // Also in responses.
    assert!(parse::response(b"* LIST () \"/\" &Jjo!\r\n").is_err());
    // Invalid UTF-8 is rejected too.
    let (_, reason, _, _) = failed(b"t9 SELECT \"\xff\xfe\"\r\n");
    assert_eq!(reason, "mailbox name is not valid UTF-8");
}

#[test]
fn sequence_number_zero() {
    for input in [
        &b"a FETCH 0 FLAGS\r\n"[..],
        b"a FETCH 1:0 FLAGS\r\n",
        b"a FETCH 0:* FLAGS\r\n",
        b"a UID STORE 1,0 +FLAGS (\\Seen)\r\n",
        b"a UID EXPUNGE 0\r\n",
        b"a SEARCH UID 0\r\n",
        b"a COPY 4,0:2 Trash\r\n",
    ] {
        let (_, reason, tag, _) = failed(input);
        assert_eq!(
            reason,
            "sequence number must not be 0",
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(tag.as_deref(), Some("a"));
    }
    assert!(parse::response(b"* 0 EXPUNGE\r\n").is_err());
    assert!(parse::response(b"* 0 FETCH (UID 1)\r\n").is_err());
    assert!(parse::response(b"* 1 FETCH (UID 0)\r\n").is_err());
    // "* 0 EXISTS" is legal.
    assert!(parse::response(b"* 0 EXISTS\r\n").is_ok());
}

#[test]
fn reversed_ranges_are_equal() {
    let (_, a) = parse::command(b"a FETCH 5:3 FLAGS\r\n").unwrap();
    let (_, b) = parse::command(b"a FETCH 3:5 FLAGS\r\n").unwrap();
    assert_eq!(a, b);
    let (_, a) = parse::command(b"a FETCH *:4 FLAGS\r\n").unwrap();
    let (_, b) = parse::command(b"a FETCH 4:* FLAGS\r\n").unwrap();
    assert_eq!(a, b);
    let CommandBody::Fetch { set, .. } = a.body else {
        panic!()
    };
    assert_eq!(set.iter(6).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert!(set.contains(6, 6));
    assert!(!set.contains(3, 6));
    let s = SequenceSet::range(9, 2).unwrap();
    assert_eq!(s.to_string(), "2:9");
}

#[test]
fn forbidden_tag_characters() {
    for input in [
        &b"a{ NOOP\r\n"[..],
        b"a* NOOP\r\n",
        b"a+ NOOP\r\n",
        b"+ NOOP\r\n",
        b"a\" NOOP\r\n",
        b"(a NOOP\r\n",
        b"a% NOOP\r\n",
        b"a\\ NOOP\r\n",
        b"a\x01 NOOP\r\n",
        b"\xffa NOOP\r\n",
        b" NOOP\r\n",
        b"\r\n",
    ] {
        let (_, reason, tag, consumed) = failed(input);
        assert!(tag.is_none(), "{:?}", String::from_utf8_lossy(input));
        assert!(reason.contains("tag"), "{reason}");
        assert_eq!(consumed, Some(input.len()));
    }
    // A lone word is a tag without a command: the server can still answer `NOOP BAD`.
    let (_, reason, tag, _) = failed(b"NOOP\r\n");
    assert_eq!(
        (reason, tag.as_deref()),
        ("missing command name", Some("NOOP"))
    );
    // ']' is allowed in a tag (ASTRING-CHAR).
    assert!(parse::command(b"a] NOOP\r\n").is_ok());
}

#[test]
fn recursion_is_bounded() {
    let n = 100_000;
    let mut s = b"a SEARCH ".to_vec();
    s.extend(std::iter::repeat_n(b'(', n));
    s.extend_from_slice(b"ALL");
    s.extend(std::iter::repeat_n(b')', n));
    s.extend_from_slice(b"\r\n");
    let mut opts = ParserOptions::default();
    opts.max_line_len = 1 << 20;
    assert!(matches!(
        parse::command_with(&s, &opts),
        Err(ParseError::Failed {
            reason: "nesting too deep",
            ..
        })
    ));
    let mut s = b"a SEARCH ".to_vec();
    for _ in 0..n {
        s.extend_from_slice(b"NOT ");
    }
    s.extend_from_slice(b"ALL\r\n");
    assert!(matches!(
        parse::command_with(&s, &opts),
        Err(ParseError::Failed {
            reason: "nesting too deep",
            ..
        })
    ));
    // Nested body structures.
    let mut s = b"* 1 FETCH (BODYSTRUCTURE ".to_vec();
    s.extend(std::iter::repeat_n(b'(', n));
    s.extend_from_slice(b"\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)");
    for _ in 1..n {
        s.extend_from_slice(b" \"MIXED\")");
    }
    s.extend_from_slice(b")\r\n");
    let mut opts = ParserOptions::default();
    opts.max_line_len = 4 << 20;
    assert!(matches!(
        parse::response_with(&s, &opts),
        Err(ParseError::Failed {
            reason: "nesting too deep",
            ..
        })
    ));
    // Nested body extensions.
    let mut s =
        b"* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL "
            .to_vec();
    s.extend(std::iter::repeat_n(b'(', n));
    s.extend_from_slice(b"1");
    s.extend(std::iter::repeat_n(b')', n));
    s.extend_from_slice(b"))\r\n");
    assert!(matches!(
        parse::response_with(&s, &opts),
        Err(ParseError::Failed {
            reason: "nesting too deep",
            ..
        })
    ));
    // Within the limit it parses.
    assert!(parse::command(b"a SEARCH ((((NOT (OR SEEN (DELETED))))))\r\n").is_ok());
}

#[test]
fn framing_errors() {
    assert_eq!(parse::command(b""), Err(ParseError::Incomplete));
    assert_eq!(parse::command(b"a NOOP"), Err(ParseError::Incomplete));
    assert_eq!(parse::command(b"a NOOP\r"), Err(ParseError::Incomplete));
    // A literal announcement whose length does not fit.
    let r = parse::command(b"a LOGIN {99999999999999999999}\r\n");
    assert!(matches!(r, Err(ParseError::Failed { .. })), "{r:?}");
    // Non-synchronising literal not yet complete.
    match parse::command(b"a LOGIN {5+}\r\nab") {
        Err(ParseError::Literal { header, offset, .. }) => {
            assert!(!header.sync);
            assert_eq!(header.len, 5);
            assert_eq!(offset, 14);
        }
        other => panic!("{other:?}"),
    }
    // NUL is only allowed in binary literals.
    assert!(parse::command(b"a LOGIN {3}\r\na\0b pw\r\n").is_err());
    assert!(parse::command(b"a APPEND INBOX ~{3}\r\na\0b\r\n").is_ok());
    // Bare LF ends the line but is not CRLF.
    assert!(matches!(
        parse::command(b"a NOOP\n"),
        Err(ParseError::Failed { .. })
    ));
    // Invalid dates.
    assert!(parse::command(b"a SEARCH ON 30-Feb-2024\r\n").is_err());
    assert!(parse::command(b"a SEARCH ON 1-Foo-2024\r\n").is_err());
    assert!(parse::command(b"a APPEND INBOX \"32-Jul-1996 02:44:25 -0700\" {1}\r\nx\r\n").is_err());
    assert!(parse::command(b"a APPEND INBOX \"17-Jul-1996 24:44:25 -0700\" {1}\r\nx\r\n").is_err());
    // Unknown command and garbage after a valid command.
    assert_eq!(failed(b"a XYZZY\r\n").1, "unknown command");
    assert_eq!(failed(b"a NOOP x\r\n").1, "expected CRLF");
    // APPEND prefix: not an APPEND, and a normal one.
    assert!(parse::append_prefix(b"a NOOP\r\n", &ParserOptions::default()).is_err());
    let p = parse::append_prefix(
        b"a APPEND Drafts (\\Draft $X) \" 7-Jul-2020 10:00:00 +0200\" ~{52428800+}\r\n",
        &ParserOptions::default(),
    )
    .unwrap();
    assert_eq!(p.literal.len, 52_428_800);
    assert!(p.literal.binary && !p.literal.sync);
    assert_eq!(p.mailbox.as_str(), "Drafts");
    assert_eq!(p.date.unwrap().date().day(), 7);
}

#[test]
fn frame_finds_message_ends() {
    let o = ParserOptions::default();
    assert_eq!(parse::frame(b"a NOOP\r\nb NOOP\r\n", &o), Ok(8));
    assert_eq!(
        parse::frame(b"a LOGIN {3}\r\nabc {2}\r\nxy\r\nnext", &o),
        Ok(26)
    );
    assert_eq!(
        parse::frame(b"a LOGIN {3}\r\nabc {2}\r\nxy", &o),
        Err(ParseError::Incomplete)
    );
    assert!(matches!(
        parse::frame(b"a LOGIN {3}\r\nabc {2}\r\nx", &o),
        Err(ParseError::Literal { offset: 22, .. })
    ));
    // `{0}` needs a continuation before anything follows.
    assert!(matches!(
        parse::frame(b"a LOGIN {0}\r\n", &o),
        Err(ParseError::Literal { offset: 13, .. })
    ));
    assert_eq!(parse::frame(b"a LOGIN {0}\r\n x\r\n", &o), Ok(17));
}
