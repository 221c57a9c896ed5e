//! GitHub's `X-Hub-Signature-256`: HMAC-SHA256 of the raw request body, hex, prefixed `sha256=`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex characters")]
    Malformed,
    #[error("the X-Hub-Signature-256 header does not match the body")]
    Mismatch,
}

/// Decodes the header into the 32 signature bytes, before any secret is needed.
pub fn parse_signature_header(header: Option<&str>) -> Result<[u8; 32], SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    decode_hex_32(hex).ok_or(SignatureError::Malformed)
}

/// Checks `signature` (from [`parse_signature_header`]) against the body, in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    signature: &[u8; 32],
) -> Result<(), SignatureError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value GitHub would send for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[i] = (high * 16 + low) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's published test vector ("Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const HEADER: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_test_vector_verifies() {
        let signature = parse_signature_header(Some(HEADER)).unwrap();
        assert_eq!(verify_signature(SECRET, BODY, &signature), Ok(()));
        assert_eq!(sign(SECRET, BODY), HEADER);
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let upper = format!("sha256={}", HEADER[7..].to_ascii_uppercase());
        let signature = parse_signature_header(Some(&upper)).unwrap();
        assert_eq!(verify_signature(SECRET, BODY, &signature), Ok(()));
    }

    #[test]
    fn tampered_body_or_wrong_secret_is_a_mismatch() {
        let signature = parse_signature_header(Some(HEADER)).unwrap();
        assert_eq!(
            verify_signature(SECRET, b"Hello, World?", &signature),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"another secret", BODY, &signature),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        assert_eq!(parse_signature_header(None), Err(SignatureError::Missing));
        for bad in [
            "",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            assert_eq!(
                parse_signature_header(Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
