//! Response grammar (`response`, `greeting` in RFC 9051 section 9, plus RFC 3501 and
//! extensions).

use std::num::NonZeroU32;

use bytes::Bytes;

use super::command::{id_params, section, section_binary, status_item};
use super::cursor::{Fail, P, R, Upper};
use super::{LiteralHeader, ParseError, ParserOptions};
use crate::types::{
    Address, BodyExtension, BodyFields, BodyStructure, Capability, Code, Continue, Data,
    Disposition, ESearchItem, Envelope, ExtDisposition, ExtLanguage, ExtLocation, ExtValue,
    FetchAttr, FetchLiteralItem, FlagPerm, Greeting, GreetingKind, ListData, ListExtItem,
    MailboxAttr, MultiPartExt, NamespaceDesc, QuotaResource, Response, SinglePartExt,
    SinglePartKind, StatusAttr, StatusItem, StatusKind, StatusResponse, Tag, Text, is_tag_char,
};

pub(crate) fn parse_response(
    src: &Bytes,
    end: usize,
    opts: &ParserOptions,
) -> Result<Response, ParseError> {
    let mut p = P::new(src, end, opts);
    match response(&mut p) {
        Ok(r) => Ok(r),
        Err(f) => Err(p.into_error(f, None)),
    }
}

pub(crate) fn parse_greeting(
    src: &Bytes,
    len: usize,
    opts: &ParserOptions,
) -> Result<Greeting, ParseError> {
    let mut p = P::new(src, len, opts);
    let r = (|| {
        if !p.keyword(b"* ") {
            return p.fail("expected '* '");
        }
        let kind = match status_keyword(&mut p) {
            Some(StatusKind::Ok) => GreetingKind::Ok,
            Some(StatusKind::PreAuth) => GreetingKind::PreAuth,
            Some(StatusKind::Bye) => GreetingKind::Bye,
            _ => return p.fail("expected OK, PREAUTH or BYE"),
        };
        let (code, text) = resp_text(&mut p)?;
        end(&mut p)?;
        Ok(Greeting { kind, code, text })
    })();
    r.map_err(|f| p.into_error(f, None))
}

fn end(p: &mut P<'_>) -> R<()> {
    p.crlf()?;
    if p.pos != p.len() {
        return p.fail("unexpected data after response");
    }
    Ok(())
}

fn response(p: &mut P<'_>) -> R<Response> {
    if p.eat(b'+') {
        let c = continue_req(p)?;
        end(p)?;
        return Ok(Response::Continue(c));
    }
    if p.keyword(b"* ") {
        let r = untagged(p)?;
        end(p)?;
        return Ok(r);
    }
    let rest = p.rest();
    let n = rest.iter().take_while(|b| is_tag_char(**b)).count();
    if n == 0 {
        return p.fail("expected '+', '*' or a tag");
    }
    let start = p.pos;
    p.pos += n;
    let tag = Tag::new(p.bytes(start..start + n)).or(Err(Fail {
        pos: start,
        reason: "invalid tag",
    }))?;
    p.sp()?;
    let kind = match status_keyword(p) {
        Some(k @ (StatusKind::Ok | StatusKind::No | StatusKind::Bad)) => k,
        _ => return p.fail("expected OK, NO or BAD"),
    };
    let (code, text) = resp_text(p)?;
    end(p)?;
    Ok(Response::Status(StatusResponse {
        tag: Some(tag),
        kind,
        code,
        text,
    }))
}

/// `OK`/`NO`/`BAD`/`PREAUTH`/`BYE` followed by SP, CRLF or (quirk) `[`.
fn status_keyword(p: &mut P<'_>) -> Option<StatusKind> {
    const KINDS: [(&[u8], StatusKind); 5] = [
        (b"OK", StatusKind::Ok),
        (b"NO", StatusKind::No),
        (b"BAD", StatusKind::Bad),
        (b"PREAUTH", StatusKind::PreAuth),
        (b"BYE", StatusKind::Bye),
    ];
    let save = p.pos;
    for (kw, kind) in KINDS {
        if p.keyword(kw) {
            match p.peek() {
                Some(b' ' | b'\r') => return Some(kind),
                Some(b'[') if p.opts.quirk_missing_text => return Some(kind),
                _ => p.pos = save,
            }
        }
    }
    None
}

