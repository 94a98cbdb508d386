//! `portcullis-rp` against the running server: a browser application steps a
//! password-only sign-in up to MFA and checks the ID token's claims; an API
//! behind the crate's layer answers RFC 9470 challenges to the password-only
//! access token and serves the MFA one; and after a `portcullis keys rotate`
//! while the application runs, tokens of the new key and of the old one pass.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use portcullis_core::oauth::SigningAlg;
use portcullis_rp::{AccessClaims, Callback, Error, Issuer, Options, Requirement, SignedIn, Unmet, Verifier, WebClient};
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, on_both_backends};
use crate::mfa::through_sign_in;
use crate::oidc::{CALLBACK, register};

on_both_backends!(a_browser_application_steps_up_to_mfa_and_an_api_demands_it, a_key_rotation_while_the_application_runs);

/// The provider's clock is the test's, moved forward for each TOTP step and
/// key period; the application's is the real one, so it allows the skew
/// (by default a token issued more than a minute in the future is refused).
fn skewed() -> Options {
    Options::default().leeway(Duration::from_secs(900))
}

/// Signs in through `client` for `requirement`: the provider's pages (password,
/// then a TOTP code when asked) and the callback.
async fn sign_in_through(app: &TestApp, client: &WebClient, requirement: &Requirement, secret: &[u8]) -> Result<SignedIn, Error> {
    let (url, pending) = client.begin("/admin?tab=keys", requirement);
    let (back, _) = through_sign_in(app, &url, &mut Some(secret.to_vec())).await;
    client.finish(pending, &callback_of(&back)).await
}

/// The provider's answer in the redirect `back`.
fn callback_of(back: &str) -> Callback {
    Callback::from_query(back.split_once('?').map_or("", |(_, q)| q))
}

