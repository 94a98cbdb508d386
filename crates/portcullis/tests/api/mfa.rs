//! The second step: TOTP and recovery codes at sign-in, inline enrollment,
//! step-up, and the claims applications receive.

use data_encoding::BASE32_NOPAD;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthenticationContextClass, CsrfToken, Nonce, PkceCodeChallenge, TokenResponse};
use portcullis_core::audit::RequestOrigin;
use portcullis_core::clock::Clock;
use portcullis_core::factors::totp::{code_at_step, step_at};
use portcullis_core::oauth::{MfaPolicy, SigningAlg};
use portcullis_oidc::clients::NewClient;
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, Page, TestApp, csrf_token_in, on_both_backends, spawn_app};
use crate::oidc::{CALLBACK, query_param, register};

on_both_backends!(
    a_user_enrolls_an_app_and_then_signs_in_with_a_code,
    an_application_asking_for_mfa_gets_pwd_otp_mfa_and_acr_mfa,
    a_user_without_a_factor_is_led_through_enrollment_and_the_sign_in_continues,
    a_signed_in_user_is_asked_only_for_the_missing_factor,
    recovery_codes_sign_in_once_each_and_the_user_is_told,
    wrong_second_step_codes_are_bounded_per_sign_in_and_per_account,
    concurrent_guesses_on_one_sign_in_are_counted_before_they_are_checked,
    a_remembered_browser_skips_the_second_step_until_forgotten,
    the_same_code_sent_twice_at_once_signs_in_exactly_once,
);

/// A value between `marker` and the next quote, HTML entities undone.
pub(crate) fn after(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap_or_else(|| panic!("no {marker:?} in\n{html}")) + marker.len();
    html[start..].split(['"', '<']).next().unwrap().replace("&#x2f;", "/").replace("&#x3d;", "=").replace("&amp;", "&")
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    after(html, &format!("name=\"{name}\" value=\""))
}

fn secret_of(setup_page: &str) -> Vec<u8> {
    let shown = after(setup_page, "data-testid=\"totp-secret\">");
    BASE32_NOPAD.decode(shown.replace(' ', "").as_bytes()).unwrap()
}

pub(crate) fn recovery_codes_in(page: &str) -> Vec<String> {
    let list = &page[page.find("data-testid=\"recovery-codes\"").expect("recovery codes shown")..];
    list.split("<code>").skip(1).map(|c| c.split('<').next().unwrap().to_owned()).take_while(|c| c.len() == 11).collect()
}

impl TestApp {
    pub(crate) fn code_now(&self, secret: &[u8]) -> String {
        code_at_step(secret, step_at(self.clock.now()), 6)
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)], csrf_from: &str) -> Page {
        let mut all = fields.to_vec();
        let token = csrf_token_in(csrf_from);
        all.push(("csrf_token", &token));
        let r = self.client.post(self.url(path)).form(&all).send().await.unwrap();
        let status = r.status();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        Page { status, location, headers: r.headers().clone(), body: r.text().await.unwrap() }
    }

    /// Sets up an authenticator app from the security page; returns its secret and the recovery codes shown.
    pub(crate) async fn enroll_totp(&self, name: &str) -> (Vec<u8>, Vec<String>) {
        let security = self.get("/account/security").await;
        assert_eq!(security.status, StatusCode::OK, "{}", security.body);
        let setup = self.post("/account/security/totp", &[], &security.body).await;
        assert!(setup.body.contains("<svg"), "a QR code is shown");
        let secret = secret_of(&setup.body);
        let credential = hidden(&setup.body, "credential_id");
        let wrong = self
            .post("/account/security/totp/confirm", &[("credential_id", &credential), ("name", name), ("code", "000000")], &setup.body)
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "a wrong first code does not enroll");
        let added = |app: &Self| app.outbox().iter().filter(|m| m.email.subject.contains("sign-in method was added")).count();
        let before = added(self);
        let done = self
            .post(
                "/account/security/totp/confirm",
                &[("credential_id", &credential), ("name", name), ("code", &self.code_now(&secret))],
                &wrong.body,
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        // The notice is sent by a background task: wait for it, so later counts of messages are exact.
        for _ in 0..100 {
            if added(self) > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(added(self), before + 1, "the owner is told about the new app");
        (secret, if done.body.contains("recovery-codes") { recovery_codes_in(&done.body) } else { Vec::new() })
    }

    /// On the inline enrollment page (`enroll`): "Set up authenticator app",
    /// then its first code. Returns the app's secret and the answer.
    pub(crate) async fn enroll_app_inline(&self, enroll: &Page) -> (Vec<u8>, Page) {
        assert!(enroll.body.contains("Set up authenticator app"), "{}", enroll.body);
        let next = hidden(&enroll.body, "next");
        let setup = self.post("/login/enroll/totp", &[("next", &next)], &enroll.body).await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
        let secret = secret_of(&setup.body);
        let fields = [
            ("credential_id", hidden(&setup.body, "credential_id")),
            ("name", "Phone".to_owned()),
            ("code", self.code_now(&secret)),
            ("next", hidden(&setup.body, "next")),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (secret, self.post("/login/enroll", &fields, &setup.body).await)
    }

    /// Password, then the second-step page; returns that page.
    pub(crate) async fn password_then_second_step(&self, email: &str) -> (String, Page) {
        let first = self.sign_in(email, PASSWORD).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER);
        let to = first.location.unwrap();
        assert!(to.starts_with("/login/verify"), "{to}");
        let page = self.get(&to).await;
        (to, page)
    }
}

