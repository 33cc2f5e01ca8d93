use std::fmt;

/// A mailbox `local-part@domain` (RFC 5321 section 4.1.2, extended to UTF-8 by RFC 6531).
///
/// `local_part` is kept in its wire form: a dot-string (`john.doe`) or a quoted string with
/// its quotes (`"john doe"`). `domain` is a domain name (A-labels or U-labels) or an
/// address literal with its brackets (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The local part in wire form (quotes kept).
    pub local_part: String,
    /// The domain or address literal.
    pub domain: String,
}

impl Mailbox {
    /// Builds a mailbox from its two halves (no validation: the encoder writes them as is).
    pub fn new(local_part: impl Into<String>, domain: impl Into<String>) -> Self {
        Mailbox {
            local_part: local_part.into(),
            domain: domain.into(),
        }
    }

    /// True when the address contains a non-ASCII character, which requires SMTPUTF8.
    pub fn is_utf8(&self) -> bool {
        !self.local_part.is_ascii() || !self.domain.is_ascii()
    }

    /// The local part without the quoting of a quoted string (`"a\ b"` gives `a b`).
    pub fn local_part_unquoted(&self) -> String {
        let lp = self.local_part.as_str();
        match lp.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            None => lp.to_string(),
            Some(inner) => {
                let mut out = String::with_capacity(inner.len());
                let mut escaped = false;
                for c in inner.chars() {
                    if escaped || c != '\\' {
                        out.push(c);
                        escaped = false;
                    } else {
                        escaped = true;
                    }
                }
                out
            }
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.domain)
    }
}

/// The argument of `MAIL FROM:`: a mailbox or the null path `<>` (bounces).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: the null reverse-path used by delivery status notifications.
    Null,
    /// `<mailbox>`.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// The mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }

    /// True when the address contains a non-ASCII character.
    pub fn is_utf8(&self) -> bool {
        self.mailbox().is_some_and(Mailbox::is_utf8)
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The argument of `RCPT TO:`: a mailbox or the bare `<Postmaster>` (RFC 5321 section 4.1.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain: the server's own postmaster.
    Postmaster,
    /// `<mailbox>`.
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// The mailbox, unless this is the bare `<Postmaster>`.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ForwardPath::Postmaster => None,
            ForwardPath::Mailbox(m) => Some(m),
        }
    }

    /// True when the address contains a non-ASCII character.
    pub fn is_utf8(&self) -> bool {
        self.mailbox().is_some_and(Mailbox::is_utf8)
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}