fn continue_req(p: &mut P<'_>) -> R<Continue> {
    if !p.eat(b' ') {
        // "+" CRLF: liberal, seen in the wild.
        return if p.at_crlf() {
            Ok(Continue::Base64(Bytes::new()))
        } else {
            p.fail("expected a space")
        };
    }
    if p.peek() != Some(b'[') {
        let save = p.pos;
        if let Ok(data) = p.base64_to_eol()
            && p.at_crlf()
        {
            return Ok(Continue::Base64(data));
        }
        p.pos = save;
    }
    let (code, text) = resp_text_after_sp(p)?;
    Ok(Continue::Text { code, text })
}

/// After the status keyword: [SP resp-text].
fn resp_text(p: &mut P<'_>) -> R<(Option<Code>, Text)> {
    if p.at_crlf() {
        return Ok((None, Text::default()));
    }
    if p.opts.quirk_missing_text && p.peek() == Some(b'[') {
        return resp_text_after_sp(p);
    }
    p.sp()?;
    resp_text_after_sp(p)
}

/// `resp-text` = ["[" resp-text-code "]" SP] [text]
fn resp_text_after_sp(p: &mut P<'_>) -> R<(Option<Code>, Text)> {
    let mut code = None;
    if p.eat(b'[') {
        code = Some(resp_text_code(p)?);
        p.expect(b']', "expected ']'")?;
        if !p.eat(b' ') {
            return Ok((code, Text::default()));
        }
    }
    Ok((code, text(p)?))
}

fn text(p: &mut P<'_>) -> R<Text> {
    let rest = p.rest();
    let n = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
    let raw = rest.get(..n).unwrap_or(&[]);
    if raw.contains(&0) {
        return p.fail("NUL in text");
    }
    let s = match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    };
    p.pos += n;
    Text::new(s).or_else(|_| p.fail("invalid text"))
}

fn nz(p: &mut P<'_>) -> R<NonZeroU32> {
    p.sp()?;
    p.nz_number()
}

fn capabilities(p: &mut P<'_>) -> R<Vec<Capability>> {
    let mut caps = Vec::new();
    while p.eat(b' ') {
        caps.push(Capability(p.atom()?));
    }
    Ok(caps)
}

fn resp_text_code(p: &mut P<'_>) -> R<Code> {
    let r = p.atom_range()?;
    let w = Upper::new(p.slice(r.clone()));
    Ok(match w.as_slice() {
        b"ALERT" => Code::Alert,
        b"BADCHARSET" => {
            let mut v = Vec::new();
            if p.eat(b' ') {
                if p.peek() == Some(b'(') {
                    v = p.paren_list(|p| p.astring())?;
                } else {
                    // RFC 9051's own example omits the parentheses; accept one charset.
                    v = vec![p.astring()?];
                }
            }
            Code::BadCharset(v)
        }
        b"CAPABILITY" => Code::Capability(capabilities(p)?),
        b"PARSE" => Code::Parse,
        b"PERMANENTFLAGS" => {
            p.sp()?;
            let v = p.paren_list(|p| {
                Ok(match p.flag_any(true)? {
                    Some(f) => FlagPerm::Flag(f),
                    None => FlagPerm::Wildcard,
                })
            })?;
            Code::PermanentFlags(v)
        }
        b"READ-ONLY" => Code::ReadOnly,
        b"READ-WRITE" => Code::ReadWrite,
        b"TRYCREATE" => Code::TryCreate,
        b"UIDNEXT" => Code::UidNext(nz(p)?),
        b"UIDVALIDITY" => Code::UidValidity(nz(p)?),
        b"UNSEEN" => Code::Unseen(nz(p)?),
        b"CLOSED" => Code::Closed,
        b"APPENDUID" => {
            let uid_validity = nz(p)?;
            p.sp()?;
            Code::AppendUid {
                uid_validity,
                uids: p.sequence_set()?,
            }
        }
        b"COPYUID" => {
            let uid_validity = nz(p)?;
            p.sp()?;
            let source = p.sequence_set()?;
            p.sp()?;
            Code::CopyUid {
                uid_validity,
                source,
                target: p.sequence_set()?,
            }
        }
        b"UIDNOTSTICKY" => Code::UidNotSticky,
        b"HIGHESTMODSEQ" => {
            p.sp()?;
            Code::HighestModSeq(p.number64()?)
        }
        b"NOMODSEQ" => Code::NoModSeq,
        b"MODIFIED" => {
            p.sp()?;
            Code::Modified(p.sequence_set()?)
        }
        b"NOTSAVED" => Code::NotSaved,
        b"COMPRESSIONACTIVE" => Code::CompressionActive,
        b"TOOBIG" => Code::TooBig,
        b"UNKNOWN-CTE" => Code::UnknownCte,
        b"HASCHILDREN" => Code::HasChildren,
        b"UNAVAILABLE" => Code::Unavailable,
        b"AUTHENTICATIONFAILED" => Code::AuthenticationFailed,
        b"AUTHORIZATIONFAILED" => Code::AuthorizationFailed,
        b"EXPIRED" => Code::Expired,
        b"PRIVACYREQUIRED" => Code::PrivacyRequired,
        b"CONTACTADMIN" => Code::ContactAdmin,
        b"NOPERM" => Code::NoPerm,
        b"INUSE" => Code::InUse,
        b"EXPUNGEISSUED" => Code::ExpungeIssued,
        b"CORRUPTION" => Code::Corruption,
        b"SERVERBUG" => Code::ServerBug,
        b"CLIENTBUG" => Code::ClientBug,
        b"CANNOT" => Code::CannotDo,
        b"LIMIT" => Code::Limit,
        b"OVERQUOTA" => Code::OverQuota,
        b"ALREADYEXISTS" => Code::AlreadyExists,
        b"NONEXISTENT" => Code::NonExistent,
        b"USEATTR" => Code::UseAttr,
        _ => {
            let atom = crate::types::Atom::new(p.bytes(r)).or(Err(Fail {
                pos: p.pos,
                reason: "expected an atom",
            }))?;
            let mut arg = None;
            if p.eat(b' ') {
                let rest = p.rest();
                let n = rest
                    .iter()
                    .take_while(|b| !matches!(b, b']' | b'\r' | b'\n' | 0))
                    .count();
                if n == 0 {
                    return p.fail("expected response code text");
                }
                let start = p.pos;
                p.pos += n;
                arg = Some(p.bytes(start..start + n));
            }
            Code::Other(atom, arg)
        }
    })
}

