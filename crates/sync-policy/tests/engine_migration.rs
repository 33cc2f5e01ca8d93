//! IMAP migration engine against a real Dovecot IMAP server (MIG-1..6), plus XOAUTH2 /
//! OAUTHBEARER on the wire (ACC-10) against a scripted server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_common::{Dovecot, message};
use imap_proto::tokio::{Client, ClientConfig};
use mail_sasl::Secret;
use mailstore_core::{
    AccountId, DiskStore, MailStore, MemoryStore, NewAccount, Origin, SettingsScope, SpecialUse,
    StoreConfig, StoreError, SystemFlags, UidSet,
};
use sync_policy::UnixTime;
use sync_policy::engine::migration::{
    ImapSource, MigrationJob, MigrationOptions, MigrationRunner, Progress, Recovery,
    ServerTemplate, migrate, rollback_interrupted,
};
use sync_policy::engine::{Auth, Credentials, Endpoint};
use sync_policy::import::TlsMode;
use sync_policy::migration::Notice;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const T0: i64 = 1_690_000_000;

/// 12 messages in 5 folders: INBOX (4, flags), Work (3), Work.Projects (2),
/// "Sent Messages" (\Sent, 2), Drafts (\Drafts, 1).
fn seed(d: &Dovecot, user: &str) {
    let inbox_flags = ["S", "", "FS", "RS"];
    for (i, f) in inbox_flags.iter().enumerate() {
        d.seed(
            user,
            "INBOX",
            &format!("{}.M{i}.x", T0 + i as i64),
            f,
            T0 + 100 * i as i64,
            &message(i, "inbox", 0),
        );
    }
    for i in 0..3 {
        d.seed(
            user,
            "Work",
            &format!("{}.W{i}.x", T0 + i),
            "S",
            T0 + 1000 + i,
            &message(10 + i as usize, "work", 0),
        );
    }
    for i in 0..2 {
        d.seed(
            user,
            "Work.Projects",
            &format!("{}.P{i}.x", T0 + i),
            "",
            T0 + 2000 + i,
            &message(20 + i as usize, "projects", 0),
        );
    }
    for i in 0..2 {
        d.seed(
            user,
            "Sent Messages",
            &format!("{}.S{i}.x", T0 + i),
            "S",
            T0 + 3000 + i,
            &message(30 + i as usize, "sent", 0),
        );
    }
    d.seed(
        user,
        "Drafts",
        &format!("{T0}.D0.x"),
        "D",
        T0 + 4000,
        &message(40, "draft", 0),
    );
}

fn source(d: &Dovecot, user: &str) -> ImapSource {
    let ep =
        Endpoint::new("127.0.0.1", d.imap(), TlsMode::None).with_timeout(Duration::from_secs(20));
    ImapSource::new(ep, Credentials::password(user, "secret"))
}

fn quiet() -> MigrationOptions {
    let mut o = MigrationOptions::default();
    o.deliver_notices = false;
    o
}

async fn new_account<S: MailStore>(store: &S) -> AccountId {
    store
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id
}

/// Everything observable about the destination: folders and each message's UID, flags,
/// INTERNALDATE and size.
type State = Vec<(
    String,
    Option<SpecialUse>,
    Vec<(u32, Vec<String>, i64, u64)>,
)>;

async fn state<S: MailStore>(store: &S, acct: AccountId) -> State {
    let mut out = Vec::new();
    for mbx in store.list_mailboxes(acct).await.unwrap() {
        let msgs = store
            .message_meta(mbx.mailbox, &UidSet::all())
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.uid, m.flags.names(), m.internal_date.0, m.size))
            .collect();
        out.push((mbx.name, mbx.special_use, msgs));
    }
    out
}

async fn migrated<S: MailStore>(
    store: &S,
    acct: AccountId,
    folder: &str,
) -> Vec<mailstore_core::MessageMeta> {
    let mbx = store.mailbox(acct, folder).await.unwrap();
    store
        .message_meta(mbx.mailbox, &UidSet::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| matches!(&m.origin, Origin::Imported(l) if l.starts_with("mig:")))
        .collect()
}

async fn guard(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test timed out");
}

async fn source_uidvalidity(d: &Dovecot, folder: &str) -> u32 {
    let mut c = Client::connect(("127.0.0.1", d.imap()), ClientConfig::plain())
        .await
        .unwrap();
    c.login("tester", "secret").await.unwrap();
    let v = c.examine(folder).await.unwrap().uid_validity.unwrap();
    c.logout().await.unwrap();
    v
}

