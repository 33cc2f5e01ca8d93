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
/// Mailboxes of up to 60 octets are stored inside the [`crate::Mailbox`] value; longer
/// ones are copied out of `line` (one allocation each). [`command_bytes`] and
/// [`command_in`] parse the same grammar and make the long ones zero-copy slices.
pub fn command(line: &[u8]) -> Result<Command, Error> {
    parse_command(line, None)
}

/// [`command`] over a shared buffer: the mailboxes of `MAIL` and `RCPT` longer than 60
/// octets are zero-copy slices of `line` (a reference count, no allocation), so they keep
/// the buffer alive as long as they live. The server state machine frames its lines this
/// way.
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

/// [`command`] for a `line` that lies inside the shared buffer `buf` (as the lines that
/// [`split_line`] frames from one read buffer do): a mailbox longer than 60 octets becomes
/// a zero-copy slice of `buf`, shorter ones are stored inline, so no reference count is
/// touched for the line itself. If `line` is not inside `buf`, mailboxes are copied.
///
/// ```
/// use bytes::Bytes;
/// use smtp_proto::{Command, parse};
///
/// let buf = Bytes::from_static(b"NOOP\r\nRCPT TO:<alice@example.com>\r\n");
/// let mut rest = &buf[..];
/// let mut verbs = Vec::new();
/// while let Some((line, tail)) = parse::split_line(rest) {
///     verbs.push(parse::command_in(&buf, line).unwrap().verb());
///     rest = tail;
/// }
/// assert_eq!(verbs, ["NOOP", "RCPT"]);
/// ```
pub fn command_in(buf: &Bytes, line: &[u8]) -> Result<Command, Error> {
    parse_command(line, Some(buf))
}

/// Whether `part` lies inside `buf` (so that `Bytes::slice_ref` accepts it).
fn contains(buf: &Bytes, part: &[u8]) -> bool {
    let (b, p) = (buf.as_ptr() as usize, part.as_ptr() as usize);
    p >= b && p + part.len() <= b + buf.len()
}

#[inline]
fn parse_command(line: &[u8], owner: Option<&Bytes>) -> Result<Command, Error> {
    let line = trim_end(line);
    // Branch-free word-at-a-time check first; find the position only on the error path.
    // When it answers false, the line has no TAB either (which `hello` relies on).
    let maybe_ctl = may_have_ctl(line);
    let ctl = |b: u8| (b < 0x20 && b != b'\t') | (b == 0x7f);
    if maybe_ctl && line.iter().any(|&b| ctl(b)) {
        return Err(Error::Syntax {
            what: "control character",
            position: line.iter().position(|&b| ctl(b)).unwrap_or(0),
        });
    }
    // The verb is the octets before the first SP. Every verb but STARTTLS has four
    // letters, so the first SP is looked for only at offsets 4 and 8: a verb candidate of
    // four octets that itself holds a SP matches no verb below (SP folds to 0x00), which is
    // the `UnknownCommand` the verb up to an earlier SP would give too.
    let rest_at = |n: usize| match line.get(n) {
        None if line.len() == n => Some(n),
        Some(b' ') => Some(n + 1),
        _ => None,
    };
    if let (Some(&[a, b, c3, d]), Some(rest_start)) = (line.first_chunk::<4>(), rest_at(4)) {
        let rest = line.get(rest_start..).unwrap_or_default();
        let c = Cursor {
            line,
            pos: rest_start,
            owner,
        };
        let no_arg = line.len() == 4;
        // (Each `Ok` is built in place: passing a `Command` through a helper costs a
        // 168-octet `memcpy`.)
        return match u32::from_be_bytes([a, b, c3, d]) & 0xDFDF_DFDF {
            0x4D41_494C => mail(c),                                 // MAIL
            0x5243_5054 => rcpt(c),                                 // RCPT
            0x4441_5441 if no_arg => Ok(Command::Data),             // DATA
            0x4244_4154 => bdat(c),                                 // BDAT
            0x4548_4C4F => hello(HelloVerb::Ehlo, rest, maybe_ctl), // EHLO
            0x4845_4C4F => hello(HelloVerb::Helo, rest, maybe_ctl), // HELO
            0x4C48_4C4F => hello(HelloVerb::Lhlo, rest, maybe_ctl), // LHLO
            0x5253_4554 if no_arg => Ok(Command::Rset),             // RSET
            0x5155_4954 if no_arg => Ok(Command::Quit),             // QUIT
            0x4441_5441 | 0x5253_4554 | 0x5155_4954 => Err(Error::Syntax {
                what: "unexpected argument",
                position: 4,
            }),
            0x4E4F_4F50 => Ok(Command::Noop(opt_string(line, rest)?)), // NOOP
            0x4845_4C50 => Ok(Command::Help(opt_string(line, rest)?)), // HELP
            0x5652_4659 => Ok(Command::Vrfy(req_string(line, rest, "VRFY argument")?)),
            0x4558_504E => Ok(Command::Expn(req_string(line, rest, "EXPN argument")?)),
            0x4155_5448 => auth(c), // AUTH
            _ => Err(Error::UnknownCommand),
        };
    }
    match (line.get(..8), rest_at(8)) {
        (Some(verb), Some(_)) if verb.eq_ignore_ascii_case(b"STARTTLS") => {
            if line.len() == 8 {
                Ok(Command::StartTls)
            } else {
                Err(Error::Syntax {
                    what: "unexpected argument",
                    position: 8,
                })
            }
        }
        _ => Err(Error::UnknownCommand),
    }
}

