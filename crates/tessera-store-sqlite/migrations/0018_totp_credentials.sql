-- TOTP second factors (RFC 6238, issue 16): one per account, its secret sealed
-- under the master key like a signing key. Unconfirmed while being enrolled
-- (`confirmed_at` NULL), which grants nothing; `last_step` is the last 30-second
-- step a code was accepted for, so that no code is accepted twice.
CREATE TABLE totp_credentials (
    user_id       TEXT    PRIMARY KEY REFERENCES users(id),
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER
) STRICT;
