//! Issue 19's attacks on tokens and the protocol: each test here failed
//! before the fix it names (see the closing note of that issue).

use portcullis_core::audit::RequestOrigin;
use portcullis_core::oauth::SigningAlg;
use portcullis_oidc::clients::NewClient;
use reqwest::StatusCode;

use crate::helpers::{Backend, NEW_PASSWORD, PASSWORD, TestApp, on_both_backends, spawn_app};
use crate::oidc::{CALLBACK, introspect, register, signed_in_code, token_request, urlenc};

on_both_backends!(
    introspection_tells_a_client_only_about_its_own_tokens,
    a_client_presenting_another_clients_code_or_refresh_token_spends_nothing,
    an_access_token_is_no_id_token_hint,
    what_a_request_in_flight_at_a_reset_writes_afterwards_is_dead,
    a_deleted_accounts_access_tokens_are_inactive,
);

/// The tokens an application got for ada: (client id, secret, access token, refresh token).
pub(crate) async fn tokens_for_ada(app: &TestApp) -> (String, String, String, String) {
    let (id, secret) = register(app, false, SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let rp = app.rp(&id, Some(&secret)).await;
    let (code, verifier, _) = signed_in_code(app, &rp).await;
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())];
    let (status, body) = token_request(app, &form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access, refresh) = (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap().to_owned());
    (id, secret, access, refresh)
}

/// Whether the application's tokens still work: /userinfo with the access
/// token, and a refresh.
pub(crate) async fn tokens_work(app: &TestApp, (id, secret): (&str, &str), access: &str, refresh: &str) -> (StatusCode, StatusCode) {
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap().status();
    let (refreshed, _) = token_request(app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((id, secret))).await;
    (userinfo, refreshed)
}

/// What can end an account's sign-ins.
#[derive(Debug, Clone, Copy)]
enum Ending {
    ResetByLink,
    PasswordChange,
    MfaResetByOperator,
    SignOutEverywhere,
}

/// Each way of ending what a password vouched for also ends what
/// applications were given: the refresh token and the access token die.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_or_change_an_mfa_reset_and_signing_out_everywhere_end_the_applications_tokens() {
    for ending in [Ending::ResetByLink, Ending::PasswordChange, Ending::MfaResetByOperator, Ending::SignOutEverywhere] {
        let Some(app) = spawn_app(Backend::Sqlite).await else { return };
        app.verified_user("ada@example.com").await;
        let (id, secret, access, refresh) = tokens_for_ada(&app).await;
        assert_eq!(tokens_work(&app, (&id, &secret), &access, &refresh).await, (StatusCode::OK, StatusCode::OK), "{ending:?}: before");
        // The refresh rotated the token; take a fresh pair to test the ending with.
        let (_, _, access, refresh) = tokens_for_ada(&app).await;
        match ending {
            Ending::ResetByLink => {
                app.submit("/forgot-password", "/forgot-password", &[("email", "ada@example.com")]).await;
                let link = app.last_link_to("ada@example.com").await;
                let token = link.split("token=").nth(1).unwrap().to_owned();
                let done =
                    app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
                assert_eq!(done.status, StatusCode::OK, "{}", done.body);
            }
            Ending::PasswordChange => {
                let changed = app
                    .submit(
                        "/account",
                        "/account/password",
                        &[("current", PASSWORD), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
                    )
                    .await;
                assert!(changed.status.is_success() || changed.status.is_redirection(), "{}", changed.body);
            }
            Ending::MfaResetByOperator => {
                app.state
                    .accounts()
                    .operators()
                    .reset_mfa("ada@example.com", &RequestOrigin::command_line(), app.clock_now())
                    .await
                    .unwrap();
            }
            Ending::SignOutEverywhere => {
                let out = app.submit("/account", "/logout/everywhere", &[]).await;
                assert!(out.status.is_redirection(), "{}", out.body);
            }
        }
        let (userinfo, refreshed) = tokens_work(&app, (&id, &secret), &access, &refresh).await;
        assert_eq!((userinfo, refreshed), (StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST), "{ending:?}: the tokens outlived it");
    }
}