fn untagged(p: &mut P<'_>) -> R<Response> {
    if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        let at = p.pos;
        let n = p.number()?;
        p.sp()?;
        let w = p.atom_range()?;
        let w = Upper::new(p.slice(w));
        let nz = || {
            NonZeroU32::new(n).ok_or(Fail {
                pos: at,
                reason: "number must not be 0",
            })
        };
        return Ok(Response::Data(match w.as_slice() {
            b"EXISTS" => Data::Exists(n),
            b"RECENT" => Data::Recent(n),
            b"EXPUNGE" => Data::Expunge(nz()?),
            b"FETCH" => {
                let seq = nz()?;
                p.sp()?;
                Data::Fetch {
                    seq,
                    items: msg_att(p)?,
                }
            }
            _ => return p.fail("expected EXISTS, RECENT, EXPUNGE or FETCH"),
        }));
    }
    if let Some(kind) = status_keyword(p) {
        return status(p, kind);
    }
    let r = p.atom_range()?;
    let w = Upper::new(p.slice(r));
    fn status(p: &mut P<'_>, kind: StatusKind) -> R<Response> {
        let (code, text) = resp_text(p)?;
        Ok(Response::Status(StatusResponse {
            tag: None,
            kind,
            code,
            text,
        }))
    }
    Ok(Response::Data(match w.as_slice() {
        b"OK" => return status(p, StatusKind::Ok),
        b"NO" => return status(p, StatusKind::No),
        b"BAD" => return status(p, StatusKind::Bad),
        b"PREAUTH" => return status(p, StatusKind::PreAuth),
        b"BYE" => return status(p, StatusKind::Bye),
        b"CAPABILITY" => Data::Capability(capabilities(p)?),
        b"ENABLED" => Data::Enabled(capabilities(p)?),
        b"LIST" => {
            p.sp()?;
            Data::List(mailbox_list(p, true)?)
        }
        b"LSUB" => {
            p.sp()?;
            Data::Lsub(mailbox_list(p, false)?)
        }
        b"FLAGS" => {
            p.sp()?;
            Data::Flags(p.flag_list_fetch()?)
        }
        b"STATUS" => {
            p.sp()?;
            let mailbox = p.mailbox()?;
            p.sp()?;
            Data::Status {
                mailbox,
                items: p.paren_list(status_att)?,
            }
        }
        b"SEARCH" => {
            let mut numbers = Vec::new();
            let mut modseq = None;
            while p.eat(b' ') {
                if p.eat(b'(') {
                    if !p.word(b"MODSEQ") {
                        return p.fail("expected MODSEQ");
                    }
                    p.sp()?;
                    modseq = Some(p.number64()?);
                    p.expect(b')', "expected ')'")?;
                    break;
                }
                numbers.push(p.nz_number()?);
            }
            Data::Search { numbers, modseq }
        }
        b"ESEARCH" => esearch(p)?,
        b"NAMESPACE" => {
            p.sp()?;
            let personal = namespace(p)?;
            p.sp()?;
            let other = namespace(p)?;
            p.sp()?;
            let shared = namespace(p)?;
            Data::Namespace {
                personal,
                other,
                shared,
            }
        }
        b"VANISHED" => {
            p.sp()?;
            let earlier = p.keyword(b"(EARLIER)");
            if earlier {
                p.sp()?;
            }
            Data::Vanished {
                earlier,
                uids: p.sequence_set()?,
            }
        }
        b"ID" => {
            p.sp()?;
            Data::Id(id_params(p)?)
        }
        b"QUOTA" => {
            p.sp()?;
            let root = p.astring()?;
            p.sp()?;
            let resources = p.paren_list(|p| {
                let name = p.atom()?;
                p.sp()?;
                let usage = p.number64()?;
                p.sp()?;
                Ok(QuotaResource {
                    name,
                    usage,
                    limit: p.number64()?,
                })
            })?;
            Data::Quota { root, resources }
        }
        b"QUOTAROOT" => {
            p.sp()?;
            let mailbox = p.mailbox()?;
            let mut roots = Vec::new();
            while p.eat(b' ') {
                roots.push(p.astring()?);
            }
            Data::QuotaRoot { mailbox, roots }
        }
        _ => return p.fail("unknown untagged response"),
    }))
}

