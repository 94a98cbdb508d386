//! Adaptive sign-in rules, seen from browsers at different addresses: the
//! server trusts 127.0.0.1 as its reverse proxy, so each test "browser"
//! names its address in `X-Forwarded-For`. GeoIP comes from MaxMind's test
//! database (London 81.2.69.142, Linköping 89.160.20.113, Changchun
//! 175.16.199.1, Milton US 216.160.83.57).

use std::sync::Arc;

use portcullis::config::{Config, RuleConfig};
use portcullis_core::audit::{AuditFilter, AuditKind, AuditRecord};
use portcullis_core::policy::RuleAction;
use reqwest::StatusCode;
use reqwest::cookie::Jar;

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app_with};

const OFFICE: &str = "10.1.2.3";
const CAFE: &str = "198.51.100.7";
const LONDON: &str = "81.2.69.142";
const LINKOPING: &str = "89.160.20.113";
const CHANGCHUN: &str = "175.16.199.1";
const MILTON: &str = "216.160.83.57";

pub(crate) fn rule(name: &str, action: RuleAction) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        clients: vec![],
        roles: vec![],
        networks: vec![],
        countries: vec![],
        new_device: None,
        failures_last_hour: None,
        impossible_travel: None,
        action,
    }
}

fn geoip_database() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb");
    assert!(path.is_file(), "the GeoIP test database is missing at {}", path.display());
    path
}

/// An app behind a trusted proxy (127.0.0.1) with these rules.
async fn app_with_rules(backend: Backend, rules: Vec<RuleConfig>, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.policy.rules = rules;
        tweak(c);
    })
    .await
}

