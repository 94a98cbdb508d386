//! Sign-up, email verification, sign-in, sign-out and password reset pages.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::account_store::LinkPurpose;
use portcullis_core::registration::SignUpForm;
use portcullis_core::sign_in::SignInOutcome;
use serde::Deserialize;

use super::{Typed, current_session, form_error};
use crate::error::{AppError, account_error_msg};
use crate::i18n::{Msg, tr};
use crate::request::{Browser, HtmlForm, SESSION_COOKIE, safe_next, see_other, set_cookie};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// Set when an application asked for a fresh sign-in (`prompt=login`, `max_age`).
    reauth: Option<String>,
    /// Email suggested by the application (`login_hint`).
    login_hint: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    confirm: String,
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
    confirm: String,
}

/// A page that only says something: title and link text are message ids.
fn message(browser: &Browser, title: &'static str, text: Msg, link: Option<(&str, &'static str)>) -> Response {
    let ctx = context! { title => tr(title), text => tr(text), link_href => link.map(|l| l.0), link_text => link.map(|l| tr(l.1)) };
    browser.page(StatusCode::OK, "message.html", ctx)
}

/// What the sign-in page offers besides the password.
fn login_flags(state: &AppState, next: &str) -> minijinja::Value {
    let next_encoded = super::second_step::encode(next);
    context! { webauthn => state.accounts().webauthn_available(), email_code => state.accounts().sign_in().email_sign_in_enabled(), next_encoded }
}

/// GET /login
pub async fn login_page(State(state): State<AppState>, browser: Browser, Query(q): Query<NextQuery>) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    // An application's re-authentication (`reauth=1`) never uses the session: no read for it.
    let session = match q.reauth.as_deref() {
        None | Some("security" | "admin") => current_session(&state, &browser).await?,
        Some(_) => None,
    };
    let (notice, signed_in_as) = match (q.reauth.as_deref(), session) {
        (None, Some(_)) => return Ok(see_other(&next)),
        (None, None) => (None, None),
        // The security page sends a session too old to change factors (`Credentials::check_factor_change`).
        (Some("security"), session) => {
            (Some(tr(account_error_msg(&AccountError::ReauthenticationRequired))), session.map(|s| s.user.email.as_str().to_owned()))
        }
        // The admin console does the same before a change.
        (Some("admin"), session) => (Some(tr("notice-reauth-admin")), session.map(|s| s.user.email.as_str().to_owned())),
        (Some(_), _) => (Some(tr("notice-reauth-application")), None),
    };
    let email = q.login_hint.or(signed_in_as).unwrap_or_default();
    let flags = login_flags(&state, &next);
    // Signing in again for a change needs the password (or a passkey): a
    // session an emailed code opened is never recent, so it is not offered.
    let flags = match q.reauth.as_deref() {
        Some("security" | "admin") => context! { email_code => false, ..flags },
        _ => flags,
    };
    Ok(browser.page(StatusCode::OK, "login.html", context! { email, notice, next => &next, ..flags }))
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    next: Option<String>,
}

/// POST /login/passkey/options: a challenge any passkey of this site may answer.
pub async fn passkey_options(State(state): State<AppState>) -> Response {
    super::second_step::challenge_json(state.accounts().sign_in().passkey_challenge(state.now()).await.map_err(AppError::from))
}

/// POST /login/passkey: signs in with a user-verified passkey, no password.
pub async fn passkey_sign_in(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<PasskeyForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let ctx = context! { next => &next, ..login_flags(&state, &next) };
    let now = state.now();
    let origin = super::sign_in_origin(&state, &browser, &next).await;
    let answer = (form.ceremony.as_str(), form.credential.as_str());
    match state.accounts().sign_in().with_passkey(answer, browser.remembered.as_deref(), &origin, now).await {
        Ok(outcome) => first_step_done(&state, &browser, outcome, &next).await,
        Err(e) => Ok(form_error(&browser, "login.html", ctx, e)),
    }
}

/// POST /login
pub async fn login(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<LoginForm>) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let ctx = context! { next => &next, email => &form.email, ..login_flags(&state, &next) };
    let now = state.now();
    let origin = super::sign_in_origin(&state, &browser, &next).await;
    match state.accounts().sign_in().with_password(&form.email, &form.password, browser.remembered.as_deref(), &origin, now).await {
        Ok(outcome) => first_step_done(&state, &browser, outcome, &next).await,
        Err(e) => Ok(form_error(&browser, "login.html", ctx, e)),
    }
}

/// After a first step: the browser's old session ends (a new session id at
/// every sign-in, so no fixation), then a session, the second step or enrollment.
async fn first_step_done(state: &AppState, browser: &Browser, outcome: SignInOutcome, next: &str) -> Result<Response, AppError> {
    if let Some(old) = &browser.session_token {
        state.accounts().sessions().sign_out(old).await?;
    }
    Ok(super::second_step::after_first_step(state, browser, outcome, next))
}