impl P<'_> {
    /// `"(" [flag-fetch *(SP flag-fetch)] ")"`
    fn flag_list_fetch(&mut self) -> R<Vec<crate::types::Flag>> {
        self.paren_list(|p| p.flag())
    }
}

fn esearch(p: &mut P<'_>) -> R<Data> {
    let mut tag = None;
    let mut uid = false;
    let mut items = Vec::new();
    if p.rest().starts_with(b" (") {
        p.pos += 2;
        if !p.word(b"TAG") {
            return p.fail("expected TAG");
        }
        p.sp()?;
        let at = p.pos;
        let t = p.astring()?;
        tag = Some(Tag::new(t).or(Err(Fail {
            pos: at,
            reason: "invalid tag",
        }))?);
        p.expect(b')', "expected ')'")?;
    }
    while p.eat(b' ') {
        if p.word(b"UID") {
            uid = true;
            continue;
        }
        let item = if p.word(b"MIN") {
            ESearchItem::Min(nz(p)?)
        } else if p.word(b"MAX") {
            ESearchItem::Max(nz(p)?)
        } else if p.word(b"ALL") {
            p.sp()?;
            ESearchItem::All(p.sequence_set()?)
        } else if p.word(b"COUNT") {
            p.sp()?;
            ESearchItem::Count(p.number()?)
        } else if p.word(b"MODSEQ") {
            p.sp()?;
            ESearchItem::ModSeq(p.number64()?)
        } else {
            return p.fail("unknown ESEARCH item");
        };
        items.push(item);
    }
    Ok(Data::ESearch { tag, uid, items })
}

fn status_att(p: &mut P<'_>) -> R<StatusAttr> {
    let item = status_item(p)?;
    p.sp()?;
    Ok(match item {
        StatusItem::Messages => StatusAttr::Messages(p.number()?),
        StatusItem::Recent => StatusAttr::Recent(p.number()?),
        StatusItem::UidNext => StatusAttr::UidNext(p.number()?),
        StatusItem::UidValidity => StatusAttr::UidValidity(p.number()?),
        StatusItem::Unseen => StatusAttr::Unseen(p.number()?),
        StatusItem::Deleted => StatusAttr::Deleted(p.number()?),
        StatusItem::Size => StatusAttr::Size(p.number64()?),
        StatusItem::HighestModSeq => StatusAttr::HighestModSeq(p.number64()?),
        StatusItem::AppendLimit => StatusAttr::AppendLimit(if p.is_nil() {
            None
        } else {
            Some(p.number64()?)
        }),
    })
}

