//! Rows read back as the store's types: one decoder per kind of row, for either
//! driver's rows, each column through the `tessera-core` parser that keeps its
//! format. A value that does not parse is [`StoreError::Corrupt`].

use std::time::Duration;

use sqlx::{ColumnIndex, Decode, Row, Type};
use tessera_core::{
    Audience, AuthMethods, ClientId, ClientName, CsrfToken, DisplayName, Email, GrantType,
    LogoutUri, RedirectUri, Roles, Scopes, SecretHash, SessionId, Timestamp, UserId, Username,
};
use tessera_store::{
    Actor, AuthorizationCode, Ceremony, CeremonyKind, Client, CodeFlow, Consent, EndReason, Event,
    LogoutDelivery, NewEvent, OpaqueToken, PasskeyCredential, Profile, PushedRequest,
    RefreshFamily, Revocation, Revoked, SessionRecord, StoreError, StoredKey, User,
    UserCredentials,
};

use crate::store_error;

/// A row's columns by name, as the few column types of the schema. Implemented for
/// the rows of every sqlx driver that decodes those types (SQLite's and
/// PostgreSQL's), so that each decoder below is written once.
pub trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn optional_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Milliseconds since the epoch, as every time is stored.
    fn time(&self, column: &str) -> Result<Timestamp, StoreError> {
        self.int(column).map(Timestamp::from_millis)
    }

    fn optional_time(&self, column: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.optional_int(column)?.map(Timestamp::from_millis))
    }
}

impl<R> Columns for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn optional_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
    fn optional_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(column).map_err(store_error)
    }
}

/// A stored 32-byte hash (a secret's, a token's).
pub fn hash(bytes: Vec<u8>, what: &str) -> Result<SecretHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(SecretHash::from_bytes)
        .map_err(|_| StoreError::corrupt(what))
}

pub fn session_id(stored: &str, what: &str) -> Result<SessionId, StoreError> {
    SessionId::parse(stored).map_err(|_| StoreError::corrupt(what))
}

pub fn user_id(stored: &str) -> Result<UserId, StoreError> {
    UserId::parse(stored).ok_or_else(|| StoreError::corrupt("user id"))
}

/// [`user_columns!`](crate::user_columns).
pub fn user(row: &impl Columns) -> Result<User, StoreError> {
    Ok(User {
        id: user_id(&row.text("id")?)?,
        username: Username::parse(&row.text("username")?)
            .map_err(|_| StoreError::corrupt("username"))?,
        roles: Roles::from_stored(&row.text("roles")?).map_err(|_| StoreError::corrupt("roles"))?,
        disabled: row.flag("disabled")?,
        created_at: row.time("created_at")?,
    })
}

/// [`user_columns!`](crate::user_columns) and `password_hash`.
pub fn user_credentials(row: &impl Columns) -> Result<UserCredentials, StoreError> {
    Ok(UserCredentials {
        user: user(row)?,
        password_hash: row.text("password_hash")?,
    })
}

/// [`session_columns!`](crate::session_columns) and
/// [`user_columns!`](crate::user_columns).
pub fn session(row: &impl Columns) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: session_id(&row.text("session_id")?, "session id")?,
        secret_hash: hash(row.bytes("secret_hash")?, "secret hash")?,
        user: user(row)?,
        csrf_token: CsrfToken::from_stored(&row.text("csrf_token")?)
            .ok_or_else(|| StoreError::corrupt("CSRF token"))?,
        created_at: row.time("session_created_at")?,
        last_seen_at: row.time("last_seen_at")?,
        expires_at: row.time("expires_at")?,
        client_address: row.optional_text("client_address")?,
        user_agent: row.optional_text("user_agent")?,
        methods: AuthMethods::parse_stored(&row.text("amr")?)
            .map_err(|_| StoreError::corrupt("session's authentication methods"))?,
    })
}

