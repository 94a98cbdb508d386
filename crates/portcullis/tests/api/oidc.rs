//! OpenID Connect, driven by a real RP library (`openidconnect`) against the running server.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, AuthorizationCodeHash, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use portcullis_core::audit::RequestOrigin;
use portcullis_core::oauth::{MfaPolicy, SigningAlg};
use portcullis_oidc::clients::NewClient;
use reqwest::StatusCode;
use std::str::FromStr;

use crate::helpers::{Backend, PASSWORD, TestApp, csrf_token_in, on_both_backends, spawn_app};

pub(crate) const CALLBACK: &str = "https://app.example/cb";
const LOGGED_OUT: &str = "https://app.example/bye";

on_both_backends!(
    an_application_signs_a_user_in_with_code_and_pkce_and_gets_honest_claims,
    hybrid_code_id_token_with_form_post_is_delivered_as_an_auto_submitting_form,
    a_reused_code_fails_and_revokes_what_the_first_use_issued,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    bad_token_requests_get_the_exact_oauth_error,
    tokens_signed_before_a_key_rotation_still_validate,
    deleting_a_client_revokes_its_access_tokens,
    a_pending_request_is_answered_once_even_under_concurrency,
);

/// Registers a client; returns (client_id, secret).
pub(crate) async fn register(app: &TestApp, public: bool, alg: SigningAlg) -> (String, Option<String>) {
    let (c, secret) = app
        .state
        .provider()
        .client_admin()
        .register(
            NewClient {
                id: None,
                name: "Test app".into(),
                redirect_uris: vec![CALLBACK.into()],
                post_logout_redirect_uris: vec![LOGGED_OUT.into()],
                public,
                policy: portcullis_core::oauth::ClientPolicy { mfa: MfaPolicy::Optional, allow_remember: true, ..Default::default() },
                signing_alg: alg,
                service_scopes: vec![],
            },
            &RequestOrigin::command_line(),
            app.clock_now(),
        )
        .await
        .unwrap();
    (c.id, secret)
}

impl TestApp {
    pub(crate) fn clock_now(&self) -> i64 {
        use portcullis_core::clock::Clock;
        self.clock.now()
    }

    pub(crate) async fn rp(&self, id: &str, secret: Option<&str>) -> RelyingParty {
        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(self.base.clone()).unwrap(), &self.client).await.unwrap();
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(id.into()), secret.map(|s| ClientSecret::new(s.into())))
            .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
        RelyingParty { client }
    }

    /// Follows the browser through `/authorize`, signing in when asked; returns the final
    /// redirect to the application (or the form_post page's HTML).
    pub(crate) async fn browse_authorize(&self, url: &str, email: &str, password: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..6 {
            if next.starts_with("https://app.example") {
                return next;
            }
            let page = self.get(next.strip_prefix(&self.base).unwrap_or(&next)).await;
            match page.status {
                StatusCode::SEE_OTHER => {
                    let location = page.location.unwrap();
                    if location.starts_with("/login") {
                        let form = self.get(&location).await;
                        let token = csrf_token_in(&form.body);
                        let marker = "name=\"next\" value=\"";
                        let start = form.body.find(marker).unwrap() + marker.len();
                        let after = form.body[start..]
                            .split('"')
                            .next()
                            .unwrap()
                            .replace("&amp;", "&")
                            .replace("&#x2f;", "/")
                            .replace("&#x3d;", "=");
                        let r = self
                            .client
                            .post(self.url("/login"))
                            .form(&[("email", email), ("password", password), ("next", &after), ("csrf_token", &token)])
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in failed");
                        next = r.headers()["location"].to_str().unwrap().to_owned();
                    } else {
                        next = location;
                    }
                }
                StatusCode::OK => return page.body,
                other => panic!("unexpected {other} at {next}: {}", page.body),
            }
        }
        panic!("too many redirects");
    }
}

pub(crate) type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub(crate) struct RelyingParty {
    pub(crate) client: Rp,
}