#[derive(Deserialize)]
pub struct EmailCodeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

fn email_code_context(next: &str, email: &str) -> minijinja::Value {
    context! { next, next_encoded => super::second_step::encode(next), email }
}

/// The sign-in form again with what was typed (a refused post: throttled).
pub(super) fn login_form(state: &AppState, typed: &Typed) -> minijinja::Value {
    let next = safe_next(typed.get("next"));
    context! { email => typed.get("email"), next => &next, ..login_flags(state, &next) }
}

/// The emailed-code form again with what was typed: the address, and the
/// code field if the post was a code.
pub(super) fn email_code_form(_: &AppState, typed: &Typed) -> minijinja::Value {
    let next = safe_next(typed.get("next"));
    context! { sent => typed.get("code").is_some(), ..email_code_context(&next, typed.get("email").unwrap_or_default().trim()) }
}

/// The sign-up form again with the address and name typed (never the password).
pub(super) fn signup_form(_: &AppState, typed: &Typed) -> minijinja::Value {
    context! { email => typed.get("email"), name => typed.get("name") }
}

/// The reset request form again with the address typed.
pub(super) fn forgot_password_form(_: &AppState, typed: &Typed) -> minijinja::Value {
    context! { email => typed.get("email") }
}

/// GET /login/code: sign-in by emailed code, when the operator allows it.
pub async fn email_code_page(State(state): State<AppState>, browser: Browser, Query(q): Query<NextQuery>) -> Result<Response, AppError> {
    if !state.accounts().sign_in().email_sign_in_enabled() {
        return Err(AppError::NotFound);
    }
    let ctx = email_code_context(&safe_next(q.next.as_deref()), q.login_hint.as_deref().unwrap_or_default());
    Ok(browser.page(StatusCode::OK, "login_code.html", ctx))
}

/// POST /login/code: sends a code if the address has an account; the page looks the same either way.
pub async fn send_email_code(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<EmailCodeForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim();
    let ctx = email_code_context(&next, email);
    let now = state.now();
    match state.accounts().sign_in().send_email_code(email, &browser.ip, now).await {
        Ok(()) => {
            let minutes = state.accounts().settings().otp.ttl / 60;
            let notice = tr(Msg::new("notice-email-code-sent").arg("email", email).arg("minutes", minutes));
            Ok(browser.page(StatusCode::OK, "login_code.html", context! { sent => true, notice, ..ctx }))
        }
        Err(AccountError::NotFound) => Err(AppError::NotFound),
        Err(e) => Ok(form_error(&browser, "login_code.html", ctx, e)),
    }
}

/// POST /login/code/verify: signs in with the emailed code (then the second step, if the account has one).
pub async fn email_code_sign_in(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<EmailCodeForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let ctx = context! { sent => true, ..email_code_context(&next, form.email.trim()) };
    let now = state.now();
    let origin = super::sign_in_origin(&state, &browser, &next).await;
    match state.accounts().sign_in().with_email_code(&form.email, &form.code, browser.remembered.as_deref(), &origin, now).await {
        Ok(outcome) => first_step_done(&state, &browser, outcome, &next).await,
        Err(AccountError::NotFound) => Err(AppError::NotFound),
        Err(e) => Ok(form_error(&browser, "login_code.html", ctx, e)),
    }
}

/// GET /signup
pub async fn signup_page(browser: Browser) -> Response {
    browser.page(StatusCode::OK, "signup.html", context! {})
}

/// POST /signup
pub async fn signup(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<SignupForm>) -> Result<Response, AppError> {
    let ctx = context! { email => &form.email, name => &form.name };
    let now = state.now();
    let attempt = SignUpForm {
        email: &form.email,
        name: &form.name,
        password: &form.password,
        confirm: &form.confirm,
        language: crate::i18n::current(),
    };
    match state.accounts().registration().sign_up(attempt, now).await {
        Ok(()) => Ok(message(&browser, "check-email-title", Msg::new("notice-sign-up-sent").arg("email", form.email.trim()), None)),
        Err(e) => Ok(form_error(&browser, "signup.html", ctx, e)),
    }
}

/// GET /verify-email?token=…: shows a button rather than acting, so a mail
/// scanner that prefetches links cannot use the link up.
pub async fn verify_email_page(State(state): State<AppState>, browser: Browser, Query(q): Query<TokenQuery>) -> Result<Response, AppError> {
    state.accounts().registration().check_link(&q.token, LinkPurpose::VerifyEmail, state.now()).await?;
    Ok(browser.page(StatusCode::OK, "verify_email.html", context! { token => q.token }))
}

