//! Parsers over complete, already framed lines (without the CRLF).
//!
//! Built from `nom` combinators; every function takes one whole line and either returns
//! the typed value or an [`Error`] with the octet position of the problem.

use base64::Engine as _;
use bytes::Bytes;
use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while, take_while1},
    character::complete::digit1,
    combinator::{all_consuming, map_res, opt},
    sequence::preceded,
};

use crate::Error;
use crate::types::{
    Capability, Command, Expire, Response, ResponseCode, ScanListing, Secret, ServerLine, Status,
    UidListing, secret,
};

fn syntax(line: &[u8], rest: &[u8], reason: &'static str) -> Error {
    Error::Syntax {
        position: line.len().saturating_sub(rest.len()),
        reason,
    }
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn number(i: &[u8]) -> IResult<&[u8], u32> {
    map_res(digit1, |d: &[u8]| {
        // digit1 guarantees ASCII digits.
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u32>().map_err(|_| ()))
    })
    .parse(i)
}

fn number64(i: &[u8]) -> IResult<&[u8], u64> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u64>().map_err(|_| ()))
    })
    .parse(i)
}

fn spaces(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b| b == b' ').parse(i)
}

fn param(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b > 0x20 && b != 0x7f).parse(i)
}

/// Zero or more `SP param`, trailing spaces allowed.
fn params(i: &[u8]) -> IResult<&[u8], Vec<&[u8]>> {
    let (mut i, _) = take_while(|b| b == b' ').parse(i)?;
    let mut out = Vec::new();
    while !i.is_empty() {
        let (r, p) = param(i)?;
        out.push(p);
        let (r, _) = take_while(|b| b == b' ').parse(r)?;
        i = r;
    }
    Ok((i, out))
}

/// Up to three `SP param` without allocating (no command takes more than two; the third is
/// kept only to point an error at it).
fn params3(i: &[u8]) -> IResult<&[u8], ([&[u8]; 3], usize)> {
    let (mut i, _) = take_while(|b| b == b' ').parse(i)?;
    let mut out: [&[u8]; 3] = [&[]; 3];
    let mut n = 0;
    while !i.is_empty() && n < 3 {
        let (r, p) = param(i)?;
        if let Some(slot) = out.get_mut(n) {
            *slot = p;
        }
        n += 1;
        let (r, _) = take_while(|b| b == b' ').parse(r)?;
        i = r;
    }
    Ok((i, (out, n)))
}

fn parse_num(line: &[u8], p: &[u8]) -> Result<u32, Error> {
    match all_consuming(number).parse(p) {
        Ok((_, n)) => Ok(n),
        Err(_) => Err(Error::Syntax {
            position: (p.as_ptr() as usize).saturating_sub(line.as_ptr() as usize),
            reason: "expected a message number (digits, at most 4294967295)",
        }),
    }
}

/// Decodes strict base64 (RFC 4648 section 4, padding required, no stray characters).
pub fn base64(text: &[u8]) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| Error::Base64 { position: 0 })
}

/// A SASL response line from the client (RFC 5034): base64, or `*` to cancel.
///
/// Returns `None` for the cancel line `*`.
pub fn sasl_response(line: &[u8]) -> Result<Option<Secret>, Error> {
    if line == b"*" {
        return Ok(None);
    }
    base64(line).map(|v| Some(secret(v)))
}

