//! Adaptive sign-in rules: what a sign-in must prove, given where it comes
//! from. The operator writes an ordered list of rules; the first whose every
//! condition holds decides (like Authelia's access rules). A rule without
//! conditions matches everything, so a last catch-all rule sets the default.
//! With no rule matching, the account's own settings decide (a user with a
//! factor is asked for it).
//!
//! Everything here is pure: the signals arrive measured (see
//! `Accounts::assess` for how), so every condition is testable alone.

use std::future::Future;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::io::StoreResult;
use crate::user::UserId;

/// What a matching rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// A password (or other first step) is enough, even for a user with factors.
    AllowSingleFactor,
    /// A second factor is required; a user without one enrolls first.
    RequireMfa,
    /// Only a security key or passkey completes the sign-in.
    RequirePhishingResistant,
    /// The sign-in is refused.
    Deny,
}

impl RuleAction {
    /// Stable name (config, audit log).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowSingleFactor => "allow_single_factor",
            Self::RequireMfa => "require_mfa",
            Self::RequirePhishingResistant => "require_phishing_resistant",
            Self::Deny => "deny",
        }
    }
}

/// One rule. Every condition given must hold; an empty list is no condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Shown in the audit log.
    pub name: String,
    /// Client ids the sign-in is for.
    pub clients: Vec<String>,
    /// Roles the user has (`admin`, `user`).
    pub roles: Vec<String>,
    /// Source networks.
    pub networks: Vec<ipnet::IpNet>,
    /// ISO 3166-1 alpha-2 countries of the source address (needs a GeoIP database).
    pub countries: Vec<String>,
    /// `Some(true)`: only a browser this account never signed in from; `Some(false)`: only a known one.
    pub new_device: Option<bool>,
    /// At least this many failed attempts on the account in the last hour.
    pub min_failures_last_hour: Option<u32>,
    /// `Some(true)`: only when the distance from the last sign-in could not have been travelled in the time since.
    pub impossible_travel: Option<bool>,
    /// What to do.
    pub action: RuleAction,
}

/// A place, from a GeoIP database.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// Degrees.
    pub latitude: Option<f64>,
    /// Degrees.
    pub longitude: Option<f64>,
    /// The place in words by language code ("de" → "London, Vereinigtes
    /// Königreich"), as the database names it; empty when it names nothing.
    /// Only for pages: not kept with assessments.
    #[serde(default, skip)]
    pub names: std::collections::BTreeMap<String, String>,
}

impl Location {
    fn coordinates(&self) -> Option<(f64, f64)> {
        Some((self.latitude?, self.longitude?))
    }
}

/// Finds where an address is (a MaxMind-format database, when configured).
pub trait Geolocator: Send + Sync {
    /// The address's place, if the database knows it.
    fn locate(&self, ip: IpAddr) -> Option<Location>;
}

/// The last successful sign-in of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct LastSignIn {
    /// When.
    pub at: UnixTime,
    /// From which address.
    pub ip: String,
    /// Where that was.
    pub location: Location,
}

/// What the store remembers for the rules.
pub trait RiskStore: Clone + Send + Sync + 'static {
    /// What the rules weigh of the account's past, in one read: this device
    /// and the account's others, sign-in failures since `failures_since`, and
    /// the last successful sign-in.
    fn sign_in_history(
        &self,
        user: UserId,
        device_digest: &str,
        failures_since: UnixTime,
    ) -> impl Future<Output = StoreResult<SignInHistory>> + Send;
}

/// What the store knows of a device for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceHistory {
    /// This device signed in to this account before.
    pub known: bool,
    /// The account has signed in from some device before.
    pub any_known: bool,
}

/// An account's past as the adaptive rules weigh it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInHistory {
    /// The device signing in, and the account's devices.
    pub device: DeviceHistory,
    /// Failed sign-ins in the period asked for.
    pub failures: u32,
    /// The last successful sign-in.
    pub last: Option<LastSignIn>,
}

/// Measured facts about one sign-in attempt.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// The application, when known.
    pub client: Option<String>,
    /// The user's roles.
    pub roles: Vec<&'static str>,
    /// Source address.
    pub ip: Option<IpAddr>,
    /// Where it is.
    pub location: Location,
    /// No device cookie this account has seen.
    pub new_device: bool,
    /// Failed attempts on the account in the last hour.
    pub failures_last_hour: u32,
    /// Speed needed to get here from the last sign-in (km/h), when both places are known.
    pub travel_kmh: Option<f64>,
    /// Distance from the last sign-in (km), when both places are known.
    pub travel_km: Option<f64>,
    /// The last sign-in was from another country.
    pub new_country: bool,
}

