//! ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 section 7.5.2).
//!
//! Strings are kept as raw bytes (`Bytes`); `None` stands for `NIL` where the grammar has an
//! `nstring`, and an empty `Vec` for `NIL` where it has a parenthesised list.

use bytes::Bytes;

/// An address of an ENVELOPE (`address`): display name, source route, mailbox, host.
/// A group is written with `host = None` (start: `mailbox` = group name; end: `mailbox`
/// also `None`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Address {
    /// Display name (`addr-name`).
    pub name: Option<Bytes>,
    /// Source route (`addr-adl`), obsolete.
    pub adl: Option<Bytes>,
    /// Local part, or group name (`addr-mailbox`).
    pub mailbox: Option<Bytes>,
    /// Domain (`addr-host`).
    pub host: Option<Bytes>,
}

/// The ENVELOPE of a message.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Envelope {
    /// `Date:` header.
    pub date: Option<Bytes>,
    /// `Subject:` header.
    pub subject: Option<Bytes>,
    /// `From:` addresses (empty for `NIL`).
    pub from: Vec<Address>,
    /// `Sender:` addresses.
    pub sender: Vec<Address>,
    /// `Reply-To:` addresses.
    pub reply_to: Vec<Address>,
    /// `To:` addresses.
    pub to: Vec<Address>,
    /// `Cc:` addresses.
    pub cc: Vec<Address>,
    /// `Bcc:` addresses.
    pub bcc: Vec<Address>,
    /// `In-Reply-To:` header.
    pub in_reply_to: Option<Bytes>,
    /// `Message-ID:` header.
    pub message_id: Option<Bytes>,
}

/// The basic fields of a non-multipart body (`body-fields`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct BodyFields {
    /// Parameters such as `("CHARSET" "US-ASCII")` (empty for `NIL`).
    pub params: Vec<(Bytes, Bytes)>,
    /// `Content-ID`.
    pub id: Option<Bytes>,
    /// `Content-Description`.
    pub description: Option<Bytes>,
    /// `Content-Transfer-Encoding`, e.g. `7BIT`, `BASE64`.
    pub encoding: Bytes,
    /// Size in octets of the encoded body.
    pub size: u32,
}

/// What kind of non-multipart body this is, with the fields specific to it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum SinglePartKind {
    /// Any type other than `TEXT/*` and `MESSAGE/RFC822` / `MESSAGE/GLOBAL`.
    Basic,
    /// `TEXT/*`: the size in lines.
    Text {
        /// Number of lines.
        lines: u32,
    },
    /// `MESSAGE/RFC822` or `MESSAGE/GLOBAL`: the encapsulated message.
    Message {
        /// Its envelope.
        envelope: Box<Envelope>,
        /// Its body structure.
        body: Box<BodyStructure>,
        /// Number of lines.
        lines: u32,
    },
}

/// `Content-Disposition`: a value and its parameters.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Disposition {
    /// E.g. `attachment`.
    pub kind: Bytes,
    /// Parameters (empty for `NIL`).
    pub params: Vec<(Bytes, Bytes)>,
}

/// A `body-extension`: a number, an nstring, or a list of them.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum BodyExtension {
    /// An nstring.
    NString(Option<Bytes>),
    /// A number.
    Number(u32),
    /// A parenthesised list (never empty).
    List(Vec<BodyExtension>),
}

/// Extension data after `body-fld-loc`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExtLocation {
    /// `body-fld-loc` (Content-Location).
    pub location: Option<Bytes>,
    /// Further extension data.
    pub extensions: Vec<BodyExtension>,
}

/// Extension data from `body-fld-lang` on.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExtLanguage {
    /// `body-fld-lang` (Content-Language): empty for `NIL`; one entry is written as a
    /// string, several as a list.
    pub language: Vec<Bytes>,
    /// What follows, if anything.
    pub more: Option<ExtLocation>,
}

/// Extension data from `body-fld-dsp` on.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExtDisposition {
    /// `body-fld-dsp`, `None` for `NIL`.
    pub disposition: Option<Disposition>,
    /// What follows, if anything.
    pub more: Option<ExtLanguage>,
}

/// Extension data of a non-multipart body (`body-ext-1part`; BODYSTRUCTURE only).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SinglePartExt {
    /// `body-fld-md5`.
    pub md5: Option<Bytes>,
    /// What follows, if anything.
    pub more: Option<ExtDisposition>,
}

/// Extension data of a multipart body (`body-ext-mpart`; BODYSTRUCTURE only).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MultiPartExt {
    /// Content-Type parameters, e.g. the boundary (empty for `NIL`).
    pub params: Vec<(Bytes, Bytes)>,
    /// What follows, if anything.
    pub more: Option<ExtDisposition>,
}

/// A BODY or BODYSTRUCTURE value.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum BodyStructure {
    /// A non-multipart body.
    Single {
        /// Media type, e.g. `TEXT`.
        media_type: Bytes,
        /// Media subtype, e.g. `PLAIN`.
        subtype: Bytes,
        /// The basic fields.
        fields: BodyFields,
        /// Type-specific fields.
        kind: SinglePartKind,
        /// Extension data (BODYSTRUCTURE), if sent.
        ext: Option<SinglePartExt>,
    },
    /// A multipart body.
    Multi {
        /// The parts, at least one.
        parts: Vec<BodyStructure>,
        /// Multipart subtype, e.g. `MIXED`.
        subtype: Bytes,
        /// Extension data (BODYSTRUCTURE), if sent.
        ext: Option<MultiPartExt>,
    },
}
