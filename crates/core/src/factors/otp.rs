//! What one-time codes sent to the user share, whichever way they go
//! ([`super::email`], [`super::sms`]).
//!
//! A code is 6 digits from the OS CSPRNG, valid for `ttl` seconds, stored
//! only as a keyed HMAC tag, and dead after `max_attempts` wrong tries; one
//! conditional `UPDATE` both spends a right answer and counts a wrong one, so
//! concurrent guesses cannot exceed the limit. Every code records what it is
//! for ([`CodePurpose`]) and the credential it was sent to: a code confirming
//! a new phone number never completes a sign-in, and a sign-in code is
//! accepted only if it went to a confirmed number. Sending a new code kills
//! the previous one of the same purpose. A resend cooldown and hourly caps
//! per user, per destination and per client address (database counters, so
//! they hold across processes) stop a script from sending thousands of
//! messages.

use rand::Rng;

use super::{FactorContext, FactorResult, MfaStore, Verification};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::messages::Message;
use crate::rate_limit::SlidingQuota;
use crate::secrets::MacKey;
use crate::sms::PhoneNumber;
use crate::user::{User, UserId};

/// Where a code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpChannel {
    /// The account's verified email address.
    Email,
    /// A confirmed phone number.
    Sms,
}

impl OtpChannel {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// Limits on sent codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpSettings {
    /// Users may receive codes by email.
    pub email_enabled: bool,
    /// Users may sign in with an emailed code instead of a password.
    pub email_passwordless: bool,
    /// Email codes only for users who also have another factor (Auth0's rule:
    /// email is a fallback, not the only factor).
    pub email_requires_other_factor: bool,
    /// Whether an emailed code counts as a possession factor (NIST SP 800-63B
    /// §5.1.3.1 excludes email as an out-of-band authenticator; `false`
    /// follows it: password and emailed code are then not multi-factor).
    pub email_counts_as_mfa: bool,
    /// After a password reset by emailed link, this many seconds during which
    /// an emailed code completes no second step (the same mailbox set the password).
    pub email_blocked_after_reset: i64,
    /// Users may add phone numbers and receive codes by text message.
    pub sms_enabled: bool,
    /// Lifetime of a code (seconds).
    pub ttl: i64,
    /// Wrong tries before a code dies.
    pub max_attempts: u32,
    /// Seconds between two sends to one user on one channel for one purpose.
    pub resend_cooldown: i64,
    /// Codes per user and channel per hour, for each kind of requester.
    pub per_user_per_hour: u32,
    /// Codes per destination (address, number) per hour, for each kind of
    /// requester; also the hourly cap on reset, verification and sign-up
    /// mails to one mailbox.
    pub per_destination_per_hour: u32,
    /// Codes sent per client address per hour (every channel and account).
    pub per_client_per_hour: u32,
    /// Phone numbers an account may add per day.
    pub phones_per_day: u32,
}

impl Default for OtpSettings {
    fn default() -> Self {
        Self {
            email_enabled: true,
            email_passwordless: false,
            email_requires_other_factor: true,
            email_counts_as_mfa: true,
            email_blocked_after_reset: 7 * 86_400,
            sms_enabled: true,
            ttl: 300,
            max_attempts: 5,
            resend_cooldown: 30,
            per_user_per_hour: 10,
            per_destination_per_hour: 10,
            per_client_per_hour: 30,
            phones_per_day: 3,
        }
    }
}

/// A sent code as stored (never the code itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode {
    /// Identifier.
    pub id: String,
    /// Whose.
    pub user_id: UserId,
    /// Channel.
    pub channel: OtpChannel,
    /// A keyed digest of where it went ([`destination_digest`]).
    pub destination: String,
    /// What it is for.
    pub purpose: CodePurpose,
    /// The credential it was sent to (a phone number; `None` for the account's email address).
    pub credential_id: Option<String>,
    /// Keyed tag of the code.
    pub tag: String,
    /// When it was sent.
    pub created_at: UnixTime,
    /// When it lapses.
    pub expires_at: UnixTime,
}

/// A fresh 6-digit code, uniform over 000000–999999.
pub fn generate_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The stored tag of `code` for `user` on `channel` for `purpose`.
pub fn tag(key: &MacKey, user: UserId, (channel, purpose): (OtpChannel, CodePurpose), code: &str) -> String {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    key.tag("one-time-code", format!("{user}:{}:{}:{digits}", channel.as_str(), purpose.as_str()).as_bytes())
}

