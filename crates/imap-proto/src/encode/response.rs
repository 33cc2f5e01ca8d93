//! Response encoder.

use std::num::NonZeroU32;

use base64::Engine as _;
use bytes::Bytes;

use super::command::{section, section_binary};
use super::{EncodeOptions, W};
use crate::types::{
    Address, BodyExtension, BodyStructure, Code, Continue, Data, ESearchItem, ExtDisposition,
    ExtValue, FetchAttr, FetchLiteralItem, FlagPerm, Greeting, GreetingKind, ListExtItem,
    NamespaceDesc, Response, SinglePartKind, StatusAttr, StatusKind, Text,
};

/// Encodes a response (with default options), appending to `out`.
pub fn response(r: &Response, out: &mut Vec<u8>) {
    response_with(r, &EncodeOptions::default(), out);
}

/// Encodes a response with the given options, appending to `out`.
pub fn response_with(r: &Response, opts: &EncodeOptions, out: &mut Vec<u8>) {
    let mut w = W::with_buffer(std::mem::take(out), opts);
    match r {
        Response::Status(s) => {
            match &s.tag {
                Some(t) => w.raw(t.as_bytes()),
                None => w.raw(b"*"),
            }
            w.sp();
            w.raw(match s.kind {
                StatusKind::Ok => b"OK",
                StatusKind::No => b"NO",
                StatusKind::Bad => b"BAD",
                StatusKind::PreAuth => b"PREAUTH",
                StatusKind::Bye => b"BYE",
            });
            resp_text(&mut w, s.code.as_ref(), &s.text);
        }
        Response::Continue(c) => {
            w.raw(b"+ ");
            match c {
                Continue::Base64(data) => {
                    let enc = base64::engine::general_purpose::STANDARD.encode(data);
                    w.raw(enc.as_bytes());
                }
                Continue::Text { code, text } => {
                    if let Some(code) = code {
                        w.raw(b"[");
                        resp_code(&mut w, code);
                        w.raw(b"]");
                        if !text.as_str().is_empty() {
                            w.sp();
                        }
                    }
                    w.raw(text.as_str().as_bytes());
                }
            }
        }
        Response::Data(d) => data(&mut w, d),
    }
    w.crlf();
    *out = w.out;
}

/// Encodes the greeting, appending to `out`.
pub fn greeting(g: &Greeting, out: &mut Vec<u8>) {
    let opts = EncodeOptions::default();
    let mut w = W::with_buffer(std::mem::take(out), &opts);
    w.raw(match g.kind {
        GreetingKind::Ok => b"* OK",
        GreetingKind::PreAuth => b"* PREAUTH",
        GreetingKind::Bye => b"* BYE",
    });
    resp_text(&mut w, g.code.as_ref(), &g.text);
    w.crlf();
    *out = w.out;
}

fn literal_item(w: &mut W<'_>, item: &FetchLiteralItem) {
    match item {
        FetchLiteralItem::BodySection { section: s, origin } => {
            w.raw(b"BODY");
            section(w, s);
            write_origin(w, *origin);
        }
        FetchLiteralItem::Binary { part, origin } => {
            w.raw(b"BINARY");
            section_binary(w, part);
            write_origin(w, *origin);
        }
        FetchLiteralItem::Rfc822 => w.raw(b"RFC822"),
        FetchLiteralItem::Rfc822Header => w.raw(b"RFC822.HEADER"),
        FetchLiteralItem::Rfc822Text => w.raw(b"RFC822.TEXT"),
    }
}

/// Writes the head of a FETCH response whose last item is a literal of `len` bytes that the
/// caller streams afterwards: `* 5 FETCH (UID 9 BODY[] {N}` CRLF. After the `len` bytes,
/// finish with [`fetch_literal_tail`]. A `Binary` item is announced as `~{N}`.
pub fn fetch_literal_head(
    seq: NonZeroU32,
    items_before: &[FetchAttr],
    item: &FetchLiteralItem,
    len: u64,
    out: &mut Vec<u8>,
) {
    let opts = EncodeOptions::default();
    let mut w = W::with_buffer(std::mem::take(out), &opts);
    w.raw(b"* ");
    w.num(seq.get());
    w.raw(b" FETCH (");
    for it in items_before {
        fetch_attr(&mut w, it);
        w.sp();
    }
    literal_item(&mut w, item);
    w.sp();
    if matches!(item, FetchLiteralItem::Binary { .. }) {
        w.raw(b"~");
    }
    w.raw(b"{");
    w.num(len);
    w.raw(b"}\r\n");
    *out = w.out;
}

