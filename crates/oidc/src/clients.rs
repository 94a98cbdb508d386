//! Clients: registering one (validated redirect URIs, a generated secret)
//! and every operator's change to one ([`ClientAdmin`], audited).

use portcullis_core::account_store::AccountStore;
use portcullis_core::audit::{AuditKind, AuditStore, NewAuditEvent, RequestOrigin};
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{Client, ClientPolicy, OidcStore, SigningAlg};
use portcullis_core::secrets::{random_token, token_digest};

use crate::provider::Provider;
use crate::{ErrorCode, OidcError};

/// Operators' changes to clients, from the admin console and the command line
/// alike: each is made here and recorded here (`client_changed`, with its
/// action and who acted), so no caller can change a client unaudited.
pub struct ClientAdmin<'a, S> {
    pub(crate) provider: &'a Provider<S>,
}

impl<S: OidcStore + AccountStore + AuditStore> ClientAdmin<'_, S> {
    /// Redirect URIs registered before today's rules ([`check_redirect_uri`]),
    /// as (client id, URI): refused at use until the operator replaces them
    /// ([`ClientAdmin::set_redirect_uris`], `client update --redirect-uri`).
    pub async fn outdated_redirect_uris(&self) -> Result<Vec<(String, String)>, OidcError> {
        Ok(self
            .provider
            .store()
            .list_clients()
            .await?
            .into_iter()
            .flat_map(|c| {
                let uris: Vec<String> = c.redirect_uris.iter().chain(&c.post_logout_redirect_uris).cloned().collect();
                uris.into_iter().filter(|u| check_redirect_uri(u).is_err()).map(move |u| (c.id.clone(), u))
            })
            .collect())
    }

    /// Registers a client; returns it with its secret (shown once; confidential clients only).
    pub async fn register(&self, new: NewClient, origin: &RequestOrigin, now: UnixTime) -> Result<(Client, Option<String>), OidcError> {
        let (client, secret) = register(new, now).map_err(|e| OidcError::oauth(ErrorCode::InvalidRequest, e.0))?;
        self.provider.store().create_client(&client).await?;
        self.audit(&client.id, "created", origin, now).await?;
        Ok((client, secret))
    }

    /// Registers a client that registered itself (RFC 7591) with the digest
    /// of its registration access token; audited as `registered`.
    pub(crate) async fn register_self(
        &self,
        new: NewClient,
        registration_token_digest: &str,
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<(Client, Option<String>), OidcError> {
        let (client, secret) = register(new, now).map_err(|e| OidcError::oauth(ErrorCode::InvalidClientMetadata, e.0))?;
        let client = Client { self_registered: true, ..client };
        self.provider.store().create_registered_client(&client, registration_token_digest).await?;
        self.audit(&client.id, "registered", origin, now).await?;
        Ok((client, secret))
    }

    /// Renames a client; false if there is no such client.
    pub async fn rename(&self, id: &str, name: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, OidcError> {
        let renamed = self.provider.store().rename_client(id, name).await?;
        if renamed {
            self.audit(id, "renamed", origin, now).await?;
        }
        Ok(renamed)
    }

    /// Replaces a client's policy; false if there is no such client. A policy
    /// pinned in the configuration file cannot be changed here.
    pub async fn set_policy(&self, id: &str, policy: &ClientPolicy, origin: &RequestOrigin, now: UnixTime) -> Result<bool, OidcError> {
        policy.validate().map_err(|e| OidcError::oauth(ErrorCode::InvalidRequest, e))?;
        if self.provider.policy_is_pinned(id) {
            return Err(OidcError::oauth(ErrorCode::InvalidRequest, format!("the policy of {id} is set in the configuration file")));
        }
        let changed = self.provider.store().update_client_policy(id, policy).await?;
        if changed {
            self.audit(id, "policy_changed", origin, now).await?;
        }
        Ok(changed)
    }

    /// Replaces the scopes a client's own tokens may carry; false if there is
    /// no such client. `openid`, `offline_access` and the user-claim scopes
    /// are refused: only a user grants those.
    pub async fn set_service_scopes(&self, id: &str, scopes: &[String], origin: &RequestOrigin, now: UnixTime) -> Result<bool, OidcError> {
        portcullis_core::oauth::check_service_scopes(scopes).map_err(|e| OidcError::oauth(ErrorCode::InvalidRequest, e))?;
        match self.provider.store().client(id).await? {
            None => return Ok(false),
            Some(c) if c.is_public() && !scopes.is_empty() => {
                return Err(OidcError::oauth(ErrorCode::InvalidRequest, "a public client has no tokens of its own: it cannot have scopes"));
            }
            Some(_) => {}
        }
        let changed = self.provider.store().set_client_service_scopes(id, scopes).await?;
        if changed {
            self.audit(id, "scopes_changed", origin, now).await?;
        }
        Ok(changed)
    }

    /// Replaces a client's redirect URIs (at least one) and post-logout
    /// redirect URIs, each checked as at registration ([`check_redirect_uri`]);
    /// false if there is no such client. This is how an address registered
    /// before today's rules is replaced.
    pub async fn set_redirect_uris(
        &self,
        id: &str,
        (redirect_uris, post_logout_redirect_uris): (&[String], &[String]),
        origin: &RequestOrigin,
        now: UnixTime,
    ) -> Result<bool, OidcError> {
        check_redirect_uris(redirect_uris, post_logout_redirect_uris).map_err(|e| OidcError::oauth(ErrorCode::InvalidRequest, e.0))?;
        let changed = self.provider.store().set_client_redirect_uris(id, redirect_uris, post_logout_redirect_uris).await?;
        if changed {
            self.audit(id, "redirect_uris_changed", origin, now).await?;
        }
        Ok(changed)
    }

    /// Gives a confidential client a new secret (shown once; the old one stops
    /// working at once); `None` if there is no such confidential client.
    pub async fn rotate_secret(&self, id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<Option<String>, OidcError> {
        let secret = random_token();
        if !self.provider.store().replace_client_secret(id, &token_digest(&secret)).await? {
            return Ok(None);
        }
        self.audit(id, "secret_rotated", origin, now).await?;
        Ok(Some(secret))
    }

    /// Deletes a client with its codes and tokens; false if unknown.
    pub async fn delete(&self, id: &str, origin: &RequestOrigin, now: UnixTime) -> Result<bool, OidcError> {
        let deleted = self.provider.store().delete_client(id, self.provider.access_tokens_issued_now_expire(now)).await?;
        if deleted {
            self.audit(id, "deleted", origin, now).await?;
        }
        Ok(deleted)
    }

    async fn audit(&self, id: &str, action: &str, origin: &RequestOrigin, now: UnixTime) -> Result<(), OidcError> {
        // Every change is audited here, so this is where a changed client is seen.
        self.provider.forget_cors_origins();
        let origin = RequestOrigin { client_id: Some(id.to_owned()), ..origin.clone() };
        let event = NewAuditEvent::new(AuditKind::ClientChanged, None, &origin, serde_json::json!({ "action": action }), now);
        Ok(self.provider.store().record_audit_event(&event).await?)
    }
}

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The client id the operator chose (letters, digits, `.`, `_`, `-`; at most 128), or `None` for a random one.
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Redirect URIs (at least one).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Public client (no secret, PKCE mandatory).
    pub public: bool,
    /// What the client demands of a sign-in.
    pub policy: ClientPolicy,
    /// ID-token signing algorithm.
    pub signing_alg: SigningAlg,
    /// Scopes its own tokens (`client_credentials`) may carry (confidential clients only).
    pub service_scopes: Vec<String>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidClient(pub String);

/// Checks a redirect URI (RFC 6749 §3.1.2, RFC 8252 §7): absolute, no
/// fragment, and one of `https://HOST/…`; `http://` only to a loopback host
/// or `localhost` (RFC 8252 §7.3); a private-use scheme with a dot, as a
/// native app's reversed domain name (RFC 8252 §7.1). Everything else
/// (`javascript:`, `data:`, `file:`, a scheme without a dot) is refused.
pub fn check_redirect_uri(uri: &str) -> Result<(), InvalidClient> {
    let parsed = url::Url::parse(uri).map_err(|e| InvalidClient(format!("redirect URI {uri:?}: {e}")))?;
    if parsed.fragment().is_some() {
        return Err(InvalidClient(format!("redirect URI {uri:?} must not have a fragment")));
    }
    let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
    match parsed.scheme() {
        "https" if has_host => Ok(()),
        "http" if matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(()),
        "http" => Err(InvalidClient(format!("redirect URI {uri:?} must use https (http is allowed only for localhost)"))),
        "https" => Err(InvalidClient(format!("redirect URI {uri:?} has no host"))),
        scheme if scheme.contains('.') && parsed.username().is_empty() && parsed.password().is_none() => Ok(()),
        scheme => Err(InvalidClient(format!(
            "redirect URI {uri:?}: scheme {scheme:?} is not allowed; use https, http to localhost, or a private-use scheme with a dot (com.example.app:/callback)"
        ))),
    }
}

/// Checks a client's redirect URIs (at least one) and post-logout redirect URIs.
fn check_redirect_uris(redirect_uris: &[String], post_logout_redirect_uris: &[String]) -> Result<(), InvalidClient> {
    if redirect_uris.is_empty() {
        return Err(InvalidClient("the client needs at least one redirect URI".into()));
    }
    redirect_uris.iter().chain(post_logout_redirect_uris).try_for_each(|uri| check_redirect_uri(uri))
}

/// Builds the client record; returns the secret (shown once) for confidential clients.
pub fn register(new: NewClient, now: UnixTime) -> Result<(Client, Option<String>), InvalidClient> {
    if new.name.trim().is_empty() {
        return Err(InvalidClient("the client needs a name".into()));
    }
    check_redirect_uris(&new.redirect_uris, &new.post_logout_redirect_uris)?;
    new.policy.validate().map_err(InvalidClient)?;
    portcullis_core::oauth::check_service_scopes(&new.service_scopes).map_err(InvalidClient)?;
    if new.public && !new.service_scopes.is_empty() {
        return Err(InvalidClient("a public client has no tokens of its own: it cannot have service scopes".into()));
    }
    if let Some(id) = &new.id
        && (id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    {
        return Err(InvalidClient(format!("client id {id:?}: use 1 to 128 letters, digits, '.', '_' or '-'")));
    }
    let secret = (!new.public).then(random_token);
    let client = Client {
        id: new.id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        name: new.name.trim().to_owned(),
        secret_digest: secret.as_deref().map(token_digest),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        policy: new.policy,
        signing_alg: new.signing_alg,
        service_scopes: new.service_scopes,
        self_registered: false,
        created_at: now,
    };
    Ok((client, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_checked() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/oauth2redirect").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        // Schemes a browser would run or read locally, and private-use schemes without a dot.
        for bad in [
            "javascript://%0Aalert(document.cookie)",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "myapp:/cb",
            "ftp://app.example/cb",
            "com.example.app://user:pw@host/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad} was accepted");
        }
        assert!(check_redirect_uri("http://[::1]:8080/cb").is_ok());
    }

    #[test]
    fn a_clients_own_tokens_never_get_user_scopes() {
        use portcullis_core::oauth::check_service_scopes;
        assert!(check_service_scopes(&["reports.read".into(), "audit:write".into()]).is_ok());
        for bad in ["openid", "offline_access", "email", "profile", "two words", "", "quote\"d"] {
            assert!(check_service_scopes(&[bad.into()]).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn confidential_clients_get_a_secret_stored_as_a_digest() {
        let new = NewClient {
            id: None,
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            public: false,
            policy: ClientPolicy::default(),
            signing_alg: SigningAlg::ES256,
            service_scopes: vec![],
        };
        let (c, secret) = register(new.clone(), 1).unwrap();
        let secret = secret.unwrap();
        assert_eq!(c.secret_digest.as_deref(), Some(token_digest(&secret).as_str()));
        let (p, none) = register(NewClient { public: true, ..new }, 1).unwrap();
        assert!(none.is_none() && p.is_public());
    }
}
