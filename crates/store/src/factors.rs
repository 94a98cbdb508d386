//! [`MfaStore`] for both backends: credentials, recovery codes, sent codes, WebAuthn ceremonies, push requests, remembered browsers.

use portcullis_core::StoreError;
use portcullis_core::clock::UnixTime;
use portcullis_core::factors::otp::{CodeAnswer, CodeCheck, CodePurpose, OneTimeCode, OtpChannel};
use portcullis_core::factors::push::{PushRequest, PushStatus};
use portcullis_core::factors::webauthn::Ceremony;
use portcullis_core::factors::{Credential, FactorKind, MfaStore, RememberedBrowser};
use portcullis_core::io::StoreResult;
use portcullis_core::rate_limit::SlidingQuota;
use portcullis_core::user::UserId;

use crate::accounts::parse_user_id;
use crate::{Backend, Store, begin_transaction, db_error, on_pool};

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    user_id: String,
    kind: String,
    name: String,
    sealed_secret: Vec<u8>,
    confirmed_at: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    public_key_id: Option<String>,
    sign_count: i64,
    flagged_at: Option<i64>,
    authenticator: String,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = StoreError;
    fn try_from(r: CredentialRow) -> Result<Self, StoreError> {
        Ok(Credential {
            user_id: parse_user_id(&r.user_id)?,
            kind: FactorKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Backend(format!("credential {} has unknown kind {:?}", r.id, r.kind)))?,
            id: r.id,
            name: r.name,
            sealed_secret: r.sealed_secret,
            confirmed_at: r.confirmed_at,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            public_key_id: r.public_key_id,
            sign_count: u32::try_from(r.sign_count).unwrap_or(u32::MAX),
            flagged_at: r.flagged_at,
            authenticator: r.authenticator,
        })
    }
}

macro_rules! select_credentials {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, kind, name, sealed_secret, confirmed_at, created_at, last_used_at, public_key_id, sign_count, flagged_at, authenticator FROM credentials ",
            $tail
        )
    };
}

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The INSERT of one credential, on any executor (a pool, or a transaction for imports).
macro_rules! credential_columns {
    () => {
        "INSERT INTO credentials (id, user_id, kind, name, sealed_secret, confirmed_at, created_at, last_used_at, public_key_id, \
         sign_count, flagged_at, authenticator) "
    };
}
macro_rules! insert_credential {
    ($executor:expr, $c:expr) => {
        $crate::factors::bind_credential!(
            sqlx::query(concat!($crate::factors::credential_columns!(), "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")),
            $c
        )
        .execute($executor)
    };
}
/// The credential's twelve columns bound as `$1`–`$12`.
macro_rules! bind_credential {
    ($query:expr, $c:expr) => {
        $query
            .bind(&$c.id)
            .bind($c.user_id.to_string())
            .bind($c.kind.as_str())
            .bind(&$c.name)
            .bind(&$c.sealed_secret)
            .bind($c.confirmed_at)
            .bind($c.created_at)
            .bind($c.last_used_at)
            .bind(&$c.public_key_id)
            .bind(i64::from($c.sign_count))
            .bind($c.flagged_at)
            .bind(&$c.authenticator)
    };
}
pub(crate) use {bind_credential, credential_columns, insert_credential};

/// A confirmed credential, only while the account's epoch is `$13`. On
/// PostgreSQL the account's row is share-locked, so an ending that moves the
/// epoch waits for this insert to commit (and then removes what it added).
const CONFIRMED_CREDENTIAL_SQLITE: &str = concat!(
    credential_columns!(),
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM users WHERE id = $2 AND security_epoch = $13"
);
const CONFIRMED_CREDENTIAL_POSTGRES: &str = concat!(
    credential_columns!(),
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM users WHERE id = $2 AND security_epoch = $13 FOR SHARE"
);