/// Ends a FETCH response started with [`fetch_literal_head`]: `)` CRLF.
pub fn fetch_literal_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(b")\r\n");
}

fn write_origin(w: &mut W<'_>, origin: Option<u32>) {
    if let Some(o) = origin {
        w.raw(b"<");
        w.num(o);
        w.raw(b">");
    }
}

fn resp_text(w: &mut W<'_>, code: Option<&Code>, text: &Text) {
    if let Some(code) = code {
        w.raw(b" [");
        resp_code(w, code);
        w.raw(b"]");
    }
    if !text.as_str().is_empty() {
        w.sp();
        w.raw(text.as_str().as_bytes());
    }
}

fn caps(w: &mut W<'_>, caps: &[crate::types::Capability]) {
    for c in caps {
        w.sp();
        w.raw(c.0.as_bytes());
    }
}

fn resp_code(w: &mut W<'_>, code: &Code) {
    match code {
        Code::Alert => w.raw(b"ALERT"),
        Code::BadCharset(v) => {
            w.raw(b"BADCHARSET");
            if !v.is_empty() {
                w.sp();
                w.list(v, |w, c| w.astring(c));
            }
        }
        Code::Capability(c) => {
            w.raw(b"CAPABILITY");
            caps(w, c);
        }
        Code::Parse => w.raw(b"PARSE"),
        Code::PermanentFlags(v) => {
            w.raw(b"PERMANENTFLAGS ");
            w.list(v, |w, f| match f {
                FlagPerm::Flag(f) => w.flag(f),
                FlagPerm::Wildcard => w.raw(b"\\*"),
            });
        }
        Code::ReadOnly => w.raw(b"READ-ONLY"),
        Code::ReadWrite => w.raw(b"READ-WRITE"),
        Code::TryCreate => w.raw(b"TRYCREATE"),
        Code::UidNext(n) => {
            w.raw(b"UIDNEXT ");
            w.num(n.get());
        }
        Code::UidValidity(n) => {
            w.raw(b"UIDVALIDITY ");
            w.num(n.get());
        }
        Code::Unseen(n) => {
            w.raw(b"UNSEEN ");
            w.num(n.get());
        }
        Code::Closed => w.raw(b"CLOSED"),
        Code::AppendUid { uid_validity, uids } => {
            w.raw(b"APPENDUID ");
            w.num(uid_validity.get());
            w.sp();
            w.seq(uids);
        }
        Code::CopyUid {
            uid_validity,
            source,
            target,
        } => {
            w.raw(b"COPYUID ");
            w.num(uid_validity.get());
            w.sp();
            w.seq(source);
            w.sp();
            w.seq(target);
        }
        Code::UidNotSticky => w.raw(b"UIDNOTSTICKY"),
        Code::HighestModSeq(n) => {
            w.raw(b"HIGHESTMODSEQ ");
            w.num(*n);
        }
        Code::NoModSeq => w.raw(b"NOMODSEQ"),
        Code::Modified(s) => {
            w.raw(b"MODIFIED ");
            w.seq(s);
        }
        Code::NotSaved => w.raw(b"NOTSAVED"),
        Code::CompressionActive => w.raw(b"COMPRESSIONACTIVE"),
        Code::TooBig => w.raw(b"TOOBIG"),
        Code::UnknownCte => w.raw(b"UNKNOWN-CTE"),
        Code::HasChildren => w.raw(b"HASCHILDREN"),
        Code::Unavailable => w.raw(b"UNAVAILABLE"),
        Code::AuthenticationFailed => w.raw(b"AUTHENTICATIONFAILED"),
        Code::AuthorizationFailed => w.raw(b"AUTHORIZATIONFAILED"),
        Code::Expired => w.raw(b"EXPIRED"),
        Code::PrivacyRequired => w.raw(b"PRIVACYREQUIRED"),
        Code::ContactAdmin => w.raw(b"CONTACTADMIN"),
        Code::NoPerm => w.raw(b"NOPERM"),
        Code::InUse => w.raw(b"INUSE"),
        Code::ExpungeIssued => w.raw(b"EXPUNGEISSUED"),
        Code::Corruption => w.raw(b"CORRUPTION"),
        Code::ServerBug => w.raw(b"SERVERBUG"),
        Code::ClientBug => w.raw(b"CLIENTBUG"),
        Code::CannotDo => w.raw(b"CANNOT"),
        Code::Limit => w.raw(b"LIMIT"),
        Code::OverQuota => w.raw(b"OVERQUOTA"),
        Code::AlreadyExists => w.raw(b"ALREADYEXISTS"),
        Code::NonExistent => w.raw(b"NONEXISTENT"),
        Code::UseAttr => w.raw(b"USEATTR"),
        Code::Other(atom, text) => {
            w.raw(atom.as_bytes());
            if let Some(t) = text {
                w.sp();
                w.raw(t);
            }
        }
    }
}