/// How risky a sign-in looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Nothing unusual.
    Low,
    /// One unusual signal.
    Medium,
    /// Impossible travel, or several unusual signals.
    High,
}

impl RiskLevel {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The outcome of evaluating the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The risk level.
    pub risk: RiskLevel,
    /// The unusual signals behind it.
    pub reasons: Vec<&'static str>,
    /// The matching rule's name and action, if one matched.
    pub rule: Option<(String, RuleAction)>,
}

impl Assessment {
    /// The matching rule's action.
    pub fn action(&self) -> Option<RuleAction> {
        self.rule.as_ref().map(|(_, a)| *a)
    }

    /// For the audit log.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "risk": self.risk.as_str(),
            "reasons": self.reasons,
            "rule": self.rule.as_ref().map(|(n, _)| n),
            "action": self.action().map(RuleAction::as_str),
        })
    }
}

/// The operator's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptivePolicy {
    /// In order; the first match decides.
    pub rules: Vec<Rule>,
    /// Faster than this (km/h) between two sign-ins is impossible travel (default 1000: a jet airliner).
    pub max_travel_kmh: f64,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        Self { rules: Vec::new(), max_travel_kmh: 1000.0 }
    }
}

/// Below this distance two GeoIP locations are the same place (city databases are coarse).
const SAME_PLACE_KM: f64 = 100.0;

impl AdaptivePolicy {
    /// Whether the signals show impossible travel.
    pub fn impossible_travel(&self, s: &Signals) -> bool {
        matches!((s.travel_km, s.travel_kmh), (Some(km), Some(kmh)) if km > SAME_PLACE_KM && kmh > self.max_travel_kmh)
    }

    /// The risk level and the first matching rule.
    pub fn evaluate(&self, s: &Signals) -> Assessment {
        let travel = self.impossible_travel(s);
        let mut reasons = Vec::new();
        if s.new_device {
            reasons.push("new_device");
        }
        if s.new_country {
            reasons.push("new_country");
        }
        if s.failures_last_hour > 0 {
            reasons.push("recent_failures");
        }
        if travel {
            reasons.push("impossible_travel");
        }
        let risk = match reasons.len() {
            _ if travel => RiskLevel::High,
            0 => RiskLevel::Low,
            1 => RiskLevel::Medium,
            _ => RiskLevel::High,
        };
        let rule = self.rules.iter().find(|r| self.matches(r, s, travel)).map(|r| (r.name.clone(), r.action));
        Assessment { risk, reasons, rule }
    }

    fn matches(&self, r: &Rule, s: &Signals, travel: bool) -> bool {
        let client = r.clients.is_empty() || s.client.as_ref().is_some_and(|c| r.clients.contains(c));
        let role = r.roles.is_empty() || s.roles.iter().any(|role| r.roles.iter().any(|x| x == role));
        let network = r.networks.is_empty() || s.ip.is_some_and(|ip| r.networks.iter().any(|n| n.contains(&ip)));
        let country =
            r.countries.is_empty() || s.location.country.as_ref().is_some_and(|c| r.countries.iter().any(|x| x.eq_ignore_ascii_case(c)));
        let device = r.new_device.is_none_or(|want| want == s.new_device);
        let failures = r.min_failures_last_hour.is_none_or(|min| s.failures_last_hour >= min);
        let travelled = r.impossible_travel.is_none_or(|want| want == travel);
        client && role && network && country && device && failures && travelled
    }
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: &Location, b: &Location) -> Option<f64> {
    let ((lat1, lon1), (lat2, lon2)) = (a.coordinates()?, b.coordinates()?);
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Some(2.0 * 6371.0 * h.sqrt().asin())
}