fn delimiter(p: &mut P<'_>) -> R<Option<char>> {
    if p.is_nil() {
        return Ok(None);
    }
    let at = p.pos;
    let s = p.quoted()?;
    let s = std::str::from_utf8(&s).or(Err(Fail {
        pos: at,
        reason: "invalid delimiter",
    }))?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(Some(c)),
        _ => Err(Fail {
            pos: at,
            reason: "delimiter must be one character",
        }),
    }
}

fn mailbox_list(p: &mut P<'_>, extended: bool) -> R<ListData> {
    let attributes = p.paren_list(|p| {
        p.expect(b'\\', "expected a mailbox attribute")?;
        Ok(MailboxAttr::from_atom(p.atom()?))
    })?;
    p.sp()?;
    let delimiter = delimiter(p)?;
    p.sp()?;
    let mailbox = p.mailbox()?;
    let mut ext = Vec::new();
    if extended && p.eat(b' ') {
        ext = p.paren_list(|p| {
            let name = p.astring()?;
            p.sp()?;
            if name.eq_ignore_ascii_case(b"CHILDINFO") {
                let v = p.paren_list(|p| p.astring())?;
                Ok(ListExtItem::ChildInfo(v))
            } else if name.eq_ignore_ascii_case(b"OLDNAME") {
                p.expect(b'(', "expected '('")?;
                let m = p.mailbox()?;
                p.expect(b')', "expected ')'")?;
                Ok(ListExtItem::OldName(m))
            } else {
                Ok(ListExtItem::Other {
                    name,
                    value: ext_value(p)?,
                })
            }
        })?;
    }
    Ok(ListData {
        attributes,
        delimiter,
        mailbox,
        extended: ext,
    })
}

/// `tagged-ext-val`, liberally: tokens, strings and nested lists.
fn ext_value(p: &mut P<'_>) -> R<ExtValue> {
    p.enter()?;
    let r = (|| match p.peek() {
        Some(b'(') => Ok(ExtValue::List(p.paren_list(ext_value)?)),
        Some(b'"' | b'{') => Ok(ExtValue::String(p.string()?)),
        _ => {
            let rest = p.rest();
            let n = rest
                .iter()
                .take_while(|b| crate::types::is_astring_char(**b) || matches!(b, b'*' | b'%'))
                .count();
            if n == 0 {
                return p.fail("expected an extension value");
            }
            let start = p.pos;
            p.pos += n;
            Ok(ExtValue::Token(p.bytes(start..start + n)))
        }
    })();
    p.leave();
    r
}

fn namespace(p: &mut P<'_>) -> R<Vec<NamespaceDesc>> {
    if p.is_nil() {
        return Ok(Vec::new());
    }
    p.expect(b'(', "expected '(' or NIL")?;
    let mut out = Vec::new();
    while p.peek() == Some(b'(') {
        p.pos += 1;
        let prefix = p.string()?;
        p.sp()?;
        let delimiter = delimiter(p)?;
        let mut extensions = Vec::new();
        while p.eat(b' ') {
            let name = p.string()?;
            p.sp()?;
            let v = p.paren_list(|p| p.string())?;
            extensions.push((name, v));
        }
        p.expect(b')', "expected ')'")?;
        out.push(NamespaceDesc {
            prefix,
            delimiter,
            extensions,
        });
    }
    if out.is_empty() {
        return p.fail("empty namespace list");
    }
    p.expect(b')', "expected ')'")?;
    Ok(out)
}

/// `msg-att` = "(" (msg-att-dynamic / msg-att-static) *(SP ...) ")"
fn msg_att(p: &mut P<'_>) -> R<Vec<FetchAttr>> {
    p.expect(b'(', "expected '('")?;
    let mut items = Vec::new();
    loop {
        items.push(msg_att_item(p)?);
        if p.opts.quirk_trailing_space && p.rest().starts_with(b" )") {
            p.pos += 1;
        }
        if p.eat(b')') {
            return Ok(items);
        }
        p.sp()?;
    }
}

