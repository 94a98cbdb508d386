//! The first steps of a sign-in (a password, an emailed code, a passkey),
//! and what follows each: the machine's demand decides between a session, a
//! pending second step, and inline enrollment. Also the finished sign-in's
//! record (session, audit event, device, place) and remembered browsers.
//!
//! Sign-in by emailed code (`[factors] email_passwordless`, off by default)
//! looks the same whether or not the address has an account (OWASP ASVS V2.2 /
//! WSTG-IDNT-04): the first page always says "if an account uses this
//! address, we sent a code"; the second refuses an unknown address exactly as
//! a wrong code, and counts the failure against the same lockout key.

use serde_json::{Value, json};

use super::{Level, PendingSignIn, Purpose, SessionUse, demand, plan};
use crate::account_store::{FinishedSignIn, Stores};
use crate::accounts::capability;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::AccountError;
use crate::factors::otp::Requester;
use crate::factors::webauthn::{self, PasskeySignIn};
use crate::factors::{FactorKey, PublicKeyChallenge, RememberedBrowser, Verification};
use crate::messages::Message;
use crate::password::PasswordCheck;
use crate::policy::LastSignIn;
use crate::risk::device_digest;
use crate::secrets::{MacKey, random_token, token_digest};
use crate::session::{AuthMethod, AuthRecord, SessionRecord};
use crate::sessions::NewSession;
use crate::sign_in::Forget;
use crate::user::{User, UserId};

capability!(
    /// Signing in: the first steps, and the state machine after them.
    SignIn,
    sign_in
);

/// What a correct password leads to.
#[derive(Debug, Clone)]
pub enum SignInOutcome {
    /// Signed in.
    SignedIn(NewSession),
    /// A second factor is needed: the token identifies the pending sign-in.
    SecondFactor {
        /// Pending sign-in token (for a cookie).
        token: String,
        /// The language the user chose, if any: the next pages speak it.
        language: Option<crate::Language>,
    },
    /// The user must enroll a second factor first.
    MustEnroll {
        /// Pending sign-in token (for a cookie).
        token: String,
        /// The language the user chose, if any: the next pages speak it.
        language: Option<crate::Language>,
    },
}

/// What a first step is for: the application of the authorization request it
/// resumes (with its policy), else Portcullis's own pages.
fn session_use(origin: &RequestOrigin) -> SessionUse<'_> {
    match (&origin.client_id, &origin.client_policy) {
        (Some(id), Some(policy)) => SessionUse::Client { id, policy, acceptable_acr: &origin.acceptable_acr },
        _ => SessionUse::OwnPages,
    }
}

/// The remembered browser a remember-this-browser cookie (`id.tag`) names,
/// if its tag is ours for `user`.
pub fn remembered_browser_id<'c>(mac: &MacKey, user: UserId, cookie: &'c str) -> Option<&'c str> {
    let (id, tag) = cookie.split_once('.')?;
    mac.verify(REMEMBER_PURPOSE, format!("{id}:{user}").as_bytes(), tag).then_some(id)
}

/// MAC purpose of remember-this-browser cookies.
const REMEMBER_PURPOSE: &str = "remember-browser";

