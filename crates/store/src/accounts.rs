//! [`AccountStore`] for both backends.

use portcullis_core::StoreError;
use portcullis_core::account_store::FinishedSignIn;
use portcullis_core::account_store::{AccountStore, EmailLink, FactorAdoption, FirstAdmin, LinkPurpose};
use portcullis_core::audit::NewAuditEvent;
use portcullis_core::clock::UnixTime;
use portcullis_core::email::EmailAddress;
use portcullis_core::io::StoreResult;
use portcullis_core::lockout::FailureRecord;
use portcullis_core::policy::DeviceHistory;
use portcullis_core::rate_limit::RateBucket;
use portcullis_core::session::{AuthRecord, SessionRecord};
use portcullis_core::user::{User, UserId};
use uuid::Uuid;

use crate::audit::{bind_audit_event, insert_audit_event};
use crate::{Backend, Store, begin_transaction, db_error, on_pool};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    email_verified_at: Option<i64>,
    is_admin: bool,
    is_auditor: bool,
    mfa_required: bool,
    disabled_at: Option<i64>,
    password_reset_at: Option<i64>,
    password_breached_at: Option<i64>,
    language: Option<String>,
    enrollment_prompt_snoozed_until: Option<i64>,
    security_epoch: i64,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: parse_user_id(&r.id)?,
            email: EmailAddress::parse(&r.email).map_err(|_| StoreError::Backend(format!("stored email of {} is invalid", r.id)))?,
            name: r.name,
            password_hash: r.password_hash,
            email_verified_at: r.email_verified_at,
            is_admin: r.is_admin,
            is_auditor: r.is_auditor,
            mfa_required: r.mfa_required,
            disabled_at: r.disabled_at,
            password_reset_at: r.password_reset_at,
            password_breached_at: r.password_breached_at,
            // A language no longer shipped reads as no choice.
            language: r.language.as_deref().and_then(portcullis_core::Language::parse),
            enrollment_prompt_snoozed_until: r.enrollment_prompt_snoozed_until,
            security_epoch: r.security_epoch,
            created_at: r.created_at,
        })
    }
}

pub(crate) fn parse_user_id(s: &str) -> Result<UserId, StoreError> {
    Uuid::parse_str(s).map(UserId).map_err(|_| StoreError::Backend(format!("stored user id {s:?} is not a UUID")))
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    // Aliased in every read, so a session reads beside its user's columns.
    #[sqlx(rename = "session_id")]
    id: String,
    user_id: String,
    #[sqlx(rename = "session_created_at")]
    created_at: i64,
    last_seen_at: i64,
    auth_record: String,
    ip: String,
    #[sqlx(rename = "session_security_epoch")]
    security_epoch: i64,
    user_agent: String,
}

/// A session and its user, read together (`session_by_digest`).
#[derive(sqlx::FromRow)]
struct SessionWithUserRow {
    #[sqlx(flatten)]
    session: SessionRow,
    #[sqlx(flatten)]
    user: UserRow,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let auth: AuthRecord = serde_json::from_str(&r.auth_record).map_err(|e| StoreError::Backend(format!("session {}: {e}", r.id)))?;
        Ok(SessionRecord {
            user_id: parse_user_id(&r.user_id)?,
            id: r.id,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            auth,
            ip: r.ip,
            user_agent: r.user_agent,
            security_epoch: r.security_epoch,
        })
    }
}

/// `SELECT` of all user columns followed by a literal tail (kept literal for sqlx's injection check).
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, email, name, password_hash, email_verified_at, is_admin, is_auditor, mfa_required, disabled_at, password_reset_at, \
             password_breached_at, language, enrollment_prompt_snoozed_until, security_epoch, created_at FROM users ",
            $tail
        )
    };
}

