//! The ways a user proves who they are, as records and tokens name them: the
//! NIST SP 800-63B categories ([`FactorClass`]), the second factors
//! ([`FactorKey`], the one list of them: every other list is derived from
//! [`FactorKey::ALL`]) and the methods a session's record holds
//! ([`AuthMethod`]). A leaf module: pure facts, no I/O, no other module of the
//! crate, so records, policies and factors can all use it.
//!
//! Adding a second factor adds a [`FactorKey`] variant here, with its facts
//! (name, words, `amr`, categories); its behaviour is its module in `factors/`.

use serde::{Deserialize, Serialize};

/// NIST SP 800-63B factor categories; two different ones make MFA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorClass {
    /// Something you know.
    Knowledge,
    /// Something you have.
    Possession,
}

/// A second factor's identity: the key that forms, stored sign-in states and
/// client policies name it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKey {
    /// Security keys and passkeys (WebAuthn).
    Webauthn,
    /// Authenticator apps (TOTP).
    Totp,
    /// Codes by text message.
    Sms,
    /// Codes by email.
    Email,
    /// Recovery codes.
    Recovery,
    /// Approval on a phone running the companion app (push, number matching).
    Push,
}

/// What a second-step page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A WebAuthn assertion, made by the browser (`static/webauthn.js`).
    PublicKey,
    /// The account's password (the other step of a sign-in begun with an emailed code).
    Password,
    /// A code the user types.
    Code(CodeField),
    /// An approval on another device: the page asks for it, shows a number
    /// and waits (`static/push.js`); the answer is the request's id.
    Approval,
}

/// The field a code is typed into, and how the code reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeField {
    /// The field's label (message id).
    pub label: &'static str,
    /// The field's HTML id.
    pub id: &'static str,
    /// Digits only (the browser may offer a code it received).
    pub numeric: bool,
    /// `Some` when the code is sent on the user's request.
    pub sent: Option<Sending>,
}

/// How a sent code is offered and announced (message ids; `$to` in the
/// catalog stands for where it went, `$email` for the account's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sending {
    /// Before anything is sent.
    pub offer: &'static str,
    /// The send button.
    pub button: &'static str,
    /// After sending.
    pub notice: &'static str,
    /// Where it goes when the user has no choice of destination.
    pub default_to: &'static str,
    /// The label of the choice, when the user has several destinations.
    pub choice: &'static str,
    /// A caution shown with the offer.
    pub caution: Option<&'static str>,
}

/// The facts of one step: what forms, records, tokens and pages call it.
/// Words are message ids of the catalogs (`portcullis-i18n`); `$email` in a
/// message stands for the account's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFacts {
    /// Stable name (forms, stored sets, client policies).
    pub name: &'static str,
    /// The name a session's record stores a success under.
    pub method_name: &'static str,
    /// That method in words on the user's pages ("an authenticator app").
    pub method_words: &'static str,
    /// In words, as an application's requirement names it.
    pub words: &'static str,
    /// Its button on the "Try another method" page.
    pub offer: &'static str,
    /// What the second-step page says before the answer field.
    pub prompt: &'static str,
    /// The RFC 8176 `amr` values a success contributes.
    pub amr: &'static [&'static str],
    /// Bound to the site's origin, so a look-alike site cannot relay it
    /// (WebAuthn; OpenID EAP ACR value `phr`).
    pub phishing_resistant: bool,
    /// What the page asks for.
    pub answer: Answer,
}

/// The password as a step (a sign-in begun with an emailed code).
pub const PASSWORD_STEP: StepFacts = StepFacts {
    name: "password",
    method_name: "password",
    method_words: "method-password",
    words: "step-password-words",
    offer: "step-password-offer",
    prompt: "step-password-prompt",
    amr: &["pwd"],
    phishing_resistant: false,
    answer: Answer::Password,
};

const SIX_DIGITS: &str = "field-code";

impl FactorKey {
    /// Every factor, strongest first: the order a second step offers them in
    /// (NIST SP 800-63B: phishing-resistant keys, then a device key on a
    /// phone (push with number matching) and apps, then codes sent to a phone
    /// or a mailbox; recovery codes are the fallback).
    pub const ALL: [FactorKey; 6] = [Self::Webauthn, Self::Push, Self::Totp, Self::Sms, Self::Email, Self::Recovery];

