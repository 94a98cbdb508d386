//! The Portcullis under test: its configuration, seeded database, process,
//! and what `/proc` says about it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use portcullis::config::{Config, FlagOverrides};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::email::EmailAddress;
use portcullis_core::factors::{Credential, FactorKind, seal_context};
use portcullis_core::password::{Argon2Cost, PasswordHasher};
use portcullis_core::secrets::SecretBox;
use portcullis_core::user::{User, UserId};
use portcullis_store::ImportedAccount;
use portcullis_store::testing::TestDatabase;
use rand::RngCore;

use crate::flow::FlowUser;

/// Name prefix of the password hasher's threads (`core::password`).
pub const HASHING_THREADS: &str = "argon2-";

/// Accounts per import transaction.
const BATCH: usize = 2_000;

/// A configuration file for a server on a free port, and its database.
pub struct Setup {
    /// The configuration file.
    pub config_path: PathBuf,
    /// The loaded configuration.
    pub config: Config,
    /// The fresh PostgreSQL database, if any (dropped at the end).
    _database: Option<TestDatabase>,
}

impl Setup {
    /// Writes the configuration: a free port, the data directory, SQLite or a
    /// fresh database on the PostgreSQL server at `postgres`, 127.0.0.1 as
    /// the trusted proxy (each simulated browser has its own address in
    /// `X-Forwarded-For`), and no per-address sign-in or authorization-request
    /// limit (a signed-in simulated browser repeats its single sign-on far
    /// faster than a person would).
    pub async fn new(data_dir: &Path, postgres: Option<&str>) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let database = match postgres {
            Some(url) => Some(TestDatabase::postgres_at(url).await.ok_or_else(|| format!("PostgreSQL at {url} is unreachable"))?),
            None => None,
        };
        let database_line = database.as_ref().map(|d| format!("database_url = {:?}\n", d.url)).unwrap_or_default();
        // `localhost`, not an IP address: passkeys need a host name (WebAuthn's RP ID).
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\nissuer = \"http://localhost:{port}\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
             data_dir = {:?}\n{database_line}\
             [rate_limit]\nsign_in_per_minute = 1000000000\nauthorize_per_minute = 1000000000\n",
            data_dir.display().to_string()
        );
        let config_path = data_dir.join("bench.toml");
        std::fs::write(&config_path, text).map_err(|e| e.to_string())?;
        let config = Config::load(Some(&config_path), &FlagOverrides::default()).map_err(|e| e.to_string())?;
        Ok(Self { config_path, config, _database: database })
    }

    /// The PostgreSQL database's URL, when the benchmark runs on one.
    pub fn postgres_url(&self) -> Option<&str> {
        self._database.as_ref().map(|d| d.url.as_str())
    }

    /// Creates `n` verified users, each with `password` and a confirmed
    /// authenticator app, by bulk import (one Argon2 hash for all).
    pub async fn seed(&self, n: usize, password: &str) -> Result<Vec<FlowUser>, String> {
        let keys = portcullis::keys::ServerKeys::load_or_create(&self.config.data_dir).map_err(|e| e.to_string())?;
        let store = portcullis::open_store(&self.config).await.map_err(|e| e.to_string())?;
        let sealer = SecretBox::new(keys.encryption);
        let hash =
            PasswordHasher::new(Argon2Cost::default(), 1).map_err(|e| e.to_string())?.hash(password).await.map_err(|e| e.to_string())?;
        let now = SystemClock.now();
        let mut users = Vec::with_capacity(n);
        let mut batch = Vec::with_capacity(BATCH);
        for i in 0..n {
            let email = format!("user{i}@bench.test");
            let user = User {
                id: UserId::new(),
                email: EmailAddress::parse(&email).map_err(|e| e.to_string())?,
                name: format!("User {i}"),
                password_hash: hash.clone(),
                email_verified_at: Some(now),
                is_admin: false,
                is_auditor: false,
                mfa_required: false,
                disabled_at: None,
                password_reset_at: None,
                password_breached_at: None,
                language: None,
                enrollment_prompt_snoozed_until: None,
                security_epoch: 0,
                created_at: now,
            };
            let mut secret = vec![0u8; 20];
            rand::rng().fill_bytes(&mut secret);
            let mut app = Credential::new(user.id, FactorKind::Totp, "Bench app".into(), Vec::new(), now);
            app.sealed_secret = sealer.seal(&seal_context(&app.id), &secret);
            app.confirmed_at = Some(now);
            batch.push(ImportedAccount { user, credentials: vec![app] });
            users.push(FlowUser::new(email, secret));
            if batch.len() == BATCH || i + 1 == n {
                store.import_accounts(&batch).await.map_err(|e| format!("import: {e}"))?;
                batch.clear();
            }
        }
        store.close().await;
        Ok(users)
    }
}

/// The name and user + system CPU seconds in a `/proc/…/stat` file (Linux
/// clock ticks of 1/100 s).
fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may hold spaces.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, ticks as f64 / 100.0))
}

/// User + system CPU time process `pid` used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu(&format!("/proc/{pid}/stat")).map(|(_, s)| s)
}

/// CPU time used so far by the live threads of process `pid` whose name
/// starts with `prefix` (the password hasher's threads are `argon2-N`).
pub fn threads_cpu_seconds(pid: u32, prefix: &str) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let total = tasks
        .flatten()
        .filter_map(|t| stat_cpu(&format!("{}/stat", t.path().display())))
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, s)| s)
        .sum();
    Some(total)
}

/// A figure in kB from `/proc/PID/status` (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A running server process.
pub struct Server {
    child: tokio::process::Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    binary: PathBuf,
    config_path: PathBuf,
}

impl Server {
    /// Starts `binary serve` and waits until it answers `/healthz`.
    pub async fn start(binary: &Path, setup: &Setup) -> Result<Self, String> {
        let child = tokio::process::Command::new(binary)
            .args(["serve", "--config"])
            .arg(&setup.config_path)
            // BENCH_SERVER_LOG=sqlx::query=debug shows each statement and its time.
            .env("PORTCULLIS_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} (build it with cargo build --release)", binary.display()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let base = setup.config.issuer.clone();
        let server = Self { child, pid, base, binary: binary.to_owned(), config_path: setup.config_path.clone() };
        let client = crate::flow::http_client(&server.base)?;
        for _ in 0..200 {
            if client.get(format!("{}/healthz", server.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the server did not answer /healthz within 10 s".into())
    }

    /// The server process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Registers a confidential client named `name` with the CLI.
    pub fn create_client(&self, name: &str) -> Result<crate::flow::ClientCredentials, String> {
        let out = std::process::Command::new(&self.binary)
            .args(["client", "create", "--name", name, "--redirect-uri", crate::flow::CALLBACK, "--config"])
            .arg(&self.config_path)
            .env("PORTCULLIS_LOG", "warn")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("client create: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("client create output: {e}"))?;
        let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| format!("client create output lacks {k}"));
        Ok(crate::flow::ClientCredentials { id: field("client_id")?, secret: field("client_secret")? })
    }

    /// Resident set size now.
    pub fn rss_kib(&self) -> Option<u64> {
        status_kib(self.pid, "VmRSS:")
    }

    /// Highest resident set size so far.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_kib(self.pid, "VmHWM:")
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
