//! Control for users and operators: the applications holding access to an
//! account (listed, removed from the security page, the console and the
//! command line), and the read-only auditor.

use portcullis_core::audit::AuditKind;
use portcullis_core::clock::Clock;
use portcullis_core::oauth::OidcStore;
use portcullis_core::secrets::{random_token, token_digest};
use reqwest::StatusCode;

use crate::hardening::{tokens_for_ada, tokens_work};
use crate::helpers::{Backend, NEW_PASSWORD, PASSWORD, Page, TestApp, on_both_backends, spawn_app_with};

on_both_backends!(
    a_user_sees_the_applications_holding_access_and_removing_one_ends_its_tokens_only,
    an_auditor_reads_every_console_page_and_no_console_change_succeeds,
    breached_passwords_from_the_bundled_list_are_refused_at_sign_up_reset_and_change,
);

/// In the bundled list of breached passwords, and strong by zxcvbn's measure (score 3 or more).
const BREACHED: &str = "141312190296q";

/// The entries of the "Applications with access" list on `page`.
fn apps_listed(page: &Page) -> Vec<String> {
    page.body.split("data-testid=\"app-access\"").skip(1).map(|e| e.split("</li>").next().unwrap_or_default().to_owned()).collect()
}

/// The JSON lines `portcullis user grants` prints for `email`.
fn cli_grants(app: &TestApp, email: &str) -> Vec<serde_json::Value> {
    let out = app.cli(&["user", "grants", "--email", email]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn a_user_sees_the_applications_holding_access_and_removing_one_ends_its_tokens_only(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let mail = tokens_for_ada(&app).await;
    let wiki = tokens_for_ada(&app).await;
    let security = app.get("/account/security").await;
    let listed = apps_listed(&security);
    assert_eq!(listed.len(), 2, "{}", security.body);
    assert!(listed.iter().all(|e| e.contains("can see your email address") && e.contains("stays signed in")), "{listed:?}");

    // The command line lists the same, with what it holds.
    let grants = cli_grants(&app, "ada@example.com");
    assert_eq!(grants.len(), 2, "{grants:?}");
    assert!(grants.iter().all(|g| g["refresh_token"] == true && g["scopes"] == serde_json::json!(["email", "offline_access", "openid"])));

    // Another user cannot take ada's applications away: bob's removal finds nothing, and ada's tokens still work.
    app.sign_out().await;
    app.verified_user("bob@example.com").await;
    app.sign_in("bob@example.com", PASSWORD).await;
    let bobs = app.get("/account/security").await;
    assert!(apps_listed(&bobs).is_empty(), "{}", bobs.body);
    let refused = app.post("/account/security/apps/remove", &[("id", &mail.0)], &bobs.body).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    app.sign_out().await;

    // Ada removes the first: its access token and refresh token die at once; the other's live on.
    let (id, secret, access, refresh) = mail;
    app.sign_in("ada@example.com", PASSWORD).await;
    let security = app.get("/account/security").await;
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    let store = app.state.accounts().store();
    // A rotation in flight at the removal: its old token spent, its successor
    // stored in that transaction, the answer not yet out.
    let (successor, now) = (random_token(), app.clock.now());
    let rotation = store.rotate_refresh_token(&token_digest(&refresh), &id, (&token_digest(&successor), now + 3600), now).await.unwrap();
    assert!(matches!(rotation, portcullis_core::oauth::OneTimeUse::Fresh(_)));
    let removed = app.post("/account/security/apps/remove", &[("id", &id)], &security.body).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(removed.body.contains("access was removed"), "{}", removed.body);
    assert_eq!(apps_listed(&removed).len(), 1, "{}", removed.body);
    assert_eq!(tokens_work(&app, (&id, &secret), &access, &refresh).await, (StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST));
    let introspected = crate::oidc::introspect(&app, (&id, &secret), &access).await;
    assert_eq!(introspected["active"], false, "{introspected}");
    // The successor that rotation stored dies with the grant.
    let (status, body) =
        crate::oidc::token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &successor)], Some((&id, &secret))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (wid, wsecret, waccess, wrefresh) = wiki;
    assert_eq!(
        tokens_work(&app, (&wid, &wsecret), &waccess, &wrefresh).await,
        (StatusCode::OK, StatusCode::OK),
        "the other app keeps its access"
    );
    // Removing it again (a replayed form) finds nothing.
    let again = app.post("/account/security/apps/remove", &[("id", &id)], &removed.body).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let events = app.audit(AuditKind::AppAccessRemoved).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].client_id.as_deref(), Some(id.as_str()));
    assert_eq!(events[0].user, Some(ada.id));
    let shown = app.get("/account/security").await;
    assert!(shown.body.contains("An application&#x27;s access was removed") || shown.body.contains("An application's access was removed"));

    // The operator removes the other from the command line.
    assert_eq!(cli_grants(&app, "ada@example.com").len(), 1);
    let out = app.cli(&["user", "revoke-grant", "--email", "ada@example.com", "--client", &wid]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cli_grants(&app, "ada@example.com").is_empty());
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(&waccess).send().await.unwrap().status();
    assert_eq!(userinfo, StatusCode::UNAUTHORIZED, "its access token is revoked");
    let out = app.cli(&["user", "revoke-grant", "--email", "ada@example.com", "--client", &wid]);
    assert!(!out.status.success(), "nothing left to revoke is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no access"));

    // Signing in to the application again is a fresh grant: it works and is listed again.
    let fresh = tokens_for_ada(&app).await;
    assert_eq!(tokens_work(&app, (&fresh.0, &fresh.1), &fresh.2, &fresh.3).await, (StatusCode::OK, StatusCode::OK));
    assert_eq!(cli_grants(&app, "ada@example.com").len(), 1);
}

