-- The audit log: security-relevant events for people to read (the admin console,
-- `GET /admin/v1/events`, `tessera events`), kept for a configured time. `id`
-- ascends in the order of recording (AUTOINCREMENT: never reused after a purge),
-- the cursor for paging and following. Nothing secret is stored.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    actor_type TEXT    NOT NULL,
    actor_id   TEXT,
    user_id    TEXT,
    username   TEXT,
    target     TEXT,
    address    TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX audit_events_by_time ON audit_events(at);
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);
CREATE INDEX audit_events_by_actor ON audit_events(actor_id, id);
CREATE INDEX audit_events_by_kind ON audit_events(kind, id);