async fn a_user_enrolls_an_app_and_then_signs_in_with_a_code(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, codes) = app.enroll_totp("Pixel").await;
    assert_eq!(codes.len(), 10, "ten recovery codes with the first factor");
    let security = app.get("/account/security").await;
    assert!(security.body.contains("Pixel") && security.body.contains("10 codes left"));
    app.notice("sign-in method was added").await;
    app.sign_out().await;

    let (_, page) = app.password_then_second_step("ada@example.com").await;
    assert!(page.body.contains("<label for=\"code\">Code</label>") && page.body.contains("Try another method"));
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the password alone did not sign in");
    app.clock.advance(30);
    let code = app.code_now(&secret);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", "/account")], &page.body).await;
    assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")), "{}", done.body);
    assert!(app.get("/account").await.body.contains("verified with your password and your authenticator app."));

    // The same code again (same time step): refused.
    app.sign_out().await;
    let (_, page) = app.password_then_second_step("ada@example.com").await;
    let replay = app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", "/account")], &page.body).await;
    assert_eq!(replay.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(replay.body.contains("already used"));
    app.clock.advance(30);
    let next = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &replay.body).await;
    assert_eq!(next.status, StatusCode::SEE_OTHER, "the next step's code works");

    // A factor can be renamed; the last one cannot be removed while MFA is required.
    let security = app.get("/account/security").await;
    let id = hidden(&security.body, "id");
    let renamed = app.post("/account/security/factors/rename", &[("id", &id), ("name", "Work phone")], &security.body).await;
    assert!(renamed.body.contains("Work phone"));
    app.state
        .accounts()
        .operators()
        .require_mfa("ada@example.com", true, &portcullis_core::audit::RequestOrigin::command_line(), app.state.now())
        .await
        .unwrap();
    let refused = app.post("/account/security/factors/remove", &[("id", &id)], &renamed.body).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cannot remove your last"));
    app.state
        .accounts()
        .operators()
        .require_mfa("ada@example.com", false, &portcullis_core::audit::RequestOrigin::command_line(), app.state.now())
        .await
        .unwrap();
    let removed = app.post("/account/security/factors/remove", &[("id", &id)], &refused.body).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert!(!removed.body.contains("recovery-codes-left"), "recovery codes go with the last factor, and their section with them");
}

/// Follows the browser through sign-in, second step or enrollment; returns the redirect to the app
/// and, when enrollment happened, the recovery codes shown.
pub(crate) async fn through_sign_in(app: &TestApp, start: &str, secret: &mut Option<Vec<u8>>) -> (String, Vec<String>) {
    let mut next = start.strip_prefix(&app.base).unwrap_or(start).to_owned();
    let mut codes = Vec::new();
    for _ in 0..10 {
        if next.starts_with(CALLBACK) {
            return (next, codes);
        }
        let page = app.get(&next).await;
        if page.status == StatusCode::SEE_OTHER {
            next = page.location.unwrap();
            continue;
        }
        assert_eq!(page.status, StatusCode::OK, "{next}: {}", page.body);
        let reply = if next.starts_with("/login/verify") {
            app.clock.advance(30);
            let code = app.code_now(secret.as_ref().expect("an enrolled app"));
            app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", &hidden(&page.body, "next"))], &page.body).await
        } else if next.starts_with("/login/enroll") {
            let (s, r) = app.enroll_app_inline(&page).await;
            *secret = Some(s);
            if r.status == StatusCode::OK {
                codes = recovery_codes_in(&r.body);
                next = after(&r.body, "class=\"button\" href=\"");
                continue;
            }
            r
        } else if next.starts_with("/login") {
            app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &hidden(&page.body, "next"))], &page.body)
                .await
        } else {
            panic!("unexpected page {next}");
        };
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        next = reply.location.unwrap();
    }
    panic!("too many steps");
}

