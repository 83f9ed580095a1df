//! The statements SQLite and PostgreSQL run word for word, each bound and decoded
//! here once. Placeholders are `$N`, which sqlx's SQLite driver binds by number as
//! PostgreSQL does. A backend calls them on its database type, e.g.
//! `Postgres::session(&self.pool, id)`, on its pool or inside its own transaction;
//! what it runs around them (locks, notifications, the revocation log) stays its own.

use std::sync::LazyLock;

use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use tessera_core::{
    Audience, AuthMethods, ClientId, ClientName, RedirectUri, Roles, SecretHash, SessionId,
    Timestamp, UserId, Username,
};
use tessera_store::{
    Ceremony, CeremonyKind, Client, Consent, CreateSessionError, CreateUserError, Event,
    EventCount, EventKind, EventQuery, LogoutDelivery, NewEvent, NewSession, NewUser, Online,
    OnlinePeak, OpaqueToken, PasskeyCredential, Profile, PushedRequest, RefreshFamily, ResetLink,
    Revocation, SessionRecord, StoreError, StoredKey, TotpCredential, User, UserCredentials,
};

use crate::dialect::Statements;
use crate::rows::{self, Columns};
use crate::{
    client_columns, event_columns, family_select, key_columns, passkey_columns, revocation_columns,
    session_columns, store_error, token_columns, user_columns,
};

/// When each client last got tokens for a user (`$1`): see
/// `RefreshStore::last_use_by_client`; read by [`rows::last_use`]. A family never
/// rotated has no used token: its creation is its last use.
pub const LAST_USE_BY_CLIENT: &str = "SELECT f.client_id AS client_id, \
       max(f.created_at) AS created_at, max(u.rotated_at) AS rotated_at \
     FROM refresh_families f LEFT JOIN refresh_tokens_used u ON u.family_id = f.id \
     WHERE f.user_id = $1 GROUP BY f.client_id";

