//! Sign-in with an emailed code instead of a password (`[factors]
//! email_passwordless`, off by default).
//!
//! The code is a single possession factor: the session's `amr` is `["otp"]`
//! and it reaches no `acr`. An account with an enrolled second factor then
//! gives its password (the sign-in machine asks for the missing kind of
//! factor: another possession factor would not make it multi-factor), and so
//! does a step-up when an application asks for `acr_values=mfa`.
//!
//! Both steps look the same whether or not the address has an account (OWASP
//! ASVS V2.2 / WSTG-IDNT-04): the first always says "if an account uses this
//! address, we sent a code"; the second refuses an unknown address exactly as
//! a wrong code, and counts the failure against the same lockout key.

use crate::accounts::{Accounts, SignInOutcome};
use crate::audit::RequestOrigin;
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::AccountError;
use crate::factors::otp::EmailCodeFactor;
use crate::factors::{SecondFactor, Verification};
use crate::session::AuthMethod;
use crate::store::Stores;
use crate::user::User;

impl<S: Stores> Accounts<S> {
    /// Whether the operator turned on sign-in by emailed code.
    pub fn email_sign_in_enabled(&self) -> bool {
        self.settings.otp.email_enabled && self.settings.otp.email_passwordless
    }

    /// The account behind `email` if it may sign in by emailed code now: one
    /// with a confirmed address. (`email_requires_other_factor` is about email
    /// as a second step; as a first step it is one factor, and an account
    /// with more is then asked for its password.)
    async fn email_sign_in_account(&self, email: &EmailAddress) -> Result<Option<User>, AccountError> {
        let user = self.store.user_by_email(email).await?;
        Ok(user.filter(|u| u.email_verified_at.is_some()))
    }

    /// Step 1: emails a sign-in code to `email` if it names an account that may
    /// use one. Answers the same either way; only a malformed address, the
    /// feature being off, or `client` sending too many codes is reported.
    pub async fn begin_email_sign_in(&self, email: &str, client: &str, now: UnixTime) -> Result<(), AccountError> {
        if !self.email_sign_in_enabled() {
            return Err(AccountError::NotFound);
        }
        let email = EmailAddress::parse(email)?;
        self.hit_client_code_cap(client, now).await?;
        // Only a lock matters here: sending a code is not a success to clear failures with.
        let _ = self.refuse_if_account_locked(email.as_str(), now).await?;
        let Some(user) = self.email_sign_in_account(&email).await? else {
            tracing::info!("sign-in code requested for an address that cannot use one");
            return Ok(());
        };
        // Cooldown, caps and delivery failures are logged, not shown: showing
        // them would tell a stranger that the address has an account.
        if let Err(e) = EmailCodeFactor.challenge(&self.factor_context(), &user, None, now).await {
            tracing::warn!(error = %e, user = %user.id, "sign-in code not sent");
        }
        Ok(())
    }

    /// Step 2: signs in with the emailed code; then, like a password, leads to
    /// the second step if the account has one. `remembered` is the browser's
    /// remember-this-browser cookie.
    pub async fn email_code_sign_in(
        &self,
        email: &str,
        code: &str,
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        if !self.email_sign_in_enabled() {
            return Err(AccountError::NotFound);
        }
        let Ok(email) = EmailAddress::parse(email) else { return Err(AccountError::InvalidCode) };
        let key = email.as_str();
        let prior = self.refuse_if_account_locked(key, now).await?;
        let account = self.email_sign_in_account(&email).await?;
        let accepted = match &account {
            Some(user) => matches!(
                EmailCodeFactor.verify(&self.factor_context(), user, &[] /* an emailed code needs no credential */, code, now).await?,
                Verification::Accepted { .. }
            ),
            None => false,
        };
        let user = match account {
            Some(user) if accepted => user,
            account => {
                return Err(match self.count_failure(key, account.as_ref(), "otp", origin, now).await? {
                    AccountError::InvalidCredentials => AccountError::InvalidCode,
                    other => other,
                });
            }
        };
        self.clear_failures(prior).await?;
        self.after_first_step(&user, (AuthMethod::EmailOtp, None), remembered, origin, now).await
    }
}
