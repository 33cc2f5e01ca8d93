//! Encoders: commands to [`Fragment`]s (so a client can wait for `+` before each
//! synchronising literal), responses to one buffer, and the head of a streamed FETCH body.
//!
//! Strings are written in the cheapest form the grammar allows: an atom where an `astring`
//! is expected and the value is made of `ASTRING-CHAR`s, a quoted string for 7-bit text
//! without CR/LF (8-bit UTF-8 too with [`EncodeOptions::utf8`]), otherwise a literal
//! (`~{n}` for message data containing NUL where the grammar has `literal8`).
//!
//! ```
//! use imap_proto::encode;
//! use imap_proto::types::{Response, StatusKind, StatusResponse, Tag, Text};
//!
//! let ok = StatusResponse::tagged(
//!     Tag::try_from("a1").unwrap(),
//!     StatusKind::Ok,
//!     None,
//!     Text::try_from("LOGIN completed").unwrap(),
//! )
//! .unwrap();
//! let mut out = Vec::new();
//! encode::response(&Response::Status(ok), &mut out);
//! assert_eq!(out, b"a1 OK LOGIN completed\r\n");
//! ```

mod command;
mod response;

use bytes::Bytes;

use crate::types::{
    Date, DateTime, Flag, ListPattern, Mailbox, MailboxAttr, SequenceSet, encode_mutf7,
    is_astring_char, is_list_char,
};

pub use self::command::{command, command_to_vec, command_with};
pub use self::response::{
    fetch_literal_head, fetch_literal_tail, greeting, response, response_with,
};

/// Encoder options.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// Write command literals as non-synchronising `{n+}` (the server announced LITERAL+;
    /// with LITERAL- only when every literal is at most 4096 bytes). Default off.
    pub literal_plus: bool,
    /// UTF-8 was negotiated (UTF8=ACCEPT / IMAP4rev2): mailbox names are written as UTF-8
    /// rather than modified UTF-7, and UTF-8 strings may be quoted. Default off.
    pub utf8: bool,
}

impl EncodeOptions {
    /// Options with LITERAL+ turned on or off.
    #[must_use]
    pub fn with_literal_plus(mut self, on: bool) -> Self {
        self.literal_plus = on;
        self
    }

    /// Options with UTF-8 turned on or off.
    #[must_use]
    pub fn with_utf8(mut self, on: bool) -> Self {
        self.utf8 = on;
        self
    }
}

/// A piece of an encoded command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fragment {
    /// Bytes to send now; a line, or the part of a line up to and including a literal
    /// announcement and its CRLF.
    Line(Bytes),
    /// Literal data. When `sync` is true the announcement before it was `{n}`: wait for the
    /// server's `+` continuation before sending it.
    Literal {
        /// The literal bytes.
        data: Bytes,
        /// Whether the client must wait for a continuation first.
        sync: bool,
    },
}

/// Quoted strings longer than this are written as literals.
const MAX_QUOTED: usize = 1024;

/// The writer behind every encoder.
pub(crate) struct W<'a> {
    pub out: Vec<u8>,
    frags: Option<Vec<Fragment>>,
    opts: &'a EncodeOptions,
}

impl<'a> W<'a> {
    pub fn new(opts: &'a EncodeOptions, fragments: bool) -> Self {
        Self {
            out: Vec::with_capacity(64),
            frags: fragments.then(Vec::new),
            opts,
        }
    }

    pub fn with_buffer(out: Vec<u8>, opts: &'a EncodeOptions) -> Self {
        Self {
            out,
            frags: None,
            opts,
        }
    }

    pub fn into_fragments(mut self) -> Vec<Fragment> {
        let mut frags = self.frags.take().unwrap_or_default();
        if !self.out.is_empty() {
            frags.push(Fragment::Line(Bytes::from(std::mem::take(&mut self.out))));
        }
        frags
    }

    #[inline]
    pub fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    #[inline]
    pub fn sp(&mut self) {
        self.out.push(b' ');
    }

    pub fn num(&mut self, n: impl Into<u64>) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut n: u64 = n.into();
        loop {
            i -= 1;
            if let Some(slot) = buf.get_mut(i) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.out.extend_from_slice(buf.get(i..).unwrap_or(&[]));
    }

