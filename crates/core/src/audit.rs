//! The audit log: one record per security event (who, what, when, from where),
//! kept in the store so an operator can search it, follow it and export it,
//! and a user can see the recent events of their own account.
//!
//! OWASP ASVS 4.0 V7.2: authentication decisions, failures, lockouts and
//! administrative changes are logged with time, account, source address and
//! user agent; secrets (passwords, codes, tokens) never are.

use std::future::Future;
use std::net::IpAddr;

use serde_json::Value;

use crate::audit_chain::{ChainAnchor, ChainedEvent};
use crate::clock::UnixTime;
use crate::io::StoreResult;
use crate::secrets::MacKey;
use crate::user::UserId;

/// Where a request comes from: what the policy and the audit log know of it.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// Client address (see the server's trusted-proxy rule).
    pub ip: Option<IpAddr>,
    /// `User-Agent`, possibly empty.
    pub user_agent: String,
    /// The browser's device cookie (a random id), if it sent one.
    pub device: Option<String>,
    /// The application the sign-in is for, when known.
    pub client_id: Option<String>,
    /// What that application demands (its policy), so the second step offers only what it accepts.
    pub client_policy: Option<crate::oauth::ClientPolicy>,
    /// The `acr` values that would satisfy that application's request (any one; empty: none asked).
    pub acceptable_acr: Vec<&'static str>,
    /// The administrator acting (admin console), recorded as `by`.
    pub actor: Option<crate::user::UserId>,
}

impl RequestOrigin {
    /// The `User-Agent` fit to show or store: control characters dropped, at most `max` characters.
    pub fn user_agent_text(&self, max: usize) -> String {
        self.user_agent.chars().filter(|c| !c.is_control()).take(max).collect()
    }

    /// An operator at the command line.
    pub fn command_line() -> Self {
        Self { user_agent: "portcullis-cli".into(), ..Self::default() }
    }
}

