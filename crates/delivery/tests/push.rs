//! Web Push against a local RFC 8030 push service started by the test: it
//! records each message and decrypts it as a browser would, with the
//! subscription's private key and auth secret (RFC 8291).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use portcullis_core::factors::push::{PushDelivery, PushSender, PushSubscription};
use portcullis_delivery::{VapidKey, WebPushSender};

/// A push service on a free port: records every POST, answers `status`.
async fn push_service(status: StatusCode) -> (String, std::sync::Arc<std::sync::Mutex<Vec<common::Seen>>>) {
    common::receiver(status, "").await
}

/// A browser's subscription: its keys, and what it gives the server.
fn browser_subscription(endpoint: String) -> (p256::SecretKey, [u8; 16], PushSubscription) {
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let auth: [u8; 16] = rand::random();
    let p256dh = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
    (secret, auth, PushSubscription { endpoint, p256dh, auth: URL_SAFE_NO_PAD.encode(auth) })
}

fn vapid() -> VapidKey {
    VapidKey::from_secret(&[42u8; 32]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_service_gets_an_aes128gcm_message_the_browser_can_decrypt_with_a_vapid_signature() {
    use p256::ecdsa::signature::Verifier;
    let (base, seen) = push_service(StatusCode::CREATED).await;
    let (secret, auth, subscription) = browser_subscription(format!("{base}/push/subscription-1"));
    let sender = WebPushSender::new(vapid(), "mailto:ops@example.com".into(), true).unwrap();
    let payload = br#"{"type":"sign_in_request","request":"r1"}"#;
    assert_eq!(sender.send(&subscription, payload, 120).await.unwrap(), PushDelivery::Accepted);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let m = &seen[0];
    assert_eq!(m.path, "/push/subscription-1");
    assert_eq!(m.headers["content-encoding"], "aes128gcm");
    assert_eq!(m.headers["ttl"], "120");
    assert_eq!(m.headers["urgency"], "high");
    // RFC 8291: the browser decrypts with its private key and auth secret.
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    let clear = web_push_native::decrypt(m.body.to_vec(), &secret, &auth).unwrap();
    assert_eq!(clear, payload);
    assert_ne!(m.body.as_ref(), payload, "encrypted on the wire");
    // RFC 8292: `vapid t=<JWT>, k=<key>`, the JWT for this push service's origin, signed by k.
    let header = m.headers["authorization"].to_str().unwrap();
    let (t, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
    assert_eq!(k, vapid().public_key());
    let parts: Vec<&str> = t.split('.').collect();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], base.as_str());
    let exp = claims["exp"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(exp > now && exp <= now + 24 * 3600, "valid for at most 24 hours");
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();

    // Another subscription's keys cannot read it.
    let (other, other_auth, _) = browser_subscription(String::new());
    assert!(web_push_native::decrypt(m.body.to_vec(), &other, &web_push_native::Auth::clone_from_slice(&other_auth)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_subscription_is_gone_and_a_refusal_is_an_error() {
    let (base, _) = push_service(StatusCode::GONE).await;
    let (_, _, subscription) = browser_subscription(format!("{base}/push/old"));
    let sender = WebPushSender::new(vapid(), "mailto:ops@example.com".into(), true).unwrap();
    assert_eq!(sender.send(&subscription, b"{}", 60).await.unwrap(), PushDelivery::Gone);

    let (base, _) = push_service(StatusCode::TOO_MANY_REQUESTS).await;
    let (_, _, subscription) = browser_subscription(format!("{base}/push/busy"));
    let e = sender.send(&subscription, b"{}", 60).await.unwrap_err();
    assert!(e.to_string().contains("429"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_inside_the_network_are_refused_unless_the_operator_allows_them() {
    let (base, seen) = push_service(StatusCode::CREATED).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let sender = WebPushSender::new(vapid(), "mailto:ops@example.com".into(), false).unwrap();
    for endpoint in [format!("{base}/push/x"), format!("https://127.0.0.1:{port}/push/x"), format!("https://localhost:{port}/push/x")] {
        let (_, _, subscription) = browser_subscription(endpoint.clone());
        assert!(sender.send(&subscription, b"{}", 60).await.is_err(), "{endpoint} was not refused");
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the local service");
}
