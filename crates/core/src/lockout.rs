//! Account lockout ("soft lock") after repeated failed sign-ins.
//!
//! ```text
//!   open ──failure──▶ open(n+1) ──… n+1 ≥ max ──▶ locked(until = now + period)
//!    ▲                                                 │
//!    └──────── success, or period elapsed ─────────────┘
//! ```
//! The counter is keyed by the normalised email address, not by user id, so an
//! address without an account locks exactly like one with an account and the
//! lock message reveals nothing (no account enumeration). Failures older than
//! the window are forgotten. Counters live in the database (see
//! [`crate::account_store::AccountStore::record_login_failure`]) so several server
//! processes share one budget. The rules here are pure; the counting that
//! reads and writes the store is `sign_in/failures.rs`.

use crate::clock::UnixTime;

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that trigger the lock.
    pub max_failures: u32,
    /// Wrong second-step answers (codes, keys) that lock the account, counted
    /// apart from wrong passwords and not reset by a correct one.
    pub max_second_step_failures: u32,
    /// How long the lock lasts, in seconds.
    pub lock_seconds: i64,
    /// Failures older than this many seconds no longer count.
    pub failure_window_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 5, max_second_step_failures: 10, lock_seconds: 300, failure_window_seconds: 900 }
    }
}

/// Which failure counter of an account (keyed by its normalised address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKey<'a> {
    /// Wrong passwords (also at addresses without an account).
    Password(&'a str),
    /// Wrong second-step answers: only someone with the password reaches them,
    /// so a correct password must not reset them.
    SecondStep(&'a str),
}

impl LockKey<'_> {
    /// The stored counter's key.
    pub fn key(&self) -> String {
        match self {
            Self::Password(email) => (*email).to_owned(),
            Self::SecondStep(email) => format!("second-step:{email}"),
        }
    }

    /// The counter a stored key names: (email, whether it counts second-step answers).
    pub fn parse_key(key: &str) -> (&str, bool) {
        match key.strip_prefix("second-step:") {
            Some(email) => (email, true),
            None => (key, false),
        }
    }

    /// Failures on this counter that lock the account.
    pub fn max_failures(&self, policy: &LockoutPolicy) -> u32 {
        match self {
            Self::Password(_) => policy.max_failures,
            Self::SecondStep(_) => policy.max_second_step_failures,
        }
    }
}

/// What the store knows about an account's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureRecord {
    /// Failures counted in the current window.
    pub failures: u32,
    /// End of the current lock, if any (possibly in the past).
    pub locked_until: Option<UnixTime>,
}

/// Whether an attempt may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Attempts are allowed.
    Open,
    /// Attempts are refused for this many more seconds.
    Locked {
        /// Seconds until the lock lifts.
        retry_after_secs: i64,
    },
}

impl LockoutPolicy {
    /// The state at `now` given the stored record.
    pub fn state(&self, record: &FailureRecord, now: UnixTime) -> LockState {
        match record.locked_until {
            Some(until) if until > now => LockState::Locked { retry_after_secs: until - now },
            _ => LockState::Open,
        }
    }

    /// When a lock that starts at `now` ends.
    pub fn lock_until(&self, now: UnixTime) -> UnixTime {
        now + self.lock_seconds
    }

    /// Failures last seen before this instant are forgotten.
    pub fn window_start(&self, now: UnixTime) -> UnixTime {
        now - self.failure_window_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_at_the_configured_count_and_for_the_configured_time() {
        let p = LockoutPolicy::default();
        assert_eq!((LockKey::Password("a@example.com").max_failures(&p), LockKey::SecondStep("a@example.com").max_failures(&p)), (5, 10));
        let rec = FailureRecord { failures: 0, locked_until: Some(p.lock_until(1_000)) };
        assert_eq!(p.state(&rec, 1_000), LockState::Locked { retry_after_secs: 300 });
        assert_eq!(p.state(&rec, 1_299), LockState::Locked { retry_after_secs: 1 });
        assert_eq!(p.state(&rec, 1_300), LockState::Open);
        assert_eq!(p.state(&FailureRecord::default(), 0), LockState::Open);
    }
}
