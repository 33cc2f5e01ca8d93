//! Property tests: for generated commands and responses, `parse(encode(x)) == x`; for
//! arbitrary bytes, the parsers never panic.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::num::NonZeroU32;

use bytes::Bytes;
use imap_proto::encode::{self, EncodeOptions};
use imap_proto::parse::{self, ParserOptions};
use imap_proto::types::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = Tag> {
    "[A-Za-z0-9.]{1,8}".prop_map(|s| Tag::try_from(s.as_str()).unwrap())
}

fn atom() -> impl Strategy<Value = Atom> {
    "X[A-Za-z0-9-]{0,8}".prop_map(|s| Atom::try_from(s.as_str()).unwrap())
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        vec(1u8..=255, 0..24).prop_map(Bytes::from),
        "[A-Za-z0-9 ]{0,12}".prop_map(Bytes::from),
        Just(Bytes::from_static(b"NIL")),
    ]
}

fn binary_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn nz() -> impl Strategy<Value = NonZeroU32> {
    (1u32..=u32::MAX).prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn small_nz() -> impl Strategy<Value = NonZeroU32> {
    (1u32..=20).prop_map(|n| NonZeroU32::new(n).unwrap())
}

fn text() -> impl Strategy<Value = Text> {
    "([A-Za-z0-9,.!?:;()\"-][A-Za-z0-9 ,.!?:;()\"-]{0,20})?".prop_map(|s| Text::new(s).unwrap())
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    prop_oneof![
        Just(Mailbox::inbox()),
        "[A-Za-z0-9 &./~#%*\"\\\\\\]-]{0,12}".prop_map(|s| Mailbox::new(s).unwrap()),
        "[^\r\n\x00]{0,8}".prop_map(|s| Mailbox::new(s).unwrap()),
    ]
}

fn pattern() -> impl Strategy<Value = ListPattern> {
    "[^\r\n\x00]{0,8}".prop_map(|s| ListPattern::new(s).unwrap())
}

fn seq_num() -> impl Strategy<Value = SeqNum> {
    prop_oneof![4 => nz().prop_map(SeqNum::Value), 1 => Just(SeqNum::Asterisk)]
}

fn seq_set() -> impl Strategy<Value = SequenceSet> {
    prop_oneof![
        8 => vec((seq_num(), of(seq_num())), 1..5).prop_map(|v| {
            SequenceSet::new(
                v.into_iter()
                    .map(|(a, b)| match b {
                        Some(b) => SeqRange::new(a, b),
                        None => SeqRange::single(a),
                    })
                    .collect(),
            )
            .unwrap()
        }),
        1 => Just(SequenceSet::Saved),
    ]
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        Just(Flag::Recent),
        atom().prop_map(Flag::Keyword),
        "\\$[A-Za-z]{1,8}".prop_map(|s| Flag::Keyword(Atom::try_from(s.as_str()).unwrap())),
        atom().prop_map(Flag::Extension),
    ]
}

fn mailbox_attr() -> impl Strategy<Value = MailboxAttr> {
    prop_oneof![
        Just(MailboxAttr::NoInferiors),
        Just(MailboxAttr::NoSelect),
        Just(MailboxAttr::Marked),
        Just(MailboxAttr::Unmarked),
        Just(MailboxAttr::NonExistent),
        Just(MailboxAttr::Subscribed),
        Just(MailboxAttr::Remote),
        Just(MailboxAttr::HasChildren),
        Just(MailboxAttr::HasNoChildren),
        Just(MailboxAttr::All),
        Just(MailboxAttr::Archive),
        Just(MailboxAttr::Drafts),
        Just(MailboxAttr::Flagged),
        Just(MailboxAttr::Junk),
        Just(MailboxAttr::Sent),
        Just(MailboxAttr::Trash),
        atom().prop_map(MailboxAttr::Extension),
    ]
}

fn date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..=23, 0u8..=59, 0u8..=60, -1439i16..=1439)
        .prop_map(|(d, h, m, s, z)| DateTime::new(d, h, m, s, z).unwrap())
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        Just(Capability::new("IMAP4rev2").unwrap()),
        Just(Capability::new("AUTH=PLAIN").unwrap()),
        Just(Capability::new("LITERAL+").unwrap()),
        atom().prop_map(Capability),
    ]
}

