//! [`OidcStore`] for both backends. Codes and refresh tokens are spent by one
//! conditional `UPDATE … RETURNING`; when it claims nothing, a second look tells
//! a replay (the credential exists but was used or revoked) from a forgery.

use portcullis_core::StoreError;
use portcullis_core::app_access::{ClientConsent, GrantArtifact, GrantRow};
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::oauth::{
    AccessTokenIds, AuthorizationCode, Client, ClientPolicy, Grant, MfaPolicy, OidcStore, OneTimeUse, RefreshToken, RevokedAccess,
    SigningAlg, StoredSigningKey,
};

use portcullis_core::user::{User, UserId};

use crate::accounts::{UserRow, select_users};
use crate::{Store, begin_transaction, db_error, on_pool};

/// Stores a revocation (a [`RevokedAccess`] kept until a time), keeping the
/// later expiry if it exists; the same SQL on both backends.
macro_rules! insert_revocation {
    ($what:expr, $until:expr) => {
        sqlx::query(
            "INSERT INTO access_token_revocations (revoked, expires_at) VALUES ($1, $2) \
             ON CONFLICT (revoked) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE excluded.expires_at > access_token_revocations.expires_at",
        )
        .bind($what.key())
        .bind($until)
    };
}

/// A comma-separated list as stored ('' is empty).
fn split_list(s: &str) -> Vec<String> {
    s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {e}"))
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    name: String,
    secret_digest: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    mfa: String,
    signing_alg: String,
    allow_remember: bool,
    allowed_factors: String,
    remember_browser_days: Option<i64>,
    min_acr: Option<String>,
    service_scopes: String,
    created_at: i64,
    self_registered: bool,
}

/// A pending authorization request's client, read with the request.
#[derive(sqlx::FromRow)]
struct PendingClientRow {
    #[sqlx(flatten)]
    client: ClientRow,
    pending_request: String,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Client {
            redirect_uris: serde_json::from_str(&r.redirect_uris).map_err(|e| corrupt("redirect_uris", e))?,
            post_logout_redirect_uris: serde_json::from_str(&r.post_logout_redirect_uris)
                .map_err(|e| corrupt("post_logout_redirect_uris", e))?,
            policy: ClientPolicy {
                mfa: MfaPolicy::parse(&r.mfa).ok_or_else(|| corrupt("mfa policy", &r.mfa))?,
                allowed_factors: split_list(&r.allowed_factors),
                allow_remember: r.allow_remember,
                remember_browser_days: r.remember_browser_days,
                min_acr: r.min_acr,
            },
            signing_alg: SigningAlg::parse(&r.signing_alg).ok_or_else(|| corrupt("signing_alg", &r.signing_alg))?,
            id: r.id,
            name: r.name,
            secret_digest: r.secret_digest,
            service_scopes: r.service_scopes.split_whitespace().map(str::to_owned).collect(),
            self_registered: r.self_registered,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private_key: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    rotated_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    digest: String,
    grant_data: String,
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    created_at: i64,
    expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    digest: String,
    grant_data: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> Result<Self, StoreError> {
        Ok(RefreshToken { grant: grant(&r.grant_data)?, digest: r.digest, created_at: r.created_at, expires_at: r.expires_at })
    }
}

/// A code or refresh token of a user's grant, as `user_grant_rows` reads it.
#[derive(sqlx::FromRow)]
struct GrantRowData {
    refresh: bool,
    grant_data: String,
    client_name: String,
    created_at: i64,
    spent_at: Option<i64>,
    expires_at: i64,
}

fn grant(json: &str) -> Result<Grant, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt("grant", e))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

macro_rules! select_clients {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, secret_digest, redirect_uris, post_logout_redirect_uris, mfa, signing_alg, allow_remember, allowed_factors, \
             remember_browser_days, min_acr, service_scopes, created_at, \
             EXISTS (SELECT 1 FROM client_registrations g WHERE g.client_id = clients.id) AS self_registered FROM clients ",
            $tail
        )
    };
}

