//! The Portcullis binary's library half: configuration, secrets and the wiring
//! of store, delivery, domain and transport. `main.rs` only parses the command
//! line; tests build the same application through [`Application::build`].

pub mod backup;
pub mod config;
pub mod geoip;
pub mod keys;

use std::sync::Arc;

use portcullis_core::accounts::{AccountSettings, Accounts, FactorKeys};
use portcullis_core::breached::{BreachedCheck, BreachedPasswords};
use portcullis_core::clock::Clock;
use portcullis_core::factors::otp::OtpSettings;
use portcullis_core::factors::push::PushService;
use portcullis_core::factors::webauthn::{AllowedAuthenticator, RelyingParty};
use portcullis_core::lockout::LockoutPolicy;
use portcullis_core::messages::{Mailer, Messenger};
use portcullis_core::password::{Argon2Cost, PasswordHasher, PasswordPolicy};
use portcullis_core::rate_limit::RateLimits;
use portcullis_core::secrets::{MacKey, SecretBox};
use portcullis_core::session::SessionPolicy;
use portcullis_delivery::{OutboxMailer, PwnedPasswordsClient, SmtpMailer, Templates, VapidKey, WebPushSender, sms_sender};
use portcullis_oidc::provider::{Provider, TokenLifetimes};
use portcullis_oidc::registration::{RegistrationMode, RegistrationSettings};
use portcullis_server::{AppState, ServerSettings};
use portcullis_store::Store;

use crate::config::Config;
use crate::keys::ServerKeys;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration is invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Secret key files are unusable.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] portcullis_store::OpenError),
    /// Mail delivery is misconfigured.
    #[error(transparent)]
    Delivery(#[from] portcullis_delivery::DeliveryError),
    /// Signing keys could not be loaded or created.
    #[error("OpenID Connect provider: {0}")]
    Provider(#[from] portcullis_oidc::OidcError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl StartError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Delivery(_) => 2,
            _ => 1,
        }
    }
}

/// The product's name in pages, messages and authenticator apps.
const PRODUCT_NAME: &str = "Portcullis";

/// A wired application.
pub struct Application {
    /// Handler state.
    pub state: AppState,
    /// The database.
    pub store: Store,
}

/// The breached-password check `[password] breached_check` asks for.
fn breached_passwords(config: &Config) -> Result<BreachedPasswords, StartError> {
    let check = BreachedCheck::parse(&config.password.breached_check).unwrap_or_default();
    let range: Option<Arc<dyn portcullis_core::breached::PwnedRange>> = match check {
        BreachedCheck::Online => Some(Arc::new(PwnedPasswordsClient::new(&config.password.breached_range_url)?)),
        BreachedCheck::Off | BreachedCheck::Offline => None,
    };
    Ok(BreachedPasswords::new(check, range))
}

/// The WebAuthn relying party, unless turned off or impossible (an IP-address issuer).
fn relying_party(config: &Config) -> Result<Option<RelyingParty>, StartError> {
    if !config.factors.webauthn {
        return Ok(None);
    }
    let bad = |m: String| StartError::Config(config::ConfigError(format!("webauthn: {m}")));
    let mut allowed = Vec::new();
    for a in &config.webauthn.allowed_authenticators {
        let aaguid = uuid::Uuid::parse_str(&a.aaguid).map_err(|e| bad(format!("aaguid {:?}: {e}", a.aaguid)))?;
        let ca_pem = std::fs::read(&a.ca_file).map_err(|e| bad(format!("{}: {e}", a.ca_file.display())))?;
        allowed.push(AllowedAuthenticator { aaguid, name: a.name.clone(), ca_pem });
    }
    let rp = RelyingParty::new(&config.origin(), PRODUCT_NAME, &allowed).map_err(bad)?;
    if rp.is_none() {
        tracing::warn!(issuer = %config.issuer, "the issuer's host is an IP address, which browsers refuse for WebAuthn: security keys and passkeys are off");
    }
    Ok(rp)
}

