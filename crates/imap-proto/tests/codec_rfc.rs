//! Known-answer tests: the C:/S: lines of RFC 9051 and of the extension RFCs, parsed and
//! re-encoded. Where the RFC's form is not the canonical one our encoder writes (lower
//! case keywords, quoted strings that can be atoms), the expected bytes are given.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use imap_proto::encode::{self, EncodeOptions, Fragment};
use imap_proto::parse::{self, ParseError};
use imap_proto::types::*;

/// Parses `input` + CRLF as a command, re-encodes it, compares with `expected` (or the
/// input itself).
fn cmd(input: &str, expected: Option<&str>) -> Command {
    let wire = format!("{input}\r\n");
    let (used, c) = parse::command(wire.as_bytes())
        .unwrap_or_else(|e| panic!("{input:?} failed to parse: {e:?}"));
    assert_eq!(used, wire.len(), "{input}");
    let out = encode::command_to_vec(&c, &EncodeOptions::default());
    let want = format!("{}\r\n", expected.unwrap_or(input));
    assert_eq!(String::from_utf8_lossy(&out), want, "re-encoding {input:?}");
    // And the re-encoded form parses to the same value.
    let (_, again) = parse::command(&out).unwrap();
    assert_eq!(again, c);
    c
}

fn resp(input: &str, expected: Option<&str>) -> Response {
    let wire = format!("{input}\r\n");
    let (used, r) = parse::response(wire.as_bytes())
        .unwrap_or_else(|e| panic!("{input:?} failed to parse: {e:?}"));
    assert_eq!(used, wire.len(), "{input}");
    let mut out = Vec::new();
    encode::response(&r, &mut out);
    let want = format!("{}\r\n", expected.unwrap_or(input));
    assert_eq!(String::from_utf8_lossy(&out), want, "re-encoding {input:?}");
    let (_, again) = parse::response(&out).unwrap();
    assert_eq!(again, r);
    r
}

#[test]
fn rfc9051_commands_canonical() {
    for line in [
        "A001 LOGIN fred blurdybloop",
        "A001 NAMESPACE",
        "A001 SELECT INBOX",
        "A002 IDLE",
        "A002 LIST (SPECIAL-USE) \"\" *",
        "A002 SUBSCRIBE #news.comp.mail.mime",
        "A002 UNSUBSCRIBE #news.comp.mail.mime",
        "A003 COPY 2:4 MEETING",
        "A003 CREATE owatagusiam/",
        "A003 FETCH 4 ALL",
        "A003 STORE 2:4 +FLAGS (\\Deleted)",
        "A003 UID EXPUNGE 3000:3002",
        "A004 CREATE \"Sent Mail\"",
        "A005 UID COPY 305:310 meeting",
        "A006 CREATE \"#mh/Deleted Items\"",
        "A01 AUTHENTICATE EXTERNAL =",
        "A01 AUTHENTICATE PLAIN",
        "A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))",
        "A01 STARTTLS",
        "A02 CAPABILITY",
        "A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        "A04 LIST (REMOTE) \"\" % RETURN (CHILDREN)",
        "A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
        "A101 LIST \"\" \"\"",
        "A102 LIST #news.comp.mail.misc \"\"",
        "A103 LIST /usr/staff/jones \"\"",
        "A202 EXPUNGE",
        "A202 LIST ~/Mail/ %",
        "A282 SEARCH RETURN (MIN COUNT) FLAGGED",
        "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994",
        "A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
        "A283 SEARCH RETURN () FLAGGED",
        "A284 SEARCH TEXT \"string not in mailbox\"",
        "A285 UID SEARCH RETURN (MIN MAX) 1:5000",
        "A286 SEARCH RETURN (COUNT) DELETED",
        "A301 UID SEARCH $ SMALLER 4096",
        "A301 UID SEARCH UID $ SMALLER 4096",
        "A341 CLOSE",
        "A342 UNSELECT",
        "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        "A683 RENAME blurdybloop sarasoop",
        "A685 DELETE foo/bar",
        "A932 EXAMINE blurdybloop",
        "A999 UID FETCH 4827313:4828442 FLAGS",
        "C283 SEARCH RETURN (ALL SAVE) SINCE 12-Feb-2006",
        "C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006",
        "E283 COPY $ \"Other Messages\"",
        "F282 SEARCH RETURN (SAVE) KEYWORD $Junk",
        "F284 STORE $ +FLAGS.SILENT (\\Deleted)",
        "babc ENABLE IMAP4rev2",
        "D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" *",
        "1001 RENAME X Y",
        "A023 LOGOUT",
        "A443 EXPUNGE",
    ] {
        cmd(line, None);
    }
}