/// The SWAR "has a zero octet" test: non-zero when some octet of `x` is zero, and then
/// its lowest set bit is in the lowest zero octet (a borrow can only mark octets above it).
#[inline]
fn zero_octets(x: u64) -> u64 {
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080
}

/// False when `line` surely has no octet below 0x20 and no DEL (0x7F); true when it may
/// (a TAB, which is allowed, also answers true). Eight octets at a time: for a word `x`,
/// `(x - 0x01..01 * n) & !x & 0x80..80` is non-zero exactly when some octet is below `n`.
#[inline]
fn may_have_ctl(line: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |x: u64| (x.wrapping_sub(ONES * 0x20) & !x & HIGH) | zero_octets(x ^ (ONES * 0x7f));
    let mut chunks = line.chunks_exact(8);
    let mut any = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        any |= word(u64::from_le_bytes(w));
    }
    // The tail: the last eight octets again (overlapping is harmless), or, on a line
    // shorter than that, overlapping halves or single octets (no variable-length copy).
    if !chunks.remainder().is_empty() {
        match (
            line.last_chunk::<8>(),
            line.first_chunk::<4>(),
            line.last_chunk::<4>(),
        ) {
            (Some(w), _, _) => any |= word(u64::from_le_bytes(*w)),
            // Four to seven octets (`QUIT`, `DATA`...): two overlapping halves of a word.
            (None, Some(a), Some(b)) => {
                let (a, b) = (u32::from_le_bytes(*a), u32::from_le_bytes(*b));
                any |= word(u64::from(a) | u64::from(b) << 32);
            }
            _ => any |= u64::from(line.iter().any(|&b| b < 0x20 || b == 0x7f)),
        }
    }
    any != 0
}

/// The offset of the first LF in `input`. Command lines are short: the first 64 octets
/// are searched eight at a time in registers (a `memchr` call costs more than that on a
/// line of a few dozen octets), the rest with `memchr`.
#[inline]
fn find_lf(input: &[u8]) -> Option<usize> {
    const LF: u64 = 0x0A0A_0A0A_0A0A_0A0A;
    let mut i = 0;
    while let Some(w) = input.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let hit = zero_octets(u64::from_le_bytes(*w) ^ LF);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
        if i == 64 {
            return memchr::memchr(b'\n', input.get(i..)?).map(|j| i + j);
        }
    }
    // Fewer than eight octets left: the last eight again (an LF among the octets already
    // searched would have been found), or one at a time on a short input.
    match input.last_chunk::<8>() {
        Some(w) => {
            let hit = zero_octets(u64::from_le_bytes(*w) ^ LF);
            (hit != 0).then(|| input.len() - 8 + (hit.trailing_zeros() / 8) as usize)
        }
        None => input.iter().position(|&b| b == b'\n'),
    }
}

