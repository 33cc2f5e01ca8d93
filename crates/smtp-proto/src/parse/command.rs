//! Command-line parser, written from the ABNF of RFC 5321 section 4.1 and the extension
//! RFCs (1870, 2033, 3030, 3207, 3461, 4954, 6152, 6531, 8689).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::Secret;
use crate::error::Error;
use crate::types::{
    Body, Command, ForwardPath, HelloVerb, MailParams, Mailbox, Notify, OriginalRecipient,
    RcptParams, Ret, ReversePath,
};

/// Parses one command line; `line` excludes the terminating CRLF.
///
/// Verbs and keywords are case-insensitive. Trailing spaces are ignored, and so are
/// spaces between `FROM:`/`TO:` and the path (a widespread deviation). Everything else
/// follows the RFC grammar: paths need their angle brackets, local parts are dot-strings or
/// quoted strings, domains are host names (U-labels allowed) or address literals.
///
/// Mailboxes are copied out of `line` (one allocation each); [`command_bytes`] parses the
/// same grammar with zero-copy mailboxes.
pub fn command(line: &[u8]) -> Result<Command, Error> {
    parse_command(line, None)
}

/// [`command`] over a shared buffer: the mailboxes of `MAIL` and `RCPT` are zero-copy
/// slices of `line` (a reference count, no allocation), so they keep the buffer alive as
/// long as they live. The server state machine frames its lines this way.
///
/// ```
/// use bytes::Bytes;
/// use smtp_proto::{Command, ForwardPath, parse};
///
/// let line = Bytes::from_static(b"RCPT TO:<alice@example.com>");
/// let Ok(Command::Rcpt { to: ForwardPath::Mailbox(m), .. }) = parse::command_bytes(&line) else {
///     panic!("not a RCPT");
/// };
/// assert_eq!(m.domain(), "example.com");
/// ```
pub fn command_bytes(line: &Bytes) -> Result<Command, Error> {
    parse_command(line, Some(line))
}