fn status_item() -> impl Strategy<Value = StatusItem> {
    proptest::sample::select(StatusItem::ALL.to_vec())
}

fn part() -> impl Strategy<Value = Vec<NonZeroU32>> {
    vec(small_nz(), 0..4)
}

fn header_name() -> impl Strategy<Value = Bytes> {
    "[A-Za-z-]{1,10}".prop_map(Bytes::from)
}

fn section() -> impl Strategy<Value = Section> {
    (
        part(),
        prop_oneof![
            Just(None),
            Just(Some(SectionText::Header)),
            Just(Some(SectionText::Text)),
            Just(Some(SectionText::Mime)),
            vec(header_name(), 1..3).prop_map(|v| Some(SectionText::HeaderFields(v))),
            vec(header_name(), 1..3).prop_map(|v| Some(SectionText::HeaderFieldsNot(v))),
        ],
    )
        .prop_map(|(part, text)| {
            let text = match text {
                Some(SectionText::Mime) if part.is_empty() => None,
                t => t,
            };
            Section { part, text }
        })
}

fn partial() -> impl Strategy<Value = Option<(u32, NonZeroU32)>> {
    of((any::<u32>(), nz()))
}

fn fetch_item() -> impl Strategy<Value = FetchItem> {
    prop_oneof![
        Just(FetchItem::Flags),
        Just(FetchItem::InternalDate),
        Just(FetchItem::Rfc822Size),
        Just(FetchItem::Rfc822),
        Just(FetchItem::Rfc822Header),
        Just(FetchItem::Rfc822Text),
        Just(FetchItem::Envelope),
        Just(FetchItem::Body),
        Just(FetchItem::BodyStructure),
        Just(FetchItem::Uid),
        Just(FetchItem::ModSeq),
        (any::<bool>(), section(), partial()).prop_map(|(peek, section, partial)| {
            FetchItem::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (any::<bool>(), part(), partial()).prop_map(|(peek, part, partial)| FetchItem::Binary {
            peek,
            part,
            partial
        }),
        part().prop_map(|part| FetchItem::BinarySize { part }),
    ]
}

fn search_key() -> impl Strategy<Value = SearchKey> {
    let leaf = prop_oneof![
        Just(SearchKey::All),
        Just(SearchKey::Answered),
        Just(SearchKey::Deleted),
        Just(SearchKey::Draft),
        Just(SearchKey::Flagged),
        Just(SearchKey::New),
        Just(SearchKey::Old),
        Just(SearchKey::Recent),
        Just(SearchKey::Seen),
        Just(SearchKey::Unanswered),
        Just(SearchKey::Undeleted),
        Just(SearchKey::Undraft),
        Just(SearchKey::Unflagged),
        Just(SearchKey::Unseen),
        any_bytes().prop_map(SearchKey::Bcc),
        any_bytes().prop_map(SearchKey::Body),
        any_bytes().prop_map(SearchKey::Cc),
        any_bytes().prop_map(SearchKey::From),
        any_bytes().prop_map(SearchKey::Subject),
        any_bytes().prop_map(SearchKey::Text),
        any_bytes().prop_map(SearchKey::To),
        (any_bytes(), any_bytes()).prop_map(|(a, b)| SearchKey::Header(a, b)),
        date().prop_map(SearchKey::Before),
        date().prop_map(SearchKey::On),
        date().prop_map(SearchKey::Since),
        date().prop_map(SearchKey::SentBefore),
        date().prop_map(SearchKey::SentOn),
        date().prop_map(SearchKey::SentSince),
        atom().prop_map(SearchKey::Keyword),
        atom().prop_map(SearchKey::Unkeyword),
        any::<u64>().prop_map(SearchKey::Larger),
        any::<u64>().prop_map(SearchKey::Smaller),
        seq_set().prop_map(SearchKey::Uid),
        seq_set().prop_map(SearchKey::SequenceSet),
        (
            of((
                "/flags/[a-z\\\\]{1,8}",
                proptest::sample::select(vec!["priv", "shared", "all"])
            )),
            any::<u64>()
        )
            .prop_map(|(e, modseq)| SearchKey::ModSeq {
                entry: e.map(|(n, t)| (Bytes::from(n), Atom::try_from(t).unwrap())),
                modseq
            }),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            vec(inner, 1..3).prop_map(SearchKey::And),
        ]
    })
}

