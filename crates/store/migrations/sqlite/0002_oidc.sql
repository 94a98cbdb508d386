-- OpenID Connect: clients, signing keys, pending requests, codes, tokens (SQLite).
-- Keep in step with migrations/postgres/0002_oidc.sql.
CREATE TABLE clients (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    secret_digest             TEXT,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    mfa                       TEXT NOT NULL,
    signing_alg               TEXT NOT NULL,
    created_at                INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    public_jwk         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    rotated_at         INTEGER
);

CREATE TABLE pending_requests (
    id         TEXT PRIMARY KEY NOT NULL,
    request    TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE authorization_codes (
    digest         TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    grant_data     TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    consumed_at    INTEGER
);
CREATE INDEX authorization_codes_grant ON authorization_codes (grant_id);

CREATE TABLE refresh_tokens (
    digest      TEXT PRIMARY KEY NOT NULL,
    grant_id    TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    grant_data  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

CREATE TABLE access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
