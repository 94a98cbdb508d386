//! The lookups every signed-in request makes read one user row on
//! PostgreSQL, whatever join the planner prefers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::Store;
use crate::accounts::SESSION_WITH_USER;
use crate::sign_in::PENDING_WITH_USER;
use crate::testing::TestDatabase;

/// Rows that each plan node reading `users` returned, from `EXPLAIN (ANALYZE, FORMAT JSON)`.
fn users_rows_read(node: &serde_json::Value, found: &mut Vec<u64>) {
    if node["Relation Name"] == "users" {
        found.push(node["Actual Rows"].as_u64().unwrap() * node["Actual Loops"].as_u64().unwrap());
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        users_rows_read(child, found);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_and_a_pending_sign_in_read_their_user_by_key_under_any_join() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    // Ids ordered by creation as UUIDv7 are; the sessions of the first user, as
    // in the benchmark whose statistics led PostgreSQL to a merge join, and one
    // session and one pending sign-in of the user created last.
    for statement in [
        "INSERT INTO users (id, email, password_hash, created_at) \
         SELECT lpad(to_hex(g), 12, '0') || '-7000-8000-000000000000', 'u' || g || '@example.com', 'x', g FROM generate_series(1, 5000) g",
        "INSERT INTO sessions (digest, id, user_id, created_at, last_seen_at, expires_at, auth_record) \
         SELECT 'early-' || g, 'early-' || g, '000000000001-7000-8000-000000000000', 0, 0, 10, '{}' FROM generate_series(1, 500) g",
        "INSERT INTO sessions (digest, id, user_id, created_at, last_seen_at, expires_at, auth_record) \
         VALUES ('late', 'late', lpad(to_hex(5000), 12, '0') || '-7000-8000-000000000000', 0, 0, 10, '{}')",
        "INSERT INTO pending_sign_ins (digest, user_id, auth_record, created_at, expires_at) \
         VALUES ('late', lpad(to_hex(5000), 12, '0') || '-7000-8000-000000000000', '{}', 0, 10)",
        "ANALYZE",
        // The plan PostgreSQL chose at 1,000,000 users, forced here at 5,000:
        // no nested loop, no hash join, so only a merge join is left.
        "SET enable_nestloop = off",
        "SET enable_hashjoin = off",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    for (name, sql) in [("session", SESSION_WITH_USER), ("pending sign-in", PENDING_WITH_USER)] {
        let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}");
        let query = sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(explain)).bind("late");
        let query = if sql.contains("$2") { query.bind(5_i64) } else { query };
        let plan = query.fetch_one(&mut conn).await.unwrap();
        let mut reads = Vec::new();
        users_rows_read(&plan[0]["Plan"], &mut reads);
        assert_eq!(reads, [1], "the {name} lookup reads exactly its own user: {plan:#}");
    }
}