    /// Its facts: the one place each factor's names, words and `amr` are written.
    pub const fn facts(self) -> StepFacts {
        match self {
            Self::Webauthn => StepFacts {
                name: "webauthn",
                method_name: "security_key",
                method_words: "method-security_key",
                words: "step-webauthn-words",
                offer: "step-webauthn-offer",
                prompt: "step-webauthn-prompt",
                amr: &["hwk"],
                phishing_resistant: true,
                answer: Answer::PublicKey,
            },
            Self::Totp => StepFacts {
                name: "totp",
                method_name: "totp",
                method_words: "method-totp",
                words: "step-totp-words",
                offer: "step-totp-offer",
                prompt: "step-totp-prompt",
                amr: &["otp"],
                phishing_resistant: false,
                answer: Answer::Code(CodeField { label: SIX_DIGITS, id: "code", numeric: true, sent: None }),
            },
            Self::Sms => StepFacts {
                name: "sms",
                method_name: "sms_otp",
                method_words: "method-sms_otp",
                words: "step-sms-words",
                offer: "step-sms-offer",
                prompt: "step-sms-prompt",
                amr: &["sms", "otp"],
                phishing_resistant: false,
                answer: Answer::Code(CodeField {
                    label: SIX_DIGITS,
                    id: "code",
                    numeric: true,
                    sent: Some(Sending {
                        offer: "step-sms-send-offer",
                        button: "step-sms-send-button",
                        notice: "step-sms-sent",
                        default_to: "step-sms-default-to",
                        choice: "step-sms-choice",
                        caution: Some("step-sms-caution"),
                    }),
                }),
            },
            Self::Email => StepFacts {
                name: "email",
                method_name: "email_otp",
                method_words: "method-email_otp",
                words: "step-email-words",
                offer: "step-email-offer",
                prompt: "step-email-prompt",
                amr: &["otp"],
                phishing_resistant: false,
                answer: Answer::Code(CodeField {
                    label: SIX_DIGITS,
                    id: "code",
                    numeric: true,
                    sent: Some(Sending {
                        offer: "step-email-send-offer",
                        button: "step-email-send-button",
                        notice: "step-email-sent",
                        default_to: "step-email-default-to",
                        choice: "step-email-choice",
                        caution: None,
                    }),
                }),
            },
            // RFC 8176 has no value for recovery codes; they are one-time passwords.
            Self::Recovery => StepFacts {
                name: "recovery",
                method_name: "recovery_code",
                method_words: "method-recovery_code",
                words: "step-recovery-words",
                offer: "step-recovery-offer",
                prompt: "step-recovery-prompt",
                amr: &["otp"],
                phishing_resistant: false,
                answer: Answer::Code(CodeField { label: "field-recovery-code", id: "recovery_code", numeric: false, sent: None }),
            },
            // RFC 8176 `swk`: proof of possession of a software-secured key
            // (the companion's WebCrypto key). Not phishing-resistant: a
            // relayed page shows the right number too.
            Self::Push => StepFacts {
                name: "push",
                method_name: "push",
                method_words: "method-push",
                words: "step-push-words",
                offer: "step-push-offer",
                prompt: "step-push-prompt",
                amr: &["swk"],
                phishing_resistant: false,
                answer: Answer::Approval,
            },
        }
    }

    /// Stable name (forms, stored sets, client policies).
    pub const fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a success with this factor adds to a session's record.
    pub fn method(self) -> AuthMethod {
        AuthMethod::Factor(self)
    }

    /// In words, as an application's requirement names it.
    pub fn words(self) -> &'static str {
        self.facts().words
    }

    /// The RFC 8176 `amr` values a success contributes.
    pub fn amr_values(self) -> &'static [&'static str] {
        self.facts().amr
    }

    /// Whether it is bound to the site's origin (see [`StepFacts::phishing_resistant`]).
    pub fn phishing_resistant(self) -> bool {
        self.facts().phishing_resistant
    }

    /// Whether its code is sent on request (email, SMS): the page offers to
    /// send one first, and sends count against the per-client cap.
    pub fn sends_code(self) -> bool {
        matches!(self.facts().answer, Answer::Code(CodeField { sent: Some(_), .. }))
    }
}

