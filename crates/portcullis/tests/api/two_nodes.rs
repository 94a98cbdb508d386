//! Two `portcullis serve` processes on one PostgreSQL database and one data
//! directory (so one `secrets/`), as behind a load balancer that sends each
//! request to either: a sign-in moves between them at every step, one-time
//! values sent to both at once count once, the lockout holds across them, a
//! key rotation reaches both, a security notice is sent once, and the audit
//! log both write is one chain.

use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use portcullis_core::factors::totp::{code_at_step, step_at};
use portcullis_delivery::{OutboxEntry, OutboxMailer};
use portcullis_store::testing::TestDatabase;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::process::Child;

use crate::helpers::{PASSWORD, Page, browser, csrf_token_in, free_port, private_tempdir, serve_process};
use crate::mfa::{after, hidden, recovery_codes_in};
use crate::oidc::{CALLBACK, b64, query_param, urlenc};
use crate::webauthn::{Key, json};

/// Two nodes sharing a fresh PostgreSQL database and a data directory.
pub(crate) struct Cluster {
    /// The nodes' base URLs (`http://localhost:PORT`), A first.
    bases: [String; 2],
    /// Every node's issuer: node A's address, standing for the load balancer's.
    issuer: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: TestDatabase,
    _nodes: Vec<Child>,
}

pub(crate) const A: usize = 0;
const B: usize = 1;

impl Cluster {
    /// Starts both nodes at once (their migrations and first signing keys
    /// race, as in a real roll-out), with generous per-address rate limits
    /// (every request here comes from one address) and `settings` on top.
    async fn start(settings: &[(&str, &str)]) -> Option<Self> {
        let db = TestDatabase::postgres().await?;
        Some(Self::on(db, private_tempdir(), 2, settings).await)
    }

    /// `nodes` (1 or 2) servers on `db` with their data in `dir`; with one,
    /// both node indexes name it.
    pub(crate) async fn on(db: TestDatabase, dir: tempfile::TempDir, nodes: usize, settings: &[(&str, &str)]) -> Self {
        let ports = [free_port(), free_port()];
        let issuer = format!("http://localhost:{}", ports[A]);
        let mut all = vec![
            ("PORTCULLIS_DATABASE_URL", db.url.as_str()),
            ("PORTCULLIS_RATE_LIMIT__SIGN_IN_PER_MINUTE", "100000"),
            ("PORTCULLIS_RATE_LIMIT__SEND_EMAIL_PER_MINUTE", "100000"),
            ("PORTCULLIS_RATE_LIMIT__AUTHORIZE_PER_MINUTE", "100000"),
            ("PORTCULLIS_LOG", "info"),
        ];
        all.extend_from_slice(settings);
        let logs = [dir.path().join("node-a.log"), dir.path().join("node-b.log")];
        let started = if nodes == 1 {
            vec![serve_process(ports[A], dir.path(), &issuer, &all, Some(&logs[A])).await]
        } else {
            let (a, b) = tokio::join!(
                serve_process(ports[A], dir.path(), &issuer, &all, Some(&logs[A])),
                serve_process(ports[B], dir.path(), &issuer, &all, Some(&logs[B])),
            );
            vec![a, b]
        };
        let bases = ports.map(|p| format!("http://localhost:{p}"));
        let bases = if nodes == 1 { [bases[A].clone(), bases[A].clone()] } else { bases };
        Self { bases, issuer, dir, db, _nodes: started }
    }

    /// Stops the servers; returns the database and data directory.
    pub(crate) async fn stop(mut self) -> (TestDatabase, tempfile::TempDir) {
        for mut node in std::mem::take(&mut self._nodes) {
            let _ = node.kill().await;
        }
        let placeholder = (TestDatabase::sqlite(), private_tempdir());
        let db = std::mem::replace(&mut self.db, placeholder.0);
        let dir = std::mem::replace(&mut self.dir, placeholder.1);
        (db, dir)
    }

