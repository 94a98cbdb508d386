//! Backups that restore: `portcullis backup` under sign-in load, restored
//! into another data directory, signs in there with what existed before;
//! damaged backups are refused; PostgreSQL's `pg_dump` restores likewise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use portcullis_store::testing::TestDatabase;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, private_tempdir};
use crate::oidc::{CALLBACK, query_param};
use crate::two_nodes::{A, Authorization, Browser, Cluster, amr, claims, cli_on, token, totp_code, user_with_app, userinfo};

const PASSPHRASE: &str = "a passphrase kept in the safe";

/// An app's sign-in for `email` with the password and the authenticator app
/// (`secret`, a code `steps_ahead` steps on): returns the ID token after the
/// code is redeemed with the client's secret.
async fn sign_in_to_app(cluster: &Cluster, client: (&str, &str), email: &str, secret: &[u8], steps_ahead: i64) -> String {
    let browser = Browser::new();
    let authorization = Authorization::new(client.0);
    let resume = authorization.resume_path(cluster, A, &browser).await;
    let verify = browser.password(cluster, A, email, &resume).await;
    assert!(verify.starts_with("/login/verify"), "the password alone signed in: {verify}");
    let page = browser.get(&cluster.url(A, &format!("{verify}&method=totp"))).await;
    let code = totp_code(secret, steps_ahead);
    let done = browser.post(&cluster.url(A, "/login/verify"), &[("method", "totp"), ("code", &code), ("next", &resume)], &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = browser.get(&cluster.url(A, &resume)).await.location.unwrap();
    let code = query_param(&back, "code").unwrap();
    let form =
        [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK), ("code_verifier", &authorization.verifier)];
    let (status, tokens) = token(cluster, A, client, &form).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(userinfo(cluster, A, tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&id_token)["email"], email);
    assert!(amr(&id_token).contains(&"otp".to_owned()), "{:?}", amr(&id_token));
    id_token
}