fn data(w: &mut W<'_>, d: &Data) {
    w.raw(b"* ");
    match d {
        Data::Capability(c) => {
            w.raw(b"CAPABILITY");
            caps(w, c);
        }
        Data::Enabled(c) => {
            w.raw(b"ENABLED");
            caps(w, c);
        }
        Data::List(l) | Data::Lsub(l) => {
            w.raw(if matches!(d, Data::List(_)) {
                b"LIST "
            } else {
                b"LSUB "
            });
            w.list(&l.attributes, |w, a| w.mailbox_attr(a));
            w.sp();
            w.delimiter(l.delimiter);
            w.sp();
            w.mailbox(&l.mailbox);
            if !l.extended.is_empty() {
                w.sp();
                w.list(&l.extended, |w, item| match item {
                    ListExtItem::ChildInfo(v) => {
                        w.raw(b"\"CHILDINFO\" ");
                        w.list(v, |w, s| w.string(s));
                    }
                    ListExtItem::OldName(m) => {
                        w.raw(b"\"OLDNAME\" (");
                        w.mailbox(m);
                        w.raw(b")");
                    }
                    ListExtItem::Other { name, value } => {
                        w.string(name);
                        w.sp();
                        ext_value(w, value);
                    }
                });
            }
        }
        Data::Namespace {
            personal,
            other,
            shared,
        } => {
            w.raw(b"NAMESPACE ");
            namespace(w, personal);
            w.sp();
            namespace(w, other);
            w.sp();
            namespace(w, shared);
        }
        Data::Status { mailbox, items } => {
            w.raw(b"STATUS ");
            w.mailbox(mailbox);
            w.sp();
            w.list(items, |w, a| {
                w.raw(a.item().name().as_bytes());
                w.sp();
                match *a {
                    StatusAttr::Messages(n)
                    | StatusAttr::Recent(n)
                    | StatusAttr::UidNext(n)
                    | StatusAttr::UidValidity(n)
                    | StatusAttr::Unseen(n)
                    | StatusAttr::Deleted(n) => w.num(n),
                    StatusAttr::Size(n) | StatusAttr::HighestModSeq(n) => w.num(n),
                    StatusAttr::AppendLimit(Some(n)) => w.num(n),
                    StatusAttr::AppendLimit(None) => w.raw(b"NIL"),
                }
            });
        }
        Data::Search { numbers, modseq } => {
            w.raw(b"SEARCH");
            for n in numbers {
                w.sp();
                w.num(n.get());
            }
            if let Some(m) = modseq {
                w.raw(b" (MODSEQ ");
                w.num(*m);
                w.raw(b")");
            }
        }
        Data::ESearch { tag, uid, items } => {
            w.raw(b"ESEARCH");
            if let Some(t) = tag {
                w.raw(b" (TAG ");
                w.quoted(t.as_bytes());
                w.raw(b")");
            }
            if *uid {
                w.raw(b" UID");
            }
            for item in items {
                w.sp();
                match item {
                    ESearchItem::Min(n) => {
                        w.raw(b"MIN ");
                        w.num(n.get());
                    }
                    ESearchItem::Max(n) => {
                        w.raw(b"MAX ");
                        w.num(n.get());
                    }
                    ESearchItem::All(s) => {
                        w.raw(b"ALL ");
                        w.seq(s);
                    }
                    ESearchItem::Count(n) => {
                        w.raw(b"COUNT ");
                        w.num(*n);
                    }
                    ESearchItem::ModSeq(n) => {
                        w.raw(b"MODSEQ ");
                        w.num(*n);
                    }
                }
            }
        }
        Data::Flags(f) => {
            w.raw(b"FLAGS ");
            w.flag_list(f);
        }
        Data::Exists(n) => {
            w.num(*n);
            w.raw(b" EXISTS");
        }
        Data::Recent(n) => {
            w.num(*n);
            w.raw(b" RECENT");
        }
        Data::Expunge(n) => {
            w.num(n.get());
            w.raw(b" EXPUNGE");
        }
        Data::Fetch { seq, items } => {
            w.num(seq.get());
            w.raw(b" FETCH ");
            w.list(items, fetch_attr);
        }
        Data::Vanished { earlier, uids } => {
            w.raw(b"VANISHED ");
            if *earlier {
                w.raw(b"(EARLIER) ");
            }
            w.seq(uids);
        }
        Data::Id(params) => {
            w.raw(b"ID ");
            match params {
                None => w.raw(b"NIL"),
                Some(p) => w.list(p, |w, (k, v)| {
                    w.string(k);
                    w.sp();
                    w.nstring(v);
                }),
            }
        }
        Data::Quota { root, resources } => {
            w.raw(b"QUOTA ");
            w.astring(root);
            w.sp();
            w.list(resources, |w, r| {
                w.raw(r.name.as_bytes());
                w.sp();
                w.num(r.usage);
                w.sp();
                w.num(r.limit);
            });
        }
        Data::QuotaRoot { mailbox, roots } => {
            w.raw(b"QUOTAROOT ");
            w.mailbox(mailbox);
            for r in roots {
                w.sp();
                w.astring(r);
            }
        }
    }
}

