//! Writers for the types in [`crate::types`], each line terminated by CRLF.
//!
//! Free text supplied by the application (response text, `IMPLEMENTATION`) is made
//! wire-safe: CR, LF and NUL become spaces, so an application string can never inject a
//! line. [`Stuffer`] byte-stuffs a multi-line body that arrives in chunks.

use base64::Engine as _;
use bytes::{BufMut, BytesMut};

use crate::types::{Capability, Command, Expire, Response, ScanListing, Status, UidListing};

fn put_text(out: &mut BytesMut, text: &[u8]) {
    if text.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        out.extend(text.iter().map(|&b| {
            if b == b'\r' || b == b'\n' || b == 0 {
                b' '
            } else {
                b
            }
        }));
    } else {
        out.put_slice(text);
    }
}

fn put_u64(out: &mut BytesMut, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.put_slice(buf.get(i..).unwrap_or_default());
}

/// Writes `base64(data)`, or `=` when `data` is empty and `equals_for_empty` is set.
fn put_base64(out: &mut BytesMut, data: &[u8], equals_for_empty: bool) {
    if data.is_empty() {
        if equals_for_empty {
            out.put_u8(b'=');
        }
        return;
    }
    out.put_slice(
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .as_bytes(),
    );
}

/// Writes a command line.
pub fn command(cmd: &Command, out: &mut BytesMut) {
    out.put_slice(cmd.keyword().as_bytes());
    match cmd {
        Command::User(name) => {
            out.put_u8(b' ');
            put_text(out, name);
        }
        Command::Pass(p) => {
            out.put_u8(b' ');
            put_text(out, p.expose());
        }
        Command::Apop { name, digest } => {
            out.put_u8(b' ');
            put_text(out, name);
            out.put_u8(b' ');
            put_text(out, digest);
        }
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            out.put_u8(b' ');
            put_text(out, mechanism);
            if let Some(ir) = initial_response {
                out.put_u8(b' ');
                put_base64(out, ir.expose(), true);
            }
        }
        Command::List(Some(n)) | Command::Uidl(Some(n)) | Command::Retr(n) | Command::Dele(n) => {
            out.put_u8(b' ');
            put_u64(out, u64::from(*n));
        }
        Command::Top { msg, lines } => {
            out.put_u8(b' ');
            put_u64(out, u64::from(*msg));
            out.put_u8(b' ');
            put_u64(out, u64::from(*lines));
        }
        Command::AuthList
        | Command::Stat
        | Command::List(None)
        | Command::Uidl(None)
        | Command::Noop
        | Command::Rset
        | Command::Quit
        | Command::Capa
        | Command::Stls => {}
    }
    out.put_slice(b"\r\n");
}

/// Writes a client SASL response line: base64 (empty line for an empty response), or `*`
/// when `data` is `None` (cancel).
pub fn sasl_response(data: Option<&[u8]>, out: &mut BytesMut) {
    match data {
        Some(d) => put_base64(out, d, false),
        None => out.put_u8(b'*'),
    }
    out.put_slice(b"\r\n");
}

/// Writes a status line.
pub fn response(r: &Response, out: &mut BytesMut) {
    out.put_slice(match r.status {
        Status::Ok => b"+OK",
        Status::Err => b"-ERR",
    });
    if let Some(code) = &r.code {
        out.put_slice(b" [");
        put_text(out, code.as_bytes());
        out.put_u8(b']');
    }
    if !r.text.is_empty() {
        out.put_u8(b' ');
        put_text(out, &r.text);
    }
    out.put_slice(b"\r\n");
}

/// Writes a SASL challenge line `+ base64` (`+ ` alone for an empty challenge).
pub fn challenge(data: &[u8], out: &mut BytesMut) {
    out.put_slice(b"+ ");
    put_base64(out, data, false);
    out.put_slice(b"\r\n");
}

/// Writes a `LIST` line.
pub fn scan_listing(l: &ScanListing, out: &mut BytesMut) {
    put_u64(out, u64::from(l.msg));
    out.put_u8(b' ');
    put_u64(out, l.size);
    out.put_slice(b"\r\n");
}

/// Writes a `UIDL` line.
pub fn uid_listing(l: &UidListing, out: &mut BytesMut) {
    put_u64(out, u64::from(l.msg));
    out.put_u8(b' ');
    put_text(out, &l.uid);
    out.put_slice(b"\r\n");
}

/// Writes a number in decimal (used for `STAT` and friends).
pub fn number(n: u64, out: &mut BytesMut) {
    put_u64(out, n);
}

