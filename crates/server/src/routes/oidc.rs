//! OpenID Connect endpoints. The authorization endpoint and logout are pages
//! in the browser; token, userinfo, revocation and introspection are JSON
//! APIs for clients (no CSRF: they authenticate the client instead).

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::rate_limit::LimitedAction;
use portcullis_core::sessions::ActiveSession;
use portcullis_core::sign_in::SessionUse;
use portcullis_oidc::provider::{AuthorizationResponse, ClientCredentials, Decision, Logout, TokenRequest};
use portcullis_oidc::registration::{ClientMetadata, RegistrationMode};
use portcullis_oidc::request::{AuthorizeFailure, AuthorizeParams, ReplyTo, ResponseMode};
use portcullis_oidc::{ErrorCode, OAuthError, OidcError};
use serde::Deserialize;

use super::current_session;
use crate::error::{AppError, oauth_error_response};
use crate::request::{Browser, SESSION_COOKIE, see_other, set_cookie};
use crate::state::AppState;

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// GET /.well-known/openid-configuration
pub async fn discovery(State(state): State<AppState>) -> Response {
    let mut r = Json(state.provider().discovery(&portcullis_core::session::ACR_VALUES)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}

/// GET /jwks.json
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut r = Json(state.provider().jwks()).into_response();
    // Cached no longer than a key reload period: a new key is published for
    // two before it signs, so a cache has taken it in by then.
    let max_age = format!("public, max-age={}", state.provider().key_reload_seconds());
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        r.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    r
}

