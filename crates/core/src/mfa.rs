//! Second factors in the account flows: what happens after a correct password,
//! the second step (TOTP or recovery code), step-up of an existing session,
//! inline enrollment, and self-service management of factors.
//!
//! A sign-in that needs a second step is a small state machine persisted in
//! the store: password accepted → [`PendingSignIn`] (10 minutes) → second
//! factor verified → session created (or, for a step-up, the existing session's
//! record extended). Wrong codes count towards the same per-account lockout as
//! wrong passwords.

use crate::accounts::{Accounts, ActiveSession, NewSession, SignInOutcome};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::{
    Credential, EnrollmentCheck, EnrollmentPrompt, FactorContext, MfaStore, PendingSignIn, RememberedBrowser, SecondFactor, all, recovery,
};
use crate::lockout::LockState;
use crate::mail::OutgoingEmail;
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthMethod, AuthRecord};
use crate::store::AccountStore;
use crate::user::{User, UserId};

/// MAC purpose of remember-this-browser cookies.
const REMEMBER_PURPOSE: &str = "remember-browser";

/// How long a sign-in may wait for its second step.
pub const PENDING_SIGN_IN_SECONDS: i64 = 600;

/// A finished second step.
#[derive(Debug, Clone)]
pub struct SecondStepDone {
    /// The new session (`None` after a step-up: the existing session was upgraded).
    pub session: Option<NewSession>,
    /// The user.
    pub user: User,
    /// Recovery codes to show now (first factor enrolled inline).
    pub new_recovery_codes: Option<Vec<String>>,
    /// Value of the remember-this-browser cookie to set, if the user asked.
    pub remember_cookie: Option<String>,
}

