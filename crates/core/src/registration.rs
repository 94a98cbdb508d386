//! Registration: sign-up, email verification, and the password's life
//! after it (reset by emailed link, change). Link paths come from the
//! settings ([`crate::accounts::AccountSettings`]), so the domain names no route.

use serde_json::json;

use crate::account_store::{EmailLink, LinkPurpose, Stores};
use crate::accounts::capability;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::{AccountError, StoreError};
use crate::messages::Message;
use crate::password::PasswordCheck;
use crate::secrets::{random_token, token_digest};
use crate::sessions::ActiveSession;
use crate::sign_in::Forget;
use crate::user::{User, UserId};

capability!(
    /// Sign-up, email verification, password reset and change.
    Registration,
    registration
);

/// What a person typed into the sign-up form.
#[derive(Debug, Clone)]
pub struct SignUpForm<'a> {
    /// Email, as typed.
    pub email: &'a str,
    /// Display name, possibly empty.
    pub name: &'a str,
    /// Password.
    pub password: &'a str,
    /// Password again.
    pub confirm: &'a str,
    /// The language of the page it was sent from: the account's language
    /// until the user chooses another.
    pub language: crate::Language,
}

impl<S: Stores> Registration<'_, S> {
    /// Checks a new password: the policy (length, zxcvbn), the confirmation,
    /// and the breached-password list (checked last: the online check is a
    /// request, and one it needs only for a password that passed the rest).
    pub(crate) async fn check_new_password(
        &self,
        email: &EmailAddress,
        name: &str,
        password: &str,
        confirm: &str,
    ) -> Result<(), AccountError> {
        let mut hints = vec![email.local_part(), email.as_str()];
        hints.extend(name.split_whitespace());
        self.settings.password_policy.check(password, &hints)?;
        if password != confirm {
            return Err(AccountError::PasswordMismatch);
        }
        if self.breached.is_breached(password).await {
            return Err(crate::password::PasswordProblem::Breached.into());
        }
        Ok(())
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String, AccountError> {
        self.hasher.hash(password).await.map_err(AccountError::from)
    }

    /// Self-service sign-up. The outcome looks the same whether or not the
    /// address already has an account (no enumeration): a new address gets a
    /// verification link, a known one gets a note saying someone tried.
    pub async fn sign_up(&self, form: SignUpForm<'_>, now: UnixTime) -> Result<(), AccountError> {
        let email = EmailAddress::parse(form.email)?;
        let name = form.name.trim();
        self.check_new_password(&email, name, form.password, form.confirm).await?;
        let user = User { language: Some(form.language), ..User::new_account(email.clone(), name, self.hash(form.password).await?, now) };
        match self.store.create_user(&user).await {
            Ok(()) => self.send_verification(&user, now).await,
            // Capped per mailbox and hour (a script could otherwise flood the owner); the page looks the same.
            Err(StoreError::Conflict) if self.mail_allowed(email.as_str(), now).await? => {
                // In the owner's language, not the one of whoever tried.
                let language = self.store.user_by_email(&email).await?.and_then(|u| u.language).unwrap_or_default();
                self.messenger.email(email.as_str(), language, &Message::SignUpAttempt).await
            }
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn issue_link(&self, user: &User, purpose: LinkPurpose, ttl: i64, page: &str, now: UnixTime) -> Result<String, AccountError> {
        let token = random_token();
        self.store
            .replace_email_link(&EmailLink {
                digest: token_digest(&token),
                user_id: user.id,
                purpose,
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        Ok(format!("{page}?token={token}"))
    }

    /// Emails a verification link, within the mailbox's hourly cap: every
    /// correct password of an unverified account asks for one, so whoever
    /// signed up with someone else's address could otherwise flood it.
    pub(crate) async fn send_verification(&self, user: &User, now: UnixTime) -> Result<(), AccountError> {
        if !self.mail_allowed(user.email.as_str(), now).await? {
            return Ok(());
        }
        let link =
            self.issue_link(user, LinkPurpose::VerifyEmail, self.settings.verify_link_ttl, &self.settings.links.verify_email, now).await?;
        let message = Message::VerifyEmail { link, hours: self.settings.verify_link_ttl / 3600 };
        self.messenger.email(user.email.as_str(), user.language.unwrap_or_default(), &message).await
    }

    /// Whether a verification or reset link is currently usable (without using it).
    pub async fn check_link(&self, token: &str, purpose: LinkPurpose, now: UnixTime) -> Result<(), AccountError> {
        match self.store.peek_email_link(&token_digest(token), purpose, now).await? {
            Some(_) => Ok(()),
            None => Err(AccountError::InvalidLink),
        }
    }

    /// Confirms an email address with the emailed link (single use).
    pub async fn verify_email(&self, token: &str, now: UnixTime) -> Result<UserId, AccountError> {
        let user =
            self.store.consume_email_link(&token_digest(token), LinkPurpose::VerifyEmail, now).await?.ok_or(AccountError::InvalidLink)?;
        self.store.mark_email_verified(user, now).await?;
        Ok(user)
    }

    /// Sets the language `user` reads pages and messages in (`None`: the
    /// browser's for pages, English for messages).
    pub async fn set_language(&self, user: crate::user::UserId, language: Option<crate::Language>) -> Result<(), AccountError> {
        Ok(self.store.set_language(user, language).await?)
    }

    /// "Not now" on the suggestion to set up a second factor: not asked again
    /// for [`crate::accounts::ENROLLMENT_PROMPT_SNOOZE`].
    pub async fn snooze_enrollment_prompt(&self, user: crate::user::UserId, now: UnixTime) -> Result<(), AccountError> {
        Ok(self.store.snooze_enrollment_prompt(user, now + crate::accounts::ENROLLMENT_PROMPT_SNOOZE).await?)
    }

    /// Emails a reset link if the address has an account. Always looks the same
    /// to the requester; a delivery failure is logged, not shown (it would reveal
    /// that the account exists).
    pub async fn request_password_reset(&self, email: &str, now: UnixTime) -> Result<(), AccountError> {
        let email = EmailAddress::parse(email)?;
        let Some(user) = self.store.user_by_email(&email).await? else {
            tracing::info!("password reset requested for an address without an account");
            return Ok(());
        };
        if !self.mail_allowed(user.email.as_str(), now).await? {
            return Ok(());
        }
        let link = self
            .issue_link(&user, LinkPurpose::ResetPassword, self.settings.reset_link_ttl, &self.settings.links.reset_password, now)
            .await?;
        let message = Message::PasswordReset { link, minutes: self.settings.reset_link_ttl / 60 };
        // Queued like a security notice, so the answer takes the same time
        // whether or not the address has an account (OWASP ASVS V2.5.7 / WSTG-IDNT-04).
        self.notify(&user, message, now).await;
        Ok(())
    }

    /// Counts one mail to `to` (sign-up attempts, reset and verification links) against the
    /// mailbox's hourly cap; false when it is spent (nothing is sent then).
    async fn mail_allowed(&self, to: &str, now: UnixTime) -> Result<bool, AccountError> {
        let digest = self.keys.mac.tag("mail-destination", to.as_bytes());
        let quota = crate::factors::otp::hourly(format!("mail-to:{digest}"), self.settings.otp.per_destination_per_hour);
        let allowed = self.store.take_send_quotas(&[quota], now).await?.is_ok();
        if !allowed {
            tracing::warn!("mail to an address past its hourly cap not sent");
        }
        Ok(allowed)
    }

    /// Sets a new password with a reset link. The password is checked before
    /// the link is used, so a refused password does not burn the link. Signs
    /// the user out everywhere, lifts any lock, and confirms the address (the
    /// link proved control of the mailbox).
    pub async fn reset_password(
        &self,
        token: &str,
        (password, confirm): (&str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let digest = token_digest(token);
        let user_id = self.store.peek_email_link(&digest, LinkPurpose::ResetPassword, now).await?.ok_or(AccountError::InvalidLink)?;
        let user = self.store.user_by_id(user_id).await?.ok_or(AccountError::InvalidLink)?;
        self.check_new_password(&user.email, &user.name, password, confirm).await?;
        let hash = self.hash(password).await?;
        if self.store.consume_email_link(&digest, LinkPurpose::ResetPassword, now).await? != Some(user.id) {
            return Err(AccountError::InvalidLink);
        }
        self.store.set_password_hash(user.id, &hash).await?;
        // For a while, emailed codes complete no second step: this mailbox just set the password.
        self.store.mark_password_reset(user.id, now).await?;
        self.store.mark_email_verified(user.id, now).await?;
        // Only the password's counter: a reset link is no proof against the
        // second step's (whoever holds the mailbox could reset it at will).
        self.store.clear_login_failures(user.email.as_str()).await?;
        self.end_what_sign_ins_gave(user.id, None, now).await?;
        self.audit(AuditKind::PasswordChanged, Some(user.id), origin, json!({ "by": "reset_link" }), now).await?;
        self.notify(&user, Message::PasswordChanged, now).await;
        Ok(())
    }

    /// Changes the password of a signed-in user, who must give the current one.
    /// Other sessions and every application's tokens end; this session stays.
    pub async fn change_password(
        &self,
        session: &ActiveSession,
        current: &str,
        (password, confirm): (&str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let user = &session.user;
        let key = user.email.as_str();
        // A signed-in user re-typing the password: counted like a sign-in, but
        // a right one gives back only its own attempt (a session is no proof
        // against the guesses of others).
        let permit = self.hasher.reserve()?;
        let attempt = self.count_password_attempt(key, Some(user), origin, now).await?;
        match self.hasher.verify_reserved(permit, current, &user.password_hash).await? {
            PasswordCheck::Mismatch => {
                return Err(match self.password_attempt_failed(&attempt, Some(user), "pwd", origin, now).await? {
                    AccountError::InvalidCredentials => AccountError::WrongCurrentPassword,
                    other => other,
                });
            }
            PasswordCheck::Match | PasswordCheck::MatchRehashed(_) => self.attempt_succeeded(attempt, Forget::ThisAttempt).await?,
        }
        self.check_new_password(&user.email, &user.name, password, confirm).await?;
        let hash = self.hash(password).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.end_what_sign_ins_gave(user.id, Some(&session.digest), now).await?;
        self.audit(AuditKind::PasswordChanged, Some(user.id), origin, json!({ "by": "user" }), now).await?;
        self.notify(user, Message::PasswordChanged, now).await;
        Ok(())
    }
}
