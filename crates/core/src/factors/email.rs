//! Codes by email to the account's verified address: a second factor only
//! beside another one by default (`email_requires_other_factor`), and the
//! first step of an emailed-code sign-in.

use super::otp::{CodePurpose, OtpChannel, check_code, issue_code, send_code};
use super::{Credential, Enrolled, FactorContext, FactorKey, FactorResult, MfaStore, PublicKeyChallenge, SecondFactor, Verification};
use crate::clock::UnixTime;
use crate::io::BoxFuture;
use crate::messages::Message;
use crate::user::User;

/// Codes sent to the account's verified email address.
pub struct EmailCodeFactor;

impl<S: MfaStore> SecondFactor<S> for EmailCodeFactor {
    fn key(&self) -> FactorKey {
        FactorKey::Email
    }

    fn enabled(&self, ctx: &FactorContext<'_, S>) -> bool {
        ctx.otp.email_enabled
    }

    fn available(&self, ctx: &FactorContext<'_, S>, user: &User, enrolled: &Enrolled<'_>) -> bool {
        // "Only with another factor": email alone is too close to the password's reset channel.
        user.email_verified_at.is_some()
            && (!ctx.otp.email_requires_other_factor || enrolled.credentials.iter().any(|c| c.flagged_at.is_none()))
    }

    fn challenge<'a>(
        &'a self,
        ctx: &'a FactorContext<'a, S>,
        user: &'a User,
        _to: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, FactorResult<Option<PublicKeyChallenge>>> {
        Box::pin(async move {
            send_code(ctx, user, (OtpChannel::Email, user.email.as_str(), None), (CodePurpose::SignIn, None), now).await?;
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
        Box::pin(check_code(ctx, user, (OtpChannel::Email, CodePurpose::SignIn, None), response, now))
    }
}

/// Makes a sign-in code for the account's address without sending it (the
/// first step of a sign-in by emailed code queues it: see
/// `SignIn::send_email_code`); the message to send.
pub(crate) async fn issue_sign_in_code<S: MfaStore>(ctx: &FactorContext<'_, S>, user: &User, now: UnixTime) -> FactorResult<Message> {
    issue_code(ctx, user, (OtpChannel::Email, user.email.as_str(), None), (CodePurpose::FirstStep, None), now).await
}

/// Checks the code of a sign-in by emailed code (one made by [`issue_sign_in_code`];
/// a second-step code does not open a first step, nor the other way round).
pub(crate) async fn check_sign_in_code<S: MfaStore>(
    ctx: &FactorContext<'_, S>,
    user: &User,
    response: &str,
    now: UnixTime,
) -> FactorResult<Verification> {
    check_code(ctx, user, (OtpChannel::Email, CodePurpose::FirstStep, None), response, now).await
}
