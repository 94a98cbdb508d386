//! Text-message gateways against real local HTTP receivers started by the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::receiver;
use portcullis_core::sms::{OutgoingSms, PhoneNumber, SmsSender};
use portcullis_delivery::{SIGNATURE_HEADER, SmsOutbox, TwilioSender, TwilioSettings, WebhookSender, WebhookSettings, webhook_signature};

fn message() -> OutgoingSms {
    OutgoingSms { to: PhoneNumber::parse("+44 7700 900123").unwrap(), body: "Your Portcullis code is 123456".into() }
}

fn twilio(base: &str, from: Option<&str>, service: Option<&str>) -> TwilioSettings {
    TwilioSettings {
        base_url: base.into(),
        account_sid: "AC0123456789abcdef".into(),
        auth_token: "token-secret".into(),
        from: from.map(Into::into),
        messaging_service_sid: service.map(Into::into),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_gets_its_messages_request() {
    let (base, seen) = receiver(StatusCode::CREATED, r#"{"sid":"SM1","status":"queued"}"#).await;
    TwilioSender::new(twilio(&base, Some("+15005550006"), None)).unwrap().send(&message()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    // Basic base64("AC0123456789abcdef:token-secret")
    assert_eq!(r.headers["authorization"], "Basic QUMwMTIzNDU2Nzg5YWJjZGVmOnRva2VuLXNlY3JldA==");
    assert_eq!(r.headers["content-type"], "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(
        form,
        vec![
            ("To".into(), "+447700900123".into()),
            ("From".into(), "+15005550006".into()),
            ("Body".into(), "Your Portcullis code is 123456".into())
        ]
    );

    let (base, seen) = receiver(StatusCode::CREATED, "{}").await;
    TwilioSender::new(twilio(&base, None, Some("MG42"))).unwrap().send(&message()).await.unwrap();
    let body = seen.lock().unwrap()[0].body.clone();
    assert!(url::form_urlencoded::parse(&body).any(|(k, v)| k == "MessagingServiceSid" && v == "MG42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_or_absent_gateway_is_an_error_with_its_reason() {
    let (base, _) = receiver(StatusCode::BAD_REQUEST, r#"{"code":21211,"message":"The 'To' number is not a valid phone number."}"#).await;
    let err = TwilioSender::new(twilio(&base, Some("+15005550006"), None)).unwrap().send(&message()).await.unwrap_err();
    assert!(err.to_string().contains("400") && err.to_string().contains("not a valid phone number"), "{err}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = TwilioSender::new(twilio(&format!("http://{closed}"), Some("+1"), None)).unwrap().send(&message()).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(TwilioSender::new(twilio(&base, None, None)).is_err(), "a sender is required");
    assert!(TwilioSender::new(twilio(&base, Some("+1"), Some("MG1"))).is_err(), "but only one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receiver_can_verify_the_signature() {
    let (base, seen) = receiver(StatusCode::OK, "ok").await;
    let secret = "a-shared-secret-of-some-length";
    WebhookSender::new(WebhookSettings { url: format!("{base}/sms"), secret: secret.into() }).unwrap().send(&message()).await.unwrap();
    let r = seen.lock().unwrap()[0].clone();
    assert_eq!(r.path, "/sms");
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json, serde_json::json!({ "to": "+447700900123", "body": "Your Portcullis code is 123456" }));
    // What a receiver does: recompute over "t.body" with the shared secret.
    let header = r.headers[SIGNATURE_HEADER].to_str().unwrap().to_owned();
    let t: i64 = header.strip_prefix("t=").unwrap().split(',').next().unwrap().parse().unwrap();
    assert_eq!(header, webhook_signature(secret, t, &r.body));
    assert_ne!(header, webhook_signature("another-secret-entirely", t, &r.body), "another secret does not match");
    let mut tampered = r.body.to_vec();
    tampered[10] ^= 1;
    assert_ne!(header, webhook_signature(secret, t, &tampered), "nor does another body");
    assert!(WebhookSender::new(WebhookSettings { url: base, secret: "short".into() }).is_err());
}

#[tokio::test]
async fn the_outbox_keeps_each_message() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SmsOutbox::new(dir.path()).unwrap();
    outbox.send(&message()).await.unwrap();
    outbox.send(&message()).await.unwrap();
    let all = SmsOutbox::read_all(&SmsOutbox::path_in(dir.path())).unwrap();
    assert_eq!(all, vec![message(), message()]);
}
