//! The signed-in user's account page.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use portcullis_core::sessions::ActiveSession;
use serde::Deserialize;

use super::{form_error, own_page_session};
use crate::error::AppError;
use crate::request::{Browser, HtmlForm, safe_next, see_other};
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
    /// Where to go on after a change asked for at sign-in.
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    /// Where the sign-in that asked for a new password was going.
    next: Option<String>,
}

/// The page's context; `next`: where a sign-in that asks for a new password goes on to.
fn account_context(session: &ActiveSession, breached: bool, next: Option<&str>) -> minijinja::Value {
    context! {
        signed_in => true,
        email => session.user.email.as_str(),
        name => &session.user.name,
        admin => session.user.is_admin || session.user.is_auditor,
        amr => session.record.auth.amr(),
        auth_time => session.record.auth.auth_time(),
        breached,
        next => next.map(|n| safe_next(Some(n))),
    }
}

/// GET /
pub async fn home() -> Response {
    see_other("/account")
}

/// GET /account
pub async fn account_page(State(state): State<AppState>, browser: Browser, Query(q): Query<AccountQuery>) -> Result<Response, AppError> {
    let session = account_session!(state, browser);
    let breached = session.user.password_breached_at.is_some();
    Ok(browser.page(StatusCode::OK, "account.html", account_context(&session, breached, q.next.as_deref())))
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
            context! { notice => "Your password has been changed. Other sessions were signed out.", ..account_context(&session, false, next) },
        )),
        Err(e) => {
            let ctx = account_context(&session, session.user.password_breached_at.is_some(), next);
            Ok(form_error(&browser, "account.html", ctx, e))
        }
    }
}