fn parse_command(line: &[u8], owner: Option<&Bytes>) -> Result<Command, Error> {
    let line = trim_end(line);
    // Branch-free word-at-a-time check first; find the position only on the error path.
    let ctl = |b: u8| (b < 0x20 && b != b'\t') | (b == 0x7f);
    if may_have_ctl(line) && line.iter().any(|&b| ctl(b)) {
        return Err(Error::Syntax {
            what: "control character",
            position: line.iter().position(|&b| ctl(b)).unwrap_or(0),
        });
    }
    let (verb, rest) = match memchr::memchr(b' ', line) {
        Some(i) => (
            line.get(..i).unwrap_or_default(),
            line.get(i + 1..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    let verb_off = line.len() - rest.len();
    let c = Cursor {
        line,
        pos: verb_off,
        owner,
    };
    let no_arg = |cmd: Command| {
        if verb.len() == line.len() {
            Ok(cmd)
        } else {
            Err(Error::Syntax {
                what: "unexpected argument",
                position: verb.len(),
            })
        }
    };
    match verb.len() {
        4 => {
            let mut v = [0u8; 4];
            v.copy_from_slice(verb);
            match u32::from_be_bytes(v) & 0xDFDF_DFDF {
                0x4D41_494C => mail(c),                                    // MAIL
                0x5243_5054 => rcpt(c),                                    // RCPT
                0x4441_5441 => no_arg(Command::Data),                      // DATA
                0x4244_4154 => bdat(c),                                    // BDAT
                0x4548_4C4F => hello(HelloVerb::Ehlo, rest),               // EHLO
                0x4845_4C4F => hello(HelloVerb::Helo, rest),               // HELO
                0x4C48_4C4F => hello(HelloVerb::Lhlo, rest),               // LHLO
                0x5253_4554 => no_arg(Command::Rset),                      // RSET
                0x5155_4954 => no_arg(Command::Quit),                      // QUIT
                0x4E4F_4F50 => Ok(Command::Noop(opt_string(line, rest)?)), // NOOP
                0x4845_4C50 => Ok(Command::Help(opt_string(line, rest)?)), // HELP
                0x5652_4659 => Ok(Command::Vrfy(req_string(line, rest, "VRFY argument")?)),
                0x4558_504E => Ok(Command::Expn(req_string(line, rest, "EXPN argument")?)),
                0x4155_5448 => auth(c), // AUTH
                _ => Err(Error::UnknownCommand),
            }
        }
        8 if verb.eq_ignore_ascii_case(b"STARTTLS") => no_arg(Command::StartTls),
        _ => Err(Error::UnknownCommand),
    }
}

/// False when `line` surely has no octet below 0x20 and no DEL (0x7F); true when it may
/// (a TAB, which is allowed, also answers true). Eight octets at a time: for a word `x`,
/// `(x - 0x01..01 * n) & !x & 0x80..80` is non-zero exactly when some octet is below `n`.
fn may_have_ctl(line: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |x: u64| {
        let del = x ^ (ONES * 0x7f);
        (x.wrapping_sub(ONES * 0x20) & !x & HIGH) | (del.wrapping_sub(ONES) & !del & HIGH)
    };
    let mut chunks = line.chunks_exact(8);
    let mut any = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        any |= word(u64::from_le_bytes(w));
    }
    // The tail, padded with spaces (which are neither below 0x20 nor DEL).
    let tail = chunks.remainder();
    let mut w = [b' '; 8];
    if let Some(dst) = w.get_mut(..tail.len()) {
        dst.copy_from_slice(tail);
    }
    any |= word(u64::from_le_bytes(w));
    any != 0
}

/// Frames the next line: returns it without its line ending (CRLF, or a bare LF) and the
/// input after it, or `None` when no LF has arrived yet.
pub fn split_line(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b'\n', input)?;
    let line = input.get(..i)?;
    let rest = input.get(i + 1..)?;
    Some((line.strip_suffix(b"\r").unwrap_or(line), rest))
}

fn trim_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    line
}

fn to_string(bytes: &[u8], what: &'static str, position: usize) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|e| Error::Syntax {
        what,
        position: position + e.utf8_error().valid_up_to(),
    })
}

fn opt_string(line: &[u8], rest: &[u8]) -> Result<Option<String>, Error> {
    if rest.is_empty() {
        return Ok(None);
    }
    to_string(rest, "argument", line.len() - rest.len()).map(Some)
}

fn req_string(line: &[u8], rest: &[u8], what: &'static str) -> Result<String, Error> {
    if rest.is_empty() {
        return Err(Error::Syntax {
            what,
            position: line.len(),
        });
    }
    to_string(rest, what, line.len() - rest.len())
}

fn hello(verb: HelloVerb, rest: &[u8]) -> Result<Command, Error> {
    let start = verb.as_str().len() + 1;
    let arg = {
        let mut a = rest;
        while let [b' ', r @ ..] = a {
            a = r;
        }
        a
    };
    if arg.is_empty() || arg.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(Error::Syntax {
            what: "domain",
            position: start,
        });
    }
    Ok(Command::Hello {
        verb,
        domain: to_string(arg, "domain", start)?,
    })
}

/// A position in the line, for the path and parameter grammar.
struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
    /// The buffer `line` is a prefix of, when values may be zero-copy slices of it.
    owner: Option<&'a Bytes>,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.line.get(self.pos..).unwrap_or_default()
    }
    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_ci(&mut self, word: &[u8]) -> bool {
        match self.rest().get(..word.len()) {
            Some(w) if w.eq_ignore_ascii_case(word) => {
                self.pos += word.len();
                true
            }
            _ => false,
        }
    }
    fn syntax(&self, what: &'static str) -> Error {
        Error::Syntax {
            what,
            position: self.pos,
        }
    }
    fn bad_address(&self) -> Error {
        Error::InvalidAddress { position: self.pos }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }
}

