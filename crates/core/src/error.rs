//! Domain errors. The server maps each to one HTTP response in one place.

pub use crate::io::StoreError;
use crate::password::PasswordProblem;

/// Why an account operation did not happen. Messages are safe to show users.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email address is not valid.
    #[error(transparent)]
    InvalidEmail(#[from] crate::email::InvalidEmail),
    /// The new password breaks the password policy.
    #[error(transparent)]
    WeakPassword(#[from] PasswordProblem),
    /// Password and confirmation differ.
    #[error("The passwords do not match.")]
    PasswordMismatch,
    /// Wrong email or password (deliberately not saying which).
    #[error("Incorrect email or password.")]
    InvalidCredentials,
    /// The current password given to change it was wrong.
    #[error("Your current password is incorrect.")]
    WrongCurrentPassword,
    /// The password asked for again (a step-up) was wrong.
    #[error("That password is incorrect.")]
    InvalidPassword,
    /// Too many failed attempts for this account.
    #[error("Too many failed attempts. Try again in {} minute(s).", minutes_until(*.retry_after_secs))]
    Locked {
        /// Seconds until the lock lifts.
        retry_after_secs: i64,
    },
    /// Password was right, but the address has not been confirmed yet.
    #[error("Confirm your email address first: we have sent you a new link.")]
    EmailNotVerified,
    /// A link (verification or reset) is unknown, used or expired.
    #[error("This link is invalid or has expired. Request a new one.")]
    InvalidLink,
    /// A setup link is unknown, used or expired, or an administrator exists already.
    #[error("This setup link has expired or was used, or an administrator exists already.")]
    SetupLinkUnusable,
    /// The first administrator's address belongs to an account already.
    #[error("An account with this address exists already.")]
    EmailInUse,
    /// A second-factor code was wrong or already used.
    #[error("That code is not right, or it was already used. Check your app and try again.")]
    InvalidCode,
    /// A security key or passkey answer was not accepted.
    #[error("Your security key or passkey was not accepted. Try again, or use another method.")]
    KeyNotAccepted,
    /// A security key's signature counter went backwards; it has been disabled.
    #[error(
        "Your security key \"{name}\" reported a use count lower than before, which can mean it was copied. We have disabled it: sign in another way, then check your security page."
    )]
    ClonedAuthenticator {
        /// The credential's name.
        name: String,
    },
    /// Security keys and passkeys cannot work with this server's address (an IP address, not a host name).
    #[error("Security keys and passkeys are not available on this server.")]
    WebauthnUnavailable,
    /// The application asked for a security key or passkey, and the user has none.
    #[error("This application requires a security key or passkey. Add one on your security page, then try again.")]
    PhishingResistantFactorNeeded,
    /// A phone number that is not in international form.
    #[error(transparent)]
    InvalidPhoneNumber(#[from] crate::sms::InvalidPhoneNumber),
    /// A text message could not be sent.
    #[error("We could not send the text message. Try again later, or use another method.")]
    SmsDelivery(#[source] crate::sms::SmsError),
    /// A code was sent moments ago.
    #[error("We sent you a code moments ago. Wait {retry_after_secs} seconds before asking for another.")]
    CodeSentRecently {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// The hourly cap on sent codes is reached.
    #[error("Too many codes were sent. Try again in {} minute(s), or use another method.", minutes_until(*.retry_after_secs))]
    TooManyCodes {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// The push-fatigue limit (requests per minute or per hour) is reached.
    #[error("Too many sign-in requests were sent to your phone. Try again in {} minute(s), or use another method.", minutes_until(*.retry_after_secs))]
    TooManyPushes {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// A sign-in request was answered already, ended, or expired.
    #[error("This sign-in request has ended: it was answered already, or it expired.")]
    PushRequestEnded,
    /// A companion's call was not signed by a paired phone's key.
    #[error("This phone is not set up for sign-in approvals, or its request was not signed by it.")]
    DeviceNotRecognised,
    /// The phone picked another number than the sign-in page showed: the sign-in ended.
    #[error("That was not the number on the sign-in page. The sign-in was stopped; start it again if it was you.")]
    WrongNumber,
    /// A change to how the account signs in, from a session whose last sign-in step is not recent.
    #[error("For your security, sign in again to change how you sign in.")]
    ReauthenticationRequired,
    /// A change to the account's factors from a session that has not proven
    /// the account's second factor (a rule let the password alone in).
    #[error("For your security, confirm your second factor to change how you sign in.")]
    SecondFactorNeeded,
    /// The sign-in in progress lapsed or was already completed.
    #[error("This sign-in has expired. Please sign in again.")]
    SignInExpired,
    /// A request asked a sign-in in progress for a step it does not allow.
    #[error("This step is not part of your sign-in. Start again from the sign-in page.")]
    StepNotAllowed,
    /// A sign-in in progress took its last wrong answer and is gone.
    #[error("Too many wrong answers for this sign-in. Sign in again to get a new one.")]
    TooManyAnswers,
    /// No second factor of the account can be used or set up here.
    #[error("None of your sign-in methods can be used here, and none can be set up. Contact your administrator.")]
    NoUsableFactor,
    /// Recovery codes asked for by an account without a second factor.
    #[error("Set up two-step verification first: recovery codes stand in for a second factor.")]
    RecoveryCodesNeedAFactor,
    /// Removing this factor would leave an account that must use MFA without one.
    #[error("You cannot remove your last sign-in method while two-step verification is required for your account. Add another one first.")]
    LastFactor,

    /// A value an operator typed is not acceptable: a message id of the
    /// catalogs, or the protocol's own words (client metadata) when it is none.
    #[error("{0}")]
    InvalidInput(String),

    /// The application accepts only second factors the user does not have.
    #[error("This application accepts only {} as a second step. Add one on your security page, then try again.", names(.factors))]
    FactorRequiredByApplication {
        /// The factors it accepts.
        factors: Vec<crate::methods::FactorKey>,
    },

    /// An operator disabled the account.
    #[error("This account is disabled. Contact your administrator.")]
    AccountDisabled,

    /// An adaptive rule refuses sign-ins like this one.
    #[error("Signing in from here is not allowed by your organisation's security policy. Contact your administrator.")]
    SignInDenied,
    /// No such credential or user.
    #[error("Not found.")]
    NotFound,
    /// A name given by the user is unusable.
    #[error("Enter a name of 1 to 64 characters.")]
    InvalidName,
    /// Mail could not be sent.
    #[error("We could not send the email. Try again later.")]
    Delivery(#[source] crate::io::MailError),
    /// Password hashing failed (misconfiguration or a stored hash we cannot parse).
    #[error("internal error: {0}")]
    Hashing(String),
    /// Too many passwords are waiting to be checked: try again in a moment.
    /// Nothing was counted (no failed attempt, no code spent).
    #[error("Many people are signing in right now. Try again in a moment.")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::password::HashError> for AccountError {
    fn from(e: crate::password::HashError) -> Self {
        match e {
            crate::password::HashError::Busy => Self::Busy,
            other => Self::Hashing(other.to_string()),
        }
    }
}

fn minutes_until(secs: i64) -> i64 {
    (secs.max(1) + 59) / 60
}

/// Factor names for a log line ("webauthn or totp"); pages put them in words.
fn names(factors: &[crate::methods::FactorKey]) -> String {
    factors.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
}
