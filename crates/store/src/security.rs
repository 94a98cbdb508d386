//! [`AuditStore`], [`RiskStore`] and [`NoticeStore`] for both backends: the audit log, what adaptive rules remember, and the queue of security notices.

use portcullis_core::StoreError;
use portcullis_core::audit::{AuditFilter, AuditKind, AuditRecord, AuditStore, NewAuditEvent};
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::mail::Message;
use portcullis_core::notices::{NoticeStore, QueuedNotice};
use portcullis_core::policy::{DeviceHistory, LastSignIn, Location, RiskStore, SignInHistory};
use portcullis_core::user::UserId;

use crate::accounts::parse_user_id;
use crate::{Store, db_error, on_pool};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    event: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: String,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditRecord {
            id: r.id,
            at: r.at,
            kind: r.event,
            user: r.user_id.as_deref().map(parse_user_id).transpose()?,
            client_id: r.client_id,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: serde_json::from_str(&r.detail).map_err(|e| StoreError::Backend(format!("audit event {}: {e}", r.id)))?,
        })
    }
}

/// The filtered `SELECT`, in the order given (kept literal for sqlx's injection check).
macro_rules! select_events {
    ($order:literal) => {
        concat!(
            "SELECT id, at, event, user_id, client_id, ip, user_agent, detail FROM audit_events \
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR event = $2) \
               AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at <= $4) AND id > $5 ",
            $order,
            " LIMIT $6"
        )
    };
}

/// The audit log's insert: its own statement, and the first of a finished
/// sign-in's (`record_sign_in`), so its parameters are `$1`–`$7`.
macro_rules! insert_audit_event {
    () => {
        "INSERT INTO audit_events (at, event, user_id, client_id, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
}
pub(crate) use insert_audit_event;

/// Binds an audit event to [`insert_audit_event!`]'s `$1`–`$7`.
macro_rules! bind_audit_event {
    ($query:expr, $e:expr) => {{
        let e: &portcullis_core::audit::NewAuditEvent = $e;
        let agent: Option<String> = Some(e.origin.user_agent.chars().take(300).collect::<String>()).filter(|a| !a.is_empty());
        $query
            .bind(e.at)
            .bind(e.kind.as_str())
            .bind(e.user.map(|u| u.to_string()))
            .bind(e.origin.client_id.clone())
            .bind(e.origin.ip.map(|ip| ip.to_string()))
            .bind(agent)
            .bind(e.detail.to_string())
    }};
}
pub(crate) use bind_audit_event;

impl AuditStore for Store {
    async fn record_audit_event(&self, e: &NewAuditEvent) -> StoreResult<()> {
        on_pool!(self, |p| bind_audit_event!(sqlx::query(insert_audit_event!()), e).execute(p).await.map(|_| ()).map_err(db_error))
    }

    async fn audit_events(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let user = f.user.map(|u| u.to_string());
        let kind = f.kind.map(AuditKind::as_str);
        let limit = i64::from(f.limit.clamp(1, 10_000));
        let rows: Vec<AuditRow> = on_pool!(self, |p| {
            let query = match f.after_id {
                Some(_) => sqlx::query_as(select_events!("ORDER BY id ASC")),
                None => sqlx::query_as(select_events!("ORDER BY id DESC")),
            };
            query
                .bind(&user)
                .bind(kind)
                .bind(f.since)
                .bind(f.until)
                .bind(f.after_id.unwrap_or(0))
                .bind(limit)
                .fetch_all(p)
                .await
                .map_err(db_error)
        })?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    async fn purge_audit_events(&self, before: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| {
            for sql in ["DELETE FROM audit_events WHERE at < $1", "DELETE FROM known_devices WHERE last_seen_at < $1"] {
                sqlx::query(sql).bind(before).execute(p).await.map_err(db_error)?;
            }
            Ok(())
        })
    }
}

#[derive(sqlx::FromRow)]
struct SignInHistoryRow {
    this_device: i64,
    devices: i64,
    failures: i64,
    at: Option<i64>,
    ip: Option<String>,
    country: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl RiskStore for Store {
    async fn sign_in_history(&self, user: UserId, device_digest: &str, failures_since: UnixTime) -> StoreResult<SignInHistory> {
        // Read on every first step: one statement instead of three round trips.
        let r: SignInHistoryRow = on_pool!(self, |p| sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM known_devices WHERE user_id = $1 AND device = $2) AS this_device, \
                    (SELECT COUNT(*) FROM known_devices WHERE user_id = $1) AS devices, \
                    (SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND at >= $3 AND event = $4) AS failures, \
                    l.at, l.ip, l.country, l.latitude, l.longitude \
             FROM (SELECT 1 AS one) AS o LEFT JOIN last_sign_ins l ON l.user_id = $1"
        )
        .bind(user.to_string())
        .bind(device_digest)
        .bind(failures_since)
        .bind(AuditKind::SignInFailed.as_str())
        .fetch_one(p)
        .await
        .map_err(db_error))?;
        Ok(SignInHistory {
            device: DeviceHistory { known: r.this_device > 0, any_known: r.devices > 0 },
            failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
            last: r.at.map(|at| LastSignIn {
                at,
                ip: r.ip.unwrap_or_default(),
                location: Location { country: r.country, latitude: r.latitude, longitude: r.longitude },
            }),
        })
    }
}