pub(crate) async fn authorize_url(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
    acr: Option<&str>,
) -> (crate::oidc::RelyingParty, String, Nonce, openidconnect::PkceCodeVerifier) {
    let rp = app.rp(id, secret).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge);
    if let Some(a) = acr {
        req = req.add_auth_context_value(AuthenticationContextClass::new(a.into()));
    }
    let (url, _, nonce) = req.url();
    (rp, url.to_string(), nonce, verifier)
}

pub(crate) async fn claims_after(
    app: &TestApp,
    rp: &crate::oidc::RelyingParty,
    back: &str,
    nonce: &Nonce,
    verifier: openidconnect::PkceCodeVerifier,
) -> (Vec<String>, Option<String>) {
    let code = query_param(back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = rp.exchange(app, code, verifier).await;
    let claims = tokens.id_token().unwrap().claims(&rp.client.id_token_verifier(), nonce).unwrap();
    let amr = claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    (amr, claims.auth_context_ref().map(|a| a.to_string()))
}

async fn an_application_asking_for_mfa_gets_pwd_otp_mfa_and_acr_mfa(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), Some("mfa")).await;
    let (back, _) = through_sign_in(&app, &url, &mut Some(secret)).await;
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(acr.as_deref(), Some("mfa"));
}

async fn a_user_without_a_factor_is_led_through_enrollment_and_the_sign_in_continues(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    // Without an MFA requirement, a password is enough and the token says so.
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), None).await;
    let (back, _) = through_sign_in(&app, &url, &mut None).await;
    assert_eq!(claims_after(&app, &rp, &back, &nonce, verifier).await, (vec!["pwd".to_owned()], None));
    app.sign_out().await;

    // The operator requires MFA: the next sign-in leads through enrollment, then continues to the app.
    app.state
        .accounts()
        .operators()
        .require_mfa("ada@example.com", true, &portcullis_core::audit::RequestOrigin::command_line(), app.state.now())
        .await
        .unwrap();
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), None).await;
    let mut secret = None;
    let (back, codes) = through_sign_in(&app, &url, &mut secret).await;
    assert!(secret.is_some(), "enrollment happened");
    assert_eq!(codes.len(), 10);
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(acr.as_deref(), Some("mfa"));
}

async fn a_signed_in_user_is_asked_only_for_the_missing_factor(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    // prompt=none cannot step up: the client is told interaction is required.
    let (_, silent, _, _) = authorize_url(&app, &id, client_secret.as_deref(), Some("mfa")).await;
    let r = app.get(&format!("{}&prompt=none", silent.strip_prefix(&app.base).unwrap())).await;
    assert_eq!(query_param(&r.location.unwrap(), "error").as_deref(), Some("interaction_required"));
    // acr_values=mfa with a password-only session and no factor yet: every
    // factor the operator allows can be set up here (no passkey: this issuer
    // is an IP address), not only an emailed code; then the same session continues.
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), Some("mfa")).await;
    let before = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(before.status(), StatusCode::OK);
    let first = app.get(url.strip_prefix(&app.base).unwrap()).await;
    let step = first.location.unwrap();
    assert!(step.starts_with("/login/enroll"), "{step}");
    let page = app.get(&step).await;
    assert!(page.body.contains("Set up authenticator app") && page.body.contains("Add a phone number"), "{}", page.body);
    assert!(!page.body.contains("Email me a code"), "an emailed code is a fallback, not the only factor: {}", page.body);
    let old_cookie = session_cookie(&app);
    let (_, done) = app.enroll_app_inline(&page).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(recovery_codes_in(&done.body).len(), 10);
    assert_ne!(session_cookie(&app), old_cookie, "a session that proves more gets a new token");
    let back = app.get(&after(&done.body, "class=\"button\" href=\"")).await.location.unwrap();
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr.as_deref()), (vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()], Some("mfa")));
    assert!(
        app.get("/account").await.body.contains("verified with your password and your authenticator app."),
        "the same session was upgraded"
    );
    let stale = crate::helpers::browser();
    let cookie = format!("portcullis_session={old_cookie}");
    let r = stale.get(app.url("/account")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the token from before the step-up no longer works");
}

