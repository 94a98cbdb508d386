//! The attacks on the second step found by trying the release build as an
//! outsider with only a password would, each refused end to end (each failed
//! before the sign-in became a state machine).

use portcullis::config::RuleConfig;
use portcullis_core::audit::AuditKind;
use portcullis_core::clock::Clock;
use portcullis_core::oauth::{ClientPolicy, SigningAlg};
use portcullis_core::policy::RuleAction;
use reqwest::StatusCode;

use crate::client_policy::register_with;
use crate::email_codes::emailed_code;
use crate::helpers::{Backend, NEW_PASSWORD, PASSWORD, Page, TestApp, on_both_backends, spawn_app_with, spawn_webauthn_app};
use crate::mfa::{authorize_url, claims_after, hidden};
use crate::oidc::{CALLBACK, query_param};

on_both_backends!(
    a_password_alone_cannot_finish_through_inline_enrollment,
    the_second_step_opens_on_the_strongest_factor_and_email_is_only_a_fallback,
    an_emailed_code_does_not_finish_a_sign_in_soon_after_a_reset_link,
    tokens_claim_only_what_the_application_counts,
    a_code_confirming_a_new_number_never_completes_a_step_up_nor_the_reverse,
    signing_out_everywhere_ends_remembered_browsers_and_grants,
    max_age_0_is_met_by_the_sign_in_made_for_the_request,
    concurrent_right_answers_finish_a_sign_in_once_and_a_stale_step_up_finishes_nothing,
    a_reset_link_neither_lifts_the_second_step_lock_nor_finishes_a_sign_in_begun_before_it,
    a_stale_session_adds_no_first_factor_and_a_possession_step_does_not_make_it_recent,
);

/// Runs each listed scenario, which takes the backend (it configures its own app), on both.
macro_rules! on_both_backends_configured {
    ($($name:ident),* $(,)?) => {
        mod sqlite_configured { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(crate::helpers::Backend::Sqlite).await } )* }
        mod postgres_configured { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(crate::helpers::Backend::Postgres).await } )* }
    };
}

on_both_backends_configured!(
    rules_for_an_application_hold_for_a_session_made_elsewhere,
    the_admin_console_needs_a_recent_sign_in_to_act_and_takes_no_emailed_code,
);

impl TestApp {
    /// A verified user with an authenticator app (its secret), signed out.
    async fn user_with_totp(&self, email: &str) -> Vec<u8> {
        self.verified_user(email).await;
        self.sign_in(email, PASSWORD).await;
        let (secret, _) = self.enroll_totp("Phone").await;
        self.sign_out().await;
        secret
    }

    /// Password, then the second step with the app's code: a signed-in session.
    async fn sign_in_with_totp(&self, email: &str, secret: &[u8]) {
        let first = self.sign_in(email, PASSWORD).await;
        let page = self.get(&first.location.unwrap()).await;
        self.clock.advance(30);
        let done =
            self.post("/login/verify", &[("method", "totp"), ("code", &self.code_now(secret)), ("next", "/account")], &page.body).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    }

    /// Follows `url` (an authorization request) one hop; returns where it leads.
    async fn authorize(&self, url: &str) -> Page {
        self.get(url.strip_prefix(&self.base).unwrap_or(url)).await
    }
}

