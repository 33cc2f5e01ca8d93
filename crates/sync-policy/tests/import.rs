//! IMP-1 .. IMP-5: external POP3 import policy, table-driven.

use std::collections::BTreeMap;

use sync_policy::import::{
    AUTO_FETCH_INTERVAL_SECS, AutoFetchState, FailureOutcome, ImportAccountSettings, LedgerEntry,
    RemoteDeletion, RemoteMessage, RemoteServer, TlsMode, plan_import_run,
};
use sync_policy::{OrgSettings, PolicyError, UnixTime, UserSettings};

const DAY: i64 = 86_400;
const MB: u64 = 1024 * 1024;

fn account(f: impl FnOnce(&mut ImportAccountSettings)) -> ImportAccountSettings {
    let mut a = ImportAccountSettings::default();
    a.server = RemoteServer::Gmail;
    a.username = "someone@gmail.com".into();
    f(&mut a);
    a
}

fn remote(msgno: u32, uidl: &str, size: u64) -> RemoteMessage {
    RemoteMessage {
        msgno,
        uidl: uidl.into(),
        size,
    }
}

#[test]
fn imp1_presets_and_account_limit() {
    let table = [
        (
            RemoteServer::Gmail,
            ("pop.gmail.com", 995, TlsMode::Implicit),
        ),
        (
            RemoteServer::Yahoo,
            ("pop.mail.yahoo.com", 995, TlsMode::Implicit),
        ),
        (
            RemoteServer::Outlook,
            ("outlook.office365.com", 995, TlsMode::Implicit),
        ),
        (
            RemoteServer::Custom {
                host: "pop.example.net".into(),
                port: 110,
                tls: TlsMode::StartTls,
            },
            ("pop.example.net", 110, TlsMode::StartTls),
        ),
    ];
    for (server, want) in table {
        assert_eq!(server.endpoint(), want);
    }
    let ten: Vec<_> = (0..10)
        .map(|i| account(|a| a.username = format!("user{i}@gmail.com")))
        .collect();
    assert_eq!(ImportAccountSettings::validate_all(&ten), Ok(()));
    let mut eleven = ten.clone();
    eleven.push(account(|a| a.username = "user10@gmail.com".into()));
    assert_eq!(
        ImportAccountSettings::validate_all(&eleven),
        Err(PolicyError::InvalidImport {
            reason: "at most 10 external accounts can be registered".into()
        })
    );
    let twice = [account(|_| {}), account(|_| {})];
    assert_eq!(
        ImportAccountSettings::validate_all(&twice)
            .unwrap_err()
            .to_string(),
        "external account: this external account is already registered"
    );
}

#[test]
fn imp1_account_validation() {
    let table: [(ImportAccountSettings, Option<&str>); 6] = [
        (account(|_| {}), None),
        (
            ImportAccountSettings::default(),
            Some("external account: choose a provider or enter the POP3 server"),
        ),
        (
            account(|a| a.username.clear()),
            Some("external account: enter the login name of the external account"),
        ),
        (
            account(|a| {
                a.server = RemoteServer::Custom {
                    host: "pop.example.net".into(),
                    port: 0,
                    tls: TlsMode::Implicit,
                }
            }),
            Some("external account: the POP3 port must be between 1 and 65535"),
        ),
        (
            account(|a| a.size_limit = 0),
            Some("the import size limit must be at least 1"),
        ),
        (
            account(|a| a.destination_folder.clear()),
            Some("folder name \"\" is not usable: it is empty"),
        ),
    ];
    for (a, want) in table {
        assert_eq!(
            a.validate().err().map(|e| e.to_string()).as_deref(),
            want,
            "{a:?}"
        );
    }
}

#[test]
fn imp1_plan_gate_in_user_validation() {
    let mut org = OrgSettings::default();
    let mut user = UserSettings::default();
    user.imports.push(account(|_| {}));
    assert_eq!(user.validate(&org), Ok(()));
    org.plan.external_import = false;
    assert_eq!(
        user.validate(&org),
        Err(PolicyError::InvalidImport {
            reason: "external mail import is not included in your organisation's plan".into()
        })
    );
}

#[test]
fn imp2_first_run_imports_all_later_runs_only_new() {
    let settings = account(|_| {});
    let now = UnixTime(1_000);
    let listing = [remote(1, "a", 10), remote(2, "b", 20), remote(3, "c", 30)];
    let first = plan_import_run(&listing, &BTreeMap::new(), &settings, now);
    assert_eq!(first.fetch, vec![1, 2, 3]);

    let mut ledger = BTreeMap::new();
    ledger.insert("a".to_string(), LedgerEntry::Imported { at: now });
    ledger.insert("b".to_string(), LedgerEntry::Imported { at: now });
    ledger.insert("gone".to_string(), LedgerEntry::Imported { at: now });
    // An interrupted run stored a and b; the next run fetches c and a new message d.
    let listing = [
        remote(1, "a", 10),
        remote(2, "b", 20),
        remote(3, "c", 30),
        remote(4, "d", 5),
        remote(5, "d", 5),
    ];
    let later = plan_import_run(&listing, &ledger, &settings, now);
    assert_eq!(
        later.fetch,
        vec![3, 4],
        "a UIDL listed twice is fetched once"
    );
    assert_eq!(later.forget, vec!["gone".to_string()]);
    assert!(later.delete_remote.is_empty() && !later.delete_fetched);
}

