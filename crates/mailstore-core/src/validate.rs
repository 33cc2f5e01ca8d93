//! Checks that bytes are a mail message before they are stored.

use crate::error::InvalidMessage;

/// Checks that a message is acceptable before (or while) storing it.
///
/// `head` is the beginning of the message (at least its first line; the whole header block
/// if available), `size` its total size in bytes, `limit` the largest size accepted.
/// A message must be non-empty, at most `limit` bytes, and start with a header field
/// (`Name: value`, RFC 5322 `field-name` of printable ASCII without `:`; the obsolete
/// whitespace before the colon is tolerated). The part of the header block present in
/// `head` must not contain NUL.
///
/// ```
/// use mailstore_core::{validate_message, InvalidMessage};
/// assert!(validate_message(b"Subject: hi\r\n\r\nbody\r\n", 22, 1000).is_ok());
/// assert_eq!(validate_message(b"hello there\r\n", 13, 1000), Err(InvalidMessage::NoHeader));
/// assert!(matches!(validate_message(b"A: b\r\n", 5000, 1000), Err(InvalidMessage::TooLarge { .. })));
/// ```
pub fn validate_message(head: &[u8], size: u64, limit: u64) -> Result<(), InvalidMessage> {
    if size == 0 || head.is_empty() {
        return Err(InvalidMessage::Empty);
    }
    if size > limit {
        return Err(InvalidMessage::TooLarge { size, limit });
    }
    // First line: field-name *WSP ":"
    let name_len = head
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    if name_len == 0 {
        return Err(InvalidMessage::NoHeader);
    }
    let rest = head.get(name_len..).unwrap_or_default();
    let after_ws = rest.iter().find(|&&b| b != b' ' && b != b'\t');
    if after_ws != Some(&b':') {
        return Err(InvalidMessage::NoHeader);
    }
    let header_end = header_block_len(head).unwrap_or(head.len());
    if let Some(offset) = head.get(..header_end).and_then(|h| memchr::memchr(0, h)) {
        return Err(InvalidMessage::NulInHeader { offset });
    }
    Ok(())
}

/// Length of the header block including the empty line that ends it, if the end is in `buf`.
pub(crate) fn header_block_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let line_end = memchr::memchr(b'\n', buf.get(pos..)?)? + pos;
        let line = buf.get(pos..line_end)?;
        if line.is_empty() || line == b"\r" {
            return Some(line_end + 1);
        }
        pos = line_end + 1;
    }
}

/// Extracts the Message-ID header value (trimmed, unfolded) from a header block.
pub(crate) fn extract_message_id(head: &[u8]) -> Option<String> {
    let end = header_block_len(head).unwrap_or(head.len());
    let block = head.get(..end)?;
    let mut lines = block.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line.get(..colon)?;
        if !name.trim_ascii().eq_ignore_ascii_case(b"message-id") {
            continue;
        }
        let mut value = line.get(colon + 1..)?.to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                let n = next.strip_suffix(b"\r").unwrap_or(next);
                value.extend_from_slice(n);
                lines.next();
            } else {
                break;
            }
        }
        let s = String::from_utf8_lossy(value.trim_ascii()).into_owned();
        return if s.is_empty() || s.len() > 998 {
            None
        } else {
            Some(s)
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(validate_message(b"", 0, 10), Err(InvalidMessage::Empty));
        assert_eq!(
            validate_message(b"From x\r\n", 8, 10),
            Err(InvalidMessage::NoHeader)
        );
        assert_eq!(
            validate_message(b": x\r\n", 5, 10),
            Err(InvalidMessage::NoHeader)
        );
        assert_eq!(
            validate_message(b"\r\nbody", 6, 10),
            Err(InvalidMessage::NoHeader)
        );
        assert_eq!(validate_message(b"Subject : x\r\n", 13, 100), Ok(()));
        assert_eq!(
            validate_message(b"A: b\r\nC: \0\r\n\r\n", 14, 100),
            Err(InvalidMessage::NulInHeader { offset: 9 })
        );
        // NUL in the body is the body's business.
        assert_eq!(validate_message(b"A: b\r\n\r\n\0", 9, 100), Ok(()));
        assert_eq!(
            validate_message(b"A: b\r\n", 101, 100),
            Err(InvalidMessage::TooLarge {
                size: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn message_id() {
        let h = b"Subject: x\r\nMessage-ID:\r\n <abc@x>\r\n\r\nMessage-ID: <no>\r\n";
        assert_eq!(extract_message_id(h).as_deref(), Some("<abc@x>"));
        assert_eq!(extract_message_id(b"Subject: x\r\n\r\n"), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic, and a message that passes starts with a header name.
        #[test]
        fn validate_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), limit in 0u64..400) {
            let r = validate_message(&bytes, bytes.len() as u64, limit);
            if r.is_ok() {
                prop_assert!(bytes.first().is_some_and(|b| (33..=126).contains(b) && *b != b':'));
                prop_assert!(bytes.len() as u64 <= limit);
            }
            let _ = extract_message_id(&bytes);
            let _ = header_block_len(&bytes);
        }
    }
}
