//! The machine without HTTP or a database: rule × application policy ×
//! enrolled factors × which route is called, and whether the transition is
//! allowed. Each row names the case it checks.

use super::*;
use crate::oauth::MfaPolicy;
use crate::session::AuthEvent;

const NOW: UnixTime = 1_700_000_000;

fn password() -> AuthRecord {
    AuthRecord::single(AuthMethod::Password, NOW)
}

fn operator() -> OperatorFactors {
    OperatorFactors { enabled: FactorKey::ALL.to_vec(), enrollable: FactorKind::ALL.to_vec(), email_counts: true }
}

/// An account with these usable factors (a verified address makes `email` usable).
fn account(usable: &[FactorKey]) -> AccountFactors {
    let has_credential = usable.iter().any(|k| !matches!(k, FactorKey::Email | FactorKey::Recovery));
    AccountFactors { usable: usable.to_vec(), has_credential, mfa_required: false }
}

fn facts<'a>(using: SessionUse<'a>, account: &AccountFactors) -> DemandFacts<'a> {
    DemandFacts {
        using,
        has_credential: account.has_credential,
        mfa_required: account.mfa_required,
        email_blocked: false,
        email_counts: true,
    }
}

/// What a password sign-in leads to: `None` a session at once, else the pending sign-in.
fn after_password(rule: Option<RuleAction>, using: SessionUse<'_>, account: &AccountFactors) -> Result<Option<PendingSignIn>, String> {
    let wanted = demand(rule, facts(using, account)).map_err(|()| "denied".to_owned())?;
    let Some(wanted) = wanted.filter(|d| !d.met_by(&password(), NOW)) else { return Ok(None) };
    let waiting = plan(&wanted, &password(), account, &operator(), NOW).map_err(|r| format!("{r:?}"))?;
    Ok(Some(PendingSignIn {
        user_id: UserId::new(),
        auth: password(),
        purpose: Purpose::NewSession,
        demand: wanted,
        waiting,
        client_id: None,
        assessment: serde_json::Value::Null,
        answers: 0,
        security_epoch: 0,
        created_at: NOW,
        expires_at: NOW + PENDING_SIGN_IN_SECONDS,
    }))
}

const TOTP: Step = Step::Factor(FactorKey::Totp);
const KEY: Step = Step::Factor(FactorKey::Webauthn);
const EMAIL: Step = Step::Factor(FactorKey::Email);
const SMS: Step = Step::Factor(FactorKey::Sms);
const RECOVERY: Step = Step::Factor(FactorKey::Recovery);

