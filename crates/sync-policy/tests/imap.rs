//! IMAP-1, IMAP-3, IMAP-4, IMAP-6: one table-driven test per behaviour, plus properties.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sync_policy::imap::{
    ConsumerMode, DeletionMode, ImapSettings, MailboxOp, MailboxRefusal, SpecialUseNames,
    consumer_expunge, special_use_attribute, special_use_folders,
};
use sync_policy::{
    FolderRole, MessageFacts, MessageKey, OrgSettings, PolicyError, UnixTime, UserSettings, resolve,
};

const DAY: i64 = 86_400;
const ALL_OPS: [MailboxOp; 9] = [
    MailboxOp::Select,
    MailboxOp::Examine,
    MailboxOp::Status,
    MailboxOp::Append,
    MailboxOp::CopyTarget,
    MailboxOp::MoveTarget,
    MailboxOp::Subscribe,
    MailboxOp::Rename,
    MailboxOp::Delete,
];

fn imap(f: impl FnOnce(&mut ImapSettings)) -> sync_policy::imap::EffectiveImap {
    let mut user = UserSettings::default();
    user.imap.enabled = true;
    f(&mut user.imap);
    resolve(&OrgSettings::default(), &user).imap
}

#[test]
fn imap_special_use_folders_advertised() {
    let folders = special_use_folders(&SpecialUseNames::default());
    let got: Vec<_> = folders
        .iter()
        .map(|f| (f.role, f.name.as_str(), f.attribute))
        .collect();
    assert_eq!(
        got,
        vec![
            (FolderRole::Drafts, "Drafts", "\\Drafts"),
            (FolderRole::Sent, "Sent", "\\Sent"),
            (FolderRole::Junk, "Junk", "\\Junk"),
            (FolderRole::Trash, "Trash", "\\Trash"),
            (FolderRole::Archive, "Archive", "\\Archive"),
        ]
    );
    let table = [
        (FolderRole::Inbox, None),
        (FolderRole::Other, None),
        (FolderRole::Sent, Some("\\Sent")),
        (FolderRole::Junk, Some("\\Junk")),
    ];
    for (role, want) in table {
        assert_eq!(special_use_attribute(role), want);
    }
    let mut names = SpecialUseNames::default();
    names.sent = "Sent Items".into();
    assert_eq!(names.name_of(FolderRole::Sent), Some("Sent Items"));
    assert_eq!(names.name_of(FolderRole::Inbox), Some("INBOX"));
    assert_eq!(names.name_of(FolderRole::Other), None);
    let roles = [
        ("Sent Items", FolderRole::Sent),
        ("Sent", FolderRole::Other),
        ("inbox", FolderRole::Inbox),
        ("Trash", FolderRole::Trash),
        ("trash", FolderRole::Other),
    ];
    for (name, role) in roles {
        assert_eq!(names.role_of(name), role, "{name}");
    }
    assert_eq!(names.validate(), Ok(()));
    names.junk = "Sent Items".into();
    assert_eq!(
        names.validate(),
        Err(PolicyError::DuplicateSpecialUseName {
            name: "Sent Items".into()
        })
    );
    names.junk = "inbox".into();
    assert!(matches!(
        names.validate(),
        Err(PolicyError::InvalidFolderName { .. })
    ));
}

#[test]
fn imap_hidden_folder_refused_for_every_op() {
    let policy = imap(|s| {
        s.hidden_folders = BTreeSet::from(["Newsletters".to_string(), "Archive/2019".to_string()]);
    });
    let table = [
        ("INBOX", true),
        ("Sent", true),
        ("Newsletters", false),
        ("newsletters", true), // names other than INBOX are case-sensitive
        ("Newsletters/Weekly", false),
        ("NewslettersOld", true), // a prefix only hides at a delimiter
        ("Archive", true),
        ("Archive/2019", false),
        ("Archive/2019/Q1", false),
        ("Archive/2020", true),
    ];
    for (name, visible) in table {
        assert_eq!(policy.is_visible(name, Some('/')), visible, "{name}");
        for op in ALL_OPS {
            let got = policy.check_mailbox(name, Some('/'), op);
            assert_eq!(got.is_ok(), visible, "{name} {op:?}");
            if let Err(refusal) = got {
                assert_eq!(refusal, MailboxRefusal { op });
                assert_eq!(refusal.render(), "NO [NONEXISTENT] No such mailbox");
            }
        }
    }
    // Without a hierarchy the hidden name hides only itself.
    assert!(policy.is_visible("Newsletters/Weekly", None));
}