/// [`family_select!`](crate::family_select).
pub fn family(row: &impl Columns) -> Result<RefreshFamily, StoreError> {
    let generation = row.int("generation")?;
    Ok(RefreshFamily {
        id: session_id(&row.text("family_id")?, "family id")?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("client id"))?,
        user: user(row)?,
        scopes: Scopes::parse(&row.text("scopes")?)
            .map_err(|_| StoreError::corrupt("family scopes"))?,
        audience: row
            .optional_text("audience")?
            .map(|a| Audience::parse(&a).map_err(|_| StoreError::corrupt("family audience")))
            .transpose()?,
        session: row
            .optional_text("session_id")?
            .map(|s| session_id(&s, "family session"))
            .transpose()?,
        generation: u32::try_from(generation).unwrap_or(u32::MAX),
        created_at: row.time("family_created_at")?,
        expires_at: row.time("family_expires_at")?,
        dpop_jkt: row.optional_text("dpop_jkt")?,
    })
}

/// [`client_columns!`](crate::client_columns).
pub fn client(row: &impl Columns) -> Result<Client, StoreError> {
    let secret_hash = row
        .optional_bytes("secret_hash")?
        .map(|bytes| hash(bytes, "client secret hash"))
        .transpose()?;
    let grants = row
        .text("grants")?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| StoreError::corrupt("client grant")))
        .collect::<Result<Vec<_>, _>>()?;
    let audiences = row
        .text("audiences")?
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(|a| Audience::parse(a).map_err(|_| StoreError::corrupt("client audience")))
        .collect::<Result<Vec<_>, _>>()?;
    let ttl = row.int("access_ttl_seconds")?;
    Ok(Client {
        id: ClientId::parse(&row.text("id")?).ok_or_else(|| StoreError::corrupt("client id"))?,
        name: ClientName::parse(&row.text("name")?)
            .map_err(|_| StoreError::corrupt("client name"))?,
        secret_hash,
        grants,
        scopes: Scopes::parse(&row.text("scopes")?)
            .map_err(|_| StoreError::corrupt("client scopes"))?,
        audiences,
        token_format: row
            .text("token_format")?
            .parse()
            .map_err(|_| StoreError::corrupt("client token format"))?,
        algorithm: row
            .text("algorithm")?
            .parse()
            .map_err(|_| StoreError::corrupt("client algorithm"))?,
        access_ttl: Duration::from_secs(
            u64::try_from(ttl).map_err(|_| StoreError::corrupt("client token lifetime"))?,
        ),
        dpop_bound_access_tokens: row.flag("dpop_bound_access_tokens")?,
        created_at: row.time("created_at")?,
        code_flow: code_flow(row)?,
    })
}

fn code_flow(row: &impl Columns) -> Result<CodeFlow, StoreError> {
    let uris = |column: &str| -> Result<Vec<RedirectUri>, StoreError> {
        row.text(column)?
            .split(' ')
            .filter(|u| !u.is_empty())
            .map(|u| RedirectUri::parse(u).map_err(|_| StoreError::corrupt("client redirect URI")))
            .collect()
    };
    Ok(CodeFlow {
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        backchannel_logout_uri: row
            .optional_text("backchannel_logout_uri")?
            .map(|u| {
                LogoutUri::parse(&u).map_err(|_| StoreError::corrupt("client back-channel URI"))
            })
            .transpose()?,
        first_party: row.flag("first_party")?,
        require_par: row.flag("require_par")?,
        id_token_algorithm: row
            .text("id_token_algorithm")?
            .parse()
            .map_err(|_| StoreError::corrupt("client ID token algorithm"))?,
    })
}

/// [`key_columns!`](crate::key_columns).
pub fn key(row: &impl Columns) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.text("kid")?,
        algorithm: row.text("algorithm")?,
        private_key: row.bytes("private_key")?,
        sealed: row.flag("sealed")?,
        created_at: row.time("created_at")?,
        signs_from: row.time("signs_from")?,
        published_until: row.optional_time("published_until")?,
        retired_at: row.optional_time("retired_at")?,
    })
}

