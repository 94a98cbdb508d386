//! What a route requires of the user's authentication, and the RFC 9470
//! challenge that says what is missing.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::claims::AuthenticationFacts;

/// An authentication context class (`acr`), weakest first: a class counts
/// for every class below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acr {
    /// `mfa`: two or more factors (OpenID EAP ACR values).
    Mfa,
    /// `phr`: phishing-resistant (a passkey or security key).
    Phr,
}

impl Acr {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::Phr => "phr",
        }
    }

    /// The class a claim value names; `None` for values this crate does not rank.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "mfa" => Some(Self::Mfa),
            "phr" => Some(Self::Phr),
            _ => None,
        }
    }
}

/// What a route requires: a class of authentication, methods, a recent
/// authentication, scopes. The default requires nothing beyond a valid token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    acr: Option<Acr>,
    amr: Vec<String>,
    max_age_seconds: Option<u64>,
    scopes: Vec<String>,
}

/// Why a token does not meet a [`Requirement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// The class reached (`acr`) is below the one required.
    Acr {
        /// What is required.
        required: Acr,
        /// What the token says, if anything.
        reached: Option<String>,
    },
    /// A required method (`amr`) was not used.
    Method(String),
    /// The authentication is older than `max_age` (or its time is unknown).
    TooOld {
        /// Seconds allowed.
        max_age: u64,
    },
    /// A scope was not granted (RFC 6750 §3.1 `insufficient_scope`, 403).
    Scope(String),
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Acr { required, .. } => write!(f, "this requires a sign-in with {}", describe(*required)),
            Self::Method(m) => write!(f, "this requires a sign-in with the method {m}"),
            Self::TooOld { max_age } => write!(f, "this requires a sign-in within the last {max_age} seconds"),
            Self::Scope(s) => write!(f, "this requires the scope {s}"),
        }
    }
}

fn describe(acr: Acr) -> &'static str {
    match acr {
        Acr::Mfa => "a second factor",
        Acr::Phr => "a passkey or security key",
    }
}

impl Requirement {
    /// Nothing beyond a valid token.
    pub fn any() -> Self {
        Self::default()
    }

    /// `acr` at least `mfa`.
    pub fn mfa() -> Self {
        Self::any().acr(Acr::Mfa)
    }

    /// `acr` at least `phr`.
    pub fn phishing_resistant() -> Self {
        Self::any().acr(Acr::Phr)
    }

    /// Requires `acr` at least `acr`.
    pub fn acr(mut self, acr: Acr) -> Self {
        self.acr = Some(acr);
        self
    }

    /// Requires the method `amr` (RFC 8176 value, e.g. `hwk`) among the token's `amr`.
    pub fn method(mut self, amr: &str) -> Self {
        self.amr.push(amr.to_owned());
        self
    }

    /// Requires an authentication at most `max_age` old (`auth_time`).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age_seconds = Some(max_age.as_secs());
        self
    }

    /// Requires the scope `scope` (access tokens only).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scopes.push(scope.to_owned());
        self
    }

    /// The `acr_values` to ask the provider for, if any: the class required;
    /// with only methods required (other than `pwd`), `mfa`, so the
    /// provider is asked for a second factor rather than nothing.
    pub fn acr_values(&self) -> Option<&'static str> {
        let second_factor_method = self.amr.iter().any(|m| m != "pwd");
        self.acr.or(second_factor_method.then_some(Acr::Mfa)).map(Acr::as_str)
    }

    /// The `max_age` to ask the provider for, in seconds, if any.
    pub fn max_age_seconds(&self) -> Option<u64> {
        self.max_age_seconds
    }

    /// Whether `facts` meet this requirement at `now` (seconds since the
    /// epoch); the first thing missing otherwise. A scope is checked first:
    /// signing in again does not grant it.
    pub fn check(&self, facts: &impl AuthenticationFacts, now: i64) -> Result<(), Unmet> {
        if let Some(missing) = self.scopes.iter().find(|s| !facts.scope().is_some_and(|granted| crate::claims::grants(granted, s))) {
            return Err(Unmet::Scope(missing.clone()));
        }
        if let Some(required) = self.acr {
            // An unranked or absent `acr` counts as below `mfa`.
            let reached = facts.acr().and_then(Acr::parse);
            if reached.is_none_or(|r| r < required) {
                return Err(Unmet::Acr { required, reached: facts.acr().map(str::to_owned) });
            }
        }
        if let Some(missing) = self.amr.iter().find(|m| !facts.amr().contains(m)) {
            return Err(Unmet::Method(missing.clone()));
        }
        if let Some(max_age) = self.max_age_seconds {
            // Without `auth_time` the age is unknown: not recent enough. (A
            // time in the future beyond the leeway never gets here: the
            // issuer's verification refuses such a token.)
            let recent = facts.auth_time().is_some_and(|t| now.saturating_sub(t) <= i64::try_from(max_age).unwrap_or(i64::MAX));
            if !recent {
                return Err(Unmet::TooOld { max_age });
            }
        }
        Ok(())
    }

    /// The `WWW-Authenticate` value for a token that does not meet this
    /// requirement: RFC 9470 §3's `insufficient_user_authentication`, naming
    /// the `acr_values` and `max_age` to sign in with, or RFC 6750's
    /// `insufficient_scope`.
    pub fn challenge(&self, unmet: &Unmet) -> String {
        if let Unmet::Scope(scope) = unmet {
            return format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\", scope=\"{}\"",
                quoted(&unmet.to_string()),
                quoted(scope)
            );
        }
        let mut value = format!("Bearer error=\"insufficient_user_authentication\", error_description=\"{}\"", quoted(&unmet.to_string()));
        if let Some(acr) = self.acr_values() {
            value.push_str(&format!(", acr_values=\"{acr}\""));
        }
        if let Some(max_age) = self.max_age_seconds {
            value.push_str(&format!(", max_age=\"{max_age}\""));
        }
        value
    }
}