/// Attack 1: the victim has an authenticator app; the attacker has only the
/// password, and asks the pending sign-in for inline enrollment.
async fn a_password_alone_cannot_finish_through_inline_enrollment(app: TestApp) {
    app.user_with_totp("victim@example.com").await;
    let victim = app.state.accounts().operators().find_user("victim@example.com").await.unwrap();
    app.state
        .accounts()
        .operators()
        .set_admin("victim@example.com", true, &portcullis_core::audit::RequestOrigin::command_line(), app.clock.now())
        .await
        .unwrap();
    let first = app.sign_in("victim@example.com", PASSWORD).await;
    assert!(first.location.as_deref().unwrap().starts_with("/login/verify"));
    let verify = app.get(first.location.as_deref().unwrap()).await;

    let enroll = app.get("/login/enroll?next=%2Faccount").await;
    assert_eq!(enroll.status, StatusCode::FORBIDDEN, "{}", enroll.body);
    assert!(!enroll.body.contains("totp-secret"), "no secret was made");
    let totp = app.post("/login/enroll/totp", &[("next", "/account")], &verify.body).await;
    assert_eq!(totp.status, StatusCode::FORBIDDEN);
    assert!(!totp.body.contains("totp-secret"), "{}", totp.body);
    let forged = app
        .post("/login/enroll", &[("credential_id", "x"), ("name", "Mine"), ("code", "123456"), ("next", "/account")], &verify.body)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("portcullis_session=")), "no session");
    let phone = app.post("/login/enroll/phone", &[("phone", "+44 7700 900123"), ("next", "/account")], &verify.body).await;
    assert_eq!(phone.status, StatusCode::FORBIDDEN);
    let key = app.post("/login/enroll/webauthn/options", &[("kind", "passkey"), ("name", "Mine")], &verify.body).await;
    assert_eq!(key.status, StatusCode::FORBIDDEN, "{}", key.body);
    assert!(crate::sms_codes::texts(&app).is_empty(), "no code was texted to the attacker's number");

    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "not signed in");
    assert_eq!(app.get("/admin/users").await.status, StatusCode::SEE_OTHER, "nor in the admin console");
    assert_eq!(app.state.accounts().credentials().factors(victim.id).await.unwrap().len(), 1, "the victim's factors are as they were");
    let refused = app.audit(AuditKind::SignInStepRefused).await;
    assert_eq!(refused.len(), 5, "each refused step is recorded");
    assert_eq!(refused.last().unwrap().detail["transition"], "show_enrollment");
    // The pending sign-in is still the victim's second step, nothing else.
    let page = app.get(first.location.as_deref().unwrap()).await;
    assert!(page.body.contains("authenticator app"), "{}", page.body);
}

