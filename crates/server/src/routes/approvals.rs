//! Push approval's routes: the waiting sign-in page's calls (send a request
//! to the phone, ask where it stands), and the companion app at
//! `/authenticator`: its page, script, service worker and manifest, and its
//! JSON calls (pair, list, answer), each signed by the phone's device key and
//! checked in `core` (`SignIn`'s approvals, `Credentials::pair_push_device`).
//! The companion's calls carry no cookie: the signature is the credential,
//! so there is nothing for another site to forge a request with.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::AccountError;
use portcullis_core::factors::FactorKey;
use portcullis_core::factors::push::{PushDecision, PushDevice, PushRequest, PushSubscription};
use portcullis_core::sign_in::ApprovalState;
use serde::Deserialize;
use serde_json::json;

use super::second_step::{InProgress, challenge_json, json_error};
use crate::error::AppError;
use crate::i18n::{device_name, tr};
use crate::request::Browser;
use crate::state::AppState;

/// POST /login/verify/push: sends a sign-in request to the user's phones;
/// `{ ceremony, options: { request, number, expires_in } }` for `static/push.js`.
pub async fn send_request(InProgress { state, browser, token }: InProgress) -> Response {
    let result = state
        .accounts()
        .sign_in()
        .second_factor_challenge(&token, (FactorKey::Push, None), (&browser.ip, &browser.origin()), state.now())
        .await
        .map_err(AppError::from)
        .and_then(|c| c.ok_or(AppError::Account(AccountError::NotFound)));
    challenge_json(result)
}

#[derive(Deserialize)]
pub struct StateQuery {
    request: String,
    /// Long poll: answer when the state moves on, or after [`LONG_POLL`].
    #[serde(default)]
    wait: bool,
}

/// How long a long poll of the waiting page is held.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a held poll looks again (an answer given to another server process).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// GET /login/verify/push?request=ID[&wait=true]: `{ "state": "waiting" |
/// "approved" | "denied" | "wrong_number" | "expired" }`, for this browser's
/// sign-in only. With `wait`, held until the state moves on (a phone
/// answering in this process wakes it at once) or for 20 seconds.
pub async fn request_state(InProgress { state, token, .. }: InProgress, Query(q): Query<StateQuery>) -> Response {
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    let found = loop {
        // Registered before the look, so an answer between the two is not missed.
        let answered = state.push_answered().notified();
        tokio::pin!(answered);
        answered.as_mut().enable();
        match state.accounts().sign_in().approval_state(&token, &q.request, state.now()).await {
            Ok(ApprovalState::Waiting) if q.wait && tokio::time::Instant::now() < deadline => {}
            other => break other,
        }
        let _ = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + RECHECK), answered).await;
    };
    let answer = match found {
        Ok(s) => json!({ "state": state_name(s) }),
        Err(e) => return json_error(AppError::Account(e)),
    };
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

fn state_name(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Waiting => "waiting",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::WrongNumber => "wrong_number",
        ApprovalState::Expired => "expired",
    }
}

/// GET /authenticator: the companion app (everything it does is in `static/authenticator/app.js`).
pub async fn companion_page(State(state): State<AppState>, browser: Browser) -> Result<Response, AppError> {
    let Some(key) = &state.settings().push_key else { return Err(AppError::NotFound) };
    Ok(browser.page(StatusCode::OK, "companion.html", minijinja::context! { vapid_key => key }))
}

/// GET /authenticator/app.js
pub async fn companion_script() -> Response {
    script(include_str!("../../static/authenticator/app.js"))
}

/// GET /authenticator/sw.js: the service worker, with its notification's
/// words in the language of the browser that fetches it. Allowed to control
/// `/authenticator` (the page is not under its directory).
pub async fn service_worker() -> Response {
    let words = json!({ "title": tr("companion-notification-title"), "body": tr("companion-notification-body") });
    let source = include_str!("../../static/authenticator/sw.js").replace("__WORDS__", &words.to_string());
    let mut response = script(source);
    response.headers_mut().insert("service-worker-allowed", header::HeaderValue::from_static("/authenticator"));
    response
}

