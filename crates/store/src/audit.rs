//! [`AuditStore`] for both backends: the audit log.

use portcullis_core::StoreError;
use portcullis_core::audit::{AuditFilter, AuditKind, AuditRecord, AuditStore, NewAuditEvent};
use portcullis_core::audit_chain::{ChainAnchor, ChainedEvent, next_after};
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::secrets::MacKey;

use crate::accounts::parse_user_id;
use crate::{Backend, Store, begin_transaction, db_error, on_pool};

/// The columns of an event, its place in the chain included.
macro_rules! select_chained {
    () => {
        "SELECT seq, id, at, event, user_id, client_id, ip, user_agent, detail, chain FROM audit_events"
    };
}

/// An event as stored: read as an [`AuditRecord`] or, with its place and
/// link, as a [`ChainedEvent`].
#[derive(sqlx::FromRow, Clone)]
struct AuditRow {
    seq: Option<i64>,
    id: i64,
    at: i64,
    event: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: String,
    chain: Option<String>,
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
            select_chained!(),
            " WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR event = $2) \
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
        // The chain loses only its beginning: up to the first event to keep
        // (an event sealed late can be older than one sealed before it).
        macro_rules! purge {
            ($tx:ident) => {{
                let last: Option<(i64, String)> = sqlx::query_as(
                    "SELECT seq, chain FROM audit_events WHERE seq IS NOT NULL AND seq < \
                     COALESCE((SELECT MIN(seq) FROM audit_events WHERE at >= $1), (SELECT MAX(seq) + 1 FROM audit_events)) \
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(before)
                .fetch_optional(&mut *$tx)
                .await
                .map_err(db_error)?;
                if let Some((seq, chain)) = last {
                    sqlx::query("DELETE FROM audit_events WHERE seq <= $1").bind(seq).execute(&mut *$tx).await.map_err(db_error)?;
                    sqlx::query(
                        "INSERT INTO audit_chain_anchor (id, seq, chain) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET seq = $1, chain = $2",
                    )
                    .bind(seq)
                    .bind(chain)
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                }
                sqlx::query("DELETE FROM known_devices WHERE last_seen_at < $1").bind(before).execute(&mut *$tx).await.map_err(db_error)?;
                $tx.commit().await.map_err(db_error)
            }};
        }
        match &self.backend {
            Backend::Sqlite(p) => {
                begin_transaction!(p, tx, "BEGIN IMMEDIATE");
                purge!(tx)
            }
            Backend::Postgres(p) => {
                begin_transaction!(p, tx);
                // After the sealer: it reads the head this moves.
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SEALER_LOCK).execute(&mut *tx).await.map_err(db_error)?;
                purge!(tx)
            }
        }
    }

    async fn seal_audit_events(&self, key: &MacKey, limit: u32) -> StoreResult<u64> {
        macro_rules! seal {
            ($tx:ident) => {{
                let head: Option<(i64, String)> =
                    sqlx::query_as("SELECT seq, chain FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut *$tx)
                        .await
                        .map_err(db_error)?;
                let head = match head {
                    Some(h) => Some(h),
                    None => sqlx::query_as("SELECT seq, chain FROM audit_chain_anchor WHERE id = 1")
                        .fetch_optional(&mut *$tx)
                        .await
                        .map_err(db_error)?,
                };
                let unsealed: Vec<AuditRow> = sqlx::query_as(concat!(select_chained!(), " WHERE seq IS NULL ORDER BY id LIMIT $1"))
                    .bind(i64::from(limit.min(MAX_SEAL_BATCH)))
                    .fetch_all(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                let (mut seq, mut prev) = next_after(head);
                let mut links = Vec::with_capacity(unsealed.len());
                for row in &unsealed {
                    let link = ChainedEvent::from(row.clone()).link(key, seq, &prev);
                    links.push((row.id, seq, link.clone()));
                    (seq, prev) = (seq + 1, link);
                }
                if !links.is_empty() {
                    // One statement for the batch, so the lock is held for one
                    // round trip rather than one per event (both engines name
                    // the columns of a VALUES list column1, column2, …).
                    let mut update = sqlx::QueryBuilder::new("UPDATE audit_events SET seq = v.column2, chain = v.column3 FROM (");
                    update.push_values(&links, |mut row, (id, seq, link)| {
                        row.push_bind(*id).push_bind(*seq).push_bind(link.as_str());
                    });
                    update.push(") AS v WHERE audit_events.id = v.column1");
                    // Not prepared for reuse: each batch size is another text.
                    update.build().persistent(false).execute(&mut *$tx).await.map_err(db_error)?;
                }
                $tx.commit().await.map_err(db_error)?;
                Ok(u64::try_from(unsealed.len()).unwrap_or(u64::MAX))
            }};
        }
        match &self.backend {
            // The writer's lock from the start: the head read must not go stale.
            Backend::Sqlite(p) => {
                begin_transaction!(p, tx, "BEGIN IMMEDIATE");
                seal!(tx)
            }
            Backend::Postgres(p) => {
                begin_transaction!(p, tx);
                // One sealer across the nodes; when another is busy there is nothing to do here now.
                let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(SEALER_LOCK)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if !ours {
                    return Ok(0);
                }
                seal!(tx)
            }
        }
    }

    async fn audit_chain_anchor(&self) -> StoreResult<Option<ChainAnchor>> {
        let row: Option<(i64, String)> = on_pool!(self, |p| sqlx::query_as("SELECT seq, chain FROM audit_chain_anchor WHERE id = 1")
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        Ok(row.map(|(seq, chain)| ChainAnchor { seq, chain }))
    }

    async fn sealed_audit_events(&self, from_seq: i64, limit: u32) -> StoreResult<Vec<ChainedEvent>> {
        let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(concat!(select_chained!(), " WHERE seq >= $1 ORDER BY seq LIMIT $2"))
            .bind(from_seq)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
            .map_err(db_error))?;
        Ok(rows.into_iter().map(ChainedEvent::from).collect())
    }

    async fn unsealed_audit_events(&self) -> StoreResult<u64> {
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")
            .fetch_one(p)
            .await
            .map_err(db_error))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn sign_ins_since(&self, since: UnixTime, limit: u32) -> StoreResult<Vec<(UnixTime, String)>> {
        on_pool!(self, |p| sqlx::query_as(
            "SELECT at, detail FROM audit_events WHERE event = 'sign_in_succeeded' AND at >= $1 ORDER BY at DESC LIMIT $2"
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await
        .map_err(db_error))
    }
}

/// The most events one batch seals: its `UPDATE` binds three values each,
/// well within both engines' limits (PostgreSQL's 65,535).
const MAX_SEAL_BATCH: u32 = 1000;

/// The key of the PostgreSQL advisory lock that serialises sealing and
/// purging across nodes ("audit" in ASCII).
const SEALER_LOCK: i64 = 0x61_75_64_69_74;

impl From<AuditRow> for ChainedEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq,
            id: r.id,
            at: r.at,
            kind: r.event,
            user_id: r.user_id,
            client_id: r.client_id,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: r.detail,
            chain: r.chain,
        }
    }
}
