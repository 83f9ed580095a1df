-- The SQLite backend's migration 0023: DPoP (RFC 9449, issue 17). Additive: what
-- was stored before is unbound, as it was.
-- Clients whose access tokens must be bound to their key (§5.2
-- `dpop_bound_access_tokens`); the others choose per request.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
-- The key a public client's refresh family is bound to (§5): its refresh token is
-- taken only with a proof signed by that key.
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
-- The key an authorization request bound its code to (`dpop_jkt`, §10): the
-- code's exchange must come with a proof of that key.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
-- The key an opaque access token is bound to: introspection reports it (`cnf`).
ALTER TABLE opaque_tokens ADD COLUMN dpop_jkt TEXT;
