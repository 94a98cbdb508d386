//! The admin console's MFA dashboard: second-factor adoption among active
//! accounts, sign-ins by method per day, and the accounts locked now.

use serde_json::Value;

use crate::account_store::FactorAdoption;
use crate::clock::UnixTime;

/// Days the dashboard looks back; an account is active when it signed in within them.
pub const DAYS: i64 = 30;
/// At most this many sign-ins are read for the chart (the newest): each is
/// parsed here, so this bounds the page's memory (some tens of MB).
pub const MAX_SIGN_INS: u32 = 50_000;
/// At most this many current locks are listed.
pub const MAX_LOCKS: u32 = 100;

/// What the dashboard shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaDashboard {
    /// Adoption among accounts that signed in during the last [`DAYS`].
    pub active: FactorAdoption,
    /// How each sign-in proved who it was (`password`, `password + totp`,
    /// `passkey`, …), most used first.
    pub methods: Vec<String>,
    /// One entry per day, oldest first, ending today (UTC).
    pub days: Vec<DaySignIns>,
    /// More sign-ins happened than were read: the oldest days are incomplete.
    pub truncated: bool,
    /// Accounts locked now after failures, the longest lock first.
    pub locks: Vec<CurrentLock>,
}

/// One day's sign-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySignIns {
    /// The day's start (UTC midnight).
    pub start: UnixTime,
    /// Sign-ins by method, in the order of [`MfaDashboard::methods`].
    pub counts: Vec<u64>,
}

/// An account locked after failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLock {
    /// Its email address.
    pub email: String,
    /// Locked for wrong second-step answers (else wrong passwords).
    pub second_step: bool,
    /// Until when.
    pub until: UnixTime,
}

/// How one finished sign-in proved who it was, from its audit detail: its
/// steps (`password + totp`); events written before steps were recorded
/// show their `amr` values. Step-ups are not sign-ins.
fn method_of(detail: &Value) -> Option<String> {
    if detail.get("step_up").is_some_and(|s| s == true) {
        return None;
    }
    let words = |field: &str| -> Option<Vec<String>> {
        let list = detail.get(field)?.as_array()?;
        Some(list.iter().filter_map(|v| v.as_str()).filter(|v| *v != "mfa").map(str::to_owned).collect())
    };
    let steps = words("steps").or_else(|| words("methods"))?;
    (!steps.is_empty()).then(|| steps.join(" + "))
}

/// Sign-ins per day and method over the [`DAYS`] ending today.
pub fn sign_ins_by_day(sign_ins: &[(UnixTime, String)], now: UnixTime) -> (Vec<String>, Vec<DaySignIns>) {
    let today = now.div_euclid(86_400) * 86_400;
    let first = today - (DAYS - 1) * 86_400;
    let mut methods: Vec<(String, u64)> = Vec::new();
    let mut per_day: Vec<Vec<(usize, u64)>> = vec![Vec::new(); DAYS as usize];
    for (at, detail) in sign_ins {
        let Some(method) = serde_json::from_str(detail).ok().and_then(|d: Value| method_of(&d)) else { continue };
        if *at < first || *at >= today + 86_400 {
            continue;
        }
        let m = match methods.iter().position(|(name, _)| *name == method) {
            Some(m) => m,
            None => {
                methods.push((method, 0));
                methods.len() - 1
            }
        };
        methods[m].1 += 1;
        let day = &mut per_day[usize::try_from((at - first) / 86_400).unwrap_or(0)];
        match day.iter_mut().find(|(i, _)| *i == m) {
            Some((_, n)) => *n += 1,
            None => day.push((m, 1)),
        }
    }
    // Most used first; the order decides the colours and the legend.
    let mut order: Vec<usize> = (0..methods.len()).collect();
    order.sort_by(|a, b| methods[*b].1.cmp(&methods[*a].1).then_with(|| methods[*a].0.cmp(&methods[*b].0)));
    let days = per_day
        .into_iter()
        .enumerate()
        .map(|(d, counts)| DaySignIns {
            start: first + d as i64 * 86_400,
            counts: order.iter().map(|m| counts.iter().find(|(i, _)| i == m).map_or(0, |(_, n)| *n)).collect(),
        })
        .collect();
    (order.into_iter().map(|m| methods[m].0.clone()).collect(), days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_ins_are_counted_per_day_and_method_most_used_first() {
        let now = 100 * 86_400 + 3_600;
        let today = 100 * 86_400;
        let events = vec![
            (today + 10, json!({ "methods": ["pwd", "otp", "mfa"], "steps": ["password", "totp"] })),
            (today + 20, json!({ "methods": ["pwd"], "steps": ["password"] })),
            (today - 86_400, json!({ "steps": ["password", "totp"] })),
            (today - 86_400, json!({ "steps": ["password", "totp"] })),
            // Before steps were recorded: the amr values.
            (today - 2 * 86_400, json!({ "methods": ["hwk", "user", "mfa"] })),
            // A step-up is no sign-in; 30 days ago is out of range.
            (today, json!({ "methods": ["pwd", "otp", "mfa"], "steps": ["password", "totp"], "step_up": true })),
            (today - 30 * 86_400, json!({ "steps": ["password"] })),
        ];
        let events: Vec<(UnixTime, String)> = events.into_iter().map(|(at, d)| (at, d.to_string())).collect();
        let (methods, days) = sign_ins_by_day(&events, now);
        assert_eq!(methods, ["password + totp", "hwk + user", "password"]);
        assert_eq!(days.len(), DAYS as usize);
        assert_eq!(days.last().unwrap().start, today);
        assert_eq!(days[29].counts, [1, 0, 1]);
        assert_eq!(days[28].counts, [2, 0, 0]);
        assert_eq!(days[27].counts, [0, 1, 0]);
        assert_eq!(days[0].start, today - 29 * 86_400);
        assert_eq!(days.iter().map(|d| d.counts.iter().sum::<u64>()).sum::<u64>(), 5);
    }
}
