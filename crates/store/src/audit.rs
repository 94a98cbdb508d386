//! [`AuditStore`] for both backends: the audit log.

use portcullis_core::StoreError;
use portcullis_core::audit::{AuditFilter, AuditKind, AuditRecord, AuditStore, NewAuditEvent};
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;

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
