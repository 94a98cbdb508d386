//! Sign-in approvals on a phone: pairing the companion with a one-time link,
//! the sign-in page's request and its number, the phone's signed answers
//! (right number, wrong number, denial), the push-fatigue limits and the
//! pause after denials, and single use under concurrent answers. The phone is
//! played here by a P-256 key signing exactly what the companion's script signs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use portcullis_core::audit::AuditKind;
use portcullis_core::oauth::SigningAlg;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, Page, TestApp, spawn_app_with};
use crate::mfa::{authorize_url, claims_after, hidden};
use crate::oidc::CALLBACK;

/// Runs each scenario on both backends with push approval on.
macro_rules! with_push {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = super::push_app(super::Backend::Sqlite).await { super::$name(app).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(app) = super::push_app(super::Backend::Postgres).await { super::$name(app).await } } )* }
    };
}

with_push!(
    a_paired_phone_approves_a_sign_in_with_the_right_number_and_the_application_reads_swk,
    a_wrong_number_ends_the_sign_in_and_counts_as_a_failed_second_step,
    a_denial_ends_the_sign_in_tells_the_owner_and_three_pause_push_for_an_hour,
    only_the_paired_key_signing_this_request_now_is_heard,
    pushes_are_limited_to_three_a_minute_and_ten_an_hour,
    ten_concurrent_approvals_answer_a_request_once_and_it_signs_in_once,
    an_approval_serves_only_the_sign_in_it_was_sent_for,
    a_pairing_link_works_once_within_five_minutes,
    a_pairing_link_dies_when_the_accounts_sign_ins_are_ended,
    an_approval_given_in_time_is_taken_up_to_a_minute_late,
);

async fn push_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.factors.push = Some(true);
        // Many second-step requests from one address in these tests.
        c.rate_limit.sign_in_per_minute = 10_000;
    })
    .await
}

/// A phone running the companion: its device key.
struct Phone {
    key: p256::ecdsa::SigningKey,
    public: String,
}

impl Phone {
    fn new() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        Self { key, public }
    }

    fn sign(&self, text: &str) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(text.as_bytes());
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    }
}

/// The companion's origin (its `location.origin`): the issuer's.
fn origin(app: &TestApp) -> String {
    url::Url::parse(&app.config.issuer).unwrap().origin().ascii_serialization()
}

