//! Per-client sign-in policy: which factors count, a floor on `acr`, how old
//! a remembered browser may be; set by the command line or pinned in the
//! configuration file.

use portcullis_core::audit::RequestOrigin;
use portcullis_core::clock::Clock;
use portcullis_core::oauth::{ClientPolicy, MfaPolicy, SigningAlg};
use portcullis_oidc::clients::NewClient;
use reqwest::StatusCode;

use crate::email_codes::emailed_code;
use crate::helpers::{Backend, PASSWORD, TestApp, on_both_backends, spawn_app, spawn_app_with};
use crate::mfa::{authorize_url, claims_after, hidden};
use crate::oidc::CALLBACK;

on_both_backends!(a_client_that_allows_only_some_factors_steps_up_a_session_that_used_another,);

/// Registers an application `id` with `policy`; returns its secret.
pub(crate) async fn register_with(app: &TestApp, id: &str, policy: ClientPolicy) -> Option<String> {
    let new = NewClient {
        id: Some(id.into()),
        name: id.into(),
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![],
        public: false,
        policy,
        signing_alg: SigningAlg::ES256,
        service_scopes: vec![],
    };
    app.state.provider().client_admin().register(new, &RequestOrigin::command_line(), app.clock.now()).await.unwrap().1
}

async fn a_client_that_allows_only_some_factors_steps_up_a_session_that_used_another(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let strict = ClientPolicy { mfa: MfaPolicy::Required, allowed_factors: vec!["totp".into()], ..ClientPolicy::default() };
    let client_secret = register_with(&app, "bank", strict).await;

    // Signed in with an emailed code as the second factor: multi-factor, but not what the bank accepts.
    let (_, page) = {
        let first = app.sign_in("ada@example.com", PASSWORD).await;
        let to = first.location.unwrap();
        (to.clone(), app.get(&to).await)
    };
    let sent = app.post("/login/verify/send", &[("method", "email"), ("next", "/account")], &page.body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let code = emailed_code(&app, "ada@example.com").await;
    let done = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", "/account")], &sent.body).await;
    assert_eq!(done.location.as_deref(), Some("/account"));

    let (rp, url, nonce, verifier) = authorize_url(&app, "bank", client_secret.as_deref(), None).await;
    let step_up = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(step_up.starts_with("/login/verify"), "the email code does not count for the bank: {step_up}");
    let page = app.get(&step_up).await;
    assert!(!page.body.contains("Try another method"), "only the app is offered: {}", page.body);
    let refused = app.post("/login/verify/send", &[("method", "email"), ("next", &hidden(&page.body, "next"))], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "an emailed code is not on offer: the step is refused");
    app.clock.advance(30);
    let next = hidden(&page.body, "next");
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", &next)], &page.body).await;
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr.as_deref()), (vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()], Some("mfa")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimum_acr_cannot_be_lowered_by_the_request_and_old_remembered_browsers_are_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    let phr = register_with(&app, "vault", ClientPolicy { min_acr: Some("phr".into()), ..ClientPolicy::default() }).await;
    let (_, url, _, _) = authorize_url(&app, "vault", phr.as_deref(), Some("mfa")).await;
    let refused = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "acr_values=mfa does not lower the vault's floor: {}", refused.body);
    assert!(refused.body.contains("security key or passkey"), "{}", refused.body);

    // Remember this browser, then come back two days later.
    app.sign_out().await;
    let to = app.sign_in("ada@example.com", PASSWORD).await.location.unwrap();
    let page = app.get(&to).await;
    app.clock.advance(30);
    app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("remember", "1"), ("next", "/account")], &page.body)
        .await;
    app.sign_out().await;
    app.clock.advance(2 * 86_400);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "remembered for 30 days");
    let fresh =
        register_with(&app, "daily", ClientPolicy { mfa: MfaPolicy::Required, remember_browser_days: Some(1), ..ClientPolicy::default() })
            .await;
    let lenient =
        register_with(&app, "weekly", ClientPolicy { mfa: MfaPolicy::Required, remember_browser_days: Some(7), ..ClientPolicy::default() })
            .await;
    let (_, url, _, _) = authorize_url(&app, "weekly", lenient.as_deref(), None).await;
    let issued = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(issued.starts_with(CALLBACK), "two days is within a week: {issued}");
    let (_, url, _, _) = authorize_url(&app, "daily", fresh.as_deref(), None).await;
    let step_up = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(step_up.starts_with("/login/verify"), "two days is more than one: {step_up}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_changes_a_policy_and_rotates_a_secret_unless_the_file_pins_it() {
    let pinned = ClientPolicy { mfa: MfaPolicy::Required, ..ClientPolicy::default() };
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.clients.insert("pinned".into(), pinned.clone());
    })
    .await
    else {
        return;
    };
    let secret = register_with(&app, "wiki", ClientPolicy::default()).await.unwrap();
    register_with(&app, "pinned", ClientPolicy::default()).await;

    let out = app.cli(&[
        "client",
        "update",
        "--client-id",
        "wiki",
        "--mfa",
        "required",
        "--allowed-factors",
        "totp,webauthn",
        "--min-acr",
        "phr",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((shown["mfa"].as_str(), shown["min_acr"].as_str()), (Some("required"), Some("phr")));
    assert_eq!(shown["allowed_factors"], serde_json::json!(["totp", "webauthn"]));
    let stored = app.state.provider().client("wiki").await.unwrap().unwrap().policy;
    assert_eq!(stored.allowed_factors, vec!["totp", "webauthn"]);
    let bad = app.cli(&["client", "update", "--client-id", "wiki", "--allowed-factors", "fax"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("fax"));

    // The command line reads the same file as the server.
    let file = app.config.data_dir.join("portcullis.toml");
    std::fs::write(&file, "[clients.pinned]\nmfa = \"required\"\n").unwrap();
    let refused = app.cli(&["--config", file.to_str().unwrap(), "client", "update", "--client-id", "pinned", "--mfa", "off"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("configuration file"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert_eq!(app.state.provider().client("pinned").await.unwrap().unwrap().policy, pinned, "the file's policy is in force");

    let out = app.cli(&["client", "rotate-secret", "--client-id", "wiki"]);
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let token = |secret: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/token"))
                .basic_auth("wiki", Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(token(secret).await, StatusCode::UNAUTHORIZED, "the old secret stops working");
    assert_eq!(token(new_secret.to_owned()).await, StatusCode::OK);
    let events = app.audit(portcullis_core::audit::AuditKind::ClientChanged).await;
    let actions: Vec<&str> = events.iter().map(|e| e.detail["action"].as_str().unwrap()).collect();
    // Newest first; the two registrations of the set-up are audited too (every change to a client is).
    assert_eq!(actions, ["secret_rotated", "policy_changed", "created", "created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_for_an_application_offers_only_what_it_accepts_and_says_so_when_nothing_fits() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let only_app = ClientPolicy { mfa: MfaPolicy::Required, allowed_factors: vec!["totp".into()], ..ClientPolicy::default() };
    let bank = register_with(&app, "bank", only_app).await;
    let only_keys = ClientPolicy { mfa: MfaPolicy::Required, allowed_factors: vec!["webauthn".into()], ..ClientPolicy::default() };
    let vault = register_with(&app, "vault", only_keys).await;

    // Starting at the bank: the second step already offers only the app (no step-up after it).
    let (rp, url, nonce, verifier) = authorize_url(&app, "bank", bank.as_deref(), None).await;
    let login = app.get(&app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap()).await;
    let next = hidden(&login.body, "next");
    let to = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    let page = app.get(&to.location.unwrap()).await;
    assert!(!page.body.contains("Try another method"), "{}", page.body);
    let refused = app.post("/login/verify/send", &[("method", "email"), ("next", &next)], &page.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", &next)], &page.body).await;
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "issued at once: {back}");
    assert_eq!(claims_after(&app, &rp, &back, &nonce, verifier).await.0, vec!["pwd", "otp", "mfa"]);

    // The vault takes only keys, which Ada has not got: said plainly, from a session and from a fresh sign-in.
    let (_, url, _, _) = authorize_url(&app, "vault", vault.as_deref(), None).await;
    let refused = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("accepts only a security key or passkey"), "{}", refused.body);
    app.sign_out().await;
    let login = app.get(&app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap()).await;
    let next = hidden(&login.body, "next");
    let refused = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("accepts only a security key or passkey"), "{}", refused.body);
}
