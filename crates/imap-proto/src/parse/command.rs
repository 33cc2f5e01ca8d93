//! Command grammar (`command` in RFC 9051 section 9, plus RFC 3501 and extensions).

use bytes::Bytes;

use super::cursor::{Fail, P, R, Upper};
use super::{AppendPrefix, ParseError, ParserOptions};
use crate::types::{
    AppendMessage, Capability, Command, CommandBody, FetchItem, FetchItems, FetchModifiers,
    ListReturnOption, ListSelectOption, MailboxAttr, QResyncParams, SearchKey, SearchReturnOption,
    Section, SectionText, SelectParams, StatusItem, StoreKind, Tag, is_atom_char, is_tag_char,
};

fn tag(p: &mut P<'_>) -> R<Tag> {
    let rest = p.rest();
    let n = rest.iter().take_while(|b| is_tag_char(**b)).count();
    if n == 0 {
        return p.fail("expected a tag");
    }
    let start = p.pos;
    p.pos += n;
    if p.peek() != Some(b' ') && !p.at_crlf() {
        return p.fail("forbidden character in tag");
    }
    Tag::new(p.bytes(start..start + n)).or(Err(Fail {
        pos: start,
        reason: "invalid tag",
    }))
}

pub(crate) fn parse_command(
    src: &Bytes,
    end: usize,
    opts: &ParserOptions,
) -> Result<Command, ParseError> {
    let mut p = P::new(src, end, opts);
    let t = match tag(&mut p) {
        Ok(t) => t,
        Err(f) => return Err(p.into_error(f, None)),
    };
    match command_rest(&mut p) {
        Ok(body) => Ok(Command { tag: t, body }),
        Err(f) => Err(p.into_error(f, Some(t))),
    }
}

