-- tessera's schema on PostgreSQL, equal to the SQLite backend's after its migration
-- 0006: the same tables, columns and meanings, so that code and docs describe both.
--
-- Times are Unix milliseconds (BIGINT). Secrets are never stored: only the SHA-256 of
-- session secrets, client secrets, refresh tokens and opaque access tokens (BYTEA).
-- Lists (roles, scopes, grants, audiences) are space-separated text, as in SQLite.

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL DEFAULT '',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id             TEXT   PRIMARY KEY,
    secret_hash    BYTEA  NOT NULL UNIQUE,
    user_id        TEXT   NOT NULL REFERENCES users(id),
    csrf_token     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    client_address TEXT,
    user_agent     TEXT
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE INDEX sessions_by_last_seen ON sessions(last_seen_at);

-- OAuth clients. A public client has no secret.
CREATE TABLE clients (
    id                 TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    secret_hash        BYTEA,
    grants             TEXT    NOT NULL,
    scopes             TEXT    NOT NULL DEFAULT '',
    audiences          TEXT    NOT NULL DEFAULT '',
    token_format       TEXT    NOT NULL,
    algorithm          TEXT    NOT NULL,
    access_ttl_seconds BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL
);

-- Signing keys. `private_key` is PKCS#8 DER, or sealed by the master key when
-- `sealed`. The lifecycle is in the times (see tessera-store's StoredKey).
CREATE TABLE signing_keys (
    kid             TEXT    PRIMARY KEY,
    algorithm       TEXT    NOT NULL,
    private_key     BYTEA   NOT NULL,
    sealed          BOOLEAN NOT NULL,
    created_at      BIGINT  NOT NULL,
    signs_from      BIGINT  NOT NULL,
    published_until BIGINT,
    retired_at      BIGINT
);

-- Refresh-token families: one grant's chain of refresh tokens, of which only the
-- SHA-256 of the live one is kept. Its id is the `sid` of the tokens it issues.
CREATE TABLE refresh_families (
    id           TEXT    PRIMARY KEY,
    client_id    TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users(id),
    scopes       TEXT    NOT NULL DEFAULT '',
    audience     TEXT,
    session_id   TEXT,
    current_hash BYTEA   NOT NULL UNIQUE,
    generation   BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX refresh_families_by_user ON refresh_families(user_id);
CREATE INDEX refresh_families_by_expiry ON refresh_families(expires_at);

-- Refresh tokens already exchanged: presenting one again is reuse.
CREATE TABLE refresh_tokens_used (
    hash       BYTEA  PRIMARY KEY,
    family_id  TEXT   NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    rotated_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_used_by_family ON refresh_tokens_used(family_id);

-- The revocation log. `kind` and `target` are text (`session` and its id, `token`
-- and a jti, `key` and a kid, ...), so that a new kind needs no schema change.
-- `user_id` is NULL where no user is concerned. `expires_at` is when what it revokes
-- has expired anyway, after which the entry can go.
CREATE TABLE revocation_log (
    sequence   BIGINT PRIMARY KEY,
    kind       TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    user_id    TEXT,
    reason     TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_by_expiry ON revocation_log(expires_at);

-- The log's sequence counter: one row, bumped by every appending transaction just
-- before its INSERT. Its row lock, held to commit, serialises appenders, so sequence
-- order is commit order and a reader polling "sequence > mine" never skips an entry
-- committed late with a low number (which a SEQUENCE, allocated outside the
-- transaction's order, would allow). Transactional, so it has no gaps, never goes
-- back across purges, and `last` is the newest entry ever committed.
CREATE TABLE revocation_sequence (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last     BIGINT  NOT NULL
);
INSERT INTO revocation_sequence (only_row, last) VALUES (TRUE, 0);

-- Opaque access tokens (`tat_…`), kept as the SHA-256 of the token.
CREATE TABLE opaque_tokens (
    hash       BYTEA  PRIMARY KEY,
    jti        TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    user_id    TEXT,
    scopes     TEXT   NOT NULL DEFAULT '',
    audience   TEXT,
    session_id TEXT,
    roles      TEXT   NOT NULL DEFAULT '',
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX opaque_tokens_by_expiry ON opaque_tokens(expires_at);

-- Presence: when each session (or refresh family) was last seen in use, for "who is
-- online". `sid` is a session or family id; rows go after a day.
CREATE TABLE presence (
    sid     TEXT    PRIMARY KEY,
    user_id TEXT    NOT NULL,
    seen_at BIGINT  NOT NULL,
    -- The session ended: a sighting arriving late (from another instance's queue)
    -- must not bring it back online.
    ended   BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX presence_by_time ON presence(seen_at);
