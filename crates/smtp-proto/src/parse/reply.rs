//! Reply parser (RFC 5321 section 4.2, enhanced codes of RFC 2034 / RFC 3463), built with nom.

use nom::IResult;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n};
use nom::character::complete::one_of;
use nom::combinator::{map_res, opt};

use crate::error::Error;
use crate::types::{EnhancedCode, Reply};

/// One parsed reply line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The reply code.
    pub code: u16,
    /// True for the last line (`code SP text` or a bare code), false for `code "-" text`.
    pub last: bool,
    /// The text after the separator (may be empty).
    pub text: &'a [u8],
}

fn code(i: &[u8]) -> IResult<&[u8], u16> {
    map_res(
        (one_of("2345"), one_of("0123456789"), one_of("0123456789")),
        |(a, b, c): (char, char, char)| -> Result<u16, ()> {
            let d = |c: char| c.to_digit(10).map(|d| d as u16).ok_or(());
            Ok(d(a)? * 100 + d(b)? * 10 + d(c)?)
        },
    )
    .parse(i)
}

/// Parses one reply line without its CRLF:
/// `Reply-code [ ( "-" / SP ) textstring ]`.
pub fn reply_line(line: &[u8]) -> Result<ReplyLine<'_>, Error> {
    let sep = opt(alt((tag(&b"-"[..]), tag(&b" "[..]))));
    match (code, sep).parse(line) {
        Ok((text, (code, sep))) => {
            if sep.is_none() && !text.is_empty() {
                return Err(Error::MalformedReply {
                    what: "expected SP or - after the code",
                    position: 3,
                });
            }
            if let Some(p) = text.iter().position(|&b| b == b'\r' || b == b'\n') {
                return Err(Error::MalformedReply {
                    what: "CR or LF in reply text",
                    position: 4 + p,
                });
            }
            Ok(ReplyLine {
                code,
                last: sep != Some(&b"-"[..]),
                text,
            })
        }
        Err(_) => Err(Error::MalformedReply {
            what: "expected a three-digit reply code",
            position: 0,
        }),
    }
}

fn digits(i: &[u8]) -> IResult<&[u8], u16> {
    map_res(
        take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()),
        |d: &[u8]| {
            std::str::from_utf8(d)
                .map_err(|_| ())
                .and_then(|s| s.parse::<u16>().map_err(|_| ()))
        },
    )
    .parse(i)
}

/// `status-code = class "." subject "." detail` followed by SP or the end of the text.
fn enhanced(i: &[u8]) -> IResult<&[u8], EnhancedCode> {
    let (rest, (class, _, subject, _, detail)) = (
        one_of("245"),
        tag(&b"."[..]),
        digits,
        tag(&b"."[..]),
        digits,
    )
        .parse(i)?;
    let class = match class {
        '2' => 2,
        '4' => 4,
        _ => 5,
    };
    Ok((rest, EnhancedCode::new(class, subject, detail)))
}

/// Splits an enhanced status code off the front of a reply text, if one is there and its
/// class matches the reply code's first digit (RFC 2034 section 4).
pub fn split_enhanced(code: u16, text: &[u8]) -> Option<(EnhancedCode, &[u8])> {
    let (rest, e) = enhanced(text).ok()?;
    if u16::from(e.class) != code / 100 {
        return None;
    }
    match rest {
        [] => Some((e, rest)),
        [b' ', tail @ ..] => Some((e, tail)),
        _ => None,
    }
}

/// Parses one complete reply from the front of `input`.
///
/// Returns `Ok(None)` when more input is needed, or the reply and the number of bytes it
/// used. Lines end with CRLF; a bare LF is accepted. The enhanced status code is taken from
/// the first line and removed from following lines that repeat it.
pub fn reply(input: &[u8]) -> Result<Option<(Reply, usize)>, Error> {
    let mut pos = 0;
    let mut code = None;
    let mut enhanced = None;
    let mut lines = Vec::new();
    loop {
        let rest = input.get(pos..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return Ok(None);
        };
        let raw = rest.get(..nl).unwrap_or_default();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = reply_line(raw).map_err(|e| match e {
            Error::MalformedReply { what, position } => Error::MalformedReply {
                what,
                position: pos + position,
            },
            other => other,
        })?;
        match code {
            None => {
                code = Some(line.code);
                if let Some((e, t)) = split_enhanced(line.code, line.text) {
                    enhanced = Some(e);
                    lines.push(String::from_utf8_lossy(t).into_owned());
                } else {
                    lines.push(String::from_utf8_lossy(line.text).into_owned());
                }
            }
            Some(c) if c != line.code => {
                return Err(Error::MalformedReply {
                    what: "reply code changes inside a multi-line reply",
                    position: pos,
                });
            }
            Some(_) => {
                let text = match (enhanced, split_enhanced(line.code, line.text)) {
                    (Some(e), Some((e2, t))) if e == e2 => t,
                    _ => line.text,
                };
                lines.push(String::from_utf8_lossy(text).into_owned());
            }
        }
        pos += nl + 1;
        if line.last {
            let code = code.unwrap_or(line.code);
            return Ok(Some((
                Reply {
                    code,
                    enhanced,
                    lines,
                },
                pos,
            )));
        }
    }
}