#[test]
fn rfc9051_commands_normalised() {
    for (line, want) in [
        ("a002 select inbox", "a002 SELECT INBOX"),
        ("a003 fetch 12 full", "a003 FETCH 12 FULL"),
        ("a004 fetch 12 body[header]", "a004 FETCH 12 BODY[HEADER]"),
        (
            "a005 store 12 +flags \\deleted",
            "a005 STORE 12 +FLAGS (\\Deleted)",
        ),
        ("a000 starttls", "a000 STARTTLS"),
        ("A002 LIST \"\" \"#Users/%\"", "A002 LIST \"\" #Users/%"),
        (
            "A002 CREATE \"INBOX.Sent Mail\"",
            "A002 CREATE \"INBOX.Sent Mail\"",
        ),
        ("A01 LIST \"\" \"*\"", "A01 LIST \"\" *"),
        (
            "A03 LIST () \"\" \"%\" RETURN (CHILDREN)",
            "A03 LIST \"\" % RETURN (CHILDREN)",
        ),
        ("F283 COPY $ \"Junk\"", "F283 COPY $ Junk"),
        (
            "F284 STORE $ +FLAGS.Silent (\\Deleted)",
            "F284 STORE $ +FLAGS.SILENT (\\Deleted)",
        ),
        ("A686 LIST \"\" *", "A686 LIST \"\" *"),
    ] {
        cmd(line, Some(want));
    }
}

#[test]
fn literal_commands() {
    // RFC 9051 6.3.12 APPEND with a synchronising literal.
    let msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu.example\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let head = format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n", msg.len());
    let wire = format!("{head}{msg}\r\n");
    // Before the literal arrives: the framer is told about it.
    match parse::command(head.as_bytes()) {
        Err(ParseError::Literal {
            tag,
            header,
            offset,
        }) => {
            assert_eq!(tag.unwrap().as_str(), "A003");
            assert_eq!(
                header,
                parse::LiteralHeader {
                    len: msg.len() as u64,
                    sync: true,
                    binary: false
                }
            );
            assert_eq!(offset, head.len());
        }
        other => panic!("{other:?}"),
    }
    let prefix = parse::append_prefix(head.as_bytes(), &Default::default()).unwrap();
    assert_eq!(prefix.mailbox.as_str(), "saved-messages");
    assert_eq!(prefix.flags, vec![Flag::Seen]);
    assert_eq!(prefix.consumed, head.len());
    let (used, c) = parse::command(wire.as_bytes()).unwrap();
    assert_eq!(used, wire.len());
    match &c.body {
        CommandBody::Append { message, .. } => assert_eq!(&message.data[..], msg.as_bytes()),
        other => panic!("{other:?}"),
    }
    let frags = encode::command(&c);
    assert_eq!(
        frags,
        vec![
            Fragment::Line(head.clone().into()),
            Fragment::Literal {
                data: msg.as_bytes().to_vec().into(),
                sync: true
            },
            Fragment::Line("\r\n".into()),
        ]
    );
    // LITERAL+
    let plus = encode::command_to_vec(&c, &EncodeOptions::default().with_literal_plus(true));
    assert_eq!(plus, wire.replace("}\r\n", "+}\r\n").as_bytes());
    let (_, c2) = parse::command(&plus).unwrap();
    assert_eq!(c2, c);

    // RFC 9051 LOGIN with literal.
    let wire = b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n";
    let (_, c) = parse::command(wire).unwrap();
    assert_eq!(
        c.body,
        CommandBody::Login {
            username: "FRED FOOBAR".into(),
            password: "fat man".into()
        }
    );
    assert_eq!(
        encode::command_to_vec(&c, &EncodeOptions::default()),
        b"A001 LOGIN \"FRED FOOBAR\" \"fat man\"\r\n"
    );

    // Search with a charset and a literal (RFC 9051 6.4.4).
    let wire = "A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\u{0445}\u{043e}\u{0440}\u{043e}\u{0448}\u{043e}\r\n";
    let (_, c) = parse::command(wire.as_bytes()).unwrap();
    assert_eq!(
        encode::command_to_vec(&c, &EncodeOptions::default()),
        wire.as_bytes()
    );
    let wire = "P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\nmy\u{00f6}lano\r\n";
    let (_, c) = parse::command(wire.as_bytes()).unwrap();
    assert_eq!(
        encode::command_to_vec(&c, &EncodeOptions::default()),
        wire.replace("{8+}", "{8}").as_bytes()
    );
}

