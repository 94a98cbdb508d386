//! Malformed requests get clear errors with the right status, never a panic.

use reqwest::StatusCode;

use crate::helpers::{TestApp, csrf_token_in, on_both_backends};

on_both_backends!(malformed_requests_get_clear_errors);

async fn malformed_requests_get_clear_errors(app: TestApp) {
    let token = csrf_token_in(&app.get("/login").await.body);

    let missing =
        app.client.post(app.url("/login")).form(&[("email", "a@example.com"), ("csrf_token", token.as_str())]).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.text().await.unwrap().contains("missing field"));

    let json = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body(r#"{"email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(json.text().await.unwrap().contains("x-www-form-urlencoded"));

    let huge = format!("csrf_token={token}&email=a%40example.com&password={}", "x".repeat(200_000));
    // The server answers before reading the whole body and drops the connection:
    // `Connection: close` keeps that connection out of the client's pool, so the
    // next request does not race its closing.
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("connection", "close")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let garbage = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, 0x00, b'&', b'='])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST, "a NUL byte in the body");
    assert!(garbage.text().await.unwrap().contains("NUL character"));
    // A NUL in a value, percent-encoded, in a form, a query, or HTTP Basic (PostgreSQL
    // cannot hold it: these were 500s there), is refused before any handler.
    let form = format!("csrf_token={token}&email=a%00b%40example.com&password=x");
    let r = app.client.post(app.url("/login")).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/authorize/resume?request=%00").await.status, StatusCode::BAD_REQUEST);
    let token_form = [("grant_type", "refresh_token"), ("refresh_token", "x\0y")];
    let r = app.client.post(app.url("/token")).form(&token_form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    use base64::Engine;
    for basic in ["%00app:secret", "app\0:secret", "app:se%00cret"] {
        let basic = base64::engine::general_purpose::STANDARD.encode(basic);
        let r = app
            .client
            .post(app.url("/token"))
            .header("authorization", format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{basic}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    }

    let long_password = "p".repeat(10_000);
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("email", "a@example.com"), ("password", long_password.as_str()), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(app.get("/verify-email").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/reset-password?token=nonsense").await.status, StatusCode::BAD_REQUEST);
    let missing_page = app.get("/no/such/page").await;
    assert_eq!(missing_page.status, StatusCode::NOT_FOUND);
    assert!(missing_page.body.contains("This page does not exist."));
    let r = app.client.put(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // After all that, the server still serves.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}
