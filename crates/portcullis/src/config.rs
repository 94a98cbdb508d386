//! Configuration: defaults, then the TOML file (`--config` / `PORTCULLIS_CONFIG`),
//! then `PORTCULLIS_*` environment variables (`__` for nesting), then flags.
//! Loaded once into one typed struct; every later step trusts it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use portcullis_core::oauth::ClientPolicy;
use portcullis_core::policy::{AdaptivePolicy, Rule, RuleAction};
use portcullis_core::user::{EVERYONE, ROLE_ADMIN, ROLE_USER};
use portcullis_delivery::{SmsSettings, SmtpSettings};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL (OIDC issuer), e.g. `https://id.example.com`.
    pub issuer: String,
    /// Directory for the SQLite file, generated keys and the outbox.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Outgoing mail server; absent: development outbox.
    pub smtp: Option<SmtpSettings>,
    /// Text-message gateway; default: development outbox.
    pub sms: SmsSettings,
    /// Password rules and hashing cost.
    pub password: PasswordConfig,
    /// Lockout after failed sign-ins.
    pub lockout: LockoutConfig,
    /// Session lifetimes.
    pub session: SessionConfig,
    /// Per-client-IP limits.
    pub rate_limit: RateLimitConfig,
    /// Second-factor settings.
    pub mfa: MfaConfig,
    /// Which sign-in methods users may use.
    pub factors: FactorsConfig,
    /// Security keys and passkeys.
    pub webauthn: WebauthnConfig,
    /// Sign-in approvals on a phone (Web Push).
    pub push: PushConfig,
    /// Emails and text messages.
    pub messages: MessagesConfig,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is
    /// believed; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// On SIGTERM or SIGINT, how long requests in progress may take to
    /// finish before the server stops anyway (seconds).
    pub shutdown_grace_seconds: u64,
    /// How often each server re-reads the token-signing keys (seconds; the
    /// same on every node). A key added by `portcullis keys rotate` is
    /// published for two such periods before it signs.
    pub key_reload_seconds: u32,
    /// Who must use a second factor, adaptive sign-in rules, GeoIP.
    pub policy: PolicyConfig,
    /// Sign-in policies pinned per client id (`[clients.ID]`): they override
    /// what the command line or the admin console stored.
    pub clients: std::collections::BTreeMap<String, ClientPolicy>,
    /// Dynamic client registration (RFC 7591/7592).
    pub registration: RegistrationConfig,
    /// Prometheus metrics (`[metrics]`).
    pub metrics: MetricsConfig,
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` (Prometheus text format) is served, apart from
    /// the public listener; none (the default): no metrics.
    pub listen: Option<SocketAddr>,
}

/// `[registration]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// "off" (no registration endpoint), "token" (a single-use initial access
    /// token from `portcullis client registration-token`) or "open" (anyone,
    /// `[rate_limit] register_client_per_minute` per address).
    pub mode: String,
    /// The policy every registered client gets (`[registration.policy]`, fields as `[clients.ID]`).
    pub policy: ClientPolicy,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self { mode: "off".into(), policy: ClientPolicy::default() }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Roles (`admin`, `user`) or `everyone` who must use a second factor; they enroll at their next sign-in.
    pub mfa_required_for: Vec<String>,
    /// A MaxMind-format database (GeoLite2/GeoIP2 City or Country) for the `countries` and impossible-travel rules.
    pub geoip_database: Option<PathBuf>,
    /// Faster than this between two sign-ins' places is impossible travel (km/h).
    pub max_travel_kmh: f64,
    /// How long the audit log keeps an event (days).
    pub audit_retention_days: i64,
    /// Adaptive rules, in order; the first that matches decides (`[[policy.rules]]`).
    pub rules: Vec<RuleConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { mfa_required_for: Vec::new(), geoip_database: None, max_travel_kmh: 1000.0, audit_retention_days: 400, rules: Vec::new() }
    }
}

