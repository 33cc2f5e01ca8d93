//! Command encoder.

use base64::Engine as _;

use super::{EncodeOptions, Fragment, W};
use crate::types::{
    Command, CommandBody, FetchItem, FetchItems, ListReturnOption, ListSelectOption, SearchKey,
    SearchReturnOption, Section, SectionText, StoreKind,
};

/// Encodes a command with default options.
#[must_use]
pub fn command(cmd: &Command) -> Vec<Fragment> {
    command_with(cmd, &EncodeOptions::default())
}

/// Encodes a command into fragments: send each `Line`; before a `Literal { sync: true }`
/// wait for the server's `+` continuation.
#[must_use]
pub fn command_with(cmd: &Command, opts: &EncodeOptions) -> Vec<Fragment> {
    let mut w = W::new(opts, true);
    write_command(&mut w, cmd);
    w.into_fragments()
}

/// Encodes a command as the bytes that end up on the wire (fragments concatenated), e.g.
/// for tests, logs or a LITERAL+ server.
#[must_use]
pub fn command_to_vec(cmd: &Command, opts: &EncodeOptions) -> Vec<u8> {
    let mut out = Vec::new();
    for f in command_with(cmd, opts) {
        match f {
            Fragment::Line(b) | Fragment::Literal { data: b, .. } => out.extend_from_slice(&b),
        }
    }
    out
}

pub(crate) fn section(w: &mut W<'_>, s: &Section) {
    w.raw(b"[");
    for (i, n) in s.part.iter().enumerate() {
        if i > 0 {
            w.raw(b".");
        }
        w.num(n.get());
    }
    if let Some(text) = &s.text {
        if !s.part.is_empty() {
            w.raw(b".");
        }
        match text {
            SectionText::Header => w.raw(b"HEADER"),
            SectionText::Text => w.raw(b"TEXT"),
            SectionText::Mime => w.raw(b"MIME"),
            SectionText::HeaderFields(f) => {
                w.raw(b"HEADER.FIELDS ");
                w.list(f, |w, f| w.astring(f));
            }
            SectionText::HeaderFieldsNot(f) => {
                w.raw(b"HEADER.FIELDS.NOT ");
                w.list(f, |w, f| w.astring(f));
            }
        }
    }
    w.raw(b"]");
}

pub(crate) fn section_binary(w: &mut W<'_>, part: &[std::num::NonZeroU32]) {
    w.raw(b"[");
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            w.raw(b".");
        }
        w.num(n.get());
    }
    w.raw(b"]");
}

fn partial(w: &mut W<'_>, p: &Option<(u32, std::num::NonZeroU32)>) {
    if let Some((origin, count)) = p {
        w.raw(b"<");
        w.num(*origin);
        w.raw(b".");
        w.num(count.get());
        w.raw(b">");
    }
}

fn fetch_item(w: &mut W<'_>, item: &FetchItem) {
    match item {
        FetchItem::Flags => w.raw(b"FLAGS"),
        FetchItem::InternalDate => w.raw(b"INTERNALDATE"),
        FetchItem::Rfc822Size => w.raw(b"RFC822.SIZE"),
        FetchItem::Rfc822 => w.raw(b"RFC822"),
        FetchItem::Rfc822Header => w.raw(b"RFC822.HEADER"),
        FetchItem::Rfc822Text => w.raw(b"RFC822.TEXT"),
        FetchItem::Envelope => w.raw(b"ENVELOPE"),
        FetchItem::Body => w.raw(b"BODY"),
        FetchItem::BodyStructure => w.raw(b"BODYSTRUCTURE"),
        FetchItem::Uid => w.raw(b"UID"),
        FetchItem::ModSeq => w.raw(b"MODSEQ"),
        FetchItem::BodySection {
            peek,
            section: s,
            partial: p,
        } => {
            w.raw(if *peek { b"BODY.PEEK" } else { b"BODY" });
            section(w, s);
            partial(w, p);
        }
        FetchItem::Binary {
            peek,
            part,
            partial: p,
        } => {
            w.raw(if *peek { b"BINARY.PEEK" } else { b"BINARY" });
            section_binary(w, part);
            partial(w, p);
        }
        FetchItem::BinarySize { part } => {
            w.raw(b"BINARY.SIZE");
            section_binary(w, part);
        }
    }
}

