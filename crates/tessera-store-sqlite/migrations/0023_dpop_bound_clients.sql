-- Clients whose access tokens must be bound to their key (DPoP, RFC 9449 §5.2
-- `dpop_bound_access_tokens`, issue 17). Additive: clients from before choose
-- per request, as they did.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
