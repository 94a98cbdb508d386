//! Resource servers: a bearer access token (RFC 6750) checked against a
//! [`Requirement`] by a tower layer, its claims handed to handlers by an
//! axum extractor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::claims::AccessClaims;
use crate::issuer::{Issuer, TokenType};
use crate::requirement::{Requirement, Unmet, quoted};
use crate::{Error, unix_now};

/// Verifies the access tokens an issuer signed for one audience (RFC 9068).
#[derive(Clone)]
pub struct Verifier {
    issuer: Issuer,
    audience: String,
}

impl Verifier {
    /// Tokens of `issuer` whose `aud` contains `audience` (for Portcullis:
    /// the client id the tokens were issued to).
    pub fn new(issuer: Issuer, audience: &str) -> Self {
        Self { issuer, audience: audience.to_owned() }
    }

    /// The claims of `token` if it is a valid access token of this issuer
    /// for this audience: RFC 9068 §4 (`typ` `at+jwt`, signature, `iss`,
    /// `aud`, `exp`).
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, Error> {
        self.issuer.verify(token, TokenType::Access, &self.audience).await
    }

    /// A layer that lets a request through only with a valid access token
    /// that meets `requirement`, answering RFC 6750/9470 challenges otherwise.
    pub fn require(&self, requirement: Requirement) -> RequireAuthLayer {
        RequireAuthLayer { verifier: self.clone(), requirement: Arc::new(requirement) }
    }

    /// The claims of the bearer token of `parts` that meet `requirement`, or
    /// the response to send instead.
    pub async fn authorize(&self, parts: &Parts, requirement: &Requirement) -> Result<AccessClaims, Rejection> {
        let token = bearer_token(parts)?;
        let claims = self.verify_access_token(token).await.map_err(Rejection::from)?;
        requirement.check(&claims, unix_now()).map_err(|unmet| {
            let challenge = requirement.challenge(&unmet);
            Rejection::Unmet(unmet, challenge)
        })?;
        Ok(claims)
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1; the
/// scheme is case-insensitive, RFC 9110 §11.1).
fn bearer_token(parts: &Parts) -> Result<&str, Rejection> {
    let mut headers = parts.headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (headers.next(), headers.next()) else {
        return Err(Rejection::NoToken);
    };
    let value = value.to_str().map_err(|_| Rejection::InvalidRequest("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Rejection::NoToken),
    }
}

/// Why a request was refused, as the response RFC 6750 and RFC 9470 ask for.
#[derive(Debug)]
pub enum Rejection {
    /// No bearer token: `401` with a bare `Bearer` challenge.
    NoToken,
    /// A malformed request: `400 invalid_request`.
    InvalidRequest(&'static str),
    /// A token that is not valid: `401 invalid_token`.
    InvalidToken(String),
    /// A valid token that does not meet the requirement: `401
    /// insufficient_user_authentication` (or `403 insufficient_scope`).
    Unmet(Unmet, String),
    /// The issuer's keys could not be fetched: `503`.
    Unavailable(String),
    /// The route has no [`RequireAuthLayer`] (a mistake in the application).
    NoLayer,
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidToken(why) => Self::InvalidToken(why),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Self::NoToken => (StatusCode::UNAUTHORIZED, "Bearer".to_owned(), "a bearer access token is required".to_owned()),
            Self::InvalidRequest(why) => (
                StatusCode::BAD_REQUEST,
                format!("Bearer error=\"invalid_request\", error_description=\"{}\"", quoted(why)),
                why.to_owned(),
            ),
            Self::InvalidToken(why) => {
                (StatusCode::UNAUTHORIZED, format!("Bearer error=\"invalid_token\", error_description=\"{}\"", quoted(&why)), why)
            }
            Self::Unmet(unmet, challenge) => {
                (StatusCode::from_u16(unmet.status()).unwrap_or(StatusCode::UNAUTHORIZED), challenge, unmet.to_string())
            }
            Self::Unavailable(why) => {
                tracing::error!(%why, "access tokens cannot be verified");
                return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "the identity provider's keys are unavailable")
                    .into_response();
            }
            Self::NoLayer => {
                tracing::error!("AccessClaims extracted on a route without portcullis_rp's RequireAuthLayer");
                return (StatusCode::INTERNAL_SERVER_ERROR, "this route is misconfigured").into_response();
            }
        };
        let mut response = (status, body).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The claims of the request's access token, as [`RequireAuthLayer`]
/// verified them; a route without the layer answers 500 rather than trust
/// an unchecked token.
impl<S: Send + Sync> FromRequestParts<S> for AccessClaims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Verified>().map(|v| v.0.clone()).ok_or(Rejection::NoLayer)
    }
}

/// Claims the layer verified (private: only the layer puts them there).
#[derive(Clone)]
struct Verified(AccessClaims);

/// The layer of [`Verifier::require`].
#[derive(Clone)]
pub struct RequireAuthLayer {
    verifier: Verifier,
    requirement: Arc<Requirement>,
}

impl<S> tower::Layer<S> for RequireAuthLayer {
    type Service = RequireAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuth { inner, layer: self.clone() }
    }
}

/// The service of [`RequireAuthLayer`].
#[derive(Clone)]
pub struct RequireAuth<S> {
    inner: S,
    layer: RequireAuthLayer,
}

impl<S> tower::Service<Request> for RequireAuth<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match layer.verifier.authorize(&parts, &layer.requirement).await {
                Ok(claims) => {
                    parts.extensions.insert(Verified(claims));
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