    pub fn display(&mut self, d: impl std::fmt::Display) {
        use std::io::Write as _;
        let _ = write!(self.out, "{d}");
    }

    pub fn crlf(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }

    fn quotable(&self, s: &[u8]) -> bool {
        if s.len() > MAX_QUOTED {
            return false;
        }
        if s.iter()
            .all(|b| matches!(b, 0x01..=0x7f) && *b != b'\r' && *b != b'\n')
        {
            return true;
        }
        self.opts.utf8
            && std::str::from_utf8(s).is_ok()
            && !s.iter().any(|b| matches!(b, 0 | b'\r' | b'\n'))
    }

    pub fn quoted(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                self.out.push(b'\\');
            }
            self.out.push(b);
        }
        self.out.push(b'"');
    }

    /// A literal; `~{n}` when `binary`.
    pub fn literal(&mut self, data: &Bytes, binary: bool) {
        if binary {
            self.out.push(b'~');
        }
        self.out.push(b'{');
        self.num(data.len() as u64);
        let nonsync = self.frags.is_some() && self.opts.literal_plus;
        if nonsync {
            self.out.push(b'+');
        }
        self.out.extend_from_slice(b"}\r\n");
        match &mut self.frags {
            Some(frags) => {
                frags.push(Fragment::Line(Bytes::from(std::mem::take(&mut self.out))));
                frags.push(Fragment::Literal {
                    data: data.clone(),
                    sync: !nonsync,
                });
            }
            None => self.out.extend_from_slice(data),
        }
    }

    /// `string`: quoted or literal.
    pub fn string(&mut self, s: &Bytes) {
        if self.quotable(s) {
            self.quoted(s)
        } else {
            self.literal(s, false)
        }
    }

    /// `string` or, when it contains NUL, a binary literal (`literal8` positions).
    pub fn string8(&mut self, s: &Bytes) {
        if memchr::memchr(0, s).is_some() {
            self.literal(s, true)
        } else {
            self.string(s)
        }
    }

    pub fn nstring(&mut self, s: &Option<Bytes>) {
        match s {
            Some(s) => self.string(s),
            None => self.raw(b"NIL"),
        }
    }

    /// `astring`: atom form when possible.
    pub fn astring(&mut self, s: &Bytes) {
        if !s.is_empty() && s.iter().all(|b| is_astring_char(*b)) {
            self.raw(s);
        } else {
            self.string(s);
        }
    }

    fn name_bytes(&self, name: &str) -> Bytes {
        if self.opts.utf8 {
            Bytes::copy_from_slice(name.as_bytes())
        } else {
            Bytes::from(encode_mutf7(name).into_bytes())
        }
    }

    pub fn mailbox(&mut self, m: &Mailbox) {
        let b = self.name_bytes(m.as_str());
        self.astring(&b);
    }

    pub fn list_mailbox(&mut self, m: &ListPattern) {
        let b = self.name_bytes(m.as_str());
        if !b.is_empty() && b.iter().all(|c| is_list_char(*c)) {
            self.raw(&b);
        } else {
            self.string(&b);
        }
    }

    pub fn flag(&mut self, f: &Flag) {
        self.display(f);
    }

    pub fn flag_list(&mut self, flags: &[Flag]) {
        self.out.push(b'(');
        for (i, f) in flags.iter().enumerate() {
            if i > 0 {
                self.sp();
            }
            self.flag(f);
        }
        self.out.push(b')');
    }

    pub fn mailbox_attr(&mut self, a: &MailboxAttr) {
        self.out.push(b'\\');
        self.raw(a.name().as_bytes());
    }

    pub fn seq(&mut self, s: &SequenceSet) {
        self.display(s);
    }

    pub fn date(&mut self, d: &Date) {
        self.display(d);
    }

    pub fn date_time(&mut self, d: &DateTime) {
        self.out.push(b'"');
        self.display(d);
        self.out.push(b'"');
    }

    /// `(item SP item ...)` with a closure per item.
    pub fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.out.push(b'(');
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                self.sp();
            }
            f(self, it);
        }
        self.out.push(b')');
    }

    pub fn delimiter(&mut self, d: Option<char>) {
        match d {
            None => self.raw(b"NIL"),
            Some(c) => {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                self.quoted(s.as_bytes());
            }
        }
    }
}
