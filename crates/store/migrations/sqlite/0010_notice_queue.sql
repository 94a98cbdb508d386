-- Security notices (factor added, account locked, new device, ...) wait here
-- and a background task sends them: a slow or unreachable mail server never
-- slows a sign-in, the time a request takes does not tell whether a notice
-- was due, and a notice survives a restart. Keep in step with
-- migrations/postgres/0010_notice_queue.sql.
CREATE TABLE queued_notices (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT NOT NULL,
    message    TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX queued_notices_due ON queued_notices (not_before);
