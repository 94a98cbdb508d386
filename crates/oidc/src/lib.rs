//! Portcullis OpenID Connect provider: protocol rules only.
//!
//! [`request`] validates authorization requests (OIDC Core §3.1.2.1/§3.3.2),
//! [`provider::Provider`] decides what each endpoint answers (codes, tokens,
//! userinfo, revocation, introspection, logout), [`keys`] holds signing keys,
//! [`pkce`] checks RFC 7636 S256, [`tokens`] builds and verifies JWTs. No HTTP
//! here: the server maps [`OAuthError`] to responses in one place.

pub mod app_access;
pub mod clients;
pub mod keys;
pub mod pkce;
pub mod provider;
pub mod registration;
pub mod request;
mod token_endpoint;
pub mod tokens;

use portcullis_core::StoreError;

/// OAuth 2.0 / OIDC error codes (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed or missing parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Code or refresh token invalid, expired, reused, or PKCE failed.
    InvalidGrant,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// Grant type not supported.
    UnsupportedGrantType,
    /// Response type not supported.
    UnsupportedResponseType,
    /// Scope invalid.
    InvalidScope,
    /// `prompt=none` but the user must sign in.
    LoginRequired,
    /// `prompt=none` but the user must interact (a second factor).
    InteractionRequired,
    /// The resource owner or the server's policy refused (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// `request` parameter not supported.
    RequestNotSupported,
    /// `request_uri` parameter not supported.
    RequestUriNotSupported,
    /// Bearer token invalid (RFC 6750).
    InvalidToken,
    /// A registration's redirect URI is refused (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// A registration's other metadata is refused (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// Server failure.
    ServerError,
    /// The server cannot answer now (its database is unreachable); RFC 6749
    /// §4.1.2.1 names it for the authorization endpoint, and it is used with
    /// 503 and `Retry-After` at the other endpoints too.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
            Self::AccessDenied => "access_denied",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A protocol error to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// Human-readable detail (`error_description`).
    pub description: String,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }
}

/// Anything that can go wrong in the provider.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The client did something wrong.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A signing key is missing or unusable.
    #[error("signing key: {0}")]
    Key(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The endpoint is turned off (dynamic registration, by default).
    #[error("{0}")]
    NotFound(&'static str),
}

impl OidcError {
    /// Shorthand for a protocol error.
    pub fn oauth(code: ErrorCode, description: impl Into<String>) -> Self {
        Self::OAuth(OAuthError::new(code, description))
    }
}