/// The part of a literal-valued item before its value; `None` for other items.
fn literal_item_name(p: &mut P<'_>) -> R<Option<FetchLiteralItem>> {
    let save = p.pos;
    if p.keyword(b"BODY[") {
        p.pos -= 1;
        let section = section(p)?;
        let origin = origin(p)?;
        return Ok(Some(FetchLiteralItem::BodySection { section, origin }));
    }
    if p.keyword(b"BINARY[") {
        p.pos -= 1;
        let part = section_binary(p)?;
        let origin = origin(p)?;
        return Ok(Some(FetchLiteralItem::Binary { part, origin }));
    }
    if p.word(b"RFC822.HEADER") {
        return Ok(Some(FetchLiteralItem::Rfc822Header));
    }
    if p.word(b"RFC822.TEXT") {
        return Ok(Some(FetchLiteralItem::Rfc822Text));
    }
    if p.word(b"RFC822") {
        return Ok(Some(FetchLiteralItem::Rfc822));
    }
    p.pos = save;
    Ok(None)
}

fn origin(p: &mut P<'_>) -> R<Option<u32>> {
    if p.eat(b'<') {
        let n = p.number()?;
        p.expect(b'>', "expected '>'")?;
        Ok(Some(n))
    } else {
        Ok(None)
    }
}

fn msg_att_item(p: &mut P<'_>) -> R<FetchAttr> {
    // Only BODY[...], BINARY[...] and RFC822* carry string values.
    let maybe_literal = matches!(p.peek(), Some(b'B' | b'b' | b'R' | b'r'));
    if let Some(item) = if maybe_literal {
        literal_item_name(p)?
    } else {
        None
    } {
        p.sp()?;
        let data = if matches!(item, FetchLiteralItem::Binary { .. }) {
            if p.is_nil() {
                None
            } else if p.peek() == Some(b'"') {
                Some(p.quoted()?)
            } else {
                Some(p.literal_any(true)?.0)
            }
        } else {
            p.nstring()?
        };
        return Ok(item.with_data(data));
    }
    let r = p.atom_range()?;
    let w = Upper::new(p.slice(r.clone()));
    Ok(match w.as_slice() {
        b"FLAGS" => {
            p.sp()?;
            FetchAttr::Flags(p.flag_list_fetch()?)
        }
        b"INTERNALDATE" => {
            p.sp()?;
            FetchAttr::InternalDate(p.date_time()?)
        }
        b"RFC822.SIZE" => {
            p.sp()?;
            FetchAttr::Rfc822Size(p.number64()?)
        }
        b"ENVELOPE" => {
            p.sp()?;
            FetchAttr::Envelope(Box::new(envelope(p)?))
        }
        b"BODY" => {
            p.sp()?;
            FetchAttr::Body(Box::new(body(p, false)?))
        }
        b"BODYSTRUCTURE" => {
            p.sp()?;
            FetchAttr::BodyStructure(Box::new(body(p, true)?))
        }
        b"UID" => {
            p.sp()?;
            FetchAttr::Uid(p.nz_number()?)
        }
        b"MODSEQ" => {
            p.sp()?;
            p.expect(b'(', "expected '('")?;
            let n = p.number64()?;
            p.expect(b')', "expected ')'")?;
            FetchAttr::ModSeq(n)
        }
        b"BINARY.SIZE" => {
            // `[` is an atom char, so the atom may have swallowed the section start.
            p.pos = r.start + "BINARY.SIZE".len();
            let part = section_binary(p)?;
            p.sp()?;
            FetchAttr::BinarySize {
                part,
                size: p.number64()?,
            }
        }
        _ if w.as_slice().starts_with(b"BINARY.SIZE[") => {
            p.pos = r.start + "BINARY.SIZE".len();
            let part = section_binary(p)?;
            p.sp()?;
            FetchAttr::BinarySize {
                part,
                size: p.number64()?,
            }
        }
        _ => {
            return Err(Fail {
                pos: r.start,
                reason: "unknown FETCH data item",
            });
        }
    })
}

fn addresses(p: &mut P<'_>) -> R<Vec<Address>> {
    if p.is_nil() {
        return Ok(Vec::new());
    }
    p.expect(b'(', "expected '(' or NIL")?;
    let mut v = Vec::new();
    loop {
        p.expect(b'(', "expected an address")?;
        let name = p.nstring()?;
        p.sp()?;
        let adl = p.nstring()?;
        p.sp()?;
        let mailbox = p.nstring()?;
        p.sp()?;
        let host = p.nstring()?;
        p.expect(b')', "expected ')'")?;
        v.push(Address {
            name,
            adl,
            mailbox,
            host,
        });
        if p.eat(b')') {
            return Ok(v);
        }
        if p.opts.quirk_list_separators {
            p.eat(b' ');
        }
    }
}