/// The value of this browser's session cookie, as the server last set it.
pub(crate) fn session_cookie(app: &TestApp) -> String {
    session_cookie_in(&app.jar, &app.base)
}

/// The value of the session cookie in `jar` for the server at `base`.
pub(crate) fn session_cookie_in(jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&url::Url::parse(base).unwrap()).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    cookies.split("; ").find_map(|c| c.strip_prefix("portcullis_session=")).unwrap_or_default().to_owned()
}

async fn recovery_codes_sign_in_once_each_and_the_user_is_told(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (_, codes) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let (to, _) = app.password_then_second_step("ada@example.com").await;
    let recovery_page = app.get(&format!("{to}&method=recovery")).await;
    assert!(recovery_page.body.contains("<label for=\"recovery_code\">Recovery code</label>"));
    let done = app
        .post("/login/verify", &[("method", "recovery"), ("code", &codes[3].to_uppercase()), ("next", "/account")], &recovery_page.body)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(app.get("/account").await.body.contains("verified with your password and a recovery code."));
    let notice = app.notice("recovery code was used").await.email;
    assert!(notice.subject.contains("recovery code was used") && notice.text.contains("9 recovery codes remain."));

    app.sign_out().await;
    let (to, _) = app.password_then_second_step("ada@example.com").await;
    let page = app.get(&format!("{to}&method=recovery")).await;
    let again = app.post("/login/verify", &[("method", "recovery"), ("code", &codes[3]), ("next", "/account")], &page.body).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "a recovery code works once");

    // Regenerating invalidates the old set.
    let _ = app.post("/login/verify", &[("method", "recovery"), ("code", &codes[4]), ("next", "/account")], &again.body).await;
    let security = app.get("/account/security").await;
    assert!(security.body.contains("8 codes left"));
    let fresh = app.post("/account/security/recovery-codes", &[], &security.body).await;
    assert_eq!(recovery_codes_in(&fresh.body).len(), 10);
    app.sign_out().await;
    let (to, _) = app.password_then_second_step("ada@example.com").await;
    let page = app.get(&format!("{to}&method=recovery")).await;
    let old = app.post("/login/verify", &[("method", "recovery"), ("code", &codes[5]), ("next", "/account")], &page.body).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Attack 2: wrong second-step answers are bounded per pending sign-in (5,
/// then it is gone) and per account (10 in the lock window, then it locks),
/// and a correct password resets neither.
async fn wrong_second_step_codes_are_bounded_per_sign_in_and_per_account(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    async fn wrong(app: &TestApp, page: Page) -> Page {
        app.post("/login/verify", &[("method", "totp"), ("code", "123456"), ("next", "/account")], &page.body).await
    }
    // One pending sign-in takes five wrong answers, then it is gone.
    let (_, mut page) = app.password_then_second_step("ada@example.com").await;
    for attempt in 1..=4 {
        page = wrong(&app, page).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {attempt}");
    }
    let fifth = wrong(&app, page).await;
    assert_eq!(fifth.status, StatusCode::BAD_REQUEST, "{}", fifth.body);
    assert!(fifth.body.contains("Too many wrong answers"), "{}", fifth.body);
    let verify = app.get("/login/verify?next=%2Faccount").await;
    assert_eq!(verify.status, StatusCode::BAD_REQUEST, "the pending sign-in is gone: {}", verify.body);
    // A correct password does not reset the account's count: four more wrong codes, then the tenth locks.
    let (_, mut page) = app.password_then_second_step("ada@example.com").await;
    for attempt in 6..=9 {
        page = wrong(&app, page).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {attempt}");
    }
    let (_, page) = app.password_then_second_step("ada@example.com").await;
    let tenth = wrong(&app, page).await;
    assert_eq!(tenth.status, StatusCode::TOO_MANY_REQUESTS, "{}", tenth.body);
    app.clock.advance(30);
    let right = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &tenth.body).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "locked: even the right code waits");
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS, "and so does the password");
    let locked = app.audit(portcullis_core::audit::AuditKind::AccountLocked).await;
    assert_eq!(locked[0].detail["second_step"], true, "{:?}", locked[0].detail);
    app.notice("locked").await;
    // The lock lifts after its time, and the right code then works.
    app.clock.advance(300);
    let (_, page) = app.password_then_second_step("ada@example.com").await;
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}