/// What a request in flight at a password reset writes after the reset is
/// dead on arrival: a session opened by a sign-in that read the account
/// before it (its Argon2 check straddling the reset), a code issued from a
/// session checked before it, and a refresh token rotated across it. Each is
/// written here, after the reset, with what such a request had read.
async fn what_a_request_in_flight_at_a_reset_writes_afterwards_is_dead(app: TestApp) {
    use portcullis_core::account_store::{AccountStore, FinishedSignIn};
    use portcullis_core::oauth::{AuthorizationCode, Grant, OidcStore};
    use portcullis_core::policy::LastSignIn;
    use portcullis_core::secrets::{random_token, token_digest};
    use portcullis_core::session::{AuthMethod, AuthRecord, SessionRecord};

    app.verified_user("ada@example.com").await;
    let (id, secret, _, _) = tokens_for_ada(&app).await;
    let store = app.state.accounts().store();
    let ada = store.user_by_email(&portcullis_core::email::EmailAddress::parse("ada@example.com").unwrap()).await.unwrap().unwrap();
    // The reset, by the emailed link.
    app.submit("/forgot-password", "/forgot-password", &[("email", "ada@example.com")]).await;
    let link = app.last_link_to("ada@example.com").await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let done = app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let now = app.clock_now();

    // A session from a sign-in that read ada before the reset.
    let cookie = random_token();
    let session = SessionRecord {
        id: "straddling".into(),
        user_id: ada.id,
        created_at: now,
        last_seen_at: now,
        auth: AuthRecord::single(AuthMethod::Password, now),
        ip: "192.0.2.1".into(),
        user_agent: "Firefox".into(),
        security_epoch: ada.security_epoch,
    };
    let event = portcullis_core::audit::NewAuditEvent::new(
        portcullis_core::audit::AuditKind::SignInSucceeded,
        Some(ada.id),
        &RequestOrigin::default(),
        serde_json::json!({}),
        now,
    );
    let last = LastSignIn { at: now, ip: String::new(), location: Default::default() };
    let finished = FinishedSignIn {
        session_digest: &token_digest(&cookie),
        session: &session,
        expires_at: now + 3600,
        event: &event,
        device_digest: "d",
        remember_device: false,
        last: &last,
    };
    store.record_sign_in(&finished).await.unwrap();
    let page =
        crate::helpers::browser().get(app.url("/account")).header("cookie", format!("portcullis_session={cookie}")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "the straddling sign-in's session is no session");

    // A code and a refresh token of a grant made from a session checked before the reset.
    let grant = |grant_id: &str| Grant {
        grant_id: grant_id.into(),
        client_id: id.clone(),
        user_id: ada.id,
        scope: "openid offline_access".into(),
        auth: AuthRecord::single(AuthMethod::Password, now),
        session_id: "before".into(),
        acr: None,
        security_epoch: ada.security_epoch,
    };
    let code = random_token();
    let stored = AuthorizationCode {
        digest: token_digest(&code),
        grant: grant("late-code"),
        redirect_uri: CALLBACK.into(),
        nonce: None,
        code_challenge: None,
        created_at: now,
        expires_at: now + 60,
    };
    store.insert_authorization_code(&stored).await.unwrap();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CALLBACK)];
    let (status, body) = token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "a late code: {body}");
    // A refresh token stored by a code exchange in flight at the reset (in the transaction that spent its code).
    let (late_code, refresh) = (random_token(), random_token());
    store
        .insert_authorization_code(&AuthorizationCode { digest: token_digest(&late_code), grant: grant("late-refresh"), ..stored })
        .await
        .unwrap();
    let exchange =
        store.consume_authorization_code(&token_digest(&late_code), &id, (&token_digest(&refresh), now + 3600), now).await.unwrap();
    assert!(matches!(exchange, portcullis_core::oauth::OneTimeUse::Fresh(_)));
    assert_eq!(introspect(&app, (&id, &secret), &refresh).await["active"], false, "introspection agrees");
    let (status, body) = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "a late refresh token: {body}");

    // A browser remembered by a second step finished across the reset.
    let late = portcullis_core::factors::RememberedBrowser {
        id: "late".into(),
        user_id: ada.id,
        auth: AuthRecord::single(AuthMethod::TOTP, now),
        user_agent: "Firefox".into(),
        created_at: now,
        expires_at: now + 3600,
        last_used_at: None,
        security_epoch: ada.security_epoch,
    };
    use portcullis_core::factors::MfaStore;
    store.insert_remembered_browser(&late).await.unwrap();
    assert!(store.use_remembered_browser(ada.id, "late", now).await.unwrap().is_none(), "a late remembered browser stands in for nothing");

    // What the new password opens is alive (the reset signed the browser out).
    let signed_in = app.sign_in("ada@example.com", NEW_PASSWORD).await;
    assert!(signed_in.status.is_redirection(), "{}", signed_in.body);
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
    let (id, secret, access, refresh) = tokens_for_ada(&app).await;
    assert_eq!(tokens_work(&app, (&id, &secret), &access, &refresh).await, (StatusCode::OK, StatusCode::OK));
}

