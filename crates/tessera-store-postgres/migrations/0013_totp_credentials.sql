-- TOTP second factors (RFC 6238, issue 16): one per account, its secret sealed
-- under the master key like a signing key. Unconfirmed while being enrolled
-- (`confirmed_at` NULL), which grants nothing; `last_step` is the last 30-second
-- step a code was accepted for, so that no code is accepted twice.
CREATE TABLE totp_credentials (
    user_id       TEXT   PRIMARY KEY REFERENCES users(id),
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT
);