fn cur_names(d: &Dovecot, folder: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.maildir("tester", folder).join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn mig1_every_folder_with_flags_dates_special_use_and_uids() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let inbox_before = cur_names(&d, "INBOX");
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let report = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &MigrationOptions::default(),
            UnixTime(T0),
            move |p: &Progress| ev.lock().unwrap().push(p.clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log()));
        assert_eq!(report.copied, 12);
        assert_eq!(report.already_copied, 0);
        let folders: Vec<(&str, &str, bool, bool, u64)> = report
            .folders
            .iter()
            .map(|f| {
                (
                    f.source.as_str(),
                    f.destination.as_str(),
                    f.created,
                    f.uids_kept,
                    f.copied,
                )
            })
            .collect();
        assert_eq!(
            folders,
            vec![
                ("INBOX", "INBOX", false, false, 4),
                ("Drafts", "Drafts", false, false, 1),
                ("Sent Messages", "Sent", false, false, 2),
                ("Work", "Work", true, true, 3),
                ("Work.Projects", "Work/Projects", true, true, 2),
            ]
        );
        // Flags and INTERNALDATE kept.
        let inbox = migrated(&store, acct, "INBOX").await;
        let flags: Vec<SystemFlags> = inbox.iter().map(|m| m.flags.system).collect();
        assert_eq!(
            flags,
            vec![
                SystemFlags::SEEN,
                SystemFlags::empty(),
                SystemFlags::SEEN.union(SystemFlags::FLAGGED),
                SystemFlags::SEEN.union(SystemFlags::ANSWERED),
            ]
        );
        let dates: Vec<i64> = inbox.iter().map(|m| m.internal_date.0).collect();
        assert_eq!(dates, vec![T0, T0 + 100, T0 + 200, T0 + 300]);
        assert!(
            migrated(&store, acct, "Drafts").await[0]
                .flags
                .system
                .contains(SystemFlags::DRAFT)
        );
        // New folders keep the source's UIDVALIDITY and UIDs.
        let work = store.mailbox(acct, "Work").await.unwrap();
        assert_eq!(work.uidvalidity, source_uidvalidity(&d, "Work").await);
        let uids: Vec<u32> = migrated(&store, acct, "Work")
            .await
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, vec![1, 2, 3]);
        // Bytes identical.
        let body = store
            .open_body(work.mailbox, 2)
            .await
            .unwrap()
            .read_all()
            .await
            .unwrap();
        assert_eq!(body, message(11, "work", 0));
        // Progress events in order.
        let ev = events.lock().unwrap().clone();
        assert_eq!(ev.first(), Some(&Progress::Started { folders: 5 }));
        assert_eq!(
            ev.last(),
            Some(&Progress::Completed {
                copied: 12,
                already_copied: 0
            })
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Progress::Message { .. }))
                .count(),
            12
        );
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Progress::FolderDone { .. }))
                .count(),
            5
        );
        // Notices in the INBOX (MIG-3).
        let inbox_mbx = store.mailbox(acct, "INBOX").await.unwrap();
        let mut subjects = Vec::new();
        for m in store
            .message_meta(inbox_mbx.mailbox, &UidSet::all())
            .await
            .unwrap()
        {
            if m.origin == Origin::Delivered {
                let b = store
                    .open_body(inbox_mbx.mailbox, m.uid)
                    .await
                    .unwrap()
                    .read_all()
                    .await
                    .unwrap();
                let text = String::from_utf8(b).unwrap();
                subjects.push(
                    text.lines()
                        .find(|l| l.starts_with("Subject: "))
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        assert_eq!(
            subjects.first().map(String::as_str),
            Some("Subject: Mail migration started")
        );
        assert_eq!(
            subjects.last().map(String::as_str),
            Some("Subject: Mail migration completed")
        );
        // MIG-5: the source is unchanged (no \Seen set by the copy).
        assert_eq!(cur_names(&d, "INBOX"), inbox_before);
        // The job's journal is gone once it completed.
        assert_eq!(
            store
                .get_setting(&SettingsScope::Account(acct), "mig/job1/journal")
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn mig6_same_migration_twice_adds_nothing() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let r1 = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!(r1.copied, 12);
        let after_first = state(&store, acct).await;
        let r2 = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0 + 60),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!((r2.copied, r2.already_copied), (0, 12));
        assert_eq!(state(&store, acct).await, after_first);
    })
    .await;
}