macro_rules! audit_kinds {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditKind {
            $(#[doc = $doc] $variant,)*
        }

        impl AuditKind {
            /// Every kind, for filters and help texts.
            pub const ALL: &'static [AuditKind] = &[$(Self::$variant,)*];

            /// Stable name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Parses a stored or typed name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

audit_kinds! {
    SignInSucceeded => "sign_in_succeeded", "A sign-in finished (detail: methods, steps, risk, rule).";
    SignInFailed => "sign_in_failed", "A wrong password, code or key.";
    SignInDenied => "sign_in_denied", "A rule refused the sign-in.";
    SignInStepRefused => "sign_in_step_refused", "A request asked a sign-in in progress for a step it does not allow.";
    AccountLocked => "account_locked", "Too many failures locked the account.";
    AccountUnlocked => "account_unlocked", "An operator lifted a lock.";
    PolicyDecision => "policy_decision", "A rule asked for more than a password.";
    FactorAdded => "factor_added", "A second factor was enrolled.";
    FactorRemoved => "factor_removed", "A second factor was removed.";
    FactorRenamed => "factor_renamed", "A second factor was renamed.";
    AuthenticatorCloned => "authenticator_cloned", "A key reported a use count lower than before and was disabled.";
    PushDenied => "push_denied", "A sign-in request was denied on the owner's phone (\"this wasn't me\"); the sign-in ended.";
    RecoveryCodeUsed => "recovery_code_used", "A recovery code finished a sign-in.";
    RecoveryCodesRegenerated => "recovery_codes_regenerated", "A new set of recovery codes replaced the old.";
    RememberedBrowserCreated => "remembered_browser_created", "A browser was remembered for the second step.";
    RememberedBrowserRevoked => "remembered_browser_revoked", "A remembered browser was forgotten.";
    SessionRevoked => "session_revoked", "A session was ended from the security page or by an operator.";
    PasswordChanged => "password_changed", "The password was changed or reset.";
    MfaReset => "mfa_reset", "An operator removed every factor of an account.";
    MfaRequirementChanged => "mfa_requirement_changed", "An operator required or stopped requiring MFA.";
    AdminChanged => "admin_changed", "An operator granted or withdrew the admin role.";
    AuditorChanged => "auditor_changed", "An operator granted or withdrew the read-only auditor role.";
    ConsoleChangeRefused => "console_change_refused", "An auditor asked the admin console for a change, and was refused.";
    UserCreated => "user_created", "An operator created an account (or a setup link the first administrator).";
    UserDeleted => "user_deleted", "An operator deleted an account.";
    ClientChanged => "client_changed", "An operator created, changed or deleted an application.";
    AppAccessRemoved => "app_access_removed", "A user or an operator took away what an application was given for an account.";
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// When.
    pub at: UnixTime,
    /// What.
    pub kind: AuditKind,
    /// Whose account, if any.
    pub user: Option<UserId>,
    /// Where from.
    pub origin: RequestOrigin,
    /// Kind-specific facts (never secrets).
    pub detail: Value,
}

impl NewAuditEvent {
    /// An event at `now`; an operator acting is named in its detail (`by`).
    pub fn new(kind: AuditKind, user: Option<UserId>, origin: &RequestOrigin, mut detail: Value, now: UnixTime) -> Self {
        if let (Some(actor), Some(fields)) = (origin.actor, detail.as_object_mut()) {
            fields.insert("by".into(), actor.to_string().into());
        }
        Self { at: now, kind, user, origin: origin.clone(), detail }
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Increasing number (for following the log).
    pub id: i64,
    /// When.
    pub at: UnixTime,
    /// What (an [`AuditKind`] name).
    pub kind: String,
    /// Whose account.
    pub user: Option<UserId>,
    /// The application.
    pub client_id: Option<String>,
    /// Source address.
    pub ip: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Kind-specific facts.
    pub detail: Value,
}

impl AuditRecord {
    /// The record as one JSON object (export, `audit tail`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "at": self.at,
            "event": self.kind,
            "user_id": self.user.map(|u| u.to_string()),
            "client_id": self.client_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "detail": self.detail,
        })
    }
}

/// Which events to read. Results come oldest first after `after_id`, or
/// newest first otherwise (see [`AuditStore::audit_events`]).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this account's events.
    pub user: Option<UserId>,
    /// Only this kind.
    pub kind: Option<AuditKind>,
    /// Not before this time.
    pub since: Option<UnixTime>,
    /// Not after this time.
    pub until: Option<UnixTime>,
    /// Only events recorded after this one, oldest first (following the log).
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// Persistence of the audit log.
pub trait AuditStore: Clone + Send + Sync + 'static {
    /// Appends an event.
    fn record_audit_event(&self, event: &NewAuditEvent) -> impl Future<Output = StoreResult<()>> + Send;
    /// Reads events: with `after_id`, the oldest ones after it; without, the newest.
    fn audit_events(&self, filter: &AuditFilter) -> impl Future<Output = StoreResult<Vec<AuditRecord>>> + Send;
    /// Deletes events recorded before `before` (retention), and devices last
    /// seen before it. Only sealed events go, and only from the start of the
    /// chain up to the first event to keep; the chain's anchor moves to the
    /// last deleted one.
    fn purge_audit_events(&self, before: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Seals up to `limit` unsealed events, oldest id first, at the end of
    /// the chain (links under `key`, see [`ChainedEvent::link`]); returns how
    /// many (at most 1,000 at once: one statement writes them). One sealer
    /// at a time: another one busy meanwhile seals nothing.
    fn seal_audit_events(&self, key: &MacKey, limit: u32) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Where the chain starts, once retention has deleted its beginning.
    fn audit_chain_anchor(&self) -> impl Future<Output = StoreResult<Option<ChainAnchor>>> + Send;
    /// Sealed events from place `from_seq` on (`i64::MIN`: every one, places
    /// a forger chose included), in chain order, at most `limit`.
    fn sealed_audit_events(&self, from_seq: i64, limit: u32) -> impl Future<Output = StoreResult<Vec<ChainedEvent>>> + Send;
    /// How many events wait to be sealed.
    fn unsealed_audit_events(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    /// The time and detail (JSON) of the newest `limit` finished sign-ins at or after `since`.
    fn sign_ins_since(&self, since: UnixTime, limit: u32) -> impl Future<Output = StoreResult<Vec<(UnixTime, String)>>> + Send;
}

/// Follows the audit log by id without missing late commits.
///
/// An event's id is drawn from a sequence when its row is inserted, not when
/// its transaction commits: on PostgreSQL, id 102 can become visible after id
/// 103 was read. So a follower does not trust "everything up to the last id I
/// saw"; it re-reads from `cursor` (the newest id it has held for
/// [`Self::SETTLE`]) and skips what it already printed.
#[derive(Debug, Clone)]
pub struct AuditFollower {
    cursor: i64,
    /// Printed ids above the cursor, with when they were first seen.
    printed: std::collections::BTreeMap<i64, std::time::Instant>,
}

impl AuditFollower {
    /// How long a write transaction may stay open after taking its id; a gap
    /// below an id seen this long ago is a rolled-back insert, not a late one.
    pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

    /// A follower of the events after id `after`.
    pub fn new(after: i64) -> Self {
        Self { cursor: after, printed: Default::default() }
    }

    /// Where the next read starts (exclusive).
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Of the events read from the cursor, those not printed yet, in id order.
    pub fn fresh(&mut self, read: Vec<AuditRecord>, now: std::time::Instant) -> Vec<AuditRecord> {
        let mut fresh: Vec<AuditRecord> = read.into_iter().filter(|e| e.id > self.cursor && !self.printed.contains_key(&e.id)).collect();
        fresh.sort_by_key(|e| e.id);
        for e in &fresh {
            self.printed.insert(e.id, now);
        }
        fresh
    }

    /// Moves the cursor past the events held for [`Self::SETTLE`].
    pub fn settle(&mut self, now: std::time::Instant) {
        if let Some(settled) = self.printed.iter().filter(|(_, seen)| now.duration_since(**seen) >= Self::SETTLE).map(|(id, _)| *id).max() {
            self.cursor = settled;
            self.printed = self.printed.split_off(&(settled + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64) -> AuditRecord {
        AuditRecord {
            id,
            at: 0,
            kind: "sign_in_failed".into(),
            user: None,
            client_id: None,
            ip: None,
            user_agent: None,
            detail: Value::Null,
        }
    }

    #[test]
    fn a_follower_prints_a_late_commit_once_and_then_moves_on() {
        let start = std::time::Instant::now();
        let mut f = AuditFollower::new(100);
        let ids = |v: Vec<AuditRecord>| v.iter().map(|e| e.id).collect::<Vec<_>>();
        // 102 is still uncommitted when 101 and 103 are read.
        assert_eq!(ids(f.fresh(vec![record(101), record(103)], start)), [101, 103]);
        f.settle(start + std::time::Duration::from_secs(1));
        assert_eq!(f.cursor(), 100, "nothing has settled yet");
        assert_eq!(
            ids(f.fresh(vec![record(101), record(102), record(103)], start + std::time::Duration::from_secs(2))),
            [102],
            "the late one, once"
        );
        f.settle(start + AuditFollower::SETTLE);
        assert_eq!(f.cursor(), 103, "101 and 103 were held long enough; 102 is below them");
        assert_eq!(ids(f.fresh(vec![record(102), record(103), record(104)], start + AuditFollower::SETTLE)), [104]);
        f.settle(start + AuditFollower::SETTLE * 3);
        assert_eq!(f.cursor(), 104);
    }

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(AuditKind::parse("nonsense"), None);
    }
}
