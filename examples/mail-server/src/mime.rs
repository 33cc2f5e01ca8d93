//! What IMAP FETCH needs from a message's bytes: ENVELOPE, BODYSTRUCTURE and body
//! sections, built on `mail-parser` (no MIME parsing of our own beyond splitting header
//! fields by name for `HEADER.FIELDS`).

use std::num::NonZeroU32;

use bytes::Bytes;
use imap_proto::types::{
    Address, BodyFields, BodyStructure, Disposition, Envelope, ExtDisposition, MultiPartExt,
    Section, SectionText, SinglePartExt, SinglePartKind,
};
use mail_parser::{Addr, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Parses a message (`None` only for input mail-parser cannot make anything of).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn nstr(s: Option<&str>) -> Option<Bytes> {
    s.map(|v| Bytes::copy_from_slice(v.trim().as_bytes()))
}

/// A display name for ENVELOPE: mail-parser hands it out decoded, so a non-ASCII name is
/// encoded again as one RFC 2047 encoded-word (ENVELOPE strings are header text, and
/// clients without UTF8=ACCEPT expect 7-bit there).
fn display_name(s: Option<&str>) -> Option<Bytes> {
    use base64::Engine as _;
    let v = s?.trim();
    if v.is_ascii() {
        return Some(Bytes::copy_from_slice(v.as_bytes()));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
    Some(Bytes::from(format!("=?UTF-8?B?{b64}?=")))
}

fn raw_header(msg: &Message<'_>, name: HeaderName<'static>) -> Option<Bytes> {
    msg.header_raw(name)
        .map(|v| Bytes::copy_from_slice(v.trim().as_bytes()))
}

fn addr(a: &Addr<'_>) -> Address {
    let (mailbox, host) = match a.address.as_deref() {
        Some(full) => match full.rsplit_once('@') {
            Some((l, h)) => (Some(l), Some(h)),
            None => (Some(full), None),
        },
        None => (None, None),
    };
    Address {
        name: display_name(a.name.as_deref()),
        adl: None,
        mailbox: nstr(mailbox),
        host: nstr(host),
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    match a {
        None => Vec::new(),
        Some(mail_parser::Address::List(list)) => list.iter().map(addr).collect(),
        Some(mail_parser::Address::Group(groups)) => {
            let mut out = Vec::new();
            for g in groups {
                // Addresses outside any group (`Cc: Team: a@x;, b@y`) come as a group
                // without a name: they are listed as they are, without markers.
                if g.name.is_none() {
                    out.extend(g.addresses.iter().map(addr));
                    continue;
                }
                // RFC 9051 group syntax: a start marker with the group name, the members,
                // an end marker.
                out.push(Address {
                    name: None,
                    adl: None,
                    mailbox: display_name(g.name.as_deref()),
                    host: None,
                });
                out.extend(g.addresses.iter().map(addr));
                out.push(Address::default());
            }
            out
        }
    }
}

/// The ENVELOPE of a message.
pub fn envelope(msg: &Message<'_>) -> Envelope {
    let from = addresses(msg.from());
    let sender = match addresses(msg.sender()) {
        v if v.is_empty() => from.clone(),
        v => v,
    };
    let reply_to = match addresses(msg.reply_to()) {
        v if v.is_empty() => from.clone(),
        v => v,
    };
    Envelope {
        date: raw_header(msg, HeaderName::Date),
        subject: raw_header(msg, HeaderName::Subject),
        from,
        sender,
        reply_to,
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        bcc: addresses(msg.bcc()),
        in_reply_to: raw_header(msg, HeaderName::InReplyTo),
        message_id: raw_header(msg, HeaderName::MessageId),
    }
}

/// Content-Type or Content-Disposition parameters. mail-parser hands them out decoded
/// (RFC 2231 continuations joined, charsets converted to UTF-8); a value that is not ASCII
/// is encoded again as `NAME*` = `UTF-8''<percent-encoded>` (RFC 2231 section 4), so the
/// BODYSTRUCTURE stays 7-bit and clients decode it as they would the original.
fn params(ct: Option<&mail_parser::ContentType<'_>>) -> Vec<(Bytes, Bytes)> {
    ct.and_then(|c| c.attributes.as_ref())
        .map(|attrs| {
            attrs
                .iter()
                .map(|a| {
                    let name = a.name.to_ascii_uppercase();
                    if a.value.is_ascii() {
                        (
                            Bytes::from(name),
                            Bytes::copy_from_slice(a.value.as_bytes()),
                        )
                    } else {
                        (Bytes::from(format!("{name}*")), rfc2231_value(&a.value))
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `UTF-8''` and the value with every octet outside RFC 2231's `attribute-char` as `%XX`.
fn rfc2231_value(value: &str) -> Bytes {
    let mut out = String::from("UTF-8''");
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Bytes::from(out)
}

fn part_bytes<'a>(raw: &'a [u8], part: &MessagePart<'_>) -> &'a [u8] {
    let start = usize::try_from(part.offset_body).unwrap_or(usize::MAX);
    let end = usize::try_from(part.offset_end).unwrap_or(usize::MAX);
    raw.get(start..end.max(start)).unwrap_or_default()
}

/// The extension data after the MD5 (single parts) or the parameters (multiparts):
/// disposition, language and location, each `NIL` when the part has none, as Dovecot and
/// Cyrus write them.
fn disposition(part: &MessagePart<'_>) -> Option<ExtDisposition> {
    let disposition = part.content_disposition().map(|d| Disposition {
        kind: Bytes::copy_from_slice(d.c_type.to_ascii_uppercase().as_bytes()),
        params: params(Some(d)),
    });
    let language = part
        .content_language()
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .map(|l| Bytes::copy_from_slice(l.trim().as_bytes()))
        .collect();
    Some(ExtDisposition {
        disposition,
        more: Some(imap_proto::types::ExtLanguage {
            language,
            more: Some(imap_proto::types::ExtLocation {
                location: nstr(part.content_location()),
                extensions: Vec::new(),
            }),
        }),
    })
}

/// Whether the offsets of an encapsulated message's parts count from its own first octet
/// (mail-parser decoded it into a buffer of its own, e.g. from base64) rather than from
/// the outer message's.
fn offsets_are_own(inner: &Message<'_>) -> bool {
    inner.parts.first().is_none_or(|p| p.offset_header == 0)
}

fn structure(
    msg: &Message<'_>,
    raw: &[u8],
    id: usize,
    extended: bool,
    depth: usize,
) -> BodyStructure {
    let Some(part) = msg.parts.get(id) else {
        return text_plain_empty();
    };
    let ct = part.content_type();
    if let PartType::Multipart(children) = &part.body
        && depth < 32
    {
        let parts = children
            .iter()
            .map(|&c| {
                structure(
                    msg,
                    raw,
                    usize::try_from(c).unwrap_or(usize::MAX),
                    extended,
                    depth + 1,
                )
            })
            .collect();
        let subtype = ct
            .and_then(|c| c.c_subtype.as_deref())
            .unwrap_or("MIXED")
            .to_ascii_uppercase();
        return BodyStructure::Multi {
            parts,
            subtype: Bytes::from(subtype),
            ext: extended.then(|| MultiPartExt {
                params: params(ct),
                more: disposition(part),
            }),
        };
    }
    let (media_type, subtype) = match ct {
        Some(c) => (
            c.c_type.to_ascii_uppercase(),
            c.c_subtype.as_deref().unwrap_or("").to_ascii_uppercase(),
        ),
        None => ("TEXT".to_string(), "PLAIN".to_string()),
    };
    let body = part_bytes(raw, part);
    let mut p = params(ct);
    // RFC 2045 section 5.2: a text part without a charset is US-ASCII; say so, as
    // Dovecot does, so clients need not know the default.
    if media_type == "TEXT" && !p.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"CHARSET")) {
        p.push((
            Bytes::from_static(b"CHARSET"),
            Bytes::from_static(b"US-ASCII"),
        ));
    }
    let fields = BodyFields {
        params: p,
        id: nstr(part.content_id())
            .map(|id| Bytes::from(format!("<{}>", String::from_utf8_lossy(&id)))),
        description: nstr(part.content_description()),
        encoding: Bytes::from(
            part.content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
        ),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    // Lines are counted as line ends, as Dovecot and Cyrus count them: the CRLF before a
    // MIME boundary belongs to the boundary, so a part's last line often has none and is
    // not counted.
    let lines = u32::try_from(memchr::memchr_iter(b'\n', body).count()).unwrap_or(u32::MAX);
    let kind = if media_type == "TEXT" {
        SinglePartKind::Text { lines }
    } else if media_type == "MESSAGE" && subtype == "RFC822" {
        match &part.body {
            PartType::Message(inner) if depth < 32 => {
                let inner_raw = if offsets_are_own(inner) {
                    inner.raw_message()
                } else {
                    raw
                };
                SinglePartKind::Message {
                    envelope: Box::new(envelope(inner)),
                    body: Box::new(structure(inner, inner_raw, 0, extended, depth + 1)),
                    lines,
                }
            }
            _ => SinglePartKind::Basic,
        }
    } else {
        SinglePartKind::Basic
    };
    BodyStructure::Single {
        media_type: Bytes::from(media_type),
        subtype: Bytes::from(subtype),
        fields,
        kind,
        ext: extended.then(|| SinglePartExt {
            md5: None,
            more: disposition(part),
        }),
    }
}

fn text_plain_empty() -> BodyStructure {
    BodyStructure::Single {
        media_type: Bytes::from_static(b"TEXT"),
        subtype: Bytes::from_static(b"PLAIN"),
        fields: BodyFields {
            params: vec![(
                Bytes::from_static(b"CHARSET"),
                Bytes::from_static(b"US-ASCII"),
            )],
            id: None,
            description: None,
            encoding: Bytes::from_static(b"7BIT"),
            size: 0,
        },
        kind: SinglePartKind::Text { lines: 0 },
        ext: None,
    }
}

/// BODYSTRUCTURE (`extended`) or BODY of a message.
pub fn body_structure(msg: &Message<'_>, raw: &[u8], extended: bool) -> BodyStructure {
    structure(msg, raw, 0, extended, 0)
}

/// Where the header block ends (after the empty line), or the whole input.
fn header_end(raw: &[u8]) -> usize {
    memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len())
}

/// The header fields of `header` whose names are (or, with `not`, are not) in `names`,
/// followed by the empty line.
fn filter_fields(header: &[u8], names: &[Bytes], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = name.trim_ascii();
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The byte ranges (header block, body) of a part, by its MIME part path, relative to the
/// message `msg` was parsed from.
fn locate(msg: &Message<'_>, path: &[NonZeroU32], depth: usize) -> Option<(usize, usize, usize)> {
    let mut id = 0usize;
    for (i, n) in path.iter().enumerate() {
        let part = msg.parts.get(id)?;
        let index = usize::try_from(n.get() - 1).ok()?;
        match &part.body {
            PartType::Multipart(children) => id = usize::try_from(*children.get(index)?).ok()?,
            // An encapsulated message: the rest of the path is inside it. Its part
            // offsets count from the outer message's first octet, unless mail-parser had
            // to decode it first (then its bytes are not in the stored message).
            PartType::Message(inner) if depth < 32 && !offsets_are_own(inner) => {
                return locate(inner, path.get(i..)?, depth + 1);
            }
            // Part 1 of a message that is not multipart is its body (only at the top of
            // the path: `1.1` of such a message does not exist).
            _ if index == 0 && id == 0 && i == 0 => {}
            _ => return None,
        }
    }
    let part = msg.parts.get(id)?;
    let hs = usize::try_from(part.offset_header).ok()?;
    let bs = usize::try_from(part.offset_body).ok()?;
    let be = usize::try_from(part.offset_end).ok()?;
    Some((hs, bs, be.max(bs)))
}

/// The bytes of `BODY[section]` (`None` when the part does not exist).
pub fn section(raw: &Bytes, msg: Option<&Message<'_>>, section: &Section) -> Option<Bytes> {
    if section.part.is_empty() {
        let split = header_end(raw);
        return Some(match &section.text {
            None => raw.clone(),
            Some(SectionText::Header) => raw.slice(..split),
            Some(SectionText::Text) => raw.slice(split..),
            Some(SectionText::HeaderFields(names)) => {
                Bytes::from(filter_fields(raw.get(..split)?, names, false))
            }
            Some(SectionText::HeaderFieldsNot(names)) => {
                Bytes::from(filter_fields(raw.get(..split)?, names, true))
            }
            Some(SectionText::Mime) => return None,
        });
    }
    let msg = msg?;
    let (hs, bs, be) = locate(msg, &section.part, 0)?;
    let header = raw.get(hs..bs)?;
    let body = raw.get(bs..be)?;
    // RFC 9051 section 6.4.5: after a part number, HEADER, HEADER.FIELDS[.NOT] and TEXT
    // apply to the message encapsulated in a MESSAGE/RFC822 (or MESSAGE/GLOBAL) part; MIME
    // is the part's own header.
    let (inner_head, inner_text) = if is_message_part(header) {
        let split = header_end(body);
        (body.get(..split)?, body.get(split..)?)
    } else {
        (header, body)
    };
    Some(match &section.text {
        None => Bytes::copy_from_slice(body),
        Some(SectionText::Text) => Bytes::copy_from_slice(inner_text),
        Some(SectionText::Mime) => Bytes::copy_from_slice(header),
        Some(SectionText::Header) => Bytes::copy_from_slice(inner_head),
        Some(SectionText::HeaderFields(names)) => {
            Bytes::from(filter_fields(inner_head, names, false))
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            Bytes::from(filter_fields(inner_head, names, true))
        }
    })
}

/// Why a `BINARY[part]` section cannot be given (RFC 3516 section 4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's `Content-Transfer-Encoding` is not one the server can decode (answered
    /// with `NO [UNKNOWN-CTE]`).
    UnknownCte(String),
    /// The part says base64 or quoted-printable but its content does not decode (answered
    /// with `NO [PARSE]`).
    Corrupt,
}

/// The bytes of `BINARY[part]`: the part's content with its content transfer encoding
/// removed (no charset conversion). An empty `part` is the whole message, as stored.
/// `Ok(None)` when the part does not exist.
///
/// # Errors
/// [`BinaryError`] when the encoding is unknown or the content does not decode.
pub fn binary(
    raw: &Bytes,
    msg: Option<&Message<'_>>,
    part: &[NonZeroU32],
) -> Result<Option<Bytes>, BinaryError> {
    if part.is_empty() {
        return Ok(Some(raw.clone()));
    }
    let Some((hs, bs, be)) = msg.and_then(|m| locate(m, part, 0)) else {
        return Ok(None);
    };
    let (Some(header), Some(body)) = (raw.get(hs..bs), raw.get(bs..be)) else {
        return Ok(None);
    };
    let decoded = match transfer_encoding(header).as_deref() {
        None | Some("7bit" | "8bit" | "binary") => return Ok(Some(raw.slice(bs..be))),
        Some("base64") => mail_parser::decoders::base64::base64_decode(body),
        Some("quoted-printable") => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        Some(other) => return Err(BinaryError::UnknownCte(other.to_owned())),
    };
    decoded
        .map(|d| Some(Bytes::from(d)))
        .ok_or(BinaryError::Corrupt)
}

/// The `Content-Transfer-Encoding` of a part header, lower-cased, without comments and
/// folding; `None` when there is none.
fn transfer_encoding(header: &[u8]) -> Option<String> {
    let field = filter_fields(
        header,
        &[Bytes::from_static(b"Content-Transfer-Encoding")],
        false,
    );
    let colon = memchr::memchr(b':', &field)?;
    let mut value = String::new();
    let mut depth = 0u32;
    for &b in field.get(colon + 1..)? {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth > 0 || b.is_ascii_whitespace() => {}
            _ => value.push(char::from(b.to_ascii_lowercase())),
        }
    }
    (!value.is_empty()).then_some(value)
}

/// True when a part's MIME header says `Content-Type: message/rfc822` (or
/// `message/global`).
fn is_message_part(header: &[u8]) -> bool {
    let mut lines = header.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let Some(value) = line
            .get(..13)
            .filter(|n| n.eq_ignore_ascii_case(b"content-type:"))
            .and_then(|_| line.get(13..))
        else {
            continue;
        };
        // Unfold continuation lines into the value.
        let mut v: Vec<u8> = value.to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
                v.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        let text = String::from_utf8_lossy(&v).to_ascii_lowercase();
        let media = text
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        return media == "message/rfc822" || media == "message/global";
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test, Carol <carol@example.org>\r\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <m1@test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--b1\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\nAAEC\r\n--b1--\r\n";

    #[test]
    fn envelope_keeps_raw_strings_and_splits_addresses() {
        let m = parse(MULTI).unwrap();
        let e = envelope(&m);
        assert_eq!(
            e.subject.as_deref(),
            Some(&b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="[..])
        );
        assert_eq!(
            e.date.as_deref(),
            Some(&b"Mon, 23 Nov 2026 09:00:00 +0000"[..])
        );
        assert_eq!(e.message_id.as_deref(), Some(&b"<m1@test>"[..]));
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.from[0].name.as_deref(), Some(&b"Alice"[..]));
        assert_eq!(e.from[0].mailbox.as_deref(), Some(&b"alice"[..]));
        assert_eq!(e.from[0].host.as_deref(), Some(&b"example.test"[..]));
        assert_eq!(e.sender, e.from);
        assert_eq!(e.to.len(), 2);
        assert!(e.cc.is_empty());
        let m = parse(b"From: =?UTF-8?Q?B=C3=B6b?= <bob@example.test>\r\n\r\nx\r\n").unwrap();
        let e = envelope(&m);
        assert_eq!(
            e.from[0].name.as_deref(),
            Some(&b"=?UTF-8?B?QsO2Yg==?="[..])
        );
    }

    #[test]
    fn sections_of_an_encapsulated_message() {
        let raw: &[u8] = b"From: a@example.test\r\nSubject: outer\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--x\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n\
From: b@example.org\r\nSubject: inner\r\n\r\ninner body\r\n--x--\r\n";
        let bytes = Bytes::copy_from_slice(raw);
        let m = parse(raw).unwrap();
        let sec = |text: Option<SectionText>| Section {
            part: vec![std::num::NonZeroU32::new(2).unwrap()],
            text,
        };
        let get = |text| section(&bytes, Some(&m), &sec(text)).unwrap();
        assert_eq!(
            &get(Some(SectionText::Header))[..],
            b"From: b@example.org\r\nSubject: inner\r\n\r\n"
        );
        assert_eq!(&get(Some(SectionText::Text))[..], b"inner body");
        assert_eq!(
            &get(Some(SectionText::Mime))[..],
            b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        );
        assert_eq!(
            &get(Some(SectionText::HeaderFields(vec![Bytes::from_static(
                b"SUBJECT"
            )])))[..],
            b"Subject: inner\r\n\r\n"
        );
        // 2.1 is the encapsulated message's (single-part) body.
        let one_of_two = Section {
            part: vec![
                std::num::NonZeroU32::new(2).unwrap(),
                std::num::NonZeroU32::MIN,
            ],
            text: None,
        };
        assert_eq!(
            &section(&bytes, Some(&m), &one_of_two).unwrap()[..],
            b"inner body"
        );
        let BodyStructure::Multi { parts, .. } = body_structure(&m, raw, false) else {
            panic!("multipart")
        };
        let Some(BodyStructure::Single {
            kind: SinglePartKind::Message { body, lines, .. },
            ..
        }) = parts.get(1)
        else {
            panic!("message/rfc822 part: {parts:?}")
        };
        assert_eq!(*lines, 3);
        let BodyStructure::Single { fields, kind, .. } = &**body else {
            panic!("inner body")
        };
        assert_eq!(
            (fields.size, kind),
            (10, &SinglePartKind::Text { lines: 0 })
        );
        assert_eq!(
            fields.params,
            vec![(
                Bytes::from_static(b"CHARSET"),
                Bytes::from_static(b"US-ASCII")
            )]
        );
        assert!(is_message_part(
            b"Content-Type:\r\n message/RFC822; x=y\r\n\r\n"
        ));
        assert!(!is_message_part(b"Content-Type: text/plain\r\n\r\n"));
    }

    #[test]
    fn bodystructure_and_sections() {
        let raw = Bytes::from_static(MULTI);
        let m = parse(MULTI).unwrap();
        match body_structure(&m, MULTI, true) {
            BodyStructure::Multi { parts, subtype, .. } => {
                assert_eq!(&subtype[..], b"MIXED");
                assert_eq!(parts.len(), 2);
                match &parts[0] {
                    BodyStructure::Single {
                        media_type,
                        subtype,
                        kind,
                        fields,
                        ..
                    } => {
                        assert_eq!(
                            (&media_type[..], &subtype[..]),
                            (&b"TEXT"[..], &b"PLAIN"[..])
                        );
                        // "hello\r\nworld": one line end (the CRLF after "world" belongs
                        // to the boundary).
                        assert_eq!(*kind, SinglePartKind::Text { lines: 1 });
                        assert_eq!(fields.size, 12);
                    }
                    other => panic!("{other:?}"),
                }
                match &parts[1] {
                    BodyStructure::Single { fields, ext, .. } => {
                        assert_eq!(&fields.encoding[..], b"BASE64");
                        let d = ext
                            .as_ref()
                            .unwrap()
                            .more
                            .as_ref()
                            .unwrap()
                            .disposition
                            .as_ref()
                            .unwrap();
                        assert_eq!(&d.kind[..], b"ATTACHMENT");
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        let sec = |part: &[u32], text: Option<SectionText>| {
            let s = Section {
                part: part.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect(),
                text,
            };
            section(&raw, Some(&m), &s)
        };
        assert_eq!(sec(&[1], None).unwrap(), &b"hello\r\nworld"[..]);
        assert_eq!(sec(&[2], None).unwrap(), &b"AAEC"[..]);
        assert!(
            sec(&[2], Some(SectionText::Mime))
                .unwrap()
                .starts_with(b"Content-Type: application/octet-stream")
        );
        assert!(sec(&[3], None).is_none());
        let fields = sec(
            &[],
            Some(SectionText::HeaderFields(vec![
                Bytes::from_static(b"subject"),
                Bytes::from_static(b"TO"),
            ])),
        )
        .unwrap();
        assert_eq!(
            fields,
            &b"To: bob@example.test, Carol <carol@example.org>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"[..]
        );
        let header = sec(&[], Some(SectionText::Header)).unwrap();
        assert!(header.ends_with(b"boundary=\"b1\"\r\n\r\n"));
        assert!(
            sec(&[], Some(SectionText::Text))
                .unwrap()
                .starts_with(b"preamble")
        );
    }

    #[test]
    fn single_part_message_part_one_is_the_body() {
        let raw = Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n");
        let m = parse(&raw).unwrap();
        let s = Section {
            part: vec![NonZeroU32::new(1).unwrap()],
            text: None,
        };
        assert_eq!(section(&raw, Some(&m), &s).unwrap(), &b"body\r\n"[..]);
        match body_structure(&m, &raw, false) {
            BodyStructure::Single {
                media_type, kind, ..
            } => {
                assert_eq!(&media_type[..], b"TEXT");
                assert_eq!(kind, SinglePartKind::Text { lines: 1 });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binary_sections_remove_the_transfer_encoding() {
        let raw = Bytes::from_static(MULTI);
        let m = parse(MULTI).unwrap();
        let one = NonZeroU32::MIN;
        let two = NonZeroU32::new(2).unwrap();
        assert_eq!(
            binary(&raw, Some(&m), &[one]).unwrap().unwrap(),
            Bytes::from_static(b"hello\r\nworld")
        );
        assert_eq!(
            binary(&raw, Some(&m), &[two]).unwrap().unwrap(),
            Bytes::from_static(&[0, 1, 2])
        );
        assert_eq!(binary(&raw, Some(&m), &[]).unwrap().unwrap(), raw);
        let nine = NonZeroU32::new(9).unwrap();
        assert_eq!(binary(&raw, Some(&m), &[nine]), Ok(None));
    }

    #[test]
    fn binary_of_quoted_printable_and_unknown_encodings() {
        let qp: &[u8] = b"Subject: q\r\nContent-Transfer-Encoding: (legacy) Quoted-Printable\r\n\r\nGr=C3=BC=\r\n=C3=9Fe\r\n";
        let raw = Bytes::from_static(qp);
        let m = parse(qp).unwrap();
        assert_eq!(
            binary(&raw, Some(&m), &[NonZeroU32::MIN]).unwrap().unwrap(),
            Bytes::from("Grüße\r\n")
        );
        let uu: &[u8] =
            b"Subject: u\r\nContent-Transfer-Encoding:\r\n x-uuencode\r\n\r\nbegin 644 a\r\n";
        let raw = Bytes::from_static(uu);
        let m = parse(uu).unwrap();
        assert_eq!(
            binary(&raw, Some(&m), &[NonZeroU32::MIN]),
            Err(BinaryError::UnknownCte("x-uuencode".into()))
        );
    }

    #[test]
    fn groups_parameters_and_extension_data() {
        let raw: &[u8] = b"From: a@example.test\r\nCc: Team: b@x.test, c@y.test;, solo@z.test\r\n\
Content-Type: application/pdf; name=\"a b.pdf\"\r\n\
Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20x.pdf\r\n\
Content-Language: en\r\nContent-Location: http://example.test/y\r\n\r\nJVBERi0=\r\n";
        let m = parse(raw).unwrap();
        let cc: Vec<_> = envelope(&m)
            .cc
            .iter()
            .map(|a| (a.mailbox.clone(), a.host.clone()))
            .collect();
        let b = |s: &'static str| Some(Bytes::from_static(s.as_bytes()));
        assert_eq!(
            cc,
            vec![
                (b("Team"), None),
                (b("b"), b("x.test")),
                (b("c"), b("y.test")),
                (None, None),
                (b("solo"), b("z.test")),
            ]
        );
        let BodyStructure::Single {
            ext: Some(SinglePartExt { more: Some(d), .. }),
            ..
        } = body_structure(&m, raw, true)
        else {
            panic!("extension data")
        };
        let disposition = d.disposition.unwrap();
        assert_eq!(
            disposition.params,
            vec![(
                Bytes::from_static(b"FILENAME*"),
                Bytes::from_static(b"UTF-8''%E2%82%AC%20x.pdf")
            )]
        );
        let lang = d.more.unwrap();
        assert_eq!(lang.language, vec![Bytes::from_static(b"en")]);
        assert_eq!(
            lang.more.unwrap().location,
            Some(Bytes::from_static(b"http://example.test/y"))
        );
    }
}