/// Every statement both backends share. Implemented for `Sqlite` and `Postgres`;
/// the bounds say what a driver must bind and decode. Where the two dialects differ
/// only in a detail (a collation, a function's name, a lock), the detail is one of
/// the consts below and the statement is built once per database ([`Statements`]);
/// everything else, the hot session read above all, is a `&'static str`.
// Plain `async fn`s: they are only ever called on the two concrete databases, whose
// futures the compiler knows to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Sql: Database
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    Self::Row: Columns,
    for<'q> String: Encode<'q, Self> + Type<Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Type<Self>,
    for<'q> bool: Encode<'q, Self> + Type<Self>,
    for<'q> Vec<u8>: Encode<'q, Self> + Type<Self>,
    for<'q> Option<String>: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Type<Self>,
    for<'q> Option<Vec<u8>>: Encode<'q, Self> + Type<Self>,
{
    /// Appended to a text column that is sorted or compared on, so that both order
    /// by bytes: `""` on SQLite (whose default collation is byte order),
    /// ` COLLATE "C"` on PostgreSQL (whatever the database's locale).
    const BYTE_ORDER: &'static str;
    /// The function `f(haystack, needle)` giving the 1-based position of `needle` in
    /// `haystack`, 0 if absent: `instr` on SQLite, `strpos` on PostgreSQL.
    const POSITION: &'static str;
    /// Appended to the read of the user a session or refresh family is created for:
    /// `""` on SQLite (whose writers are serialised), ` FOR SHARE` on PostgreSQL, so
    /// that a concurrent disabling waits for the insert to commit (and then ends what
    /// it created) or the insert sees the committed `disabled`.
    const LOCK_USER: &'static str;
    /// A user's roles (`$1`: the id), read to be changed in the same transaction:
    /// plain on SQLite (`begin_write` holds the write lock already), `FOR UPDATE`
    /// on PostgreSQL.
    const ROLES_FOR_UPDATE: &'static str;

    /// This database's dialect-dependent statements, built once from the consts
    /// above (each implementation keeps its own `static`).
    fn statements() -> &'static Statements;

    /// A transaction for a change that reads first: on SQLite one that takes the
    /// write lock at once (`BEGIN IMMEDIATE`), so that no other writer invalidates
    /// what it read before it commits; on PostgreSQL a plain one (its statements
    /// lock what they read).
    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'_, Self>, StoreError>;

    // Accounts.

    /// Creates an enabled user holding its username's skeleton. A taken username is
    /// `UsernameTaken`, a look-alike of a present one `LookAlike`.
    async fn create_user(pool: &Pool<Self>, user: NewUser) -> Result<User, CreateUserError> {
        let skeleton = user.username.skeleton();
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, username_skeleton, password_hash, roles, disabled, \
               created_at) \
             VALUES ($1, $2, $3, $4, $5, FALSE, $6)",
        )
        .bind(user.id.to_string())
        .bind(user.username.as_str())
        .bind(skeleton.as_str())
        .bind(user.password_hash.as_str())
        .bind(user.roles.to_stored())
        .bind(user.created_at.as_millis())
        .execute(pool)
        .await
        .map_err(store_error);
        match inserted {
            Ok(_) => Ok(User {
                id: user.id,
                username: user.username,
                roles: user.roles,
                disabled: false,
                created_at: user.created_at,
            }),
            Err(StoreError::Conflict(_)) => Err(Self::why_taken(pool, &user.username, &skeleton)
                .await
                .unwrap_or_else(CreateUserError::Store)),
            Err(error) => Err(error.into()),
        }
    }

    /// Why an insert of `username` hit a uniqueness constraint: the name itself, or
    /// a look-alike of it (or, improbably, the id). Asked after the fact rather than
    /// read from the error, whose wording is the database's.
    async fn why_taken(
        pool: &Pool<Self>,
        username: &Username,
        skeleton: &str,
    ) -> Result<CreateUserError, StoreError> {
        let same_name = sqlx::query(
            "SELECT username = $1 AS same_name FROM users \
             WHERE username = $1 OR username_skeleton = $2 \
             ORDER BY username = $1 DESC LIMIT 1",
        )
        .bind(username.as_str())
        .bind(skeleton)
        .fetch_optional(pool)
        .await
        .map_err(store_error)?
        .map(|row| row.flag("same_name"))
        .transpose()?;
        Ok(match same_name {
            Some(false) => CreateUserError::LookAlike,
            _ => CreateUserError::UsernameTaken,
        })
    }

    async fn user_credentials<'c>(
        db: impl Executor<'c, Database = Self>,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash FROM users u WHERE u.username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::user_credentials)
        .transpose()
    }

    async fn user<'c>(
        db: impl Executor<'c, Database = Self>,
        id: UserId,
    ) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::user)
        .transpose()
    }

    /// Every user, by username in byte order.
    async fn list_users<'c>(
        db: impl Executor<'c, Database = Self>,
    ) -> Result<Vec<User>, StoreError> {
        sqlx::query(Self::statements().list_users.as_str())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::user)
            .collect()
    }

    /// Up to `limit` users whose username contains `contains` literally and sorts
    /// after `after`, in byte order.
    async fn search_users<'c>(
        db: impl Executor<'c, Database = Self>,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        sqlx::query(Self::statements().search_users.as_str())
            .bind(contains)
            .bind(after.map_or("", Username::as_str))
            .bind(i64::from(limit))
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::user)
            .collect()
    }

    async fn replace_password_hash<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        previous: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
            .bind(new)
            .bind(user.to_string())
            .bind(previous)
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) == 1)
            .map_err(store_error)
    }

    async fn set_roles(
        pool: &Pool<Self>,
        id: UserId,
        roles: &Roles,
    ) -> Result<Option<(Roles, User)>, StoreError> {
        // The roles before and the change in one transaction: a concurrent change
        // cannot slip between them, so a role taken away is always seen as such.
        let mut tx = Self::begin_write(pool).await?;
        let Some(before) = sqlx::query(Self::ROLES_FOR_UPDATE)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let before =
            Roles::from_stored(&before.text("roles")?).map_err(|_| StoreError::corrupt("roles"))?;
        let after = sqlx::query(
            "UPDATE users SET roles = $2 WHERE id = $1 \
             RETURNING id, username, roles, disabled, created_at",
        )
        .bind(id.to_string())
        .bind(roles.to_stored())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let after = rows::user(&after)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some((before, after)))
    }

    async fn save_reset_link<'c>(
        db: impl Executor<'c, Database = Self>,
        link: ResetLink,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO password_reset_links (user_id, hash, created_at, expires_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, \
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        )
        .bind(link.user.to_string())
        .bind(link.hash.as_bytes().to_vec())
        .bind(link.created_at.as_millis())
        .bind(link.expires_at.as_millis())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn totp<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Option<TotpCredential>, StoreError> {
        sqlx::query(
            "SELECT sealed_secret, created_at, confirmed_at, last_step \
             FROM totp_credentials WHERE user_id = $1",
        )
        .bind(user.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .map(|row| {
            Ok(TotpCredential {
                user,
                sealed_secret: row.bytes("sealed_secret")?,
                created_at: row.time("created_at")?,
                confirmed_at: row.optional_time("confirmed_at")?,
                last_step: row
                    .optional_int("last_step")?
                    .map(|step| u64::try_from(step).map_err(|_| StoreError::corrupt("last_step")))
                    .transpose()?,
            })
        })
        .transpose()
    }

    async fn begin_totp<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        sealed_secret: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO totp_credentials (user_id, sealed_secret, created_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             created_at = excluded.created_at, last_step = NULL \
             WHERE totp_credentials.confirmed_at IS NULL",
        )
        .bind(user.to_string())
        .bind(sealed_secret)
        .bind(now.as_millis())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn confirm_totp<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        sealed_secret: &[u8],
        step: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE totp_credentials SET confirmed_at = $2, last_step = $3 \
             WHERE user_id = $1 AND confirmed_at IS NULL AND sealed_secret = $4",
        )
        .bind(user.to_string())
        .bind(now.as_millis())
        .bind(step_column(step)?)
        .bind(sealed_secret.to_vec())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn use_totp_step<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool, StoreError> {
        // One statement: the comparison and the write are one, so two uses of a
        // step at once cannot both pass.
        sqlx::query(
            "UPDATE totp_credentials SET last_step = $2 WHERE user_id = $1 \
             AND confirmed_at IS NOT NULL AND sealed_secret = $3 \
             AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user.to_string())
        .bind(step_column(step)?)
        .bind(sealed_secret.to_vec())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn remove_totp<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1")
            .bind(user.to_string())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    async fn replace_recovery_codes(
        pool: &Pool<Self>,
        user: UserId,
        hashes: Vec<SecretHash>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let exists = sqlx::query("SELECT 1 AS one FROM users WHERE id = $1")
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user.to_string())
            .bind(hash.as_bytes().to_vec())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn use_recovery_code<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND hash = $2 AND used_at IS NULL",
        )
        .bind(user.to_string())
        .bind(hash.as_bytes().to_vec())
        .bind(now.as_millis())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn unused_recovery_codes<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Vec<SecretHash>, StoreError> {
        sqlx::query(
            "SELECT hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL \
             ORDER BY hash",
        )
        .bind(user.to_string())
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| rows::hash(row.bytes("hash")?, "recovery code hash"))
        .collect()
    }

    // Passkeys.

    async fn add_passkey<'c>(
        db: impl Executor<'c, Database = Self>,
        passkey: PasskeyCredential,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO passkeys (credential_id, user_id, name, passkey, sign_count, \
               backup_eligible, created_at, last_used_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM users WHERE id = $2)",
        )
        .bind(passkey.credential_id)
        .bind(passkey.user.to_string())
        .bind(passkey.name)
        .bind(passkey.passkey)
        .bind(i64::from(passkey.sign_count))
        .bind(passkey.backup_eligible)
        .bind(passkey.created_at.as_millis())
        .bind(passkey.last_used_at.map(Timestamp::as_millis))
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn passkeys<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Vec<PasskeyCredential>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE user_id = $1 ORDER BY created_at, credential_id"
        ))
        .bind(user.to_string())
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::passkey)
        .collect()
    }

    async fn passkey<'c>(
        db: impl Executor<'c, Database = Self>,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyCredential>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id.to_vec())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::passkey)
        .transpose()
    }

    /// One statement: the comparison of counters and the write are one, so two
    /// uses with the same counter cannot both pass.
    async fn use_passkey<'c>(
        db: impl Executor<'c, Database = Self>,
        credential_id: &[u8],
        passkey: String,
        sign_count: u32,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE passkeys SET passkey = $2, sign_count = $3, last_used_at = $4 \
             WHERE credential_id = $1 AND (sign_count < $3 OR (sign_count = 0 AND $3 = 0))",
        )
        .bind(credential_id.to_vec())
        .bind(passkey)
        .bind(i64::from(sign_count))
        .bind(at.as_millis())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn remove_passkey<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        credential_id: &[u8],
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2")
            .bind(user.to_string())
            .bind(credential_id.to_vec())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    async fn reset_link_user<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        sqlx::query("SELECT user_id FROM password_reset_links WHERE hash = $1 AND expires_at > $2")
            .bind(hash.as_bytes().to_vec())
            .bind(now.as_millis())
            .fetch_optional(db)
            .await
            .map_err(store_error)?
            .map(|row| rows::user_id(&row.text("user_id")?))
            .transpose()
    }

    async fn use_reset_link(
        pool: &Pool<Self>,
        hash: &SecretHash,
        now: Timestamp,
        password_hash: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let Some(row) = sqlx::query(
            "DELETE FROM password_reset_links WHERE hash = $1 AND expires_at > $2 RETURNING user_id",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(now.as_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?
        else {
            return Ok(None);
        };
        let user = rows::user_id(&row.text("user_id")?)?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(password_hash)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(user))
    }

    async fn set_user_disabled<'c>(
        db: impl Executor<'c, Database = Self>,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        sqlx::query(
            // Unqualified: SQLite's RETURNING takes no table alias.
            "UPDATE users SET disabled = $2 WHERE username = $1 \
             RETURNING id, username, roles, disabled, created_at",
        )
        .bind(username.as_str())
        .bind(disabled)
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::user)
        .transpose()
    }

    async fn profile<'c>(
        db: impl Executor<'c, Database = Self>,
        id: UserId,
    ) -> Result<Option<Profile>, StoreError> {
        sqlx::query(
            "SELECT name, email, email_verified, profile_updated_at FROM users WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::profile)
        .transpose()
    }

    async fn set_profile<'c>(
        db: impl Executor<'c, Database = Self>,
        id: UserId,
        profile: Profile,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE users SET name = $2, email = $3, email_verified = $4, \
             profile_updated_at = $5 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(profile.name.map(|n| n.as_str().to_owned()))
        .bind(profile.email.map(|e| e.as_str().to_owned()))
        .bind(profile.email_verified)
        .bind(profile.updated_at.map(|t| t.as_millis()))
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn consent<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        sqlx::query(
            "SELECT user_id, client_id, scopes, granted_at FROM consents \
             WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user.to_string())
        .bind(client.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::consent)
        .transpose()
    }

    /// Only for a user that exists: the `SELECT … WHERE EXISTS` inserts nothing
    /// otherwise, in the same statement.
    async fn save_consent<'c>(
        db: impl Executor<'c, Database = Self>,
        consent: Consent,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
             ON CONFLICT (user_id, client_id) \
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(consent.user.to_string())
        .bind(consent.client_id.to_string())
        .bind(consent.scopes.to_string())
        .bind(consent.granted_at.as_millis())
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    async fn withdraw_consent<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user.to_string())
            .bind(client.to_string())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    async fn consents<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Vec<Consent>, StoreError> {
        sqlx::query(
            "SELECT user_id, client_id, scopes, granted_at FROM consents \
             WHERE user_id = $1 ORDER BY granted_at, client_id",
        )
        .bind(user.to_string())
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::consent)
        .collect()
    }

    // Sessions.

    /// One statement: the session is created only if its user exists and is not
    /// disabled (see [`LOCK_USER`](Self::LOCK_USER)).
    async fn create_session<'c>(
        db: impl Executor<'c, Database = Self>,
        session: NewSession,
    ) -> Result<(), CreateSessionError> {
        let inserted = sqlx::query(Self::statements().create_session.as_str())
            .bind(session.id.as_str())
            .bind(session.secret_hash.as_bytes().to_vec())
            .bind(session.csrf_token.as_str())
            .bind(session.created_at.as_millis())
            .bind(session.expires_at.as_millis())
            .bind(session.client_address)
            .bind(session.user_agent)
            .bind(session.user_id.to_string())
            .bind(session.methods.to_stored())
            .execute(db)
            .await
            .map_err(store_error)?;
        if Self::rows_affected(&inserted) == 0 {
            return Err(CreateSessionError::UserDisabled);
        }
        Ok(())
    }

    /// The hot read: one statement, one row.
    async fn session<'c>(
        db: impl Executor<'c, Database = Self>,
        id: &SessionId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::session)
        .transpose()
    }

    /// A user's sessions, oldest first.
    async fn sessions_of_user<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query(Self::statements().sessions_of_user.as_str())
            .bind(user.to_string())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::session)
            .collect()
    }

    async fn count_live_sessions<'c>(
        db: impl Executor<'c, Database = Self>,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS live FROM sessions WHERE expires_at > $1 AND last_seen_at >= $2",
        )
        .bind(now.as_millis())
        .bind(idle_cutoff.as_millis())
        .fetch_one(db)
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(row.int("live")?).unwrap_or(0))
    }

    /// Deletes what has expired, in one transaction: sessions past their end or idle
    /// since before `idle_cutoff`, and opaque tokens, authorization codes, refresh
    /// families and log entries past theirs. Returns sessions deleted.
    async fn purge_expired(
        pool: &Pool<Self>,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let sessions =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                .bind(now.as_millis())
                .bind(idle_cutoff.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        for sql in [
            "DELETE FROM opaque_tokens WHERE expires_at <= $1",
            "DELETE FROM authorization_codes WHERE forget_at <= $1",
            "DELETE FROM session_clients WHERE forget_at <= $1",
            "DELETE FROM pushed_requests WHERE expires_at <= $1",
            "DELETE FROM ceremonies WHERE expires_at <= $1",
            "DELETE FROM password_reset_links WHERE expires_at <= $1",
            "DELETE FROM refresh_families WHERE expires_at <= $1",
            "DELETE FROM revocation_log WHERE expires_at <= $1",
        ] {
            sqlx::query(sql)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(Self::rows_affected(&sessions))
    }

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    // Back-channel logout.

    async fn queue_logouts(
        pool: &Pool<Self>,
        ended: &[SessionId],
        users: &[UserId],
        position: u64,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let mut queued = 0;
        // `WHERE` in the `SELECT` keeps SQLite from reading `ON CONFLICT` as a
        // join's; a pair queued before (another instance was first) is skipped.
        const BY_SESSION: [&str; 2] = [
            "INSERT INTO backchannel_logouts \
             (client_id, session_id, user_id, attempts, queued_at, due_at) \
             SELECT client_id, session_id, user_id, 0, $2, $2 FROM session_clients \
             WHERE session_id = $1 ON CONFLICT (client_id, session_id) DO NOTHING",
            "DELETE FROM session_clients WHERE session_id = $1",
        ];
        const BY_USER: [&str; 2] = [
            "INSERT INTO backchannel_logouts \
             (client_id, session_id, user_id, attempts, queued_at, due_at) \
             SELECT client_id, session_id, user_id, 0, $2, $2 FROM session_clients \
             WHERE user_id = $1 ON CONFLICT (client_id, session_id) DO NOTHING",
            "DELETE FROM session_clients WHERE user_id = $1",
        ];
        let targets = ended
            .iter()
            .map(|s| (BY_SESSION, s.as_str().to_owned()))
            .chain(users.iter().map(|u| (BY_USER, u.to_string())));
        for ([queue, forget], value) in targets {
            let done = sqlx::query(queue)
                .bind(&value)
                .bind(at.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            queued += Self::rows_affected(&done);
            sqlx::query(forget)
                .bind(&value)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        sqlx::query("UPDATE backchannel_position SET position = $1 WHERE position < $1")
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(queued)
    }

    async fn queue_client_logouts(
        pool: &Pool<Self>,
        user: UserId,
        client: ClientId,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = Self::begin_write(pool).await?;
        let queued = sqlx::query(
            "INSERT INTO backchannel_logouts \
             (client_id, session_id, user_id, attempts, queued_at, due_at) \
             SELECT client_id, session_id, user_id, 0, $3, $3 FROM session_clients \
             WHERE user_id = $1 AND client_id = $2 \
             ON CONFLICT (client_id, session_id) DO NOTHING",
        )
        .bind(user.to_string())
        .bind(client.to_string())
        .bind(at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query("DELETE FROM session_clients WHERE user_id = $1 AND client_id = $2")
            .bind(user.to_string())
            .bind(client.to_string())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Self::rows_affected(&queued))
    }

    async fn logout_position<'c>(
        db: impl Executor<'c, Database = Self>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT position FROM backchannel_position")
            .fetch_one(db)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(row.int("position")?).unwrap_or_default())
    }

    /// The lease is checked again by the outer `WHERE`, which PostgreSQL re-reads
    /// on the locked row: of two instances choosing the same row, one takes it.
    async fn claim_logouts<'c>(
        db: impl Executor<'c, Database = Self>,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<LogoutDelivery>, StoreError> {
        sqlx::query(
            "UPDATE backchannel_logouts SET leased_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM backchannel_logouts WHERE due_at <= $1 \
                 AND (leased_until IS NULL OR leased_until <= $1) ORDER BY due_at LIMIT $3) \
             AND (leased_until IS NULL OR leased_until <= $1) \
             RETURNING id, client_id, session_id, user_id, attempts, queued_at",
        )
        .bind(now.as_millis())
        .bind(lease_until.as_millis())
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::logout_delivery)
        .collect()
    }

    async fn finish_logout<'c>(
        db: impl Executor<'c, Database = Self>,
        id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM backchannel_logouts WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn retry_logout<'c>(
        db: impl Executor<'c, Database = Self>,
        id: i64,
        next: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE backchannel_logouts SET due_at = $2, leased_until = NULL WHERE id = $1")
            .bind(id)
            .bind(next.as_millis())
            .execute(db)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn pending_logouts<'c>(
        db: impl Executor<'c, Database = Self>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS pending FROM backchannel_logouts")
            .fetch_one(db)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(row.int("pending")?).unwrap_or_default())
    }

    // The revocation log.

    async fn revocations_after<'c>(
        db: impl Executor<'c, Database = Self>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            revocation_columns!(),
            " FROM revocation_log WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::revocation)
        .collect()
    }

    // Presence.

    async fn online_since<'c>(
        db: impl Executor<'c, Database = Self>,
        since: Timestamp,
    ) -> Result<Online, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS sessions, count(DISTINCT user_id) AS users FROM presence \
             WHERE seen_at >= $1 AND NOT ended",
        )
        .bind(since.as_millis())
        .fetch_one(db)
        .await
        .map_err(store_error)?;
        Ok(Online {
            users: u64::try_from(row.int("users")?).unwrap_or(0),
            sessions: u64::try_from(row.int("sessions")?).unwrap_or(0),
        })
    }

    async fn purge_presence<'c>(
        db: impl Executor<'c, Database = Self>,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM presence WHERE seen_at < $1")
            .bind(before.as_millis())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done))
            .map_err(store_error)
    }

    // The audit log.

    /// Inserts the events in order, each its own statement (they come a few at a
    /// time); the backend wraps them in its transaction.
    async fn insert_events(
        tx: &mut Transaction<'_, Self>,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (at, kind, outcome, actor_type, actor_id, user_id, \
                   username, target, address, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(event.at.as_millis())
            .bind(event.kind.as_str())
            .bind(event.outcome.as_str())
            .bind(event.actor.kind())
            .bind(event.actor.id())
            .bind(event.user.map(|u| u.to_string()))
            .bind(event.username.clone())
            .bind(event.target.clone())
            .bind(event.address.map(|a| a.to_string()))
            .bind(event.detail.clone())
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        }
        Ok(())
    }

    async fn events<'c>(
        db: impl Executor<'c, Database = Self>,
        query: &EventQuery,
    ) -> Result<Vec<Event>, StoreError> {
        // One statement for every filter: an absent one matches everything.
        let user = query.user.map(|u| u.to_string());
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM audit_events \
             WHERE ($1 = '' OR user_id = $1 OR actor_id = $1) AND ($2 = '' OR kind = $2) \
             AND at >= $3 AND at < $4 AND id < $5 ORDER BY id DESC LIMIT $6"
        ))
        .bind(user.unwrap_or_default())
        .bind(query.kind.map_or("", |k| k.as_str()))
        .bind(query.since.map_or(i64::MIN, Timestamp::as_millis))
        .bind(query.until.map_or(i64::MAX, Timestamp::as_millis))
        .bind(query.before.unwrap_or(i64::MAX))
        .bind(i64::from(query.limit))
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::event)
        .collect()
    }

    async fn events_after<'c>(
        db: impl Executor<'c, Database = Self>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::event)
        .collect()
    }

    async fn count_events<'c>(
        db: impl Executor<'c, Database = Self>,
        kind: EventKind,
        since: Timestamp,
        bucket: i64,
    ) -> Result<Vec<EventCount>, StoreError> {
        let bucket = bucket.max(1);
        sqlx::query(
            "SELECT (at / $3) * $3 AS bucket, outcome, count(*) AS events FROM audit_events \
             WHERE kind = $1 AND at >= $2 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(kind.as_str())
        .bind(since.as_millis())
        .bind(bucket)
        .fetch_all(db)
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| {
            Ok(EventCount {
                bucket: Timestamp::from_millis(row.int("bucket")?),
                outcome: row
                    .text("outcome")?
                    .parse()
                    .map_err(|()| StoreError::corrupt("event outcome"))?,
                count: u64::try_from(row.int("events")?).unwrap_or(0),
            })
        })
        .collect()
    }

    async fn purge_events(pool: &Pool<Self>, before: Timestamp) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM online_peaks WHERE hour < $1")
            .bind(before.as_millis())
            .execute(pool)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before.as_millis())
            .execute(pool)
            .await
            .map(|done| Self::rows_affected(&done))
            .map_err(store_error)
    }

    async fn record_online_peak<'c>(
        db: impl Executor<'c, Database = Self>,
        hour: Timestamp,
        online: Online,
    ) -> Result<(), StoreError> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(concat!(
            "INSERT INTO online_peaks (hour, users, sessions) VALUES ($1, $2, $3) \
             ON CONFLICT (hour) DO UPDATE SET ",
            // Each the larger: CASE, as SQLite's two-argument max() is PostgreSQL's
            // greatest().
            "users = CASE WHEN excluded.users > online_peaks.users \
               THEN excluded.users ELSE online_peaks.users END, \
             sessions = CASE WHEN excluded.sessions > online_peaks.sessions \
               THEN excluded.sessions ELSE online_peaks.sessions END"
        ))
        .bind(hour.as_millis())
        .bind(count(online.users))
        .bind(count(online.sessions))
        .execute(db)
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn online_peaks<'c>(
        db: impl Executor<'c, Database = Self>,
        since: Timestamp,
    ) -> Result<Vec<OnlinePeak>, StoreError> {
        sqlx::query("SELECT hour, users, sessions FROM online_peaks WHERE hour >= $1 ORDER BY hour")
            .bind(since.as_millis())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(|row| {
                Ok(OnlinePeak {
                    hour: Timestamp::from_millis(row.int("hour")?),
                    online: Online {
                        users: u64::try_from(row.int("users")?).unwrap_or(0),
                        sessions: u64::try_from(row.int("sessions")?).unwrap_or(0),
                    },
                })
            })
            .collect()
    }

    // Clients.

    /// A taken name (or id) is [`StoreError::Conflict`].
    async fn insert_client<'c>(
        db: impl Executor<'c, Database = Self>,
        client: &Client,
    ) -> Result<(), StoreError> {
        fn space_separated<'a>(items: impl Iterator<Item = &'a str>) -> String {
            items.collect::<Vec<_>>().join(" ")
        }
        sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(client.id.to_string())
        .bind(client.name.as_str())
        .bind(client.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
        .bind(space_separated(client.grants.iter().map(|g| g.as_str())))
        .bind(client.scopes.to_string())
        .bind(space_separated(
            client.audiences.iter().map(Audience::as_str),
        ))
        .bind(client.token_format.as_str())
        .bind(client.algorithm.as_str())
        .bind(i64::try_from(client.access_ttl.as_secs()).unwrap_or(i64::MAX))
        .bind(client.created_at.as_millis())
        .bind(space_separated(
            client
                .code_flow
                .redirect_uris
                .iter()
                .map(RedirectUri::as_str),
        ))
        .bind(space_separated(
            client
                .code_flow
                .post_logout_redirect_uris
                .iter()
                .map(RedirectUri::as_str),
        ))
        .bind(
            client
                .code_flow
                .backchannel_logout_uri
                .as_ref()
                .map(|u| u.as_str().to_owned()),
        )
        .bind(client.code_flow.first_party)
        .bind(client.code_flow.require_par)
        .bind(client.code_flow.id_token_algorithm.as_str())
        .bind(client.dpop_bound_access_tokens)
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Every client, oldest first (ties by id, in byte order).
    async fn list_clients<'c>(
        db: impl Executor<'c, Database = Self>,
    ) -> Result<Vec<Client>, StoreError> {
        sqlx::query(Self::statements().list_clients.as_str())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::client)
            .collect()
    }

    async fn client<'c>(
        db: impl Executor<'c, Database = Self>,
        id: &ClientId,
    ) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::client)
        .transpose()
    }

    async fn client_by_name<'c>(
        db: impl Executor<'c, Database = Self>,
        name: &ClientName,
    ) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE name = $1"
        ))
        .bind(name.as_str())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::client)
        .transpose()
    }

    /// `false` if there was no such client.
    async fn update_client_secret<'c>(
        db: impl Executor<'c, Database = Self>,
        id: &ClientId,
        secret_hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        sqlx::query("UPDATE clients SET secret_hash = $2 WHERE id = $1 AND secret_hash IS NOT NULL")
            .bind(id.to_string())
            .bind(secret_hash.as_bytes().to_vec())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    async fn delete_client<'c>(
        db: impl Executor<'c, Database = Self>,
        id: &ClientId,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id.to_string())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    // Signing keys.

    /// Every key, oldest first (ties by `kid`, in byte order).
    async fn signing_keys<'c>(
        db: impl Executor<'c, Database = Self>,
    ) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(Self::statements().signing_keys.as_str())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::key)
            .collect()
    }

    /// A `kid` already present is [`StoreError::Conflict`].
    async fn insert_key<'c>(
        db: impl Executor<'c, Database = Self>,
        key: &StoredKey,
    ) -> Result<(), StoreError> {
        bind_key(
            sqlx::query(concat!(
                "INSERT INTO signing_keys (",
                key_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )),
            key,
        )
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// Inserts `key` unless a key of its algorithm that is not retired exists;
    /// `true` if it did. Atomic only under the backend's lock on the keys.
    async fn insert_first_key<'c>(
        db: impl Executor<'c, Database = Self>,
        key: &StoredKey,
    ) -> Result<bool, StoreError> {
        bind_key(
            sqlx::query(concat!(
                "INSERT INTO signing_keys (",
                key_columns!(),
                ") SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (",
                "SELECT 1 FROM signing_keys WHERE algorithm = $2 AND retired_at IS NULL)"
            )),
            key,
        )
        .execute(db)
        .await
        .map(|done| Self::rows_affected(&done) > 0)
        .map_err(store_error)
    }

    /// Ends at `until` the publication of every unretired key of `algorithm` that
    /// has no end yet.
    async fn end_publication<'c>(
        db: impl Executor<'c, Database = Self>,
        algorithm: &str,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET published_until = $1 \
             WHERE algorithm = $2 AND retired_at IS NULL AND published_until IS NULL",
        )
        .bind(until.as_millis())
        .bind(algorithm)
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    /// `false` if there is no such key or it was retired already.
    async fn retire_key<'c>(
        db: impl Executor<'c, Database = Self>,
        kid: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL")
            .bind(at.as_millis())
            .bind(kid)
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    async fn replace_private_key<'c>(
        db: impl Executor<'c, Database = Self>,
        kid: &str,
        private_key: Vec<u8>,
        sealed: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET private_key = $1, sealed = $2 WHERE kid = $3")
            .bind(private_key)
            .bind(sealed)
            .bind(kid)
            .execute(db)
            .await
            .map(drop)
            .map_err(store_error)
    }

    // Authorization codes.

    async fn push_request<'c>(
        db: impl Executor<'c, Database = Self>,
        request: PushedRequest,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pushed_requests (hash, client_id, params, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(request.hash.as_bytes().to_vec())
        .bind(request.client_id.to_string())
        .bind(request.params)
        .bind(request.expires_at.as_millis())
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    async fn pushed_request<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
        at: Timestamp,
    ) -> Result<Option<PushedRequest>, StoreError> {
        sqlx::query(
            "SELECT hash, client_id, params, expires_at FROM pushed_requests \
             WHERE hash = $1 AND expires_at > $2",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(at.as_millis())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::pushed_request)
        .transpose()
    }

    async fn drop_pushed_request<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM pushed_requests WHERE hash = $1")
            .bind(hash.as_bytes().to_vec())
            .execute(db)
            .await
            .map(|done| Self::rows_affected(&done) > 0)
            .map_err(store_error)
    }

    // Sign-in ceremonies.

    async fn begin_ceremony<'c>(
        db: impl Executor<'c, Database = Self>,
        ceremony: Ceremony,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ceremonies (hash, kind, user_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ceremony.hash.as_bytes().to_vec())
        .bind(ceremony.kind.as_str())
        .bind(ceremony.user.map(|u| u.to_string()))
        .bind(ceremony.state)
        .bind(ceremony.expires_at.as_millis())
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    async fn ceremony<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
        kind: CeremonyKind,
        at: Timestamp,
    ) -> Result<Option<Ceremony>, StoreError> {
        sqlx::query(
            "SELECT hash, kind, user_id, state, expires_at FROM ceremonies \
             WHERE hash = $1 AND kind = $2 AND expires_at > $3",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(kind.as_str())
        .bind(at.as_millis())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::ceremony)
        .transpose()
    }

    /// One statement: the delete decides which of racing takes finds it. An
    /// expired one goes too, and is not returned.
    async fn take_ceremony<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
        kind: CeremonyKind,
        at: Timestamp,
    ) -> Result<Option<Ceremony>, StoreError> {
        let taken = sqlx::query(
            "DELETE FROM ceremonies WHERE hash = $1 AND kind = $2 \
             RETURNING hash, kind, user_id, state, expires_at",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(kind.as_str())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::ceremony)
        .transpose()?;
        Ok(taken.filter(|c| c.expires_at > at))
    }

    // Opaque access tokens.

    async fn insert_opaque_token<'c>(
        db: impl Executor<'c, Database = Self>,
        token: OpaqueToken,
    ) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO opaque_tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(token.hash.as_bytes().to_vec())
        .bind(token.jti)
        .bind(token.client_id.to_string())
        .bind(token.subject)
        .bind(token.user.map(|u| u.to_string()))
        .bind(token.scopes.to_string())
        .bind(token.audience.map(|a| a.as_str().to_owned()))
        .bind(token.session.map(|s| s.as_str().to_owned()))
        .bind(token.roles.to_stored())
        .bind(token.issued_at.as_millis())
        .bind(token.expires_at.as_millis())
        .bind(token.methods.map(AuthMethods::to_stored))
        .bind(token.dpop_jkt)
        .execute(db)
        .await
        .map(drop)
        .map_err(store_error)
    }

    async fn opaque_token<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
    ) -> Result<Option<OpaqueToken>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM opaque_tokens WHERE hash = $1"
        ))
        .bind(hash.as_bytes().to_vec())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(rows::opaque_token)
        .transpose()
    }

    /// Deletes the token if `client` owns it; what its revocation entry needs: its
    /// `jti`, its user, and when it would have expired.
    async fn delete_opaque_token<'c>(
        db: impl Executor<'c, Database = Self>,
        hash: &SecretHash,
        client: &ClientId,
    ) -> Result<Option<(String, Option<UserId>, Timestamp)>, StoreError> {
        let Some(row) = sqlx::query(
            "DELETE FROM opaque_tokens WHERE hash = $1 AND client_id = $2 \
             RETURNING jti, user_id, expires_at",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(client.to_string())
        .fetch_optional(db)
        .await
        .map_err(store_error)?
        else {
            return Ok(None);
        };
        let user = row.optional_text("user_id")?;
        Ok(Some((
            row.text("jti")?,
            user.as_deref().and_then(UserId::parse),
            row.time("expires_at")?,
        )))
    }

    // Refresh families.

    async fn last_use_by_client<'c>(
        db: impl Executor<'c, Database = Self>,
        user: UserId,
    ) -> Result<Vec<(ClientId, Timestamp)>, StoreError> {
        sqlx::query(LAST_USE_BY_CLIENT)
            .bind(user.to_string())
            .fetch_all(db)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::last_use)
            .collect()
    }

    async fn family<'c>(
        db: impl Executor<'c, Database = Self>,
        id: &SessionId,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        sqlx::query(concat!(family_select!(), "WHERE f.id = $1"))
            .bind(id.as_str())
            .fetch_optional(db)
            .await
            .map_err(store_error)?
            .as_ref()
            .map(rows::family)
            .transpose()
    }

    async fn family_by_token<'c>(
        db: impl Executor<'c, Database = Self>,
        token: &SecretHash,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        sqlx::query(concat!(family_select!(), "WHERE f.current_hash = $1"))
            .bind(token.as_bytes().to_vec())
            .fetch_optional(db)
            .await
            .map_err(store_error)?
            .as_ref()
            .map(rows::family)
            .transpose()
    }

    /// The family's live token is now `next`, and its generation one more; the
    /// token it replaces is recorded as used at `now`. Inside the caller's
    /// transaction on `connection`, after it has made sure the family's live token
    /// was `presented`.
    async fn advance_family(
        connection: &mut Self::Connection,
        family: &SessionId,
        presented: &SecretHash,
        next: &SecretHash,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_families SET current_hash = $1, generation = generation + 1 \
             WHERE id = $2",
        )
        .bind(next.as_bytes().to_vec())
        .bind(family.as_str())
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
        sqlx::query(
            "INSERT INTO refresh_tokens_used (hash, family_id, rotated_at) VALUES ($1, $2, $3)",
        )
        .bind(presented.as_bytes().to_vec())
        .bind(family.as_str())
        .bind(now.as_millis())
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(store_error)
    }

    // Health.

    async fn ping<'c>(db: impl Executor<'c, Database = Self>) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(db)
            .await
            .map(drop)
            .map_err(store_error)
    }
}

