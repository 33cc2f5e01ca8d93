//! One conformance suite, generic over `MailStore`, run against both backends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use bytes::Bytes;
use common::{Fixture, msg};
use mailstore_core::*;

async fn account<S: MailStore>(s: &S, addr: &str) -> (AccountInfo, MailboxRef) {
    let a = s
        .create_account(NewAccount::new(addr, Some("pw")))
        .await
        .unwrap();
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap();
    (a, inbox.mailbox)
}

async fn accounts_and_aliases<F: Fixture>() {
    let (s, _g) = F::make();
    let a = s
        .create_account(NewAccount::new("Alice@Example.ORG", Some("pw")))
        .await
        .unwrap();
    assert_eq!(a.address, "Alice@example.org");
    let boxes = s.list_mailboxes(a.id).await.unwrap();
    let names: Vec<_> = boxes
        .iter()
        .map(|b| (b.name.as_str(), b.special_use))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Archive", Some(SpecialUse::Archive)),
            ("Drafts", Some(SpecialUse::Drafts)),
            ("INBOX", None),
            ("Junk", Some(SpecialUse::Junk)),
            ("Sent", Some(SpecialUse::Sent)),
            ("Trash", Some(SpecialUse::Trash)),
        ]
    );
    assert!(
        boxes
            .iter()
            .all(|b| b.subscribed && b.uidnext == 1 && b.highest_modseq == 1)
    );
    // UIDVALIDITY differs between mailboxes.
    let mut uv: Vec<u32> = boxes.iter().map(|b| b.uidvalidity).collect();
    uv.sort_unstable();
    uv.dedup();
    assert_eq!(uv.len(), 6);

    assert_eq!(
        s.find_account("alice@example.org")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(
        s.find_account("ALICE@EXAMPLE.ORG")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(s.find_account("bob@example.org").await.unwrap().is_none());
    assert!(s.find_account("garbage").await.unwrap().is_none());
    assert!(matches!(
        s.create_account(NewAccount::new("alice@EXAMPLE.org", None))
            .await,
        Err(StoreError::AddressInUse(_))
    ));
    assert!(matches!(
        s.create_account(NewAccount::new("no-at-sign", None)).await,
        Err(StoreError::InvalidAddress(_))
    ));
    s.add_alias(a.id, "al@Example.org").await.unwrap();
    assert_eq!(
        s.find_account("AL@example.org").await.unwrap().unwrap().id,
        a.id
    );
    assert_eq!(
        s.account(a.id).await.unwrap().aliases,
        vec!["al@example.org".to_string()]
    );
    let b = s
        .create_account(NewAccount::new("bob@example.org", None))
        .await
        .unwrap();
    assert!(matches!(
        s.add_alias(b.id, "al@example.org").await,
        Err(StoreError::AddressInUse(_))
    ));
    for i in 1..100 {
        s.add_alias(a.id, &format!("al{i}@example.org"))
            .await
            .unwrap();
    }
    assert!(matches!(
        s.add_alias(a.id, "one-too-many@example.org").await,
        Err(StoreError::InvalidArgument(_))
    ));
    for i in 1..100 {
        s.remove_alias(a.id, &format!("al{i}@example.org"))
            .await
            .unwrap();
    }
    s.remove_alias(a.id, "al@example.org").await.unwrap();
    assert!(s.find_account("al@example.org").await.unwrap().is_none());
    assert!(matches!(
        s.remove_alias(a.id, "al@example.org").await,
        Err(StoreError::NotFound(_))
    ));

    s.set_access(
        a.id,
        ProtocolAccess {
            pop3: false,
            imap: true,
            smtp: true,
        },
    )
    .await
    .unwrap();
    let info = s.account(a.id).await.unwrap();
    assert!(!info.allows(Protocol::Pop3));
    assert!(info.allows(Protocol::Imap));

    assert_eq!(s.list_accounts().await.unwrap().len(), 2);
    s.delete_account(b.id).await.unwrap();
    assert!(s.find_account("bob@example.org").await.unwrap().is_none());
    assert!(matches!(
        s.account(b.id).await,
        Err(StoreError::NoSuchAccount(_))
    ));
    // The address can be reused; the id is new.
    let b2 = s
        .create_account(NewAccount::new("bob@example.org", None))
        .await
        .unwrap();
    assert_ne!(b2.id, b.id);
}

async fn credentials<F: Fixture>() {
    let (s, _g) = F::make();
    let a = s
        .create_account(NewAccount::new("carol@example.org", Some("right")))
        .await
        .unwrap();
    let ok = s.verify_login("carol@EXAMPLE.org", "right").await.unwrap();
    assert_eq!(ok.account.id, a.id);
    assert_eq!(ok.via, LoginVia::Password);
    assert!(matches!(
        s.verify_login("carol@example.org", "wrong").await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        s.verify_login("nobody@example.org", "right").await,
        Err(StoreError::AuthFailed)
    ));

    let secret = s.create_app_password(a.id, "phone").await.unwrap();
    assert_eq!(secret.len(), 19);
    let listed = s.list_app_passwords(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "phone");
    assert_eq!(listed[0].last_used, None);
    let ok = s.verify_login("carol@example.org", &secret).await.unwrap();
    assert_eq!(ok.via, LoginVia::AppPassword("phone".into()));
    // Typed without dashes, in upper case: still the same app password.
    let typed = secret.replace('-', "").to_uppercase();
    assert_eq!(
        s.verify_login("carol@example.org", &typed)
            .await
            .unwrap()
            .via,
        LoginVia::AppPassword("phone".into())
    );
    assert!(
        s.list_app_passwords(a.id).await.unwrap()[0]
            .last_used
            .is_some()
    );
    assert!(s.create_app_password(a.id, "phone").await.is_err());
    s.revoke_app_password(a.id, "phone").await.unwrap();
    assert!(matches!(
        s.verify_login("carol@example.org", &secret).await,
        Err(StoreError::AuthFailed)
    ));
    assert!(matches!(
        s.revoke_app_password(a.id, "phone").await,
        Err(StoreError::NotFound(_))
    ));

    s.set_password(a.id, Some("new")).await.unwrap();
    assert!(s.verify_login("carol@example.org", "right").await.is_err());
    assert!(s.verify_login("carol@example.org", "new").await.is_ok());
    s.set_password(a.id, None).await.unwrap();
    assert!(s.verify_login("carol@example.org", "new").await.is_err());
    assert!(!s.account(a.id).await.unwrap().has_password);

    assert_eq!(s.plaintext_secret(a.id).await.unwrap(), None);
    s.set_plaintext_secret(a.id, Some("apop-secret"))
        .await
        .unwrap();
    assert_eq!(
        s.plaintext_secret(a.id).await.unwrap(),
        Some(PlaintextSecret("apop-secret".into()))
    );
    assert!(s.account(a.id).await.unwrap().has_plaintext_secret);
    assert_eq!(
        format!("{:?}", s.plaintext_secret(a.id).await.unwrap()),
        "Some(PlaintextSecret(<redacted>))"
    );
    // Neither the store's Debug output shows hashes or secrets.
    let dbg = format!("{s:?}");
    assert!(
        !dbg.contains("argon2") && !dbg.contains("apop-secret"),
        "{dbg}"
    );
}

async fn settings<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, _) = account(&s, "dave@example.org").await;
    let acc = SettingsScope::Account(a.id);
    let dom = SettingsScope::Domain("Example.ORG".into());
    assert_eq!(s.get_setting(&acc, "pop3").await.unwrap(), None);
    s.put_setting(&acc, "pop3", b"scope = 'inbox'".to_vec())
        .await
        .unwrap();
    s.put_setting(&dom, "pop3", b"domain".to_vec())
        .await
        .unwrap();
    s.put_setting(&acc, "imap", b"x".to_vec()).await.unwrap();
    assert_eq!(
        s.get_setting(&acc, "pop3").await.unwrap().unwrap(),
        b"scope = 'inbox'"
    );
    assert_eq!(
        s.get_setting(&SettingsScope::Domain("example.org".into()), "pop3")
            .await
            .unwrap()
            .unwrap(),
        b"domain"
    );
    assert_eq!(s.list_settings(&acc).await.unwrap(), vec!["imap", "pop3"]);
    s.delete_setting(&acc, "imap").await.unwrap();
    assert_eq!(s.list_settings(&acc).await.unwrap(), vec!["pop3"]);
    assert!(matches!(
        s.put_setting(&SettingsScope::Account(AccountId(9999)), "k", vec![])
            .await,
        Err(StoreError::NoSuchAccount(_))
    ));
    assert!(
        s.put_setting(&acc, "big", vec![0; 2 * 1024 * 1024])
            .await
            .is_err()
    );
    s.delete_account(a.id).await.unwrap();
    assert_eq!(s.get_setting(&acc, "pop3").await.unwrap(), None);
}

