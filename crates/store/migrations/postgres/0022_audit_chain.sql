-- The audit log as a chain (keep in step with migrations/sqlite/0022_audit_chain.sql):
-- each sealed event has its place in the chain (seq, from 1 with no gaps) and
-- its link, an HMAC over the previous link and every column of the event.
-- Events are sealed shortly after they are written, one sealer at a time
-- (an advisory lock: several nodes write one chain).
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain TEXT;
CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);
CREATE INDEX audit_events_unsealed ON audit_events (id) WHERE seq IS NULL;

-- Where the chain starts once retention has deleted its beginning: the place
-- and link of the last deleted event (the first kept one follows them).
CREATE TABLE audit_chain_anchor (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    chain TEXT NOT NULL
);
