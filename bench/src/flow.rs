//! What simulated users do, as an application's users would: an
//! authorization request (code + PKCE), whatever the provider asks in the
//! browser, the callback, the token exchange and the ID-token check. The
//! relying-party half ([`Rp`]) is the same for Portcullis and for the peer;
//! what happens in between is each provider's own.
//!
//! The flows: the full MFA sign-in (password, authenticator-app code), a
//! passwordless passkey sign-in (a software authenticator), and single
//! sign-on (a browser already signed in opens a second application).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::factors::totp::{code_at_step, step_at};
use portcullis_core::oauth::SigningAlg;
use portcullis_oidc::keys::VerifyingKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse};

use crate::load::Failure;

/// The registered redirect URI; never contacted (the code is read from the redirect).
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// An HTTP client for simulated browsers and relying parties: no redirects
/// followed, keep-alive connections shared by all (Portcullis speaks plain
/// HTTP behind a TLS-terminating proxy, which keeps its upstream connections
/// open; a browser's own connection ends at the proxy). `localhost` is
/// resolved to 127.0.0.1 only, where the servers listen.
pub fn http_client(issuer: &str) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(512);
    let url = url::Url::parse(issuer).map_err(|e| e.to_string())?;
    if let (Some("localhost"), Some(port)) = (url.host_str(), url.port()) {
        builder = builder.resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    builder.build().map_err(|e| e.to_string())
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The value of hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> Result<String, String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).ok_or_else(|| format!("no {name} field in the page"))? + marker.len();
    let value = html[start..].split('"').next().unwrap_or_default();
    Ok(value.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x3d;", "=").replace("&quot;", "\""))
}

/// A `503` is the server's overload refusal; anything else but a redirect is an error.
fn location(r: &reqwest::Response) -> Result<String, Failure> {
    if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        let secs = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
        return Err(Failure::Refused { retry_after: Duration::from_secs(secs) });
    }
    if r.status() != reqwest::StatusCode::SEE_OTHER && r.status() != reqwest::StatusCode::FOUND {
        return Err(format!("expected a redirect, got {}", r.status()).into());
    }
    r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or_else(|| Failure::from("redirect without Location"))
}

/// One simulated browser: its own cookies and its own address (sent as
/// `X-Forwarded-For`, as the proxy in front would; Portcullis trusts
/// 127.0.0.1 as that proxy) over the shared connections.
pub struct Browser {
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    address: String,
}

impl Browser {
    fn new(http: &reqwest::Client) -> Self {
        let mut a = [0u8; 3];
        rand::rng().fill_bytes(&mut a);
        Self { http: http.clone(), cookies: Vec::new(), address: format!("10.{}.{}.{}", a[0], a[1], a[2]) }
    }

    /// Sends `request` with the jar's cookies and keeps the ones the response sets.
    async fn send(&mut self, request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, String> {
        let request = request.header("x-forwarded-for", &self.address);
        let request = match self.cookie_header() {
            Some(cookies) => request.header(reqwest::header::COOKIE, cookies),
            None => request,
        };
        let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            self.absorb(set.to_str().map_err(|e| format!("{what}: Set-Cookie: {e}"))?);
        }
        Ok(response)
    }

    async fn get(&mut self, url: &str, what: &str) -> Result<reqwest::Response, String> {
        let request = self.http.get(url);
        self.send(request, what).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)], what: &str) -> Result<reqwest::Response, String> {
        let request = self.http.post(url).form(form);
        self.send(request, what).await
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "))
    }

    /// One `Set-Cookie` (RFC 6265 §5.2): `Max-Age=0` deletes.
    fn absorb(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { return };
        let deleted = parts.any(|a| a.eq_ignore_ascii_case("max-age=0"));
        self.cookies.retain(|(n, _)| n != name);
        if !deleted {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }
}

/// Where following a provider's redirects ends.
enum Landing {
    /// A page of the provider: its path and body.
    Page { body: String },
    /// The application's callback, with the authorization code.
    Callback { code: String },
}

/// What a relying party keeps between the authorization request and the token exchange.
struct Pending {
    verifier: String,
    nonce: String,
}

/// A registered confidential client.
#[derive(Clone)]
pub struct ClientCredentials {
    /// `client_id`
    pub id: String,
    /// `client_secret`
    pub secret: String,
}