async fn mailboxes<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, _) = account(&s, "erin@example.org").await;
    let w = s
        .create_mailbox(a.id, "Work", CreateMailbox::default())
        .await
        .unwrap();
    assert!(!w.subscribed);
    s.create_mailbox(a.id, "Work/2024", CreateMailbox::default())
        .await
        .unwrap();
    s.create_mailbox(a.id, "Work/2024/Q1", CreateMailbox::default())
        .await
        .unwrap();
    s.create_mailbox(a.id, "Workshop", CreateMailbox::default())
        .await
        .unwrap();
    assert!(matches!(
        s.create_mailbox(a.id, "Work", CreateMailbox::default())
            .await,
        Err(StoreError::MailboxExists(_))
    ));
    assert!(matches!(
        s.create_mailbox(a.id, "inbox", CreateMailbox::default())
            .await,
        Err(StoreError::MailboxExists(_))
    ));
    for bad in [
        "", "a//b", "../etc", "a/..", ".hidden", "a\0b", "a\nb", "x*", "/abs", "trail/",
    ] {
        assert!(
            matches!(
                s.create_mailbox(a.id, bad, CreateMailbox::default()).await,
                Err(StoreError::InvalidName(_))
            ),
            "{bad:?} was accepted"
        );
    }
    assert!(matches!(
        s.create_mailbox(a.id, &"x".repeat(2000), CreateMailbox::default())
            .await,
        Err(StoreError::InvalidName(InvalidName::TooLong { .. }))
    ));
    // Append to a child, then rename the parent: UIDVALIDITY and messages follow.
    let q1 = s.mailbox(a.id, "Work/2024/Q1").await.unwrap();
    s.append(q1.mailbox, AppendOptions::default(), msg("q1", "x"))
        .await
        .unwrap();
    s.set_subscribed(a.id, "Work/2024/Q1", true).await.unwrap();
    s.rename_mailbox(a.id, "Work", "Jobs").await.unwrap();
    let names: Vec<String> = s
        .list_mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.contains(&"Jobs".to_string()));
    assert!(names.contains(&"Jobs/2024".to_string()));
    assert!(names.contains(&"Jobs/2024/Q1".to_string()));
    assert!(
        names.contains(&"Workshop".to_string()),
        "a sibling with the same prefix moved"
    );
    assert!(!names.iter().any(|n| n.starts_with("Work/") || n == "Work"));
    let moved = s.mailbox(a.id, "Jobs/2024/Q1").await.unwrap();
    assert_eq!(moved.mailbox, q1.mailbox);
    assert_eq!(moved.uidvalidity, q1.uidvalidity);
    assert_eq!(moved.messages, 1);
    assert!(moved.subscribed);
    // Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty.
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap();
    let _ = s
        .append(inbox.mailbox, AppendOptions::default(), msg("in", "x"))
        .await
        .unwrap();
    s.create_mailbox(a.id, "INBOX/Child", CreateMailbox::default())
        .await
        .unwrap();
    s.rename_mailbox(a.id, "inbox", "Old").await.unwrap();
    let old = s.mailbox(a.id, "Old").await.unwrap();
    assert_eq!(old.messages, 1);
    let inbox2 = s.mailbox(a.id, "INBOX").await.unwrap();
    assert_eq!(
        (inbox2.mailbox, inbox2.messages, inbox2.uidvalidity),
        (inbox.mailbox, 0, inbox.uidvalidity)
    );
    assert!(s.mailbox(a.id, "INBOX/Child").await.is_ok());
    assert!(matches!(
        s.rename_mailbox(a.id, "INBOX", "Old").await,
        Err(StoreError::MailboxExists(_))
    ));
    assert!(matches!(
        s.rename_mailbox(a.id, "Jobs", "Jobs/x").await,
        Err(StoreError::NotAllowed(_))
    ));
    assert!(matches!(
        s.rename_mailbox(a.id, "Jobs", "Sent").await,
        Err(StoreError::MailboxExists(_))
    ));
    assert!(matches!(
        s.rename_mailbox(a.id, "Nope", "X").await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.delete_mailbox(a.id, "inbox").await,
        Err(StoreError::NotAllowed(_))
    ));
    s.delete_mailbox(a.id, "Jobs/2024/Q1").await.unwrap();
    assert!(matches!(
        s.mailbox(a.id, "Jobs/2024/Q1").await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.snapshot(q1.mailbox).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert_eq!(
        s.quota_usage(a.id).await.unwrap().messages,
        1,
        "only the message moved to Old"
    );
    // Recreating gives a new UIDVALIDITY.
    let again = s
        .create_mailbox(a.id, "Jobs/2024/Q1", CreateMailbox::default())
        .await
        .unwrap();
    assert_ne!(again.uidvalidity, q1.uidvalidity);
    assert_ne!(again.mailbox, q1.mailbox);
    s.set_special_use(a.id, "Jobs", Some(SpecialUse::Archive))
        .await
        .unwrap();
    assert_eq!(
        s.mailbox(a.id, "Jobs").await.unwrap().special_use,
        Some(SpecialUse::Archive)
    );
    let forced = s
        .create_mailbox(a.id, "Imported", CreateMailbox::default().uidvalidity(42))
        .await
        .unwrap();
    assert_eq!(forced.uidvalidity, 42);
}

async fn append_and_fetch<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, inbox) = account(&s, "frank@example.org").await;
    let status0 = s.mailbox_status(inbox).await.unwrap();
    let m1 = msg("one", "first body");
    let opts =
        AppendOptions::with_flags(Flags::system(SystemFlags::SEEN).with_keyword("$Forwarded"))
            .internal_date(Timestamp(1_700_000_000));
    let r1 = s.append(inbox, opts, m1.clone()).await.unwrap();
    assert_eq!(r1.uid, 1);
    assert_eq!(r1.uidvalidity, status0.uidvalidity);
    assert_eq!(r1.modseq, 2);
    assert_eq!(r1.size, m1.len() as u64);
    // Streamed append in small chunks.
    let m2 = msg("two", &"line\r\n".repeat(1000));
    let mut sink = s
        .begin_append(inbox, AppendOptions::default())
        .await
        .unwrap();
    for c in m2.chunks(7) {
        sink.write(c).await.unwrap();
    }
    let r2 = sink.commit().await.unwrap();
    assert_eq!(r2.uid, 2);
    assert_eq!(r2.modseq, 3);

    let st = s.mailbox_status(inbox).await.unwrap();
    assert_eq!(
        (st.messages, st.unseen, st.uidnext, st.highest_modseq),
        (2, 1, 3, 3)
    );
    assert_eq!(st.size, (m1.len() + m2.len()) as u64);

    let snap = s.snapshot(inbox).await.unwrap();
    assert_eq!(snap.messages.len(), 2);
    assert_eq!(snap.messages[0].uid, 1);
    assert_eq!(snap.messages[0].flags.names(), vec!["\\Seen", "$Forwarded"]);
    assert!(snap.messages[1].flags.system.is_empty());

    let meta = s.message_meta(inbox, &UidSet::all()).await.unwrap();
    assert_eq!(meta.len(), 2);
    assert_eq!(meta[0].internal_date, Timestamp(1_700_000_000));
    assert_eq!(meta[0].size, m1.len() as u64);
    assert_eq!(meta[0].origin, Origin::Delivered);
    assert_eq!(meta[0].message_id.as_deref(), Some("<one@example.org>"));
    assert_eq!(meta[0].uidl, format!("{:08x}{:08x}", st.uidvalidity, 1));
    assert!(meta[0].digest.is_some());
    assert_ne!(meta[0].digest, meta[1].digest);
    assert!(meta[1].received.0 > 1_700_000_000);

    assert_eq!(
        s.open_body(inbox, 1)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap(),
        m1.to_vec()
    );
    assert_eq!(
        s.open_body(inbox, 2)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap(),
        m2.to_vec()
    );
    let r = s.open_range(inbox, 1, 6, 9).await.unwrap();
    assert_eq!(r.len(), 9);
    assert_eq!(r.read_all().await.unwrap(), b"a@example");
    let past = s.open_range(inbox, 1, 10_000, 5).await.unwrap();
    assert_eq!(past.read_all().await.unwrap(), b"");
    let tail = s
        .open_range(inbox, 1, m1.len() as u64 - 5, 100)
        .await
        .unwrap();
    assert_eq!(tail.read_all().await.unwrap(), b"ody\r\n");
    assert!(matches!(
        s.open_body(inbox, 3).await,
        Err(StoreError::NoSuchMessage(3))
    ));

    // Importer: forced UID, custom UIDL, origin.
    let imp = AppendOptions::default()
        .uid(100)
        .uidl("legacy-uidl-1")
        .origin(Origin::Imported("pop.old.example".into()));
    let r3 = s.append(inbox, imp, msg("three", "x")).await.unwrap();
    assert_eq!(r3.uid, 100);
    assert_eq!(s.mailbox_status(inbox).await.unwrap().uidnext, 101);
    let m3 = s.message_meta(inbox, &UidSet::single(100)).await.unwrap();
    assert_eq!(m3[0].uidl, "legacy-uidl-1");
    assert_eq!(m3[0].origin, Origin::Imported("pop.old.example".into()));
    let dup = AppendOptions::default().uidl("legacy-uidl-1");
    assert!(matches!(
        s.append(inbox, dup, msg("d", "x")).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let low = AppendOptions::default().uid(50);
    assert!(matches!(
        s.append(inbox, low, msg("d", "x")).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let bad_kw = AppendOptions::with_flags(Flags::new().with_keyword("bad keyword"));
    assert!(matches!(
        s.append(inbox, bad_kw, msg("d", "x")).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let _ = a;
}

async fn bad_messages_store_nothing<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, inbox) = account(&s, "gina@example.org").await;
    let before = s.mailbox_status(inbox).await.unwrap();
    let err = s
        .append(
            inbox,
            AppendOptions::default(),
            Bytes::from_static(b"just text\r\n"),
        )
        .await;
    assert!(
        matches!(
            err,
            Err(StoreError::InvalidMessage(InvalidMessage::NoHeader))
        ),
        "{err:?}"
    );
    let err = s
        .append(inbox, AppendOptions::default(), Bytes::new())
        .await;
    assert!(
        matches!(err, Err(StoreError::InvalidMessage(InvalidMessage::Empty))),
        "{err:?}"
    );
    // Over the size limit, found while streaming.
    let mut sink = s
        .begin_append(inbox, AppendOptions::default())
        .await
        .unwrap();
    sink.write(b"Subject: big\r\n\r\n").await.unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    let mut failed = None;
    for _ in 0..60 {
        if let Err(e) = sink.write(&chunk).await {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the limit was not enforced");
    assert!(
        e.to_string().contains("over the limit of 52428800 bytes"),
        "{e}"
    );
    assert!(matches!(
        sink.commit().await,
        Err(StoreError::AppendAborted(_))
    ));
    // Aborted appends store nothing.
    let mut sink = s
        .begin_append(inbox, AppendOptions::default())
        .await
        .unwrap();
    sink.write(b"Subject: x\r\n\r\n").await.unwrap();
    sink.abort().await;
    let sink = s
        .begin_append(inbox, AppendOptions::default())
        .await
        .unwrap();
    drop(sink);
    let after = s.mailbox_status(inbox).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(s.quota_usage(a.id).await.unwrap().messages, 0);
}

async fn quota<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, inbox) = account(&s, "hank@example.org").await;
    let m = msg("q", "x");
    let max = 3 * m.len() as u64 + 10;
    s.set_quota(
        a.id,
        Quota {
            max_bytes: Some(max),
            max_messages: Some(2),
        },
    )
    .await
    .unwrap();
    s.append(inbox, AppendOptions::default(), m.clone())
        .await
        .unwrap();
    let big = msg("big", &"y".repeat(200));
    let e = s
        .append(inbox, AppendOptions::default(), big)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::OverQuota { resource: "storage", limit, .. } if limit == max),
        "{e}"
    );
    s.append(inbox, AppendOptions::default(), m.clone())
        .await
        .unwrap();
    let e = s
        .append(inbox, AppendOptions::default(), m.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::OverQuota {
                resource: "messages",
                would_be: 3,
                limit: 2
            }
        ),
        "{e}"
    );
    let sent = s.mailbox(a.id, "Sent").await.unwrap().mailbox;
    assert!(matches!(
        s.copy(inbox, &UidSet::all(), sent).await,
        Err(StoreError::OverQuota { .. })
    ));
    // Moving does not add usage.
    s.move_messages(inbox, &UidSet::single(1), sent)
        .await
        .unwrap();
    let u = s.quota_usage(a.id).await.unwrap();
    assert_eq!(u.messages, 2);
    assert_eq!(u.bytes, 2 * m.len() as u64);
    s.expunge(sent, &UidSet::all()).await.unwrap();
    assert_eq!(s.quota_usage(a.id).await.unwrap().messages, 1);
    s.append(inbox, AppendOptions::default(), m).await.unwrap();
}

