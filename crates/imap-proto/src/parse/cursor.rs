//! The parser state shared by commands and responses, and the grammar's primitives
//! (numbers, atoms, strings, mailbox names, sequence sets, flags, dates).

use std::num::NonZeroU32;
use std::ops::Range;

use bytes::Bytes;
use nom::IResult;

use super::{ParseError, ParserOptions};
use crate::types::{
    Atom, Date, DateTime, Flag, ListPattern, Mailbox, SeqNum, SeqRange, SequenceSet, Tag,
    decode_mutf7, is_astring_char, is_atom_char, is_list_char,
};

/// A grammar violation at a position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail {
    pub pos: usize,
    pub reason: &'static str,
}

pub(crate) type R<T> = Result<T, Fail>;

/// A recursive-descent cursor over one framed message.
pub(crate) struct P<'o> {
    /// The buffer the message lives in (strings are sliced out of it).
    src: &'o Bytes,
    /// The message: `src[..end]`.
    data: &'o [u8],
    pub pos: usize,
    pub opts: &'o ParserOptions,
    depth: usize,
}

type NomErr<'a> = nom::error::Error<&'a [u8]>;

fn nom_atom(i: &[u8]) -> IResult<&[u8], &[u8], NomErr<'_>> {
    nom::bytes::complete::take_while1(is_atom_char)(i)
}

fn nom_digits(i: &[u8]) -> IResult<&[u8], &[u8], NomErr<'_>> {
    nom::character::complete::digit1(i)
}

impl<'o> P<'o> {
    /// A cursor over `src[..end]` (`end` is clamped to the buffer).
    pub fn new(src: &'o Bytes, end: usize, opts: &'o ParserOptions) -> Self {
        let data = src.get(..end).unwrap_or(src);
        Self {
            src,
            data,
            pos: 0,
            opts,
            depth: 0,
        }
    }

    /// Length of the message.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// A shared slice of the message (no copy).
    pub fn bytes(&self, r: Range<usize>) -> Bytes {
        if r.end <= self.data.len() && r.start <= r.end {
            self.src.slice(r)
        } else {
            Bytes::new()
        }
    }

    pub fn into_error(self, f: Fail, tag: Option<Tag>) -> ParseError {
        ParseError::Failed {
            position: f.pos,
            reason: f.reason,
            tag,
            consumed: Some(self.data.len()),
        }
    }