/// The INSERT of one client (`Err` if its lists cannot be stored), on any executor.
macro_rules! insert_client {
    ($c:expr) => {{
        let c: &Client = $c;
        match (to_json(&c.redirect_uris), to_json(&c.post_logout_redirect_uris)) {
            (Ok(redirects), Ok(logouts)) => Ok(sqlx::query(
                "INSERT INTO clients (id, name, secret_digest, redirect_uris, post_logout_redirect_uris, mfa, signing_alg, allow_remember, \
                 allowed_factors, remember_browser_days, min_acr, service_scopes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(c.id.clone())
            .bind(c.name.clone())
            .bind(c.secret_digest.clone())
            .bind(redirects)
            .bind(logouts)
            .bind(c.policy.mfa.as_str())
            .bind(c.signing_alg.as_str())
            .bind(c.policy.allow_remember)
            .bind(c.policy.allowed_factors.join(","))
            .bind(c.policy.remember_browser_days)
            .bind(c.policy.min_acr.as_deref())
            .bind(c.service_scopes.join(" "))
            .bind(c.created_at)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }};
}

impl OidcStore for Store {
    async fn create_client(&self, c: &Client) -> StoreResult<()> {
        on_pool!(self, |p| insert_client!(c)?.execute(p).await.map(|_| ()).map_err(db_error))
    }

    async fn create_registered_client(&self, c: &Client, token_digest: &str) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            insert_client!(c)?.execute(&mut *tx).await.map_err(db_error)?;
            sqlx::query("INSERT INTO client_registrations (client_id, token_digest, created_at) VALUES ($1, $2, $3)")
                .bind(&c.id)
                .bind(token_digest)
                .bind(c.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn registration_token_digest(&self, client_id: &str) -> StoreResult<Option<String>> {
        on_pool!(self, |p| sqlx::query_scalar("SELECT token_digest FROM client_registrations WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(p)
            .await
            .map_err(db_error))
    }

    async fn rename_client(&self, id: &str, name: &str) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("UPDATE clients SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn consented_scope(&self, user: UserId, client_id: &str) -> StoreResult<Option<String>> {
        on_pool!(self, |p| sqlx::query_scalar("SELECT scope FROM client_consents WHERE user_id = $1 AND client_id = $2")
            .bind(user.to_string())
            .bind(client_id)
            .fetch_optional(p)
            .await
            .map_err(db_error))
    }

    async fn user_consents(&self, user: UserId) -> StoreResult<Vec<ClientConsent>> {
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT k.client_id, c.name, k.scope, k.granted_at FROM client_consents k JOIN clients c ON c.id = k.client_id \
             WHERE k.user_id = $1"
        )
        .bind(user.to_string())
        .fetch_all(p)
        .await
        .map_err(db_error))?;
        Ok(rows
            .into_iter()
            .map(|(client_id, client_name, scope, granted_at)| ClientConsent { client_id, client_name, scope, granted_at })
            .collect())
    }

    async fn forget_client_consents(&self, client_id: &str) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("DELETE FROM client_consents WHERE client_id = $1")
            .bind(client_id)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn save_consent(&self, user: UserId, client_id: &str, scope: &str, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO client_consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at"
        )
        .bind(user.to_string())
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error))
    }

    async fn save_initial_access_token(&self, digest: &str, now: UnixTime, expires_at: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("INSERT INTO registration_tokens (digest, created_at, expires_at) VALUES ($1, $2, $3)")
            .bind(digest)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn consume_initial_access_token(&self, digest: &str, now: UnixTime) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("DELETE FROM registration_tokens WHERE digest = $1 AND expires_at > $2")
            .bind(digest)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn client(&self, id: &str) -> StoreResult<Option<Client>> {
        let row: Option<ClientRow> =
            on_pool!(self, |p| sqlx::query_as(select_clients!("WHERE id = $1")).bind(id).fetch_optional(p).await.map_err(db_error))?;
        row.map(Client::try_from).transpose()
    }

    async fn update_client_policy(&self, id: &str, p: &ClientPolicy) -> StoreResult<bool> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE clients SET mfa = $2, allow_remember = $3, allowed_factors = $4, remember_browser_days = $5, min_acr = $6 WHERE id = $1"
        )
        .bind(id)
        .bind(p.mfa.as_str())
        .bind(p.allow_remember)
        .bind(p.allowed_factors.join(","))
        .bind(p.remember_browser_days)
        .bind(p.min_acr.as_deref())
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(db_error))
    }

    async fn set_client_service_scopes(&self, id: &str, scopes: &[String]) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("UPDATE clients SET service_scopes = $2 WHERE id = $1")
            .bind(id)
            .bind(scopes.join(" "))
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn set_client_redirect_uris(
        &self,
        id: &str,
        redirect_uris: &[String],
        post_logout_redirect_uris: &[String],
    ) -> StoreResult<bool> {
        let (redirects, logouts) = (to_json(&redirect_uris)?, to_json(&post_logout_redirect_uris)?);
        on_pool!(self, |p| sqlx::query("UPDATE clients SET redirect_uris = $2, post_logout_redirect_uris = $3 WHERE id = $1")
            .bind(id)
            .bind(&redirects)
            .bind(&logouts)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn replace_client_secret(&self, id: &str, secret_digest: &str) -> StoreResult<bool> {
        // A public client has no secret to replace.
        on_pool!(self, |p| sqlx::query("UPDATE clients SET secret_digest = $2 WHERE id = $1 AND secret_digest IS NOT NULL")
            .bind(id)
            .bind(secret_digest)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error))
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let rows: Vec<ClientRow> =
            on_pool!(self, |p| sqlx::query_as(select_clients!("ORDER BY created_at, id")).fetch_all(p).await.map_err(db_error))?;
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn delete_client(&self, id: &str, access_tokens_until: UnixTime) -> StoreResult<bool> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            // Codes and refresh tokens go with the client (ON DELETE CASCADE).
            let deleted =
                sqlx::query("DELETE FROM clients WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(db_error)?.rows_affected() > 0;
            if deleted {
                insert_revocation!(RevokedAccess::Client(id), access_tokens_until).execute(&mut *tx).await.map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(deleted)
        })
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let rows: Vec<KeyRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT kid, alg, sealed_private_key, public_jwk, created_at, rotated_at FROM signing_keys ORDER BY created_at DESC, kid",
            )
            .fetch_all(p)
            .await
            .map_err(db_error)
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredSigningKey {
                    alg: SigningAlg::parse(&r.alg).ok_or_else(|| corrupt("key algorithm", &r.alg))?,
                    kid: r.kid,
                    sealed_private_key: r.sealed_private_key,
                    public_jwk: r.public_jwk,
                    created_at: r.created_at,
                    rotated_at: r.rotated_at,
                })
            })
            .collect()
    }

    async fn rotate_in_signing_key(&self, k: &StoredSigningKey, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            sqlx::query("UPDATE signing_keys SET rotated_at = $1 WHERE alg = $2 AND rotated_at IS NULL")
                .bind(now)
                .bind(k.alg.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            sqlx::query("INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, NULL)")
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.sealed_private_key)
                .bind(&k.public_jwk)
                .bind(k.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn retire_signing_keys(&self, cutoff: UnixTime) -> StoreResult<u64> {
        on_pool!(self, |p| sqlx::query("DELETE FROM signing_keys WHERE rotated_at IS NOT NULL AND rotated_at < $1")
            .bind(cutoff)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_error))
    }

    async fn save_pending_request(
        &self,
        (id, client_id, requester): (&str, &str, &str),
        request_json: &str,
        (now, expires_at): (UnixTime, UnixTime),
        (per_requester, cap): (u64, Option<u64>),
    ) -> StoreResult<()> {
        let room = |n: u64| i64::try_from(n).unwrap_or(i64::MAX).saturating_sub(1).max(0);
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            // The requester's newest few stay (and none of its lapsed ones).
            sqlx::query(
                "DELETE FROM pending_requests WHERE requester = $1 AND id NOT IN \
                 (SELECT id FROM pending_requests WHERE requester = $1 AND expires_at > $2 ORDER BY expires_at DESC, id DESC LIMIT $3)",
            )
            .bind(requester)
            .bind(now)
            .bind(room(per_requester))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            // A full table gives up its oldest requests, down to room for this one
            // (all of the excess: concurrent inserts cannot ratchet it past the cap).
            if let Some(cap) = cap {
                sqlx::query(
                    "DELETE FROM pending_requests WHERE id IN (SELECT id FROM pending_requests WHERE expires_at > $1 ORDER BY expires_at, id \
                     LIMIT (SELECT CASE WHEN COUNT(*) > $2 THEN COUNT(*) - $2 ELSE 0 END FROM pending_requests WHERE expires_at > $1))",
                )
                .bind(now)
                .bind(room(cap))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            sqlx::query("INSERT INTO pending_requests (id, client_id, request, expires_at, requester) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(client_id)
                .bind(request_json)
                .bind(expires_at)
                .bind(requester)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn pending_request(&self, id: &str, now: UnixTime) -> StoreResult<Option<String>> {
        on_pool!(self, |p| sqlx::query_scalar("SELECT request FROM pending_requests WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(p)
            .await
            .map_err(db_error))
    }

    async fn pending_request_client(&self, id: &str, now: UnixTime) -> StoreResult<Option<(Client, String)>> {
        let row: Option<PendingClientRow> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT c.id, c.name, c.secret_digest, c.redirect_uris, c.post_logout_redirect_uris, c.mfa, c.signing_alg, c.allow_remember, \
             c.allowed_factors, c.remember_browser_days, c.min_acr, c.service_scopes, c.created_at, \
             EXISTS (SELECT 1 FROM client_registrations g WHERE g.client_id = c.id) AS self_registered, r.request AS pending_request \
             FROM pending_requests r JOIN clients c ON c.id = r.client_id WHERE r.id = $1 AND r.expires_at > $2"
        )
        .bind(id)
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(db_error)
        })?;
        row.map(|r| Ok((Client::try_from(r.client)?, r.pending_request))).transpose()
    }

    async fn take_pending_request(&self, id: &str) -> StoreResult<bool> {
        self.delete_one("DELETE FROM pending_requests WHERE id = $1", id).await
    }

    async fn insert_authorization_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        let data = to_json(&c.grant)?;
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO authorization_codes (digest, grant_id, client_id, user_id, grant_data, redirect_uri, nonce, code_challenge, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(&c.digest)
        .bind(&c.grant.grant_id)
        .bind(&c.grant.client_id)
        .bind(c.grant.user_id.to_string())
        .bind(&data)
        .bind(&c.redirect_uri)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error)
        })
    }

    async fn consume_authorization_code(
        &self,
        digest: &str,
        client_id: &str,
        (refresh, refresh_expires_at): (&str, UnixTime),
        now: UnixTime,
    ) -> StoreResult<OneTimeUse<AuthorizationCode>> {
        let code: Option<AuthorizationCode> = on_pool!(self, |p| {
            begin_transaction!(p, tx);
            let row: Option<CodeRow> = sqlx::query_as(
                "UPDATE authorization_codes SET consumed_at = $2 WHERE digest = $1 AND client_id = $3 AND consumed_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM access_token_revocations r WHERE r.revoked = 'grant:' || authorization_codes.grant_id) \
                 RETURNING digest, grant_data, redirect_uri, nonce, code_challenge, created_at, expires_at",
            )
            .bind(digest)
            .bind(now)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let code = row.map(|r| -> StoreResult<AuthorizationCode> {
                Ok(AuthorizationCode {
                    grant: grant(&r.grant_data)?,
                    digest: r.digest,
                    redirect_uri: r.redirect_uri,
                    nonce: r.nonce,
                    code_challenge: r.code_challenge,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                })
            });
            let code = code.transpose()?;
            if code.as_ref().is_some_and(|c| c.grant.issues_refresh_tokens()) {
                sqlx::query(
                    "INSERT INTO refresh_tokens (digest, grant_id, client_id, user_id, grant_data, created_at, expires_at) \
                     SELECT $1, grant_id, client_id, user_id, grant_data, $2, $3 FROM authorization_codes WHERE digest = $4",
                )
                .bind(refresh)
                .bind(now)
                .bind(refresh_expires_at)
                .bind(digest)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(code)
        })?;
        if let Some(code) = code {
            return Ok(OneTimeUse::Fresh(code));
        }
        let used: Option<(String, String)> =
            on_pool!(self, |p| sqlx::query_as("SELECT grant_id, client_id FROM authorization_codes WHERE digest = $1")
                .bind(digest)
                .fetch_optional(p)
                .await
                .map_err(db_error))?;
        Ok(not_spent(used, client_id))
    }

    async fn rotate_refresh_token(
        &self,
        digest: &str,
        client_id: &str,
        (next, next_expires_at): (&str, UnixTime),
        now: UnixTime,
    ) -> StoreResult<OneTimeUse<RefreshToken>> {
        let row: Option<RefreshRow> = on_pool!(self, |p| {
            begin_transaction!(p, tx);
            let row: Option<RefreshRow> = sqlx::query_as(
                "UPDATE refresh_tokens SET consumed_at = $2 WHERE digest = $1 AND client_id = $3 AND consumed_at IS NULL AND revoked_at IS NULL \
                 AND expires_at > $2 AND NOT EXISTS (SELECT 1 FROM access_token_revocations r WHERE r.revoked = 'grant:' || refresh_tokens.grant_id) \
                 RETURNING digest, grant_data, created_at, expires_at",
            )
            .bind(digest)
            .bind(now)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if row.is_some() {
                // The successor carries the same grant, scope included (RFC 6749 §6).
                sqlx::query(
                    "INSERT INTO refresh_tokens (digest, grant_id, client_id, user_id, grant_data, created_at, expires_at) \
                     SELECT $1, grant_id, client_id, user_id, grant_data, $2, $3 FROM refresh_tokens WHERE digest = $4",
                )
                .bind(next)
                .bind(now)
                .bind(next_expires_at)
                .bind(digest)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(row)
        })?;
        if let Some(r) = row {
            return Ok(OneTimeUse::Fresh(RefreshToken::try_from(r)?));
        }
        // Expired-but-unused tokens are simply invalid; used or revoked ones are replays.
        let used: Option<(String, String)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT grant_id, client_id FROM refresh_tokens WHERE digest = $1 \
                 AND (consumed_at IS NOT NULL OR revoked_at IS NOT NULL OR client_id <> $2)",
            )
            .bind(digest)
            .bind(client_id)
            .fetch_optional(p)
            .await
            .map_err(db_error)
        })?;
        Ok(not_spent(used, client_id))
    }

    async fn active_refresh_token(&self, digest: &str, now: UnixTime) -> StoreResult<Option<RefreshToken>> {
        let row: Option<RefreshRow> = on_pool!(self, |p| sqlx::query_as(
            "SELECT digest, grant_data, created_at, expires_at FROM refresh_tokens \
             WHERE digest = $1 AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
             AND NOT EXISTS (SELECT 1 FROM access_token_revocations r WHERE r.revoked = 'grant:' || refresh_tokens.grant_id)"
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(db_error))?;
        row.map(RefreshToken::try_from).transpose()
    }

    async fn access_token_revoked(&self, token: &AccessTokenIds<'_>) -> StoreResult<bool> {
        let [jti, grant, client] = token.revocation_keys();
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM access_token_revocations WHERE revoked IN ($1, $2, $3)")
            .bind(&jti)
            .bind(&grant)
            .bind(&client)
            .fetch_one(p)
            .await
            .map_err(db_error))?;
        Ok(n > 0)
    }

    async fn live_access_token_user(&self, token: &AccessTokenIds<'_>, user: UserId) -> StoreResult<Option<User>> {
        let [jti, grant, client] = token.revocation_keys();
        let row: Option<UserRow> = on_pool!(self, |p| {
            sqlx::query_as(select_users!(
            "WHERE id = $4 AND disabled_at IS NULL AND NOT EXISTS (SELECT 1 FROM access_token_revocations WHERE revoked IN ($1, $2, $3))"
        ))
        .bind(&jti)
        .bind(&grant)
        .bind(&client)
        .bind(user.to_string())
        .fetch_optional(p)
        .await
        .map_err(db_error)
        })?;
        row.map(User::try_from).transpose()
    }

    async fn revoke_access_tokens(&self, what: RevokedAccess<'_>, until: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| insert_revocation!(what, until).execute(p).await.map(|_| ()).map_err(db_error))
    }

    async fn revoke_user_grants(
        &self,
        user: UserId,
        client: Option<&str>,
        now: UnixTime,
        access_tokens_until: UnixTime,
    ) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            // `WHERE true`: SQLite needs it to tell the upsert from a join.
            // `COALESCE($3, client_id)`: every client when none is named.
            sqlx::query(
                "INSERT INTO access_token_revocations (revoked, expires_at) \
                 SELECT 'grant:' || grant_id, $2 FROM (SELECT grant_id FROM refresh_tokens WHERE user_id = $1 AND client_id = COALESCE($3, client_id) \
                 UNION SELECT grant_id FROM authorization_codes WHERE user_id = $1 AND client_id = COALESCE($3, client_id)) AS g WHERE true \
                 ON CONFLICT (revoked) DO UPDATE SET expires_at = excluded.expires_at \
                 WHERE excluded.expires_at > access_token_revocations.expires_at",
            )
            .bind(user.to_string())
            .bind(access_tokens_until)
            .bind(client)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            for sql in [
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND client_id = COALESCE($3, client_id) AND revoked_at IS NULL",
                "UPDATE authorization_codes SET consumed_at = $2 WHERE user_id = $1 AND client_id = COALESCE($3, client_id) AND consumed_at IS NULL",
            ] {
                sqlx::query(sql).bind(user.to_string()).bind(now).bind(client).execute(&mut *tx).await.map_err(db_error)?;
            }
            // What the user allowed self-registered clients goes too: an ending
            // (a reset after an intrusion, say) or a removal asks again.
            sqlx::query("DELETE FROM client_consents WHERE user_id = $1 AND client_id = COALESCE($2, client_id)")
                .bind(user.to_string())
                .bind(client)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn user_grant_rows(&self, user: UserId) -> StoreResult<Vec<GrantRow>> {
        let rows: Vec<GrantRowData> = on_pool!(self, |p| sqlx::query_as(
            "SELECT g.refresh, g.grant_data, c.name AS client_name, g.created_at, g.spent_at, g.expires_at FROM ( \
               SELECT FALSE AS refresh, grant_id, client_id, grant_data, created_at, consumed_at AS spent_at, expires_at \
                 FROM authorization_codes WHERE user_id = $1 \
               UNION ALL SELECT TRUE, grant_id, client_id, grant_data, created_at, consumed_at, expires_at \
                 FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL) AS g \
             JOIN clients c ON c.id = g.client_id \
             WHERE NOT EXISTS (SELECT 1 FROM access_token_revocations r WHERE r.revoked = 'grant:' || g.grant_id) \
             ORDER BY g.created_at"
        )
        .bind(user.to_string())
        .fetch_all(p)
        .await
        .map_err(db_error))?;
        rows.into_iter()
            .map(|r| {
                Ok(GrantRow {
                    artifact: if r.refresh { GrantArtifact::RefreshToken } else { GrantArtifact::Code },
                    grant: grant(&r.grant_data)?,
                    client_name: r.client_name,
                    created_at: r.created_at,
                    spent_at: r.spent_at,
                    expires_at: r.expires_at,
                })
            })
            .collect()
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime, access_tokens_until: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            for sql in [
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
                "UPDATE authorization_codes SET consumed_at = $2 WHERE grant_id = $1 AND consumed_at IS NULL",
            ] {
                sqlx::query(sql).bind(grant_id).bind(now).execute(&mut *tx).await.map_err(db_error)?;
            }
            insert_revocation!(RevokedAccess::Grant(grant_id), access_tokens_until).execute(&mut *tx).await.map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }
}

/// Why a code or refresh token was not spent, from its row (grant, owner)
/// if there is one: another client's is left alone, the owner's is a replay.
fn not_spent<T>(row: Option<(String, String)>, client_id: &str) -> OneTimeUse<T> {
    match row {
        None => OneTimeUse::Unknown,
        Some((_, owner)) if owner != client_id => OneTimeUse::OtherClient,
        Some((grant_id, _)) => OneTimeUse::Replayed { grant_id },
    }
}
