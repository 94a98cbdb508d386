//! OAuth 2.0 / OpenID Connect records the domain keeps: registered clients,
//! signing keys, pending authorization requests, authorization codes and
//! tokens. Protocol rules live in `portcullis-oidc`; this module only says
//! what is stored, so `portcullis-store` can persist it without knowing the
//! protocol.

use std::future::Future;

use crate::clock::UnixTime;
use crate::io::StoreResult;
use crate::methods::FactorKey;
use crate::session::{ACR_MFA, ACR_VALUES, AuthMethod, AuthRecord};
use crate::user::UserId;

/// Whether a client's users must use a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Never asked by this client (a user's own enrolled factors still apply).
    Off,
    /// Asked when the user has a factor or the request asks for it.
    #[default]
    Optional,
    /// Always required.
    Required,
}

impl MfaPolicy {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

/// What an application demands of a sign-in, beyond what the user's account
/// and the operator's adaptive rules demand anyway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientPolicy {
    /// Whether a second factor is required.
    pub mfa: MfaPolicy,
    /// Factors that count as the second step for this client (`totp`,
    /// `webauthn`, `email`, `sms`, `recovery`); empty: every factor.
    pub allowed_factors: Vec<String>,
    /// Whether a remembered browser may stand in for the second factor.
    pub allow_remember: bool,
    /// How old a remembered browser's second factor may be (days); `None`: the server's setting.
    pub remember_browser_days: Option<i64>,
    /// The least `acr` a sign-in must reach (`mfa` or `phr`); `None`: as `mfa` says.
    pub min_acr: Option<String>,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self { mfa: MfaPolicy::Optional, allowed_factors: Vec::new(), allow_remember: true, remember_browser_days: None, min_acr: None }
    }
}

/// Second-factor keys a client policy may name (every factor, strongest first).
pub const FACTOR_KEYS: [&str; FactorKey::ALL.len()] = {
    let mut keys = [""; FactorKey::ALL.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = FactorKey::ALL[i].as_str();
        i += 1;
    }
    keys
};

impl ClientPolicy {
    /// Checks the values an operator gave; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(f) = self.allowed_factors.iter().find(|f| !FACTOR_KEYS.contains(&f.as_str())) {
            return Err(format!("allowed_factors: {f:?} is not one of {}", FACTOR_KEYS.join(", ")));
        }
        if let Some(days) = self.remember_browser_days
            && !(1..=400).contains(&days)
        {
            return Err(format!("remember_browser_days: {days} is not between 1 and 400"));
        }
        if let Some(acr) = &self.min_acr
            && !ACR_VALUES.contains(&acr.as_str())
        {
            return Err(format!("min_acr: {acr:?} is not one of {}", ACR_VALUES.join(", ")));
        }
        if self.mfa == MfaPolicy::Off && self.min_acr.is_some() {
            return Err("min_acr: a client with mfa = off cannot ask for a minimum acr".into());
        }
        let webauthn = FactorKey::Webauthn.as_str();
        if self.min_acr.as_deref() == Some(crate::session::ACR_PHR)
            && !self.allowed_factors.is_empty()
            && !self.allowed_factors.iter().any(|f| f == webauthn)
        {
            return Err("min_acr: phr is reached only with a security key or passkey; add webauthn to allowed_factors".into());
        }
        Ok(())
    }

    /// Whether `method` counts for this client (the password always does).
    pub fn allows(&self, method: AuthMethod) -> bool {
        match method.factor() {
            None => true,
            Some(key) => self.allowed_factors.is_empty() || self.allowed_factors.iter().any(|f| f == key.as_str()),
        }
    }

    /// The least context class this client accepts, if any.
    pub fn floor(&self) -> Option<&'static str> {
        match (&self.min_acr, self.mfa) {
            (Some(acr), _) => ACR_VALUES.into_iter().find(|a| a == acr),
            (None, MfaPolicy::Required) => Some(ACR_MFA),
            (None, _) => None,
        }
    }

    /// What of `auth` counts for this client at `now`: steps with allowed
    /// methods, and remembered-browser steps only if the client accepts
    /// remembered browsers and they are recent enough.
    pub fn effective(&self, auth: &AuthRecord, now: UnixTime) -> AuthRecord {
        let remembered_ok = |at: UnixTime| self.allow_remember && self.remember_browser_days.is_none_or(|d| now - at <= d * 86_400);
        AuthRecord {
            events: auth.events.iter().filter(|e| self.allows(e.method) && (!e.remembered || remembered_ok(e.at))).cloned().collect(),
        }
    }
}

