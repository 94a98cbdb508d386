-- Where a sent code went is kept as a keyed digest, never as the phone
-- number or address (core/src/factors/otp.rs, destination_digest). Codes
-- sent before the upgrade (live five minutes at most) are spent and their
-- destinations dropped; the hourly counters keyed by a plain number go too.
UPDATE one_time_codes SET destination = '', spent_at = COALESCE(spent_at, created_at);
DELETE FROM send_quotas WHERE quota_key LIKE 'otp-to:%' OR quota_key LIKE 'otp-user:%';
