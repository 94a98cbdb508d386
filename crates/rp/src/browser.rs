//! Browser applications: sign the user in (authorization code flow with
//! PKCE, `state` and `nonce`), and step an existing sign-in up when a page
//! requires more, coming back to that page.
//!
//! The application keeps the [`PendingSignIn`] between [`WebClient::begin`]
//! and [`WebClient::finish`] in its own server-side session, and the
//! [`SignedIn`] after; this module keeps no state.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::claims::IdClaims;
use crate::issuer::{Issuer, TokenType};
use crate::requirement::{Requirement, Unmet};
use crate::{Error, unix_now};

/// A registered client of the provider, for browser sign-ins.
#[derive(Clone)]
pub struct WebClient {
    issuer: Issuer,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    scope: String,
}

/// A sign-in sent to the provider and not back yet: keep it in the
/// browser's server-side session (it holds the PKCE verifier).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    issuer: String,
    /// For a step-up: the user the sign-in must stay with.
    subject: Option<String>,
    state: String,
    nonce: String,
    code_verifier: String,
    return_to: String,
    requirement: Requirement,
}

/// The parameters the provider sends back to the redirect URI.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` of the request.
    pub state: Option<String>,
    /// The issuer (RFC 9207), checked when present.
    pub iss: Option<String>,
    /// An OAuth error code instead of a code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

impl PendingSignIn {
    /// Whether `callback` answers this sign-in (its `state`, compared in
    /// constant time): an application keeping several sign-ins picks the one
    /// to finish with it, and leaves the others alone when none matches.
    pub fn answered_by(&self, callback: &Callback) -> bool {
        callback.state.as_deref().is_some_and(|s| same(s, &self.state))
    }
}

impl Callback {
    /// The parameters of a redirect's query string (`code=…&state=…`).
    pub fn from_query(query: &str) -> Self {
        let mut callback = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            let field = match name.as_ref() {
                "code" => &mut callback.code,
                "state" => &mut callback.state,
                "iss" => &mut callback.iss,
                "error" => &mut callback.error,
                "error_description" => &mut callback.error_description,
                _ => continue,
            };
            *field = Some(value.into_owned());
        }
        callback
    }
}

/// A finished sign-in: the verified ID token and the tokens issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignedIn {
    /// The ID token's claims (signature, issuer, audience, expiry, nonce checked).
    pub claims: IdClaims,
    /// The ID token itself (for `id_token_hint` at logout).
    pub id_token: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token, with the `offline_access` scope.
    pub refresh_token: Option<String>,
    /// The local path the sign-in was started for.
    pub return_to: String,
}

