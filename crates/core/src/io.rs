//! What the domain's I/O traits share (stores, mailers, gateways, the token
//! revoker): their result and future types. A leaf module: it names nothing
//! else of the crate, so every trait can use it without an import circle.

use std::future::Future;
use std::pin::Pin;

use crate::error::StoreError;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A boxed, sendable future (for object-safe traits: mailers, gateways, factors).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