#[test]
fn rfc9051_responses_canonical() {
    for line in [
        "* 1 EXISTS",
        "* 14 FETCH (UID 1305 FLAGS (\\Seen \\Deleted))",
        "* 2 EXPUNGE",
        "* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827 UID 447)",
        "* BAD Command line too long",
        "* BYE Autologout; idle for too long",
        "* CAPABILITY IMAP4rev2 AUTH=GSSAPI AUTH=PLAIN",
        "* CAPABILITY IMAP4rev2 ID LITERAL+ X-GOOD-IDEA",
        "* CAPABILITY STARTTLS AUTH=GSSAPI IMAP4rev2 LOGINDISABLED",
        "* ENABLED CONDSTORE QRESYNC",
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3",
        "* ESEARCH (TAG \"A283\") ALL 2,10:11",
        "* ESEARCH (TAG \"A284\")",
        "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800",
        "* ESEARCH (TAG \"G283\") ALL 3:15,27,29:103",
        "* ESEARCH (TAG \"a567\") UID COUNT 17 ALL 4:18,21,28",
        "* ESEARCH COUNT 18 ALL 1:17,21",
        "* ESEARCH UID COUNT 17 ALL 4:18,21,28",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* LIST () \".\" foo.bar",
        "* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        "* LIST () \"/\" NewMailbox (\"OLDNAME\" (OldMailbox))",
        "* LIST (\\HasChildren \\Remote) \"/\" Meat",
        "* LIST (\\Marked \\Noinferiors) \"/\" INBOX",
        "* LIST (\\NonExistent \\Archive) \"/\" #mh/Archives",
        "* LIST (\\NonExistent \\Sent) \"/\" \"Sent Mail\"",
        "* LIST (\\Noselect) \"/\" \"\"",
        "* LIST (\\Noselect) \"/\" ~/Mail/foo",
        "* NAMESPACE ((\"\" \"/\")) ((\"#Users/\" \"/\")) NIL",
        "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))",
        "* NAMESPACE NIL NIL ((\"\" \".\"))",
        "* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL NIL",
        "* NO Disk is 98% full, please delete unnecessary data",
        "* NO [UIDNOTSTICKY] Non-persistent UIDs",
        "* OK IMAP4rev2 server ready",
        "* OK [ALERT] System shutdown in 10 minutes",
        "* OK [CLOSED] Previous mailbox is now closed",
        "* OK [COPYUID 432432 42:69 1202:1229]",
        "* OK [PERMANENTFLAGS ()] No permanent flags permitted",
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited",
        "* OK [UIDNEXT 4392] Predicted next UID",
        "* OK [UIDVALIDITY 1]",
        "* OK [UIDVALIDITY 3857529045] UIDs valid",
        "* PREAUTH IMAP4rev2 server logged in as Smith",
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)",
        "+ Ready for literal data",
        "+ idling",
        "+ YDMGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHe",
        "A001 OK [READ-WRITE] SELECT completed",
        "A003 OK [APPENDUID 38505 3955] APPEND completed",
        "A003 OK [COPYUID 38505 304,319:320 3956:3958] COPY completed",
        "A044 BAD No such command as \"BLURDYBLOOP\"",
        "A223 NO COPY failed: disk is full",
        "A342 OK Unselect completed",
    ] {
        resp(line, None);
    }
}

