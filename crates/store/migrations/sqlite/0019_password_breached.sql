-- When a sign-in found the account's password among breached passwords: the
-- user is asked to change it after signing in, until a new one is set.
ALTER TABLE users ADD COLUMN password_breached_at INTEGER;
