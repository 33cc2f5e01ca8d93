//! The tokio adapter: `serve` + `Client` over in-memory streams, and the `Client` against
//! a real Dovecot POP3 server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(feature = "tokio")]

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mail_net::{DevCertificate, MaybeTls, TlsAcceptor, TlsConnector};
use mail_sasl::client::ClientCredentials;
use mail_sasl::{Mechanism, ScramSecret};
use mail_testkit::dovecot::{Dovecot, Protocol};
use pop3_proto::Error;
use pop3_proto::tokio::{AuthError, Backend, Client, ServeConfig, serve};
use pop3_proto::types::{Capability, MessageInfo, ResponseCode, Secret, secret};
use tokio::time::timeout;

const GUARD: Duration = Duration::from_secs(30);

struct Mem {
    msgs: Vec<Bytes>,
    committed: Mutex<Option<Vec<usize>>>,
    /// Every `prefetch` hint, in order.
    prefetched: Mutex<Vec<usize>>,
    scram: ScramSecret,
}

impl Mem {
    fn new(msgs: Vec<Bytes>) -> Arc<Self> {
        Arc::new(Self {
            msgs,
            committed: Mutex::new(None),
            prefetched: Mutex::new(Vec::new()),
            scram: ScramSecret::derive(b"secret", b"0123456789abcdef", 4096),
        })
    }
}

impl Backend for Mem {
    type Maildrop = ();
    type Body = Cursor<Bytes>;

