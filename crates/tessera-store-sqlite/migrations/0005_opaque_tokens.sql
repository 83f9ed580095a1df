-- Opaque access tokens (`tat_…`), kept as the SHA-256 of the token. Checked by
-- introspection; deleted when revoked and purged when expired.
CREATE TABLE opaque_tokens (
    hash       BLOB    PRIMARY KEY,
    jti        TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    TEXT,
    scopes     TEXT    NOT NULL DEFAULT '',
    audience   TEXT,
    session_id TEXT,
    roles      TEXT    NOT NULL DEFAULT '',
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX opaque_tokens_by_expiry ON opaque_tokens(expires_at);
