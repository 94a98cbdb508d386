//! The second step of sign-in, inline enrollment, step-up, and the security
//! page where users manage their factors. Decisions are in `core::mfa`.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::accounts::{ActiveSession, SignInOutcome};
use portcullis_core::audit::RequestOrigin;
use portcullis_core::factors::{CodeDestination, EnrollmentPrompt, FactorKind, PublicKeyChallenge, SharedSecretPrompt};
use portcullis_core::mfa::SecondStepDone;
use portcullis_core::user::User;
use serde::Deserialize;

use super::{current_session, form_error};
use crate::error::AppError;
use crate::pages::qr_svg;
use crate::request::{Browser, HtmlForm, REMEMBER_COOKIE, SESSION_COOKIE, cookie_value, safe_next, see_other, set_cookie};
use crate::state::AppState;

/// Cookie holding the token of a sign-in waiting for its second step.
pub const SIGN_IN_COOKIE: &str = "portcullis_signin";
const DEFAULT_DEVICE_NAME: &str = "Authenticator app";

pub(super) fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where a first step (password, emailed code) goes next: a session, the second step, or enrollment.
pub fn after_first_step(state: &AppState, browser: &Browser, outcome: SignInOutcome, next: &str) -> Response {
    let (token, to) = match outcome {
        SignInOutcome::SignedIn(session) => {
            let mut response = see_other(next);
            response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, &session.token, None));
            return browser.finish(response);
        }
        SignInOutcome::SecondFactor { token } => (token, "/login/verify"),
        SignInOutcome::MustEnroll { token } => (token, "/login/enroll"),
    };
    let mut response = see_other(&format!("{to}?next={}", encode(next)));
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, &token, Some(portcullis_core::mfa::PENDING_SIGN_IN_SECONDS)));
    browser.finish(response)
}

/// Sends a signed-in user who lacks a second factor for this request to the step-up page.
pub async fn step_up(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    next: &str,
    (phishing_resistant, allowed_factors): (bool, &[String]),
) -> Result<Response, AppError> {
    let token = state.accounts().begin_step_up(session, (phishing_resistant, allowed_factors), state.now()).await?;
    // The second-step page offers what the user has (an emailed code needs no
    // enrollment) and sends to enrollment only when nothing is available.
    let mut response = see_other(&format!("/login/verify?next={}", encode(next)));
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, &token, Some(portcullis_core::mfa::PENDING_SIGN_IN_SECONDS)));
    Ok(browser.finish(response))
}

fn sign_in_token(browser_headers: &axum::http::HeaderMap) -> Result<String, AppError> {
    cookie_value(browser_headers, SIGN_IN_COOKIE).ok_or(AppError::Account(AccountError::SignInExpired))
}

/// Finishes a second step: session cookie (unless a step-up), sign-in cookie cleared.
fn signed_in(state: &AppState, browser: &Browser, done: &SecondStepDone, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Some(session) = &done.session {
        // A new session id at sign-in: whatever the browser had is replaced.
        headers.append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, &session.token, None));
    }
    headers.append(header::SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, "", Some(0)));
    if let Some(remember) = &done.remember_cookie {
        headers.append(
            header::SET_COOKIE,
            set_cookie(state, REMEMBER_COOKIE, remember, Some(state.accounts().settings().remember_browser_ttl)),
        );
    }
    browser.finish(response)
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    next: Option<String>,
    method: Option<String>,
}

fn remember_days(state: &AppState) -> i64 {
    state.accounts().settings().remember_browser_ttl / 86_400
}

fn method_label(key: &str) -> &'static str {
    match key {
        "webauthn" => "webauthn",
        "totp" => "totp",
        "email" => "email",
        "sms" => "sms",
        portcullis_core::mfa::PASSWORD_STEP => "password",
        _ => "recovery",
    }
}

