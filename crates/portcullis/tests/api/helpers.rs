//! `spawn_app` starts the real application on a free port with a fresh
//! database and a manual clock; [`TestApp`] has methods named after what a
//! person does in a browser.

use std::sync::Arc;

use portcullis::Application;
use portcullis::config::Config;
use portcullis_core::clock::ManualClock;
use portcullis_delivery::{OutboxEntry, OutboxMailer};
pub use portcullis_store::testing::Backend;
use portcullis_store::testing::TestDatabase;
use reqwest::StatusCode;

/// A password zxcvbn rates strong enough.
pub const PASSWORD: &str = "tangerine-Quiver-87-lantern";
/// Another strong password.
pub const NEW_PASSWORD: &str = "obsidian-Harbor-42-meadow";

/// Runs each listed scenario on both backends, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await { super::$name(app).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await { super::$name(app).await } } )* }
    };
}
pub(crate) use on_both_backends;

/// A running server and a browser-like client with its own cookie jar.
pub struct TestApp {
    pub base: String,
    pub state: portcullis_server::AppState,
    pub client: reqwest::Client,
    /// The cookies of `client` (as first made; tests that swap the client keep their own).
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    pub clock: ManualClock,
    pub config: Config,
    _db: TestDatabase,
    _data: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A configuration for tests: cheap Argon2, temporary data directory, given database.
pub fn test_config(data_dir: &std::path::Path, database_url: &str) -> Config {
    let mut config = Config { data_dir: data_dir.to_owned(), database_url: Some(database_url.to_owned()), ..Config::default() };
    config.password.argon2_memory_kib = 256;
    config.password.argon2_iterations = 1;
    config
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDatabase::new(backend).await?;
    let data = private_tempdir();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = test_config(data.path(), &db.url);
    config.issuer = format!("http://127.0.0.1:{port}");
    tweak(&mut config);
    // Starts at the real time, so child processes (the CLI) and the server agree.
    let clock = ManualClock::new(portcullis_core::clock::Clock::now(&portcullis_core::clock::SystemClock));
    let app = Application::build(&config, Arc::new(clock.clone())).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = app.state.clone();
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    tokio::spawn(portcullis_server::serve(
        listener,
        app.state,
        async move {
            let _ = stopped.await;
        },
        grace,
    ));
    // Requests go to the socket; the issuer may name another host (as behind a
    // proxy). WebAuthn needs a host name, so `localhost` issuers are used as is.
    let base = if config.issuer == format!("http://localhost:{port}") { config.issuer.clone() } else { format!("http://127.0.0.1:{port}") };
    let (client, jar) = browser_with_jar();
    Some(TestApp { base, state, client, jar, clock, config, _db: db, _data: data, _stop: stop })
}

/// A temporary directory only its owner may enter (the server refuses a data
/// directory others can read; tempfile's default follows the umask).
pub fn private_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o700)).tempdir().unwrap()
}

/// A client that keeps cookies and does not follow redirects (tests check them).
pub fn browser() -> reqwest::Client {
    browser_with_jar().0
}

/// A browser and its cookie jar.
pub fn browser_with_jar() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        // `localhost` is the server's address in WebAuthn tests (the port comes from the URL).
        .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
        .unwrap();
    (client, jar)
}

/// An app whose issuer is `http://localhost:PORT`: browsers refuse IP addresses as WebAuthn relying parties.
pub async fn spawn_webauthn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await
}

