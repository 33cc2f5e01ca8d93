//! Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

use super::ValidationError;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    } as u32)
}

fn err(at: usize, reason: &'static str) -> ValidationError {
    ValidationError::InvalidMutf7 { at, reason }
}

/// Decodes a mailbox name from modified UTF-7.
///
/// Rejects every form RFC 3501 forbids: raw bytes outside 0x20..=0x7e, a `&` without a
/// closing `-`, base64 that encodes printable ASCII, non-zero padding bits, partial UTF-16
/// units and unpaired surrogates.
pub fn decode_mutf7(input: &[u8]) -> Result<String, ValidationError> {
    // Fast path: plain printable ASCII without shifts.
    if memchr::memchr(b'&', input).is_none() {
        if let Some(at) = input.iter().position(|b| !(0x20..=0x7e).contains(b)) {
            return Err(err(at, "byte outside printable US-ASCII"));
        }
        return Ok(String::from_utf8_lossy(input).into_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if !(0x20..=0x7e).contains(&b) {
            return Err(err(i, "byte outside printable US-ASCII"));
        }
        if b != b'&' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if input.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0u32;
        let mut units: Vec<u16> = Vec::new();
        loop {
            match input.get(i) {
                None => return Err(err(start, "'&' without closing '-'")),
                Some(b'-') => {
                    i += 1;
                    break;
                }
                Some(&c) => {
                    let v = b64_value(c).ok_or_else(|| err(i, "invalid base64 character"))?;
                    bits = (bits << 6) | v;
                    nbits += 6;
                    if nbits >= 16 {
                        nbits -= 16;
                        units.push(((bits >> nbits) & 0xffff) as u16);
                    }
                    bits &= (1 << nbits) - 1;
                    i += 1;
                }
            }
        }
        if units.is_empty() {
            return Err(err(start, "empty base64 section"));
        }
        if nbits >= 6 || bits != 0 {
            return Err(err(i.saturating_sub(1), "non-zero or excess padding bits"));
        }
        for c in char::decode_utf16(units.iter().copied()) {
            let c = c.map_err(|_| err(start, "unpaired UTF-16 surrogate"))?;
            if (' '..='~').contains(&c) {
                return Err(err(start, "printable ASCII must not be base64-encoded"));
            }
            out.push(c);
        }
    }
    Ok(out)
}

/// Encodes a mailbox name into modified UTF-7.
#[must_use]
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let mut bits: u32 = 0;
        let mut nbits = 0u32;
        for unit in pending.drain(..) {
            bits = (bits << 16) | u32::from(unit);
            nbits += 16;
            while nbits >= 6 {
                nbits -= 6;
                let idx = ((bits >> nbits) & 0x3f) as usize;
                out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
            }
            bits &= (1 << nbits) - 1;
        }
        if nbits > 0 {
            let idx = ((bits << (6 - nbits)) & 0x3f) as usize;
            out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
        }
        out.push('-');
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(encode_mutf7(name), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(
            decode_mutf7(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            name
        );
        assert_eq!(decode_mutf7(b"A&-B").unwrap(), "A&B");
        assert_eq!(encode_mutf7("A&B"), "A&-B");
        assert_eq!(encode_mutf7("Entw\u{fc}rfe"), "Entw&APw-rfe");
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            &b"&Jjo!"[..],
            b"&U,BTFw",
            b"&AGE-",
            b"&2D0-",
            b"&AOQ",
            b"&-&",
            b"\xc3\xa4",
            b"&AOR-",
            b"&U,BTF-",
            b"&=-",
        ] {
            assert!(decode_mutf7(bad).is_err(), "{bad:?}");
        }
    }
}
