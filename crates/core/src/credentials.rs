//! A user's credentials: setting up factors (from the security page, or
//! inline through the sign-in machine), naming and removing them, recovery
//! codes, and remembered browsers.

use serde_json::json;

use crate::account_store::Stores;
use crate::accounts::capability;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::otp::Requester;
use crate::factors::push::{self, PushDevice, SignedText};
use crate::factors::{
    Credential, EnrollmentCheck, EnrollmentPrompt, FactorKind, NewCredential, RememberedBrowser, SecondFactor, factor, recovery,
};
use crate::messages::Message;
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthEvent, AuthRecord};
use crate::sessions::{ActiveSession, SessionCheck};
use crate::sign_in::SessionUse;
use crate::user::{User, UserId};

capability!(
    /// A user's factors, recovery codes and remembered browsers.
    Credentials,
    credentials
);

/// A credential added from the security page.
#[derive(Debug, Clone)]
pub struct FactorAdded {
    /// Recovery codes to show now (the account's first factor).
    pub recovery_codes: Option<Vec<String>>,
    /// The session's new cookie token, when the first factor also made the
    /// session multi-factor (the browser must get it).
    pub session_token: Option<String>,
}

impl<S: Stores> Credentials<'_, S> {
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
        Ok(factor::<S>(kind.factor()))
    }

    /// Starts setting up a credential of `kind` named `name` for `user`
    /// (`destination`: the phone number, for factors that send codes).
    pub(crate) async fn start_setup(
        &self,
        user: &User,
        kind: FactorKind,
        (name, destination): (&str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        let new = NewCredential { kind, name: valid_name(name)?, destination: destination.to_owned() };
        let address = origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let ctx = self.factor_context_for(Requester::Proven(&address));
        self.enrolling(kind)?.begin_enrollment(&ctx, user, new, now).await?.ok_or(AccountError::NotFound)
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
        let (id, name, kind) = match self.enrolling(kind)?.finish_enrollment(&self.factor_context(), user, pending, response, now).await? {
            EnrollmentCheck::Confirmed { id, name, kind } => (id, name, kind),
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
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<EnrollmentPrompt, AccountError> {
        self.check_factor_change(session, origin, now).await?;
        self.start_setup(&session.user, kind, (name, destination), origin, now).await
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
        self.check_factor_change(session, origin, now).await?;
        if let Some(name) = name {
            self.name_setup(&session.user, (kind, pending), name, now).await?;
        }
        let (credential, recovery_codes) = self.finish_setup(&session.user, kind, (pending, response), origin, now).await?;
        let session_token = match recovery_codes.is_some() && !session.record.auth.is_multi_factor() {
            true => {
                let event = AuthEvent { credential: Some(credential), enrolled: true, ..AuthEvent::performed(kind.factor().method(), now) };
                let token = random_token();
                let auth = session.record.auth.clone().with_event(event);
                self.store.upgrade_session(&session.digest, &token_digest(&token), session.user.id, &auth).await?.then_some(token)
            }
            false => None,
        };
        Ok(FactorAdded { recovery_codes, session_token })
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
        self.check_factor_change(session, origin, now).await?;
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

    /// The companion pairs a phone with the one-time token of a pairing link
    /// (five minutes, once): `device` is its public key and push
    /// subscription, `signature` its key's over the token (it holds the key
    /// it registers). The phone is then a factor, as the security page shows.
    pub async fn pair_push_device(
        &self,
        token: &str,
        (device, name, signature): (PushDevice, &str, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Credential, AccountError> {
        let service = self.keys.push.as_ref().ok_or(AccountError::NotFound)?;
        if !push::valid_public_key(&device.public_key) {
            return Err(AccountError::InvalidInput("the device key is not a P-256 public key".into()));
        }
        if let Some(subscription) = &device.subscription {
            push::check_subscription(subscription).map_err(AccountError::InvalidInput)?;
        }
        if !push::signature_valid(&device.public_key, &SignedText::Pairing { token }, &service.origin, signature) {
            return Err(AccountError::DeviceNotRecognised);
        }
        let pairing = push::pairing_key_id(token);
        let started_after = now - push::PAIRING_SECONDS;
        let setup = self.store.credential_by_public_key_id(&pairing).await?;
        let setup = setup.filter(|c| c.kind == FactorKind::PushDevice && c.confirmed_at.is_none() && c.created_at > started_after);
        let Some(setup) = setup else { return Err(AccountError::InvalidLink) };
        let user = self.store.user_by_id(setup.user_id).await?.filter(|u| u.disabled_at.is_none()).ok_or(AccountError::InvalidLink)?;
        let ctx = self.factor_context();
        // The epoch when the link was made: the conditional write below holds it
        // against the account's, so nothing that ended its sign-ins since is outlived.
        let began = push::PairingSetup::of(&ctx, &setup).ok_or(AccountError::InvalidLink)?;
        if began.security_epoch != user.security_epoch {
            return Err(AccountError::InvalidLink);
        }
        let name = if name.trim().is_empty() { setup.name.clone() } else { valid_name(name)? };
        let paired = Credential {
            sealed_secret: device.sealed(&ctx, &setup.id),
            public_key_id: Some(push::device_key_id(&device.public_key)),
            name,
            confirmed_at: Some(now),
            ..setup
        };
        // Once (of two phones with one link, one pairs), and not across an
        // ending of the account's sign-ins begun meanwhile (an MFA reset).
        if !self.store.pair_push_device(&pairing, &paired, (began.security_epoch, started_after)).await? {
            return Err(AccountError::InvalidLink);
        }
        let kind = FactorKind::PushDevice;
        self.audit(AuditKind::FactorAdded, Some(user.id), origin, json!({ "kind": kind.as_str(), "name": paired.name }), now).await?;
        self.notify(&user, Message::FactorAdded { method: kind.label().to_owned(), name: paired.name.clone() }, now).await;
        Ok(paired)
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
        self.check_factor_change(session, origin, now).await?;
        let user = &session.user;
        let factors = self.store.credentials(user.id).await?;
        let Some(c) = factors.iter().find(|c| c.id == id) else { return Err(AccountError::NotFound) };
        if factors.len() == 1 && self.mfa_required(user) {
            return Err(AccountError::LastFactor);
        }
        // What it vouched for ends with it (a lost phone's sessions, the
        // applications signed in with it), except the session removing it:
        // before the removal, so that a failure leaves the factor to remove
        // again, and after it, for a sign-in that was finishing meanwhile.
        let (mut sessions, mut grants) = self.end_vouched_by(user.id, id, &session.record.id, now).await?;
        if !self.store.delete_credential(user.id, id).await? {
            return Err(AccountError::NotFound);
        }
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        self.store.delete_pending_sign_ins(user.id).await?;
        if factors.len() == 1 {
            // No factor left: recovery codes would be a back door to nothing.
            self.store.delete_all_factors(user.id).await?;
        }
        let (late_sessions, late_grants) = self.end_vouched_by(user.id, id, &session.record.id, now).await?;
        (sessions, grants) = (sessions + late_sessions, grants + late_grants);
        let detail = json!({
            "credential": id, "kind": c.kind.as_str(), "name": c.name, "sessions_ended": sessions, "grants_revoked": grants,
        });
        self.audit(AuditKind::FactorRemoved, Some(user.id), origin, detail, now).await?;
        self.notify(user, Message::FactorRemoved { name: c.name.clone() }, now).await;
        Ok(())
    }
}

impl<S: Stores> crate::accounts::Accounts<S> {
    /// Ends the sessions of `user` whose record `vouched` picks (but `keep`,
    /// the id of the session making the change); returns the ids of those ended.
    pub(crate) async fn end_vouched_sessions(
        &self,
        user: UserId,
        vouched: impl Fn(&AuthRecord) -> bool,
        keep: Option<&str>,
    ) -> Result<Vec<String>, AccountError> {
        let mut ended = Vec::new();
        for s in self.store.user_sessions(user).await?.into_iter().filter(|s| vouched(&s.auth) && Some(s.id.as_str()) != keep) {
            if self.store.delete_user_session(user, &s.id).await? {
                ended.push(s.id);
            }
        }
        Ok(ended)
    }

    /// Ends what credential `id` of `user` vouched for, but the session
    /// `keep`: the sessions it answered in, and the grants signed in with it
    /// or from those sessions. Returns how many sessions and grants ended.
    async fn end_vouched_by(&self, user: UserId, id: &str, keep: &str, now: UnixTime) -> Result<(usize, usize), AccountError> {
        let sessions = self.end_vouched_sessions(user, |auth| auth.used_credential(id), Some(keep)).await?;
        let grants = match &self.tokens {
            Some(tokens) => tokens.revoke_tokens_vouched_by(user, id, &sessions, now).await?,
            None => 0,
        };
        Ok((sessions.len(), grants))
    }

    /// A change to the account's factors (adding, removing, new recovery
    /// codes) needs a knowledge step within `[session]
    /// reauthenticate_after_seconds` (OWASP ASVS 4.0 V3.7.1) and a session
    /// that proves what the account itself demands, whatever a rule let in
    /// ([`SessionUse::FactorChanges`]).
    async fn check_factor_change(&self, session: &ActiveSession, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        match self.sessions().check_session(session, SessionUse::FactorChanges, true, origin, now).await? {
            SessionCheck::Satisfied => Ok(()),
            SessionCheck::Reauthenticate => Err(AccountError::ReauthenticationRequired),
            SessionCheck::StepUp(_) => Err(AccountError::SecondFactorNeeded),
            SessionCheck::Denied => Err(AccountError::SignInDenied),
        }
    }
}

pub(crate) fn valid_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidName);
    }
    Ok(name.to_owned())
}
