//! The account security page beyond factors: sessions, recent events, and
//! the MFA requirement an operator sets for a role or for everyone.

use portcullis_core::audit::{AuditKind, RequestOrigin};
use portcullis_core::clock::Clock;
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp, on_both_backends, spawn_app_with};
use crate::mfa::hidden;

on_both_backends!(
    the_security_page_lists_sessions_and_recent_events_and_ends_a_session,
    changing_factors_from_an_old_session_asks_to_sign_in_again,
    a_setup_is_confirmed_only_from_a_recent_session_and_within_ten_minutes,
    removing_a_factor_ends_the_sessions_and_grants_it_vouched_for,
);

fn count(html: &str, marker: &str) -> usize {
    html.matches(marker).count()
}

async fn the_security_page_lists_sessions_and_recent_events_and_ends_a_session(app: TestApp) {
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    app.sign_in("ada@example.com", PASSWORD).await;
    let phone = app.other_browser();
    assert_eq!(phone.sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);

    let page = app.get("/account/security").await;
    assert_eq!(count(&page.body, "data-testid=\"session\""), 2, "{}", page.body);
    assert_eq!(count(&page.body, "<strong>This session</strong>"), 1);
    assert!(page.body.contains("Failed sign-in attempt") && page.body.contains("Signed in"), "{}", page.body);
    assert!(page.body.contains("127.0.0.1"), "events and sessions say where from");

    let marker = "action=\"/account/security/sessions/end\"";
    let form = &page.body[page.body.find(marker).expect("another session can be ended")..];
    let ended = app.post("/account/security/sessions/end", &[("id", &hidden(form, "id"))], &page.body).await;
    assert_eq!(ended.status, StatusCode::OK);
    assert!(ended.body.contains("That session was signed out."));
    assert_eq!(count(&ended.body, "data-testid=\"session\""), 1);
    assert_eq!(phone.account_status().await, StatusCode::SEE_OTHER, "the other browser is signed out");
    assert_eq!(app.get("/account").await.status, StatusCode::OK, "this one is not");
    assert!(ended.body.contains("Session signed out"));
    let again = app.post("/account/security/sessions/end", &[("id", &hidden(form, "id"))], &ended.body).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "an ended session cannot be ended twice");

    // The page shows the last 20 events of this account only.
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    for _ in 0..25 {
        let origin = RequestOrigin::command_line();
        app.state
            .accounts()
            .audit(AuditKind::AccountUnlocked, Some(ada.id), &origin, serde_json::json!({}), app.clock.now())
            .await
            .unwrap();
    }
    app.other_browser().sign_in("ada@example.com", "wrong-password-x").await;
    let page = app.get("/account/security").await;
    assert_eq!(count(&page.body, "data-testid=\"security-event\""), 20);
    assert!(page.body.contains("Failed sign-in attempt"), "the newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_required_for_a_role_leads_to_enrollment_and_keeps_the_last_factor() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.policy.mfa_required_for = vec!["admin".into()]).await else {
        return;
    };
    let now = app.clock.now();
    app.state.accounts().operators().create_user("root@example.com", "Root", PASSWORD, true, now).await.unwrap();
    let admin = app.other_browser();
    let page = admin.client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let r = admin
        .client
        .post(app.url("/login"))
        .form(&[("email", "root@example.com"), ("password", PASSWORD), ("csrf_token", &crate::helpers::csrf_token_in(&page))])
        .send()
        .await
        .unwrap();
    let to = r.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert!(to.starts_with("/login/enroll"), "an admin without a factor enrolls at sign-in: {to}");

    // A plain user may remove their only factor...
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(), Some("/account"), "users need no factor");
    app.enroll_totp("Phone").await;
    let removed = remove_only_factor(&app).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);

    // ...an admin may not.
    let origin = RequestOrigin::command_line();
    app.state.accounts().operators().set_admin("ada@example.com", true, &origin, app.clock.now()).await.unwrap();
    app.clock.advance(30);
    app.enroll_totp("Phone").await;
    let refused = remove_only_factor(&app).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("You cannot remove your last sign-in method"), "{}", refused.body);
    assert!(refused.body.contains("data-testid=\"factor\""), "the factor is still there");
    assert_eq!(app.audit(AuditKind::AdminChanged).await.len(), 1);
}

