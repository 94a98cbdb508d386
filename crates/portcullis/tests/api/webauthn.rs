//! Security keys and passkeys, driven by a software authenticator
//! (webauthn-authenticator-rs `SoftPasskey`) that answers the same options a
//! browser would receive, against the real server.

use openidconnect::Nonce;
use portcullis_core::oauth::SigningAlg;
use reqwest::StatusCode;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url};

use crate::helpers::{Backend, PASSWORD, Page, TestApp, csrf_token_in, on_both_backends, spawn_app_with};
use crate::mfa::{authorize_url, claims_after, hidden, recovery_codes_in};
use crate::oidc::{CALLBACK, register};

macro_rules! on_both_backends_webauthn {
    ($($name:ident),* $(,)?) => {
        mod sqlite_webauthn { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = $crate::helpers::spawn_webauthn_app($crate::helpers::Backend::Sqlite).await { super::$name(app).await } } )* }
        mod postgres_webauthn { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = $crate::helpers::spawn_webauthn_app($crate::helpers::Backend::Postgres).await { super::$name(app).await } } )* }
    };
}

on_both_backends_webauthn!(
    a_security_key_completes_the_second_step_once_per_challenge,
    a_passkey_signs_in_without_a_password_and_the_application_gets_hwk_user_mfa_and_phr,
    a_counter_that_goes_backwards_refuses_the_sign_in_and_disables_the_key,
    an_expired_ceremony_is_refused,
    another_users_credential_is_refused,
    acr_phr_is_met_only_by_webauthn,
    a_key_set_up_in_this_session_does_not_make_it_phishing_resistant,
    a_key_set_up_inline_does_not_make_the_sign_in_phishing_resistant,
);

on_both_backends!(an_ip_address_issuer_offers_no_passkeys);

/// A software authenticator and the origin it believes it is on.
pub(crate) struct Key {
    soft: SoftPasskey,
    origin: Url,
    /// The WebAuthn user handle seen at registration (returned with discoverable assertions).
    user_handle: Vec<u8>,
    /// The credential id (for injecting into discoverable requests, which name none).
    credential_id: Vec<u8>,
}

impl Key {
    fn new(app: &TestApp) -> Self {
        Self::for_origin(&app.config.issuer)
    }

    /// A key for the site at `origin` (the issuer).
    pub(crate) fn for_origin(origin: &str) -> Self {
        // `true`: claims user verification, as a passkey unlocked by PIN or biometric would.
        Self { soft: SoftPasskey::new(true), origin: Url::parse(origin).unwrap(), user_handle: Vec::new(), credential_id: Vec::new() }
    }

    pub(crate) fn create(&mut self, options: serde_json::Value) -> String {
        let mut options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        self.user_handle = options.public_key.user.id.clone();
        // The software key cannot store resident keys; the server cannot tell (and a browser would).
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = false;
        }
        let reg = self.soft.do_registration(self.origin.clone(), options).unwrap();
        self.credential_id = reg.raw_id.clone();
        serde_json::to_string(&reg).unwrap()
    }

    pub(crate) fn assert(&mut self, mut options: serde_json::Value) -> PublicKeyCredential {
        let allowed = &mut options["publicKey"]["allowCredentials"];
        if allowed.as_array().is_none_or(Vec::is_empty) {
            // A discoverable request names no credential; the software key needs one to find its key.
            *allowed = serde_json::json!([{ "type": "public-key", "id": data_encoding::BASE64URL_NOPAD.encode(&self.credential_id) }]);
        }
        let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let mut answer = self.soft.do_authentication(self.origin.clone(), options).unwrap();
        answer.response.user_handle = Some(self.user_handle.clone());
        answer
    }
}

pub(crate) fn json(c: &PublicKeyCredential) -> String {
    serde_json::to_string(c).unwrap()
}

impl TestApp {
    /// POSTs a form to a WebAuthn options endpoint; returns (ceremony, options).
    async fn webauthn_options(&self, path: &str, fields: &[(&str, &str)], csrf_from: &str) -> (String, serde_json::Value) {
        let mut all = fields.to_vec();
        let token = csrf_token_in(csrf_from);
        all.push(("csrf_token", &token));
        let r = self.client.post(self.url(path)).form(&all).send().await.unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        (body["ceremony"].as_str().unwrap().to_owned(), body["options"].clone())
    }

