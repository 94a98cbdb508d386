-- "Remember this browser" (SQLite). Keep in step with migrations/postgres/0004_remembered_browsers.sql.
CREATE TABLE remembered_browsers (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_record  TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX remembered_browsers_user ON remembered_browsers (user_id);

ALTER TABLE clients ADD COLUMN allow_remember BOOLEAN NOT NULL DEFAULT TRUE;