#[tokio::test]
async fn mig6_content_dedupe_when_source_uidvalidity_changes() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let r1 = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!(r1.copied, 12);
        let after_first = state(&store, acct).await;
        // The source rebuilds its index: new UIDVALIDITY everywhere, same messages.
        let old = source_uidvalidity(&d, "Work").await;
        for f in ["", ".Work", ".Work.Projects", ".Sent Messages", ".Drafts"] {
            let dir = d.root().join("mail/tester/Maildir").join(f);
            let list = std::fs::read_to_string(dir.join("dovecot-uidlist")).unwrap();
            let (head, rest) = list.split_once('\n').unwrap();
            let head: Vec<String> = head
                .split(' ')
                .map(|w| match w.strip_prefix('V') {
                    Some(v) => format!("V{}", v.parse::<u64>().unwrap() + 1000),
                    None => w.to_owned(),
                })
                .collect();
            std::fs::write(
                dir.join("dovecot-uidlist"),
                format!("{}\n{rest}", head.join(" ")),
            )
            .unwrap();
            for e in std::fs::read_dir(&dir).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with("dovecot.index") {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
        }
        assert_eq!(
            source_uidvalidity(&d, "Work").await,
            old + 1000,
            "{}",
            d.log()
        );
        let r2 = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0 + 60),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!(r2.copied, 0, "{r2:?}");
        assert_eq!(r2.already_copied, 12);
        assert_eq!(state(&store, acct).await, after_first);
    })
    .await;
}

#[tokio::test]
async fn mig2_mail_arriving_after_the_job_started_is_not_copied() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let dir = d.maildir("tester", "Work");
        // While INBOX (the first folder) is being copied, a message arrives in Work.
        let cb = move |p: &Progress| {
            if let Progress::Folder { source, .. } = p
                && source == "INBOX"
            {
                std::fs::write(
                    dir.join("new").join("1800000000.late.x"),
                    message(99, "late", 0),
                )
                .unwrap();
                let _ = std::process::Command::new("chown")
                    .args(["-R", "nobody:nogroup"])
                    .arg(&dir)
                    .status();
            }
        };
        let r = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0),
            cb,
        )
        .await
        .unwrap();
        assert_eq!(r.copied, 12);
        assert_eq!(migrated(&store, acct, "Work").await.len(), 3);
        // The source does have it now.
        let mut c = Client::connect(("127.0.0.1", d.imap()), ClientConfig::plain())
            .await
            .unwrap();
        c.login("tester", "secret").await.unwrap();
        assert_eq!(c.examine("Work").await.unwrap().exists, 4);
    })
    .await;
}

#[tokio::test]
async fn mig4_remote_killed_mid_migration_destination_unchanged() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        // Something there before: a message in INBOX, a user folder.
        let inbox = store.mailbox(acct, "INBOX").await.unwrap();
        store
            .append(
                inbox.mailbox,
                Default::default(),
                bytes::Bytes::from(message(1000, "mine", 0)),
            )
            .await
            .unwrap();
        store
            .create_mailbox(acct, "Personal", Default::default())
            .await
            .unwrap();
        let before = state(&store, acct).await;
        let stopper = d.stopper();
        let mut opts = quiet();
        opts.batch_messages = 2;
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let cb = move |p: &Progress| {
            ev.lock().unwrap().push(p.clone());
            if let Progress::Message { done: 7, .. } = p {
                stopper.stop();
            }
        };
        let err = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &opts,
            UnixTime(T0),
            cb,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        let ev = events.lock().unwrap().clone();
        assert!(
            ev.iter()
                .any(|e| matches!(e, Progress::Message { done: 7, .. }))
        );
        assert!(matches!(ev.last(), Some(Progress::Failed { .. })), "{ev:?}");
        // All or nothing: exactly the state before the job.
        assert_eq!(state(&store, acct).await, before);
        assert_eq!(
            store
                .get_setting(&SettingsScope::Account(acct), "mig/job1/journal")
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

/// The engine itself dies mid-job (the future is dropped, the store closed and opened
/// again as after a crash); the default recovery rolls the run back exactly.
#[tokio::test]
async fn mig4_engine_killed_then_rolled_back_from_the_journal() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let dir = tempfile::tempdir().unwrap();
        let (acct, before) = {
            let store = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
            let acct = new_account(&store).await;
            let before = state(&store, acct).await;
            kill_after(&store, acct, &source(&d, "tester"), &quiet(), 7).await;
            assert_ne!(
                state(&store, acct).await,
                before,
                "the run was interrupted half-way"
            );
            (acct, before)
        };
        let store = reopen_after_kill(dir.path()).await;
        assert!(rollback_interrupted(&store, acct, "job1").await.unwrap());
        assert_eq!(state(&store, acct).await, before);
        assert!(!rollback_interrupted(&store, acct, "job1").await.unwrap());
        // And the job can run again from scratch.
        let r = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &quiet(),
            UnixTime(T0),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!(r.copied, 12);
    })
    .await;
}

