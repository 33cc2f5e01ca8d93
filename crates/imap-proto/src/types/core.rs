//! Core grammar values: tags, atoms, text, flags, capabilities, mailbox names.

use std::fmt;

use bytes::Bytes;

use super::ValidationError;

/// `ATOM-CHAR`: any 7-bit character except `atom-specials`
/// (`( ) {` SP, controls, `% *`, `" \`, `]`).
#[must_use]
pub const fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR`: an `ATOM-CHAR` or `]`.
#[must_use]
pub const fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A character allowed in a tag: an `ASTRING-CHAR` other than `+`.
#[must_use]
pub const fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char`: an `ATOM-CHAR`, a list wildcard (`%`, `*`) or `]`.
#[must_use]
pub const fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

fn validate(
    what: &'static str,
    bytes: &[u8],
    ok: impl Fn(u8) -> bool,
) -> Result<(), ValidationError> {
    if bytes.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    match bytes.iter().position(|b| !ok(*b)) {
        Some(at) => Err(ValidationError::ForbiddenByte {
            what,
            byte: bytes.get(at).copied().unwrap_or(0),
            at,
        }),
        None => Ok(()),
    }
}

/// A command tag: one or more `ASTRING-CHAR`s other than `+`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Bytes);

impl Tag {
    /// Validates and builds a tag.
    pub fn new(tag: impl Into<Bytes>) -> Result<Self, ValidationError> {
        let tag = tag.into();
        validate("tag", &tag, is_tag_char)?;
        Ok(Self(tag))
    }

    /// The tag's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The tag as text (tags are 7-bit ASCII).
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The underlying buffer.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:?})", self.as_str())
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<&str> for Tag {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// An atom: one or more `ATOM-CHAR`s.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(Bytes);

impl Atom {
    /// Validates and builds an atom.
    pub fn new(atom: impl Into<Bytes>) -> Result<Self, ValidationError> {
        let atom = atom.into();
        validate("atom", &atom, is_atom_char)?;
        Ok(Self(atom))
    }

    /// The atom's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The atom as text (atoms are 7-bit ASCII).
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Case-insensitive comparison with `other`, as IMAP compares most atoms.
    #[must_use]
    pub fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.as_bytes())
    }

    /// The underlying buffer.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atom({:?})", self.as_str())
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<&str> for Atom {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// Human-readable response text (`text` in the ABNF): no CR, LF or NUL. May be empty.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(String);

impl Text {
    /// Validates and builds a text.
    pub fn new(text: impl Into<String>) -> Result<Self, ValidationError> {
        let text = text.into();
        if let Some(at) = text.bytes().position(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ValidationError::ForbiddenByte {
                what: "text",
                byte: text.as_bytes().get(at).copied().unwrap_or(0),
                at,
            });
        }
        Ok(Self(text))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Text {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

/// A capability name such as `IMAP4rev2`, `AUTH=PLAIN`, `IDLE` (an atom; compared
/// case-insensitively).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Capability(pub Atom);

impl Capability {
    /// Builds a capability from its name.
    pub fn new(name: &str) -> Result<Self, ValidationError> {
        Atom::try_from(name).map(Self)
    }

    /// Case-insensitive comparison with a capability name.
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }

    /// The SASL mechanism of an `AUTH=` capability.
    #[must_use]
    pub fn auth_mechanism(&self) -> Option<&str> {
        let s = self.0.as_str();
        let prefix = s.get(..5)?;
        prefix
            .eq_ignore_ascii_case("AUTH=")
            .then(|| s.get(5..))
            .flatten()
    }
}

/// A message flag (`flag`, `flag-fetch`): system flags, `\Recent`, keywords and extensions.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// `\Recent` (IMAP4rev1 only; only in server responses)
    Recent,
    /// A keyword such as `$Forwarded` or `NonJunk`.
    Keyword(Atom),
    /// An unknown system-flag-like extension `\Name` (the atom without the backslash).
    Extension(Atom),
}

impl Flag {
    /// Builds a flag from its wire form (`\Seen`, `$Junk`, ...); system flags are matched
    /// case-insensitively.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if let Some(name) = s.strip_prefix('\\') {
            Ok(Self::system(Atom::try_from(name)?))
        } else {
            Ok(Self::Keyword(Atom::try_from(s)?))
        }
    }

    /// Maps a system flag name (without the backslash) to a flag, case-insensitively.
    #[must_use]
    pub fn system(atom: Atom) -> Self {
        let b = atom.as_bytes();
        if b.eq_ignore_ascii_case(b"Seen") {
            Self::Seen
        } else if b.eq_ignore_ascii_case(b"Answered") {
            Self::Answered
        } else if b.eq_ignore_ascii_case(b"Flagged") {
            Self::Flagged
        } else if b.eq_ignore_ascii_case(b"Deleted") {
            Self::Deleted
        } else if b.eq_ignore_ascii_case(b"Draft") {
            Self::Draft
        } else if b.eq_ignore_ascii_case(b"Recent") {
            Self::Recent
        } else {
            Self::Extension(atom)
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seen => f.write_str("\\Seen"),
            Self::Answered => f.write_str("\\Answered"),
            Self::Flagged => f.write_str("\\Flagged"),
            Self::Deleted => f.write_str("\\Deleted"),
            Self::Draft => f.write_str("\\Draft"),
            Self::Recent => f.write_str("\\Recent"),
            Self::Keyword(a) => write!(f, "{a}"),
            Self::Extension(a) => write!(f, "\\{a}"),
        }
    }
}