/// `UPDATE users SET <set> WHERE id = $2`, with `value` as `$1`.
macro_rules! update_user {
    ($store:expr, $set:literal, $value:expr, $id:expr) => {
        on_pool!($store, |p| sqlx::query(concat!("UPDATE users SET ", $set, " WHERE id = $2"))
            .bind($value)
            .bind($id.to_string())
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    };
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The INSERT of one user, on any executor (a pool, or a transaction for imports).
macro_rules! insert_user {
    ($executor:expr, $u:expr) => {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, email_verified_at, is_admin, is_auditor, mfa_required, disabled_at, created_at, \
             password_reset_at, language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind($u.id.to_string())
        .bind($u.email.as_str())
        .bind(&$u.name)
        .bind(&$u.password_hash)
        .bind($u.email_verified_at)
        .bind($u.is_admin)
        .bind($u.is_auditor)
        .bind($u.mfa_required)
        .bind($u.disabled_at)
        .bind($u.created_at)
        .bind($u.password_reset_at)
        .bind($u.language.map(|l| l.code()))
        .execute($executor)
    };
}
pub(crate) use {insert_user, select_users};

// What a finished sign-in writes ([`AccountStore::record_sign_in`]), in
// fragments that both backends' texts share. Parameters: `$1`–`$7` the audit
// event, `$8`–`$16` and `$24` the session, `$17` whether to remember device `$18`,
// `$19`–`$23` the last sign-in. The read: what was known of the device before.
macro_rules! devices_before_sign_in {
    () => {
        "SELECT COALESCE(SUM(CASE WHEN device = $18 THEN 1 ELSE 0 END), 0), COUNT(*) FROM known_devices WHERE user_id = $10"
    };
}
macro_rules! insert_session {
    () => {
        "INSERT INTO sessions (digest, id, user_id, created_at, last_seen_at, expires_at, auth_record, ip, user_agent, security_epoch) \
         VALUES ($8, $9, $10, $11, $12, $13, $14, $15, $16, $24)"
    };
}
macro_rules! remember_device {
    () => {
        "INSERT INTO known_devices (user_id, device, first_seen_at, last_seen_at) SELECT $10, $18, $11, $11 WHERE $17 \
         ON CONFLICT (user_id, device) DO UPDATE SET last_seen_at = $11"
    };
}
macro_rules! set_last_sign_in {
    () => {
        "INSERT INTO last_sign_ins (user_id, at, ip, country, latitude, longitude) VALUES ($10, $19, $20, $21, $22, $23) \
         ON CONFLICT (user_id) DO UPDATE SET at = $19, ip = $20, country = $21, latitude = $22, longitude = $23"
    };
}

/// SQLite: the statements in order, one command.
const SIGN_IN_SQLITE: &str = concat!(
    devices_before_sign_in!(),
    "; ",
    insert_audit_event!(),
    "; ",
    insert_session!(),
    "; ",
    remember_device!(),
    "; ",
    set_last_sign_in!()
);

/// PostgreSQL: one statement; the data-modifying CTEs and the read share a
/// snapshot, so the read sees the devices as they were before.
const SIGN_IN_POSTGRES: &str = concat!(
    "WITH audit AS (",
    insert_audit_event!(),
    "), session AS (",
    insert_session!(),
    "), device AS (",
    remember_device!(),
    "), last AS (",
    set_last_sign_in!(),
    ") ",
    devices_before_sign_in!()
);

/// A session with its user, in one read (every signed-in request asks for
/// both). The user is found by its key (`u.id =` the session's `user_id`,
/// read by a subquery), not by the join alone: on PostgreSQL with 1,000,000
/// users and sessions mostly of early-created users, the planner chose a
/// merge join that walks `users_pkey` from its first entry to the session's
/// user (user ids are UUIDv7, ordered by creation), 250 ms for a user created
/// last. With the key given, every plan reads one user row.
pub(crate) const SESSION_WITH_USER: &str = "SELECT s.id AS session_id, s.user_id, s.created_at AS session_created_at, s.last_seen_at, \
     s.auth_record, s.ip, s.user_agent, u.id, u.email, u.name, u.password_hash, u.email_verified_at, u.is_admin, u.is_auditor, \
     u.mfa_required, u.disabled_at, u.password_reset_at, u.password_breached_at, u.language, u.enrollment_prompt_snoozed_until, \
     u.security_epoch, u.created_at, s.security_epoch AS session_security_epoch \
     FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.digest = $1 AND u.id = (SELECT user_id FROM sessions WHERE digest = $1)";

impl AccountStore for Store {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        on_pool!(self, |p| insert_user!(p, u).await.map(|_| ()).map_err(db_error))
    }

    async fn setup_open(&self) -> StoreResult<bool> {
        let closed: i64 = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM users WHERE is_admin) + (SELECT COUNT(*) FROM first_admin)"
        )
        .fetch_one(p)
        .await
        .map_err(db_error))?;
        Ok(closed == 0)
    }

    async fn save_setup_link(&self, digest: &str, now: UnixTime, expires_at: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("INSERT INTO setup_links (digest, created_at, expires_at) VALUES ($1, $2, $3)")
            .bind(digest)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn setup_link_usable(&self, digest: &str, now: UnixTime) -> StoreResult<bool> {
        let usable: i64 = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM setup_links WHERE digest = $1 AND expires_at > $2 \
             AND NOT EXISTS (SELECT 1 FROM users WHERE is_admin) AND NOT EXISTS (SELECT 1 FROM first_admin)"
        )
        .bind(digest)
        .bind(now)
        .fetch_one(p)
        .await
        .map_err(db_error))?;
        Ok(usable > 0)
    }

    async fn create_first_admin(&self, digest: &str, admin: &User, event: &NewAuditEvent, now: UnixTime) -> StoreResult<FirstAdmin> {
        // Every early return drops the transaction, which rolls it back: the
        // link is used up only together with the account it made.
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            // The one row serialises links used at once, and first: PostgreSQL
            // makes a second insert wait for the first's commit, then refuses it
            // (taken after the link's row, two links would wait on each other).
            match sqlx::query("INSERT INTO first_admin (id, user_id, created_at) VALUES (1, $1, $2)")
                .bind(admin.id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)
            {
                Err(StoreError::Conflict) => return Ok(FirstAdmin::LinkUnusable),
                other => other?,
            };
            let taken = sqlx::query("DELETE FROM setup_links WHERE digest = $1 AND expires_at > $2")
                .bind(digest)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            if taken.rows_affected() != 1 {
                return Ok(FirstAdmin::LinkUnusable);
            }
            // An administrator made on the command line before closes setup too
            // (one committed while this runs may be missed: two admins, both the operator's).
            let admins: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin").fetch_one(&mut *tx).await.map_err(db_error)?;
            if admins > 0 {
                return Ok(FirstAdmin::LinkUnusable);
            }
            match insert_user!(&mut *tx, admin).await.map_err(db_error) {
                Err(StoreError::Conflict) => return Ok(FirstAdmin::EmailTaken),
                other => other?,
            };
            bind_audit_event!(sqlx::query(insert_audit_event!()), event).execute(&mut *tx).await.map_err(db_error)?;
            // The other links stay until they expire (the purge's), but the
            // `first_admin` row makes them useless; deleting them here could
            // deadlock with the purge on PostgreSQL.
            tx.commit().await.map_err(db_error)?;
            Ok(FirstAdmin::Created)
        })
    }

    async fn user_by_email(&self, email: &EmailAddress) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, |p| sqlx::query_as(select_users!("WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        row.map(User::try_from).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, |p| sqlx::query_as(select_users!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        row.map(User::try_from).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> =
            on_pool!(self, |p| sqlx::query_as(select_users!("ORDER BY created_at, id")).fetch_all(p).await.map_err(db_error))?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn current_locks(&self, now: UnixTime, limit: u32) -> StoreResult<Vec<(String, UnixTime)>> {
        on_pool!(self, |p| sqlx::query_as(
            // Accounts only: addresses without one are locked too (so a guess tells nothing), but are no one's.
            "SELECT f.account_key, f.locked_until FROM login_failures f JOIN users u \
             ON f.account_key = u.email OR f.account_key = 'second-step:' || u.email \
             WHERE f.locked_until > $1 ORDER BY f.locked_until DESC, f.account_key LIMIT $2"
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await
        .map_err(db_error))
    }

    async fn factor_adoption(&self, active_since: Option<UnixTime>) -> StoreResult<FactorAdoption> {
        // `$1` is i64::MIN for every account: each one's last sign-in (or none) is later.
        const COUNTED: &str = "(SELECT u.id FROM users u LEFT JOIN last_sign_ins l ON l.user_id = u.id \
             WHERE $1 = -9223372036854775808 OR l.at >= $1)";
        let since = active_since.unwrap_or(i64::MIN);
        let users_sql = format!("SELECT COUNT(*) FROM {COUNTED} c");
        let any_sql = format!(
            "SELECT COUNT(*) FROM {COUNTED} c WHERE EXISTS (SELECT 1 FROM credentials k WHERE k.user_id = c.id AND k.confirmed_at IS NOT NULL)"
        );
        let kinds_sql = format!(
            "SELECT k.kind, COUNT(DISTINCT k.user_id) FROM credentials k JOIN {COUNTED} c ON c.id = k.user_id \
             WHERE k.confirmed_at IS NOT NULL GROUP BY k.kind \
             UNION ALL SELECT 'recovery', COUNT(DISTINCT r.user_id) FROM recovery_codes r JOIN {COUNTED} c ON c.id = r.user_id \
             WHERE r.used_at IS NULL"
        );
        on_pool!(self, |p| {
            let users: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(users_sql)).bind(since).fetch_one(p).await.map_err(db_error)?;
            let with_any: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(any_sql)).bind(since).fetch_one(p).await.map_err(db_error)?;
            let mut by_kind: Vec<(String, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(kinds_sql)).bind(since).fetch_all(p).await.map_err(db_error)?;
            by_kind.retain(|(_, n)| *n > 0);
            by_kind.sort();
            Ok(FactorAdoption { users, with_any, by_kind })
        })
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn set_disabled(&self, id: UserId, at: Option<UnixTime>) -> StoreResult<()> {
        update_user!(self, "disabled_at = $1", at, id)
    }

    async fn search_users(&self, query: &str, limit: u32) -> StoreResult<Vec<User>> {
        // Emails are stored normalised (lower case); LIKE wildcards typed by the admin are taken literally.
        let escaped = query.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let rows: Vec<UserRow> = on_pool!(self, |p| sqlx::query_as(select_users!(
            "WHERE email LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2"
        ))
        .bind(&pattern)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await
        .map_err(db_error))?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn set_admin(&self, id: UserId, admin: bool) -> StoreResult<()> {
        update_user!(self, "is_admin = $1", admin, id)
    }

    async fn mark_password_breached(&self, id: UserId, now: UnixTime) -> StoreResult<()> {
        update_user!(self, "password_breached_at = $1", now, id)
    }

    async fn set_language(&self, id: UserId, language: Option<portcullis_core::Language>) -> StoreResult<()> {
        update_user!(self, "language = $1", language.map(|l| l.code()), id)
    }

    async fn snooze_enrollment_prompt(&self, id: UserId, until: UnixTime) -> StoreResult<()> {
        update_user!(self, "enrollment_prompt_snoozed_until = $1", until, id)
    }

    async fn set_auditor(&self, id: UserId, auditor: bool) -> StoreResult<()> {
        update_user!(self, "is_auditor = $1", auditor, id)
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
        // A new password is no longer the breached one.
        update_user!(self, "password_hash = $1, password_breached_at = NULL", hash, id)
    }

    async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new)
            .bind(id.to_string())
            .bind(old)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn mark_password_reset(&self, id: UserId, at: UnixTime) -> StoreResult<()> {
        update_user!(self, "password_reset_at = $1", at, id)
    }

    async fn mark_email_verified(&self, id: UserId, at: UnixTime) -> StoreResult<()> {
        update_user!(self, "email_verified_at = COALESCE(email_verified_at, $1)", at, id)
    }

    async fn replace_email_link(&self, l: &EmailLink) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            sqlx::query("DELETE FROM email_links WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL")
                .bind(l.user_id.to_string())
                .bind(l.purpose.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            sqlx::query("INSERT INTO email_links (digest, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&l.digest)
                .bind(l.user_id.to_string())
                .bind(l.purpose.as_str())
                .bind(l.created_at)
                .bind(l.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn peek_email_link(&self, digest: &str, purpose: LinkPurpose, now: UnixTime) -> StoreResult<Option<UserId>> {
        let user: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT user_id FROM email_links WHERE digest = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3",
            )
            .bind(digest)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(p)
            .await
            .map_err(db_error)
        })?;
        user.as_deref().map(parse_user_id).transpose()
    }

    async fn consume_email_link(&self, digest: &str, purpose: LinkPurpose, now: UnixTime) -> StoreResult<Option<UserId>> {
        // One conditional UPDATE: the row is claimed by exactly one caller.
        let user: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "UPDATE email_links SET consumed_at = $3 \
             WHERE digest = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 RETURNING user_id",
            )
            .bind(digest)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(p)
            .await
            .map_err(db_error)
        })?;
        user.as_deref().map(parse_user_id).transpose()
    }

    async fn failure_record(&self, key: &str) -> StoreResult<FailureRecord> {
        let row: Option<(i64, Option<i64>)> =
            on_pool!(self, |p| sqlx::query_as("SELECT failures, locked_until FROM login_failures WHERE account_key = $1")
                .bind(key)
                .fetch_optional(p)
                .await
                .map_err(db_error))?;
        Ok(row.map(|(f, l)| FailureRecord { failures: count(f), locked_until: l }).unwrap_or_default())
    }

    async fn failure_records(&self, keys: &[&str]) -> StoreResult<Vec<FailureRecord>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64, Option<i64>)> = on_pool!(self, |p| {
            let mut query =
                sqlx::QueryBuilder::new("SELECT account_key, failures, locked_until FROM login_failures WHERE account_key IN (");
            let mut listed = query.separated(", ");
            for key in keys {
                listed.push_bind(*key);
            }
            query.push(")");
            query.build_query_as().fetch_all(p).await.map_err(db_error)
        })?;
        let found: std::collections::HashMap<String, FailureRecord> =
            rows.into_iter().map(|(k, f, l)| (k, FailureRecord { failures: count(f), locked_until: l })).collect();
        Ok(keys.iter().map(|k| found.get(*k).copied().unwrap_or_default()).collect())
    }

    async fn record_login_failure(&self, key: &str, now: UnixTime, window_start: UnixTime) -> StoreResult<Option<u32>> {
        // The upsert's WHERE leaves a locked counter alone (no row comes back):
        // what races a lock is refused, not counted from zero again.
        let n: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "INSERT INTO login_failures (account_key, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (account_key) DO UPDATE SET \
               failures = CASE WHEN login_failures.last_failure_at < $3 THEN 1 ELSE login_failures.failures + 1 END, \
               last_failure_at = $2 \
             WHERE login_failures.locked_until IS NULL OR login_failures.locked_until <= $2 \
             RETURNING failures",
            )
            .bind(key)
            .bind(now)
            .bind(window_start)
            .fetch_optional(p)
            .await
            .map_err(db_error)
        })?;
        Ok(n.map(count))
    }

    async fn forget_login_failures(&self, key: &str, n: u32) -> StoreResult<()> {
        // Most often nothing else is counted and nothing locked: the row goes
        // (one statement, no row left behind per signed-in account).
        let deleted = on_pool!(self, |p| sqlx::query(
            "DELETE FROM login_failures WHERE account_key = $1 AND failures <= $2 AND locked_until IS NULL"
        )
        .bind(key)
        .bind(i64::from(n))
        .execute(p)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(db_error))?;
        if deleted {
            return Ok(());
        }
        on_pool!(self, |p| sqlx::query(
            "UPDATE login_failures SET failures = CASE WHEN failures > $2 THEN failures - $2 ELSE 0 END WHERE account_key = $1"
        )
        .bind(key)
        .bind(i64::from(n))
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error))
    }

    async fn lock_account(&self, key: &str, until: UnixTime, now: UnixTime) -> StoreResult<bool> {
        // An upsert: a lock is never lost to a counter deleted meanwhile.
        let locked: Option<String> = on_pool!(self, |p| sqlx::query_scalar(
            "INSERT INTO login_failures (account_key, failures, last_failure_at, locked_until) VALUES ($1, 0, $3, $2) \
             ON CONFLICT (account_key) DO UPDATE SET failures = 0, locked_until = $2 \
             WHERE login_failures.locked_until IS NULL OR login_failures.locked_until <= $3 \
             RETURNING account_key"
        )
        .bind(key)
        .bind(until)
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(db_error))?;
        Ok(locked.is_some())
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("DELETE FROM login_failures WHERE account_key = $1")
            .bind(key)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn record_sign_in(&self, f: &FinishedSignIn<'_>) -> StoreResult<DeviceHistory> {
        let auth = serde_json::to_string(&f.session.auth).map_err(|e| StoreError::Backend(e.to_string()))?;
        let (session, last) = (f.session, f.last);
        macro_rules! bound {
            ($sql:expr) => {
                bind_audit_event!(sqlx::query_as::<_, (i64, i64)>($sql), f.event)
                    .bind(f.session_digest)
                    .bind(&session.id)
                    .bind(session.user_id.to_string())
                    .bind(session.created_at)
                    .bind(session.last_seen_at)
                    .bind(f.expires_at)
                    .bind(&auth)
                    .bind(&session.ip)
                    .bind(&session.user_agent)
                    .bind(f.remember_device)
                    .bind(f.device_digest)
                    .bind(last.at)
                    .bind(&last.ip)
                    .bind(last.location.country.as_deref())
                    .bind(last.location.latitude)
                    .bind(last.location.longitude)
                    .bind(session.security_epoch)
            };
        }
        let (known, devices) = match &self.backend {
            // One multi-statement command: one hand-off to the connection's
            // thread (and one commit) instead of one per statement; inside
            // sqlx's transaction, so a failure or a cancelled request rolls
            // back all of it.
            Backend::Sqlite(p) => {
                begin_transaction!(p, tx, "BEGIN IMMEDIATE");
                let rows = bound!(SIGN_IN_SQLITE).fetch_all(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                rows.first().copied()
            }
            Backend::Postgres(p) => bound!(SIGN_IN_POSTGRES).fetch_optional(p).await.map_err(db_error)?,
        }
        .ok_or_else(|| StoreError::Backend("a finished sign-in read no device history".into()))?;
        Ok(DeviceHistory { known: known > 0, any_known: devices > 0 })
    }

    async fn session_by_digest(&self, digest: &str) -> StoreResult<Option<(SessionRecord, User)>> {
        let row: Option<SessionWithUserRow> =
            on_pool!(self, |p| { sqlx::query_as(SESSION_WITH_USER).bind(digest).fetch_optional(p).await.map_err(db_error) })?;
        row.map(|r| Ok((SessionRecord::try_from(r.session)?, User::try_from(r.user)?))).transpose()
    }

    async fn touch_session(&self, digest: &str, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE digest = $1 AND last_seen_at < $2")
            .bind(digest)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn delete_session(&self, digest: &str) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(digest)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let rows: Vec<SessionRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id AS session_id, user_id, created_at AS session_created_at, last_seen_at, auth_record, ip, user_agent, \
                 security_epoch AS session_security_epoch FROM sessions WHERE user_id = $1 \
                 ORDER BY created_at DESC",
            )
            .bind(user.to_string())
            .fetch_all(p)
            .await
            .map_err(db_error)
        })?;
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    async fn delete_user_session(&self, user: UserId, id: &str) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id = $2")
            .bind(user.to_string())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn end_user_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64> {
        // No digest is empty, so "" keeps nothing.
        let (user, keep) = (user.to_string(), keep.unwrap_or(""));
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            for sql in [
                "UPDATE users SET security_epoch = security_epoch + 1 WHERE id = $1",
                "UPDATE sessions SET security_epoch = (SELECT security_epoch FROM users WHERE id = $1) WHERE user_id = $1 AND digest = $2",
            ] {
                sqlx::query(sql).bind(&user).bind(keep).execute(&mut *tx).await.map_err(db_error)?;
            }
            let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND digest <> $2")
                .bind(&user)
                .bind(keep)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            tx.commit().await.map_err(db_error)?;
            Ok(ended)
        })
    }

    async fn hit_rate_bucket(&self, b: &RateBucket) -> StoreResult<u32> {
        let n: i64 = on_pool!(self, |p| {
            sqlx::query_scalar(
                "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start = $2 THEN rate_limits.hits + 1 ELSE 1 END, \
               window_start = $2 \
             RETURNING hits",
            )
            .bind(&b.key)
            .bind(b.window_start)
            .fetch_one(p)
            .await
            .map_err(db_error)
        })?;
        Ok(count(n))
    }

    async fn purge_expired(&self, now: UnixTime) -> StoreResult<()> {
        let day = 24 * 3600;
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM email_links WHERE expires_at <= $1").bind(now - day).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM login_failures WHERE last_failure_at < $1 AND (locked_until IS NULL OR locked_until < $2)")
                .bind(now - day)
                .bind(now)
                .execute(p)
                .await
                .map_err(db_error)?;
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(now - 3600).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM send_quotas WHERE last_at < $1").bind(now - day).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM pending_sign_ins WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM one_time_codes WHERE expires_at <= $1").bind(now - day).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM access_token_revocations WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM pending_requests WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM registration_tokens WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM setup_links WHERE expires_at <= $1").bind(now).execute(p).await.map_err(db_error)?;
            // Spent codes and rotated refresh tokens stay a day past their expiry, so a
            // late replay is still recognised as one (and revokes its grant).
            sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1").bind(now - day).execute(p).await.map_err(db_error)?;
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1").bind(now - day).execute(p).await.map_err(db_error)?;
            Ok(())
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(db_error))
    }
}
