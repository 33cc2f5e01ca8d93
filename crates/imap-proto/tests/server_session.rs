//! Exact-bytes sessions against `server::Connection`.

mod common;

use std::time::Duration;

use common::Srv;
use imap_proto::server::{Config, Event, NonSyncLiterals, State, Status, Unsolicited};
use imap_proto::types::Flag;

const PRE: &str = "IMAP4rev2 IMAP4rev1 LITERAL- SASL-IR ENABLE IDLE";

fn post_caps() -> String {
    format!(
        "{PRE} NAMESPACE UNSELECT UIDPLUS MOVE CONDSTORE QRESYNC ESEARCH SPECIAL-USE CHILDREN \
         LIST-EXTENDED LIST-STATUS STATUS=SIZE QUOTA UTF8=ACCEPT COMPRESS=DEFLATE APPENDLIMIT=52428800"
    )
}

#[test]
fn default_greeting_advertises_logindisabled() {
    let mut s = Srv::new(Config::default());
    assert_eq!(
        s.out(),
        format!("* OK [CAPABILITY {PRE} LOGINDISABLED] IMAP4rev2 server ready\r\n")
    );
    s.feed("a LOGIN alice secret\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS\r\n"
    );
    s.feed("b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "b NO [PRIVACYREQUIRED] Plaintext authentication is disabled before STARTTLS\r\n"
    );
}