/// As above, but the operator chooses to resume: nothing is copied twice.
#[tokio::test]
async fn mig4_engine_killed_then_resumed_without_duplicates() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let dir = tempfile::tempdir().unwrap();
        let acct = {
            let store = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
            let acct = new_account(&store).await;
            let mut opts = quiet();
            opts.batch_messages = 3;
            kill_after(&store, acct, &source(&d, "tester"), &opts, 5).await;
            acct
        };
        let store = reopen_after_kill(dir.path()).await;
        let mut opts = quiet();
        opts.recovery = Recovery::Resume;
        let r = migrate(
            &store,
            acct,
            "job1",
            &source(&d, "tester"),
            &opts,
            UnixTime(T0),
            |_: &Progress| {},
        )
        .await
        .unwrap();
        assert_eq!(r.copied + r.already_copied, 12, "{r:?}");
        assert!(r.already_copied >= 5, "{r:?}");
        let mut total = 0;
        let mut uidls = std::collections::HashSet::new();
        for f in ["INBOX", "Work", "Work/Projects", "Sent", "Drafts"] {
            for m in migrated(&store, acct, f).await {
                assert!(uidls.insert(m.uidl.clone()), "duplicate {}", m.uidl);
                total += 1;
            }
        }
        assert_eq!(total, 12);
    })
    .await;
}

/// Runs job1 and drops it (like a kill) once `n` messages are stored.
/// Opens the store again after `kill_after`. Dropping the engine's future does not stop
/// the store work it already handed to blocking threads, and those hold the store (and its
/// lock) until they finish; a crashed process would have released it at once. So the
/// reopen retries while the store reports `Locked`, within the test's bound.
async fn reopen_after_kill(dir: &std::path::Path) -> DiskStore {
    let mut opened = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    mail_testkit::poll::until(deadline, || {
        match DiskStore::open(dir, StoreConfig::for_tests()) {
            Ok(store) => opened = Some(store),
            Err(StoreError::Locked { .. }) => {}
            Err(e) => panic!("reopening the store after the kill: {e}"),
        }
        opened.is_some()
    });
    opened.unwrap_or_else(|| panic!("the store stayed locked 10 s after the kill"))
}

async fn kill_after<S: MailStore>(
    store: &S,
    acct: AccountId,
    src: &ImapSource,
    opts: &MigrationOptions,
    n: u64,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let cb = move |p: &Progress| {
        if let Progress::Message { done, .. } = p
            && *done == n
            && let Some(tx) = tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    };
    let job = migrate(store, acct, "job1", src, opts, UnixTime(T0), cb);
    tokio::select! {
        r = job => panic!("the job ended before it was killed: {r:?}"),
        _ = rx => {}
    }
}