/// Octet classes for the address grammar, one table lookup per octet.
const ATEXT: u8 = 1;
const LDH: u8 = 2;
const ATEXT_DOT: u8 = 4;
const LDH_DOT: u8 = 8;

// Compile-time table construction: `i < 256` is the loop bound.
#[allow(clippy::indexing_slicing)]
const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let special = matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        );
        // RFC 6531: UTF-8 octets are allowed in atext and in U-labels.
        let mut c = 0;
        if alnum || special || b >= 0x80 {
            c |= ATEXT;
        }
        if alnum || b == b'-' || b >= 0x80 {
            c |= LDH;
        }
        if b == b'.' {
            c |= ATEXT_DOT | LDH_DOT;
        }
        if c & ATEXT != 0 {
            c |= ATEXT_DOT;
        }
        if c & LDH != 0 {
            c |= LDH_DOT;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )`
///
/// Each octet is looked at once: the scans note whether any octet is non-ASCII, and only
/// then is the address checked as UTF-8.
fn mailbox(c: &mut Cursor<'_>) -> Result<Mailbox, Error> {
    let start = c.pos;
    let mut high = 0u8;
    if c.peek() == Some(b'"') {
        c.pos += 1;
        loop {
            match c.peek() {
                Some(b'"') => {
                    c.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    c.pos += 1;
                    match c.peek() {
                        Some(32..=126) => c.pos += 1,
                        _ => return Err(c.bad_address()),
                    }
                }
                Some(b @ (32..=33 | 35..=91 | 93..=126 | 0x80..)) => {
                    high |= b;
                    c.pos += 1;
                }
                _ => return Err(c.bad_address()),
            }
        }
    } else {
        // Dot-string = Atom *("." Atom). Fast path: the local part ends at the first `@`;
        // when every octet before it is atext or a dot and the dots are well placed, the
        // precise scan below would stop there too.
        let rest = c.rest();
        if let Some((n, h)) = dot_string_fast(rest) {
            c.pos += n;
            high |= h;
        } else {
            dot_string(c, &mut high)?;
        }
    }
    let local_end = c.pos;
    if local_end - start > 64 * 4 || !c.eat(b'@') {
        return Err(c.bad_address());
    }
    high |= match domain_fast(c.rest()) {
        Some((n, h)) => {
            c.pos += n;
            h
        }
        None => domain_or_literal(c)?,
    };
    let whole = c.line.get(start..c.pos).unwrap_or_default();
    if high >= 0x80 {
        std::str::from_utf8(whole).map_err(|e| Error::InvalidAddress {
            position: start + e.valid_up_to(),
        })?;
    }
    let end = c.pos;
    Ok(Mailbox::from_wire(whole, local_end - start, || {
        match c.owner {
            Some(owner) => owner.slice(start..end),
            None => Bytes::copy_from_slice(whole),
        }
    }))
}

/// The AND of `class` and the OR of the octets over `s` (one loop), and whether any
/// adjacent pair is bad (a separate branch-free fold, which the compiler vectorises).
fn fold_checks(s: &[u8], bad_pair: impl Fn(u8, u8) -> u8) -> (u8, u8, bool) {
    let mut and = 0xFF;
    let mut or = 0;
    for &b in s {
        and &= class(b);
        or |= b;
    }
    let pair = s
        .iter()
        .zip(s.get(1..).unwrap_or_default())
        .fold(0u8, |acc, (&a, &b)| acc | bad_pair(a, b));
    (and, or, pair != 0)
}

/// The dot-string ending at the first `@` of `rest`, if it is valid: its length and the
/// OR of its octets. `None` sends the caller to the precise scan.
fn dot_string_fast(rest: &[u8]) -> Option<(usize, u8)> {
    let n = memchr::memchr(b'@', rest)?;
    let s = rest.get(..n)?;
    let (and, or, pair) = fold_checks(s, |a, b| u8::from(a == b'.') & u8::from(b == b'.'));
    let ok = and & ATEXT_DOT != 0
        && !pair
        && s.first().is_some_and(|&b| b != b'.')
        && s.last().is_some_and(|&b| b != b'.');
    ok.then_some((n, or))
}

/// The domain ending at the first `>` of `rest`, if it is a valid name of at most 63
/// octets: its length and the OR of its octets. `None` sends the caller to the precise
/// scan (address literals, long names, errors).
fn domain_fast(rest: &[u8]) -> Option<(usize, u8)> {
    let n = memchr::memchr(b'>', rest)?;
    let d = rest.get(..n).filter(|d| d.len() <= 63)?;
    let (and, or, pair) = fold_checks(d, |a, b| {
        let (a_dot, b_dot) = (u8::from(a == b'.'), u8::from(b == b'.'));
        (a_dot & (b_dot | u8::from(b == b'-'))) | (u8::from(a == b'-') & b_dot)
    });
    let edge = |b: &u8| *b != b'.' && *b != b'-';
    let ok =
        and & LDH_DOT != 0 && !pair && d.first().is_some_and(edge) && d.last().is_some_and(edge);
    ok.then_some((n, or))
}

/// The precise dot-string scan, with the error positions of the grammar.
fn dot_string(c: &mut Cursor<'_>, high: &mut u8) -> Result<(), Error> {
    {
        // One scan that also enforces the dot rules (no leading, trailing or doubled dot).
        let rest = c.rest();
        let mut after_dot = true;
        let mut n = 0;
        for &b in rest {
            if class(b) & ATEXT_DOT == 0 {
                break;
            }
            let dot = b == b'.';
            if dot && after_dot {
                return Err(c.bad_address());
            }
            after_dot = dot;
            *high |= b;
            n += 1;
        }
        if after_dot {
            return Err(c.bad_address());
        }
        c.pos += n;
    }
    Ok(())
}

/// `Domain = sub-domain *("." sub-domain)` or `address-literal = "[" ... "]"`; returns the
/// OR of the octets (so the caller knows whether any is non-ASCII).
fn domain_or_literal(c: &mut Cursor<'_>) -> Result<u8, Error> {
    if c.eat(b'[') {
        let start = c.pos;
        while matches!(c.peek(), Some(33..=90 | 94..=126)) {
            c.pos += 1;
        }
        let inner = c.line.get(start..c.pos).unwrap_or_default();
        if !c.eat(b']') || !valid_literal(inner) {
            return Err(Error::InvalidAddress { position: start });
        }
        return Ok(0);
    }
    domain(c)
}

/// `sub-domain = Let-dig [Ldh-str]`, U-labels (RFC 6531) being any UTF-8 octets: one scan
/// that checks the octets, the label lengths (1 to 63) and the hyphen rules. Returns the OR
/// of the octets.
fn domain(c: &mut Cursor<'_>) -> Result<u8, Error> {
    let start = c.pos;
    let rest = c.rest();
    let mut label_start = start;
    let mut label_len = 0usize;
    let mut prev = b'.';
    let mut high = 0u8;
    let mut n = 0;
    for &b in rest {
        if class(b) & LDH_DOT == 0 {
            break;
        }
        if b == b'.' {
            if label_len == 0 || prev == b'-' {
                return Err(Error::InvalidAddress {
                    position: label_start,
                });
            }
            label_len = 0;
            label_start = start + n + 1;
        } else {
            if (label_len == 0 && b == b'-') || label_len == 63 {
                return Err(Error::InvalidAddress {
                    position: label_start,
                });
            }
            label_len += 1;
        }
        prev = b;
        high |= b;
        n += 1;
    }
    if label_len == 0 || prev == b'-' {
        return Err(Error::InvalidAddress {
            position: label_start,
        });
    }
    if n > 255 {
        return Err(Error::InvalidAddress { position: start });
    }
    c.pos += n;
    Ok(high)
}

fn valid_literal(inner: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(inner) else {
        return false;
    };
    if let Some(v6) = s.get(..5).filter(|p| p.eq_ignore_ascii_case("IPv6:")) {
        let _ = v6;
        return s
            .get(5..)
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    match s.split_once(':') {
        // General-address-literal = Standard-tagged-literal ":" 1*dcontent
        Some((tag, content)) => {
            !tag.is_empty()
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !tag.ends_with('-')
                && !content.is_empty()
        }
        None => s.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"`; the source route is accepted and dropped.
