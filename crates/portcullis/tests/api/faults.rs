//! `portcullis serve` as a real process, stopped by signals: SIGTERM drains
//! what is in progress for a bounded time, SIGKILL loses nothing answered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::helpers::{PASSWORD, browser, csrf_token_in, free_port, serve_process};

/// A `serve` process on a free port with its data in `dir` (SQLite), cheap
/// hashes and the given extra settings; returns it once `/healthz` answers.
async fn serve(dir: &std::path::Path, settings: &[(&str, &str)]) -> (Child, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    (serve_process(port, dir, &base, settings, None).await, base)
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
}

/// A connection the server has accepted and served once (so it is not left
/// in the listen queue, which a stop closes), then a request on it whose
/// headers and the start of its body are sent, the rest not yet.
async fn request_in_progress(base: &str) -> tokio::net::TcpStream {
    let mut connection = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    connection.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\nok") {
        let n = connection.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the health check was answered: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 20\r\nConnection: close\r\n\r\nemail=a";
    connection.write_all(head.as_bytes()).await.unwrap();
    // Let the server read the headers and start on the request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    connection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_progress_then_exits_0() {
    let dir = crate::helpers::private_tempdir();
    let (mut child, base) = serve(dir.path(), &[("PORTCULLIS_SHUTDOWN_GRACE_SECONDS", "60")]).await;
    let login = browser().get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    assert!(!csrf_token_in(&login).is_empty());
    assert!(dir.path().join("secrets/cookie.key").exists());

    let mut connection = request_in_progress(&base).await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().unwrap().is_none(), "still running: a request is in progress");
    // The rest of the body arrives after the signal, and is answered.
    connection.write_all(b"@example.com&x=1234").await.unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "answered (no CSRF token): {answer}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("stops once it is answered").unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_after_the_grace_period_when_a_client_stalls_mid_request() {
    let dir = crate::helpers::private_tempdir();
    let (mut child, base) = serve(dir.path(), &[("PORTCULLIS_SHUTDOWN_GRACE_SECONDS", "2")]).await;
    let mut stalled = request_in_progress(&base).await;
    let asked = Instant::now();
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("stops after the grace period").unwrap();
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() >= Duration::from_secs(2), "it waited for the request first: {:?}", asked.elapsed());
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "the stalled request got no answer, only a closed connection");
}

/// Sign-ups from four browsers at once, the process killed with SIGKILL in
/// their midst: the SQLite file passes `PRAGMA integrity_check`, every
/// account whose sign-up was answered is there, and the server starts again.
/// (A killed process loses nothing committed; an operating-system crash or
/// power loss may lose the last commits: `synchronous = NORMAL` in WAL mode.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sign_ups_loses_no_answered_account_and_leaves_sqlite_intact() {
    let dir = crate::helpers::private_tempdir();
    let settings = [("PORTCULLIS_RATE_LIMIT__SIGN_UP_PER_MINUTE", "100000")];
    let (child, base) = serve(dir.path(), &settings).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut browsers = tokio::task::JoinSet::new();
    for b in 0..4 {
        let (base, stop) = (base.clone(), stop.clone());
        browsers.spawn(async move {
            let client = browser();
            let mut answered = Vec::new();
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(page) = client.get(format!("{base}/signup")).send().await else { break };
                let Ok(page) = page.text().await else { break };
                let email = format!("user-{b}-{n}@example.com");
                let form =
                    [("email", email.as_str()), ("password", PASSWORD), ("confirm", PASSWORD), ("csrf_token", &csrf_token_in(&page))];
                let Ok(r) = client.post(format!("{base}/signup")).form(&form).send().await else { break };
                if r.status() == StatusCode::OK && r.text().await.is_ok_and(|t| t.contains("Check your email")) {
                    answered.push(email);
                }
            }
            answered
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&child, "KILL");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: Vec<String> = browsers.join_all().await.into_iter().flatten().collect();
    assert!(answered.len() >= 4, "sign-ups were answered before the kill: {}", answered.len());

    use sqlx::Connection;
    let url = format!("sqlite:{}", dir.path().join("portcullis.db").display());
    let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut db).await.unwrap();
    assert_eq!(check, "ok");
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM users").fetch_all(&mut db).await.unwrap();
    let lost: Vec<_> = answered.iter().filter(|e| !stored.contains(e)).collect();
    assert!(lost.is_empty(), "answered but lost: {lost:?} of {}", answered.len());
    db.close().await.unwrap();

    let (mut again, base) = serve(dir.path(), &[]).await;
    let r = browser().get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the database answers after the restart");
    signal(&again, "TERM");
    assert!(tokio::time::timeout(Duration::from_secs(20), again.wait()).await.unwrap().unwrap().success());
}

