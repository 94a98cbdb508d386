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
-- What a user allowed a self-registered client (an operator's clients are
-- trusted without asking): the scopes, until the user removes its access.
CREATE TABLE client_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
