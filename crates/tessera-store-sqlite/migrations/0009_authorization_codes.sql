-- Authorization codes (OpenID Connect's code flow), by the SHA-256 of the code.
-- A redemption sets `redeemed_at`, once; the row stays until `forget_at`, so that
-- a replay is told from a code never issued and can revoke what the code issued.
CREATE TABLE authorization_codes (
    hash           BLOB    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    family_id      TEXT    NOT NULL,
    jti            TEXT    NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    forget_at      INTEGER NOT NULL,
    redeemed_at    INTEGER
) STRICT;
CREATE INDEX authorization_codes_by_forget_at ON authorization_codes(forget_at);
