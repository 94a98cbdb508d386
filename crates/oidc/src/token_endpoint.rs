//! What the endpoints a client calls with its credentials or a token answer:
//! `/token` (codes, refresh tokens, client credentials), `/userinfo`,
//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use portcullis_core::account_store::AccountStore;
use portcullis_core::clock::UnixTime;
use portcullis_core::oauth::{AccessTokenIds, Client, Grant, OidcStore, OneTimeUse, RevokedAccess};
use portcullis_core::secrets::{constant_time_eq, random_token, token_digest};
use portcullis_core::user::User;
use serde_json::{Value, json};

use crate::provider::{ClientCredentials, Provider, TokenRequest, add_user_claims};
use crate::tokens::{ACCESS_TOKEN_TYP, Expect, verify};
use crate::{ErrorCode, OidcError, pkce};

impl<S: OidcStore + AccountStore> Provider<S> {
    /// Authenticates a client (RFC 6749 §2.3.1); public clients send no secret.
    pub async fn authenticate_client(&self, creds: &ClientCredentials) -> Result<Client, OidcError> {
        let invalid = || OidcError::oauth(ErrorCode::InvalidClient, "client authentication failed");
        let id = creds.client_id.as_deref().filter(|s| !s.is_empty() && s.len() <= 128).ok_or_else(invalid)?;
        let client = self.store.client(id).await?.ok_or_else(invalid)?;
        match (&client.secret_digest, &creds.client_secret) {
            (Some(stored), Some(given)) if constant_time_eq(stored.as_bytes(), token_digest(given).as_bytes()) => Ok(client),
            (None, None) => Ok(client),
            _ => Err(invalid()),
        }
    }

    /// The token endpoint.
    pub async fn token(&self, creds: &ClientCredentials, req: &TokenRequest, now: UnixTime) -> Result<Value, OidcError> {
        let client = self.authenticate_client(creds).await?;
        match req.grant_type.as_deref() {
            Some("authorization_code") => self.redeem_code(&client, req, now).await,
            Some("refresh_token") => self.refresh(&client, req, now).await,
            Some("client_credentials") => {
                if client.is_public() {
                    return Err(OidcError::oauth(ErrorCode::UnauthorizedClient, "public clients cannot use client_credentials"));
                }
                // A client that registered itself gets tokens only from a user (RFC 7591 leaves the grant types to the server).
                if client.self_registered {
                    return Err(OidcError::oauth(ErrorCode::UnauthorizedClient, "a self-registered client cannot use client_credentials"));
                }
                let scope = service_scope(&client, req.scope.as_deref())?;
                let access = self.access_token(&client, &format!("cc:{}", uuid::Uuid::new_v4()), &client.id, &scope, None, now).await?;
                Ok(json!({ "access_token": access, "token_type": "Bearer", "expires_in": self.lifetimes.access_token, "scope": scope }))
            }
            Some(other) => Err(OidcError::oauth(ErrorCode::UnsupportedGrantType, format!("grant_type {other:?} is not supported"))),
            None => Err(OidcError::oauth(ErrorCode::InvalidRequest, "grant_type is missing")),
        }
    }