    pub(crate) fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.bases[node % 2])
    }

    /// The command line against the shared data directory and database.
    pub(crate) fn cli(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let out = cli_on(self.dir.path(), &self.db.url, args, stdin);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn user(&self, email: &str) {
        self.cli(&["user", "create", "--email", email, "--password-stdin"], Some(&format!("{PASSWORD}\n")));
    }

    /// A confidential client; returns (id, secret).
    pub(crate) fn client(&self) -> (String, String) {
        let c = self.cli(&["client", "create", "--name", "App", "--redirect-uri", CALLBACK], None);
        (c["client_id"].as_str().unwrap().to_owned(), c["client_secret"].as_str().unwrap().to_owned())
    }

    /// Every message either node has "sent" (both write the one outbox in the shared directory).
    fn outbox(&self) -> Vec<OutboxEntry> {
        OutboxMailer::read_all(&OutboxMailer::path_in(self.dir.path())).unwrap_or_default()
    }

    async fn queued_notices(&self) -> i64 {
        let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM queued_notices").fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }

    /// The newest emailed sign-in code for `to`, once it has been sent.
    async fn emailed_code(&self, to: &str, not: &[String]) -> String {
        for _ in 0..200 {
            let code = self.outbox().into_iter().rev().filter(|m| m.email.to == to).find_map(|m| {
                let word = m.email.subject.rsplit(' ').next()?.to_owned();
                (word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()) && !not.contains(&word)).then_some(word)
            });
            if let Some(code) = code {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no sign-in code for {to} arrived");
    }
}

/// `portcullis ARGS --data-dir DIR --database-url DB` with `stdin`; its output.
pub(crate) fn cli_on(dir: &std::path::Path, db: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

impl Drop for Cluster {
    /// A failing test shows what the nodes logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["node-a.log", "node-b.log"] {
                let log = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- {name} (last lines) ----\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
    }
}

/// One browser: its cookies go to both nodes (one host name), as they would
/// through a load balancer.
pub(crate) struct Browser(reqwest::Client);

impl Browser {
    pub(crate) fn new() -> Self {
        Self(browser())
    }

    pub(crate) async fn get(&self, url: &str) -> Page {
        Page::from(self.0.get(url).send().await.unwrap()).await
    }

    /// Submits a form with the CSRF token of the page it is on.
    pub(crate) async fn post(&self, url: &str, fields: &[(&str, &str)], form_page: &Page) -> Page {
        let token = csrf_token_in(&form_page.body);
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        Page::from(self.0.post(url).form(&all).send().await.unwrap()).await
    }

    /// POSTs to a WebAuthn options endpoint; returns (ceremony, options).
    async fn webauthn_options(&self, url: &str, fields: &[(&str, &str)], form_page: &Page) -> (String, serde_json::Value) {
        let token = csrf_token_in(&form_page.body);
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        let r = self.0.post(url).form(&all).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        (body["ceremony"].as_str().unwrap().to_owned(), body["options"].clone())
    }

    /// The password step on `node`; returns the second-step path it leads to.
    pub(crate) async fn password(&self, cluster: &Cluster, node: usize, email: &str, next: &str) -> String {
        let login = self.get(&cluster.url(node, &format!("/login?next={}", urlenc(next)))).await;
        let done = self.post(&cluster.url(node, "/login"), &[("email", email), ("password", PASSWORD), ("next", next)], &login).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        done.location.unwrap()
    }
}

/// An authorization request (code flow, PKCE S256, `offline_access`) and what
/// its client keeps to redeem the code.
pub(crate) struct Authorization {
    pub(crate) url: String,
    pub(crate) verifier: String,
    pub(crate) nonce: String,
}

impl Authorization {
    pub(crate) fn new(client_id: &str) -> Self {
        let verifier = BASE64URL_NOPAD.encode(&portcullis_core::secrets::random_bytes::<32>());
        let challenge = BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()));
        let nonce = BASE64URL_NOPAD.encode(&portcullis_core::secrets::random_bytes::<16>());
        let url = format!(
            "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s1&nonce={nonce}\
             &code_challenge={challenge}&code_challenge_method=S256",
            urlenc(CALLBACK),
            urlenc("openid email offline_access"),
        );
        Self { url, verifier, nonce }
    }

    /// Where the authorization request sends a browser with no session: the
    /// sign-in page, with the request to resume after it.
    pub(crate) async fn resume_path(&self, cluster: &Cluster, node: usize, browser: &Browser) -> String {
        let to_login = browser.get(&cluster.url(node, &self.url)).await;
        assert_eq!(to_login.status, StatusCode::SEE_OTHER, "{}", to_login.body);
        query_param(&format!("http://x{}", to_login.location.unwrap()), "next").unwrap()
    }
}

