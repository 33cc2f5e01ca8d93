//! The launcher against the real Dovecot: every protocol's greeting on its port, a seeded
//! message visible over POP3, logins over POP3 and IMAP, the LMTP greeting, and an explicit stop that closes the
//! ports. Skips (or fails under MAIL_INTEROP_REQUIRED=1) without Dovecot or root.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mail_testkit::dovecot::{Dovecot, Protocol};
use mail_testkit::{net, peer, poll};

/// The two tests run one at a time: each checks that ports are closed, which another
/// instance starting at the same moment could reopen (a freed port is handed out again).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Line(BufReader<TcpStream>);

impl Line {
    fn connect(port: u16) -> Self {
        let s = TcpStream::connect(net::localhost(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self(BufReader::new(s))
    }
    fn read(&mut self) -> String {
        let mut l = String::new();
        self.0.read_line(&mut l).unwrap();
        l
    }
    fn send(&mut self, l: &str) -> String {
        self.0.get_mut().write_all(l.as_bytes()).unwrap();
        self.read()
    }
}

fn tls_pair(dir: &std::path::Path) -> Option<(String, String)> {
    if !peer::require("openssl", "a self-signed certificate for Dovecot") {
        return None;
    }
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let ran = mail_testkit::process::run(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    assert!(ran.ok, "{}", ran.stderr);
    Some((
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    ))
}

#[test]
fn serves_seeded_mail_and_stops() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tmp = tempfile::tempdir().unwrap();
    let Some((cert, key)) = tls_pair(tmp.path()) else {
        return;
    };
    let Some(mut d) = Dovecot::builder("mail-testkit")
        .protocol(Protocol::Imap)
        .protocol(Protocol::Pop3)
        .protocol(Protocol::Lmtp)
        .user("tester", "secret")
        .user("other", "secret")
        .tls(&cert, &key)
        .separator('.')
        .mailbox("Sent Messages", "\\Sent")
        .start()
    else {
        return;
    };
    d.deliver(
        "tester",
        "INBOX",
        "1.M1.test",
        b"Subject: one\r\n\r\nbody\r\n",
    );
    d.seed(
        "tester",
        "Sent Messages",
        "2.M2.test",
        "S",
        1_600_000_000,
        b"Subject: two\r\n\r\nx\r\n",
    );
    assert!(
        d.maildir("tester", "Sent Messages")
            .join("cur/2.M2.test:2,S")
            .is_file()
    );

    let mut pop = Line::connect(d.pop3());
    assert!(pop.read().starts_with("+OK"), "{}", d.log());
    assert!(pop.send("USER tester\r\n").starts_with("+OK"));
    assert!(
        pop.send("PASS secret\r\n").starts_with("+OK"),
        "{}",
        d.log()
    );
    assert_eq!(pop.send("STAT\r\n"), "+OK 1 22\r\n");
    assert!(pop.send("QUIT\r\n").starts_with("+OK"));

    let mut imap = Line::connect(d.imap());
    assert!(imap.read().starts_with("* OK"));
    assert!(
        imap.send("a LOGIN other secret\r\n").starts_with("a OK"),
        "{}",
        d.log()
    );
    assert!(imap.send("b LOGOUT\r\n").starts_with("* BYE"));

    let mut lmtp = Line::connect(d.lmtp());
    assert!(lmtp.read().starts_with("220 "));

    // Implicit-TLS ports accept connections (the handshake is the clients' business).
    TcpStream::connect(net::localhost(d.imaps())).unwrap();
    TcpStream::connect(net::localhost(d.pop3s())).unwrap();

    let port = d.pop3();
    d.stop();
    // The listening socket goes with the last process that held it (bounded wait).
    assert!(
        poll::until(Instant::now() + Duration::from_secs(5), || {
            TcpStream::connect(net::localhost(port)).is_err()
        }),
        "port {port} still accepts connections after stop"
    );
    // Stopping twice (and the drop after it) is harmless.
    d.stop();
    d.stopper().stop();
    assert!(net::wait_for_port(net::localhost(port), Instant::now()).is_err());
}

#[test]
fn ports_not_configured_are_refused() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(d) = Dovecot::builder("mail-testkit")
        .protocol(Protocol::Pop3)
        .user("tester", "secret")
        .start()
    else {
        return;
    };
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.lmtp())).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert_eq!(msg, "this Dovecot has no LMTP listener (see Builder)");
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.pop3s())).is_err());
    assert_ne!(d.pop3(), 0);
}
