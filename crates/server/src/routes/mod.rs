//! Routes. Browser pages in [`auth`] (first steps, sign-up, reset),
//! [`second_step`] (a sign-in in progress), [`security`] and [`account`] (a
//! signed-in user's pages), [`admin`]; the protocol in [`oidc`]; operations in [`ops`].

mod account;
mod admin;
mod approvals;
mod auth;
mod oidc;
mod ops;
mod second_step;
mod security;
#[cfg(test)]
pub(crate) use security::event_label as event_label_id;
mod setup;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use portcullis_core::AccountError;
use portcullis_core::rate_limit::LimitedAction;
use portcullis_core::sessions::ActiveSession;
use portcullis_core::sessions::SessionCheck;
use portcullis_core::sign_in::SessionUse;

use crate::error::{AppError, form_problem, retry_after, with_retry_after};
use crate::request::{Browser, see_other};
use crate::state::AppState;

pub use oidc::client_credentials;

/// The page a sign-up's emailed link opens.
const VERIFY_EMAIL_PAGE: &str = "/verify-email";
/// The page a reset's emailed link opens.
const RESET_PASSWORD_PAGE: &str = "/reset-password";

/// The page the setup link `serve` logs opens (no administrator yet).
const SETUP_PAGE: &str = "/setup";

/// The pages emailed links open, on the server at `origin` (no trailing slash).
pub fn link_pages(origin: &str) -> portcullis_core::accounts::LinkPages {
    portcullis_core::accounts::LinkPages {
        verify_email: format!("{origin}{VERIFY_EMAIL_PAGE}"),
        reset_password: format!("{origin}{RESET_PASSWORD_PAGE}"),
        setup: format!("{origin}{SETUP_PAGE}"),
    }
}

/// Pages and forms used by people in a browser (behind the CSRF guard).
pub fn browser_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(auth::login_page).merge(throttled_post(state, SIGN_IN_FORM, post(auth::login))))
        .route("/signup", get(auth::signup_page).merge(throttled_post(state, SIGN_UP_FORM, post(auth::signup))))
        .route(VERIFY_EMAIL_PAGE, get(auth::verify_email_page).post(auth::verify_email))
        .route(
            "/forgot-password",
            get(auth::forgot_password_page).merge(throttled_post(state, RESET_REQUEST_FORM, post(auth::forgot_password))),
        )
        .route(RESET_PASSWORD_PAGE, get(auth::reset_password_page).post(auth::reset_password))
        .route(SETUP_PAGE, get(auth::first_admin_page).merge(throttled_post(state, FIRST_ADMIN_FORM, post(auth::create_first_admin))))
        .route("/logout", post(auth::logout))
        .route("/logout/everywhere", post(auth::logout_everywhere))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route("/account/language", post(account::set_language))
        .route("/account/protect", get(account::protect_page))
        .route("/account/protect/later", post(account::protect_later))
        .route("/end-session", get(oidc::end_session).post(oidc::end_session_confirm))
        .route("/authorize/consent", post(oidc::authorize_consent))
        .route("/login/code", get(auth::email_code_page).merge(throttled_post(state, EMAIL_CODE_FORM, post(auth::send_email_code))))
        .route("/login/code/verify", throttled_post(state, EMAIL_CODE_FORM, post(auth::email_code_sign_in)))
        .route("/login/passkey", throttled_post(state, SIGN_IN_FORM, post(auth::passkey_sign_in)))
        .route("/login/passkey/options", throttled_post(state, (LimitedAction::SignIn, Refusal::Json), post(auth::passkey_options)))
        .merge(sign_in_in_progress_routes(state))
        .route("/account/security", get(security::security_page))
        .route("/account/security/totp", post(security::start_totp))
        .route("/account/security/totp/confirm", post(security::confirm_totp))
        .route("/account/security/webauthn", post(security::add_key))
        .route("/account/security/webauthn/options", post(security::key_options))
        .route("/account/security/push", post(security::start_push))
        .route("/authenticator", get(approvals::companion_page))
        .route("/account/security/phone", post(security::add_phone))
        .route("/account/security/phone/confirm", post(security::confirm_phone))
        .route("/account/security/recovery-codes", post(security::regenerate_codes))
        .route("/account/security/factors/rename", post(security::rename_factor))
        .route("/account/security/factors/remove", post(security::remove_factor))
        .route("/account/security/browsers/forget", post(security::forget_browser))
        .route("/account/security/sessions/end", post(security::end_session))
        .route("/account/security/apps/remove", post(security::remove_app_access))
        .route("/admin", get(admin::home))
        .route("/admin/users", get(admin::users).post(admin::user_action))
        .route("/admin/users/apps", get(admin::user_apps))
        .route("/admin/users/apps/remove", post(admin::remove_user_app))
        .route("/admin/clients", get(admin::clients))
        .route("/admin/clients/create", post(admin::create_client))
        .route("/admin/clients/policy", post(admin::client_policy))
        .route("/admin/clients/rotate-secret", post(admin::rotate_secret))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/mfa", get(admin::mfa_dashboard))
}

