//! Forged cross-site form posts are refused.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, browser, csrf_token_in, on_both_backends};

on_both_backends!(forms_without_a_valid_csrf_token_are_refused);

async fn forms_without_a_valid_csrf_token_are_refused(app: TestApp) {
    app.verified_user("mia@example.com").await;
    let login = app.get("/login").await;
    let token = csrf_token_in(&login.body);
    let fields = |t: &str| vec![("email", "mia@example.com".to_owned()), ("password", PASSWORD.to_owned()), ("csrf_token", t.to_owned())];

    // No token.
    let r = app.client.post(app.url("/login")).form(&[("email", "mia@example.com"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Reload the page"));

    // A token that belongs to another browser's cookie.
    let attacker = browser();
    let theirs = csrf_token_in(&attacker.get(app.url("/login")).send().await.unwrap().text().await.unwrap());
    assert_ne!(theirs, token);
    let r = app.client.post(app.url("/login")).form(&fields(&theirs)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A valid token but no cookie at all (another client).
    let r = browser().post(app.url("/login")).form(&fields(&token)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Allow cookies"));

    // Right token, but posted from another site.
    let r = app.client.post(app.url("/login")).header("origin", "https://evil.example").form(&fields(&token)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.client.post(app.url("/login")).header("sec-fetch-site", "cross-site").form(&fields(&token)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Nothing above signed in; the genuine form does.
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);
    let r = app.client.post(app.url("/login")).header("origin", &app.base).form(&fields(&token)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Signed-in forms are protected too: a forged sign-out does nothing.
    let r = app.client.post(app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/account").await.status, StatusCode::OK);
}