/// A JSON call of the companion: status and body.
async fn call(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new().post(app.url(path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

impl TestApp {
    /// "Set up sign-in approvals" on the security page: the pairing token of the link shown.
    async fn pairing_token(&self) -> String {
        let security = self.get("/account/security").await;
        assert!(
            security.body.contains("Set up sign-in approvals on your phone"),
            "{:?} {:?}: {}",
            security.status,
            security.location,
            security.body
        );
        let setup = self.post("/account/security/push", &[], &security.body).await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
        assert!(setup.body.contains("<svg"), "a QR code is shown");
        let link = setup.body.split("data-testid=\"push-pairing-link\"").next().unwrap().rsplit("href=\"").next().unwrap();
        let link = link.split('"').next().unwrap().replace("&#x2f;", "/");
        let token = link.split("#pair=").nth(1).unwrap_or_else(|| panic!("no pairing link in {}", setup.body)).to_owned();
        assert!(link.starts_with(&format!("{}/authenticator", self.config.issuer)), "{link}");
        token
    }

    /// Pairs `phone` with `token` (no push subscription: the companion polls).
    async fn pair(&self, phone: &Phone, token: &str, name: &str) -> (StatusCode, Value) {
        let signature = phone.sign(&format!("portcullis-push-pair-v1\n{token}\n{}", origin(self)));
        call(
            self,
            "/authenticator/pair",
            json!({ "token": token, "public_key": phone.public, "subscription": null, "name": name, "signature": signature }),
        )
        .await
    }

    /// The requests waiting for `phone`.
    async fn waiting(&self, phone: &Phone) -> (StatusCode, Value) {
        let at = self.clock_now();
        let signature = phone.sign(&format!("portcullis-push-list-v1\n{at}\n{}", origin(self)));
        call(self, "/authenticator/requests", json!({ "public_key": phone.public, "at": at, "signature": signature })).await
    }

    /// `phone` answers `request`: `Some(n)` approves with number `n`, `None` denies.
    async fn answer(&self, phone: &Phone, request: &str, number: Option<u8>) -> (StatusCode, Value) {
        let (decision, n) = match number {
            Some(n) => ("approve", n.to_string()),
            None => ("deny", String::new()),
        };
        let signature = phone.sign(&format!("portcullis-push-v1\n{request}\n{n}\n{decision}\n{}", origin(self)));
        call(
            self,
            "/authenticator/answer",
            json!({ "public_key": phone.public, "request": request, "decision": decision, "number": number, "signature": signature }),
        )
        .await
    }

    /// On the second-step page: "Send a sign-in request to your phone"; the request's id and number.
    async fn send_push(&self, page: &Page) -> (StatusCode, Value) {
        let token = crate::helpers::csrf_token_in(&page.body);
        let r = self.client.post(self.url("/login/verify/push")).form(&[("csrf_token", token.as_str())]).send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Where a request stands, as the waiting page asks.
    async fn push_state(&self, request: &str) -> String {
        let r = self.client.get(self.url(&format!("/login/verify/push?request={request}"))).send().await.unwrap();
        r.json::<Value>().await.unwrap()["state"].as_str().unwrap_or("none").to_owned()
    }

    /// Signs up, adds an authenticator app (for its recovery codes and a
    /// fallback), pairs `phone`, signs out.
    async fn user_with_phone(&self, email: &str, phone: &Phone) {
        self.verified_user(email).await;
        self.sign_in(email, PASSWORD).await;
        self.enroll_totp("App").await;
        let token = self.pairing_token().await;
        let (status, body) = self.pair(phone, &token, "Ada's phone").await;
        assert_eq!((status, body["name"].as_str()), (StatusCode::CREATED, Some("Ada's phone")), "{body}");
        let security = self.get("/account/security").await;
        assert!(security.body.contains("Ada&#x27;s phone") && security.body.contains("Phone for sign-in approvals"), "{}", security.body);
        self.sign_out().await;
    }

    /// Signs in with the password; the second-step page, which offers the phone first.
    async fn at_second_step(&self, email: &str) -> Page {
        let first = self.sign_in(email, PASSWORD).await;
        let page = self.get(first.location.as_deref().unwrap()).await;
        assert!(page.body.contains("Send a sign-in request to your phone"), "{}", page.body);
        page
    }
}

fn request_of(sent: &Value) -> (String, u8) {
    let options = &sent["options"];
    (options["request"].as_str().unwrap().to_owned(), u8::try_from(options["number"].as_u64().unwrap()).unwrap())
}

async fn a_paired_phone_approves_a_sign_in_with_the_right_number_and_the_application_reads_swk(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    assert!(app.notice("a sign-in method was added").await.email.text.contains("A phone for sign-in approvals"));

    let (id, secret) = crate::oidc::register(&app, false, SigningAlg::ES256).await;
    let (rp, url, nonce, verifier) = authorize_url(&app, &id, secret.as_deref(), Some("mfa")).await;
    let login_page = app.get(&app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap()).await;
    let next = hidden(&login_page.body, "next");
    let first = app.post("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", &next)], &login_page.body).await;
    let page = app.get(&first.location.unwrap()).await;
    assert!(page.body.contains("Send a sign-in request to your phone"), "push is offered first: {}", page.body);

    let (status, sent) = app.send_push(&page).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let (request, number) = request_of(&sent);
    assert!((10..=99).contains(&number));
    assert_eq!(app.push_state(&request).await, "waiting");

    // The phone sees the request: three numbers, one of them the page's; the application's name.
    let (status, listed) = app.waiting(&phone).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let shown = &listed["requests"][0];
    assert_eq!(shown["id"], request.as_str());
    let choices: Vec<u64> = shown["choices"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert_eq!(choices.len(), 3);
    assert!(choices.contains(&u64::from(number)), "{choices:?}");
    assert!(shown["application"].as_str().unwrap().starts_with("Test app"), "{shown}");

    // The waiting page's long poll, held while the phone answers, answers with the approval.
    let held = {
        let (client, url) = (app.client.clone(), app.url(&format!("/login/verify/push?request={request}&wait=true")));
        tokio::spawn(async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let (status, answered) = app.answer(&phone, &request, Some(number)).await;
    assert_eq!((status, answered["state"].as_str()), (StatusCode::OK, Some("approved")), "{answered}");
    assert_eq!(held.await.unwrap()["state"], "approved");
    let (again, _) = app.answer(&phone, &request, Some(number)).await;
    assert_eq!(again, StatusCode::GONE, "answered once");
    assert_eq!(app.push_state(&request).await, "approved");
    assert_eq!(app.waiting(&phone).await.1["requests"], json!([]), "no longer waiting");

    let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", &next)], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    assert!(back.starts_with(CALLBACK), "{back}");
    let (amr, acr) = claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!(amr, ["pwd", "swk", "mfa"], "RFC 8176: a software-secured key");
    assert_eq!(acr.as_deref(), Some("mfa"), "never phr");
    assert!(app.get("/account").await.body.contains("approval on your phone"));

    // A phone removed from the security page is not heard any more.
    let security = app.get("/account/security").await;
    let entry = security.body.split("data-testid=\"factor\"").find(|f| f.contains("Ada&#x27;s phone")).unwrap();
    let removed = app.post("/account/security/factors/remove", &[("id", &hidden(entry, "id"))], &security.body).await;
    assert!(removed.status.is_success() || removed.status == StatusCode::SEE_OTHER, "{}", removed.body);
    assert_eq!(app.waiting(&phone).await.0, StatusCode::UNAUTHORIZED);
}

async fn a_wrong_number_ends_the_sign_in_and_counts_as_a_failed_second_step(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    let listed = app.waiting(&phone).await.1;
    let wrong = listed["requests"][0]["choices"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).find(|c| *c != u64::from(number));
    let failures_before = app.audit(AuditKind::SignInFailed).await.len();
    let (status, body) = app.answer(&phone, &request, Some(u8::try_from(wrong.unwrap()).unwrap())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not the number"), "{body}");
    assert_eq!(app.push_state(&request).await, "wrong_number");
    let failed = app.audit(AuditKind::SignInFailed).await;
    assert_eq!(failed.len(), failures_before + 1, "one failed second step");
    assert_eq!(failed[0].detail["wrong_number"], true);
    // The sign-in is over: neither the right number nor the page can finish it.
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::GONE);
    let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::BAD_REQUEST, "{}", done.body);
    assert!(done.body.contains("This sign-in has expired"), "{}", done.body);
}

async fn a_denial_ends_the_sign_in_tells_the_owner_and_three_pause_push_for_an_hour(mut app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    for i in 0..3 {
        let page = app.at_second_step("ada@example.com").await;
        let (request, _) = request_of(&app.send_push(&page).await.1);
        let (status, body) = app.answer(&phone, &request, None).await;
        assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("denied")), "{body}");
        assert_eq!(app.push_state(&request).await, "denied");
        let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &page.body).await;
        assert_eq!(done.status, StatusCode::BAD_REQUEST, "the denied sign-in is over: {}", done.body);
        assert_eq!(app.audit(AuditKind::PushDenied).await.len(), i + 1);
        // Past the per-minute push limit of the next round.
        app.clock.advance(61);
    }
    let mail = app.notice("a sign-in was denied on your phone").await;
    assert!(mail.email.text.contains("knew your password"), "{}", mail.email.text);

    // Three denials within the hour: push is not offered for an hour; the app still is.
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let page = app.get(first.location.as_deref().unwrap()).await;
    assert!(!page.body.contains("Send a sign-in request to your phone"), "{}", page.body);
    assert!(page.body.contains("authenticator app"), "{}", page.body);
    assert_eq!(app.send_push(&page).await.0, StatusCode::FORBIDDEN, "nor can it be asked for directly");
    app.clock.advance(3600);
    // A sign-in begun before the third denial cannot push after it either.
    let ours = std::mem::replace(&mut app.client, crate::helpers::browser());
    let begun_early = app.at_second_step("ada@example.com").await;
    let theirs = std::mem::replace(&mut app.client, ours);
    for _ in 0..3 {
        app.clock.advance(61);
        let page = app.at_second_step("ada@example.com").await;
        let (request, _) = request_of(&app.send_push(&page).await.1);
        assert_eq!(app.answer(&phone, &request, None).await.0, StatusCode::OK);
    }
    app.client = theirs;
    assert_eq!(app.send_push(&begun_early).await.0, StatusCode::FORBIDDEN, "paused for sign-ins begun earlier too");
    app.clock.advance(3600);
    app.at_second_step("ada@example.com").await;
}

async fn only_the_paired_key_signing_this_request_now_is_heard(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    let o = origin(&app);
    let now = app.clock_now();
    let stranger = Phone::new();
    let listing = |at: i64, by: &Phone, key: &str, origin: &str| json!({ "public_key": key, "at": at, "signature": by.sign(&format!("portcullis-push-list-v1\n{at}\n{origin}")) });
    for (what, body) in [
        ("an unpaired key", listing(now, &stranger, &stranger.public, &o)),
        ("another key's signature", listing(now, &stranger, &phone.public, &o)),
        ("a listing signed two minutes ago", listing(now - 120, &phone, &phone.public, &o)),
        ("signed for another site", listing(now, &phone, &phone.public, "https://evil.example")),
    ] {
        let (status, body) = call(&app, "/authenticator/requests", body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }
    let approve = |request: &str, n: u8, by: &Phone| {
        json!({ "public_key": phone.public, "request": request, "decision": "approve", "number": n,
                "signature": by.sign(&format!("portcullis-push-v1\n{request}\n{n}\napprove\n{o}")) })
    };
    // A signature is for one request, one number and one decision.
    let mut signed_other = approve("some-other-request", number, &phone);
    signed_other["request"] = json!(request);
    let mut other_number = approve(&request, number, &phone);
    other_number["number"] = json!(if number == 99 { 98 } else { number + 1 });
    let mut as_denial = approve(&request, number, &phone);
    as_denial["decision"] = json!("deny");
    for (what, body) in [
        ("another key", approve(&request, number, &stranger)),
        ("a signature for another request", signed_other),
        ("a signature for another number", other_number),
        ("an approval's signature as a denial", as_denial),
    ] {
        let (status, body) = call(&app, "/authenticator/answer", body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }
    assert_eq!(app.push_state(&request).await, "waiting", "nothing was answered");
    let (status, body) = call(
        &app,
        "/authenticator/answer",
        json!({ "public_key": phone.public, "request": request, "decision": "maybe", "signature": "x" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Two minutes later the request is over, even with the right number.
    app.clock.advance(121);
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::GONE);
    assert_eq!(app.push_state(&request).await, "expired");
}

async fn pushes_are_limited_to_three_a_minute_and_ten_an_hour(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    let page = app.at_second_step("ada@example.com").await;
    let mut sent = 0;
    for minute in 0..4 {
        for _ in 0..3 {
            if sent == 10 {
                break;
            }
            let (status, body) = app.send_push(&page).await;
            assert_eq!(status, StatusCode::OK, "push {sent} in minute {minute}: {body}");
            sent += 1;
        }
        if sent < 10 {
            let (status, body) = app.send_push(&page).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a fourth in one minute: {body}");
            assert!(body["error"].as_str().unwrap().contains("Too many sign-in requests"), "{body}");
        }
        app.clock.advance(61);
    }
    let (status, _) = app.send_push(&page).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "an eleventh in the hour");
    // Another sign-in does not reset it: the limit is the account's.
    let page = app.at_second_step("ada@example.com").await;
    assert_eq!(app.send_push(&page).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(3600);
    let page = app.at_second_step("ada@example.com").await;
    assert_eq!(app.send_push(&page).await.0, StatusCode::OK, "the hour is over");
}

async fn ten_concurrent_approvals_answer_a_request_once_and_it_signs_in_once(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    let answers = futures_join(&app, &phone, &request, number).await;
    let approved = answers.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(approved, 1, "{answers:?}");
    assert!(answers.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::GONE), "{answers:?}");

    // Ten submissions of the approval at once: one session.
    let token = crate::helpers::csrf_token_in(&page.body);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = app.client.clone();
        let url = app.url("/login/verify");
        let fields =
            [("method", "push".to_owned()), ("code", request.clone()), ("next", "/account".to_owned()), ("csrf_token", token.clone())];
        tasks.push(tokio::spawn(async move { client.post(url).form(&fields).send().await.unwrap().status() }));
    }
    let mut finished = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::SEE_OTHER {
            finished += 1;
        }
    }
    assert_eq!(finished, 1, "exactly one request finished the sign-in");
    assert_eq!(app.audit(AuditKind::SignInSucceeded).await.iter().filter(|e| e.detail["methods"].to_string().contains("swk")).count(), 1);
}

/// Ten answers of `phone` to `request` at once; their statuses.
async fn futures_join(app: &TestApp, phone: &Phone, request: &str, number: u8) -> Vec<StatusCode> {
    let signature = phone.sign(&format!("portcullis-push-v1\n{request}\n{number}\napprove\n{}", origin(app)));
    let body = json!({ "public_key": phone.public, "request": request, "decision": "approve", "number": number, "signature": signature });
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (url, body) = (app.url("/authenticator/answer"), body.clone());
        tasks.push(tokio::spawn(async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap().status() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

async fn an_approval_serves_only_the_sign_in_it_was_sent_for(mut app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    // Two browsers have typed Ada's password; the phone approves the first one's request.
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    let ours = std::mem::replace(&mut app.client, crate::helpers::browser());
    let theirs = app.at_second_step("ada@example.com").await;
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::OK);
    // The other browser cannot see or take it.
    let r = app.client.get(app.url(&format!("/login/verify/push?request={request}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let stolen = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &theirs.body).await;
    assert_ne!(stolen.status, StatusCode::SEE_OTHER, "{}", stolen.body);
    assert!(stolen.body.contains("sign-in request has ended"), "{}", stolen.body);
    // The browser it was sent for still finishes with it.
    app.client = ours;
    let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    // And replaying it afterwards in a new sign-in does nothing.
    app.sign_out().await;
    let again = app.at_second_step("ada@example.com").await;
    let replay = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &again.body).await;
    assert_ne!(replay.status, StatusCode::SEE_OTHER);
}

async fn a_pairing_link_works_once_within_five_minutes(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    // Two links at once (after the first pairs, adding a phone needs the second factor).
    let late = app.pairing_token().await;
    let token = app.pairing_token().await;
    let (phone, thief) = (Phone::new(), Phone::new());
    // The key must sign the token: a key the caller does not hold cannot be registered.
    let forged = json!({ "token": token, "public_key": thief.public, "subscription": null, "name": "x",
                         "signature": phone.sign(&format!("portcullis-push-pair-v1\n{token}\n{}", origin(&app))) });
    assert_eq!(call(&app, "/authenticator/pair", forged).await.0, StatusCode::UNAUTHORIZED);
    // A subscription must point at an https push service with a host name, with RFC 8291 keys.
    let signature = phone.sign(&format!("portcullis-push-pair-v1\n{token}\n{}", origin(&app)));
    for endpoint in ["http://push.example.net/x", "https://127.0.0.1/x", "https://[::1]/x", "not a url"] {
        let body = json!({ "token": token, "public_key": phone.public, "name": "x", "signature": signature,
                           "subscription": { "endpoint": endpoint, "p256dh": phone.public, "auth": "AAAAAAAAAAAAAAAAAAAAAA" } });
        assert_eq!(call(&app, "/authenticator/pair", body).await.0, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint}");
    }
    let (status, body) = app.pair(&phone, &token, "").await;
    assert_eq!((status, body["name"].as_str()), (StatusCode::CREATED, Some("My phone")), "{body}");
    // Once: a second phone with the same link is refused.
    assert_eq!(app.pair(&thief, &token, "Thief").await.0, StatusCode::BAD_REQUEST);
    // Five minutes: a link left longer is refused.
    app.clock.advance(301);
    assert_eq!(app.pair(&thief, &late, "Late").await.0, StatusCode::BAD_REQUEST);
    let security = app.get("/account/security").await;
    assert_eq!(security.location.as_deref(), Some("/login/verify?next=%2Faccount%2Fsecurity"), "the phone now guards changes");
    // Paired on the phone, the first factor came with no recovery codes: the page says so.
    let page = app.get(&security.location.unwrap()).await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::OK);
    let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account/security")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let security = app.get("/account/security").await;
    assert!(security.body.contains("You have no recovery codes"), "{}", security.body);
}

async fn a_pairing_link_dies_when_the_accounts_sign_ins_are_ended(app: TestApp) {
    app.verified_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    // A link made in a session the owner then ends everywhere (a stolen one, say).
    let token = app.pairing_token().await;
    let account = app.get("/account").await;
    let ended = app.post("/logout/everywhere", &[], &account.body).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.body);
    let (status, body) = app.pair(&Phone::new(), &token, "Thief").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the link died with the sessions: {body}");
    // A password change ends it too.
    app.sign_in("ada@example.com", PASSWORD).await;
    let token = app.pairing_token().await;
    let account = app.get("/account").await;
    let changed = app
        .post(
            "/account/password",
            &[("current", PASSWORD), ("password", crate::helpers::NEW_PASSWORD), ("confirm", crate::helpers::NEW_PASSWORD)],
            &account.body,
        )
        .await;
    assert!(changed.status.is_success() || changed.status == StatusCode::SEE_OTHER, "{}", changed.body);
    assert_eq!(app.pair(&Phone::new(), &token, "Thief").await.0, StatusCode::BAD_REQUEST);
}

async fn an_approval_given_in_time_is_taken_up_to_a_minute_late(app: TestApp) {
    let phone = Phone::new();
    app.user_with_phone("ada@example.com", &phone).await;
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    app.clock.advance(119);
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::OK, "approved in its last second");
    app.clock.advance(30);
    assert_eq!(app.push_state(&request).await, "approved");
    let done = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &page.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    // Past the minute's grace it is not.
    app.sign_out().await;
    let page = app.at_second_step("ada@example.com").await;
    let (request, number) = request_of(&app.send_push(&page).await.1);
    assert_eq!(app.answer(&phone, &request, Some(number)).await.0, StatusCode::OK);
    app.clock.advance(181);
    assert_eq!(app.push_state(&request).await, "expired");
    let late = app.post("/login/verify", &[("method", "push"), ("code", &request), ("next", "/account")], &page.body).await;
    assert_ne!(late.status, StatusCode::SEE_OTHER);
}
