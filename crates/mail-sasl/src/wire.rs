//! The base64 framing every mail protocol shares (RFC 4954, RFC 5034, RFC 9051 / RFC 4959):
//! challenges go out base64-encoded, client lines come back base64-encoded, `*` cancels, and
//! an initial response of `=` means "empty".
//!
//! ```
//! use mail_sasl::wire::{self, ClientLine};
//! assert_eq!(wire::encode(b"Username:"), "VXNlcm5hbWU6");
//! assert_eq!(wire::decode_response(b"dGlt"), Ok(ClientLine::Data(b"tim".to_vec())));
//! assert_eq!(wire::decode_response(b"*"), Ok(ClientLine::Cancel));
//! assert_eq!(wire::decode_initial_response(b"="), Ok(Vec::new()));
//! ```

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::AuthFailure;

/// Encodes with padding; decodes with or without it (some clients drop the padding).
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A client's line during an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientLine {
    /// `*`: the client cancels; call [`crate::server::Exchange::cancel`].
    Cancel,
    /// A decoded response (empty for an empty line); call [`crate::server::Exchange::step`].
    Data(Vec<u8>),
}

/// Base64 of a challenge or response (empty input gives an empty string).
pub fn encode(data: &[u8]) -> String {
    ENGINE.encode(data)
}

/// Decodes a client line (without its CRLF) sent in answer to a challenge.
pub fn decode_response(line: &[u8]) -> Result<ClientLine, AuthFailure> {
    if line == b"*" {
        return Ok(ClientLine::Cancel);
    }
    decode(line).map(ClientLine::Data)
}

/// Decodes an initial response given with the command (`AUTHENTICATE m ir`, `AUTH m ir`):
/// `=` is an empty response.
pub fn decode_initial_response(ir: &[u8]) -> Result<Vec<u8>, AuthFailure> {
    if ir == b"=" {
        Ok(Vec::new())
    } else {
        decode(ir)
    }
}

/// Decodes base64 (a challenge, on the client side, or any client data).
pub fn decode(data: &[u8]) -> Result<Vec<u8>, AuthFailure> {
    ENGINE
        .decode(data)
        .map_err(|_| AuthFailure::Malformed("the line is not valid base64".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(encode(b""), "");
        assert_eq!(decode_response(b""), Ok(ClientLine::Data(Vec::new())));
        assert_eq!(decode_response(b"AQ=="), Ok(ClientLine::Data(vec![1])));
        assert_eq!(decode_response(b"AQ"), Ok(ClientLine::Data(vec![1])));
        assert!(decode_response(b"A Q==").is_err());
        assert!(decode_response(b"**").is_err());
        assert!(decode_response(b"=").is_err());
        assert_eq!(
            decode_initial_response(b"AHRpbQB0YW5zdGFhZg=="),
            Ok(b"\0tim\0tanstaaf".to_vec())
        );
        assert!(decode_initial_response(b"").is_ok_and(|v| v.is_empty()));
    }
}