/// Every change the console offers, as (path, fields).
fn console_changes<'a>(client_id: &'a str, email: &'a str) -> Vec<(&'static str, Vec<(&'static str, &'a str)>)> {
    vec![
        ("/admin/users", vec![("email", email), ("action", "make_admin"), ("q", "")]),
        ("/admin/users", vec![("email", "ada@example.com"), ("action", "lock"), ("q", "")]),
        (
            "/admin/clients/create",
            vec![("name", "Sneaky"), ("client_id", "sneaky"), ("redirect_uri", "https://sneaky.example/cb"), ("mfa", "off")],
        ),
        ("/admin/clients/policy", vec![("client_id", client_id), ("mfa", "off")]),
        ("/admin/clients/rotate-secret", vec![("client_id", client_id)]),
        ("/admin/users/apps/remove", vec![("email", "ada@example.com"), ("client_id", client_id)]),
    ]
}

async fn an_auditor_reads_every_console_page_and_no_console_change_succeeds(app: TestApp) {
    app.verified_user("ada@example.com").await;
    let (client_id, secret, access, refresh) = tokens_for_ada(&app).await;
    app.sign_out().await;
    app.state.accounts().operators().create_user("carol@example.com", "Carol", PASSWORD, false, app.clock.now()).await.unwrap();
    let out = app.cli(&["user", "grant-auditor", "--email", "carol@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The same door as an admin's: a password-only session is stepped up to a second factor.
    app.sign_in("carol@example.com", PASSWORD).await;
    let step_up = app.get("/admin/users").await.location.unwrap();
    assert!(step_up.starts_with("/login/enroll"), "{step_up}");
    let (_, done) = app.enroll_app_inline(&app.get(&step_up).await).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);

    // Every page reads, with no action on it.
    let pages = ["/admin/users", "/admin/clients", "/admin/audit", "/admin/users/apps?email=ada%40example.com"];
    for path in pages {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains("data-testid=\"read-only\""), "{path}");
        let content = page.body.split("<h1>Admin</h1>").nth(1).unwrap();
        assert!(!content.contains("method=\"post\""), "{path} offers a change: {content}");
    }
    let users = app.get("/admin/users").await;
    assert!(users.body.contains("ada@example.com") && users.body.contains("Auditor"), "{}", users.body);
    assert_eq!(apps_listed(&app.get("/admin/users/apps?email=ada%40example.com").await).len(), 1);
    assert!(app.get("/admin/clients").await.body.contains(&client_id));

    // Every change is refused with 403 and recorded, and nothing changed.
    let csrf_from = app.get("/admin/users").await.body;
    let changes = console_changes(&client_id, "carol@example.com");
    for (path, fields) in &changes {
        let refused = app.post(path, fields, &csrf_from).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}: {}", refused.body);
        assert!(refused.body.contains("not change anything"), "{}", refused.body);
    }
    assert_eq!(app.audit(AuditKind::ConsoleChangeRefused).await.len(), changes.len());
    let carol = app.state.accounts().operators().find_user("carol@example.com").await.unwrap();
    assert!(!carol.is_admin && carol.is_auditor);
    assert!(app.state.provider().client("sneaky").await.unwrap().is_none());
    let ada = app.state.accounts().operators().find_user("ada@example.com").await.unwrap();
    assert!(ada.disabled_at.is_none());
    assert_eq!(
        tokens_work(&app, (&client_id, &secret), &access, &refresh).await,
        (StatusCode::OK, StatusCode::OK),
        "secret and grant unchanged"
    );

    // Made an admin, the same session makes the change from the per-user page.
    app.cli(&["user", "grant-admin", "--email", "carol@example.com"]);
    let page = app.get("/admin/users/apps?email=ada%40example.com").await;
    assert!(!page.body.contains("data-testid=\"read-only\""));
    let removed = app.post("/admin/users/apps/remove", &[("email", "ada@example.com"), ("client_id", &client_id)], &page.body).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert!(apps_listed(&removed).is_empty(), "{}", removed.body);
    let userinfo = app.client.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap().status();
    assert_eq!(userinfo, StatusCode::UNAUTHORIZED);
    let event = &app.audit(AuditKind::AppAccessRemoved).await[0];
    assert_eq!(event.detail["by"], carol.id.to_string(), "recorded with the admin who acted");

    // Both roles withdrawn close the console.
    app.cli(&["user", "grant-admin", "--email", "carol@example.com", "--revoke"]);
    app.cli(&["user", "grant-auditor", "--email", "carol@example.com", "--revoke"]);
    assert_eq!(app.get("/admin/users").await.status, StatusCode::FORBIDDEN);
}

