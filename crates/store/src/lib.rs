//! Portcullis persistence on SQLite (default, embedded) or PostgreSQL (several
//! server processes).
//!
//! One SQL text serves both backends wherever the dialects agree (sqlx's SQLite
//! driver accepts PostgreSQL's `$N` placeholders, and both have `RETURNING` and
//! `ON CONFLICT`); the [`on_pool!`] macro runs it on whichever pool is
//! configured. Written per backend: the migrations, the notice queue's claim
//! (PostgreSQL's `SKIP LOCKED`), and a finished sign-in's record, whose shared
//! statements SQLite runs as one multi-statement command and PostgreSQL as one
//! statement of data-modifying CTEs (`accounts.rs`, `record_sign_in`).

mod accounts;
mod audit;
mod factors;
mod import;
mod notices;
mod oidc;
#[cfg(all(test, feature = "testing"))]
mod query_plans;
mod risk;
mod sign_in;
mod sqlite_pool;
#[cfg(feature = "testing")]
pub mod testing;

pub use import::ImportedAccount;

use std::str::FromStr;
use std::time::Duration;

use portcullis_core::StoreError;
use sqlite_pool::SqliteConnections;
use sqlx::Connection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

/// Runs the same expression against whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `begin_transaction!(p, tx)`: takes one connection from pool `p` and starts
/// transaction `tx` on it; the connection goes back when both go out of scope.
/// `begin_transaction!(p, tx, "BEGIN IMMEDIATE")` starts it with that statement
/// (SQLite: take the write lock first, for a transaction that reads then writes).
macro_rules! begin_transaction {
    ($pool:ident, $tx:ident) => {
        let mut connection = $pool.acquire().await.map_err($crate::db_error)?;
        let mut $tx = sqlx::Connection::begin(&mut *connection).await.map_err($crate::db_error)?;
    };
    ($pool:ident, $tx:ident, $begin:literal) => {
        let mut connection = $pool.acquire().await.map_err($crate::db_error)?;
        let mut $tx = sqlx::Connection::begin_with(&mut *connection, $begin).await.map_err($crate::db_error)?;
    };
}
pub(crate) use begin_transaction;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqliteConnections),
    Postgres(PgPool),
}

/// How long a pooled connection may sit idle and still be lent without a
/// liveness check (both backends).
pub(crate) const FRESH_IDLE: Duration = Duration::from_secs(1);

/// The PostgreSQL pool, with its liveness check made once per statement rather
/// than twice.
///
/// sqlx pings every connection when it goes back to the pool, and by default
/// again when it is taken out: two network round trips for one statement's
/// one. A connection that passed its return ping less than [`FRESH_IDLE`] ago
/// is lent as it is; one idle for longer (the server may have restarted, a
/// proxy may have cut it) is pinged first, as before. A connection that died
/// within that second fails its statement with a database error, and is
/// closed when its return ping fails. (SQLite has its own pool: `sqlite_pool`.)
fn postgres_pool_options() -> PgPoolOptions {
    // A statement waits at most this long for a connection, sqlx retrying a
    // refused connect meanwhile: long enough for a busy moment or a blip,
    // short enough that while the database is unreachable people get a 503
    // in seconds rather than a page hanging (sqlx's default is 30 s).
    PgPoolOptions::new().acquire_timeout(Duration::from_secs(3)).test_before_acquire(false).before_acquire(|connection, meta| {
        Box::pin(async move {
            if meta.idle_for >= FRESH_IDLE {
                connection.ping().await?;
            }
            Ok(true)
        })
    })
}

/// The database, behind the domain's store traits.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
}

