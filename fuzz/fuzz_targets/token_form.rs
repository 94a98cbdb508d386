//! The token endpoint's form, and client credentials from HTTP Basic: the
//! first line of the input is the `Authorization` header, the rest the body.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis_oidc::provider::TokenRequest;

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let form = serde_urlencoded::from_bytes::<TokenRequest>(body).ok();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(first) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let id = form.as_ref().and_then(|f| f.code.clone());
    let _ = portcullis_server::parsers::client_credentials(&headers, id, None);
    let _ = portcullis_server::parsers::client_credentials(&headers, None, Some("secret".into()));
});
