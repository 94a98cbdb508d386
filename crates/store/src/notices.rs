//! [`NoticeStore`] for both backends: the queue of security notices.

use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::notices::{NoticeStore, QueuedNotice};

use crate::{Store, db_error, on_pool};

#[derive(sqlx::FromRow)]
struct NoticeRow {
    id: i64,
    recipient: String,
    message: String,
    attempts: i64,
}

impl NoticeStore for Store {
    async fn enqueue_notice(&self, recipient: &str, payload: &str, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO queued_notices (recipient, message, attempts, not_before, created_at) VALUES ($1, $2, 0, $3, $3)"
        )
        .bind(recipient)
        .bind(payload)
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