/// Strength order of context classes: `phr` above `mfa`.
pub fn acr_strength(acr: &str) -> usize {
    ACR_VALUES.iter().rev().position(|a| *a == acr).map_or(0, |i| i + 1)
}

/// JWS algorithms Portcullis signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (default).
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for clients that know nothing else.
    RS256,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Parses a JOSE name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }
}

/// A registered application.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    /// Public identifier.
    pub id: String,
    /// Human name.
    pub name: String,
    /// SHA-256 digest of the secret (confidential clients); the secret is 256 random bits.
    pub secret_digest: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// What the client demands of a sign-in.
    pub policy: ClientPolicy,
    /// ID-token signing algorithm.
    pub signing_alg: SigningAlg,
    /// Scopes its own tokens (`client_credentials`) may carry; empty: none.
    pub service_scopes: Vec<String>,
    /// It registered itself (RFC 7591) rather than being added by an
    /// operator: users are asked before it gets anything, and it has no
    /// tokens of its own.
    pub self_registered: bool,
    /// Creation time.
    pub created_at: UnixTime,
}

/// Scopes that only a user can grant: never in a client's own token.
pub const USER_SCOPES: [&str; 4] = ["openid", "offline_access", "email", "profile"];

/// Checks the scopes an operator lists for a client's own tokens.
pub fn check_service_scopes(scopes: &[String]) -> Result<(), String> {
    for s in scopes {
        if USER_SCOPES.contains(&s.as_str()) {
            return Err(format!("scope {s:?} is granted by a user, never to a client's own token"));
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
            return Err(format!("scope {s:?} is not a valid scope token"));
        }
    }
    Ok(())
}

impl Client {
    /// A public client (no secret; PKCE mandatory).
    pub fn is_public(&self) -> bool {
        self.secret_digest.is_none()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("public", &self.is_public())
            .field("redirect_uris", &self.redirect_uris)
            .field("policy", &self.policy)
            .field("signing_alg", &self.signing_alg)
            .finish_non_exhaustive()
    }
}

/// A token-signing key as stored: the private half sealed with the at-rest key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Key id (`kid`).
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// Private key (PKCS#8 DER), sealed.
    pub sealed_private_key: Vec<u8>,
    /// Public JWK, as JSON.
    pub public_jwk: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key replaced it for signing (`None`: it signs now).
    pub rotated_at: Option<UnixTime>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

/// What a user's authentication granted a client; carried by codes and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// Groups every token issued from one authorization, so one misuse revokes them all.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: UserId,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// How the user authenticated (source of `amr`, `acr`, `auth_time`).
    pub auth: AuthRecord,
    /// The browser session (`sid`).
    pub session_id: String,
    /// The `acr` asserted for this grant, chosen at authorization from the
    /// request's `acr_values` (older grants have none stored: derived from `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The account's [`crate::user::User::security_epoch`] when the session
    /// behind it was opened: a grant from before the account's sign-ins were
    /// last ended issues nothing (grants stored before this field: 0).
    #[serde(default)]
    pub security_epoch: i64,
}

impl Grant {
    /// Whether its codes and refreshes come with a refresh token (scope `offline_access`).
    pub fn issues_refresh_tokens(&self) -> bool {
        self.scope.split_whitespace().any(|s| s == "offline_access")
    }

    /// The `acr` claim of tokens from this grant.
    pub fn acr(&self) -> Option<&str> {
        self.acr.as_deref().or_else(|| self.auth.acr())
    }
}

/// An issued authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 digest of the code.
    pub digest: String,
    /// What it grants.
    pub grant: Grant,
    /// The redirect URI it was sent to (must be repeated at the token endpoint).
    pub redirect_uri: String,
    /// `nonce` from the request.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// An issued refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 digest of the token.
    pub digest: String,
    /// What it grants.
    pub grant: Grant,
    /// Creation time.
    pub created_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// Result of presenting a one-time credential (code or refresh token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneTimeUse<T> {
    /// First use: here is what it carried.
    Fresh(T),
    /// Already used (or revoked): a replay. Carries the grant to revoke.
    Replayed {
        /// The grant the credential belonged to.
        grant_id: String,
    },
    /// Issued to another client: left as it is (spending it would let a
    /// client that saw it make its owner's next use look like a replay).
    OtherClient,
    /// Never issued.
    Unknown,
}