impl SignedIn {
    /// Whether this sign-in meets `requirement` now; else what is missing,
    /// which [`WebClient::begin`] with the same requirement asks for.
    pub fn meets(&self, requirement: &Requirement) -> Result<(), Unmet> {
        requirement.check(&self.claims, unix_now())
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    id_token: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

impl WebClient {
    /// A client registered with `redirect_uri`; `client_secret` for a
    /// confidential client (sent with HTTP Basic), `None` for a public one.
    pub fn new(issuer: Issuer, client_id: &str, client_secret: Option<&str>, redirect_uri: &str) -> Self {
        Self {
            issuer,
            client_id: client_id.to_owned(),
            client_secret: client_secret.map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
            scope: "openid email".to_owned(),
        }
    }

    /// The scopes to ask for (default `openid email`; `openid` is added if missing).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = if crate::claims::grants(scope, "openid") { scope.to_owned() } else { format!("openid {scope}") };
        self
    }

    /// Starts a sign-in that must meet `requirement` and come back to
    /// `return_to`: the URL to redirect the browser to, and what to keep
    /// until [`WebClient::finish`]. A user already signed in at the provider
    /// is asked only for what is missing (a step-up).
    ///
    /// `return_to` must be a local path (`/admin?x=1`); anything else
    /// becomes `/`, so the callback cannot be made an open redirect.
    pub fn begin(&self, return_to: &str, requirement: &Requirement) -> (String, PendingSignIn) {
        self.start(return_to, requirement, None)
    }

    /// [`WebClient::begin`] for a user already signed in here as `current`
    /// (the page requires more than `current` meets): [`WebClient::finish`]
    /// then refuses a sign-in as anyone else, so completing MFA as another
    /// account cannot raise this session.
    pub fn begin_step_up(&self, current: &SignedIn, return_to: &str, requirement: &Requirement) -> (String, PendingSignIn) {
        self.start(return_to, requirement, Some(current.claims.sub.clone()))
    }

    fn start(&self, return_to: &str, requirement: &Requirement, subject: Option<String>) -> (String, PendingSignIn) {
        let pending = PendingSignIn {
            issuer: self.issuer.issuer().to_owned(),
            subject,
            state: random(),
            nonce: random(),
            code_verifier: random(),
            return_to: local_path(return_to),
            requirement: requirement.clone(),
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let mut url = self.issuer.authorization_endpoint().clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.scope)
                .append_pair("state", &pending.state)
                .append_pair("nonce", &pending.nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(acr) = requirement.acr_values() {
                query.append_pair("acr_values", acr);
            }
            if let Some(max_age) = requirement.max_age_seconds() {
                query.append_pair("max_age", &max_age.to_string());
            }
        }
        (url.into(), pending)
    }

    /// Finishes the sign-in `pending` with the provider's `callback`: checks
    /// `state` and `iss`, exchanges the code (with the PKCE verifier),
    /// verifies the ID token (signature, `iss`, `aud`, `azp`, `exp`, `nonce`,
    /// `at_hash`), and checks that it meets the requirement the sign-in was
    /// started with; a provider that signed the user in with less is an
    /// [`Error::Insufficient`], not a success.
    pub async fn finish(&self, pending: PendingSignIn, callback: &Callback) -> Result<SignedIn, Error> {
        if !pending.answered_by(callback) {
            return Err(Error::Callback("the state does not match this browser's sign-in".into()));
        }
        if pending.issuer != self.issuer.issuer() {
            return Err(Error::Callback("this sign-in was started with another provider".into()));
        }
        // RFC 9207 §2.4: `iss` is required from a provider that says it sends it.
        let iss_required = self.issuer.metadata().authorization_response_iss_parameter_supported;
        match &callback.iss {
            Some(iss) if iss != self.issuer.issuer() => return Err(Error::Callback("the response names another issuer (RFC 9207)".into())),
            None if iss_required => return Err(Error::Callback("the response does not name its issuer (RFC 9207)".into())),
            _ => {}
        }
        if let Some(error) = &callback.error {
            return Err(Error::Provider { error: error.clone(), description: callback.error_description.clone() });
        }
        let code = callback.code.as_deref().ok_or_else(|| Error::Callback("the response has no code".into()))?;
        let tokens = self.exchange(code, &pending.code_verifier).await?;
        let id_token = tokens.id_token.ok_or_else(|| Error::InvalidToken("the provider returned no ID token".into()))?;
        let claims: IdClaims = self.issuer.verify(&id_token, TokenType::Id, &self.client_id).await?;
        // OpenID Connect Core §3.1.3.7: with several audiences, `azp` must
        // name this client; a present `azp` always must.
        let audiences = claims.other.get("aud").and_then(serde_json::Value::as_array).map_or(1, Vec::len);
        let azp_ok = match claims.azp.as_deref() {
            Some(azp) => azp == self.client_id,
            None => audiences <= 1,
        };
        if !azp_ok {
            return Err(Error::InvalidToken("the ID token was issued to another client (azp)".into()));
        }
        if pending.subject.as_deref().is_some_and(|sub| sub != claims.sub) {
            return Err(Error::Callback("the step-up was completed as another user".into()));
        }
        let nonce_ok = claims.nonce.as_deref().is_some_and(|n| same(n, &pending.nonce));
        if !nonce_ok {
            return Err(Error::InvalidToken("the ID token's nonce is not this sign-in's".into()));
        }
        // at_hash: the left half of SHA-256 for the SHA-256 algorithms this
        // provider signs with (OpenID Connect Core §3.1.3.6).
        if let Some(at_hash) = &claims.at_hash {
            let expected = URL_SAFE_NO_PAD.encode(&Sha256::digest(tokens.access_token.as_bytes())[..16]);
            if !same(at_hash, &expected) {
                return Err(Error::InvalidToken("the access token does not match the ID token's at_hash".into()));
            }
        }
        if !tokens.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::InvalidToken(format!("unexpected token type {:?}", tokens.token_type)));
        }
        let signed_in = SignedIn {
            claims,
            id_token,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            return_to: pending.return_to,
        };
        signed_in.meets(&pending.requirement).map_err(Error::Insufficient)?;
        Ok(signed_in)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<TokenResponse, Error> {
        let unreachable = |e: reqwest::Error| Error::Provider { error: "unreachable".into(), description: Some(e.to_string()) };
        let mut form =
            vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &self.redirect_uri), ("code_verifier", verifier)];
        let mut request = self.issuer.http().post(&self.issuer.metadata().token_endpoint).header("accept", "application/json");
        match &self.client_secret {
            // RFC 6749 §2.3.1: both form-urlencoded before Basic encoding.
            Some(secret) => {
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&self.client_id), Some(encode(secret)));
            }
            None => form.push(("client_id", &self.client_id)),
        }
        let response = request.form(&form).send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let refused: Option<TokenError> = serde_json::from_slice(&body).ok();
            return Err(match refused {
                Some(t) => Error::Provider { error: t.error, description: t.error_description },
                None => Error::Provider { error: format!("HTTP {status}"), description: None },
            });
        }
        serde_json::from_slice(&body).map_err(|e| Error::Provider { error: "invalid_response".into(), description: Some(e.to_string()) })
    }
}

/// Whether `a` and `b` are equal, compared in constant time.
fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 32 random bytes, base64url: `state`, `nonce` and the PKCE verifier (RFC 7636 §4.1).
fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `path` if it is a path on this site, else `/`: no scheme, no host, no
/// `//` or `/\` (which browsers read as another host).
fn local_path(path: &str) -> String {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") && !path.chars().any(char::is_control);
    if local { path.to_owned() } else { "/".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/admin?tab=1"), "/admin?tab=1");
        for elsewhere in ["https://evil.example/", "//evil.example/", "/\\evil.example", "admin", "", "/a\r\nb"] {
            assert_eq!(local_path(elsewhere), "/", "{elsewhere:?}");
        }
    }
}