/// The README's worst case: someone with the password, guessing codes as
/// fast as the server lets them for an hour, gets at most 120 answers checked
/// (10 per lock of 5 minutes), whatever the passwords did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_guessing_second_step_codes_gets_at_most_120_answers_checked() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.enroll_totp("Phone").await;
    app.sign_out().await;
    let start = app.clock.now();
    while app.clock.now() < start + 3600 {
        let first = app.sign_in("ada@example.com", PASSWORD).await;
        if first.status == StatusCode::TOO_MANY_REQUESTS {
            app.clock.advance(10);
            continue;
        }
        let mut page = app.get(&first.location.unwrap()).await;
        loop {
            page = app.post("/login/verify", &[("method", "totp"), ("code", "000000"), ("next", "/account")], &page.body).await;
            if page.status != StatusCode::UNPROCESSABLE_ENTITY {
                break;
            }
        }
        app.clock.advance(1);
    }
    let filter = portcullis_core::audit::AuditFilter {
        kind: Some(portcullis_core::audit::AuditKind::SignInFailed),
        since: Some(start),
        limit: 10_000,
        ..Default::default()
    };
    let checked =
        app.state.accounts().operators().audit_log(&filter).await.unwrap().iter().filter(|e| e.detail["second_step"] == true).count();
    assert!((110..=120).contains(&checked), "{checked} answers checked in an hour (the bound is 120, and it is reached)");
}

