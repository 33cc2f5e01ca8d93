//! POP-1 .. POP-7: one table-driven test per behaviour, plus properties.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sync_policy::pop3::{
    EffectivePop, Pop3Settings, PopDeletePolicy, PopScope, pop3_view, quit_plan, retention_due,
};
use sync_policy::{
    FolderRole, MessageFacts, MessageKey, OrgSettings, Origin, UnixTime, UserSettings, resolve,
};

const DAY: i64 = 86_400;

fn msg(uid: u32, received: i64, role: FolderRole, imported: bool) -> MessageFacts {
    let mut m = MessageFacts::inbox(7, uid, UnixTime(received), 100 + u64::from(uid));
    m.folder_role = role;
    if imported {
        m.origin = Origin::Imported {
            source: "old@example.net".into(),
        };
    }
    m
}

fn key(uid: u32) -> MessageKey {
    MessageKey { mailbox: 7, uid }
}

fn uids(view: &sync_policy::pop3::Pop3View) -> Vec<u32> {
    view.entries.iter().map(|e| e.key.uid).collect()
}

fn policy(settings: &Pop3Settings) -> EffectivePop {
    let mut user = UserSettings::default();
    user.pop3 = settings.clone();
    resolve(&OrgSettings::default(), &user).pop3
}

/// Default POP3 settings changed by `f`.
fn pop(f: impl FnOnce(&mut Pop3Settings)) -> Pop3Settings {
    let mut s = Pop3Settings::default();
    f(&mut s);
    s
}

#[test]
fn pop_scope_hides_older_mail() {
    let mailbox = [
        msg(1, 1_000, FolderRole::Inbox, false),
        msg(2, 2_000, FolderRole::Inbox, false),
        msg(3, 3_000, FolderRole::Inbox, false),
    ];
    let table: [(PopScope, Option<UnixTime>, Vec<u32>); 6] = [
        (PopScope::All, None, vec![1, 2, 3]),
        (PopScope::All, Some(UnixTime(2_500)), vec![1, 2, 3]),
        (PopScope::FromEnabled, Some(UnixTime(2_000)), vec![2, 3]), // received at the moment: shown
        (PopScope::FromEnabled, Some(UnixTime(2_001)), vec![3]),
        (PopScope::FromEnabled, None, vec![]), // never enabled: nothing received "since"
        (
            PopScope::Since {
                since: UnixTime(1_500),
            },
            None,
            vec![2, 3],
        ),
    ];
    for (scope, enabled_at, want) in table {
        let s = pop(|s| {
            s.scope = scope;
            s.enabled_at = enabled_at;
        });
        assert_eq!(
            uids(&pop3_view(&mailbox, &policy(&s))),
            want,
            "{scope:?} {enabled_at:?}"
        );
    }
}

#[test]
fn pop_enable_records_first_moment_only() {
    let mut s = Pop3Settings::default();
    assert!(!s.enabled, "POP3 is off until the user turns it on");
    s.enable(UnixTime(100));
    s.enabled = false;
    s.enable(UnixTime(900));
    assert_eq!((s.enabled, s.enabled_at), (true, Some(UnixTime(100))));
}

#[test]
fn pop_keep_original_hides_but_keeps() {
    let mut mailbox = vec![
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Inbox, false),
    ];
    let p = policy(&Pop3Settings::default()); // default: keep original
    let view = pop3_view(&mailbox, &p);
    let deleted = BTreeSet::from([key(1)]);
    let plan = quit_plan(&view, &deleted, &BTreeSet::new(), &p);
    assert_eq!(plan.expunge, vec![]);
    assert_eq!(plan.hide_from_pop, vec![key(1)]);

    // The store records it; the next session does not show it, IMAP still has it.
    mailbox[0].pop_hidden = true;
    assert_eq!(uids(&pop3_view(&mailbox, &p)), vec![2]);
    assert_eq!(mailbox.len(), 2);
}

#[test]
fn pop_follow_client_expunges() {
    let mailbox = [
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Inbox, false),
    ];
    // (user policy, org allows delete) -> expunged, hidden
    let table = [
        (PopDeletePolicy::FollowClient, true, vec![key(2)], vec![]),
        (PopDeletePolicy::FollowClient, false, vec![], vec![key(2)]), // org forces keep
        (PopDeletePolicy::KeepOriginal, true, vec![], vec![key(2)]),
    ];
    for (on_delete, org_allows, expunge, hide) in table {
        let mut org = OrgSettings::default();
        org.allow_pop_delete = org_allows;
        let mut user = UserSettings::default();
        user.pop3.on_delete = on_delete;
        let p = resolve(&org, &user).pop3;
        let view = pop3_view(&mailbox, &p);
        // key(99) is not in the view and must be ignored.
        let deleted = BTreeSet::from([key(2), key(99)]);
        let plan = quit_plan(&view, &deleted, &deleted, &p);
        assert_eq!(
            (plan.expunge, plan.hide_from_pop),
            (expunge, hide),
            "{on_delete:?} {org_allows}"
        );
        assert!(!plan.mark_seen.contains(&key(99)));
    }
}

