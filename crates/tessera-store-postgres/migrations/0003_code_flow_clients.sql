-- The SQLite backend's migration 0008: what a client of the browser flow (OpenID
-- Connect's authorization code) registers. URI lists are space-separated (a
-- registered URI holds no space); the defaults are what every client from before
-- this migration is: none of it.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN id_token_algorithm TEXT NOT NULL DEFAULT 'RS256';
