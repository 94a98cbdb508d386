-- Per-client policy beyond MFA off/optional/required: which factors count,
-- how old a remembered browser may be, the least acr. A pending sign-in
-- started for such a client carries the factors it may finish with.
-- Keep in step with migrations/postgres/0009_client_policy.sql.
ALTER TABLE clients ADD COLUMN allowed_factors TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN remember_browser_days INTEGER;
ALTER TABLE clients ADD COLUMN min_acr TEXT;
ALTER TABLE pending_sign_ins ADD COLUMN allowed_factors TEXT NOT NULL DEFAULT '';

-- An operator can disable an account (admin console "Lock"): it cannot sign in until enabled again.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
