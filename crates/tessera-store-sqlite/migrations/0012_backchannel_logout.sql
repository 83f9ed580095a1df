-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0): which clients got
-- tokens from which browser session, the logouts queued for them when it ended,
-- and how far the revocation log has been turned into logouts.
CREATE TABLE session_clients (
    session_id TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    forget_at  INTEGER NOT NULL,
    PRIMARY KEY (session_id, client_id)
) STRICT;
CREATE INDEX session_clients_by_user ON session_clients(user_id);
CREATE INDEX session_clients_by_forget_at ON session_clients(forget_at);

CREATE TABLE backchannel_logouts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id    TEXT    NOT NULL,
    session_id   TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    queued_at    INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    leased_until INTEGER,
    UNIQUE (client_id, session_id)
) STRICT;
CREATE INDEX backchannel_logouts_by_due_at ON backchannel_logouts(due_at);

CREATE TABLE backchannel_position (position INTEGER NOT NULL) STRICT;
INSERT INTO backchannel_position (position) VALUES (0);
