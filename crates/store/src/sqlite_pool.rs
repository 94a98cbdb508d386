//! The SQLite connection pool: at most `size` connections, lent one statement
//! (or one transaction) at a time, in the order they were asked for.
//!
//! Why not sqlx's `Pool`: it pings a connection each time it goes back (and,
//! by default, each time it is taken out). With sqlx's SQLite driver every
//! connection is a thread and every command a hand-off to it and back, so a
//! single statement cost three thread round trips where one does the work, and
//! those wake-ups, not SQL, were most of a sign-in's non-hash CPU (see the
//! README's performance section). The pings exist to find connections a
//! network or a server dropped and to wait for a cancelled query's unread
//! results; neither applies here: the database is a local file, and the
//! connection thread runs commands strictly in order and copes with
//! cancellation itself (a dropped transaction is rolled back before the next
//! command, a `BEGIN` never acknowledged is rolled back at once).
//!
//! What is kept: a connection idle for a second or more is pinged before it is
//! lent again, and one whose thread has stopped is discarded, not lent.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use either::Either;
use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement, SqliteTypeInfo};
use sqlx::{ConnectOptions, Connection, Error, Execute, Executor, SqlStr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::FRESH_IDLE;

/// How long a statement waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of SQLite connections (cheap to clone: all clones share it).
#[derive(Clone)]
pub(crate) struct SqliteConnections {
    shared: Arc<Shared>,
}

struct Shared {
    options: SqliteConnectOptions,
    /// One permit per connection that may be lent at once.
    permits: Arc<Semaphore>,
    /// Connections not lent, with when they came back.
    idle: Mutex<Vec<(SqliteConnection, Instant)>>,
}

impl fmt::Debug for SqliteConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConnections").field("available", &self.shared.permits.available_permits()).finish_non_exhaustive()
    }
}

impl SqliteConnections {
    /// Opens one connection now (so a bad path or a locked file is reported at
    /// start), the others as they are needed, up to `size`.
    pub(crate) async fn open(options: SqliteConnectOptions, size: usize) -> Result<Self, Error> {
        let first = options.connect().await?;
        let shared = Shared { options, permits: Arc::new(Semaphore::new(size)), idle: Mutex::new(vec![(first, Instant::now())]) };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// A connection of one's own until the lease is dropped.
    pub(crate) async fn acquire(&self) -> Result<Lease, Error> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.shared.permits).acquire_owned())
            .await
            .map_err(|_| Error::PoolTimedOut)?
            .map_err(|_| Error::PoolClosed)?;
        let connection = loop {
            let Some((mut connection, since)) = self.shared.idle().pop() else {
                break self.shared.options.connect().await?;
            };
            if since.elapsed() < FRESH_IDLE || connection.ping().await.is_ok() {
                break connection;
            }
            // Its thread is gone: let it go and try the next.
        };
        Ok(Lease { connection: Some(connection), shared: Arc::clone(&self.shared), broken: false, _permit: permit })
    }

    /// Closes every idle connection and refuses new leases (on shutdown).
    pub(crate) async fn close(&self) {
        self.shared.permits.close();
        let idle: Vec<_> = self.shared.idle().drain(..).collect();
        for (connection, _) in idle {
            let _ = connection.close().await;
        }
    }
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<(SqliteConnection, Instant)>> {
        // The list is valid whatever panicked while it was held.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A lent connection; goes back to the pool when dropped.
pub(crate) struct Lease {
    connection: Option<SqliteConnection>,
    shared: Arc<Shared>,
    /// Set when the connection's thread has stopped: it is dropped, not returned.
    broken: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn note(&mut self, error: &Error) {
        if matches!(error, Error::WorkerCrashed | Error::Io(_)) {
            self.broken = true;
        }
    }
}

impl Deref for Lease {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.connection.as_ref().unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.connection.as_mut().unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !self.broken
            && !self.shared.permits.is_closed()
        {
            self.shared.idle().push((connection, Instant::now()));
        }
    }
}

/// Statements run on the pool take a connection for themselves, as with sqlx's
/// own pool. Results are read whole before the connection goes back (the
/// store's queries return a bounded number of rows).
impl<'p> Executor<'p> for &SqliteConnections {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let pool = self.clone();
        futures_util::stream::once(async move {
            let mut lease = pool.acquire().await?;
            let results: Result<Vec<_>, Error> = Executor::fetch_many(&mut *lease, query).try_collect().await;
            if let Err(e) = &results {
                lease.note(e);
            }
            results
        })
        .map_ok(|results| futures_util::stream::iter(results.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<SqliteRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut lease = pool.acquire().await?;
            let row = Executor::fetch_optional(&mut *lease, query).await;
            if let Err(e) = &row {
                lease.note(e);
            }
            row
        })
    }

    fn prepare_with<'e>(self, sql: SqlStr, parameters: &'e [SqliteTypeInfo]) -> BoxFuture<'e, Result<SqliteStatement, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move { Executor::prepare_with(&mut *pool.acquire().await?, sql, parameters).await })
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move { Executor::describe(&mut *pool.acquire().await?, sql).await })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::str::FromStr;

    use sqlx::sqlite::SqliteJournalMode;

    use super::*;

    fn options(dir: &tempfile::TempDir) -> SqliteConnectOptions {
        SqliteConnectOptions::from_str(&format!("sqlite:{}", dir.path().join("pool.db").display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
    }

    async fn committed_rows(options: &SqliteConnectOptions) -> Vec<i64> {
        let mut other = options.connect().await.unwrap();
        sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(&mut other).await.unwrap()
    }

    /// A request cancelled halfway must leave nothing open for the next one to
    /// write into: without the pool's return ping, this rests on the
    /// connection thread running commands in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_transaction_or_statement_leaves_the_connection_clean() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SqliteConnections::open(options(&dir), 1).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&pool).await.unwrap();
        {
            let mut lease = pool.acquire().await.unwrap();
            let mut tx = Connection::begin(&mut *lease).await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await.unwrap();
            // Dropped without a commit, as when the client goes away.
        }
        let slow = sqlx::query_scalar::<_, i64>(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT COUNT(*) FROM c",
        )
        .fetch_one(&pool);
        assert!(tokio::time::timeout(Duration::from_millis(5), slow).await.is_err(), "cancelled while it ran");

        // The same (only) connection: outside any transaction, so this commits.
        sqlx::query("INSERT INTO t VALUES (2)").execute(&pool).await.unwrap();
        assert_eq!(committed_rows(&options(&dir)).await, vec![2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_its_size_are_lent_and_a_closed_pool_lends_none() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SqliteConnections::open(options(&dir), 2).await.unwrap();
        let first = pool.acquire().await.unwrap();
        let _second = pool.acquire().await.unwrap();
        let third = pool.acquire();
        tokio::pin!(third);
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut third).await.is_err(), "waits while both are lent");
        drop(first);
        let mut third = third.await.unwrap();
        assert_eq!(sqlx::query_scalar::<_, i64>("SELECT 7").fetch_one(&mut *third).await.unwrap(), 7);

        pool.close().await;
        assert!(matches!(pool.acquire().await, Err(Error::PoolClosed)));
        drop(third);
        assert!(pool.shared.idle().is_empty(), "a lease ending after the close is not kept");
    }
}