pub(crate) fn envelope(p: &mut P<'_>) -> R<Envelope> {
    p.expect(b'(', "expected '('")?;
    let date = p.nstring()?;
    p.sp()?;
    let subject = p.nstring()?;
    p.sp()?;
    let from = addresses(p)?;
    p.sp()?;
    let sender = addresses(p)?;
    p.sp()?;
    let reply_to = addresses(p)?;
    p.sp()?;
    let to = addresses(p)?;
    p.sp()?;
    let cc = addresses(p)?;
    p.sp()?;
    let bcc = addresses(p)?;
    p.sp()?;
    let in_reply_to = p.nstring()?;
    p.sp()?;
    let message_id = p.nstring()?;
    p.expect(b')', "expected ')'")?;
    Ok(Envelope {
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
    })
}

/// A body-structure string.
fn body_string(p: &mut P<'_>) -> R<Bytes> {
    p.string()
}

fn param_string(p: &mut P<'_>) -> R<Bytes> {
    if p.opts.quirk_body_param_nil && p.is_nil() {
        return Ok(Bytes::new());
    }
    body_string(p)
}

/// `body-fld-param` = "(" string SP string *(SP string SP string) ")" / nil
fn body_params(p: &mut P<'_>) -> R<Vec<(Bytes, Bytes)>> {
    if p.is_nil() {
        return Ok(Vec::new());
    }
    let v = p.paren_list(|p| {
        let k = param_string(p)?;
        p.sp()?;
        Ok((k, param_string(p)?))
    })?;
    if v.is_empty() {
        return p.fail("empty body parameter list");
    }
    Ok(v)
}

fn body(p: &mut P<'_>, ext_ok: bool) -> R<BodyStructure> {
    p.enter()?;
    let b = body_inner(p, ext_ok);
    p.leave();
    b
}

fn body_inner(p: &mut P<'_>, ext_ok: bool) -> R<BodyStructure> {
    p.expect(b'(', "expected '('")?;
    if p.peek() == Some(b'(') {
        let mut parts = Vec::new();
        while p.peek() == Some(b'(') {
            parts.push(body(p, ext_ok)?);
            if p.opts.quirk_list_separators && p.rest().starts_with(b" (") {
                p.pos += 1;
            }
        }
        p.sp()?;
        let subtype = body_string(p)?;
        let mut ext = None;
        if p.eat(b' ') {
            let params = body_params(p)?;
            ext = Some(MultiPartExt {
                params,
                more: ext_dsp(p)?,
            });
        }
        p.expect(b')', "expected ')'")?;
        return Ok(BodyStructure::Multi {
            parts,
            subtype,
            ext,
        });
    }
    let media_type = body_string(p)?;
    p.sp()?;
    let subtype = body_string(p)?;
    p.sp()?;
    let params = body_params(p)?;
    p.sp()?;
    let id = p.nstring()?;
    p.sp()?;
    let description = p.nstring()?;
    p.sp()?;
    let encoding = body_string(p)?;
    p.sp()?;
    let size = p.number()?;
    let fields = BodyFields {
        params,
        id,
        description,
        encoding,
        size,
    };
    let kind = if media_type.eq_ignore_ascii_case(b"TEXT") {
        p.sp()?;
        SinglePartKind::Text { lines: p.number()? }
    } else if media_type.eq_ignore_ascii_case(b"MESSAGE")
        && (subtype.eq_ignore_ascii_case(b"RFC822") || subtype.eq_ignore_ascii_case(b"GLOBAL"))
    {
        p.sp()?;
        let envelope = Box::new(envelope(p)?);
        p.sp()?;
        let body = Box::new(body(p, ext_ok)?);
        p.sp()?;
        SinglePartKind::Message {
            envelope,
            body,
            lines: p.number()?,
        }
    } else {
        SinglePartKind::Basic
    };
    let mut ext = None;
    if p.eat(b' ') {
        let md5 = p.nstring()?;
        ext = Some(SinglePartExt {
            md5,
            more: ext_dsp(p)?,
        });
    }
    p.expect(b')', "expected ')'")?;
    Ok(BodyStructure::Single {
        media_type,
        subtype,
        fields,
        kind,
        ext,
    })
}