/// The relying-party half of a flow, against any OpenID provider found
/// through its discovery document.
pub struct Rp {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    /// The published keys by `kid`, parsed once as a relying party would.
    keys: HashMap<String, VerifyingKey>,
    http: reqwest::Client,
}

impl Rp {
    /// Reads `issuer`'s discovery document and JWKS.
    pub async fn discover(issuer: &str) -> Result<Self, String> {
        let http = http_client(issuer)?;
        let get = |url: String| {
            let http = http.clone();
            async move {
                let r = http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
                r.json::<serde_json::Value>().await.map_err(|e| format!("{url}: {e}"))
            }
        };
        let doc = get(format!("{issuer}/.well-known/openid-configuration")).await?;
        let url = |k: &str| doc[k].as_str().map(str::to_owned).ok_or_else(|| format!("{issuer}: discovery lacks {k}"));
        let jwks = get(url("jwks_uri")?).await?;
        let mut keys = HashMap::new();
        for jwk in jwks["keys"].as_array().ok_or("the JWKS has no keys")? {
            let kid = jwk["kid"].as_str().ok_or("a JWK without kid")?;
            let alg = jwk["alg"].as_str().and_then(SigningAlg::parse).ok_or_else(|| format!("{kid}: unknown alg"))?;
            keys.insert(kid.to_owned(), VerifyingKey::from_public_jwk(alg, kid, jwk).map_err(|e| e.to_string())?);
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: url("authorization_endpoint")?,
            token_endpoint: url("token_endpoint")?,
            keys,
            http,
        })
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') { format!("{}{location}", self.issuer) } else { location.to_owned() }
    }

    /// An authorization request (code + PKCE S256, a nonce).
    fn authorization_request(&self, client: &ClientCredentials, acr_values: Option<&str>) -> Result<(String, Pending), String> {
        let verifier = random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let nonce = random_b64(16);
        let mut url = url::Url::parse(&self.authorization_endpoint).map_err(|e| e.to_string())?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", CALLBACK)
                .append_pair("scope", "openid")
                .append_pair("state", &random_b64(12))
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(acr) = acr_values {
                q.append_pair("acr_values", acr);
            }
        }
        Ok((url.into(), Pending { verifier, nonce }))
    }

    /// Follows the provider's redirects from `url` to one of its pages or to the callback.
    async fn follow(&self, browser: &mut Browser, mut url: String) -> Result<Landing, Failure> {
        for _ in 0..8 {
            let r = browser.get(&url, "redirect").await?;
            if r.status().is_success() {
                return Ok(Landing::Page { body: r.text().await.map_err(|e| format!("{url}: {e}"))? });
            }
            let to = location(&r)?;
            if to.starts_with(CALLBACK) {
                let callback = url::Url::parse(&to).map_err(|e| format!("callback {to}: {e}"))?;
                let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
                return code.map(|code| Landing::Callback { code }).ok_or_else(|| format!("no code in {to}").into());
            }
            url = self.absolute(&to);
        }
        Err("more than 8 redirects".into())
    }

    /// The authorization request answered at once with the callback: no
    /// page, no interaction (a signed-in browser's single sign-on).
    async fn code_at_once(&self, browser: &mut Browser, url: String) -> Result<String, Failure> {
        let r = browser.get(&url, "authorize").await?;
        let to = location(&r)?;
        if !to.starts_with(CALLBACK) {
            return Err(format!("single sign-on did not answer with the callback at once but with {to}").into());
        }
        let callback = url::Url::parse(&to).map_err(|e| format!("callback {to}: {e}"))?;
        let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
        code.ok_or_else(|| format!("no code in {to}").into())
    }

    /// Follows redirects from `url`, expecting the callback.
    async fn follow_to_code(&self, browser: &mut Browser, url: String) -> Result<String, Failure> {
        match self.follow(browser, url).await? {
            Landing::Callback { code } => Ok(code),
            Landing::Page { body } => Err(format!("a page instead of the callback: {}", body.chars().take(300).collect::<String>()).into()),
        }
    }

    /// Follows redirects from `url`, expecting a page.
    async fn follow_to_page(&self, browser: &mut Browser, url: String) -> Result<String, Failure> {
        match self.follow(browser, url).await? {
            Landing::Page { body } => Ok(body),
            Landing::Callback { .. } => Err("the callback instead of a page".into()),
        }
    }

    /// The token exchange and the ID-token check; returns (claims, access token).
    async fn redeem(&self, client: &ClientCredentials, code: &str, pending: Pending) -> Result<(serde_json::Value, String), Failure> {
        let err = |what: &'static str| move |e: reqwest::Error| format!("{what}: {e}");
        let tokens: serde_json::Value = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK), ("code_verifier", &pending.verifier)])
            .send()
            .await
            .map_err(err("token"))?
            .json()
            .await
            .map_err(err("token"))?;
        let id_token = tokens["id_token"].as_str().ok_or_else(|| format!("no id_token in {tokens}"))?;
        let claims = self.check_id_token(id_token, client)?;
        if claims["nonce"] != pending.nonce.as_str() {
            return Err(format!("wrong nonce in {claims}").into());
        }
        let access_token = tokens["access_token"].as_str().ok_or("no access_token")?;
        Ok((claims, access_token.to_owned()))
    }

    /// Verifies an ID token's signature (JWKS), issuer, audience and expiry.
    fn check_id_token(&self, token: &str, client: &ClientCredentials) -> Result<serde_json::Value, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("ID token: not a JWS compact serialization".into());
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| format!("ID token: {e}"));
        let header: serde_json::Value = serde_json::from_slice(&decode(header)?).map_err(|e| format!("ID token header: {e}"))?;
        let kid = header["kid"].as_str().ok_or("ID token without kid")?;
        let key = self.keys.get(kid).ok_or_else(|| format!("kid {kid} not in the JWKS"))?;
        if header["alg"].as_str() != Some(key.alg.as_str()) {
            return Err(format!("ID token alg {} for a {} key", header["alg"], key.alg.as_str()));
        }
        let signed_len = token.len() - signature.len() - 1;
        if !key.verify(&token.as_bytes()[..signed_len], &decode(signature)?) {
            return Err("ID token: bad signature".into());
        }
        let claims: serde_json::Value = serde_json::from_slice(&decode(payload)?).map_err(|e| format!("ID token claims: {e}"))?;
        let audience_ok =
            claims["aud"] == client.id.as_str() || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == client.id.as_str()));
        let unexpired = claims["exp"].as_i64().is_some_and(|exp| exp > SystemClock.now());
        if claims["iss"] != self.issuer.as_str() || !audience_ok || !unexpired {
            return Err(format!("ID token: wrong issuer, audience or expiry in {claims}"));
        }
        Ok(claims)
    }

    /// A new browser (no cookies).
    pub fn browser(&self) -> Browser {
        Browser::new(&self.http)
    }

    /// Single sign-on: `browser` already has a session; `client` is an
    /// application it has not signed in to in this flow. Every claim in
    /// `amr_needed` must be in the ID token.
    pub async fn single_sign_on(&self, browser: &mut Browser, client: &ClientCredentials, amr_needed: &[&str]) -> Result<(), Failure> {
        let (url, pending) = self.authorization_request(client, None)?;
        let code = self.code_at_once(browser, url).await?;
        let (claims, _) = self.redeem(client, &code, pending).await?;
        check_amr(&claims, amr_needed)
    }
}

