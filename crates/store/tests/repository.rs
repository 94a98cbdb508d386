//! The repository suite: every test runs once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::StoreError;
use portcullis_core::account_store::FinishedSignIn;
use portcullis_core::account_store::{AccountStore, EmailLink, LinkPurpose};
use portcullis_core::audit::{AuditFilter, AuditKind, AuditStore, NewAuditEvent, RequestOrigin};
use portcullis_core::audit_chain::ChainVerifier;
use portcullis_core::email::EmailAddress;
use portcullis_core::factors::{Credential, FactorKey, FactorKind, MfaStore};
use portcullis_core::messages::Message;
use portcullis_core::notices::NoticeStore;
use portcullis_core::oauth::{
    AccessTokenIds, AuthorizationCode, Client, ClientPolicy, Grant, MfaPolicy, OidcStore, OneTimeUse, RevokedAccess, SigningAlg,
};
use portcullis_core::policy::{DeviceHistory, LastSignIn, Location, RiskStore, SignInHistory};
use portcullis_core::rate_limit::{LimitedAction, RateLimits, SlidingQuota};
use portcullis_core::secrets::MacKey;
use portcullis_core::session::{AuthMethod, AuthRecord, SessionRecord};
use portcullis_core::sign_in::{Demand, Level, PendingSignIn, Purpose, SignInStore, Step, Waiting};
use portcullis_core::user::{User, UserId};
use portcullis_store::testing::{Backend, TestDatabase};
use portcullis_store::{ImportedAccount, Store};

/// Runs each listed scenario on both backends, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(super::Backend::Sqlite, super::$name).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(super::Backend::Postgres, super::$name).await } )* }
    };
}

on_both_backends!(
    users_are_unique_by_email_and_deleted_with_their_sessions,
    an_email_link_is_consumed_once_even_under_concurrency,
    expired_and_replaced_links_are_refused,
    failures_count_within_the_window_and_locks_are_stored,
    a_right_answer_forgets_only_what_was_counted_up_to_it_and_a_lock_outlives_a_cleared_counter,
    sessions_are_found_touched_and_ended,
    rate_buckets_count_per_window,
    purge_removes_only_what_expired,
    a_totp_step_and_a_recovery_code_are_accepted_once_under_concurrency,
    webauthn_counters_only_move_forward_even_under_concurrency,
    a_webauthn_ceremony_is_taken_once_and_not_after_it_expires,
    a_users_ceremonies_are_replaced_not_piled_up,
    a_sent_code_is_spent_once_dies_after_its_attempts_and_is_replaced_by_the_next,
    an_import_keeps_all_accounts_or_none,
    access_tokens_are_live_until_a_revocation_covers_them,
    a_pending_sign_in_comes_with_its_user_until_it_lapses_or_is_taken,
    a_client_keeps_its_policy_and_a_confidential_one_gets_a_new_secret,
    the_audit_log_filters_follows_and_counts,
    a_finished_sign_in_is_recorded_whole_or_not_at_all_per_account,
    a_queued_notice_is_claimed_once_and_retried_until_removed,
    send_quotas_hold_under_concurrency_and_count_all_or_nothing,
    waiting_authorization_requests_are_bounded_per_requester_and_in_all,
);

async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.backend_name(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    scenario(store.clone()).await;
    store.close().await;
}

fn user(email: &str) -> User {
    User {
        id: UserId::new(),
        email: EmailAddress::parse(email).unwrap(),
        name: "Ada".into(),
        password_hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        email_verified_at: None,
        is_admin: false,
        is_auditor: false,
        mfa_required: false,
        disabled_at: None,
        password_reset_at: None,
        password_breached_at: None,
        language: None,
        enrollment_prompt_snoozed_until: None,
        security_epoch: 0,
        created_at: 1_000,
    }
}

fn session(user: UserId, at: i64) -> SessionRecord {
    SessionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user,
        created_at: at,
        last_seen_at: at,
        auth: AuthRecord::single(AuthMethod::Password, at),
        ip: "192.0.2.1".into(),
        user_agent: "Firefox".into(),
        security_epoch: 0,
    }
}

/// A finished sign-in's record: `session`, with its audit event and place.
fn finished<'a>(
    digest: &'a str,
    session: &'a SessionRecord,
    expires_at: i64,
    event: &'a NewAuditEvent,
    device: &'a str,
    last: &'a LastSignIn,
) -> FinishedSignIn<'a> {
    FinishedSignIn { session_digest: digest, session, expires_at, event, device_digest: device, remember_device: true, last }
}

fn sign_in_event(user: UserId, at: i64) -> NewAuditEvent {
    NewAuditEvent {
        at,
        kind: AuditKind::SignInSucceeded,
        user: Some(user),
        origin: RequestOrigin { user_agent: "Firefox".into(), ..RequestOrigin::default() },
        detail: serde_json::json!({ "methods": ["pwd", "otp"] }),
    }
}

/// The session under `digest`, checked to come with its user.
async fn stored_session(s: &Store, digest: &str) -> Result<Option<SessionRecord>, StoreError> {
    Ok(s.session_by_digest(digest).await?.map(|(session, user)| {
        assert_eq!(user.id, session.user_id, "a session comes with its own user");
        session
    }))
}

/// Opens `session` the only way sessions are opened: as a finished sign-in.
async fn open_session(s: &Store, digest: &str, session: &SessionRecord, expires_at: i64) {
    let event = sign_in_event(session.user_id, session.created_at);
    let last = LastSignIn { at: session.created_at, ip: session.ip.clone(), location: Location::default() };
    s.record_sign_in(&finished(digest, session, expires_at, &event, "browser", &last)).await.unwrap();
}

async fn users_are_unique_by_email_and_deleted_with_their_sessions(s: Store) {
    let u = user("ada@example.com");
    s.create_user(&u).await.unwrap();
    assert!(matches!(s.create_user(&user("ADA@example.com")).await, Err(StoreError::Conflict)));
    let found = s.user_by_email(&u.email).await.unwrap().unwrap();
    assert_eq!(found, u);
    assert_eq!(s.user_by_id(u.id).await.unwrap().unwrap().email, u.email);
    s.mark_email_verified(u.id, 2_000).await.unwrap();
    s.mark_email_verified(u.id, 3_000).await.unwrap();
    assert_eq!(s.user_by_id(u.id).await.unwrap().unwrap().email_verified_at, Some(2_000), "first confirmation time is kept");
    s.set_password_hash(u.id, "new-hash").await.unwrap();
    s.rehash_password(u.id, "stale-hash", "rehashed-stale").await.unwrap();
    assert_eq!(s.user_by_id(u.id).await.unwrap().unwrap().password_hash, "new-hash", "a rehash of a replaced hash changes nothing");
    s.rehash_password(u.id, "new-hash", "rehashed").await.unwrap();
    assert_eq!(s.user_by_id(u.id).await.unwrap().unwrap().password_hash, "rehashed");
    s.set_password_hash(u.id, "new-hash").await.unwrap();
    assert_eq!(s.user_by_id(u.id).await.unwrap().unwrap().password_hash, "new-hash");
    s.mark_password_reset(u.id, 3_500).await.unwrap();
    assert_eq!(s.user_by_email(&u.email).await.unwrap().unwrap().password_reset_at, Some(3_500));

    open_session(&s, "digest-1", &session(u.id, 1_000), 9_999).await;
    assert_eq!(s.list_users().await.unwrap().len(), 1);
    assert!(s.delete_user(u.id).await.unwrap());
    assert!(!s.delete_user(u.id).await.unwrap());
    assert!(stored_session(&s, "digest-1").await.unwrap().is_none(), "sessions go with the user");
}

