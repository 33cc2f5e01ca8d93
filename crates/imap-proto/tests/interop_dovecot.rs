//! Our async `Client` against a real Dovecot started by the test (mail-testkit's launcher):
//! STARTTLS, login, list, select, append (streamed), fetch (streamed body), store, search,
//! move, expunge, IDLE seeing an APPEND from a second connection, and QRESYNC
//! resynchronisation.
#![cfg(feature = "tokio")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use imap_proto::tokio::{Client, ClientConfig, Security};
use imap_proto::types::{
    Code, Data, FetchAttr, FetchItem, Flag, Response, SearchKey, SequenceSet, StoreKind,
};
use mail_net::{DevCertificate, TlsConnector};
use mail_testkit::dovecot::Protocol;

const GUARD: Duration = Duration::from_secs(120);

/// A private Dovecot (Debian's dovecot-imapd): IMAP on a free 127.0.0.1 port with STARTTLS
/// (a dev certificate), users `tester` / `tester2` with password `secret`, `\Sent` and
/// `\Trash` subscribed; stopped when dropped.
struct Dovecot {
    server: mail_testkit::dovecot::Dovecot,
    cert: DevCertificate,
}

impl Dovecot {
    /// Starts Dovecot, or returns `None` (after printing "skipping: ...", or panicking under
    /// MAIL_INTEROP_REQUIRED=1) when it cannot run here.
    fn start() -> Option<Self> {
        let cert = DevCertificate::generate(&["localhost"]).unwrap();
        let server = mail_testkit::dovecot::Dovecot::builder("imap-proto")
            .protocol(Protocol::Imap)
            .user("tester", "secret")
            .user("tester2", "secret")
            .tls(cert.cert_pem(), cert.key_pem())
            .auth_mechanisms("plain login")
            .subscribed_mailbox("Sent", "\\Sent")
            .subscribed_mailbox("Trash", "\\Trash")
            .protocol_config(Protocol::Imap, "imap_idle_notify_interval = 1 secs")
            .start()?;
        Some(Self { server, cert })
    }

    fn log(&self) -> String {
        self.server.log()
    }

    fn addr(&self) -> (&'static str, u16) {
        ("127.0.0.1", self.server.imap())
    }
}

async fn connect(d: &Dovecot, user: &str) -> Client {
    let connector = TlsConnector::from(d.cert.client_config().unwrap());
    let mut c = Client::connect(
        d.addr(),
        ClientConfig::tls(Security::StartTls, "localhost", connector),
    )
    .await
    .unwrap();
    c.login(user, "secret").await.unwrap();
    c
}

fn message(subject: &str, size: usize) -> Vec<u8> {
    let mut m = format!("From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n\r\n")
        .into_bytes();
    while m.len() < size {
        m.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n",
        );
    }
    m
}

