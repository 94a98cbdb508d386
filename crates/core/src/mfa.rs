//! Second factors in the account flows: what happens after a correct password,
//! the second step (TOTP or recovery code), step-up of an existing session,
//! inline enrollment, and self-service management of factors.
//!
//! A sign-in that needs a second step is a small state machine persisted in
//! the store: password accepted → [`PendingSignIn`] (10 minutes) → second
//! factor verified → session created (or, for a step-up, the existing session's
//! record extended). Wrong codes count towards the same per-account lockout as
//! wrong passwords.

use serde_json::json;

use crate::accounts::{Accounts, ActiveSession, NewSession, PriorFailures, SignInOutcome};
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::webauthn::{self, PasskeySignIn};
use crate::factors::{
    CodeDestination, Credential, EnrollmentCheck, EnrollmentPrompt, FactorContext, FactorKind, NewCredential, PendingSignIn,
    PublicKeyChallenge, RememberedBrowser, SecondFactor, Verification, all, recovery,
};
use crate::mail::Message;
use crate::password::PasswordCheck;
use crate::policy::RuleAction;
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthMethod, AuthRecord, FactorClass};
use crate::store::Stores;
use crate::user::{User, UserId};

/// MAC purpose of remember-this-browser cookies.
const REMEMBER_PURPOSE: &str = "remember-browser";

/// Form key of the password as a step of a pending sign-in.
pub const PASSWORD_STEP: &str = "password";

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

