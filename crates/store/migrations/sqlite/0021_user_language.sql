-- The language a user reads pages and messages in (a BCP 47 tag such as
-- 'de'; NULL: the browser's for pages, English for messages), and until when
-- "Not now" holds off the suggestion to set up a second factor.
ALTER TABLE users ADD COLUMN language TEXT;
ALTER TABLE users ADD COLUMN enrollment_prompt_snoozed_until INTEGER;
