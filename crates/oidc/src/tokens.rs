//! JWTs: ID tokens (OIDC Core §2), access tokens (RFC 9068, `typ: at+jwt`),
//! the `at_hash`/`c_hash` half-hashes, and verification of our own tokens
//! (for userinfo, introspection and `id_token_hint`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use portcullis_core::oauth::SigningAlg;
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;
use crate::{ErrorCode, OAuthError, OidcError};

/// JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// `at_hash` / `c_hash`: base64url of the left half of SHA-256 (both ES256 and RS256 use SHA-256).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Signs `claims` with the active key of `alg`.
pub fn sign(ring: &KeyRing, alg: SigningAlg, typ: &str, claims: &serde_json::Value) -> Result<String, OidcError> {
    let key = ring.active(alg)?;
    let mut header = Header::new(match alg {
        SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
    });
    header.kid = Some(key.kid.clone());
    header.typ = Some(typ.to_owned());
    encode(&header, claims, &key.encoding).map_err(|e| OidcError::Key(e.to_string()))
}

/// How strictly to check a token of ours.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Required issuer.
    pub issuer: &'a str,
    /// Required JOSE `typ`, if any.
    pub typ: Option<&'a str>,
    /// Whether an expired token is refused (an `id_token_hint` may be expired).
    pub check_expiry: bool,
}

/// Verifies signature, issuer, `typ` and (optionally) expiry; returns the claims.
pub fn verify(ring: &KeyRing, token: &str, expect: Expect<'_>) -> Result<serde_json::Value, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidToken, why.to_owned());
    let header = decode_header(token).map_err(|_| invalid("the token is malformed"))?;
    if let Some(typ) = expect.typ
        && !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}")))
    {
        return Err(invalid("the token is not of the expected type"));
    }
    let kid = header.kid.ok_or_else(|| invalid("the token names no key"))?;
    let (alg, key) = ring.verifying(&kid).ok_or_else(|| invalid("the token was signed by an unknown key"))?;
    if header.alg != *alg {
        return Err(invalid("the token's algorithm does not match its key"));
    }
    let mut validation = Validation::new(*alg);
    validation.set_issuer(&[expect.issuer]);
    validation.validate_aud = false;
    validation.validate_exp = expect.check_expiry;
    validation.leeway = 0;
    if !expect.check_expiry {
        validation.required_spec_claims.clear();
    }
    decode::<serde_json::Value>(token, key, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("the token has expired"),
        _ => invalid("the token is invalid"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use portcullis_core::secrets::SecretBox;

    #[test]
    fn half_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3 (RS256/SHA-256) access token and its at_hash.
        assert_eq!(half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn tokens_verify_only_with_their_key_issuer_and_type() {
        let sealer = SecretBox::new([9; 32]);
        let ring = KeyRing::from_stored(&[generate(SigningAlg::ES256, &sealer, 0).unwrap()], &sealer).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({ "iss": "https://id.example", "sub": "u", "exp": now + 60 });
        let token = sign(&ring, SigningAlg::ES256, ACCESS_TOKEN_TYP, &claims).unwrap();
        let expect = Expect { issuer: "https://id.example", typ: Some(ACCESS_TOKEN_TYP), check_expiry: true };
        assert_eq!(verify(&ring, &token, expect).unwrap()["sub"], "u");
        assert!(verify(&ring, &token, Expect { issuer: "https://other.example", ..expect }).is_err());
        assert!(verify(&ring, &token, Expect { typ: Some("JWT"), ..expect }).is_err());
        let mut tampered = token.clone();
        tampered.insert(tampered.rfind('.').unwrap() + 1, 'A');
        assert!(verify(&ring, &tampered, expect).is_err());
        let other = KeyRing::from_stored(&[generate(SigningAlg::ES256, &sealer, 0).unwrap()], &sealer).unwrap();
        assert!(verify(&other, &token, expect).is_err(), "unknown kid");
        let expired =
            sign(&ring, SigningAlg::ES256, ACCESS_TOKEN_TYP, &serde_json::json!({ "iss": "https://id.example", "exp": now - 10 })).unwrap();
        assert_eq!(verify(&ring, &expired, expect).unwrap_err().description, "the token has expired");
        assert!(verify(&ring, &expired, Expect { check_expiry: false, ..expect }).is_ok());
    }
}