#[test]
fn rfc9051_responses_normalised() {
    for (line, want) in [
        ("* LIST () \".\"  \"INBOX\"", None),
        (
            "* LIST (\\Marked \\NoInferiors \\Subscribed) \"/\" \"inbox\"",
            Some("* LIST (\\Marked \\Noinferiors \\Subscribed) \"/\" INBOX"),
        ),
        (
            "* LIST () \".\" \"foo\" (CHILDINFO (\"SUBSCRIBED\"))",
            Some("* LIST () \".\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        ),
        (
            "* STATUS \"INBOX\" (MESSAGES 17 UNSEEN 16)",
            Some("* STATUS INBOX (MESSAGES 17 UNSEEN 16)"),
        ),
        ("* NAMESPACE ((\"INBOX.\" \".\")) NIL  NIL", None),
        (
            "* LIST (\\NonExistent \\Drafts) \"/\" \"#mh/Drafts\"",
            Some("* LIST (\\NonExistent \\Drafts) \"/\" #mh/Drafts"),
        ),
    ] {
        if line.contains("  ") {
            // Double spaces in the RFC text are typesetting, not wire syntax.
            assert!(parse::response(format!("{line}\r\n").as_bytes()).is_err());
            continue;
        }
        resp(line, want);
    }
}

#[test]
fn rfc9051_fetch_envelope_bodystructure() {
    // RFC 9051 section 7.5.2 example (one line).
    let line = "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))";
    let r = resp(line, None);
    let Response::Data(Data::Fetch { seq, items }) = r else {
        panic!()
    };
    assert_eq!(seq.get(), 12);
    assert_eq!(items.len(), 5);
    let FetchAttr::InternalDate(d) = &items[1] else {
        panic!()
    };
    assert_eq!(d.zone_minutes(), -420);
    assert_eq!(d.unix_timestamp(), 837_596_665);

    // BODYSTRUCTURE with multipart and extension data.
    resp(
        "* 3 FETCH (UID 9 BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 120 4 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") \"<id@x>\" \"A file\" \"BASE64\" 5000 NIL (\"attachment\" (\"FILENAME\" \"a.pdf\")) (\"en\" \"de\") \"http://x/a.pdf\" 1 (2 \"x\")) \"MIXED\" (\"BOUNDARY\" \"b1\") NIL \"en\" NIL))",
        None,
    );
    // message/rfc822 inside.
    resp(
        "* 4 FETCH (BODY ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 300 (NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"HTML\" NIL NIL NIL \"8BIT\" 20 2) 12) \"MIXED\"))",
        None,
    );
    // BODY[] with a literal, partial, BINARY with a binary literal, MODSEQ.
    let wire =
        b"* 5 FETCH (UID 9 BODY[]<0> {5}\r\nhello BINARY[1] ~{3}\r\na\0b MODSEQ (12345))\r\n";
    let (used, r) = parse::response(wire).unwrap();
    assert_eq!(used, wire.len());
    let mut out = Vec::new();
    encode::response(&r, &mut out);
    assert_eq!(
        out,
        b"* 5 FETCH (UID 9 BODY[]<0> \"hello\" BINARY[1] ~{3}\r\na\0b MODSEQ (12345))\r\n"
    );
}

#[test]
fn fetch_streaming_helpers() {
    let uid = FetchAttr::Uid(std::num::NonZeroU32::new(9).unwrap());
    let item = FetchLiteralItem::BodySection {
        section: Section::default(),
        origin: None,
    };
    let mut out = Vec::new();
    encode::fetch_literal_head(
        std::num::NonZeroU32::new(5).unwrap(),
        std::slice::from_ref(&uid),
        &item,
        11,
        &mut out,
    );
    assert_eq!(out, b"* 5 FETCH (UID 9 BODY[] {11}\r\n");
    let prefix = parse::fetch_literal_prefix(&out, &Default::default()).unwrap();
    assert_eq!(prefix.seq.get(), 5);
    assert_eq!(prefix.items, vec![uid]);
    assert_eq!(prefix.item, item);
    assert_eq!(prefix.literal.len, 11);
    assert_eq!(prefix.consumed, out.len());
    out.extend_from_slice(b"Hello world");
    encode::fetch_literal_tail(&mut out);
    let (used, r) = parse::response(&out).unwrap();
    assert_eq!(used, out.len());
    let Response::Data(Data::Fetch { items, .. }) = r else {
        panic!()
    };
    assert_eq!(
        items[1],
        FetchAttr::BodySection {
            section: Section::default(),
            origin: None,
            data: Some("Hello world".into())
        }
    );
}

#[test]
fn extension_examples() {
    // CONDSTORE / QRESYNC (RFC 7162)
    cmd("a SELECT INBOX (CONDSTORE)", None);
    cmd(
        "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        None,
    );
    cmd(
        "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        None,
    );
    cmd(
        "s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        Some("s100 UID FETCH 300:500 FLAGS (CHANGEDSINCE 12345 VANISHED)"),
    );
    cmd(
        "a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)",
        None,
    );
    cmd(
        "a STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
        None,
    );
    cmd(
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
        Some("a FETCH 1:* FLAGS (CHANGEDSINCE 12345)"),
    );
    cmd("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338", None);
    cmd("t SEARCH OR NOT MODSEQ 720162338 LARGER 50000", None);
    resp("* OK [HIGHESTMODSEQ 715194045007] Highest", None);
    resp(
        "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences",
        None,
    );
    resp("d105 OK [MODIFIED 7,9] Conditional STORE failed", None);
    resp(
        "* 7 FETCH (MODSEQ (12121231000) FLAGS (\\Deleted \\Answered) UID 6)",
        None,
    );
    resp(
        "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)",
        None,
    );
    resp("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540", None);
    resp("* VANISHED 405,407,410,425", None);
    resp("* ESEARCH (TAG \"a\") ALL 1:3,5 MODSEQ 1236", None);
    // UIDPLUS, MOVE (RFC 4315, 6851)
    cmd("a UID MOVE 42:69 foo", None);
    cmd("a MOVE 1:3 Trash", None);
    resp("* OK [COPYUID 432432 42:69 1202:1229]", None);
    // ENABLE, ID, NAMESPACE, IDLE
    cmd("a ENABLE CONDSTORE QRESYNC", None);
    cmd(
        "a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")",
        None,
    );
    cmd("a ID NIL", None);
    resp(
        "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"os-version\" \"5.5\" \"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\")",
        None,
    );
    resp("* ID NIL", None);
    assert_eq!(parse::idle_done(b"DONE\r\n").unwrap(), 6);
    assert_eq!(parse::idle_done(b"done\r\n").unwrap(), 6);
    assert!(matches!(
        parse::idle_done(b"DON"),
        Err(ParseError::Incomplete)
    ));
    assert!(matches!(
        parse::idle_done(b"NOPE\r\n"),
        Err(ParseError::Failed { .. })
    ));
    // SPECIAL-USE / CREATE-SPECIAL-USE (RFC 6154)
    cmd("t1 CREATE MySpecial (USE (\\Drafts \\Sent))", None);
    cmd("t3 LIST (SPECIAL-USE) \"\" *", None);
    cmd("t4 LIST \"\" % RETURN (SPECIAL-USE)", None);
    resp("* LIST (\\Marked \\Drafts) \"/\" Drafts", None);
    resp("t1 NO [USEATTR] \\All not supported", None);
    // Generic extended LIST items (RFC 9051 7.3.1 example, joined lines).
    resp(
        "* LIST (\\Marked) \":\" Tables (tablecloth ((\"edge\" \"lacy\") (\"color\" \"red\")) Sample \"text\")",
        Some(
            "* LIST (\\Marked) \":\" Tables (\"tablecloth\" ((\"edge\" \"lacy\") (\"color\" \"red\")) \"Sample\" \"text\")",
        ),
    );
    resp(
        "* LIST () \":\" Tables:new (tablecloth (\"edge\" \"lacy\") Sample (\"text\" \"more text\"))",
        Some(
            "* LIST () \":\" Tables:new (\"tablecloth\" (\"edge\" \"lacy\") \"Sample\" (\"text\" \"more text\"))",
        ),
    );
    resp("* LIST () \"/\" foo (\"X-COUNT\" 1:* \"X-EMPTY\" ())", None);
    // LIST-EXTENDED patterns (RFC 5258)
    cmd(
        "A01 LIST \"\" (INBOX Drafts \"Sent Mail\") RETURN (SUBSCRIBED CHILDREN)",
        None,
    );
    // ESEARCH / SEARCHRES (RFC 4731, 5182)
    resp("* OK [NOTSAVED]", None);
    // QUOTA (RFC 9208)
    cmd(
        "G0001 GETQUOTA \"!partition/sda4\"",
        Some("G0001 GETQUOTA !partition/sda4"),
    );
    cmd("G0002 GETQUOTAROOT INBOX", None);
    cmd(
        "S0000 SETQUOTA \"#user/alice\" (STORAGE 510)",
        Some("S0000 SETQUOTA #user/alice (STORAGE 510)"),
    );
    resp(
        "* QUOTA \"!partition/sda4\" (STORAGE 104 10923847)",
        Some("* QUOTA !partition/sda4 (STORAGE 104 10923847)"),
    );
    resp(
        "* QUOTAROOT INBOX \"#user/alice\" \"!partition/sda4\"",
        Some("* QUOTAROOT INBOX #user/alice !partition/sda4"),
    );
    resp("* QUOTAROOT comp.mail.mime", None);
    resp(
        "* STATUS INBOX (MESSAGES 12 DELETED 4 SIZE 15000 APPENDLIMIT NIL)",
        None,
    );
    resp("* STATUS INBOX (HIGHESTMODSEQ 7011231777)", None);
    // COMPRESS (RFC 4978)
    cmd("a COMPRESS DEFLATE", None);
    resp("a OK [COMPRESSIONACTIVE] done", None);
    // BINARY (RFC 3516)
    cmd("t FETCH 1 (BINARY.PEEK[1]<0.100> BINARY.SIZE[1])", None);
    resp("* 1 FETCH (BINARY.SIZE[1] 3021)", None);
    resp("t NO [UNKNOWN-CTE] Can't decode", None);
    // RFC 5530 codes
    for code in [
        "UNAVAILABLE",
        "AUTHENTICATIONFAILED",
        "AUTHORIZATIONFAILED",
        "EXPIRED",
        "PRIVACYREQUIRED",
        "CONTACTADMIN",
        "NOPERM",
        "INUSE",
        "EXPUNGEISSUED",
        "CORRUPTION",
        "SERVERBUG",
        "CLIENTBUG",
        "CANNOT",
        "LIMIT",
        "OVERQUOTA",
        "ALREADYEXISTS",
        "NONEXISTENT",
    ] {
        let r = resp(&format!("a NO [{code}] text"), None);
        let Response::Status(s) = r else { panic!() };
        assert!(!matches!(s.code, Some(Code::Other(..)) | None), "{code}");
    }
    resp("a NO [X-UNKNOWN some arg] text", None);
    // LITERAL+ / rev1 items
    cmd(
        "a FETCH 1:* (RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE BODY BODYSTRUCTURE ENVELOPE)",
        None,
    );
    cmd("a LSUB \"\" news/%", None);
    resp("* LSUB () \".\" #news.comp.mail.misc", None);
    resp("* 5 RECENT", None);
    cmd("a CHECK", None);
    cmd(
        "a SEARCH CHARSET UTF-8 OR (FROM smith SUBJECT \"x y\") NOT ON 1-Feb-1994 HEADER X-Spam yes",
        None,
    );
    cmd(
        "a SEARCH NEW OLD RECENT UNSEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Junk BEFORE 1-Jan-2000 SENTON 2-Feb-2001 SENTBEFORE 3-Mar-2002 SENTSINCE 4-Apr-2003 CC a BCC b TO c BODY d",
        None,
    );
}

