//! Dynamic client registration (RFC 7591) and its management (RFC 7592):
//! off by default, by single-use initial access token, or open and throttled.

use portcullis_core::audit::AuditKind;
use reqwest::StatusCode;
use serde_json::{Value, json};

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope};

use crate::helpers::{Backend, PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::oidc::{CALLBACK, RelyingParty, query_param, token_request, urlenc};
use portcullis_core::oauth::OidcStore;

/// An authorization request of `rp` (email, offline access, PKCE; `silent`: `prompt=none`).
fn authorization(rp: &RelyingParty, silent: bool) -> (String, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge);
    if silent {
        request = request.add_prompt(openidconnect::core::CoreAuthPrompt::None);
    }
    (request.url().0.to_string(), verifier)
}

const TOKEN_MODE: [(&str, &str); 1] = [("PORTCULLIS_REGISTRATION__MODE", "token")];

impl TestApp {
    /// POST /register with `body`, and `bearer` as the initial access token.
    async fn register_client(&self, bearer: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url("/register")).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A fresh initial access token from the command line.
    fn initial_access_token(&self) -> String {
        let out = self.cli_with_env(&TOKEN_MODE, &["client", "registration-token"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed["expires_in"], 86_400);
        printed["initial_access_token"].as_str().unwrap().to_owned()
    }

    /// RFC 7592 management of a registration: `method` on its URI with `token`.
    async fn manage(&self, method: reqwest::Method, uri: &str, token: Option<&str>, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, uri);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn metadata(redirect: &str) -> Value {
    named(redirect, "Registered app")
}

fn named(redirect: &str, name: &str) -> Value {
    json!({ "redirect_uris": [redirect], "client_name": name, "token_endpoint_auth_method": "client_secret_basic", "unknown_field": 1 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_off_by_default() {
    let Some(app) = spawn_app(Backend::Sqlite).await else { return };
    let discovery: Value = app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(discovery.get("registration_endpoint").is_none(), "{discovery}");
    let (status, body) = app.register_client(None, &metadata(CALLBACK)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let out = app.cli(&["client", "registration-token"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("mode = \"token\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registers_with_an_initial_access_token_and_manages_its_registration_sqlite() {
    a_client_registers_with_an_initial_access_token_and_manages_its_registration(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registers_with_an_initial_access_token_and_manages_its_registration_postgres() {
    a_client_registers_with_an_initial_access_token_and_manages_its_registration(Backend::Postgres).await;
}

async fn a_client_registers_with_an_initial_access_token_and_manages_its_registration(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.registration.mode = "token".into()).await else { return };
    let discovery: Value = app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["registration_endpoint"], format!("{}/register", app.base));

    // No token, a forged one: 401.
    let (status, body) = app.register_client(None, &metadata(CALLBACK)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "{body}");
    assert_eq!(app.register_client(Some("forged"), &metadata(CALLBACK)).await.0, StatusCode::UNAUTHORIZED);

    // Bad metadata is refused with RFC 7591's codes, and does not spend the token.
    let token = app.initial_access_token();
    for (bad, code) in [
        (metadata("http://evil.example/cb"), "invalid_redirect_uri"),
        (metadata("javascript:alert(1)"), "invalid_redirect_uri"),
        (metadata("https://app.example/cb#fragment"), "invalid_redirect_uri"),
        (json!({ "client_name": "no redirect" }), "invalid_redirect_uri"),
        (json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt" }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [CALLBACK], "grant_types": ["client_credentials"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": [CALLBACK], "grant_types": ["password"] }), "invalid_client_metadata"),
        (json!({ "redirect_uris": "not a list" }), "invalid_client_metadata"),
    ] {
        let (status, body) = app.register_client(Some(&token), &bad).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{bad}: {body}");
    }
    let plain = app.client.post(app.url("/register")).bearer_auth(&token).body(metadata(CALLBACK).to_string()).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST, "not application/json");

    // A good registration: 201, credentials, and the token is spent.
    let (status, registered) = app.register_client(Some(&token), &metadata(CALLBACK)).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let management = registered["registration_access_token"].as_str().unwrap().to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, format!("{}/register/{id}", app.base));
    assert_eq!(registered["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(registered["client_secret_expires_at"], 0);
    assert_eq!(app.register_client(Some(&token), &named(CALLBACK, "Another app")).await.0, StatusCode::UNAUTHORIZED, "single use");
    // A second client cannot take a name in use (in any case) to pass for the first; the token is kept.
    let token = app.initial_access_token();
    let (status, body) = app.register_client(Some(&token), &named(CALLBACK, "registered APP")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")), "{body}");

    // One token, five registrations at once: exactly one succeeds.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..5 {
        let (client, url, token) = (app.client.clone(), app.url("/register"), token.clone());
        attempts.spawn(async move {
            client.post(url).bearer_auth(token).json(&named(CALLBACK, &format!("Racer {i}"))).send().await.unwrap().status()
        });
    }
    let statuses = attempts.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");

    // An expired token is refused (the command line runs on the real clock; the server's is moved a day and an hour on).
    let other_client = second_registration(&app).await;
    let stale = app.initial_access_token();
    app.clock.advance(86_400 + 3_600);
    assert_eq!(app.register_client(Some(&stale), &named(CALLBACK, "Late app")).await.0, StatusCode::UNAUTHORIZED);

    // The registered client signs a user in once the user allowed it: asked first (never silently), then remembered.
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let rp = app.rp(&id, Some(&secret)).await;
    let (url, _) = authorization(&rp, true);
    let silent = app.get(url.strip_prefix(&app.base).unwrap()).await;
    assert_eq!(silent.status, StatusCode::BAD_REQUEST, "prompt=none cannot skip the question, and no redirect: {:?}", silent.location);
    // Nor does a malformed request of a client the user never allowed redirect anywhere (no open redirector).
    let bad_scope = format!("/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=email", urlenc(CALLBACK));
    let refused = app.get(&bad_scope).await;
    assert_eq!((refused.status, refused.location), (StatusCode::BAD_REQUEST, None), "{}", refused.body);
    let (url, verifier) = authorization(&rp, false);
    let asked = app.browse_authorize(&url, "ada@example.com", PASSWORD).await;
    assert!(asked.contains("Allow Registered app?") && asked.contains("registered itself") && asked.contains("app.example"), "{asked}");
    let request = crate::mfa::hidden(&asked, "request");
    let allowed = app.post("/authorize/consent", &[("request", &request), ("decision", "allow")], &asked).await;
    let back = allowed.location.unwrap_or_else(|| panic!("{}", allowed.body));
    let code = query_param(&back, "code").unwrap();
    let replayed = app.post("/authorize/consent", &[("request", &request), ("decision", "allow")], &asked).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST, "the request was answered once");
    let (url, _) = authorization(&rp, true);
    let remembered = app.browse_authorize(&url, "ada@example.com", PASSWORD).await;
    assert!(query_param(&remembered, "code").is_some(), "allowed once, not asked again: {remembered}");
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", verifier.secret())];
    let (status, tokens) = token_request(&app, &form, Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (access, refresh) = (tokens["access_token"].as_str().unwrap().to_owned(), tokens["refresh_token"].as_str().unwrap().to_owned());

    // It has no tokens of its own.
    let (status, body) = token_request(&app, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")), "{body}");

    // Removing its access forgets the answer: the next request asks again, and "Deny" tells the application so.
    let security = app.get("/account/security").await;
    assert!(security.body.contains("Registered app"), "{}", security.body);
    assert_eq!(app.post("/account/security/apps/remove", &[("id", &id)], &security.body).await.status, StatusCode::OK);
    let (url, _) = authorization(&rp, false);
    let asked = app.browse_authorize(&url, "ada@example.com", PASSWORD).await;
    let request = crate::mfa::hidden(&asked, "request");
    let denied = app.post("/authorize/consent", &[("request", &request), ("decision", "deny")], &asked).await;
    assert_eq!(query_param(&denied.location.unwrap(), "error").as_deref(), Some("access_denied"));
    assert_eq!(app.get(&format!("/authorize/resume?request={request}")).await.status, StatusCode::BAD_REQUEST, "denied is ended");
    let (status, _) = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], Some((&id, &secret))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the removed access's refresh token is dead");

    // RFC 7592 read: only with its own registration access token.
    let (status, read) = app.manage(reqwest::Method::GET, &uri, Some(&management), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["redirect_uris"], json!([CALLBACK]));
    assert!(read.get("client_secret").is_none() && read.get("registration_access_token").is_none(), "secrets are shown once");
    for (target, token) in [
        (&uri, None),
        (&uri, Some("forged")),
        (&uri, Some(other_client.as_str())),
        (&format!("{}/register/nobody", app.base), Some(management.as_str())),
    ] {
        assert_eq!(app.manage(reqwest::Method::GET, target, token, None).await.0, StatusCode::UNAUTHORIZED, "{target} {token:?}");
    }

    // Allowed again; then moving its redirect URIs makes every user be asked again.
    let (url, _) = authorization(&rp, false);
    let asked = app.browse_authorize(&url, "ada@example.com", PASSWORD).await;
    let request = crate::mfa::hidden(&asked, "request");
    app.post("/authorize/consent", &[("request", &request), ("decision", "allow")], &asked).await;
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    let store = app.state.accounts().store();
    assert!(store.consented_scope(ada.id, &id).await.unwrap().is_some());

    // Update: replaces the name and the redirect URIs; the client id must match and the kind cannot change.
    let update = json!({ "client_id": id, "client_name": "Renamed app", "redirect_uris": [CALLBACK, "https://app.example/second"] });
    let (status, updated) = app.manage(reqwest::Method::PUT, &uri, Some(&management), Some(&update)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "Renamed app");
    assert_eq!(app.state.provider().client(&id).await.unwrap().unwrap().redirect_uris.len(), 2);
    assert!(store.consented_scope(ada.id, &id).await.unwrap().is_none(), "the answer named the old redirect URIs");
    let wrong_id = json!({ "client_id": "someone-else", "redirect_uris": [CALLBACK] });
    assert_eq!(app.manage(reqwest::Method::PUT, &uri, Some(&management), Some(&wrong_id)).await.0, StatusCode::BAD_REQUEST);
    let to_public = json!({ "client_id": id, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" });
    assert_eq!(app.manage(reqwest::Method::PUT, &uri, Some(&management), Some(&to_public)).await.0, StatusCode::BAD_REQUEST);
    let bad_uri = json!({ "client_id": id, "redirect_uris": ["http://evil.example/cb"] });
    assert_eq!(app.manage(reqwest::Method::PUT, &uri, Some(&management), Some(&bad_uri)).await.0, StatusCode::BAD_REQUEST);

    // Delete: 204, the client is gone and so are its tokens.
    assert_eq!(app.manage(reqwest::Method::DELETE, &uri, Some(&management), None).await.0, StatusCode::NO_CONTENT);
    assert!(app.state.provider().client(&id).await.unwrap().is_none());
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap().status();
    assert_eq!(userinfo, StatusCode::UNAUTHORIZED);
    assert_eq!(app.manage(reqwest::Method::GET, &uri, Some(&management), None).await.0, StatusCode::UNAUTHORIZED);
    let actions: Vec<String> = app
        .audit(AuditKind::ClientChanged)
        .await
        .iter()
        .filter(|e| e.client_id.as_deref() == Some(&id))
        .map(|e| e.detail["action"].to_string())
        .collect();
    assert_eq!(actions, ["\"deleted\"", "\"renamed\"", "\"redirect_uris_changed\"", "\"registered\""], "newest first");
}

/// The registration access token of a second client registered with its own initial token.
async fn second_registration(app: &TestApp) -> String {
    let token = app.initial_access_token();
    let (status, body) = app.register_client(Some(&token), &named(CALLBACK, "Second app")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["registration_access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_registration_needs_no_token_and_is_throttled_per_address() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.registration.mode = "open".into();
        c.registration.policy.mfa = portcullis_core::oauth::MfaPolicy::Required;
    })
    .await
    else {
        return;
    };
    let public = json!({ "redirect_uris": ["com.example.app:/callback"], "token_endpoint_auth_method": "none" });
    let (status, body) = app.register_client(None, &public).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("client_secret").is_none(), "a public client gets no secret");
    let client = app.state.provider().client(body["client_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert!(client.is_public());
    assert_eq!(client.policy.mfa, portcullis_core::oauth::MfaPolicy::Required, "the configured default policy");
    assert!(client.service_scopes.is_empty());
    let mut last = StatusCode::CREATED;
    for _ in 0..3 {
        last = app.register_client(None, &public).await.0;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "3 a minute per address");
}

/// A self-registered client's post-logout address is anyone's (in open
/// registration, a phishing page's): `/end-session` follows it only for a
/// signed-in user who allowed that client, or it would be an open
/// redirector (RFC 9700 §4.11.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_session_follows_a_self_registered_clients_address_only_for_a_user_who_allowed_it() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.registration.mode = "open".into()).await else { return };
    let bye = "https://app.example/bye";
    let body = json!({
        "redirect_uris": [CALLBACK], "post_logout_redirect_uris": [bye], "client_name": "Registered app",
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let (status, registered) = app.register_client(None, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let (id, secret) = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
    let logout = format!("/end-session?client_id={id}&post_logout_redirect_uri={}&state=s1", urlenc(bye));
    let fields = [("client_id", id), ("post_logout_redirect_uri", bye), ("state", "s1")];

    let anonymous = app.get(&logout).await;
    assert_eq!((anonymous.status, anonymous.location.as_deref()), (StatusCode::OK, None), "nobody signed in: not sent there");

    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let asked = app.get(&logout).await;
    let confirmed = app.post("/end-session", &fields, &asked.body).await;
    assert_eq!(
        (confirmed.status, confirmed.location.as_deref()),
        (StatusCode::OK, None),
        "a user who never allowed it: signed out, not sent there"
    );
    assert_eq!(app.get("/account").await.status, StatusCode::SEE_OTHER, "signed out all the same");

    let rp = app.rp(id, Some(secret)).await;
    let (url, _) = authorization(&rp, false);
    let consent = app.browse_authorize(&url, "ada@example.com", PASSWORD).await;
    let request = crate::mfa::hidden(&consent, "request");
    let allowed = app.post("/authorize/consent", &[("request", &request), ("decision", "allow")], &consent).await;
    assert!(allowed.location.is_some_and(|l| l.starts_with(CALLBACK)));
    let asked = app.get(&logout).await;
    let confirmed = app.post("/end-session", &fields, &asked.body).await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some("https://app.example/bye?state=s1"),
        "after allowing it, the application gets its user back"
    );
}