/// GET /authorize
pub async fn authorize_get(
    State(state): State<AppState>,
    browser: Browser,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, AppError> {
    authorize(&state, &browser, params, None).await
}

/// POST /authorize (OIDC Core §3.1.2.1: both methods must be supported).
pub async fn authorize_post(
    State(state): State<AppState>,
    browser: Browser,
    Form(params): Form<AuthorizeParams>,
) -> Result<Response, AppError> {
    authorize(&state, &browser, params, None).await
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    #[serde(default)]
    request: String,
}

/// GET /authorize/resume?request=…: continues a request after the sign-in detour.
pub async fn authorize_resume(State(state): State<AppState>, browser: Browser, Query(q): Query<ResumeQuery>) -> Result<Response, AppError> {
    match state.provider().load_pending(&q.request, state.now()).await? {
        Some((params, since)) => authorize(&state, &browser, params, Some((q.request, since))).await,
        None => Err(AppError::BadRequest("error-authorization-expired".into())),
    }
}

/// Keeps an authorization request while the user signs in: each stored
/// request counts against the client address's budget (`[rate_limit]
/// authorize_per_minute`), and the table is bounded per network and in all
/// (`provider::PENDING_REQUESTS_PER_ADDRESS`, `provider::MAX_PENDING_REQUESTS`).
async fn save_pending(state: &AppState, browser: &Browser, req: &portcullis_oidc::request::AuthorizeRequest) -> Result<String, AppError> {
    let now = state.now();
    if let Err(retry_after_secs) =
        state.accounts().throttle(LimitedAction::Authorize, &browser.ip, now).await.map_err(AccountError::from)?
    {
        return Err(AppError::TooManyRequests { retry_after_secs });
    }
    let requester = portcullis_core::rate_limit::network_key(&browser.ip);
    Ok(state.provider().save_pending(req, &requester, now).await?)
}

async fn authorize(
    state: &AppState,
    browser: &Browser,
    params: AuthorizeParams,
    pending: Option<(String, i64)>,
) -> Result<Response, AppError> {
    let provider = state.provider();
    let now = state.now();
    let req = match provider.validate(&params).await? {
        Ok(r) => r,
        Err(AuthorizeFailure::Page(message)) => return Err(refused_request(message)),
        Err(AuthorizeFailure::Redirect(reply, error)) => return Ok(deliver_error(browser, state, &reply, &error)),
    };
    let session: Option<ActiveSession> = current_session(state, browser).await?;
    // The sign-in rules and this client's policy, judged afresh for this client at every request.
    let acceptable = portcullis_oidc::provider::acceptable_acr(&req);
    let check = match &session {
        Some(s) => {
            let using = SessionUse::Client { id: &req.client.id, policy: &req.client.policy, acceptable_acr: &acceptable };
            Some(state.accounts().sessions().check_session(s, using, false, &browser.origin(), now).await?)
        }
        None => None,
    };
    match provider.decide(&req, session.as_ref().map(|s| &s.record).zip(check), pending.as_ref().map(|p| p.1), now) {
        Decision::Issue => {
            let Some(session) = session else { return Err(AppError::Internal("decided to issue without a session".into())) };
            if provider.needs_consent(&req, session.user.id).await? {
                if req.prompt_none {
                    // Not sent to a redirect URI the user never allowed (see `Decision::Fail` below).
                    return Err(AppError::BadRequest("error-consent-needed".into()));
                }
                let id = match pending {
                    Some((id, _)) => id,
                    None => save_pending(state, browser, &req).await?,
                };
                return Ok(consent_page(browser, &req, &id));
            }
            let response = provider.issue(&req, &session.record, &session.user, pending.as_ref().map(|p| p.0.as_str()), now).await?;
            Ok(deliver(browser, &response))
        }
        Decision::SignIn { reauthenticate } => {
            let id = match pending {
                Some((id, _)) => id,
                None => save_pending(state, browser, &req).await?,
            };
            let next = format!("/authorize/resume?request={id}");
            let mut login = url::form_urlencoded::Serializer::new(String::new());
            login.append_pair("next", &next);
            if reauthenticate {
                login.append_pair("reauth", "1");
            }
            if let Some(hint) = &req.login_hint {
                login.append_pair("login_hint", hint);
            }
            Ok(see_other(&format!("/login?{}", login.finish())))
        }
        Decision::StepUp(demand) => {
            let Some(session) = session else { return Err(AppError::Internal("decided to step up without a session".into())) };
            let id = match pending {
                Some((id, _)) => id,
                None => save_pending(state, browser, &req).await?,
            };
            let next = format!("/authorize/resume?request={id}");
            super::second_step::step_up(state, browser, &session, &next, (demand, Some(&req.client.id))).await
        }
        Decision::Denied => Err(AppError::Account(portcullis_core::AccountError::SignInDenied)),
        Decision::Fail(reply, error) => match provider.may_redirect_error(&req, session.as_ref().map(|s| s.user.id)).await? {
            true => Ok(deliver_error(browser, state, &reply, &error)),
            false => Err(refused_request(error.description)),
        },
    }
}

/// The question put to a user before a self-registered client gets anything:
/// who is asking (its name, and where the answer goes), and what for.
fn consent_page(browser: &Browser, req: &portcullis_oidc::request::AuthorizeRequest, request_id: &str) -> Response {
    let wants = crate::i18n::scope_words(&req.scopes);
    let offline = req.scopes.iter().any(|s| s == "offline_access");
    // The web site the answer goes to; for anything else (an app's own scheme,
    // a loopback address) what the page can say is only that it stays on the device.
    let to = match url::Url::parse(&req.reply.redirect_uri) {
        Ok(u) if u.scheme() == "https" => {
            u.host_str().map(|h| crate::i18n::tr(crate::i18n::Msg::new("consent-to-web-site").arg("site", h)))
        }
        Ok(u) => Some(crate::i18n::tr(crate::i18n::Msg::new("consent-to-app").arg("scheme", format!("{}:", u.scheme())))),
        Err(_) => None,
    }
    .unwrap_or_else(|| req.reply.redirect_uri.clone());
    let ctx =
        context! { signed_in => true, client => &req.client.name, client_id => &req.client.id, wants, offline, to, request => request_id };
    browser.page(StatusCode::OK, "consent.html", ctx)
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    decision: String,
}

/// POST /authorize/consent: the user's answer. "Allow" is remembered until
/// the user removes the application's access, and the request goes on;
/// "Deny" ends it, and the application hears `access_denied`.
pub async fn authorize_consent(
    State(state): State<AppState>,
    browser: Browser,
    Form(form): Form<ConsentForm>,
) -> Result<Response, AppError> {
    let provider = state.provider();
    let expired = || AppError::BadRequest("error-authorization-expired".into());
    let (params, since) = provider.load_pending(&form.request, state.now()).await?.ok_or_else(expired)?;
    let req = match provider.validate(&params).await? {
        Ok(r) => r,
        Err(AuthorizeFailure::Page(message)) => return Err(refused_request(message)),
        Err(AuthorizeFailure::Redirect(reply, error)) => return Ok(deliver_error(&browser, &state, &reply, &error)),
    };
    let Some(session) = current_session(&state, &browser).await? else {
        return authorize(&state, &browser, params, Some((form.request, since))).await;
    };
    match form.decision.as_str() {
        "allow" => {
            provider.record_consent(&req, session.user.id, state.now()).await?;
            authorize(&state, &browser, params, Some((form.request, since))).await
        }
        "deny" => {
            if !provider.take_pending(&form.request).await? {
                return Err(expired());
            }
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user did not allow this application");
            Ok(deliver_error(&browser, &state, &req.reply, &error))
        }
        _ => Err(AppError::BadRequest("error-choose-allow-or-deny".into())),
    }
}

fn deliver_error(browser: &Browser, state: &AppState, reply: &ReplyTo, error: &OAuthError) -> Response {
    let mut params =
        vec![("error".to_owned(), error.code.as_str().to_owned()), ("error_description".to_owned(), error.description.clone())];
    if let Some(s) = &reply.state {
        params.push(("state".to_owned(), s.clone()));
    }
    params.push(("iss".to_owned(), state.provider().issuer().to_owned()));
    deliver(browser, &AuthorizationResponse { reply: reply.clone(), params })
}

/// Sends an authorization response the way the client asked.
fn deliver(browser: &Browser, response: &AuthorizationResponse) -> Response {
    let encoded = || url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&response.params).finish();
    let target = &response.reply.redirect_uri;
    match response.reply.mode {
        ResponseMode::Query => {
            let sep = if target.contains('?') { '&' } else { '?' };
            no_store(see_other(&format!("{target}{sep}{}", encoded())))
        }
        ResponseMode::Fragment => no_store(see_other(&format!("{target}#{}", encoded()))),
        ResponseMode::FormPost => {
            no_store(browser.page(StatusCode::OK, "form_post.html", context! { action => target, fields => response.params }))
        }
    }
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64) or the form.
pub fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<(ClientCredentials, bool), OidcError> {
    let bad = |why: &str| OidcError::oauth(ErrorCode::InvalidRequest, why);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    let Some(encoded) = basic else { return Ok((ClientCredentials { client_id: form_id, client_secret: form_secret }, false)) };
    let invalid = || OidcError::oauth(ErrorCode::InvalidClient, "malformed Basic credentials");
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape =
        |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    let (id, secret) = (unescape(id), unescape(secret));
    // No client id or secret of ours holds a control character (and PostgreSQL
    // cannot compare text with a NUL): the one value `input::refuse_nul` cannot see.
    if id.chars().chain(secret.chars()).any(char::is_control) {
        return Err(invalid());
    }
    if form_secret.is_some() {
        return Err(bad("use one client authentication method, not two"));
    }
    if form_id.as_deref().is_some_and(|f| f != id) {
        return Err(bad("client_id in the form differs from the one in the Authorization header"));
    }
    Ok((ClientCredentials { client_id: Some(id), client_secret: Some(secret) }, true))
}

