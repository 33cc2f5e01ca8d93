//! Exact-bytes sessions against `client::Connection`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use imap_proto::client::{Config, Connection, Event};
use imap_proto::types::{
    CommandBody, Continue, Data, FetchAttr, Flag, Mailbox, Response, StatusKind,
};

fn out(c: &mut Connection) -> String {
    let mut s = String::new();
    while let Some(b) = c.take_output() {
        s.push_str(&String::from_utf8_lossy(&b));
    }
    s
}

fn greeted(greeting: &str, config: Config) -> Connection {
    let mut c = Connection::new(config);
    c.feed(greeting.as_bytes());
    assert!(matches!(c.next_event(), Some(Event::Greeting(_))));
    c
}

#[test]
fn greeting_capabilities_and_tag_matching() {
    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 IDLE LITERAL+] hi\r\n",
        Config::default(),
    );
    assert!(c.has_capability("idle") && c.has_capability("LITERAL+"));
    let t1 = c.send(CommandBody::Noop).unwrap();
    let t2 = c.send(CommandBody::Capability).unwrap();
    assert_eq!(out(&mut c), "A1 NOOP\r\nA2 CAPABILITY\r\n");
    assert_eq!(c.in_flight().len(), 2);
    c.feed(b"* CAPABILITY IMAP4rev2 MOVE\r\nA2 OK done\r\n* 4 EXISTS\r\nA1 NO [ALERT] nope\r\n");
    assert!(matches!(
        c.next_event(),
        Some(Event::Untagged(Response::Data(Data::Capability(_))))
    ));
    assert!(c.has_capability("MOVE") && !c.has_capability("IDLE"));
    match c.next_event() {
        Some(Event::Completed { tag, status }) => {
            assert_eq!(tag, t2);
            assert_eq!(status.kind, StatusKind::Ok);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.next_event(),
        Some(Event::Untagged(Response::Data(Data::Exists(4))))
    );
    match c.next_event() {
        Some(Event::Completed { tag, status }) => {
            assert_eq!(tag, t1);
            assert_eq!(status.kind, StatusKind::No);
            assert_eq!(status.text.as_str(), "nope");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.in_flight().is_empty());
    assert_eq!(c.next_event(), None);
}

#[test]
fn literals_in_responses_are_framed_across_feeds() {
    let mut c = greeted("* OK hi\r\n", Config::default());
    let msg = "* 1 FETCH (UID 7 BODY[] {11}\r\nHello\r\nWorl FLAGS (\\Seen))\r\n";
    for b in msg.as_bytes() {
        assert_eq!(c.next_event(), None);
        c.feed(&[*b]);
    }
    match c.next_event() {
        Some(Event::Untagged(Response::Data(Data::Fetch { items: attrs, .. }))) => {
            assert!(attrs.contains(&FetchAttr::Flags(vec![Flag::Seen])));
            assert!(attrs.iter().any(|a| matches!(a, FetchAttr::BodySection { data: Some(d), .. } if &d[..] == b"Hello\r\nWorl")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn large_fetch_bodies_are_streamed() {
    let mut config = Config::default();
    config.stream_threshold = 16;
    let mut c = greeted("* OK hi\r\n", config);
    let body = "x".repeat(100);
    c.feed(format!("* 3 FETCH (FLAGS () BODY[] {{100}}\r\n{}", &body[..40]).as_bytes());
    match c.next_event() {
        Some(Event::FetchBodyStart { prefix }) => {
            assert_eq!(prefix.seq.get(), 3);
            assert_eq!(prefix.literal.len, 100);
            assert_eq!(prefix.items, vec![FetchAttr::Flags(vec![])]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.next_event(),
        Some(Event::FetchBodyChunk(body[..40].to_string().into()))
    );
    assert_eq!(c.next_event(), None);
    c.feed(
        format!(
            "{} UID 9)\r\n* 4 FETCH (BODY[] {{20}}\r\n{})\r\nA1 OK x\r\n",
            &body[40..],
            &body[..20]
        )
        .as_bytes(),
    );
    assert_eq!(
        c.next_event(),
        Some(Event::FetchBodyChunk(body[40..].to_string().into()))
    );
    assert_eq!(c.next_event(), Some(Event::FetchBodyEnd));
    match c.next_event() {
        Some(Event::Untagged(Response::Data(Data::Fetch { seq, items: attrs }))) => {
            assert_eq!(seq.get(), 3);
            assert_eq!(attrs, vec![FetchAttr::Uid(9.try_into().unwrap())]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.next_event(), Some(Event::FetchBodyStart { .. })));
    assert!(matches!(c.next_event(), Some(Event::FetchBodyChunk(_))));
    assert_eq!(c.next_event(), Some(Event::FetchBodyEnd));
    assert!(
        matches!(c.next_event(), Some(Event::Completed { .. })),
        "nothing after the literal but ')'"
    );
}

#[test]
fn append_waits_for_continuation_without_literal_plus() {
    let mut c = greeted("* OK [CAPABILITY IMAP4rev2] hi\r\n", Config::default());
    let tag = c
        .append_start(&Mailbox::new("Sent Items").unwrap(), &[Flag::Seen], None, 5)
        .unwrap();
    assert_eq!(out(&mut c), "A1 APPEND \"Sent Items\" (\\Seen) {5}\r\n");
    assert!(
        c.append_chunk(b"abc").is_err(),
        "not before the continuation"
    );
    assert!(!c.append_ready());
    let noop = c.send(CommandBody::Noop).unwrap();
    assert_eq!(out(&mut c), "");
    c.feed(b"+ go ahead\r\n");
    assert_eq!(c.next_event(), Some(Event::AppendReady));
    c.append_chunk(b"abc").unwrap();
    assert_eq!(
        out(&mut c),
        "abc",
        "queued commands wait for the whole message"
    );
    c.append_chunk(b"de").unwrap();
    assert_eq!(out(&mut c), format!("de\r\n{noop} NOOP\r\n"));
    c.feed(b"A1 OK [APPENDUID 1 2] done\r\nA2 OK\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { tag: t, .. }) if t == tag));
}

#[test]
fn append_with_literal_plus_and_refusal_before_continuation() {
    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 LITERAL-] hi\r\n",
        Config::default(),
    );
    c.append_start(&Mailbox::inbox(), &[], None, 3).unwrap();
    assert_eq!(out(&mut c), "A1 APPEND INBOX {3+}\r\n");
    c.append_chunk(b"abc").unwrap();
    assert_eq!(out(&mut c), "abc\r\n");
    c.feed(b"A1 OK done\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { .. })));
    // Too big for LITERAL-: synchronising; the server refuses before the continuation.
    c.append_start(&Mailbox::inbox(), &[], None, 5000).unwrap();
    assert_eq!(out(&mut c), "A2 APPEND INBOX {5000}\r\n");
    let t3 = c.send(CommandBody::Noop).unwrap();
    assert_eq!(out(&mut c), "", "queued behind the blocked APPEND");
    c.feed(b"A2 NO [TOOBIG] too big\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { .. })));
    assert_eq!(out(&mut c), format!("{t3} NOOP\r\n"));
}

#[test]
fn idle_start_updates_and_done() {
    let mut c = greeted("* OK hi\r\n", Config::default());
    let tag = c.idle().unwrap();
    assert_eq!(out(&mut c), "A1 IDLE\r\n");
    assert!(
        c.idle_done().is_err(),
        "DONE only after the server's continuation"
    );
    let mut c = greeted("* OK hi\r\n", Config::default());
    let tag2 = c.idle().unwrap();
    assert_eq!(tag, tag2);
    out(&mut c);
    c.feed(b"+ idling\r\n* 5 EXISTS\r\n");
    assert_eq!(c.next_event(), Some(Event::IdleStarted));
    assert_eq!(
        c.next_event(),
        Some(Event::Untagged(Response::Data(Data::Exists(5))))
    );
    c.idle_done().unwrap();
    assert!(c.idle_done().is_err());
    assert_eq!(out(&mut c), "DONE\r\n");
    c.feed(b"A1 OK IDLE terminated\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { .. })));
    assert!(c.idle().is_ok(), "a new IDLE may start");
}

#[test]
fn authenticate_with_and_without_sasl_ir() {
    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 SASL-IR AUTH=PLAIN] hi\r\n",
        Config::default(),
    );
    c.authenticate("PLAIN", Some(b"\0u\0p")).unwrap();
    assert_eq!(out(&mut c), "A1 AUTHENTICATE PLAIN AHUAcA==\r\n");
    c.feed(b"A1 OK [CAPABILITY IMAP4rev2 IDLE] in\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { .. })));
    assert!(c.has_capability("IDLE"));

    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] hi\r\n",
        Config::default(),
    );
    c.authenticate("PLAIN", Some(b"\0u\0p")).unwrap();
    assert_eq!(out(&mut c), "A1 AUTHENTICATE PLAIN\r\n");
    c.feed(b"+ \r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "AHUAcA==\r\n");

    let mut c = greeted("* OK hi\r\n", Config::default());
    c.authenticate("SCRAM-SHA-256", None).unwrap();
    out(&mut c);
    c.feed(b"+ cj1hYmM=\r\n");
    assert_eq!(c.next_event(), Some(Event::AuthChallenge("r=abc".into())));
    c.auth_respond(b"c=biws").unwrap();
    assert_eq!(out(&mut c), "Yz1iaXdz\r\n");
    c.feed(b"+ \r\n");
    assert_eq!(c.next_event(), Some(Event::AuthChallenge("".into())));
    c.auth_cancel().unwrap();
    assert_eq!(out(&mut c), "*\r\n");
    c.feed(b"A1 BAD cancelled\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { .. })));
    assert!(c.auth_respond(b"x").is_err());
}

#[test]
fn garbage_is_reported_not_fatal() {
    let mut c = greeted("* OK hi\r\n", Config::default());
    c.feed(b"* 1 FROBNICATE (\r\n+ not expected\r\n* BYE going away\r\n");
    assert!(matches!(c.next_event(), Some(Event::ProtocolError { .. })));
    assert!(matches!(
        c.next_event(),
        Some(Event::Continuation(Continue::Text { .. }))
    ));
    assert!(matches!(
        c.next_event(),
        Some(Event::Untagged(Response::Status(_)))
    ));
    assert!(c.is_closed());
}

#[test]
fn oversized_response_is_skipped() {
    let mut config = Config::default();
    config.max_response = 1024;
    config.stream_threshold = u64::MAX;
    let mut c = greeted("* OK hi\r\n", config);
    c.feed(
        format!(
            "* 1 FETCH (BODY[] {{4000}}\r\n{})\r\n* 2 EXISTS\r\n",
            "y".repeat(4000)
        )
        .as_bytes(),
    );
    assert!(matches!(c.next_event(), Some(Event::ProtocolError { .. })));
    assert_eq!(
        c.next_event(),
        Some(Event::Untagged(Response::Data(Data::Exists(2))))
    );
}

#[test]
fn command_literals_wait_for_continuation_unless_literal_plus() {
    let login = || CommandBody::Login {
        username: "alice".into(),
        password: "p\r\nw".into(),
    };
    let mut c = greeted("* OK [CAPABILITY IMAP4rev2] hi\r\n", Config::default());
    c.send(login()).unwrap();
    assert_eq!(out(&mut c), "A1 LOGIN alice {4}\r\n");
    c.feed(b"+ Ready for literal data\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(out(&mut c), "p\r\nw\r\n");

    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 LITERAL-] hi\r\n",
        Config::default(),
    );
    c.send(login()).unwrap();
    assert_eq!(out(&mut c), "A1 LOGIN alice {4+}\r\np\r\nw\r\n");
}

#[test]
fn unparsable_completion_still_completes() {
    let mut c = greeted("* OK hi\r\n", Config::default());
    let tag = c.send(CommandBody::Noop).unwrap();
    out(&mut c);
    c.feed(b"A1 OK [UNFINISHED-CODE\r\n");
    match c.next_event() {
        Some(Event::Completed { tag: t, status }) => {
            assert_eq!(t, tag);
            assert_eq!(status.kind, StatusKind::Bad);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.in_flight().is_empty());
}

/// A command pipelined behind AUTHENTICATE or IDLE must not be written while the exchange
/// runs: the server would read it as SASL data or as the line that should be DONE.
#[test]
fn commands_wait_behind_authenticate_and_idle() {
    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 SASL-IR IDLE] hi\r\n",
        Config::default(),
    );
    let t1 = c.authenticate("PLAIN", None).unwrap();
    let t2 = c.send(CommandBody::Noop).unwrap();
    assert!(
        c.authenticate("PLAIN", None).is_err(),
        "one exchange at a time"
    );
    assert_eq!(out(&mut c), "A1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.in_flight(), &[t1.clone(), t2.clone()]);
    c.feed(b"+ \r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::AuthChallenge(Default::default()))
    );
    c.auth_respond(b"\0u\0p").unwrap();
    assert_eq!(out(&mut c), "AHUAcA==\r\n");
    c.feed(b"A1 OK done\r\n");
    match c.next_event() {
        Some(Event::Completed { tag, status }) => {
            assert_eq!(tag, t1);
            assert_eq!(status.kind, StatusKind::Ok);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out(&mut c), "A3 NOOP\r\n".replace("A3", t2.as_str()));

    let t3 = c.idle().unwrap();
    let t4 = c.send(CommandBody::Capability).unwrap();
    assert_eq!(out(&mut c), format!("{t3} IDLE\r\n"));
    c.feed(format!("{t2} OK NOOP completed\r\n+ idling\r\n* 3 EXISTS\r\n").as_bytes());
    assert!(matches!(c.next_event(), Some(Event::Completed { tag, .. }) if tag == t2));
    assert_eq!(c.next_event(), Some(Event::IdleStarted));
    assert_eq!(
        c.next_event(),
        Some(Event::Untagged(Response::Data(Data::Exists(3))))
    );
    assert_eq!(out(&mut c), "", "CAPABILITY waits for the end of IDLE");
    c.idle_done().unwrap();
    assert_eq!(out(&mut c), "DONE\r\n");
    c.feed(format!("{t3} OK IDLE terminated\r\n").as_bytes());
    assert!(matches!(c.next_event(), Some(Event::Completed { tag, .. }) if tag == t3));
    assert_eq!(out(&mut c), format!("{t4} CAPABILITY\r\n"));
}

/// Pipelined commands with synchronising literals: each waits for its own `+`, a refused
/// literal drops the rest of its command and lets the next one go.
#[test]
fn pipelined_literals_and_a_refused_one() {
    let mut c = greeted("* OK [CAPABILITY IMAP4rev2] hi\r\n", Config::default());
    let t1 = c
        .send(CommandBody::Login {
            username: "al ice".into(),
            password: "p\"w\r".into(),
        })
        .unwrap();
    let t2 = c.send(CommandBody::Noop).unwrap();
    let first = out(&mut c);
    assert!(first.starts_with("A1 LOGIN \"al ice\" {4}\r\n"), "{first}");
    c.feed(b"A1 BAD [TOOBIG] no\r\n");
    match c.next_event() {
        Some(Event::Completed { tag, status }) => {
            assert_eq!(tag, t1);
            assert_eq!(status.kind, StatusKind::Bad);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        out(&mut c),
        format!("{t2} NOOP\r\n"),
        "literal dropped, next sent"
    );
    assert_eq!(c.in_flight(), std::slice::from_ref(&t2));
    // A completion for a tag never sent is reported as such and changes nothing.
    c.feed(b"Z9 OK what\r\n");
    match c.next_event() {
        Some(Event::Completed { tag, .. }) => assert_eq!(tag.as_str(), "Z9"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.in_flight(), &[t2]);
}

/// AUTHENTICATE queued behind a command still waiting for its literal's `+`: the earlier
/// command finishes first, then the exchange starts.
#[test]
fn authenticate_behind_a_blocked_literal() {
    let mut c = greeted(
        "* OK [CAPABILITY IMAP4rev2 SASL-IR] hi\r\n",
        Config::default(),
    );
    let t1 = c
        .send(CommandBody::Login {
            username: "u".into(),
            password: "p\r".into(),
        })
        .unwrap();
    let t2 = c.authenticate("PLAIN", Some(b"\0u\0p")).unwrap();
    assert_eq!(out(&mut c), "A1 LOGIN u {2}\r\n");
    c.feed(b"+ go\r\n");
    assert_eq!(c.next_event(), None);
    assert_eq!(
        out(&mut c),
        "p\r\r\nA2 AUTHENTICATE PLAIN AHUAcA==\r\n",
        "the literal, then the queued AUTHENTICATE"
    );
    c.feed(b"A1 NO [AUTHENTICATIONFAILED] no\r\nA2 OK yes\r\n");
    assert!(matches!(c.next_event(), Some(Event::Completed { tag, .. }) if tag == t1));
    assert!(matches!(c.next_event(), Some(Event::Completed { tag, .. }) if tag == t2));
    assert!(c.in_flight().is_empty());
}
