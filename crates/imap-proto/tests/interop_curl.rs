//! curl's `imap://` client against our tokio server (in-memory backend): STARTTLS required,
//! login, LIST, SELECT + FETCH of a message, SEARCH, STORE, APPEND (upload), LOGOUT.
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

async fn curl(args: Vec<String>) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-s", "-S", "--max-time", "30"])
                .args(&args)
                .output()
        }),
    )
    .await
    .expect("curl timed out")
    .unwrap()
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn curl_over_starttls() {
    if !mail_testkit::peer::require("curl", "curl imap:// interop") {
        return;
    }
    let cert = mail_net::DevCertificate::generate(&["localhost"]).unwrap();
    let mut config = imap_proto::tokio::ServeConfig::default();
    config.tls = Some(mail_net::TlsAcceptor::from(cert.server_config().unwrap()));
    let backend = MemBackend::new();
    let addr = common::start_server(config, backend.clone()).await;
    let base = format!("imap://127.0.0.1:{}", addr.port());
    let auth = |mut v: Vec<String>| {
        v.splice(
            0..0,
            ["--ssl-reqd", "-k", "-u", "user:pass"].map(String::from),
        );
        v
    };

    // LIST
    let (ok, out, err) = curl(auth(vec![format!("{base}/")])).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
    );

    // SELECT + FETCH of message UID 2 (curl sends SELECT, then UID FETCH 2 BODY[]).
    let (ok, out, err) = curl(auth(vec![format!("{base}/INBOX;UID=2")])).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "From: bob@example.org\r\nSubject: second\r\n\r\nHello two\r\n"
    );

    // SEARCH through a URL query.
    let (ok, out, err) = curl(auth(vec![format!("{base}/INBOX?UNSEEN")])).await;
    assert!(ok, "{err}");
    assert_eq!(out, "* SEARCH 1 3\r\n");

    // STORE through a custom request.
    let (ok, out, err) = curl(auth(vec![
        format!("{base}/INBOX"),
        "-X".into(),
        "STORE 1 +FLAGS \\Deleted".into(),
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "* 1 FETCH (FLAGS (\\Deleted))\r\n");

    // APPEND (upload).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    std::fs::write(&file, b"Subject: via curl\r\n\r\nuploaded\r\n").unwrap();
    let (ok, _, err) = curl(auth(vec![
        "-T".into(),
        file.display().to_string(),
        format!("{base}/Sent"),
    ]))
    .await;
    assert!(ok, "{err}");
    let store = backend.store.lock().unwrap();
    let sent = &store.mailboxes["Sent"].msgs;
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0].body[..], b"Subject: via curl\r\n\r\nuploaded\r\n");
    let inbox = &store.mailboxes["INBOX"].msgs;
    assert!(inbox[0].flags.contains(&imap_proto::types::Flag::Deleted));
}

#[tokio::test]
async fn curl_refuses_plaintext_login_when_logindisabled() {
    if !mail_testkit::peer::require("curl", "curl imap:// interop") {
        return;
    }
    let addr =
        common::start_server(imap_proto::tokio::ServeConfig::default(), MemBackend::new()).await;
    let (ok, _, _) = curl(vec![
        "-u".into(),
        "user:pass".into(),
        format!("imap://127.0.0.1:{}/", addr.port()),
    ])
    .await;
    assert!(!ok, "LOGIN must be refused before TLS");
}
