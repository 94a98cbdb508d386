//! The security page (`/account/security`, a signed-in session): the user's
//! factors, recovery codes, remembered browsers, sessions and recent events.
//! Recency and the other preconditions of a change are checked in `core`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::credentials::FactorAdded;
use portcullis_core::factors::FactorKind;
use portcullis_core::sessions::ActiveSession;
use serde::Deserialize;

use super::second_step::challenge_json;
use super::setup::{
    DEFAULT_PHONE_NAME, KeyForm, PhoneForm, SetupForm, code_sent, default_device_name, key_refusal, pairing_link, phone_context,
    phone_form_problem, public_key, setup_context, shared_secret, webauthn_kind,
};
use super::{current_session, form_error, own_page_session};
use crate::error::AppError;
use crate::i18n::{device_name, tr};
use crate::request::{Browser, HtmlForm, SESSION_COOKIE, set_cookie};
use crate::state::AppState;
use portcullis_core::sign_in::SessionUse;

/// The security page's path (where sign-in and step-up come back to).
const HERE: &str = "/account/security";

/// The session of the security page, or the response that stands in for the page.
macro_rules! security_session {
    ($state:expr, $browser:expr) => {
        match own_page_session(&$state, &$browser, (HERE, SessionUse::FactorChanges)).await? {
            Ok(session) => session,
            Err(detour) => return Ok(detour),
        }
    };
}

/// GET /account/security
pub async fn security_page(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    Ok(browser.page(StatusCode::OK, "security.html", security_context(&state, &session).await?))
}

/// The page after a factor was added: recovery codes for a first one, else
/// the security page; with the session's new cookie when the first factor
/// made it multi-factor.
async fn factor_added(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    added: FactorAdded,
    notice: &'static str,
) -> Result<Response, AppError> {
    // The forms on the page answer to the session the response gives the browser.
    let rebound;
    let browser = match &added.session_token {
        Some(token) => {
            rebound = browser.with_session(state, token);
            &rebound
        }
        None => browser,
    };
    let mut response = match added.recovery_codes {
        Some(codes) => {
            browser.page(StatusCode::OK, "recovery_codes.html", context! { codes, continue_to => HERE, notice => tr("notice-mfa-on") })
        }
        None => browser.page(StatusCode::OK, "security.html", context! { notice => tr(notice), ..security_context(state, session).await? }),
    };
    if let Some(token) = added.session_token {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, &token, None));
    }
    Ok(response)
}

/// POST /account/security/totp: begins setting up an app.
pub async fn start_totp(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let setup = shared_secret(
        state
            .accounts()
            .credentials()
            .start_enrollment(&session, FactorKind::Totp, (&default_device_name(), ""), &browser.origin(), state.now())
            .await?,
    )?;
    Ok(browser.page(
        StatusCode::OK,
        "totp_setup.html",
        setup_context(&setup, &default_device_name(), "/account/security/totp/confirm", None, None),
    ))
}