/// Attack 3: a mailbox is not a second factor on its own. An account with an
/// app opens on the app; email is one of the other methods; a phone comes
/// before email; with `email_counts_as_mfa = false` email is no second step.
async fn the_second_step_opens_on_the_strongest_factor_and_email_is_only_a_fallback(app: TestApp) {
    let secret = app.user_with_totp("ada@example.com").await;
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let to = first.location.unwrap();
    let page = app.get(&to).await;
    assert!(page.body.contains("Open your authenticator app") && !page.body.contains("Email me a code"), "{}", page.body);
    let methods = app.get(&format!("/login/verify/methods?next={}", crate::oidc::urlenc("/account"))).await;
    assert_eq!(methods.status, StatusCode::OK, "{}", methods.body);
    for button in ["Use your authenticator app", "Email me a code", "Use a recovery code"] {
        assert!(methods.body.contains(&format!(">{button}</button>")), "{button}: {}", methods.body);
    }
    // "Email me a code" from that list sends the code at once.
    let sent = app.post("/login/verify/send", &[("method", "email"), ("next", "/account")], &methods.body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let code = emailed_code(&app, "ada@example.com").await;
    let done = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", "/account")], &sent.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "the fallback works (email counts as a factor by default)");
    assert!(app.get("/account").await.body.contains("verified with your password and a code by email."));

    // A phone comes before email.
    app.clock.advance(31);
    app.add_phone("+44 7700 900123").await;
    app.sign_out().await;
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let methods = app.get("/login/verify/methods?next=%2Faccount").await;
    let order: Vec<usize> =
        ["Use your authenticator app", "Text me a code", "Email me a code"].iter().map(|b| methods.body.find(b).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "app, then phone, then email: {}", methods.body);
    let _ = (first, secret);

    // An account whose only factor is a phone opens on it, not on email.
    app.verified_user("bo@example.com").await;
    app.sign_in("bo@example.com", PASSWORD).await;
    app.clock.advance(31);
    app.add_phone("+1 415 555 2671").await;
    app.sign_out().await;
    let first = app.sign_in("bo@example.com", PASSWORD).await;
    let page = app.get(&first.location.unwrap()).await;
    assert!(page.body.contains("Text me a code") && !page.body.contains("Email me a code"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_email_not_counted_as_a_factor_it_is_no_second_step() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.factors.email_counts_as_mfa = false).await else { return };
    app.user_with_totp("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let methods = app.get("/login/verify/methods?next=%2Faccount").await;
    assert!(methods.body.contains("Use your authenticator app") && !methods.body.contains("Email me a code"), "{}", methods.body);
    let page = app.get("/login/verify?next=%2Faccount").await;
    let refused = app.post("/login/verify/send", &[("method", "email"), ("next", "/account")], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_no_factor_asked_for_mfa_may_set_up_any_factor_the_browser_can_use() {
    let Some(app) = spawn_webauthn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let (_, url, _, _) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    let login = app.get(&app.authorize(&url).await.location.unwrap()).await;
    let next = hidden(&login.body, "next");
    let first = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    let to = first.location.unwrap();
    assert!(to.starts_with("/login/enroll"), "{to}");
    let page = app.get(&to).await;
    for button in ["Set up authenticator app", "Create a passkey", "Add a security key", "Add a phone number"] {
        assert!(page.body.contains(button), "{button}: {}", page.body);
    }
    assert!(page.body.contains("<label for=\"phone\">Phone number</label>"));
}

/// Attack 3, the reset link: whoever holds the mailbox can reset the
/// password, so for a while an emailed code finishes no second step.
async fn an_emailed_code_does_not_finish_a_sign_in_soon_after_a_reset_link(app: TestApp) {
    let secret = app.user_with_totp("ada@example.com").await;
    let page = app.get("/forgot-password").await;
    app.post("/forgot-password", &[("email", "ada@example.com")], &page.body).await;
    let link = app.last_link_to("ada@example.com").await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let reset = app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);

    let first = app.sign_in("ada@example.com", NEW_PASSWORD).await;
    assert!(first.location.as_deref().unwrap().starts_with("/login/verify"));
    let methods = app.get("/login/verify/methods?next=%2Faccount").await;
    assert!(!methods.body.contains("Email me a code"), "{}", methods.body);
    let page = app.get("/login/verify?next=%2Faccount").await;
    let refused = app.post("/login/verify/send", &[("method", "email"), ("next", "/account")], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "the new password and the same mailbox are one proof");
    // The app still works; a week later email is a fallback again.
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    app.sign_out().await;
    app.clock.advance(7 * 86_400);
    app.sign_in("ada@example.com", NEW_PASSWORD).await;
    assert!(app.get("/login/verify/methods?next=%2Faccount").await.body.contains("Email me a code"));
}

fn client_rule(name: &str, client: &str, action: RuleAction) -> RuleConfig {
    RuleConfig { clients: vec![client.into()], ..crate::policy::rule(name, action) }
}

/// Attack 4: rules scoped to an application hold when the session was made
/// elsewhere, and a single-factor grant for one application is good only there.
async fn rules_for_an_application_hold_for_a_session_made_elsewhere(backend: Backend) {
    let rules = vec![
        client_rule("no-payroll", "c-deny", RuleAction::Deny),
        client_rule("mfa-for-wiki", "c-mfa", RuleAction::RequireMfa),
        client_rule("keys-for-vault", "c-phr", RuleAction::RequirePhishingResistant),
        client_rule("kiosk", "c-kiosk", RuleAction::AllowSingleFactor),
    ];
    let Some(app) = spawn_app_with(backend, |c| c.policy.rules = rules).await else { return };
    let secret = app.user_with_totp("ada@example.com").await;
    let mut secrets = std::collections::HashMap::new();
    for id in ["c-deny", "c-mfa", "c-phr", "c-kiosk", "c-plain"] {
        secrets.insert(id, register_with(&app, id, ClientPolicy::default()).await);
    }
    let url = |id: &'static str| {
        let (app, secret) = (&app, secrets[id].clone());
        async move { authorize_url(app, id, secret.as_deref(), None).await }
    };

    // Signed in at /login with both steps, then opening an application's request.
    app.sign_in_with_totp("ada@example.com", &secret).await;
    let (_, deny, _, _) = url("c-deny").await;
    let denied = app.authorize(&deny).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert!(denied.body.contains("not allowed by your organisation"), "{}", denied.body);
    let audited = &app.audit(AuditKind::SignInDenied).await[0];
    assert_eq!((audited.client_id.as_deref(), &audited.detail["rule"]), (Some("c-deny"), &serde_json::json!("no-payroll")));
    let silent = app.authorize(&format!("{deny}&prompt=none")).await;
    assert_eq!(query_param(&silent.location.unwrap(), "error").as_deref(), Some("access_denied"));
    let (_, mfa, _, _) = url("c-mfa").await;
    assert!(app.authorize(&mfa).await.location.unwrap().starts_with(CALLBACK), "an MFA session meets require_mfa");
    let (_, phr, _, _) = url("c-phr").await;
    let refused = app.authorize(&phr).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "an app's code is not phishing-resistant, and there is no key");
    assert!(refused.body.contains("security key or passkey"), "{}", refused.body);
    app.sign_out().await;

    // One step is enough for the kiosk application only.
    let (rp, kiosk, nonce, verifier) = url("c-kiosk").await;
    let login = app.get(&app.authorize(&kiosk).await.location.unwrap()).await;
    let next = hidden(&login.body, "next");
    let first = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    assert_eq!(first.location.as_deref(), Some(next.as_str()), "no second step for the kiosk");
    let back = app.get(&next).await.location.unwrap();
    assert_eq!(claims_after(&app, &rp, &back, &nonce, verifier).await, (vec!["pwd".to_owned()], None));
    // That password-only session is no good anywhere else: each asks for the missing factor.
    let account = app.get("/account").await;
    assert!(account.location.as_deref().unwrap().starts_with("/login/verify"), "the account page steps up: {:?}", account.location);
    let security = app.get("/account/security").await;
    assert!(security.location.as_deref().unwrap().starts_with("/login/verify"), "so does the security page");
    for id in ["c-plain", "c-mfa"] {
        let (_, other, _, _) = url(id).await;
        let step = app.authorize(&other).await.location.unwrap();
        assert!(step.starts_with("/login/verify"), "{id}: {step}");
        let silent = app.authorize(&format!("{other}&prompt=none")).await;
        assert_eq!(query_param(&silent.location.unwrap(), "error").as_deref(), Some("interaction_required"), "{id}");
    }
    let (_, deny, _, _) = url("c-deny").await;
    assert_eq!(app.authorize(&deny).await.status, StatusCode::FORBIDDEN, "and the deny rule still holds");
    let everywhere = app.post("/logout/everywhere", &[], &app.get("/forgot-password").await.body).await;
    assert!(
        everywhere.location.as_deref().unwrap().starts_with("/login/verify"),
        "nor can it end every session: {:?}",
        everywhere.location
    );
    // Taking the missing step there makes the session good everywhere.
    let page = app.get("/login/verify?next=%2Faccount").await;
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &page.body).await;
    assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
}

/// Attack 5: a keys-only application without a floor does not get `acr=mfa`
/// earned with an app's code.
async fn tokens_claim_only_what_the_application_counts(app: TestApp) {
    let secret = app.user_with_totp("ada@example.com").await;
    let keys_only = ClientPolicy { allowed_factors: vec!["webauthn".into()], ..ClientPolicy::default() };
    let client_secret = register_with(&app, "keys-only", keys_only).await;
    app.sign_in_with_totp("ada@example.com", &secret).await;
    let (rp, url, nonce, verifier) = authorize_url(&app, "keys-only", client_secret.as_deref(), None).await;
    let back = app.authorize(&url).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "{back}");
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr), (vec!["pwd".to_owned()], None), "the app's code does not count for it");
}

