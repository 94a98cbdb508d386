//! Token-signing keys: generation (ES256 on P-256, RS256 with 2048-bit RSA),
//! sealing at rest, the public JWK set, and the in-memory key ring used to
//! sign and verify. The `kid` is the RFC 7638 JWK thumbprint.
//!
//! Keys are generated with RustCrypto (`p256`, `rsa`) but parsed once, at
//! load, into `ring` key pairs: every token endpoint signs or verifies with
//! them, and ring's P-256 is several times faster (bench/ measured it).
//!
//! Rotation adds a new signing key per algorithm; older keys stay in the JWKS
//! until every token they signed has expired, then are deleted.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{SigningAlg, StoredSigningKey};
use portcullis_core::secrets::{SecretBox, random_bytes};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, RsaKeyPair, RsaPublicKeyComponents};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::OidcError;

pub(crate) const SEAL_CONTEXT: &str = "portcullis:signing-key:";

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

/// A private key, parsed once.
enum PrivateKey {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

/// A key usable for signing (the active one of its algorithm).
pub struct ActiveKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    private: PrivateKey,
}

impl ActiveKey {
    /// The JWS signature of `message` (RFC 7518 §3.3 RSASSA-PKCS1-v1_5 with
    /// SHA-256, or §3.4 ECDSA P-256 SHA-256 as the 64-byte `R || S`).
    pub fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, OidcError> {
        let failed = |_| OidcError::Key(format!("signing with {} failed", self.kid));
        match &self.private {
            PrivateKey::Es256(pair) => pair.sign(rng, message).map(|s| s.as_ref().to_vec()).map_err(failed),
            PrivateKey::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, rng, message, &mut signature).map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// A published public key.
pub struct VerifyingKey {
    /// Its algorithm: a token naming another one is refused (no algorithm confusion).
    pub alg: SigningAlg,
    public: PublicKey,
}

enum PublicKey {
    /// The uncompressed SEC1 point `04 || x || y`.
    Es256(Vec<u8>),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl VerifyingKey {
    /// The key a published JWK (RFC 7517) of algorithm `alg` describes; `kid`
    /// names it in errors. Relying parties (bench/) verify with it too.
    pub fn from_public_jwk(alg: SigningAlg, kid: &str, jwk: &serde_json::Value) -> Result<Self, OidcError> {
        let public = match alg {
            SigningAlg::ES256 => {
                let (x, y) = (jwk_bytes(jwk, "x", kid)?, jwk_bytes(jwk, "y", kid)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(OidcError::Key(format!("{kid}: not a P-256 point")));
                }
                PublicKey::Es256([&[4u8][..], &x, &y].concat())
            }
            SigningAlg::RS256 => PublicKey::Rs256 { n: jwk_bytes(jwk, "n", kid)?, e: jwk_bytes(jwk, "e", kid)? },
        };
        Ok(Self { alg, public })
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.public {
            PublicKey::Es256(point) => sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).verify(message, signature).is_ok(),
            PublicKey::Rs256 { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok()
            }
        }
    }
}

/// A base64url JWK member, decoded.
fn jwk_bytes(jwk: &serde_json::Value, member: &str, kid: &str) -> Result<Vec<u8>, OidcError> {
    jwk[member]
        .as_str()
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        .ok_or_else(|| OidcError::Key(format!("{kid}: the public key has no valid {member:?}")))
}

fn private_key(k: &StoredSigningKey, der: &[u8], rng: &SystemRandom) -> Result<PrivateKey, OidcError> {
    let corrupt = |e: &dyn std::fmt::Display| OidcError::Key(format!("{}: {e}", k.kid));
    Ok(match k.alg {
        SigningAlg::ES256 => {
            // Stored as PKCS#8 by `generate`; ring takes the scalar and point.
            let secret = p256::SecretKey::from_pkcs8_der(der).map_err(|e| corrupt(&e))?;
            let point = p256::EncodedPoint::from(secret.public_key());
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                &secret.to_bytes(),
                point.as_bytes(),
                rng,
            )
            .map_err(|e| corrupt(&e))?;
            PrivateKey::Es256(pair)
        }
        SigningAlg::RS256 => PrivateKey::Rs256(RsaKeyPair::from_der(der).map_err(|e| corrupt(&e))?),
    })
}

/// How many verified tokens a ring remembers before it starts afresh
/// (32-byte digests: about half a megabyte at most).
pub(crate) const VERIFIED_MEMO_CAP: usize = 8_192;

/// Every published key, parsed once: active signing keys and verification keys.
pub struct KeyRing {
    active: HashMap<SigningAlg, ActiveKey>,
    verifying: HashMap<String, VerifyingKey>,
    jwks: serde_json::Value,
    rng: SystemRandom,
    /// SHA-256 digests of whole tokens whose signature this ring has verified.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl KeyRing {
    /// Builds the ring from stored keys, opening the private key that signs
    /// for each algorithm: the newest made at or before `signs_if_made_by`
    /// (the oldest when every key is younger, as just after first start). A
    /// key younger than that is published but does not sign yet, so every
    /// node has it in its JWKS before any node signs with it.
    pub fn from_stored(keys: &[StoredSigningKey], sealer: &SecretBox, signs_if_made_by: UnixTime) -> Result<Self, OidcError> {
        let rng = SystemRandom::new();
        let mut active = HashMap::new();
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        // By age; of keys made in the same second, the one rotated out is the older.
        let age = |k: &&StoredSigningKey| (k.created_at, k.rotated_at.is_none());
        let signer_of = |alg: SigningAlg| {
            let of_alg = keys.iter().filter(move |k| k.alg == alg);
            let ready = of_alg.clone().filter(|k| k.created_at <= signs_if_made_by).max_by_key(age);
            ready.or_else(|| of_alg.min_by_key(age)).map(|k| k.kid.as_str())
        };
        for k in keys {
            let jwk: serde_json::Value = serde_json::from_str(&k.public_jwk).map_err(|e| OidcError::Key(format!("{}: {e}", k.kid)))?;
            verifying.insert(k.kid.clone(), VerifyingKey::from_public_jwk(k.alg, &k.kid, &jwk)?);
            published.push(jwk);
            if signer_of(k.alg) == Some(k.kid.as_str()) {
                let der = sealer
                    .open(&format!("{SEAL_CONTEXT}{}", k.kid), &k.sealed_private_key)
                    .map_err(|_| {
                    OidcError::Key(format!(
                        "signing key {} cannot be decrypted with this server's encryption.key; every server process sharing a database needs the same DATA_DIR/secrets",
                        k.kid
                    ))
                })?;
                active.insert(k.alg, ActiveKey { kid: k.kid.clone(), alg: k.alg, private: private_key(k, &der, &rng)? });
            }
        }
        Ok(Self { active, verifying, jwks: serde_json::json!({ "keys": published }), rng, verified: Mutex::default() })
    }

