-- Dynamic client registration (RFC 7591, RFC 7592). Initial access tokens
-- (`portcullis client registration-token`) are single use, kept as digests.
CREATE TABLE registration_tokens (
    digest     TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- A registered client's registration access token (its digest), which lets
-- the client read, update and delete its own registration.
CREATE TABLE client_registrations (
    client_id    TEXT PRIMARY KEY NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    token_digest TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
