//! JWTs: ID tokens (OIDC Core §2), access tokens (RFC 9068, `typ: at+jwt`),
//! the `at_hash`/`c_hash` half-hashes, and verification of our own tokens
//! (for userinfo, introspection and `id_token_hint`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oauth::SigningAlg;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::KeyRing;
use crate::{ErrorCode, OAuthError, OidcError};

/// JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// JOSE `typ` of ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";

/// `at_hash` / `c_hash`: base64url of the left half of SHA-256 (both ES256 and RS256 use SHA-256).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The JOSE header of a JWS (RFC 7515 §4.1): what we write and what we read.
#[derive(Serialize, Deserialize)]
struct JoseHeader<'a> {
    alg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11): we understand none.
    #[serde(default, skip_serializing)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Signs `claims` with the active key of `alg`: a JWS in compact serialization (RFC 7515 §7.1).
pub fn sign(ring: &KeyRing, alg: SigningAlg, typ: &str, claims: &serde_json::Value) -> Result<String, OidcError> {
    let key = ring.active(alg)?;
    let header = JoseHeader { alg: alg.as_str(), typ: Some(typ), kid: Some(&key.kid), crit: None };
    let encoding_failed = |e: serde_json::Error| OidcError::Key(e.to_string());
    let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(encoding_failed)?);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).map_err(encoding_failed)?, &mut token);
    let signature = key.sign(ring.rng(), token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
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
///
/// The algorithm is the key's, never the header's choice: a header naming
/// another algorithm than its key's is refused (RFC 8725 §3.1).
pub fn verify(ring: &KeyRing, token: &str, expect: Expect<'_>) -> Result<serde_json::Value, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidToken, why.to_owned());
    let malformed = || invalid("the token is malformed");
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| malformed())?;
    let header: JoseHeader<'_> = serde_json::from_slice(&header_json).map_err(|_| malformed())?;
    if header.crit.is_some() {
        return Err(invalid("the token requires extensions this server does not understand"));
    }
    if let Some(typ) = expect.typ
        && !header.typ.is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}")))
    {
        return Err(invalid("the token is not of the expected type"));
    }
    let kid = header.kid.ok_or_else(|| invalid("the token names no key"))?;
    let key = ring.verifying(kid).ok_or_else(|| invalid("the token was signed by an unknown key"))?;
    if header.alg != key.alg.as_str() {
        return Err(invalid("the token's algorithm does not match its key"));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| malformed())?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !ring.verify_token_signature(key, token, signed.as_bytes(), &signature) {
        return Err(invalid("the token is invalid"));
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| malformed())?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| malformed())?;
    if !claims.is_object() || claims["iss"] != expect.issuer {
        return Err(invalid("the token is invalid"));
    }
    // RFC 7519 §4.1.4: the current time must be before `exp`; §4.1.5: not before `nbf`.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if claims.get("nbf").is_some_and(|nbf| nbf.as_i64().is_none_or(|nbf| nbf > now)) {
        return Err(invalid("the token is not valid yet"));
    }
    if expect.check_expiry {
        match claims["exp"].as_i64() {
            Some(exp) if exp > now => {}
            Some(_) => return Err(invalid("the token has expired")),
            None => return Err(invalid("the token is invalid")),
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use portcullis_core::clock::UnixTime;
    use portcullis_core::secrets::SecretBox;

    #[test]
    fn half_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3 (RS256/SHA-256) access token and its at_hash.
        assert_eq!(half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn tokens_verify_only_with_their_key_issuer_and_type() {
        let sealer = SecretBox::new([9; 32]);
        let ring = KeyRing::from_stored(&[generate(SigningAlg::ES256, &sealer, 0).unwrap()], &sealer, UnixTime::MAX).unwrap();
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
        let other = KeyRing::from_stored(&[generate(SigningAlg::ES256, &sealer, 0).unwrap()], &sealer, UnixTime::MAX).unwrap();
        assert!(verify(&other, &token, expect).is_err(), "unknown kid");
        let expired =
            sign(&ring, SigningAlg::ES256, ACCESS_TOKEN_TYP, &serde_json::json!({ "iss": "https://id.example", "exp": now - 10 })).unwrap();
        assert_eq!(verify(&ring, &expired, expect).unwrap_err().description, "the token has expired");
        assert!(verify(&ring, &expired, Expect { check_expiry: false, ..expect }).is_ok());
    }

    #[test]
    fn a_verified_signature_is_remembered_and_nothing_else_is() {
        let sealer = SecretBox::new([7; 32]);
        let stored = generate(SigningAlg::ES256, &sealer, 0).unwrap();
        let ring = KeyRing::from_stored(std::slice::from_ref(&stored), &sealer, UnixTime::MAX).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let expect = Expect { issuer: "https://id.example", typ: Some(ACCESS_TOKEN_TYP), check_expiry: true };
        let token = sign(
            &ring,
            SigningAlg::ES256,
            ACCESS_TOKEN_TYP,
            &serde_json::json!({ "iss": "https://id.example", "sub": "u", "exp": now + 60 }),
        )
        .unwrap();
        for _ in 0..2 {
            assert_eq!(verify(&ring, &token, expect).unwrap()["sub"], "u");
            assert_eq!(ring.remembered_signatures(), 1, "verified once, remembered once");
        }

        // The remembered signature under another payload, or another signature: checked afresh and refused.
        let [header, _, signature] = token.split('.').collect::<Vec<_>>()[..] else { panic!("three parts") };
        let forged_payload = b64_json(&serde_json::json!({ "iss": "https://id.example", "sub": "admin", "exp": now + 60 }));
        assert!(verify(&ring, &format!("{header}.{forged_payload}.{signature}"), expect).is_err());
        let mut tampered = token.clone();
        tampered.insert(tampered.rfind('.').unwrap() + 1, 'A');
        assert!(verify(&ring, &tampered, expect).is_err());
        assert_eq!(ring.remembered_signatures(), 1, "failures are not remembered");

        // Everything but the signature is still checked on each use.
        assert!(verify(&ring, &token, Expect { issuer: "https://other.example", ..expect }).is_err());
        let expired =
            sign(&ring, SigningAlg::ES256, ACCESS_TOKEN_TYP, &serde_json::json!({ "iss": "https://id.example", "exp": now - 10 })).unwrap();
        assert!(verify(&ring, &expired, Expect { check_expiry: false, ..expect }).is_ok());
        assert_eq!(verify(&ring, &expired, expect).unwrap_err().description, "the token has expired");

        // A reloaded ring (as after a rotation) starts with nothing remembered.
        let reloaded = KeyRing::from_stored(std::slice::from_ref(&stored), &sealer, UnixTime::MAX).unwrap();
        assert_eq!(reloaded.remembered_signatures(), 0);
        assert!(verify(&reloaded, &token, expect).is_ok());

        // Bounded: it starts afresh when full.
        for i in 0..crate::keys::VERIFIED_MEMO_CAP {
            let t = sign(
                &ring,
                SigningAlg::ES256,
                ACCESS_TOKEN_TYP,
                &serde_json::json!({ "iss": "https://id.example", "n": i, "exp": now + 60 }),
            )
            .unwrap();
            assert!(verify(&ring, &t, expect).is_ok());
            assert!(ring.remembered_signatures() <= crate::keys::VERIFIED_MEMO_CAP);
        }
        assert!(ring.remembered_signatures() < crate::keys::VERIFIED_MEMO_CAP);
    }

    fn b64_json(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// Our JWS against an independent implementation (jsonwebtoken), both ways, both algorithms.
    #[test]
    fn tokens_interoperate_with_an_independent_jwt_library() {
        let sealer = SecretBox::new([5; 32]);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({ "iss": "https://id.example", "sub": "u", "aud": "c", "exp": now + 60 });
        let expect = Expect { issuer: "https://id.example", typ: Some("JWT"), check_expiry: true };
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let stored = generate(alg, &sealer, 0).unwrap();
            let ring = KeyRing::from_stored(std::slice::from_ref(&stored), &sealer, UnixTime::MAX).unwrap();
            let their_alg = if alg == SigningAlg::ES256 { jsonwebtoken::Algorithm::ES256 } else { jsonwebtoken::Algorithm::RS256 };

            let ours = sign(&ring, alg, "JWT", &claims).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&stored.public_jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(their_alg);
            validation.set_audience(&["c"]);
            let decoded =
                jsonwebtoken::decode::<serde_json::Value>(&ours, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation);
            assert_eq!(decoded.unwrap().claims["sub"], "u", "{alg:?}: jsonwebtoken accepts our token");

            let der = sealer.open(&format!("{}{}", crate::keys::SEAL_CONTEXT, stored.kid), &stored.sealed_private_key).unwrap();
            let encoding = match alg {
                SigningAlg::ES256 => jsonwebtoken::EncodingKey::from_ec_der(&der),
                SigningAlg::RS256 => jsonwebtoken::EncodingKey::from_rsa_der(&der),
            };
            let mut header = jsonwebtoken::Header::new(their_alg);
            header.kid = Some(stored.kid.clone());
            let theirs = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
            assert_eq!(verify(&ring, &theirs, expect).unwrap()["sub"], "u", "{alg:?}: we accept jsonwebtoken's token");
        }
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let sealer = SecretBox::new([6; 32]);
        let es = generate(SigningAlg::ES256, &sealer, 0).unwrap();
        let ring = KeyRing::from_stored(std::slice::from_ref(&es), &sealer, UnixTime::MAX).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({ "iss": "https://id.example", "exp": now + 60 });
        let expect = Expect { issuer: "https://id.example", typ: None, check_expiry: true };
        let good = sign(&ring, SigningAlg::ES256, "JWT", &claims).unwrap();
        let (_, signature) = good.rsplit_once('.').unwrap();
        let payload = b64_json(&claims);
        let refused = |token: &str| verify(&ring, token, expect).unwrap_err().description;

        // `alg: none` and an HMAC "signed" with the public key: the key decides the algorithm.
        for alg in ["none", "HS256", "RS256"] {
            let header = b64_json(&serde_json::json!({ "alg": alg, "kid": es.kid }));
            assert_eq!(refused(&format!("{header}.{payload}.{signature}")), "the token's algorithm does not match its key");
            assert_eq!(refused(&format!("{header}.{payload}.")), "the token's algorithm does not match its key");
        }
        let crit = b64_json(&serde_json::json!({ "alg": "ES256", "kid": es.kid, "crit": ["exp"] }));
        assert_eq!(refused(&format!("{crit}.{payload}.{signature}")), "the token requires extensions this server does not understand");
        // Another payload under the original signature.
        let widened = b64_json(&serde_json::json!({ "iss": "https://id.example", "exp": now + 6000 }));
        let (header, _) = good.split_once('.').unwrap();
        assert_eq!(refused(&format!("{header}.{widened}.{signature}")), "the token is invalid");
        for malformed in ["", "a.b", "a.b.c.d", "!!.??.##", &format!("{good}.")] {
            assert_eq!(refused(malformed), "the token is malformed", "{malformed:?}");
        }
        let not_yet =
            sign(&ring, SigningAlg::ES256, "JWT", &serde_json::json!({ "iss": "https://id.example", "exp": now + 60, "nbf": now + 30 }));
        assert_eq!(refused(&not_yet.unwrap()), "the token is not valid yet");
        let no_exp = sign(&ring, SigningAlg::ES256, "JWT", &serde_json::json!({ "iss": "https://id.example" })).unwrap();
        assert_eq!(refused(&no_exp), "the token is invalid");
    }
}