async fn a_pending_sign_in_comes_with_its_user_until_it_lapses_or_is_taken(s: Store) {
    let ada = user("ada@example.com");
    s.create_user(&ada).await.unwrap();
    let demand =
        Demand { client: Some(ClientPolicy { allowed_factors: vec!["totp".into()], ..ClientPolicy::default() }), ..Demand::of(Level::Mfa) };
    let pending = PendingSignIn {
        user_id: ada.id,
        auth: AuthRecord::single(AuthMethod::Password, 1_000),
        purpose: Purpose::StepUp { session_digest: "session-digest".into() },
        demand,
        waiting: Waiting { steps: vec![Step::Factor(FactorKey::Totp), Step::Factor(FactorKey::Recovery)], enroll: vec![] },
        client_id: Some("bank".into()),
        assessment: serde_json::json!({ "risk": "medium", "rule": "elsewhere" }),
        answers: 0,
        security_epoch: 3,
        created_at: 1_000,
        expires_at: 1_300,
    };
    s.save_pending_sign_in("pending-digest", &pending).await.unwrap();
    let (found, owner) = s.pending_sign_in("pending-digest", 1_299).await.unwrap().unwrap();
    assert_eq!(found, pending, "what it waits for, for whom, and why come back whole");
    assert_eq!(owner, ada);
    let new_session = PendingSignIn { purpose: Purpose::NewSession, client_id: None, ..pending.clone() };
    s.save_pending_sign_in("new-session", &new_session).await.unwrap();
    assert_eq!(s.pending_sign_in("new-session", 1_000).await.unwrap().unwrap().0, new_session);
    assert!(s.pending_sign_in("pending-digest", 1_300).await.unwrap().is_none(), "lapsed");
    assert!(s.pending_sign_in("other-digest", 1_000).await.unwrap().is_none());

    // Eight concurrent answers to a sign-in that takes five: exactly five are taken.
    let store = s.clone();
    let taken = concurrently(8, move || {
        let s = store.clone();
        async move { s.take_pending_answer("pending-digest", 5, 1_100).await.unwrap().is_some() }
    })
    .await;
    assert_eq!(taken, 5);
    assert_eq!(s.pending_sign_in("pending-digest", 1_100).await.unwrap().unwrap().0.answers, 5);
    assert_eq!(s.take_pending_answer("new-session", 5, 1_100).await.unwrap(), Some(1));
    assert_eq!(s.take_pending_answer("new-session", 5, 1_300).await.unwrap(), None, "not after it lapses");

    assert!(s.take_pending_sign_in("pending-digest").await.unwrap());
    assert!(!s.take_pending_sign_in("pending-digest").await.unwrap(), "taken once");
    assert!(s.pending_sign_in("pending-digest", 1_000).await.unwrap().is_none());
    assert_eq!(s.take_pending_answer("pending-digest", 5, 1_100).await.unwrap(), None, "nor once taken");

    // A step-up extends the session under a new digest; the old one is gone.
    let record = session(ada.id, 1_000);
    open_session(&s, "old", &record, 9_000).await;
    let more = AuthRecord::single(AuthMethod::Password, 1_000).with(AuthMethod::TOTP, 1_050);
    assert!(!s.upgrade_session("old", "new", UserId::new(), &more).await.unwrap(), "only the owner's session");
    assert!(s.upgrade_session("old", "new", ada.id, &more).await.unwrap());
    assert!(stored_session(&s, "old").await.unwrap().is_none());
    let upgraded = stored_session(&s, "new").await.unwrap().unwrap();
    assert_eq!((upgraded.id, upgraded.auth), (record.id, more.clone()), "the same session (sid), proving more");
    assert!(!s.upgrade_session("old", "newer", ada.id, &more).await.unwrap(), "an old token cannot be upgraded again");
}

async fn access_tokens_are_live_until_a_revocation_covers_them(s: Store) {
    let (ada, bob) = (user("ada@example.com"), user("bob@example.com"));
    s.create_user(&ada).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let token = |jti, grant_id, client_id| AccessTokenIds { jti, grant_id, client_id };
    let live = token("jti-1", "grant-1", "client-a");
    assert!(!s.access_token_revoked(&live).await.unwrap());
    assert_eq!(s.live_access_token_user(&live, ada.id).await.unwrap().map(|u| u.email), Some(ada.email.clone()));

    s.revoke_access_tokens(RevokedAccess::Token("jti-1"), 9_000).await.unwrap();
    assert!(s.access_token_revoked(&live).await.unwrap(), "the token itself");
    assert!(s.live_access_token_user(&live, ada.id).await.unwrap().is_none());
    s.revoke_grant("grant-2", 2_000, 5_600).await.unwrap();
    let of_grant = token("jti-2", "grant-2", "client-a");
    assert!(s.access_token_revoked(&of_grant).await.unwrap(), "its grant");
    assert!(s.live_access_token_user(&of_grant, bob.id).await.unwrap().is_none());
    s.revoke_access_tokens(RevokedAccess::Client("client-b"), 5_600).await.unwrap();
    assert!(s.access_token_revoked(&token("jti-3", "grant-3", "client-b")).await.unwrap(), "its client");
    assert!(!s.access_token_revoked(&token("jti-3", "grant-3", "client-a")).await.unwrap(), "keys do not mix");

    let other = token("jti-4", "grant-4", "client-a");
    assert!(s.delete_user(bob.id).await.unwrap());
    assert!(s.live_access_token_user(&other, bob.id).await.unwrap().is_none(), "a deleted user");

    // A revocation is kept until the tokens it covers have expired, the later expiry winning.
    s.revoke_access_tokens(RevokedAccess::Token("jti-4"), 5_000).await.unwrap();
    s.revoke_access_tokens(RevokedAccess::Token("jti-4"), 3_000).await.unwrap();
    s.purge_expired(4_000).await.unwrap();
    assert!(s.access_token_revoked(&other).await.unwrap(), "still covered");
    s.purge_expired(5_000).await.unwrap();
    assert!(!s.access_token_revoked(&other).await.unwrap(), "purged once the token is expired anyway");
    assert!(s.access_token_revoked(&live).await.unwrap());
}

async fn an_import_keeps_all_accounts_or_none(s: Store) {
    let account = |email: &str| {
        let user = user(email);
        let mut app = Credential::new(user.id, FactorKind::Totp, "Phone".into(), vec![7; 40], 1_000);
        app.confirmed_at = Some(1_000);
        ImportedAccount { user, credentials: vec![app] }
    };
    let batch: Vec<ImportedAccount> = (0..300).map(|i| account(&format!("user{i}@example.com"))).collect();
    s.import_accounts(&batch).await.unwrap();
    assert_eq!(s.list_users().await.unwrap().len(), 300);
    let last = &batch[299];
    assert_eq!(s.user_by_email(&last.user.email).await.unwrap().unwrap(), last.user);
    let creds = s.credentials(last.user.id).await.unwrap();
    assert_eq!((creds.len(), creds[0].sealed_secret.clone(), creds[0].confirmed_at), (1, vec![7; 40], Some(1_000)));

    // One taken address in a batch: nothing of that batch is kept.
    let mixed = vec![account("new@example.com"), account("user7@example.com")];
    assert!(matches!(s.import_accounts(&mixed).await, Err(StoreError::Conflict)));
    assert!(s.user_by_email(&mixed[0].user.email).await.unwrap().is_none(), "the batch was rolled back");
    assert_eq!(s.list_users().await.unwrap().len(), 300);
}