/// Twenty wrong answers sent at once on one pending sign-in: only five are checked.
async fn concurrent_guesses_on_one_sign_in_are_counted_before_they_are_checked(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.enroll_totp("Phone").await;
    app.sign_out().await;
    let (_, page) = app.password_then_second_step("ada@example.com").await;
    let token = csrf_token_in(&page.body);
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (client, url, token) = (app.client.clone(), app.url("/login/verify"), token.clone());
            tokio::spawn(async move {
                let code = format!("{:06}", 100_000 + i);
                let form = [("method", "totp"), ("code", code.as_str()), ("next", "/account"), ("csrf_token", token.as_str())];
                client.post(url).form(&form).send().await.unwrap().status()
            })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        if g.await.unwrap() == StatusCode::UNPROCESSABLE_ENTITY {
            checked += 1;
        }
    }
    assert!(checked <= 4, "at most four plain refusals (the fifth ends the sign-in): {checked}");
    let failed = app.audit(portcullis_core::audit::AuditKind::SignInFailed).await;
    assert!(failed.len() <= 5, "no more than five answers were checked: {}", failed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_requires_and_resets_mfa() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    let run = |args: &[&str]| app.cli(args);
    assert!(run(&["user", "require-mfa", "--email", "ada@example.com"]).status.success());
    let r = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(r.location.unwrap().starts_with("/login/enroll"), "enrollment at next sign-in");

    let enroll = app.get("/login/enroll?next=%2Faccount").await;
    let (_, done) = app.enroll_app_inline(&enroll).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(app.get("/account").await.body.contains("verified with your password and your authenticator app."));

    let out = run(&["user", "reset-mfa", "--email", "ada@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "sessions ended");
    let again = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(again.location.unwrap().starts_with("/login/enroll"), "factors gone, MFA still required");
    assert!(!run(&["user", "reset-mfa", "--email", "nobody@example.com"]).status.success());
}

async fn a_remembered_browser_skips_the_second_step_until_forgotten(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;

    let (_, page) = app.password_then_second_step("ada@example.com").await;
    assert!(page.body.contains("<label for=\"remember\">Remember this browser</label>"));
    app.clock.advance(30);
    let done = app
        .post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("remember", "1"), ("next", "/account")], &page.body)
        .await;
    let cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portcullis_device="))
        .expect("remember cookie");
    assert!(cookie.contains("Max-Age=2592000") && cookie.contains("HttpOnly"), "{cookie}");
    app.sign_out().await;

    // Password only: straight in, and the session records the factors of the remembered sign-in.
    let again = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(again.location.as_deref(), Some("/account"));
    assert!(app.get("/account").await.body.contains("verified with your password and a browser you asked us to remember."));

    // A client that accepts remembered browsers issues at once; one that refuses them asks for a fresh code.
    let (lenient, lenient_secret) = register(&app, false, SigningAlg::ES256).await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &lenient, lenient_secret.as_deref(), Some("mfa")).await;
    let direct = app.get(url.strip_prefix(&app.base).unwrap()).await;
    let back = direct.location.unwrap();
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(
        claims_after(&app, &rp, &back, &nonce, verifier).await,
        (vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()], Some("mfa".to_owned()))
    );
    let (strict, strict_secret) = app
        .state
        .provider()
        .client_admin()
        .register(
            NewClient {
                id: None,
                name: "Bank".into(),
                redirect_uris: vec![CALLBACK.into()],
                post_logout_redirect_uris: vec![],
                public: false,
                policy: portcullis_core::oauth::ClientPolicy { mfa: MfaPolicy::Required, allow_remember: false, ..Default::default() },
                signing_alg: SigningAlg::ES256,
                service_scopes: vec![],
            },
            &RequestOrigin::command_line(),
            app.clock.now(),
        )
        .await
        .unwrap();
    let (rp, url, nonce, verifier) = authorize_url(&app, &strict.id, strict_secret.as_deref(), None).await;
    let first = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert!(first.location.as_deref().unwrap().starts_with("/login/verify"), "{:?}", first.location);
    let (back, _) = through_sign_in(&app, &url, &mut Some(secret.clone())).await;
    assert_eq!(claims_after(&app, &rp, &back, &nonce, verifier).await.0, vec!["pwd", "otp", "mfa"]);

    // Forgetting it on the security page brings the second step back.
    let security = app.get("/account/security").await;
    assert!(security.body.contains("data-testid=\"remembered-browser\""));
    let marker = "action=\"/account/security/browsers/forget\"";
    let form = &security.body[security.body.find(marker).unwrap()..];
    let id = hidden(form, "id");
    let forgotten = app.post("/account/security/browsers/forget", &[("id", &id)], &security.body).await;
    assert!(forgotten.body.contains("No browser skips two-step verification."));
    app.sign_out().await;
    let (_, page) = app.password_then_second_step("ada@example.com").await;

    // Remember again, then change the password: every remembered browser is forgotten.
    app.clock.advance(30);
    app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("remember", "1"), ("next", "/account")], &page.body)
        .await;
    let changed = app
        .submit(
            "/account",
            "/account/password",
            &[("current", PASSWORD), ("password", crate::helpers::NEW_PASSWORD), ("confirm", crate::helpers::NEW_PASSWORD)],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    app.sign_out().await;
    let r = app.sign_in("ada@example.com", crate::helpers::NEW_PASSWORD).await;
    assert!(r.location.unwrap().starts_with("/login/verify"), "a password change forgets remembered browsers");
}

async fn the_same_code_sent_twice_at_once_signs_in_exactly_once(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    app.clock.advance(30);
    let code = app.code_now(&secret);
    // Two browsers, each with its own pending sign-in, race with the same code.
    let mut forms = Vec::new();
    for _ in 0..2 {
        let browser = crate::helpers::browser();
        let login = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let token = csrf_token_in(&login);
        let r = browser
            .post(app.url("/login"))
            .form(&[("email", "ada@example.com"), ("password", PASSWORD), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/login/verify"));
        let page = browser.get(app.url("/login/verify?next=%2Faccount")).send().await.unwrap().text().await.unwrap();
        forms.push((browser, csrf_token_in(&page)));
    }
    let posts = forms.into_iter().map(|(browser, token)| {
        let url = app.url("/login/verify");
        let code = code.clone();
        tokio::spawn(async move {
            browser
                .post(url)
                .form(&[("method", "totp"), ("code", code.as_str()), ("next", "/account"), ("csrf_token", token.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let mut statuses = Vec::new();
    for p in posts.collect::<Vec<_>>() {
        statuses.push(p.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::SEE_OTHER, StatusCode::UNPROCESSABLE_ENTITY], "exactly one sign-in");
}
