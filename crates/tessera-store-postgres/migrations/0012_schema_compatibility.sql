-- The oldest schema version whose tessera can run on this schema. A tessera meeting
-- a schema newer than its own runs on it when its version is at least this one: the
-- newer migrations only added (a rolling upgrade has both versions running). A
-- migration that takes away what older versions use raises it (see
-- tessera-store-sql/tests/upgrades.rs), and older versions then refuse the store.
ALTER TABLE tessera_schema ADD COLUMN oldest_compatible BIGINT NOT NULL DEFAULT 1;