fn id_params() -> impl Strategy<Value = Option<Vec<(Bytes, Option<Bytes>)>>> {
    of(vec((any_bytes(), of(any_bytes())), 0..3))
}

fn command_body() -> impl Strategy<Value = CommandBody> {
    let simple = prop_oneof![
        Just(CommandBody::Capability),
        Just(CommandBody::Noop),
        Just(CommandBody::Logout),
        Just(CommandBody::StartTls),
        Just(CommandBody::Namespace),
        Just(CommandBody::Idle),
        Just(CommandBody::Check),
        Just(CommandBody::Close),
        Just(CommandBody::Unselect),
        Just(CommandBody::Expunge),
        id_params().prop_map(CommandBody::Id),
        (atom(), of(binary_bytes())).prop_map(|(mechanism, initial_response)| {
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            }
        }),
        (any_bytes(), any_bytes())
            .prop_map(|(username, password)| CommandBody::Login { username, password }),
        vec(capability(), 1..4).prop_map(CommandBody::Enable),
        mailbox().prop_map(CommandBody::Delete),
        mailbox().prop_map(CommandBody::Subscribe),
        mailbox().prop_map(CommandBody::Unsubscribe),
        mailbox().prop_map(CommandBody::GetQuotaRoot),
        (mailbox(), mailbox()).prop_map(|(from, to)| CommandBody::Rename { from, to }),
        (mailbox(), vec(mailbox_attr(), 0..3)).prop_map(|(mailbox, special_use)| {
            CommandBody::Create {
                mailbox,
                special_use,
            }
        }),
        (mailbox(), pattern())
            .prop_map(|(reference, pattern)| CommandBody::Lsub { reference, pattern }),
        (mailbox(), vec(status_item(), 1..4))
            .prop_map(|(mailbox, items)| CommandBody::Status { mailbox, items }),
        any_bytes().prop_map(CommandBody::GetQuota),
        (any_bytes(), vec((atom(), any::<u64>()), 0..3))
            .prop_map(|(root, limits)| CommandBody::SetQuota { root, limits }),
        atom().prop_map(CommandBody::Compress),
        seq_set().prop_map(CommandBody::UidExpunge),
    ];
    let select_params = (
        any::<bool>(),
        of((
            nz(),
            any::<u64>(),
            of(seq_set()),
            of((seq_set(), seq_set())),
        )),
    )
        .prop_map(|(condstore, q)| SelectParams {
            condstore,
            qresync: q.map(
                |(uid_validity, modseq, known_uids, seq_match)| QResyncParams {
                    uid_validity,
                    modseq,
                    known_uids,
                    seq_match,
                },
            ),
        });
    let list_select = proptest::sample::select(vec![
        ListSelectOption::Subscribed,
        ListSelectOption::Remote,
        ListSelectOption::RecursiveMatch,
        ListSelectOption::SpecialUse,
    ]);
    let list_return = prop_oneof![
        Just(ListReturnOption::Subscribed),
        Just(ListReturnOption::Children),
        Just(ListReturnOption::SpecialUse),
        vec(status_item(), 0..3).prop_map(ListReturnOption::Status),
    ];
    let search_ret = proptest::sample::select(vec![
        SearchReturnOption::Min,
        SearchReturnOption::Max,
        SearchReturnOption::All,
        SearchReturnOption::Count,
        SearchReturnOption::Save,
    ]);
    let complex = prop_oneof![
        (any::<bool>(), mailbox(), select_params).prop_map(|(sel, mailbox, params)| if sel {
            CommandBody::Select { mailbox, params }
        } else {
            CommandBody::Examine { mailbox, params }
        }),
        (
            vec(list_select, 0..3),
            mailbox(),
            vec(pattern(), 1..3),
            vec(list_return, 0..3)
        )
            .prop_map(|(selection, reference, patterns, return_options)| {
                CommandBody::List {
                    selection,
                    reference,
                    patterns,
                    return_options,
                }
            }),
        (
            mailbox(),
            vec(flag(), 0..3),
            of(date_time()),
            binary_bytes(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(mailbox, flags, date, data, binary, utf8)| {
                let binary = binary || utf8 || data.contains(&0);
                CommandBody::Append {
                    mailbox,
                    message: AppendMessage {
                        flags,
                        date,
                        data,
                        binary,
                        utf8,
                    },
                }
            }),
        (
            any::<bool>(),
            of(vec(search_ret, 0..3)),
            of("[A-Za-z0-9-]{1,8}"),
            vec(search_key(), 1..4)
        )
            .prop_map(
                |(uid, return_options, charset, criteria)| CommandBody::Search {
                    uid,
                    return_options,
                    charset: charset.map(Bytes::from),
                    criteria
                }
            ),
        (
            any::<bool>(),
            seq_set(),
            prop_oneof![
                Just(FetchItems::All),
                Just(FetchItems::Fast),
                Just(FetchItems::Full),
                vec(fetch_item(), 1..4).prop_map(FetchItems::Items),
            ],
            of(any::<u64>()),
            any::<bool>()
        )
            .prop_map(
                |(uid, set, items, changed_since, vanished)| CommandBody::Fetch {
                    uid,
                    set,
                    items,
                    modifiers: FetchModifiers {
                        changed_since,
                        vanished
                    }
                }
            ),
        (
            any::<bool>(),
            seq_set(),
            proptest::sample::select(vec![StoreKind::Replace, StoreKind::Add, StoreKind::Remove]),
            any::<bool>(),
            vec(flag(), 0..4),
            of(any::<u64>())
        )
            .prop_map(|(uid, set, kind, silent, flags, unchanged_since)| {
                CommandBody::Store {
                    uid,
                    set,
                    kind,
                    silent,
                    flags,
                    unchanged_since,
                }
            }),
        (any::<bool>(), any::<bool>(), seq_set(), mailbox()).prop_map(|(uid, mv, set, mailbox)| {
            if mv {
                CommandBody::Move { uid, set, mailbox }
            } else {
                CommandBody::Copy { uid, set, mailbox }
            }
        }),
    ];
    prop_oneof![simple, complex]
}

