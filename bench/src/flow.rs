//! What one simulated user does: the full MFA sign-in of an application
//! (authorization code + PKCE, `acr_values=mfa`), password form, authenticator
//! code, callback, token exchange, ID-token signature check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::factors::totp::{code_at_step, step_at};
use portcullis_core::oauth::SigningAlg;
use portcullis_oidc::keys::VerifyingKey;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The registered redirect URI; never contacted (the code is read from the redirect).
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";

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
}

/// The server under test, its client and users.
pub struct Target {
    base: String,
    client_id: String,
    client_secret: String,
    users: Vec<FlowUser>,
    next_user: AtomicUsize,
    /// The published keys by `kid`, parsed once as a relying party would.
    keys: HashMap<String, VerifyingKey>,
    /// Keep-alive connections shared by every simulated browser: Portcullis
    /// speaks plain HTTP behind a TLS-terminating proxy, which keeps its
    /// upstream connections open; a browser's own connection ends at the proxy.
    http: reqwest::Client,
    password: String,
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

fn location(r: &reqwest::Response) -> Result<String, String> {
    if r.status() != reqwest::StatusCode::SEE_OTHER && r.status() != reqwest::StatusCode::FOUND {
        return Err(format!("expected a redirect, got {}", r.status()));
    }
    r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or_else(|| "redirect without Location".into())
}

/// One simulated browser: its own cookies (a fresh jar per sign-in) over the
/// shared connections.
struct Browser<'a> {
    http: &'a reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(http: &'a reqwest::Client) -> Self {
        Self { http, cookies: Vec::new() }
    }

    /// Sends `request` with the jar's cookies and keeps the ones the response sets.
    async fn send(&mut self, request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, String> {
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
        self.send(self.http.get(url), what).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)], what: &str) -> Result<reqwest::Response, String> {
        self.send(self.http.post(url).form(form), what).await
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

impl Target {
    /// Reads the server's published keys.
    pub async fn new(
        base: &str,
        (client_id, client_secret): (String, String),
        users: Vec<FlowUser>,
        password: &str,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
        let jwks: serde_json::Value =
            http.get(format!("{base}/jwks.json")).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in jwks["keys"].as_array().ok_or("the JWKS has no keys")? {
            let kid = jwk["kid"].as_str().ok_or("a JWK without kid")?;
            let alg = jwk["alg"].as_str().and_then(SigningAlg::parse).ok_or_else(|| format!("{kid}: unknown alg"))?;
            keys.insert(kid.to_owned(), VerifyingKey::from_public_jwk(alg, kid, jwk).map_err(|e| e.to_string())?);
        }
        Ok(Self {
            base: base.to_owned(),
            client_id,
            client_secret,
            users,
            next_user: AtomicUsize::new(0),
            keys,
            http,
            password: password.to_owned(),
        })
    }

    /// A user whose app code for the current step has not been used yet.
    fn pick_user(&self, step: i64) -> Result<&FlowUser, String> {
        for _ in 0..self.users.len() {
            let i = self.next_user.fetch_add(1, Ordering::Relaxed) % self.users.len();
            let u = &self.users[i];
            let last = u.last_step.load(Ordering::Relaxed);
            if last < step && u.last_step.compare_exchange(last, step, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return Ok(u);
            }
        }
        Err("every user already signed in during this 30-second step: seed more users".into())
    }

    /// One complete sign-in; returns the access token.
    async fn sign_in(&self) -> Result<String, String> {
        let step = step_at(SystemClock.now());
        let user = self.pick_user(step)?;
        let mut browser = Browser::new(&self.http);
        let verifier = random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let nonce = random_b64(16);
        let mut authorize = url::Url::parse(&format!("{}/authorize", self.base)).map_err(|e| e.to_string())?;
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "openid")
            .append_pair("state", &random_b64(12))
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("acr_values", "mfa");
        let login = location(&browser.get(authorize.as_str(), "authorize").await?)?;
        let page =
            browser.get(&format!("{}{login}", self.base), "login page").await?.text().await.map_err(|e| format!("login page: {e}"))?;
        let form = [
            ("email", user.email.as_str()),
            ("password", &self.password),
            ("next", &hidden(&page, "next")?),
            ("csrf_token", &hidden(&page, "csrf_token")?),
        ];
        let verify = location(&browser.post_form(&format!("{}/login", self.base), &form, "password").await?)?;
        let page =
            browser.get(&format!("{}{verify}", self.base), "second step").await?.text().await.map_err(|e| format!("second step: {e}"))?;
        let code = code_at_step(&user.totp_secret, step, 6);
        let form = [("method", "totp"), ("code", &code), ("next", &hidden(&page, "next")?), ("csrf_token", &hidden(&page, "csrf_token")?)];
        let resume = location(&browser.post_form(&format!("{}/login/verify", self.base), &form, "code").await?)?;
        let callback = location(&browser.get(&format!("{}{resume}", self.base), "resume").await?)?;
        let callback = url::Url::parse(&callback).map_err(|e| format!("callback {callback}: {e}"))?;
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in {callback}"))?;
        let err = |what: &'static str| move |e: reqwest::Error| format!("{what}: {e}");
        let tokens: serde_json::Value = self
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &verifier)])
            .send()
            .await
            .map_err(err("token"))?
            .json()
            .await
            .map_err(err("token"))?;
        let id_token = tokens["id_token"].as_str().ok_or_else(|| format!("no id_token in {tokens}"))?;
        let claims = self.check_id_token(id_token)?;
        if claims["nonce"] != nonce.as_str() || !claims["amr"].as_array().is_some_and(|a| a.iter().any(|v| v == "mfa")) {
            return Err(format!("unexpected claims {claims}"));
        }
        tokens["access_token"].as_str().map(str::to_owned).ok_or_else(|| "no access_token".into())
    }

    /// Verifies an ID token's signature (JWKS), issuer, audience and expiry.
    fn check_id_token(&self, token: &str) -> Result<serde_json::Value, String> {
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
        let audience_ok = claims["aud"] == self.client_id.as_str()
            || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == self.client_id.as_str()));
        let unexpired = claims["exp"].as_i64().is_some_and(|exp| exp > SystemClock.now());
        if claims["iss"] != self.base.as_str() || !audience_ok || !unexpired {
            return Err(format!("ID token: wrong issuer, audience or expiry in {claims}"));
        }
        Ok(claims)
    }

    /// The full MFA sign-in scenario.
    pub async fn full_sign_in(&self) -> Result<(), String> {
        self.sign_in().await.map(|_| ())
    }

    /// A user's access token (for the userinfo measurement).
    pub async fn access_token(&self) -> Result<String, String> {
        self.sign_in().await
    }

    /// The registered client.
    pub fn client(&self) -> (String, String) {
        (self.client_id.clone(), self.client_secret.clone())
    }
}