/// Runs the command line; returns (success, stdout, stderr).
fn run(dir: &std::path::Path, db: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let out = cli_on(dir, db, args, stdin);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_sign_in_load_restores_elsewhere_where_users_and_apps_sign_in() {
    let cluster = Cluster::on(TestDatabase::sqlite(), private_tempdir(), 1, &[]).await;
    let email = "ada@example.com";
    let (browser, secret, _) = user_with_app(&cluster, email).await;
    let (id, client_secret) = cluster.client();
    let client = (id.as_str(), client_secret.as_str());
    cluster.user("load@example.com");

    // Password sign-ins from four browsers at once until the backup is written.
    let stop = Arc::new(AtomicBool::new(false));
    let signed_in = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, signed_in, login) = (stop.clone(), signed_in.clone(), cluster.url(A, "/login"));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let b = Browser::new();
                    let page = b.get(&login).await;
                    let done = b.post(&login, &[("email", "load@example.com"), ("password", PASSWORD)], &page).await;
                    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
                    signed_in.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backups = private_tempdir();
    let file = backups.path().join("portcullis.backup");
    let file_arg = file.to_str().unwrap().to_owned();
    let before = signed_in.load(Ordering::Relaxed);
    let (data, db) = (cluster.dir.path().to_owned(), cluster.db.url.clone());
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        run(&data, &db, &["backup", "--to", &file_arg, "--passphrase-stdin"], Some(&format!("{PASSPHRASE}\n")))
    })
    .await
    .unwrap();
    let during = signed_in.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(ok, "{err}");
    assert!(during > 0, "no sign-in ran while the backup was taken");
    let written: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["sealed"], true);
    let paths: Vec<&str> = written["manifest"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    // The VAPID key too: without it every paired phone would have to subscribe again.
    assert_eq!(paths, ["portcullis.db", "secrets/cookie.key", "secrets/encryption.key", "secrets/vapid.key"]);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let raw = std::fs::read(&file).unwrap();
    assert!(!raw.windows(15).any(|w| w == b"SQLite format 3"), "the sealed backup shows the database");

    // Checked, with and without the passphrase.
    let (dir, db) = (cluster.dir.path().to_owned(), cluster.db.url.clone());
    let (ok, out, err) = run(&dir, &db, &["verify-backup", "--from", file.to_str().unwrap(), "--passphrase-stdin"], Some(PASSPHRASE));
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["ok"], true);
    let (ok, _, err) = run(&dir, &db, &["verify-backup", "--from", file.to_str().unwrap()], None);
    assert!(!ok && err.contains("--passphrase-stdin"), "{err}");
    let (ok, _, err) =
        run(&dir, &db, &["verify-backup", "--from", file.to_str().unwrap(), "--passphrase-stdin"], Some("not the passphrase"));
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    // A backup never replaces a file.
    let (ok, _, err) = run(&dir, &db, &["backup", "--to", file.to_str().unwrap()], None);
    assert!(!ok && err.contains("exists"), "{err}");
    let _ = cluster.stop().await;

    // Restored into another data directory and database file.
    let (elsewhere, db2) = (private_tempdir(), TestDatabase::sqlite());
    let restore = ["restore", "--from", file.to_str().unwrap(), "--passphrase-stdin"];
    let (ok, _, err) = run(elsewhere.path(), &db2.url, &restore, Some(PASSPHRASE));
    assert!(ok, "{err}");
    let (ok, _, err) = run(elsewhere.path(), &db2.url, &restore, Some(PASSPHRASE));
    assert!(!ok && err.contains("--force"), "a second restore replaced a live directory: {err}");
    let (ok, _, err) = run(elsewhere.path(), &db2.url, &[&restore[..], &["--force"]].concat(), Some(PASSPHRASE));
    assert!(ok, "{err}");
    // What --force replaced is kept beside it.
    let db2_file = std::path::PathBuf::from(db2.url.trim_start_matches("sqlite:"));
    assert!(std::path::Path::new(&format!("{}.pre-restore", db2_file.display())).exists());
    assert!(elsewhere.path().join("secrets.pre-restore/encryption.key").exists());

    let restored = Cluster::on(db2, elsewhere, 1, &[]).await;
    // The browser signed in before the backup still is (its session and the cookie key came back).
    let account = browser.get(&restored.url(A, "/account")).await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    // The user signs in to the app with the password and the authenticator app.
    sign_in_to_app(&restored, client, email, &secret, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_cut_backup_is_refused_and_restores_nothing() {
    let (dir, db) = (private_tempdir(), TestDatabase::sqlite());
    let (ok, _, err) = run(dir.path(), &db.url, &["user", "create", "--email", "op@example.com", "--password-stdin"], Some(PASSWORD));
    assert!(ok, "{err}");
    let file = dir.path().join("plain.tar");
    let (ok, _, err) = run(dir.path(), &db.url, &["backup", "--to", file.to_str().unwrap()], None);
    assert!(ok, "{err}");
    let good = std::fs::read(&file).unwrap();
    let db_at = good.windows(15).position(|w| w == b"SQLite format 3").unwrap();

    let mut changed = good.clone();
    changed[db_at + 5000] ^= 0x40;
    let cut = good[..good.len() / 2].to_vec();
    for (name, bytes, says) in [("changed", changed, "checksum"), ("cut", cut, "")] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, bytes).unwrap();
        let (ok, _, err) = run(dir.path(), &db.url, &["verify-backup", "--from", bad.to_str().unwrap()], None);
        assert!(!ok && err.contains(says), "{name}: {err}");
        let (target, db2) = (private_tempdir(), TestDatabase::sqlite());
        let (ok, _, err) = run(target.path(), &db2.url, &["restore", "--from", bad.to_str().unwrap()], None);
        assert!(!ok, "{name} restored: {err}");
        assert!(!std::path::Path::new(db2.url.trim_start_matches("sqlite:")).exists(), "{name}: a database was written");
        assert!(!target.path().join("secrets").exists(), "{name}: secrets were written");
    }
    let (ok, out, err) = run(dir.path(), &db.url, &["verify-backup", "--from", file.to_str().unwrap()], None);
    assert!(ok && out.contains("\"ok\":true"), "{err}");
    // Given a passphrase, a plain backup (which anyone could have put in a sealed one's place) is refused.
    let (ok, _, err) = run(
        dir.path(),
        &db.url,
        &["verify-backup", "--from", file.to_str().unwrap(), "--passphrase-stdin"],
        Some("a passphrase kept in the safe"),
    );
    assert!(!ok && err.contains("not sealed"), "{err}");
    // A data directory missing a key is no backup.
    std::fs::remove_file(dir.path().join("secrets/encryption.key")).unwrap();
    let (ok, _, err) = run(dir.path(), &db.url, &["backup", "--to", dir.path().join("again.tar").to_str().unwrap()], None);
    assert!(!ok && err.contains("encryption.key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_backup_points_to_pg_dump_and_a_dump_restored_into_a_fresh_database_signs_in() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let cluster = Cluster::on(db, private_tempdir(), 1, &[]).await;
    let email = "ada@example.com";
    let (_, secret, _) = user_with_app(&cluster, email).await;
    let (id, client_secret) = cluster.client();
    let client = (id.as_str(), client_secret.as_str());
    let (ok, _, err) = run(cluster.dir.path(), &cluster.db.url, &["backup", "--to", "/nonexistent/x"], None);
    assert!(!ok && err.contains("pg_dump"), "{err}");

    // As the README's Operations section says: pg_dump, and the secrets directory.
    let dump = cluster.dir.path().join("portcullis.dump");
    let status = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&cluster.db.url)
        .status()
        .expect("pg_dump (PostgreSQL's client tools) is installed");
    assert!(status.success());
    let fresh = TestDatabase::postgres().await.unwrap();
    let status = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &fresh.url])
        .arg(&dump)
        .status()
        .expect("pg_restore is installed");
    assert!(status.success());
    let elsewhere = private_tempdir();
    let secrets = elsewhere.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    for name in ["cookie.key", "encryption.key"] {
        std::fs::copy(cluster.dir.path().join("secrets").join(name), secrets.join(name)).unwrap();
    }
    let _ = cluster.stop().await;
    let restored = Cluster::on(fresh, elsewhere, 1, &[]).await;
    sign_in_to_app(&restored, client, email, &secret, 1).await;
}