/// [`token_columns!`](crate::token_columns).
pub fn opaque_token(row: &impl Columns) -> Result<OpaqueToken, StoreError> {
    Ok(OpaqueToken {
        hash: hash(row.bytes("hash")?, "token hash")?,
        jti: row.text("jti")?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("client id"))?,
        subject: row.text("subject")?,
        user: row
            .optional_text("user_id")?
            .map(|u| user_id(&u))
            .transpose()?,
        scopes: Scopes::parse(&row.text("scopes")?)
            .map_err(|_| StoreError::corrupt("token scopes"))?,
        audience: row
            .optional_text("audience")?
            .map(|a| Audience::parse(&a).map_err(|_| StoreError::corrupt("token audience")))
            .transpose()?,
        session: row
            .optional_text("session_id")?
            .map(|s| session_id(&s, "token session"))
            .transpose()?,
        roles: Roles::from_stored(&row.text("roles")?)
            .map_err(|_| StoreError::corrupt("token roles"))?,
        methods: row
            .optional_text("amr")?
            .map(|m| {
                AuthMethods::parse_stored(&m)
                    .map_err(|_| StoreError::corrupt("token's authentication methods"))
            })
            .transpose()?,
        dpop_jkt: row.optional_text("dpop_jkt")?,
        issued_at: row.time("issued_at")?,
        expires_at: row.time("expires_at")?,
    })
}

/// [`revocation_columns!`](crate::revocation_columns).
pub fn revocation(row: &impl Columns) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        sequence: u64::try_from(row.int("sequence")?)
            .map_err(|_| StoreError::corrupt("sequence"))?,
        revoked: Revoked::from_stored(&row.text("kind")?, &row.text("target")?)
            .ok_or_else(|| StoreError::corrupt("revocation"))?,
        user: row
            .optional_text("user_id")?
            .map(|u| user_id(&u))
            .transpose()?,
        reason: EndReason::parse(&row.text("reason")?)
            .ok_or_else(|| StoreError::corrupt("reason"))?,
        at: row.time("at")?,
        expires_at: row.time("expires_at")?,
    })
}

/// [`event_columns!`](crate::event_columns).
pub fn event(row: &impl Columns) -> Result<Event, StoreError> {
    let actor_id = row.optional_text("actor_id")?;
    Ok(Event {
        id: row.int("id")?,
        event: NewEvent {
            at: row.time("at")?,
            kind: row
                .text("kind")?
                .parse()
                .map_err(|_| StoreError::corrupt("event kind"))?,
            outcome: row
                .text("outcome")?
                .parse()
                .map_err(|()| StoreError::corrupt("event outcome"))?,
            actor: Actor::from_stored(&row.text("actor_type")?, actor_id.as_deref())
                .ok_or_else(|| StoreError::corrupt("event actor"))?,
            user: row
                .optional_text("user_id")?
                .map(|u| user_id(&u))
                .transpose()?,
            username: row.optional_text("username")?,
            target: row.optional_text("target")?,
            address: row
                .optional_text("address")?
                .map(|a| a.parse().map_err(|_| StoreError::corrupt("event address")))
                .transpose()?,
            detail: row.optional_text("detail")?,
        },
    })
}

/// How long the revocation of a session (or refresh family) that expires at
/// `expires_at` must be kept: past that by the longest access-token lifetime, since
/// a token exchanged from it may outlive it by that much.
pub fn session_revocation_expiry(expires_at: i64) -> Timestamp {
    Timestamp::from_millis(expires_at).saturating_add(tessera_core::MAX_ACCESS_TTL)
}

/// [`code_columns!`](crate::code_columns).
pub fn authorization_code(row: &impl Columns) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        hash: hash(row.bytes("hash")?, "authorization code hash")?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("code client id"))?,
        user: user_id(&row.text("user_id")?)?,
        session: session_id(&row.text("session_id")?, "code session")?,
        redirect_uri: row.text("redirect_uri")?,
        scopes: Scopes::parse(&row.text("scopes")?)
            .map_err(|_| StoreError::corrupt("code scopes"))?,
        code_challenge: row.optional_text("code_challenge")?,
        nonce: row.optional_text("nonce")?,
        dpop_jkt: row.optional_text("dpop_jkt")?,
        auth_time: row.time("auth_time")?,
        family: session_id(&row.text("family_id")?, "code family")?,
        jti: row.text("jti")?,
        issued_at: row.time("issued_at")?,
        expires_at: row.time("expires_at")?,
        forget_at: row.time("forget_at")?,
    })
}