/// The value of the hidden CSRF field in a page.
pub fn csrf_token_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF field in page:\n{html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub struct Page {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub(crate) async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let location = headers.get("location").map(|v| v.to_str().unwrap().to_owned());
        Self { status, body: r.text().await.unwrap(), location, headers }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Page {
        Page::from(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// Fetches the page with the form, then submits the form with its CSRF token.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        assert_eq!(page.status, StatusCode::OK, "form page {form_page}: {}", page.body);
        let token = csrf_token_in(&page.body);
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        Page::from(self.client.post(self.url(action)).form(&all).send().await.unwrap()).await
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Page {
        self.submit("/signup", "/signup", &[("email", email), ("password", password), ("confirm", password)]).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.submit("/login", "/login", &[("email", email), ("password", password)]).await
    }

    pub async fn sign_out(&self) -> Page {
        self.submit("/account", "/logout", &[]).await
    }

    /// Messages in the development outbox.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        OutboxMailer::read_all(&OutboxMailer::path_in(&self.config.data_dir)).unwrap()
    }

    /// The newest message whose subject contains `subject`, once the server's
    /// delivery task has sent it (security notices are queued, then sent).
    pub async fn notice(&self, subject: &str) -> OutboxEntry {
        for _ in 0..100 {
            if let Some(m) = self.outbox().into_iter().rfind(|m| m.email.subject.contains(subject)) {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no message about {subject:?} arrived; outbox: {:?}", self.outbox().iter().map(|m| &m.email.subject).collect::<Vec<_>>())
    }

    /// The folder of the SQLite database; `None` on PostgreSQL.
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        self._db.dir()
    }

    /// Everything the SQLite database holds on disk (database and WAL files),
    /// as text, to look for what must never be stored in the clear; `None` on PostgreSQL.
    pub fn sqlite_files_text(&self) -> Option<String> {
        let dir = self.sqlite_dir()?;
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        Some(String::from_utf8_lossy(&all).into_owned())
    }

    /// Waits until the notice queue is empty: every queued message (security
    /// notices, reset links, emailed sign-in codes) is in the outbox.
    pub async fn mail_settled(&self) {
        for _ in 0..200 {
            if self.state.accounts().store().queued_notice_count().await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("queued mail was not sent");
    }

    /// Path and query of the link in the newest message to `to` that has one
    /// (once the queued mail is out).
    pub async fn last_link_to(&self, to: &str) -> String {
        self.mail_settled().await;
        let mail = self
            .outbox()
            .into_iter()
            .rev()
            .find(|m| m.email.to == to && m.email.link.is_some())
            .unwrap_or_else(|| panic!("no mail with a link to {to}"));
        let link = mail.email.link.unwrap_or_default();
        assert!(mail.email.text.contains(&link), "the link is in the text");
        link.strip_prefix(&self.base).unwrap_or_else(|| panic!("link {link} is not on {}", self.base)).to_owned()
    }

    /// Confirms the address with the newest verification link sent to it.
    pub async fn verify_email(&self, email: &str) -> Page {
        let link = self.last_link_to(email).await;
        assert!(link.starts_with("/verify-email?token="), "{link}");
        let token = link.split("token=").nth(1).unwrap().to_owned();
        self.submit(&link, "/verify-email", &[("token", &token)]).await
    }

    /// Signs up and verifies a user (in a separate browser, leaving this one signed out).
    pub async fn verified_user(&self, email: &str) {
        assert_eq!(self.sign_up(email, PASSWORD).await.status, StatusCode::OK);
        assert_eq!(self.verify_email(email).await.status, StatusCode::OK);
    }

    /// Runs the `portcullis` command line against this app's data directory and database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with_env(&[], args)
    }

    /// Runs the command line with settings in the environment (as an operator's configuration would give them).
    pub fn cli_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .envs(env.iter().copied())
            .args(args)
            .arg("--data-dir")
            .arg(&self.config.data_dir)
            .args(["--database-url", self.config.database_url.as_deref().unwrap()])
            .output()
            .unwrap()
    }

    /// Another browser on the same server.
    pub fn other_browser(&self) -> TestApp2<'_> {
        TestApp2 { app: self, client: browser() }
    }
}

/// A second browser sharing the server of a [`TestApp`].
pub struct TestApp2<'a> {
    app: &'a TestApp,
    pub client: reqwest::Client,
}

impl TestApp2<'_> {
    pub async fn sign_in(&self, email: &str, password: &str) -> StatusCode {
        let page = self.client.get(self.app.url("/login")).send().await.unwrap().text().await.unwrap();
        let token = csrf_token_in(&page);
        self.client
            .post(self.app.url("/login"))
            .form(&[("email", email), ("password", password), ("csrf_token", &token)])
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn account_status(&self) -> StatusCode {
        self.client.get(self.app.url("/account")).send().await.unwrap().status()
    }
}

/// A free port on 127.0.0.1 (free when asked; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `portcullis serve` as a process on `port` with its data in `dir`, the
/// given issuer, cheap hashes and extra settings (environment variables),
/// its log lines in `log` (or nowhere); returns once `/healthz` answers.
pub async fn serve_process(
    port: u16,
    dir: &std::path::Path,
    issuer: &str,
    settings: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> tokio::process::Child {
    let listen = format!("127.0.0.1:{port}");
    let stderr = match log {
        Some(path) => std::process::Stdio::from(std::fs::File::create(path).unwrap()),
        None => std::process::Stdio::null(),
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--listen", &listen, "--issuer", issuer])
        .arg("--data-dir")
        .arg(dir)
        .env("PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB", "256")
        .env("PORTCULLIS_PASSWORD__ARGON2_ITERATIONS", "1")
        .envs(settings.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut child = child;
    let client = browser();
    for _ in 0..600 {
        if client.get(format!("http://{listen}/healthz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let said = log.and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default();
            panic!("the server on {listen} stopped ({status}):\n{said}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server on {listen} did not come up in 30 s");
}
