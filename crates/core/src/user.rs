//! Users as the domain knows them.

use crate::clock::UnixTime;
use crate::email::EmailAddress;
use uuid::Uuid;

/// A user's stable identifier (the OIDC `sub`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct UserId(pub Uuid);

impl UserId {
    /// A fresh, time-ordered identifier.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Identifier.
    pub id: UserId,
    /// Normalised email address (unique).
    pub email: EmailAddress,
    /// Display name, possibly empty.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the address was confirmed, if it was.
    pub email_verified_at: Option<UnixTime>,
    /// Whether the user may use the admin console.
    pub is_admin: bool,
    /// Whether the user may read the admin console without changing anything.
    pub is_auditor: bool,
    /// Whether the operator requires this user to use a second factor.
    pub mfa_required: bool,
    /// When an operator disabled the account (it cannot sign in); `None`: enabled.
    pub disabled_at: Option<UnixTime>,
    /// When the password was last set by an emailed reset link.
    pub password_reset_at: Option<UnixTime>,
    /// When a sign-in found the password among breached passwords (cleared when it is replaced).
    pub password_breached_at: Option<UnixTime>,
    /// The language the user reads pages and messages in, when they chose one
    /// (at sign-up, the page's; on the account page, any).
    pub language: Option<crate::Language>,
    /// Until when "Not now" holds off the suggestion to set up a second factor.
    pub enrollment_prompt_snoozed_until: Option<UnixTime>,
    /// How many times everything the account's sign-ins gave was ended
    /// (`Accounts::end_what_sign_ins_gave`). Sessions, sign-ins in progress
    /// and grants carry the value they were made under and are dead once it
    /// has moved on, so what a request in flight at the ending writes after
    /// it is dead on arrival.
    pub security_epoch: i64,
    /// Creation time.
    pub created_at: UnixTime,
}

impl User {
    /// A new account with a fresh id: no role, address unconfirmed, nothing
    /// required or recorded yet (callers set what differs).
    pub fn new_account(email: EmailAddress, name: &str, password_hash: String, now: UnixTime) -> Self {
        Self {
            id: UserId::new(),
            email,
            name: name.trim().to_owned(),
            password_hash,
            email_verified_at: None,
            is_admin: false,
            is_auditor: false,
            mfa_required: false,
            disabled_at: None,
            password_reset_at: None,
            password_breached_at: None,
            language: None,
            enrollment_prompt_snoozed_until: None,
            security_epoch: 0,
            created_at: now,
        }
    }
}

impl std::fmt::Debug for User {
    // Hand-written so the password hash never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email.as_str())
            .field("email_verified_at", &self.email_verified_at)
            .field("is_admin", &self.is_admin)
            .field("is_auditor", &self.is_auditor)
            .field("mfa_required", &self.mfa_required)
            .finish_non_exhaustive()
    }
}

/// Role names a rule or the MFA requirement can name.
pub const ROLE_ADMIN: &str = "admin";
/// Every account that is not an admin.
pub const ROLE_USER: &str = "user";
/// A read-only auditor of the admin console (also a `user`).
pub const ROLE_AUDITOR: &str = "auditor";
/// In `mfa_required_for`: every account.
pub const EVERYONE: &str = "everyone";

/// A user's roles.
pub fn roles(user: &User) -> Vec<&'static str> {
    match (user.is_admin, user.is_auditor) {
        (true, _) => vec![ROLE_ADMIN],
        (false, true) => vec![ROLE_USER, ROLE_AUDITOR],
        (false, false) => vec![ROLE_USER],
    }
}