/// Problems opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names no supported backend.
    #[error("database_url must start with sqlite: or postgres://, got {0:?}")]
    UnsupportedUrl(String),
    /// Connecting failed.
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl Store {
    /// Notices still waiting to be sent (tests wait for the queue to drain).
    #[cfg(feature = "testing")]
    pub async fn queued_notice_count(&self) -> portcullis_core::io::StoreResult<i64> {
        on_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM queued_notices").fetch_one(p).await.map_err(db_error))
    }

    /// Runs a `DELETE` of one row by its key (`$1`); true for exactly one
    /// caller when several race to take the same row.
    pub(crate) async fn delete_one(&self, sql: &'static str, key: &str) -> portcullis_core::io::StoreResult<bool> {
        on_pool!(self, |p| sqlx::query(sql).bind(key).execute(p).await.map(|r| r.rows_affected() == 1).map_err(db_error))
    }

    /// Opens `url` (`sqlite:PATH` or `postgres://…`). SQLite files are created
    /// when missing and run in WAL mode with foreign keys enforced.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(OpenError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqliteConnections::open(options, 8).await.map_err(OpenError::Connect)?;
            Ok(Self { backend: Backend::Sqlite(pool) })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres_pool_options().max_connections(16).connect(url).await.map_err(OpenError::Connect)?;
            Ok(Self { backend: Backend::Postgres(pool) })
        } else {
            Err(OpenError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        match &self.backend {
            Backend::Sqlite(p) => {
                let mut connection = p.acquire().await.map_err(|e| OpenError::Migrate(e.into()))?;
                sqlx::migrate!("./migrations/sqlite").run(&mut *connection).await
            }
            Backend::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        }
        .map_err(OpenError::Migrate)
    }

    /// The newest migration this build knows (a database's schema version once migrated).
    pub fn latest_schema_version(&self) -> i64 {
        let migrator = match self.backend {
            Backend::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The newest migration applied to this database (0 before any).
    pub async fn schema_version(&self) -> portcullis_core::io::StoreResult<i64> {
        on_pool!(self, |p| {
            let applied: Result<Option<i64>, _> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(p).await;
            match applied {
                Ok(v) => Ok(v.unwrap_or(0)),
                // A database never migrated has no such table.
                Err(sqlx::Error::Database(_)) => Ok(0),
                Err(e) => Err(db_error(e)),
            }
        })
    }

    /// SQLite only: writes a consistent copy of the whole database to the
    /// new file `path` while the server keeps using it (`VACUUM INTO` reads
    /// one snapshot in one read transaction, so concurrent writes are either
    /// wholly in the copy or not at all; the copy is compact and has no WAL).
    pub async fn snapshot_to(&self, path: &std::path::Path) -> portcullis_core::io::StoreResult<()> {
        let Backend::Sqlite(p) = &self.backend else {
            return Err(StoreError::Backend("a snapshot file is for SQLite; back PostgreSQL up with pg_dump".into()));
        };
        let path = path.to_str().ok_or_else(|| StoreError::Backend("the snapshot path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?").bind(path).execute(p).await.map_err(db_error)?;
        Ok(())
    }

    /// SQLite: `PRAGMA integrity_check`'s findings (`["ok"]` when sound);
    /// PostgreSQL checks itself, so always `["ok"]` there.
    pub async fn integrity_check(&self) -> portcullis_core::io::StoreResult<Vec<String>> {
        match &self.backend {
            Backend::Sqlite(p) => sqlx::query_scalar("PRAGMA integrity_check").fetch_all(p).await.map_err(db_error),
            Backend::Postgres(_) => Ok(vec!["ok".into()]),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes all connections (on shutdown).
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}

/// Maps a database error to the domain's view of it.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(d) if d.code().is_some_and(|code| connection_lost(&code)) => StoreError::Unavailable(e.to_string()),
        // A connection refused, cut or garbled (a protocol error is a server
        // that closed the connection mid-handshake), or none free in time.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// PostgreSQL's SQLSTATEs for a server that is going away or cannot take
/// the connection: class 08 (connection exception) but 08P01 (a protocol
/// violation, which is also what a bug such as a wrong number of bind
/// parameters gives), 57P01–57P03 (terminated by an administrator, crash
/// shutdown, cannot connect now), 53300 (too many connections).
fn connection_lost(code: &str) -> bool {
    (code.starts_with("08") && code != "08P01") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}
