//! Pages people read: the language (the browser's, or the user's own
//! choice, which emails follow too), plain words, and the suggestion to set
//! up a second factor after a sign-in with the password alone.

use reqwest::StatusCode;

use crate::helpers::{Backend, NEW_PASSWORD, PASSWORD, TestApp, csrf_token_in, on_both_backends, spawn_app_with};

on_both_backends!(
    a_german_browser_gets_german_pages_and_errors,
    a_language_chosen_on_the_account_page_holds_everywhere_and_in_emails,
    the_account_page_says_how_the_session_was_verified_in_words,
);

async fn get_in(app: &TestApp, path: &str, accept_language: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let r = app.client.get(app.url(path)).header("accept-language", accept_language).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, r.text().await.unwrap(), headers)
}

async fn a_german_browser_gets_german_pages_and_errors(app: TestApp) {
    let (status, body, headers) = get_in(&app, "/login", "de-AT,de;q=0.9,en;q=0.5").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<html lang=\"de\">") && body.contains("<h1>Anmelden</h1>"), "{body}");
    assert_eq!(headers.get("content-language").and_then(|v| v.to_str().ok()), Some("de"));
    assert!(headers.get_all("vary").iter().any(|v| v.to_str().unwrap_or("").contains("Accept-Language")));
    let (_, english, _) = get_in(&app, "/login", "fr-FR,en;q=0.1").await;
    assert!(english.contains("<h1>Sign in</h1>"), "a language we do not ship falls back to English");

    // Errors are German too: a wrong password, a page that does not exist, a stale form.
    let token = csrf_token_in(&body);
    let wrong = app
        .client
        .post(app.url("/login"))
        .header("accept-language", "de")
        .form(&[("email", "nobody@example.com"), ("password", "wrong-wrong"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("E-Mail-Adresse oder Passwort ist falsch."));
    let (missing, body, _) = get_in(&app, "/no/such/page", "de").await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert!(body.contains("Diese Seite gibt es nicht.") && body.contains("Nicht gefunden"), "{body}");
    let stale = app.client.post(app.url("/login")).header("accept-language", "de").form(&[("email", "x")]).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert!(stale.text().await.unwrap().contains("Dieses Formular ist abgelaufen"));
    // JSON answers stay as they were: no language headers on discovery.
    let discovery = app.client.get(app.url("/.well-known/openid-configuration")).header("accept-language", "de").send().await.unwrap();
    assert!(discovery.headers().get("content-language").is_none());
}

async fn a_language_chosen_on_the_account_page_holds_everywhere_and_in_emails(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let account = app.get("/account").await;
    assert!(account.body.contains("Your account"));
    let chosen = app.post("/account/language", &[("language", "de")], &account.body).await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER);
    let (_, german, _) = get_in(&app, "/account", "en-US").await;
    assert!(german.contains("<h1>Ihr Konto</h1>"), "the choice beats the browser's language: {german}");
    assert!(german.contains("<option value=\"de\" lang=\"de\" selected>Deutsch</option>"), "{german}");
    let refused = app.post("/account/language", &[("language", "tlh")], &german).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "a language we do not ship is refused");

    // Messages follow the choice: the notice of a password change comes in German.
    let account = app.get("/account").await;
    let fields = [("current", PASSWORD), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    assert_eq!(app.post("/account/password", &fields, &account.body).await.status, StatusCode::OK);
    let notice = app.notice("Ihr Passwort wurde geändert").await;
    assert!(notice.email.text.contains("Das Passwort Ihres Portcullis-Kontos wurde gerade geändert"), "{}", notice.email.text);
    assert!(notice.email.html.as_deref().unwrap_or("").contains("<html lang=\"de\">"));

    // Another browser: English until the password step names the account, German from then on.
    let other = crate::helpers::browser();
    let login = other.get(app.url("/login")).header("accept-language", "en").send().await.unwrap().text().await.unwrap();
    assert!(login.contains("<h1>Sign in</h1>"));
    let form = [("email", "ada@example.com"), ("password", NEW_PASSWORD), ("csrf_token", &csrf_token_in(&login))];
    let step = other.post(app.url("/login")).header("accept-language", "en").form(&form).send().await.unwrap();
    assert!(
        step.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap_or("").starts_with("portcullis_lang=de")),
        "the password step brings the account's language"
    );

    // "Your browser's language" forgets the choice.
    let account = app.get("/account").await;
    app.post("/account/language", &[("language", "")], &account.body).await;
    let (_, back, _) = get_in(&app, "/account", "en-US").await;
    assert!(back.contains("<h1>Your account</h1>"), "{back}");
    app.submit("/forgot-password", "/forgot-password", &[("email", "ada@example.com")]).await;
    let reset = app.notice("reset your password").await;
    assert!(reset.email.subject.contains("reset your password"), "no choice: English messages");
}

async fn the_account_page_says_how_the_session_was_verified_in_words(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let account = app.get("/account").await;
    assert!(account.body.contains("This session was verified with your password."), "{}", account.body);
    assert!(account.body.contains("data-testid=\"mfa-invite\""), "no second factor: the page invites one");
    app.enroll_totp("Pixel").await;
    let account = app.get("/account").await;
    assert!(!account.body.contains("data-testid=\"mfa-invite\""), "a second factor: no invitation");
    let main = &account.body[account.body.find("<main").unwrap_or(0)..];
    for code in [">pwd", " pwd", "otp,", "hwk", " amr"] {
        assert!(!main.contains(code), "the page says {code:?}: {main}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_password_only_sign_in_is_asked_once_to_set_up_a_factor() {
    if let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.mfa.suggest_enrollment = true).await {
        a_password_only_sign_in_is_asked_once_to_set_up_a_factor(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_password_only_sign_in_is_asked_once_to_set_up_a_factor() {
    if let Some(app) = spawn_app_with(Backend::Postgres, |c| c.mfa.suggest_enrollment = true).await {
        a_password_only_sign_in_is_asked_once_to_set_up_a_factor(app).await
    }
}

async fn a_password_only_sign_in_is_asked_once_to_set_up_a_factor(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let signed_in = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location.as_deref(), Some("/account/protect?next=%2Faccount"));
    let prompt = app.get("/account/protect?next=%2Faccount").await;
    assert!(prompt.body.contains("Protect your account") && prompt.body.contains("Not now"), "{}", prompt.body);
    // "Not now" goes on to where the sign-in was going, and only to a local page.
    let later = app.post("/account/protect/later", &[("next", "https://evil.example/")], &prompt.body).await;
    assert_eq!(later.status, StatusCode::SEE_OTHER);
    assert_eq!(later.location.as_deref(), Some("/account"));

    app.sign_out().await;
    let again = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(again.location.as_deref(), Some("/account"), "not asked again within 30 days");
    app.sign_out().await;
    app.clock.advance(31 * 86_400);
    let month = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(month.location.as_deref(), Some("/account/protect?next=%2Faccount"), "asked again after 30 days");

    // With a factor, a sign-in is never password-only: no suggestion.
    app.enroll_totp("Pixel").await;
    app.sign_out().await;
    let (_, step) = app.password_then_second_step("ada@example.com").await;
    assert!(step.body.contains("Two-step verification"));

    // The prompt is a signed-in page: a stranger is sent to sign in, and "Not now" needs the form's token.
    let stranger = crate::helpers::browser();
    let r = stranger.get(app.url("/account/protect")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = stranger.post(app.url("/account/protect/later")).form(&[("next", "/account")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