    #[inline]
    pub fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    #[inline]
    pub fn fail<T>(&self, reason: &'static str) -> R<T> {
        Err(Fail {
            pos: self.pos,
            reason,
        })
    }

    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub fn expect(&mut self, b: u8, reason: &'static str) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            self.fail(reason)
        }
    }

    #[inline]
    pub fn sp(&mut self) -> R<()> {
        self.expect(b' ', "expected a space")
    }

    pub fn crlf(&mut self) -> R<()> {
        if self.rest().starts_with(b"\r\n") {
            self.pos += 2;
            Ok(())
        } else {
            self.fail("expected CRLF")
        }
    }

    pub fn at_crlf(&self) -> bool {
        self.rest().starts_with(b"\r\n")
    }

    pub fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return self.fail("nesting too deep");
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub fn slice(&self, r: Range<usize>) -> &[u8] {
        self.data.get(r).unwrap_or(&[])
    }

    /// Case-insensitive match of `kw` at the cursor (no boundary check); consumes it.
    pub fn keyword(&mut self, kw: &[u8]) -> bool {
        let rest = self.rest();
        if rest.len() >= kw.len()
            && rest
                .get(..kw.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(kw))
        {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// Case-insensitive match of a whole word: `kw` not followed by an atom character.
    pub fn word(&mut self, kw: &[u8]) -> bool {
        let start = self.pos;
        if self.keyword(kw) {
            if self.peek().is_some_and(is_atom_char) {
                self.pos = start;
                return false;
            }
            return true;
        }
        false
    }

    /// The range of an atom at the cursor.
    pub fn atom_range(&mut self) -> R<Range<usize>> {
        let rest = self.rest();
        match nom_atom(rest) {
            Ok((remaining, _)) => {
                let start = self.pos;
                self.pos += rest.len() - remaining.len();
                Ok(start..self.pos)
            }
            Err(_) => self.fail("expected an atom"),
        }
    }

    pub fn atom(&mut self) -> R<Atom> {
        let r = self.atom_range()?;
        Atom::new(self.bytes(r)).or_else(|_| self.fail("expected an atom"))
    }

    pub fn number64(&mut self) -> R<u64> {
        let rest = self.rest();
        let Ok((remaining, digits)) = nom_digits(rest) else {
            return self.fail("expected a number");
        };
        let mut n: u64 = 0;
        for d in digits {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
            {
                Some(n) => n,
                None => return self.fail("number too large"),
            };
        }
        self.pos += rest.len() - remaining.len();
        Ok(n)
    }

    pub fn number(&mut self) -> R<u32> {
        let start = self.pos;
        let n = self.number64()?;
        u32::try_from(n).or(Err(Fail {
            pos: start,
            reason: "number too large",
        }))
    }

    pub fn nz_number(&mut self) -> R<NonZeroU32> {
        let start = self.pos;
        let n = self.number()?;
        NonZeroU32::new(n).ok_or(Fail {
            pos: start,
            reason: "number must not be 0",
        })
    }

    pub fn quoted(&mut self) -> R<Bytes> {
        self.expect(b'"', "expected a quoted string")?;
        let start = self.pos;
        let rest = self.rest();
        // One scalar pass: quoted strings are short, and this also rejects CR, LF and NUL.
        let stop = rest
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | b'\r' | b'\n' | 0));
        match stop {
            Some(i) if rest.get(i) == Some(&b'"') => {
                self.pos += i + 1;
                Ok(self.bytes(start..start + i))
            }
            _ => {
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        None | Some(b'\r' | b'\n' | 0) => {
                            return self.fail("unterminated quoted string");
                        }
                        Some(b'"') => {
                            self.pos += 1;
                            return Ok(Bytes::from(out));
                        }
                        Some(b'\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(c @ (b'"' | b'\\')) => {
                                    out.push(c);
                                    self.pos += 1;
                                }
                                _ => return self.fail("invalid escape in quoted string"),
                            }
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
        }
    }

    /// `{n}` / `{n+}` CRLF and the data (or `~{n}` when `binary_ok`). Returns the data and
    /// whether it was a binary literal.
    pub fn literal_any(&mut self, binary_ok: bool) -> R<(Bytes, bool)> {
        let binary = self.peek() == Some(b'~');
        if binary {
            if !binary_ok {
                return self.fail("binary literal not allowed here");
            }
            self.pos += 1;
        }
        self.expect(b'{', "expected a literal")?;
        let len = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "expected '}'")?;
        self.crlf()?;
        let len = usize::try_from(len).or(self.fail("literal too large"))?;
        let start = self.pos;
        let end = start.checked_add(len).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return self.fail("literal data missing");
        };
        let data = self.bytes(start..end);
        if !binary && memchr::memchr(0, &data).is_some() {
            return self.fail("NUL in a literal (use a binary literal)");
        }
        self.pos = end;
        Ok((data, binary))
    }

    pub fn literal(&mut self) -> R<Bytes> {
        self.literal_any(false).map(|(d, _)| d)
    }

    pub fn string(&mut self) -> R<Bytes> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => self.fail("expected a string"),
        }
    }

    pub fn is_nil(&mut self) -> bool {
        matches!(self.peek(), Some(b'N' | b'n')) && self.word(b"NIL")
    }

    pub fn nstring(&mut self) -> R<Option<Bytes>> {
        if self.peek() == Some(b'"') {
            return self.quoted().map(Some);
        }
        if self.is_nil() {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    pub fn astring(&mut self) -> R<Bytes> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let rest = self.rest();
                let n = rest.iter().take_while(|b| is_astring_char(**b)).count();
                if n == 0 {
                    return self.fail("expected an atom or a string");
                }
                let start = self.pos;
                self.pos += n;
                Ok(self.bytes(start..start + n))
            }
        }
    }

    fn decode_name(&self, raw: &[u8], at: usize) -> R<String> {
        if self.opts.utf8_mailboxes || !raw.is_ascii() {
            return match std::str::from_utf8(raw) {
                Ok(s) => Ok(s.to_owned()),
                Err(_) => Err(Fail {
                    pos: at,
                    reason: "mailbox name is not valid UTF-8",
                }),
            };
        }
        decode_mutf7(raw).or(Err(Fail {
            pos: at,
            reason: "invalid modified UTF-7 mailbox name",
        }))
    }

    pub fn mailbox(&mut self) -> R<Mailbox> {
        let at = self.pos;
        let raw = self.astring()?;
        let name = self.decode_name(&raw, at)?;
        Mailbox::new(name).or(Err(Fail {
            pos: at,
            reason: "invalid mailbox name",
        }))
    }

    pub fn list_mailbox(&mut self) -> R<ListPattern> {
        let at = self.pos;
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let rest = self.rest();
                let n = rest.iter().take_while(|b| is_list_char(**b)).count();
                if n == 0 {
                    return self.fail("expected a mailbox pattern");
                }
                let start = self.pos;
                self.pos += n;
                self.bytes(start..start + n)
            }
        };
        let name = self.decode_name(&raw, at)?;
        ListPattern::new(name).or(Err(Fail {
            pos: at,
            reason: "invalid mailbox pattern",
        }))
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Asterisk);
        }
        let start = self.pos;
        let n = self.number()?;
        SeqNum::new(n).or(Err(Fail {
            pos: start,
            reason: "sequence number must not be 0",
        }))
    }

    pub fn sequence_set(&mut self) -> R<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_num()?;
            let r = if self.eat(b':') {
                SeqRange::new(a, self.seq_num()?)
            } else {
                SeqRange::single(a)
            };
            ranges.push(r);
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet::Set(ranges))
    }

    /// `flag`, `flag-fetch` (with `\Recent`); `\*` only when `perm_ok` (returns `None`).
    pub fn flag_any(&mut self, perm_ok: bool) -> R<Option<Flag>> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return if perm_ok {
                    Ok(None)
                } else {
                    self.fail("'\\*' not allowed here")
                };
            }
            let a = self.atom()?;
            return Ok(Some(Flag::system(a)));
        }
        Ok(Some(Flag::Keyword(self.atom()?)))
    }

    pub fn flag(&mut self) -> R<Flag> {
        match self.flag_any(false)? {
            Some(f) => Ok(f),
            None => self.fail("expected a flag"),
        }
    }

    /// `"(" [flag *(SP flag)] ")"`
    pub fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.expect(b'(', "expected '('")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    fn month(&mut self) -> R<u8> {
        let rest = self.rest();
        let Some(m) = rest.get(..3) else {
            return self.fail("expected a month");
        };
        for (i, name) in crate::types::datetime_months().iter().enumerate() {
            if m.eq_ignore_ascii_case(name.as_bytes()) {
                self.pos += 3;
                return Ok(u8::try_from(i + 1).unwrap_or(1));
            }
        }
        self.fail("expected a month")
    }

    fn digits_n(&mut self, min: usize, max: usize) -> R<u32> {
        let rest = self.rest();
        let n = rest
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return self.fail("expected digits");
        }
        let mut v = 0u32;
        for d in rest.get(..n).unwrap_or(&[]) {
            v = v * 10 + u32::from(d - b'0');
        }
        self.pos += n;
        Ok(v)
    }

    fn date_text(&mut self) -> R<Date> {
        let at = self.pos;
        let day = self.digits_n(1, 2)?;
        self.expect(b'-', "expected '-' in date")?;
        let month = self.month()?;
        self.expect(b'-', "expected '-' in date")?;
        let year = self.digits_n(4, 4)?;
        Date::new(year as u16, month, day as u8).or(Err(Fail {
            pos: at,
            reason: "invalid date",
        }))
    }

    /// `date` = date-text / DQUOTE date-text DQUOTE
    pub fn date(&mut self) -> R<Date> {
        if self.eat(b'"') {
            let d = self.date_text()?;
            self.expect(b'"', "expected '\"' after date")?;
            Ok(d)
        } else {
            self.date_text()
        }
    }

    /// `date-time` = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    pub fn date_time(&mut self) -> R<DateTime> {
        let at = self.pos;
        self.expect(b'"', "expected a date-time")?;
        self.eat(b' ');
        let day = self.digits_n(1, 2)?;
        self.expect(b'-', "expected '-' in date")?;
        let month = self.month()?;
        self.expect(b'-', "expected '-' in date")?;
        let year = self.digits_n(4, 4)?;
        self.sp()?;
        let hour = self.digits_n(2, 2)?;
        self.expect(b':', "expected ':' in time")?;
        let minute = self.digits_n(2, 2)?;
        self.expect(b':', "expected ':' in time")?;
        let second = self.digits_n(2, 2)?;
        self.sp()?;
        let sign: i16 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return self.fail("expected a zone");
        };
        let zh = self.digits_n(2, 2)?;
        let zm = self.digits_n(2, 2)?;
        self.expect(b'"', "expected '\"' after date-time")?;
        if zm > 59 {
            return Err(Fail {
                pos: at,
                reason: "invalid zone",
            });
        }
        let zone = sign * (zh as i16 * 60 + zm as i16);
        let date = Date::new(year as u16, month, day as u8).or(Err(Fail {
            pos: at,
            reason: "invalid date",
        }))?;
        DateTime::new(date, hour as u8, minute as u8, second as u8, zone).or(Err(Fail {
            pos: at,
            reason: "invalid date-time",
        }))
    }

    /// `base64` up to the end of the line (not consumed: CRLF).
    pub fn base64_to_eol(&mut self) -> R<Bytes> {
        use base64::Engine as _;
        let rest = self.rest();
        let n = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
        let data = rest.get(..n).unwrap_or(&[]);
        match base64::engine::general_purpose::STANDARD.decode(data) {
            Ok(v) => {
                self.pos += n;
                Ok(Bytes::from(v))
            }
            Err(_) => self.fail("invalid base64"),
        }
    }

    /// Generic list helper: `"(" [item *(SP item)] ")"`.
    pub fn paren_list<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.expect(b'(', "expected '('")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    /// `section-part` = nz-number *("." nz-number), stopping before `.HEADER` etc.
    pub fn section_part(&mut self) -> R<Vec<NonZeroU32>> {
        let mut part = Vec::new();
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            part.push(self.nz_number()?);
            if self.peek() == Some(b'.')
                && self.data.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(part)
    }
}

/// An upper-cased copy of a short keyword on the stack (no allocation). Words longer than
/// the buffer come out empty, which matches no keyword.
pub(crate) struct Upper {
    buf: [u8; 32],
    len: usize,
}

impl Upper {
    pub fn new(src: &[u8]) -> Self {
        let mut buf = [0u8; 32];
        if src.len() > buf.len() {
            return Self { buf, len: 0 };
        }
        for (d, s) in buf.iter_mut().zip(src) {
            *d = s.to_ascii_uppercase();
        }
        Self {
            buf,
            len: src.len(),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}
