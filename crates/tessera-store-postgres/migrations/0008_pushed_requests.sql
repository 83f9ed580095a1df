-- The SQLite backend's migration 0013: pushed authorization requests (RFC 9126),
-- by the SHA-256 of their request_uri.
CREATE TABLE pushed_requests (
    hash       BYTEA  PRIMARY KEY,
    client_id  TEXT   NOT NULL,
    params     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_by_expires_at ON pushed_requests(expires_at);
