//! Single requests to the standard endpoints of any OpenID provider (found
//! through its discovery document), over keep-alive connections: the same
//! measurement for Portcullis and for the peer provider.

/// One endpoint measured alone.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    /// `GET /.well-known/openid-configuration`
    Discovery,
    /// `GET` the JWKS.
    Jwks,
    /// The token endpoint with `grant_type=client_credentials`.
    ClientCredentials,
    /// The userinfo endpoint with a bearer token.
    Userinfo,
}

impl Endpoint {
    /// All four, with their names in the table. Userinfo comes before the
    /// token load: the peer's in-memory store keeps only the newest 1,000
    /// tokens, and the user's token would be pushed out.
    pub const ALL: [(&'static str, Endpoint); 4] = [
        ("discovery", Endpoint::Discovery),
        ("jwks", Endpoint::Jwks),
        ("userinfo", Endpoint::Userinfo),
        ("token (client_credentials)", Endpoint::ClientCredentials),
    ];
}

/// A provider's endpoints, a confidential client and a user's access token.
pub struct Provider {
    http: reqwest::Client,
    discovery: String,
    jwks: String,
    token: String,
    userinfo: String,
    client_id: String,
    client_secret: String,
    access_token: String,
}

impl Provider {
    /// Reads `issuer`'s discovery document.
    pub async fn discover(issuer: &str, (client_id, client_secret): (String, String), access_token: String) -> Result<Self, String> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().map_err(|e| e.to_string())?;
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let doc: serde_json::Value =
            http.get(&discovery).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        let url = |k: &str| doc[k].as_str().map(str::to_owned).ok_or_else(|| format!("{issuer}: discovery lacks {k}"));
        Ok(Self {
            jwks: url("jwks_uri")?,
            token: url("token_endpoint")?,
            userinfo: url("userinfo_endpoint")?,
            discovery,
            http,
            client_id,
            client_secret,
            access_token,
        })
    }

    /// One request to `endpoint`; the body is read (producing it is part of the work).
    pub async fn hit(&self, endpoint: Endpoint) -> Result<(), String> {
        let request = match endpoint {
            Endpoint::Discovery => self.http.get(&self.discovery),
            Endpoint::Jwks => self.http.get(&self.jwks),
            Endpoint::ClientCredentials => self
                .http
                .post(&self.token)
                .basic_auth(&self.client_id, Some(&self.client_secret))
                .form(&[("grant_type", "client_credentials")]),
            Endpoint::Userinfo => self.http.get(&self.userinfo).bearer_auth(&self.access_token),
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() { Ok(()) } else { Err(format!("{status}: {}", String::from_utf8_lossy(&body))) }
    }
}
