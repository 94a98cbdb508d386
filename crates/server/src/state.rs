//! Shared application state.

use std::sync::Arc;

use portcullis_core::AccountError;
use portcullis_core::accounts::Accounts;
use portcullis_core::clock::{Clock, UnixTime};
use portcullis_core::secrets::MacKey;
use portcullis_oidc::provider::Provider;
use portcullis_store::Store;

/// Settings the transport needs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Public origin, like `http://localhost:8080` (no trailing slash).
    pub origin: String,
    /// Product name shown on pages.
    pub product_name: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see `request::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The VAPID public key phones subscribe to Web Push with; `None`: push approval is off.
    pub push_key: Option<String>,
}

impl ServerSettings {
    /// Cookies get `Secure` when the public origin is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.origin.starts_with("https://")
    }

    /// The name a cookie goes by: `__Host-` first when the issuer is HTTPS
    /// with no path, so the browser accepts it only from this host, over
    /// TLS, for the whole site, and a sibling subdomain cannot set one of
    /// the same name (RFC 6265bis §4.1.3.2).
    pub fn cookie_name(&self, name: &str) -> String {
        let has_path = self.origin.strip_prefix("https://").is_some_and(|rest| rest.contains('/'));
        if self.secure_cookies() && !has_path { format!("__Host-{name}") } else { name.to_owned() }
    }
}

/// Everything a handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    accounts: Accounts<Store>,
    provider: Provider<Store>,
    cookie_key: MacKey,
    clock: Arc<dyn Clock>,
    settings: ServerSettings,
    /// Woken when a phone answers a push request, so a waiting page's long
    /// poll in this process answers at once (other processes' answers are
    /// found by its periodic re-check).
    push_answered: tokio::sync::Notify,
}

impl AppState {
    /// Builds the state. `cookie_key` signs CSRF tokens.
    pub fn new(
        accounts: Accounts<Store>,
        provider: Provider<Store>,
        cookie_key: MacKey,
        clock: Arc<dyn Clock>,
        settings: ServerSettings,
    ) -> Self {
        Self(Arc::new(Inner { accounts, provider, cookie_key, clock, settings, push_answered: tokio::sync::Notify::new() }))
    }

    /// The OpenID Connect provider.
    pub fn provider(&self) -> &Provider<Store> {
        &self.0.provider
    }

    /// The account service.
    pub fn accounts(&self) -> &Accounts<Store> {
        &self.0.accounts
    }

    /// The current time.
    pub fn now(&self) -> UnixTime {
        self.0.clock.now()
    }

    /// Key for CSRF tags.
    pub fn cookie_key(&self) -> &MacKey {
        &self.0.cookie_key
    }

    /// Wakes the long polls of waiting sign-in pages (a phone answered).
    pub fn push_answered(&self) -> &tokio::sync::Notify {
        &self.0.push_answered
    }

    /// Transport settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.0.settings
    }

    /// Deletes expired sessions, links and counters.
    pub async fn purge_expired(&self) -> Result<(), AccountError> {
        self.0.accounts.operators().purge_expired(self.now()).await
    }
}