/// Second pass: a code is bound to its number and its purpose. An attacker
/// in a session adds their own number; its confirmation code must not
/// complete the admin console's step-up, and a sign-in code sent to the
/// account's number must not confirm the attacker's.
async fn a_code_confirming_a_new_number_never_completes_a_step_up_nor_the_reverse(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.add_phone("+44 7700 900123").await;
    app.state
        .accounts()
        .operators()
        .set_admin("ada@example.com", true, &portcullis_core::audit::RequestOrigin::command_line(), app.clock.now())
        .await
        .unwrap();
    // A browser remembered by a texted code: the session it gives does not open the admin console.
    app.sign_out().await;
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get(&first.location.unwrap()).await;
    app.clock.advance(31);
    let sent = app.post("/login/verify/send", &[("method", "sms"), ("next", "/account")], &page.body).await;
    let remembered = app
        .post("/login/verify", &[("method", "sms"), ("code", &app.texted_code()), ("remember", "1"), ("next", "/account")], &sent.body)
        .await;
    assert_eq!(remembered.status, StatusCode::SEE_OTHER, "{}", remembered.body);
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "remembered");
    let step_up = app.get("/admin/users").await.location.unwrap();
    assert!(step_up.starts_with("/login/verify"), "{step_up}");
    let step_page = app.get(&step_up).await;

    // The attacker adds their own number: a confirmation code goes to it.
    app.clock.advance(31);
    let security = app.get("/account/security").await;
    let adding = app.post("/account/security/phone", &[("phone", "+1 415 555 2671")], &security.body).await;
    assert_eq!(adding.status, StatusCode::OK, "{}", adding.body);
    let confirmation = app.texted_code();
    let next = hidden(&step_page.body, "next");
    let refused = app.post("/login/verify", &[("method", "sms"), ("code", &confirmation), ("next", &next)], &step_page.body).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "a confirmation code is no sign-in code: {}", refused.body);
    assert!(app.get("/admin/users").await.location.unwrap().starts_with("/login/verify"), "still outside the console");
    assert!(app.audit(AuditKind::FactorAdded).await.len() == 1, "the new number is not confirmed either");

    // The reverse: a sign-in code texted to the account's number does not confirm the new one.
    app.clock.advance(31);
    let sent = app.post("/login/verify/send", &[("method", "sms"), ("next", &next)], &refused.body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let sign_in_code = app.texted_code();
    let pending = hidden(&adding.body, "credential_id");
    let wrong = app.post("/account/security/phone/confirm", &[("credential_id", &pending), ("code", &sign_in_code)], &adding.body).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    assert_eq!(
        app.state
            .accounts()
            .credentials()
            .factors(app.state.accounts().operators().find_user("ada@example.com").await.unwrap().id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Each code still does its own job.
    let done = app.post("/login/verify", &[("method", "sms"), ("code", &sign_in_code), ("next", &next)], &sent.body).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users"), "{}", done.body);
    // With a form token of the stepped-up session (tokens are bound to the session they were given to).
    let fresh = app.get("/account").await;
    let confirmed = app.post("/account/security/phone/confirm", &[("credential_id", &pending), ("code", &confirmation)], &fresh.body).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert!(confirmed.body.contains("Phone number added."), "{}", confirmed.body);
}

/// Second pass: the admin console acts only after a recent sign-in, and its
/// step-up takes no emailed code.
async fn the_admin_console_needs_a_recent_sign_in_to_act_and_takes_no_emailed_code(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.session.reauthenticate_after_seconds = 5).await else { return };
    let secret = app.user_with_totp("root@example.com").await;
    app.user_with_totp("ada@example.com").await;
    let cli = portcullis_core::audit::RequestOrigin::command_line();
    app.state.accounts().operators().set_admin("root@example.com", true, &cli, app.clock.now()).await.unwrap();
    // Password and an emailed code: a session, but not one for the console.
    let first = app.sign_in("root@example.com", PASSWORD).await;
    let methods = app.get(&first.location.unwrap().replace("/login/verify?", "/login/verify/methods?")).await;
    let sent = app.post("/login/verify/send", &[("method", "email"), ("next", "/admin/users")], &methods.body).await;
    let code = emailed_code(&app, "root@example.com").await;
    let done = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", "/admin/users")], &sent.body).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users"));
    let step_up = app.get("/admin/users").await.location.unwrap();
    assert!(step_up.starts_with("/login/verify"), "the console asks for a factor that is not the mailbox: {step_up}");
    let page = app.get(&step_up).await;
    assert!(page.body.contains("Open your authenticator app"), "{}", page.body);
    let methods = app.get("/login/verify/methods?next=%2Fadmin%2Fusers").await;
    assert!(!methods.body.contains("Email me a code"), "{}", methods.body);
    let refused = app.post("/login/verify/send", &[("method", "email"), ("next", "/admin/users")], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.clock.advance(30);
    let done =
        app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/admin/users")], &page.body).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users"), "{}", done.body);
    assert_eq!(app.get("/admin/users").await.status, StatusCode::OK);

    // Eight seconds later: the console still shows, but acting needs a new sign-in.
    app.clock.advance(8);
    let users = app.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK);
    for action in ["reset_mfa", "make_admin"] {
        let r = app.post("/admin/users", &[("email", "ada@example.com"), ("action", action), ("q", "")], &users.body).await;
        assert_eq!(r.location.as_deref(), Some("/login?reauth=admin&next=%2Fadmin%2Fusers"), "{action}: {}", r.body);
    }
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    assert!(!ada.is_admin && app.state.accounts().credentials().factors(ada.id).await.unwrap().len() == 1, "nothing was done");
    let login = app.get("/login?reauth=admin&next=%2Fadmin%2Fusers").await;
    assert!(login.body.contains("sign in again to make changes in the admin console"), "{}", login.body);
    assert!(login.body.contains("value=\"root@example.com\""));
}

