//! Exact-bytes sessions against `server::Connection`: the grammar shared with the crate
//! parser, UTF8 APPEND (RFC 6855), SEARCHRES (RFC 5182), wrong-state and malformed input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Srv;
use imap_proto::server::{Config, Event, State, Status, Unsolicited};
use imap_proto::types::{CommandBody, SearchKey, SearchReturnOption, SequenceSet};

fn searchres_config() -> Config {
    let mut c = Srv::plain_config();
    c.searchres = true;
    c
}

/// Expects an `Event::Command` and returns it.
fn command(s: &mut Srv) -> imap_proto::server::Request {
    match s.event() {
        Some(Event::Command(r)) => r,
        other => panic!("expected a command, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// One grammar: the machine's own commands are read by the crate parser.

#[test]
fn login_with_literal_and_escaped_quoted_string() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a LOGIN {5+}\r\nalice \"se\\\"c ret\"\r\n");
    match s.event() {
        Some(Event::Login {
            tag,
            username,
            password,
        }) => {
            assert_eq!(tag, "a");
            assert_eq!(&username[..], b"alice");
            assert_eq!(&password.expose()[..], b"se\"c ret");
        }
        other => panic!("{other:?}"),
    }
    s.conn.reply(Status::ok("Logged in")).unwrap();
    assert!(s.out().starts_with("a OK [CAPABILITY IMAP4rev2 "));
}

#[test]
fn login_fed_one_byte_at_a_time() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    let input = b"a1 login {5}\r\nalice secret\r\n";
    let mut events = Vec::new();
    let mut out = String::new();
    for b in input {
        s.conn.feed(std::slice::from_ref(b));
        while let Some(e) = s.event() {
            events.push(e);
        }
        out.push_str(&s.out());
    }
    assert_eq!(out, "+ Ready for literal data\r\n");
    assert!(matches!(&events[..], [Event::Login { username, .. }] if &username[..] == b"alice"));
}

#[test]
fn authenticate_and_enable_and_compress_forms() {
    let mut config = Srv::plain_config();
    config.sasl_mechanisms = vec!["PLAIN".into(), "SCRAM-SHA-256".into()];
    let mut s = Srv::new(config);
    s.out();
    s.feed("a authenticate plain =\r\n");
    match s.event() {
        Some(Event::AuthStart {
            tag,
            mechanism,
            initial: Some(ir),
        }) => {
            assert_eq!((tag.as_str(), mechanism.as_str()), ("a", "PLAIN"));
            assert!(ir.expose().is_empty());
        }
        other => panic!("{other:?}"),
    }
    s.conn.reply(Status::no("Authentication failed")).unwrap();
    s.conn
        .handle_timeout(s.now + std::time::Duration::from_secs(3));
    assert_eq!(s.out(), "a NO Authentication failed\r\n");
    s.feed("b AUTHENTICATE PLAIN !!!\r\nc AUTHENTICATE X-NONE\r\nd AUTHENTICATE\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "b BAD Invalid base64 in initial response\r\nc NO Unsupported authentication mechanism\r\n\
         d BAD Expected AUTHENTICATE mechanism [initial-response]\r\n"
    );
    s.feed("e ENABLE CONDSTORE\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "e BAD ENABLE is only valid in the authenticated state\r\n"
    );
    s.login();
    s.feed("f ENABLE\r\ng ENABLE (CONDSTORE)\r\nh enable condstore X-UNKNOWN\r\n");
    assert_eq!(s.event(), Some(Event::Enabled(vec!["CONDSTORE".into()])));
    assert_eq!(
        s.out(),
        "f BAD Expected ENABLE capability...\r\ng BAD Expected ENABLE capability...\r\n\
         * ENABLED CONDSTORE\r\nh OK ENABLE completed\r\n"
    );
    s.feed("i COMPRESS GZIP\r\nj COMPRESS\r\nk LOGIN a b\r\nl AUTHENTICATE PLAIN\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "i BAD Expected COMPRESS DEFLATE\r\nj BAD Expected COMPRESS DEFLATE\r\n\
         k BAD Already authenticated\r\nl BAD Already authenticated\r\n"
    );
}

