//! Routes. Browser pages in [`auth`] and [`account`]; operations in [`ops`].

mod account;
mod admin;
mod auth;
mod mfa;
mod oidc;
mod ops;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::AccountError;
use portcullis_core::accounts::ActiveSession;

use crate::error::{AppError, form_problem, retry_after, with_retry_after};
use crate::request::Browser;
use crate::state::AppState;

/// Pages and forms used by people in a browser (behind the CSRF guard).
pub fn browser_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/verify-email", get(auth::verify_email_page).post(auth::verify_email))
        .route("/forgot-password", get(auth::forgot_password_page).post(auth::forgot_password))
        .route("/reset-password", get(auth::reset_password_page).post(auth::reset_password))
        .route("/logout", post(auth::logout))
        .route("/logout/everywhere", post(auth::logout_everywhere))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route("/end-session", get(oidc::end_session).post(oidc::end_session_confirm))
        .route("/login/verify", get(mfa::verify_page).post(mfa::verify))
        .route("/login/verify/options", post(mfa::verify_options))
        .route("/login/verify/send", post(mfa::send_code))
        .route("/login/code", get(auth::email_code_page).post(auth::send_email_code))
        .route("/login/code/verify", post(auth::email_code_sign_in))
        .route("/login/passkey", post(auth::passkey_sign_in))
        .route("/login/passkey/options", post(auth::passkey_options))
        .route("/account/security/webauthn", post(mfa::add_key))
        .route("/account/security/phone", post(mfa::add_phone))
        .route("/account/security/phone/confirm", post(mfa::confirm_phone))
        .route("/account/security/webauthn/options", post(mfa::key_options))
        .route("/login/enroll", get(mfa::enroll_page).post(mfa::enroll))
        .route("/account/security", get(mfa::security_page))
        .route("/account/security/totp", post(mfa::start_totp))
        .route("/account/security/totp/confirm", post(mfa::confirm_totp))
        .route("/account/security/recovery-codes", post(mfa::regenerate_codes))
        .route("/account/security/factors/rename", post(mfa::rename_factor))
        .route("/account/security/factors/remove", post(mfa::remove_factor))
        .route("/account/security/browsers/forget", post(mfa::forget_browser))
        .route("/account/security/sessions/end", post(mfa::end_session))
        .route("/admin", get(admin::home))
        .route("/admin/users", get(admin::users).post(admin::user_action))
        .route("/admin/clients", get(admin::clients))
        .route("/admin/clients/create", post(admin::create_client))
        .route("/admin/clients/policy", post(admin::client_policy))
        .route("/admin/clients/rotate-secret", post(admin::rotate_secret))
        .route("/admin/audit", get(admin::audit))
}

/// OpenID Connect endpoints for clients and the authorization endpoint (which
/// other sites legitimately POST to, so it sits outside the CSRF guard).
pub fn oidc_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/jwks.json", get(oidc::jwks))
        .route("/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/authorize/resume", get(oidc::authorize_resume))
        .route("/token", post(oidc::token))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/revoke", post(oidc::revoke))
        .route("/introspect", post(oidc::introspect))
}

/// Liveness, readiness and static assets.
pub fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/static/portcullis.css", get(ops::stylesheet))
        .route("/static/form_post.js", get(ops::form_post_script))
        .route("/static/copy.js", get(ops::copy_script))
        .route("/static/webauthn.js", get(ops::webauthn_script))
}

/// Unknown paths.
pub async fn not_found() -> Response {
    AppError::NotFound.into_response()
}

/// The origin of a sign-in step. The application is the one whose
/// authorization request `next` resumes (`/authorize/resume?request=…`), if
/// any, with its policy in force.
async fn sign_in_origin(state: &AppState, browser: &Browser, next: &str) -> portcullis_core::audit::RequestOrigin {
    let request = next
        .strip_prefix("/authorize/resume?")
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "request").map(|(_, v)| v.into_owned()));
    let client = match request {
        Some(id) => state.provider().pending_client(&id, state.now()).await,
        None => Ok(None),
    };
    let client = client.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not read the application of a sign-in");
        None
    });
    portcullis_core::audit::RequestOrigin {
        client_id: client.as_ref().map(|c| c.id.clone()),
        client_policy: client.map(|c| c.policy),
        ..browser.origin()
    }
}

/// The signed-in session of this browser, if any.
async fn current_session(state: &AppState, browser: &Browser) -> Result<Option<ActiveSession>, AppError> {
    match &browser.session_token {
        Some(token) => Ok(state.accounts().session(token, state.now()).await?),
        None => Ok(None),
    }
}

/// Shows a domain error on the form it came from (next to its field), or as an
/// error page when it is not something the person can fix.
fn form_error(browser: &Browser, template: &str, ctx: minijinja::Value, err: AccountError) -> Response {
    let Some((status, field)) = form_problem(&err) else {
        return AppError::Account(err).into_response();
    };
    let message = err.to_string();
    let ctx = if field.is_empty() {
        minijinja::context! { error => message, ..ctx }
    } else {
        let errors = std::collections::BTreeMap::from([(field, message)]);
        minijinja::context! { errors => errors, ..ctx }
    };
    with_retry_after(browser.page(status, template, ctx), retry_after(&err))
}

/// Shows a "too many requests" error on a form, with `Retry-After`.
fn throttled(browser: &Browser, template: &str, ctx: minijinja::Value, retry_after_secs: i64) -> Response {
    let message = AppError::TooManyRequests { retry_after_secs }.to_string();
    with_retry_after(
        browser.page(axum::http::StatusCode::TOO_MANY_REQUESTS, template, minijinja::context! { error => message, ..ctx }),
        Some(retry_after_secs),
    )
}
