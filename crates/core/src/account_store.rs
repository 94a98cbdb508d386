//! Persistence of accounts ([`AccountStore`]: users, emailed links, failure
//! counters, sessions, rate buckets), and [`Stores`], every store trait of the
//! domain in one bound (each other trait lives beside its domain: factors,
//! sign-in, audit, risk, notices, OAuth). `portcullis-store` implements them
//! for SQLite and PostgreSQL. Every one-time value is consumed by one conditional
//! write whose affected-row count decides, so two concurrent requests can never
//! both succeed, even across server processes sharing a database.

use std::future::Future;

use crate::audit::NewAuditEvent;
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::io::StoreResult;
use crate::lockout::FailureRecord;
use crate::policy::{DeviceHistory, LastSignIn};
use crate::rate_limit::RateBucket;
use crate::session::SessionRecord;
use crate::user::{User, UserId};

/// Everything the account flows persist, in one bound.
pub trait Stores:
    AccountStore
    + crate::factors::MfaStore
    + crate::sign_in::SignInStore
    + crate::audit::AuditStore
    + crate::policy::RiskStore
    + crate::notices::NoticeStore
{
}
impl<
    T: AccountStore
        + crate::factors::MfaStore
        + crate::sign_in::SignInStore
        + crate::audit::AuditStore
        + crate::policy::RiskStore
        + crate::notices::NoticeStore,
> Stores for T
{
}

/// Everything a finished sign-in writes, recorded at once (one transaction,
/// one round trip) by the store's `record_sign_in`.
#[derive(Debug)]
pub struct FinishedSignIn<'a> {
    /// Digest of the new session's cookie token.
    pub session_digest: &'a str,
    /// The new session.
    pub session: &'a SessionRecord,
    /// When the session expires.
    pub expires_at: UnixTime,
    /// The sign-in's audit event.
    pub event: &'a NewAuditEvent,
    /// The browser's device digest.
    pub device_digest: &'a str,
    /// Whether to remember the device (the browser keeps a device cookie).
    pub remember_device: bool,
    /// When and where, for the next sign-in's assessment.
    pub last: &'a LastSignIn,
}

/// What an emailed link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Confirms an email address.
    VerifyEmail,
    /// Lets the user choose a new password.
    ResetPassword,
}

impl LinkPurpose {
    /// Stable name stored with the link.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A single-use emailed link, stored by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLink {
    /// SHA-256 digest of the token in the link.
    pub digest: String,
    /// The account it acts on.
    pub user_id: UserId,
    /// What it does.
    pub purpose: LinkPurpose,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry time.
    pub expires_at: UnixTime,
}

/// How many accounts have a second factor, of those counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactorAdoption {
    /// Accounts counted.
    pub users: i64,
    /// Of them, those with at least one confirmed second factor.
    pub with_any: i64,
    /// Of them, those with each kind (`totp`, `passkey`, `security_key`,
    /// `phone`, and `recovery` for recovery codes), by kind.
    pub by_kind: Vec<(String, i64)>,
}

/// What became of a first administrator sent with a setup link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAdmin {
    /// The account exists (and its audit event), and no setup link works any more.
    Created,
    /// The link had expired or been used, or there is an administrator already: nothing changed.
    LinkUnusable,
    /// An account has the address: nothing changed, the link still works.
    EmailTaken,
}