    /// Starts registering a security key or passkey from the security page: (that page, ceremony, options).
    async fn begin_key(&self, kind: &str, name: &str) -> (Page, String, serde_json::Value) {
        let security = self.get("/account/security").await;
        assert!(security.body.contains("Add a security key") && security.body.contains("Create a passkey"));
        let (ceremony, options) =
            self.webauthn_options("/account/security/webauthn/options", &[("kind", kind), ("name", name)], &security.body).await;
        (security, ceremony, options)
    }

    async fn finish_key(&self, security: &Page, kind: &str, ceremony: &str, credential: &str) -> Page {
        self.post("/account/security/webauthn", &[("kind", kind), ("ceremony", ceremony), ("credential", credential)], &security.body).await
    }

    /// Registers a security key or passkey from the security page; returns the page shown after.
    async fn add_key(&self, key: &mut Key, kind: &str, name: &str) -> Page {
        let (security, ceremony, options) = self.begin_key(kind, name).await;
        let credential = key.create(options);
        self.finish_key(&security, kind, &ceremony, &credential).await
    }

    /// From the second-step page: a WebAuthn challenge answered by `key` (not yet sent).
    async fn key_answer(&self, key: &mut Key, page: &Page) -> (String, PublicKeyCredential) {
        let (ceremony, options) = self.webauthn_options("/login/verify/options", &[("method", "webauthn")], &page.body).await;
        (ceremony, key.assert(options))
    }

    /// Answers the second-step page `page` with `key`, on to the page's `next`.
    async fn answer_with_key(&self, key: &mut Key, page: &Page) -> Page {
        let (ceremony, answer) = self.key_answer(key, page).await;
        let fields =
            [("method", "webauthn"), ("ceremony", &ceremony), ("credential", &json(&answer)), ("next", &hidden(&page.body, "next"))];
        self.post("/login/verify", &fields, &page.body).await
    }

    async fn send_key_answer(&self, page: &Page, ceremony: &str, answer: &PublicKeyCredential) -> Page {
        self.post(
            "/login/verify",
            &[("method", "webauthn"), ("ceremony", ceremony), ("credential", &json(answer)), ("next", "/account")],
            &page.body,
        )
        .await
    }

    /// "Sign in with a passkey" from the sign-in page.
    async fn passkey_sign_in(&self, key: &mut Key, next: &str) -> Page {
        let login = self.get(&format!("/login?next={}", crate::oidc::urlenc(next))).await;
        assert!(login.body.contains("Sign in with a passkey") && login.body.contains("autocomplete=\"username webauthn\""));
        let (ceremony, options) = self.webauthn_options("/login/passkey/options", &[], &login.body).await;
        let answer = key.assert(options);
        self.post("/login/passkey", &[("ceremony", &ceremony), ("credential", &json(&answer)), ("next", next)], &login.body).await
    }

    async fn password_to_second_step(&self, email: &str) -> Page {
        let first = self.sign_in(email, PASSWORD).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let to = first.location.unwrap();
        assert!(to.starts_with("/login/verify"), "{to}");
        self.get(&to).await
    }
}

async fn a_security_key_completes_the_second_step_once_per_challenge(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    let added = app.add_key(&mut key, "security_key", "Blue key").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(recovery_codes_in(&added.body).len(), 10, "the first factor comes with recovery codes");
    let security = app.get("/account/security").await;
    assert!(security.body.contains("Blue key") && security.body.contains("Security key · added"), "{}", security.body);
    assert!(app.notice("was added").await.email.text.contains("A security key named \"Blue key\" was added"));
    app.sign_out().await;

    let page = app.password_to_second_step("ada@example.com").await;
    assert!(page.body.contains("Use a security key or passkey"), "the strongest factor is offered first: {}", page.body);
    assert!(page.body.contains("Try another method"), "recovery codes remain");
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the password alone did not sign in");
    let (ceremony, answer) = app.key_answer(&mut key, &page).await;
    let done = app.send_key_answer(&page, &ceremony, &answer).await;
    assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")), "{}", done.body);
    assert!(app.get("/account").await.body.contains("verified with your password and a security key."));

    // The same answer again, in a new sign-in: its challenge was used up.
    app.sign_out().await;
    let page = app.password_to_second_step("ada@example.com").await;
    let replay = app.send_key_answer(&page, &ceremony, &answer).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(replay.body.contains("was not accepted"), "{}", replay.body);
    // Garbage instead of an answer is a clear refusal too.
    let garbage = app.post("/login/verify", &[("method", "webauthn"), ("ceremony", "x"), ("credential", "{not json")], &page.body).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    let (ceremony, answer) = app.key_answer(&mut key, &page).await;
    assert_eq!(app.send_key_answer(&page, &ceremony, &answer).await.status, StatusCode::SEE_OTHER, "a fresh challenge works");
    let security = app.get("/account/security").await;
    assert!(security.body.contains("last used"), "last use is shown");
}

