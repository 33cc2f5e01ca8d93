//! Parsers for framed IMAP messages (nom 8 primitives under a recursive-descent driver).
//!
//! A *message* is one command or one response: a line, plus for every literal announced at
//! the end of a line (`{n}`, `{n+}`, `~{n}`) the `n` literal bytes and the rest of the
//! message after them, up to the final CRLF. The parsers first frame the message with
//! `memchr` (so a missing CRLF or literal is reported as such without parsing anything) and
//! then parse it in one pass, slicing strings out of one shared [`Bytes`] buffer.
//!
//! ```
//! use imap_proto::parse;
//! use imap_proto::types::CommandBody;
//!
//! let (used, cmd) = parse::command(b"a1 SELECT INBOX\r\nrest").unwrap();
//! assert_eq!(used, 17);
//! assert!(matches!(cmd.body, CommandBody::Select { .. }));
//!
//! // A synchronising literal whose bytes are not there yet: the server must send `+`.
//! match parse::command(b"a2 LOGIN {5}\r\n") {
//!     Err(parse::ParseError::Literal { header, .. }) => assert!(header.sync),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod command;
mod cursor;
mod response;

use bytes::Bytes;

use crate::types::{DateTime, Flag, Mailbox, Tag};

pub use self::response::FetchLiteralPrefix;

/// Parser options. The defaults are strict RFC 9051/3501 behaviour, except for deviations
/// that are harmless and common enough to accept always: status responses without text
/// (`a1 OK`), a continuation request without a space (`+` CRLF), 8-bit bytes in quoted
/// strings (UTF-8, IMAP4rev2), `[BADCHARSET cs]` without parentheses (as in RFC 9051's own
/// example) and a tag-string in `ESEARCH (TAG ...)` written as an atom.
///
/// Literal sizes are not limited here: the parser reports every announced literal
/// ([`ParseError::Literal`], with its length) before a byte of it is read, and the framer
/// decides whether to accept it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParserOptions {
    /// Mailbox names are UTF-8 on the wire and `&` is literal (after `ENABLE UTF8=ACCEPT`
    /// or `ENABLE IMAP4rev2`). When false (default), ASCII names are decoded from modified
    /// UTF-7 (invalid forms are rejected) and 8-bit names must be valid UTF-8.
    pub utf8_mailboxes: bool,
    /// Longest line (excluding literal data) accepted, in bytes. Default 64 KiB.
    pub max_line_len: usize,
    /// Deepest nesting of body structures, search keys and body extensions. Default 32.
    pub max_depth: usize,
    /// Quirk: accept a space before `)` in a FETCH response (`(UID 19436 )`), as sent by
    /// qq.com. Default off.
    pub quirk_trailing_space: bool,
    /// Quirk: accept `NIL` in place of a body parameter string, as sent by Mail.ru
    /// (read as an empty string). Default off.
    pub quirk_body_param_nil: bool,
    /// Quirk: accept a space between the addresses of an ENVELOPE address list and
    /// between the parts of a multipart BODYSTRUCTURE (`((...) (...))`), as written by
    /// davmail and some Exchange versions. Default off.
    pub quirk_list_separators: bool,
    /// Quirk: accept a response code after an untagged status without text and without
    /// the separating space, and a tagged status without any text (`a1 OK`), as sent by
    /// several servers (e.g. older Exchange). Default off.
    pub quirk_missing_text: bool,
}

impl Default for ParserOptions {
    fn default() -> Self {
        Self {
            utf8_mailboxes: false,
            max_line_len: 64 * 1024,
            max_depth: 32,
            quirk_trailing_space: false,
            quirk_body_param_nil: false,
            quirk_list_separators: false,
            quirk_missing_text: false,
        }
    }
}

/// A literal announced at the end of a line: `{n}`, `{n+}` or `~{n}` (binary).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LiteralHeader {
    /// Number of literal bytes that follow the CRLF.
    pub len: u64,
    /// `{n}` (the sender waits for a `+` continuation) rather than `{n+}` (LITERAL+/-).
    pub sync: bool,
    /// `~{n}`: a binary literal (RFC 3516), which may contain NUL.
    pub binary: bool,
}