#[test]
fn bare_lf_lines_and_stray_blank_lines() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("n NOOP\n\r\n\nc CAPABILITY\n");
    assert_eq!(s.event(), None);
    let out = s.out();
    assert!(out.starts_with("n OK NOOP completed\r\n* CAPABILITY IMAP4rev2 "));
    assert!(out.ends_with("c OK CAPABILITY completed\r\n"));
}

#[test]
fn literal_length_too_large_to_resynchronise() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a LOGIN {99999999999999999999+}\r\nxyz\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a BAD Literal size is not a valid number\r\n\
         * BYE [TOOBIG] Cannot resynchronise after an invalid literal\r\n"
    );
    assert!(s.conn.is_closed());
}

#[test]
fn wrong_state_takes_precedence_over_syntax() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a IDLE\r\nb CLOSE\r\nc FETCH x\r\nd UID FETCH 1 FLAGS\r\ne IDLE x\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a BAD IDLE requires authentication\r\nb BAD Authenticate first\r\n\
         c BAD Authenticate first\r\nd BAD Authenticate first\r\n\
         e BAD IDLE requires authentication\r\n"
    );
    s.login();
    s.feed("f FETCH x\r\ng UID FETCH 1 FLAGS\r\nh STARTTLS\r\ni EXPUNGE\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "f BAD No mailbox selected\r\ng BAD No mailbox selected\r\n\
         h BAD STARTTLS is only valid before authentication\r\ni BAD No mailbox selected\r\n"
    );
    s.feed("S2 SELECT INBOX\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("SELECT completed")).unwrap();
    s.out();
    s.feed("j ENABLE CONDSTORE\r\nk NOOP x\r\nl LOGOUT x\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "j BAD ENABLE is only valid in the authenticated state\r\nk BAD NOOP takes no arguments\r\n\
         l BAD LOGOUT takes no arguments\r\n"
    );
    assert_eq!(s.conn.state(), State::Selected { read_only: false });
}

#[test]
fn unbalanced_parentheses_are_bad_and_the_stream_recovers() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.feed(
        "f1 FETCH 1 (FLAGS UID\r\nf2 FETCH 1 FLAGS)\r\nf3 FETCH 1 ((FLAGS)\r\n\
         f4 SEARCH (OR SEEN\r\nf5 SEARCH SEEN)\r\nf6 STORE 1 +FLAGS (\\Seen\r\n",
    );
    assert_eq!(s.event(), None);
    let out = s.out();
    let lines: Vec<&str> = out.split_inclusive("\r\n").collect();
    assert_eq!(lines.len(), 6, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("f{} BAD Syntax error: ", i + 1)),
            "{line}"
        );
    }
    // A quoted string with a parenthesis and a literal with unbalanced parentheses are data.
    s.feed("f7 SEARCH SUBJECT \"(\" BODY {1+}\r\n)\r\n");
    let r = command(&mut s);
    let CommandBody::Search { criteria, .. } = &r.command.body else {
        panic!("{r:?}")
    };
    assert_eq!(criteria.len(), 2);
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    assert_eq!(s.out(), "f7 OK SEARCH completed\r\n");
}

#[test]
fn one_mebibyte_command_of_literals_is_refused() {
    // Lines stay short; the literals add up past the 1 MiB command limit.
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    let mut total = 0;
    let mut line = String::from("a SEARCH");
    let lit = "x".repeat(200 * 1024);
    loop {
        line.push_str(" TEXT {204800}\r\n");
        s.feed(&line);
        assert_eq!(s.event(), None);
        let out = s.out();
        total += 200 * 1024;
        if out.contains("BAD") {
            assert_eq!(out, "a BAD [TOOBIG] Literal too large\r\n");
            break;
        }
        assert_eq!(out, "+ Ready for literal data\r\n");
        s.feed(&lit);
        line.clear();
        assert!(total < 2 * 1024 * 1024, "limit not enforced");
    }
    assert!(total > 1024 * 1024 - 200 * 1024);
}

// ---------------------------------------------------------------------------------------
// RFC 6855 UTF8 APPEND.