fn ext_value(w: &mut W<'_>, v: &ExtValue) {
    match v {
        ExtValue::Token(t) => w.raw(t),
        ExtValue::String(s) => w.string(s),
        ExtValue::List(l) => w.list(l, ext_value),
    }
}

fn namespace(w: &mut W<'_>, descs: &[NamespaceDesc]) {
    if descs.is_empty() {
        w.raw(b"NIL");
        return;
    }
    w.raw(b"(");
    for d in descs {
        w.raw(b"(");
        w.string(&d.prefix);
        w.sp();
        w.delimiter(d.delimiter);
        for (name, values) in &d.extensions {
            w.sp();
            w.string(name);
            w.sp();
            w.list(values, |w, v| w.string(v));
        }
        w.raw(b")");
    }
    w.raw(b")");
}

pub(crate) fn fetch_attr(w: &mut W<'_>, a: &FetchAttr) {
    match a {
        FetchAttr::Flags(f) => {
            w.raw(b"FLAGS ");
            w.flag_list(f);
        }
        FetchAttr::InternalDate(d) => {
            w.raw(b"INTERNALDATE ");
            w.date_time(d);
        }
        FetchAttr::Rfc822Size(n) => {
            w.raw(b"RFC822.SIZE ");
            w.num(*n);
        }
        FetchAttr::Rfc822(d) => {
            w.raw(b"RFC822 ");
            w.nstring(d);
        }
        FetchAttr::Rfc822Header(d) => {
            w.raw(b"RFC822.HEADER ");
            w.nstring(d);
        }
        FetchAttr::Rfc822Text(d) => {
            w.raw(b"RFC822.TEXT ");
            w.nstring(d);
        }
        FetchAttr::Envelope(e) => {
            w.raw(b"ENVELOPE ");
            envelope(w, e);
        }
        FetchAttr::Body(b) => {
            w.raw(b"BODY ");
            body(w, b);
        }
        FetchAttr::BodyStructure(b) => {
            w.raw(b"BODYSTRUCTURE ");
            body(w, b);
        }
        FetchAttr::BodySection {
            section: s,
            origin,
            data,
        } => {
            w.raw(b"BODY");
            section(w, s);
            write_origin(w, *origin);
            w.sp();
            w.nstring(data);
        }
        FetchAttr::Binary { part, origin, data } => {
            w.raw(b"BINARY");
            section_binary(w, part);
            write_origin(w, *origin);
            w.sp();
            match data {
                Some(d) => w.string8(d),
                None => w.raw(b"NIL"),
            }
        }
        FetchAttr::BinarySize { part, size } => {
            w.raw(b"BINARY.SIZE");
            section_binary(w, part);
            w.sp();
            w.num(*size);
        }
        FetchAttr::Uid(n) => {
            w.raw(b"UID ");
            w.num(n.get());
        }
        FetchAttr::ModSeq(n) => {
            w.raw(b"MODSEQ (");
            w.num(*n);
            w.raw(b")");
        }
    }
}

