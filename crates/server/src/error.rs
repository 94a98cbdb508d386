//! The one place where failures become HTTP responses.
//!
//! Domain errors that a person can fix (wrong password, weak password) are
//! shown next to the form field by the handler, using [`form_problem`] for the
//! status and field; everything else becomes an error page here. 5xx details
//! are logged with the request id, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{AccountError, StoreError};
use portcullis_oidc::{ErrorCode, OidcError};

use crate::i18n::{Msg, tr};
use crate::pages;

/// A request that ends in an error page.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A domain error with no form to show it on.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Malformed request.
    #[error("{0}")]
    BadRequest(Msg),
    /// CSRF or origin check failed.
    #[error("{0}")]
    Forbidden(Msg),
    /// Body is not a form.
    #[error("Send this form as application/x-www-form-urlencoded.")]
    UnsupportedMediaType,
    /// Body too large.
    #[error("The request is too large.")]
    PayloadTooLarge,
    /// Rate limit hit.
    #[error("Too many requests. Wait {retry_after_secs} seconds and try again.")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// No such page.
    #[error("This page does not exist.")]
    NotFound,
    /// The page needs a signed-in user: answered with a redirect to the sign-in page.
    #[error("Sign in to see this page.")]
    SignInRequired {
        /// Where to come back to afterwards (a local path).
        next: &'static str,
    },
    /// A server-side failure (logged, never shown).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where a domain error belongs on a form: status code, field name (empty for
/// the whole form) and message.
pub fn form_problem(e: &AccountError) -> Option<(StatusCode, &'static str)> {
    Some(match e {
        AccountError::InvalidEmail(_) => (StatusCode::UNPROCESSABLE_ENTITY, "email"),
        AccountError::WeakPassword(_) => (StatusCode::UNPROCESSABLE_ENTITY, "password"),
        AccountError::PasswordMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "confirm"),
        AccountError::WrongCurrentPassword => (StatusCode::UNPROCESSABLE_ENTITY, "current"),
        AccountError::InvalidCredentials => (StatusCode::UNAUTHORIZED, ""),
        AccountError::InvalidPassword => (StatusCode::UNAUTHORIZED, "password"),
        AccountError::Locked { .. }
        | AccountError::CodeSentRecently { .. }
        | AccountError::TooManyCodes { .. }
        | AccountError::TooManyPushes { .. } => (StatusCode::TOO_MANY_REQUESTS, ""),
        AccountError::PushRequestEnded => (StatusCode::GONE, ""),
        AccountError::DeviceNotRecognised => (StatusCode::UNAUTHORIZED, ""),
        AccountError::WrongNumber => (StatusCode::UNPROCESSABLE_ENTITY, ""),
        AccountError::EmailNotVerified => (StatusCode::FORBIDDEN, ""),
        AccountError::InvalidLink => (StatusCode::BAD_REQUEST, ""),
        AccountError::SetupLinkUnusable => (StatusCode::BAD_REQUEST, ""),
        AccountError::EmailInUse => (StatusCode::CONFLICT, "email"),
        AccountError::InvalidCode => (StatusCode::UNPROCESSABLE_ENTITY, "code"),
        AccountError::InvalidName => (StatusCode::UNPROCESSABLE_ENTITY, "name"),
        AccountError::InvalidPhoneNumber(_) => (StatusCode::UNPROCESSABLE_ENTITY, "phone"),
        AccountError::SmsDelivery(_) => (StatusCode::SERVICE_UNAVAILABLE, ""),
        AccountError::SignInExpired | AccountError::TooManyAnswers => (StatusCode::BAD_REQUEST, ""),
        AccountError::StepNotAllowed => (StatusCode::FORBIDDEN, ""),
        AccountError::NoUsableFactor => (StatusCode::FORBIDDEN, ""),
        AccountError::RecoveryCodesNeedAFactor => (StatusCode::BAD_REQUEST, ""),
        AccountError::ReauthenticationRequired | AccountError::SecondFactorNeeded => (StatusCode::FORBIDDEN, ""),
        AccountError::LastFactor => (StatusCode::CONFLICT, ""),
        AccountError::NotFound => (StatusCode::NOT_FOUND, ""),
        AccountError::KeyNotAccepted => (StatusCode::UNAUTHORIZED, ""),
        AccountError::ClonedAuthenticator { .. } => (StatusCode::FORBIDDEN, ""),
        AccountError::PhishingResistantFactorNeeded | AccountError::FactorRequiredByApplication { .. } => (StatusCode::FORBIDDEN, ""),
        AccountError::SignInDenied | AccountError::AccountDisabled => (StatusCode::FORBIDDEN, ""),
        AccountError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, ""),
        AccountError::WebauthnUnavailable => (StatusCode::NOT_IMPLEMENTED, ""),
        AccountError::Delivery(_) | AccountError::Busy => (StatusCode::SERVICE_UNAVAILABLE, ""),
        AccountError::Store(StoreError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, ""),
        AccountError::Hashing(_) | AccountError::Store(_) => return None,
    })
}

