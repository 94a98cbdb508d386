//! Registering clients: validated redirect URIs and a generated secret.

use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{Client, ClientPolicy, SigningAlg};
use portcullis_core::secrets::{random_token, token_digest};

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
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidClient(pub String);

/// Checks a redirect URI (RFC 6749 §3.1.2, RFC 8252 §7): absolute, no
/// fragment; plain http only for loopback hosts.
pub fn check_redirect_uri(uri: &str) -> Result<(), InvalidClient> {
    let parsed = url::Url::parse(uri).map_err(|e| InvalidClient(format!("redirect URI {uri:?}: {e}")))?;
    if parsed.fragment().is_some() {
        return Err(InvalidClient(format!("redirect URI {uri:?} must not have a fragment")));
    }
    if parsed.scheme() == "http" && !matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) {
        return Err(InvalidClient(format!("redirect URI {uri:?} must use https (http is allowed only for localhost)")));
    }
    if parsed.cannot_be_a_base() && parsed.scheme() != "https" && !parsed.scheme().contains('.') {
        return Err(InvalidClient(format!("redirect URI {uri:?} is not a usable URL")));
    }
    Ok(())
}

/// Builds the client record; returns the secret (shown once) for confidential clients.
pub fn register(new: NewClient, now: UnixTime) -> Result<(Client, Option<String>), InvalidClient> {
    if new.name.trim().is_empty() {
        return Err(InvalidClient("the client needs a name".into()));
    }
    if new.redirect_uris.is_empty() {
        return Err(InvalidClient("the client needs at least one redirect URI".into()));
    }
    for uri in new.redirect_uris.iter().chain(&new.post_logout_redirect_uris) {
        check_redirect_uri(uri)?;
    }
    new.policy.validate().map_err(InvalidClient)?;
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
        };
        let (c, secret) = register(new.clone(), 1).unwrap();
        let secret = secret.unwrap();
        assert_eq!(c.secret_digest.as_deref(), Some(token_digest(&secret).as_str()));
        let (p, none) = register(NewClient { public: true, ..new }, 1).unwrap();
        assert!(none.is_none() && p.is_public());
    }
}
