//! MX delivery against a fake DNS server (hand-built UDP answers on 127.0.0.1, port 0)
//! and scripted SMTP sinks on 127.0.0.2-127.0.0.4 (one shared port, as `mx_port` is one
//! number): preference order, fallback when the first MX refuses the connection,
//! implicit MX, null MX, NXDOMAIN, per-recipient partial failure, one transaction per
//! domain, STARTTLS when offered; and a smarthost with STARTTLS/implicit TLS and AUTH.
//! Each test drives one queue pass by hand and then asserts the exact sink, store and
//! queue state (no timing involved). The DNS server and the sinks are in
//! tests/support/fake_mx.rs (shared with the end-to-end test tests/relay_mx.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailstore_core::{MailStore, MemoryStore, NewAccount};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

#[path = "../tests/support/fake_mx.rs"]
mod fake_mx;
use fake_mx::*;

// ---------------------------------------------------------------- harness

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<MemoryStore>,
    outbound: Arc<Outbound<MemoryStore>>,
    rx: mpsc::UnboundedReceiver<Received>,
    queue: std::path::PathBuf,
    alice_inbox: mailstore_core::MailboxRef,
}

/// A server for example.test (alice is local) relaying by MX through the fake DNS; MX
/// host `mx1.test` is 127.0.0.2 (sink "one"), `mx2.test` 127.0.0.3 (sink "two"),
/// `dead.test` 127.0.0.4 (refuses connections).
async fn harness(zone: Vec<(&'static str, Rr)>, one: Mode) -> Harness {
    let (l1, l2, port) = two_listeners().await;
    let (tx, rx) = mpsc::unbounded_channel();
    sink("one", l1, one, tx.clone());
    sink("two", l2, Mode::Plain, tx);
    let mut zone = zone;
    zone.push(("mx1.test", Rr::A(Ipv4Addr::new(127, 0, 0, 2))));
    zone.push(("mx2.test", Rr::A(Ipv4Addr::new(127, 0, 0, 3))));
    zone.push(("dead.test", Rr::A(Ipv4Addr::new(127, 0, 0, 4))));
    let dns = fake_dns(zone).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = {:?}\ndomains = [\"example.test\"]\nhostname = \"out.example.test\"\n[relay]\ndns_servers = [\"{dns}\"]\nmx_port = {port}\nretry_after = \"1s\"\n",
        dir.path().to_str().unwrap()
    );
    let config = Config::from_toml_str(&text, Path::new("test.toml")).unwrap();
    assert_eq!(
        config.relay.as_ref().unwrap().effective_mode(),
        RelayMode::Mx
    );
    let store = Arc::new(MemoryStore::new());
    let alice = store
        .create_account(NewAccount::new(
            "alice@example.test".to_string(),
            Some("pw"),
        ))
        .await
        .unwrap();
    let alice_inbox = store.mailbox(alice.id, "INBOX").await.unwrap().mailbox;
    let outbound = Outbound::new(&config, Arc::clone(&store)).unwrap().unwrap();
    assert!(outbound.relays());
    Harness {
        queue: dir.path().join("queue"),
        _dir: dir,
        store,
        outbound,
        rx,
        alice_inbox,
    }
}

const MESSAGE: &[u8] = b"From: alice@example.test\r\nSubject: hello\r\n\r\nhi\r\n";

impl Harness {
    async fn send(&self, rcpts: &[&str]) -> String {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        let id = self
            .outbound
            .enqueue("alice@example.test", &rcpts, MESSAGE)
            .unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.outbound.pass())
            .await
            .expect("a queue pass must not hang");
        id
    }

    /// Everything the sinks received (all sessions have ended: the pass waited for QUIT).
    fn received(&mut self) -> Vec<Received> {
        let mut v = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            v.push(r);
        }
        v
    }

    /// The messages in alice's INBOX (bounces), as text.
    async fn bounces(&self) -> Vec<String> {
        let snap = self.store.snapshot(self.alice_inbox).await.unwrap();
        let mut out = Vec::new();
        for m in snap.messages {
            let mut body = self.store.open_body(self.alice_inbox, m.uid).await.unwrap();
            let mut v = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut body, &mut v)
                .await
                .unwrap();
            out.push(String::from_utf8(v).unwrap());
        }
        out
    }

    /// The queue's `.env` entries (id, text).
    fn queue(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(&self.queue)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name()?.to_str()?.to_string();
                let id = name.strip_suffix(".env")?.to_string();
                Some((id, std::fs::read_to_string(&p).unwrap()))
            })
            .collect();
        v.sort();
        v
    }

    fn queue_files(&self) -> usize {
        std::fs::read_dir(&self.queue).unwrap().count()
    }
}