#[test]
fn imp3_large_messages_skipped_and_reported_once() {
    let settings = account(|_| {});
    let listing = [
        remote(1, "small", 50 * MB - 1),
        remote(2, "big", 50 * MB),
        remote(3, "huge", 200 * MB),
    ];
    let plan = plan_import_run(&listing, &BTreeMap::new(), &settings, UnixTime(0));
    assert_eq!(plan.fetch, vec![1]);
    assert_eq!(
        plan.skip_too_large,
        vec![remote(2, "big", 50 * MB), remote(3, "huge", 200 * MB)]
    );

    let ledger: BTreeMap<_, _> =
        [("big".to_string(), LedgerEntry::Skipped { at: UnixTime(0) })].into();
    let plan = plan_import_run(&listing, &ledger, &settings, UnixTime(600));
    assert_eq!(plan.skip_too_large, vec![remote(3, "huge", 200 * MB)]);
    // A lower per-account limit (IMP-4).
    let small = account(|a| a.size_limit = 1024);
    let plan = plan_import_run(
        &[remote(1, "x", 1023), remote(2, "y", 1024)],
        &BTreeMap::new(),
        &small,
        UnixTime(0),
    );
    assert_eq!((plan.fetch, plan.skip_too_large.len()), (vec![1], 1));
}

#[test]
fn imp4_remote_deletion_options() {
    let now = UnixTime(100 * DAY);
    let ledger: BTreeMap<_, _> = [
        (
            "old".to_string(),
            LedgerEntry::Imported {
                at: UnixTime(90 * DAY),
            },
        ),
        (
            "recent".to_string(),
            LedgerEntry::Imported {
                at: UnixTime(99 * DAY),
            },
        ),
        (
            "skipped".to_string(),
            LedgerEntry::Skipped { at: UnixTime(0) },
        ),
    ]
    .into();
    let listing = [
        remote(1, "old", 1),
        remote(2, "recent", 1),
        remote(3, "skipped", 1),
        remote(4, "new", 1),
    ];
    let table = [
        (RemoteDeletion::Keep, vec![], false),
        (RemoteDeletion::WhenImported, vec![1, 2], true),
        (RemoteDeletion::AfterDays { days: 7 }, vec![1], false),
        (RemoteDeletion::AfterDays { days: 10 }, vec![1], false),
        (RemoteDeletion::AfterDays { days: 11 }, vec![], false),
    ];
    for (mode, delete, delete_fetched) in table {
        let plan = plan_import_run(
            &listing,
            &ledger,
            &account(|a| a.remote_deletion = mode),
            now,
        );
        assert_eq!(
            (plan.delete_remote, plan.delete_fetched),
            (delete, delete_fetched),
            "{mode:?}"
        );
        assert_eq!(plan.fetch, vec![4]);
    }
    let d = ImportAccountSettings::default();
    assert_eq!(
        (
            d.destination_folder.as_str(),
            d.remote_deletion,
            d.apply_filters
        ),
        ("INBOX", RemoteDeletion::Keep, false)
    );
}

#[test]
fn imp5_auto_fetch_every_10_minutes_disabled_after_10_failures() {
    let settings = account(|_| {});
    let mut state = AutoFetchState::default();
    assert_eq!(
        state.next_due(&settings),
        Some(UnixTime(i64::MIN)),
        "a new account is due at once"
    );
    state.record_success(UnixTime(1_000));
    assert_eq!(
        state.next_due(&settings),
        Some(UnixTime(1_000 + AUTO_FETCH_INTERVAL_SECS))
    );
    assert_eq!(AUTO_FETCH_INTERVAL_SECS, 600);

    for i in 1..10 {
        assert_eq!(
            state.record_failure(UnixTime(1_000 + 600 * i64::from(i)), "wrong password"),
            FailureOutcome::Retry { failures: i }
        );
    }
    // A success in between resets the count.
    state.record_success(UnixTime(7_000));
    assert_eq!(state.consecutive_failures, 0);
    for i in 1..10 {
        let _ = state.record_failure(UnixTime(7_000 + 600 * i), "-ERR [AUTH] invalid\r\n");
    }
    let out = state.record_failure(UnixTime(20_000), "-ERR [AUTH] invalid\r\n");
    let want = "Automatic fetch was turned off after 10 failed attempts in a row (last error: -ERR [AUTH] invalid); \
                check the account settings and password, then turn automatic fetch on again";
    assert_eq!(
        out,
        FailureOutcome::Disabled {
            message: want.into()
        }
    );
    assert_eq!(state.next_due(&settings), None);
    state.reenable();
    assert_eq!(state.next_due(&settings), Some(UnixTime(20_000 + 600)));
    let manual = account(|a| a.auto_fetch = false);
    assert_eq!(state.next_due(&manual), None);
}

#[test]
fn imp_settings_roundtrip() {
    let a = account(|a| {
        a.server = RemoteServer::Custom {
            host: "pop.example.net".into(),
            port: 110,
            tls: TlsMode::StartTls,
        };
        a.remote_deletion = RemoteDeletion::AfterDays { days: 14 };
        a.label = Some("old ISP".into());
        a.apply_filters = true;
    });
    let mut user = UserSettings::default();
    user.imports = vec![a, account(|_| {})];
    let text = toml::to_string(&user).unwrap();
    assert_eq!(toml::from_str::<UserSettings>(&text).unwrap(), user);
    let state = AutoFetchState::default();
    assert_eq!(
        toml::from_str::<AutoFetchState>(&toml::to_string(&state).unwrap()).unwrap(),
        state
    );
}