fn command_rest(p: &mut P<'_>) -> R<CommandBody> {
    if p.at_crlf() {
        return p.fail("missing command name");
    }
    p.sp()?;
    let name = p.atom_range()?;
    let name = Upper::new(p.slice(name));
    let body = match name.as_slice() {
        b"UID" => {
            p.sp()?;
            let sub = p.atom_range()?;
            let sub = Upper::new(p.slice(sub));
            match sub.as_slice() {
                b"FETCH" => fetch(p, true)?,
                b"STORE" => store(p, true)?,
                b"SEARCH" => search(p, true)?,
                b"COPY" => copy_move(p, true, false)?,
                b"MOVE" => copy_move(p, true, true)?,
                b"EXPUNGE" => {
                    p.sp()?;
                    CommandBody::UidExpunge(p.sequence_set()?)
                }
                _ => return p.fail("unknown UID command"),
            }
        }
        b"CAPABILITY" => CommandBody::Capability,
        b"NOOP" => CommandBody::Noop,
        b"LOGOUT" => CommandBody::Logout,
        b"STARTTLS" => CommandBody::StartTls,
        b"NAMESPACE" => CommandBody::Namespace,
        b"IDLE" => CommandBody::Idle,
        b"CHECK" => CommandBody::Check,
        b"CLOSE" => CommandBody::Close,
        b"UNSELECT" => CommandBody::Unselect,
        b"EXPUNGE" => CommandBody::Expunge,
        b"AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.atom()?;
            let initial_response = if p.eat(b' ') {
                if p.eat(b'=') {
                    Some(Bytes::new())
                } else {
                    Some(p.base64_to_eol()?)
                }
            } else {
                None
            };
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            }
        }
        b"LOGIN" => {
            p.sp()?;
            let username = p.astring()?;
            p.sp()?;
            let password = p.astring()?;
            CommandBody::Login { username, password }
        }
        b"ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(Capability(p.atom()?));
            }
            if caps.is_empty() {
                return p.fail("ENABLE needs at least one capability");
            }
            CommandBody::Enable(caps)
        }
        b"SELECT" | b"EXAMINE" => {
            p.sp()?;
            let mailbox = p.mailbox()?;
            let params = select_params(p)?;
            if name.as_slice() == b"SELECT" {
                CommandBody::Select { mailbox, params }
            } else {
                CommandBody::Examine { mailbox, params }
            }
        }
        b"CREATE" => {
            p.sp()?;
            let mailbox = p.mailbox()?;
            let mut special_use = Vec::new();
            if p.eat(b' ') {
                p.expect(b'(', "expected '('")?;
                if !p.word(b"USE") {
                    return p.fail("expected USE");
                }
                p.sp()?;
                special_use = p.paren_list(|p| {
                    p.expect(b'\\', "expected a special-use attribute")?;
                    Ok(MailboxAttr::from_atom(p.atom()?))
                })?;
                p.expect(b')', "expected ')'")?;
            }
            CommandBody::Create {
                mailbox,
                special_use,
            }
        }
        b"DELETE" => {
            p.sp()?;
            CommandBody::Delete(p.mailbox()?)
        }
        b"SUBSCRIBE" => {
            p.sp()?;
            CommandBody::Subscribe(p.mailbox()?)
        }
        b"UNSUBSCRIBE" => {
            p.sp()?;
            CommandBody::Unsubscribe(p.mailbox()?)
        }
        b"RENAME" => {
            p.sp()?;
            let from = p.mailbox()?;
            p.sp()?;
            let to = p.mailbox()?;
            CommandBody::Rename { from, to }
        }
        b"LIST" => list(p)?,
        b"LSUB" => {
            p.sp()?;
            let reference = p.mailbox()?;
            p.sp()?;
            let pattern = p.list_mailbox()?;
            CommandBody::Lsub { reference, pattern }
        }
        b"STATUS" => {
            p.sp()?;
            let mailbox = p.mailbox()?;
            p.sp()?;
            let items = p.paren_list(status_item)?;
            if items.is_empty() {
                return p.fail("STATUS needs at least one item");
            }
            CommandBody::Status { mailbox, items }
        }
        b"APPEND" => {
            let (mailbox, flags, date) = append_head(p)?;
            let utf8 = p.keyword(b"UTF8 (");
            if utf8 && p.peek() != Some(b'~') {
                return p.fail("UTF8 (...) needs a binary literal ~{n}");
            }
            let (data, binary) = p.literal_any(true)?;
            if utf8 {
                p.expect(b')', "expected ')' after the UTF8 literal")?;
            }
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
        }
        b"GETQUOTA" => {
            p.sp()?;
            CommandBody::GetQuota(p.astring()?)
        }
        b"GETQUOTAROOT" => {
            p.sp()?;
            CommandBody::GetQuotaRoot(p.mailbox()?)
        }
        b"SETQUOTA" => {
            p.sp()?;
            let root = p.astring()?;
            p.sp()?;
            let limits = p.paren_list(|p| {
                let name = p.atom()?;
                p.sp()?;
                Ok((name, p.number64()?))
            })?;
            CommandBody::SetQuota { root, limits }
        }
        b"COMPRESS" => {
            p.sp()?;
            CommandBody::Compress(p.atom()?)
        }
        b"ID" => {
            p.sp()?;
            CommandBody::Id(id_params(p)?)
        }
        b"SEARCH" => search(p, false)?,
        b"FETCH" => fetch(p, false)?,
        b"STORE" => store(p, false)?,
        b"COPY" => copy_move(p, false, false)?,
        b"MOVE" => copy_move(p, false, true)?,
        _ => return p.fail("unknown command"),
    };
    p.crlf()?;
    if p.pos != p.len() {
        return p.fail("unexpected data after command");
    }
    Ok(body)
}

/// `id-params-list` = "(" *(string SP nstring) ")" / nil
pub(crate) type IdParams = Option<Vec<(Bytes, Option<Bytes>)>>;

pub(crate) fn id_params(p: &mut P<'_>) -> R<IdParams> {
    if p.is_nil() {
        return Ok(None);
    }
    p.paren_list(|p| {
        let k = p.string()?;
        p.sp()?;
        Ok((k, p.nstring()?))
    })
    .map(Some)
}

type AppendHead = (
    crate::types::Mailbox,
    Vec<crate::types::Flag>,
    Option<crate::types::DateTime>,
);

fn append_head(p: &mut P<'_>) -> R<AppendHead> {
    p.sp()?;
    let mailbox = p.mailbox()?;
    p.sp()?;
    let mut flags = Vec::new();
    let mut date = None;
    if p.peek() == Some(b'(') {
        flags = p.flag_list()?;
        p.sp()?;
    }
    if p.peek() == Some(b'"') {
        date = Some(p.date_time()?);
        p.sp()?;
    }
    Ok((mailbox, flags, date))
}

