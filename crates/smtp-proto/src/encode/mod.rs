//! Writers for commands and replies; `parse(encode(x)) == x` is a property test.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, BytesMut};

use crate::types::{Command, ForwardPath, MailParams, Notify, RcptParams, Reply, Ret, ReversePath};

/// Appends `cmd` and its CRLF to `out`.
///
/// Free-text arguments (`VRFY`, `NOOP`, ...) have CR and LF replaced by spaces so that a
/// command can never be split into two on the wire.
pub fn command(cmd: &Command, out: &mut BytesMut) {
    let mut s = String::with_capacity(64);
    match cmd {
        Command::Hello { verb, domain } => {
            let _ = write!(s, "{} {}", verb.as_str(), clean(domain));
        }
        Command::Mail { from, params } => {
            let _ = write!(s, "MAIL FROM:{}", path_rev(from));
            mail_params(params, &mut s);
        }
        Command::Rcpt { to, params } => {
            let _ = write!(s, "RCPT TO:{}", path_fwd(to));
            rcpt_params(params, &mut s);
        }
        Command::Data => s.push_str("DATA"),
        Command::Bdat { size, last } => {
            let _ = write!(s, "BDAT {size}{}", if *last { " LAST" } else { "" });
        }
        Command::Rset => s.push_str("RSET"),
        Command::Vrfy(a) => {
            let _ = write!(s, "VRFY {}", clean(a));
        }
        Command::Expn(a) => {
            let _ = write!(s, "EXPN {}", clean(a));
        }
        Command::Help(a) | Command::Noop(a) => {
            s.push_str(cmd.verb());
            if let Some(a) = a {
                let _ = write!(s, " {}", clean(a));
            }
        }
        Command::Quit => s.push_str("QUIT"),
        Command::StartTls => s.push_str("STARTTLS"),
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            let _ = write!(s, "AUTH {}", clean(mechanism));
            if let Some(ir) = initial_response {
                s.push(' ');
                s.push_str(&sasl_response(ir.expose()));
            }
        }
    }
    out.reserve(s.len() + 2);
    out.put_slice(s.as_bytes());
    out.put_slice(b"\r\n");
}

/// Encodes one SASL response line's content: base64, or `=` for an empty response.
pub fn sasl_response(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_string()
    } else {
        STANDARD.encode(data)
    }
}

fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], " ").into()
    } else {
        s.into()
    }
}

fn path_rev(p: &ReversePath) -> String {
    p.to_string()
}

fn path_fwd(p: &ForwardPath) -> String {
    p.to_string()
}

/// Encodes `value` as RFC 3461 xtext.
pub fn xtext(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
}

fn other(params: &[(String, Option<String>)], s: &mut String) {
    for (k, v) in params {
        s.push(' ');
        s.push_str(&clean(k));
        if let Some(v) = v {
            s.push('=');
            s.push_str(&clean(v));
        }
    }
}

fn mail_params(p: &MailParams, s: &mut String) {
    if let Some(size) = p.size {
        let _ = write!(s, " SIZE={size}");
    }
    if let Some(body) = p.body {
        let _ = write!(s, " BODY={}", body.as_str());
    }
    if p.smtputf8 {
        s.push_str(" SMTPUTF8");
    }
    if let Some(ret) = p.ret {
        s.push_str(match ret {
            Ret::Full => " RET=FULL",
            Ret::Hdrs => " RET=HDRS",
        });
    }
    if let Some(envid) = &p.envid {
        s.push_str(" ENVID=");
        xtext(envid, s);
    }
    if let Some(auth) = &p.auth {
        s.push_str(" AUTH=");
        if auth == "<>" {
            s.push_str("<>");
        } else {
            xtext(auth, s);
        }
    }
    if p.requiretls {
        s.push_str(" REQUIRETLS");
    }
    other(&p.other, s);
}

fn notify(n: &Notify, s: &mut String) {
    if n.never {
        s.push_str("NEVER");
        return;
    }
    let mut first = true;
    for (on, name) in [
        (n.success, "SUCCESS"),
        (n.failure, "FAILURE"),
        (n.delay, "DELAY"),
    ] {
        if on {
            if !first {
                s.push(',');
            }
            s.push_str(name);
            first = false;
        }
    }
}

fn rcpt_params(p: &RcptParams, s: &mut String) {
    if let Some(n) = &p.notify {
        s.push_str(" NOTIFY=");
        notify(n, s);
    }
    if let Some(o) = &p.orcpt {
        let _ = write!(s, " ORCPT={};", o.addr_type);
        xtext(&o.address, s);
    }
    other(&p.other, s);
}

/// Appends `reply` to `out`, one `code-text` line per line and `code SP text` for the last.
///
/// When `enhanced` is false the enhanced status code is left out (for sessions where
/// ENHANCEDSTATUSCODES is not in effect). CR and LF in the text become spaces.
pub fn reply(reply: &Reply, enhanced: bool, out: &mut BytesMut) {
    let code = reply.code.clamp(200, 599);
    let n = reply.lines.len().max(1);
    let empty = [String::new()];
    let lines = if reply.lines.is_empty() {
        empty.as_slice()
    } else {
        reply.lines.as_slice()
    };
    let mut s = String::with_capacity(64 * n);
    for (i, text) in lines.iter().enumerate() {
        let sep = if i + 1 == n { ' ' } else { '-' };
        let _ = write!(s, "{code}");
        match (enhanced, reply.enhanced) {
            (true, Some(e)) => {
                let _ = write!(s, "{sep}{e}");
                if !text.is_empty() {
                    s.push(' ');
                    s.push_str(&clean(text));
                }
            }
            _ => {
                if !text.is_empty() || sep == '-' {
                    s.push(sep);
                    s.push_str(&clean(text));
                }
            }
        }
        s.push_str("\r\n");
    }
    out.put_slice(s.as_bytes());
}