fn command() -> impl Strategy<Value = Command> {
    (tag(), command_body()).prop_map(|(tag, body)| Command::new(tag, body))
}

fn code() -> impl Strategy<Value = Code> {
    prop_oneof![
        Just(Code::Alert),
        vec("[A-Za-z0-9-]{1,8}".prop_map(Bytes::from), 0..3).prop_map(Code::BadCharset),
        vec(capability(), 0..4).prop_map(Code::Capability),
        Just(Code::Parse),
        vec(
            prop_oneof![flag().prop_map(FlagPerm::Flag), Just(FlagPerm::Wildcard)],
            0..4
        )
        .prop_map(Code::PermanentFlags),
        Just(Code::ReadOnly),
        Just(Code::ReadWrite),
        Just(Code::TryCreate),
        nz().prop_map(Code::UidNext),
        nz().prop_map(Code::UidValidity),
        nz().prop_map(Code::Unseen),
        Just(Code::Closed),
        (nz(), seq_set()).prop_map(|(uid_validity, uids)| Code::AppendUid { uid_validity, uids }),
        (nz(), seq_set(), seq_set()).prop_map(|(uid_validity, source, target)| Code::CopyUid {
            uid_validity,
            source,
            target
        }),
        Just(Code::UidNotSticky),
        any::<u64>().prop_map(Code::HighestModSeq),
        Just(Code::NoModSeq),
        seq_set().prop_map(Code::Modified),
        Just(Code::NotSaved),
        Just(Code::CompressionActive),
        Just(Code::TooBig),
        Just(Code::UnknownCte),
        Just(Code::HasChildren),
        Just(Code::Unavailable),
        Just(Code::AuthenticationFailed),
        Just(Code::AuthorizationFailed),
        Just(Code::Expired),
        Just(Code::PrivacyRequired),
        Just(Code::ContactAdmin),
        Just(Code::NoPerm),
        Just(Code::InUse),
        Just(Code::ExpungeIssued),
        Just(Code::Corruption),
        Just(Code::ServerBug),
        Just(Code::ClientBug),
        Just(Code::CannotDo),
        Just(Code::Limit),
        Just(Code::OverQuota),
        Just(Code::AlreadyExists),
        Just(Code::NonExistent),
        Just(Code::UseAttr),
        ("X-[A-Z]{1,6}", of("[A-Za-z0-9 ()\"]{1,10}")).prop_map(|(a, t)| Code::Other(
            Atom::try_from(a.as_str()).unwrap(),
            t.map(Bytes::from)
        )),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    (
        of(any_bytes()),
        of(any_bytes()),
        of(any_bytes()),
        of(any_bytes()),
    )
        .prop_map(|(name, adl, mailbox, host)| Address {
            name,
            adl,
            mailbox,
            host,
        })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (of(any_bytes()), of(any_bytes())),
        [
            vec(address(), 0..3),
            vec(address(), 0..2),
            vec(address(), 0..2),
            vec(address(), 0..3),
            vec(address(), 0..2),
            vec(address(), 0..2),
        ],
        (of(any_bytes()), of(any_bytes())),
    )
        .prop_map(
            |(
                (date, subject),
                [from, sender, reply_to, to, cc, bcc],
                (in_reply_to, message_id),
            )| {
                Envelope {
                    date,
                    subject,
                    from,
                    sender,
                    reply_to,
                    to,
                    cc,
                    bcc,
                    in_reply_to,
                    message_id,
                }
            },
        )
}