#[tokio::test]
async fn mig3_jobs_run_in_registration_order_with_template() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    d.seed("other", "INBOX", "1.o", "", T0, &message(500, "other", 0));
    guard(async {
        let store = Arc::new(MemoryStore::new());
        let alice = new_account(store.as_ref()).await;
        let bob = store
            .create_account(NewAccount::new("bob@example.org", None))
            .await
            .unwrap()
            .id;
        let template = ServerTemplate::new("Old server", "127.0.0.1", d.imap(), TlsMode::None);
        let runner = MigrationRunner::new(store.clone());
        let mut j1 = MigrationJob::new(
            "alice-1",
            alice,
            template.source(Credentials::password("tester", "secret"), None),
        );
        j1.options = quiet();
        let mut j2 = MigrationJob::new(
            "bob-1",
            bob,
            template.source(Credentials::password("other", "secret"), None),
        );
        j2.options = quiet();
        let (n1, q1) = runner.register(j1).unwrap();
        let (n2, q2) = runner.register(j2).unwrap();
        assert_eq!(
            (q1, q2),
            (Notice::Queued { ahead: 0 }, Notice::Queued { ahead: 1 })
        );
        assert_eq!(runner.waiting(), 2);
        let (first, id1, r1) = runner
            .run_next(UnixTime(T0), |_: &Progress| {})
            .await
            .unwrap();
        assert_eq!(
            (first, id1.as_str(), r1.unwrap().copied),
            (n1, "alice-1", 12)
        );
        let (second, id2, r2) = runner
            .run_next(UnixTime(T0), |_: &Progress| {})
            .await
            .unwrap();
        assert_eq!((second, id2.as_str(), r2.unwrap().copied), (n2, "bob-1", 1));
        assert!(
            runner
                .run_next(UnixTime(T0), |_: &Progress| {})
                .await
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn mig1_wrong_password_fails_cleanly() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let before = state(&store, acct).await;
        let mut src = source(&d, "tester");
        src.credentials = Credentials::password("tester", "nope");
        let err = migrate(
            &store,
            acct,
            "job1",
            &src,
            &quiet(),
            UnixTime(T0),
            |_: &Progress| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, sync_policy::engine::EngineError::Auth { .. }),
            "{err}"
        );
        assert_eq!(state(&store, acct).await, before);
    })
    .await;
}

/// ACC-10: the bearer token goes out in SASL XOAUTH2 / OAUTHBEARER format through
/// AUTHENTICATE (with SASL-IR), checked byte for byte by a scripted server.
#[tokio::test]
async fn acc10_oauth_bearer_tokens_through_authenticate() {
    for (auth, mech, expected) in [
        (
            Auth::XOAuth2(Secret::new("tok123".into())),
            "XOAUTH2",
            "user=alice@example.net\u{1}auth=Bearer tok123\u{1}\u{1}".to_owned(),
        ),
        (
            Auth::OAuthBearer(Secret::new("tok456".into())),
            "OAUTHBEARER",
            "n,,\u{1}host=127.0.0.1\u{1}port=PORT\u{1}auth=Bearer tok456\u{1}\u{1}".to_owned(),
        ),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let expected = expected.replace("PORT", &port.to_string());
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(
                b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready\r\n",
            )
            .await
            .unwrap();
            let mut auth_line = String::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                let (tag, rest) = line.split_once(' ').unwrap();
                let reply = if rest.starts_with("AUTHENTICATE") {
                    auth_line = rest.to_owned();
                    format!("{tag} OK [CAPABILITY IMAP4rev1] done\r\n")
                } else if rest.starts_with("LIST") {
                    format!("{tag} OK LIST done\r\n")
                } else if rest.starts_with("LOGOUT") {
                    w.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                        .await
                        .unwrap();
                    break;
                } else {
                    format!("{tag} BAD unexpected\r\n")
                };
                w.write_all(reply.as_bytes()).await.unwrap();
            }
            auth_line
        });
        let store = MemoryStore::new();
        let acct = new_account(&store).await;
        let ep =
            Endpoint::new("127.0.0.1", port, TlsMode::None).with_timeout(Duration::from_secs(10));
        let src = ImapSource::new(
            ep,
            Credentials {
                username: "alice@example.net".into(),
                auth,
            },
        );
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            migrate(
                &store,
                acct,
                "oauth",
                &src,
                &quiet(),
                UnixTime(T0),
                |_: &Progress| {},
            ),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(r.copied, 0);
        let line = server.await.unwrap();
        let (m, b64) = line
            .strip_prefix("AUTHENTICATE ")
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(m, mech);
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), expected);
    }
}

#[tokio::test]
async fn mig1_over_implicit_tls_and_starttls() {
    let Some(d) = Dovecot::start() else { return };
    seed(&d, "tester");
    guard(async {
        for (port, tls) in [
            (d.imaps(), TlsMode::Implicit),
            (d.imap(), TlsMode::StartTls),
        ] {
            let store = MemoryStore::new();
            let acct = new_account(&store).await;
            let ep = Endpoint::new("localhost", port, tls).with_connector(d.connector());
            let src = ImapSource::new(ep, Credentials::password("tester", "secret"));
            let r = migrate(
                &store,
                acct,
                "tls",
                &src,
                &quiet(),
                UnixTime(T0),
                |_: &Progress| {},
            )
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}\n{}", d.log()));
            assert_eq!(r.copied, 12, "{tls:?}");
        }
    })
    .await;
}
