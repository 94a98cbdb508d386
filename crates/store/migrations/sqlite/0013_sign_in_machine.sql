-- The sign-in state machine (SQLite). Keep in step with migrations/postgres/0013_sign_in_machine.sql.
-- A pending sign-in now records what it waits for (core/src/sign_in): sign-ins
-- in progress at the upgrade start again (they last ten minutes at most).
DELETE FROM pending_sign_ins;
ALTER TABLE pending_sign_ins ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pending_sign_ins ADD COLUMN client_id TEXT;
ALTER TABLE pending_sign_ins ADD COLUMN answers INTEGER NOT NULL DEFAULT 0;

-- A sent code records what it is for and which credential it went to; codes
-- live at the upgrade (five minutes at most) are spent.
UPDATE one_time_codes SET spent_at = created_at WHERE spent_at IS NULL;
ALTER TABLE one_time_codes ADD COLUMN purpose TEXT NOT NULL DEFAULT 'sign_in';
ALTER TABLE one_time_codes ADD COLUMN credential_id TEXT;

-- When the password was last set by an emailed reset link (emailed codes
-- complete no second step for a while after).
ALTER TABLE users ADD COLUMN password_reset_at INTEGER;

-- Setups never finished are purged by age.
CREATE INDEX credentials_unconfirmed ON credentials (created_at) WHERE confirmed_at IS NULL;