async fn a_passkey_signs_in_without_a_password_and_the_application_gets_hwk_user_mfa_and_phr(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    let added = app.add_key(&mut key, "passkey", "Laptop").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(app.get("/account/security").await.body.contains("Passkey · added"));
    app.sign_out().await;

    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let (rp, url, nonce, verifier): (_, String, Nonce, _) = authorize_url(&app, &id, secret.as_deref(), Some("phr")).await;
    let to_login = app.get(url.strip_prefix(&app.base).unwrap()).await;
    let login = to_login.location.unwrap();
    let next = url::Url::parse(&format!("{}{login}", app.base)).unwrap().query_pairs().find(|(k, _)| k == "next").unwrap().1.into_owned();
    let signed_in = app.passkey_sign_in(&mut key, &next).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    let back = app.get(&signed_in.location.unwrap()).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "no second step after a user-verified passkey: {back}");
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!(amr, vec!["hwk", "user", "mfa"]);
    assert_eq!(acr.as_deref(), Some("phr"));
}

async fn a_counter_that_goes_backwards_refuses_the_sign_in_and_disables_the_key(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    let codes = recovery_codes_in(&app.add_key(&mut key, "security_key", "Blue key").await.body);
    app.sign_out().await;

    // Two sign-ins at once; the key answers the second first (counter 1), then the first (counter 2).
    let page = app.password_to_second_step("ada@example.com").await;
    let other = app.other_browser();
    let other_app = TestApp2Page::sign_in(&app, &other).await;
    let (late_ceremony, late_answer) = {
        let (c, o) = other_app.options(&app, &other).await;
        (c, key.assert(o))
    };
    let (ceremony, answer) = app.key_answer(&mut key, &page).await;
    let fields = [("method", "webauthn"), ("ceremony", &ceremony), ("credential", &json(&answer)), ("remember", "1"), ("next", "/account")];
    assert_eq!(
        app.post("/login/verify", &fields, &page.body).await.status,
        StatusCode::SEE_OTHER,
        "signed in, and this browser remembered"
    );

    // The older answer carries a lower counter: a copy of the key may exist.
    let refused = other_app.send(&app, &other, &late_ceremony, &late_answer).await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN, "{}", refused.1);
    assert!(refused.1.contains("which can mean it was copied"), "{}", refused.1);
    app.notice("a security key was disabled").await;
    // What the key vouched for ends: the session it was used in and the browser it remembered.
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the session the key signed in is over");
    let cloned = app.audit(portcullis_core::audit::AuditKind::AuthenticatorCloned).await;
    assert_eq!(cloned[0].detail["sessions_ended"], 1, "{:?}", cloned[0].detail);

    // The disabled key no longer counts: it is not offered, and the remembered browser does not stand in for it.
    let page = app.password_to_second_step("ada@example.com").await;
    assert!(!page.body.contains("Use a security key or passkey"), "{}", page.body);
    assert!(
        page.body.contains("<label for=\"recovery_code\">Recovery code</label>"),
        "the recovery codes are offered instead: {}",
        page.body
    );
    let done = app.post("/login/verify", &[("method", "recovery"), ("code", &codes[0]), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let security = app.get("/account/security").await;
    assert!(security.body.contains("data-testid=\"factor-disabled\""), "the security page shows it");
}

/// A second browser's sign-in waiting for its second step.
struct TestApp2Page {
    page: String,
}

impl TestApp2Page {
    async fn sign_in(app: &TestApp, other: &crate::helpers::TestApp2<'_>) -> Self {
        assert_eq!(other.sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
        let page = other.client.get(app.url("/login/verify?next=%2Faccount")).send().await.unwrap().text().await.unwrap();
        Self { page }
    }

    async fn options(&self, app: &TestApp, other: &crate::helpers::TestApp2<'_>) -> (String, serde_json::Value) {
        let token = csrf_token_in(&self.page);
        let r = other.client.post(app.url("/login/verify/options")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        (body["ceremony"].as_str().unwrap().to_owned(), body["options"].clone())
    }

    async fn send(
        &self,
        app: &TestApp,
        other: &crate::helpers::TestApp2<'_>,
        ceremony: &str,
        answer: &PublicKeyCredential,
    ) -> (StatusCode, String) {
        let token = csrf_token_in(&self.page);
        let credential = json(answer);
        let form = [("csrf_token", token.as_str()), ("method", "webauthn"), ("ceremony", ceremony), ("credential", credential.as_str())];
        let r = other.client.post(app.url("/login/verify")).form(&form).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

async fn an_expired_ceremony_is_refused(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    // A registration answered after five minutes is refused.
    let (security, ceremony, options) = app.begin_key("passkey", "Slow").await;
    let credential = key.create(options);
    app.clock.advance(301);
    let late = app.finish_key(&security, "passkey", &ceremony, &credential).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "{}", late.body);
    assert!(!app.get("/account/security").await.body.contains("Slow"));

    let mut key = Key::new(&app);
    app.add_key(&mut key, "passkey", "Laptop").await;
    app.sign_out().await;
    // Second step: the challenge lapses before the (still valid) pending sign-in does.
    let page = app.password_to_second_step("ada@example.com").await;
    let (ceremony, answer) = app.key_answer(&mut key, &page).await;
    app.clock.advance(301);
    assert_eq!(app.send_key_answer(&page, &ceremony, &answer).await.status, StatusCode::UNAUTHORIZED);
    // Passwordless: the same.
    let login = app.get("/login").await;
    let (ceremony, options) = app.webauthn_options("/login/passkey/options", &[], &login.body).await;
    let answer = key.assert(options);
    app.clock.advance(301);
    let late = app.post("/login/passkey", &[("ceremony", &ceremony), ("credential", &json(&answer))], &login.body).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "{}", late.body);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "not signed in");
}

async fn another_users_credential_is_refused(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.verified_user("bob@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut ada_key = Key::new(&app);
    app.add_key(&mut ada_key, "passkey", "Ada's passkey").await;
    let mut ada_security_key = Key::new(&app);
    app.add_key(&mut ada_security_key, "security_key", "Ada's key").await;
    app.sign_out().await;
    app.sign_in("bob@example.com", PASSWORD).await;
    let mut bob_key = Key::new(&app);
    app.add_key(&mut bob_key, "security_key", "Bob's key").await;
    app.sign_out().await;

    // Bob's second step answered with Ada's passkey (named in the request by an attacker).
    let page = app.password_to_second_step("bob@example.com").await;
    let (ceremony, options) = app.webauthn_options("/login/verify/options", &[], &page.body).await;
    let mut options = options;
    options["publicKey"]["allowCredentials"] = serde_json::json!([]);
    let answer = ada_key.assert(options);
    let refused = app.send_key_answer(&page, &ceremony, &answer).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);

    // Passwordless with Ada's passkey claiming to be Bob (user handle swapped): refused.
    let ada_handle = std::mem::replace(&mut ada_key.user_handle, bob_key.user_handle.clone());
    let page = ada_key.passkey_attempt(&app).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    // A second-factor security key does not sign in without a password, even with its own handle.
    let page = ada_security_key.passkey_attempt(&app).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "nobody is signed in");
    // Ada's own passkey with her own handle does.
    ada_key.user_handle = ada_handle;
    assert_eq!(ada_key.passkey_attempt(&app).await.status, StatusCode::SEE_OTHER);
    assert!(app.get("/account").await.body.contains("verified with a passkey."));
}

impl Key {
    async fn passkey_attempt(&mut self, app: &TestApp) -> Page {
        let login = app.get("/login").await;
        let (ceremony, options) = app.webauthn_options("/login/passkey/options", &[], &login.body).await;
        let answer = self.assert(options);
        app.post("/login/passkey", &[("ceremony", &ceremony), ("credential", &json(&answer)), ("next", "/account")], &login.body).await
    }
}

async fn acr_phr_is_met_only_by_webauthn(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;

    // TOTP only: an application asking for phr gets an explanation, not a TOTP prompt.
    let (_, url, _, _) = authorize_url(&app, &id, client_secret.as_deref(), Some("phr")).await;
    let page = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("requires a security key or passkey"));

    // With a security key, the step-up offers only it; a TOTP code is refused there.
    let mut key = Key::new(&app);
    app.add_key(&mut key, "security_key", "Blue key").await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), Some("phr")).await;
    let step_up = app.get(url.strip_prefix(&app.base).unwrap()).await;
    let to = step_up.location.unwrap();
    assert!(to.starts_with("/login/verify"), "{to}");
    let page = app.get(&to).await;
    assert!(page.body.contains("Use a security key or passkey"));
    assert!(!page.body.contains("Try another method"), "no other method satisfies phr");
    let totp_page = app.get(&to.replace("/login/verify?", "/login/verify?method=totp&")).await;
    assert!(!totp_page.body.contains("name=\"code\""), "asking for TOTP by hand still shows the key");
    app.clock.advance(30);
    let code = portcullis_core::factors::totp::code_at_step(&secret, portcullis_core::factors::totp::step_at(app.clock_now()), 6);
    let refused = app.post("/login/verify", &[("method", "totp"), ("code", &code)], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a right TOTP code does not satisfy phr: the step is refused: {}", refused.body);
    let done = app.answer_with_key(&mut key, &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    // The app confirmed on the security page counts as used in this session (it answered its first code there).
    assert_eq!(amr, vec!["pwd", "otp", "hwk", "mfa"]);
    assert_eq!(acr.as_deref(), Some("phr"));
}

/// Password, then a first security key registered from the security page:
/// the session is multi-factor, but not phishing-resistant, because whoever
/// had the password could have registered their own key. An application that
/// asks for `phr` gets a step-up with the key; only its next use counts.
async fn a_key_set_up_in_this_session_does_not_make_it_phishing_resistant(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    let added = app.add_key(&mut key, "security_key", "Blue key").await;
    assert!(added.body.contains("data-testid=\"recovery-codes\""), "the first factor comes with recovery codes");
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;

    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), Some("mfa")).await;
    let back = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "password and the new key are MFA: {back}");
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr.as_deref()), (vec!["pwd".to_owned(), "hwk".into(), "mfa".into()], Some("mfa")), "never phr from this session");

    let (rp, url, nonce, verifier) = authorize_url(&app, &id, client_secret.as_deref(), Some("phr")).await;
    let to = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(to.starts_with("/login/verify"), "phr needs the key used again: {to}");
    let page = app.get(&to).await;
    let done = app.answer_with_key(&mut key, &page).await;
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    let (_, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!(acr.as_deref(), Some("phr"));
}