    async fn redeem_code(&self, client: &Client, req: &TokenRequest, now: UnixTime) -> Result<Value, OidcError> {
        let invalid_grant = |why: &str| OidcError::oauth(ErrorCode::InvalidGrant, why);
        let code =
            req.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| OidcError::oauth(ErrorCode::InvalidRequest, "code is missing"))?;
        let refresh = random_token();
        let first_refresh = (token_digest(&refresh), now + self.lifetimes.refresh_token);
        let code =
            match self.store.consume_authorization_code(&token_digest(code), &client.id, (&first_refresh.0, first_refresh.1), now).await? {
                OneTimeUse::Fresh(c) => c,
                OneTimeUse::Replayed { grant_id } => {
                    // RFC 6749 §4.1.2: a code used twice revokes what it issued.
                    self.store.revoke_grant(&grant_id, now, self.grant_revocation_until(now)).await?;
                    tracing::warn!(client = %client.id, "authorization code replayed: grant revoked");
                    return Err(invalid_grant("the authorization code was already used; tokens issued with it have been revoked"));
                }
                OneTimeUse::OtherClient => return Err(invalid_grant("the authorization code was issued to another client")),
                OneTimeUse::Unknown => return Err(invalid_grant("the authorization code is invalid")),
            };
        let refused = match (&code.code_challenge, req.code_verifier.as_deref()) {
            _ if code.expires_at <= now => Some("the authorization code has expired"),
            _ if req.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) => {
                Some("redirect_uri does not match the authorization request")
            }
            (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => None,
            (Some(_), _) => Some("the PKCE code_verifier does not match the code_challenge"),
            // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
            (None, Some(_)) => Some("code_verifier sent but no code_challenge was"),
            (None, None) => None,
        };
        if let Some(why) = refused {
            // The code is spent; the refresh token stored with it (never handed out) goes with its grant.
            self.store.revoke_grant(&code.grant.grant_id, now, self.grant_revocation_until(now)).await?;
            return Err(invalid_grant(why));
        }
        let refresh = code.grant.issues_refresh_tokens().then_some(refresh);
        self.respond_with_tokens(client, &code.grant, code.nonce.as_deref(), refresh, now).await
    }

    async fn refresh(&self, client: &Client, req: &TokenRequest, now: UnixTime) -> Result<Value, OidcError> {
        let invalid_grant = |why: &str| OidcError::oauth(ErrorCode::InvalidGrant, why);
        let token = req
            .refresh_token
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OidcError::oauth(ErrorCode::InvalidRequest, "refresh_token is missing"))?;
        let next = random_token();
        let successor = (token_digest(&next), now + self.lifetimes.refresh_token);
        let old = match self.store.rotate_refresh_token(&token_digest(token), &client.id, (&successor.0, successor.1), now).await? {
            OneTimeUse::Fresh(t) => t,
            OneTimeUse::Replayed { grant_id } => {
                // Rotation: a used token presented again means it leaked; end the whole family.
                self.store.revoke_grant(&grant_id, now, self.grant_revocation_until(now)).await?;
                tracing::warn!(client = %client.id, "refresh token reused: token family revoked");
                return Err(invalid_grant("the refresh token was already used; all tokens of this grant have been revoked"));
            }
            OneTimeUse::OtherClient => return Err(invalid_grant("the refresh token was issued to another client")),
            OneTimeUse::Unknown => {
                return Err(invalid_grant("the refresh token is invalid or expired"));
            }
        };
        let mut grant = old.grant;
        if let Some(scope) = req.scope.as_deref() {
            let granted: Vec<&str> = grant.scope.split_whitespace().collect();
            if !scope.split_whitespace().all(|s| granted.contains(&s)) {
                return Err(OidcError::oauth(ErrorCode::InvalidScope, "a refresh cannot widen the granted scope"));
            }
            grant.scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        // The successor is returned even when the client narrowed this response's
        // scope: the refresh token keeps the grant's (RFC 6749 §6).
        self.respond_with_tokens(client, &grant, None, Some(next), now).await
    }

    /// The account a grant may still issue for: it exists, is enabled, and its
    /// sign-ins were not ended since the grant was made ([`User::security_epoch`]:
    /// a code or refresh token written by a request in flight at a password
    /// reset, say, issues nothing).
    async fn grant_owner(&self, grant: &Grant) -> Result<Option<User>, OidcError> {
        let user = self.store.user_by_id(grant.user_id).await?;
        Ok(user.filter(|u| u.disabled_at.is_none() && u.security_epoch == grant.security_epoch))
    }

    async fn respond_with_tokens(
        &self,
        client: &Client,
        grant: &Grant,
        nonce: Option<&str>,
        refresh: Option<String>,
        now: UnixTime,
    ) -> Result<Value, OidcError> {
        let Some(user) = self.grant_owner(grant).await? else {
            self.store.revoke_grant(&grant.grant_id, now, self.grant_revocation_until(now)).await?;
            return Err(OidcError::oauth(
                ErrorCode::InvalidGrant,
                "the account was removed, disabled or signed out everywhere since this grant; sign in again",
            ));
        };
        let access = self.access_token(client, &grant.grant_id, &user.id.to_string(), &grant.scope, Some(grant), now).await?;
        let mut body =
            json!({ "access_token": access, "token_type": "Bearer", "expires_in": self.lifetimes.access_token, "scope": grant.scope });
        if grant.scope.split_whitespace().any(|s| s == "openid") {
            body["id_token"] = self.id_token(client, grant, &user, nonce, ("at_hash", &access), now)?.into();
        }
        if let Some(refresh) = refresh {
            body["refresh_token"] = refresh.into();
        }
        Ok(body)
    }

    /// The claims of a well-signed, unexpired access token of ours (not yet checked for revocation).
    fn access_token_claims(&self, token: &str) -> Result<Value, OidcError> {
        Ok(verify(&self.ring(), token, Expect { issuer: &self.issuer, typ: Some(ACCESS_TOKEN_TYP), check_expiry: true })?)
    }

    async fn live_access_token(&self, token: &str) -> Result<Value, OidcError> {
        let claims = self.access_token_claims(token)?;
        if self.store.access_token_revoked(&access_token_ids(&claims)?).await? {
            return Err(OidcError::oauth(ErrorCode::InvalidToken, "the token has been revoked"));
        }
        Ok(claims)
    }

    /// The UserInfo endpoint (OIDC Core §5.3).
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, OidcError> {
        let claims = self.access_token_claims(access_token)?;
        let scope = claims["scope"].as_str().unwrap_or_default();
        if !scope.split_whitespace().any(|s| s == "openid") {
            return Err(OidcError::oauth(ErrorCode::InvalidToken, "the token was not issued for OpenID Connect"));
        }
        let user_id = claims["sub"]
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| OidcError::oauth(ErrorCode::InvalidToken, "the token has no user"))?;
        // Revocation and the user in one read: this endpoint is called on every page of some applications.
        let user = self
            .store
            .live_access_token_user(&access_token_ids(&claims)?, portcullis_core::user::UserId(user_id))
            .await?
            .ok_or_else(|| OidcError::oauth(ErrorCode::InvalidToken, "the token has been revoked or its user no longer exists"))?;
        let mut body = json!({ "sub": user.id.to_string() });
        add_user_claims(&mut body, scope, &user);
        Ok(body)
    }

    /// Token revocation (RFC 7009). Unknown tokens are not an error.
    pub async fn revoke(&self, creds: &ClientCredentials, token: &str, now: UnixTime) -> Result<(), OidcError> {
        let client = self.authenticate_client(creds).await?;
        if let Ok(claims) = verify(&self.ring(), token, Expect { issuer: &self.issuer, typ: Some(ACCESS_TOKEN_TYP), check_expiry: false }) {
            if claims["client_id"] == client.id.as_str()
                && let Some(jti) = claims["jti"].as_str()
            {
                // Kept until the token would have expired anyway.
                let until = claims["exp"].as_i64().unwrap_or_else(|| self.access_tokens_issued_now_expire(now));
                self.store.revoke_access_tokens(RevokedAccess::Token(jti), until).await?;
            }
            return Ok(());
        }
        if let Some(t) = self.store.active_refresh_token(&token_digest(token), now).await?
            && t.grant.client_id == client.id
        {
            // Revoking a refresh token ends its whole grant, access tokens included (RFC 7009 §2.1).
            self.store.revoke_grant(&t.grant.grant_id, now, self.grant_revocation_until(now)).await?;
        }
        Ok(())
    }

    /// Token introspection (RFC 7662), for confidential clients, about their own tokens.
    pub async fn introspect(&self, creds: &ClientCredentials, token: &str, now: UnixTime) -> Result<Value, OidcError> {
        let client = self.authenticate_client(creds).await?;
        if client.is_public() {
            return Err(OidcError::oauth(ErrorCode::InvalidClient, "public clients cannot introspect tokens"));
        }
        // RFC 7662 §4: a client learns only about its own tokens; anything else is inactive.
        if let Ok(claims) = self.live_access_token(token).await
            && claims["client_id"] == client.id.as_str()
        {
            let mut body = json!({ "active": true, "token_type": "Bearer" });
            for k in ["scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "auth_time", "acr", "amr", "sid"] {
                if let Some(v) = claims.get(k) {
                    body[k] = v.clone();
                }
            }
            return Ok(body);
        }
        if let Some(t) = self.store.active_refresh_token(&token_digest(token), now).await?
            && t.grant.client_id == client.id
            && self.grant_owner(&t.grant).await?.is_some()
        {
            return Ok(json!({
                "active": true, "token_type": "refresh_token", "scope": t.grant.scope, "client_id": t.grant.client_id,
                "sub": t.grant.user_id.to_string(), "exp": t.expires_at, "iat": t.created_at, "iss": self.issuer,
            }));
        }
        Ok(json!({ "active": false }))
    }
}

