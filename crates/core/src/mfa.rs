//! Second factors outside the sign-in itself: setting them up (from the
//! security page, or inline through the sign-in machine), naming and removing
//! them, recovery codes, remembered browsers, passwordless passkey sign-in,
//! and what operators do to them. The second step of a sign-in is the
//! machine's (`crate::sign_in`).

use serde_json::json;

use crate::accounts::{Accounts, ActiveSession, SignInOutcome};
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::webauthn::{self, PasskeySignIn};
use crate::factors::{
    Credential, EnrollmentCheck, EnrollmentPrompt, FactorContext, FactorKind, NewCredential, PublicKeyChallenge, RememberedBrowser,
    SecondFactor, all, recovery,
};
use crate::mail::Message;
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthEvent, AuthMethod, AuthRecord};
use crate::store::Stores;
use crate::user::{User, UserId};

/// MAC purpose of remember-this-browser cookies.
const REMEMBER_PURPOSE: &str = "remember-browser";

/// A credential added from the security page.
#[derive(Debug, Clone)]
pub struct FactorAdded {
    /// Recovery codes to show now (the account's first factor).
    pub recovery_codes: Option<Vec<String>>,
    /// The session's new cookie token, when the first factor also made the
    /// session multi-factor (the browser must get it).
    pub session_token: Option<String>,
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

    /// Whether users may add credentials of `kind` on this server.
    pub fn can_enroll(&self, kind: FactorKind) -> bool {
        match kind {
            FactorKind::Totp => self.settings.totp_enabled,
            FactorKind::Phone => self.settings.otp.sms_enabled,
            FactorKind::SecurityKey | FactorKind::Passkey => self.keys.relying_party.is_some(),
        }
    }

    /// Refuses a change to how the account signs in (a factor added or removed,
    /// new recovery codes) from a session whose last sign-in step is older than
    /// `[session] reauthenticate_after_seconds` (OWASP ASVS 4.0 V3.7.1).
    pub(crate) fn check_recent_sign_in(&self, session: &ActiveSession, now: UnixTime) -> Result<(), AccountError> {
        if self.settings.sessions.is_recent(&session.record, now) { Ok(()) } else { Err(AccountError::ReauthenticationRequired) }
    }

    /// Whether the user has an enrolled second factor (recovery codes alone do
    /// not count; a disabled key does, so its owner still needs a second step).
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, AccountError> {
        Ok(!self.store.credentials(user).await?.is_empty())
    }

    /// Counts a code sent at the request of `client`; refuses past the hourly cap.
    pub(crate) async fn hit_client_code_cap(&self, client: &str, now: UnixTime) -> Result<(), AccountError> {
        let quota = crate::factors::otp::hourly(format!("otp-client:{client}"), self.settings.otp.per_client_per_hour);
        self.store.take_send_quotas(&[quota], now).await?.map_err(|retry_after_secs| AccountError::TooManyCodes { retry_after_secs })
    }

