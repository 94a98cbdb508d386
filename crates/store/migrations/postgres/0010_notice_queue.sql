-- Security notices (factor added, account locked, new device, ...) wait here
-- and a background task sends them: a slow or unreachable mail server never
-- slows a sign-in, the time a request takes does not tell whether a notice
-- was due, and a notice survives a restart. Keep in step with
-- migrations/sqlite/0010_notice_queue.sql.
CREATE TABLE queued_notices (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  TEXT NOT NULL,
    message    TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX queued_notices_due ON queued_notices (not_before);
