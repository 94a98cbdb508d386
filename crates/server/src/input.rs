//! A guard in front of every route: no value we accept holds a NUL character.
//!
//! No form field, query parameter or token of ours has one, and PostgreSQL
//! cannot store or compare text holding U+0000 (its statements fail), so a NUL
//! would turn a lookup into a server error on one backend and not the other.
//! Refused here, once, with a 400 (found by the HTTP sweep, `tests/api/sweep.rs`).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_oidc::{ErrorCode, OidcError};

use crate::MAX_BODY_BYTES;
use crate::error::{AppError, oauth_error_response};

/// The endpoints that answer OAuth errors as JSON (RFC 6749 §5.2).
const JSON_ENDPOINTS: [&str; 4] = ["/token", "/revoke", "/introspect", "/userinfo"];

/// Middleware: refuses a request whose query or form body carries a NUL
/// (raw, or percent-encoded as `%00`).
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let in_query = request.uri().query().is_some_and(|q| has_nul(q.as_bytes()));
    let form_body = request.method() == Method::POST && crate::csrf::is_form(request.headers());
    if !in_query && !form_body {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let refuse = || {
        let description = "a value contains a NUL character";
        match JSON_ENDPOINTS.contains(&path.as_str()) {
            true => oauth_error_response(OidcError::oauth(ErrorCode::InvalidRequest, description), false),
            false => AppError::BadRequest(crate::i18n::Msg::new("error-request-nul")).into_response(),
        }
    };
    if in_query {
        return refuse();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else { return AppError::PayloadTooLarge.into_response() };
    if bytes.contains(&0) || has_nul(&bytes) {
        return refuse();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether URL-encoded text decodes to something holding a NUL.
fn has_nul(encoded: &[u8]) -> bool {
    encoded.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

#[cfg(test)]
mod tests {
    use super::has_nul;

    #[test]
    fn percent_encoded_nul_is_found_and_nothing_else() {
        assert!(has_nul(b"a=%00"));
        assert!(has_nul(b"a=b&c=x%00y"));
        assert!(!has_nul(b"a=%2500"), "an encoded percent sign followed by 00 is the text %00, no NUL");
        assert!(!has_nul(b"a=100&b=%20"));
    }
}
