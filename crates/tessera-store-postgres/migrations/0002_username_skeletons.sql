-- The SQLite backend's migration 0007: the confusable skeleton (Unicode TR39) of
-- each username, computed by tessera, not SQL, under a unique index, so that two
-- accounts whose names look alike cannot both hold one, racing registrations
-- included. NULL until the store's next open fills it in (rows from before this
-- migration), or for good on an account whose skeleton an older account held
-- already: that one keeps everything it had and names the older in `look_alike_of`.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
ALTER TABLE users ADD COLUMN look_alike_of TEXT;
CREATE UNIQUE INDEX users_by_skeleton ON users(username_skeleton);
CREATE INDEX users_look_alikes ON users(look_alike_of) WHERE look_alike_of IS NOT NULL;
