//! What a browser's WebAuthn script posts: an assertion (second step,
//! passwordless sign-in) and a registration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::factors::webauthn::{AssertionResponse, assertion_response};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = serde_json::from_str::<AssertionResponse>(text);
    let _ = serde_json::from_str::<webauthn_rs::prelude::PublicKeyCredential>(text);
    let _ = serde_json::from_str::<webauthn_rs::prelude::RegisterPublicKeyCredential>(text);
    // The second-step form's two fields, joined as the server joins them.
    let (ceremony, credential) = text.split_once('\n').unwrap_or((text, ""));
    let joined = assertion_response(ceremony, credential);
    let _ = serde_json::from_str::<AssertionResponse>(&joined);
});
