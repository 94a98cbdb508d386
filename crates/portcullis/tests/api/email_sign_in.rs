//! Sign-in by emailed code instead of a password (`[factors]
//! email_passwordless`), and emailed codes for users without a factor.

use portcullis_core::oauth::SigningAlg;
use reqwest::StatusCode;

use crate::email_codes::emailed_code;
use crate::helpers::{Backend, PASSWORD, Page, TestApp, spawn_app, spawn_app_with};
use crate::mfa::{authorize_url, claims_after, hidden};

macro_rules! on_both_backends_passwordless {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = super::passwordless_app(crate::helpers::Backend::Sqlite).await { super::$name(app).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = super::passwordless_app(crate::helpers::Backend::Postgres).await { super::$name(app).await } } )* }
    };
}

on_both_backends_passwordless!(
    an_emailed_code_signs_in_without_a_password_and_tells_no_one_which_addresses_exist,
    an_application_asking_for_mfa_after_an_emailed_code_asks_for_the_password,
    an_account_with_a_factor_then_gives_its_password,
);

async fn passwordless_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| c.factors.email_passwordless = true).await
}

impl TestApp {
    /// "Email me a sign-in code" from the sign-in page, for `email`.
    async fn request_sign_in_code(&self, email: &str) -> Page {
        let login = self.get("/login?next=%2Faccount").await;
        assert!(login.body.contains("Email me a sign-in code"), "{}", login.body);
        let page = self.get("/login/code?next=%2Faccount").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<label for=\"email\">Email</label>"), "{}", page.body);
        self.post("/login/code", &[("email", email), ("next", "/account")], &page.body).await
    }

    async fn enter_sign_in_code(&self, page: &Page, email: &str, code: &str) -> Page {
        self.post("/login/code/verify", &[("email", email), ("code", code), ("next", &hidden(&page.body, "next"))], &page.body).await
    }
}

async fn an_emailed_code_signs_in_without_a_password_and_tells_no_one_which_addresses_exist(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.mail_settled().await;
    let mails_before = app.outbox().len();

    let nobody = app.request_sign_in_code("nobody@example.com").await;
    let ada = app.request_sign_in_code("ada@example.com").await;
    assert_eq!((nobody.status, ada.status), (StatusCode::OK, StatusCode::OK));
    // The two pages differ only by the address typed.
    let strip = |p: &Page, email: &str| p.body.replace(email, "EMAIL").replace(&crate::helpers::csrf_token_in(&p.body), "CSRF");
    assert_eq!(strip(&nobody, "nobody@example.com"), strip(&ada, "ada@example.com"));
    assert!(ada.body.contains("If an account uses ada@example.com, we have emailed it a sign-in code"), "{}", ada.body);
    assert!(ada.body.contains("<label for=\"code\">Code</label>"));
    app.mail_settled().await;
    assert_eq!(app.outbox().len(), mails_before + 1, "only the real account got a message");
    let code = emailed_code(&app, "ada@example.com").await;

    // A wrong code, and any code for an address without an account, get the same answer.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = app.enter_sign_in_code(&ada, "ada@example.com", wrong).await;
    let unknown = app.enter_sign_in_code(&nobody, "nobody@example.com", &code).await;
    assert_eq!((refused.status, unknown.status), (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(strip(&refused, "ada@example.com"), strip(&unknown, "nobody@example.com"));

    let done = app.enter_sign_in_code(&ada, "ada@example.com", &code).await;
    assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some("/account")), "{}", done.body);
    let account = app.get("/account").await;
    assert!(account.body.contains("verified with a code by email."), "one factor, no mfa: {}", account.body);
    // The mailbox alone may not change how the account signs in: the
    // password first, and the emailed code is not offered for that.
    let setup = app.post("/account/security/totp", &[], &account.body).await;
    let to = setup.location.unwrap_or_default();
    assert!(to.starts_with("/login?reauth=security"), "no authenticator app from an emailed code alone: {to}");
    let reauth = app.get(&to).await;
    assert!(reauth.body.contains("name=\"password\"") && !reauth.body.contains("Email me a sign-in code"), "{}", reauth.body);

    app.sign_out().await;
    let again = app.enter_sign_in_code(&ada, "ada@example.com", &code).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "a code signs in once");
}