/// Frames the next line: returns it without its line ending (CRLF, or a bare LF) and the
/// input after it, or `None` when no LF has arrived yet.
#[inline]
pub fn split_line(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = find_lf(input)?;
    let line = input.get(..i)?;
    let rest = input.get(i + 1..)?;
    Some((line.strip_suffix(b"\r").unwrap_or(line), rest))
}

#[inline]
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

fn hello(verb: HelloVerb, rest: &[u8], maybe_tab: bool) -> Result<Command, Error> {
    let start = verb.as_str().len() + 1;
    let arg = {
        let mut a = rest;
        while let [b' ', r @ ..] = a {
            a = r;
        }
        a
    };
    // The line has no other control octet (checked first); a TAB only when `maybe_tab`.
    if arg.is_empty() || (maybe_tab && arg.contains(&b'\t')) {
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
    /// The buffer `line` lies in, when values may be zero-copy slices of it.
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
    /// `WORD ":"`, the letters of `word` in either case (`FROM:`, `TO:`).
    #[inline(always)]
    fn eat_word_colon<const N: usize>(&mut self, word: [u8; N]) -> bool {
        let rest = self.rest();
        let ok = rest.get(N) == Some(&b':')
            && rest
                .first_chunk::<N>()
                .is_some_and(|w| w.iter().zip(word).all(|(a, b)| a & 0xDF == b));
        if ok {
            self.pos += N + 1;
        }
        ok
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

/// Octet classes for the grammar, one table lookup per octet. The classes hold ASCII octets
/// only; the scans handle the UTF-8 octets (RFC 6531) on their slow path.
const ATEXT: u8 = 1;
/// `Let-dig` and `-` (domain labels), which is also `esmtp-keyword`'s alphabet.
const LDH: u8 = 2;
/// `esmtp-value = 1*(%d33-60 / %d62-126)`, plus the UTF-8 octets RFC 6531 allows.
const VALUE: u8 = 4;
/// `mech-char` of RFC 4954 (letters of either case, digits, `-`, `_`).
const MECH: u8 = 8;

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
        let mut c = 0;
        if alnum || special {
            c |= ATEXT;
        }
        if alnum || b == b'-' {
            c |= LDH;
        }
        if matches!(b, 33..=60 | 62..=126 | 0x80..=0xff) {
            c |= VALUE;
        }
        if alnum || b == b'-' || b == b'_' {
            c |= MECH;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

#[inline(always)]
fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

/// The offset of the first octet at or after `i` whose class lacks `bit` (or `s.len()`),
/// one octet at a time: the tokens of a command line (atoms, labels, keywords, values) are
/// short, and an eight-octet step (an AND of eight table lookups) measured slower on them.
#[inline(always)]
fn scan(s: &[u8], mut i: usize, bit: u8) -> usize {
    while let Some(&b) = s.get(i) {
        if class(b) & bit == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// [`scan`] that also steps over octets of 0x80 and above (UTF-8, RFC 6531), noting in
/// `high` that it saw one.
#[inline(always)]
fn scan_utf8(s: &[u8], i: usize, bit: u8, high: &mut bool) -> usize {
    let mut i = scan(s, i, bit);
    while s.get(i).is_some_and(|&b| b >= 0x80) {
        *high = true;
        i = scan(s, i + 1, bit);
    }
    i
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )`
///
/// Each octet is looked at once: the scans note whether any octet is non-ASCII, and only
/// then is the address checked as UTF-8.
fn mailbox(c: &mut Cursor<'_>) -> Result<Mailbox, Error> {
    let start = c.pos;
    let line = c.line;
    let mut high = false;
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
                    high |= b >= 0x80;
                    c.pos += 1;
                }
                _ => return Err(c.bad_address()),
            }
        }
    } else {
        // Dot-string = Atom *("." Atom); any breach of the dot rules (an empty local
        // part, a leading, trailing or doubled dot) is reported at its start.
        let mut i = start;
        loop {
            let atom = i;
            i = scan_utf8(line, i, ATEXT, &mut high);
            if i == atom {
                return Err(Error::InvalidAddress { position: start });
            }
            if line.get(i) != Some(&b'.') {
                break;
            }
            i += 1;
        }
        c.pos = i;
    }
    let local_end = c.pos;
    if local_end - start > 64 * 4 || !c.eat(b'@') {
        return Err(c.bad_address());
    }
    if c.eat(b'[') {
        literal(c)?;
    } else {
        domain(c, &mut high)?;
    }
    let whole = line.get(start..c.pos).unwrap_or_default();
    if high {
        std::str::from_utf8(whole).map_err(|e| Error::InvalidAddress {
            position: start + e.valid_up_to(),
        })?;
    }
    let end = c.pos;
    Ok(Mailbox::from_wire(
        line,
        start,
        end,
        local_end - start,
        || match c.owner {
            Some(owner) if contains(owner, whole) => owner.slice_ref(whole),
            _ => Bytes::copy_from_slice(whole),
        },
    ))
}

/// `address-literal = "[" ... "]"`, the `[` already consumed.
fn literal(c: &mut Cursor<'_>) -> Result<(), Error> {
    let start = c.pos;
    while matches!(c.peek(), Some(33..=90 | 94..=126)) {
        c.pos += 1;
    }
    let inner = c.line.get(start..c.pos).unwrap_or_default();
    if !c.eat(b']') || !valid_literal(inner) {
        return Err(Error::InvalidAddress { position: start });
    }
    Ok(())
}

/// `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]`, U-labels
/// (RFC 6531) being any UTF-8 octets: labels of 1 to 63 octets that neither start nor end
/// with `-`, 255 octets at most. A bad label is reported at its start.
fn domain_scan(c: &mut Cursor<'_>, high: &mut bool) -> Result<(), Error> {
    let line = c.line;
    let start = c.pos;
    let mut label = start;
    loop {
        let end = scan_utf8(line, label, LDH, high);
        let ok = (1..=63).contains(&(end - label))
            && line.get(label) != Some(&b'-')
            && line.get(end - 1) != Some(&b'-');
        if !ok {
            return Err(Error::InvalidAddress { position: label });
        }
        if line.get(end) != Some(&b'.') {
            if end - start > 255 {
                return Err(Error::InvalidAddress { position: start });
            }
            c.pos = end;
            return Ok(());
        }
        label = end + 1;
    }
}

/// A domain name: see [`domain_scan`].
#[inline]
fn domain(c: &mut Cursor<'_>, high: &mut bool) -> Result<(), Error> {
    domain_scan(c, high)
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
            domain(c, &mut false)?;
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

/// The known ESMTP keywords, told apart by their length, then (four-letter ones) by their
/// octets folded to upper case in one integer (`& 0xDF` is a bijection on the keyword
/// alphabet: letters lose their case, digits and `-` map below 0x20 where no letter lands).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Size,
    Body,
    SmtpUtf8,
    RequireTls,
    Ret,
    Envid,
    Auth,
    Notify,
    Orcpt,
    Other,
}

#[inline]
fn keyword(key: &[u8]) -> Keyword {
    const fn w(k: &[u8; 4]) -> u32 {
        u32::from_be_bytes(*k) & 0xDFDF_DFDF
    }
    let ci = |k: &[u8]| key.eq_ignore_ascii_case(k);
    match key.len() {
        4 => match key.first_chunk::<4>().map(w) {
            Some(k) if k == w(b"SIZE") => Keyword::Size,
            Some(k) if k == w(b"BODY") => Keyword::Body,
            Some(k) if k == w(b"AUTH") => Keyword::Auth,
            _ => Keyword::Other,
        },
        3 if ci(b"RET") => Keyword::Ret,
        5 if ci(b"ENVID") => Keyword::Envid,
        5 if ci(b"ORCPT") => Keyword::Orcpt,
        6 if ci(b"NOTIFY") => Keyword::Notify,
        8 if ci(b"SMTPUTF8") => Keyword::SmtpUtf8,
        10 if ci(b"REQUIRETLS") => Keyword::RequireTls,
        _ => Keyword::Other,
    }
}

/// One ESMTP parameter: `esmtp-param = esmtp-keyword ["=" esmtp-value]`.
struct Param<'a> {
    key: &'a [u8],
    value: Option<&'a [u8]>,
    /// Offset of the keyword in the line.
    pos: usize,
}

impl Param<'_> {
    fn invalid(&self) -> Error {
        Error::InvalidParameter {
            keyword: String::from_utf8_lossy(self.key).to_ascii_uppercase(),
            position: self.pos,
        }
    }
    fn other(&self) -> Result<(String, Option<String>), Error> {
        other_param(self.key, self.value).ok_or_else(|| self.invalid())
    }
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)`: the next parameter, or `None` at
/// the end of the line.
#[inline]
fn next_param<'a>(c: &mut Cursor<'a>) -> Result<Option<Param<'a>>, Error> {
    if c.at_end() {
        return Ok(None);
    }
    if !c.eat(b' ') {
        return Err(c.syntax("expected SP before parameter"));
    }
    skip_spaces(c);
    if c.at_end() {
        return Ok(None);
    }
    let start = c.pos;
    // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    if !c.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Err(c.syntax("parameter keyword"));
    }
    c.pos = scan(c.line, start + 1, LDH);
    let key = c.line.get(start..c.pos).unwrap_or_default();
    let value = if c.eat(b'=') {
        // esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 allowed by RFC 6531
        let vstart = c.pos;
        c.pos = scan(c.line, vstart, VALUE);
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
    Ok(Some(Param {
        key,
        value,
        pos: start,
    }))
}

fn mail(mut c: Cursor<'_>) -> Result<Command, Error> {
    if !c.eat_word_colon(*b"FROM") {
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
    while let Some(p) = next_param(&mut c)? {
        let bad = || p.invalid();
        match (keyword(p.key), p.value) {
            (Keyword::Size, Some(v)) if params.size.is_none() => {
                params.size = Some(number(v).ok_or_else(bad)?);
            }
            (Keyword::Body, Some(v)) if params.body.is_none() => {
                params.body = Some(if v.eq_ignore_ascii_case(b"8BITMIME") {
                    Body::EightBitMime
                } else if v.eq_ignore_ascii_case(b"7BIT") {
                    Body::SevenBit
                } else if v.eq_ignore_ascii_case(b"BINARYMIME") {
                    Body::BinaryMime
                } else {
                    return Err(bad());
                });
            }
            (Keyword::SmtpUtf8, None) if !params.smtputf8 => params.smtputf8 = true,
            (Keyword::RequireTls, None) if !params.requiretls => params.requiretls = true,
            (Keyword::Ret, Some(v)) if params.ret.is_none() => {
                params.ret = Some(if v.eq_ignore_ascii_case(b"FULL") {
                    Ret::Full
                } else if v.eq_ignore_ascii_case(b"HDRS") {
                    Ret::Hdrs
                } else {
                    return Err(bad());
                });
            }
            (Keyword::Envid, Some(v)) if params.envid.is_none() => {
                params.envid = Some(xtext_decode(v).ok_or_else(bad)?);
            }
            (Keyword::Auth, Some(v)) if params.auth.is_none() => {
                params.auth = Some(xtext_decode(v).ok_or_else(bad)?);
            }
            (
                Keyword::Size
                | Keyword::Body
                | Keyword::SmtpUtf8
                | Keyword::RequireTls
                | Keyword::Ret
                | Keyword::Envid
                | Keyword::Auth,
                _,
            ) => return Err(bad()),
            _ => params.other.push(p.other()?),
        }
    }
    Ok(Command::Mail { from, params })
}

fn rcpt(mut c: Cursor<'_>) -> Result<Command, Error> {
    if !c.eat_word_colon(*b"TO") {
        return Err(c.syntax("expected TO:"));
    }
    skip_spaces(&mut c);
    // (The first letter ends the comparison for nearly every address.)
    let to = if c.rest().get(1).is_some_and(|&b| b | 0x20 == b'p')
        && c.rest()
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"<Postmaster>"))
    {
        c.pos += 12;
        ForwardPath::Postmaster
    } else {
        ForwardPath::Mailbox(path(&mut c)?)
    };
    let mut params = RcptParams::default();
    while let Some(p) = next_param(&mut c)? {
        let bad = || p.invalid();
        match (keyword(p.key), p.value) {
            (Keyword::Notify, Some(v)) if params.notify.is_none() => {
                params.notify = Some(notify(v).ok_or_else(bad)?);
            }
            (Keyword::Orcpt, Some(v)) if params.orcpt.is_none() => {
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
            (Keyword::Notify | Keyword::Orcpt, _) => return Err(bad()),
            _ => params.other.push(p.other()?),
        }
    }
    Ok(Command::Rcpt { to, params })
}

/// `NOTIFY=` value: `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY` (each once).
fn notify(v: &[u8]) -> Option<Notify> {
    let mut n = Notify::default();
    for item in v.split(|&b| b == b',') {
        let flag = if item.eq_ignore_ascii_case(b"SUCCESS") {
            &mut n.success
        } else if item.eq_ignore_ascii_case(b"FAILURE") {
            &mut n.failure
        } else if item.eq_ignore_ascii_case(b"DELAY") {
            &mut n.delay
        } else if item.eq_ignore_ascii_case(b"NEVER") {
            &mut n.never
        } else {
            return None;
        };
        if *flag {
            return None;
        }
        *flag = true;
    }
    if n.never && (n.success || n.failure || n.delay) {
        return None;
    }
    Some(n)
}

fn other_param(key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<String>)> {
    let k = String::from_utf8(key.to_ascii_uppercase()).ok()?;
    let v = match value {
        Some(v) => Some(String::from_utf8(v.to_vec()).ok()?),
        None => None,
    };
    Some((k, v))
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
    c.pos = scan(c.line, start, MECH);
    let mech = c.line.get(start..c.pos).unwrap_or_default();
    if mech.is_empty() || mech.len() > 20 {
        return Err(c.syntax("SASL mechanism"));
    }
    // `mech-char`s are ASCII: upper-cased char by char, no UTF-8 check needed.
    let mut mechanism = String::with_capacity(mech.len());
    for &b in mech {
        mechanism.push(char::from(b.to_ascii_uppercase()));
    }
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

    proptest! {
        #[test]
        fn mailbox_grammar_matches_a_plain_reading(
            s in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'.'), Just(b'-'), Just(b'@'), Just(b'!'), Just(b'9')],
                0..80,
            ),
        ) {
            // Dot-string "@" Domain, read the plain way: split at the first "@", split
            // each side at its dots.
            let plain = |s: &[u8]| -> bool {
                let Some(at) = s.iter().position(|&b| b == b'@') else { return false };
                let (local, domain) = (&s[..at], &s[at + 1..]);
                let atom_ok = |a: &[u8]| !a.is_empty() && a.iter().all(|&b| CLASS[usize::from(b)] & ATEXT != 0);
                let label_ok = |l: &[u8]| (1..=63).contains(&l.len())
                    && l.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                    && l[0] != b'-' && l[l.len() - 1] != b'-';
                local.split(|&b| b == b'.').all(atom_ok)
                    && domain.len() <= 255
                    && domain.split(|&b| b == b'.').all(label_ok)
            };
            let mut line = b"RCPT TO:<".to_vec();
            line.extend_from_slice(&s);
            line.push(b'>');
            prop_assert_eq!(command(&line).is_ok(), plain(&s), "{:?}", String::from_utf8_lossy(&s));
        }

        #[test]
        fn split_line_matches_a_plain_search(
            v in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'x'), Just(b'.')], 0..150),
        ) {
            let plain = v.iter().position(|&b| b == b'\n');
            prop_assert_eq!(find_lf(&v), plain);
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
