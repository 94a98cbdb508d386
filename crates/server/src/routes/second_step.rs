//! The pages of a sign-in in progress (the `portcullis_signin` cookie): the
//! second step, "Try another method", inline enrollment, and the step-up of
//! a signed-in session. Each route asks the sign-in machine in
//! `core::sign_in` for its one transition; nothing here decides what a
//! pending sign-in may do.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::factors::{FactorKey, FactorKind, PublicKeyChallenge};
use portcullis_core::methods::{Answer, CodeField, StepFacts};
use portcullis_core::sessions::ActiveSession;
use portcullis_core::sign_in::SignInOutcome;
use portcullis_core::sign_in::{Demand, PENDING_SIGN_IN_SECONDS, SecondStepDone, SecondStepView, Step, StepOutcome};
use serde::Deserialize;

use super::form_error;
use super::setup::{
    DEFAULT_PHONE_NAME, KeyForm, PhoneForm, SetupForm, code_sent, default_device_name, key_refusal, phone_context, phone_form_problem,
    public_key, setup_context, shared_secret, webauthn_kind,
};
use crate::error::{AppError, account_error_msg};
use crate::i18n::{Msg, tr};
use crate::request::{Browser, HtmlForm, REMEMBER_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE, cookie_value, safe_next, see_other, set_cookie};
use crate::state::AppState;

pub(super) fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The language cookie a sign-in sets: the user's choice, brought to the
/// browser it happens in; none for a user without one, so a choice left in a
/// shared browser by someone else does not carry over (nor into a sign-up).
pub(super) fn language_cookie(state: &AppState, language: Option<crate::i18n::Language>) -> axum::http::HeaderValue {
    match language {
        Some(l) => set_cookie(state, crate::i18n::LANGUAGE_COOKIE, l.code(), Some(crate::request::DEVICE_COOKIE_SECONDS)),
        None => set_cookie(state, crate::i18n::LANGUAGE_COOKIE, "", Some(0)),
    }
}

/// Redirects to a page of the pending sign-in behind `token`, setting its cookie.
fn to_pending(
    state: &AppState,
    browser: &Browser,
    (token, language): (&str, Option<crate::i18n::Language>),
    page: &str,
    next: &str,
) -> Response {
    let mut response = see_other(&format!("{page}?next={}", encode(next)));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, token, Some(PENDING_SIGN_IN_SECONDS)));
    response.headers_mut().append(header::SET_COOKIE, language_cookie(state, language));
    browser.finish(response)
}

/// Where a first step (password, emailed code, passkey) goes next: a session, the second step, or enrollment.
pub fn after_first_step(state: &AppState, browser: &Browser, outcome: SignInOutcome, next: &str) -> Response {
    match outcome {
        SignInOutcome::SignedIn(session) => {
            let page = match (session.change_password, session.suggest_enrollment) {
                (false, true) => format!("/account/protect?next={}", encode(next)),
                (breached, _) => change_password_first(breached, next),
            };
            let mut response = see_other(&page);
            response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, &session.token, None));
            response.headers_mut().append(header::SET_COOKIE, language_cookie(state, session.language));
            browser.finish(response)
        }
        SignInOutcome::SecondFactor { token, language } => to_pending(state, browser, (&token, language), "/login/verify", next),
        SignInOutcome::MustEnroll { token, language } => to_pending(state, browser, (&token, language), "/login/enroll", next),
    }
}

/// Where a finished sign-in goes: `next`, or first the account page asking
/// for a new password when the password is known from breaches (it offers to
/// go on to `next` without one: asked, not locked out).
fn change_password_first(breached: bool, next: &str) -> String {
    match breached {
        true => format!("/account?breached=1&next={}", encode(next)),
        false => next.to_owned(),
    }
}

