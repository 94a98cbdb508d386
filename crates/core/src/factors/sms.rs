//! Codes by text message to a confirmed phone number, and setting one up
//! (the number is confirmed by a code of its own purpose).

use super::otp::{CodePurpose, OtpChannel, check_code, send_code};
use super::{
    CodeDestination, Credential, ENROLLMENT_SECONDS, Enrolled, EnrollmentCheck, EnrollmentPrompt, FactorContext, FactorKey, FactorKind,
    FactorResult, MfaStore, NewCredential, PublicKeyChallenge, SecondFactor, Verification, seal_context, setup_is_live,
};
use crate::clock::UnixTime;
use crate::error::AccountError;
use crate::io::BoxFuture;
use crate::rate_limit::SlidingQuota;
use crate::sms::PhoneNumber;
use crate::user::{User, UserId};

/// The phone number of a phone credential.
fn number_of<S>(ctx: &FactorContext<'_, S>, c: &Credential) -> Option<String> {
    let bytes = ctx.sealer.open(&seal_context(&c.id), &c.sealed_secret).ok()?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// Codes by text message to a confirmed phone number. Labelled weaker: SMS can
/// be intercepted or redirected by a SIM swap (NIST SP 800-63B §5.1.3.3).
pub struct SmsCodeFactor;

impl SmsCodeFactor {
    async fn phones<S: MfaStore>(ctx: &FactorContext<'_, S>, user: UserId) -> FactorResult<Vec<Credential>> {
        Ok(ctx.store.credentials(user).await?.into_iter().filter(|c| c.kind == FactorKind::Phone).collect())
    }

    fn prompt(credential_id: String, number: &str) -> EnrollmentPrompt {
        let destination = PhoneNumber::parse(number).map(|n| n.masked()).unwrap_or_default();
        EnrollmentPrompt::CodeSent { credential_id, destination }
    }

    async fn unconfirmed<S: MfaStore>(
        ctx: &FactorContext<'_, S>,
        user: &User,
        id: &str,
        now: UnixTime,
    ) -> FactorResult<Option<(Credential, String)>> {
        let Some(c) = ctx.store.credential(user.id, id).await?.filter(|c| c.kind == FactorKind::Phone && setup_is_live(c, now)) else {
            return Ok(None);
        };
        Ok(number_of(ctx, &c).map(|n| (c, n)))
    }
}

impl<S: MfaStore> SecondFactor<S> for SmsCodeFactor {
    fn key(&self) -> FactorKey {
        FactorKey::Sms
    }

    fn enabled(&self, ctx: &FactorContext<'_, S>) -> bool {
        ctx.otp.sms_enabled
    }

    fn available(&self, _ctx: &FactorContext<'_, S>, _user: &User, enrolled: &Enrolled<'_>) -> bool {
        enrolled.credentials.iter().any(|c| c.kind == FactorKind::Phone)
    }

    fn enrolls(&self) -> &'static [FactorKind] {
        &[FactorKind::Phone]
    }

    fn begin_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        new: NewCredential,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async move {
            let number = PhoneNumber::parse(&new.destination)?;
            let mut c = Credential::new(user.id, FactorKind::Phone, new.name, Vec::new(), now);
            // The number is personal data: sealed at rest like a secret.
            c.sealed_secret = ctx.sealer.seal(&seal_context(&c.id), number.as_str().as_bytes());
            // Sent (after the cooldown and every cap, the day's numbers among
            // them) before the number is stored: a refused send adds nothing.
            let numbers_today = SlidingQuota { key: format!("phones-added:{}", user.id), cap: ctx.otp.phones_per_day, window: 86_400 };
            send_code(ctx, user, (OtpChannel::Sms, number.as_str(), Some(&c.id)), (CodePurpose::ConfirmPhone, Some(numbers_today)), now)
                .await?;
            ctx.store.insert_credential(&c).await?;
            Ok(Some(Self::prompt(c.id, number.as_str())))
        })
    }

    fn pending_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        credential_id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<EnrollmentPrompt>>> {
        Box::pin(async move { Ok(Self::unconfirmed(ctx, user, credential_id, now).await?.map(|(c, n)| Self::prompt(c.id, &n))) })
    }

    fn finish_enrollment<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        pending: &'a str,
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<EnrollmentCheck>> {
        Box::pin(async move {
            let Some((c, _)) = Self::unconfirmed(ctx, user, pending, now).await? else { return Ok(EnrollmentCheck::Unknown) };
            // Only the confirmation code sent to this very number confirms it.
            let confirming = (OtpChannel::Sms, CodePurpose::ConfirmPhone, Some(c.id.as_str()));
            if !matches!(check_code(ctx, user, confirming, response, now).await?, Verification::Accepted { .. }) {
                return Ok(EnrollmentCheck::Rejected);
            }
            Ok(if ctx.store.confirm_credential(user.id, &c.id, 0, (now, now - ENROLLMENT_SECONDS)).await? {
                EnrollmentCheck::Confirmed { id: c.id, name: c.name, kind: c.kind }
            } else {
                EnrollmentCheck::Unknown
            })
        })
    }

    fn destinations<'a>(&'a self, ctx: &'a FactorContext<'a, S>, user: &'a User) -> BoxFuture<'a, FactorResult<Vec<CodeDestination>>> {
        Box::pin(async move {
            let phones = Self::phones(ctx, user.id).await?;
            Ok(phones
                .into_iter()
                .filter_map(|c| {
                    let masked = PhoneNumber::parse(&number_of(ctx, &c)?).ok()?.masked();
                    Some(CodeDestination { id: c.id, name: c.name, masked })
                })
                .collect())
        })
    }

    fn challenge<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        to: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<PublicKeyChallenge>>> {
        Box::pin(async move {
            // The number the user picked, else the first one added.
            let phones = Self::phones(ctx, user.id).await?;
            let chosen = |c: &&Credential| to.is_none_or(|id| c.id == id);
            let Some((id, number)) = phones.iter().filter(chosen).find_map(|c| Some((c.id.as_str(), number_of(ctx, c)?))) else {
                return Err(AccountError::NotFound);
            };
            send_code(ctx, user, (OtpChannel::Sms, &number, Some(id)), (CodePurpose::SignIn, None), now).await?;
            Ok(None)
        })
    }

    fn verify<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        _enrolled: &'a [Credential],
        response: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Verification>> {
        // A sign-in code, sent to one of the user's confirmed numbers (the store checks both).
        Box::pin(check_code(ctx, user, (OtpChannel::Sms, CodePurpose::SignIn, None), response, now))
    }
}