async fn an_application_asking_for_mfa_after_an_emailed_code_asks_for_the_password(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let page = app.request_sign_in_code("ada@example.com").await;
    let code = emailed_code(&app, "ada@example.com").await;
    assert_eq!(app.enter_sign_in_code(&page, "ada@example.com", &code).await.status, StatusCode::SEE_OTHER);

    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    let step = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(step.starts_with("/login/verify"), "{step}");
    let page = app.get(&step).await;
    // Another emailed code would not make two kinds of factor: the password does.
    assert!(page.body.contains("<label for=\"password\">Password</label>") && !page.body.contains("Email me a code"), "{}", page.body);
    assert!(!page.body.contains("Remember this browser"), "a browser never stands in for the password");
    let next = hidden(&page.body, "next");
    let wrong = app.post("/login/verify", &[("method", "password"), ("password", "not-my-password"), ("next", &next)], &page.body).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That password is incorrect."), "{}", wrong.body);
    let done = app.post("/login/verify", &[("method", "password"), ("password", PASSWORD), ("next", &next)], &wrong.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    // Email is no factor of an account without another (`email_requires_other_factor`): the
    // password made one kind, and a factor set up now makes the other.
    let again = app.get(&done.location.unwrap()).await;
    let enroll = app.get(&again.location.unwrap()).await;
    assert!(enroll.body.contains("Set up authenticator app"), "{}", enroll.body);
    let (_, enrolled) = app.enroll_app_inline(&enroll).await;
    let back = app.get(&crate::mfa::after(&enrolled.body, "class=\"button\" href=\"")).await.location.unwrap();
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr.as_deref()), (vec!["otp".to_owned(), "pwd".to_owned(), "mfa".to_owned()], Some("mfa")));
}

async fn an_account_with_a_factor_then_gives_its_password(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (secret, _) = app.enroll_totp("Phone").await;
    app.sign_out().await;

    let page = app.request_sign_in_code("ada@example.com").await;
    let code = emailed_code(&app, "ada@example.com").await;
    let first = app.enter_sign_in_code(&page, "ada@example.com", &code).await;
    assert!(first.location.as_deref().unwrap_or_default().starts_with("/login/verify"), "{:?}", first.location);
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "not signed in yet");
    let step = app.get(&first.location.unwrap()).await;
    // The code proved possession; the missing kind is knowledge: an app's code would not make it multi-factor.
    assert!(step.body.contains("<label for=\"password\">Password</label>"), "{}", step.body);
    let refused = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", "/account")], &step.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "the email code is not offered twice");
    app.clock.advance(30);
    let totp = app.code_now(&secret);
    let refused = app.post("/login/verify", &[("method", "totp"), ("code", &totp), ("next", "/account")], &step.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "nor is another possession factor");
    let done = app.post("/login/verify", &[("method", "password"), ("password", PASSWORD), ("next", "/account")], &step.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let account = app.get("/account").await;
    assert!(account.body.contains("verified with a code by email and your password."), "{}", account.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_emailed_code_is_off_unless_the_operator_turns_it_on() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    assert!(!app.get("/login").await.body.contains("Email me a sign-in code"));
    assert_eq!(app.get("/login/code").await.status, StatusCode::NOT_FOUND);
    let login = app.get("/login").await;
    let post = app.post("/login/code", &[("email", "ada@example.com")], &login.body).await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_email_codes_limited_to_users_with_another_factor_a_factorless_user_enrolls() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.factors.email_requires_other_factor = true).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let (_, url, _, _) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    let step = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    assert!(step.starts_with("/login/enroll"), "{step}");
    let page = app.get(&step).await;
    assert!(page.body.contains("Set up authenticator app") && !page.body.contains("Email me a code"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authenticator_apps_turned_off_none_can_be_added() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.factors.totp = false).await else { return };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let security = app.get("/account/security").await;
    assert!(!security.body.contains("Set up authenticator app") && security.body.contains("Add a phone number"));
    let refused = app.post("/account/security/totp", &[], &security.body).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}