pub(crate) fn append_prefix(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<AppendPrefix, ParseError> {
    // Frame the message up to its last literal announcement; earlier literals must be there.
    let end = match super::frame(input, opts) {
        Err(ParseError::Literal { offset, .. }) => offset,
        Ok(_) => {
            return Err(ParseError::Failed {
                position: 0,
                reason: "APPEND message literal not found",
                tag: super::first_tag(input),
                consumed: None,
            });
        }
        Err(e) => return Err(e),
    };
    let buf = Bytes::copy_from_slice(input.get(..end).unwrap_or(&[]));
    let mut p = P::new(&buf, buf.len(), opts);
    let t = tag(&mut p).map_err(|f| ParseError::Failed {
        position: f.pos,
        reason: f.reason,
        tag: None,
        consumed: None,
    })?;
    let r = (|| {
        p.sp()?;
        if !p.word(b"APPEND") {
            return p.fail("not an APPEND command");
        }
        let (mailbox, flags, date) = append_head(&mut p)?;
        let utf8 = p.keyword(b"UTF8 (");
        let binary = p.eat(b'~');
        if utf8 && !binary {
            return p.fail("UTF8 (...) needs a binary literal ~{n}");
        }
        p.expect(b'{', "expected the message literal")?;
        let len = p.number64()?;
        let sync = !p.eat(b'+');
        p.expect(b'}', "expected '}'")?;
        p.crlf()?;
        if p.pos != end {
            return p.fail("unexpected data after the literal announcement");
        }
        Ok(AppendPrefix {
            tag: t.clone(),
            mailbox,
            flags,
            date,
            literal: super::LiteralHeader { len, sync, binary },
            utf8,
            consumed: end,
        })
    })();
    r.map_err(|f| ParseError::Failed {
        position: f.pos,
        reason: f.reason,
        tag: Some(t.clone()),
        consumed: None,
    })
}

fn select_params(p: &mut P<'_>) -> R<SelectParams> {
    let mut params = SelectParams::default();
    if !p.eat(b' ') {
        return Ok(params);
    }
    p.expect(b'(', "expected '('")?;
    loop {
        if p.word(b"CONDSTORE") {
            params.condstore = true;
        } else if p.word(b"QRESYNC") {
            p.sp()?;
            p.expect(b'(', "expected '('")?;
            let uid_validity = p.nz_number()?;
            p.sp()?;
            let modseq = p.number64()?;
            let mut known_uids = None;
            let mut seq_match = None;
            if p.eat(b' ') {
                if p.peek() != Some(b'(') {
                    known_uids = Some(p.sequence_set()?);
                    if p.eat(b' ') {
                        seq_match = Some(seq_match_data(p)?);
                    }
                } else {
                    seq_match = Some(seq_match_data(p)?);
                }
            }
            p.expect(b')', "expected ')'")?;
            params.qresync = Some(QResyncParams {
                uid_validity,
                modseq,
                known_uids,
                seq_match,
            });
        } else {
            return p.fail("unknown SELECT parameter");
        }
        if p.eat(b')') {
            return Ok(params);
        }
        p.sp()?;
    }
}

fn seq_match_data(p: &mut P<'_>) -> R<(crate::types::SequenceSet, crate::types::SequenceSet)> {
    p.expect(b'(', "expected '('")?;
    let a = p.sequence_set()?;
    p.sp()?;
    let b = p.sequence_set()?;
    p.expect(b')', "expected ')'")?;
    Ok((a, b))
}

fn list(p: &mut P<'_>) -> R<CommandBody> {
    p.sp()?;
    let mut selection = Vec::new();
    if p.peek() == Some(b'(') {
        selection = p.paren_list(|p| {
            Ok(if p.word(b"SUBSCRIBED") {
                ListSelectOption::Subscribed
            } else if p.word(b"REMOTE") {
                ListSelectOption::Remote
            } else if p.word(b"RECURSIVEMATCH") {
                ListSelectOption::RecursiveMatch
            } else if p.word(b"SPECIAL-USE") {
                ListSelectOption::SpecialUse
            } else {
                return p.fail("unknown LIST selection option");
            })
        })?;
        p.sp()?;
    }
    let reference = p.mailbox()?;
    p.sp()?;
    let patterns = if p.peek() == Some(b'(') {
        let v = p.paren_list(|p| p.list_mailbox())?;
        if v.is_empty() {
            return p.fail("expected at least one pattern");
        }
        v
    } else {
        vec![p.list_mailbox()?]
    };
    let mut return_options = Vec::new();
    if p.eat(b' ') {
        if !p.word(b"RETURN") {
            return p.fail("expected RETURN");
        }
        p.sp()?;
        return_options = p.paren_list(|p| {
            Ok(if p.word(b"SUBSCRIBED") {
                ListReturnOption::Subscribed
            } else if p.word(b"CHILDREN") {
                ListReturnOption::Children
            } else if p.word(b"SPECIAL-USE") {
                ListReturnOption::SpecialUse
            } else if p.word(b"STATUS") {
                p.sp()?;
                ListReturnOption::Status(p.paren_list(status_item)?)
            } else {
                return p.fail("unknown LIST return option");
            })
        })?;
    }
    Ok(CommandBody::List {
        selection,
        reference,
        patterns,
        return_options,
    })
}

pub(crate) fn status_item(p: &mut P<'_>) -> R<StatusItem> {
    let r = p.atom_range()?;
    let w = p.slice(r);
    for item in StatusItem::ALL {
        if w.eq_ignore_ascii_case(item.name().as_bytes()) {
            return Ok(item);
        }
    }
    p.fail("unknown STATUS item")
}

fn copy_move(p: &mut P<'_>, uid: bool, is_move: bool) -> R<CommandBody> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    let mailbox = p.mailbox()?;
    Ok(if is_move {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

fn store(p: &mut P<'_>, uid: bool) -> R<CommandBody> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    let mut unchanged_since = None;
    if p.eat(b'(') {
        if !p.word(b"UNCHANGEDSINCE") {
            return p.fail("expected UNCHANGEDSINCE");
        }
        p.sp()?;
        unchanged_since = Some(p.number64()?);
        p.expect(b')', "expected ')'")?;
        p.sp()?;
    }
    let kind = if p.eat(b'+') {
        StoreKind::Add
    } else if p.eat(b'-') {
        StoreKind::Remove
    } else {
        StoreKind::Replace
    };
    if !p.keyword(b"FLAGS") {
        return p.fail("expected FLAGS");
    }
    let silent = p.keyword(b".SILENT");
    p.sp()?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut v = vec![p.flag()?];
        while p.eat(b' ') {
            v.push(p.flag()?);
        }
        v
    };
    Ok(CommandBody::Store {
        uid,
        set,
        kind,
        silent,
        flags,
        unchanged_since,
    })
}

fn fetch(p: &mut P<'_>, uid: bool) -> R<CommandBody> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    let items = if p.word(b"ALL") {
        FetchItems::All
    } else if p.word(b"FAST") {
        FetchItems::Fast
    } else if p.word(b"FULL") {
        FetchItems::Full
    } else if p.peek() == Some(b'(') {
        let v = p.paren_list(fetch_att)?;
        if v.is_empty() {
            return p.fail("expected at least one FETCH item");
        }
        FetchItems::Items(v)
    } else {
        FetchItems::Items(vec![fetch_att(p)?])
    };
    let mut modifiers = FetchModifiers::default();
    if p.eat(b' ') {
        let list = p.paren_list(|p| {
            if p.word(b"CHANGEDSINCE") {
                p.sp()?;
                Ok((Some(p.number64()?), false))
            } else if p.word(b"VANISHED") {
                Ok((None, true))
            } else {
                p.fail("unknown FETCH modifier")
            }
        })?;
        for (c, v) in list {
            if c.is_some() {
                modifiers.changed_since = c;
            }
            modifiers.vanished |= v;
        }
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        items,
        modifiers,
    })
}

/// `section` = "[" [section-spec] "]"
pub(crate) fn section(p: &mut P<'_>) -> R<Section> {
    p.expect(b'[', "expected '['")?;
    let part = p.section_part()?;
    let mut text = None;
    if p.peek() != Some(b']') {
        if !part.is_empty() {
            p.expect(b'.', "expected '.'")?;
        }
        text = Some(if p.keyword(b"HEADER.FIELDS.NOT") {
            p.sp()?;
            SectionText::HeaderFieldsNot(header_list(p)?)
        } else if p.keyword(b"HEADER.FIELDS") {
            p.sp()?;
            SectionText::HeaderFields(header_list(p)?)
        } else if p.keyword(b"HEADER") {
            SectionText::Header
        } else if p.keyword(b"TEXT") {
            SectionText::Text
        } else if !part.is_empty() && p.keyword(b"MIME") {
            SectionText::Mime
        } else {
            return p.fail("invalid section");
        });
    }
    p.expect(b']', "expected ']'")?;
    Ok(Section { part, text })
}

fn header_list(p: &mut P<'_>) -> R<Vec<Bytes>> {
    let v = p.paren_list(|p| p.astring())?;
    if v.is_empty() {
        return p.fail("expected at least one header field name");
    }
    Ok(v)
}

/// `section-binary` = "[" [section-part] "]"
pub(crate) fn section_binary(p: &mut P<'_>) -> R<Vec<std::num::NonZeroU32>> {
    p.expect(b'[', "expected '['")?;
    let part = p.section_part()?;
    p.expect(b']', "expected ']'")?;
    Ok(part)
}

fn partial(p: &mut P<'_>) -> R<Option<(u32, std::num::NonZeroU32)>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let origin = p.number()?;
    p.expect(b'.', "expected '.' in partial")?;
    let count = p.nz_number()?;
    p.expect(b'>', "expected '>'")?;
    Ok(Some((origin, count)))
}

fn fetch_att(p: &mut P<'_>) -> R<FetchItem> {
    // The item name runs up to a section's '[' (an atom character) or a delimiter.
    let start = p.pos;
    let n = p
        .rest()
        .iter()
        .take_while(|b| is_atom_char(**b) && **b != b'[')
        .count();
    p.pos += n;
    let name = Upper::new(p.slice(start..start + n));
    Ok(match name.as_slice() {
        b"BODY.PEEK" | b"BODY" if p.peek() == Some(b'[') => {
            let section = section(p)?;
            FetchItem::BodySection {
                peek: name.as_slice().len() == 9,
                section,
                partial: partial(p)?,
            }
        }
        b"BODY" => FetchItem::Body,
        b"BODYSTRUCTURE" => FetchItem::BodyStructure,
        b"BINARY.PEEK" | b"BINARY" => {
            let part = section_binary(p)?;
            FetchItem::Binary {
                peek: name.as_slice().len() == 11,
                part,
                partial: partial(p)?,
            }
        }
        b"BINARY.SIZE" => FetchItem::BinarySize {
            part: section_binary(p)?,
        },
        b"RFC822.SIZE" => FetchItem::Rfc822Size,
        b"RFC822.HEADER" => FetchItem::Rfc822Header,
        b"RFC822.TEXT" => FetchItem::Rfc822Text,
        b"RFC822" => FetchItem::Rfc822,
        b"ENVELOPE" => FetchItem::Envelope,
        b"FLAGS" => FetchItem::Flags,
        b"INTERNALDATE" => FetchItem::InternalDate,
        b"UID" => FetchItem::Uid,
        b"MODSEQ" => FetchItem::ModSeq,
        _ => {
            return Err(Fail {
                pos: start,
                reason: "unknown FETCH item",
            });
        }
    })
}

fn search(p: &mut P<'_>, uid: bool) -> R<CommandBody> {
    p.sp()?;
    let mut return_options = None;
    if p.word(b"RETURN") {
        p.sp()?;
        return_options = Some(p.paren_list(|p| {
            Ok(if p.word(b"MIN") {
                SearchReturnOption::Min
            } else if p.word(b"MAX") {
                SearchReturnOption::Max
            } else if p.word(b"ALL") {
                SearchReturnOption::All
            } else if p.word(b"COUNT") {
                SearchReturnOption::Count
            } else if p.word(b"SAVE") {
                SearchReturnOption::Save
            } else {
                return p.fail("unknown SEARCH return option");
            })
        })?);
        p.sp()?;
    }
    let mut charset = None;
    if p.word(b"CHARSET") {
        p.sp()?;
        charset = Some(if p.peek() == Some(b'"') {
            p.quoted()?
        } else {
            p.astring()?
        });
        p.sp()?;
    }
    let mut criteria = vec![search_key(p)?];
    while p.eat(b' ') {
        criteria.push(search_key(p)?);
    }
    Ok(CommandBody::Search {
        uid,
        return_options,
        charset,
        criteria,
    })
}

fn search_key(p: &mut P<'_>) -> R<SearchKey> {
    p.enter()?;
    let k = search_key_inner(p);
    p.leave();
    k
}

fn search_key_inner(p: &mut P<'_>) -> R<SearchKey> {
    if p.peek() == Some(b'(') {
        let v = p.paren_list(search_key)?;
        if v.is_empty() {
            return p.fail("empty search key list");
        }
        return Ok(SearchKey::And(v));
    }
    if p.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(SearchKey::SequenceSet(p.sequence_set()?));
    }
    let r = p.atom_range()?;
    let w = Upper::new(p.slice(r));
    macro_rules! arg {
        ($f:ident) => {{
            p.sp()?;
            p.$f()?
        }};
    }
    Ok(match w.as_slice() {
        b"ALL" => SearchKey::All,
        b"ANSWERED" => SearchKey::Answered,
        b"BCC" => SearchKey::Bcc(arg!(astring)),
        b"BEFORE" => SearchKey::Before(arg!(date)),
        b"BODY" => SearchKey::Body(arg!(astring)),
        b"CC" => SearchKey::Cc(arg!(astring)),
        b"DELETED" => SearchKey::Deleted,
        b"DRAFT" => SearchKey::Draft,
        b"FLAGGED" => SearchKey::Flagged,
        b"FROM" => SearchKey::From(arg!(astring)),
        b"HEADER" => {
            let name = arg!(astring);
            SearchKey::Header(name, arg!(astring))
        }
        b"KEYWORD" => SearchKey::Keyword(arg!(atom)),
        b"LARGER" => SearchKey::Larger(arg!(number64)),
        b"NEW" => SearchKey::New,
        b"NOT" => {
            p.sp()?;
            SearchKey::Not(Box::new(search_key(p)?))
        }
        b"OLD" => SearchKey::Old,
        b"ON" => SearchKey::On(arg!(date)),
        b"OR" => {
            p.sp()?;
            let a = search_key(p)?;
            p.sp()?;
            SearchKey::Or(Box::new(a), Box::new(search_key(p)?))
        }
        b"RECENT" => SearchKey::Recent,
        b"SEEN" => SearchKey::Seen,
        b"SENTBEFORE" => SearchKey::SentBefore(arg!(date)),
        b"SENTON" => SearchKey::SentOn(arg!(date)),
        b"SENTSINCE" => SearchKey::SentSince(arg!(date)),
        b"SINCE" => SearchKey::Since(arg!(date)),
        b"SMALLER" => SearchKey::Smaller(arg!(number64)),
        b"SUBJECT" => SearchKey::Subject(arg!(astring)),
        b"TEXT" => SearchKey::Text(arg!(astring)),
        b"TO" => SearchKey::To(arg!(astring)),
        b"UID" => SearchKey::Uid(arg!(sequence_set)),
        b"UNANSWERED" => SearchKey::Unanswered,
        b"UNDELETED" => SearchKey::Undeleted,
        b"UNDRAFT" => SearchKey::Undraft,
        b"UNFLAGGED" => SearchKey::Unflagged,
        b"UNKEYWORD" => SearchKey::Unkeyword(arg!(atom)),
        b"UNSEEN" => SearchKey::Unseen,
        b"MODSEQ" => {
            p.sp()?;
            let mut entry = None;
            if p.peek() == Some(b'"') {
                let name = p.quoted()?;
                p.sp()?;
                let r = p.atom_range()?;
                let t = p.slice(r.clone());
                if !(t.eq_ignore_ascii_case(b"priv")
                    || t.eq_ignore_ascii_case(b"shared")
                    || t.eq_ignore_ascii_case(b"all"))
                {
                    return Err(Fail {
                        pos: r.start,
                        reason: "expected priv, shared or all",
                    });
                }
                let a = crate::types::Atom::new(p.bytes(r)).or(Err(Fail {
                    pos: p.pos,
                    reason: "expected an atom",
                }))?;
                entry = Some((name, a));
                p.sp()?;
            }
            SearchKey::ModSeq {
                entry,
                modseq: p.number64()?,
            }
        }
        _ => {
            return Err(Fail {
                pos: p.pos - w.as_slice().len(),
                reason: "unknown search key",
            });
        }
    })
}
