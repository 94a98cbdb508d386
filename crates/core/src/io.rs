//! What the domain's I/O traits share (stores, mailers, gateways, the token
//! revoker): their result, error and future types. A leaf module: it names
//! nothing else of the crate, so every trait can use it without an import circle.

use std::future::Future;
use std::pin::Pin;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A boxed, sendable future (for object-safe traits: mailers, gateways, factors).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of the persistence layer, as the domain sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (such as an email address) is already taken.
    #[error("already exists")]
    Conflict,
    /// The database answered with an error.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached now: a connection failed or was cut,
    /// or none was free in time. Worth a retry in a moment.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// Delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);
