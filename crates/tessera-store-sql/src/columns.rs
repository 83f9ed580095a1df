//! The column lists both backends select, as macros rather than consts so that
//! `concat!` keeps every query a `&'static str`. Each goes with its decoder in
//! [`rows`](crate::rows).

/// A user's columns, of `users u`: [`rows::user`](crate::rows::user).
#[macro_export]
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.roles, u.disabled, u.created_at"
    };
}

/// A session's columns, of `sessions s`, named apart from its user's:
/// [`rows::session`](crate::rows::session), with [`user_columns!`].
#[macro_export]
macro_rules! session_columns {
    () => {
        "s.id AS session_id, s.secret_hash, s.csrf_token, \
         s.created_at AS session_created_at, s.last_seen_at, s.expires_at, s.client_address, \
         s.user_agent, s.amr"
    };
}

/// A passkey's columns: [`rows::passkey`](crate::rows::passkey).
#[macro_export]
macro_rules! passkey_columns {
    () => {
        "credential_id, user_id, name, passkey, sign_count, backup_eligible, created_at, \
         last_used_at"
    };
}

/// A refresh family with its user, up to the `WHERE`:
/// [`rows::family`](crate::rows::family).
#[macro_export]
macro_rules! family_select {
    () => {
        "SELECT f.id AS family_id, f.client_id, f.scopes, f.audience, f.session_id, \
         f.generation, f.created_at AS family_created_at, f.expires_at AS family_expires_at, \
         f.dpop_jkt, \
         u.id, u.username, u.roles, u.disabled, u.created_at \
         FROM refresh_families f JOIN users u ON u.id = f.user_id "
    };
}

/// [`rows::client`](crate::rows::client), in the order
/// [`Sql::insert_client`](crate::Sql::insert_client) binds them.
#[macro_export]
macro_rules! client_columns {
    () => {
        "id, name, secret_hash, grants, scopes, audiences, token_format, algorithm, \
         access_ttl_seconds, created_at, redirect_uris, post_logout_redirect_uris, \
         backchannel_logout_uri, first_party, require_par, id_token_algorithm, \
         dpop_bound_access_tokens"
    };
}

/// [`rows::key`](crate::rows::key), in the order [`Sql::insert_key`](crate::Sql::insert_key)
/// binds them.
#[macro_export]
macro_rules! key_columns {
    () => {
        "kid, algorithm, private_key, sealed, created_at, signs_from, published_until, retired_at"
    };
}

/// [`rows::opaque_token`](crate::rows::opaque_token), in the order
/// [`Sql::insert_opaque_token`](crate::Sql::insert_opaque_token) binds them.
#[macro_export]
macro_rules! token_columns {
    () => {
        "hash, jti, client_id, subject, user_id, scopes, audience, session_id, roles, \
         issued_at, expires_at, amr, dpop_jkt"
    };
}

/// [`rows::revocation`](crate::rows::revocation).
#[macro_export]
macro_rules! revocation_columns {
    () => {
        "sequence, kind, target, user_id, reason, at, expires_at"
    };
}

/// [`rows::event`](crate::rows::event).
#[macro_export]
macro_rules! event_columns {
    () => {
        "id, at, kind, outcome, actor_type, actor_id, user_id, username, target, address, detail"
    };
}

/// [`rows::authorization_code`](crate::rows::authorization_code), in the order
/// `batch_sql::insert_codes` binds them.
#[macro_export]
macro_rules! code_columns {
    () => {
        "hash, client_id, user_id, session_id, redirect_uri, scopes, code_challenge, nonce, \
         auth_time, family_id, jti, issued_at, expires_at, forget_at, dpop_jkt"
    };
}
