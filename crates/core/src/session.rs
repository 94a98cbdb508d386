//! Browser sessions and the record of how the user authenticated.
//!
//! The session id is a random token in an `HttpOnly` cookie; only its digest is
//! stored. A new id is issued at every sign-in (no fixation). Each session
//! carries an [`AuthRecord`]: which methods were used and when, from which the
//! OIDC layer derives `amr`, `acr` and `auth_time` without guessing.

use crate::clock::UnixTime;
pub use crate::methods::{AuthMethod, FactorClass};
use crate::user::UserId;

/// `acr` value: multi-factor authentication.
pub const ACR_MFA: &str = "mfa";
/// `acr` value: phishing-resistant multi-factor authentication (OpenID EAP ACR values).
pub const ACR_PHR: &str = "phr";
/// The `acr` values Portcullis asserts, strongest first.
pub const ACR_VALUES: [&str; 2] = [ACR_PHR, ACR_MFA];

/// One successful authentication step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthEvent {
    /// The method used.
    pub method: AuthMethod,
    /// When it succeeded.
    pub at: UnixTime,
    /// Carried over from a remembered browser rather than performed in this sign-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remembered: bool,
    /// The credential that answered (security keys, apps, phones), so that
    /// disabling it can end what it vouched for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The operator does not count this method as a factor (an emailed code
    /// with `[factors] email_counts_as_mfa = false`): it stays in `amr` but
    /// never makes the record multi-factor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_a_factor: bool,
    /// The credential was set up in this sign-in (its first answer). It
    /// proves possession, but whoever had the session could have registered
    /// their own key, so it never makes the record phishing-resistant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enrolled: bool,
}

impl AuthEvent {
    /// A step performed now.
    pub fn performed(method: AuthMethod, at: UnixTime) -> Self {
        Self { method, at, remembered: false, credential: None, not_a_factor: false, enrolled: false }
    }

    /// Whether this step proves `class` (a step the operator does not count proves nothing).
    pub fn proves(&self, class: FactorClass) -> bool {
        !self.not_a_factor && self.method.proves(class)
    }

    /// Whether this step proves the sign-in resists phishing: a
    /// phishing-resistant method performed now with a key set up before.
    pub fn resists_phishing(&self) -> bool {
        !self.remembered && !self.enrolled && !self.not_a_factor && self.method.phishing_resistant()
    }
}

/// Every authentication step performed in a session, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthRecord {
    /// Steps in order.
    pub events: Vec<AuthEvent>,
}

impl AuthRecord {
    /// A record holding one step.
    pub fn single(method: AuthMethod, at: UnixTime) -> Self {
        Self { events: vec![AuthEvent::performed(method, at)] }
    }

    /// Time of the most recent step (OIDC `auth_time`).
    pub fn auth_time(&self) -> Option<UnixTime> {
        self.events.iter().map(|e| e.at).max()
    }

    /// Time of the most recent knowledge step performed in this session (a
    /// passkey registered in it proves nothing of the user yet).
    pub fn last_knowledge_step(&self) -> Option<UnixTime> {
        self.events.iter().filter(|e| !e.remembered && !e.enrolled && e.proves(FactorClass::Knowledge)).map(|e| e.at).max()
    }

