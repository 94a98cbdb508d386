//! Sessions: the one behind a cookie, what it may be used for (the sign-in
//! machine's demand, judged again at every use), the user's list of them,
//! and signing out (one, all).

use serde_json::json;

use crate::account_store::Stores;
use crate::accounts::capability;
use crate::audit::{AuditFilter, AuditKind, AuditRecord, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::policy::RuleAction;
use crate::secrets::token_digest;
use crate::session::SessionRecord;
use crate::sign_in::{Demand, Level, SessionUse, demand};
use crate::user::{User, UserId};

capability!(
    /// Sessions: lookup, what a use needs, the list, signing out.
    Sessions,
    sessions
);

/// How many events the security page shows.
pub const RECENT_EVENTS: u32 = 20;

/// A session just opened: the cookie token (shown once) and the record.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Secret for the session cookie.
    pub token: String,
    /// What was stored.
    pub record: SessionRecord,
    /// The password is known from breaches: ask the user to change it now.
    pub change_password: bool,
    /// Suggest setting up a second factor before going on (`[mfa] suggest_enrollment`).
    pub suggest_enrollment: bool,
    /// The language the user chose, if any (the browser keeps it in a cookie).
    pub language: Option<crate::Language>,
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

/// What a use of a session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    /// The session's proof covers this use.
    Satisfied,
    /// The session must prove more first (a step-up toward this demand).
    StepUp(Demand),
    /// A change that needs a recent sign-in, from a session whose last step is not.
    Reauthenticate,
    /// An adaptive rule refuses this use (audited).
    Denied,
}

impl<S: Stores> Sessions<'_, S> {
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
        // Opened before the account's sign-ins were last ended (by a request
        // that was in flight then): dead, like those the ending deleted.
        if record.security_epoch != user.security_epoch {
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
        let ended = self.end_what_sign_ins_gave(user.id, None, now).await?;
        let detail = json!({ "all": true, "sessions": ended, "tokens_revoked": self.tokens.is_some() });
        self.audit(AuditKind::SessionRevoked, Some(user.id), origin, detail, now).await?;
        Ok(ended)
    }

    /// The account's most recent security events, newest first.
    pub async fn recent_events(&self, user: UserId) -> Result<Vec<AuditRecord>, AccountError> {
        Ok(self.store.audit_events(&AuditFilter { user: Some(user), limit: RECENT_EVENTS, ..AuditFilter::default() }).await?)
    }

    /// The user's live sessions, newest first (none from before their sign-ins were last ended).
    pub async fn list(&self, user: &User, now: UnixTime) -> Result<Vec<SessionRecord>, AccountError> {
        let policy = &self.settings.sessions;
        let mut all = self.store.user_sessions(user.id).await?;
        all.retain(|s| policy.is_alive(s, now) && s.security_epoch == user.security_epoch);
        Ok(all)
    }

    /// Ends one of the user's sessions (by its public id).
    pub async fn end(&self, user: &User, session_id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<(), AccountError> {
        if !self.store.delete_user_session(user.id, session_id).await? {
            return Err(AccountError::NotFound);
        }
        self.audit(AuditKind::SessionRevoked, Some(user.id), origin, json!({ "session": session_id }), now).await
    }
    /// Whether `session` may be used for `using` now: its proof covers it,
    /// it needs a step-up toward a demand, a recent sign-in, or a rule refuses.
    pub async fn check_session(
        &self,
        session: &ActiveSession,
        using: SessionUse<'_>,
        change: bool,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<SessionCheck, AccountError> {
        let (user, auth) = (&session.user, &session.record.auth);
        let rules = !self.settings.adaptive.rules.is_empty();
        let recent = || {
            if change && !self.settings.sessions.is_recent(&session.record, now) {
                SessionCheck::Reauthenticate
            } else {
                SessionCheck::Satisfied
            }
        };
        // Most uses read nothing more: the session already meets the most this
        // use could demand, and no rule could deny it. Portcullis's own pages
        // keep the verdict of the sign-in that made a multi-factor session
        // (rules are weighed again only for a session below the account's
        // own demand); applications, the admin console and changes to the
        // factors weigh them every time (a deny rule for this network holds
        // even for a multi-factor session's cookie).
        if !rules || matches!(using, SessionUse::OwnPages) {
            let most = demand(Some(RuleAction::RequireMfa), self.demand_facts(user, using, true, now));
            if let Ok(Some(d)) = &most
                && d.level == Level::Mfa
                && d.met_by(auth, now)
            {
                return Ok(recent());
            }
        }
        let origin = RequestOrigin { client_id: using.client_id().map(str::to_owned), ..origin.clone() };
        let action = if rules {
            let assessment = self.assess(user, &origin, now).await?;
            if assessment.action() == Some(RuleAction::Deny) {
                self.audit(AuditKind::SignInDenied, Some(user.id), &origin, assessment.to_json(), now).await?;
                return Ok(SessionCheck::Denied);
            }
            match assessment.action() {
                Some(RuleAction::AllowSingleFactor) if matches!(using, SessionUse::FactorChanges) => None,
                action => action,
            }
        } else {
            None
        };
        let has_credential = self.has_second_factor(user.id).await?;
        Ok(match demand(action, self.demand_facts(user, using, has_credential, now)) {
            Err(()) => SessionCheck::Denied,
            Ok(Some(d)) if !d.met_by(auth, now) => SessionCheck::StepUp(d),
            Ok(_) => recent(),
        })
    }
}
