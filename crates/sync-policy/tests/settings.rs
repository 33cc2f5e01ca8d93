//! Settings blobs: defaults, serde round trips, organisation-vs-user resolution, validation.

use proptest::prelude::*;
use sync_policy::access::{PlanFeatures, ProtocolSwitches, ServerAuthSettings};
use sync_policy::filter::{
    Action, Condition, FilterRule, HeaderField, MatchMode, SizeMatch, TextMatch,
};
use sync_policy::imap::{ConsumerMode, DeletionMode};
use sync_policy::pop3::{PopDeletePolicy, PopScope};
use sync_policy::{OrgSettings, PolicyError, UnixTime, UserSettings, resolve};

#[test]
fn settings_defaults_from_empty_blob() {
    let org: OrgSettings = toml::from_str("").unwrap();
    let user: UserSettings = toml::from_str("").unwrap();
    assert_eq!(org, OrgSettings::default());
    assert_eq!(user, UserSettings::default());
    let server: ServerAuthSettings = toml::from_str("").unwrap();
    assert_eq!(server, ServerAuthSettings::default());

    // The seed services' defaults.
    assert!(org.protocols.pop3 && org.protocols.imap && org.protocols.smtp);
    assert!(
        org.require_user_opt_in,
        "users turn POP3/IMAP on themselves"
    );
    assert!(!user.pop3.enabled && !user.imap.enabled);
    assert_eq!(user.pop3.scope, PopScope::All);
    assert_eq!(user.pop3.on_delete, PopDeletePolicy::KeepOriginal);
    assert!(!user.pop3.include_junk && !user.pop3.include_imported);
    assert_eq!(user.pop3.retention_days, None);
    assert_eq!(user.imap.deletion_mode, DeletionMode::WaitForClient);
    assert_eq!(user.imap.consumer, ConsumerMode::Off);
    assert!(!server.apop && !server.oauth2);
    assert_eq!(org.limits.max_imap_connections, 10);
}

#[test]
fn settings_partial_blob_keeps_other_defaults() {
    let org: OrgSettings = toml::from_str(
        "require_user_opt_in = false\nsmtp_allowed_sources = [\"10.0.0.0/8\"]\n[protocols]\npop3 = false\n[limits]\nmax_send_size = 1000\n",
    )
    .unwrap();
    assert!(!org.require_user_opt_in);
    assert_eq!((org.protocols.pop3, org.protocols.imap), (false, true));
    assert_eq!(
        (org.limits.max_send_size, org.limits.max_receive_size),
        (1000, 52_428_800)
    );
    assert_eq!(org.smtp_allowed_sources.len(), 1);
    assert!(org.allow_pop_delete);

    let user: UserSettings = toml::from_str(
        r#"
        [pop3]
        enabled = true
        scope = { mode = "since", since = 1700000000 }
        on_delete = "follow_client"
        [imap]
        hidden_folders = ["Newsletters"]
        consumer = { mode = "delete_fetched_after_days", days = 7 }
        [[filters.rules]]
        name = "invoices"
        conditions = [{ kind = "header", field = { field = "subject" }, op = "contains", value = "invoice" }]
        actions = [{ action = "move_to", folder = "Invoices" }, { action = "mark_read" }]
        "#,
    )
    .unwrap();
    assert_eq!(
        user.pop3.scope,
        PopScope::Since {
            since: UnixTime(1_700_000_000)
        }
    );
    assert_eq!(user.pop3.on_delete, PopDeletePolicy::FollowClient);
    assert!(user.pop3.mark_seen_on_retr, "unset field keeps its default");
    assert_eq!(
        user.imap.consumer,
        ConsumerMode::DeleteFetchedAfterDays { days: 7 }
    );
    assert_eq!(user.filters.rules.len(), 1);
    let rule = &user.filters.rules[0];
    assert!(rule.enabled);
    assert_eq!(
        rule.actions,
        vec![Action::MoveTo("Invoices".into()), Action::MarkRead]
    );
    assert_eq!(user.validate(&org), Ok(()));
}

