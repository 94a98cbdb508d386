//! What the browser-facing OIDC endpoints answer (discovery, keys,
//! authorization, logout) and the provider's state; the endpoints a client
//! calls with a credential or token are in `token_endpoint.rs`. Handlers
//! parse HTTP and call these.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use portcullis_core::account_store::AccountStore;
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{AuthorizationCode, Client, ClientPolicy, Grant, OidcStore, SigningAlg, acr_strength};
use portcullis_core::secrets::{SecretBox, random_token, token_digest};
use portcullis_core::session::{ACR_VALUES, SessionRecord};
use portcullis_core::sessions::SessionCheck;
use portcullis_core::sign_in::Demand;
use portcullis_core::user::User;
use serde_json::{Value, json};

use crate::clients::ClientAdmin;
use crate::keys::{self, KeyRing};
use crate::request::{AuthorizeFailure, AuthorizeParams, AuthorizeRequest, ReplyTo, ResponseType, SUPPORTED_SCOPES, validate};
use crate::tokens::{ACCESS_TOKEN_TYP, Expect, ID_TOKEN_TYP, half_hash, sign, verify};
use crate::{ErrorCode, OAuthError, OidcError};

/// Lifetimes of what the provider issues, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    /// Authorization codes.
    pub code: i64,
    /// Access tokens.
    pub access_token: i64,
    /// ID tokens.
    pub id_token: i64,
    /// Refresh tokens (sliding: each rotation starts a new period).
    pub refresh_token: i64,
    /// How long a sign-in detour may take.
    pub pending_request: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self { code: 60, access_token: 3600, id_token: 3600, refresh_token: 30 * 24 * 3600, pending_request: 1800 }
    }
}

/// What the authorization endpoint should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Issue the response now.
    Issue,
    /// The user must sign in (again, if `reauthenticate`) first.
    SignIn {
        /// A session exists but is too old or `prompt=login` asked for a fresh sign-in.
        reauthenticate: bool,
    },
    /// Signed in, but this request needs more than the session proves for
    /// this client: ask only for what is missing (step-up), not for the
    /// password again.
    StepUp(Demand),
    /// An adaptive rule refuses this client to this session (a page, not a redirect).
    Denied,
    /// Tell the client it cannot have what it asked for.
    Fail(ReplyTo, OAuthError),
}

/// A response to deliver to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// Where and how.
    pub reply: ReplyTo,
    /// Parameters (`code`, `id_token`, `state`, `iss`).
    pub params: Vec<(String, String)>,
}

/// How the client authenticated at the token, revocation or introspection endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// `client_id` (from Basic auth or the form).
    pub client_id: Option<String>,
    /// `client_secret` (from Basic auth or the form).
    pub client_secret: Option<String>,
}

/// Token endpoint form (RFC 6749 §4.1.3, §6, §4.4.2).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// What RP-initiated logout should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logout {
    /// The request proved who sent it (`id_token_hint` for this user): sign out, then go to `redirect` if any.
    SignOut {
        /// Validated post-logout redirect, with `state`.
        redirect: Option<String>,
    },
    /// Ask the user before signing out (the request may be forged).
    Confirm {
        /// Validated post-logout redirect, with `state`.
        redirect: Option<String>,
    },
}

/// Authorization requests that may wait for a sign-in at once (each is a
/// row until it is answered or lapses): a flood from many addresses fills
/// this, not the disk, and then pushes out the oldest, never new ones.
pub const MAX_PENDING_REQUESTS: u64 = 100_000;

/// The table's cap is checked on about one insert in this many: the check
/// counts every live request (up to the cap), which on each authorization
/// request made a flood's cost grow with the table (measured: 7,900 rows read
/// per sign-in on PostgreSQL with 256 sign-ins at a time). Between checks the
/// table can exceed the cap by about this many rows per concurrent writer,
/// and each check removes all of the excess.
pub const PENDING_CAP_CHECK_ONE_IN: u32 = 64;

/// Authorization requests one network (an IPv4 address, an IPv6 /48) keeps
/// waiting at once; its oldest makes room for a new one. A browser needs one
/// per tab signing in, and the oldest of a site's are the abandoned ones; a
/// flood replaces its own, and filling the table takes 2,000 networks.
pub const PENDING_REQUESTS_PER_ADDRESS: u64 = 50;

