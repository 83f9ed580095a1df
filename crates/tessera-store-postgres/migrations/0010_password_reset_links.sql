-- The SQLite backend's migration 0015: one-time password-reset links, by the
-- SHA-256 of the secret, at most one per user; used once (deleted in the
-- transaction that sets the password).
CREATE TABLE password_reset_links (
    user_id    TEXT   PRIMARY KEY REFERENCES users(id),
    hash       BYTEA  NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