/// RFC 7662 §4: another client's token is `{"active": false}`, not its user and scope.
async fn introspection_tells_a_client_only_about_its_own_tokens(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret, access, refresh) = tokens_for_ada(&app).await;
    let (other, other_secret) = register(&app, false, SigningAlg::ES256).await;
    let other = (other.as_str(), other_secret.as_deref().unwrap());
    for token in [&access, &refresh] {
        assert_eq!(introspect(&app, other, token).await, serde_json::json!({ "active": false }), "another client learns nothing");
        let own = introspect(&app, (&id, &secret), token).await;
        assert_eq!((own["active"].as_bool(), own["client_id"].as_str()), (Some(true), Some(id.as_str())), "{own}");
    }
}

/// A client that got hold of another's code or refresh token cannot use it,
/// and does not burn it: the owner's next use is not taken for a replay.
async fn a_client_presenting_another_clients_code_or_refresh_token_spends_nothing(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let (thief, thief_secret) = register(&app, false, SigningAlg::ES256).await;
    let thief = (thief.as_str(), thief_secret.as_deref().unwrap());
    let rp = app.rp(&id, Some(&secret)).await;
    let (code, verifier, _) = signed_in_code(&app, &rp).await;
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())];
    let (status, body) = token_request(&app, &form, Some(thief)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, body) = token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "the owner's code still works: {body}");

    let refresh = body["refresh_token"].as_str().unwrap();
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, stolen) = token_request(&app, &refresh_form, Some(thief)).await;
    assert_eq!((status, stolen["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, body) = token_request(&app, &refresh_form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "the owner's refresh token still works, and the grant is not revoked: {body}");
}

/// An access token of ours is no `id_token_hint`: it signs no one out without asking.
async fn an_access_token_is_no_id_token_hint(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let rp = app.rp(&id, Some(&secret)).await;
    let (code, verifier, _) = signed_in_code(&app, &rp).await;
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())];
    let (_, body) = token_request(&app, &form, Some((&id, &secret))).await;
    let access = body["access_token"].as_str().unwrap();
    let forged = app.get(&format!("/end-session?id_token_hint={}", urlenc(access))).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    assert_eq!(app.get("/account").await.status, StatusCode::OK, "still signed in");
    let id_token = body["id_token"].as_str().unwrap();
    let real = app.get(&format!("/end-session?id_token_hint={}", urlenc(id_token))).await;
    assert!(real.status.is_redirection() || real.status == StatusCode::OK, "{}", real.body);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the ID token's own user is signed out");
}