/// A script, checked for a newer version at each use (a service worker must be).
fn script(source: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], source.into()).into_response()
}

/// GET /authenticator/manifest.webmanifest: makes the companion installable.
pub async fn manifest() -> Response {
    let manifest = json!({
        "name": tr("companion-title"), "short_name": "Portcullis", "start_url": "/authenticator", "scope": "/authenticator",
        "display": "standalone", "background_color": "#ffffff", "theme_color": "#1f3a5f",
        "icons": [{ "src": "/authenticator/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any" }],
    });
    ([(header::CONTENT_TYPE, "application/manifest+json")], manifest.to_string()).into_response()
}

/// GET /authenticator/icon.svg
pub async fn icon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../../static/authenticator/icon.svg"),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairBody {
    token: String,
    public_key: String,
    subscription: Option<PushSubscription>,
    #[serde(default)]
    name: String,
    signature: String,
}

/// POST /authenticator/pair: `{ token, public_key, subscription, name, signature }` → `{ name }`.
pub async fn pair(State(state): State<AppState>, browser: Browser, Json(body): Json<PairBody>) -> Response {
    let device = PushDevice { public_key: body.public_key, subscription: body.subscription };
    let paired = state
        .accounts()
        .credentials()
        .pair_push_device(&body.token, (device, &body.name, &body.signature), &browser.origin(), state.now())
        .await;
    match paired {
        Ok(c) => (StatusCode::CREATED, Json(json!({ "name": c.name }))).into_response(),
        Err(e) => json_error(AppError::Account(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListBody {
    public_key: String,
    at: i64,
    signature: String,
}

/// POST /authenticator/requests: `{ public_key, at, signature }` → the
/// requests waiting for this phone, in words for its screen.
pub async fn list_requests(State(state): State<AppState>, Json(body): Json<ListBody>) -> Response {
    let listed = state.accounts().sign_in().pending_approvals(&body.public_key, (body.at, &body.signature), state.now()).await;
    let requests = match listed {
        Ok(r) => r,
        Err(e) => return json_error(AppError::Account(e)),
    };
    let mut shown = Vec::with_capacity(requests.len());
    for r in &requests {
        shown.push(request_words(&state, r).await);
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "requests": shown }))).into_response()
}

/// What the phone shows of a request: the application, the browser, the
/// approximate place and the time; the three numbers.
async fn request_words(state: &AppState, r: &PushRequest) -> serde_json::Value {
    let application = match &r.context.client_id {
        Some(id) => match state.provider().client(id).await {
            Ok(Some(c)) => c.name,
            _ => id.clone(),
        },
        None => state.settings().product_name.clone(),
    };
    json!({
        "id": r.id, "choices": r.choices, "application": application, "browser": device_name(&r.context.user_agent),
        "place": super::security::place(state, &r.context.ip), "time": crate::pages::when(r.created_at), "expires_at": r.expires_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    public_key: String,
    request: String,
    /// `approve` or `deny`.
    decision: String,
    /// The number picked (approve).
    number: Option<u8>,
    signature: String,
}

/// POST /authenticator/answer: `{ public_key, request, decision, number, signature }` → `{ state }`.
pub async fn answer(State(state): State<AppState>, browser: Browser, Json(body): Json<AnswerBody>) -> Response {
    let decision = match (body.decision.as_str(), body.number) {
        ("approve", Some(n)) => PushDecision::Approve(n),
        ("deny", _) => PushDecision::Deny,
        _ => return json_error(AppError::Account(AccountError::InvalidInput("decision: approve with a number, or deny".into()))),
    };
    let answered = state
        .accounts()
        .sign_in()
        .answer_approval(&body.public_key, (&body.request, decision, &body.signature), &browser.origin(), state.now())
        .await;
    // Only an answer that moved a request on wakes the waiting pages (not a
    // forged call, which anyone can send).
    if matches!(answered, Ok(_) | Err(AccountError::WrongNumber)) {
        state.push_answered().notify_waiters();
    }
    match answered {
        Ok(s) => (StatusCode::OK, Json(json!({ "state": state_name(s) }))).into_response(),
        Err(e) => json_error(AppError::Account(e)),
    }
}
