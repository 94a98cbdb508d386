//! Text messages: phone numbers in E.164 form, the message the domain wants
//! sent, and the [`SmsSender`] that sends it (Twilio-compatible API, a signed
//! webhook, or the development outbox, in `portcullis-delivery`).

use crate::io::BoxFuture;

/// A phone number in E.164 form (`+` and 8 to 15 digits, ITU-T E.164 §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PhoneNumber(String);

/// Why a phone number was refused (safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Enter the number in international form with its country code, like +44 7700 900123.")]
pub struct InvalidPhoneNumber;

impl PhoneNumber {
    /// Parses what a person types: spaces, dots, dashes and brackets are
    /// ignored, `00` counts as `+`; the country code is required.
    pub fn parse(input: &str) -> Result<Self, InvalidPhoneNumber> {
        let kept: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')' | '\u{a0}')).collect();
        let digits = kept.strip_prefix('+').or_else(|| kept.strip_prefix("00")).ok_or(InvalidPhoneNumber)?;
        let valid = (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
        if valid { Ok(Self(format!("+{digits}"))) } else { Err(InvalidPhoneNumber) }
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last two digits hidden, for pages and logs.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("{}{}", "•".repeat(n.saturating_sub(2)), &self.0[n.saturating_sub(2)..])
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A text message to one number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutgoingSms {
    /// Recipient.
    pub to: PhoneNumber,
    /// Text.
    pub body: String,
}

/// Delivery failed; the text says why (logged, and shown as a generic notice).
#[derive(Debug, thiserror::Error)]
#[error("text message delivery failed: {0}")]
pub struct SmsError(pub String);

/// Sends text messages.
pub trait SmsSender: Send + Sync + 'static {
    /// Delivers one message or says why it could not.
    fn send<'a>(&'a self, sms: &'a OutgoingSms) -> BoxFuture<'a, Result<(), SmsError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_to_e164() {
        assert_eq!(PhoneNumber::parse("+44 7700 900123").unwrap().as_str(), "+447700900123");
        assert_eq!(PhoneNumber::parse("0044 (7700) 900-123").unwrap().as_str(), "+447700900123");
        assert_eq!(PhoneNumber::parse("+1 415.555.2671").unwrap().as_str(), "+14155552671");
        for bad in ["07700 900123", "+44", "+0 123 456 789", "+1234567890123456", "+44 7700 9001x3", ""] {
            assert_eq!(PhoneNumber::parse(bad), Err(InvalidPhoneNumber), "{bad:?}");
        }
        assert_eq!(PhoneNumber::parse("+447700900123").unwrap().masked(), "•••••••••••23");
    }
}
