//! tessera's embedded store: one SQLite file in WAL mode.
//!
//! Durability: `synchronous = FULL`, so a committed write survives `kill -9` and
//! power loss alike; the server answers 2xx only after the commit returns.
//! Several processes may open the same file (the server and the CLI); SQLite's
//! locking serialises their writes, and `busy_timeout` makes a writer wait its turn.

mod clients;
mod files;
mod keys;
mod migrations;
mod opaque;
mod refresh;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tessera_core::{CsrfToken, Roles, SecretHash, SessionId, Timestamp, UserId, Username};
use tessera_store::{
    AccountStore, CreateSessionError, CreateUserError, EndReason, Health, NewSession, NewUser,
    Online, PRESENCE_RESOLUTION, PresenceStore, Revocation, RevocationLog, Revoked, Seen,
    SessionRecord, SessionStore, StoreError, User, UserCredentials,
};

pub use files::FileError;
pub use migrations::{MigrationError, SCHEMA_VERSION};

/// The file name of the store inside the data dir.
pub const DATABASE_FILE: &str = "tessera.sqlite3";

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Signalled after every commit that appended to the revocation log, so this
    /// process's follower applies it at once instead of at its next poll. (Other
    /// processes, the CLI say, are seen at the poll.)
    appended: std::sync::Arc<tessera_store::RevocationsAppended>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

