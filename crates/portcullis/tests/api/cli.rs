//! The `portcullis` command line, run as a real process.

use std::io::Write;
use std::process::{Command, Stdio};

use portcullis_store::testing::TestDatabase;

use crate::helpers::{Backend, PASSWORD};

fn portcullis(data_dir: &std::path::Path, db: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", db])
        .env("PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB", "256")
        .env("PORTCULLIS_PASSWORD__ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn user_commands(backend: Backend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let dir = crate::helpers::private_tempdir();
    let d = dir.path();

    let (code, out, _) = portcullis(d, &db.url, &["migrate"], None);
    assert_eq!(code, 0);
    assert!(out.contains("migrations applied"));

    let (code, out, err) = portcullis(
        d,
        &db.url,
        &["user", "create", "--email", "Op@Example.com", "--name", "Op", "--admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(created["email"], "op@example.com");
    assert_eq!(created["admin"], true);

    let (code, _, err) = portcullis(d, &db.url, &["user", "create", "--email", "op@example.com", "--password-stdin"], Some(PASSWORD));
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("already exists"), "{err}");

    let (code, _, err) = portcullis(d, &db.url, &["user", "create", "--email", "weak@example.com", "--password-stdin"], Some("password"));
    assert_ne!(code, 0);
    assert!(err.contains("too easy to guess"), "{err}");

    let (code, out, _) = portcullis(d, &db.url, &["user", "list"], None);
    assert_eq!(code, 0);
    let users: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email_verified"], true, "operator-made accounts count as verified");
    assert_eq!(users[0]["locked"], false);

    let (code, out, _) = portcullis(d, &db.url, &["user", "unlock", "--email", "op@example.com"], None);
    assert_eq!((code, out.trim()), (0, "op@example.com: was not locked"));
    let (code, _, _) = portcullis(d, &db.url, &["user", "delete", "--email", "op@example.com"], None);
    assert_eq!(code, 0);
    let (code, _, err) = portcullis(d, &db.url, &["user", "delete", "--email", "op@example.com"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no user"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_on_sqlite() {
    user_commands(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_on_postgres() {
    user_commands(Backend::Postgres).await;
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portcullis.toml");
    std::fs::write(&file, "[lockout]\nmax_failures = \"lots\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).args(["migrate", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("lockout.max_failures"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).arg("serve").env("PORTCULLIS_ISSUER", "not a url").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("issuer"));

    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).args(["serve", "--database-url", "mysql://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_followed_and_exported_from_the_command_line() {
    let Some(app) = crate::helpers::spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", "wrong-password-x").await;
    app.sign_in("ada@example.com", PASSWORD).await;

    let out = app.cli(&["audit", "tail", "-n", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["sign_in_failed", "sign_in_succeeded"], "oldest first");
    assert_eq!((lines[0]["ip"].as_str(), lines[0]["detail"]["method"].as_str()), (Some("127.0.0.1"), Some("pwd")));

    let out = app.cli(&["user", "grant-admin", "--email", "ada@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&["audit", "export", "--user", "ada@example.com", "--event", "admin_changed", "--since", "1h"]);
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 1, "{exported}");
    assert_eq!((exported[0]["detail"]["admin"].as_bool(), exported[0]["user_agent"].as_str()), (Some(true), Some("portcullis-cli")));
    let all: serde_json::Value = serde_json::from_slice(&app.cli(&["audit", "export"]).stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let bad = app.cli(&["audit", "tail", "--event", "nonsense"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sign_in_failed"), "the error lists the kinds");

    // --follow prints what happens after it starts.
    let (mut follower, rx) = follow_audit(&app, &["--event", "sign_in_failed"]);
    assert!(rx.recv_timeout(std::time::Duration::from_millis(1500)).is_err(), "nothing new yet");
    app.other_browser().sign_in("ada@example.com", "another-wrong-1").await;
    let line = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the new failure is printed");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "sign_in_failed");
    follower.kill().unwrap();
    follower.wait().unwrap();
}

/// `portcullis audit tail --follow -n 0 ARGS` against the app's database, its lines on a channel.
fn follow_audit(app: &crate::helpers::TestApp, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut follower = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "tail", "--follow", "-n", "0"])
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .args(["--database-url", app.config.database_url.as_deref().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (follower, rx)
}

/// Events printed within `wait`, by kind.
fn printed_events(rx: &std::sync::mpsc::Receiver<String>, wait: std::time::Duration) -> Vec<String> {
    let until = std::time::Instant::now() + wait;
    let mut kinds = Vec::new();
    while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        kinds.push(event["event"].as_str().unwrap().to_owned());
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tail_follow_prints_an_event_whose_transaction_commits_after_a_later_one() {
    // PostgreSQL hands out ids at insert time: a transaction can hold id N while N+1 commits.
    let Some(app) = crate::helpers::spawn_app(Backend::Postgres).await else {
        return;
    };
    app.verified_user("ada@example.com").await;
    let (mut follower, rx) = follow_audit(&app, &[]);
    assert_eq!(printed_events(&rx, std::time::Duration::from_millis(1500)), Vec::<String>::new(), "nothing new yet");

    use sqlx::Connection;
    let mut late = sqlx::PgConnection::connect(app.config.database_url.as_deref().unwrap()).await.unwrap();
    let mut tx = late.begin().await.unwrap();
    sqlx::query("INSERT INTO audit_events (at, event, detail) VALUES ($1, 'user_deleted', '{}')")
        .bind(portcullis_core::clock::Clock::now(&app.clock))
        .execute(&mut *tx)
        .await
        .unwrap();
    app.sign_in("ada@example.com", "wrong-password-x").await;
    let first = printed_events(&rx, std::time::Duration::from_secs(3));
    assert_eq!(first, ["sign_in_failed"], "the later event, committed first");
    tx.commit().await.unwrap();
    let then = printed_events(&rx, std::time::Duration::from_secs(4));
    assert_eq!(then, ["user_deleted"], "the earlier id, once, when it commits");
    follower.kill().unwrap();
    follower.wait().unwrap();
}
