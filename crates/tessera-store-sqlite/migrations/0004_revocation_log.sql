-- The revocation log now records every kind of revocation, not only sessions:
-- `kind` is `session` (a browser session or a refresh family: `target` is its id,
-- the tokens' `sid`), `token` (`target` is a JWT's `jti`) or `key` (`target` is a
-- kid). `user_id` is NULL where no user is concerned. Sequence numbers carry over,
-- and the counter keeps its high-water mark, so no reader's position goes back.
CREATE TABLE revocation_log (
    sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    user_id    TEXT,
    reason     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO revocation_log (sequence, kind, target, user_id, reason, at, expires_at)
    SELECT sequence, 'session', session_id, user_id, reason, at, expires_at FROM revocations;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocation_log', 0
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocation_log');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0))
    WHERE name = 'revocation_log';
DROP TABLE revocations;
CREATE INDEX revocation_log_by_expiry ON revocation_log(expires_at);