impl SqliteStore {
    /// Opens (creating if missing, with its folder) the store file and brings its
    /// schema up to date. The folder, if created, and the files are private to this
    /// user: see `files`.
    pub async fn open(path: &Path) -> Result<Self, OpenError> {
        files::prepare(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let open_error = |source| OpenError::Open {
            path: path.display().to_string(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        migrations::apply(&pool, path).await?;
        migrations::fill_in_skeletons(&pool, path).await?;
        Ok(Self {
            pool,
            appended: std::sync::Arc::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Signalled after this process appends to the revocation log.
    pub fn revocations_appended(&self) -> std::sync::Arc<tessera_store::RevocationsAppended> {
        self.appended.clone()
    }

    fn announce_revocations(&self) {
        self.appended.signal();
    }
}

use tessera_store_sql::{is_unique_violation, store_error};

// Macros rather than consts so that `concat!` keeps every query a `&'static str`.
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.roles, u.disabled, u.created_at"
    };
}
macro_rules! session_columns {
    () => {
        "s.id AS session_id, s.secret_hash, s.csrf_token, \
         s.created_at AS session_created_at, s.last_seen_at, s.expires_at, s.client_address, \
         s.user_agent"
    };
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    let id: String = row.try_get("id").map_err(store_error)?;
    let username: String = row.try_get("username").map_err(store_error)?;
    let roles: String = row.try_get("roles").map_err(store_error)?;
    Ok(User {
        id: UserId::parse(&id).ok_or_else(|| StoreError::corrupt("user id"))?,
        username: Username::parse(&username).map_err(|_| StoreError::corrupt("username"))?,
        roles: Roles::from_stored(&roles).map_err(|_| StoreError::corrupt("roles"))?,
        disabled: row.try_get("disabled").map_err(store_error)?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(store_error)?),
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    let id: String = row.try_get("session_id").map_err(store_error)?;
    let hash: Vec<u8> = row.try_get("secret_hash").map_err(store_error)?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::corrupt("secret hash"))?;
    let csrf: String = row.try_get("csrf_token").map_err(store_error)?;
    let millis = |column: &str| -> Result<Timestamp, StoreError> {
        row.try_get(column)
            .map(Timestamp::from_millis)
            .map_err(store_error)
    };
    Ok(SessionRecord {
        id: SessionId::parse(&id).map_err(|_| StoreError::corrupt("session id"))?,
        secret_hash: SecretHash::from_bytes(hash),
        user: user_from_row(row)?,
        csrf_token: CsrfToken::from_stored(&csrf)
            .ok_or_else(|| StoreError::corrupt("CSRF token"))?,
        created_at: millis("session_created_at")?,
        last_seen_at: millis("last_seen_at")?,
        expires_at: millis("expires_at")?,
        client_address: row.try_get("client_address").map_err(store_error)?,
        user_agent: row.try_get("user_agent").map_err(store_error)?,
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        let skeleton = user.username.skeleton();
        let result = sqlx::query(
            "INSERT INTO users (id, username, username_skeleton, password_hash, roles, disabled, \
               created_at) \
             VALUES (?, ?, ?, ?, ?, 0, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.username.as_str())
        .bind(&skeleton)
        .bind(&user.password_hash)
        .bind(user.roles.to_stored())
        .bind(user.created_at.as_millis())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(User {
                id: user.id,
                username: user.username,
                roles: user.roles,
                disabled: false,
                created_at: user.created_at,
            }),
            Err(e) if is_unique_violation(&e) => {
                Err(self.conflict(&user.username, &skeleton).await)
            }
            Err(e) => Err(CreateUserError::Store(store_error(e))),
        }
    }

    async fn user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash FROM users u WHERE u.username = ?"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| {
            Ok(UserCredentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash").map_err(store_error)?,
            })
        })
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u ORDER BY u.username"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn search_users(
        &self,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        // instr, not LIKE: what an admin types is matched literally.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE instr(u.username, ?) > 0 AND u.username > ? \
             ORDER BY u.username LIMIT ?"
        ))
        .bind(contains)
        .bind(after.map_or("", Username::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn replace_password_hash(
        &self,
        user: UserId,
        previous: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
            .bind(new)
            .bind(user.to_string())
            .bind(previous)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET disabled = ? WHERE username = ? \
             RETURNING id, username, roles, disabled, created_at",
        )
        .bind(disabled)
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
        let UserCredentials {
            user,
            password_hash,
        } = user;
        // One statement, so no other writer comes between the look for a holder of
        // the skeleton and the insert.
        sqlx::query(
            "INSERT INTO users (id, username, username_skeleton, look_alike_of, password_hash, \
               roles, disabled, created_at) \
             VALUES (?1, ?2, \
               CASE WHEN EXISTS (SELECT 1 FROM users WHERE username_skeleton = ?3) \
                 THEN NULL ELSE ?3 END, \
               (SELECT id FROM users WHERE username_skeleton = ?3), ?4, ?5, ?6, ?7)",
        )
        .bind(user.id.to_string())
        .bind(user.username.as_str())
        .bind(user.username.skeleton())
        .bind(password_hash)
        .bind(user.roles.to_stored())
        .bind(user.disabled)
        .bind(user.created_at.as_millis())
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| match e {
            e if is_unique_violation(&e) => CreateUserError::UsernameTaken,
            e => CreateUserError::Store(store_error(e)),
        })
    }
}

impl SqliteStore {
    /// Why an insert of `username` hit a uniqueness constraint: the name itself, or
    /// a look-alike of it (or, improbably, the id). Asked after the fact rather than
    /// read from the error, whose wording is SQLite's.
    async fn conflict(&self, username: &Username, skeleton: &str) -> CreateUserError {
        let same_name: Result<Option<i64>, _> = sqlx::query_scalar(
            "SELECT username = ?1 FROM users WHERE username = ?1 OR username_skeleton = ?2 \
             ORDER BY username = ?1 DESC LIMIT 1",
        )
        .bind(username.as_str())
        .bind(skeleton)
        .fetch_optional(&self.pool)
        .await;
        match same_name {
            Ok(Some(0)) => CreateUserError::LookAlike,
            Ok(_) => CreateUserError::UsernameTaken,
            Err(e) => CreateUserError::Store(store_error(e)),
        }
    }
}

