//! Push approval's calls from outside the sign-in's own browser: the
//! waiting page asking where its request stands, and the companion on the
//! phone listing and answering requests. Every companion call is signed by
//! the phone's device key ([`SignedText`]); the answer is one conditional
//! write, so a request is answered once however many calls race.
//!
//! An approval only marks the request: the sign-in's own browser then takes
//! it as its second-step answer ([`SignIn::complete_second_step`]), so a
//! session is only ever made in the browser that typed the password.

use serde_json::json;

use super::SignIn;
use crate::account_store::Stores;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::factors::push::{self, PushDecision, PushRequest, PushStatus, SignedText};
use crate::factors::{Credential, FactorKind};
use crate::lockout::LockKey;
use crate::messages::Message;
use crate::secrets::token_digest;
use crate::user::User;

/// Where a push request stands, as the waiting page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// No answer yet.
    Waiting,
    /// Approved: the page submits the request as its answer.
    Approved,
    /// Denied on the phone; the sign-in ended.
    Denied,
    /// The wrong number was picked; the sign-in ended.
    WrongNumber,
    /// Two minutes passed without an answer (or it was taken already).
    Expired,
}

impl<S: Stores> SignIn<'_, S> {
    /// Where push request `request` of the pending sign-in behind `token`
    /// stands. Only that sign-in's browser (its cookie) can ask; nothing is written.
    pub async fn approval_state(&self, token: &str, request: &str, now: UnixTime) -> Result<ApprovalState, AccountError> {
        let r = self.store.push_request(request).await?.filter(|r| r.sign_in == token_digest(token)).ok_or(AccountError::NotFound)?;
        Ok(match r.status {
            PushStatus::Pending if r.answerable(now) => ApprovalState::Waiting,
            PushStatus::Approved if now < r.expires_at + push::TAKE_GRACE_SECONDS => ApprovalState::Approved,
            PushStatus::Denied => ApprovalState::Denied,
            PushStatus::WrongNumber => ApprovalState::WrongNumber,
            PushStatus::Pending | PushStatus::Approved | PushStatus::Used => ApprovalState::Expired,
        })
    }

    /// The paired phone whose key is `public_key`, if `signature` is that key's over `text`.
    async fn signing_device(&self, public_key: &str, text: SignedText<'_>, signature: &str) -> Result<(Credential, User), AccountError> {
        let service = self.keys.push.as_ref().ok_or(AccountError::NotFound)?;
        let device = self
            .store
            .credential_by_public_key_id(&push::device_key_id(public_key))
            .await?
            .filter(|c| c.kind == FactorKind::PushDevice && c.confirmed_at.is_some() && c.flagged_at.is_none())
            .ok_or(AccountError::DeviceNotRecognised)?;
        if !push::signature_valid(public_key, &text, &service.origin, signature) {
            return Err(AccountError::DeviceNotRecognised);
        }
        let user = self.store.user_by_id(device.user_id).await?.filter(|u| u.disabled_at.is_none());
        Ok((device, user.ok_or(AccountError::DeviceNotRecognised)?))
    }

    /// The companion: the requests waiting for the phone whose key signed
    /// the listing at `at` (its clock, within a minute of ours).
    pub async fn pending_approvals(
        &self,
        public_key: &str,
        (at, signature): (UnixTime, &str),
        now: UnixTime,
    ) -> Result<Vec<PushRequest>, AccountError> {
        if (now - at).abs() > push::CLOCK_SKEW_SECONDS {
            return Err(AccountError::DeviceNotRecognised);
        }
        let (_, user) = self.signing_device(public_key, SignedText::Listing { at }, signature).await?;
        Ok(self.store.pending_push_requests(user.id, now).await?)
    }

    /// The companion answers request `request` with `decision`, signed by
    /// its key. The right number approves it (the sign-in's browser then
    /// finishes); a wrong one, or "this wasn't me", ends the sign-in: the
    /// wrong number counts as a failed second step, the denial is audited,
    /// told to the owner, and counts toward pausing push.
    pub async fn answer_approval(
        &self,
        public_key: &str,
        (request, decision, signature): (&str, PushDecision, &str),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<ApprovalState, AccountError> {
        let (device, user) = self.signing_device(public_key, SignedText::Answer { request, decision }, signature).await?;
        let r = self.store.push_request(request).await?.filter(|r| r.user_id == user.id).ok_or(AccountError::PushRequestEnded)?;
        if !r.answerable(now) {
            return Err(AccountError::PushRequestEnded);
        }
        let (to, state) = match decision {
            PushDecision::Approve(n) if n == r.number => (PushStatus::Approved, ApprovalState::Approved),
            PushDecision::Approve(_) => (PushStatus::WrongNumber, ApprovalState::WrongNumber),
            PushDecision::Deny => (PushStatus::Denied, ApprovalState::Denied),
        };
        if !self.store.answer_push_request((user.id, &r.id), (to, &device.id), now).await? {
            return Err(AccountError::PushRequestEnded);
        }
        let origin = &RequestOrigin { client_id: r.context.client_id.clone(), ..origin.clone() };
        match state {
            ApprovalState::WrongNumber => {
                self.store.take_pending_sign_in(&r.sign_in).await?;
                let email = user.email.as_str();
                let attempt = self.count_attempt(LockKey::SecondStep(email), Some(&user), origin, now).await?;
                let detail = json!({ "method": "swk", "factor": "push", "account": "known", "second_step": true, "wrong_number": true });
                self.attempt_failed(&attempt, Some(&user), detail, origin, now).await?;
                Err(AccountError::WrongNumber)
            }
            ApprovalState::Denied => {
                self.store.take_pending_sign_in(&r.sign_in).await?;
                let detail = json!({ "request": r.id, "device": device.id, "browser": r.context.user_agent, "ip": r.context.ip });
                self.audit(AuditKind::PushDenied, Some(user.id), origin, detail, now).await?;
                let message = Message::SignInDeniedOnPhone { browser: r.context.user_agent.clone(), ip: r.context.ip.clone() };
                self.notify(&user, message, now).await;
                Ok(state)
            }
            _ => Ok(state),
        }
    }
}