/// The caps on codes sent are per hour, in a sliding window.
const HOUR: i64 = 3600;

/// The hourly quota of codes under `key`.
pub(crate) fn hourly(key: String, cap: u32) -> SlidingQuota {
    SlidingQuota { key, cap, window: HOUR }
}

/// What a sent code is for: it picks the message's words, and only a code
/// for the same purpose is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// A second step (or a step-up) of a sign-in.
    SignIn,
    /// The first step of a sign-in by emailed code, which anyone who knows
    /// the address may ask for: kept apart so a stranger's request neither
    /// replaces the owner's second-step code nor holds it in its cooldown.
    FirstStep,
    /// Confirming a new phone number.
    ConfirmPhone,
}

impl CodePurpose {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::FirstStep => "first_step",
            Self::ConfirmPhone => "confirm_phone",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SignIn, Self::FirstStep, Self::ConfirmPhone].into_iter().find(|p| p.as_str() == s)
    }
}

/// An answer to check against the user's live code.
#[derive(Debug, Clone)]
pub struct CodeAnswer<'a> {
    /// Whose code.
    pub user: UserId,
    /// Where it was sent.
    pub channel: OtpChannel,
    /// What it must be for.
    pub purpose: CodePurpose,
    /// The credential it must have gone to: `Some(id)` exactly that one (a
    /// number being confirmed); `None` the account's email address or any of
    /// its confirmed phone numbers.
    pub credential: Option<&'a str>,
    /// Keyed tag of the answer.
    pub tag: &'a str,
    /// Wrong tries after which the code is dead.
    pub max_attempts: u32,
    /// Now.
    pub now: UnixTime,
}

/// What checking an answer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code, now spent; the credential it went to.
    Spent {
        /// The phone credential, if any.
        credential: Option<String>,
    },
    /// Wrong, dead, expired, for another purpose or another destination.
    Wrong,
}

impl From<CodeCheck> for Verification {
    fn from(c: CodeCheck) -> Self {
        match c {
            CodeCheck::Spent { credential } => Verification::Accepted { credential },
            CodeCheck::Wrong => Verification::Rejected,
        }
    }
}

/// Who asks for a code, from which client address (its rate-limit key, see
/// [`crate::rate_limit::client_key`]). The two kinds have quotas of their
/// own, so a stranger asking for emailed sign-in codes cannot spend the
/// allowance of the account's owner signing in with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// Someone who has proven nothing yet (the first step of a sign-in by emailed code).
    Anonymous(&'a str),
    /// A sign-in past its password, or a signed-in user.
    Proven(&'a str),
}

impl Requester<'_> {
    fn parts(self) -> (&'static str, String) {
        match self {
            Self::Anonymous(a) => ("anonymous", crate::rate_limit::client_key(a)),
            Self::Proven(a) => ("proven", crate::rate_limit::client_key(a)),
        }
    }
}

/// A keyed digest of where a code went: what is stored and counted instead
/// of the number or address itself (personal data, sealed elsewhere).
pub fn destination_digest(key: &MacKey, destination: &str) -> String {
    key.tag("code-destination", destination.as_bytes())
}

