//! Counting failures against the lockout rules of [`crate::lockout`]: the
//! bookkeeping in the store, shared by every step that checks a password or
//! an answer (the first steps, the second step, the operator's unlock).

use serde_json::json;

use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::lockout::{LockKey, LockState};
use crate::messages::Message;
use crate::user::User;

impl<S: crate::account_store::Stores> crate::accounts::Accounts<S> {
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

    /// Clears both failure counters of an account; true if there was something to clear.
    pub(crate) async fn clear_all_failures(&self, email: &str) -> Result<bool, AccountError> {
        let password = self.store.clear_login_failures(email).await?;
        let second = self.store.clear_login_failures(&LockKey::SecondStep(email).key()).await?;
        Ok(password || second)
    }
}

/// Failures on record when an attempt began (see [`crate::accounts::Accounts::clear_failures`]).
#[must_use = "a success must clear the failures on record"]
pub(crate) struct PriorFailures {
    key: String,
    any: bool,
}
