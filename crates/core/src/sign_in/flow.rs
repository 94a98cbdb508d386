//! The transitions of the sign-in machine, with their reads and writes:
//! step-up, the second step (challenge, answer), inline enrollment,
//! finishing, and what a cloned key ends.
//!
//! Every route that touches a pending sign-in comes through [`SignIn::advance`],
//! which reads it and asks [`PendingSignIn::permits`] for the route's one
//! transition; a refusal writes nothing but its audit event.

use serde_json::json;

use super::{
    AccountFactors, Demand, MAX_ANSWERS, OperatorFactors, PendingSignIn, Purpose, SecondStepDone, SecondStepView, SignIn, SignInOutcome,
    Step, StepOutcome, Transition, Waiting, plan,
};
use crate::account_store::Stores;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::otp::Requester;
use crate::factors::push::{PushBinding, PushContext};
use crate::factors::{
    self, Credential, Enrolled, EnrollmentPrompt, FactorContext, FactorKey, FactorKind, PublicKeyChallenge, SuccessNotice, Verification,
    all, factor,
};
use crate::lockout::LockKey;
use crate::messages::Message;
use crate::password::{HashPermit, PasswordCheck};
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthEvent, AuthMethod, AuthRecord};
use crate::sessions::{ActiveSession, NewSession};
use crate::sign_in::Forget;
use crate::user::User;

/// What a second-step answer is checked with: a password, in the hashing
/// place taken for it, or a factor.
enum Answer {
    Password(HashPermit),
    Factor(FactorKey),
}

