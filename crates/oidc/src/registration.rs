//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592: read, update, delete with the registration access token).
//! Off by default; `token` mode needs a single-use initial access token from
//! `portcullis client registration-token` (RFC 7591 §3), `open` mode lets
//! anyone register (the server throttles it per address). A registered
//! client gets the same redirect-URI rules as one the operator creates, the
//! operator's default policy, and never tokens of its own (no service scopes).

use portcullis_core::account_store::AccountStore;
use portcullis_core::audit::{AuditStore, RequestOrigin};
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{Client, ClientPolicy, OidcStore, SigningAlg};
use portcullis_core::secrets::{random_token, token_digest};
use portcullis_core::user::UserId;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::clients::{NewClient, check_redirect_uri};
use crate::provider::Provider;
use crate::request::AuthorizeRequest;
use crate::{ErrorCode, OidcError};

/// How long an initial access token from the command line stays valid.
pub const INITIAL_ACCESS_TOKEN_SECONDS: i64 = 24 * 3600;
/// Bounds on what one registration may carry.
const MAX_URIS: usize = 20;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_LEN: usize = 200;

/// Who may register clients (`[registration] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Nobody: no registration endpoint.
    #[default]
    Off,
    /// Whoever holds an initial access token (single use, 24 hours).
    Token,
    /// Anyone (throttled per address by the server).
    Open,
}

impl RegistrationMode {
    /// Parses the setting.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "token" => Some(Self::Token),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
}

/// The registration settings.
#[derive(Debug, Clone, Default)]
pub struct RegistrationSettings {
    /// Who may register.
    pub mode: RegistrationMode,
    /// The policy every registered client gets (`[registration.policy]`).
    pub policy: ClientPolicy,
}

/// Client metadata a registration sends (RFC 7591 §2); what the server
/// does not know is ignored, as §2 asks.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientMetadata {
    /// Required.
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    id_token_signed_response_alg: Option<String>,
    /// RFC 7592 §2.2: an update names the client, and may repeat its secret.
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn invalid(code: ErrorCode, description: impl Into<String>) -> OidcError {
    OidcError::oauth(code, description)
}

fn unauthorized() -> OidcError {
    invalid(ErrorCode::InvalidToken, "the registration access token is missing, wrong or expired")
}

/// What a registration asks for, checked.
struct Checked {
    name: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    public: bool,
    signing_alg: SigningAlg,
}

impl ClientMetadata {
    /// Parses a request body (`application/json`).
    pub fn from_json(body: &[u8]) -> Result<Self, OidcError> {
        serde_json::from_slice(body)
            .map_err(|e| invalid(ErrorCode::InvalidClientMetadata, format!("the body is not client metadata as JSON: {e}")))
    }

    fn check(&self) -> Result<Checked, OidcError> {
        let uris = self.redirect_uris.iter().chain(&self.post_logout_redirect_uris);
        if self.redirect_uris.is_empty() {
            return Err(invalid(ErrorCode::InvalidRedirectUri, "redirect_uris: at least one is required"));
        }
        if self.redirect_uris.len() + self.post_logout_redirect_uris.len() > MAX_URIS {
            return Err(invalid(ErrorCode::InvalidRedirectUri, format!("at most {MAX_URIS} redirect URIs")));
        }
        for uri in uris {
            if uri.len() > MAX_URI_LEN {
                return Err(invalid(ErrorCode::InvalidRedirectUri, format!("a redirect URI is longer than {MAX_URI_LEN} characters")));
            }
            check_redirect_uri(uri).map_err(|e| invalid(ErrorCode::InvalidRedirectUri, e.0))?;
        }
        let public = match self.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic") {
            "client_secret_basic" | "client_secret_post" => false,
            "none" => true,
            other => {
                return Err(invalid(
                    ErrorCode::InvalidClientMetadata,
                    format!("token_endpoint_auth_method {other:?}: use client_secret_basic, client_secret_post or none"),
                ));
            }
        };
        let subset = |field: &str, given: &Option<Vec<String>>, allowed: &[&str]| match given {
            Some(values) if values.iter().any(|v| !allowed.contains(&v.as_str())) => {
                Err(invalid(ErrorCode::InvalidClientMetadata, format!("{field}: only {} are supported", allowed.join(", "))))
            }
            _ => Ok(()),
        };
        subset("grant_types", &self.grant_types, &GRANT_TYPES)?;
        subset("response_types", &self.response_types, &RESPONSE_TYPES)?;
        let signing_alg = match self.id_token_signed_response_alg.as_deref() {
            None => SigningAlg::ES256,
            Some(alg) => SigningAlg::parse(alg)
                .ok_or_else(|| invalid(ErrorCode::InvalidClientMetadata, "id_token_signed_response_alg: use ES256 or RS256"))?,
        };
        // Spaces collapsed; control and invisible formatting characters refused, so
        // that a name cannot pass for another's by what the eye does not see.
        let name = self.client_name.as_deref().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { DEFAULT_NAME.to_owned() } else { name };
        if name.chars().count() > MAX_NAME_LEN || name.chars().any(|c| c.is_control() || is_invisible_format(c)) {
            return Err(invalid(ErrorCode::InvalidClientMetadata, format!("client_name: at most {MAX_NAME_LEN} visible characters")));
        }
        Ok(Checked {
            name,
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            public,
            signing_alg,
        })
    }
}