fn link(user: UserId, digest: &str, purpose: LinkPurpose, expires_at: i64) -> EmailLink {
    EmailLink { digest: digest.into(), user_id: user, purpose, created_at: 1_000, expires_at }
}

async fn an_email_link_is_consumed_once_even_under_concurrency(s: Store) {
    let u = user("bob@example.com");
    s.create_user(&u).await.unwrap();
    s.replace_email_link(&link(u.id, "d1", LinkPurpose::ResetPassword, 5_000)).await.unwrap();
    assert_eq!(s.peek_email_link("d1", LinkPurpose::ResetPassword, 2_000).await.unwrap(), Some(u.id));
    assert_eq!(s.peek_email_link("d1", LinkPurpose::VerifyEmail, 2_000).await.unwrap(), None, "purpose is checked");

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.consume_email_link("d1", LinkPurpose::ResetPassword, 2_000).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one concurrent consumer wins");
    assert_eq!(s.peek_email_link("d1", LinkPurpose::ResetPassword, 2_000).await.unwrap(), None);
}

async fn expired_and_replaced_links_are_refused(s: Store) {
    let u = user("carol@example.com");
    s.create_user(&u).await.unwrap();
    s.replace_email_link(&link(u.id, "old", LinkPurpose::VerifyEmail, 5_000)).await.unwrap();
    s.replace_email_link(&link(u.id, "new", LinkPurpose::VerifyEmail, 5_000)).await.unwrap();
    assert_eq!(s.consume_email_link("old", LinkPurpose::VerifyEmail, 2_000).await.unwrap(), None, "a newer link replaces the old one");
    assert_eq!(s.consume_email_link("new", LinkPurpose::VerifyEmail, 5_000).await.unwrap(), None, "expired at its expiry time");
    assert_eq!(s.consume_email_link("new", LinkPurpose::VerifyEmail, 4_999).await.unwrap(), Some(u.id));
}

async fn a_right_answer_forgets_only_what_was_counted_up_to_it_and_a_lock_outlives_a_cleared_counter(s: Store) {
    let key = "fay@example.com";
    // The owner's attempt is counted first, then two others still being checked.
    for n in 1..=3 {
        assert_eq!(s.record_login_failure(key, 100, 0).await.unwrap(), Some(n));
    }
    s.forget_login_failures(key, 1).await.unwrap();
    assert_eq!(s.failure_record(key).await.unwrap().failures, 2, "the two counted after it stay");
    s.forget_login_failures(key, 5).await.unwrap();
    assert_eq!(s.failure_record(key).await.unwrap().failures, 0, "never below zero");
    // A lock set by a racing attempt stays through a right answer's forgetting…
    assert!(s.lock_account(key, 400, 100).await.unwrap());
    s.forget_login_failures(key, 1).await.unwrap();
    assert_eq!(s.failure_record(key).await.unwrap().locked_until, Some(400));
    // …and a lock is set even where the counter was deleted meanwhile.
    assert!(s.clear_login_failures(key).await.unwrap());
    assert!(s.lock_account(key, 500, 200).await.unwrap());
    assert_eq!(s.record_login_failure(key, 300, 0).await.unwrap(), None, "locked");
}

async fn failures_count_within_the_window_and_locks_are_stored(s: Store) {
    let key = "dave@example.com";
    assert_eq!(s.failure_record(key).await.unwrap().failures, 0);
    assert_eq!(s.record_login_failure(key, 100, 0).await.unwrap(), Some(1));
    assert_eq!(s.record_login_failure(key, 110, 0).await.unwrap(), Some(2));
    assert_eq!(s.record_login_failure(key, 2_000, 1_000).await.unwrap(), Some(1), "failures before the window are forgotten");
    assert!(s.lock_account(key, 2_300, 2_000).await.unwrap(), "this call locked it");
    assert!(!s.lock_account(key, 2_400, 2_100).await.unwrap(), "locked already: not again, and not longer");
    let rec = s.failure_record(key).await.unwrap();
    assert_eq!((rec.failures, rec.locked_until), (0, Some(2_300)));
    assert_eq!(s.record_login_failure(key, 2_299, 1_500).await.unwrap(), None, "nothing is counted while locked");
    assert_eq!(s.failure_record(key).await.unwrap().failures, 0);
    assert_eq!(s.record_login_failure(key, 2_300, 1_500).await.unwrap(), Some(1), "counted again once the lock has lifted");
    assert!(s.clear_login_failures(key).await.unwrap());
    assert!(!s.clear_login_failures(key).await.unwrap());
    assert_eq!(s.failure_record(key).await.unwrap().locked_until, None);

    // Concurrent failures are all counted.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.record_login_failure(key, 3_000, 2_500).await.unwrap().unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=10).collect::<Vec<u32>>());

    // Several at once, in the order asked, with nothing on record for the unknown.
    s.record_login_failure("erin@example.com", 3_900, 2_500).await.unwrap();
    assert!(s.lock_account("erin@example.com", 4_000, 3_900).await.unwrap());
    let many = s.failure_records(&["nobody@example.com", key, "erin@example.com", key]).await.unwrap();
    let seen: Vec<_> = many.iter().map(|r| (r.failures, r.locked_until)).collect();
    assert_eq!(seen, [(0, None), (10, None), (0, Some(4_000)), (10, None)]);
    assert!(s.failure_records(&[]).await.unwrap().is_empty());

    // A counted attempt that turned out right is given back, never below zero.
    s.forget_login_failures(key, 1).await.unwrap();
    assert_eq!(s.failure_record(key).await.unwrap().failures, 9);
    s.forget_login_failures("erin@example.com", 1).await.unwrap();
    assert_eq!(s.failure_record("erin@example.com").await.unwrap().failures, 0);
    s.forget_login_failures("nobody@example.com", 1).await.unwrap();
    assert_eq!(s.failure_record("nobody@example.com").await.unwrap().failures, 0);
}

async fn sessions_are_found_touched_and_ended(s: Store) {
    let u = user("erin@example.com");
    s.create_user(&u).await.unwrap();
    let a = session(u.id, 1_000);
    open_session(&s, "a", &a, 9_000).await;
    open_session(&s, "b", &session(u.id, 1_000), 9_000).await;
    open_session(&s, "c", &session(u.id, 1_000), 9_000).await;
    assert_eq!(stored_session(&s, "a").await.unwrap().unwrap(), a);
    let later = session(u.id, 1_100);
    open_session(&s, "d", &later, 9_000).await;
    let listed = s.user_sessions(u.id).await.unwrap();
    assert_eq!((listed.len(), &listed[0]), (4, &later), "newest first, with address and browser");
    assert!(s.delete_user_session(u.id, &later.id).await.unwrap());
    assert!(!s.delete_user_session(u.id, &later.id).await.unwrap(), "ended once");
    assert!(!s.delete_user_session(UserId::new(), &a.id).await.unwrap(), "only the owner's sessions");
    s.touch_session("a", 1_500).await.unwrap();
    s.touch_session("a", 1_200).await.unwrap();
    assert_eq!(stored_session(&s, "a").await.unwrap().unwrap().last_seen_at, 1_500, "never moves backwards");
    s.delete_session("c").await.unwrap();
    assert!(stored_session(&s, "c").await.unwrap().is_none());
    let epoch = |s: Store| async move { s.user_by_id(u.id).await.unwrap().unwrap().security_epoch };
    assert_eq!(epoch(s.clone()).await, 0);
    assert_eq!(s.end_user_sessions(u.id, Some("a")).await.unwrap(), 1);
    let (kept, owner) = s.session_by_digest("a").await.unwrap().unwrap();
    assert_eq!((owner.security_epoch, kept.security_epoch), (1, 1), "the account's epoch moves on, and the kept session with it");
    assert_eq!(s.end_user_sessions(u.id, None).await.unwrap(), 1);
    assert!(stored_session(&s, "a").await.unwrap().is_none());
    assert_eq!(epoch(s.clone()).await, 2);
    // A key added by a request that read the account before the last ending is refused.
    let key = |id: &str| Credential {
        id: id.into(),
        confirmed_at: Some(10),
        ..Credential::new(u.id, FactorKind::Passkey, "Key".into(), vec![9], 10)
    };
    assert!(!s.insert_confirmed_credential(&key("late"), 1).await.unwrap());
    assert!(s.insert_confirmed_credential(&key("current"), 2).await.unwrap());
    let ids: Vec<String> = s.credentials(u.id).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["current"]);
}