/// The same through inline setup: an application that requires MFA has a
/// user without a factor register a security key during the sign-in; an
/// application that then asks for `phr` gets a step-up with the key.
async fn a_key_set_up_inline_does_not_make_the_sign_in_phishing_resistant(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    let (_, url, _, _) = authorize_url(&app, &id, client_secret.as_deref(), Some("mfa")).await;
    let login = app.get(&app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap()).await;
    let fields = [("email", "ada@example.com"), ("password", PASSWORD), ("next", &hidden(&login.body, "next"))];
    let to = app.post("/login", &fields, &login.body).await.location.unwrap();
    assert!(to.starts_with("/login/enroll"), "a factor is set up first: {to}");
    let enroll = app.get(&to).await;
    let (ceremony, options) =
        app.webauthn_options("/login/enroll/webauthn/options", &[("kind", "security_key"), ("name", "Blue key")], &enroll.body).await;
    let mut key = Key::new(&app);
    let credential = key.create(options);
    let fields = [("kind", "security_key"), ("ceremony", &ceremony), ("credential", &credential), ("next", &hidden(&enroll.body, "next"))];
    let done = app.post("/login/enroll/webauthn", &fields, &enroll.body).await;
    assert!(done.body.contains("data-testid=\"recovery-codes\""), "signed in, with recovery codes: {}", done.body);

    let (_, url, _, _) = authorize_url(&app, &id, client_secret.as_deref(), Some("phr")).await;
    let to = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(to.starts_with("/login/verify"), "phr needs the key used again: {to}");
}

async fn an_ip_address_issuer_offers_no_passkeys(app: TestApp) {
    assert!(app.config.issuer.contains("127.0.0.1"));
    let login = app.get("/login").await;
    assert!(!login.body.contains("Sign in with a passkey"), "browsers refuse IP addresses as relying parties");
    let r = app.client.post(app.url("/login/passkey/options")).form(&[("csrf_token", csrf_token_in(&login.body))]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not available"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_attestation_refuses_a_self_attested_key() {
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/attestation-root.pem");
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.webauthn.allowed_authenticators = vec![portcullis::config::AllowedAuthenticatorConfig {
            aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8".into(),
            name: "YubiKey 5 Series".into(),
            ca_file: ca.into(),
        }];
    })
    .await
    else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let mut key = Key::new(&app);
    let (security, ceremony, options) = app.begin_key("security_key", "Soft").await;
    assert_eq!(options["publicKey"]["attestation"], "direct", "attestation is requested");
    let credential = key.create(options);
    let refused = app.finish_key(&security, "security_key", &ceremony, &credential).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(!app.get("/account/security").await.body.contains("Soft"), "the key was not added");
}
