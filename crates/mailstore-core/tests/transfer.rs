//! Maildir and mbox export/import: lossless round trips, and interop with Python's
//! `mailbox` module.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use bytes::Bytes;
use mailstore_core::transfer::{
    ImportOptions, export_maildir, export_mbox, import_maildir, import_mbox,
};
use mailstore_core::*;

/// Messages that are hard on mbox: From_ lines, quoted From_ lines, LF and CRLF, no final
/// newline, an empty body.
fn tricky() -> Vec<(Bytes, Flags, i64)> {
    vec![
        (
            Bytes::from_static(
                b"Subject: one\r\n\r\nFrom here on\r\n>From quoted\r\n>>From twice\r\n",
            ),
            Flags::system(SystemFlags::SEEN).with_keyword("$Forwarded"),
            1_600_000_000,
        ),
        (
            Bytes::from_static(b"Subject: two\n\nunix line ends\nFrom x\n"),
            Flags::system(SystemFlags::ANSWERED.union(SystemFlags::FLAGGED)),
            1_600_000_100,
        ),
        (
            Bytes::from_static(b"Subject: three\r\n\r\nno final newline"),
            Flags::new().with_keyword("Work"),
            1_600_000_200,
        ),
        (
            Bytes::from_static(b"Subject: four\r\n"),
            Flags::system(SystemFlags::DRAFT.union(SystemFlags::DELETED)),
            1_600_000_300,
        ),
        (
            Bytes::from_static(b"Subject: five\r\n\r\n\r\n\r\n"),
            Flags::new(),
            1_600_000_400,
        ),
    ]
}

async fn fill<S: MailStore>(s: &S) -> AccountInfo {
    let a = s
        .create_account(NewAccount::new("src@example.org", None))
        .await
        .unwrap();
    s.create_mailbox(a.id, "Projects/v1.0", CreateMailbox::default().subscribed())
        .await
        .unwrap();
    for name in ["INBOX", "Projects/v1.0", "Sent"] {
        let mb = s.mailbox(a.id, name).await.unwrap().mailbox;
        for (body, flags, date) in tricky() {
            let _ = s
                .append(
                    mb,
                    AppendOptions::with_flags(flags).internal_date(Timestamp(date)),
                    body,
                )
                .await
                .unwrap();
        }
    }
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
    let _ = s.expunge(inbox, &UidSet::single(2)).await.unwrap();
    let _ = s
        .append(
            inbox,
            AppendOptions::default()
                .uidl("OLD-UIDL-7")
                .internal_date(Timestamp(1_600_001_000)),
            Bytes::from_static(b"Subject: imported\r\n\r\nx\r\n"),
        )
        .await
        .unwrap();
    a
}

type Msg = (u32, Vec<String>, i64, String, Vec<u8>);
type Seen = Vec<(String, u32, Vec<Msg>)>;