/// A browser (its own cookie jar: a device) at an address.
fn browser_at(jar: &Arc<Jar>, ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

impl TestApp {
    /// Continues in the browser `jar` from address `ip`.
    fn use_browser(&mut self, jar: &Arc<Jar>, ip: &str) {
        self.client = browser_at(jar, ip);
    }

    /// Audit events of one kind, newest first.
    pub(crate) async fn audit(&self, kind: AuditKind) -> Vec<AuditRecord> {
        let filter = AuditFilter { kind: Some(kind), limit: 100, ..AuditFilter::default() };
        self.state.accounts().operators().audit_log(&filter).await.unwrap()
    }

    /// The rule and risk recorded with the newest event of `kind`.
    async fn last_decision(&self, kind: AuditKind) -> (Option<String>, String) {
        let events = self.audit(kind).await;
        let e = events.first().unwrap_or_else(|| panic!("no {kind:?} event"));
        let a = if kind == AuditKind::SignInSucceeded { &e.detail["assessment"] } else { &e.detail };
        (a["rule"].as_str().map(str::to_owned), a["risk"].as_str().unwrap_or_default().to_owned())
    }
}

fn new_jar() -> Arc<Jar> {
    Arc::new(Jar::default())
}

async fn a_trusted_network_skips_mfa_and_an_unknown_network_requires_it(backend: Backend) {
    let office = rule("office", RuleAction::AllowSingleFactor);
    let office = RuleConfig { networks: vec!["10.0.0.0/8".into()], ..office };
    let Some(mut app) = app_with_rules(backend, vec![office, rule("elsewhere", RuleAction::RequireMfa)], |_| {}).await else {
        return;
    };
    let (desk, laptop) = (new_jar(), new_jar());
    app.use_browser(&desk, OFFICE);
    app.verified_user("ada@example.com").await;
    let signed_in = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(signed_in.location.as_deref(), Some("/account"), "the office needs no second factor");
    assert_eq!(app.last_decision(AuditKind::SignInSucceeded).await.0.as_deref(), Some("office"));

    app.use_browser(&laptop, CAFE);
    let outside = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(outside.location.unwrap().starts_with("/login/enroll"), "an unknown network requires MFA: enroll first");
    let decision = &app.audit(AuditKind::PolicyDecision).await[0];
    assert_eq!((decision.detail["outcome"].as_str(), decision.detail["assessment"]["rule"].as_str()), (Some("enroll"), Some("elsewhere")));

    app.use_browser(&desk, OFFICE);
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "still one step at the office");
    let event = &app.audit(AuditKind::SignInSucceeded).await[0];
    assert_eq!(event.detail["methods"], serde_json::json!(["pwd"]));
    assert_eq!(event.ip.as_deref(), Some(OFFICE), "the audit log names the client, not the proxy");

    app.use_browser(&laptop, CAFE);
    let outside = app.sign_in("ada@example.com", PASSWORD).await;
    let to = outside.location.unwrap();
    assert!(to.starts_with("/login/verify"), "{to}");
    let page = app.get(&to).await;
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &page.body).await;
    assert_eq!(done.location.as_deref(), Some("/account"));
    let event = &app.audit(AuditKind::SignInSucceeded).await[0];
    assert_eq!((event.detail["methods"].clone(), event.ip.as_deref()), (serde_json::json!(["pwd", "otp", "mfa"]), Some(CAFE)));
    assert_eq!(event.detail["assessment"]["rule"], "elsewhere", "the first step's decision is kept with the finished sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_trusted_network_skips_mfa_and_an_unknown_network_requires_it() {
    a_trusted_network_skips_mfa_and_an_unknown_network_requires_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_trusted_network_skips_mfa_and_an_unknown_network_requires_it() {
    a_trusted_network_skips_mfa_and_an_unknown_network_requires_it(Backend::Postgres).await;
}

/// A rule that lets the password alone in (here: from the office network)
/// lets the person in; it must not let the password alone change the
/// factors it stood in for. Otherwise whoever learns the password adds their
/// own authenticator app or takes new recovery codes at the office, then
/// signs in with them from anywhere.
async fn a_rule_that_skips_the_second_factor_does_not_let_the_password_change_factors(backend: Backend) {
    let office = RuleConfig { networks: vec!["10.0.0.0/8".into()], ..rule("office", RuleAction::AllowSingleFactor) };
    let cafe = RuleConfig { networks: vec!["198.51.100.0/24".into()], ..rule("no-cafes", RuleAction::Deny) };
    let Some(mut app) = app_with_rules(backend, vec![office, cafe], |_| {}).await else { return };
    let desk = new_jar();
    app.use_browser(&desk, OFFICE);
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;

    // The attacker: the password, at the office.
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "one step at the office");
    let account = app.get("/account").await;
    assert_eq!(account.status, StatusCode::OK, "the account page is open to the session the rule let in");
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    let factor = app.state.accounts().credentials().factors(ada.id).await.unwrap()[0].id.clone();
    let codes_before = app.state.accounts().credentials().recovery_codes_left(ada.id).await.unwrap();
    for (path, fields) in [
        ("/account/security/recovery-codes", vec![]),
        ("/account/security/totp", vec![]),
        ("/account/security/factors/remove", vec![("id", factor.as_str())]),
        ("/account/security/phone", vec![("phone", "+441632960001")]),
    ] {
        let refused = app.post(path, &fields, &account.body).await;
        let to = refused.location.clone().unwrap_or_default();
        assert!(to.starts_with("/login/verify"), "{path}: the second factor first, not {} {}", refused.status, refused.body);
        assert!(!refused.body.contains("data-testid=\"recovery-codes\"") && !refused.body.contains("otpauth://"), "{path}");
    }
    assert_eq!(app.state.accounts().credentials().factors(ada.id).await.unwrap().len(), 1, "nothing added or removed");
    assert_eq!(app.state.accounts().credentials().recovery_codes_left(ada.id).await.unwrap(), codes_before, "the old codes still work");
    let webauthn = app.post("/account/security/webauthn/options", &[("kind", "security_key"), ("name", "Mine")], &account.body).await;
    assert_eq!(webauthn.status, StatusCode::FORBIDDEN, "no key registration either: {}", webauthn.body);

    // The domain refuses it too, whatever page asks.
    let token = crate::mfa::session_cookie_in(&desk, &app.base);
    let now = app.clock_now();
    let session = app.state.accounts().sessions().session(&token, now).await.unwrap().unwrap();
    let origin = portcullis_core::audit::RequestOrigin { ip: Some(OFFICE.parse().unwrap()), ..Default::default() };
    let refused = app.state.accounts().credentials().regenerate_recovery_codes(&session, &origin, now).await;
    assert!(matches!(refused, Err(portcullis_core::AccountError::SecondFactorNeeded)), "{refused:?}");

    // The owner, with the app's code: the security page asks for it once, then works.
    let to = app.get("/account/security").await.location.unwrap();
    assert!(to.starts_with("/login/verify"), "{to}");
    let page = app.get(&to).await;
    app.clock.advance(30);
    let next = crate::mfa::hidden(&page.body, "next");
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", &next)], &page.body).await;
    assert_eq!(done.location.as_deref(), Some("/account/security"), "{}", done.body);
    let security = app.get("/account/security").await;
    assert_eq!(security.status, StatusCode::OK);
    let codes = app.post("/account/security/recovery-codes", &[], &security.body).await;
    assert_eq!(crate::mfa::recovery_codes_in(&codes.body).len(), 10, "{}", codes.body);

    // The same multi-factor cookie from a network a rule denies: the account
    // page keeps the sign-in's verdict, but factors change only where the rules allow.
    app.use_browser(&desk, CAFE);
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
    assert_eq!(app.get("/account/security").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_rule_that_skips_the_second_factor_does_not_let_the_password_change_factors() {
    a_rule_that_skips_the_second_factor_does_not_let_the_password_change_factors(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_rule_that_skips_the_second_factor_does_not_let_the_password_change_factors() {
    a_rule_that_skips_the_second_factor_does_not_let_the_password_change_factors(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_put_a_browser_on_a_trusted_network() {
    let office = RuleConfig { networks: vec!["10.0.0.0/8".into()], ..rule("office", RuleAction::AllowSingleFactor) };
    let rules = vec![office, rule("elsewhere", RuleAction::RequireMfa)];
    let Some(mut app) = app_with_rules(Backend::Sqlite, rules, |c| c.trusted_proxies.clear()).await else {
        return;
    };
    app.use_browser(&new_jar(), OFFICE);
    app.verified_user("ada@example.com").await;
    let r = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(r.location.unwrap().starts_with("/login/enroll"), "the claimed office address is ignored");
    assert_eq!(app.sign_in("ada@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    let failed = app.audit(AuditKind::SignInFailed).await;
    assert_eq!(failed[0].ip.as_deref(), Some("127.0.0.1"), "the audit log names the real peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countries_and_impossible_travel_come_from_the_geoip_database() {
    let rules = vec![
        RuleConfig { countries: vec!["CN".into()], ..rule("blocked-country", RuleAction::Deny) },
        RuleConfig { impossible_travel: Some(true), ..rule("travel", RuleAction::Deny) },
        RuleConfig { countries: vec!["GB".into(), "SE".into()], ..rule("home", RuleAction::AllowSingleFactor) },
    ];
    let Some(mut app) = app_with_rules(Backend::Sqlite, rules, |c| c.policy.geoip_database = Some(geoip_database())).await else {
        return;
    };
    let laptop = new_jar();
    app.use_browser(&laptop, LONDON);
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"));
    assert_eq!(app.last_decision(AuditKind::SignInSucceeded).await.0.as_deref(), Some("home"));
    app.sign_out().await;

    app.use_browser(&laptop, CHANGCHUN);
    let refused = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("not allowed by your organisation"), "{}", refused.body);
    assert_eq!(app.last_decision(AuditKind::SignInDenied).await.0.as_deref(), Some("blocked-country"));

    // London to Linköping (about 1,450 km) in an hour is faster than an airliner.
    app.clock.advance(3600);
    app.use_browser(&laptop, LINKOPING);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::FORBIDDEN);
    let (rule, risk) = app.last_decision(AuditKind::SignInDenied).await;
    assert_eq!((rule.as_deref(), risk.as_str()), (Some("travel"), "high"));

    // A day later the same trip is possible.
    app.clock.advance(24 * 3600);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"));
    let (rule, risk) = app.last_decision(AuditKind::SignInSucceeded).await;
    assert_eq!((rule.as_deref(), risk.as_str()), (Some("home"), "medium"), "a new country is unusual, not impossible");
    app.sign_out().await;

    // No rule matches the US: the account's own settings decide (no factor: signed in), and the risk is kept.
    app.clock.advance(24 * 3600);
    app.use_browser(&new_jar(), MILTON);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"));
    let event = &app.audit(AuditKind::SignInSucceeded).await[0];
    assert_eq!(event.detail["assessment"]["rule"], serde_json::Value::Null);
    assert_eq!(event.detail["assessment"]["reasons"], serde_json::json!(["new_device", "new_country"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_device_may_skip_the_second_step_and_a_new_one_is_announced() {
    let known = RuleConfig { new_device: Some(false), ..rule("known-browser", RuleAction::AllowSingleFactor) };
    let Some(mut app) = app_with_rules(Backend::Sqlite, vec![known], |_| {}).await else {
        return;
    };
    let (desk, stranger) = (new_jar(), new_jar());
    app.use_browser(&desk, CAFE);
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"));
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "a browser seen before");
    let notices = |app: &TestApp| app.outbox().iter().filter(|m| m.email.subject.contains("new device")).count();
    assert_eq!(notices(&app), 0, "the first browser an account uses is not news");

    app.use_browser(&stranger, CAFE);
    let to = app.sign_in("ada@example.com", PASSWORD).await.location.unwrap();
    assert!(to.starts_with("/login/verify"), "a new browser takes the second step: {to}");
    let page = app.get(&to).await;
    app.clock.advance(30);
    app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &page.body).await;
    let mail = app.notice("new device").await;
    assert_eq!(mail.email.to, "ada@example.com");
    assert!(mail.email.text.contains(CAFE), "{}", mail.email.text);
    assert_eq!(notices(&app), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_the_last_hour_and_a_client_can_trigger_rules() {
    let rules = vec![
        RuleConfig { failures_last_hour: Some(3), ..rule("under-attack", RuleAction::RequirePhishingResistant) },
        RuleConfig { clients: vec!["payroll".into()], ..rule("payroll-only-in-office", RuleAction::Deny) },
    ];
    let Some(mut app) = app_with_rules(Backend::Sqlite, rules, |_| {}).await else {
        return;
    };
    app.use_browser(&new_jar(), CAFE);
    app.verified_user("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.sign_in("ada@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    }
    let refused = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "only a security key would do, and there is none");
    assert!(refused.body.contains("security key or passkey"), "{}", refused.body);
    assert_eq!(app.last_decision(AuditKind::SignInDenied).await.0.as_deref(), Some("under-attack"));
    assert_eq!(app.audit(AuditKind::SignInFailed).await.len(), 3);

    app.clock.advance(3601);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "an hour later");
    app.sign_out().await;

    // The same account, signing in for the payroll application.
    let secret = crate::client_policy::register_with(&app, "payroll", portcullis_core::oauth::ClientPolicy::default()).await;
    let (_, url, _, _) = crate::mfa::authorize_url(&app, "payroll", secret.as_deref(), None).await;
    let to_login = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    let login = app.get(&to_login).await;
    let next = crate::mfa::hidden(&login.body, "next");
    let refused = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let denied = &app.audit(AuditKind::SignInDenied).await[0];
    assert_eq!((denied.client_id.as_deref(), &denied.detail["rule"]), (Some("payroll"), &serde_json::json!("payroll-only-in-office")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_rule_applies_to_that_role_only() {
    let admins_in_office = RuleConfig { roles: vec!["admin".into()], ..rule("admins-only-in-the-office", RuleAction::Deny) };
    let Some(mut app) = app_with_rules(Backend::Sqlite, vec![admins_in_office], |_| {}).await else {
        return;
    };
    app.use_browser(&new_jar(), CAFE);
    let now = portcullis_core::clock::Clock::now(&app.clock);
    app.state.accounts().operators().create_user("root@example.com", "Root", PASSWORD, true, now).await.unwrap();
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("root@example.com", PASSWORD).await.status, StatusCode::FORBIDDEN, "an admin is refused");
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "a user is not");
    assert_eq!(app.last_decision(AuditKind::SignInDenied).await.0.as_deref(), Some("admins-only-in-the-office"));
}