    /// The valid remembered browser behind a cookie value (`id.tag`), for this user only.
    pub(crate) async fn remembered_browser(
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
    pub(crate) async fn remember(
        &self,
        user: &User,
        auth: &AuthRecord,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<String, AccountError> {
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

    /// The factor that enrolls credentials of `kind`.
    fn enrolling(&self, kind: FactorKind) -> Result<Box<dyn SecondFactor<S>>, AccountError> {
        if !self.can_enroll(kind) {
            return Err(AccountError::NotFound);
        }
        all::<S>().into_iter().find(|f| f.enrolls().contains(&kind)).ok_or(AccountError::NotFound)
    }

    /// Starts setting up a credential of `kind` named `name` for `user`
    /// (`destination`: the phone number, for factors that send codes).
    pub(crate) async fn start_setup(
        &self,
        user: &User,
        kind: FactorKind,
        (name, destination): (&str, &str),
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        let new = NewCredential { kind, name: valid_name(name)?, destination: destination.to_owned() };
        self.enrolling(kind)?.begin_enrollment(&self.factor_context(), user, new, now).await?.ok_or(AccountError::NotFound)
    }

    /// Shows an unfinished setup again (after a wrong first code).
    pub(crate) async fn pending_setup(
        &self,
        user: &User,
        kind: FactorKind,
        pending: &str,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        self.enrolling(kind)?.pending_enrollment(&self.factor_context(), user, pending, now).await?.ok_or(AccountError::NotFound)
    }

    /// Finishes a setup with its first response: the new credential's id, and
    /// recovery codes when it is the user's first factor (shown once).
    pub(crate) async fn finish_setup(
        &self,
        user: &User,
        kind: FactorKind,
        (pending, response): (&str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(String, Option<Vec<String>>), AccountError> {
        let first = !self.has_second_factor(user.id).await?;
        let (id, name) = match self.enrolling(kind)?.finish_enrollment(&self.factor_context(), user, pending, response, now).await? {
            EnrollmentCheck::Confirmed { id, name } => (id, name),
            EnrollmentCheck::Rejected if matches!(kind, FactorKind::SecurityKey | FactorKind::Passkey) => {
                return Err(AccountError::KeyNotAccepted);
            }
            EnrollmentCheck::Rejected => return Err(AccountError::InvalidCode),
            EnrollmentCheck::Unknown => return Err(AccountError::NotFound),
        };
        self.audit(AuditKind::FactorAdded, Some(user.id), origin, json!({ "kind": kind.as_str(), "name": name }), now).await?;
        self.notify(user, Message::FactorAdded { method: kind.label().to_owned(), name }, now).await;
        let codes = if first && self.store.recovery_codes_left(user.id).await? == 0 {
            Some(self.new_recovery_codes(user, origin, now).await?)
        } else {
            None
        };
        Ok((id, codes))
    }

    /// Security page: starts setting up a credential (needs a recent sign-in).
    pub async fn start_enrollment(
        &self,
        session: &ActiveSession,
        kind: FactorKind,
        (name, destination): (&str, &str),
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        self.check_recent_sign_in(session, now)?;
        self.start_setup(&session.user, kind, (name, destination), now).await
    }

    /// Security page: shows an unconfirmed setup again (after a wrong first code).
    pub async fn pending_enrollment(
        &self,
        user: &User,
        kind: FactorKind,
        pending: &str,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        self.pending_setup(user, kind, pending, now).await
    }

    /// Names a setup in progress (an unconfirmed credential of `kind`, still
    /// within its time) before it is finished; nothing else can be renamed so.
    pub(crate) async fn name_setup(
        &self,
        user: &User,
        (kind, id): (FactorKind, &str),
        name: &str,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let name = valid_name(name)?;
        match self.store.credential(user.id, id).await? {
            Some(c) if c.kind == kind && crate::factors::setup_is_live(&c, now) => {
                self.store.rename_credential(user.id, id, &name).await?;
                Ok(())
            }
            _ => Err(AccountError::NotFound),
        }
    }

    /// Security page: finishes setting up a credential with its first
    /// response (needs a recent sign-in, as starting did), under `name` if
    /// given. The account's first factor comes with recovery codes, and the
    /// session that set it up then counts it as performed (it just answered
    /// with it), under a new token.
    pub async fn finish_enrollment(
        &self,
        session: &ActiveSession,
        (kind, name): (FactorKind, Option<&str>),
        (pending, response): (&str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<FactorAdded, AccountError> {
        self.check_recent_sign_in(session, now)?;
        if let Some(name) = name {
            self.name_setup(&session.user, (kind, pending), name, now).await?;
        }
        let (credential, recovery_codes) = self.finish_setup(&session.user, kind, (pending, response), origin, now).await?;
        let session_token = match recovery_codes.is_some() && !session.record.auth.is_multi_factor() {
            true => {
                let event = AuthEvent { credential: Some(credential), ..AuthEvent::performed(kind.factor().method(), now) };
                let token = random_token();
                let auth = session.record.auth.clone().with_event(event);
                self.store.upgrade_session(&session.digest, &token_digest(&token), session.user.id, &auth).await?.then_some(token)
            }
            false => None,
        };
        Ok(FactorAdded { recovery_codes, session_token })
    }

    /// Starts a passwordless sign-in with a passkey.
    pub async fn begin_passkey_sign_in(&self, now: UnixTime) -> Result<PublicKeyChallenge, AccountError> {
        webauthn::begin_passkey_sign_in(&self.factor_context(), now).await
    }

    /// Finishes a passwordless sign-in: a user-verified passkey assertion is
    /// a first step that is multi-factor on its own (possession, and the PIN
    /// or biometric the authenticator checked), so the machine asks for more
    /// only where the application does not count passkeys.
    pub async fn passkey_sign_in(
        &self,
        (ceremony, response): (&str, &str),
        remembered: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SignInOutcome, AccountError> {
        match webauthn::finish_passkey_sign_in(&self.factor_context(), ceremony, response, now).await? {
            PasskeySignIn::Accepted { user, credential } => {
                let user = self.store.user_by_id(user).await?.ok_or(AccountError::KeyNotAccepted)?;
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

    /// Security page: new recovery codes (the old set stops working; shown
    /// once). Needs a recent sign-in and a second factor: recovery codes
    /// stand in for one.
    pub async fn regenerate_recovery_codes(
        &self,
        session: &ActiveSession,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Vec<String>, AccountError> {
        self.check_recent_sign_in(session, now)?;
        if !self.has_second_factor(session.user.id).await? {
            return Err(AccountError::RecoveryCodesNeedAFactor);
        }
        self.new_recovery_codes(&session.user, origin, now).await
    }

    async fn new_recovery_codes(&self, user: &User, origin: &RequestOrigin, now: UnixTime) -> Result<Vec<String>, AccountError> {
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
        let name = valid_name(name)?;
        if !self.store.rename_credential(user.id, id, &name).await? {
            return Err(AccountError::NotFound);
        }
        self.audit(AuditKind::FactorRenamed, Some(user.id), origin, json!({ "credential": id, "name": name }), now).await
    }

    /// Security page: removes a factor (needs a recent sign-in); refuses the
    /// last one while MFA is required for the user.
    pub async fn remove_factor(
        &self,
        session: &ActiveSession,
        id: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        self.check_recent_sign_in(session, now)?;
        let user = &session.user;
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
        self.store.delete_pending_sign_ins(user.id).await?;
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
