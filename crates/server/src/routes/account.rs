//! The signed-in user's account page.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use portcullis_core::factors::FactorKind;
use portcullis_core::sessions::ActiveSession;
use serde::Deserialize;

use super::{form_error, own_page_session};
use crate::error::AppError;
use crate::i18n::{Language, tr};
use crate::request::{Browser, HtmlForm, safe_next, see_other};
use crate::state::AppState;

/// The session of the account page, or the response that stands in for the page.
macro_rules! account_session {
    ($state:expr, $browser:expr) => {
        match own_page_session(&$state, &$browser, ("/account", portcullis_core::sign_in::SessionUse::OwnPages)).await? {
            Ok(session) => session,
            Err(detour) => return Ok(detour),
        }
    };
}

#[derive(Deserialize)]
pub struct ChangePasswordForm {
    current: String,
    password: String,
    confirm: String,
    /// Where to go on after a change asked for at sign-in.
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    /// Where the sign-in that asked for a new password was going.
    next: Option<String>,
}

/// How this session was verified, in words: "your password and your authenticator app".
fn verified_with(session: &ActiveSession) -> String {
    let mut words: Vec<String> = Vec::new();
    for event in &session.record.auth.events {
        // A factor carried over from a remembered browser was not performed now.
        let id = if event.remembered { "method-remembered-browser" } else { event.method.words() };
        let word = tr(id);
        if !words.contains(&word) {
            words.push(word);
        }
    }
    crate::i18n::join_words(&words, "list-and")
}

/// The page's context; `next`: where a sign-in that asks for a new password
/// goes on to; `has_factor`: the account has a second factor (else the page
/// invites the user to set one up).
async fn account_context(
    state: &AppState,
    session: &ActiveSession,
    breached: bool,
    next: Option<&str>,
) -> Result<minijinja::Value, AppError> {
    let has_factor = !state.accounts().credentials().factors(session.user.id).await?.is_empty();
    let can_set_up = state.accounts().can_enroll(FactorKind::Totp) || state.accounts().webauthn_available();
    Ok(context! {
        signed_in => true,
        email => session.user.email.as_str(),
        name => &session.user.name,
        admin => session.user.is_admin || session.user.is_auditor,
        methods => verified_with(session),
        invite => !has_factor && can_set_up,
        language => session.user.language.map(|l| l.code()),
        languages => crate::i18n::choices(),
        breached,
        next => next.map(|n| safe_next(Some(n))),
    })
}

/// GET /
pub async fn home() -> Response {
    see_other("/account")
}

/// GET /account
pub async fn account_page(State(state): State<AppState>, browser: Browser, Query(q): Query<AccountQuery>) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    let breached = session.user.password_breached_at.is_some();
    Ok(browser.page(StatusCode::OK, "account.html", account_context(&state, &session, breached, q.next.as_deref()).await?))
}

/// POST /account/password
pub async fn change_password(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ChangePasswordForm>,
) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    let next = form.next.as_deref().filter(|n| !n.is_empty());
    match state
        .accounts()
        .registration()
        .change_password(&session, &form.current, (&form.password, &form.confirm), &browser.origin(), state.now())
        .await
    {
        Ok(()) => Ok(browser.page(
            StatusCode::OK,
            "account.html",
            context! { notice => tr("notice-password-changed"), ..account_context(&state, &session, false, next).await? },
        )),
        Err(e) => {
            let ctx = account_context(&state, &session, session.user.password_breached_at.is_some(), next).await?;
            Ok(form_error(&browser, "account.html", ctx, e))
        }
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    /// A shipped language's tag, or empty for the browser's.
    #[serde(default)]
    language: String,
}

/// POST /account/language: the language of the user's pages and messages.
pub async fn set_language(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<LanguageForm>,
) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    let language = match form.language.trim() {
        "" => None,
        tag => Some(Language::parse(tag).ok_or(AppError::BadRequest("error-unknown-language".into()))?),
    };
    state.accounts().registration().set_language(session.user.id, language).await?;
    let mut response = see_other("/account");
    response.headers_mut().append(axum::http::header::SET_COOKIE, super::second_step::language_cookie(&state, language));
    Ok(browser.finish(response))
}

#[derive(Deserialize)]
pub struct ProtectQuery {
    next: Option<String>,
}

/// GET /account/protect: after a sign-in with the password alone, the
/// suggestion to set up a second factor (`[mfa] suggest_enrollment`).
pub async fn protect_page(State(state): State<AppState>, browser: Browser, Query(q): Query<ProtectQuery>) -> Result<Response, AppError> {
    let _session = account_session!(state, browser);
    let next = safe_next(q.next.as_deref());
    Ok(browser.page(StatusCode::OK, "protect.html", context! { signed_in => true, next }))
}

/// POST /account/protect/later: "Not now": not suggested again for 30 days; on to `next`.
pub async fn protect_later(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ProtectQuery>,
) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    state.accounts().registration().snooze_enrollment_prompt(session.user.id, state.now()).await?;
    Ok(browser.finish(see_other(&safe_next(form.next.as_deref()))))
}