fn search_key(w: &mut W<'_>, k: &SearchKey) {
    macro_rules! kw {
        ($s:literal) => {
            w.raw($s)
        };
        ($s:literal, $f:ident, $v:expr) => {{
            w.raw($s);
            w.sp();
            w.$f($v);
        }};
    }
    match k {
        SearchKey::All => kw!(b"ALL"),
        SearchKey::Answered => kw!(b"ANSWERED"),
        SearchKey::Bcc(s) => kw!(b"BCC", astring, s),
        SearchKey::Before(d) => kw!(b"BEFORE", date, d),
        SearchKey::Body(s) => kw!(b"BODY", astring, s),
        SearchKey::Cc(s) => kw!(b"CC", astring, s),
        SearchKey::Deleted => kw!(b"DELETED"),
        SearchKey::Draft => kw!(b"DRAFT"),
        SearchKey::Flagged => kw!(b"FLAGGED"),
        SearchKey::From(s) => kw!(b"FROM", astring, s),
        SearchKey::Header(n, v) => {
            w.raw(b"HEADER ");
            w.astring(n);
            w.sp();
            w.astring(v);
        }
        SearchKey::Keyword(a) => kw!(b"KEYWORD", raw, a.as_bytes()),
        SearchKey::Larger(n) => kw!(b"LARGER", num, *n),
        SearchKey::New => kw!(b"NEW"),
        SearchKey::Not(k) => {
            w.raw(b"NOT ");
            search_key(w, k);
        }
        SearchKey::Old => kw!(b"OLD"),
        SearchKey::On(d) => kw!(b"ON", date, d),
        SearchKey::Or(a, b) => {
            w.raw(b"OR ");
            search_key(w, a);
            w.sp();
            search_key(w, b);
        }
        SearchKey::Recent => kw!(b"RECENT"),
        SearchKey::Seen => kw!(b"SEEN"),
        SearchKey::SentBefore(d) => kw!(b"SENTBEFORE", date, d),
        SearchKey::SentOn(d) => kw!(b"SENTON", date, d),
        SearchKey::SentSince(d) => kw!(b"SENTSINCE", date, d),
        SearchKey::Since(d) => kw!(b"SINCE", date, d),
        SearchKey::Smaller(n) => kw!(b"SMALLER", num, *n),
        SearchKey::Subject(s) => kw!(b"SUBJECT", astring, s),
        SearchKey::Text(s) => kw!(b"TEXT", astring, s),
        SearchKey::To(s) => kw!(b"TO", astring, s),
        SearchKey::Uid(s) => kw!(b"UID", seq, s),
        SearchKey::Unanswered => kw!(b"UNANSWERED"),
        SearchKey::Undeleted => kw!(b"UNDELETED"),
        SearchKey::Undraft => kw!(b"UNDRAFT"),
        SearchKey::Unflagged => kw!(b"UNFLAGGED"),
        SearchKey::Unkeyword(a) => kw!(b"UNKEYWORD", raw, a.as_bytes()),
        SearchKey::Unseen => kw!(b"UNSEEN"),
        SearchKey::SequenceSet(s) => w.seq(s),
        SearchKey::And(keys) => w.list(keys, search_key),
        SearchKey::ModSeq { entry, modseq } => {
            w.raw(b"MODSEQ ");
            if let Some((name, kind)) = entry {
                w.quoted(name);
                w.sp();
                w.raw(kind.as_bytes());
                w.sp();
            }
            w.num(*modseq);
        }
    }
}

fn status_items(w: &mut W<'_>, items: &[crate::types::StatusItem]) {
    w.list(items, |w, i| w.raw(i.name().as_bytes()));
}