fn addresses(w: &mut W<'_>, addrs: &[Address]) {
    if addrs.is_empty() {
        w.raw(b"NIL");
        return;
    }
    w.raw(b"(");
    for a in addrs {
        w.raw(b"(");
        w.nstring(&a.name);
        w.sp();
        w.nstring(&a.adl);
        w.sp();
        w.nstring(&a.mailbox);
        w.sp();
        w.nstring(&a.host);
        w.raw(b")");
    }
    w.raw(b")");
}

pub(crate) fn envelope(w: &mut W<'_>, e: &crate::types::Envelope) {
    w.raw(b"(");
    w.nstring(&e.date);
    w.sp();
    w.nstring(&e.subject);
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        w.sp();
        addresses(w, list);
    }
    w.sp();
    w.nstring(&e.in_reply_to);
    w.sp();
    w.nstring(&e.message_id);
    w.raw(b")");
}

fn params(w: &mut W<'_>, p: &[(Bytes, Bytes)]) {
    if p.is_empty() {
        w.raw(b"NIL");
    } else {
        w.list(p, |w, (k, v)| {
            w.string(k);
            w.sp();
            w.string(v);
        });
    }
}

fn ext_tail(w: &mut W<'_>, d: &Option<ExtDisposition>) {
    let Some(d) = d else { return };
    w.sp();
    match &d.disposition {
        None => w.raw(b"NIL"),
        Some(disp) => {
            w.raw(b"(");
            w.string(&disp.kind);
            w.sp();
            params(w, &disp.params);
            w.raw(b")");
        }
    }
    let Some(lang) = &d.more else { return };
    w.sp();
    match lang.language.as_slice() {
        [] => w.raw(b"NIL"),
        [one] => w.string(one),
        many => w.list(many, |w, s| w.string(s)),
    }
    let Some(loc) = &lang.more else { return };
    w.sp();
    w.nstring(&loc.location);
    for e in &loc.extensions {
        w.sp();
        body_extension(w, e);
    }
}

fn body_extension(w: &mut W<'_>, e: &BodyExtension) {
    match e {
        BodyExtension::NString(s) => w.nstring(s),
        BodyExtension::Number(n) => w.num(*n),
        BodyExtension::List(v) => w.list(v, body_extension),
    }
}

pub(crate) fn body(w: &mut W<'_>, b: &BodyStructure) {
    w.raw(b"(");
    match b {
        BodyStructure::Multi {
            parts,
            subtype,
            ext,
        } => {
            for p in parts {
                body(w, p);
            }
            w.sp();
            w.string(subtype);
            if let Some(ext) = ext {
                w.sp();
                params(w, &ext.params);
                ext_tail(w, &ext.more);
            }
        }
        BodyStructure::Single {
            media_type,
            subtype,
            fields,
            kind,
            ext,
        } => {
            w.string(media_type);
            w.sp();
            w.string(subtype);
            w.sp();
            params(w, &fields.params);
            w.sp();
            w.nstring(&fields.id);
            w.sp();
            w.nstring(&fields.description);
            w.sp();
            w.string(&fields.encoding);
            w.sp();
            w.num(fields.size);
            match kind {
                SinglePartKind::Basic => {}
                SinglePartKind::Text { lines } => {
                    w.sp();
                    w.num(*lines);
                }
                SinglePartKind::Message {
                    envelope: e,
                    body: inner,
                    lines,
                } => {
                    w.sp();
                    envelope(w, e);
                    w.sp();
                    body(w, inner);
                    w.sp();
                    w.num(*lines);
                }
            }
            if let Some(ext) = ext {
                w.sp();
                w.nstring(&ext.md5);
                ext_tail(w, &ext.more);
            }
        }
    }
    w.raw(b")");
}