impl<S: Stores> SignIn<'_, S> {
    /// What the operator allows.
    pub(crate) fn operator_factors(&self) -> OperatorFactors {
        let ctx = self.factor_context();
        OperatorFactors {
            enabled: factors::enabled(&ctx),
            // A phone pairs on the security page, not on the page of a sign-in.
            enrollable: factors::enrollable(&ctx).into_iter().filter(|k| k.enrolls_inline()).collect(),
            email_counts: self.settings.otp.email_counts_as_mfa,
        }
    }

    /// What the account has: the factors it can answer with now, and its credentials.
    pub(crate) async fn account_factors(&self, user: &User, now: UnixTime) -> Result<(AccountFactors, Vec<Credential>), AccountError> {
        let credentials = self.store.credentials(user.id).await?;
        // Denials are read only for an account with a phone (most have none).
        let push_paused = match credentials.iter().any(|c| c.kind == FactorKind::PushDevice) {
            true => factors::push::paused(&self.store.push_denials_since(user.id, now - 2 * factors::push::PAUSE_SECONDS).await?, now),
            false => false,
        };
        let recovery_codes_left = self.store.recovery_codes_left(user.id).await?;
        let enrolled = Enrolled { credentials: &credentials, recovery_codes_left, push_paused };
        let ctx = self.factor_context();
        let usable = all::<S>().filter(|f| f.available(&ctx, user, &enrolled)).map(|f| f.key()).collect();
        let account = AccountFactors { usable, has_credential: !credentials.is_empty(), mfa_required: self.mfa_required(user) };
        Ok((account, credentials))
    }

    /// The record of a step performed now.
    pub(super) fn step_event(&self, method: AuthMethod, credential: Option<String>, now: UnixTime) -> AuthEvent {
        let not_a_factor = method == AuthMethod::EMAIL_OTP && !self.settings.otp.email_counts_as_mfa;
        AuthEvent { credential, not_a_factor, ..AuthEvent::performed(method, now) }
    }

    /// Starts a step-up of `session` toward `wanted` (only the missing steps are asked).
    pub async fn begin_step_up(
        &self,
        session: &ActiveSession,
        wanted: Demand,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        let (account, _) = self.account_factors(&session.user, now).await?;
        let mut waiting = plan(&wanted, &session.record.auth, &account, &self.operator_factors(), now)?;
        // Setting up a first factor is a change to how the account signs in:
        // from a session whose password is not recent, only after signing in
        // again (as on the security page), so a stolen session cannot add its own.
        if !self.settings.sessions.is_recent(&session.record, now) {
            waiting.enroll.clear();
            if waiting.steps.is_empty() {
                return Err(AccountError::ReauthenticationRequired);
            }
        }
        let shape = (Purpose::StepUp { session_digest: session.digest.clone() }, wanted, waiting);
        let proven = (&session.user, session.record.auth.clone());
        let pending = PendingSignIn::begin(proven, shape, client_id.map(str::to_owned), serde_json::Value::Null, now);
        self.pend_outcome(&pending, session.user.language).await
    }

    /// The pending sign-in behind a token, with its user, if transition `t`
    /// is allowed from where it stands; otherwise the refusal (audited,
    /// nothing else written).
    async fn advance(
        &self,
        token: &str,
        t: Transition,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(PendingSignIn, User), AccountError> {
        let (pending, user) = self.store.pending_sign_in(&token_digest(token), now).await?.ok_or(AccountError::SignInExpired)?;
        // What it waited for no longer holds once the account was disabled or
        // its sign-ins ended (a password reset or change, an MFA reset, signing
        // out everywhere), even for a sign-in begun by a request in flight then.
        if user.disabled_at.is_some()
            || pending.security_epoch != user.security_epoch
            || user.password_reset_at.is_some_and(|at| at > pending.created_at)
        {
            return Err(AccountError::SignInExpired);
        }
        // Its answers are spent: nothing more may happen to it. (It is not
        // deleted then, so a right answer checked at the same time as the
        // last wrong one still finishes it.)
        if pending.answers >= MAX_ANSWERS {
            return Err(AccountError::TooManyAnswers);
        }
        if pending.permits(t) {
            return Ok((pending, user));
        }
        let origin = RequestOrigin { client_id: pending.client_id.clone(), ..origin.clone() };
        let detail = json!({ "transition": t.describe(), "waiting": serde_json::to_value(&pending.waiting).unwrap_or_default() });
        self.audit(AuditKind::SignInStepRefused, Some(user.id), &origin, detail, now).await?;
        tracing::warn!(user = %user.id, transition = %t.describe(), "a pending sign-in was asked for a step it does not allow");
        Err(AccountError::StepNotAllowed)
    }

    /// The second-step page of the pending sign-in behind `token`, showing
    /// `method` if it is on offer, else the strongest step; `None` when it
    /// waits only for enrollment.
    pub async fn second_step_view(
        &self,
        token: &str,
        method: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Option<SecondStepView>, AccountError> {
        let (pending, user) = self.advance(token, Transition::ShowSteps, origin, now).await?;
        let Waiting { steps, enroll } = pending.waiting;
        let Some(first) = steps.first().copied() else { return Ok(None) };
        let shown = method.and_then(Step::parse).filter(|s| steps.contains(s)).unwrap_or(first);
        let ctx = self.factor_context();
        let mut destinations = Vec::new();
        for step in &steps {
            if let Step::Factor(key) = *step {
                let to = factor::<S>(key).destinations(&ctx, &user).await?;
                if !to.is_empty() {
                    destinations.push((*step, to));
                }
            }
        }
        Ok(Some(SecondStepView { user, shown, steps, enroll, destinations }))
    }

    /// Prepares factor `key`'s challenge for the pending sign-in behind
    /// `token`: sends a code (to the destination `to` the user picked, if
    /// any), or builds a WebAuthn request (returned). `client` is the
    /// requester's address, for the per-address cap on sent codes.
    pub async fn second_factor_challenge(
        &self,
        token: &str,
        (key, to): (FactorKey, Option<&str>),
        (client, origin): (&str, &RequestOrigin),
        now: UnixTime,
    ) -> Result<Option<PublicKeyChallenge>, AccountError> {
        let (pending, user) = self.advance(token, Transition::Challenge(key), origin, now).await?;
        let context = PushContext {
            client_id: pending.client_id,
            user_agent: origin.user_agent_text(256),
            ip: origin.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        };
        let binding = PushBinding { sign_in: token_digest(token), context };
        let ctx = FactorContext { sign_in: Some(&binding), ..self.factor_context_for(Requester::Proven(client)) };
        factor::<S>(key).challenge(&ctx, &user, to, now).await
    }

    /// Checks an answer to the pending sign-in behind `token` and moves it on:
    /// finished, waiting for another step, or refused. At most
    /// [`MAX_ANSWERS`] answers per pending sign-in (then it is spent) and the
    /// account's second-step budget (then it locks), neither reset by a
    /// correct password.
    pub async fn complete_second_step(
        &self,
        token: &str,
        (step, response): (Step, &str),
        remember: bool,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<StepOutcome, AccountError> {
        let (pending, user) = self.advance(token, Transition::Answer(step), origin, now).await?;
        let origin = &RequestOrigin { client_id: pending.client_id.clone(), ..origin.clone() };
        let email = user.email.as_str();
        self.refuse_if_account_locked(email, now).await?;
        // Under overload a password is refused before anything is counted: its
        // place in the hashing queue is taken first.
        let answer = match step {
            Step::Password => Answer::Password(self.hasher.reserve()?),
            Step::Factor(key) => Answer::Factor(key),
        };
        let digest = token_digest(token);
        let Some(answers) = self.store.take_pending_answer(&digest, MAX_ANSWERS, now).await? else {
            return Err(AccountError::TooManyAnswers);
        };
        let lock = if step == Step::Password { LockKey::Password(email) } else { LockKey::SecondStep(email) };
        let attempt = self.count_attempt(lock, Some(&user), origin, now).await?;
        let (method, verification) = match answer {
            Answer::Password(permit) => (AuthMethod::Password, self.check_password(permit, &user, response).await?),
            Answer::Factor(key) => {
                let factor = factor::<S>(key);
                let credentials = self.store.credentials(user.id).await?;
                let binding = PushBinding { sign_in: digest.clone(), context: PushContext::default() };
                let ctx = FactorContext { sign_in: Some(&binding), ..self.factor_context() };
                (factor.method(), factor.verify(&ctx, &user, &credentials, response, now).await?)
            }
        };
        let credential = match verification {
            Verification::Accepted { credential } => credential,
            Verification::Rejected => {
                let amr = method.amr_values().first().copied().unwrap_or("otp");
                let detail = json!({ "method": amr, "factor": method.as_str(), "account": "known", "second_step": true });
                let locked = self.attempt_failed(&attempt, Some(&user), detail, origin, now).await?;
                return Err(match (locked, method) {
                    (Some(locked), _) => locked,
                    (None, _) if answers >= MAX_ANSWERS => AccountError::TooManyAnswers,
                    (None, AuthMethod::Password) => AccountError::InvalidPassword,
                    (None, m) if m.phishing_resistant() => AccountError::KeyNotAccepted,
                    // An approval not (or no longer) given for this sign-in.
                    (None, m) if m.factor().is_some_and(|k| k.facts().answer == crate::methods::Answer::Approval) => {
                        AccountError::PushRequestEnded
                    }
                    (None, _) => AccountError::InvalidCode,
                });
            }
            Verification::ClonedAuthenticator { credential, name } => {
                return Err(self.cloned(&user, (&credential, name), origin, now).await);
            }
        };
        // A right answer gives its place in the budget back; a right password
        // forgets the password's failures, as at the first step.
        self.attempt_succeeded(attempt, if method == AuthMethod::Password { Forget::All } else { Forget::ThisAttempt }).await?;
        if let Step::Factor(key) = step
            && let Some(SuccessNotice { audit, detail, message }) = factor::<S>(key).after_success(&self.factor_context(), &user).await?
        {
            self.audit(audit, Some(user.id), origin, detail, now).await?;
            self.notify(&user, message, now).await;
        }
        let event = self.step_event(method, credential, now);
        let pending = PendingSignIn { answers, ..pending };
        let mut outcome = self.finish(&digest, (pending, user), event.clone(), None, origin, now).await?;
        // A remembered browser stands in for a possession factor, never for the password.
        if let StepOutcome::Done(done) = &mut outcome
            && remember
            && method != AuthMethod::Password
        {
            done.remember_cookie = Some(self.remember(&done.user, &AuthRecord { events: vec![event] }, origin, now).await?);
        }
        Ok(outcome)
    }

    /// The password as a step of a pending sign-in (one begun with an emailed code).
    async fn check_password(&self, permit: HashPermit, user: &User, password: &str) -> Result<Verification, AccountError> {
        Ok(match self.hasher.verify_reserved(permit, password, &user.password_hash).await? {
            PasswordCheck::Match | PasswordCheck::MatchRehashed(_) => Verification::Accepted { credential: None },
            PasswordCheck::Mismatch => Verification::Rejected,
        })
    }

    /// The kinds the pending sign-in behind `token` may set up, with its user.
    pub async fn enrollment_choices(
        &self,
        token: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(Vec<FactorKind>, bool, User), AccountError> {
        let (pending, user) = self.advance(token, Transition::ShowEnrollment, origin, now).await?;
        Ok((pending.waiting.enroll, !pending.waiting.steps.is_empty(), user))
    }

    /// Starts setting up a first credential of `kind` during a sign-in that waits for one.
    pub async fn begin_inline_enrollment(
        &self,
        token: &str,
        (kind, name, destination): (FactorKind, &str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        let (_, user) = self.advance(token, Transition::BeginEnrollment(kind), origin, now).await?;
        self.credentials().start_setup(&user, kind, (name, destination), origin, now).await
    }

    /// Shows an inline setup again (after a wrong first code).
    pub async fn pending_inline_enrollment(
        &self,
        token: &str,
        (kind, credential): (FactorKind, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        let (_, user) = self.advance(token, Transition::BeginEnrollment(kind), origin, now).await?;
        self.credentials().pending_setup(&user, kind, credential, now).await
    }

    /// Finishes an inline setup with its first response (and the name the
    /// user gave it, if any), and with it the sign-in: the new credential is
    /// the step taken.
    pub async fn complete_enrollment(
        &self,
        token: &str,
        (kind, setup, response): (FactorKind, &str, &str),
        name: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<StepOutcome, AccountError> {
        let (pending, user) = self.advance(token, Transition::FinishEnrollment(kind), origin, now).await?;
        let origin = &RequestOrigin { client_id: pending.client_id.clone(), ..origin.clone() };
        let digest = token_digest(token);
        // Inline setup is for an account with no factor: one added meanwhile (another browser) ends it.
        if self.has_second_factor(user.id).await? {
            self.store.take_pending_sign_in(&digest).await?;
            return Err(AccountError::SignInExpired);
        }
        let Some(answers) = self.store.take_pending_answer(&digest, MAX_ANSWERS, now).await? else {
            return Err(AccountError::TooManyAnswers);
        };
        if let Some(name) = name {
            self.credentials().name_setup(&user, (kind, setup), name, now).await?;
        }
        let (credential, codes) = self.credentials().finish_setup(&user, kind, (setup, response), origin, now).await?;
        let event = AuthEvent { enrolled: true, ..self.step_event(kind.factor().method(), Some(credential), now) };
        self.finish(&digest, (PendingSignIn { answers, ..pending }, user), event, codes, origin, now).await
    }

    /// Takes an accepted step: finishes the pending sign-in if its demand is
    /// met (a new session, or the stepped-up session under a new token), or
    /// keeps it waiting for what is still missing. Exactly one request finishes it.
    async fn finish(
        &self,
        digest: &str,
        (pending, user): (PendingSignIn, User),
        event: AuthEvent,
        codes: Option<Vec<String>>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<StepOutcome, AccountError> {
        let auth = pending.auth.clone().with_event(event);
        if !pending.demand.met_by(&auth, now) {
            let (account, _) = self.account_factors(&user, now).await?;
            let waiting = plan(&pending.demand, &auth, &account, &self.operator_factors(), now)?;
            let next = PendingSignIn { auth, waiting, ..pending.clone() };
            if !self.store.continue_pending_sign_in(digest, &pending, &next).await? {
                return Err(AccountError::SignInExpired);
            }
            return Ok(StepOutcome::Continue);
        }
        if !self.store.take_pending_sign_in(digest).await? {
            return Err(AccountError::SignInExpired);
        }
        let session_token = match &pending.purpose {
            Purpose::StepUp { session_digest } => {
                let token = random_token();
                if !self.store.upgrade_session(session_digest, &token_digest(&token), user.id, &auth).await? {
                    return Err(AccountError::SignInExpired);
                }
                crate::metrics::sign_in_finished(&auth, true);
                let detail = json!({ "methods": auth.amr(), "acr": auth.acr(), "step_up": true });
                self.audit(AuditKind::SignInSucceeded, Some(user.id), origin, detail, now).await?;
                token
            }
            Purpose::NewSession => {
                let NewSession { token, .. } =
                    self.signed_in(&user, auth, origin, json!({ "assessment": pending.assessment }), now).await?;
                token
            }
        };
        Ok(StepOutcome::Done(Box::new(SecondStepDone { session_token, user, new_recovery_codes: codes, remember_cookie: None })))
    }

    /// A credential disabled as possibly cloned: what it vouched for ends
    /// (the remembered browsers it stood in for, the sessions it was used
    /// in), the owner is told; returns the error to show.
    pub(crate) async fn cloned(
        &self,
        user: &User,
        (credential, name): (&str, String),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> AccountError {
        // Records from before credentials were named in them may have used it too.
        let vouched = |auth: &AuthRecord| {
            auth.used_credential(credential) || auth.events.iter().any(|e| e.method.phishing_resistant() && e.credential.is_none())
        };
        let ended = async {
            for b in self.store.remembered_browsers(user.id, now).await?.into_iter().filter(|b| vouched(&b.auth)) {
                self.store.forget_remembered_browser(user.id, &b.id, now).await?;
            }
            let sessions = self.end_vouched_sessions(user.id, vouched, None).await?.len();
            // Sign-ins in progress, and what applications hold (a grant does not
            // name its credentials): all of the user's end.
            self.store.delete_pending_sign_ins(user.id).await?;
            if let Some(tokens) = &self.tokens {
                tokens.revoke_user_tokens(user.id, now).await?;
            }
            let detail =
                json!({ "name": name, "credential": credential, "sessions_ended": sessions, "tokens_revoked": self.tokens.is_some() });
            self.audit(AuditKind::AuthenticatorCloned, Some(user.id), origin, detail, now).await
        };
        if let Err(e) = ended.await {
            return e;
        }
        self.notify(user, Message::AuthenticatorCloned { name: name.clone() }, now).await;
        AccountError::ClonedAuthenticator { name }
    }
}
