//! Account lockout and per-IP rate limits; no account enumeration.

use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp, csrf_token_in, on_both_backends, spawn_app_with};

on_both_backends!(
    five_wrong_passwords_lock_the_account_for_five_minutes,
    unknown_addresses_answer_and_lock_exactly_like_real_ones,
    a_success_forgets_the_failures_before_it,
    wrong_passwords_sent_at_once_are_counted_before_they_are_checked,
    a_budget_spent_by_attempts_never_checked_locks_for_a_while_and_tells_the_owner,
);

/// One hash at a time and no waiting room; six failures lock.
fn overloaded(c: &mut portcullis::config::Config) {
    c.password.max_concurrent_hashes = 1;
    c.password.max_waiting_hashes = Some(0);
    c.lockout.max_failures = 6;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_overloaded_server_refuses_at_once_and_counts_nothing_against_the_account() {
    if let Some(app) = spawn_app_with(Backend::Sqlite, overloaded).await {
        an_overloaded_server_refuses_at_once_and_counts_nothing_against_the_account(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_overloaded_server_refuses_at_once_and_counts_nothing_against_the_account() {
    if let Some(app) = spawn_app_with(Backend::Postgres, overloaded).await {
        an_overloaded_server_refuses_at_once_and_counts_nothing_against_the_account(app).await
    }
}

async fn an_overloaded_server_refuses_at_once_and_counts_nothing_against_the_account(app: TestApp) {
    app.verified_user("max@example.com").await;
    // The only hashing place is taken (as by a sign-in in progress), so every
    // password is refused: deterministic, where six sign-ins racing one slow
    // hash depended on timing.
    let busy = app.state.accounts().password_hasher().reserve().unwrap();
    for _ in 0..6 {
        let page = app.sign_in("max@example.com", "wrong-password-x").await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers.get("retry-after").unwrap(), "1");
        assert!(page.body.contains("Many people are signing in right now. Try again in a moment."), "{}", page.body);
    }
    let unknown = app.sign_in("nobody@example.com", "wrong-password-x").await;
    assert_eq!(unknown.status, StatusCode::SERVICE_UNAVAILABLE, "an unknown email is refused alike (no enumeration)");
    drop(busy);
    // Six wrong passwords lock at max_failures = 6, unless the refused ones went uncounted.
    for attempt in 1..=5 {
        assert_eq!(app.sign_in("max@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let right = app.sign_in("max@example.com", PASSWORD).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "the refused attempts were counted as failures: {}", right.body);
}

/// Twelve wrong passwords sent at once, each from its own browser: each is
/// counted before it is checked, so exactly five (the budget) are checked
/// and audited, the fifth locks, and the other seven are refused unchecked.
/// Counted after the check, every one that overlapped was checked first.
async fn wrong_passwords_sent_at_once_are_counted_before_they_are_checked(app: TestApp) {
    app.verified_user("eve@example.com").await;
    let mut forms = Vec::new();
    for _ in 0..12 {
        let browser = crate::helpers::browser();
        let page = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        forms.push((browser, csrf_token_in(&page)));
    }
    let mut running = tokio::task::JoinSet::new();
    for (browser, token) in forms {
        let url = app.url("/login");
        running.spawn(async move {
            let form = [("email", "eve@example.com"), ("password", "wrong-password-x"), ("csrf_token", token.as_str())];
            browser.post(url).form(&form).send().await.unwrap().status()
        });
    }
    let statuses = running.join_all().await;
    let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let locked = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((refused, locked), (4, 8), "four plain refusals, the fifth locks, seven refused unchecked: {statuses:?}");
    let checked = app.audit(portcullis_core::audit::AuditKind::SignInFailed).await;
    assert_eq!(checked.len(), 5, "exactly the budget was checked");
    assert_eq!(app.audit(portcullis_core::audit::AuditKind::AccountLocked).await.len(), 1);
    assert_eq!(app.sign_in("eve@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS, "locked");
}

/// Five attempts counted and never checked (each cancelled mid-hash by a
/// client that went away, so none reached its verdict or the lock): the next
/// attempt locks the account, audited and emailed, for the usual five
/// minutes, not a counter refusing forever without a lock.
async fn a_budget_spent_by_attempts_never_checked_locks_for_a_while_and_tells_the_owner(app: TestApp) {
    use portcullis_core::account_store::AccountStore;
    app.verified_user("gus@example.com").await;
    let now = portcullis_core::clock::Clock::now(&app.clock);
    for _ in 0..5 {
        app.state.accounts().store().record_login_failure("gus@example.com", now, now - 900).await.unwrap();
    }
    let refused = app.sign_in("gus@example.com", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "over the budget, even the right password");
    assert_eq!(refused.headers.get("retry-after").unwrap(), "300");
    assert_eq!(app.audit(portcullis_core::audit::AuditKind::AccountLocked).await.len(), 1, "the lock is recorded");
    let mut told = false;
    for _ in 0..50 {
        told = app.outbox().iter().any(|m| m.email.to == "gus@example.com" && m.email.subject.contains("your account is locked"));
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(told, "the owner is told");
    app.clock.advance(300);
    assert_eq!(app.sign_in("gus@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER, "the lock ends");
}

async fn five_wrong_passwords_lock_the_account_for_five_minutes(app: TestApp) {
    app.verified_user("jack@example.com").await;
    for attempt in 1..=4 {
        let page = app.sign_in("jack@example.com", "wrong-password-x").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(page.body.contains("Incorrect email or password."));
    }
    let fifth = app.sign_in("jack@example.com", "wrong-password-x").await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(fifth.body.contains("Too many failed attempts. Try again in 5 minutes."), "{}", fifth.body);
    assert_eq!(fifth.headers.get("retry-after").unwrap(), "300");

    // Locked: even the right password is refused.
    app.clock.advance(299);
    let locked = app.sign_in("jack@example.com", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers.get("retry-after").unwrap(), "1");

    app.clock.advance(1);
    assert_eq!(app.sign_in("jack@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER, "unlocked after the period");
}

async fn a_success_forgets_the_failures_before_it(app: TestApp) {
    app.verified_user("lena@example.com").await;
    for _ in 0..4 {
        assert_eq!(app.sign_in("lena@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.sign_in("lena@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    app.sign_out().await;
    for attempt in 1..=4 {
        let page = app.sign_in("lena@example.com", "wrong-password-x").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt} after the success counts from zero");
    }
    assert_eq!(app.sign_in("lena@example.com", "wrong-password-x").await.status, StatusCode::TOO_MANY_REQUESTS);
}

async fn unknown_addresses_answer_and_lock_exactly_like_real_ones(app: TestApp) {
    app.verified_user("kate@example.com").await;
    for _ in 0..4 {
        let real = app.sign_in("kate@example.com", "wrong-password-x").await;
        let fake = app.sign_in("ghost@example.com", "wrong-password-x").await;
        assert_eq!(real.status, fake.status);
        assert_eq!(real.body.replace("kate@example.com", "X"), fake.body.replace("ghost@example.com", "X"));
    }
    let real = app.sign_in("kate@example.com", "wrong-password-x").await;
    let fake = app.sign_in("ghost@example.com", "wrong-password-x").await;
    assert_eq!((real.status, fake.status), (StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(real.body.replace("kate@example.com", "X"), fake.body.replace("ghost@example.com", "X"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_unlocks_a_locked_account_and_the_lock_is_shared_by_processes() {
    // Two server processes on one PostgreSQL database share one failure budget.
    let Some(first) = spawn_app_with(Backend::Postgres, |c| c.lockout.max_failures = 4).await else {
        return;
    };
    first.verified_user("lou@example.com").await;
    let db_url = first.config.database_url.clone().unwrap();
    // Processes sharing a database share its secrets too (see README).
    let shared_dir = first.config.data_dir.clone();
    let Some(second) = spawn_app_with(Backend::Sqlite, |c| {
        c.database_url = Some(db_url.clone());
        c.data_dir = shared_dir.clone();
        c.lockout.max_failures = 4;
    })
    .await
    else {
        return;
    };
    assert_eq!(first.sign_in("lou@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(second.sign_in("lou@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.sign_in("lou@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        second.sign_in("lou@example.com", "wrong-password-x").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the fourth failure, counted across both processes, locks"
    );
    assert_eq!(first.sign_in("lou@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["user", "unlock", "--email", "lou@example.com", "--database-url", &db_url, "--data-dir"])
        .arg(&first.config.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lou@example.com: unlocked");
    assert_eq!(first.sign_in("lou@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_sign_in_attempts_from_one_address_get_429_with_retry_after() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.rate_limit.sign_in_per_minute = 3).await else {
        return;
    };
    // Start of a minute so the window does not roll over mid-test.
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    for i in 0..3 {
        let page = app.sign_in(&format!("user{i}@example.com"), "wrong-password-x").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app.sign_in("user9@example.com", "wrong-password-x").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers.get("retry-after").unwrap(), "60");
    assert!(limited.body.contains("Too many requests"));
    app.clock.advance(60);
    assert_eq!(app.sign_in("user9@example.com", "wrong-password-x").await.status, StatusCode::UNAUTHORIZED, "a new minute, a new budget");
}

/// A wrong-password sign-in sent with an `X-Forwarded-For` header.
async fn sign_in_forwarded_for(app: &TestApp, email: &str, forwarded_for: &str) -> StatusCode {
    let token = csrf_token_in(&app.get("/login").await.body);
    let form = [("email", email), ("password", "wrong-password-x"), ("csrf_token", &token)];
    app.client.post(app.url("/login")).header("x-forwarded-for", forwarded_for).form(&form).send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.rate_limit.sign_in_per_minute = 3).await else {
        return;
    };
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    for i in 1..=3 {
        assert_eq!(sign_in_forwarded_for(&app, "eve@example.com", &format!("203.0.113.{i}")).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        sign_in_forwarded_for(&app, "eve@example.com", "203.0.113.4").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a made-up address does not buy a new budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_client_by_x_forwarded_for() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limit.sign_in_per_minute = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
    else {
        return;
    };
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    for _ in 0..3 {
        assert_eq!(sign_in_forwarded_for(&app, "eve@example.com", "203.0.113.1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sign_in_forwarded_for(&app, "eve@example.com", "203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sign_in_forwarded_for(&app, "eve@example.com", "203.0.113.2").await, StatusCode::UNAUTHORIZED, "another client");
    assert_eq!(
        sign_in_forwarded_for(&app, "eve@example.com", "198.51.100.7, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "what the client wrote left of the proxy's entry is not believed"
    );
}

/// Each first step, sign-up and reset request counts against its address's
/// budget (the throttles are route layers; a route left without one would
/// pass here), and a refusal says when to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_first_step_route_spends_the_same_per_address_budget() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.factors.email_passwordless = true;
        c.rate_limit.sign_in_per_minute = 5;
        c.rate_limit.sign_up_per_minute = 1;
        c.rate_limit.send_email_per_minute = 1;
    })
    .await
    else {
        return;
    };
    app.clock.advance(60 - portcullis_core::clock::Clock::now(&app.clock) % 60);
    let token = csrf_token_in(&app.get("/login").await.body);
    let post = |path: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let mut form = fields;
        form.push(("csrf_token", token.as_str()));
        let request = app.client.post(app.url(path)).form(&form);
        async move { request.send().await.unwrap() }
    };
    let first_steps: [(&str, Vec<(&str, &str)>); 5] = [
        ("/login", vec![("email", "eve@example.com"), ("password", "wrong-password-x"), ("next", "/authorize/resume?request=r1")]),
        ("/login/code", vec![("email", "eve@example.com")]),
        ("/login/code/verify", vec![("email", "eve@example.com"), ("code", "000000"), ("next", "/authorize/resume?request=r1")]),
        ("/login/passkey/options", vec![]),
        ("/login/passkey", vec![("ceremony", "x"), ("credential", "{}")]),
    ];
    for (path, fields) in first_steps.clone() {
        let status = post(path, fields).await.status();
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{path} within the budget");
    }
    for (path, fields) in first_steps {
        let refused = post(path, fields).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{path} over the budget");
        assert_eq!(refused.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some("60"), "{path}");
        let json = refused.headers().get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let body = refused.text().await.unwrap();
        assert!(body.contains("Too many requests"), "{path}: {body}");
        assert_eq!(json, path == "/login/passkey/options", "{path}: the WebAuthn script reads JSON, pages get HTML");
        // The form comes back as it was sent, so a retry resumes the application's request.
        if path == "/login" || path == "/login/code/verify" {
            let html = body.replace("&#x2f;", "/");
            assert!(html.contains(r#"value="/authorize/resume?request=r1""#) && html.contains("eve@example.com"), "{path}: {body}");
        }
        if path == "/login/code/verify" {
            assert!(body.contains(r#"name="code""#), "the code field, not the address form: {body}");
        }
    }
    let sign_up = vec![("email", "new@example.com"), ("name", "New"), ("password", PASSWORD), ("confirm", PASSWORD)];
    assert_eq!(post("/signup", sign_up.clone()).await.status(), StatusCode::OK, "sign-up has a budget of its own");
    assert_eq!(post("/signup", sign_up).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(post("/forgot-password", vec![("email", "new@example.com")]).await.status(), StatusCode::OK, "so do reset requests");
    assert_eq!(post("/forgot-password", vec![("email", "new@example.com")]).await.status(), StatusCode::TOO_MANY_REQUESTS);
}
