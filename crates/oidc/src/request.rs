//! Authorization requests (OIDC Core §3.1.2.1, §3.3.2.1), validated in the
//! order that makes error delivery safe (§3.1.2.6): until the client and its
//! exact redirect URI are known, errors are shown on our own page and never
//! redirected (no open redirect); after that, errors go back to the client.

use portcullis_core::oauth::Client;

use crate::pkce;
use crate::{ErrorCode, OAuthError};

/// Raw query or form parameters of `/authorize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// `response_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// Authorization code flow.
    Code,
    /// Hybrid flow: code and ID token from the authorization endpoint.
    CodeIdToken,
}

/// How the response travels back (OAuth 2.0 Multiple Response Types; Form Post Response Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// `?code=…`
    Query,
    /// `#code=…`
    Fragment,
    /// An auto-submitting HTML form that POSTs to the redirect URI.
    FormPost,
}

/// Where and how to send a response or an error to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// Delivery mode.
    pub mode: ResponseMode,
    /// `state` to echo.
    pub state: Option<String>,
}

/// A request that passed validation.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client.
    pub client: Client,
    /// Reply channel.
    pub reply: ReplyTo,
    /// Response type.
    pub response_type: ResponseType,
    /// Granted scopes (known ones only, `openid` first).
    pub scopes: Vec<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// PKCE challenge (S256).
    pub code_challenge: Option<String>,
    /// `prompt=none`.
    pub prompt_none: bool,
    /// `prompt=login`.
    pub prompt_login: bool,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// Requested ACR values, in order of preference.
    pub acr_values: Vec<String>,
    /// The raw parameters (kept while the user signs in).
    pub params: AuthorizeParams,
}

/// A request that cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeFailure {
    /// Client or redirect URI unknown: show our own error page, redirect nowhere.
    Page(String),
    /// Send the error to the client's redirect URI.
    Redirect(ReplyTo, OAuthError),
}

/// Scopes Portcullis knows.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Validates `params` for `client` (looked up by the caller from `client_id`; `None` if unknown).
pub fn validate(params: &AuthorizeParams, client: Option<Client>) -> Result<AuthorizeRequest, AuthorizeFailure> {
    if non_empty(&params.client_id).is_none() {
        return Err(AuthorizeFailure::Page("The application did not say who it is (client_id is missing).".into()));
    }
    let client = client.ok_or_else(|| AuthorizeFailure::Page("This application is not registered here (unknown client_id).".into()))?;
    let redirect_uri = non_empty(&params.redirect_uri)
        .ok_or_else(|| AuthorizeFailure::Page("The application did not say where to return (redirect_uri is missing).".into()))?;
    // Exact string comparison (OIDC Core §3.1.2.1; RFC 9700 §4.1.3): no prefix or pattern matching.
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(AuthorizeFailure::Page(
            "The return address (redirect_uri) is not registered for this application, so we will not send you there.".into(),
        ));
    }
    // Registered before today's rules (a `javascript:` or plain-http address): not used until the operator fixes it.
    if crate::clients::check_redirect_uri(redirect_uri).is_err() {
        return Err(AuthorizeFailure::Page(
            "The return address registered for this application is not allowed (it must be https, http to localhost, or an app's own scheme); the operator must update it with `portcullis client update --redirect-uri`.".into(),
        ));
    }

    let response_type = match non_empty(&params.response_type) {
        Some("code") => Some(ResponseType::Code),
        Some(rt) if sorted_words(rt) == ["code", "id_token"] => Some(ResponseType::CodeIdToken),
        _ => None,
    };
    let default_mode = match response_type {
        Some(ResponseType::CodeIdToken) => ResponseMode::Fragment,
        _ => ResponseMode::Query,
    };
    let mode = match non_empty(&params.response_mode) {
        None => Ok(default_mode),
        Some("query") => Ok(ResponseMode::Query),
        Some("fragment") => Ok(ResponseMode::Fragment),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(format!("response_mode {other:?} is not supported")),
    };
    let reply =
        ReplyTo { redirect_uri: redirect_uri.to_owned(), mode: *mode.as_ref().unwrap_or(&default_mode), state: params.state.clone() };
    let fail = |code: ErrorCode, msg: String| Err(AuthorizeFailure::Redirect(reply.clone(), OAuthError::new(code, msg)));

    if let Err(msg) = mode {
        return fail(ErrorCode::InvalidRequest, msg);
    }
    let Some(response_type) = response_type else {
        return fail(ErrorCode::UnsupportedResponseType, "response_type must be \"code\" or \"code id_token\"".into());
    };
    if response_type == ResponseType::CodeIdToken && reply.mode == ResponseMode::Query {
        return fail(ErrorCode::InvalidRequest, "response_mode=query must not carry tokens; use fragment or form_post".into());
    }
    if params.request.is_some() {
        return fail(ErrorCode::RequestNotSupported, "request objects are not supported".into());
    }
    if params.request_uri.is_some() {
        return fail(ErrorCode::RequestUriNotSupported, "request_uri is not supported".into());
    }
    let requested: Vec<&str> = params.scope.as_deref().unwrap_or("").split_whitespace().collect();
    if !requested.contains(&"openid") {
        return fail(ErrorCode::InvalidScope, "scope must include openid".into());
    }
    let mut scopes = vec!["openid".to_owned()];
    scopes.extend(SUPPORTED_SCOPES[1..].iter().filter(|s| requested.contains(s)).map(|s| (*s).to_owned()));

    let nonce = non_empty(&params.nonce).map(str::to_owned);
    if response_type == ResponseType::CodeIdToken && nonce.is_none() {
        return fail(ErrorCode::InvalidRequest, "nonce is required for response_type=code id_token".into());
    }

    let code_challenge = non_empty(&params.code_challenge).map(str::to_owned);
    match (code_challenge.as_deref(), non_empty(&params.code_challenge_method)) {
        (None, None) if client.is_public() => {
            return fail(
                ErrorCode::InvalidRequest,
                "PKCE is required for public clients: send code_challenge with code_challenge_method=S256".into(),
            );
        }
        (None, None) => {}
        (None, Some(_)) => return fail(ErrorCode::InvalidRequest, "code_challenge_method without code_challenge".into()),
        (Some(c), Some("S256")) if pkce::is_well_formed(c) => {}
        (Some(_), Some("S256")) => return fail(ErrorCode::InvalidRequest, "code_challenge is malformed".into()),
        (Some(_), Some("plain") | None) => {
            return fail(ErrorCode::InvalidRequest, "only code_challenge_method=S256 is supported (plain is refused)".into());
        }
        (Some(_), Some(other)) => return fail(ErrorCode::InvalidRequest, format!("code_challenge_method {other:?} is not supported")),
    }

    let prompts: Vec<&str> = params.prompt.as_deref().unwrap_or("").split_whitespace().collect();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return fail(ErrorCode::InvalidRequest, "prompt=none cannot be combined with other values".into());
    }
    let max_age = match non_empty(&params.max_age) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return fail(ErrorCode::InvalidRequest, "max_age must be a non-negative integer".into());
            }
        },
    };
    Ok(AuthorizeRequest {
        client,
        reply,
        response_type,
        scopes,
        nonce,
        code_challenge,
        prompt_none,
        prompt_login: prompts.contains(&"login"),
        max_age,
        login_hint: non_empty(&params.login_hint).map(str::to_owned),
        acr_values: params.acr_values.as_deref().unwrap_or("").split_whitespace().map(str::to_owned).collect(),
        params: params.clone(),
    })
}