fn check_amr(claims: &serde_json::Value, needed: &[&str]) -> Result<(), Failure> {
    let amr = claims["amr"].as_array();
    if needed.iter().all(|n| amr.is_some_and(|a| a.iter().any(|v| v == n))) {
        Ok(())
    } else {
        Err(format!("amr lacks one of {needed:?}: {claims}").into())
    }
}

/// A seeded user.
pub struct FlowUser {
    email: String,
    totp_secret: Vec<u8>,
    /// The last time step whose code was used (the server refuses a step twice).
    last_step: AtomicI64,
}

impl FlowUser {
    /// A user with its app's secret.
    pub fn new(email: String, totp_secret: Vec<u8>) -> Self {
        Self { email, totp_secret, last_step: AtomicI64::new(-1) }
    }

    /// Takes this time step's code for this user, unless it was used already.
    fn claim_step(&self, step: i64) -> bool {
        let last = self.last_step.load(Ordering::Relaxed);
        last < step && self.last_step.compare_exchange(last, step, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
}

/// A software passkey and what it learnt at registration.
struct SoftKey {
    soft: SoftPasskey,
    origin: url::Url,
    user_handle: Vec<u8>,
    credential_id: Vec<u8>,
}

impl SoftKey {
    fn new(origin: url::Url) -> Self {
        // `true`: claims user verification, as a passkey unlocked by PIN or biometric would.
        Self { soft: SoftPasskey::new(true), origin, user_handle: Vec::new(), credential_id: Vec::new() }
    }

    fn create(&mut self, options: serde_json::Value) -> Result<String, String> {
        let mut options: CreationChallengeResponse = serde_json::from_value(options).map_err(|e| format!("creation options: {e}"))?;
        self.user_handle = options.public_key.user.id.clone();
        // The software key stores no resident keys; the server cannot tell.
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = false;
        }
        let reg = self.soft.do_registration(self.origin.clone(), options).map_err(|e| format!("soft passkey: {e:?}"))?;
        self.credential_id = reg.raw_id.clone();
        serde_json::to_string(&reg).map_err(|e| e.to_string())
    }

    fn assert(&mut self, mut options: serde_json::Value) -> Result<String, String> {
        // A discoverable request names no credential; the software key needs one to find its key.
        options["publicKey"]["allowCredentials"] =
            serde_json::json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(&self.credential_id) }]);
        let options: RequestChallengeResponse = serde_json::from_value(options).map_err(|e| format!("request options: {e}"))?;
        let mut answer: PublicKeyCredential =
            self.soft.do_authentication(self.origin.clone(), options).map_err(|e| format!("soft passkey: {e:?}"))?;
        answer.response.user_handle = Some(self.user_handle.clone());
        serde_json::to_string(&answer).map_err(|e| e.to_string())
    }
}

