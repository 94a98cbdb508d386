-- The scopes a client's own tokens (`client_credentials`) may carry, space
-- separated; empty: none beyond what the client asks for of that list.
ALTER TABLE clients ADD COLUMN service_scopes TEXT NOT NULL DEFAULT '';