/// Push approval, when it is on: Web Push signed with the server's VAPID
/// key, and that key's public half (phones subscribe with it).
fn push_service(config: &Config, keys: &ServerKeys) -> Result<Option<(PushService, String)>, StartError> {
    if !config.push_enabled() {
        return Ok(None);
    }
    let bad = |m: String| StartError::Config(config::ConfigError(format!("push: {m}")));
    let vapid = VapidKey::from_secret(&keys.vapid).map_err(|m| bad(format!("secrets/vapid.key: {m}")))?;
    let public_key = vapid.public_key();
    let sender = WebPushSender::new(vapid, config.push_contact(), config.push.private_push_services).map_err(bad)?;
    // What the companion's `location.origin` says, which its signatures name.
    let origin = url::Url::parse(&config.issuer).map(|u| u.origin().ascii_serialization()).map_err(|e| bad(e.to_string()))?;
    let service = PushService { sender: Arc::new(sender), companion_url: format!("{}/authenticator", config.origin()), origin };
    Ok(Some((service, public_key)))
}

impl Application {
    /// Opens the store (applying migrations), loads or creates secrets, and wires everything.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        create_private_dir(&config.data_dir)?;
        let keys = ServerKeys::load_or_create(&config.data_dir)?;
        let store = open_store(config).await?;
        let mailer: Arc<dyn Mailer> = match &config.smtp {
            Some(smtp) => Arc::new(SmtpMailer::new(smtp)?),
            None => {
                tracing::warn!(outbox = %OutboxMailer::path_in(&config.data_dir).display(), "no [smtp] configured: mail goes to the development outbox");
                Arc::new(OutboxMailer::new(&config.data_dir)?)
            }
        };
        let p = &config.password;
        let cost = Argon2Cost { memory_kib: p.argon2_memory_kib, iterations: p.argon2_iterations, parallelism: p.argon2_parallelism };
        let hasher = PasswordHasher::new(cost, p.max_concurrent_hashes)
            .map_err(|e| StartError::Config(config::ConfigError(format!("password: {e}"))))?
            .with_max_waiting(p.max_waiting_hashes());
        let settings = AccountSettings {
            links: portcullis_server::link_pages(&config.origin()),
            password_policy: PasswordPolicy { min_length: p.min_length, max_length: p.max_length, min_score: p.min_score },
            lockout: LockoutPolicy {
                max_failures: config.lockout.max_failures,
                max_second_step_failures: config.lockout.max_second_step_failures,
                lock_seconds: config.lockout.lock_seconds,
                failure_window_seconds: config.lockout.failure_window_seconds,
            },
            sessions: SessionPolicy {
                idle_timeout: config.session.idle_timeout_seconds,
                absolute_timeout: config.session.absolute_timeout_seconds,
                reauthenticate_after: config.session.reauthenticate_after_seconds,
            },
            rate_limits: RateLimits {
                sign_in_per_minute: config.rate_limit.sign_in_per_minute,
                sign_up_per_minute: config.rate_limit.sign_up_per_minute,
                send_email_per_minute: config.rate_limit.send_email_per_minute,
                authorize_per_minute: config.rate_limit.authorize_per_minute,
                register_client_per_minute: config.rate_limit.register_client_per_minute,
            },
            remember_browser_ttl: config.mfa.remember_browser_days * 86_400,
            totp_enabled: config.factors.totp,
            otp: OtpSettings {
                email_enabled: config.factors.email,
                email_requires_other_factor: config.factors.email_requires_other_factor,
                email_counts_as_mfa: config.factors.email_counts_as_mfa,
                email_blocked_after_reset: config.factors.email_blocked_after_reset_days * 86_400,
                email_passwordless: config.factors.email_passwordless,
                sms_enabled: config.factors.sms,
                ttl: config.mfa.code_lifetime_seconds,
                ..OtpSettings::default()
            },
            adaptive: config.adaptive_policy()?,
            mfa_required_for: config.policy.mfa_required_for.clone(),
            audit_retention: config.policy.audit_retention_days * 86_400,
            suggest_enrollment: config.mfa.suggest_enrollment,
            ..AccountSettings::default()
        };
        // Factor secrets are sealed with the at-rest key; recovery-code tags use the MAC key under their own purpose.
        let (push, push_key) = push_service(config, &keys)?.unzip();
        let factor_keys = FactorKeys {
            sealer: SecretBox::new(keys.encryption),
            mac: MacKey::new(keys.cookie),
            relying_party: relying_party(config)?,
            push,
        };
        let templates = Templates::new(PRODUCT_NAME, &config.origin(), config.messages.templates_dir.as_deref())?;
        let messenger = Messenger::new(Box::new(templates), mailer, sms_sender(&config.sms, &config.data_dir)?);
        let mut accounts =
            Accounts::new(store.clone(), hasher, messenger, settings, factor_keys).with_breached_passwords(breached_passwords(config)?);
        if let Some(path) = &config.policy.geoip_database {
            let db = geoip::GeoIpDatabase::open(path)
                .map_err(|e| StartError::Config(config::ConfigError(format!("policy.geoip_database: {e}"))))?;
            accounts = accounts.with_geolocator(Arc::new(db));
        }
        let provider = Provider::start(
            store.clone(),
            SecretBox::new(keys.encryption),
            config.origin(),
            (TokenLifetimes::default(), i64::from(config.key_reload_seconds)),
            clock.now(),
        )
        .await?
        .with_pinned_policies(config.clients.clone().into_iter().collect())
        .with_registration(RegistrationSettings {
            mode: RegistrationMode::parse(&config.registration.mode).unwrap_or_default(),
            policy: config.registration.policy.clone(),
        });
        for (client, uri) in provider.client_admin().outdated_redirect_uris().await? {
            tracing::warn!(%client, redirect_uri = %uri, "registered before the redirect-URI rules: refused at use until `portcullis client update --client-id ID --redirect-uri URI` replaces it");
        }
        // Signing out everywhere and disabling an account revoke what the provider issued.
        let accounts = accounts.with_token_revoker(Arc::new(provider.clone()));
        let state = AppState::new(
            accounts,
            provider,
            MacKey::new(keys.cookie),
            clock,
            ServerSettings {
                origin: config.origin(),
                product_name: PRODUCT_NAME.into(),
                trusted_proxies: config.trusted_proxy_ranges()?,
                push_key,
            },
        );
        Ok(Self { state, store })
    }
}