/// A user with a passkey; one flow at a time uses it (its signature counter
/// must reach the server in order).
struct PasskeyUser {
    key: tokio::sync::Mutex<SoftKey>,
}

/// Portcullis with its clients and users.
pub struct Target {
    rp: Rp,
    /// The application users sign in to.
    client: ClientCredentials,
    /// The second application, for single sign-on.
    sso_client: ClientCredentials,
    users: Vec<FlowUser>,
    next_user: AtomicUsize,
    passkey_users: Vec<PasskeyUser>,
    next_passkey_user: AtomicUsize,
    password: String,
}

impl Target {
    /// Reads the server's discovery document and keys.
    pub async fn new(
        issuer: &str,
        client: ClientCredentials,
        sso_client: ClientCredentials,
        users: Vec<FlowUser>,
        password: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            rp: Rp::discover(issuer).await?,
            client,
            sso_client,
            users,
            next_user: AtomicUsize::new(0),
            passkey_users: Vec::new(),
            next_passkey_user: AtomicUsize::new(0),
            password: password.to_owned(),
        })
    }

    /// A user whose app code for the current step has not been used yet.
    fn pick_user(&self, step: i64) -> Result<&FlowUser, String> {
        for _ in 0..self.users.len() {
            let u = &self.users[self.next_user.fetch_add(1, Ordering::Relaxed) % self.users.len()];
            if u.claim_step(step) {
                return Ok(u);
            }
        }
        Err("every user already signed in during this 30-second step: seed more users".into())
    }

    /// One complete MFA sign-in of `user` (or the next free one) in a new
    /// browser; returns the browser (signed in) and the access token.
    async fn sign_in(&self, user: Option<&FlowUser>) -> Result<(Browser, String), Failure> {
        let step = step_at(SystemClock.now());
        let user = match user {
            Some(u) if u.claim_step(step) => u,
            Some(_) => return Err("this user's code for this step is used".into()),
            None => self.pick_user(step)?,
        };
        let base = &self.rp.issuer;
        let mut browser = self.rp.browser();
        let (url, pending) = self.rp.authorization_request(&self.client, Some("mfa"))?;
        let page = self.rp.follow_to_page(&mut browser, url).await?;
        let form = [
            ("email", user.email.as_str()),
            ("password", &self.password),
            ("next", &hidden(&page, "next")?),
            ("csrf_token", &hidden(&page, "csrf_token")?),
        ];
        let verify = location(&browser.post_form(&format!("{base}/login"), &form, "password").await?)?;
        let page = self.rp.follow_to_page(&mut browser, self.rp.absolute(&verify)).await?;
        let code = code_at_step(&user.totp_secret, step, 6);
        let form = [("method", "totp"), ("code", &code), ("next", &hidden(&page, "next")?), ("csrf_token", &hidden(&page, "csrf_token")?)];
        let resume = location(&browser.post_form(&format!("{base}/login/verify"), &form, "code").await?)?;
        let code = self.rp.follow_to_code(&mut browser, self.rp.absolute(&resume)).await?;
        let (claims, access_token) = self.rp.redeem(&self.client, &code, pending).await?;
        check_amr(&claims, &["mfa"])?;
        Ok((browser, access_token))
    }

    /// The full MFA sign-in scenario.
    pub async fn full_sign_in(&self) -> Result<(), Failure> {
        self.sign_in(None).await.map(|_| ())
    }

    /// A user's access token (for the userinfo measurement).
    pub async fn access_token(&self) -> Result<String, String> {
        self.sign_in(None).await.map(|(_, token)| token).map_err(|e| format!("{e:?}"))
    }

    /// Gives the first `n` users a passkey each, through the security page
    /// (after a full sign-in, as a user would).
    pub async fn enroll_passkeys(&mut self, n: usize) -> Result<(), String> {
        let origin = url::Url::parse(&self.rp.issuer).map_err(|e| e.to_string())?;
        let base = self.rp.issuer.clone();
        let mut keys = Vec::with_capacity(n);
        for user in self.users.iter().take(n) {
            let (mut browser, _) = self.sign_in(Some(user)).await.map_err(|e| format!("{}: {e:?}", user.email))?;
            let page = browser.get(&format!("{base}/account/security"), "security page").await?.text().await.map_err(|e| e.to_string())?;
            let csrf = hidden(&page, "csrf_token")?;
            let r = browser
                .post_form(
                    &format!("{base}/account/security/webauthn/options"),
                    &[("kind", "passkey"), ("name", "Bench passkey"), ("csrf_token", &csrf)],
                    "passkey options",
                )
                .await?;
            let options: serde_json::Value = r.json().await.map_err(|e| format!("passkey options: {e}"))?;
            let ceremony = options["ceremony"].as_str().ok_or_else(|| format!("no ceremony in {options}"))?.to_owned();
            let mut key = SoftKey::new(origin.clone());
            let credential = key.create(options["options"].clone())?;
            let r = browser
                .post_form(
                    &format!("{base}/account/security/webauthn"),
                    &[("kind", "passkey"), ("ceremony", &ceremony), ("credential", &credential), ("csrf_token", &csrf)],
                    "passkey registration",
                )
                .await?;
            if !(r.status().is_success() || r.status().is_redirection()) {
                return Err(format!("passkey registration: {}", r.status()));
            }
            keys.push(PasskeyUser { key: tokio::sync::Mutex::new(key) });
        }
        self.passkey_users = keys;
        Ok(())
    }

    /// Passwordless passkey sign-in: authorization request, the sign-in
    /// page's passkey options, the assertion, the code, the tokens.
    pub async fn passkey_sign_in(&self) -> Result<(), Failure> {
        let n = self.passkey_users.len();
        let mut key = None;
        for _ in 0..n {
            let u = &self.passkey_users[self.next_passkey_user.fetch_add(1, Ordering::Relaxed) % n];
            if let Ok(k) = u.key.try_lock() {
                key = Some(k);
                break;
            }
        }
        let mut key = key.ok_or("every passkey is in use: enroll more")?;
        let base = &self.rp.issuer;
        let mut browser = self.rp.browser();
        let (url, pending) = self.rp.authorization_request(&self.client, None)?;
        let page = self.rp.follow_to_page(&mut browser, url).await?;
        let csrf = hidden(&page, "csrf_token")?;
        let r = browser.post_form(&format!("{base}/login/passkey/options"), &[("csrf_token", &csrf)], "passkey options").await?;
        let options: serde_json::Value = r.json().await.map_err(|e| format!("passkey options: {e}"))?;
        let ceremony = options["ceremony"].as_str().ok_or_else(|| format!("no ceremony in {options}"))?.to_owned();
        let credential = key.assert(options["options"].clone())?;
        let form = [("ceremony", ceremony.as_str()), ("credential", &credential), ("next", &hidden(&page, "next")?), ("csrf_token", &csrf)];
        let resume = location(&browser.post_form(&format!("{base}/login/passkey"), &form, "passkey").await?)?;
        drop(key);
        let code = self.rp.follow_to_code(&mut browser, self.rp.absolute(&resume)).await?;
        let (claims, _) = self.rp.redeem(&self.client, &code, pending).await?;
        check_amr(&claims, &["hwk", "mfa"])
    }

    /// The registered client.
    pub fn client(&self) -> (String, String) {
        (self.client.id.clone(), self.client.secret.clone())
    }
}

