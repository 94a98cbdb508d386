//! Codes sent by email as a second step: delivery, single use, expiry,
//! attempt limit, replacement, resend cooldown and hourly caps.

use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, Page, TestApp, on_both_backends, spawn_app_with};
use crate::mfa::hidden;

on_both_backends!(
    an_emailed_code_completes_the_second_step_once,
    codes_expire_and_a_newer_code_replaces_the_older_one,
    resends_wait_for_the_cooldown_and_stop_at_the_hourly_cap,
);

/// The 6-digit code in the newest message to `to` that carries one.
pub(crate) async fn emailed_code(app: &TestApp, to: &str) -> String {
    app.mail_settled().await;
    let has_code = |subject: &str| subject.rsplit(' ').next().is_some_and(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()));
    let mail = app.outbox().into_iter().rev().find(|m| m.email.to == to && has_code(&m.email.subject)).expect("a message with a code");
    let code: String = mail.email.subject.rsplit(' ').next().unwrap().to_owned();
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{}", mail.email.subject);
    assert!(mail.email.text.contains(&code), "the code is in the text too");
    code
}

impl TestApp {
    /// A verified user with an authenticator app, signed out.
    async fn user_with_app(&self, email: &str) {
        self.verified_user(email).await;
        self.sign_in(email, PASSWORD).await;
        self.enroll_totp("Phone").await;
        self.sign_out().await;
    }

    /// Password, then "Email me a code"; returns the page asking for it.
    async fn password_then_email_code(&self, email: &str) -> Page {
        let first = self.sign_in(email, PASSWORD).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER);
        let page = self.get("/login/verify?method=email").await;
        assert!(page.body.contains("Email me a code"), "{}", page.body);
        let sent = self.send_code(&page).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        assert!(sent.body.contains("We sent a code to") && sent.body.contains("<label for=\"code\">Code</label>"));
        sent
    }

    async fn send_code(&self, page: &Page) -> Page {
        self.post("/login/verify/send", &[("method", "email"), ("next", "/account")], &page.body).await
    }

    async fn enter_code(&self, page: &Page, code: &str) -> Page {
        self.post("/login/verify", &[("method", "email"), ("code", code), ("next", &hidden(&page.body, "next"))], &page.body).await
    }
}

async fn an_emailed_code_completes_the_second_step_once(app: TestApp) {
    app.user_with_app("ada@example.com").await;
    let page = app.password_then_email_code("ada@example.com").await;
    let code = emailed_code(&app, "ada@example.com").await;
    let done = app.enter_code(&page, &code).await;
    assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")), "{}", done.body);
    assert!(app.get("/account").await.body.contains("verified with your password and a code by email."));

    app.sign_out().await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get("/login/verify?method=email").await;
    let again = app.enter_code(&page, &code).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "a code works once");
}

async fn codes_expire_and_a_newer_code_replaces_the_older_one(app: TestApp) {
    app.user_with_app("ada@example.com").await;
    let page = app.password_then_email_code("ada@example.com").await;
    let first = emailed_code(&app, "ada@example.com").await;
    app.clock.advance(301);
    assert_eq!(app.enter_code(&page, &first).await.status, StatusCode::UNPROCESSABLE_ENTITY, "five minutes have passed");

    let resent = app.send_code(&page).await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    let older = emailed_code(&app, "ada@example.com").await;
    app.clock.advance(31);
    app.send_code(&resent).await;
    let newer = emailed_code(&app, "ada@example.com").await;
    if older != newer {
        assert_eq!(app.enter_code(&resent, &older).await.status, StatusCode::UNPROCESSABLE_ENTITY, "a new code kills the old one");
    }
    assert_eq!(app.enter_code(&resent, &newer).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_dies_after_five_wrong_tries_on_sqlite() {
    a_code_dies_after_five_wrong_tries(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_dies_after_five_wrong_tries_on_postgres() {
    a_code_dies_after_five_wrong_tries(Backend::Postgres).await;
}

async fn a_code_dies_after_five_wrong_tries(backend: Backend) {
    // A lenient account lockout, so the code's own attempt limit is what is tested.
    let Some(app) = spawn_app_with(backend, |c| c.lockout.max_second_step_failures = 50).await else { return };
    app.user_with_app("ada@example.com").await;
    let page = app.password_then_email_code("ada@example.com").await;
    let code = emailed_code(&app, "ada@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(app.enter_code(&page, wrong).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // A new sign-in (one takes five answers) finds the same code, with four wrong tries on it.
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let page = app.get("/login/verify?method=email").await;
    assert_eq!(app.enter_code(&page, wrong).await.status, StatusCode::UNPROCESSABLE_ENTITY, "its fifth wrong try");
    let late = app.enter_code(&page, &code).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY, "the right code after five wrong ones is dead");
    app.clock.advance(31);
    app.send_code(&page).await;
    let fresh = emailed_code(&app, "ada@example.com").await;
    assert_eq!(app.enter_code(&page, &fresh).await.status, StatusCode::SEE_OTHER, "a new code works");
}

async fn resends_wait_for_the_cooldown_and_stop_at_the_hourly_cap(app: TestApp) {
    // The sends below straddle a clock-hour boundary: the cap holds in any hour, not per clock hour.
    let now = portcullis_core::clock::Clock::now(&app.clock);
    app.clock.advance(3600 - now.rem_euclid(3600) - 200);
    app.user_with_app("ada@example.com").await;
    let page = app.password_then_email_code("ada@example.com").await;
    let soon = app.send_code(&page).await;
    assert_eq!(soon.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(soon.body.contains("moments ago") && soon.headers.contains_key("retry-after"), "{}", soon.body);
    let sent_before = app.outbox().len();
    // Nine more sends, 31 s apart, reach the cap of ten an hour; the eleventh is refused.
    for _ in 0..9 {
        app.clock.advance(31);
        assert_eq!(app.send_code(&page).await.status, StatusCode::OK);
    }
    app.clock.advance(31);
    let capped = app.send_code(&page).await;
    assert_eq!(capped.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(capped.body.contains("Too many codes"), "{}", capped.body);
    assert_eq!(app.outbox().len(), sent_before + 9, "refused sends send nothing");
    // The first code went out 310 s ago: a slot frees when it is an hour old.
    assert_eq!(capped.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("3290"));
    // That pending sign-in has lapsed by then; a new one asks a second early, then on time.
    app.clock.advance(3289);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let again = app.get("/login/verify?method=email").await;
    assert_eq!(app.send_code(&again).await.status, StatusCode::TOO_MANY_REQUESTS, "a second early");
    app.clock.advance(1);
    assert_eq!(app.send_code(&again).await.status, StatusCode::OK);
}
