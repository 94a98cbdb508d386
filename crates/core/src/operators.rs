//! What operators do, from the command line or the admin console: accounts
//! (create, disable, unlock, admin role, MFA requirement and reset, delete,
//! search), who may use the console, the audit log, and clean-up.

use serde_json::json;

use crate::account_store::Stores;
use crate::accounts::capability;
use crate::audit::{AuditFilter, AuditKind, AuditRecord, RequestOrigin};
use crate::audit_chain::{ChainBreak, ChainVerifier};
use crate::clock::UnixTime;
use crate::email::EmailAddress;
use crate::error::AccountError;
use crate::lockout::{LockKey, LockState};
use crate::sessions::ActiveSession;
use crate::user::{User, UserId};

capability!(
    /// Operators' actions on accounts, the admin console's door, the audit log.
    Operators,
    operators
);

/// An operator's action on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// Disable: no sign-in; sessions, remembered browsers and tokens end.
    Lock,
    /// Enable again, and lift a lockout after failures.
    Unlock,
    /// Remove every second factor.
    ResetMfa,
    /// Require (or stop requiring) a second factor.
    RequireMfa(bool),
    /// Grant (or withdraw) the admin role.
    Admin(bool),
    /// Grant (or withdraw) the read-only auditor role.
    Auditor(bool),
}

impl AccountAction {
    /// Every action, by its form name.
    const NAMES: [(&'static str, AccountAction); 9] = [
        ("lock", Self::Lock),
        ("unlock", Self::Unlock),
        ("reset_mfa", Self::ResetMfa),
        ("require_mfa", Self::RequireMfa(true)),
        ("stop_requiring_mfa", Self::RequireMfa(false)),
        ("make_admin", Self::Admin(true)),
        ("remove_admin", Self::Admin(false)),
        ("make_auditor", Self::Auditor(true)),
        ("remove_auditor", Self::Auditor(false)),
    ];

    /// Parses a form name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::NAMES.into_iter().find(|(n, _)| *n == s).map(|(_, a)| a)
    }

    /// Its form name.
    pub fn name(self) -> &'static str {
        Self::NAMES.into_iter().find(|(_, a)| *a == self).map_or("", |(n, _)| n)
    }

    /// Whether it takes access away, so that an admin may not do it to themselves.
    pub fn disarms(self) -> bool {
        matches!(self, Self::Lock | Self::Admin(false))
    }
}

/// What the admin console may show a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// An admin or an auditor with a second factor performed in this session
    /// (not an emailed code, not a remembered browser), recent enough for a
    /// change; an auditor only ever reads.
    Granted(ConsoleRole),
    /// An admin or auditor whose session proves less: step up toward this demand first.
    StepUp(crate::sign_in::Demand),
    /// A change, from a session whose last sign-in step is not recent: sign in again.
    Reauthenticate,
    /// A change asked by an auditor: refused, and recorded in the audit log.
    ReadOnly,
    /// Neither an admin nor an auditor, or a rule refuses.
    NotAdmin,
}

/// Who is using the admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleRole {
    /// Reads and changes.
    Admin,
    /// Reads everything an admin reads; changes nothing.
    Auditor,
}

