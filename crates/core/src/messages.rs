//! Messages to users. The domain says what a message is about ([`Message`]);
//! the words come from templates ([`MessageTemplates`], minijinja files the
//! operator may override, in `portcullis-delivery`); the transports
//! ([`Mailer`], [`SmsSender`]) deliver them. [`Messenger`] ties the three.

use std::sync::Arc;

use crate::Language;
use crate::error::AccountError;
use crate::io::BoxFuture;
pub use crate::io::MailError;
use crate::sms::{OutgoingSms, PhoneNumber, SmsError, SmsSender};

/// What the domain wants to tell a user. The variant's fields are the only
/// values a template sees (besides the product name and site): no secret
/// beyond a one-time code or link ever reaches a template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Confirm a new account's address.
    VerifyEmail {
        /// The single-use confirmation link.
        link: String,
        /// Its lifetime.
        hours: i64,
    },
    /// Someone tried to sign up with an address that has an account.
    SignUpAttempt,
    /// A password-reset link.
    PasswordReset {
        /// The single-use reset link.
        link: String,
        /// Its lifetime.
        minutes: i64,
    },
    /// The password was changed.
    PasswordChanged,
    /// A one-time sign-in code (second step or passwordless).
    SignInCode {
        /// The code.
        code: String,
        /// Its lifetime.
        minutes: i64,
    },
    /// A code confirming a newly added phone number.
    PhoneConfirmationCode {
        /// The code.
        code: String,
        /// Its lifetime.
        minutes: i64,
    },
    /// A sign-in method was added.
    FactorAdded {
        /// What kind, as a message id (`FactorKind::label`: "kind-passkey", …).
        method: String,
        /// The name the user gave it.
        name: String,
    },
    /// A sign-in method was removed.
    FactorRemoved {
        /// Its name.
        name: String,
    },
    /// A security key or passkey looked cloned and was disabled.
    AuthenticatorCloned {
        /// Its name.
        name: String,
    },
    /// A recovery code was used.
    RecoveryCodeUsed {
        /// Codes still unused.
        left: u32,
    },
    /// A sign-in from a browser this account never used before.
    NewDeviceSignIn {
        /// The browser's `User-Agent` (templates name it: `device_name(browser)`).
        browser: String,
        /// Source address.
        ip: String,
        /// Country, when a GeoIP database knows it (empty otherwise).
        country: String,
    },
    /// A sign-in request was denied on the owner's phone ("this wasn't me").
    SignInDeniedOnPhone {
        /// The browser's `User-Agent` that asked (templates name it: `device_name(browser)`).
        browser: String,
        /// Its address.
        ip: String,
    },
    /// Repeated failures locked the account for a while.
    AccountLocked {
        /// How long the lock lasts.
        minutes: i64,
    },
}

impl Message {
    /// Stable name; also the template file name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::SignUpAttempt => "sign_up_attempt",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::SignInCode { .. } => "sign_in_code",
            Self::PhoneConfirmationCode { .. } => "phone_confirmation_code",
            Self::FactorAdded { .. } => "factor_added",
            Self::FactorRemoved { .. } => "factor_removed",
            Self::AuthenticatorCloned { .. } => "authenticator_cloned",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::NewDeviceSignIn { .. } => "new_device_sign_in",
            Self::SignInDeniedOnPhone { .. } => "sign_in_denied_on_phone",
            Self::AccountLocked { .. } => "account_locked",
        }
    }

    /// Whether this message can go by email (then it has subject, text and HTML templates).
    pub fn by_email(&self) -> bool {
        !matches!(self, Self::PhoneConfirmationCode { .. })
    }

    /// Whether this message can go by text message (then it has an SMS template).
    pub fn by_sms(&self) -> bool {
        matches!(self, Self::SignInCode { .. } | Self::PhoneConfirmationCode { .. })
    }

    /// The one link the message is about, if any (the development outbox logs it).
    pub fn link(&self) -> Option<&str> {
        match self {
            Self::VerifyEmail { link, .. } | Self::PasswordReset { link, .. } => Some(link),
            _ => None,
        }
    }

    /// One message of each kind with sample values, to check templates at start-up.
    pub fn examples() -> Vec<Message> {
        let link = "https://id.example.com/verify-email?token=EXAMPLE".to_owned();
        vec![
            Self::VerifyEmail { link: link.clone(), hours: 24 },
            Self::SignUpAttempt,
            Self::PasswordReset { link, minutes: 30 },
            Self::PasswordChanged,
            Self::SignInCode { code: "123456".into(), minutes: 5 },
            Self::PhoneConfirmationCode { code: "123456".into(), minutes: 5 },
            Self::FactorAdded { method: "kind-totp".into(), name: "Phone".into() },
            Self::FactorRemoved { name: "Phone".into() },
            Self::AuthenticatorCloned { name: "YubiKey".into() },
            Self::RecoveryCodeUsed { left: 9 },
            Self::NewDeviceSignIn {
                browser: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into(),
                ip: "192.0.2.1".into(),
                country: "GB".into(),
            },
            Self::SignInDeniedOnPhone {
                browser: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into(),
                ip: "192.0.2.1".into(),
            },
            Self::AccountLocked { minutes: 15 },
        ]
    }
}

/// A message in words, ready for a mail transport.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutgoingEmail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML alternative body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The one link the message is about, if any (logged by the outbox).
    pub link: Option<String>,
}

/// A rendered email: what the templates produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line (one line).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// A template could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("message template {template}: {reason}")]
pub struct TemplateError {
    /// Which template.
    pub template: String,
    /// What went wrong.
    pub reason: String,
}

/// Sends email.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one message or says why it could not.
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), MailError>>;
}

/// Turns messages into words, in the recipient's language.
pub trait MessageTemplates: Send + Sync + 'static {
    /// Subject, text and HTML of an email.
    fn email(&self, message: &Message, language: Language) -> Result<RenderedEmail, TemplateError>;
    /// The body of a text message.
    fn text_message(&self, message: &Message, language: Language) -> Result<String, TemplateError>;
}

/// Writes and sends messages: templates plus the mail and SMS transports.
pub struct Messenger {
    templates: Box<dyn MessageTemplates>,
    mailer: Arc<dyn Mailer>,
    sms: Box<dyn SmsSender>,
}

impl Messenger {
    /// Ties templates to transports.
    pub fn new(templates: Box<dyn MessageTemplates>, mailer: Arc<dyn Mailer>, sms: Box<dyn SmsSender>) -> Self {
        Self { templates, mailer, sms }
    }

    /// Emails `message` to `to`, in `language`.
    pub async fn email(&self, to: &str, language: Language, message: &Message) -> Result<(), AccountError> {
        let words = self.templates.email(message, language).map_err(|e| AccountError::Delivery(MailError(e.to_string())))?;
        let email = OutgoingEmail {
            to: to.to_owned(),
            subject: words.subject,
            text: words.text,
            html: Some(words.html),
            link: message.link().map(str::to_owned),
        };
        self.mailer.send(&email).await.map_err(AccountError::Delivery)
    }

    /// Texts `message` to `to`, in `language`.
    pub async fn text(&self, to: PhoneNumber, language: Language, message: &Message) -> Result<(), AccountError> {
        let body = self.templates.text_message(message, language).map_err(|e| AccountError::SmsDelivery(SmsError(e.to_string())))?;
        self.sms.send(&OutgoingSms { to, body }).await.map_err(AccountError::SmsDelivery)
    }
}
