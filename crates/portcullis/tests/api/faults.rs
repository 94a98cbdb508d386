//! `portcullis serve` as a real process, stopped by signals: SIGTERM drains
//! what is in progress for a bounded time, SIGKILL loses nothing answered.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::helpers::{PASSWORD, browser, csrf_token_in};

/// A `serve` process on a free port with its data in `dir` (SQLite), cheap
/// hashes and the given extra settings; returns it once `/healthz` answers.
async fn serve(dir: &std::path::Path, settings: &[(&str, &str)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--listen", &listen, "--issuer", &base])
        .arg("--data-dir")
        .arg(dir)
        .env("PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB", "256")
        .env("PORTCULLIS_PASSWORD__ARGON2_ITERATIONS", "1")
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = browser();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
}

/// A request whose headers and the start of its body are sent, the rest not yet.
async fn request_in_progress(base: &str) -> tokio::net::TcpStream {
    let mut connection = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
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