impl<S: Stores> SignIn<'_, S> {
    /// Password sign-in. Unknown addresses, wrong passwords and locked accounts
    /// behave alike for an outsider: the same message after the same work.
    /// `remembered` is the browser's remember-this-browser cookie, if any.
    pub async fn with_password(
        &self,
        email: &str,
        password: &str,
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        // Under overload the answer is the same for every account, before any is read.
        let permit = self.hasher.reserve()?;
        let Ok(email) = EmailAddress::parse(email) else {
            self.hasher.verify_decoy_reserved(permit, password).await?;
            self.audit(AuditKind::SignInFailed, None, origin, json!({ "method": "pwd", "account": "unknown" }), now).await?;
            return Err(AccountError::InvalidCredentials);
        };
        let key = email.as_str();
        let user = self.store.user_by_email(&email).await?;
        let attempt = self.count_password_attempt(key, user.as_ref(), origin, now).await?;
        let check = match &user {
            Some(u) => self.hasher.verify_reserved(permit, password, &u.password_hash).await?,
            None => {
                self.hasher.verify_decoy_reserved(permit, password).await?;
                PasswordCheck::Mismatch
            }
        };
        let user = match (user, check) {
            (Some(user), PasswordCheck::Match) => user,
            (Some(user), PasswordCheck::MatchRehashed(new_hash)) => {
                self.store.rehash_password(user.id, &user.password_hash, &new_hash).await?;
                user
            }
            (user, _) => return Err(self.password_attempt_failed(&attempt, user.as_ref(), "pwd", origin, now).await?),
        };
        self.attempt_succeeded(attempt, Forget::All).await?;
        if user.email_verified_at.is_none() {
            self.registration().send_verification(&user, now).await?;
            return Err(AccountError::EmailNotVerified);
        }
        let user = self.note_breached_password(user, password, now).await?;
        self.after_first_step(&user, (AuthMethod::Password, None), remembered, origin, now).await
    }

    /// A right password found among breached ones is recorded on the
    /// account: the sign-in goes on, and the user is asked to change it
    /// (NIST SP 800-63B §5.1.1.2 asks for a change, not a lock-out), until
    /// a new password clears it.
    async fn note_breached_password(&self, user: User, password: &str, now: UnixTime) -> Result<User, AccountError> {
        if user.password_breached_at.is_some() || !self.breached.is_breached(password).await {
            return Ok(user);
        }
        self.store.mark_password_breached(user.id, now).await?;
        Ok(User { password_breached_at: Some(now), ..user })
    }

    /// A new session for `user` (as read when its sign-in began) and the cookie token that names it.
    pub(crate) fn new_session(&self, user: &User, auth: AuthRecord, origin: &RequestOrigin, now: UnixTime) -> NewSession {
        let record = SessionRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id: user.id,
            security_epoch: user.security_epoch,
            created_at: now,
            last_seen_at: now,
            auth,
            ip: origin.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: origin.user_agent_text(200),
        };
        NewSession {
            token: random_token(),
            record,
            change_password: user.password_breached_at.is_some(),
            suggest_enrollment: false,
            language: user.language,
        }
    }
    /// Opens a session after a successful sign-in and records it: the audit
    /// event (methods, and `detail`: the assessment, a remembered browser),
    /// the device and place for the next assessment, and a notice when the
    /// browser is new to an account that has signed in elsewhere before.
    pub(crate) async fn signed_in(
        &self,
        user: &User,
        auth: AuthRecord,
        origin: &RequestOrigin,
        mut detail: Value,
        now: UnixTime,
    ) -> Result<NewSession, AccountError> {
        if let Some(fields) = detail.as_object_mut() {
            fields.insert("methods".into(), json!(auth.amr()));
            fields.insert("steps".into(), json!(auth.events.iter().map(|e| e.method.as_str()).collect::<Vec<_>>()));
            fields.insert("acr".into(), json!(auth.acr()));
        }
        let session = self.new_session(user, auth, origin, now);
        let event = crate::audit::NewAuditEvent::new(AuditKind::SignInSucceeded, Some(user.id), origin, detail, now);
        let location = self.locate(origin);
        let ip = origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let last = LastSignIn { at: now, ip: ip.clone(), location };
        let device = self
            .store
            .record_sign_in(&FinishedSignIn {
                session_digest: &token_digest(&session.token),
                session: &session.record,
                expires_at: self.settings.sessions.expires_at(now),
                event: &event,
                device_digest: &device_digest(origin),
                remember_device: origin.device.is_some(),
                last: &last,
            })
            .await?;
        crate::metrics::sign_in_finished(&session.record.auth, false);
        if !device.known && device.any_known {
            // Whole enough for the template to name the browser (`device_name`).
            let message =
                Message::NewDeviceSignIn { browser: origin.user_agent_text(512), ip, country: last.location.country.unwrap_or_default() };
            self.notify(user, message, now).await;
        }
        Ok(session)
    }
    /// The valid remembered browser behind a cookie value (`id.tag`), for this user only.
    pub(crate) async fn remembered_browser(
        &self,
        user: &User,
        cookie: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<RememberedBrowser>, AccountError> {
        let Some(id) = cookie.and_then(|c| remembered_browser_id(&self.keys.mac, user.id, c)) else { return Ok(None) };
        Ok(self.store.use_remembered_browser(user.id, id, now).await?)
    }

    /// Remembers this browser for the possession factors of `auth`; returns the cookie value.
    pub(crate) async fn remember(
        &self,
        user: &User,
        auth: &AuthRecord,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<String, AccountError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Pages name it (`device_name`); an empty one reads "Unknown browser".
        let agent = origin.user_agent_text(512);
        let browser = RememberedBrowser {
            id: id.clone(),
            user_id: user.id,
            auth: AuthRecord { events: auth.possession_events() },
            user_agent: agent,
            created_at: now,
            expires_at: now + self.settings.remember_browser_ttl,
            last_used_at: None,
            security_epoch: user.security_epoch,
        };
        self.store.insert_remembered_browser(&browser).await?;
        self.audit(AuditKind::RememberedBrowserCreated, Some(user.id), origin, json!({ "browser": id }), now).await?;
        Ok(format!("{id}.{}", self.keys.mac.tag(REMEMBER_PURPOSE, format!("{id}:{}", user.id).as_bytes())))
    }

    /// Starts a passwordless sign-in with a passkey.
    pub async fn passkey_challenge(&self, now: UnixTime) -> Result<PublicKeyChallenge, AccountError> {
        webauthn::begin_passkey_sign_in(&self.factor_context(), now).await
    }

    /// Finishes a passwordless sign-in: a user-verified passkey assertion is
    /// a first step that is multi-factor on its own (possession, and the PIN
    /// or biometric the authenticator checked), so the machine asks for more
    /// only where the application does not count passkeys.
    pub async fn with_passkey(
        &self,
        (ceremony, response): (&str, &str),
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        match webauthn::finish_passkey_sign_in(&self.factor_context(), ceremony, response, now).await? {
            PasskeySignIn::Accepted { user, credential } => {
                let user = self.store.user_by_id(user).await?.ok_or(AccountError::KeyNotAccepted)?;
                // Read after the key was checked: an MFA reset between the two removed
                // the key before it moved the epoch read here, so the key must still be there.
                if self.store.credential(user.id, &credential).await?.is_none() {
                    return Err(AccountError::KeyNotAccepted);
                }
                self.after_first_step(&user, (AuthMethod::Passkey, Some(credential)), remembered, origin, now).await
            }
            PasskeySignIn::Rejected => {
                self.audit(AuditKind::SignInFailed, None, origin, json!({ "method": "hwk", "account": "unknown" }), now).await?;
                Err(AccountError::KeyNotAccepted)
            }
            PasskeySignIn::ClonedAuthenticator { user, credential, name } => match self.store.user_by_id(user).await? {
                Some(user) => Err(self.cloned(&user, (&credential, name), origin, now).await),
                None => Err(AccountError::KeyNotAccepted),
            },
        }
    }
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
    pub async fn send_email_code(&self, email: &str, client: &str, now: UnixTime) -> Result<(), AccountError> {
        if !self.email_sign_in_enabled() {
            return Err(AccountError::NotFound);
        }
        let email = EmailAddress::parse(email)?;
        // Only a lock matters here: sending a code is not a success to clear failures with.
        self.refuse_if_account_locked(email.as_str(), now).await?;
        let Some(user) = self.email_sign_in_account(&email).await? else {
            tracing::info!("sign-in code requested for an address that cannot use one");
            return Ok(());
        };
        // Cooldown, caps and delivery failures are logged, not shown: showing
        // them would tell a stranger that the address has an account. The
        // code goes out through the notice queue, so the answer takes the
        // same time either way; the quotas are the anonymous requester's, so
        // a stranger cannot spend the owner's.
        match crate::factors::email::issue_sign_in_code(&self.factor_context_for(Requester::Anonymous(client)), &user, now).await {
            Ok(message) => self.notify(&user, message, now).await,
            Err(e) => tracing::warn!(error = %e, user = %user.id, "sign-in code not sent"),
        }
        Ok(())
    }

    /// Step 2: signs in with the emailed code; then, like a password, leads to
    /// the second step if the account has one. `remembered` is the browser's
    /// remember-this-browser cookie.
    pub async fn with_email_code(
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
        let account = self.email_sign_in_account(&email).await?;
        let attempt = self.count_password_attempt(key, account.as_ref(), origin, now).await?;
        let accepted = match &account {
            Some(user) => matches!(
                crate::factors::email::check_sign_in_code(&self.factor_context(), user, code, now).await?,
                Verification::Accepted { .. }
            ),
            None => false,
        };
        let user = match account {
            Some(user) if accepted => user,
            account => {
                return Err(match self.password_attempt_failed(&attempt, account.as_ref(), "otp", origin, now).await? {
                    AccountError::InvalidCredentials => AccountError::InvalidCode,
                    other => other,
                });
            }
        };
        self.attempt_succeeded(attempt, Forget::All).await?;
        self.after_first_step(&user, (AuthMethod::EMAIL_OTP, None), remembered, origin, now).await
    }
    /// After a first step (a password, an emailed code, a passkey): a
    /// session, a pending second step, or inline enrollment, as the machine
    /// decides from the rules, the account and the application.
    pub(crate) async fn after_first_step(
        &self,
        user: &User,
        step: (AuthMethod, Option<String>),
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        self.after_first_step_for(session_use(origin), user, step, remembered, origin, now).await
    }

    /// [`after_first_step`](Self::after_first_step) toward what `using`
    /// demands rather than what the request resumes (the first
    /// administrator's sign-in is made for the console).
    pub(crate) async fn after_first_step_for(
        &self,
        using: SessionUse<'_>,
        user: &User,
        (method, credential): (AuthMethod, Option<String>),
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        let assessment = self.assess(user, origin, now).await?;
        self.refuse_if_denied(user, origin, &assessment, now).await?;
        let action = assessment.action();
        let (account, _) = self.account_factors(user, now).await?;
        let mut first = self.step_event(method, credential, now);
        // An emailed code where email is no factor of this account (`email_requires_other_factor`
        // without another factor) signs in, but proves nothing toward MFA.
        first.not_a_factor |= method == AuthMethod::EMAIL_OTP && !account.usable.contains(&FactorKey::Email);
        let auth = AuthRecord { events: vec![first] };
        // What a matching rule made of this sign-in is recorded even if it is never finished.
        let decided = |outcome: &'static str| {
            let detail = json!({ "assessment": assessment.to_json(), "outcome": outcome });
            async move {
                match action {
                    Some(_) => self.audit(AuditKind::PolicyDecision, Some(user.id), origin, detail, now).await,
                    None => Ok(()),
                }
            }
        };
        let sign_in_detail = |extra: Option<(&str, serde_json::Value)>| {
            let mut d = json!({ "assessment": assessment.to_json() });
            if let (Some((k, v)), Some(fields)) = (extra, d.as_object_mut()) {
                fields.insert(k.to_owned(), v);
            }
            d
        };
        // `demand` refuses only for a deny rule, which `refuse_if_denied` has handled.
        let Ok(wanted) = demand(action, self.demand_facts(user, using, account.has_credential, now)) else {
            return Err(AccountError::SignInDenied);
        };
        let Some(wanted) = wanted.filter(|d| !d.met_by(&auth, now)) else {
            decided("single_factor").await?;
            let mut session = self.signed_in(user, auth, origin, sign_in_detail(None), now).await?;
            // Only an account with nothing to offer as a second step, only when something can be set up.
            session.suggest_enrollment = self.settings.suggest_enrollment
                && method == AuthMethod::Password
                && !account.has_credential
                && user.enrollment_prompt_snoozed_until.is_none_or(|until| until <= now)
                && !self.operator_factors().enrollable.is_empty();
            return Ok(SignInOutcome::SignedIn(session));
        };
        if let Some(browser) = self.remembered_browser(user, remembered, now).await? {
            // The first step is fresh; the second factor is the one performed when the browser was remembered.
            let mut with_browser = auth.clone();
            with_browser.events.extend(browser.auth.events);
            if wanted.met_by(&with_browser, now) {
                decided("remembered_browser").await?;
                let detail = sign_in_detail(Some(("browser", json!(browser.id))));
                return Ok(SignInOutcome::SignedIn(self.signed_in(user, with_browser, origin, detail, now).await?));
            }
        }
        let waiting = match plan(&wanted, &auth, &account, &self.operator_factors(), now) {
            Ok(w) => w,
            Err(refusal) => return Err(self.refused(user, refusal, assessment.to_json(), origin, now).await),
        };
        decided(match (waiting.steps.is_empty(), wanted.level) {
            (true, _) => "enroll",
            (false, Level::PhishingResistant) => "phishing_resistant_step",
            (false, Level::Mfa) => "second_step",
        })
        .await?;
        let shape = (Purpose::NewSession, wanted, waiting);
        let pending = PendingSignIn::begin((user, auth), shape, origin.client_id.clone(), assessment.to_json(), now);
        self.pend_outcome(&pending, user.language).await
    }

    /// A sign-in nothing the account has or may set up could finish: audited
    /// (the assessment and why), and the words for the user.
    async fn refused(
        &self,
        user: &User,
        refusal: super::Refusal,
        mut detail: Value,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> AccountError {
        if let Some(fields) = detail.as_object_mut() {
            fields.insert("reason".into(), json!(format!("{refusal:?}")));
        }
        match self.audit(AuditKind::SignInDenied, Some(user.id), origin, detail, now).await {
            Ok(()) => refusal.into(),
            Err(e) => e,
        }
    }

    /// Stores a pending sign-in and says where it goes: the second step, or enrollment.
    pub(super) async fn pend_outcome(
        &self,
        pending: &PendingSignIn,
        language: Option<crate::Language>,
    ) -> Result<SignInOutcome, AccountError> {
        let token = self.pend(pending).await?;
        Ok(match pending.waits_for_enrollment() {
            true => SignInOutcome::MustEnroll { token, language },
            false => SignInOutcome::SecondFactor { token, language },
        })
    }

    pub(super) async fn pend(&self, pending: &PendingSignIn) -> Result<String, AccountError> {
        let token = random_token();
        self.store.save_pending_sign_in(&token_digest(&token), pending).await?;
        Ok(token)
    }
}
