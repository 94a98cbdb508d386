//! Recovery codes: ten single-use codes shown once. Each is 50 random bits in
//! the form `xxxxx-xxxxx` (base32, no look-alike ambiguity once upper-cased)
//! and stored only as an HMAC under a server key, so a database leak alone
//! does not let anyone test guesses offline; a code is looked up by that tag
//! and spent by one conditional `UPDATE`.

use data_encoding::BASE32_NOPAD;

use crate::secrets::{MacKey, random_bytes};

/// Codes per set.
pub const CODES_PER_SET: usize = 10;

/// A fresh set of codes, as shown to the user.
pub fn generate_set() -> Vec<String> {
    (0..CODES_PER_SET)
        .map(|_| {
            let raw = BASE32_NOPAD.encode(&random_bytes::<7>()).to_lowercase();
            format!("{}-{}", &raw[..5], &raw[5..10])
        })
        .collect()
}

/// Canonical form of a typed code: lower case, without spaces and dashes.
pub fn normalise(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// The stored tag of a code.
pub fn tag(key: &MacKey, code: &str) -> String {
    key.tag("recovery-code", normalise(code).as_bytes())
}

/// Recovery codes at sign-in (the fallback, offered last).
pub struct RecoveryCodeFactor;

impl<S: super::MfaStore> super::SecondFactor<S> for RecoveryCodeFactor {
    fn key(&self) -> super::FactorKey {
        super::FactorKey::Recovery
    }

    // Always: they are how an account without its devices gets back in.
    fn enabled(&self, _ctx: &super::FactorContext<'_, S>) -> bool {
        true
    }

    fn available(&self, _ctx: &super::FactorContext<'_, S>, _user: &crate::user::User, enrolled: &super::Enrolled<'_>) -> bool {
        // Recovery codes are not credentials: they have their own table.
        enrolled.recovery_codes_left > 0
    }

    fn verify<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        user: &'a crate::user::User,
        _enrolled: &'a [super::Credential],
        response: &'a str,
        now: crate::clock::UnixTime,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<super::Verification>> {
        Box::pin(async move { Ok(ctx.store.consume_recovery_code(user.id, &tag(ctx.recovery_key, response), now).await?.into()) })
    }

    // A used code may mean someone else has the list: the owner hears of each one.
    fn after_success<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        user: &'a crate::user::User,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<Option<super::SuccessNotice>>> {
        Box::pin(async move {
            let left = ctx.store.recovery_codes_left(user.id).await?;
            Ok(Some(super::SuccessNotice {
                audit: crate::audit::AuditKind::RecoveryCodeUsed,
                detail: serde_json::json!({ "left": left }),
                message: crate::messages::Message::RecoveryCodeUsed { left },
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_ten_distinct_well_formed_codes() {
        let set = generate_set();
        assert_eq!(set.len(), 10);
        let mut unique = set.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(set.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    }

    #[test]
    fn typing_variations_give_the_same_tag() {
        let key = MacKey::new([5; 32]);
        assert_eq!(tag(&key, "abcde-fghij"), tag(&key, " ABCDE FGHIJ "));
        assert_ne!(tag(&key, "abcde-fghij"), tag(&key, "abcde-fghik"));
        assert_ne!(tag(&key, "abcde-fghij"), tag(&MacKey::new([6; 32]), "abcde-fghij"));
    }
}
