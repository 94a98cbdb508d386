//! The `Cookie` header and our cookie formats: the session token, the
//! device id and the remember-this-browser cookie (`id.tag`).
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis_core::secrets::MacKey;
use portcullis_core::sign_in::remembered_browser_id;
use portcullis_core::user::UserId;
use portcullis_server::parsers::{raw_cookie, valid_device_id};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, v);
        }
    }
    let mac = MacKey::new([4; 32]);
    let user = UserId(uuid_of(data));
    for name in ["portcullis_session", "portcullis_device", "portcullis_browser", "__Host-portcullis_csrf"] {
        if let Some(value) = raw_cookie(&headers, name) {
            let _ = valid_device_id(&value);
            let _ = remembered_browser_id(&mac, user, &value);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = remembered_browser_id(&mac, user, text);
    }
});

fn uuid_of(data: &[u8]) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(data) {
        *b = *d;
    }
    uuid::Uuid::from_bytes(bytes)
}