/// What identifies an access token for revocation. Tokens without these
/// claims (issued before revocation by grant existed) are refused.
fn access_token_ids(claims: &Value) -> Result<AccessTokenIds<'_>, OidcError> {
    let claim = |k: &str| claims[k].as_str().filter(|v| !v.is_empty());
    match (claim("jti"), claim("grant_id"), claim("client_id")) {
        (Some(jti), Some(grant_id), Some(client_id)) => Ok(AccessTokenIds { jti, grant_id, client_id }),
        _ => Err(OidcError::oauth(ErrorCode::InvalidToken, "the token lacks the claims this server issues; request a new one")),
    }
}

/// The scope of a client's own token (RFC 6749 §4.4.2, §3.3): what it asks
/// for among its registered service scopes (all of them if it asks for
/// none); a scope it was not given is `invalid_scope`. User scopes are never
/// among them (`check_service_scopes`).
fn service_scope(client: &Client, requested: Option<&str>) -> Result<String, OidcError> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return Ok(client.service_scopes.join(" "));
    };
    let mut granted = Vec::new();
    for s in requested.split_whitespace() {
        if !client.service_scopes.iter().any(|g| g == s) {
            return Err(OidcError::oauth(ErrorCode::InvalidScope, format!("scope {s:?} is not registered for this client's own tokens")));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok(granted.join(" "))
}