async fn rate_buckets_count_per_window(s: Store) {
    let limits = RateLimits::default();
    let b = limits.bucket(LimitedAction::SignIn, "10.0.0.1", 120);
    for expected in 1..=3 {
        assert_eq!(s.hit_rate_bucket(&b).await.unwrap(), expected);
    }
    let other = limits.bucket(LimitedAction::SignIn, "10.0.0.2", 120);
    assert_eq!(s.hit_rate_bucket(&other).await.unwrap(), 1, "buckets are per client");
    let next = limits.bucket(LimitedAction::SignIn, "10.0.0.1", 185);
    assert_eq!(s.hit_rate_bucket(&next).await.unwrap(), 1, "a new window starts from one");
}

async fn purge_removes_only_what_expired(s: Store) {
    let u = user("frank@example.com");
    s.create_user(&u).await.unwrap();
    open_session(&s, "old", &session(u.id, 0), 100).await;
    open_session(&s, "live", &session(u.id, 0), 10_000_000).await;
    s.record_login_failure("x@example.com", 0, 0).await.unwrap();
    s.hit_rate_bucket(&RateLimits::default().bucket(LimitedAction::SignUp, "1.2.3.4", 0)).await.unwrap();
    let client = Client {
        id: "client-1".into(),
        name: "App".into(),
        secret_digest: None,
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        policy: ClientPolicy::default(),
        signing_alg: SigningAlg::ES256,
        service_scopes: vec![],
        self_registered: false,
        created_at: 0,
    };
    s.create_client(&client).await.unwrap();
    let grant = Grant {
        grant_id: "grant-1".into(),
        client_id: client.id.clone(),
        user_id: u.id,
        scope: "openid offline_access".into(),
        auth: AuthRecord::single(AuthMethod::Password, 0),
        session_id: "sid".into(),
        acr: None,
        security_epoch: 0,
    };
    let code = |digest: &str, expires_at| AuthorizationCode {
        digest: digest.into(),
        grant: grant.clone(),
        redirect_uri: "https://app.example/cb".into(),
        nonce: None,
        code_challenge: None,
        created_at: 0,
        expires_at,
    };
    s.insert_authorization_code(&code("old-code", 60)).await.unwrap();
    s.insert_authorization_code(&code("new-code", 150_000)).await.unwrap();
    // Refresh tokens come with a code's use (its grant has offline_access).
    for (issuing, refresh, expires_at) in [("code-a", "old-refresh", 100), ("code-b", "new-refresh", 10_000_000)] {
        s.insert_authorization_code(&code(issuing, 10_000_000)).await.unwrap();
        assert!(matches!(s.consume_authorization_code(issuing, &client.id, (refresh, expires_at), 0).await.unwrap(), OneTimeUse::Fresh(_)));
    }
    s.save_pending_request(("old-request", "app", "a"), "{}", (0, 100), (10, Some(10))).await.unwrap();
    s.save_pending_request(("new-request", "app", "a"), "{}", (0, 10_000_000), (10, Some(10))).await.unwrap();

    s.purge_expired(200_000).await.unwrap();
    assert!(stored_session(&s, "old").await.unwrap().is_none());
    assert!(stored_session(&s, "live").await.unwrap().is_some());
    assert_eq!(s.failure_record("x@example.com").await.unwrap().failures, 0);
    assert!(s.pending_request("old-request", 0).await.unwrap().is_none());
    assert!(s.pending_request("new-request", 0).await.unwrap().is_some());
    assert!(
        matches!(s.consume_authorization_code("old-code", &client.id, ("r-1", 100), 0).await.unwrap(), OneTimeUse::Unknown),
        "a day past expiry: gone"
    );
    assert!(
        matches!(s.consume_authorization_code("new-code", &client.id, ("r-2", 100), 0).await.unwrap(), OneTimeUse::Fresh(_)),
        "kept a day past expiry"
    );
    assert!(matches!(s.rotate_refresh_token("old-refresh", &client.id, ("next-1", 100), 0).await.unwrap(), OneTimeUse::Unknown));
    assert!(matches!(s.rotate_refresh_token("new-refresh", &client.id, ("next-2", 100), 0).await.unwrap(), OneTimeUse::Fresh(_)));
    assert!(s.active_refresh_token("next-1", 0).await.unwrap().is_none(), "nothing rotated in for an unknown token");
    let successor = s.active_refresh_token("next-2", 0).await.unwrap().expect("the successor is stored with the use");
    assert_eq!((successor.grant, successor.expires_at), (grant.clone(), 100));
    assert!(matches!(s.rotate_refresh_token("new-refresh", &client.id, ("next-3", 100), 0).await.unwrap(), OneTimeUse::Replayed { .. }));
    assert!(s.active_refresh_token("next-3", 0).await.unwrap().is_none());
}

async fn concurrently<F, Fut>(n: usize, f: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    wins
}

async fn a_totp_step_and_a_recovery_code_are_accepted_once_under_concurrency(s: Store) {
    let u = user("gus@example.com");
    s.create_user(&u).await.unwrap();
    let c = Credential { id: "cred-1".into(), ..Credential::new(u.id, FactorKind::Totp, "Phone".into(), vec![1, 2, 3], 10) };
    s.insert_credential(&c).await.unwrap();
    assert!(s.credentials(u.id).await.unwrap().is_empty(), "unconfirmed credentials do not count");
    assert!(!s.consume_totp_step("cred-1", 100, 20).await.unwrap(), "nor can they be used");
    assert!(!s.confirm_credential(u.id, "cred-1", 100, (20, 10)).await.unwrap(), "a setup begun before the cut-off stays unconfirmed");
    assert!(s.confirm_credential(u.id, "cred-1", 100, (20, 9)).await.unwrap());
    assert!(!s.confirm_credential(u.id, "cred-1", 101, (21, 9)).await.unwrap(), "confirmed once");
    assert_eq!(s.credentials(u.id).await.unwrap().len(), 1);
    assert!(!s.consume_totp_step("cred-1", 100, 22).await.unwrap(), "the confirming code cannot be replayed");

    let store = s.clone();
    let wins = concurrently(8, move || {
        let s = store.clone();
        async move { s.consume_totp_step("cred-1", 101, 30).await.unwrap() }
    })
    .await;
    assert_eq!(wins, 1, "one of eight concurrent uses of the same step wins");
    assert!(!s.consume_totp_step("cred-1", 100, 31).await.unwrap(), "older steps stay refused");

    s.replace_recovery_codes(u.id, &["t1".into(), "t2".into()], 40).await.unwrap();
    assert_eq!(s.recovery_codes_left(u.id).await.unwrap(), 2);
    let store = s.clone();
    let user_id = u.id;
    let wins = concurrently(8, move || {
        let s = store.clone();
        async move { s.consume_recovery_code(user_id, "t1", 50).await.unwrap() }
    })
    .await;
    assert_eq!(wins, 1);
    assert_eq!(s.recovery_codes_left(u.id).await.unwrap(), 1);
    s.replace_recovery_codes(u.id, &["t3".into()], 60).await.unwrap();
    assert!(!s.consume_recovery_code(u.id, "t2", 61).await.unwrap(), "regeneration invalidates the old set");

    assert!(s.rename_credential(u.id, "cred-1", "Work phone").await.unwrap());
    assert_eq!(s.credential(u.id, "cred-1").await.unwrap().unwrap().name, "Work phone");
    assert!(s.set_mfa_required(u.id, true).await.unwrap());
    assert!(s.user_by_id(u.id).await.unwrap().unwrap().mfa_required);
    s.delete_all_factors(u.id).await.unwrap();
    assert!(s.credentials(u.id).await.unwrap().is_empty());
    assert_eq!(s.recovery_codes_left(u.id).await.unwrap(), 0);
}