/// The peer provider's flows: its interaction logs the user in at once (no
/// password, no hashing), and it skips consent for its own clients, so its
/// side of each flow is only the protocol's steps.
pub struct PeerFlows {
    rp: Rp,
    client: ClientCredentials,
    sso_client: ClientCredentials,
}

impl PeerFlows {
    /// The peer's relying party and its two clients.
    pub async fn new(issuer: &str, client: ClientCredentials, sso_client: ClientCredentials) -> Result<Self, String> {
        Ok(Self { rp: Rp::discover(issuer).await?, client, sso_client })
    }

    /// A sign-in through the peer's interaction in a new browser; returns
    /// the browser and the access token.
    async fn sign_in(&self) -> Result<(Browser, String), Failure> {
        let mut browser = self.rp.browser();
        let (url, pending) = self.rp.authorization_request(&self.client, None)?;
        let code = self.rp.follow_to_code(&mut browser, url).await?;
        let (_, access_token) = self.rp.redeem(&self.client, &code, pending).await?;
        Ok((browser, access_token))
    }

    /// The sign-in scenario (set beside the passkey sign-in).
    pub async fn interactive_sign_in(&self) -> Result<(), Failure> {
        self.sign_in().await.map(|_| ())
    }

    /// A user's access token (for the userinfo measurement).
    pub async fn access_token(&self) -> Result<String, String> {
        self.sign_in().await.map(|(_, token)| token).map_err(|e| format!("{e:?}"))
    }
}