/// A form body for the OAuth APIs; malformed bodies become `invalid_request` JSON.
pub struct OAuthForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for OAuthForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Form::<T>::from_request(req, state).await.map(|Form(v)| Self(v)).map_err(|e: FormRejection| {
            oauth_error_response(
                OidcError::oauth(
                    ErrorCode::InvalidRequest,
                    format!("the request body must be a valid application/x-www-form-urlencoded form: {}", e.body_text()),
                ),
                false,
            )
        })
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(flatten)]
    request: TokenRequest,
}

/// POST /token
pub async fn token(State(state): State<AppState>, headers: HeaderMap, OAuthForm(form): OAuthForm<TokenForm>) -> Response {
    let (creds, basic) = match client_credentials(&headers, form.client_id, form.client_secret) {
        Ok(c) => c,
        Err(e) => return oauth_error_response(e, false),
    };
    match state.provider().token(&creds, &form.request, state.now()).await {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => oauth_error_response(e, basic),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// GET or POST /userinfo (RFC 6750 bearer token in the Authorization header).
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "invalid_request", "error_description": "send the access token as Authorization: Bearer" })),
        )
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    match state.provider().userinfo(token).await {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => oauth_error_response(e, false),
    }
}

#[derive(Deserialize)]
pub struct TokenOnlyForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// POST /revoke (RFC 7009)
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, OAuthForm(form): OAuthForm<TokenOnlyForm>) -> Response {
    let (creds, basic) = match client_credentials(&headers, form.client_id, form.client_secret) {
        Ok(c) => c,
        Err(e) => return oauth_error_response(e, false),
    };
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return oauth_error_response(OidcError::oauth(ErrorCode::InvalidRequest, "token is missing"), basic);
    };
    match state.provider().revoke(&creds, &token, state.now()).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error_response(e, basic),
    }
}

/// POST /introspect (RFC 7662)
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, OAuthForm(form): OAuthForm<TokenOnlyForm>) -> Response {
    let (creds, basic) = match client_credentials(&headers, form.client_id, form.client_secret) {
        Ok(c) => c,
        Err(e) => return oauth_error_response(e, false),
    };
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return oauth_error_response(OidcError::oauth(ErrorCode::InvalidRequest, "token is missing"), basic);
    };
    match state.provider().introspect(&creds, &token, state.now()).await {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => oauth_error_response(e, basic),
    }
}

#[derive(Deserialize, Default)]
pub struct EndSessionParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn end_session_decision(state: &AppState, session: Option<&ActiveSession>, p: &EndSessionParams) -> Result<Logout, AppError> {
    Ok(state
        .provider()
        .end_session(
            p.id_token_hint.as_deref(),
            p.client_id.as_deref(),
            p.post_logout_redirect_uri.as_deref(),
            p.state.as_deref(),
            session.map(|s| &s.user),
        )
        .await?)
}