fn security_key(user: UserId, id: &str, public_key_id: &str, now: i64) -> Credential {
    Credential {
        id: id.into(),
        public_key_id: Some(public_key_id.into()),
        confirmed_at: Some(now),
        ..Credential::new(user, FactorKind::SecurityKey, "Key".into(), vec![9], now)
    }
}

async fn webauthn_counters_only_move_forward_even_under_concurrency(s: Store) {
    let u = user("hana@example.com");
    s.create_user(&u).await.unwrap();
    s.insert_credential(&security_key(u.id, "k1", "pk-1", 10)).await.unwrap();
    let v = user("ivo@example.com");
    s.create_user(&v).await.unwrap();
    assert!(
        matches!(s.insert_credential(&security_key(v.id, "k2", "pk-1", 10)).await, Err(StoreError::Conflict)),
        "one authenticator credential belongs to one account"
    );
    assert_eq!(s.credential_by_public_key_id("pk-1").await.unwrap().unwrap().user_id, u.id);
    assert!(s.credential_by_public_key_id("pk-2").await.unwrap().is_none());

    assert!(s.record_assertion("k1", 0, 20).await.unwrap(), "a key without a counter reports 0, again and again");
    assert!(s.record_assertion("k1", 0, 21).await.unwrap());
    assert!(s.record_assertion("k1", 5, 22).await.unwrap());
    assert!(!s.record_assertion("k1", 5, 23).await.unwrap(), "the same counter twice");
    assert!(!s.record_assertion("k1", 3, 24).await.unwrap(), "backwards");
    assert!(!s.record_assertion("k1", 0, 25).await.unwrap(), "back to 0 after counting");
    let stored = s.credential_by_public_key_id("pk-1").await.unwrap().unwrap();
    assert_eq!((stored.sign_count, stored.last_used_at), (5, Some(22)));

    let store = s.clone();
    let wins = concurrently(8, move || {
        let s = store.clone();
        async move { s.record_assertion("k1", 6, 30).await.unwrap() }
    })
    .await;
    assert_eq!(wins, 1, "two uses with one counter value: only one passes");

    s.flag_credential("k1", 40).await.unwrap();
    assert_eq!(s.credential_by_public_key_id("pk-1").await.unwrap().unwrap().flagged_at, Some(40));
    assert!(!s.record_assertion("k1", 100, 41).await.unwrap(), "a flagged credential is not used");
}

async fn a_webauthn_ceremony_is_taken_once_and_not_after_it_expires(s: Store) {
    use portcullis_core::factors::webauthn::Ceremony;
    let u = user("jan@example.com");
    s.create_user(&u).await.unwrap();
    let ceremony = |id: &str, user: Option<UserId>| Ceremony {
        id: id.into(),
        user_id: user,
        purpose: "second_factor".into(),
        state: "{}".into(),
        expires_at: 100,
    };
    s.save_ceremony(&ceremony("c1", Some(u.id))).await.unwrap();
    s.save_ceremony(&ceremony("c2", None)).await.unwrap();
    s.save_ceremony(&ceremony("c3", None)).await.unwrap();
    let store = s.clone();
    let wins = concurrently(8, move || {
        let s = store.clone();
        async move { s.take_ceremony("c1", 50).await.unwrap().is_some() }
    })
    .await;
    assert_eq!(wins, 1, "one answer per challenge");
    let taken = s.take_ceremony("c2", 99).await.unwrap().unwrap();
    assert_eq!((taken.user_id, taken.state.as_str()), (None, "{}"));
    assert!(s.take_ceremony("c3", 100).await.unwrap().is_none(), "expired");
    assert!(s.take_ceremony("nope", 1).await.unwrap().is_none());
}

async fn a_users_ceremonies_are_replaced_not_piled_up(s: Store) {
    use portcullis_core::factors::webauthn::Ceremony;
    let u = user("kim@example.com");
    s.create_user(&u).await.unwrap();
    let ceremony = |n: i64, user: Option<UserId>, purpose: &str| Ceremony {
        id: format!("c{n}"),
        user_id: user,
        purpose: purpose.into(),
        state: "{}".into(),
        expires_at: 1_000 + n,
    };
    for n in 0..2_000 {
        s.save_ceremony(&ceremony(n, Some(u.id), "second_factor")).await.unwrap();
    }
    s.save_ceremony(&ceremony(5_000, Some(u.id), "register")).await.unwrap();
    let mut kept = Vec::new();
    for n in 0..2_000 {
        if s.take_ceremony(&format!("c{n}"), 0).await.unwrap().is_some() {
            kept.push(n);
        }
    }
    assert_eq!(kept, [1_997, 1_998, 1_999], "the newest three of one purpose stay, the newest always");
    assert!(s.take_ceremony("c5000", 0).await.unwrap().is_some(), "another purpose is left alone");
}

