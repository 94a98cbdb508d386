//! Random tokens, their digests, keyed MACs and authenticated encryption.
//!
//! One-time tokens (session ids, email links) are 256 random bits handed to the
//! user and stored only as a SHA-256 digest, so a database leak does not leak
//! usable tokens. Secrets that must be read back (TOTP seeds, signing keys) are
//! sealed with XChaCha20-Poly1305 under the at-rest key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// 32 random bytes from the OS CSPRNG, base64url without padding (43 chars).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// `N` random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

/// The digest under which a token is stored and looked up.
pub fn token_digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A 256-bit key for HMAC-SHA256 tags (CSRF tokens, signed cookies).
#[derive(Clone)]
pub struct MacKey(Zeroizing<[u8; 32]>);

impl MacKey {
    /// Wraps key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Tag over `purpose` and `data`, base64url. The purpose keeps a tag made
    /// for one use from being accepted for another.
    pub fn tag(&self, purpose: &str, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.raw_tag(purpose, data))
    }

    fn raw_tag(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a tag in constant time.
    pub fn verify(&self, purpose: &str, data: &[u8], tag: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(tag) {
            Ok(given) => constant_time_eq(&given, &self.raw_tag(purpose, data)),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(…)")
    }
}

/// Sealing failed: wrong key, tampered or truncated ciphertext.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: wrong key or corrupted data")]
pub struct SealError;

/// Authenticated encryption of secrets at rest (XChaCha20-Poly1305, random
/// 192-bit nonce prepended to the ciphertext). `context` is bound as
/// associated data, so a sealed value cannot be moved to another column or row.
#[derive(Clone)]
pub struct SecretBox(Zeroizing<[u8; 32]>);

impl SecretBox {
    /// Wraps the at-rest key.
    pub fn new(key: [u8; 32]) -> Self {
        Self(Zeroizing::new(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_slice().into())
    }

    /// Encrypts `plaintext` for `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<24>();
        let payload = chacha20poly1305::aead::Payload { msg: plaintext, aad: context.as_bytes() };
        // Encryption with a valid key and in-memory buffers does not fail.
        let ciphertext = self.cipher().encrypt(XNonce::from_slice(&nonce_bytes), payload).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (nonce, ciphertext) = sealed.split_at_checked(24).ok_or(SealError)?;
        let payload = chacha20poly1305::aead::Payload { msg: ciphertext, aad: context.as_bytes() };
        self.cipher().decrypt(XNonce::from_slice(nonce), payload).map(Zeroizing::new).map_err(|_| SealError)
    }
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), token_digest(&b));
        assert_ne!(token_digest(&a), a);
    }

    #[test]
    fn mac_tags_are_bound_to_purpose_and_data() {
        let k = MacKey::new([7; 32]);
        let t = k.tag("csrf", b"abc");
        assert!(k.verify("csrf", b"abc", &t));
        assert!(!k.verify("csrf", b"abd", &t));
        assert!(!k.verify("other", b"abc", &t));
        assert!(!MacKey::new([8; 32]).verify("csrf", b"abc", &t));
        assert!(!k.verify("csrf", b"abc", "not base64!"));
    }

    #[test]
    fn sealed_secrets_round_trip_and_resist_tampering() {
        let sb = SecretBox::new([1; 32]);
        let sealed = sb.seal("totp:42", b"JBSWY3DPEHPK3PXP");
        assert_eq!(sb.open("totp:42", &sealed).unwrap().as_slice(), b"JBSWY3DPEHPK3PXP");
        assert!(sb.open("totp:43", &sealed).is_err(), "context is bound");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sb.open("totp:42", &tampered).is_err());
        assert!(sb.open("totp:42", &sealed[..10]).is_err());
        assert!(SecretBox::new([2; 32]).open("totp:42", &sealed).is_err());
        assert_ne!(sb.seal("x", b"same"), sb.seal("x", b"same"), "nonces are random");
    }
}