    /// Whether `signature` over `signed` (the `header.payload` part of `token`)
    /// is `key`'s, checking each token's signature once per ring.
    ///
    /// An application presents the same access token to userinfo on many of its
    /// pages, and an ECDSA verification is most of such a request's CPU. Only
    /// the signature is remembered: issuer, type, expiry and revocation are still
    /// checked on every use. The digest covers the whole token, header (and so
    /// `kid`) and signature included, so any other token misses; only tokens
    /// that verified enter; and the memo belongs to this ring, so a key rotation
    /// forgets it (the ring is rebuilt then, and re-read every reload period, which
    /// costs one verification per token a minute). Bounded: emptied when full.
    pub fn verify_token_signature(&self, key: &VerifyingKey, token: &str, signed: &[u8], signature: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.verified_memo().contains(&digest) {
            return true;
        }
        if !key.verify(signed, signature) {
            return false;
        }
        let mut memo = self.verified_memo();
        if memo.len() >= VERIFIED_MEMO_CAP {
            memo.clear();
        }
        memo.insert(digest);
        true
    }

    fn verified_memo(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        // A panic while holding the lock leaves a set of digests, never a half-made one.
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many verified tokens the ring remembers (for tests).
    #[cfg(test)]
    pub(crate) fn remembered_signatures(&self) -> usize {
        self.verified_memo().len()
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
    pub fn verifying(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    /// The random source signatures use (ECDSA needs a fresh nonce each time).
    pub fn rng(&self) -> &SystemRandom {
        &self.rng
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
        let ring = KeyRing::from_stored(&[es.clone(), rs.clone()], &sealer, UnixTime::MAX).unwrap();
        assert!(ring.missing().is_empty());
        assert_eq!(ring.active(SigningAlg::ES256).unwrap().kid, es.kid);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        let jwk: serde_json::Value = serde_json::from_str(&es.public_jwk).unwrap();
        assert_eq!((jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()), (Some("EC"), Some("ES256"), Some("sig")));
        assert!(jwk.get("d").is_none(), "no private part is published");
        assert!(KeyRing::from_stored(&[es], &SecretBox::new([4; 32]), UnixTime::MAX).is_err(), "sealed with the at-rest key");
    }

    #[test]
    fn a_new_key_is_published_at_once_and_signs_only_from_the_time_given() {
        let sealer = SecretBox::new([3; 32]);
        let old = generate(SigningAlg::ES256, &sealer, 10).unwrap();
        let new = generate(SigningAlg::ES256, &sealer, 100).unwrap();
        let keys = [new.clone(), old.clone()];
        let before = KeyRing::from_stored(&keys, &sealer, 99).unwrap();
        assert_eq!(before.active(SigningAlg::ES256).unwrap().kid, old.kid, "the new key does not sign yet");
        assert!(before.verifying(&new.kid).is_some(), "but it verifies and is published");
        assert_eq!(before.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(KeyRing::from_stored(&keys, &sealer, 100).unwrap().active(SigningAlg::ES256).unwrap().kid, new.kid);
        // Just after first start every key is younger than the time given: the oldest signs.
        assert_eq!(KeyRing::from_stored(&keys, &sealer, 5).unwrap().active(SigningAlg::ES256).unwrap().kid, old.kid);
        assert_eq!(KeyRing::from_stored(&keys[..1], &sealer, 5).unwrap().active(SigningAlg::ES256).unwrap().kid, new.kid);
        // Made in the same second: the one rotated out is the older.
        let rotated = StoredSigningKey { created_at: 100, rotated_at: Some(100), ..old.clone() };
        let pair = [new.clone(), rotated];
        assert_eq!(KeyRing::from_stored(&pair, &sealer, 99).unwrap().active(SigningAlg::ES256).unwrap().kid, old.kid);
        assert_eq!(KeyRing::from_stored(&pair, &sealer, 100).unwrap().active(SigningAlg::ES256).unwrap().kid, new.kid);
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
