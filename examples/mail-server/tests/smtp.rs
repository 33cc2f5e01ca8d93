//! SMTP into the store: inbound (MX) for local domains, submission with AUTH (STARTTLS
//! and implicit TLS), LMTP; driven by Python's smtplib, checked through POP3.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Env, Server, python};
use pop3_proto::tokio::Client;

const PY_WHY: &str = "the SMTP tests drive the server with Python's smtplib";

fn listeners() -> &'static str {
    "smtp = \"127.0.0.1:0\"\nsubmission = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\nlmtp = \"127.0.0.1:0\"\n"
}

fn py(server: &Server) -> String {
    format!(
        "import smtplib, ssl\nctx = ssl._create_unverified_context()\nHOST = '127.0.0.1'\nMX = {}\nSUB = {}\nSUBS = {}\nLMTP = {}\nMSG = b'Subject: hi\\r\\nFrom: a@example.org\\r\\n\\r\\nhello\\r\\n'\n",
        server.listeners["smtp"].port(),
        server.listeners["submission"].port(),
        server.listeners["submissions"].port(),
        server.listeners["lmtp"].port(),
    )
}

async fn inbox(server: &Server, user: &str, pw: &str) -> Vec<Vec<u8>> {
    let mut c = Client::connect(server.pop3()).await.unwrap();
    c.login(user, pw).await.unwrap();
    let (n, _) = c.stat().await.unwrap();
    let mut out = Vec::new();
    for i in 1..=n {
        out.push(c.retr(i).await.unwrap());
    }
    c.quit().await.unwrap();
    out
}

#[test]
fn smtp_mx_submission_and_lmtp_deliver_into_the_store() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", listeners());
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.org"], b"bob-pw\n");
    let server = env.start();
    let banner = server.banner.join("\n");
    assert!(
        banner.contains("(plaintext, STARTTLS offered, AUTH required)"),
        "{banner}"
    );
    let app = env.admin_ok(
        &["app-password", "add", "alice@example.test", "laptop"],
        b"",
    );
    let app = app
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();

    let script = format!(
        r#"{}
# MX: local recipient accepted, unknown local user and foreign domain refused.
s = smtplib.SMTP(HOST, MX)
print(s.ehlo()[0], 'starttls' in s.esmtp_features, 'auth' in s.esmtp_features)
print(s.mail('someone@example.net'))
print(s.rcpt('alice@example.test')[0], s.rcpt('nobody@example.test')[0], s.rcpt('x@elsewhere.net')[0])
print(s.data(MSG)[0])
s.quit()

# Submission on 587: no AUTH before STARTTLS; then AUTH with the app password.
s = smtplib.SMTP(HOST, SUB)
s.ehlo()
print('auth' in s.esmtp_features)
s.starttls(context=ctx)
s.ehlo()
print('auth' in s.esmtp_features)
try:
    s.login('alice@example.test', 'wrong')
except smtplib.SMTPAuthenticationError as e:
    print('bad login', e.smtp_code)
print(s.login('alice@example.test', '{app}')[0])
print(s.mail('mallory@example.test')[0])
s.rset()
print(s.mail('alice@example.test')[0])
print(s.rcpt('bob@example.org')[0], s.rcpt('friend@elsewhere.net')[0])
print(s.data(MSG)[0])
s.quit()

# Submission without AUTH is refused.
s = smtplib.SMTP(HOST, SUB)
s.starttls(context=ctx)
s.ehlo()
print(s.mail('alice@example.test')[0])
s.quit()

# Implicit TLS (465).
s = smtplib.SMTP_SSL(HOST, SUBS, context=ctx)
s.login('bob@example.org', 'bob-pw')
print(s.sendmail('bob@example.org', ['alice@example.test'], MSG))
s.quit()

# LMTP: one reply per recipient.
l = smtplib.LMTP(HOST, LMTP)
print(l.sendmail('a@example.org', ['alice@example.test', 'bob@example.org'], MSG))
l.quit()
"#,
        py(&server)
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "250 True False");
    assert!(lines[1].starts_with("(250, "), "{}", lines[1]);
    assert_eq!(lines[2], "250 550 554");
    assert_eq!(lines[3], "250");
    // Loopback is in the tests' `plaintext_networks`; tests/security.rs checks that AUTH
    // is not offered before STARTTLS to other clients.
    assert_eq!(lines[4], "True", "AUTH offered to a trusted network");
    assert_eq!(lines[5], "True");
    assert_eq!(lines[6], "bad login 535");
    assert_eq!(lines[7], "235");
    assert_eq!(lines[8], "553");
    assert_eq!(lines[9], "250");
    assert_eq!(lines[10], "250 550");
    assert_eq!(lines[11], "250");
    assert_eq!(lines[12], "530");
    assert_eq!(lines[13], "{}");
    assert_eq!(lines[14], "{}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let alice = inbox(&server, "alice@example.test", "alice-pw").await;
            let bob = inbox(&server, "bob@example.org", "bob-pw").await;
            // alice: MX + submissions (from bob) + LMTP; bob: submission + LMTP.
            assert_eq!(alice.len(), 3);
            assert_eq!(bob.len(), 2);
            for m in alice.iter().chain(bob.iter()) {
                let text = String::from_utf8_lossy(m);
                assert!(text.starts_with("Received: from "), "{text}");
                assert!(
                    text.ends_with("Subject: hi\r\nFrom: a@example.org\r\n\r\nhello\r\n"),
                    "{text}"
                );
            }
            assert!(String::from_utf8_lossy(&alice[0]).contains("with ESMTP;"));
            assert!(String::from_utf8_lossy(&bob[0]).contains("with ESMTPSA;"));
            assert!(String::from_utf8_lossy(&alice[2]).contains("with LMTP;"));
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn swaks_submits_with_starttls_and_auth_plain() {
    if !mail_testkit::peer::require_swaks_tls("the submission interop test uses swaks --tls") {
        return;
    }
    let env = Env::with_listeners("", listeners());
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.org"], b"bob-pw\n");
    let server = env.start();
    let port = server.listeners["submission"].port().to_string();
    let run = |password: &str| {
        std::process::Command::new("swaks")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port,
                "--tls",
                "--auth",
                "PLAIN",
                "--auth-user",
                "alice@example.test",
                "--auth-password",
                password,
                "--from",
                "alice@example.test",
                "--to",
                "bob@example.org",
                "--header",
                "Subject: via swaks",
                "--body",
                "hello from swaks",
                "--timeout",
                "30",
            ])
            .output()
            .unwrap()
    };
    let out = run("wrong");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<~* 535"),
        "{out:?}"
    );
    let out = run("alice-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let bob = inbox(&server, "bob@example.org", "bob-pw").await;
            assert_eq!(bob.len(), 1);
            let text = String::from_utf8_lossy(&bob[0]);
            assert!(text.contains("Subject: via swaks\r\n"), "{text}");
            assert!(text.contains("hello from swaks"), "{text}");
            assert!(text.contains("with ESMTPSA;"), "{text}");
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn smtp_limits_come_from_the_configuration() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("[smtp]\nmax_recipients = 2\n", listeners());
    for u in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
    ] {
        env.admin_ok(&["user", "add", u], b"pw\n");
    }
    let server = env.start();
    let script = format!(
        r#"{}
s = smtplib.SMTP(HOST, MX)
s.ehlo()
s.mail('someone@example.net')
print(s.rcpt('alice@example.test')[0], s.rcpt('bob@example.test')[0], s.rcpt('carol@example.test')[0])
print(s.data(MSG)[0])
s.quit()
"#,
        py(&server)
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "250 250 452",
        "the third recipient is over the limit:\n{out}"
    );
    assert_eq!(lines[1], "250", "{out}");
    let check = env.admin_ok(&["check-config"], b"");
    assert!(
        check.contains("[smtp]\nmax_recipients = 2\ncommand_timeout = \"5m\""),
        "{check}"
    );
}

