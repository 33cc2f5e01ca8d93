//! A small lexer over complete, framed command messages: just enough grammar for the parts of
//! IMAP the state machine runs itself (tag, command name, LOGIN, AUTHENTICATE, ENABLE, the
//! APPEND prefix up to the message literal). Everything else goes to the crate's parser.
//!
//! Grammar references are RFC 9051 section 9 (ABNF).

use bytes::Bytes;

/// `tag = 1*<any ASTRING-CHAR except "+">` (RFC 9051).
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `ATOM-CHAR = <any CHAR except atom-specials>`; atom-specials are
/// `"(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A literal announced at the end of a line: `{n}`, `{n+}`, `~{n}` or `~{n+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiteralHeader {
    /// Announced length in bytes.
    pub(crate) len: u64,
    /// `true` for a synchronising literal (`{n}`), which needs a `+` continuation.
    pub(crate) sync: bool,
    /// `true` for a `literal8` (`~{n}`, RFC 3516 BINARY).
    pub(crate) binary: bool,
    /// Offset in the line where the announcement (`{` or `~`) starts.
    pub(crate) start: usize,
}

/// Why a literal announcement could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiteralError {
    /// The number does not fit `number64`.
    TooLarge,
}

/// Looks for a literal announcement at the very end of `line` (CRLF already removed).
pub(crate) fn literal_at_end(line: &[u8]) -> Result<Option<LiteralHeader>, LiteralError> {
    let Some((&b'}', body)) = line.split_last() else {
        return Ok(None);
    };
    let Some(open) = memchr::memrchr(b'{', body) else {
        return Ok(None);
    };
    let inner = body.get(open + 1..).unwrap_or_default();
    let (digits, sync) = match inner.split_last() {
        Some((&b'+', d)) => (d, false),
        _ => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    if digits.len() > 19 {
        return Err(LiteralError::TooLarge);
    }
    let mut len: u64 = 0;
    for d in digits {
        len = len
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(LiteralError::TooLarge)?;
    }
    // number64 is at most 2^63 - 1.
    if len > i64::MAX as u64 {
        return Err(LiteralError::TooLarge);
    }
    let binary = open > 0 && body.get(open - 1) == Some(&b'~');
    let start = if binary { open - 1 } else { open };
    Ok(Some(LiteralHeader {
        len,
        sync,
        binary,
        start,
    }))
}

/// Cursor over a complete message (literals inline, `{n}\r\n<bytes>`).
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Consumes a CRLF (or a bare LF) that ends the message.
    pub(crate) fn crlf(&mut self) -> Option<()> {
        let rest = self.rest();
        if rest.starts_with(b"\r\n") {
            self.pos += 2;
            Some(())
        } else if rest.starts_with(b"\n") {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    pub(crate) fn sp(&mut self) -> Option<()> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos += n;
        rest.get(..n).unwrap_or_default()
    }

    pub(crate) fn tag(&mut self) -> Option<&'a [u8]> {
        let t = self.take_while(is_tag_char);
        (!t.is_empty()).then_some(t)
    }

    pub(crate) fn atom(&mut self) -> Option<&'a [u8]> {
        let t = self.take_while(is_atom_char);
        (!t.is_empty()).then_some(t)
    }

    /// A flag or atom-like token that may start with a backslash (`\Seen`).
    pub(crate) fn flag(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        if self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            if self.buf.get(start..self.pos) == Some(b"\\") && self.peek() == Some(b'*') {
                self.pos += 1;
                return self.buf.get(start..self.pos);
            }
            self.pos = start;
            return None;
        }
        self.buf.get(start..self.pos)
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, returning the unescaped content.
    pub(crate) fn quoted(&mut self) -> Option<Vec<u8>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Some(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                Some(b'\r' | b'\n') | None => break,
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos = start;
        None
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` with the bytes inline.
    pub(crate) fn literal(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let rest = self.rest();
        let rest = rest.strip_prefix(b"~").unwrap_or(rest);
        let skip_tilde = self.rest().len() - rest.len();
        if rest.first() != Some(&b'{') {
            return None;
        }
        let close = memchr::memchr(b'}', rest)?;
        let header = rest.get(..=close)?;
        let hdr = literal_at_end(header).ok().flatten()?;
        if hdr.start != 0 {
            self.pos = start;
            return None;
        }
        self.pos += skip_tilde + close + 1;
        if self.crlf().is_none() {
            self.pos = start;
            return None;
        }
        let len = usize::try_from(hdr.len).ok()?;
        let data = self.rest().get(..len);
        match data {
            Some(d) => {
                self.pos += len;
                Some(d)
            }
            None => {
                self.pos = start;
                None
            }
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    pub(crate) fn astring(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' | b'~' => self.literal().map(<[u8]>::to_vec),
            _ => {
                let t = self.take_while(is_astring_char);
                (!t.is_empty()).then(|| t.to_vec())
            }
        }
    }
}

/// The head of every command: its tag and (upper-cased) name, with `UID` folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) tag: String,
    pub(crate) name: String,
    pub(crate) uid: bool,
}

/// What went wrong reading the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// No valid tag: answer with an untagged `* BAD`.
    BadTag,
    /// A valid tag but no command name.
    NoCommand(String),
}

/// Reads `tag SP command-name [SP "UID"-subcommand]`.
pub(crate) fn head(msg: &[u8]) -> Result<(Head, usize), HeadError> {
    let mut c = Cursor::new(msg);
    let tag = c.tag().ok_or(HeadError::BadTag)?;
    let tag = String::from_utf8_lossy(tag).into_owned();
    match c.peek() {
        Some(b' ') => {}
        Some(b'\r' | b'\n') | None => return Err(HeadError::NoCommand(tag)),
        Some(_) => return Err(HeadError::BadTag),
    }
    c.sp();
    let Some(name) = c.atom() else {
        return Err(HeadError::NoCommand(tag));
    };
    let mut name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let mut uid = false;
    if name == "UID" {
        let save = c.pos;
        if c.sp().is_some() {
            if let Some(sub) = c.atom() {
                uid = true;
                name = String::from_utf8_lossy(sub).to_ascii_uppercase();
            } else {
                c.pos = save;
            }
        }
    }
    Ok((Head { tag, name, uid }, c.pos))
}

/// The APPEND arguments before the message literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppendHead {
    pub(crate) mailbox: Bytes,
    pub(crate) flags: Vec<String>,
    pub(crate) date: Option<String>,
}

/// Parses `tag SP "APPEND" SP mailbox [SP flag-list] [SP date-time] SP` where the input ends
/// right where the message literal's announcement begins. `None` when the input is not such a
/// prefix (e.g. the literal being announced is the mailbox name itself).
pub(crate) fn append_prefix(msg: &[u8]) -> Option<AppendHead> {
    let (h, pos) = head(msg).ok()?;
    if h.name != "APPEND" || h.uid {
        return None;
    }
    let mut c = Cursor::new(msg);
    c.pos = pos;
    c.sp()?;
    let mailbox = c.astring()?;
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        c.pos += 1;
        loop {
            if c.peek() == Some(b')') {
                c.pos += 1;
                break;
            }
            let f = c.flag()?;
            flags.push(String::from_utf8_lossy(f).into_owned());
            match c.peek() {
                Some(b' ') => c.pos += 1,
                Some(b')') => {}
                _ => return None,
            }
        }
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        let d = c.quoted()?;
        date = Some(String::from_utf8(d).ok()?);
        c.sp()?;
    }
    c.at_end().then(|| AppendHead {
        mailbox: Bytes::from(mailbox),
        flags,
        date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_headers() {
        assert_eq!(
            literal_at_end(b"a LOGIN {5}").unwrap(),
            Some(LiteralHeader {
                len: 5,
                sync: true,
                binary: false,
                start: 8
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND x ~{12+}").unwrap(),
            Some(LiteralHeader {
                len: 12,
                sync: false,
                binary: true,
                start: 11
            })
        );
        assert_eq!(literal_at_end(b"a NOOP").unwrap(), None);
        assert_eq!(literal_at_end(b"a {x}").unwrap(), None);
        assert_eq!(literal_at_end(b"a {}").unwrap(), None);
        assert_eq!(
            literal_at_end(b"a {99999999999999999999}"),
            Err(LiteralError::TooLarge)
        );
    }

    #[test]
    fn heads() {
        let (h, _) = head(b"a1 uid fetch 1 flags\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                tag: "a1".into(),
                name: "FETCH".into(),
                uid: true
            }
        );
        assert_eq!(head(b"a+b NOOP\r\n"), Err(HeadError::BadTag));
        assert_eq!(head(b"*\r\n"), Err(HeadError::BadTag));
        assert_eq!(head(b"abc\r\n"), Err(HeadError::NoCommand("abc".into())));
    }

    #[test]
    fn append_prefixes() {
        let a =
            append_prefix(b"A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" ")
                .unwrap();
        assert_eq!(&a.mailbox[..], b"saved-messages");
        assert_eq!(a.flags, vec!["\\Seen".to_string()]);
        assert_eq!(a.date.as_deref(), Some("17-Jul-1996 02:44:25 -0700"));
        assert_eq!(append_prefix(b"A APPEND "), None);
        let b = append_prefix(b"A APPEND {5}\r\nINBOX ").unwrap();
        assert_eq!(&b.mailbox[..], b"INBOX");
        assert!(b.flags.is_empty());
    }
}