/// A client's own token (`client_credentials`) carries only the scopes
/// registered for it, and never a user's (`openid`, `offline_access`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_token_carries_only_its_registered_scopes() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let out = app.cli(&["client", "create", "--name", "Reports", "--redirect-uri", CALLBACK, "--scope", "reports.read,audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let grant = |scope: Option<&'static str>| {
        let app = &app;
        async move {
            let mut form = vec![("grant_type", "client_credentials")];
            if let Some(s) = scope {
                form.push(("scope", s));
            }
            token_request(app, &form, Some((id, secret))).await
        }
    };
    let (status, body) = grant(None).await;
    assert_eq!((status, body["scope"].as_str()), (StatusCode::OK, Some("reports.read audit")), "its registered scopes: {body}");
    let (status, body) = grant(Some("audit")).await;
    assert_eq!((status, body["scope"].as_str()), (StatusCode::OK, Some("audit")));
    for asked in ["openid email offline_access anything:admin", "openid", "offline_access", "reports.write"] {
        let (status, body) = grant(Some(asked)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")), "{asked}: {body}");
    }
    let refused = app.cli(&["client", "update", "--client-id", id, "--scope", "openid"]);
    assert!(!refused.status.success(), "a user's scope cannot be registered for a client's own tokens");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("granted by a user"), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// Redirect URIs a browser would run or read locally are refused at registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_or_file_url_is_no_redirect_uri() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    for bad in ["javascript://%0Aalert(document.domain)", "data:text/html,hi", "file:///etc/passwd", "myapp:/cb"] {
        let new = NewClient {
            id: None,
            name: "Bad".into(),
            redirect_uris: vec![bad.into()],
            post_logout_redirect_uris: vec![],
            public: true,
            policy: Default::default(),
            signing_alg: SigningAlg::ES256,
            service_scopes: vec![],
        };
        let refused = app.state.provider().client_admin().register(new, &RequestOrigin::command_line(), app.clock_now()).await;
        assert!(refused.is_err(), "{bad} was registered");
        let out = app.cli(&["client", "create", "--name", "Bad", "--public", "--redirect-uri", bad]);
        assert!(!out.status.success(), "{bad} was registered by the CLI");
        assert!(String::from_utf8_lossy(&out.stderr).contains("redirect URI"), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let native = app.cli(&["client", "create", "--name", "App", "--public", "--redirect-uri", "com.example.app:/oauth2redirect"]);
    assert!(native.status.success(), "a native app's private-use scheme is fine");

    // A client stored before these rules keeps its address, but it is not used.
    use portcullis_core::oauth::OidcStore;
    let old_uri = "javascript://%0Aalert(document.domain)";
    let old = portcullis_core::oauth::Client {
        id: "old-app".into(),
        name: "Old".into(),
        secret_digest: None,
        redirect_uris: vec![old_uri.into()],
        post_logout_redirect_uris: vec![],
        policy: Default::default(),
        signing_alg: SigningAlg::ES256,
        service_scopes: vec![],
        self_registered: false,
        created_at: 0,
    };
    app.state.accounts().store().create_client(&old).await.unwrap();
    let outdated = app.state.provider().client_admin().outdated_redirect_uris().await.unwrap();
    assert_eq!(outdated, [("old-app".to_owned(), old_uri.to_owned())], "named at start-up");
    let url = format!(
        "/authorize?response_type=code&client_id=old-app&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlenc(old_uri)
    );
    let page = app.get(&url).await;
    assert_eq!((page.status, page.location), (StatusCode::BAD_REQUEST, None), "an error page, never a redirect there");
    assert!(page.body.contains("operator must update it"), "{}", page.body);
    // The operator replaces it; a bad replacement is refused like a registration.
    let bad = app.cli(&["client", "update", "--client-id", "old-app", "--redirect-uri", "http://app.example/cb"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("must use https"), "{bad:?}");
    let fixed = app.cli(&["client", "update", "--client-id", "old-app", "--redirect-uri", "https://app.example/cb"]);
    assert!(fixed.status.success(), "{}", String::from_utf8_lossy(&fixed.stderr));
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("https://app.example/cb"));
    assert!(app.state.provider().client_admin().outdated_redirect_uris().await.unwrap().is_empty());
}

/// SMS pumping: confirmation texts to new numbers count against the same
/// per-address cap as every other code, and one account adds at most three
/// numbers a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_phone_numbers_is_capped_per_account_and_per_address_like_every_text() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let mut statuses = Vec::new();
    for account in 0..11 {
        let email = format!("u{account}@example.com");
        app.verified_user(&email).await;
        app.sign_in(&email, PASSWORD).await;
        let mut mine = Vec::new();
        for n in 0..4 {
            app.clock.advance(31);
            let security = app.get("/account/security").await;
            let number = format!("+44770090{account:02}{n:02}");
            mine.push(app.post("/account/security/phone", &[("phone", &number)], &security.body).await.status);
        }
        statuses.push(mine);
        app.sign_out().await;
    }
    assert_eq!(statuses[0], [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS], "three numbers a day");
    let sent = statuses.iter().flatten().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((sent, crate::sms_codes::texts(&app).len()), (30, 30), "30 texts per address and hour, confirmations included");
    assert!(statuses.last().unwrap().iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let db = app.sqlite_files_text().unwrap();
    assert!(!db.contains("7700900000") && !db.contains("770090"), "a phone number is stored in the clear outside its sealed credential");
}

/// With sign-in by emailed code on, a stranger asking for codes for someone
/// else's address spends only the anonymous allowance: the owner, past the
/// password, still gets a text and an email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_asking_for_emailed_codes_do_not_spend_the_owners_allowance() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.factors.email_passwordless = true).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(app.add_phone("+447700900123").await.status, StatusCode::OK);
    app.sign_out().await;
    let stranger = crate::helpers::browser();
    let ask_as_stranger = || async {
        let page = stranger.get(app.url("/login/code")).send().await.unwrap().text().await.unwrap();
        let token = crate::helpers::csrf_token_in(&page);
        let r = stranger.post(app.url("/login/code")).form(&[("email", "ada@example.com"), ("csrf_token", &token)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    };
    // The owner's emailed second-step code: a stranger asking for a sign-in code
    // right after neither kills it nor holds the owner in a cooldown.
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let step = app.get(&first.location.unwrap()).await;
    let next = crate::mfa::hidden(&step.body, "next");
    assert_eq!(app.post("/login/verify/send", &[("method", "email"), ("next", &next)], &step.body).await.status, StatusCode::OK);
    let owners_code = crate::email_codes::emailed_code(&app, "ada@example.com").await;
    ask_as_stranger().await;
    let strangers_code = crate::email_codes::emailed_code(&app, "ada@example.com").await;
    assert_ne!(strangers_code, owners_code, "the stranger's code was sent");
    let wrong_kind = app.post("/login/verify", &[("method", "email"), ("code", &strangers_code), ("next", &next)], &step.body).await;
    assert_ne!(wrong_kind.status, StatusCode::SEE_OTHER, "a first-step code is no second-step answer");
    let done = app.post("/login/verify", &[("method", "email"), ("code", &owners_code), ("next", &next)], &step.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "the owner's code still works: {}", done.body);
    app.sign_out().await;
    for _ in 0..12 {
        app.clock.advance(31);
        ask_as_stranger().await;
    }
    app.clock.advance(31);
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let step = app.get(&first.location.unwrap()).await;
    let next = crate::mfa::hidden(&step.body, "next");
    let texted = app.post("/login/verify/send", &[("method", "sms"), ("next", &next)], &step.body).await;
    assert_eq!(texted.status, StatusCode::OK, "the owner's text: {}", texted.body);
    app.clock.advance(31);
    let emailed = app.post("/login/verify/send", &[("method", "email"), ("next", &next)], &step.body).await;
    assert_eq!(emailed.status, StatusCode::OK, "the owner's email: {}", emailed.body);
}

/// Reset links and sign-up warnings to one mailbox stop at ten an hour,
/// however many addresses ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mailbox_gets_at_most_ten_reset_or_sign_up_mails_an_hour() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.mail_settled().await;
    // The verification link counts against the same cap: start a new hour.
    app.clock.advance(3600);
    let before = app.outbox().iter().filter(|m| m.email.to == "ada@example.com").count();
    let page = app.get("/forgot-password").await.body;
    let token = crate::helpers::csrf_token_in(&page);
    for i in 0..16 {
        let from = format!("203.0.113.{}", i % 4 + 1);
        let reset = app.client.post(app.url("/forgot-password")).header("x-forwarded-for", &from);
        assert_eq!(reset.form(&[("email", "ada@example.com"), ("csrf_token", &token)]).send().await.unwrap().status(), StatusCode::OK);
        let form = [("email", "ada@example.com"), ("name", "Eve"), ("password", PASSWORD), ("confirm", PASSWORD), ("csrf_token", &token)];
        let sign_up = app.client.post(app.url("/signup")).header("x-forwarded-for", &from).form(&form);
        assert_eq!(sign_up.send().await.unwrap().status(), StatusCode::OK, "the page looks the same");
    }
    app.mail_settled().await;
    let mails = app.outbox().iter().filter(|m| m.email.to == "ada@example.com").count() - before;
    assert_eq!(mails, 10, "reset links and sign-up warnings together, per mailbox and hour");
}

/// Signing in to an unverified account sends the verification link again, but
/// within the same per-mailbox cap: whoever signed up with someone else's
/// address cannot flood it by signing in from many addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_to_an_unverified_account_does_not_flood_its_mailbox() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await else {
        return;
    };
    assert_eq!(app.sign_up("victim@example.com", PASSWORD).await.status, StatusCode::OK);
    let page = app.get("/login").await.body;
    let token = crate::helpers::csrf_token_in(&page);
    for i in 0..15 {
        let from = format!("203.0.113.{}", i % 5 + 1);
        let form = [("email", "victim@example.com"), ("password", PASSWORD), ("csrf_token", &token)];
        let r = app.client.post(app.url("/login")).header("x-forwarded-for", &from).form(&form).send().await.unwrap();
        assert!(!r.status().is_success() || r.headers().get("location").is_none(), "not signed in before verifying");
    }
    app.mail_settled().await;
    let mails = app.outbox().iter().filter(|m| m.email.to == "victim@example.com").count();
    assert_eq!(mails, 10, "the sign-up's link and nine more, then nothing this hour");
}