/// A WebAuthn challenge as JSON for `static/webauthn.js`; failures as `{ "error": … }`.
pub(super) fn challenge_json(result: Result<PublicKeyChallenge, AppError>) -> Response {
    use axum::response::IntoResponse;
    let (status, body) = match result {
        Ok(c) => (StatusCode::OK, serde_json::json!({ "ceremony": c.ceremony, "options": c.options })),
        Err(AppError::Account(e)) if crate::error::form_problem(&e).is_some() => {
            let status = crate::error::form_problem(&e).map(|(s, _)| s).unwrap_or(StatusCode::BAD_REQUEST);
            (status, serde_json::json!({ "error": e.to_string() }))
        }
        Err(e) => {
            tracing::error!(error = %e, "WebAuthn options failed");
            (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": "Something went wrong on our side. Try again in a moment." }))
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// POST /login/verify/options: a WebAuthn challenge for the pending sign-in.
pub async fn verify_options(State(state): State<AppState>, browser: Browser, headers: axum::http::HeaderMap) -> Response {
    let result = async {
        let token = sign_in_token(&headers)?;
        let challenge = state.accounts().second_factor_challenge(&token, ("webauthn", None), &browser.ip, state.now()).await?;
        challenge.ok_or(AppError::Account(AccountError::KeyNotAccepted))
    }
    .await;
    challenge_json(result)
}

/// GET /login/verify
pub async fn verify_page(
    State(state): State<AppState>,
    browser: Browser,
    headers: axum::http::HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, AppError> {
    let token = sign_in_token(&headers)?;
    let next = safe_next(q.next.as_deref());
    match second_step_context(&state, &token, q.method.as_deref(), &next).await? {
        Some(step) => Ok(browser.page(StatusCode::OK, "second_step.html", step.ctx)),
        None => Ok(see_other(&format!("/login/enroll?next={}", encode(&next)))),
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    method: String,
    /// The phone number picked (a credential id), when there are several.
    phone: Option<String>,
    next: Option<String>,
}

/// POST /login/verify/send: sends a code ("Email me a code"), then asks for it.
pub async fn send_code(
    State(state): State<AppState>,
    browser: Browser,
    headers: axum::http::HeaderMap,
    HtmlForm(form): HtmlForm<SendForm>,
) -> Result<Response, AppError> {
    let token = sign_in_token(&headers)?;
    let now = state.now();
    let next = safe_next(form.next.as_deref());
    let phone = form.phone.as_deref().filter(|p| !p.is_empty());
    let result = state.accounts().second_factor_challenge(&token, (&form.method, phone), &browser.ip, now).await;
    let step = second_step_context(&state, &token, Some(&form.method), &next).await?.ok_or(AccountError::SignInExpired)?;
    let ctx = step.ctx;
    match result {
        Ok(_) => {
            let minutes = state.accounts().settings().otp.ttl / 60;
            let notice = if form.method == "sms" {
                let to = step.phones.iter().find(|p| phone.is_none_or(|id| p.id == id)).map(|p| p.masked.as_str()).unwrap_or("your phone");
                format!("We texted a code to {to}. It works for {minutes} minutes.")
            } else {
                format!("We sent a code to {}. It works for {minutes} minutes.", step.user.email)
            };
            Ok(browser.page(StatusCode::OK, "second_step.html", context! { sent => true, notice, ..ctx }))
        }
        Err(
            e @ (AccountError::CodeSentRecently { .. }
            | AccountError::TooManyCodes { .. }
            | AccountError::Delivery(_)
            | AccountError::SmsDelivery(_)),
        ) => Ok(form_error(&browser, "second_step.html", ctx, e)),
        Err(e) => Err(e.into()),
    }
}

/// The second-step page for one pending sign-in.
struct SecondStep {
    user: User,
    /// Phone numbers to pick from ("Text me a code").
    phones: Vec<CodeDestination>,
    ctx: minijinja::Value,
}

/// The second-step page's context for the pending sign-in behind `token`,
/// showing `method` if it is on offer, else the strongest; `None` when
/// nothing is on offer (the user must enroll).
async fn second_step_context(state: &AppState, token: &str, method: Option<&str>, next: &str) -> Result<Option<SecondStep>, AppError> {
    let (pending, user) = state.accounts().pending_sign_in(token, state.now()).await?;
    let factors = state.accounts().available_factors(&user, &pending).await?;
    let Some(first) = factors.first() else { return Ok(None) };
    let method: &str = method.filter(|m| factors.contains(m)).unwrap_or(first);
    let phones = if method == "sms" { state.accounts().code_destinations(&user, "sms").await? } else { Vec::new() };
    // "Try another method" cycles through the others, strongest first.
    let at = factors.iter().position(|f| *f == method).unwrap_or(0);
    let other = factors.get((at + 1) % factors.len()).copied().filter(|f| *f != method);
    let phone_choices: Vec<_> = phones.iter().map(|p| context! { id => &p.id, label => format!("{} ({})", p.name, p.masked) }).collect();
    let ctx = context! {
        method => method_label(method), other, next, next_encoded => encode(next), email => user.email.as_str(),
        remember_days => remember_days(state), phones => phone_choices,
    };
    Ok(Some(SecondStep { user, phones, ctx }))
}

#[derive(Deserialize)]
pub struct VerifyForm {
    method: String,
    #[serde(default)]
    code: String,
    /// WebAuthn: the ceremony answered, and the browser's answer (JSON).
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    /// The password step (a step-up of a session begun with an emailed code).
    #[serde(default)]
    password: String,
    next: Option<String>,
    /// The "Remember this browser" checkbox.
    remember: Option<String>,
}

/// POST /login/verify
pub async fn verify(
    State(state): State<AppState>,
    browser: Browser,
    headers: axum::http::HeaderMap,
    HtmlForm(form): HtmlForm<VerifyForm>,
) -> Result<Response, AppError> {
    let token = sign_in_token(&headers)?;
    let next = safe_next(form.next.as_deref());
    let response = match form.method.as_str() {
        "webauthn" => portcullis_core::factors::webauthn::assertion_response(&form.ceremony, &form.credential),
        portcullis_core::mfa::PASSWORD_STEP => form.password.clone(),
        _ => form.code.clone(),
    };
    let origin = super::sign_in_origin(&state, &browser, &next).await;
    match state.accounts().complete_second_step(&token, &form.method, &response, form.remember.is_some(), &origin, state.now()).await {
        Ok(done) => Ok(signed_in(&state, &browser, &done, see_other(&next))),
        Err(
            e @ (AccountError::InvalidCode
            | AccountError::InvalidPassword
            | AccountError::KeyNotAccepted
            | AccountError::ClonedAuthenticator { .. }
            | AccountError::Locked { .. }),
        ) => {
            let step = second_step_context(&state, &token, Some(&form.method), &next).await?.ok_or(AccountError::SignInExpired)?;
            Ok(form_error(&browser, "second_step.html", context! { sent => true, ..step.ctx }, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// The authenticator-app part of an enrollment prompt.
fn shared_secret(prompt: EnrollmentPrompt) -> Result<SharedSecretPrompt, AppError> {
    match prompt {
        EnrollmentPrompt::SharedSecret(p) => Ok(p),
        _ => Err(AppError::Internal("an authenticator app enrollment returned another kind of prompt".into())),
    }
}

fn setup_context(setup: &SharedSecretPrompt, name: &str, action: &str, next: Option<&str>, intro: Option<&str>) -> minijinja::Value {
    context! { qr => qr_svg(&setup.uri), secret => &setup.secret, credential_id => &setup.credential_id, name, action, next, intro }
}

const ENROLL_INTRO: &str = "Your account requires two-step verification. Set up an authenticator app to finish signing in.";

/// GET /login/enroll: inline enrollment during sign-in, then the original request continues.
pub async fn enroll_page(
    State(state): State<AppState>,
    browser: Browser,
    headers: axum::http::HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, AppError> {
    let token = sign_in_token(&headers)?;
    let now = state.now();
    let (_, user) = state.accounts().pending_sign_in(&token, now).await?;
    let next = safe_next(q.next.as_deref());
    let setup = shared_secret(state.accounts().start_enrollment(&user, FactorKind::Totp, DEFAULT_DEVICE_NAME, "", now).await?)?;
    Ok(browser.page(
        StatusCode::OK,
        "totp_setup.html",
        setup_context(&setup, DEFAULT_DEVICE_NAME, "/login/enroll", Some(&next), Some(ENROLL_INTRO)),
    ))
}

#[derive(Deserialize)]
pub struct SetupForm {
    credential_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// POST /login/enroll
pub async fn enroll(
    State(state): State<AppState>,
    browser: Browser,
    headers: axum::http::HeaderMap,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, AppError> {
    let token = sign_in_token(&headers)?;
    let now = state.now();
    let next = safe_next(form.next.as_deref());
    let (_, user) = state.accounts().pending_sign_in(&token, now).await?;
    let origin = super::sign_in_origin(&state, &browser, &next).await;
    let outcome = match state.accounts().name_factor(&user, &form.credential_id, &form.name).await {
        Ok(_) => state.accounts().complete_enrollment(&token, &form.credential_id, &form.code, &origin, now).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(done) => {
            let page = match &done.new_recovery_codes {
                Some(codes) => browser.page(
                    StatusCode::OK,
                    "recovery_codes.html",
                    context! { codes, continue_to => &next, notice => "Two-step verification is on." },
                ),
                None => see_other(&next),
            };
            Ok(signed_in(&state, &browser, &done, page))
        }
        Err(e @ (AccountError::InvalidCode | AccountError::InvalidName | AccountError::Locked { .. })) => {
            let setup = shared_secret(state.accounts().pending_enrollment(&user, FactorKind::Totp, &form.credential_id).await?)?;
            Ok(form_error(
                &browser,
                "totp_setup.html",
                setup_context(&setup, &form.name, "/login/enroll", Some(&next), Some(ENROLL_INTRO)),
                e,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The signed-in session; without one, a redirect to sign in and come back to the security page.
async fn require_session(state: &AppState, browser: &Browser) -> Result<ActiveSession, AppError> {
    current_session(state, browser).await?.ok_or(AppError::SignInRequired { next: "/account/security" })
}

async fn security_context(state: &AppState, session: &ActiveSession) -> Result<minijinja::Value, AppError> {
    let user = &session.user;
    let now = state.now();
    let factors: Vec<minijinja::Value> = state
        .accounts()
        .factors(user.id)
        .await?
        .iter()
        .map(|c| {
            context! {
                id => &c.id, name => &c.name, kind => c.kind.label(), authenticator => &c.authenticator,
                created => crate::pages::date(c.created_at), last_used => c.last_used_at.map(crate::pages::date).unwrap_or_default(),
                disabled => c.flagged_at.is_some(),
            }
        })
        .collect();
    let codes_left = state.accounts().recovery_codes_left(user.id).await?;
    let browsers: Vec<minijinja::Value> = state
        .accounts()
        .remembered_browsers(user.id, state.now())
        .await?
        .iter()
        .map(|b| context! { id => &b.id, agent => &b.user_agent, created => crate::pages::date(b.created_at), expires => crate::pages::date(b.expires_at) })
        .collect();
    let sessions: Vec<minijinja::Value> = state
        .accounts()
        .sessions(user.id, now)
        .await?
        .iter()
        .map(|s| {
            context! {
                id => &s.id, agent => if s.user_agent.is_empty() { "Unknown browser" } else { &s.user_agent }, ip => &s.ip,
                started => crate::pages::date(s.created_at), last_seen => crate::pages::date(s.last_seen_at), current => s.id == session.record.id,
            }
        })
        .collect();
    let events: Vec<minijinja::Value> = state
        .accounts()
        .recent_events(user.id)
        .await?
        .iter()
        .map(|e| context! { when => crate::pages::date_time(e.at), event => event_label(&e.kind), ip => &e.ip, agent => &e.user_agent })
        .collect();
    Ok(context! {
        signed_in => true, factors, codes_left, browsers, sessions, events, mfa_required => state.accounts().mfa_required(user),
        webauthn => state.accounts().webauthn_available(), totp => state.accounts().can_enroll(FactorKind::Totp),
        sms => state.accounts().can_enroll(FactorKind::Phone),
    })
}

/// Words for an audit event on the security page.
pub(super) fn event_label(kind: &str) -> &'static str {
    use portcullis_core::audit::AuditKind as K;
    match K::parse(kind) {
        Some(K::SignInSucceeded) => "Signed in",
        Some(K::SignInFailed) => "Failed sign-in attempt",
        Some(K::SignInDenied) => "Sign-in refused by policy",
        Some(K::AccountLocked) => "Account locked",
        Some(K::AccountUnlocked) => "Account unlocked",
        Some(K::PolicyDecision) => "Sign-in policy applied",
        Some(K::FactorAdded) => "Sign-in method added",
        Some(K::FactorRemoved) => "Sign-in method removed",
        Some(K::FactorRenamed) => "Sign-in method renamed",
        Some(K::AuthenticatorCloned) => "Security key disabled (possibly copied)",
        Some(K::RecoveryCodeUsed) => "Recovery code used",
        Some(K::RecoveryCodesRegenerated) => "New recovery codes generated",
        Some(K::RememberedBrowserCreated) => "Browser remembered",
        Some(K::RememberedBrowserRevoked) => "Remembered browser forgotten",
        Some(K::SessionRevoked) => "Session signed out",
        Some(K::PasswordChanged) => "Password changed",
        Some(K::MfaReset) => "Sign-in methods reset by an administrator",
        Some(K::MfaRequirementChanged) => "Two-step requirement changed by an administrator",
        Some(K::AdminChanged) => "Administrator role changed",
        Some(K::UserCreated) => "Account created",
        Some(K::UserDeleted) => "Account deleted",
        Some(K::ClientChanged) | None => "Other change",
    }
}

/// GET /account/security
pub async fn security_page(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    Ok(browser.page(StatusCode::OK, "security.html", security_context(&state, &session).await?))
}

/// POST /account/security/totp: begins setting up an app.
pub async fn start_totp(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    state.accounts().check_recent_sign_in(&session, state.now())?;
    let setup =
        shared_secret(state.accounts().start_enrollment(&session.user, FactorKind::Totp, DEFAULT_DEVICE_NAME, "", state.now()).await?)?;
    Ok(browser.page(
        StatusCode::OK,
        "totp_setup.html",
        setup_context(&setup, DEFAULT_DEVICE_NAME, "/account/security/totp/confirm", None, None),
    ))
}

/// POST /account/security/totp/confirm
pub async fn confirm_totp(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    let user = &session.user;
    let origin = browser.origin();
    let outcome = match state.accounts().name_factor(user, &form.credential_id, &form.name).await {
        Ok(_) => state.accounts().finish_enrollment(user, FactorKind::Totp, &form.credential_id, &form.code, &origin, state.now()).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Some(codes)) => Ok(browser.page(
            StatusCode::OK,
            "recovery_codes.html",
            context! { codes, continue_to => "/account/security", notice => "Two-step verification is on." },
        )),
        Ok(None) => {
            let ctx = security_context(&state, &session).await?;
            Ok(browser.page(StatusCode::OK, "security.html", context! { notice => "Authenticator app added.", ..ctx }))
        }
        Err(e @ (AccountError::InvalidCode | AccountError::InvalidName)) => {
            let setup = shared_secret(state.accounts().pending_enrollment(user, FactorKind::Totp, &form.credential_id).await?)?;
            Ok(form_error(&browser, "totp_setup.html", setup_context(&setup, &form.name, "/account/security/totp/confirm", None, None), e))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /account/security/recovery-codes
pub async fn regenerate_codes(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    state.accounts().check_recent_sign_in(&session, state.now())?;
    if !state.accounts().has_second_factor(session.user.id).await? {
        return Err(AppError::BadRequest("Set up two-step verification first: recovery codes stand in for a second factor.".into()));
    }
    let codes = state.accounts().regenerate_recovery_codes(&session.user, &browser.origin(), state.now()).await?;
    Ok(browser.page(
        StatusCode::OK,
        "recovery_codes.html",
        context! { codes, continue_to => "/account/security", notice => "New recovery codes: the old ones no longer work." },
    ))
}

#[derive(Deserialize)]
pub struct FactorForm {
    id: String,
    #[serde(default)]
    name: String,
}

/// POST /account/security/factors/rename
pub async fn rename_factor(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Change::Other, |s, user, origin| {
        Box::pin(async move { s.accounts().rename_factor(user, &form.id, &form.name, origin, s.now()).await.map(|()| "Renamed.") })
    })
    .await
}

/// POST /account/security/browsers/forget
pub async fn forget_browser(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Change::Other, |s, user, origin| {
        Box::pin(async move {
            s.accounts()
                .forget_browser(user, &form.id, origin, s.now())
                .await
                .map(|()| "That browser will be asked for a second factor again.")
        })
    })
    .await
}

/// POST /account/security/factors/remove
pub async fn remove_factor(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Change::HowTheAccountSignsIn, |s, user, origin| {
        Box::pin(async move { s.accounts().remove_factor(user, &form.id, origin, s.now()).await.map(|()| "Removed.") })
    })
    .await
}

/// POST /account/security/sessions/end: signs one of the user's sessions out.
pub async fn end_session(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Change::Other, |s, user, origin| {
        Box::pin(async move { s.accounts().end_session(user, &form.id, origin, s.now()).await.map(|()| "That session was signed out.") })
    })
    .await
}

type Action<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<&'static str, AccountError>> + Send + 'a>>;

/// What a security-page action changes: taking away a factor needs a recent sign-in, as adding one does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    HowTheAccountSignsIn,
    Other,
}

/// Runs a management action and shows the security page with its outcome.
async fn manage(
    state: &AppState,
    browser: &Browser,
    change: Change,
    action: impl for<'a> FnOnce(&'a AppState, &'a User, &'a RequestOrigin) -> Action<'a>,
) -> Result<Response, AppError> {
    let session = require_session(state, browser).await?;
    if change == Change::HowTheAccountSignsIn {
        state.accounts().check_recent_sign_in(&session, state.now())?;
    }
    let origin = browser.origin();
    let result = action(state, &session.user, &origin).await;
    let ctx = security_context(state, &session).await?;
    match result {
        Ok(notice) => Ok(browser.page(StatusCode::OK, "security.html", context! { notice, ..ctx })),
        Err(e) => Ok(form_error(browser, "security.html", ctx, e)),
    }
}

#[derive(Deserialize)]
pub struct KeyForm {
    /// `security_key` or `passkey`.
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

fn webauthn_kind(kind: &str) -> Result<FactorKind, AppError> {
    match FactorKind::parse(kind) {
        Some(k @ (FactorKind::SecurityKey | FactorKind::Passkey)) => Ok(k),
        _ => Err(AppError::BadRequest("Choose a security key or a passkey.".into())),
    }
}

/// POST /account/security/webauthn/options: begins registering a security key or passkey.
pub async fn key_options(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<KeyForm>) -> Response {
    let result = async {
        let Some(session) = current_session(&state, &browser).await? else {
            return Err(AppError::Account(AccountError::SignInExpired));
        };
        state.accounts().check_recent_sign_in(&session, state.now())?;
        match state.accounts().start_enrollment(&session.user, webauthn_kind(&form.kind)?, &form.name, "", state.now()).await? {
            EnrollmentPrompt::PublicKey(challenge) => Ok(challenge),
            _ => Err(AppError::Internal("a WebAuthn enrollment returned another kind of prompt".into())),
        }
    }
    .await;
    challenge_json(result)
}

/// POST /account/security/webauthn: finishes registering a security key or passkey.
pub async fn add_key(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<KeyForm>) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    let user = &session.user;
    let kind = webauthn_kind(&form.kind)?;
    match state.accounts().finish_enrollment(user, kind, &form.ceremony, &form.credential, &browser.origin(), state.now()).await {
        Ok(Some(codes)) => Ok(browser.page(
            StatusCode::OK,
            "recovery_codes.html",
            context! { codes, continue_to => "/account/security", notice => "Two-step verification is on." },
        )),
        Ok(None) => {
            let notice = if kind == FactorKind::Passkey { "Passkey created." } else { "Security key added." };
            let ctx = security_context(&state, &session).await?;
            Ok(browser.page(StatusCode::OK, "security.html", context! { notice, ..ctx }))
        }
        Err(e @ (AccountError::KeyNotAccepted | AccountError::NotFound)) => {
            let e = if matches!(e, AccountError::NotFound) { AccountError::KeyNotAccepted } else { e };
            Ok(form_error(&browser, "security.html", security_context(&state, &session).await?, e))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
}

#[derive(Deserialize)]
pub struct PhoneConfirmForm {
    credential_id: String,
    #[serde(default)]
    code: String,
}

const DEFAULT_PHONE_NAME: &str = "Phone";

fn phone_context(credential_id: &str, destination: &str) -> minijinja::Value {
    context! { credential_id, destination }
}

/// POST /account/security/phone: "Add a phone number" sends a code to it.
pub async fn add_phone(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<PhoneForm>) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    state.accounts().check_recent_sign_in(&session, state.now())?;
    let user = &session.user;
    match state.accounts().start_enrollment(user, FactorKind::Phone, DEFAULT_PHONE_NAME, &form.phone, state.now()).await {
        Ok(EnrollmentPrompt::CodeSent { credential_id, destination }) => {
            Ok(browser.page(StatusCode::OK, "phone_confirm.html", phone_context(&credential_id, &destination)))
        }
        Ok(_) => Err(AppError::Internal("a phone enrollment returned another kind of prompt".into())),
        Err(
            e @ (AccountError::InvalidPhoneNumber(_)
            | AccountError::SmsDelivery(_)
            | AccountError::CodeSentRecently { .. }
            | AccountError::TooManyCodes { .. }),
        ) => {
            let ctx = security_context(&state, &session).await?;
            Ok(form_error(&browser, "security.html", context! { phone => &form.phone, ..ctx }, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /account/security/phone/confirm: the texted code confirms the number.
pub async fn confirm_phone(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<PhoneConfirmForm>,
) -> Result<Response, AppError> {
    let session = require_session(&state, &browser).await?;
    let user = &session.user;
    match state.accounts().finish_enrollment(user, FactorKind::Phone, &form.credential_id, &form.code, &browser.origin(), state.now()).await
    {
        Ok(Some(codes)) => Ok(browser.page(
            StatusCode::OK,
            "recovery_codes.html",
            context! { codes, continue_to => "/account/security", notice => "Two-step verification is on." },
        )),
        Ok(None) => {
            let ctx = security_context(&state, &session).await?;
            Ok(browser.page(StatusCode::OK, "security.html", context! { notice => "Phone number added.", ..ctx }))
        }
        Err(e @ AccountError::InvalidCode) => {
            let destination = match state.accounts().pending_enrollment(user, FactorKind::Phone, &form.credential_id).await? {
                EnrollmentPrompt::CodeSent { destination, .. } => destination,
                _ => String::new(),
            };
            Ok(form_error(&browser, "phone_confirm.html", phone_context(&form.credential_id, &destination), e))
        }
        Err(e) => Err(e.into()),
    }
}