/// `name, email, email_verified, profile_updated_at` of a user.
pub fn profile(row: &impl Columns) -> Result<Profile, StoreError> {
    Ok(Profile {
        name: row
            .optional_text("name")?
            .map(|n| DisplayName::parse(&n).map_err(|_| StoreError::corrupt("user name")))
            .transpose()?,
        email: row
            .optional_text("email")?
            .map(|e| Email::parse(&e).map_err(|_| StoreError::corrupt("user email")))
            .transpose()?,
        email_verified: row.flag("email_verified")?,
        updated_at: row
            .optional_int("profile_updated_at")?
            .map(Timestamp::from_millis),
    })
}

/// `user_id, client_id, scopes, granted_at` of a consent.
pub fn consent(row: &impl Columns) -> Result<Consent, StoreError> {
    Ok(Consent {
        user: user_id(&row.text("user_id")?)?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("consent client id"))?,
        scopes: Scopes::parse(&row.text("scopes")?)
            .map_err(|_| StoreError::corrupt("consent scopes"))?,
        granted_at: row.time("granted_at")?,
    })
}

/// `id, client_id, session_id, user_id, attempts, queued_at` of a queued logout.
pub fn logout_delivery(row: &impl Columns) -> Result<LogoutDelivery, StoreError> {
    Ok(LogoutDelivery {
        id: row.int("id")?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("logout client id"))?,
        session: session_id(&row.text("session_id")?, "logout session")?,
        user: user_id(&row.text("user_id")?)?,
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
        queued_at: row.time("queued_at")?,
    })
}

/// `hash, client_id, params, expires_at` of a pushed authorization request.
pub fn pushed_request(row: &impl Columns) -> Result<PushedRequest, StoreError> {
    Ok(PushedRequest {
        hash: hash(row.bytes("hash")?, "pushed request hash")?,
        client_id: ClientId::parse(&row.text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("pushed request client id"))?,
        params: row.text("params")?,
        expires_at: row.time("expires_at")?,
    })
}

/// [`passkey_columns!`](crate::passkey_columns).
pub fn passkey(row: &impl Columns) -> Result<PasskeyCredential, StoreError> {
    Ok(PasskeyCredential {
        credential_id: row.bytes("credential_id")?,
        user: UserId::parse(&row.text("user_id")?)
            .ok_or_else(|| StoreError::corrupt("passkey user"))?,
        name: row.text("name")?,
        passkey: row.text("passkey")?,
        sign_count: u32::try_from(row.int("sign_count")?)
            .map_err(|_| StoreError::corrupt("passkey sign_count"))?,
        backup_eligible: row.flag("backup_eligible")?,
        created_at: row.time("created_at")?,
        last_used_at: row.optional_time("last_used_at")?,
    })
}

/// `hash, kind, user_id, state, expires_at` of a ceremony.
pub fn ceremony(row: &impl Columns) -> Result<Ceremony, StoreError> {
    Ok(Ceremony {
        hash: hash(row.bytes("hash")?, "ceremony hash")?,
        kind: CeremonyKind::parse(&row.text("kind")?)
            .ok_or_else(|| StoreError::corrupt("ceremony kind"))?,
        user: row
            .optional_text("user_id")?
            .map(|id| UserId::parse(&id).ok_or_else(|| StoreError::corrupt("ceremony user")))
            .transpose()?,
        state: row.text("state")?,
        expires_at: row.time("expires_at")?,
    })
}

/// A row of [`LAST_USE_BY_CLIENT`](crate::LAST_USE_BY_CLIENT).
pub fn last_use(row: &impl Columns) -> Result<(ClientId, Timestamp), StoreError> {
    let client =
        ClientId::parse(&row.text("client_id")?).ok_or_else(|| StoreError::corrupt("client id"))?;
    let created = row.int("created_at")?;
    let rotated = row.optional_int("rotated_at")?.unwrap_or(created);
    Ok((client, Timestamp::from_millis(created.max(rotated))))
}
