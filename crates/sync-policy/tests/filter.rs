//! FLT-1: sorting rules, table-driven, plus properties.

use proptest::prelude::*;
use sync_policy::filter::{
    Action, AddFlag, Condition, FilterOutcome, FilterRule, FilterSettings, Header, HeaderField,
    MatchMode, SizeMatch, TextMatch, evaluate,
};
use sync_policy::{Origin, PolicyError};

fn hdr(field: HeaderField, op: TextMatch, value: &str) -> Condition {
    Condition::Header {
        field,
        op,
        value: value.into(),
    }
}

fn headers() -> Vec<Header> {
    vec![
        Header::new("From", "\"Billing Dept\" <billing@Example.COM>"),
        Header::new("To", "alice@example.org"),
        Header::new("To", "team@example.org"),
        Header::new("cc", "boss@example.org"),
        Header::new("Subject", "  請求書 Invoice 2024-05  "),
        Header::new("List-Id", "<announce.lists.example.org>"),
    ]
}

fn one(c: Condition) -> FilterRule {
    FilterRule::new("r", MatchMode::All, vec![c], vec![Action::MarkRead])
}

#[test]
fn flt_conditions_table() {
    use HeaderField as F;
    use TextMatch as T;
    let table = [
        (hdr(F::From, T::Contains, "billing@example.com"), true), // case-insensitive
        (hdr(F::From, T::Contains, "BILLING DEPT"), true),
        (hdr(F::From, T::Contains, "sales@"), false),
        (hdr(F::From, T::NotContains, "sales@"), true),
        (hdr(F::From, T::NotContains, "billing"), false),
        (hdr(F::To, T::Equals, "TEAM@example.org"), true), // any occurrence of a repeated field
        (hdr(F::To, T::Equals, "team@example"), false),
        (hdr(F::Cc, T::Contains, "boss"), true), // field names are case-insensitive
        (hdr(F::To, T::Contains, "boss"), false),
        (hdr(F::ToOrCc, T::Contains, "boss"), true),
        (hdr(F::Subject, T::StartsWith, "請求書"), true), // leading white space ignored
        (hdr(F::Subject, T::EndsWith, "2024-05"), true),
        (hdr(F::Subject, T::Equals, "請求書 invoice 2024-05"), true),
        (hdr(F::Subject, T::Contains, "領収書"), false),
        (
            hdr(F::Other("list-id".into()), T::Contains, "announce.lists"),
            true,
        ),
        (hdr(F::Other("X-Spam-Flag".into()), T::Exists, ""), false),
        (
            hdr(F::Other("X-Spam-Flag".into()), T::NotContains, "yes"),
            true,
        ), // absent field
        (hdr(F::Other("List-Id".into()), T::Exists, ""), true),
        (
            Condition::Size {
                op: SizeMatch::GreaterThan,
                bytes: 999,
            },
            true,
        ),
        (
            Condition::Size {
                op: SizeMatch::GreaterThan,
                bytes: 1000,
            },
            false,
        ),
        (
            Condition::Size {
                op: SizeMatch::LessThan,
                bytes: 1001,
            },
            true,
        ),
        (
            Condition::Size {
                op: SizeMatch::LessThan,
                bytes: 1000,
            },
            false,
        ),
    ];
    let h = headers();
    for (c, want) in table {
        assert_eq!(one(c.clone()).matches(&h, 1000), want, "{c:?}");
    }
}

#[test]
fn flt_all_and_any() {
    let yes = hdr(HeaderField::Subject, TextMatch::Contains, "invoice");
    let no = hdr(HeaderField::Subject, TextMatch::Contains, "newsletter");
    let table = [
        (MatchMode::All, vec![yes.clone(), yes.clone()], true),
        (MatchMode::All, vec![yes.clone(), no.clone()], false),
        (MatchMode::Any, vec![yes.clone(), no.clone()], true),
        (MatchMode::Any, vec![no.clone(), no.clone()], false),
        (MatchMode::Any, vec![], false), // a rule without conditions never matches
        (MatchMode::All, vec![], false),
    ];
    for (mode, conditions, want) in table {
        let rule = FilterRule::new("r", mode, conditions.clone(), vec![Action::Flag]);
        assert_eq!(
            rule.matches(&headers(), 10),
            want,
            "{mode:?} {conditions:?}"
        );
    }
    let mut disabled = one(yes);
    disabled.enabled = false;
    assert!(!disabled.matches(&headers(), 10));
}

#[test]
fn flt_actions_combine() {
    let invoice = hdr(HeaderField::Subject, TextMatch::Contains, "invoice");
    let billing = hdr(HeaderField::From, TextMatch::Contains, "billing");
    let nothing = hdr(HeaderField::From, TextMatch::Contains, "nobody");
    let rule =
        |c: &Condition, a: Vec<Action>| FilterRule::new("r", MatchMode::All, vec![c.clone()], a);
    let out = |folder: Option<&str>, flags: Vec<AddFlag>, delete: bool, matched: Vec<usize>| {
        FilterOutcome {
            folder: folder.map(String::from),
            add_flags: flags,
            delete,
            matched,
        }
    };
    let table = [
        (vec![], out(None, vec![], false, vec![])),
        (
            vec![rule(&nothing, vec![Action::MoveTo("X".into())])],
            out(None, vec![], false, vec![]),
        ),
        (
            vec![
                rule(
                    &invoice,
                    vec![Action::MoveTo("Invoices".into()), Action::Flag],
                ),
                rule(
                    &billing,
                    vec![
                        Action::MoveTo("Billing".into()),
                        Action::MarkRead,
                        Action::Flag,
                    ],
                ),
            ],
            out(
                Some("Invoices"),
                vec![AddFlag::Seen, AddFlag::Flagged],
                false,
                vec![0, 1],
            ),
        ),
        (
            vec![
                rule(
                    &invoice,
                    vec![Action::MoveTo("Invoices".into()), Action::Stop],
                ),
                rule(&billing, vec![Action::MarkRead]),
            ],
            out(Some("Invoices"), vec![], false, vec![0]),
        ),
        (
            vec![
                rule(&invoice, vec![Action::MoveTo("Invoices".into())]),
                rule(&billing, vec![Action::Delete]),
            ],
            out(None, vec![], true, vec![0, 1]),
        ),
        (
            vec![
                rule(&nothing, vec![Action::Stop]),
                rule(&billing, vec![Action::MarkRead]),
            ],
            out(None, vec![AddFlag::Seen], false, vec![1]),
        ),
    ];
    for (rules, want) in table {
        assert_eq!(evaluate(&rules, &headers(), 1000), want, "{rules:?}");
    }
}