/// A small API with the crate's layer; returns its address.
async fn api(tokens: &Verifier) -> String {
    async fn admin(claims: AccessClaims) -> String {
        format!("{} {}", claims.sub, claims.acr.unwrap_or_default())
    }
    let app = Router::new().route("/api/admin", get(admin)).layer(tokens.require(Requirement::mfa()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn call(base: &str, token: &str) -> (StatusCode, Option<String>, String) {
    let r = reqwest::Client::new().get(format!("{base}/api/admin")).bearer_auth(token).send().await.unwrap();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (r.status(), challenge, r.text().await.unwrap())
}

async fn a_browser_application_steps_up_to_mfa_and_an_api_demands_it(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    let issuer = Issuer::discover_with(&app.config.issuer, skewed()).await.unwrap();
    let client = WebClient::new(issuer.clone(), &id, client_secret.as_deref(), CALLBACK);

    // The home page needs only a sign-in: a password is enough (the user has
    // no second factor yet), and the ID token says so.
    let home = sign_in_through(&app, &client, &Requirement::any(), &[]).await.unwrap();
    // Then the user sets up an authenticator app, in another browser (in
    // this one the setup itself would prove the factor to this session).
    let mut app = app;
    let this_browser = std::mem::replace(&mut app.client, crate::helpers::browser());
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.client = this_browser;
    assert_eq!((home.claims.amr.clone(), home.claims.acr.clone()), (vec!["pwd".to_owned()], None));
    assert_eq!(home.return_to, "/admin?tab=keys");
    let admin = Requirement::mfa();
    assert!(matches!(home.meets(&admin), Err(Unmet::Acr { .. })), "a password-only sign-in does not meet the admin page");

    // The API refuses the password-only access token with RFC 9470's challenge.
    let tokens = Verifier::new(issuer.clone(), &id);
    let base = api(&tokens).await;
    let (status, challenge, _) = call(&base, &home.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"this requires a sign-in with a second factor\", acr_values=\"mfa\""
        )
    );

    // The admin page steps up: the provider, which still has the
    // password-only session, asks only for the code (the first redirect is
    // to the second step, not to the password page).
    let (url, pending) = client.begin("/admin", &admin);
    assert!(url.contains("acr_values=mfa"), "{url}");
    let first = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert!(
        first.location.as_deref().unwrap_or_default().starts_with("/login/verify"),
        "straight to the second step: {:?}",
        first.location
    );
    let (back, _) = through_sign_in(&app, &url, &mut Some(secret.clone())).await;
    let stepped = client.finish(pending, &callback_of(&back)).await.unwrap();
    assert_eq!(stepped.claims.amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(stepped.claims.acr.as_deref(), Some("mfa"));
    assert_eq!(stepped.claims.sub, home.claims.sub);
    assert!(stepped.meets(&admin).is_ok());
    assert_eq!(call(&base, &stepped.access_token).await, (StatusCode::OK, None, format!("{} mfa", home.claims.sub)));

    // A step-up of one user's session completed as another is refused.
    let mut someone_else = stepped.clone();
    someone_else.claims.sub = "another-user".into();
    let (url, pending) = client.begin_step_up(&someone_else, "/admin", &admin);
    let (back, _) = through_sign_in(&app, &url, &mut Some(secret.clone())).await;
    let refused = client.finish(pending, &callback_of(&back)).await;
    assert!(matches!(refused, Err(Error::Callback(why)) if why.contains("another user")));

    // A requirement the provider's answer does not meet is an error, not a sign-in.
    let key_only = Requirement::mfa().method("hwk");
    assert!(matches!(
        sign_in_through(&app, &client, &key_only, &secret).await,
        Err(Error::Insufficient(Unmet::Method(m))) if m == "hwk"
    ));

    // A callback that is not this browser's is refused before the code is used.
    let (url, pending) = client.begin("/", &Requirement::any());
    let (back, _) = through_sign_in(&app, &url, &mut Some(secret.clone())).await;
    let mut forged = callback_of(&back);
    forged.state = Some("another".into());
    assert!(matches!(client.finish(pending.clone(), &forged).await, Err(Error::Callback(_))));
    // This provider sends `iss` (RFC 9207): a response without it is refused.
    let mut unnamed = callback_of(&back);
    unnamed.iss = None;
    assert!(matches!(client.finish(pending.clone(), &unnamed).await, Err(Error::Callback(_))));
    // The same code, replayed after a real finish, is refused by the provider.
    let real = callback_of(&back);
    client.finish(pending.clone(), &real).await.unwrap();
    assert!(matches!(client.finish(pending, &real).await, Err(Error::Provider { error, .. }) if error == "invalid_grant"));
    // An ID token is not an access token.
    assert!(matches!(tokens.verify_access_token(&stepped.id_token).await, Err(Error::InvalidToken(_))));
    // Another client's access token is for another audience.
    let (other, _) = register(&app, false, SigningAlg::ES256).await;
    assert!(matches!(Verifier::new(issuer, &other).verify_access_token(&stepped.access_token).await, Err(Error::InvalidToken(_))));
}

async fn a_key_rotation_while_the_application_runs(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;
    let (id, client_secret) = register(&app, false, SigningAlg::ES256).await;
    // The provider publishes a new key two reload periods before signing
    // with it, so an application's JWKS is always refetched long after the
    // one-minute interval; the test's clock moves the provider, not the
    // application, so the interval is shortened here.
    let interval = Duration::from_millis(300);
    let issuer = Issuer::discover_with(&app.config.issuer, skewed().jwks_refetch_interval(interval)).await.unwrap();
    let client = WebClient::new(issuer.clone(), &id, client_secret.as_deref(), CALLBACK);
    let tokens = Verifier::new(issuer, &id);
    let base = api(&tokens).await;
    let kid = |token: &str| jsonwebtoken_kid(token);

    let before = sign_in_through(&app, &client, &Requirement::mfa(), &secret).await.unwrap();
    assert_eq!(call(&base, &before.access_token).await.0, StatusCode::OK);

    // The operator rotates while the application runs.
    let out = app.cli(&["keys", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.clock.advance(2 * app.state.provider().key_reload_seconds());
    app.state.provider().reload_keys(app.clock_now()).await.unwrap();
    tokio::time::sleep(interval).await;
    app.clock.advance(30);
    let after = sign_in_through(&app, &client, &Requirement::mfa(), &secret).await.unwrap();
    assert_ne!(kid(&after.access_token), kid(&before.access_token), "the new key signs");
    assert_ne!(kid(&after.id_token), kid(&before.id_token));
    // Both the token signed before and the one signed after are accepted.
    assert_eq!(call(&base, &after.access_token).await.0, StatusCode::OK);
    assert_eq!(call(&base, &before.access_token).await.0, StatusCode::OK);
}

/// The `kid` of a JWS's header.
fn jsonwebtoken_kid(token: &str) -> String {
    let header = data_encoding::BASE64URL_NOPAD.decode(token.split('.').next().unwrap().as_bytes()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}