/// The name of a client that gave none (not held unique).
const DEFAULT_NAME: &str = "Registered application";

/// Unicode format characters that change how text reads without showing
/// (zero-width spaces and joiners, direction marks and overrides, the BOM,
/// the soft hyphen, invisible operators).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// The grant and response types a registered client may use (what the
/// server enforces, and so what a registration answers).
const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];
const RESPONSE_TYPES: [&str; 2] = ["code", "code id_token"];

impl<S: OidcStore + AccountStore + AuditStore> Provider<S> {
    /// Who may register clients.
    pub fn registration_mode(&self) -> RegistrationMode {
        self.registration.mode
    }

    /// Sets who may register clients, and the policy they get.
    pub fn with_registration(mut self, settings: RegistrationSettings) -> Self {
        self.registration = std::sync::Arc::new(settings);
        self
    }

    /// An initial access token for one registration, valid for
    /// [`INITIAL_ACCESS_TOKEN_SECONDS`] (kept as a digest).
    pub async fn new_initial_access_token(&self, now: UnixTime) -> Result<String, OidcError> {
        let token = random_token();
        self.store().save_initial_access_token(&token_digest(&token), now, now + INITIAL_ACCESS_TOKEN_SECONDS).await?;
        Ok(token)
    }

    /// POST /register (RFC 7591 §3): registers a client from `metadata`.
    /// `initial_token` is the bearer token `token` mode requires; it is spent
    /// (one `DELETE`) before the client is made, so two concurrent
    /// registrations with one token cannot both succeed.
    pub async fn register_client(
        &self,
        initial_token: Option<&str>,
        metadata: &ClientMetadata,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Value, OidcError> {
        if self.registration.mode == RegistrationMode::Off {
            return Err(OidcError::NotFound("client registration is turned off"));
        }
        // Checked before the token is spent: a typo in the metadata does not burn it.
        let checked = metadata.check()?;
        self.refuse_taken_name(&checked.name, None).await?;
        if self.registration.mode == RegistrationMode::Token {
            let token =
                initial_token.ok_or_else(|| invalid(ErrorCode::InvalidToken, "send the initial access token as Authorization: Bearer"))?;
            if !self.store().consume_initial_access_token(&token_digest(token), now).await? {
                return Err(invalid(ErrorCode::InvalidToken, "the initial access token is wrong, used or expired"));
            }
        }
        let new = NewClient {
            id: None,
            name: checked.name,
            redirect_uris: checked.redirect_uris,
            post_logout_redirect_uris: checked.post_logout_redirect_uris,
            public: checked.public,
            policy: self.registration.policy.clone(),
            signing_alg: checked.signing_alg,
            service_scopes: vec![],
        };
        let management = random_token();
        let (client, secret) = self.client_admin().register_self(new, &token_digest(&management), origin, now).await?;
        let mut answer = self.registration_answer(&client);
        answer["client_id_issued_at"] = client.created_at.into();
        answer["registration_access_token"] = management.into();
        if let Some(secret) = secret {
            answer["client_secret"] = secret.into();
            answer["client_secret_expires_at"] = 0.into();
        }
        Ok(answer)
    }

    /// The client `client_id` if `token` is its registration access token
    /// (RFC 7592 §2: anything else, an unknown client included, is a 401).
    async fn registered_client(&self, client_id: &str, token: Option<&str>) -> Result<Client, OidcError> {
        if self.registration.mode == RegistrationMode::Off {
            return Err(OidcError::NotFound("client registration is turned off"));
        }
        let token = token.ok_or_else(unauthorized)?;
        let stored = self.store().registration_token_digest(client_id).await?.ok_or_else(unauthorized)?;
        if !bool::from(token_digest(token).as_bytes().ct_eq(stored.as_bytes())) {
            return Err(unauthorized());
        }
        self.client(client_id).await?.ok_or_else(unauthorized)
    }

    /// GET /register/{client_id} (RFC 7592 §2.1).
    pub async fn read_registration(&self, client_id: &str, token: Option<&str>) -> Result<Value, OidcError> {
        let client = self.registered_client(client_id, token).await?;
        Ok(self.registration_answer(&client))
    }

    /// PUT /register/{client_id} (RFC 7592 §2.2): replaces the name and the
    /// redirect URIs; the client id must match, a secret sent must be the
    /// client's, and the kind of client (public or not) cannot change.
    pub async fn update_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
        metadata: &ClientMetadata,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<Value, OidcError> {
        let client = self.registered_client(client_id, token).await?;
        if metadata.client_id.as_deref() != Some(client_id) {
            return Err(invalid(ErrorCode::InvalidClientMetadata, "client_id: must be the registered client's"));
        }
        if let Some(secret) = &metadata.client_secret
            && !client.secret_digest.as_ref().is_some_and(|d| bool::from(token_digest(secret).as_bytes().ct_eq(d.as_bytes())))
        {
            return Err(invalid(ErrorCode::InvalidClientMetadata, "client_secret: not the client's secret"));
        }
        let checked = metadata.check()?;
        if checked.public != client.is_public() || checked.signing_alg != client.signing_alg {
            return Err(invalid(
                ErrorCode::InvalidClientMetadata,
                "token_endpoint_auth_method and id_token_signed_response_alg cannot change: register a new client",
            ));
        }
        self.refuse_taken_name(&checked.name, Some(client_id)).await?;
        let admin = self.client_admin();
        if checked.redirect_uris != client.redirect_uris {
            // What users allowed named where the answer went: moved elsewhere, they are asked again.
            self.store().forget_client_consents(client_id).await?;
        }
        admin.set_redirect_uris(client_id, (&checked.redirect_uris, &checked.post_logout_redirect_uris), origin, now).await?;
        admin.rename(client_id, &checked.name, origin, now).await?;
        let client = self.client(client_id).await?.ok_or_else(unauthorized)?;
        Ok(self.registration_answer(&client))
    }

    /// DELETE /register/{client_id} (RFC 7592 §2.3): the client and every
    /// token it holds are gone.
    pub async fn delete_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(), OidcError> {
        self.registered_client(client_id, token).await?;
        self.client_admin().delete(client_id, origin, now).await?;
        Ok(())
    }

    /// Refuses a name another client has (in any case), so that a client
    /// registering itself cannot pass for one the user knows.
    async fn refuse_taken_name(&self, name: &str, except: Option<&str>) -> Result<(), OidcError> {
        if name == DEFAULT_NAME {
            return Ok(());
        }
        let taken =
            self.clients().await?.iter().any(|c| Some(c.id.as_str()) != except && c.name.trim().to_lowercase() == name.to_lowercase());
        match taken {
            true => Err(invalid(ErrorCode::InvalidClientMetadata, "client_name: another application has this name")),
            false => Ok(()),
        }
    }

    /// Whether `user` must be asked before `req` is answered: a client that
    /// registered itself gets nothing the user has not allowed (an
    /// operator's clients are trusted as the operator's own).
    pub async fn needs_consent(&self, req: &AuthorizeRequest, user: UserId) -> Result<bool, OidcError> {
        if !req.client.self_registered {
            return Ok(false);
        }
        let allowed = self.store().consented_scope(user, &req.client.id).await?.unwrap_or_default();
        let allowed: Vec<&str> = allowed.split_whitespace().collect();
        Ok(!req.scopes.iter().all(|s| allowed.contains(&s.as_str())))
    }

    /// Whether an error for `req` may be sent to its redirect URI (for the
    /// signed-in `user`, if any): always for an operator's client; for a
    /// self-registered one only once this user has allowed it, so that its
    /// redirect URI (anyone's, in open mode) cannot use us as an open
    /// redirector (RFC 9700 §4.11.2).
    pub async fn may_redirect_error(&self, req: &AuthorizeRequest, user: Option<UserId>) -> Result<bool, OidcError> {
        match (req.client.self_registered, user) {
            (false, _) => Ok(true),
            (true, None) => Ok(false),
            (true, Some(user)) => Ok(!self.needs_consent(req, user).await?),
        }
    }

    /// Records that `user` allowed `req`'s client what `req` asks (added to what it allowed before).
    pub async fn record_consent(&self, req: &AuthorizeRequest, user: UserId, now: UnixTime) -> Result<(), OidcError> {
        let before = self.store().consented_scope(user, &req.client.id).await?.unwrap_or_default();
        let mut scopes: Vec<&str> = before.split_whitespace().chain(req.scopes.iter().map(String::as_str)).collect();
        scopes.sort_unstable();
        scopes.dedup();
        Ok(self.store().save_consent(user, &req.client.id, &scopes.join(" "), now).await?)
    }

    /// A registered client's metadata as the server holds and enforces it.
    fn registration_answer(&self, client: &Client) -> Value {
        json!({
            "client_id": client.id,
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "token_endpoint_auth_method": if client.is_public() { "none" } else { "client_secret_basic" },
            "grant_types": GRANT_TYPES,
            "response_types": RESPONSE_TYPES,
            "id_token_signed_response_alg": client.signing_alg.as_str(),
            "registration_client_uri": format!("{}/register/{}", self.issuer, client.id),
        })
    }
}