async fn flags_and_condstore<F: Fixture>() {
    let (s, _g) = F::make();
    let (_, inbox) = account(&s, "ivy@example.org").await;
    for i in 0..5 {
        s.append(inbox, AppendOptions::default(), msg(&format!("m{i}"), "b"))
            .await
            .unwrap();
    }
    // modseqs 2..=6
    let seen = Flags::system(SystemFlags::SEEN);
    let out = s
        .store_flags(inbox, &UidSet::range(1, 3), FlagOp::Add, &seen, None)
        .await
        .unwrap();
    assert!(out.modified.is_empty());
    assert_eq!(
        out.updated
            .iter()
            .map(|m| (m.uid, m.modseq))
            .collect::<Vec<_>>(),
        vec![(1, 7), (2, 7), (3, 7)]
    );
    assert_eq!(s.mailbox_status(inbox).await.unwrap().unseen, 2);
    // No change: MODSEQ stays.
    let out = s
        .store_flags(inbox, &UidSet::single(1), FlagOp::Add, &seen, None)
        .await
        .unwrap();
    assert_eq!(out.updated[0].modseq, 7);
    assert_eq!(s.mailbox_status(inbox).await.unwrap().highest_modseq, 7);
    // UNCHANGEDSINCE 6: 1..3 have modseq 7 and fail; 4 passes.
    let fl = Flags::system(SystemFlags::FLAGGED).with_keyword("Work");
    let out = s
        .store_flags(inbox, &UidSet::range(1, 4), FlagOp::Add, &fl, Some(6))
        .await
        .unwrap();
    assert_eq!(out.modified, vec![1, 2, 3]);
    assert_eq!(out.updated.len(), 1);
    assert_eq!(out.updated[0].uid, 4);
    assert_eq!(out.updated[0].modseq, 8);
    assert!(out.updated[0].flags.has_keyword("work"));
    // Replace and remove.
    let out = s
        .store_flags(
            inbox,
            &UidSet::single(4),
            FlagOp::Replace,
            &Flags::new().with_keyword("Other"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.updated[0].flags.names(), vec!["Other"]);
    let out = s
        .store_flags(
            inbox,
            &UidSet::single(4),
            FlagOp::Remove,
            &Flags::new().with_keyword("OTHER"),
            None,
        )
        .await
        .unwrap();
    assert!(out.updated[0].flags.keywords().is_empty());
    assert_eq!(out.updated[0].modseq, 10);
    let ch = s.changes_since(inbox, 7).await.unwrap();
    assert_eq!(
        ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![4]
    );
    assert!(ch.vanished.is_empty());
    assert_eq!(ch.highest_modseq, 10);
    // Expunge: tombstones with their MODSEQ.
    let gone = s
        .expunge(inbox, &UidSet::from_iter([2, 5, 77]))
        .await
        .unwrap();
    assert_eq!(gone, vec![2, 5]);
    let ch = s.changes_since(inbox, 10).await.unwrap();
    assert_eq!(ch.vanished, vec![2, 5]);
    assert!(ch.changed.is_empty());
    assert_eq!(ch.highest_modseq, 11);
    assert!(
        s.changes_since(inbox, 11)
            .await
            .unwrap()
            .vanished
            .is_empty()
    );
    let all = s.changes_since(inbox, 0).await.unwrap();
    assert_eq!(
        all.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert!(
        s.store_flags(
            inbox,
            &UidSet::all(),
            FlagOp::Add,
            &Flags::new().with_keyword("a b"),
            None
        )
        .await
        .is_err()
    );
    assert!(all.vanished_complete);
    // Purging tombstones up to MODSEQ 11 forgets UIDs 2 and 5.
    let _ = s
        .store_flags(
            inbox,
            &UidSet::single(1),
            FlagOp::Add,
            &Flags::new().with_keyword("p"),
            None,
        )
        .await
        .unwrap(); // MODSEQ 12
    let _ = s.expunge(inbox, &UidSet::single(3)).await.unwrap(); // MODSEQ 13
    assert_eq!(s.purge_tombstones(inbox, 11).await.unwrap(), 2);
    assert_eq!(s.purge_tombstones(inbox, 11).await.unwrap(), 0);
    let ch = s.changes_since(inbox, 5).await.unwrap();
    assert_eq!(ch.vanished, vec![3]);
    assert!(!ch.vanished_complete);
    let ch = s.changes_since(inbox, 11).await.unwrap();
    assert_eq!(ch.vanished, vec![3]);
    assert!(ch.vanished_complete);
    // UIDs are never reused.
    let r = s
        .append(inbox, AppendOptions::default(), msg("after", "b"))
        .await
        .unwrap();
    assert_eq!(r.uid, 6);
}

async fn copy_and_move<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, inbox) = account(&s, "jack@example.org").await;
    let arch = s.mailbox(a.id, "Archive").await.unwrap();
    for i in 0..3 {
        let o = AppendOptions::with_flags(
            Flags::system(SystemFlags::FLAGGED).with_keyword(format!("k{i}")),
        );
        s.append(inbox, o, msg(&format!("c{i}"), "body"))
            .await
            .unwrap();
    }
    let uidl2 = s.message_meta(inbox, &UidSet::single(2)).await.unwrap()[0]
        .uidl
        .clone();
    let c = s
        .copy(inbox, &UidSet::range(1, 2), arch.mailbox)
        .await
        .unwrap();
    assert_eq!(c.uidvalidity, arch.uidvalidity);
    assert_eq!(
        c.mapping,
        vec![UidMapping { from: 1, to: 1 }, UidMapping { from: 2, to: 2 }]
    );
    let snap = s.snapshot(arch.mailbox).await.unwrap();
    assert_eq!(snap.messages[1].flags.names(), vec!["\\Flagged", "k1"]);
    assert_eq!(
        s.open_body(arch.mailbox, 2)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap(),
        s.open_body(inbox, 2)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap()
    );
    // Copies get their own UIDL; moves keep it.
    assert_ne!(
        s.message_meta(arch.mailbox, &UidSet::single(2))
            .await
            .unwrap()[0]
            .uidl,
        uidl2
    );
    let m = s
        .move_messages(inbox, &UidSet::range(2, 3), arch.mailbox)
        .await
        .unwrap();
    assert_eq!(
        m.mapping,
        vec![UidMapping { from: 2, to: 3 }, UidMapping { from: 3, to: 4 }]
    );
    assert_eq!(
        s.message_meta(arch.mailbox, &UidSet::single(3))
            .await
            .unwrap()[0]
            .uidl,
        uidl2
    );
    assert_eq!(s.snapshot(inbox).await.unwrap().messages.len(), 1);
    assert_eq!(
        s.changes_since(inbox, 0).await.unwrap().vanished,
        vec![2, 3]
    );
    // Expunging the original keeps the copy readable.
    s.expunge(inbox, &UidSet::all()).await.unwrap();
    assert_eq!(
        s.open_body(arch.mailbox, 1)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap(),
        msg("c0", "body").to_vec()
    );
    assert!(matches!(
        s.move_messages(arch.mailbox, &UidSet::all(), arch.mailbox)
            .await,
        Err(StoreError::NotAllowed(_))
    ));
    let empty = s.copy(inbox, &UidSet::all(), arch.mailbox).await.unwrap();
    assert!(empty.mapping.is_empty());
}