/// Makes a new code for `destination` (the credential `credential`, for a
/// phone), after the cooldown and every cap: per client address (all
/// channels and accounts), per account and channel, and per destination,
/// those two per kind of [`Requester`]; and `extra` (one more quota the
/// caller counts with them, all or nothing). The code is stored, the earlier
/// one of its purpose killed; the message to send is returned.
pub(super) async fn issue_code<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    (channel, destination, credential): (OtpChannel, &str, Option<&str>),
    (purpose, extra): (CodePurpose, Option<SlidingQuota>),
    now: UnixTime,
) -> FactorResult<Message> {
    let limits = ctx.otp;
    if let Some(last) = ctx.store.last_otp_sent_at(user.id, (channel, purpose)).await?
        && now - last < limits.resend_cooldown
    {
        crate::metrics::code_refused(channel.as_str(), "cooldown");
        return Err(AccountError::CodeSentRecently { retry_after_secs: limits.resend_cooldown - (now - last) });
    }
    let (kind, address) = ctx.requester.unwrap_or(Requester::Proven("unknown")).parts();
    let to = destination_digest(ctx.recovery_key, destination);
    let mut quotas = vec![
        hourly(format!("otp-client:{address}"), limits.per_client_per_hour),
        hourly(format!("otp-user:{}:{}:{kind}", user.id, channel.as_str()), limits.per_user_per_hour),
        hourly(format!("otp-to:{to}:{kind}"), limits.per_destination_per_hour),
    ];
    quotas.extend(extra);
    ctx.store.take_send_quotas(&quotas, now).await?.map_err(|retry_after_secs| {
        crate::metrics::code_refused(channel.as_str(), "cap");
        AccountError::TooManyCodes { retry_after_secs }
    })?;
    let code = generate_code();
    let record = OneTimeCode {
        id: uuid::Uuid::new_v4().simple().to_string(),
        user_id: user.id,
        channel,
        destination: to,
        purpose,
        credential_id: credential.map(str::to_owned),
        tag: tag(ctx.recovery_key, user.id, (channel, purpose), &code),
        created_at: now,
        expires_at: now + limits.ttl,
    };
    // Stored (and the previous code killed) before sending, so a code in a message always works.
    ctx.store.replace_otp_code(&record).await?;
    crate::metrics::code_sent(channel.as_str());
    let minutes = (limits.ttl + 59) / 60;
    Ok(match purpose {
        CodePurpose::SignIn | CodePurpose::FirstStep => Message::SignInCode { code, minutes },
        CodePurpose::ConfirmPhone => Message::PhoneConfirmationCode { code, minutes },
    })
}

/// Makes a code (see [`issue_code`]) and sends it at once.
pub(super) async fn send_code<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    (channel, destination, credential): (OtpChannel, &str, Option<&str>),
    (purpose, extra): (CodePurpose, Option<SlidingQuota>),
    now: UnixTime,
) -> FactorResult<()> {
    let message = issue_code(ctx, user, (channel, destination, credential), (purpose, extra), now).await?;
    let sent = match channel {
        OtpChannel::Email => ctx.messenger.email(destination, user.language.unwrap_or_default(), &message).await,
        OtpChannel::Sms => ctx.messenger.text(PhoneNumber::parse(destination)?, user.language.unwrap_or_default(), &message).await,
    };
    sent.inspect_err(|e| tracing::error!(error = %e, user = %user.id, channel = channel.as_str(), "one-time code not delivered"))
}

/// Checks a code sent for `purpose` (to `credential`, when given): spent
/// once; a wrong one counts towards the code's attempt limit.
pub(super) async fn check_code<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    (channel, purpose, credential): (OtpChannel, CodePurpose, Option<&str>),
    code: &str,
    now: UnixTime,
) -> FactorResult<Verification> {
    let t = tag(ctx.recovery_key, user.id, (channel, purpose), code);
    let answer = CodeAnswer { user: user.id, channel, purpose, credential, tag: &t, max_attempts: ctx.otp.max_attempts, now };
    Ok(ctx.store.consume_otp_code(&answer).await?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..200).map(|_| generate_code()).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.chars().all(|d| d.is_ascii_digit())));
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert!(unique.len() > 190, "a CSPRNG rarely repeats in 200 draws of a million");
    }

    #[test]
    fn tags_bind_user_channel_and_purpose_and_ignore_spacing() {
        let key = MacKey::new([3; 32]);
        let (a, b) = (UserId::new(), UserId::new());
        let email = (OtpChannel::Email, CodePurpose::SignIn);
        assert_eq!(tag(&key, a, email, "123 456"), tag(&key, a, email, "123456"));
        assert_ne!(tag(&key, a, email, "123456"), tag(&key, b, email, "123456"));
        assert_ne!(tag(&key, a, email, "123456"), tag(&key, a, email, "123457"));
        assert_ne!(tag(&key, a, email, "123456"), tag(&key, a, (OtpChannel::Sms, CodePurpose::SignIn), "123456"));
        assert_ne!(
            tag(&key, a, (OtpChannel::Sms, CodePurpose::SignIn), "123456"),
            tag(&key, a, (OtpChannel::Sms, CodePurpose::ConfirmPhone), "123456"),
            "a confirmation code is not a sign-in code"
        );
    }
}
