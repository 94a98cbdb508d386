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
    /// (one read for both).
    pub(crate) async fn refuse_if_account_locked(&self, email: &str, now: UnixTime) -> Result<(), AccountError> {
        let second = LockKey::SecondStep(email).key();
        for record in &self.store.failure_records(&[email, &second]).await? {
            if let LockState::Locked { retry_after_secs } = self.settings.lockout.state(record, now) {
                return Err(AccountError::Locked { retry_after_secs });
            }
        }
        Ok(())
    }

    /// Counts one attempt against the budget of `lock` before its secret is
    /// checked, and refuses it unchecked past the budget. Counting after the
    /// check let attempts sent at once all be checked before any was counted;
    /// counted first, the k-th counted sees at least k, so of any number at
    /// once at most the budget are checked (OWASP ASVS V2.2.1). A right
    /// answer then gives its place back ([`Self::attempt_succeeded`]).
    /// `user` is the account's owner, if it exists (told of a lock).
    pub(crate) async fn count_attempt(
        &self,
        lock: LockKey<'_>,
        user: Option<&User>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<CountedAttempt, AccountError> {
        let policy = &self.settings.lockout;
        let (key, max) = (lock.key(), lock.max_failures(policy));
        match self.store.record_login_failure(&key, now, policy.window_start(now)).await? {
            Some(count) if count <= max => Ok(CountedAttempt { key, count, max }),
            // Past the budget with no lock yet: the budget's attempts are
            // counted but not all were checked (still running, or cancelled
            // mid-hash by a client that went away). Lock now, so a counter
            // is never left refusing without a lock, an end or a word to the owner.
            Some(count) => Err(self.lock_after_failures(&key, user, count, origin, now).await?),
            None => Err(AccountError::Locked { retry_after_secs: policy.lock_seconds }),
        }
    }

    /// A wrong secret, already counted: audited with `detail`, and at the
    /// budget the account locks and its owner is told (the error to show);
    /// under it, `None`.
    pub(crate) async fn attempt_failed(
        &self,
        attempt: &CountedAttempt,
        user: Option<&User>,
        detail: serde_json::Value,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Option<AccountError>, AccountError> {
        self.audit(AuditKind::SignInFailed, user.map(|u| u.id), origin, detail, now).await?;
        if attempt.count < attempt.max {
            return Ok(None);
        }
        Ok(Some(self.lock_after_failures(&attempt.key, user, attempt.count, origin, now).await?))
    }

    /// A right secret: its counted attempt is given back, or, with
    /// [`Forget::All`], every failure on its counter is forgotten (a right
    /// password at the first step; never for the second step's counter).
    pub(crate) async fn attempt_succeeded(&self, attempt: CountedAttempt, forget: Forget) -> Result<(), AccountError> {
        // Only what was counted up to this attempt: attempts counted after it
        // are still being checked, and a lock one of them set stays.
        let n = match forget {
            Forget::ThisAttempt => 1,
            Forget::All => attempt.count,
        };
        Ok(self.store.forget_login_failures(&attempt.key, n).await?)
    }

    /// Before a password or an emailed code is checked for the account keyed
    /// `key` (owned by `user`, if it exists): refused while locked, else
    /// counted ([`Self::count_attempt`]).
    pub(crate) async fn count_password_attempt(
        &self,
        key: &str,
        user: Option<&User>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<CountedAttempt, AccountError> {
        self.refuse_if_account_locked(key, now).await?;
        self.count_attempt(LockKey::Password(key), user, origin, now).await
    }

    /// A wrong password or emailed code (`method`, an `amr` value), already
    /// counted: the error to show, invalid credentials or, at the budget, the lock.
    pub(crate) async fn password_attempt_failed(
        &self,
        attempt: &CountedAttempt,
        user: Option<&User>,
        method: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<AccountError, AccountError> {
        let account = if user.is_some() { "known" } else { "unknown" };
        let locked = self.attempt_failed(attempt, user, json!({ "method": method, "account": account }), origin, now).await?;
        Ok(locked.unwrap_or(AccountError::InvalidCredentials))
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
        if !self.store.lock_account(key, lockout.lock_until(now), now).await? {
            // Locked already by an attempt that raced this one, which told the owner.
            return Ok(AccountError::Locked { retry_after_secs: lockout.lock_seconds });
        }
        tracing::warn!(account = key, failures, "account locked after repeated failures");
        let minutes = (lockout.lock_seconds + 59) / 60;
        // Audited for an address without an account too: the operator sees
        // someone guessing there, and the answer costs the same work either way
        // (only the owner's notice differs).
        let (user_id, second_step) = match user {
            Some(user) => (Some(user.id), key != user.email.as_str()),
            None => (None, false),
        };
        let detail = json!({ "failures": failures, "minutes": minutes, "second_step": second_step, "account": if user.is_some() { "known" } else { "unknown" } });
        self.audit(AuditKind::AccountLocked, user_id, origin, detail, now).await?;
        if let Some(user) = user {
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

/// An attempt counted before its secret was checked ([`crate::accounts::Accounts::count_attempt`]).
#[must_use = "a counted attempt is given back on success or reported as failed"]
pub(crate) struct CountedAttempt {
    key: String,
    count: u32,
    max: u32,
}

/// What a right secret forgets.
pub(crate) enum Forget {
    /// Only its own counted attempt.
    ThisAttempt,
    /// Every failure on the counter.
    All,
}
