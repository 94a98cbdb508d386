//! The audit log's chain: `portcullis audit verify` on a real server's
//! database, after each kind of tampering someone with write access to the
//! database (and not to `DATA_DIR/secrets/`) could try.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, on_both_backends};

on_both_backends!(audit_verify_finds_every_kind_of_tampering, retention_keeps_the_chain_verifiable);

/// Runs one SQL statement against the app's database, as a tamperer would.
async fn tamper(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    let url = app.config.database_url.as_deref().unwrap();
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

/// `audit verify`: (exit status success, its JSON).
fn verify(app: &TestApp) -> (bool, serde_json::Value) {
    let out = app.cli(&["audit", "verify"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), json)
}

async fn seal(app: &TestApp) {
    app.state.accounts().operators().seal_audit_log().await.unwrap();
}

/// Some history: a sign-up, its confirmation, failures, a success.
async fn history(app: &TestApp) {
    app.verified_user("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.sign_in("ada@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

async fn audit_verify_finds_every_kind_of_tampering(app: TestApp) {
    history(&app).await;
    // (The server seals every two seconds too; this makes it now.)
    seal(&app).await;
    let (ok, report) = verify(&app);
    let sealed = report["checked"].as_i64().unwrap();
    assert!(ok && sealed >= 4 && report["unsealed"] == 0, "{report}");
    assert_eq!(report["head"]["seq"].as_i64(), Some(sealed));
    let middle = sealed / 2;

    // An edited event (its detail), then put back as it was: the chain holds again.
    let detail = |sql: &str| sql.replace("SEQ", &middle.to_string());
    tamper(&app, &detail("UPDATE audit_events SET detail = detail || ' ' WHERE seq = SEQ")).await;
    let (ok, report) = verify(&app);
    assert!(!ok, "{report}");
    assert_eq!(report["broken"]["seq"].as_i64(), Some(middle), "{report}");
    assert!(report["broken"]["reason"].as_str().unwrap().contains("does not match its link"), "{report}");
    assert_eq!(report["checked"].as_i64(), Some(middle - 1));
    tamper(&app, &detail("UPDATE audit_events SET detail = rtrim(detail) WHERE seq = SEQ")).await;
    assert!(verify(&app).0, "restored");

    // What happened, changed.
    tamper(&app, &detail("UPDATE audit_events SET event = event || 'x' WHERE seq = SEQ")).await;
    assert_eq!(verify(&app).1["broken"]["seq"].as_i64(), Some(middle));
    tamper(&app, &detail("UPDATE audit_events SET event = substr(event, 1, length(event) - 1) WHERE seq = SEQ")).await;
    assert!(verify(&app).0, "restored");

    // Two events swapped in place (their places exchanged).
    tamper(&app, &detail("UPDATE audit_events SET seq = -1 WHERE seq = SEQ")).await;
    tamper(&app, &format!("UPDATE audit_events SET seq = {middle} WHERE seq = {}", middle + 1)).await;
    tamper(&app, &format!("UPDATE audit_events SET seq = {} WHERE seq = -1", middle + 1)).await;
    let (ok, report) = verify(&app);
    assert!(!ok && report["broken"]["seq"].as_i64() == Some(middle), "{report}");
    tamper(&app, &detail("UPDATE audit_events SET seq = -1 WHERE seq = SEQ")).await;
    tamper(&app, &format!("UPDATE audit_events SET seq = {middle} WHERE seq = {}", middle + 1)).await;
    tamper(&app, &format!("UPDATE audit_events SET seq = {} WHERE seq = -1", middle + 1)).await;
    assert!(verify(&app).0, "restored");

    // An inserted event, with a place of its own and a made-up link, at the end and in front.
    let forged = |seq: i64| {
        format!(
            "INSERT INTO audit_events (at, event, detail, seq, chain) VALUES (1, 'account_unlocked', '{{}}', {seq}, '{}')",
            "x".repeat(43)
        )
    };
    tamper(&app, &forged(sealed + 1)).await;
    let (ok, report) = verify(&app);
    assert!(!ok && report["broken"]["seq"].as_i64() == Some(sealed + 1), "{report}");
    tamper(&app, &format!("DELETE FROM audit_events WHERE seq = {}", sealed + 1)).await;
    tamper(&app, &forged(0)).await;
    let (ok, report) = verify(&app);
    assert!(!ok && report["broken"]["seq"].as_i64() == Some(1), "{report}");
    tamper(&app, "DELETE FROM audit_events WHERE seq = 0").await;
    assert!(verify(&app).0, "restored");

    // A deleted event: its place is missing.
    tamper(&app, &detail("DELETE FROM audit_events WHERE seq = SEQ")).await;
    let (ok, report) = verify(&app);
    assert!(!ok, "{report}");
    assert_eq!(report["broken"]["seq"].as_i64(), Some(middle), "{report}");
    assert!(report["broken"]["reason"].as_str().unwrap().contains("is missing"), "{report}");
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("the audit log's chain breaks at place {middle}")));
}

async fn retention_keeps_the_chain_verifiable(app: TestApp) {
    history(&app).await;
    seal(&app).await;
    let before = verify(&app).1["checked"].as_i64().unwrap();
    // Past the retention (400 days): the old events go, new ones come, and the chain verifies from its anchor.
    app.clock.advance(401 * 86_400);
    app.state.purge_expired().await.unwrap();
    for _ in 0..2 {
        assert_eq!(app.sign_in("ada@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    }
    seal(&app).await;
    let (ok, report) = verify(&app);
    assert!(ok, "{report}");
    assert_eq!(report["checked"].as_i64(), Some(2), "{report}");
    assert_eq!(report["head"]["seq"].as_i64(), Some(before + 2), "the places go on");
    // Deleting the oldest kept event is noticed, even after retention.
    tamper(&app, &format!("DELETE FROM audit_events WHERE seq = {}", before + 1)).await;
    assert!(!verify(&app).0);
}
