//! Password reset by emailed single-use, expiring link.

use reqwest::StatusCode;

use crate::helpers::{NEW_PASSWORD, PASSWORD, TestApp, on_both_backends};

on_both_backends!(
    a_user_resets_a_forgotten_password_with_the_emailed_link,
    a_reset_link_expires_after_an_hour,
    reset_requests_for_unknown_addresses_look_the_same,
);

async fn request_reset(app: &TestApp, email: &str) -> String {
    let page = app.submit("/forgot-password", "/forgot-password", &[("email", email)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Check your email"));
    app.last_link_to(email).await
}

async fn a_user_resets_a_forgotten_password_with_the_emailed_link(app: TestApp) {
    app.verified_user("gina@example.com").await;
    let other = app.other_browser();
    assert_eq!(other.sign_in("gina@example.com", PASSWORD).await, StatusCode::SEE_OTHER);

    let link = request_reset(&app, "gina@example.com").await;
    assert!(link.starts_with("/reset-password?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap().to_owned();

    // A refused password does not use the link up.
    let weak = app.submit(&link, "/reset-password", &[("token", &token), ("password", "password1"), ("confirm", "password1")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("too easy to guess"));

    let done = app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Password changed"));

    assert_eq!(other.account_status().await, StatusCode::SEE_OTHER, "sessions end with a reset");
    assert_eq!(app.sign_in("gina@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.sign_in("gina@example.com", NEW_PASSWORD).await.status, StatusCode::SEE_OTHER);

    // Single use.
    assert_eq!(app.get(&link).await.status, StatusCode::BAD_REQUEST);
    let again =
        app.submit("/forgot-password", "/reset-password", &[("token", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("invalid or has expired"));
}

async fn a_reset_link_expires_after_an_hour(app: TestApp) {
    app.verified_user("hal@example.com").await;
    let link = request_reset(&app, "hal@example.com").await;
    app.clock.advance(59 * 60);
    assert_eq!(app.get(&link).await.status, StatusCode::OK);
    app.clock.advance(60);
    assert_eq!(app.get(&link).await.status, StatusCode::BAD_REQUEST);
    // A newer link replaces an older one.
    let first = request_reset(&app, "hal@example.com").await;
    let second = request_reset(&app, "hal@example.com").await;
    assert_eq!(app.get(&first).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&second).await.status, StatusCode::OK);
}

async fn reset_requests_for_unknown_addresses_look_the_same(app: TestApp) {
    app.verified_user("ivy@example.com").await;
    let known = app.submit("/forgot-password", "/forgot-password", &[("email", "ivy@example.com")]).await;
    let unknown = app.submit("/forgot-password", "/forgot-password", &[("email", "nobody@example.com")]).await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body.replace("ivy@example.com", "X"), unknown.body.replace("nobody@example.com", "X"));
    assert!(app.outbox().iter().all(|m| m.email.to != "nobody@example.com"));
}