/// The provider.
#[derive(Clone)]
pub struct Provider<S> {
    pub(crate) store: S,
    sealer: SecretBox,
    pub(crate) issuer: String,
    pub(crate) lifetimes: TokenLifetimes,
    ring: Arc<RwLock<Arc<KeyRing>>>,
    /// Client policies set in the configuration file: they win over the stored ones.
    pinned_policies: Arc<HashMap<String, ClientPolicy>>,
    /// The web origins of the registered redirect URIs, as read at a time
    /// (CORS for browser-based clients; read again after [`CORS_ORIGINS_SECONDS`]).
    cors_origins: Arc<RwLock<Option<CorsOrigins>>>,
    /// Dynamic client registration (RFC 7591): off unless configured.
    pub(crate) registration: Arc<crate::registration::RegistrationSettings>,
    /// How often every node re-reads the signing keys (seconds).
    key_reload_seconds: i64,
}

/// The CORS origins as read at a time.
type CorsOrigins = (UnixTime, Arc<std::collections::HashSet<String>>);

/// How long the list of CORS origins is kept before the clients are read again
/// (changes made on this node apply at once; another node's within this time).
pub const CORS_ORIGINS_SECONDS: i64 = 30;

fn strs(v: &[&str]) -> Value {
    Value::from(v.iter().map(|s| Value::from(*s)).collect::<Vec<_>>())
}

impl<S: OidcStore + AccountStore> Provider<S> {
    /// Loads signing keys, creating one per algorithm on first start.
    /// `key_reload_seconds`: how often every node re-reads them (the same on
    /// every node; it decides when a new key signs and an old one retires).
    pub async fn start(
        store: S,
        sealer: SecretBox,
        issuer: String,
        (lifetimes, key_reload_seconds): (TokenLifetimes, i64),
        now: UnixTime,
    ) -> Result<Self, OidcError> {
        let provider = Self {
            store,
            sealer,
            issuer,
            lifetimes,
            ring: Arc::new(RwLock::new(Arc::new(KeyRing::from_stored(&[], &SecretBox::new([0; 32]), now)?))),
            pinned_policies: Arc::new(HashMap::new()),
            cors_origins: Arc::new(RwLock::new(None)),
            registration: Arc::default(),
            key_reload_seconds: key_reload_seconds.max(1),
        };
        provider.reload_keys(now).await?;
        let missing = provider.ring().missing();
        for alg in missing {
            let key = keys::generate(alg, &provider.sealer, now)?;
            provider.store.rotate_in_signing_key(&key, now).await?;
            tracing::info!(kid = %key.kid, alg = alg.as_str(), "generated a signing key");
        }
        provider.reload_keys(now).await?;
        Ok(provider)
    }

    /// Re-reads keys from the store (picks up rotations by other processes) and retires expired ones.
    pub async fn reload_keys(&self, now: UnixTime) -> Result<(), OidcError> {
        // A rotated-out key signs until its successor is ready (two periods
        // after it was added) and a node lagging by up to a period has
        // re-read the keys, and stays published while tokens it signed can
        // still be valid, with a minute to spare for clocks that differ.
        let longest = self.lifetimes.access_token.max(self.lifetimes.id_token);
        let cutoff = now - longest - self.key_publication_seconds() - self.key_reload_seconds - 60;
        if let Err(e) = self.store.retire_signing_keys(cutoff).await {
            // Keys past their time stay published a while longer; the ring is rebuilt anyway.
            tracing::warn!(error = %e, "retiring old signing keys failed");
        }
        let signs_if_made_by = now - self.key_publication_seconds();
        let ring = Arc::new(KeyRing::from_stored(&self.store.signing_keys().await?, &self.sealer, signs_if_made_by)?);
        if let Ok(mut guard) = self.ring.write() {
            *guard = ring;
        }
        Ok(())
    }

