-- One-time password-reset links an administrator hands a person (tessera sends no
-- mail), by the SHA-256 of the link's secret. At most one per user: issuing a new
-- link replaces the earlier one. Using it deletes the row in the transaction that
-- sets the password, so it works once; an expired row is refused on read and
-- replaced by the user's next link.
CREATE TABLE password_reset_links (
    user_id    TEXT    PRIMARY KEY REFERENCES users(id),
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