fn params() -> impl Strategy<Value = Vec<(Bytes, Bytes)>> {
    vec((any_bytes(), any_bytes()), 0..3)
}

fn body_extension() -> impl Strategy<Value = BodyExtension> {
    let leaf = prop_oneof![
        of(any_bytes()).prop_map(BodyExtension::NString),
        any::<u32>().prop_map(BodyExtension::Number),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        vec(inner, 1..3).prop_map(BodyExtension::List)
    })
}

fn ext_dsp() -> impl Strategy<Value = Option<ExtDisposition>> {
    of((
        of((any_bytes(), params()).prop_map(|(kind, params)| Disposition { kind, params })),
        of((
            vec(any_bytes(), 0..3),
            of((of(any_bytes()), vec(body_extension(), 0..3))),
        )),
    ))
    .prop_map(|o| {
        o.map(|(disposition, more)| ExtDisposition {
            disposition,
            more: more.map(|(language, more)| ExtLanguage {
                language,
                more: more.map(|(location, extensions)| ExtLocation {
                    location,
                    extensions,
                }),
            }),
        })
    })
}

fn body_fields() -> impl Strategy<Value = BodyFields> {
    (
        params(),
        of(any_bytes()),
        of(any_bytes()),
        any_bytes(),
        any::<u32>(),
    )
        .prop_map(|(params, id, description, encoding, size)| BodyFields {
            params,
            id,
            description,
            encoding,
            size,
        })
}

fn body_structure() -> impl Strategy<Value = BodyStructure> {
    let leaf = (
        prop_oneof![
            Just((Bytes::from("TEXT"), None)),
            Just((Bytes::from("APPLICATION"), Some(()))),
            Just((Bytes::from("image"), Some(()))),
        ],
        any_bytes(),
        body_fields(),
        any::<u32>(),
        of((of(any_bytes()), ext_dsp())),
    )
        .prop_map(
            |((media_type, basic), subtype, fields, lines, ext)| BodyStructure::Single {
                kind: if basic.is_some() {
                    SinglePartKind::Basic
                } else {
                    SinglePartKind::Text { lines }
                },
                media_type,
                subtype,
                fields,
                ext: ext.map(|(md5, more)| SinglePartExt { md5, more }),
            },
        );
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (
                vec(inner.clone(), 1..3),
                any_bytes(),
                of((params(), ext_dsp()))
            )
                .prop_map(|(parts, subtype, ext)| BodyStructure::Multi {
                    parts,
                    subtype,
                    ext: ext.map(|(params, more)| MultiPartExt { params, more }),
                }),
            (
                body_fields(),
                envelope(),
                inner,
                any::<u32>(),
                prop_oneof![Just("RFC822"), Just("global")]
            )
                .prop_map(|(fields, envelope, body, lines, sub)| {
                    BodyStructure::Single {
                        media_type: Bytes::from("MESSAGE"),
                        subtype: Bytes::from(sub),
                        fields,
                        kind: SinglePartKind::Message {
                            envelope: Box::new(envelope),
                            body: Box::new(body),
                            lines,
                        },
                        ext: None,
                    }
                }),
        ]
    })
}