impl RelyingParty {
    /// Redeems a code with its PKCE verifier through the RP library.
    pub(crate) async fn exchange(&self, app: &TestApp, code: String, verifier: PkceCodeVerifier) -> openidconnect::core::CoreTokenResponse {
        self.client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&app.client)
            .await
            .unwrap()
    }
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(&url.replace('#', "?")).unwrap();
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub(crate) async fn signed_in_code(app: &TestApp, rp: &RelyingParty) -> (String, PkceCodeVerifier, Nonce) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = app.browse_authorize(url.as_str(), "ada@example.com", PASSWORD).await;
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(app.base.as_str()), "RFC 9207 iss");
    (query_param(&back, "code").unwrap(), verifier, nonce)
}

/// A request kept while the user signs in is a one-time value: the resume
/// link replayed (a double click, a second tab) gets no second code.
async fn a_pending_request_is_answered_once_even_under_concurrency(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let login = app.get(url.as_str().strip_prefix(&app.base).unwrap()).await.location.unwrap();
    let resume = query_param(&format!("{}{login}", app.base), "next").unwrap();
    assert!(resume.starts_with("/authorize/resume?request="), "{resume}");
    let signed_in = app.submit(&login, "/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &resume)]).await;
    assert_eq!(signed_in.location.as_deref(), Some(resume.as_str()));

    let mut replays = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (app.client.clone(), app.url(&resume));
        replays.spawn(async move {
            let r = client.get(url).send().await.unwrap();
            let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
            (r.status(), location, r.text().await.unwrap())
        });
    }
    let answers = replays.join_all().await;
    let codes = answers.iter().filter(|(_, location, _)| location.as_deref().is_some_and(|l| query_param(l, "code").is_some())).count();
    assert_eq!(codes, 1, "{:?}", answers.iter().map(|(status, location, _)| (status, location)).collect::<Vec<_>>());
    for (status, _, body) in answers.iter().filter(|(_, location, _)| location.is_none()) {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        assert!(body.contains("start again"), "{body}");
    }
    assert_eq!(app.get(&resume).await.status, StatusCode::BAD_REQUEST, "and none later");
}

async fn an_application_signs_a_user_in_with_code_and_pkce_and_gets_honest_claims(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (code, verifier, nonce) = signed_in_code(&app, &rp).await;

    let tokens = rp.exchange(&app, code, verifier).await;
    let id_token = tokens.id_token().unwrap();
    // Signature checked against the JWKS by the RP library.
    let claims = id_token.claims(&rp.client.id_token_verifier(), &nonce).unwrap();
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, vec!["pwd"]);
    assert!(claims.auth_time().is_some());
    assert!(claims.auth_context_ref().is_none(), "a password alone reaches no advertised acr");
    assert_eq!(claims.email().unwrap().as_str(), "ada@example.com");
    assert!(claims.access_token_hash().is_some());

    // The access token is an RFC 9068 JWT carrying amr too.
    let at = tokens.access_token().secret();
    let header: serde_json::Value = serde_json::from_slice(&b64(at.split('.').next().unwrap())).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    let at_claims: serde_json::Value = serde_json::from_slice(&b64(at.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(at_claims["amr"], serde_json::json!(["pwd"]));
    assert!(at_claims["auth_time"].is_i64());

    let info: serde_json::Value = app.client.get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["sub"], claims.subject().as_str());

    // RP-initiated logout with id_token_hint: signed out and sent back with state.
    let hint = id_token.to_string();
    let logout = app.get(&format!("/end-session?id_token_hint={hint}&post_logout_redirect_uri={}&state=s1", urlenc(LOGGED_OUT))).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER, "{}", logout.body);
    assert_eq!(logout.location.as_deref(), Some("https://app.example/bye?state=s1"));
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "the session ended");
    // An unregistered post-logout URI is refused.
    let evil = app.get(&format!("/end-session?id_token_hint={hint}&post_logout_redirect_uri={}", urlenc("https://evil.example/"))).await;
    assert_eq!(evil.status, StatusCode::BAD_REQUEST);
    assert!(evil.location.is_none());
}

pub(crate) fn b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