/// Sends a signed-in user whose session proves less than `demand` to a step-up toward it.
pub async fn step_up(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    next: &str,
    (demand, client_id): (Demand, Option<&str>),
) -> Result<Response, AppError> {
    match state.accounts().sign_in().begin_step_up(session, demand, client_id, state.now()).await {
        Ok(outcome) => Ok(after_first_step(state, browser, outcome, next)),
        // Only a first factor would do, and the session is too old to add one: sign in again, then set it up.
        Err(AccountError::ReauthenticationRequired) => Ok(see_other(&format!("/login?reauth=security&next={}", encode(next)))),
        Err(e) => Err(e.into()),
    }
}

fn sign_in_token(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    cookie_value(state, headers, SIGN_IN_COOKIE).ok_or(AppError::Account(AccountError::SignInExpired))
}

/// A request to a page of this browser's sign-in in progress: the app, the
/// browser, and the sign-in's token from its cookie (none: the sign-in has
/// expired, a 4xx page).
pub struct InProgress {
    pub(super) state: AppState,
    pub(super) browser: Browser,
    pub(super) token: String,
}

impl FromRequestParts<AppState> for InProgress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = sign_in_token(state, &parts.headers)?;
        let Ok(browser) = Browser::from_request_parts(parts, state).await;
        Ok(Self { state: state.clone(), browser, token })
    }
}

/// Finishes a sign-in or step-up: the session cookie (a new token either
/// way), the sign-in cookie cleared, the remember-this-browser cookie if asked.
fn signed_in(state: &AppState, browser: &Browser, done: &SecondStepDone, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, &done.session_token, None));
    headers.append(header::SET_COOKIE, set_cookie(state, SIGN_IN_COOKIE, "", Some(0)));
    headers.append(header::SET_COOKIE, language_cookie(state, done.user.language));
    if let Some(remember) = &done.remember_cookie {
        headers.append(
            header::SET_COOKIE,
            set_cookie(state, REMEMBER_COOKIE, remember, Some(state.accounts().settings().remember_browser_ttl)),
        );
    }
    browser.finish(response)
}

/// What an accepted step leads to: the page to continue to, or the next step.
fn moved_on(
    state: &AppState,
    browser: &Browser,
    outcome: StepOutcome,
    next: &str,
    page: impl FnOnce(&SecondStepDone) -> Response,
) -> Response {
    match outcome {
        StepOutcome::Done(done) => {
            // Recovery codes to show come first; the account page asks again after.
            let response = match done.user.password_breached_at {
                Some(_) if done.new_recovery_codes.is_none() => see_other(&change_password_first(true, next)),
                _ => page(&done),
            };
            signed_in(state, browser, &done, response)
        }
        StepOutcome::Continue => browser.finish(see_other(&format!("/login/verify?next={}", encode(next)))),
    }
}

/// The recovery codes of a first factor set up inline, or straight on.
fn after_enrollment(browser: &Browser, next: &str) -> impl FnOnce(&SecondStepDone) -> Response {
    move |done| match &done.new_recovery_codes {
        Some(codes) => {
            browser.page(StatusCode::OK, "recovery_codes.html", context! { codes, continue_to => next, notice => tr("notice-mfa-on") })
        }
        None => see_other(next),
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    next: Option<String>,
    method: Option<String>,
}

fn remember_days(state: &AppState) -> i64 {
    state.accounts().settings().remember_browser_ttl / 86_400
}

/// A WebAuthn challenge as JSON for `static/webauthn.js`; failures as `{ "error": … }`.
pub(super) fn challenge_json(result: Result<PublicKeyChallenge, AppError>) -> Response {
    use axum::response::IntoResponse;
    match result {
        Ok(c) => {
            let body = axum::Json(serde_json::json!({ "ceremony": c.ceremony, "options": c.options }));
            (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], body).into_response()
        }
        Err(e) => json_error(e),
    }
}

