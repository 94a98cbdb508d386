//! The account domain's shared dependencies ([`Accounts`]: the store, the
//! password hasher, the messenger, settings and keys) and the helpers every
//! part of it uses (the audit log, notices, rate limits, what the operator
//! allows). The domain itself is split by capability, each a view of
//! `Accounts` in its own file:
//!
//! | capability | file | what it does |
//! |---|---|---|
//! | [`crate::registration::Registration`] | `registration.rs` | sign-up, email verification, password reset and change |
//! | [`crate::sign_in::SignIn`] | `sign_in/` | first steps and the sign-in state machine |
//! | [`crate::sessions::Sessions`] | `sessions.rs` | sessions: lookup, use, sign-out |
//! | [`crate::credentials::Credentials`] | `credentials.rs` | a user's factors, recovery codes, remembered browsers |
//! | [`crate::operators::Operators`] | `operators.rs` | what operators do (CLI, admin console) |
//! | [`crate::notices::Notices`] | `notices/` | security notices: queue and delivery |
//!
//! Handlers call a capability and translate the result; every decision is made in them.

use std::sync::Arc;

use serde_json::Value;

use crate::account_store::Stores;
use crate::audit::{AuditKind, NewAuditEvent, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::{AccountError, StoreError};
use crate::factors::otp::Requester;
use crate::factors::{self, FactorContext, FactorKind};
use crate::lockout::LockoutPolicy;
use crate::messages::Messenger;
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::rate_limit::{LimitedAction, RateLimits};
use crate::session::SessionPolicy;
use crate::sign_in::{DemandFacts, SessionUse};
use crate::user::{EVERYONE, User, UserId, roles};

/// The pages emailed links open, as full URLs without a query (the server
/// knows its routes; the domain only adds the token). Empty until set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkPages {
    /// Confirms an address after sign-up.
    pub verify_email: String,
    /// Sets a new password.
    pub reset_password: String,
    /// Creates the first administrator (`first_run`).
    pub setup: String,
}

/// Tunables of the account flows.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// The pages emailed links open (the server's routes, as full URLs).
    pub links: LinkPages,
    /// Product name shown in emails.
    pub product_name: String,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Lockout after failed sign-ins.
    pub lockout: LockoutPolicy,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Per-IP request limits.
    pub rate_limits: RateLimits,
    /// Lifetime of an email-verification link (seconds).
    pub verify_link_ttl: i64,
    /// Lifetime of a password-reset link (seconds).
    pub reset_link_ttl: i64,
    /// How long "remember this browser" lasts (seconds).
    pub remember_browser_ttl: i64,
    /// Codes sent by email: on or off, lifetime, attempt and sending limits.
    pub otp: crate::factors::otp::OtpSettings,
    /// Users may add authenticator apps and sign in with them.
    pub totp_enabled: bool,
    /// The operator's adaptive sign-in rules.
    pub adaptive: crate::policy::AdaptivePolicy,
    /// Roles (`admin`, `user`) or `everyone` who must use a second factor (enrolled at next sign-in).
    pub mfa_required_for: Vec<String>,
    /// How long audit events (and known devices) are kept (seconds).
    pub audit_retention: i64,
    /// After a sign-in with the password alone by an account without a
    /// second factor, suggest setting one up (skippable; "Not now" is
    /// honoured for [`ENROLLMENT_PROMPT_SNOOZE`]).
    pub suggest_enrollment: bool,
}

/// How long "Not now" on the suggestion to set up a second factor lasts (seconds).
pub const ENROLLMENT_PROMPT_SNOOZE: i64 = 30 * 86_400;

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            links: LinkPages::default(),
            product_name: "Portcullis".into(),
            password_policy: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            rate_limits: RateLimits::default(),
            verify_link_ttl: 24 * 3600,
            reset_link_ttl: 3600,
            remember_browser_ttl: 30 * 24 * 3600,
            otp: crate::factors::otp::OtpSettings::default(),
            totp_enabled: true,
            adaptive: crate::policy::AdaptivePolicy::default(),
            mfa_required_for: Vec::new(),
            audit_retention: 400 * 86_400,
            suggest_enrollment: false,
        }
    }
}

