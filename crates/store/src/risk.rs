//! [`RiskStore`] for both backends: what adaptive rules remember (known devices, the last sign-in's place).

use portcullis_core::audit::AuditKind;
use portcullis_core::clock::UnixTime;
use portcullis_core::io::StoreResult;
use portcullis_core::policy::{DeviceHistory, LastSignIn, Location, RiskStore, SignInHistory};
use portcullis_core::user::UserId;

use crate::{Store, db_error, on_pool};

#[derive(sqlx::FromRow)]
struct SignInHistoryRow {
    this_device: i64,
    devices: i64,
    failures: i64,
    at: Option<i64>,
    ip: Option<String>,
    country: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl RiskStore for Store {
    async fn sign_in_history(&self, user: UserId, device_digest: &str, failures_since: UnixTime) -> StoreResult<SignInHistory> {
        // Read on every first step: one statement instead of three round trips.
        let r: SignInHistoryRow = on_pool!(self, |p| sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM known_devices WHERE user_id = $1 AND device = $2) AS this_device, \
                    (SELECT COUNT(*) FROM known_devices WHERE user_id = $1) AS devices, \
                    (SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND at >= $3 AND event = $4) AS failures, \
                    l.at, l.ip, l.country, l.latitude, l.longitude \
             FROM (SELECT 1 AS one) AS o LEFT JOIN last_sign_ins l ON l.user_id = $1"
        )
        .bind(user.to_string())
        .bind(device_digest)
        .bind(failures_since)
        .bind(AuditKind::SignInFailed.as_str())
        .fetch_one(p)
        .await
        .map_err(db_error))?;
        Ok(SignInHistory {
            device: DeviceHistory { known: r.this_device > 0, any_known: r.devices > 0 },
            failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
            last: r.at.map(|at| LastSignIn {
                at,
                ip: r.ip.unwrap_or_default(),
                location: Location { country: r.country, latitude: r.latitude, longitude: r.longitude, ..Location::default() },
            }),
        })
    }
}
