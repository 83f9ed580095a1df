-- The SQLite backend's migration 0010: what an account says about its person
-- (OpenID Connect's standard claims), all optional: nothing for the accounts from
-- before this migration.
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN profile_updated_at BIGINT;