/// Deletes the given sessions and logs their revocation, inside `tx`.
async fn end_sessions_in(
    tx: &mut Transaction<'_, Sqlite>,
    user: UserId,
    ids: &[(String, i64)],
    reason: EndReason,
    at: Timestamp,
) -> Result<(), StoreError> {
    for (id, expires_at) in ids {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        let session = SessionId::parse(id).map_err(|_| StoreError::corrupt("session id"))?;
        append_revocation_in(
            tx,
            &Revoked::Session(session),
            Some(user),
            reason,
            at,
            // Kept past the session's own end by the longest access-token lifetime:
            // a token exchanged from the session may outlive it by that much.
            Timestamp::from_millis(*expires_at).saturating_add(tessera_core::MAX_ACCESS_TTL),
        )
        .await?;
    }
    Ok(())
}

/// Appends one entry to the revocation log inside `tx`; returns its sequence.
pub(crate) async fn append_revocation_in(
    tx: &mut Transaction<'_, Sqlite>,
    revoked: &Revoked,
    user: Option<UserId>,
    reason: EndReason,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO revocation_log (kind, target, user_id, reason, at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(revoked.kind())
    .bind(revoked.target())
    .bind(user.map(|u| u.to_string()))
    .bind(reason.as_str())
    .bind(at.as_millis())
    .bind(expires_at.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    u64::try_from(done.last_insert_rowid()).map_err(|_| StoreError::corrupt("sequence"))
}

impl SqliteStore {
    /// A write transaction that takes the write lock at once, so that a read inside
    /// it cannot be invalidated by another writer before the transaction commits.
    async fn write_transaction(&self) -> Result<Transaction<'_, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: NewSession) -> Result<(), CreateSessionError> {
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, \
               last_seen_at, expires_at, client_address, user_agent) \
             SELECT ?, ?, id, ?, ?, ?, ?, ?, ? FROM users WHERE id = ? AND disabled = 0",
        )
        .bind(session.id.as_str())
        .bind(&session.secret_hash.as_bytes()[..])
        .bind(session.csrf_token.as_str())
        .bind(session.created_at.as_millis())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .bind(session.client_address)
        .bind(session.user_agent)
        .bind(session.user_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        if inserted.rows_affected() == 0 {
            return Err(CreateSessionError::UserDisabled);
        }
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
              WHERE s.user_id = ? ORDER BY s.created_at"
        ))
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(session_from_row)
        .collect()
    }

    async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for (id, at) in seen {
            sqlx::query("UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id = ?")
                .bind(at.as_millis())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn end_session(
        &self,
        user: UserId,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let expires_at: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM sessions WHERE id = ? AND user_id = ?")
                .bind(id.as_str())
                .bind(user.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
        let Some(expires_at) = expires_at else {
            return Ok(false);
        };
        end_sessions_in(
            &mut tx,
            user,
            &[(id.as_str().to_owned(), expires_at)],
            reason,
            at,
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(true)
    }

    async fn end_sessions_of_user(
        &self,
        user: UserId,
        except: Option<&SessionId>,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, expires_at FROM sessions WHERE user_id = ? AND id IS NOT ? \
             ORDER BY created_at",
        )
        .bind(user.to_string())
        .bind(except.map(SessionId::as_str))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        end_sessions_in(&mut tx, user, &rows, reason, at).await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        rows.iter()
            .map(|(id, _)| SessionId::parse(id).map_err(|_| StoreError::corrupt("session id")))
            .collect()
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let sessions =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?")
                .bind(now.as_millis())
                .bind(idle_cutoff.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        sqlx::query("DELETE FROM opaque_tokens WHERE expires_at <= ?")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM refresh_families WHERE expires_at <= ?")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM revocation_log WHERE expires_at <= ?")
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(sessions.rows_affected())
    }

    async fn count_live_sessions(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE expires_at > ? AND last_seen_at >= ?",
        )
        .bind(now.as_millis())
        .bind(idle_cutoff.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[async_trait]
impl RevocationLog for SqliteStore {
    async fn revocations_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<(i64, String, String, Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT sequence, kind, target, user_id, reason, at, expires_at FROM revocation_log \
             WHERE sequence > ? ORDER BY sequence LIMIT ?",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|(sequence, kind, target, user, reason, at, expires_at)| {
                Ok(Revocation {
                    sequence: u64::try_from(sequence)
                        .map_err(|_| StoreError::corrupt("sequence"))?,
                    revoked: Revoked::from_stored(&kind, &target)
                        .ok_or_else(|| StoreError::corrupt("revocation"))?,
                    user: user
                        .map(|u| UserId::parse(&u).ok_or_else(|| StoreError::corrupt("user id")))
                        .transpose()?,
                    reason: EndReason::parse(&reason)
                        .ok_or_else(|| StoreError::corrupt("reason"))?,
                    at: Timestamp::from_millis(at),
                    expires_at: Timestamp::from_millis(expires_at),
                })
            })
            .collect()
    }

    async fn latest_revocation(&self) -> Result<u64, StoreError> {
        // The AUTOINCREMENT counter, not max(sequence): purged entries must not let
        // the sequence go backwards.
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'revocation_log'")
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(latest.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    async fn append_revocation(
        &self,
        revoked: Revoked,
        user: Option<UserId>,
        reason: EndReason,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let sequence =
            append_revocation_in(&mut tx, &revoked, user, reason, at, expires_at).await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(sequence)
    }

    async fn import_revocations(
        &self,
        entries: &[Revocation],
        latest: u64,
    ) -> Result<(), StoreError> {
        let sequence_of = |sequence: u64| {
            i64::try_from(sequence)
                .map_err(|_| StoreError::Invalid(format!("sequence {sequence} is out of range")))
        };
        // The write lock first: no append can slip in between the check and the
        // inserts.
        let mut tx = self.write_transaction().await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocation_log'), 0)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let mut top = sequence_of(latest)?;
        for entry in entries {
            let sequence = sequence_of(entry.sequence)?;
            if sequence <= current {
                return Err(StoreError::Invalid(format!(
                    "cannot import revocation {sequence}: the log is at {current} already"
                )));
            }
            top = top.max(sequence);
            sqlx::query(
                "INSERT INTO revocation_log (sequence, kind, target, user_id, reason, at, \
                   expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(sequence)
            .bind(entry.revoked.kind())
            .bind(entry.revoked.target())
            .bind(entry.user.map(|u| u.to_string()))
            .bind(entry.reason.as_str())
            .bind(entry.at.as_millis())
            .bind(entry.expires_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        // The AUTOINCREMENT counter is what the next append is numbered after and
        // what `latest_revocation` reads; it only moves up.
        sqlx::query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'revocation_log', 0 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocation_log')",
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'revocation_log'")
            .bind(top)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(())
    }
}

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
        if seen.is_empty() {
            return Ok(0);
        }
        let resolution = i64::try_from(PRESENCE_RESOLUTION.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.write_transaction().await?;
        let mut written = 0;
        for sighting in seen {
            written += sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at) VALUES (?, ?, ?) \
                 ON CONFLICT (sid) DO UPDATE SET seen_at = excluded.seen_at \
                 WHERE excluded.seen_at >= presence.seen_at + ? AND presence.ended = 0",
            )
            .bind(sighting.sid.as_str())
            .bind(sighting.user.to_string())
            .bind(sighting.at.as_millis())
            .bind(resolution)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        }
        tx.commit().await.map_err(store_error)?;
        Ok(written)
    }

    async fn online_since(&self, since: Timestamp) -> Result<Online, StoreError> {
        let (sessions, users): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT user_id) FROM presence \
             WHERE seen_at >= ? AND ended = 0",
        )
        .bind(since.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(Online {
            users: u64::try_from(users).unwrap_or(0),
            sessions: u64::try_from(sessions).unwrap_or(0),
        })
    }

    async fn purge_presence(&self, before: Timestamp) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM presence WHERE seen_at < ?")
            .bind(before.as_millis())
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_transaction().await?;
        for sid in sids {
            // A tombstone, not a delete: see the `ended` column.
            sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at, ended) VALUES (?, '', ?, 1) \
                 ON CONFLICT (sid) DO UPDATE SET ended = 1",
            )
            .bind(sid.as_str())
            .bind(Timestamp::now().as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error)
    }
}