fn literal_data() -> impl Strategy<Value = Option<Bytes>> {
    of(vec(1u8..=255, 0..40).prop_map(Bytes::from))
}

fn fetch_attr() -> impl Strategy<Value = FetchAttr> {
    prop_oneof![
        vec(flag(), 0..4).prop_map(FetchAttr::Flags),
        date_time().prop_map(FetchAttr::InternalDate),
        any::<u64>().prop_map(FetchAttr::Rfc822Size),
        literal_data().prop_map(FetchAttr::Rfc822),
        literal_data().prop_map(FetchAttr::Rfc822Header),
        literal_data().prop_map(FetchAttr::Rfc822Text),
        envelope().prop_map(|e| FetchAttr::Envelope(Box::new(e))),
        body_structure().prop_map(|b| FetchAttr::Body(Box::new(b))),
        body_structure().prop_map(|b| FetchAttr::BodyStructure(Box::new(b))),
        (section(), of(any::<u32>()), literal_data()).prop_map(|(section, origin, data)| {
            FetchAttr::BodySection {
                section,
                origin,
                data,
            }
        }),
        (part(), of(any::<u32>()), of(binary_bytes()))
            .prop_map(|(part, origin, data)| FetchAttr::Binary { part, origin, data }),
        (part(), any::<u64>()).prop_map(|(part, size)| FetchAttr::BinarySize { part, size }),
        nz().prop_map(FetchAttr::Uid),
        any::<u64>().prop_map(FetchAttr::ModSeq),
    ]
}

fn delimiter() -> impl Strategy<Value = Option<char>> {
    of(proptest::char::range('\u{21}', '\u{7e}'))
}