/// An entry of `PERMANENTFLAGS`: a flag, or `\*` (clients may create new keywords).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum FlagPerm {
    /// A flag that can be changed permanently.
    Flag(Flag),
    /// `\*`
    Wildcard,
}

/// A mailbox attribute in LIST/LSUB responses, LIST selection (RFC 5258) and
/// SPECIAL-USE (RFC 6154) / CREATE-SPECIAL-USE.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum MailboxAttr {
    /// `\Noinferiors`
    NoInferiors,
    /// `\Noselect`
    NoSelect,
    /// `\Marked`
    Marked,
    /// `\Unmarked`
    Unmarked,
    /// `\NonExistent`
    NonExistent,
    /// `\Subscribed`
    Subscribed,
    /// `\Remote`
    Remote,
    /// `\HasChildren`
    HasChildren,
    /// `\HasNoChildren`
    HasNoChildren,
    /// `\All` (special use)
    All,
    /// `\Archive` (special use)
    Archive,
    /// `\Drafts` (special use)
    Drafts,
    /// `\Flagged` (special use)
    Flagged,
    /// `\Junk` (special use)
    Junk,
    /// `\Sent` (special use)
    Sent,
    /// `\Trash` (special use)
    Trash,
    /// Any other `\Name` (the atom without the backslash).
    Extension(Atom),
}

impl MailboxAttr {
    /// Maps a name (without the backslash) to a known attribute, case-insensitively.
    #[must_use]
    pub fn from_atom(atom: Atom) -> Self {
        const KNOWN: &[(&str, MailboxAttr)] = &[
            ("Noinferiors", MailboxAttr::NoInferiors),
            ("Noselect", MailboxAttr::NoSelect),
            ("Marked", MailboxAttr::Marked),
            ("Unmarked", MailboxAttr::Unmarked),
            ("NonExistent", MailboxAttr::NonExistent),
            ("Subscribed", MailboxAttr::Subscribed),
            ("Remote", MailboxAttr::Remote),
            ("HasChildren", MailboxAttr::HasChildren),
            ("HasNoChildren", MailboxAttr::HasNoChildren),
            ("All", MailboxAttr::All),
            ("Archive", MailboxAttr::Archive),
            ("Drafts", MailboxAttr::Drafts),
            ("Flagged", MailboxAttr::Flagged),
            ("Junk", MailboxAttr::Junk),
            ("Sent", MailboxAttr::Sent),
            ("Trash", MailboxAttr::Trash),
        ];
        for (name, attr) in KNOWN {
            if atom.eq_ignore_ascii_case(name) {
                return attr.clone();
            }
        }
        Self::Extension(atom)
    }

    /// The name without the backslash, in its canonical spelling.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::NoInferiors => "Noinferiors",
            Self::NoSelect => "Noselect",
            Self::Marked => "Marked",
            Self::Unmarked => "Unmarked",
            Self::NonExistent => "NonExistent",
            Self::Subscribed => "Subscribed",
            Self::Remote => "Remote",
            Self::HasChildren => "HasChildren",
            Self::HasNoChildren => "HasNoChildren",
            Self::All => "All",
            Self::Archive => "Archive",
            Self::Drafts => "Drafts",
            Self::Flagged => "Flagged",
            Self::Junk => "Junk",
            Self::Sent => "Sent",
            Self::Trash => "Trash",
            Self::Extension(a) => a.as_str(),
        }
    }
}

/// A mailbox name, held decoded as Unicode.
///
/// On the wire it is written in modified UTF-7 (RFC 3501 5.1.3) unless UTF-8 was negotiated
/// (UTF8=ACCEPT, IMAP4rev2), see the parser and encoder options. `INBOX` is
/// case-insensitive and normalised to upper case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(String);

impl Mailbox {
    /// Builds a mailbox name (may be empty, e.g. a LIST reference). Rejects CR, LF and NUL.
    pub fn new(name: impl Into<String>) -> Result<Self, ValidationError> {
        let name = name.into();
        if let Some(at) = name.bytes().position(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ValidationError::ForbiddenByte {
                what: "mailbox name",
                byte: name.as_bytes().get(at).copied().unwrap_or(0),
                at,
            });
        }
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(Self::inbox());
        }
        Ok(Self(name))
    }

    /// `INBOX`.
    #[must_use]
    pub fn inbox() -> Self {
        Self("INBOX".to_owned())
    }

    /// Whether this is `INBOX`.
    #[must_use]
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// The decoded name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", self.0)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Mailbox {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

/// A LIST/LSUB mailbox pattern, decoded as Unicode; may contain the wildcards `*` and `%`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ListPattern(String);

impl ListPattern {
    /// Builds a pattern. Rejects CR, LF and NUL.
    pub fn new(pattern: impl Into<String>) -> Result<Self, ValidationError> {
        let pattern = pattern.into();
        if let Some(at) = pattern.bytes().position(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ValidationError::ForbiddenByte {
                what: "list pattern",
                byte: pattern.as_bytes().get(at).copied().unwrap_or(0),
                at,
            });
        }
        Ok(Self(pattern))
    }

    /// The decoded pattern.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ListPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListPattern({:?})", self.0)
    }
}

impl TryFrom<&str> for ListPattern {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}