#[test]
fn resolve_org_wins_over_user() {
    let mut org = OrgSettings::default();
    org.limits.max_send_size = 1000;
    org.limits.max_receive_size = 2000;
    org.limits.max_imap_connections = 4;
    org.allow_pop_delete = false;
    let mut user = UserSettings::default();
    user.admin.max_send_size = Some(5000); // above the organisation: clamped
    user.admin.max_receive_size = Some(500); // below: kept
    user.admin.max_imap_connections = Some(9);
    user.pop3.on_delete = PopDeletePolicy::FollowClient;
    user.pop3.retention_days = Some(0);
    let p = resolve(&org, &user);
    assert_eq!(
        (
            p.limits.max_send_size,
            p.limits.max_receive_size,
            p.limits.max_imap_connections
        ),
        (1000, 500, 4)
    );
    assert!(
        !p.pop3.expunge_on_delete,
        "the organisation forces keep-original"
    );
    assert_eq!(p.pop3.retention_days, None);

    let table = [
        (
            {
                let mut u = user.clone();
                u.pop3.on_delete = PopDeletePolicy::KeepOriginal;
                u.pop3.retention_days = None;
                u.admin.max_imap_connections = None;
                u.admin.max_receive_size = None;
                u
            },
            Err(PolicyError::UserLimitAboveOrg {
                what: "the send size limit",
                user: 5000,
                org: 1000,
            }),
        ),
        (
            {
                let mut u = UserSettings::default();
                u.admin.max_imap_connections = Some(0);
                u
            },
            Err(PolicyError::ZeroLimit {
                what: "the IMAP connection limit",
            }),
        ),
        (
            {
                let mut u = UserSettings::default();
                u.pop3.on_delete = PopDeletePolicy::FollowClient;
                u
            },
            Err(PolicyError::PopDeleteNotAllowed),
        ),
        (
            {
                let mut u = UserSettings::default();
                u.pop3.retention_days = Some(0);
                u
            },
            Err(PolicyError::ZeroLimit {
                what: "the POP3 retention period (days)",
            }),
        ),
        (UserSettings::default(), Ok(())),
    ];
    for (u, want) in table {
        assert_eq!(u.validate(&org), want);
    }
    assert_eq!(
        PolicyError::UserLimitAboveOrg {
            what: "the send size limit",
            user: 5000,
            org: 1000
        }
        .to_string(),
        "the send size limit for this user (5000) is above the organisation's limit (1000); use at most 1000"
    );
}

#[test]
fn org_validation() {
    let mut org = OrgSettings::default();
    assert_eq!(org.validate(), Ok(()));
    org.limits.max_receive_size = 0;
    assert_eq!(
        org.validate(),
        Err(PolicyError::ZeroLimit {
            what: "the receive size limit"
        })
    );
    let mut org = OrgSettings::default();
    org.folders.trash = String::new();
    assert!(matches!(
        org.validate(),
        Err(PolicyError::InvalidFolderName {
            reason: "it is empty",
            ..
        })
    ));
}

fn switches() -> impl Strategy<Value = ProtocolSwitches> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c)| {
        let mut s = ProtocolSwitches::default();
        s.pop3 = a;
        s.imap = b;
        s.smtp = c;
        s
    })
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./@-]{1,12}|請求書"
}

