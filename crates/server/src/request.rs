//! What a handler needs to know about the browser: its address, its cookies,
//! its CSRF token, and typed form bodies with clear errors.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::state::AppState;
use crate::{csrf, pages};

/// Session cookie (random token; the store keeps only its digest).
pub const SESSION_COOKIE: &str = "portcullis_session";
/// Remember-this-browser cookie (`id.tag`, bound to a user and a database record).
pub const REMEMBER_COOKIE: &str = "portcullis_device";
/// CSRF cookie (random value the form token is derived from).
pub const CSRF_COOKIE: &str = "portcullis_csrf";
/// Device cookie: a random id naming this browser, so a sign-in from a
/// browser an account never used can be told apart (adaptive rules, notices).
pub const DEVICE_COOKIE: &str = "portcullis_browser";
/// The longest lifetime browsers keep a cookie (RFC 6265bis: 400 days).
pub const DEVICE_COOKIE_SECONDS: i64 = 400 * 24 * 3600;

/// Cookie holding the token of a sign-in waiting for its next step.
pub const SIGN_IN_COOKIE: &str = "portcullis_signin";

/// The value of our cookie `name` in the request headers (by the name the
/// server gives it: see [`crate::ServerSettings::cookie_name`]).
pub fn cookie_value(state: &AppState, headers: &HeaderMap, name: &str) -> Option<String> {
    raw_cookie(headers, &state.settings().cookie_name(name))
}

/// Whether a device cookie is one of ours (43 base64url characters); anything else is replaced.
pub fn valid_device_id(d: &str) -> bool {
    d.len() == 43 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of the cookie named exactly `name` in the `Cookie` headers.
pub fn raw_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, path `/`, `Secure` on HTTPS.
/// `max_age` of `None` makes a browser-session cookie; `Some(0)` deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((state.settings().cookie_name(name), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings().secure_cookies())
        .build();
    if let Some(secs) = max_age {
        c.set_max_age(cookie::time::Duration::seconds(secs));
    }
    // Names and values are ours (base64url), so the header is always valid.
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The browser behind a request.
#[derive(Debug, Clone)]
pub struct Browser {
    /// Client address (the socket peer).
    pub ip: String,
    /// Session cookie, if present.
    pub session_token: Option<String>,
    /// Remember-this-browser cookie, if present.
    pub remembered: Option<String>,
    /// `User-Agent`, for naming remembered browsers.
    pub user_agent: String,
    /// Token to put into forms.
    pub csrf_token: String,
    /// The CSRF cookie's value the token is derived from.
    csrf_seed: String,
    /// This browser's device id (from its cookie, or new).
    pub device: String,
    /// A CSRF cookie to set, when the browser had none.
    new_csrf_cookie: Option<HeaderValue>,
    /// A device cookie to set, when the browser had none.
    new_device_cookie: Option<HeaderValue>,
}

/// The client's address: the socket peer, unless the peer is a trusted
/// reverse proxy; then the right-most `X-Forwarded-For` entry that is not
/// itself a trusted proxy. Entries to its left are whatever the client sent
/// and are never believed; a malformed entry stops the walk at the last
/// trusted hop (OWASP ASVS 4.0 V7.1 wants the real source in security logs).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    let forwarded: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).collect();
    for entry in forwarded.into_iter().rev() {
        let Ok(hop) = entry.parse::<IpAddr>() else { break };
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| client_ip(a.ip(), &parts.headers, &state.settings().trusted_proxies).to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let (csrf_seed, new_csrf_cookie) = csrf::seed(state, &parts.headers);
        let csrf_token = csrf::form_token(state, &csrf_seed, &csrf::binding(state, &parts.headers));
        let user_agent = parts.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        // Ours are 43 base64url characters; anything else is replaced.
        let (device, new_device_cookie) = match cookie_value(state, &parts.headers, DEVICE_COOKIE) {
            Some(d) if valid_device_id(&d) => (d, None),
            _ => {
                let d = portcullis_core::risk::new_device_id();
                let cookie = set_cookie(state, DEVICE_COOKIE, &d, Some(DEVICE_COOKIE_SECONDS));
                (d, Some(cookie))
            }
        };
        Ok(Self {
            ip,
            session_token: cookie_value(state, &parts.headers, SESSION_COOKIE),
            remembered: cookie_value(state, &parts.headers, REMEMBER_COOKIE),
            user_agent,
            csrf_token,
            csrf_seed,
            device,
            new_csrf_cookie,
            new_device_cookie,
        })
    }
}

