//! Small helpers shared by the mechanisms: hex, HMAC, SCRAM saslname escaping, JSON strings.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::AuthFailure;

/// Lower-case hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}

/// HMAC-MD5(key, data) as lower-case hex (CRAM-MD5).
pub(crate) fn hmac_md5_hex(key: &[u8], data: &[u8]) -> Result<String, AuthFailure> {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key)
        .map_err(|_| AuthFailure::TemporaryFailure("HMAC-MD5 key rejected".into()))?;
    mac.update(data);
    Ok(hex_lower(&mac.finalize().into_bytes()))
}

/// HMAC-SHA-256(key, data).
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], AuthFailure> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| AuthFailure::TemporaryFailure("HMAC-SHA-256 key rejected".into()))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// SHA-256(data).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Decodes a SCRAM/GS2 `saslname` (`=2C` is `,`, `=3D` is `=`; any other `=` or a bare `,`
/// is an error) into a UTF-8 string without control characters.
pub(crate) fn decode_saslname(raw: &[u8]) -> Result<String, AuthFailure> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'=' => {
                match raw.get(i + 1..i + 3) {
                    Some(b"2C") | Some(b"2c") => out.push(b','),
                    Some(b"3D") | Some(b"3d") => out.push(b'='),
                    _ => {
                        return Err(AuthFailure::Malformed(
                            "'=' in a user name must be followed by 2C or 3D".into(),
                        ));
                    }
                }
                i += 3;
            }
            b',' => {
                return Err(AuthFailure::Malformed(
                    "unescaped ',' in a user name".into(),
                ));
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(out)
        .map_err(|_| AuthFailure::Malformed("user name is not valid UTF-8".into()))?;
    check_name(&s, "user name")?;
    Ok(s)
}

/// Escapes `,` and `=` for a SCRAM/GS2 `saslname`.
pub(crate) fn encode_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// A name must be non-empty and free of control characters (the part of SASLprep that
/// matters for mail servers: no NUL, CR, LF or other C0/C1 controls).
pub(crate) fn check_name(s: &str, what: &str) -> Result<(), AuthFailure> {
    if s.is_empty() {
        return Err(AuthFailure::Malformed(format!("{what} is empty")));
    }
    if s.chars().any(char::is_control) {
        return Err(AuthFailure::Malformed(format!(
            "{what} contains a control character"
        )));
    }
    Ok(())
}

/// Bytes to a UTF-8 string, or a `Malformed` naming the field.
pub(crate) fn utf8(bytes: &[u8], what: &str) -> Result<String, AuthFailure> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| AuthFailure::Malformed(format!("{what} is not valid UTF-8")))
}

/// A JSON string literal (with quotes) for `s`.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escaping() {
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(decode_saslname(b"a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_saslname(b"a=2").is_err());
        assert!(decode_saslname(b"a=41").is_err());
        assert!(decode_saslname(b"a,b").is_err());
        assert!(decode_saslname(b"a\x07b").is_err());
        assert!(decode_saslname(b"").is_err());
        assert!(decode_saslname(b"\xff").is_err());
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn hex() {
        assert_eq!(hex_lower(&[0x00, 0xab, 0xff]), "00abff");
    }
}
