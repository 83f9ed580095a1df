-- Recovery codes (issue 16): ten per account, each good once, stored hashed.
-- Replacing an account's codes deletes the earlier ones.
CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users(id),
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT;