fn path(c: &mut Cursor<'_>) -> Result<Mailbox, Error> {
    if !c.eat(b'<') {
        return Err(c.bad_address());
    }
    if c.peek() == Some(b'@') {
        // A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain
        loop {
            if !c.eat(b'@') {
                return Err(c.bad_address());
            }
            domain(c)?;
            if !c.eat(b',') {
                break;
            }
        }
        if !c.eat(b':') {
            return Err(c.bad_address());
        }
    }
    let m = mailbox(c)?;
    if !c.eat(b'>') {
        return Err(c.bad_address());
    }
    Ok(m)
}

fn skip_spaces(c: &mut Cursor<'_>) {
    while c.eat(b' ') {}
}

fn mail(mut c: Cursor<'_>) -> Result<Command, Error> {
    if !c.eat_ci(b"FROM:") {
        return Err(c.syntax("expected FROM:"));
    }
    skip_spaces(&mut c);
    let from = if c.rest().starts_with(b"<>") {
        c.pos += 2;
        ReversePath::Null
    } else {
        ReversePath::Mailbox(path(&mut c)?)
    };
    let mut params = MailParams::default();
    for_each_param(&mut c, |c, key, value, pos| {
        let bad = || Error::InvalidParameter {
            keyword: String::from_utf8_lossy(key).to_ascii_uppercase(),
            position: pos,
        };
        let mut kb = [0u8; 16];
        let upper = upper_key(key, &mut kb);
        match (upper, value) {
            (b"SIZE", Some(v)) if params.size.is_none() => {
                params.size = Some(number(v).ok_or_else(bad)?);
            }
            (b"BODY", Some(v)) if params.body.is_none() => {
                params.body = Some(if v.eq_ignore_ascii_case(b"7BIT") {
                    Body::SevenBit
                } else if v.eq_ignore_ascii_case(b"8BITMIME") {
                    Body::EightBitMime
                } else if v.eq_ignore_ascii_case(b"BINARYMIME") {
                    Body::BinaryMime
                } else {
                    return Err(bad());
                });
            }
            (b"SMTPUTF8", None) if !params.smtputf8 => params.smtputf8 = true,
            (b"REQUIRETLS", None) if !params.requiretls => params.requiretls = true,
            (b"RET", Some(v)) if params.ret.is_none() => {
                params.ret = Some(if v.eq_ignore_ascii_case(b"FULL") {
                    Ret::Full
                } else if v.eq_ignore_ascii_case(b"HDRS") {
                    Ret::Hdrs
                } else {
                    return Err(bad());
                });
            }
            (b"ENVID", Some(v)) if params.envid.is_none() => {
                params.envid = Some(xtext_decode(v).ok_or_else(bad)?);
            }
            (b"AUTH", Some(v)) if params.auth.is_none() => {
                params.auth = Some(xtext_decode(v).ok_or_else(bad)?);
            }
            (b"SIZE" | b"BODY" | b"SMTPUTF8" | b"REQUIRETLS" | b"RET" | b"ENVID" | b"AUTH", _) => {
                return Err(bad());
            }
            _ => {
                let _ = c;
                params.other.push(other_param(key, value).ok_or_else(bad)?);
            }
        }
        Ok(())
    })?;
    Ok(Command::Mail { from, params })
}