/// Second pass: "Sign out everywhere" ends remembered browsers and the grants of applications too.
async fn signing_out_everywhere_ends_remembered_browsers_and_grants(mut app: TestApp) {
    use openidconnect::core::CoreAuthenticationFlow;
    use openidconnect::{CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope};
    let secret = app.user_with_totp("ada@example.com").await;
    let desk = app.client.clone();
    // Another browser, remembered.
    app.client = crate::helpers::browser();
    let phone = app.client.clone();
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get(&first.location.unwrap()).await;
    app.clock.advance(30);
    let code = app.code_now(&secret);
    let fields = [("method", "totp"), ("code", code.as_str()), ("remember", "1"), ("next", "/account")];
    assert_eq!(app.post("/login/verify", &fields, &page.body).await.status, StatusCode::SEE_OTHER);
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "remembered");
    // An application holding a refresh token.
    let (id, client_secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, client_secret.as_deref()).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = app.authorize(url.as_str()).await.location.unwrap();
    let tokens = rp.exchange(&app, query_param(&back, "code").unwrap(), verifier).await;
    let refresh = tokens.refresh_token().expect("offline_access gives a refresh token").secret().clone();

    // "Sign out everywhere", from the first browser.
    app.client = desk;
    app.sign_in_with_totp("ada@example.com", &secret).await;
    let account = app.get("/account").await;
    assert_eq!(app.post("/logout/everywhere", &[], &account.body).await.status, StatusCode::SEE_OTHER);
    app.client = phone;
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the other browser is signed out");
    let again = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(again.location.unwrap().starts_with("/login/verify"), "and no longer skips the second step");
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(&id, client_secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the application's grant is revoked");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(tokens.access_token().secret()).send().await.unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED, "and its access token");
}