async fn a_sent_code_is_spent_once_dies_after_its_attempts_and_is_replaced_by_the_next(s: Store) {
    use portcullis_core::factors::otp::{CodeAnswer, CodeCheck, CodePurpose, OneTimeCode, OtpChannel};
    let u = user("kim@example.com");
    s.create_user(&u).await.unwrap();
    let code = |id: &str, tag: &str, at: i64| OneTimeCode {
        id: id.into(),
        user_id: u.id,
        channel: OtpChannel::Email,
        destination: "kim@example.com".into(),
        purpose: CodePurpose::SignIn,
        credential_id: None,
        tag: tag.into(),
        created_at: at,
        expires_at: at + 300,
    };
    let user_id = u.id;
    let answer = move |tag: &'static str, now: i64| CodeAnswer {
        user: user_id,
        channel: OtpChannel::Email,
        purpose: CodePurpose::SignIn,
        credential: None,
        tag,
        max_attempts: 5,
        now,
    };
    let spent = |c: CodeCheck| matches!(c, CodeCheck::Spent { .. });
    assert_eq!(s.last_otp_sent_at(u.id, (OtpChannel::Email, CodePurpose::SignIn)).await.unwrap(), None);
    s.replace_otp_code(&code("c1", "t1", 100)).await.unwrap();
    assert_eq!(s.last_otp_sent_at(u.id, (OtpChannel::Email, CodePurpose::SignIn)).await.unwrap(), Some(100));
    assert_eq!(s.last_otp_sent_at(u.id, (OtpChannel::Email, CodePurpose::FirstStep)).await.unwrap(), None, "per purpose");
    let store = s.clone();
    let wins = concurrently(8, move || {
        let s = store.clone();
        async move { spent(s.consume_otp_code(&answer("t1", 110)).await.unwrap()) }
    })
    .await;
    assert_eq!(wins, 1, "one code, one sign-in");

    s.replace_otp_code(&code("c2", "t2", 200)).await.unwrap();
    s.replace_otp_code(&code("c3", "t3", 230)).await.unwrap();
    assert!(!spent(s.consume_otp_code(&answer("t2", 240)).await.unwrap()), "replaced (and a wrong try on the live code)");
    for _ in 0..3 {
        assert!(!spent(s.consume_otp_code(&answer("wrong", 240)).await.unwrap()));
    }
    assert!(!spent(s.consume_otp_code(&answer("t3", 531)).await.unwrap()), "expired");
    assert!(spent(s.consume_otp_code(&answer("t3", 241)).await.unwrap()), "four wrong tries leave the fifth");

    // Twenty wrong guesses at once: the check and the count are one statement, so only five count and the code dies.
    s.replace_otp_code(&code("c4", "t4", 300)).await.unwrap();
    let store = s.clone();
    concurrently(20, move || {
        let s = store.clone();
        async move { spent(s.consume_otp_code(&answer("wrong", 301)).await.unwrap()) }
    })
    .await;
    assert!(!spent(s.consume_otp_code(&answer("t4", 302)).await.unwrap()), "dead after five wrong tries");

    // A code is bound to its purpose and its number.
    let phone = |id: &str| Credential { id: id.into(), ..Credential::new(u.id, FactorKind::Phone, id.into(), vec![0], 400) };
    s.insert_credential(&phone("number-a")).await.unwrap();
    s.insert_credential(&phone("number-b")).await.unwrap();
    assert!(s.confirm_credential(u.id, "number-a", 0, (400, 0)).await.unwrap(), "A is confirmed; B is being added");
    let texted = |id: &str, tag: &str, purpose, to: &str| OneTimeCode {
        channel: OtpChannel::Sms,
        purpose,
        credential_id: Some(to.into()),
        destination: "+447700900123".into(),
        ..code(id, tag, 500)
    };
    let sms = move |tag: &'static str, purpose, credential: Option<&'static str>| CodeAnswer {
        channel: OtpChannel::Sms,
        purpose,
        credential,
        ..answer(tag, 510)
    };
    s.replace_otp_code(&texted("c5", "confirm-b", CodePurpose::ConfirmPhone, "number-b")).await.unwrap();
    assert!(
        !spent(s.consume_otp_code(&sms("confirm-b", CodePurpose::SignIn, None)).await.unwrap()),
        "a confirmation code is no sign-in code"
    );
    s.replace_otp_code(&texted("c6", "sign-in-a", CodePurpose::SignIn, "number-a")).await.unwrap();
    assert!(
        !spent(s.consume_otp_code(&sms("sign-in-a", CodePurpose::ConfirmPhone, Some("number-b"))).await.unwrap()),
        "a sign-in code sent to A does not confirm B"
    );
    assert!(spent(s.consume_otp_code(&sms("confirm-b", CodePurpose::ConfirmPhone, Some("number-b"))).await.unwrap()), "both still live");
    s.replace_otp_code(&texted("c7", "sign-in-b", CodePurpose::SignIn, "number-b")).await.unwrap();
    s.delete_credential(u.id, "number-b").await.unwrap();
    assert!(!spent(s.consume_otp_code(&sms("sign-in-b", CodePurpose::SignIn, None)).await.unwrap()), "a removed number's code is void");
    s.replace_otp_code(&texted("c8", "sign-in-a2", CodePurpose::SignIn, "number-a")).await.unwrap();
    assert_eq!(
        s.consume_otp_code(&sms("sign-in-a2", CodePurpose::SignIn, None)).await.unwrap(),
        CodeCheck::Spent { credential: Some("number-a".into()) },
        "a sign-in code to a confirmed number, naming it"
    );
    // Setups never finished are purged by age; confirmed credentials stay.
    s.insert_credential(&phone("number-c")).await.unwrap();
    assert_eq!(s.purge_unconfirmed_credentials(401).await.unwrap(), 1);
    assert_eq!(s.credential(u.id, "number-a").await.unwrap().map(|c| c.id).as_deref(), Some("number-a"));
}

async fn the_audit_log_filters_follows_and_counts(s: Store) {
    let (ada, bob) = (UserId::new(), UserId::new());
    let origin = RequestOrigin {
        ip: "192.0.2.7".parse().ok(),
        user_agent: "Firefox".into(),
        device: None,
        client_id: Some("wiki".into()),
        ..RequestOrigin::default()
    };
    let event =
        |at, kind, user| NewAuditEvent { at, kind, user: Some(user), origin: origin.clone(), detail: serde_json::json!({ "n": at }) };
    s.record_audit_event(&event(100, AuditKind::SignInFailed, ada)).await.unwrap();
    s.record_audit_event(&event(200, AuditKind::SignInFailed, bob)).await.unwrap();
    s.record_audit_event(&event(300, AuditKind::SignInSucceeded, ada)).await.unwrap();
    s.record_audit_event(&event(400, AuditKind::SignInFailed, ada)).await.unwrap();

    let newest = s.audit_events(&AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.at).collect::<Vec<_>>(), vec![400, 300, 200, 100], "newest first");
    let e = &newest[0];
    assert_eq!(
        (e.kind.as_str(), e.user, e.client_id.as_deref(), e.ip.as_deref()),
        ("sign_in_failed", Some(ada), Some("wiki"), Some("192.0.2.7"))
    );
    assert_eq!((e.user_agent.as_deref(), &e.detail), (Some("Firefox"), &serde_json::json!({ "n": 400 })));

    let filtered = |f: AuditFilter| {
        let s = s.clone();
        async move { s.audit_events(&AuditFilter { limit: 10, ..f }).await.unwrap().iter().map(|e| e.at).collect::<Vec<_>>() }
    };
    assert_eq!(filtered(AuditFilter { user: Some(ada), ..AuditFilter::default() }).await, vec![400, 300, 100]);
    assert_eq!(filtered(AuditFilter { kind: Some(AuditKind::SignInSucceeded), ..AuditFilter::default() }).await, vec![300]);
    assert_eq!(filtered(AuditFilter { since: Some(200), until: Some(300), ..AuditFilter::default() }).await, vec![300, 200]);
    let after = newest[2].id;
    assert_eq!(filtered(AuditFilter { after_id: Some(after), ..AuditFilter::default() }).await, vec![300, 400], "following: oldest first");
    let failures = |since| {
        let s = s.clone();
        async move { s.sign_in_history(ada, "laptop", since).await.unwrap().failures }
    };
    assert_eq!(failures(100).await, 2);
    assert_eq!(failures(101).await, 1);
    assert_eq!(failures(0).await, 2, "only failures count, and only this account's");
    s.purge_audit_events(300).await.unwrap();
    assert_eq!(filtered(AuditFilter::default()).await, vec![400, 300, 200, 100], "retention leaves events not yet sealed");
    let key = MacKey::new([1; 32]);
    assert_eq!(s.seal_audit_events(&key, 3).await.unwrap(), 3, "a batch at a time");
    assert_eq!((s.unsealed_audit_events().await.unwrap(), s.seal_audit_events(&key, 3).await.unwrap()), (1, 1));
    s.purge_audit_events(300).await.unwrap();
    assert_eq!(filtered(AuditFilter::default()).await, vec![400, 300], "retention drops what is older");
    // What is left verifies from the anchor retention left, and a later event joins the chain.
    s.record_audit_event(&event(500, AuditKind::SignInFailed, bob)).await.unwrap();
    assert_eq!(s.seal_audit_events(&key, 10).await.unwrap(), 1);
    let anchor = s.audit_chain_anchor().await.unwrap();
    assert_eq!(anchor.as_ref().map(|a| a.seq), Some(2));
    let mut verifier = ChainVerifier::new(anchor);
    let sealed = s.sealed_audit_events(i64::MIN, 10).await.unwrap();
    assert_eq!(sealed.iter().map(|e| (e.seq, e.at)).collect::<Vec<_>>(), vec![(Some(3), 300), (Some(4), 400), (Some(5), 500)]);
    for e in &sealed {
        verifier.check(&key, e).unwrap();
    }
    assert_eq!(s.sealed_audit_events(4, 10).await.unwrap().len(), 2, "paged by place");
    // Everything goes once it is old: the anchor keeps the chain's place for what comes next.
    s.purge_audit_events(1_000).await.unwrap();
    assert!(filtered(AuditFilter::default()).await.is_empty());
    s.record_audit_event(&event(600, AuditKind::SignInFailed, bob)).await.unwrap();
    s.seal_audit_events(&key, 10).await.unwrap();
    let mut verifier = ChainVerifier::new(s.audit_chain_anchor().await.unwrap());
    verifier.check(&key, &s.sealed_audit_events(i64::MIN, 10).await.unwrap()[0]).unwrap();
    assert_eq!(verifier.next_seq(), 7);
}

