//! Client state machine: events for server bytes, split anywhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::Bytes;
use pop3_proto::client::{Config, Connection, Event};
use pop3_proto::types::{
    Capability, Command, Response, ResponseCode, ScanListing, UidListing, secret,
};

const SERVER: &[u8] = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n\
+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN\r\n.\r\n\
+OK send PASS\r\n\
-ERR [AUTH] invalid password\r\n\
+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n\
+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n\
+OK 120 octets\r\nSubject: x\r\n\r\n..dot\r\n..\r\nnot the end\r\n\r\n.\r\n\
+OK dewey POP3 server signing off\r\n";

fn commands(c: &mut Connection) {
    for cmd in [
        Command::Capa,
        Command::User(Bytes::from_static(b"mrose")),
        Command::Pass(secret(&b"wrong"[..])),
        Command::List(None),
        Command::Uidl(None),
        Command::Retr(1),
        Command::Quit,
    ] {
        c.send(cmd).unwrap();
    }
}

fn collect(split: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let mut c = Connection::new(Config::default());
    commands(&mut c);
    assert!(c.take_output().unwrap().starts_with(b"CAPA\r\n"));
    let mut events = Vec::new();
    let mut pos = 0;
    for &s in split.iter().chain(std::iter::once(&SERVER.len())) {
        c.feed(&SERVER[pos..s]);
        pos = s;
        while let Some(e) = c.next_event() {
            events.push(e);
        }
    }
    assert!(c.is_closed());
    // Merge body chunks so different splits compare equal.
    let mut merged: Vec<Event> = Vec::new();
    let mut body = Vec::new();
    for e in events {
        match e {
            Event::BodyChunk(b) => body.extend_from_slice(&b),
            e => merged.push(e),
        }
    }
    (merged, body)
}

#[test]
fn pipelined_session_events() {
    let mut c = Connection::new(Config::default());
    commands(&mut c);
    assert_eq!(
        &c.take_output().unwrap()[..],
        b"CAPA\r\nUSER mrose\r\nPASS wrong\r\nLIST\r\nUIDL\r\nRETR 1\r\nQUIT\r\n"
    );
    let (events, body) = collect(&[]);
    let r = |command, response| Event::Response { command, response };
    assert_eq!(
        events,
        vec![
            Event::Greeting {
                response: Response::ok("POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
                timestamp: Some(Bytes::from_static(b"<1896.697170952@dbc.mtview.ca.us>")),
            },
            r("CAPA", Response::ok("Capability list follows")),
            Event::Capability(Capability::Top),
            Event::Capability(Capability::User),
            Event::Capability(Capability::Sasl(vec![Bytes::from_static(b"PLAIN")])),
            Event::End,
            r("USER", Response::ok("send PASS")),
            r(
                "PASS",
                Response::err_code(ResponseCode::Auth, "invalid password")
            ),
            r("LIST", Response::ok("2 messages (320 octets)")),
            Event::Listing(ScanListing { msg: 1, size: 120 }),
            Event::Listing(ScanListing { msg: 2, size: 200 }),
            Event::End,
            r("UIDL", Response::ok("")),
            Event::UniqueId(UidListing {
                msg: 1,
                uid: Bytes::from_static(b"whqtswO00WBw418f9t5JxYwZ")
            }),
            Event::UniqueId(UidListing {
                msg: 2,
                uid: Bytes::from_static(b"QhdPYR:00WBw1Ph7x7")
            }),
            Event::End,
            r("RETR", Response::ok("120 octets")),
            Event::End,
            r("QUIT", Response::ok("dewey POP3 server signing off")),
        ]
    );
    assert_eq!(body, b"Subject: x\r\n\r\n.dot\r\n.\r\nnot the end\r\n\r\n");
}

#[test]
fn same_events_for_every_split_point() {
    let (want, want_body) = collect(&[]);
    for a in 1..SERVER.len() {
        let (got, body) = collect(&[a]);
        assert_eq!(got, want, "split at {a}");
        assert_eq!(body, want_body, "split at {a}");
    }
    // Byte by byte.
    let all: Vec<usize> = (1..SERVER.len()).collect();
    let (got, body) = collect(&all);
    assert_eq!((got, body), (want, want_body));
}

#[test]
fn sasl_challenges_and_cancel() {
    let mut c = Connection::new(Config::default());
    c.feed(b"+OK hi\r\n");
    assert!(matches!(
        c.next_event(),
        Some(Event::Greeting {
            timestamp: None,
            ..
        })
    ));
    c.send(Command::Auth {
        mechanism: Bytes::from_static(b"PLAIN"),
        initial_response: None,
    })
    .unwrap();
    assert_eq!(&c.take_output().unwrap()[..], b"AUTH PLAIN\r\n");
    c.feed(b"+ \r\n");
    assert_eq!(c.next_event(), Some(Event::Challenge(Bytes::new())));
    c.send_sasl_response(Some(&secret(&b"\0u\0p"[..])));
    assert_eq!(&c.take_output().unwrap()[..], b"AHUAcA==\r\n");
    c.feed(b"+ Zm9v\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Challenge(Bytes::from_static(b"foo")))
    );
    c.send_sasl_response(None);
    assert_eq!(&c.take_output().unwrap()[..], b"*\r\n");
    c.feed(b"-ERR cancelled\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Response {
            command: "AUTH",
            response: Response::err("cancelled")
        })
    );
    assert!(!c.is_busy());
}

#[test]
fn stls_discards_bytes_before_the_handshake() {
    let mut c = Connection::new(Config::default());
    c.feed(b"+OK hi\r\n");
    let _ = c.next_event();
    c.send(Command::Stls).unwrap();
    c.feed(b"+OK begin\r\n+OK injected by a man in the middle\r\n");
    assert!(matches!(
        c.next_event(),
        Some(Event::Response {
            command: "STLS",
            ..
        })
    ));
    assert_eq!(c.next_event(), None);
    assert!(c.send(Command::Noop).is_err());
    c.tls_established();
    c.send(Command::Noop).unwrap();
    c.feed(b"+OK\r\n");
    assert_eq!(
        c.next_event(),
        Some(Event::Response {
            command: "NOOP",
            response: Response::ok("")
        })
    );
}

#[test]
fn err_greeting_closes_and_overlong_line_is_an_error() {
    let mut c = Connection::new(Config::default());
    c.feed(b"-ERR [SYS/TEMP] too busy\r\n");
    assert!(matches!(c.next_event(), Some(Event::Greeting { .. })));
    assert!(c.is_closed());

    let mut cfg = Config::default();
    cfg.limits.line_length = 10;
    let mut c = Connection::new(cfg);
    c.feed(b"+OK aaaaaaaaaaaaaaaaaaaaaa");
    assert!(matches!(c.next_event(), Some(Event::Malformed(_))));
    assert!(c.is_closed());
}
