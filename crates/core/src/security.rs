//! What surrounds every sign-in: the audit trail, the adaptive-rule
//! assessment (risk, matching rule), the bookkeeping after a success (known
//! devices, last location, new-device notice), and the sessions and events a
//! user sees on the security page.

use serde_json::{Value, json};

use crate::accounts::{Accounts, ActiveSession, NewSession};
use crate::audit::{AuditFilter, AuditKind, AuditRecord, NewAuditEvent, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::mail::Message;
use crate::policy::{Assessment, LastSignIn, Location, Signals, distance_km, travel_speed_kmh};
use crate::secrets::{random_token, token_digest};
use crate::session::{AuthRecord, FinishedSignIn, SessionRecord};
use crate::store::Stores;
use crate::user::{User, UserId};

/// How many events the security page shows.
pub const RECENT_EVENTS: u32 = 20;

/// Role names a rule or the MFA requirement can name.
pub const ROLE_ADMIN: &str = "admin";
/// Every account that is not an admin.
pub const ROLE_USER: &str = "user";
/// In `mfa_required_for`: every account.
pub const EVERYONE: &str = "everyone";

/// A user's roles.
pub fn roles(user: &User) -> Vec<&'static str> {
    vec![if user.is_admin { ROLE_ADMIN } else { ROLE_USER }]
}

/// What the admin console may show a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// An admin with a second factor performed in this session (not an
    /// emailed code, not a remembered browser), recent enough for a change.
    Granted,
    /// An admin whose session proves less: step up toward this demand first.
    StepUp(crate::sign_in::Demand),
    /// A change, from a session whose last sign-in step is not recent: sign in again.
    Reauthenticate,
    /// Not an admin, or a rule refuses.
    NotAdmin,
}

/// Notices taken from the queue per round.
const NOTICE_BATCH: u32 = 20;
/// How long a claimed notice stays hidden from other senders (seconds).
const NOTICE_LEASE_SECONDS: i64 = 300;
/// Delivery attempts before a notice is given up (logged).
const NOTICE_ATTEMPTS: u32 = 8;

/// When to try a notice again after `attempts` failures: one minute, doubling, at most an hour.
fn notice_backoff(attempts: u32) -> i64 {
    (60_i64 << attempts.saturating_sub(1).min(6)).min(3600)
}

/// An audit event; an operator acting is named in its detail (`by`).
fn audit_event(kind: AuditKind, user: Option<UserId>, origin: &RequestOrigin, mut detail: Value, now: UnixTime) -> NewAuditEvent {
    if let (Some(actor), Some(fields)) = (origin.actor, detail.as_object_mut()) {
        fields.insert("by".into(), actor.to_string().into());
    }
    NewAuditEvent { at: now, kind, user, origin: origin.clone(), detail }
}

/// A fresh device id for a browser that has none (its cookie value).
pub fn new_device_id() -> String {
    random_token()
}

impl<S: Stores> Accounts<S> {
    /// Appends an event to the audit log (the domain's own events, and
    /// operators' actions from the command line or the admin console).
    pub async fn audit(
        &self,
        kind: AuditKind,
        user: Option<UserId>,
        origin: &RequestOrigin,
        detail: Value,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        self.store.record_audit_event(&audit_event(kind, user, origin, detail, now)).await?;
        Ok(())
    }

    /// Records an operator's change to application `client_id` (`action`: created, policy_changed, …).
    pub async fn audit_client_change(
        &self,
        client_id: &str,
        action: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let origin = RequestOrigin { client_id: Some(client_id.to_owned()), ..origin.clone() };
        self.audit(AuditKind::ClientChanged, None, &origin, json!({ "action": action }), now).await
    }

