//! Our async Client against our tokio server (in-memory backend), over TCP on 127.0.0.1.
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
use imap_proto::tokio::{Client, ClientConfig, Security};
use imap_proto::types::{
    Data, FetchItem, Flag, MailboxAttr, Response, SearchKey, Section, SequenceSet, StoreKind,
};
use mail_net::{DevCertificate, TlsAcceptor, TlsConnector};

const GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn full_session_plain() {
    tokio::time::timeout(GUARD, async {
        let backend = MemBackend::new();
        let addr = common::start_server(common::plain_serve_config(), backend.clone()).await;
        let mut c = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        assert!(c.has_capability("IMAP4rev2"));
        assert!(c.login("user", "wrong").await.is_err());
        c.login("user", "pass").await.unwrap();
        assert!(
            c.has_capability("MOVE"),
            "post-login capabilities: {:?}",
            c.capabilities()
        );

        let list = c.list("", "*").await.unwrap();
        let names: Vec<&str> = list.iter().map(|l| l.mailbox.as_str()).collect();
        assert_eq!(names, vec!["INBOX", "Sent", "Trash"]);

        let sel = c.select("INBOX").await.unwrap();
        assert_eq!(sel.exists, 3);
        assert_eq!(sel.uid_validity, Some(1_700_000_000));
        assert_eq!(sel.uid_next, Some(4));

        let f = c
            .fetch(
                SequenceSet::range(1, 3).unwrap(),
                false,
                vec![FetchItem::Uid, FetchItem::Flags],
            )
            .await
            .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].uid(), Some(2));
        assert_eq!(f[1].flags(), Some(&[Flag::Seen][..]));

        let unseen = c.uid_search(vec![SearchKey::Unseen]).await.unwrap();
        assert_eq!(unseen, vec![1, 3]);

        let st = c
            .store(
                SequenceSet::single(1).unwrap(),
                true,
                StoreKind::Add,
                vec![Flag::Seen],
            )
            .await
            .unwrap();
        assert_eq!(st[0].flags(), Some(&[Flag::Seen][..]));
        assert_eq!(
            c.uid_search(vec![SearchKey::Unseen]).await.unwrap(),
            vec![3]
        );

        // Streaming APPEND of a 1 MiB message, then streaming it back.
        let mut body = b"Subject: big\r\n\r\n".to_vec();
        body.resize(1024 * 1024, b'x');
        let code = c
            .append(
                "INBOX",
                &[Flag::Draft],
                None,
                body.len() as u64,
                &mut &body[..],
            )
            .await
            .unwrap();
        assert!(
            matches!(code, Some(imap_proto::types::Code::AppendUid { .. })),
            "{code:?}"
        );
        let mut sink = Vec::new();
        let n = c.fetch_body_to(4, &mut sink).await.unwrap();
        assert_eq!(n as usize, body.len());
        assert_eq!(sink, body);

        // The APPEND was reported as EXISTS before its completion.
        let updates = c.take_unsolicited();
        assert!(
            updates.contains(&Response::Data(Data::Exists(4))),
            "{updates:?}"
        );
        assert!(c.noop().await.unwrap().is_empty());

        let moved = c
            .move_messages(SequenceSet::single(2).unwrap(), true, "Trash")
            .await
            .unwrap();
        assert!(
            moved
                .iter()
                .any(|r| matches!(r, Response::Data(Data::Expunge(n)) if n.get() == 2)),
            "{moved:?}"
        );

        let peek = FetchItem::BodySection {
            peek: true,
            section: Section::default(),
            partial: None,
        };
        let f = c
            .fetch(SequenceSet::single(3).unwrap(), true, vec![peek])
            .await
            .unwrap();
        assert_eq!(
            f[0].body().unwrap().as_ref(),
            b"From: carol@example.org\r\nSubject: third\r\n\r\nHello three\r\n"
        );

        c.store(
            SequenceSet::single(1).unwrap(),
            false,
            StoreKind::Add,
            vec![Flag::Deleted],
        )
        .await
        .unwrap();
        let gone = c.expunge().await.unwrap();
        assert_eq!(
            gone,
            vec![Response::Data(Data::Expunge(1.try_into().unwrap()))]
        );
        c.logout().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn idle_sees_a_concurrent_delivery() {
    tokio::time::timeout(GUARD, async {
        let backend = MemBackend::new();
        let addr = common::start_server(common::plain_serve_config(), backend.clone()).await;
        let mut c = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        c.login("user", "pass").await.unwrap();
        c.select("INBOX").await.unwrap();
        let mut idle = c.idle().await.unwrap();
        // Another client delivers (through a second connection).
        let mut other = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        other.login("user", "pass").await.unwrap();
        other
            .append("INBOX", &[], None, 12, &mut &b"Subject: x\r\n"[..])
            .await
            .unwrap();
        let got = idle.wait(Duration::from_secs(20)).await.unwrap();
        assert_eq!(got, vec![Response::Data(Data::Exists(4))]);
        idle.done().await.unwrap();
        // After IDLE the connection still works.
        assert_eq!(
            c.uid_search(vec![SearchKey::All]).await.unwrap(),
            vec![1, 2, 3, 4]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn starttls_then_login() {
    tokio::time::timeout(GUARD, async {
        let cert = DevCertificate::generate(&["localhost"]).unwrap();
        let mut config = imap_proto::tokio::ServeConfig::default();
        config.tls = Some(TlsAcceptor::from(cert.server_config().unwrap()));
        let addr = common::start_server(config, MemBackend::new()).await;

        // Without TLS, LOGIN is refused (LOGINDISABLED by default).
        let mut plain = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        assert!(plain.has_capability("STARTTLS") && plain.has_capability("LOGINDISABLED"));
        assert!(plain.login("user", "pass").await.is_err());

        let connector = TlsConnector::from(cert.client_config().unwrap());
        let mut c = Client::connect(
            addr,
            ClientConfig::tls(Security::StartTls, "localhost", connector),
        )
        .await
        .unwrap();
        assert!(!c.has_capability("STARTTLS") && !c.has_capability("LOGINDISABLED"));
        assert!(c.has_capability("AUTH=PLAIN"));
        c.authenticate_plain("user", mail_sasl::Secret::new("pass".to_string()))
            .await
            .unwrap();
        assert_eq!(c.select("INBOX").await.unwrap().exists, 3);
        c.logout().await.unwrap();
    })
    .await
    .unwrap();
}

/// COMPRESS=DEFLATE end to end over TCP: the client side is a raw socket with flate2.
#[tokio::test]
async fn compress_deflate_over_tcp() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(GUARD, async {
        let addr = common::start_server(common::plain_serve_config(), MemBackend::new()).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut text = String::new();
        async fn read_until(
            s: &mut tokio::net::TcpStream,
            buf: &mut [u8],
            text: &mut String,
            needle: &str,
        ) {
            while !text.contains(needle) {
                let n = s.read(buf).await.unwrap();
                assert!(n > 0, "closed; got {text}");
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        read_until(&mut s, &mut buf, &mut text, "\r\n").await;
        s.write_all(b"a LOGIN user pass\r\nz COMPRESS DEFLATE\r\n")
            .await
            .unwrap();
        read_until(&mut s, &mut buf, &mut text, "z OK DEFLATE active\r\n").await;
        assert!(
            text.contains("COMPRESS=DEFLATE"),
            "advertised after login: {text}"
        );

        let mut comp = Compress::new(Compression::default(), false);
        let mut decomp = Decompress::new(false);
        let mut out = Vec::with_capacity(256);
        comp.compress_vec(
            b"b SELECT INBOX\r\nc NOOP\r\n",
            &mut out,
            FlushCompress::Sync,
        )
        .unwrap();
        s.write_all(&out).await.unwrap();
        let mut plain = Vec::new();
        while !String::from_utf8_lossy(&plain).contains("c OK NOOP completed\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            let mut chunk = Vec::with_capacity(64 * 1024);
            decomp
                .decompress_vec(&buf[..n], &mut chunk, FlushDecompress::Sync)
                .unwrap();
            plain.extend_from_slice(&chunk);
        }
        let plain = String::from_utf8(plain).unwrap();
        assert!(plain.starts_with("* 3 EXISTS\r\n"), "{plain}");
        assert!(
            plain.contains("b OK [READ-WRITE] SELECT completed\r\n"),
            "{plain}"
        );
    })
    .await
    .unwrap();
}

/// AUTHENTICATE SCRAM-SHA-256 end to end: mail-sasl on both sides, framed by the two state
/// machines (SASL-IR, challenges, the server-final message as a last challenge).
#[tokio::test]
async fn authenticate_scram_sha_256() {
    tokio::time::timeout(GUARD, async {
        let mut config = common::plain_serve_config();
        config.imap.sasl_mechanisms = vec!["SCRAM-SHA-256".into(), "PLAIN".into()];
        let addr = common::start_server(config, MemBackend::new()).await;
        let mut c = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        assert!(c.has_capability("AUTH=SCRAM-SHA-256"));
        let creds = |p: &str| {
            mail_sasl::client::ClientCredentials::new("user", mail_sasl::Secret::new(p.to_string()))
        };
        assert!(
            c.authenticate(mail_sasl::Mechanism::ScramSha256, creds("wrong"))
                .await
                .is_err()
        );
        c.authenticate(mail_sasl::Mechanism::ScramSha256, creds("pass"))
            .await
            .unwrap();
        assert_eq!(c.select("INBOX").await.unwrap().exists, 3);
    })
    .await
    .unwrap();
}

/// `LIST "" ""` answers with the hierarchy delimiter (RFC 9051 section 6.3.9), and EXAMINE
/// says no flag can be changed permanently (`PERMANENTFLAGS ()`, section 7.1).
#[tokio::test]
async fn list_delimiter_and_read_only_permanent_flags() {
    tokio::time::timeout(GUARD, async {
        let backend = MemBackend::new();
        let addr = common::start_server(common::plain_serve_config(), backend.clone()).await;
        let mut c = Client::connect(addr, ClientConfig::plain()).await.unwrap();
        c.login("user", "pass").await.unwrap();
        let list = c.list("", "").await.unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].attributes, vec![MailboxAttr::NoSelect]);
        assert_eq!(list[0].delimiter, Some('/'));
        assert_eq!(list[0].mailbox.as_str(), "");
        let examined = c.examine("INBOX").await.unwrap();
        assert!(examined.read_only);
        let permanent: Vec<&Response> = examined
            .responses
            .iter()
            .filter(|r| format!("{r:?}").contains("PermanentFlags"))
            .collect();
        assert_eq!(permanent.len(), 1, "{:?}", examined.responses);
        assert!(
            format!("{:?}", permanent[0]).contains("PermanentFlags([])"),
            "{:?}",
            permanent[0]
        );
    })
    .await
    .unwrap();
}

/// SELECT tells an IMAP4rev1 client its first unseen message (`OK [UNSEEN n]`, RFC 3501
/// section 6.3.1) and its `\Recent` count; an IMAP4rev2 client gets neither (RFC 9051
/// appendix E).
#[tokio::test]
async fn select_sends_unseen_and_recent_to_rev1_only() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    tokio::time::timeout(GUARD, async {
        let addr = common::start_server(common::plain_serve_config(), MemBackend::new()).await;
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, tag: &str) -> Vec<String> {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                assert!(r.read_line(&mut line).await.unwrap() > 0, "closed after {lines:?}");
                let done = line.starts_with(&format!("{tag} "));
                lines.push(line);
                if done {
                    return lines;
                }
            }
        }
        reply(&mut r, "*").await;
        w.write_all(b"a LOGIN user pass\r\nb SELECT INBOX\r\n").await.unwrap();
        reply(&mut r, "a").await;
        assert_eq!(
            reply(&mut r, "b").await.concat(),
            "* 3 EXISTS\r\n\
             * 0 RECENT\r\n\
             * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
             * OK [UNSEEN 1] Message 1 is first unseen\r\n\
             * OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
             * OK [UIDNEXT 4] Predicted next UID\r\n\
             b OK [READ-WRITE] SELECT completed\r\n"
        );
        // ENABLE is valid in the authenticated state only (RFC 5161 section 3.1).
        w.write_all(b"c UNSELECT\r\nd ENABLE IMAP4rev2\r\ne SELECT INBOX\r\n")
            .await
            .unwrap();
        reply(&mut r, "c").await;
        assert_eq!(
            reply(&mut r, "d").await.concat(),
            "* ENABLED IMAP4rev2\r\nd OK ENABLE completed\r\n"
        );
        let rev2 = reply(&mut r, "e").await.concat();
        assert!(!rev2.contains("UNSEEN") && !rev2.contains("RECENT"), "{rev2}");
        assert!(rev2.contains("* 3 EXISTS\r\n"), "{rev2}");
    })
    .await
    .unwrap();
}