/// POST /verify-email
pub async fn verify_email(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<TokenQuery>,
) -> Result<Response, AppError> {
    state.accounts().registration().verify_email(&form.token, state.now()).await?;
    Ok(message(&browser, "email-confirmed-title", Msg::new("notice-email-confirmed"), Some(("/login", "sign-in-button"))))
}

/// GET /forgot-password
pub async fn forgot_password_page(browser: Browser) -> Response {
    browser.page(StatusCode::OK, "forgot_password.html", context! {})
}

/// POST /forgot-password
pub async fn forgot_password(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<EmailForm>,
) -> Result<Response, AppError> {
    let ctx = context! { email => &form.email };
    let now = state.now();
    match state.accounts().registration().request_password_reset(&form.email, now).await {
        Ok(()) => Ok(message(&browser, "check-email-title", Msg::new("notice-reset-sent").arg("email", form.email.trim()), None)),
        Err(e) => Ok(form_error(&browser, "forgot_password.html", ctx, e)),
    }
}

/// GET /reset-password?token=…
pub async fn reset_password_page(
    State(state): State<AppState>,
    browser: Browser,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    state.accounts().registration().check_link(&q.token, LinkPurpose::ResetPassword, state.now()).await?;
    Ok(browser.page(StatusCode::OK, "reset_password.html", context! { token => q.token }))
}

/// POST /reset-password
pub async fn reset_password(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ResetForm>,
) -> Result<Response, AppError> {
    match state.accounts().registration().reset_password(&form.token, (&form.password, &form.confirm), &browser.origin(), state.now()).await
    {
        Ok(()) => {
            Ok(message(&browser, "password-changed-title", Msg::new("notice-password-reset-done"), Some(("/login", "sign-in-button"))))
        }
        Err(AccountError::InvalidLink) => Err(AccountError::InvalidLink.into()),
        Err(e) => Ok(form_error(&browser, "reset_password.html", context! { token => &form.token }, e)),
    }
}

/// Where the first administrator goes once a second factor is set up.
const AFTER_FIRST_ADMIN: &str = "/admin";

#[derive(Deserialize)]
pub struct FirstAdminForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// GET /setup?token=…: the first administrator's form, while the setup link
/// works (showing it spends nothing: a link previewer may open it).
pub async fn first_admin_page(State(state): State<AppState>, browser: Browser, Query(q): Query<TokenQuery>) -> Result<Response, AppError> {
    state.accounts().first_run().check_setup_link(&q.token, state.now()).await?;
    Ok(browser.page(StatusCode::OK, "first_admin.html", context! { token => q.token }))
}

/// POST /setup: creates the first administrator, whose sign-in then sets up a
/// second factor before it reaches the console.
pub async fn create_first_admin(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FirstAdminForm>,
) -> Result<Response, AppError> {
    let ctx = context! { token => &form.token, email => &form.email, name => &form.name };
    let attempt = SignUpForm {
        email: &form.email,
        name: &form.name,
        password: &form.password,
        confirm: &form.confirm,
        language: crate::i18n::current(),
    };
    let origin = super::sign_in_origin(&state, &browser, AFTER_FIRST_ADMIN).await;
    match state.accounts().first_run().create_first_admin(&form.token, attempt, &origin, state.now()).await {
        Ok(outcome) => first_step_done(&state, &browser, outcome, AFTER_FIRST_ADMIN).await,
        Err(AccountError::SetupLinkUnusable) => Err(AccountError::SetupLinkUnusable.into()),
        Err(e) => Ok(form_error(&browser, "first_admin.html", ctx, e)),
    }
}

/// The first administrator's form again with what was typed (never the password).
pub(super) fn first_admin_form(_: &AppState, typed: &Typed) -> minijinja::Value {
    context! { token => typed.get("token"), email => typed.get("email"), name => typed.get("name") }
}

fn signed_out(state: &AppState, browser: &Browser) -> Response {
    let mut response = see_other("/login");
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, "", Some(0)));
    // The user's language goes with the user: the next person at this browser gets their own.
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, crate::i18n::LANGUAGE_COOKIE, "", Some(0)));
    browser.finish(response)
}

/// POST /logout
pub async fn logout(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    if let Some(token) = &browser.session_token {
        state.accounts().sessions().sign_out(token).await?;
    }
    Ok(signed_out(&state, &browser))
}

/// POST /logout/everywhere: every session, remembered browser and application
/// grant of the user ends (from a session that proves what the account needs).
pub async fn logout_everywhere(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    if browser.session_token.is_none() {
        return Ok(signed_out(&state, &browser));
    }
    let session = match super::own_page_session(&state, &browser, ("/account", portcullis_core::sign_in::SessionUse::OwnPages)).await? {
        Ok(session) => session,
        Err(detour) => return Ok(detour),
    };
    state.accounts().sessions().sign_out_everywhere(&session.user, &browser.origin(), state.now()).await?;
    Ok(signed_out(&state, &browser))
}