/// What a throttled request gets instead of its page.
#[derive(Clone, Copy)]
enum Refusal {
    /// The form it came from, with the error (429, `Retry-After`) and what
    /// was typed (the page the sign-in resumes, the address), so a retry
    /// goes on where it was.
    Form(&'static str, fn(&AppState, &Typed) -> minijinja::Value),
    /// JSON `{ "error": … }` for `static/webauthn.js`.
    Json,
    /// The error page.
    Page,
}

/// The first steps of a sign-in share the sign-in budget (`[rate_limit] sign_in_per_minute`).
const SIGN_IN_FORM: (LimitedAction, Refusal) = (LimitedAction::SignIn, Refusal::Form("login.html", auth::login_form));
const EMAIL_CODE_FORM: (LimitedAction, Refusal) = (LimitedAction::SignIn, Refusal::Form("login_code.html", auth::email_code_form));
const SIGN_UP_FORM: (LimitedAction, Refusal) = (LimitedAction::SignUp, Refusal::Form("signup.html", auth::signup_form));
const FIRST_ADMIN_FORM: (LimitedAction, Refusal) = (LimitedAction::FirstAdmin, Refusal::Form("first_admin.html", auth::first_admin_form));
const RESET_REQUEST_FORM: (LimitedAction, Refusal) =
    (LimitedAction::SendEmail, Refusal::Form("forgot_password.html", auth::forgot_password_form));

/// The fields of a refused form post, to show the form again as it was.
pub(super) struct Typed(Vec<(String, String)>);

impl Typed {
    /// Reads a form body (nothing, if it is not one or too large).
    async fn read(body: axum::body::Body) -> Self {
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await.unwrap_or_default();
        Self(url::form_urlencoded::parse(&bytes).into_owned().collect())
    }

