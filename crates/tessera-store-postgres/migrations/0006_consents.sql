-- The SQLite backend's migration 0011: what each user allowed each client (OpenID
-- Connect consent), so that the consent page is shown once per user, client and
-- scope set.
CREATE TABLE consents (
    user_id    TEXT   NOT NULL REFERENCES users(id),
    client_id  TEXT   NOT NULL,
    scopes     TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
