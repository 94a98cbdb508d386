//! Per-client-IP rate limits on the endpoints an attacker would hammer
//! (sign-in, sign-up, password reset): fixed one-minute windows counted in the
//! database, so the limit holds across server processes. Caps on messages sent
//! (codes by email and SMS) are sliding windows ([`SlidingQuota`]), since a
//! fixed window lets twice the cap through around its boundary.

use crate::clock::UnixTime;

/// A rate-limited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedAction {
    /// POST /login (and the other first steps).
    SignIn,
    /// A POST to a sign-in in progress (second step, inline enrollment):
    /// its own bucket, with the sign-in limit.
    SecondStep,
    /// POST /signup.
    SignUp,
    /// POST /setup (the first administrator): its own bucket, with the sign-up
    /// limit, so a flood of sign-ups from a shared address cannot hold setup up.
    FirstAdmin,
    /// Password-reset requests and verification resends (each sends mail).
    SendEmail,
    /// An authorization request that must wait for a sign-in (each stores a pending request).
    Authorize,
    /// A dynamic client registration (each stores a client).
    RegisterClient,
    /// A push-approval companion's listing of waiting requests (it polls
    /// while open, every 3 s): four times the sign-in limit, so several
    /// phones behind one address (a carrier's NAT) fit.
    CompanionPoll,
}

impl LimitedAction {
    fn key(self) -> &'static str {
        match self {
            Self::SignIn => "signin",
            Self::SecondStep => "second-step",
            Self::SignUp => "signup",
            Self::FirstAdmin => "first-admin",
            Self::SendEmail => "email",
            Self::Authorize => "authorize",
            Self::RegisterClient => "register",
            Self::CompanionPoll => "companion",
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
    /// Authorization requests that wait for a sign-in (a stored pending request each).
    pub authorize_per_minute: u32,
    /// Dynamic client registrations.
    pub register_client_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            sign_in_per_minute: 30,
            sign_up_per_minute: 10,
            send_email_per_minute: 5,
            authorize_per_minute: 60,
            register_client_per_minute: 3,
        }
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

/// The key a client address is counted under: an IPv4 address as it is, an
/// IPv6 address by its /64 (one subscriber usually gets a whole /64, so
/// counting each address would give them 2^64 budgets).
pub fn client_key(client: &str) -> String {
    prefix_key(client, 4)
}

/// The key of the network a client address belongs to, for what one site
/// may hold at once rather than do per minute: an IPv4 address as it is,
/// an IPv6 address by its /48 (a site's usual allocation, so a holder of
/// many /64s counts once).
pub fn network_key(client: &str) -> String {
    prefix_key(client, 3)
}

/// IPv4 as it is; IPv6 by its first `segments` 16-bit groups.
fn prefix_key(client: &str, segments: usize) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let groups: Vec<String> = v6.segments()[..segments].iter().map(|g| format!("{g:x}")).collect();
                format!("{}::/{}", groups.join(":"), segments * 16)
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => client.to_owned(),
    }
}

impl RateLimits {
    /// The bucket a request from `client` falls into at `now` (IPv6 counted by /64).
    pub fn bucket(&self, action: LimitedAction, client: &str, now: UnixTime) -> RateBucket {
        RateBucket { key: format!("{}:{}", action.key(), client_key(client)), window_start: now - now.rem_euclid(WINDOW_SECONDS) }
    }

    /// Given the hit count after this request, `Err(retry_after_secs)` when over the limit.
    pub fn decide(&self, action: LimitedAction, bucket: &RateBucket, hits: u32, now: UnixTime) -> Result<(), i64> {
        let limit = match action {
            LimitedAction::SignIn | LimitedAction::SecondStep => self.sign_in_per_minute,
            LimitedAction::SignUp | LimitedAction::FirstAdmin => self.sign_up_per_minute,
            LimitedAction::SendEmail => self.send_email_per_minute,
            LimitedAction::Authorize => self.authorize_per_minute,
            LimitedAction::RegisterClient => self.register_client_per_minute,
            LimitedAction::CompanionPoll => self.sign_in_per_minute.saturating_mul(4),
        };
        if hits > limit { Err((bucket.window_start + WINDOW_SECONDS - now).max(1)) } else { Ok(()) }
    }
}

/// At most `cap` events in any `window` seconds, counted per key.
///
/// Unlike the fixed windows above, a sliding window cannot be doubled by
/// straddling a boundary: "ten codes an hour" means ten in any hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingQuota {
    /// Stable key: what is counted and for whom (`otp-user:…`).
    pub key: String,
    /// Events allowed in any window.
    pub cap: u32,
    /// Window length in seconds.
    pub window: i64,
}

impl SlidingQuota {
    /// Given the times of earlier events, the times to keep once this event at
    /// `now` is counted (oldest first), or, when the quota is spent, the seconds
    /// until the oldest blocking event leaves the window.
    pub fn admit(&self, earlier: &[UnixTime], now: UnixTime) -> Result<Vec<UnixTime>, i64> {
        let mut recent: Vec<UnixTime> = earlier.iter().copied().filter(|&t| t > now - self.window).collect();
        recent.sort_unstable();
        let cap = self.cap as usize;
        if recent.len() >= cap {
            // One more fits once the cap-th newest event has left the window.
            let blocking = recent.len().checked_sub(cap).and_then(|i| recent.get(i)).copied().unwrap_or(now);
            return Err((blocking + self.window - now).max(1));
        }
        recent.push(now);
        Ok(recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_quota_holds_across_any_hour_and_says_when_a_slot_frees() {
        let q = SlidingQuota { key: "otp-user:1".into(), cap: 3, window: 3600 };
        // Three events straddling a clock-hour boundary (3599, 3600, 3601) fill the quota.
        let mut times = Vec::new();
        for t in [3599, 3600, 3601] {
            times = q.admit(&times, t).unwrap();
        }
        assert_eq!(q.admit(&times, 3700), Err(3599 + 3600 - 3700), "a fourth in the same hour waits for the oldest");
        assert_eq!(q.admit(&times, 7198), Err(1));
        let after = q.admit(&times, 7199).unwrap();
        assert_eq!(after, vec![3600, 3601, 7199], "events older than the window are dropped");
        let none = SlidingQuota { cap: 0, ..q };
        assert_eq!(none.admit(&[], 10), Err(3600), "a zero cap admits nothing");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_as_they_are() {
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:ffff:ffff:ffff:ffff"), client_key("2001:db8:1:2::"));
        assert_ne!(client_key("2001:db8:1:3::1"), client_key("2001:db8:1:2::1"));
        assert_eq!(client_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(network_key("2001:db8:1:2:aaaa::1"), "2001:db8:1::/48");
        assert_eq!(network_key("2001:db8:1:ffff::1"), network_key("2001:db8:1:2::1"), "one site's /64s are one network");
        assert_eq!(network_key("::ffff:192.0.2.7"), "192.0.2.7");
        let l = RateLimits::default();
        assert_eq!(l.bucket(LimitedAction::SignIn, "2001:db8::1", 0).key, l.bucket(LimitedAction::SignIn, "2001:db8::2", 0).key);
    }

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
