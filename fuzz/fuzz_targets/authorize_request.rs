//! `/authorize` parameters (query or form) and their validation against a client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::oauth::{Client, ClientPolicy, SigningAlg};
use portcullis_oidc::request::{AuthorizeParams, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_urlencoded::from_bytes::<AuthorizeParams>(data) else { return };
    let client = |public: bool| Client {
        id: "app".into(),
        name: "App".into(),
        secret_digest: (!public).then(|| "digest".into()),
        redirect_uris: vec!["https://app.example/cb".into(), "com.example.app:/cb".into()],
        post_logout_redirect_uris: vec![],
        policy: ClientPolicy::default(),
        signing_alg: SigningAlg::ES256,
        service_scopes: vec![],
        self_registered: false,
        created_at: 0,
    };
    let _ = validate(&params, Some(client(true)));
    let _ = validate(&params, Some(client(false)));
    let _ = validate(&params, None);
});