/// What identifies an access token for revocation. Access tokens are
/// self-contained JWTs (RFC 9068): issuing one writes nothing, and only
/// revocations are stored, until the tokens they cover have expired.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenIds<'a> {
    /// The token's `jti`.
    pub jti: &'a str,
    /// The grant it was issued under.
    pub grant_id: &'a str,
    /// The client it was issued to.
    pub client_id: &'a str,
}

impl AccessTokenIds<'_> {
    /// The revocation keys that would cover this token.
    pub fn revocation_keys(&self) -> [String; 3] {
        [RevokedAccess::Token(self.jti).key(), RevokedAccess::Grant(self.grant_id).key(), RevokedAccess::Client(self.client_id).key()]
    }
}

/// What a revocation of access tokens covers.
#[derive(Debug, Clone, Copy)]
pub enum RevokedAccess<'a> {
    /// One token, by `jti` (RFC 7009).
    Token(&'a str),
    /// Every token of a grant (a replayed code, a reused or revoked refresh token).
    Grant(&'a str),
    /// Every token of a client (the client was deleted).
    Client(&'a str),
}

impl RevokedAccess<'_> {
    /// The stored key.
    pub fn key(&self) -> String {
        match self {
            Self::Token(jti) => format!("jti:{jti}"),
            Self::Grant(id) => format!("grant:{id}"),
            Self::Client(id) => format!("client:{id}"),
        }
    }
}

/// Persistence of OAuth clients, keys, codes and tokens.
pub trait OidcStore: Clone + Send + Sync + 'static {
    /// Registers a client; `Conflict` if the id exists.
    fn create_client(&self, client: &Client) -> impl Future<Output = StoreResult<()>> + Send;
    /// A client by id.
    fn client(&self, id: &str) -> impl Future<Output = StoreResult<Option<Client>>> + Send;
    /// Replaces a client's policy; false if there is no such client.
    fn update_client_policy(&self, id: &str, policy: &ClientPolicy) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Replaces the scopes a client's own tokens may carry; false if unknown.
    fn set_client_service_scopes(&self, id: &str, scopes: &[String]) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Replaces a client's redirect URIs and post-logout redirect URIs; false if there is no such client.
    fn set_client_redirect_uris(
        &self,
        id: &str,
        redirect_uris: &[String],
        post_logout_redirect_uris: &[String],
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Registers a client that registered itself (RFC 7591) with the digest
    /// of its registration access token, in one transaction; `Conflict` if the id exists.
    fn create_registered_client(&self, client: &Client, token_digest: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// The digest of a self-registered client's registration access token (`None`: not self-registered, or no such client).
    fn registration_token_digest(&self, client_id: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// Renames a client; false if there is no such client.
    fn rename_client(&self, id: &str, name: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The scopes `user` allowed the self-registered client `client_id`, space-separated.
    fn consented_scope(&self, user: UserId, client_id: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// What `user` allowed self-registered clients, with their names.
    fn user_consents(&self, user: UserId) -> impl Future<Output = StoreResult<Vec<crate::app_access::ClientConsent>>> + Send;
    /// Forgets what every user allowed `client_id` (its redirect URIs changed: users are asked again).
    fn forget_client_consents(&self, client_id: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records what `user` allowed `client_id` (replacing what was allowed before).
    fn save_consent(&self, user: UserId, client_id: &str, scope: &str, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Keeps an initial access token for client registration (its digest) until `expires_at`.
    fn save_initial_access_token(&self, digest: &str, now: UnixTime, expires_at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Spends an initial access token: true for the one caller that removed an unexpired one.
    fn consume_initial_access_token(&self, digest: &str, now: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Replaces a confidential client's secret digest; false if there is no such confidential client.
    fn replace_client_secret(&self, id: &str, secret_digest: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// All clients.
    fn list_clients(&self) -> impl Future<Output = StoreResult<Vec<Client>>> + Send;
    /// Deletes a client with its codes and refresh tokens, and revokes its
    /// access tokens (which all expire by `access_tokens_until`).
    fn delete_client(&self, id: &str, access_tokens_until: UnixTime) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Keys not yet retired, newest first.
    fn signing_keys(&self) -> impl Future<Output = StoreResult<Vec<StoredSigningKey>>> + Send;
    /// Adds a key that signs from now on; marks the previous signing key of the
    /// same algorithm rotated at `now`. One transaction.
    fn rotate_in_signing_key(&self, key: &StoredSigningKey, now: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes keys rotated out before `cutoff` (their tokens have all expired).
    fn retire_signing_keys(&self, cutoff: UnixTime) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Keeps an authorization request of `client_id` from `requester` (a
    /// client address's network, `rate_limit::network_key`) while the user signs in, in a
    /// bounded table: the requester's oldest waiting requests beyond
    /// `per_requester`, and then, when `cap` is given, the oldest of all
    /// beyond it make room (a flood replaces its own requests first, and
    /// never stops new ones). The global check counts every live request, so
    /// callers ask for it on a sample of inserts, not on each.
    fn save_pending_request(
        &self,
        id_client_requester: (&str, &str, &str),
        request_json: &str,
        now_and_expiry: (UnixTime, UnixTime),
        per_requester_and_cap: (u64, Option<u64>),
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A pending request that has not expired.
    fn pending_request(&self, id: &str, now: UnixTime) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// The client of a pending request that has not expired, with the
    /// request (as saved), in one read: each sign-in page needs the client's
    /// policy and what the request asks of the sign-in.
    fn pending_request_client(&self, id: &str, now: UnixTime) -> impl Future<Output = StoreResult<Option<(Client, String)>>> + Send;
    /// Takes a pending request to answer it: true for the one caller that
    /// removed it, false for every other (a request is answered once).
    fn take_pending_request(&self, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Stores an issued code.
    fn insert_authorization_code(&self, code: &AuthorizationCode) -> impl Future<Output = StoreResult<()>> + Send;
    /// Uses a code atomically (RFC 6749 §4.1.2: at most once), if it was
    /// issued to `client_id`; another client's code is left unspent. When its
    /// grant [issues refresh tokens](Grant::issues_refresh_tokens), the first
    /// one (`refresh`: digest and expiry) is stored in the same transaction,
    /// so a concurrent replay of the code, which revokes the grant, finds it
    /// there and revokes it too, and the first use still gets its answer.
    fn consume_authorization_code(
        &self,
        digest: &str,
        client_id: &str,
        refresh: (&str, UnixTime),
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<OneTimeUse<AuthorizationCode>>> + Send;

    /// Rotates a refresh token of `client_id`: uses it and, in the same
    /// transaction, stores its successor (`next`: digest and expiry) for the
    /// same grant, so by the time a concurrent replay of it is seen (and
    /// revokes the grant) the successor exists and is revoked with it. A used
    /// or revoked one is a replay; another client's is left unspent; one of a
    /// revoked grant is invalid.
    fn rotate_refresh_token(
        &self,
        digest: &str,
        client_id: &str,
        next: (&str, UnixTime),
        now: UnixTime,
    ) -> impl Future<Output = StoreResult<OneTimeUse<RefreshToken>>> + Send;
    /// A refresh token that is neither used, revoked nor expired.
    fn active_refresh_token(&self, digest: &str, now: UnixTime) -> impl Future<Output = StoreResult<Option<RefreshToken>>> + Send;
    /// Whether any revocation covers the access token `token` (itself, its grant or its client).
    fn access_token_revoked(&self, token: &AccessTokenIds<'_>) -> impl Future<Output = StoreResult<bool>> + Send;
    /// User `user` if access token `token` is not revoked: the userinfo endpoint's one read.
    fn live_access_token_user(
        &self,
        token: &AccessTokenIds<'_>,
        user: crate::user::UserId,
    ) -> impl Future<Output = StoreResult<Option<crate::user::User>>> + Send;
    /// Revokes access tokens (kept until `until`, when every token it covers has expired).
    fn revoke_access_tokens(&self, what: RevokedAccess<'_>, until: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
    /// Revokes everything issued to a user (the account's sign-ins were
    /// ended), or, with `client`, to that one application (the user removed
    /// its access): refresh tokens, unused codes, the access tokens of every
    /// grant, and what the user allowed self-registered clients, in one transaction.
    fn revoke_user_grants(
        &self,
        user: UserId,
        client: Option<&str>,
        now: UnixTime,
        access_tokens_until: UnixTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The stored codes and refresh tokens of `user`'s grants that no
    /// revocation covers, with their client's name (the source of
    /// [`crate::app_access::applications`]).
    fn user_grant_rows(&self, user: UserId) -> impl Future<Output = StoreResult<Vec<crate::app_access::GrantRow>>> + Send;
    /// Revokes every code, refresh token and access token of a grant; the
    /// grant's access tokens all expire by `access_tokens_until`.
    fn revoke_grant(&self, grant_id: &str, now: UnixTime, access_tokens_until: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;
}
