//! MIG-2, MIG-3, MIG-4, MIG-6: migration bookkeeping, table-driven, plus a property.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sync_policy::migration::{
    JobJournal, MigrationKey, MigrationQueue, Notice, SourceFolder, SourceMessage, migration_keys,
    plan_folder_copy, progress_notice,
};
use sync_policy::{MessageKey, UnixTime};

fn folder(uidvalidity: u32, uidnext: u32) -> SourceFolder {
    SourceFolder {
        name: "INBOX".into(),
        uidvalidity,
        uidnext_at_start: uidnext,
    }
}

fn m(uid: u32, id: Option<&str>) -> SourceMessage {
    SourceMessage {
        uid,
        internal_date: UnixTime(1_000 + i64::from(uid)),
        size: 100,
        message_id: id.map(String::from),
    }
}

#[test]
fn mig2_mail_arriving_after_start_is_not_copied() {
    let msgs = [
        m(1, Some("<a@x>")),
        m(2, None),
        m(3, Some("<c@x>")),
        m(4, None),
    ];
    let table = [(5, vec![1, 2, 3, 4], 0), (3, vec![1, 2], 2), (1, vec![], 4)];
    for (uidnext, copy, later) in table {
        let plan = plan_folder_copy(&folder(7, uidnext), &msgs, &BTreeSet::new());
        assert_eq!(
            (plan.copy, plan.arrived_later),
            (copy, later),
            "UIDNEXT {uidnext}"
        );
    }
}

#[test]
fn mig6_rerun_copies_nothing_twice() {
    let msgs = [m(1, Some("<a@x>")), m(2, None), m(3, Some("<c@x>"))];
    let first = folder(7, 4);
    let mut ledger = BTreeSet::new();
    for msg in &msgs[..2] {
        ledger.extend(migration_keys(&first, msg)); // the first run stored 1 and 2, then stopped
    }
    let table = [
        (folder(7, 4), vec![3], 2),
        // The source changed UIDVALIDITY: UIDs are new, Message-IDs still match; the
        // message without a Message-ID cannot be recognised and is copied again.
        (folder(8, 4), vec![2, 3], 1),
    ];
    for (f, copy, already) in table {
        let plan = plan_folder_copy(&f, &msgs, &ledger);
        assert_eq!((plan.copy, plan.already_copied), (copy, already), "{f:?}");
    }
    // The same message in another folder (a Gmail label) is copied there too.
    let other = SourceFolder {
        name: "Work".into(),
        uidvalidity: 7,
        uidnext_at_start: 4,
    };
    assert_eq!(plan_folder_copy(&other, &msgs, &ledger).copy, vec![1, 2, 3]);
    assert_eq!(
        migration_keys(&first, &m(9, Some("  "))),
        vec![MigrationKey::Uid {
            folder: "INBOX".into(),
            uidvalidity: 7,
            uid: 9
        }],
        "a blank Message-ID gives no content key"
    );
}

#[test]
fn mig4_failed_job_is_rolled_back() {
    let mut journal = JobJournal::default();
    journal.folder_created("Projects");
    journal.folder_created("Projects/2024");
    let k1 = MessageKey { mailbox: 5, uid: 1 };
    let k2 = MessageKey { mailbox: 6, uid: 1 };
    let f = folder(7, 10);
    journal.message_stored(k1, migration_keys(&f, &m(1, Some("<a@x>"))));
    journal.message_stored(k2, migration_keys(&f, &m(2, None)));
    let plan = journal.rollback();
    assert_eq!(plan.expunge, vec![k1, k2]);
    assert_eq!(
        plan.delete_folders,
        vec!["Projects/2024".to_string(), "Projects".to_string()]
    );
    assert_eq!(plan.forget.len(), 3);
    // After forgetting, a retry copies everything again.
    let mut ledger: BTreeSet<_> = journal.ledger_added.iter().cloned().collect();
    for k in &plan.forget {
        ledger.remove(k);
    }
    assert_eq!(
        plan_folder_copy(&f, &[m(1, Some("<a@x>")), m(2, None)], &ledger).copy,
        vec![1, 2]
    );
}

#[test]
fn mig3_jobs_run_in_registration_order_with_notices() {
    let mut q = MigrationQueue::new();
    assert_eq!(q.enqueue(10), Notice::Queued { ahead: 0 });
    assert_eq!(q.enqueue(11), Notice::Queued { ahead: 1 });
    assert_eq!(q.start_next(), Some(10));
    assert_eq!(q.start_next(), None, "one job at a time");
    assert_eq!(q.enqueue(12), Notice::Queued { ahead: 2 });
    assert_eq!(
        q.enqueue(11),
        Notice::Queued { ahead: 1 },
        "registering twice changes nothing"
    );
    q.finish(10);
    assert_eq!((q.start_next(), q.waiting()), (Some(11), 1));
    q.finish(11);
    assert_eq!(q.start_next(), Some(12));
    q.finish(12);
    assert_eq!((q.start_next(), q.running()), (None, None));

    let table = [
        (
            Notice::Queued { ahead: 0 },
            "Your mail migration is queued and starts next",
        ),
        (
            Notice::Started,
            "Your mail migration has started. Keep the old account's password and leave its mail unchanged until \
             the migration completes",
        ),
        (
            Notice::Progress {
                done: 50,
                total: 200,
            },
            "Mail migration in progress: 50 of 200 messages",
        ),
        (
            Notice::Completed {
                copied: 7,
                already_copied: 0,
            },
            "Mail migration completed: 7 messages copied",
        ),
        (
            Notice::Completed {
                copied: 7,
                already_copied: 3,
            },
            "Mail migration completed: 7 messages copied, 3 already copied by an earlier run",
        ),
        (
            Notice::Failed {
                reason: "connection reset\r\n".into(),
            },
            "Mail migration failed (connection reset); your mailbox was restored to its state before the \
             migration. You can run it again",
        ),
    ];
    for (n, want) in table {
        assert_eq!(n.text(), want);
    }
}

#[test]
fn mig3_progress_notices_every_step() {
    let table = [
        (0, 49, 200, None),
        (0, 50, 200, Some(50)),
        (50, 99, 200, None),
        (99, 151, 200, Some(151)), // one notice even when a step is skipped
        (151, 200, 200, None),     // 100 % is the Completed notice
        (0, 1, 0, None),
    ];
    for (before, now, total, want) in table {
        let got = progress_notice(before, now, total, 25);
        assert_eq!(
            got,
            want.map(|done| Notice::Progress { done, total }),
            "{before}->{now}/{total}"
        );
    }
}

proptest! {
    #[test]
    fn prop_second_run_copies_nothing(uids in proptest::collection::btree_set(1u32..500, 0..50), uidnext in 1u32..600) {
        let f = folder(3, uidnext);
        let msgs: Vec<_> = uids.iter().map(|u| m(*u, (u % 2 == 0).then_some("<id@x>"))).collect();
        let first = plan_folder_copy(&f, &msgs, &BTreeSet::new());
        let mut ledger = BTreeSet::new();
        for msg in msgs.iter().filter(|msg| first.copy.contains(&msg.uid)) {
            ledger.extend(migration_keys(&f, msg));
        }
        let second = plan_folder_copy(&f, &msgs, &ledger);
        prop_assert!(second.copy.is_empty());
        prop_assert!(first.copy.iter().all(|u| *u < uidnext));
        prop_assert_eq!(first.copy.len() + first.arrived_later, msgs.len());
    }
}