/// `[[policy.rules]]`: every condition given must hold; none given matches every sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in the audit log.
    pub name: String,
    /// Client ids the sign-in is for.
    #[serde(default)]
    pub clients: Vec<String>,
    /// `admin` or `user`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Source addresses or CIDR ranges.
    #[serde(default)]
    pub networks: Vec<String>,
    /// ISO 3166-1 alpha-2 country codes (needs `geoip_database`).
    #[serde(default)]
    pub countries: Vec<String>,
    /// `true`: a browser the account never signed in from; `false`: a known one.
    pub new_device: Option<bool>,
    /// At least this many failed attempts on the account in the last hour.
    pub failures_last_hour: Option<u32>,
    /// `true`: the last sign-in was too far away for the time since (needs a City database).
    pub impossible_travel: Option<bool>,
    /// `allow_single_factor`, `require_mfa`, `require_phishing_resistant` or `deny`.
    pub action: RuleAction,
}

/// `[mfa]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// How long "Remember this browser" skips the second step (days).
    pub remember_browser_days: i64,
    /// How long a sent code works (seconds).
    pub code_lifetime_seconds: i64,
    /// After a sign-in with the password alone, suggest setting up a second
    /// factor to users who have none (skippable; "Not now" lasts 30 days).
    pub suggest_enrollment: bool,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self { remember_browser_days: 30, code_lifetime_seconds: 300, suggest_enrollment: false }
    }
}

/// `[factors]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FactorsConfig {
    /// Authenticator apps (TOTP).
    pub totp: bool,
    /// Security keys and passkeys (needs an issuer whose host is a name, not an IP address).
    pub webauthn: bool,
    /// Codes sent to the user's verified email address.
    pub email: bool,
    /// Email codes only for users who also have another factor (email as a
    /// fallback, not the only factor).
    pub email_requires_other_factor: bool,
    /// Whether password + emailed code is multi-factor (`false`: NIST SP
    /// 800-63B, which excludes email as an out-of-band authenticator).
    pub email_counts_as_mfa: bool,
    /// Days after a password reset by emailed link during which an emailed
    /// code completes no second step (0: no such wait).
    pub email_blocked_after_reset_days: i64,
    /// Sign-in with an emailed code instead of a password (a single factor).
    pub email_passwordless: bool,
    /// Phone numbers receiving codes by text message.
    pub sms: bool,
    /// Sign-in approvals on a phone running the companion app (push with
    /// number matching). Unset: on when the issuer's host is a name (the
    /// companion needs a secure context, which an IP address over http is not).
    pub push: Option<bool>,
}

impl Default for FactorsConfig {
    fn default() -> Self {
        let otp = portcullis_core::factors::otp::OtpSettings::default();
        Self {
            totp: true,
            webauthn: true,
            email: otp.email_enabled,
            email_requires_other_factor: otp.email_requires_other_factor,
            email_counts_as_mfa: otp.email_counts_as_mfa,
            email_blocked_after_reset_days: otp.email_blocked_after_reset / 86_400,
            email_passwordless: otp.email_passwordless,
            sms: otp.sms_enabled,
            push: None,
        }
    }
}

/// `[messages]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesConfig {
    /// A directory of minijinja files replacing built-in message templates of
    /// the same relative path (`email/sign_in_code.txt`, `sms/sign_in_code.txt`, …),
    /// or under a language's directory for that language only (`de/sms/sign_in_code.txt`).
    pub templates_dir: Option<PathBuf>,
}

/// `[push]`: how sign-in requests reach phones (RFC 8030 Web Push).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Who push services may contact about this server's messages (VAPID
    /// `sub`, RFC 8292): a `mailto:` or `https:` URI. Unset: the issuer when
    /// it is https, else `mailto:postmaster@` its host.
    pub contact: Option<String>,
    /// Send to push services on private, loopback and link-local addresses
    /// (a UnifiedPush or ntfy server on the operator's own network). Off:
    /// an endpoint a phone registers cannot point the server inside the network.
    pub private_push_services: bool,
}

impl Config {
    /// Whether push approval is on: `[factors] push`, or by default when the issuer's host is a name.
    pub fn push_enabled(&self) -> bool {
        self.factors.push.unwrap_or_else(|| url::Url::parse(&self.issuer).is_ok_and(|u| matches!(u.host(), Some(url::Host::Domain(_)))))
    }

    /// The VAPID contact (see [`PushConfig::contact`]).
    pub fn push_contact(&self) -> String {
        if let Some(contact) = &self.push.contact {
            return contact.clone();
        }
        match url::Url::parse(&self.issuer) {
            Ok(u) if u.scheme() == "https" => self.origin(),
            Ok(u) => format!("mailto:postmaster@{}", u.host_str().unwrap_or("localhost")),
            Err(_) => "mailto:postmaster@localhost".into(),
        }
    }
}