    /// The value of field `name`, if it was sent.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `route` with each of its POSTs counted against the client address's
/// budget for the action, and refused over it: the one place a route's
/// per-address throttle is decided (handlers do not count).
fn throttled_post(state: &AppState, throttle: (LimitedAction, Refusal), route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.route_layer(axum::middleware::from_fn_with_state((state.clone(), throttle), throttle_posts))
}

/// The pages of a sign-in in progress; every POST among them is throttled
/// per client address like the sign-in form (`[rate_limit] sign_in_per_minute`).
fn sign_in_in_progress_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/login/verify", get(second_step::verify_page).post(second_step::verify))
        .route("/login/verify/methods", get(second_step::methods_page))
        .route("/login/verify/options", post(second_step::verify_options))
        .route("/login/verify/send", post(second_step::send_code))
        .route("/login/verify/push", get(approvals::request_state).post(approvals::send_request))
        .route("/login/enroll", get(second_step::enroll_page).post(second_step::enroll))
        .route("/login/enroll/totp", post(second_step::enroll_totp))
        .route("/login/enroll/webauthn", post(second_step::enroll_key))
        .route("/login/enroll/webauthn/options", post(second_step::enroll_key_options))
        .route("/login/enroll/phone", post(second_step::enroll_phone))
        .route("/login/enroll/phone/confirm", post(second_step::enroll_phone_confirm))
        .route_layer(axum::middleware::from_fn_with_state((state.clone(), (LimitedAction::SecondStep, Refusal::Page)), throttle_posts))
}

/// The companion app's files and its JSON calls. Outside the CSRF guard: the
/// calls carry no cookie and are signed by the phone's key instead. Pairing
/// and answering count against the address's second-step budget; listing,
/// which the app polls, against a budget of its own.
pub fn companion_routes(state: &AppState) -> Router<AppState> {
    let budget = || axum::middleware::from_fn_with_state((state.clone(), (LimitedAction::SecondStep, Refusal::Json)), throttle_posts);
    let polling = || axum::middleware::from_fn_with_state((state.clone(), (LimitedAction::CompanionPoll, Refusal::Json)), throttle_posts);
    Router::new()
        .route("/authenticator/app.js", get(approvals::companion_script))
        .route("/authenticator/sw.js", get(approvals::service_worker))
        .route("/authenticator/manifest.webmanifest", get(approvals::manifest))
        .route("/authenticator/icon.svg", get(approvals::icon))
        .route("/authenticator/requests", post(approvals::list_requests).route_layer(polling()))
        .route("/authenticator/pair", post(approvals::pair).route_layer(budget()))
        .route("/authenticator/answer", post(approvals::answer).route_layer(budget()))
}

/// Counts a POST against its client address's budget for the action, and
/// refuses it over the limit (429 with `Retry-After`); other methods pass.
async fn throttle_posts(
    State((state, (action, refusal))): State<(AppState, (LimitedAction, Refusal))>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(browser) = Browser::from_request_parts(&mut parts, &state).await;
    let retry_after_secs = match state.accounts().throttle(action, &browser.ip, state.now()).await {
        Ok(Ok(())) => return next.run(Request::from_parts(parts, body)).await,
        Ok(Err(wait)) => wait,
        Err(e) => return AppError::Account(e.into()).into_response(),
    };
    match refusal {
        Refusal::Form(template, typed) => {
            let ctx = typed(&state, &Typed::read(body).await);
            throttled(&browser, template, ctx, retry_after_secs)
        }
        Refusal::Json => second_step::challenge_json(Err(AppError::TooManyRequests { retry_after_secs })),
        Refusal::Page => AppError::TooManyRequests { retry_after_secs }.into_response(),
    }
}

/// OpenID Connect endpoints for clients (the authorization endpoint, which
/// other sites legitimately POST to and so sits outside the CSRF guard too,
/// is in [`oidc_pages`]). Browser-based clients (single-page apps with PKCE) may call discovery and
/// the keys from anywhere, and the token, userinfo and revocation endpoints
/// from the origin of one of their redirect URIs (CORS, [`cors`]).
pub fn oidc_routes(state: &AppState) -> Router<AppState> {
    // OPTIONS is routed (answered by the layer) so a preflight reaches it.
    let with_cors = |r: MethodRouter<AppState>, who| {
        r.options(no_content).route_layer(axum::middleware::from_fn_with_state((state.clone(), who), cors))
    };
    let open = |r| with_cors(r, Cors::Anyone);
    let clients = |r| with_cors(r, Cors::ClientOrigins);
    Router::new()
        .route("/.well-known/openid-configuration", open(get(oidc::discovery)))
        .route("/jwks.json", open(get(oidc::jwks)))
        .route("/token", clients(post(oidc::token)))
        .route("/userinfo", clients(get(oidc::userinfo).post(oidc::userinfo)))
        .route("/revoke", clients(post(oidc::revoke)))
        .route("/introspect", post(oidc::introspect))
        .route("/register", post(oidc::register))
        .route("/register/{client_id}", get(oidc::read_registration).put(oidc::update_registration).delete(oidc::delete_registration))
}

/// The OpenID Connect routes a person's browser is sent to: they answer
/// with pages (the sign-in, an error) or redirects, in the person's language.
pub fn oidc_pages() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/authorize/resume", get(oidc::authorize_resume))
}

/// A preflight without an `Origin` (no browser sends one): nothing to say.
async fn no_content() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

/// Which sites' scripts may read a route's answers.
#[derive(Debug, Clone, Copy)]
enum Cors {
    /// Any site (public, no credentials: discovery, keys).
    Anyone,
    /// The web origins of the registered redirect URIs.
    ClientOrigins,
}