fn ext_value() -> impl Strategy<Value = ExtValue> {
    let leaf = prop_oneof![
        "[A-Za-z0-9:,*]{1,8}".prop_map(|t| ExtValue::Token(Bytes::from(t))),
        any_bytes().prop_map(ExtValue::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| vec(inner, 0..3).prop_map(ExtValue::List))
}

fn list_data() -> impl Strategy<Value = ListData> {
    (
        vec(mailbox_attr(), 0..3),
        delimiter(),
        mailbox(),
        vec(
            prop_oneof![
                vec(any_bytes(), 0..2).prop_map(ListExtItem::ChildInfo),
                mailbox().prop_map(ListExtItem::OldName),
                ("X-[A-Z]{1,5}", ext_value()).prop_map(|(n, value)| ListExtItem::Other {
                    name: Bytes::from(n),
                    value
                }),
            ],
            0..2,
        ),
    )
        .prop_map(|(attributes, delimiter, mailbox, extended)| ListData {
            attributes,
            delimiter,
            mailbox,
            extended,
        })
}

fn namespace() -> impl Strategy<Value = Vec<NamespaceDesc>> {
    vec(
        (
            any_bytes(),
            delimiter(),
            vec((any_bytes(), vec(any_bytes(), 1..3)), 0..2),
        )
            .prop_map(|(prefix, delimiter, extensions)| NamespaceDesc {
                prefix,
                delimiter,
                extensions,
            }),
        0..3,
    )
}

fn status_attr() -> impl Strategy<Value = StatusAttr> {
    prop_oneof![
        any::<u32>().prop_map(StatusAttr::Messages),
        any::<u32>().prop_map(StatusAttr::Recent),
        any::<u32>().prop_map(StatusAttr::UidNext),
        any::<u32>().prop_map(StatusAttr::UidValidity),
        any::<u32>().prop_map(StatusAttr::Unseen),
        any::<u32>().prop_map(StatusAttr::Deleted),
        any::<u64>().prop_map(StatusAttr::Size),
        any::<u64>().prop_map(StatusAttr::HighestModSeq),
        of(any::<u64>()).prop_map(StatusAttr::AppendLimit),
    ]
}

fn esearch_item() -> impl Strategy<Value = ESearchItem> {
    prop_oneof![
        nz().prop_map(ESearchItem::Min),
        nz().prop_map(ESearchItem::Max),
        seq_set().prop_map(ESearchItem::All),
        any::<u32>().prop_map(ESearchItem::Count),
        any::<u64>().prop_map(ESearchItem::ModSeq),
    ]
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        vec(capability(), 0..4).prop_map(Data::Capability),
        vec(capability(), 0..4).prop_map(Data::Enabled),
        list_data().prop_map(Data::List),
        list_data().prop_map(|mut l| {
            l.extended.clear();
            Data::Lsub(l)
        }),
        (namespace(), namespace(), namespace()).prop_map(|(personal, other, shared)| {
            Data::Namespace {
                personal,
                other,
                shared,
            }
        }),
        (mailbox(), vec(status_attr(), 0..4))
            .prop_map(|(mailbox, items)| Data::Status { mailbox, items }),
        (vec(nz(), 0..5), of(any::<u64>()))
            .prop_map(|(numbers, modseq)| Data::Search { numbers, modseq }),
        (of(tag()), any::<bool>(), vec(esearch_item(), 0..4))
            .prop_map(|(tag, uid, items)| Data::ESearch { tag, uid, items }),
        vec(flag(), 0..5).prop_map(Data::Flags),
        any::<u32>().prop_map(Data::Exists),
        any::<u32>().prop_map(Data::Recent),
        nz().prop_map(Data::Expunge),
        (nz(), vec(fetch_attr(), 1..4)).prop_map(|(seq, items)| Data::Fetch { seq, items }),
        (any::<bool>(), seq_set()).prop_map(|(earlier, uids)| Data::Vanished { earlier, uids }),
        id_params().prop_map(Data::Id),
        (any_bytes(), vec((atom(), any::<u64>(), any::<u64>()), 0..3)).prop_map(|(root, r)| {
            Data::Quota {
                root,
                resources: r
                    .into_iter()
                    .map(|(name, usage, limit)| QuotaResource { name, usage, limit })
                    .collect(),
            }
        }),
        (mailbox(), vec(any_bytes(), 0..3))
            .prop_map(|(mailbox, roots)| Data::QuotaRoot { mailbox, roots }),
    ]
}

fn status_response() -> impl Strategy<Value = StatusResponse> {
    (
        of(tag()),
        proptest::sample::select(vec![
            StatusKind::Ok,
            StatusKind::No,
            StatusKind::Bad,
            StatusKind::PreAuth,
            StatusKind::Bye,
        ]),
        of(code()),
        text(),
    )
        .prop_map(|(tag, kind, code, text)| match tag {
            Some(t) if matches!(kind, StatusKind::Ok | StatusKind::No | StatusKind::Bad) => {
                StatusResponse::tagged(t, kind, code, text).unwrap()
            }
            _ => StatusResponse::untagged(kind, code, text),
        })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        status_response().prop_map(Response::Status),
        data().prop_map(Response::Data),
        binary_bytes().prop_map(|b| Response::Continue(Continue::Base64(b))),
        (of(code()), "[A-Za-z]{1,8} [A-Za-z ]{0,10}").prop_map(|(code, t)| Response::Continue(
            Continue::Text {
                code,
                text: Text::new(t).unwrap()
            }
        )),
    ]
}