async fn remove_only_factor(app: &TestApp) -> crate::helpers::Page {
    let page = app.get("/account/security").await;
    let marker = "action=\"/account/security/factors/remove\"";
    let form = &page.body[page.body.find(marker).unwrap()..];
    app.post("/account/security/factors/remove", &[("id", &hidden(form, "id"))], &page.body).await
}

async fn changing_factors_from_an_old_session_asks_to_sign_in_again(app: TestApp) {
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let (secret, _) = app.enroll_totp("Phone").await;
    // Twenty minutes later the session is alive (30 minutes idle), but too old to change factors.
    app.clock.advance(600);
    let page = app.get("/account/security").await;
    app.clock.advance(600);
    let add = app.post("/account/security/totp", &[], &page.body).await;
    assert_eq!(add.status, StatusCode::SEE_OTHER);
    assert_eq!(add.location.as_deref(), Some("/login?reauth=security&next=%2Faccount%2Fsecurity"));
    let remove = remove_only_factor(&app).await;
    assert_eq!((remove.status, remove.location.as_deref()), (StatusCode::SEE_OTHER, add.location.as_deref()), "removing too");
    let codes = app.post("/account/security/recovery-codes", &[], &page.body).await;
    assert_eq!(codes.location, add.location, "new recovery codes too");
    assert!(app.get("/account/security").await.body.contains("data-testid=\"factor\""), "nothing was removed");
    // Harmless changes need no new sign-in.
    let form = &page.body[page.body.find("action=\"/account/security/factors/rename\"").unwrap()..];
    let renamed = app.post("/account/security/factors/rename", &[("id", &hidden(form, "id")), ("name", "Old phone")], &page.body).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);

    let login = app.get(add.location.as_deref().unwrap()).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("sign in again to change how you sign in"), "{}", login.body);
    assert!(login.body.contains("value=\"ada@example.com\""), "the address is filled in");
    // Signing in again (both steps) makes the session recent.
    let first =
        app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/account/security")], &login.body).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let verify = app.get(first.location.as_deref().unwrap()).await;
    let done = app
        .post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&secret)), ("next", "/account/security")], &verify.body)
        .await;
    assert_eq!(done.location.as_deref(), Some("/account/security"), "{}", done.body);
    let page = app.get("/account/security").await;
    let add = app.post("/account/security/totp", &[], &page.body).await;
    assert_eq!(add.status, StatusCode::OK, "a recent sign-in may add a factor");
}

async fn a_setup_is_confirmed_only_from_a_recent_session_and_within_ten_minutes(app: TestApp) {
    app.verified_user("ada@example.com").await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    // Started while the sign-in is recent, confirmed after it is not: the confirmation is refused too.
    let security = app.get("/account/security").await;
    let setup = app.post("/account/security/totp", &[], &security.body).await;
    assert_eq!(setup.status, StatusCode::OK);
    let secret = data_encoding::BASE32_NOPAD
        .decode(crate::mfa::after(&setup.body, "data-testid=\"totp-secret\">").replace(' ', "").as_bytes())
        .unwrap();
    let credential = hidden(&setup.body, "credential_id");
    app.clock.advance(16 * 60);
    let code = app.code_now(&secret);
    let late = app
        .post("/account/security/totp/confirm", &[("credential_id", &credential), ("name", "Phone"), ("code", &code)], &setup.body)
        .await;
    assert_eq!(late.location.as_deref(), Some("/login?reauth=security&next=%2Faccount%2Fsecurity"), "{}", late.body);
    // Signed in again, the old setup (begun over ten minutes ago) cannot be finished, and is purged.
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let stale = app
        .post(
            "/account/security/totp/confirm",
            &[("credential_id", &credential), ("name", "Phone"), ("code", &app.code_now(&secret))],
            // A form token of the new session (one is bound to the session it was given to).
            &app.get("/account").await.body,
        )
        .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND, "{}", stale.body);
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    assert!(app.state.accounts().credentials().factors(ada.id).await.unwrap().is_empty());
    app.state.purge_expired().await.unwrap();
    let reused = app
        .post(
            "/account/security/totp/confirm",
            &[("credential_id", &credential), ("name", "Phone"), ("code", &app.code_now(&secret))],
            &app.get("/account").await.body,
        )
        .await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND);
    // A phone number's confirmation has the same rule.
    let adding = app.post("/account/security/phone", &[("phone", "+44 7700 900123")], &app.get("/account/security").await.body).await;
    let id = hidden(&adding.body, "credential_id");
    let code = app.texted_code();
    app.clock.advance(16 * 60);
    let late = app.post("/account/security/phone/confirm", &[("credential_id", &id), ("code", &code)], &adding.body).await;
    assert_eq!(late.location.as_deref(), Some("/login?reauth=security&next=%2Faccount%2Fsecurity"));
    assert!(app.state.accounts().credentials().factors(ada.id).await.unwrap().is_empty(), "no number was added");
}

