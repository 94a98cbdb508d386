-- The application of a pending authorization request, as a column: each
-- sign-in page reads that application's policy with the request in one query.
ALTER TABLE pending_requests ADD COLUMN client_id TEXT;
UPDATE pending_requests SET client_id = (request::json) -> 'params' ->> 'client_id';