async fn view<S: MailStore>(s: &S, a: AccountId, with_uids: bool) -> Seen {
    let mut out = Vec::new();
    for mb in s.list_mailboxes(a).await.unwrap() {
        let snap = s.snapshot(mb.mailbox).await.unwrap();
        let metas = s.message_meta(mb.mailbox, &UidSet::all()).await.unwrap();
        let mut msgs = Vec::new();
        for (m, meta) in snap.messages.iter().zip(metas) {
            let body = s
                .open_body(mb.mailbox, m.uid)
                .await
                .unwrap()
                .read_all()
                .await
                .unwrap();
            msgs.push((
                if with_uids { m.uid } else { 0 },
                m.flags.names(),
                meta.internal_date.0,
                if with_uids { meta.uidl } else { String::new() },
                body,
            ));
        }
        out.push((
            mb.name.clone(),
            if with_uids { mb.uidvalidity } else { 0 },
            msgs,
        ));
    }
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn maildir_round_trip_is_lossless() {
    rt().block_on(async {
        let src = MemoryStore::with_config(StoreConfig::for_tests());
        let a = fill(&src).await;
        let dir = tempfile::tempdir().unwrap();
        let st = export_maildir(&src, a.id, dir.path()).await.unwrap();
        assert_eq!(st.mailboxes, 7);
        assert_eq!(st.messages, 15);
        assert!(dir.path().join(".Projects.v1%2E0/cur").is_dir());
        // A fresh store, an account without default mailboxes: everything comes from the export.
        let dst = MemoryStore::with_config(StoreConfig::for_tests());
        let mut n = NewAccount::new("dst@example.org", None);
        n.default_mailboxes = false;
        let b = dst.create_account(n).await.unwrap();
        dst.create_mailbox(b.id, "INBOX", CreateMailbox::default())
            .await
            .unwrap();
        let st2 = import_maildir(&dst, b.id, dir.path(), &ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(st2.messages, 15, "{:?}", st2.skipped);
        assert!(st2.skipped.is_empty());
        let mut want = view(&src, a.id, true).await;
        let mut got = view(&dst, b.id, true).await;
        // INBOX existed before the import, so its UIDVALIDITY is the target's own.
        want.iter_mut()
            .chain(got.iter_mut())
            .filter(|m| m.0 == "INBOX")
            .for_each(|m| {
                m.1 = 0;
                m.2.iter_mut().for_each(|x| {
                    if x.3 != "OLD-UIDL-7" {
                        x.3.clear()
                    }
                });
            });
        assert_eq!(want, got);
        assert!(dst.mailbox(b.id, "Projects/v1.0").await.unwrap().subscribed);
        let meta = dst
            .message_meta(
                dst.mailbox(b.id, "INBOX").await.unwrap().mailbox,
                &UidSet::all(),
            )
            .await
            .unwrap();
        assert_eq!(meta[0].origin, Origin::Imported("import".into()));
    });
}

#[test]
fn mbox_round_trip_is_lossless() {
    rt().block_on(async {
        let src = MemoryStore::with_config(StoreConfig::for_tests());
        let a = fill(&src).await;
        let inbox = src.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let mut out = Vec::new();
        let st = export_mbox(&src, inbox, &mut out).await.unwrap();
        assert_eq!(st.messages, 5);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("From MAILER-DAEMON Sun Sep 13 12:26:40 2020\nX-Mailstore-Meta: uid=1 n=2\nStatus: RO\nX-Keywords: $Forwarded\nSubject: one\r\n\r\n>From here on\r\n>>From quoted\r\n>>>From twice\r\n\n"), "{text}");
        let tmp = tempfile::tempdir().unwrap();
        let dst = DiskStore::open(tmp.path(), StoreConfig::for_tests()).unwrap();
        let b = dst.create_account(NewAccount::new("dst@example.org", None)).await.unwrap();
        let target = dst.create_mailbox(b.id, "Restored", CreateMailbox::default()).await.unwrap().mailbox;
        let st2 = import_mbox(&dst, target, &mut &out[..], &ImportOptions::default()).await.unwrap();
        assert_eq!(st2.messages, 5, "{:?}", st2.skipped);
        let want = view(&src, a.id, true).await.into_iter().find(|m| m.0 == "INBOX").unwrap().2;
        let got = view(&dst, b.id, true).await.into_iter().find(|m| m.0 == "Restored").unwrap().2;
        let strip = |v: Vec<Msg>| v.into_iter().map(|x| (x.0, x.1, x.2, x.4)).collect::<Vec<_>>();
        assert_eq!(strip(want), strip(got));
    });
}

#[test]
fn foreign_mbox_and_bad_entries() {
    rt().block_on(async {
        let s = MemoryStore::with_config(StoreConfig::for_tests());
        let a = s.create_account(NewAccount::new("f@example.org", None)).await.unwrap();
        let inbox = s.mailbox(a.id, "INBOX").await.unwrap().mailbox;
        let mbox = b"junk before\nFrom alice@example.org Sat Jan  3 01:05:34 1996\nStatus: RO\nX-Status: F\nSubject: hi\n\n>From the start\n\nFrom bob Sat Jan  3 01:05:35 1996\nnot a header line\n\n";
        let st = import_mbox(&s, inbox, &mut &mbox[..], &ImportOptions::default().origin("legacy")).await.unwrap();
        assert_eq!(st.messages, 1);
        assert_eq!(st.skipped.len(), 1);
        assert!(st.skipped[0].contains("not a mail message"), "{:?}", st.skipped);
        let snap = s.snapshot(inbox).await.unwrap();
        assert_eq!(snap.messages[0].flags.system, SystemFlags::SEEN.union(SystemFlags::FLAGGED));
        let body = s.open_body(inbox, 1).await.unwrap().read_all().await.unwrap();
        assert_eq!(body, b"Status: RO\nX-Status: F\nSubject: hi\n\nFrom the start\n");
        let meta = s.message_meta(inbox, &UidSet::all()).await.unwrap();
        assert_eq!(meta[0].internal_date, Timestamp(820_631_134));
        assert_eq!(meta[0].origin, Origin::Imported("legacy".into()));
    });
}

/// Python's `mailbox` module reads our Maildir and mbox exports, and writes a Maildir we
/// import.
#[test]
fn python_mailbox_interop() {
    if !mail_testkit::peer::require("python3", "Python's mailbox module reads our exports") {
        return;
    }
    rt().block_on(async {
        let src = MemoryStore::with_config(StoreConfig::for_tests());
        let a = fill(&src).await;
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("maildir");
        export_maildir(&src, a.id, &md).await.unwrap();
        let mbox_path = dir.path().join("inbox.mbox");
        let mut out = Vec::new();
        export_mbox(
            &src,
            src.mailbox(a.id, "INBOX").await.unwrap().mailbox,
            &mut out,
        )
        .await
        .unwrap();
        std::fs::write(&mbox_path, &out).unwrap();
        let script = r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for m in sorted(md, key=lambda m: m['Subject']):
    print('INBOX', m['Subject'], m.get_flags(), int(m.get_date()))
for f in sorted(md.list_folders()):
    sub = md.get_folder(f)
    print('FOLDER', f, len(sub))
for m in mailbox.mbox(sys.argv[2]):
    print('MBOX', m['Subject'], m.get_flags(), repr(m.get_payload()[:20]))
out = mailbox.Maildir(sys.argv[3], create=True)
msg = mailbox.MaildirMessage(b'Subject: from python\n\nhello\n')
msg.set_flags('FS')
msg.set_subdir('cur')
out.add(msg)
"#;
        let py_out = dir.path().join("py");
        let o = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&md)
            .arg(&mbox_path)
            .arg(&py_out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines.contains(&"INBOX five  1600000400"), "{stdout}");
        assert!(lines.contains(&"INBOX one Sa 1600000000"), "{stdout}");
        assert!(lines.contains(&"INBOX four DT 1600000300"), "{stdout}");
        assert!(lines.contains(&"FOLDER Projects.v1%2E0 5"), "{stdout}");
        assert!(lines.contains(&"FOLDER Sent 5"), "{stdout}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("MBOX one RO") && l.contains("From here on")),
            "{stdout}"
        );
        assert_eq!(lines.iter().filter(|l| l.starts_with("MBOX")).count(), 5);
        // And back: a Maildir written by Python.
        let b = src
            .create_account(NewAccount::new("py@example.org", None))
            .await
            .unwrap();
        let st = import_maildir(&src, b.id, &py_out, &ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(st.messages, 1);
        let inbox = src.mailbox(b.id, "INBOX").await.unwrap().mailbox;
        let snap = src.snapshot(inbox).await.unwrap();
        assert_eq!(
            snap.messages[0].flags.system,
            SystemFlags::SEEN.union(SystemFlags::FLAGGED)
        );
        assert_eq!(
            src.open_body(inbox, 1)
                .await
                .unwrap()
                .read_all()
                .await
                .unwrap(),
            b"Subject: from python\n\nhello\n"
        );
    });
}
