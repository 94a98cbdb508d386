//! Codes by text message: a phone number confirmed with a code, then used at
//! the second step; delivery through the outbox and a real local HTTP gateway.

use portcullis_core::oauth::SigningAlg;
use portcullis_delivery::{SmsOutbox, SmsProvider, SmsSettings, TwilioSettings};
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, Page, TestApp, on_both_backends, spawn_app_with};
use crate::mfa::{authorize_url, claims_after, hidden, recovery_codes_in};
use crate::oidc::CALLBACK;

on_both_backends!(
    a_confirmed_phone_number_texts_the_second_step,
    an_application_asking_for_mfa_gets_sms_otp_from_a_texted_code,
    a_user_with_two_numbers_picks_the_one_to_text,
);

/// Every text message sent so far, oldest first.
pub(crate) fn texts(app: &TestApp) -> Vec<portcullis_core::sms::OutgoingSms> {
    SmsOutbox::read_all(&SmsOutbox::path_in(&app.config.data_dir)).unwrap()
}

impl TestApp {
    /// The code in the newest text message.
    pub(crate) fn texted_code(&self) -> String {
        let all = SmsOutbox::read_all(&SmsOutbox::path_in(&self.config.data_dir)).unwrap();
        let sms = all.last().expect("a text message");
        let code: String = sms.body.chars().take(6).collect();
        assert!(code.chars().all(|c| c.is_ascii_digit()), "{}", sms.body);
        code
    }

    /// Adds and confirms a phone number from the security page (signed in).
    pub(crate) async fn add_phone(&self, number: &str) -> Page {
        let security = self.get("/account/security").await;
        assert!(security.body.contains("Add a phone number") && security.body.contains("<label for=\"phone\">Phone number</label>"));
        let sent = self.post("/account/security/phone", &[("phone", number)], &security.body).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        assert!(sent.body.contains("We texted a 6-digit code to •"), "the number is shown masked: {}", sent.body);
        let id = hidden(&sent.body, "credential_id");
        self.post("/account/security/phone/confirm", &[("credential_id", &id), ("code", &self.texted_code())], &sent.body).await
    }

    /// From the second-step page: "Try another method" until SMS, "Text me a code", then the code.
    async fn text_me_a_code(&self, page: &Page) -> Page {
        let next = crate::oidc::urlenc(&hidden(&page.body, "next"));
        let page = &self.get(&format!("/login/verify?method=sms&next={next}")).await;
        assert!(page.body.contains("Text me a code") && page.body.contains("less secure"), "{}", page.body);
        // Past the resend cooldown of the code that confirmed the number.
        self.clock.advance(31);
        let sent = self.post("/login/verify/send", &[("method", "sms"), ("next", &hidden(&page.body, "next"))], &page.body).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        let code = self.texted_code();
        self.post("/login/verify", &[("method", "sms"), ("code", &code), ("next", &hidden(&sent.body, "next"))], &sent.body).await
    }
}

async fn a_confirmed_phone_number_texts_the_second_step(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let signed_out = app.get("/account/security").await;
    assert_eq!((signed_out.status, signed_out.location.as_deref()), (StatusCode::SEE_OTHER, Some("/login?next=%2Faccount%2Fsecurity")));
    app.sign_in("ada@example.com", PASSWORD).await;
    let security = app.get("/account/security").await;
    let bad = app.post("/account/security/phone", &[("phone", "07700 900123")], &security.body).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("with its country code"), "{}", bad.body);

    // A wrong code does not confirm the number.
    let sent = app.post("/account/security/phone", &[("phone", "+44 7700 900123")], &security.body).await;
    let all = SmsOutbox::read_all(&SmsOutbox::path_in(&app.config.data_dir)).unwrap();
    assert_eq!(all.last().unwrap().to.as_str(), "+447700900123", "sent in E.164 form");
    let id = hidden(&sent.body, "credential_id");
    let code = app.texted_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = app.post("/account/security/phone/confirm", &[("credential_id", &id), ("code", wrong)], &sent.body).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = app.post("/account/security/phone/confirm", &[("credential_id", &id), ("code", &code)], &refused.body).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(recovery_codes_in(&done.body).len(), 10, "the first factor comes with recovery codes");
    assert!(app.get("/account/security").await.body.contains("Phone number · added"));
    app.sign_out().await;

    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get(&first.location.unwrap()).await;
    let signed_in = app.text_me_a_code(&page).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert!(app.get("/account").await.body.contains("verified with your password and a code by text message."));
}

