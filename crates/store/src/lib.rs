//! Portcullis persistence on SQLite (default, embedded) or PostgreSQL (several
//! server processes).
//!
//! One SQL text serves both backends wherever the dialects agree (sqlx's SQLite
//! driver accepts PostgreSQL's `$N` placeholders, and both have `RETURNING` and
//! `ON CONFLICT`); the [`on_pool!`] macro runs it on whichever pool is
//! configured. Only the migrations are written per backend.

mod accounts;
mod import;
mod mfa;
mod oidc;
mod security;
#[cfg(feature = "testing")]
pub mod testing;

pub use import::ImportedAccount;

use std::str::FromStr;
use std::time::Duration;

use portcullis_core::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

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

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
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
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(OpenError::Connect)?;
            Ok(Self { backend: Backend::Sqlite(pool) })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(OpenError::Connect)?;
            Ok(Self { backend: Backend::Postgres(pool) })
        } else {
            Err(OpenError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        match &self.backend {
            Backend::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await,
            Backend::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        }
        .map_err(OpenError::Migrate)
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
        _ => StoreError::Backend(e.to_string()),
    }
}