#[test]
fn utf8_append_streams_and_expects_the_closing_parenthesis() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("e ENABLE UTF8=ACCEPT\r\n");
    assert_eq!(s.event(), Some(Event::Enabled(vec!["UTF8=ACCEPT".into()])));
    s.out();
    // Non-synchronising (LITERAL-, 4 bytes: the e-acute is two).
    s.feed("a APPEND INBOX UTF8 (~{4+}\r\nh\u{e9}l)\r\n");
    match s.event() {
        Some(Event::AppendStart {
            tag,
            size,
            binary,
            utf8,
            ..
        }) => {
            assert_eq!((tag.as_str(), size, binary, utf8), ("a", 4, true, true));
        }
        other => panic!("{other:?}"),
    }
    s.conn.accept_append().unwrap();
    assert_eq!(s.event(), Some(Event::AppendChunk("h\u{e9}l".into())));
    assert_eq!(s.event(), Some(Event::AppendEnd));
    s.conn
        .reply(Status::ok("APPEND completed").with_code("APPENDUID 1 1"))
        .unwrap();
    assert_eq!(s.out(), "a OK [APPENDUID 1 1] APPEND completed\r\n");

    // Synchronising, with flags and a date; the data arrives in pieces.
    s.feed("b APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" UTF8 (~{4}\r\n");
    match s.event() {
        Some(Event::AppendStart {
            flags, date, size, ..
        }) => {
            assert_eq!(flags.len(), 1);
            assert!(date.is_some());
            assert_eq!(size, 4);
        }
        other => panic!("{other:?}"),
    }
    s.conn.accept_append().unwrap();
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    s.feed("ab");
    assert_eq!(s.event(), Some(Event::AppendChunk("ab".into())));
    s.feed("cd)");
    assert_eq!(s.event(), Some(Event::AppendChunk("cd".into())));
    assert_eq!(s.event(), None);
    s.feed("\r\n");
    assert_eq!(s.event(), Some(Event::AppendEnd));
    s.conn.reply(Status::ok("APPEND completed")).unwrap();
    assert_eq!(s.out(), "b OK APPEND completed\r\n");

    // The ')' is missing: BAD, the stored message is to be discarded.
    s.feed("c APPEND INBOX UTF8 (~{2+}\r\nhi\r\nd NOOP\r\n");
    assert!(matches!(s.event(), Some(Event::AppendStart { .. })));
    s.conn.accept_append().unwrap();
    assert_eq!(s.event(), Some(Event::AppendChunk("hi".into())));
    assert_eq!(s.event(), Some(Event::AppendAborted));
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "c BAD Expected ')' after the UTF8 message literal\r\nd OK NOOP completed\r\n"
    );

    // UTF8 needs a literal8: BAD before the data, which is skipped.
    s.feed("f APPEND INBOX UTF8 ({2+}\r\nhi)\r\ng NOOP\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "f BAD Syntax error: UTF8 (...) needs a binary literal ~{n}\r\ng OK NOOP completed\r\n"
    );
}

// ---------------------------------------------------------------------------------------
// RFC 5182 SEARCHRES.

#[test]
fn searchres_is_advertised_only_when_configured() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    assert!(!s.conn.capabilities().contains(&"SEARCHRES".to_string()));
    s.feed("a SEARCH RETURN (SAVE) SEEN\r\nb FETCH $ FLAGS\r\nc UID SEARCH UID $\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a BAD SEARCHRES is not supported\r\nb BAD SEARCHRES is not supported\r\n\
         c BAD SEARCHRES is not supported\r\n"
    );

    let mut s = Srv::new(searchres_config());
    s.login();
    let caps = s.conn.capabilities();
    let at = caps.iter().position(|c| c == "SEARCHRES").unwrap();
    assert_eq!(caps[at + 1], "APPENDLIMIT=52428800");
    assert!(
        caps.contains(&"ESEARCH".to_string()),
        "RFC 5182 requires ESEARCH"
    );
}