/// `[webauthn]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// When not empty, registration requires an attestation from one of
    /// these authenticator models (and no other model is accepted).
    pub allowed_authenticators: Vec<AllowedAuthenticatorConfig>,
}

/// `[[webauthn.allowed_authenticators]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedAuthenticatorConfig {
    /// The model's AAGUID.
    pub aaguid: String,
    /// Its name, shown to users.
    pub name: String,
    /// PEM file with the manufacturer's attestation root certificate.
    pub ca_file: PathBuf,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[password]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Minimum length.
    pub min_length: usize,
    /// Maximum length.
    pub max_length: usize,
    /// Minimum zxcvbn score (0–4).
    pub min_score: u8,
    /// Argon2id memory (KiB).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Hashes computed at once (default: number of CPUs).
    pub max_concurrent_hashes: usize,
    /// Hashes that may wait for a free hashing thread; beyond them a sign-in
    /// is answered 503 with `Retry-After` at once (default: 16 per thread).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiting_hashes: Option<usize>,
    /// New passwords (and passwords at sign-in) checked against breaches:
    /// "off", "offline" (the bundled list) or "online" (also the range API).
    pub breached_check: String,
    /// The k-anonymity range API the online check asks.
    pub breached_range_url: String,
}

impl PasswordConfig {
    /// Hashes waiting per hashing thread when `max_waiting_hashes` is not set:
    /// at the default cost a thread does about 45 hashes a second, so the
    /// last one waiting starts within about a third of a second.
    pub const WAITING_PER_THREAD: usize = 16;

    /// The waiting room's size.
    pub fn max_waiting_hashes(&self) -> usize {
        self.max_waiting_hashes.unwrap_or(self.max_concurrent_hashes.saturating_mul(Self::WAITING_PER_THREAD))
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        let policy = portcullis_core::password::PasswordPolicy::default();
        let cost = portcullis_core::password::Argon2Cost::default();
        Self {
            min_length: policy.min_length,
            max_length: policy.max_length,
            min_score: policy.min_score,
            argon2_memory_kib: cost.memory_kib,
            argon2_iterations: cost.iterations,
            argon2_parallelism: cost.parallelism,
            max_concurrent_hashes: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            max_waiting_hashes: None,
            breached_check: "offline".into(),
            breached_range_url: "https://api.pwnedpasswords.com/range".into(),
        }
    }
}