fn check_command(c: &Command, opts: &EncodeOptions, popts: &ParserOptions) {
    let wire = encode::command_to_vec(c, opts);
    let (used, back) = parse::command_with(&wire, popts)
        .unwrap_or_else(|e| panic!("{e:?} on {:?}", String::from_utf8_lossy(&wire)));
    assert_eq!(used, wire.len());
    assert_eq!(&back, c, "{:?}", String::from_utf8_lossy(&wire));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn command_roundtrip(c in command()) {
        check_command(&c, &EncodeOptions::default(), &ParserOptions::default());
        check_command(&c, &EncodeOptions::default().with_literal_plus(true), &ParserOptions::default());
        let mut utf8 = ParserOptions::default();
        utf8.utf8_mailboxes = true;
        check_command(&c, &EncodeOptions::default().with_utf8(true), &utf8);
    }

    #[test]
    fn command_fragments_concatenate_to_a_parseable_message(c in command()) {
        // Every literal fragment is preceded by a line ending in its announcement.
        let frags = encode::command(&c);
        let mut so_far = Vec::new();
        for f in &frags {
            match f {
                encode::Fragment::Line(b) => so_far.extend_from_slice(b),
                encode::Fragment::Literal { data, sync } => {
                    prop_assert!(*sync);
                    match parse::command(&so_far) {
                        Err(parse::ParseError::Literal { header, offset, .. }) => {
                            prop_assert_eq!(header.len, data.len() as u64);
                            prop_assert_eq!(offset, so_far.len());
                        }
                        other => prop_assert!(false, "{:?}", other),
                    }
                    so_far.extend_from_slice(data);
                }
            }
        }
    }

    #[test]
    fn response_roundtrip(r in response()) {
        let mut wire = Vec::new();
        encode::response(&r, &mut wire);
        let (used, back) = parse::response(&wire)
            .unwrap_or_else(|e| panic!("{e:?} on {:?}", String::from_utf8_lossy(&wire)));
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(&back, &r, "{:?}", String::from_utf8_lossy(&wire));
    }

    #[test]
    fn greeting_roundtrip(
        kind in proptest::sample::select(vec![GreetingKind::Ok, GreetingKind::PreAuth, GreetingKind::Bye]),
        code in of(code()),
        text in text(),
    ) {
        let g = Greeting { kind, code, text };
        let mut wire = Vec::new();
        encode::greeting(&g, &mut wire);
        let (used, back) = parse::greeting(&wire).unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(back, g);
    }

    #[test]
    fn mutf7_roundtrip(s in "\\PC{0,16}") {
        let enc = encode_mutf7(&s);
        prop_assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(decode_mutf7(enc.as_bytes()).unwrap(), s);
    }

    #[test]
    fn fetch_literal_head_roundtrip(seq in nz(), before in vec(fetch_attr(), 0..3), data in vec(1u8..=255, 0..64)) {
        let item = FetchLiteralItem::BodySection { section: Section::default(), origin: Some(7) };
        let mut wire = Vec::new();
        encode::fetch_literal_head(seq, &before, &item, data.len() as u64, &mut wire);
        let prefix = parse::fetch_literal_prefix(&wire, &ParserOptions::default()).unwrap();
        prop_assert_eq!(prefix.seq, seq);
        prop_assert_eq!(&prefix.items, &before);
        prop_assert_eq!(prefix.consumed, wire.len());
        wire.extend_from_slice(&data);
        encode::fetch_literal_tail(&mut wire);
        let (_, r) = parse::response(&wire).unwrap();
        let mut items = before.clone();
        items.push(item.with_data(Some(Bytes::from(data))));
        prop_assert_eq!(r, Response::Data(Data::Fetch { seq, items }));
    }

    #[test]
    fn parsers_never_panic(input in vec(any::<u8>(), 0..256)) {
        let _ = parse::command(&input);
        let _ = parse::response(&input);
        let _ = parse::greeting(&input);
        let _ = parse::append_prefix(&input, &ParserOptions::default());
        let _ = parse::fetch_literal_prefix(&input, &ParserOptions::default());
        let _ = parse::idle_done(&input);
        let _ = parse::authenticate_data(&input, &ParserOptions::default());
    }

    #[test]
    fn parsers_never_panic_on_imapish_input(input in "[a-zA-Z0-9 ()\\[\\]{}<>*$:,.\"\\\\+~%-]{0,80}(\r\n)?") {
        let _ = parse::command(input.as_bytes());
        let _ = parse::response(input.as_bytes());
    }
}
