//! First run without default credentials: the one-time setup link, the first
//! administrator it creates, and that administrator's second factor before the
//! console. Attacks: a replayed link, links used at once, an expired link, a
//! link after an administrator exists, a wrong token, an address someone took
//! first, and the console with only the password.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, Page, TestApp, browser, csrf_token_in, on_both_backends};

on_both_backends!(
    the_setup_link_makes_an_admin_who_sets_up_a_second_factor_before_the_console,
    of_setups_sent_at_once_exactly_one_makes_an_admin,
    a_setup_link_expires_works_once_and_ends_when_an_admin_exists,
    an_address_someone_took_first_is_refused_and_the_link_still_works,
    the_store_checks_the_link_and_the_admins_again_inside_its_transaction,
);

/// A new setup link, as `serve` logs it; its path and query on this server.
async fn setup_link(app: &TestApp) -> String {
    let link = app.state.accounts().first_run().setup_link(app.state.now()).await.unwrap().expect("setup is open");
    let path = link.strip_prefix(&app.config.origin()).unwrap_or_else(|| panic!("{link} is not on {}", app.config.origin()));
    assert!(path.starts_with("/setup?token="), "{path}");
    path.to_owned()
}

fn token_of(path: &str) -> &str {
    path.split_once("token=").unwrap().1
}

async fn create_admin(app: &TestApp, path: &str, email: &str, password: &str) -> Page {
    let page = app.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let fields = [("token", token_of(path)), ("email", email), ("name", "First Admin"), ("password", password), ("confirm", password)];
    app.post("/setup", &fields, &page.body).await
}

async fn admins(app: &TestApp) -> Vec<String> {
    let users = app.state.accounts().operators().list_users().await.unwrap();
    users.into_iter().filter(|u| u.is_admin).map(|u| u.email.as_str().to_owned()).collect()
}

async fn the_setup_link_makes_an_admin_who_sets_up_a_second_factor_before_the_console(app: TestApp) {
    let path = setup_link(&app).await;
    // Opening the link (a previewer, a second look) spends nothing.
    let form = app.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Create the first administrator"), "{}", form.body);
    let again = app.get(&path).await;
    assert_eq!(again.status, StatusCode::OK);
    // A weak password is refused on the form, and the link still works.
    let weak = create_admin(&app, &path, "root@example.com", "password").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", weak.body);
    assert!(admins(&app).await.is_empty());

    let created = create_admin(&app, &path, "root@example.com", PASSWORD).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let to = created.location.unwrap();
    assert!(to.starts_with("/login/enroll"), "the first admin sets up a factor first: {to}");
    assert_eq!(admins(&app).await, ["root@example.com"]);
    // With only the password, the console stays shut.
    let console = app.get("/admin/users").await;
    assert_eq!(console.status, StatusCode::SEE_OTHER, "{}", console.body);
    assert!(console.location.as_deref().is_some_and(|l| l.starts_with("/login")), "{:?}", console.location);

    let enroll = app.get(&to).await;
    assert_eq!(enroll.status, StatusCode::OK, "{}", enroll.body);
    let (secret, done) = app.enroll_app_inline(&enroll).await;
    assert_eq!(done.status, StatusCode::OK, "recovery codes shown: {}", done.body);
    assert_eq!(crate::mfa::after(&done.body, "class=\"button\" href=\""), "/admin", "then on to the console");
    let console = app.get("/admin/users").await;
    assert_eq!(console.status, StatusCode::OK, "{}", console.body);
    assert!(console.body.contains("root@example.com"));

    // Used: neither the page nor the form works again, and no new link is given.
    assert_eq!(app.get(&path).await.status, StatusCode::BAD_REQUEST);
    let replay = app
        .post(
            "/setup",
            &[("token", token_of(&path)), ("email", "evil@example.com"), ("password", PASSWORD), ("confirm", PASSWORD)],
            &console.body,
        )
        .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.body.contains("This setup link has expired or was used"), "{}", replay.body);
    assert_eq!(admins(&app).await, ["root@example.com"]);
    assert_eq!(app.state.accounts().first_run().setup_link(app.state.now()).await.unwrap(), None);

    // The account must use MFA from now on: a password sign-in asks for the app.
    app.sign_out().await;
    let first = app.sign_in("root@example.com", PASSWORD).await;
    assert!(first.location.as_deref().is_some_and(|l| l.starts_with("/login/verify")), "{:?}", first.location);
    let verify = app.get(first.location.as_deref().unwrap()).await;
    let next = crate::mfa::hidden(&verify.body, "next");
    // The next period's code: the one used to set the app up is spent.
    app.clock.advance(30);
    let code = app.code_now(&secret);
    let signed_in = app.post("/login/verify", &[("method", "totp"), ("code", &code), ("next", &next)], &verify.body).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    let audit = app.cli(&["audit", "export", "--event", "user_created"]);
    let events = String::from_utf8_lossy(&audit.stdout);
    assert!(events.contains("\"setup_link\":true"), "{events}");

    // Deleting that administrator does not reopen setup: the command line does what is needed then.
    let origin = portcullis_core::audit::RequestOrigin::command_line();
    assert!(app.state.accounts().operators().delete_user("root@example.com", &origin, app.state.now()).await.unwrap());
    assert!(admins(&app).await.is_empty());
    assert_eq!(app.state.accounts().first_run().setup_link(app.state.now()).await.unwrap(), None);
}

