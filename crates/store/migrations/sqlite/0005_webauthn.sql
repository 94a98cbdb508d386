-- WebAuthn security keys and passkeys (SQLite). Keep in step with migrations/postgres/0005_webauthn.sql.
-- A WebAuthn credential is a row of `credentials` (kind security_key or passkey);
-- its webauthn-rs record is sealed in sealed_secret like a TOTP secret.
ALTER TABLE credentials ADD COLUMN public_key_id TEXT;
ALTER TABLE credentials ADD COLUMN sign_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN flagged_at INTEGER;
ALTER TABLE credentials ADD COLUMN authenticator TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX credentials_public_key_id ON credentials (public_key_id);

-- Set when the application asked for a phishing-resistant factor (acr_values=phr).
ALTER TABLE pending_sign_ins ADD COLUMN phishing_resistant BOOLEAN NOT NULL DEFAULT FALSE;

-- Server-side state of a registration or assertion, so any process can finish
-- a ceremony another one began; taken (deleted) exactly once.
CREATE TABLE webauthn_ceremonies (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