impl Browser {
    /// This browser once the response makes `session_token` its session:
    /// the forms on a page rendered in that response are bound to it.
    pub fn with_session(&self, state: &AppState, session_token: &str) -> Self {
        Self {
            csrf_token: csrf::form_token(state, &self.csrf_seed, session_token),
            session_token: Some(session_token.to_owned()),
            ..self.clone()
        }
    }

    /// Renders a page, adding the CSRF token to its context and the CSRF cookie when new.
    pub fn page(&self, status: StatusCode, template: &str, ctx: minijinja::Value) -> Response {
        let ctx = minijinja::context! { csrf_token => &self.csrf_token, ..ctx };
        self.finish(pages::render(status, template, ctx))
    }

    /// Adds the CSRF and device cookies to a response when the browser had none.
    pub fn finish(&self, mut response: Response) -> Response {
        for c in [&self.new_csrf_cookie, &self.new_device_cookie].into_iter().flatten() {
            response.headers_mut().append(header::SET_COOKIE, c.clone());
        }
        response
    }

    /// Where this request comes from, for the policy and the audit log.
    pub fn origin(&self) -> portcullis_core::audit::RequestOrigin {
        portcullis_core::audit::RequestOrigin {
            ip: self.ip.parse().ok(),
            user_agent: self.user_agent.clone(),
            device: Some(self.device.clone()),
            ..Default::default()
        }
    }
}

/// A form body. Wrong content type, oversized bodies and missing or malformed
/// fields become clear error pages with the right status, never a panic.
pub struct HtmlForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for HtmlForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Self(v)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(AppError::UnsupportedMediaType),
            Err(FormRejection::FailedToDeserializeForm(e)) => Err(malformed(e.body_text())),
            Err(FormRejection::FailedToDeserializeFormBody(e)) => Err(malformed(e.body_text())),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::PayloadTooLarge),
            Err(e) => Err(malformed(e.body_text())),
        }
    }
}

fn malformed(detail: String) -> AppError {
    AppError::BadRequest(crate::i18n::Msg::new("error-form-malformed").arg("detail", detail))
}

/// A local path to continue to after signing in; anything that could leave
/// the site (`//host`, `/\host`, absolute URLs) falls back to the account page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && !n.chars().any(|c| c.is_control()) => {
            n.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

/// 303 See Other to a local path (the right redirect after a POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_client_address_comes_from_x_forwarded_for_only_through_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::1/128".parse().unwrap()];
        let spoofed = forwarded(&["198.51.100.1"]);
        assert_eq!(client_ip(ip("192.0.2.7"), &spoofed, &trusted), ip("192.0.2.7"), "an untrusted peer is the client");
        assert_eq!(client_ip(ip("192.0.2.7"), &spoofed, &[]), ip("192.0.2.7"), "nobody is trusted by default");
        assert_eq!(client_ip(ip("10.0.0.2"), &spoofed, &trusted), ip("198.51.100.1"));
        // Two proxies; the client's own claim to the left is ignored.
        let chain = forwarded(&["6.6.6.6, 198.51.100.1", "10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &chain, &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("2001:db8::1"), &forwarded(&["2001:db8::77"]), &trusted), ip("2001:db8::77"));
        // Malformed: stop at the last address a trusted hop vouched for.
        assert_eq!(client_ip(ip("10.0.0.2"), &forwarded(&["198.51.100.1, garbage, 10.0.0.9"]), &trusted), ip("10.0.0.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"), "no header: the proxy itself");
    }

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/authorize?client_id=x")), "/authorize?client_id=x");
        for bad in ["//evil.example", "/\\evil.example", "https://evil.example", "evil", "", "/\nSet-Cookie:x"] {
            assert_eq!(safe_next(Some(bad)), "/account", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/account");
    }
}