#[test]
fn pop_mark_seen_on_retr() {
    let mut mailbox = vec![
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Inbox, false),
        msg(3, 30, FolderRole::Inbox, false),
    ];
    mailbox[2].seen = true;
    let retrieved = BTreeSet::from([key(1), key(3)]);
    // (mark seen, follow client, deleted) -> mark_seen
    let table = [
        (true, false, vec![], vec![key(1)]), // 3 is already seen; 2 was not retrieved
        (false, false, vec![], vec![]),
        (true, true, vec![key(1)], vec![]), // expunged messages are not flagged
        (true, false, vec![key(1)], vec![key(1)]), // hidden but kept: shown as read in webmail
    ];
    for (mark, follow, deleted, want) in table {
        let s = pop(|s| {
            s.mark_seen_on_retr = mark;
            s.on_delete = if follow {
                PopDeletePolicy::FollowClient
            } else {
                PopDeletePolicy::KeepOriginal
            };
        });
        let p = policy(&s);
        let view = pop3_view(&mailbox, &p);
        let plan = quit_plan(&view, &deleted.iter().copied().collect(), &retrieved, &p);
        assert_eq!(plan.mark_seen, want, "{mark} {follow} {deleted:?}");
    }
    assert!(Pop3Settings::default().mark_seen_on_retr);
}

#[test]
fn pop_include_imported() {
    let mailbox = [
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Inbox, true),
        msg(3, 30, FolderRole::Other, true), // imported into its own folder
        msg(4, 40, FolderRole::Other, false), // a user folder: never
    ];
    let table = [(false, vec![1]), (true, vec![1, 2, 3])];
    for (include, want) in table {
        let s = pop(|s| s.include_imported = include);
        assert_eq!(uids(&pop3_view(&mailbox, &policy(&s))), want, "{include}");
    }
}

#[test]
fn pop_include_junk() {
    let mailbox = [
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Junk, false),
        msg(3, 30, FolderRole::Junk, true),
    ];
    let table = [
        (false, false, vec![1]),
        (true, false, vec![1, 2]),
        (true, true, vec![1, 2, 3]), // imported spam needs both switches
    ];
    for (junk, imported, want) in table {
        let s = pop(|s| {
            s.include_junk = junk;
            s.include_imported = imported;
        });
        assert_eq!(
            uids(&pop3_view(&mailbox, &policy(&s))),
            want,
            "{junk} {imported}"
        );
    }
}

#[test]
fn pop_serves_inbox_only() {
    let roles = [
        FolderRole::Inbox,
        FolderRole::Sent,
        FolderRole::Drafts,
        FolderRole::Trash,
        FolderRole::Archive,
        FolderRole::Junk,
        FolderRole::Other,
    ];
    let mailbox: Vec<_> = roles
        .iter()
        .zip(1..)
        .map(|(r, uid)| msg(uid, i64::from(uid), *r, false))
        .collect();
    let everything = pop(|s| {
        s.include_junk = true;
        s.include_imported = true;
    });
    let table = [(Pop3Settings::default(), vec![1]), (everything, vec![1, 6])];
    for (s, want) in table {
        assert_eq!(uids(&pop3_view(&mailbox, &policy(&s))), want);
    }
}

