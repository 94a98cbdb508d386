-- Sliding-window caps on codes sent (per user, per destination, per client
-- address): the times of the sends in the last window, space-separated. A
-- sender takes the row with an upsert before reading it, which holds the row
-- (PostgreSQL) or the write lock (SQLite) until it commits, so two senders
-- never both see the last free slot. The fixed-window counters used for these
-- caps until now are left to expire in rate_limits. Keep in step with
-- migrations/postgres/0011_send_quotas.sql.
CREATE TABLE send_quotas (
    quota_key TEXT PRIMARY KEY NOT NULL,
    recent    TEXT NOT NULL,
    last_at   INTEGER NOT NULL
);
