//! Bulk import of accounts with their credentials: many rows in one
//! transaction, for seeding large databases (benchmarks, moving from another
//! provider) without one sign-up per account.

use portcullis_core::StoreError;
use portcullis_core::factors::Credential;
use portcullis_core::user::User;

use crate::accounts::insert_user;
use crate::factors::insert_credential;
use crate::{Store, begin_transaction, db_error, on_pool};

/// An account to import: the user and its credentials.
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    /// The user, its password hash already computed.
    pub user: User,
    /// Its credentials, secrets already sealed.
    pub credentials: Vec<Credential>,
}

impl Store {
    /// Inserts `accounts` in one transaction: all of them or none (a taken
    /// address gives [`StoreError::Conflict`] and nothing is kept).
    pub async fn import_accounts(&self, accounts: &[ImportedAccount]) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            for a in accounts {
                insert_user!(&mut *tx, a.user).await.map_err(db_error)?;
                for c in &a.credentials {
                    insert_credential!(&mut *tx, c).await.map_err(db_error)?;
                }
            }
            tx.commit().await.map_err(db_error)
        })
    }
}
