//! Per-client-IP rate limits on the endpoints an attacker would hammer
//! (sign-in, sign-up, password reset). Fixed one-minute windows counted in the
//! database, so the limit holds across server processes.

use crate::clock::UnixTime;

/// A rate-limited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedAction {
    /// POST /login.
    SignIn,
    /// POST /signup.
    SignUp,
    /// Password-reset requests and verification resends (each sends mail).
    SendEmail,
}

impl LimitedAction {
    fn key(self) -> &'static str {
        match self {
            Self::SignIn => "signin",
            Self::SignUp => "signup",
            Self::SendEmail => "email",
        }
    }
}

/// Requests allowed per client IP per minute, per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts.
    pub sign_in_per_minute: u32,
    /// Sign-ups.
    pub sign_up_per_minute: u32,
    /// Emails requested (resets, verification resends).
    pub send_email_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { sign_in_per_minute: 30, sign_up_per_minute: 10, send_email_per_minute: 5 }
    }
}

/// The window length in seconds.
pub const WINDOW_SECONDS: i64 = 60;

/// The counter to bump for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBucket {
    /// Stable key: action and client address.
    pub key: String,
    /// Start of the current window.
    pub window_start: UnixTime,
}

impl RateLimits {
    /// The bucket a request from `client` falls into at `now`.
    pub fn bucket(&self, action: LimitedAction, client: &str, now: UnixTime) -> RateBucket {
        RateBucket { key: format!("{}:{client}", action.key()), window_start: now - now.rem_euclid(WINDOW_SECONDS) }
    }

    /// Given the hit count after this request, `Err(retry_after_secs)` when over the limit.
    pub fn decide(&self, action: LimitedAction, bucket: &RateBucket, hits: u32, now: UnixTime) -> Result<(), i64> {
        let limit = match action {
            LimitedAction::SignIn => self.sign_in_per_minute,
            LimitedAction::SignUp => self.sign_up_per_minute,
            LimitedAction::SendEmail => self.send_email_per_minute,
        };
        if hits > limit { Err((bucket.window_start + WINDOW_SECONDS - now).max(1)) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_minute_and_limit_after_the_quota() {
        let l = RateLimits::default();
        let b = l.bucket(LimitedAction::SignIn, "127.0.0.1", 125);
        assert_eq!(b.window_start, 120);
        assert_eq!(b.key, "signin:127.0.0.1");
        assert_eq!(l.decide(LimitedAction::SignIn, &b, 30, 125), Ok(()));
        assert_eq!(l.decide(LimitedAction::SignIn, &b, 31, 125), Err(55));
        assert_eq!(l.decide(LimitedAction::SendEmail, &b, 6, 179), Err(1));
    }
}