/// Parses one command line (without CRLF).
///
/// Keywords are case-insensitive; arguments are separated by one or more spaces and
/// trailing spaces are ignored, except for `PASS`, whose argument is the rest of the line
/// after the first space (RFC 1939 allows spaces in passwords).
pub fn command(line: &[u8]) -> Result<Command, Error> {
    if let Some(pos) = line.iter().position(|&b| is_ctl(b)) {
        return Err(Error::Syntax {
            position: pos,
            reason: "control characters are not allowed",
        });
    }
    let kw: IResult<&[u8], &[u8]> = take_while1(|b: u8| b.is_ascii_alphabetic()).parse(line);
    let Ok((rest, kw)) = kw else {
        return Err(Error::UnknownCommand);
    };
    if !(rest.is_empty() || rest.first() == Some(&b' ')) || kw.len() > 4 || kw.len() < 3 {
        return Err(Error::UnknownCommand);
    }
    let mut k = [0u8; 4];
    for (d, s) in k.iter_mut().zip(kw) {
        *d = s.to_ascii_uppercase();
    }
    let k = k.get(..kw.len()).unwrap_or_default();
    if k == b"PASS" {
        return match rest.split_first() {
            Some((b' ', pass)) => Ok(Command::Pass(secret(Bytes::copy_from_slice(pass)))),
            _ => Err(syntax(line, rest, "PASS needs a password")),
        };
    }
    let (arr, n) = match params3(rest) {
        Ok((_, a)) => a,
        Err(_) => return Err(syntax(line, rest, "expected arguments separated by spaces")),
    };
    let args: &[&[u8]] = arr.get(..n).unwrap_or_default();
    let arg_pos = |a: &[u8]| -> &[u8] {
        // the remainder starting at argument `a`, for error positions
        let off = (a.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
        line.get(off..).unwrap_or_default()
    };
    let none = |c: Command| -> Result<Command, Error> {
        match args.first() {
            None => Ok(c),
            Some(a) => Err(syntax(line, arg_pos(a), "this command takes no arguments")),
        }
    };
    let opt_num = |c: fn(Option<u32>) -> Command| -> Result<Command, Error> {
        match args {
            [] => Ok(c(None)),
            [n] => Ok(c(Some(parse_num(line, n)?))),
            [_, x, ..] => Err(syntax(
                line,
                arg_pos(x),
                "expected at most one message number",
            )),
        }
    };
    let one_num = |c: fn(u32) -> Command| -> Result<Command, Error> {
        match args {
            [n] => Ok(c(parse_num(line, n)?)),
            [] => Err(syntax(line, rest, "expected a message number")),
            [_, x, ..] => Err(syntax(
                line,
                arg_pos(x),
                "expected exactly one message number",
            )),
        }
    };
    match k {
        b"USER" => {
            let name = trim(rest);
            if name.is_empty() {
                Err(syntax(line, rest, "USER needs a mailbox name"))
            } else {
                Ok(Command::User(Bytes::copy_from_slice(name)))
            }
        }
        b"APOP" => match args {
            [name, digest] => {
                if digest.len() == 32 && digest.iter().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Command::Apop {
                        name: Bytes::copy_from_slice(name),
                        digest: Bytes::from(digest.to_ascii_lowercase()),
                    })
                } else {
                    Err(syntax(
                        line,
                        arg_pos(digest),
                        "expected an MD5 digest of 32 hex digits",
                    ))
                }
            }
            _ => Err(syntax(line, rest, "expected APOP name digest")),
        },
        b"AUTH" => match args {
            [] => Ok(Command::AuthList),
            [mech, ir @ ..] if ir.len() <= 1 => {
                let ok = mech.len() <= 20
                    && mech
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
                if !ok {
                    return Err(syntax(
                        line,
                        arg_pos(mech),
                        "expected a SASL mechanism name",
                    ));
                }
                let initial_response = match ir.first() {
                    None => None,
                    Some(&b"=") => Some(secret(Bytes::new())),
                    Some(r) => match base64(r) {
                        Ok(v) => Some(secret(v)),
                        Err(_) => {
                            return Err(Error::Base64 {
                                position: line.len().saturating_sub(arg_pos(r).len()),
                            });
                        }
                    },
                };
                Ok(Command::Auth {
                    mechanism: Bytes::from(mech.to_ascii_uppercase()),
                    initial_response,
                })
            }
            _ => Err(syntax(
                line,
                rest,
                "expected AUTH mechanism [initial-response]",
            )),
        },
        b"STAT" => none(Command::Stat),
        b"NOOP" => none(Command::Noop),
        b"RSET" => none(Command::Rset),
        b"QUIT" => none(Command::Quit),
        b"CAPA" => none(Command::Capa),
        b"STLS" => none(Command::Stls),
        b"LIST" => opt_num(Command::List),
        b"UIDL" => opt_num(Command::Uidl),
        b"RETR" => one_num(Command::Retr),
        b"DELE" => one_num(Command::Dele),
        b"TOP" => match args {
            [m, n] => Ok(Command::Top {
                msg: parse_num(line, m)?,
                lines: parse_num(line, n)?,
            }),
            _ => Err(syntax(line, rest, "expected TOP msg n")),
        },
        _ => Err(Error::UnknownCommand),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

fn resp_code(i: &[u8]) -> IResult<&[u8], &[u8]> {
    // "[" resp-level *("/" resp-level) "]" ; rchar = %x21-2E / %x30-5C / %x5E-7F
    let rchar = |b: u8| (0x21..=0x7f).contains(&b) && b != b'/' && b != b']';
    let (r, _) = tag(&b"["[..]).parse(i)?;
    let (mut r2, _) = take_while1(rchar).parse(r)?;
    loop {
        let next: IResult<&[u8], &[u8]> = preceded(tag(&b"/"[..]), take_while1(rchar)).parse(r2);
        match next {
            Ok((r3, _)) => r2 = r3,
            Err(_) => break,
        }
    }
    let inner_len = r.len() - r2.len();
    let (r4, _) = tag(&b"]"[..]).parse(r2)?;
    Ok((r4, r.get(..inner_len).unwrap_or_default()))
}

/// Parses a status line `+OK [text]` / `-ERR [text]`, extracting a leading `[CODE]`.
pub fn response(line: &[u8]) -> Result<Response, Error> {
    let (rest, status) = if let Some(r) = line.strip_prefix(b"+OK") {
        (r, Status::Ok)
    } else if let Some(r) = line.strip_prefix(b"-ERR") {
        (r, Status::Err)
    } else {
        return Err(Error::Syntax {
            position: 0,
            reason: "expected +OK or -ERR",
        });
    };
    let text = match rest.split_first() {
        None => &b""[..],
        Some((b' ', t)) => t,
        Some(_) => return Err(syntax(line, rest, "expected a space after the status")),
    };
    if let Ok((after, code)) = resp_code(text) {
        let after = after.strip_prefix(b" ").unwrap_or(after);
        return Ok(Response {
            status,
            code: Some(ResponseCode::from_bytes(code)),
            text: Bytes::copy_from_slice(after),
        });
    }
    Ok(Response {
        status,
        code: None,
        text: Bytes::copy_from_slice(text),
    })
}

/// Parses any line a server sends outside a body: a status line or a SASL challenge.
pub fn server_line(line: &[u8]) -> Result<ServerLine, Error> {
    if line == b"+" {
        return Ok(ServerLine::Challenge(Bytes::new()));
    }
    if let Some(b64) = line.strip_prefix(b"+ ") {
        let b64 = trim(b64);
        return base64(b64)
            .map(|v| ServerLine::Challenge(Bytes::from(v)))
            .map_err(|_| Error::Base64 { position: 2 });
    }
    response(line).map(ServerLine::Status)
}

/// Parses a `LIST` line `msg size` (extra text after the size is ignored, RFC 1939).
pub fn scan_listing(line: &[u8]) -> Result<ScanListing, Error> {
    let r: IResult<&[u8], (u32, u64)> = (number, preceded(spaces, number64)).parse(line);
    match r {
        Ok((rest, (msg, size))) if rest.is_empty() || rest.first() == Some(&b' ') => {
            Ok(ScanListing { msg, size })
        }
        _ => Err(Error::Syntax {
            position: 0,
            reason: "expected msg size",
        }),
    }
}

/// Parses a `UIDL` line `msg unique-id`.
pub fn uid_listing(line: &[u8]) -> Result<UidListing, Error> {
    let r: IResult<&[u8], (u32, &[u8])> = (number, preceded(spaces, param)).parse(line);
    match r {
        Ok((rest, (msg, uid))) if trim(rest).is_empty() => Ok(UidListing {
            msg,
            uid: Bytes::copy_from_slice(uid),
        }),
        _ => Err(Error::Syntax {
            position: 0,
            reason: "expected msg unique-id",
        }),
    }
}

/// Parses the text of a `+OK` answer to `STAT` (`count size`) into `(count, size)`.
pub fn stat(text: &[u8]) -> Result<(u32, u64), Error> {
    let r: IResult<&[u8], (u32, u64)> = (number, preceded(spaces, number64)).parse(text);
    match r {
        Ok((rest, v)) if rest.is_empty() || rest.first() == Some(&b' ') => Ok(v),
        _ => Err(Error::Syntax {
            position: 0,
            reason: "expected count size",
        }),
    }
}

/// Finds the APOP timestamp `<...>` in a greeting's text (RFC 1939 section 7), brackets
/// included.
pub fn greeting_timestamp(text: &[u8]) -> Option<Bytes> {
    let start = memchr::memchr(b'<', text)?;
    let len = memchr::memchr(b'>', text.get(start..)?)?;
    let ts = text.get(start..=start + len)?;
    ts.iter()
        .all(|b| (0x21..=0x7e).contains(b))
        .then(|| Bytes::copy_from_slice(ts))
}

/// Parses one line of the `CAPA` answer.
pub fn capability(line: &[u8]) -> Result<Capability, Error> {
    let cchar = |b: u8| (0x21..=0x7f).contains(&b) && b != b'.';
    let r: IResult<&[u8], &[u8]> = take_while1(cchar).parse(line);
    let Ok((rest, tag)) = r else {
        return Err(Error::Syntax {
            position: 0,
            reason: "expected a capability tag",
        });
    };
    if !(rest.is_empty() || rest.first() == Some(&b' ')) {
        return Err(syntax(
            line,
            rest,
            "expected a space after the capability tag",
        ));
    }
    let tag = tag.to_ascii_uppercase();
    if tag == b"IMPLEMENTATION" {
        let text = rest.get(1..).unwrap_or_default();
        return Ok(Capability::Implementation(Bytes::copy_from_slice(text)));
    }
    let params = match params(rest) {
        Ok((_, p)) => p,
        Err(_) => return Err(syntax(line, rest, "expected capability parameters")),
    };
    let per_user = |p: Option<&&[u8]>| p.map(|u| u.eq_ignore_ascii_case(b"USER"));
    let cap = match (tag.as_slice(), params.as_slice()) {
        (b"TOP", []) => Capability::Top,
        (b"USER", []) => Capability::User,
        (b"SASL", mechs) => {
            Capability::Sasl(mechs.iter().map(|m| Bytes::copy_from_slice(m)).collect())
        }
        (b"RESP-CODES", []) => Capability::RespCodes,
        (b"PIPELINING", []) => Capability::Pipelining,
        (b"UIDL", []) => Capability::Uidl,
        (b"STLS", []) => Capability::Stls,
        (b"AUTH-RESP-CODE", []) => Capability::AuthRespCode,
        (b"LOGIN-DELAY", [n, rest @ ..]) if rest.len() <= 1 => {
            match (all_consuming(number).parse(n), per_user(rest.first())) {
                (Ok((_, seconds)), None | Some(true)) => Capability::LoginDelay {
                    seconds,
                    per_user: !rest.is_empty(),
                },
                _ => other(&tag, &params),
            }
        }
        (b"EXPIRE", [p, rest @ ..]) if rest.len() <= 1 => {
            let policy = if p.eq_ignore_ascii_case(b"NEVER") {
                Some(Expire::Never)
            } else {
                all_consuming(number)
                    .parse(p)
                    .ok()
                    .map(|(_, d)| Expire::Days(d))
            };
            match (policy, per_user(rest.first())) {
                (Some(policy), None | Some(true)) => Capability::Expire {
                    policy,
                    per_user: !rest.is_empty(),
                },
                _ => other(&tag, &params),
            }
        }
        _ => other(&tag, &params),
    };
    Ok(cap)
}

fn other(tag: &[u8], params: &[&[u8]]) -> Capability {
    Capability::Other {
        tag: Bytes::copy_from_slice(tag),
        params: params.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
    }
}

/// Parses the optional number argument of e.g. the `LOGIN-DELAY` capability; exposed for
/// callers that read numbers out of response text.
pub fn leading_number(text: &[u8]) -> Option<u64> {
    let r: IResult<&[u8], Option<u64>> = opt(number64).parse(text);
    r.ok().and_then(|(_, n)| n)
}
