-- Codes sent by email (and later SMS) (SQLite). Keep in step with migrations/postgres/0006_one_time_codes.sql.
-- Only a keyed tag of each code is stored; spent_at is set when it is used or replaced.
CREATE TABLE one_time_codes (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel     TEXT NOT NULL,
    destination TEXT NOT NULL,
    tag         TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    spent_at    INTEGER
);
CREATE INDEX one_time_codes_user ON one_time_codes (user_id, channel);