/// The account service.
#[derive(Clone)]
pub struct Accounts<S> {
    pub(crate) store: S,
    pub(crate) hasher: PasswordHasher,
    pub(crate) messenger: Arc<Messenger>,
    pub(crate) settings: Arc<AccountSettings>,
    pub(crate) keys: Arc<FactorKeys>,
    pub(crate) geo: Option<Arc<dyn crate::policy::Geolocator>>,
    /// Woken when a notice is queued (the delivery task waits on it).
    pub(crate) notices_queued: Arc<tokio::sync::Notify>,
    /// Revokes what the OAuth provider issued to a user (signing out everywhere).
    pub(crate) tokens: Option<Arc<dyn TokenRevoker>>,
    /// Tells breached passwords (offline by default).
    pub(crate) breached: crate::breached::BreachedPasswords,
}

/// Revokes the OAuth grants of a user: refresh tokens, unused codes, access
/// tokens. The provider implements it; the account flows call it when a user
/// signs out everywhere.
pub trait TokenRevoker: Send + Sync {
    /// Revokes everything issued to `user`.
    fn revoke_user_tokens(&self, user: UserId, now: UnixTime) -> crate::io::BoxFuture<'_, Result<(), StoreError>>;
    /// Revokes the grants of `user` whose sign-in credential `credential`
    /// answered in, or that were made from one of `sessions` (the factor was
    /// removed, and those sessions ended); returns how many.
    fn revoke_tokens_vouched_by<'a>(
        &'a self,
        user: UserId,
        credential: &'a str,
        sessions: &'a [String],
        now: UnixTime,
    ) -> crate::io::BoxFuture<'a, Result<usize, StoreError>>;
}

/// What second factors need beyond the store: keys, and the WebAuthn relying party.
pub struct FactorKeys {
    /// Seals TOTP secrets and WebAuthn credential records at rest.
    pub sealer: crate::secrets::SecretBox,
    /// Tags recovery codes and remembered-browser cookies (each under its own purpose).
    pub mac: crate::secrets::MacKey,
    /// WebAuthn relying party; `None` when the issuer cannot be one (its host is an IP address).
    pub relying_party: Option<crate::factors::webauthn::RelyingParty>,
    /// Push approval (the Web Push transport, the companion's address); `None`: off.
    pub push: Option<crate::factors::push::PushService>,
}

/// Declares a capability: a view of [`Accounts`] that holds one part of the
/// domain (its own file), and the accessor that gives it.
macro_rules! capability {
    ($(#[$doc:meta])* $name:ident, $accessor:ident) => {
        $(#[$doc])*
        pub struct $name<'a, S>(&'a $crate::accounts::Accounts<S>);

        impl<S> Clone for $name<'_, S> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<S> Copy for $name<'_, S> {}

        impl<S> std::ops::Deref for $name<'_, S> {
            type Target = $crate::accounts::Accounts<S>;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }

        impl<S> $crate::accounts::Accounts<S> {
            #[doc = concat!("The [`", stringify!($name), "`] capability.")]
            pub fn $accessor(&self) -> $name<'_, S> {
                $name(self)
            }
        }
    };
}
pub(crate) use capability;

impl<S: Stores> Accounts<S> {
    /// Wires the service.
    pub fn new(store: S, hasher: PasswordHasher, messenger: Messenger, settings: AccountSettings, keys: FactorKeys) -> Self {
        Self {
            store,
            hasher,
            messenger: Arc::new(messenger),
            settings: Arc::new(settings),
            keys: Arc::new(keys),
            geo: None,
            notices_queued: Arc::default(),
            tokens: None,
            breached: crate::breached::BreachedPasswords::default(),
        }
    }

    /// Checks new passwords, and passwords at sign-in, against breaches with `breached`.
    pub fn with_breached_passwords(mut self, breached: crate::breached::BreachedPasswords) -> Self {
        self.breached = breached;
        self
    }