/// Asking for WebAuthn options at the second step is throttled per address like any post to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_step_webauthn_options_are_throttled() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.rate_limit.sign_in_per_minute = 5).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.enroll_totp("Phone").await;
    app.sign_out().await;
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let step = app.get(&first.location.unwrap()).await;
    let token = crate::helpers::csrf_token_in(&step.body);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = app.client.post(app.url("/login/verify/options")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
        statuses.push(r.status());
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

/// An admin cannot lock themselves out by another spelling of their address:
/// the Kelvin sign (U+212A) lowercases to `k`, as the address does when parsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_lock_themselves_by_a_unicode_spelling_of_their_address() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.state.accounts().operators().create_user("kate@example.com", "Kate", PASSWORD, true, app.clock_now()).await.unwrap();
    app.sign_in("kate@example.com", PASSWORD).await;
    let step_up = app.get("/admin/users").await.location.unwrap();
    let (_, done) = app.enroll_app_inline(&app.get(&step_up).await).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let users = app.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    let refused = app.post("/admin/users", &[("email", "\u{212A}ate@example.com"), ("action", "lock"), ("q", "")], &users.body).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("Another admin has to do that"), "{}", refused.body);
    let kate = app.state.accounts().operators().find_user("kate@example.com").await.unwrap();
    assert!(kate.disabled_at.is_none(), "still enabled");
    assert_eq!(app.get("/admin/users").await.status, StatusCode::OK, "and still in the console");
}