async fn a_finished_sign_in_is_recorded_whole_or_not_at_all_per_account(s: Store) {
    let (ada, bob) = (user("ada@example.com"), user("bob@example.com"));
    s.create_user(&ada).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let london = LastSignIn {
        at: 1_000,
        ip: "81.2.69.142".into(),
        location: Location { country: Some("GB".into()), latitude: Some(51.5142), longitude: Some(-0.0931), ..Location::default() },
    };
    let nowhere = LastSignIn { at: 2_000, ip: "192.0.2.1".into(), location: Location::default() };
    let sign_in = |user: UserId, digest: &'static str, device: &'static str, remember: bool, last: LastSignIn| {
        let s = s.clone();
        async move {
            let (session, event) = (session(user, last.at), sign_in_event(user, last.at));
            let mut f = finished(digest, &session, 9_000, &event, device, &last);
            f.remember_device = remember;
            s.record_sign_in(&f).await
        }
    };
    let history = |user: UserId, device: &'static str| {
        let s = s.clone();
        async move { s.sign_in_history(user, device, 0).await.unwrap() }
    };

    let unknown = DeviceHistory { known: false, any_known: false };
    assert_eq!(sign_in(ada.id, "a1", "laptop", true, london.clone()).await.unwrap(), unknown, "the first sign-in ever");
    assert!(stored_session(&s, "a1").await.unwrap().is_some());
    assert_eq!(history(ada.id, "laptop").await.last.as_ref(), Some(&london));
    assert_eq!(history(ada.id, "laptop").await.device, DeviceHistory { known: true, any_known: true }, "remembered");
    assert_eq!(
        sign_in(ada.id, "a2", "laptop", true, nowhere.clone()).await.unwrap(),
        DeviceHistory { known: true, any_known: true },
        "what was known before this sign-in"
    );
    assert_eq!(history(ada.id, "laptop").await.last.as_ref(), Some(&nowhere), "replaced");
    let new_browser = DeviceHistory { known: false, any_known: true };
    assert_eq!(sign_in(ada.id, "a3", "phone", false, nowhere.clone()).await.unwrap(), new_browser);
    assert_eq!(sign_in(ada.id, "a4", "phone", false, nowhere.clone()).await.unwrap(), new_browser, "not remembered when asked not to");
    assert_eq!(history(bob.id, "laptop").await, SignInHistory { device: unknown, failures: 0, last: None }, "per account");

    // A session digest already taken: nothing of this sign-in is written.
    let bobs_events = AuditFilter { user: Some(bob.id), limit: 10, ..AuditFilter::default() };
    assert!(matches!(sign_in(bob.id, "a1", "tablet", true, london.clone()).await, Err(StoreError::Conflict)));
    assert_eq!(history(bob.id, "tablet").await, SignInHistory { device: unknown, failures: 0, last: None }, "no device, no place");
    assert!(s.audit_events(&bobs_events).await.unwrap().is_empty(), "no audit event");
    assert_eq!(stored_session(&s, "a1").await.unwrap().unwrap().user_id, ada.id);
    assert_eq!(sign_in(bob.id, "b1", "tablet", true, london).await.unwrap(), unknown, "the next sign-in is whole");
    assert_eq!(s.audit_events(&bobs_events).await.unwrap().len(), 1);
}

