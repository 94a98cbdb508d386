//! Token-signing keys: generation (ES256 on P-256, RS256 with 2048-bit RSA),
//! sealing at rest, the public JWK set, and the in-memory key ring used to
//! sign and verify. The `kid` is the RFC 7638 JWK thumbprint.
//!
//! Rotation adds a new signing key per algorithm; older keys stay in the JWKS
//! until every token they signed has expired, then are deleted.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{SigningAlg, StoredSigningKey};
use portcullis_core::secrets::{SecretBox, random_bytes};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::OidcError;

const SEAL_CONTEXT: &str = "portcullis:signing-key:";

/// A freshly generated key, ready to store.
pub fn generate(alg: SigningAlg, sealer: &SecretBox, now: UnixTime) -> Result<StoredSigningKey, OidcError> {
    let (private_der, jwk) = match alg {
        SigningAlg::ES256 => {
            let secret = loop {
                // A random 32-byte string is a valid scalar with overwhelming probability.
                if let Ok(k) = p256::SecretKey::from_slice(&random_bytes::<32>()) {
                    break k;
                }
            };
            let der = secret.to_pkcs8_der().map_err(|e| OidcError::Key(e.to_string()))?.as_bytes().to_vec();
            let point = p256::EncodedPoint::from(secret.public_key());
            let (x, y) = (point.x().ok_or_else(|| OidcError::Key("no x".into()))?, point.y().ok_or_else(|| OidcError::Key("no y".into()))?);
            let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) });
            (der, jwk)
        }
        SigningAlg::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).map_err(|e| OidcError::Key(e.to_string()))?;
            let der = key.to_pkcs1_der().map_err(|e| OidcError::Key(e.to_string()))?.as_bytes().to_vec();
            let jwk = serde_json::json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            });
            (der, jwk)
        }
    };
    let kid = thumbprint(&jwk);
    let mut public = jwk;
    public["kid"] = kid.clone().into();
    public["alg"] = alg.as_str().into();
    public["use"] = "sig".into();
    Ok(StoredSigningKey {
        sealed_private_key: sealer.seal(&format!("{SEAL_CONTEXT}{kid}"), &private_der),
        kid,
        alg,
        public_jwk: public.to_string(),
        created_at: now,
        rotated_at: None,
    })
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &serde_json::Value) -> String {
    let canonical = if jwk["kty"] == "EC" {
        format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap_or(""),
            jwk["x"].as_str().unwrap_or(""),
            jwk["y"].as_str().unwrap_or("")
        )
    } else {
        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk["e"].as_str().unwrap_or(""), jwk["n"].as_str().unwrap_or(""))
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A key usable for signing (the active one of its algorithm).
pub struct ActiveKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// Private key.
    pub encoding: EncodingKey,
}

/// Every published key, parsed once: active signing keys and verification keys.
pub struct KeyRing {
    active: HashMap<SigningAlg, ActiveKey>,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: serde_json::Value,
}

impl KeyRing {
    /// Builds the ring from stored keys (newest first), opening private keys of active ones.
    pub fn from_stored(keys: &[StoredSigningKey], sealer: &SecretBox) -> Result<Self, OidcError> {
        let mut active = HashMap::new();
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        for k in keys {
            let jwk: serde_json::Value = serde_json::from_str(&k.public_jwk).map_err(|e| OidcError::Key(format!("{}: {e}", k.kid)))?;
            let (alg, decoding) = match k.alg {
                SigningAlg::ES256 => (
                    Algorithm::ES256,
                    DecodingKey::from_ec_components(jwk["x"].as_str().unwrap_or(""), jwk["y"].as_str().unwrap_or(""))
                        .map_err(|e| OidcError::Key(e.to_string()))?,
                ),
                SigningAlg::RS256 => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap_or(""), jwk["e"].as_str().unwrap_or(""))
                        .map_err(|e| OidcError::Key(e.to_string()))?,
                ),
            };
            verifying.insert(k.kid.clone(), (alg, decoding));
            published.push(jwk);
            if k.rotated_at.is_none() && !active.contains_key(&k.alg) {
                let der = sealer
                    .open(&format!("{SEAL_CONTEXT}{}", k.kid), &k.sealed_private_key)
                    .map_err(|_| {
                    OidcError::Key(format!(
                        "signing key {} cannot be decrypted with this server's encryption.key; every server process sharing a database needs the same DATA_DIR/secrets",
                        k.kid
                    ))
                })?;
                let encoding = match k.alg {
                    SigningAlg::ES256 => EncodingKey::from_ec_der(&der),
                    SigningAlg::RS256 => {
                        // Parse once here so a corrupt key fails at load, not at first use.
                        rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| OidcError::Key(format!("{}: {e}", k.kid)))?;
                        EncodingKey::from_rsa_der(&der)
                    }
                };
                active.insert(k.alg, ActiveKey { kid: k.kid.clone(), alg: k.alg, encoding });
            }
        }
        Ok(Self { active, verifying, jwks: serde_json::json!({ "keys": published }) })
    }

    /// Algorithms that have no active key yet.
    pub fn missing(&self) -> Vec<SigningAlg> {
        [SigningAlg::ES256, SigningAlg::RS256].into_iter().filter(|a| !self.active.contains_key(a)).collect()
    }

    /// The signing key for `alg`.
    pub fn active(&self, alg: SigningAlg) -> Result<&ActiveKey, OidcError> {
        self.active.get(&alg).ok_or_else(|| OidcError::Key(format!("no active {} key", alg.as_str())))
    }

    /// The verification key for `kid`.
    pub fn verifying(&self, kid: &str) -> Option<&(Algorithm, DecodingKey)> {
        self.verifying.get(kid)
    }

    /// The public JWK set.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_the_store_format() {
        let sealer = SecretBox::new([3; 32]);
        let es = generate(SigningAlg::ES256, &sealer, 10).unwrap();
        let rs = generate(SigningAlg::RS256, &sealer, 10).unwrap();
        let ring = KeyRing::from_stored(&[es.clone(), rs.clone()], &sealer).unwrap();
        assert!(ring.missing().is_empty());
        assert_eq!(ring.active(SigningAlg::ES256).unwrap().kid, es.kid);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        let jwk: serde_json::Value = serde_json::from_str(&es.public_jwk).unwrap();
        assert_eq!((jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()), (Some("EC"), Some("ES256"), Some("sig")));
        assert!(jwk.get("d").is_none(), "no private part is published");
        assert!(KeyRing::from_stored(&[es], &SecretBox::new([4; 32])).is_err(), "sealed with the at-rest key");
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA", "e": "AQAB",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