/// Pairs a phone: the unconfirmed setup `$1` still holding pairing key id
/// `$2`, begun after `$7`, while its account's epoch is `$8` (share-locked on
/// PostgreSQL, as for [`CONFIRMED_CREDENTIAL_POSTGRES`]).
macro_rules! pair_push_device {
    ($lock:literal) => {
        concat!(
            "UPDATE credentials SET sealed_secret = $3, public_key_id = $4, name = $5, confirmed_at = $6 \
             WHERE id = $1 AND public_key_id = $2 AND kind = 'push_device' AND confirmed_at IS NULL AND created_at > $7 \
             AND EXISTS (SELECT 1 FROM users WHERE users.id = credentials.user_id AND users.security_epoch = $8",
            $lock,
            ")"
        )
    };
}
const PAIR_PUSH_DEVICE_SQLITE: &str = pair_push_device!("");
const PAIR_PUSH_DEVICE_POSTGRES: &str = pair_push_device!(" FOR SHARE");

#[derive(sqlx::FromRow)]
struct PushRequestRow {
    id: String,
    user_id: String,
    sign_in: String,
    number: i32,
    choices: String,
    context: String,
    status: String,
    device_id: Option<String>,
    created_at: i64,
    expires_at: i64,
}

macro_rules! select_push_requests {
    () => {
        "SELECT id, user_id, sign_in, number, choices, context, status, device_id, created_at, expires_at FROM push_requests "
    };
}

impl TryFrom<PushRequestRow> for PushRequest {
    type Error = StoreError;
    fn try_from(r: PushRequestRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("push request {} has a malformed {what}", r.id));
        let choices: Vec<u8> = r.choices.split(',').map(str::parse).collect::<Result<_, _>>().map_err(|_| bad("choices"))?;
        Ok(PushRequest {
            user_id: parse_user_id(&r.user_id)?,
            sign_in: r.sign_in.clone(),
            number: u8::try_from(r.number).map_err(|_| bad("number"))?,
            choices: <[u8; 3]>::try_from(choices).map_err(|_| bad("choices"))?,
            context: serde_json::from_str(&r.context).map_err(json_err)?,
            status: PushStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
            device: r.device_id.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            id: r.id,
        })
    }
}

/// The ceremonies of one purpose a user may have open at once.
const LIVE_CEREMONIES_PER_PURPOSE: i64 = 3;

impl MfaStore for Store {
    async fn insert_credential(&self, c: &Credential) -> StoreResult<()> {
        on_pool!(self, |p| insert_credential!(p, c).await.map(|_| ()).map_err(db_error))
    }