/// The database, its WAL, the development outbox and the data directory are
/// the owner's alone, and a data directory others can read is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_outbox_and_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    let dir = app.sqlite_dir().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with("-wal")), "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{} is readable by others", f.display());
    }
    let outbox = portcullis_delivery::OutboxMailer::path_in(&app.config.data_dir);
    assert_eq!(mode(&outbox), 0o600, "the outbox holds links and codes");

    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = app.config.clone();
    config.data_dir = open.path().to_owned();
    let clock = std::sync::Arc::new(app.clock.clone());
    let refused = portcullis::Application::build(&config, clock).await.err().expect("a data directory others can read is refused");
    assert!(refused.to_string().contains("chmod 700"), "{refused}");
}

/// Behind HTTPS, browsers are told to stay on it, and cookies are `__Host-`:
/// only this host, over TLS, for the whole site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_pages_set_hsts_and_host_only_cookies() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.issuer = c.issuer.replace("http://", "https://")).await else {
        return;
    };
    let page = app.get("/login").await;
    assert_eq!(page.headers.get("strict-transport-security").map(|v| v.to_str().unwrap()), Some("max-age=31536000"));
    let cookies: Vec<&str> = page.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(!cookies.is_empty());
    for c in &cookies {
        assert!(c.starts_with("__Host-portcullis_") && c.contains("Secure") && c.contains("Path=/") && !c.contains("Domain"), "{c}");
    }
    let Some(plain) = spawn_app(Backend::Sqlite).await else { return };
    let page = plain.get("/login").await;
    assert!(page.headers.get("strict-transport-security").is_none(), "not over plain HTTP (development)");
    assert!(page.headers.get_all("set-cookie").iter().all(|c| c.to_str().unwrap().starts_with("portcullis_")));
}

