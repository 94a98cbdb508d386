//! `portcullis`: command line of the identity provider.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use portcullis::config::{Config, FlagOverrides, LogFormat};
use portcullis::{Application, StartError, open_store};
use portcullis_core::audit::{AuditFilter, AuditFollower, AuditKind, RequestOrigin};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::oauth::{ClientPolicy, FACTOR_KEYS, MfaPolicy, SigningAlg};
use portcullis_oidc::clients::NewClient;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "Self-hosted OpenID Connect identity provider with multi-factor authentication")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Public base URL [default: http://localhost:8080].
    #[arg(long, global = true)]
    issuer: Option<String>,
    /// Data directory [default: ./portcullis-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite:PATH or postgres://…) [default: SQLite in the data directory].
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask the server on the listen address whether it is ready (`GET /readyz`): exit 0 if it is
    /// (a container's health check, without curl in the image).
    Ready,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OpenID Connect clients (applications).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage token-signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit log of security events, or check its chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a backup (SQLite): a consistent snapshot of the database taken
    /// while servers run, the secrets and a manifest, in one new file (mode 0600).
    Backup {
        /// The backup file to create (never overwritten).
        #[arg(long)]
        to: PathBuf,
        /// Seal the backup with a passphrase read from standard input (at least 12 characters).
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Check a backup: every file against the manifest, the database's integrity, its schema.
    VerifyBackup {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The backup is sealed: read its passphrase from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Restore a backup into the data directory (stop every server using it first).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The backup is sealed: read its passphrase from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
        /// Replace a database and secrets already in the data directory.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
struct AuditFilterArgs {
    /// Only this account's events.
    #[arg(long)]
    user: Option<String>,
    /// Only this kind of event (e.g. sign_in_failed, factor_added, account_locked).
    #[arg(long)]
    event: Option<String>,
    /// Not before: Unix seconds, or an age like 30m, 24h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Not after: Unix seconds, or an age like 30m, 24h, 7d.
    #[arg(long)]
    until: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the latest events as JSON lines, oldest first; with --follow, keep printing new ones.
    Tail {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// How many past events to print first.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Keep running and print events as they are recorded (until interrupted).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Print every matching event as one JSON array, oldest first.
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Check the log's chain of sealed events: prints what it found as JSON
    /// (the head to keep elsewhere, or the first place where it breaks) and
    /// exits 1 if an event was changed, inserted, moved or deleted.
    Verify,
}

/// A client's sign-in policy, as options.
#[derive(Args)]
struct PolicyArgs {
    /// Second-factor policy [default: optional].
    #[arg(long, value_parser = ["required", "optional", "off"])]
    mfa: Option<String>,
    #[arg(long, value_delimiter = ',', help = allowed_factors_help())]
    allowed_factors: Option<Vec<String>>,
    /// How old a remembered browser may be for this client (days; 0: the server's setting).
    #[arg(long)]
    remember_browser_days: Option<i64>,
    /// The least acr a sign-in must reach: mfa, phr, or none.
    #[arg(long, value_parser = ["mfa", "phr", "none"])]
    min_acr: Option<String>,
}

/// A `--scope` list as given (comma-separated, spaces trimmed, empty entries dropped).
fn scope_list(given: Vec<String>) -> Vec<String> {
    given.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// The `--allowed-factors` help, naming every factor key.
fn allowed_factors_help() -> String {
    format!("Factors that count as the second step, comma-separated ({}); \"\" for all", FACTOR_KEYS.join(", "))
}

impl PolicyArgs {
    /// `policy` with the options given applied.
    fn apply(self, mut policy: ClientPolicy) -> ClientPolicy {
        if let Some(m) = self.mfa.as_deref().and_then(MfaPolicy::parse) {
            policy.mfa = m;
        }
        if let Some(f) = self.allowed_factors {
            policy.allowed_factors = f.into_iter().map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect();
        }
        if let Some(days) = self.remember_browser_days {
            policy.remember_browser_days = (days != 0).then_some(days);
        }
        if let Some(acr) = self.min_acr {
            policy.min_acr = (acr != "none").then_some(acr);
        }
        policy
    }
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Print a single-use initial access token for one dynamic client registration (valid 24 hours; needs `[registration] mode = "token"`).
    RegistrationToken,
    /// Register an application; prints JSON with client_id and (confidential clients) client_secret.
    Create {
        #[arg(long)]
        name: String,
        /// The client id to use (letters, digits, '.', '_', '-') [default: random].
        #[arg(long)]
        client_id: Option<String>,
        /// Exact redirect URI (repeatable).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE mandatory.
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Where RP-initiated logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// ID-token signing algorithm.
        #[arg(long, default_value = "ES256", value_parser = ["ES256", "RS256"])]
        signing_alg: String,
        /// Always ask for a second factor, even from a browser the user asked to remember.
        #[arg(long)]
        no_remember_browser: bool,
        /// Scopes the client's own tokens (client_credentials) may carry, comma-separated [default: none].
        #[arg(long = "scope", value_delimiter = ',')]
        service_scopes: Vec<String>,
    },
    /// Change an application's sign-in policy (only the options given change).
    Update {
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Whether a remembered browser may stand in for the second factor.
        #[arg(long)]
        remember_browser: Option<bool>,
        /// Scopes the client's own tokens (client_credentials) may carry, comma-separated; "" for none.
        #[arg(long = "scope", value_delimiter = ',')]
        service_scopes: Option<Vec<String>>,
        /// Replaces the redirect URIs with these (repeatable; give them all).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replaces the post-logout redirect URIs with these (repeatable; given with --redirect-uri).
        #[arg(long = "post-logout-redirect-uri", requires = "redirect_uris")]
        post_logout_redirect_uris: Vec<String>,
    },
    /// Give a confidential client a new secret (printed once; the old one stops working).
    RotateSecret {
        #[arg(long)]
        client_id: String,
    },
    /// List clients as JSON lines.
    List,
    /// Delete a client and everything issued to it.
    Delete {
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add new signing keys (ES256 and RS256); old keys stay published until their tokens expire.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (counts as email-verified). Reads the password from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Grant the admin role.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users as JSON lines.
    List,
    /// Lift a lockout.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Delete a user and everything that belongs to them.
    Delete {
        #[arg(long)]
        email: String,
    },
    /// Remove every second factor of a user (lost phone) and end their sessions.
    ResetMfa {
        #[arg(long)]
        email: String,
    },
    /// Require the user to use a second factor (they enroll at next sign-in); --off lifts it.
    RequireMfa {
        #[arg(long)]
        email: String,
        #[arg(long)]
        off: bool,
    },
    /// Give a user the admin role (the admin console also needs a second factor); --revoke takes it away.
    GrantAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Give a user the read-only auditor role (reads the admin console, changes nothing; a second factor is needed as for admins); --revoke takes it away.
    GrantAuditor {
        #[arg(long)]
        email: String,
        #[arg(long)]
        revoke: bool,
    },
    /// List the applications holding access to a user's account, as JSON lines.
    Grants {
        #[arg(long)]
        email: String,
    },
    /// Take an application's access to a user's account away: its refresh tokens, codes and access tokens stop working.
    RevokeGrant {
        #[arg(long)]
        email: String,
        /// The application's client id (as `user grants` lists it).
        #[arg(long)]
        client: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = FlagOverrides {
        listen: cli.global.listen.clone(),
        issuer: cli.global.issuer.clone(),
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
    };
    let config = match Config::load(cli.global.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config, matches!(cli.command, Command::Serve));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", e.to_string().replace('\n', " "));
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn init_logging(config: &Config, serving: bool) {
    // Commands for scripts keep stderr for their one-line error.
    let default = if serving { "info" } else { "error" };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(command: Command, config: Config) -> Result<(), StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => serve(config, clock).await,
        Command::Ready => ready(config.listen).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("migrations applied ({})", store.backend_name());
            Ok(())
        }
        Command::User(cmd) => user(cmd, config, clock).await,
        Command::Client(cmd) => client(cmd, config, clock).await,
        Command::Audit(cmd) => audit(cmd, config, clock).await,
        Command::Backup { to, passphrase_stdin } => {
            let passphrase = passphrase_stdin.then(read_passphrase).transpose()?;
            // Not migrated: a backup taken by a newer binary must not upgrade the running server's database.
            let url = config.database_url();
            if let Some(path) = portcullis::sqlite_path(&url).filter(|p| !p.exists()) {
                return Err(StartError::Other(format!("no database at {}", path.display())));
            }
            let store = portcullis_store::Store::connect(&url).await?;
            let written = portcullis::backup::write(&config, &store, &to, passphrase.as_deref().map(|p| p.as_str()), clock.now()).await;
            store.close().await;
            let manifest = written.map_err(|e| StartError::Other(e.to_string()))?;
            println!("{}", serde_json::json!({ "backup": to, "sealed": passphrase.is_some(), "manifest": manifest }));
            Ok(())
        }
        Command::VerifyBackup { from, passphrase_stdin } => {
            let passphrase = passphrase_stdin.then(read_passphrase).transpose()?;
            let near = std::env::temp_dir();
            let unpacked = portcullis::backup::unpack(&from, passphrase.as_deref().map(|p| p.as_str()), &near)
                .await
                .map_err(|e| StartError::Other(e.to_string()))?;
            println!("{}", serde_json::json!({ "ok": true, "manifest": unpacked.manifest }));
            Ok(())
        }
        Command::Restore { from, passphrase_stdin, force } => {
            let passphrase = passphrase_stdin.then(read_passphrase).transpose()?;
            let manifest = portcullis::backup::restore(&config, &from, passphrase.as_deref().map(|p| p.as_str()), force)
                .await
                .map_err(|e| StartError::Other(e.to_string()))?;
            println!("{}", serde_json::json!({ "restored": config.data_dir, "manifest": manifest }));
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let app = Application::build(&config, clock.clone()).await?;
            let kids = app.state.provider().rotate_keys(clock.now()).await?;
            println!("{}", serde_json::json!({ "rotated_in": kids }));
            app.store.close().await;
            Ok(())
        }
    }
}

async fn serve(config: Config, clock: Arc<dyn Clock>) -> Result<(), StartError> {
    let app = Application::build(&config, clock).await?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| StartError::Other(format!("listen {}: {e}", config.listen)))?;
    let metrics = match config.metrics.listen {
        Some(at) => {
            let handle = portcullis_server::metrics::install().map_err(StartError::Other)?;
            let listener = tokio::net::TcpListener::bind(at).await.map_err(|e| StartError::Other(format!("[metrics] listen {at}: {e}")))?;
            tracing::info!(listen = %at, "metrics at /metrics");
            Some(tokio::spawn(portcullis_server::metrics::serve_metrics(listener, app.state.clone(), handle, std::future::pending())))
        }
        None => None,
    };
    // No default credentials: while there is no administrator, the operator who reads this log makes the first.
    if let Some(link) = app.state.accounts().first_run().setup_link(app.state.now()).await.map_err(|e| StartError::Other(e.to_string()))? {
        tracing::warn!(
            %link,
            "no administrator yet: open this link within an hour to create the first one (it works once; each start logs a new one until then)"
        );
    }
    tracing::info!(listen = %config.listen, issuer = %config.issuer, database = app.store.backend_name(), "Portcullis is ready");
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    portcullis_server::serve(listener, app.state, shutdown_signal(), grace).await.map_err(|e| StartError::Other(format!("server: {e}")))?;
    // Scrapes are short reads; the metrics listener stops with the server.
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    // Closing waits for connections still lent; a request stuck past the grace must not hold the exit.
    if tokio::time::timeout(std::time::Duration::from_secs(5), app.store.close()).await.is_err() {
        tracing::warn!("stopped without closing every database connection");
    }
    tracing::info!("stopped");
    Ok(())
}

/// `GET /readyz` on the listen address (a wildcard one asked on loopback): Ok for 200.
async fn ready(listen: std::net::SocketAddr) -> Result<(), StartError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut at = listen;
    if at.ip().is_unspecified() {
        at.set_ip(if at.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(at).await?;
        stream.write_all(format!("GET /readyz HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
        let mut head = Vec::new();
        stream.take(64).read_to_end(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(3), ask)
        .await
        .map_err(|_| StartError::Other(format!("{at}: no answer within 3 s")))?
        .map_err(|e| StartError::Other(format!("{at}: {e}")))?;
    let status = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
    if status.split(' ').nth(1) == Some("200") {
        println!("ready");
        Ok(())
    } else {
        Err(StartError::Other(format!("{at}: not ready ({status})")))
    }
}

/// A passphrase from standard input (up to the first line end).
fn read_passphrase() -> Result<Zeroizing<String>, StartError> {
    let mut input = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| StartError::Other(format!("reading the passphrase from standard input: {e}")))?;
    Ok(Zeroizing::new(input.lines().next().unwrap_or_default().to_owned()))
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn user(cmd: UserCommand, config: Config, clock: Arc<dyn Clock>) -> Result<(), StartError> {
    let app = Application::build(&config, clock.clone()).await?;
    let accounts = app.state.accounts();
    let fail = |e: portcullis_core::AccountError| StartError::Other(e.to_string());
    let origin = RequestOrigin::command_line();
    match cmd {
        UserCommand::Create { email, name, admin, password_stdin: _ } => {
            let mut input = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| StartError::Other(format!("reading the password from standard input: {e}")))?;
            let password = input.trim_end_matches(['\n', '\r']);
            let user = accounts.operators().create_user(&email, &name, password, admin, clock.now()).await.map_err(|e| match e {
                portcullis_core::AccountError::Store(portcullis_core::StoreError::Conflict) => {
                    StartError::Other(format!("a user with email {email} already exists"))
                }
                other => fail(other),
            })?;
            let detail = serde_json::json!({ "admin": user.is_admin });
            accounts.audit(AuditKind::UserCreated, Some(user.id), &origin, detail, clock.now()).await.map_err(fail)?;
            println!("{}", serde_json::json!({ "id": user.id.to_string(), "email": user.email.as_str(), "admin": user.is_admin }));
        }
        UserCommand::List => {
            let users = accounts.operators().list_users().await.map_err(fail)?;
            let locked = accounts.operators().locked_after_failures(&users, clock.now()).await.map_err(fail)?;
            for (u, locked) in users.into_iter().zip(locked) {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": u.id.to_string(), "email": u.email.as_str(), "name": u.name,
                        "email_verified": u.email_verified_at.is_some(), "admin": u.is_admin, "auditor": u.is_auditor, "locked": locked,
                        "created_at": u.created_at,
                    })
                );
            }
        }
        UserCommand::Unlock { email } => {
            let was = accounts.operators().unlock(&email, &origin, clock.now()).await.map_err(fail)?;
            println!("{}", if was { format!("{email}: unlocked") } else { format!("{email}: was not locked") });
        }
        UserCommand::ResetMfa { email } => {
            accounts.operators().reset_mfa(&email, &origin, clock.now()).await.map_err(fail)?;
            println!("{email}: second factors removed, sessions ended");
        }
        UserCommand::RequireMfa { email, off } => {
            accounts.operators().require_mfa(&email, !off, &origin, clock.now()).await.map_err(fail)?;
            println!("{email}: MFA {}", if off { "no longer required" } else { "required" });
        }
        UserCommand::GrantAdmin { email, revoke } => {
            accounts.operators().set_admin(&email, !revoke, &origin, clock.now()).await.map_err(fail)?;
            println!("{email}: {}", if revoke { "no longer an admin" } else { "admin" });
        }
        UserCommand::GrantAuditor { email, revoke } => {
            accounts.operators().set_auditor(&email, !revoke, &origin, clock.now()).await.map_err(fail)?;
            println!("{email}: {}", if revoke { "no longer an auditor" } else { "auditor" });
        }
        UserCommand::Grants { email } => {
            let user = accounts.operators().find_user(&email).await.map_err(fail)?;
            for app in app.state.provider().app_access(user.id, clock.now()).await? {
                println!("{}", serde_json::json!(app));
            }
        }
        UserCommand::RevokeGrant { email, client } => {
            let user = accounts.operators().find_user(&email).await.map_err(fail)?;
            if !app.state.provider().remove_app_access(user.id, &client, &origin, clock.now()).await? {
                return Err(StartError::Other(format!("{client} holds no access to {email}")));
            }
            println!("{email}: {client} no longer has access");
        }
        UserCommand::Delete { email } => {
            if !accounts.operators().delete_user(&email, &origin, clock.now()).await.map_err(fail)? {
                return Err(StartError::Other(format!("no user with email {email}")));
            }
            println!("{email}: deleted");
        }
    }
    app.store.close().await;
    Ok(())
}

async fn client(cmd: ClientCommand, config: Config, clock: Arc<dyn Clock>) -> Result<(), StartError> {
    let app = Application::build(&config, clock.clone()).await?;
    let provider = app.state.provider();
    let (clients, operator) = (provider.client_admin(), RequestOrigin::command_line());
    match cmd {
        ClientCommand::Create {
            name,
            client_id,
            redirect_uris,
            public,
            policy,
            post_logout_redirect_uris,
            signing_alg,
            no_remember_browser,
            service_scopes,
        } => {
            let new = NewClient {
                id: client_id,
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                policy: policy.apply(ClientPolicy { allow_remember: !no_remember_browser, ..ClientPolicy::default() }),
                signing_alg: SigningAlg::parse(&signing_alg).unwrap_or_default(),
                service_scopes: scope_list(service_scopes),
            };
            let (c, secret) = clients.register(new, &operator, clock.now()).await?;
            let mut out = client_json(&c);
            if let Some(s) = secret {
                out["client_secret"] = s.into();
            }
            println!("{out}");
        }
        ClientCommand::RegistrationToken => {
            if provider.registration_mode() != portcullis_oidc::registration::RegistrationMode::Token {
                return Err(StartError::Other("registration tokens need [registration] mode = \"token\" in the configuration".into()));
            }
            let token = provider.new_initial_access_token(clock.now()).await?;
            println!(
                "{}",
                serde_json::json!({ "initial_access_token": token, "expires_in": portcullis_oidc::registration::INITIAL_ACCESS_TOKEN_SECONDS })
            );
        }
        ClientCommand::List => {
            for c in provider.clients().await? {
                println!("{}", client_json(&c));
            }
        }
        ClientCommand::Update { client_id, policy, remember_browser, service_scopes, redirect_uris, post_logout_redirect_uris } => {
            let c = provider.client(&client_id).await?.ok_or_else(|| StartError::Other(format!("no client with id {client_id}")))?;
            let mut changed = policy.apply(c.policy);
            if let Some(r) = remember_browser {
                changed.allow_remember = r;
            }
            clients.set_policy(&client_id, &changed, &operator, clock.now()).await?;
            if let Some(scopes) = service_scopes {
                clients.set_service_scopes(&client_id, &scope_list(scopes), &operator, clock.now()).await?;
            }
            if !redirect_uris.is_empty() {
                clients.set_redirect_uris(&client_id, (&redirect_uris, &post_logout_redirect_uris), &operator, clock.now()).await?;
            }
            let c = provider.client(&client_id).await?.ok_or_else(|| StartError::Other(format!("no client with id {client_id}")))?;
            println!("{}", client_json(&c));
        }
        ClientCommand::RotateSecret { client_id } => {
            let secret = clients
                .rotate_secret(&client_id, &operator, clock.now())
                .await?
                .ok_or_else(|| StartError::Other(format!("no confidential client with id {client_id}")))?;
            println!("{}", serde_json::json!({ "client_id": client_id, "client_secret": secret }));
        }
        ClientCommand::Delete { client_id } => {
            if !clients.delete(&client_id, &operator, clock.now()).await? {
                return Err(StartError::Other(format!("no client with id {client_id}")));
            }
            println!("{client_id}: deleted");
        }
    }
    app.store.close().await;
    Ok(())
}

/// `--since`/`--until`: Unix seconds, or an age (`30m`, `24h`, `7d`) before `now`.
fn parse_time(s: &str, now: i64) -> Result<i64, StartError> {
    let bad = || StartError::Other(format!("{s:?} is neither Unix seconds nor an age like 30m, 24h or 7d"));
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(now - n.checked_mul(secs).ok_or_else(bad)?)
}

async fn audit(cmd: AuditCommand, config: Config, clock: Arc<dyn Clock>) -> Result<(), StartError> {
    let app = Application::build(&config, clock.clone()).await?;
    let accounts = app.state.accounts();
    let fail = |e: portcullis_core::AccountError| StartError::Other(e.to_string());
    let args = match &cmd {
        AuditCommand::Tail { filter, .. } | AuditCommand::Export { filter } => filter,
        AuditCommand::Verify => {
            let check = accounts.operators().verify_audit_log().await.map_err(fail);
            app.store.close().await;
            let check = check?;
            println!(
                "{}",
                serde_json::json!({ "ok": check.broken.is_none(), "checked": check.checked,
                "head": { "seq": check.head.0, "chain": check.head.1 }, "unsealed": check.unsealed, "broken": check.broken })
            );
            return match check.broken {
                None => Ok(()),
                Some(b) => Err(StartError::Other(format!("the audit log's chain breaks at place {}: {}", b.seq, b.reason))),
            };
        }
    };
    let now = clock.now();
    let mut filter = AuditFilter {
        user: match &args.user {
            Some(email) => Some(accounts.operators().find_user(email).await.map_err(fail)?.id),
            None => None,
        },
        kind: match &args.event {
            Some(e) => Some(AuditKind::parse(e).ok_or_else(|| {
                let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                StartError::Other(format!("unknown event {e:?}; one of: {}", names.join(", ")))
            })?),
            None => None,
        },
        since: args.since.as_deref().map(|s| parse_time(s, now)).transpose()?,
        until: args.until.as_deref().map(|s| parse_time(s, now)).transpose()?,
        after_id: None,
        limit: 1000,
    };
    match cmd {
        AuditCommand::Tail { lines, follow, .. } => {
            let mut latest = accounts.operators().audit_log(&AuditFilter { limit: lines.max(1), ..filter.clone() }).await.map_err(fail)?;
            latest.reverse();
            let mut last_id = latest.last().map(|e| e.id).unwrap_or(0);
            if lines > 0 {
                for e in &latest {
                    println!("{}", e.to_json());
                }
            }
            if follow {
                if last_id == 0 {
                    // Nothing matched yet: start after whatever is there now.
                    let newest = accounts.operators().audit_log(&AuditFilter { limit: 1, ..AuditFilter::default() }).await.map_err(fail)?;
                    last_id = newest.first().map(|e| e.id).unwrap_or(0);
                }
                let stop = shutdown_signal();
                tokio::pin!(stop);
                let mut follower = AuditFollower::new(last_id);
                loop {
                    let now = std::time::Instant::now();
                    filter.after_id = Some(follower.cursor());
                    loop {
                        let page = accounts.operators().audit_log(&filter).await.map_err(fail)?;
                        let next = page.last().map(|e| e.id).filter(|_| page.len() >= filter.limit as usize);
                        for e in follower.fresh(page, now) {
                            println!("{}", e.to_json());
                        }
                        let Some(next) = next else { break };
                        filter.after_id = Some(next);
                    }
                    follower.settle(now);
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        AuditCommand::Export { .. } => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let write = |e: std::io::Error| StartError::Other(format!("writing the export: {e}"));
            write!(out, "[").map_err(write)?;
            let mut first = true;
            filter.after_id = Some(0);
            loop {
                let page = accounts.operators().audit_log(&filter).await.map_err(fail)?;
                let Some(last) = page.last() else { break };
                filter.after_id = Some(last.id);
                for e in &page {
                    write!(out, "{}\n{}", if first { "" } else { "," }, e.to_json()).map_err(write)?;
                    first = false;
                }
            }
            writeln!(out, "\n]").map_err(write)?;
            out.flush().map_err(write)?;
        }
        AuditCommand::Verify => {}
    }
    app.store.close().await;
    Ok(())
}

fn client_json(c: &portcullis_core::oauth::Client) -> serde_json::Value {
    let p = &c.policy;
    serde_json::json!({
        "client_id": c.id, "name": c.name, "public": c.is_public(), "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris, "mfa": p.mfa.as_str(), "signing_alg": c.signing_alg.as_str(),
        "remember_browser": p.allow_remember, "remember_browser_days": p.remember_browser_days, "allowed_factors": p.allowed_factors,
        "min_acr": p.min_acr, "scopes": c.service_scopes,
    })
}
