//! The adaptive-rule assessment of a sign-in or a use of a session: the
//! signals a request shows (address, place, device, failures, travel), read
//! with the account's history, evaluated by the operator's rules
//! ([`crate::policy`], pure); and the refusal a deny rule or a disabled
//! account gets.

use serde_json::json;

use crate::account_store::Stores;
use crate::accounts::Accounts;
use crate::audit::{AuditKind, RequestOrigin};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::policy::{Assessment, Location, Signals, distance_km, travel_speed_kmh};
use crate::secrets::{random_token, token_digest};
use crate::user::{User, roles};

impl<S: Stores> Accounts<S> {
    pub(crate) fn locate(&self, origin: &RequestOrigin) -> Location {
        origin.ip.and_then(|ip| self.geo.as_ref().and_then(|g| g.locate(ip))).unwrap_or_default()
    }

    /// Where `ip` is, in words of `language` (English when the database has
    /// no name in it), when a GeoIP database is configured and knows it.
    pub fn place_name(&self, ip: std::net::IpAddr, language: crate::Language) -> Option<String> {
        let names = self.geo.as_ref()?.locate(ip)?.names;
        names.get(language.code()).or_else(|| names.get("en")).cloned()
    }

    /// Measures the signals of a sign-in by `user` from `origin` and evaluates the operator's rules.
    pub(crate) async fn assess(&self, user: &User, origin: &RequestOrigin, now: UnixTime) -> Result<Assessment, AccountError> {
        let location = self.locate(origin);
        let history = self.store.sign_in_history(user.id, &device_digest(origin), now - 3600).await?;
        let last = history.last;
        let travel_km = last.as_ref().and_then(|l| distance_km(&l.location, &location));
        let new_country = match (last.as_ref().and_then(|l| l.location.country.as_ref()), &location.country) {
            (Some(before), Some(now)) => before != now,
            _ => false,
        };
        let signals = Signals {
            client: origin.client_id.clone(),
            roles: roles(user),
            ip: origin.ip,
            travel_kmh: travel_km.zip(last.as_ref()).map(|(km, l)| travel_speed_kmh(km, l.at, now)),
            travel_km,
            location,
            new_device: !history.device.known,
            failures_last_hour: history.failures,
            new_country,
        };
        Ok(self.settings.adaptive.evaluate(&signals))
    }

    /// Refuses a sign-in to a disabled account, or one that a rule denies, recording why.
    pub(crate) async fn refuse_if_denied(
        &self,
        user: &User,
        origin: &RequestOrigin,
        assessment: &Assessment,
        now: UnixTime,
    ) -> Result<(), AccountError> {
        if user.disabled_at.is_some() {
            self.audit(AuditKind::SignInDenied, Some(user.id), origin, json!({ "reason": "account_disabled" }), now).await?;
            return Err(AccountError::AccountDisabled);
        }
        if assessment.action() == Some(crate::policy::RuleAction::Deny) {
            self.audit(AuditKind::SignInDenied, Some(user.id), origin, assessment.to_json(), now).await?;
            return Err(AccountError::SignInDenied);
        }
        Ok(())
    }
}

/// A fresh device id for a browser that has none (its cookie value).
pub fn new_device_id() -> String {
    random_token()
}

/// The stored form of a device cookie (a browser without one is a device never seen).
pub(crate) fn device_digest(origin: &RequestOrigin) -> String {
    origin.device.as_deref().map(token_digest).unwrap_or_default()
}