/// RFC 5321 section 4.5.1: the bare `<Postmaster>` and `postmaster@` a local domain are
/// accepted without such an account: they reach `[smtp] postmaster`, or else the first
/// account created.
#[test]
fn postmaster_is_always_accepted() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    for (extra, reader) in [
        ("", "alice@example.test"),
        (
            "[smtp]\npostmaster = \"bob@example.test\"\n",
            "bob@example.test",
        ),
    ] {
        let env = Env::with_listeners(extra, listeners());
        env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
        env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
        let server = env.start();
        let out = python(&format!(
            r#"{}
s = smtplib.SMTP(HOST, MX)
s.ehlo()
print(s.mail('someone@example.net')[0])
print(s.rcpt('<Postmaster>')[0], s.rcpt('PostMaster@example.test')[0], s.rcpt('nobody@example.test')[0])
print(s.data(MSG)[0])
s.quit()
"#,
            py(&server)
        ));
        assert_eq!(out, "250\n250 250 550\n250\n", "{extra}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let password = if reader.starts_with("alice") {
            "alice-pw"
        } else {
            "bob-pw"
        };
        let got = rt.block_on(inbox(&server, reader, password));
        let other = if reader.starts_with("alice") {
            ("bob@example.test", "bob-pw")
        } else {
            ("alice@example.test", "alice-pw")
        };
        let not_got = rt.block_on(inbox(&server, other.0, other.1));
        // One copy for the two postmaster forms (the same mailbox), besides any welcome.
        let hits = |msgs: &[Vec<u8>]| {
            msgs.iter()
                .filter(|m| {
                    m.windows(9).any(|w| w == b"Subject: ".as_slice()) && m.ends_with(b"hello\r\n")
                })
                .count()
        };
        assert_eq!((hits(&got), hits(&not_got)), (1, 0), "{extra}");
        let (status, _) = server.terminate();
        assert!(status.success());
    }
}
