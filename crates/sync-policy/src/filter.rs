//! User-defined sorting rules (FLT-1), evaluated at delivery and, when an import asks for
//! it, on imported mail.
//!
//! Input is a list of header fields with unfolded values ([`Header`]). Decoding RFC 2047
//! encoded words (`=?UTF-8?B?...?=`) and RFC 2231 parameters is the caller's job: pass the
//! decoded text (e.g. from `mail-parser`), otherwise a Japanese subject will only match
//! its base64 form. Matching is case-insensitive (Unicode lowercase) and plain text, no
//! regular expressions, so a rule's cost is linear in the header size.

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::facts::Origin;

/// One header field: its name and its unfolded, decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name, e.g. `Subject` (compared case-insensitively).
    pub name: String,
    /// Unfolded value with RFC 2047 words already decoded.
    pub value: String,
}

impl Header {
    /// A header field.
    #[must_use]
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Which header field a condition looks at.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "field", content = "name")]
pub enum HeaderField {
    /// `From`.
    From,
    /// `To`.
    To,
    /// `Cc`.
    Cc,
    /// `To` or `Cc`: the condition holds if it holds for either.
    ToOrCc,
    /// `Subject`.
    Subject,
    /// Any other field, by name, e.g. `List-Id` or `X-Spam-Flag`.
    Other(String),
}

impl HeaderField {
    fn matches_name(&self, name: &str) -> bool {
        let want: &[&str] = match self {
            HeaderField::From => &["From"],
            HeaderField::To => &["To"],
            HeaderField::Cc => &["Cc"],
            HeaderField::ToOrCc => &["To", "Cc"],
            HeaderField::Subject => &["Subject"],
            HeaderField::Other(n) => return n.eq_ignore_ascii_case(name),
        };
        want.iter().any(|w| w.eq_ignore_ascii_case(name))
    }
}

/// How a header value is compared, case-insensitively.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMatch {
    /// The value contains the text.
    Contains,
    /// The value does not contain the text (true also when the field is absent).
    NotContains,
    /// The value equals the text (after trimming surrounding white space).
    Equals,
    /// The value starts with the text (after trimming leading white space).
    StartsWith,
    /// The value ends with the text (after trimming trailing white space).
    EndsWith,
    /// The field is present, whatever its value (the text is ignored).
    Exists,
}

/// A size comparison.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeMatch {
    /// Strictly larger than the given octets.
    GreaterThan,
    /// Strictly smaller than the given octets.
    LessThan,
}

/// One condition of a rule.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Condition {
    /// A header field compared with a text.
    Header {
        /// Which field.
        field: HeaderField,
        /// How to compare.
        op: TextMatch,
        /// The text, compared case-insensitively.
        value: String,
    },
    /// The message size in octets.
    Size {
        /// How to compare.
        op: SizeMatch,
        /// Octets.
        bytes: u64,
    },
}

impl Condition {
    fn holds(&self, headers: &[Header], size: u64) -> bool {
        match self {
            Condition::Size {
                op: SizeMatch::GreaterThan,
                bytes,
            } => size > *bytes,
            Condition::Size {
                op: SizeMatch::LessThan,
                bytes,
            } => size < *bytes,
            Condition::Header { field, op, value } => {
                let needle = value.to_lowercase();
                let mut values = headers
                    .iter()
                    .filter(|h| field.matches_name(&h.name))
                    .map(|h| h.value.to_lowercase());
                match op {
                    // "does not contain": no occurrence of the field contains it.
                    TextMatch::NotContains => !values.any(|v| v.contains(&needle)),
                    TextMatch::Exists => values.next().is_some(),
                    TextMatch::Contains => values.any(|v| v.contains(&needle)),
                    TextMatch::Equals => values.any(|v| v.trim() == needle.trim()),
                    TextMatch::StartsWith => values.any(|v| v.trim_start().starts_with(&needle)),
                    TextMatch::EndsWith => values.any(|v| v.trim_end().ends_with(&needle)),
                }
            }
        }
    }
}

/// How a rule combines its conditions.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Every condition must hold. Default.
    #[default]
    All,
    /// At least one condition must hold.
    Any,
}

/// What a matching rule does.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "folder")]
pub enum Action {
    /// File the message into a folder (by name). The first matching move wins.
    MoveTo(String),
    /// Set `\Seen`.
    MarkRead,
    /// Set `\Flagged`.
    Flag,
    /// Delete the message (the server files it into Trash). Overrides any move.
    Delete,
    /// Evaluate no further rules.
    Stop,
}

/// A sorting rule.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterRule {
    /// A name the user gave the rule.
    pub name: String,
    /// Disabled rules are skipped. Default `true`.
    pub enabled: bool,
    /// All or any. Default all.
    pub match_mode: MatchMode,
    /// At least one condition.
    pub conditions: Vec<Condition>,
    /// At least one action.
    pub actions: Vec<Action>,
}

impl Default for FilterRule {
    fn default() -> Self {
        FilterRule {
            name: String::new(),
            enabled: true,
            match_mode: MatchMode::All,
            conditions: Vec::new(),
            actions: Vec::new(),
        }
    }
}

impl FilterRule {
    /// An enabled rule.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        match_mode: MatchMode,
        conditions: Vec<Condition>,
        actions: Vec<Action>,
    ) -> Self {
        FilterRule {
            name: name.into(),
            enabled: true,
            match_mode,
            conditions,
            actions,
        }
    }

    /// Does the rule match?
    #[must_use]
    pub fn matches(&self, headers: &[Header], size: u64) -> bool {
        if !self.enabled || self.conditions.is_empty() {
            return false;
        }
        match self.match_mode {
            MatchMode::All => self.conditions.iter().all(|c| c.holds(headers, size)),
            MatchMode::Any => self.conditions.iter().any(|c| c.holds(headers, size)),
        }
    }
}