/// Creates the data directory readable by its owner only (it holds the
/// SQLite file with password hashes, the secrets and the development
/// outboxes); refuses one that other users can read or enter.
pub fn create_private_dir(dir: &std::path::Path) -> Result<(), StartError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |e: String| StartError::Other(format!("data_dir {}: {e}", dir.display()));
    if dir.is_dir() {
        let mode = std::fs::metadata(dir).map_err(|e| fail(e.to_string()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(fail(format!("permissions {:o} let other users in; run chmod 700 on it", mode & 0o777)));
        }
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| fail(e.to_string()))
}

/// Makes the SQLite database (and its WAL and shared-memory files, which
/// SQLite creates with the database file's permissions) owner-only before
/// it is opened: password hashes and sealed secrets live there.
fn private_sqlite_file(database_url: &str) -> Result<(), StartError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(path) = sqlite_path(database_url) else { return Ok(()) };
    let Some(path) = path.to_str() else { return Ok(()) };
    let fail = |p: &str, e: std::io::Error| StartError::Other(format!("database {p}: {e}"));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(|e| fail(path, e))?;
    for file in [path.to_owned(), format!("{path}-wal"), format!("{path}-shm")] {
        if std::path::Path::new(&file).exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| fail(&file, e))?;
        }
    }
    Ok(())
}

/// The file of a `sqlite:` database URL (none for PostgreSQL or an in-memory database).
pub fn sqlite_path(database_url: &str) -> Option<std::path::PathBuf> {
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Opens and migrates the configured database.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    private_sqlite_file(&config.database_url())?;
    let store = Store::connect(&config.database_url()).await?;
    store.migrate().await?;
    Ok(store)
}
