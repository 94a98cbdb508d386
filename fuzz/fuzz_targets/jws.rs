//! JWS compact tokens (ID tokens as `id_token_hint`, access tokens as bearer
//! tokens): parsing and verification against a key ring of ours.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::oauth::SigningAlg;
use portcullis_core::secrets::SecretBox;
use portcullis_oidc::keys::{KeyRing, generate};
use portcullis_oidc::tokens::{ACCESS_TOKEN_TYP, Expect, ID_TOKEN_TYP, verify};

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let sealer = SecretBox::new([9; 32]);
        let keys = [generate(SigningAlg::ES256, &sealer, 0).unwrap(), generate(SigningAlg::RS256, &sealer, 0).unwrap()];
        KeyRing::from_stored(&keys, &sealer, i64::MAX).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    for typ in [Some(ACCESS_TOKEN_TYP), Some(ID_TOKEN_TYP), None] {
        let _ = verify(ring(), token, Expect { issuer: "https://id.example", typ, check_expiry: true });
        let _ = verify(ring(), token, Expect { issuer: "https://id.example", typ, check_expiry: false });
    }
});