    /// The strongest authentication context class reached; `None` for a
    /// single factor, so a token never claims a level that was not reached.
    pub fn acr(&self) -> Option<&'static str> {
        ACR_VALUES.into_iter().find(|a| self.satisfies(a))
    }

    /// The `acr` to assert for a request that asked for `requested` (in order
    /// of preference): the first one reached, else the strongest reached.
    pub fn acr_for(&self, requested: &[String]) -> Option<&'static str> {
        requested.iter().find_map(|r| ACR_VALUES.into_iter().find(|a| a == r && self.satisfies(a))).or_else(|| self.acr())
    }

    /// Whether this record reaches the context class `acr`. `phr` needs a
    /// phishing-resistant step performed in this session with a key set up
    /// before it: a remembered browser is a cookie, which a phishing proxy
    /// can carry, and a key registered now proves only that whoever signed in
    /// holds some key.
    pub fn satisfies(&self, acr: &str) -> bool {
        match acr {
            ACR_MFA => self.is_multi_factor(),
            ACR_PHR => self.is_multi_factor() && self.events.iter().any(AuthEvent::resists_phishing),
            _ => false,
        }
    }

    /// Whether factors of two different categories were used (RFC 8176 `mfa`).
    pub fn is_multi_factor(&self) -> bool {
        let has = |c: FactorClass| self.events.iter().any(|e| e.proves(c));
        has(FactorClass::Knowledge) && has(FactorClass::Possession)
    }

    /// Whether a step performed in this session (not carried by a remembered browser) proves `class`.
    pub fn proves(&self, class: FactorClass) -> bool {
        self.events.iter().any(|e| !e.remembered && e.proves(class))
    }

    /// Whether the only second factor of this record came from a remembered
    /// browser (none was performed in this session).
    pub fn relies_on_remembered_browser(&self) -> bool {
        let possession = |remembered: bool| self.events.iter().any(|e| e.remembered == remembered && e.proves(FactorClass::Possession));
        possession(true) && !possession(false)
    }

    /// The possession-factor steps (what a remembered browser stands in for later).
    pub fn possession_events(&self) -> Vec<AuthEvent> {
        self.events.iter().filter(|e| e.proves(FactorClass::Possession)).map(|e| AuthEvent { remembered: true, ..e.clone() }).collect()
    }

    /// A record with one more step.
    pub fn with(self, method: AuthMethod, at: UnixTime) -> Self {
        self.with_event(AuthEvent::performed(method, at))
    }

    /// A record with one more step, as recorded.
    pub fn with_event(mut self, event: AuthEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Whether a step of this record was answered by credential `id`.
    pub fn used_credential(&self, id: &str) -> bool {
        self.events.iter().any(|e| e.credential.as_deref() == Some(id))
    }

    /// RFC 8176 `amr` values, deduplicated, in first-use order.
    pub fn amr(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for v in self.events.iter().flat_map(|e| e.method.amr_values()) {
            if !out.contains(v) {
                out.push(v);
            }
        }
        if self.is_multi_factor() {
            out.push("mfa");
        }
        out
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Inactivity after which a session ends (seconds).
    pub idle_timeout: i64,
    /// Age after which a session ends regardless of activity (seconds).
    pub absolute_timeout: i64,
    /// Age of the last sign-in step after which changing how the account signs
    /// in (adding or removing a factor, new recovery codes) asks to sign in
    /// again (seconds; OWASP ASVS 4.0 V3.7.1): a borrowed or stolen session
    /// cannot quietly add its own factor.
    pub reauthenticate_after: i64,
}

impl Default for SessionPolicy {
    /// 30 minutes idle, 10 hours absolute (the common SSO defaults; OWASP ASVS V3.3);
    /// security changes within 15 minutes of signing in.
    fn default() -> Self {
        Self { idle_timeout: 30 * 60, absolute_timeout: 10 * 3600, reauthenticate_after: 15 * 60 }
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public identifier of the session (OIDC `sid`); not the cookie secret.
    pub id: String,
    /// Whose session.
    pub user_id: UserId,
    /// When it started.
    pub created_at: UnixTime,
    /// Last request seen.
    pub last_seen_at: UnixTime,
    /// How the user authenticated.
    pub auth: AuthRecord,
    /// Address it was opened from.
    pub ip: String,
    /// Browser it was opened in.
    pub user_agent: String,
    /// The account's [`crate::user::User::security_epoch`] when it was opened.
    pub security_epoch: i64,
}

/// Seconds between two writes of `last_seen_at` (saves a write per request).
pub const TOUCH_INTERVAL: i64 = 60;

impl SessionPolicy {
    /// Whether a session is still alive at `now`.
    pub fn is_alive(&self, s: &SessionRecord, now: UnixTime) -> bool {
        now - s.created_at < self.absolute_timeout && now - s.last_seen_at < self.idle_timeout
    }

    /// Whether the session's last knowledge step (the password, or a
    /// user-verified passkey) is recent enough for a security change. A
    /// possession step alone (an emailed code at a step-up, or the emailed
    /// code that opened a passwordless session) never makes a session
    /// recent: the mailbox is not the user.
    pub fn is_recent(&self, s: &SessionRecord, now: UnixTime) -> bool {
        s.auth.last_knowledge_step().is_some_and(|at| now - at < self.reauthenticate_after)
    }

    /// Whether to record activity now.
    pub fn should_touch(&self, s: &SessionRecord, now: UnixTime) -> bool {
        now - s.last_seen_at >= TOUCH_INTERVAL
    }

    /// When a session created at `created_at` must be deleted at the latest.
    pub fn expires_at(&self, created_at: UnixTime) -> UnixTime {
        created_at + self.absolute_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: i64, seen: i64) -> SessionRecord {
        SessionRecord {
            id: "s".into(),
            user_id: UserId::new(),
            created_at: created,
            last_seen_at: seen,
            auth: AuthRecord::default(),
            ip: String::new(),
            user_agent: String::new(),
            security_epoch: 0,
        }
    }

    fn session_with(method: AuthMethod, at: i64) -> SessionRecord {
        SessionRecord { auth: AuthRecord::single(method, at), ..session(at, at) }
    }

    #[test]
    fn idle_and_absolute_timeouts_end_sessions() {
        let p = SessionPolicy { idle_timeout: 100, absolute_timeout: 1000, reauthenticate_after: 10 };
        assert!(p.is_alive(&session(0, 0), 99));
        assert!(!p.is_alive(&session(0, 0), 100), "idle");
        assert!(p.is_alive(&session(0, 950), 999));
        assert!(!p.is_alive(&session(0, 950), 1000), "absolute");
    }

    #[test]
    fn a_security_change_needs_a_recent_sign_in_step() {
        let p = SessionPolicy { reauthenticate_after: 900, ..SessionPolicy::default() };
        let mut s = session(0, 0);
        assert!(!p.is_recent(&s, 1), "a session without a knowledge step is never recent");
        s.auth = AuthRecord::single(AuthMethod::EMAIL_OTP, 0);
        assert!(!p.is_recent(&s, 1), "nor is one an emailed code alone opened: the mailbox is not the user");
        s.auth = AuthRecord::single(AuthMethod::Password, 100).with(AuthMethod::TOTP, 1000);
        assert!(p.is_recent(&s, 999), "the password's time counts");
        assert!(!p.is_recent(&s, 1000), "a later possession step does not make the session recent");
        s.auth = s.auth.with(AuthMethod::Password, 1500);
        assert!(p.is_recent(&s, 2399), "the latest password counts");
        assert!(p.is_recent(&session_with(AuthMethod::Passkey, 3000), 3899), "so does a user-verified passkey");
    }

    #[test]
    fn password_and_a_possession_factor_make_mfa() {
        let r = AuthRecord::single(AuthMethod::Password, 10).with(AuthMethod::TOTP, 20);
        assert_eq!(r.amr(), vec!["pwd", "otp", "mfa"]);
        assert_eq!(r.acr(), Some("mfa"));
        assert_eq!(r.auth_time(), Some(20));
        let rc = AuthRecord::single(AuthMethod::Password, 10).with(AuthMethod::RECOVERY_CODE, 20);
        assert_eq!(rc.amr(), vec!["pwd", "otp", "mfa"]);
        let two_passwords = AuthRecord::single(AuthMethod::Password, 10).with(AuthMethod::Password, 20);
        assert_eq!(two_passwords.amr(), vec!["pwd"]);
        assert_eq!(two_passwords.acr(), None, "two of the same kind is not MFA");
        assert_eq!(AuthRecord::single(AuthMethod::TOTP, 1).acr(), None);
    }

    #[test]
    fn webauthn_gives_hwk_and_phr_but_a_remembered_key_does_not() {
        let key = AuthRecord::single(AuthMethod::Password, 10).with(AuthMethod::SECURITY_KEY, 20);
        assert_eq!(key.amr(), vec!["pwd", "hwk", "mfa"]);
        assert_eq!(key.acr(), Some("phr"));
        assert_eq!(key.acr_for(&["mfa".into()]), Some("mfa"), "the requested class is asserted when reached");
        assert_eq!(key.acr_for(&["phr".into(), "mfa".into()]), Some("phr"));
        let passkey = AuthRecord::single(AuthMethod::Passkey, 30);
        assert_eq!(passkey.amr(), vec!["hwk", "user", "mfa"]);
        assert!(passkey.satisfies(ACR_PHR));
        let totp = AuthRecord::single(AuthMethod::Password, 10).with(AuthMethod::TOTP, 20);
        assert!(!totp.satisfies(ACR_PHR));
        assert_eq!(totp.acr_for(&["phr".into()]), Some("mfa"), "never claims a class not reached");
        let mut remembered = AuthRecord::single(AuthMethod::Password, 100);
        remembered.events.extend(AuthRecord::single(AuthMethod::SECURITY_KEY, 10).possession_events());
        assert!(remembered.satisfies(ACR_MFA));
        assert!(!remembered.satisfies(ACR_PHR), "a remembered browser is not phishing-resistant");
        let set_up_now = AuthEvent { enrolled: true, ..AuthEvent::performed(AuthMethod::SECURITY_KEY, 20) };
        let enrolled = AuthRecord::single(AuthMethod::Password, 10).with_event(set_up_now);
        assert!(enrolled.satisfies(ACR_MFA), "a key set up in the sign-in proves possession");
        assert!(!enrolled.satisfies(ACR_PHR), "but not that the key is the owner's: whoever had the password could register one");
        assert!(enrolled.with(AuthMethod::SECURITY_KEY, 30).satisfies(ACR_PHR), "its next use does");
    }

    #[test]
    fn a_fresh_factor_replaces_reliance_on_a_remembered_browser() {
        let mut r = AuthRecord::single(AuthMethod::Password, 100);
        r.events.extend(AuthRecord::single(AuthMethod::TOTP, 10).possession_events());
        assert!(r.relies_on_remembered_browser());
        assert_eq!(r.amr(), vec!["pwd", "otp", "mfa"]);
        assert_eq!(r.auth_time(), Some(100), "auth_time is the password just typed");
        assert!(!r.with(AuthMethod::TOTP, 200).relies_on_remembered_browser());
    }

    #[test]
    fn password_sign_in_gives_pwd_and_auth_time() {
        let r = AuthRecord::single(AuthMethod::Password, 1234);
        assert_eq!(r.amr(), vec!["pwd"]);
        assert_eq!(r.auth_time(), Some(1234));
        assert_eq!(AuthRecord::default().auth_time(), None);
    }
}