pub(crate) fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn hybrid_code_id_token_with_form_post_is_delivered_as_an_auto_submitting_form(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::RS256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (url, state, nonce) = rp
        .client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_extra_param("response_mode", "form_post")
        .url();
    let html = app.browse_authorize(url.as_str(), "ada@example.com", PASSWORD).await;
    assert!(
        html.contains(&format!("action=\"{CALLBACK}\"")) || html.contains("action=\"https:&#x2f;&#x2f;app.example&#x2f;cb\""),
        "{html}"
    );
    assert!(html.contains("/static/form_post.js"));
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
        html[start..].split('"').next().unwrap().replace("&#x2f;", "/").replace("&#x3d;", "=").replace("&amp;", "&")
    };
    assert_eq!(field("state"), *state.secret());
    let code = field("code");
    let id_token = CoreIdToken::from_str(&field("id_token")).unwrap();
    let verifier = rp.client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(*id_token.signing_alg().unwrap(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let expected = AuthorizationCodeHash::from_code(
        &AuthorizationCode::new(code.clone()),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.code_hash(), Some(&expected), "c_hash binds the code to the ID token");
    let tokens = rp.client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&app.client).await.unwrap();
    assert!(tokens.id_token().unwrap().claims(&verifier, &nonce).is_ok());
}

