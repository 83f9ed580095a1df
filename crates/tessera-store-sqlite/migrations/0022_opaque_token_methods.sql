-- How the sign-in behind an opaque access token went (its `amr`, for
-- introspection); none for a client's own token or one from before. Additive.
ALTER TABLE opaque_tokens ADD COLUMN amr TEXT;