impl Unmet {
    /// 403 for a missing scope, 401 otherwise (RFC 9470 §3, RFC 6750 §3.1).
    pub fn status(&self) -> u16 {
        if matches!(self, Self::Scope(_)) { 403 } else { 401 }
    }
}

/// A quoted-string's content (RFC 9110 §5.6.4): printable ASCII without
/// quote or backslash (a header value must be ASCII to be sent at all).
pub(crate) fn quoted(text: &str) -> String {
    text.chars().filter(|c| (c.is_ascii_graphic() || *c == ' ') && !matches!(c, '"' | '\\')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::AuthenticationFacts;

    struct Facts {
        acr: Option<&'static str>,
        amr: Vec<String>,
        auth_time: Option<i64>,
        scope: Option<&'static str>,
    }

    impl AuthenticationFacts for Facts {
        fn acr(&self) -> Option<&str> {
            self.acr
        }
        fn amr(&self) -> &[String] {
            &self.amr
        }
        fn auth_time(&self) -> Option<i64> {
            self.auth_time
        }
        fn scope(&self) -> Option<&str> {
            self.scope
        }
    }

    fn facts(acr: Option<&'static str>, amr: &[&str]) -> Facts {
        Facts { acr, amr: amr.iter().map(|s| (*s).to_owned()).collect(), auth_time: Some(1_000), scope: Some("openid admin") }
    }

    #[test]
    fn a_password_alone_does_not_meet_mfa_and_a_stronger_class_does() {
        let mfa = Requirement::mfa();
        assert_eq!(mfa.check(&facts(None, &["pwd"]), 1_000), Err(Unmet::Acr { required: Acr::Mfa, reached: None }));
        // `amr` containing "mfa" is not enough: the class is the claim that says it.
        assert!(mfa.check(&facts(None, &["pwd", "otp", "mfa"]), 1_000).is_err());
        assert!(mfa.check(&facts(Some("mfa"), &["pwd", "otp", "mfa"]), 1_000).is_ok());
        assert!(mfa.check(&facts(Some("phr"), &["hwk", "phr"]), 1_000).is_ok());
        assert!(Requirement::phishing_resistant().check(&facts(Some("mfa"), &["pwd", "otp"]), 1_000).is_err());
        assert!(mfa.check(&facts(Some("urn:unknown"), &[]), 1_000).is_err(), "an unranked class counts as none");
    }

    #[test]
    fn methods_age_and_scopes_are_each_required() {
        let hwk = Requirement::mfa().method("hwk");
        assert_eq!(hwk.check(&facts(Some("mfa"), &["pwd", "otp"]), 1_000), Err(Unmet::Method("hwk".into())));
        assert!(hwk.check(&facts(Some("mfa"), &["pwd", "hwk"]), 1_000).is_ok());

        let recent = Requirement::any().max_age(Duration::from_secs(300));
        assert!(recent.check(&facts(None, &[]), 1_300).is_ok());
        assert_eq!(recent.check(&facts(None, &[]), 1_301), Err(Unmet::TooOld { max_age: 300 }));
        let unknown = Facts { auth_time: None, ..facts(None, &[]) };
        assert!(recent.check(&unknown, 1_000).is_err(), "no auth_time is not recent");

        let admin = Requirement::mfa().scope("admin");
        let without = Facts { scope: Some("openid"), ..facts(None, &[]) };
        assert_eq!(admin.check(&without, 1_000), Err(Unmet::Scope("admin".into())), "a scope is reported before the class");
        assert_eq!(Unmet::Scope("admin".into()).status(), 403);
        let id_token = Facts { scope: None, ..facts(Some("mfa"), &[]) };
        assert!(admin.check(&id_token, 1_000).is_err());
    }

    #[test]
    fn challenges_follow_rfc_9470() {
        let req = Requirement::mfa().max_age(Duration::from_secs(600));
        let unmet = req.check(&facts(None, &["pwd"]), 1_000).unwrap_err();
        assert_eq!(unmet.status(), 401);
        assert_eq!(
            req.challenge(&unmet),
            "Bearer error=\"insufficient_user_authentication\", error_description=\"this requires a sign-in with a second factor\", acr_values=\"mfa\", max_age=\"600\""
        );
        let old = Requirement::any().max_age(Duration::from_secs(5));
        assert_eq!(
            old.challenge(&Unmet::TooOld { max_age: 5 }),
            "Bearer error=\"insufficient_user_authentication\", error_description=\"this requires a sign-in within the last 5 seconds\", max_age=\"5\""
        );
        assert_eq!(quoted("a \"b\"\\\n é"), "a b ");
        assert_eq!(Requirement::any().method("hwk").acr_values(), Some("mfa"), "a method alone asks for a second factor");
        assert_eq!(Requirement::any().method("pwd").acr_values(), None);
    }
}