/// CORS (Fetch standard): answers a preflight, and lets an allowed origin's
/// script read the answer (`Access-Control-Allow-Origin` echoing it, or `*`
/// for public routes). Never `Allow-Credentials`: these endpoints take
/// bearer tokens and client credentials, not cookies.
async fn cors(State((state, who)): State<(AppState, Cors)>, request: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let Some(origin) = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        let mut response = next.run(request).await;
        // The answer to a client origin differs by origin, so a cache must know it varies even without one.
        if matches!(who, Cors::ClientOrigins) {
            response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        }
        return response;
    };
    let allowed = match who {
        Cors::Anyone => Some(HeaderValue::from_static("*")),
        Cors::ClientOrigins => match state.provider().cors_origin_allowed(&origin, state.now()).await {
            Ok(true) => HeaderValue::from_str(&origin).ok(),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the CORS origins");
                None
            }
        },
    };
    let preflight = request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight { axum::http::StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allow) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate"));
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}

/// Liveness, readiness and static assets.
pub fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/static/portcullis.css", get(ops::stylesheet))
        .route("/static/form_post.js", get(ops::form_post_script))
        .route("/static/copy.js", get(ops::copy_script))
        .route("/static/errors.js", get(ops::errors_script))
        .route("/static/webauthn.js", get(ops::webauthn_script))
        .route("/static/push.js", get(ops::push_script))
}

/// Unknown paths.
pub async fn not_found() -> Response {
    AppError::NotFound.into_response()
}

/// The origin of a first sign-in step. The application is the one whose
/// authorization request `next` resumes (`/authorize/resume?request=…`), if
/// any, with its policy in force and what the request asks of the sign-in.
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
    let (client, acceptable_acr) = client.map_or((None, Vec::new()), |(c, acr)| (Some(c), acr));
    portcullis_core::audit::RequestOrigin {
        client_id: client.as_ref().map(|c| c.id.clone()),
        client_policy: client.map(|c| c.policy),
        acceptable_acr,
        ..browser.origin()
    }
}

/// A redirect to sign in, then come back to `here`.
fn to_login(here: &str) -> Response {
    see_other(&format!("/login?next={}", second_step::encode(here)))
}

/// The session for one of Portcullis's own pages at `here` (`using`:
/// [`SessionUse::OwnPages`], or [`SessionUse::FactorChanges`] for the
/// security page), or the detour that stands in for the page: sign in, or a
/// step-up when the session proves less than the account needs there (a
/// password-only session of an account with a factor, which a rule granted:
/// for some application, or from some network, country or role).
async fn own_page_session(
    state: &AppState,
    browser: &Browser,
    (here, using): (&str, SessionUse<'_>),
) -> Result<Result<ActiveSession, Response>, AppError> {
    let Some(session) = current_session(state, browser).await? else { return Ok(Err(to_login(here))) };
    match state.accounts().sessions().check_session(&session, using, false, &browser.origin(), state.now()).await? {
        SessionCheck::Satisfied | SessionCheck::Reauthenticate => Ok(Ok(session)),
        SessionCheck::StepUp(demand) => Ok(Err(second_step::step_up(state, browser, &session, here, (demand, None)).await?)),
        SessionCheck::Denied => Err(AppError::Account(AccountError::SignInDenied)),
    }
}

/// The signed-in session of this browser, if any.
async fn current_session(state: &AppState, browser: &Browser) -> Result<Option<ActiveSession>, AppError> {
    match &browser.session_token {
        Some(token) => Ok(state.accounts().sessions().session(token, state.now()).await?),
        None => Ok(None),
    }
}

/// Shows a domain error on the form it came from (next to its field), or as an
/// error page when it is not something the person can fix.
fn form_error(browser: &Browser, template: &str, ctx: minijinja::Value, err: AccountError) -> Response {
    let Some((status, field)) = form_problem(&err) else {
        return AppError::Account(err).into_response();
    };
    // The trace layer leaves every 503 to the handler (an overload refusal is
    // expected); a failed delivery shown on its form is logged here.
    if status.is_server_error() && !matches!(err, AccountError::Busy) {
        tracing::error!(error = %err, "request failed");
    }
    let message = crate::i18n::tr(crate::error::account_error_msg(&err));
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
    let message = crate::i18n::tr(crate::i18n::Msg::new("error-too-many-requests").arg("seconds", retry_after_secs));
    with_retry_after(
        browser.page(axum::http::StatusCode::TOO_MANY_REQUESTS, template, minijinja::context! { error => message, ..ctx }),
        Some(retry_after_secs),
    )
}
