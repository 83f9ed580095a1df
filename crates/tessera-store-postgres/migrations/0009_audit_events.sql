-- The SQLite backend's migration 0014: the audit log. `id` is allocated under a
-- transaction-level advisory lock (see `record_events`), so ids commit in
-- ascending order and a follower reading `id > N` misses nothing.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,
    actor_type TEXT   NOT NULL,
    actor_id   TEXT,
    user_id    TEXT,
    username   TEXT,
    target     TEXT,
    address    TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_by_time ON audit_events(at);
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);
CREATE INDEX audit_events_by_actor ON audit_events(actor_id, id);
CREATE INDEX audit_events_by_kind ON audit_events(kind, id);