#[test]
fn greeting_and_continuations() {
    let (n, g) =
        parse::greeting(b"* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI] Server ready\r\n")
            .unwrap();
    assert_eq!(n, 63);
    assert_eq!(g.kind, GreetingKind::Ok);
    let mut out = Vec::new();
    encode::greeting(&g, &mut out);
    assert_eq!(
        out,
        b"* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI] Server ready\r\n"
    );
    assert!(parse::greeting(b"a1 OK hi\r\n").is_err());
    // Empty SASL challenge.
    let (_, r) = parse::response(b"+ \r\n").unwrap();
    assert_eq!(r, Response::Continue(Continue::Base64(bytes::Bytes::new())));
    let (_, r) = parse::response(b"+\r\n").unwrap();
    assert_eq!(r, Response::Continue(Continue::Base64(bytes::Bytes::new())));
    // AUTHENTICATE data lines.
    let (n, d) = parse::authenticate_data(b"dGVzdA==\r\n", &Default::default()).unwrap();
    assert_eq!(
        (n, d),
        (10, parse::AuthenticateData::Response("test".into()))
    );
    let (_, d) = parse::authenticate_data(b"*\r\n", &Default::default()).unwrap();
    assert_eq!(d, parse::AuthenticateData::Cancel);
}

#[test]
fn mailbox_names_modified_utf7_and_utf8() {
    let c = cmd("a SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-", None);
    let CommandBody::Select { mailbox, .. } = &c.body else {
        panic!()
    };
    assert_eq!(
        mailbox.as_str(),
        "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"
    );
    // UTF-8 on the wire with UTF8=ACCEPT.
    let opts = EncodeOptions::default().with_utf8(true);
    assert_eq!(
        encode::command_to_vec(&c, &opts),
        "a SELECT \"~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}\"\r\n".as_bytes()
    );
    // Invalid modified UTF-7 is a parse error with the tag.
    match parse::command(b"a7 SELECT &Jjo!\r\n") {
        Err(ParseError::Failed { tag, reason, .. }) => {
            assert_eq!(tag.unwrap().as_str(), "a7");
            assert!(reason.contains("UTF-7"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // With UTF-8 mailbox names negotiated, '&' is literal.
    let mut popts = parse::ParserOptions::default();
    popts.utf8_mailboxes = true;
    let (_, c) = parse::command_with(b"a SELECT \"R&D\"\r\n", &popts).unwrap();
    let CommandBody::Select { mailbox, .. } = &c.body else {
        panic!()
    };
    assert_eq!(mailbox.as_str(), "R&D");
    assert_eq!(
        encode::command_to_vec(&c, &EncodeOptions::default()),
        b"a SELECT R&-D\r\n"
    );
}

#[test]
fn quirks_are_off_by_default() {
    let line = b"* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL \"a\" \"x\") (NIL NIL \"b\" \"x\")) NIL NIL NIL NIL NIL NIL NIL) BODY ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) (\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 1 1) \"ALTERNATIVE\"))\r\n";
    assert!(parse::response(line).is_err());
    let mut o = parse::ParserOptions::default();
    o.quirk_list_separators = true;
    let (_, r) = parse::response_with(line, &o).unwrap();
    let mut out = Vec::new();
    encode::response(&r, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(line).replace(") (", ")(")
    );

    let line = b"* 1 FETCH (UID 19436 )\r\n";
    assert!(parse::response(line).is_err());
    let mut o = parse::ParserOptions::default();
    o.quirk_trailing_space = true;
    assert!(parse::response_with(line, &o).is_ok());

    let line = b"* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" NIL) NIL NIL \"7BIT\" 1 1))\r\n";
    assert!(parse::response(line).is_err());
    let mut o = parse::ParserOptions::default();
    o.quirk_body_param_nil = true;
    assert!(parse::response_with(line, &o).is_ok());
}
