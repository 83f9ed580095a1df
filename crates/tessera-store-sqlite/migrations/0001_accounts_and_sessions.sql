-- Times are Unix milliseconds. Secrets are never stored: sessions keep the SHA-256
-- of their secret.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,
    secret_hash    BLOB    NOT NULL UNIQUE,
    user_id        TEXT    NOT NULL REFERENCES users(id),
    csrf_token     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    client_address TEXT,
    user_agent     TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE INDEX sessions_by_last_seen ON sessions(last_seen_at);

-- Append-only; `expires_at` is when the revoked thing would have expired anyway,
-- after which the entry can go.
CREATE TABLE revocations (
    sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_by_expiry ON revocations(expires_at);