/// POST /account/security/totp/confirm
pub async fn confirm_totp(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let (user, now) = (&session.user, state.now());
    let finishing = (form.credential_id.as_str(), form.code.as_str());
    let outcome = state
        .accounts()
        .credentials()
        .finish_enrollment(&session, (FactorKind::Totp, Some(&form.name)), finishing, &browser.origin(), now)
        .await;
    match outcome {
        Ok(added) => factor_added(&state, &browser, &session, added, "notice-totp-added").await,
        Err(e @ (AccountError::InvalidCode | AccountError::InvalidName)) => {
            let setup =
                shared_secret(state.accounts().credentials().pending_enrollment(user, FactorKind::Totp, &form.credential_id, now).await?)?;
            Ok(form_error(&browser, "totp_setup.html", setup_context(&setup, &form.name, "/account/security/totp/confirm", None, None), e))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /account/security/recovery-codes
pub async fn regenerate_codes(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let codes = match state.accounts().credentials().regenerate_recovery_codes(&session, &browser.origin(), state.now()).await {
        Err(AccountError::RecoveryCodesNeedAFactor) => {
            return Err(AppError::Account(AccountError::RecoveryCodesNeedAFactor));
        }
        other => other?,
    };
    Ok(browser.page(
        StatusCode::OK,
        "recovery_codes.html",
        context! { codes, continue_to => HERE, notice => tr("notice-recovery-codes-new") },
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
    manage(&state, &browser, Management::Rename { id: &form.id, name: &form.name }).await
}

/// POST /account/security/browsers/forget
pub async fn forget_browser(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Management::ForgetBrowser(&form.id)).await
}

/// POST /account/security/factors/remove
pub async fn remove_factor(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Management::Remove(&form.id)).await
}

/// POST /account/security/sessions/end: signs one of the user's sessions out.
pub async fn end_session(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Management::EndSession(&form.id)).await
}

/// POST /account/security/apps/remove: takes an application's access away.
pub async fn remove_app_access(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<FactorForm>,
) -> Result<Response, AppError> {
    manage(&state, &browser, Management::RemoveAppAccess(&form.id)).await
}

/// A change made from the lists on the security page.
enum Management<'a> {
    Rename { id: &'a str, name: &'a str },
    Remove(&'a str),
    ForgetBrowser(&'a str),
    EndSession(&'a str),
    RemoveAppAccess(&'a str),
}

/// Makes a change from the security page's lists and shows the page with
/// its outcome (a change that needs a recent sign-in is refused in core, and
/// answered with the sign-in page).
async fn manage(state: &AppState, browser: &Browser, change: Management<'_>) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let (accounts, origin, now) = (state.accounts(), browser.origin(), state.now());
    let user = &session.user;
    let result = match change {
        Management::Rename { id, name } => {
            accounts.credentials().rename_factor(user, id, name, &origin, now).await.map(|()| "notice-renamed")
        }
        Management::Remove(id) => accounts.credentials().remove_factor(&session, id, &origin, now).await.map(|()| "notice-removed"),
        Management::ForgetBrowser(id) => {
            accounts.credentials().forget_browser(user, id, &origin, now).await.map(|()| "notice-browser-forgotten")
        }
        Management::EndSession(id) => accounts.sessions().end(user, id, &origin, now).await.map(|()| "notice-session-ended"),
        Management::RemoveAppAccess(client) => match state.provider().remove_app_access(user.id, client, &origin, now).await? {
            true => Ok("notice-app-access-removed"),
            false => Err(AccountError::NotFound),
        },
    };
    if let Err(e @ (AccountError::ReauthenticationRequired | AccountError::SecondFactorNeeded)) = result {
        return Err(e.into());
    }
    let ctx = security_context(state, &session).await?;
    match result {
        Ok(notice) => Ok(browser.page(StatusCode::OK, "security.html", context! { notice => tr(notice), ..ctx })),
        Err(e) => Ok(form_error(browser, "security.html", ctx, e)),
    }
}

/// POST /account/security/webauthn/options: begins registering a security key or passkey.
pub async fn key_options(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<KeyForm>) -> Response {
    let result = async {
        // A JSON answer cannot be a detour: a session that may not change its
        // factors gets the refusal `start_enrollment` decides (it checks the
        // session as the security page does), and is told to reload the page.
        let session = current_session(&state, &browser).await?.ok_or(AppError::Account(AccountError::SignInExpired))?;
        public_key(
            state
                .accounts()
                .credentials()
                .start_enrollment(&session, webauthn_kind(&form.kind)?, (&form.name, ""), &browser.origin(), state.now())
                .await?,
        )
    }
    .await;
    challenge_json(result)
}

/// POST /account/security/webauthn: finishes registering a security key or passkey.
pub async fn add_key(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<KeyForm>) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let kind = webauthn_kind(&form.kind)?;
    match state
        .accounts()
        .credentials()
        .finish_enrollment(&session, (kind, None), (&form.ceremony, &form.credential), &browser.origin(), state.now())
        .await
    {
        Ok(added) => {
            let notice = if kind == FactorKind::Passkey { "notice-passkey-added" } else { "notice-security-key-added" };
            factor_added(&state, &browser, &session, added, notice).await
        }
        Err(e @ (AccountError::KeyNotAccepted | AccountError::NotFound)) => {
            Ok(form_error(&browser, "security.html", security_context(&state, &session).await?, key_refusal(e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /account/security/phone: "Add a phone number" sends a code to it.
pub async fn add_phone(State(state): State<AppState>, browser: Browser, HtmlForm(form): HtmlForm<PhoneForm>) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    match state
        .accounts()
        .credentials()
        .start_enrollment(&session, FactorKind::Phone, (DEFAULT_PHONE_NAME, &form.phone), &browser.origin(), state.now())
        .await
    {
        Ok(prompt) => {
            let (credential_id, destination) = code_sent(prompt)?;
            Ok(browser.page(
                StatusCode::OK,
                "phone_confirm.html",
                phone_context(&credential_id, &destination, "/account/security/phone/confirm", None),
            ))
        }
        Err(e) if phone_form_problem(&e) => {
            let ctx = security_context(&state, &session).await?;
            Ok(form_error(&browser, "security.html", context! { phone => &form.phone, ..ctx }, e))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /account/security/push: "Set up sign-in approvals": a one-time
/// link (and its QR code) that pairs the companion on a phone.
pub async fn start_push(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let name = tr("push-default-name");
    let prompt = state
        .accounts()
        .credentials()
        .start_enrollment(&session, FactorKind::PushDevice, (&name, ""), &browser.origin(), state.now())
        .await?;
    let (link, minutes) = pairing_link(prompt)?;
    Ok(browser.page(StatusCode::OK, "push_setup.html", context! { qr => crate::pages::qr_svg(&link), link, minutes }))
}

/// POST /account/security/phone/confirm: the texted code confirms the number.
pub async fn confirm_phone(
    State(state): State<AppState>,
    browser: Browser,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, AppError> {
    let session = security_session!(state, browser);
    let now = state.now();
    match state
        .accounts()
        .credentials()
        .finish_enrollment(&session, (FactorKind::Phone, None), (&form.credential_id, &form.code), &browser.origin(), now)
        .await
    {
        Ok(added) => factor_added(&state, &browser, &session, added, "notice-phone-added").await,
        Err(e @ AccountError::InvalidCode) => {
            let (_, destination) = code_sent(
                state.accounts().credentials().pending_enrollment(&session.user, FactorKind::Phone, &form.credential_id, now).await?,
            )?;
            let ctx = phone_context(&form.credential_id, &destination, "/account/security/phone/confirm", None);
            Ok(form_error(&browser, "phone_confirm.html", ctx, e))
        }
        Err(e) => Err(e.into()),
    }
}

async fn security_context(state: &AppState, session: &ActiveSession) -> Result<minijinja::Value, AppError> {
    let user = &session.user;
    let now = state.now();
    let factors: Vec<minijinja::Value> = state
        .accounts()
        .credentials()
        .factors(user.id)
        .await?
        .iter()
        .map(|c| {
            context! {
                id => &c.id, name => &c.name, kind => tr(c.kind.label()), authenticator => &c.authenticator,
                created => crate::pages::day(c.created_at), last_used => c.last_used_at.map(crate::pages::day).unwrap_or_default(),
                disabled => c.flagged_at.is_some(),
            }
        })
        .collect();
    let codes_left = state.accounts().credentials().recovery_codes_left(user.id).await?;
    let browsers: Vec<minijinja::Value> = state
        .accounts()
        .credentials().remembered_browsers(user.id, state.now())
        .await?
        .iter()
        .map(|b| context! { id => &b.id, agent => device_name(&b.user_agent), raw_agent => &b.user_agent, created => crate::pages::day(b.created_at), expires => crate::pages::day(b.expires_at) })
        .collect();
    let sessions: Vec<minijinja::Value> = state
        .accounts()
        .sessions().list(user, now)
        .await?
        .iter()
        .map(|s| {
            context! {
                id => &s.id, agent => device_name(&s.user_agent), raw_agent => &s.user_agent, from => place(state, &s.ip),
                started => crate::pages::day(s.created_at), last_seen => crate::pages::day(s.last_seen_at), current => s.id == session.record.id,
            }
        })
        .collect();
    let apps = app_access_context(state, user.id).await?;
    let events: Vec<minijinja::Value> = state
        .accounts()
        .sessions()
        .recent_events(user.id)
        .await?
        .iter()
        .map(|e| {
            let raw_agent = e.user_agent.as_deref().filter(|a| !a.is_empty());
            // The command line's events have no address (`RequestOrigin::command_line`); a
            // browser calling itself "portcullis-cli" is still a browser with one.
            let agent = match (raw_agent, e.ip.as_deref()) {
                (Some("portcullis-cli"), None) => Some(tr("device-command-line")),
                (agent, _) => agent.map(device_name),
            };
            let from = e.ip.as_deref().map(|ip| place(state, ip));
            context! { when => crate::pages::when(e.at), event => tr(event_label(&e.kind)), from, agent, raw_agent }
        })
        .collect();
    Ok(context! {
        signed_in => true, factors, codes_left, browsers, sessions, apps, events, mfa_required => state.accounts().mfa_required(user),
        webauthn => state.accounts().webauthn_available(), totp => state.accounts().can_enroll(FactorKind::Totp),
        sms => state.accounts().can_enroll(FactorKind::Phone), push => state.accounts().can_enroll(FactorKind::PushDevice),
    })
}

/// The applications holding access to `user`, for the security page and
/// the admin console.
pub(super) async fn app_access_context(state: &AppState, user: portcullis_core::user::UserId) -> Result<Vec<minijinja::Value>, AppError> {
    Ok(state
        .provider()
        .app_access(user, state.now())
        .await?
        .iter()
        .map(|a| {
            context! {
                id => &a.client_id, name => &a.client_name, scopes => crate::i18n::scope_words(&a.scopes), scope_codes => a.scopes.join(" "), first_granted => crate::pages::day(a.first_granted),
                last_used => a.last_used.map(crate::pages::day).unwrap_or_default(), refresh_token => a.refresh_token,
            }
        })
        .collect())
}

/// Where an address is, in words: "81.2.69.142 (London, United Kingdom)"
/// when a GeoIP database knows it, the address alone otherwise.
pub(super) fn place(state: &AppState, ip: &str) -> String {
    if ip.is_empty() {
        return tr("place-unknown");
    }
    match ip.parse().ok().and_then(|ip| state.accounts().place_name(ip, crate::i18n::current())) {
        Some(name) => format!("{ip} ({name})"),
        None => ip.to_owned(),
    }
}

/// The message id of an audit event's words on the security page.
pub(crate) fn event_label(kind: &str) -> &'static str {
    use portcullis_core::audit::AuditKind as K;
    match K::parse(kind) {
        Some(K::SignInSucceeded) => "event-sign-in-succeeded",
        Some(K::SignInFailed) => "event-sign-in-failed",
        Some(K::SignInDenied) => "event-sign-in-denied",
        Some(K::SignInStepRefused) => "event-sign-in-step-refused",
        Some(K::AccountLocked) => "event-account-locked",
        Some(K::AccountUnlocked) => "event-account-unlocked",
        Some(K::PolicyDecision) => "event-policy-decision",
        Some(K::FactorAdded) => "event-factor-added",
        Some(K::FactorRemoved) => "event-factor-removed",
        Some(K::FactorRenamed) => "event-factor-renamed",
        Some(K::AuthenticatorCloned) => "event-authenticator-cloned",
        Some(K::PushDenied) => "event-push-denied",
        Some(K::RecoveryCodeUsed) => "event-recovery-code-used",
        Some(K::RecoveryCodesRegenerated) => "event-recovery-codes-regenerated",
        Some(K::RememberedBrowserCreated) => "event-remembered-browser-created",
        Some(K::RememberedBrowserRevoked) => "event-remembered-browser-revoked",
        Some(K::SessionRevoked) => "event-session-revoked",
        Some(K::PasswordChanged) => "event-password-changed",
        Some(K::MfaReset) => "event-mfa-reset",
        Some(K::MfaRequirementChanged) => "event-mfa-requirement-changed",
        Some(K::AdminChanged) => "event-admin-changed",
        Some(K::AuditorChanged) => "event-auditor-changed",
        Some(K::ConsoleChangeRefused) => "event-console-change-refused",
        Some(K::UserCreated) => "event-user-created",
        Some(K::UserDeleted) => "event-user-deleted",
        Some(K::AppAccessRemoved) => "event-app-access-removed",
        Some(K::ClientChanged) | None => "event-other",
    }
}
