//! External POP3 import engine against a real Dovecot POP3 server (IMP-1..5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_common;

use std::time::Duration;

use engine_common::{Dovecot, message};
use mailstore_core::{
    AccountId, MailStore, MemoryStore, NewAccount, Origin, SettingsScope, SystemFlags, UidSet,
};
use sync_policy::UnixTime;
use sync_policy::engine::pop3::{
    Pop3Import, Pop3Source, RegisteredImport, add_account, load_accounts,
};
use sync_policy::engine::{Credentials, EngineError};
use sync_policy::filter::{
    Action, Condition, FilterRule, FilterSettings, HeaderField, MatchMode, TextMatch,
};
use sync_policy::import::{
    DEFAULT_IMPORT_SIZE_LIMIT, FailureOutcome, ImportAccountSettings, RemoteDeletion, RemoteServer,
    TlsMode,
};

const T0: i64 = 1_700_000_000;

fn settings(d: &Dovecot) -> ImportAccountSettings {
    let mut s = ImportAccountSettings::default();
    s.server = RemoteServer::Custom {
        host: "127.0.0.1".into(),
        port: d.pop3(),
        tls: TlsMode::None,
    };
    s.username = "tester".into();
    s
}

fn source(_d: &Dovecot, s: ImportAccountSettings, password: &str) -> Pop3Source {
    let mut src = Pop3Source::new(s, Credentials::password("tester", password));
    src.timeout = Duration::from_secs(20);
    src
}

async fn setup() -> (MemoryStore, AccountId) {
    let store = MemoryStore::new();
    let a = store
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap();
    (store, a.id)
}

/// Messages in `folder` that the import stored (not notices).
async fn imported(
    store: &MemoryStore,
    account: AccountId,
    folder: &str,
) -> Vec<mailstore_core::MessageMeta> {
    let mbx = store.mailbox(account, folder).await.unwrap();
    store
        .message_meta(mbx.mailbox, &UidSet::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| matches!(&m.origin, Origin::Imported(l) if l.starts_with("pop3:")))
        .collect()
}

async fn notices(store: &MemoryStore, account: AccountId) -> Vec<String> {
    let mbx = store.mailbox(account, "INBOX").await.unwrap();
    let mut out = Vec::new();
    for m in store
        .message_meta(mbx.mailbox, &UidSet::all())
        .await
        .unwrap()
    {
        if m.origin == Origin::Delivered {
            let body = store.open_body(mbx.mailbox, m.uid).await.unwrap();
            out.push(String::from_utf8(body.read_all().await.unwrap()).unwrap());
        }
    }
    out
}

async fn run(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn imp2_first_run_imports_all_second_run_only_new() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        for i in 0..3 {
            d.seed(
                "tester",
                "INBOX",
                &format!("{T0}.M{i}.a"),
                "",
                T0 + i as i64,
                &message(i, "first batch", 0),
            );
        }
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let src = source(&d, settings(&d), "secret");
        let r1 = imp.run(&src, None, UnixTime(T0)).await.unwrap();
        assert_eq!(r1.imported.len(), 3, "{:?}", d.log());
        assert_eq!(r1.already_imported, 0);
        assert_eq!(imported(&store, acct, "INBOX").await.len(), 3);
        assert_eq!(imp.ledger().await.unwrap().len(), 3);

        for i in 3..5 {
            d.seed(
                "tester",
                "INBOX",
                &format!("{T0}.M{i}.a"),
                "",
                T0 + i as i64,
                &message(i, "second batch", 0),
            );
        }
        let r2 = imp.run(&src, None, UnixTime(T0 + 600)).await.unwrap();
        assert_eq!(r2.imported.len(), 2);
        assert_eq!(r2.already_imported, 3);
        let metas = imported(&store, acct, "INBOX").await;
        assert_eq!(metas.len(), 5);
        // Bytes arrive exactly as on the remote server.
        let mbx = store.mailbox(acct, "INBOX").await.unwrap();
        let last = metas.last().unwrap();
        let body = store
            .open_body(mbx.mailbox, last.uid)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap();
        assert_eq!(body, message(4, "second batch", 0));

        let r3 = imp.run(&src, None, UnixTime(T0 + 1200)).await.unwrap();
        assert!(r3.imported.is_empty());
        assert_eq!(r3.already_imported, 5);
        // The remote keeps its mail by default (IMP-4 keep).
        assert_eq!(
            std::fs::read_dir(d.maildir("tester", "INBOX").join("cur"))
                .unwrap()
                .count(),
            5
        );
    })
    .await;
}