async fn an_application_asking_for_mfa_gets_sms_otp_from_a_texted_code(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.add_phone("+1 415 555 2671").await;
    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    app.sign_out().await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    // The application's request: the password, then the phone (the account's only factor, so it is offered first).
    let login_page = app.get(&app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap()).await;
    let next = hidden(&login_page.body, "next");
    let first = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login_page.body).await;
    let page = app.get(&first.location.unwrap()).await;
    assert!(page.body.contains("Text me a code") && !page.body.contains("Email me a code"), "{}", page.body);
    let done = app.text_me_a_code(&page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "{back}");
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    for v in ["pwd", "sms", "otp", "mfa"] {
        assert!(amr.iter().any(|a| a == v), "{v} in {amr:?}");
    }
    assert_eq!(acr.as_deref(), Some("mfa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_gateway_is_shown_plainly() {
    // A local HTTP server answering like Twilio does for a bad number.
    let app_router = axum::Router::new().fallback(axum::routing::post(|| async {
        (StatusCode::BAD_REQUEST, r#"{"code":21211,"message":"The 'To' number is not a valid phone number."}"#)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app_router).await });
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.sms = SmsSettings {
            provider: SmsProvider::Twilio,
            twilio: Some(TwilioSettings {
                base_url: gateway,
                account_sid: "AC1".into(),
                auth_token: "t".into(),
                from: Some("+15005550006".into()),
                messaging_service_sid: None,
            }),
            webhook: None,
        }
    })
    .await
    else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let security = app.get("/account/security").await;
    let failed = app.post("/account/security/phone", &[("phone", "+44 7700 900123")], &security.body).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(failed.body.contains("could not send the text message"), "{}", failed.body);
}

async fn a_user_with_two_numbers_picks_the_one_to_text(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.add_phone("+44 7700 900123").await;
    app.clock.advance(31);
    let second = app.add_phone("+1 415 555 2671").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    app.sign_out().await;

    app.sign_in("ada@example.com", PASSWORD).await;
    app.clock.advance(31);
    let page = app.get("/login/verify?method=sms&next=%2Faccount").await;
    assert!(page.body.contains("<label for=\"phone\">Phone</label>"), "a choice of number: {}", page.body);
    assert!(page.body.contains("(•••••••••••23)") && page.body.contains("(••••••••••71)"), "{}", page.body);
    // The option for the US number (the second one added).
    let options: Vec<&str> = page.body.split("<option value=\"").skip(1).collect();
    let us = options.iter().find(|o| o.contains("71)")).unwrap().split('"').next().unwrap().to_owned();
    let sent = app.post("/login/verify/send", &[("method", "sms"), ("phone", &us), ("next", "/account")], &page.body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("We texted a code to ••••••••••71"), "{}", sent.body);
    let all = SmsOutbox::read_all(&SmsOutbox::path_in(&app.config.data_dir)).unwrap();
    assert_eq!(all.last().unwrap().to.as_str(), "+14155552671", "sent to the number picked");

    // Another user's number id is not a destination.
    let forged =
        app.post("/login/verify/send", &[("method", "sms"), ("phone", "not-a-credential"), ("next", "/account")], &sent.body).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND, "{}", forged.body);
    let done = app.post("/login/verify", &[("method", "sms"), ("code", &app.texted_code()), ("next", "/account")], &sent.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}