/// A provider whose signed-in browsers open a second application: the
/// single sign-on flow, measured the same way for Portcullis and the peer.
pub trait SingleSignOn: Send + Sync + 'static {
    /// A browser with a session (one sign-in).
    fn signed_in_browser(&self) -> impl std::future::Future<Output = Result<Browser, String>> + Send;
    /// Single sign-on to the second application from `browser`.
    fn single_sign_on(&self, browser: &mut Browser) -> impl std::future::Future<Output = Result<(), Failure>> + Send;
}

impl SingleSignOn for Target {
    /// A browser with an MFA session.
    async fn signed_in_browser(&self) -> Result<Browser, String> {
        self.sign_in(None).await.map(|(browser, _)| browser).map_err(|e| format!("{e:?}"))
    }

    /// The ID token must still say `mfa`: the session's.
    async fn single_sign_on(&self, browser: &mut Browser) -> Result<(), Failure> {
        self.rp.single_sign_on(browser, &self.sso_client, &["mfa"]).await
    }
}

impl SingleSignOn for PeerFlows {
    async fn signed_in_browser(&self) -> Result<Browser, String> {
        self.sign_in().await.map(|(browser, _)| browser).map_err(|e| format!("{e:?}"))
    }

    async fn single_sign_on(&self, browser: &mut Browser) -> Result<(), Failure> {
        self.rp.single_sign_on(browser, &self.sso_client, &[]).await
    }
}

/// Browsers with sessions, handed to one flow at a time.
pub struct BrowserPool(std::sync::Mutex<Vec<Browser>>);

impl BrowserPool {
    /// A pool of these browsers.
    pub fn new(browsers: Vec<Browser>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(browsers)))
    }

    /// Takes a browser (there is one per worker).
    pub fn take(&self) -> Result<Browser, Failure> {
        self.0.lock().map_err(|_| "pool poisoned")?.pop().ok_or_else(|| Failure::from("no browser left in the pool"))
    }

    /// Gives it back.
    pub fn put(&self, browser: Browser) {
        if let Ok(mut p) = self.0.lock() {
            p.push(browser);
        }
    }
}
