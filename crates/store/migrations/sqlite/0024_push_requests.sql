-- Push approval (keep in step with migrations/postgres/0024_push_requests.sql).
-- A paired phone is a row of `credentials` (kind push_device); a sign-in
-- request sent to the user's phones is a row here, answered once by one
-- conditional UPDATE (status pending -> approved, denied or wrong_number),
-- and an approval is taken once by the sign-in it names (approved -> used).
CREATE TABLE push_requests (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Digest of the pending sign-in's token: only that sign-in takes the approval.
    sign_in     TEXT NOT NULL,
    number      INTEGER NOT NULL,
    -- The three numbers the phone offers, comma-separated.
    choices     TEXT NOT NULL,
    -- What the phone is shown (JSON: client_id, user_agent, ip).
    context     TEXT NOT NULL,
    status      TEXT NOT NULL,
    device_id   TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    answered_at INTEGER
);
CREATE INDEX push_requests_user ON push_requests (user_id, status);
CREATE INDEX push_requests_created ON push_requests (created_at);
