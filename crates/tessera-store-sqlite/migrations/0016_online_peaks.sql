-- The most users (and sessions) online at once in each hour, sampled by every
-- running instance once a minute and kept as the maximum: the admin dashboard's
-- "online users over the last day". Purged with the audit log.
CREATE TABLE online_peaks (
    hour     INTEGER PRIMARY KEY,
    users    INTEGER NOT NULL,
    sessions INTEGER NOT NULL
) STRICT;
