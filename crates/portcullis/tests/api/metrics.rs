//! `[metrics] listen`: Prometheus metrics on their own address, counting
//! what users do (sign-ins by step and outcome, lockouts, codes sent and
//! refused), the accounts with each factor, and request latency per route.

use portcullis_store::testing::TestDatabase;
use reqwest::StatusCode;

use crate::helpers::{browser, free_port, private_tempdir};
use crate::two_nodes::{A, Authorization, Browser, Cluster, enroll_totp, totp_code};

/// The value of the sample `name` whose labels include every one of `labels`
/// (`k="v"`), summed over the samples that match; `None` when none does.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let matching: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sign_ins_lockouts_codes_factors_and_latency_on_their_own_address() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cluster = Cluster::on(TestDatabase::sqlite(), private_tempdir(), 1, &[("PORTCULLIS_METRICS__LISTEN", &listen)]).await;
    let scrape = || async {
        let r = browser().get(format!("http://{listen}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        r.text().await.unwrap()
    };
    let email = "ada@example.com";
    // Two password sign-ins (no factor yet); in the second browser an authenticator app is set up.
    cluster.user(email);
    let signed_in = Browser::new();
    assert_eq!(signed_in.password(&cluster, A, email, "/account").await, "/account");
    let other = Browser::new();
    assert_eq!(other.password(&cluster, A, email, "/account").await, "/account");
    let (secret, recovery_codes) = enroll_totp(&cluster, &other, A).await;
    cluster.user("bob@example.com");
    // The first browser's password-only session asked for MFA by an application: a step-up with a recovery code.
    let (client, _) = cluster.client();
    let asked = signed_in.get(&cluster.url(A, &format!("{}&acr_values=mfa", Authorization::new(&client).url))).await;
    let step_up = asked.location.expect("a step-up");
    assert!(step_up.starts_with("/login/verify"), "{step_up}");
    let page = signed_in.get(&cluster.url(A, &format!("{step_up}&method=recovery"))).await;
    let next = crate::oidc::query_param(&format!("http://x{step_up}"), "next").unwrap();
    let code = &recovery_codes[0];
    let done = signed_in.post(&cluster.url(A, "/login/verify"), &[("method", "recovery"), ("code", code), ("next", &next)], &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    // Password and app; then a wrong app code, and an emailed code asked for twice at once.
    let b = Browser::new();
    let verify = b.password(&cluster, A, email, "/account").await;
    let page = b.get(&cluster.url(A, &format!("{verify}&method=totp"))).await;
    let done = b
        .post(&cluster.url(A, "/login/verify"), &[("method", "totp"), ("code", &totp_code(&secret, 1)), ("next", "/account")], &page)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let b = Browser::new();
    let verify = b.password(&cluster, A, email, "/account").await;
    let page = b.get(&cluster.url(A, &format!("{verify}&method=totp"))).await;
    let wrong = if totp_code(&secret, 0) == "000000" { "111111" } else { "000000" };
    let refused = b.post(&cluster.url(A, "/login/verify"), &[("method", "totp"), ("code", wrong), ("next", "/account")], &page).await;
    assert!(refused.body.contains("That code is not right"), "{}", refused.body);
    let page = b.get(&cluster.url(A, &format!("{verify}&method=email"))).await;
    let sent = b.post(&cluster.url(A, "/login/verify/send"), &[("method", "email"), ("next", "/account")], &page).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let again = b.post(&cluster.url(A, "/login/verify/send"), &[("method", "email"), ("next", "/account")], &page).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS, "{}", again.body);

    // Five wrong passwords lock Bob's account.
    for _ in 0..5 {
        let b = Browser::new();
        let login = b.get(&cluster.url(A, "/login")).await;
        let r = b.post(&cluster.url(A, "/login"), &[("email", "bob@example.com"), ("password", "not-his-password-at-all")], &login).await;
        assert!(matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{}", r.status);
    }

    let text = scrape().await;
    let count = |name: &str, labels: &[&str]| sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"));
    let sign_ins = "portcullis_sign_ins_total";
    assert_eq!(count(sign_ins, &[r#"first_step="password""#, r#"second_factor="""#, r#"outcome="succeeded""#]), 2.0);
    assert_eq!(count(sign_ins, &[r#"first_step="password""#, r#"second_factor="totp""#, r#"outcome="succeeded""#]), 1.0);
    assert_eq!(count(sign_ins, &[r#"first_step="""#, r#"second_factor="totp""#, r#"outcome="failed""#]), 1.0);
    assert_eq!(count(sign_ins, &[r#"first_step="password""#, r#"outcome="failed""#]), 5.0);
    assert_eq!(count("portcullis_step_ups_total", &[r#"second_factor="recovery_code""#]), 1.0);
    assert_eq!(count("portcullis_lockouts_total", &[]), 1.0);
    assert_eq!(count("portcullis_codes_sent_total", &[r#"channel="email""#]), 1.0);
    assert_eq!(count("portcullis_codes_refused_total", &[r#"channel="email""#, r#"reason="cooldown""#]), 1.0);
    assert_eq!(count("portcullis_users", &[]), 2.0);
    assert_eq!(count("portcullis_users_with_second_factor", &[]), 1.0);
    assert_eq!(count("portcullis_users_with_factor", &[r#"kind="totp""#]), 1.0);
    assert_eq!(count("portcullis_users_with_factor", &[r#"kind="recovery""#]), 1.0);
    assert_eq!(count("portcullis_password_hash_queue_depth", &[]), 0.0);
    // Latency by route pattern: the sign-in form's posts, and the patterned route with its query.
    assert!(count("portcullis_http_request_duration_seconds_count", &[r#"route="/login""#, r#"method="POST""#]) >= 7.0);
    assert!(count("portcullis_http_request_duration_seconds_bucket", &[r#"route="/login/verify""#, r#"le="+Inf""#]) >= 1.0);
    assert!(!text.contains("ada@example.com") && !text.contains(&secret_text(&secret)), "metrics name no one");

    // Not on the public address.
    let public = browser().get(cluster.url(A, "/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
}

fn secret_text(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}
