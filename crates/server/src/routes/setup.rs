//! What setting up a factor looks like in both places it happens: on the
//! security page (a session) and during a sign-in that waits for a first
//! factor (the sign-in cookie). The forms, the prompts' parts and the pages
//! they fill are the same; only the core call and where the page posts differ.

use minijinja::context;
use portcullis_core::AccountError;
use portcullis_core::factors::{EnrollmentPrompt, FactorKind, PublicKeyChallenge, SharedSecretPrompt};
use serde::Deserialize;

use crate::error::AppError;
use crate::pages::qr_svg;

/// The name an authenticator app gets unless the user gives another.
/// The name an authenticator app gets until the user gives it one, in their language.
pub(super) fn default_device_name() -> String {
    crate::i18n::tr("totp-default-name")
}
/// The name a phone number gets.
pub(super) const DEFAULT_PHONE_NAME: &str = "Phone";

/// The authenticator-app part of an enrollment prompt.
pub(super) fn shared_secret(prompt: EnrollmentPrompt) -> Result<SharedSecretPrompt, AppError> {
    match prompt {
        EnrollmentPrompt::SharedSecret(p) => Ok(p),
        _ => Err(AppError::Internal("an authenticator app enrollment returned another kind of prompt".into())),
    }
}

/// `intro`: a message id, said first (the setup during a sign-in).
pub(super) fn setup_context(
    setup: &SharedSecretPrompt,
    name: &str,
    action: &str,
    next: Option<&str>,
    intro: Option<&'static str>,
) -> minijinja::Value {
    let intro = intro.map(crate::i18n::tr);
    context! { qr => qr_svg(&setup.uri), secret => &setup.secret, credential_id => &setup.credential_id, name, action, next, intro }
}

/// The confirmation of a setup (an authenticator app, a phone number): which
/// one, the code it shows or received, and the app's name if it has one.
#[derive(Deserialize)]
pub struct SetupForm {
    pub(super) credential_id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) code: String,
    pub(super) next: Option<String>,
}

#[derive(Deserialize)]
pub struct KeyForm {
    /// `security_key` or `passkey`.
    pub(super) kind: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) ceremony: String,
    #[serde(default)]
    pub(super) credential: String,
    pub(super) next: Option<String>,
}

pub(super) fn webauthn_kind(kind: &str) -> Result<FactorKind, AppError> {
    match FactorKind::parse(kind) {
        Some(k @ (FactorKind::SecurityKey | FactorKind::Passkey)) => Ok(k),
        _ => Err(AppError::BadRequest("error-choose-key-kind".into())),
    }
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    pub(super) phone: String,
    pub(super) next: Option<String>,
}

pub(super) fn phone_context(credential_id: &str, destination: &str, action: &str, next: Option<&str>) -> minijinja::Value {
    context! { credential_id, destination, action, next }
}

/// The WebAuthn part of an enrollment prompt.
pub(super) fn public_key(prompt: EnrollmentPrompt) -> Result<PublicKeyChallenge, AppError> {
    match prompt {
        EnrollmentPrompt::PublicKey(challenge) => Ok(challenge),
        _ => Err(AppError::Internal("a WebAuthn enrollment returned another kind of prompt".into())),
    }
}

/// The sent-code part of an enrollment prompt: the setup and where the code went.
pub(super) fn code_sent(prompt: EnrollmentPrompt) -> Result<(String, String), AppError> {
    match prompt {
        EnrollmentPrompt::CodeSent { credential_id, destination } => Ok((credential_id, destination)),
        _ => Err(AppError::Internal("a phone enrollment returned another kind of prompt".into())),
    }
}

/// The pairing part of an enrollment prompt: the companion's link, and for how many minutes it works.
pub(super) fn pairing_link(prompt: EnrollmentPrompt) -> Result<(String, i64), AppError> {
    match prompt {
        EnrollmentPrompt::Pairing { link, minutes, .. } => Ok((link, minutes)),
        _ => Err(AppError::Internal("a phone pairing returned another kind of prompt".into())),
    }
}

/// Whether a phone number's setup failed on something the person can fix
/// (the number, the gateway, the send limits): the form again, with the error.
pub(super) fn phone_form_problem(e: &AccountError) -> bool {
    matches!(
        e,
        AccountError::InvalidPhoneNumber(_)
            | AccountError::SmsDelivery(_)
            | AccountError::CodeSentRecently { .. }
            | AccountError::TooManyCodes { .. }
    )
}

/// A wrong security key or passkey answer reads the same whether the ceremony was unknown or the key refused.
pub(super) fn key_refusal(e: AccountError) -> AccountError {
    if matches!(e, AccountError::NotFound) { AccountError::KeyNotAccepted } else { e }
}