async fn isolation<F: Fixture>() {
    let (s, _g) = F::make();
    let (a, a_inbox) = account(&s, "kate@example.org").await;
    let (b, b_inbox) = account(&s, "liam@example.org").await;
    s.append(a_inbox, AppendOptions::default(), msg("secret", "for kate"))
        .await
        .unwrap();
    // Bob names Alice's mailbox id with his own account id.
    let forged = MailboxRef {
        account: b.id,
        mailbox: a_inbox.mailbox,
    };
    assert!(matches!(
        s.snapshot(forged).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.open_body(forged, 1).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.open_range(forged, 1, 0, 10).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.message_meta(forged, &UidSet::all()).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.expunge(forged, &UidSet::all()).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.subscribe(forged).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.changes_since(forged, 0).await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        s.store_flags(forged, &UidSet::all(), FlagOp::Add, &Flags::new(), None)
            .await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(
        s.append(forged, AppendOptions::default(), msg("x", "y"))
            .await
            .is_err()
    );
    assert!(s.copy(a_inbox, &UidSet::all(), b_inbox).await.is_err());
    assert!(
        s.move_messages(forged, &UidSet::all(), b_inbox)
            .await
            .is_err()
    );
    assert!(s.copy(forged, &UidSet::all(), b_inbox).await.is_err());
    // Names cannot escape either.
    for name in [
        "../kate@example.org/INBOX",
        "..",
        "INBOX/../../x",
        "/INBOX",
        "kate@example.org/INBOX",
    ] {
        let r = s.mailbox(b.id, name).await;
        assert!(
            matches!(
                r,
                Err(StoreError::InvalidName(_)) | Err(StoreError::NoSuchMailbox(_))
            ),
            "{name}: {r:?}"
        );
    }
    assert_eq!(s.mailbox_status(a_inbox).await.unwrap().messages, 1);
    assert_eq!(s.mailbox_status(b_inbox).await.unwrap().messages, 0);
    let _ = a;
}

async fn change_feed<F: Fixture>() {
    let (s, _g) = F::make();
    let (_, inbox) = account(&s, "mia@example.org").await;
    let mut sub = s.subscribe(inbox).await.unwrap();
    let mut sub2 = s.subscribe(inbox).await.unwrap();
    assert!(sub.try_recv().is_none());
    s.append(inbox, AppendOptions::default(), msg("n", "b"))
        .await
        .unwrap();
    assert_eq!(sub.recv().await, ChangeEvent::New { uid: 1, modseq: 2 });
    s.store_flags(
        inbox,
        &UidSet::single(1),
        FlagOp::Add,
        &Flags::system(SystemFlags::SEEN),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        sub.recv().await,
        ChangeEvent::FlagsChanged {
            uid: 1,
            flags: Flags::system(SystemFlags::SEEN),
            modseq: 3
        }
    );
    s.expunge(inbox, &UidSet::all()).await.unwrap();
    assert_eq!(
        sub.recv().await,
        ChangeEvent::Expunged {
            uids: vec![1],
            modseq: 4
        }
    );
    assert!(sub.try_recv().is_none());
    assert_eq!(sub2.recv().await, ChangeEvent::New { uid: 1, modseq: 2 });
    // sub2 now lags behind 2000 events (capacity 1024): told to resync.
    for _ in 0..1000 {
        s.store_flags(
            inbox,
            &UidSet::all(),
            FlagOp::Add,
            &Flags::system(SystemFlags::SEEN),
            None,
        )
        .await
        .unwrap();
        s.append(inbox, AppendOptions::default(), msg("n", "b"))
            .await
            .unwrap();
        s.store_flags(
            inbox,
            &UidSet::all(),
            FlagOp::Remove,
            &Flags::system(SystemFlags::SEEN),
            None,
        )
        .await
        .unwrap();
        if s.mailbox_status(inbox).await.unwrap().messages > 2 {
            break;
        }
    }
    for _ in 0..1100 {
        s.store_flags(
            inbox,
            &UidSet::all(),
            FlagOp::Replace,
            &Flags::new().with_keyword("x"),
            None,
        )
        .await
        .unwrap();
        s.store_flags(inbox, &UidSet::all(), FlagOp::Replace, &Flags::new(), None)
            .await
            .unwrap();
    }
    assert_eq!(sub2.recv().await, ChangeEvent::Resync);
    // Deleting the mailbox ends the feed.
    let (acc, _) = (s.mailbox_status(inbox).await.unwrap().mailbox.account, ());
    let other = s
        .create_mailbox(acc, "Tmp", CreateMailbox::default())
        .await
        .unwrap();
    let mut sub3 = s.subscribe(other.mailbox).await.unwrap();
    s.delete_mailbox(acc, "Tmp").await.unwrap();
    assert_eq!(sub3.recv().await, ChangeEvent::MailboxGone);
}

async fn concurrent_appends<F: Fixture>() {
    let (s, _g) = F::make();
    let (_, inbox) = account(&s, "noah@example.org").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..10 {
                let r = s
                    .append(
                        inbox,
                        AppendOptions::default(),
                        msg(&format!("t{t}-{i}"), "b"),
                    )
                    .await
                    .unwrap();
                uids.push(r.uid);
            }
            uids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=80).collect::<Vec<u32>>());
    let st = s.mailbox_status(inbox).await.unwrap();
    assert_eq!((st.messages, st.uidnext, st.highest_modseq), (80, 81, 81));
}