#[tokio::test]
async fn dovecot_mailbox_session() {
    let Some(d) = Dovecot::start() else {
        return;
    };
    tokio::time::timeout(GUARD, async {
        let mut c = connect(&d, "tester").await;
        assert!(c.has_capability("IMAP4rev1"));
        let names: Vec<String> = c
            .list("", "*")
            .await
            .unwrap()
            .iter()
            .map(|l| l.mailbox.as_str().to_string())
            .collect();
        for n in ["INBOX", "Sent", "Trash"] {
            assert!(names.iter().any(|x| x == n), "{names:?}");
        }
        c.run(
            imap_proto::types::CommandBody::Create {
                mailbox: imap_proto::types::Mailbox::new("Archive").unwrap(),
                special_use: vec![],
            },
            "CREATE",
        )
        .await
        .unwrap();

        let sel = c.select("INBOX").await.unwrap();
        assert_eq!(sel.exists, 0);
        let validity = sel.uid_validity.unwrap();

        // A 2 MiB message streamed up and streamed back down.
        let big = message("big", 2 * 1024 * 1024);
        let code = c
            .append(
                "INBOX",
                &[Flag::Seen],
                None,
                big.len() as u64,
                &mut &big[..],
            )
            .await
            .unwrap();
        match code {
            Some(Code::AppendUid { uid_validity, uids }) => {
                assert_eq!(uid_validity.get(), validity);
                assert_eq!(uids.to_string(), "1");
            }
            other => panic!("{other:?}"),
        }
        let small = message("small", 300);
        c.append("INBOX", &[], None, small.len() as u64, &mut &small[..])
            .await
            .unwrap();
        c.noop().await.unwrap();

        let mut sink = Vec::new();
        assert_eq!(
            c.fetch_body_to(1, &mut sink).await.unwrap() as usize,
            big.len()
        );
        assert!(sink == big, "streamed body differs");

        let f = c
            .fetch(
                SequenceSet::range(1, 2).unwrap(),
                true,
                vec![FetchItem::Flags, FetchItem::Rfc822Size],
            )
            .await
            .unwrap();
        assert_eq!(f.len(), 2);
        // Dovecot is an IMAP4rev1 server: \Recent may be there too.
        assert!(f[0].flags().unwrap().contains(&Flag::Seen), "{f:?}");
        assert!(
            f[1].items
                .contains(&FetchAttr::Rfc822Size(small.len() as u64))
        );

        c.store(
            SequenceSet::single(2).unwrap(),
            true,
            StoreKind::Add,
            vec![Flag::Flagged],
        )
        .await
        .unwrap();
        assert_eq!(
            c.uid_search(vec![SearchKey::Flagged]).await.unwrap(),
            vec![2]
        );
        assert_eq!(
            c.uid_search(vec![SearchKey::Subject("small".into())])
                .await
                .unwrap(),
            vec![2]
        );

        let moved = c
            .move_messages(SequenceSet::single(2).unwrap(), true, "Archive")
            .await
            .unwrap();
        assert!(
            moved
                .iter()
                .any(|r| matches!(r, Response::Data(Data::Expunge(_)))),
            "{moved:?}"
        );
        c.store(
            SequenceSet::single(1).unwrap(),
            true,
            StoreKind::Add,
            vec![Flag::Deleted],
        )
        .await
        .unwrap();
        let gone = c.expunge().await.unwrap();
        assert_eq!(
            gone.first(),
            Some(&Response::Data(Data::Expunge(1.try_into().unwrap()))),
            "{gone:?}"
        );
        assert_eq!(c.select("Archive").await.unwrap().exists, 1);
        c.logout().await.unwrap();
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; dovecot log:\n{}", d.log()));
}

#[tokio::test]
async fn dovecot_idle_sees_concurrent_append() {
    let Some(d) = Dovecot::start() else {
        return;
    };
    tokio::time::timeout(GUARD, async {
        let mut a = connect(&d, "tester").await;
        let mut b = connect(&d, "tester").await;
        a.select("INBOX").await.unwrap();
        let mut idle = a.idle().await.unwrap();
        let m = message("idle", 200);
        b.append("INBOX", &[], None, m.len() as u64, &mut &m[..])
            .await
            .unwrap();
        let mut got = Vec::new();
        while !got
            .iter()
            .any(|r| matches!(r, Response::Data(Data::Exists(1))))
        {
            let more = idle.wait(Duration::from_secs(30)).await.unwrap();
            assert!(!more.is_empty(), "no update within 30 s");
            got.extend(more);
        }
        idle.done().await.unwrap();
        assert_eq!(a.uid_search(vec![SearchKey::All]).await.unwrap(), vec![1]);
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; dovecot log:\n{}", d.log()));
}

#[tokio::test]
async fn dovecot_qresync_resynchronisation() {
    let Some(d) = Dovecot::start() else {
        return;
    };
    tokio::time::timeout(GUARD, async {
        let mut a = connect(&d, "tester2").await;
        assert!(a.has_capability("QRESYNC"), "{:?}", a.capabilities());
        for i in 0..4 {
            let m = message(&format!("q{i}"), 100);
            a.append("INBOX", &[], None, m.len() as u64, &mut &m[..])
                .await
                .unwrap();
        }
        let enabled = a.enable(&["QRESYNC"]).await.unwrap();
        assert!(enabled.iter().any(|c| c.is("QRESYNC")));
        let sel = a.select("INBOX").await.unwrap();
        let (validity, modseq) = (sel.uid_validity.unwrap(), sel.highest_modseq.unwrap());
        a.logout().await.unwrap();

        // Another client changes a flag and expunges a message meanwhile.
        let mut b = connect(&d, "tester2").await;
        b.select("INBOX").await.unwrap();
        b.store(
            SequenceSet::single(2).unwrap(),
            true,
            StoreKind::Add,
            vec![Flag::Seen],
        )
        .await
        .unwrap();
        b.store(
            SequenceSet::single(3).unwrap(),
            true,
            StoreKind::Add,
            vec![Flag::Deleted],
        )
        .await
        .unwrap();
        b.expunge().await.unwrap();
        b.logout().await.unwrap();

        // Resynchronise: only the changes since `modseq` come back.
        let mut a = connect(&d, "tester2").await;
        a.enable(&["QRESYNC"]).await.unwrap();
        let sel = a
            .select_qresync(
                "INBOX",
                validity,
                modseq,
                Some(SequenceSet::range(1, 4).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(sel.exists, 3);
        let vanished: Vec<String> = sel
            .responses
            .iter()
            .filter_map(|r| match r {
                Response::Data(Data::Vanished {
                    earlier: true,
                    uids,
                }) => Some(uids.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(vanished, vec!["3".to_string()], "{:?}", sel.responses);
        let changed: Vec<(u32, Vec<FetchAttr>)> = sel
            .responses
            .iter()
            .filter_map(|r| match r {
                Response::Data(Data::Fetch { seq, items }) => Some((seq.get(), items.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(
            changed[0].1.contains(&FetchAttr::Flags(vec![Flag::Seen])),
            "{changed:?}"
        );
        assert!(
            changed[0]
                .1
                .iter()
                .any(|i| matches!(i, FetchAttr::Uid(u) if u.get() == 2))
        );
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; dovecot log:\n{}", d.log()));
}
