//! [`SignInStore`] for both backends: pending sign-ins (what each waits for
//! is one JSON column, `state`, read and written whole), their answer count,
//! and the session a step-up extends.

use portcullis_core::StoreError;
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::session::AuthRecord;
use portcullis_core::sign_in::{Demand, PendingSignIn, Purpose, SignInStore, Waiting};
use portcullis_core::user::{User, UserId};

use crate::accounts::{UserRow, parse_user_id};
use crate::factors::json_err;
use crate::{Store, db_error, on_pool};

/// What a pending sign-in waits for, as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredState {
    demand: Demand,
    waiting: Waiting,
    /// Sign-ins in progress stored before it existed began under epoch 0.
    #[serde(default)]
    security_epoch: i64,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    user_id: String,
    auth_record: String,
    session_digest: Option<String>,
    state: String,
    client_id: Option<String>,
    assessment: String,
    answers: i64,
    pending_created_at: i64,
    pending_expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct PendingWithUserRow {
    #[sqlx(flatten)]
    pending: PendingRow,
    #[sqlx(flatten)]
    user: UserRow,
}

impl TryFrom<PendingRow> for PendingSignIn {
    type Error = StoreError;
    fn try_from(r: PendingRow) -> Result<Self, StoreError> {
        let StoredState { demand, waiting, security_epoch } = serde_json::from_str(&r.state).map_err(json_err)?;
        Ok(PendingSignIn {
            user_id: parse_user_id(&r.user_id)?,
            auth: serde_json::from_str::<AuthRecord>(&r.auth_record).map_err(json_err)?,
            purpose: match r.session_digest {
                Some(session_digest) => Purpose::StepUp { session_digest },
                None => Purpose::NewSession,
            },
            demand,
            waiting,
            client_id: r.client_id,
            assessment: serde_json::from_str(&r.assessment).map_err(json_err)?,
            answers: u32::try_from(r.answers).unwrap_or(u32::MAX),
            security_epoch,
            created_at: r.pending_created_at,
            expires_at: r.pending_expires_at,
        })
    }
}

/// A pending sign-in with its user; the user is found by its key, as in
/// [`SESSION_WITH_USER`](crate::accounts::SESSION_WITH_USER) and for the same reason.
pub(crate) const PENDING_WITH_USER: &str = "SELECT p.user_id, p.auth_record, p.session_digest, p.state, p.client_id, p.assessment, \
     p.answers, p.created_at AS pending_created_at, p.expires_at AS pending_expires_at, u.id, u.email, u.name, u.password_hash, \
     u.email_verified_at, u.is_admin, u.is_auditor, u.mfa_required, u.disabled_at, u.password_reset_at, u.password_breached_at, \
     u.language, u.enrollment_prompt_snoozed_until, u.security_epoch, u.created_at \
     FROM pending_sign_ins p JOIN users u ON u.id = p.user_id \
     WHERE p.digest = $1 AND p.expires_at > $2 AND u.id = (SELECT user_id FROM pending_sign_ins WHERE digest = $1)";

impl SignInStore for Store {
    async fn save_pending_sign_in(&self, digest: &str, s: &PendingSignIn) -> StoreResult<()> {
        let auth = serde_json::to_string(&s.auth).map_err(json_err)?;
        let state =
            serde_json::to_string(&StoredState { demand: s.demand.clone(), waiting: s.waiting.clone(), security_epoch: s.security_epoch })
                .map_err(json_err)?;
        let session_digest = match &s.purpose {
            Purpose::StepUp { session_digest } => Some(session_digest.as_str()),
            Purpose::NewSession => None,
        };
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO pending_sign_ins (digest, user_id, auth_record, session_digest, created_at, expires_at, assessment, state, \
                 client_id, answers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(digest)
            .bind(s.user_id.to_string())
            .bind(&auth)
            .bind(session_digest)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(s.assessment.to_string())
            .bind(&state)
            .bind(&s.client_id)
            .bind(i64::from(s.answers))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error)
        })
    }

    async fn pending_sign_in(&self, digest: &str, now: UnixTime) -> StoreResult<Option<(PendingSignIn, User)>> {
        let row: Option<PendingWithUserRow> =
            on_pool!(self, |p| { sqlx::query_as(PENDING_WITH_USER).bind(digest).bind(now).fetch_optional(p).await.map_err(db_error) })?;
        row.map(|PendingWithUserRow { pending, user }| Ok((PendingSignIn::try_from(pending)?, User::try_from(user)?))).transpose()
    }

    async fn take_pending_answer(&self, digest: &str, max: u32, now: UnixTime) -> StoreResult<Option<u32>> {
        // The row count decides: of many concurrent answers, at most `max` find `answers < max`.
        let taken: Option<i64> = on_pool!(self, |p| sqlx::query_scalar(
            "UPDATE pending_sign_ins SET answers = answers + 1 WHERE digest = $1 AND answers < $2 AND expires_at > $3 RETURNING answers"
        )
        .bind(digest)
        .bind(i64::from(max))
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(db_error))?;
        Ok(taken.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn continue_pending_sign_in(&self, digest: &str, before: &PendingSignIn, next: &PendingSignIn) -> StoreResult<bool> {
        let (before_auth, auth) =
            (serde_json::to_string(&before.auth).map_err(json_err)?, serde_json::to_string(&next.auth).map_err(json_err)?);
        let state = serde_json::to_string(&StoredState {
            demand: next.demand.clone(),
            waiting: next.waiting.clone(),
            security_epoch: next.security_epoch,
        })
        .map_err(json_err)?;
        // Compare and swap on the record of steps: of two requests that read
        // the same one, one moves it on; `answers` is left alone.
        on_pool!(self, |p| sqlx::query("UPDATE pending_sign_ins SET auth_record = $3, state = $4 WHERE digest = $1 AND auth_record = $2")
            .bind(digest)
            .bind(&before_auth)
            .bind(&auth)
            .bind(&state)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn take_pending_sign_in(&self, digest: &str) -> StoreResult<bool> {
        self.delete_one("DELETE FROM pending_sign_ins WHERE digest = $1", digest).await
    }

    async fn delete_pending_sign_ins(&self, user: UserId) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("DELETE FROM pending_sign_ins WHERE user_id = $1")
            .bind(user.to_string())
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn upgrade_session(&self, old_digest: &str, new_digest: &str, user: UserId, auth: &AuthRecord) -> StoreResult<bool> {
        let json = serde_json::to_string(auth).map_err(json_err)?;
        on_pool!(self, |p| sqlx::query("UPDATE sessions SET digest = $2, auth_record = $3 WHERE digest = $1 AND user_id = $4")
            .bind(old_digest)
            .bind(new_digest)
            .bind(&json)
            .bind(user.to_string())
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }
}