/// `max_age=0` asks for a fresh sign-in; the sign-in made for the request is one (it looped before).
async fn max_age_0_is_met_by_the_sign_in_made_for_the_request(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let (_, url, _, _) = authorize_url(&app, &id, secret.as_deref(), None).await;
    let login = app.get(&app.authorize(&format!("{url}&max_age=0")).await.location.unwrap()).await;
    let next = hidden(&login.body, "next");
    app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    app.clock.advance(1);
    let back = app.get(&next).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "issued, not sent to sign in again: {back}");
    // A later request with max_age=0 asks again.
    let (_, url, _, _) = authorize_url(&app, &id, secret.as_deref(), None).await;
    let again = app.authorize(&format!("{url}&max_age=0")).await.location.unwrap();
    assert!(again.starts_with("/login?") && again.contains("reauth=1"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_step_is_throttled_per_address_like_the_sign_in_form() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.rate_limit.sign_in_per_minute = 3).await else { return };
    app.clock.advance(60 - app.clock.now() % 60);
    app.user_with_totp("ada@example.com").await;
    app.clock.advance(60 - app.clock.now() % 60);
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut page = app.get("/login/verify?next=%2Faccount").await;
    for _ in 0..3 {
        page = app.post("/login/verify", &[("method", "totp"), ("code", "123456"), ("next", "/account")], &page.body).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let limited = app.post("/login/verify", &[("method", "totp"), ("code", "123456"), ("next", "/account")], &page.body).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert!(limited.headers.contains_key("retry-after"));
}

/// Replayed and concurrent answers, and a stale session: two right answers
/// at once to one pending sign-in make one session; an answer after it
/// finished spends nothing; a step-up whose session ended meanwhile finishes nothing.
async fn concurrent_right_answers_finish_a_sign_in_once_and_a_stale_step_up_finishes_nothing(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, codes) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get(&first.location.unwrap()).await;
    let token = crate::helpers::csrf_token_in(&page.body);
    let answers: Vec<_> = codes[..2]
        .iter()
        .map(|code| {
            let (client, url, token, code) = (app.client.clone(), app.url("/login/verify"), token.clone(), code.clone());
            tokio::spawn(async move {
                let form = [("method", "recovery"), ("code", code.as_str()), ("next", "/account"), ("csrf_token", token.as_str())];
                client.post(url).form(&form).send().await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in answers {
        statuses.push(a.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST], "one sign-in finishes, once");
    assert_eq!(app.state.accounts().sessions().list(&ada, app.clock.now()).await.unwrap().len(), 1, "one session");
    let left = app.state.accounts().credentials().recovery_codes_left(ada.id).await.unwrap();
    // A form token of this browser as it is now, so what answers is the sign-in machine, not the CSRF check.
    let now_page = app.get("/account").await;
    let replay = app.post("/login/verify", &[("method", "recovery"), ("code", &codes[2]), ("next", "/account")], &now_page.body).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "the finished sign-in takes no more answers");
    assert_eq!(app.state.accounts().credentials().recovery_codes_left(ada.id).await.unwrap(), left, "and the replayed code was not spent");

    // A step-up (an application that counts only the app), then the session ends in another tab.
    let app_only =
        ClientPolicy { mfa: portcullis_core::oauth::MfaPolicy::Required, allowed_factors: vec!["totp".into()], ..ClientPolicy::default() };
    let client_secret = register_with(&app, "app-only", app_only).await;
    let (_, url, _, _) = authorize_url(&app, "app-only", client_secret.as_deref(), None).await;
    let step_up = app.authorize(&url).await.location.unwrap();
    assert!(step_up.starts_with("/login/verify"), "{step_up}");
    let step_page = app.get(&step_up).await;
    let account = app.get("/account").await;
    app.post("/logout", &[], &account.body).await;
    let next = hidden(&step_page.body, "next");
    app.clock.advance(30);
    let now_page = app.get("/forgot-password").await;
    let stale = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", &next)], &now_page.body).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{}", stale.body);
    assert!(stale.headers.get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("portcullis_session=")));
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "no session came back to life");
}