    async fn verify_password(&self, user: &str, password: &Secret) -> Result<(), AuthError> {
        match (user, &password.expose()[..]) {
            ("alice", b"secret") => Ok(()),
            ("locked", b"secret") => Err(AuthError::InUse),
            ("denied", b"secret") => Err(AuthError::Denied(
                "POP3 access is turned off for this account".into(),
            )),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn plaintext_secret(&self, user: &str) -> Result<Option<Secret>, AuthError> {
        Ok((user == "alice").then(|| secret(&b"secret"[..])))
    }

    async fn scram_secret(&self, user: &str) -> Result<Option<ScramSecret>, AuthError> {
        Ok((user == "alice").then(|| self.scram.clone()))
    }

    async fn open_maildrop(&self, _user: &str) -> Result<((), Vec<MessageInfo>), AuthError> {
        let list = self
            .msgs
            .iter()
            .enumerate()
            .map(|(i, m)| MessageInfo::new(m.len() as u64, format!("uid-{i}")))
            .collect();
        Ok(((), list))
    }

    async fn read_message(&self, _: &mut (), index: usize) -> std::io::Result<Cursor<Bytes>> {
        Ok(Cursor::new(self.msgs[index].clone()))
    }

    async fn prefetch(&self, _: &mut (), index: usize) {
        self.prefetched.lock().unwrap().push(index);
    }

    async fn commit(&self, _: (), deleted: Vec<usize>) -> std::io::Result<()> {
        *self.committed.lock().unwrap() = Some(deleted);
        Ok(())
    }
}

fn big_message() -> Bytes {
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    while m.len() < 3 * 1024 * 1024 {
        if i.is_multiple_of(7) {
            m.extend_from_slice(b".starts with a dot\r\n");
        }
        m.extend_from_slice(
            format!("line {i} of a large message body, padded to look real\r\n").as_bytes(),
        );
        i += 1;
    }
    Bytes::from(m)
}

fn config() -> ServeConfig {
    let mut cfg = ServeConfig::default();
    cfg.protocol.limits.auth_failure_delay = Duration::from_millis(50);
    cfg.protocol.sasl_mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"]
        .map(Bytes::from)
        .to_vec();
    cfg.apop = true;
    cfg
}

/// Runs `serve` on one end of a duplex pipe and returns a client on the other.
async fn pair(
    backend: Arc<Mem>,
    cfg: ServeConfig,
) -> (
    Client<tokio::io::DuplexStream>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move { serve(MaybeTls::Plain(b), cfg, &*backend).await });
    let client = Client::new(MaybeTls::Plain(a)).await.unwrap();
    (client, server)
}

#[tokio::test]
async fn full_session_over_duplex() {
    timeout(GUARD, async {
        let big = big_message();
        let backend = Mem::new(vec![
            Bytes::from_static(b"Subject: one\r\n\r\nfirst\r\n.dot\r\n"),
            big.clone(),
        ]);
        let (mut c, server) = pair(backend.clone(), config()).await;
        assert!(c.apop_timestamp().is_some());
        let caps = c.capa().await.unwrap();
        assert!(caps.contains(&Capability::Pipelining));
        assert!(caps.contains(&Capability::User));
        c.login("alice", "secret").await.unwrap();
        assert_eq!(c.stat().await.unwrap(), (2, 29 + big.len() as u64));
        let list = c.list().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].size, big.len() as u64);
        assert_eq!(&c.uidl_one(2).await.unwrap().uid[..], b"uid-1");
        assert_eq!(c.uidl().await.unwrap().len(), 2);
        assert_eq!(
            c.retr(1).await.unwrap(),
            b"Subject: one\r\n\r\nfirst\r\n.dot\r\n"
        );
        assert_eq!(c.top(1, 0).await.unwrap(), b"Subject: one\r\n\r\n");
        // The 3 MiB body arrives in several chunks and is identical after un-stuffing.
        let mut stream = c.retr_stream(2).await.unwrap();
        let (mut got, mut chunks) = (Vec::new(), 0);
        while let Some(chunk) = stream.next_chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert!(chunks > 4, "{chunks}");
        assert!(got == big[..], "body differs");
        // A body dropped half-read is skipped by the next command.
        {
            let mut partial = c.retr_stream(2).await.unwrap();
            assert!(partial.next_chunk().await.unwrap().is_some());
        }
        c.dele(1).await.unwrap();
        match c.retr(1).await {
            Err(Error::Server { text, .. }) => assert_eq!(&text[..], b"message 1 already deleted"),
            r => panic!("{r:?}"),
        }
        c.rset().await.unwrap();
        c.dele(2).await.unwrap();
        c.noop().await.unwrap();
        let bye = c.quit().await.unwrap();
        assert_eq!(&bye.text[..], b"POP3 server signing off (1 message left)");
        assert_eq!(*backend.committed.lock().unwrap(), Some(vec![1]));
        // After each RETR reply (msg 1, msg 2, msg 2 again) the next index is hinted;
        // TOP and the refused RETR of a deleted message hint nothing.
        assert_eq!(*backend.prefetched.lock().unwrap(), vec![1, 2, 2]);
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sasl_mechanisms_and_apop_through_mail_sasl() {
    timeout(GUARD, async {
        let backend = Mem::new(vec![Bytes::from_static(b"a\r\n")]);
        for mech in [
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::CramMd5,
            Mechanism::ScramSha256,
        ] {
            let (mut c, server) = pair(backend.clone(), config()).await;
            let creds =
                ClientCredentials::new("alice", mail_sasl::Secret::new("secret".to_string()));
            c.auth(mech, creds)
                .await
                .unwrap_or_else(|e| panic!("{mech}: {e}"));
            assert_eq!(c.stat().await.unwrap(), (1, 3));
            c.quit().await.unwrap();
            server.await.unwrap().unwrap();
        }
        let (mut c, _server) = pair(backend.clone(), config()).await;
        c.apop("alice", "secret").await.unwrap();
        assert_eq!(c.stat().await.unwrap(), (1, 3));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn denied_login_carries_its_text_under_auth() {
    timeout(GUARD, async {
        let backend = Mem::new(vec![]);
        let (mut c, _server) = pair(backend.clone(), config()).await;
        match c.login("denied", "secret").await {
            Err(Error::Server { code, text }) => {
                assert_eq!(code, Some(ResponseCode::Auth));
                assert_eq!(&text[..], b"POP3 access is turned off for this account");
            }
            r => panic!("{r:?}"),
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn failures_carry_rfc3206_codes() {
    timeout(GUARD, async {
        let backend = Mem::new(vec![]);
        let (mut c, _server) = pair(backend.clone(), config()).await;
        match c.login("alice", "wrong").await {
            Err(Error::Server { code, .. }) => assert_eq!(code, Some(ResponseCode::Auth)),
            r => panic!("{r:?}"),
        }
        match c.login("locked", "secret").await {
            Err(Error::Server { code, .. }) => assert_eq!(code, Some(ResponseCode::InUse)),
            r => panic!("{r:?}"),
        }
        let creds = ClientCredentials::new("alice", mail_sasl::Secret::new("nope".to_string()));
        match c.auth(Mechanism::ScramSha256, creds).await {
            // The third failure closes the connection after the -ERR.
            Err(Error::Server { code, .. }) => assert_eq!(code, Some(ResponseCode::Auth)),
            r => panic!("{r:?}"),
        }
        // The server has closed: whatever the client reads next is the end.
        assert!(c.noop().await.is_err());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn stls_upgrade_and_implicit_tls() {
    timeout(GUARD, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let backend = Mem::new(vec![Bytes::from_static(b"a\r\n")]);
        let mut cfg = config();
        cfg.tls = Some(acceptor.clone());
        let (mut c, server) = pair(backend.clone(), cfg.clone()).await;
        assert!(c.capa().await.unwrap().contains(&Capability::Stls));
        c.stls(&connector, "localhost").await.unwrap();
        assert!(c.is_tls());
        assert!(!c.capa().await.unwrap().contains(&Capability::Stls));
        c.login("alice", "secret").await.unwrap();
        c.quit().await.unwrap();
        server.await.unwrap().unwrap();

        // Implicit TLS: the handshake happens before serve.
        let (a, b) = tokio::io::duplex(64 * 1024);
        let be = backend.clone();
        let server = tokio::spawn(async move {
            let tls = MaybeTls::Plain(b).upgrade_server(&acceptor).await.unwrap();
            serve(tls, cfg, &*be).await
        });
        let name = mail_net::tls::server_name("localhost").unwrap();
        let tls = MaybeTls::Plain(a)
            .upgrade_client(&connector, name)
            .await
            .unwrap();
        let mut c = Client::new(tls).await.unwrap();
        assert!(!c.capa().await.unwrap().contains(&Capability::Stls));
        c.login("alice", "secret").await.unwrap();
        c.quit().await.unwrap();
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn client_against_dovecot() {
    let cert = DevCertificate::generate(&[]).unwrap();
    // User `tester`, password `secret` ({PLAIN}, so APOP and CRAM-MD5 work).
    let Some(dovecot) = Dovecot::builder("pop3-proto")
        .protocol(Protocol::Pop3)
        .user("tester", "secret")
        .tls(cert.cert_pem(), cert.key_pem())
        .auth_mechanisms("plain login cram-md5 apop")
        .start()
    else {
        return;
    };
    let msg = b"From: a@example.org\nTo: tester@localhost\nSubject: seeded\n\n.dotted line\nbody\n";
    dovecot.deliver("tester", "INBOX", "1700000000.M1P1.test", msg);
    let connector = TlsConnector::from(cert.client_config().unwrap());
    let port = dovecot.pop3();
    let r = timeout(GUARD, async {
        // Readiness: the first connect that succeeds.
        let mut c = loop {
            match Client::connect(("127.0.0.1", port)).await {
                Ok(c) => break c,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let caps = c.capa().await.unwrap();
        assert!(caps.contains(&Capability::Stls), "{caps:?}");
        assert!(caps.contains(&Capability::Uidl));
        c.stls(&connector, "localhost").await.unwrap();
        c.login("tester", "secret").await.unwrap();
        let (n, size) = c.stat().await.unwrap();
        assert_eq!(n, 1);
        let body = c.retr(1).await.unwrap();
        assert_eq!(body.len() as u64, size);
        assert!(
            body.windows(14).any(|w| w == b".dotted line\r\n"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let top = c.top(1, 0).await.unwrap();
        assert!(top.ends_with(b"Subject: seeded\r\n\r\n"));
        let uidl = c.uidl().await.unwrap();
        assert_eq!(uidl.len(), 1);
        assert_eq!(c.list().await.unwrap()[0].size, size);
        c.quit().await.unwrap();

        // AUTH PLAIN over implicit TLS; APOP and CRAM-MD5 in plaintext.
        let mut c = Client::connect_tls(("127.0.0.1", dovecot.pop3s()), &connector, "localhost")
            .await
            .unwrap();
        let creds = ClientCredentials::new("tester", mail_sasl::Secret::new("secret".to_string()));
        c.auth(Mechanism::Plain, creds).await.unwrap();
        c.dele(1).await.unwrap();
        c.quit().await.unwrap();
        let mut c = Client::connect(("127.0.0.1", port)).await.unwrap();
        if c.apop_timestamp().is_some() {
            c.apop("tester", "secret").await.unwrap();
        } else {
            let creds =
                ClientCredentials::new("tester", mail_sasl::Secret::new("secret".to_string()));
            c.auth(Mechanism::CramMd5, creds).await.unwrap();
        }
        assert_eq!(
            c.stat().await.unwrap().0,
            0,
            "DELE + QUIT removed the message"
        );
        c.quit().await.unwrap();
    })
    .await;
    if r.is_err() {
        panic!("timed out; dovecot log:\n{}", dovecot.log());
    }
}

/// Raw bytes in, exact bytes out through the adapter: a pipelined burst is answered in
/// order, and plaintext pipelined after STLS is never executed after the handshake.
#[tokio::test]
async fn raw_pipelining_and_stls_injection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    timeout(GUARD, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let backend = Mem::new(vec![Bytes::from_static(b"a\r\n")]);
        let mut cfg = ServeConfig::default();
        cfg.tls = Some(TlsAcceptor::from(cert.server_config().unwrap()));
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let be = backend.clone();
        let c2 = cfg.clone();
        let server = tokio::spawn(async move { serve(MaybeTls::Plain(b), c2, &*be).await });
        a.write_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nRETR 1\r\nQUIT\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        a.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "+OK POP3 server ready\r\n+OK send PASS\r\n\
             +OK maildrop locked and ready, 1 message (3 octets)\r\n+OK 1 3\r\n\
             +OK 3 octets\r\na\r\n.\r\n+OK POP3 server signing off (1 message left)\r\n"
        );
        server.await.unwrap().unwrap();

        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let be = backend.clone();
        let server = tokio::spawn(async move { serve(MaybeTls::Plain(b), cfg, &*be).await });
        a.write_all(b"STLS\r\nUSER alice\r\n").await.unwrap();
        let mut buf = vec![0u8; 256];
        let mut got = Vec::new();
        while !got.ends_with(b"+OK Begin TLS negotiation\r\n") {
            let n = a.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let name = mail_net::tls::server_name("localhost").unwrap();
        let mut tls = MaybeTls::Plain(a)
            .upgrade_client(&connector, name)
            .await
            .unwrap();
        tls.write_all(b"PASS secret\r\nQUIT\r\n").await.unwrap();
        let mut got = Vec::new();
        let _ = tls.read_to_end(&mut got).await;
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "-ERR USER first\r\n+OK POP3 server signing off\r\n",
            "the USER sent in plaintext with STLS must not count"
        );
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}