/// Writes one `CAPA` line.
pub fn capability(c: &Capability, out: &mut BytesMut) {
    let per = |out: &mut BytesMut, per_user: bool| {
        if per_user {
            out.put_slice(b" USER");
        }
    };
    match c {
        Capability::Top => out.put_slice(b"TOP"),
        Capability::User => out.put_slice(b"USER"),
        Capability::Sasl(m) => {
            out.put_slice(b"SASL");
            for m in m {
                out.put_u8(b' ');
                put_text(out, m);
            }
        }
        Capability::RespCodes => out.put_slice(b"RESP-CODES"),
        Capability::LoginDelay { seconds, per_user } => {
            out.put_slice(b"LOGIN-DELAY ");
            put_u64(out, u64::from(*seconds));
            per(out, *per_user);
        }
        Capability::Pipelining => out.put_slice(b"PIPELINING"),
        Capability::Expire { policy, per_user } => {
            out.put_slice(b"EXPIRE ");
            match policy {
                Expire::Never => out.put_slice(b"NEVER"),
                Expire::Days(d) => put_u64(out, u64::from(*d)),
            }
            per(out, *per_user);
        }
        Capability::Uidl => out.put_slice(b"UIDL"),
        Capability::Implementation(t) => {
            out.put_slice(b"IMPLEMENTATION");
            if !t.is_empty() {
                out.put_u8(b' ');
                put_text(out, t);
            }
        }
        Capability::Stls => out.put_slice(b"STLS"),
        Capability::AuthRespCode => out.put_slice(b"AUTH-RESP-CODE"),
        Capability::Other { tag, params } => {
            put_text(out, tag);
            for p in params {
                out.put_u8(b' ');
                put_text(out, p);
            }
        }
    }
    out.put_slice(b"\r\n");
}

/// The terminator of a multi-line response.
pub const TERMINATOR: &[u8] = b".\r\n";

/// Streaming byte-stuffer for multi-line bodies (RFC 1939 section 3).
///
/// Feed the body in chunks of any size; a line starting with `.` gets one more `.`, and
/// bare LF line ends become CRLF, across chunk borders. [`Stuffer::finish`] closes the last
/// line if needed and writes the `.` CRLF terminator.
#[derive(Debug, Clone)]
pub struct Stuffer {
    /// The next octet starts a line.
    at_line_start: bool,
    /// The previous octet was CR.
    after_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Stuffer {
    /// A stuffer positioned at the start of the body.
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Appends the stuffed form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) {
        out.reserve(chunk.len() + 16);
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.at_line_start && rest.first() == Some(&b'.') {
                out.put_u8(b'.');
            }
            match memchr::memchr(b'\n', rest) {
                Some(nl) => {
                    let (line, tail) = rest.split_at(nl);
                    let cr_before = match line.last() {
                        Some(&b) => b == b'\r',
                        None => self.after_cr,
                    };
                    out.put_slice(line);
                    if !cr_before {
                        out.put_u8(b'\r');
                    }
                    out.put_u8(b'\n');
                    self.at_line_start = true;
                    self.after_cr = false;
                    rest = tail.get(1..).unwrap_or_default();
                }
                None => {
                    out.put_slice(rest);
                    self.at_line_start = false;
                    self.after_cr = rest.last() == Some(&b'\r');
                    rest = &[];
                }
            }
        }
    }

    /// Ends the body: completes an unterminated last line, then writes `.` CRLF.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if !self.at_line_start {
            if self.after_cr {
                out.put_u8(b'\n');
            } else {
                out.put_slice(b"\r\n");
            }
        }
        out.put_slice(TERMINATOR);
        self.at_line_start = true;
        self.after_cr = false;
    }
}

/// Streaming un-stuffer for the client side: finds the `.` CRLF terminator split anywhere
/// and removes the stuffing dot.
#[derive(Debug, Clone)]
pub struct Unstuffer {
    at_line_start: bool,
    /// 0: nothing pending, 1: saw `.` at line start, 2: saw `.` CR at line start.
    pending: u8,
    done: bool,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Unstuffer {
    /// An un-stuffer positioned at the start of the body.
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            pending: 0,
            done: false,
        }
    }

    /// True once the terminator has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Un-stuffs from `input` into `out` until the terminator or the end of `input`.
    /// Returns how many octets of `input` were consumed (all of them unless the terminator
    /// was found, in which case the count stops right after it).
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) -> usize {
        let mut i = 0;
        while i < input.len() && !self.done {
            let Some(&b) = input.get(i) else { break };
            match self.pending {
                1 => {
                    if b == b'\r' {
                        self.pending = 2;
                        i += 1;
                        continue;
                    }
                    if b == b'\n' {
                        // ".\n": a terminator with a bare LF (liberal).
                        self.done = true;
                        i += 1;
                        continue;
                    }
                    // a stuffed dot: dropped; the octet is ordinary line content.
                    self.pending = 0;
                    self.at_line_start = false;
                }
                2 => {
                    if b == b'\n' {
                        self.done = true;
                        i += 1;
                        continue;
                    }
                    // "." CR x: keep the CR as content.
                    out.put_u8(b'\r');
                    self.pending = 0;
                    self.at_line_start = false;
                }
                _ => {}
            }
            if self.at_line_start && b == b'.' {
                self.pending = 1;
                i += 1;
                continue;
            }
            let rest = input.get(i..).unwrap_or_default();
            match memchr::memchr(b'\n', rest) {
                Some(nl) => {
                    out.put_slice(rest.get(..=nl).unwrap_or_default());
                    i += nl + 1;
                    self.at_line_start = true;
                }
                None => {
                    out.put_slice(rest);
                    i += rest.len();
                    self.at_line_start = false;
                }
            }
        }
        i
    }
}