    /// Revokes OAuth grants through `tokens` when a user signs out everywhere.
    pub fn with_token_revoker(mut self, tokens: Arc<dyn TokenRevoker>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Locates sign-ins with a GeoIP database (country and impossible-travel rules).
    pub fn with_geolocator(mut self, geo: Arc<dyn crate::policy::Geolocator>) -> Self {
        self.geo = Some(geo);
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// The store (for health checks).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The password hasher (its waiting room, for tests and metrics).
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Counts a request from `client` and refuses it over the limit with the seconds to wait.
    pub async fn throttle(&self, action: LimitedAction, client: &str, now: UnixTime) -> Result<Result<(), i64>, StoreError> {
        let limits = &self.settings.rate_limits;
        let bucket = limits.bucket(action, client, now);
        let hits = self.store.hit_rate_bucket(&bucket).await?;
        Ok(limits.decide(action, &bucket, hits, now))
    }
    /// Appends an event to the audit log (the domain's own events, and
    /// operators' actions from the command line or the admin console).
    pub async fn audit(
        &self,
        kind: AuditKind,
        user: Option<UserId>,
        origin: &RequestOrigin,
        detail: Value,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        let event = NewAuditEvent::new(kind, user, origin, detail, now);
        self.store.record_audit_event(&event).await?;
        crate::metrics::audited(&event);
        Ok(())
    }

    /// Whether `user` must use a second factor: required for the account, for one of its roles, or for everyone.
    pub fn mfa_required(&self, user: &User) -> bool {
        let for_whom = &self.settings.mfa_required_for;
        user.mfa_required || for_whom.iter().any(|w| w == EVERYONE || roles(user).contains(&w.as_str()))
    }
    pub(crate) fn factor_context(&self) -> FactorContext<'_, S> {
        FactorContext {
            store: &self.store,
            sealer: &self.keys.sealer,
            recovery_key: &self.keys.mac,
            issuer: &self.settings.product_name,
            totp_enabled: self.settings.totp_enabled,
            relying_party: self.keys.relying_party.as_ref(),
            messenger: &self.messenger,
            otp: &self.settings.otp,
            requester: None,
            push: self.keys.push.as_ref(),
            sign_in: None,
        }
    }

    /// The factors' view of the dependencies for a request from `requester` (its send quotas).
    pub(crate) fn factor_context_for<'a>(&'a self, requester: Requester<'a>) -> FactorContext<'a, S> {
        FactorContext { requester: Some(requester), ..self.factor_context() }
    }

    /// Whether security keys and passkeys work on this server.
    pub fn webauthn_available(&self) -> bool {
        self.keys.relying_party.is_some()
    }

    /// Whether users may add credentials of `kind` on this server.
    pub fn can_enroll(&self, kind: FactorKind) -> bool {
        factors::enrollable(&self.factor_context()).contains(&kind)
    }

    /// Ends everything the account's past sign-ins vouch for: its sessions
    /// (but `keep`, the one making the change), sign-ins in progress,
    /// remembered browsers, and what applications were given (grants, refresh
    /// and access tokens). Returns how many sessions ended. Called when the
    /// password is reset or changed, the factors are reset, the account is
    /// disabled, or the user signs out everywhere.
    pub(crate) async fn end_what_sign_ins_gave(&self, user: UserId, keep: Option<&str>, now: UnixTime) -> Result<u64, AccountError> {
        let ended = self.store.end_user_sessions(user, keep).await?;
        self.store.delete_pending_sign_ins(user).await?;
        self.store.forget_all_remembered_browsers(user, now).await?;
        if let Some(tokens) = &self.tokens {
            tokens.revoke_user_tokens(user, now).await?;
        }
        Ok(ended)
    }

    /// Whether the user has an enrolled second factor (recovery codes alone do
    /// not count; a disabled key does, so its owner still needs a second step).
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, AccountError> {
        Ok(!self.store.credentials(user).await?.is_empty())
    }

    /// Whether emailed codes may not count for `user` now: the password was
    /// set by a reset link recently, and the same mailbox received the link.
    pub(crate) fn email_blocked(&self, user: &User, now: UnixTime) -> bool {
        user.password_reset_at.is_some_and(|at| now - at < self.settings.otp.email_blocked_after_reset)
    }

    pub(crate) fn demand_facts<'a>(&self, user: &User, using: SessionUse<'a>, has_credential: bool, now: UnixTime) -> DemandFacts<'a> {
        DemandFacts {
            using,
            has_credential,
            mfa_required: self.mfa_required(user),
            email_blocked: self.email_blocked(user, now),
            email_counts: self.settings.otp.email_counts_as_mfa,
        }
    }
}