/// Limits on a user's rule list, checked by [`FilterSettings::validate`].
pub mod limits {
    /// Rules per account.
    pub const MAX_RULES: usize = 200;
    /// Conditions per rule.
    pub const MAX_CONDITIONS: usize = 32;
    /// Actions per rule.
    pub const MAX_ACTIONS: usize = 16;
    /// Bytes of a condition's text or a rule's name.
    pub const MAX_TEXT_LEN: usize = 1024;
}

/// A user's sorting rules, stored per account.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterSettings {
    /// Rules in priority order. Default: none.
    pub rules: Vec<FilterRule>,
}

fn is_field_name(name: &str) -> bool {
    // RFC 5322 field-name = 1*ftext; ftext = %d33-57 / %d59-126
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

impl FilterSettings {
    /// Checks the rules: each has a condition and an action, header names are RFC 5322
    /// field names, texts are non-empty (except for [`TextMatch::Exists`]) and within
    /// [`limits`], folder names usable.
    ///
    /// # Errors
    /// [`PolicyError::TooManyFilterRules`] or [`PolicyError::InvalidFilterRule`] naming
    /// the rule and the problem.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.rules.len() > limits::MAX_RULES {
            return Err(PolicyError::TooManyFilterRules {
                count: self.rules.len(),
                max: limits::MAX_RULES,
            });
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let bad = |reason: String| PolicyError::InvalidFilterRule {
                index,
                name: rule.name.clone(),
                reason,
            };
            if rule.name.len() > limits::MAX_TEXT_LEN {
                return Err(bad(format!(
                    "the name is longer than {} bytes",
                    limits::MAX_TEXT_LEN
                )));
            }
            if rule.conditions.is_empty() {
                return Err(bad("it has no condition".into()));
            }
            if rule.conditions.len() > limits::MAX_CONDITIONS {
                return Err(bad(format!(
                    "it has more than {} conditions",
                    limits::MAX_CONDITIONS
                )));
            }
            if rule.actions.is_empty() {
                return Err(bad("it has no action".into()));
            }
            if rule.actions.len() > limits::MAX_ACTIONS {
                return Err(bad(format!(
                    "it has more than {} actions",
                    limits::MAX_ACTIONS
                )));
            }
            for c in &rule.conditions {
                if let Condition::Header { field, op, value } = c {
                    if let HeaderField::Other(n) = field
                        && !is_field_name(n)
                    {
                        return Err(bad(format!("{n:?} is not a header field name")));
                    }
                    if value.is_empty() && *op != TextMatch::Exists {
                        return Err(bad("a condition has an empty text".into()));
                    }
                    if value.len() > limits::MAX_TEXT_LEN {
                        return Err(bad(format!(
                            "a condition's text is longer than {} bytes",
                            limits::MAX_TEXT_LEN
                        )));
                    }
                }
            }
            for a in &rule.actions {
                if let Action::MoveTo(folder) = a {
                    crate::imap::check_folder_name(folder).map_err(|e| bad(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Should the rules run on a message of this origin? Delivered mail: always.
    /// Imported mail: only when the import asks for it (`import_applies_filters`, the
    /// per-import-account option of IMP-4).
    #[must_use]
    pub fn applies_to(origin: &Origin, import_applies_filters: bool) -> bool {
        match origin {
            Origin::Delivered => true,
            Origin::Imported { .. } => import_applies_filters,
        }
    }
}

/// A flag a rule adds.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddFlag {
    /// `\Seen`.
    Seen,
    /// `\Flagged`.
    Flagged,
}

/// What the rules decided for one message. Nothing matched: the default value (deliver
/// to the INBOX, or the import's destination folder, unchanged).
#[must_use = "the outcome says where the message goes"]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterOutcome {
    /// The folder to file into; `None` keeps the default destination.
    pub folder: Option<String>,
    /// Flags to set, without duplicates, in a fixed order.
    pub add_flags: Vec<AddFlag>,
    /// Delete (file into Trash); when set, `folder` is `None`.
    pub delete: bool,
    /// Indexes of the rules that matched, in order.
    pub matched: Vec<usize>,
}

/// Runs the rules in order over a message (FLT-1).
///
/// Every matching rule contributes its actions: the first [`Action::MoveTo`] fixes the
/// folder, [`Action::MarkRead`] and [`Action::Flag`] add flags, [`Action::Delete`] wins
/// over any move, and [`Action::Stop`] ends the evaluation after the rule's other actions.
pub fn evaluate(rules: &[FilterRule], headers: &[Header], size: u64) -> FilterOutcome {
    let mut out = FilterOutcome::default();
    for (index, rule) in rules.iter().enumerate() {
        if !rule.matches(headers, size) {
            continue;
        }
        out.matched.push(index);
        let mut stop = false;
        for action in &rule.actions {
            match action {
                Action::MoveTo(folder) => {
                    if out.folder.is_none() {
                        out.folder = Some(folder.clone());
                    }
                }
                Action::MarkRead => add_flag(&mut out.add_flags, AddFlag::Seen),
                Action::Flag => add_flag(&mut out.add_flags, AddFlag::Flagged),
                Action::Delete => out.delete = true,
                Action::Stop => stop = true,
            }
        }
        if stop {
            break;
        }
    }
    if out.delete {
        out.folder = None;
    }
    out.add_flags.sort();
    out
}

fn add_flag(flags: &mut Vec<AddFlag>, f: AddFlag) {
    if !flags.contains(&f) {
        flags.push(f);
    }
}
