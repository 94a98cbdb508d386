//! Time-based one-time passwords (RFC 6238) for authenticator apps: code
//! computation (totp-rs), the ±1-step check, and the `otpauth://` Key URI
//! (Google Authenticator Key Uri Format) that apps scan from a QR code.
//!
//! Verification here is pure and returns the matched time step; replay
//! protection is the store's job: it records the step with one conditional
//! `UPDATE … WHERE last_step < $step`, so a code is accepted once, even when
//! two requests race.

use data_encoding::BASE32_NOPAD;
use totp_rs::{Algorithm, Builder};

use crate::clock::UnixTime;
use crate::secrets::{constant_time_eq, random_bytes};

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;
/// Steps accepted on either side of now (clock drift, slow typing).
pub const SKEW_STEPS: i64 = 1;

/// A fresh 160-bit secret (RFC 4226 §4 recommends 160 bits).
pub fn generate_secret() -> [u8; 20] {
    random_bytes::<20>()
}

/// The secret as people type it: base32 without padding, in groups of four.
pub fn display_secret(secret: &[u8]) -> String {
    let b32 = BASE32_NOPAD.encode(secret);
    b32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// The code for a time step.
pub fn code_at_step(secret: &[u8], step: i64, digits: u8) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_step_duration(STEP_SECONDS as u64)
        .with_skew(0)
        .with_secret(secret.to_vec())
        .build_noncompliant();
    totp.generate(u64::try_from(step.max(0)).unwrap_or(0) * STEP_SECONDS as u64).to_string()
}

