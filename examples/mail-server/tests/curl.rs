//! curl against the running server: SMTP submission over implicit TLS, then IMAP over
//! implicit TLS (SEARCH, FETCH by UID) and IMAP with STARTTLS (`--ssl-reqd`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Env;

fn curl(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "60"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = common::wait_output(child, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_submits_over_smtps_and_reads_over_imap() {
    if !common::have(
        "curl",
        "the test uses curl's smtps:// and imap(s):// support",
    ) {
        return;
    }
    // No clear-text networks: curl must use TLS on every port.
    let env = Env::with_listeners(
        "[auth]\nplaintext_networks = []\n",
        "imap = \"127.0.0.1:0\"\nimaps = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    let server = env.start();
    let subs = server.listeners["submissions"].port();
    let imaps = server.listeners["imaps"].port();
    let imap = server.listeners["imap"].port();
    let message = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: via curl\r\n\r\nhello from curl\r\n";
    curl(
        &[
            "--user",
            "alice@example.test:alice-pw",
            "--mail-from",
            "alice@example.test",
            "--mail-rcpt",
            "bob@example.test",
            "--upload-file",
            "-",
            &format!("smtps://127.0.0.1:{subs}/"),
        ],
        message,
    );
    let search = curl(
        &[
            "--user",
            "bob@example.test:bob-pw",
            "--request",
            "UID SEARCH ALL",
            &format!("imaps://127.0.0.1:{imaps}/INBOX"),
        ],
        b"",
    );
    assert_eq!(search.trim(), "* SEARCH 1", "{search}");
    let body = curl(
        &[
            "--user",
            "bob@example.test:bob-pw",
            &format!("imaps://127.0.0.1:{imaps}/INBOX;UID=1"),
        ],
        b"",
    );
    assert!(body.contains("\r\nSubject: via curl\r\n"), "{body}");
    assert!(
        body.contains("Received: "),
        "the submission server added a Received field: {body}"
    );
    assert!(body.ends_with("hello from curl\r\n"), "{body:?}");
    // STARTTLS on the plain port, required by --ssl-reqd.
    let list = curl(
        &[
            "--ssl-reqd",
            "--user",
            "bob@example.test:bob-pw",
            &format!("imap://127.0.0.1:{imap}/"),
        ],
        b"",
    );
    assert!(list.contains("\"/\" INBOX"), "{list}");
    assert!(list.contains("\\Sent"), "{list}");
}