fn ext_dsp(p: &mut P<'_>) -> R<Option<ExtDisposition>> {
    if !p.eat(b' ') {
        return Ok(None);
    }
    let disposition = if p.is_nil() {
        None
    } else {
        p.expect(b'(', "expected '(' or NIL")?;
        let kind = body_string(p)?;
        p.sp()?;
        let params = body_params(p)?;
        p.expect(b')', "expected ')'")?;
        Some(Disposition { kind, params })
    };
    let more = if p.eat(b' ') {
        let language = if p.peek() == Some(b'(') {
            let v = p.paren_list(|p| p.string())?;
            if v.is_empty() {
                return p.fail("empty language list");
            }
            v
        } else {
            p.nstring()?.into_iter().collect()
        };
        let more = if p.eat(b' ') {
            let location = p.nstring()?;
            let mut extensions = Vec::new();
            while p.eat(b' ') {
                extensions.push(body_extension(p)?);
            }
            Some(ExtLocation {
                location,
                extensions,
            })
        } else {
            None
        };
        Some(ExtLanguage { language, more })
    } else {
        None
    };
    Ok(Some(ExtDisposition { disposition, more }))
}

fn body_extension(p: &mut P<'_>) -> R<BodyExtension> {
    p.enter()?;
    let r = (|| {
        if p.peek() == Some(b'(') {
            let v = p.paren_list(body_extension)?;
            if v.is_empty() {
                return p.fail("empty body extension list");
            }
            Ok(BodyExtension::List(v))
        } else if p.peek().is_some_and(|b| b.is_ascii_digit()) {
            Ok(BodyExtension::Number(p.number()?))
        } else {
            Ok(BodyExtension::NString(p.nstring()?))
        }
    })();
    p.leave();
    r
}

/// The start of a FETCH response up to a literal-valued item whose data is not (all) there:
/// lets a client stream a big body instead of buffering it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FetchLiteralPrefix {
    /// Message sequence number.
    pub seq: NonZeroU32,
    /// Items that came before the literal.
    pub items: Vec<FetchAttr>,
    /// The item the literal belongs to.
    pub item: FetchLiteralItem,
    /// The literal.
    pub literal: LiteralHeader,
    /// Bytes up to and including the CRLF after `{n}`: the literal data starts here.
    pub consumed: usize,
}

pub(crate) fn fetch_literal_prefix(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<FetchLiteralPrefix, ParseError> {
    // Frame up to the literal whose data is not all there; earlier literals are complete.
    let not_found = || ParseError::Failed {
        position: 0,
        reason: "not a FETCH response ending in an unread literal",
        tag: None,
        consumed: None,
    };
    let (literal, end) = match super::frame(input, opts) {
        Err(ParseError::Literal { header, offset, .. }) => (header, offset),
        Ok(_) => return Err(not_found()),
        Err(e) => return Err(e),
    };
    let buf = Bytes::copy_from_slice(input.get(..end).unwrap_or(&[]));
    let mut p = P::new(&buf, buf.len(), opts);
    let r = (|| {
        if !p.keyword(b"* ") {
            return p.fail("expected '* '");
        }
        let seq = p.nz_number()?;
        p.sp()?;
        if !p.word(b"FETCH") {
            return p.fail("expected FETCH");
        }
        p.sp()?;
        p.expect(b'(', "expected '('")?;
        let mut items = Vec::new();
        loop {
            if let Some(item) = literal_item_name(&mut p)? {
                p.sp()?;
                let rest = p.rest();
                let is_last = rest.strip_suffix(b"\r\n").is_some_and(|ann| {
                    !ann.contains(&b'\n') && super::literal_announcement(ann).is_some()
                });
                if is_last && matches!(p.peek(), Some(b'~' | b'{')) {
                    return Ok(FetchLiteralPrefix {
                        seq,
                        items,
                        item,
                        literal,
                        consumed: end,
                    });
                }
                let data =
                    if matches!(item, FetchLiteralItem::Binary { .. }) && p.peek() == Some(b'~') {
                        Some(p.literal_any(true)?.0)
                    } else {
                        p.nstring()?
                    };
                items.push(item.with_data(data));
                p.sp()?;
                continue;
            } else {
                items.push(msg_att_item(&mut p)?);
            }
            p.sp()?;
        }
    })();
    r.map_err(|f| p.into_error(f, None))
}
