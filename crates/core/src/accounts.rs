//! Account flows: sign-up, email verification, sign-in, sessions, password
//! reset and change. Handlers call these and translate the result; every
//! decision (who may sign in, which link is valid, what to email) is made here.

use std::sync::Arc;

use serde_json::json;

use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::{AccountError, StoreError};
use crate::lockout::{LockKey, LockState, LockoutPolicy};
use crate::mail::{Message, Messenger};
use crate::password::{PasswordCheck, PasswordHasher, PasswordPolicy};
use crate::rate_limit::{LimitedAction, RateLimits};
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthMethod, AuthRecord, SessionPolicy, SessionRecord};
use crate::store::{EmailLink, LinkPurpose};
use crate::user::{User, UserId};

/// Tunables of the account flows.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Public base URL, used in emailed links (no trailing slash).
    pub base_url: String,
    /// Product name shown in emails.
    pub product_name: String,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Lockout after failed sign-ins.
    pub lockout: LockoutPolicy,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Per-IP request limits.
    pub rate_limits: RateLimits,
    /// Lifetime of an email-verification link (seconds).
    pub verify_link_ttl: i64,
    /// Lifetime of a password-reset link (seconds).
    pub reset_link_ttl: i64,
    /// How long "remember this browser" lasts (seconds).
    pub remember_browser_ttl: i64,
    /// Codes sent by email: on or off, lifetime, attempt and sending limits.
    pub otp: crate::factors::otp::OtpSettings,
    /// Users may add authenticator apps and sign in with them.
    pub totp_enabled: bool,
    /// The operator's adaptive sign-in rules.
    pub adaptive: crate::policy::AdaptivePolicy,
    /// Roles (`admin`, `user`) or `everyone` who must use a second factor (enrolled at next sign-in).
    pub mfa_required_for: Vec<String>,
    /// How long audit events (and known devices) are kept (seconds).
    pub audit_retention: i64,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:8080".into(),
            product_name: "Portcullis".into(),
            password_policy: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            rate_limits: RateLimits::default(),
            verify_link_ttl: 24 * 3600,
            reset_link_ttl: 3600,
            remember_browser_ttl: 30 * 24 * 3600,
            otp: crate::factors::otp::OtpSettings::default(),
            totp_enabled: true,
            adaptive: crate::policy::AdaptivePolicy::default(),
            mfa_required_for: Vec::new(),
            audit_retention: 400 * 86_400,
        }
    }
}

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
}

/// A session just opened: the cookie token (shown once) and the record.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Secret for the session cookie.
    pub token: String,
    /// What was stored.
    pub record: SessionRecord,
}

/// A session found from its cookie.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The stored record.
    pub record: SessionRecord,
    /// The account.
    pub user: User,
    /// Digest of the cookie token (identifies the session in the store).
    pub digest: String,
}

/// The account service.
#[derive(Clone)]
pub struct Accounts<S> {
    pub(crate) store: S,
    pub(crate) hasher: PasswordHasher,
    pub(crate) messenger: Arc<Messenger>,
    pub(crate) settings: Arc<AccountSettings>,
    pub(crate) keys: Arc<FactorKeys>,
    pub(crate) geo: Option<Arc<dyn crate::policy::Geolocator>>,
    /// Woken when a notice is queued (the delivery task waits on it).
    pub(crate) notices_queued: Arc<tokio::sync::Notify>,
    /// Revokes what the OAuth provider issued to a user (signing out everywhere).
    pub(crate) tokens: Option<Arc<dyn TokenRevoker>>,
}

/// Revokes the OAuth grants of a user: refresh tokens, unused codes, access
/// tokens. The provider implements it; the account flows call it when a user
/// signs out everywhere.
pub trait TokenRevoker: Send + Sync {
    /// Revokes everything issued to `user`.
    fn revoke_user_tokens(&self, user: UserId, now: UnixTime) -> crate::mail::BoxFuture<'_, Result<(), StoreError>>;
}

/// What second factors need beyond the store: keys, and the WebAuthn relying party.
pub struct FactorKeys {
    /// Seals TOTP secrets and WebAuthn credential records at rest.
    pub sealer: crate::secrets::SecretBox,
    /// Tags recovery codes and remembered-browser cookies (each under its own purpose).
    pub mac: crate::secrets::MacKey,
    /// WebAuthn relying party; `None` when the issuer cannot be one (its host is an IP address).
    pub relying_party: Option<crate::factors::webauthn::RelyingParty>,
}