#[test]
fn every_route_is_allowed_only_where_the_pending_sign_in_waits_for_it() {
    use FactorKey as K;
    use Transition as T;
    let only_keys = ClientPolicy { allowed_factors: vec!["webauthn".into()], ..ClientPolicy::default() };
    let keys_required = ClientPolicy { mfa: MfaPolicy::Required, ..only_keys.clone() };
    let keys_app = SessionUse::Client { id: "app", policy: &keys_required, acceptable_acr: &[ACR_MFA] };
    let required = ClientPolicy { mfa: MfaPolicy::Required, ..ClientPolicy::default() };
    let app = |policy| SessionUse::Client { id: "app", policy, acceptable_acr: &[] };
    let strict = SessionUse::Client { id: "app", policy: &required, acceptable_acr: &[ACR_MFA] };
    let enroll_app = T::FinishEnrollment(FactorKind::Totp);
    // (case, rule, use, the user's factors, route, allowed)
    type Case<'a> = (&'a str, Option<RuleAction>, SessionUse<'a>, Vec<K>, Transition, bool);
    let cases: Vec<Case<'_>> = vec![
        // Attack 1: a password alone must not finish through inline enrollment.
        ("app user, password only: enrollment refused", None, SessionUse::OwnPages, vec![K::Totp, K::Recovery], enroll_app, false),
        ("app user: the app's code finishes", None, SessionUse::OwnPages, vec![K::Totp, K::Recovery], T::Answer(TOTP), true),
        ("app user: a recovery code finishes", None, SessionUse::OwnPages, vec![K::Totp, K::Recovery], T::Answer(RECOVERY), true),
        ("app user: a passkey was never offered", None, SessionUse::OwnPages, vec![K::Totp], T::Challenge(K::Webauthn), false),
        ("app user: no enrollment page", None, SessionUse::OwnPages, vec![K::Totp], T::ShowEnrollment, false),
        // Attack 3: email is a fallback, not the only factor.
        (
            "app user with a verified address: email is a fallback",
            None,
            SessionUse::OwnPages,
            vec![K::Totp, K::Email],
            T::Challenge(K::Email),
            true,
        ),
        ("no factor, application wants mfa: enroll an app", None, strict, vec![], enroll_app, true),
        ("no factor, application wants mfa: or a phone", None, strict, vec![], T::BeginEnrollment(FactorKind::Phone), true),
        ("no factor, application wants mfa: or a passkey", None, strict, vec![], T::BeginEnrollment(FactorKind::Passkey), true),
        ("no factor, required mfa, email allowed alone: email too", None, strict, vec![K::Email], T::Answer(EMAIL), true),
        // Client policies: what the application does not count is not offered.
        ("keys-only application: the app's code is refused", None, keys_app, vec![K::Totp, K::Webauthn], T::Answer(TOTP), false),
        ("keys-only application: a key finishes", None, keys_app, vec![K::Totp, K::Webauthn], T::Answer(KEY), true),
        // An application that asks for nothing leaves the account's own second step alone (its tokens say what counted).
        ("optional keys-only application: the app's code", None, app(&only_keys), vec![K::Totp], T::Answer(TOTP), true),
        ("keys-only application: recovery codes do not count", None, keys_app, vec![K::Webauthn, K::Recovery], T::Answer(RECOVERY), false),
        // Rules.
        ("require_mfa, no factor: enroll", Some(RuleAction::RequireMfa), SessionUse::OwnPages, vec![], enroll_app, true),
        (
            "phishing-resistant rule: codes refused",
            Some(RuleAction::RequirePhishingResistant),
            SessionUse::OwnPages,
            vec![K::Totp, K::Webauthn],
            T::Answer(TOTP),
            false,
        ),
        (
            "phishing-resistant rule: a key finishes",
            Some(RuleAction::RequirePhishingResistant),
            SessionUse::OwnPages,
            vec![K::Totp, K::Webauthn],
            T::Answer(KEY),
            true,
        ),
        (
            "phishing-resistant rule: recovery codes refused",
            Some(RuleAction::RequirePhishingResistant),
            SessionUse::OwnPages,
            vec![K::Webauthn, K::Recovery],
            T::Answer(RECOVERY),
            false,
        ),
        ("phone user: a texted code finishes", None, SessionUse::OwnPages, vec![K::Sms], T::Challenge(K::Sms), true),
        ("phone user: no password step after a password", None, SessionUse::OwnPages, vec![K::Sms], T::Answer(Step::Password), false),
    ];
    for (case, rule, using, usable, route, allowed) in cases {
        let pending = after_password(rule, using, &account(&usable)).unwrap_or_else(|e| panic!("{case}: {e}"));
        let pending = pending.unwrap_or_else(|| panic!("{case}: signed in without a second step"));
        assert_eq!(pending.permits(route), allowed, "{case}: {route:?} from {:?}", pending.waiting);
    }
}

#[test]
fn the_first_step_alone_is_enough_only_where_nothing_asks_for_more() {
    use FactorKey as K;
    let required = ClientPolicy { mfa: MfaPolicy::Required, ..ClientPolicy::default() };
    let app = SessionUse::Client { id: "app", policy: &required, acceptable_acr: &[ACR_MFA] };
    let plain = ClientPolicy::default();
    let plain_app = SessionUse::Client { id: "app", policy: &plain, acceptable_acr: &[] };
    // (case, rule, use, factors, signed in at once)
    type Case<'a> = (&'a str, Option<RuleAction>, SessionUse<'a>, Vec<K>, bool);
    let cases: Vec<Case<'_>> = vec![
        ("no factor, nothing asked", None, SessionUse::OwnPages, vec![], true),
        ("no factor, an optional application", None, plain_app, vec![], true),
        ("a factor: asked for it", None, SessionUse::OwnPages, vec![K::Totp], false),
        ("a factor, an optional application: asked for it", None, plain_app, vec![K::Totp], false),
        ("office rule: one step", Some(RuleAction::AllowSingleFactor), SessionUse::OwnPages, vec![K::Totp], true),
        ("office rule, application requires mfa: the application wins", Some(RuleAction::AllowSingleFactor), app, vec![K::Totp], false),
        ("no factor, application requires mfa", None, app, vec![], false),
    ];
    for (case, rule, using, usable, at_once) in cases {
        let outcome = after_password(rule, using, &account(&usable)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(outcome.is_none(), at_once, "{case}");
    }
    let denied = after_password(Some(RuleAction::Deny), SessionUse::OwnPages, &account(&[K::Totp]));
    assert_eq!(denied.err().as_deref(), Some("denied"), "a deny rule refuses whatever the account has");
}