async fn breached_passwords_from_the_bundled_list_are_refused_at_sign_up_reset_and_change(app: TestApp) {
    let refused = app.sign_up("eve@example.com", BREACHED).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("appeared in a data breach"), "{}", refused.body);
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let account = app.get("/account").await;
    let fields = [("current", PASSWORD), ("password", BREACHED), ("confirm", BREACHED)];
    let changed = app.post("/account/password", &fields, &account.body).await;
    assert!(changed.body.contains("appeared in a data breach"), "{}", changed.body);
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER, "the old password still works");
    app.sign_out().await;
    let page = app.submit("/forgot-password", "/forgot-password", &[("email", "ada@example.com")]).await;
    assert_eq!(page.status, StatusCode::OK);
    let link = app.last_link_to("ada@example.com").await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let reset = app.submit(&link, "/reset-password", &[("token", &token), ("password", BREACHED), ("confirm", BREACHED)]).await;
    assert!(reset.body.contains("appeared in a data breach"), "{}", reset.body);
    let reset = app.submit(&link, "/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(reset.status, StatusCode::OK, "the refusal did not burn the link: {}", reset.body);
}

/// What the stand-in was asked: (hash prefix, the `Add-Padding` header).
type RangeRequests = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// A local stand-in for the Pwned Passwords range API: answers, padded, the
/// suffixes of the passwords it is told about, and records each request.
#[derive(Clone, Default)]
struct RangeStandIn {
    known: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    requests: RangeRequests,
}

