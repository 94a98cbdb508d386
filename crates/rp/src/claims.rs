//! The claims of verified tokens, and what they say about how the user
//! signed in.

use serde::{Deserialize, Serialize};

/// What a token says about the user's authentication, for [`crate::Requirement`].
pub trait AuthenticationFacts {
    /// The authentication context class reached (`acr`): `mfa`, `phr`, or none.
    fn acr(&self) -> Option<&str>;
    /// The methods used (`amr`, RFC 8176): `pwd`, `otp`, `hwk`, `swk`, …
    fn amr(&self) -> &[String];
    /// When the user last authenticated (`auth_time`, seconds since the epoch).
    fn auth_time(&self) -> Option<i64>;
    /// The scopes granted, space-separated; `None` when the token has none
    /// (an ID token).
    fn scope(&self) -> Option<&str> {
        None
    }
}

/// The claims of a verified access token (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct AccessClaims {
    /// The issuer.
    pub iss: String,
    /// The user (or, for `client_credentials`, the client).
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// The token's identifier.
    #[serde(default)]
    pub jti: Option<String>,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub scope: String,
    /// When the user authenticated (absent for `client_credentials`).
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// The authentication context class reached.
    #[serde(default)]
    pub acr: Option<String>,
    /// The authentication methods used.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The provider's session.
    #[serde(default)]
    pub sid: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl AccessClaims {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        grants(&self.scope, scope)
    }
}

impl AuthenticationFacts for AccessClaims {
    fn acr(&self) -> Option<&str> {
        self.acr.as_deref()
    }
    fn amr(&self) -> &[String] {
        &self.amr
    }
    fn auth_time(&self) -> Option<i64> {
        self.auth_time
    }
    fn scope(&self) -> Option<&str> {
        Some(&self.scope)
    }
}

/// Whether the space-separated `granted` scopes include `scope`.
pub(crate) fn grants(granted: &str, scope: &str) -> bool {
    granted.split(' ').any(|s| s == scope)
}

/// The claims of a verified ID token (OpenID Connect Core §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct IdClaims {
    /// The issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// When the user authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// The nonce of the request (checked by [`crate::WebClient::finish`]).
    #[serde(default)]
    pub nonce: Option<String>,
    /// The authentication context class reached.
    #[serde(default)]
    pub acr: Option<String>,
    /// The authentication methods used.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The authorized party (checked to be this client when present).
    #[serde(default)]
    pub azp: Option<String>,
    /// The provider's session.
    #[serde(default)]
    pub sid: Option<String>,
    /// Half of the access token's SHA-256 (checked when present).
    #[serde(default)]
    pub at_hash: Option<String>,
    /// The user's email address, with the `email` scope.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the provider verified it.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// The user's name, with the `profile` scope.
    #[serde(default)]
    pub name: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl AuthenticationFacts for IdClaims {
    fn acr(&self) -> Option<&str> {
        self.acr.as_deref()
    }
    fn amr(&self) -> &[String] {
        &self.amr
    }
    fn auth_time(&self) -> Option<i64> {
        self.auth_time
    }
}
