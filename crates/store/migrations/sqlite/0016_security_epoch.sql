-- How many times everything an account's sign-ins gave was ended (a password
-- reset or change, an MFA reset, signing out everywhere, disabling). A session
-- (and a remembered browser) carries the count it was made under (pending sign-ins and grants carry it
-- in their JSON), and is dead once the account's count has moved on: what a
-- request in flight at the ending writes afterwards is dead on arrival.
ALTER TABLE users ADD COLUMN security_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN security_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE remembered_browsers ADD COLUMN security_epoch INTEGER NOT NULL DEFAULT 0;
