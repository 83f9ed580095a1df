-- The SQLite backend's migration 0009: authorization codes (OpenID Connect's code
-- flow), by the SHA-256 of the code.
-- A redemption sets `redeemed_at`, once; the row stays until `forget_at`, so that
-- a replay is told from a code never issued and can revoke what the code issued.
CREATE TABLE authorization_codes (
    hash           BYTEA   PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    auth_time      BIGINT  NOT NULL,
    family_id      TEXT    NOT NULL,
    jti            TEXT    NOT NULL,
    issued_at      BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    forget_at      BIGINT  NOT NULL,
    redeemed_at    BIGINT 
);
CREATE INDEX authorization_codes_by_forget_at ON authorization_codes(forget_at);