#[derive(sqlx::FromRow)]
struct NoticeRow {
    id: i64,
    recipient: String,
    message: String,
    attempts: i64,
}

impl NoticeStore for Store {
    async fn enqueue_notice(&self, recipient: &str, message: &Message, now: UnixTime) -> StoreResult<()> {
        let json = serde_json::to_string(message).map_err(|e| StoreError::Backend(e.to_string()))?;
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO queued_notices (recipient, message, attempts, not_before, created_at) VALUES ($1, $2, 0, $3, $3)"
        )
        .bind(recipient)
        .bind(&json)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error))
    }

    async fn claim_notices(&self, now: UnixTime, lease_until: UnixTime, limit: u32) -> StoreResult<Vec<QueuedNotice>> {
        // SQLite runs one writer at a time, so the plain statement claims each
        // notice once. PostgreSQL runs senders side by side: without row locks a
        // sender whose chosen rows were taken meanwhile would claim nothing
        // (the outer re-check drops them) while later notices wait; `FOR UPDATE
        // SKIP LOCKED` makes it pass over rows another sender holds and take
        // the next free ones, and the lock re-reads a row claimed and committed
        // since, so it is still claimed once.
        macro_rules! claim {
            ($row_locks:literal) => {
                concat!(
                    "UPDATE queued_notices SET not_before = $2, attempts = attempts + 1 \
                     WHERE not_before <= $1 AND id IN (SELECT id FROM queued_notices WHERE not_before <= $1 ORDER BY id LIMIT $3",
                    $row_locks,
                    ") RETURNING id, recipient, message, attempts"
                )
            };
        }
        let sql = match self.backend {
            crate::Backend::Sqlite(_) => claim!(""),
            crate::Backend::Postgres(_) => claim!(" FOR UPDATE SKIP LOCKED"),
        };
        let rows: Vec<NoticeRow> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(db_error))?;
        let mut out: Vec<QueuedNotice> = rows
            .into_iter()
            .map(|r| QueuedNotice {
                id: r.id,
                recipient: r.recipient,
                message: r.message,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            })
            .collect();
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    async fn remove_notice(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("DELETE FROM queued_notices WHERE id = $1").bind(id).execute(p).await.map(|_| ()).map_err(db_error))
    }

    async fn retry_notice(&self, id: i64, attempts: u32, not_before: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("UPDATE queued_notices SET not_before = $2 WHERE id = $1 AND attempts = $3")
            .bind(id)
            .bind(not_before)
            .bind(i64::from(attempts))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }
}