impl<S: Stores> Operators<'_, S> {
    /// Creates an account as the operator (already verified). Refuses a taken address.
    pub async fn create_user(&self, email: &str, name: &str, password: &str, is_admin: bool, now: UnixTime) -> Result<User, AccountError> {
        let email = EmailAddress::parse(email)?;
        self.registration().check_new_password(&email, name, password, password).await?;
        let user = User {
            email_verified_at: Some(now),
            is_admin,
            ..User::new_account(email, name, self.registration().hash(password).await?, now)
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    /// Deletes what has expired (setups never finished among it), and audit
    /// events past their retention.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<(), AccountError> {
        self.store.purge_expired(now).await?;
        self.store.purge_unconfirmed_credentials(now - crate::factors::ENROLLMENT_SECONDS).await?;
        // Denials count toward pausing push for two hours at most; a day is kept for the record.
        self.store.purge_push_requests(now - 86_400).await?;
        Ok(self.store.purge_audit_events(now - self.settings.audit_retention).await?)
    }

    /// Operator: lifts a lockout after failures and enables a disabled
    /// account; true if there was either to lift.
    pub async fn unlock(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, AccountError> {
        let email = EmailAddress::parse(email)?;
        let had_failures = self.clear_all_failures(email.as_str()).await?;
        let user = self.store.user_by_email(&email).await?;
        let was_disabled = user.as_ref().is_some_and(|u| u.disabled_at.is_some());
        if was_disabled && let Some(u) = &user {
            self.store.set_disabled(u.id, None).await?;
        }
        let detail = json!({ "had_failures": had_failures, "was_disabled": was_disabled });
        self.audit(AuditKind::AccountUnlocked, user.map(|u| u.id), origin, detail, now).await?;
        Ok(had_failures || was_disabled)
    }

    /// All accounts.
    pub async fn list_users(&self) -> Result<Vec<User>, AccountError> {
        Ok(self.store.list_users().await?)
    }

    /// Deletes an account by email; false if there was none.
    pub async fn delete_user(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, AccountError> {
        let email = EmailAddress::parse(email)?;
        let Some(u) = self.store.user_by_email(&email).await? else { return Ok(false) };
        // The rows of its codes and refresh tokens go with the account, but
        // access tokens live on: the grants' revocations (kept apart) make
        // introspection and /userinfo refuse them.
        self.end_what_sign_ins_gave(u.id, None, now).await?;
        let deleted = self.store.delete_user(u.id).await?;
        if deleted {
            self.audit(AuditKind::UserDeleted, Some(u.id), origin, json!({ "email": u.email.as_str() }), now).await?;
        }
        Ok(deleted)
    }

    /// The account with this id, if it still exists.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, AccountError> {
        Ok(self.store.user_by_id(id).await?)
    }

    /// The account with this address.
    pub async fn find_user(&self, email: &str) -> Result<User, AccountError> {
        let email = EmailAddress::parse(email)?;
        self.store.user_by_email(&email).await?.ok_or(AccountError::NotFound)
    }

    /// Does `action` to the account at `email` for the admin `actor` (the
    /// console; the command line has no acting account). An admin may not lock
    /// or demote their own account: nobody might be left to undo it.
    pub async fn act(
        &self,
        actor: &User,
        email: &str,
        action: AccountAction,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        if action.disarms() && self.find_user(email).await?.id == actor.id {
            return Err(AccountError::InvalidInput("error-own-account".into()));
        }
        match action {
            AccountAction::Lock => self.disable(email, origin, now).await.map(drop),
            AccountAction::Unlock => self.unlock(email, origin, now).await.map(drop),
            AccountAction::ResetMfa => self.reset_mfa(email, origin, now).await.map(drop),
            AccountAction::RequireMfa(required) => self.require_mfa(email, required, origin, now).await.map(drop),
            AccountAction::Admin(admin) => self.set_admin(email, admin, origin, now).await.map(drop),
            AccountAction::Auditor(auditor) => self.set_auditor(email, auditor, origin, now).await.map(drop),
        }
    }

    /// Operator: grants or withdraws the admin role.
    pub async fn set_admin(&self, email: &str, admin: bool, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_admin(user.id, admin).await?;
        self.audit(AuditKind::AdminChanged, Some(user.id), origin, json!({ "admin": admin }), now).await?;
        Ok(User { is_admin: admin, ..user })
    }

    /// Operator: grants or withdraws the read-only auditor role.
    pub async fn set_auditor(&self, email: &str, auditor: bool, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_auditor(user.id, auditor).await?;
        self.audit(AuditKind::AuditorChanged, Some(user.id), origin, json!({ "auditor": auditor }), now).await?;
        Ok(User { is_auditor: auditor, ..user })
    }

    /// The MFA dashboard: adoption among accounts active in the last
    /// [`DAYS`](crate::dashboard::DAYS), sign-ins by method per day, current locks.
    pub async fn mfa_dashboard(&self, now: UnixTime) -> Result<crate::dashboard::MfaDashboard, AccountError> {
        use crate::dashboard::{CurrentLock, DAYS, MAX_LOCKS, MAX_SIGN_INS, MfaDashboard, sign_ins_by_day};
        let since = now.div_euclid(86_400) * 86_400 - (DAYS - 1) * 86_400;
        let active = self.store.factor_adoption(Some(now - DAYS * 86_400)).await?;
        let sign_ins = self.store.sign_ins_since(since, MAX_SIGN_INS).await?;
        let truncated = sign_ins.len() >= MAX_SIGN_INS as usize;
        let (methods, days) = sign_ins_by_day(&sign_ins, now);
        let locks = self
            .store
            .current_locks(now, MAX_LOCKS)
            .await?
            .into_iter()
            .map(|(key, until)| {
                let (email, second_step) = LockKey::parse_key(&key);
                CurrentLock { email: email.to_owned(), second_step, until }
            })
            .collect();
        Ok(MfaDashboard { active, methods, days, truncated, locks })
    }

    /// Second-factor adoption among every account (`active_since` `None`)
    /// or among those that signed in at or after it.
    pub async fn factor_adoption(&self, active_since: Option<UnixTime>) -> Result<crate::account_store::FactorAdoption, AccountError> {
        Ok(self.store.factor_adoption(active_since).await?)
    }

    /// Whether each of `users` is locked after failed sign-ins or second
    /// steps, in their order (for listings: one read per 250 users, not one per user).
    pub async fn locked_after_failures(&self, users: &[User], now: UnixTime) -> Result<Vec<bool>, AccountError> {
        let mut locked = Vec::with_capacity(users.len());
        for chunk in users.chunks(250) {
            let second: Vec<String> = chunk.iter().map(|u| LockKey::SecondStep(u.email.as_str()).key()).collect();
            let mut keys: Vec<&str> = chunk.iter().map(|u| u.email.as_str()).collect();
            keys.extend(second.iter().map(String::as_str));
            let records = self.store.failure_records(&keys).await?;
            let is_locked = |r: &crate::lockout::FailureRecord| matches!(self.settings.lockout.state(r, now), LockState::Locked { .. });
            let (password, second) = records.split_at(chunk.len());
            locked.extend(password.iter().zip(second).map(|(p, s)| is_locked(p) || is_locked(s)));
        }
        Ok(locked)
    }
    /// Reads the audit log.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, AccountError> {
        Ok(self.store.audit_events(filter).await?)
    }

    /// Seals what the audit log holds unsealed into its chain (the server
    /// does this every few seconds); returns how many events it sealed.
    pub async fn seal_audit_log(&self) -> Result<u64, AccountError> {
        let mut sealed = 0;
        loop {
            let n = self.store.seal_audit_events(&self.keys.mac, SEAL_BATCH).await?;
            sealed += n;
            if n < u64::from(SEAL_BATCH) {
                return Ok(sealed);
            }
        }
    }

    /// Checks the audit log's chain from its anchor to its head.
    pub async fn verify_audit_log(&self) -> Result<AuditLogCheck, AccountError> {
        let mut verifier = ChainVerifier::new(self.store.audit_chain_anchor().await?);
        let mut from = i64::MIN;
        let broken = 'pages: loop {
            let page = self.store.sealed_audit_events(from, VERIFY_PAGE).await?;
            for event in &page {
                if let Err(broken) = verifier.check(&self.keys.mac, event) {
                    break 'pages Some(broken);
                }
            }
            if page.len() < VERIFY_PAGE as usize {
                break None;
            }
            from = verifier.next_seq();
        };
        Ok(AuditLogCheck {
            broken,
            checked: verifier.checked(),
            head: (verifier.next_seq() - 1, verifier.head().to_owned()),
            unsealed: self.store.unsealed_audit_events().await?,
        })
    }

    /// Operator: disables an account (it cannot sign in; its sessions,
    /// remembered browsers and tokens end) until [`Accounts::unlock`].
    pub async fn disable(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_disabled(user.id, Some(now)).await?;
        self.end_what_sign_ins_gave(user.id, None, now).await?;
        self.audit(AuditKind::AccountLocked, Some(user.id), origin, json!({ "disabled": true }), now).await?;
        Ok(User { disabled_at: Some(now), ..user })
    }

    /// Accounts matching `query` (email or name), for the admin console.
    pub async fn search_users(&self, query: &str, limit: u32) -> Result<Vec<User>, AccountError> {
        Ok(self.store.search_users(query, limit).await?)
    }

    /// Whether this session may use the admin console (`change`: the change
    /// it asks to make, e.g. the form's path; `None`: it only looks): an admin
    /// or auditor who performed a second factor in this session (neither a
    /// remembered browser nor an emailed code: the reset link goes to the same
    /// mailbox), and for a change, recently (as for credential changes, OWASP
    /// ASVS 4.0 V3.7.1). An auditor's change is refused before anything else
    /// and audited (ASVS V7.2.2: an attempt to exceed one's role is logged).
    pub async fn admin_access(
        &self,
        session: &ActiveSession,
        change: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<AdminAccess, AccountError> {
        use crate::sessions::SessionCheck;
        use crate::sign_in::SessionUse;
        let user = &session.user;
        let role = match (user.is_admin, user.is_auditor) {
            _ if user.disabled_at.is_some() => return Ok(AdminAccess::NotAdmin),
            (true, _) => ConsoleRole::Admin,
            (false, true) => ConsoleRole::Auditor,
            (false, false) => return Ok(AdminAccess::NotAdmin),
        };
        if let (ConsoleRole::Auditor, Some(what)) = (role, change) {
            let acting = RequestOrigin { actor: Some(user.id), ..origin.clone() };
            self.audit(AuditKind::ConsoleChangeRefused, Some(user.id), &acting, json!({ "change": what }), now).await?;
            return Ok(AdminAccess::ReadOnly);
        }
        Ok(match self.sessions().check_session(session, SessionUse::Admin, change.is_some(), origin, now).await? {
            SessionCheck::Satisfied => AdminAccess::Granted(role),
            SessionCheck::StepUp(demand) => AdminAccess::StepUp(demand),
            SessionCheck::Reauthenticate => AdminAccess::Reauthenticate,
            SessionCheck::Denied => AdminAccess::NotAdmin,
        })
    }
    /// Operator: removes every factor of a user (lost phone); what they vouched
    /// for ends with them (sessions, remembered browsers, tokens).
    pub async fn reset_mfa(&self, email: &str, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        // The epoch moves first: a key a request in flight adds after this is
        // refused (`insert_confirmed_credential`), one added before is deleted next.
        self.end_what_sign_ins_gave(user.id, None, now).await?;
        self.store.delete_all_factors(user.id).await?;
        self.audit(AuditKind::MfaReset, Some(user.id), origin, json!({}), now).await?;
        Ok(user)
    }

    /// Operator: requires (or stops requiring) MFA for a user.
    pub async fn require_mfa(&self, email: &str, required: bool, origin: &RequestOrigin, now: UnixTime) -> Result<User, AccountError> {
        let user = self.find_user(email).await?;
        self.store.set_mfa_required(user.id, required).await?;
        self.audit(AuditKind::MfaRequirementChanged, Some(user.id), origin, json!({ "required": required }), now).await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::AccountAction;

    #[test]
    fn every_console_action_has_one_name_and_only_lock_and_demotion_are_refused_on_oneself() {
        for (name, action) in AccountAction::NAMES {
            assert_eq!(AccountAction::parse(name), Some(action));
            assert_eq!(action.name(), name);
        }
        let disarming: Vec<&str> = AccountAction::NAMES.iter().filter(|(_, a)| a.disarms()).map(|(n, _)| *n).collect();
        assert_eq!(disarming, ["lock", "remove_admin"]);
        assert_eq!(AccountAction::parse("delete"), None);
    }
}

/// Events sealed per transaction (SQLite holds its write lock meanwhile).
const SEAL_BATCH: u32 = 200;
/// Sealed events read per page when verifying.
const VERIFY_PAGE: u32 = 1000;

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditLogCheck {
    /// Where the chain breaks, if it does.
    pub broken: Option<ChainBreak>,
    /// Sealed events that verified (before the break, if any).
    pub checked: u64,
    /// The place and link of the last event that verified: keep it
    /// elsewhere to tell later that no newest events were deleted.
    pub head: (i64, String),
    /// Events not sealed yet (written in the last seconds, or while no server ran).
    pub unsealed: u64,
}
