//! What the domain counts for Prometheus, through the `metrics` facade (a
//! no-op until the binary installs a recorder, `[metrics] listen`). Every
//! metric's name and labels are written here, once; the server adds the
//! request-latency histograms and the gauges read at each scrape.

use crate::audit::{AuditKind, NewAuditEvent};
use crate::methods::AuthMethod;
use crate::session::AuthRecord;

/// Sign-ins: `first_step`, `second_factor` (empty when none) and `outcome`
/// (`succeeded`, `failed`, `denied`).
pub const SIGN_INS: &str = "portcullis_sign_ins_total";
/// Step-ups finished, by `second_factor`.
pub const STEP_UPS: &str = "portcullis_step_ups_total";
/// Accounts locked (failures, or an operator disabling one).
pub const LOCKOUTS: &str = "portcullis_lockouts_total";
/// One-time codes made to be sent, by `channel` (`email`, `sms`).
pub const CODES_SENT: &str = "portcullis_codes_sent_total";
/// Codes refused by a cap, by `channel` and `reason` (`cooldown`, `cap`).
pub const CODES_REFUSED: &str = "portcullis_codes_refused_total";

/// The name of a method as a label value.
fn name(m: Option<AuthMethod>) -> &'static str {
    m.map(AuthMethod::as_str).unwrap_or("")
}

/// A sign-in (or a step-up) that finished with `auth`.
pub fn sign_in_finished(auth: &AuthRecord, step_up: bool) {
    let first = auth.events.first().map(|e| e.method);
    let second = auth.events.iter().skip(1).map(|e| e.method).next_back();
    if step_up {
        metrics::counter!(STEP_UPS, "second_factor" => name(auth.events.last().map(|e| e.method))).increment(1);
    } else {
        metrics::counter!(SIGN_INS, "first_step" => name(first), "second_factor" => name(second), "outcome" => "succeeded").increment(1);
    }
}

/// Counts what an audit event says about sign-ins: failures (by the method
/// that failed), refusals by a rule, lockouts.
pub fn audited(event: &NewAuditEvent) {
    match event.kind {
        AuditKind::SignInFailed => {
            let text = |field: &str| event.detail.get(field).and_then(|m| m.as_str()).unwrap_or("").to_owned();
            let (first, second) = if event.detail.get("second_step").is_some_and(|s| s == true) {
                ("", name(AuthMethod::try_from(text("factor")).ok()))
            } else {
                // A first step's failure names its `amr` value.
                let first = match text("method").as_str() {
                    "pwd" => AuthMethod::Password.as_str(),
                    "hwk" => AuthMethod::Passkey.as_str(),
                    "otp" => AuthMethod::EMAIL_OTP.as_str(),
                    _ => "",
                };
                (first, "")
            };
            metrics::counter!(SIGN_INS, "first_step" => first, "second_factor" => second, "outcome" => "failed").increment(1);
        }
        AuditKind::SignInDenied => {
            metrics::counter!(SIGN_INS, "first_step" => "", "second_factor" => "", "outcome" => "denied").increment(1);
        }
        AuditKind::AccountLocked => metrics::counter!(LOCKOUTS).increment(1),
        _ => {}
    }
}

/// A code sent on `channel`.
pub fn code_sent(channel: &'static str) {
    metrics::counter!(CODES_SENT, "channel" => channel).increment(1);
}

/// A code refused on `channel` for `reason`.
pub fn code_refused(channel: &'static str, reason: &'static str) {
    metrics::counter!(CODES_REFUSED, "channel" => channel, "reason" => reason).increment(1);
}