#[test]
fn nothing_acceptable_is_refused_with_what_to_add_never_a_loop() {
    use FactorKey as K;
    let only_keys = ClientPolicy { allowed_factors: vec!["webauthn".into()], mfa: MfaPolicy::Required, ..ClientPolicy::default() };
    let vault = SessionUse::Client { id: "vault", policy: &only_keys, acceptable_acr: &[ACR_MFA] };
    let phr = Some(RuleAction::RequirePhishingResistant);
    assert_eq!(after_password(None, vault, &account(&[K::Totp])).err().as_deref(), Some("OnlyFactors([Webauthn])"));
    assert_eq!(after_password(phr, SessionUse::OwnPages, &account(&[K::Totp])).err().as_deref(), Some("PhishingResistantFactorNeeded"));
    // No inline enrollment toward a phishing-resistant demand: whoever has the password could register a key.
    assert_eq!(after_password(phr, SessionUse::OwnPages, &account(&[])).err().as_deref(), Some("PhishingResistantFactorNeeded"));
    let nothing = OperatorFactors { enabled: vec![K::Email, K::Recovery], enrollable: vec![], email_counts: true };
    let d = Demand::of(Level::Mfa);
    assert_eq!(plan(&d, &password(), &account(&[]), &nothing, NOW), Err(Refusal::NothingToEnroll));
    // A passkey first step for an application that counts only apps and wants phr: the password
    // would help, but nothing could ever finish it, so it is refused rather than offered.
    let odd = ClientPolicy { allowed_factors: vec!["totp".into()], ..ClientPolicy::default() };
    let d = Demand { client: Some(odd), ..Demand::of(Level::PhishingResistant) };
    let passkey = AuthRecord::single(AuthMethod::Passkey, NOW);
    assert!(plan(&d, &passkey, &account(&[K::Totp, K::Webauthn]), &operator(), NOW).is_err());
}

#[test]
fn steps_are_offered_strongest_first_and_email_only_as_a_fallback() {
    use FactorKey as K;
    let d = Demand::of(Level::Mfa);
    let everything = account(&[K::Recovery, K::Email, K::Sms, K::Totp, K::Webauthn]);
    let w = plan(&d, &password(), &everything, &operator(), NOW).unwrap();
    assert_eq!(w.steps, vec![KEY, TOTP, SMS, EMAIL, RECOVERY], "keys, app, phone, email, recovery codes");
    assert!(w.enroll.is_empty(), "an account with a factor never enrolls inline");
    let admin = demand(None, facts(SessionUse::Admin, &everything)).unwrap().unwrap();
    let w = plan(&admin, &password(), &everything, &operator(), NOW).unwrap();
    assert!(!w.steps.contains(&EMAIL), "the admin console's step-up takes no emailed code: {w:?}");
    let reset = DemandFacts { email_blocked: true, ..facts(SessionUse::OwnPages, &everything) };
    let w = plan(&demand(None, reset).unwrap().unwrap(), &password(), &everything, &operator(), NOW).unwrap();
    assert!(!w.steps.contains(&EMAIL), "nor a sign-in whose password a reset link set recently");
    let nist = OperatorFactors { email_counts: false, ..operator() };
    let w = plan(&d, &password(), &everything, &nist, NOW).unwrap();
    assert!(!w.steps.contains(&EMAIL), "an emailed code that is not a factor cannot make a sign-in multi-factor");
}

#[test]
fn a_sign_in_begun_with_an_emailed_code_needs_the_password_and_a_phishing_resistant_one_both() {
    use FactorKey as K;
    let emailed = AuthRecord::single(AuthMethod::EMAIL_OTP, NOW);
    let user = account(&[K::Totp, K::Webauthn, K::Email]);
    let w = plan(&Demand::of(Level::Mfa), &emailed, &user, &operator(), NOW).unwrap();
    assert_eq!(w.steps, vec![Step::Password], "another possession factor would not make it multi-factor");
    let w = plan(&Demand::of(Level::PhishingResistant), &emailed, &user, &operator(), NOW).unwrap();
    assert_eq!(w.steps, vec![Step::Password, KEY], "both are missing: either first, then the other");
    let after_password = emailed.with(AuthMethod::Password, NOW);
    let w = plan(&Demand::of(Level::PhishingResistant), &after_password, &user, &operator(), NOW).unwrap();
    assert_eq!(w.steps, vec![KEY]);
    assert!(Demand::of(Level::PhishingResistant).met_by(&after_password.with(AuthMethod::SECURITY_KEY, NOW), NOW));
}