/// A TCP relay to PostgreSQL that can go away: its port refuses connections
/// and every open one is cut, as when the database restarts or the network
/// to it fails, without touching the PostgreSQL server other tests share.
struct DatabaseRelay {
    port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl DatabaseRelay {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, mut state) = tokio::sync::watch::channel(true);
        let relay_up = up.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(open) = listener.as_ref() else {
                    if state.changed().await.is_err() {
                        return;
                    }
                    if *state.borrow() {
                        listener = Some(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap());
                    }
                    continue;
                };
                tokio::select! {
                    accepted = open.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let (upstream, mut down) = (upstream.clone(), relay_up.subscribe());
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = down.wait_for(|up| !*up) => {}
                            }
                        });
                    }
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if !*state.borrow() {
                            listener = None; // closed: connections are refused
                        }
                    }
                }
            }
        });
        Self { port, up }
    }

    /// Cuts every connection and refuses new ones until [`Self::come_back`].
    fn go_away(&self) {
        self.up.send_replace(false);
    }

    fn come_back(&self) {
        self.up.send_replace(true);
    }
}

/// What the simulated browsers saw, by phase.
#[derive(Default, Debug)]
struct Answers {
    signed_in: usize,
    unavailable: usize,
    other: Vec<String>,
}

/// A steady load of sign-ins while PostgreSQL goes away for three seconds
/// and comes back: every answer is a sign-in or a 503 that says so with
/// `Retry-After`, never a 500 or a dropped connection; `/readyz` says 503
/// while the database is away and 200 after; the server recovers without a
/// restart; every sign-in that was answered has its session stored; and a
/// refresh token sent five times at once while it is away and five times
/// after is accepted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_under_sign_ins_is_answered_503_and_recovered_from_without_a_restart() {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| portcullis_store::testing::DEFAULT_POSTGRES_URL.to_owned());
    let admin = url::Url::parse(&admin).unwrap();
    let upstream = format!("{}:{}", admin.host_str().unwrap(), admin.port().unwrap_or(5432));
    let relay = DatabaseRelay::start(upstream).await;
    let direct = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (relay_port, seen) = (relay.port, direct.clone());
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Postgres, move |c| {
        let mut url = url::Url::parse(c.database_url.as_deref().unwrap()).unwrap();
        *seen.lock().unwrap() = url.to_string();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(relay_port)).unwrap();
        c.database_url = Some(url.to_string());
        c.rate_limit.sign_in_per_minute = 100_000;
    })
    .await
    else {
        return;
    };
    // One account per browser: an attempt the outage cuts off mid-check stays
    // counted against its account (by design: a client that hangs up mid-hash
    // must not escape the count), so four browsers on one account could lock
    // it across the two transitions with the right password.
    let emails = ["hal0@example.com", "hal1@example.com", "hal2@example.com", "hal3@example.com"];
    for email in emails {
        app.verified_user(email).await;
    }
    // A one-time value issued before the outage: an application's refresh token.
    app.verified_user("ada@example.com").await;
    let (client_id, secret) = crate::oidc::register(&app, false, portcullis_core::oauth::SigningAlg::ES256).await;
    let secret = secret.unwrap();
    let rp = app.rp(&client_id, Some(&secret)).await;
    let (code, verifier, _) = crate::oidc::signed_in_code(&app, &rp).await;
    let refresh = {
        use openidconnect::OAuth2TokenResponse;
        rp.exchange(&app, code, verifier).await.refresh_token().unwrap().secret().clone()
    };
    let refresh_five_times = || {
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let request = browser()
                .post(app.url("/token"))
                .basic_auth(&client_id, Some(&secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())]);
            sends.spawn(async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) });
        }
        sends.join_all()
    };

    let phase = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0)); // 0 before, 1 away, 2 back, 3 stop
    let mut browsers = tokio::task::JoinSet::new();
    for email in emails {
        let (base, phase) = (app.base.clone(), phase.clone());
        browsers.spawn(async move {
            let mut answers: [Answers; 3] = Default::default();
            loop {
                let now = phase.load(std::sync::atomic::Ordering::SeqCst);
                if now == 3 {
                    break answers;
                }
                let seen = &mut answers[now as usize];
                let client = browser();
                let page = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
                let form = [("email", email), ("password", PASSWORD), ("csrf_token", &csrf_token_in(&page))];
                let r = client.post(format!("{base}/login")).form(&form).send().await;
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        seen.other.push(format!("no answer: {e}"));
                        continue;
                    }
                };
                let (status, retry) = (r.status(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()));
                let body = r.text().await.unwrap_or_default();
                match status {
                    StatusCode::SEE_OTHER => seen.signed_in += 1,
                    StatusCode::SERVICE_UNAVAILABLE
                        if retry.as_deref() == Some("5") && body.contains("Portcullis cannot reach its database right now.") =>
                    {
                        seen.unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => seen.other.push(format!("{other} {retry:?}: {}", body.chars().take(300).collect::<String>())),
                }
            }
        });
    }
    let ready = |client: reqwest::Client, base: String| async move { client.get(format!("{base}/readyz")).send().await.unwrap().status() };
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay.go_away();
    phase.store(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ready(browser(), app.base.clone()).await, StatusCode::SERVICE_UNAVAILABLE, "not ready while the database is away");
    // An application at the token endpoint is told the same, in OAuth's words.
    let token = browser()
        .post(format!("{}/token", app.base))
        .basic_auth("some-client", Some("some-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(token.headers().get("retry-after").unwrap(), "5");
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let refreshed_away = refresh_five_times().await;
    assert!(refreshed_away.iter().all(|s| *s == 503), "the refresh token while the database is away: {refreshed_away:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    relay.come_back();
    let back = Instant::now();
    phase.store(2, std::sync::atomic::Ordering::SeqCst);
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(20) {
        if ready(browser(), app.base.clone()).await == StatusCode::OK {
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("ready again without a restart");
    let refreshed_back = refresh_five_times().await;
    let accepted = refreshed_back.iter().filter(|s| **s == 200).count();
    assert_eq!(accepted, 1, "the refresh token once it is back, five at once: {refreshed_back:?}");
    assert!(refreshed_back.iter().all(|s| *s == 200 || *s == 400), "{refreshed_back:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    phase.store(3, std::sync::atomic::Ordering::SeqCst);
    let all = browsers.join_all().await;
    let total = |p: usize, f: fn(&Answers) -> usize| all.iter().map(|a| f(&a[p])).sum::<usize>();
    let others: Vec<&String> = all.iter().flat_map(|a| a.iter().flat_map(|p| &p.other)).collect();
    eprintln!(
        "database outage: before {} signed in; during {} signed in, {} answered 503; after {} signed in, {} answered 503; ready {} ms after it came back",
        total(0, |a| a.signed_in),
        total(1, |a| a.signed_in),
        total(1, |a| a.unavailable),
        total(2, |a| a.signed_in),
        total(2, |a| a.unavailable),
        recovered.as_millis()
    );
    assert!(others.is_empty(), "only sign-ins and 503s that say why: {} others, the first {:?}", others.len(), others.first());
    assert!(total(0, |a| a.signed_in) > 0 && total(2, |a| a.signed_in) > 0, "sign-ins before and after");
    assert!(total(1, |a| a.unavailable) > 0, "503s while it was away");

    // Every sign-in that was answered has its session; none was lost.
    use sqlx::Connection;
    let direct_url = direct.lock().unwrap().clone();
    let mut db = sqlx::postgres::PgConnection::connect(&direct_url).await.unwrap();
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&mut db).await.unwrap();
    let answered = (0..3).map(|p| total(p, |a| a.signed_in)).sum::<usize>();
    assert!(sessions as usize >= answered, "{sessions} sessions stored for {answered} sign-ins answered");
    db.close().await.unwrap();
}
