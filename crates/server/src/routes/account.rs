//! The signed-in user's account page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use portcullis_core::sessions::ActiveSession;
use serde::Deserialize;

use super::{form_error, own_page_session};
use crate::error::AppError;
use crate::request::{Browser, HtmlForm, see_other};
use crate::state::AppState;

/// The session of the account page, or the response that stands in for the page.
macro_rules! account_session {
    ($state:expr, $browser:expr) => {
        match own_page_session(&$state, &$browser, "/account").await? {
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
}

fn account_context(session: &ActiveSession) -> minijinja::Value {
    context! {
        signed_in => true,
        email => session.user.email.as_str(),
        name => &session.user.name,
        admin => session.user.is_admin,
        amr => session.record.auth.amr(),
        auth_time => session.record.auth.auth_time(),
    }
}

/// GET /
pub async fn home() -> Response {
    see_other("/account")
}

/// GET /account
pub async fn account_page(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    Ok(browser.page(StatusCode::OK, "account.html", account_context(&session)))
}

/// POST /account/password
pub async fn change_password(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<ChangePasswordForm>,
) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    let ctx = account_context(&session);
    match state
        .accounts()
        .registration()
        .change_password(&session, &form.current, (&form.password, &form.confirm), &browser.origin(), state.now())
        .await
    {
        Ok(()) => Ok(browser.page(
            StatusCode::OK,
            "account.html",
            context! { notice => "Your password has been changed. Other sessions were signed out.", ..ctx },
        )),
        Err(e) => Ok(form_error(&browser, "account.html", ctx, e)),
    }
}