impl std::fmt::Display for FactorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A way the user proved who they are, as a session's record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum AuthMethod {
    /// Password (knowledge factor).
    Password,
    /// Passwordless sign-in with a user-verified passkey: possession of the
    /// key plus the PIN or biometric the authenticator checked (a
    /// multi-factor cryptographic authenticator, NIST SP 800-63B §5.1.9).
    Passkey,
    /// A second factor (one possession factor each).
    Factor(FactorKey),
}

impl AuthMethod {
    /// A security key or passkey as a second factor.
    pub const SECURITY_KEY: Self = Self::Factor(FactorKey::Webauthn);
    /// An authenticator app's code.
    pub const TOTP: Self = Self::Factor(FactorKey::Totp);
    /// A code by text message.
    pub const SMS_OTP: Self = Self::Factor(FactorKey::Sms);
    /// A code by email.
    pub const EMAIL_OTP: Self = Self::Factor(FactorKey::Email);
    /// A recovery code.
    pub const RECOVERY_CODE: Self = Self::Factor(FactorKey::Recovery);

    /// The RFC 8176 `amr` values this method contributes.
    pub fn amr_values(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            // RFC 8176 `user`: the authenticator tested the user's presence and identity.
            Self::Passkey => &["hwk", "user"],
            Self::Factor(k) => k.amr_values(),
        }
    }

    /// The factor categories this method proves.
    pub fn classes(self) -> &'static [FactorClass] {
        match self {
            Self::Password => &[FactorClass::Knowledge],
            // User verification on the authenticator stands for the second category.
            Self::Passkey => &[FactorClass::Possession, FactorClass::Knowledge],
            Self::Factor(_) => &[FactorClass::Possession],
        }
    }

    /// Whether the method is bound to the site's origin, so a look-alike site
    /// cannot relay it (WebAuthn; OpenID EAP ACR value `phr`).
    pub fn phishing_resistant(self) -> bool {
        match self {
            Self::Password => false,
            Self::Passkey => true,
            Self::Factor(k) => k.phishing_resistant(),
        }
    }

    /// Whether this method proves `class`.
    pub fn proves(self, class: FactorClass) -> bool {
        self.classes().contains(&class)
    }

    /// The second factor this method belongs to (`None`: the password).
    pub fn factor(self) -> Option<FactorKey> {
        match self {
            Self::Password => None,
            Self::Passkey => Some(FactorKey::Webauthn),
            Self::Factor(k) => Some(k),
        }
    }

    /// In words on the user's pages ("your password", "a passkey"): a message id.
    pub fn words(self) -> &'static str {
        match self {
            Self::Password => PASSWORD_STEP.method_words,
            Self::Passkey => "method-passkey",
            Self::Factor(k) => k.facts().method_words,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "passkey",
            Self::Factor(k) => k.facts().method_name,
        }
    }
}

impl From<AuthMethod> for String {
    fn from(m: AuthMethod) -> Self {
        m.as_str().to_owned()
    }
}

impl TryFrom<String> for AuthMethod {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [Self::Password, Self::Passkey]
            .into_iter()
            .chain(FactorKey::ALL.map(Self::Factor))
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown sign-in method {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_method_names_are_those_records_already_hold() {
        let names: Vec<String> = [AuthMethod::Password, AuthMethod::Passkey]
            .into_iter()
            .chain(FactorKey::ALL.map(AuthMethod::Factor))
            .map(String::from)
            .collect();
        assert_eq!(names, ["password", "passkey", "security_key", "push", "totp", "sms_otp", "email_otp", "recovery_code"]);
        for n in &names {
            let json = format!("{n:?}");
            assert_eq!(serde_json::to_string(&serde_json::from_str::<AuthMethod>(&json).unwrap()).unwrap(), json);
        }
        assert!(serde_json::from_str::<AuthMethod>("\"fax\"").is_err());
    }

    #[test]
    fn every_factor_has_a_key_of_its_own() {
        for k in FactorKey::ALL {
            assert_eq!(FactorKey::parse(k.as_str()), Some(k));
            assert_eq!(AuthMethod::Factor(k).factor(), Some(k));
        }
    }
}
