-- Sign-in with more than a password (issue 16). A session records the methods it
-- was authenticated with (the `amr` of its tokens); sessions from before were
-- started with a password. Additive: an older binary's sessions get the default.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
-- Ceremonies under way, by the SHA-256 of their secret: a sign-in between its
-- factors, a passkey's challenge. Each is taken once.
CREATE TABLE ceremonies (
    hash       BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT,
    state      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX ceremonies_by_expires_at ON ceremonies(expires_at);