async fn sign_out_and_leave(
    state: &AppState,
    browser: &Browser,
    session: Option<ActiveSession>,
    redirect: Option<String>,
) -> Result<Response, AppError> {
    if let Some(token) = session.and(browser.session_token.as_ref()) {
        state.accounts().sessions().sign_out(token).await?;
    }
    let mut response = match redirect {
        Some(to) => see_other(&to),
        None => browser.page(
            StatusCode::OK,
            "message.html",
            context! { title => crate::i18n::tr("signed-out-title"), text => crate::i18n::tr("notice-signed-out") },
        ),
    };
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, "", Some(0)));
    Ok(browser.finish(response))
}

/// GET /end-session (RP-initiated logout).
pub async fn end_session(State(state): State<AppState>, browser: Browser, Query(p): Query<EndSessionParams>) -> Result<Response, AppError> {
    let session = current_session(&state, &browser).await?;
    match end_session_decision(&state, session.as_ref(), &p).await? {
        Logout::SignOut { redirect } => sign_out_and_leave(&state, &browser, session, redirect).await,
        Logout::Confirm { .. } => Ok(browser.page(
            StatusCode::OK,
            "end_session.html",
            context! { signed_in => true, client_id => p.client_id, post_logout_redirect_uri => p.post_logout_redirect_uri, state => p.state },
        )),
    }
}

/// POST /end-session: the user confirmed on our page (CSRF-checked).
pub async fn end_session_confirm(
    State(state): State<AppState>,
    browser: Browser,
    Form(p): Form<EndSessionParams>,
) -> Result<Response, AppError> {
    let session = current_session(&state, &browser).await?;
    let redirect = match end_session_decision(&state, session.as_ref(), &p).await? {
        Logout::SignOut { redirect } | Logout::Confirm { redirect } => redirect,
    };
    sign_out_and_leave(&state, &browser, session, redirect).await
}

/// The body of a registration request: JSON (RFC 7591 §3.1), or a clear refusal.
fn client_metadata(headers: &HeaderMap, body: &[u8]) -> Result<ClientMetadata, OidcError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(OidcError::oauth(ErrorCode::InvalidClientMetadata, "send the client metadata as application/json"));
    }
    ClientMetadata::from_json(body)
}

/// POST /register: dynamic client registration (RFC 7591), 201 with the client's credentials.
pub async fn register(State(state): State<AppState>, browser: Browser, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // Open registration is counted per address; with initial access tokens the token is the limit.
    if state.provider().registration_mode() == RegistrationMode::Open {
        match state.accounts().throttle(LimitedAction::RegisterClient, &browser.ip, state.now()).await {
            Ok(Ok(())) => {}
            Ok(Err(wait)) => {
                let description = AppError::TooManyRequests { retry_after_secs: wait }.to_string();
                let body = Json(serde_json::json!({ "error": "too_many_requests", "error_description": description }));
                return crate::error::with_retry_after((StatusCode::TOO_MANY_REQUESTS, body).into_response(), Some(wait));
            }
            Err(e) => return oauth_error_response(OidcError::Store(e), false),
        }
    }
    let result = async {
        let metadata = client_metadata(&headers, &body)?;
        state.provider().register_client(bearer(&headers), &metadata, &browser.origin(), state.now()).await
    }
    .await;
    match result {
        Ok(answer) => no_store((StatusCode::CREATED, Json(answer)).into_response()),
        Err(e) => oauth_error_response(e, false),
    }
}

/// GET /register/{client_id} (RFC 7592 §2.1).
pub async fn read_registration(State(state): State<AppState>, Path(client_id): Path<String>, headers: HeaderMap) -> Response {
    match state.provider().read_registration(&client_id, bearer(&headers)).await {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => oauth_error_response(e, false),
    }
}

/// PUT /register/{client_id} (RFC 7592 §2.2).
pub async fn update_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    browser: Browser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let metadata = client_metadata(&headers, &body)?;
        state.provider().update_registration(&client_id, bearer(&headers), &metadata, &browser.origin(), state.now()).await
    }
    .await;
    match result {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => oauth_error_response(e, false),
    }
}

/// DELETE /register/{client_id} (RFC 7592 §2.3): 204.
pub async fn delete_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    browser: Browser,
    headers: HeaderMap,
) -> Response {
    match state.provider().delete_registration(&client_id, bearer(&headers), &browser.origin(), state.now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => oauth_error_response(e, false),
    }
}

/// A request an application sent that we refuse on a page: the reason is
/// the protocol's (for the application's developer), in English.
fn refused_request(detail: String) -> AppError {
    AppError::BadRequest(crate::i18n::Msg::new("error-oauth-refused").arg("detail", detail))
}