/// What a correct password leads to.
#[derive(Debug, Clone)]
pub enum SignInOutcome {
    /// Signed in.
    SignedIn(NewSession),
    /// A second factor is needed: the token identifies the pending sign-in.
    SecondFactor {
        /// Pending sign-in token (for a cookie).
        token: String,
    },
    /// The user must enroll a second factor first.
    MustEnroll {
        /// Pending sign-in token (for a cookie).
        token: String,
    },
}

impl<S: crate::store::Stores> Accounts<S> {
    /// Wires the service.
    pub fn new(store: S, hasher: PasswordHasher, messenger: Messenger, settings: AccountSettings, keys: FactorKeys) -> Self {
        Self {
            store,
            hasher,
            messenger: Arc::new(messenger),
            settings: Arc::new(settings),
            keys: Arc::new(keys),
            geo: None,
            notices_queued: Arc::default(),
            tokens: None,
        }
    }

    /// Revokes OAuth grants through `tokens` when a user signs out everywhere.
    pub fn with_token_revoker(mut self, tokens: Arc<dyn TokenRevoker>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Locates sign-ins with a GeoIP database (country and impossible-travel rules).
    pub fn with_geolocator(mut self, geo: Arc<dyn crate::policy::Geolocator>) -> Self {
        self.geo = Some(geo);
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// The store (for health checks).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Counts a request from `client` and refuses it over the limit with the seconds to wait.
    pub async fn throttle(&self, action: LimitedAction, client: &str, now: UnixTime) -> Result<Result<(), i64>, StoreError> {
        let limits = &self.settings.rate_limits;
        let bucket = limits.bucket(action, client, now);
        let hits = self.store.hit_rate_bucket(&bucket).await?;
        Ok(limits.decide(action, &bucket, hits, now))
    }

    fn check_new_password(&self, email: &EmailAddress, name: &str, password: &str, confirm: &str) -> Result<(), AccountError> {
        let mut hints = vec![email.local_part(), email.as_str()];
        hints.extend(name.split_whitespace());
        self.settings.password_policy.check(password, &hints)?;
        if password != confirm {
            return Err(AccountError::PasswordMismatch);
        }
        Ok(())
    }

    async fn hash(&self, password: &str) -> Result<String, AccountError> {
        self.hasher.hash(password).await.map_err(|e| AccountError::Hashing(e.to_string()))
    }

    /// Self-service sign-up. The outcome looks the same whether or not the
    /// address already has an account (no enumeration): a new address gets a
    /// verification link, a known one gets a note saying someone tried.
    pub async fn sign_up(&self, form: SignUpForm<'_>, now: UnixTime) -> Result<(), AccountError> {
        let email = EmailAddress::parse(form.email)?;
        let name = form.name.trim();
        self.check_new_password(&email, name, form.password, form.confirm)?;
        let user = User {
            id: UserId::new(),
            email: email.clone(),
            name: name.to_owned(),
            password_hash: self.hash(form.password).await?,
            email_verified_at: None,
            is_admin: false,
            mfa_required: false,
            disabled_at: None,
            password_reset_at: None,
            created_at: now,
        };
        match self.store.create_user(&user).await {
            Ok(()) => self.send_verification(&user, now).await,
            Err(StoreError::Conflict) => self.messenger.email(email.as_str(), &Message::SignUpAttempt).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an account as the operator (already verified). Refuses a taken address.
    pub async fn create_user_by_operator(
        &self,
        email: &str,
        name: &str,
        password: &str,
        is_admin: bool,
        now: UnixTime,
    ) -> Result<User, AccountError> {
        let email = EmailAddress::parse(email)?;
        self.check_new_password(&email, name, password, password)?;
        let user = User {
            id: UserId::new(),
            email,
            name: name.trim().to_owned(),
            password_hash: self.hash(password).await?,
            email_verified_at: Some(now),
            is_admin,
            mfa_required: false,
            disabled_at: None,
            password_reset_at: None,
            created_at: now,
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    async fn issue_link(&self, user: &User, purpose: LinkPurpose, ttl: i64, path: &str, now: UnixTime) -> Result<String, AccountError> {
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
        Ok(format!("{}{path}?token={token}", self.settings.base_url))
    }

    async fn send_verification(&self, user: &User, now: UnixTime) -> Result<(), AccountError> {
        let link = self.issue_link(user, LinkPurpose::VerifyEmail, self.settings.verify_link_ttl, "/verify-email", now).await?;
        self.messenger.email(user.email.as_str(), &Message::VerifyEmail { link, hours: self.settings.verify_link_ttl / 3600 }).await
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

    /// Password sign-in. Unknown addresses, wrong passwords and locked accounts
    /// behave alike for an outsider: the same message after the same work.
    /// `remembered` is the browser's remember-this-browser cookie, if any.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        let Ok(email) = EmailAddress::parse(email) else {
            self.hasher.verify_decoy(password).await;
            self.audit(AuditKind::SignInFailed, None, origin, json!({ "method": "pwd", "account": "unknown" }), now).await?;
            return Err(AccountError::InvalidCredentials);
        };
        let key = email.as_str();
        let prior = self.refuse_if_account_locked(key, now).await?;
        let user = self.store.user_by_email(&email).await?;
        let check = match &user {
            Some(u) => self.hasher.verify(password, &u.password_hash).await.map_err(|e| AccountError::Hashing(e.to_string()))?,
            None => {
                self.hasher.verify_decoy(password).await;
                PasswordCheck::Mismatch
            }
        };
        let user = match (user, check) {
            (Some(user), PasswordCheck::Match) => user,
            (Some(user), PasswordCheck::MatchRehashed(new_hash)) => {
                self.store.set_password_hash(user.id, &new_hash).await?;
                user
            }
            (user, _) => return Err(self.count_failure(key, user.as_ref(), "pwd", origin, now).await?),
        };
        self.clear_failures(prior).await?;
        if user.email_verified_at.is_none() {
            self.send_verification(&user, now).await?;
            return Err(AccountError::EmailNotVerified);
        }
        self.after_first_step(&user, (AuthMethod::Password, None), remembered, origin, now).await
    }

    /// Refuses while the account keyed `email` (a normalised address, known
    /// or not) is locked, by wrong passwords or by wrong second-step answers
    /// (one read for both); otherwise returns what a successful password must clear.
    pub(crate) async fn refuse_if_account_locked(&self, email: &str, now: UnixTime) -> Result<PriorFailures, AccountError> {
        let second = LockKey::SecondStep(email).key();
        let records = self.store.failure_records(&[email, &second]).await?;
        for record in &records {
            if let LockState::Locked { retry_after_secs } = self.settings.lockout.state(record, now) {
                return Err(AccountError::Locked { retry_after_secs });
            }
        }
        let any = records.first().is_some_and(|r| r.failures > 0 || r.locked_until.is_some());
        Ok(PriorFailures { key: email.to_owned(), any })
    }

    /// After a successful attempt: forgets the failures on record when it
    /// began. With none, nothing is written (most sign-ins).
    pub(crate) async fn clear_failures(&self, prior: PriorFailures) -> Result<(), AccountError> {
        if prior.any {
            self.store.clear_login_failures(&prior.key).await?;
        }
        Ok(())
    }

    /// Counts a failed attempt with `method` (an `amr` value) on the account
    /// keyed `key` (`user`, when it exists) and records it; returns the error
    /// to show. At the threshold the account locks and its owner is told.
    pub(crate) async fn count_failure(
        &self,
        key: &str,
        user: Option<&User>,
        method: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<AccountError, AccountError> {
        let lockout = &self.settings.lockout;
        let Some(failures) = self.store.record_login_failure(key, now, lockout.window_start(now)).await? else {
            return Ok(AccountError::Locked { retry_after_secs: lockout.lock_seconds });
        };
        let account = if user.is_some() { "known" } else { "unknown" };
        self.audit(AuditKind::SignInFailed, user.map(|u| u.id), origin, json!({ "method": method, "account": account }), now).await?;
        if lockout.must_lock(failures) {
            return self.lock_after_failures(key, user, failures, origin, now).await;
        }
        Ok(AccountError::InvalidCredentials)
    }

    /// Locks the counter `key` after `failures` and tells the owner (if the
    /// account exists); returns the error to show.
    pub(crate) async fn lock_after_failures(
        &self,
        key: &str,
        user: Option<&User>,
        failures: u32,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<AccountError, AccountError> {
        let lockout = &self.settings.lockout;
        self.store.lock_account(key, lockout.lock_until(now)).await?;
        tracing::warn!(account = key, failures, "account locked after repeated failures");
        if let Some(user) = user {
            let minutes = (lockout.lock_seconds + 59) / 60;
            let detail = json!({ "failures": failures, "minutes": minutes, "second_step": key != user.email.as_str() });
            self.audit(AuditKind::AccountLocked, Some(user.id), origin, detail, now).await?;
            self.notify(user, Message::AccountLocked { minutes }, now).await;
        }
        Ok(AccountError::Locked { retry_after_secs: lockout.lock_seconds })
    }

    /// A new session for `user_id` and the cookie token that names it.
    pub(crate) fn new_session(&self, user_id: UserId, auth: AuthRecord, origin: &RequestOrigin, now: UnixTime) -> NewSession {
        let record = SessionRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            created_at: now,
            last_seen_at: now,
            auth,
            ip: origin.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: origin.user_agent_text(200),
        };
        NewSession { token: random_token(), record }
    }

    /// Deletes what has expired (setups never finished among it), and audit
    /// events past their retention.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<(), AccountError> {
        self.store.purge_expired(now).await?;
        self.store.purge_unconfirmed_credentials(now - crate::factors::ENROLLMENT_SECONDS).await?;
        Ok(self.store.purge_audit_events(now - self.settings.audit_retention).await?)
    }

    /// The live session behind a cookie token, if any; records activity.
    pub async fn session(&self, token: &str, now: UnixTime) -> Result<Option<ActiveSession>, AccountError> {
        let digest = token_digest(token);
        let Some((record, user)) = self.store.session_by_digest(&digest).await? else {
            return Ok(None);
        };
        let policy = &self.settings.sessions;
        if !policy.is_alive(&record, now) {
            self.store.delete_session(&digest).await?;
            return Ok(None);
        }
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        if policy.should_touch(&record, now) {
            self.store.touch_session(&digest, now).await?;
        }
        Ok(Some(ActiveSession { record, user, digest }))
    }

    /// Ends the session behind a cookie token.
    pub async fn sign_out(&self, token: &str) -> Result<(), AccountError> {
        Ok(self.store.delete_session(&token_digest(token)).await?)
    }

    /// "Sign out everywhere": ends every session of the user, forgets every
    /// remembered browser (which would sign in again with the password
    /// alone), and revokes what applications were given (refresh and access
    /// tokens). Returns how many sessions ended.
    pub async fn sign_out_everywhere(&self, user: &User, origin: &RequestOrigin, now: UnixTime) -> Result<u64, AccountError> {
        let ended = self.store.delete_user_sessions(user.id, None).await?;
        self.store.delete_pending_sign_ins(user.id).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        if let Some(tokens) = &self.tokens {
            tokens.revoke_user_tokens(user.id, now).await?;
        }
        let detail = json!({ "all": true, "sessions": ended, "tokens_revoked": self.tokens.is_some() });
        self.audit(AuditKind::SessionRevoked, Some(user.id), origin, detail, now).await?;
        Ok(ended)
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
        let link = self.issue_link(&user, LinkPurpose::ResetPassword, self.settings.reset_link_ttl, "/reset-password", now).await?;
        let message = Message::PasswordReset { link, minutes: self.settings.reset_link_ttl / 60 };
        if let Err(e) = self.messenger.email(user.email.as_str(), &message).await {
            tracing::error!(error = %e, user = %user.id, "could not send the password-reset email");
        }
        Ok(())
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
        self.check_new_password(&user.email, &user.name, password, confirm)?;
        let hash = self.hash(password).await?;
        if self.store.consume_email_link(&digest, LinkPurpose::ResetPassword, now).await? != Some(user.id) {
            return Err(AccountError::InvalidLink);
        }
        self.store.set_password_hash(user.id, &hash).await?;
        // For a while, emailed codes complete no second step: this mailbox just set the password.
        self.store.mark_password_reset(user.id, now).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        self.store.mark_email_verified(user.id, now).await?;
        // Only the password's counter: a reset link is no proof against the
        // second step's (whoever holds the mailbox could reset it at will).
        self.store.clear_login_failures(user.email.as_str()).await?;
        self.store.delete_user_sessions(user.id, None).await?;
        self.store.delete_pending_sign_ins(user.id).await?;
        self.audit(AuditKind::PasswordChanged, Some(user.id), origin, json!({ "by": "reset_link" }), now).await?;
        self.notify(&user, Message::PasswordChanged, now).await;
        Ok(())
    }

    /// Changes the password of a signed-in user, who must give the current one.
    /// Other sessions end; this one stays.
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
        // A signed-in user re-typing the password: only a lock matters, nothing to clear.
        let _ = self.refuse_if_account_locked(key, now).await?;
        match self.hasher.verify(current, &user.password_hash).await.map_err(|e| AccountError::Hashing(e.to_string()))? {
            PasswordCheck::Mismatch => {
                return Err(match self.count_failure(key, Some(user), "pwd", origin, now).await? {
                    AccountError::InvalidCredentials => AccountError::WrongCurrentPassword,
                    other => other,
                });
            }
            PasswordCheck::Match | PasswordCheck::MatchRehashed(_) => {}
        }
        self.check_new_password(&user.email, &user.name, password, confirm)?;
        let hash = self.hash(password).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        self.store.delete_user_sessions(user.id, Some(&session.digest)).await?;
        self.store.delete_pending_sign_ins(user.id).await?;
        self.audit(AuditKind::PasswordChanged, Some(user.id), origin, json!({ "by": "user" }), now).await?;
        self.notify(user, Message::PasswordChanged, now).await;
        Ok(())
    }

    /// Operator: lifts a lockout after failures and enables a disabled
    /// account; true if there was either to lift.
    pub async fn unlock(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, AccountError> {
        let email = EmailAddress::parse(email)?;
        let had_failures = self.clear_all_failures(email.as_str()).await?;
        let user = self.store.user_by_email(&email).await?;
        let was_disabled = user.as_ref().is_some_and(|u| u.disabled_at.is_some());
        if was_disabled && let Some(u) = &user {
            self.store.set_disabled(u.id, None).await?;
        }
        let detail = json!({ "had_failures": had_failures, "was_disabled": was_disabled });
        self.audit(AuditKind::AccountUnlocked, user.map(|u| u.id), origin, detail, now).await?;
        Ok(had_failures || was_disabled)
    }

    /// All accounts.
    pub async fn list_users(&self) -> Result<Vec<User>, AccountError> {
        Ok(self.store.list_users().await?)
    }

    /// Deletes an account by email; false if there was none.
    pub async fn delete_user(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, AccountError> {
        let email = EmailAddress::parse(email)?;
        let Some(u) = self.store.user_by_email(&email).await? else { return Ok(false) };
        let deleted = self.store.delete_user(u.id).await?;
        if deleted {
            self.audit(AuditKind::UserDeleted, Some(u.id), origin, json!({ "email": u.email.as_str() }), now).await?;
        }
        Ok(deleted)
    }

    /// The account with this id, if it still exists.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, AccountError> {
        Ok(self.store.user_by_id(id).await?)
    }

    /// The account with this address.
    pub async fn find_user(&self, email: &str) -> Result<User, AccountError> {
        let email = EmailAddress::parse(email)?;
        self.store.user_by_email(&email).await?.ok_or(AccountError::NotFound)
    }

    /// Operator: grants or withdraws the admin role.
    pub async fn set_admin(&self, email: &str, admin: bool, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_admin(user.id, admin).await?;
        self.audit(AuditKind::AdminChanged, Some(user.id), origin, json!({ "admin": admin }), now).await?;
        Ok(User { is_admin: admin, ..user })
    }

    /// Clears both failure counters of an account; true if there was something to clear.
    async fn clear_all_failures(&self, email: &str) -> Result<bool, AccountError> {
        let password = self.store.clear_login_failures(email).await?;
        let second = self.store.clear_login_failures(&LockKey::SecondStep(email).key()).await?;
        Ok(password || second)
    }

    /// Whether each of `users` is locked after failed sign-ins or second
    /// steps, in their order (for listings: one read per 250 users, not one per user).
    pub async fn locked_after_failures(&self, users: &[User], now: UnixTime) -> Result<Vec<bool>, AccountError> {
        let mut locked = Vec::with_capacity(users.len());
        for chunk in users.chunks(250) {
            let second: Vec<String> = chunk.iter().map(|u| LockKey::SecondStep(u.email.as_str()).key()).collect();
            let mut keys: Vec<&str> = chunk.iter().map(|u| u.email.as_str()).collect();
            keys.extend(second.iter().map(String::as_str));
            let records = self.store.failure_records(&keys).await?;
            let is_locked = |r: &crate::lockout::FailureRecord| matches!(self.settings.lockout.state(r, now), LockState::Locked { .. });
            let (password, second) = records.split_at(chunk.len());
            locked.extend(password.iter().zip(second).map(|(p, s)| is_locked(p) || is_locked(s)));
        }
        Ok(locked)
    }
}

/// Failures on record when an attempt began (see [`Accounts::clear_failures`]).
#[must_use = "a success must clear the failures on record"]
pub(crate) struct PriorFailures {
    key: String,
    any: bool,
}
