//! The provider: its discovery document (OpenID Connect Discovery 1.0) and
//! its signing keys (the JWKS), cached, and the verification of the JWTs it
//! signs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, RwLock};

use crate::Error;

/// How the provider and its keys are fetched and trusted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// After a fetch of the JWKS, a token naming a key it does not hold is
    /// refused without fetching again for this long (one minute): a flood of
    /// forged `kid`s costs the provider one request a minute, not one each.
    pub jwks_refetch_interval: Duration,
    /// Keys are fetched again on the first use after this long (one hour),
    /// so a key the provider withdrew stops being trusted. While that fetch
    /// fails (or is under way) the keys held keep verifying, logged, and are
    /// fetched again at most once per `jwks_refetch_interval`…
    pub jwks_max_age: Duration,
    /// …for at most this long after the last successful fetch (one day);
    /// then tokens are refused with [`Error::Keys`] (a 503 from the layer).
    pub jwks_max_stale: Duration,
    /// Clock skew allowed on `exp`, `nbf`, `iat` and `auth_time` (60 seconds).
    pub leeway: Duration,
    /// The HTTP client for discovery, the JWKS and the token endpoint; one
    /// without redirects and with a 10-second timeout by default.
    pub http: Option<reqwest::Client>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jwks_refetch_interval: Duration::from_secs(60),
            jwks_max_age: Duration::from_secs(3600),
            jwks_max_stale: Duration::from_secs(86_400),
            leeway: Duration::from_secs(60),
            http: None,
        }
    }
}

impl Options {
    /// Sets [`Options::jwks_refetch_interval`].
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// Sets [`Options::jwks_max_age`].
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age;
        self
    }

    /// Sets [`Options::jwks_max_stale`].
    pub fn jwks_max_stale(mut self, stale: Duration) -> Self {
        self.jwks_max_stale = stale;
        self
    }

    /// Sets [`Options::leeway`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the HTTP client ([`Options::http`]).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }
}

/// What of the provider's discovery document this crate uses.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer identifier; equal to the URL discovery was asked of.
    pub issuer: String,
    /// Where browsers are sent to sign in.
    pub authorization_endpoint: String,
    /// Where authorization codes are exchanged.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// RP-initiated logout, when the provider offers it.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// Whether authorization responses carry `iss` (RFC 9207); when they
    /// do, a response without it is refused (§2.4).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// One signing key of the provider, parsed once.
struct SigningKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// The keys held, and when they were fetched and last asked for.
struct KeySet {
    keys: HashMap<String, Arc<SigningKey>>,
    fetched_at: Instant,
    attempted_at: Instant,
}

/// An OpenID provider, discovered once; cheap to clone (shared cache).
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: ProviderMetadata,
    /// `metadata.authorization_endpoint`, parsed once at discovery.
    authorization_endpoint: url::Url,
    http: reqwest::Client,
    options: Options,
    keys: RwLock<KeySet>,
    /// One fetch at a time: concurrent requests with a new `kid` share it.
    fetching: Mutex<()>,
}

/// The JOSE `typ` a token must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenType {
    /// RFC 9068 §4: `at+jwt` (or `application/at+jwt`), required.
    Access,
    /// An ID token: `JWT` or no `typ`; never `at+jwt`, so an access token
    /// cannot be passed off as an ID token (RFC 8725 §3.11).
    Id,
}

impl Issuer {
    /// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS.
    ///
    /// The document's `issuer` must equal `issuer` exactly (Discovery §4.3),
    /// else tokens from another provider could be accepted.
    pub async fn discover(issuer: &str) -> Result<Self, Error> {
        Self::discover_with(issuer, Options::default()).await
    }