    /// Adds a new signing key for every algorithm; returns their `kid`s.
    pub async fn rotate_keys(&self, now: UnixTime) -> Result<Vec<String>, OidcError> {
        let mut kids = Vec::new();
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let key = keys::generate(alg, &self.sealer, now)?;
            self.store.rotate_in_signing_key(&key, now).await?;
            kids.push(key.kid);
        }
        self.reload_keys(now).await?;
        Ok(kids)
    }

    pub(crate) fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How often the signing keys are re-read (seconds).
    pub fn key_reload_seconds(&self) -> i64 {
        self.key_reload_seconds
    }

    /// How long a new signing key is only published before it signs: two
    /// reload periods, so every node (each re-reading the keys once a period,
    /// whenever its period began) publishes it before any node signs with it.
    /// Applications that fetch the JWKS again on an unknown `kid` then always
    /// find it, whichever node answers.
    pub fn key_publication_seconds(&self) -> i64 {
        2 * self.key_reload_seconds
    }

    /// Pins client policies from the configuration file (by client id); they
    /// override what is stored, and cannot be changed at run time.
    pub fn with_pinned_policies(mut self, policies: HashMap<String, ClientPolicy>) -> Self {
        self.pinned_policies = Arc::new(policies);
        self
    }

    /// The store (for the client management beside it).
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// Operators' changes to clients (see [`ClientAdmin`]).
    pub fn client_admin(&self) -> ClientAdmin<'_, S> {
        ClientAdmin { provider: self }
    }

    /// Whether a browser at web origin `origin` (`https://app.example`) may
    /// call the token, userinfo and revocation endpoints: the origin of one
    /// of the registered redirect URIs (https, or http to a loopback host).
    pub async fn cors_origin_allowed(&self, origin: &str, now: UnixTime) -> Result<bool, OidcError> {
        let cached = self.cors_origins.read().ok().and_then(|c| c.clone()).filter(|(at, _)| now - at < CORS_ORIGINS_SECONDS);
        let origins = match cached {
            Some((_, origins)) => origins,
            None => {
                let origins: std::collections::HashSet<String> = self
                    .store
                    .list_clients()
                    .await?
                    .iter()
                    .flat_map(|c| &c.redirect_uris)
                    // Only addresses today's rules allow (an old plain-http one is no origin to trust).
                    .filter(|uri| crate::clients::check_redirect_uri(uri).is_ok())
                    .filter_map(|uri| url::Url::parse(uri).ok())
                    .filter(|u| matches!(u.scheme(), "https" | "http"))
                    .map(|u| u.origin().ascii_serialization())
                    .collect();
                let origins = Arc::new(origins);
                if let Ok(mut c) = self.cors_origins.write() {
                    *c = Some((now, origins.clone()));
                }
                origins
            }
        };
        Ok(origins.contains(origin))
    }

    /// Forgets the CORS origins read (a client changed on this node).
    pub(crate) fn forget_cors_origins(&self) {
        if let Ok(mut c) = self.cors_origins.write() {
            *c = None;
        }
    }

    /// Whether a client's policy comes from the configuration file.
    pub fn policy_is_pinned(&self, id: &str) -> bool {
        self.pinned_policies.contains_key(id)
    }

    fn with_pinned_policy(&self, mut client: Client) -> Client {
        if let Some(p) = self.pinned_policies.get(&client.id) {
            client.policy = p.clone();
        }
        client
    }

    /// All registered clients (with the policies in force).
    pub async fn clients(&self) -> Result<Vec<Client>, OidcError> {
        Ok(self.store.list_clients().await?.into_iter().map(|c| self.with_pinned_policy(c)).collect())
    }

    /// One client (with the policy in force).
    pub async fn client(&self, id: &str) -> Result<Option<Client>, OidcError> {
        Ok(self.store.client(id).await?.map(|c| self.with_pinned_policy(c)))
    }

    /// When every access token issued until `now` has expired, with a
    /// minute's margin: a request in flight at a revocation took its clock a
    /// little later, and its token must not outlive the revocation row.
    pub(crate) fn access_tokens_issued_now_expire(&self, now: UnixTime) -> UnixTime {
        now + self.lifetimes.access_token + 60
    }

    /// How long a grant's revocation is kept: until everything issued from
    /// the grant until `now` has expired, refresh tokens too, so that a
    /// rotation in flight at the revocation can neither store nor use a new
    /// refresh token (`rotate_refresh_token` and `active_refresh_token` look for it).
    pub(crate) fn grant_revocation_until(&self, now: UnixTime) -> UnixTime {
        now + self.lifetimes.access_token.max(self.lifetimes.refresh_token) + 60
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public JWK set.
    pub fn jwks(&self) -> Value {
        self.ring().jwks().clone()
    }

    /// `/.well-known/openid-configuration`: only what is implemented.
    pub fn discovery(&self, acr_values_supported: &[&str]) -> Value {
        let i = &self.issuer;
        let mut document = json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "userinfo_endpoint": format!("{i}/userinfo"),
            "jwks_uri": format!("{i}/jwks.json"),
            "end_session_endpoint": format!("{i}/end-session"),
            "revocation_endpoint": format!("{i}/revoke"),
            "introspection_endpoint": format!("{i}/introspect"),
            "scopes_supported": strs(&SUPPORTED_SCOPES),
            "response_types_supported": strs(&["code", "code id_token"]),
            "response_modes_supported": strs(&["query", "fragment", "form_post"]),
            "grant_types_supported": strs(&["authorization_code", "refresh_token", "client_credentials"]),
            "subject_types_supported": strs(&["public"]),
            "id_token_signing_alg_values_supported": strs(&["ES256", "RS256"]),
            "token_endpoint_auth_methods_supported": strs(&["client_secret_basic", "client_secret_post", "none"]),
            "revocation_endpoint_auth_methods_supported": strs(&["client_secret_basic", "client_secret_post"]),
            "introspection_endpoint_auth_methods_supported": strs(&["client_secret_basic", "client_secret_post"]),
            "code_challenge_methods_supported": strs(&["S256"]),
            "prompt_values_supported": strs(&["none", "login"]),
            "acr_values_supported": strs(acr_values_supported),
            "claims_supported": strs(&["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "c_hash", "email", "email_verified", "name"]),
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        });
        if self.registration.mode != crate::registration::RegistrationMode::Off {
            document["registration_endpoint"] = format!("{i}/register").into();
        }
        document
    }

    /// Validates an authorization request.
    pub async fn validate(&self, params: &AuthorizeParams) -> Result<Result<AuthorizeRequest, AuthorizeFailure>, OidcError> {
        let client = match params.client_id.as_deref().filter(|s| !s.is_empty() && s.len() <= 128) {
            Some(id) => self.client(id).await?,
            None => None,
        };
        let self_registered = client.as_ref().is_some_and(|c| c.self_registered);
        Ok(match validate(params, client) {
            // Anyone may register a self-registered client's redirect URI: its
            // malformed requests get a page, never a redirect (RFC 9700 §4.11.2:
            // no open redirector).
            Err(AuthorizeFailure::Redirect(_, error)) if self_registered => {
                Err(AuthorizeFailure::Page(format!("The application's request was refused: {}.", error.description)))
            }
            other => other,
        })
    }

    /// Decides whether the browser's session can answer `req` now: the
    /// protocol's part (`prompt`, `max_age`), given `check`, what the sign-in
    /// rules say of this session for this client (see
    /// `Accounts::check_session`, which sees the same `acceptable_acr`).
    /// `signed_in_since`: for a request resumed after a sign-in detour, when it began.
    pub fn decide(
        &self,
        req: &AuthorizeRequest,
        session: Option<(&SessionRecord, SessionCheck)>,
        signed_in_since: Option<UnixTime>,
        now: UnixTime,
    ) -> Decision {
        let login_required = || Decision::Fail(req.reply.clone(), OAuthError::new(ErrorCode::LoginRequired, "the user must sign in"));
        let Some((session, check)) = session else {
            return if req.prompt_none { login_required() } else { Decision::SignIn { reauthenticate: false } };
        };
        let auth_time = session.auth.auth_time().unwrap_or(session.created_at);
        // A sign-in made for this very request (after it began) is fresh enough
        // for `prompt=login` and for any `max_age`, even 0 (OIDC Core §3.1.2.1).
        let signed_in_for_it = signed_in_since.is_some_and(|since| auth_time >= since);
        if req.prompt_login && !signed_in_for_it {
            return Decision::SignIn { reauthenticate: true };
        }
        if let Some(max_age) = req.max_age
            && now - auth_time > max_age
            && !signed_in_for_it
        {
            return if req.prompt_none { login_required() } else { Decision::SignIn { reauthenticate: true } };
        }
        match check {
            SessionCheck::Satisfied => Decision::Issue,
            SessionCheck::Denied if req.prompt_none => Decision::Fail(
                req.reply.clone(),
                OAuthError::new(ErrorCode::AccessDenied, "the sign-in policy refuses this application here"),
            ),
            SessionCheck::Denied => Decision::Denied,
            SessionCheck::StepUp(_) | SessionCheck::Reauthenticate if req.prompt_none => {
                Decision::Fail(req.reply.clone(), OAuthError::new(ErrorCode::InteractionRequired, "a second factor is required"))
            }
            SessionCheck::StepUp(demand) => Decision::StepUp(demand),
            SessionCheck::Reauthenticate => Decision::SignIn { reauthenticate: true },
        }
    }

    /// Keeps a request from `requester` (the client address's network, `rate_limit::network_key`)
    /// while the user signs in; returns its id.
    pub async fn save_pending(&self, req: &AuthorizeRequest, requester: &str, now: UnixTime) -> Result<String, OidcError> {
        let id = random_token();
        let json = serde_json::to_string(&json!({ "params": req.params, "created_at": now })).map_err(|e| OidcError::Key(e.to_string()))?;
        let expires = now + self.lifetimes.pending_request;
        let check_cap = rand::random_ratio(1, PENDING_CAP_CHECK_ONE_IN);
        let bounds = (PENDING_REQUESTS_PER_ADDRESS, check_cap.then_some(MAX_PENDING_REQUESTS));
        self.store.save_pending_request((&id, &req.client.id, requester), &json, (now, expires), bounds).await?;
        Ok(id)
    }

    /// A pending request's parameters and start time, if it has not expired.
    pub async fn load_pending(&self, id: &str, now: UnixTime) -> Result<Option<(AuthorizeParams, UnixTime)>, OidcError> {
        let Some(json) = self.store.pending_request(id, now).await? else {
            return Ok(None);
        };
        let v: Value = serde_json::from_str(&json).map_err(|e| OidcError::Key(e.to_string()))?;
        let params: AuthorizeParams = serde_json::from_value(v["params"].clone()).map_err(|e| OidcError::Key(e.to_string()))?;
        Ok(Some((params, v["created_at"].as_i64().unwrap_or(now))))
    }

    /// Takes a pending request to end it unanswered (the user said no): true
    /// for the one caller that removed it.
    pub async fn take_pending(&self, id: &str) -> Result<bool, OidcError> {
        Ok(self.store.take_pending_request(id).await?)
    }

    /// The client of a pending request, with its policy in force, and the
    /// `acr` values that would satisfy the request (see [`acceptable_acr`]),
    /// if the request has not expired.
    pub async fn pending_client(&self, id: &str, now: UnixTime) -> Result<Option<(Client, Vec<&'static str>)>, OidcError> {
        let Some((client, json)) = self.store.pending_request_client(id, now).await? else { return Ok(None) };
        let client = self.with_pinned_policy(client);
        let params: Option<AuthorizeParams> =
            serde_json::from_str::<Value>(&json).ok().and_then(|v| serde_json::from_value(v["params"].clone()).ok());
        let requested: Vec<String> =
            params.and_then(|p| p.acr_values).map(|a| a.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        let acceptable = acceptable_for(&client.policy, &requested);
        Ok(Some((client, acceptable)))
    }

    /// Issues the authorization response for a signed-in user; `pending`, the
    /// kept request it answers, is taken first and answered once.
    pub async fn issue(
        &self,
        req: &AuthorizeRequest,
        session: &SessionRecord,
        user: &User,
        pending: Option<&str>,
        now: UnixTime,
    ) -> Result<AuthorizationResponse, OidcError> {
        // Tokens say what this client's policy counts of the session: its
        // allowed factors, and remembered browsers if it takes them.
        let counted = req.client.policy.effective(&session.auth, now);
        let grant = Grant {
            grant_id: uuid::Uuid::new_v4().to_string(),
            client_id: req.client.id.clone(),
            user_id: user.id,
            scope: req.scopes.join(" "),
            acr: counted.acr_for(&req.acr_values).map(str::to_owned),
            auth: counted,
            session_id: session.id.clone(),
            security_epoch: session.security_epoch,
        };
        // The pending request is a one-time value: taken before a code exists,
        // so a replayed resume link (a double click, a second tab) gets none.
        if let Some(id) = pending
            && !self.store.take_pending_request(id).await?
        {
            return Err(OidcError::oauth(
                ErrorCode::InvalidRequest,
                "This sign-in request was already answered. Go back to the application and start again.",
            ));
        }
        let code = random_token();
        self.store
            .insert_authorization_code(&AuthorizationCode {
                digest: token_digest(&code),
                grant: grant.clone(),
                redirect_uri: req.reply.redirect_uri.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                created_at: now,
                expires_at: now + self.lifetimes.code,
            })
            .await?;
        let mut params = vec![("code".to_owned(), code.clone())];
        if req.response_type == ResponseType::CodeIdToken {
            let id_token = self.id_token(&req.client, &grant, user, req.nonce.as_deref(), ("c_hash", &code), now)?;
            params.push(("id_token".to_owned(), id_token));
        }
        if let Some(state) = &req.reply.state {
            params.push(("state".to_owned(), state.clone()));
        }
        // RFC 9207: lets the client detect a mix-up between providers.
        params.push(("iss".to_owned(), self.issuer.clone()));
        Ok(AuthorizationResponse { reply: req.reply.clone(), params })
    }

    pub(crate) fn id_token(
        &self,
        client: &Client,
        grant: &Grant,
        user: &User,
        nonce: Option<&str>,
        hash: (&str, &str),
        now: UnixTime,
    ) -> Result<String, OidcError> {
        let mut claims = json!({
            "iss": self.issuer,
            "sub": user.id.to_string(),
            "aud": client.id,
            "exp": now + self.lifetimes.id_token,
            "iat": now,
            "auth_time": grant.auth.auth_time().unwrap_or(now),
            "amr": grant.auth.amr(),
            "sid": grant.session_id,
            hash.0: half_hash(hash.1),
        });
        if let Some(acr) = grant.acr() {
            claims["acr"] = acr.into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        add_user_claims(&mut claims, &grant.scope, user);
        sign(&self.ring(), client.signing_alg, ID_TOKEN_TYP, &claims)
    }

    pub(crate) async fn access_token(
        &self,
        client: &Client,
        grant_id: &str,
        subject: &str,
        scope: &str,
        grant: Option<&Grant>,
        now: UnixTime,
    ) -> Result<String, OidcError> {
        let jti = uuid::Uuid::new_v4().to_string();
        let expires = now + self.lifetimes.access_token;
        // `grant_id` lets a revocation of the grant reach this token without a
        // record of every token issued (see `AccessTokenIds`).
        let mut claims = json!({
            "iss": self.issuer, "sub": subject, "aud": client.id, "client_id": client.id,
            "exp": expires, "iat": now, "jti": jti, "scope": scope, "grant_id": grant_id,
        });
        if let Some(g) = grant {
            claims["auth_time"] = g.auth.auth_time().unwrap_or(now).into();
            claims["amr"] = g.auth.amr().into();
            claims["sid"] = g.session_id.clone().into();
            if let Some(acr) = g.acr() {
                claims["acr"] = acr.into();
            }
        }
        // Access tokens are always ES256: resource servers validate them, not legacy RPs.
        sign(&self.ring(), SigningAlg::ES256, ACCESS_TOKEN_TYP, &claims)
    }

    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–§3).
    pub async fn end_session(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        session_user: Option<&User>,
    ) -> Result<Logout, OidcError> {
        let bad = |why: &str| OidcError::oauth(ErrorCode::InvalidRequest, why);
        let hint = match id_token_hint.filter(|h| !h.is_empty()) {
            Some(h) => Some(
                // Only an ID token (`typ: JWT`; expired ones are fine, OIDC RP-Initiated
                // Logout §2): an access token of ours is no hint, or anyone holding one
                // could sign its user out without the confirmation page.
                verify(&self.ring(), h, Expect { issuer: &self.issuer, typ: Some(ID_TOKEN_TYP), check_expiry: false })
                    .map_err(|_| bad("id_token_hint is not a valid ID token from this provider"))?,
            ),
            None => None,
        };
        let hinted_client = hint.as_ref().and_then(|c| c["aud"].as_str().map(str::to_owned));
        if let (Some(a), Some(b)) = (&hinted_client, client_id)
            && a != b
        {
            return Err(bad("client_id does not match the id_token_hint"));
        }
        let client_id = hinted_client.or(client_id.map(str::to_owned));
        let redirect = match post_logout_redirect_uri.filter(|u| !u.is_empty()) {
            None => None,
            Some(uri) => {
                let client_id = client_id.as_deref().ok_or_else(|| bad("post_logout_redirect_uri needs id_token_hint or client_id"))?;
                let client = self.store.client(client_id).await?.ok_or_else(|| bad("unknown client"))?;
                if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return Err(bad("post_logout_redirect_uri is not registered for this client"));
                }
                if crate::clients::check_redirect_uri(uri).is_err() {
                    return Err(bad(
                        "post_logout_redirect_uri was registered before today's rules and is not allowed; the operator must replace it (client update --redirect-uri … --post-logout-redirect-uri …)",
                    ));
                }
                let mut url = url::Url::parse(uri).map_err(|_| bad("post_logout_redirect_uri is not a URL"))?;
                if let Some(s) = state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                // A self-registered client's address is anyone's (in open
                // registration, a phishing page's): followed only for a
                // signed-in user who allowed that client, or this endpoint is
                // an open redirector (RFC 9700 §4.11.2). The others sign out
                // and stay on our page.
                let followed = match (client.self_registered, session_user) {
                    (false, _) => true,
                    (true, None) => false,
                    (true, Some(user)) => self.store.consented_scope(user.id, &client.id).await?.is_some(),
                };
                followed.then(|| url.to_string())
            }
        };
        let hint_matches_session = match (&hint, session_user) {
            (Some(h), Some(u)) => h["sub"] == u.id.to_string().as_str(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        Ok(if hint_matches_session || session_user.is_none() { Logout::SignOut { redirect } } else { Logout::Confirm { redirect } })
    }
}

impl<S: OidcStore + AccountStore> portcullis_core::accounts::TokenRevoker for Provider<S> {
    fn revoke_user_tokens(
        &self,
        user: portcullis_core::user::UserId,
        now: UnixTime,
    ) -> portcullis_core::io::BoxFuture<'_, Result<(), portcullis_core::StoreError>> {
        Box::pin(async move { self.store.revoke_user_grants(user, None, now, self.grant_revocation_until(now)).await })
    }

    fn revoke_tokens_vouched_by<'a>(
        &'a self,
        user: portcullis_core::user::UserId,
        credential: &'a str,
        sessions: &'a [String],
        now: UnixTime,
    ) -> portcullis_core::io::BoxFuture<'a, Result<usize, portcullis_core::StoreError>> {
        Box::pin(async move {
            let mut grants: Vec<String> = self
                .store
                .user_grant_rows(user)
                .await?
                .into_iter()
                // The grant's record is what its client counts (`ClientPolicy::effective`),
                // which may leave the credential out: its session says it too.
                .filter(|row| row.grant.auth.used_credential(credential) || sessions.contains(&row.grant.session_id))
                .map(|row| row.grant.grant_id)
                .collect();
            grants.sort_unstable();
            grants.dedup();
            for grant in &grants {
                self.store.revoke_grant(grant, now, self.grant_revocation_until(now)).await?;
            }
            Ok(grants.len())
        })
    }
}

/// The authentication context classes that would satisfy `req`, any one of
/// them (empty: a password is enough). The request's supported `acr_values`
/// count as alternatives, but none below the client's floor (its `min_acr`,
/// or `mfa` when it requires MFA): a request cannot lower what the client's
/// operator set.
pub fn acceptable_acr(req: &AuthorizeRequest) -> Vec<&'static str> {
    acceptable_for(&req.client.policy, &req.acr_values)
}

fn acceptable_for(policy: &ClientPolicy, requested: &[String]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = requested.iter().filter_map(|r| ACR_VALUES.into_iter().find(|a| a == r)).collect();
    if let Some(floor) = policy.floor() {
        out.retain(|a| acr_strength(a) >= acr_strength(floor));
        if out.is_empty() {
            out.push(floor);
        }
    }
    out
}

/// Adds the claims the granted scopes allow.
pub(crate) fn add_user_claims(claims: &mut Value, scope: &str, user: &User) {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.contains(&"email") {
        claims["email"] = user.email.as_str().into();
        claims["email_verified"] = user.email_verified_at.is_some().into();
    }
    if scopes.contains(&"profile") && !user.name.is_empty() {
        claims["name"] = user.name.clone().into();
    }
}