/// RFC 5182 section 2.2, examples 1 and 2 (the second pipelined).
#[test]
fn searchres_rfc5182_examples_1_and_2() {
    let mut s = Srv::new(searchres_config());
    s.select();
    s.feed("A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    let r = command(&mut s);
    let CommandBody::Search { return_options, .. } = &r.command.body else {
        panic!("{r:?}")
    };
    assert_eq!(
        return_options.as_deref(),
        Some(&[SearchReturnOption::Save][..])
    );
    s.conn.save_search_result([1115, 14, 100]).unwrap();
    assert!(
        s.conn.search_result().is_empty(),
        "saved only on completion"
    );
    s.conn
        .reply(Status::ok("SEARCH completed, result saved"))
        .unwrap();
    assert_eq!(s.out(), "A282 OK SEARCH completed, result saved\r\n");
    s.feed("A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n");
    let r = command(&mut s);
    let CommandBody::Fetch { set, .. } = &r.command.body else {
        panic!("{r:?}")
    };
    assert_eq!(*set, SequenceSet::Saved);
    assert_eq!(s.conn.search_result(), &[14, 100, 1115]);
    for (seq, uid) in [(2, 14), (84, 100), (882, 1115)] {
        s.conn
            .send_untagged(format!("{seq} FETCH (UID {uid})").as_bytes())
            .unwrap();
    }
    s.conn.reply(Status::ok("completed")).unwrap();
    assert_eq!(
        s.out(),
        "* 2 FETCH (UID 14)\r\n* 84 FETCH (UID 100)\r\n* 882 FETCH (UID 1115)\r\nA283 OK completed\r\n"
    );

    // Example 2: the same, pipelined; the FETCH waits for the SEARCH to complete.
    s.feed(
        "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n\
         A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n",
    );
    command(&mut s);
    assert_eq!(s.event(), None, "one command at a time");
    s.conn.save_search_result([14]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    command(&mut s);
    assert_eq!(s.conn.search_result(), &[14]);
    s.conn.send_untagged(b"2 FETCH (UID 14)").unwrap();
    s.conn.reply(Status::ok("completed")).unwrap();
    assert_eq!(
        s.out(),
        "A282 OK SEARCH completed\r\n* 2 FETCH (UID 14)\r\nA283 OK completed\r\n"
    );
}

/// RFC 5182 examples 3 and 4: `$` inside search keys, with a literal.
#[test]
fn searchres_rfc5182_examples_3_and_4() {
    let mut s = Srv::new(searchres_config());
    s.select();
    s.feed("A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\"\r\n");
    command(&mut s);
    s.conn.save_search_result([17, 900, 901, 5000]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    s.feed("A301 UID SEARCH UID $ SMALLER 4096\r\n");
    let r = command(&mut s);
    let CommandBody::Search { uid, criteria, .. } = &r.command.body else {
        panic!("{r:?}")
    };
    assert!(*uid);
    assert_eq!(criteria[0], SearchKey::Uid(SequenceSet::Saved));
    s.conn.send_untagged(b"SEARCH 17 900 901").unwrap();
    s.conn.reply(Status::ok("completed")).unwrap();
    assert_eq!(
        s.out(),
        "A300 OK SEARCH completed\r\n* SEARCH 17 900 901\r\nA301 OK completed\r\n"
    );

    s.feed("P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    s.feed("YYYYYYYY\r\n");
    let r = command(&mut s);
    assert!(matches!(
        &r.command.body,
        CommandBody::Search {
            charset: Some(_),
            ..
        }
    ));
    assert_eq!(s.conn.search_result(), &[17, 900, 901, 5000]);
    s.conn
        .send_untagged(b"SEARCH 882 1102 3003 3005 3006")
        .unwrap();
    s.conn.reply(Status::ok("completed")).unwrap();
    assert_eq!(
        s.out(),
        "* SEARCH 882 1102 3003 3005 3006\r\nP283 OK completed\r\n"
    );
}

/// RFC 5182 examples 5 and 6, and the section 2.1 rules: NO on a SAVE search empties `$`,
/// BAD and searches without SAVE leave it, SELECT resets it, an empty `$` is valid.
#[test]
fn searchres_rfc5182_examples_5_and_6_and_resets() {
    let mut s = Srv::new(searchres_config());
    s.select();
    s.feed("B282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    command(&mut s);
    s.conn.save_search_result([3, 4]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    // As printed in the RFC (no SAVE): a NO leaves `$` unchanged (section 2.1).
    s.feed("B283 SEARCH CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4+}\r\nXXXX\r\n");
    command(&mut s);
    s.conn
        .reply(Status::no("KOI8-R is not supported").with_code("BADCHARSET UTF-8"))
        .unwrap();
    assert_eq!(s.conn.search_result(), &[3, 4]);
    // With SAVE, the NO empties it.
    s.feed("B284 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4+}\r\nXXXX\r\n");
    command(&mut s);
    s.conn
        .reply(Status::no("KOI8-R is not supported").with_code("BADCHARSET UTF-8"))
        .unwrap();
    assert_eq!(s.conn.search_result(), &[] as &[u32]);
    assert_eq!(
        s.out(),
        "B282 OK SEARCH completed\r\nB283 NO [BADCHARSET UTF-8] KOI8-R is not supported\r\n\
         B284 NO [BADCHARSET UTF-8] KOI8-R is not supported\r\n"
    );

    // Example 6: an empty result is a valid set.
    s.feed("E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006 NOT FROM \"Eric\"\r\nE283 COPY $ \"Other Messages\"\r\n");
    command(&mut s);
    s.conn.save_search_result([]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    let r = command(&mut s);
    assert!(matches!(
        &r.command.body,
        CommandBody::Copy {
            set: SequenceSet::Saved,
            ..
        }
    ));
    assert!(s.conn.search_result().is_empty());
    s.conn
        .reply(Status::ok("COPY completed, nothing copied"))
        .unwrap();
    assert_eq!(
        s.out(),
        "E282 OK SEARCH completed\r\nE283 OK COPY completed, nothing copied\r\n"
    );

    // Example 9: the later SAVE wins; a BAD SAVE search changes nothing; a SAVE search
    // answered OK without save_search_result saves the empty list.
    for (tag, uids) in [("H282", vec![1, 2]), ("H283", vec![7])] {
        s.feed(&format!("{tag} SEARCH RETURN (SAVE) KEYWORD $Junk\r\n"));
        command(&mut s);
        s.conn.save_search_result(uids).unwrap();
        s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    }
    assert_eq!(s.conn.search_result(), &[7]);
    s.feed("X1 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n");
    command(&mut s);
    s.conn.save_search_result([9]).unwrap();
    s.conn.reply(Status::bad("no")).unwrap();
    assert_eq!(s.conn.search_result(), &[7]);
    // Expunged (VANISHED) UIDs leave the saved result.
    s.conn
        .queue_unsolicited(Unsolicited::Vanished(vec![(5, 8)]));
    assert!(s.conn.search_result().is_empty());
    s.feed("X2 SEARCH RETURN (SAVE) ALL\r\n");
    command(&mut s);
    s.conn.save_search_result([4]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    assert_eq!(s.conn.search_result(), &[4]);
    s.feed("X3 SEARCH RETURN (SAVE COUNT) ALL\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    assert!(s.conn.search_result().is_empty());
    // Only a SAVE search may save.
    s.feed("X4 SEARCH ALL\r\n");
    command(&mut s);
    assert!(s.conn.save_search_result([1]).is_err());
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();

    // SELECT resets `$`.
    s.feed("X5 SEARCH RETURN (SAVE) ALL\r\n");
    command(&mut s);
    s.conn.save_search_result([4]).unwrap();
    s.conn.reply(Status::ok("SEARCH completed")).unwrap();
    s.feed("X6 SELECT INBOX\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("SELECT completed")).unwrap();
    assert!(s.conn.search_result().is_empty());
}

#[test]
fn over_long_line_arriving_whole_is_refused_like_one_arriving_in_pieces() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    let line = format!("a1 SEARCH TEXT {}\r\nb NOOP\r\n", "X".repeat(70 * 1024));
    s.feed(&line);
    let r = command(&mut s);
    assert_eq!(r.name, "NOOP", "the next command is still in step");
    assert_eq!(s.out(), "a1 BAD Command line too long\r\n");
    // Just under the limit is still a command.
    s.conn.reply(Status::ok("NOOP completed")).unwrap();
    s.out();
    let mut line = String::from("c SEARCH TEXT ");
    line.push_str(&"Y".repeat(64 * 1024 - line.len()));
    line.push_str("\r\n");
    s.feed(&line);
    let r = command(&mut s);
    assert_eq!(r.name, "SEARCH");
}

// ---------------------------------------------------------------------------------------
// RFC 9051 section 7.5 / RFC 7162: unsolicited responses.

/// Updates queued before a command go out before the command's own responses, so a MOVE's
/// EXPUNGEs cannot overtake an earlier one; FETCH/STORE/SEARCH still hold EXPUNGE/VANISHED
/// (and what follows them) back; CLOSE drops the updates of the mailbox it closes.
#[test]
fn queued_updates_keep_their_order_against_a_commands_own_responses() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("e ENABLE QRESYNC\r\n");
    assert_eq!(s.event(), Some(Event::Enabled(vec!["QRESYNC".into()])));
    s.feed("s SELECT INBOX\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("SELECT completed")).unwrap();
    s.out();

    s.conn
        .queue_unsolicited(Unsolicited::Vanished(vec![(3, 3)]));
    s.feed("m UID MOVE 5 Trash\r\n");
    command(&mut s);
    assert_eq!(
        s.out(),
        "* VANISHED 3\r\n",
        "before the command's own responses"
    );
    s.conn.send_untagged(b"OK [COPYUID 7 5 1] Moved").unwrap();
    s.conn.send_untagged(b"VANISHED 5").unwrap();
    s.conn.queue_unsolicited(Unsolicited::Exists(8));
    s.conn.reply(Status::ok("MOVE completed")).unwrap();
    assert_eq!(
        s.out(),
        "* OK [COPYUID 7 5 1] Moved\r\n* VANISHED 5\r\n* 8 EXISTS\r\nm OK MOVE completed\r\n"
    );

    s.conn.queue_unsolicited(Unsolicited::Fetch {
        seq: 1,
        uid: Some(2),
        flags: vec!["\\Seen".into()],
        modseq: Some(5),
    });
    s.conn
        .queue_unsolicited(Unsolicited::Vanished(vec![(9, 9)]));
    s.conn.queue_unsolicited(Unsolicited::Exists(7));
    s.feed("f FETCH 1 FLAGS\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("FETCH completed")).unwrap();
    assert_eq!(
        s.out(),
        "* 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (5))\r\nf OK FETCH completed\r\n"
    );
    s.feed("c CHECK\r\n");
    command(&mut s);
    assert_eq!(s.out(), "* VANISHED 9\r\n* 7 EXISTS\r\n");
    s.conn.reply(Status::ok("CHECK completed")).unwrap();
    assert_eq!(s.out(), "c OK CHECK completed\r\n");

    s.conn.queue_unsolicited(Unsolicited::Exists(9));
    s.feed("x CLOSE\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("CLOSE completed")).unwrap();
    assert_eq!(s.out(), "x OK CLOSE completed\r\n");
    assert_eq!(s.conn.queued_unsolicited(), 0);
}

// ---------------------------------------------------------------------------------------
// Framing does not depend on how the input is split into reads.

/// Runs a session over `input` split at `cuts`, answering every event the same way, and
/// returns everything written plus a trace of the events.
fn run_split(input: &[u8], cuts: &[usize]) -> (String, Vec<String>) {
    let mut s = Srv::new(searchres_config());
    s.out();
    let mut events = Vec::new();
    let mut out = String::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    for p in points {
        if p < at {
            continue;
        }
        s.conn.feed(&input[at..p]);
        at = p;
        while let Some(ev) = s.event() {
            events.push(format!("{ev:?}"));
            let _ = match ev {
                Event::Login { .. } | Event::AuthStart { .. } | Event::AuthData(_) => {
                    s.conn.reply(Status::ok("ok"))
                }
                Event::AppendStart { .. } => s.conn.accept_append(),
                Event::AppendEnd | Event::Command(_) => s.conn.reply(Status::ok("done")),
                Event::StartCompression => s.conn.compression_started().map(|_| ()),
                _ => Ok(()),
            };
        }
        out.push_str(&s.out());
    }
    (out, events)
}

/// AppendChunk boundaries follow the reads; compare their concatenation instead.
fn merge_chunks(events: Vec<String>) -> Vec<String> {
    let mut merged: Vec<String> = Vec::new();
    for e in events {
        if let (Some(last), Some(rest)) = (merged.last_mut(), e.strip_prefix("AppendChunk(b\""))
            && last.starts_with("AppendChunk(b\"")
        {
            last.truncate(last.len() - 2);
            last.push_str(rest);
            continue;
        }
        merged.push(e);
    }
    merged
}

const SESSION: &[u8] = b"a1 LOGIN {5}\r\nalice \"sec ret\"\r\n\
    a2 ENABLE UTF8=ACCEPT CONDSTORE\r\n\
    a3 SELECT INBOX (CONDSTORE)\r\n\
    a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n\
    a5 SEARCH RETURN (SAVE) CHARSET UTF-8 TEXT {3+}\r\nabc\r\n\
    a6 FETCH $ FLAGS\r\n\
    a7 APPEND INBOX (\\Seen) {11}\r\nhello world\r\n\
    a8 APPEND INBOX UTF8 (~{4+}\r\nh\xc3\xa9l)\r\n\
    a9 FETCH 1 (FLAGS\r\n\
    b1 NOOP\n\
    b2 IDLE\r\nDONE\r\n\
    b3 LOGOUT\r\n";

proptest::proptest! {
    #[test]
    fn any_split_of_a_session_gives_the_same_bytes(cuts in proptest::collection::vec(0usize..2000, 0..40)) {
        let (whole_out, whole_events) = run_split(SESSION, &[]);
        let (out, events) = run_split(SESSION, &cuts);
        proptest::prop_assert_eq!(out, whole_out);
        proptest::prop_assert_eq!(merge_chunks(events), merge_chunks(whole_events));
    }
}

#[test]
fn the_split_session_reference_run() {
    let (out, events) = run_split(SESSION, &[]);
    assert!(
        out.contains("+ Ready for literal data\r\na1 OK [CAPABILITY "),
        "{out}"
    );
    assert!(out.contains("a8 OK done\r\na9 BAD Syntax error: "), "{out}");
    assert!(out.ends_with("b2 OK IDLE terminated\r\n* BYE IMAP4rev2 server terminating connection\r\nb3 OK LOGOUT completed\r\n"), "{out}");
    assert_eq!(
        events.iter().filter(|e| e.starts_with("AppendEnd")).count(),
        2
    );
    assert_eq!(events.last().map(String::as_str), Some("Logout"));
}

/// RFC 7162 sections 3.2.5 and 3.2.6: the QRESYNC SELECT parameter and the VANISHED FETCH
/// modifier are BAD before `ENABLE QRESYNC` (and a BAD SELECT leaves the mailbox selected:
/// no `[CLOSED]`); after it they reach the application.
#[test]
fn qresync_parameters_need_enable_first() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.feed("q SELECT INBOX (QRESYNC (1 1))\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "q BAD The QRESYNC parameter needs ENABLE QRESYNC first (RFC 7162)\r\n"
    );
    s.feed("v UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "v BAD The VANISHED modifier needs ENABLE QRESYNC first (RFC 7162)\r\n"
    );
    s.feed("u UNSELECT\r\n");
    command(&mut s);
    s.conn.reply(Status::ok("UNSELECT completed")).unwrap();
    s.out();
    s.feed("e ENABLE QRESYNC\r\n");
    assert_eq!(s.event(), Some(Event::Enabled(vec!["QRESYNC".into()])));
    s.out();
    s.feed("q SELECT INBOX (QRESYNC (1 1))\r\n");
    assert_eq!(command(&mut s).name, "SELECT");
}
