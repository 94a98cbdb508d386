-- Second factors (PostgreSQL). Keep in step with migrations/sqlite/0003_mfa.sql.
ALTER TABLE users ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    sealed_secret BYTEA NOT NULL,
    last_step     BIGINT NOT NULL DEFAULT -1,
    confirmed_at  BIGINT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, tag)
);

CREATE TABLE pending_sign_ins (
    digest         TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_record    TEXT NOT NULL,
    session_digest TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