/// Seconds to wait before trying again while the database is unreachable:
/// a restarted or failed-over PostgreSQL is usually back within seconds.
const UNAVAILABLE_RETRY_AFTER_SECS: i64 = 5;

/// Seconds a client should wait, for errors that have such a figure.
pub fn retry_after(e: &AccountError) -> Option<i64> {
    match e {
        AccountError::Locked { retry_after_secs }
        | AccountError::CodeSentRecently { retry_after_secs }
        | AccountError::TooManyCodes { retry_after_secs }
        | AccountError::TooManyPushes { retry_after_secs } => Some(*retry_after_secs),
        // The waiting room empties in well under a second at the bound; one
        // second spreads the retries (RFC 9110 §10.2.3).
        AccountError::Busy => Some(1),
        AccountError::Store(StoreError::Unavailable(_)) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
        _ => None,
    }
}

/// Adds `Retry-After` to a response.
pub fn with_retry_after(mut response: Response, secs: Option<i64>) -> Response {
    if let Some(v) = secs.and_then(|s| HeaderValue::from_str(&s.max(1).to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// What a domain error says to the person, in the catalogs' words.
pub fn account_error_msg(e: &AccountError) -> Msg {
    use portcullis_core::password::PasswordProblem as P;
    let minutes = |secs: i64| (secs.max(1) + 59) / 60;
    match e {
        AccountError::InvalidEmail(_) => Msg::new("error-invalid-email"),
        AccountError::WeakPassword(P::TooShort(n)) => Msg::new("error-password-too-short").arg("count", *n),
        AccountError::WeakPassword(P::TooLong(n)) => Msg::new("error-password-too-long").arg("count", *n),
        AccountError::WeakPassword(P::TooWeak(advice)) => {
            let advice: Vec<String> = advice.iter().map(|id| portcullis_i18n::plain(crate::i18n::current(), id)).collect();
            Msg::new("error-password-too-weak").arg("detail", advice.join(" "))
        }
        AccountError::WeakPassword(P::Breached) => Msg::new("error-password-breached"),
        AccountError::PasswordMismatch => Msg::new("error-password-mismatch"),
        AccountError::InvalidCredentials => Msg::new("error-invalid-credentials"),
        AccountError::WrongCurrentPassword => Msg::new("error-wrong-current-password"),
        AccountError::InvalidPassword => Msg::new("error-invalid-password"),
        AccountError::Locked { retry_after_secs } => Msg::new("error-locked").arg("minutes", minutes(*retry_after_secs)),
        AccountError::EmailNotVerified => Msg::new("error-email-not-verified"),
        AccountError::InvalidLink => Msg::new("error-invalid-link"),
        AccountError::SetupLinkUnusable => Msg::new("error-setup-link-unusable"),
        AccountError::EmailInUse => Msg::new("error-email-in-use"),
        AccountError::InvalidCode => Msg::new("error-invalid-code"),
        AccountError::KeyNotAccepted => Msg::new("error-key-not-accepted"),
        AccountError::ClonedAuthenticator { name } => Msg::new("error-cloned-authenticator").arg("name", name),
        AccountError::WebauthnUnavailable => Msg::new("error-webauthn-unavailable"),
        AccountError::PhishingResistantFactorNeeded => Msg::new("error-phishing-resistant-needed"),
        AccountError::InvalidPhoneNumber(_) => Msg::new("error-invalid-phone"),
        AccountError::SmsDelivery(_) => Msg::new("error-sms-delivery"),
        AccountError::CodeSentRecently { retry_after_secs } => Msg::new("error-code-sent-recently").arg("seconds", *retry_after_secs),
        AccountError::TooManyCodes { retry_after_secs } => Msg::new("error-too-many-codes").arg("minutes", minutes(*retry_after_secs)),
        AccountError::TooManyPushes { retry_after_secs } => Msg::new("error-too-many-pushes").arg("minutes", minutes(*retry_after_secs)),
        AccountError::PushRequestEnded => Msg::new("error-push-request-ended"),
        AccountError::DeviceNotRecognised => Msg::new("error-device-not-recognised"),
        AccountError::WrongNumber => Msg::new("error-wrong-number"),
        AccountError::ReauthenticationRequired => Msg::new("error-reauthentication-required"),
        AccountError::SecondFactorNeeded => Msg::new("error-second-factor-needed"),
        AccountError::SignInExpired => Msg::new("error-sign-in-expired"),
        AccountError::StepNotAllowed => Msg::new("error-step-not-allowed"),
        AccountError::TooManyAnswers => Msg::new("error-too-many-answers"),
        AccountError::NoUsableFactor => Msg::new("error-no-usable-factor"),
        AccountError::RecoveryCodesNeedAFactor => Msg::new("error-recovery-codes-need-a-factor"),
        AccountError::LastFactor => Msg::new("error-last-factor"),
        // Our own refusals name a message; the protocol's (client metadata) are said as they are.
        AccountError::InvalidInput(why) if portcullis_i18n::exists(why) => Msg::owned(why.clone()),
        AccountError::InvalidInput(why) => Msg::new("error-invalid-input").arg("detail", why),
        AccountError::FactorRequiredByApplication { factors } => {
            let words: Vec<String> = factors.iter().map(|k| tr(k.words())).collect();
            Msg::new("error-factor-required-by-application").arg("methods", crate::i18n::join_words(&words, "list-or"))
        }
        AccountError::AccountDisabled => Msg::new("error-account-disabled"),
        AccountError::SignInDenied => Msg::new("error-sign-in-denied"),
        AccountError::NotFound => Msg::new("error-not-found"),
        AccountError::InvalidName => Msg::new("error-invalid-name"),
        AccountError::Delivery(_) => Msg::new("error-email-delivery"),
        AccountError::Busy => Msg::new("error-busy"),
        AccountError::Store(StoreError::Unavailable(_)) => Msg::new("error-database-unavailable"),
        AccountError::Hashing(_) | AccountError::Store(_) => Msg::new("error-internal"),
    }
}

impl AppError {
    /// What the error page says.
    fn msg(&self) -> Msg {
        match self {
            Self::Account(e) => account_error_msg(e),
            Self::BadRequest(m) | Self::Forbidden(m) => m.clone(),
            Self::UnsupportedMediaType => Msg::new("error-unsupported-media-type"),
            Self::PayloadTooLarge => Msg::new("error-payload-too-large"),
            Self::TooManyRequests { retry_after_secs } => Msg::new("error-too-many-requests").arg("seconds", *retry_after_secs),
            Self::NotFound => Msg::new("error-page-not-found"),
            Self::SignInRequired { .. } => Msg::new("error-sign-in-required"),
            Self::Internal(_) => Msg::new("error-internal"),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Account(e) => form_problem(e).map(|(s, _)| s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::SignInRequired { .. } => StatusCode::SEE_OTHER,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::SignInRequired { next } = self {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            return crate::request::see_other(&format!("/login?next={next}"));
        }
        if let Self::Account(AccountError::ReauthenticationRequired) = self {
            // Forms answer with the sign-in page; the WebAuthn options endpoint answers JSON (challenge_json).
            return crate::request::see_other("/login?reauth=security&next=%2Faccount%2Fsecurity");
        }
        if let Self::Account(AccountError::SecondFactorNeeded) = self {
            // The security page itself detours to the second step a rule skipped.
            return crate::request::see_other("/account/security");
        }
        let status = self.status();
        // An overload refusal is expected under load: not an error to log each time.
        if status.is_server_error() && !matches!(self, Self::Account(AccountError::Busy)) {
            tracing::error!(error = %self, "request failed");
        }
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR { tr("error-internal") } else { tr(self.msg()) };
        let retry = match &self {
            Self::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            Self::Account(e) => retry_after(e),
            _ => None,
        };
        with_retry_after(pages::error_page(status, &message), retry)
    }
}

/// An OAuth error as the JSON body RFC 6749 §5.2 and RFC 6750 §3 prescribe.
/// `basic_auth` says whether the client authenticated with HTTP Basic (then a
/// 401 carries a `Basic` challenge).
pub fn oauth_error_response(e: OidcError, basic_auth: bool) -> Response {
    let (code, description) = match e {
        OidcError::OAuth(o) => (o.code, o.description),
        OidcError::NotFound(what) => {
            let body = serde_json::json!({ "error": "not_found", "error_description": what });
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        }
        OidcError::Store(StoreError::Unavailable(e)) => {
            tracing::error!(error = %e, "OAuth request failed: the database is unavailable");
            (ErrorCode::TemporarilyUnavailable, "the server cannot reach its database now; try again in a moment".to_owned())
        }
        other => {
            tracing::error!(error = %other, "OAuth request failed");
            (ErrorCode::ServerError, "the server could not complete the request".to_owned())
        }
    };
    let status = match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = serde_json::json!({ "error": code.as_str(), "error_description": description });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if code == ErrorCode::TemporarilyUnavailable {
        response = with_retry_after(response, Some(UNAVAILABLE_RETRY_AFTER_SECS));
    }
    let headers = response.headers_mut();
    match code {
        ErrorCode::InvalidToken => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#));
        }
        ErrorCode::InvalidClient if basic_auth => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="portcullis""#));
        }
        _ => {}
    }
    response
}

impl From<OidcError> for AppError {
    /// For browser-facing OIDC pages: protocol errors become a 400 page.
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::OAuth(o) => AppError::BadRequest(Msg::new("error-oauth-refused").arg("detail", o.description)),
            OidcError::Store(e @ StoreError::Unavailable(_)) => AppError::Account(AccountError::Store(e)),
            other => AppError::Internal(other.to_string()),
        }
    }
}
