//! The HTTP sweep: every route, every method, with malformed, oversized,
//! duplicated, wrongly typed and missing fields and wrong content types, as
//! a stranger, a signed-in user, an admin and a sign-in halfway through.
//! The assertion is no 5xx and no dropped connection (a panic), and the
//! server still answers `/healthz` afterwards.

use std::collections::BTreeSet;

use portcullis_core::oauth::SigningAlg;
use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, PASSWORD, TestApp, browser, csrf_token_in, spawn_app_with};
use crate::oidc::register;

/// Budgets raised so requests reach the handlers instead of the throttle.
fn unthrottled(config: &mut portcullis::config::Config) {
    config.rate_limit.sign_in_per_minute = 1_000_000;
    config.rate_limit.sign_up_per_minute = 1_000_000;
    config.rate_limit.send_email_per_minute = 1_000_000;
    config.rate_limit.authorize_per_minute = 1_000_000;
    config.rate_limit.register_client_per_minute = 1_000_000;
    // Registration on, so its endpoints are swept past the "turned off" answer.
    config.registration.mode = "open".into();
    // Push approval on (the issuer is an IP address, where it is off by default), so its routes reach their handlers.
    config.factors.push = Some(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_no_request_to_any_route_gets_a_server_error() {
    if let Some(app) = spawn_app_with(Backend::Sqlite, unthrottled).await {
        no_request_to_any_route_gets_a_server_error(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_no_request_to_any_route_gets_a_server_error() {
    if let Some(app) = spawn_app_with(Backend::Postgres, unthrottled).await {
        no_request_to_any_route_gets_a_server_error(app).await
    }
}

/// Paths to sweep: every route the server has (checked against the router's
/// source below), with the sign-out routes last so the signed-in sweeps stay signed in.
const ROUTES: &[&str] = &[
    "/",
    "/login",
    "/signup",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/setup",
    "/account",
    "/account/password",
    "/account/language",
    "/account/protect",
    "/account/protect/later",
    "/end-session",
    "/login/code",
    "/login/code/verify",
    "/login/passkey",
    "/login/passkey/options",
    "/account/security",
    "/account/security/totp",
    "/account/security/totp/confirm",
    "/account/security/webauthn",
    "/account/security/webauthn/options",
    "/account/security/push",
    "/authenticator",
    "/account/security/phone",
    "/account/security/phone/confirm",
    "/account/security/recovery-codes",
    "/account/security/factors/rename",
    "/account/security/factors/remove",
    "/account/security/browsers/forget",
    "/account/security/sessions/end",
    "/account/security/apps/remove",
    "/admin",
    "/admin/users",
    "/admin/users/apps",
    "/admin/users/apps/remove",
    "/admin/clients",
    "/admin/clients/create",
    "/admin/clients/policy",
    "/admin/clients/rotate-secret",
    "/admin/audit",
    "/admin/mfa",
    "/login/verify",
    "/login/verify/methods",
    "/login/verify/options",
    "/login/verify/send",
    "/login/verify/push",
    "/login/enroll",
    "/login/enroll/totp",
    "/login/enroll/webauthn",
    "/login/enroll/webauthn/options",
    "/login/enroll/phone",
    "/login/enroll/phone/confirm",
    "/.well-known/openid-configuration",
    "/jwks.json",
    "/authorize",
    "/authorize/resume",
    "/authorize/consent",
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/register",
    "/register/{client_id}",
    "/healthz",
    "/readyz",
    "/static/portcullis.css",
    "/static/form_post.js",
    "/static/copy.js",
    "/static/errors.js",
    "/static/webauthn.js",
    "/static/push.js",
    "/authenticator/app.js",
    "/authenticator/sw.js",
    "/authenticator/manifest.webmanifest",
    "/authenticator/icon.svg",
    "/authenticator/requests",
    "/authenticator/pair",
    "/authenticator/answer",
    "/no/such/route",
    "/logout/everywhere",
    "/logout",
];

/// Every field name a form or query of ours reads.
#[rustfmt::skip]
const FIELDS: &[&str] = &[
    "access_token", "acr_values", "action", "decision", "allow_remember", "ceremony", "change", "code",
    "code_challenge", "code_challenge_method", "code_verifier", "confirm", "credential", "credential_id", "current", "email",
    "event", "grant_type", "id", "id_token", "id_token_hint", "kind", "login_hint", "max_age", "method", "mfa", "min_acr",
    "name", "next", "nonce", "password", "pending_request", "phone", "post_logout_redirect_uri", "prompt", "public", "q",
    "reauthenticate", "redirect", "redirect_uri", "refresh_token", "remember", "remember_browser_days", "request",
    "request_uri", "response_mode", "response_type", "scope", "scopes", "state", "text", "to", "token", "token_type_hint",
    "user", "factor", "new_password", "before", "after", "page", "language",
    "public_key", "signature", "at", "number", "subscription",
];

/// The values tried one field at a time, the other fields sent as `1`.
const NASTY: &[&str] = &["\0", "-1", "18446744073709551616", "[]", "\u{202E}\u{FEFF}", "%"];

/// Values of the wrong shape: huge, empty, NUL, negative, overflowing,
/// another type, markup, control characters, a URL that is not ours.
const VALUES: &[&str] = &[
    "",
    "\0",
    "a\0b",
    "-1",
    "18446744073709551616",
    "1e999",
    "NaN",
    "true",
    "null",
    "[]",
    "{\"a\":1}",
    "<script>alert(1)</script>",
    "\r\nSet-Cookie: x=1",
    "javascript:alert(1)",
    "https://evil.example/cb",
    "../../etc/passwd",
    "%ff%fe",
    "\u{212A}ate@example.com",
    "\u{1F600}\u{202E}",
    "openid offline_access email profile anything:admin",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "code",
    "S256",
    "login consent none",
    "totp",
    "webauthn",
    "sms",
    "email",
];

struct Sweep {
    sent: usize,
    failures: Vec<String>,
    routes: BTreeSet<&'static str>,
}

impl Sweep {
    async fn send(&mut self, route: &'static str, what: &str, request: reqwest::RequestBuilder, may_close: bool) {
        self.sent += 1;
        self.routes.insert(route);
        match request.send().await {
            Ok(r) if r.status().is_server_error() => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                self.failures.push(format!("{status} {route} {what}: {}", body.chars().take(300).collect::<String>()));
            }
            Ok(r) => {
                // Read the whole answer: a panic mid-body would cut it.
                if let Err(e) = r.bytes().await {
                    self.failures.push(format!("body cut {route} {what}: {e}"));
                }
            }
            Err(e) if !may_close => self.failures.push(format!("no answer {route} {what}: {e}")),
            Err(_) => {}
        }
    }
}

/// The requests of the sweep for one browser, whose CSRF token is `csrf`.
async fn sweep_as(app: &TestApp, client: &reqwest::Client, csrf: &str, (client_id, secret): (&str, &str), sweep: &mut Sweep) {
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::HEAD,
        Method::from_bytes(b"PROPFIND").unwrap(),
    ];
    for (i, route) in ROUTES.iter().enumerate() {
        let url = app.url(route);
        for method in &methods {
            let m = method.as_str();
            let req = || client.request(method.clone(), &url).header("origin", &app.base).header("x-forwarded-for", "1.2.3.4, ::1");
            sweep.send(route, &format!("{m} bare"), req(), false).await;
            sweep.send(route, &format!("{m} empty form"), req().form(&[("csrf_token", csrf)]), false).await;
            let all_fields = |value: &'static str| {
                let mut fields: Vec<(&str, &str)> = FIELDS.iter().map(|f| (*f, value)).collect();
                fields.extend([("csrf_token", csrf), ("client_id", client_id), ("client_secret", secret)]);
                fields
            };
            if *method != Method::GET && *method != Method::POST {
                // The router refuses these methods before any handler: a few shapes suffice.
                sweep.send(route, &format!("{m} all fields"), req().form(&all_fields("x")), false).await;
                sweep.send(route, &format!("{m} json"), req().json(&serde_json::json!({"csrf_token": csrf})), false).await;
                continue;
            }
            // Every field, each value in turn (the CSRF token present, so handlers are reached).
            for &value in VALUES {
                let what = format!("{m} all fields = {value:?}");
                let r = if *method == Method::GET { req().query(&all_fields(value)) } else { req().form(&all_fields(value)) };
                sweep.send(route, &what, r, false).await;
            }
            // Every field sent, one of them wrong in turn (and the rest plausible).
            let long = "z".repeat(10_000);
            for (f, field) in FIELDS.iter().enumerate() {
                for &value in NASTY.iter().chain([long.as_str()].iter()) {
                    let mut fields = all_fields("1");
                    fields[f] = (field, value);
                    let what = format!("{m} {field} = {:?}", value.chars().take(20).collect::<String>());
                    let r = if *method == Method::GET { req().query(&fields) } else { req().form(&fields) };
                    sweep.send(route, &what, r, false).await;
                }
            }
            // Every field twice, with different values; a field repeated 1,000 times.
            let mut twice: Vec<(&str, &str)> = FIELDS.iter().flat_map(|f| [(*f, "one"), (*f, "two")]).collect();
            twice.push(("csrf_token", csrf));
            twice.push(("csrf_token", "forged"));
            sweep.send(route, &format!("{m} duplicated query"), req().query(&twice), false).await;
            let many = format!("csrf_token={csrf}&{}", "code=1&".repeat(1_000));
            sweep.send(route, &format!("{m} repeated query field"), client.request(method.clone(), format!("{url}?{many}")), false).await;
            let r = req().query(&[("q", "y".repeat(60_000).as_str())]).header("connection", "close");
            sweep.send(route, &format!("{m} 60 kB query"), r, true).await;
            // Headers of the wrong shape.
            let r = req()
                .header("authorization", if i % 2 == 0 { "Basic !!!notbase64" } else { "Bearer a.b.c" })
                .header("cookie", "portcullis_session=%00; portcullis_session=x; portcullis_device=../../x; portcullis_browser=a.b.c")
                .header("x-forwarded-for", "not an address, 999.1.1.1, [::1]:80")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf_token={csrf}"));
            sweep.send(route, &format!("{m} odd headers"), r, false).await;
            if *method == Method::GET {
                continue;
            }
            sweep.send(route, &format!("{m} duplicated fields"), req().form(&twice), false).await;
            let r = req().header("content-type", "application/x-www-form-urlencoded").body(many);
            sweep.send(route, &format!("{m} repeated field"), r, false).await;
            // One field alone (the others missing).
            for field in ["email", "password", "code", "grant_type", "token", "credential", "id"] {
                sweep.send(route, &format!("{m} only {field}"), req().form(&[(field, "x"), ("csrf_token", csrf)]), false).await;
            }
            // Wrong content types and bodies that are no form.
            for (ct, body) in [
                ("application/json", r#"{"email":["a"],"password":{"x":1},"code":12,"csrf_token":null}"#.to_owned()),
                ("application/json", "{not json".to_owned()),
                ("text/plain", format!("csrf_token={csrf}&email=a@example.com")),
                (
                    "multipart/form-data; boundary=x",
                    format!("--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n--x--"),
                ),
                ("application/x-www-form-urlencoded; charset=utf-16", format!("csrf_token={csrf}&email=%00")),
                ("application/x-www-form-urlencoded", format!("csrf_token={csrf}&email=%ff%fe%&&&==&%%")),
                ("", format!("csrf_token={csrf}")),
            ] {
                let r = if ct.is_empty() { req().body(body) } else { req().header("content-type", ct).body(body) };
                sweep.send(route, &format!("{m} content-type {ct:?}"), r, false).await;
            }
            let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
            let r = req().header("content-type", "application/x-www-form-urlencoded").body(bytes);
            sweep.send(route, &format!("{m} binary form"), r, false).await;
            // Oversized: the server may answer early and close.
            let huge = format!("csrf_token={csrf}&email={}", "x".repeat(3 << 20));
            let r = req().header("content-type", "application/x-www-form-urlencoded").header("connection", "close").body(huge);
            sweep.send(route, &format!("{m} 3 MiB body"), r, true).await;
        }
    }
}

async fn no_request_to_any_route_gets_a_server_error(app: TestApp) {
    // The sweep's routes are the router's routes.
    let source = include_str!("../../../server/src/routes/mod.rs");
    let constants: Vec<(&str, &str)> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("const ")?.split_once(": &str = \""))
        .map(|(name, rest)| (name, rest.trim_end_matches("\";")))
        .collect();
    let routed: BTreeSet<&str> = source
        .split(".route(")
        .skip(1)
        .filter_map(|r| {
            let r = r.trim_start();
            match r.strip_prefix('"') {
                Some(lit) => lit.split('"').next(),
                None => constants.iter().find(|(n, _)| r.starts_with(n)).map(|(_, v)| *v),
            }
        })
        .collect();
    let swept: BTreeSet<&str> = ROUTES.iter().copied().filter(|r| *r != "/no/such/route").collect();
    assert!(routed.len() > 50, "{routed:?}");
    assert_eq!(routed, swept, "every route is swept");

    let (client_id, secret) = register(&app, false, SigningAlg::ES256).await;
    let client = (client_id.as_str(), secret.as_deref().unwrap_or_default());
    // A signed-in user with an authenticator app, who is also an admin.
    app.state.accounts().operators().create_user("root@example.com", "Root", PASSWORD, true, app.clock_now()).await.unwrap();
    app.sign_in("root@example.com", PASSWORD).await;
    app.enroll_totp("Phone").await;
    // A sign-in halfway through: the password given, the second step waiting.
    let halfway = browser();
    let login = halfway.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let to_verify = halfway
        .post(app.url("/login"))
        .form(&[("email", "root@example.com"), ("password", PASSWORD), ("csrf_token", &csrf_token_in(&login))])
        .send()
        .await
        .unwrap();
    assert!(to_verify.headers()["location"].to_str().unwrap().starts_with("/login/verify"));
    let verify_page = halfway.get(app.url("/login/verify")).send().await.unwrap().text().await.unwrap();
    let stranger = browser();
    let stranger_page = stranger.get(app.url("/login")).send().await.unwrap().text().await.unwrap();

    let mut sweep = Sweep { sent: 0, failures: Vec::new(), routes: BTreeSet::new() };
    let admin_csrf = csrf_token_in(&app.get("/account/security").await.body);
    sweep_as(&app, &app.client, &admin_csrf, client, &mut sweep).await;
    sweep_as(&app, &halfway, &csrf_token_in(&verify_page), client, &mut sweep).await;
    sweep_as(&app, &stranger, &csrf_token_in(&stranger_page), client, &mut sweep).await;

    let health = browser().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the server still answers");
    println!(
        "HTTP sweep: {} requests, {} distinct paths ({} routes), {} failures",
        sweep.sent,
        sweep.routes.len(),
        routed.len(),
        sweep.failures.len()
    );
    assert!(
        sweep.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        sweep.failures.len(),
        sweep.sent,
        sweep.failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}