async fn a_client_keeps_its_policy_and_a_confidential_one_gets_a_new_secret(s: Store) {
    let strict = ClientPolicy {
        mfa: MfaPolicy::Required,
        allowed_factors: vec!["totp".into(), "webauthn".into()],
        allow_remember: true,
        remember_browser_days: Some(7),
        min_acr: Some("phr".into()),
    };
    let client = |id: &str, secret: Option<&str>, policy: ClientPolicy| Client {
        id: id.into(),
        name: "App".into(),
        secret_digest: secret.map(str::to_owned),
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        policy,
        signing_alg: SigningAlg::ES256,
        service_scopes: vec!["reports.read".into(), "audit".into()],
        self_registered: false,
        created_at: 0,
    };
    s.create_client(&client("bank", Some("old-digest"), strict.clone())).await.unwrap();
    s.create_client(&client("spa", None, ClientPolicy::default())).await.unwrap();
    assert_eq!(s.client("bank").await.unwrap().unwrap().policy, strict);
    assert_eq!(s.client("bank").await.unwrap().unwrap().service_scopes, ["reports.read", "audit"]);
    assert!(s.set_client_service_scopes("bank", &["audit".into()]).await.unwrap());
    assert_eq!(s.client("bank").await.unwrap().unwrap().service_scopes, ["audit"]);
    assert!(!s.set_client_service_scopes("nobody", &[]).await.unwrap());
    assert_eq!(s.client("spa").await.unwrap().unwrap().policy, ClientPolicy::default());

    let relaxed = ClientPolicy { allow_remember: false, ..ClientPolicy::default() };
    assert!(s.update_client_policy("bank", &relaxed).await.unwrap());
    assert!(!s.update_client_policy("nobody", &relaxed).await.unwrap());
    assert_eq!(s.client("bank").await.unwrap().unwrap().policy, relaxed);

    assert!(s.replace_client_secret("bank", "new-digest").await.unwrap());
    assert_eq!(s.client("bank").await.unwrap().unwrap().secret_digest.as_deref(), Some("new-digest"));
    assert!(!s.replace_client_secret("spa", "digest").await.unwrap(), "a public client stays public");
    assert_eq!(s.client("spa").await.unwrap().unwrap().secret_digest, None);

    // The sign-in pages read a pending request's client, with its current policy.
    s.save_pending_request(("to-bank", "bank", "a"), r#"{"acr":"mfa"}"#, (0, 1_000), (10, Some(10))).await.unwrap();
    s.save_pending_request(("to-spa", "spa", "b"), "{}", (0, 1_000), (10, Some(10))).await.unwrap();
    let (bank, request) = s.pending_request_client("to-bank", 999).await.unwrap().unwrap();
    assert_eq!((bank.id.as_str(), bank.policy, request.as_str()), ("bank", relaxed, r#"{"acr":"mfa"}"#));
    assert_eq!(s.pending_request_client("to-spa", 999).await.unwrap().unwrap().0.id, "spa");
    assert!(s.pending_request_client("to-bank", 1_000).await.unwrap().is_none(), "expired");
    assert!(s.pending_request_client("nowhere", 0).await.unwrap().is_none());
}

async fn waiting_authorization_requests_are_bounded_per_requester_and_in_all(s: Store) {
    let save = |id: &'static str, requester: &'static str, expires: i64| {
        let s = s.clone();
        async move { s.save_pending_request((id, "spa", requester), "{}", (0, expires), (2, Some(4))).await.unwrap() }
    };
    let waiting = |ids: &'static [&'static str]| {
        let s = s.clone();
        async move {
            let mut live = Vec::new();
            for id in ids {
                if s.pending_request(id, 0).await.unwrap().is_some() {
                    live.push(*id);
                }
            }
            live
        }
    };
    const ALL: &[&str] = &["flood-1", "flood-2", "flood-3", "user-1", "user-2", "other-1", "other-2"];
    // One requester keeps its newest two: its third replaces its first.
    save("flood-1", "flood", 100).await;
    save("flood-2", "flood", 101).await;
    save("flood-3", "flood", 102).await;
    assert_eq!(waiting(ALL).await, ["flood-2", "flood-3"]);
    save("user-1", "user", 103).await;
    save("user-2", "user", 104).await;
    // A full table (4) gives up its oldest request for a new one: never refused.
    save("other-1", "other", 105).await;
    assert_eq!(waiting(ALL).await, ["flood-3", "user-1", "user-2", "other-1"]);
    save("other-2", "other", 106).await;
    assert_eq!(waiting(ALL).await, ["user-1", "user-2", "other-1", "other-2"]);
}

async fn a_queued_notice_is_claimed_once_and_retried_until_removed(s: Store) {
    for left in 0..5 {
        s.enqueue_notice(&format!("user{left}@example.com"), &serde_json::to_string(&Message::RecoveryCodeUsed { left }).unwrap(), 100)
            .await
            .unwrap();
    }
    // Eight senders at once (as several server processes would): each notice goes to exactly one.
    let (claimed, distinct) = eight_senders_claim(&s, 100, 400, 2).await;
    assert_eq!((claimed.len(), distinct), (5, 5), "claimed once each: {claimed:?}");
    let first = claimed.iter().find(|n| n.recipient == "user0@example.com").unwrap();
    assert_eq!(first.attempts, 1);
    let message: Message = serde_json::from_str(&first.message).unwrap();
    assert_eq!(message, Message::RecoveryCodeUsed { left: 0 });

    assert!(s.claim_notices(399, 700, 10).await.unwrap().is_empty(), "hidden while leased");
    let again = s.claim_notices(400, 700, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (5, 2), "a sender that died leaves them to the next");
    s.retry_notice(again[0].id, 1, 5_000).await.unwrap();
    assert!(s.claim_notices(699, 1_000, 10).await.unwrap().is_empty(), "a stale sender's retry does not undo a newer claim");
    s.retry_notice(again[0].id, 2, 1_000).await.unwrap();
    for n in &again[1..] {
        s.remove_notice(n.id).await.unwrap();
    }
    assert!(s.claim_notices(999, 1_300, 10).await.unwrap().is_empty());
    let last = s.claim_notices(1_000, 1_300, 10).await.unwrap();
    assert_eq!((last.len(), last[0].id, last[0].attempts), (1, again[0].id, 3));

    // A backlog and many senders: a sender whose first choices another holds
    // takes the next free notices, so one round clears everything due.
    for n in 0..40 {
        s.enqueue_notice(&format!("bulk{n}@example.com"), &serde_json::to_string(&Message::RecoveryCodeUsed { left: n }).unwrap(), 2_000)
            .await
            .unwrap();
    }
    let (claimed, distinct) = eight_senders_claim(&s, 2_000, 2_400, 6).await;
    assert_eq!((claimed.len(), distinct), (41, 41), "the backlog and the lapsed lease, each claimed once");
    assert!(s.claim_notices(2_000, 2_400, 10).await.unwrap().is_empty());
}

/// Eight concurrent `claim_notices` calls: everything they claimed, and how many distinct notices that is.
async fn eight_senders_claim(s: &Store, now: i64, lease_until: i64, limit: u32) -> (Vec<portcullis_core::notices::QueuedNotice>, usize) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_notices(now, lease_until, limit).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let mut ids: Vec<i64> = claimed.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    ids.dedup();
    (claimed, ids.len())
}

async fn send_quotas_hold_under_concurrency_and_count_all_or_nothing(s: Store) {
    let quota = |key: &str, cap: u32| SlidingQuota { key: key.into(), cap, window: 3600 };
    let (ada, bob, phone) = (quota("otp-user:ada", 3), quota("otp-user:bob", 10), quota("otp-to:+15550001", 5));
    let store = s.clone();
    let (a, p) = (ada.clone(), phone.clone());
    let wins = concurrently(8, move || {
        let (s, quotas) = (store.clone(), [a.clone(), p.clone()]);
        async move { s.take_send_quotas(&quotas, 1000).await.unwrap().is_ok() }
    })
    .await;
    assert_eq!(wins, 3, "eight concurrent sends, a cap of three");
    // Bob shares the number: two of its five slots are left; his refused sends cost him nothing.
    for expected in [true, true, false, false] {
        assert_eq!(s.take_send_quotas(&[bob.clone(), phone.clone()], 1100).await.unwrap().is_ok(), expected);
    }
    for _ in 0..8 {
        assert!(s.take_send_quotas(std::slice::from_ref(&bob), 1200).await.unwrap().is_ok());
    }
    assert_eq!(s.take_send_quotas(std::slice::from_ref(&bob), 1200).await.unwrap(), Err(1100 + 3600 - 1200), "ten counted, not twelve");
    assert_eq!(s.take_send_quotas(std::slice::from_ref(&ada), 4599).await.unwrap(), Err(1), "an hour after the first send");
    assert_eq!(s.take_send_quotas(std::slice::from_ref(&ada), 4600).await.unwrap(), Ok(()));
    s.purge_expired(4600 + 24 * 3600).await.unwrap();
}

/// The pool skips its liveness check for a connection that came back less than
/// a second ago; one idle for longer is checked, so connections the database
/// dropped meanwhile (a restart) are replaced instead of failing a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_dropped_while_idle_are_replaced_before_use() {
    use sqlx::Connection;
    let Some(db) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let u = user("idle@example.com");
    store.create_user(&u).await.unwrap();

    let mut admin = sqlx::postgres::PgConnection::connect(&db.url).await.unwrap();
    let dropped: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(dropped >= 1, "the store's idle connections were ended");
    admin.close().await.unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    for _ in 0..3 {
        assert_eq!(store.user_by_email(&u.email).await.unwrap().map(|found| found.id), Some(u.id));
    }
    store.close().await;
}