#[test]
fn what_counts_follows_the_application_and_the_admin_console() {
    let mut remembered = password();
    remembered.events.push(AuthEvent { remembered: true, ..AuthEvent::performed(AuthMethod::TOTP, NOW - 86_400) });
    assert!(Demand::of(Level::Mfa).met_by(&remembered, NOW), "a remembered browser stands in for the app");
    let no_remember = ClientPolicy { allow_remember: false, ..ClientPolicy::default() };
    let bank = Demand { client: Some(no_remember), ..Demand::of(Level::Mfa) };
    assert!(!bank.met_by(&remembered, NOW), "unless the application refuses remembered browsers");
    let w = plan(&bank, &remembered, &account(&[FactorKey::Totp]), &operator(), NOW).unwrap();
    assert_eq!(w.steps, vec![TOTP], "then the app's code is asked for afresh");
    let admin = Demand { no_email: true, no_remembered: true, ..Demand::of(Level::Mfa) };
    assert!(!admin.met_by(&remembered, NOW));
    assert!(!admin.met_by(&password().with(AuthMethod::EMAIL_OTP, NOW), NOW), "an emailed code does not open the console");
    assert!(admin.met_by(&password().with(AuthMethod::TOTP, NOW), NOW));
    // Attack 5: a keys-only application does not count an app's code, so no `mfa` is claimed for it.
    let keys_only = Demand {
        client: Some(ClientPolicy { allowed_factors: vec!["webauthn".into()], ..ClientPolicy::default() }),
        ..Demand::of(Level::Mfa)
    };
    let with_app = password().with(AuthMethod::TOTP, NOW);
    assert!(!keys_only.met_by(&with_app, NOW));
    assert_eq!(keys_only.counted(&with_app, NOW).amr(), vec!["pwd"]);
}

#[test]
fn an_emailed_code_the_operator_does_not_count_gives_otp_without_mfa() {
    let weak = AuthEvent { not_a_factor: true, ..AuthEvent::performed(AuthMethod::EMAIL_OTP, NOW) };
    let record = password().with_event(weak);
    assert_eq!(record.amr(), vec!["pwd", "otp"]);
    assert_eq!(record.acr(), None);
    let counted = password().with(AuthMethod::EMAIL_OTP, NOW);
    assert_eq!((counted.amr(), counted.acr()), (vec!["pwd", "otp", "mfa"], Some("mfa")), "the default counts it");
}

#[test]
fn demands_only_rise_above_the_rule() {
    let none = account(&[]);
    let phr_app = ClientPolicy { min_acr: Some("phr".into()), ..ClientPolicy::default() };
    let vault = SessionUse::Client { id: "vault", policy: &phr_app, acceptable_acr: &[ACR_PHR] };
    let d = demand(Some(RuleAction::AllowSingleFactor), facts(vault, &none)).unwrap().unwrap();
    assert_eq!(d.level, Level::PhishingResistant, "a rule cannot lower what the application asks");
    let d = demand(Some(RuleAction::RequirePhishingResistant), facts(SessionUse::Admin, &none)).unwrap().unwrap();
    assert_eq!((d.level, d.no_email, d.no_remembered), (Level::PhishingResistant, true, true));
    let required = AccountFactors { mfa_required: true, ..none.clone() };
    let d = demand(Some(RuleAction::AllowSingleFactor), facts(SessionUse::OwnPages, &required)).unwrap();
    assert_eq!(d.map(|d| d.level), Some(Level::Mfa), "an account that must use MFA without a factor still sets one up");
    assert_eq!(demand(None, facts(SessionUse::OwnPages, &none)), Ok(None));
}

#[test]
fn steps_round_trip_through_their_form_keys_and_stored_states() {
    for step in [Step::Password, TOTP, KEY, SMS, EMAIL, RECOVERY] {
        assert_eq!(Step::parse(step.as_str()), Some(step));
    }
    assert_eq!(Step::parse("fax"), None);
    let w = Waiting { steps: vec![Step::Password, KEY], enroll: vec![FactorKind::Passkey] };
    let json = serde_json::to_string(&w).unwrap();
    assert_eq!(serde_json::from_str::<Waiting>(&json).unwrap(), w);
}
