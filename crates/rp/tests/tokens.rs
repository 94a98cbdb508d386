#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The crate against a local provider stand-in that publishes discovery and
//! a JWKS over real HTTP (the live tests against Portcullis itself are in
//! `crates/portcullis/tests/api/relying_party.rs`): what is accepted, what is
//! refused, how often keys are fetched, and the layer's answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use portcullis_rp::{AccessClaims, Error, Issuer, Options, Requirement, Verifier};
use serde_json::{Value, json};

/// A provider stand-in: its published keys can change, its JWKS fetches are counted.
struct Provider {
    issuer: String,
    published: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    /// While set, the JWKS answers 500.
    down: Arc<std::sync::atomic::AtomicBool>,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &str, seed: u8) -> Key {
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    let encoding = EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
    Key { kid: kid.to_owned(), encoding, jwk }
}

async fn provider(keys: &[&Key]) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let published = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({
        "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks.json"),
    });
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, f, d) = (published.clone(), fetches.clone(), down.clone());
    let app = Router::new().route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) })).route(
        "/jwks.json",
        get(move || {
            f.fetch_add(1, Ordering::SeqCst);
            let keys = p.lock().unwrap().clone();
            let down = d.load(Ordering::SeqCst);
            async move {
                use axum::response::IntoResponse as _;
                if down {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    axum::Json(json!({ "keys": keys })).into_response()
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Provider { issuer, published, fetches, down }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sign(key: &Key, typ: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn access(p: &Provider, extra: Value) -> Value {
    let mut claims = json!({
        "iss": p.issuer, "sub": "user-1", "aud": "app", "client_id": "app", "exp": now() + 300, "iat": now(),
        "scope": "openid admin", "auth_time": now() - 10, "amr": ["pwd"],
    });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    claims
}

fn refused(result: Result<AccessClaims, Error>) -> String {
    match result {
        Err(Error::InvalidToken(why)) => why,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_issuers_access_tokens_for_this_audience_are_accepted() {
    let k1 = key("k1", 1);
    let p = provider(&[&k1]).await;
    let tokens = Verifier::new(Issuer::discover(&p.issuer).await.unwrap(), "app");

    let claims = tokens.verify_access_token(&sign(&k1, "at+jwt", access(&p, json!({ "acr": "mfa" })))).await.unwrap();
    assert_eq!((claims.sub.as_str(), claims.acr.as_deref(), claims.amr.as_slice()), ("user-1", Some("mfa"), &["pwd".to_owned()][..]));
    assert!(claims.has_scope("admin") && !claims.has_scope("adm"));
    // RFC 9068 §4: the media type form is the same type.
    assert!(tokens.verify_access_token(&sign(&k1, "application/at+jwt", access(&p, json!({})))).await.is_ok());

    assert!(refused(tokens.verify_access_token(&sign(&k1, "JWT", access(&p, json!({})))).await).contains("not an access token"));
    assert!(refused(tokens.verify_access_token(&sign(&k1, "at+jwt", access(&p, json!({ "aud": "other" })))).await).contains("audience"));
    assert!(
        refused(tokens.verify_access_token(&sign(&k1, "at+jwt", access(&p, json!({ "iss": "http://evil" })))).await).contains("issuer")
    );
    let expired = access(&p, json!({ "exp": now() - 120 }));
    assert!(refused(tokens.verify_access_token(&sign(&k1, "at+jwt", expired)).await).contains("expired"));
    let early = access(&p, json!({ "nbf": now() + 600 }));
    assert!(refused(tokens.verify_access_token(&sign(&k1, "at+jwt", early)).await).contains("not valid yet"));

    // Another key under the published kid: the signature is not the issuer's.
    let impostor = Key { kid: "k1".into(), ..key("k1", 9) };
    assert!(refused(tokens.verify_access_token(&sign(&impostor, "at+jwt", access(&p, json!({})))).await).contains("signature"));
    // The algorithm is the key's: a header naming HS256 (keyed with the
    // public key, the classic confusion) is refused before any check.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&header, &access(&p, json!({})), &EncodingKey::from_secret(k1.jwk.to_string().as_bytes())).unwrap();
    assert!(refused(tokens.verify_access_token(&hs).await).contains("algorithm"));
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(access(&p, json!({})).to_string())
    );
    assert!(tokens.verify_access_token(&unsigned).await.is_err());
    assert!(refused(tokens.verify_access_token("not a token").await).contains("not a JWT"));

    // What RFC 9068 §2.2 requires is required.
    for claim in ["sub", "exp", "aud", "iss"] {
        let mut claims = access(&p, json!({}));
        claims.as_object_mut().unwrap().remove(claim);
        assert!(tokens.verify_access_token(&sign(&k1, "at+jwt", claims)).await.is_err(), "without {claim}");
    }
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    assert!(
        refused(tokens.verify_access_token(&jsonwebtoken::encode(&header, &access(&p, json!({})), &k1.encoding).unwrap()).await)
            .contains("kid")
    );
    header.kid = Some("k1".into());
    header.crit = Some(vec!["exp-ext".into()]);
    assert!(
        refused(tokens.verify_access_token(&jsonwebtoken::encode(&header, &access(&p, json!({})), &k1.encoding).unwrap()).await)
            .contains("extensions")
    );
    // Issued, or signed in, in the future (beyond the minute's leeway): no.
    for claim in ["iat", "auth_time"] {
        let future = access(&p, json!({ claim: now() + 600 }));
        assert!(refused(tokens.verify_access_token(&sign(&k1, "at+jwt", future)).await).contains("future"), "{claim}");
    }
    // An audience list naming this application is this application's.
    assert!(tokens.verify_access_token(&sign(&k1, "at+jwt", access(&p, json!({ "aud": ["other", "app"] })))).await.is_ok());
}

#[tokio::test]
async fn while_the_provider_is_down_held_keys_verify_for_a_bounded_time() {
    let k1 = key("k1", 1);
    let p = provider(&[&k1]).await;
    let options = Options::default()
        .jwks_max_age(Duration::from_millis(200))
        .jwks_refetch_interval(Duration::from_millis(200))
        .jwks_max_stale(Duration::from_millis(1200));
    let tokens = Verifier::new(Issuer::discover_with(&p.issuer, options).await.unwrap(), "app");
    let token = sign(&k1, "at+jwt", access(&p, json!({})));
    p.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Stale and the refetch fails: the held key verifies; many requests
    // cost one attempt per interval, not one each.
    for _ in 0..20 {
        assert!(tokens.verify_access_token(&token).await.is_ok());
    }
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2, "discovery's fetch, then one attempt");
    // Past the stale limit: refused as unavailable (the layer's 503), not as invalid.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(matches!(tokens.verify_access_token(&token).await, Err(Error::Keys(_))));
    // The provider is back: the next attempt fetches and verifies.
    p.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokens.verify_access_token(&token).await.is_ok());
}

#[tokio::test]
async fn discovery_must_name_the_issuer_asked_for() {
    let k1 = key("k1", 1);
    let p = provider(&[&k1]).await;
    let other_spelling = format!("{}/", p.issuer);
    assert!(matches!(Issuer::discover(&other_spelling).await, Err(Error::Discovery(_))));
    assert!(matches!(Issuer::discover("http://127.0.0.1:1").await, Err(Error::Discovery(_))));
}

#[tokio::test]
async fn an_unknown_key_is_fetched_at_most_once_per_interval_even_concurrently() {
    let (k1, k2) = (key("k1", 1), key("k2", 2));
    let p = provider(&[&k1]).await;
    let interval = Duration::from_millis(400);
    let issuer = Issuer::discover_with(&p.issuer, Options::default().jwks_refetch_interval(interval)).await.unwrap();
    let tokens = Verifier::new(issuer, "app");
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1, "discovery fetched the keys once");

    // The provider rotates: k2 is published, and tokens signed with it arrive.
    p.published.lock().unwrap().push(k2.jwk.clone());
    let new = sign(&k2, "at+jwt", access(&p, json!({})));
    // Within the interval after the last fetch, an unknown kid is refused without asking.
    assert!(refused(tokens.verify_access_token(&new).await).contains("does not publish"));
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);

    tokio::time::sleep(interval).await;
    // Ten requests at once with the new kid: one fetch, all accepted.
    let all = futures_join(10, || {
        let (tokens, new) = (tokens.clone(), new.clone());
        async move { tokens.verify_access_token(&new).await.is_ok() }
    })
    .await;
    assert!(all.iter().all(|ok| *ok));
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);

    // Forged kids right after: refused, no fetch.
    let forged = Key { kid: "forged".into(), ..key("forged", 3) };
    for _ in 0..5 {
        assert!(tokens.verify_access_token(&sign(&forged, "at+jwt", access(&p, json!({})))).await.is_err());
    }
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);
    // Old tokens signed with k1 still verify from the cache.
    assert!(tokens.verify_access_token(&sign(&k1, "at+jwt", access(&p, json!({})))).await.is_ok());
    assert_eq!(p.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_the_provider_withdrew_stop_verifying_after_the_cache_age() {
    let (k1, k2) = (key("k1", 1), key("k2", 2));
    let p = provider(&[&k1, &k2]).await;
    let options = Options::default().jwks_max_age(Duration::from_millis(300)).jwks_refetch_interval(Duration::from_millis(100));
    let tokens = Verifier::new(Issuer::discover_with(&p.issuer, options).await.unwrap(), "app");
    let old = sign(&k1, "at+jwt", access(&p, json!({})));
    assert!(tokens.verify_access_token(&old).await.is_ok());
    p.published.lock().unwrap().retain(|k| k["kid"] == "k2");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(refused(tokens.verify_access_token(&old).await).contains("does not publish"));
    assert!(tokens.verify_access_token(&sign(&k2, "at+jwt", access(&p, json!({})))).await.is_ok());
}

async fn futures_join<F, Fut>(n: usize, make: F) -> Vec<bool>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(make())).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_layer_answers_rfc_6750_and_rfc_9470_challenges() {
    let k1 = key("k1", 1);
    let p = provider(&[&k1]).await;
    let tokens = Verifier::new(Issuer::discover(&p.issuer).await.unwrap(), "app");
    async fn admin(claims: AccessClaims) -> String {
        format!("admin for {} ({})", claims.sub, claims.acr.unwrap_or_default())
    }
    async fn open(claims: AccessClaims) -> String {
        claims.sub
    }
    let app = Router::new()
        .route("/admin", get(admin))
        .layer(tokens.require(Requirement::mfa().max_age(Duration::from_secs(900))))
        .merge(Router::new().route("/reports", get(open)).layer(tokens.require(Requirement::any().scope("reports"))))
        .route("/unprotected", get(open));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let call = |path: &str, token: Option<String>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        async move {
            let r = r.send().await.unwrap();
            let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), challenge, r.text().await.unwrap())
        }
    };

    assert_eq!(call("/admin", None).await.0, 401);
    assert_eq!(call("/admin", None).await.1.as_deref(), Some("Bearer"));
    let (status, challenge, _) = call("/admin", Some("garbage".into())).await;
    assert_eq!((status, challenge.unwrap().starts_with("Bearer error=\"invalid_token\"")), (401, true));

    let password_only = sign(&k1, "at+jwt", access(&p, json!({})));
    let (status, challenge, _) = call("/admin", Some(password_only.clone())).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"this requires a sign-in with a second factor\", acr_values=\"mfa\", max_age=\"900\""
        )
    );
    let stale = sign(&k1, "at+jwt", access(&p, json!({ "acr": "mfa", "auth_time": now() - 1000 })));
    let (status, challenge, _) = call("/admin", Some(stale)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("within the last 900 seconds"));

    let mfa = sign(&k1, "at+jwt", access(&p, json!({ "acr": "mfa", "amr": ["pwd", "otp", "mfa"] })));
    assert_eq!(call("/admin", Some(mfa.clone())).await, (200, None, "admin for user-1 (mfa)".into()));

    let (status, challenge, _) = call("/reports", Some(mfa)).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().starts_with("Bearer error=\"insufficient_scope\""));
    // A handler that extracts claims on a route without the layer refuses to guess.
    assert_eq!(call("/unprotected", Some(password_only)).await.0, 500);
}