#[test]
fn flt_applies_to_imported_only_when_asked() {
    let imported = Origin::Imported {
        source: "old@example.net".into(),
    };
    let table = [
        (Origin::Delivered, false, true),
        (Origin::Delivered, true, true),
        (imported.clone(), false, false),
        (imported, true, true),
    ];
    for (origin, asked, want) in table {
        assert_eq!(
            FilterSettings::applies_to(&origin, asked),
            want,
            "{origin:?} {asked}"
        );
    }
}

#[test]
fn flt_validation() {
    let ok = FilterRule::new(
        "ok",
        MatchMode::All,
        vec![hdr(HeaderField::From, TextMatch::Contains, "a")],
        vec![Action::Flag],
    );
    let with = |f: &dyn Fn(&mut FilterRule)| {
        let mut r = ok.clone();
        f(&mut r);
        let mut s = FilterSettings::default();
        s.rules = vec![ok.clone(), r];
        s.validate()
    };
    let reason = |r: Result<(), PolicyError>| match r {
        Ok(()) => None,
        Err(PolicyError::InvalidFilterRule {
            index: 1, reason, ..
        }) => Some(reason),
        Err(e) => Some(format!("unexpected {e}")),
    };
    type Change<'a> = &'a dyn Fn(&mut FilterRule);
    let table: [(Change, Option<&str>); 7] = [
        (&|_| {}, None),
        (&|r| r.conditions.clear(), Some("it has no condition")),
        (&|r| r.actions.clear(), Some("it has no action")),
        (
            &|r| {
                r.conditions = vec![hdr(
                    HeaderField::Other("X Bad:".into()),
                    TextMatch::Contains,
                    "a",
                )]
            },
            Some("\"X Bad:\" is not a header field name"),
        ),
        (
            &|r| r.conditions = vec![hdr(HeaderField::Subject, TextMatch::Contains, "")],
            Some("a condition has an empty text"),
        ),
        (
            &|r| r.conditions = vec![hdr(HeaderField::Subject, TextMatch::Exists, "")],
            None,
        ),
        (
            &|r| r.actions = vec![Action::MoveTo(String::new())],
            Some("folder name \"\" is not usable: it is empty"),
        ),
    ];
    for (change, want) in table {
        assert_eq!(reason(with(change)).as_deref(), want);
    }
    let mut many = FilterSettings::default();
    many.rules = vec![ok; 201];
    assert_eq!(
        many.validate(),
        Err(PolicyError::TooManyFilterRules {
            count: 201,
            max: 200
        })
    );
    assert_eq!(
        PolicyError::InvalidFilterRule {
            index: 2,
            name: "x".into(),
            reason: "it has no action".into()
        }
        .to_string(),
        "filter rule 2 (\"x\"): it has no action"
    );
}

proptest! {
    #[test]
    fn prop_contains_is_case_insensitive(prefix in "[a-zA-Z ]{0,8}", needle in "[a-zA-Z0-9@.]{1,12}", suffix in "[a-zA-Z ]{0,8}") {
        let value = format!("{prefix}{}{suffix}", needle.to_uppercase());
        let h = vec![Header::new("SUBJECT", value)];
        let rule = one(hdr(HeaderField::Subject, TextMatch::Contains, &needle.to_lowercase()));
        prop_assert!(rule.matches(&h, 0));
        let not = one(hdr(HeaderField::Subject, TextMatch::NotContains, &needle));
        prop_assert!(!not.matches(&h, 0));
    }

    #[test]
    fn prop_outcome_is_consistent(flags in proptest::collection::vec(0u8..5, 0..12), size in 0u64..5000) {
        let actions: Vec<Action> = flags.iter().map(|a| match a {
            0 => Action::MoveTo(format!("F{a}")),
            1 => Action::MarkRead,
            2 => Action::Flag,
            3 => Action::Delete,
            _ => Action::Stop,
        }).collect();
        let rules: Vec<FilterRule> = actions.chunks(3).map(|a| FilterRule::new("r", MatchMode::Any,
            vec![Condition::Size { op: SizeMatch::GreaterThan, bytes: 2500 }], a.to_vec())).collect();
        let out = evaluate(&rules, &[], size);
        prop_assert!(!(out.delete && out.folder.is_some()));
        prop_assert!(out.matched.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(out.matched.is_empty(), size <= 2500 || rules.is_empty());
        let mut dedup = out.add_flags.clone();
        dedup.dedup();
        prop_assert_eq!(dedup, out.add_flags);
    }
}