pub(crate) async fn token_request(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (StatusCode, serde_json::Value) {
    let mut req = app.client.post(app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn a_reused_code_fails_and_revokes_what_the_first_use_issued(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let rp = app.rp(&id, Some(&secret)).await;
    let (code, verifier, _) = signed_in_code(&app, &rp).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.secret().as_str()),
    ];
    let (status, first) = token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.client.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap().status(), StatusCode::OK);

    let (status, second) = token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!((status, second["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let r = app.client.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the first use's access token is revoked");
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "and so is its refresh token");
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (code, verifier, nonce) = signed_in_code(&app, &rp).await;
    let tokens = rp.exchange(&app, code, verifier).await;
    let first_auth_time = tokens.id_token().unwrap().claims(&rp.client.id_token_verifier(), &nonce).unwrap().auth_time();
    let r1 = tokens.refresh_token().unwrap().clone();

    app.clock.advance(600);
    let refreshed = rp.client.exchange_refresh_token(&r1).unwrap().request_async(&app.client).await.unwrap();
    let r2 = refreshed.refresh_token().unwrap().clone();
    assert_ne!(r1.secret(), r2.secret(), "rotated");
    let claims = refreshed.id_token().unwrap().claims(&rp.client.id_token_verifier(), |_: Option<&Nonce>| Ok(())).unwrap();
    assert_eq!(claims.auth_time(), first_auth_time, "auth_time stays the time the user authenticated");

    // Presenting r1 again: refused, and r2 dies with it.
    assert!(rp.client.exchange_refresh_token(&r1).unwrap().request_async(&app.client).await.is_err());
    let (status, body) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r2.secret()),
            ("client_id", &id),
            ("client_secret", secret.as_deref().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let _ = RefreshToken::new(String::new());
}

async fn bad_token_requests_get_the_exact_oauth_error(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let rp = app.rp(&id, Some(&secret)).await;

    // Unregistered redirect URI: an error page, and no redirect at all.
    let page = app
        .get(&format!("/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid", urlenc("https://evil.example/cb")))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location.is_none());
    assert!(page.body.contains("not registered"));

    // prompt=none without a session.
    let fresh = crate::helpers::browser();
    let r = fresh
        .get(app.url(&format!(
            "/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s&prompt=none",
            urlenc(CALLBACK)
        )))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK));
    assert_eq!(query_param(&location, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("s"));

    // Wrong PKCE verifier.
    let (code, _, _) = signed_in_code(&app, &rp).await;
    let wrong = "x".repeat(43);
    let (status, body) = token_request(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &wrong)],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // Expired code.
    let (code, verifier, _) = signed_in_code(&app, &rp).await;
    app.clock.advance(61);
    let (status, body) = token_request(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some("the authorization code has expired"))
    );

    // Wrong client secret: 401 with a Basic challenge.
    let (code, verifier, _) = signed_in_code(&app, &rp).await;
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(&id, Some("not-the-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");

    // A public client without PKCE is sent back an error.
    let (public_id, _) = register(&app, true, SigningAlg::ES256).await;
    let r = app
        .client
        .get(app.url(&format!("/authorize?client_id={public_id}&redirect_uri={}&response_type=code&scope=openid", urlenc(CALLBACK))))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
    // plain PKCE is refused.
    let r = app.client.get(app.url(&format!("/authorize?client_id={public_id}&redirect_uri={}&response_type=code&scope=openid&code_challenge={}&code_challenge_method=plain", urlenc(CALLBACK), "a".repeat(43)))).send().await.unwrap();
    assert_eq!(query_param(r.headers()["location"].to_str().unwrap(), "error").as_deref(), Some("invalid_request"));

    // Unsupported grant type, malformed body.
    let (status, body) = token_request(&app, &[("grant_type", "password")], Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
    let r = app.client.post(app.url("/token")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");

    // A tampered ID token is rejected by the RP library.
    let (code, verifier, nonce) = signed_in_code(&app, &rp).await;
    let tokens = rp.exchange(&app, code, verifier).await;
    let good = tokens.id_token().unwrap().to_string();
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped: String = sig.chars().enumerate().map(|(i, c)| if i == 5 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
    let tampered = CoreIdToken::from_str(&format!("{head}.{flipped}")).unwrap();
    assert!(tampered.claims(&rp.client.id_token_verifier(), &nonce).is_err());

    // client_credentials (no scope registered for its own tokens: none asked), introspection and revocation.
    let (status, cc) = token_request(&app, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{cc}");
    let at = cc["access_token"].as_str().unwrap();
    let intro: serde_json::Value = app
        .client
        .post(app.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((intro["active"].as_bool(), intro["client_id"].as_str()), (Some(true), Some(id.as_str())));
    assert_eq!(
        app.client.post(app.url("/revoke")).basic_auth(&id, Some(&secret)).form(&[("token", at)]).send().await.unwrap().status(),
        StatusCode::OK
    );
    let intro: serde_json::Value = app
        .client
        .post(app.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro, serde_json::json!({ "active": false }));
}

pub(crate) async fn introspect(app: &TestApp, (id, secret): (&str, &str), token: &str) -> serde_json::Value {
    let r = app.client.post(app.url("/introspect")).basic_auth(id, Some(secret)).form(&[("token", token)]).send().await.unwrap();
    r.json().await.unwrap()
}

async fn deleting_a_client_revokes_its_access_tokens(app: TestApp) {
    let (doomed, doomed_secret) = register(&app, false, SigningAlg::ES256).await;
    let (watcher, watcher_secret) = register(&app, false, SigningAlg::ES256).await;
    let (doomed_secret, watcher_secret) = (doomed_secret.unwrap(), watcher_secret.unwrap());
    let (doomed, watcher) = ((doomed.as_str(), doomed_secret.as_str()), (watcher.as_str(), watcher_secret.as_str()));
    let form = [("grant_type", "client_credentials")];
    let (_, doomed_token) = token_request(&app, &form, Some(doomed)).await;
    let (_, watcher_token) = token_request(&app, &form, Some(watcher)).await;
    let (doomed_token, watcher_token) = (doomed_token["access_token"].as_str().unwrap(), watcher_token["access_token"].as_str().unwrap());
    assert_eq!(introspect(&app, doomed, doomed_token).await["active"], true);

    assert!(app.state.provider().client_admin().delete(doomed.0, &RequestOrigin::command_line(), app.clock_now()).await.unwrap());
    // The client is gone, so nobody may introspect its token any more: the store says it is revoked.
    let claims: serde_json::Value = serde_json::from_slice(&b64(doomed_token.split('.').nth(1).unwrap())).unwrap();
    let ids = portcullis_core::oauth::AccessTokenIds {
        jti: claims["jti"].as_str().unwrap(),
        grant_id: claims["grant_id"].as_str().unwrap(),
        client_id: claims["client_id"].as_str().unwrap(),
    };
    assert!(
        portcullis_core::oauth::OidcStore::access_token_revoked(app.state.accounts().store(), &ids).await.unwrap(),
        "its token died with it"
    );
    assert_eq!(introspect(&app, watcher, watcher_token).await["active"], true, "another client's token lives on");
}

async fn tokens_signed_before_a_key_rotation_still_validate(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (code, verifier, nonce) = signed_in_code(&app, &rp).await;
    let tokens = rp.exchange(&app, code, verifier).await;
    let before = tokens.id_token().unwrap().clone();

    let jwks =
        |v: serde_json::Value| v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let old: serde_json::Value = app.client.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks(old.clone()).len(), 2);
    app.state.provider().rotate_keys(app.clock_now()).await.unwrap();
    let new: serde_json::Value = app.client.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let (old, new) = (jwks(old), jwks(new));
    assert_eq!(new.len(), 4, "old and new keys are both published");
    assert!(old.iter().all(|k| new.contains(k)));

    // A fresh RP (re-reading the JWKS) still accepts the token signed before rotation...
    let fresh = app.rp(&id, secret.as_deref()).await;
    assert!(before.claims(&fresh.client.id_token_verifier(), &nonce).is_ok());
    // The new key is only published at first: tokens are still signed with the old one...
    let (code, verifier, nonce) = signed_in_code(&app, &fresh).await;
    let meanwhile = fresh.exchange(&app, code, verifier).await;
    let meanwhile = meanwhile.id_token().unwrap();
    assert!(meanwhile.claims(&fresh.client.id_token_verifier(), &nonce).is_ok());
    // ...and after two reload periods, new tokens are signed with the new key.
    app.clock.advance(2 * app.state.provider().key_reload_seconds());
    app.state.provider().reload_keys(app.clock_now()).await.unwrap();
    let (code, verifier, nonce) = signed_in_code(&app, &fresh).await;
    let after = fresh.exchange(&app, code, verifier).await;
    let after = after.id_token().unwrap();
    assert!(after.claims(&fresh.client.id_token_verifier(), &nonce).is_ok());
    let kid = |t: &CoreIdToken| {
        serde_json::from_slice::<serde_json::Value>(&b64(t.to_string().split('.').next().unwrap())).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kid(&before), kid(meanwhile));
    assert_ne!(kid(&before), kid(after));
    assert!(!old.contains(&kid(after)));

    // Once every token the old key signed has expired, the old key leaves the JWKS.
    app.clock.advance(3600 + 3 * app.state.provider().key_reload_seconds() + 61);
    app.state.provider().reload_keys(app.clock_now()).await.unwrap();
    let later: serde_json::Value = app.client.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks(later).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_asks_for_the_password_again_even_with_a_session() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    app.verified_user("ada@example.com").await;
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    signed_in_code(&app, &rp).await;
    // Signed in now; prompt=login must still show the sign-in form.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
        .set_pkce_challenge(challenge)
        .url();
    let r = app.get(url.as_str().strip_prefix(&app.base).unwrap()).await;
    let login = r.location.unwrap();
    assert!(login.starts_with("/login?") && login.contains("reauth=1"), "{login}");
    let page = app.get(&login).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("sign in again"));
    let back = app.browse_authorize(url.as_str(), "ada@example.com", PASSWORD).await;
    assert!(query_param(&back, "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_complete_and_truthful_and_the_cli_registers_clients() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let d: serde_json::Value = app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["issuer"], app.base.as_str());
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(d["response_types_supported"], serde_json::json!(["code", "code id_token"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(["ES256", "RS256"]));
    assert!(d["claims_supported"].as_array().unwrap().contains(&serde_json::json!("amr")));
    assert!(d["acr_values_supported"].is_array());
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let url = d[endpoint].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{endpoint}");
        let path = url.strip_prefix(&app.base).unwrap();
        let status = app.client.get(app.url(path)).send().await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{endpoint} is served");
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "client",
            "create",
            "--name",
            "Shop",
            "--redirect-uri",
            CALLBACK,
            "--redirect-uri",
            "https://app.example/cb2",
            "--mfa",
            "required",
            "--signing-alg",
            "RS256",
        ])
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .args(["--database-url", app.config.database_url.as_deref().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["client_id"].is_string() && created["client_secret"].is_string());
    assert_eq!((created["mfa"].as_str(), created["signing_alg"].as_str()), (Some("required"), Some("RS256")));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["client", "create", "--name", "Bad", "--redirect-uri", "http://app.example/cb"])
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .args(["--database-url", app.config.database_url.as_deref().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must use https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_fragments_max_age_revocation_and_logout_confirmation() {
    let Some(app) = spawn_app(Backend::Postgres).await.or(spawn_app(Backend::Sqlite).await) else { return };
    app.verified_user("ada@example.com").await;

    // A public client redeems its code with PKCE and no secret (token_endpoint_auth_method=none).
    let (public_id, _) = register(&app, true, SigningAlg::ES256).await;
    let rp = app.rp(&public_id, None).await;
    let (code, verifier, nonce) = signed_in_code(&app, &rp).await;
    let tokens = rp.exchange(&app, code, verifier).await;
    assert!(tokens.id_token().unwrap().claims(&rp.client.id_token_verifier(), &nonce).is_ok());
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    // A public client cannot introspect, and cannot use client_credentials.
    let r = app
        .client
        .post(app.url("/introspect"))
        .form(&[("token", refresh.as_str()), ("client_id", public_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = token_request(&app, &[("grant_type", "client_credentials"), ("client_id", &public_id)], None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
    // Revoking the refresh token ends its grant.
    let r =
        app.client.post(app.url("/revoke")).form(&[("token", refresh.as_str()), ("client_id", public_id.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) =
        token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &public_id)], None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let access = tokens.access_token().secret();
    assert_eq!(
        app.client.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "its access token too"
    );

    // Hybrid with the default fragment mode.
    let (id, secret) = register(&app, false, SigningAlg::ES256).await;
    let rp = app.rp(&id, secret.as_deref()).await;
    let (url, _, nonce) = rp
        .client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let back = app.browse_authorize(url.as_str(), "ada@example.com", PASSWORD).await;
    assert!(back.starts_with(&format!("{CALLBACK}#")), "{back}");
    let id_token = CoreIdToken::from_str(&query_param(&back, "id_token").unwrap()).unwrap();
    assert!(id_token.claims(&rp.client.id_token_verifier(), &nonce).is_ok());

    // max_age: a session older than max_age must sign in again; prompt=none then gets login_required.
    app.clock.advance(120);
    let base = format!("/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=m", urlenc(CALLBACK));
    let fresh_enough = app.get(&format!("{base}&max_age=600")).await;
    assert!(fresh_enough.location.unwrap().starts_with(CALLBACK));
    let too_old = app.get(&format!("{base}&max_age=60")).await;
    assert!(too_old.location.unwrap().contains("reauth=1"));
    let silent = app.get(&format!("{base}&max_age=60&prompt=none")).await;
    assert_eq!(query_param(&silent.location.unwrap(), "error").as_deref(), Some("login_required"));

    // Logout without id_token_hint asks first (it may be a forged link).
    let ask = app.get(&format!("/end-session?client_id={id}&post_logout_redirect_uri={}&state=z", urlenc(LOGGED_OUT))).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Sign out?"));
    assert_eq!(app.get("/account").await.status, StatusCode::OK, "still signed in until confirmed");
    let confirmed = app
        .submit(
            &format!("/end-session?client_id={id}&post_logout_redirect_uri={}&state=z", urlenc(LOGGED_OUT)),
            "/end-session",
            &[("client_id", &id), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "z")],
        )
        .await;
    assert_eq!(confirmed.location.as_deref(), Some("https://app.example/bye?state=z"));
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_and_deletes_clients_and_rotates_keys() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let run = |args: &[&str]| app.cli(args);
    let (id, _) = register(&app, true, SigningAlg::ES256).await;
    let list = run(&["client", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!((listed["client_id"].as_str(), listed["public"].as_bool()), (Some(id.as_str()), Some(true)));
    assert!(listed.get("client_secret").is_none());
    assert!(run(&["client", "delete", "--client-id", &id]).status.success());
    assert!(!run(&["client", "delete", "--client-id", &id]).status.success());
    assert!(run(&["client", "list"]).stdout.is_empty());

    let rotated = run(&["keys", "rotate"]);
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let kids: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(kids["rotated_in"].as_array().unwrap().len(), 2);
    app.state.provider().reload_keys(app.clock_now()).await.unwrap();
    let jwks: serde_json::Value = app.client.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);
}
