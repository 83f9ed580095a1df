-- OAuth clients. Lists are space-separated, as in OAuth itself. A public client has
-- no secret; a confidential one keeps only the SHA-256 of its secret.
CREATE TABLE clients (
    id                 TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    secret_hash        BLOB,
    grants             TEXT    NOT NULL,
    scopes             TEXT    NOT NULL DEFAULT '',
    audiences          TEXT    NOT NULL DEFAULT '',
    token_format       TEXT    NOT NULL,
    algorithm          TEXT    NOT NULL,
    access_ttl_seconds INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
) STRICT;

-- Signing keys. `private_key` is PKCS#8 DER, or sealed by the master key when
-- `sealed` is 1. The lifecycle is in the times (see tessera-store's StoredKey).
CREATE TABLE signing_keys (
    kid             TEXT    PRIMARY KEY,
    algorithm       TEXT    NOT NULL,
    private_key     BLOB    NOT NULL,
    sealed          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    signs_from      INTEGER NOT NULL,
    published_until INTEGER,
    retired_at      INTEGER
) STRICT;
