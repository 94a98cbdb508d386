-- Audit log and what adaptive sign-in rules remember (PostgreSQL).
-- Keep in step with migrations/sqlite/0008_audit_and_risk.sql.

-- One row per security event. No foreign key to users: the trail of a deleted
-- account stays readable.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    user_id    TEXT,
    client_id  TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (user_id, at);
CREATE INDEX audit_events_at ON audit_events (at);

-- Browsers (by the digest of their device cookie) each account has signed in from.
CREATE TABLE known_devices (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device        TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device)
);

-- Where each account last signed in from (impossible-travel rule).
CREATE TABLE last_sign_ins (
    user_id   TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    ip        TEXT NOT NULL,
    country   TEXT,
    latitude  DOUBLE PRECISION,
    longitude DOUBLE PRECISION
);

-- Sessions list where they came from, so their owner can tell them apart.
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';

-- The adaptive-rule assessment of a sign-in waiting for its second step.
ALTER TABLE pending_sign_ins ADD COLUMN assessment TEXT NOT NULL DEFAULT 'null';