/// Removing a factor (a lost phone) ends what it vouched for: the other
/// sessions it answered in and the application grants signed in with it;
/// not the session that removes it, nor a grant signed in without it.
async fn removing_a_factor_ends_the_sessions_and_grants_it_vouched_for(mut app: TestApp) {
    use crate::hardening::{tokens_for_ada, tokens_work};
    let new_browser = || {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        reqwest::Client::builder().cookie_provider(jar).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    };
    app.verified_user("ada@example.com").await;
    // A tablet signs an application in with the password, before the app exists.
    let first_browser = std::mem::replace(&mut app.client, new_browser());
    let (id, secret, access_before, refresh_before) = tokens_for_ada(&app).await;
    let tablet = std::mem::replace(&mut app.client, first_browser);
    app.sign_in("ada@example.com", PASSWORD).await;
    let (totp, _) = app.enroll_totp("Phone").await;
    // This session answered the app's first code: a grant made now carries it.
    let rp = app.rp(&id, Some(&secret)).await;
    let (code, verifier, _) = crate::oidc::signed_in_code(&app, &rp).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", crate::oidc::CALLBACK),
        ("code_verifier", verifier.secret()),
    ];
    let (status, body) = crate::oidc::token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (access_after, refresh_after) =
        (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap().to_owned());

    // Another browser signs in with the password and the app, and removes the app.
    let first_browser = std::mem::replace(&mut app.client, new_browser());
    let (_, page) = app.password_then_second_step("ada@example.com").await;
    app.clock.advance(30);
    let done = app.post("/login/verify", &[("method", "totp"), ("code", &app.code_now(&totp)), ("next", "/account")], &page.body).await;
    assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
    let security = app.get("/account/security").await;
    let marker = "action=\"/account/security/factors/remove\"";
    let form = &security.body[security.body.find(marker).expect("the app can be removed")..];
    let removed = app.post("/account/security/factors/remove", &[("id", &hidden(form, "id"))], &security.body).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);

    assert_eq!(app.get("/account").await.status, StatusCode::OK, "the session that removed it stays");
    let first = first_browser.get(app.url("/account")).send().await.unwrap().status();
    assert_eq!(first, StatusCode::SEE_OTHER, "the first browser's session used the app: it ends");
    let after = tokens_work(&app, (&id, &secret), &access_after, &refresh_after).await;
    assert_eq!(after, (StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST), "the grant the app vouched for ends");
    let before = tokens_work(&app, (&id, &secret), &access_before, &refresh_before).await;
    assert_eq!(before, (StatusCode::OK, StatusCode::OK), "the tablet's grant, made without the app, stays");
    let tablet_page = tablet.get(app.url("/account")).send().await.unwrap();
    assert_eq!(tablet_page.status(), StatusCode::OK, "so does the tablet's session (the account has no factor left)");
    let audited = &app.audit(AuditKind::FactorRemoved).await[0];
    assert_eq!((audited.detail["sessions_ended"].as_u64(), audited.detail["grants_revoked"].as_u64()), (Some(1), Some(1)));
}