/// A site that can set cookies for this one (a sibling subdomain) pairs its
/// own CSRF cookie with the token it got for it: refused, since the token is
/// bound to the session too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csrf_token_works_only_with_the_session_it_was_given_to() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    // The attacker's own visit: a CSRF cookie and the token that goes with it.
    let attacker = crate::helpers::browser_with_jar();
    let page = attacker.0.get(app.url("/login")).send().await.unwrap();
    let seed = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|c| c.to_str().unwrap().strip_prefix("portcullis_csrf=").map(|v| v.split(';').next().unwrap().to_owned()))
        .unwrap();
    let token = crate::helpers::csrf_token_in(&page.text().await.unwrap());
    // The victim's browser, with the attacker's CSRF cookie tossed in, posts the attacker's form.
    let url = reqwest::Url::parse(&app.base).unwrap();
    let cookies = reqwest::cookie::CookieStore::cookies(&*app.jar, &url).unwrap();
    let session = cookies.to_str().unwrap().split("; ").find(|c| c.starts_with("portcullis_session=")).unwrap().to_owned();
    let forged = crate::helpers::browser()
        .post(app.url("/logout/everywhere"))
        .header("cookie", format!("{session}; portcullis_csrf={seed}"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/account").await.status, StatusCode::OK, "still signed in: the forged form did nothing");
    // The victim's own form still works.
    let out = app.submit("/account", "/logout/everywhere", &[]).await;
    assert!(out.status.is_redirection(), "{}", out.body);
}

/// An authorization request that waits for a sign-in stores a row: those
/// count against the address's budget (requests answered at once do not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_requests_waiting_for_a_sign_in_are_throttled_per_address() {
    let Some(app) = crate::helpers::spawn_app_with(Backend::Sqlite, |c| c.rate_limit.authorize_per_minute = 3).await else { return };
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    let (id, _) = register(&app, true, SigningAlg::ES256).await;
    let url = format!(
        "/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlenc(CALLBACK)
    );
    let anonymous = crate::helpers::browser();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(anonymous.get(app.url(&url)).send().await.unwrap().status());
    }
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::SEE_OTHER, StatusCode::SEE_OTHER, StatusCode::TOO_MANY_REQUESTS]);
    app.clock.advance(60);
    assert_eq!(anonymous.get(app.url(&url)).send().await.unwrap().status(), StatusCode::SEE_OTHER, "a new minute, a new budget");
}