impl RangeStandIn {
    fn learn(&self, password: &str) {
        use sha1::Digest;
        self.known.lock().unwrap().push(data_encoding::HEXUPPER.encode(&sha1::Sha1::digest(password.as_bytes())));
    }

    async fn serve(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let me = self.clone();
        let router = axum::Router::new().route(
            "/range/{prefix}",
            axum::routing::get(move |axum::extract::Path(prefix): axum::extract::Path<String>, headers: axum::http::HeaderMap| {
                let me = me.clone();
                async move {
                    let padding = headers.get("add-padding").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    me.requests.lock().unwrap().push((prefix.clone(), padding));
                    let mut body: Vec<String> =
                        me.known.lock().unwrap().iter().filter(|h| h.starts_with(&prefix)).map(|h| format!("{}:42", &h[5..])).collect();
                    body.extend((0..3).map(|i| format!("{:035X}:0", i)));
                    body.join("\r\n")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/range", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        (base, stop)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_check_sends_five_hex_characters_asks_existing_users_to_change_and_fails_open_sqlite() {
    the_online_check_sends_five_hex_characters_asks_existing_users_to_change_and_fails_open(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_check_sends_five_hex_characters_asks_existing_users_to_change_and_fails_open_postgres() {
    the_online_check_sends_five_hex_characters_asks_existing_users_to_change_and_fails_open(Backend::Postgres).await;
}

async fn the_online_check_sends_five_hex_characters_asks_existing_users_to_change_and_fails_open(backend: Backend) {
    let stand_in = RangeStandIn::default();
    let (base, stop) = stand_in.serve().await;
    let Some(app) = spawn_app_with(backend, |c| {
        c.password.breached_check = "online".into();
        c.password.breached_range_url = base.clone();
    })
    .await
    else {
        return;
    };
    // Known to the service only: refused, and the service saw 5 hex characters, padded.
    let leaked = "plankton-Origami-53-juniper";
    stand_in.learn(leaked);
    let refused = app.sign_up("eve@example.com", leaked).await;
    assert!(refused.body.contains("appeared in a data breach"), "{}", refused.body);
    let seen = stand_in.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].0.len() == 5 && seen[0].0.bytes().all(|b| b.is_ascii_hexdigit()), "{seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some("true"), "Add-Padding");
    // The bundled list answers first, without asking the service.
    assert!(app.sign_up("eve@example.com", BREACHED).await.body.contains("appeared in a data breach"));
    assert_eq!(stand_in.requests.lock().unwrap().len(), 1);

    // A password that leaks after the account was made: the next sign-in asks for a new one, and lets the user go on.
    app.verified_user("ada@example.com").await;
    stand_in.learn(PASSWORD);
    let signed_in = app.sign_in("ada@example.com", PASSWORD).await;
    let asked = signed_in.location.unwrap();
    assert_eq!(asked, "/account?breached=1&next=%2Faccount");
    let page = app.get(&asked).await;
    assert_eq!(page.status, StatusCode::OK, "signed in, not locked out");
    assert!(page.body.contains("data-testid=\"password-breached\"") && page.body.contains("Not now, continue"), "{}", page.body);
    app.sign_out().await;
    assert_eq!(
        app.sign_in("ada@example.com", PASSWORD).await.location.as_deref(),
        Some("/account?breached=1&next=%2Faccount"),
        "asked until changed"
    );
    let page = app.get("/account?breached=1&next=%2Faccount").await;
    let fields = [("current", PASSWORD), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD), ("next", "/account")];
    let changed = app.post("/account/password", &fields, &page.body).await;
    assert!(changed.body.contains("password has been changed") && !changed.body.contains("password-breached"), "{}", changed.body);
    app.sign_out().await;
    assert_eq!(app.sign_in("ada@example.com", NEW_PASSWORD).await.location.as_deref(), Some("/account"), "not asked again");

    // The service unreachable: nobody is refused, nobody is stuck.
    stop.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let fresh = app.sign_up("fay@example.com", "marigold-Tundra-61-quartz").await;
    assert_eq!(fresh.status, StatusCode::OK, "fails open: {}", fresh.body);
}
