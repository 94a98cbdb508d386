//! The applications that hold access to an account, and taking it away: the
//! security page, the admin console and `portcullis user grants` /
//! `user revoke-grant` all list and revoke through [`Provider::app_access`]
//! and [`Provider::remove_app_access`], which audits.

use portcullis_core::account_store::AccountStore;
use portcullis_core::app_access::{AppAccess, applications};
use portcullis_core::audit::{AuditKind, AuditStore, NewAuditEvent, RequestOrigin};
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::OidcStore;
use portcullis_core::user::UserId;

use crate::OidcError;
use crate::provider::Provider;

impl<S: OidcStore + AccountStore + AuditStore> Provider<S> {
    /// The applications holding access to `user`, by name.
    pub async fn app_access(&self, user: UserId, now: UnixTime) -> Result<Vec<AppAccess>, OidcError> {
        let rows = self.store().user_grant_rows(user).await?;
        let consents = self.store().user_consents(user).await?;
        Ok(applications(rows, consents, self.lifetimes.access_token, now))
    }

    /// Takes away every grant `client_id` holds for `user` at once: its
    /// refresh tokens and unused codes stop working and its access tokens are
    /// revoked (`/userinfo` and introspection refuse them). Audited with
    /// who acted (`origin.actor`: an operator; none: the user). False if the
    /// application held no access.
    pub async fn remove_app_access(&self, user: UserId, client_id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, OidcError> {
        let held = self.app_access(user, now).await?.into_iter().find(|a| a.client_id == client_id);
        // Revoked whether listed or not: what the list cannot see (a grant
        // whose last token left no row) is covered all the same.
        self.store().revoke_user_grants(user, Some(client_id), now, self.grant_revocation_until(now)).await?;
        let Some(app) = held else { return Ok(false) };
        let origin = RequestOrigin { client_id: Some(client_id.to_owned()), ..origin.clone() };
        let detail = serde_json::json!({ "client": app.client_name, "grants": app.grant_ids.len() });
        self.store().record_audit_event(&NewAuditEvent::new(AuditKind::AppAccessRemoved, Some(user), &origin, detail, now)).await?;
        Ok(true)
    }
}