/// A failure of a script's JSON call as `{ "error": … }`, with its status
/// (and `Retry-After`); what is not the person's to fix is logged and a 500.
pub(super) fn json_error(e: AppError) -> Response {
    use axum::response::IntoResponse;
    let (status, body) = match e {
        AppError::TooManyRequests { retry_after_secs } => {
            let body = axum::Json(serde_json::json!({ "error": tr(Msg::new("error-too-many-requests").arg("seconds", retry_after_secs)) }));
            let response = (StatusCode::TOO_MANY_REQUESTS, [(header::CACHE_CONTROL, "no-store")], body).into_response();
            return crate::error::with_retry_after(response, Some(retry_after_secs));
        }
        AppError::Account(e) if crate::error::form_problem(&e).is_some() => {
            let status = crate::error::form_problem(&e).map(|(s, _)| s).unwrap_or(StatusCode::BAD_REQUEST);
            if status.is_server_error() {
                tracing::error!(error = %e, "a JSON call failed");
            }
            let body = axum::Json(serde_json::json!({ "error": tr(account_error_msg(&e)) }));
            let response = (status, [(header::CACHE_CONTROL, "no-store")], body).into_response();
            return crate::error::with_retry_after(response, crate::error::retry_after(&e));
        }
        e => {
            tracing::error!(error = %e, "a JSON call failed");
            (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": tr("error-internal") }))
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

/// POST /login/verify/options: a WebAuthn challenge for the pending sign-in.
pub async fn verify_options(State(state): State<AppState>, browser: Browser, headers: HeaderMap) -> Response {
    let result = async {
        let token = sign_in_token(&state, &headers)?;
        let challenge = state
            .accounts()
            .sign_in()
            .second_factor_challenge(&token, (FactorKey::Webauthn, None), (&browser.ip, &browser.origin()), state.now())
            .await?;
        challenge.ok_or(AppError::Account(AccountError::KeyNotAccepted))
    }
    .await;
    challenge_json(result)
}

/// Where `step` can send its code, as the page's choices.
fn destination_choices(view: &SecondStepView, step: Step) -> Vec<minijinja::Value> {
    view.destinations_of(step).iter().map(|p| context! { id => &p.id, label => format!("{} ({})", p.name, p.masked) }).collect()
}

/// What the page asks for, from the shown step's facts (message ids, `$email` filled in).
fn answer_context(facts: StepFacts, email: &str) -> minijinja::Value {
    let fill = |id: &'static str| tr(Msg::new(id).arg("email", email));
    let (kind, code) = match facts.answer {
        Answer::PublicKey => ("public_key", None),
        Answer::Password => ("password", None),
        Answer::Code(field) => ("code", Some(field)),
        Answer::Approval => ("approval", None),
    };
    let sending = code.and_then(|c| c.sent);
    context! {
        kind, prompt => fill(facts.prompt), button => tr(facts.offer),
        label => code.map(|c| tr(c.label)), id => code.map(|c| c.id), numeric => code.is_some_and(|c| c.numeric),
        sends => sending.is_some(), send_offer => sending.map(|s| fill(s.offer)), send_button => sending.map(|s| tr(s.button)),
        caution => sending.and_then(|s| s.caution).map(tr), choice => sending.map(|s| tr(s.choice)),
    }
}

/// The second-step page's context for `view`.
fn step_context(state: &AppState, view: &SecondStepView, next: &str) -> minijinja::Value {
    let others = view.steps.len() > 1 || !view.enroll.is_empty();
    context! {
        method => view.shown.as_str(), answer => answer_context(view.shown.facts(), view.user.email.as_str()), others, next,
        next_encoded => encode(next), remember_days => remember_days(state), destinations => destination_choices(view, view.shown),
    }
}

async fn view(state: &AppState, browser: &Browser, token: &str, method: Option<&str>) -> Result<Option<SecondStepView>, AppError> {
    Ok(state.accounts().sign_in().second_step_view(token, method, &browser.origin(), state.now()).await?)
}

/// GET /login/verify
pub async fn verify_page(InProgress { state, browser, token }: InProgress, Query(q): Query<VerifyQuery>) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    match view(&state, &browser, &token, q.method.as_deref()).await? {
        Some(v) => Ok(browser.page(StatusCode::OK, "second_step.html", step_context(&state, &v, &next))),
        None => Ok(see_other(&format!("/login/enroll?next={}", encode(&next)))),
    }
}

/// GET /login/verify/methods: "Try another method", every step on offer on one page.
pub async fn methods_page(InProgress { state, browser, token }: InProgress, Query(q): Query<VerifyQuery>) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    let Some(v) = view(&state, &browser, &token, None).await? else {
        return Ok(see_other(&format!("/login/enroll?next={}", encode(&next))));
    };
    // A step that sends a code sends it from here (the user picks where, if there is a choice).
    let methods: Vec<_> = v
        .steps
        .iter()
        .map(|s| {
            let answer = answer_context(s.facts(), v.user.email.as_str());
            context! { key => s.as_str(), label => tr(s.facts().offer), answer, destinations => destination_choices(&v, *s) }
        })
        .collect();
    let ctx = context! { methods, enroll => !v.enroll.is_empty(), next => &next, next_encoded => encode(&next) };
    Ok(browser.page(StatusCode::OK, "second_step_methods.html", ctx))
}

#[derive(Deserialize)]
pub struct SendForm {
    method: String,
    /// The phone number picked (a credential id), when there are several.
    phone: Option<String>,
    next: Option<String>,
}

fn step_of(method: &str) -> Result<Step, AppError> {
    Step::parse(method).ok_or_else(|| AppError::BadRequest("error-unknown-method".into()))
}

/// POST /login/verify/send: sends a code ("Email me a code", "Text me a code"), then asks for it.
pub async fn send_code(InProgress { state, browser, token }: InProgress, HtmlForm(form): HtmlForm<SendForm>) -> Result<Response, AppError> {
    let now = state.now();
    let next = safe_next(form.next.as_deref());
    let Step::Factor(key) = step_of(&form.method)? else { return Err(AppError::BadRequest("error-method-sends-no-code".into())) };
    let phone = form.phone.as_deref().filter(|p| !p.is_empty());
    let result = state.accounts().sign_in().second_factor_challenge(&token, (key, phone), (&browser.ip, &browser.origin()), now).await;
    if let Err(e @ (AccountError::StepNotAllowed | AccountError::SignInExpired | AccountError::NotFound)) = result {
        return Err(e.into());
    }
    let v = view(&state, &browser, &token, Some(&form.method)).await?.ok_or(AccountError::SignInExpired)?;
    let ctx = step_context(&state, &v, &next);
    match result {
        Ok(_) => {
            let minutes = state.accounts().settings().otp.ttl / 60;
            let Answer::Code(CodeField { sent: Some(sending), .. }) = key.facts().answer else {
                return Err(AppError::BadRequest("error-method-sends-no-code".into()));
            };
            let default_to = tr(Msg::new(sending.default_to).arg("email", v.user.email.as_str()));
            let to = v
                .destinations_of(Step::Factor(key))
                .iter()
                .find(|p| phone.is_none_or(|id| p.id == id))
                .map_or(default_to.as_str(), |p| p.masked.as_str());
            let notice = tr(Msg::new(sending.notice).arg("to", to).arg("minutes", minutes));
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
    /// The password step (a sign-in begun with an emailed code).
    #[serde(default)]
    password: String,
    next: Option<String>,
    /// The "Remember this browser" checkbox.
    remember: Option<String>,
}

/// POST /login/verify
pub async fn verify(InProgress { state, browser, token }: InProgress, HtmlForm(form): HtmlForm<VerifyForm>) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let step = step_of(&form.method)?;
    let response = match step.facts().answer {
        Answer::PublicKey => portcullis_core::factors::webauthn::assertion_response(&form.ceremony, &form.credential),
        Answer::Password => form.password.clone(),
        // The approved request's id, which static/push.js puts in the code field.
        Answer::Code(_) | Answer::Approval => form.code.clone(),
    };
    let outcome = state
        .accounts()
        .sign_in()
        .complete_second_step(&token, (step, &response), form.remember.is_some(), &browser.origin(), state.now())
        .await;
    match outcome {
        Ok(outcome) => Ok(moved_on(&state, &browser, outcome, &next, |_| see_other(&next))),
        // A cloned key ended the user's sign-ins in progress: the refusal is the page.
        Err(
            e @ (AccountError::InvalidCode | AccountError::InvalidPassword | AccountError::KeyNotAccepted | AccountError::Locked { .. }),
        ) => {
            let v = view(&state, &browser, &token, Some(&form.method)).await?.ok_or(AccountError::SignInExpired)?;
            Ok(form_error(&browser, "second_step.html", context! { sent => true, ..step_context(&state, &v, &next) }, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the setup during a sign-in says first (a message id).
const ENROLL_INTRO: &str = "enroll-intro";

/// GET /login/enroll: the ways to set up a first factor during sign-in; then the original request continues.
pub async fn enroll_page(InProgress { state, browser, token }: InProgress, Query(q): Query<VerifyQuery>) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    let (kinds, other_steps, user) = state.accounts().sign_in().enrollment_choices(&token, &browser.origin(), state.now()).await?;
    Ok(browser.page(StatusCode::OK, "enroll.html", enroll_context(&kinds, other_steps, user.email.as_str(), &next)))
}

/// The setup choices again, with `extra` (what the user typed) and the error.
async fn enroll_form_error(
    state: &AppState,
    browser: &Browser,
    token: &str,
    next: &str,
    extra: minijinja::Value,
    e: AccountError,
) -> Result<Response, AppError> {
    let (kinds, other_steps, user) = state.accounts().sign_in().enrollment_choices(token, &browser.origin(), state.now()).await?;
    let ctx = context! { ..extra, ..enroll_context(&kinds, other_steps, user.email.as_str(), next) };
    Ok(form_error(browser, "enroll.html", ctx, e))
}

fn enroll_context(kinds: &[FactorKind], other_steps: bool, email: &str, next: &str) -> minijinja::Value {
    let has = |k: FactorKind| kinds.contains(&k);
    context! {
        intro => tr(ENROLL_INTRO), email, next, next_encoded => encode(next), other_steps,
        totp => has(FactorKind::Totp), passkey => has(FactorKind::Passkey), security_key => has(FactorKind::SecurityKey),
        phone => has(FactorKind::Phone),
    }
}

#[derive(Deserialize)]
pub struct NextForm {
    next: Option<String>,
}

/// POST /login/enroll/totp: "Set up authenticator app" during sign-in.
pub async fn enroll_totp(
    InProgress { state, browser, token }: InProgress,
    HtmlForm(form): HtmlForm<NextForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let prompt = state
        .accounts()
        .sign_in()
        .begin_inline_enrollment(&token, (FactorKind::Totp, &default_device_name(), ""), &browser.origin(), state.now())
        .await?;
    let setup = shared_secret(prompt)?;
    Ok(browser.page(
        StatusCode::OK,
        "totp_setup.html",
        setup_context(&setup, &default_device_name(), "/login/enroll", Some(&next), Some(ENROLL_INTRO)),
    ))
}

/// POST /login/enroll: the app's first code finishes its setup and the sign-in.
pub async fn enroll(InProgress { state, browser, token }: InProgress, HtmlForm(form): HtmlForm<SetupForm>) -> Result<Response, AppError> {
    let (now, origin) = (state.now(), browser.origin());
    let next = safe_next(form.next.as_deref());
    let accounts = state.accounts();
    let finishing = (FactorKind::Totp, form.credential_id.as_str(), form.code.as_str());
    let outcome = accounts.sign_in().complete_enrollment(&token, finishing, Some(&form.name), &origin, now).await;
    match outcome {
        Ok(outcome) => Ok(moved_on(&state, &browser, outcome, &next, after_enrollment(&browser, &next))),
        Err(e @ (AccountError::InvalidCode | AccountError::InvalidName)) => {
            let prompt =
                accounts.sign_in().pending_inline_enrollment(&token, (FactorKind::Totp, &form.credential_id), &origin, now).await?;
            let ctx = setup_context(&shared_secret(prompt)?, &form.name, "/login/enroll", Some(&next), Some(ENROLL_INTRO));
            Ok(form_error(&browser, "totp_setup.html", ctx, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /login/enroll/webauthn/options: begins registering a first security key or passkey during sign-in.
pub async fn enroll_key_options(
    State(state): State<AppState>,
    browser: Browser,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<KeyForm>,
) -> Response {
    let result = async {
        let token = sign_in_token(&state, &headers)?;
        let kind = webauthn_kind(&form.kind)?;
        public_key(
            state.accounts().sign_in().begin_inline_enrollment(&token, (kind, &form.name, ""), &browser.origin(), state.now()).await?,
        )
    }
    .await;
    challenge_json(result)
}

/// POST /login/enroll/webauthn: the new key's registration finishes the sign-in.
pub async fn enroll_key(InProgress { state, browser, token }: InProgress, HtmlForm(form): HtmlForm<KeyForm>) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let kind = webauthn_kind(&form.kind)?;
    let (now, origin) = (state.now(), browser.origin());
    match state.accounts().sign_in().complete_enrollment(&token, (kind, &form.ceremony, &form.credential), None, &origin, now).await {
        Ok(outcome) => Ok(moved_on(&state, &browser, outcome, &next, after_enrollment(&browser, &next))),
        Err(e @ (AccountError::KeyNotAccepted | AccountError::NotFound)) => {
            enroll_form_error(&state, &browser, &token, &next, context! {}, key_refusal(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /login/enroll/phone: "Add a phone number" during sign-in texts it a code.
pub async fn enroll_phone(
    InProgress { state, browser, token }: InProgress,
    HtmlForm(form): HtmlForm<PhoneForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let (now, origin) = (state.now(), browser.origin());
    let started = state
        .accounts()
        .sign_in()
        .begin_inline_enrollment(&token, (FactorKind::Phone, DEFAULT_PHONE_NAME, &form.phone), &origin, now)
        .await;
    match started {
        Ok(prompt) => {
            let (credential_id, destination) = code_sent(prompt)?;
            let ctx = phone_context(&credential_id, &destination, "/login/enroll/phone/confirm", Some(&next));
            Ok(browser.page(StatusCode::OK, "phone_confirm.html", ctx))
        }
        Err(e) if phone_form_problem(&e) => {
            enroll_form_error(&state, &browser, &token, &next, context! { phone_number => &form.phone }, e).await
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /login/enroll/phone/confirm: the texted code confirms the number and finishes the sign-in.
pub async fn enroll_phone_confirm(
    InProgress { state, browser, token }: InProgress,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let (now, origin) = (state.now(), browser.origin());
    match state
        .accounts()
        .sign_in()
        .complete_enrollment(&token, (FactorKind::Phone, &form.credential_id, &form.code), None, &origin, now)
        .await
    {
        Ok(outcome) => Ok(moved_on(&state, &browser, outcome, &next, after_enrollment(&browser, &next))),
        Err(e @ AccountError::InvalidCode) => {
            let sign_in = state.accounts().sign_in();
            let (_, destination) =
                code_sent(sign_in.pending_inline_enrollment(&token, (FactorKind::Phone, &form.credential_id), &origin, now).await?)?;
            let ctx = phone_context(&form.credential_id, &destination, "/login/enroll/phone/confirm", Some(&next));
            Ok(form_error(&browser, "phone_confirm.html", ctx, e))
        }
        Err(e) => Err(e.into()),
    }
}