#[tokio::test]
async fn imp3_too_large_message_skipped_reported_once() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed("tester", "INBOX", "1.small", "", T0, &message(1, "small", 0));
        d.seed("tester", "INBOX", "2.big", "", T0, &message(2, "big", 8000));
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let mut s = settings(&d);
        s.size_limit = 4096; // the 50 MiB default is checked in imp3_default_limit_is_50_mib
        let src = source(&d, s, "secret");
        let r = imp.run(&src, None, UnixTime(T0)).await.unwrap();
        assert_eq!(r.imported.len(), 1);
        assert_eq!(r.skipped_too_large.len(), 1);
        assert!(r.skipped_too_large[0].size >= 8000);
        let n = notices(&store, acct).await;
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("Subject: Mail import: large messages were skipped\r\n"), "{}", n[0]);
        assert!(n[0].replace("\r\n", " ").contains("1 message(s) on 127.0.0.1 for tester were not imported because they are 4096 bytes or larger"));
        // Second run: not fetched, not reported again.
        let r2 = imp.run(&src, None, UnixTime(T0 + 600)).await.unwrap();
        assert!(r2.imported.is_empty() && r2.skipped_too_large.is_empty());
        assert_eq!(notices(&store, acct).await.len(), 1);
    })
    .await;
}

#[test]
fn imp3_default_limit_is_50_mib() {
    assert_eq!(DEFAULT_IMPORT_SIZE_LIMIT, 50 * 1024 * 1024);
    assert_eq!(
        ImportAccountSettings::default().size_limit,
        50 * 1024 * 1024
    );
    let remote = [
        sync_policy::import::RemoteMessage {
            msgno: 1,
            uidl: "a".into(),
            size: 50 * 1024 * 1024 - 1,
        },
        sync_policy::import::RemoteMessage {
            msgno: 2,
            uidl: "b".into(),
            size: 50 * 1024 * 1024,
        },
    ];
    let mut s = ImportAccountSettings::default();
    s.server = RemoteServer::Gmail;
    s.username = "u".into();
    let plan = sync_policy::import::plan_import_run(&remote, &Default::default(), &s, UnixTime(0));
    assert_eq!(plan.fetch, vec![1]);
    assert_eq!(plan.skip_too_large.len(), 1);
}

#[tokio::test]
async fn imp4_destination_label_filters_and_delete_when_imported() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed(
            "tester",
            "INBOX",
            "1.a",
            "",
            T0,
            &message(1, "invoice 42", 0),
        );
        d.seed("tester", "INBOX", "2.b", "", T0, &message(2, "hello", 0));
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let mut s = settings(&d);
        s.destination_folder = "External".into();
        s.label = Some("Gmail".into());
        s.apply_filters = true;
        s.remote_deletion = RemoteDeletion::WhenImported;
        let mut filters = FilterSettings::default();
        filters.rules = vec![FilterRule::new(
            "invoices",
            MatchMode::All,
            vec![Condition::Header {
                field: HeaderField::Subject,
                op: TextMatch::Contains,
                value: "invoice".into(),
            }],
            vec![Action::MoveTo("Invoices".into()), Action::MarkRead],
        )];
        let src = source(&d, s, "secret");
        let r = imp.run(&src, Some(&filters), UnixTime(T0)).await.unwrap();
        assert_eq!(r.imported.len(), 2);
        assert_eq!(r.remote_deleted, 2);
        let inv = imported(&store, acct, "Invoices").await;
        assert_eq!(inv.len(), 1);
        assert!(inv[0].flags.system.contains(SystemFlags::SEEN));
        assert!(inv[0].flags.has_keyword("Gmail"));
        let ext = imported(&store, acct, "External").await;
        assert_eq!(ext.len(), 1);
        assert!(!ext[0].flags.system.contains(SystemFlags::SEEN));
        // Deleted on the remote server (DELE + QUIT).
        let cur = std::fs::read_dir(d.maildir("tester", "INBOX").join("cur"))
            .unwrap()
            .count();
        assert_eq!(cur, 0, "{}", d.log());
    })
    .await;
}

