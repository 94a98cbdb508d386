-- Codes sent by email (and later SMS) (PostgreSQL). Keep in step with migrations/sqlite/0006_one_time_codes.sql.
-- Only a keyed tag of each code is stored; spent_at is set when it is used or replaced.
CREATE TABLE one_time_codes (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel     TEXT NOT NULL,
    destination TEXT NOT NULL,
    tag         TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    spent_at    BIGINT
);
CREATE INDEX one_time_codes_user ON one_time_codes (user_id, channel);