async fn feed_in_modseq_order<F: Fixture>() {
    let (s, _g) = F::make();
    let (_, inbox) = account(&s, "olive@example.org").await;
    for i in 0..4 {
        let _ = s
            .append(inbox, AppendOptions::default(), msg(&format!("o{i}"), "b"))
            .await
            .unwrap();
    }
    let mut sub = s.subscribe(inbox).await.unwrap();
    let tasks: Vec<_> = (1..=4u32)
        .map(|uid| {
            let s = s.clone();
            tokio::spawn(async move {
                for round in 0..10 {
                    let f = if round % 2 == 0 {
                        Flags::system(SystemFlags::FLAGGED)
                    } else {
                        Flags::new()
                    };
                    let _ = s
                        .store_flags(inbox, &UidSet::single(uid), FlagOp::Replace, &f, None)
                        .await
                        .unwrap();
                    let _ = s
                        .append(inbox, AppendOptions::default(), msg("more", "b"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut last = 0;
    let mut n = 0;
    while let Some(e) = sub.try_recv() {
        let m = match e {
            ChangeEvent::New { modseq, .. } | ChangeEvent::FlagsChanged { modseq, .. } => modseq,
            other => panic!("unexpected {other:?}"),
        };
        assert!(m > last, "event MODSEQ {m} after {last}");
        last = m;
        n += 1;
    }
    assert_eq!(n, 80);
    assert_eq!(last, s.mailbox_status(inbox).await.unwrap().highest_modseq);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(120), super::$name::<common::Mem>())
                        .await
                        .expect("test timed out");
                }
            )*
        }
        mod disk {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(120), super::$name::<common::Disk>())
                        .await
                        .expect("test timed out");
                }
            )*
        }
    };
}

suite!(
    accounts_and_aliases,
    credentials,
    settings,
    mailboxes,
    append_and_fetch,
    bad_messages_store_nothing,
    quota,
    flags_and_condstore,
    copy_and_move,
    isolation,
    change_feed,
    concurrent_appends,
    feed_in_modseq_order,
);