#[tokio::test]
async fn imp4_delete_after_days() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed("tester", "INBOX", "1.a", "", T0, &message(1, "x", 0));
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let mut s = settings(&d);
        s.remote_deletion = RemoteDeletion::AfterDays { days: 3 };
        let src = source(&d, s, "secret");
        let r = imp.run(&src, None, UnixTime(T0)).await.unwrap();
        assert_eq!((r.imported.len(), r.remote_deleted), (1, 0));
        let r = imp
            .run(&src, None, UnixTime(T0 + 2 * 86_400))
            .await
            .unwrap();
        assert_eq!((r.imported.len(), r.remote_deleted), (0, 0));
        let r = imp
            .run(&src, None, UnixTime(T0 + 3 * 86_400))
            .await
            .unwrap();
        assert_eq!((r.imported.len(), r.remote_deleted), (0, 1));
        assert_eq!(
            std::fs::read_dir(d.maildir("tester", "INBOX").join("cur"))
                .unwrap()
                .count(),
            0
        );
        // The remote message is gone: its ledger entry is forgotten on the next run.
        let _ = imp
            .run(&src, None, UnixTime(T0 + 4 * 86_400))
            .await
            .unwrap();
        assert!(imp.ledger().await.unwrap().is_empty());
        assert_eq!(imported(&store, acct, "INBOX").await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn imp2_crash_between_store_and_ledger_neither_loses_nor_duplicates() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        for i in 0..3 {
            d.seed(
                "tester",
                "INBOX",
                &format!("{i}.m"),
                "",
                T0,
                &message(i, "crash", 0),
            );
        }
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let src = source(&d, settings(&d), "secret");
        let r = imp.run(&src, None, UnixTime(T0)).await.unwrap();
        assert_eq!(r.imported.len(), 3);
        let scope = SettingsScope::Account(acct);
        let metas = imported(&store, acct, "INBOX").await;
        // Simulate a crash after message 1's append and before its ledger record, with
        // the pending record written (the normal case) ...
        let uidl1 = &r.imported[0].remote_uidl;
        store
            .delete_setting(&scope, &format!("imp/ext1/u/{uidl1}"))
            .await
            .unwrap();
        store
            .put_setting(
                &scope,
                "imp/ext1/pending",
                format!("INBOX\n{}\n{uidl1}", metas[0].uidl).into_bytes(),
            )
            .await
            .unwrap();
        // ... and message 2's ledger record lost without a pending record (belt and braces:
        // the store refuses the same marker UIDL twice).
        let uidl2 = &r.imported[1].remote_uidl;
        store
            .delete_setting(&scope, &format!("imp/ext1/u/{uidl2}"))
            .await
            .unwrap();

        let r2 = imp.run(&src, None, UnixTime(T0 + 600)).await.unwrap();
        assert_eq!(r2.recovered, 1);
        assert_eq!(
            r2.imported.len(),
            1,
            "message 2 fetched again but stored once"
        );
        assert_eq!(r2.imported[0].uid, 0, "the store already had it");
        assert_eq!(imported(&store, acct, "INBOX").await.len(), 3);
        assert_eq!(imp.ledger().await.unwrap().len(), 3);
        assert_eq!(
            store.get_setting(&scope, "imp/ext1/pending").await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn imp5_wrong_password_turns_auto_fetch_off_after_10_failures() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed("tester", "INBOX", "1.a", "", T0, &message(1, "x", 0));
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let s = settings(&d);
        let src = source(&d, s.clone(), "wrong password");
        // Fake clock: the scheduler asks at t, t+600, ...; nothing sleeps.
        let mut now = T0;
        assert_eq!(imp.next_due(&s).await.unwrap(), Some(UnixTime(i64::MIN)));
        for i in 1..=10u32 {
            let out = imp.run_if_due(&src, None, UnixTime(now)).await.unwrap();
            let err = out.expect("due").unwrap_err();
            assert!(matches!(err, EngineError::Auth { .. }), "{err}");
            let st = imp.auto_state().await.unwrap();
            assert_eq!(st.consecutive_failures, i);
            if i < 10 {
                assert_eq!(imp.next_due(&s).await.unwrap(), Some(UnixTime(now + 600)));
                // Not due one second early.
                assert!(
                    imp.run_if_due(&src, None, UnixTime(now + 599))
                        .await
                        .unwrap()
                        .is_none()
                );
            }
            now += 600;
        }
        let st = imp.auto_state().await.unwrap();
        let reason = st.disabled_reason.clone().expect("disabled");
        assert!(
            reason.starts_with("Automatic fetch was turned off after 10 failed attempts in a row")
        );
        assert_eq!(imp.next_due(&s).await.unwrap(), None);
        assert!(
            imp.run_if_due(&src, None, UnixTime(now + 10_000))
                .await
                .unwrap()
                .is_none()
        );
        let n = notices(&store, acct).await;
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("Subject: Mail import: automatic fetch was turned off\r\n"));
        assert!(n[0].contains("Automatic fetch was turned off after 10 failed attempts"));
        // The user fixes the password and turns it on again.
        imp.reenable().await.unwrap();
        let good = source(&d, s.clone(), "secret");
        let r = imp
            .run_if_due(&good, None, UnixTime(now))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(r.imported.len(), 1);
        assert_eq!(imp.auto_state().await.unwrap().consecutive_failures, 0);
        assert_eq!(imp.next_due(&s).await.unwrap(), Some(UnixTime(now + 600)));
    })
    .await;
}

