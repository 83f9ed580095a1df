-- Pushed authorization requests (RFC 9126), by the SHA-256 of their request_uri.
CREATE TABLE pushed_requests (
    hash       BLOB    PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX pushed_requests_by_expires_at ON pushed_requests(expires_at);
