//! Require multi-factor authentication in an axum (or any tower) application
//! behind an OpenID Connect provider such as Portcullis.
//!
//! - **APIs** ([`Verifier`], [`Verifier::require`]): a layer validates the
//!   bearer access token (RFC 9068 JWT: signature from the issuer's JWKS,
//!   fetched through discovery and cached; `typ`, `iss`, `aud`, `exp`, `nbf`;
//!   a `kid` and `sub` required, `crit` headers and an `iat`/`auth_time`
//!   beyond the leeway in the future refused; ES256, RS256 and PS256 keys
//!   only) and checks a [`Requirement`] (`acr` at least `mfa` or `phr`, an
//!   `amr` method, `max_age`, scopes). A token that does not meet it gets
//!   RFC 9470's challenge, `401` with `WWW-Authenticate: Bearer
//!   error="insufficient_user_authentication", error_description="…",
//!   acr_values="mfa"`, so the client knows to sign the user in again with
//!   more. Handlers take the verified [`AccessClaims`] as an extractor.
//!   Tokens are checked locally: a revoked grant's token passes until it
//!   expires.
//! - **Browser applications** ([`WebClient`]): the code flow with PKCE;
//!   on a page that requires more than the session has, [`WebClient::begin`]
//!   sends the user back to the provider with `acr_values`, which asks only
//!   for the missing factor, and [`WebClient::finish`] checks the ID token's
//!   `acr`/`amr`, not only that it exists. For a session already signed in,
//!   use [`WebClient::begin_step_up`]: `finish` then refuses a sign-in
//!   completed as another user.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_rp::{AccessClaims, Issuer, Requirement, Verifier};
//!
//! async fn admin(claims: AccessClaims) -> String {
//!     format!("hello {}, signed in with {:?}", claims.sub, claims.amr)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::discover("https://id.example.com").await?;
//! let tokens = Verifier::new(issuer, "my-client-id");
//! let app: Router = Router::new()
//!     .route("/api/admin", get(admin))
//!     .layer(tokens.require(Requirement::mfa()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The crate uses `jsonwebtoken` with its `rust_crypto` backend: an
//! application that also enables its `aws_lc_rs` feature must install one
//! provider (`jsonwebtoken::crypto::CryptoProvider::install_default`).

mod bearer;
mod browser;
mod claims;
mod issuer;
mod requirement;

pub use bearer::{Rejection, RequireAuth, RequireAuthLayer, Verifier};
pub use browser::{Callback, PendingSignIn, SignedIn, WebClient};
pub use claims::{AccessClaims, AuthenticationFacts, IdClaims};
pub use issuer::{Issuer, Options, ProviderMetadata};
pub use requirement::{Acr, Requirement, Unmet};

/// What can go wrong talking to the provider or checking its tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Discovery failed or named another issuer.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The JWKS could not be fetched or held no usable key.
    #[error("the issuer's keys: {0}")]
    Keys(String),
    /// A token failed a check (signature, type, issuer, audience, expiry…).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The redirect back from the provider is not this sign-in's.
    #[error("sign-in callback: {0}")]
    Callback(String),
    /// The provider refused (an OAuth error code and its description).
    #[error("the provider answered {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Provider {
        /// The OAuth error code.
        error: String,
        /// Its description.
        description: Option<String>,
    },
    /// The sign-in succeeded with less than was required.
    #[error("the sign-in does not meet the requirement: {0}")]
    Insufficient(Unmet),
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
