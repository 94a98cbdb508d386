-- A read-only auditor sees everything the admin console shows and may change
-- nothing; an account is a user, an auditor or an admin (an admin also reads).
ALTER TABLE users ADD COLUMN is_auditor BOOLEAN NOT NULL DEFAULT FALSE;