#[test]
fn pop_view_order_sizes_and_uidls() {
    let mut mailbox = vec![
        msg(5, 300, FolderRole::Inbox, false),
        msg(3, 100, FolderRole::Inbox, false),
        msg(4, 100, FolderRole::Inbox, false),
        msg(6, 400, FolderRole::Inbox, false),
        msg(7, 500, FolderRole::Inbox, false),
        msg(8, 600, FolderRole::Inbox, false),
    ];
    mailbox[3].uidl = Some("kept-from-old-server".into()); // preserved by an import
    mailbox[4].uidl = Some("kept-from-old-server".into()); // duplicate: derived instead
    mailbox[5].uidl = Some("has space".into()); // not valid for RFC 1939
    mailbox[0].deleted = true; // \Deleted, waiting for an IMAP expunge: not shown
    let view = pop3_view(&mailbox, &policy(&Pop3Settings::default()));
    let got: Vec<_> = view
        .entries
        .iter()
        .map(|e| (e.key.uid, e.size, e.uidl.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, 103, "7.1.3"),
            (4, 104, "7.1.4"),
            (6, 106, "kept-from-old-server"),
            (7, 107, "7.1.7"),
            (8, 108, "7.1.8")
        ]
    );
    assert_eq!(
        (view.len(), view.total_size()),
        (5, 103 + 104 + 106 + 107 + 108)
    );
    assert_eq!(view.get(0), None);
    assert_eq!(view.get(3).map(|e| e.key.uid), Some(6));
    assert_eq!(view.get(6), None);
}

#[test]
fn pop_uidl_collision_with_stored_gets_suffix() {
    let mut mailbox = vec![
        msg(1, 10, FolderRole::Inbox, false),
        msg(2, 20, FolderRole::Inbox, false),
    ];
    mailbox[1].uidl = Some("7.1.1".into()); // an imported id that equals message 1's derived id
    let view = pop3_view(&mailbox, &policy(&Pop3Settings::default()));
    let got: Vec<_> = view.entries.iter().map(|e| e.uidl.as_str()).collect();
    assert_eq!(got, vec!["7.1.1~1", "7.1.1"]);
}

#[test]
fn pop_retention_deletes_after_n_days() {
    let now = 100 * DAY;
    let mut mailbox = vec![
        msg(1, now - 31 * DAY, FolderRole::Inbox, false),
        msg(2, now - 30 * DAY, FolderRole::Inbox, false), // exactly 30 days: due
        msg(3, now - 30 * DAY + 1, FolderRole::Inbox, false), // one second short
        msg(4, now - 90 * DAY, FolderRole::Sent, false),  // not POP's: untouched
        msg(5, now - 90 * DAY, FolderRole::Inbox, false),
    ];
    mailbox[4].pop_hidden = true; // already downloaded and DELEted under keep-original: still due
    let table = [
        (None, vec![]),
        (Some(30), vec![key(1), key(2), key(5)]),
        (Some(0), vec![]),
        (Some(89), vec![key(5)]),
    ];
    for (days, want) in table {
        let s = pop(|s| s.retention_days = days);
        assert_eq!(
            retention_due(&mailbox, UnixTime(now), &policy(&s)),
            want,
            "{days:?}"
        );
    }
}

fn role() -> impl Strategy<Value = FolderRole> {
    prop_oneof![
        Just(FolderRole::Inbox),
        Just(FolderRole::Sent),
        Just(FolderRole::Drafts),
        Just(FolderRole::Junk),
        Just(FolderRole::Trash),
        Just(FolderRole::Archive),
        Just(FolderRole::Other),
    ]
}

prop_compose! {
    fn facts()(uid in 1u32..60, mailbox in 0u64..3, received in -1_000i64..10_000_000, role in role(),
               imported in any::<bool>(), seen in any::<bool>(), deleted in any::<bool>(),
               hidden in any::<bool>(), uidl in proptest::option::of("[!-~]{1,8}|.{0,3}"), size in 0u64..1_000_000)
               -> MessageFacts {
        let mut m = MessageFacts::inbox(mailbox, uid, UnixTime(received), size);
        m.folder_role = role;
        if imported { m.origin = Origin::Imported { source: "x".into() }; }
        m.seen = seen;
        m.deleted = deleted;
        m.pop_hidden = hidden;
        m.uidl = uidl;
        m
    }
}

prop_compose! {
    fn settings()(scope in prop_oneof![Just(PopScope::All), Just(PopScope::FromEnabled),
                      (0i64..10_000_000).prop_map(|s| PopScope::Since { since: UnixTime(s) })],
                  enabled_at in proptest::option::of((0i64..10_000_000).prop_map(UnixTime)),
                  follow in any::<bool>(), mark in any::<bool>(), junk in any::<bool>(),
                  imported in any::<bool>(), days in proptest::option::of(0u32..200)) -> Pop3Settings {
        pop(|s| {
            s.enabled = true;
            s.enabled_at = enabled_at;
            s.scope = scope;
            s.on_delete = if follow { PopDeletePolicy::FollowClient } else { PopDeletePolicy::KeepOriginal };
            s.mark_seen_on_retr = mark;
            s.include_junk = junk;
            s.include_imported = imported;
            s.retention_days = days;
        })
    }
}

