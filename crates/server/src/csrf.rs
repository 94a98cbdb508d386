//! Cross-site request forgery protection for every state-changing browser
//! request, as one middleware so no form can forget it.
//!
//! Signed double-submit cookie (OWASP CSRF Prevention Cheat Sheet): the
//! browser holds a random `portcullis_csrf` cookie (`HttpOnly`, `SameSite=Lax`);
//! each form carries `csrf_token = HMAC(server key, cookie)`. A forged request
//! from another site can make the browser send the cookie but cannot read it,
//! so it cannot compute the token. Comparison is constant-time. As defence in
//! depth, a request whose `Origin` is not ours, or that the browser labels
//! `Sec-Fetch-Site: cross-site`, is refused before the body is read. This also
//! covers login CSRF (the sign-in form is protected like any other).

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::secrets::random_token;

use crate::MAX_BODY_BYTES;
use crate::error::AppError;
use crate::request::{CSRF_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE, cookie_value, set_cookie};
use crate::state::AppState;

/// Name of the hidden form field.
pub const FIELD: &str = "csrf_token";
const PURPOSE: &str = "csrf";

/// The browser's CSRF seed (its cookie's value), and a cookie to set if it has none yet.
pub fn seed(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie_value(state, headers, CSRF_COOKIE).filter(|v| v.len() == 43) {
        Some(seed) => (seed, None),
        None => {
            let seed = random_token();
            let cookie = set_cookie(state, CSRF_COOKIE, &seed, None);
            (seed, Some(cookie))
        }
    }
}

/// What a form token is bound to besides the seed: the browser's session,
/// else its sign-in in progress. A site that can set cookies for this one (a
/// sibling subdomain) can pair a seed of its own with a token of its own,
/// but not with the victim's session, which it does not know.
pub fn binding(state: &AppState, headers: &HeaderMap) -> String {
    cookie_value(state, headers, SESSION_COOKIE).or_else(|| cookie_value(state, headers, SIGN_IN_COOKIE)).unwrap_or_default()
}

/// The token for forms, from the seed and the binding.
pub fn form_token(state: &AppState, seed: &str, binding: &str) -> String {
    state.cookie_key().tag(PURPOSE, format!("{seed}\0{binding}").as_bytes())
}

pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Middleware: checks origin, content type, size and CSRF token of unsafe requests.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => return next.run(request).await,
        Method::POST => {}
        // Browser pages register only GET and POST; refusing other methods here
        // means no future route can accept an unchecked state change.
        _ => {
            return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD, POST")]).into_response();
        }
    }
    match check(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, request: Request) -> Result<Request, AppError> {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
        && origin != state.settings().origin
    {
        return Err(AppError::Forbidden("error-csrf-other-site".into()));
    }
    if headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site") {
        return Err(AppError::Forbidden("error-csrf-other-site".into()));
    }
    if !is_form(headers) {
        return Err(AppError::UnsupportedMediaType);
    }
    let seed = cookie_value(state, headers, CSRF_COOKIE);
    let binding = binding(state, headers);
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| AppError::PayloadTooLarge)?;
    let token = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned());
    let Some(seed) = seed else {
        return Err(AppError::Forbidden("error-csrf-no-cookie".into()));
    };
    match token {
        Some(t) if state.cookie_key().verify(PURPOSE, format!("{seed}\0{binding}").as_bytes(), &t) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(AppError::Forbidden("error-csrf-expired".into())),
    }
}