#[test]
fn imap_list_filters_hidden() {
    let policy = imap(|s| s.hidden_folders = BTreeSet::from(["Junk".to_string()]));
    let all = ["INBOX", "Drafts", "Junk", "Junk/Old", "Sent", "Work"];
    assert_eq!(
        policy.filter_list(all, Some('/')),
        vec!["INBOX", "Drafts", "Sent", "Work"]
    );
}

#[test]
fn imap_inbox_cannot_be_hidden() {
    let table = ["INBOX", "inbox", "Inbox"];
    for name in table {
        let mut s = ImapSettings::default();
        s.hidden_folders.insert(name.to_string());
        assert_eq!(s.validate(), Err(PolicyError::InboxCannotBeHidden));
        // A stored blob that predates validation still never hides the INBOX.
        let policy = imap(|i| i.hidden_folders = s.hidden_folders.clone());
        assert!(
            policy
                .check_mailbox("INBOX", Some('/'), MailboxOp::Select)
                .is_ok()
        );
    }
    let mut s = ImapSettings::default();
    s.hidden_folders.insert("bad\r\nname".into());
    assert!(matches!(
        s.validate(),
        Err(PolicyError::InvalidFolderName {
            reason: "it contains control characters",
            ..
        })
    ));
}

#[test]
fn imap_deletion_mode() {
    let table = [
        (DeletionMode::WaitForClient, vec![4, 9], vec![]),
        (DeletionMode::ExpungeImmediately, vec![4, 9], vec![4, 9]),
        (DeletionMode::ExpungeImmediately, vec![], vec![]),
    ];
    for (mode, newly_deleted, want) in table {
        let policy = imap(|s| s.deletion_mode = mode);
        assert_eq!(
            policy.deletion_mode.expunge_after_store(&newly_deleted),
            want,
            "{mode:?}"
        );
    }
    assert_eq!(
        ImapSettings::default().deletion_mode,
        DeletionMode::WaitForClient
    );
}

#[test]
fn imap_consumer_inbox_only_deletes_fetched() {
    // Consumer mode shows the INBOX only.
    let policy = imap(|s| s.consumer = ConsumerMode::DeleteFetched);
    for (name, visible) in [("INBOX", true), ("Sent", false), ("Work", false)] {
        assert_eq!(
            policy
                .check_mailbox(name, Some('/'), MailboxOp::Select)
                .is_ok(),
            visible
        );
    }

    let now = 50 * DAY;
    let mut inbox: Vec<MessageFacts> = (1..=4)
        .map(|uid| MessageFacts::inbox(3, uid, UnixTime(now - i64::from(uid) * DAY), 10))
        .collect();
    inbox[0].seen = true; // read or unread: both go
    let mut sent = MessageFacts::inbox(4, 2, UnixTime(0), 10);
    sent.folder_role = FolderRole::Sent;
    inbox.push(sent);
    let fetched = BTreeSet::from([1, 2, 4]);
    let k = |uid| MessageKey { mailbox: 3, uid };
    let table = [
        (ConsumerMode::Off, vec![]),
        (ConsumerMode::DeleteFetched, vec![k(1), k(2), k(4)]),
        (
            ConsumerMode::DeleteFetchedAfterDays { days: 2 },
            vec![k(2), k(4)],
        ),
        (ConsumerMode::DeleteFetchedAfterDays { days: 30 }, vec![]),
    ];
    for (mode, want) in table {
        assert_eq!(
            consumer_expunge(&inbox, &fetched, UnixTime(now), mode),
            want,
            "{mode:?}"
        );
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("INBOX".to_string()),
        Just("inbox".to_string()),
        "[A-Za-z]{1,4}(/[A-Za-z]{1,4}){0,2}"
    ]
}

proptest! {
    #[test]
    fn prop_hidden_folders_and_descendants_never_visible(hidden in proptest::collection::btree_set(name(), 0..5),
                                                         probe in name()) {
        let policy = imap(|s| s.hidden_folders = hidden.clone());
        let visible = policy.is_visible(&probe, Some('/'));
        if probe.eq_ignore_ascii_case("INBOX") {
            prop_assert!(visible);
        } else {
            let hidden_by = hidden.iter().any(|h| !h.eq_ignore_ascii_case("INBOX")
                && (probe == *h || probe.starts_with(&format!("{h}/"))));
            prop_assert_eq!(visible, !hidden_by);
            for op in ALL_OPS {
                prop_assert_eq!(policy.check_mailbox(&probe, Some('/'), op).is_ok(), visible);
            }
        }
    }
}
