-- The SQLite backend's migration 0021: passkeys (issue 16), WebAuthn credentials,
-- several per account, each by its credential id. `passkey` is the verifier's own
-- record of the credential (its public key and flags, as JSON); `sign_count` is
-- kept beside it so that a counter that goes backwards is refused in the
-- statement that records a use.
CREATE TABLE passkeys (
    credential_id  BYTEA   PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES users(id),
    name           TEXT    NOT NULL,
    passkey        TEXT    NOT NULL,
    sign_count     BIGINT  NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys(user_id);
