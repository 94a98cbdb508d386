//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` would let an
//! attacker who sees the authorization request also redeem the code.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::secrets::constant_time_eq;
use sha2::{Digest, Sha256};

/// Whether `s` is a syntactically valid verifier or S256 challenge
/// (43–128 characters of `[A-Za-z0-9-._~]`, RFC 7636 §4.1).
pub fn is_well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge` (constant-time).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_well_formed(verifier) && constant_time_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge));
    }

    #[test]
    fn malformed_verifiers_are_refused() {
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"a".repeat(129)));
        assert!(!is_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(is_well_formed(&"a~._-".repeat(9)));
    }
}