/// Why a message could not be parsed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is not complete yet (no CRLF at the end); read more input and retry.
    #[error("incomplete message: more input needed")]
    Incomplete,
    /// The message announces a literal whose bytes are not all there yet. For a
    /// synchronising literal (`header.sync`) a server must first answer with a `+`
    /// continuation (or reject the command); for `{n+}` it just reads on. `offset` is where
    /// the literal data starts in the input, so the caller can tell literals apart when
    /// it retries after reading more.
    #[error("literal of {} bytes announced", header.len)]
    Literal {
        /// The command's tag, if it could be read.
        tag: Option<Tag>,
        /// The literal.
        header: LiteralHeader,
        /// Offset of the first literal byte in the input.
        offset: usize,
    },
    /// The message is complete but does not follow the grammar. `consumed` is the length of
    /// the whole framed message (including its CRLF), so the caller can skip it and answer
    /// `tag BAD ...`.
    #[error("parse error at byte {position}: {reason}")]
    Failed {
        /// Byte offset of the problem.
        position: usize,
        /// What was expected or what is wrong.
        reason: &'static str,
        /// The command's tag, if it could be read (commands only).
        tag: Option<Tag>,
        /// Length of the framed message, or `None` when the line was too long to be
        /// framed (the caller should then drop input up to the next CRLF or close).
        consumed: Option<usize>,
    },
}

/// Recognises a literal announcement at the very end of a line (given without its CRLF):
/// `{n}`, `{n+}` (LITERAL+/LITERAL-) or `~{n}` / `~{n+}`.
#[must_use]
pub fn literal_announcement(line: &[u8]) -> Option<LiteralHeader> {
    let body = line.strip_suffix(b"}")?;
    let open = memchr::memrchr(b'{', body)?;
    let inner = body.get(open + 1..)?;
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut len: u64 = 0;
    for d in digits {
        len = len.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let binary = open > 0 && body.get(open - 1) == Some(&b'~');
    Some(LiteralHeader { len, sync, binary })
}

/// Frames the message at the start of `input`: returns the length of the complete message
/// (its lines, its literals and the final CRLF) without parsing it.
///
/// Errors: [`ParseError::Incomplete`] when the final CRLF is missing,
/// [`ParseError::Literal`] when a literal's bytes are not all there (or a synchronising
/// `{0}` has nothing after it yet), [`ParseError::Failed`] when a line exceeds
/// [`ParserOptions::max_line_len`] or a literal length does not fit in memory.
pub fn frame(input: &[u8], opts: &ParserOptions) -> Result<usize, ParseError> {
    let mut pos = 0usize;
    loop {
        let rest = input.get(pos..).unwrap_or(&[]);
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            if rest.len() > opts.max_line_len {
                return Err(too_long(input, pos + opts.max_line_len));
            }
            return Err(ParseError::Incomplete);
        };
        if nl > opts.max_line_len {
            return Err(too_long(input, pos + opts.max_line_len));
        }
        let line = rest.get(..nl).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = pos + nl + 1;
        match literal_announcement(line) {
            Some(header) => {
                let end = usize::try_from(header.len)
                    .ok()
                    .and_then(|l| next.checked_add(l))
                    .ok_or(ParseError::Failed {
                        position: pos + nl,
                        reason: "literal too large",
                        tag: first_tag(input),
                        consumed: None,
                    })?;
                // A synchronising `{0}` still needs its continuation: report it until
                // something follows it.
                if end > input.len() || (header.sync && header.len == 0 && end == input.len()) {
                    return Err(ParseError::Literal {
                        tag: first_tag(input),
                        header,
                        offset: next,
                    });
                }
                pos = end;
            }
            None => return Ok(next),
        }
    }
}

fn too_long(input: &[u8], position: usize) -> ParseError {
    ParseError::Failed {
        position,
        reason: "line too long",
        tag: first_tag(input),
        consumed: None,
    }
}

/// The tag at the start of a command, if it is a valid one followed by a space.
pub(crate) fn first_tag(input: &[u8]) -> Option<Tag> {
    let sp = memchr::memchr(b' ', input.get(..input.len().min(1024)).unwrap_or(&[]))?;
    Tag::new(Bytes::copy_from_slice(input.get(..sp)?)).ok()
}

/// Parses one command (server input) with default options.
///
/// Returns the number of bytes consumed and the command.
pub fn command(input: &[u8]) -> Result<(usize, crate::types::Command), ParseError> {
    command_with(input, &ParserOptions::default())
}