/// Binds a key's columns in the order of [`key_columns!`].
fn bind_key<'q, DB>(
    query: sqlx::query::Query<'q, DB, DB::Arguments>,
    key: &StoredKey,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Type<DB>,
    for<'a> Vec<u8>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
{
    query
        .bind(key.kid.as_str())
        .bind(key.algorithm.as_str())
        .bind(key.private_key.clone())
        .bind(key.sealed)
        .bind(key.created_at.as_millis())
        .bind(key.signs_from.as_millis())
        .bind(key.published_until.map(Timestamp::as_millis))
        .bind(key.retired_at.map(Timestamp::as_millis))
}

impl Sql for sqlx::Sqlite {
    const BYTE_ORDER: &'static str = "";
    const POSITION: &'static str = "instr";
    const LOCK_USER: &'static str = "";
    const ROLES_FOR_UPDATE: &'static str = "SELECT roles FROM users WHERE id = $1";

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| {
            Statements::new(
                sqlx::Sqlite::BYTE_ORDER,
                sqlx::Sqlite::POSITION,
                sqlx::Sqlite::LOCK_USER,
            )
        });
        &STATEMENTS
    }

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'_, Self>, StoreError> {
        pool.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl Sql for sqlx::Postgres {
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const POSITION: &'static str = "strpos";
    const LOCK_USER: &'static str = " FOR SHARE";
    const ROLES_FOR_UPDATE: &'static str = "SELECT roles FROM users WHERE id = $1 FOR UPDATE";

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| {
            Statements::new(
                sqlx::Postgres::BYTE_ORDER,
                sqlx::Postgres::POSITION,
                sqlx::Postgres::LOCK_USER,
            )
        });
        &STATEMENTS
    }

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'_, Self>, StoreError> {
        pool.begin().await.map_err(store_error)
    }

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// A TOTP step as stored (an INTEGER / BIGINT column).
fn step_column(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step).map_err(|_| StoreError::Corrupt("a TOTP step out of range".into()))
}
