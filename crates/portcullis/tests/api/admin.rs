//! The admin console: who may enter, the step-up, and that every action
//! works and is recorded with the admin who did it.

use portcullis_core::audit::AuditKind;
use portcullis_core::clock::Clock;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, Page, TestApp, on_both_backends};
use crate::mfa::after;

on_both_backends!(
    the_admin_console_refuses_a_non_admin_steps_up_a_password_only_admin_and_works_after_mfa,
    the_mfa_dashboard_shows_adoption_among_active_accounts_sign_ins_by_method_and_current_locks,
);

impl TestApp {
    /// Presses the button `action` for `email` on the users page.
    async fn admin_user_action(&self, email: &str, action: &str) -> Page {
        let page = self.get("/admin/users").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.post("/admin/users", &[("email", email), ("action", action), ("q", "")], &page.body).await
    }
}

async fn the_admin_console_refuses_a_non_admin_steps_up_a_password_only_admin_and_works_after_mfa(app: TestApp) {
    assert_eq!(app.get("/admin/users").await.location.as_deref(), Some("/login?next=%2Fadmin%2Fusers"), "signed out: sign in first");
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let refused = app.get("/admin/users").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("for administrators"), "{}", refused.body);
    let refused =
        app.post("/admin/users", &[("email", "ada@example.com"), ("action", "make_admin")], &app.get("/account").await.body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "actions too");
    app.sign_out().await;

    // The first admin, made by the operator, signs in with a password only: stepped up, not refused.
    app.state.accounts().operators().create_user("root@example.com", "Root", PASSWORD, true, app.clock.now()).await.unwrap();
    app.sign_in("root@example.com", PASSWORD).await;
    let step_up = app.get("/admin/users").await.location.unwrap();
    // No factor yet, and an emailed code never opens the console (the reset link goes to the same mailbox): set one up.
    assert!(step_up.starts_with("/login/enroll"), "{step_up}");
    let page = app.get(&step_up).await;
    assert!(!page.body.contains("Email me a code"), "{}", page.body);
    let (_, done) = app.enroll_app_inline(&page).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(after(&done.body, "class=\"button\" href=\""), "/admin/users", "back to the console");
    let users = app.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    assert!(users.body.contains("ada@example.com") && users.body.contains("root@example.com"));
    let found = app.get("/admin/users?q=ADA").await;
    assert_eq!(found.body.matches("data-testid=\"admin-user\"").count(), 1, "search by email, any case");

    // Locked after failed sign-ins: shown for that user only, on the page and in the command line's list.
    let guesser = app.other_browser();
    for _ in 0..5 {
        guesser.sign_in("ada@example.com", "not the password").await;
    }
    let users = app.get("/admin/users").await;
    let row = |email: &str| users.body.split("data-testid=\"admin-user\"").find(|r| r.contains(email)).unwrap().to_owned();
    assert!(row("ada@example.com").contains("locked after failures"), "{}", users.body);
    assert!(!row("root@example.com").contains("locked after failures"), "{}", users.body);
    let listed = app.cli(&["user", "list"]);
    let locked: Vec<(String, bool)> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|u| (u["email"].as_str().unwrap().to_owned(), u["locked"].as_bool().unwrap()))
        .collect();
    assert!(
        locked.contains(&("ada@example.com".to_owned(), true)) && locked.contains(&("root@example.com".to_owned(), false)),
        "{locked:?}"
    );
    app.cli(&["user", "unlock", "--email", "ada@example.com"]);

    // Users: each action works and is recorded with the admin who did it.
    let ada_browser = app.other_browser();
    assert_eq!(ada_browser.sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    let locked = app.admin_user_action("ada@example.com", "lock").await;
    assert!(locked.body.contains("ada@example.com is locked"), "{}", locked.body);
    assert_eq!(ada_browser.account_status().await, StatusCode::SEE_OTHER, "signed out at once");
    assert_eq!(ada_browser.sign_in("ada@example.com", PASSWORD).await, StatusCode::FORBIDDEN, "and cannot sign in");
    app.admin_user_action("ada@example.com", "unlock").await;
    assert_eq!(ada_browser.sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    // The command line's unlock lifts the same lock.
    app.admin_user_action("ada@example.com", "lock").await;
    let out = app.cli(&["user", "unlock", "--email", "ada@example.com"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ada@example.com: unlocked");
    assert_eq!(ada_browser.sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    app.admin_user_action("ada@example.com", "require_mfa").await;
    assert!(app.state.accounts().operators().find_user("ada@example.com").await.unwrap().mfa_required);
    app.admin_user_action("ada@example.com", "reset_mfa").await;
    app.admin_user_action("ada@example.com", "make_admin").await;
    assert!(app.state.accounts().operators().find_user("ada@example.com").await.unwrap().is_admin);
    let own = app.admin_user_action("root@example.com", "remove_admin").await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY, "an admin cannot demote themselves");
    let root = app.state.accounts().operators().find_user("root@example.com").await.unwrap();
    let by_root = |kind| {
        let app = &app;
        async move { app.audit(kind).await.iter().filter(|e| e.detail["by"] == root.id.to_string()).count() }
    };
    assert_eq!(by_root(AuditKind::AccountLocked).await, 2);
    assert_eq!(by_root(AuditKind::AccountUnlocked).await, 1);
    assert_eq!(by_root(AuditKind::MfaRequirementChanged).await, 1);
    assert_eq!(by_root(AuditKind::MfaReset).await, 1);
    assert_eq!(by_root(AuditKind::AdminChanged).await, 1);

    // Applications: create, change the policy, rotate the secret.
    let page = app.get("/admin/clients").await;
    let created = app
        .post(
            "/admin/clients/create",
            &[
                ("name", "Wiki"),
                ("client_id", "wiki"),
                ("redirect_uri", crate::oidc::CALLBACK),
                ("mfa", "optional"),
                ("allow_remember", "1"),
            ],
            &page.body,
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let first_secret = after(&created.body, "data-testid=\"client-secret\">");
    assert!(first_secret.len() > 30, "the secret is shown once: {first_secret}");
    let saved = app
        .post(
            "/admin/clients/policy",
            &[
                ("client_id", "wiki"),
                ("mfa", "required"),
                ("factor_totp", "1"),
                ("factor_webauthn", "1"),
                ("remember_browser_days", "3"),
                ("min_acr", "none"),
            ],
            &created.body,
        )
        .await;
    assert!(saved.body.contains("Policy of wiki saved."), "{}", saved.body);
    let policy = app.state.provider().client("wiki").await.unwrap().unwrap().policy;
    assert_eq!(
        (policy.allowed_factors.clone(), policy.allow_remember, policy.remember_browser_days),
        (vec!["webauthn".to_owned(), "totp".to_owned()], false, Some(3)),
        "the ticked factors, strongest first"
    );
    let bad = app.post("/admin/clients/policy", &[("client_id", "wiki"), ("mfa", "off"), ("min_acr", "phr")], &saved.body).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let rotated = app.post("/admin/clients/rotate-secret", &[("client_id", "wiki")], &saved.body).await;
    assert_ne!(after(&rotated.body, "data-testid=\"client-secret\">"), first_secret);
    let actions: Vec<String> =
        app.audit(AuditKind::ClientChanged).await.iter().map(|e| e.detail["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["secret_rotated", "policy_changed", "created"]);

    // The audit log, filtered by user, event and day.
    let today = portcullis_server::pages::date(app.clock.now());
    let log = app.get(&format!("/admin/audit?user=ada%40example.com&event=account_locked&from={today}&to={today}")).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    assert_eq!(log.body.matches("data-testid=\"audit-event\"").count(), 3, "locked after failures once, by the admin twice: {}", log.body);
    let all = app.get("/admin/audit?user=ada%40example.com").await;
    assert!(all.body.matches("data-testid=\"audit-event\"").count() >= 6);
    let yesterday = portcullis_server::pages::date(app.clock.now() - 86_400);
    let none = app.get(&format!("/admin/audit?to={yesterday}")).await;
    assert!(none.body.contains("No events match."));
    assert_eq!(app.get("/admin/audit?from=not-a-date").await.status, StatusCode::BAD_REQUEST);
}

async fn the_mfa_dashboard_shows_adoption_among_active_accounts_sign_ins_by_method_and_current_locks(app: TestApp) {
    // Ada signs in with her password two days ago; Carol never signs in.
    app.verified_user("ada@example.com").await;
    app.verified_user("carol@example.com").await;
    assert_eq!(app.other_browser().sign_in("ada@example.com", PASSWORD).await, StatusCode::SEE_OTHER);
    app.clock.advance(2 * 86_400);
    // Today the admin signs in and sets up an authenticator app on the way to the dashboard.
    app.state.accounts().operators().create_user("root@example.com", "Root", PASSWORD, true, app.clock.now()).await.unwrap();
    app.sign_in("root@example.com", PASSWORD).await;
    let step_up = app.get("/admin/mfa").await.location.unwrap();
    let (_, done) = app.enroll_app_inline(&app.get(&step_up).await).await;
    assert_eq!(after(&done.body, "class=\"button\" href=\""), "/admin/mfa");
    // Someone guesses Carol's password until her account locks.
    let guesser = app.other_browser();
    for _ in 0..5 {
        guesser.sign_in("carol@example.com", "not the password").await;
    }

    let page = app.get("/admin/mfa").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let from = |marker: &str, end: &str| {
        let at = page.body.find(marker).unwrap_or_else(|| panic!("no {marker} in {}", page.body));
        page.body[at..].split(end).next().unwrap().to_owned()
    };
    let section = |id: &str| from(&format!("data-testid=\"{id}\""), "</table>");
    // Two accounts signed in within 30 days (Carol did not); one of them has an app and recovery codes.
    assert!(page.body.contains("2 accounts signed in during the last 30 days."), "{}", page.body);
    let adoption = section("adoption");
    for row in [
        "<td>Any second factor</td><td>1</td><td>50 %</td>",
        "<td>Authenticator app</td><td>1</td><td>50 %</td>",
        "<td>Recovery codes</td><td>1</td><td>50 %</td>",
    ] {
        assert!(adoption.contains(row), "{row} in {adoption}");
    }
    // Sign-ins by method: Ada's password, the admin's password (before the app existed) and the step-up is no sign-in.
    let sign_ins = section("sign-ins");
    assert!(sign_ins.contains("your password</td><td>2</td>"), "{sign_ins}");
    assert!(page.body.contains("2 sign-ins from"), "{}", page.body);
    // Two days' bars: one segment each, titled with the day and the method.
    let chart = from("data-testid=\"sign-ins-chart\"", "</svg>");
    assert_eq!(chart.matches("<rect ").count(), 2, "{chart}");
    assert!(chart.contains(": your password · 1</title>"), "{chart}");
    let locks = section("locks");
    assert!(locks.contains("<td>carol@example.com</td><td>wrong passwords</td>"), "{locks}");
    assert!(!locks.contains("ada@example.com"), "{locks}");
    // Drawn on the server: no script, nothing from elsewhere.
    assert!(!page.body.contains("<script src=\"http") && page.body.contains("<svg class=\"chart\""));

    // Not for other users.
    let ada = app.other_browser();
    ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(ada.client.get(app.url("/admin/mfa")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
}