#[tokio::test]
async fn imp5_record_failure_outcomes() {
    let (store, acct) = setup().await;
    let imp = Pop3Import::new(&store, acct, "x").unwrap();
    for i in 1..10 {
        assert_eq!(
            imp.record_failure(UnixTime(i), "boom").await.unwrap(),
            FailureOutcome::Retry { failures: i as u32 }
        );
    }
    assert!(matches!(
        imp.record_failure(UnixTime(10), "boom").await.unwrap(),
        FailureOutcome::Disabled { .. }
    ));
}

#[tokio::test]
async fn imp1_at_most_10_accounts_and_presets() {
    let (store, acct) = setup().await;
    for i in 0..10 {
        let mut s = ImportAccountSettings::default();
        s.server = match i % 3 {
            0 => RemoteServer::Gmail,
            1 => RemoteServer::Yahoo,
            _ => RemoteServer::Outlook,
        };
        s.username = format!("user{i}");
        add_account(&store, acct, RegisteredImport::new(format!("a{i}"), s))
            .await
            .unwrap();
    }
    let mut s = ImportAccountSettings::default();
    s.server = RemoteServer::Custom {
        host: "pop.example.net".into(),
        port: 110,
        tls: TlsMode::StartTls,
    };
    s.username = "eleventh".into();
    let err = add_account(&store, acct, RegisteredImport::new("a10", s))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "external account: at most 10 external accounts can be registered"
    );
    let list = load_accounts(&store, acct).await.unwrap();
    assert_eq!(list.len(), 10);
    assert_eq!(
        list[0].settings.server.endpoint(),
        ("pop.gmail.com", 995, TlsMode::Implicit)
    );
    assert_eq!(
        list[1].settings.server.endpoint(),
        ("pop.mail.yahoo.com", 995, TlsMode::Implicit)
    );
    assert_eq!(
        list[2].settings.server.endpoint(),
        ("outlook.office365.com", 995, TlsMode::Implicit)
    );
    assert!(Pop3Import::new(&store, acct, "bad/id").is_err());
}

#[tokio::test]
async fn imp1_apop_login() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed("tester", "INBOX", "1.a", "", T0, &message(1, "apop", 0));
        let (store, acct) = setup().await;
        let imp = Pop3Import::new(&store, acct, "ext1").unwrap();
        let mut src = source(&d, settings(&d), "secret");
        src.apop = true;
        let r = imp.run(&src, None, UnixTime(T0)).await.unwrap();
        assert_eq!(r.imported.len(), 1);
        assert!(
            d.log().contains("apop") || !d.log().contains("auth failed"),
            "{}",
            d.log()
        );
    })
    .await;
}

#[tokio::test]
async fn imp1_implicit_tls_and_stls() {
    let Some(d) = Dovecot::start() else { return };
    run(async {
        d.seed("tester", "INBOX", "1.a", "", T0, &message(1, "tls", 0));
        let (store, acct) = setup().await;
        for (i, (port, tls)) in [
            (d.pop3s(), TlsMode::Implicit),
            (d.pop3(), TlsMode::StartTls),
        ]
        .into_iter()
        .enumerate()
        {
            let imp = Pop3Import::new(&store, acct, &format!("tls{i}")).unwrap();
            let mut s = settings(&d);
            s.server = RemoteServer::Custom {
                host: "localhost".into(),
                port,
                tls,
            };
            let mut src = source(&d, s.clone(), "secret");
            // Without trust anchors the engine refuses to connect in the clear.
            let err = imp.run(&src, None, UnixTime(T0)).await.unwrap_err();
            assert!(
                err.to_string().contains("no TLS client configuration"),
                "{err}"
            );
            src.connector = Some(d.connector());
            let r = imp
                .run(&src, None, UnixTime(T0))
                .await
                .unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", d.log()));
            assert_eq!(r.imported.len(), 1, "{tls:?}");
        }
        assert_eq!(imported(&store, acct, "INBOX").await.len(), 2);
    })
    .await;
}