fn wire_text(r: &Received) -> String {
    String::from_utf8_lossy(&r.wire.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn lowest_preference_mx_gets_the_mail_in_one_transaction_per_domain() {
    let mut h = harness(
        vec![
            ("dest.test", Rr::Mx(20, "mx2.test")),
            ("dest.test", Rr::Mx(10, "mx1.test")),
            ("other.test", Rr::Mx(5, "mx2.test")),
        ],
        Mode::Plain,
    )
    .await;
    h.send(&["ok1@dest.test", "ok2@other.test", "ok3@DEST.test"])
        .await;
    let got = h.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let one = got.iter().find(|r| r.sink == "one").unwrap();
    assert_eq!(one.rcpts, ["ok1@dest.test", "ok3@DEST.test"]);
    assert_eq!(one.body, MESSAGE);
    let two = got.iter().find(|r| r.sink == "two").unwrap();
    assert_eq!(two.rcpts, ["ok2@other.test"]);
    // No STARTTLS offered: plaintext, one MAIL per domain.
    let wire = wire_text(one);
    assert_eq!(
        wire.matches("MAIL FROM:<alice@example.test>").count(),
        1,
        "{wire}"
    );
    assert!(wire.starts_with("EHLO out.example.test\r\n"), "{wire}");
    assert!(h.bounces().await.is_empty());
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn a_refused_connection_moves_on_to_the_next_mx() {
    let mut h = harness(
        vec![
            ("dest.test", Rr::Mx(10, "dead.test")),
            ("dest.test", Rr::Mx(20, "mx2.test")),
        ],
        Mode::Plain,
    )
    .await;
    h.send(&["ok@dest.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].sink, "two");
    assert_eq!(got[0].rcpts, ["ok@dest.test"]);
    assert!(h.bounces().await.is_empty());
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn a_4xx_to_the_transaction_moves_on_to_the_next_mx() {
    let mut h = harness(
        vec![
            ("dest.test", Rr::Mx(10, "mx1.test")),
            ("dest.test", Rr::Mx(20, "mx2.test")),
        ],
        Mode::Busy,
    )
    .await;
    h.send(&["ok@dest.test", "ok2@dest.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].sink, "two");
    assert_eq!(got[0].rcpts, ["ok@dest.test", "ok2@dest.test"]);
    assert!(h.bounces().await.is_empty());
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn no_mx_means_the_domain_itself() {
    let mut h = harness(
        vec![("plain.test", Rr::A(Ipv4Addr::new(127, 0, 0, 3)))],
        Mode::Plain,
    )
    .await;
    h.send(&["ok@plain.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].sink, "two");
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn null_mx_and_nxdomain_bounce_at_once() {
    let mut h = harness(vec![("nomail.test", Rr::Mx(0, "."))], Mode::Plain).await;
    h.send(&["ok@nomail.test", "ok@nowhere.test"]).await;
    assert!(h.received().is_empty());
    let bounces = h.bounces().await;
    assert_eq!(bounces.len(), 1, "{bounces:?}");
    let b = &bounces[0];
    assert!(
        b.contains(
            "Final-Recipient: rfc822; ok@nomail.test\r\nAction: failed\r\nStatus: 5.1.10\r\n"
        ),
        "{b}"
    );
    assert!(b.contains("null MX"), "{b}");
    assert!(
        b.contains(
            "Final-Recipient: rfc822; ok@nowhere.test\r\nAction: failed\r\nStatus: 5.1.2\r\n"
        ),
        "{b}"
    );
    assert!(b.contains("Subject: hello\r\n"), "{b}");
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn an_mx_that_is_this_server_bounces_as_a_loop() {
    let mut h = harness(
        vec![
            ("loop.test", Rr::Mx(10, "out.example.test")),
            ("loop.test", Rr::Mx(20, "mx2.test")),
            ("backup.test", Rr::Mx(10, "mx1.test")),
            ("backup.test", Rr::Mx(20, "out.example.test")),
            ("backup.test", Rr::Mx(30, "mx2.test")),
        ],
        Mode::Plain,
    )
    .await;
    h.send(&["ok@loop.test", "ok@backup.test"]).await;
    // backup.test: we are its backup MX, so only the better one (mx1) is tried.
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].sink, &got[0].rcpts[..]),
        ("one", &["ok@backup.test".to_string()][..])
    );
    let bounces = h.bounces().await;
    assert_eq!(bounces.len(), 1);
    assert!(
        bounces[0].contains(
            "Final-Recipient: rfc822; ok@loop.test\r\nAction: failed\r\nStatus: 5.4.6\r\n"
        ),
        "{}",
        bounces[0]
    );
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn per_recipient_results_deliver_bounce_and_retry() {
    let mut h = harness(vec![("dest.test", Rr::Mx(10, "mx1.test"))], Mode::Plain).await;
    let id = h
        .send(&["ok@dest.test", "bad@dest.test", "soon@dest.test"])
        .await;
    // One transaction, only the accepted recipient got the message.
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpts, ["ok@dest.test"]);
    // The 550 is bounced (and only it).
    let bounces = h.bounces().await;
    assert_eq!(bounces.len(), 1);
    let b = &bounces[0];
    assert!(
        b.contains("Final-Recipient: rfc822; bad@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
        "{b}"
    );
    assert!(b.contains("550 5.1.1 no such user"), "{b}");
    assert!(!b.contains("soon@dest.test"), "{b}");
    assert!(!b.contains("Final-Recipient: rfc822; ok@"), "{b}");
    // The 450 stays queued, alone, for the next attempt.
    let q = h.queue();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, id);
    let env = Entry::decode(&q[0].1).unwrap();
    assert_eq!(env.rcpts, ["soon@dest.test"]);
    assert_eq!(env.attempts, 1);
    assert_eq!(env.from, "alice@example.test");
    assert!(env.next > env.queued);
}

#[tokio::test]
async fn every_recipient_refused_still_gets_its_own_answer() {
    // The client reports only the first refusal when every RCPT fails: the queue asks
    // again per recipient, so the 450 is retried and only the 550 bounces.
    let mut h = harness(vec![("dest.test", Rr::Mx(10, "mx1.test"))], Mode::Plain).await;
    h.send(&["bad@dest.test", "soon@dest.test"]).await;
    assert!(h.received().is_empty());
    let bounces = h.bounces().await;
    assert_eq!(bounces.len(), 1);
    assert!(bounces[0].contains("Final-Recipient: rfc822; bad@dest.test"));
    assert!(!bounces[0].contains("soon@dest.test"));
    let q = h.queue();
    assert_eq!(q.len(), 1);
    assert_eq!(Entry::decode(&q[0].1).unwrap().rcpts, ["soon@dest.test"]);
}

#[tokio::test]
async fn starttls_is_used_when_the_mx_offers_it() {
    let mut h = harness(vec![("dest.test", Rr::Mx(10, "mx1.test"))], Mode::Tls).await;
    h.send(&["ok@dest.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpts, ["ok@dest.test"]);
    let wire = wire_text(&got[0]);
    // EHLO and STARTTLS in the clear, then nothing readable: the envelope and the
    // message went inside TLS.
    assert!(
        wire.starts_with("EHLO out.example.test\r\nSTARTTLS\r\n"),
        "{wire}"
    );
    assert!(!wire.contains("MAIL FROM"), "{wire}");
    assert!(!wire.contains("Subject: hello"), "{wire}");
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn unreachable_domain_is_retried_then_bounced_after_give_up() {
    let mut h = harness(vec![("dest.test", Rr::Mx(10, "dead.test"))], Mode::Plain).await;
    let id = h.send(&["ok@dest.test"]).await;
    assert!(h.received().is_empty());
    assert!(h.bounces().await.is_empty());
    let q = h.queue();
    assert_eq!(q.len(), 1);
    let mut env = Entry::decode(&q[0].1).unwrap();
    assert_eq!(env.attempts, 1);
    // Pretend the give-up time has passed and the retry is due.
    env.queued = env.queued.saturating_sub(6 * 86_400);
    env.next = 0;
    std::fs::write(h.queue.join(format!("{id}.env")), env.encode()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), h.outbound.pass())
        .await
        .unwrap();
    let bounces = h.bounces().await;
    assert_eq!(bounces.len(), 1);
    assert!(
        bounces[0].contains(
            "Final-Recipient: rfc822; ok@dest.test\r\nAction: failed\r\nStatus: 4.4.1\r\n"
        ),
        "{}",
        bounces[0]
    );
    assert_eq!(h.queue_files(), 0);
}

// ---------------------------------------------------------------- smarthost

/// A queue relaying through a smarthost sink at `localhost` (its development certificate
/// names it), trusting that certificate (`ca = "own"`) or another one.
async fn smarthost_harness(mode: Mode, tls: &str, ca: &str) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let cert = mail_net::DevCertificate::generate(&["smarthost.test"]).unwrap();
    sink_with_cert("smarthost", listener, mode, tx, &cert);
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let ca_pem = if ca == "own" {
        cert.cert_pem().to_string()
    } else {
        mail_net::DevCertificate::generate(&["other.test"])
            .unwrap()
            .cert_pem()
            .to_string()
    };
    std::fs::write(&ca_path, ca_pem).unwrap();
    let text = format!(
        "data_dir = {:?}\ndomains = [\"example.test\"]\nhostname = \"out.example.test\"\n[relay]\nsmarthost = \"localhost:{port}\"\nsmarthost_tls = \"{tls}\"\nsmarthost_user = \"relay-user\"\nsmarthost_password = \"s3cret\"\nca_file = {:?}\nretry_after = \"1s\"\n",
        dir.path().to_str().unwrap(),
        ca_path.to_str().unwrap()
    );
    let config = Config::from_toml_str(&text, Path::new("test.toml")).unwrap();
    let store = Arc::new(MemoryStore::new());
    let alice = store
        .create_account(NewAccount::new(
            "alice@example.test".to_string(),
            Some("pw"),
        ))
        .await
        .unwrap();
    let alice_inbox = store.mailbox(alice.id, "INBOX").await.unwrap().mailbox;
    let outbound = Outbound::new(&config, Arc::clone(&store)).unwrap().unwrap();
    Harness {
        queue: dir.path().join("queue"),
        _dir: dir,
        store,
        outbound,
        rx,
        alice_inbox,
    }
}

#[tokio::test]
async fn smarthost_starttls_verifies_the_certificate_and_logs_in() {
    let mut h = smarthost_harness(Mode::Submission, "starttls", "own").await;
    h.send(&["ok@far.test", "ok2@elsewhere.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    // Every domain in one transaction to the smarthost, after STARTTLS and AUTH.
    assert_eq!(got[0].rcpts, ["ok2@elsewhere.test", "ok@far.test"]);
    assert_eq!(got[0].user.as_deref(), Some("relay-user"));
    let wire = wire_text(&got[0]);
    assert!(
        wire.starts_with("EHLO out.example.test\r\nSTARTTLS\r\n"),
        "{wire}"
    );
    assert!(
        !wire.contains("AUTH"),
        "credentials went in the clear: {wire}"
    );
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn smarthost_implicit_tls() {
    let mut h = smarthost_harness(Mode::SubmissionTls, "tls", "own").await;
    h.send(&["ok@far.test"]).await;
    let got = h.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].user.as_deref(), Some("relay-user"));
    assert!(!wire_text(&got[0]).contains("EHLO"));
    assert_eq!(h.queue_files(), 0);
}

#[tokio::test]
async fn an_unverifiable_smarthost_certificate_keeps_the_mail_queued() {
    let mut h = smarthost_harness(Mode::Submission, "starttls", "other").await;
    h.send(&["ok@far.test"]).await;
    assert!(h.received().is_empty());
    assert!(h.bounces().await.is_empty());
    let q = h.queue();
    assert_eq!(q.len(), 1);
    let env = Entry::decode(&q[0].1).unwrap();
    assert_eq!(env.rcpts, ["ok@far.test"]);
    assert_eq!(env.attempts, 1);
}

#[tokio::test]
async fn a_failed_tls_handshake_with_an_mx_falls_back_to_plaintext() {
    // mx2.test (127.0.0.3) is a scripted server whose TLS is broken.
    let (l1, l2, port) = two_listeners().await;
    drop(l1);
    let (tx, mut rx) = mpsc::unbounded_channel();
    broken_tls_sink(l2, tx);
    let dns = fake_dns(vec![
        ("dest.test", Rr::Mx(10, "mx2.test")),
        ("mx2.test", Rr::A(Ipv4Addr::new(127, 0, 0, 3))),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = {:?}\ndomains = [\"example.test\"]\nhostname = \"out.example.test\"\n[relay]\ndns_servers = [\"{dns}\"]\nmx_port = {port}\n",
        dir.path().to_str().unwrap()
    );
    let config = Config::from_toml_str(&text, Path::new("test.toml")).unwrap();
    let store = Arc::new(MemoryStore::new());
    let outbound = Outbound::new(&config, Arc::clone(&store)).unwrap().unwrap();
    outbound
        .enqueue("alice@example.test", &["ok@dest.test".to_string()], MESSAGE)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), outbound.pass())
        .await
        .unwrap();
    let first = rx.try_recv().unwrap();
    assert_eq!(first.sink, "handshake-broken");
    let second = rx.try_recv().unwrap();
    assert_eq!(second.sink, "plaintext-after-broken-tls");
    assert_eq!(second.rcpts, ["ok@dest.test"]);
    assert_eq!(second.body, MESSAGE);
    let wire = wire_text(&second);
    assert!(!wire.contains("STARTTLS"), "{wire}");
    assert!(rx.try_recv().is_err());
    assert_eq!(
        std::fs::read_dir(dir.path().join("queue")).unwrap().count(),
        0
    );
}
