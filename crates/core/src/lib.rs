//! Portcullis domain logic.
//!
//! Everything here decides; nothing here does I/O except through traits: one
//! store trait beside each domain it persists ([`account_store::Stores`]
//! names them all) and [`messages`] (delivery), and time only arrives as a
//! parameter or through [`clock::Clock`]. That keeps every rule (lockout, session
//! lifetimes, password policy, one-time tokens) testable without a server or a
//! database, and keeps HTTP and SQL out of the decisions.

pub mod account_store;
pub mod accounts;
pub mod app_access;
pub mod audit;
pub mod audit_chain;
pub mod breached;
pub mod clock;
pub mod credentials;
pub mod dashboard;
pub mod email;
pub mod error;
pub mod factors;
pub mod first_run;
pub mod io;
pub mod lockout;
pub mod messages;
pub mod methods;
pub mod metrics;
pub mod notices;
pub mod oauth;
pub mod operators;
pub mod password;
pub mod policy;
pub mod rate_limit;
pub mod registration;
pub mod risk;
pub mod sealed_file;
pub mod secrets;
pub mod session;
pub mod sessions;
pub mod sign_in;
pub mod sms;
pub mod user;

pub use error::{AccountError, StoreError};
/// The languages users read pages and messages in (`portcullis-i18n`).
pub use portcullis_i18n::Language;