fn write_command(w: &mut W<'_>, cmd: &Command) {
    w.raw(cmd.tag.as_bytes());
    w.sp();
    w.raw(cmd.body.name().as_bytes());
    match &cmd.body {
        CommandBody::Capability
        | CommandBody::Noop
        | CommandBody::Logout
        | CommandBody::StartTls
        | CommandBody::Namespace
        | CommandBody::Idle
        | CommandBody::Check
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Expunge => {}
        CommandBody::Id(params) => {
            w.sp();
            match params {
                None => w.raw(b"NIL"),
                Some(p) => w.list(p, |w, (k, v)| {
                    w.string(k);
                    w.sp();
                    w.nstring(v);
                }),
            }
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            w.sp();
            w.raw(mechanism.as_bytes());
            if let Some(ir) = initial_response {
                w.sp();
                if ir.is_empty() {
                    w.raw(b"=");
                } else {
                    let enc = base64::engine::general_purpose::STANDARD.encode(ir);
                    w.raw(enc.as_bytes());
                }
            }
        }
        CommandBody::Login { username, password } => {
            w.sp();
            w.astring(username);
            w.sp();
            w.astring(password);
        }
        CommandBody::Enable(caps) => {
            for c in caps {
                w.sp();
                w.raw(c.0.as_bytes());
            }
        }
        CommandBody::Select { mailbox, params } | CommandBody::Examine { mailbox, params } => {
            w.sp();
            w.mailbox(mailbox);
            if params.condstore || params.qresync.is_some() {
                w.raw(b" (");
                if params.condstore {
                    w.raw(b"CONDSTORE");
                    if params.qresync.is_some() {
                        w.sp();
                    }
                }
                if let Some(q) = &params.qresync {
                    w.raw(b"QRESYNC (");
                    w.num(q.uid_validity.get());
                    w.sp();
                    w.num(q.modseq);
                    if let Some(k) = &q.known_uids {
                        w.sp();
                        w.seq(k);
                    }
                    if let Some((a, b)) = &q.seq_match {
                        w.raw(b" (");
                        w.seq(a);
                        w.sp();
                        w.seq(b);
                        w.raw(b")");
                    }
                    w.raw(b")");
                }
                w.raw(b")");
            }
        }
        CommandBody::Create {
            mailbox,
            special_use,
        } => {
            w.sp();
            w.mailbox(mailbox);
            if !special_use.is_empty() {
                w.raw(b" (USE ");
                w.list(special_use, |w, a| w.mailbox_attr(a));
                w.raw(b")");
            }
        }
        CommandBody::Delete(m) | CommandBody::Subscribe(m) | CommandBody::Unsubscribe(m) => {
            w.sp();
            w.mailbox(m);
        }
        CommandBody::GetQuotaRoot(m) => {
            w.sp();
            w.mailbox(m);
        }
        CommandBody::Rename { from, to } => {
            w.sp();
            w.mailbox(from);
            w.sp();
            w.mailbox(to);
        }
        CommandBody::List {
            selection,
            reference,
            patterns,
            return_options,
        } => {
            w.sp();
            if !selection.is_empty() {
                w.list(selection, |w, s| {
                    w.raw(match s {
                        ListSelectOption::Subscribed => b"SUBSCRIBED",
                        ListSelectOption::Remote => b"REMOTE",
                        ListSelectOption::RecursiveMatch => b"RECURSIVEMATCH",
                        ListSelectOption::SpecialUse => b"SPECIAL-USE",
                    })
                });
                w.sp();
            }
            w.mailbox(reference);
            w.sp();
            match patterns.as_slice() {
                [one] => w.list_mailbox(one),
                many => w.list(many, |w, p| w.list_mailbox(p)),
            }
            if !return_options.is_empty() {
                w.raw(b" RETURN ");
                w.list(return_options, |w, o| match o {
                    ListReturnOption::Subscribed => w.raw(b"SUBSCRIBED"),
                    ListReturnOption::Children => w.raw(b"CHILDREN"),
                    ListReturnOption::SpecialUse => w.raw(b"SPECIAL-USE"),
                    ListReturnOption::Status(items) => {
                        w.raw(b"STATUS ");
                        status_items(w, items);
                    }
                });
            }
        }
        CommandBody::Lsub { reference, pattern } => {
            w.sp();
            w.mailbox(reference);
            w.sp();
            w.list_mailbox(pattern);
        }
        CommandBody::Status { mailbox, items } => {
            w.sp();
            w.mailbox(mailbox);
            w.sp();
            status_items(w, items);
        }
        CommandBody::Append { mailbox, message } => {
            w.sp();
            w.mailbox(mailbox);
            if !message.flags.is_empty() {
                w.sp();
                w.flag_list(&message.flags);
            }
            if let Some(d) = &message.date {
                w.sp();
                w.date_time(d);
            }
            w.sp();
            if message.utf8 {
                w.raw(b"UTF8 (");
                w.literal(&message.data, true);
                w.raw(b")");
            } else {
                let binary = message.binary || memchr::memchr(0, &message.data).is_some();
                w.literal(&message.data, binary);
            }
        }
        CommandBody::GetQuota(root) => {
            w.sp();
            w.astring(root);
        }
        CommandBody::SetQuota { root, limits } => {
            w.sp();
            w.astring(root);
            w.sp();
            w.list(limits, |w, (name, limit)| {
                w.raw(name.as_bytes());
                w.sp();
                w.num(*limit);
            });
        }
        CommandBody::Compress(a) => {
            w.sp();
            w.raw(a.as_bytes());
        }
        CommandBody::UidExpunge(set) => {
            w.sp();
            w.seq(set);
        }
        CommandBody::Search {
            return_options,
            charset,
            criteria,
            ..
        } => {
            if let Some(opts) = return_options {
                w.raw(b" RETURN ");
                w.list(opts, |w, o| {
                    w.raw(match o {
                        SearchReturnOption::Min => b"MIN",
                        SearchReturnOption::Max => b"MAX",
                        SearchReturnOption::All => b"ALL",
                        SearchReturnOption::Count => b"COUNT",
                        SearchReturnOption::Save => b"SAVE",
                    })
                });
            }
            if let Some(cs) = charset {
                w.raw(b" CHARSET ");
                w.astring(cs);
            }
            for k in criteria {
                w.sp();
                search_key(w, k);
            }
        }
        CommandBody::Fetch {
            set,
            items,
            modifiers,
            ..
        } => {
            w.sp();
            w.seq(set);
            w.sp();
            match items {
                FetchItems::All => w.raw(b"ALL"),
                FetchItems::Fast => w.raw(b"FAST"),
                FetchItems::Full => w.raw(b"FULL"),
                FetchItems::Items(v) => match v.as_slice() {
                    [one] => fetch_item(w, one),
                    many => w.list(many, fetch_item),
                },
            }
            if modifiers.changed_since.is_some() || modifiers.vanished {
                w.raw(b" (");
                if let Some(c) = modifiers.changed_since {
                    w.raw(b"CHANGEDSINCE ");
                    w.num(c);
                    if modifiers.vanished {
                        w.sp();
                    }
                }
                if modifiers.vanished {
                    w.raw(b"VANISHED");
                }
                w.raw(b")");
            }
        }
        CommandBody::Store {
            set,
            kind,
            silent,
            flags,
            unchanged_since,
            ..
        } => {
            w.sp();
            w.seq(set);
            w.sp();
            if let Some(u) = unchanged_since {
                w.raw(b"(UNCHANGEDSINCE ");
                w.num(*u);
                w.raw(b") ");
            }
            w.raw(match kind {
                StoreKind::Replace => b"FLAGS",
                StoreKind::Add => b"+FLAGS",
                StoreKind::Remove => b"-FLAGS",
            });
            if *silent {
                w.raw(b".SILENT");
            }
            w.sp();
            w.flag_list(flags);
        }
        CommandBody::Copy { set, mailbox, .. } | CommandBody::Move { set, mailbox, .. } => {
            w.sp();
            w.seq(set);
            w.sp();
            w.mailbox(mailbox);
        }
    }
    w.crlf();
}