/// RFC 9051 section 8, server side, byte for byte (our texts where the RFC leaves them free).
#[test]
fn rfc9051_sample_session() {
    let mut config = Config::default();
    config.starttls = true;
    config.sasl_mechanisms = vec!["SCRAM-SHA-256".into()];
    config.greeting = "IMAP4rev2 Service Ready".into();
    let mut s = Srv::new(config);
    assert_eq!(
        s.out(),
        format!(
            "* OK [CAPABILITY {PRE} STARTTLS LOGINDISABLED AUTH=SCRAM-SHA-256] IMAP4rev2 Service Ready\r\n"
        )
    );
    s.feed("a000 starttls\r\n");
    assert_eq!(s.event(), Some(Event::StartTls));
    assert_eq!(s.out(), "a000 OK Proceed with TLS negotiation\r\n");
    s.conn.tls_established().unwrap();
    assert!(s.conn.is_tls());

    s.feed("A001 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n");
    match s.event() {
        Some(Event::AuthStart {
            tag,
            mechanism,
            initial,
        }) => {
            assert_eq!(tag, "A001");
            assert_eq!(mechanism, "SCRAM-SHA-256");
            assert_eq!(
                initial.unwrap().expose().as_ref(),
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
            );
        }
        other => panic!("{other:?}"),
    }
    s.conn
        .auth_challenge(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        .unwrap();
    assert_eq!(
        s.out(),
        "+ cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n"
    );
    s.feed("Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==\r\n");
    match s.event() {
        Some(Event::AuthData(d)) => assert!(d.expose().starts_with(b"c=biws,r=")),
        other => panic!("{other:?}"),
    }
    s.conn
        .auth_challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        .unwrap();
    assert_eq!(
        s.out(),
        "+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n"
    );
    s.feed("\r\n");
    match s.event() {
        Some(Event::AuthData(d)) => assert!(d.expose().is_empty()),
        other => panic!("{other:?}"),
    }
    s.conn
        .reply(Status::ok("SCRAM-SHA-256 authentication successful"))
        .unwrap();
    assert_eq!(
        s.out(),
        format!(
            "A001 OK [CAPABILITY {}] SCRAM-SHA-256 authentication successful\r\n",
            post_caps()
        )
    );
    assert_eq!(s.conn.state(), State::Authenticated);

    s.feed("babc ENABLE IMAP4rev2\r\n");
    assert_eq!(s.event(), Some(Event::Enabled(vec!["IMAP4rev2".into()])));
    assert_eq!(
        s.out(),
        "* ENABLED IMAP4rev2\r\nbabc OK ENABLE completed\r\n"
    );
    assert!(s.conn.enabled().imap4rev2);

    s.feed("a002 select inbox\r\n");
    match s.event() {
        Some(Event::Command(r)) => {
            assert_eq!(
                (r.tag.as_str(), r.name.as_str(), r.uid),
                ("a002", "SELECT", false)
            );
            assert_eq!(r.args(), b"inbox");
        }
        other => panic!("{other:?}"),
    }
    for line in [
        "18 EXISTS",
        "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "OK [UIDVALIDITY 3857529045] UIDs valid",
        "LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))",
    ] {
        s.conn.send_untagged(line.as_bytes()).unwrap();
    }
    s.conn
        .reply(Status::ok("SELECT completed").with_code("READ-WRITE"))
        .unwrap();
    assert_eq!(
        s.out(),
        "* 18 EXISTS\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [UIDVALIDITY 3857529045] UIDs valid\r\n* LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))\r\n\
         a002 OK [READ-WRITE] SELECT completed\r\n"
    );
    assert_eq!(s.conn.state(), State::Selected { read_only: false });

    let header = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n";
    assert_eq!(header.len(), 342);
    s.feed("a004 fetch 12 body[header]\r\n");
    let Some(Event::Command(r)) = s.event() else {
        panic!()
    };
    assert_eq!(r.name, "FETCH");
    s.conn
        .begin_literal(b"12 FETCH (BODY[HEADER] ", 342)
        .unwrap();
    let (a, b) = header.as_bytes().split_at(100);
    s.conn.literal_chunk(a).unwrap();
    assert!(
        s.conn.reply(Status::ok("x")).is_err(),
        "cannot complete inside a literal"
    );
    s.conn.literal_chunk(b).unwrap();
    s.conn.end_literal(b")").unwrap();
    s.conn.reply(Status::ok("FETCH completed")).unwrap();
    assert_eq!(
        s.out(),
        format!("* 12 FETCH (BODY[HEADER] {{342}}\r\n{header})\r\na004 OK FETCH completed\r\n")
    );

    s.feed("a005 store 12 +flags \\deleted\r\n");
    let Some(Event::Command(r)) = s.event() else {
        panic!()
    };
    assert_eq!(r.args(), b"12 +flags \\deleted");
    s.conn
        .send_untagged(b"12 FETCH (FLAGS (\\Seen \\Deleted))")
        .unwrap();
    s.conn.reply(Status::ok("+FLAGS completed")).unwrap();
    assert_eq!(
        s.out(),
        "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\na005 OK +FLAGS completed\r\n"
    );

    s.feed("a006 logout\r\n");
    assert_eq!(s.event(), Some(Event::Logout));
    assert_eq!(
        s.out(),
        "* BYE IMAP4rev2 server terminating connection\r\na006 OK LOGOUT completed\r\n"
    );
    assert!(s.conn.is_closed());
    assert_eq!(s.conn.poll_timeout(), None);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a NOOP\r\nb CAPABILITY\r\nc LOGIN u p\r\nd NOOP\r\n");
    match s.event() {
        Some(Event::Login { tag, .. }) => assert_eq!(tag, "c"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.event(), None, "waits for the LOGIN answer");
    assert_eq!(
        s.out(),
        format!(
            "a OK NOOP completed\r\n* CAPABILITY {PRE} AUTH=PLAIN\r\nb OK CAPABILITY completed\r\n"
        )
    );
    s.conn.reply(Status::ok("hi").with_code("ALERT")).unwrap();
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "c OK [ALERT] hi\r\nd OK NOOP completed\r\n");
}

#[test]
fn synchronising_literals_get_continuations() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a LOGIN {5}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    s.feed("al");
    assert_eq!(s.event(), None);
    s.feed("ice {6}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    s.feed("sec\r\nt\r\n");
    match s.event() {
        Some(Event::Login {
            username, password, ..
        }) => {
            assert_eq!(&username[..], b"alice");
            assert_eq!(&password.expose()[..], b"sec\r\nt");
            assert_eq!(format!("{password:?}"), "Secret([redacted])");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_sync_literals_under_literal_minus() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n");
    assert!(matches!(s.event(), Some(Event::Login { .. })));
    assert_eq!(s.out(), "", "no continuation for LITERAL+ style literals");
    s.conn.reply(Status::ok("ok").with_code("X")).unwrap();
    s.out();
    // Above 4096 bytes: BAD [TOOBIG]; the literal is skipped and the next command works.
    let big = "x".repeat(5000);
    s.feed(&format!("b CREATE {{5000+}}\r\n{big}\r\nc NOOP\r\n"));
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "b BAD [TOOBIG] Literal too large\r\nc OK NOOP completed\r\n"
    );
    assert!(!s.conn.is_closed());
}

#[test]
fn literal_plus_allows_large_non_sync_literals() {
    let mut config = Srv::plain_config();
    config.non_sync_literals = NonSyncLiterals::Plus;
    let mut s = Srv::new(config);
    assert!(s.out().contains(" LITERAL+ "));
    s.login();
    let name = "m".repeat(5000);
    s.feed(&format!("b CREATE {{5000+}}\r\n{name}\r\n"));
    match s.event() {
        Some(Event::Command(r)) => {
            assert_eq!(r.name, "CREATE");
            assert_eq!(r.args().len(), "{5000+}\r\n".len() + 5000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_sync_literal_is_refused_before_its_bytes() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("a CREATE {999999999}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "a BAD [TOOBIG] Literal too large\r\n");
    s.feed("b NOOP\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "b OK NOOP completed\r\n");
}

#[test]
fn huge_non_sync_literal_closes_the_connection() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("a APPEND INBOX {99999999999+}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a BAD [TOOBIG] Literal too large\r\n* BYE [TOOBIG] Literal too large to skip\r\n"
    );
    assert!(s.conn.is_closed());
}

#[test]
fn append_streams_in_chunks_and_never_buffers_whole() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    let size: u64 = 50 * 1024 * 1024;
    s.feed(&format!(
        "A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {{{size}}}\r\n"
    ));
    match s.event() {
        Some(Event::AppendStart {
            tag,
            mailbox,
            flags,
            date,
            size: n,
            binary,
            utf8: false,
        }) => {
            assert_eq!(tag, "A003");
            assert_eq!(mailbox.as_str(), "saved-messages");
            assert_eq!(flags, vec![Flag::Seen]);
            assert_eq!(date.unwrap().to_string(), "17-Jul-1996 02:44:25 -0700");
            assert_eq!((n, binary), (size, false));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.out(),
        "",
        "no continuation before the application accepts"
    );
    s.conn.accept_append().unwrap();
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    let block = vec![b'a'; 64 * 1024];
    let mut received: u64 = 0;
    let mut chunks = 0;
    while received < size {
        let n = (size - received).min(block.len() as u64) as usize;
        s.conn.feed(&block[..n]);
        while let Some(ev) = s.event() {
            match ev {
                Event::AppendChunk(c) => {
                    assert!(c.len() <= block.len());
                    received += c.len() as u64;
                    chunks += 1;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(received, size);
    assert!(chunks >= 800);
    s.feed("\r\n");
    assert_eq!(s.event(), Some(Event::AppendEnd));
    s.conn
        .reply(Status::ok("APPEND completed").with_code("APPENDUID 38505 3955"))
        .unwrap();
    assert_eq!(
        s.out(),
        "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
    );
}

#[test]
fn append_refusals() {
    let mut s = Srv::new(Srv::plain_config());
    // Not authenticated: BAD, the non-sync literal is skipped.
    s.out();
    s.feed("a APPEND INBOX {3+}\r\nabc\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "a BAD APPEND is not valid in this state\r\n");
    s.login();
    // Over the limit, synchronising: NO [TOOBIG] and no continuation.
    s.feed("b APPEND INBOX {52428801}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "b NO [TOOBIG] Message too large\r\n");
    // The application refuses (TRYCREATE) a synchronising APPEND: no continuation.
    s.feed("c APPEND nosuch {3}\r\n");
    assert!(matches!(s.event(), Some(Event::AppendStart { .. })));
    s.conn
        .reply(Status::no("No such mailbox").with_code("TRYCREATE"))
        .unwrap();
    assert_eq!(s.out(), "c NO [TRYCREATE] No such mailbox\r\n");
    // ... and a non-synchronising one: its bytes are skipped.
    s.feed("d APPEND nosuch {3+}\r\nabc\r\ne NOOP\r\n");
    assert!(matches!(s.event(), Some(Event::AppendStart { .. })));
    s.conn
        .reply(Status::no("No such mailbox").with_code("TRYCREATE"))
        .unwrap();
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "d NO [TRYCREATE] No such mailbox\r\ne OK NOOP completed\r\n"
    );
    // MULTIAPPEND is not supported: BAD after the first message.
    s.feed("f APPEND INBOX {1+}\r\nx {1+}\r\ny\r\n");
    assert!(matches!(s.event(), Some(Event::AppendStart { .. })));
    s.conn.accept_append().unwrap();
    assert_eq!(s.event(), Some(Event::AppendChunk("x".into())));
    assert_eq!(s.event(), Some(Event::AppendAborted));
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "f BAD MULTIAPPEND and CATENATE are not supported\r\n"
    );
}

#[test]
fn mailbox_name_as_literal_then_message() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("a APPEND {5}\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "+ Ready for literal data\r\n");
    s.feed("INBOX {2+}\r\nhi\r\n");
    match s.event() {
        Some(Event::AppendStart { mailbox, size, .. }) => {
            assert!(mailbox.is_inbox() && size == 2)
        }
        other => panic!("{other:?}"),
    }
    s.conn.accept_append().unwrap();
    assert_eq!(s.event(), Some(Event::AppendChunk("hi".into())));
    assert_eq!(s.event(), Some(Event::AppendEnd));
}

#[test]
fn idle_flushes_updates_immediately() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.conn.queue_unsolicited(Unsolicited::Exists(4));
    s.feed("i1 IDLE\r\n");
    assert_eq!(s.event(), Some(Event::Idle { tag: "i1".into() }));
    assert_eq!(s.out(), "+ idling\r\n* 4 EXISTS\r\n");
    s.conn.queue_unsolicited(Unsolicited::Expunge(2));
    s.conn.queue_unsolicited(Unsolicited::Fetch {
        seq: 1,
        uid: Some(7),
        flags: vec!["\\Seen".into()],
        modseq: Some(9),
    });
    assert_eq!(
        s.out(),
        "* 2 EXPUNGE\r\n* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n"
    );
    s.feed("DONE\r\n");
    assert_eq!(s.event(), Some(Event::IdleDone));
    assert_eq!(s.out(), "i1 OK IDLE terminated\r\n");
    s.feed("i2 IDLE\r\nnope\r\n");
    assert_eq!(s.event(), Some(Event::Idle { tag: "i2".into() }));
    assert_eq!(s.event(), Some(Event::IdleDone));
    assert_eq!(s.out(), "+ idling\r\ni2 BAD Expected DONE\r\n");
}

#[test]
fn expunge_is_held_during_fetch_store_search() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.conn.queue_unsolicited(Unsolicited::Fetch {
        seq: 1,
        uid: None,
        flags: vec![],
        modseq: None,
    });
    s.conn.queue_unsolicited(Unsolicited::Expunge(3));
    s.conn.queue_unsolicited(Unsolicited::Exists(9));
    for cmd in ["FETCH 1 FLAGS", "STORE 1 +FLAGS \\Seen", "SEARCH ALL"] {
        s.feed(&format!("f {cmd}\r\n"));
        let Some(Event::Command(_)) = s.event() else {
            panic!()
        };
        s.conn.reply(Status::ok("done")).unwrap();
    }
    assert_eq!(
        s.out(),
        "* 1 FETCH (FLAGS ())\r\nf OK done\r\nf OK done\r\nf OK done\r\n"
    );
    assert_eq!(s.conn.queued_unsolicited(), 2);
    // UID FETCH may carry EXPUNGE.
    s.feed("u UID FETCH 1:* FLAGS\r\n");
    let Some(Event::Command(r)) = s.event() else {
        panic!()
    };
    assert!(r.uid);
    s.conn.reply(Status::ok("done")).unwrap();
    assert_eq!(s.out(), "* 3 EXPUNGE\r\n* 9 EXISTS\r\nu OK done\r\n");
    // NOOP in the selected state goes to the application (to poll the mailbox) and flushes.
    s.conn
        .queue_unsolicited(Unsolicited::Vanished(vec![(5, 7), (9, 9)]));
    s.feed("n NOOP\r\n");
    let Some(Event::Command(r)) = s.event() else {
        panic!()
    };
    assert_eq!(r.name, "NOOP");
    s.conn.reply(Status::ok("NOOP completed")).unwrap();
    assert_eq!(s.out(), "* VANISHED 5:7,9\r\nn OK NOOP completed\r\n");
}

#[test]
fn rev1_and_rev2_semantics() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.conn.queue_unsolicited(Unsolicited::Recent(1));
    s.conn.queue_unsolicited(Unsolicited::Fetch {
        seq: 2,
        uid: None,
        flags: vec!["\\Seen".into()],
        modseq: Some(5),
    });
    s.feed("n NOOP\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn.reply(Status::ok("NOOP completed")).unwrap();
    assert_eq!(
        s.out(),
        "* 1 RECENT\r\n* 2 FETCH (FLAGS (\\Seen))\r\nn OK NOOP completed\r\n"
    );
    // ENABLE is only valid in the authenticated state.
    s.feed("e ENABLE IMAP4rev2\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "e BAD ENABLE is only valid in the authenticated state\r\n"
    );

    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("e ENABLE IMAP4rev2 QRESYNC X-UNKNOWN\r\n");
    assert_eq!(
        s.event(),
        Some(Event::Enabled(vec!["IMAP4rev2".into(), "QRESYNC".into()]))
    );
    assert_eq!(
        s.out(),
        "* ENABLED IMAP4rev2 QRESYNC\r\ne OK ENABLE completed\r\n"
    );
    assert!(s.conn.enabled().condstore, "QRESYNC implies CONDSTORE");
    s.feed("e2 ENABLE IMAP4rev2\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "* ENABLED\r\ne2 OK ENABLE completed\r\n");
    s.feed("S SELECT INBOX\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn.reply(Status::ok("ok")).unwrap();
    s.out();
    s.conn.queue_unsolicited(Unsolicited::Recent(1));
    s.conn.queue_unsolicited(Unsolicited::Fetch {
        seq: 2,
        uid: Some(4),
        flags: vec![],
        modseq: Some(5),
    });
    s.feed("n NOOP\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn.reply(Status::ok("NOOP completed")).unwrap();
    assert_eq!(
        s.out(),
        "* 2 FETCH (UID 4 FLAGS () MODSEQ (5))\r\nn OK NOOP completed\r\n"
    );
}

#[test]
fn starttls_discards_pipelined_plaintext() {
    let mut config = Config::default();
    config.starttls = true;
    let mut s = Srv::new(config);
    s.out();
    s.feed("a STARTTLS\r\nb LOGIN evil injected\r\n");
    assert_eq!(s.event(), Some(Event::StartTls));
    s.feed("c LOGIN more plaintext\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "a OK Proceed with TLS negotiation\r\n");
    s.conn.tls_established().unwrap();
    assert_eq!(
        s.event(),
        None,
        "nothing from before the handshake survives"
    );
    assert_eq!(s.out(), "");
    s.feed("d CAPABILITY\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        format!("* CAPABILITY {PRE} AUTH=PLAIN\r\nd OK CAPABILITY completed\r\n")
    );
    s.feed("e STARTTLS\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "e BAD TLS is already active\r\n");
}

#[test]
fn authenticate_cancel_and_bad_base64() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a AUTHENTICATE PLAIN\r\n");
    assert!(matches!(
        s.event(),
        Some(Event::AuthStart { initial: None, .. })
    ));
    s.conn.auth_challenge(b"").unwrap();
    assert_eq!(s.out(), "+ \r\n");
    s.feed("*\r\n");
    assert_eq!(s.event(), Some(Event::AuthAborted));
    assert_eq!(s.out(), "a BAD Authentication cancelled\r\n");
    s.feed("b AUTHENTICATE PLAIN =\r\n");
    match s.event() {
        Some(Event::AuthStart {
            initial: Some(i), ..
        }) => assert!(i.expose().is_empty()),
        other => panic!("{other:?}"),
    }
    s.conn.auth_challenge(b"").unwrap();
    s.feed("!!!\r\n");
    assert_eq!(s.event(), Some(Event::AuthAborted));
    assert_eq!(
        s.out(),
        "+ \r\nb BAD Invalid base64 in authentication data\r\n"
    );
    s.feed("c AUTHENTICATE X-UNKNOWN\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(s.out(), "c NO Unsupported authentication mechanism\r\n");
}

#[test]
fn failed_login_is_delayed_and_limited() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    let t0 = s.now;
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        s.feed(&format!("{tag} LOGIN u wrong\r\n"));
        assert!(matches!(s.event(), Some(Event::Login { .. })));
        let now = t0 + Duration::from_secs(10 * i as u64);
        s.conn.handle_timeout(now);
        s.conn
            .reply(Status::no("Invalid credentials").with_code("AUTHENTICATIONFAILED"))
            .unwrap();
        assert_eq!(s.out(), "", "held back during the delay");
        assert_eq!(s.conn.poll_timeout(), Some(now + Duration::from_secs(2)));
        s.conn.handle_timeout(now + Duration::from_secs(2));
        let expect = format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
        if i < 2 {
            assert_eq!(s.out(), expect);
        } else {
            assert_eq!(
                s.out(),
                format!("{expect}* BYE Too many authentication failures\r\n")
            );
        }
    }
    assert!(s.conn.is_closed());
}

#[test]
fn autologout_after_inactivity() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    let t = s.now;
    let deadline = s.conn.poll_timeout().unwrap();
    assert!(
        deadline >= t + Duration::from_secs(30 * 60),
        "at least 30 minutes (RFC 9051 5.4)"
    );
    // Activity re-arms the timer instead of logging out.
    s.feed("x NOOP\r\n");
    assert_eq!(s.event(), None);
    s.out();
    s.conn.handle_timeout(deadline);
    assert!(!s.conn.is_closed());
    let d2 = s.conn.poll_timeout().unwrap();
    assert_eq!(d2, deadline + Duration::from_secs(30 * 60));
    s.conn.handle_timeout(d2);
    assert_eq!(s.out(), "* BYE Autologout; idle for too long\r\n");
    assert!(s.conn.is_closed());
}

#[test]
fn wrong_state_and_bad_input() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a SELECT INBOX\r\nb+ NOOP\r\n* NOOP\r\nc\r\nd FROB\r\ne CAPABILITY x\r\n\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a BAD Authenticate first\r\n* BAD Invalid tag\r\n* BAD Invalid tag\r\nc BAD Missing command\r\n\
         d BAD Unknown command\r\ne BAD CAPABILITY takes no arguments\r\n"
    );
    s.login();
    s.feed("f FETCH 1 FLAGS\r\ng UID FROB 1\r\nh LOGIN a b\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "f BAD No mailbox selected\r\ng BAD Unknown command\r\nh BAD Already authenticated\r\n"
    );
}

#[test]
fn one_mebibyte_line_is_refused_with_bounded_memory() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    s.feed("a1 SEARCH ");
    let chunk = "X".repeat(64 * 1024);
    for _ in 0..16 {
        s.feed(&chunk);
        assert_eq!(s.event(), None);
    }
    s.feed("\r\nb NOOP\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "a1 BAD Command line too long\r\nb OK NOOP completed\r\n"
    );
}

#[test]
fn too_many_bad_commands_disconnects() {
    let mut s = Srv::new(Srv::plain_config());
    s.out();
    for _ in 0..20 {
        s.feed("x FROB\r\n");
    }
    assert_eq!(s.event(), None);
    let out = s.out();
    assert!(out.ends_with("x BAD Unknown command\r\n* BYE Too many invalid commands\r\n"));
    assert!(s.conn.is_closed());
}

#[test]
fn compress_hands_over_already_compressed_input() {
    let mut s = Srv::new(Srv::plain_config());
    s.login();
    s.feed("z COMPRESS DEFLATE\r\n\x01\x02");
    assert_eq!(s.event(), Some(Event::StartCompression));
    assert_eq!(s.out(), "z OK DEFLATE active\r\n");
    assert_eq!(&s.conn.compression_started().unwrap()[..], b"\x01\x02");
    assert!(
        !s.conn
            .capabilities()
            .contains(&"COMPRESS=DEFLATE".to_string())
    );
    s.feed("y COMPRESS DEFLATE\r\n");
    assert_eq!(s.event(), None);
    assert_eq!(
        s.out(),
        "y NO [COMPRESSIONACTIVE] Compression is already active\r\n"
    );
}

#[test]
fn select_failure_and_close_change_state() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.conn.queue_unsolicited(Unsolicited::Exists(3));
    s.feed("e EXAMINE nosuch\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn.reply(Status::no("No such mailbox")).unwrap();
    assert_eq!(s.conn.state(), State::Authenticated);
    assert_eq!(
        s.out(),
        "* OK [CLOSED] Previous mailbox closed\r\ne NO No such mailbox\r\n",
        "updates of the old mailbox are dropped"
    );
    s.feed("e EXAMINE INBOX\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn
        .reply(Status::ok("EXAMINE completed").with_code("READ-ONLY"))
        .unwrap();
    assert_eq!(s.conn.state(), State::Selected { read_only: true });
    s.feed("c UNSELECT\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    s.conn.reply(Status::ok("UNSELECT completed")).unwrap();
    assert_eq!(s.conn.state(), State::Authenticated);
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut s = Srv::new(Srv::plain_config());
    assert!(s.conn.reply(Status::ok("x")).is_err());
    assert!(s.conn.accept_append().is_err());
    assert!(s.conn.send_untagged(b"1 EXISTS").is_err());
    assert!(s.conn.tls_established().is_err());
    assert!(s.conn.auth_challenge(b"x").is_err());
    s.select();
    s.feed("f FETCH 1 BODY[]\r\n");
    let Some(Event::Command(_)) = s.event() else {
        panic!()
    };
    assert!(s.conn.send_untagged(b"bad\r\nline").is_err());
    s.conn.begin_literal(b"1 FETCH (BODY[] ", 3).unwrap();
    assert!(s.conn.literal_chunk(b"abcd").is_err());
    assert!(s.conn.end_literal(b")").is_err());
    s.conn.literal_chunk(b"abc").unwrap();
    s.conn.end_literal(b")").unwrap();
    s.conn.reply(Status::ok("x\r\ny")).unwrap();
    assert_eq!(s.out(), "* 1 FETCH (BODY[] {3}\r\nabc)\r\nf OK x  y\r\n");
}

#[test]
fn reselect_reports_closed_and_syntax_errors_are_bad() {
    let mut s = Srv::new(Srv::plain_config());
    s.select();
    s.conn.queue_unsolicited(Unsolicited::Exists(9));
    s.feed("s2 SELECT Sent\r\n");
    let Some(Event::Command(r)) = s.event() else {
        panic!()
    };
    assert!(matches!(
        r.command.body,
        imap_proto::types::CommandBody::Select { .. }
    ));
    s.conn
        .reply(Status::ok("SELECT completed").with_code("READ-WRITE"))
        .unwrap();
    assert_eq!(
        s.out(),
        "* OK [CLOSED] Previous mailbox closed\r\ns2 OK [READ-WRITE] SELECT completed\r\n"
    );
    s.feed("f FETCH x FLAGS\r\n");
    assert_eq!(s.event(), None);
    let out = s.out();
    assert!(out.starts_with("f BAD Syntax error: "), "{out}");
}