impl<S: AccountStore + MfaStore> Accounts<S> {
    fn factor_context(&self) -> FactorContext<'_, S> {
        FactorContext { store: &self.store, sealer: &self.keys.sealer, recovery_key: &self.keys.mac, issuer: &self.settings.product_name }
    }

    /// The factors `user` can use at sign-in, strongest first (form keys).
    pub async fn available_factors(&self, user: &User) -> Result<Vec<&'static str>, AccountError> {
        let ctx = self.factor_context();
        let mut out = Vec::new();
        let mut factors = all::<S>();
        factors.sort_by_key(|f| std::cmp::Reverse(f.strength()));
        for f in &factors {
            if f.available(&ctx, user).await? {
                out.push(f.key());
            }
        }
        Ok(out)
    }

    /// Whether the user has an enrolled second factor (recovery codes alone do not count).
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, AccountError> {
        Ok(!self.store.credentials(user).await?.is_empty())
    }

    /// After a correct password: a session, or a pending second step, or enrollment.
    pub(crate) async fn after_password(&self, user: &User, remembered: Option<&str>, now: UnixTime) -> Result<SignInOutcome, AccountError> {
        let auth = AuthRecord::single(AuthMethod::Password, now);
        if self.has_second_factor(user.id).await? {
            if let Some(browser) = self.remembered_browser(user, remembered, now).await? {
                tracing::info!(target: "portcullis::audit", event = "remembered_browser_used", user = %user.id, browser = %browser.id);
                // The password is fresh; the second factor is the one performed when the browser was remembered.
                let mut auth = auth;
                auth.events.extend(browser.auth.events);
                return Ok(SignInOutcome::SignedIn(self.open_session(user.id, auth, now).await?));
            }
            return Ok(SignInOutcome::SecondFactor { token: self.pend(user.id, auth, None, now).await? });
        }
        if user.mfa_required {
            return Ok(SignInOutcome::MustEnroll { token: self.pend(user.id, auth, None, now).await? });
        }
        Ok(SignInOutcome::SignedIn(self.open_session(user.id, auth, now).await?))
    }

    async fn pend(&self, user: UserId, auth: AuthRecord, session_digest: Option<String>, now: UnixTime) -> Result<String, AccountError> {
        let token = random_token();
        let pending = PendingSignIn { user_id: user, auth, session_digest, created_at: now, expires_at: now + PENDING_SIGN_IN_SECONDS };
        self.store.save_pending_sign_in(&token_digest(&token), &pending).await?;
        Ok(token)
    }

    /// Starts a step-up of a signed-in session: only the missing factor will be asked.
    pub async fn begin_step_up(&self, session: &ActiveSession, now: UnixTime) -> Result<String, AccountError> {
        self.pend(session.user.id, session.record.auth.clone(), Some(session.digest.clone()), now).await
    }

    /// The pending sign-in behind a token, with its user.
    pub async fn pending_sign_in(&self, token: &str, now: UnixTime) -> Result<(PendingSignIn, User), AccountError> {
        let pending = self.store.pending_sign_in(&token_digest(token), now).await?.ok_or(AccountError::SignInExpired)?;
        let user = self.store.user_by_id(pending.user_id).await?.ok_or(AccountError::SignInExpired)?;
        Ok((pending, user))
    }

    async fn refuse_if_locked(&self, user: &User, now: UnixTime) -> Result<(), AccountError> {
        match self.settings.lockout.state(&self.store.failure_record(user.email.as_str()).await?, now) {
            LockState::Locked { retry_after_secs } => Err(AccountError::Locked { retry_after_secs }),
            LockState::Open => Ok(()),
        }
    }

    /// Checks a second-factor response for a pending sign-in and finishes it.
    pub async fn complete_second_step(
        &self,
        token: &str,
        factor_key: &str,
        response: &str,
        remember: Option<&str>,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        let (pending, user) = self.pending_sign_in(token, now).await?;
        self.refuse_if_locked(&user, now).await?;
        let factors = all::<S>();
        let ctx = self.factor_context();
        let Some(factor) = factors.iter().find(|f| f.key() == factor_key) else { return Err(AccountError::InvalidCode) };
        if !factor.verify(&ctx, &user, response, now).await? {
            return Err(match self.count_failure(user.email.as_str(), now).await? {
                AccountError::InvalidCredentials => AccountError::InvalidCode,
                other => other,
            });
        }
        if factor.method() == AuthMethod::RecoveryCode {
            self.notify_recovery_code_used(&user).await;
        }
        let mut done = self.finish(token, pending, user, factor.method(), None, now).await?;
        if let Some(agent) = remember {
            let auth = AuthRecord::single(factor.method(), now);
            done.remember_cookie = Some(self.remember(&done.user, &auth, agent, now).await?);
        }
        Ok(done)
    }

    /// The valid remembered browser behind a cookie value (`id.tag`), for this user only.
    async fn remembered_browser(
        &self,
        user: &User,
        cookie: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<RememberedBrowser>, AccountError> {
        let Some((id, tag)) = cookie.and_then(|c| c.split_once('.')) else { return Ok(None) };
        if !self.keys.mac.verify(REMEMBER_PURPOSE, format!("{id}:{}", user.id).as_bytes(), tag) {
            return Ok(None);
        }
        Ok(self.store.use_remembered_browser(user.id, id, now).await?)
    }

    /// Remembers this browser for the possession factors of `auth`; returns the cookie value.
    async fn remember(&self, user: &User, auth: &AuthRecord, user_agent: &str, now: UnixTime) -> Result<String, AccountError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let agent: String = user_agent.chars().filter(|c| !c.is_control()).take(200).collect();
        let browser = RememberedBrowser {
            id: id.clone(),
            user_id: user.id,
            auth: AuthRecord { events: auth.possession_events() },
            user_agent: if agent.is_empty() { "Unknown browser".into() } else { agent },
            created_at: now,
            expires_at: now + self.settings.remember_browser_ttl,
            last_used_at: None,
        };
        self.store.insert_remembered_browser(&browser).await?;
        Ok(format!("{id}.{}", self.keys.mac.tag(REMEMBER_PURPOSE, format!("{id}:{}", user.id).as_bytes())))
    }

    /// The user's remembered browsers.
    pub async fn remembered_browsers(&self, user: UserId, now: UnixTime) -> Result<Vec<RememberedBrowser>, AccountError> {
        Ok(self.store.remembered_browsers(user, now).await?)
    }

    /// Forgets one remembered browser: its next sign-in asks for the second factor again.
    pub async fn forget_browser(&self, user: &User, id: &str, now: UnixTime) -> Result<(), AccountError> {
        if self.store.forget_remembered_browser(user.id, id, now).await? { Ok(()) } else { Err(AccountError::NotFound) }
    }

    async fn finish(
        &self,
        token: &str,
        pending: PendingSignIn,
        user: User,
        method: AuthMethod,
        codes: Option<Vec<String>>,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        // Exactly one request completes a pending sign-in.
        if !self.store.take_pending_sign_in(&token_digest(token)).await? {
            return Err(AccountError::SignInExpired);
        }
        self.store.clear_login_failures(user.email.as_str()).await?;
        let auth = pending.auth.with(method, now);
        // Until the audit table (issue 7) exists, security events are structured log lines.
        tracing::info!(target: "portcullis::audit", event = "second_factor_succeeded", user = %user.id, method = ?method, step_up = pending.session_digest.is_some());
        let session = match &pending.session_digest {
            Some(digest) => {
                if !self.store.set_session_auth(digest, &auth).await? {
                    return Err(AccountError::SignInExpired);
                }
                None
            }
            None => Some(self.open_session(user.id, auth, now).await?),
        };
        Ok(SecondStepDone { session, user, new_recovery_codes: codes, remember_cookie: None })
    }

    fn factor(&self, key: &str) -> Result<Box<dyn SecondFactor<S>>, AccountError> {
        all::<S>().into_iter().find(|f| f.key() == key).ok_or(AccountError::NotFound)
    }

    /// Starts setting up an authenticator app for `user`.
    pub async fn start_totp_setup(&self, user: &User, name: &str, now: UnixTime) -> Result<EnrollmentPrompt, AccountError> {
        let name = valid_name(name)?;
        self.factor("totp")?.begin_enrollment(&self.factor_context(), user, name, now).await?.ok_or(AccountError::NotFound)
    }

    /// Shows an unconfirmed setup again (after a wrong first code).
    pub async fn totp_setup(&self, user: &User, credential_id: &str) -> Result<EnrollmentPrompt, AccountError> {
        self.factor("totp")?.pending_enrollment(&self.factor_context(), user, credential_id).await?.ok_or(AccountError::NotFound)
    }

    /// Confirms a new authenticator app with its first code. Returns recovery
    /// codes when this is the user's first factor (shown once).
    pub async fn confirm_totp_setup(
        &self,
        user: &User,
        credential_id: &str,
        code: &str,
        now: UnixTime,
    ) -> Result<Option<Vec<String>>, AccountError> {
        let first = !self.has_second_factor(user.id).await?;
        let name = match self.factor("totp")?.finish_enrollment(&self.factor_context(), user, credential_id, code, now).await? {
            EnrollmentCheck::Confirmed { name } => name,
            EnrollmentCheck::Rejected => return Err(AccountError::InvalidCode),
            EnrollmentCheck::Unknown => return Err(AccountError::NotFound),
        };
        self.notify(user, "a sign-in method was added", &format!("An authenticator app named \"{name}\" was added to your account.")).await;
        if first && self.store.recovery_codes_left(user.id).await? == 0 {
            return Ok(Some(self.regenerate_recovery_codes(user, now).await?));
        }
        Ok(None)
    }

    /// Inline enrollment during sign-in: confirms the new app and completes the sign-in with it.
    pub async fn complete_enrollment(
        &self,
        token: &str,
        credential_id: &str,
        code: &str,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        let (pending, user) = self.pending_sign_in(token, now).await?;
        self.refuse_if_locked(&user, now).await?;
        let codes = match self.confirm_totp_setup(&user, credential_id, code, now).await {
            Ok(codes) => codes,
            Err(AccountError::InvalidCode) => {
                return Err(match self.count_failure(user.email.as_str(), now).await? {
                    AccountError::InvalidCredentials => AccountError::InvalidCode,
                    other => other,
                });
            }
            Err(e) => return Err(e),
        };
        self.finish(token, pending, user, AuthMethod::Totp, codes, now).await
    }

    /// New recovery codes (the old set stops working). Shown once.
    pub async fn regenerate_recovery_codes(&self, user: &User, now: UnixTime) -> Result<Vec<String>, AccountError> {
        let codes = recovery::generate_set();
        let tags: Vec<String> = codes.iter().map(|c| recovery::tag(&self.keys.mac, c)).collect();
        self.store.replace_recovery_codes(user.id, &tags, now).await?;
        Ok(codes)
    }

    /// Unused recovery codes.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<u32, AccountError> {
        Ok(self.store.recovery_codes_left(user).await?)
    }

    /// The user's enrolled factors.
    pub async fn factors(&self, user: UserId) -> Result<Vec<Credential>, AccountError> {
        Ok(self.store.credentials(user).await?)
    }

    /// Renames a factor.
    pub async fn rename_factor(&self, user: &User, id: &str, name: &str) -> Result<(), AccountError> {
        let name = valid_name(name)?;
        if self.store.rename_credential(user.id, id, &name).await? { Ok(()) } else { Err(AccountError::NotFound) }
    }

    /// Removes a factor; refuses the last one while MFA is required for the user.
    pub async fn remove_factor(&self, user: &User, id: &str, now: UnixTime) -> Result<(), AccountError> {
        let factors = self.store.credentials(user.id).await?;
        let Some(c) = factors.iter().find(|c| c.id == id) else { return Err(AccountError::NotFound) };
        if factors.len() == 1 && user.mfa_required {
            return Err(AccountError::LastFactor);
        }
        self.store.delete_credential(user.id, id).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        if factors.len() == 1 {
            // No factor left: recovery codes would be a back door to nothing.
            self.store.delete_all_factors(user.id).await?;
        }
        self.notify(user, "a sign-in method was removed", &format!("The sign-in method \"{}\" was removed from your account.", c.name))
            .await;
        Ok(())
    }

    /// Operator: removes every factor of a user (lost phone).
    pub async fn reset_mfa(&self, email: &str, now: UnixTime) -> Result<User, AccountError> {
        let user = self.user_by_email(email).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        self.store.delete_all_factors(user.id).await?;
        self.store.delete_user_sessions(user.id, None).await?;
        Ok(user)
    }

    /// Operator: requires (or stops requiring) MFA for a user.
    pub async fn require_mfa(&self, email: &str, required: bool) -> Result<User, AccountError> {
        let user = self.user_by_email(email).await?;
        self.store.set_mfa_required(user.id, required).await?;
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<User, AccountError> {
        let email = crate::email::EmailAddress::parse(email)?;
        self.store.user_by_email(&email).await?.ok_or(AccountError::NotFound)
    }

    async fn notify_recovery_code_used(&self, user: &User) {
        let left = self.store.recovery_codes_left(user.id).await.unwrap_or(0);
        self.notify(user, "a recovery code was used", &format!("A recovery code was just used to sign in to your account. {left} recovery code(s) remain. If this was not you, reset your password now.")).await;
    }

    async fn notify(&self, user: &User, what: &str, text: &str) {
        let s = &self.settings;
        let email = OutgoingEmail {
            to: user.email.to_string(),
            subject: format!("{}: {what}", s.product_name),
            text: format!("{text}\n\nReview your security settings at {}/account/security.\n", s.base_url),
            link: None,
        };
        if let Err(e) = self.send(email).await {
            tracing::error!(error = %e, user = %user.id, "could not send a security notice");
        }
    }
}

fn valid_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidName);
    }
    Ok(name.to_owned())
}
