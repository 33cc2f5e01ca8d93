//! Mailbox name and address rules.

use crate::error::{InvalidName, StoreError};
use crate::types::Limits;

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// Checks a mailbox name and returns its canonical form (`INBOX` upper-cased, also as the
/// first level of a child: `inbox/x` becomes `INBOX/x`).
///
/// Refused: empty names, empty levels (`a//b`, leading or trailing `/`), levels starting
/// with `.` (this covers `.` and `..`), NUL and other control characters, the IMAP
/// wildcards `*` and `%`, names over [`Limits::max_mailbox_name`] bytes or
/// [`Limits::max_mailbox_depth`] levels. Names never reach the file system (message files
/// are named by store ids), so these rules are about unambiguous IMAP and clean exports.
pub fn validate_mailbox_name(name: &str, limits: &Limits) -> Result<String, InvalidName> {
    if name.is_empty() {
        return Err(InvalidName::Empty);
    }
    if name.len() > limits.max_mailbox_name {
        return Err(InvalidName::TooLong {
            len: name.len(),
            limit: limits.max_mailbox_name,
        });
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || c == '*' || c == '%')
    {
        return Err(InvalidName::ForbiddenChar(c));
    }
    let mut depth = 0;
    let mut out = String::with_capacity(name.len());
    for (i, seg) in name.split(DELIMITER).enumerate() {
        depth += 1;
        if seg.is_empty() {
            return Err(InvalidName::EmptySegment);
        }
        if seg.starts_with('.') {
            return Err(InvalidName::Reserved(seg.to_string()));
        }
        if i > 0 {
            out.push(DELIMITER);
        }
        if i == 0 && seg.eq_ignore_ascii_case("INBOX") {
            out.push_str("INBOX");
        } else {
            out.push_str(seg);
        }
    }
    if depth > limits.max_mailbox_depth {
        return Err(InvalidName::TooDeep {
            depth,
            limit: limits.max_mailbox_depth,
        });
    }
    Ok(out)
}

/// Normalises an address: trims, lower-cases the domain, keeps the local part as given.
/// Lookups compare the whole normalised address case-insensitively.
pub(crate) fn normalize_address(addr: &str) -> Result<String, StoreError> {
    let a = addr.trim();
    let (local, domain) = a
        .rsplit_once('@')
        .ok_or_else(|| StoreError::InvalidAddress(a.to_string()))?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 320
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>');
    if !ok {
        return Err(StoreError::InvalidAddress(a.to_string()));
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The key under which an address is looked up.
pub(crate) fn address_key(normalized: &str) -> String {
    normalized.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let l = Limits::default();
        assert_eq!(validate_mailbox_name("inbox", &l).unwrap(), "INBOX");
        assert_eq!(validate_mailbox_name("Inbox/Sub", &l).unwrap(), "INBOX/Sub");
        assert_eq!(validate_mailbox_name("a/b/c", &l).unwrap(), "a/b/c");
        assert_eq!(validate_mailbox_name("Entwürfe", &l).unwrap(), "Entwürfe");
        assert_eq!(validate_mailbox_name("", &l), Err(InvalidName::Empty));
        assert_eq!(
            validate_mailbox_name("a//b", &l),
            Err(InvalidName::EmptySegment)
        );
        assert_eq!(
            validate_mailbox_name("/a", &l),
            Err(InvalidName::EmptySegment)
        );
        assert_eq!(
            validate_mailbox_name("a/", &l),
            Err(InvalidName::EmptySegment)
        );
        assert_eq!(
            validate_mailbox_name("a/../b", &l),
            Err(InvalidName::Reserved("..".into()))
        );
        assert_eq!(
            validate_mailbox_name(".", &l),
            Err(InvalidName::Reserved(".".into()))
        );
        assert_eq!(
            validate_mailbox_name("a\0b", &l),
            Err(InvalidName::ForbiddenChar('\0'))
        );
        assert_eq!(
            validate_mailbox_name("a\rb", &l),
            Err(InvalidName::ForbiddenChar('\r'))
        );
        assert_eq!(
            validate_mailbox_name("a*", &l),
            Err(InvalidName::ForbiddenChar('*'))
        );
        let long = "x".repeat(1001);
        assert_eq!(
            validate_mailbox_name(&long, &l),
            Err(InvalidName::TooLong {
                len: 1001,
                limit: 1000
            })
        );
        let deep = vec!["a"; 33].join("/");
        assert_eq!(
            validate_mailbox_name(&deep, &l),
            Err(InvalidName::TooDeep {
                depth: 33,
                limit: 32
            })
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address(" Bob@Example.COM ").unwrap(),
            "Bob@example.com"
        );
        assert!(normalize_address("bob").is_err());
        assert!(normalize_address("@x").is_err());
        assert!(normalize_address("a b@x").is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any string: no panic; an accepted name is canonical (validates to itself) and
        /// has no empty, dot or control-character level.
        #[test]
        fn names_never_panic_and_canonical_is_stable(name in "\\PC{0,40}|[a./\\x00-\\x1f*%]{0,12}") {
            let l = Limits::default();
            if let Ok(c) = validate_mailbox_name(&name, &l) {
                prop_assert_eq!(validate_mailbox_name(&c, &l), Ok(c.clone()));
                prop_assert!(c.split('/').all(|s| !s.is_empty() && !s.starts_with('.')));
                prop_assert!(!c.chars().any(|ch| ch.is_control()));
            }
        }
    }
}
