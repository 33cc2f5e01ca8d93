//! End to end through the binary: port 25 refuses other domains even with `[relay]`; an
//! authenticated submission to other domains is queued and delivered by MX lookup (a
//! fake DNS server in this test, `[relay] dns_servers`) to a scripted SMTP sink acting as
//! the MX host (on 127.0.0.2, `[relay] mx_port`), inside STARTTLS; the recipients refused
//! by the MX (550) and the one whose domain publishes a null MX come back to the sender as
//! one delivery status notification. The arrival at the sink is awaited on a channel, the
//! bounce with IMAP IDLE (python3's imaplib): no sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
#[path = "support/fake_mx.rs"]
mod fake_mx;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Env, python};
use fake_mx::{Mode, Rr, fake_dns, sink, two_listeners};
use smtp_proto::tokio::{Client, Envelope};
use smtp_proto::{ForwardPath, Mailbox, ReversePath};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_is_delivered_to_the_mx_with_starttls_and_failures_bounce() {
    if !common::have("python3", "the bounce is read with Python's imaplib") {
        return;
    }
    let (one, two, port) = two_listeners().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    sink("mx1", one, Mode::Tls, tx.clone());
    sink("mx2", two, Mode::Plain, tx);
    let dns = fake_dns(vec![
        ("dest.test", Rr::Mx(10, "mx1.test")),
        ("dest.test", Rr::Mx(20, "mx2.test")),
        ("mx1.test", Rr::A(Ipv4Addr::new(127, 0, 0, 2))),
        ("mx2.test", Rr::A(Ipv4Addr::new(127, 0, 0, 3))),
        ("nomail.test", Rr::Mx(0, ".")),
    ])
    .await;
    let env = Env::with_listeners(
        &format!(
            "hostname = \"out.example.test\"\n[relay]\ndns_servers = [\"{dns}\"]\nmx_port = {port}\nretry_after = \"1s\"\n"
        ),
        "submission = \"127.0.0.1:0\"\nimap = \"127.0.0.1:0\"\nsmtp = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"pw\n");
    let server = {
        let config = env.config.clone();
        let cwd = env.dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || common::Server::start(Some(&config), &cwd))
            .await
            .unwrap()
    };

    // Port 25 stays closed to other domains although [relay] is on (no open relay).
    let mut mx = Client::connect(
        server.listeners["smtp"],
        smtp_proto::client::Config::new("stranger.example"),
    )
    .await
    .unwrap();
    let open_relay = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("alice", "example.test")),
        vec![ForwardPath::Mailbox(Mailbox::new("ok", "dest.test"))],
    );
    match mx.send(&open_relay, b"Subject: spam\r\n\r\nx\r\n").await {
        Err(smtp_proto::Error::RecipientsRefused(r)) => {
            let codes: Vec<u16> = r.iter().map(|(_, reply)| reply.code).collect();
            assert_eq!(codes, [554], "{r:?}");
        }
        other => panic!("port 25 relayed: {other:?}"),
    }
    mx.quit().await.unwrap();

    // Submit: three remote recipients, all accepted at RCPT (relaying), one 250.
    let submission = server.listeners["submission"];
    let mut client = Client::connect(
        submission,
        smtp_proto::client::Config::new("client.example"),
    )
    .await
    .unwrap();
    client
        .auth(
            mail_sasl::Mechanism::Plain,
            mail_sasl::client::ClientCredentials::new(
                "alice@example.test",
                mail_sasl::Secret::new("pw".to_string()),
            ),
        )
        .await
        .unwrap();
    let to = ["ok@dest.test", "bad@dest.test", "x@nomail.test"]
        .iter()
        .map(|a| {
            let (l, d) = a.split_once('@').unwrap();
            ForwardPath::Mailbox(Mailbox::new(l, d))
        })
        .collect();
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::new("alice", "example.test")),
        to,
    );
    let message =
        b"From: alice@example.test\r\nTo: ok@dest.test\r\nSubject: via MX\r\n\r\nhello\r\n";
    let delivery = client.send(&envelope, message).await.unwrap();
    let accepted_at = std::time::Instant::now();
    let codes: Vec<u16> = delivery.recipients.iter().map(|(_, r)| r.code).collect();
    assert_eq!(codes, [250, 250, 250]);
    assert_eq!(delivery.message.len(), 1);
    assert_eq!(delivery.message[0].code, 250);
    client.quit().await.unwrap();

    // The preferred MX got it, for the one recipient it accepted, inside TLS.
    let got = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("the queue did not deliver within 60 s")
        .unwrap();
    eprintln!(
        "submission 250 to MX delivery (DNS, connect, STARTTLS, transaction): {:.1} ms",
        accepted_at.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(got.sink, "mx1");
    assert_eq!(got.rcpts, ["ok@dest.test"]);
    let body = String::from_utf8(got.body.clone()).unwrap();
    assert!(
        body.starts_with(
            "Received: from client.example ([127.0.0.1])\r\n\tby out.example.test with ESMTPSA;"
        ),
        "{body}"
    );
    assert!(body.ends_with("Subject: via MX\r\n\r\nhello\r\n"), "{body}");
    let wire = String::from_utf8_lossy(&got.wire.lock().unwrap()).into_owned();
    assert!(
        wire.starts_with("EHLO out.example.test\r\nSTARTTLS\r\n"),
        "{wire}"
    );
    assert!(
        !wire.contains("MAIL FROM"),
        "the envelope went in the clear: {wire}"
    );

    // The bounce: bad@dest.test (550 5.1.1 from the MX) and x@nomail.test (null MX).
    let imap = server.listeners["imap"].port();
    let script = format!(
        r#"
import imaplib
m = imaplib.IMAP4('127.0.0.1', {imap})
m.login('alice@example.test', 'pw')
typ, d = m.select('INBOX')
if int(d[0]) < 1:
    m.send(b'I IDLE\r\n')
    assert m.readline().startswith(b'+')
    m.sock.settimeout(60)
    while True:
        line = m.readline().decode().strip()
        if line.endswith('EXISTS') and int(line.split()[1]) >= 1:
            break
    m.send(b'DONE\r\n')
    while not m.readline().startswith(b'I OK'):
        pass
typ, d = m.fetch('1:*', '(BODY.PEEK[])')
msgs = [x[1].decode() for x in d if isinstance(x, tuple)]
print(len(msgs))
t = msgs[0]
print('Final-Recipient: rfc822; bad@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\n' in t)
print('Final-Recipient: rfc822; x@nomail.test\r\nAction: failed\r\nStatus: 5.1.10\r\n' in t)
print('Final-Recipient: rfc822; ok@dest.test' in t)
print('Subject: via MX' in t)
"#
    );
    let out = tokio::task::spawn_blocking(move || python(&script))
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1", "True", "True", "False", "True"], "{out}");
    // No other delivery happened (mx2 was not needed), and after a clean stop the
    // queue is empty.
    let (status, _) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(rx.try_recv().is_err());
    let left: Vec<_> = std::fs::read_dir(env.data.join("queue")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
