-- Access tokens are self-contained JWTs (RFC 9068) carrying their jti, grant
-- and client: issuing one writes nothing. Only revocations are stored, each
-- until every token it covers has expired. (postgres; keep in step with
-- migrations/sqlite/0007_access_token_revocations.sql.)
CREATE TABLE access_token_revocations (
    -- 'jti:<jti>', 'grant:<grant id>' or 'client:<client id>'
    revoked    TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_token_revocations_expiry ON access_token_revocations (expires_at);

INSERT INTO access_token_revocations (revoked, expires_at)
    SELECT 'jti:' || jti, expires_at FROM access_tokens WHERE revoked_at IS NOT NULL;
-- Tokens issued before this migration carry no grant claim: they are refused
-- from now on (fail closed) and their clients obtain new ones.
DROP TABLE access_tokens;
