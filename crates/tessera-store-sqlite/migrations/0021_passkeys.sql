-- Passkeys (issue 16): WebAuthn credentials, several per account, each by its
-- credential id. `passkey` is the verifier's own record of the credential (its
-- public key and flags, as JSON); `sign_count` is kept beside it so that a counter
-- that goes backwards is refused in the statement that records a use.
CREATE TABLE passkeys (
    credential_id  BLOB    PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES users(id),
    name           TEXT    NOT NULL,
    passkey        TEXT    NOT NULL,
    sign_count     INTEGER NOT NULL,
    backup_eligible INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
) STRICT;
CREATE INDEX passkeys_by_user ON passkeys(user_id);