fn rcpt(mut c: Cursor<'_>) -> Result<Command, Error> {
    if !c.eat_ci(b"TO:") {
        return Err(c.syntax("expected TO:"));
    }
    skip_spaces(&mut c);
    let to = if c
        .rest()
        .get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"<Postmaster>"))
    {
        c.pos += 12;
        ForwardPath::Postmaster
    } else {
        ForwardPath::Mailbox(path(&mut c)?)
    };
    let mut params = RcptParams::default();
    for_each_param(&mut c, |_, key, value, pos| {
        let bad = || Error::InvalidParameter {
            keyword: String::from_utf8_lossy(key).to_ascii_uppercase(),
            position: pos,
        };
        let mut kb = [0u8; 16];
        let upper = upper_key(key, &mut kb);
        match (upper, value) {
            (b"NOTIFY", Some(v)) if params.notify.is_none() => {
                let mut n = Notify::default();
                for item in v.split(|&b| b == b',') {
                    let flag = if item.eq_ignore_ascii_case(b"NEVER") {
                        &mut n.never
                    } else if item.eq_ignore_ascii_case(b"SUCCESS") {
                        &mut n.success
                    } else if item.eq_ignore_ascii_case(b"FAILURE") {
                        &mut n.failure
                    } else if item.eq_ignore_ascii_case(b"DELAY") {
                        &mut n.delay
                    } else {
                        return Err(bad());
                    };
                    if *flag {
                        return Err(bad());
                    }
                    *flag = true;
                }
                if n.never && (n.success || n.failure || n.delay) {
                    return Err(bad());
                }
                params.notify = Some(n);
            }
            (b"ORCPT", Some(v)) if params.orcpt.is_none() => {
                let semi = memchr::memchr(b';', v).ok_or_else(bad)?;
                let (t, a) = (
                    v.get(..semi).unwrap_or_default(),
                    v.get(semi + 1..).unwrap_or_default(),
                );
                if t.is_empty() || !t.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(bad());
                }
                params.orcpt = Some(OriginalRecipient {
                    addr_type: String::from_utf8_lossy(t).into_owned(),
                    address: xtext_decode(a).ok_or_else(bad)?,
                });
            }
            (b"NOTIFY" | b"ORCPT", _) => return Err(bad()),
            _ => params.other.push(other_param(key, value).ok_or_else(bad)?),
        }
        Ok(())
    })?;
    Ok(Command::Rcpt { to, params })
}