fn unique_keys(ms: Vec<MessageFacts>) -> Vec<MessageFacts> {
    let mut seen = BTreeSet::new();
    ms.into_iter().filter(|m| seen.insert(m.key)).collect()
}

proptest! {
    #[test]
    fn prop_view_respects_folders_origin_scope(ms in proptest::collection::vec(facts(), 0..40), s in settings()) {
        let ms = unique_keys(ms);
        let p = policy(&s);
        let view = pop3_view(&ms, &p);
        for e in &view.entries {
            let m = ms.iter().find(|m| m.key == e.key).unwrap();
            match m.folder_role {
                FolderRole::Inbox => {}
                FolderRole::Junk => prop_assert!(s.include_junk),
                FolderRole::Other => prop_assert!(s.include_imported && m.is_imported()),
                other => prop_assert!(false, "{other:?} shown over POP3"),
            }
            prop_assert!(!m.is_imported() || s.include_imported);
            prop_assert!(!m.pop_hidden && !m.deleted);
            if let Some(since) = p.since { prop_assert!(m.received_at >= since); }
            prop_assert_eq!(e.size, m.size);
        }
        // UIDLs: unique, 1..=70 printable non-space ASCII.
        let mut ids = BTreeSet::new();
        for e in &view.entries {
            prop_assert!(!e.uidl.is_empty() && e.uidl.len() <= 70);
            prop_assert!(e.uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            prop_assert!(ids.insert(e.uidl.clone()), "duplicate UIDL {}", e.uidl);
        }
        // Every eligible, visible message is shown (nothing is lost).
        let expected = ms.iter().filter(|m| p.is_eligible(m) && !m.pop_hidden && !m.deleted).count();
        prop_assert_eq!(view.len(), expected);
    }

    #[test]
    fn prop_retention_never_deletes_younger_than_n_days(ms in proptest::collection::vec(facts(), 0..40),
                                                        s in settings(), now in 0i64..20_000_000) {
        let ms = unique_keys(ms);
        let p = policy(&s);
        let due = retention_due(&ms, UnixTime(now), &p);
        for k in &due {
            let m = ms.iter().find(|m| m.key == *k).unwrap();
            let days = i64::from(s.retention_days.unwrap());
            prop_assert!(days > 0);
            prop_assert!(now - m.received_at.0 >= days * DAY, "deleted a message younger than {days} days");
            prop_assert!(p.is_eligible(m));
        }
    }

    #[test]
    fn prop_quit_plan_is_consistent(ms in proptest::collection::vec(facts(), 0..40), s in settings(),
                                    dele in proptest::collection::btree_set(1u32..60, 0..20),
                                    retr in proptest::collection::btree_set(1u32..60, 0..20)) {
        let ms = unique_keys(ms);
        let p = policy(&s);
        let view = pop3_view(&ms, &p);
        let all_keys = |uids: &BTreeSet<u32>| -> BTreeSet<MessageKey> {
            uids.iter().flat_map(|u| (0..3).map(move |mb| MessageKey { mailbox: mb, uid: *u })).collect()
        };
        let (dele, retr) = (all_keys(&dele), all_keys(&retr));
        let plan = quit_plan(&view, &dele, &retr, &p);
        if s.on_delete == PopDeletePolicy::KeepOriginal {
            prop_assert!(plan.expunge.is_empty());
        } else {
            prop_assert!(plan.hide_from_pop.is_empty());
        }
        for k in plan.expunge.iter().chain(&plan.hide_from_pop) {
            prop_assert!(dele.contains(k) && view.contains(k));
        }
        for k in &plan.mark_seen {
            prop_assert!(s.mark_seen_on_retr && retr.contains(k) && view.contains(k));
            prop_assert!(!plan.expunge.contains(k));
        }
    }
}

#[test]
fn unix_time_from_system_time_rounds_down() {
    use std::time::{Duration, UNIX_EPOCH};
    let table = [
        (UNIX_EPOCH + Duration::from_millis(1_500), 1),
        (UNIX_EPOCH, 0),
        (UNIX_EPOCH - Duration::from_millis(1_500), -2),
        (UNIX_EPOCH - Duration::from_secs(3), -3),
    ];
    for (t, want) in table {
        assert_eq!(UnixTime::from_system_time(t), UnixTime(want));
    }
    assert_eq!(UnixTime(5).plus_days(2), UnixTime(5 + 2 * DAY));
    assert_eq!(UnixTime(i64::MAX - 1).plus_days(1), UnixTime(i64::MAX));
}