/// A token request to `node` as the client; returns (status, answer).
pub(crate) async fn token(
    cluster: &Cluster,
    node: usize,
    (id, secret): (&str, &str),
    form: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let r = browser().post(cluster.url(node, "/token")).basic_auth(id, Some(secret)).form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

pub(crate) fn claims(jwt: &str) -> serde_json::Value {
    serde_json::from_slice(&b64(jwt.split('.').nth(1).unwrap())).unwrap()
}

fn kid(jwt: &str) -> String {
    let header: serde_json::Value = serde_json::from_slice(&b64(jwt.split('.').next().unwrap())).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

pub(crate) fn amr(id_token: &str) -> Vec<String> {
    claims(id_token)["amr"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

pub(crate) async fn userinfo(cluster: &Cluster, node: usize, access_token: &str) -> StatusCode {
    browser().get(cluster.url(node, "/userinfo")).bearer_auth(access_token).send().await.unwrap().status()
}

pub(crate) fn totp_code(secret: &[u8], steps_ahead: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    code_at_step(secret, step_at(i64::try_from(now).unwrap()) + steps_ahead, 6)
}

/// Sets up an authenticator app: the setup page from `node`, its first code
/// confirmed on the other one. Returns the app's secret and the recovery codes.
pub(crate) async fn enroll_totp(cluster: &Cluster, browser: &Browser, node: usize) -> (Vec<u8>, Vec<String>) {
    let security = browser.get(&cluster.url(node, "/account/security")).await;
    assert_eq!(security.status, StatusCode::OK, "{}", security.body);
    let setup = browser.post(&cluster.url(node, "/account/security/totp"), &[], &security).await;
    let shown = after(&setup.body, "data-testid=\"totp-secret\">");
    let secret = data_encoding::BASE32_NOPAD.decode(shown.replace(' ', "").as_bytes()).unwrap();
    let fields = [("credential_id", hidden(&setup.body, "credential_id")), ("name", "Phone".into()), ("code", totp_code(&secret, 0))];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post(&cluster.url(node + 1, "/account/security/totp/confirm"), &fields, &setup).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    (secret, recovery_codes_in(&done.body))
}

/// A user with an authenticator app, signed in in the browser returned.
pub(crate) async fn user_with_app(cluster: &Cluster, email: &str) -> (Browser, Vec<u8>, Vec<String>) {
    cluster.user(email);
    let browser = Browser::new();
    assert_eq!(browser.password(cluster, A, email, "/account").await, "/account");
    let (secret, codes) = enroll_totp(cluster, &browser, B).await;
    (browser, secret, codes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_moves_between_nodes_at_every_step_with_each_second_factor() {
    let Some(cluster) = Cluster::start(&[]).await else { return };
    let email = "ada@example.com";
    let (browser, secret, _) = user_with_app(&cluster, email).await;
    // A security key too: its ceremony begun on B, finished on A.
    let mut key = Key::for_origin(&cluster.issuer);
    let security = browser.get(&cluster.url(B, "/account/security")).await;
    let fields = [("kind", "security_key"), ("name", "Blue key")];
    let (ceremony, options) = browser.webauthn_options(&cluster.url(B, "/account/security/webauthn/options"), &fields, &security).await;
    let credential = key.create(options);
    let added = browser
        .post(
            &cluster.url(A, "/account/security/webauthn"),
            &[("kind", "security_key"), ("ceremony", &ceremony), ("credential", &credential)],
            &security,
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let client = cluster.client();
    let client = (client.0.as_str(), client.1.as_str());

    let mut used_codes = Vec::new();
    for (n, method) in ["totp", "email", "webauthn"].into_iter().enumerate() {
        let browser = Browser::new();
        let first = n % 2; // The first step on A, then B, then A.
        let second = first + 1;
        let authorization = Authorization::new(client.0);
        let resume = authorization.resume_path(&cluster, first, &browser).await;
        let verify = browser.password(&cluster, first, email, &resume).await;
        assert!(verify.starts_with("/login/verify"), "the password alone did not sign in: {verify}");
        let page = browser.get(&cluster.url(second, &format!("{verify}&method={method}"))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let done = match method {
            "totp" => {
                let code = totp_code(&secret, 1);
                browser.post(&cluster.url(second, "/login/verify"), &[("method", "totp"), ("code", &code), ("next", &resume)], &page).await
            }
            "email" => {
                // Sent from the second node, entered on the first.
                let sent = browser.post(&cluster.url(second, "/login/verify/send"), &[("method", "email"), ("next", &resume)], &page).await;
                assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
                let code = cluster.emailed_code(email, &used_codes).await;
                used_codes.push(code.clone());
                let fields = [("method", "email"), ("code", code.as_str()), ("next", resume.as_str())];
                browser.post(&cluster.url(first, "/login/verify"), &fields, &sent).await
            }
            _ => {
                // Options from the second node, the answer to the first.
                let (ceremony, options) =
                    browser.webauthn_options(&cluster.url(second, "/login/verify/options"), &[("method", "webauthn")], &page).await;
                let answer = json(&key.assert(options));
                let fields = [("method", "webauthn"), ("ceremony", ceremony.as_str()), ("credential", answer.as_str()), ("next", &resume)];
                browser.post(&cluster.url(first, "/login/verify"), &fields, &page).await
            }
        };
        assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some(resume.as_str())), "{method}: {}", done.body);
        // The request resumed on the first node, the code redeemed on the second.
        let back = browser.get(&cluster.url(first, &resume)).await.location.unwrap();
        assert!(back.starts_with(CALLBACK), "{back}");
        let code = query_param(&back, "code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", authorization.verifier.as_str()),
        ];
        let (status, tokens) = token(&cluster, second, client, &form).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let id_token = tokens["id_token"].as_str().unwrap();
        assert_eq!(claims(id_token)["nonce"], authorization.nonce.as_str());
        let expected = match method {
            "webauthn" => ["pwd", "hwk", "mfa"],
            _ => ["pwd", "otp", "mfa"],
        };
        assert!(expected.iter().all(|m| amr(id_token).contains(&(*m).to_owned())), "{method}: {:?}", amr(id_token));
        // Each node accepts the access token the other issued.
        assert_eq!(userinfo(&cluster, first, tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);
    }
}

/// Ten requests at once, five to each node; returns their statuses.
async fn at_once<F, Fut>(send: F) -> Vec<StatusCode>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = StatusCode> + Send + 'static,
{
    let mut all = tokio::task::JoinSet::new();
    for i in 0..10 {
        all.spawn(send(i));
    }
    all.join_all().await
}

fn accepted(statuses: &[StatusCode], ok: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == ok).count()
}

/// Ten browsers, each with its own pending sign-in of `email` (password on
/// alternating nodes), on the second-step page for `method`.
async fn ten_pending_sign_ins(cluster: &Cluster, email: &str, method: &str) -> Vec<(Browser, Page)> {
    let mut pending = Vec::new();
    for i in 0..10 {
        let browser = Browser::new();
        let verify = browser.password(cluster, i, email, "/account").await;
        let page = browser.get(&cluster.url(i + 1, &format!("{verify}&method={method}"))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pending.push((browser, page));
    }
    pending
}

/// The same answer to ten pending sign-ins at once, split across the nodes.
async fn same_answer_to_ten(cluster: &Cluster, pending: Vec<(Browser, Page)>, fields: &[(&str, &str)]) -> Vec<StatusCode> {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut all = tokio::task::JoinSet::new();
    for (i, (browser, page)) in pending.into_iter().enumerate() {
        let (url, mut fields) = (cluster.url(i, "/login/verify"), fields.clone());
        fields.push(("csrf_token".into(), csrf_token_in(&page.body)));
        all.spawn(async move { browser.0.post(url).form(&fields).send().await.unwrap().status() });
    }
    all.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_values_sent_to_both_nodes_at_once_are_accepted_once() {
    let Some(cluster) = Cluster::start(&[]).await else { return };

    // A TOTP code, to ten sign-ins at once.
    let (_, secret, _) = user_with_app(&cluster, "totp@example.com").await;
    let pending = ten_pending_sign_ins(&cluster, "totp@example.com", "totp").await;
    let code = totp_code(&secret, 1);
    let statuses = same_answer_to_ten(&cluster, pending, &[("method", "totp"), ("code", &code), ("next", "/account")]).await;
    assert_eq!(accepted(&statuses, StatusCode::SEE_OTHER), 1, "TOTP code: {statuses:?}");

    // A recovery code, to ten sign-ins at once.
    let (_, _, recovery) = user_with_app(&cluster, "recovery@example.com").await;
    let pending = ten_pending_sign_ins(&cluster, "recovery@example.com", "recovery").await;
    let statuses = same_answer_to_ten(&cluster, pending, &[("method", "recovery"), ("code", &recovery[0]), ("next", "/account")]).await;
    assert_eq!(accepted(&statuses, StatusCode::SEE_OTHER), 1, "recovery code: {statuses:?}");

    // An emailed code, ten times at once to the one sign-in it was sent for.
    user_with_app(&cluster, "email@example.com").await;
    let browser = Browser::new();
    let verify = browser.password(&cluster, A, "email@example.com", "/account").await;
    let page = browser.get(&cluster.url(B, &format!("{verify}&method=email"))).await;
    let sent = browser.post(&cluster.url(A, "/login/verify/send"), &[("method", "email"), ("next", "/account")], &page).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let code = cluster.emailed_code("email@example.com", &[]).await;
    let csrf = csrf_token_in(&sent.body);
    let browser = std::sync::Arc::new(browser);
    let statuses = at_once(|i| {
        let (browser, url, code, csrf) = (browser.clone(), cluster.url(i, "/login/verify"), code.clone(), csrf.clone());
        async move {
            let fields = [("method", "email"), ("code", code.as_str()), ("next", "/account"), ("csrf_token", csrf.as_str())];
            browser.0.post(url).form(&fields).send().await.unwrap().status()
        }
    })
    .await;
    assert_eq!(accepted(&statuses, StatusCode::SEE_OTHER), 1, "emailed code: {statuses:?}");

    // An authorization code, redeemed ten times at once.
    let (id, secret) = cluster.client();
    cluster.user("app@example.com");
    let browser = Browser::new();
    let authorization = Authorization::new(&id);
    let resume = authorization.resume_path(&cluster, A, &browser).await;
    assert_eq!(browser.password(&cluster, B, "app@example.com", &resume).await, resume);
    let back = browser.get(&cluster.url(A, &resume)).await.location.unwrap();
    let code = query_param(&back, "code").unwrap();
    let redeem = |i: usize| {
        let (url, id, secret, code, verifier) =
            (cluster.url(i, "/token"), id.clone(), secret.clone(), code.clone(), authorization.verifier.clone());
        async move {
            let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &verifier)];
            let r = browser_for_tokens().post(url).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
            r.status()
        }
    };
    let statuses = at_once(redeem).await;
    assert_eq!(accepted(&statuses, StatusCode::OK), 1, "authorization code: {statuses:?}");

    // A refresh token, used ten times at once (from a fresh code).
    let authorization = Authorization::new(&id);
    let back = browser.get(&cluster.url(B, &authorization.url)).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "signed in already: straight back with a code: {back}");
    let code = query_param(&back, "code").unwrap();
    let form =
        [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &authorization.verifier)];
    let (status, tokens) = token(&cluster, B, (&id, &secret), &form).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("offline_access gives a refresh token").to_owned();
    let statuses = at_once(|i| {
        let (url, id, secret, refresh) = (cluster.url(i, "/token"), id.clone(), secret.clone(), refresh.clone());
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
            browser_for_tokens().post(url).basic_auth(id, Some(secret)).form(&form).send().await.unwrap().status()
        }
    })
    .await;
    assert_eq!(accepted(&statuses, StatusCode::OK), 1, "refresh token: {statuses:?}");
    // The nine replays revoked the family, the tokens the one accepted use issued included.
    assert_eq!(userinfo(&cluster, A, tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
}

/// A client without cookies, for back-channel requests.
fn browser_for_tokens() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_alternating_between_nodes_lock_after_exactly_max_failures_on_both() {
    let Some(cluster) = Cluster::start(&[]).await else { return };
    cluster.user("jack@example.com");
    let attempt = |node: usize, password: &'static str| {
        let url = cluster.url(node, "/login");
        async move {
            let browser = Browser::new();
            let login = browser.get(&url).await;
            browser.post(&url, &[("email", "jack@example.com"), ("password", password)], &login).await
        }
    };
    for n in 1..=4 {
        let page = attempt(n, "wrong-password-x").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {n}: {}", page.body);
    }
    let fifth = attempt(5, "wrong-password-x").await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS, "the fifth failure (max_failures = 5) locks: {}", fifth.body);
    for node in [A, B] {
        let right = attempt(node, PASSWORD).await;
        assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "locked on node {node}, even for the right password");
        assert!(right.body.contains("Too many failed attempts."), "{}", right.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_one_node_is_published_by_both_before_either_signs_with_it() {
    let reload = 2;
    let Some(cluster) = Cluster::start(&[("PORTCULLIS_KEY_RELOAD_SECONDS", "2")]).await else { return };
    let jwks = |node: usize| {
        let url = cluster.url(node, "/jwks.json");
        async move {
            let keys: serde_json::Value = browser().get(url).send().await.unwrap().json().await.unwrap();
            let mut kids: Vec<String> = keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
            kids.sort();
            kids
        }
    };
    // Tokens for a signed-in user, renewed through a refresh token on either node.
    let (id, secret) = cluster.client();
    cluster.user("ada@example.com");
    let browser = Browser::new();
    let authorization = Authorization::new(&id);
    let resume = authorization.resume_path(&cluster, A, &browser).await;
    browser.password(&cluster, A, "ada@example.com", &resume).await;
    let code = query_param(&browser.get(&cluster.url(A, &resume)).await.location.unwrap(), "code").unwrap();
    let form =
        [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &authorization.verifier)];
    let (_, first) = token(&cluster, A, (&id, &secret), &form).await;
    let mut refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let mut renew = async |node: usize| {
        let (status, tokens) = token(&cluster, node, (&id, &secret), &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        tokens["access_token"].as_str().unwrap().to_owned()
    };

    let rotated = cluster.cli(&["keys", "rotate"], None);
    let asked = Instant::now();
    let new: Vec<String> = rotated["rotated_in"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert_eq!(new.len(), 2);
    // Published by both within a reload period (and some slack for a busy machine)...
    let published = loop {
        let (a, b) = (jwks(A).await, jwks(B).await);
        if new.iter().all(|k| a.contains(k) && b.contains(k)) {
            assert_eq!(a, b, "both nodes publish the same keys");
            break asked.elapsed();
        }
        assert!(asked.elapsed() < Duration::from_secs(10 * reload), "the new keys were not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ...while tokens are still signed with the old keys, whichever node signs.
    if published < Duration::from_secs(reload) {
        for node in [A, B] {
            assert!(!new.contains(&kid(&renew(node).await)), "a new key signed before it was published everywhere");
        }
    }
    // After two reload periods each node signs with the new key, and the other accepts what it signed.
    let mut seen = [false, false];
    while seen != [true, true] {
        assert!(asked.elapsed() < Duration::from_secs(20 * reload), "the new key did not start signing");
        for node in [A, B] {
            let access_token = renew(node).await;
            if new.contains(&kid(&access_token)) {
                seen[node] = true;
                assert_eq!(userinfo(&cluster, node + 1, &access_token).await, StatusCode::OK, "the other node verifies it");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Key times are whole seconds: the key was made up to a second before it was asked for.
    assert!(asked.elapsed() >= Duration::from_secs(2 * reload - 1), "not before two reload periods: {:?}", asked.elapsed());
    assert_eq!(jwks(A).await, jwks(B).await);
    eprintln!("new keys published by both after {published:?}, signing on both after {:?}", asked.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_notices_queued_on_both_nodes_are_each_sent_once() {
    let Some(cluster) = Cluster::start(&[]).await else { return };
    let users: Vec<String> = (0..10).map(|i| format!("user{i}@example.com")).collect();
    for u in &users {
        cluster.user(u);
    }
    // Each account locked by five wrong passwords alternating between the nodes,
    // all accounts at once: lock notices are queued on both nodes, whose
    // senders both work the one queue.
    let mut lockouts = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        let (urls, u) = ([cluster.url(i, "/login"), cluster.url(i + 1, "/login")], u.clone());
        lockouts.spawn(async move {
            for n in 0..5 {
                let browser = Browser::new();
                let login = browser.get(&urls[n % 2]).await;
                browser.post(&urls[n % 2], &[("email", u.as_str()), ("password", "wrong-password-x")], &login).await;
            }
        });
    }
    lockouts.join_all().await;
    let locked = |cluster: &Cluster| {
        cluster.outbox().into_iter().filter(|m| m.email.subject.contains("your account is locked")).map(|m| m.email.to).collect::<Vec<_>>()
    };
    let started = Instant::now();
    while locked(&cluster).len() < users.len() || cluster.queued_notices().await > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "notices were not all sent: {:?}", locked(&cluster));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the other node's next look at the queue too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sent = locked(&cluster);
    sent.sort();
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(sent, expected, "one lock notice per account");
    // Both nodes wrote the audit log at once; their sealers made one chain of it.
    let started = Instant::now();
    loop {
        let report = cluster.cli(&["audit", "verify"], None);
        assert_eq!(report["ok"], true, "{report}");
        if report["unsealed"] == 0 {
            assert!(report["checked"].as_u64().unwrap() >= 60, "{report}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not sealed: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