/// The time step containing `now`.
pub fn step_at(now: UnixTime) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// If `code` is valid within ±[`SKEW_STEPS`] of `now`, the step it belongs to.
/// Every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in (current - SKEW_STEPS)..=(current + SKEW_STEPS) {
        if constant_time_eq(code_at_step(secret, step, DIGITS).as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30` URI.
pub fn key_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| url_escape(s);
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        BASE32_NOPAD.encode(secret),
        enc(issuer)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `:` and spaces in names are safe).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Authenticator apps at sign-in.
pub struct TotpFactor;

use super::seal_context;

impl TotpFactor {
    fn prompt(ctx_issuer: &str, user: &crate::user::User, credential_id: String, secret: &[u8]) -> super::EnrollmentPrompt {
        super::EnrollmentPrompt::SharedSecret(super::SharedSecretPrompt {
            credential_id,
            secret: display_secret(secret),
            uri: key_uri(ctx_issuer, user.email.as_str(), secret),
        })
    }

    /// An unconfirmed TOTP credential of `user`, still within its setup time, and its opened secret.
    async fn unconfirmed<S: super::MfaStore>(
        ctx: &super::FactorContext<'_, S>,
        user: &crate::user::User,
        id: &str,
        now: UnixTime,
    ) -> crate::io::StoreResult<Option<(super::Credential, zeroize::Zeroizing<Vec<u8>>)>> {
        let Some(c) =
            ctx.store.credential(user.id, id).await?.filter(|c| super::setup_is_live(c, now) && c.kind == super::FactorKind::Totp)
        else {
            return Ok(None);
        };
        Ok(ctx.sealer.open(&seal_context(&c.id), &c.sealed_secret).ok().map(|secret| (c, secret)))
    }
}

impl<S: super::MfaStore> super::SecondFactor<S> for TotpFactor {
    fn enrolls(&self) -> &'static [super::FactorKind] {
        &[super::FactorKind::Totp]
    }

    fn begin_enrollment<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        user: &'a crate::user::User,
        new: super::NewCredential,
        now: UnixTime,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<Option<super::EnrollmentPrompt>>> {
        Box::pin(async move {
            let secret = generate_secret();
            let mut credential = super::Credential::new(user.id, super::FactorKind::Totp, new.name, Vec::new(), now);
            credential.sealed_secret = ctx.sealer.seal(&seal_context(&credential.id), &secret);
            ctx.store.insert_credential(&credential).await?;
            Ok(Some(Self::prompt(ctx.issuer, user, credential.id, &secret)))
        })
    }

    fn pending_enrollment<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        user: &'a crate::user::User,
        credential_id: &'a str,
        now: UnixTime,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<Option<super::EnrollmentPrompt>>> {
        Box::pin(async move {
            Ok(Self::unconfirmed(ctx, user, credential_id, now).await?.map(|(c, secret)| Self::prompt(ctx.issuer, user, c.id, &secret)))
        })
    }

    fn finish_enrollment<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        user: &'a crate::user::User,
        credential_id: &'a str,
        response: &'a str,
        now: UnixTime,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<super::EnrollmentCheck>> {
        Box::pin(async move {
            let Some((c, secret)) = Self::unconfirmed(ctx, user, credential_id, now).await? else {
                return Ok(super::EnrollmentCheck::Unknown);
            };
            let Some(step) = matching_step(&secret, response, now) else { return Ok(super::EnrollmentCheck::Rejected) };
            // The confirming step counts as used, so the same code cannot sign in right after.
            Ok(if ctx.store.confirm_credential(user.id, &c.id, step, (now, now - super::ENROLLMENT_SECONDS)).await? {
                super::EnrollmentCheck::Confirmed { id: c.id, name: c.name, kind: c.kind }
            } else {
                super::EnrollmentCheck::Unknown
            })
        })
    }

    fn key(&self) -> super::FactorKey {
        super::FactorKey::Totp
    }

    fn enabled(&self, ctx: &super::FactorContext<'_, S>) -> bool {
        ctx.totp_enabled
    }

    fn available(&self, _ctx: &super::FactorContext<'_, S>, _user: &crate::user::User, enrolled: &super::Enrolled<'_>) -> bool {
        enrolled.credentials.iter().any(|c| c.kind == super::FactorKind::Totp)
    }

    fn verify<'a>(
        &'a self,
        ctx: &'a super::FactorContext<'a, S>,
        _user: &'a crate::user::User,
        enrolled: &'a [super::Credential],
        response: &'a str,
        now: UnixTime,
    ) -> crate::io::BoxFuture<'a, super::FactorResult<super::Verification>> {
        Box::pin(async move {
            for c in enrolled.iter().filter(|c| c.kind == super::FactorKind::Totp) {
                let Ok(secret) = ctx.sealer.open(&seal_context(&c.id), &c.sealed_secret) else {
                    tracing::error!(credential = %c.id, "TOTP secret cannot be decrypted");
                    continue;
                };
                if let Some(step) = matching_step(&secret, response, now) {
                    // Right code for this device: accepted only if this step was never used.
                    return Ok(if ctx.store.consume_totp_step(&c.id, step, now).await? {
                        super::Verification::Accepted { credential: Some(c.id.clone()) }
                    } else {
                        super::Verification::Rejected
                    });
                }
            }
            Ok(super::Verification::Rejected)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        for (time, code) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at_step(RFC_SECRET, step_at(time), 8), code, "T={time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        // HOTP is TOTP with the counter as the step.
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at_step(RFC_SECRET, counter as i64, 6), *code, "counter {counter}");
        }
    }

    #[test]
    fn codes_match_within_one_step_and_report_it() {
        let secret = generate_secret();
        let now = 1_700_000_015;
        let here = step_at(now);
        assert_eq!(matching_step(&secret, &code_at_step(&secret, here, 6), now), Some(here));
        assert_eq!(matching_step(&secret, &code_at_step(&secret, here - 1, 6), now), Some(here - 1));
        assert_eq!(matching_step(&secret, &code_at_step(&secret, here + 1, 6), now), Some(here + 1));
        assert_eq!(matching_step(&secret, &code_at_step(&secret, here - 2, 6), now), None);
        let spaced = code_at_step(&secret, here, 6);
        assert_eq!(matching_step(&secret, &format!("{} {}", &spaced[..3], &spaced[3..]), now), Some(here), "spaces are ignored");
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn key_uri_follows_the_key_uri_format() {
        let uri = key_uri("Portcullis", "ada@example.com", RFC_SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/Portcullis:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portcullis&algorithm=SHA1&digits=6&period=30"
        );
        assert!(key_uri("Acme Corp", "a:b", RFC_SECRET).starts_with("otpauth://totp/Acme%20Corp:a%3Ab?"));
        assert_eq!(display_secret(RFC_SECRET), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
    }
}
