//! Email addresses, validated once on the way in so the rest of the code never
//! sees an unvalidated one.

use std::fmt;

/// A syntactically plausible email address, normalised to lower case so that
/// `Alice@Example.com` and `alice@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Enter a valid email address, like name@example.com.")]
pub struct InvalidEmail;

impl EmailAddress {
    /// Longest address accepted (RFC 5321 §4.5.3.1.3 path limit).
    pub const MAX_LEN: usize = 254;

    /// Validates and normalises an address typed by a person.
    ///
    /// Deliberately modest: one `@`, a non-empty local part, a dotted domain,
    /// no whitespace or control characters. The real proof of an address is
    /// the verification email, not a regular expression.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > Self::MAX_LEN {
            return Err(InvalidEmail);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')) {
            return Err(InvalidEmail);
        }
        let (local, domain) = trimmed.split_once('@').ok_or(InvalidEmail)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(InvalidEmail);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return Err(InvalidEmail);
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, used as a hint to the password-strength checker.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = EmailAddress::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice@example.com");
        assert_eq!(e.local_part(), "alice");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in
            ["", "alice", "alice@", "@example.com", "a@b", "a b@example.com", "a@@example.com", "a@-x.com", "a@x..com", "a<b@example.com"]
        {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