    /// [`Issuer::discover`] with other [`Options`].
    pub async fn discover_with(issuer: &str, options: Options) -> Result<Self, Error> {
        let http = match &options.http {
            Some(c) => c.clone(),
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Discovery(e.to_string()))?,
        };
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let metadata: ProviderMetadata = fetch_json(&http, &url).await.map_err(Error::Discovery)?;
        if metadata.issuer != issuer {
            return Err(Error::Discovery(format!("the provider at {url} names itself {:?}, not {issuer:?}", metadata.issuer)));
        }
        let authorization_endpoint = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| Error::Discovery(format!("authorization_endpoint {:?}: {e}", metadata.authorization_endpoint)))?;
        let keys = fetch_keys(&http, &metadata.jwks_uri).await.map_err(Error::Keys)?;
        let now = Instant::now();
        let keys = RwLock::new(KeySet { keys, fetched_at: now, attempted_at: now });
        Ok(Self { inner: Arc::new(Inner { metadata, authorization_endpoint, http, options, keys, fetching: Mutex::new(()) }) })
    }

    /// The discovery document.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.metadata.issuer
    }

    /// Where browsers are sent to sign in.
    pub(crate) fn authorization_endpoint(&self) -> &url::Url {
        &self.inner.authorization_endpoint
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn leeway(&self) -> Duration {
        self.inner.options.leeway
    }

    /// Verifies a JWT of this issuer for `audience`: signature with the
    /// key its `kid` names (the algorithm is the key's, never the header's:
    /// RFC 8725 §3.1), `typ`, `iss`, `aud`, `exp`, `nbf`; returns its claims.
    pub(crate) async fn verify<T: DeserializeOwned>(&self, token: &str, typ: TokenType, audience: &str) -> Result<T, Error> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken("the token is not a JWT".into()))?;
        let declared = header.typ.as_deref().map(|t| t.to_ascii_lowercase());
        let declared = declared.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        let typ_ok = match typ {
            TokenType::Access => declared == Some("at+jwt"),
            TokenType::Id => matches!(declared, None | Some("jwt")),
        };
        if !typ_ok {
            return Err(Error::InvalidToken(match typ {
                TokenType::Access => "the token is not an access token (typ at+jwt)".into(),
                TokenType::Id => "the token is not an ID token".into(),
            }));
        }
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions this crate does not understand.
            return Err(Error::InvalidToken("the token requires header extensions this application does not understand".into()));
        }
        let kid = header.kid.ok_or_else(|| Error::InvalidToken("the token names no key (kid)".into()))?;
        let key = self.key(&kid).await?;
        if header.alg != key.alg {
            return Err(Error::InvalidToken("the token's algorithm is not its key's".into()));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[self.issuer()]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway().as_secs();
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation).map(|t| t.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Error::InvalidToken(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
                ErrorKind::InvalidSignature => "the token's signature is not the issuer's".into(),
                ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
                ErrorKind::InvalidAudience => "the token is for another audience".into(),
                ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
                _ => "the token is malformed".into(),
            })
        })?;
        // jsonwebtoken checks neither: a token issued, or a sign-in made, in
        // the future would pass any `max_age`.
        let latest = crate::unix_now().saturating_add(i64::try_from(self.leeway().as_secs()).unwrap_or(i64::MAX));
        for claim in ["iat", "auth_time"] {
            if claims.get(claim).and_then(serde_json::Value::as_i64).is_some_and(|t| t > latest) {
                return Err(Error::InvalidToken(format!("the token's {claim} is in the future")));
            }
        }
        serde_json::from_value(claims).map_err(|e| Error::InvalidToken(format!("the token's claims are malformed: {e}")))
    }

    /// The key `kid`: from the cache, or after one fetch of the JWKS when the
    /// cache is old or lacks it and the last attempt is long enough ago.
    /// Only one fetch runs at a time, and a request whose key is held never
    /// waits for it.
    async fn key(&self, kid: &str) -> Result<Arc<SigningKey>, Error> {
        let options = &self.inner.options;
        let due = |set: &KeySet| {
            set.attempted_at.elapsed() >= options.jwks_refetch_interval
                && (set.fetched_at.elapsed() >= options.jwks_max_age || !set.keys.contains_key(kid))
        };
        {
            let set = self.inner.keys.read().await;
            if !due(&set) {
                return self.held(&set, kid);
            }
        }
        let _one_fetch = match self.inner.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                {
                    let set = self.inner.keys.read().await;
                    if set.keys.contains_key(kid) {
                        return self.held(&set, kid);
                    }
                }
                self.inner.fetching.lock().await
            }
        };
        {
            // Fetched while this request waited.
            let set = self.inner.keys.read().await;
            if !due(&set) {
                return self.held(&set, kid);
            }
        }
        let fetched = fetch_keys(&self.inner.http, &self.inner.metadata.jwks_uri).await;
        let mut set = self.inner.keys.write().await;
        let now = Instant::now();
        set.attempted_at = now;
        match fetched {
            Ok(keys) => {
                set.keys = keys;
                set.fetched_at = now;
            }
            Err(why) => {
                tracing::warn!(jwks_uri = %self.inner.metadata.jwks_uri, %why, "the issuer's keys could not be fetched again; using the keys held");
            }
        }
        self.held(&set, kid)
    }

    /// `kid` of the keys held, unless they are older than `jwks_max_stale`.
    fn held(&self, set: &KeySet, kid: &str) -> Result<Arc<SigningKey>, Error> {
        if set.fetched_at.elapsed() >= self.inner.options.jwks_max_stale {
            return Err(Error::Keys("the issuer's keys could not be fetched for too long".into()));
        }
        set.keys.get(kid).cloned().ok_or_else(|| Error::InvalidToken("the token is signed with a key the issuer does not publish".into()))
    }
}

async fn fetch_json<T: DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, String> {
    let response = http.get(url).header("accept", "application/json").send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

/// The signing keys of a JWKS: with a `kid`, for signatures, of an
/// asymmetric algorithm on SHA-256 (ES256, RS256, PS256: the `at_hash` this
/// crate checks is SHA-256's). Others are skipped, not fatal: a provider may
/// publish more.
async fn fetch_keys(http: &reqwest::Client, url: &str) -> Result<HashMap<String, Arc<SigningKey>>, String> {
    let set: JwkSet = fetch_json(http, url).await?;
    let mut keys = HashMap::new();
    for jwk in set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            continue;
        }
        let Some(alg) = jwk.common.key_algorithm.and_then(|a| Algorithm::try_from(a).ok()) else { continue };
        if !matches!(alg, Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256) {
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(SigningKey { alg, key }));
            }
            Err(e) => tracing::warn!(%kid, error = %e, "a published key is unusable; skipped"),
        }
    }
    if keys.is_empty() {
        return Err(format!("{url}: no signing key"));
    }
    Ok(keys)
}