/// The keyword upper-cased into `buf` without allocating; longer keywords (never a known
/// one) give an empty slice.
fn upper_key<'b>(key: &[u8], buf: &'b mut [u8; 16]) -> &'b [u8] {
    match buf.get_mut(..key.len()) {
        Some(dst) => {
            dst.copy_from_slice(key);
            dst.make_ascii_uppercase();
            dst
        }
        None => b"",
    }
}

fn other_param(key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<String>)> {
    let k = String::from_utf8(key.to_ascii_uppercase()).ok()?;
    let v = match value {
        Some(v) => Some(String::from_utf8(v.to_vec()).ok()?),
        None => None,
    };
    Some((k, v))
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)`,
/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`.
fn for_each_param<'a>(
    c: &mut Cursor<'a>,
    mut f: impl FnMut(&mut Cursor<'a>, &'a [u8], Option<&'a [u8]>, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    loop {
        if c.at_end() {
            return Ok(());
        }
        if !c.eat(b' ') {
            return Err(c.syntax("expected SP before parameter"));
        }
        skip_spaces(c);
        if c.at_end() {
            return Ok(());
        }
        let start = c.pos;
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        if !c.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            return Err(c.syntax("parameter keyword"));
        }
        while c
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            c.pos += 1;
        }
        let key = c.line.get(start..c.pos).unwrap_or_default();
        let value = if c.eat(b'=') {
            // esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 allowed by RFC 6531
            let vstart = c.pos;
            while matches!(c.peek(), Some(33..=60 | 62..=126 | 0x80..)) {
                c.pos += 1;
            }
            if c.pos == vstart {
                return Err(c.syntax("parameter value"));
            }
            Some(c.line.get(vstart..c.pos).unwrap_or_default())
        } else {
            None
        };
        if !(c.at_end() || c.peek() == Some(b' ')) {
            return Err(c.syntax("parameter"));
        }
        f(c, key, value, start)?;
    }
}

fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Decodes RFC 3461 xtext (`+XX` escapes); `None` if malformed or not UTF-8.
pub fn xtext_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = v.iter();
    while let Some(&b) = i.next() {
        match b {
            b'+' => {
                let h = hex(*i.next()?)?;
                let l = hex(*i.next()?)?;
                out.push(h << 4 | l);
            }
            b'=' => return None,
            33..=126 | 0x80.. => out.push(b),
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn bdat(mut c: Cursor<'_>) -> Result<Command, Error> {
    let start = c.pos;
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.pos += 1;
    }
    let size = number(c.line.get(start..c.pos).unwrap_or_default())
        .ok_or_else(|| c.syntax("chunk size"))?;
    let last = if c.at_end() {
        false
    } else if c.eat(b' ') && c.eat_ci(b"LAST") && c.at_end() {
        true
    } else {
        return Err(c.syntax("expected LAST"));
    };
    Ok(Command::Bdat { size, last })
}

fn auth(mut c: Cursor<'_>) -> Result<Command, Error> {
    // sasl-mech = 1*20mech-char, mech-char = UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE
    let start = c.pos;
    while c
        .peek()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        c.pos += 1;
    }
    let mech = c.line.get(start..c.pos).unwrap_or_default();
    if mech.is_empty() || mech.len() > 20 {
        return Err(c.syntax("SASL mechanism"));
    }
    let mechanism = std::str::from_utf8(mech)
        .map_err(|_| c.syntax("SASL mechanism"))?
        .to_ascii_uppercase();
    let initial_response = if c.at_end() {
        None
    } else if c.eat(b' ') {
        Some(Secret::new(decode_sasl(c.rest())?))
    } else {
        return Err(c.syntax("SASL mechanism"));
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

/// Decodes one SASL response line: base64, or `=` for an empty response.
pub fn decode_sasl(line: &[u8]) -> Result<Vec<u8>, Error> {
    let line = trim_end(line);
    if line == b"=" {
        return Ok(Vec::new());
    }
    if line.is_empty() {
        return Err(Error::InvalidBase64);
    }
    STANDARD.decode(line).map_err(|_| Error::InvalidBase64)
}

#[cfg(test)]
mod perf_tests {
    use super::*;
    use proptest::prelude::*;

    const LINES: &[&[u8]] = &[
        b"MAIL FROM:<newsletter-bounces+alice=example.com@lists.example.org> SIZE=48213",
        b"MAIL FROM:<SRS0=HHH=TT=example.org=a-very-long-local-part-indeed@forwarder.example.net>",
        b"RCPT TO:<\"john doe\"@example.com> NOTIFY=SUCCESS,FAILURE",
        b"RCPT TO:<j\xc3\xb6rg@b\xc3\xbccher.example>",
        b"RCPT TO:<@relay.example:user@[192.0.2.1]>",
        b"RCPT TO:<a..b@example.com>",
        b"RCPT TO:<a@-example.com>",
        b"RCPT TO:<a@example-.com>",
        b"RCPT TO:<a@ex..ample.com>",
        b"RCPT TO:<a\xff@example.com>",
        b"EHLO mail.example.org",
    ];

    #[test]
    fn shared_and_copying_parsers_agree() {
        for line in LINES {
            let shared = Bytes::copy_from_slice(line);
            assert_eq!(command(line), command_bytes(&shared), "{line:?}");
        }
    }

    #[test]
    fn long_and_short_mailboxes_behave_the_same() {
        let long_local = "l".repeat(70);
        for local in ["alice", long_local.as_str()] {
            let line = format!("RCPT TO:<{local}@example.com>");
            let built = Mailbox::new(local, "example.com");
            for cmd in [
                command(line.as_bytes()),
                command_bytes(&Bytes::from(line.clone())),
            ] {
                let Ok(Command::Rcpt {
                    to: ForwardPath::Mailbox(m),
                    ..
                }) = cmd
                else {
                    panic!("{line}");
                };
                assert_eq!(m, built);
                assert_eq!(m.local_part(), local);
                assert_eq!(m.domain(), "example.com");
                assert_eq!(m.as_str(), format!("{local}@example.com"));
                assert!(!m.is_utf8());
            }
        }
    }

    #[test]
    fn domain_rules_report_the_label_position() {
        for (line, pos) in [
            (&b"RCPT TO:<a@-x.com>"[..], 11),
            (b"RCPT TO:<a@x-.com>", 11),
            (b"RCPT TO:<a@x..com>", 13),
            (b"RCPT TO:<a@x.com.>", 17),
            (b"RCPT TO:<a@>", 11),
        ] {
            assert_eq!(
                command(line),
                Err(Error::InvalidAddress { position: pos }),
                "{line:?}"
            );
        }
        let label = "a".repeat(63);
        let ok = format!("RCPT TO:<a@{label}.com>");
        assert!(command(ok.as_bytes()).is_ok());
        let too_long = format!("RCPT TO:<a@{label}a.com>");
        assert_eq!(
            command(too_long.as_bytes()),
            Err(Error::InvalidAddress { position: 11 })
        );
    }

    #[test]
    fn may_have_ctl_never_misses_one() {
        for len in 0..20usize {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let is_ctl = b < 0x20 || b == 0x7f;
                    if is_ctl {
                        assert!(may_have_ctl(&v), "{b:#x} at {pos} of {len}");
                    } else {
                        assert!(!may_have_ctl(&v), "{b:#x} at {pos} of {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn split_line_finds_the_first_lf_near_and_far() {
        for len in 0..200usize {
            let mut v = vec![b'x'; len];
            assert_eq!(split_line(&v), None, "{len}");
            v.extend_from_slice(b"\r\nrest\n");
            let (line, rest) = split_line(&v).unwrap();
            assert_eq!(line, &vec![b'x'; len][..], "{len}");
            assert_eq!(rest, b"rest\n", "{len}");
            v[len] = b'y';
            let (line, rest) = split_line(&v).unwrap();
            assert_eq!(line.len(), len + 1, "{len}");
            assert_eq!(rest, b"rest\n", "{len}");
        }
    }

    fn cursor(line: &[u8]) -> Cursor<'_> {
        Cursor {
            line,
            pos: 0,
            owner: None,
        }
    }

    proptest! {
        #[test]
        fn fast_paths_agree_with_the_precise_scans(
            s in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'.'), Just(b'-'), Just(b'@'), Just(b'>'), Just(b'!'), Just(0xc3u8)],
                0..90,
            ),
        ) {
            if let Some((n, _)) = dot_string_fast(&s) {
                let mut c = cursor(&s);
                let mut high = 0;
                prop_assert!(dot_string(&mut c, &mut high).is_ok());
                prop_assert_eq!(c.pos, n);
            }
            if let Some((n, _)) = domain_fast(&s) {
                let mut c = cursor(&s);
                prop_assert!(domain(&mut c).is_ok());
                prop_assert_eq!(c.pos, n);
            }
        }

        #[test]
        fn shared_and_copying_parsers_agree_on_any_line(
            verb in prop_oneof![Just("MAIL FROM:<"), Just("RCPT TO:<")],
            addr in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'.'), Just(b'@'), Just(b'-'), Just(b'"'), Just(0xc3u8), Just(0xa9u8)],
                0..80,
            ),
        ) {
            let mut line = verb.as_bytes().to_vec();
            line.extend_from_slice(&addr);
            line.push(b'>');
            let shared = Bytes::from(line.clone());
            prop_assert_eq!(command(&line), command_bytes(&shared));
        }
    }
}