fn condition() -> impl Strategy<Value = Condition> {
    let field = prop_oneof![
        Just(HeaderField::From),
        Just(HeaderField::To),
        Just(HeaderField::Cc),
        Just(HeaderField::ToOrCc),
        Just(HeaderField::Subject),
        "[A-Za-z-]{1,10}".prop_map(HeaderField::Other),
    ];
    let op = prop_oneof![
        Just(TextMatch::Contains),
        Just(TextMatch::NotContains),
        Just(TextMatch::Equals),
        Just(TextMatch::StartsWith),
        Just(TextMatch::EndsWith),
        Just(TextMatch::Exists),
    ];
    prop_oneof![
        (field, op, text()).prop_map(|(field, op, value)| Condition::Header { field, op, value }),
        (any::<bool>(), 0u64..i64::MAX as u64).prop_map(|(gt, bytes)| Condition::Size {
            op: if gt {
                SizeMatch::GreaterThan
            } else {
                SizeMatch::LessThan
            },
            bytes
        }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        text().prop_map(Action::MoveTo),
        Just(Action::MarkRead),
        Just(Action::Flag),
        Just(Action::Delete),
        Just(Action::Stop),
    ]
}

fn rule() -> impl Strategy<Value = FilterRule> {
    (
        text(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(condition(), 0..4),
        proptest::collection::vec(action(), 0..4),
    )
        .prop_map(|(name, enabled, any, conditions, actions)| {
            let mut r = FilterRule::new(
                name,
                if any { MatchMode::Any } else { MatchMode::All },
                conditions,
                actions,
            );
            r.enabled = enabled;
            r
        })
}

prop_compose! {
    fn org()(protocols in switches(), opt_in in any::<bool>(), del in any::<bool>(),
             sizes in (1u64..i64::MAX as u64, 1u64..i64::MAX as u64, 1u32..1000),
             nets in proptest::collection::vec((any::<[u8; 4]>(), 0u8..=32), 0..3),
             plan in (any::<bool>(), any::<bool>(), any::<bool>()), sent in text()) -> OrgSettings {
        let mut o = OrgSettings::default();
        o.protocols = protocols;
        o.require_user_opt_in = opt_in;
        o.allow_pop_delete = del;
        (o.limits.max_send_size, o.limits.max_receive_size, o.limits.max_imap_connections) = sizes;
        o.smtp_allowed_sources = nets.into_iter()
            .filter_map(|(a, p)| ipnet::IpNet::new(std::net::Ipv4Addr::from(a).into(), p).ok())
            .map(|n| n.trunc())
            .collect();
        let mut pf = PlanFeatures::default();
        (pf.external_import, pf.imap_migration, pf.eml_upload) = plan;
        o.plan = pf;
        o.folders.sent = sent;
        o
    }
}

prop_compose! {
    fn user()(admin in switches(), lim in (proptest::option::of(1u64..i64::MAX as u64), proptest::option::of(1u32..99)),
              pop in (any::<bool>(), proptest::option::of(any::<i64>()), 0u8..3, any::<i64>(), any::<[bool; 4]>(), proptest::option::of(1u32..999)),
              imap in (any::<bool>(), proptest::collection::btree_set(text(), 0..3), any::<bool>(), 0u8..3, 1u32..99),
              rules in proptest::collection::vec(rule(), 0..4)) -> UserSettings {
        let mut u = UserSettings::default();
        u.admin.protocols = admin;
        (u.admin.max_send_size, u.admin.max_imap_connections) = lim;
        let (enabled, at, scope, since, flags, days) = pop;
        u.pop3.enabled = enabled;
        u.pop3.enabled_at = at.map(UnixTime);
        u.pop3.scope = match scope { 0 => PopScope::All, 1 => PopScope::FromEnabled, _ => PopScope::Since { since: UnixTime(since) } };
        u.pop3.on_delete = if flags[0] { PopDeletePolicy::FollowClient } else { PopDeletePolicy::KeepOriginal };
        (u.pop3.mark_seen_on_retr, u.pop3.include_junk, u.pop3.include_imported) = (flags[1], flags[2], flags[3]);
        u.pop3.retention_days = days;
        let (ienabled, hidden, immediate, consumer, cdays) = imap;
        u.imap.enabled = ienabled;
        u.imap.hidden_folders = hidden;
        u.imap.deletion_mode = if immediate { DeletionMode::ExpungeImmediately } else { DeletionMode::WaitForClient };
        u.imap.consumer = match consumer { 0 => ConsumerMode::Off, 1 => ConsumerMode::DeleteFetched, _ => ConsumerMode::DeleteFetchedAfterDays { days: cdays } };
        u.filters.rules = rules;
        u
    }
}

proptest! {
    #[test]
    fn prop_org_settings_roundtrip(o in org()) {
        let text = toml::to_string(&o).unwrap();
        let back: OrgSettings = toml::from_str(&text).unwrap();
        prop_assert_eq!(back, o);
    }

    #[test]
    fn prop_user_settings_roundtrip(u in user()) {
        let text = toml::to_string(&u).unwrap();
        let back: UserSettings = toml::from_str(&text).unwrap();
        prop_assert_eq!(back, u);
    }

    #[test]
    fn prop_resolve_never_exceeds_org(o in org(), u in user()) {
        let p = resolve(&o, &u);
        prop_assert!(p.limits.max_send_size <= o.limits.max_send_size);
        prop_assert!(p.limits.max_receive_size <= o.limits.max_receive_size);
        prop_assert!(p.limits.max_imap_connections <= o.limits.max_imap_connections);
        for proto in [sync_policy::access::Protocol::Pop3, sync_policy::access::Protocol::Imap, sync_policy::access::Protocol::Smtp] {
            if !o.protocols.get(proto) || !u.admin.protocols.get(proto) {
                prop_assert!(p.protocol_access(proto).is_err(), "{} allowed against the administrator", proto);
            }
        }
        if !o.allow_pop_delete {
            prop_assert!(!p.pop3.expunge_on_delete);
        }
        prop_assert!(p.imap.is_visible("INBOX", Some('/')));
    }
}
