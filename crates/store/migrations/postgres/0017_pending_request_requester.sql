-- Who asked (the client address's rate-limit key): each address keeps only its
-- newest few waiting authorization requests, so a flood from some addresses
-- cannot fill the bounded table for everyone.
ALTER TABLE pending_requests ADD COLUMN requester TEXT NOT NULL DEFAULT '';
CREATE INDEX pending_requests_by_requester ON pending_requests (requester, expires_at);
CREATE INDEX pending_requests_by_expiry ON pending_requests (expires_at, id);
