//! The Pwned Passwords range API over HTTP (`[password] breached_check =
//! "online"`): `GET {base}/{prefix}` with `Add-Padding: true`, so that the
//! answer's size tells an observer nothing about the prefix either.

use std::time::Duration;

use portcullis_core::breached::PwnedRange;
use portcullis_core::io::BoxFuture;

/// How long a sign-up or sign-in waits for the range API before going on unchecked.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Range answers are about 30 KB padded; more is not a range answer.
const MAX_BODY: usize = 1 << 20;

/// A range API client.
#[derive(Debug, Clone)]
pub struct PwnedPasswordsClient {
    http: reqwest::Client,
    base: String,
}

impl PwnedPasswordsClient {
    /// A client of the range API at `base` (`https://api.pwnedpasswords.com/range`).
    pub fn new(base: &str) -> Result<Self, crate::DeliveryError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::DeliveryError::Setting { key: "password.breached_range_url", message: format!("HTTP client: {e}") })?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned() })
    }
}

impl PwnedRange for PwnedPasswordsClient {
    fn range(&self, prefix: &str) -> BoxFuture<'_, Result<String, String>> {
        let url = format!("{}/{prefix}", self.base);
        Box::pin(async move {
            // Errors without the URL: its last 5 characters are a prefix of the password's hash.
            let mut response = self.http.get(&url).header("Add-Padding", "true").send().await.map_err(|e| e.without_url().to_string())?;
            if !response.status().is_success() {
                return Err(format!("range API answered {}", response.status()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err("range API answer too large".into());
                }
                body.extend_from_slice(&chunk);
            }
            String::from_utf8(body).map_err(|_| "range API answer is not text".to_owned())
        })
    }
}
