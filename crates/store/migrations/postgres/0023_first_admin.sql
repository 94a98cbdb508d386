-- First run without default credentials (keep in step with
-- migrations/sqlite/0023_first_admin.sql): the one-time links `serve` logs
-- while there is no administrator, stored as digests of their tokens.
CREATE TABLE setup_links (
    digest     TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Written once, by the link that created the first administrator: of links
-- used at the same time only one can write it, and none works after it.
CREATE TABLE first_admin (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