/// `[lockout]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Wrong passwords that lock an account.
    pub max_failures: u32,
    /// Wrong second-step answers that lock an account (counted apart; a correct password does not reset them).
    pub max_second_step_failures: u32,
    /// Lock duration (seconds).
    pub lock_seconds: i64,
    /// Failures older than this are forgotten (seconds).
    pub failure_window_seconds: i64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        let p = portcullis_core::lockout::LockoutPolicy::default();
        Self {
            max_failures: p.max_failures,
            max_second_step_failures: p.max_second_step_failures,
            lock_seconds: p.lock_seconds,
            failure_window_seconds: p.failure_window_seconds,
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Inactivity that ends a session (seconds).
    pub idle_timeout_seconds: i64,
    /// Age that ends a session (seconds).
    pub absolute_timeout_seconds: i64,
    /// Age of the last sign-in after which adding or removing a factor asks to sign in again (seconds).
    pub reauthenticate_after_seconds: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let p = portcullis_core::session::SessionPolicy::default();
        Self {
            idle_timeout_seconds: p.idle_timeout,
            absolute_timeout_seconds: p.absolute_timeout,
            reauthenticate_after_seconds: p.reauthenticate_after,
        }
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sign-in attempts per IP per minute.
    pub sign_in_per_minute: u32,
    /// Sign-ups per IP per minute.
    pub sign_up_per_minute: u32,
    /// Emails requested per IP per minute.
    pub send_email_per_minute: u32,
    /// Authorization requests that wait for a sign-in, per IP per minute.
    pub authorize_per_minute: u32,
    /// Dynamic client registrations per IP per minute.
    pub register_client_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let r = portcullis_core::rate_limit::RateLimits::default();
        Self {
            sign_in_per_minute: r.sign_in_per_minute,
            sign_up_per_minute: r.sign_up_per_minute,
            send_email_per_minute: r.send_email_per_minute,
            authorize_per_minute: r.authorize_per_minute,
            register_client_per_minute: r.register_client_per_minute,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://localhost:8080".into(),
            data_dir: PathBuf::from("./portcullis-data"),
            database_url: None,
            smtp: None,
            sms: SmsSettings::default(),
            password: PasswordConfig::default(),
            lockout: LockoutConfig::default(),
            session: SessionConfig::default(),
            rate_limit: RateLimitConfig::default(),
            mfa: MfaConfig::default(),
            factors: FactorsConfig::default(),
            webauthn: WebauthnConfig::default(),
            push: PushConfig::default(),
            messages: MessagesConfig::default(),
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            shutdown_grace_seconds: 30,
            key_reload_seconds: 60,
            policy: PolicyConfig::default(),
            clients: std::collections::BTreeMap::new(),
            registration: RegistrationConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// Settings given as command-line flags (highest precedence).
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlagOverrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--issuer`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads and validates the layered configuration.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config: file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("PORTCULLIS_").split("__").ignore(&["config", "log"]);
        Self::extract(figment.merge(TextEnv(env)).merge(Serialized::defaults(flags)))
    }

    /// A configuration from TOML text alone (defaults for the rest), validated:
    /// the file half of [`Config::load`], for the fuzz target (`fuzz/`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)))
    }

    /// The configuration the layers give, validated.
    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        // Lossy: a number or boolean setting given as text (as the environment gives it) is read from the text.
        let config: Config = figment.extract_lossy().map_err(|e| ConfigError(describe(&e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.trusted_proxy_ranges()?;
        self.adaptive_policy()?;
        if !(1..=3600).contains(&self.key_reload_seconds) {
            return Err(ConfigError("key_reload_seconds: must be between 1 and 3600".into()));
        }
        if !(1..=36_500).contains(&self.policy.audit_retention_days) {
            return Err(ConfigError("policy.audit_retention_days: must be between 1 and 36500".into()));
        }
        for (id, policy) in &self.clients {
            policy.validate().map_err(|e| ConfigError(format!("clients.{id}.{e}")))?;
        }
        for who in &self.policy.mfa_required_for {
            if !matches!(who.as_str(), EVERYONE | ROLE_ADMIN | ROLE_USER) {
                return Err(ConfigError(format!("policy.mfa_required_for: {who:?} is not one of everyone, admin, user")));
            }
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| ConfigError(format!("issuer: {e}: {:?}", self.issuer)))?;
        if !matches!(issuer.scheme(), "http" | "https")
            || issuer.host_str().is_none()
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(ConfigError(format!("issuer: must be an http(s) URL without query or fragment, got {:?}", self.issuer)));
        }
        // Every page, link, redirect and cookie is served from the origin's root, so an
        // issuer with a path would hand out URLs that do not exist: refused at start-up
        // rather than failing on the first form.
        if issuer.path() != "/" {
            return Err(ConfigError(format!(
                "issuer: a path ({:?}) is not supported; serve Portcullis at the root of its own origin (e.g. https://id.example.com), got {:?}",
                issuer.path(),
                self.issuer
            )));
        }
        if self.password.min_length < 8 || self.password.max_length < 64 || self.password.max_length < self.password.min_length {
            return Err(ConfigError("password: min_length must be at least 8 and max_length at least 64 (NIST SP 800-63B)".into()));
        }
        if self.password.min_score > 4 {
            return Err(ConfigError("password.min_score: must be between 0 and 4".into()));
        }
        if portcullis_core::breached::BreachedCheck::parse(&self.password.breached_check).is_none() {
            return Err(ConfigError("password.breached_check: must be \"off\", \"offline\" or \"online\"".into()));
        }
        if self.password.breached_check == "online" && !https_or_loopback(&self.password.breached_range_url) {
            return Err(ConfigError("password.breached_range_url: must be https (or http to a loopback address)".into()));
        }
        if portcullis_oidc::registration::RegistrationMode::parse(&self.registration.mode).is_none() {
            return Err(ConfigError("registration.mode: must be \"off\", \"token\" or \"open\"".into()));
        }
        self.registration.policy.validate().map_err(|e| ConfigError(format!("registration.policy: {e}")))?;
        if self.password.max_concurrent_hashes == 0 {
            return Err(ConfigError("password.max_concurrent_hashes: must be at least 1".into()));
        }
        if self.lockout.max_failures == 0
            || self.lockout.max_second_step_failures == 0
            || self.lockout.lock_seconds <= 0
            || self.lockout.failure_window_seconds <= 0
        {
            return Err(ConfigError(
                "lockout: max_failures, max_second_step_failures, lock_seconds and failure_window_seconds must be positive".into(),
            ));
        }
        if !(0..=365).contains(&self.factors.email_blocked_after_reset_days) {
            return Err(ConfigError("factors.email_blocked_after_reset_days: must be between 0 and 365".into()));
        }
        if !(60..=900).contains(&self.mfa.code_lifetime_seconds) {
            return Err(ConfigError("mfa.code_lifetime_seconds: must be between 60 and 900".into()));
        }
        if !(1..=400).contains(&self.mfa.remember_browser_days) {
            return Err(ConfigError("mfa.remember_browser_days: must be between 1 and 400".into()));
        }
        if self.session.idle_timeout_seconds <= 0
            || self.session.absolute_timeout_seconds <= 0
            || self.session.reauthenticate_after_seconds <= 0
        {
            return Err(ConfigError("session: timeouts must be positive".into()));
        }
        if self.factors.email_passwordless && !self.factors.email {
            return Err(ConfigError("factors.email_passwordless: needs factors.email = true (it sends the same codes)".into()));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!("database_url: must start with sqlite: or postgres://, got {url:?}")));
        }
        Ok(())
    }

    /// The public origin (issuer without a trailing slash).
    pub fn origin(&self) -> String {
        self.issuer.trim_end_matches('/').to_owned()
    }

    /// `trusted_proxies` parsed; a bare address is a range of one.
    pub fn trusted_proxy_ranges(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                parse_network(p).ok_or_else(|| ConfigError(format!("trusted_proxies: {p:?} is neither an IP address nor a CIDR range")))
            })
            .collect()
    }

    /// The adaptive rules, validated: unique names, real networks, country
    /// codes, known roles, and a GeoIP database when a rule needs one.
    pub fn adaptive_policy(&self) -> Result<AdaptivePolicy, ConfigError> {
        let p = &self.policy;
        if !(p.max_travel_kmh.is_finite() && p.max_travel_kmh > 0.0) {
            return Err(ConfigError("policy.max_travel_kmh: must be a positive number".into()));
        }
        let mut rules = Vec::new();
        for (i, r) in p.rules.iter().enumerate() {
            let bad = |m: String| ConfigError(format!("policy.rules[{i}] ({:?}): {m}", r.name));
            if r.name.trim().is_empty() || p.rules[..i].iter().any(|o| o.name == r.name) {
                return Err(bad("needs a name of its own".into()));
            }
            let networks = r
                .networks
                .iter()
                .map(|n| parse_network(n).ok_or_else(|| bad(format!("networks: {n:?} is neither an IP address nor a CIDR range"))))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(c) = r.countries.iter().find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic())) {
                return Err(bad(format!("countries: {c:?} is not a two-letter ISO 3166 code")));
            }
            if let Some(role) = r.roles.iter().find(|role| !matches!(role.as_str(), ROLE_ADMIN | ROLE_USER)) {
                return Err(bad(format!("roles: {role:?} is not admin or user")));
            }
            if (!r.countries.is_empty() || r.impossible_travel.is_some()) && p.geoip_database.is_none() {
                return Err(bad("countries and impossible_travel need policy.geoip_database".into()));
            }
            rules.push(Rule {
                name: r.name.clone(),
                clients: r.clients.clone(),
                roles: r.roles.clone(),
                networks,
                countries: r.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
                new_device: r.new_device,
                min_failures_last_hour: r.failures_last_hour,
                impossible_travel: r.impossible_travel,
                action: r.action,
            });
        }
        Ok(AdaptivePolicy { rules, max_travel_kmh: p.max_travel_kmh })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("portcullis.db").display()))
    }
}

/// The `PORTCULLIS_…` environment with every scalar kept as the text it was.
/// figment's own reading types a value by its looks, so a phone number
/// (`+15005550006`), a password of digits (`007123`) or a token (`true`)
/// would reach a string setting as a number or a boolean (refused, or worse,
/// `007123` read as 7123); numbers and booleans are read from the text by
/// `extract_lossy`. Arrays and tables (`[a, b]`) are still parsed.
struct TextEnv(Env);

impl figment::Provider for TextEnv {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::Value;
        let mut dict = figment::value::Dict::new();
        for (key, text) in self.0.iter() {
            let parsed: Value = text.parse().unwrap_or_else(|_| Value::from(text.clone()));
            let value = match parsed {
                Value::Array(..) | Value::Dict(..) => parsed,
                _ => Value::from(text),
            };
            if let Some(nested) = figment::util::nest(key.as_str(), value).into_dict() {
                merge_dicts(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Merges `other` into `into`, table by table (later keys win).
fn merge_dicts(into: &mut figment::value::Dict, other: figment::value::Dict) {
    use figment::value::Value;
    for (k, v) in other {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => merge_dicts(existing, incoming),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// A CIDR range, or a bare address as a range of one.
fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// One line naming the offending key and where its value came from.
fn describe(e: &figment::Error) -> String {
    let mut key = e.path.join(".");
    if key.is_empty() {
        key = "config".into();
    }
    let source = match e.metadata.as_ref().map(|m| m.name.as_ref()) {
        Some(n) if n.contains("FlagOverrides") => " (from a command-line flag)".to_owned(),
        Some(n) if n.contains("Config") => String::new(),
        Some(n) => format!(" (from {n})"),
        None => String::new(),
    };
    format!("{key}: {}{source}", e.kind).replace('\n', " ")
}

/// An `https` URL, or an `http` one to a loopback address (a local stand-in).
fn https_or_loopback(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => true,
        Ok(u) if u.scheme() == "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;
    use portcullis_core::oauth::MfaPolicy;

    #[test]
    fn defaults_match_the_interface_contract() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://localhost:8080");
        assert_eq!(c.data_dir, PathBuf::from("./portcullis-data"));
        assert_eq!(c.database_url(), "sqlite:./portcullis-data/portcullis.db");
        assert!(c.smtp.is_none());
    }

    #[test]
    fn the_documented_factors_section_is_accepted() {
        figment::Jail::expect_with(|jail| {
            // The `[factors]` example of the design brief (§2); its email_requires_other_factor
            // is no longer the default (true since the sign-in machine) but is still accepted.
            jail.create_file(
                "f.toml",
                "[factors]\ntotp = true\nwebauthn = true\nemail = true\nemail_requires_other_factor = false\nemail_passwordless = false\nsms = true\n\
                 [messages]\ntemplates_dir = \"/etc/portcullis/templates\"\n",
            )?;
            let c = Config::load(Some(Path::new("f.toml")), &FlagOverrides::default()).unwrap();
            let f = &c.factors;
            assert!(f.totp && f.webauthn && f.email && !f.email_requires_other_factor && !f.email_passwordless && f.sms);
            let d = Config::default().factors;
            assert!(d.email_requires_other_factor && d.email_counts_as_mfa && d.email_blocked_after_reset_days == 7, "secure defaults");
            assert_eq!(c.messages.templates_dir.as_deref(), Some(Path::new("/etc/portcullis/templates")));
            jail.create_file("p.toml", "[factors]\nemail = false\nemail_passwordless = true\n")?;
            let e = Config::load(Some(Path::new("p.toml")), &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("email_passwordless"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn flag_beats_environment_beats_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "issuer = \"https://file.example\"\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"/file\"\n[lockout]\nmax_failures = 7\n",
            )?;
            jail.set_env("PORTCULLIS_ISSUER", "https://env.example");
            jail.set_env("PORTCULLIS_LISTEN", "127.0.0.1:9001");
            jail.set_env("PORTCULLIS_LOCKOUT__LOCK_SECONDS", "60");
            let flags = FlagOverrides { issuer: Some("https://flag.example".into()), ..Default::default() };
            let c = Config::load(Some(Path::new("p.toml")), &flags).unwrap();
            assert_eq!(c.issuer, "https://flag.example");
            assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
            assert_eq!(c.data_dir, PathBuf::from("/file"));
            assert_eq!((c.lockout.max_failures, c.lockout.lock_seconds), (7, 60));
            Ok(())
        });
    }

    #[test]
    fn environment_values_reach_string_settings_as_written() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS_SMS__PROVIDER", "twilio");
            jail.set_env("PORTCULLIS_SMS__TWILIO__FROM", "+15005550006");
            jail.set_env("PORTCULLIS_SMS__TWILIO__ACCOUNT_SID", "0012345");
            jail.set_env("PORTCULLIS_SMS__TWILIO__AUTH_TOKEN", "true");
            jail.set_env("PORTCULLIS_SMTP__HOST", "1.5");
            jail.set_env("PORTCULLIS_SMTP__PORT", "2525");
            jail.set_env("PORTCULLIS_SMTP__FROM", "no-reply@example.com");
            jail.set_env("PORTCULLIS_SMTP__USERNAME", "12345");
            jail.set_env("PORTCULLIS_SMTP__PASSWORD", "007123");
            jail.set_env("PORTCULLIS_POLICY__MFA_REQUIRED_FOR", "[admin]");
            jail.set_env("PORTCULLIS_LOCKOUT__MAX_FAILURES", "7");
            jail.set_env("PORTCULLIS_FACTORS__SMS", "false");
            let c = Config::load(None, &FlagOverrides::default()).map_err(|e| e.to_string())?;
            let twilio = c.sms.twilio.clone().unwrap();
            assert_eq!(
                (twilio.from.as_deref(), twilio.account_sid.as_str(), twilio.auth_token.as_str()),
                (Some("+15005550006"), "0012345", "true")
            );
            let smtp = c.smtp.clone().unwrap();
            assert_eq!((smtp.host.as_str(), smtp.port), ("1.5", 2525));
            assert_eq!((smtp.username.as_deref(), smtp.password.as_deref()), (Some("12345"), Some("007123")), "leading zeros kept");
            assert_eq!(c.policy.mfa_required_for, ["admin"]);
            assert_eq!(c.lockout.max_failures, 7, "numbers are still read from their text");
            assert!(!c.factors.sms, "and booleans");
            Ok(())
        });
    }

    /// Every string setting (found by walking a configuration with every
    /// optional section present), given from the environment as digits or as `true`, is read as that text:
    /// a validation may refuse the value, but never as a number or a boolean.
    #[test]
    fn every_string_setting_takes_digits_and_booleans_from_the_environment() {
        fn strings(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::String(_) => out.push(prefix.to_owned()),
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                        strings(&key, v, out);
                    }
                }
                _ => {}
            }
        }
        // Every optional section present, so its strings are found too.
        const FULL: &str = "database_url = \"postgres://db/p\"\n\
            [smtp]\nhost = \"smtp.example.com\"\nport = 587\nusername = \"u\"\npassword = \"p\"\nfrom = \"a@example.com\"\n\
            [sms]\nprovider = \"twilio\"\n[sms.twilio]\nbase_url = \"https://api.twilio.com\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\nfrom = \"+15005550006\"\n\
            [sms.webhook]\nurl = \"https://gw.example/send\"\nsecret = \"s\"\n\
            [messages]\ntemplates_dir = \"/etc/portcullis/templates\"\n\
            [policy]\ngeoip_database = \"/var/lib/GeoIP/City.mmdb\"\n";
        let full = Config::from_toml(FULL).unwrap();
        let mut keys = Vec::new();
        strings("", &serde_json::to_value(&full).unwrap(), &mut keys);
        for key in ["issuer", "data_dir", "smtp.password", "sms.twilio.from", "sms.webhook.secret", "policy.geoip_database"] {
            assert!(keys.contains(&key.to_owned()), "{key} not among {keys:?}");
        }
        for key in &keys {
            for text in ["0012345", "true"] {
                figment::Jail::expect_with(|jail| {
                    jail.create_file("full.toml", FULL)?;
                    jail.set_env(format!("PORTCULLIS_{}", key.replace('.', "__").to_uppercase()), text);
                    match Config::load(Some(Path::new("full.toml")), &FlagOverrides::default()) {
                        Ok(c) => {
                            let mut at = serde_json::to_value(&c).unwrap();
                            for part in key.split('.') {
                                at = at[part].take();
                            }
                            assert_eq!(at, serde_json::Value::String(text.into()), "{key}");
                        }
                        Err(e) => assert!(!e.to_string().contains("invalid type"), "{key} = {text}: {e}"),
                    }
                    Ok(())
                });
            }
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[lockout]\nmax_failures = \"many\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("lockout.max_failures"), "{e}");
            assert!(!e.contains('\n'));
            jail.create_file("unknown.toml", "colour = \"blue\"\n")?;
            let e = Config::load(Some(Path::new("unknown.toml")), &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("colour"), "{e}");
            jail.set_env("PORTCULLIS_LISTEN", "not-an-address");
            let e = Config::load(None, &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("listen"), "{e}");
            Ok(())
        });
        let e = Config::load(None, &FlagOverrides { issuer: Some("ftp://x".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("issuer"), "{e}");
        for with_path in ["https://example.com/id", "https://example.com/id/"] {
            let e = Config::load(None, &FlagOverrides { issuer: Some(with_path.into()), ..Default::default() }).unwrap_err().to_string();
            assert!(e.contains("a path (\"/id") && e.contains("root of its own origin"), "{e}");
        }
        assert!(Config::load(None, &FlagOverrides { issuer: Some("https://example.com/".into()), ..Default::default() }).is_ok());
    }

    #[test]
    fn adaptive_rules_are_read_in_order_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "good.toml",
                r#"
                [policy]
                mfa_required_for = ["admin"]
                geoip_database = "/srv/GeoLite2-City.mmdb"
                [[policy.rules]]
                name = "office"
                networks = ["10.0.0.0/8", "192.0.2.1"]
                action = "allow_single_factor"
                [[policy.rules]]
                name = "abroad"
                countries = ["cn"]
                failures_last_hour = 3
                action = "deny"
                [[policy.rules]]
                name = "elsewhere"
                action = "require_mfa"
                "#,
            )?;
            let config = Config::load(Some(Path::new("good.toml")), &FlagOverrides::default()).unwrap();
            let policy = config.adaptive_policy().unwrap();
            let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["office", "abroad", "elsewhere"]);
            assert_eq!((policy.rules[0].networks.len(), policy.rules[1].countries.clone()), (2, vec!["CN".to_owned()]));
            assert_eq!((policy.rules[1].min_failures_last_hour, policy.rules[2].action), (Some(3), RuleAction::RequireMfa));
            for (bad, key) in [
                ("[[policy.rules]]\nname = \"x\"\nnetworks = [\"10.0.0.0/33\"]\naction = \"deny\"\n", "10.0.0.0/33"),
                ("[[policy.rules]]\nname = \"x\"\naction = \"shrug\"\n", "action"),
                ("[[policy.rules]]\nname = \"x\"\ncountries = [\"GB\"]\naction = \"deny\"\n", "geoip_database"),
                ("[[policy.rules]]\nname = \"x\"\nroles = [\"root\"]\naction = \"deny\"\n", "root"),
                ("[policy]\nmfa_required_for = [\"nobody\"]\n", "nobody"),
            ] {
                jail.create_file("bad.toml", bad)?;
                let e = Config::load(Some(Path::new("bad.toml")), &FlagOverrides::default()).unwrap_err().to_string();
                assert!(e.contains(key), "{bad}: {e}");
            }
            Ok(())
        });
    }

    #[test]
    fn client_policies_can_be_pinned_in_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "good.toml",
                "[clients.payroll]\nmfa = \"required\"\nallowed_factors = [\"webauthn\"]\nmin_acr = \"phr\"\nremember_browser_days = 1\n",
            )?;
            let config = Config::load(Some(Path::new("good.toml")), &FlagOverrides::default()).unwrap();
            let p = &config.clients["payroll"];
            assert_eq!(
                (p.mfa, p.allowed_factors.clone(), p.min_acr.as_deref()),
                (MfaPolicy::Required, vec!["webauthn".to_owned()], Some("phr"))
            );
            assert_eq!((p.remember_browser_days, p.allow_remember), (Some(1), true));
            jail.create_file("bad.toml", "[clients.payroll]\nallowed_factors = [\"carrier-pigeon\"]\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("clients.payroll.allowed_factors") && e.contains("carrier-pigeon"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("good.toml", "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\", \"::1\"]\n")?;
            let c = Config::load(Some(Path::new("good.toml")), &FlagOverrides::default()).unwrap();
            let ranges: Vec<String> = c.trusted_proxy_ranges().unwrap().iter().map(ToString::to_string).collect();
            assert_eq!(ranges, ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]);
            jail.create_file("bad.toml", "trusted_proxies = [\"10.0.0.0/33\"]\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &FlagOverrides::default()).unwrap_err().to_string();
            assert!(e.contains("trusted_proxies") && e.contains("10.0.0.0/33"), "{e}");
            Ok(())
        });
    }
}