fn sorted_words(s: &str) -> Vec<&str> {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    w.sort_unstable();
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::oauth::{ClientPolicy, SigningAlg};

    fn client(public: bool) -> Client {
        Client {
            id: "c1".into(),
            name: "App".into(),
            secret_digest: (!public).then(|| "d".into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            policy: ClientPolicy::default(),
            signing_alg: SigningAlg::ES256,
            service_scopes: vec![],
            self_registered: false,
            created_at: 0,
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            client_id: Some("c1".into()),
            redirect_uri: Some("https://app.example/cb".into()),
            response_type: Some("code".into()),
            scope: Some("openid email unknown".into()),
            state: Some("xyz".into()),
            code_challenge: Some(pkce::s256_challenge(&"v".repeat(43))),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        }
    }

    fn error_code(r: Result<AuthorizeRequest, AuthorizeFailure>) -> &'static str {
        match r {
            Err(AuthorizeFailure::Redirect(_, e)) => e.code.as_str(),
            Err(AuthorizeFailure::Page(_)) => "page",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn a_good_request_is_accepted_and_unknown_scopes_dropped() {
        let r = validate(&params(), Some(client(true))).unwrap();
        assert_eq!(r.scopes, vec!["openid", "email"]);
        assert_eq!(r.reply.mode, ResponseMode::Query);
        assert_eq!(r.reply.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn unknown_client_or_redirect_uri_never_redirects() {
        assert_eq!(error_code(validate(&params(), None)), "page");
        for uri in ["https://app.example/cb/", "https://app.example/cb?x=1", "https://evil.example/cb", "https://app.example/CB"] {
            let p = AuthorizeParams { redirect_uri: Some(uri.into()), ..params() };
            assert_eq!(error_code(validate(&p, Some(client(true)))), "page", "{uri}");
        }
    }

    #[test]
    fn a_redirect_uri_registered_before_the_rules_is_not_used() {
        for uri in ["javascript://x/%0Aalert(1)", "http://app.example/cb", "data:text/html,x"] {
            let mut old = client(true);
            old.redirect_uris.push(uri.into());
            let p = AuthorizeParams { redirect_uri: Some(uri.into()), ..params() };
            assert_eq!(error_code(validate(&p, Some(old))), "page", "{uri}");
        }
    }

    #[test]
    fn protocol_errors_go_back_to_the_client() {
        let c = || Some(client(true));
        assert_eq!(
            error_code(validate(&AuthorizeParams { response_type: Some("token".into()), ..params() }, c())),
            "unsupported_response_type"
        );
        assert_eq!(error_code(validate(&AuthorizeParams { scope: Some("email".into()), ..params() }, c())), "invalid_scope");
        assert_eq!(
            error_code(validate(&AuthorizeParams { code_challenge_method: Some("plain".into()), ..params() }, c())),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() }, c())),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() }, Some(client(false)))),
            "ok"
        );
        assert_eq!(
            error_code(validate(&AuthorizeParams { response_type: Some("id_token code".into()), ..params() }, c())),
            "invalid_request",
            "nonce required"
        );
        assert_eq!(error_code(validate(&AuthorizeParams { prompt: Some("none login".into()), ..params() }, c())), "invalid_request");
        assert_eq!(error_code(validate(&AuthorizeParams { max_age: Some("-1".into()), ..params() }, c())), "invalid_request");
        assert_eq!(error_code(validate(&AuthorizeParams { request: Some("x".into()), ..params() }, c())), "request_not_supported");
        let hybrid = AuthorizeParams { response_type: Some("code id_token".into()), nonce: Some("n".into()), ..params() };
        assert_eq!(validate(&hybrid, c()).unwrap().reply.mode, ResponseMode::Fragment);
        assert_eq!(error_code(validate(&AuthorizeParams { response_mode: Some("query".into()), ..hybrid }, c())), "invalid_request");
    }
}
