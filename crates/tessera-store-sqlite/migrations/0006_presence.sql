-- Presence: when each session (or refresh family) was last seen in use, for
-- "who is online". `sid` is a session or family id; rows go after a day.
CREATE TABLE presence (
    sid     TEXT    PRIMARY KEY,
    user_id TEXT    NOT NULL,
    seen_at INTEGER NOT NULL,
    -- The session ended: a sighting arriving late (from another instance's queue)
    -- must not bring it back online.
    ended   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX presence_by_time ON presence(seen_at);
