-- Accounts, emailed links, sessions and abuse counters (SQLite).
-- Times are Unix seconds. Keep in step with migrations/postgres/0001_accounts.sql.
CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL DEFAULT '',
    password_hash     TEXT NOT NULL,
    email_verified_at INTEGER,
    is_admin          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        INTEGER NOT NULL
);

CREATE TABLE email_links (
    digest      TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER
);
CREATE INDEX email_links_user ON email_links (user_id, purpose);

CREATE TABLE sessions (
    digest       TEXT PRIMARY KEY NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    auth_record  TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE login_failures (
    account_key     TEXT PRIMARY KEY NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER
);

CREATE TABLE rate_limits (
    bucket       TEXT PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL
);