/// A reset link proves the mailbox, not the second factor: it neither lifts a
/// lock earned by wrong codes, nor lets a sign-in begun before it finish.
async fn a_reset_link_neither_lifts_the_second_step_lock_nor_finishes_a_sign_in_begun_before_it(app: TestApp) {
    let secret = app.user_with_totp("ada@example.com").await;
    // A sign-in in progress, begun by someone who knew the old password...
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(app.get(&first.location.unwrap()).await.status, StatusCode::OK);
    // ...and ten wrong codes, in two more sign-ins, lock the account.
    for _ in 0..2 {
        let first = app.sign_in("ada@example.com", PASSWORD).await;
        let mut page = app.get(&first.location.unwrap()).await;
        for _ in 0..5 {
            page = app.post("/login/verify", &[("method", "totp"), ("code", "000000"), ("next", "/account")], &page.body).await;
        }
    }
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS, "locked by ten wrong codes");
    // The password is reset by the emailed link: the second step's lock holds.
    let forgot = app.get("/forgot-password").await;
    app.post("/forgot-password", &[("email", "ada@example.com")], &forgot.body).await;
    let link = app.last_link_to("ada@example.com").await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let reset = app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert_eq!(app.sign_in("ada@example.com", NEW_PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS, "the second step's lock holds");
    // Once the lock lifts, the sign-in begun before the reset cannot finish, even with the right code.
    app.clock.advance(301 + 30);
    let code = app.code_now(&secret);
    let now_page = app.get("/forgot-password").await;
    let stale = app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", "/account")], &now_page.body).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "a sign-in begun before the reset is over: {}", stale.body);
    let fresh = app.sign_in("ada@example.com", NEW_PASSWORD).await;
    let page = app.get(&fresh.location.unwrap()).await;
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "a new one with the new password does: {}", done.body);
}