/// Speed (km/h) needed to cover `km` in the time between `from` and `to`
/// (at least a minute, so two sign-ins in the same second are not infinitely fast).
pub fn travel_speed_kmh(km: f64, from: UnixTime, to: UnixTime) -> f64 {
    let hours = ((to - from).max(60)) as f64 / 3600.0;
    km / hours
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONDON: (f64, f64) = (51.5142, -0.0931);
    const CHANGCHUN: (f64, f64) = (43.88, 125.3228);

    fn place(country: &str, (lat, lon): (f64, f64)) -> Location {
        Location { country: Some(country.into()), latitude: Some(lat), longitude: Some(lon), ..Location::default() }
    }

    fn rule(name: &str, action: RuleAction) -> Rule {
        Rule {
            name: name.into(),
            clients: vec![],
            roles: vec![],
            networks: vec![],
            countries: vec![],
            new_device: None,
            min_failures_last_hour: None,
            impossible_travel: None,
            action,
        }
    }

    fn decide(policy: &AdaptivePolicy, s: &Signals) -> Option<String> {
        policy.evaluate(s).rule.map(|(n, _)| n)
    }

    #[test]
    fn london_to_changchun_is_about_8200_km() {
        let d = distance_km(&place("GB", LONDON), &place("CN", CHANGCHUN)).unwrap_or_default();
        assert!((8000.0..8400.0).contains(&d), "{d}");
        assert!(travel_speed_kmh(d, 0, 3600) > 1000.0);
        assert!(travel_speed_kmh(d, 0, 24 * 3600) < 1000.0);
    }

    #[test]
    fn the_first_matching_rule_decides_and_a_rule_without_conditions_matches_all() {
        let office = Rule {
            networks: vec!["10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!())],
            ..rule("office", RuleAction::AllowSingleFactor)
        };
        let policy = AdaptivePolicy { rules: vec![office, rule("elsewhere", RuleAction::RequireMfa)], ..AdaptivePolicy::default() };
        let inside = Signals { ip: "10.1.2.3".parse().ok(), ..Signals::default() };
        let outside = Signals { ip: "192.0.2.1".parse().ok(), ..Signals::default() };
        assert_eq!(decide(&policy, &inside).as_deref(), Some("office"));
        assert_eq!(decide(&policy, &outside).as_deref(), Some("elsewhere"));
        assert_eq!(decide(&policy, &Signals::default()).as_deref(), Some("elsewhere"), "an unknown address is not in the office");
    }

    #[test]
    fn each_condition_narrows_a_rule() {
        let s = Signals {
            client: Some("payroll".into()),
            roles: vec!["admin"],
            location: place("GB", LONDON),
            new_device: true,
            failures_last_hour: 3,
            ..Signals::default()
        };
        let cases: Vec<(Rule, bool)> = vec![
            (Rule { clients: vec!["payroll".into()], ..rule("c", RuleAction::Deny) }, true),
            (Rule { clients: vec!["wiki".into()], ..rule("c", RuleAction::Deny) }, false),
            (Rule { roles: vec!["admin".into()], ..rule("r", RuleAction::Deny) }, true),
            (Rule { roles: vec!["user".into()], ..rule("r", RuleAction::Deny) }, false),
            (Rule { countries: vec!["gb".into()], ..rule("k", RuleAction::Deny) }, true),
            (Rule { countries: vec!["SE".into()], ..rule("k", RuleAction::Deny) }, false),
            (Rule { new_device: Some(true), ..rule("d", RuleAction::Deny) }, true),
            (Rule { new_device: Some(false), ..rule("d", RuleAction::Deny) }, false),
            (Rule { min_failures_last_hour: Some(3), ..rule("f", RuleAction::Deny) }, true),
            (Rule { min_failures_last_hour: Some(4), ..rule("f", RuleAction::Deny) }, false),
            (Rule { impossible_travel: Some(true), ..rule("t", RuleAction::Deny) }, false),
            (Rule { impossible_travel: Some(false), ..rule("t", RuleAction::Deny) }, true),
        ];
        for (r, expected) in cases {
            let policy = AdaptivePolicy { rules: vec![r.clone()], ..AdaptivePolicy::default() };
            assert_eq!(policy.evaluate(&s).rule.is_some(), expected, "{r:?}");
        }
    }

    #[test]
    fn risk_counts_unusual_signals_and_impossible_travel_is_high() {
        let policy = AdaptivePolicy::default();
        assert_eq!(policy.evaluate(&Signals::default()).risk, RiskLevel::Low);
        assert_eq!(policy.evaluate(&Signals { new_device: true, ..Signals::default() }).risk, RiskLevel::Medium);
        let two = Signals { new_device: true, failures_last_hour: 1, ..Signals::default() };
        assert_eq!(policy.evaluate(&two).risk, RiskLevel::High);
        let flew = Signals { travel_km: Some(8200.0), travel_kmh: Some(8200.0), ..Signals::default() };
        let a = policy.evaluate(&flew);
        assert_eq!((a.risk, a.reasons), (RiskLevel::High, vec!["impossible_travel"]));
        let nearby = Signals { travel_km: Some(50.0), travel_kmh: Some(3000.0), ..Signals::default() };
        assert_eq!(policy.evaluate(&nearby).risk, RiskLevel::Low, "GeoIP jitter within a region is not travel");
    }
}