/// Persistence of accounts, sessions and abuse counters.
pub trait AccountStore: Clone + Send + Sync + 'static {
    /// Inserts a user; `StoreError::Conflict` if the email is taken.
    fn create_user(&self, user: &User) -> impl Future<Output = StoreResult<()>> + Send;
    /// Whether setup links may be given: no administrator exists, and none
    /// was ever created through one.
    fn setup_open(&self) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Stores a setup link by the digest of its token.
    fn save_setup_link(&self, digest: &str, now: UnixTime, expires_at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Whether the setup link `digest` would work now (without using it).
    fn setup_link_usable(&self, digest: &str, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// In one transaction: uses up setup link `digest`, and inserts `admin`
    /// and audit event `event` only if the link was live, no administrator
    /// exists and none was ever created through a link (after which no link
    /// works). Of any number sent at once, with one link or several, one is `Created`.
    fn create_first_admin(
        &self,
        digest: &str,
        admin: &User,
        event: &crate::audit::NewAuditEvent,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<FirstAdmin>> + Send;
    /// Looks a user up by normalised email.
    fn user_by_email(&self, email: &EmailAddress) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// Looks a user up by id.
    fn user_by_id(&self, id: UserId) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// All users, oldest first.
    fn list_users(&self) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    /// Existing accounts locked now after failures: (counter key, locked until), the
    /// longest lock first, at most `limit`.
    fn current_locks(&self, now: UnixTime, limit: u32) -> impl Future<Output = StoreResult<Vec<(String, UnixTime)>>> + Send;
    /// Second-factor adoption among every account (`active_since` `None`) or
    /// among those that signed in at or after it.
    fn factor_adoption(&self, active_since: Option<UnixTime>) -> impl Future<Output = StoreResult<FactorAdoption>> + Send;
    /// Deletes a user and everything that belongs to them; false if absent.
    fn delete_user(&self, id: UserId) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Disables an account (`Some(time)`) or enables it (`None`).
    fn set_disabled(&self, id: UserId, at: Option<UnixTime>) -> impl Future<Output = StoreResult<()>> + Send;
    /// Accounts whose email or name contains `query` (case-insensitive), by email.
    fn search_users(&self, query: &str, limit: u32) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    /// Grants or withdraws the admin role.
    fn set_admin(&self, id: UserId, admin: bool) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records that the account's password was found among breached passwords (until it is replaced).
    fn mark_password_breached(&self, id: UserId, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Sets the language the user chose for pages and messages (`None`: their browser's, English for messages).
    fn set_language(&self, id: UserId, language: Option<crate::Language>) -> impl Future<Output = StoreResult<()>> + Send;
    /// Holds off the suggestion to set up a second factor until `until`.
    fn snooze_enrollment_prompt(&self, id: UserId, until: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Grants or withdraws the read-only auditor role.
    fn set_auditor(&self, id: UserId, auditor: bool) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces a password hash.
    fn set_password_hash(&self, id: UserId, hash: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Replaces the hash `old` by the same password's `new` hash (new Argon2
    /// parameters), only if `old` is still the stored one: a sign-in in flight
    /// while the password is reset must not put the old password back.
    fn rehash_password(&self, id: UserId, old: &str, new: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records that the password was just set by an emailed reset link.
    fn mark_password_reset(&self, id: UserId, at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records that the email address was confirmed (keeps an earlier time).
    fn mark_email_verified(&self, id: UserId, at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores a link, invalidating earlier unused links of the same purpose for that user.
    fn replace_email_link(&self, link: &EmailLink) -> impl Future<Output = StoreResult<()>> + Send;
    /// The user of a link that is unused and unexpired at `now`, without using it.
    fn peek_email_link(
        &self,
        digest: &str,
        purpose: LinkPurpose,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<Option<UserId>>> + Send;
    /// Uses a link atomically: at most one caller ever gets `Some`.
    fn consume_email_link(
        &self,
        digest: &str,
        purpose: LinkPurpose,
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<Option<UserId>>> + Send;

    /// Failure counter for an account key (normalised email).
    fn failure_record(&self, account_key: &str) -> impl Future<Output = StoreResult<FailureRecord>> + Send;
    /// Failure counters for several account keys in one read, in their order
    /// (listings: not one query per row). At most 500 keys.
    fn failure_records(&self, account_keys: &[&str]) -> impl Future<Output = StoreResult<Vec<FailureRecord>>> + Send;
    /// Atomically counts one failure (forgetting failures last seen before
    /// `window_start`) and returns the count including this one; `None`, and
    /// nothing counted, while the counter is locked.
    fn record_login_failure(
        &self,
        account_key: &str,
        now: UnixTime,
        window_start: UnixTime,
    ) -> impl Future<Output = StoreResult<Option<u32>>> + Send;
    /// Gives back `n` counted failures (an attempt counted before it was
    /// checked turned out right: itself, or itself and those counted before
    /// it); never below zero, and a lock stays. Failures counted after it
    /// (other attempts still being checked) are kept.
    fn forget_login_failures(&self, account_key: &str, n: u32) -> impl Future<Output = StoreResult<()>> + Send;
    /// Locks the account until `until` and resets the counter, unless it is
    /// locked already at `now`; true if this call locked it.
    fn lock_account(&self, account_key: &str, until: UnixTime, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Clears failures and any lock; true if there was something to clear.
    fn clear_login_failures(&self, account_key: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Records a finished sign-in at once, atomically: its session, its audit
    /// event, the device (when [`FinishedSignIn::remember_device`]) and the
    /// account's last sign-in; returns what was known of the device before.
    /// (The only way a session is created: every sign-in writes all of these.)
    fn record_sign_in(&self, sign_in: &FinishedSignIn<'_>) -> impl Future<Output = StoreResult<DeviceHistory>> + Send;
    /// The session stored under a cookie digest, with its user.
    fn session_by_digest(&self, digest: &str) -> impl Future<Output = StoreResult<Option<(SessionRecord, User)>>> + Send;
    /// Records activity.
    fn touch_session(&self, digest: &str, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Ends one session.
    fn delete_session(&self, digest: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// A user's sessions (alive or not), newest first.
    fn user_sessions(&self, user: UserId) -> impl Future<Output = StoreResult<Vec<SessionRecord>>> + Send;
    /// Ends one of a user's sessions by its public id; false if there was none.
    fn delete_user_session(&self, user: UserId, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Ends all of a user's sessions except the one under `keep` (if given),
    /// at once: moves the account's `security_epoch` on (so sessions, sign-ins
    /// in progress and grants written later by requests in flight are dead),
    /// moves the kept session with it, and deletes the others. Returns how many ended.
    fn end_user_sessions(&self, user: UserId, keep: Option<&str>) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Counts one hit in a rate-limit bucket atomically and returns the count in its window.
    fn hit_rate_bucket(&self, bucket: &RateBucket) -> impl Future<Output = StoreResult<u32>> + Send;
    /// Deletes expired sessions, links, stale counters.
    fn purge_expired(&self, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}