/// A stale session (an old cookie someone else holds) cannot add a first
/// factor through a step-up, and an emailed code at a step-up does not make
/// it recent enough to change factors.
async fn a_stale_session_adds_no_first_factor_and_a_possession_step_does_not_make_it_recent(app: TestApp) {
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"));
    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    app.clock.advance(16 * 60);
    app.get("/account").await;
    let (_, url, _, _) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    let to = app.authorize(&url).await.location.unwrap();
    assert!(to.starts_with("/login?reauth=security&next="), "sign in again before setting up a first factor: {to}");
    assert_eq!(app.get("/login/enroll?next=%2Faccount").await.status, StatusCode::BAD_REQUEST, "no enrollment is waiting");

    // An account with an app, its session older than the recency window, stepped up with an
    // emailed code (for an application that counts only those).
    app.sign_out().await;
    let totp = app.user_with_totp("bo@example.com").await;
    app.sign_in_with_totp("bo@example.com", &totp).await;
    let email_only =
        ClientPolicy { mfa: portcullis_core::oauth::MfaPolicy::Required, allowed_factors: vec!["email".into()], ..ClientPolicy::default() };
    let client_secret = register_with(&app, "email-only", email_only).await;
    app.clock.advance(16 * 60);
    app.get("/account").await;
    let (_, url, _, _) = authorize_url(&app, "email-only", client_secret.as_deref(), None).await;
    let step = app.authorize(&url).await.location.unwrap();
    assert!(step.starts_with("/login/verify"), "{step}");
    let page = app.get(&step).await;
    let next = hidden(&page.body, "next");
    let sent = app.post("/login/verify/send", &[("method", "email"), ("next", &next)], &page.body).await;
    let code = emailed_code(&app, "bo@example.com").await;
    let done = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", &next)], &sent.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let security = app.get("/account/security").await;
    let add = app.post("/account/security/totp", &[], &security.body).await;
    assert_eq!(add.location.as_deref(), Some("/login?reauth=security&next=%2Faccount%2Fsecurity"), "still not recent: {}", add.body);
}
