-- The SQLite backend's migration 0016: the most users and sessions online at once
-- in each hour (the dashboard's chart), kept as the maximum of every instance's
-- samples. Purged with the audit log.
CREATE TABLE online_peaks (
    hour     BIGINT PRIMARY KEY,
    users    BIGINT NOT NULL,
    sessions BIGINT NOT NULL
);
