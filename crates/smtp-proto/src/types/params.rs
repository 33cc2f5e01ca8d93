/// `BODY=` of `MAIL FROM` (RFC 6152, RFC 3030).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME` (requires BDAT).
    BinaryMime,
}

impl Body {
    /// The keyword value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` of `MAIL FROM` (RFC 3461 section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: return the full message in a DSN.
    Full,
    /// `RET=HDRS`: return only the headers.
    Hdrs,
}

/// `NOTIFY=` of `RCPT TO` (RFC 3461 section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Notify {
    /// `NEVER` (exclusive with the other three).
    pub never: bool,
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

/// `ORCPT=addr-type;xtext` of `RCPT TO` (RFC 3461 section 4.2), xtext decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginalRecipient {
    /// The address type, usually `rfc822` (or `utf-8`).
    pub addr_type: String,
    /// The decoded address.
    pub address: String,
}

/// ESMTP parameters of `MAIL FROM`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MailParams {
    /// `SIZE=` (RFC 1870): the declared message size in octets.
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461), xtext decoded.
    pub envid: Option<String>,
    /// `AUTH=` (RFC 4954 section 5), xtext decoded; `Some("<>")` for the empty identity.
    pub auth: Option<String>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// Any other parameter, keyword upper-cased, value as received.
    pub other: Vec<(String, Option<String>)>,
}

/// ESMTP parameters of `RCPT TO`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RcptParams {
    /// `NOTIFY=` (RFC 3461).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461).
    pub orcpt: Option<OriginalRecipient>,
    /// Any other parameter, keyword upper-cased, value as received.
    pub other: Vec<(String, Option<String>)>,
}