    /// Reads the audit log.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, AccountError> {
        Ok(self.store.audit_events(filter).await?)
    }

    /// The account's most recent security events, newest first.
    pub async fn recent_events(&self, user: UserId) -> Result<Vec<AuditRecord>, AccountError> {
        self.audit_log(&AuditFilter { user: Some(user), limit: RECENT_EVENTS, ..AuditFilter::default() }).await
    }

    /// Whether `user` must use a second factor: required for the account, for one of its roles, or for everyone.
    pub fn mfa_required(&self, user: &User) -> bool {
        let for_whom = &self.settings.mfa_required_for;
        user.mfa_required || for_whom.iter().any(|w| w == EVERYONE || roles(user).contains(&w.as_str()))
    }

    fn locate(&self, origin: &RequestOrigin) -> Location {
        origin.ip.and_then(|ip| self.geo.as_ref().and_then(|g| g.locate(ip))).unwrap_or_default()
    }

    /// Measures the signals of a sign-in by `user` from `origin` and evaluates the operator's rules.
    pub(crate) async fn assess(&self, user: &User, origin: &RequestOrigin, now: UnixTime) -> Result<Assessment, AccountError> {
        let location = self.locate(origin);
        let history = self.store.sign_in_history(user.id, &device_digest(origin), now - 3600).await?;
        let last = history.last;
        let travel_km = last.as_ref().and_then(|l| distance_km(&l.location, &location));
        let new_country = match (last.as_ref().and_then(|l| l.location.country.as_ref()), &location.country) {
            (Some(before), Some(now)) => before != now,
            _ => false,
        };
        let signals = Signals {
            client: origin.client_id.clone(),
            roles: roles(user),
            ip: origin.ip,
            travel_kmh: travel_km.zip(last.as_ref()).map(|(km, l)| travel_speed_kmh(km, l.at, now)),
            travel_km,
            location,
            new_device: !history.device.known,
            failures_last_hour: history.failures,
            new_country,
        };
        Ok(self.settings.adaptive.evaluate(&signals))
    }

    /// Refuses a sign-in to a disabled account, or one that a rule denies, recording why.
    pub(crate) async fn refuse_if_denied(
        &self,
        user: &User,
        origin: &RequestOrigin,
        assessment: &Assessment,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        if user.disabled_at.is_some() {
            self.audit(AuditKind::SignInDenied, Some(user.id), origin, json!({ "reason": "account_disabled" }), now).await?;
            return Err(AccountError::AccountDisabled);
        }
        if assessment.action() == Some(crate::policy::RuleAction::Deny) {
            self.audit(AuditKind::SignInDenied, Some(user.id), origin, assessment.to_json(), now).await?;
            return Err(AccountError::SignInDenied);
        }
        Ok(())
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
            fields.insert("acr".into(), json!(auth.acr()));
        }
        let session = self.new_session(user.id, auth, origin, now);
        let event = audit_event(AuditKind::SignInSucceeded, Some(user.id), origin, detail, now);
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
        if !device.known && device.any_known {
            let browser = origin.user_agent_text(120);
            let message = Message::NewDeviceSignIn {
                browser: if browser.is_empty() { "Unknown browser".into() } else { browser },
                ip,
                country: last.location.country.unwrap_or_default(),
            };
            self.notify(user, message, now).await;
        }
        Ok(session)
    }

    /// Operator: disables an account (it cannot sign in; its sessions,
    /// remembered browsers and tokens end) until [`Accounts::unlock`].
    pub async fn disable(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_disabled(user.id, Some(now)).await?;
        self.store.delete_user_sessions(user.id, None).await?;
        self.store.delete_pending_sign_ins(user.id).await?;
        self.store.forget_all_remembered_browsers(user.id, now).await?;
        if let Some(tokens) = &self.tokens {
            tokens.revoke_user_tokens(user.id, now).await?;
        }
        self.audit(AuditKind::AccountLocked, Some(user.id), origin, json!({ "disabled": true }), now).await?;
        Ok(User { disabled_at: Some(now), ..user })
    }

    /// Accounts matching `query` (email or name), for the admin console.
    pub async fn search_users(&self, query: &str, limit: u32) -> Result<Vec<User>, AccountError> {
        Ok(self.store.search_users(query, limit).await?)
    }

    /// Whether this session may use the admin console (`change`: to act, not
    /// only to look): an admin who performed a second factor in this session
    /// (neither a remembered browser nor an emailed code: the reset link goes
    /// to the same mailbox), and for a change, recently (as for credential
    /// changes, OWASP ASVS 4.0 V3.7.1).
    pub async fn admin_access(
        &self,
        session: &ActiveSession,
        change: bool,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<AdminAccess, AccountError> {
        use crate::sign_in::{SessionCheck, SessionUse};
        if !session.user.is_admin || session.user.disabled_at.is_some() {
            return Ok(AdminAccess::NotAdmin);
        }
        Ok(match self.check_session(session, SessionUse::Admin, change, origin, now).await? {
            SessionCheck::Satisfied => AdminAccess::Granted,
            SessionCheck::StepUp(demand) => AdminAccess::StepUp(demand),
            SessionCheck::Reauthenticate => AdminAccess::Reauthenticate,
            SessionCheck::Denied => AdminAccess::NotAdmin,
        })
    }

    /// Signalled whenever a notice is queued, so the delivery task wakes at once.
    pub fn notices_queued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notices_queued.clone()
    }

    /// Sends the security notices that are due; returns how many were sent.
    /// A failed delivery is retried with a growing delay and given up (and
    /// logged) after a few attempts; the change it reports is never undone.
    pub async fn deliver_notices(&self, now: UnixTime) -> Result<usize, AccountError> {
        let mut sent = 0;
        loop {
            let batch = self.store.claim_notices(now, now + NOTICE_LEASE_SECONDS, NOTICE_BATCH).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for notice in batch {
                let message: Message = match serde_json::from_str(&notice.message) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, id = notice.id, "dropping an unreadable queued notice");
                        self.store.remove_notice(notice.id).await?;
                        continue;
                    }
                };
                match self.messenger.email(&notice.recipient, &message).await {
                    Ok(()) => {
                        self.store.remove_notice(notice.id).await?;
                        sent += 1;
                    }
                    Err(e) if notice.attempts >= NOTICE_ATTEMPTS => {
                        tracing::error!(error = %e, kind = message.kind(), attempts = notice.attempts, "giving up on a security notice");
                        self.store.remove_notice(notice.id).await?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, kind = message.kind(), attempts = notice.attempts, "security notice not sent; will retry");
                        self.store.retry_notice(notice.id, notice.attempts, now + notice_backoff(notice.attempts)).await?;
                    }
                }
            }
        }
    }

    /// The user's live sessions, newest first.
    pub async fn sessions(&self, user: UserId, now: UnixTime) -> Result<Vec<SessionRecord>, AccountError> {
        let policy = &self.settings.sessions;
        let mut all = self.store.user_sessions(user).await?;
        all.retain(|s| policy.is_alive(s, now));
        Ok(all)
    }

    /// Ends one of the user's sessions (by its public id).
    pub async fn end_session(&self, user: &User, session_id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        if !self.store.delete_user_session(user.id, session_id).await? {
            return Err(AccountError::NotFound);
        }
        self.audit(AuditKind::SessionRevoked, Some(user.id), origin, json!({ "session": session_id }), now).await
    }
}

/// The stored form of a device cookie (a browser without one is a device never seen).
fn device_digest(origin: &RequestOrigin) -> String {
    origin.device.as_deref().map(token_digest).unwrap_or_default()
}