impl<S: Stores> Accounts<S> {
    pub(crate) fn factor_context(&self) -> FactorContext<'_, S> {
        FactorContext {
            store: &self.store,
            sealer: &self.keys.sealer,
            recovery_key: &self.keys.mac,
            issuer: &self.settings.product_name,
            relying_party: self.keys.relying_party.as_ref(),
            messenger: &self.messenger,
            otp: &self.settings.otp,
        }
    }

    /// Whether security keys and passkeys work on this server.
    pub fn webauthn_available(&self) -> bool {
        self.keys.relying_party.is_some()
    }

    /// Whether the operator allows factor `key` (a form key).
    fn factor_enabled(&self, key: &str) -> bool {
        let s = &self.settings;
        match key {
            "totp" => s.totp_enabled,
            "email" => s.otp.email_enabled,
            "sms" => s.otp.sms_enabled,
            "webauthn" => self.keys.relying_party.is_some(),
            _ => true,
        }
    }

    /// Whether users may add credentials of `kind` on this server.
    pub fn can_enroll(&self, kind: FactorKind) -> bool {
        match kind {
            FactorKind::Totp => self.settings.totp_enabled,
            FactorKind::Phone => self.settings.otp.sms_enabled,
            FactorKind::SecurityKey | FactorKind::Passkey => self.keys.relying_party.is_some(),
        }
    }

    /// The steps `user` can take to finish `pending`, strongest first (form
    /// keys). A method already used in this sign-in is not offered again (two
    /// emailed codes prove one thing). A step-up of a session begun without a
    /// knowledge factor (an emailed code) asks for the password: no number of
    /// possession factors would make it multi-factor.
    pub async fn available_factors(&self, user: &User, pending: &PendingSignIn) -> Result<Vec<&'static str>, AccountError> {
        Ok(self.offered(user, pending, None).await?.0)
    }

    /// Whether `pending` offers step `factor_key` (the same rule as
    /// [`Self::available_factors`], reading only what that factor needs), with
    /// the user's credentials as read for it.
    async fn offers(&self, user: &User, pending: &PendingSignIn, factor_key: &str) -> Result<Option<Vec<Credential>>, AccountError> {
        let (offered, enrolled) = self.offered(user, pending, Some(factor_key)).await?;
        Ok(offered.contains(&factor_key).then_some(enrolled))
    }

    async fn offered(
        &self,
        user: &User,
        pending: &PendingSignIn,
        only: Option<&str>,
    ) -> Result<(Vec<&'static str>, Vec<Credential>), AccountError> {
        if pending.session_digest.is_some() && !pending.auth.proves(FactorClass::Knowledge) {
            return Ok((vec![PASSWORD_STEP], Vec::new()));
        }
        let ctx = self.factor_context();
        let enrolled = self.store.credentials(user.id).await?;
        let mut out = Vec::new();
        let mut factors = all::<S>();
        factors.sort_by_key(|f| std::cmp::Reverse(f.strength()));
        let wanted = |f: &dyn SecondFactor<S>| {
            only.is_none_or(|k| k == f.key())
                && self.factor_enabled(f.key())
                && (!pending.phishing_resistant || f.method().phishing_resistant())
                && (pending.allowed_factors.is_empty() || pending.allowed_factors.iter().any(|k| k == f.key()))
                && !pending.auth.events.iter().any(|e| !e.remembered && e.method == f.method())
        };
        for f in factors.iter().filter(|f| wanted(f.as_ref())) {
            if f.available(&ctx, user, &enrolled).await? {
                out.push(f.key());
            }
        }
        Ok((out, enrolled))
    }

    /// Refuses a change to how the account signs in (a factor added or removed,
    /// new recovery codes) from a session whose last sign-in step is older than
    /// `[session] reauthenticate_after_seconds`.
    pub fn check_recent_sign_in(&self, session: &ActiveSession, now: UnixTime) -> Result<(), AccountError> {
        if self.settings.sessions.is_recent(&session.record, now) { Ok(()) } else { Err(AccountError::ReauthenticationRequired) }
    }

    /// Whether the user has an enrolled second factor (recovery codes alone do
    /// not count; a disabled key does, so its owner still needs a second step).
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, AccountError> {
        Ok(!self.store.credentials(user).await?.is_empty())
    }

    /// After a first step (a password, or an emailed code): a session, or a
    /// pending second step, or enrollment. The operator's adaptive rules
    /// decide first (see [`crate::policy`]); with no rule matching, a user
    /// with a factor is asked for it and one who must use MFA enrolls.
    pub(crate) async fn after_first_step(
        &self,
        user: &User,
        method: AuthMethod,
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        let auth = AuthRecord::single(method, now);
        let assessment = self.assess(user, origin, now).await?;
        self.refuse_if_denied(user, origin, &assessment, now).await?;
        let action = assessment.action();
        let enrolled = self.has_second_factor(user.id).await?;
        let must_enroll = !enrolled && (self.mfa_required(user) || action == Some(RuleAction::RequireMfa));
        // The application's policy shapes the second step now, rather than a step-up after it.
        let client = origin.client_policy.as_ref();
        let client_phr = client.is_some_and(|p| p.floor() == Some(crate::session::ACR_PHR));
        let pend = |phishing_resistant: bool| PendingSignIn {
            user_id: user.id,
            auth: auth.clone(),
            session_digest: None,
            phishing_resistant: phishing_resistant || client_phr,
            allowed_factors: client.map(|p| p.allowed_factors.clone()).unwrap_or_default(),
            assessment: assessment.to_json(),
            created_at: now,
            expires_at: now + PENDING_SIGN_IN_SECONDS,
        };
        // What a matching rule made of this sign-in is recorded even if it is never finished.
        let decided = |outcome: &str| {
            let detail = json!({ "assessment": assessment.to_json(), "outcome": outcome });
            async move {
                match action {
                    Some(_) => self.audit(AuditKind::PolicyDecision, Some(user.id), origin, detail, now).await,
                    None => Ok(()),
                }
            }
        };
        if must_enroll {
            decided("enroll").await?;
            let pending = pend(false);
            self.refuse_if_nothing_acceptable(user, &pending).await?;
            return Ok(SignInOutcome::MustEnroll { token: self.pend_with(pending).await? });
        }
        match action {
            Some(RuleAction::AllowSingleFactor) => {}
            Some(RuleAction::RequirePhishingResistant) => {
                let pending = pend(true);
                if let Err(e) = self.refuse_if_nothing_acceptable(user, &pending).await {
                    self.audit(AuditKind::SignInDenied, Some(user.id), origin, assessment.to_json(), now).await?;
                    return Err(e);
                }
                decided("phishing_resistant_step").await?;
                return Ok(SignInOutcome::SecondFactor { token: self.pend_with(pending).await? });
            }
            _ if enrolled => {
                if let Some(browser) = self.remembered_browser(user, remembered, now).await? {
                    decided("remembered_browser").await?;
                    // The first step is fresh; the second factor is the one performed when the browser was remembered.
                    let mut auth = auth;
                    auth.events.extend(browser.auth.events);
                    let detail = json!({ "browser": browser.id, "assessment": assessment.to_json() });
                    let session = self.signed_in(user, auth, origin, detail, now).await?;
                    return Ok(SignInOutcome::SignedIn(session));
                }
                decided("second_step").await?;
                let pending = pend(false);
                self.refuse_if_nothing_acceptable(user, &pending).await?;
                return Ok(SignInOutcome::SecondFactor { token: self.pend_with(pending).await? });
            }
            _ => {}
        }
        decided("single_factor").await?;
        let detail = json!({ "assessment": assessment.to_json() });
        Ok(SignInOutcome::SignedIn(self.signed_in(user, auth, origin, detail, now).await?))
    }

    /// Refuses a second step that could not be finished: an application that
    /// accepts only factors the user has not set up (and cannot set up inline,
    /// which is an authenticator app only). Without this the user would go
    /// round between the second step and the application's step-up.
    async fn refuse_if_nothing_acceptable(&self, user: &User, pending: &PendingSignIn) -> Result<(), AccountError> {
        if (pending.allowed_factors.is_empty() && !pending.phishing_resistant) || !self.available_factors(user, pending).await?.is_empty() {
            return Ok(());
        }
        if pending.phishing_resistant {
            return Err(AccountError::PhishingResistantFactorNeeded);
        }
        if pending.allowed_factors.iter().any(|f| f == "totp") && self.can_enroll(FactorKind::Totp) {
            return Ok(());
        }
        let words: Vec<&str> = pending
            .allowed_factors
            .iter()
            .map(|f| match f.as_str() {
                "totp" => "an authenticator app",
                "webauthn" => "a security key or passkey",
                "email" => "a code by email",
                "sms" => "a code by text message",
                _ => "a recovery code",
            })
            .collect();
        Err(AccountError::FactorRequiredByApplication { methods: words.join(" or ") })
    }

    async fn pend_with(&self, pending: PendingSignIn) -> Result<String, AccountError> {
        let token = random_token();
        self.store.save_pending_sign_in(&token_digest(&token), &pending).await?;
        Ok(token)
    }

    /// Starts a step-up of a signed-in session: only the missing factor will
    /// be asked; with `phishing_resistant`, only a security key or passkey;
    /// with `allowed_factors` (an application's policy), only those.
    pub async fn begin_step_up(
        &self,
        session: &ActiveSession,
        (phishing_resistant, allowed_factors): (bool, &[String]),
        now: UnixTime,
    ) -> Result<String, AccountError> {
        let pending = PendingSignIn {
            user_id: session.user.id,
            auth: session.record.auth.clone(),
            session_digest: Some(session.digest.clone()),
            phishing_resistant,
            allowed_factors: allowed_factors.to_vec(),
            assessment: serde_json::Value::Null,
            created_at: now,
            expires_at: now + PENDING_SIGN_IN_SECONDS,
        };
        self.refuse_if_nothing_acceptable(&session.user, &pending).await?;
        self.pend_with(pending).await
    }

    /// Prepares factor `factor_key`'s challenge for a pending sign-in from
    /// `client`: sends a code (to the destination `to` the user picked, if
    /// any), or builds a WebAuthn request (returned).
    pub async fn second_factor_challenge(
        &self,
        token: &str,
        (factor_key, to): (&str, Option<&str>),
        client: &str,
        now: UnixTime,
    ) -> Result<Option<PublicKeyChallenge>, AccountError> {
        let (pending, user) = self.pending_sign_in(token, now).await?;
        let factor = self.factor(factor_key)?;
        if self.offers(&user, &pending, factor.key()).await?.is_none() {
            return Err(AccountError::NotFound);
        }
        if factor.sends_code() {
            self.hit_client_code_cap(client, now).await?;
        }
        factor.challenge(&self.factor_context(), &user, to, now).await
    }

    /// Where factor `factor_key` can send `user` a code, when there is a choice (phone numbers).
    pub async fn code_destinations(&self, user: &User, factor_key: &str) -> Result<Vec<CodeDestination>, AccountError> {
        self.factor(factor_key)?.destinations(&self.factor_context(), user).await
    }

    /// Counts a code sent at the request of `client`; refuses past the hourly cap.
    pub(crate) async fn hit_client_code_cap(&self, client: &str, now: UnixTime) -> Result<(), AccountError> {
        let quota = crate::factors::otp::hourly(format!("otp-client:{client}"), self.settings.otp.per_client_per_hour);
        self.store.take_send_quotas(&[quota], now).await?.map_err(|retry_after_secs| AccountError::TooManyCodes { retry_after_secs })
    }

    /// The pending sign-in behind a token, with its user.
    pub async fn pending_sign_in(&self, token: &str, now: UnixTime) -> Result<(PendingSignIn, User), AccountError> {
        self.store.pending_sign_in(&token_digest(token), now).await?.ok_or(AccountError::SignInExpired)
    }

    /// Checks a second-factor response for a pending sign-in and finishes it.
    pub async fn complete_second_step(
        &self,
        token: &str,
        factor_key: &str,
        response: &str,
        remember: bool,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        let (pending, user) = self.pending_sign_in(token, now).await?;
        let prior = self.refuse_if_locked(user.email.as_str(), now).await?;
        // Only what this sign-in offers may finish it (a phishing-resistant step-up takes no code).
        let Some(enrolled) = self.offers(&user, &pending, factor_key).await? else {
            return Err(if factor_key == "webauthn" { AccountError::KeyNotAccepted } else { AccountError::InvalidCode });
        };
        let (method, verification) = if factor_key == PASSWORD_STEP {
            (AuthMethod::Password, self.check_password(&user, response).await?)
        } else {
            let factor = self.factor(factor_key)?;
            (factor.method(), factor.verify(&self.factor_context(), &user, &enrolled, response, now).await?)
        };
        match verification {
            Verification::Accepted => {}
            Verification::Rejected => {
                let wrong = match method {
                    AuthMethod::Password => AccountError::InvalidPassword,
                    m if m.phishing_resistant() => AccountError::KeyNotAccepted,
                    _ => AccountError::InvalidCode,
                };
                let amr = method.amr_values().first().copied().unwrap_or("otp");
                return Err(match self.count_failure(user.email.as_str(), Some(&user), amr, origin, now).await? {
                    AccountError::InvalidCredentials => wrong,
                    other => other,
                });
            }
            Verification::ClonedAuthenticator { name } => return Err(self.cloned(&user, name, origin, now).await),
        }
        if method == AuthMethod::RecoveryCode {
            let left = self.store.recovery_codes_left(user.id).await?;
            self.audit(AuditKind::RecoveryCodeUsed, Some(user.id), origin, json!({ "left": left }), now).await?;
            self.notify(&user, Message::RecoveryCodeUsed { left }, now).await;
        }
        let mut done = self.finish(token, (pending, user), prior, (method, None), origin, now).await?;
        // A remembered browser stands in for a possession factor, never for the password.
        if remember && method != AuthMethod::Password {
            let auth = AuthRecord::single(method, now);
            done.remember_cookie = Some(self.remember(&done.user, &auth, origin, now).await?);
        }
        Ok(done)
    }

    /// The password as a step of a pending sign-in (a step-up of a session begun with an emailed code).
    async fn check_password(&self, user: &User, password: &str) -> Result<Verification, AccountError> {
        Ok(match self.hasher.verify(password, &user.password_hash).await.map_err(|e| AccountError::Hashing(e.to_string()))? {
            PasswordCheck::Match | PasswordCheck::MatchRehashed(_) => Verification::Accepted,
            PasswordCheck::Mismatch => Verification::Rejected,
        })
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
    async fn remember(&self, user: &User, auth: &AuthRecord, origin: &RequestOrigin, now: UnixTime) -> Result<String, AccountError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let agent = origin.user_agent_text(200);
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
        self.audit(AuditKind::RememberedBrowserCreated, Some(user.id), origin, json!({ "browser": id }), now).await?;
        Ok(format!("{id}.{}", self.keys.mac.tag(REMEMBER_PURPOSE, format!("{id}:{}", user.id).as_bytes())))
    }

    /// The user's remembered browsers.
    pub async fn remembered_browsers(&self, user: UserId, now: UnixTime) -> Result<Vec<RememberedBrowser>, AccountError> {
        Ok(self.store.remembered_browsers(user, now).await?)
    }

    /// Forgets one remembered browser: its next sign-in asks for the second factor again.
    pub async fn forget_browser(&self, user: &User, id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        if !self.store.forget_remembered_browser(user.id, id, now).await? {
            return Err(AccountError::NotFound);
        }
        self.audit(AuditKind::RememberedBrowserRevoked, Some(user.id), origin, json!({ "browser": id }), now).await
    }

    async fn finish(
        &self,
        token: &str,
        (pending, user): (PendingSignIn, User),
        prior: PriorFailures,
        // The step just taken, and recovery codes to show (first factor enrolled inline).
        (method, codes): (AuthMethod, Option<Vec<String>>),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        // Exactly one request completes a pending sign-in.
        if !self.store.take_pending_sign_in(&token_digest(token)).await? {
            return Err(AccountError::SignInExpired);
        }
        self.clear_failures(prior).await?;
        let auth = pending.auth.with(method, now);
        let session = match &pending.session_digest {
            Some(digest) => {
                if !self.store.set_session_auth(digest, &auth).await? {
                    return Err(AccountError::SignInExpired);
                }
                let detail = json!({ "methods": auth.amr(), "acr": auth.acr(), "step_up": true });
                self.audit(AuditKind::SignInSucceeded, Some(user.id), origin, detail, now).await?;
                None
            }
            None => Some(self.signed_in(&user, auth, origin, json!({ "assessment": pending.assessment }), now).await?),
        };
        Ok(SecondStepDone { session, user, new_recovery_codes: codes, remember_cookie: None })
    }

    fn factor(&self, key: &str) -> Result<Box<dyn SecondFactor<S>>, AccountError> {
        all::<S>().into_iter().find(|f| f.key() == key).ok_or(AccountError::NotFound)
    }

    /// The factor that enrolls credentials of `kind`.
    fn enrolling(&self, kind: FactorKind) -> Result<Box<dyn SecondFactor<S>>, AccountError> {
        if !self.can_enroll(kind) {
            return Err(AccountError::NotFound);
        }
        all::<S>().into_iter().find(|f| f.enrolls().contains(&kind)).ok_or(AccountError::NotFound)
    }

    /// Starts setting up a credential of `kind` named `name` for `user`
    /// (`destination`: the phone number, for factors that send codes).
    pub async fn start_enrollment(
        &self,
        user: &User,
        kind: FactorKind,
        name: &str,
        destination: &str,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        let new = NewCredential { kind, name: valid_name(name)?, destination: destination.to_owned() };
        self.enrolling(kind)?.begin_enrollment(&self.factor_context(), user, new, now).await?.ok_or(AccountError::NotFound)
    }

    /// Shows an unconfirmed setup again (after a wrong first code).
    pub async fn pending_enrollment(&self, user: &User, kind: FactorKind, pending: &str) -> Result<EnrollmentPrompt, AccountError> {
        self.enrolling(kind)?.pending_enrollment(&self.factor_context(), user, pending).await?.ok_or(AccountError::NotFound)
    }

    /// Finishes setting up a credential with its first response. Returns
    /// recovery codes when this is the user's first factor (shown once).
    pub async fn finish_enrollment(
        &self,
        user: &User,
        kind: FactorKind,
        pending: &str,
        response: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Option<Vec<String>>, AccountError> {
        let first = !self.has_second_factor(user.id).await?;
        let name = match self.enrolling(kind)?.finish_enrollment(&self.factor_context(), user, pending, response, now).await? {
            EnrollmentCheck::Confirmed { name } => name,
            EnrollmentCheck::Rejected if matches!(kind, FactorKind::SecurityKey | FactorKind::Passkey) => {
                return Err(AccountError::KeyNotAccepted);
            }
            EnrollmentCheck::Rejected => return Err(AccountError::InvalidCode),
            EnrollmentCheck::Unknown => return Err(AccountError::NotFound),
        };
        self.audit(AuditKind::FactorAdded, Some(user.id), origin, json!({ "kind": kind.as_str(), "name": name }), now).await?;
        self.notify(user, Message::FactorAdded { method: kind.label().to_owned(), name }, now).await;
        if first && self.store.recovery_codes_left(user.id).await? == 0 {
            return Ok(Some(self.regenerate_recovery_codes(user, origin, now).await?));
        }
        Ok(None)
    }

    /// Inline enrollment during sign-in: confirms the new app and completes the sign-in with it.
    pub async fn complete_enrollment(
        &self,
        token: &str,
        credential_id: &str,
        code: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SecondStepDone, AccountError> {
        let (pending, user) = self.pending_sign_in(token, now).await?;
        let prior = self.refuse_if_locked(user.email.as_str(), now).await?;
        let codes = match self.finish_enrollment(&user, FactorKind::Totp, credential_id, code, origin, now).await {
            Ok(codes) => codes,
            Err(AccountError::InvalidCode) => {
                return Err(match self.count_failure(user.email.as_str(), Some(&user), "otp", origin, now).await? {
                    AccountError::InvalidCredentials => AccountError::InvalidCode,
                    other => other,
                });
            }
            Err(e) => return Err(e),
        };
        self.finish(token, (pending, user), prior, (AuthMethod::Totp, codes), origin, now).await
    }

    /// Starts a passwordless sign-in with a passkey.
    pub async fn begin_passkey_sign_in(&self, now: UnixTime) -> Result<PublicKeyChallenge, AccountError> {
        webauthn::begin_passkey_sign_in(&self.factor_context(), now).await
    }

    /// Finishes a passwordless sign-in: a user-verified passkey assertion opens
    /// a session whose record is multi-factor on its own.
    /// A passkey proves possession and (user-verified) knowledge or
    /// inherence at once, so no rule short of `deny` asks for more.
    pub async fn passkey_sign_in(
        &self,
        ceremony: &str,
        response: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(NewSession, User), AccountError> {
        match webauthn::finish_passkey_sign_in(&self.factor_context(), ceremony, response, now).await? {
            PasskeySignIn::Accepted(id) => {
                let user = self.store.user_by_id(id).await?.ok_or(AccountError::KeyNotAccepted)?;
                let assessment = self.assess(&user, origin, now).await?;
                self.refuse_if_denied(&user, origin, &assessment, now).await?;
                let auth = AuthRecord::single(AuthMethod::Passkey, now);
                let session = self.signed_in(&user, auth, origin, json!({ "assessment": assessment.to_json() }), now).await?;
                Ok((session, user))
            }
            PasskeySignIn::Rejected => {
                self.audit(AuditKind::SignInFailed, None, origin, json!({ "method": "hwk", "account": "unknown" }), now).await?;
                Err(AccountError::KeyNotAccepted)
            }
            PasskeySignIn::ClonedAuthenticator { user, name } => match self.store.user_by_id(user).await? {
                Some(user) => Err(self.cloned(&user, name, origin, now).await),
                None => Err(AccountError::KeyNotAccepted),
            },
        }
    }

    /// Tells the owner that a credential was disabled as possibly cloned; the error to show.
    async fn cloned(&self, user: &User, name: String, origin: &RequestOrigin, now: UnixTime) -> AccountError {
        if let Err(e) = self.audit(AuditKind::AuthenticatorCloned, Some(user.id), origin, json!({ "name": name }), now).await {
            return e;
        }
        self.notify(user, Message::AuthenticatorCloned { name: name.clone() }, now).await;
        AccountError::ClonedAuthenticator { name }
    }

    /// New recovery codes (the old set stops working). Shown once.
    pub async fn regenerate_recovery_codes(&self, user: &User, origin: &RequestOrigin, now: UnixTime) -> Result<Vec<String>, AccountError> {
        let codes = recovery::generate_set();
        let tags: Vec<String> = codes.iter().map(|c| recovery::tag(&self.keys.mac, c)).collect();
        self.store.replace_recovery_codes(user.id, &tags, now).await?;
        self.audit(AuditKind::RecoveryCodesRegenerated, Some(user.id), origin, json!({ "count": codes.len() }), now).await?;
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
    pub async fn rename_factor(
        &self,
        user: &User,
        id: &str,
        name: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let name = self.name_factor(user, id, name).await?;
        self.audit(AuditKind::FactorRenamed, Some(user.id), origin, json!({ "credential": id, "name": name }), now).await
    }

    /// Names a factor being set up (its addition is what gets recorded).
    pub async fn name_factor(&self, user: &User, id: &str, name: &str) -> Result<String, AccountError> {
        let name = valid_name(name)?;
        if !self.store.rename_credential(user.id, id, &name).await? {
            return Err(AccountError::NotFound);
        }
        Ok(name)
    }

    /// Removes a factor; refuses the last one while MFA is required for the user.
    pub async fn remove_factor(&self, user: &User, id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        let factors = self.store.credentials(user.id).await?;
        let Some(c) = factors.iter().find(|c| c.id == id) else { return Err(AccountError::NotFound) };
        if factors.len() == 1 && self.mfa_required(user) {
            return Err(AccountError::LastFactor);
        }
        self.store.delete_credential(user.id, id).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        if factors.len() == 1 {
            // No factor left: recovery codes would be a back door to nothing.
            self.store.delete_all_factors(user.id).await?;
        }
        let detail = json!({ "credential": id, "kind": c.kind.as_str(), "name": c.name });
        self.audit(AuditKind::FactorRemoved, Some(user.id), origin, detail, now).await?;
        self.notify(user, Message::FactorRemoved { name: c.name.clone() }, now).await;
        Ok(())
    }

    /// Operator: removes every factor of a user (lost phone).
    pub async fn reset_mfa(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        self.store.delete_all_factors(user.id).await?;
        self.store.delete_user_sessions(user.id, None).await?;
        self.audit(AuditKind::MfaReset, Some(user.id), origin, json!({}), now).await?;
        Ok(user)
    }

    /// Operator: requires (or stops requiring) MFA for a user.
    pub async fn require_mfa(&self, email: &str, required: bool, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_mfa_required(user.id, required).await?;
        self.audit(AuditKind::MfaRequirementChanged, Some(user.id), origin, json!({ "required": required }), now).await?;
        Ok(user)
    }

    /// Queues a security notice for the delivery task; a failure is logged,
    /// never fatal to the change it reports.
    pub(crate) async fn notify(&self, user: &User, message: Message, now: UnixTime) {
        match self.store.enqueue_notice(user.email.as_str(), &message, now).await {
            Ok(()) => self.notices_queued.notify_one(),
            Err(e) => tracing::error!(error = %e, user = %user.id, kind = message.kind(), "could not queue a security notice"),
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