/// Parses one command with the given options.
pub fn command_with(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<(usize, crate::types::Command), ParseError> {
    let end = frame(input, opts)?;
    let buf = Bytes::copy_from_slice(input.get(..end).unwrap_or(&[]));
    command::parse_command(&buf, end, opts).map(|c| (end, c))
}

/// Parses one command out of a shared buffer without copying it: strings and literals in
/// the result are slices of `input`.
pub fn command_bytes(
    input: &Bytes,
    opts: &ParserOptions,
) -> Result<(usize, crate::types::Command), ParseError> {
    let end = frame(input, opts)?;
    command::parse_command(input, end, opts).map(|c| (end, c))
}

/// Parses one response (client input after the greeting) with default options.
pub fn response(input: &[u8]) -> Result<(usize, crate::types::Response), ParseError> {
    response_with(input, &ParserOptions::default())
}

/// Parses one response with the given options.
pub fn response_with(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<(usize, crate::types::Response), ParseError> {
    let end = frame(input, opts)?;
    let buf = Bytes::copy_from_slice(input.get(..end).unwrap_or(&[]));
    response::parse_response(&buf, end, opts).map(|r| (end, r))
}

/// Parses one response out of a shared buffer without copying it.
pub fn response_bytes(
    input: &Bytes,
    opts: &ParserOptions,
) -> Result<(usize, crate::types::Response), ParseError> {
    let end = frame(input, opts)?;
    response::parse_response(input, end, opts).map(|r| (end, r))
}

/// Parses the server greeting (`* OK`, `* PREAUTH` or `* BYE`).
pub fn greeting(input: &[u8]) -> Result<(usize, crate::types::Greeting), ParseError> {
    greeting_with(input, &ParserOptions::default())
}

/// Parses the server greeting with the given options.
pub fn greeting_with(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<(usize, crate::types::Greeting), ParseError> {
    let end = frame(input, opts)?;
    let buf = Bytes::copy_from_slice(input.get(..end).unwrap_or(&[]));
    response::parse_greeting(&buf, end, opts).map(|g| (end, g))
}

/// Recognises `DONE` CRLF, which ends IDLE (case-insensitive). Returns the bytes consumed.
pub fn idle_done(input: &[u8]) -> Result<usize, ParseError> {
    let Some(nl) = memchr::memchr(b'\n', input) else {
        return if input.len() > 64 {
            Err(ParseError::Failed {
                position: 64,
                reason: "expected DONE",
                tag: None,
                consumed: None,
            })
        } else {
            Err(ParseError::Incomplete)
        };
    };
    let line = input.get(..nl).unwrap_or(&[]);
    if line.eq_ignore_ascii_case(b"DONE\r") {
        Ok(nl + 1)
    } else {
        Err(ParseError::Failed {
            position: 0,
            reason: "expected DONE",
            tag: None,
            consumed: Some(nl + 1),
        })
    }
}

/// A client's line during AUTHENTICATE.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AuthenticateData {
    /// A response, decoded from base64 (an empty line is an empty response).
    Response(Bytes),
    /// `*`: the client cancels the exchange.
    Cancel,
}

/// Parses a client's AUTHENTICATE continuation line (base64 or `*`). Returns the bytes
/// consumed.
pub fn authenticate_data(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<(usize, AuthenticateData), ParseError> {
    let Some(nl) = memchr::memchr(b'\n', input) else {
        if input.len() > opts.max_line_len {
            return Err(too_long(input, opts.max_line_len));
        }
        return Err(ParseError::Incomplete);
    };
    let fail = |reason| ParseError::Failed {
        position: 0,
        reason,
        tag: None,
        consumed: Some(nl + 1),
    };
    let line = input.get(..nl).unwrap_or(&[]);
    let line = line
        .strip_suffix(b"\r")
        .ok_or_else(|| fail("line must end with CRLF"))?;
    if line == b"*" {
        return Ok((nl + 1, AuthenticateData::Cancel));
    }
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(line)
        .map_err(|_| fail("invalid base64"))?;
    Ok((nl + 1, AuthenticateData::Response(Bytes::from(decoded))))
}

/// The start of an APPEND command whose message literal has been announced but not read:
/// what a server needs to stream the message instead of buffering it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppendPrefix {
    /// The command tag.
    pub tag: Tag,
    /// Target mailbox.
    pub mailbox: Mailbox,
    /// Flags.
    pub flags: Vec<Flag>,
    /// INTERNALDATE.
    pub date: Option<DateTime>,
    /// The message literal.
    pub literal: LiteralHeader,
    /// The message was sent as `UTF8 (~{n}` (RFC 6855): after the literal data a `)`
    /// comes before the CRLF.
    pub utf8: bool,
    /// Bytes up to and including the CRLF after the literal announcement: the literal
    /// data starts here.
    pub consumed: usize,
}

/// Parses `tag APPEND mailbox [flags] [date] {n}` CRLF (the message so far must end right
/// after the announcement's CRLF, or contain it). Earlier lines of the message (e.g. a
/// mailbox name sent as a literal) must be complete.
pub fn append_prefix(input: &[u8], opts: &ParserOptions) -> Result<AppendPrefix, ParseError> {
    command::append_prefix(input, opts)
}

/// Parses the start of a FETCH response up to a literal it announces (the client side of
/// streaming a large body). See [`FetchLiteralPrefix`].
pub fn fetch_literal_prefix(
    input: &[u8],
    opts: &ParserOptions,
) -> Result<FetchLiteralPrefix, ParseError> {
    response::fetch_literal_prefix(input, opts)
}
