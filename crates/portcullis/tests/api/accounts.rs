//! Sign-up, verification, sign-in, sessions, password change.

use reqwest::StatusCode;

use crate::helpers::{NEW_PASSWORD, PASSWORD, TestApp, on_both_backends};

on_both_backends!(
    a_new_user_signs_up_verifies_signs_in_and_out,
    signing_up_with_a_taken_address_looks_the_same_and_warns_the_owner,
    weak_and_mismatched_passwords_are_explained_next_to_the_field,
    sessions_end_after_idle_and_absolute_timeouts,
    changing_the_password_signs_out_other_sessions,
    sign_out_everywhere_ends_every_session,
    health_endpoints_answer,
);

async fn a_new_user_signs_up_verifies_signs_in_and_out(app: TestApp) {
    let signup = app.sign_up("Ada@Example.com", PASSWORD).await;
    assert_eq!(signup.status, StatusCode::OK);
    assert!(signup.body.contains("Check your email"), "{}", signup.body);

    // Before confirming, the right password is not enough; a fresh link is sent.
    let early = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(early.status, StatusCode::FORBIDDEN);
    assert!(early.body.contains("Confirm your email address first"), "{}", early.body);
    assert_eq!(app.outbox().iter().filter(|m| m.email.to == "ada@example.com").count(), 2);

    let confirmed = app.verify_email("ada@example.com").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert!(confirmed.body.contains("Email address confirmed"));

    let signed_in = app.sign_in("ADA@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/account"));
    let cookie =
        signed_in.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("portcullis_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    let account = app.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains("ada@example.com"));
    assert!(account.body.contains("verified with your password."), "the session records how the user authenticated");

    let out = app.sign_out().await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = app.get("/account").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location.as_deref(), Some("/login?next=%2Faccount"));

    // The verification link was used up.
    let link = app.last_link_to("ada@example.com").await;
    assert_eq!(app.get(&link).await.status, StatusCode::BAD_REQUEST);
}

async fn signing_up_with_a_taken_address_looks_the_same_and_warns_the_owner(app: TestApp) {
    app.verified_user("bob@example.com").await;
    let again = app.sign_up("bob@example.com", NEW_PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("Check your email"));
    let last = app.outbox().pop().unwrap();
    assert_eq!(last.email.to, "bob@example.com");
    assert!(last.email.text.contains("already has one"), "{}", last.email.text);
    // The original password still works; the attempt changed nothing.
    assert_eq!(app.sign_in("bob@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

async fn weak_and_mismatched_passwords_are_explained_next_to_the_field(app: TestApp) {
    let weak = app.sign_up("carol@example.com", "password1").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("id=\"password-error\"") && weak.body.contains("too easy to guess"), "{}", weak.body);
    let short = app.sign_up("carol@example.com", "Ab1!").await;
    assert!(short.body.contains("Use at least 8 characters"));
    let mismatch =
        app.submit("/signup", "/signup", &[("email", "carol@example.com"), ("password", PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("id=\"confirm-error\"") && mismatch.body.contains("do not match"));
    let bad_email = app.sign_up("carol@", PASSWORD).await;
    assert!(bad_email.body.contains("id=\"email-error\""));
    assert!(bad_email.body.contains("value=\"carol@\""), "what the user typed is kept");
    assert!(app.outbox().is_empty(), "nothing was created");
}

async fn sessions_end_after_idle_and_absolute_timeouts(app: TestApp) {
    app.verified_user("dave@example.com").await;
    assert_eq!(app.sign_in("dave@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    // Activity keeps the session alive within the idle timeout (30 minutes)...
    for _ in 0..3 {
        app.clock.advance(25 * 60);
        assert_eq!(app.get("/account").await.status, StatusCode::OK);
    }
    // ...but not after 31 idle minutes.
    app.clock.advance(31 * 60);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);

    assert_eq!(app.sign_in("dave@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    for _ in 0..23 {
        app.clock.advance(25 * 60);
        assert_eq!(app.get("/account").await.status, StatusCode::OK);
    }
    app.clock.advance(25 * 60);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "10 hours is the absolute limit");
}

async fn changing_the_password_signs_out_other_sessions(app: TestApp) {
    app.verified_user("erin@example.com").await;
    let other = app.other_browser();
    assert_eq!(other.sign_in("erin@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    assert_eq!(app.sign_in("erin@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);

    let wrong = app
        .submit("/account", "/account/password", &[("current", "not-it-at-all"), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("id=\"current-error\""));

    let changed =
        app.submit("/account", "/account/password", &[("current", PASSWORD), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.body.contains("Your password has been changed"));
    assert_eq!(app.get("/account").await.status, StatusCode::OK, "this session stays");
    assert_eq!(other.account_status().await, StatusCode::SEE_OTHER, "the other one ended");
    app.notice("password was changed").await;
    assert_eq!(other.sign_in("erin@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(other.sign_in("erin@example.com", NEW_PASSWORD).await, StatusCode::SEE_OTHER);
}

async fn sign_out_everywhere_ends_every_session(app: TestApp) {
    app.verified_user("frank@example.com").await;
    let other = app.other_browser();
    assert_eq!(other.sign_in("frank@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    assert_eq!(app.sign_in("frank@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.submit("/account", "/logout/everywhere", &[]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);
    assert_eq!(other.account_status().await, StatusCode::SEE_OTHER);
}

async fn health_endpoints_answer(app: TestApp) {
    // The sign-in form starts empty, or with the application's login_hint.
    assert!(app.get("/login").await.body.contains(r#"autocomplete="username webauthn" required value="""#));
    assert!(app.get("/login?login_hint=ada%40example.com").await.body.contains(r#"value="ada@example.com""#));

    let live = app.get("/healthz").await;
    assert_eq!((live.status, live.body.as_str()), (StatusCode::OK, "ok"));
    let ready = app.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (StatusCode::OK, "ready"));
    assert!(live.headers.contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_issuer_is_https() {
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |c| c.issuer = "https://id.example.com".into()).await
    else {
        return;
    };
    let page = app.get("/login").await;
    let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("__Host-portcullis_csrf=") && cookie.contains("; Secure"), "{cookie}");
    // Over plain http the server of this test still answers, but a browser would not send the cookie back.
    let Some(plain) = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    assert!(!plain.get("/login").await.headers.get("set-cookie").unwrap().to_str().unwrap().contains("Secure"));
}