    async fn insert_confirmed_credential(&self, c: &Credential, security_epoch: i64) -> StoreResult<bool> {
        let inserted = match &self.backend {
            Backend::Sqlite(p) => bind_credential!(sqlx::query(CONFIRMED_CREDENTIAL_SQLITE), c)
                .bind(security_epoch)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Backend::Postgres(p) => bind_credential!(sqlx::query(CONFIRMED_CREDENTIAL_POSTGRES), c)
                .bind(security_epoch)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        // A key registered twice (to this or another account) is a conflict, as for `insert_credential`.
        Ok(inserted.map_err(db_error)? == 1)
    }

    async fn credential(&self, user: UserId, id: &str) -> StoreResult<Option<Credential>> {
        let row: Option<CredentialRow> = on_pool!(self, |p| sqlx::query_as(select_credentials!("WHERE id = $1 AND user_id = $2"))
            .bind(id)
            .bind(user.to_string())
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        row.map(Credential::try_from).transpose()
    }

    async fn credentials(&self, user: UserId) -> StoreResult<Vec<Credential>> {
        let rows: Vec<CredentialRow> = on_pool!(self, |p| sqlx::query_as(select_credentials!(
            "WHERE user_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at, id"
        ))
        .bind(user.to_string())
        .fetch_all(p)
        .await
        .map_err(db_error))?;
        rows.into_iter().map(Credential::try_from).collect()
    }

    async fn confirm_credential(&self, user: UserId, id: &str, step: i64, (now, started_after): (UnixTime, UnixTime)) -> StoreResult<bool> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE credentials SET confirmed_at = $3, last_step = $4, last_used_at = $3 \
                 WHERE id = $1 AND user_id = $2 AND confirmed_at IS NULL AND created_at > $5",
            )
            .bind(id)
            .bind(user.to_string())
            .bind(now)
            .bind(step)
            .bind(started_after)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error)
        })
    }

    async fn consume_totp_step(&self, id: &str, step: i64, now: UnixTime) -> StoreResult<bool> {
        // The row count decides: of two requests with the same code, one moves last_step and the other finds it moved.
        on_pool!(self, |p| sqlx::query(
            "UPDATE credentials SET last_step = $2, last_used_at = $3 WHERE id = $1 AND confirmed_at IS NOT NULL AND last_step < $2"
        )
        .bind(id)
        .bind(step)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db_error))
    }

    async fn rename_credential(&self, user: UserId, id: &str, name: &str) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("UPDATE credentials SET name = $3 WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user.to_string())
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn delete_credential(&self, user: UserId, id: &str) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("DELETE FROM credentials WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user.to_string())
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn replace_recovery_codes(&self, user: UserId, tags: &[String], now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            for tag in tags {
                sqlx::query("INSERT INTO recovery_codes (user_id, tag, created_at) VALUES ($1, $2, $3)")
                    .bind(user.to_string())
                    .bind(tag)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)
        })
    }

    async fn consume_recovery_code(&self, user: UserId, tag: &str, now: UnixTime) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND tag = $2 AND used_at IS NULL")
            .bind(user.to_string())
            .bind(tag)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<u32> {
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.to_string())
            .fetch_one(p)
            .await
            .map_err(db_error))?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    async fn delete_all_factors(&self, user: UserId) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            for sql in ["DELETE FROM credentials WHERE user_id = $1", "DELETE FROM recovery_codes WHERE user_id = $1"] {
                sqlx::query(sql).bind(user.to_string()).execute(&mut *tx).await.map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)
        })
    }

    async fn credential_by_public_key_id(&self, public_key_id: &str) -> StoreResult<Option<Credential>> {
        let row: Option<CredentialRow> = on_pool!(self, |p| sqlx::query_as(select_credentials!("WHERE public_key_id = $1"))
            .bind(public_key_id)
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        row.map(Credential::try_from).transpose()
    }

    async fn record_assertion(&self, id: &str, sign_count: u32, now: UnixTime) -> StoreResult<bool> {
        // One statement decides: of two assertions with the same counter, only one moves it.
        on_pool!(self, |p| sqlx::query(
            "UPDATE credentials SET sign_count = $2, last_used_at = $3 \
             WHERE id = $1 AND flagged_at IS NULL AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))"
        )
        .bind(id)
        .bind(i64::from(sign_count))
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db_error))
    }

    async fn purge_unconfirmed_credentials(&self, before: UnixTime) -> StoreResult<u64> {
        on_pool!(self, |p| sqlx::query("DELETE FROM credentials WHERE confirmed_at IS NULL AND created_at < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_error))
    }

    async fn flag_credential(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("UPDATE credentials SET flagged_at = $2 WHERE id = $1 AND flagged_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }

    async fn save_ceremony(&self, c: &Ceremony) -> StoreResult<()> {
        let user = c.user_id.map(|u| u.to_string());
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            // A user's ceremonies of one purpose are replaced, not piled up:
            // the newest few stay (several tabs), older ones go, and the new
            // one always stays (made room for before it goes in).
            if let Some(user) = &user {
                sqlx::query(
                    "DELETE FROM webauthn_ceremonies WHERE user_id = $1 AND purpose = $2 AND id NOT IN \
                     (SELECT id FROM webauthn_ceremonies WHERE user_id = $1 AND purpose = $2 ORDER BY expires_at DESC, id DESC LIMIT $3)",
                )
                .bind(user)
                .bind(&c.purpose)
                .bind(LIVE_CEREMONIES_PER_PURPOSE - 1)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            sqlx::query("INSERT INTO webauthn_ceremonies (id, user_id, purpose, state, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&c.id)
                .bind(&user)
                .bind(&c.purpose)
                .bind(&c.state)
                .bind(c.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn take_ceremony(&self, id: &str, now: UnixTime) -> StoreResult<Option<Ceremony>> {
        // DELETE … RETURNING: the one request that deletes the row gets the state.
        let row: Option<(String, Option<String>, String, String, i64)> = on_pool!(self, |p| sqlx::query_as(
            "DELETE FROM webauthn_ceremonies WHERE id = $1 RETURNING id, user_id, purpose, state, expires_at"
        )
        .bind(id)
        .fetch_optional(p)
        .await
        .map_err(db_error))?;
        let Some((id, user_id, purpose, state, expires_at)) = row.filter(|r| r.4 > now) else { return Ok(None) };
        let user_id = user_id.map(|u| uuid::Uuid::parse_str(&u).map(UserId)).transpose().map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Some(Ceremony { id, user_id, purpose, state, expires_at }))
    }

    async fn replace_otp_code(&self, c: &OneTimeCode) -> StoreResult<()> {
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            sqlx::query(
                "UPDATE one_time_codes SET spent_at = $3 WHERE user_id = $1 AND channel = $2 AND purpose = $4 AND spent_at IS NULL",
            )
            .bind(c.user_id.to_string())
            .bind(c.channel.as_str())
            .bind(c.created_at)
            .bind(c.purpose.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            sqlx::query(
                "INSERT INTO one_time_codes (id, user_id, channel, destination, tag, created_at, expires_at, purpose, credential_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&c.id)
            .bind(c.user_id.to_string())
            .bind(c.channel.as_str())
            .bind(&c.destination)
            .bind(&c.tag)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.purpose.as_str())
            .bind(&c.credential_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    async fn last_otp_sent_at(&self, user: UserId, (channel, purpose): (OtpChannel, CodePurpose)) -> StoreResult<Option<UnixTime>> {
        on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MAX(created_at) FROM one_time_codes WHERE user_id = $1 AND channel = $2 AND purpose = $3"
        )
        .bind(user.to_string())
        .bind(channel.as_str())
        .bind(purpose.as_str())
        .fetch_one(p)
        .await
        .map_err(db_error))
    }

    async fn consume_otp_code(&self, a: &CodeAnswer<'_>) -> StoreResult<CodeCheck> {
        // One statement decides and counts: a right answer spends the live
        // code, a wrong one adds a try to it, and a code past its tries, for
        // another purpose, or sent elsewhere matches nothing. A code sent to
        // a phone counts only if that number is now a confirmed credential
        // (or, for a confirmation, is exactly the number being confirmed).
        let rows: Vec<(Option<i64>, Option<String>)> = on_pool!(self, |p| {
            sqlx::query_as(
            "UPDATE one_time_codes SET \
               spent_at = CASE WHEN tag = $3 THEN $5 ELSE spent_at END, \
               attempts = attempts + CASE WHEN tag = $3 THEN 0 ELSE 1 END \
             WHERE user_id = $1 AND channel = $2 AND purpose = $6 AND spent_at IS NULL AND expires_at > $5 AND attempts < $4 \
               AND CASE WHEN $7 IS NULL \
                   THEN credential_id IS NULL OR credential_id IN (SELECT id FROM credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
                   ELSE credential_id = $7 END \
             RETURNING spent_at, credential_id"
        )
        .bind(a.user.to_string())
        .bind(a.channel.as_str())
        .bind(a.tag)
        .bind(i64::from(a.max_attempts))
        .bind(a.now)
        .bind(a.purpose.as_str())
        .bind(a.credential)
        .fetch_all(p)
        .await
        .map_err(db_error)
        })?;
        Ok(match rows.into_iter().find(|(spent, _)| spent.is_some()) {
            Some((_, credential)) => CodeCheck::Spent { credential },
            None => CodeCheck::Wrong,
        })
    }

    async fn take_send_quotas(&self, quotas: &[SlidingQuota], now: UnixTime) -> StoreResult<Result<(), i64>> {
        // Keys are taken in one order, so two senders sharing two keys cannot deadlock.
        let mut quotas: Vec<&SlidingQuota> = quotas.iter().collect();
        quotas.sort_by(|a, b| a.key.cmp(&b.key));
        on_pool!(self, |p| {
            begin_transaction!(p, tx);
            let mut admitted = Vec::with_capacity(quotas.len());
            for q in &quotas {
                // The upsert takes the row before it is read (see migration 0011).
                let recent: String = sqlx::query_scalar(
                    "INSERT INTO send_quotas (quota_key, recent, last_at) VALUES ($1, '', $2) \
                     ON CONFLICT (quota_key) DO UPDATE SET recent = send_quotas.recent RETURNING recent",
                )
                .bind(&q.key)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                let earlier: Vec<UnixTime> = recent.split_ascii_whitespace().filter_map(|t| t.parse().ok()).collect();
                match q.admit(&earlier, now) {
                    Ok(times) => admitted.push((&q.key, times)),
                    // Dropping the transaction rolls it back: nothing is counted.
                    Err(retry_after) => return Ok(Err(retry_after)),
                }
            }
            for (key, times) in admitted {
                let recent = times.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
                sqlx::query("UPDATE send_quotas SET recent = $2, last_at = $3 WHERE quota_key = $1")
                    .bind(key)
                    .bind(recent)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(Ok(()))
        })
    }

    async fn insert_push_request(&self, r: &PushRequest) -> StoreResult<()> {
        let choices = r.choices.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
        let context = serde_json::to_string(&r.context).map_err(json_err)?;
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO push_requests (id, user_id, sign_in, number, choices, context, status, device_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(&r.id)
        .bind(r.user_id.to_string())
        .bind(&r.sign_in)
        .bind(i32::from(r.number))
        .bind(&choices)
        .bind(&context)
        .bind(r.status.as_str())
        .bind(&r.device)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error))
    }

    async fn push_request(&self, id: &str) -> StoreResult<Option<PushRequest>> {
        let row: Option<PushRequestRow> = on_pool!(self, |p| sqlx::query_as(concat!(select_push_requests!(), "WHERE id = $1"))
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(db_error))?;
        row.map(PushRequest::try_from).transpose()
    }

    async fn pending_push_requests(&self, user: UserId, now: UnixTime) -> StoreResult<Vec<PushRequest>> {
        let rows: Vec<PushRequestRow> = on_pool!(self, |p| sqlx::query_as(concat!(
            select_push_requests!(),
            "WHERE user_id = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at DESC, id"
        ))
        .bind(user.to_string())
        .bind(now)
        .fetch_all(p)
        .await
        .map_err(db_error))?;
        rows.into_iter().map(PushRequest::try_from).collect()
    }

    async fn answer_push_request(&self, (user, id): (UserId, &str), (to, device): (PushStatus, &str), now: UnixTime) -> StoreResult<bool> {
        // The row count decides: of answers sent at once, one moves it off `pending`.
        on_pool!(self, |p| sqlx::query(
            "UPDATE push_requests SET status = $3, device_id = $4, answered_at = $5 \
             WHERE id = $1 AND user_id = $2 AND status = 'pending' AND expires_at > $5"
        )
        .bind(id)
        .bind(user.to_string())
        .bind(to.as_str())
        .bind(device)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db_error))
    }

    async fn take_push_approval(&self, user: UserId, id: &str, sign_in: &str, live_after: UnixTime) -> StoreResult<Option<String>> {
        let taken: Option<(Option<String>, Option<i64>)> = on_pool!(self, |p| sqlx::query_as(
            "UPDATE push_requests SET status = 'used' \
             WHERE id = $1 AND user_id = $2 AND sign_in = $3 AND status = 'approved' AND expires_at > $4 \
             AND EXISTS (SELECT 1 FROM credentials c WHERE c.id = push_requests.device_id AND c.user_id = push_requests.user_id \
                         AND c.confirmed_at IS NOT NULL AND c.flagged_at IS NULL) \
             RETURNING device_id, answered_at"
        )
        .bind(id)
        .bind(user.to_string())
        .bind(sign_in)
        .bind(live_after)
        .fetch_optional(p)
        .await
        .map_err(db_error))?;
        let Some((Some(device), answered_at)) = taken else { return Ok(None) };
        on_pool!(self, |p| sqlx::query("UPDATE credentials SET last_used_at = $2 WHERE id = $1")
            .bind(&device)
            .bind(answered_at.unwrap_or(live_after))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))?;
        Ok(Some(device))
    }

    async fn push_denials_since(&self, user: UserId, since: UnixTime) -> StoreResult<Vec<UnixTime>> {
        on_pool!(self, |p| sqlx::query_scalar(
            "SELECT answered_at FROM push_requests WHERE user_id = $1 AND status = 'denied' AND answered_at > $2 ORDER BY answered_at"
        )
        .bind(user.to_string())
        .bind(since)
        .fetch_all(p)
        .await
        .map_err(db_error))
    }

    async fn pair_push_device(&self, pairing: &str, d: &Credential, (security_epoch, started_after): (i64, UnixTime)) -> StoreResult<bool> {
        let sql = match &self.backend {
            Backend::Sqlite(_) => PAIR_PUSH_DEVICE_SQLITE,
            Backend::Postgres(_) => PAIR_PUSH_DEVICE_POSTGRES,
        };
        // A device key registered already (to any account) is a conflict, as for `insert_credential`.
        on_pool!(self, |p| sqlx::query(sql)
            .bind(&d.id)
            .bind(pairing)
            .bind(&d.sealed_secret)
            .bind(&d.public_key_id)
            .bind(&d.name)
            .bind(d.confirmed_at)
            .bind(started_after)
            .bind(security_epoch)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn purge_push_requests(&self, before: UnixTime) -> StoreResult<u64> {
        on_pool!(self, |p| sqlx::query("DELETE FROM push_requests WHERE created_at < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_error))
    }

    async fn set_mfa_required(&self, user: UserId, required: bool) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query("UPDATE users SET mfa_required = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(required)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(db_error))
    }

    async fn insert_remembered_browser(&self, b: &RememberedBrowser) -> StoreResult<()> {
        let auth = serde_json::to_string(&b.auth).map_err(json_err)?;
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO remembered_browsers (id, user_id, auth_record, user_agent, created_at, expires_at, security_epoch) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&b.id)
        .bind(b.user_id.to_string())
        .bind(&auth)
        .bind(&b.user_agent)
        .bind(b.created_at)
        .bind(b.expires_at)
        .bind(b.security_epoch)
        .execute(p)
        .await
        .map(|_| ())
        .map_err(db_error))
    }

    async fn use_remembered_browser(&self, user: UserId, id: &str, now: UnixTime) -> StoreResult<Option<RememberedBrowser>> {
        let row: Option<BrowserRow> = on_pool!(self, |p| {
            sqlx::query_as(
            // One remembered by a request in flight at an ending (a reset, say) stands in for nothing.
            "UPDATE remembered_browsers SET last_used_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
             AND security_epoch = (SELECT security_epoch FROM users WHERE id = $2) \
             RETURNING id, user_id, auth_record, user_agent, created_at, expires_at, last_used_at, security_epoch"
        )
        .bind(id)
        .bind(user.to_string())
        .bind(now)
        .fetch_optional(p)
        .await
        .map_err(db_error)
        })?;
        row.map(RememberedBrowser::try_from).transpose()
    }

    async fn remembered_browsers(&self, user: UserId, now: UnixTime) -> StoreResult<Vec<RememberedBrowser>> {
        let rows: Vec<BrowserRow> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, user_id, auth_record, user_agent, created_at, expires_at, last_used_at, security_epoch FROM remembered_browsers \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             AND security_epoch = (SELECT security_epoch FROM users WHERE id = $1) ORDER BY created_at DESC, id"
        )
        .bind(user.to_string())
        .bind(now)
        .fetch_all(p)
        .await
        .map_err(db_error)
        })?;
        rows.into_iter().map(RememberedBrowser::try_from).collect()
    }

    async fn forget_remembered_browser(&self, user: UserId, id: &str, now: UnixTime) -> StoreResult<bool> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE remembered_browsers SET revoked_at = $3 WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL"
        )
        .bind(user.to_string())
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(db_error))
    }

    async fn forget_all_remembered_browsers(&self, user: UserId, now: UnixTime) -> StoreResult<()> {
        on_pool!(self, |p| sqlx::query("UPDATE remembered_browsers SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user.to_string())
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(db_error))
    }
}

#[derive(sqlx::FromRow)]
struct BrowserRow {
    id: String,
    user_id: String,
    auth_record: String,
    user_agent: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    security_epoch: i64,
}

impl TryFrom<BrowserRow> for RememberedBrowser {
    type Error = StoreError;
    fn try_from(r: BrowserRow) -> Result<Self, StoreError> {
        Ok(RememberedBrowser {
            user_id: parse_user_id(&r.user_id)?,
            auth: serde_json::from_str(&r.auth_record).map_err(json_err)?,
            id: r.id,
            user_agent: r.user_agent,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            security_epoch: r.security_epoch,
        })
    }
}
