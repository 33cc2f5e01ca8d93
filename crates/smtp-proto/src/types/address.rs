use std::fmt;

use bytes::Bytes;

/// Addresses up to this many octets live inside the [`Mailbox`] value (no allocation, no
/// reference count); nearly all real addresses are shorter.
const INLINE: usize = 60;

/// Copies `src` (at most [`INLINE`] octets) to the front of `dst` as two overlapping
/// fixed-size copies, the way `memcpy` does small sizes, but inline: a `memcpy` call costs
/// more than the copy itself at these sizes.
#[inline(always)]
fn copy_short(dst: &mut [u8; INLINE], src: &[u8]) {
    fn two<const N: usize>(dst: &mut [u8; INLINE], src: &[u8]) {
        let n = src.len();
        if let (Some(a), Some(b)) = (src.first_chunk::<N>(), src.last_chunk::<N>()) {
            if let Some(d) = dst.first_chunk_mut::<N>() {
                *d = *a;
            }
            if let Some(d) = dst.get_mut(n - N..n).and_then(|d| d.first_chunk_mut::<N>()) {
                *d = *b;
            }
        }
    }
    match src.len() {
        32.. => two::<32>(dst, src),
        16..=31 => two::<16>(dst, src),
        8..=15 => two::<8>(dst, src),
        4..=7 => two::<4>(dst, src),
        _ => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
    }
}

/// The octets of a mailbox: inline when short, else a (possibly shared) buffer.
#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Bytes),
}

/// A mailbox `local-part@domain` (RFC 5321 section 4.1.2, extended to UTF-8 by RFC 6531).
///
/// The local part is kept in its wire form: a dot-string (`john.doe`) or a quoted string
/// with its quotes (`"john doe"`). The domain is a domain name (A-labels or U-labels) or an
/// address literal with its brackets (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). Both live in
/// one run of octets (`local@domain`): inside the value itself up to 60 octets (no
/// allocation), else in a buffer, which for a mailbox parsed by
/// [`crate::parse::command_bytes`] (as the server does) is a zero-copy slice of the command
/// line. The octets are valid UTF-8 (checked when the mailbox is made, and only when a
/// non-ASCII octet is present); the `&str` accessors re-check them, which costs a few
/// instructions per 16 octets of ASCII and never fails.
#[derive(Clone)]
pub struct Mailbox {
    repr: Repr,
    at: usize,
}

impl PartialEq for Mailbox {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.bytes() == other.bytes()
    }
}

impl Eq for Mailbox {}

impl std::hash::Hash for Mailbox {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
        self.at.hash(state);
    }
}

impl Mailbox {
    /// Builds a mailbox from its two halves (no validation: the encoder writes them as is).
    pub fn new(local_part: impl AsRef<str>, domain: impl AsRef<str>) -> Self {
        let (l, d) = (local_part.as_ref(), domain.as_ref());
        let len = l.len() + 1 + d.len();
        if len <= INLINE {
            let mut buf = [0u8; INLINE];
            let parts = [l.as_bytes(), b"@", d.as_bytes()];
            let mut pos = 0;
            for part in parts {
                if let Some(dst) = buf.get_mut(pos..pos + part.len()) {
                    dst.copy_from_slice(part);
                }
                pos += part.len();
            }
            return Mailbox {
                repr: Repr::Inline {
                    len: len as u8,
                    buf,
                },
                at: l.len(),
            };
        }
        let mut addr = String::with_capacity(len);
        addr.push_str(l);
        addr.push('@');
        addr.push_str(d);
        Mailbox {
            repr: Repr::Heap(Bytes::from(addr)),
            at: l.len(),
        }
    }

    /// `line[start..end]` is valid UTF-8 `local@domain` with the `@` at byte `start + at`;
    /// `shared` gives the same octets as a buffer, called only when they are too long to
    /// be kept inline.
    #[inline]
    pub(crate) fn from_wire(
        line: &[u8],
        start: usize,
        end: usize,
        at: usize,
        shared: impl FnOnce() -> Bytes,
    ) -> Self {
        let len = end - start;
        if len > INLINE {
            return Mailbox {
                repr: Repr::Heap(shared()),
                at,
            };
        }
        let mut buf = [0u8; INLINE];
        if let Some(src) = line.get(start..end) {
            copy_short(&mut buf, src);
        }
        Mailbox {
            repr: Repr::Inline {
                len: len as u8,
                buf,
            },
            at,
        }
    }

    /// The octets of `local@domain`.
    fn bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(b) => b,
        }
    }

    /// The whole address as a string slice (the octets were checked when it was made).
    fn text(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }

    /// The local part in wire form (quotes kept).
    pub fn local_part(&self) -> &str {
        self.bytes()
            .get(..self.at)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// The domain or address literal.
    pub fn domain(&self) -> &str {
        self.bytes()
            .get(self.at + 1..)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// The whole address, `local-part@domain`.
    pub fn as_str(&self) -> &str {
        self.text()
    }

    /// True when the address contains a non-ASCII character, which requires SMTPUTF8.
    pub fn is_utf8(&self) -> bool {
        !self.bytes().is_ascii()
    }

    /// The local part without the quoting of a quoted string (`"a\ b"` gives `a b`).
    pub fn local_part_unquoted(&self) -> String {
        let lp = self.local_part();
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
        f.write_str(self.text())
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("addr", &self.text())
            .field("at", &self.at)
            .finish()
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
