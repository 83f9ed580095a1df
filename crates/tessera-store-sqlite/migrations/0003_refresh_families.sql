-- Refresh-token families. A family is one grant's chain of refresh tokens; only the
-- SHA-256 of its live token is kept in `current_hash`. Its id is the `sid` of the
-- access tokens it issues, so revoking it reaches verifiers like a session's end.
CREATE TABLE refresh_families (
    id           TEXT    PRIMARY KEY,
    client_id    TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users(id),
    scopes       TEXT    NOT NULL DEFAULT '',
    audience     TEXT,
    session_id   TEXT,
    current_hash BLOB    NOT NULL UNIQUE,
    generation   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_families_by_user ON refresh_families(user_id);
CREATE INDEX refresh_families_by_expiry ON refresh_families(expires_at);

-- Refresh tokens already exchanged: presenting one again is reuse.
CREATE TABLE refresh_tokens_used (
    hash       BLOB    PRIMARY KEY,
    family_id  TEXT    NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    rotated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_used_by_family ON refresh_tokens_used(family_id);