/// A single-page app at a registered redirect URI's origin may call the
/// token and userinfo endpoints from the browser; another site may not; the
/// public documents are open to all; credentials are never allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_clients_get_cors_for_their_registered_origins_only() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    register(&app, true, SigningAlg::ES256).await;
    let preflight = |path: &'static str, origin: &'static str| {
        let app = &app;
        async move {
            app.client
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap()
        }
    };
    for path in ["/token", "/userinfo", "/revoke"] {
        let ok = preflight(path, "https://app.example").await;
        assert_eq!(ok.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example", "{path}");
        assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        assert!(ok.headers().get("access-control-allow-credentials").is_none(), "never with credentials");
        let other = preflight(path, "https://evil.example").await;
        assert!(other.headers().get("access-control-allow-origin").is_none(), "{path}: another site gets nothing");
    }
    let token =
        app.client.post(app.url("/token")).header("origin", "https://app.example").form(&[("grant_type", "nope")]).send().await.unwrap();
    assert_eq!(token.headers()["access-control-allow-origin"], "https://app.example", "errors are readable too");
    let without_origin = app.client.post(app.url("/token")).form(&[("grant_type", "nope")]).send().await.unwrap();
    assert_eq!(without_origin.headers()["vary"], "Origin", "a cache keeps answers for different origins apart");
    for path in ["/.well-known/openid-configuration", "/jwks.json"] {
        let r = app.client.get(app.url(path)).header("origin", "https://anyone.example").send().await.unwrap();
        assert_eq!((r.status(), r.headers()["access-control-allow-origin"].to_str().unwrap()), (StatusCode::OK, "*"), "{path}");
    }
    // A client registered now is seen at once on this node.
    let before = preflight("/token", "https://new.example").await;
    assert!(before.headers().get("access-control-allow-origin").is_none());
    let new = NewClient {
        id: None,
        name: "New".into(),
        redirect_uris: vec!["https://new.example/cb".into()],
        post_logout_redirect_uris: vec![],
        public: true,
        policy: Default::default(),
        signing_alg: SigningAlg::ES256,
        service_scopes: vec![],
    };
    app.state.provider().client_admin().register(new, &RequestOrigin::command_line(), app.clock_now()).await.unwrap();
    assert_eq!(preflight("/token", "https://new.example").await.headers()["access-control-allow-origin"], "https://new.example");
}

/// `user delete` takes the account's code and refresh-token rows with it;
/// its access tokens (JWTs, valid for their hour) must still be refused by
/// introspection, which resource servers rely on, as /userinfo refuses them.
async fn a_deleted_accounts_access_tokens_are_inactive(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret, access, _) = tokens_for_ada(&app).await;
    assert_eq!(introspect(&app, (&id, &secret), &access).await["active"], true);
    let deleted = app.state.accounts().operators().delete_user("ada@example.com", &RequestOrigin::command_line(), app.clock_now()).await;
    assert!(deleted.unwrap());
    assert_eq!(introspect(&app, (&id, &secret), &access).await, serde_json::json!({ "active": false }));
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap().status();
    assert_eq!(userinfo, StatusCode::UNAUTHORIZED);
}
