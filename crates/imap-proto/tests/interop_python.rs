//! Python's imaplib against our tokio server (in-memory backend): login, list, select,
//! fetch, store, search, append, logout; plain and STARTTLS.
#![cfg(feature = "tokio")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::memory::MemBackend;

const SCRIPT: &str = r#"
import imaplib, ssl, sys
port, tls = int(sys.argv[1]), sys.argv[2] == "starttls"
M = imaplib.IMAP4("127.0.0.1", port)
if tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    M.starttls(ssl_context=ctx)
print("CAPS", " ".join(sorted(M.capabilities)))
print("LOGIN", M.login("user", "pass")[0])
typ, data = M.list()
print("LIST", typ, "|".join(d.decode() for d in data))
typ, data = M.select("INBOX")
print("SELECT", typ, data[0].decode())
typ, data = M.fetch("1:3", "(UID FLAGS RFC822.SIZE)")
print("FETCH", typ, "|".join(d.decode() for d in data))
typ, data = M.fetch("2", "(BODY.PEEK[])")
print("BODY", typ, data[0][1].decode().replace("\r\n", "/"))
typ, data = M.store("1", "+FLAGS", "\\Flagged")
print("STORE", typ, data[0].decode())
typ, data = M.search(None, "UNSEEN")
print("SEARCH", typ, data[0].decode())
typ, data = M.append("INBOX", "(\\Seen)", None, b"Subject: from python\r\n\r\nhi\r\n")
print("APPEND", typ, data[0].decode())
typ, data = M.uid("SEARCH", None, "ALL")
print("UIDSEARCH", typ, data[0].decode())
typ, data = M.uid("FETCH", "4", "(RFC822)")
print("UIDFETCH", typ, data[0][1].decode().replace("\r\n", "/"))
print("LOGOUT", M.logout()[0])
"#;

async fn run_python(port: u16, mode: &str) -> String {
    let mode = mode.to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("timeout")
                .arg("50")
                .arg("python3")
                .arg("-c")
                .arg(SCRIPT)
                .arg(port.to_string())
                .arg(mode)
                .output()
        }),
    )
    .await
    .expect("python3 timed out")
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn check(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    let find = |p: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("no {p} in {out}"))
    };
    assert!(find("CAPS").contains("IMAP4REV1"), "{out}");
    assert_eq!(find("LOGIN"), "LOGIN OK");
    assert_eq!(
        find("LIST"),
        "LIST OK (\\HasNoChildren) \"/\" INBOX|(\\HasNoChildren \\Sent) \"/\" Sent|(\\HasNoChildren \\Trash) \"/\" Trash"
    );
    assert_eq!(find("SELECT"), "SELECT OK 3");
    assert_eq!(
        find("FETCH"),
        "FETCH OK 1 (FLAGS () UID 1 RFC822.SIZE 54)|2 (FLAGS (\\Seen) UID 2 RFC822.SIZE 53)|3 (FLAGS (\\Flagged) UID 3 RFC822.SIZE 56)"
    );
    assert_eq!(
        find("BODY"),
        "BODY OK From: bob@example.org/Subject: second//Hello two/"
    );
    assert_eq!(find("STORE"), "STORE OK 1 (FLAGS (\\Flagged))");
    assert_eq!(find("SEARCH"), "SEARCH OK 1 3");
    assert!(
        find("APPEND").starts_with("APPEND OK [APPENDUID 1700000000 4]"),
        "{out}"
    );
    assert_eq!(find("UIDSEARCH"), "UIDSEARCH OK 1 2 3 4");
    assert_eq!(find("UIDFETCH"), "UIDFETCH OK Subject: from python//hi/");
    assert_eq!(find("LOGOUT"), "LOGOUT BYE");
}

#[tokio::test]
async fn imaplib_plain() {
    if !mail_testkit::peer::require("python3", "imaplib interop") {
        return;
    }
    let addr = common::start_server(common::plain_serve_config(), MemBackend::new()).await;
    check(&run_python(addr.port(), "plain").await);
}

#[tokio::test]
async fn imaplib_starttls() {
    if !mail_testkit::peer::require("python3", "imaplib interop") {
        return;
    }
    let cert = mail_net::DevCertificate::generate(&["localhost"]).unwrap();
    let mut config = imap_proto::tokio::ServeConfig::default();
    config.tls = Some(mail_net::TlsAcceptor::from(cert.server_config().unwrap()));
    let addr = common::start_server(config, MemBackend::new()).await;
    let out = run_python(addr.port(), "starttls").await;
    assert!(
        !out.contains("STARTTLS"),
        "capabilities after TLS must not offer STARTTLS: {out}"
    );
    check(&out);
}