async fn of_setups_sent_at_once_exactly_one_makes_an_admin(app: TestApp) {
    // Two links (two nodes started, or one started twice), ten browsers, five on each.
    let links = [setup_link(&app).await, setup_link(&app).await];
    let mut ready = Vec::new();
    for i in 0..10 {
        let client = browser();
        let path = &links[i % 2];
        let page = client.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        ready.push((client, token_of(path).to_owned(), csrf_token_in(&page), format!("admin{i}@example.com")));
    }
    let mut sends = tokio::task::JoinSet::new();
    for (client, token, csrf, email) in ready {
        let fields =
            [("token", token), ("email", email), ("password", PASSWORD.to_owned()), ("confirm", PASSWORD.to_owned()), ("csrf_token", csrf)];
        let request = client.post(app.url("/setup")).form(&fields);
        sends.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = sends.join_all().await;
    let created = statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    assert_eq!(admins(&app).await.len(), 1);
    // The other link died with the first admin.
    for path in &links {
        assert_eq!(app.get(path).await.status, StatusCode::BAD_REQUEST);
    }
}

async fn a_setup_link_expires_works_once_and_ends_when_an_admin_exists(app: TestApp) {
    // Nothing without the token, or with another one.
    assert_eq!(app.get("/setup").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/setup?token=AAAA").await.status, StatusCode::BAD_REQUEST);
    let path = setup_link(&app).await;
    let forged = format!("{}x", &path[..path.len() - 1]);
    assert_eq!(app.get(&forged).await.status, StatusCode::BAD_REQUEST);

    // An hour, then nothing.
    app.clock.advance(3599);
    let form = app.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    app.clock.advance(2);
    assert_eq!(app.get(&path).await.status, StatusCode::BAD_REQUEST);
    let late = app
        .post(
            "/setup",
            &[("token", token_of(&path)), ("email", "late@example.com"), ("password", PASSWORD), ("confirm", PASSWORD)],
            &form.body,
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.body);
    assert!(admins(&app).await.is_empty());

    // An administrator made on the command line ends every link, and no new one is given.
    let path = setup_link(&app).await;
    let form = app.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    app.state.accounts().operators().create_user("ops@example.com", "", PASSWORD, true, app.state.now()).await.unwrap();
    assert_eq!(app.get(&path).await.status, StatusCode::BAD_REQUEST);
    let after = app
        .post(
            "/setup",
            &[("token", token_of(&path)), ("email", "late@example.com"), ("password", PASSWORD), ("confirm", PASSWORD)],
            &form.body,
        )
        .await;
    assert_eq!(after.status, StatusCode::BAD_REQUEST, "{}", after.body);
    assert_eq!(admins(&app).await, ["ops@example.com"]);
    assert_eq!(app.state.accounts().first_run().setup_link(app.state.now()).await.unwrap(), None);
}

async fn an_address_someone_took_first_is_refused_and_the_link_still_works(app: TestApp) {
    // Someone signed up with the operator's address before setup: that account
    // (whose password they know) must not become the administrator.
    let squatter = app.sign_up("ops@example.com", crate::helpers::NEW_PASSWORD).await;
    assert_eq!(squatter.status, StatusCode::OK, "{}", squatter.body);
    let path = setup_link(&app).await;
    let taken = create_admin(&app, &path, "OPS@example.com", PASSWORD).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert!(taken.body.contains("An account with this address exists already"), "{}", taken.body);
    assert!(admins(&app).await.is_empty());
    let other = create_admin(&app, &path, "root@example.com", PASSWORD).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
    assert_eq!(admins(&app).await, ["root@example.com"]);
}

/// A first administrator as the domain would hand it to the store.
fn candidate(email: &str, now: i64) -> (portcullis_core::user::User, portcullis_core::audit::NewAuditEvent) {
    use portcullis_core::user::User;
    let email = portcullis_core::email::EmailAddress::parse(email).unwrap();
    let hash = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned();
    let user = User { email_verified_at: Some(now), is_admin: true, mfa_required: true, ..User::new_account(email, "", hash, now) };
    let origin = portcullis_core::audit::RequestOrigin::command_line();
    let event = portcullis_core::audit::NewAuditEvent::new(
        portcullis_core::audit::AuditKind::UserCreated,
        Some(user.id),
        &origin,
        serde_json::json!({}),
        now,
    );
    (user, event)
}

/// What the domain checks first (the link, at the same moment) is checked
/// again by the store's transaction, where a request that waited finds it changed.
async fn the_store_checks_the_link_and_the_admins_again_inside_its_transaction(app: TestApp) {
    use portcullis_core::account_store::{AccountStore, FirstAdmin};
    let store = app.state.accounts().store();
    let path = setup_link(&app).await;
    let digest = portcullis_core::secrets::token_digest(token_of(&path));
    let now = app.state.now();
    let (late, event) = candidate("late@example.com", now);
    assert_eq!(store.create_first_admin(&digest, &late, &event, now + 3600).await.unwrap(), FirstAdmin::LinkUnusable);
    app.state.accounts().operators().create_user("ops@example.com", "", PASSWORD, true, now).await.unwrap();
    let (other, event) = candidate("other@example.com", now);
    assert_eq!(store.create_first_admin(&digest, &other, &event, now).await.unwrap(), FirstAdmin::LinkUnusable);
    assert_eq!(admins(&app).await, ["ops@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_emailed_codes_count_the_first_admin_still_sets_up_a_factor_the_console_counts() {
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |c| {
        c.factors.email_requires_other_factor = false;
        c.factors.email_counts_as_mfa = true;
    })
    .await
    else {
        return;
    };
    let path = setup_link(&app).await;
    let created = create_admin(&app, &path, "root@example.com", PASSWORD).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let to = created.location.unwrap();
    assert!(to.starts_with("/login/enroll"), "not an emailed code, which the console does not count: {to}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_would_strand_the_admin_refuses_the_form_and_keeps_the_link() {
    // Inline setup never meets a phishing-resistant demand: the account could not reach the console.
    let rule = crate::policy::rule("keys only", portcullis_core::policy::RuleAction::RequirePhishingResistant);
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |c| c.policy.rules = vec![rule]).await else { return };
    let path = setup_link(&app).await;
    let refused = create_admin(&app, &path, "root@example.com", PASSWORD).await;
    assert_ne!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);
    assert!(refused.body.contains("security key or passkey"), "{}", refused.body);
    assert!(admins(&app).await.is_empty());
    assert_eq!(app.get(&path).await.status, StatusCode::OK, "the link still works");
}

/// The link a server's log shows, if any.
fn logged_link(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(log).unwrap();
    let start = text[..text.find("/setup?token=")?].rfind("http://")?;
    text[start..].split(|c: char| c.is_whitespace() || c == '\u{1b}').next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_a_setup_link_until_there_is_an_admin() {
    let dir = crate::helpers::private_tempdir();
    let logs = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let log = logs.path().join("first.log");
    let mut server = crate::helpers::serve_process(port, dir.path(), &issuer, &[], Some(&log)).await;
    let link = logged_link(&log).expect("a setup link in the log");
    assert!(link.starts_with(&format!("{issuer}/setup?token=")), "{link}");
    assert_eq!(browser().get(&link).send().await.unwrap().status(), StatusCode::OK);
    server.kill().await.unwrap();

    // Each start gives a new link while there is no administrator.
    let log = logs.path().join("second.log");
    let mut server = crate::helpers::serve_process(port, dir.path(), &issuer, &[], Some(&log)).await;
    let second = logged_link(&log).expect("a new setup link");
    assert_ne!(second, link);
    server.kill().await.unwrap();

    let created = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["user", "create", "--email", "ops@example.com", "--admin", "--password-stdin", "--data-dir"])
        .arg(dir.path())
        .env("PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB", "256")
        .env("PORTCULLIS_PASSWORD__ARGON2_ITERATIONS", "1")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let log = logs.path().join("third.log");
    let mut server = crate::helpers::serve_process(port, dir.path(), &issuer, &[], Some(&log)).await;
    assert_eq!(logged_link(&log), None, "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(browser().get(&second).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    server.kill().await.unwrap();
}
