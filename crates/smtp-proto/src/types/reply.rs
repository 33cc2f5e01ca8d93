use std::fmt;

/// An enhanced mail system status code `class.subject.detail` (RFC 3463, carried in replies
/// by RFC 2034).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject, 0..=999.
    pub subject: u16,
    /// The detail, 0..=999.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds a code; values are not range-checked here (the parser checks them).
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete (possibly multi-line) SMTP reply (RFC 5321 section 4.2).
///
/// `lines` hold the text of each line, without the code and without the enhanced status
/// code, which [`Reply::enhanced`] carries once for all lines. The encoder repeats it on
/// every line, as RFC 2034 asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The three-digit reply code, 200..=599.
    pub code: u16,
    /// The enhanced status code, if the reply carries one.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line; at least one (possibly empty) line.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply without an enhanced status code.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines: vec![text.into()],
        }
    }

    /// A one-line reply with an enhanced status code.
    pub fn with_enhanced(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// Shorthand for `with_enhanced(code, EnhancedCode::new(c, s, d), text)`.
    pub fn enh(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Self {
        Self::with_enhanced(code, EnhancedCode::new(c, s, d), text)
    }

    /// 2yz: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3yz: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4yz: temporary failure, try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5yz: permanent failure.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The text of all lines joined with a space.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        write!(f, " {}", self.text())
    }
}
